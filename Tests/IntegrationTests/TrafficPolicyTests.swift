// DestinationRule traffic policies served by the real binary (Sources/Proxy/LoadBalancer.swift,
// CircuitBreakers.swift): consistent hashing on a header and on a generated cookie across
// demo upstreams, tcp.maxConnections with http1MaxPendingRequests overflowing as 503 UO with
// x-envoy-overloaded, and maxRequestsPerConnection: 1 opening a connection per request.

import Foundation
import XCTest

final class TrafficPolicyTests: IntegrationTestCase {
    static let cluster = "outbound|80||tp.default.svc.cluster.local"

    /// A gateway for host tp.test routing to service `tp` (one endpoint per upstream) with a
    /// DestinationRule whose trafficPolicy is `policy` (YAML indented for `trafficPolicy:`).
    /// `retries`: the rule's `retries` block (flow style), if any.
    private func startGateway(upstreams names: [String], policy: String, workers: Int = 2,
                              retries: String? = nil) throws -> (Ingressd, [DemoUpstream]) {
        let upstreams = try names.map { try harness.startUpstream($0) }
        let port = try freeTCPPort()
        let config = WorkshopConfig.documents([
            WorkshopConfig.httpGateway(port: port, hosts: ["tp.test"]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: tp
            spec:
              hosts: ["tp.test"]
              gateways: ["gw"]
              http:
              - route:
                - destination:
                    host: tp
                    port:
                      number: 80
            """ + (retries.map { "\n    retries: \($0)\n" } ?? ""),
            WorkshopConfig.serviceEntry(name: "tp", servicePort: 80, endpoints: upstreams.map { ($0.port, [:]) }),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: DestinationRule
            metadata:
              name: tp
            spec:
              host: tp
              trafficPolicy:
            \(policy)
            """,
        ])
        let path = try harness.write("tp.yaml", config)
        let gw = try harness.startIngressd(configs: [path], listenPort: port, workers: workers)
        return (gw, upstreams)
    }

    func testHeaderHashSendsTheSameValueToTheSameUpstream() throws {
        let (gw, _) = try startGateway(upstreams: ["a", "b", "c"], policy: """
                loadBalancer:
                  consistentHash:
                    httpHeaderName: x-user
            """)
        var used: Set<String> = []
        for user in 0..<12 {
            var seen: Set<String> = []
            for _ in 0..<4 {
                let r = try harness.curl(gw.url + "/", host: "tp.test", ["-H", "X-User: user-\(user)"])
                XCTAssertEqual(r.status, 200)
                seen.insert(servedBy(r) ?? "?")
            }
            XCTAssertEqual(seen.count, 1, "user-\(user) reached \(seen)")
            used.formUnion(seen)
        }
        XCTAssertGreaterThan(used.count, 1, "different users spread over the upstreams")
    }

    func testCookieHashSetsTheCookieAndFollowsIt() throws {
        let (gw, _) = try startGateway(upstreams: ["a", "b", "c"], policy: """
                loadBalancer:
                  consistentHash:
                    httpCookie:
                      name: session
                      path: /
                      ttl: 60s
            """)
        let first = try harness.curl(gw.url + "/", host: "tp.test")
        XCTAssertEqual(first.status, 200)
        let setCookie = try XCTUnwrap(first.header("set-cookie"), "the gateway generates the hash cookie")
        let pattern = #"^session="[0-9a-f]{16}"; Max-Age=60; Path=/; HttpOnly$"#
        XCTAssertNotNil(setCookie.range(of: pattern, options: .regularExpression), setCookie)
        let value = String(setCookie.dropFirst("session=".count).prefix { $0 != ";" })
        let target = try XCTUnwrap(servedBy(first))
        for _ in 0..<6 {
            let r = try harness.curl(gw.url + "/", host: "tp.test", ["-H", "Cookie: other=1; session=\(value)"])
            XCTAssertEqual(servedBy(r), target, "the cookie keeps the client on its upstream")
            XCTAssertNil(r.header("set-cookie"), "no new cookie once the request carries one")
        }
    }

    func testMaxConnectionsOverflowGets503UOWithOverloadedHeader() throws {
        let (gw, _) = try startGateway(upstreams: ["slow"], policy: """
                connectionPool:
                  tcp:
                    maxConnections: 1
                  http:
                    http1MaxPendingRequests: 1
            """, workers: 1)
        // Five concurrent slow requests: one takes the connection, one waits for it, three
        // overflow.
        let script = try harness.write("concurrent.py", """
            import http.client, json, sys, threading, time
            port, n = int(sys.argv[1]), int(sys.argv[2])
            out = [None] * n
            def go(i):
                time.sleep(0.05 * (i > 0))
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                c.request("GET", "/delay/1500", headers={"Host": "tp.test"})
                r = c.getresponse()
                body = r.read().decode(errors="replace")
                out[i] = [r.status, r.getheader("x-envoy-overloaded") or "", body[:100]]
            ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
            for t in ts: t.start()
            for t in ts: t.join()
            print(json.dumps(out))
            """)
        let run = try harness.run("python3", [script, String(gw.listenPort), "5"], timeout: 30)
        XCTAssertEqual(run.status, 0, run.stderr)
        let results = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[Any]])
        let ok = results.filter { ($0[0] as? Int) == 200 }
        let overflow = results.filter { ($0[0] as? Int) == 503 }
        XCTAssertEqual(ok.count, 2, "one on the connection, one pending: \(results)")
        XCTAssertEqual(overflow.count, 3, "\(results)")
        for o in overflow {
            XCTAssertEqual(o[1] as? String, "true", "x-envoy-overloaded")
            XCTAssertEqual(o[2] as? String, "upstream connect error or disconnect/reset before headers. reset reason: overflow")
        }
        // (prometheus_client names counter samples NAME_total.)
        let values = try harness.prometheusValues(gw)
        XCTAssertEqual(values["envoy_cluster_upstream_rq_pending_overflow_total|\(Self.cluster)|||"], 3)
        XCTAssertEqual(values["envoy_cluster_upstream_cx_overflow_total|\(Self.cluster)|||"], 4)
        XCTAssertEqual(values["envoy_cluster_upstream_cx_total|\(Self.cluster)|||"], 1, "never more than one connection")
        XCTAssertEqual(values["istio_requests_total|tp|503|UO|"], 3)
        // The pooled connection still counts against maxConnections.
        XCTAssertEqual(values["envoy_cluster_circuit_breakers_default_cx_open|\(Self.cluster)|||"], 1)
    }

    func testHTTP2MaxRequestsBoundsRequestsInFlight() throws {
        // Envoy's max_requests: two requests in flight to the cluster at most, whatever the
        // connections; the third of three concurrent slow requests overflows.
        let (gw, _) = try startGateway(upstreams: ["slow"], policy: """
                connectionPool:
                  http:
                    http2MaxRequests: 2
            """, workers: 1)
        let script = try harness.write("inflight.py", """
            import http.client, json, sys, threading, time
            port, n = int(sys.argv[1]), int(sys.argv[2])
            out = [None] * n
            def go(i):
                time.sleep(0.1 * i)
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                c.request("GET", "/delay/1500", headers={"Host": "tp.test"})
                r = c.getresponse()
                r.read()
                out[i] = [r.status, r.getheader("x-envoy-overloaded") or ""]
            ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
            for t in ts: t.start()
            for t in ts: t.join()
            print(json.dumps(out))
            """)
        let run = try harness.run("python3", [script, String(gw.listenPort), "3"], timeout: 30)
        XCTAssertEqual(run.status, 0, run.stderr)
        let results = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[Any]])
        XCTAssertEqual(results.map { $0[0] as? Int }, [200, 200, 503], "\(results)")
        XCTAssertEqual(results.last?[1] as? String, "true", "x-envoy-overloaded")
        let values = try harness.prometheusValues(gw)
        XCTAssertEqual(values["envoy_cluster_upstream_rq_pending_overflow_total|\(Self.cluster)|||"], 1)
        // Once they are done the budget is back.
        XCTAssertEqual(try harness.curl(gw.url + "/", host: "tp.test").status, 200)
    }

    func testMaxRequestsPerConnectionOneOpensAConnectionPerRequest() throws {
        let (gw, _) = try startGateway(upstreams: ["a"], policy: """
                connectionPool:
                  http:
                    maxRequestsPerConnection: 1
            """, workers: 1)
        for _ in 0..<5 {
            XCTAssertEqual(try harness.curl(gw.url + "/", host: "tp.test").status, 200)
        }
        let values = try harness.prometheusValues(gw)
        XCTAssertEqual(values["envoy_cluster_upstream_cx_total|\(Self.cluster)|||"], 5)
    }

    func testMaxRetriesBoundsConcurrentRetries() throws {
        let (gw, _) = try startGateway(upstreams: ["slow"], policy: """
                connectionPool:
                  http:
                    maxRetries: 1
            """, workers: 1, retries: "{attempts: 2, perTryTimeout: 150ms, retryOn: 5xx}")
        // Two concurrent requests whose tries all time out: the first retry decision takes the
        // only retry, the second is refused (and answered 504 at once).
        let script = try harness.write("two.py", """
            import http.client, sys, threading
            port = int(sys.argv[1])
            def go():
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                c.request("GET", "/delay/2000", headers={"Host": "tp.test"})
                print(c.getresponse().status, flush=True)
            ts = [threading.Thread(target=go) for _ in range(2)]
            for t in ts: t.start()
            for t in ts: t.join()
            """)
        let run = try harness.run("python3", [script, String(gw.listenPort)], timeout: 30)
        XCTAssertEqual(run.stdout.split(separator: "\n").sorted(), ["504", "504"], run.stderr)
        let values = try harness.prometheusValues(gw)
        XCTAssertEqual(values["envoy_cluster_upstream_rq_retry_overflow_total|\(Self.cluster)|||"], 1)
        XCTAssertEqual(values["envoy_cluster_upstream_rq_retry_total|\(Self.cluster)|||"], 2,
                       "only the request holding the retry retried (twice)")
    }

    func testIdleTimeoutClosesPooledConnectionsOfTheCluster() throws {
        let (gw, upstreams) = try startGateway(upstreams: ["a"], policy: """
                connectionPool:
                  http:
                    idleTimeout: 1s
            """, workers: 1)
        XCTAssertEqual(try harness.curl(gw.url + "/", host: "tp.test").status, 200)
        XCTAssertEqual(establishedConnections(toPort: upstreams[0].port), 1, "the connection is pooled")
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && establishedConnections(toPort: upstreams[0].port) > 0 { usleep(100_000) }
        XCTAssertEqual(establishedConnections(toPort: upstreams[0].port), 0, "closed after the cluster's idleTimeout")
    }

    /// Established TCP connections to 127.0.0.1:`port` (from /proc/net/tcp and tcp6).
    private func establishedConnections(toPort port: UInt16) -> Int {
        var count = 0
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let handle = FileHandle(forReadingAtPath: file) else { continue }
            let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            handle.closeFile()
            for line in text.split(separator: "\n").dropFirst() {
                let cols = line.split(separator: " ", omittingEmptySubsequences: true)
                guard cols.count > 3, cols[3] == "01" else { continue }
                let remote = cols[2].split(separator: ":")
                if remote.count == 2, UInt16(remote[1], radix: 16) == port { count += 1 }
            }
        }
        return count
    }
}
