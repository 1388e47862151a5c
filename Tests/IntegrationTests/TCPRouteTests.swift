// TCP routes and the splice paths, end to end: the real ingressd binary in front of
// examples/upstreams/bulk_upstream.py (a TCP echo server and an HTTP blob/echo server), with that
// script's client mode as the TCP client and curl as the HTTP client.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class TCPRouteTests: IntegrationTestCase {

    func startBulk(_ args: [String]) throws -> UInt16 { try harness.startBulkUpstream(args) }

    struct ClientResult: Decodable {
        var sent: Int
        var sent_sha256: String
        var received: Int
        var received_sha256: String?
        var banner: String?
        var end: String?
    }

    /// Runs the bulk client against `port` and decodes its JSON line.
    func client(port: UInt16, _ args: [String], timeout: TimeInterval = 120) throws -> ClientResult {
        let r = try harness.run(Paths.which("python3") ?? "/usr/bin/python3",
                                [Paths.bulkUpstream, "client", "--port", String(port)] + args, timeout: timeout)
        guard let line = r.stdout.split(separator: "\n").last, r.status == 0 else {
            throw HarnessError("client failed (\(r.status)): \(r.output)")
        }
        return try JSONDecoder().decode(ClientResult.self, from: Data(line.utf8))
    }

    /// A TCP Gateway server on a free port with a tcp route to `echo` (subsets v1/v2 by weight
    /// when two endpoints are given), plus an HTTP server routing everything to `web`.
    func startGateway(tcpEndpoints: [(UInt16, String)], weights: (Int, Int)? = nil, httpEndpoint: UInt16? = nil,
                      environment: [String: String] = [:]) throws -> (ingressd: Ingressd, tcpPort: UInt16) {
        let tcpPort = try freeTCPPort()
        let httpPort = try freeTCPPort()
        var route = "    - destination: {host: echo, port: {number: 9000}}\n"
        if let (a, b) = weights {
            route = """
                - destination: {host: echo, port: {number: 9000}, subset: v1}
                  weight: \(a)
                - destination: {host: echo, port: {number: 9000}, subset: v2}
                  weight: \(b)

            """
        }
        var docs = [
            """
            apiVersion: networking.istio.io/v1beta1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: \(tcpPort), name: tcp, protocol: TCP}
                hosts: ["*"]
              - port: {number: \(httpPort), name: http, protocol: HTTP}
                hosts: ["*"]
            """,
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: echo}
            spec:
              hosts: ["*"]
              gateways: ["gw"]
              tcp:
              - match: [{port: \(tcpPort)}]
                route:
            \(route)
            """,
            WorkshopConfig.serviceEntry(name: "echo", servicePort: 9000,
                                        endpoints: tcpEndpoints.map { ($0.0, ["version": $0.1]) }),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: DestinationRule
            metadata: {name: echo}
            spec:
              host: echo.default.svc.cluster.local
              subsets:
              - {name: v1, labels: {version: v1}}
              - {name: v2, labels: {version: v2}}
            """,
        ]
        if let web = httpEndpoint {
            docs += [
                """
                apiVersion: networking.istio.io/v1beta1
                kind: VirtualService
                metadata: {name: web}
                spec:
                  hosts: ["*"]
                  gateways: ["gw"]
                  http:
                  - route:
                    - destination: {host: web, port: {number: 80}}
                """,
                WorkshopConfig.serviceEntry(name: "web", servicePort: 80, endpoints: [(web, [:])]),
            ]
        }
        let path = try harness.write("tcp.yaml", WorkshopConfig.documents(docs))
        // The worker inherits the environment (its tuning knobs are environment variables).
        for (k, v) in environment { setenv(k, v, 1) }
        defer { for k in environment.keys { unsetenv(k) } }
        let ingressd = try harness.startIngressd(configs: [path], listenPort: httpPort, workers: 1)
        return (ingressd, tcpPort)
    }

    // MARK: TCP routes

    func testLargeTransferIsByteExactBothWaysAndHalfCloseKeepsTheOtherDirection() throws {
        let echo = try startBulk(["tcp", "--linger-ms", "300"])
        let (_, port) = try startGateway(tcpEndpoints: [(echo, "v1")])
        // 48 MiB up while the echo streams back; then the client shuts down writing and must
        // still get the rest of the echo and the server's END line sent 300 ms after the FIN.
        let r = try client(port: port, ["--send", String(48 << 20), "--half-close"])
        XCTAssertEqual(r.received, 48 << 20)
        XCTAssertEqual(r.received_sha256, r.sent_sha256)
        XCTAssertEqual(r.end, "END \(48 << 20) \(r.sent_sha256)")
    }

    func testWeightedSplitAcrossSubsets() throws {
        let v1 = try startBulk(["tcp", "--banner", "v1"])
        let v2 = try startBulk(["tcp", "--banner", "v2"])
        let (_, port) = try startGateway(tcpEndpoints: [(v1, "v1"), (v2, "v2")], weights: (75, 25))
        let r = try harness.run(Paths.which("python3") ?? "/usr/bin/python3",
                                [Paths.bulkUpstream, "client", "--port", String(port), "--count", "80"], timeout: 60)
        let counts = try JSONDecoder().decode([String: Int].self, from: Data((r.stdout.split(separator: "\n").last ?? "").utf8))
        // 75/25 of 80: 60 expected; 46..74 holds with probability > 99.99%.
        XCTAssertEqual(counts["v1", default: 0] + counts["v2", default: 0], 80, "\(counts)")
        XCTAssertGreaterThan(counts["v1", default: 0], 46, "\(counts)")
        XCTAssertGreaterThan(counts["v2", default: 0], 6, "\(counts)")
    }

    func testConnectFailureClosesTheClient() throws {
        let dead = try freeTCPPort()
        let (ingressd, port) = try startGateway(tcpEndpoints: [(dead, "v1")])
        let start = Date()
        let reply = try RawHTTP.exchange(port: port, send: Array("hello".utf8), timeout: 10)
        XCTAssertEqual(reply, [], "nothing but a close")
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "closed at once, not after a timeout")
        XCTAssertTrue(ingressd.child.isRunning)
    }

    func testIdleTimeoutClosesThePair() throws {
        let echo = try startBulk(["tcp", "--banner", "hi"])
        let (_, port) = try startGateway(tcpEndpoints: [(echo, "v1")],
                                         environment: ["INGRESSD_TCP_IDLE_TIMEOUT_MS": "1000"])
        let start = Date()
        // The client sends nothing and never closes: the banner arrives, then after about 1 s
        // of silence (swept once a second) ingressd closes the connection.
        let reply = try RawHTTP.exchange(port: port, send: [], timeout: 8)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(String(decoding: reply, as: UTF8.self), "hi\n")
        XCTAssertGreaterThan(elapsed, 0.9)
        XCTAssertLessThan(elapsed, 4.5, "closed by the idle timeout, not by the client's 8 s timeout")
    }

    func testWorkerRSSStaysFlatDuringOneGiBTransfer() throws {
        let echo = try startBulk(["tcp"])
        let (ingressd, port) = try startGateway(tcpEndpoints: [(echo, "v1")])
        // Warm up once (first pipe, first connection slots), then measure.
        _ = try client(port: port, ["--send", String(1 << 20), "--half-close"])
        guard let worker = ingressd.workerPids.first else { return XCTFail("no worker") }
        let before = try vmRSSKiB(worker)
        let r = try client(port: port, ["--send", String(1 << 30), "--half-close", "--no-keep"], timeout: 300)
        let after = try vmRSSKiB(worker)
        XCTAssertEqual(r.sent, 1 << 30)
        XCTAssertGreaterThanOrEqual(r.received, 1 << 30)   // the echo plus the END line
        XCTAssertLessThan(after - before, 4 * 1024, "worker VmRSS grew from \(before) KiB to \(after) KiB")
    }

    // MARK: HTTP bodies through the splice path

    func testLargeHTTPBodiesAreByteExactBothWays() throws {
        let web = try startBulk(["http"])
        let (ingressd, _) = try startGateway(tcpEndpoints: [(web, "v1")], httpEndpoint: web)
        for size in [64 << 10, 1 << 20, 10 << 20] {
            // Response bodies (Content-Length from the upstream).
            let got = try harness.curl(ingressd.url + "/blob/\(size)", timeout: 60)
            XCTAssertEqual(got.status, 200)
            XCTAssertEqual(got.body.count, size)
            XCTAssertEqual(harness.sha256Hex(got.body), got.header("x-sha256"), "GET \(size)")
            // Request bodies (Content-Length from curl), echoed back: both directions at once.
            let file = harness.path("up-\(size).bin")
            var bytes = [UInt8](repeating: 0, count: size)
            for k in bytes.indices { bytes[k] = UInt8(truncatingIfNeeded: (k &* 2_654_435_761) >> 13) }
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            let echoed = try harness.curl(ingressd.url + "/echo", ["--data-binary", "@" + file, "-H", "Expect:"], timeout: 60)
            XCTAssertEqual(echoed.status, 200)
            XCTAssertEqual(echoed.body, Data(bytes), "POST /echo \(size)")
            let summary = try harness.curl(ingressd.url + "/sum", ["--data-binary", "@" + file], timeout: 60)
            XCTAssertEqual(summary.text, "\(size) \(harness.sha256Hex(Data(bytes)))")
        }
        // Keep-alive survives a spliced response: three requests on one curl connection.
        let multi = try harness.run("curl", ["-s", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                                             "-w", "%{http_code} %{size_download} %{num_connects}\n",
                                             ingressd.url + "/blob/2000000", ingressd.url + "/blob/300000", ingressd.url + "/x"])
        XCTAssertEqual(multi.stdout, "200 2000000 1\n200 300000 0\n200 3 0\n")
    }

    /// The copy path (splicing off) receives the next body buffer while the previous one is
    /// still being sent, two buffers at most: a client reading slowly keeps sends in flight, so
    /// buffers queue behind them; every byte must still arrive once and in order.
    func testCopyPathBodiesStayByteExactWithASlowClient() throws {
        let web = try startBulk(["http"])
        let (ingressd, _) = try startGateway(tcpEndpoints: [(web, "v1")], httpEndpoint: web,
                                             environment: ["INGRESSD_SPLICE_MIN_BYTES": "0"])
        for (size, rate) in [(16_385, nil), (65_536, nil), (200_000, "2M"), (10 << 20, "40M")] as [(Int, String?)] {
            let got = try harness.curl(ingressd.url + "/blob/\(size)", rate.map { ["--limit-rate", $0] } ?? [], timeout: 60)
            XCTAssertEqual(got.status, 200)
            XCTAssertEqual(got.body.count, size, "GET \(size)")
            XCTAssertEqual(harness.sha256Hex(got.body), got.header("x-sha256"), "GET \(size)")
        }
        // The connection is reused after a copied body: two requests on one curl connection.
        let multi = try harness.run("curl", ["-s", "-o", "/dev/null", "-o", "/dev/null",
                                             "-w", "%{http_code} %{size_download} %{num_connects}\n",
                                             ingressd.url + "/blob/100000", ingressd.url + "/blob/70000"])
        XCTAssertEqual(multi.stdout, "200 100000 1\n200 70000 0\n")
    }
}
