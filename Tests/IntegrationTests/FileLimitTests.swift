// A worker at its open-file limit (README "Running as a service"): it must not spin re-arming a
// failing accept, it keeps serving the connections it has, and it accepts again once
// descriptors are free. ingressd runs under `prlimit --nofile=256:256` (soft = hard, so the
// supervisor's raise to the hard limit changes nothing).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// One client connection used for several requests in a row (keep-alive), read by
/// Content-Length or chunked framing.
final class KeepAliveConnection {
    let fd: Int32

    init(port: UInt16, timeout: TimeInterval = 5) throws {
        fd = try connectLoopback(port: port)
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// GET `path`; the status code of the response, 0 when none (closed or timed out).
    func get(_ path: String, host: String) -> Int {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n".utf8)
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return 0 }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        func more() -> Bool {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return false }
            data += buffer[..<n]
            return true
        }
        var headEnd: Int?
        while headEnd == nil {
            guard more() else { return 0 }
            if let r = data.firstRange(of: Array("\r\n\r\n".utf8)) { headEnd = r.upperBound }
        }
        let head = String(decoding: data[..<headEnd!], as: UTF8.self).lowercased()
        if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
           let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
            while data.count < headEnd! + length { guard more() else { return 0 } }
        } else if head.contains("transfer-encoding: chunked") {
            while data.firstRange(of: Array("\r\n0\r\n\r\n".utf8)) == nil { guard more() else { return 0 } }
        }
        return RawHTTP.statusCode(data) ?? 0
    }
}

/// A connected TCP socket to 127.0.0.1:port (blocking).
func connectLoopback(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        let e = errno
        close(fd)
        throw HarnessError("connect to port \(port): errno \(e)")
    }
    return fd
}

/// utime + stime of `pid` in clock ticks (/proc/PID/stat fields 14 and 15).
func cpuTicks(_ pid: pid_t) -> Int? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
    return user + system
}

final class FileLimitTests: IntegrationTestCase {
    /// Starts ingressd (one worker) under `prlimit --nofile=SOFT:HARD`.
    private func startLimited(_ nofile: String) throws -> (Ingressd, UInt16) {
        let prlimit = try Harness.requireTool("prlimit", for: "running ingressd under a low open-file limit")
        let upstream = try harness.startUpstream("web")
        let port = try freeTCPPort()
        let config = try harness.write("svc.yaml", ServiceGateway.config(port: port, services: [("web", [upstream.port])]))
        let wrapper = try harness.write("limited.sh", """
            #!/bin/sh
            exec '\(prlimit)' --nofile=\(nofile) '\(Paths.ingressdBinary)' "$@"

            """)
        chmod(wrapper, 0o755)
        let realBinary = Paths.ingressdBinary
        setenv("INGRESSD_BIN", wrapper, 1)
        defer { setenv("INGRESSD_BIN", realBinary, 1) }
        return (try harness.startIngressd(configs: [config], listenPort: port, workers: 1), port)
    }

    /// "Max open files  SOFT  HARD  files" of /proc/PID/limits.
    private func openFileLimits(_ pid: pid_t) -> [String] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)) ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") }) else { return [] }
        return line.dropFirst("Max open files".count).split(separator: " ").map(String.init)
    }

    /// The supervisor raises the soft limit to the hard one, and workers inherit it.
    func testSoftLimitIsRaisedToTheHardLimit() throws {
        let (gateway, _) = try startLimited("1024:4096")
        guard let worker = gateway.workerPids.first else { return XCTFail("no worker") }
        XCTAssertEqual(openFileLimits(gateway.pid).prefix(2), ["4096", "4096"])
        XCTAssertEqual(openFileLimits(worker).prefix(2), ["4096", "4096"], "the worker inherits the raised limit")
        XCTAssertTrue(gateway.child.stderr.contains("open-file limit raised from 1024 to 4096"), gateway.outputTail)
    }

    /// A hard limit too low to work with is a clear start-up error (exit 3), not EINVAL.
    func testTooLowALimitIsAClearStartupError() throws {
        let prlimit = try Harness.requireTool("prlimit", for: "running ingressd under a low open-file limit")
        let port = try freeTCPPort()
        let config = try harness.write("svc.yaml", ServiceGateway.config(port: port, services: [("web", [8080])]))
        let r = try harness.run(prlimit, ["--nofile=64:64", Paths.ingressdBinary, "run", "-c", config, "--workers", "1",
                                          "--admin", "127.0.0.1:\(try freeTCPPort())", "--bind", "127.0.0.1"], timeout: 20)
        XCTAssertEqual(r.status, 3, r.output)
        XCTAssertTrue(r.output.contains("the open-file limit is 64 (hard limit); ingressd needs at least 256"), r.output)
    }

    func testWorkerAtItsFileLimitPausesAcceptingAndKeepsServing() throws {
        let (gateway, port) = try startLimited("256:256")
        guard let worker = gateway.workerPids.first else { return XCTFail("no worker") }
        XCTAssertEqual(openFileLimits(worker).prefix(2), ["256", "256"], "the worker runs with 256 descriptors")

        // A keep-alive client with a pooled upstream connection, before the limit is reached.
        let client = try KeepAliveConnection(port: port)
        XCTAssertEqual(client.get("/", host: "web.test"), 200)

        // More connections than the worker has descriptors: the rest wait in the backlog.
        var flood: [Int32] = []
        defer { for fd in flood { close(fd) } }
        for _ in 0..<300 { flood.append(try connectLoopback(port: port)) }
        let logged = Date().addingTimeInterval(5)
        while Date() < logged && !gateway.child.stderr.contains("accept failed") { usleep(50_000) }
        XCTAssertTrue(gateway.child.stderr.contains("accept failed"), "the worker reached its limit and said so:\n\(gateway.outputTail)")

        // At the limit the worker idles instead of spinning on the failing accept.
        let before = cpuTicks(worker) ?? 0
        usleep(2_000_000)
        let used = (cpuTicks(worker) ?? 0) - before
        let hz = sysconf(Int32(_SC_CLK_TCK))
        print("worker CPU at its descriptor limit: \(used) ticks of 1/\(hz) s in 2 s")
        XCTAssertLessThan(used, Int(hz) * 3 / 10, "under 0.3 s of CPU in 2 s at the limit (it spun at 100 % before)")

        // Connections it has are still served.
        for _ in 0..<3 { XCTAssertEqual(client.get("/", host: "web.test"), 200, "the open keep-alive connection is served") }

        // Freeing descriptors lets it accept again (queued connections first, then a new one).
        for fd in flood { close(fd) }
        flood.removeAll()
        let fresh = try harness.curl(gateway.url + "/", host: "web.test", timeout: 10)
        XCTAssertEqual(fresh.status, 200, "a new connection is accepted once descriptors are free: \(fresh.curlStderr)")
        let lines = gateway.child.stderr.components(separatedBy: "accept failed").count - 1
        XCTAssertLessThanOrEqual(lines, 2, "the failure is logged once per interval, not per retry:\n\(gateway.outputTail)")
    }
}
