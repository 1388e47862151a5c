#if canImport(Glibc)
import Glibc
#endif
import SharedMemory

// Rolling the workers onto a new set of listener ports (a reload that added or removed a
// Gateway port). The serving set keeps serving until a complete replacement set accepts on the
// new sockets; then the old set gets SIGTERM and drains. Sockets of removed ports are closed
// only once no process holds them (closing a reuseport socket resets its queue).
//
// Written as a reconciler, run every tick, so reloads during a roll, crash loops of the new
// set and slot shortages all resolve the same way: compare what is with what should be.
extension Supervisor {
    func reconcilePorts(nowNs: UInt64) {
        let servingPorts = records.first(where: { $0?.role == .serving })??.ports ?? desiredPorts
        let incoming = records.compactMap { $0 }.filter { $0.role == .incoming }

        if let first = incoming.first, first.ports != desiredPorts || servingPorts == desiredPorts {
            // The incoming set is for ports no longer wanted: retire it.
            for r in incoming { retire(slot: r.slot, nowNs: nowNs, why: "superseded before it was ready") }
            return
        }
        guard servingPorts != desiredPorts else {
            retireOverdue(nowNs: nowNs)
            return
        }
        if incoming.isEmpty {
            let free = records.indices.filter { records[$0] == nil }
            guard free.count >= options.workers else {
                Log.debug("port change waits for \(options.workers) free worker slots (\(free.count) free)")
                retireOverdue(nowNs: nowNs)
                return
            }
            Log.info("listener ports change \(portList(servingPorts)) → \(portList(desiredPorts)): starting a new worker set")
            for i in 0..<options.workers {
                let slot = free[i]
                records[slot] = WorkerRecord(slot: slot, logical: i, ports: desiredPorts, role: .incoming)
                spawnProcess(slot: slot, nowNs: nowNs)
            }
            return
        }
        // Promote once every incoming worker accepts.
        let ready = incoming.count == options.workers && incoming.allSatisfy {
            $0.pid != 0 && region.workerSlot($0.slot).state == .accepting
        }
        if ready {
            for case let r? in records where r.role == .serving {
                retire(slot: r.slot, nowNs: nowNs, why: "replaced by the worker set on \(portList(desiredPorts))")
            }
            for r in incoming { records[r.slot]?.role = .serving }
            Log.info("worker set rolled onto \(portList(desiredPorts))")
        }
        retireOverdue(nowNs: nowNs)
    }

    /// SIGTERMs a worker that must go (its replacement, if any, is already in place).
    func retire(slot: Int, nowNs: UInt64, why: String) {
        guard var r = records[slot] else { return }
        r.role = .retiring
        if r.pid == 0 {
            records[slot] = nil   // nothing running (in back-off): just forget it
            return
        }
        Log.info("worker \(r.logical) (pid \(r.pid), slot \(slot)) retiring: \(why)")
        kill(r.pid, SIGTERM)
        r.termSentNs = nowNs
        records[slot] = r
    }

    /// Retiring workers get the drain timeout, then SIGKILL.
    func retireOverdue(nowNs: UInt64) {
        let limit = options.drainTimeoutMs * 1_000_000
        for case var r? in records where r.role == .retiring && r.pid != 0 && !r.killSent {
            guard let t = r.termSentNs, nowNs &- t > limit else { continue }
            Log.warning("worker \(r.logical) (pid \(r.pid), slot \(r.slot)) did not drain within \(msText(limit)); killing it")
            kill(r.pid, SIGKILL)
            r.killSent = true
            records[r.slot] = r
        }
    }

    /// Closes sockets of ports that neither the configuration (in effect or pending) nor any
    /// remaining worker uses.
    func closeUnusedListeners() {
        var used = Set(desiredPorts)
        if let p = pending { used.formUnion(p.listenerPorts) }
        for case let r? in records { used.formUnion(r.ports) }
        for port in listeners.ports where !used.contains(port) { listeners.close(port: port) }
    }
}
