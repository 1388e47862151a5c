// Hostile configuration files (InputLimits, CompileLimits): `check` refuses each one quickly
// with a FILE:LINE error, and a running gateway that reloads one keeps serving the old
// configuration — it used to die (stack overflow, exit 139) or stall for minutes.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

enum HostileYAML {
    /// (file name, contents, the FILE:LINE prefix and message `check` prints).
    static var cases: [(name: String, text: String, expected: String)] {
        var lists = ["apiVersion: v1", "kind: List", "items:",
                     "- &l0 {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: a}, spec: {hosts: [x.example], gateways: [gw], http: [{route: [{destination: {host: x}}]}]}}"]
        for i in 1...8 {
            lists.append("- &l\(i) {apiVersion: v1, kind: List, items: [" + Array(repeating: "*l\(i - 1)", count: 10).joined(separator: ", ") + "]}")
        }
        return [
            // 5,000 levels crashed the release binary, 20,000 the debug one.
            ("deep.yaml", String(repeating: "[", count: 50_000) + String(repeating: "]", count: 50_000) + "\n",
             "deep.yaml:1: YAML nests deeper than 64 levels; at most 64 nested lists and mappings are allowed"),
            ("deep-block.yaml", String(repeating: "- ", count: 50_000) + "x\n",
             "deep-block.yaml:1: YAML nests deeper than 64 levels"),
            ("aliases.yaml", "a: &a x\nb: [" + Array(repeating: "*a", count: 1_500).joined(separator: ", ") + "]\n",
             "aliases.yaml:2: too many YAML aliases (more than 1000); at most 1000 per file"),
            ("laughs.yaml", lists.joined(separator: "\n") + "\n",
             "laughs.yaml:1: YAML expands to more than 1000000 nodes (aliases included); at most 1000000 per file"),
        ]
    }
}

final class HostileConfigTests: IntegrationTestCase {
    func testCheckRefusesEachHostileFileQuickly() throws {
        let binary = Paths.ingressdBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError("ingressd binary not found at \(binary): run `swift build` or set INGRESSD_BIN")
        }
        for c in HostileYAML.cases {
            let file = try harness.write(c.name, c.text)
            let start = Date()
            let result = try harness.run(binary, ["check", "-c", file], timeout: 30)
            let seconds = Date().timeIntervalSince(start)
            XCTAssertEqual(result.status, 1, "\(c.name): \(result.output)")
            XCTAssertTrue(result.stdout.contains(harness.path(c.expected)), "\(c.name): \(result.output)")
            XCTAssertLessThan(seconds, 10, "\(c.name) took \(seconds) s")
        }
    }

    /// SIGHUP with each hostile file in place of a valid one: rejected, logged with FILE:LINE,
    /// and the workshop keeps being served by the same supervisor.
    func testReloadOfAHostileFileKeepsServingTheOldConfig() throws {
        let shop = try Workshop.start(harness)
        let ingressFile = shop.configs[0]
        for c in HostileYAML.cases {
            try harness.write("frontend-ingress.yaml", c.text)
            shop.ingressd.child.signal(SIGHUP)
            let expected = ingressFile + String(c.expected.dropFirst(c.name.count))
            let deadline = Date().addingTimeInterval(15)
            var logged = false
            while Date() < deadline && shop.ingressd.child.isRunning {
                let log = shop.ingressd.child.stdout + shop.ingressd.child.stderr
                if log.contains(expected) { logged = true; break }
                usleep(100_000)
            }
            XCTAssertTrue(shop.ingressd.child.isRunning, "\(c.name) must not stop ingressd:\n\(shop.ingressd.outputTail)")
            XCTAssertTrue(logged, "\(c.name): the rejection is logged as \(expected):\n\(shop.ingressd.outputTail)")
            let response = try harness.curl(shop.url + "/", host: "hipster.example.com")
            XCTAssertEqual(response.status, 200, c.name)
            XCTAssertTrue(servedBy(response)?.hasPrefix("frontend-") ?? false, "\(c.name): \(response.text)")
            XCTAssertEqual(shop.ingressd.readyStatus(), 200, c.name)
        }
        let log = shop.ingressd.child.stdout + shop.ingressd.child.stderr
        XCTAssertEqual(log.components(separatedBy: "reload rejected").count - 1, HostileYAML.cases.count, shop.ingressd.outputTail)
    }
}
