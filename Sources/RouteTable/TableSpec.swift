// The compiled route table as the control plane builds it (ConfigCompiler → TableSpec), before
// it is serialized into the position-independent image that workers read from shared memory
// (TableImage.swift / TableReader.swift). These types may allocate; they are never used on the
// request path. Everything here is already resolved: no Istio names left to look up.

/// The whole table: every listener (Gateway port) and every upstream cluster.
public struct TableSpec: Sendable, Equatable {
    public var listeners: [ListenerSpec]
    public var clusters: [ClusterSpec]

    public init(listeners: [ListenerSpec] = [], clusters: [ClusterSpec] = []) {
        self.listeners = listeners
        self.clusters = clusters
    }
}

/// Protocol served on a listener. `.http` listeners route by virtual host, `.tcp` listeners by
/// their `tcpRoutes`; the others are carried so that `routes`/`config_dump` can show them and
/// later versions can serve them.
public enum ListenerProtocol: UInt8, Sendable, Equatable {
    case http = 1      // HTTP, HTTP2, GRPC, GRPC-WEB (plain text)
    case https = 2     // HTTPS (terminated or passthrough)
    case tls = 3
    case tcp = 4       // TCP, MONGO
}

/// One port the gateway listens on, with the virtual hosts of every Gateway server merged
/// onto it (istio-semantics.md §1.2).
public struct ListenerSpec: Sendable, Equatable {
    public var port: UInt16
    public var proto: ListenerProtocol
    /// Virtual hosts. Domain lookup order is Envoy's (exact, longest suffix wildcard, longest
    /// prefix wildcard, `*`), not the order of this array.
    public var virtualHosts: [VirtualHostSpec]
    /// `.tcp` listeners: opaque TCP routes in match order; a connection takes the first one
    /// (Istio gateway.go picks the first VirtualService `tcp` block whose L4 match fits the
    /// server, so the compiler writes at most one today). Empty: connections are closed.
    public var tcpRoutes: [TCPRouteSpec]
    /// `.https` / `.tls` listeners: the Gateway servers, chosen by SNI (TLSSpec.swift). An HTTPS
    /// listener whose terminating servers match serves `virtualHosts`; a TLS listener's
    /// terminated connections take `tcpRoutes`; passthrough SNIs take `tlsRoutes`.
    public var tlsServers: [TLSServerSpec]
    /// VirtualService `tls[]` routes for the passthrough servers, in VirtualService order.
    public var tlsRoutes: [TLSRouteSpec]

    public init(port: UInt16, proto: ListenerProtocol = .http, virtualHosts: [VirtualHostSpec] = [],
                tcpRoutes: [TCPRouteSpec] = [], tlsServers: [TLSServerSpec] = [], tlsRoutes: [TLSRouteSpec] = []) {
        self.port = port
        self.proto = proto
        self.virtualHosts = virtualHosts
        self.tcpRoutes = tcpRoutes
        self.tlsServers = tlsServers
        self.tlsRoutes = tlsRoutes
    }
}

/// A VirtualService `tcp` block bound to a TCP listener: forward every connection to one of
/// the clusters, chosen by weight per connection.
public struct TCPRouteSpec: Sendable, Equatable {
    /// For logs and `routes`: "<namespace>/<virtualservice>/tcp[<index>]".
    public var name: String
    public var destinations: [WeightedClusterSpec]

    public init(name: String, destinations: [WeightedClusterSpec]) {
        self.name = name
        self.destinations = destinations
    }
}

public struct VirtualHostSpec: Sendable, Equatable {
    /// For display: e.g. "hipster.example.com:80".
    public var name: String
    /// Lower-case domains: "a.example.com", "*.example.com" (suffix wildcard, one or more
    /// labels), "a.example.*" (prefix wildcard), or "*". Ports are never part of a domain.
    public var domains: [String]
    /// Routes in match order (first match wins). The compiler already moved catch-alls last.
    public var routes: [RouteSpec]
    /// `tls.httpsRedirect` on the Gateway server: every request gets 301 to https://.
    public var httpsRedirect: Bool

    public init(name: String, domains: [String], routes: [RouteSpec], httpsRedirect: Bool = false) {
        self.name = name
        self.domains = domains
        self.routes = routes
        self.httpsRedirect = httpsRedirect
    }
}

public struct RouteSpec: Sendable, Equatable {
    /// For logs and `routes`: "<namespace>/<virtualservice>/<http.name or index>[.<match.name or index>]".
    public var name: String
    /// OR of match blocks; an empty array matches every request.
    public var matches: [MatchSpec]
    public var action: RouteAction
    /// Route timeout in milliseconds; 0 = disabled (Istio's default).
    public var timeoutMs: UInt32
    /// Rewrites, header operations, retries, fault, mirrors, CORS (RouteActionSpec.swift).
    /// Only meaningful for `.forward` routes, but kept for every route as the rule wrote it.
    public var actions: RouteActionsSpec

    public init(name: String, matches: [MatchSpec], action: RouteAction, timeoutMs: UInt32 = 0,
                actions: RouteActionsSpec = RouteActionsSpec()) {
        self.name = name
        self.matches = matches
        self.action = action
        self.timeoutMs = timeoutMs
        self.actions = actions
    }
}

/// How a string is compared. Regexes are RE2 syntax, matched against the whole value.
public enum StringMatchSpec: Sendable, Equatable {
    case exact(String)
    case prefix(String)
    case regex(String)
    /// Header or query parameter present, any value (`{}` or regex `*` in Istio).
    case present
}

public struct HeaderMatchSpec: Sendable, Equatable {
    /// Lower-case header name (or query parameter name, which stays as written).
    public var name: String
    public var match: StringMatchSpec
    public init(name: String, match: StringMatchSpec) {
        self.name = name
        self.match = match
    }
}

/// One `HTTPMatchRequest`: every present condition must hold (AND).
public struct MatchSpec: Sendable, Equatable {
    /// Path without the query string.
    public var uri: StringMatchSpec?
    public var scheme: StringMatchSpec?
    public var method: StringMatchSpec?
    /// The raw Host / :authority value (port included, as Istio matches it).
    public var authority: StringMatchSpec?
    public var headers: [HeaderMatchSpec]
    /// Inverted header matches; a missing header counts as the empty string.
    public var withoutHeaders: [HeaderMatchSpec]
    public var queryParams: [HeaderMatchSpec]
    /// Case-insensitive `uri` exact/prefix.
    public var ignoreUriCase: Bool
    /// Listener port this block applies to; nil = any.
    public var port: UInt16?

    public init(uri: StringMatchSpec? = nil, scheme: StringMatchSpec? = nil, method: StringMatchSpec? = nil,
                authority: StringMatchSpec? = nil, headers: [HeaderMatchSpec] = [],
                withoutHeaders: [HeaderMatchSpec] = [], queryParams: [HeaderMatchSpec] = [],
                ignoreUriCase: Bool = false, port: UInt16? = nil) {
        self.uri = uri
        self.scheme = scheme
        self.method = method
        self.authority = authority
        self.headers = headers
        self.withoutHeaders = withoutHeaders
        self.queryParams = queryParams
        self.ignoreUriCase = ignoreUriCase
        self.port = port
    }
}

public struct WeightedClusterSpec: Sendable, Equatable {
    /// Index into `TableSpec.clusters`, or -1 when the destination host or subset does not
    /// exist (the request gets 503, response flag NC).
    public var cluster: Int32
    /// Relative weight (> 0).
    public var weight: UInt32
    /// `route[].headers`: applied after the rule-level operations when this destination is
    /// picked (istio-semantics.md §1.4). Always empty for TCP routes.
    public var headers: HeaderOpsSpec
    public init(cluster: Int32, weight: UInt32, headers: HeaderOpsSpec = HeaderOpsSpec()) {
        self.cluster = cluster
        self.weight = weight
        self.headers = headers
    }
}

public enum RouteAction: Sendable, Equatable {
    /// Forward to one of these clusters, chosen by weight.
    case forward([WeightedClusterSpec])
    /// Answer locally.
    case directResponse(status: UInt16, body: [UInt8])
    /// 3xx redirect; `location` is precomputed where possible by the compiler. Nil fields keep
    /// the request's value.
    case redirect(RedirectSpec)
}

public struct RedirectSpec: Sendable, Equatable {
    public var status: UInt16
    public var scheme: String?
    public var authority: String?
    public var port: UInt16?
    /// Replaces the whole path.
    public var uri: String?
    /// Replaces the matched prefix.
    public var prefixRewrite: String?
    public init(status: UInt16 = 301, scheme: String? = nil, authority: String? = nil, port: UInt16? = nil,
                uri: String? = nil, prefixRewrite: String? = nil) {
        self.status = status
        self.scheme = scheme
        self.authority = authority
        self.port = port
        self.uri = uri
        self.prefixRewrite = prefixRewrite
    }
}

/// An upstream cluster: Envoy-style name "outbound|PORT|SUBSET|FQDN" and its endpoints.
public struct ClusterSpec: Sendable, Equatable {
    public var name: String
    public var endpoints: [EndpointSpec]
    /// DestinationRule connectionPool.tcp.connectTimeout; Istio's default is 10 s.
    public var connectTimeoutMs: UInt32
    /// DestinationRule loadBalancer (default LEAST_REQUEST) and connectionPool limits.
    public var loadBalancer: LoadBalancerSpec
    public var connectionPool: ConnectionPoolSpec
    /// The upstream speaks HTTP/2: the data plane opens HTTP/2 connections (prior knowledge in
    /// plain text, ALPN h2 over TLS) instead of HTTP/1.1. Set from the port protocol and the
    /// DestinationRule's `h2UpgradePolicy` (ConfigCompiler/TrafficPolicies.swift).
    public var http2: Bool = false
    /// DestinationRule `http.useClientProtocol`: the upstream is spoken to in the client's
    /// protocol (HTTP/2 for an HTTP/2 client, else HTTP/1.1), as Envoy's
    /// use_downstream_protocol; `http2` is then false.
    public var useClientProtocol: Bool = false
    /// Supervisor-only health policies (ClusterPolicy.swift); not in the image.
    public var outlier: OutlierPolicy? = nil
    public var healthCheck: HealthCheckPolicy? = nil
    /// DestinationRule `tls` (TLSSpec.swift); nil = plain text (mode DISABLE).
    public var tls: ClusterTLSSpec? = nil

    public init(name: String, endpoints: [EndpointSpec], connectTimeoutMs: UInt32 = 10_000,
                loadBalancer: LoadBalancerSpec = LoadBalancerSpec(), connectionPool: ConnectionPoolSpec = ConnectionPoolSpec()) {
        self.name = name
        self.endpoints = endpoints
        self.connectTimeoutMs = connectTimeoutMs
        self.loadBalancer = loadBalancer
        self.connectionPool = connectionPool
    }
}

public struct EndpointSpec: Sendable, Equatable {
    /// IPv4 (4 bytes) or IPv6 (16 bytes) address in network byte order.
    public var address: [UInt8]
    public var port: UInt16
    /// Relative load-balancing weight (ServiceEntry endpoint weight; default 1).
    public var weight: UInt32
    /// Stable id: index into the shared-memory health array.
    public var id: UInt32

    public init(address: [UInt8], port: UInt16, weight: UInt32 = 1, id: UInt32 = 0) {
        self.address = address
        self.port = port
        self.weight = weight
        self.id = id
    }
}
