#if canImport(Glibc)
import Glibc
#endif
import SharedMemory

// Answers of the admin endpoint (DESIGN.md §7). Built from the supervisor's own state and the
// workers' slots; the responder runs synchronously inside AdminServer.service.
extension Supervisor {
    func respond(to request: AdminRequest, nowNs: UInt64) -> AdminResponse {
        switch request.path {
        case "/ready", "/healthz/ready":
            // Istio's readiness answers "LIVE" (Envoy's server state) when ready.
            if drainDeadlineNs == nil && allServingAccepting { return .text("LIVE\n") }
            return .text(drainDeadlineNs != nil ? "DRAINING\n" : "NOT READY\n", status: 503)
        case "/config_dump":
            return .json(config.configDump(generation))
        case "/workers":
            return .json(workersJSON(nowNs: nowNs))
        case "/stats":
            return .json(statsJSON())
        default:
            return .text("not found\n", status: 404)
        }
    }

    func workersJSON(nowNs: UInt64) -> String {
        let rows = records.compactMap { $0 }.sorted { ($0.logical, $0.slot) < ($1.logical, $1.slot) }.map { r -> String in
            let ws = region.workerSlot(r.slot)
            let beat = ws.heartbeatNs
            let age = (r.pid != 0 && beat != 0 && nowNs >= beat) ? String((nowNs - beat) / 1_000_000) : "null"
            return JSONText.object([
                ("index", String(r.slot)),
                ("worker", String(r.logical)),
                ("pid", String(r.pid)),
                ("role", JSONText.string(r.role.rawValue)),
                ("state", JSONText.string(r.pid == 0 ? (r.respawnAtNs != nil ? "backoff" : "stopped") : "\(ws.state)")),
                ("generationInUse", String(ws.generationInUse)),
                ("heartbeatAgeMs", age),
                ("restarts", String(restarts[r.logical])),
                ("ports", JSONText.array(r.ports.map(String.init))),
            ])
        }
        return JSONText.object([
            ("generation", String(generation)),
            ("workers", JSONText.array(rows)),
        ])
    }

    func statsJSON() -> String {
        let counters: [(String, Int)] = [
            ("connectionsAccepted", WorkerSlotField.connectionsAccepted),
            ("connectionsActive", WorkerSlotField.connectionsActive),
            ("requestsTotal", WorkerSlotField.requestsTotal),
            ("responses1xx", WorkerSlotField.responses1xx),
            ("responses2xx", WorkerSlotField.responses1xx + 8),
            ("responses3xx", WorkerSlotField.responses1xx + 16),
            ("responses4xx", WorkerSlotField.responses1xx + 24),
            ("responses5xx", WorkerSlotField.responses1xx + 32),
            ("upstreamConnectFailures", WorkerSlotField.upstreamConnectFailures),
            ("badRequests", WorkerSlotField.badRequests),
            ("upstreamConnectionsOpened", WorkerSlotField.upstreamConnectionsOpened),
        ]
        // Counters survive restarts (slots keep them), so totals sum every slot; the active
        // connection gauge only counts live workers.
        let live = Set(records.compactMap { $0 }.filter { $0.pid != 0 }.map(\.slot))
        var fields: [(String, String)] = counters.map { name, offset in
            var sum: UInt64 = 0
            for s in 0..<region.maxWorkers where offset != WorkerSlotField.connectionsActive || live.contains(s) {
                sum &+= region.workerSlot(s).counter(offset)
            }
            return (name, String(sum))
        }
        fields += [
            ("workers", String(live.count)),
            ("workerRestarts", String(restarts.reduce(0, +))),
            ("reloads", String(reloads)),
            ("reloadFailures", String(reloadFailures)),
            ("generation", String(generation)),
        ]
        return JSONText.object(fields)
    }
}
