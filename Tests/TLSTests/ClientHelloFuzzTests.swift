import Foundation
import TLS
import XCTest

/// Properties every result must have, whatever the bytes: checked over seeded random mutations
/// of real hellos here, and over the libFuzzer corpus and crash reproducers (Tests/Fuzz).
final class ClientHelloFuzzTests: XCTestCase {

    /// 200 000 mutations of the captured hellos (one or several records): random bytes, bit
    /// flips, ±1 on a byte (length fields), inserted and removed bytes, truncation. Nothing
    /// traps, offsets stay inside the bytes given, and a cut anywhere gives .incomplete or the
    /// same result (the read-more-and-call-again contract).
    func testRandomMutations() {
        var rng = SplitMix64(seed: 0x7157_C0DE)
        let snimsg = message(of: Captured.opensslSNI)
        let bases = Captured.all.map { $0.1 } + [
            records(snimsg, sizes: [2, 40, 200, snimsg.count - 242]),
            records(message(of: Captured.python), size: 37),
            HelloBuilder(extensions: nil).bytes,
        ]
        var seen = [String: Int]()
        for i in 0..<200_000 {
            var b = bases[rng.below(bases.count)]
            for _ in 0...rng.below(4) where !b.isEmpty {
                let at = rng.below(b.count)
                switch rng.below(6) {
                case 0: b[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: b[at] ^= 1 << UInt8(rng.below(8))
                case 2: b[at] = b[at] &+ 1
                case 3: b[at] = b[at] &- 1
                case 4: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                default: b.removeSubrange(at...)
                }
            }
            let cut = rng.below(b.count + 1)
            if let failure = checkProperties(b, cut: cut) {
                XCTFail("mutation \(i): \(failure); input \(b.map { String(format: "%02x", $0) }.joined())")
                return
            }
            seen[kind(parse(b)), default: 0] += 1
        }
        // The loop must reach every outcome, or it tests less than it claims.
        for k in ["hello", "incomplete", "malformed"] {
            XCTAssertGreaterThan(seen[k, default: 0], 1000, "\(k): \(seen)")
        }
    }

    /// The libFuzzer seed corpus and any crash reproducer (Tests/Fuzz/corpus/hello,
    /// Tests/Fuzz/crashes/hello), replayed in every `swift test`.
    func testFuzzCorpus() {
        let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz")
        var count = 0
        for dir in ["corpus", "crashes"] {
            let d = fuzz.appendingPathComponent(dir).appendingPathComponent("hello")
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? []).sorted() {
                guard let data = FileManager.default.contents(atPath: d.appendingPathComponent(name).path) else { continue }
                let b = Array(data)
                for cut in [0, b.count / 2, b.count] {
                    if let failure = checkProperties(b, cut: cut) { XCTFail("\(dir)/hello/\(name): \(failure)") }
                }
                count += 1
            }
        }
        XCTAssertGreaterThan(count, 4, "the seed corpus is in Tests/Fuzz/corpus/hello")
    }
}

/// nil when `bytes` (and `bytes[..<cut]`) parse with every property the callers rely on; else
/// what failed. Tests/Fuzz/TLSFuzz.swift checks the same properties under libFuzzer.
func checkProperties(_ bytes: [UInt8], cut: Int) -> String? {
    let status = parse(bytes)
    switch status {
    case .hello(let h):
        guard h.length > 0, Int(h.length) <= bytes.count, Int(h.length) <= ClientHello.maxBytes else {
            return "length \(h.length) outside 1...\(bytes.count)"
        }
        guard h.sniStart >= 0, h.sniCount >= 0, h.sniCount <= 255, h.sniStart + h.sniCount <= h.length,
              h.sniCount == 0 || h.sniStart >= 5 else {
            return "SNI \(h.sniStart)+\(h.sniCount) outside the hello"
        }
        for b in bytes[Int(h.sniStart)..<Int(h.sniStart + h.sniCount)] {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == 0x2D || b == 0x2E || b == 0x5F
            guard ok else { return "SNI byte \(b)" }
        }
        guard parse(bytes[..<Int(h.length)]) == status else { return "the hello's own bytes parse differently" }
    case .incomplete:
        guard bytes.count < ClientHello.maxBytes else { return ".incomplete at \(bytes.count) bytes" }
    case .notTLS:
        guard parse(bytes.prefix(2)) == .notTLS else { return ".notTLS not decided from 2 bytes" }
    case .malformed:
        break
    }
    let prefix = parse(bytes[..<cut])
    guard prefix == .incomplete || prefix == status else {
        return "cut at \(cut) gives \(prefix), whole gives \(status)"
    }
    return nil
}

func kind(_ s: ClientHelloStatus) -> String {
    switch s {
    case .hello: return "hello"
    case .incomplete: return "incomplete"
    case .notTLS: return "notTLS"
    case .malformed: return "malformed"
    }
}

/// Deterministic PRNG (SplitMix64), so a failing mutation is the same on every run.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
