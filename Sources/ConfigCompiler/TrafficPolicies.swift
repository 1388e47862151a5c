// DestinationRule trafficPolicy → the load balancer and connection pool of one cluster
// (istio-semantics.md §4; Istio MergeTrafficPolicy, cluster_traffic_policy.go).
import IstioConfig
import RouteTable

/// The policy fields that apply to one cluster after Istio's merge.
struct MergedTrafficPolicy: Equatable {
    var loadBalancer: LoadBalancerSettings?
    var connectionPool: ConnectionPoolSettings?
    var outlierDetection: OutlierDetection?
    /// `tls` (UpstreamTLS.swift compiles it) and where the merge took it from: the field path
    /// inside its DestinationRule, and whether that is the subset's rule (else the top-level
    /// policy's rule).
    var tls: ClientTLSSettings?
    var tlsPath = ""
    var tlsFromSubset = false

    /// Istio's precedence, field by field (loadBalancer, connectionPool, outlierDetection, tls;
    /// Istio MergeTrafficPolicy and selectTrafficPolicyComponents):
    /// 1. the DestinationRule's top-level policy, replaced as a whole by its
    ///    `portLevelSettings` entry for `port` when there is one ("traffic settings specified at
    ///    the destination-level will not be inherited when overridden by port-level settings");
    /// 2. each field the subset's policy sets replaces the field from (1);
    /// 3. the subset's `portLevelSettings` entry for `port`, when there is one, replaces all.
    /// `port` is the destination's service port; `topPath` and `subsetPath` are the field paths
    /// of the two policies ("spec.trafficPolicy", "spec.subsets[1].trafficPolicy").
    init(top: TrafficPolicy?, subset: TrafficPolicy?, port: UInt32,
         topPath: String = "spec.trafficPolicy", subsetPath: String = "") {
        func portLevel(_ p: TrafficPolicy) -> (Int, TrafficPolicy.PortTrafficPolicy)? {
            p.portLevelSettings.enumerated().first { $0.element.port?.number == port }.map { ($0.offset, $0.element) }
        }
        if let t = top {
            if let (i, pl) = portLevel(t) {
                take(pl, path: "\(topPath).portLevelSettings[\(i)]", fromSubset: false)
            } else {
                loadBalancer = t.loadBalancer
                connectionPool = t.connectionPool
                outlierDetection = t.outlierDetection
                tls = t.tls
                tlsPath = "\(topPath).tls"
            }
        }
        guard let s = subset else { return }
        if let v = s.loadBalancer { loadBalancer = v }
        if let v = s.connectionPool { connectionPool = v }
        if let v = s.outlierDetection { outlierDetection = v }
        if let v = s.tls { tls = v; tlsPath = "\(subsetPath).tls"; tlsFromSubset = true }
        if let (i, pl) = portLevel(s) { take(pl, path: "\(subsetPath).portLevelSettings[\(i)]", fromSubset: true) }
    }

    /// Port-level settings replace all four fields, unset ones included.
    mutating func take(_ pl: TrafficPolicy.PortTrafficPolicy, path: String, fromSubset: Bool) {
        loadBalancer = pl.loadBalancer
        connectionPool = pl.connectionPool
        outlierDetection = pl.outlierDetection
        tls = pl.tls
        tlsPath = "\(path).tls"
        tlsFromSubset = fromSubset
    }

    /// `simple` (UNSPECIFIED and LEAST_CONN are LEAST_REQUEST, Istio's default) or
    /// `consistentHash` (ring hash unless `maglev` is given). A consistent hash without a key
    /// hashes nothing: Envoy then picks at random, so it becomes `.random` (so does a header
    /// name that is not a token).
    var loadBalancerSpec: LoadBalancerSpec {
        guard let lb = loadBalancer else { return LoadBalancerSpec() }
        if let ch = lb.consistentHash {
            let key: HashKeySpec
            if let h = ch.httpHeaderName, !h.isEmpty {
                // A name that is no token can never be present (validation warns): no key.
                guard h.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !"\"(),/:;<=>?@[\\]{}".utf8.contains($0) }) else {
                    return LoadBalancerSpec(kind: .random)
                }
                key = .header(h.lowercased())
            } else if let c = ch.httpCookie {
                key = .cookie(name: c.name, path: c.path.flatMap { $0.isEmpty ? nil : $0 },
                              ttlSeconds: c.ttl?.nanoseconds.map { UInt32(clamping: max($0, 0) / 1_000_000_000) })
            } else if ch.useSourceIp == true {
                key = .sourceIP
            } else if let q = ch.httpQueryParameterName, !q.isEmpty {
                key = .queryParameter(q)
            } else {
                return LoadBalancerSpec(kind: .random)
            }
            if let size = ch.maglevTableSize {
                return LoadBalancerSpec(kind: .maglev, hashKey: key,
                                        tableSize: size > 0 ? size : LoadBalancerSpec.defaultMaglevTableSize)
            }
            let ring = ch.ringHashMinimumRingSize ?? ch.minimumRingSize ?? 0
            return LoadBalancerSpec(kind: .ringHash, hashKey: key, tableSize: ring > 0 ? ring : LoadBalancerSpec.defaultRingSize)
        }
        switch lb.simple?.uppercased() {
        case "ROUND_ROBIN": return LoadBalancerSpec(kind: .roundRobin)
        case "RANDOM": return LoadBalancerSpec(kind: .random)
        case "PASSTHROUGH": return LoadBalancerSpec(kind: .passthrough)
        default: return LoadBalancerSpec(kind: .leastRequest)
        }
    }

    /// Limits Istio leaves unset (or sets to 0) stay at 2^32-1; `http.idleTimeout` given as 0s
    /// disables the idle timeout, absent keeps Envoy's 1 h.
    var connectionPoolSpec: ConnectionPoolSpec {
        var spec = ConnectionPoolSpec()
        func limit(_ v: Int32?) -> UInt32? { v.flatMap { $0 > 0 ? UInt32($0) : nil } }
        if let v = limit(connectionPool?.tcp?.maxConnections) { spec.maxConnections = v }
        if let h = connectionPool?.http {
            if let v = limit(h.http1MaxPendingRequests) { spec.maxPendingRequests = v }
            if let v = limit(h.http2MaxRequests) { spec.maxRequests = v }
            if let v = limit(h.maxRequestsPerConnection) { spec.maxRequestsPerConnection = v }
            if let v = limit(h.maxRetries) { spec.maxRetries = v }
            if let v = limit(h.maxConcurrentStreams) { spec.maxConcurrentStreams = v }
            if let ms = h.idleTimeout?.milliseconds { spec.idleTimeoutMs = clampMs(ms) }
            // http2KeepAlive (Istio: the cluster's HTTP/2 connection_keepalive); validation
            // requires both durations, at least 1 ms each.
            if let i = h.http2KeepAliveInterval?.milliseconds, let t = h.http2KeepAliveTimeout?.milliseconds,
               i > 0, t > 0 {
                spec.http2KeepaliveIntervalMs = clampMs(i)
                spec.http2KeepaliveTimeoutMs = clampMs(t)
            }
        }
        return spec
    }

    /// Whether the upstream speaks HTTP/2, as Istio's cluster builder decides it
    /// (istio-semantics.md §4 `connectionPool.http`, §5 `ports[].protocol`):
    /// * `http.useClientProtocol: true` wins: Envoy then follows the downstream protocol
    ///   (setUseDownstreamProtocol replaces the HTTP/2 options), as the data plane does with
    ///   `ClusterSpec.useClientProtocol`; not forced HTTP/2 here. Validation rejects it together
    ///   with `UPGRADE`.
    /// * an HTTP/2 port protocol (`GRPC`, `GRPC-WEB`, `HTTP2`: Istio's `Protocol.IsHTTP2`) is
    ///   always HTTP/2: Istio sets the HTTP/2 options when it builds the cluster, and
    ///   `DO_NOT_UPGRADE` (shouldH2Upgrade) only declines an upgrade, it never undoes them;
    /// * otherwise `h2UpgradePolicy: UPGRADE` upgrades (whatever the port protocol: Istio trusts
    ///   the rule); `DEFAULT`, `DO_NOT_UPGRADE` or none leave HTTP/1.1 (the mesh-wide default,
    ///   MeshConfig `h2UpgradePolicy`, is `DO_NOT_UPGRADE`; ingressd has no MeshConfig).
    /// `portProtocol` is the ServiceEntry `ports[].protocol` of the destination port, nil when no
    /// ServiceEntry names it.
    func http2(portProtocol: String?) -> Bool {
        if connectionPool?.http?.useClientProtocol == true { return false }
        switch portProtocol?.uppercased() {
        case "GRPC", "GRPC-WEB", "HTTP2": return true
        default: return connectionPool?.http?.h2UpgradePolicy?.uppercased() == "UPGRADE"
        }
    }

    /// `tcp.connectTimeout`; Istio's default is 10 s.
    var connectTimeoutMs: UInt32 {
        guard let ms = connectionPool?.tcp?.connectTimeout?.milliseconds, ms > 0 else { return 10_000 }
        return clampMs(ms)
    }
}
