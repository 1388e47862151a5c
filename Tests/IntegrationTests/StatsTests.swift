// Stats and access log (issue 3): the Prometheus exposition parsed by a real Prometheus parser
// (Python prometheus_client), counters that survive a killed worker, Envoy-format access lines
// and their reopening on SIGUSR1.

import Foundation
import XCTest

/// A gateway on a free port routing `NAME.test` to a ServiceEntry `NAME` with the given
/// endpoint ports, plus optional DestinationRule / ServiceEntry annotation text.
struct ServiceGateway {
    static func config(port: UInt16, services: [(name: String, ports: [UInt16])],
                       destinationRule: String? = nil, annotation: String? = nil) -> String {
        var docs = [WorkshopConfig.httpGateway(port: port, hosts: ["*.test"])]
        for s in services {
            docs.append("""
                apiVersion: networking.istio.io/v1beta1
                kind: VirtualService
                metadata:
                  name: \(s.name)
                spec:
                  hosts: ["\(s.name).test"]
                  gateways: ["gw"]
                  http:
                  - route:
                    - destination:
                        host: \(s.name)
                        port:
                          number: 80
                """)
            var se = WorkshopConfig.serviceEntry(name: s.name, servicePort: 80, endpoints: s.ports.map { ($0, [:]) })
            if let annotation {
                se = se.replacingOccurrences(of: "metadata:\n  name: \(s.name)\n",
                                             with: "metadata:\n  name: \(s.name)\n  annotations:\n    ingressd.io/health-check: \"\(annotation)\"\n")
            }
            docs.append(se)
        }
        if let destinationRule { docs.append(destinationRule) }
        return WorkshopConfig.documents(docs)
    }
}

/// A tiny upstream that answers every request with a fixed status (for 5xx endpoints).
func startStatusServer(_ harness: Harness, status: Int) throws -> (port: UInt16, child: Child) {
    let port = try freeTCPPort()
    let script = try harness.write("status-\(port).py", """
        import sys, http.server, socketserver
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                body = b"status %d\\n" % int(sys.argv[2])
                self.send_response(int(sys.argv[2]))
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a): pass
        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
        S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """)
    let child = try harness.spawn("status-\(status)", Paths.which("python3") ?? "/usr/bin/python3",
                                  [script, String(port), String(status)])
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
        if (try? RawHTTP.exchange(port: port, send: Array("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8), timeout: 1))?.isEmpty == false {
            return (port, child)
        }
        usleep(50_000)
    }
    throw HarnessError("status server on \(port) did not start: \(child.stderr)")
}

extension Harness {
    /// GET on the admin port, body as text.
    func admin(_ ingressd: Ingressd, _ path: String) throws -> String {
        let r = try curl(ingressd.adminURL + path)
        guard r.status == 200 else { throw HarnessError("GET \(path): \(r.status) \(r.text)") }
        return r.text
    }

    /// `/stats/prometheus` parsed by Python prometheus_client (any syntax error fails the test),
    /// samples summed by "NAME|DESTINATION_SERVICE_NAME or CLUSTER_NAME|RESPONSE_CODE|RESPONSE_FLAGS|LE".
    /// Skips when prometheus_client is not installed.
    func prometheusValues(_ ingressd: Ingressd) throws -> [String: Double] {
        let python = try Harness.requireTool("python3", for: "parsing the Prometheus exposition")
        guard try run(python, ["-c", "import prometheus_client"]).status == 0 else {
            throw XCTSkip("Python prometheus_client is not installed (`make deps-test` installs it)")
        }
        let text = try admin(ingressd, "/stats/prometheus")
        let file = try write("metrics.txt", text)
        let parser = try write("parse.py", """
            import sys, json
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in fam.samples:
                    key = s.name + "|" + s.labels.get("destination_service_name", s.labels.get("cluster_name", "")) \\
                        + "|" + s.labels.get("response_code", "") + "|" + s.labels.get("response_flags", "") + "|" + s.labels.get("le", "")
                    out[key] = out.get(key, 0) + s.value
            print(json.dumps(out))
            """)
        let parsed = try run(python, [parser, file])
        guard parsed.status == 0 else { throw HarnessError("prometheus_client rejects the exposition: \(parsed.stderr)\n\(text)") }
        return try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Double] ?? [:]
    }

    /// `n` requests with one curl, returns the status codes.
    func statuses(_ url: String, host: String, _ n: Int) throws -> [String] {
        let r = try run("curl", ["-s", "-w", "%{http_code}\\n", "-H", "Host: \(host)"]
                        + (0..<n).flatMap { _ in ["-o", "/dev/null", url] })
        return r.stdout.split(separator: "\n").map(String.init)
    }
}

final class StatsTests: IntegrationTestCase {
    /// The access log's lines once there are at least `count` (lines are flushed within ~2 s).
    private func logLines(_ path: String, atLeast count: Int) -> [String] {
        var lines: [String] = []
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            lines = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            if lines.count >= count { break }
            usleep(50_000)
        }
        return lines
    }

    private func startGateway(extraArgs: [String] = [], workers: Int = 2) throws -> (Ingressd, DemoUpstream) {
        let upstream = try harness.startUpstream("web")
        let port = try freeTCPPort()
        let path = try harness.write("stats.yaml", ServiceGateway.config(port: port, services: [("web", [upstream.port])]))
        return (try harness.startIngressd(configs: [path], listenPort: port, workers: workers, extraArgs: extraArgs), upstream)
    }

    /// The exposition is valid for a real Prometheus parser and counts what was sent.
    func testPrometheusExpositionParsesAndCounts() throws {
        let (gateway, _) = try startGateway()
        XCTAssertEqual(try harness.statuses(gateway.url + "/a", host: "web.test", 5), Array(repeating: "200", count: 5))
        XCTAssertEqual(try harness.statuses(gateway.url + "/a", host: "nowhere.test", 2), ["404", "404"])

        let values = try harness.prometheusValues(gateway)
        XCTAssertEqual(values["istio_requests_total|web|200|-|"], 5, "\(values)")
        XCTAssertEqual(values["istio_requests_total|unknown|404|NR|"], 2, "\(values)")
        XCTAssertEqual(values["istio_request_duration_milliseconds_count|web|||"], 5)
        XCTAssertEqual(values["istio_request_duration_milliseconds_bucket|web|||+Inf"], 5)
        XCTAssertEqual(values["istio_response_bytes_count|web|||"], 5)
        XCTAssertEqual(values["envoy_cluster_upstream_rq_total|outbound|80||web.default.svc.cluster.local|||"], 5)
        XCTAssertEqual(values["envoy_cluster_membership_total|outbound|80||web.default.svc.cluster.local|||"], 1)
        XCTAssertEqual(values["envoy_cluster_membership_healthy|outbound|80||web.default.svc.cluster.local|||"], 1)
        XCTAssertEqual(values["ingressd_workers||||"], 2)
        XCTAssertEqual(values["ingressd_downstream_rq_total||||"], 7)
        XCTAssertNotNil(values["ingressd_config_reload_failures_total||||"])
        XCTAssertNotNil(values["envoy_cluster_outlier_detection_ejections_active|outbound|80||web.default.svc.cluster.local|||"])

        // /stats says the same in JSON.
        let json = try JSONSerialization.jsonObject(with: Data(try harness.admin(gateway, "/stats").utf8)) as? [String: Any]
        XCTAssertEqual(json?["requestsTotal"] as? Int, 7)
    }

    /// A worker killed with SIGKILL takes none of the totals with it.
    func testCountersSurviveAKilledWorker() throws {
        let (gateway, _) = try startGateway()
        // Connection: close spreads the requests over both workers.
        let codes = try harness.run("curl", ["-s", "-w", "%{http_code}\\n", "-H", "Host: web.test", "-H", "Connection: close"]
                                    + (0..<20).flatMap { _ in ["-o", "/dev/null", gateway.url + "/"] })
        XCTAssertEqual(codes.stdout.split(separator: "\n").count, 20)
        for victim in gateway.workerPids { kill(victim, SIGKILL) }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline && gateway.readyStatus() != 200 { usleep(50_000) }
        usleep(300_000)
        let json = try JSONSerialization.jsonObject(with: Data(try harness.admin(gateway, "/stats").utf8)) as? [String: Any]
        XCTAssertEqual(json?["requestsTotal"] as? Int, 20, "requests of the killed workers are still counted: \(json ?? [:])")
        XCTAssertEqual(json?["workerRestarts"] as? Int, 2)
        let text = try harness.admin(gateway, "/stats/prometheus")
        XCTAssertTrue(text.contains("response_code=\"200\",grpc_response_status=\"\",response_flags=\"-\"} 20"), text)
    }

    /// Envoy's default access-log format, and SIGUSR1 (logrotate) reopens the file.
    func testAccessLogLinesAndReopenOnSIGUSR1() throws {
        let log = harness.path("access.log")
        let (gateway, upstream) = try startGateway(extraArgs: ["--access-log", log])
        _ = try harness.curl(gateway.url + "/hello?x=1", host: "web.test", ["-A", "probe/1.0", "-H", "x-request-id: abc-123"])
        _ = try harness.curl(gateway.url + "/", host: "nowhere.test")
        var lines: [String] = []
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            if lines.count >= 2 { break }
            usleep(50_000)
        }
        XCTAssertEqual(lines.count, 2, lines.joined(separator: "\n"))
        let first = try XCTUnwrap(lines.first)
        let pattern = #"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /hello\?x=1 HTTP/1\.1" 200 - 0 \d+ \d+ - "-" "probe/1\.0" "abc-123" "web\.test" "127\.0\.0\.1:\#(upstream.port)"$"#
        XCTAssertNotNil(first.range(of: pattern, options: .regularExpression), first)
        // No x-request-id from the client: the one ingressd generates (Envoy does so before routing).
        XCTAssertNotNil(lines.last?.range(of: #"" 404 NR 0 \d+ \d+ - "-" "curl/[^"]*" "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}" "nowhere\.test" "-"$"#, options: .regularExpression),
                        lines.last ?? "")

        // logrotate: move the file away, SIGUSR1, and the next lines go to a new file.
        let rotated = harness.path("access.log.1")
        try FileManager.default.moveItem(atPath: log, toPath: rotated)
        gateway.child.signal(SIGUSR1)
        usleep(300_000)
        XCTAssertEqual(try harness.statuses(gateway.url + "/", host: "web.test", 4), Array(repeating: "200", count: 4))
        var reopened: [Substring] = []
        let deadline2 = Date().addingTimeInterval(5)
        while Date() < deadline2 {
            reopened = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
            if reopened.count >= 4 { break }
            usleep(50_000)
        }
        XCTAssertEqual(reopened.count, 4, "lines after SIGUSR1 go to the new file")
        XCTAssertEqual(((try? String(contentsOfFile: rotated, encoding: .utf8)) ?? "").split(separator: "\n").count, 2)
        XCTAssertTrue(gateway.child.isRunning)
    }

    /// The x-request-id ingressd generates is the one it logs and forwards, and replies the
    /// codec answers itself (no parsed request) are logged with DPE.
    func testAccessLogGeneratedRequestIdAndCodecReplies() throws {
        let log = harness.path("access.log")
        let (gateway, _) = try startGateway(extraArgs: ["--access-log", log], workers: 1)
        // demo_upstream echoes the request headers it received.
        let echoed = try harness.curl(gateway.url + "/rid", host: "web.test")
        XCTAssertEqual(echoed.status, 200)
        let rid = try XCTUnwrap(echoed.text.range(of: #"(?i)x-request-id: [0-9a-f-]{36}"#, options: .regularExpression)
                                    .map { String(echoed.text[$0].suffix(36)) }, echoed.text)
        // An empty x-request-id counts as none.
        let empty = try harness.curl(gateway.url + "/empty", host: "web.test", ["-H", "x-request-id;"])
        let rid2 = try XCTUnwrap(empty.text.range(of: #"(?i)x-request-id: [0-9a-f-]{36}"#, options: .regularExpression)
                                    .map { String(empty.text[$0].suffix(36)) }, empty.text)
        XCTAssertNotEqual(rid, rid2)

        // The codec's own replies: a malformed field line (400), a request line over 16 KiB (414).
        let bad = try RawHTTP.exchange(port: gateway.listenPort, send: Array("GET / HTTP/1.1\r\nHost: web.test\r\nno colon here\r\n\r\n".utf8))
        XCTAssertTrue(String(decoding: bad, as: UTF8.self).hasPrefix("HTTP/1.1 400"), String(decoding: bad, as: UTF8.self))
        let long = "GET /" + String(repeating: "a", count: 17_000) + " HTTP/1.1\r\nHost: web.test\r\n\r\n"
        let tooLong = try RawHTTP.exchange(port: gateway.listenPort, send: Array(long.utf8))
        XCTAssertTrue(String(decoding: tooLong, as: UTF8.self).hasPrefix("HTTP/1.1 414"), String(decoding: tooLong.prefix(40), as: UTF8.self))

        let lines = logLines(log, atLeast: 4)
        XCTAssertEqual(lines.count, 4, lines.joined(separator: "\n"))
        guard lines.count == 4 else { return }
        XCTAssertTrue(lines[0].hasPrefix("[") && lines[0].contains("\"GET /rid HTTP/1.1\" 200 - ") && lines[0].contains("\"\(rid)\""), lines[0])
        XCTAssertTrue(lines[1].contains("\"GET /empty HTTP/1.1\" 200 - ") && lines[1].contains("\"\(rid2)\""), lines[1])
        let bare = #"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "- - HTTP/1\.1" CODE DPE 0 \d+ \d+ - "-" "-" "-" "-" "-"$"#
        XCTAssertNotNil(lines[2].range(of: bare.replacingOccurrences(of: "CODE", with: "400"), options: .regularExpression), lines[2])
        XCTAssertNotNil(lines[3].range(of: bare.replacingOccurrences(of: "CODE", with: "414"), options: .regularExpression), lines[3])

        // The same replies in the stats: unknown destination, flag DPE.
        let text = try harness.admin(gateway, "/stats/prometheus")
        XCTAssertTrue(text.contains("destination_service=\"unknown\"") && text.contains("response_code=\"400\",grpc_response_status=\"\",response_flags=\"DPE\"} 1"), text)
        XCTAssertTrue(text.contains("response_code=\"414\",grpc_response_status=\"\",response_flags=\"DPE\"} 1"), text)
    }
}
