// Health (issue 3): passive outlier detection decided over all workers' evidence, and active
// health checks run by the supervisor, both published in the shared health array.

import Foundation
import XCTest

final class HealthTests: IntegrationTestCase {
    private func clusters(_ gateway: Ingressd) throws -> [[String: Any]] {
        let json = try JSONSerialization.jsonObject(with: Data(try harness.admin(gateway, "/clusters").utf8)) as? [String: Any]
        return json?["clusters"] as? [[String: Any]] ?? []
    }

    private func endpoint(_ gateway: Ingressd, port: UInt16) throws -> [String: Any]? {
        try clusters(gateway).flatMap { $0["endpoints"] as? [[String: Any]] ?? [] }
            .first { ($0["address"] as? String) == "127.0.0.1:\(port)" }
    }

    /// An endpoint answering 503 is ejected for every worker once the consecutive 5xx of all
    /// workers reach the threshold, gets no traffic while ejected, and returns after
    /// baseEjectionTime.
    func testOutlierDetectionEjectsAcrossAllWorkersAndReturns() throws {
        let good = try harness.startUpstream("good")
        let bad = try startStatusServer(harness, status: 503)
        let port = try freeTCPPort()
        let dr = """
            apiVersion: networking.istio.io/v1beta1
            kind: DestinationRule
            metadata:
              name: web
            spec:
              host: web
              trafficPolicy:
                outlierDetection:
                  consecutive5xxErrors: 4
                  interval: 1s
                  baseEjectionTime: 3s
                  maxEjectionPercent: 50
            """
        let path = try harness.write("outlier.yaml", ServiceGateway.config(port: port, services: [("web", [good.port, bad.port])],
                                                                            destinationRule: dr))
        let gateway = try harness.startIngressd(configs: [path], listenPort: port, workers: 2)

        // New connections land on both workers; each worker alternates endpoints. 4 × 503 in
        // total (not per worker) is the threshold.
        var fives = 0
        var sent = 0
        while fives < 4 && sent < 40 {
            let r = try harness.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: web.test",
                                             "-H", "Connection: close", gateway.url + "/"])
            if r.stdout == "503" { fives += 1 }
            sent += 1
        }
        XCTAssertEqual(fives, 4)
        // Within one interval (1 s) the ejection is published to every worker.
        usleep(1_000_000)
        let ejectedAt = Date()
        let state = try endpoint(gateway, port: bad.port)
        XCTAssertEqual(state?["health"] as? String, "ejected", "\(state ?? [:])")
        XCTAssertTrue((state?["reason"] as? String ?? "").contains("consecutive 5xx"), "\(state ?? [:])")
        let during = try harness.run("curl", ["-s", "-w", "%{http_code}\\n", "-H", "Host: web.test", "-H", "Connection: close"]
                                     + (0..<20).flatMap { _ in ["-o", "/dev/null", gateway.url + "/"] })
        let codes = during.stdout.split(separator: "\n")
        XCTAssertEqual(codes.count, 20)
        if Date().timeIntervalSince(ejectedAt) < 2.5 {
            XCTAssertTrue(codes.allSatisfy { $0 == "200" }, "no traffic to the ejected endpoint: \(codes)")
        }
        let metrics = try harness.admin(gateway, "/stats/prometheus")
        XCTAssertTrue(metrics.contains("envoy_cluster_outlier_detection_ejections_active{cluster_name=\"outbound|80||web.default.svc.cluster.local\"} 1"), metrics)

        // After baseEjectionTime (3 s) it is back in rotation and gets requests (503s) again.
        let back = Date().addingTimeInterval(8)
        var returned = false
        while Date() < back {
            if (try endpoint(gateway, port: bad.port))?["health"] as? String == "healthy" { returned = true; break }
            usleep(200_000)
        }
        XCTAssertTrue(returned, "the endpoint returns after baseEjectionTime")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(ejectedAt), 1.5, "not before baseEjectionTime")
        let after = try harness.statuses(gateway.url + "/", host: "web.test", 20)   // 6 missed it once under load
        XCTAssertTrue(after.contains("503"), "the returned endpoint gets traffic: \(after)")
    }

    /// `ingressd.io/health-check: tcp …` marks an endpoint nobody listens on unhealthy within
    /// interval × unhealthy, and traffic avoids it.
    func testActiveHealthCheckMarksADeadEndpointUnhealthy() throws {
        let good = try harness.startUpstream("good")
        let deadPort = try freeTCPPort()
        let port = try freeTCPPort()
        let path = try harness.write("hc.yaml", ServiceGateway.config(
            port: port, services: [("web", [good.port, deadPort])],
            annotation: "tcp interval=500ms timeout=300ms healthy=1 unhealthy=2"))
        let started = Date()
        let gateway = try harness.startIngressd(configs: [path], listenPort: port, workers: 2)
        var unhealthyAfter: TimeInterval?
        while Date().timeIntervalSince(started) < 10 {
            if let e = try endpoint(gateway, port: deadPort), e["health"] as? String == "unhealthy" {
                unhealthyAfter = Date().timeIntervalSince(started)
                XCTAssertTrue((e["reason"] as? String ?? "").contains("connect"), "\(e)")
                break
            }
            usleep(100_000)
        }
        let after = try XCTUnwrap(unhealthyAfter, "the dead endpoint is marked unhealthy")
        // interval × unhealthy = 1 s, plus start-up and poll slack.
        XCTAssertLessThan(after, 4, "marked unhealthy within interval × unhealthy (+ start-up)")
        XCTAssertEqual(try harness.statuses(gateway.url + "/", host: "web.test", 10), Array(repeating: "200", count: 10))
        XCTAssertEqual(try endpoint(gateway, port: good.port)?["health"] as? String, "healthy")
    }

    /// A malformed annotation is a configuration error with its FILE:LINE.
    func testMalformedHealthCheckAnnotationIsRejected() throws {
        let port = try freeTCPPort()
        let path = try harness.write("bad-hc.yaml", ServiceGateway.config(port: port, services: [("web", [8080])],
                                                                           annotation: "http:/healthz interval=fast"))
        let r = try harness.run(Paths.ingressdBinary, ["check", "-c", path])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.stdout.contains("ingressd.io/health-check") && r.stdout.contains("interval=fast"), r.output)
    }
}
