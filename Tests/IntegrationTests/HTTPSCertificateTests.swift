// Gateway HTTPS servers with two certificates (RSA beside ECDSA: `tlsCertificates`,
// `credentialNames`) and client certificate revocation lists (`caCrl`, a credential's
// `ca.crl`): the real ingressd with openssl s_client and curl as clients.

import Foundation
import XCTest

final class HTTPSCertificateTests: IntegrationTestCase {
    /// A Gateway with one HTTPS server for `host` whose `tls` block is `tls`; every request goes
    /// to a demo upstream. Returns (ingressd, HTTPS port).
    func start(_ tls: String, host: String = "a.example.com", credentials: String? = nil) throws -> (Ingressd, UInt16) {
        let upstream = try harness.startUpstream("web")
        let httpsPort = try freeTCPPort(), httpPort = try freeTCPPort()
        let docs = ["""
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: \(httpsPort), name: https, protocol: HTTPS}
                hosts: ["\(host)"]
                tls: \(tls)
              - port: {number: \(httpPort), name: http, protocol: HTTP}
                hosts: ["*"]
            """, """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web}
            spec:
              hosts: ["*"]
              gateways: [gw]
              http:
              - route:
                - destination: {host: web, port: {number: 80}}
            """, WorkshopConfig.serviceEntry(name: "web", servicePort: 80, endpoints: [(upstream.port, [:])])]
        let path = try harness.write("gw.yaml", WorkshopConfig.documents(docs))
        let ingressd = try harness.startIngressd(configs: [path], listenPort: httpPort, workers: 1,
                                                 extraArgs: credentials.map { ["--credentials-dir", $0] } ?? [])
        return (ingressd, httpsPort)
    }

    /// What s_client saw when it offered only `sigalgs`: the server key's size in bits (nil: no handshake).
    func serverKeyBits(port: UInt16, sigalgs: String, tls12: Bool = false) throws -> Int? {
        let r = try harness.run("/bin/sh", ["-c", "echo | openssl s_client -connect 127.0.0.1:\(port) -servername a.example.com "
                                            + "-sigalgs \(sigalgs)\(tls12 ? " -tls1_2" : "") 2>&1"], timeout: 20)
        guard let line = r.stdout.split(separator: "\n").first(where: { $0.contains("Server public key is") }) else { return nil }
        return Int(line.split(separator: " ").dropLast().last ?? "")
    }

    /// `ingressd check` of a Gateway whose one HTTPS server (line 8 of bad.yaml) has `tls`.
    func checkGateway(_ tls: String) throws -> CommandResult {
        let config = try harness.write("bad.yaml", """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 443, name: https, protocol: HTTPS}
                hosts: ["a.example.com"]
                tls: \(tls)
            """)
        return try harness.run(Paths.ingressdBinary, ["check", "-c", config], timeout: 30)
    }

    /// The status of a GET over HTTPS to a.example.com presenting `client`'s certificate (0: the
    /// handshake failed).
    func status(_ port: UInt16, _ pki: TestPKI, _ client: (crt: String, key: String)) throws -> Int {
        try harness.curl("https://a.example.com:\(port)/", ["--cacert", pki.caPath, "--resolve", "a.example.com:\(port):127.0.0.1",
                                                            "--cert", client.crt, "--key", client.key]).status
    }

    func testTwoCertificatesServeRSAAndECDSAClientsEach() throws {
        let pki = try TestPKI(harness)
        let ec = try pki.issue("a-ec", names: ["a.example.com"])
        let rsa = try pki.issue("a-rsa", names: ["a.example.com"], rsa: true)
        let (_, port) = try start("""
            {mode: SIMPLE, tlsCertificates: [{serverCertificate: \(ec.crt), privateKey: \(ec.key)},
                                             {serverCertificate: \(rsa.crt), privateKey: \(rsa.key)}]}
            """)
        // A client that can only verify ECDSA gets the P-256 certificate, an RSA-only client the
        // 2048-bit one (TLS 1.3 and TLS 1.2 alike).
        XCTAssertEqual(try serverKeyBits(port: port, sigalgs: "ECDSA+SHA256"), 256)
        XCTAssertEqual(try serverKeyBits(port: port, sigalgs: "RSA-PSS+SHA256"), 2048)
        XCTAssertEqual(try serverKeyBits(port: port, sigalgs: "RSA+SHA256", tls12: true), 2048)
        let r = try harness.curl("https://a.example.com:\(port)/", ["--cacert", pki.caPath, "--resolve", "a.example.com:\(port):127.0.0.1"])
        XCTAssertEqual(r.status, 200, r.text)
    }

    func testTwoCredentialsServeBothAndTheSameKeyTypeTwiceIsAnError() throws {
        let pki = try TestPKI(harness)
        let creds = harness.path("credentials")
        try pki.credential(in: creds, name: "a-ec", names: ["a.example.com"])
        let rsa = try pki.issue("a-rsa", names: ["a.example.com"], rsa: true)
        try FileManager.default.createDirectory(atPath: "\(creds)/a-rsa", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: rsa.crt, toPath: "\(creds)/a-rsa/tls.crt")
        try FileManager.default.copyItem(atPath: rsa.key, toPath: "\(creds)/a-rsa/tls.key")
        let (ingressd, port) = try start("{mode: SIMPLE, credentialNames: [a-ec, a-rsa]}", credentials: creds)
        XCTAssertEqual(try serverKeyBits(port: port, sigalgs: "ECDSA+SHA256"), 256)
        XCTAssertEqual(try serverKeyBits(port: port, sigalgs: "RSA-PSS+SHA256"), 2048)
        let dump = try harness.curl(ingressd.adminURL + "/config_dump").text
        XCTAssertTrue(dump.contains("\"secondCertificate\":{\"subject\":\"/CN=a.example.com\""), dump)

        // Two ECDSA certificates: `check` names the second and says why.
        let ec2 = try pki.issue("a-ec2", names: ["a.example.com"])
        let check = try checkGateway("""
            {mode: SIMPLE, tlsCertificates: [{serverCertificate: \(ec2.crt), privateKey: \(ec2.key)},
                                             {serverCertificate: \(ec2.crt), privateKey: \(ec2.key)}]}
            """)
        XCTAssertEqual(check.status, 1, check.output)
        XCTAssertTrue(check.output.contains("bad.yaml:9: Gateway default/gw: spec.servers[0].tls.tlsCertificates[1].serverCertificate: "), check.output)
        XCTAssertTrue(check.output.contains("has an ECDSA key like the first certificate"), check.output)
    }

    func testRevokedClientCertificatesAreRefusedAndAReloadedCRLTakesEffect() throws {
        let pki = try TestPKI(harness)
        let server = try pki.issue("m", names: ["a.example.com"])
        let good = try pki.issue("good", names: ["good.example.com"], client: true)
        let bad = try pki.issue("bad", names: ["bad.example.com"], client: true)
        let crl = try pki.revoke([bad.crt])
        let (ingressd, port) = try start("""
            {mode: MUTUAL, serverCertificate: \(server.crt), privateKey: \(server.key), caCertificates: \(pki.caPath), caCrl: \(crl)}
            """)
        func call(_ client: (crt: String, key: String)) throws -> Int { try status(port, pki, client) }
        XCTAssertEqual(try call(good), 200)
        XCTAssertNotEqual(try call(bad), 200, "a revoked client certificate fails the handshake")
        let routes = try harness.run(Paths.ingressdBinary, ["routes", "-c", harness.path("gw.yaml")], timeout: 30)
        XCTAssertTrue(routes.stdout.contains("checked against 1 CRL(s)"), routes.output)

        // A new CRL that revokes the good certificate too, then SIGHUP: refused from then on.
        try pki.revoke([good.crt])
        ingressd.child.signal(SIGHUP)
        var refused = false
        for _ in 0..<50 where !refused {
            refused = try call(good) != 200
            if !refused { usleep(200_000) }
        }
        XCTAssertTrue(refused, "the reloaded CRL revokes the good certificate")
    }

    func testCRLFromTheCredentialAndItsErrors() throws {
        let pki = try TestPKI(harness)
        let creds = harness.path("credentials")
        try pki.credential(in: creds, name: "m", names: ["a.example.com"], withCA: true)
        let bad = try pki.issue("bad", names: ["bad.example.com"], client: true)
        let good = try pki.issue("good", names: ["good.example.com"], client: true)
        try FileManager.default.copyItem(atPath: try pki.revoke([bad.crt]), toPath: "\(creds)/m/ca.crl")
        let (_, port) = try start("{mode: MUTUAL, credentialName: m}", credentials: creds)
        func call(_ client: (crt: String, key: String)) throws -> Int { try status(port, pki, client) }
        XCTAssertEqual(try call(good), 200)
        XCTAssertNotEqual(try call(bad), 200)

        // Not a CRL, and caCrl with SIMPLE: errors that name the field.
        let notCRL = harness.path("not.crl")
        try "hello\n".write(toFile: notCRL, atomically: true, encoding: .utf8)
        let notACRL = try checkGateway("{mode: MUTUAL, serverCertificate: \(good.crt), privateKey: \(good.key), caCertificates: \(pki.caPath), caCrl: \(notCRL)}")
        XCTAssertEqual(notACRL.status, 1, notACRL.output)
        XCTAssertTrue(notACRL.output.contains("bad.yaml:8: Gateway default/gw: spec.servers[0].tls.caCrl: \(notCRL) holds no PEM certificate revocation list"), notACRL.output)
        let simple = try checkGateway("{mode: SIMPLE, serverCertificate: \(good.crt), privateKey: \(good.key), caCrl: \(notCRL)}")
        XCTAssertEqual(simple.status, 1, simple.output)
        XCTAssertTrue(simple.output.contains("spec.servers[0].tls.caCrl: CRL is not supported with SIMPLE TLS"), simple.output)
    }
}
