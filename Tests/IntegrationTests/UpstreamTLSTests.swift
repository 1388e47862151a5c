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

    /// DestinationRule `caCrl`: an upstream whose certificate the CRL revokes fails the
    /// handshake (503 UF, a connect failure and an SSL connection error), one it does not revoke
    /// answers, the same revoked upstream without the CRL answers; a new CRL revoking the good
    /// one, then SIGHUP: refused from then on (a new identity: no pooled connection is reused).
    func testRevokedUpstreamCertificatesFailAndAReloadedCRLTakesEffect() throws {
        let pki = try TestPKI(harness)
        let good = try harness.startTLSUpstream("good", pki: pki, names: ["good.example.com"])
        let revoked = try harness.startTLSUpstream("revoked", pki: pki, names: ["revoked.example.com", "nocrl.example.com"])
        let crl = try pki.revoke(["\(pki.dir)/up-revoked.crt"])
        let ingressd = try startGateway([
            ("good", good, "{mode: SIMPLE, caCertificates: \(pki.caPath), caCrl: \(crl)}"),
            ("revoked", revoked, "{mode: SIMPLE, caCertificates: \(pki.caPath), caCrl: \(crl)}"),
            ("nocrl", revoked, "{mode: SIMPLE, caCertificates: \(pki.caPath)}"),
        ])
        let r = try harness.curl(ingressd.url + "/", host: "good.example.com")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.text, "upstream good sni good.example.com client None\n")
        let bad = try harness.curl(ingressd.url + "/", host: "revoked.example.com")
        XCTAssertEqual(bad.status, 503, bad.text)
        XCTAssertEqual(bad.text, "upstream connect error or disconnect/reset before headers. reset reason: connection failure")
        XCTAssertEqual(try harness.curl(ingressd.url + "/", host: "nocrl.example.com").status, 200, "without the CRL it verifies")
        let values = try harness.prometheusValues(ingressd)
        let revokedCluster = "outbound|443||revoked.default.svc.cluster.local"
        // A connect failure: Istio's default retries (connect-failure, 2 attempts) try again.
        XCTAssertEqual(values["envoy_cluster_ssl_connection_error_total|\(revokedCluster)|||"], 3)
        XCTAssertEqual(values["envoy_cluster_upstream_cx_connect_fail_total|\(revokedCluster)|||"], 3)
        XCTAssertEqual(values["istio_requests_total|revoked|503|UF,URX|"], 1)
        XCTAssertEqual(values["envoy_cluster_ssl_handshake_total|\(revokedCluster)|||"], 0)
        let routes = try harness.run(Paths.ingressdBinary, ["routes", "-c", harness.path("upstream-tls.yaml")], timeout: 30)
        XCTAssertTrue(routes.stdout.contains("checked against 1 CRL(s)"), routes.output)

        // The CRL file rewritten to revoke the good upstream too, then SIGHUP.
        try pki.revoke(["\(pki.dir)/up-good.crt"])
        ingressd.child.signal(SIGHUP)
        var status = 200
        for _ in 0..<50 where status == 200 {
            status = try harness.curl(ingressd.url + "/", host: "good.example.com").status
            if status == 200 { usleep(200_000) }
        }
        XCTAssertEqual(status, 503, "the reloaded CRL revokes the good upstream")
        XCTAssertEqual(try harness.curl(ingressd.url + "/", host: "nocrl.example.com").status, 200)
        XCTAssertTrue(ingressd.child.isRunning)
    }

    /// `ingressd check`: a caCrl file that holds no CRL is an error naming FILE:LINE, the field
    /// and the path.
    func testCheckRejectsACaCrlThatIsNotACRL() throws {
        let notCRL = try harness.write("not.crl", "hello\n")
        let docs = [
            WorkshopConfig.httpGateway(port: 8080, hosts: ["*"]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: api}
            spec:
              hosts: ["api.example.com"]
              gateways: ["gw"]
              http:
              - route:
                - destination: {host: api, port: {number: 443}}
            """,
            WorkshopConfig.serviceEntry(name: "api", servicePort: 443, endpoints: [(9443, [:])]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: DestinationRule
            metadata: {name: api}
            spec:
              host: api.default.svc.cluster.local
              trafficPolicy:
                tls: {mode: SIMPLE, caCrl: \(notCRL)}
            """,
        ]
        let text = WorkshopConfig.documents(docs)
        let config = try harness.write("bad-crl.yaml", text)
        let line = try XCTUnwrap(text.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex(where: { $0.contains("caCrl:") })) + 1
        let check = try harness.run(Paths.ingressdBinary, ["check", "-c", config], timeout: 30)
        XCTAssertEqual(check.status, 1, check.output)
        XCTAssertTrue(check.output.contains("bad-crl.yaml:\(line): DestinationRule default/api: spec.trafficPolicy.tls.caCrl: \(notCRL) holds no PEM certificate revocation list (X509 CRL)"), check.output)
    }

    /// Upstream session resumption: with maxRequestsPerConnection 1 every request opens a new
    /// TLS connection, and each after the first resumes the session (a TLS 1.3 ticket) the one
    /// before it received; a cluster whose sessions go to another SNI does not mix them up.
    func testNewUpstreamConnectionsResumeTheTLSSession() throws {
        let pki = try TestPKI(harness)
        let up = try harness.startTLSUpstream("resume", pki: pki, names: ["resume.example.com", "other.example.com"])
        let httpPort = try freeTCPPort()
        let docs = [
            WorkshopConfig.httpGateway(port: httpPort, hosts: ["*"]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: resume}
            spec:
              hosts: ["resume.example.com", "other.example.com"]
              gateways: ["gw"]
              http:
              - route:
                - destination: {host: resume, port: {number: 443}}
            """,
            WorkshopConfig.serviceEntry(name: "resume", servicePort: 443, endpoints: [(up, [:])]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: DestinationRule
            metadata: {name: resume}
            spec:
              host: resume.default.svc.cluster.local
              trafficPolicy:
                tls: {mode: SIMPLE, caCertificates: \(pki.caPath)}
                connectionPool: {http: {maxRequestsPerConnection: 1}}
            """,
        ]
        let path = try harness.write("resume.yaml", WorkshopConfig.documents(docs))
        let ingressd = try harness.startIngressd(configs: [path], listenPort: httpPort, workers: 1)
        for k in 0..<5 {
            let r = try harness.curl(ingressd.url + "/\(k)", host: "resume.example.com")
            XCTAssertEqual(r.status, 200, r.text)
            XCTAssertEqual(r.text, "upstream resume sni resume.example.com client None\n")
        }
        // Another Host (auto SNI): its first connection cannot use resume.example.com's session.
        for _ in 0..<2 {
            let r = try harness.curl(ingressd.url + "/", host: "other.example.com")
            XCTAssertEqual(r.text, "upstream resume sni other.example.com client None\n")
        }
        let cluster = "outbound|443||resume.default.svc.cluster.local"
        let values = try harness.prometheusValues(ingressd)
        XCTAssertEqual(values["envoy_cluster_upstream_cx_total|\(cluster)|||"], 7, "a connection per request")
        XCTAssertEqual(values["envoy_cluster_ssl_handshake_total|\(cluster)|||"], 7, "\(values)")
        XCTAssertEqual(values["envoy_cluster_ssl_session_reused_total|\(cluster)|||"], 5, "4 + 1 resumed: \(values)")
        XCTAssertEqual(values["envoy_cluster_ssl_connection_error_total|\(cluster)|||"], 0)
        // Upstream handshakes are not the listener's.
        XCTAssertEqual(values["envoy_listener_ssl_handshake_total||||"] ?? 0, 0)
    }

    /// TCP Gateway servers whose tcp routes go to clusters with DestinationRule `tls`, one per
    /// (service, tls block): the gateway port of each.
    func startTCPGateway(_ services: [(name: String, port: UInt16, tls: String)]) throws -> (Ingressd, [UInt16]) {
        let httpPort = try freeTCPPort()
        var ports: [UInt16] = []
        var gateway = "apiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  servers:\n"
            + "  - port: {number: \(httpPort), name: http, protocol: HTTP}\n    hosts: [\"*\"]\n"
        var vs = "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: tcp}\nspec:\n"
            + "  hosts: [\"*\"]\n  gateways: [\"gw\"]\n  tcp:\n"
        var docs: [String] = []
        for s in services {
            let p = try freeTCPPort()
            ports.append(p)
            gateway += "  - port: {number: \(p), name: tcp-\(s.name), protocol: TCP}\n    hosts: [\"*\"]\n"
            vs += "  - match: [{port: \(p)}]\n    route:\n    - destination: {host: \(s.name), port: {number: 9000}}\n"
            docs.append(WorkshopConfig.serviceEntry(name: s.name, servicePort: 9000, endpoints: [(s.port, [:])]))
            docs.append("""
                apiVersion: networking.istio.io/v1beta1
                kind: DestinationRule
                metadata: {name: \(s.name)}
                spec:
                  host: \(s.name).default.svc.cluster.local
                  trafficPolicy:
                    tls: \(s.tls)
                """)
        }
        docs = [gateway, vs] + docs
        let path = try harness.write("upstream-tls-tcp.yaml", WorkshopConfig.documents(docs))
        return (try harness.startIngressd(configs: [path], listenPort: httpPort, workers: 1), ports)
    }

    /// A plain TCP client: reads the upstream's greeting line, sends `size` bytes and reads
    /// their echo (without half-closing), prints the greeting and whether the echo matched.
    static let tcpClientScript = """
    import socket, sys, select
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    greeting = b""
    while not greeting.endswith(b"\\n"):
        c = s.recv(1)
        if not c: break
        greeting += c
    print(greeting.decode().strip() or "EOF")
    if not greeting: sys.exit(0)
    size = int(sys.argv[2])
    payload = bytes((i * 13) & 255 for i in range(size))
    got = b""; sent = 0
    s.setblocking(False)
    while len(got) < size:
        r, w, _ = select.select([s], [s] if sent < size else [], [], 10)
        if not r and not w: break
        if w: sent += s.send(payload[sent:sent + 65536])
        if r:
            c = s.recv(65536)
            if not c: break
            got += c
    print(len(got), got == payload)
    """

    /// TLS origination on TCP routes: plain TCP in, TLS out, as Istio does for a
    /// DestinationRule `tls` on a cluster reached by a tcp route (an external database, say).
    /// The upstream's certificate and SAN are verified, the client certificate presented; a
    /// certificate that does not verify closes the client (UF, a connect failure).
    func testTCPRouteOriginatesTLSToTheUpstream() throws {
        let pki = try TestPKI(harness)
        let client = try pki.issue("gateway-client", names: ["gateway.example.com"], client: true)
        let db = try harness.startTLSEchoUpstream("db", pki: pki, names: ["db.internal"], clientCA: pki.caPath)
        let plain = try harness.startTLSEchoUpstream("plain", pki: pki, names: ["plain.internal"])
        let wrong = try harness.startTLSEchoUpstream("wrong", pki: pki, names: ["elsewhere.internal"])
        let (ingressd, ports) = try startTCPGateway([
            ("db", db, "{mode: MUTUAL, caCertificates: \(pki.caPath), clientCertificate: \(client.crt), privateKey: \(client.key), sni: db.internal}"),
            ("plain", plain, "{mode: SIMPLE, caCertificates: \(pki.caPath)}"),
            ("wrong", wrong, "{mode: SIMPLE, caCertificates: \(pki.caPath), subjectAltNames: [db.internal]}"),
        ])
        let script = try harness.write("tcp_client.py", Self.tcpClientScript)
        func connect(_ port: UInt16, _ size: Int) throws -> [String] {
            let r = try harness.run("/usr/bin/python3", [script, String(port), String(size)], timeout: 60)
            XCTAssertEqual(r.status, 0, r.output)
            return r.stdout.split(separator: "\n").map(String.init)
        }
        // MUTUAL with an explicit SNI; the upstream speaks first, then echoes 3 MiB.
        XCTAssertEqual(try connect(ports[0], 3 << 20), ["hello db sni db.internal client gateway.example.com", "\(3 << 20) True"])
        // SIMPLE, no sni: none is sent (a TCP route has no Host), the chain is verified.
        XCTAssertEqual(try connect(ports[1], 1000), ["hello plain sni None client None", "1000 True"])
        // Again: the session of the first connection is resumed.
        XCTAssertEqual(try connect(ports[1], 1000), ["hello plain sni None client None", "1000 True"])
        // A certificate without the required SAN: the client is closed without a byte.
        XCTAssertEqual(try connect(ports[2], 10), ["EOF"])
        XCTAssertTrue(ingressd.child.isRunning)

        var values: [String: Double] = [:]
        let deadline = Date().addingTimeInterval(5)
        repeat {
            values = try harness.prometheusValues(ingressd)
            if values["istio_tcp_connections_closed_total|db||-|"] == 1 && values["istio_tcp_connections_closed_total|wrong||UF|"] == 1 { break }
            usleep(100_000)
        } while Date() < deadline
        XCTAssertEqual(values["istio_tcp_connections_closed_total|db||-|"], 1, "\(values)")
        XCTAssertEqual(values["istio_tcp_received_bytes_total|db||-|"], Double(3 << 20), "bytes copied through TLS are counted")
        XCTAssertEqual(values["istio_tcp_sent_bytes_total|db||-|"],
                       Double((3 << 20) + "hello db sni db.internal client gateway.example.com\n".utf8.count))
        XCTAssertEqual(values["istio_tcp_connections_closed_total|wrong||UF|"], 1, "\(values)")
        XCTAssertEqual(values["envoy_cluster_upstream_cx_connect_fail_total|outbound|9000||wrong.default.svc.cluster.local|||"], 1, "\(values)")
        XCTAssertEqual(values["envoy_cluster_upstream_cx_total|outbound|9000||db.default.svc.cluster.local|||"], 1, "\(values)")
        XCTAssertEqual(values["envoy_cluster_ssl_handshake_total|outbound|9000||plain.default.svc.cluster.local|||"], 2)
        XCTAssertEqual(values["envoy_cluster_ssl_session_reused_total|outbound|9000||plain.default.svc.cluster.local|||"], 1)
        XCTAssertEqual(values["envoy_cluster_ssl_connection_error_total|outbound|9000||wrong.default.svc.cluster.local|||"], 1)
    }

    /// TLS origination on a TCP route half-closes as a spliced pair does: a plain client that
    /// shuts down its sending side has its FIN passed on as close_notify (the upstream's reads
    /// end), and still gets the rest of the echo and the END line the upstream writes 300 ms
    /// later; the upstream's close_notify then reaches the client as a FIN.
    func testTCPRouteThroughOriginatedTLSPassesHalfCloseOn() throws {
        let pki = try TestPKI(harness)
        let echo = try harness.startTLSBulkEchoUpstream("bulk", pki: pki, names: ["bulk.internal"])
        let (ingressd, ports) = try startTCPGateway([("bulk", echo, "{mode: SIMPLE, caCertificates: \(pki.caPath), sni: bulk.internal}")])
        for size in [0, 5, 6 << 20] {
            let r = try harness.run("/usr/bin/python3", [Paths.bulkUpstream, "client", "--port", String(ports[0]),
                                                         "--send", String(size), "--half-close"], timeout: 60)
            XCTAssertEqual(r.status, 0, r.output)
            let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
            let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            XCTAssertEqual(json["received"] as? Int, size, line)
            XCTAssertEqual(json["received_sha256"] as? String, json["sent_sha256"] as? String, line)
            XCTAssertEqual(json["end"] as? String, "END \(size) \(json["sent_sha256"] as? String ?? "-")", line)
        }
        XCTAssertTrue(ingressd.child.isRunning)
        var values: [String: Double] = [:]
        let deadline = Date().addingTimeInterval(5)
        repeat {
            values = try harness.prometheusValues(ingressd)
            if values["istio_tcp_connections_closed_total|bulk||-|"] == 3 { break }
            usleep(100_000)
        } while Date() < deadline
        XCTAssertEqual(values["istio_tcp_connections_closed_total|bulk||-|"], 3, "every pair closed once both directions ended")
    }

    /// A passthrough route to a cluster with DestinationRule `tls`: Istio's gateway originates
    /// TLS there too (the client's own TLS inside it). The ClientHello that picked the route is
    /// the first thing written into the upstream's TLS session; the echo upstream sends it back.
    func testPassthroughRouteToATLSClusterSendsTheHelloThroughTheOriginatedTLS() throws {
        let pki = try TestPKI(harness)
        let echo = try harness.startTLSEchoUpstream("inner", pki: pki, names: ["inner.internal"])
        let port = try freeTCPPort()
        let httpPort = try freeTCPPort()
        let docs = [
            """
            apiVersion: networking.istio.io/v1beta1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: \(port), name: tls, protocol: TLS}
                hosts: ["pass.example.com"]
                tls: {mode: PASSTHROUGH}
              - port: {number: \(httpPort), name: http, protocol: HTTP}
                hosts: ["*"]
            """,
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: pass}
            spec:
              hosts: ["pass.example.com"]
              gateways: ["gw"]
              tls:
              - match: [{port: \(port), sniHosts: ["pass.example.com"]}]
                route:
                - destination: {host: inner, port: {number: 443}}
            """,
            WorkshopConfig.serviceEntry(name: "inner", servicePort: 443, endpoints: [(echo, [:])]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: DestinationRule
            metadata: {name: inner}
            spec:
              host: inner.default.svc.cluster.local
              trafficPolicy:
                tls: {mode: SIMPLE, caCertificates: \(pki.caPath), sni: inner.internal}
            """,
        ]
        let path = try harness.write("pass-tls.yaml", WorkshopConfig.documents(docs))
        let ingressd = try harness.startIngressd(configs: [path], listenPort: httpPort, workers: 1)
        let script = """
        import socket, ssl, sys
        ctx = ssl.create_default_context()
        i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(i, o, server_hostname="pass.example.com")
        try: obj.do_handshake()
        except ssl.SSLWantReadError: pass
        hello = o.read()
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
        s.sendall(hello)
        got = b""
        while got.count(b"\\n") < 1 or len(got) < got.index(b"\\n") + 1 + len(hello):
            c = s.recv(65536)
            if not c: break
            got += c
        line, _, rest = got.partition(b"\\n")
        print(line.decode())
        print(len(hello) > 0 and rest == hello)
        """
        let r = try harness.run("/usr/bin/python3", ["-c", script, String(port)], timeout: 30)
        XCTAssertEqual(r.stdout.split(separator: "\n").map(String.init), ["hello inner sni inner.internal client None", "True"], r.output)
        XCTAssertTrue(ingressd.child.isRunning)
    }
}
