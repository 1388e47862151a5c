// Per-cluster health policies, carried in `ClusterSpec` for the supervisor only: workers never
// read them (they only read the health array the supervisor writes), so they are not part of
// the table image.

/// DestinationRule `trafficPolicy.outlierDetection`, with Istio's defaults for omitted fields
/// (istio-semantics.md §4). Present only when the DestinationRule has the block: Istio does no
/// outlier detection without it.
public struct OutlierPolicy: Sendable, Equatable {
    /// 0 disables.
    public var consecutive5xxErrors: UInt32 = 5
    /// 0 disables (Istio's default: disabled).
    public var consecutiveGatewayErrors: UInt32 = 0
    /// How often ejection multipliers decay (and Envoy's sweep interval).
    public var intervalMs: UInt64 = 10_000
    /// Ejection time = base × times ejected.
    public var baseEjectionTimeMs: UInt64 = 30_000
    public var maxEjectionPercent: UInt32 = 10
    /// Below this share of healthy endpoints the cluster ignores health (Envoy's panic mode).
    public var minHealthPercent: UInt32 = 0

    public init() {}
}

/// An active health check (annotation `ingressd.io/health-check`, see README), run once by the
/// supervisor for every endpoint of the cluster.
public struct HealthCheckPolicy: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A TCP connect succeeds.
        case tcp
        /// `GET path` answers 2xx.
        case http(path: String)
    }
    public var kind: Kind
    public var intervalMs: UInt64 = 5_000
    public var timeoutMs: UInt64 = 1_000
    /// Consecutive successes that make an unhealthy endpoint healthy.
    public var healthyThreshold: UInt32 = 2
    /// Consecutive failures that make a healthy endpoint unhealthy.
    public var unhealthyThreshold: UInt32 = 3

    public init(kind: Kind) { self.kind = kind }
}
