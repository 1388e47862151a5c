// DestinationRule `connectionPool.http.http2KeepAlive` (README "HTTP/2"): the gateway PINGs each
// HTTP/2 upstream connection of such a cluster every interval, and closes one that answers
// nothing within the timeout (its streams fail as a lost connection's: 503 UC). Upstream:
// `pingUpstream` below (Python h2), which counts the PINGs each connection receives and can
// stop reading, as a hung process would. Two services, each with one of its own (the gateway
// pools connections per endpoint): h2ka (with keepalive) and h2plain (without).

import Foundation
import XCTest

final class HTTP2KeepaliveTests: IntegrationTestCase {
    /// An HTTP/2 upstream (prior knowledge) that logs, one JSON line each, the PINGs every
    /// connection receives and its requests, and answers with `{"conn": N, "pings": K}` (the
    /// connection's number and its PINGs so far). Paths: `/hold/MS` answers after MS ms (the
    /// connection keeps reading meanwhile), `/deaf/MS` answers, then reads nothing for MS ms,
    /// `/silent/MS` reads nothing for MS ms without answering (the stream is dropped).
    static let pingUpstream = #"""
    import json, socket, sys, threading, time
    import h2.config, h2.connection, h2.events

    log_path = sys.argv[1]
    lock = threading.Lock()
    counter = [0]

    def log(obj):
        with lock, open(log_path, "a") as f:
            f.write(json.dumps(obj) + "\n")

    def serve(sock, cid):
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        sock.settimeout(0.01)
        pings = 0
        due = []   # [time, stream, deaf ms after]
        try:
            while True:
                now = time.time()
                for d in [d for d in due if d[0] <= now]:
                    due.remove(d)
                    body = json.dumps({"conn": cid, "pings": pings}).encode()
                    conn.send_headers(d[1], [(":status", "200"), ("content-length", str(len(body)))])
                    conn.send_data(d[1], body, end_stream=True)
                    sock.sendall(conn.data_to_send())
                    if d[2] > 0:
                        log({"conn": cid, "event": "deaf", "ms": d[2]})
                        time.sleep(d[2] / 1000.0)
                        log({"conn": cid, "event": "hearing"})
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    log({"conn": cid, "event": "closed", "pings": pings})
                    break
                for e in conn.receive_data(data):
                    if isinstance(e, h2.events.PingReceived):
                        pings += 1
                        log({"conn": cid, "event": "ping", "t": time.time()})
                    elif isinstance(e, h2.events.RequestReceived):
                        path = dict(e.headers).get(":path", "/")
                        log({"conn": cid, "event": "request", "path": path})
                        parts = path.strip("/").split("/")
                        ms = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                        if parts[0] == "silent":
                            log({"conn": cid, "event": "deaf", "ms": ms})
                            time.sleep(ms / 1000.0)
                            log({"conn": cid, "event": "hearing"})
                        elif parts[0] == "deaf":
                            due.append([time.time(), e.stream_id, ms])
                        else:
                            due.append([time.time() + (ms / 1000.0 if parts[0] == "hold" else 0), e.stream_id, 0])
                sock.sendall(conn.data_to_send())
        except Exception as ex:
            log({"conn": cid, "event": "closed", "error": repr(ex), "pings": pings})
        finally:
            sock.close()

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print("listening on 127.0.0.1:%d" % srv.getsockname()[1], flush=True)
    while True:
        s, _ = srv.accept()
        counter[0] += 1
        threading.Thread(target=serve, args=(s, counter[0]), daemon=True).start()
    """#

    struct Gateway {
        var ingressd: Ingressd
        /// The upstreams' logs by host (ka.test, plain.test).
        var logs: [String: String]
    }

    static let kaCluster = "outbound|9000||h2ka.default.svc.cluster.local"
    static let plainCluster = "outbound|9000||h2plain.default.svc.cluster.local"

    /// Two upstreams, and a gateway: ka.test → h2ka (http2KeepAlive `interval`/`timeout`),
    /// plain.test → h2plain (none); port protocol HTTP2.
    func startGateway(interval: String, timeout: String) throws -> Gateway {
        let python = try pythonH2()
        let script = try harness.write("ping-upstream.py", Self.pingUpstream)
        var logs: [String: String] = [:], ports: [String: UInt16] = [:]
        for name in ["ka", "plain"] {
            let log = harness.path("ping-upstream-\(name).log")
            FileManager.default.createFile(atPath: log, contents: nil)
            logs["\(name).test"] = log
            ports[name] = try harness.startPortPrintingServer("ping-upstream-\(name)", [script, log], python: python).port
        }
        let port = try freeTCPPort()
        var docs = [WorkshopConfig.httpGateway(port: port, hosts: ["*"]), """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: ka}
            spec:
              host: h2ka.default.svc.cluster.local
              trafficPolicy:
                connectionPool:
                  http:
                    http2KeepAlive: {interval: \(interval), timeout: \(timeout)}
            """]
        for name in ["ka", "plain"] {
            docs.append("""
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: \(name)}
                spec:
                  hosts: ["\(name).test"]
                  gateways: [gw]
                  http:
                  - route:
                    - destination: {host: h2\(name).default.svc.cluster.local, port: {number: 9000}}
                """)
            docs.append("""
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: h2\(name)}
                spec:
                  hosts: [h2\(name).default.svc.cluster.local]
                  location: MESH_INTERNAL
                  ports: [{number: 9000, name: http2, protocol: HTTP2, targetPort: \(ports[name]!)}]
                  resolution: STATIC
                  endpoints: [{address: 127.0.0.1}]
                """)
        }
        let path = try harness.write("keepalive.yaml", WorkshopConfig.documents(docs))
        let gw = try harness.startIngressd(configs: [path], listenPort: port, workers: 1)
        return Gateway(ingressd: gw, logs: logs)
    }

    /// A request through the gateway (HTTP/1.1 downstream): status, the upstream's JSON answer.
    func get(_ g: Gateway, host: String, _ path: String) throws -> (status: Int, conn: Int?, pings: Int?) {
        let r = try harness.run("curl", ["-s", "--max-time", "10", "-H", "Host: \(host)", "-w", "\n%{http_code}",
                                         "http://127.0.0.1:\(g.ingressd.listenPort)\(path)"], timeout: 15)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let json = lines.dropLast().joined(separator: "\n")
        let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        return (status, obj?["conn"] as? Int, obj?["pings"] as? Int)
    }

    /// Upstream `host`'s log lines of `event` (for connection `conn` when given).
    func events(_ g: Gateway, _ host: String, _ event: String, conn: Int? = nil) -> [[String: Any]] {
        let text = (try? String(contentsOfFile: g.logs[host]!, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  o["event"] as? String == event, conn == nil || o["conn"] as? Int == conn else { return nil }
            return o
        }
    }

    /// envoy_cluster_upstream_cx_active of `cluster`.
    func activeConnections(_ g: Gateway, _ cluster: String) throws -> Double {
        let text = try harness.admin(g.ingressd, "/stats/prometheus")
        var total = 0.0
        for line in text.split(separator: "\n") where line.hasPrefix("envoy_cluster_upstream_cx_active{")
            && line.contains("cluster_name=\"\(cluster)\"") {
            total += Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return total
    }

    func testPingsEveryIntervalOnlyOnClustersThatSetIt() throws {
        // interval 200 ms (+ up to 15 % jitter): a stream held 1.5 s sees ~6–7 PINGs on its
        // connection; the same upstream behind a cluster without keepalive sees none.
        let g = try startGateway(interval: "200ms", timeout: "1s")
        let ka = try get(g, host: "ka.test", "/hold/1500")
        XCTAssertEqual(ka.status, 200)
        XCTAssertGreaterThanOrEqual(ka.pings ?? 0, 4, "PINGs while the stream was held: \(ka)")
        XCTAssertLessThanOrEqual(ka.pings ?? 99, 9, "no more often than every interval: \(ka)")
        let plain = try get(g, host: "plain.test", "/hold/1500")
        XCTAssertEqual(plain.status, 200)
        XCTAssertEqual(plain.pings, 0, "no keepalive without http2KeepAlive: \(plain)")
        // An idle connection is kept alive too, and it is the same connection.
        let before = events(g, "ka.test", "ping", conn: ka.conn).count
        usleep(1_000_000)
        let idle = events(g, "ka.test", "ping", conn: ka.conn).count - before
        XCTAssertGreaterThanOrEqual(idle, 3, "PINGs on the idle connection in 1 s")
        XCTAssertEqual(events(g, "plain.test", "ping", conn: plain.conn).count, 0)
        let again = try get(g, host: "ka.test", "/hold/0")
        XCTAssertEqual(again.conn, ka.conn, "answered PINGs keep the connection")
        // Intervals between PINGs: at least 200 ms, at most 230 ms plus the loop's latency.
        let times = events(g, "ka.test", "ping", conn: ka.conn).compactMap { $0["t"] as? Double }
        let gaps = zip(times.dropFirst(), times).map { ($0 - $1) * 1000 }
        XCTAssertGreaterThan(gaps.count, 5)
        XCTAssertGreaterThanOrEqual(gaps.min() ?? 0, 190, "gaps (ms): \(gaps)")
        XCTAssertLessThanOrEqual(gaps.max() ?? 999, 330, "gaps (ms): \(gaps)")
        print("keepalive: \(ka.pings ?? 0) PINGs in 1.5 s; gaps \(Int(gaps.min() ?? 0))–\(Int(gaps.max() ?? 0)) ms")
    }

    func testAnUpstreamThatStopsAnsweringIsClosedAfterIntervalPlusTimeout() throws {
        // interval 200 ms, timeout 300 ms: an upstream that stops reading (a hung process; the
        // kernel still takes the bytes) is closed ~0.5 s later — cx_active drops to 0 — and the
        // next request opens a new connection. Without keepalive the connection stays.
        let g = try startGateway(interval: "200ms", timeout: "300ms")
        let first = try get(g, host: "ka.test", "/deaf/2500")
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(try activeConnections(g, Self.kaCluster), 1)
        let t0 = Date()
        var active = 1.0
        while Date().timeIntervalSince(t0) < 2.2 {
            active = try activeConnections(g, Self.kaCluster)
            if active == 0 { break }
            usleep(20_000)
        }
        let closedIn = Date().timeIntervalSince(t0)
        XCTAssertEqual(active, 0, "the unanswering connection is closed")
        XCTAssertGreaterThanOrEqual(closedIn, 0.3, "not before the timeout")
        XCTAssertLessThan(closedIn, 1.5, "within interval + jitter + timeout (0.53 s) and polling")
        // Once the upstream reads again it finds the connection closed; the next request goes
        // on a new one.
        usleep(UInt32(max(0, 2.8 - Date().timeIntervalSince(t0)) * 1_000_000))
        let next = try get(g, host: "ka.test", "/hold/0")
        XCTAssertEqual(next.status, 200)
        XCTAssertNotNil(next.conn)
        XCTAssertNotEqual(next.conn, first.conn, "a new connection after the lost one")
        XCTAssertEqual(events(g, "ka.test", "closed", conn: first.conn).count, 1, "the upstream saw its connection closed")
        print("keepalive: unanswered connection closed in \(Int(closedIn * 1000)) ms")

        // Without keepalive: the same silence leaves the connection open, and it is reused.
        let plain = try get(g, host: "plain.test", "/deaf/1000")
        XCTAssertEqual(plain.status, 200)
        usleep(1_500_000)
        XCTAssertEqual(try activeConnections(g, Self.plainCluster), 1)
        XCTAssertEqual(try get(g, host: "plain.test", "/hold/0").conn, plain.conn)
    }

    func testAStreamOnAnUnansweringConnectionFailsWithoutWaiting() throws {
        // The upstream takes the request and hangs: the stream fails with the connection at
        // interval + timeout (503, as a lost connection), not at the route or idle timeouts.
        let g = try startGateway(interval: "200ms", timeout: "300ms")
        let t0 = Date()
        let r = try get(g, host: "ka.test", "/silent/3000")
        let took = Date().timeIntervalSince(t0)
        XCTAssertEqual(r.status, 503)
        XCTAssertLessThan(took, 2.5, "failed by the keepalive timeout, not after the upstream woke")
        print("keepalive: a stream on a hung upstream failed in \(Int(took * 1000)) ms")
    }
}
