// The admin endpoint under abuse by local users (DESIGN.md §4 `--readiness`, §7): idle
// connections cannot hold readiness down, a slow request head is cut off, and `--readiness`
// serves /healthz/ready on its own listener.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class AdminLimitsTests: IntegrationTestCase {
    private func startGateway(extraArgs: [String] = []) throws -> Ingressd {
        let upstream = try harness.startUpstream("web")
        let port = try freeTCPPort()
        let config = try harness.write("svc.yaml", ServiceGateway.config(port: port, services: [("web", [upstream.port])]))
        return try harness.startIngressd(configs: [config], listenPort: port, workers: 1, extraArgs: extraArgs)
    }

    private func get(_ port: UInt16, _ path: String) -> (status: Int, body: String) {
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        guard let reply = try? RawHTTP.exchange(port: port, send: Array(request.utf8), timeout: 2) else { return (0, "") }
        let text = String(decoding: reply, as: UTF8.self)
        return (RawHTTP.statusCode(reply) ?? 0, text.components(separatedBy: "\r\n\r\n").dropFirst().joined())
    }

    /// 200 idle connections to the admin port, then /ready there (the oldest idle ones are
    /// evicted for it) and /healthz/ready on the readiness port both answer 200.
    func testIdleConnectionsCannotHoldReadinessDown() throws {
        let readinessPort = try freeTCPPort()
        let gateway = try startGateway(extraArgs: ["--readiness", "127.0.0.1:\(readinessPort)"])
        XCTAssertTrue(gateway.child.stderr.contains("readiness endpoint on http://127.0.0.1:\(readinessPort)/healthz/ready"),
                      gateway.outputTail)

        var idle: [Int32] = []
        defer { for fd in idle { close(fd) } }
        for _ in 0..<200 { idle.append(try connectLoopback(port: gateway.adminPort)) }
        for _ in 0..<200 { idle.append(try connectLoopback(port: readinessPort)) }
        usleep(300_000)   // the supervisor has accepted (and evicted) them all

        XCTAssertEqual(get(gateway.adminPort, "/ready").status, 200, "/ready on the admin port with 200 idle connections")
        let ready = get(readinessPort, "/healthz/ready")
        XCTAssertEqual(ready.status, 200, "/healthz/ready on the readiness port")
        XCTAssertEqual(ready.body, "LIVE\n")
        XCTAssertEqual(get(readinessPort, "/stats").status, 404, "the readiness port serves readiness alone")
        XCTAssertEqual(get(readinessPort, "/ready").status, 404)

        usleep(300_000)
        let lines = gateway.child.stderr.split(separator: "\n").filter { $0.contains("closed to make room") }
        XCTAssertGreaterThanOrEqual(lines.count, 1, "evictions are logged:\n\(gateway.outputTail)")
        XCTAssertLessThanOrEqual(lines.count, 2, "once per interval and port, not per connection:\n\(gateway.outputTail)")
    }

    /// Probes while another client opens idle connections as fast as it can: every probe is
    /// answered (new connections are read as soon as they are accepted, so a probe is served
    /// before the burst around it could make it the oldest waiting one and evict it).
    func testProbesAreAnsweredDuringAConnectionBurst() throws {
        let gateway = try startGateway()
        let port = gateway.adminPort
        let script = try harness.write("burst.py", """
            import socket, sys, time
            held, end = [], time.time() + float(sys.argv[2])
            while time.time() < end:
                try:
                    held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
                except OSError:
                    pass
                if len(held) > 400:
                    for s in held[:200]: s.close()
                    del held[:200]

            """)
        let bursts = try (0..<3).map { k in
            try harness.spawn("burst-\(k)", Paths.which("python3") ?? "/usr/bin/python3", [script, String(port), "4"])
        }
        usleep(500_000)
        var statuses: [Int] = []
        for _ in 0..<50 {
            statuses.append(get(port, "/ready").status)
            usleep(10_000)
        }
        XCTAssertTrue(bursts.allSatisfy { $0.isRunning }, "the bursts lasted through the probes")
        for b in bursts { b.wait(timeout: 10) }
        XCTAssertEqual(statuses.filter { $0 != 200 }.count, 0, "every probe answered: \(statuses)")
    }

    /// A request head that trickles in byte by byte is cut off after the head timeout (3 s).
    func testSlowLorisAdminConnectionIsClosedAfterTheHeadTimeout() throws {
        let gateway = try startGateway()
        let fd = try connectLoopback(port: gateway.adminPort)
        defer { close(fd) }
        let started = Date()
        var closedAfter: TimeInterval?
        let head = Array("GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8)
        for byte in head {
            var b = byte
            if send(fd, &b, 1, Int32(MSG_NOSIGNAL)) != 1 { closedAfter = Date().timeIntervalSince(started); break }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 250) > 0 {
                var buf = [UInt8](repeating: 0, count: 512)
                if recv(fd, &buf, buf.count, 0) <= 0 { closedAfter = Date().timeIntervalSince(started); break }
            }
            if Date().timeIntervalSince(started) > 9 { break }
        }
        guard let after = closedAfter else { return XCTFail("the slow connection was still open after 9 s") }
        print("slow-loris admin connection closed after \(String(format: "%.2f", after)) s")
        XCTAssertGreaterThanOrEqual(after, 2.5, "not before the head timeout")
        XCTAssertLessThan(after, 4.5, "within the 3 s head timeout (plus the 100 ms tick)")
        XCTAssertEqual(gateway.readyStatus(), 200)
    }

    func testReadinessFlagIsCheckedAndItsPortMustBeFree() throws {
        let port = try freeTCPPort()
        let config = try harness.write("svc.yaml", ServiceGateway.config(port: port, services: [("web", [8080])]))
        let base = ["run", "-c", config, "--workers", "1", "--bind", "127.0.0.1", "--admin", "127.0.0.1:\(try freeTCPPort())"]
        let bad = try harness.run(Paths.ingressdBinary, base + ["--readiness", "15021"], timeout: 20)
        XCTAssertEqual(bad.status, 2, bad.output)
        XCTAssertTrue(bad.output.contains("--readiness 15021: expected ADDR:PORT"), bad.output)

        let taken = try freeTCPPort()
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = taken.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(listen(holder, 1), 0)
        let busy = try harness.run(Paths.ingressdBinary, base + ["--readiness", "127.0.0.1:\(taken)"], timeout: 20)
        XCTAssertEqual(busy.status, 3, busy.output)
        XCTAssertTrue(busy.output.contains("cannot listen on readiness port \(taken)"), busy.output)
    }
}
