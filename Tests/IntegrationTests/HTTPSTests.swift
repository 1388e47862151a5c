// HTTPS termination end to end: the real ingressd binary with Gateway HTTPS servers (SIMPLE,
// MUTUAL, by file paths and by credentialName), curl / openssl s_client / Python ssl as
// clients, the demo upstream behind. Certificates are made at test time (Support/TestPKI.swift).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class HTTPSTests: IntegrationTestCase {

    struct Gateway {
        var ingressd: Ingressd
        var httpsPort: UInt16
        var pki: TestPKI
        var upstream: DemoUpstream
        var configPath: String
    }

    /// An HTTPS port with two servers (a.example.com: certificate files; b.example.com: a
    /// credentialName), optionally a MUTUAL server for m.example.com, and an HTTP port; every
    /// host routes to one demo upstream.
    func startGateway(mutual: Bool = false, extraArgs: [String] = [], workers: Int = 1,
                      environment: [String: String] = [:]) throws -> Gateway {
        let pki = try TestPKI(harness)
        let a = try pki.issue("a", names: ["a.example.com"])
        let creds = harness.path("credentials")
        try pki.credential(in: creds, name: "b-cred", names: ["b.example.com", "*.b.example.com"])
        let m = try pki.issue("m", names: ["m.example.com", "hash.example.com", "spki.example.com"])
        let upstream = try harness.startUpstream("web")
        let httpsPort = try freeTCPPort()
        let httpPort = try freeTCPPort()
        var servers = """
              - port: {number: \(httpsPort), name: https-a, protocol: HTTPS}
                hosts: ["a.example.com"]
                tls: {mode: SIMPLE, serverCertificate: \(a.crt), privateKey: \(a.key)}
              - port: {number: \(httpsPort), name: https-b, protocol: HTTPS}
                hosts: ["b.example.com", "*.b.example.com"]
                tls: {mode: SIMPLE, credentialName: b-cred}
              - port: {number: \(httpPort), name: http, protocol: HTTP}
                hosts: ["*"]

            """
        if mutual {
            // Pins of the client certificate the mutual test presents: hex SHA-256 of its DER
            // (written with colons, upper case) and base64 SHA-256 of its SPKI.
            let client = try pki.issue("client", names: ["client.example.com"], client: true)
            let hash = try harness.run("/bin/sh", ["-c", "openssl x509 -in \(client.crt) -outform DER | sha256sum"]).stdout.prefix(64)
            let colons = stride(from: 0, to: 64, by: 2).map { i -> String in
                let a = hash.index(hash.startIndex, offsetBy: i)
                return String(hash[a..<hash.index(a, offsetBy: 2)]).uppercased()
            }.joined(separator: ":")
            let spki = try harness.run("/bin/sh", ["-c", "openssl x509 -in \(client.crt) -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            servers += """
                  - port: {number: \(httpsPort), name: https-hash, protocol: HTTPS}
                    hosts: ["hash.example.com"]
                    tls: {mode: MUTUAL, serverCertificate: \(m.crt), privateKey: \(m.key), caCertificates: \(pki.caPath),
                          verifyCertificateHash: ["\(colons)"]}
                  - port: {number: \(httpsPort), name: https-spki, protocol: HTTPS}
                    hosts: ["spki.example.com"]
                    tls: {mode: MUTUAL, serverCertificate: \(m.crt), privateKey: \(m.key), caCertificates: \(pki.caPath),
                          verifyCertificateSpki: ["\(spki)"]}

                """
            servers += """
                  - port: {number: \(httpsPort), name: https-m, protocol: HTTPS}
                    hosts: ["m.example.com"]
                    tls: {mode: MUTUAL, serverCertificate: \(m.crt), privateKey: \(m.key), caCertificates: \(pki.caPath),
                           subjectAltNames: ["client.example.com", "spiffe://cluster.local/ns/x/sa/y"]}

                """
        }
        let docs = [
            """
            apiVersion: networking.istio.io/v1beta1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
            \(servers)
            """,
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: web}
            spec:
              hosts: ["*"]
              gateways: ["gw"]
              http:
              - route:
                - destination: {host: web, port: {number: 80}}
            """,
            WorkshopConfig.serviceEntry(name: "web", servicePort: 80, endpoints: [(upstream.port, [:])]),
        ]
        let path = try harness.write("https.yaml", WorkshopConfig.documents(docs))
        let ingressd = try harness.startIngressd(configs: [path], listenPort: httpPort, workers: workers,
                                                 extraArgs: ["--credentials-dir", creds] + extraArgs, environment: environment)
        return Gateway(ingressd: ingressd, httpsPort: httpsPort, pki: pki, upstream: upstream, configPath: path)
    }

    /// curl over HTTPS to `host` on the gateway's HTTPS port, verifying against the test CA.
    func curlHTTPS(_ g: Gateway, host: String, path: String = "/", _ extra: [String] = []) throws -> HTTPResponse {
        try harness.curl("https://\(host):\(g.httpsPort)\(path)",
                         ["--cacert", g.pki.caPath, "--resolve", "\(host):\(g.httpsPort):127.0.0.1"] + extra)
    }

    /// The subject CN of the certificate ingressd presents for `sni` (nil: the handshake failed).
    func presentedCertificate(_ g: Gateway, sni: String?) throws -> String? {
        var args = ["s_client", "-connect", "127.0.0.1:\(g.httpsPort)", "-brief"]
        if let sni { args += ["-servername", sni] } else { args += ["-noservername"] }
        let r = try harness.run("/bin/sh", ["-c", "echo | openssl " + args.joined(separator: " ") + " 2>&1"], timeout: 20)
        guard let line = r.stdout.split(separator: "\n").first(where: { $0.hasPrefix("Peer certificate:") }) else { return nil }
        return line.components(separatedBy: "CN = ").last.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    // MARK: termination and SNI

    func testHTTPSServesTheRoutesWithXForwardedProtoHTTPS() throws {
        let g = try startGateway()
        let r = try curlHTTPS(g, host: "a.example.com", path: "/hello")
        XCTAssertEqual(r.curlExit, 0, r.curlStderr)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("x-demo-upstream"), "web")
        XCTAssertTrue(r.text.contains("x-forwarded-proto: https"), r.text)
        XCTAssertTrue(r.text.contains("request: GET /hello HTTP/1.1"), r.text)
        // The plain HTTP port keeps saying http.
        let plain = try harness.curl(g.ingressd.url + "/hello")
        XCTAssertTrue(plain.text.contains("x-forwarded-proto: http\n"), plain.text)
    }

    func testSNIPicksTheServersCertificate() throws {
        let g = try startGateway()
        XCTAssertEqual(try presentedCertificate(g, sni: "a.example.com"), "a.example.com")
        XCTAssertEqual(try presentedCertificate(g, sni: "b.example.com"), "b.example.com")
        XCTAssertEqual(try presentedCertificate(g, sni: "x.b.example.com"), "b.example.com", "wildcard server")
        XCTAssertEqual(try presentedCertificate(g, sni: "A.EXAMPLE.COM"), "a.example.com", "SNI is case-insensitive")
        // No server for the name, or no SNI at all (no "*" server): closed without a certificate.
        XCTAssertNil(try presentedCertificate(g, sni: "c.example.com"))
        XCTAssertNil(try presentedCertificate(g, sni: nil))
        let r = try curlHTTPS(g, host: "b.example.com")
        XCTAssertEqual(r.status, 200, r.curlStderr)
        XCTAssertTrue(g.ingressd.child.isRunning)
    }

    func testKeepAliveLargeBodiesAndUploadsOverTLS() throws {
        let g = try startGateway()
        // Three requests on one connection, one of them 1 MiB (many TLS records each way).
        let url = "https://a.example.com:\(g.httpsPort)"
        let r = try harness.run("curl", ["-s", "--cacert", g.pki.caPath, "--resolve", "a.example.com:\(g.httpsPort):127.0.0.1",
                                         "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                                         "-w", "%{http_code} %{size_download} %{num_connects}\n",
                                         url + "/a", url + "/bytes/1048576", url + "/c"], timeout: 60)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        guard lines.count == 3 else { return XCTFail("3 transfers expected: \(r.output)") }
        XCTAssertEqual(lines[1], "200 1048576 0", "1 MiB on the kept-alive connection: \(r.output)")
        XCTAssertEqual(lines[0].split(separator: " ").last, "1")
        XCTAssertEqual(lines[2].split(separator: " ").last, "0")
        // A 3 MiB upload: the upstream echoes its length and SHA-256.
        let file = harness.path("upload.bin")
        var bytes = [UInt8](repeating: 0, count: 3 << 20)
        for k in bytes.indices { bytes[k] = UInt8(truncatingIfNeeded: (k &* 2_654_435_761) >> 11) }
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let up = try curlHTTPS(g, host: "a.example.com", path: "/upload", ["--data-binary", "@" + file])
        XCTAssertEqual(up.status, 200, up.curlStderr)
        XCTAssertTrue(up.text.contains("body-bytes: \(3 << 20)"), up.text)
        XCTAssertTrue(up.text.contains("body-sha256: \(harness.sha256Hex(Data(bytes)))"), up.text)
    }

    func testPipelinedRequestsInOneRecordAndPythonSSL() throws {
        let g = try startGateway()
        // Python's ssl module: three pipelined requests in one write (one or more TLS records
        // holding several requests: the session reads them one at a time from OpenSSL).
        let script = """
        import socket, ssl, sys
        ctx = ssl.create_default_context(cafile=sys.argv[2])
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="a.example.com")
        req = b"".join(b"GET /p%d HTTP/1.1\\r\\nHost: a.example.com\\r\\n\\r\\n" % i for i in range(3))
        s.sendall(req + b"GET /last HTTP/1.1\\r\\nHost: a.example.com\\r\\nConnection: close\\r\\n\\r\\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        print(s.version(), data.count(b"HTTP/1.1 200"), data.count(b"request: GET /p"), data.count(b"GET /last"))
        """
        let r = try harness.run("python3", ["-c", script, String(g.httpsPort), g.pki.caPath], timeout: 30)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "TLSv1.3 4 3 1", r.output)
    }

    func testTLS12AndVersionsAndALPN() throws {
        let g = try startGateway()
        let v12 = try curlHTTPS(g, host: "a.example.com", ["--tlsv1.2", "--tls-max", "1.2"])
        XCTAssertEqual(v12.status, 200, v12.curlStderr)
        // TLS 1.1 is below the default minimum (TLS 1.2): the handshake fails.
        let old = try harness.run("/bin/sh", ["-c", "echo | openssl s_client -connect 127.0.0.1:\(g.httpsPort) -servername a.example.com -tls1_1 2>&1"], timeout: 20)
        XCTAssertFalse(old.stdout.contains("Peer certificate"), old.stdout)
        // ALPN in the server's order (Envoy's gateway): h2 when offered, else http/1.1; a
        // client offering neither gets no protocol and the handshake goes on. (s_client sends
        // nothing: `echo |` would send "\n", which an HTTP/2 server takes for a bad preface and
        // closes on — s_client then dies of SIGPIPE with its output unflushed.)
        let alpn = try harness.run("/bin/sh", ["-c", "openssl s_client -connect 127.0.0.1:\(g.httpsPort) -servername a.example.com -alpn http/1.1,h2 </dev/null 2>&1"], timeout: 20)
        XCTAssertTrue(alpn.stdout.contains("ALPN protocol: h2"), alpn.stdout)
        let h1 = try harness.run("/bin/sh", ["-c", "openssl s_client -connect 127.0.0.1:\(g.httpsPort) -servername a.example.com -alpn http/1.1 </dev/null 2>&1"], timeout: 20)
        XCTAssertTrue(h1.stdout.contains("ALPN protocol: http/1.1"), h1.stdout)
        let other = try harness.run("/bin/sh", ["-c", "openssl s_client -connect 127.0.0.1:\(g.httpsPort) -servername a.example.com -alpn spdy/3 </dev/null 2>&1"], timeout: 20)
        XCTAssertTrue(other.stdout.contains("No ALPN negotiated") && other.stdout.contains("Server certificate"), other.stdout)
    }

    func testIdleKeptAliveTLSConnectionsHoldLittleMemory() throws {
        let g = try startGateway()
        guard let worker = g.ingressd.workerPids.first else { return XCTFail("no worker") }
        // 150 kept-alive TLS connections, each after a 4 KiB response, then idle. OpenSSL's
        // record buffers are released on idle (SSL_MODE_RELEASE_BUFFERS; 34 KiB per connection
        // otherwise) and grown memory BIOs are replaced: measured ~33 KiB per connection.
        let script = """
        import socket, ssl, sys
        ctx = ssl.create_default_context(cafile=sys.argv[2])
        held = []
        for _ in range(150):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="a.example.com")
            s.sendall(b"GET /bytes/%d HTTP/1.1\\r\\nHost: a.example.com\\r\\n\\r\\n" % int(sys.argv[3]))
            got = b""
            while not got.endswith(b"\\r\\n\\r\\n") and b"\\r\\n\\r\\n" not in got:
                got += s.recv(65536)
            total = len(got) - got.index(b"\\r\\n\\r\\n") - 4
            while total < int(sys.argv[3]):
                total += len(s.recv(65536))
            held.append(s)
        print("ready", flush=True)
        sys.stdin.read()
        """
        _ = try harness.curl("https://a.example.com:\(g.httpsPort)/bytes/4096",
                             ["--cacert", g.pki.caPath, "--resolve", "a.example.com:\(g.httpsPort):127.0.0.1", "-o", "/dev/null"])
        let before = try vmRSSKiB(worker)
        let path = try harness.write("hold.py", script)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.which("python3") ?? "/usr/bin/python3")
        p.arguments = [path, String(g.httpsPort), g.pki.caPath, "4096"]
        let stdin = Pipe(), stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        try p.run()
        defer { try? stdin.fileHandleForWriting.close(); p.waitUntilExit() }
        let line = String(decoding: stdout.fileHandleForReading.availableData, as: UTF8.self)
        XCTAssertEqual(line.trimmingCharacters(in: .whitespacesAndNewlines), "ready")
        let after = try vmRSSKiB(worker)
        XCTAssertLessThan(after - before, 150 * 48, "worker VmRSS \(before) → \(after) KiB for 150 idle TLS connections")
    }

    func testBuffersOfLargeResponsesAreFreedWhenTheTLSConnectionsGoIdle() throws {
        // 200 TLS connections fetch 1 MiB each, all at once, then stay open and idle. While
        // they are busy every one holds the worker's buffers (ciphertext out 80 KiB, two 64 KiB
        // bulk receive buffers, OpenSSL's records, a grown memory BIO); once idle, the pools
        // free what no connection took for a trim interval (2 s) and glibc gives the pages
        // back. Measured ~21 KiB per idle connection afterwards (nginx: ~17–19 KiB); without
        // the trimming the worker kept ~200 KiB per connection. A 256-buffer receive ring
        // (4 MiB) bounds the ring pages this traffic touches for the first time.
        let g = try startGateway(environment: ["INGRESSD_RECEIVE_BUFFERS": "256"])
        guard let worker = g.ingressd.workerPids.first else { return XCTFail("no worker") }
        let conns = 200
        let script = """
        import socket, ssl, sys, threading
        ctx = ssl.create_default_context(cafile=sys.argv[2])
        held, errors, lock = [], [], threading.Lock()
        def fetch():
            try:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60), server_hostname="a.example.com")
                s.sendall(b"GET /bytes/1048576 HTTP/1.1\\r\\nHost: a.example.com\\r\\n\\r\\n")
                got = b""
                while b"\\r\\n\\r\\n" not in got:
                    got += s.recv(65536)
                total = len(got) - got.index(b"\\r\\n\\r\\n") - 4
                while total < 1048576:
                    chunk = s.recv(65536)
                    if not chunk: raise EOFError("closed after %d bytes" % total)
                    total += len(chunk)
                with lock: held.append(s)
            except Exception as e:
                with lock: errors.append(repr(e))
        threads = [threading.Thread(target=fetch) for _ in range(int(sys.argv[3]))]
        for t in threads: t.start()
        for t in threads: t.join()
        print("ready", len(held), errors[:3], flush=True)
        sys.stdin.read()
        """
        _ = try harness.curl("https://a.example.com:\(g.httpsPort)/bytes/4096",
                             ["--cacert", g.pki.caPath, "--resolve", "a.example.com:\(g.httpsPort):127.0.0.1", "-o", "/dev/null"])
        let before = try vmRSSKiB(worker)
        let path = try harness.write("hold-large.py", script)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [path, String(g.httpsPort), g.pki.caPath, String(conns)]
        let stdin = Pipe(), stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        try p.run()
        defer { try? stdin.fileHandleForWriting.close(); p.waitUntilExit() }
        // The whole line: a pipe read may return it in pieces ("ready 200" then " []").
        var output = Data()
        while !output.contains(UInt8(ascii: "\n")) {
            let piece = stdout.fileHandleForReading.availableData
            if piece.isEmpty { break }
            output += piece
        }
        let line = String(decoding: output, as: UTF8.self)
        XCTAssertEqual(line.trimmingCharacters(in: .whitespacesAndNewlines), "ready \(conns) []")
        let busy = try vmRSSKiB(worker)
        // Two trim intervals at most; poll so that a passing run does not wait them out.
        let bound = conns * 64
        var idle = busy
        let deadline = Date().addingTimeInterval(10)
        while idle - before > bound && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.5)
            idle = try vmRSSKiB(worker)
        }
        XCTAssertLessThan(idle - before, bound,
                          "worker VmRSS \(before) KiB before, \(busy) KiB after \(conns) × 1 MiB over TLS, \(idle) KiB idle")
        // The connections are still usable.
        let r = try curlHTTPS(g, host: "a.example.com", path: "/bytes/1048576")
        XCTAssertEqual(r.status, 200, r.curlStderr)
        XCTAssertEqual(r.body.count, 1 << 20)
    }

    // MARK: session resumption

    func testSessionsResumeOnEveryWorkerWithTheSharedTicketKeys() throws {
        let g = try startGateway(workers: 2)
        // One full handshake, then 12 connections resuming with the latest ticket. With two
        // workers behind SO_REUSEPORT, both accept some of them: every one must resume, which
        // only works when both workers hold the same ticket keys (shared memory).
        let script = """
        import socket, ssl, sys
        ctx = ssl.create_default_context(cafile=sys.argv[2])
        def get(session):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))),
                                server_hostname="a.example.com", session=session)
            s.sendall(b"GET / HTTP/1.1\\r\\nHost: a.example.com\\r\\nConnection: close\\r\\n\\r\\n")
            while s.recv(65536): pass
            reused, sess = s.session_reused, s.session
            s.close()
            return reused, sess
        _, sess = get(None)
        reused = 0
        for _ in range(12):
            r, sess = get(sess)
            reused += r
        print(reused)
        """
        let r = try harness.run("python3", ["-c", script, String(g.httpsPort), g.pki.caPath], timeout: 60)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "12", r.output)
        let text = try harness.curl("http://127.0.0.1:\(g.ingressd.adminPort)/stats/prometheus").text
        XCTAssertTrue(text.contains("envoy_listener_ssl_session_reused{listener_address=\"127.0.0.1_\(g.httpsPort)\"} 12\n"), text)
    }

    // MARK: mutual TLS

    func testMutualTLSRequiresAClientCertificateFromTheCA() throws {
        let g = try startGateway(mutual: true)
        let client = (crt: g.pki.dir + "/client.crt", key: g.pki.dir + "/client.key")
        let ok = try curlHTTPS(g, host: "m.example.com", ["--cert", client.crt, "--key", client.key,
                                                           "-H", "x-forwarded-client-cert: By=forged"])
        XCTAssertEqual(ok.status, 200, ok.curlStderr)
        // Istio's gateway default (SANITIZE_SET): the client's own value is dropped, the proxy's set.
        let hash = try harness.run("/bin/sh", ["-c", "openssl x509 -in \(client.crt) -outform DER | sha256sum"]).stdout.prefix(64)
        XCTAssertTrue(ok.text.contains("x-forwarded-client-cert: Hash=\(hash);Subject=\"CN=client.example.com\";DNS=client.example.com\n"), ok.text)
        XCTAssertFalse(ok.text.contains("By=forged"), ok.text)
        let simple = try curlHTTPS(g, host: "a.example.com", ["-H", "x-forwarded-client-cert: By=forged"])
        XCTAssertFalse(simple.text.lowercased().contains("x-forwarded-client-cert"), "sanitized without a client certificate: \(simple.text)")
        let none = try curlHTTPS(g, host: "m.example.com")
        XCTAssertNotEqual(none.curlExit, 0, "no client certificate: refused")
        XCTAssertEqual(none.status, 0)
        // A certificate from another CA is refused too.
        let other = try TestPKI(harness, name: "other")
        let stranger = try other.issue("stranger", names: ["stranger.example.com"], client: true)
        let bad = try curlHTTPS(g, host: "m.example.com", ["--cert", stranger.crt, "--key", stranger.key])
        XCTAssertEqual(bad.status, 0, "foreign client certificate refused")
        // From the CA but without one of the server's subjectAltNames: refused after the handshake.
        let wrongName = try g.pki.issue("wrong-name", names: ["intruder.example.com"], client: true)
        let refused = try curlHTTPS(g, host: "m.example.com", ["--cert", wrongName.crt, "--key", wrongName.key])
        XCTAssertEqual(refused.status, 0, "SAN not in subjectAltNames")
        let text = try harness.curl("http://127.0.0.1:\(g.ingressd.adminPort)/stats/prometheus").text
        XCTAssertTrue(text.contains("envoy_listener_ssl_fail_verify_no_cert{listener_address=\"127.0.0.1_\(g.httpsPort)\"} "), text)
        XCTAssertFalse(text.contains("envoy_listener_ssl_fail_verify_no_cert{listener_address=\"127.0.0.1_\(g.httpsPort)\"} 0\n"), text)
        // Pinned by certificate hash and by SPKI: the pinned client passes, another does not.
        for host in ["hash.example.com", "spki.example.com"] {
            let pinned = try curlHTTPS(g, host: host, ["--cert", client.crt, "--key", client.key])
            XCTAssertEqual(pinned.status, 200, "\(host): \(pinned.curlStderr)")
            let other = try curlHTTPS(g, host: host, ["--cert", wrongName.crt, "--key", wrongName.key])
            XCTAssertEqual(other.status, 0, "\(host): a certificate of the same CA that is not pinned")
        }
        // A connection made for a SIMPLE server cannot reach the MUTUAL server's host with a
        // Host header (Envoy keeps a route configuration per server): 404, the upstream sees nothing.
        let before = try String(contentsOfFile: g.upstream.logPath, encoding: .utf8).count
        let fronted = try curlHTTPS(g, host: "a.example.com", path: "/fronted", ["-H", "Host: m.example.com"])
        XCTAssertEqual(fronted.status, 404, fronted.text)
        XCTAssertFalse(try String(contentsOfFile: g.upstream.logPath, encoding: .utf8).dropFirst(before).contains("/fronted"))
        // The same port's servers each reach their own hosts; a Host with a port is fine.
        XCTAssertEqual(try curlHTTPS(g, host: "b.example.com", ["-H", "Host: x.b.example.com:\(g.httpsPort)"]).status, 200)
        XCTAssertEqual(try curlHTTPS(g, host: "a.example.com", ["-H", "Host: b.example.com"]).status, 404)
        // SIMPLE servers on the same port still need none.
        XCTAssertEqual(try curlHTTPS(g, host: "a.example.com").status, 200)
    }

    // MARK: bad input

    func testPlaintextGarbageAndStalledHandshakesAreClosedWithoutHarm() throws {
        let g = try startGateway(extraArgs: ["--header-timeout", "1s"])
        // Plain HTTP to the HTTPS port: closed, not a byte answered (Envoy answers nothing).
        XCTAssertEqual(try RawHTTP.exchange(port: g.httpsPort, send: Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8), timeout: 5), [])
        // Garbage that looks like a TLS record header, then nonsense.
        XCTAssertEqual(try RawHTTP.exchange(port: g.httpsPort, send: [0x16, 0x03, 0x01, 0x00, 0x05, 9, 9, 9, 9, 9], timeout: 5), [])
        // Half a ClientHello, then silence: closed by the header timeout (1 s), not held.
        let start = Date()
        XCTAssertEqual(try RawHTTP.exchange(port: g.httpsPort, send: [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00], timeout: 8), [])
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "closed by the handshake timeout")
        // A client renegotiation attempt (TLS 1.2) is refused; the server stays up.
        let reneg = try harness.run("/bin/sh", ["-c", "(sleep 1; echo R; sleep 1) | openssl s_client -connect 127.0.0.1:\(g.httpsPort) -servername a.example.com -tls1_2 2>&1"], timeout: 20)
        XCTAssertTrue(reneg.stdout.contains("RENEGOTIATING"), reneg.stdout)
        XCTAssertTrue(reneg.stdout.contains("no renegotiation"), "the server answers a no_renegotiation alert: \(reneg.stdout)")
        // Everyone else is still served.
        let r = try curlHTTPS(g, host: "a.example.com")
        XCTAssertEqual(r.status, 200, r.curlStderr)
        XCTAssertTrue(g.ingressd.child.isRunning)
    }

    // MARK: stats

    /// The value of `name{listener_address="127.0.0.1_PORT"}` in a Prometheus text (nil: none).
    func listenerValue(_ text: String, _ name: String, port: UInt16) -> Double? {
        let prefix = name + "{listener_address=\"127.0.0.1_\(port)\"} "
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }

    func testListenerTLSStats() throws {
        let g = try startGateway()
        for _ in 0..<3 { XCTAssertEqual(try curlHTTPS(g, host: "a.example.com").status, 200) }
        _ = try RawHTTP.exchange(port: g.httpsPort, send: Array("GET / HTTP/1.1\r\n\r\n".utf8), timeout: 5)
        _ = try presentedCertificate(g, sni: "nobody.example.com")
        let text = try harness.curl("http://127.0.0.1:\(g.ingressd.adminPort)/stats/prometheus").text
        XCTAssertEqual(listenerValue(text, "envoy_listener_ssl_handshake", port: g.httpsPort), 3, text)
        XCTAssertGreaterThanOrEqual(listenerValue(text, "envoy_listener_ssl_connection_error", port: g.httpsPort) ?? 0, 1, text)
        XCTAssertEqual(listenerValue(text, "envoy_listener_no_filter_chain_match", port: g.httpsPort), 1, text)
        XCTAssertEqual(listenerValue(text, "envoy_listener_ssl_session_reused", port: g.httpsPort), 0, text)
        // The plain HTTP port has no TLS stats.
        XCTAssertNil(listenerValue(text, "envoy_listener_ssl_handshake", port: g.ingressd.listenPort), text)
    }

    /// Envoy labels listener stats by listener address, as Istio exposes them: two HTTPS ports
    /// count apart (over two workers), and /stats keeps the totals.
    func testListenerTLSStatsPerListenerAddress() throws {
        let pki = try TestPKI(harness)
        let a = try pki.issue("a", names: ["a.example.com"])
        let upstream = try harness.startUpstream("web")
        let portA = try freeTCPPort()
        let portB = try freeTCPPort()
        let httpPort = try freeTCPPort()
        let docs = [
            """
            apiVersion: networking.istio.io/v1beta1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: \(portA), name: https-a, protocol: HTTPS}
                hosts: ["a.example.com"]
                tls: {mode: SIMPLE, serverCertificate: \(a.crt), privateKey: \(a.key)}
              - port: {number: \(portB), name: https-b, protocol: HTTPS}
                hosts: ["a.example.com"]
                tls: {mode: SIMPLE, serverCertificate: \(a.crt), privateKey: \(a.key)}
              - port: {number: \(httpPort), name: http, protocol: HTTP}
                hosts: ["*"]
            """,
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: web}
            spec:
              hosts: ["*"]
              gateways: ["gw"]
              http:
              - route:
                - destination: {host: web, port: {number: 80}}
            """,
            WorkshopConfig.serviceEntry(name: "web", servicePort: 80, endpoints: [(upstream.port, [:])]),
        ]
        let path = try harness.write("https-two-ports.yaml", WorkshopConfig.documents(docs))
        let ingressd = try harness.startIngressd(configs: [path], listenPort: httpPort, workers: 2)
        func get(_ port: UInt16) throws -> Int {
            try harness.curl("https://a.example.com:\(port)/", ["--cacert", pki.caPath, "--resolve", "a.example.com:\(port):127.0.0.1"]).status
        }
        for _ in 0..<4 { XCTAssertEqual(try get(portA), 200) }
        XCTAssertEqual(try get(portB), 200)
        // On B only: an SNI no server takes, and plain HTTP.
        _ = try harness.run("/bin/sh", ["-c", "echo | openssl s_client -connect 127.0.0.1:\(portB) -servername nobody.example.com 2>&1"], timeout: 20)
        _ = try RawHTTP.exchange(port: portB, send: Array("GET / HTTP/1.1\r\n\r\n".utf8), timeout: 5)
        let text = try harness.curl("http://127.0.0.1:\(ingressd.adminPort)/stats/prometheus").text
        XCTAssertEqual(listenerValue(text, "envoy_listener_ssl_handshake", port: portA), 4, text)
        XCTAssertEqual(listenerValue(text, "envoy_listener_ssl_handshake", port: portB), 1, text)
        XCTAssertEqual(listenerValue(text, "envoy_listener_no_filter_chain_match", port: portA), 0, text)
        XCTAssertEqual(listenerValue(text, "envoy_listener_no_filter_chain_match", port: portB), 1, text)
        XCTAssertEqual(listenerValue(text, "envoy_listener_ssl_connection_error", port: portA), 0, text)
        XCTAssertEqual(listenerValue(text, "envoy_listener_ssl_connection_error", port: portB), 1, text)
        XCTAssertEqual(text.split(separator: "\n").filter { $0.hasPrefix("envoy_listener_ssl_handshake{") }.count, 2, text)
        // /stats keeps the totals over listeners.
        let json = try harness.curl("http://127.0.0.1:\(ingressd.adminPort)/stats").text
        XCTAssertTrue(json.contains("\"tlsHandshakes\": 5") || json.contains("\"tlsHandshakes\":5"), json)
    }
}
