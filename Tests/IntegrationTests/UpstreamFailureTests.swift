// Upstream failures and refused requests (DESIGN.md §8): 503 without endpoints, 503 when the
// upstream refuses the connection, 400 for request smuggling.

import Foundation
import XCTest

final class UpstreamFailureTests: IntegrationTestCase {
    /// A Gateway for empty.test and refused.test, VSs to services `empty` (a ServiceEntry without
    /// endpoints) and `refused` (an endpoint on a port nobody listens on).
    private func startGateway() throws -> Ingressd {
        let port = try freeTCPPort()
        let deadPort = try freeTCPPort()
        let config = WorkshopConfig.documents([
            WorkshopConfig.httpGateway(port: port, hosts: ["*.test"]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: empty
            spec:
              hosts: ["empty.test"]
              gateways: ["gw"]
              http:
              - route:
                - destination:
                    host: empty
                    port:
                      number: 80
            """,
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: refused
            spec:
              hosts: ["refused.test"]
              gateways: ["gw"]
              http:
              - route:
                - destination:
                    host: refused
                    port:
                      number: 80
            """,
            WorkshopConfig.serviceEntry(name: "empty", servicePort: 80, endpoints: []),
            WorkshopConfig.serviceEntry(name: "refused", servicePort: 80, endpoints: [(deadPort, [:])]),
        ])
        let path = try harness.write("failures.yaml", config)
        return try harness.startIngressd(configs: [path], listenPort: port)
    }

    func testNoEndpointsIs503NoHealthyUpstream() throws {
        let gateway = try startGateway()
        let response = try harness.curl(gateway.url + "/", host: "empty.test")
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.text, "no healthy upstream")
    }

    func testConnectionRefusedIs503() throws {
        let gateway = try startGateway()
        let response = try harness.curl(gateway.url + "/", host: "refused.test")
        XCTAssertEqual(response.status, 503, response.text)
        // ingressd is still serving afterwards.
        XCTAssertEqual(try harness.curl(gateway.url + "/", host: "empty.test").status, 503)
        XCTAssertTrue(gateway.child.isRunning)
    }
}

final class SmugglingTests: IntegrationTestCase {
    /// Content-Length together with Transfer-Encoding is refused, never guessed (DESIGN.md §8):
    /// 400, the connection closed, and nothing reaches the upstream.
    func testContentLengthWithTransferEncodingIs400() throws {
        let shop = try Workshop.start(harness)
        let request = "POST /kiali/x HTTP/1.1\r\n"
            + "Host: dashboard.example.com\r\n"
            + "Content-Length: 6\r\n"
            + "Transfer-Encoding: chunked\r\n"
            + "\r\n"
            + "0\r\n\r\n"
            + "GET /kiali/smuggled HTTP/1.1\r\nHost: dashboard.example.com\r\n\r\n"
        let reply = try RawHTTP.exchange(port: shop.listenPort, send: Array(request.utf8), timeout: 5)
        XCTAssertEqual(RawHTTP.statusCode(reply), 400, String(decoding: reply, as: UTF8.self))
        let text = String(decoding: reply, as: UTF8.self)
        XCTAssertEqual(text.components(separatedBy: "HTTP/1.1 ").count - 1, 1,
                       "one response, then the connection is closed: \(text)")
        usleep(200_000)
        for upstream in shop.upstreams {
            XCTAssertEqual(upstream.requests, [], "\(upstream.name) saw a smuggled request")
        }
    }

    func testMissingHostIs400() throws {
        let shop = try Workshop.start(harness)
        let reply = try RawHTTP.exchange(port: shop.listenPort,
                                         send: Array("GET / HTTP/1.1\r\n\r\n".utf8), timeout: 5)
        XCTAssertEqual(RawHTTP.statusCode(reply), 400, String(decoding: reply, as: UTF8.self))
    }
}
