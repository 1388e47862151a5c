// `ingressd check` and `ingressd version` (DESIGN.md §4).

import Foundation
import XCTest

final class CommandLineTests: IntegrationTestCase {
    private func ingressd(_ args: [String]) throws -> CommandResult {
        let binary = Paths.ingressdBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError("ingressd binary not found at \(binary): run `swift build` or set INGRESSD_BIN")
        }
        return try harness.run(binary, args)
    }

    func testCheckAcceptsTheWorkshop() throws {
        let result = try ingressd(["check",
                                   "-c", Paths.example("workshop/frontend-ingress.yaml").path,
                                   "-c", Paths.example("workshop/addons-ingress.yaml").path,
                                   "-c", Paths.example("services.yaml").path])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.stdout.split(separator: "\n").count, 1, "one summary line: \(result.stdout)")
    }

    func testCheckAcceptsTheCanary() throws {
        let result = try ingressd(["check",
                                   "-c", Paths.example("canary/app-gateway.yaml").path,
                                   "-c", Paths.example("workshop/frontend-canary.yaml").path,
                                   "-c", Paths.example("workshop/addons-ingress.yaml").path,
                                   "-c", Paths.example("services.yaml").path])
        XCTAssertEqual(result.status, 0, result.output)
    }

    /// `routes --request` answers with the data plane's own matcher: the canary's weighted
    /// subsets, and a 404 for a path no route covers.
    func testRoutesExplainsARequest() throws {
        let configs = ["-c", Paths.example("canary/app-gateway.yaml").path,
                       "-c", Paths.example("workshop/frontend-canary.yaml").path,
                       "-c", Paths.example("workshop/addons-ingress.yaml").path,
                       "-c", Paths.example("services.yaml").path]
        let canary = try ingressd(["routes"] + configs + ["--request", "GET http://hipster.example.com/cart"])
        XCTAssertEqual(canary.status, 0, canary.output)
        XCTAssertTrue(canary.stdout.contains("route: default/frontend-virtualservice/0.0"), canary.stdout)
        XCTAssertTrue(canary.stdout.contains("outbound|80|v1|frontend.default.svc.cluster.local 80.0%"), canary.stdout)
        XCTAssertTrue(canary.stdout.contains("outbound|80|v2|frontend.default.svc.cluster.local 20.0%"), canary.stdout)

        let miss = try ingressd(["routes"] + configs + ["--request", "GET /grafana", "-H", "Host: dashboard.example.com"])
        XCTAssertTrue(miss.stdout.contains("404"), miss.stdout)
        let table = try ingressd(["routes"] + configs)
        XCTAssertTrue(table.stdout.contains("uri prefix \"/kiali\""), table.stdout)
    }

    func testCheckReportsFileLineKindNameAndField() throws {
        // Line 13 holds the typo `prefixx` (unknown fields are errors: they are typos).
        let bad = try harness.write("bad.yaml", """
            apiVersion: networking.istio.io/v1alpha3
            kind: VirtualService
            metadata:
              name: bad
            spec:
              hosts:
              - "hipster.example.com"
              gateways:
              - app-gateway
              http:
              - match:
                - uri:
                    prefixx: /
                route:
                - destination:
                    host: frontend

            """)
        let result = try ingressd(["check", "-c", bad])
        XCTAssertEqual(result.status, 1, "invalid configuration exits 1: \(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        let problem = lines.first { $0.hasPrefix(bad + ":") }
        XCTAssertNotNil(problem, "a line `FILE:LINE: KIND NS/NAME: field.path: message`: \(result.output)")
        guard let problem else { return }
        let parts = problem.dropFirst(bad.count + 1).split(separator: ":", maxSplits: 1)
        XCTAssertTrue((12...13).contains(Int(parts.first ?? "") ?? 0), "the typo is on line 13: \(problem)")
        XCTAssertTrue(problem.contains("VirtualService default/bad: "), problem)
        XCTAssertTrue(problem.contains("prefixx"), problem)
    }

    func testBadCommandLineExits2() throws {
        let result = try ingressd(["run", "--workers", "lots", "-c", "/nonexistent.yaml"])
        XCTAssertEqual(result.status, 2, result.output)
    }

    func testVersion() throws {
        let result = try ingressd(["version"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertFalse(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }
}
