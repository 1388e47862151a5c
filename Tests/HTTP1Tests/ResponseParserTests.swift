import HTTP1
import XCTest

final class ResponseParserTests: XCTestCase {
    func testTypicalResponse() {
        let r = parseResponse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\nbody")
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.head.status, 200)
        XCTAssertEqual(r.head.version, .http11)
        XCTAssertEqual(r.text(r.head.reason), "OK")
        XCTAssertEqual(r.text(r.head.statusLine), "HTTP/1.1 200 OK")
        XCTAssertEqual(r.head.headerCount, 2)
        XCTAssertEqual(r.head.contentLength, 20)
        XCTAssertFalse(r.head.isChunked)
        XCTAssertTrue(r.head.keepAlive)
        XCTAssertFalse(r.head.hasHopByHop)
        XCTAssertEqual(Int(r.head.headLength), r.bytes.count - 4)
    }

    /// (response, status, keepAlive, hasHopByHop, framing for GET, framing for HEAD)
    func testShapesAndFraming() {
        let cases: [(String, UInt16, Bool, Bool, BodyFraming, BodyFraming)] = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 200, true, false, .length(3), .none),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, true, false, .none, .none),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, true, false, .chunked, .none),
            ("HTTP/1.1 200 OK\r\n\r\n", 200, true, false, .untilClose, .none),
            ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", 200, false, true, .length(1), .none),
            ("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", 200, false, false, .length(1), .none),
            ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", 200, true, true, .length(1), .none),
            ("HTTP/1.1 204 No Content\r\n\r\n", 204, true, false, .none, .none),
            ("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", 304, true, false, .none, .none),
            ("HTTP/1.1 100 Continue\r\n\r\n", 100, true, false, .none, .none),
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 101, true, true, .none, .none),
            ("HTTP/1.1 404\r\nContent-Length: 2\r\n\r\n", 404, true, false, .length(2), .none),
            ("HTTP/1.1 500 \r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n", 500, true, true, .length(2), .none),
            ("HTTP/1.1 200 Ok \u{e9}\tfine\r\nContent-Length: 2\r\n\r\n", 200, true, false, .length(2), .none),
        ]
        for (text, status, keepAlive, hop, getFraming, headFraming) in cases {
            let r = parseResponse(text)
            XCTAssertEqual(r.status, .complete, text)
            XCTAssertEqual(r.head.status, status, text)
            XCTAssertEqual(r.head.keepAlive, keepAlive, text)
            XCTAssertEqual(r.head.hasHopByHop, hop, text)
            XCTAssertEqual(responseBodyFraming(r.head, requestMethod: .get), getFraming, text)
            XCTAssertEqual(responseBodyFraming(r.head, requestMethod: .head), headFraming, text)
            XCTAssertEqual(Int(r.head.headLength), text.utf8.count, text)
        }
        // CONNECT 2xx starts a tunnel; a refused CONNECT has a normal body.
        let ok = parseResponse("HTTP/1.1 200 Connection established\r\n\r\n")
        XCTAssertEqual(responseBodyFraming(ok.head, requestMethod: .connect), .none)
        let refused = parseResponse("HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\n")
        XCTAssertEqual(responseBodyFraming(refused.head, requestMethod: .connect), .length(4))
    }

    func testUpgradeResponseKeepsUpgradeField() {
        let r = parseResponse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        XCTAssertTrue(r.head.isUpgrade)
        XCTAssertEqual(r.flagged(.hopByHop), ["Connection"])
        let plain = parseResponse("HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n")
        XCTAssertFalse(plain.head.isUpgrade)
        XCTAssertEqual(plain.flagged(.hopByHop), ["Upgrade", "Connection"])
        // Response fields are never flagged as rewritten.
        XCTAssertEqual(parseResponse("HTTP/1.1 200 OK\r\nX-Request-Id: 1\r\n\r\n").flagged(.rewritten), [])
    }

    func testInvalidResponses() {
        let cases: [(String, HTTPError)] = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", .contentLengthAndTransferEncoding),
            ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", .conflictingContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", .invalidContentLength),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .invalidTransferEncoding),
            // The request shapes of SmugglingTests from an upstream: refused (502), not forwarded.
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unknownTransferCoding),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", .unknownTransferCoding),
            ("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", .repeatedContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", .repeatedContentLength),
            ("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", .obsFold),
            ("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", .whitespaceBeforeColon),
            ("HTTP/1.1 200 OK\nX: a\r\n\r\n", .bareLF),
            ("HTTP/1.1 20 OK\r\n\r\n", .invalidStatus),
            ("HTTP/1.1 2000 OK\r\n\r\n", .invalidStatus),
            ("HTTP/1.1 099 OK\r\n\r\n", .invalidStatus),
            ("HTTP/1.1 200 O\u{1}K\r\n\r\n", .invalidStatus),
            ("HTTP/1.1  200 OK\r\n\r\n", .invalidStatus),
            ("HTTP/2.0 200 OK\r\n\r\n", .unsupportedVersion),
            ("HTTP/1.1\r\n\r\n", .invalidVersion),
            ("ICY 200 OK\r\n\r\n", .invalidVersion),
            ("HTTP/1.1-200 OK\r\n\r\n", .invalidVersion),
        ]
        for (text, error) in cases {
            XCTAssertEqual(parseResponse(text).status, .error(error), text.debugDescription)
        }
    }

    func testIncompleteAndLimits() {
        let text = Array("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n".utf8)
        for n in 0..<text.count {
            var head = ResponseHead()
            var fields = [HeaderField](repeating: HeaderField(name: .empty, value: .empty), count: 8)
            let status = text[0..<n].withUnsafeBytes { buf in
                fields.withUnsafeMutableBufferPointer { parseResponseHead(buf, headers: $0, into: &head) }
            }
            XCTAssertEqual(status, .incomplete, "cut at \(n)")
        }
        let limits = HTTPLimits(maxHeadBytes: 64, maxHeaderCount: 2, maxRequestLineBytes: 32)
        XCTAssertEqual(parseResponse("HTTP/1.1 200 " + String(repeating: "x", count: 40), limits: limits).status,
                       .error(.requestLineTooLong))
        XCTAssertEqual(parseResponse("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n", limits: limits).status,
                       .error(.tooManyHeaders))
        XCTAssertEqual(parseResponse("HTTP/1.1 200 OK\r\nA: " + String(repeating: "x", count: 60), limits: limits).status,
                       .error(.headTooLarge))
    }
}
