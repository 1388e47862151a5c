#if canImport(Glibc)
import Glibc
#endif
import CSupport
import SharedMemory

// Worker lifecycle: spawn, reap, replace (with crash-loop back-off), the heartbeat watchdog.
// A misbehaving worker never makes the supervisor exit (DESIGN.md §6).
extension Supervisor {
    /// Starts the process of `records[slot]` on its logical index's sockets.
    @discardableResult
    func spawnProcess(slot: Int, nowNs: UInt64, atStartup: Bool = false) -> Result<pid_t, SpawnError> {
        guard var r = records[slot] else { preconditionFailure("spawn into an empty record") }
        let launch = WorkerLaunch(slot: slot, sharedMemoryFd: sharedMemoryFd,
                                  listeners: listeners.descriptors(worker: r.logical, ports: r.ports),
                                  drainTimeoutMs: options.drainTimeoutMs, logLevel: options.logLevel,
                                  accessLog: options.accessLog, headerTimeoutMs: options.headerTimeoutMs,
                                  idleTimeoutMs: options.idleTimeoutMs,
                                  streamIdleTimeoutMs: options.streamIdleTimeoutMs,
                                  http2MaxConcurrentStreams: options.http2MaxConcurrentStreams)
        // Reset before the process exists so it can never observe its predecessor's state;
        // the pid is filled in right after (workers do not read it).
        region.workerSlot(slot).reset(pid: 0)
        let result = spawner.spawn(launch)
        switch result {
        case .success(let pid):
            region.workerSlot(slot).pid = pid
            r.pid = pid
            r.spawnedNs = nowNs
            r.respawnAtNs = nil
            r.killSent = false
            Log.info("worker \(r.logical) started: pid \(pid), slot \(slot), \(portList(r.ports))")
        case .failure(let e):
            region.workerSlot(slot).state = .empty
            r.pid = 0
            if atStartup { return result }   // the caller gives up: exit 3
            // Counts as a death: a binary that cannot exec must not be retried in a tight loop.
            let delay = crashGuards[r.logical].recordDeath(nowNs: nowNs, livedNs: 0)
            r.respawnAtNs = nowNs + max(delay, 100_000_000)
            Log.error("worker \(r.logical): \(e.description); retrying in \(msText(r.respawnAtNs! - nowNs))")
        }
        records[slot] = r
        return result
    }

    /// Collects every exited child (waitpid WNOHANG until none) and decides what replaces it.
    func reap(nowNs: UInt64) {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }   // 0: children left but none exited; -1 ECHILD: no children
            guard let slot = records.firstIndex(where: { $0?.pid == pid }), var r = records[slot] else {
                Log.debug("reaped unknown child \(pid): \(describeWaitStatus(status))")
                continue
            }
            let ws = region.workerSlot(slot)
            ws.pid = 0
            ws.state = .empty   // nobody writes the slot any more; /ready must not trust it
            foldSlot(slot)      // its counters survive it (Supervisor+Stats.swift)
            r.pid = 0
            let how = describeWaitStatus(status)

            if drainDeadlineNs != nil || r.role == .retiring {
                Log.info("worker \(r.logical) (pid \(pid), slot \(slot)) \(how) after SIGTERM")
                records[slot] = nil
                continue
            }
            restarts[r.logical] += 1
            let lived = nowNs &- r.spawnedNs
            let delay = crashGuards[r.logical].recordDeath(nowNs: nowNs, livedNs: lived)
            if delay == 0 {
                Log.warning("worker \(r.logical) (pid \(pid), slot \(slot)) \(how) after \(msText(lived)); replacing it")
                records[slot] = r
                spawnProcess(slot: slot, nowNs: nowNs)
            } else {
                r.respawnAtNs = nowNs + delay
                records[slot] = r
                Log.warning("worker \(r.logical) (pid \(pid), slot \(slot)) \(how) after \(msText(lived)); restarting too often, next start in \(msText(delay))")
            }
        }
    }

    /// Starts replacements whose back-off has expired.
    func respawnDue(nowNs: UInt64) {
        for case let r? in records where r.pid == 0 && r.role != .retiring {
            if let due = r.respawnAtNs, nowNs >= due { spawnProcess(slot: r.slot, nowNs: nowNs) }
        }
    }

    /// SIGKILLs accepting workers whose heartbeat is older than `heartbeatTimeoutNs`; the reap
    /// that follows replaces them like any other death.
    func watchdog(nowNs: UInt64) {
        for case var r? in records where r.pid != 0 && !r.killSent {
            let ws = region.workerSlot(r.slot)
            guard ws.state == .accepting else { continue }
            let beat = ws.heartbeatNs
            guard beat != 0, nowNs > beat, nowNs - beat > Self.heartbeatTimeoutNs else { continue }
            Log.warning("worker \(r.logical) (pid \(r.pid), slot \(r.slot)) has not heart-beaten for \(msText(nowNs - beat)); killing it")
            kill(r.pid, SIGKILL)
            r.killSent = true
            records[r.slot] = r
        }
    }

    /// Sends `sig` to every running worker.
    func killAll(_ sig: Int32) {
        for case let r? in records where r.pid != 0 { kill(r.pid, sig) }
    }

    /// SIGUSR1: one line per worker, for an operator without curl.
    func logWorkers(nowNs: UInt64) {
        Log.info("generation \(generation), reloads \(reloads), reload failures \(reloadFailures), ports \(portList(listeners.ports))")
        for case let r? in records {
            let ws = region.workerSlot(r.slot)
            Log.info("worker \(r.logical) slot \(r.slot) \(r.role.rawValue) pid \(r.pid) state \(ws.state) generation \(ws.generationInUse) restarts \(restarts[r.logical])")
        }
    }
}

/// "250ms", "1.5s", "30s".
func msText(_ ns: UInt64) -> String {
    let ms = ns / 1_000_000
    if ms < 1000 { return "\(ms)ms" }
    if ms % 1000 == 0 { return "\(ms / 1000)s" }
    return "\(ms / 1000).\(ms % 1000 / 100)s"
}
