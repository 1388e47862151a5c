#if canImport(Glibc)
import Glibc
#endif
import CSupport
import SharedMemory

/// The supervisor process (DESIGN.md §1): owns the configuration, the listening sockets, the
/// shared-memory region, the admin endpoint and the workers; one thread, one `poll` loop.
///
/// Single-threaded by design — no threads, Dispatch or Swift concurrency — so that spawning is
/// trivially safe and every field below is touched by the loop alone.
///
/// Start-up order matters: signals are blocked (and the signalfd opened) before the first
/// spawn, the first table is published before any worker can look for it, and every listener
/// exists before the first worker starts so workers never see a partial set.
public final class Supervisor {
    let options: SupervisorOptions
    let region: SharedRegion
    /// The region's memfd moved to a high, close-on-exec number (see `moveHigh`).
    let sharedMemoryFd: Int32
    var listeners: ListenerSet
    let spawner = WorkerSpawner()
    let signals: SignalSource
    var watcher: ConfigWatcher?
    var admin: AdminServer
    /// `--readiness`: its own listener, so that nothing on the admin port can starve it.
    var readiness: AdminServer?
    let systemd = SystemdNotifier()

    /// Indexed by shared-memory slot; nil = free slot.
    var records: [WorkerRecord?]
    /// Indexed by logical worker index: replacements after unexpected deaths.
    var restarts: [Int]
    var crashGuards: [CrashLoopGuard]

    /// The configuration in effect (published as `generation`).
    var config: LoadedConfig
    var generation: UInt64 = 0
    /// A validated configuration waiting for a free table slot (`publish` said `.busy`).
    var pending: LoadedConfig?
    var pendingSinceNs: UInt64 = 0
    /// When DNS-backed endpoints were last re-resolved (Supervisor+DNS.swift).
    var lastDNSRefreshNs: UInt64 = 0
    /// Lookups in child processes, the answers last received, and what the batch in flight
    /// is for (Supervisor+DNS.swift).
    let resolver = AsyncResolver()
    let dnsCache: NameCache
    var dnsJob: DNSJob?
    /// Ports the serving workers should have (those of the published configuration).
    var desiredPorts: [UInt16]
    var reloads: UInt64 = 0
    var reloadFailures: UInt64 = 0

    // Stats and health (Supervisor+Stats.swift, Supervisor+Health.swift).
    /// Stable endpoint ids across reloads.
    let endpointIds: EndpointIds
    /// Counters of reaped workers.
    var retired = StatsTotals()
    /// Cluster-name hash → name, for every configuration loaded (stats of removed clusters
    /// keep their names).
    var clusterNames: [UInt64: String] = [:]
    var checker = HealthChecker()
    var endpointHealth: [UInt32: EndpointHealthState] = [:]
    /// The health words last written to the shared array.
    var publishedHealth: [UInt32: UInt64] = [:]
    var healthDirty = false

    /// READY=1 sent after start-up (every worker accepted once).
    var startedReady = false
    /// RELOADING=1 sent; READY=1 owed.
    var reloadInProgress = false
    var drainDeadlineNs: UInt64?
    var drainKillSent = false
    var nextWatchdogPingNs: UInt64 = 0
    /// When the TLS session-ticket keys rotate next (Supervisor+TicketKeys.swift).
    var nextTicketRotationNs: UInt64 = 0

    /// 10 s: a loop iteration that takes this long is a hung worker, not a busy one (an
    /// iteration is bounded by a batch of completions). Same value as the brief's contract.
    static let heartbeatTimeoutNs: UInt64 = 10_000_000_000
    /// Poll timeout: the resolution of every timer here (back-off, debounce, watchdog).
    static let tickMs: Int32 = 100

    private init(options: SupervisorOptions, region: SharedRegion, sharedMemoryFd: Int32, listeners: ListenerSet,
                 signals: SignalSource, admin: AdminServer, readiness: AdminServer?, config: LoadedConfig,
                 endpointIds: EndpointIds, dnsCache: NameCache) {
        self.readiness = readiness
        self.endpointIds = endpointIds
        self.dnsCache = dnsCache
        self.options = options
        self.region = region
        self.sharedMemoryFd = sharedMemoryFd
        self.listeners = listeners
        self.signals = signals
        self.admin = admin
        self.config = config
        self.desiredPorts = config.listenerPorts
        self.records = Array(repeating: nil, count: region.maxWorkers)
        self.restarts = Array(repeating: 0, count: options.workers)
        self.crashGuards = Array(repeating: CrashLoopGuard(), count: options.workers)
    }

    /// Runs `ingressd run` to completion; returns the process exit code (DESIGN.md §4):
    /// 0 after a drain, 1 for an invalid configuration, 3 when something cannot start.
    public static func run(_ options: SupervisorOptions) -> Int32 {
        Log.level = options.logLevel
        // Before any worker starts: they inherit it.
        let fileLimit = FileLimit.raiseToHard()
        guard fileLimit >= FileLimit.minimum else {
            Log.error("the open-file limit is \(fileLimit) (hard limit); ingressd needs at least \(FileLimit.minimum): raise LimitNOFILE= or ulimit -Hn")
            return ExitStatus.cannotStart
        }
        let config: LoadedConfig
        let endpointIds = EndpointIds()
        // Resolved here, blocking: nothing is served yet, systemd's watchdog starts at READY=1
        // (TimeoutStartSec covers this), and a gateway should not start on endpoints it has not
        // looked up. Every later lookup runs in a child (Supervisor+DNS.swift).
        let dnsCache = NameCache()
        switch ConfigPipeline.load(paths: options.configPaths, namespace: options.namespace,
                                   credentialsDir: options.credentialsDir, endpointIds: endpointIds,
                                   resolve: dnsCache.resolveNow) {
        case .invalid(let diagnostics):
            for d in diagnostics { Log.writeLine(d) }
            Log.error("configuration is invalid (\(diagnostics.count) problem(s)); not starting")
            return ExitStatus.invalidConfig
        case .valid(let c):
            config = c
        }
        for note in config.notes { Log.info(note) }
        guard config.listenerPorts.count <= WorkerDescriptors.maxListeners else {
            Log.error("\(config.listenerPorts.count) listener ports; at most \(WorkerDescriptors.maxListeners) are supported")
            return ExitStatus.invalidConfig
        }

        let signals: SignalSource
        switch SignalSource.open() {
        case .success(let s): signals = s
        case .failure(let e): Log.error(e.description); return ExitStatus.cannotStart
        }

        // 2 × workers + 2: a full replacement set can start beside the serving one during a
        // port change, with room for two more while stragglers drain.
        let region: SharedRegion
        do {
            region = try SharedRegion.create(maxWorkers: 2 * options.workers + 2)
        } catch {
            Log.error("cannot create the shared-memory region: \(error)")
            return ExitStatus.cannotStart
        }
        _ = ing_fcntl_int(region.fd, F_SETFD, FD_CLOEXEC)
        let shmFd = ing_fcntl_int(region.fd, F_DUPFD_CLOEXEC, 100)
        guard shmFd >= 0 else {
            Log.error("cannot duplicate the shared-memory descriptor: \(errnoText(ing_errno()))")
            return ExitStatus.cannotStart
        }

        var listeners = ListenerSet(bind: options.bind, perPort: options.workers, backlog: systemBacklog())
        for port in config.listenerPorts {
            if let e = listeners.open(port: port) {
                Log.error(e.description)
                return ExitStatus.cannotStart
            }
        }

        let admin: AdminServer
        switch AdminServer.open(options.adminAddress, port: options.adminPort) {
        case .success(let a): admin = a
        case .failure(let e): Log.error(e.description); return ExitStatus.cannotStart
        }
        Log.info("admin endpoint on http://\(admin.address.withPort(admin.port))/")
        var readiness: AdminServer?
        if let r = options.readiness {
            switch AdminServer.open(r.address, port: r.port, name: "readiness") {
            case .success(let server): readiness = server
            case .failure(let e): Log.error(e.description); return ExitStatus.cannotStart
            }
            Log.info("readiness endpoint on http://\(readiness!.address.withPort(readiness!.port))/healthz/ready")
        }

        let s = Supervisor(options: options, region: region, sharedMemoryFd: shmFd, listeners: listeners,
                           signals: signals, admin: admin, readiness: readiness, config: config,
                           endpointIds: endpointIds, dnsCache: dnsCache)
        return s.start()
    }

    private func start() -> Int32 {
        let now = monotonicNs()
        rotateTicketKeys(nowNs: now)   // before any worker exists
        do {
            switch try region.publish(image: config.image, liveWorkers: []) {
            case .published(let g): generation = g
            case .busy: preconditionFailure("a fresh region cannot be busy")
            }
        } catch {
            Log.error("\(error)")
            return ExitStatus.invalidConfig
        }
        Log.info("configuration loaded: generation \(generation), \(portList(config.listenerPorts))")
        logTLSPath()
        if options.watch {
            watcher = ConfigWatcher(paths: options.configPaths)
            watcher?.watch(files: config.certificateFiles)
        }
        if options.accessLog != "off" && options.accessLog != "-" {
            // Workers open it themselves; fail here, once and clearly, when they could not.
            let fd = open(options.accessLog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                Log.error("cannot open the access log \(options.accessLog): \(errnoText(ing_errno()))")
                return ExitStatus.cannotStart
            }
            close(fd)
        }
        healthConfigChanged(nowNs: now)

        for i in 0..<options.workers {
            records[i] = WorkerRecord(slot: i, logical: i, ports: config.listenerPorts, role: .serving)
            if case .failure(let e) = spawnProcess(slot: i, nowNs: now, atStartup: true) {
                Log.error(e.description)
                killAll(SIGKILL)
                return ExitStatus.cannotStart
            }
        }
        systemd.notify("STATUS=starting \(options.workers) worker(s)")
        nextWatchdogPingNs = now
        return loop()
    }

    // MARK: the event loop

    private func loop() -> Int32 {
        while true {
            var fds: [pollfd] = [pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0)]
            if let w = watcher { fds.append(pollfd(fd: w.fd, events: Int16(POLLIN), revents: 0)) }
            for (fd, events) in admin.pollInterest { fds.append(pollfd(fd: fd, events: events, revents: 0)) }
            for (fd, events) in readiness?.pollInterest ?? [] { fds.append(pollfd(fd: fd, events: events, revents: 0)) }
            for (fd, events) in checker.pollInterest { fds.append(pollfd(fd: fd, events: events, revents: 0)) }
            for (fd, events) in resolver.pollInterest { fds.append(pollfd(fd: fd, events: events, revents: 0)) }

            let n = poll(&fds, nfds_t(fds.count), Self.tickMs)
            if n < 0 && ing_errno() != EINTR {
                Log.error("poll failed: \(errnoText(ing_errno()))")   // should not happen; keep going
            }
            let now = monotonicNs()
            if n > 0 {
                for p in fds where p.revents != 0 {
                    if p.fd == signals.fd {
                        for sig in signals.drain() { handleSignal(sig, nowNs: now) }
                    } else if p.fd == watcher?.fd {
                        watcher?.handleReadable(nowNs: now)
                    } else if let id = checker.owns(p.fd) {
                        if checker.service(id: id, revents: p.revents, nowNs: now) { healthDirty = true }
                    } else if resolver.owns(p.fd) {
                        resolver.service(fd: p.fd, nowNs: now)
                    } else if readiness?.owns(p.fd) == true {
                        readiness?.service(fd: p.fd, revents: p.revents, nowNs: now) { respondReadiness(to: $0) }
                    } else {
                        admin.service(fd: p.fd, revents: p.revents, nowNs: now) { respond(to: $0, nowNs: now) }
                    }
                }
            }
            if let code = tick(nowNs: now) { return code }
        }
    }

    private func handleSignal(_ sig: Int32, nowNs: UInt64) {
        switch sig {
        case SIGCHLD: reap(nowNs: nowNs)
        case SIGHUP: reload(reason: "SIGHUP", nowNs: nowNs)
        case SIGTERM, SIGINT: beginDrain(signal: sig, nowNs: nowNs)
        case SIGUSR1:
            // logrotate: workers reopen the access log; we log one line per worker.
            killAll(SIGUSR1)
            logWorkers(nowNs: nowNs)
        default: break
        }
    }

    /// Timers; returns an exit code once a drain has finished.
    private func tick(nowNs: UInt64) -> Int32? {
        reap(nowNs: nowNs)   // SIGCHLD coalesces; a spare WNOHANG per tick costs nothing
        if nowNs >= nextTicketRotationNs { rotateTicketKeys(nowNs: nowNs) }
        if let w = systemd.watchdogIntervalNs, nowNs >= nextWatchdogPingNs {
            systemd.notify("WATCHDOG=1")
            nextWatchdogPingNs = nowNs + w
        }
        admin.expire(nowNs: nowNs)
        readiness?.expire(nowNs: nowNs)
        if drainDeadlineNs != nil { return drainTick(nowNs: nowNs) }

        if watcher?.takeDue(nowNs: nowNs) == true { reload(reason: "configuration files changed", nowNs: nowNs) }
        if pending != nil { tryPublish(nowNs: nowNs) }
        dnsTick(nowNs: nowNs)
        refreshDNSIfDue(nowNs: nowNs)
        respawnDue(nowNs: nowNs)
        watchdog(nowNs: nowNs)
        healthTick(nowNs: nowNs)
        reconcilePorts(nowNs: nowNs)
        closeUnusedListeners()
        if !startedReady && allServingAccepting {
            startedReady = true
            Log.info("ready: \(options.workers) worker(s) accepting on \(portList(desiredPorts)), generation \(generation)")
            systemd.notify("READY=1", "STATUS=serving generation \(generation) on \(portList(desiredPorts)) with \(options.workers) worker(s)")
        }
        return nil
    }

    /// Config loaded (always, once running) and every serving worker's slot says accepting.
    var allServingAccepting: Bool {
        var serving = 0
        for case let r? in records where r.role == .serving {
            guard r.pid != 0, region.workerSlot(r.slot).state == .accepting else { return false }
            serving += 1
        }
        return serving == options.workers
    }

    func portList(_ ports: [UInt16]) -> String {
        ports.isEmpty ? "no ports" : "port(s) " + ports.map(String.init).joined(separator: ",")
    }
}
