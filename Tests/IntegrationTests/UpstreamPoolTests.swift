// Pooled upstream connections (Sources/Proxy/UpstreamPools.swift): idle ones close after the
// idle timeout, and a burst leaves at most the per-endpoint cap of them open (the hardening
// audit saw 1,400 idle upstream sockets still open 10 minutes after a burst).

import Foundation
import XCTest

final class UpstreamPoolTests: IntegrationTestCase {
    private func startGateway(environment: [String: String]) throws -> (Ingressd, DemoUpstream) {
        let upstream = try harness.startUpstream("pool")
        let port = try freeTCPPort()
        let config = WorkshopConfig.documents([
            WorkshopConfig.httpGateway(port: port, hosts: ["pool.test"]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: pool
            spec:
              hosts: ["pool.test"]
              gateways: ["gw"]
              http:
              - route:
                - destination:
                    host: pool
                    port:
                      number: 80
            """,
            WorkshopConfig.serviceEntry(name: "pool", servicePort: 80, endpoints: [(upstream.port, [:])]),
        ])
        let path = try harness.write("pool.yaml", config)
        let gw = try harness.startIngressd(configs: [path], listenPort: port, workers: 1, environment: environment)
        return (gw, upstream)
    }

    /// Established TCP connections whose remote port is `port` (from /proc/net/tcp and tcp6):
    /// the gateway's connections to the upstream.
    private func establishedConnections(toPort port: UInt16) -> Int {
        var count = 0
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            // Read to EOF: /proc files report size 0, and a one-shot read may stop at a page.
            guard let handle = FileHandle(forReadingAtPath: file) else { continue }
            let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            handle.closeFile()
            for line in text.split(separator: "\n").dropFirst() {
                let cols = line.split(separator: " ", omittingEmptySubsequences: true)
                guard cols.count > 3, cols[3] == "01" else { continue }   // ESTABLISHED
                let remote = cols[2].split(separator: ":")
                if remote.count == 2, UInt16(remote[1], radix: 16) == port { count += 1 }
            }
        }
        return count
    }


    /// `requests` concurrent GETs, each read to its end (a load generator stopping with
    /// requests in flight would close them, and the gateway then closes their upstreams too).
    private func burst(_ gw: Ingressd, requests: Int, path: String) throws {
        let script = try harness.write("burst.py", """
        import http.client, sys, threading
        port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
        ok = []
        def one():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            c.request("GET", path, headers={"Host": "pool.test"})
            r = c.getresponse(); r.read()
            if r.status == 200: ok.append(1)
            c.close()
        ts = [threading.Thread(target=one) for _ in range(n)]
        [t.start() for t in ts]; [t.join() for t in ts]
        print(len(ok))
        """)
        let run = try harness.run("/usr/bin/env", ["python3", script, String(gw.listenPort), String(requests), path], timeout: 60)
        XCTAssertEqual(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines), String(requests), run.output)
    }

    func testIdleUpstreamConnectionsCloseAfterTheIdleTimeout() throws {
        let (gw, upstream) = try startGateway(environment: ["INGRESSD_UPSTREAM_IDLE_TIMEOUT_MS": "1500"])
        try burst(gw, requests: 20, path: "/delay/100")
        let pooled = establishedConnections(toPort: upstream.port)
        XCTAssertGreaterThan(pooled, 1, "the burst left pooled upstream connections")
        var left = pooled
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && left > 0 {
            usleep(200_000)
            left = establishedConnections(toPort: upstream.port)
        }
        XCTAssertEqual(left, 0, "idle pooled connections are closed after the idle timeout")
        XCTAssertEqual(try harness.curl(gw.url + "/", host: "pool.test").status, 200, "and new ones are opened")
    }

    func testABurstLeavesAtMostTheIdleCapOpen() throws {
        // The cap (1024 by default, Envoy's max_connections) lowered to 256 so that a burst of
        // 300 concurrent slow requests — 300 upstream connections at once — passes it.
        let (gw, upstream) = try startGateway(environment: ["INGRESSD_UPSTREAM_IDLE_CAP": "256"])
        try burst(gw, requests: 300, path: "/delay/300")
        usleep(300_000)
        let idle = establishedConnections(toPort: upstream.port)
        XCTAssertLessThanOrEqual(idle, 256, "at most the cap (256 here) idle connections per endpoint per worker")
        XCTAssertGreaterThan(idle, 100, "the pool still keeps connections for reuse")
    }
}
