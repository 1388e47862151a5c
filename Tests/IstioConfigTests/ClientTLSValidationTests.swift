import Foundation
import IstioConfig
import XCTest

/// DestinationRule `trafficPolicy.tls` (ClientTLSSettings) as ingressd originates it:
/// Istio's ValidateTLS messages, plus ISTIO_MUTUAL and caCrl (istio-semantics.md §4, §7.2).
final class ClientTLSValidationTests: XCTestCase {
    /// "severity line path: message" of every finding on a DestinationRule with this `tls` at
    /// the top level (line 7).
    func rule(_ tls: String) -> [String] {
        loadYAML("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: dr}
            spec:
              host: api.example.com
              trafficPolicy:
                tls: \(tls)
            """).diagnostics.map { "\($0.severity) \($0.line) \($0.path): \($0.message)" }
    }

    func testServedModesHaveNoFindings() {
        XCTAssertEqual(rule("{mode: DISABLE}"), [])
        XCTAssertEqual(rule("{mode: SIMPLE}"), [])
        XCTAssertEqual(rule("{mode: SIMPLE, caCertificates: /ca.pem, sni: api.example.com, subjectAltNames: [api.example.com]}"), [])
        XCTAssertEqual(rule("{mode: SIMPLE, insecureSkipVerify: true, sni: api.example.com}"), [])
        XCTAssertEqual(rule("{mode: SIMPLE, credentialName: api-ca}"), [])
        XCTAssertEqual(rule("{mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem}"), [])
        XCTAssertEqual(rule("{mode: MUTUAL, credentialName: api-client}"), [])
        XCTAssertEqual(rule("{mode: MUTUAL, credentialName: api-client, insecureSkipVerify: true}"), [])
        XCTAssertEqual(rule("{mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, insecureSkipVerify: true}"), [])
    }

    func testIstioMessages() {
        XCTAssertEqual(rule("{mode: MUTUAL}"), [
            "error 7 spec.trafficPolicy.tls: client certificate required for mutual tls",
            "error 7 spec.trafficPolicy.tls: private key required for mutual tls",
        ])
        XCTAssertEqual(rule("{mode: MUTUAL, clientCertificate: /c.pem}"), [
            "error 7 spec.trafficPolicy.tls: private key required for mutual tls",
        ])
        XCTAssertEqual(rule("{mode: MUTUAL, credentialName: c, clientCertificate: /c.pem, privateKey: /k.pem}"), [
            "error 7 spec.trafficPolicy.tls: cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
        ])
        XCTAssertEqual(rule("{mode: SIMPLE, credentialName: c, caCertificates: /ca.pem}"), [
            "error 7 spec.trafficPolicy.tls: cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
        ])
        XCTAssertEqual(rule("{mode: SIMPLE, insecureSkipVerify: true, caCertificates: /ca.pem}"), [
            "error 7 spec.trafficPolicy.tls: cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
        ])
        XCTAssertEqual(rule("{mode: SIMPLE, insecureSkipVerify: true, credentialName: c}"), [
            "error 7 spec.trafficPolicy.tls: cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
        ])
        XCTAssertEqual(rule("{mode: SIMPLE, insecureSkipVerify: true, subjectAltNames: [a]}"), [
            "error 7 spec.trafficPolicy.tls: cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
        ])
        XCTAssertEqual(rule("{mode: MUTUAL, insecureSkipVerify: true, credentialName: c, subjectAltNames: [a]}"), [
            "error 7 spec.trafficPolicy.tls: cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true",
        ])
        XCTAssertEqual(rule("{mode: TLS}"), [
            "error 7 spec.trafficPolicy.tls.mode: invalid TLS mode \"TLS\" (use DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL)",
        ])
        // DISABLE ignores the rest, as Istio does.
        XCTAssertEqual(rule("{mode: DISABLE, clientCertificate: /c.pem, insecureSkipVerify: true, caCertificates: /ca.pem}"), [])
    }

    func testWhatIngressdCannotOriginate() {
        XCTAssertEqual(rule("{mode: ISTIO_MUTUAL}"), [
            "error 7 spec.trafficPolicy.tls.mode: ISTIO_MUTUAL is mesh-only (certificates issued by istiod to sidecars); a standalone ingressd cannot originate it, and Istio's gateway without a mesh CA cannot connect either: use SIMPLE, or MUTUAL with clientCertificate/privateKey or credentialName",
        ])
        // caCrl is served (SIMPLE and MUTUAL), but with insecureSkipVerify it would check nothing.
        XCTAssertEqual(rule("{mode: SIMPLE, caCertificates: /ca.pem, caCrl: /crl.pem}"), [])
        XCTAssertEqual(rule("{mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, caCrl: /crl.pem}"), [])
        XCTAssertEqual(rule("{mode: SIMPLE, insecureSkipVerify: true, caCrl: /crl.pem}"), [
            "error 7 spec.trafficPolicy.tls.caCrl: cannot specify CaCrl when InsecureSkipVerify is set true (the upstream's certificate is not verified, so revoked ones would be accepted)",
        ])
        XCTAssertEqual(rule("{mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, insecureSkipVerify: true, caCrl: /crl.pem}"), [
            "error 7 spec.trafficPolicy.tls.caCrl: cannot specify CaCrl when InsecureSkipVerify is set true (the upstream's certificate is not verified, so revoked ones would be accepted)",
        ])
        XCTAssertEqual(rule("{mode: MUTUAL, credentialName: c, caCrl: /crl.pem}"), [
            "error 7 spec.trafficPolicy.tls: cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
        ])
        XCTAssertEqual(rule("{mode: SIMPLE, clientCertificate: /c.pem, privateKey: /k.pem}"), [
            "note 7 spec.trafficPolicy.tls: clientCertificate and privateKey are used by MUTUAL only: SIMPLE sends no client certificate",
        ])
    }

    func testPortLevelAndSubsetBlocksAreCheckedAndServed() {
        let r = loadYAML("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: dr}
            spec:
              host: api.example.com
              trafficPolicy:
                portLevelSettings:
                - port: {number: 443}
                  tls: {mode: MUTUAL}
              subsets:
              - name: v1
                labels: {v: "1"}
                trafficPolicy:
                  tls: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /ca.pem}
                  portLevelSettings:
                  - port: {number: 8443}
                    tls: {mode: ISTIO_MUTUAL}
            """)
        XCTAssertEqual(r.diagnostics.map { "\($0.severity) \($0.line) \($0.path): \($0.message)" }, [
            "error 9 spec.trafficPolicy.portLevelSettings[0].tls: client certificate required for mutual tls",
            "error 9 spec.trafficPolicy.portLevelSettings[0].tls: private key required for mutual tls",
            "error 14 spec.subsets[0].trafficPolicy.tls: cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
            "error 17 spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.mode: ISTIO_MUTUAL is mesh-only (certificates issued by istiod to sidecars); a standalone ingressd cannot originate it, and Istio's gateway without a mesh CA cannot connect either: use SIMPLE, or MUTUAL with clientCertificate/privateKey or credentialName",
        ])
    }

    func testMissingCredentialIsIST0101() throws {
        let dir = NSTemporaryDirectory() + "ingressd-analyze-dr-\(getpid())"
        try FileManager.default.createDirectory(atPath: "\(dir)/client", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in ["client/tls.crt", "client/tls.key"] {
            XCTAssertTrue(FileManager.default.createFile(atPath: "\(dir)/\(f)", contents: Data("x".utf8)))
        }
        let r = loadYAML("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: dr}
            spec:
              host: api.example.com
              trafficPolicy:
                tls: {mode: MUTUAL, credentialName: client, insecureSkipVerify: true}
                portLevelSettings:
                - port: {number: 8443}
                  tls: {mode: SIMPLE, credentialName: client}
              subsets:
              - name: v1
                labels: {v: "1"}
                trafficPolicy:
                  tls: {mode: MUTUAL, credentialName: gone, insecureSkipVerify: true}
              - name: v2
                labels: {v: "2"}
                trafficPolicy:
                  tls: {mode: DISABLE, credentialName: ignored}
            """)
        let found = analyze(r.resources, credentialsDir: dir).map { "\($0.severity) \($0.code ?? "") \($0.line) \($0.path): \($0.message)" }
        XCTAssertEqual(found, [
            "error IST0101 10 spec.trafficPolicy.portLevelSettings[0].tls.credentialName: Referenced credentialName not found: \"client-cacert\" (looked for \(dir)/client/ca.crt, \(dir)/client/cacert, \(dir)/client-cacert/ca.crt, \(dir)/client-cacert/cacert)",
            "error IST0101 15 spec.subsets[0].trafficPolicy.tls.credentialName: Referenced credentialName not found: \"gone\" (looked for \(dir)/gone/tls.crt, \(dir)/gone/cert)",
            "error IST0101 15 spec.subsets[0].trafficPolicy.tls.credentialName: Referenced credentialName not found: \"gone\" (looked for \(dir)/gone/tls.key, \(dir)/gone/key)",
        ])
    }
}
