import HTTP1
import XCTest

final class ChunkedScannerTests: XCTestCase {
    static let body = "5;name=value;flag\r\nhello\r\n"
        + "1A \t; ext=\"q v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
        + "000\r\n"
        + "Expires: never\r\nX-Checksum:\tabc \r\n\r\n"
    static let next = "GET /next HTTP/1.1\r\n"

    func scanWhole(_ text: String, _ scanner: inout ChunkedScanner) -> ChunkedScan {
        Array(text.utf8).withUnsafeBytes { scanner.scan($0) }
    }

    func testWholeBodyThenNextMessage() {
        var s = ChunkedScanner()
        let bodyCount = Self.body.utf8.count
        XCTAssertEqual(scanWhole(Self.body + Self.next, &s), .done(consumed: bodyCount))
        XCTAssertTrue(s.isDone)
        XCTAssertEqual(scanWhole("more", &s), .done(consumed: 0))
        var empty = ChunkedScanner()
        XCTAssertEqual(scanWhole("0\r\n\r\n", &empty), .done(consumed: 5))
    }

    /// Every split point, and every pair of split points, gives the same answer.
    func testEverySplitPoint() {
        let bytes = Array((Self.body + Self.next).utf8)
        let bodyCount = Self.body.utf8.count
        for cut in 0...bytes.count {
            var s = ChunkedScanner()
            var consumed = 0
            var result = bytes[0..<cut].withUnsafeBytes { s.scan($0) }
            if case .done(let n) = result {
                consumed = n
            } else {
                XCTAssertEqual(result, .needMore, "cut \(cut)")
                consumed = cut
                result = bytes[cut...].withUnsafeBytes { s.scan($0) }
                guard case .done(let n) = result else { return XCTFail("cut \(cut): \(result)") }
                consumed += n
            }
            XCTAssertEqual(consumed, bodyCount, "cut \(cut)")
        }
    }

    func testByteAtATime() {
        let bytes = Array((Self.body + Self.next).utf8)
        var s = ChunkedScanner()
        for (i, b) in bytes.enumerated() {
            let result = [b].withUnsafeBytes { s.scan($0) }
            if i == Self.body.utf8.count - 1 {
                XCTAssertEqual(result, .done(consumed: 1))
                return
            }
            XCTAssertEqual(result, .needMore, "byte \(i)")
        }
        XCTFail("never done")
    }

    func testMalformed() {
        let cases: [(String, HTTPError)] = [
            ("\r\n", .invalidChunkSize),
            ("g\r\n", .invalidChunkSize),
            ("-1\r\n", .invalidChunkSize),
            ("0x5\r\n", .invalidChunkSize),
            ("5 5\r\n", .invalidChunkExtension),
            ("5 \r\nhello\r\n", .invalidChunkExtension),
            ("11111111111111111\r\n", .invalidChunkSize),   // 17 digits
            ("8000000000000000\r\n", .invalidChunkSize),    // past Int64.max
            ("5\nhello\r\n", .invalidChunkSize),            // bare LF
            ("5\r\rhello\r\n", .invalidChunkSize),          // bare CR
            ("5;a\u{1}\r\n", .invalidChunkExtension),
            ("5;a\nb\r\n", .invalidChunkExtension),
            ("5\r\nhelloX\r\n", .invalidChunkDelimiter),
            ("5\r\nhello\rX", .invalidChunkDelimiter),
            ("5\r\nhello\n0\r\n\r\n", .invalidChunkDelimiter),
            ("0\r\n X: y\r\n\r\n", .invalidTrailer),         // obs-fold
            ("0\r\nX : y\r\n\r\n", .invalidTrailer),
            ("0\r\nX: y\r\r\n", .invalidTrailer),
            ("0\r\nX: \u{0}\r\n\r\n", .invalidTrailer),
            ("0\r\n\n", .invalidTrailer),
            ("0\r\n\rX", .invalidTrailer),
        ]
        for (text, error) in cases {
            var s = ChunkedScanner()
            XCTAssertEqual(scanWhole(text, &s), .error(error), text.debugDescription)
            XCTAssertEqual(scanWhole("0\r\n\r\n", &s), .error(error), "stays failed")
        }
        // 16 digits that fit are fine (the scanner then waits for the data).
        var big = ChunkedScanner()
        XCTAssertEqual(scanWhole("7fffffffffffffff\r\nabc", &big), .needMore)
        var upper = ChunkedScanner()
        XCTAssertEqual(scanWhole("A\r\n0123456789\r\n0\r\n\r\n", &upper), .done(consumed: 20))
    }

    func testLineAndTrailerBounds() {
        var s = ChunkedScanner(maxLineBytes: 16, maxTrailerBytes: 16)
        XCTAssertEqual(scanWhole("5;" + String(repeating: "e", count: 15), &s), .error(.invalidChunkExtension))
        var ok = ChunkedScanner(maxLineBytes: 16, maxTrailerBytes: 16)
        XCTAssertEqual(scanWhole("5;" + String(repeating: "e", count: 13) + "\r\nhello\r\n", &ok), .needMore)
        var t = ChunkedScanner(maxLineBytes: 16, maxTrailerBytes: 16)
        XCTAssertEqual(scanWhole("0\r\nX: " + String(repeating: "v", count: 20), &t), .error(.invalidTrailer))
    }
}
