/// `ingressd run` options, already parsed and checked by the CLI (DESIGN.md §4).
public struct SupervisorOptions: Sendable {
    public var configPaths: [String]
    public var namespace: String
    /// `--credentials-dir`: where `tls.credentialName: NAME` is looked up (DESIGN.md §4).
    public var credentialsDir: String
    /// Worker processes (≥ 1).
    public var workers: Int
    /// `--bind`; nil = all addresses, IPv4 and IPv6.
    public var bind: IPAddress?
    public var adminAddress: IPAddress
    public var adminPort: UInt16
    /// `--readiness ADDR:PORT`: `GET /healthz/ready` alone on its own listener; nil = `off`.
    public var readiness: (address: IPAddress, port: UInt16)?
    public var watch: Bool
    /// `--access-log`: a path, `-` (stdout) or `off`.
    public var accessLog: String
    public var logLevel: LogLevel
    public var drainTimeoutMs: UInt64
    /// `--header-timeout`, `--idle-timeout` (DESIGN.md §8 limits; defaults 10 s and 60 s).
    public var headerTimeoutMs: UInt64
    public var idleTimeoutMs: UInt64
    /// `--stream-idle-timeout` (Envoy's stream_idle_timeout, default 5 min; 0 = none).
    public var streamIdleTimeoutMs: UInt64
    /// `--http2-max-concurrent-streams` (default 100, Envoy's recommended edge value).
    public var http2MaxConcurrentStreams: UInt32

    public init(configPaths: [String], namespace: String = "default", workers: Int, bind: IPAddress? = nil,
                adminAddress: IPAddress = .v4([127, 0, 0, 1]), adminPort: UInt16 = 15000, watch: Bool = false,
                accessLog: String = "off", logLevel: LogLevel = .info, drainTimeoutMs: UInt64 = 30_000,
                headerTimeoutMs: UInt64 = 10_000, idleTimeoutMs: UInt64 = 60_000, streamIdleTimeoutMs: UInt64 = 300_000,
                http2MaxConcurrentStreams: UInt32 = 100,
                readiness: (address: IPAddress, port: UInt16)? = nil,
                credentialsDir: String = "/etc/ingressd/credentials") {
        self.readiness = readiness
        self.credentialsDir = credentialsDir
        self.headerTimeoutMs = headerTimeoutMs
        self.idleTimeoutMs = idleTimeoutMs
        self.streamIdleTimeoutMs = streamIdleTimeoutMs
        self.http2MaxConcurrentStreams = http2MaxConcurrentStreams
        self.configPaths = configPaths
        self.namespace = namespace
        self.workers = workers
        self.bind = bind
        self.adminAddress = adminAddress
        self.adminPort = adminPort
        self.watch = watch
        self.accessLog = accessLog
        self.logLevel = logLevel
        self.drainTimeoutMs = drainTimeoutMs
    }
}

/// Exit codes of DESIGN.md §4 (contract).
public enum ExitStatus {
    public static let success: Int32 = 0
    public static let invalidConfig: Int32 = 1
    public static let badCommandLine: Int32 = 2
    public static let cannotStart: Int32 = 3
}
