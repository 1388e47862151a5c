// The harness and the demo upstream on their own (no ingressd): what the other integration
// tests rely on — the echo format, bodies, keep-alive, test hooks, config rewriting, cleanup.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class HarnessTests: IntegrationTestCase {
    func testDemoUpstreamEchoesRequestAndNamesItself() throws {
        let upstream = try harness.startUpstream("echo")
        let url = "http://127.0.0.1:\(upstream.port)"
        let response = try harness.curl(url + "/a/b?c=d", host: "hipster.example.com",
                                        ["-H", "x-request-id: abc"])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("x-demo-upstream"), "echo")
        XCTAssertEqual(servedBy(response), "echo")
        XCTAssertTrue(response.text.contains("request: GET /a/b?c=d HTTP/1.1"), response.text)
        let headers = echoedHeaders(response)
        XCTAssertEqual(headers.first { $0.name == "host" }?.value, "hipster.example.com")
        XCTAssertEqual(headers.first { $0.name == "x-request-id" }?.value, "abc")
        XCTAssertEqual(upstream.requests, ["echo GET /a/b?c=d body=0"])
    }

    func testDemoUpstreamBodiesHooksAndKeepAlive() throws {
        let upstream = try harness.startUpstream("hooks")
        let url = "http://127.0.0.1:\(upstream.port)"
        let post = try harness.curl(url + "/p", ["--data-binary", "hello"])
        XCTAssertTrue(post.text.contains("body-bytes: 5\n"), post.text)
        let chunked = try harness.curl(url + "/p", ["-H", "Transfer-Encoding: chunked", "--data-binary", "abc"])
        XCTAssertTrue(chunked.text.contains("body-bytes: 3\n"), chunked.text)
        XCTAssertEqual(try harness.curl(url + "/status/503").status, 503)
        XCTAssertEqual(try harness.curl(url + "/bytes/100000").body.count, 100_000)
        // Hooks work behind a route's prefix.
        XCTAssertEqual(try harness.curl(url + "/kiali/status/404").status, 404)
        XCTAssertEqual(try harness.curl(url + "/jaeger/bytes/1000").body.count, 1000)
        let start = Date()
        XCTAssertEqual(try harness.curl(url + "/delay/300").status, 200)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.3)

        let keepAlive = try harness.run("curl", ["-s", "-w", "%{num_connects}\\n",
                                                 "-o", "/dev/null", url + "/1", "-o", "/dev/null", url + "/2"])
        XCTAssertEqual(keepAlive.stdout, "1\n0\n", "the second request reuses the connection")

        let raw = try RawHTTP.exchange(port: upstream.port, send: Array(
            "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        XCTAssertEqual(RawHTTP.statusCode(raw), 200)
    }

    func testGatewayPortRewriteTouchesOnlyGatewayServers() throws {
        for file in ["workshop/frontend-ingress.yaml", "workshop/addons-ingress.yaml", "canary/app-gateway.yaml"] {
            let text = try WorkshopConfig.example(file)
            let moved = try WorkshopConfig.movingGateway(text, to: 12345)
            XCTAssertTrue(moved.contains("- port:\n      number: 12345\n"), file)
            XCTAssertEqual(moved.components(separatedBy: "number: 80\n").count,
                           text.components(separatedBy: "number: 80\n").count - 1,
                           "\(file): one Gateway port changed, destination ports kept")
        }
    }

    func testShutdownStopsEveryProcessItStarted() throws {
        let upstream = try harness.startUpstream("victim")
        let sleeper = try harness.spawn("sh", "/bin/sh", ["-c", "sleep 60 & sleep 60; wait"])
        usleep(200_000)
        let tree = ProcFS.tree(of: sleeper.pid)
        XCTAssertGreaterThanOrEqual(tree.count, 2, "sh and its sleeps")
        harness.shutdown()
        XCTAssertFalse(upstream.child.isRunning)
        for pid in tree { XCTAssertFalse(ProcFS.isAlive(pid), "pid \(pid) still alive") }
    }

    func testFreePortIsBindable() throws {
        let port = try freeTCPPort()
        XCTAssertGreaterThan(port, 0)
        XCTAssertThrowsError(try RawHTTP.exchange(port: port, send: [], timeout: 1), "nothing listens there")
    }
}
