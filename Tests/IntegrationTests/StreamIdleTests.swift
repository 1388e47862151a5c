// Envoy's stream_idle_timeout (--stream-idle-timeout; hardening issue, item 4): once a request
// head has arrived, an exchange with no byte moving either way ends — a stalled request body, a
// silent upstream (no route timeout, Istio's default) and a stalled response body no longer pin
// a client slot, an upstream connection and buffers forever.

import Foundation
import XCTest

final class StreamIdleTests: IntegrationTestCase {
    func testStalledRequestBodyGets408() throws {
        let shop = try Workshop.start(harness, extraArgs: ["--stream-idle-timeout", "500ms"])
        let conn = try RawConnection(port: shop.listenPort, timeout: 6)
        let started = Date()
        conn.send("POST /kiali/upload HTTP/1.1\r\nHost: dashboard.example.com\r\nContent-Length: 100\r\n\r\n0123456789")
        let reply = String(decoding: conn.read(atLeast: Int.max), as: UTF8.self)
        let took = Date().timeIntervalSince(started)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 408"), reply)
        XCTAssertTrue(reply.hasSuffix("stream timeout"), reply)
        XCTAssertGreaterThanOrEqual(took, 0.5)
        XCTAssertLessThan(took, 3, "the stream idle timeout, not the 5 s upstream delay or forever")
    }

    func testSilentUpstreamGets408AndAStalledResponseIsCut() throws {
        let shop = try Workshop.start(harness, extraArgs: ["--stream-idle-timeout", "700ms"])
        let started = Date()
        let silent = try harness.curl(shop.url + "/kiali/delay/5000", host: "dashboard.example.com")
        XCTAssertEqual(silent.status, 408, silent.text)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
        // Activity keeps an exchange alive: a 3 MiB response streamed to a reader keeps moving.
        let big = try harness.curl(shop.url + "/kiali/bytes/3145728", host: "dashboard.example.com")
        XCTAssertEqual(big.status, 200)
        XCTAssertEqual(big.body.count, 3_145_728)
        // A client that stops reading a large response: its connection is closed after the
        // timeout (the send to it stops making progress), not held open.
        let reader = try RawConnection(port: shop.listenPort, timeout: 10)
        reader.send("GET /kiali/bytes/67108864 HTTP/1.1\r\nHost: dashboard.example.com\r\n\r\n")
        usleep(3_000_000)   // the gateway fills the socket buffers and stalls; no bytes move
        let drained = reader.read(atLeast: Int.max)   // read what was sent, then EOF
        XCTAssertLessThan(drained.count, 67_108_864, "the stalled response was cut, not completed")
        XCTAssertTrue(String(decoding: drained.prefix(12), as: UTF8.self).hasPrefix("HTTP/1.1 200"))
    }
}
