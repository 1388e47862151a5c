// sd_notify for real (DESIGN.md §6): a Unix datagram socket stands in for systemd.

import Foundation
import XCTest

final class SystemdTests: IntegrationTestCase {
    /// Binds a datagram socket at `path`, returns its fd.
    private func bindNotifySocket(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw HarnessError("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw HarnessError("bind \(path): errno \(errno)") }
        return fd
    }

    /// Reads datagrams until one contains `needle` or `timeout` passes; returns every message seen.
    private func waitFor(_ fd: Int32, _ needle: String, timeout: TimeInterval) -> [String] {
        var seen: [String] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buf, buf.count, 0)
            guard n > 0 else { continue }
            let msg = String(decoding: buf[0..<n], as: UTF8.self)
            seen.append(msg)
            if msg.split(separator: "\n").contains(Substring(needle)) { return seen }
        }
        return seen
    }

    func testReadyReloadingStoppingAreNotified() throws {
        let socketPath = "/tmp/ingressd-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try bindNotifySocket(socketPath)
        defer { close(fd); unlink(socketPath) }

        let upstream = try harness.startUpstream("web")
        let port = try freeTCPPort()
        let adminPort = try freeTCPPort()
        let path = try harness.write("sd.yaml", ServiceGateway.config(port: port, services: [("web", [upstream.port])]))
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = socketPath
        let child = try harness.spawn("ingressd", Paths.ingressdBinary,
                                      ["run", "-c", path, "--workers", "2", "--admin", "127.0.0.1:\(adminPort)", "--bind", "127.0.0.1"],
                                      environment: env)
        let ready = waitFor(fd, "READY=1", timeout: 20)
        XCTAssertTrue(ready.last?.contains("READY=1") == true, "READY=1 once every worker accepts: \(ready)\n\(child.stderr)")

        child.signal(SIGHUP)
        let reloading = waitFor(fd, "RELOADING=1", timeout: 10)
        XCTAssertTrue(reloading.last?.contains("RELOADING=1") == true, "RELOADING=1 on SIGHUP: \(reloading)")
        XCTAssertTrue(reloading.last?.contains("MONOTONIC_USEC=") == true, "\(reloading)")
        let readyAgain = waitFor(fd, "READY=1", timeout: 10)
        XCTAssertTrue(readyAgain.last?.contains("READY=1") == true, "READY=1 after the reload: \(readyAgain)")

        child.signal(SIGTERM)
        let stopping = waitFor(fd, "STOPPING=1", timeout: 10)
        XCTAssertTrue(stopping.last?.contains("STOPPING=1") == true, "STOPPING=1 on SIGTERM: \(stopping)")
        XCTAssertTrue(child.wait(timeout: 40))
        XCTAssertEqual(child.process.terminationStatus, 0)
    }
}

final class DeployTests: IntegrationTestCase {
    private var root: String { Paths.packageRoot.path }

    /// `systemd-analyze verify` accepts the unit (ExecStart pointed at the built binary, since
    /// verify checks that executables exist).
    func testUnitPassesSystemdAnalyzeVerify() throws {
        let analyze = try Harness.requireTool("systemd-analyze", for: "verifying deploy/ingressd.service")
        let unit = try String(contentsOfFile: root + "/deploy/ingressd.service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/ingressd", with: Paths.ingressdBinary)
        let path = try harness.write("unit/ingressd.service", unit)
        let r = try harness.run(analyze, ["verify", path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(r.output.trimmingCharacters(in: .whitespacesAndNewlines), "", "no warnings: \(r.output)")
        for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "User=ingressd",
                     "AmbientCapabilities=CAP_NET_BIND_SERVICE", "LimitNOFILE=", "LimitMEMLOCK=", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "SystemCallFilter=@system-service @aio",
                     "--readiness 0.0.0.0:15021"] {
            XCTAssertTrue(unit.contains(line), "the unit sets \(line)")
        }
        // The syscall filter must still allow io_uring.
        let groups = try harness.run(analyze, ["syscall-filter", "@aio"])
        XCTAssertTrue(groups.stdout.contains("io_uring_setup") && groups.stdout.contains("io_uring_enter"), groups.output)
    }

    /// install.sh into a staging tree twice gives the same tree; uninstall removes it, twice.
    func testInstallAndUninstallAreIdempotent() throws {
        let stage = harness.path("stage")
        let env = ["DESTDIR": stage, "INGRESSD_BINARY": Paths.ingressdBinary, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        func install(_ args: [String]) throws -> CommandResult {
            let child = try harness.spawn("install", root + "/deploy/install.sh", args, environment: env)
            XCTAssertTrue(child.wait(timeout: 60))
            return CommandResult(status: child.process.terminationStatus, stdout: child.stdout, stderr: child.stderr, timedOut: false)
        }
        func tree() -> [String] {
            (FileManager.default.enumerator(atPath: stage)?.allObjects as? [String] ?? []).sorted()
        }
        let first = try install(["--no-build"])
        XCTAssertEqual(first.status, 0, first.output)
        let afterFirst = tree()
        for f in ["usr/local/bin/ingressd", "etc/systemd/system/ingressd.service", "etc/logrotate.d/ingressd",
                  "etc/ingressd/services.yaml"] {
            XCTAssertTrue(afterFirst.contains(f), "\(f) installed: \(afterFirst)")
        }
        let second = try install(["--no-build"])
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertEqual(tree(), afterFirst, "a second install changes nothing")
        XCTAssertEqual(try install(["--uninstall"]).status, 0)
        XCTAssertFalse(tree().contains("usr/local/bin/ingressd"))
        XCTAssertFalse(tree().contains("etc/systemd/system/ingressd.service"))
        XCTAssertTrue(tree().contains("etc/ingressd/services.yaml"), "configuration is kept without --purge")
        XCTAssertEqual(try install(["--uninstall", "--purge"]).status, 0)
        XCTAssertFalse(tree().contains("etc/ingressd"))
        XCTAssertEqual(try install(["--uninstall", "--purge"]).status, 0, "uninstalling twice is fine")
    }
}
