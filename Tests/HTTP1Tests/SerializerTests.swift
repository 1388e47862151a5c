import HTTP1
import XCTest

func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

final class SerializerTests: XCTestCase {
    func forward(_ text: String, client: String = "10.0.0.7", proto: ForwardedProto = .http,
                 generated: String = "gen-id", target: String? = nil, authority: String? = nil,
                 capacity: Int = 65536) -> String? {
        let r = parseRequest(text)
        XCTAssertEqual(r.status, .complete, text)
        let c = Array(client.utf8), g = Array(generated.utf8)
        let t = target.map { Array($0.utf8) }, a = authority.map { Array($0.utf8) }
        return written(capacity: capacity) { out in
            r.bytes.withUnsafeBytes { src in
                r.fields.withUnsafeBufferPointer { fields in
                    c.withUnsafeBytes { c in
                        g.withUnsafeBytes { g in
                            withOptionalBytes(t) { tp in
                                withOptionalBytes(a) { ap in
                                    serializeForwardedRequestHead(
                                        source: src, head: r.head, headers: fields, clientAddress: c,
                                        proto: proto, generatedRequestId: g, target: tp, authority: ap,
                                        into: out)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func testForwardedRequestCommonCase() {
        let text = "GET /p?q=1 HTTP/1.1\r\nHost: shop\r\nUser-Agent: curl\r\nAccept:*/*\r\n\r\n"
        XCTAssertEqual(forward(text),
            "GET /p?q=1 HTTP/1.1\r\nHost: shop\r\nUser-Agent: curl\r\nAccept:*/*\r\n"
            + "x-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\nx-request-id: gen-id\r\n\r\n")
    }

    func testForwardedRequestDropsAndRewrites() {
        let text = "POST /up HTTP/1.1\r\nHost: shop\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
            + "X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nKeep-Alive: 5\r\nX-Request-Id: rid-1\r\n"
            + "X-Forwarded-Proto: http\r\nx-forwarded-for: 3.3.3.3\r\nContent-Length: 2\r\nTE: trailers\r\n\r\nhi"
        XCTAssertEqual(forward(text, proto: .https),
            "POST /up HTTP/1.1\r\nHost: shop\r\nContent-Length: 2\r\n"
            + "x-forwarded-for: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.7\r\nx-forwarded-proto: https\r\n"
            + "x-request-id: rid-1\r\n\r\n")
    }

    func testForwardedUpgradeAndRewrites() {
        let text = "GET /ws HTTP/1.1\r\nHost: a:80\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\n\r\n"
        XCTAssertEqual(forward(text, client: "::1"),
            "GET /ws HTTP/1.1\r\nHost: a:80\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            + "x-forwarded-for: ::1\r\nx-forwarded-proto: http\r\nx-request-id: gen-id\r\n"
            + "connection: upgrade\r\n\r\n")
        XCTAssertEqual(forward("GET /old?x HTTP/1.0\r\nHost: a\r\nAccept: */*\r\n\r\n",
                               target: "/new/old?x", authority: "b.internal"),
            "GET /new/old?x HTTP/1.0\r\nAccept: */*\r\nhost: b.internal\r\n"
            + "x-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\nx-request-id: gen-id\r\n\r\n")
        // Empty x-forwarded-for / x-request-id values are not kept.
        XCTAssertEqual(forward("GET / HTTP/1.1\r\nX-Forwarded-For:\r\nX-Request-Id:\r\nHost: a\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\n"
            + "x-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\nx-request-id: gen-id\r\n\r\n")
    }

    /// RFC 9112 §3.2.2: an absolute-form request is routed by its target's authority, so the
    /// proxy forwards it for that authority: origin-form target, Host replaced.
    func testForwardedAbsoluteFormCarriesTheTargetsAuthority() {
        let tail = "x-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\nx-request-id: gen-id\r\n\r\n"
        XCTAssertEqual(forward("GET http://a.example.com/x HTTP/1.1\r\nHost: b.example.com\r\nAccept: */*\r\n\r\n"),
            "GET /x HTTP/1.1\r\nAccept: */*\r\nhost: a.example.com\r\n" + tail)
        XCTAssertEqual(forward("GET HTTPS://a.example.com:8443/x/y?q=1&r HTTP/1.1\r\nHost: b\r\n\r\n"),
            "GET /x/y?q=1&r HTTP/1.1\r\nhost: a.example.com:8443\r\n" + tail)
        XCTAssertEqual(forward("GET http://a.example.com HTTP/1.0\r\n\r\n"),
            "GET / HTTP/1.0\r\nhost: a.example.com\r\n" + tail)
        XCTAssertEqual(forward("GET http://a.example.com?q HTTP/1.1\r\nHost: a.example.com\r\n\r\n"),
            "GET /?q HTTP/1.1\r\nhost: a.example.com\r\n" + tail)
        XCTAssertEqual(forward("OPTIONS http://a.example.com HTTP/1.1\r\nHost: a.example.com\r\n\r\n"),
            "OPTIONS * HTTP/1.1\r\nhost: a.example.com\r\n" + tail)
        // A route rewrite still wins over both.
        XCTAssertEqual(forward("GET http://a.example.com/x HTTP/1.1\r\nHost: b\r\n\r\n", target: "/y", authority: "c"),
            "GET /y HTTP/1.1\r\nhost: c\r\n" + tail)
    }

    func testForwardedRequestThatDoesNotFit() {
        let text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        let full = forward(text)!
        XCTAssertEqual(forward(text, capacity: full.utf8.count), full)
        XCTAssertNil(forward(text, capacity: full.utf8.count - 1))
    }

    func forwardResponse(_ text: String, _ connection: ConnectionDirective, capacity: Int = 65536) -> String? {
        let r = parseResponse(text)
        XCTAssertEqual(r.status, .complete, text)
        return written(capacity: capacity) { out in
            r.bytes.withUnsafeBytes { src in
                r.fields.withUnsafeBufferPointer {
                    serializeForwardedResponseHead(source: src, head: r.head, headers: $0,
                                                   connection: connection, into: out)
                }
            }
        }
    }

    func testForwardedResponse() {
        let text = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n"
            + "Server: up\r\n\r\nok"
        XCTAssertEqual(forwardResponse(text, .none), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: up\r\n\r\n")
        XCTAssertEqual(forwardResponse(text, .close),
                       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: up\r\nconnection: close\r\n\r\n")
        XCTAssertEqual(forwardResponse("HTTP/1.1 204 No Content\r\n\r\n", .keepAlive),
                       "HTTP/1.1 204 No Content\r\nconnection: keep-alive\r\n\r\n")
        XCTAssertEqual(forwardResponse("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", .none),
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nconnection: upgrade\r\n\r\n")
        XCTAssertNil(forwardResponse(text, .none, capacity: 20))
    }

    func local(_ status: UInt16, _ body: StaticString, close: Bool = false, omitBody: Bool = false) -> String? {
        let date = Array("Thu, 01 Jan 2026 00:00:00 GMT".utf8)
        return written { out in
            date.withUnsafeBytes {
                serializeLocalResponse(status: status, body: body, date: $0, closeConnection: close,
                                       omitBody: omitBody, into: out)
            }
        }
    }

    func testLocalResponses() {
        let date = "date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
        XCTAssertEqual(local(404, ""),
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\(date)server: istio-envoy\r\n\r\n")
        XCTAssertEqual(local(503, LocalReplyBody.noHealthyUpstream),
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n"
            + "\(date)server: istio-envoy\r\n\r\nno healthy upstream")
        XCTAssertEqual(local(504, LocalReplyBody.upstreamRequestTimeout),
            "HTTP/1.1 504 Gateway Timeout\r\ncontent-length: 24\r\ncontent-type: text/plain\r\n"
            + "\(date)server: istio-envoy\r\n\r\nupstream request timeout")
        XCTAssertEqual(local(400, LocalReplyBody.badRequest, close: true),
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text/plain\r\n"
            + "\(date)server: istio-envoy\r\nconnection: close\r\n\r\nBad Request")
        XCTAssertEqual(local(503, LocalReplyBody.noHealthyUpstream, omitBody: true),
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n"
            + "\(date)server: istio-envoy\r\n\r\n")
        let statuses: [(UInt16, String)] = [(408, "Request Timeout"), (413, "Payload Too Large"),
            (414, "URI Too Long"), (431, "Request Header Fields Too Large"), (502, "Bad Gateway"),
            (418, "Unknown"), (505, "HTTP Version Not Supported"), (501, "Not Implemented")]
        for (status, reason) in statuses {
            XCTAssertEqual(local(status, "x", close: true),
                "HTTP/1.1 \(status) \(reason)\r\ncontent-length: 1\r\ncontent-type: text/plain\r\n"
                + "\(date)server: istio-envoy\r\nconnection: close\r\n\r\nx")
        }
        XCTAssertNil(written(capacity: 40) { out in
            serializeLocalResponse(status: 404, body: "", date: UnsafeRawBufferPointer(start: nil, count: 0),
                                   closeConnection: false, into: out)
        })
    }

    func testRedirect() {
        let date = Array("D".utf8), location = Array("https://shop.example.com/cart?x=1".utf8)
        let text = written { out in
            date.withUnsafeBytes { d in
                location.withUnsafeBytes { l in
                    serializeRedirect(status: 301, location: l, date: d, closeConnection: false, into: out)
                }
            }
        }
        XCTAssertEqual(text, "HTTP/1.1 301 Moved Permanently\r\nlocation: https://shop.example.com/cart?x=1\r\n"
            + "content-length: 0\r\ndate: D\r\nserver: istio-envoy\r\n\r\n")
    }

    func testUUID() {
        let random: [UInt8] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                               0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF]
        let text = written { out in random.withUnsafeBytes { formatUUID(random: $0, into: out) } }
        XCTAssertEqual(text, "00112233-4455-4677-8899-aabbccddeeff")
        let ones = [UInt8](repeating: 0xFF, count: 16)
        XCTAssertEqual(written { out in ones.withUnsafeBytes { formatUUID(random: $0, into: out) } },
                       "ffffffff-ffff-4fff-bfff-ffffffffffff")
        XCTAssertNil(written(capacity: 35) { out in random.withUnsafeBytes { formatUUID(random: $0, into: out) } })
        XCTAssertNil(written { out in random.dropLast().withUnsafeBytes { formatUUID(random: $0, into: out) } })
    }

    func testGRPCStatusFieldOfAResponseHead() {
        func status(_ text: String) -> Int {
            Array(text.utf8).withUnsafeBytes { grpcStatusField($0) }
        }
        XCTAssertEqual(status("HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 14\r\n\r\n"), 14)
        XCTAssertEqual(status("HTTP/1.1 200 OK\r\nGRPC-Status:\t0\r\n\r\n"), 0)
        XCTAssertEqual(status("HTTP/1.1 200 OK\r\nx-grpc-status: 3\r\n\r\n"), -1, "another field's name")
        XCTAssertEqual(status("HTTP/1.1 200 OK\r\ngrpc-status: x\r\n\r\n"), -1)
        XCTAssertEqual(status("HTTP/1.1 200 OK\r\ngrpc-status: 99999\r\n\r\n"), -1)
        XCTAssertEqual(status("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), -1)
        XCTAssertEqual(status("HTTP/1.1 200 OK\r\ngrpc-status:"), -1, "cut short")
    }
}
