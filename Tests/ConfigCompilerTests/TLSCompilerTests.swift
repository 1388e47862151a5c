import ConfigCompiler
import Foundation
import IstioConfig
import RouteTable
import XCTest

let tlsFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/tls").path

func fixtureBytes(_ name: String) -> [UInt8] {
    Array(FileManager.default.contents(atPath: "\(tlsFixtures)/\(name)") ?? Data())
}

/// A temporary credentials directory: each (directory, file name, fixture) copies a fixture of
/// Fixtures/tls into DIR/directory/name, as a Kubernetes Secret volume lays out its keys.
func makeCredentials(_ prefix: String, _ layout: [(dir: String, name: String, fixture: String)]) throws -> String {
    let root = NSTemporaryDirectory() + "\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fm = FileManager.default
    for (dir, name, fixture) in layout {
        try fm.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true)
        try fm.copyItem(atPath: "\(tlsFixtures)/\(fixture)", toPath: "\(root)/\(dir)/\(name)")
    }
    return root
}

/// Gateway HTTPS/TLS servers and VirtualService tls routes (istio-semantics.md §2, §3.3).
final class TLSCompilerTests: XCTestCase {
    var credentials = ""

    /// A credentials directory laid out as Kubernetes Secret volumes: `web` (tls.crt/tls.key),
    /// `mtls` with its CA in `mtls-cacert`, `alt` with the generic names cert/key/cacert, and
    /// `noca` without any CA.
    override func setUpWithError() throws {
        credentials = try makeCredentials("ingressd-creds", [
            ("web", "tls.crt", "server.crt"), ("web", "tls.key", "server.key"),
            ("mtls", "tls.crt", "server.crt"), ("mtls", "tls.key", "server.key"), ("mtls-cacert", "ca.crt", "ca.crt"),
            ("alt", "cert", "server.crt"), ("alt", "key", "server.key"), ("alt", "cacert", "ca.crt"),
            ("noca", "tls.crt", "server.crt"), ("noca", "tls.key", "server.key"),
        ])
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: credentials)
    }

    func compileTLS(_ yaml: String) -> (LoadResult, CompileResult) {
        let loaded = ConfigLoader(defaultNamespace: "default").load(yaml: yaml, file: "test.yaml")
        return (loaded, compileResult(loaded.resources, options: CompileOptions(resolve: fakeDNS, credentialsDir: credentials)))
    }

    let backends = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: backends}
        spec:
          hosts: [a.internal, b.internal]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8443, name: tls, protocol: TLS}]
          endpoints:
          - {address: 127.0.0.1, labels: {version: v1}}
          - {address: 127.0.0.2, labels: {version: v2}}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: a}
        spec:
          host: a.internal
          subsets:
          - {name: v1, labels: {version: v1}}
          - {name: v2, labels: {version: v2}}
        """

    func testSimpleServerWithFilesTerminatesAndServesVirtualHosts() throws {
        let (loaded, result) = compileTLS("""
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 443, name: https, protocol: HTTPS}
                hosts: ["default/A.Example.com"]
                tls:
                  mode: SIMPLE
                  serverCertificate: \(tlsFixtures)/server.crt
                  privateKey: \(tlsFixtures)/server.key
                  minProtocolVersion: TLSV1_2
                  maxProtocolVersion: TLSV1_3
                  cipherSuites: [ECDHE-ECDSA-AES128-GCM-SHA256, NOT-A-CIPHER, ECDHE-ECDSA-AES128-GCM-SHA256, AES256-SHA]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web}
            spec:
              hosts: [a.example.com]
              gateways: [gw]
              http:
              - route:
                - destination: {host: frontend}
            """)
        XCTAssertEqual(loaded.diagnostics.errors, [])
        XCTAssertEqual(loaded.diagnostics.warnings.map(\.message), [
            "ignoring invalid cipher suites: [NOT-A-CIPHER]",
            "ignoring duplicate cipher suites: [ECDHE-ECDSA-AES128-GCM-SHA256]",
        ])
        XCTAssertEqual(result.diagnostics.errors, [])
        let l = try XCTUnwrap(result.table.listeners.first)
        XCTAssertEqual(l.proto, .https)
        XCTAssertEqual(l.tlsServers.count, 1)
        let s = l.tlsServers[0]
        XCTAssertEqual(s.name, "default/gw servers[0] https")
        XCTAssertEqual(s.hosts, ["a.example.com"])
        XCTAssertEqual(s.mode, .simple)
        XCTAssertEqual(s.certificateChainPEM, fixtureBytes("server.crt"))
        XCTAssertEqual(s.privateKeyPEM, fixtureBytes("server.key"))
        XCTAssertEqual(s.caCertificatesPEM, [])
        XCTAssertEqual(s.minVersion, .v1_2)
        XCTAssertEqual(s.maxVersion, .v1_3)
        XCTAssertEqual(s.cipherSuites, "ECDHE-ECDSA-AES128-GCM-SHA256:AES256-SHA")
        XCTAssertEqual(l.virtualHosts.map(\.name), ["a.example.com:443"])
        XCTAssertEqual(l.virtualHosts[0].routes.map { clusterNames($0, result.table) },
                       [["outbound|80||frontend.default.svc.cluster.local"]])
        XCTAssertEqual(l.tlsRoutes, [])
        XCTAssertEqual(result.certificateFiles, ["\(tlsFixtures)/server.crt", "\(tlsFixtures)/server.key"])

        // The data plane finds the server by SNI in the built image.
        let image = try TableImage.build(result.table)
        try image.withUnsafeBytes { raw in
            let r = try TableReader(validating: raw.baseAddress!, count: raw.count)
            let sni = Array("A.EXAMPLE.COM".utf8)
            XCTAssertEqual(sni.withUnsafeBytes { r.tlsServer(listener: 0, sni: $0) }, 0)
            XCTAssertEqual(Array(r.tlsServerCertificateChain(0)), fixtureBytes("server.crt"))
        }
    }

    func testCredentialNameLayouts() throws {
        let (loaded, result) = compileTLS("""
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 443, name: web, protocol: HTTPS}
                hosts: [web.example.com]
                tls: {mode: SIMPLE, credentialName: web}
              - port: {number: 443, name: mtls, protocol: HTTPS}
                hosts: [mtls.example.com]
                tls:
                  mode: MUTUAL
                  credentialName: mtls
                  subjectAltNames: [client.example.com]
                  verifyCertificateSpki: [Z3Vlc3M=]
                  verifyCertificateHash: ["ab:cd"]
              - port: {number: 443, name: alt, protocol: HTTPS}
                hosts: [alt.example.com]
                tls: {mode: OPTIONAL_MUTUAL, credentialName: alt}
              - port: {number: 443, name: ca-override, protocol: HTTPS}
                hosts: [override.example.com]
                tls: {mode: MUTUAL, credentialName: noca, caCertCredentialName: alt}
            """)
        XCTAssertEqual(loaded.diagnostics.errors, [])
        XCTAssertEqual(result.diagnostics.errors, [])
        let servers = try XCTUnwrap(result.table.listeners.first).tlsServers
        XCTAssertEqual(servers.map(\.mode), [.simple, .mutual, .optionalMutual, .mutual])
        for s in servers {
            XCTAssertEqual(s.certificateChainPEM, fixtureBytes("server.crt"), s.name)
            XCTAssertEqual(s.privateKeyPEM, fixtureBytes("server.key"), s.name)
        }
        XCTAssertEqual(servers[0].caCertificatesPEM, [], "SIMPLE carries no CA")
        XCTAssertEqual(servers[1].caCertificatesPEM, fixtureBytes("ca.crt"), "from mtls-cacert/ca.crt")
        XCTAssertEqual(servers[2].caCertificatesPEM, fixtureBytes("ca.crt"), "from alt/cacert")
        XCTAssertEqual(servers[3].caCertificatesPEM, fixtureBytes("ca.crt"), "caCertCredentialName")
        XCTAssertEqual(servers[1].subjectAltNames, ["client.example.com"])
        XCTAssertEqual(servers[1].verifyCertificateSpki, ["Z3Vlc3M="])
        XCTAssertEqual(servers[1].verifyCertificateHash, ["ab:cd"])
        XCTAssertTrue(result.certificateFiles.contains("\(credentials)/web/tls.crt"))
        XCTAssertTrue(result.certificateFiles.contains("\(credentials)/web/cert"), "candidates are watched too")
        XCTAssertTrue(result.certificateFiles.contains("\(credentials)/mtls-cacert/ca.crt"))
        XCTAssertTrue(result.certificateFiles.contains("\(credentials)/alt/key"))
        XCTAssertEqual(Set(result.certificateFiles).count, result.certificateFiles.count)
    }

    func testSeveralServersAndGatewaysShareAPortAndDuplicateHostsAreSkipped() throws {
        let (loaded, result) = compileTLS(backends + """

            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw1}
            spec:
              servers:
              - port: {number: 443, name: https, protocol: HTTPS}
                hosts: [web.example.com]
                tls: {mode: SIMPLE, credentialName: web}
            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw2, namespace: edge}
            spec:
              servers:
              - port: {number: 443, name: pass, protocol: HTTPS}
                hosts: ["*.internal.example.com"]
                tls: {mode: PASSTHROUGH}
              - port: {number: 443, name: again, protocol: HTTPS}
                hosts: [other.example.com, "edge/WEB.example.com"]
                tls: {mode: SIMPLE, credentialName: web}
              - port: {number: 443, name: tls, protocol: TLS}
                hosts: [tls.example.com]
                tls: {mode: PASSTHROUGH}
            """)
        XCTAssertEqual(loaded.diagnostics.errors, [])
        XCTAssertEqual(result.diagnostics.errors, [])
        XCTAssertEqual(result.diagnostics.warnings.map { "\($0.path): \($0.message)" }, [
            "spec.servers[2].port: skipping server on gateway gw2 port tls.443.TLS: conflict with existing server 443.HTTPS",
            "spec.servers[1].hosts: skipping server on gateway gw2, duplicate host names: [web.example.com]",
        ])
        XCTAssertEqual(result.diagnostics.warnings.first?.description.hasPrefix("test.yaml:"), true)
        let l = try XCTUnwrap(result.table.listeners.first)
        XCTAssertEqual(result.table.listeners.count, 1)
        XCTAssertEqual(l.tlsServers.map(\.name), ["default/gw1 servers[0] https", "edge/gw2 servers[0] pass"])
        XCTAssertEqual(l.tlsServers.map(\.hosts), [["web.example.com"], ["*.internal.example.com"]])
        XCTAssertNoThrow(try TableImage.build(result.table))
    }

    func testPassthroughServersGetTLSRoutesBySNI() throws {
        let (loaded, result) = compileTLS(backends + """

            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 443, name: https, protocol: HTTPS}
                hosts: ["*.example.com"]
                tls: {mode: PASSTHROUGH}
              - port: {number: 8443, name: tls, protocol: TLS}
                hosts: [db.example.com]
                tls: {mode: PASSTHROUGH}
              - port: {number: 8443, name: tls2, protocol: TLS}
                hosts: [cache.example.com]
                tls: {}
            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: other}
            spec:
              servers:
              - port: {number: 9443, name: tls, protocol: TLS}
                hosts: ["*"]
                tls: {mode: PASSTHROUGH}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: pass}
            spec:
              hosts: ["*.example.com"]
              gateways: [gw]
              tls:
              - match:
                - sniHosts: [A.example.com]
                  port: 443
                route:
                - destination: {host: a.internal, port: {number: 8443}, subset: v1}
                  weight: 75
                - destination: {host: a.internal, port: {number: 8443}, subset: v2}
                  weight: 25
              - match:
                - sniHosts: ["*.example.com"]
                - sniHosts: [x.example.com]
                  port: 9999
                route:
                - destination: {host: b.internal, port: {number: 8443}}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: bymatch}
            spec:
              hosts: ["*.example.org"]
              tls:
              - match:
                - sniHosts: ["*.example.org"]
                  gateways: [other]
                route:
                - destination: {host: b.internal, port: {number: 8443}}
            """)
        XCTAssertEqual(loaded.diagnostics.errors, [])
        XCTAssertEqual(result.diagnostics.errors, [])
        XCTAssertFalse(loaded.diagnostics.contains { $0.message.contains("not supported") }, "\(loaded.diagnostics)")
        let t = result.table
        XCTAssertEqual(t.listeners.map(\.port), [443, 8443, 9443])
        XCTAssertEqual(t.listeners.map(\.proto), [.https, .tls, .tls])
        let https = t.listeners[0]
        XCTAssertEqual(https.tlsServers.map(\.mode), [.passthrough])
        XCTAssertEqual(https.virtualHosts, [], "nothing terminates on 443")
        XCTAssertEqual(https.tlsRoutes.map(\.name), ["default/pass/tls[0]", "default/pass/tls[1]"])
        XCTAssertEqual(https.tlsRoutes.map(\.sniHosts), [["a.example.com"], ["*.example.com"]])
        func clusters(_ r: TLSRouteSpec) -> [String] {
            r.destinations.map { "\(t.clusters[Int($0.cluster)].name) \($0.weight)" }
        }
        XCTAssertEqual(clusters(https.tlsRoutes[0]), ["outbound|8443|v1|a.internal 75", "outbound|8443|v2|a.internal 25"])
        XCTAssertEqual(clusters(https.tlsRoutes[1]), ["outbound|8443||b.internal 100"])
        // Port 8443: two passthrough servers (mode absent = PASSTHROUGH); the match with port
        // 9999 never applies, the wildcard block's SNI is cut down to each server's hosts.
        let tls = t.listeners[1]
        XCTAssertEqual(tls.tlsServers.map(\.hosts), [["db.example.com"], ["cache.example.com"]])
        XCTAssertEqual(tls.tlsServers.map(\.mode), [.passthrough, .passthrough])
        XCTAssertEqual(tls.tlsRoutes.map(\.name), ["default/pass/tls[1]"])
        XCTAssertEqual(tls.tlsRoutes.map(\.sniHosts), [["db.example.com", "cache.example.com"]])
        // Bound only through a match's gateways.
        XCTAssertEqual(t.listeners[2].tlsRoutes.map(\.name), ["default/bymatch/tls[0]"])
        XCTAssertEqual(t.listeners[2].tlsRoutes.map(\.sniHosts), [["*.example.org"]])

        let image = try TableImage.build(t)
        try image.withUnsafeBytes { raw in
            let r = try TableReader(validating: raw.baseAddress!, count: raw.count)
            func route(_ l: Int32, _ sni: String) -> String {
                let x = Array(sni.utf8).withUnsafeBytes { r.tlsRoute(listener: l, sni: $0) }
                return x < 0 ? "-" : String(decoding: r.tlsRouteName(x), as: UTF8.self)
            }
            XCTAssertEqual(route(0, "a.example.com"), "default/pass/tls[0]")
            XCTAssertEqual(route(0, "b.example.com"), "default/pass/tls[1]")
            XCTAssertEqual(route(1, "db.example.com"), "default/pass/tls[1]")
            XCTAssertEqual(route(1, "x.example.com"), "-")
        }
    }

    func testTerminatedTLSServerTakesTCPRoutes() throws {
        let (loaded, result) = compileTLS(backends + """

            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 8443, name: tls, protocol: TLS}
                hosts: [db.example.com]
                tls: {mode: SIMPLE, credentialName: web}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: db}
            spec:
              hosts: [db.example.com]
              gateways: [gw]
              tcp:
              - route:
                - destination: {host: a.internal, port: {number: 8443}}
            """)
        XCTAssertEqual(loaded.diagnostics.errors, [])
        XCTAssertFalse(loaded.diagnostics.contains { $0.message.contains("not supported") }, "\(loaded.diagnostics)")
        XCTAssertEqual(result.diagnostics.errors, [])
        let l = try XCTUnwrap(result.table.listeners.first)
        XCTAssertEqual(l.proto, .tls)
        XCTAssertEqual(l.tlsServers.map(\.mode), [.simple])
        XCTAssertEqual(l.tcpRoutes.map(\.name), ["default/db/tcp[0]"])
        XCTAssertEqual(l.tlsRoutes, [])
    }

    /// Certificate problems are errors in the contract form naming the file; dates are warnings.
    func testCertificateErrorsNameTheFile() throws {
        let notPEM = credentials + "/not-pem.crt"
        try "hello\n".write(toFile: notPEM, atomically: true, encoding: .utf8)
        func server(_ tls: String) -> [String] {
            let (_, result) = compileTLS("""
                apiVersion: networking.istio.io/v1
                kind: Gateway
                metadata: {name: gw}
                spec:
                  servers:
                  - port: {number: 443, name: https, protocol: HTTPS}
                    hosts: [a.example.com]
                    tls: \(tls)
                """)
            XCTAssertTrue(result.diagnostics.hasErrors == result.table.listeners.allSatisfy { $0.tlsServers.isEmpty },
                          "a failing server is left out, a passing one kept")
            return result.diagnostics.filter { $0.severity != .note }.map { "\($0.severity): \($0.description)" }
        }
        let f = tlsFixtures
        let loc = "test.yaml:8: Gateway default/gw: spec.servers[0].tls"
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: /nonexistent/a.crt, privateKey: \(f)/server.key}"), [
            "error: \(loc).serverCertificate: cannot read /nonexistent/a.crt: No such file or directory",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: \(notPEM), privateKey: \(f)/server.key}"), [
            "error: \(loc).serverCertificate: \(notPEM) holds no PEM certificate",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: \(f)/server.key, privateKey: \(f)/server.key}"), [
            "error: \(loc).serverCertificate: \(f)/server.key holds no PEM certificate",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: \(f)/server.crt, privateKey: \(f)/other.key}"), [
            "error: \(loc).privateKey: \(f)/other.key does not match the certificate \(f)/server.crt (the key is not the certificate's)",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: \(f)/server.crt, privateKey: \(f)/encrypted.key}"), [
            "error: \(loc).privateKey: \(f)/encrypted.key is not a PEM private key (or it is encrypted: ingressd needs an unencrypted key)",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: \(f)/server.crt, privateKey: \(f)/server.crt}"), [
            "error: \(loc).privateKey: \(f)/server.crt is not a PEM private key (or it is encrypted: ingressd needs an unencrypted key)",
        ])
        XCTAssertEqual(server("{mode: MUTUAL, serverCertificate: \(f)/server.crt, privateKey: \(f)/server.key, caCertificates: \(notPEM)}"), [
            "error: \(loc).caCertificates: \(notPEM) holds no PEM certificate (client CA bundle)",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, credentialName: missing}"), [
            "error: \(loc).credentialName: cannot read \(credentials)/missing/tls.crt: No such file or directory",
            "error: \(loc).credentialName: cannot read \(credentials)/missing/tls.key: No such file or directory",
        ])
        XCTAssertEqual(server("{mode: MUTUAL, credentialName: noca}"), [
            "error: \(loc).credentialName: MUTUAL TLS requires a client CA bundle: credential \"noca\" has none (looked for \(credentials)/noca/ca.crt, \(credentials)/noca/cacert, \(credentials)/noca-cacert/ca.crt, \(credentials)/noca-cacert/cacert)",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: \(f)/expired.crt, privateKey: \(f)/expired.key}"), [
            "warning: \(loc).serverCertificate: certificate \(f)/expired.crt (/CN=expired.example.com) expired on 2001-01-01T00:00:00Z; clients will refuse it",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: \(f)/future.crt, privateKey: \(f)/future.key}"), [
            "warning: \(loc).serverCertificate: certificate \(f)/future.crt (/CN=future.example.com) is not valid before 2120-01-01T00:00:00Z; clients will refuse it",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: \(f)/server.crt, privateKey: \(f)/server.key}"), [])
    }

    func testRenderingShowsCertificatesNeverKeys() throws {
        let (_, result) = compileTLS(backends + """

            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 443, name: https, protocol: HTTPS}
                hosts: [mtls.example.com]
                tls: {mode: MUTUAL, credentialName: mtls, minProtocolVersion: TLSV1_3}
              - port: {number: 443, name: pass, protocol: HTTPS}
                hosts: [pass.example.com]
                tls: {mode: PASSTHROUGH}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: pass}
            spec:
              hosts: [pass.example.com]
              gateways: [gw]
              tls:
              - match: [{sniHosts: [pass.example.com]}]
                route:
                - destination: {host: b.internal, port: {number: 8443}}
            """)
        XCTAssertEqual(result.diagnostics.errors, [])
        let text = renderRoutes(result.table)
        let json = renderConfigDumpJSON(result.table, generation: 3)
        let key = String(decoding: fixtureBytes("server.key"), as: UTF8.self)
        let keyBody = key.split(separator: "\n")[1]
        for out in [text, json] {
            XCTAssertFalse(out.contains("PRIVATE KEY"))
            XCTAssertFalse(out.contains(keyBody), "key bytes leaked")
            XCTAssertTrue(out.contains("/CN=a.example.com/O=ingressd tests"), out)
            XCTAssertTrue(out.contains("/CN=ingressd test client CA"), out)
            XCTAssertTrue(out.contains("default/pass/tls[0]"), out)
            XCTAssertFalse(out.contains("not served"), out)
        }
        XCTAssertTrue(text.contains("tls server default/gw servers[0] https MUTUAL hosts [mtls.example.com]"), text)
        XCTAssertTrue(text.contains("  versions: TLSV1_3 to TLS_AUTO"), text)
        XCTAssertTrue(text.contains("tls server default/gw servers[1] pass PASSTHROUGH hosts [pass.example.com]"), text)
        XCTAssertTrue(text.contains("1. default/pass/tls[0] sni [pass.example.com]"), text)
        XCTAssertTrue(json.contains("\"mode\":\"MUTUAL\""), json)
        XCTAssertTrue(json.contains("\"minProtocolVersion\":\"TLSV1_3\""), json)
        XCTAssertTrue(json.contains("\"sniHosts\":[\"pass.example.com\"]"), json)
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(json.utf8)), "config_dump stays valid JSON")
    }
}

extension TLSCompilerTests {
    /// A VirtualService that only has tls routes binds through their match gateways, and does
    /// not take a host away from the HTTP server of the same Gateway.
    func testTLSOnlyVirtualServiceLeavesHTTPHostsAlone() throws {
        let (_, result) = compileTLS(backends + """

            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 80, name: http, protocol: HTTP}
                hosts: ["*"]
              - port: {number: 443, name: pass, protocol: TLS}
                hosts: ["*"]
                tls: {mode: PASSTHROUGH}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web}
            spec:
              hosts: ["*"]
              gateways: [gw]
              http:
              - route:
                - destination: {host: frontend}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: pass}
            spec:
              hosts: [a.example.com]
              tls:
              - match: [{sniHosts: [a.example.com], gateways: [gw]}]
                route:
                - destination: {host: b.internal, port: {number: 8443}}
            """)
        XCTAssertEqual(result.diagnostics.errors, [])
        XCTAssertEqual(result.table.listeners.map(\.port), [80, 443])
        XCTAssertEqual(result.table.listeners[0].virtualHosts.map(\.name), ["*:80"])
        XCTAssertEqual(result.table.listeners[1].tlsRoutes.map(\.name), ["default/pass/tls[0]"])
    }
}
