// Upstream connection pools: one per endpoint address (family, address, port) per worker.
// Pools outlive route tables: an endpoint that stays in the config across a reload keeps its
// pool and its idle connections (the table maps its endpoint indices to pool indices).
//
// An HTTP/1.1 upstream connection carries one exchange at a time, so a pool holds its idle
// connections in a doubly linked list through `Conn.nextIdle/prevIdle` (LIFO: the most recently
// used connection is the warmest and least likely to have been closed by the upstream). A
// multiplexed (HTTP/2) connection will be listed in its pool while it has stream capacity.
//
// Limits (hardening: a burst used to leave a thousand idle sockets open forever):
//  * at most `maxIdlePerPool` idle connections per pool; one more is closed instead of pooled;
//  * an idle connection is closed after its cluster's connectionPool.http.idleTimeout (Istio's
//    default 1 h; CircuitBreakers.swift `poolPolicy`) by its connection timer, or as soon as the upstream closes it (the receive
//    armed on idle connections sees the EOF).

struct UpstreamPools: ~Copyable {
    struct Key: Hashable {
        var family: UInt8
        var a: UInt64
        var b: UInt64
        var port: UInt16
        /// `TableReader.clusterTLSIdentity` of the cluster (0: plain text).
        var tls: UInt64
    }

    struct Pool {
        /// First idle connection, -1 when none.
        var idleHead: Int32 = -1
        var idleCount: Int32 = 0
        /// The worker's HTTP/2 connection to the address (-1: none), shared by its streams
        /// (Engine+HTTP2Upstream.swift).
        var h2Conn: Int32 = -1
        /// Connections of this worker to the address, open or connecting, pooled or busy
        /// (CircuitBreakers.swift: a pool with none may open one past tcp.maxConnections).
        var open: Int32 = 0
    }

    /// At most this many pools (distinct endpoint addresses) per worker; endpoints past it get
    /// no pool (their connections are not reused).
    static let maxPools = 65_536
    /// Idle connections kept per endpoint (`ProxyLimits.maxIdlePerPool`). Envoy keeps no fixed
    /// cap (its idle timeout bounds them).
    var maxIdlePerPool: Int32 = 1024

    private var index: [Key: Int32] = [:]
    let pools: UnsafeMutablePointer<Pool> = {
        let p = UnsafeMutablePointer<Pool>.allocate(capacity: UpstreamPools.maxPools)
        p.initialize(repeating: Pool(), count: UpstreamPools.maxPools)
        return p
    }()

    /// The pool of an endpoint address (16 address bytes, IPv4 in the first 4), created on
    /// first use; -1 past `maxPools`. Control path: called when a table is loaded.
    mutating func pool(family: UInt8, address: UnsafeRawBufferPointer, port: UInt16, tls: UInt64 = 0) -> Int32 {
        var key = Key(family: family, a: 0, b: 0, port: port, tls: tls)
        withUnsafeMutableBytes(of: &key.a) { a in
            withUnsafeMutableBytes(of: &key.b) { b in
                for k in 0..<min(16, address.count) {
                    if k < 8 { a[k] = address[k] } else { b[k - 8] = address[k] }
                }
            }
        }
        if let p = index[key] { return p }
        guard index.count < UpstreamPools.maxPools else { return -1 }
        let p = Int32(index.count)
        index[key] = p
        return p
    }

    /// The most recently pooled idle connection of `pool`, -1 when none.
    @inline(__always)
    func idleHead(_ pool: Int32) -> Int32 { pools[Int(pool)].idleHead }

    /// Whether `pool` has room for one more idle connection.
    @inline(__always)
    func hasRoom(_ pool: Int32) -> Bool { pools[Int(pool)].idleCount < maxIdlePerPool }

    @inline(__always)
    func push(_ u: Int32, conns: UnsafeMutablePointer<Conn>) {
        let pool = Int(conns[Int(u)].pool)
        let head = pools[pool].idleHead
        conns[Int(u)].prevIdle = -1
        conns[Int(u)].nextIdle = head
        if head >= 0 { conns[Int(head)].prevIdle = u }
        pools[pool].idleHead = u
        pools[pool].idleCount += 1
    }

    /// Removes `u` from its pool's idle list if it is there.
    @inline(__always)
    func unlink(_ u: Int32, conns: UnsafeMutablePointer<Conn>) {
        let c = conns + Int(u)
        guard c.pointee.pool >= 0 else { return }
        let pool = Int(c.pointee.pool)
        if c.pointee.prevIdle >= 0 {
            conns[Int(c.pointee.prevIdle)].nextIdle = c.pointee.nextIdle
        } else if pools[pool].idleHead == u {
            pools[pool].idleHead = c.pointee.nextIdle
        } else {
            return   // not in the list
        }
        if c.pointee.nextIdle >= 0 { conns[Int(c.pointee.nextIdle)].prevIdle = c.pointee.prevIdle }
        c.pointee.nextIdle = -1
        c.pointee.prevIdle = -1
        pools[pool].idleCount -= 1
    }
}
