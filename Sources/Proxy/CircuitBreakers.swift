import HTTP1
import RouteTable
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// DestinationRule `connectionPool` (istio-semantics.md §3): Envoy's circuit breakers, per
// gateway instance, and connection reuse per cluster.
//
//   tcp.maxConnections          a new upstream connection is opened only while the cluster has
//                               fewer open (connecting included) across all workers; else
//                               upstream_cx_overflow and the request waits for a connection
//   http.http1MaxPendingRequests  requests so waiting, across all workers; one more gets 503 UO
//                               with x-envoy-overloaded: true (upstream_rq_pending_overflow)
//   http.maxRetries             retries in flight (from the retry decision until the request
//                               ends or decides again, as Envoy's retry state holds it); a retry
//                               past it is not made (upstream_rq_retry_overflow)
//   http.http2MaxRequests       requests in flight to the cluster (Envoy's max_requests, for
//                               HTTP/1.1 and HTTP/2 upstreams alike); one more gets 503 UO with
//                               x-envoy-overloaded: true (upstream_rq_pending_overflow, as Envoy
//                               counts it)
//   http.maxRequestsPerConnection  an upstream connection closes after that many requests
//   http.idleTimeout            a pooled connection closes after being idle that long
//
// Counts live in shared memory (StatsLayout.swift "circuit breakers": each worker writes its
// share in its own slot, a check sums every slot, a dead worker's share is zeroed when reaped).
//
// As Envoy (conn_pool_base: "this upstream has no connections, always create one"), a worker
// whose pool for the chosen endpoint has no connection at all opens one even at the limit (and
// counts the overflow): otherwise a request could wait forever behind idle connections of
// other endpoints or other workers.
//
// A waiting request is not queued on a connection: it polls (`pendingPollMs`) for an idle
// pooled connection or room under the limit, re-choosing its endpoint, until the route timeout
// (504) or the client leaves. Simpler than a wait list spanning workers; the cost is up to
// `pendingPollMs` of added latency while the limit is reached.

/// Per-worker circuit-breaker state of the current table.
struct BreakerTable {
    /// Breaker record (`BreakerLayout`) per cluster index of the current table; -1 = none.
    var clusterBreaker = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    /// This worker's active requests per stable endpoint id (LEAST_REQUEST); survives reloads.
    let active: UnsafeMutablePointer<UInt32> = {
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: EndpointStats.capacity)
        p.initialize(repeating: 0, count: EndpointStats.capacity)
        return p
    }()
    /// Set-Cookie value written for the response that carries it (`appendHashCookie`).
    let cookieScratch = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 8)
}

/// Response body of a circuit-breaker overflow (Envoy's local reply text).
let overflowBody: StaticString = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
/// `x-envoy-overloaded: true`, inserted after the status line of an overflow reply.
let overloadedHeader: StaticString = "x-envoy-overloaded: true\r\n"

extension ProxyEngine {
    /// A waiting request looks for a connection again after this long.
    static let pendingPollMs: UInt64 = 5

    /// After a table switch: the breaker record of each cluster (control path).
    mutating func breakersTableLoaded(_ reader: TableReader) {
        let n = Int(reader.clusters.upperBound)
        let map = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, n))
        for c in reader.clusters {
            let p = reader.clusterConnectionPool(c)
            let limited = p.maxConnections != ConnectionPoolSpec.unlimited
                || p.maxPendingRequests != ConnectionPoolSpec.unlimited || p.maxRetries != ConnectionPoolSpec.unlimited
                || p.maxRequests != ConnectionPoolSpec.unlimited
            map[Int(c)] = limited ? Int32(region.claimBreaker(key: StatKey.hash(reader.clusterName(c)))) : -1
        }
        table.breakers.clusterBreaker.deallocate()
        table.breakers.clusterBreaker = map
    }

    /// Adds `delta` to this worker's share of `field` of breaker record `b`.
    @inline(__always)
    func breakerAdd(_ b: Int32, _ field: Int, _ delta: UInt64) {
        guard b >= 0 else { return }
        statAdd(stats.breakerShare(Int(b)), field, delta)
    }

    /// acquireUpstream, for exchange `x`: at tcp.maxConnections with no idle connection to
    /// `ep`, the request waits (stage `.backoff`, polled) if http1MaxPendingRequests allows,
    /// else it is answered 503 UO. True when the caller may open a new connection.
    mutating func mayOpenConnection(_ ep: ChosenEndpoint, for x: Int32) -> Bool {
        guard ep.breaker >= 0, ep.maxConnections != ConnectionPoolSpec.unlimited else { return true }
        let open = region.breakerCount(Int(ep.breaker), BreakerLayout.connections)
        if open < UInt64(ep.maxConnections) { return true }
        let e = exchanges.slots + Int(x)
        if ep.tcp {
            // Envoy's tcp_proxy: upstream_cx_overflow, the client connection closes (UO).
            statAdd(stats.clusterRecord(Int(e.pointee.stats.record)), ClusterStats.cxOverflow)
            return false
        }
        if e.pointee.breakerPending < 0 {
            // First time it cannot have a connection: overflow counted once per request.
            statAdd(stats.clusterRecord(Int(e.pointee.stats.record)), ClusterStats.cxOverflow)
            if ep.pool >= 0 && pools.pools[Int(ep.pool)].open == 0 { return true }   // Envoy: one per empty pool
            let maxPending = table.reader.map { $0.clusterConnectionPool(e.pointee.cluster).maxPendingRequests } ?? .max
            if region.breakerCount(Int(ep.breaker), BreakerLayout.pending) >= UInt64(maxPending) {
                statAdd(stats.clusterRecord(Int(e.pointee.stats.record)), ClusterStats.rqPendingOverflow)
                e.pointee.overloaded = true
                failForward(x, status: 503, flag: ResponseFlags.uo, body: overflowBody)
                return false
            }
            e.pointee.breakerPending = ep.breaker
            breakerAdd(ep.breaker, BreakerLayout.pending, 1)
        } else if ep.pool >= 0 && pools.pools[Int(ep.pool)].open == 0 {
            return true
        }
        e.pointee.stage = .backoff
        setStageTimer(x, ms: ProxyEngine.pendingPollMs)
        return false
    }

    /// Exchange `x` got a connection or ended: it no longer waits.
    @inline(__always)
    func breakerPendingDone(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        if e.pointee.breakerPending >= 0 {
            breakerAdd(e.pointee.breakerPending, BreakerLayout.pending, UInt64.max)   // -1
            e.pointee.breakerPending = -1
        }
    }

    /// A new upstream connection `u` to `ep` counts against its cluster's breaker.
    @inline(__always)
    mutating func breakerConnectionOpened(_ u: Int32, _ ep: ChosenEndpoint) {
        conns[Int(u)].breaker = ep.breaker
        breakerAdd(ep.breaker, BreakerLayout.connections, 1)
        if ep.pool >= 0 { pools.pools[Int(ep.pool)].open += 1 }
    }

    /// Upstream `u` is finalized (Engine+Stats `statUpstreamClosed`).
    @inline(__always)
    func breakerConnectionClosed(_ u: Int32) {
        let c = conns + Int(u)
        if c.pointee.breaker >= 0 {
            breakerAdd(c.pointee.breaker, BreakerLayout.connections, UInt64.max)   // -1
            c.pointee.breaker = -1
        }
        if c.pointee.pool >= 0 && pools.pools[Int(c.pointee.pool)].open > 0 { pools.pools[Int(c.pointee.pool)].open -= 1 }
    }

    /// `http.maxRetries` for exchange `x`, consulted last by `mayRetry`: releases the retry the
    /// exchange holds from a previous decision, then takes one if the cluster has fewer than
    /// maxRetries in flight (true), else counts upstream_rq_retry_overflow (false).
    func retryBudgetAvailable(_ x: Int32) -> Bool {
        let e = exchanges.slots + Int(x)
        breakerRelease(&e.pointee.breakerRetry, BreakerLayout.retries)
        let c = e.pointee.cluster
        guard c >= 0, e.pointee.tableGeneration == table.generation, let reader = table.reader else { return true }
        switch breakerTake(cluster: c, BreakerLayout.retries, limit: reader.clusterConnectionPool(c).maxRetries) {
        case .unlimited: return true
        case .taken(let b): e.pointee.breakerRetry = b; return true
        case .full:
            statAdd(stats.clusterRecord(Int(e.pointee.stats.record)), ClusterStats.rqRetryOverflow)
            return false
        }
    }

    /// `http.http2MaxRequests` (Envoy's max_requests) for exchange `x` at dispatch: takes a
    /// place among the cluster's requests in flight, held until the exchange ends (retries keep
    /// it), or — at the limit — answers 503 UO with x-envoy-overloaded (false).
    mutating func requestBudgetAvailable(_ x: Int32, reader: TableReader) -> Bool {
        let e = exchanges.slots + Int(x)
        let c = e.pointee.cluster
        guard e.pointee.breakerRequest < 0, c >= 0 else { return true }
        switch breakerTake(cluster: c, BreakerLayout.requests, limit: reader.clusterConnectionPool(c).maxRequests) {
        case .unlimited: return true
        case .taken(let b): e.pointee.breakerRequest = b; return true
        case .full:
            statAdd(stats.clusterRecord(Int(e.pointee.stats.record)), ClusterStats.rqPendingOverflow)
            e.pointee.overloaded = true
            failForward(x, status: 503, flag: ResponseFlags.uo, body: overflowBody)
            return false
        }
    }

    enum BreakerPlace { case unlimited, taken(Int32), full }

    /// A place under `limit` in `field` of cluster `c`'s breaker (a gateway-wide count): taken
    /// (this worker's share +1), or none needed, or the limit is reached.
    @inline(__always)
    func breakerTake(cluster c: Int32, _ field: Int, limit: UInt32) -> BreakerPlace {
        let b = table.breakers.clusterBreaker[Int(c)]
        guard b >= 0, limit != ConnectionPoolSpec.unlimited else { return .unlimited }
        if region.breakerCount(Int(b), field) >= UInt64(limit) { return .full }
        breakerAdd(b, field, 1)
        return .taken(b)
    }

    /// Gives back the place `holder` holds in `field` (if any).
    @inline(__always)
    func breakerRelease(_ holder: inout Int32, _ field: Int) {
        guard holder >= 0 else { return }
        breakerAdd(holder, field, UInt64.max)   // -1
        holder = -1
    }

    /// Exchange `x` is being freed: what it holds (a pending place, a retry, a request in
    /// flight, an active request on an endpoint) is given back. Called from `detach`.
    @inline(__always)
    func trafficExchangeEnded(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        breakerPendingDone(x)
        breakerRelease(&e.pointee.breakerRequest, BreakerLayout.requests)
        breakerRelease(&e.pointee.breakerRetry, BreakerLayout.retries)
        endActiveRequest(x)
    }

    /// LEAST_REQUEST bookkeeping: exchange `x`'s try on endpoint `id` starts / ends.
    @inline(__always)
    func beginActiveRequest(_ x: Int32, endpoint id: UInt32) {
        endActiveRequest(x)
        guard Int(id) < EndpointStats.capacity else { return }
        table.breakers.active[Int(id)] &+= 1
        exchanges.slots[Int(x)].activeEndpoint = id
    }

    @inline(__always)
    func endActiveRequest(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        let id = e.pointee.activeEndpoint
        guard id != .max else { return }
        if table.breakers.active[Int(id)] > 0 { table.breakers.active[Int(id)] -= 1 }
        e.pointee.activeEndpoint = .max
    }

    /// finishExchange: whether upstream `u`, which just carried exchange `x`, may be pooled
    /// (maxRequestsPerConnection), and its idle timeout (idleTimeout, at most the worker's).
    @inline(__always)
    func poolPolicy(_ x: Int32, _ u: Int32) -> (reuse: Bool, idleMs: UInt64) {
        let e = exchanges.slots + Int(x)
        guard e.pointee.cluster >= 0 else { return (true, limits.upstreamIdleTimeoutMs) }
        // Read from the table when the exchange was routed (forwardRoute).
        let maxRequests = e.pointee.maxRequestsPerConnection
        let reuse = maxRequests == 0 || conns[Int(u)].requestsSent < maxRequests
        // The worker's limit (INGRESSD_UPSTREAM_IDLE_TIMEOUT_MS, default 1 h) caps it; 0 = none.
        let global = limits.upstreamIdleTimeoutMs
        let idle = e.pointee.poolIdleTimeoutMs
        return (reuse, idle == 0 ? global : min(UInt64(idle), global))
    }

    /// sendLocalReply: an overflow reply gets `x-envoy-overloaded: true` after its status
    /// line. Returns the new length of the `n` bytes at `out` (capacity `cap`).
    @inline(__always)
    func insertOverloadedHeader(_ x: Int32, _ out: UnsafeMutableRawPointer, _ n: Int, _ cap: Int) -> Int {
        guard exchanges.slots[Int(x)].overloaded else { return n }
        let h = overloadedHeader.utf8CodeUnitCount
        guard n + h <= cap else { return n }
        var k = 0
        while k + 1 < n && !(out.load(fromByteOffset: k, as: UInt8.self) == 13 && out.load(fromByteOffset: k + 1, as: UInt8.self) == 10) { k += 1 }
        guard k + 1 < n else { return n }
        let at = k + 2
        memmove(out + at + h, out + at, n - at)
        (out + at).copyMemory(from: overloadedHeader.utf8Start, byteCount: h)
        return n + h
    }
}
