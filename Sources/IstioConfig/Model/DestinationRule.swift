// DestinationRule (istio-semantics.md §4): subsets and policies applied after routing.

public struct DestinationRule: Sendable, Equatable {
    public var host: String
    public var trafficPolicy: TrafficPolicy?
    public var subsets: [Subset]
    public var exportTo: [String]
    public var workloadSelector: [String: String]?

    public struct Subset: Sendable, Equatable {
        public var name: String
        public var labels: [String: String]
        public var trafficPolicy: TrafficPolicy?
    }
}

public struct TrafficPolicy: Sendable, Equatable {
    public var loadBalancer: LoadBalancerSettings?
    public var connectionPool: ConnectionPoolSettings?
    public var outlierDetection: OutlierDetection?
    public var tls: ClientTLSSettings?
    public var portLevelSettings: [PortTrafficPolicy]
    public var tunnel: Tunnel?
    public var proxyProtocol: String?
    public var retryBudget: RetryBudget?

    public var isEmpty: Bool {
        loadBalancer == nil && connectionPool == nil && outlierDetection == nil && tls == nil
            && portLevelSettings.isEmpty && tunnel == nil && proxyProtocol == nil && retryBudget == nil
    }

    public struct PortTrafficPolicy: Sendable, Equatable {
        public var port: PortSelector?
        public var loadBalancer: LoadBalancerSettings?
        public var connectionPool: ConnectionPoolSettings?
        public var outlierDetection: OutlierDetection?
        public var tls: ClientTLSSettings?
    }

    public struct Tunnel: Sendable, Equatable {
        public var proto: String?
        public var targetHost: String?
        public var targetPort: UInt32?
    }

    public struct RetryBudget: Sendable, Equatable {
        public var percent: Percent?
        public var minRetryConcurrency: UInt32?
        public var budgetInterval: Duration?
    }
}

public struct LoadBalancerSettings: Sendable, Equatable {
    public var simple: String?
    public var consistentHash: ConsistentHash?
    public var localityLbSetting: LocalityLB?
    public var zoneAwareLbSetting: LocalityLB?
    public var warmupDurationSecs: Duration?
    public var warmup: Warmup?

    public struct ConsistentHash: Sendable, Equatable {
        public var httpHeaderName: String?
        public var httpCookie: Cookie?
        public var useSourceIp: Bool?
        public var httpQueryParameterName: String?
        /// `ringHash.minimumRingSize`; 0 when `ringHash` is given without it, nil without `ringHash`.
        public var ringHashMinimumRingSize: UInt32?
        /// `maglev.tableSize`; 0 when `maglev` is given without it, nil without `maglev`.
        public var maglevTableSize: UInt32?
        public var minimumRingSize: UInt32?
    }

    public struct Cookie: Sendable, Equatable {
        public var name: String
        public var path: String?
        public var ttl: Duration?
        public var attributes: [(name: String, value: String)]

        public static func == (a: Cookie, b: Cookie) -> Bool {
            a.name == b.name && a.path == b.path && a.ttl == b.ttl
                && a.attributes.map(\.name) == b.attributes.map(\.name)
                && a.attributes.map(\.value) == b.attributes.map(\.value)
        }
    }

    /// localityLbSetting / zoneAwareLbSetting: kept as written (ingressd does not use them).
    public struct LocalityLB: Sendable, Equatable {
        public var enabled: Bool?
        public var distribute: [(from: String, to: [String: UInt32])]
        public var failover: [(from: String, to: String)]
        public var failoverPriority: [String]
        public var minClusterSize: UInt32?

        public static func == (a: LocalityLB, b: LocalityLB) -> Bool {
            a.enabled == b.enabled && a.failoverPriority == b.failoverPriority && a.minClusterSize == b.minClusterSize
                && a.distribute.map(\.from) == b.distribute.map(\.from) && a.distribute.map(\.to) == b.distribute.map(\.to)
                && a.failover.map(\.from) == b.failover.map(\.from) && a.failover.map(\.to) == b.failover.map(\.to)
        }
    }

    public struct Warmup: Sendable, Equatable {
        public var duration: Duration?
        public var minimumPercent: Double?
        public var aggression: Double?
    }
}

public struct ConnectionPoolSettings: Sendable, Equatable {
    public var tcp: TCP?
    public var http: HTTP?

    public struct TCP: Sendable, Equatable {
        public var maxConnections: Int32?
        public var connectTimeout: Duration?
        public var tcpKeepalive: Keepalive?
        public var maxConnectionDuration: Duration?
        public var idleTimeout: Duration?
    }

    public struct Keepalive: Sendable, Equatable {
        public var probes: UInt32?
        public var time: Duration?
        public var interval: Duration?
    }

    public struct HTTP: Sendable, Equatable {
        public var http1MaxPendingRequests: Int32?
        public var http2MaxRequests: Int32?
        public var maxRequestsPerConnection: Int32?
        public var maxRetries: Int32?
        public var idleTimeout: Duration?
        public var h2UpgradePolicy: String?
        public var useClientProtocol: Bool?
        public var maxConcurrentStreams: Int32?
        public var http2KeepAliveInterval: Duration?
        public var http2KeepAliveTimeout: Duration?
        public var hasHTTP2KeepAlive: Bool
    }
}

public struct OutlierDetection: Sendable, Equatable {
    public var consecutive5xxErrors: UInt32?
    public var consecutiveGatewayErrors: UInt32?
    public var consecutiveErrors: Int32?
    public var splitExternalLocalOriginErrors: Bool?
    public var consecutiveLocalOriginFailures: UInt32?
    public var interval: Duration?
    public var baseEjectionTime: Duration?
    public var maxEjectionPercent: Int32?
    public var minHealthPercent: Int32?
    public var outlierDetectionHttpErrorCodes: [UInt32]
}

public struct ClientTLSSettings: Sendable, Equatable {
    public var mode: String?
    public var clientCertificate: String?
    public var privateKey: String?
    public var caCertificates: String?
    public var credentialName: String?
    public var subjectAltNames: [String]
    public var sni: String?
    public var insecureSkipVerify: Bool?
    public var caCrl: String?
}
