import HTTP1
import XCTest

/// Fuzz-style robustness: mutations of valid messages never crash the parsers, and every
/// `.complete` result only points inside the buffer. (The libFuzzer targets of STYLE.md are
/// Tests/Fuzz; this runs in every `swift test` with a fixed seed so failures reproduce.)
final class FuzzTests: XCTestCase {
    static let seeds = [
        "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n",
        "POST http://h:8080/p HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nConnection: x-a, close\r\nx-a: 1\r\n\r\nhello",
        "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-continue\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
        "\r\nOPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nKeep-Alive: 5\r\n\r\nabc",
    ]
    static let interesting: [UInt8] = Array(" \t\r\n:;,/?#@*\"\u{7f}\u{0}0aAzZ-9".utf8) + [0x80, 0xFF]

    func mutate(_ base: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = base
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let i = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<5, using: &rng) {
            case 0 where !b.isEmpty: b[i] = Self.interesting.randomElement(using: &rng)!
            case 1: b.insert(Self.interesting.randomElement(using: &rng)!, at: i)
            case 2 where !b.isEmpty: b.remove(at: i)
            case 3 where !b.isEmpty: b[i] = UInt8.random(in: 0...255, using: &rng)
            default: b = Array(b[0..<i])  // truncate
            }
        }
        return b
    }

    func checkRange(_ r: ByteRange, _ limit: Int, _ input: [UInt8], line: UInt = #line) {
        XCTAssert(r.start >= 0 && r.count >= 0 && Int(r.end) <= limit, "\(r) outside \(limit): \(input)", line: line)
    }

    func testMutatedMessages() {
        var rng = SplitMix64(state: 0x1D6E_55D0)
        var outcomes = [String: Int]()
        var fields = [HeaderField](repeating: HeaderField(name: .empty, value: .empty), count: 32)
        for iteration in 0..<5000 {
            let input = mutate(Array(Self.seeds[iteration % Self.seeds.count].utf8), &rng)
            var request = RequestHead()
            var response = ResponseHead()
            let (rs, ps) = input.withUnsafeBytes { buf in
                fields.withUnsafeMutableBufferPointer { f in
                    (parseRequestHead(buf, headers: f, into: &request),
                     parseResponseHead(buf, headers: f, into: &response))
                }
            }
            outcomes["\(rs)", default: 0] += 1
            if rs == .complete {
                // Re-parse: the response parse above reused the field array.
                _ = input.withUnsafeBytes { buf in
                    fields.withUnsafeMutableBufferPointer { parseRequestHead(buf, headers: $0, into: &request) }
                }
                let limit = Int(request.headLength)
                XCTAssert(limit <= input.count)
                for r in [request.methodRange, request.target, request.path, request.query,
                          request.requestLine, request.host] { checkRange(r, limit, input) }
                for f in fields.prefix(Int(request.headerCount)) {
                    checkRange(f.name, limit, input)
                    checkRange(f.value, limit, input)
                }
                // The serializer copes with whatever the parser accepted.
                var out = [UInt8](repeating: 0, count: 4096)
                let n = input.withUnsafeBytes { src in
                    fields.withUnsafeBufferPointer { f in
                        out.withUnsafeMutableBytes { o in
                            serializeForwardedRequestHead(
                                source: src, head: request, headers: f,
                                clientAddress: UnsafeRawBufferPointer(start: nil, count: 0), proto: .http,
                                generatedRequestId: UnsafeRawBufferPointer(start: nil, count: 0), into: o)
                        }
                    }
                }
                XCTAssertNotNil(n)
            }
            if ps == .complete {
                let limit = Int(response.headLength)
                XCTAssert(limit <= input.count)
                checkRange(response.statusLine, limit, input)
                checkRange(response.reason, limit, input)
            }
        }
        // The mutations reach every outcome, so the test exercises more than one path.
        XCTAssertGreaterThan(outcomes["complete", default: 0], 100)
        XCTAssertGreaterThan(outcomes["incomplete", default: 0], 100)
        XCTAssertGreaterThan(outcomes.count, 10)
    }

    func testMutatedChunkedBodies() {
        var rng = SplitMix64(state: 42)
        let base = Array(ChunkedScannerTests.body.utf8)
        var done = 0
        for _ in 0..<3000 {
            let input = mutate(base, &rng)
            var s = ChunkedScanner()
            let cut = input.isEmpty ? 0 : Int.random(in: 0...input.count, using: &rng)
            var result = input[0..<cut].withUnsafeBytes { s.scan($0) }
            var offset = 0
            if result == .needMore {
                offset = cut
                result = input[cut...].withUnsafeBytes { s.scan($0) }
            }
            if case .done(let n) = result {
                XCTAssert(offset + n <= input.count)
                done += 1
            }
        }
        XCTAssertGreaterThan(done, 100)
    }
}
