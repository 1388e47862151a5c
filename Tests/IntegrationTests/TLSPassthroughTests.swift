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
    /// route (here the bulk upstream's TCP echo): the transport copies instead of splicing, and
    /// passes a half-close on (close_notify in, FIN out; FIN in, close_notify out).
    func testTerminatedTLSServerForwardsPlaintextToItsTCPRoute() throws {
        let pki = try TestPKI(harness)
        let cert = try pki.issue("tcp", names: ["tcp.example.com"])
        let echo = try harness.startBulkUpstream(["tcp", "--linger-ms", "300"])
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

        // Half-close through the terminated TLS: the client sends close_notify and shuts down
        // its sending side; the upstream sees the FIN, and its echo and END line (300 ms
        // later) still reach the client, then close_notify from ingressd.
        let client = try harness.write("tls_half_close.py", Self.halfCloseClientScript)
        for size in [0, 5, 5 << 20] {
            let h = try harness.run("/usr/bin/python3", [client, String(port), pki.caPath, "tcp.example.com", String(size)], timeout: 60)
            let lines = h.stdout.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.count, 3, h.output)
            guard lines.count == 3 else { continue }
            XCTAssertEqual(lines[0], "\(size) True", "the whole echo after the client's close_notify")
            XCTAssertEqual(lines[1], "END \(size) True", "the upstream saw the FIN, got every byte")
            XCTAssertEqual(lines[2], "close_notify", "the upstream's FIN comes back as close_notify")
        }
        XCTAssertTrue(ingressd.child.isRunning)
    }

    /// A TLS client that half-closes (Python ssl over memory BIOs): sends N random bytes while
    /// reading the echo, then close_notify and shutdown(SHUT_WR), then reads until the server's
    /// close_notify or EOF. Prints "<echoed bytes> <echo matches>", "END <n> <sha matches>" and
    /// how the stream ended (close_notify, eof).
    static let halfCloseClientScript = """
    import hashlib, os, select, socket, ssl, sys
    port, ca, name, size = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    ctx = ssl.create_default_context(cafile=ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    while True:
        try:
            obj.do_handshake(); break
        except ssl.SSLWantReadError:
            s.sendall(out.read())
            d = s.recv(65536)
            if not d: sys.exit("EOF in the handshake")
            inc.write(d)
    s.sendall(out.read())
    s.setblocking(False)
    payload = os.urandom(size)
    sent = 0; pending = b""; got = bytearray(); notified = False; shut = False; ended = None
    while ended is None:
        while sent < size and len(pending) < 262144:
            k = obj.write(payload[sent:sent + 16384]); sent += k
            pending += out.read()
        if sent == size and not notified:
            try: obj.unwrap()
            except ssl.SSLWantReadError: pass
            notified = True
            pending += out.read()
        if notified and not pending and not shut:
            s.shutdown(socket.SHUT_WR); shut = True
        r, w, _ = select.select([s], [s] if pending else [], [], 10)
        if not r and not w: ended = "timeout"; break
        if w:
            try:
                k = s.send(pending); pending = pending[k:]
            except BlockingIOError: pass
        if r:
            d = s.recv(262144)
            if d: inc.write(d)
            else: inc.write_eof()
            try:
                while True:
                    c = obj.read(262144)
                    if not c: ended = "close_notify"; break
                    got += c
            except ssl.SSLWantReadError:
                if not d: ended = "eof"
            except ssl.SSLZeroReturnError: ended = "close_notify"
            except ssl.SSLError as e: ended = "error " + str(e)
    data = bytes(got)
    i = data.rfind(b"END ")
    end = data[i:].decode().split() if i >= 0 and data.endswith(b"\\n") else []
    echo = data[:i] if i >= 0 else data
    print(len(echo), echo == payload)
    print("END", end[1] if len(end) == 3 else "-", len(end) == 3 and end[2] == hashlib.sha256(payload).hexdigest())
    print(ended)
    """
}
