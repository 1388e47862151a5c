// A TLS upstream for the tests: a Python ssl server that answers every request (keep-alive)
// with its name, the SNI it saw and the client certificate's CN ("None" without one); with a
// client CA it requires a client certificate (MUTUAL). Certificates from TestPKI.

import Foundation

extension Harness {
    /// The start every Python TLS upstream here shares: argv NAME CRT KEY [CLIENT_CA] (a client
    /// CA requires a client certificate), an SSL context that records each connection's SNI in
    /// `seen`, a listener on a free port, and the "NAME listening on" line.
    static let tlsServerPreamble = """
    import socket, ssl, sys, threading
    name, crt, key = sys.argv[1], sys.argv[2], sys.argv[3]
    client_ca = sys.argv[4] if len(sys.argv) > 4 else None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    seen = {}
    ctx.sni_callback = lambda sock, server_name, c: seen.__setitem__(id(sock), server_name)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0)); ls.listen(64)
    print(f"{name} listening on 127.0.0.1:{ls.getsockname()[1]}", flush=True)

    """ + "\n"

    static let tlsUpstreamScript = tlsServerPreamble + """
    def serve(conn):
        try:
            s = ctx.wrap_socket(conn, server_side=True)
            while True:
                data = b""
                while b"\\r\\n\\r\\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk: return
                    data += chunk
                peer = s.getpeercert()
                cn = dict(x[0] for x in peer["subject"]).get("commonName") if peer else None
                body = f"upstream {name} sni {seen.get(id(s))} client {cn}\\n".encode()
                s.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-length: %d\\r\\n\\r\\n" % len(body) + body)
        except Exception as e:
            print("error", e, file=sys.stderr, flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    """

    /// Starts a TLS upstream named `name` with a certificate for `names`; its port.
    func startTLSUpstream(_ name: String, pki: TestPKI, names: [String], clientCA: String? = nil) throws -> UInt16 {
        let (crt, key) = try pki.issue("up-\(name)", names: names)
        let script = try write("tls_upstream_\(name).py", Harness.tlsUpstreamScript)
        return try startPortPrintingServer("tls-\(name)", [script, name, crt, key] + (clientCA.map { [$0] } ?? [])).port
    }

    /// A TLS TCP upstream (a database's stand-in): on each connection it first sends one line,
    /// `hello NAME sni SNI client CN`, then echoes every byte until the client closes.
    static let tlsEchoScript = tlsServerPreamble + """
    def serve(conn):
        try:
            s = ctx.wrap_socket(conn, server_side=True)
            peer = s.getpeercert()
            cn = dict(x[0] for x in peer["subject"]).get("commonName") if peer else None
            s.sendall(f"hello {name} sni {seen.get(id(s))} client {cn}\\n".encode())
            while True:
                chunk = s.recv(65536)
                if not chunk: return
                s.sendall(chunk)
        except Exception as e:
            print("error", e, file=sys.stderr, flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    """

    /// Starts a TLS echo upstream (`tlsEchoScript`) with a certificate for `names`; its port.
    func startTLSEchoUpstream(_ name: String, pki: TestPKI, names: [String], clientCA: String? = nil) throws -> UInt16 {
        let (crt, key) = try pki.issue("up-\(name)", names: names)
        let script = try write("tls_echo_\(name).py", Harness.tlsEchoScript)
        return try startPortPrintingServer("tls-echo-\(name)", [script, name, crt, key] + (clientCA.map { [$0] } ?? [])).port
    }
}

extension Harness {
    /// bulk_upstream.py's TCP echo behind TLS: echoes every byte; when the client's direction
    /// ends (close_notify, or a bare EOF), waits `linger` ms, writes "END <bytes> <sha256>\n",
    /// then sends close_notify and closes. A client that half-closes still gets everything.
    static let tlsBulkEchoScript = """
    import hashlib, socket, ssl, sys, threading, time
    name, crt, key, linger = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0)); ls.listen(64)
    print(f"{name} listening on 127.0.0.1:{ls.getsockname()[1]}", flush=True)
    def serve(conn):
        try:
            s = ctx.wrap_socket(conn, server_side=True)
            h = hashlib.sha256(); n = 0
            while True:
                d = s.recv(1 << 20)
                if not d: break
                n += len(d); h.update(d)
                s.sendall(d)
            time.sleep(linger / 1000.0)
            s.sendall(b"END %d %s\\n" % (n, h.hexdigest().encode()))
            s.unwrap().close()
        except Exception as e:
            print("error", e, file=sys.stderr, flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    """

    /// Starts a TLS bulk echo upstream (`tlsBulkEchoScript`) with a certificate for `names`.
    func startTLSBulkEchoUpstream(_ name: String, pki: TestPKI, names: [String], lingerMs: Int = 300) throws -> UInt16 {
        let (crt, key) = try pki.issue("up-\(name)", names: names)
        let script = try write("tls_bulk_echo_\(name).py", Harness.tlsBulkEchoScript)
        return try startPortPrintingServer("tls-bulk-\(name)", [script, name, crt, key, String(lingerMs)]).port
    }
}
