#if canImport(Glibc)
import Glibc
#endif
import ConfigCompiler
import CSupport

// Name resolution that never blocks the supervisor's loop (DESIGN.md §1, §5).
//
// getaddrinfo(3) blocks, for 6–7 s per name against a DNS server that does not answer, and
// cannot be cancelled. The supervisor is single-threaded (it spawns), so it may not call it
// from a thread either. Each name is looked up by a child process instead — the supervisor's
// own binary, `ingressd resolve NAME` — that writes one line to a pipe and exits. The loop
// polls the pipes like any other descriptor; a lookup that outlives its timeout is killed
// and reported as `.timedOut` (the caller keeps the name's previous addresses).
//
// Why not c-ares (libc-ares-dev): it would be a second resolver beside glibc's, with its own
// reading of /etc/resolv.conf and no NSS (/etc/hosts through nsswitch, mDNS, systemd-resolved's
// nss module); a child running getaddrinfo answers exactly what `check` and the start-up
// answer. Spawning costs about a millisecond per name every refresh interval (30 s).
//
// Child protocol (one line on stdout, then exit 0):
//   `ok HEX HEX …`   the addresses, 4 or 16 bytes each as hex, IPv4 first
//   `noname`         the name does not exist or has no address (an answer: no endpoints)
//   `fail MESSAGE`   the resolver could not answer (treated like a timeout)

/// What a lookup gave.
enum LookupAnswer: Equatable {
    case addresses([[UInt8]])
    case noSuchName
    case failed(String)
    case timedOut
}

/// Runs batches of lookups in child processes. At most `maxConcurrent` children at a time;
/// one batch at a time (starting a batch cancels the one in flight). Not thread-safe: the
/// supervisor loop alone calls it.
final class AsyncResolver {
    /// Concurrent lookups: enough for a configuration of a few dozen DNS names to finish in
    /// one timeout even when every lookup hangs, few enough not to look like a fork bomb.
    static let maxConcurrent = 16

    /// How long one lookup may take: glibc's own per-server timeout (RES_TIMEOUT, 5 s), so a
    /// name that a healthy resolver answers is never cut short. `INGRESSD_DNS_TIMEOUT_MS`
    /// overrides it (tests).
    static let timeoutNs: UInt64 = {
        if let v = getenv("INGRESSD_DNS_TIMEOUT_MS"), let ms = UInt64(String(cString: v)), ms > 0 {
            return ms * 1_000_000
        }
        return 5_000_000_000
    }()

    private struct Lookup {
        var name: String
        var pid: pid_t
        var fd: Int32
        var deadlineNs: UInt64
        var output: [UInt8] = []
    }

    private var queue: [String] = []
    private var running: [Lookup] = []
    private var answers: [String: LookupAnswer] = [:]
    private var inBatch = false
    private let executable: String

    init(executable: String = "/proc/self/exe") {
        self.executable = executable
    }

    /// A batch is queued or running.
    var isBusy: Bool { inBatch }

    /// Starts looking up `names` (cancelling any batch in flight). Returns at once.
    func start(_ names: [String], nowNs: UInt64) {
        cancel()
        inBatch = true
        var seen: Set<String> = []
        queue = names.filter { seen.insert($0).inserted }
        launch(nowNs: nowNs)
    }

    /// Kills every child of the batch in flight and forgets it.
    func cancel() {
        for l in running { kill(l.pid, SIGKILL); close(l.fd) }
        running = []
        queue = []
        answers = [:]
        inBatch = false
    }

    var pollInterest: [(Int32, Int16)] { running.map { ($0.fd, Int16(POLLIN)) } }

    func owns(_ fd: Int32) -> Bool { running.contains { $0.fd == fd } }

    /// Reads what a child wrote; at end of file its answer is recorded.
    func service(fd: Int32, nowNs: UInt64) {
        guard let i = running.firstIndex(where: { $0.fd == fd }) else { return }
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                // A line of at most a few hundred addresses; more is not a resolver answer.
                if running[i].output.count < 1 << 16 { running[i].output += buf[0..<n] }
                continue
            }
            if n < 0 && (ing_errno() == EAGAIN || ing_errno() == EINTR) { return }
            break   // EOF (or an error): the child is done
        }
        let l = running.remove(at: i)
        close(l.fd)
        answers[l.name] = Self.parse(l.output)
        launch(nowNs: nowNs)
    }

    /// Expires overdue lookups and starts queued ones. Returns every answer of the batch once
    /// the last lookup has finished or timed out (then the resolver is idle again), else nil.
    func tick(nowNs: UInt64) -> [String: LookupAnswer]? {
        guard inBatch else { return nil }
        for l in running where nowNs >= l.deadlineNs {
            kill(l.pid, SIGKILL)   // reaped by the supervisor's waitpid loop
            close(l.fd)
            answers[l.name] = .timedOut
        }
        running.removeAll { nowNs >= $0.deadlineNs }
        launch(nowNs: nowNs)
        guard running.isEmpty && queue.isEmpty else { return nil }
        let done = answers
        answers = [:]
        inBatch = false
        return done
    }

    private func launch(nowNs: UInt64) {
        while running.count < Self.maxConcurrent, !queue.isEmpty {
            let name = queue.removeFirst()
            switch spawnLookup(name) {
            case .success(let (pid, fd)):
                running.append(Lookup(name: name, pid: pid, fd: fd, deadlineNs: nowNs + Self.timeoutNs))
            case .failure(let e):
                answers[name] = .failed(e.message)
            }
        }
    }

    /// `ingressd resolve NAME` with its stdout on a pipe whose read end (non-blocking,
    /// close-on-exec) the supervisor keeps. Signals as for workers: empty mask, defaults.
    private func spawnLookup(_ name: String) -> Result<(pid_t, Int32), LookupSpawnError> {
        var fds: [Int32] = [0, 0]
        let rc = fds.withUnsafeMutableBufferPointer { ing_pipe2($0.baseAddress, O_CLOEXEC) }
        guard rc == 0 else { return .failure(LookupSpawnError(message: "pipe: \(errnoText(-rc))")) }
        let (readFd, writeFd) = (fds[0], fds[1])
        _ = ing_fcntl_int(readFd, F_SETFL, ing_fcntl(readFd, F_GETFL) | O_NONBLOCK)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeFd, 1)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)

        let args = ["ingressd", "resolve", name]
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cArgs.append(nil)
        defer { for p in cArgs { free(p) } }
        var cEnv: [UnsafeMutablePointer<CChar>?] = WorkerSpawner.workerEnvironment().map { strdup($0) }
        cEnv.append(nil)
        defer { for p in cEnv { free(p) } }
        fflush(nil)
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attr, cArgs, cEnv)
        close(writeFd)
        guard spawned == 0 else {
            close(readFd)
            return .failure(LookupSpawnError(message: "cannot start \(executable) resolve: \(errnoText(spawned))"))
        }
        return .success((pid, readFd))
    }

    struct LookupSpawnError: Error {
        var message: String
    }

    // MARK: the line

    /// The child's line for a lookup result.
    static func line(for result: Result<[[UInt8]], LookupFailure>) -> String {
        switch result {
        case .success(let addresses):
            return (["ok"] + addresses.map { $0.map { byte in
                let h = String(byte, radix: 16)
                return h.count == 1 ? "0" + h : h
            }.joined() }).joined(separator: " ")
        case .failure(.noSuchName):
            return "noname"
        case .failure(.failed(let why)):
            return "fail " + why.replacingOccurrences(of: "\n", with: " ")
        }
    }

    /// The supervisor's reading of a child's output; anything else (a crash, nothing written)
    /// is a failure, never an empty answer.
    static func parse(_ output: [UInt8]) -> LookupAnswer {
        let text = String(decoding: output, as: UTF8.self)
        guard let line = text.split(separator: "\n", omittingEmptySubsequences: false).first, text.hasSuffix("\n") else {
            return .failed("the resolver process exited without an answer")
        }
        let words = line.split(separator: " ")
        switch words.first {
        case "ok"?:
            var addresses: [[UInt8]] = []
            for w in words.dropFirst() {
                guard w.count == 8 || w.count == 32 else { return .failed("malformed answer") }
                var bytes: [UInt8] = []
                var i = w.startIndex
                while i < w.endIndex {
                    let j = w.index(i, offsetBy: 2)
                    guard let b = UInt8(w[i..<j], radix: 16) else { return .failed("malformed answer") }
                    bytes.append(b)
                    i = j
                }
                addresses.append(bytes)
            }
            return .addresses(addresses)
        case "noname"?:
            return .noSuchName
        case "fail"?:
            return .failed(String(line.dropFirst(5)))
        default:
            return .failed("malformed answer")
        }
    }

    /// `ingressd resolve NAME`: the child's whole life. Dies with the supervisor.
    public static func childMain(name: String) -> Int32 {
        _ = ing_set_pdeathsig(SIGKILL)
        let text = line(for: systemLookup(name)) + "\n"
        _ = text.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
        return 0
    }
}

/// The public face of the child for the CLI (the hidden `resolve` subcommand).
public enum ResolverChild {
    public static func main(name: String) -> Int32 { AsyncResolver.childMain(name: name) }
}
