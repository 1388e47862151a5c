// Service bars (issue 3): reloads and a killed worker under continuous wrk load.

import Foundation
import XCTest

/// What wrk reported.
struct WrkReport {
    var requests = 0
    var non2xx = 0
    var socketErrors = 0
    var text: String

    init(_ text: String) {
        self.text = text
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.contains("requests in") { requests = Int(t.split(separator: " ").first ?? "") ?? 0 }
            if t.hasPrefix("Non-2xx") { non2xx = Int(t.split(separator: " ").last ?? "") ?? 0 }
            if t.hasPrefix("Socket errors:") {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                socketErrors = t.split(whereSeparator: { $0 == " " || $0 == "," }).compactMap { Int($0) }.reduce(0, +)
            }
        }
    }
}

final class ServiceTests: IntegrationTestCase {
    private func startGateway(workers: Int = 2) throws -> (Ingressd, String) {
        let upstream = try harness.startUpstream("web")
        let port = try freeTCPPort()
        let path = try harness.write("svc.yaml", ServiceGateway.config(port: port, services: [("web", [upstream.port])]))
        return (try harness.startIngressd(configs: [path], listenPort: port, workers: workers), path)
    }

    /// 20 SIGHUP reloads during 10 s of wrk: no failed and no non-2xx request.
    func testTwentyReloadsUnderLoadFailNothing() throws {
        let wrk = try Harness.requireTool("wrk", for: "load during reloads")
        let (gateway, _) = try startGateway()
        let load = try harness.spawn("wrk", wrk, ["-t1", "-c16", "-d10s", "-H", "Host: web.test", gateway.url + "/"])
        usleep(500_000)
        for _ in 0..<20 {
            gateway.child.signal(SIGHUP)
            usleep(450_000)
        }
        XCTAssertTrue(load.wait(timeout: 30), "wrk finishes")
        let report = WrkReport(load.stdout)
        print("reloads under load: \(report.requests) requests, \(report.non2xx) non-2xx, \(report.socketErrors) socket errors")
        XCTAssertGreaterThan(report.requests, 100, report.text)
        XCTAssertEqual(report.non2xx, 0, report.text)
        XCTAssertEqual(report.socketErrors, 0, report.text)
        let stats = try JSONSerialization.jsonObject(with: Data(try harness.admin(gateway, "/stats").utf8)) as? [String: Any]
        XCTAssertGreaterThanOrEqual(stats?["reloads"] as? Int ?? 0, 15, "reloads were published: \(stats ?? [:])")
        XCTAssertEqual(stats?["reloadFailures"] as? Int, 0)
    }

    /// kill -9 of one worker under load: failures no more than its connections, and its
    /// replacement accepts within 1 s.
    func testKilledWorkerIsReplacedWithinOneSecond() throws {
        let wrk = try Harness.requireTool("wrk", for: "load during a worker kill")
        let (gateway, _) = try startGateway()
        let connections = 8
        let load = try harness.spawn("wrk", wrk, ["-t1", "-c\(connections)", "-d4s", "-H", "Host: web.test", gateway.url + "/"])
        usleep(1_000_000)
        guard let victim = gateway.workerPids.first else { return XCTFail("no workers") }
        let killedAt = Date()
        XCTAssertEqual(kill(victim, SIGKILL), 0)
        var acceptingAfter: TimeInterval?
        while Date().timeIntervalSince(killedAt) < 5 {
            if let json = try? JSONSerialization.jsonObject(with: Data(try harness.admin(gateway, "/workers").utf8)) as? [String: Any],
               let rows = json["workers"] as? [[String: Any]],
               rows.filter({ $0["state"] as? String == "accepting" && ($0["pid"] as? Int).map { Int32($0) } != victim }).count == 2 {
                acceptingAfter = Date().timeIntervalSince(killedAt)
                break
            }
            usleep(20_000)
        }
        let after = try XCTUnwrap(acceptingAfter, "a replacement worker accepts")
        XCTAssertLessThan(after, 1.0, "replacement accepting within 1 s")
        XCTAssertTrue(load.wait(timeout: 20))
        let report = WrkReport(load.stdout)
        print("worker kill under load: replacement accepting after \(Int(after * 1000)) ms; \(report.requests) requests, \(report.non2xx) non-2xx, \(report.socketErrors) socket errors")
        XCTAssertGreaterThan(report.requests, 100, report.text)
        XCTAssertLessThanOrEqual(report.socketErrors + report.non2xx, connections,
                                 "only the killed worker's in-flight requests fail: \(report.text)")
    }
}
