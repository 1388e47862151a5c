// What the proxy does with upstream answers a client did not ask for, and with requests that
// would turn a pooled upstream connection into someone's tunnel (hardening issue, items 5, 11,
// 12): CONNECT is refused with Envoy's 404; interim (1xx) heads are dropped except one
// `100 Continue` a client asked for, at most 16 of them per exchange; an unrequested `101`
// and a malformed first chunk are 502 (flag UPE), not a protocol switch or an empty reply.

import Foundation
import XCTest

final class UpstreamProtocolTests: IntegrationTestCase {
    /// A raw HTTP/1.1 upstream whose answers are scripted by path; it logs
    /// "conn=ID METHOD TARGET" per request, ID numbering its connections.
    static let script = #"""
        import itertools, socket, sys, threading
        log = open(sys.argv[1], "a", buffering=1)
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0))
        srv.listen(64)
        print("scripted listening on 127.0.0.1:%d" % srv.getsockname()[1], flush=True)
        ids = itertools.count(1)
        FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

        def serve(s, cid):
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                log.write("conn=%d %s %s\n" % (cid, method, target))
                length = 0
                for h in lines[1:]:
                    k, _, v = h.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v)
                if target == "/many-102":
                    s.sendall(b"HTTP/1.1 102 Processing\r\n\r\n" * 1000 + FINAL)
                elif target == "/few-1xx":
                    s.sendall(b"HTTP/1.1 102 Processing\r\n\r\n" * 3
                              + b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + FINAL)
                elif target == "/continue":
                    s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    while len(buf) < length:
                        buf += s.recv(65536)
                    s.sendall(FINAL)
                elif target == "/switch":
                    s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                              b"Upgrade: websocket\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsmuggl")
                elif target == "/bad-chunk":
                    s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n")
                elif method == "CONNECT":
                    s.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                else:
                    s.sendall(FINAL)
                buf = buf[length:]

        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c, next(ids)), daemon=True).start()
        """#

    /// The scripted upstream behind `raw.test` on a fresh gateway (one worker, so every request
    /// shares one upstream pool).
    private func start() throws -> (Ingressd, DemoUpstream) {
        let log = harness.path("scripted.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let scriptPath = try harness.write("scripted_upstream.py", Self.script)
        let (child, upstreamPort) = try harness.startPortPrintingServer("scripted", [scriptPath, log])
        let upstream = DemoUpstream(name: "scripted", port: upstreamPort, child: child, logPath: log)
        let port = try freeTCPPort()
        let config = WorkshopConfig.documents([
            WorkshopConfig.httpGateway(port: port, hosts: ["*.test"]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: raw
            spec:
              hosts: ["raw.test"]
              gateways: ["gw"]
              http:
              - route:
                - destination:
                    host: raw
                    port:
                      number: 80
            """,
            WorkshopConfig.serviceEntry(name: "raw", servicePort: 80, endpoints: [(upstreamPort, [:])]),
        ])
        let path = try harness.write("raw.yaml", config)
        return (try harness.startIngressd(configs: [path], listenPort: port, workers: 1), upstream)
    }

    private func exchange(_ gateway: Ingressd, _ request: String) throws -> String {
        String(decoding: try RawHTTP.exchange(port: gateway.listenPort, send: Array(request.utf8), timeout: 5),
               as: UTF8.self)
    }

    /// Status lines in a raw reply, in order ("HTTP/1.1 100", "HTTP/1.1 200", ...).
    private func statusLines(_ reply: String) -> [String] {
        reply.components(separatedBy: "\r\n").filter { $0.hasPrefix("HTTP/1.") }.map { String($0.prefix(12)) }
    }

    func testConnectIsRefusedAndNeverReachesTheUpstream() throws {
        let (gateway, upstream) = try start()
        let reply = try exchange(gateway, "CONNECT raw.test:443 HTTP/1.1\r\nHost: raw.test:443\r\n\r\n"
                                          + "GET /inside-the-tunnel HTTP/1.1\r\nHost: raw.test\r\n\r\n")
        XCTAssertEqual(statusLines(reply), ["HTTP/1.1 404"], "404 (Envoy: no route), then closed: \(reply)")
        let next = try exchange(gateway, "GET /after HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statusLines(next), ["HTTP/1.1 200"], next)
        usleep(200_000)
        XCTAssertEqual(upstream.requests.map { $0.split(separator: " ").dropFirst().joined(separator: " ") },
                       ["GET /after"], "the CONNECT (and what followed it) never reached the upstream")
    }

    func testThousandInterimHeadsAre502() throws {
        let (gateway, _) = try start()
        let reply = try exchange(gateway, "GET /many-102 HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statusLines(reply), ["HTTP/1.1 502"], String(reply.prefix(300)))
    }

    func testUnaskedInterimHeadsAreDropped() throws {
        let (gateway, _) = try start()
        let reply = try exchange(gateway, "GET /few-1xx HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statusLines(reply), ["HTTP/1.1 200"], reply)
        XCTAssertTrue(reply.hasSuffix("\r\n\r\nok"), reply)
    }

    func testOneContinueOnlyToAClientThatAskedInHTTP11() throws {
        let (gateway, _) = try start()
        let body = "hello"
        let asked = try exchange(gateway, "POST /continue HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n"
                                          + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n" + body)
        XCTAssertEqual(statusLines(asked), ["HTTP/1.1 100", "HTTP/1.1 200"], asked)
        let unasked = try exchange(gateway, "POST /continue HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n"
                                            + "Content-Length: 5\r\n\r\n" + body)
        XCTAssertEqual(statusLines(unasked), ["HTTP/1.1 200"], unasked)
        let http10 = try exchange(gateway, "POST /continue HTTP/1.0\r\nHost: raw.test\r\n"
                                           + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n" + body)
        XCTAssertEqual(statusLines(http10).count, 1, http10)
        XCTAssertFalse(http10.contains(" 100 "), "an HTTP/1.0 client never gets a 1xx: \(http10)")
    }

    func testUnrequested101Is502AndTheConnectionIsNotReused() throws {
        let (gateway, upstream) = try start()
        let reply = try exchange(gateway, "GET /switch HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statusLines(reply), ["HTTP/1.1 502"], reply)
        XCTAssertFalse(reply.contains("smuggl"), reply)
        let next = try exchange(gateway, "GET /after HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statusLines(next), ["HTTP/1.1 200"], next)
        usleep(200_000)
        let conns = upstream.requests.map { $0.split(separator: " ")[0] }
        XCTAssertEqual(conns.count, 2, "\(upstream.requests)")
        XCTAssertNotEqual(conns.first, conns.last, "the switched connection went back to the pool: \(upstream.requests)")
    }

    func testMalformedFirstChunkIs502() throws {
        let (gateway, _) = try start()
        let reply = try exchange(gateway, "GET /bad-chunk HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statusLines(reply), ["HTTP/1.1 502"], "not an empty reply: \(reply.debugDescription)")
    }
}
