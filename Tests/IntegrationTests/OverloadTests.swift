// Overload protection for the one resource slow clients can pile up in a worker: buffers that
// hold partial request heads. Past INGRESSD_MAX_LARGE_HEAD_BUFFERS (default 2048 per worker,
// 160 MiB) a head that needs an 80 KiB buffer is refused with 431 and its connection closed; the
// worker and the connections already admitted keep working.

import Foundation
import XCTest

final class OverloadTests: IntegrationTestCase {
    func testPartialLargeHeadsPastTheBudgetAreShed() throws {
        let shop = try Workshop.start(harness, workers: 1, extraArgs: ["--header-timeout", "20s"],
                                      environment: ["INGRESSD_MAX_LARGE_HEAD_BUFFERS": "3"])
        // Each client sends 6 KiB of a head (more than the 4 KiB first buffer), then stalls.
        let partial = "GET /kiali/x HTTP/1.1\r\nHost: dashboard.example.com\r\n"
            + (0..<12).map { "x-pad-\($0): " + String(repeating: "p", count: 500) + "\r\n" }.joined()
        var held: [RawConnection] = []
        for _ in 0..<3 {
            let c = try RawConnection(port: shop.listenPort, timeout: 2)
            c.send(String(partial.prefix(3000)))
            usleep(50_000)
            c.send(String(partial.dropFirst(3000)))
            held.append(c)
        }
        usleep(200_000)
        let shed = try RawConnection(port: shop.listenPort, timeout: 5)
        shed.send(String(partial.prefix(3000)))
        usleep(50_000)
        shed.send(String(partial.dropFirst(3000)))
        let reply = String(decoding: shed.read(atLeast: Int.max), as: UTF8.self)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 431"), "the fourth large partial head is refused: \(reply)")
        // The admitted ones complete normally.
        held[0].send("\r\n")
        XCTAssertTrue(held[0].read(until: "body-sha256").contains("upstream: kiali"))
        // Small requests are never refused.
        XCTAssertEqual(try harness.curl(shop.url + "/kiali/ok", host: "dashboard.example.com").status, 200)
    }
}
