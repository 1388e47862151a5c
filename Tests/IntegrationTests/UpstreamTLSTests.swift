// TLS to upstreams (DestinationRule `trafficPolicy.tls`) end to end: a plain HTTP Gateway in
// front of Python ssl upstreams that answer with their name, the SNI they saw and the client
// certificate's CN (for MUTUAL); certificates from the test's CA (Support/TestPKI.swift).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class UpstreamTLSTests: IntegrationTestCase {

    /// An HTTP Gateway routing host `h` to service `h` (port 443, endpoint `port`) with the
    /// DestinationRule `tls` block given, for each (host, port, tls).
    func startGateway(_ services: [(host: String, port: UInt16, tls: String)]) throws -> Ingressd {
        let httpPort = try freeTCPPort()
        var docs = [WorkshopConfig.httpGateway(port: httpPort, hosts: ["*"])]
        for s in services {
            docs.append("""
                apiVersion: networking.istio.io/v1beta1
                kind: VirtualService
                metadata: {name: \(s.host)}
                spec:
                  hosts: ["\(s.host).example.com"]
                  gateways: ["gw"]
                  http:
                  - route:
                    - destination: {host: \(s.host), port: {number: 443}}
                """)
            docs.append(WorkshopConfig.serviceEntry(name: s.host, servicePort: 443, endpoints: [(s.port, [:])]))
            docs.append("""
                apiVersion: networking.istio.io/v1beta1
                kind: DestinationRule
                metadata: {name: \(s.host)}
                spec:
                  host: \(s.host).default.svc.cluster.local
                  trafficPolicy:
                    tls: \(s.tls)
                """)
        }
        let path = try harness.write("upstream-tls.yaml", WorkshopConfig.documents(docs))
        return try harness.startIngressd(configs: [path], listenPort: httpPort, workers: 1)
    }

    func testSimpleVerifiesTheUpstreamWithAutoSNIAndSANValidation() throws {
        let pki = try TestPKI(harness)
        let good = try harness.startTLSUpstream("good", pki: pki, names: ["good.example.com"])
        let wrong = try harness.startTLSUpstream("wrong", pki: pki, names: ["elsewhere.example.com"])
        let skip = try harness.startTLSUpstream("skip", pki: pki, names: ["elsewhere.example.com"])
        let named = try harness.startTLSUpstream("named", pki: pki, names: ["backend.internal"])
        let ingressd = try startGateway([
            ("good", good, "{mode: SIMPLE, caCertificates: \(pki.caPath)}"),
            ("wrong", wrong, "{mode: SIMPLE, caCertificates: \(pki.caPath)}"),
            ("skip", skip, "{mode: SIMPLE, insecureSkipVerify: true}"),
            ("named", named, "{mode: SIMPLE, caCertificates: \(pki.caPath), sni: backend.internal}"),
        ])
        // Auto SNI from the Host; the certificate matches it.
        let r = try harness.curl(ingressd.url + "/", host: "good.example.com")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.text, "upstream good sni good.example.com client None\n")
        // Keep-alive: a second request reuses the pooled TLS connection.
        XCTAssertEqual(try harness.curl(ingressd.url + "/again", host: "good.example.com").status, 200)
        // A certificate for another name does not verify: a connect failure, 503 UF.
        let bad = try harness.curl(ingressd.url + "/", host: "wrong.example.com")
        XCTAssertEqual(bad.status, 503, bad.text)
        XCTAssertEqual(bad.text, "upstream connect error or disconnect/reset before headers. reset reason: connection failure")
        // insecureSkipVerify: accepted anyway.
        XCTAssertEqual(try harness.curl(ingressd.url + "/", host: "skip.example.com").status, 200)
        // An explicit sni is sent and verified instead of the Host.
        let n = try harness.curl(ingressd.url + "/", host: "named.example.com")
        XCTAssertEqual(n.status, 200, n.text)
        XCTAssertEqual(n.text, "upstream named sni backend.internal client None\n")
        XCTAssertTrue(ingressd.child.isRunning)
    }

    func testMutualPresentsTheClientCertificate() throws {
        let pki = try TestPKI(harness)
        let client = try pki.issue("gateway-client", names: ["gateway.example.com"], client: true)
        let strict = try harness.startTLSUpstream("strict", pki: pki, names: ["strict.example.com"], clientCA: pki.caPath)
        let strict2 = try harness.startTLSUpstream("nocert", pki: pki, names: ["nocert.example.com"], clientCA: pki.caPath)
        let ingressd = try startGateway([
            ("strict", strict, "{mode: MUTUAL, caCertificates: \(pki.caPath), clientCertificate: \(client.crt), privateKey: \(client.key)}"),
            ("nocert", strict2, "{mode: SIMPLE, caCertificates: \(pki.caPath)}"),
        ])
        let r = try harness.curl(ingressd.url + "/", host: "strict.example.com")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.text, "upstream strict sni strict.example.com client gateway.example.com\n")
        // SIMPLE to an upstream that requires a client certificate: refused by the upstream.
        XCTAssertEqual(try harness.curl(ingressd.url + "/", host: "nocert.example.com").status, 503)
    }
}
