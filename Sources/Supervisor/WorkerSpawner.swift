#if canImport(Glibc)
import Glibc
#endif
import CSupport

/// Descriptor numbers a worker finds its inheritance at (the contract in WorkerMain.swift).
enum WorkerDescriptors {
    static let sharedMemory: Int32 = 3
    static let firstListener: Int32 = 4
    /// Sources handed to `dup2` live at or above this number (see `moveHigh`), so the targets
    /// 3, 4, 5, … never collide with a source while the file actions run.
    static let maxListeners = 90
}

/// What one worker process is started with.
struct WorkerLaunch {
    /// Shared-memory slot index (`ingressd worker --index`).
    var slot: Int
    var sharedMemoryFd: Int32
    /// This worker's listening sockets, one per port.
    var listeners: [(fd: Int32, port: UInt16)]
    var drainTimeoutMs: UInt64
    var logLevel: LogLevel
    /// `--access-log` as given to `run`.
    var accessLog: String = "off"
    var headerTimeoutMs: UInt64 = 10_000
    var idleTimeoutMs: UInt64 = 60_000
    var streamIdleTimeoutMs: UInt64 = 300_000
    var http2MaxConcurrentStreams: UInt32 = 100
    /// The supervisor's pid: a worker whose parent is no longer this pid when it starts exits
    /// (PR_SET_PDEATHSIG cannot fire for a parent that died before it was set).
    var supervisorPid: pid_t = getpid()

    /// The worker's argv after the executable name; listeners become 4, 5, … in order.
    var arguments: [String] {
        var a = ["worker", "--index", String(slot), "--shm-fd", String(WorkerDescriptors.sharedMemory)]
        for (i, l) in listeners.enumerated() {
            a += ["--listener", "\(WorkerDescriptors.firstListener + Int32(i)):\(l.port)"]
        }
        a += ["--drain-timeout-ms", String(drainTimeoutMs), "--log-level", logLevel.name]
        a += ["--supervisor-pid", String(supervisorPid)]
        if accessLog != "off" { a += ["--access-log", accessLog] }
        if headerTimeoutMs != 10_000 { a += ["--header-timeout-ms", String(headerTimeoutMs)] }
        if idleTimeoutMs != 60_000 { a += ["--idle-timeout-ms", String(idleTimeoutMs)] }
        if streamIdleTimeoutMs != 300_000 { a += ["--stream-idle-timeout-ms", String(streamIdleTimeoutMs)] }
        if http2MaxConcurrentStreams != 100 { a += ["--http2-max-concurrent-streams", String(http2MaxConcurrentStreams)] }
        return a
    }
}

/// Starts workers with `posix_spawn` of the supervisor's own binary (DESIGN.md §1 "fork
/// safety": a clean exec, nothing of the supervisor inherited but the descriptors below).
///
/// Every descriptor the supervisor opens is close-on-exec; the file actions `dup2` the shared
/// memory to 3 and the listeners to 4, 5, … (which clears close-on-exec on the copies), and
/// where glibc has it (2.34+) close everything above as a second line of defence. The child gets
/// an empty signal mask and default dispositions for every signal: the supervisor blocks its
/// signals for signalfd and ignores SIGPIPE, and neither must leak into a worker.
struct WorkerSpawner {
    /// `/proc/self/exe`, or `INGRESSD_WORKER_EXECUTABLE` when set — a test hook that lets the
    /// integration tests stand in a fake worker; not a user-facing setting.
    let executable: String
    private let closeFrom: CloseFrom?

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    init() {
        if let override = getenv("INGRESSD_WORKER_EXECUTABLE") {
            executable = String(cString: override)
        } else {
            executable = "/proc/self/exe"
        }
        // Not in the Glibc module map (it is a GNU extension); look it up instead of guessing.
        if let sym = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            closeFrom = unsafeBitCast(sym, to: CloseFrom.self)
        } else {
            closeFrom = nil
        }
    }

    /// Spawns a worker; returns its pid or the errno of the failure (exec failures included:
    /// glibc reports them through posix_spawn's return value).
    func spawn(_ launch: WorkerLaunch) -> Result<pid_t, SpawnError> {
        precondition(launch.listeners.count <= WorkerDescriptors.maxListeners, "too many listeners for the descriptor plan")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, launch.sharedMemoryFd, WorkerDescriptors.sharedMemory)
        for (i, l) in launch.listeners.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, l.fd, WorkerDescriptors.firstListener + Int32(i))
        }
        if let closeFrom {
            _ = closeFrom(&actions, WorkerDescriptors.firstListener + Int32(launch.listeners.count))
        }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Own process group: a terminal's Ctrl-C reaches the supervisor only, which then drains
        // the workers in order instead of having them killed mid-request by SIGINT.
        let flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP
        posix_spawnattr_setflags(&attr, Int16(flags))
        posix_spawnattr_setpgroup(&attr, 0)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)

        let argv0 = "ingressd"
        let args = [argv0] + launch.arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cArgs.append(nil)
        defer { for p in cArgs { free(p) } }

        // Flush stdio so what the supervisor buffered reaches the shared stdout/stderr before
        // anything the worker writes (and is never duplicated should spawn fall back to fork).
        var cEnv: [UnsafeMutablePointer<CChar>?] = Self.workerEnvironment().map { strdup($0) }
        cEnv.append(nil)
        defer { for p in cEnv { free(p) } }

        fflush(nil)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attr, cArgs, cEnv)
        guard rc == 0 else { return .failure(SpawnError(errno: rc, executable: executable)) }
        return .success(pid)
    }
}

extension WorkerSpawner {
    /// The supervisor's environment minus what belongs to the supervisor alone: systemd's
    /// notify socket and watchdog (a worker must never report READY or pet the watchdog for the
    /// service) and socket activation variables (the fds are not there in the worker).
    static func workerEnvironment() -> [String] {
        let privatePrefixes = ["NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES="]
        var result: [String] = []
        var p = environ
        while let entry = p.pointee {
            let s = String(decoding: UnsafeRawBufferPointer(start: entry, count: strlen(entry)), as: UTF8.self)
            if !privatePrefixes.contains(where: s.hasPrefix) { result.append(s) }
            p += 1
        }
        return result
    }
}

struct SpawnError: Error, CustomStringConvertible {
    var errno: Int32
    var executable: String
    var description: String { "cannot start worker process \(executable): \(errnoText(errno))" }
}
