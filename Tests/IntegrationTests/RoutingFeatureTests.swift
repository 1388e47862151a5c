// Istio routing features end to end (istio-semantics.md §1.3–1.5): header, method, query and
// regex matches, direct responses, redirects, tls.httpsRedirect, route timeouts (504), and a
// destination subset no DestinationRule defines (503).

import Foundation
import XCTest

final class RoutingFeatureTests: IntegrationTestCase {
    private func start() throws -> (Ingressd, DemoUpstream, DemoUpstream) {
        let a = try harness.startUpstream("svc-a")
        let b = try harness.startUpstream("svc-b")
        let port = try freeTCPPort()
        let config = WorkshopConfig.documents([
            """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata:
              name: gw
            spec:
              servers:
              - port:
                  number: \(port)
                  name: http
                  protocol: HTTP
                hosts: ["*.example.test"]
              - port:
                  number: \(port)
                  name: http-secure-only
                  protocol: HTTP
                hosts: ["secure.example.org"]
                tls:
                  httpsRedirect: true
            """,
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: features
            spec:
              hosts: ["app.example.test"]
              gateways: ["gw"]
              http:
              - name: by-header
                match:
                - headers:
                    x-canary:
                      exact: "yes"
                route:
                - destination: {host: svc-b, port: {number: 80}}
              - name: by-method-and-query
                match:
                - method: {exact: POST}
                  queryParams:
                    flavour: {regex: "b[a-z]+"}
                route:
                - destination: {host: svc-b, port: {number: 80}}
              - name: regex-path
                match:
                - uri: {regex: "/items/[0-9]+"}
                route:
                - destination: {host: svc-b, port: {number: 80}}
              - name: teapot
                match:
                - uri: {exact: /teapot}
                directResponse:
                  status: 418
                  body: {string: "short and stout"}
              - name: moved
                match:
                - uri: {prefix: /old/}
                redirect:
                  uri: /new/place
                  redirectCode: 308
              - name: slow
                match:
                - uri: {prefix: /slow}
                timeout: 0.5s
                route:
                - destination: {host: svc-a, port: {number: 80}}
              - name: missing-subset
                match:
                - uri: {prefix: /nosubset}
                route:
                - destination: {host: svc-a, port: {number: 80}, subset: nope}
              - route:
                - destination: {host: svc-a, port: {number: 80}}
            """,
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: secure
            spec:
              hosts: ["secure.example.org"]
              gateways: ["gw"]
              http:
              - route:
                - destination: {host: svc-a, port: {number: 80}}
            """,
            WorkshopConfig.serviceEntry(name: "svc-a", servicePort: 80, endpoints: [(a.port, [:])]),
            WorkshopConfig.serviceEntry(name: "svc-b", servicePort: 80, endpoints: [(b.port, [:])]),
        ])
        let path = try harness.write("features.yaml", config)
        return (try harness.startIngressd(configs: [path], listenPort: port), a, b)
    }

    func testMatchConditions() throws {
        let (gw, _, _) = try start()
        let host = "app.example.test"
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/x", host: host)), "svc-a")
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/x", host: host, ["-H", "x-canary: yes"])), "svc-b")
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/x", host: host, ["-H", "x-canary: YES"])), "svc-a",
                       "header values match case-sensitively")
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/x?flavour=banana", host: host, ["-X", "POST"])), "svc-b")
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/x?flavour=banana", host: host)), "svc-a", "GET does not match")
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/x?flavour=abanana", host: host, ["-X", "POST"])), "svc-a",
                       "query regex is a full match")
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/items/42", host: host)), "svc-b")
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/items/42/edit", host: host)), "svc-a",
                       "uri regex is a full match of the path")
    }

    func testLocalAnswers() throws {
        let (gw, a, _) = try start()
        let host = "app.example.test"
        let teapot = try harness.curl(gw.url + "/teapot", host: host)
        XCTAssertEqual(teapot.status, 418)
        XCTAssertEqual(teapot.text, "short and stout")

        let moved = try harness.curl(gw.url + "/old/thing?q=1", host: host)
        XCTAssertEqual(moved.status, 308)
        XCTAssertEqual(moved.header("location"), "http://app.example.test/new/place?q=1")

        let secure = try harness.curl(gw.url + "/path?x=1", host: "secure.example.org:8080")
        XCTAssertEqual(secure.status, 301)
        XCTAssertEqual(secure.header("location"), "https://secure.example.org/path?x=1")

        let missing = try harness.curl(gw.url + "/nosubset", host: host)
        XCTAssertEqual(missing.status, 503, "a subset no DestinationRule defines is Envoy's cluster_not_found")
        usleep(200_000)
        XCTAssertFalse(a.requests.contains { $0.contains("/nosubset") || $0.contains("/teapot") || $0.contains("/old/") },
                       "local answers never reach an upstream: \(a.requests)")
    }

    func testRouteTimeoutIs504() throws {
        let (gw, _, _) = try start()
        let started = Date()
        let slow = try harness.curl(gw.url + "/slow/delay/3000", host: "app.example.test")
        XCTAssertEqual(slow.status, 504, slow.text)
        XCTAssertEqual(slow.text, "upstream request timeout")
        let took = Date().timeIntervalSince(started)
        // The route says 0.5s and the worker's timer wheel has millisecond ticks: the 504 comes
        // after 0.5 s and well before the next second (a once-a-second sweep fired anywhere
        // between 0.5 and 1.5 s).
        XCTAssertGreaterThanOrEqual(took, 0.5, "not before the route timeout")
        XCTAssertLessThan(took, 0.9, "the route timeout fires on time, not on a 1 s sweep")
        // The client connection and the gateway keep working.
        XCTAssertEqual(try harness.curl(gw.url + "/slow", host: "app.example.test").status, 200)
    }
}
