// Ambiguous framing and authority through the real binary (hardening issue, items 13 and 6):
// a transfer coding other than `chunked` is 501, a Host no authority can hold and a repeated
// Content-Length are 400, and none of them reaches an upstream; an absolute-form request is
// forwarded for the authority it was routed by.

import Foundation
import XCTest

final class FramingTests: IntegrationTestCase {
    /// Sends `request` on its own connection; returns the status and the whole reply.
    func exchange(_ shop: Workshop, _ request: String) throws -> (Int?, String) {
        let reply = try RawHTTP.exchange(port: shop.listenPort, send: Array(request.utf8), timeout: 5)
        return (RawHTTP.statusCode(reply), String(decoding: reply, as: UTF8.self))
    }

    func testAmbiguousFramingIsRefusedBeforeTheUpstream() throws {
        let shop = try Workshop.start(harness)
        let body = "3\r\nabc\r\n0\r\n\r\n"
        let cases: [(String, Int)] = [
            ("POST /kiali/x HTTP/1.1\r\nHost: dashboard.example.com\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + body, 501),
            ("POST /kiali/x HTTP/1.1\r\nHost: dashboard.example.com\r\nTransfer-Encoding: gzip\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n" + body, 501),
            ("POST /kiali/x HTTP/1.1\r\nHost: dashboard.example.com\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
            ("GET /kiali/x HTTP/1.1\r\nHost: dashboard.example.com evil.example\r\n\r\n", 400),
        ]
        for (request, status) in cases {
            let (got, text) = try exchange(shop, request)
            XCTAssertEqual(got, status, "\(request.debugDescription) -> \(text)")
            XCTAssertEqual(text.components(separatedBy: "HTTP/1.1 ").count - 1, 1,
                           "one response, then the connection is closed: \(text)")
        }
        // The same route serves a well-framed request (so "nothing reached it" means refused).
        let (ok, okText) = try exchange(shop, "POST /kiali/x HTTP/1.1\r\nHost: dashboard.example.com\r\n"
            + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body)
        XCTAssertEqual(ok, 200, okText)
        usleep(200_000)
        XCTAssertEqual(shop.kiali.requests, ["kiali POST /kiali/x body=3"])
        for upstream in [shop.frontendV1, shop.frontendV2, shop.tracing] {
            XCTAssertEqual(upstream.requests, [], "\(upstream.name) saw a refused request")
        }
    }

    /// RFC 9112 §3.2.2: routed by the target's authority, forwarded with that Host and an
    /// origin-form target, whatever Host the client sent.
    func testAbsoluteFormIsForwardedForItsAuthority() throws {
        let shop = try Workshop.start(harness)
        let (status, text) = try exchange(shop, "GET http://dashboard.example.com/kiali/abs?q=1 HTTP/1.1\r\n"
            + "Host: hipster.example.com\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(status, 200, text)
        XCTAssertTrue(text.contains("upstream: kiali "), text)
        XCTAssertTrue(text.contains("request: GET /kiali/abs?q=1 HTTP/1.1\n"), text)
        XCTAssertTrue(text.contains("\n  host: dashboard.example.com\n"), text)
        XCTAssertFalse(text.lowercased().contains("hipster.example.com"), text)
    }
}
