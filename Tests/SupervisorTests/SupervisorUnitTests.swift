import ConfigCompiler
import XCTest
@testable import Supervisor

/// Pure pieces of the supervisor: parsing, back-off arithmetic, the admin server's HTTP
/// framing, the worker command line. Process-level behaviour (spawn, reap, reload, drain) is
/// exercised against the real binary with Fixtures/fake-worker.py.
final class SupervisorUnitTests: XCTestCase {
    func testDurations() {
        XCTAssertEqual(parseDurationMs("30s"), 30_000)
        XCTAssertEqual(parseDurationMs("500ms"), 500)
        XCTAssertEqual(parseDurationMs("1m"), 60_000)
        XCTAssertEqual(parseDurationMs("1m30s"), 90_000)
        XCTAssertEqual(parseDurationMs("1.5s"), 1_500)
        XCTAssertEqual(parseDurationMs("2h"), 7_200_000)
        for bad in ["", "30", "s", "5x", "-1s", "1 s", "1.2.3s"] {
            XCTAssertNil(parseDurationMs(bad), bad)
        }
    }

    func testAddresses() {
        XCTAssertEqual(IPAddress(parsing: "127.0.0.1"), .v4([127, 0, 0, 1]))
        XCTAssertEqual(IPAddress(parsing: "::"), .anyV6)
        XCTAssertEqual(IPAddress(parsing: "[::1]")?.description, "::1")
        XCTAssertNil(IPAddress(parsing: "example.com"))
        XCTAssertNil(IPAddress(parsing: "300.1.1.1"))
        XCTAssertEqual(parseHostPort("127.0.0.1:15000").map { "\($0.0)|\($0.1)" }, "127.0.0.1|15000")
        XCTAssertEqual(parseHostPort("[::1]:0").map { $0.0.withPort($0.1) }, "[::1]:0")
        XCTAssertEqual(parseHostPort("localhost:9")?.0, .v4([127, 0, 0, 1]))
        XCTAssertNil(parseHostPort("::1:15000"), "IPv6 needs brackets")
        XCTAssertNil(parseHostPort("127.0.0.1"))
        XCTAssertNil(parseHostPort("127.0.0.1:70000"))
    }

    func testCrashLoopBackOff() {
        var g = CrashLoopGuard()
        let s: UInt64 = 1_000_000_000
        let ms: UInt64 = 1_000_000
        XCTAssertEqual(g.recordDeath(nowNs: 100 * s, livedNs: 50 * ms), 0)
        XCTAssertEqual(g.recordDeath(nowNs: 100 * s + 100 * ms, livedNs: 50 * ms), 0)
        XCTAssertEqual(g.recordDeath(nowNs: 100 * s + 200 * ms, livedNs: 50 * ms), 1 * s, "third death in 10 s")
        XCTAssertEqual(g.recordDeath(nowNs: 102 * s, livedNs: 50 * ms), 2 * s)
        XCTAssertEqual(g.recordDeath(nowNs: 104 * s, livedNs: 50 * ms), 4 * s)
        XCTAssertEqual(g.recordDeath(nowNs: 108 * s, livedNs: 50 * ms), 8 * s)
        XCTAssertEqual(g.recordDeath(nowNs: 116 * s, livedNs: 50 * ms), 16 * s)
        XCTAssertEqual(g.recordDeath(nowNs: 132 * s, livedNs: 50 * ms), 30 * s, "capped")
        XCTAssertEqual(g.recordDeath(nowNs: 162 * s, livedNs: 50 * ms), 30 * s, "still looping even though deaths are sparse")
        XCTAssertEqual(g.recordDeath(nowNs: 300 * s, livedNs: 60 * s), 0, "a worker that lived past the window ends the loop")
    }

    func testAdminFraming() {
        XCTAssertNil(AdminServer.headEnd(Array("GET / HTTP/1.1\r\nHost: x\r\n".utf8)))
        XCTAssertEqual(AdminServer.headEnd(Array("GET / HTTP/1.1\r\n\r\n".utf8)), 18)
        XCTAssertEqual(AdminServer.headEnd(Array("GET / HTTP/1.1\n\n".utf8)), 16)

        var seen: AdminRequest?
        let out = AdminServer.answer(head: Array("GET /workers?x=1 HTTP/1.1\r\nHost: a\r\n\r\n".utf8)) { r in
            seen = r
            return .json("{}")
        }
        XCTAssertEqual(seen?.path, "/workers")
        XCTAssertEqual(seen?.query, "x=1")
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 OK\r\n"), text)
        XCTAssertTrue(text.contains("content-length: 3\r\n"), text)
        XCTAssertTrue(text.hasSuffix("\r\n\r\n{}\n"), text)

        let head = String(decoding: AdminServer.answer(head: Array("HEAD /ready HTTP/1.1\r\n\r\n".utf8)) { _ in .text("LIVE\n") }, as: UTF8.self)
        XCTAssertTrue(head.contains("content-length: 5\r\n") && head.hasSuffix("\r\n\r\n"), "HEAD: length, no body")
        XCTAssertTrue(String(decoding: AdminServer.answer(head: Array("POST / HTTP/1.1\r\n\r\n".utf8)) { _ in .text("") }, as: UTF8.self).hasPrefix("HTTP/1.1 405"))
        XCTAssertTrue(String(decoding: AdminServer.answer(head: Array("garbage\r\n\r\n".utf8)) { _ in .text("") }, as: UTF8.self).hasPrefix("HTTP/1.1 400"))
    }

    func testJSONEscaping() {
        XCTAssertEqual(JSONText.string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"")
        XCTAssertEqual(JSONText.object([("a", "1"), ("b", JSONText.array(["2", "3"]))]), "{\"a\":1,\"b\":[2,3]}")
    }

    func testWorkerCommandLine() {
        var launch = WorkerLaunch(slot: 5, sharedMemoryFd: 101, listeners: [(110, 80), (111, 8080)],
                                  drainTimeoutMs: 30_000, logLevel: .info)
        XCTAssertEqual(launch.supervisorPid, getpid(), "the spawning process by default")
        launch.supervisorPid = 4242
        XCTAssertEqual(launch.arguments.joined(separator: " "),
                       "worker --index 5 --shm-fd 3 --listener 4:80 --listener 5:8080 --drain-timeout-ms 30000 --log-level info --supervisor-pid 4242")
    }

    func testLogLevels() {
        XCTAssertEqual(LogLevel(parsing: "WARN"), .warning)
        XCTAssertEqual(LogLevel(parsing: "3"), .debug)
        XCTAssertNil(LogLevel(parsing: "verbose"))
    }

    func testWaitStatusText() {
        XCTAssertEqual(describeWaitStatus(3 << 8), "exited with status 3")
        XCTAssertTrue(describeWaitStatus(9).hasPrefix("killed by signal 9"))
    }

    func testPipelineLoadsChecksAndRejects() throws {
        let dir = NSTemporaryDirectory() + "ingressd-sv-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata:
              name: gw
            spec:
              servers:
              - port:
                  number: 8443
                  name: http
                  protocol: HTTP
                hosts: ["*"]
            """.write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        guard case .valid(let c) = ConfigPipeline.load(paths: [dir], namespace: "default") else { return XCTFail("valid") }
        XCTAssertEqual(c.listenerPorts, [8443])
        guard case .invalid(let d) = ConfigPipeline.load(paths: [dir + "/missing.yaml"], namespace: "default") else { return XCTFail("invalid") }
        XCTAssertEqual(d.count, 1)
        XCTAssertEqual(ConfigPipeline.check(paths: [dir], namespace: "default").exitCode, 0)
    }
}
