// The engine without a worker process: transport, HTTP/1.1 sessions and exchanges driven
// through scripted socket events and a clock the test moves (EngineHarness). Each test also
// checks that nothing leaks: exchanges are freed and connection slots come back.

@testable import Proxy
import RouteTable
import SharedMemory
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class EngineTests: XCTestCase {
    private let request = "GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n"
    private let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    func testForwardsARequestAndEndsTheExchange() throws {
        let h = try EngineHarness { oneRouteTable($0) }
        let client = h.connectClient()
        defer { close(client) }
        h.send(client, request)
        let up = h.acceptUpstream()
        XCTAssertGreaterThanOrEqual(up, 0)
        defer { close(up) }
        let head = h.readHead(up)
        XCTAssertTrue(head.hasPrefix("GET /a HTTP/1.1\r\nHost: app.test\r\n"), head)
        XCTAssertTrue(head.contains("x-forwarded-for: 127.0.0.1\r\n"), head)
        XCTAssertEqual(h.openExchanges, 1, "one request in flight")
        h.send(up, ok)
        let reply = h.read(client) { $0.hasSuffix("\r\n\r\nok") }
        XCTAssertTrue(reply.text.hasPrefix("HTTP/1.1 200 OK"), reply.text)
        XCTAssertFalse(reply.eof, "the client connection is kept alive")
        h.run(steps: 20) { h.openExchanges == 0 }
        XCTAssertEqual(h.openExchanges, 0, "the exchange ended with its response")
        XCTAssertEqual(h.openConnections, 2, "the client and the pooled upstream connection")
    }

    func testClientClosingWhileTheUpstreamWorksReleasesEverything() throws {
        let h = try EngineHarness { oneRouteTable($0) }
        let client = h.connectClient()
        h.send(client, request)
        let up = h.acceptUpstream()
        defer { close(up) }
        _ = h.readHead(up)
        close(client)
        let seen = h.read(up) { _ in false }
        XCTAssertTrue(seen.eof, "the upstream connection is closed with its client")
        h.run { h.openConnections == 0 }
        XCTAssertEqual(h.openExchanges, 0)
        XCTAssertEqual(h.openConnections, 0)
    }

    func testUpstreamClosingBeforeAnsweringIs503() throws {
        let h = try EngineHarness { oneRouteTable($0) }
        let client = h.connectClient()
        defer { close(client) }
        h.send(client, request)
        let up = h.acceptUpstream()
        _ = h.readHead(up)
        close(up)   // a reset is not retried by Istio's default policy
        let reply = h.read(client) { $0.contains("connection termination") }
        XCTAssertTrue(reply.text.hasPrefix("HTTP/1.1 503"), reply.text)
        h.run(steps: 20) { h.openExchanges == 0 }
        XCTAssertEqual(h.openExchanges, 0)
    }

    func testRouteTimeoutFiresOnTheEnginesClock() throws {
        let h = try EngineHarness { oneRouteTable($0, timeoutMs: 500) }
        let client = h.connectClient()
        defer { close(client) }
        h.send(client, request)
        let up = h.acceptUpstream()
        defer { close(up) }
        _ = h.readHead(up)
        h.advance(ms: 400)
        XCTAssertEqual(h.read(client, steps: 5) { !$0.isEmpty }.text, "", "not before 500 ms")
        h.advance(ms: 150)
        let reply = h.read(client) { $0.hasSuffix("upstream request timeout") }
        XCTAssertTrue(reply.text.hasPrefix("HTTP/1.1 504"), reply.text)
        XCTAssertTrue(h.read(up) { _ in false }.eof, "the timed-out upstream connection is closed")
        h.run(steps: 20) { h.openExchanges == 0 }
        XCTAssertEqual(h.openExchanges, 0)
    }

    func testConnectFailureIsRetriedOnTheOtherEndpoint() throws {
        let h = try EngineHarness(upstreams: 1, deadUpstreams: 1) { oneRouteTable($0) }
        let client = h.connectClient()
        defer { close(client) }
        var up: Int32 = -1
        defer { if up >= 0 { close(up) } }
        // Round robin alternates the live and the dead endpoint: two requests, both answered.
        for k in 0..<2 {
            h.send(client, "GET /r\(k) HTTP/1.1\r\nHost: app.test\r\n\r\n")
            if up < 0 { up = h.acceptUpstream() }
            let head = h.readHead(up)
            XCTAssertTrue(head.hasPrefix("GET /r\(k) "), "request \(k) reached the live endpoint: \(head)")
            h.send(up, ok)
            let reply = h.read(client) { $0.hasSuffix("\r\n\r\nok") }
            XCTAssertTrue(reply.text.hasPrefix("HTTP/1.1 200"), "request \(k): \(reply.text)")
        }
        XCTAssertEqual(h.engine.stats.clusterRecord(Int(h.engine.recorder.clusterRecords[0]))
                        .load(fromByteOffset: ClusterStats.rqRetry, as: UInt64.self), 1, "one retry")
    }

    func testStreamIdleTimeoutAnswers408ToAStalledBody() throws {
        var limits = ProxyLimits()
        limits.streamIdleTimeoutMs = 1_000
        let h = try EngineHarness(limits: limits) { oneRouteTable($0) }
        let client = h.connectClient()
        defer { close(client) }
        h.send(client, "POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: 10\r\n\r\nab")
        let up = h.acceptUpstream()
        defer { close(up) }
        _ = h.read(up) { $0.hasSuffix("ab") }
        h.advance(ms: 900)
        XCTAssertEqual(h.read(client, steps: 5) { !$0.isEmpty }.text, "")
        h.advance(ms: 200)
        let reply = h.read(client) { $0.hasSuffix("stream timeout") }
        XCTAssertTrue(reply.text.hasPrefix("HTTP/1.1 408"), reply.text)
        h.run { h.openConnections == 0 }
        XCTAssertEqual(h.openExchanges, 0)
    }
}
