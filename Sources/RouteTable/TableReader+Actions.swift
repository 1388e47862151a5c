// Reader side of route actions and cluster traffic policies (layout: TableLayout.swift; spec:
// RouteActionSpec.swift, ClusterTrafficSpec.swift). Data plane: no allocation, no String, no
// existentials; byte views stay valid while the image is mapped. Index arguments come from
// this reader; out of range is a precondition failure, like the other accessors.

/// One header operation. `name` is lower-case.
public struct HeaderOpView {
    public var kind: HeaderOpKind
    public var name: UnsafeRawBufferPointer
    /// Empty for `.remove`.
    public var value: UnsafeRawBufferPointer
}

/// A route's retry policy (`retries`, or Istio's default when the rule has none).
public struct RetryPolicyView {
    /// Retries after the first try; 0 = never retry.
    public var attempts: UInt32
    /// 0 = no per-try timeout (the route timeout bounds all tries).
    public var perTryTimeoutMs: UInt32
    public var retryOn: RetryOn
    /// RetryStatus indices: `retryStatusCode(_:)`. Empty for Istio's default policy.
    public var statusCodes: Range<Int32>
    public var backoffBaseMs: UInt32
    public var retryRemoteLocalities: Bool
    /// Retries avoid the endpoints already tried.
    public var ignorePreviousHosts: Bool
}

/// One allowed CORS origin.
public struct OriginMatchView {
    /// `.exact`, `.prefix` or `.regex` (full match).
    public var kind: ConditionKind
    /// Exact or prefix value, or the regex pattern.
    public var value: UnsafeRawBufferPointer
    /// Index into the image's regexes (`RouteMatcher` compiles them) for `.regex`, else -1.
    public var regex: Int32
}

/// A route's `corsPolicy`.
public struct CorsView {
    /// Origin indices: `corsOrigin(_:)`.
    public var origins: Range<Int32>
    /// Header values as Envoy sends them: the configured names joined with ",". Empty = not sent.
    public var allowMethods: UnsafeRawBufferPointer
    public var allowHeaders: UnsafeRawBufferPointer
    public var exposeHeaders: UnsafeRawBufferPointer
    /// nil = no Access-Control-Max-Age.
    public var maxAgeSeconds: UInt32?
    public var allowCredentials: Bool
    public var unmatchedPreflights: UnmatchedPreflights
}

/// A cluster's load-balancing policy.
public struct LoadBalancerView {
    public var kind: LoadBalancerKind
    /// `.none` unless `kind` is `.ringHash` or `.maglev`.
    public var hashKey: HashKeyKind
    /// Header name (lower-case), cookie name or query parameter name; empty otherwise.
    public var hashName: UnsafeRawBufferPointer
    /// Cookie Path attribute; nil = none.
    public var cookiePath: UnsafeRawBufferPointer?
    /// nil = do not generate the cookie; 0 = generate a session cookie.
    public var cookieTtlSeconds: UInt32?
    /// Ring hash minimum ring size or maglev table size; 0 for the others.
    public var tableSize: UInt32
}

extension TableReader {
    // MARK: rewrite

    /// `rewrite.uri`: the bytes that replace the first `rewriteURIReplaceCount` bytes of the path.
    public func rewriteURI(route r: Int32) -> UnsafeRawBufferPointer? { precondition(routes.contains(r)); return optionalBytes(routeOff(r) + 72) }
    /// `rewrite.authority`: the Host sent upstream.
    public func rewriteAuthority(route r: Int32) -> UnsafeRawBufferPointer? { precondition(routes.contains(r)); return optionalBytes(routeOff(r) + 80) }
    /// `rewrite.uriRegexRewrite`: replace every match of `pattern` (RE2, searched, not anchored)
    /// in the path by `substitution` (`\1`… capture groups). The caller compiles `pattern`.
    public func rewriteRegex(route r: Int32) -> (pattern: UnsafeRawBufferPointer, substitution: UnsafeRawBufferPointer)? {
        precondition(routes.contains(r))
        let at = routeOff(r)
        guard u32(at + 88) != Layout.absent else { return nil }
        return (bytes(at + 88), bytes(at + 96))
    }

    /// How many leading bytes of a `pathLength`-byte path `rewriteURI` replaces (Envoy
    /// prefix_rewrite): the prefix's length for a uri prefix match, the whole path for exact and
    /// regex matches, 1 (the "/" Istio matches by default) for a route without a uri condition.
    /// Looks at the route's first match block: the compiler writes at most one per route.
    public func rewriteURIReplaceCount(route r: Int32, pathLength: Int) -> Int {
        let blocks = routeMatches(r)
        var n = min(1, pathLength)
        guard !blocks.isEmpty else { return n }
        let conds = matchConditions(blocks.lowerBound)
        var c = conds.lowerBound
        while c < conds.upperBound {
            let at = condOff(c)
            if u8(at) == ConditionTarget.uri.rawValue {
                n = u8(at + 1) == ConditionKind.prefix.rawValue ? Int(u32(at + 16)) : pathLength
                break
            }
            c += 1
        }
        return min(n, pathLength)
    }

    // MARK: header operations

    /// Rule-level operations on the request sent upstream, in order (HeaderOp indices).
    public func requestHeaderOps(route r: Int32) -> Range<Int32> {
        precondition(routes.contains(r))
        let at = routeOff(r)
        let first = Int32(u32(at + 104))
        return first..<(first + Int32(u32(at + 108)))
    }
    /// Rule-level operations on the response sent downstream, in order.
    public func responseHeaderOps(route r: Int32) -> Range<Int32> {
        precondition(routes.contains(r))
        let at = routeOff(r)
        let first = Int32(u32(at + 104) + u32(at + 108))
        return first..<(first + Int32(u32(at + 112)))
    }
    public func headerOp(_ h: Int32) -> HeaderOpView {
        precondition(h >= 0 && h < headerOpCount)
        let at = headerOpOff(h)
        return HeaderOpView(kind: HeaderOpKind(rawValue: u8(at))!,  // validated
                            name: bytes(at + 4), value: bytes(at + 12))
    }

    // MARK: destinations

    /// The weighted destinations of a `.forward` route (destination indices); empty otherwise.
    public func routeDestinations(route r: Int32) -> Range<Int32> {
        precondition(routes.contains(r))
        let at = routeOff(r)
        guard u8(at + 20) == RouteActionKind.forward.rawValue else { return 0..<0 }
        let first = Int32(u32(at + 24))
        return first..<(first + Int32(u32(at + 28)))
    }

    /// Like `pickCluster(route:random:)` (same `random`, same choice) but returns the destination
    /// index, for `destinationCluster` and the destination's header operations; -1 when the
    /// route does not forward or has no destination.
    public func pickDestination(route r: Int32, random: UInt32) -> Int32 {
        precondition(routes.contains(r))
        let at = routeOff(r)
        guard u8(at + 20) == RouteActionKind.forward.rawValue else { return -1 }
        let n = Int32(u32(at + 28))
        guard n > 0 else { return -1 }
        return pickWeightedIndex(first: Int32(u32(at + 24)), n, total: u32(at + 32), random: random)
    }

    /// Cluster index of a destination, or -1: the destination does not exist (503 NC).
    public func destinationCluster(_ d: Int32) -> Int32 { precondition(d >= 0 && d < weightedCount); return i32(weightedOff(d)) }
    public func destinationWeight(_ d: Int32) -> UInt32 { precondition(d >= 0 && d < weightedCount); return u32(weightedOff(d) + 4) }
    /// `route[].headers.request` of this destination: applied after the rule-level ones.
    public func destinationRequestHeaderOps(_ d: Int32) -> Range<Int32> {
        precondition(d >= 0 && d < weightedCount)
        let at = weightedOff(d)
        let first = Int32(u32(at + 8))
        return first..<(first + Int32(u32(at + 12)))
    }
    /// `route[].headers.response` of this destination: applied after the rule-level ones.
    public func destinationResponseHeaderOps(_ d: Int32) -> Range<Int32> {
        precondition(d >= 0 && d < weightedCount)
        let at = weightedOff(d)
        let first = Int32(u32(at + 8) + u32(at + 12))
        return first..<(first + Int32(u32(at + 16)))
    }

    // MARK: retries

    public func retryPolicy(route r: Int32) -> RetryPolicyView {
        precondition(routes.contains(r))
        let at = routeOff(r)
        let first = Int32(u32(at + 128))
        let flags = u16(at + 154)
        return RetryPolicyView(attempts: u32(at + 116), perTryTimeoutMs: u32(at + 120),
                               retryOn: RetryOn(rawValue: u32(at + 124)),
                               statusCodes: first..<(first + Int32(u32(at + 132))), backoffBaseMs: u32(at + 136),
                               retryRemoteLocalities: flags & 4 != 0, ignorePreviousHosts: flags & 8 != 0)
    }
    public func retryStatusCode(_ i: Int32) -> UInt16 {
        precondition(i >= 0 && i < retryStatusCount)
        return u16(retryStatusesAt + Int(i) * Layout.retryStatusBytes)
    }

    /// Whether the route's policy retries a response with `status` (5xx, gateway-error,
    /// retriable-4xx and retriable-status-codes; connection failures are the caller's). Does
    /// not look at attempts left.
    public func retriesOnStatus(route r: Int32, status: UInt16) -> Bool {
        let p = retryPolicy(route: r)
        guard p.attempts > 0 else { return false }
        if p.retryOn.contains(.status5xx) && status >= 500 && status <= 599 { return true }
        if p.retryOn.contains(.gatewayError) && status >= 502 && status <= 504 { return true }
        if p.retryOn.contains(.retriable4xx) && status == 409 { return true }
        if p.retryOn.contains(.retriableStatusCodes) {
            var i = p.statusCodes.lowerBound
            while i < p.statusCodes.upperBound {
                if retryStatusCode(i) == status { return true }
                i += 1
            }
        }
        return false
    }

    // MARK: fault

    /// `fault.delay`: delay `fixedDelayMs` for `ppm` parts per million of requests; nil = none.
    public func faultDelay(route r: Int32) -> (fixedDelayMs: UInt32, ppm: UInt32)? {
        precondition(routes.contains(r))
        let at = routeOff(r)
        return u16(at + 154) & 1 != 0 ? (u32(at + 140), u32(at + 144)) : nil
    }
    /// `fault.abort`: answer `httpStatus` (body `fault filter abort`) to `ppm` parts per million
    /// of requests, with `grpcStatus` (0…16) to gRPC requests when ≥ 0; nil = none.
    public func faultAbort(route r: Int32) -> (httpStatus: UInt16, ppm: UInt32, grpcStatus: Int)? {
        precondition(routes.contains(r))
        let at = routeOff(r)
        let flags = u16(at + 154)
        guard flags & 2 != 0 else { return nil }
        return (u16(at + 152), u32(at + 148), flags & 0x10 != 0 ? Int(flags >> 8 & 0x1F) : -1)
    }

    // MARK: mirrors

    /// Mirror indices of a route, in configuration order; empty = no mirroring.
    public func routeMirrors(route r: Int32) -> Range<Int32> {
        precondition(routes.contains(r))
        let at = routeOff(r)
        let first = Int32(u32(at + 156))
        return first..<(first + Int32(u32(at + 160)))
    }
    /// A mirror: cluster index (-1 = missing: send no copy) and the share of requests copied in
    /// parts per million (> 0; the copy's Host gets the suffix `-shadow`).
    public func mirror(_ m: Int32) -> (cluster: Int32, ppm: UInt32) {
        precondition(m >= 0 && m < mirrorCount)
        let at = mirrorOff(m)
        return (i32(at), u32(at + 4))
    }

    // MARK: CORS

    /// The route's CORS policy index for `cors(_:)`, or -1.
    public func routeCors(route r: Int32) -> Int32 { precondition(routes.contains(r)); return i32(routeOff(r) + 164) }
    public func cors(_ c: Int32) -> CorsView {
        precondition(c >= 0 && c < corsCount)
        let at = corsOff(c)
        let first = Int32(u32(at))
        let flags = u8(at + 36)
        return CorsView(origins: first..<(first + Int32(u32(at + 4))), allowMethods: bytes(at + 8),
                        allowHeaders: bytes(at + 16), exposeHeaders: bytes(at + 24),
                        maxAgeSeconds: flags & 2 != 0 ? u32(at + 32) : nil, allowCredentials: flags & 1 != 0,
                        unmatchedPreflights: UnmatchedPreflights(rawValue: u8(at + 37))!)  // validated
    }
    public func corsOrigin(_ o: Int32) -> OriginMatchView {
        precondition(o >= 0 && o < originCount)
        let at = originOff(o)
        return OriginMatchView(kind: ConditionKind(rawValue: u8(at))!, value: bytes(at + 4), regex: i32(at + 12))  // validated
    }

    // MARK: cluster traffic policy

    public func clusterLoadBalancer(_ c: Int32) -> LoadBalancerView {
        precondition(clusters.contains(c))
        let at = clusterOff(c)
        let key = HashKeyKind(rawValue: u8(at + 21))!  // validated
        let cookie = key == .cookie
        return LoadBalancerView(kind: LoadBalancerKind(rawValue: u8(at + 20))!, hashKey: key, hashName: bytes(at + 24),
                                cookiePath: cookie ? optionalBytes(at + 32) : nil,
                                cookieTtlSeconds: cookie && u8(at + 22) & 1 != 0 ? u32(at + 40) : nil,
                                tableSize: u32(at + 44))
    }
    /// Circuit-breaker limits (2^32-1 = unlimited) and connection reuse of a cluster.
    public func clusterConnectionPool(_ c: Int32) -> ConnectionPoolSpec {
        precondition(clusters.contains(c))
        let at = clusterOff(c)
        return ConnectionPoolSpec(maxConnections: u32(at + 48), maxPendingRequests: u32(at + 52),
                                  maxRequests: u32(at + 56), maxRequestsPerConnection: u32(at + 60),
                                  maxRetries: u32(at + 64), idleTimeoutMs: u32(at + 68),
                                  maxConcurrentStreams: u32(at + 76),
                                  http2KeepaliveIntervalMs: u32(at + 80), http2KeepaliveTimeoutMs: u32(at + 84))
    }
    /// Whether the cluster's upstream speaks HTTP/2 (prior knowledge in plain text, ALPN h2 over
    /// TLS); false: HTTP/1.1.
    public func clusterHTTP2(_ cluster: Int32) -> Bool {
        precondition(clusters.contains(cluster))
        return u8(clusterOff(cluster) + 22) & 2 != 0
    }
    /// Whether the cluster's upstream is spoken to in the client's protocol (`useClientProtocol`):
    /// HTTP/2 for an HTTP/2 client's request, else HTTP/1.1.
    public func clusterUsesClientProtocol(_ cluster: Int32) -> Bool {
        precondition(clusters.contains(cluster))
        return u8(clusterOff(cluster) + 22) & 4 != 0
    }
}
