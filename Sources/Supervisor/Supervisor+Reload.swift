#if canImport(Glibc)
import Glibc
#endif
import SharedMemory

// Reload (DESIGN.md §6): SIGHUP or a debounced `--watch` change. Load + validate + compile as a
// whole; an invalid configuration is rejected with every diagnostic logged and the old table
// keeps serving. A valid one is published as the next generation; when a worker still reads
// the slot it would overwrite (`.busy`), publishing is retried every tick.
extension Supervisor {
    func reload(reason: String, nowNs: UInt64) {
        guard drainDeadlineNs == nil else { return }
        Log.info("reloading configuration (\(reason))")
        systemd.notify("RELOADING=1", "MONOTONIC_USEC=\(SystemdNotifier.monotonicUsec())", "STATUS=reloading")
        reloadInProgress = true

        // Reading and validating is bounded (InputLimits) and never waits on DNS; names are
        // looked up in child processes and the reload finishes in compileAndPublish.
        switch ConfigPipeline.parse(paths: options.configPaths, namespace: options.namespace,
                                    credentialsDir: options.credentialsDir) {
        case .invalid(let diagnostics):
            if case .reload? = dnsJob { resolver.cancel(); dnsJob = nil }
            for d in diagnostics { Log.error(d) }
            rejectReload("configuration is invalid (\(diagnostics.count) problem(s))")
        case .valid(let parsed):
            if !resolveThenReload(parsed, nowNs: nowNs) {
                if resolver.isBusy { resolver.cancel(); dnsJob = nil }
                compileAndPublish(parsed, nowNs: nowNs)
            }
        }
    }

    /// The second half of a reload: compile with the cached answers, open new ports, publish.
    func compileAndPublish(_ parsed: ParsedConfig, nowNs: UInt64) {
        switch ConfigPipeline.compile(parsed, endpointIds: endpointIds, resolve: dnsCache.cached) {
        case .invalid(let diagnostics):
            for d in diagnostics { Log.error(d) }
            rejectReload("configuration is invalid (\(diagnostics.count) problem(s))")
        case .valid(let c):
            for note in c.notes { Log.info(note) }
            guard c.listenerPorts.count <= WorkerDescriptors.maxListeners else {
                rejectReload("\(c.listenerPorts.count) listener ports; at most \(WorkerDescriptors.maxListeners) are supported")
                return
            }
            // New ports must be listening before any worker can be given them; a port we
            // cannot bind rejects the whole configuration (unused new sockets are closed by
            // closeUnusedListeners on the next tick).
            for port in c.listenerPorts {
                if let e = listeners.open(port: port) {
                    rejectReload(e.description)
                    return
                }
            }
            pending = c
            pendingSinceNs = nowNs
            tryPublish(nowNs: nowNs)
        }
    }

    private func rejectReload(_ why: String) {
        reloadFailures += 1
        Log.error("reload rejected: \(why); still serving generation \(generation)")
        finishReload(status: "reload rejected; serving generation \(generation)")
    }

    private func finishReload(status: String) {
        guard reloadInProgress else { return }
        reloadInProgress = false
        systemd.notify("READY=1", "STATUS=\(status)")
    }

    /// Publishes `pending` if the table slot is free.
    func tryPublish(nowNs: UInt64) {
        guard let c = pending else { return }
        let live = records.compactMap { $0 }.filter { $0.pid != 0 }.map(\.slot)
        do {
            switch try region.publish(image: c.image, liveWorkers: live) {
            case .published(let g):
                let oldPorts = desiredPorts
                generation = g
                config = c
                pending = nil
                watcher?.watch(files: c.certificateFiles)
                desiredPorts = c.listenerPorts
                reloads += 1
                healthConfigChanged(nowNs: nowNs)
                Log.info("reload: published generation \(g) (\(c.image.count) bytes, \(portList(c.listenerPorts))\(oldPorts == desiredPorts ? "" : ", ports changed"))")
                finishReload(status: "serving generation \(g) on \(portList(desiredPorts))")
            case .busy(let w):
                // Only a worker that is stuck mid-copy holds a slot for long; the watchdog
                // deals with it. Say so once a second instead of every tick.
                let waited = nowNs &- pendingSinceNs
                if waited >= 1_000_000_000 && (waited / 100_000_000) % 10 == 0 {
                    Log.warning("reload: table slot still in use by worker slot \(w) after \(msText(waited)); retrying")
                }
            }
        } catch {
            pending = nil
            rejectReload("\(error)")
        }
    }
}
