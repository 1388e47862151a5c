import ConfigCompiler
import Foundation
import IstioConfig
import RouteTable
import XCTest

/// DestinationRule `trafficPolicy.tls` → ClusterSpec.tls (UpstreamTLS.swift): modes, files and
/// credentials read into PEM, Istio's merge precedence, FILE:LINE errors, rendering.
final class UpstreamTLSCompilerTests: XCTestCase {
    var credentials = ""
    let f = tlsFixtures
    let fqdn = "api.default.svc.cluster.local"

    /// Credentials laid out as Secret volumes: `client` (certificate, key and CA in one),
    /// `split` (certificate and key, CA in `split-cacert`), `trust` (a CA only), `noca`, and
    /// `revoking` (a CA and a CRL, `ca.crl`) and `revoking2` (its CRL `crl` in `revoking2-cacert`).
    override func setUpWithError() throws {
        credentials = try makeCredentials("ingressd-upstream-creds", [
            ("client", "tls.crt", "server.crt"), ("client", "tls.key", "server.key"), ("client", "ca.crt", "ca.crt"),
            ("split", "tls.crt", "server.crt"), ("split", "tls.key", "server.key"), ("split-cacert", "ca.crt", "ca.crt"),
            ("trust", "ca.crt", "ca.crt"),
            ("noca", "tls.crt", "server.crt"), ("noca", "tls.key", "server.key"),
            ("revoking", "ca.crt", "ca.crt"), ("revoking", "ca.crl", "upstream.crl"),
            ("revoking2", "ca.crt", "ca.crt"), ("revoking2-cacert", "crl", "upstream.crl"),
        ])
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: credentials)
    }

    /// The DestinationRule for `api` (its spec after `host`, from line 6), a two-port
    /// ServiceEntry with v1/v2 endpoints, and one route per destination.
    func compileRule(_ rule: String, destinations: [String] = ["{host: api, port: {number: 443}}"]) -> (LoadResult, CompileResult) {
        let http = destinations.enumerated().map { i, d in
            "  - match: [{uri: {prefix: /r\(i)}}]\n    route: [{destination: \(d)}]"
        }.joined(separator: "\n")
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: api}
            spec:
              host: api
            \(rule.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n"))
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api}
            spec:
              hosts: [api.default.svc.cluster.local]
              ports: [{number: 443, name: https, protocol: HTTPS}, {number: 8443, name: admin, protocol: HTTPS}]
              resolution: STATIC
              endpoints:
              - {address: 10.1.0.1, labels: {version: v1}}
              - {address: 10.1.0.2, labels: {version: v2}}
            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 80, name: http, protocol: HTTP}
                hosts: ["*"]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs}
            spec:
              hosts: [a.example.com]
              gateways: [gw]
              http:
            \(http)
            """
        let loaded = ConfigLoader(defaultNamespace: "default").load(yaml: yaml, file: "test.yaml")
        return (loaded, compileResult(loaded.resources, options: CompileOptions(resolve: fakeDNS, credentialsDir: credentials)))
    }

    func clusters(_ rule: String, destinations: [String] = ["{host: api, port: {number: 443}}"],
                  file: StaticString = #filePath, line: UInt = #line) -> [String: ClusterSpec] {
        let (loaded, result) = compileRule(rule, destinations: destinations)
        XCTAssertEqual(loaded.diagnostics.errors, [], file: file, line: line)
        XCTAssertEqual(result.diagnostics.errors, [], file: file, line: line)
        XCTAssertNoThrow(try TableImage.build(result.table), file: file, line: line)
        return Dictionary(uniqueKeysWithValues: result.table.clusters.map { ($0.name, $0) })
    }

    /// "severity: FILE:LINE: …" of every finding of the compile (validation and compiler).
    func findings(_ rule: String) -> [String] {
        let (loaded, result) = compileRule(rule)
        return (loaded.diagnostics + result.diagnostics).filter { $0.severity != .note }
            .map { "\($0.severity): \($0.description)" }
    }

    func testSimpleWithCAFile() throws {
        let (loaded, result) = compileRule("""
            trafficPolicy:
              tls:
                mode: SIMPLE
                caCertificates: \(f)/ca.crt
                sni: api.example.com
                subjectAltNames: [api.example.com, spiffe://td/ns/default/sa/api]
            """)
        XCTAssertEqual(loaded.diagnostics.filter { $0.severity != .note }, [])
        XCTAssertEqual(result.diagnostics.filter { $0.severity != .note }, [])
        let c = try XCTUnwrap(result.table.clusters.first)
        XCTAssertEqual(c.tls, ClusterTLSSpec(mode: .simple, caCertificatesPEM: fixtureBytes("ca.crt"), sni: "api.example.com",
                                             subjectAltNames: ["api.example.com", "spiffe://td/ns/default/sa/api"]))
        XCTAssertEqual(result.certificateFiles, ["\(f)/ca.crt"], "--watch follows the CA file")
    }

    func testSimpleWithoutCAUsesSystemCAsAndDisableIsPlainText() throws {
        let cs = clusters("""
            trafficPolicy:
              tls: {mode: SIMPLE}
              portLevelSettings:
              - port: {number: 8443}
                tls: {mode: DISABLE}
            """, destinations: ["{host: api, port: {number: 443}}", "{host: api, port: {number: 8443}}"])
        XCTAssertEqual(cs["outbound|443||\(fqdn)"]?.tls, ClusterTLSSpec(mode: .simple))
        XCTAssertNil(try XCTUnwrap(cs["outbound|8443||\(fqdn)"]).tls)
        XCTAssertEqual(clusters("trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}")["outbound|443||\(fqdn)"]?.tls,
                       ClusterTLSSpec(mode: .simple, insecureSkipVerify: true))
    }

    func testMutualWithFiles() throws {
        let (loaded, result) = compileRule("""
            trafficPolicy:
              tls:
                mode: MUTUAL
                clientCertificate: \(f)/server.crt
                privateKey: \(f)/server.key
                caCertificates: \(f)/ca.crt
            """)
        XCTAssertEqual(loaded.diagnostics.errors + result.diagnostics.errors, [])
        let c = try XCTUnwrap(result.table.clusters.first)
        XCTAssertEqual(c.tls, ClusterTLSSpec(mode: .mutual, caCertificatesPEM: fixtureBytes("ca.crt"),
                                             clientCertificateChainPEM: fixtureBytes("server.crt"),
                                             clientPrivateKeyPEM: fixtureBytes("server.key")))
        XCTAssertEqual(result.certificateFiles, ["\(f)/server.crt", "\(f)/server.key", "\(f)/ca.crt"])
    }

    func testMutualWithCredentialName() throws {
        let (_, result) = compileRule("trafficPolicy: {tls: {mode: MUTUAL, credentialName: client, sni: api.example.com}}")
        XCTAssertEqual(result.diagnostics.filter { $0.severity != .note }, [])
        XCTAssertEqual(result.table.clusters.first?.tls,
                       ClusterTLSSpec(mode: .mutual, caCertificatesPEM: fixtureBytes("ca.crt"),
                                      clientCertificateChainPEM: fixtureBytes("server.crt"),
                                      clientPrivateKeyPEM: fixtureBytes("server.key"), sni: "api.example.com"))
        // --watch follows every candidate, so that a credential file appearing later reloads.
        let files = result.certificateFiles
        for name in ["client/tls.crt", "client/cert", "client/tls.key", "client/key", "client/ca.crt", "client/cacert",
                     "client-cacert/ca.crt", "client-cacert/cacert"] {
            XCTAssertTrue(files.contains("\(credentials)/\(name)"), "\(name) not in \(files)")
        }

        // The CA in the separate NAME-cacert credential; SIMPLE reads only the CA.
        XCTAssertEqual(clusters("trafficPolicy: {tls: {mode: MUTUAL, credentialName: split}}")["outbound|443||\(fqdn)"]?.tls,
                       ClusterTLSSpec(mode: .mutual, caCertificatesPEM: fixtureBytes("ca.crt"),
                                      clientCertificateChainPEM: fixtureBytes("server.crt"),
                                      clientPrivateKeyPEM: fixtureBytes("server.key")))
        XCTAssertEqual(clusters("trafficPolicy: {tls: {mode: SIMPLE, credentialName: trust}}")["outbound|443||\(fqdn)"]?.tls,
                       ClusterTLSSpec(mode: .simple, caCertificatesPEM: fixtureBytes("ca.crt")))
        // insecureSkipVerify: no CA needed, none carried.
        XCTAssertEqual(clusters("trafficPolicy: {tls: {mode: MUTUAL, credentialName: noca, insecureSkipVerify: true}}")["outbound|443||\(fqdn)"]?.tls,
                       ClusterTLSSpec(mode: .mutual, clientCertificateChainPEM: fixtureBytes("server.crt"),
                                      clientPrivateKeyPEM: fixtureBytes("server.key"), insecureSkipVerify: true))
    }

    /// Istio's merge: top level, replaced as a whole by its port level; the subset's tls; the
    /// subset's port level replacing all.
    /// `caCrl` (SIMPLE and MUTUAL) or the credential's `ca.crl`/`crl`: carried as PEM, watched.
    func testCRLFromTheFileOrTheCredential() throws {
        let (loaded, result) = compileRule("""
            trafficPolicy:
              tls: {mode: SIMPLE, caCertificates: \(f)/ca.crt, caCrl: \(f)/upstream.crl}
            """)
        XCTAssertEqual(loaded.diagnostics.errors + result.diagnostics.errors, [])
        XCTAssertEqual(result.table.clusters.first?.tls,
                       ClusterTLSSpec(mode: .simple, caCertificatesPEM: fixtureBytes("ca.crt"), crlPEM: fixtureBytes("upstream.crl")))
        XCTAssertEqual(result.certificateFiles, ["\(f)/ca.crt", "\(f)/upstream.crl"], "--watch follows the CRL file")
        XCTAssertNoThrow(try TableImage.build(result.table))

        XCTAssertEqual(clusters("""
            trafficPolicy:
              tls: {mode: MUTUAL, clientCertificate: \(f)/server.crt, privateKey: \(f)/server.key, caCrl: \(f)/upstream.crl}
            """)["outbound|443||\(fqdn)"]?.tls,
            ClusterTLSSpec(mode: .mutual, clientCertificateChainPEM: fixtureBytes("server.crt"),
                           clientPrivateKeyPEM: fixtureBytes("server.key"), crlPEM: fixtureBytes("upstream.crl")))
        // From the credential: ca.crl in it, or crl in NAME-cacert; every candidate watched.
        let (_, cred) = compileRule("trafficPolicy: {tls: {mode: SIMPLE, credentialName: revoking}}")
        XCTAssertEqual(cred.diagnostics.errors, [])
        XCTAssertEqual(cred.table.clusters.first?.tls,
                       ClusterTLSSpec(mode: .simple, caCertificatesPEM: fixtureBytes("ca.crt"), crlPEM: fixtureBytes("upstream.crl")))
        for name in ["revoking/ca.crl", "revoking/crl", "revoking-cacert/ca.crl", "revoking-cacert/crl"] {
            XCTAssertTrue(cred.certificateFiles.contains("\(credentials)/\(name)"), "\(name) not in \(cred.certificateFiles)")
        }
        XCTAssertEqual(clusters("trafficPolicy: {tls: {mode: SIMPLE, credentialName: revoking2}}")["outbound|443||\(fqdn)"]?.tls,
                       ClusterTLSSpec(mode: .simple, caCertificatesPEM: fixtureBytes("ca.crt"), crlPEM: fixtureBytes("upstream.crl")))
        // A credential without a CRL: no revocation check.
        XCTAssertEqual(clusters("trafficPolicy: {tls: {mode: SIMPLE, credentialName: trust}}")["outbound|443||\(fqdn)"]?.tls?.crlPEM, [])

        // Errors: unreadable, not a CRL, beside credentialName, with insecureSkipVerify.
        let loc = "test.yaml:7: DestinationRule default/api: spec.trafficPolicy.tls"
        func tls(_ block: String) -> [String] { findings("trafficPolicy:\n  tls: \(block)") }
        XCTAssertEqual(tls("{mode: SIMPLE, caCrl: /nonexistent/ca.crl}"), [
            "error: \(loc).caCrl: cannot read /nonexistent/ca.crl: No such file or directory",
        ])
        XCTAssertEqual(tls("{mode: SIMPLE, caCrl: \(f)/ca.crt}"), [
            "error: \(loc).caCrl: \(f)/ca.crt holds no PEM certificate revocation list (X509 CRL)",
        ])
        XCTAssertEqual(tls("{mode: SIMPLE, credentialName: trust, caCrl: \(f)/upstream.crl}"), [
            "error: \(loc): cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
        ])
        XCTAssertEqual(tls("{mode: SIMPLE, insecureSkipVerify: true, caCrl: \(f)/upstream.crl}"), [
            "error: \(loc).caCrl: cannot specify CaCrl when InsecureSkipVerify is set true (the upstream's certificate is not verified, so revoked ones would be accepted)",
        ])
    }

    func testPortLevelAndSubsetPrecedence() throws {
        let cs = clusters("""
            trafficPolicy:
              loadBalancer: {simple: ROUND_ROBIN}
              tls: {mode: SIMPLE, sni: top.example.com}
              portLevelSettings:
              - port: {number: 8443}
                tls: {mode: SIMPLE, sni: port.example.com}
              - port: {number: 9999}
                loadBalancer: {simple: RANDOM}
            subsets:
            - name: v1
              labels: {version: v1}
              trafficPolicy:
                tls: {mode: MUTUAL, credentialName: client}
            - name: v2
              labels: {version: v2}
              trafficPolicy:
                loadBalancer: {simple: RANDOM}
                portLevelSettings:
                - port: {number: 443}
                  loadBalancer: {simple: LEAST_REQUEST}
            """, destinations: [
                "{host: api, port: {number: 443}}",
                "{host: api, port: {number: 8443}}",
                "{host: api, subset: v1, port: {number: 443}}",
                "{host: api, subset: v1, port: {number: 8443}}",
                "{host: api, subset: v2, port: {number: 443}}",
                "{host: api, subset: v2, port: {number: 8443}}",
            ])
        XCTAssertEqual(cs["outbound|443||\(fqdn)"]?.tls?.sni, "top.example.com")
        XCTAssertEqual(cs["outbound|8443||\(fqdn)"]?.tls?.sni, "port.example.com")
        XCTAssertEqual(cs["outbound|8443||\(fqdn)"]?.loadBalancer.kind, .leastRequest, "port level replaces every field")
        XCTAssertEqual(cs["outbound|443|v1|\(fqdn)"]?.tls?.mode, .mutual, "the subset's tls replaces the top level's")
        XCTAssertEqual(cs["outbound|8443|v1|\(fqdn)"]?.tls?.mode, .mutual, "and the top level's port level")
        XCTAssertEqual(cs["outbound|443|v1|\(fqdn)"]?.loadBalancer.kind, .roundRobin, "other fields still inherited")
        XCTAssertNil(try XCTUnwrap(cs["outbound|443|v2|\(fqdn)"]).tls, "subset port level without tls: plain text")
        XCTAssertEqual(cs["outbound|8443|v2|\(fqdn)"]?.tls?.sni, "port.example.com", "subset without tls inherits")
        // Equal settings share one image record and one identity.
        let image = try TableImage.build(TableSpec(clusters: Array(cs.values)))
        try image.withUnsafeBytes { raw in
            let r = try TableReader(validating: raw.baseAddress!, count: raw.count)
            var ids: [String: UInt64] = [:]
            for c in r.clusters { ids[String(decoding: r.clusterName(c), as: UTF8.self)] = r.clusterTLSIdentity(c) }
            XCTAssertEqual(ids["outbound|443|v1|\(fqdn)"], ids["outbound|8443|v1|\(fqdn)"])
            XCTAssertNotEqual(ids["outbound|443||\(fqdn)"], ids["outbound|8443||\(fqdn)"])
            XCTAssertEqual(ids["outbound|443|v2|\(fqdn)"], 0)
        }
    }

    func testErrorsNameFieldAndFile() throws {
        let notPEM = credentials + "/not-pem.crt"
        try "hello\n".write(toFile: notPEM, atomically: true, encoding: .utf8)
        let loc = "test.yaml:7: DestinationRule default/api: spec.trafficPolicy.tls"
        func tls(_ block: String) -> [String] { findings("trafficPolicy:\n  tls: \(block)") }
        XCTAssertEqual(tls("{mode: SIMPLE, caCertificates: /nonexistent/ca.crt}"), [
            "error: \(loc).caCertificates: cannot read /nonexistent/ca.crt: No such file or directory",
        ])
        XCTAssertEqual(tls("{mode: SIMPLE, caCertificates: \(notPEM)}"), [
            "error: \(loc).caCertificates: \(notPEM) holds no PEM certificate (CA certificate)",
        ])
        XCTAssertEqual(tls("{mode: MUTUAL, clientCertificate: \(f)/server.key, privateKey: \(f)/server.key}"), [
            "error: \(loc).clientCertificate: \(f)/server.key holds no PEM certificate (client certificate)",
        ])
        XCTAssertEqual(tls("{mode: MUTUAL, clientCertificate: \(f)/server.crt, privateKey: \(f)/other.key}"), [
            "error: \(loc).privateKey: \(f)/other.key does not match the certificate \(f)/server.crt (the key is not the certificate's)",
        ])
        XCTAssertEqual(tls("{mode: MUTUAL, clientCertificate: \(f)/server.crt, privateKey: \(f)/encrypted.key}"), [
            "error: \(loc).privateKey: \(f)/encrypted.key is not a PEM private key (or it is encrypted: ingressd needs an unencrypted key)",
        ])
        XCTAssertEqual(tls("{mode: MUTUAL, credentialName: missing}"), [
            "error: \(loc).credentialName: credential \"missing\" has no CA certificate to verify the upstream with (looked for \(credentials)/missing/ca.crt, \(credentials)/missing/cacert, \(credentials)/missing-cacert/ca.crt, \(credentials)/missing-cacert/cacert); add ca.crt, or set insecureSkipVerify",
            "error: \(loc).credentialName: cannot read \(credentials)/missing/tls.crt: No such file or directory",
            "error: \(loc).credentialName: cannot read \(credentials)/missing/tls.key: No such file or directory",
        ])
        XCTAssertEqual(tls("{mode: SIMPLE, credentialName: noca}"), [
            "error: \(loc).credentialName: credential \"noca\" has no CA certificate to verify the upstream with (looked for \(credentials)/noca/ca.crt, \(credentials)/noca/cacert, \(credentials)/noca-cacert/ca.crt, \(credentials)/noca-cacert/cacert); add ca.crt, or set insecureSkipVerify",
        ])
        XCTAssertEqual(tls("{mode: MUTUAL, clientCertificate: \(f)/expired.crt, privateKey: \(f)/expired.key}"), [
            "warning: \(loc).clientCertificate: client certificate \(f)/expired.crt (/CN=expired.example.com) expired on 2001-01-01T00:00:00Z; upstream TLS handshakes will fail",
        ])
        XCTAssertEqual(tls("{mode: ISTIO_MUTUAL}"), [
            "error: \(loc).mode: ISTIO_MUTUAL is mesh-only (certificates issued by istiod to sidecars); a standalone ingressd cannot originate it, and Istio's gateway without a mesh CA cannot connect either: use SIMPLE, or MUTUAL with clientCertificate/privateKey or credentialName",
        ])
        // The port level and subset blocks are named by their own paths and lines.
        XCTAssertEqual(findings("""
            trafficPolicy:
              portLevelSettings:
              - port: {number: 443}
                tls: {mode: SIMPLE, caCertificates: /nonexistent/port.crt}
            """), [
            "error: test.yaml:9: DestinationRule default/api: spec.trafficPolicy.portLevelSettings[0].tls.caCertificates: cannot read /nonexistent/port.crt: No such file or directory",
        ])
        let (_, result) = compileRule("""
            subsets:
            - name: v1
              labels: {version: v1}
              trafficPolicy:
                tls: {mode: SIMPLE, caCertificates: /nonexistent/subset.crt}
            """, destinations: ["{host: api, subset: v1, port: {number: 443}}", "{host: api, subset: v1, port: {number: 8443}}"])
        XCTAssertEqual(result.diagnostics.errors.map(\.description), [
            "test.yaml:10: DestinationRule default/api: spec.subsets[0].trafficPolicy.tls.caCertificates: cannot read /nonexistent/subset.crt: No such file or directory",
        ], "reported once for the two clusters it serves")
    }

    func testRenderingShowsSettingsNeverKeys() throws {
        let (_, result) = compileRule("""
            trafficPolicy:
              tls: {mode: MUTUAL, credentialName: client, sni: api.example.com, subjectAltNames: [api.example.com]}
              portLevelSettings:
              - port: {number: 8443}
                tls: {mode: SIMPLE, insecureSkipVerify: true}
            """, destinations: ["{host: api, port: {number: 443}}", "{host: api, port: {number: 8443}}"])
        XCTAssertEqual(result.diagnostics.errors, [])
        let text = renderRoutes(result.table)
        let json = renderConfigDumpJSON(result.table, generation: 1)
        let keyBody = String(decoding: fixtureBytes("server.key"), as: UTF8.self).split(separator: "\n")[1]
        for out in [text, json] {
            XCTAssertFalse(out.contains("PRIVATE KEY"), out)
            XCTAssertFalse(out.contains(keyBody), "key bytes leaked")
        }
        XCTAssertTrue(text.contains("    tls MUTUAL sni api.example.com, CA /CN=ingressd test client CA valid"), text)
        XCTAssertTrue(text.contains("      client certificate /CN=a.example.com/O=ingressd tests valid"), text)
        XCTAssertTrue(text.contains("      SANs api.example.com"), text)
        XCTAssertTrue(text.contains("    tls SIMPLE sni from the request's Host, certificate NOT VERIFIED (insecureSkipVerify)"), text)
        XCTAssertTrue(json.contains("\"tls\":{\"mode\":\"MUTUAL\",\"sni\":\"api.example.com\""), json)
        XCTAssertTrue(json.contains("\"clientCertificate\":{\"subject\":\"/CN=a.example.com/O=ingressd tests\""), json)
        XCTAssertTrue(json.contains("\"tls\":{\"mode\":\"SIMPLE\",\"sni\":null,\"caCertificates\":null,\"systemCAs\":false,\"insecureSkipVerify\":true"), json)
        XCTAssertTrue(json.contains("\"subjectAltNames\":[\"api.example.com\"],\"crls\":0}"), json)
        // CRLs: counted, never their bytes.
        let (_, crl) = compileRule("trafficPolicy: {tls: {mode: SIMPLE, caCrl: \(f)/upstream.crl}}")
        let crlText = renderRoutes(crl.table), crlJSON = renderConfigDumpJSON(crl.table, generation: 1)
        XCTAssertTrue(crlText.contains("      checked against 1 CRL(s)"), crlText)
        XCTAssertTrue(crlJSON.contains("\"crls\":1}"), crlJSON)
        for out in [crlText, crlJSON] { XCTAssertFalse(out.contains("X509 CRL"), out) }
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(json.utf8)), "config_dump stays valid JSON")
    }
}
