// Request trailers through the gateway (README "HTTP/2"): a client's trailers reach the upstream
// in whatever form its protocol has — the chunked body's trailer section for an HTTP/1.1
// upstream, a HEADERS frame with END_STREAM after the last DATA for an HTTP/2 one — and the
// body around them arrives intact. Clients: Python h2 at frame level (DATA, then trailers) and a
// raw HTTP/1.1 socket (a chunked body with a trailer section). Upstreams: the demo upstream
// (HTTP/1.1, echoes the raw trailer section it read) and `h2Upstream` below (Python h2, reports
// what it got in a response header and its body).

import Foundation
import XCTest

final class HTTP2TrailersTests: IntegrationTestCase {
    /// An HTTP/2 upstream over Python h2 (prior knowledge): answers every request, once its
    /// stream ended, with 200, `x-got-trailers: name=value; ...` (`none` without trailers; `N
    /// fields` past 1000 bytes), N fields `x-big-K` of 1000 bytes when the request says
    /// `x-want-header-kib: N`, and a
    /// JSON body with the method, path, authority, header fields, trailers and the body's length
    /// and SHA-256. `--log FILE` appends that JSON, one line per request. Prints its port first.
    static let h2Upstream = #"""
    import argparse, hashlib, json, socket, sys, threading
    import h2.config, h2.connection, h2.events

    ap = argparse.ArgumentParser()
    ap.add_argument("--log")
    args = ap.parse_args()
    lock = threading.Lock()

    def serve(sock):
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8", validate_inbound_headers=False)
        conn = h2.connection.H2Connection(config=cfg)
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams = {}
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                for e in conn.receive_data(data):
                    if isinstance(e, h2.events.RequestReceived):
                        streams[e.stream_id] = {"headers": [list(h) for h in e.headers], "body": b"", "trailers": None}
                    elif isinstance(e, h2.events.DataReceived):
                        streams[e.stream_id]["body"] += e.data
                        conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                    elif isinstance(e, h2.events.TrailersReceived):
                        streams[e.stream_id]["trailers"] = [list(h) for h in e.headers]
                    elif isinstance(e, h2.events.StreamEnded):
                        st = streams.pop(e.stream_id)
                        h = dict((n, v) for n, v in st["headers"])
                        report = {"method": h.get(":method"), "path": h.get(":path"), "authority": h.get(":authority"),
                                  "headers": st["headers"], "trailers": st["trailers"],
                                  "body_bytes": len(st["body"]), "body_sha256": hashlib.sha256(st["body"]).hexdigest()}
                        line = json.dumps(report)
                        if args.log:
                            with lock, open(args.log, "a") as f:
                                f.write(line + "\n")
                        got = "; ".join("%s=%s" % (n, v) for n, v in st["trailers"] or []) or "none"
                        if len(got) > 1000:
                            got = "%d fields" % len(st["trailers"])   # the body has them
                        body = (line + "\n").encode()
                        big = [("x-big-%d" % k, "v" * 1000) for k in range(int(h.get("x-want-header-kib", "0")))]
                        conn.send_headers(e.stream_id, [(":status", "200"), ("content-type", "application/json"),
                                                        ("content-length", str(len(body))), ("x-got-trailers", got)] + big)
                        for k in range(0, len(body), 16384):
                            conn.send_data(e.stream_id, body[k:k + 16384], end_stream=k + 16384 >= len(body))
                sock.sendall(conn.data_to_send())
        except Exception as e:
            sys.stderr.write("h2 upstream: %r\n" % e)
        finally:
            sock.close()

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print("listening on 127.0.0.1:%d" % srv.getsockname()[1], flush=True)
    while True:
        s, _ = srv.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()
    """#

    /// Starts `h2Upstream`; returns its port and its log's path.
    func startH2Upstream(_ name: String) throws -> (port: UInt16, log: String) {
        let python = try pythonH2()
        let script = try harness.write("h2-upstream.py", Self.h2Upstream)
        let log = harness.path("\(name).log")
        FileManager.default.createFile(atPath: log, contents: nil)
        return (try harness.startPortPrintingServer(name, [script, "--log", log], python: python).port, log)
    }

    /// A Gateway on a free port: h1up.test → the demo upstream `web` (HTTP/1.1), h2up.test →
    /// service `h2svc` whose port protocol is HTTP2 (the Python h2 upstream).
    func startGateway() throws -> (Ingressd, DemoUpstream) {
        let web = try harness.startUpstream("web")
        let (h2Port, _) = try startH2Upstream("h2up")
        let port = try freeTCPPort()
        let docs = [WorkshopConfig.httpGateway(port: port, hosts: ["*"]), """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: h1}
            spec:
              hosts: ["h1up.test"]
              gateways: [gw]
              http:
              - route:
                - destination: {host: web, port: {number: 80}}
            """, """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: h2}
            spec:
              hosts: ["h2up.test"]
              gateways: [gw]
              http:
              - route:
                - destination: {host: h2svc.default.svc.cluster.local, port: {number: 9000}}
            """, """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: h2svc}
            spec:
              hosts: [h2svc.default.svc.cluster.local]
              location: MESH_INTERNAL
              ports: [{number: 9000, name: http2, protocol: HTTP2, targetPort: \(h2Port)}]
              resolution: STATIC
              endpoints: [{address: 127.0.0.1}]
            """,
            WorkshopConfig.serviceEntry(name: "web", servicePort: 80, endpoints: [(web.port, [:])])]
        let path = try harness.write("trailers.yaml", WorkshopConfig.documents(docs))
        let gw = try harness.startIngressd(configs: [path], listenPort: port, workers: 1)
        return (gw, web)
    }

    /// `post_with_trailers(c, path, authority, body, trailers)`: a Python h2 stream that POSTs
    /// `body` in DATA frames (as the windows allow), then `trailers` (HEADERS with END_STREAM).
    static let trailerHelpers = #"""
    import hashlib
    def post_with_trailers(c, path, authority, body, trailers, headers=()):
        sid = c.request(path, authority=authority, method="POST", headers=list(headers), end=False)
        off = 0
        while off < len(body) and not c.closed:
            win = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size)
            if win <= 0:
                c.pump(1)
                continue
            n = min(win, len(body) - off)
            c.conn.send_data(sid, body[off:off + n])
            off += n
            c.flush()
        c.conn.send_headers(sid, trailers, end_stream=True)
        c.flush()
        return sid

    """#

    /// Four such streams on one connection, to each upstream with and without content-length;
    /// prints one JSON object with each stream's result.
    static let trailerClient = trailerHelpers + #"""
    body = bytes(range(256)) * 300   # 76,800 bytes: past the 64 KiB stream window
    sha = hashlib.sha256(body).hexdigest()
    trailers = [("x-checksum", "abc123"), ("x-count", "2")]
    c = Client(int(sys.argv[1]))
    results = {"len": len(body), "sha": sha}
    for name, authority, headers in [("h1", "h1up.test", ()), ("h1len", "h1up.test", [("content-length", str(len(body)))]),
                                     ("h2", "h2up.test", ()), ("h2len", "h2up.test", [("content-length", str(len(body)))])]:
        r = c.wait(post_with_trailers(c, "/" + name, authority, body, trailers, headers), timeout=20)
        results[name] = r
    out(results)
    """#

    func testClientTrailersReachHTTP11AndHTTP2Upstreams() throws {
        let python = try pythonH2()
        let (gw, _) = try startGateway()
        let script = try harness.write("trailers-client.py", HTTP2Tests.pythonClient + Self.trailerClient)
        let r = try harness.run(python, [script, String(gw.listenPort)], timeout: 90)
        guard let line = r.stdout.split(separator: "\n").last,
              let py = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            return XCTFail("client failed: \(r.output)")
        }
        let len = try XCTUnwrap(py["len"] as? Int)
        let sha = try XCTUnwrap(py["sha"] as? String)
        func stream(_ name: String) throws -> (status: Int?, body: String, headers: [String: String]) {
            let s = try XCTUnwrap(py[name] as? [String: Any], "\(py)")
            let hs = (s["headers"] as? [[String]] ?? []).reduce(into: [String: String]()) { $0[$1[0]] = $1[1] }
            return (s["status"] as? Int, s["body"] as? String ?? "", hs)
        }

        // HTTP/2 client → HTTP/1.1 upstream, no content-length: the chunked body's trailer
        // section, the body intact.
        let h1 = try stream("h1")
        XCTAssertEqual(h1.status, 200, "\(py)")
        XCTAssertTrue(h1.body.contains("body-bytes: \(len)\n") && h1.body.contains("body-sha256: \(sha)\n"), h1.body)
        XCTAssertTrue(h1.body.lowercased().contains("transfer-encoding: chunked"), h1.body)
        XCTAssertTrue(h1.body.contains(#"trailer-section: b'x-checksum: abc123\r\nx-count: 2\r\n\r\n'"#),
                      "the trailers arrive as the chunked trailer section: \(h1.body)")
        // With a content-length HTTP/1.1 cannot carry them: dropped, the body intact.
        let h1len = try stream("h1len")
        XCTAssertEqual(h1len.status, 200, "\(py)")
        XCTAssertTrue(h1len.body.contains("body-bytes: \(len)\n") && h1len.body.contains("body-sha256: \(sha)\n"), h1len.body)
        XCTAssertFalse(h1len.body.contains("trailer-section"), h1len.body)

        // HTTP/2 client → HTTP/2 upstream: trailers after the last DATA.
        let h2 = try stream("h2")
        XCTAssertEqual(h2.status, 200, "\(py)")
        XCTAssertEqual(h2.headers["x-got-trailers"], "x-checksum=abc123; x-count=2", "\(py)")
        XCTAssertTrue(h2.body.contains("\"body_bytes\": \(len),") && h2.body.contains("\"body_sha256\": \"\(sha)\""), h2.body)
        let h2len = try stream("h2len")
        XCTAssertEqual(h2len.status, 200, "\(py)")
        XCTAssertEqual(h2len.headers["x-got-trailers"], "none", "a request with a content-length travels as HTTP/1.1 inside: \(py)")
        XCTAssertTrue(h2len.body.contains("\"body_bytes\": \(len),"), h2len.body)
    }

    func testAnHTTP11ChunkedTrailerSectionReachesAnHTTP2UpstreamAsTrailers() throws {
        let (gw, _) = try startGateway()
        // Fields a trailer may not carry (framing, routing, connection-specific) are left out.
        let request = "POST /h1-chunked HTTP/1.1\r\nHost: h2up.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: abc123\r\nContent-Length: 99\r\nHost: evil.test\r\n"
            + "Connection: x\r\nX-Count: 2\r\n\r\n"
        let reply = String(decoding: try RawHTTP.exchange(port: gw.listenPort, send: Array(request.utf8), timeout: 10), as: UTF8.self)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200"), reply)
        XCTAssertTrue(reply.lowercased().contains("\r\nx-got-trailers: x-checksum=abc123; x-count=2\r\n"), reply)
        XCTAssertTrue(reply.contains("\"body_bytes\": 11,"), reply)
        // Without trailers the body ends with DATA's END_STREAM, as before.
        let plain = "POST /h1-plain HTTP/1.1\r\nHost: h2up.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + "5\r\nhello\r\n0\r\n\r\n"
        let reply2 = String(decoding: try RawHTTP.exchange(port: gw.listenPort, send: Array(plain.utf8), timeout: 10), as: UTF8.self)
        XCTAssertTrue(reply2.hasPrefix("HTTP/1.1 200"), reply2)
        XCTAssertTrue(reply2.lowercased().contains("\r\nx-got-trailers: none\r\n"), reply2)
    }

    func testLargeTrailersPassAndOversizedOnesFailTheRequest() throws {
        let python = try pythonH2()
        let (gw, web) = try startGateway()
        // 50 fields of 600 bytes (30 KiB: more than a small buffer, more than one receive's
        // worth) reach either upstream whole. 120 fields: past the head limits (100 fields) →
        // 400, as an HTTP/1.1 trailer section past its limit; the connection goes on.
        let script = try harness.write("big-trailers.py", HTTP2Tests.pythonClient + Self.trailerHelpers + #"""
            c = Client(int(sys.argv[1]))
            large = [("x-l%d" % k, "%03d" % k + "v" * 597) for k in range(50)]
            l1 = c.wait(post_with_trailers(c, "/large", "h1up.test", b"z" * 100, large), timeout=10)
            l2 = c.wait(post_with_trailers(c, "/large", "h2up.test", b"z" * 100, large), timeout=10)
            want = "".join("%s: %s\\r\\n" % f for f in large)
            big = [("x-t%d" % k, "v") for k in range(120)]
            r1 = c.wait(post_with_trailers(c, "/big", "h1up.test", b"x" * 1000, big), timeout=10)
            r2 = c.wait(post_with_trailers(c, "/after", "h1up.test", b"y" * 10, [("x-ok", "1")]), timeout=10)
            out({"large1": l1["status"], "large1Whole": ("trailer-section: b'" + want + "\\r\\n'") in l1["body"],
                 "large2": l2["status"], "large2Whole": l2["status"] == 200 and json.loads(l2["body"])["trailers"] == [list(f) for f in large],
                 "big": r1["status"], "reset": r1["reset"], "after": r2["status"], "afterBody": r2["body"]})
            """#)
        let r = try harness.run(python, [script, String(gw.listenPort)], timeout: 60)
        guard let line = r.stdout.split(separator: "\n").last,
              let py = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            return XCTFail("client failed: \(r.output)")
        }
        XCTAssertEqual(py["large1"] as? Int, 200, "\(py)")
        XCTAssertEqual(py["large1Whole"] as? Bool, true, "30 KiB of trailers reach an HTTP/1.1 upstream whole")
        XCTAssertEqual(py["large2"] as? Int, 200, "\(py)")
        XCTAssertEqual(py["large2Whole"] as? Bool, true, "30 KiB of trailers reach an HTTP/2 upstream whole")
        XCTAssertEqual(py["big"] as? Int, 400, "\(py)")
        XCTAssertEqual(py["after"] as? Int, 200, "\(py)")
        XCTAssertTrue((py["afterBody"] as? String ?? "").contains(#"trailer-section: b'x-ok: 1\r\n\r\n'"#), "\(py)")
        XCTAssertFalse(web.requests.contains { $0.contains("/big") && $0.contains("body=1000") }, "\(web.requests)")
    }

    func testLargeResponseHeadsFromAnHTTP2UpstreamPass() throws {
        // An HTTP/2 upstream's head past 4 KiB (large cookies, gRPC metadata) reaches HTTP/1.1
        // and HTTP/2 clients whole, up to the head limits (60 KiB, 100 fields): past them 502.
        let (gw, _) = try startGateway()
        for kib in [3, 10, 40, 58] {
            let r = try harness.curl(gw.url + "/big", host: "h2up.test", ["-H", "x-want-header-kib: \(kib)"])
            XCTAssertEqual(r.status, 200, "\(kib) KiB: \(r.text.prefix(300))")
            XCTAssertEqual(r.header("x-big-\(kib - 1)")?.count, 1000, "\(kib) KiB")
            let h2 = try harness.curl(gw.url + "/big", host: "h2up.test", ["--http2-prior-knowledge", "-H", "x-want-header-kib: \(kib)"])
            XCTAssertEqual(h2.status, 200, "HTTP/2 client, \(kib) KiB: \(h2.text.prefix(300))")
            XCTAssertEqual(h2.header("x-big-\(kib - 1)")?.count, 1000, "HTTP/2 client, \(kib) KiB")
        }
        let over = try harness.curl(gw.url + "/big", host: "h2up.test", ["-H", "x-want-header-kib: 70"])
        XCTAssertEqual(over.status, 502, over.text)
        XCTAssertEqual(try harness.curl(gw.url + "/after", host: "h2up.test").status, 200)
    }
}
