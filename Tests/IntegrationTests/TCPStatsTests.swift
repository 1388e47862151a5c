// istio_tcp_* metrics and upstream_cx_* of TCP clusters (issue 3): bytes through a real TCP
// route (examples/upstreams/bulk_upstream.py echo server and client) show up in
// /stats/prometheus, parsed by Python prometheus_client (which names a counter without
// `_total`, like Envoy's `..._cx_connect_fail`, with `_total`); a connect failure is counted with UF.

import Foundation
import XCTest

final class TCPStatsTests: IntegrationTestCase {
    static let echoCluster = "outbound|9000||echo.default.svc.cluster.local"
    static let deadCluster = "outbound|9001||dead.default.svc.cluster.local"

    /// bulk_upstream.py tcp echo server; returns its port.
    private func startEcho() throws -> UInt16 { try harness.startBulkUpstream(["tcp"]) }

    /// Two TCP Gateway servers: `echoPort` → echo (live), `deadPort` → dead (nothing listens).
    private func startGateway(echo: UInt16) throws -> (Ingressd, echoPort: UInt16, deadPort: UInt16) {
        let echoPort = try freeTCPPort()
        let deadPort = try freeTCPPort()
        let httpPort = try freeTCPPort()
        let nobody = try freeTCPPort()
        let docs = [
            """
            apiVersion: networking.istio.io/v1beta1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: \(echoPort), name: tcp-echo, protocol: TCP}
                hosts: ["*"]
              - port: {number: \(deadPort), name: tcp-dead, protocol: TCP}
                hosts: ["*"]
              - port: {number: \(httpPort), name: http, protocol: HTTP}
                hosts: ["*"]
            """,
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: tcp}
            spec:
              hosts: ["*"]
              gateways: ["gw"]
              tcp:
              - match: [{port: \(echoPort)}]
                route:
                - destination: {host: echo, port: {number: 9000}}
              - match: [{port: \(deadPort)}]
                route:
                - destination: {host: dead, port: {number: 9001}}
            """,
            WorkshopConfig.serviceEntry(name: "echo", servicePort: 9000, endpoints: [(echo, [:])]),
            WorkshopConfig.serviceEntry(name: "dead", servicePort: 9001, endpoints: [(nobody, [:])]),
        ]
        let path = try harness.write("tcp-stats.yaml", WorkshopConfig.documents(docs))
        let ingressd = try harness.startIngressd(configs: [path], listenPort: httpPort, workers: 2)
        return (ingressd, echoPort, deadPort)
    }

    struct ClientResult: Decodable {
        var sent: Int
        var received: Int
        var end: String?
    }

    func testTCPRouteBytesAndConnectionsInPrometheus() throws {
        let echo = try startEcho()
        let (ingressd, echoPort, deadPort) = try startGateway(echo: echo)
        let python = Paths.which("python3") ?? "/usr/bin/python3"
        var received = 0   // bytes the gateway received from clients
        var sent = 0       // bytes it sent to them: the echo plus the END line
        let sizes = [100_000, 3_000_000, 1]
        for size in sizes {
            let r = try harness.run(python, [Paths.bulkUpstream, "client", "--port", String(echoPort), "--send", String(size), "--half-close"],
                                    timeout: 60)
            XCTAssertEqual(r.status, 0, r.output)
            let result = try JSONDecoder().decode(ClientResult.self, from: Data((r.stdout.split(separator: "\n").last ?? "").utf8))
            XCTAssertEqual(result.received, size)
            received += result.sent
            sent += result.received + (result.end.map { $0.utf8.count + 1 } ?? 0)   // END line and its \n
        }
        // A route to an endpoint nobody listens on: opened, closed with UF, a connect failure.
        XCTAssertEqual(try RawHTTP.exchange(port: deadPort, send: Array("hello".utf8), timeout: 10), [])

        // The pair is closed right after the client's EOF: poll briefly for the last close.
        var values: [String: Double] = [:]
        let deadline = Date().addingTimeInterval(5)
        repeat {
            values = try harness.prometheusValues(ingressd)
            if values["istio_tcp_connections_closed_total|echo||-|"] == Double(sizes.count)
                && values["istio_tcp_connections_closed_total|dead||UF|"] == 1 { break }
            usleep(100_000)
        } while Date() < deadline
        XCTAssertEqual(values["istio_tcp_connections_opened_total|echo||-|"], Double(sizes.count), "\(values)")
        XCTAssertEqual(values["istio_tcp_connections_closed_total|echo||-|"], Double(sizes.count), "\(values)")
        XCTAssertEqual(values["istio_tcp_received_bytes_total|echo||-|"], Double(received), "\(values)")
        XCTAssertEqual(values["istio_tcp_sent_bytes_total|echo||-|"], Double(sent), "\(values)")
        XCTAssertEqual(values["envoy_cluster_upstream_cx_total|\(Self.echoCluster)|||"], Double(sizes.count))
        XCTAssertEqual(values["envoy_cluster_upstream_cx_active|\(Self.echoCluster)|||"], 0)
        XCTAssertEqual(values["envoy_cluster_upstream_cx_connect_fail_total|\(Self.echoCluster)|||"], 0)

        XCTAssertEqual(values["istio_tcp_connections_opened_total|dead||-|"], 1, "\(values)")
        XCTAssertEqual(values["istio_tcp_connections_closed_total|dead||UF|"], 1, "\(values)")
        XCTAssertEqual(values["istio_tcp_sent_bytes_total|dead||-|"], 0)
        XCTAssertEqual(values["envoy_cluster_upstream_cx_connect_fail_total|\(Self.deadCluster)|||"], 1)
        XCTAssertEqual(values["envoy_cluster_upstream_cx_total|\(Self.deadCluster)|||"], 0)

        // The labels Istio gives TCP metrics.
        let text = try harness.admin(ingressd, "/stats/prometheus")
        let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("istio_tcp_sent_bytes_total{") && $0.contains("echo") })
        for label in ["reporter=\"source\"", "destination_service=\"echo.default.svc.cluster.local\"",
                      "destination_service_name=\"echo\"", "destination_service_namespace=\"default\"",
                      "request_protocol=\"tcp\"", "response_flags=\"-\""] {
            XCTAssertTrue(line.contains(label), "\(label) in \(line)")
        }
        // No HTTP request was counted for TCP connections.
        XCTAssertEqual(values.keys.filter { $0.hasPrefix("istio_requests_total|echo|") }, [])
    }

    /// HTTP bodies above the splice threshold (128 KiB) bypass the copy path: their bytes still
    /// count in istio_request_bytes / istio_response_bytes and the access line.
    func testSplicedHTTPBodiesCountInStatsAndAccessLog() throws {
        let child = try harness.spawn("bulk-http", Paths.which("python3") ?? "/usr/bin/python3", [Paths.bulkUpstream, "http"])
        var web: UInt16 = 0
        let deadline = Date().addingTimeInterval(10)
        while web == 0 && Date() < deadline {
            if let line = child.stdout.split(separator: "\n").first, let port = line.split(separator: ":").last.flatMap({ UInt16($0) }) {
                web = port
            }
            usleep(20_000)
        }
        XCTAssertNotEqual(web, 0, child.stderr)
        let port = try freeTCPPort()
        let path = try harness.write("web.yaml", ServiceGateway.config(port: port, services: [("web", [web])]))
        let log = harness.path("access.log")
        let ingressd = try harness.startIngressd(configs: [path], listenPort: port, workers: 1, extraArgs: ["--access-log", log])
        let size = 1 << 20
        let got = try harness.curl(ingressd.url + "/blob/\(size)", host: "web.test", timeout: 30)
        XCTAssertEqual(got.body.count, size)
        let file = harness.path("up.bin")
        try Data(repeating: 0x61, count: size).write(to: URL(fileURLWithPath: file))
        let sum = try harness.curl(ingressd.url + "/sum", host: "web.test", ["--data-binary", "@" + file, "-H", "Expect:"], timeout: 30)
        XCTAssertTrue(sum.text.hasPrefix("\(size) "), sum.text)

        var lines: [Substring] = []
        let logDeadline = Date().addingTimeInterval(5)
        while lines.count < 2 && Date() < logDeadline {
            lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
            usleep(50_000)
        }
        XCTAssertEqual(lines.count, 2, lines.joined(separator: "\n"))
        func fields(_ line: Substring) -> [Int] {   // CODE FLAGS BYTES_RECEIVED BYTES_SENT
            let after = line.split(separator: "\"", omittingEmptySubsequences: false)[2].split(separator: " ")
            return [Int(after[0]) ?? -1, Int(after[2]) ?? -1, Int(after[3]) ?? -1]
        }
        if lines.count == 2 {
            let get = fields(lines[0]), post = fields(lines[1])
            XCTAssertEqual(get[0], 200)
            XCTAssertGreaterThan(get[2], size, "BYTES_SENT of the spliced 1 MiB response: \(lines[0])")
            XCTAssertLessThan(get[2], size + 1024)
            XCTAssertEqual(post[1], size, "BYTES_RECEIVED of the spliced 1 MiB upload: \(lines[1])")
        }
        let values = try harness.prometheusValues(ingressd)
        XCTAssertGreaterThan(values["istio_response_bytes_sum|web|||"] ?? 0, Double(size), "\(values)")
        XCTAssertGreaterThan(values["istio_request_bytes_sum|web|||"] ?? 0, Double(size), "\(values)")
    }
}
