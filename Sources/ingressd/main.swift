// The ingressd command line (DESIGN.md §4, a contract): run, check, routes, version, and the
// hidden `worker` and `resolve` modes that the supervisor execs. Parsing and checking only;
// the work lives in Supervisor (run), ConfigPipeline (check, routes) and Worker (worker).
//
// Exit codes: 0 success, 1 invalid configuration, 2 bad command line, 3 cannot start.
// ArgumentParser exits 64 (EX_USAGE) for usage errors; `main` below maps that to 2.

#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Supervisor
import Worker

struct Ingressd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingressd",
        abstract: "An Istio-compatible ingress gateway.",
        subcommands: [Run.self, Check.self, Routes.self, Version.self, WorkerCommand.self, ResolveCommand.self])

    func run() throws {
        // A bare `ingressd` is a usage error, not a request for help.
        throw ValidationError("missing command: run, check, routes or version")
    }
}

/// Options shared by run, check and routes.
struct ConfigOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("config")],
            help: ArgumentHelp("A YAML file or a directory of *.yaml/*.yml files (repeatable).", valueName: "path"))
    var paths: [String] = []

    @Option(help: "Namespace of resources that do not name one.")
    var namespace: String = "default"

    @Option(name: .customLong("credentials-dir"),
            help: ArgumentHelp("Where tls.credentialName NAME is found: DIR/NAME/tls.crt, tls.key, ca.crt (or DIR/NAME-cacert/ca.crt).",
                               valueName: "dir"))
    var credentialsDir: String = "/etc/ingressd/credentials"

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("at least one -c PATH is required") }
        guard !namespace.isEmpty else { throw ValidationError("--namespace must not be empty") }
        guard !credentialsDir.isEmpty else { throw ValidationError("--credentials-dir must not be empty") }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the configuration (supervisor and workers).")

    @OptionGroup var config: ConfigOptions

    @Option(help: ArgumentHelp("Worker processes: auto (online CPUs) or a number.", valueName: "auto|N"))
    var workers: String = "auto"

    @Option(help: ArgumentHelp("Address the Gateway ports listen on (default: all, IPv4 and IPv6).", valueName: "addr"))
    var bind: String?

    @Option(help: ArgumentHelp("Admin endpoint.", valueName: "addr:port"))
    var admin: String = "127.0.0.1:15000"

    @Option(help: ArgumentHelp("GET /healthz/ready alone on its own listener (Istio: 0.0.0.0:15021), or off.", valueName: "addr:port|off"))
    var readiness: String = "off"

    @Flag(help: "Reload when the configuration files change.")
    var watch = false

    @Option(name: .customLong("access-log"), help: ArgumentHelp("Access log: a path, - (stdout) or off.", valueName: "path|-|off"))
    var accessLog: String = "off"

    @Option(name: .customLong("log-level"), help: ArgumentHelp("error, warning, info or debug.", valueName: "level"))
    var logLevel: String = "info"

    @Option(name: .customLong("drain-timeout"), help: ArgumentHelp("How long a drain may take (e.g. 30s, 500ms, 1m).", valueName: "duration"))
    var drainTimeout: String = "30s"

    @Option(name: .customLong("header-timeout"), help: ArgumentHelp("A request head must arrive within this (408 after).", valueName: "duration"))
    var headerTimeout: String = "10s"

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("Idle keep-alive connections close after this.", valueName: "duration"))
    var idleTimeout: String = "60s"

    @Option(name: .customLong("stream-idle-timeout"), help: ArgumentHelp("A request with no byte moving either way for this long ends (Envoy's stream_idle_timeout: 408 before the response, else reset); 0 = never.", valueName: "duration"))
    var streamIdleTimeout: String = "5m"

    @Option(name: .customLong("http2-max-concurrent-streams"), help: ArgumentHelp("Streams an HTTP/2 client may have open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS; more are refused), 1 to 1000.", valueName: "n"))
    var http2MaxConcurrentStreams: Int = 100

    func validate() throws {
        _ = try parsedWorkers()
        if let b = bind, IPAddress(parsing: b) == nil {
            throw ValidationError("--bind \(b): not an IPv4 or IPv6 address")
        }
        guard parseHostPort(admin) != nil else {
            throw ValidationError("--admin \(admin): expected ADDR:PORT (127.0.0.1:15000, [::1]:15000, localhost:15000)")
        }
        if readiness != "off" {
            guard parseHostPort(readiness) != nil else {
                throw ValidationError("--readiness \(readiness): expected ADDR:PORT (0.0.0.0:15021, [::]:15021) or off")
            }
        }
        guard LogLevel(parsing: logLevel) != nil else {
            throw ValidationError("--log-level \(logLevel): expected error, warning, info or debug")
        }
        guard parseDurationMs(drainTimeout) != nil else {
            throw ValidationError("--drain-timeout \(drainTimeout): expected a duration like 30s, 500ms or 1m")
        }
        guard !accessLog.isEmpty else { throw ValidationError("--access-log: expected a path, - or off") }
        for (flag, value) in [("--header-timeout", headerTimeout), ("--idle-timeout", idleTimeout)] {
            guard let ms = parseDurationMs(value), ms > 0 else {
                throw ValidationError("\(flag) \(value): expected a positive duration like 10s, 500ms or 1m")
            }
        }
        guard parseDurationMs(streamIdleTimeout) != nil else {
            throw ValidationError("--stream-idle-timeout \(streamIdleTimeout): expected a duration like 5m, 30s or 0 (never)")
        }
        guard (1...1000).contains(http2MaxConcurrentStreams) else {
            throw ValidationError("--http2-max-concurrent-streams \(http2MaxConcurrentStreams): expected a number from 1 to 1000")
        }
    }

    func parsedWorkers() throws -> Int {
        if workers == "auto" { return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
        // 1024: far beyond any core count we run on; a typo (10000) should not fork-bomb.
        guard let n = Int(workers), n >= 1, n <= 1024 else {
            throw ValidationError("--workers \(workers): expected auto or a number from 1 to 1024")
        }
        return n
    }

    func run() throws {
        let (adminAddress, adminPort) = parseHostPort(admin)!
        let options = SupervisorOptions(
            configPaths: config.paths, namespace: config.namespace, workers: try parsedWorkers(),
            bind: bind.flatMap(IPAddress.init(parsing:)), adminAddress: adminAddress, adminPort: adminPort,
            watch: watch, accessLog: accessLog, logLevel: LogLevel(parsing: logLevel)!,
            drainTimeoutMs: parseDurationMs(drainTimeout)!,
            headerTimeoutMs: parseDurationMs(headerTimeout)!, idleTimeoutMs: parseDurationMs(idleTimeout)!,
            streamIdleTimeoutMs: parseDurationMs(streamIdleTimeout)!,
            http2MaxConcurrentStreams: UInt32(http2MaxConcurrentStreams),
            readiness: readiness == "off" ? nil : parseHostPort(readiness), credentialsDir: config.credentialsDir)
        let code = Supervisor.run(options)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate the configuration (exit 0 valid, 1 invalid).")

    @OptionGroup var config: ConfigOptions

    func run() throws {
        let report = ConfigPipeline.check(paths: config.paths, namespace: config.namespace,
                                          credentialsDir: config.credentialsDir)
        for line in report.lines { print(line) }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the compiled route table, or the route a request takes.")

    @OptionGroup var config: ConfigOptions

    @Option(help: ArgumentHelp("A request to route, e.g. 'GET http://shop.example.com/cart'.", valueName: "METHOD URL"))
    var request: String?

    @Option(name: [.customShort("H"), .customLong("header")],
            help: ArgumentHelp("A request header for --request (repeatable).", valueName: "name: value"))
    var headers: [String] = []

    func validate() throws {
        if let r = request, parsedRequest(r) == nil {
            throw ValidationError("--request '\(r)': expected 'METHOD URL', e.g. 'GET http://example.com/path'")
        }
        if !headers.isEmpty && request == nil { throw ValidationError("-H needs --request") }
        for h in headers where parsedHeader(h) == nil {
            throw ValidationError("-H '\(h)': expected 'name: value'")
        }
    }

    func parsedRequest(_ text: String) -> (method: String, url: String)? {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].allSatisfy({ $0.isLetter }),
              parts[1].hasPrefix("/") || parts[1].contains("://") else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    func parsedHeader(_ text: String) -> (name: String, value: String)? {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let name = String(text[..<colon])
        guard !name.isEmpty, !name.contains(" ") else { return nil }
        var value = text[text.index(after: colon)...]
        while value.first == " " || value.first == "\t" { value.removeFirst() }
        while value.last == " " || value.last == "\t" { value.removeLast() }
        return (name, String(value))
    }

    func run() throws {
        let query = request.flatMap(parsedRequest).map {
            RouteQuery(method: $0.method, url: $0.url, headers: headers.compactMap(parsedHeader))
        }
        let report = ConfigPipeline.routes(paths: config.paths, namespace: config.namespace,
                                           credentialsDir: config.credentialsDir, query: query)
        for line in report.lines { print(line) }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")
    func run() { print(BuildInfo.summary) }
}

/// `ingressd resolve NAME`: started by the supervisor only (hidden), once per name it
/// re-resolves, so that a lookup never blocks its loop; prints one line (AsyncResolver.swift).
struct ResolveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resolve", shouldDisplay: false)

    @Argument var name: String

    func run() throws {
        let code = ResolverChild.main(name: name)
        if code != 0 { throw ExitCode(code) }
    }
}

/// `ingressd worker …`: started by the supervisor only (hidden). The descriptors named here are
/// inherited; see WorkerMain.swift for the contract.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", shouldDisplay: false)

    @Option var index: Int
    @Option(name: .customLong("shm-fd")) var shmFd: Int32
    @Option(name: .customLong("listener"), help: ArgumentHelp(valueName: "fd:port")) var listeners: [String] = []
    @Option(name: .customLong("drain-timeout-ms")) var drainTimeoutMs: UInt64 = 30_000
    @Option(name: .customLong("log-level")) var logLevel: String = "info"
    @Option(name: .customLong("access-log")) var accessLog: String = "off"
    @Option(name: .customLong("header-timeout-ms")) var headerTimeoutMs: UInt64 = 10_000
    @Option(name: .customLong("idle-timeout-ms")) var idleTimeoutMs: UInt64 = 60_000
    @Option(name: .customLong("stream-idle-timeout-ms")) var streamIdleTimeoutMs: UInt64 = 300_000
    @Option(name: .customLong("http2-max-concurrent-streams")) var http2MaxConcurrentStreams: UInt32 = 100
    /// 0: started by hand, no parent check.
    @Option(name: .customLong("supervisor-pid")) var supervisorPid: Int32 = 0

    func validate() throws {
        guard index >= 0 else { throw ValidationError("--index must be ≥ 0") }
        guard shmFd >= 0 else { throw ValidationError("--shm-fd must be ≥ 0") }
        for l in listeners where parsedListener(l) == nil {
            throw ValidationError("--listener \(l): expected FD:PORT")
        }
        guard LogLevel(parsing: logLevel) != nil else { throw ValidationError("--log-level \(logLevel): unknown level") }
    }

    func parsedListener(_ text: String) -> WorkerListener? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let fd = Int32(parts[0]), fd >= 0, let port = UInt16(parts[1]), port != 0 else { return nil }
        return WorkerListener(fd: fd, port: port)
    }

    func run() throws {
        let options = WorkerOptions(index: index, shmFd: shmFd, listeners: listeners.compactMap(parsedListener),
                                    drainTimeoutMs: drainTimeoutMs, logLevel: LogLevel(parsing: logLevel)!.rawValue,
                                    accessLog: accessLog, headerTimeoutMs: headerTimeoutMs, idleTimeoutMs: idleTimeoutMs,
                                    streamIdleTimeoutMs: streamIdleTimeoutMs,
                                    http2MaxConcurrentStreams: http2MaxConcurrentStreams,
                                    supervisorPid: supervisorPid)
        let code = WorkerMain.run(options)
        if code != 0 { throw ExitCode(code) }
    }
}

// Entry point: ArgumentParser's `main()` would exit 64 on a usage error; the contract says 2.
do {
    var command = try Ingressd.parseAsRoot()
    try command.run()
} catch {
    if Ingressd.exitCode(for: error) == .validationFailure {
        var message = Ingressd.fullMessage(for: error)
        if !message.hasSuffix("\n") { message += "\n" }
        Log.writeLine(String(message.dropLast()))
        exit(ExitStatus.badCommandLine)
    }
    Ingressd.exit(withError: error)
}
