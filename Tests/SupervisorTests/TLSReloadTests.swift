import ConfigCompiler
import Foundation
import XCTest
@testable import Supervisor

/// Certificates through the configuration pipeline: `--credentials-dir`, a reload whose
/// certificate went bad is rejected as a whole (so the old table keeps serving: reload() only
/// publishes a `.valid` outcome), and `--watch` fires on certificate files.
final class TLSReloadTests: XCTestCase {
    /// The ConfigCompilerTests certificates (Fixtures/tls/README.md).
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../ConfigCompilerTests/Fixtures/tls").standardized.path
    var root = ""
    var configDir: String { root + "/config" }
    var credentials: String { root + "/credentials" }

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "ingressd-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fm = FileManager.default
        try fm.createDirectory(atPath: configDir, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: credentials + "/web", withIntermediateDirectories: true)
        try fm.copyItem(atPath: fixtures + "/server.crt", toPath: credentials + "/web/tls.crt")
        try fm.copyItem(atPath: fixtures + "/server.key", toPath: credentials + "/web/tls.key")
        try """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 8443, name: https, protocol: HTTPS}
                hosts: [a.example.com]
                tls: {mode: SIMPLE, credentialName: web}
            """.write(toFile: configDir + "/gw.yaml", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testCredentialsDirFeedsTheTableAndABadCertificateRejectsTheReload() throws {
        guard case .valid(let good) = ConfigPipeline.load(paths: [configDir], namespace: "default", credentialsDir: credentials) else {
            return XCTFail("valid")
        }
        XCTAssertEqual(good.spec.listeners.first?.tlsServers.first?.mode, .simple)
        XCTAssertEqual(good.spec.listeners.first?.tlsServers.first?.certificateChainPEM,
                       Array(FileManager.default.contents(atPath: fixtures + "/server.crt")!))
        XCTAssertTrue(good.certificateFiles.contains(credentials + "/web/tls.crt"), "\(good.certificateFiles)")
        XCTAssertTrue(good.configDump(1).contains("\"tlsServers\":[{\"name\":\"default/gw servers[0] https\""))
        XCTAssertEqual(ConfigPipeline.check(paths: [configDir], namespace: "default", credentialsDir: credentials).exitCode, 0)

        // Elsewhere the credential does not exist: analyze's IST0101, before any compile.
        guard case .invalid(let missing) = ConfigPipeline.load(paths: [configDir], namespace: "default", credentialsDir: root) else {
            return XCTFail("invalid")
        }
        XCTAssertEqual(missing.first, "\(configDir)/gw.yaml:8: Gateway default/gw: spec.servers[0].tls.credentialName: Referenced credentialName not found: \"web\" (looked for \(root)/web/tls.crt, \(root)/web/cert)")

        // The key is replaced by another one: the reload's compile is invalid, naming the file.
        try FileManager.default.removeItem(atPath: credentials + "/web/tls.key")
        try FileManager.default.copyItem(atPath: fixtures + "/other.key", toPath: credentials + "/web/tls.key")
        guard case .valid(let parsed) = ConfigPipeline.parse(paths: [configDir], namespace: "default", credentialsDir: credentials) else {
            return XCTFail("parses: the files exist")
        }
        guard case .invalid(let bad) = ConfigPipeline.compile(parsed) else { return XCTFail("a bad key must reject the reload") }
        XCTAssertEqual(bad, ["\(configDir)/gw.yaml:8: Gateway default/gw: spec.servers[0].tls.credentialName: \(credentials)/web/tls.key does not match the certificate \(credentials)/web/tls.crt (the key is not the certificate's)"])
        XCTAssertEqual(ConfigPipeline.check(paths: [configDir], namespace: "default", credentialsDir: credentials).exitCode, 1)
    }

    func testWatchFiresOnCertificateFiles() throws {
        var w = try XCTUnwrap(ConfigWatcher(paths: [configDir]))
        defer { close(w.fd) }
        w.watch(files: [credentials + "/web/tls.crt", credentials + "/web/tls.key", credentials + "/gone/tls.crt"])
        func due(after change: () throws -> Void) rethrows -> Bool {
            try change()
            w.handleReadable(nowNs: 1)
            return w.takeDue(nowNs: 1 + ConfigWatcher.debounceNs)
        }
        XCTAssertFalse(due {})
        XCTAssertTrue(try due { try Data("x".utf8).write(to: URL(fileURLWithPath: credentials + "/web/tls.crt")) })
        XCTAssertFalse(try due { try Data("x".utf8).write(to: URL(fileURLWithPath: credentials + "/web/notes.txt")) },
                       "other names in a credential directory do not matter")
        // A Kubernetes Secret volume swaps its ..data link.
        XCTAssertTrue(try due {
            try FileManager.default.createDirectory(atPath: credentials + "/web/..data_tmp", withIntermediateDirectories: true)
            try FileManager.default.moveItem(atPath: credentials + "/web/..data_tmp", toPath: credentials + "/web/..data")
        })
        // The configuration directory is still watched for YAML.
        XCTAssertTrue(try due { try "# edit\n".write(toFile: configDir + "/other.yaml", atomically: true, encoding: .utf8) })
        XCTAssertFalse(try due { try "x".write(toFile: configDir + "/tls.crt", atomically: false, encoding: .utf8) },
                       "certificate names matter in their own directory only")
    }

    /// DestinationRule tls: its files reach `certificateFiles` (so `--watch` reloads on them) and
    /// the table, and a CA file that went bad rejects the reload.
    func testUpstreamTLSFilesAreWatchedAndCheckedOnReload() throws {
        let ca = root + "/upstream-ca.crt"
        try FileManager.default.copyItem(atPath: fixtures + "/ca.crt", toPath: ca)
        try """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api}
            spec:
              hosts: [api.example.com]
              ports: [{number: 443, name: https, protocol: HTTPS}]
              resolution: STATIC
              endpoints: [{address: 127.0.0.1}]
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: api}
            spec:
              host: api.example.com
              trafficPolicy:
                tls: {mode: MUTUAL, credentialName: web, insecureSkipVerify: true, sni: api.example.com}
                portLevelSettings:
                - port: {number: 443}
                  tls: {mode: SIMPLE, caCertificates: \(ca)}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs}
            spec:
              hosts: [a.example.com]
              gateways: [gw]
              http:
              - route: [{destination: {host: api.example.com}}]
            """.write(toFile: configDir + "/api.yaml", atomically: true, encoding: .utf8)
        guard case .valid(let good) = ConfigPipeline.load(paths: [configDir], namespace: "default", credentialsDir: credentials) else {
            return XCTFail("valid")
        }
        XCTAssertTrue(good.certificateFiles.contains(ca), "\(good.certificateFiles)")
        XCTAssertEqual(good.spec.clusters.first?.tls?.caCertificatesPEM, Array(FileManager.default.contents(atPath: ca)!))
        XCTAssertTrue(good.configDump(1).contains("\"tls\":{\"mode\":\"SIMPLE\""))

        try "not a certificate\n".write(toFile: ca, atomically: true, encoding: .utf8)
        guard case .valid(let parsed) = ConfigPipeline.parse(paths: [configDir], namespace: "default", credentialsDir: credentials) else {
            return XCTFail("parses: the files exist")
        }
        guard case .invalid(let bad) = ConfigPipeline.compile(parsed) else { return XCTFail("a bad CA must reject the reload") }
        XCTAssertEqual(bad, ["\(configDir)/api.yaml:19: DestinationRule default/api: spec.trafficPolicy.portLevelSettings[0].tls.caCertificates: \(ca) holds no PEM certificate (CA certificate)"])
    }
}
