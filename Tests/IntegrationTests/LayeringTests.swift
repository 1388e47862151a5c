// The data plane imports no Foundation, Yams or Dispatch (DESIGN.md §3, §9; STYLE.md).

import Foundation
import XCTest

final class LayeringTests: XCTestCase {
    static let dataPlaneTargets = ["URing", "HTTPCore", "HTTP1", "HTTP2", "TLS", "RouteTable", "SharedMemory", "Proxy", "Worker"]
    static let forbidden = ["Foundation", "FoundationEssentials", "FoundationNetworking",
                            "FoundationInternationalization", "CoreFoundation", "Dispatch", "Yams"]

    /// The module an `import` line names, or nil: handles `@testable`/`@_implementationOnly`/
    /// `public` prefixes and `import struct Foundation.Data` forms.
    static func importedModule(_ line: Substring) -> String? {
        var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })[...]
        while let first = words.first, first.hasPrefix("@") || ["public", "package", "internal",
                                                                 "private", "fileprivate"].contains(String(first)) {
            words = words.dropFirst()
        }
        guard words.first == "import" else { return nil }
        words = words.dropFirst()
        if let kind = words.first,
           ["struct", "class", "enum", "protocol", "typealias", "func", "let", "var"].contains(String(kind)) {
            words = words.dropFirst()
        }
        guard let path = words.first else { return nil }
        return path.split(separator: ".").first.map(String.init)
    }

    func testImportParsing() {
        XCTAssertEqual(Self.importedModule("import Foundation"), "Foundation")
        XCTAssertEqual(Self.importedModule("@preconcurrency import Dispatch"), "Dispatch")
        XCTAssertEqual(Self.importedModule("import struct Foundation.Data"), "Foundation")
        XCTAssertEqual(Self.importedModule("  public import Yams"), "Yams")
        XCTAssertNil(Self.importedModule("// import Foundation"))
        XCTAssertNil(Self.importedModule("let importer = 1"))
    }

    func testDataPlaneImportsNoFoundationDispatchOrYams() throws {
        let sources = Paths.packageRoot.appendingPathComponent("Sources")
        var checked = 0
        var violations: [String] = []
        for target in Self.dataPlaneTargets {
            let dir = sources.appendingPathComponent(target)
            guard let files = FileManager.default.enumerator(atPath: dir.path) else {
                XCTFail("Sources/\(target) is missing")
                continue
            }
            for case let file as String in files where file.hasSuffix(".swift") {
                let path = dir.appendingPathComponent(file).path
                let text = try String(contentsOfFile: path, encoding: .utf8)
                checked += 1
                for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    if let module = Self.importedModule(line), Self.forbidden.contains(module) {
                        violations.append("Sources/\(target)/\(file):\(number + 1): imports \(module)")
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 0, "no data-plane sources found under \(sources.path)")
        XCTAssertEqual(violations, [], "the data plane must not import Foundation, Dispatch or Yams:\n"
                       + violations.joined(separator: "\n"))
    }
}
