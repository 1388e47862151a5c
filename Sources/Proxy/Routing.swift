import RouteTable
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

/// An upstream endpoint chosen for a request: everything the connection needs, copied out of
/// the table so the request no longer depends on it (a reload may replace the table while the
/// request is in flight).
struct ChosenEndpoint {
    var family: UInt8          // 4 or 6
    var address: (UInt64, UInt64)
    var port: UInt16
    var pool: Int32
    var connectTimeoutMs: UInt32
    /// Stable endpoint id (health array and per-endpoint stats index).
    var id: UInt32 = .max
    /// The cluster's circuit-breaker record (-1: none) and tcp.maxConnections.
    var breaker: Int32 = -1
    var maxConnections: UInt32 = .max
    /// For a TCP route: at maxConnections the connection fails at once (no waiting).
    var tcp = false
    /// The cluster (current table) whose DestinationRule TLS a new connection uses; -1: plain.
    var tlsCluster: Int32 = -1
    /// The cluster's upstream speaks HTTP/2 (Engine+HTTP2Upstream.swift).
    var http2 = false
}

/// The route table this worker uses: a private copy of the published image, its matcher, and
/// per-table load-balancing state. Replaced between loop iterations when the supervisor
/// publishes a new generation; requests in flight keep only `ChosenEndpoint`s.
struct ActiveTable: ~Copyable {
    var generation: UInt64 = 0
    /// The image in use and a spare buffer the next image is copied into.
    var image = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    var spare = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    var matcher: RouteMatcher? = nil
    /// The reader of `image` (the same one the matcher holds; a copyable view).
    var reader: TableReader? = nil
    /// Upstream pool index per endpoint index of the current table (UpstreamPools.swift; -1:
    /// past the pool limit, connections are not reused).
    var endpointPool = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    /// Load-balancing state per cluster of the current table (LoadBalancer.swift).
    var balancers = Balancers.empty
    /// Circuit-breaker records per cluster, active requests per endpoint (CircuitBreakers.swift).
    var breakers = BreakerTable()
    /// `uriRegexRewrite` programs of the current table.
    var rewriteRegexes = RewriteRegexes()
}

extension ProxyEngine {
    /// Copies a newly published table, builds its matcher and switches to it. On any error the
    /// old table keeps serving (the supervisor validated the image, so this is defensive).
    /// Returns false when nothing new was published.
    public mutating func refreshTable() -> Bool {
        guard let (gen, n) = region.acquireIfNewer(than: table.generation, slot: stats, into: &table.spare) else {
            return false
        }
        let reader: TableReader
        do {
            reader = try TableReader(validating: UnsafeRawPointer(table.spare.baseAddress!), count: n)
        } catch {
            log("worker: route table generation \(gen) rejected: \(error)")
            table.generation = gen
            return false
        }
        let newMatcher: RouteMatcher
        do {
            newMatcher = try RouteMatcher(reader)
        } catch {
            log("worker: route table generation \(gen) rejected: \(error)")
            table.generation = gen
            return false
        }
        // Load-balancing state for the new table.
        let endpointCount = Int(reader.endpoints.upperBound)
        let newPools = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, endpointCount))
        for c in reader.clusters {
            // TLS connections are pooled apart from plain ones, per set of TLS settings.
            let identity = reader.clusterTLSIdentity(c)
            for e in reader.clusterEndpoints(c) {
                let v = reader.endpoint(e)
                newPools[Int(e)] = pools.pool(family: v.family, address: v.address, port: v.port, tls: identity)
            }
        }
        let newBalancers = Balancers(reader)

        table.reader = reader
        table.matcher = consume newMatcher   // the old matcher frees its regex code here
        table.rewriteRegexes = RewriteRegexes(reader)
        table.endpointPool.deallocate()
        table.endpointPool = newPools
        table.balancers.deallocate()
        table.balancers = newBalancers
        swap(&table.image, &table.spare)
        table.generation = gen
        tls.reset(servers: reader.tlsServers.count, clusters: reader.clusters.count)   // contexts are built on first use
        statsTableLoaded(reader)
        breakersTableLoaded(reader)
        return true
    }

    /// Picks a healthy endpoint of `cluster` by its load-balancing policy (LoadBalancer.swift),
    /// other than `avoiding` (the endpoint of a previous try, Envoy's previous-hosts predicate)
    /// unless it is the only healthy one. `hash` is the exchange's consistent-hash key
    /// (`hasHash` false: none). nil = no healthy endpoint.
    @inline(__always)
    mutating func chooseEndpoint(_ reader: TableReader, cluster: Int32, avoiding: UInt32 = .max,
                                 hash: UInt64 = 0, hasHash: Bool = false) -> ChosenEndpoint? {
        let r1 = nextRandom()
        let r2 = mix(r1)
        let region = self.region
        let e = table.balancers.pick(reader, cluster: cluster, hash: hash, hasHash: hasHash, random: r1, random2: r2,
                                     active: UnsafePointer(table.breakers.active), activeCapacity: EndpointStats.capacity,
                                     avoiding: avoiding, healthy: { region.endpointHealth($0) == 0 })
        guard e >= 0 else { return nil }
        var ep = chosen(reader, cluster: cluster, endpoint: e)
        ep.breaker = table.breakers.clusterBreaker[Int(cluster)]
        if ep.breaker >= 0 { ep.maxConnections = reader.clusterConnectionPool(cluster).maxConnections }
        return ep
    }

    @inline(__always)
    func chosen(_ reader: TableReader, cluster: Int32, endpoint e: Int32) -> ChosenEndpoint {
        let v = reader.endpoint(e)
        var chosen = ChosenEndpoint(family: v.family, address: (0, 0), port: v.port,
                                    pool: table.endpointPool[Int(e)],
                                    connectTimeoutMs: reader.clusterConnectTimeoutMs(cluster), id: v.id)
        withUnsafeMutableBytes(of: &chosen.address) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: v.address[0..<min(16, v.address.count)]))
        }
        if reader.clusterTLSMode(cluster) != .disable { chosen.tlsCluster = cluster }
        return chosen
    }
}

/// Logs one line to stderr (not on the request path).
func log(_ message: String) {
    var line = message
    line.append("\n")
    line.withCString { p in _ = write(2, p, strlen(p)) }
}
