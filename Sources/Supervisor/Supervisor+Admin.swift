#if canImport(Glibc)
import ConfigCompiler
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
        case "/stats/prometheus":
            return AdminResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: prometheusText())
        case "/clusters":
            return .json(clustersJSON(nowNs: nowNs))
        default:
            return .text("not found\n", status: 404)
        }
    }

    /// The `--readiness` listener: `/healthz/ready` (Istio's path on port 15021) and nothing else.
    func respondReadiness(to request: AdminRequest) -> AdminResponse {
        guard request.path == "/healthz/ready" else { return .text("not found\n", status: 404) }
        return respond(to: request, nowNs: 0)
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
}
