// The integration-test harness: runs the real `ingressd` binary against demo upstreams and real
// clients (curl, wrk), on free loopback ports, and stops every process it started.
//
// One `Harness` per test: create it in setUp, call `shutdown()` in tearDown. Everything it writes
// (config files, logs) lives in one temporary directory, removed on shutdown unless the test
// failed (then its path is printed, with the tail of ingressd's output).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Errors of the harness itself (not of the code under test).
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum Paths {
    /// The package root, found from this file's path: Tests/IntegrationTests/Support/Harness.swift.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // IntegrationTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static let bulkUpstream: String = packageRoot.appendingPathComponent("examples/upstreams/bulk_upstream.py").path
    static let demoUpstream: String =
        packageRoot.appendingPathComponent("examples/upstreams/demo_upstream.py").path

    static func example(_ relative: String) -> URL {
        packageRoot.appendingPathComponent("examples").appendingPathComponent(relative)
    }

    /// `INGRESSD_BIN` if set, else `.build/debug/ingressd` under the package root.
    static var ingressdBinary: String {
        if let bin = ProcessInfo.processInfo.environment["INGRESSD_BIN"], !bin.isEmpty {
            return bin
        }
        return packageRoot.appendingPathComponent(".build/debug/ingressd").path
    }

    /// The full path of `name` on PATH, or nil.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

/// The result of a finished command.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var timedOut: Bool
    var output: String { stdout + stderr }
}

/// A child process whose output goes to files in the harness directory.
final class Child {
    let name: String
    let process: Process
    let stdoutPath: String
    let stderrPath: String

    init(name: String, process: Process, stdoutPath: String, stderrPath: String) {
        self.name = name
        self.process = process
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
    }

    var pid: pid_t { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { if process.isRunning { kill(pid, sig) } }

    /// Waits until the process exits; false on timeout.
    @discardableResult
    func wait(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// Exit status when it exited normally; nil while running or when killed by a signal.
    var exitStatus: Int32? {
        guard !process.isRunning, process.terminationReason == .exit else { return nil }
        return process.terminationStatus
    }
}

/// Process-tree helpers reading /proc.
enum ProcFS {
    /// Pids whose parent is `parent`.
    static func children(of parent: pid_t) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var result: [pid_t] = []
        for entry in entries {
            guard let pid = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // Fields after "(comm)": state ppid ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, pid_t(fields[1]) == parent { result.append(pid) }
        }
        return result.sorted()
    }

    /// `parent` and all its descendants, parents first.
    static func tree(of parent: pid_t) -> [pid_t] {
        var result = [parent]
        var index = 0
        while index < result.count {
            result.append(contentsOf: children(of: result[index]))
            index += 1
        }
        return result
    }

    static func isAlive(_ pid: pid_t) -> Bool {
        // A zombie still answers kill(0); look at its state too.
        guard kill(pid, 0) == 0 else { return false }
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            return !stat[stat.index(after: close)...].hasPrefix(" Z")
        }
        return true
    }
}

/// A TCP port that was free a moment ago (bound to port 0 on 127.0.0.1, then closed).
/// Ports handed out recently by `freeTCPPort` in this process: the kernel may offer a port
/// that was just probed again (it is free until someone binds it), and a test that asks for a
/// listener port and then an admin port must not get the same one twice.
nonisolated(unsafe) private var recentFreePorts: [UInt16] = []

func freeTCPPort() throws -> UInt16 {
    for _ in 0..<64 {
        let port = try probeFreeTCPPort()
        if recentFreePorts.contains(port) { continue }
        recentFreePorts.append(port)
        if recentFreePorts.count > 256 { recentFreePorts.removeFirst(recentFreePorts.count - 256) }
        return port
    }
    throw HarnessError("no fresh free port after 64 tries")
}

private func probeFreeTCPPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) { ptr in
        ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> Int32 in
            guard bind(fd, sa, len) == 0 else { return -1 }
            return getsockname(fd, sa, &len)
        }
    }
    guard bound == 0 else { throw HarnessError("bind/getsockname: errno \(errno)") }
    return UInt16(bigEndian: addr.sin_port)
}

/// One harness per test.
final class Harness {
    let dir: URL
    private var children: [Child] = []
    private var counter = 0

    init() throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory())
        dir = base.appendingPathComponent("ingressd-it-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    // MARK: files

    /// Writes `contents` to DIR/name and returns the absolute path.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(),
                                                withIntermediateDirectories: true)
        try contents.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    // MARK: processes

    /// Starts `executable args` in the background, output to files in the harness directory.
    func spawn(_ name: String, _ executable: String, _ args: [String],
               environment: [String: String]? = nil) throws -> Child {
        counter += 1
        let out = path("\(counter)-\(name).out")
        let err = path("\(counter)-\(name).err")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        let outHandle = FileHandle(forWritingAtPath: out)
        let errHandle = FileHandle(forWritingAtPath: err)
        process.standardOutput = outHandle
        process.standardError = errHandle
        // The child writes to its own copies (dup2 at spawn). Ours are closed here: left to
        // Foundation (Linux), they stayed open after the child exited and the Child was dropped,
        // two descriptors per spawn, past 1000 before the suite ended, until the test process
        // hit a 1024 open-file limit and a `try!` trapped (SIGILL: the whole run lost).
        defer {
            try? outHandle?.close()
            try? errHandle?.close()
        }
        try process.run()
        let child = Child(name: name, process: process, stdoutPath: out, stderrPath: err)
        children.append(child)
        return child
    }

    /// Runs a command to completion (or `timeout`, then kills it) and returns its output.
    func run(_ executable: String, _ args: [String], timeout: TimeInterval = 30) throws -> CommandResult {
        let exe = executable.hasPrefix("/") ? executable : (Paths.which(executable) ?? executable)
        let child = try spawn(URL(fileURLWithPath: exe).lastPathComponent, exe, args)
        let finished = child.wait(timeout: timeout)
        if !finished {
            child.signal(SIGKILL)
            child.wait(timeout: 5)
        }
        children.removeAll { $0 === child }
        return CommandResult(status: child.process.isRunning ? -1 : child.process.terminationStatus,
                             stdout: child.stdout, stderr: child.stderr, timedOut: !finished)
    }

    /// Stops every process this harness started, with their descendants (ingressd's workers):
    /// SIGTERM, a grace period, then SIGKILL. Idempotent.
    func shutdown(keepDirectory: Bool = false) {
        // Newest first: ingressd before the upstreams it talks to.
        for child in children.reversed() where child.isRunning {
            let tree = ProcFS.tree(of: child.pid)
            child.signal(SIGTERM)
            if !child.wait(timeout: 3) {
                for pid in tree where ProcFS.isAlive(pid) { kill(pid, SIGKILL) }
                child.wait(timeout: 3)
            }
            // Workers die with their supervisor (PR_SET_PDEATHSIG); make sure of it.
            for pid in tree.dropFirst() where ProcFS.isAlive(pid) { kill(pid, SIGKILL) }
        }
        children.removeAll()
        if !keepDirectory { try? FileManager.default.removeItem(at: dir) }
    }

    // MARK: demo upstreams

    /// Starts a helper server whose first stdout line ends in ":PORT" (the demo and bulk
    /// upstreams print "NAME listening on ADDR:PORT") and returns it with that port.
    /// `python`: the interpreter (Debian's /usr/bin/python3 for servers that need a Debian
    /// package such as python3-grpcio; by default the `python3` on PATH).
    func startPortPrintingServer(_ name: String, _ args: [String], python: String? = nil) throws -> (child: Child, port: UInt16) {
        let child = try spawn(name, python ?? Paths.which("python3") ?? "/usr/bin/python3", args)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let line = child.stdout.split(separator: "\n").first,
               let portText = line.split(separator: ":").last, let port = UInt16(portText) {
                return (child, port)
            }
            guard child.isRunning else { break }
            usleep(20_000)
        }
        throw HarnessError("\(name) did not start: \(args.joined(separator: " "))\n\(child.stderr)")
    }

    /// Starts examples/upstreams/demo_upstream.py on a free port (it binds port 0 and says which).
    func startUpstream(_ name: String) throws -> DemoUpstream {
        let log = path("upstream-\(name).log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let (child, port) = try startPortPrintingServer(
            "upstream-\(name)", [Paths.demoUpstream, "--name", name, "--port", "0", "--log", log, "--quiet"])
        return DemoUpstream(name: name, port: port, child: child, logPath: log)
    }

    /// Starts examples/upstreams/bulk_upstream.py (`tcp ...` or `http ...`); returns its port.
    func startBulkUpstream(_ args: [String]) throws -> UInt16 {
        try startPortPrintingServer("bulk-\(args[0])", [Paths.bulkUpstream] + args).port
    }

    // MARK: ingressd

    /// Starts `ingressd run -c CONFIG... --workers 2 --admin 127.0.0.1:FREE --bind 127.0.0.1`
    /// and waits until /ready answers 200. Throws (with ingressd's output) when it exits or is
    /// not ready in time.
    /// `environment`: variables added to the test's own (the INGRESSD_* tuning knobs).
    func startIngressd(configs: [String], listenPort: UInt16, workers: Int = 2,
                       extraArgs: [String] = [], environment: [String: String] = [:],
                       readyTimeout: TimeInterval = 20) throws -> Ingressd {
        let binary = Paths.ingressdBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError("ingressd binary not found at \(binary): run `swift build` or set INGRESSD_BIN")
        }
        let adminPort = try freeTCPPort()
        var args = ["run"]
        for config in configs { args += ["-c", config] }
        args += ["--workers", String(workers), "--admin", "127.0.0.1:\(adminPort)", "--bind", "127.0.0.1"]
        args += extraArgs
        let env = environment.isEmpty ? nil
            : ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let child = try spawn("ingressd", binary, args, environment: env)
        let ingressd = Ingressd(child: child, adminPort: adminPort, listenPort: listenPort)
        let deadline = Date().addingTimeInterval(readyTimeout)
        while Date() < deadline {
            if ingressd.readyStatus() == 200 { return ingressd }
            guard child.isRunning else {
                throw HarnessError("ingressd exited (\(child.process.terminationStatus)) before ready: "
                                   + "\(args.joined(separator: " "))\n\(child.stdout)\(child.stderr)")
            }
            usleep(50_000)
        }
        throw HarnessError("ingressd not ready after \(readyTimeout)s: \(args.joined(separator: " "))\n"
                           + "\(child.stdout)\(child.stderr)")
    }

    // MARK: curl

    /// One request with curl. `host` sets the Host header; `extra` are further curl arguments.
    func curl(_ url: String, host: String? = nil, _ extra: [String] = [],
              timeout: TimeInterval = 20) throws -> HTTPResponse {
        counter += 1
        let bodyPath = path("\(counter)-curl.body")
        let headerPath = path("\(counter)-curl.headers")
        var args = ["-s", "-S", "-o", bodyPath, "-D", headerPath, "-w", "%{http_code}",
                    "--max-time", String(Int(timeout))]
        if let host { args += ["-H", "Host: \(host)"] }
        args += extra
        args.append(url)
        let result = try run("curl", args, timeout: timeout + 5)
        let body = (try? Data(contentsOf: URL(fileURLWithPath: bodyPath))) ?? Data()
        let headerText = (try? String(contentsOfFile: headerPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: bodyPath)
        try? FileManager.default.removeItem(atPath: headerPath)
        return HTTPResponse(curlExit: result.status, status: Int(result.stdout.trimmingCharacters(in: .whitespaces)) ?? 0,
                            headers: HTTPResponse.parseHeaders(headerText), body: body, curlStderr: result.stderr)
    }

    /// Hex SHA-256 of `data` (sha256sum; the tests use no crypto library).
    func sha256Hex(_ data: Data) -> String {
        let path = path("sha-input")
        try? data.write(to: URL(fileURLWithPath: path))
        let r = try? run("sha256sum", [path])
        return String(r?.stdout.prefix(64) ?? "")
    }

    /// Whether wrk is installed; tests that need it skip otherwise.
    static func requireTool(_ name: String, for purpose: String) throws -> String {
        guard let path = Paths.which(name) else {
            throw XCTSkip("\(name) is not installed (needed for \(purpose)); `make test` installs it")
        }
        return path
    }
}

/// A response as curl saw it.
struct HTTPResponse {
    var curlExit: Int32
    var status: Int
    /// Header fields of the final response (after any 100 Continue), names lowercased.
    var headers: [(name: String, value: String)]
    var body: Data
    var curlStderr: String

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.name == name.lowercased() }?.value
    }

    static func parseHeaders(_ text: String) -> [(name: String, value: String)] {
        // -D writes every response head (100 Continue, then the final one); keep the last.
        let blocks = text.replacingOccurrences(of: "\r\n", with: "\n")
            .components(separatedBy: "\n\n").filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        guard let last = blocks.last else { return [] }
        return last.split(separator: "\n").dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]).lowercased(),
                    String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
    }
}

/// A running demo upstream (examples/upstreams/demo_upstream.py).
final class DemoUpstream {
    let name: String
    let port: UInt16
    let child: Child
    let logPath: String

    init(name: String, port: UInt16, child: Child, logPath: String) {
        self.name = name
        self.port = port
        self.child = child
        self.logPath = logPath
    }

    /// One line per request it received: "NAME METHOD PATH body=N".
    var requests: [String] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
    }
}

/// A running `ingressd run`.
final class Ingressd {
    let child: Child
    let adminPort: UInt16
    let listenPort: UInt16

    init(child: Child, adminPort: UInt16, listenPort: UInt16) {
        self.child = child
        self.adminPort = adminPort
        self.listenPort = listenPort
    }

    var pid: pid_t { child.pid }
    var url: String { "http://127.0.0.1:\(listenPort)" }
    var adminURL: String { "http://127.0.0.1:\(adminPort)" }

    /// The worker processes (the supervisor's children).
    var workerPids: [pid_t] { ProcFS.children(of: pid) }

    /// Status of GET /ready on the admin port, 0 when it does not answer.
    func readyStatus() -> Int {
        let request = "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        guard let reply = try? RawHTTP.exchange(port: adminPort, send: Array(request.utf8), timeout: 2) else {
            return 0
        }
        return RawHTTP.statusCode(reply) ?? 0
    }

    /// The last lines of its output, for failure messages.
    var outputTail: String {
        let all = child.stdout + child.stderr
        return all.split(separator: "\n", omittingEmptySubsequences: false).suffix(40).joined(separator: "\n")
    }
}

/// A raw TCP exchange, for requests curl will not send (smuggling) and for polling /ready.
enum RawHTTP {
    /// Connects to 127.0.0.1:port, sends `send`, and reads until the peer closes or `timeout`
    /// passes without data. Returns what was read.
    static func exchange(port: UInt16, send bytes: [UInt8], timeout: TimeInterval = 5) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: __suseconds_t((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw HarnessError("connect to port \(port): errno \(errno)") }
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the peer may close early (that is what some tests expect)
            sent += n
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }  // EOF, reset, or timeout
            reply.append(contentsOf: buffer[..<n])
        }
        return reply
    }

    /// The status code of the first response in `reply` ("HTTP/1.1 200 ..."), or nil.
    static func statusCode(_ reply: [UInt8]) -> Int? {
        let head = String(decoding: reply.prefix(64), as: UTF8.self)
        let parts = head.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1.") else { return nil }
        return Int(parts[1])
    }
}

/// VmRSS of process `pid` in KiB (/proc/PID/status).
func vmRSSKiB(_ pid: pid_t) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else {
        throw HarnessError("no VmRSS for \(pid)")
    }
    return kib
}
