import Foundation
import HTTP1
import XCTest

/// Replays the libFuzzer seed corpus and every crash reproducer kept in Tests/Fuzz (corpus/<target>/,
/// crashes/<target>/) through the code that target fuzzes, in every `swift test`: a crash the
/// fuzzer once found stays a regression case even where the fuzzer toolchain is missing.
/// (Named regression cases for fixed crashes also go into the table tests of this target.)
final class FuzzCorpusTests: XCTestCase {
    static let fuzzDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz")

    func inputs(_ target: String) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for dir in ["corpus", "crashes"] {
            let d = Self.fuzzDir.appendingPathComponent(dir).appendingPathComponent(target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? []
            for name in names.sorted() {
                if let data = FileManager.default.contents(atPath: d.appendingPathComponent(name).path) {
                    out.append(Array(data))
                }
            }
        }
        return out
    }

    func testRequestCorpus() {
        let all = inputs("request")
        XCTAssertGreaterThan(all.count, 3, "the seed corpus is in Tests/Fuzz/corpus/request")
        var fields = [HeaderField](repeating: HeaderField(name: .empty, value: .empty), count: 128)
        var out = [UInt8](repeating: 0, count: 256 * 1024)
        for input in all {
            var head = RequestHead()
            input.withUnsafeBytes { buf in
                fields.withUnsafeMutableBufferPointer { f in
                    guard parseRequestHead(buf, headers: f, into: &head) == .complete else { return }
                    XCTAssertLessThanOrEqual(Int(head.headLength), input.count)
                    let n = out.withUnsafeMutableBytes { o in
                        serializeForwardedRequestHead(source: buf, head: head, headers: UnsafeBufferPointer(f),
                                                      clientAddress: UnsafeRawBufferPointer(start: nil, count: 0),
                                                      proto: .http, generatedRequestId: UnsafeRawBufferPointer(start: nil, count: 0),
                                                      into: o)
                    }
                    XCTAssertNotNil(n)
                }
            }
        }
    }

    func testResponseCorpus() {
        let all = inputs("response")
        XCTAssertGreaterThan(all.count, 3, "the seed corpus is in Tests/Fuzz/corpus/response")
        var fields = [HeaderField](repeating: HeaderField(name: .empty, value: .empty), count: 128)
        for input in all {
            var head = ResponseHead()
            input.withUnsafeBytes { buf in
                fields.withUnsafeMutableBufferPointer { f in
                    guard parseResponseHead(buf, headers: f, into: &head) == .complete else { return }
                    XCTAssertLessThanOrEqual(Int(head.headLength), input.count)
                    if head.isChunked {
                        var s = ChunkedScanner()
                        _ = s.scan(UnsafeRawBufferPointer(rebasing: buf[Int(head.headLength)...]))
                    }
                }
            }
        }
    }

    func testChunkedCorpus() {
        let all = inputs("chunked")
        XCTAssertGreaterThan(all.count, 2, "the seed corpus is in Tests/Fuzz/corpus/chunked")
        for input in all where !input.isEmpty {
            var s = ChunkedScanner(maxLineBytes: 64, maxTrailerBytes: 256)
            let r = input.dropFirst().withUnsafeBytes { s.scan($0) }
            if case .done(let k) = r { XCTAssertLessThanOrEqual(k, input.count - 1) }
        }
    }
}
