// DestinationRule outlierDetection and the `ingressd.io/health-check` annotation → the
// supervisor-only policies of a cluster (RouteTable/ClusterPolicy.swift).
import IstioConfig
import RouteTable

/// The annotation that configures an active health check, on a ServiceEntry or DestinationRule.
public let healthCheckAnnotation = "ingressd.io/health-check"

extension Registry {
    /// `od` is the cluster's merged outlierDetection (MergedTrafficPolicy: a subset's replaces
    /// the service-level one, port-level settings replace both).
    func outlierPolicy(_ od: OutlierDetection?) -> OutlierPolicy? {
        guard let od else { return nil }
        var p = OutlierPolicy()
        if let v = od.consecutive5xxErrors { p.consecutive5xxErrors = v }
        else if let v = od.consecutiveErrors, v >= 0 { p.consecutive5xxErrors = UInt32(v) }   // deprecated alias
        if let v = od.consecutiveGatewayErrors { p.consecutiveGatewayErrors = v }
        if let ms = od.interval?.milliseconds, ms > 0 { p.intervalMs = UInt64(ms) }
        if let ms = od.baseEjectionTime?.milliseconds, ms > 0 { p.baseEjectionTimeMs = UInt64(ms) }
        if let v = od.maxEjectionPercent, v >= 0 { p.maxEjectionPercent = UInt32(min(v, 100)) }
        if let v = od.minHealthPercent, v >= 0 { p.minHealthPercent = UInt32(min(v, 100)) }
        return p
    }

    /// The health check of a cluster: the ServiceEntry's annotation first, then the first
    /// DestinationRule for the host that has one. A malformed annotation is an error.
    mutating func healthCheckPolicy(entry: ResourceMeta?, fqdn: String, namespace: String) -> HealthCheckPolicy? {
        var source: ResourceMeta? = nil
        if let m = entry, m.annotations[healthCheckAnnotation] != nil {
            source = m
        } else {
            source = rules.first { meta, dr in
                meta.annotations[healthCheckAnnotation] != nil
                    && HostName.subsetOf(fqdn, HostName.fqdn(dr.host, namespace: meta.namespace))
            }?.0
        }
        guard let meta = source, let text = meta.annotations[healthCheckAnnotation] else { return nil }
        switch parseHealthCheck(text) {
        case .success(let p):
            return p
        case .failure(let why):
            diagnostics.append(meta.diagnostic(.error, "metadata.annotations.\(healthCheckAnnotation)", why.description))
            return nil
        }
    }
}

/// `tcp|http:/PATH [interval=5s] [timeout=1s] [healthy=2] [unhealthy=3]`.
public func parseHealthCheck(_ text: String) -> Result<HealthCheckPolicy, ParseHealthCheckError> {
    let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    let usage = "expected \"tcp|http:/PATH [interval=DURATION] [timeout=DURATION] [healthy=N] [unhealthy=N]\""
    guard let first = words.first else { return .failure(ParseHealthCheckError("empty health check; \(usage)")) }
    var policy: HealthCheckPolicy
    if first == "tcp" {
        policy = HealthCheckPolicy(kind: .tcp)
    } else if first.hasPrefix("http:/") {
        let path = String(first.dropFirst(5))
        guard !path.contains(where: { $0 == "\r" || $0 == "\n" }) else {
            return .failure(ParseHealthCheckError("health check path \(path) is not a valid path"))
        }
        policy = HealthCheckPolicy(kind: .http(path: path))
    } else {
        return .failure(ParseHealthCheckError("unknown health check \"\(first)\"; \(usage)"))
    }
    for w in words.dropFirst() {
        let kv = w.split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2 else { return .failure(ParseHealthCheckError("\"\(w)\": \(usage)")) }
        switch kv[0] {
        case "interval", "timeout":
            guard let ms = Duration(kv[1]).milliseconds, ms > 0 else {
                return .failure(ParseHealthCheckError("\(kv[0])=\(kv[1]) is not a positive duration (e.g. 5s, 500ms)"))
            }
            if kv[0] == "interval" { policy.intervalMs = UInt64(ms) } else { policy.timeoutMs = UInt64(ms) }
        case "healthy", "unhealthy":
            guard let n = UInt32(kv[1]), n >= 1, n <= 100 else {
                return .failure(ParseHealthCheckError("\(kv[0])=\(kv[1]) must be a number from 1 to 100"))
            }
            if kv[0] == "healthy" { policy.healthyThreshold = n } else { policy.unhealthyThreshold = n }
        default:
            return .failure(ParseHealthCheckError("unknown health check option \"\(kv[0])\"; \(usage)"))
        }
    }
    return .success(policy)
}

public struct ParseHealthCheckError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}
