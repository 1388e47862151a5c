// Entry point of a worker process (`ingressd worker`, hidden; started by the supervisor).
//
// Contract with the supervisor (DESIGN.md §1):
//  * the shared-memory region fd and the listening sockets are inherited at the descriptor
//    numbers given on the command line (supervisor convention: shm at 3, listeners from 4);
//  * the worker creates its own io_uring ring, attaches the region, waits for a published
//    table, arms accept on every listener and sets its slot state to `.accepting`;
//  * SIGTERM: stop accepting, finish in-flight requests, close idle connections, exit 0
//    (the supervisor SIGKILLs it after the drain timeout);
//  * it asks the kernel for SIGKILL if the supervisor dies (PR_SET_PDEATHSIG), then checks that
//    its parent is still the supervisor (`--supervisor-pid`) and exits if not: a supervisor
//    that died between spawning it and the prctl would never send that signal.

import CSupport
import CURing
import Proxy
import SharedMemory
import URing
#if canImport(Glibc)
import Glibc
#endif

/// One inherited listening socket.
public struct WorkerListener: Sendable, Equatable {
    public var fd: Int32
    /// The Gateway port it serves (the route table is keyed by it).
    public var port: UInt16
    public init(fd: Int32, port: UInt16) {
        self.fd = fd
        self.port = port
    }
}

public struct WorkerOptions: Sendable {
    /// Index of this worker's slot in the shared region.
    public var index: Int
    public var shmFd: Int32
    public var listeners: [WorkerListener]
    /// Upper bound for draining on SIGTERM.
    public var drainTimeoutMs: UInt64
    /// 0 = error, 1 = warning, 2 = info, 3 = debug.
    public var logLevel: Int
    /// Access log: a file path, "-" (stdout) or "off" (`--access-log`).
    public var accessLog: String
    /// Request-head and idle keep-alive timeouts (`ProxyLimits`).
    public var headerTimeoutMs: UInt64
    public var idleTimeoutMs: UInt64
    /// Envoy's stream_idle_timeout (`ProxyLimits.streamIdleTimeoutMs`; 0 = none).
    public var streamIdleTimeoutMs: UInt64 = 300_000
    /// `ProxyLimits.http2MaxConcurrentStreams`.
    public var http2MaxConcurrentStreams: UInt32 = 100
    /// The supervisor that spawned this worker; 0 = do not check (a worker started by hand).
    public var supervisorPid: Int32

    public init(index: Int, shmFd: Int32, listeners: [WorkerListener], drainTimeoutMs: UInt64 = 30_000, logLevel: Int = 2,
                accessLog: String = "off", headerTimeoutMs: UInt64 = 10_000, idleTimeoutMs: UInt64 = 60_000,
                streamIdleTimeoutMs: UInt64 = 300_000, http2MaxConcurrentStreams: UInt32 = 100, supervisorPid: Int32 = 0) {
        self.supervisorPid = supervisorPid
        self.http2MaxConcurrentStreams = http2MaxConcurrentStreams
        self.streamIdleTimeoutMs = streamIdleTimeoutMs
        self.accessLog = accessLog
        self.headerTimeoutMs = headerTimeoutMs
        self.idleTimeoutMs = idleTimeoutMs
        self.index = index
        self.shmFd = shmFd
        self.listeners = listeners
        self.drainTimeoutMs = drainTimeoutMs
        self.logLevel = logLevel
    }
}

public enum WorkerMain {
    /// Runs the worker until it has drained; returns the process exit code
    /// (0 after a drain, 3 when it cannot start: region attach or io_uring setup failed).
    public static func run(_ options: WorkerOptions) -> Int32 {
        _ = ing_set_pdeathsig(SIGKILL)
        // After the prctl, not before: a supervisor that dies from here on kills us; one that
        // died earlier left us reparented (to init or a subreaper), holding its listening
        // sockets with nobody to stop us.
        if options.supervisorPid > 0 && getppid() != options.supervisorPid {
            workerLog(options, "the supervisor (pid \(options.supervisorPid)) is gone; exiting")
            return 3
        }
        signal(SIGPIPE, SIG_IGN)
        signal(SIGTERM) { _ in terminationRequested = 1 }
        signal(SIGINT, SIG_IGN)   // the supervisor turns ^C into SIGTERM for us
        signal(SIGHUP, SIG_IGN)
        signal(SIGUSR1) { _ in reopenRequested = 1 }   // the supervisor forwards logrotate's SIGUSR1

        let region: SharedRegion
        do {
            region = try SharedRegion.attach(fd: options.shmFd)
        } catch {
            workerLog(options, "cannot attach the shared region: \(error)")
            return 3
        }
        guard options.index < region.maxWorkers else {
            workerLog(options, "worker index \(options.index) outside the shared region")
            return 3
        }
        let slot = region.workerSlot(options.index)
        slot.pid = getpid()
        slot.startedNs = ing_monotonic_ns()
        slot.heartbeatNs = ing_monotonic_ns()

        let ring: Ring
        do {
            ring = try Ring(entries: 4096)
        } catch {
            workerLog(options, "io_uring unavailable: \(error)")
            return 3
        }
        var engine: ProxyEngine
        do {
            var limits = ProxyLimits()
            limits.headerTimeoutMs = options.headerTimeoutMs
            limits.idleTimeoutMs = options.idleTimeoutMs
            limits.streamIdleTimeoutMs = options.streamIdleTimeoutMs
            limits.http2MaxConcurrentStreams = options.http2MaxConcurrentStreams
            engine = try ProxyEngine(ring: ring, listeners: options.listeners.map { ($0.fd, $0.port) },
                                     region: region, slot: slot, limits: limits)
        } catch {
            workerLog(options, "cannot set up the proxy: \(error)")
            return 3
        }
        guard engine.setAccessLog(options.accessLog) else {
            workerLog(options, "cannot open the access log \(options.accessLog): errno \(ing_errno())")
            return 3
        }
        return runLoop(&engine, slot: slot, options: options)
    }

    static func runLoop(_ engine: inout ProxyEngine, slot: WorkerSlot, options: WorkerOptions) -> Int32 {
        // Wait for the first table before accepting anything.
        while !engine.refreshTable() {
            slot.heartbeatNs = ing_monotonic_ns()
            if terminationRequested != 0 { return 0 }
            usleep(5_000)
        }
        engine.startAccepting()
        slot.state = .accepting

        let batch = 256
        let cqes = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: batch)
        var lastSweepNs = ing_monotonic_ns()
        var drainDeadlineNs: UInt64 = 0
        var loggedSubmitFailures: UInt64 = 0
        var acceptLog = AcceptFailureLog()
        while true {
            let now = ing_monotonic_ns()
            slot.heartbeatNs = now
            if reopenRequested != 0 {
                reopenRequested = 0
                engine.requestAccessLogReopen()
            }
            engine.tick(nowNs: now)
            engine.resumeAcceptingIfDue(nowNs: now)
            _ = engine.refreshTable()
            if terminationRequested != 0 && !engine.draining {
                engine.beginDrain()
                slot.state = .draining
                drainDeadlineNs = now + options.drainTimeoutMs * 1_000_000
            }
            if engine.draining {
                if engine.downstreamCount == 0 || now >= drainDeadlineNs { break }
            }
            if now &- lastSweepNs >= 1_000_000_000 {
                lastSweepNs = now
                engine.sweep()
                acceptLog.report(engine.acceptResourceFailures, errno: engine.lastAcceptErrno, nowNs: now, options)
                if engine.ring.submitFailures != loggedSubmitFailures {
                    // Ring.sqe() kept the entries (Ring+Spill.swift); at most one line a second.
                    loggedSubmitFailures = engine.ring.submitFailures
                    workerLog(options, "io_uring submit refused \(loggedSubmitFailures) time(s) so far (last: errno \(engine.ring.lastSubmitErrno)); \(engine.ring.spilledEntries) entries waited for a later submit")
                }
            }
            // One io_uring_enter: submit everything queued and wait for work, the next timer,
            // or the 1 s tick that keeps the heartbeat going (sooner when accepting resumes).
            var waitNs = engine.waitTimeoutNs(limitNs: 1_000_000_000)
            if let resume = engine.acceptResumeAtNs { waitNs = min(waitNs, max(1_000_000, resume &- now)) }
            if let retry = engine.starvedRetryAtNs { waitNs = min(waitNs, retry > now ? retry - now : 0) }
            _ = engine.ring.submitAndWait(1, timeoutNs: waitNs)
            while true {
                let n = engine.ring.peekBatch(cqes, max: UInt32(batch))
                if n == 0 { break }
                for k in 0..<Int(n) {
                    let cqe = cqes[k]!
                    engine.handle(userData: cqe.pointee.user_data, result: cqe.pointee.res, flags: cqe.pointee.flags)
                }
                engine.ring.advance(by: n)
                if n < UInt32(batch) { break }
            }
        }
        _ = engine.ring.submit()
        engine.finishAccessLog()
        return 0
    }
}

/// Rate-limits the line about accepts that failed for lack of descriptors (EMFILE/ENFILE):
/// a worker at its limit retries four times a second, and says so once per `intervalNs`.
struct AcceptFailureLog {
    static let intervalNs: UInt64 = 10_000_000_000
    var logged: UInt64 = 0
    var nextNs: UInt64 = 0

    mutating func report(_ failures: UInt64, errno: Int32, nowNs: UInt64, _ options: WorkerOptions) {
        guard failures != logged, nowNs >= nextNs else { return }
        var rl = rlimit()
        let limit = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl) == 0 ? String(rl.rlim_cur) : "?"
        workerLog(options, "accept failed: \(String(cString: strerror(errno))) (errno \(errno), open-file limit \(limit)); "
                  + "pausing accepts \(AcceptPause.pauseMs) ms at a time, open connections are still served (\(failures - logged) failure(s) since the last line)")
        logged = failures
        nextNs = nowNs + Self.intervalNs
    }
}

/// Set by the SIGTERM handler; read by the loop once per iteration.
nonisolated(unsafe) var terminationRequested: sig_atomic_t = 0
/// Set by the SIGUSR1 handler (reopen the access log).
nonisolated(unsafe) var reopenRequested: sig_atomic_t = 0

func workerLog(_ options: WorkerOptions, _ message: String) {
    guard options.logLevel >= 0 else { return }
    let line = "ingressd worker \(options.index) [\(getpid())]: \(message)\n"
    line.withCString { p in _ = write(2, p, strlen(p)) }
}
