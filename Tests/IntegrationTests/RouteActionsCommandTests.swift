// `ingressd routes` shows route actions and cluster policies, for the table and for one request.

import Foundation
import XCTest

final class RouteActionsCommandTests: IntegrationTestCase {
    func testRoutesShowsTheActionsARequestGets() throws {
        let binary = Paths.ingressdBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError("ingressd binary not found at \(binary): run `swift build` or set INGRESSD_BIN")
        }
        let config = try harness.write("actions.yaml", """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 80, name: http, protocol: HTTP}
                hosts: ["*"]
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api}
            spec:
              hosts: [api.internal]
              ports: [{number: 80, name: http, protocol: HTTP}]
              resolution: STATIC
              endpoints: [{address: 127.0.0.1}]
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: api}
            spec:
              host: api.internal
              trafficPolicy:
                loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 60s}}}
                connectionPool: {tcp: {maxConnections: 50}, http: {maxRequestsPerConnection: 1}}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: shop}
            spec:
              hosts: [shop.example.com]
              gateways: [gw]
              http:
              - match: [{uri: {prefix: /api/}}]
                rewrite: {uri: /v2/}
                headers: {request: {set: {x-env: prod}}}
                retries: {attempts: 4, retryOn: "5xx"}
                fault: {abort: {httpStatus: 418, percentage: {value: 50}}}
                route: [{destination: {host: api.internal}}]
            """)
        let explained = try harness.run(binary, ["routes", "-c", config, "--request", "GET http://shop.example.com/api/cart?x=1"])
        XCTAssertEqual(explained.status, 0, explained.output)
        for line in ["route: default/shop/0.0",
                     "  policy: lb ring-hash on cookie user ttl 60s (ring 1024), max-connections 50, max-requests-per-connection 1",
                     "rewrite: uri \"/v2/\" (replaces the matched prefix)",
                     "upstream path: /v2/cart",
                     "request headers: set x-env \"prod\"",
                     "retries: 4 attempts on 5xx",
                     "fault: abort 418 for 50%"] {
            XCTAssertTrue(explained.stdout.contains(line + "\n"), "missing \(line) in\n\(explained.stdout)")
        }
        let table = try harness.run(binary, ["routes", "-c", config])
        XCTAssertEqual(table.status, 0, table.output)
        XCTAssertTrue(table.stdout.contains("       retries: 4 attempts on 5xx\n"), table.stdout)
        XCTAssertTrue(table.stdout.contains("outbound|80||api.internal connect-timeout 10000ms lb ring-hash on cookie user"), table.stdout)
    }
}
