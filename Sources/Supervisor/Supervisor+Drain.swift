#if canImport(Glibc)
import Glibc
#endif
import SharedMemory

// Drain (DESIGN.md §6): SIGTERM/SIGINT. Workers stop accepting (the region's draining flag and
// SIGTERM), finish what is in flight and exit; stragglers get SIGKILL after --drain-timeout.
// The supervisor exits 0 once every worker is reaped. A second SIGTERM/SIGINT cuts the drain
// short (SIGKILL now): the operator's Ctrl-C twice.
extension Supervisor {
    func beginDrain(signal: Int32, nowNs: UInt64) {
        let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
        if drainDeadlineNs != nil {
            Log.warning("\(name) during drain: killing the remaining workers now")
            drainDeadlineNs = nowNs
            return
        }
        let timeout = options.drainTimeoutMs * 1_000_000
        Log.info("\(name): draining (up to \(msText(timeout)))")
        systemd.notify("STOPPING=1", "STATUS=draining")
        region.draining = true
        drainDeadlineNs = nowNs + timeout
        for i in records.indices {
            guard var r = records[i] else { continue }
            r.respawnAtNs = nil
            if r.pid != 0 {
                kill(r.pid, SIGTERM)
                r.termSentNs = nowNs
                records[i] = r
            } else {
                records[i] = nil
            }
        }
    }

    /// The tick while draining; returns 0 once no worker is left.
    func drainTick(nowNs: UInt64) -> Int32? {
        let running = records.compactMap { $0 }.filter { $0.pid != 0 }
        if running.isEmpty {
            Log.info("drained; exiting")
            return ExitStatus.success
        }
        if let deadline = drainDeadlineNs, nowNs >= deadline, !drainKillSent {
            drainKillSent = true
            Log.warning("\(running.count) worker(s) still running at the drain deadline; killing them")
            killAll(SIGKILL)
        }
        return nil
    }
}
