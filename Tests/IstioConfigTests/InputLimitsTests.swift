// Hostile YAML is refused with a FILE:LINE diagnostic, quickly, without crashing the reader
// (InputLimits.swift): nesting that would exhaust the composer's stack, alias amplification,
// too many aliases, oversized files. Real manifests pass the byte scan untouched.
import Foundation
@testable import IstioConfig
import XCTest

final class InputLimitsTests: XCTestCase {
    private func errors(_ yaml: String, file: String = "hostile.yaml") -> [String] {
        loadYAML(yaml, file: file).diagnostics.errors.map(\.description)
    }

    private func assertRefused(_ yaml: String, line: Int, _ needle: String, file: StaticString = #filePath,
                               sourceLine: UInt = #line) {
        let start = Date()
        let found = errors(yaml)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(found.count, 1, "\(found)", file: file, line: sourceLine)
        XCTAssertTrue(found.first?.hasPrefix("hostile.yaml:\(line): ") ?? false, "\(found)", file: file, line: sourceLine)
        XCTAssertTrue(found.first?.contains(needle) ?? false, "\(found)", file: file, line: sourceLine)
        XCTAssertLessThan(seconds, 10, "refused quickly", file: file, line: sourceLine)
    }

    func testDeepFlowNestingIsRefusedBeforeYams() {
        // 5,000 `[` crashed the release binary (stack overflow in the composer).
        assertRefused(String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000), line: 1,
                      "nests deeper than 64 levels")
        assertRefused(String(repeating: "[", count: 100_000), line: 1, "nests deeper than 64 levels")
        assertRefused("a: 1\nb:\n  c: " + String(repeating: "{x: ", count: 200), line: 3, "nests deeper")
    }

    func testDeepBlockNestingIsRefused() {
        assertRefused(String(repeating: "- ", count: 5_000) + "x\n", line: 1, "nests deeper than 64 levels")
        var indented = ""
        for i in 0..<100 { indented += String(repeating: " ", count: i) + "k:\n" }
        assertRefused(indented, line: 65, "nests deeper than 64 levels")
    }

    func testNestingWithinTheLimitAndBracketsInTextPass() {
        let ok = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        XCTAssertNil(prescanYAML(ok))
        // Brackets inside quoted, plain, block scalars and comments are text, not nesting.
        let text = """
            a: "\(String(repeating: "[", count: 100))"
            b: '\(String(repeating: "{", count: 100))'' still quoted'
            c: x\(String(repeating: "[", count: 100))
            # \(String(repeating: "[", count: 100))
            d: |
              \(String(repeating: "[", count: 100))
              *not-an-alias
            e: "multi
              line \(String(repeating: "[", count: 100))"
            f: 1
            """
        XCTAssertNil(prescanYAML(text))
        XCTAssertEqual(prescanYAML("a: [" + String(repeating: "[", count: 64)), PrescanFinding(line: 1,
            message: "YAML nests deeper than 64 levels; at most 64 nested lists and mappings are allowed"))
    }

    func testEveryExampleAndFixturePassesTheScan() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        var checked = 0
        for dir in ["examples", "examples/workshop", "Tests/ConfigCompilerTests/Fixtures", "Tests/SupervisorTests/Fixtures", "deploy"] {
            let url = root.appendingPathComponent(dir)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
                let text = try String(contentsOf: url.appendingPathComponent(name), encoding: .utf8)
                XCTAssertNil(prescanYAML(text), "\(dir)/\(name)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 3)
    }

    func testTooManyAliasesAreRefused() {
        let yaml = "a: &a x\nb: [" + Array(repeating: "*a", count: 1_001).joined(separator: ", ") + "]\n"
        assertRefused(yaml, line: 2, "too many YAML aliases (more than 1000); at most 1000 per file")
        // Fewer aliases are fine.
        XCTAssertNil(prescanYAML("a: &a x\nb: [*a, *a]\nc: \"*a\"\n"))
    }

    func testAliasAmplificationIsRefusedQuickly() {
        // Lists of lists: every expansion was decoded; this 1.5 KB file ran `check` past 60 s.
        var lines = ["apiVersion: v1", "kind: List", "items:",
                     "- &l0 {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: a}, spec: {hosts: [x.example], gateways: [gw], http: [{route: [{destination: {host: x}}]}]}}"]
        for i in 1...8 {
            lines.append("- &l\(i) {apiVersion: v1, kind: List, items: [" + Array(repeating: "*l\(i - 1)", count: 10).joined(separator: ", ") + "]}")
        }
        assertRefused(lines.joined(separator: "\n"), line: 1, "YAML expands to more than 1000000 nodes (aliases included)")
    }

    func testAliasesThatNestTooDeepAreRefused() {
        // Each alias nests the previous one deeper: small before expansion, deep after.
        var lines = ["a0: &a0 [[[[[[[[[[x]]]]]]]]]]"]
        for i in 1...10 { lines.append("a\(i): &a\(i) [[[[[[[[[[*a\(i - 1)]]]]]]]]]]") }
        assertRefused(lines.joined(separator: "\n"), line: 1, "nests deeper than 64 levels once aliases are expanded")
    }

    func testOversizedFileIsRefusedWithoutReadingItWhole() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("limits-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("big.yaml").path
        try Data(("# " + String(repeating: "x", count: InputLimits.maxFileBytes) + "\n").utf8).write(to: URL(fileURLWithPath: path))
        let result = ConfigLoader().load(paths: [path])
        XCTAssertEqual(result.diagnostics.errors.map(\.description),
                       ["\(path):0: file is larger than 4194304 bytes; at most 4 MiB per file"])
    }
}

final class HostLimitTests: XCTestCase {
    func testAVirtualServiceWithTooManyHostsIsAnError() {
        let hosts = (0...InputLimits.maxHosts).map { "h\($0).example.com" }.joined(separator: ", ")
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: vs
            spec:
              gateways: [gw]
              hosts: [\(hosts)]
              http:
              - route:
                - destination: {host: x}
            """
        let start = Date()
        let errors = loadYAML(yaml).diagnostics.errors.map(\.description)
        XCTAssertEqual(errors, ["test.yaml:7: VirtualService default/vs: spec.hosts: too many hosts (1001); at most 1000"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }
}
