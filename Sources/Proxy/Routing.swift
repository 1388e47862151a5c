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
    /// Round-robin cursor per cluster of the current table.
    var clusterCursor = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
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
        for e in reader.endpoints {
            let v = reader.endpoint(e)
            newPools[Int(e)] = pools.pool(family: v.family, address: v.address, port: v.port)
        }
        let clusterCount = Int(reader.clusters.upperBound)
        let newCursors = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, clusterCount))
        newCursors.initialize(repeating: 0, count: max(1, clusterCount))

        table.reader = reader
        table.matcher = consume newMatcher   // the old matcher frees its regex code here
        table.rewriteRegexes = RewriteRegexes(reader)
        table.endpointPool.deallocate()
        table.endpointPool = newPools
        table.clusterCursor.deallocate()
        table.clusterCursor = newCursors
        swap(&table.image, &table.spare)
        table.generation = gen
        statsTableLoaded(reader)
        return true
    }

    /// Picks a healthy endpoint of `cluster` round-robin, other than `avoiding` (the endpoint
    /// of a previous try, Envoy's previous-hosts predicate) unless it is the only healthy one.
    /// nil = no healthy endpoint.
    @inline(__always)
    mutating func chooseEndpoint(_ reader: TableReader, cluster: Int32, avoiding: UInt32 = .max) -> ChosenEndpoint? {
        let eps = reader.clusterEndpoints(cluster)
        let count = UInt32(eps.count)
        guard count > 0 else { return nil }
        let start = table.clusterCursor[Int(cluster)]
        table.clusterCursor[Int(cluster)] = start &+ 1
        var fallback: Int32 = -1
        for k in 0..<count {
            let e = eps.lowerBound + Int32((start &+ k) % count)
            let v = reader.endpoint(e)
            if region.endpointHealth(v.id) != 0 { continue }
            if v.id == avoiding && avoiding != .max {
                fallback = e
                continue
            }
            return chosen(reader, cluster: cluster, endpoint: e)
        }
        return fallback >= 0 ? chosen(reader, cluster: cluster, endpoint: fallback) : nil
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
        return chosen
    }
}

/// Logs one line to stderr (not on the request path).
func log(_ message: String) {
    var line = message
    line.append("\n")
    line.withCString { p in _ = write(2, p, strlen(p)) }
}
