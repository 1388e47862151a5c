// TLS passthrough by SNI end to end: Gateway servers with `tls.mode: PASSTHROUGH` and
// VirtualService `tls[]` routes. ingressd reads the ClientHello's SNI without terminating and
// splices the connection to an upstream that terminates TLS itself (a Python ssl server that
// answers with its name and the SNI it saw), so the client sees the upstream's certificate.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class TLSPassthroughTests: IntegrationTestCase {

    func testSNIRoutesToTheUpstreamThatTerminates() throws {
        let pki = try TestPKI(harness)
        let one = try harness.startTLSUpstream("one", pki: pki, names: ["one.example.com"])
        let two = try harness.startTLSUpstream("two", pki: pki, names: ["two.example.com", "x.two.example.com"])
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
                hosts: ["one.example.com", "*.two.example.com", "two.example.com"]
                tls: {mode: PASSTHROUGH}
              - port: {number: \(httpPort), name: http, protocol: HTTP}
                hosts: ["*"]
            """,
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: pass}
            spec:
              hosts: ["one.example.com", "two.example.com", "*.two.example.com"]
              gateways: ["gw"]
              tls:
              - match: [{port: \(port), sniHosts: ["one.example.com"]}]
                route:
                - destination: {host: one, port: {number: 443}}
              - match: [{port: \(port), sniHosts: ["two.example.com", "*.two.example.com"]}]
                route:
                - destination: {host: two, port: {number: 443}}
            """,
            WorkshopConfig.serviceEntry(name: "one", servicePort: 443, endpoints: [(one, [:])]),
            WorkshopConfig.serviceEntry(name: "two", servicePort: 443, endpoints: [(two, [:])]),
        ]
        let path = try harness.write("pass.yaml", WorkshopConfig.documents(docs))
        let ingressd = try harness.startIngressd(configs: [path], listenPort: httpPort, workers: 1)
        func get(_ host: String) throws -> HTTPResponse {
            try harness.curl("https://\(host):\(port)/", ["--cacert", pki.caPath, "--resolve", "\(host):\(port):127.0.0.1"])
        }
        let r1 = try get("one.example.com")
        XCTAssertEqual(r1.status, 200, r1.curlStderr)
        XCTAssertEqual(r1.text, "upstream one sni one.example.com client None\n")
        let r2 = try get("x.two.example.com")
        XCTAssertEqual(r2.status, 200, r2.curlStderr)
        XCTAssertEqual(r2.text, "upstream two sni x.two.example.com client None\n", "the upstream's own certificate verified by curl")
        // An SNI no route matches: closed, nothing forwarded.
        let none = try harness.curl("https://three.example.com:\(port)/", ["-k", "--resolve", "three.example.com:\(port):127.0.0.1"])
        XCTAssertEqual(none.status, 0)
        // Not TLS at all: closed without a byte.
        XCTAssertEqual(try RawHTTP.exchange(port: port, send: Array("GET / HTTP/1.1\r\n\r\n".utf8), timeout: 5), [])
        XCTAssertTrue(ingressd.child.isRunning)
        // Still serving after the refusals.
        XCTAssertEqual(try get("one.example.com").status, 200)
    }

    /// A TLS-protocol server in SIMPLE mode terminates and forwards the plaintext to its `tcp`
    /// route (here the bulk upstream's TCP echo): the transport copies instead of splicing.
    func testTerminatedTLSServerForwardsPlaintextToItsTCPRoute() throws {
        let pki = try TestPKI(harness)
        let cert = try pki.issue("tcp", names: ["tcp.example.com"])
        let echo = try harness.startBulkUpstream(["tcp"])
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
                hosts: ["tcp.example.com"]
                tls: {mode: SIMPLE, serverCertificate: \(cert.crt), privateKey: \(cert.key)}
              - port: {number: \(httpPort), name: http, protocol: HTTP}
                hosts: ["*"]
            """,
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: echo}
            spec:
              hosts: ["tcp.example.com"]
              gateways: ["gw"]
              tcp:
              - match: [{port: \(port)}]
                route:
                - destination: {host: echo, port: {number: 9000}}
            """,
            WorkshopConfig.serviceEntry(name: "echo", servicePort: 9000, endpoints: [(echo, [:])]),
        ]
        let path = try harness.write("tlstcp.yaml", WorkshopConfig.documents(docs))
        let ingressd = try harness.startIngressd(configs: [path], listenPort: httpPort, workers: 1)
        let script = """
        import socket, ssl, sys, hashlib
        ctx = ssl.create_default_context(cafile=sys.argv[2])
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="tcp.example.com")
        payload = bytes((i * 7) & 255 for i in range(3 << 20))
        got = b""
        sent = 0
        s.setblocking(False)
        import select
        while len(got) < len(payload):
            r, w, _ = select.select([s], [s] if sent < len(payload) else [], [], 10)
            if not r and not w: break
            if w:
                try: sent += s.send(payload[sent:sent + 65536])
                except ssl.SSLWantWriteError: pass
            if r:
                try:
                    chunk = s.recv(65536)
                    if not chunk: break
                    got += chunk
                except ssl.SSLWantReadError: pass
        print(len(got), got == payload)
        """
        let r = try harness.run("python3", ["-c", script, String(port), pki.caPath], timeout: 60)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "\(3 << 20) True", r.output)
        XCTAssertTrue(ingressd.child.isRunning)
    }
}
