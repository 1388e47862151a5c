import HTTP1
import XCTest

/// Every ambiguous or malformed request shape of DESIGN.md §8 is refused with the right status.
final class SmugglingTests: XCTestCase {
    static let cases: [(String, HTTPError)] = [
        // Content-Length and Transfer-Encoding.
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .contentLengthAndTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", .contentLengthAndTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .conflictingContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", .conflictingContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", .invalidContentLength),
        // Transfer-Encoding other than a final chunked.
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .invalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", .invalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", .invalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", .invalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", .invalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", .invalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", .invalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", .invalidTransferEncoding),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .invalidTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n", .unknownTransferCoding),
        // Only `chunked` alone is served (Envoy: 501 otherwise); the proxy applies no coding.
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unknownTransferCoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", .unknownTransferCoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: deflate,chunked\r\n\r\n", .unknownTransferCoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n", .unknownTransferCoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n", .unknownTransferCoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", .invalidTransferEncoding),
        // Content-Length once, one value: identical repeats are not merged either.
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", .repeatedContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", .repeatedContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3,3\r\nContent-Length: 3\r\n\r\n", .repeatedContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nTransfer-Encoding: chunked\r\n\r\n", .contentLengthAndTransferEncoding),
        // Field syntax.
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", .obsFold),
        ("GET / HTTP/1.1\r\nHost: a\r\n\tX-A: b\r\n\r\n", .obsFold),
        ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", .whitespaceBeforeColon),
        ("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", .whitespaceBeforeColon),
        ("GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", .invalidHeaderName),
        ("GET / HTTP/1.1\r\nHost: a\r\nX\u{e9}: b\r\n\r\n", .invalidHeaderName),
        ("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", .invalidHeaderName),
        ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", .invalidHeaderName),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{0}c\r\n\r\n", .invalidHeaderValue),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{7f}\r\n\r\n", .invalidHeaderValue),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{1b}\r\n\r\n", .invalidHeaderValue),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", .bareCR),
        ("GET / HTTP/1.1\r\nHost: a\r\n\rX-A: b\r\n\r\n", .bareCR),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\nX-B: c\r\n\r\n", .bareLF),
        ("GET / HTTP/1.1\nHost: a\r\n\r\n", .bareLF),
        ("GET / HTTP/1.1\r\nHost: a\n\n", .bareLF),
        ("GET / HTTP/1.1\r\nHost: a\r\n\n", .bareLF),
        // Host.
        ("GET / HTTP/1.1\r\n\r\n", .missingHost),
        ("GET http://a/ HTTP/1.1\r\n\r\n", .missingHost),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .multipleHost),
        ("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", .multipleHost),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", .invalidHost),
        ("GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", .invalidHost),
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", .invalidHost),
        ("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", .invalidHost),
        ("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", .invalidHost),
        ("GET / HTTP/1.1\r\nHost: caf\u{e9}\r\n\r\n", .invalidHost),
        ("GET / HTTP/1.0\r\nHost: a,b c\r\n\r\n", .invalidHost),
        ("GET http://a{b}/x HTTP/1.1\r\nHost: a\r\n\r\n", .invalidHost),
        ("GET http://a\u{e9}/x HTTP/1.1\r\nHost: a\r\n\r\n", .invalidHost),
        ("CONNECT a\"b:443 HTTP/1.1\r\nHost: a\r\n\r\n", .invalidHost),
        // Request line and target.
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", .invalidVersion),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", .invalidVersion),
        ("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET /a\u{7f} HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET http:///b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET http://u@a/b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("CONNECT a:1/x HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
        ("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", .invalidMethod),
        (" GET / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidMethod),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidMethod),
        ("GET /\r\n\r\n", .invalidTarget),
        ("GET / HTTP/1.1\rHost: a\r\n\r\n", .invalidVersion),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", .invalidVersion),
        ("GET / HTTP/1.x\r\nHost: a\r\n\r\n", .invalidVersion),
        ("GET / HTTP/11\r\nHost: a\r\n\r\n", .invalidVersion),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", .unsupportedVersion),
        ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", .unsupportedVersion),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", .unsupportedVersion),
    ]

    func testEveryShapeIsRefused() {
        for (text, error) in Self.cases {
            XCTAssertEqual(parseRequest(text).status, .error(error), text.debugDescription)
        }
    }

    func testStatusCodes() {
        XCTAssertEqual(HTTPError.conflictingContentLength.status, 400)
        XCTAssertEqual(HTTPError.bareLF.status, 400)
        XCTAssertEqual(HTTPError.requestLineTooLong.status, 414)
        XCTAssertEqual(HTTPError.headTooLarge.status, 431)
        XCTAssertEqual(HTTPError.tooManyHeaders.status, 431)
        XCTAssertEqual(HTTPError.unsupportedVersion.status, 505)
        XCTAssertEqual(HTTPError.unknownTransferCoding.status, 501)
        XCTAssertEqual(HTTPError.repeatedContentLength.status, 400)
        XCTAssertEqual(HTTPError.invalidHost.status, 400)
        XCTAssertEqual("\(HTTPError.obsFold.reason)", "obsolete line folding")
    }
}

final class LimitsTests: XCTestCase {
    func testRequestLineLimit() {
        let limits = HTTPLimits()
        let okTarget = "/" + String(repeating: "a", count: limits.maxRequestLineBytes - 14)
        let ok = "GET \(okTarget) HTTP/1.1\r\nHost: a\r\n\r\n"  // exactly at the limit
        XCTAssertEqual(parseRequest(ok).status, .complete)
        let long = "GET \(okTarget)b HTTP/1.1\r\nHost: a\r\n\r\n"
        XCTAssertEqual(parseRequest(long).status, .error(.requestLineTooLong))
        // Still incomplete, but already too long: refused without waiting for the rest.
        let growing = "GET /" + String(repeating: "a", count: limits.maxRequestLineBytes)
        XCTAssertEqual(parseRequest(growing).status, .error(.requestLineTooLong))
        XCTAssertEqual(parseRequest(String(growing.prefix(limits.maxRequestLineBytes))).status, .incomplete)
    }

    func testHeadSizeLimit() {
        let limits = HTTPLimits(maxHeadBytes: 1024, maxHeaderCount: 100, maxRequestLineBytes: 512)
        let prefix = "GET / HTTP/1.1\r\nHost: a\r\nX: "
        let fill = 1024 - prefix.utf8.count - 4
        let exact = prefix + String(repeating: "v", count: fill) + "\r\n\r\n"
        XCTAssertEqual(exact.utf8.count, 1024)
        XCTAssertEqual(parseRequest(exact, limits: limits).status, .complete)
        let over = prefix + String(repeating: "v", count: fill + 1) + "\r\n\r\n"
        XCTAssertEqual(parseRequest(over, limits: limits).status, .error(.headTooLarge))
        // Incomplete heads past the limit are refused too.
        let growing = prefix + String(repeating: "v", count: 2000)
        XCTAssertEqual(parseRequest(growing, limits: limits).status, .error(.headTooLarge))
        XCTAssertEqual(parseRequest(bytes: Array(growing.utf8.prefix(1024)), limits: limits).status, .incomplete)
        // Default: 60 KiB.
        let big = "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X-Pad: " + String(repeating: "p", count: 1000) + "\r\n", count: 61)
        XCTAssertEqual(parseRequest(big).status, .error(.headTooLarge))
        // Endless leading CRLFs are bounded by the same limit.
        XCTAssertEqual(parseRequest(String(repeating: "\r\n", count: 40_000)).status, .error(.headTooLarge))
    }

    func testFieldCountLimit() {
        func request(_ n: Int, end: Bool = true) -> String {
            "GET / HTTP/1.1\r\nHost: a\r\n" + (1..<n).map { "X-\($0): v\r\n" }.joined() + (end ? "\r\n" : "")
        }
        XCTAssertEqual(parseRequest(request(100)).status, .complete)
        XCTAssertEqual(parseRequest(request(100)).head.headerCount, 100)
        XCTAssertEqual(parseRequest(request(101)).status, .error(.tooManyHeaders))
        XCTAssertEqual(parseRequest(request(101, end: false)).status, .error(.tooManyHeaders))
        XCTAssertEqual(parseRequest(request(100, end: false)).status, .incomplete)
        // The caller's array is smaller than the limit: it bounds the count too.
        XCTAssertEqual(parseRequest(request(9), capacity: 8).status, .error(.tooManyHeaders))
        XCTAssertEqual(parseRequest(request(8), capacity: 8).status, .complete)
    }
}
