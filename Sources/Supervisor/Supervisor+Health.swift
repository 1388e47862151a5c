#if canImport(Glibc)
import Glibc
#endif
import CSupport
import RouteTable
import SharedMemory

// One health view over all workers (DESIGN.md §1 "aggregate the passive failure reports of all
// workers into one health view"): passive outlier detection from the workers' per-endpoint
// evidence, active probes from `HealthChecker`, published in the health array that every
// worker reads when it picks an endpoint.

/// Health words (the shared-memory health array; any non-zero word = do not pick).
enum HealthWord {
    /// Ejected by outlier detection.
    static let ejected: UInt64 = 1 << 0
    /// Failed active health checks.
    static let failedCheck: UInt64 = 1 << 1
}

/// The supervisor's state of one endpoint (by stable id).
struct EndpointHealthState {
    /// CLOCK_MONOTONIC ns until which the endpoint is ejected; 0 = not ejected.
    var ejectedUntilNs: UInt64 = 0
    /// Envoy's ejection multiplier: ejection time = base × this; decays by one per `interval`
    /// spent healthy.
    var multiplier: UInt32 = 0
    var lastDecayNs: UInt64 = 0
    var ejectionsTotal: UInt64 = 0
    var reason = ""
    /// Per worker slot: the evidence counters when the evidence was last reset (at ejection and
    /// at return), so old failures do not count twice.
    var baseline: [Int: Evidence] = [:]

    struct Evidence {
        var consecutive5xx: UInt64
        var non5xx: UInt64
        var consecutiveGateway: UInt64
        var nonGateway: UInt64
    }
}

extension Supervisor {
    var liveSlots: [Int] { records.compactMap { $0 }.filter { $0.pid != 0 }.map(\.slot) }

    /// Every tick: eject endpoints whose consecutive errors, summed over all workers, crossed a
    /// threshold; return those whose ejection time passed; publish changed health words.
    func healthTick(nowNs: UInt64) {
        if checker.tick(nowNs: nowNs) { healthDirty = true }
        let slots = liveSlots
        for cluster in config.spec.clusters {
            guard let od = cluster.outlier, !cluster.endpoints.isEmpty else { continue }
            var ejected = cluster.endpoints.filter { (endpointHealth[$0.id]?.ejectedUntilNs ?? 0) != 0 }.count
            for e in cluster.endpoints {
                var st = endpointHealth[e.id] ?? EndpointHealthState(lastDecayNs: nowNs)
                defer { endpointHealth[e.id] = st }
                if st.ejectedUntilNs != 0 {
                    guard nowNs >= st.ejectedUntilNs else { continue }
                    st.ejectedUntilNs = 0
                    st.lastDecayNs = nowNs
                    st.baseline = evidence(e.id, slots: slots)
                    ejected -= 1
                    healthDirty = true
                    Log.info("outlier detection: \(cluster.name) \(IPAddress(bytes: e.address).withPort(e.port)) returns to service")
                    continue
                }
                if st.multiplier > 0 && nowNs &- st.lastDecayNs >= od.intervalMs * 1_000_000 {
                    st.multiplier -= 1
                    st.lastDecayNs = nowNs
                }
                let (c5, cg) = consecutiveErrors(e.id, slots: slots, baseline: st.baseline)
                let why: String
                if od.consecutive5xxErrors > 0 && c5 >= UInt64(od.consecutive5xxErrors) {
                    why = "\(c5) consecutive 5xx"
                } else if od.consecutiveGatewayErrors > 0 && cg >= UInt64(od.consecutiveGatewayErrors) {
                    why = "\(cg) consecutive gateway errors"
                } else {
                    continue
                }
                // Envoy: eject while the ejected share is below maxEjectionPercent, and always
                // at least one endpoint.
                guard ejected == 0 || ejected * 100 / cluster.endpoints.count < Int(od.maxEjectionPercent) else { continue }
                st.multiplier += 1
                // Envoy's max_ejection_time default (300 s) caps the growth, never below base.
                let timeMs = min(od.baseEjectionTimeMs * UInt64(st.multiplier), max(od.baseEjectionTimeMs, 300_000))
                st.ejectedUntilNs = nowNs + timeMs * 1_000_000
                st.ejectionsTotal += 1
                st.reason = why
                st.baseline = evidence(e.id, slots: slots)
                ejected += 1
                healthDirty = true
                Log.warning("outlier detection: ejecting \(cluster.name) \(IPAddress(bytes: e.address).withPort(e.port)) for \(msText(timeMs * 1_000_000)) (\(why) across all workers)")
            }
        }
        if healthDirty { publishHealth(nowNs: nowNs) }
    }

    /// The evidence counters of endpoint `id` in each live slot.
    func evidence(_ id: UInt32, slots: [Int]) -> [Int: EndpointHealthState.Evidence] {
        var out: [Int: EndpointHealthState.Evidence] = [:]
        for s in slots {
            guard let p = region.workerSlot(s).endpointRecord(id) else { continue }
            out[s] = .init(consecutive5xx: statLoad(p, EndpointStats.consecutive5xx), non5xx: statLoad(p, EndpointStats.non5xx),
                           consecutiveGateway: statLoad(p, EndpointStats.consecutiveGateway),
                           nonGateway: statLoad(p, EndpointStats.nonGateway))
        }
        return out
    }

    /// Consecutive 5xx and gateway errors since the baseline, summed over the workers: a worker
    /// whose reset counter moved counts from its reset, one whose did not from the baseline.
    func consecutiveErrors(_ id: UInt32, slots: [Int], baseline: [Int: EndpointHealthState.Evidence]) -> (UInt64, UInt64) {
        var c5: UInt64 = 0
        var cg: UInt64 = 0
        for (s, now) in evidence(id, slots: slots) {
            if let b = baseline[s], b.non5xx == now.non5xx, now.consecutive5xx >= b.consecutive5xx {
                c5 += now.consecutive5xx - b.consecutive5xx
            } else {
                c5 += now.consecutive5xx
            }
            if let b = baseline[s], b.nonGateway == now.nonGateway, now.consecutiveGateway >= b.consecutiveGateway {
                cg += now.consecutiveGateway - b.consecutiveGateway
            } else {
                cg += now.consecutiveGateway
            }
        }
        return (c5, cg)
    }

    /// Writes the health word of every endpoint of the configuration in effect. A cluster whose
    /// healthy share is below its minHealthPercent ignores health (Envoy's panic mode: traffic
    /// goes to every endpoint rather than to none).
    func publishHealth(nowNs: UInt64) {
        healthDirty = false
        for cluster in config.spec.clusters {
            var words: [UInt64] = cluster.endpoints.map { e in
                var w: UInt64 = 0
                if (endpointHealth[e.id]?.ejectedUntilNs ?? 0) != 0 { w |= HealthWord.ejected }
                if let p = checker.state(e.id), !p.healthy { w |= HealthWord.failedCheck }
                return w
            }
            let healthy = words.filter { $0 == 0 }.count
            if let min = cluster.outlier?.minHealthPercent, min > 0, !words.isEmpty,
               healthy * 100 < Int(min) * words.count {
                words = words.map { _ in 0 }
            }
            for (e, w) in zip(cluster.endpoints, words) where publishedHealth[e.id] != w {
                region.setEndpointHealth(e.id, w)
                publishedHealth[e.id] = w
            }
        }
    }

    /// After a new configuration is in effect: probe its endpoints, publish its health words.
    func healthConfigChanged(nowNs: UInt64) {
        if endpointIds.reassigned {
            // Ids now name other endpoints: forget everything said about the old ones.
            for (id, _) in publishedHealth { region.setEndpointHealth(id, 0) }
            publishedHealth = [:]
            endpointHealth = [:]
        }
        checker.configure(config.spec, nowNs: nowNs)
        for c in config.spec.clusters { clusterNames[StatKey.hash(c.name)] = c.name }
        healthDirty = true
        publishHealth(nowNs: nowNs)
    }
}
