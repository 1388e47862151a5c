// Signals and worker supervision (DESIGN.md §1, §6): SIGHUP reload, a killed worker replaced,
// SIGTERM draining an in-flight request.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ReloadTests: IntegrationTestCase {
    func testSIGHUPAppliesAChangedRouteAndKeepsServingOnAnInvalidOne() throws {
        let shop = try Workshop.start(harness)
        let ingressFile = shop.configs[0]  // frontend-ingress.yaml (Gateway moved to a free port)
        let before = try harness.curl(shop.url + "/", host: "hipster.example.com")
        XCTAssertTrue(servedBy(before)?.hasPrefix("frontend-") ?? false, before.text)

        // hipster.example.com → tracing instead of frontend.
        let original = try String(contentsOfFile: ingressFile, encoding: .utf8)
        let changed = original.replacingOccurrences(of: "host: frontend\n", with: "host: tracing\n")
        XCTAssertNotEqual(changed, original)
        try harness.write("frontend-ingress.yaml", changed)
        shop.ingressd.child.signal(SIGHUP)
        var after: String?
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            after = servedBy(try harness.curl(shop.url + "/", host: "hipster.example.com"))
            if after == "tracing" { break }
            usleep(100_000)
        }
        XCTAssertEqual(after, "tracing", "the reloaded route serves within 10 s")

        // An invalid file: rejected as a whole, the previous table keeps serving.
        try harness.write("frontend-ingress.yaml", changed.replacingOccurrences(of: "  http:\n", with: "  htttp:\n"))
        shop.ingressd.child.signal(SIGHUP)
        usleep(1_500_000)
        XCTAssertTrue(shop.ingressd.child.isRunning, "an invalid reload must not stop ingressd")
        for _ in 0..<5 {
            let response = try harness.curl(shop.url + "/", host: "hipster.example.com")
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(servedBy(response), "tracing")
        }
        XCTAssertEqual(shop.ingressd.readyStatus(), 200)
        XCTAssertTrue(shop.ingressd.child.stderr.contains(ingressFile) || shop.ingressd.child.stdout.contains(ingressFile),
                      "the rejected reload is logged with its FILE:LINE:\n\(shop.ingressd.outputTail)")
    }
}

final class ReloadUnderLoadTests: IntegrationTestCase {
    /// Reloads under continuous load drop nothing (DESIGN.md §2): every request of a wrk run
    /// with ten SIGHUPs in the middle succeeds, without socket errors.
    func testSIGHUPsUnderLoadLoseNoRequest() throws {
        let wrk = try Harness.requireTool("wrk", for: "load during reloads")
        let shop = try Workshop.start(harness, workers: 2)
        let load = try harness.spawn("wrk", wrk, ["-t1", "-c16", "-d4s", "-H", "Host: tracing.example.com",
                                                  shop.url + "/"])
        usleep(500_000)
        for _ in 0..<10 {
            shop.ingressd.child.signal(SIGHUP)
            usleep(250_000)
        }
        XCTAssertTrue(load.wait(timeout: 20), "wrk finishes")
        let report = load.stdout
        let completed = report.split(separator: "\n").first { $0.contains("requests in") }
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") } ?? 0
        XCTAssertGreaterThan(completed, 100, report)
        XCTAssertFalse(report.contains("Non-2xx"), "no error responses:\n\(report)")
        XCTAssertFalse(report.contains("Socket errors"), "no connection dropped:\n\(report)")
        let reloads = shop.ingressd.outputTail.components(separatedBy: "generation").count - 1
        XCTAssertGreaterThanOrEqual(reloads, 2, "reloads happened:\n\(shop.ingressd.outputTail)")
    }

    /// `--watch`: editing a config file reloads without a signal.
    func testWatchReloadsOnFileChange() throws {
        let shop = try Workshop.start(harness, extraArgs: ["--watch"])
        let ingressFile = shop.configs[0]
        let original = try String(contentsOfFile: ingressFile, encoding: .utf8)
        try harness.write("frontend-ingress.yaml",
                          original.replacingOccurrences(of: "host: frontend\n", with: "host: kiali\n")
                              .replacingOccurrences(of: "number: 80\n", with: "number: 20001\n"))
        var served: String?
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            served = servedBy(try harness.curl(shop.url + "/", host: "hipster.example.com"))
            if served == "kiali" { break }
            usleep(100_000)
        }
        XCTAssertEqual(served, "kiali", "the edited file is picked up by --watch:\n\(shop.ingressd.outputTail)")
    }
}

final class WorkerRestartTests: IntegrationTestCase {
    func testKilledWorkerIsReplacedAndRequestsKeepSucceeding() throws {
        let wrk = try Harness.requireTool("wrk", for: "load during a worker kill")
        let shop = try Workshop.start(harness, workers: 2)
        let workers = shop.ingressd.workerPids
        XCTAssertEqual(workers.count, 2, "--workers 2 forks two workers: \(workers)")
        guard let victim = workers.first else { return }

        let load = try harness.spawn("wrk", wrk, ["-t1", "-c8", "-d4s", "-H", "Host: tracing.example.com",
                                                  shop.url + "/"])
        usleep(1_000_000)
        XCTAssertEqual(kill(victim, SIGKILL), 0)

        var replaced: [pid_t] = []
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            replaced = shop.ingressd.workerPids.filter { ProcFS.isAlive($0) }
            if replaced.count == 2 && !replaced.contains(victim) { break }
            usleep(50_000)
        }
        XCTAssertEqual(replaced.count, 2, "a replacement worker appears: \(replaced)")
        XCTAssertFalse(replaced.contains(victim))

        XCTAssertTrue(load.wait(timeout: 20), "wrk finishes")
        let report = load.stdout
        let completed = report.split(separator: "\n").first { $0.contains("requests in") }
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") } ?? 0
        XCTAssertGreaterThan(completed, 100, "requests kept flowing under the kill:\n\(report)")
        XCTAssertFalse(report.contains("Non-2xx"), "no error responses:\n\(report)")

        // New connections, spread over both workers, all succeed.
        let after = try harness.run("curl", ["-s", "-S", "-w", "%{http_code}\\n",
                                             "-H", "Host: tracing.example.com", "-H", "Connection: close"]
                                            + (0..<20).flatMap { _ in ["-o", "/dev/null", shop.url + "/"] })
        let codes = after.stdout.split(separator: "\n")
        XCTAssertEqual(codes.count, 20, after.output)
        XCTAssertTrue(codes.allSatisfy { $0 == "200" }, after.output)
        XCTAssertTrue(shop.ingressd.child.isRunning)
    }
}

final class DrainTests: IntegrationTestCase {
    func testSIGTERMFinishesTheInFlightRequestAndExits0() throws {
        let shop = try Workshop.start(harness)
        let body = harness.path("slow.body")
        let slow = try harness.spawn("curl-slow", Paths.which("curl") ?? "/usr/bin/curl",
                                     ["-s", "-S", "-o", body, "-w", "%{http_code}", "--max-time", "20",
                                      "-H", "Host: tracing.example.com", shop.url + "/delay/1000"])
        // Wait until the request has reached the upstream, then ask ingressd to stop.
        let deadline = Date().addingTimeInterval(10)
        while shop.tracing.requests.isEmpty && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(shop.tracing.requests.isEmpty, "the slow request reached the upstream")
        shop.ingressd.child.signal(SIGTERM)

        XCTAssertTrue(slow.wait(timeout: 15))
        XCTAssertEqual(slow.stdout, "200", "the in-flight request completes: \(slow.stderr)")
        let text = (try? String(contentsOfFile: body, encoding: .utf8)) ?? ""
        XCTAssertTrue(text.hasPrefix("upstream: tracing "), text)

        XCTAssertTrue(shop.ingressd.child.wait(timeout: 15), "ingressd exits after draining")
        XCTAssertEqual(shop.ingressd.child.exitStatus, 0, "clean shutdown exits 0:\n\(shop.ingressd.outputTail)")

        // Nothing listens any more.
        let refused = try harness.curl(shop.url + "/", host: "tracing.example.com", timeout: 5)
        XCTAssertEqual(refused.status, 0)
    }
}
