// VirtualService route actions served by the real binary (istio-semantics.md §1.4): rewrite,
// header operations, fault injection and retries, each checked against what a real upstream
// (examples/upstreams/demo_upstream.py, which echoes the request and logs every request it
// gets) saw.

import Foundation
import XCTest

final class RouteActionTests: IntegrationTestCase {
    private var upstream: DemoUpstream!
    private var gateway: Ingressd!

    /// A Gateway for *.actions.test, a ServiceEntry `app` (the demo upstream), a ServiceEntry
    /// `flaky` (a dead port and the demo upstream), and `rules`: VirtualService http blocks,
    /// one VirtualService per host.
    private func start(_ rules: [(host: String, http: String)]) throws {
        upstream = try harness.startUpstream("app")
        let port = try freeTCPPort()
        let dead = try freeTCPPort()
        var docs = [
            WorkshopConfig.httpGateway(port: port, hosts: ["*.actions.test"]),
            WorkshopConfig.serviceEntry(name: "app", servicePort: 80, endpoints: [(upstream.port, [:])]),
            WorkshopConfig.serviceEntry(name: "flaky", servicePort: 80, endpoints: [(dead, [:]), (upstream.port, [:])]),
        ]
        for (n, rule) in rules.enumerated() {
            docs.append("""
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: vs\(n)
            spec:
              hosts: ["\(rule.host)"]
              gateways: ["gw"]
              http:
            \(rule.http)
            """)
        }
        let path = try harness.write("actions.yaml", WorkshopConfig.documents(docs))
        let check = try harness.run(Paths.ingressdBinary, ["check", "-c", path])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertFalse(check.output.contains("not supported"), "served fields do not warn: \(check.output)")
        gateway = try harness.startIngressd(configs: [path], listenPort: port, workers: 1)
    }

    private func requestsSeen() -> [String] { upstream.requests }

    func testRewriteAndHeaderOperations() throws {
        try start([(host: "edit.actions.test", http: """
          - match:
            - uri: {prefix: /api/}
            rewrite: {uri: /v2/, authority: internal.svc}
            headers:
              request:
                set: {x-env: prod}
                add: {x-added: "1"}
                remove: [cookie]
              response:
                remove: [x-demo-upstream]
                add: {x-gateway: ingressd}
            route:
            - destination: {host: app, port: {number: 80}}
              headers:
                request:
                  set: {x-destination: app}
        """)])
        let r = try harness.curl(gateway.url + "/api/items?q=1", host: "edit.actions.test",
                                 ["-H", "Cookie: secret=1", "-H", "X-Env: dev"])
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertTrue(r.text.contains("request: GET /v2/items?q=1 HTTP/1.1"), r.text)
        let lines = r.text.lowercased()
        XCTAssertTrue(lines.contains("host: internal.svc"), r.text)
        XCTAssertFalse(lines.contains("host: edit.actions.test"), r.text)
        XCTAssertTrue(lines.contains("x-env: prod"), r.text)
        XCTAssertFalse(lines.contains("x-env: dev"), r.text)
        XCTAssertTrue(lines.contains("x-added: 1"), r.text)
        XCTAssertTrue(lines.contains("x-destination: app"), r.text)
        XCTAssertFalse(lines.contains("cookie"), r.text)
        XCTAssertNil(r.header("x-demo-upstream"), "response header removed")
        XCTAssertEqual(r.header("x-gateway"), "ingressd")
        // A path outside the matched prefix keeps its form; the rewrite replaced only "/api/".
        XCTAssertEqual(requestsSeen().last, "app GET /v2/items?q=1 body=0")
    }

    /// `uriRegexRewrite` (RE2, every match replaced, `\\1` captures; the query is kept), the
    /// example of Istio's reference.
    func testRegexRewrite() throws {
        try start([(host: "regex.actions.test", http: """
          - match:
            - uri: {prefix: /service/}
            rewrite:
              uriRegexRewrite:
                match: ^/service/([^/]+)(/.*)$
                rewrite: \\2/instance/\\1
            route:
            - destination: {host: app, port: {number: 80}}
        """)])
        let r = try harness.curl(gateway.url + "/service/foo/v1/api?x=1", host: "regex.actions.test")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(requestsSeen().last, "app GET /v1/api/instance/foo?x=1 body=0")
    }

    func testFaultAbortAnswersWithoutReachingTheUpstream() throws {
        try start([(host: "abort.actions.test", http: """
          - fault:
              abort:
                httpStatus: 418
                percentage: {value: 100}
            route:
            - destination: {host: app, port: {number: 80}}
        """)])
        for _ in 0..<3 {
            let r = try harness.curl(gateway.url + "/x", host: "abort.actions.test")
            XCTAssertEqual(r.status, 418)
            XCTAssertEqual(r.text, "fault filter abort")
        }
        usleep(100_000)
        XCTAssertEqual(requestsSeen(), [], "an aborted request never reaches the upstream")
    }

    func testFaultDelayHoldsTheRequest() throws {
        try start([(host: "delay.actions.test", http: """
          - fault:
              delay:
                fixedDelay: 400ms
                percentage: {value: 100}
            route:
            - destination: {host: app, port: {number: 80}}
        """)])
        let started = Date()
        let r = try harness.curl(gateway.url + "/slowly", host: "delay.actions.test")
        let took = Date().timeIntervalSince(started)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertGreaterThanOrEqual(took, 0.4, "delayed by the fault")
        XCTAssertEqual(requestsSeen(), ["app GET /slowly body=0"])
    }

    /// Istio's default policy (no `retries` field) retries connect failures on another
    /// endpoint; `attempts: 0` turns that off.
    func testDefaultPolicyRetriesConnectFailuresOnAnotherEndpoint() throws {
        try start([
            (host: "default.actions.test", http: """
              - route:
                - destination: {host: flaky, port: {number: 80}}
            """),
            (host: "noretry.actions.test", http: """
              - retries: {attempts: 0}
                route:
                - destination: {host: flaky, port: {number: 80}}
            """),
        ])
        for k in 0..<10 {
            let r = try harness.curl(gateway.url + "/d\(k)", host: "default.actions.test")
            XCTAssertEqual(r.status, 200, "request \(k): the dead endpoint's connect failure is retried: \(r.text)")
        }
        var failures = 0
        for k in 0..<10 {
            let r = try harness.curl(gateway.url + "/n\(k)", host: "noretry.actions.test")
            if r.status == 503 { failures += 1 }
        }
        XCTAssertGreaterThan(failures, 0, "without retries the dead endpoint's share fails with 503")
        let stats = try harness.curl(gateway.adminURL + "/stats/prometheus")
        let retried = stats.text.split(separator: "\n").first {
            $0.hasPrefix("envoy_cluster_upstream_rq_retry{") && $0.contains("flaky")
        }
        XCTAssertNotNil(retried, stats.text)
        if let line = retried, let n = Double(line.split(separator: " ").last ?? "") { XCTAssertGreaterThanOrEqual(n, 1) }
    }

    /// A 503 answer is not retried by default (Istio 1.24); `retryOn: 5xx` retries it, and the
    /// last answer reaches the client.
    func testStatusRetriesFollowRetryOn() throws {
        try start([
            (host: "default.actions.test", http: """
              - route:
                - destination: {host: app, port: {number: 80}}
            """),
            (host: "fivexx.actions.test", http: """
              - retries: {attempts: 2, retryOn: 5xx}
                route:
                - destination: {host: app, port: {number: 80}}
            """),
        ])
        let once = try harness.curl(gateway.url + "/a/status/503", host: "default.actions.test")
        XCTAssertEqual(once.status, 503)
        let thrice = try harness.curl(gateway.url + "/b/status/503", host: "fivexx.actions.test")
        XCTAssertEqual(thrice.status, 503, "the last try's answer is forwarded")
        let seen = requestsSeen()
        XCTAssertEqual(seen.filter { $0.contains("/a/status/503") }.count, 1, "\(seen)")
        XCTAssertEqual(seen.filter { $0.contains("/b/status/503") }.count, 3, "1 try + 2 retries: \(seen)")
    }

    func testPerTryTimeoutRetriesThenAnswers504() throws {
        try start([(host: "pertry.actions.test", http: """
          - retries: {attempts: 1, perTryTimeout: 300ms, retryOn: gateway-error}
            route:
            - destination: {host: app, port: {number: 80}}
        """)])
        let started = Date()
        let r = try harness.curl(gateway.url + "/slow/delay/2000", host: "pertry.actions.test")
        let took = Date().timeIntervalSince(started)
        XCTAssertEqual(r.status, 504, r.text)
        XCTAssertEqual(r.text, "upstream request timeout")
        XCTAssertGreaterThanOrEqual(took, 0.6, "two tries of 300 ms")
        XCTAssertLessThan(took, 1.8, "not the upstream's 2 s")
        usleep(100_000)
        XCTAssertEqual(requestsSeen().filter { $0.contains("/slow/delay/2000") }.count, 2)
    }
}

/// Mirrors: a tiny server records the head of every request it gets (one file per request)
/// and answers after `delayMs`.
final class MirrorTests: IntegrationTestCase {
    private func startRecorder(delayMs: Int) throws -> (port: UInt16, dir: String) {
        let dir = harness.path("mirror-heads")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let script = try harness.write("recorder.py", """
        import socket, sys, threading, time, os
        d, delay = sys.argv[1], int(sys.argv[2])
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0)); s.listen(64)
        print("recorder listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
        n = [0]
        def serve(c):
            data = b""
            while b"\\r\\n\\r\\n" not in data:
                chunk = c.recv(65536)
                if not chunk: return
                data += chunk
            head_len = data.index(b"\\r\\n\\r\\n") + 4
            length = 0
            for line in data[:head_len].split(b"\\r\\n"):
                if line.lower().startswith(b"content-length:"): length = int(line.split(b":", 1)[1])
            while len(data) < head_len + length:
                chunk = c.recv(65536)
                if not chunk: break
                data += chunk
            n[0] += 1
            with open(os.path.join(d, "%d.head" % n[0]), "wb") as f: f.write(data)
            time.sleep(delay / 1000.0)
            try: c.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-length: 6\\r\\n\\r\\nshadow")
            except OSError: pass
            c.close()
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        """)
        let (_, port) = try harness.startPortPrintingServer("recorder", [script, dir, String(delayMs)])
        return (port, dir)
    }

    private func heads(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().compactMap {
            try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8)
        }
    }

    private func start(mirrorPort: UInt16, percentage: String = "100") throws -> (Ingressd, DemoUpstream) {
        let app = try harness.startUpstream("app")
        let port = try freeTCPPort()
        let config = WorkshopConfig.documents([
            WorkshopConfig.httpGateway(port: port, hosts: ["mirror.test"]),
            WorkshopConfig.serviceEntry(name: "app", servicePort: 80, endpoints: [(app.port, [:])]),
            WorkshopConfig.serviceEntry(name: "shadow", servicePort: 80, endpoints: [(mirrorPort, [:])]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: mirrored
            spec:
              hosts: ["mirror.test"]
              gateways: ["gw"]
              http:
              - route:
                - destination: {host: app, port: {number: 80}}
                mirror: {host: shadow, port: {number: 80}}
                mirrorPercentage: {value: \(percentage)}
            """,
        ])
        let path = try harness.write("mirror.yaml", config)
        return (try harness.startIngressd(configs: [path], listenPort: port, workers: 1), app)
    }

    func testTheCopyGoesToTheMirrorWithAShadowHost() throws {
        let recorder = try startRecorder(delayMs: 0)
        let (gw, app) = try start(mirrorPort: recorder.port)
        let r = try harness.curl(gw.url + "/m?q=1", host: "mirror.test:8080")
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(r.text.contains("upstream: app"), "the client gets the primary's answer: \(r.text)")
        var got: [String] = []
        let deadline = Date().addingTimeInterval(3)
        while got.isEmpty && Date() < deadline { usleep(50_000); got = heads(recorder.dir) }
        XCTAssertEqual(got.count, 1)
        let head = got.first?.lowercased() ?? ""
        XCTAssertTrue(head.hasPrefix("get /m?q=1 http/1.1\r\n"), head)
        XCTAssertTrue(head.contains("\r\nhost: mirror.test-shadow:8080\r\n"), head)
        XCTAssertEqual(app.requests, ["app GET /m?q=1 body=0"])
    }

    func testASlowOrDeadMirrorNeverDelaysTheClient() throws {
        let slow = try startRecorder(delayMs: 4000)
        let (gw, _) = try start(mirrorPort: slow.port)
        for _ in 0..<3 {
            let started = Date()
            let r = try harness.curl(gw.url + "/fast", host: "mirror.test")
            XCTAssertEqual(r.status, 200)
            XCTAssertLessThan(Date().timeIntervalSince(started), 1.5, "the mirror's 4 s do not reach the client")
        }
        let dead = try freeTCPPort()
        let (gw2, _) = try start(mirrorPort: dead)
        let r = try harness.curl(gw2.url + "/fast", host: "mirror.test")
        XCTAssertEqual(r.status, 200, "a mirror that refuses connections does not fail the request")
    }

    func testAStreamedBodyIsMirroredOnceItEndedUnlessItOutgrowsTheCopy() throws {
        // An HTTP/2 client's body always streams (DATA after the head): the copy collects it.
        let recorder = try startRecorder(delayMs: 0)
        let (gw, app) = try start(mirrorPort: recorder.port)
        let small = harness.path("small.bin"), big = harness.path("big.bin")
        try Data(repeating: UInt8(ascii: "s"), count: 5000).write(to: URL(fileURLWithPath: small))
        try Data(repeating: UInt8(ascii: "b"), count: 200_000).write(to: URL(fileURLWithPath: big))
        for (path, file) in [("/small", small), ("/big", big)] {
            let r = try harness.curl(gw.url + path, host: "mirror.test", ["--http2-prior-knowledge", "--data-binary", "@" + file])
            XCTAssertEqual(r.status, 200)
        }
        var got: [String] = []
        let deadline = Date().addingTimeInterval(3)
        while got.isEmpty && Date() < deadline { usleep(50_000); got = heads(recorder.dir) }
        usleep(300_000)
        got = heads(recorder.dir)
        XCTAssertEqual(got.count, 1, "the 200 KB body is past the copy's buffer: not mirrored")
        let copy = got.first ?? ""
        XCTAssertTrue(copy.lowercased().hasPrefix("post /small http/1.1\r\n"), copy)
        XCTAssertTrue(copy.hasSuffix("\r\n\r\n" + String(repeating: "s", count: 5000)), "the whole body: \(copy.suffix(100))")
        XCTAssertEqual(app.requests, ["app POST /small body=5000", "app POST /big body=200000"])
    }

    func testZeroPercentMirrorsNothing() throws {
        let recorder = try startRecorder(delayMs: 0)
        let (gw, _) = try start(mirrorPort: recorder.port, percentage: "0")
        for _ in 0..<5 { XCTAssertEqual(try harness.curl(gw.url + "/z", host: "mirror.test").status, 200) }
        usleep(300_000)
        XCTAssertEqual(heads(recorder.dir), [])
    }
}

/// `corsPolicy` as Envoy's CORS filter applies it.
final class CORSTests: IntegrationTestCase {
    private func start() throws -> (Ingressd, DemoUpstream) {
        let app = try harness.startUpstream("app")
        let port = try freeTCPPort()
        let config = WorkshopConfig.documents([
            WorkshopConfig.httpGateway(port: port, hosts: ["cors.test", "ignore.cors.test"]),
            WorkshopConfig.serviceEntry(name: "app", servicePort: 80, endpoints: [(app.port, [:])]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: cors
            spec:
              hosts: ["cors.test"]
              gateways: ["gw"]
              http:
              - route:
                - destination: {host: app, port: {number: 80}}
                corsPolicy:
                  allowOrigins:
                  - exact: https://shop.example
                  - prefix: https://admin.
                  - regex: "https://[a-z]+\\\\.partner\\\\.example"
                  allowMethods: [GET, POST]
                  allowHeaders: [x-custom, authorization]
                  exposeHeaders: [x-demo-upstream]
                  maxAge: 3600s
                  allowCredentials: true
            ---
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: ignore
            spec:
              hosts: ["ignore.cors.test"]
              gateways: ["gw"]
              http:
              - route:
                - destination: {host: app, port: {number: 80}}
                corsPolicy:
                  allowOrigins: [{exact: https://shop.example}]
                  unmatchedPreflights: IGNORE
            """,
        ])
        let path = try harness.write("cors.yaml", config)
        return (try harness.startIngressd(configs: [path], listenPort: port, workers: 1), app)
    }

    private func preflight(_ gw: Ingressd, host: String, origin: String) throws -> HTTPResponse {
        try harness.curl(gw.url + "/api", host: host, ["-X", "OPTIONS", "-H", "Origin: \(origin)",
                                                       "-H", "Access-Control-Request-Method: POST"])
    }

    func testAllowedPreflightIsAnsweredByTheGateway() throws {
        let (gw, app) = try start()
        for origin in ["https://shop.example", "https://admin.example.org", "https://eu.partner.example"] {
            let r = try preflight(gw, host: "cors.test", origin: origin)
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.header("access-control-allow-origin"), origin)
            XCTAssertEqual(r.header("access-control-allow-methods"), "GET,POST")
            XCTAssertEqual(r.header("access-control-allow-headers"), "x-custom,authorization")
            XCTAssertEqual(r.header("access-control-max-age"), "3600")
            XCTAssertEqual(r.header("access-control-allow-credentials"), "true")
        }
        usleep(100_000)
        XCTAssertEqual(app.requests, [], "allowed preflights never reach the upstream")
    }

    func testUnmatchedPreflightIsForwardedOrIgnored() throws {
        let (gw, app) = try start()
        let forwarded = try preflight(gw, host: "cors.test", origin: "https://evil.example")
        XCTAssertNil(forwarded.header("access-control-allow-origin"))
        XCTAssertEqual(forwarded.header("x-demo-upstream"), "app", "FORWARD (the default) passes it on")
        let ignored = try preflight(gw, host: "ignore.cors.test", origin: "https://evil.example")
        XCTAssertEqual(ignored.status, 200)
        XCTAssertNil(ignored.header("access-control-allow-origin"))
        XCTAssertNil(ignored.header("x-demo-upstream"), "IGNORE answers at the gateway")
        XCTAssertEqual(app.requests, ["app OPTIONS /api body=0"])
    }

    func testActualRequestsGetTheHeadersOnlyForAllowedOrigins() throws {
        let (gw, _) = try start()
        let ok = try harness.curl(gw.url + "/api", host: "cors.test", ["-H", "Origin: https://shop.example"])
        XCTAssertEqual(ok.status, 200)
        XCTAssertEqual(ok.header("access-control-allow-origin"), "https://shop.example")
        XCTAssertEqual(ok.header("access-control-allow-credentials"), "true")
        XCTAssertEqual(ok.header("access-control-expose-headers"), "x-demo-upstream")
        let other = try harness.curl(gw.url + "/api", host: "cors.test", ["-H", "Origin: https://evil.example"])
        XCTAssertEqual(other.status, 200)
        XCTAssertNil(other.header("access-control-allow-origin"))
        let none = try harness.curl(gw.url + "/api", host: "cors.test")
        XCTAssertNil(none.header("access-control-allow-origin"))
    }
}
