import Foundation
import IstioConfig
import XCTest

/// Gateway `tls` settings and VirtualService `tls` routes as ingressd serves them
/// (istio-semantics.md §2, §7.2).
final class TLSValidationTests: XCTestCase {
    /// "severity path: message" of every finding on one HTTPS server with `tls`.
    func server(_ tls: String, protocol proto: String = "HTTPS") -> [String] {
        loadYAML("""
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 443, name: https, protocol: \(proto)}
                hosts: [a.example.com]
                tls: \(tls)
            """).diagnostics.filter { $0.severity != .note }.map { "\($0.severity) \($0.path): \($0.message)" }
    }

    func testServedModesHaveNoUnsupportedWarning() {
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}"), [])
        XCTAssertEqual(server("{mode: SIMPLE, credentialName: web, minProtocolVersion: TLSV1_2, maxProtocolVersion: TLSV1_3}"), [])
        XCTAssertEqual(server("{mode: MUTUAL, credentialName: web}"), [])
        XCTAssertEqual(server("{mode: OPTIONAL_MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem}"), [])
        XCTAssertEqual(server("{mode: PASSTHROUGH}"), [])
        XCTAssertEqual(server("{mode: PASSTHROUGH}", protocol: "TLS"), [])
        XCTAssertEqual(server("{}", protocol: "TLS"), [], "mode absent is PASSTHROUGH")
    }

    func testMeshOnlyModesAreErrors() {
        XCTAssertEqual(server("{mode: ISTIO_MUTUAL}"), [
            "error spec.servers[0].tls.mode: ISTIO_MUTUAL is mesh-only (certificates issued by istiod to sidecars); a standalone ingressd does not serve it: use SIMPLE or MUTUAL with certificates",
        ])
        XCTAssertEqual(server("{mode: ISTIO_MUTUAL, credentialName: x}"), [
            "error spec.servers[0].tls: ISTIO_MUTUAL TLS cannot have associated credentialName",
            "error spec.servers[0].tls.mode: ISTIO_MUTUAL is mesh-only (certificates issued by istiod to sidecars); a standalone ingressd does not serve it: use SIMPLE or MUTUAL with certificates",
        ])
        XCTAssertEqual(server("{mode: AUTO_PASSTHROUGH}", protocol: "TLS"), [
            "error spec.servers[0].tls.mode: AUTO_PASSTHROUGH is mesh-only (the SNI names an Istio cluster, for multi-network meshes); a standalone ingressd does not serve it: use PASSTHROUGH with VirtualService tls routes",
        ])
    }

    func testIstioMessagesAndWhatIsNotCarried() {
        XCTAssertEqual(server("{mode: SIMPLE}"), [
            "error spec.servers[0].tls: SIMPLE TLS requires a server certificate",
            "error spec.servers[0].tls: SIMPLE TLS requires a private key",
        ])
        XCTAssertEqual(server("{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}"), [
            "error spec.servers[0].tls: MUTUAL TLS requires a client CA bundle",
        ])
        XCTAssertEqual(server("{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertCredentialName: ca}"), [])
        XCTAssertEqual(server("{mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem, caCrl: /crl.pem}"), [
            "error spec.servers[0].tls.caCrl: CRL is not supported with SIMPLE TLS",
        ])
        // Served: client CRLs, a second certificate (HTTPSCertificateTests).
        XCTAssertEqual(server("{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem, caCrl: /crl.pem}"), [])
        XCTAssertEqual(server("{mode: MUTUAL, credentialName: web, caCrl: /crl.pem}"), [
            "error spec.servers[0].tls.caCrl: CRL is not supported with credentialName. CRL has to be specified in the credential",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, credentialNames: [rsa, ecdsa]}"), [])
        XCTAssertEqual(server("{mode: SIMPLE, tlsCertificates: [{serverCertificate: /a, privateKey: /b}, {serverCertificate: /c, privateKey: /d}]}"), [])
        XCTAssertEqual(server("{mode: SIMPLE, tlsCertificates: [{serverCertificate: /a, privateKey: /b}, {serverCertificate: /c}]}"), [
            "error spec.servers[0].tls.tlsCertificates[1]: SIMPLE TLS requires a private key",
        ])
        XCTAssertEqual(server("{mode: MUTUAL, credentialName: web, insecureSkipVerify: true}"), [
            "warning spec.servers[0].tls.insecureSkipVerify: insecureSkipVerify is not supported by ingressd yet; ignored (client certificates are always verified)",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, credentialName: web, subjectAltNames: [a]}"), [
            "warning spec.servers[0].tls.subjectAltNames: SIMPLE TLS asks for no client certificate: subjectAltNames is only checked with MUTUAL or OPTIONAL_MUTUAL; ignored",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, credentialName: web, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2}"), [
            "error spec.servers[0].tls.maxProtocolVersion: maxProtocolVersion TLSV1_2 is below minProtocolVersion TLSV1_3",
        ])
        XCTAssertEqual(server("{mode: SIMPLE, credentialName: web, minProtocolVersion: TLSV1_1}"), [
            "warning spec.servers[0].tls.minProtocolVersion: TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers.",
        ])
        XCTAssertEqual(server("{mode: PASSTHROUGH, credentialName: web}"), [
            "warning spec.servers[0].tls: PASSTHROUGH mode does not use certificates, they will be ignored",
        ])
    }

    func testTLSRoutesAreServed() {
        let r = loadYAML("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs}
            spec:
              hosts: ["*.example.com"]
              gateways: [gw]
              tls:
              - match: [{sniHosts: [a.example.com], port: 443}]
                route:
                - destination: {host: a.internal}
              - match: [{sniHosts: [a.example.org]}]
                route:
                - destination: {host: a.internal}
            """)
        XCTAssertEqual(r.diagnostics.map { "\($0.severity) \($0.path): \($0.message)" }, [
            "error spec.tls[1].match[0].sniHosts[0]: SNI host \"a.example.org\" is not a compatible subset of any of the virtual service hosts: [*.example.com]",
        ])
    }

    func testMissingCredentialIsIST0101() throws {
        let dir = NSTemporaryDirectory() + "ingressd-analyze-\(getpid())"
        try FileManager.default.createDirectory(atPath: "\(dir)/web", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in ["web/tls.crt", "web/tls.key"] {
            XCTAssertTrue(FileManager.default.createFile(atPath: "\(dir)/\(f)", contents: Data("x".utf8)))
        }
        let r = loadYAML("""
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 443, name: a, protocol: HTTPS}
                hosts: [a.example.com]
                tls: {mode: SIMPLE, credentialName: web}
              - port: {number: 443, name: b, protocol: HTTPS}
                hosts: [b.example.com]
                tls: {mode: SIMPLE, credentialName: gone}
              - port: {number: 443, name: c, protocol: HTTPS}
                hosts: [c.example.com]
                tls: {mode: MUTUAL, credentialName: web}
              - port: {number: 443, name: d, protocol: HTTPS}
                hosts: [d.example.com]
                tls: {mode: PASSTHROUGH, credentialName: ignored}
            """)
        let found = analyze(r.resources, credentialsDir: dir + "/").map { "\($0.severity) \($0.code ?? "") \($0.line) \($0.path): \($0.message)" }
        XCTAssertEqual(found, [
            "error IST0101 11 spec.servers[1].tls.credentialName: Referenced credentialName not found: \"gone\" (looked for \(dir)/gone/tls.crt, \(dir)/gone/cert)",
            "error IST0101 11 spec.servers[1].tls.credentialName: Referenced credentialName not found: \"gone\" (looked for \(dir)/gone/tls.key, \(dir)/gone/key)",
            "error IST0101 14 spec.servers[2].tls.credentialName: Referenced credentialName not found: \"web-cacert\" (looked for \(dir)/web/ca.crt, \(dir)/web/cacert, \(dir)/web-cacert/ca.crt, \(dir)/web-cacert/cacert)",
        ])
        XCTAssertEqual(analyze(r.resources), [], "no credentials dir, no check")
        XCTAssertEqual(CredentialFiles.resolve("web", in: dir).certificate, "\(dir)/web/tls.crt")
        XCTAssertNil(CredentialFiles.resolve("web", in: dir).caCertificates)
    }
}
