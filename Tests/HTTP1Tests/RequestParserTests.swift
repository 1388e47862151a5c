import HTTP1
import XCTest

final class RequestParserTests: XCTestCase {
    func testTypicalGet() {
        let r = parseRequest("GET /api/items?id=7&x=1 HTTP/1.1\r\nHost: shop.example.com:8080\r\n"
            + "User-Agent: curl/8.5.0\r\nAccept:  */* \t\r\n\r\n")
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.head.method, .get)
        XCTAssertEqual(r.text(r.head.methodRange), "GET")
        XCTAssertEqual(r.text(r.head.target), "/api/items?id=7&x=1")
        XCTAssertEqual(r.text(r.head.path), "/api/items")
        XCTAssertEqual(r.text(r.head.query), "id=7&x=1")
        XCTAssertEqual(r.head.targetForm, .origin)
        XCTAssertEqual(r.head.version, .http11)
        XCTAssertEqual(r.text(r.head.requestLine), "GET /api/items?id=7&x=1 HTTP/1.1")
        XCTAssertEqual(r.text(r.head.host), "shop.example.com:8080")
        XCTAssertEqual(r.names, ["Host", "User-Agent", "Accept"])
        XCTAssertEqual(r.values, ["shop.example.com:8080", "curl/8.5.0", "*/*"])
        XCTAssertEqual(r.head.headerCount, 3)
        XCTAssertEqual(r.head.contentLength, -1)
        XCTAssertFalse(r.head.isChunked)
        XCTAssertTrue(r.head.keepAlive)
        XCTAssertFalse(r.head.isUpgrade)
        XCTAssertFalse(r.head.expectContinue)
        XCTAssertEqual(r.head.xForwardedForIndex, -1)
        XCTAssertEqual(r.head.xRequestIdIndex, -1)
        XCTAssertEqual(Int(r.head.headLength), r.bytes.count)
        XCTAssertEqual(requestBodyFraming(r.head), .none)
    }

    /// (request, method, path, query, host, keepAlive, framing)
    func testShapes() {
        let cases: [(String, HTTPMethod, String, String, String, Bool, BodyFraming)] = [
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", .get, "/", "", "a", true, .none),
            ("HEAD /x HTTP/1.1\r\nhost: a\r\n\r\n", .head, "/x", "", "a", true, .none),
            ("POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", .post, "/f", "", "a", true, .length(5)),
            ("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", .put, "/f", "", "a", true, .none),
            ("DELETE /f? HTTP/1.1\r\nHost: a\r\n\r\n", .delete, "/f", "", "a", true, .none),
            ("PATCH /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", .patch, "/f", "", "a", true, .chunked),
            ("POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", .post, "/f", "", "a", true, .chunked),
            ("POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", .post, "/f", "", "a", true, .chunked),
            ("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", .get, "/", "", "[::1]:8080", true, .none),
            ("GET / HTTP/1.1\r\nHost: a-b_c~d.%41!$&'()*+,;=:80\r\n\r\n", .get, "/", "", "a-b_c~d.%41!$&'()*+,;=:80", true, .none),
            ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", .options, "*", "", "a", true, .none),
            ("TRACE /t HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", .trace, "/t", "", "a", false, .none),
            ("PURGE /t HTTP/1.1\r\nHost: a\r\n\r\n", .other, "/t", "", "a", true, .none),
            ("get /t HTTP/1.1\r\nHost: a\r\n\r\n", .other, "/t", "", "a", true, .none),
            ("CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n", .connect, "", "", "db.example:5432", true, .none),
            ("GET http://target.example/p/q?z=1 HTTP/1.1\r\nHost: other\r\n\r\n", .get, "/p/q", "z=1", "target.example", true, .none),
            ("GET HTTPS://t.example:8443 HTTP/1.1\r\nHost: other\r\n\r\n", .get, "", "", "t.example:8443", true, .none),
            ("GET http://t.example?q HTTP/1.1\r\nHost: t.example\r\n\r\n", .get, "", "q", "t.example", true, .none),
            ("GET / HTTP/1.0\r\n\r\n", .get, "/", "", "", false, .none),
            ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", .get, "/", "", "", true, .none),
            ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", .get, "/", "", "", false, .none),
            ("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n", .get, "/", "", "a", false, .none),
            ("GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\nX: caf\u{e9}\r\n\r\n", .get, "/caf\u{e9}", "", "a", true, .none),
            ("\r\n\r\nGET /after-crlf HTTP/1.1\r\nHost: a\r\n\r\n", .get, "/after-crlf", "", "a", true, .none),
            ("GET / HTTP/1.1\r\nHost:\r\n\r\n", .get, "/", "", "", true, .none),
            ("GET / HTTP/1.1\r\nHost: a\r\nEmpty:\r\nTabs:\t\tv\t\r\n\r\n", .get, "/", "", "a", true, .none),
        ]
        for (text, method, path, query, host, keepAlive, framing) in cases {
            let r = parseRequest(text)
            XCTAssertEqual(r.status, .complete, text)
            guard r.status == .complete else { continue }
            XCTAssertEqual(r.head.method, method, text)
            XCTAssertEqual(r.text(r.head.path), path, text)
            XCTAssertEqual(r.text(r.head.query), query, text)
            XCTAssertEqual(r.text(r.head.host), host, text)
            XCTAssertEqual(r.head.keepAlive, keepAlive, text)
            XCTAssertEqual(requestBodyFraming(r.head), framing, text)
            let bodyStart = text.utf8.count - (framing == .length(5) && text.hasSuffix("hello") ? 5 : 0)
            XCTAssertEqual(Int(r.head.headLength), bodyStart, text)
        }
    }

    func testTargetForms() {
        XCTAssertEqual(parseRequest("GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n").head.targetForm, .absolute)
        XCTAssertEqual(parseRequest("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n").head.targetForm, .authority)
        XCTAssertEqual(parseRequest("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").head.targetForm, .asterisk)
        XCTAssertEqual(parseRequest("GET /b HTTP/1.1\r\nHost: a\r\n\r\n").head.targetForm, .origin)
    }

    func testPipelinedHeadsInOneBuffer() {
        let first = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
        let second = "POST /two HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc"
        let third = "GET /three HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n"
        let all = Array((first + second + third).utf8)
        var offset = 0
        var seen: [(String, String, Bool)] = []
        var fields = [HeaderField](repeating: HeaderField(name: .empty, value: .empty), count: 16)
        while offset < all.count {
            var head = RequestHead()
            let status = all.withUnsafeBytes { buf in
                fields.withUnsafeMutableBufferPointer {
                    parseRequestHead(UnsafeRawBufferPointer(rebasing: buf[offset...]), headers: $0, into: &head)
                }
            }
            XCTAssertEqual(status, .complete)
            guard status == .complete else { return }
            let text = { (r: ByteRange) in
                String(decoding: all[(offset + Int(r.start))..<(offset + Int(r.end))], as: UTF8.self)
            }
            seen.append((text(head.path), text(head.host), head.keepAlive))
            offset += Int(head.headLength) + Int(max(head.contentLength, 0))
        }
        XCTAssertEqual(seen.map { $0.0 }, ["/one", "/two", "/three"])
        XCTAssertEqual(seen.map { $0.1 }, ["a", "b", "c"])
        XCTAssertEqual(seen.map { $0.2 }, [true, true, false])
        XCTAssertEqual(offset, all.count)
    }

    func testUpgrade() {
        let r = parseRequest("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
            + "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: k\r\n\r\n")
        XCTAssertEqual(r.status, .complete)
        XCTAssertTrue(r.head.isUpgrade)
        XCTAssertEqual(r.flagged(.hopByHop), ["Connection"])

        // Upgrade without the Connection token, and in HTTP/1.0: not an upgrade; Upgrade dropped.
        for text in ["GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
                     "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"] {
            let r = parseRequest(text)
            XCTAssertEqual(r.status, .complete, text)
            XCTAssertFalse(r.head.isUpgrade, text)
            XCTAssertTrue(r.flagged(.hopByHop).contains("Upgrade"), text)
        }
        // The token without an Upgrade field.
        XCTAssertFalse(parseRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n").head.isUpgrade)
        // h2c is not honoured (Envoy): an HTTP/1.1 request; Upgrade and HTTP2-Settings dropped.
        let h2c = parseRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            + "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
        XCTAssertEqual(h2c.status, .complete)
        XCTAssertFalse(h2c.head.isUpgrade)
        XCTAssertEqual(Set(h2c.flagged(.hopByHop)), ["Connection", "Upgrade", "HTTP2-Settings"])
    }

    func testExpectContinue() {
        XCTAssertTrue(parseRequest("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 9\r\n\r\n").head.expectContinue)
        XCTAssertFalse(parseRequest("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n").head.expectContinue)
        XCTAssertFalse(parseRequest("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").head.expectContinue)
    }

    func testHopByHopAndRewrittenFlags() {
        let r = parseRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Secret, close, Content-Length, host\r\n"
            + "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\n"
            + "x-secret: 1\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Request-Id: abc\r\n"
            + "x-forwarded-for: 2.2.2.2\r\nTransfer-Encoding: chunked\r\nAccept: */*\r\n\r\n")
        XCTAssertEqual(r.status, .complete)
        XCTAssertEqual(r.flagged(.hopByHop),
                       ["Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "x-secret"])
        XCTAssertEqual(r.flagged(.rewritten),
                       ["X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id", "x-forwarded-for"])
        XCTAssertEqual(r.flagged(.forwardedFor), ["X-Forwarded-For", "x-forwarded-for"])
        XCTAssertEqual(r.head.xForwardedForIndex, 7)
        XCTAssertEqual(r.head.xRequestIdIndex, 9)
        XCTAssertFalse(r.head.keepAlive)
        XCTAssertTrue(r.head.isChunked)
    }

    /// Feeding the head one byte more at a time: `.incomplete` until the last byte, then the
    /// same result as parsing it whole.
    func testByteAtATime() {
        let texts = [
            "GET /a?b HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
            "\r\nPOST http://h/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ]
        for text in texts {
            let bytes = Array(text.utf8)
            for n in 0..<bytes.count {
                let r = parseRequest(bytes: Array(bytes[0..<n]))
                XCTAssertEqual(r.status, .incomplete, "\(text) cut at \(n)")
            }
            let whole = parseRequest(bytes: bytes)
            XCTAssertEqual(whole.status, .complete, text)
            XCTAssertEqual(Int(whole.head.headLength), bytes.count)
        }
        // Validation runs once the head is complete; then the error is reported.
        let bad = Array("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n".utf8)
        XCTAssertEqual(parseRequest(bytes: bad + Array("\r\n".utf8)).status, .error(.whitespaceBeforeColon))
    }
}
