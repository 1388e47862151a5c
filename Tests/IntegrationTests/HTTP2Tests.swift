// HTTP/2 from clients end to end (README "HTTP/2"): the real ingressd binary with a Gateway that
// has a plain HTTP port (prior knowledge) and an HTTPS port (ALPN h2), the demo upstream behind
// it (HTTP/1.1, echoes the request it got), and real HTTP/2 clients: curl
// (--http2-prior-knowledge, --http2 over TLS), h2load for many concurrent streams, and Python h2
// (Debian's python3-h2, so /usr/bin/python3) at frame level for what curl will not send:
// cookie crumbs, forbidden fields, resets, floods.
//
// curl 7.88 cannot reuse a prior-knowledge connection for a second URL (seen against nginx too),
// so every curl call here fetches one URL; streams sharing a connection come from h2load or Python.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class HTTP2Tests: IntegrationTestCase {

    struct Gateway {
        var ingressd: Ingressd
        var httpPort: UInt16
        var httpsPort: UInt16
        var pki: TestPKI?
        var upstream: DemoUpstream
        var configPath: String
        var accessLog: String
        var url: String { "http://127.0.0.1:\(httpPort)" }
    }

    /// A Gateway `gw`: an HTTP port for every host, and (with `tls`) an HTTPS port for
    /// a.example.com. VirtualServices: h2.test and a.example.com → the demo upstream `web`;
    /// edit.h2.test with route actions (prefix /api/ rewritten to /v2/, x-env set to prod).
    /// Any other host has no route (404). The access log goes to DIR/access.log.
    func startGateway(tls: Bool = false, workers: Int = 1, extraArgs: [String] = [],
                      editHeader: String = "prod") throws -> Gateway {
        let upstream = try harness.startUpstream("web")
        let httpPort = try freeTCPPort()
        let httpsPort = try freeTCPPort()
        var pki: TestPKI?
        var servers = """
              - port: {number: \(httpPort), name: http, protocol: HTTP}
                hosts: ["*"]

            """
        if tls {
            let p = try TestPKI(harness)
            let a = try p.issue("a", names: ["a.example.com"])
            pki = p
            servers += """
                  - port: {number: \(httpsPort), name: https, protocol: HTTPS}
                    hosts: ["a.example.com"]
                    tls: {mode: SIMPLE, serverCertificate: \(a.crt), privateKey: \(a.key)}

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
              hosts: ["h2.test", "a.example.com"]
              gateways: ["gw"]
              http:
              - route:
                - destination: {host: web, port: {number: 80}}
            """,
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata: {name: edit}
            spec:
              hosts: ["edit.h2.test"]
              gateways: ["gw"]
              http:
              - match:
                - uri: {prefix: /api/}
                rewrite: {uri: /v2/}
                headers:
                  request:
                    set: {x-env: \(editHeader)}
                route:
                - destination: {host: web, port: {number: 80}}
            """,
            WorkshopConfig.serviceEntry(name: "web", servicePort: 80, endpoints: [(upstream.port, [:])]),
        ]
        let path = try harness.write("h2.yaml", WorkshopConfig.documents(docs))
        let log = harness.path("access.log")
        let ingressd = try harness.startIngressd(configs: [path], listenPort: httpPort, workers: workers,
                                                 extraArgs: ["--access-log", log] + extraArgs)
        return Gateway(ingressd: ingressd, httpPort: httpPort, httpsPort: httpsPort, pki: pki,
                       upstream: upstream, configPath: path, accessLog: log)
    }

    // MARK: clients

    /// A response as curl saw it, with the header block as received (names not lowercased
    /// by us) and the protocol version curl used.
    struct CurlReply {
        var exit: Int32
        var status: Int
        var version: String
        var rawHeaders: String
        var body: Data
        var stderr: String
        var text: String { String(decoding: body, as: UTF8.self) }
        /// Header lines of the final response, names as sent.
        var headerLines: [(name: String, value: String)] {
            let blocks = rawHeaders.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n")
                .filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
            guard let last = blocks.last else { return [] }
            return last.split(separator: "\n").dropFirst().compactMap { line in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
            }
        }
        var statusLine: String {
            rawHeaders.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n")
                .filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }.last?
                .split(separator: "\n").first.map(String.init) ?? ""
        }
        func header(_ name: String) -> String? { headerLines.first { $0.name.lowercased() == name }?.value }
    }

    /// One URL with curl; `extra` picks the protocol (--http2-prior-knowledge, --http2, ...).
    func curl(_ url: String, host: String? = nil, _ extra: [String], timeout: TimeInterval = 30) throws -> CurlReply {
        let id = UUID().uuidString.prefix(8)
        let bodyPath = harness.path("curl-\(id).body"), headerPath = harness.path("curl-\(id).headers")
        var args = ["-s", "-S", "-o", bodyPath, "-D", headerPath, "-w", "%{http_code} %{http_version}",
                    "--max-time", String(Int(timeout))]
        if let host { args += ["-H", "Host: \(host)"] }
        args += extra + [url]
        let r = try harness.run("curl", args, timeout: timeout + 5)
        let parts = r.stdout.split(separator: " ")
        let reply = CurlReply(exit: r.status, status: parts.first.flatMap { Int($0) } ?? 0,
                              version: parts.count > 1 ? String(parts[1]) : "",
                              rawHeaders: (try? String(contentsOfFile: headerPath, encoding: .utf8)) ?? "",
                              body: (try? Data(contentsOf: URL(fileURLWithPath: bodyPath))) ?? Data(),
                              stderr: r.stderr)
        try? FileManager.default.removeItem(atPath: bodyPath)
        try? FileManager.default.removeItem(atPath: headerPath)
        return reply
    }

    func curlH2C(_ g: Gateway, _ path: String, host: String = "h2.test", _ extra: [String] = []) throws -> CurlReply {
        try curl(g.url + path, host: host, ["--http2-prior-knowledge"] + extra)
    }

    /// A small HTTP/2 client over Python h2, prepended to every frame-level script: `Client(port)`
    /// opens a prior-knowledge connection (`tls_ca`: TLS with ALPN h2), `request` starts a
    /// stream, `wait(sid)` runs until it ends or is reset, `wait_close()` until the peer
    /// closes; `goaway` holds the GOAWAY received. The script prints one JSON line.
    static let pythonClient = #"""
    import json, os, signal, socket, ssl, sys, time, urllib.request
    import h2.config, h2.connection, h2.events, h2.errors, h2.exceptions

    class Stream:
        def __init__(self):
            self.status = None; self.headers = []; self.body = b""; self.ended = False; self.reset = None
        def done(self):
            return self.ended or self.reset is not None
        def result(self):
            return {"status": self.status, "headers": self.headers, "reset": self.reset, "ended": self.ended,
                    "body": self.body.decode("utf-8", "replace")}

    class Client:
        def __init__(self, port, validate=True, tls_ca=None, sni=None):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if tls_ca:
                ctx = ssl.create_default_context(cafile=tls_ca)
                ctx.set_alpn_protocols(["h2"])
                sock = ctx.wrap_socket(sock, server_hostname=sni)
            self.sock = sock
            cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                            validate_outbound_headers=validate, normalize_outbound_headers=validate,
                                            validate_inbound_headers=False)
            self.conn = h2.connection.H2Connection(config=cfg)
            self.conn.initiate_connection()
            self.streams = {}
            self.goaway = None
            self.closed = False
            self.closed_at = None
            self.error = None
            self.flush()

        def flush(self):
            data = self.conn.data_to_send()
            if data:
                self.send_raw(data)

        def send_raw(self, data):
            try:
                self.sock.sendall(data)
            except OSError as e:
                self.error = "send: %s" % e
                self.mark_closed()

        def mark_closed(self):
            if not self.closed:
                self.closed = True
                self.closed_at = time.time()

        def request(self, path, authority="h2.test", method="GET", headers=(), body=None, end=True):
            sid = self.conn.get_next_available_stream_id()
            hs = [(":method", method), (":scheme", "http"), (":authority", authority), (":path", path)] + list(headers)
            self.streams[sid] = Stream()
            self.conn.send_headers(sid, hs, end_stream=(body is None and end))
            self.flush()
            if body is not None:
                self.send_body(sid, body)
            return sid

        def send_body(self, sid, body):
            off = 0
            deadline = time.time() + 20
            while off < len(body) and not self.closed and time.time() < deadline:
                win = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
                if win <= 0:
                    self.pump(1)
                    continue
                n = min(win, len(body) - off)
                self.conn.send_data(sid, body[off:off + n])
                off += n
                self.flush()
            self.conn.end_stream(sid)
            self.flush()

        def pump(self, timeout=5):
            if self.closed:
                return False
            self.sock.settimeout(timeout)
            try:
                data = self.sock.recv(1 << 20)
            except (socket.timeout, BlockingIOError):
                return False
            except OSError as e:
                self.error = "recv: %s" % e
                data = b""
            if not data:
                self.mark_closed()
                return False
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                self.error = "h2: %r" % e
                events = []
            for e in events:
                self.handle(e)
            try:
                self.flush()
            except Exception:
                pass
            return True

        def stream(self, sid):
            return self.streams.setdefault(sid, Stream())

        def handle(self, e):
            E = h2.events
            if isinstance(e, E.ResponseReceived):
                st = self.stream(e.stream_id)
                st.headers = [[n, v] for n, v in e.headers]
                st.status = int(dict(e.headers)[":status"])
            elif isinstance(e, E.DataReceived):
                self.stream(e.stream_id).body += e.data
                try:
                    self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                except Exception:
                    pass
            elif isinstance(e, E.StreamEnded):
                self.stream(e.stream_id).ended = True
            elif isinstance(e, E.StreamReset):
                self.stream(e.stream_id).reset = int(e.error_code)
            elif isinstance(e, E.ConnectionTerminated):
                self.goaway = {"error": int(e.error_code), "last": e.last_stream_id, "at": time.time()}
                # h2 moves its state to CLOSED on a GOAWAY and then refuses every later frame,
                # even the responses of the streams the GOAWAY lets finish: keep reading them.
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

        def wait(self, sid, timeout=10):
            deadline = time.time() + timeout
            while not self.stream(sid).done() and not self.closed and time.time() < deadline:
                self.pump(max(0.05, deadline - time.time()))
            return self.stream(sid).result()

        def wait_close(self, timeout=10):
            deadline = time.time() + timeout
            while not self.closed and time.time() < deadline:
                self.pump(max(0.05, deadline - time.time()))
            return self.closed

        def get(self, path, authority="h2.test", headers=(), timeout=10):
            return self.wait(self.request(path, authority=authority, headers=headers), timeout)

    def metric(admin_port, name):
        text = urllib.request.urlopen("http://127.0.0.1:%d/stats/prometheus" % admin_port, timeout=5).read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def out(obj):
        print(json.dumps(obj), flush=True)

    """#

    /// Runs `body` (Python, after `pythonClient`) with `args`; returns its last stdout line as JSON.
    func runPython(_ body: String, _ args: [String], timeout: TimeInterval = 60) throws -> [String: Any] {
        let python = try pythonH2()
        let script = try harness.write("h2-\(UUID().uuidString.prefix(8)).py", HTTP2Tests.pythonClient + body)
        let r = try harness.run(python, [script] + args, timeout: timeout)
        guard let line = r.stdout.split(separator: "\n").last,
              let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw HarnessError("python h2 script failed (\(r.status), timed out: \(r.timedOut)):\n\(r.output)")
        }
        return obj
    }

    /// Sum of the samples of `name` in /stats/prometheus (all label sets).
    func metric(_ g: Gateway, _ name: String) throws -> Double {
        let text = try harness.curl(g.ingressd.adminURL + "/stats/prometheus").text
        return text.split(separator: "\n")
            .filter { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
            .compactMap { Double($0.split(separator: " ").last ?? "") }
            .reduce(0, +)
    }

    /// The access log's lines once at least `count` are there (lines are flushed within ~2 s).
    func accessLines(_ g: Gateway, atLeast count: Int, timeout: TimeInterval = 6) -> [String] {
        var lines: [String] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            lines = ((try? String(contentsOfFile: g.accessLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            if lines.count >= count { break }
            usleep(50_000)
        }
        return lines
    }

    static let connectionSpecific = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]

    // MARK: 1. GET over prior knowledge and over TLS + ALPN

    func testGETOverPriorKnowledgeReachesTheUpstreamAsHTTP11() throws {
        let g = try startGateway()
        let r = try curlH2C(g, "/hello?q=1")
        XCTAssertEqual(r.exit, 0, r.stderr)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.version, "2")
        XCTAssertEqual(r.statusLine.trimmingCharacters(in: .whitespaces), "HTTP/2 200", r.rawHeaders)
        XCTAssertFalse(r.headerLines.isEmpty, r.rawHeaders)
        for (name, _) in r.headerLines {
            XCTAssertEqual(name, name.lowercased(), "HTTP/2 field names are lowercase: \(r.rawHeaders)")
            XCTAssertFalse(Self.connectionSpecific.contains(name), "connection-specific field \(name): \(r.rawHeaders)")
        }
        XCTAssertEqual(r.header("x-demo-upstream"), "web")
        XCTAssertEqual(r.header("content-type"), "text/plain; charset=utf-8")
        // The upstream got an HTTP/1.1 request, Host from :authority, x-forwarded-proto http.
        let echo = r.text.lowercased()
        XCTAssertTrue(r.text.contains("request: GET /hello?q=1 HTTP/1.1"), r.text)
        XCTAssertTrue(echo.contains("  host: h2.test\n"), r.text)
        XCTAssertTrue(echo.contains("x-forwarded-proto: http\n"), r.text)
        XCTAssertFalse(echo.contains(":authority") || echo.contains(":path"), "no pseudo-headers upstream: \(r.text)")
        XCTAssertEqual(g.upstream.requests.last, "web GET /hello?q=1 body=0")

        // An upstream answering `connection: close`, and one answering chunked: neither field
        // reaches the HTTP/2 client, the chunked body arrives de-chunked.
        let closing = try curlH2C(g, "/closing", ["-H", "x-upstream-close: 1"])
        XCTAssertEqual(closing.status, 200, closing.stderr)
        XCTAssertNil(closing.header("connection"), closing.rawHeaders)
        let chunked = try curlH2C(g, "/chunked/10000")
        XCTAssertEqual(chunked.status, 200, chunked.stderr)
        XCTAssertEqual(chunked.version, "2")
        XCTAssertNil(chunked.header("transfer-encoding"), chunked.rawHeaders)
        XCTAssertEqual(chunked.body, Data(repeating: UInt8(ascii: "x"), count: 10000))
        // HTTP/1.1 on the same port still works.
        let h1 = try curl(g.url + "/h1", host: "h2.test", ["--http1.1"])
        XCTAssertEqual(h1.status, 200)
        XCTAssertEqual(h1.version, "1.1")
    }

    func testAPrefaceSplitAcrossReadsStartsHTTP2() throws {
        // The client preface in three pieces (3, 11, then the rest with SETTINGS): the gateway
        // waits for all of it before it decides, then hands every buffered byte to HTTP/2.
        let g = try startGateway(workers: 1)
        let py = try runPython("""
            sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
            conn.initiate_connection()
            data = conn.data_to_send()
            for piece in (data[:3], data[3:14], data[14:]):
                sock.sendall(piece); time.sleep(0.15)
            conn.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "h2.test"), (":path", "/split")], end_stream=True)
            sock.sendall(conn.data_to_send())
            status, ended, deadline = None, False, time.time() + 10
            while not ended and time.time() < deadline:
                d = sock.recv(65536)
                if not d: break
                for e in conn.receive_data(d):
                    if isinstance(e, h2.events.ResponseReceived): status = dict(e.headers).get(":status")
                    if isinstance(e, h2.events.StreamEnded): ended = True
                sock.sendall(conn.data_to_send())
            out({"status": status, "ended": ended})
            """, [String(g.httpPort)])
        XCTAssertEqual(py["status"] as? String, "200", "\(py)")
        XCTAssertEqual(py["ended"] as? Bool, true, "\(py)")
    }

    func testGETOverTLSNegotiatesH2ByALPN() throws {
        let g = try startGateway(tls: true)
        let pki = try XCTUnwrap(g.pki)
        let url = "https://a.example.com:\(g.httpsPort)/secure"
        let tlsArgs = ["--cacert", pki.caPath, "--resolve", "a.example.com:\(g.httpsPort):127.0.0.1"]
        let r = try curl(url, tlsArgs + ["--http2"])
        XCTAssertEqual(r.exit, 0, r.stderr)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.version, "2", "ALPN picked h2")
        for (name, _) in r.headerLines {
            XCTAssertEqual(name, name.lowercased(), r.rawHeaders)
            XCTAssertFalse(Self.connectionSpecific.contains(name), r.rawHeaders)
        }
        let echo = r.text.lowercased()
        XCTAssertTrue(r.text.contains("request: GET /secure HTTP/1.1"), r.text)
        XCTAssertTrue(echo.contains("  host: a.example.com:\(g.httpsPort)\n"), "Host is curl's :authority: \(r.text)")
        XCTAssertTrue(echo.contains("x-forwarded-proto: https\n"), r.text)
        // A client offering only http/1.1 gets HTTP/1.1.
        let h1 = try curl(url, tlsArgs + ["--http1.1"])
        XCTAssertEqual(h1.status, 200, h1.stderr)
        XCTAssertEqual(h1.version, "1.1")
        // Python h2 over TLS: two streams on one connection.
        let py = try runPython("""
            c = Client(int(sys.argv[1]), tls_ca=sys.argv[2], sni="a.example.com")
            alpn = c.sock.selected_alpn_protocol()
            a = c.request("/one", authority="a.example.com"); b = c.request("/two", authority="a.example.com")
            ra, rb = c.wait(a), c.wait(b)
            out({"alpn": alpn, "a": ra["status"], "b": rb["status"], "proto": "x-forwarded-proto: https" in ra["body"].lower()})
            """, [String(g.httpsPort), pki.caPath])
        XCTAssertEqual(py["alpn"] as? String, "h2")
        XCTAssertEqual(py["a"] as? Int, 200, "\(py)")
        XCTAssertEqual(py["b"] as? Int, 200, "\(py)")
        XCTAssertEqual(py["proto"] as? Bool, true, "\(py)")
    }

    // MARK: 2. many concurrent streams

    func testManyConcurrentStreamsOnTwoConnections() throws {
        let h2load = try Harness.requireTool("h2load", for: "concurrent HTTP/2 streams")
        let g = try startGateway(workers: 1)
        // `-H ':authority: …'`: with `-H 'Host: …'` h2load sends :authority 127.0.0.1:PORT *and* a
        // differing host field, and the gateway (rightly) routes by :authority.
        let r = try harness.run(h2load, ["-c2", "-m50", "-n2000", "-H", ":authority: h2.test", g.url + "/load"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout"), r.stdout)
        XCTAssertTrue(r.stdout.contains("status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx"), r.stdout)
        XCTAssertTrue(r.stdout.contains("Application protocol: h2c"), r.stdout)
        // 100 streams at most in flight: the upstream pool needs at most 100 connections.
        let cx = try metric(g, "envoy_cluster_upstream_cx_total")
        XCTAssertGreaterThan(cx, 0)
        XCTAssertLessThanOrEqual(cx, 100, "upstream connections for 2000 requests on 2×50 streams")
        XCTAssertEqual(try metric(g, "envoy_http_downstream_rq_http2_total"), 2000)
        XCTAssertEqual(try metric(g, "envoy_http_downstream_cx_http2_total"), 2)
        XCTAssertEqual(g.upstream.requests.count, 2000)
        XCTAssertTrue(g.ingressd.child.isRunning)
    }

    // MARK: 3. request bodies and large transfers

    func testRequestBodiesWithAndWithoutContentLengthAndLargeTransfers() throws {
        let g = try startGateway()
        // 3 MiB upload with content-length.
        var bytes = [UInt8](repeating: 0, count: 3 << 20)
        for k in bytes.indices { bytes[k] = UInt8(truncatingIfNeeded: (k &* 2_654_435_761) >> 11) }
        let data = Data(bytes)
        let file = harness.path("upload.bin")
        try data.write(to: URL(fileURLWithPath: file))
        let sha = harness.sha256Hex(data)
        let withLength = try curlH2C(g, "/upload", ["--data-binary", "@" + file])
        XCTAssertEqual(withLength.status, 200, withLength.stderr)
        XCTAssertEqual(withLength.version, "2")
        XCTAssertTrue(withLength.text.contains("body-bytes: \(3 << 20)\n"), withLength.text)
        XCTAssertTrue(withLength.text.contains("body-sha256: \(sha)"), withLength.text)
        XCTAssertTrue(withLength.text.lowercased().contains("content-length: \(3 << 20)\n"), withLength.text)
        // Without content-length: the upstream gets it chunked.
        let chunked = try curlH2C(g, "/upload-chunked", ["--data-binary", "@" + file, "-H", "Content-Length:"])
        XCTAssertEqual(chunked.status, 200, chunked.stderr)
        XCTAssertTrue(chunked.text.contains("body-bytes: \(3 << 20)\n"), chunked.text)
        XCTAssertTrue(chunked.text.contains("body-sha256: \(sha)"), chunked.text)
        XCTAssertTrue(chunked.text.lowercased().contains("transfer-encoding: chunked"), chunked.text)
        XCTAssertFalse(chunked.text.lowercased().contains("content-length"), chunked.text)
        // A small body without content-length from Python h2 (DATA frames, END_STREAM on the last).
        let py = try runPython("""
            c = Client(int(sys.argv[1]))
            body = bytes(range(256)) * 1000
            r = c.wait(c.request("/py-upload", method="POST", body=body))
            import hashlib
            out({"status": r["status"], "len": "body-bytes: %d\\n" % len(body) in r["body"],
                 "sha": ("body-sha256: " + hashlib.sha256(body).hexdigest()) in r["body"], "body": r["body"]})
            """, [String(g.httpPort)])
        XCTAssertEqual(py["status"] as? Int, 200, "\(py)")
        XCTAssertEqual(py["len"] as? Bool, true, "\(py)")
        XCTAssertEqual(py["sha"] as? Bool, true, "\(py)")
        // 3 MiB download, byte-exact (the demo upstream's /bytes/N pattern).
        let down = try curlH2C(g, "/bytes/\(3 << 20)")
        XCTAssertEqual(down.status, 200, down.stderr)
        XCTAssertEqual(down.version, "2")
        let block = Data("0123456789abcdef".utf8)
        var expected = Data(capacity: 3 << 20)
        while expected.count < 3 << 20 { expected.append(block) }
        XCTAssertEqual(down.body.count, 3 << 20)
        XCTAssertTrue(down.body == expected, "3 MiB download differs")
        XCTAssertEqual(down.header("content-length"), String(3 << 20))
    }

    // MARK: 4. route actions per stream, no route

    func testRouteActionsApplyPerStreamAndNoRouteIs404() throws {
        let g = try startGateway()
        let py = try runPython("""
            c = Client(int(sys.argv[1]))
            a = c.request("/api/items?x=1", authority="edit.h2.test", headers=[("x-env", "dev")])
            b = c.request("/api/items?x=2", authority="h2.test", headers=[("x-env", "dev")])
            n = c.request("/nothing", authority="nowhere.test")
            out({"a": c.wait(a), "b": c.wait(b), "n": c.wait(n)})
            """, [String(g.httpPort)])
        let a = try XCTUnwrap(py["a"] as? [String: Any]), b = try XCTUnwrap(py["b"] as? [String: Any])
        let n = try XCTUnwrap(py["n"] as? [String: Any])
        let aBody = (a["body"] as? String ?? "").lowercased(), bBody = (b["body"] as? String ?? "").lowercased()
        XCTAssertEqual(a["status"] as? Int, 200, "\(a)")
        XCTAssertTrue(aBody.contains("request: get /v2/items?x=1 http/1.1"), aBody)
        XCTAssertTrue(aBody.contains("x-env: prod\n"), aBody)
        XCTAssertFalse(aBody.contains("x-env: dev"), aBody)
        XCTAssertEqual(b["status"] as? Int, 200, "\(b)")
        XCTAssertTrue(bBody.contains("request: get /api/items?x=2 http/1.1"), "the other stream is not rewritten: \(bBody)")
        XCTAssertTrue(bBody.contains("x-env: dev\n"), bBody)
        XCTAssertEqual(n["status"] as? Int, 404, "\(n)")
        XCTAssertEqual(n["ended"] as? Bool, true, "\(n)")
        XCTAssertTrue(g.upstream.requests.contains("web GET /v2/items?x=1 body=0"), "\(g.upstream.requests)")
        XCTAssertFalse(g.upstream.requests.contains { $0.contains("/nothing") })
        // curl sees the 404 over HTTP/2 too.
        let r = try curlH2C(g, "/nothing", host: "nowhere.test")
        XCTAssertEqual(r.status, 404)
        XCTAssertEqual(r.version, "2")
        XCTAssertEqual(r.statusLine.trimmingCharacters(in: .whitespaces), "HTTP/2 404")
    }

    // MARK: 5. cookie crumbs

    func testCookieCrumbsReachTheUpstreamAsOneField() throws {
        let g = try startGateway()
        let py = try runPython("""
            c = Client(int(sys.argv[1]), validate=False)
            r = c.get("/cookies", headers=[("cookie", "a=1"), ("x-mid", "m"), ("cookie", "b=2")])
            out(r)
            """, [String(g.httpPort)])
        XCTAssertEqual(py["status"] as? Int, 200, "\(py)")
        let body = (py["body"] as? String ?? "").lowercased()
        let cookieLines = body.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("cookie:") }
        XCTAssertEqual(cookieLines.map { $0.trimmingCharacters(in: .whitespaces) }, ["cookie: a=1; b=2"], body)
    }

    // MARK: 6. RFC 9113 §8.2 refusals

    func testMalformedFieldsResetTheStreamAndTheConnectionGoesOn() throws {
        let g = try startGateway()
        let py = try runPython("""
            c = Client(int(sys.argv[1]), validate=False)
            res = {}
            for name, hs in [("upper", [("X-Upper", "1")]), ("connection", [("connection", "keep-alive")]),
                             ("te", [("te", "gzip")]), ("keepalive", [("keep-alive", "timeout=5")]),
                             ("upgrade", [("upgrade", "websocket")])]:
                res[name] = c.get("/bad-" + name, headers=hs)
            res["te_trailers"] = c.get("/te-trailers", headers=[("te", "trailers")])
            res["after"] = c.get("/after")
            res["goaway"] = c.goaway
            res["closed"] = c.closed
            out(res)
            """, [String(g.httpPort)])
        for name in ["upper", "connection", "te", "keepalive", "upgrade"] {
            let s = try XCTUnwrap(py[name] as? [String: Any], name)
            XCTAssertEqual(s["reset"] as? Int, 1, "\(name): RST_STREAM PROTOCOL_ERROR expected: \(s)")
            XCTAssertNil(s["status"] as? Int, "\(name): no response: \(s)")
        }
        let te = try XCTUnwrap(py["te_trailers"] as? [String: Any])
        XCTAssertEqual(te["status"] as? Int, 200, "te: trailers is allowed: \(te)")
        let after = try XCTUnwrap(py["after"] as? [String: Any])
        XCTAssertEqual(after["status"] as? Int, 200, "the connection keeps serving: \(py)")
        XCTAssertTrue(py["goaway"] is NSNull, "no GOAWAY: \(py)")
        XCTAssertEqual(py["closed"] as? Bool, false)
        XCTAssertFalse(g.upstream.requests.contains { $0.contains("/bad-") }, "\(g.upstream.requests)")
    }

    // MARK: 7. header list over 60 KiB

    func testOversizedHeaderListGets431AndTheConnectionGoesOn() throws {
        let g = try startGateway()
        let py = try runPython("""
            c = Client(int(sys.argv[1]), validate=False)
            big = [("x-big-%d" % i, "v" * 4000) for i in range(17)]   # ~68 KiB
            r = c.get("/big", headers=big)
            ok = c.get("/after-big")
            out({"big": r, "after": ok, "goaway": c.goaway, "closed": c.closed})
            """, [String(g.httpPort)])
        let big = try XCTUnwrap(py["big"] as? [String: Any])
        let status = big["status"] as? Int
        XCTAssertTrue(status == 431 || big["reset"] as? Int != nil, "431 or a reset: \(big)")
        XCTAssertEqual(status, 431, "the gateway answers 431 on that stream: \(big)")
        let after = try XCTUnwrap(py["after"] as? [String: Any])
        XCTAssertEqual(after["status"] as? Int, 200, "the connection keeps working: \(py)")
        XCTAssertFalse(g.upstream.requests.contains { $0.contains("/big") })
        // Just under the limit passes (~48 KiB).
        let ok = try runPython("""
            c = Client(int(sys.argv[1]), validate=False)
            out(c.get("/fits", headers=[("x-fit-%d" % i, "v" * 4000) for i in range(12)]))
            """, [String(g.httpPort)])
        XCTAssertEqual(ok["status"] as? Int, 200, "\(ok)")
    }

    // MARK: 8. client reset while the upstream works

    func testClientResetEndsTheExchangeWithDCAndClosesTheUpstreamConnection() throws {
        let g = try startGateway()
        let py = try runPython("""
            c = Client(int(sys.argv[1]))
            admin = int(sys.argv[2]); log = sys.argv[3]
            sid = c.request("/slow/delay/3000")
            deadline = time.time() + 5
            while time.time() < deadline and "/slow/delay/3000" not in open(log).read():
                c.pump(0.05)
            active_before = metric(admin, "envoy_cluster_upstream_cx_active")
            c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            c.flush()
            t = time.time()
            active_after = active_before
            while time.time() < t + 1.5:
                c.pump(0.1)
                active_after = metric(admin, "envoy_cluster_upstream_cx_active")
                if active_after == 0: break
            closed_in = time.time() - t
            after = c.get("/after-reset")
            out({"before": active_before, "after": active_after, "closed_in": closed_in, "next": after["status"],
                 "goaway": c.goaway})
            """, [String(g.httpPort), String(g.ingressd.adminPort), g.upstream.logPath])
        XCTAssertEqual(py["before"] as? Double, 1, "one upstream connection busy with the slow request: \(py)")
        XCTAssertEqual(py["after"] as? Double, 0, "the reset stream's upstream connection is closed (not pooled, not left waiting): \(py)")
        XCTAssertEqual(py["next"] as? Int, 200, "\(py)")
        XCTAssertTrue(py["goaway"] is NSNull, "\(py)")
        let lines = accessLines(g, atLeast: 2)
        let slow = lines.first { $0.contains("/slow/delay/3000 HTTP/2\"") }
        XCTAssertNotNil(slow, lines.joined(separator: "\n"))
        XCTAssertTrue(slow?.contains(" DC ") ?? false, "flag DC: \(slow ?? "")")
        XCTAssertTrue(lines.contains { $0.contains("\"GET /after-reset HTTP/2\" 200 ") }, lines.joined(separator: "\n"))
    }

    // MARK: 9. floods

    func testRapidResetLeavesTheGatewayHealthy() throws {
        let g = try startGateway(workers: 1)
        let workers = g.ingressd.workerPids
        XCTAssertEqual(workers.count, 1)
        let errors0 = try metric(g, "envoy_http_downstream_cx_protocol_error")
        let py = try runPython("""
            c = Client(int(sys.argv[1]))
            sent = 0
            t0 = time.time()
            for batch in range(50):
                for _ in range(100):
                    try:
                        sid = c.conn.get_next_available_stream_id()
                        c.conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "h2.test"),
                                                  (":path", "/rr")], end_stream=True)
                        c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                        sent += 1
                    except Exception as e:
                        c.error = "h2 send: %r" % e
                        break
                c.flush()
                if c.closed or c.error: break
                c.sock.settimeout(0)
                try:
                    while c.pump(0.0): pass
                except Exception: pass
            c.wait_close(5)
            out({"sent": sent, "goaway": c.goaway, "closed": c.closed, "error": c.error, "secs": time.time() - t0})
            """, [String(g.httpPort)], timeout: 120)
        let sent = py["sent"] as? Int ?? 0
        XCTAssertGreaterThan(sent, 0, "\(py)")
        // Either all 5000 were handled without harm or the connection ended with GOAWAY.
        if sent < 5000 || (py["closed"] as? Bool ?? false) {
            XCTAssertNotNil(py["goaway"] as? [String: Any], "a connection ended by the gateway says GOAWAY: \(py)")
            XCTAssertGreaterThan(try metric(g, "envoy_http_downstream_cx_protocol_error"), errors0,
                                 "a connection ended for a flood counts in cx_protocol_error (README): \(py)")
        }
        // Reset streams cost (almost) no upstream request.
        usleep(300_000)
        XCTAssertLessThan(g.upstream.requests.count, 50, "rapid-reset streams reached the upstream: \(g.upstream.requests.count)")
        // Healthy: a normal request succeeds, the worker is the same process.
        let r = try curlH2C(g, "/after-flood")
        XCTAssertEqual(r.status, 200, r.stderr)
        XCTAssertEqual(g.ingressd.workerPids, workers, "the worker did not restart")
        XCTAssertTrue(g.ingressd.child.isRunning)
        let w = try harness.curl(g.ingressd.adminURL + "/workers")
        XCTAssertEqual(w.status, 200)
    }

    func testContinuationFloodClosesTheConnection() throws {
        let g = try startGateway(workers: 1)
        let workers = g.ingressd.workerPids
        let before = try metric(g, "envoy_http_downstream_cx_protocol_error")
        let py = try runPython("""
            import hpack, hyperframe.frame as F
            c = Client(int(sys.argv[1]))
            enc = hpack.Encoder()
            block = enc.encode([(":method", "GET"), (":scheme", "http"), (":authority", "h2.test"), (":path", "/flood")])
            c.send_raw(F.HeadersFrame(1, data=block, flags=[]).serialize())   # no END_HEADERS
            frag = hpack.Encoder().encode([("x-flood", "a" * 100)], huffman=False)
            cont = F.ContinuationFrame(1, data=frag, flags=[]).serialize()
            # Bursts of 64 frames (~7 KiB, one read for the gateway), each followed by a read:
            # a gateway closing after its limit has read all we sent, so its GOAWAY is not
            # lost to a reset for unread bytes.
            sent = 0
            while sent < 10000 and not c.closed:
                c.send_raw(cont * 64)
                sent += 64
                deadline = time.time() + 0.3
                while not c.closed and time.time() < deadline and c.pump(0.1): pass
            c.wait_close(5)
            out({"sent": sent, "goaway": c.goaway, "closed": c.closed, "error": c.error, "status": c.stream(1).status})
            """, [String(g.httpPort)], timeout: 60)
        XCTAssertEqual(py["closed"] as? Bool, true, "the flooding connection is closed: \(py)")
        XCTAssertLessThan(py["sent"] as? Int ?? 10000, 10000, "closed before the flood ended: \(py)")
        XCTAssertNotNil(py["goaway"] as? [String: Any], "GOAWAY before the close: \(py)")
        XCTAssertTrue(py["status"] is NSNull, "no response to the flooded stream: \(py)")
        XCTAssertGreaterThan(try metric(g, "envoy_http_downstream_cx_protocol_error"), before)
        let r = try curlH2C(g, "/after-continuations")
        XCTAssertEqual(r.status, 200, r.stderr)
        XCTAssertEqual(g.ingressd.workerPids, workers, "the worker did not restart")
        XCTAssertFalse(g.upstream.requests.contains { $0.contains("/flood") })
    }

    /// A client that sends `count` copies of `frame` (Python, hyperframe as `F`) while reading
    /// nothing (a 4 KiB receive buffer: the ACKs back up in the gateway, not in the client):
    /// the worker's memory stays flat, it keeps serving and does not restart. The script's result.
    func floodFromAClientThatDoesNotRead(_ frame: String, count: Int, path: String) throws -> [String: Any] {
        let g = try startGateway(workers: 1)
        let workers = g.ingressd.workerPids
        let rss0 = try vmRSSKiB(workers[0])
        let py = try runPython("""
            import hyperframe.frame as F
            import socket
            c = Client(int(sys.argv[1]))
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.sock.settimeout(2)
            frame = \(frame).serialize()
            sent = 0
            try:
                while sent < \(count):
                    c.sock.sendall(frame * 1000)
                    sent += 1000
            except OSError:
                pass
            c.sock.settimeout(None)
            c.wait_close(3)
            out({"sent": sent, "closed": c.closed, "goaway": c.goaway})
            """, [String(g.httpPort)], timeout: 90)
        XCTAssertGreaterThan(py["sent"] as? Int ?? 0, 1000, "\(py)")   // all of them, or until a flood close
        let rss1 = try vmRSSKiB(workers[0])
        XCTAssertLessThan(rss1 - rss0, 16 * 1024, "the worker did not queue the flood (RSS \(rss0) → \(rss1) KiB)")
        XCTAssertEqual(try curlH2C(g, path).status, 200)
        XCTAssertEqual(g.ingressd.workerPids, workers, "the worker did not restart")
        return py
    }

    func testPingFloodFromAClientThatDoesNotReadIsBounded() throws {
        // 300,000 PINGs: the ACKs are held by the kernel's buffers and at most 1000 queued in
        // nghttp2 (past that it ends the connection as a flood), never by the worker's heap.
        _ = try floodFromAClientThatDoesNotRead(#"F.PingFrame(0, opaque_data=b"12345678")"#, count: 300_000, path: "/after-pings")
    }

    func testSettingsFloodFromAClientThatDoesNotReadIsBounded() throws {
        // SETTINGS frames each need an ACK: 200,000 of them are bounded like PINGs, and the
        // connection ends as a flood: GOAWAY ENHANCE_YOUR_CALM, then closed (measured: after
        // ~170,000).
        let py = try floodFromAClientThatDoesNotRead("F.SettingsFrame(0, settings={F.SettingsFrame.INITIAL_WINDOW_SIZE: 65535})",
                                                      count: 200_000, path: "/after-settings")
        XCTAssertEqual((py["goaway"] as? [String: Any])?["error"] as? Int, 11, "\(py)")
        XCTAssertEqual(py["closed"] as? Bool, true, "\(py)")
    }

    func testConcurrentStreamLimitIsAdvertisedAndEnforced() throws {
        // --http2-max-concurrent-streams 5: the server's SETTINGS say 5, and a sixth stream
        // opened while five are open is refused (RST_STREAM REFUSED_STREAM, which a client may
        // retry); the five go on and finish.
        let g = try startGateway(extraArgs: ["--http2-max-concurrent-streams", "5"])
        let py = try runPython("""
            c = Client(int(sys.argv[1]))
            # Opened at once, before the server's SETTINGS are read (h2 would hold back the sixth).
            sids = [c.request("/open-%d" % k, method="POST", end=False) for k in range(6)]
            deadline = time.time() + 5
            while c.stream(sids[5]).reset is None and time.time() < deadline:
                c.pump(0.2)
            for sid in sids[:5]:
                c.conn.end_stream(sid)
            c.flush()
            res = [c.wait(sid) for sid in sids]
            from h2.settings import SettingCodes
            out({"results": res, "advertised": c.conn.remote_settings.get(SettingCodes.MAX_CONCURRENT_STREAMS),
                 "after": c.get("/after-limit")})
            """, [String(g.httpPort)])
        XCTAssertEqual(py["advertised"] as? Int, 5, "\(py)")
        let results = try XCTUnwrap(py["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 6)
        for r in results.prefix(5) { XCTAssertEqual(r["status"] as? Int, 200, "\(r)") }
        XCTAssertEqual(results.last?["reset"] as? Int, 7, "REFUSED_STREAM: \(results.last ?? [:])")
        XCTAssertEqual((py["after"] as? [String: Any])?["status"] as? Int, 200, "\(py)")
        XCTAssertFalse(g.upstream.requests.contains { $0.contains("/open-5") }, "the refused stream never reached the upstream")
        // Out of range: a usage error (exit 2) that names the flag.
        let bad = try harness.run(Paths.ingressdBinary, ["run", "-c", "/dev/null", "--http2-max-concurrent-streams", "0"], timeout: 10)
        XCTAssertEqual(bad.status, 2, bad.output)
        XCTAssertTrue(bad.output.contains("--http2-max-concurrent-streams 0: expected a number from 1 to 1000"), bad.output)
    }

    func testUseClientProtocolSpeaksTheClientsProtocolUpstream() throws {
        // DestinationRule useClientProtocol: the upstream (here another ingressd, which takes
        // both and logs the protocol) is spoken to in HTTP/1.1 for an HTTP/1.1 client and in
        // HTTP/2 for an HTTP/2 client, as Envoy's use_downstream_protocol.
        let upstreamPort = try freeTCPPort()
        let upstreamLog = harness.path("upstream-access.log")
        let upstreamConfig = try harness.write("upstream.yaml", WorkshopConfig.documents([
            WorkshopConfig.httpGateway(port: upstreamPort, hosts: ["*"]), """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: answer}
            spec:
              hosts: ["*"]
              gateways: [gw]
              http:
              - directResponse: {status: 200, body: {string: "from the upstream"}}
            """]))
        let upstream = try harness.startIngressd(configs: [upstreamConfig], listenPort: upstreamPort, workers: 1,
                                                 extraArgs: ["--access-log", upstreamLog])
        let port = try freeTCPPort()
        let config = try harness.write("front.yaml", WorkshopConfig.documents([
            WorkshopConfig.httpGateway(port: port, hosts: ["*"]), """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web}
            spec:
              hosts: ["*"]
              gateways: [gw]
              http:
              - route:
                - destination: {host: web, port: {number: 80}}
            """, """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: web}
            spec:
              host: web
              trafficPolicy: {connectionPool: {http: {useClientProtocol: true}}}
            """, WorkshopConfig.serviceEntry(name: "web", servicePort: 80, endpoints: [(upstreamPort, [:])])]))
        let front = try harness.startIngressd(configs: [config], listenPort: port, workers: 1)
        let h1 = try harness.curl("http://127.0.0.1:\(port)/one")
        XCTAssertEqual(h1.status, 200, h1.text)
        XCTAssertEqual(h1.text, "from the upstream")
        let h2 = try harness.curl("http://127.0.0.1:\(port)/two", ["--http2-prior-knowledge"])
        XCTAssertEqual(h2.status, 200, h2.text)
        XCTAssertEqual(h2.text, "from the upstream")
        var log = ""
        for _ in 0..<40 where !(log.contains("/one") && log.contains("/two")) {
            usleep(100_000)
            log = (try? String(contentsOfFile: upstreamLog, encoding: .utf8)) ?? ""
        }
        XCTAssertTrue(log.contains("\"GET /one HTTP/1.1\" 200"), log)
        XCTAssertTrue(log.contains("\"GET /two HTTP/2\" 200"), log)
        let dump = try harness.curl(front.adminURL + "/config_dump").text
        XCTAssertTrue(dump.contains("\"protocol\":\"CLIENT\""), dump)
        _ = upstream
    }

    // MARK: 10. stats and access log

    func testStatsCountHTTP2ConnectionsAndStreamsAndTheAccessLogSaysHTTP2() throws {
        let g = try startGateway()
        let cx0 = try metric(g, "envoy_http_downstream_cx_http2_total")
        let rq0 = try metric(g, "envoy_http_downstream_rq_http2_total")
        for k in 0..<3 { XCTAssertEqual(try curlH2C(g, "/count\(k)").status, 200) }
        let py = try runPython("""
            c = Client(int(sys.argv[1]))
            ids = [c.request("/multi%d" % i) for i in range(4)]
            out({"statuses": [c.wait(i)["status"] for i in ids]})
            """, [String(g.httpPort)])
        XCTAssertEqual(py["statuses"] as? [Int], [200, 200, 200, 200], "\(py)")
        XCTAssertEqual(try curl(g.url + "/plain", host: "h2.test", ["--http1.1"]).status, 200)
        XCTAssertEqual(try metric(g, "envoy_http_downstream_cx_http2_total") - cx0, 4, "3 curl + 1 python connection")
        XCTAssertEqual(try metric(g, "envoy_http_downstream_rq_http2_total") - rq0, 7, "3 + 4 streams; HTTP/1.1 not counted")
        // The preface, then a DATA frame on stream 0 (a connection error): counted as a protocol error.
        let pe0 = try metric(g, "envoy_http_downstream_cx_protocol_error")
        let garbage = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0] + [0, 0, 4, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]
        _ = try RawHTTP.exchange(port: g.httpPort, send: garbage, timeout: 3)
        XCTAssertGreaterThan(try metric(g, "envoy_http_downstream_cx_protocol_error"), pe0,
                             "a connection ended with GOAWAY PROTOCOL_ERROR counts in cx_protocol_error")

        let lines = accessLines(g, atLeast: 8)
        let h2Lines = lines.filter { $0.contains(" HTTP/2\" ") }
        XCTAssertEqual(h2Lines.count, 7, lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains { $0.contains("\"GET /count0 HTTP/2\" 200 - ") && $0.contains("\"h2.test\"") },
                      lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains { $0.contains("\"GET /plain HTTP/1.1\" 200 ") }, lines.joined(separator: "\n"))
    }

    // MARK: 11. reload, idle timeout, drain

    func testSIGHUPReloadKeepsAnOpenHTTP2ConnectionServing() throws {
        let g = try startGateway()
        // The reload changes edit.h2.test's x-env from prod to reloaded.
        let original = try String(contentsOfFile: g.configPath, encoding: .utf8)
        let changed = original.replacingOccurrences(of: "x-env: prod", with: "x-env: reloaded")
        XCTAssertNotEqual(original, changed)
        let py = try runPython("""
            c = Client(int(sys.argv[1]))
            pid, path, text = int(sys.argv[2]), sys.argv[3], sys.argv[4]
            first = c.get("/api/before", authority="edit.h2.test")
            open(path, "w").write(text)
            os.kill(pid, signal.SIGHUP)
            results = []
            deadline = time.time() + 8
            while time.time() < deadline:
                r = c.get("/api/during", authority="edit.h2.test")
                results.append(r["status"])
                if "x-env: reloaded" in r["body"].lower() or r["status"] != 200: break
                time.sleep(0.2)
            out({"first": first["status"], "firstProd": "x-env: prod" in first["body"].lower(), "results": results,
                 "reloaded": "x-env: reloaded" in r["body"].lower(), "goaway": c.goaway, "closed": c.closed})
            """, [String(g.httpPort), String(g.ingressd.pid), g.configPath, changed], timeout: 30)
        XCTAssertEqual(py["first"] as? Int, 200, "\(py)")
        XCTAssertEqual(py["firstProd"] as? Bool, true, "\(py)")
        let results = py["results"] as? [Int] ?? []
        XCTAssertFalse(results.isEmpty)
        XCTAssertTrue(results.allSatisfy { $0 == 200 }, "every stream on the old connection answered 200: \(py)")
        XCTAssertTrue(py["goaway"] is NSNull, "no GOAWAY on reload: \(py)")
        XCTAssertEqual(py["closed"] as? Bool, false, "\(py)")
        // New connections see the reloaded route (the reload did happen).
        var reloaded = false
        let deadline = Date().addingTimeInterval(8)
        while Date() < deadline && !reloaded {
            reloaded = try curlH2C(g, "/api/new", host: "edit.h2.test").text.lowercased().contains("x-env: reloaded")
            if !reloaded { usleep(200_000) }
        }
        XCTAssertTrue(reloaded, "the reload applied:\n\(g.ingressd.outputTail)")
        XCTAssertEqual(py["reloaded"] as? Bool, true, "new streams on the kept connection use the reloaded routes: \(py)")
    }

    func testIdleConnectionGetsGOAWAYThenIsClosed() throws {
        let g = try startGateway(extraArgs: ["--idle-timeout", "1s"])
        let py = try runPython("""
            c = Client(int(sys.argv[1]))
            r = c.get("/idle")
            t = time.time()
            c.wait_close(6)
            out({"status": r["status"], "goaway": c.goaway, "closed": c.closed,
                 "goawayAfter": (c.goaway["at"] - t) if c.goaway else None,
                 "closedAfter": (c.closed_at - t) if c.closed_at else None, "error": c.error})
            """, [String(g.httpPort)], timeout: 30)
        XCTAssertEqual(py["status"] as? Int, 200, "\(py)")
        let goaway = try XCTUnwrap(py["goaway"] as? [String: Any], "GOAWAY on idle: \(py)")
        XCTAssertEqual(goaway["error"] as? Int, 0, "NO_ERROR: \(py)")
        XCTAssertEqual(goaway["last"] as? Int, 1, "the last stream it took: \(py)")
        XCTAssertEqual(py["closed"] as? Bool, true, "closed after the GOAWAY: \(py)")
        let after = py["goawayAfter"] as? Double ?? -1
        XCTAssertGreaterThan(after, 0.7, "not before the idle timeout: \(py)")
        XCTAssertLessThan(after, 4, "\(py)")
        XCTAssertGreaterThanOrEqual(py["closedAfter"] as? Double ?? -1, after, "\(py)")
        XCTAssertTrue(g.ingressd.child.isRunning)
    }

    func testDrainSendsGOAWAYAndFinishesTheStartedStream() throws {
        let g = try startGateway(extraArgs: ["--drain-timeout", "10s"])
        let py = try runPython("""
            c = Client(int(sys.argv[1]))
            pid, log = int(sys.argv[2]), sys.argv[3]
            sid = c.request("/drain/delay/1500")
            deadline = time.time() + 5
            while time.time() < deadline and "/drain/delay/1500" not in open(log).read():
                c.pump(0.05)
            os.kill(pid, signal.SIGTERM)
            r = c.wait(sid, 10)
            c.wait_close(5)
            out({"status": r["status"], "ended": r["ended"], "goaway": c.goaway, "closed": c.closed,
                 "body": "request: GET /drain/delay/1500" in r["body"]})
            """, [String(g.httpPort), String(g.ingressd.pid), g.upstream.logPath], timeout: 30)
        XCTAssertEqual(py["status"] as? Int, 200, "the stream started before the drain finishes: \(py)")
        XCTAssertEqual(py["ended"] as? Bool, true, "\(py)")
        XCTAssertEqual(py["body"] as? Bool, true, "\(py)")
        let goaway = try XCTUnwrap(py["goaway"] as? [String: Any], "GOAWAY on drain: \(py)")
        XCTAssertEqual(goaway["error"] as? Int, 0, "\(py)")
        XCTAssertEqual(py["closed"] as? Bool, true, "\(py)")
    }
}
