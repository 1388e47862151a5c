// DestinationRule `trafficPolicy.loadBalancer` and `connectionPool` as they apply to one
// cluster, after Istio's merge (top level, then port level, then subset, then the subset's
// port level; istio-semantics.md §4). Compiler's view; carried in the image (Cluster record,
// TableLayout.swift) for the workers, which pick endpoints and enforce the limits.

/// How a cluster picks an endpoint. Raw values are part of the image format.
public enum LoadBalancerKind: UInt8, Sendable, Equatable {
    case roundRobin = 1
    /// Istio's default (`UNSPECIFIED`), and what `LEAST_CONN` means: Envoy's power of two
    /// choices on active requests.
    case leastRequest = 2
    case random = 3
    /// Forward to the request's original destination address (no endpoint choice).
    case passthrough = 4
    /// `consistentHash` with `ringHash` (the default consistent-hash algorithm).
    case ringHash = 5
    /// `consistentHash` with `maglev`.
    case maglev = 6
}

/// What a consistent hash is computed over. Raw values are part of the image format.
public enum HashKeyKind: UInt8, Sendable, Equatable {
    case none = 0
    case header = 1
    case cookie = 2
    case sourceIP = 3
    case queryParameter = 4
}

public enum HashKeySpec: Sendable, Equatable {
    /// `httpHeaderName`, lower-case.
    case header(String)
    /// `httpCookie`: with a TTL the cookie is generated when the request lacks it (TTL 0: a
    /// session cookie); without one a request lacking the cookie is not hashed.
    case cookie(name: String, path: String?, ttlSeconds: UInt32?)
    /// `useSourceIp`.
    case sourceIP
    /// `httpQueryParameterName`, as written.
    case queryParameter(String)
}

public struct LoadBalancerSpec: Sendable, Equatable {
    public var kind: LoadBalancerKind
    /// Set exactly when `kind` is `.ringHash` or `.maglev`.
    public var hashKey: HashKeySpec?
    /// `.ringHash`: minimum ring size (default 1024); `.maglev`: table size (default 65537,
    /// prime); 0 otherwise.
    public var tableSize: UInt32

    public init(kind: LoadBalancerKind = .leastRequest, hashKey: HashKeySpec? = nil, tableSize: UInt32 = 0) {
        self.kind = kind
        self.hashKey = hashKey
        self.tableSize = tableSize
    }

    public static let defaultRingSize: UInt32 = 1024
    public static let defaultMaglevTableSize: UInt32 = 65537
}

/// Circuit-breaker limits and connection reuse. An unset limit is 2^32-1, as Istio writes it
/// into Envoy's thresholds: effectively unlimited.
public struct ConnectionPoolSpec: Sendable, Equatable {
    /// `tcp.maxConnections`: upstream connections of this cluster, per worker.
    public var maxConnections: UInt32
    /// `http.http1MaxPendingRequests`: requests waiting for a connection.
    public var maxPendingRequests: UInt32
    /// `http.http2MaxRequests`: requests in flight.
    public var maxRequests: UInt32
    /// `http.maxRequestsPerConnection`: 0 = unlimited, 1 = no keep-alive.
    public var maxRequestsPerConnection: UInt32
    /// `http.maxRetries`: retries in flight.
    public var maxRetries: UInt32
    /// `http.idleTimeout`: an idle upstream connection closes after this; 0 = never. Default 1 h.
    public var idleTimeoutMs: UInt32
    /// `http.maxConcurrentStreams`: streams per HTTP/2 upstream connection (another connection
    /// opens past it); 0 = as many as the upstream's SETTINGS_MAX_CONCURRENT_STREAMS allows.
    public var maxConcurrentStreams: UInt32
    /// `http.http2KeepAlive`: on each HTTP/2 upstream connection a PING every `interval` (plus
    /// up to 15 % jitter), and the connection closes when nothing (no PING ACK, no other frame)
    /// arrives within `timeout` of one; Envoy's `connection_keepalive`. 0 = none (then both are 0).
    public var http2KeepaliveIntervalMs: UInt32
    public var http2KeepaliveTimeoutMs: UInt32

    public static let unlimited = UInt32.max
    public static let defaultIdleTimeoutMs: UInt32 = 3_600_000

    public init(maxConnections: UInt32 = unlimited, maxPendingRequests: UInt32 = unlimited,
                maxRequests: UInt32 = unlimited, maxRequestsPerConnection: UInt32 = 0,
                maxRetries: UInt32 = unlimited, idleTimeoutMs: UInt32 = defaultIdleTimeoutMs,
                maxConcurrentStreams: UInt32 = 0, http2KeepaliveIntervalMs: UInt32 = 0,
                http2KeepaliveTimeoutMs: UInt32 = 0) {
        self.maxConnections = maxConnections
        self.maxPendingRequests = maxPendingRequests
        self.maxRequests = maxRequests
        self.maxRequestsPerConnection = maxRequestsPerConnection
        self.maxRetries = maxRetries
        self.idleTimeoutMs = idleTimeoutMs
        self.maxConcurrentStreams = maxConcurrentStreams
        self.http2KeepaliveIntervalMs = http2KeepaliveIntervalMs
        self.http2KeepaliveTimeoutMs = http2KeepaliveTimeoutMs
    }
}
