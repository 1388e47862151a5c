import CSupport
import HTTP1
import RouteTable
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// Request statistics (DESIGN.md §2, §7) and the hooks that feed them. Every number goes into
// this worker's shared-memory slot with relaxed single-writer stores (StatsLayout.swift); the
// supervisor sums the slots. Nothing here locks, allocates or makes a syscall per request
// (clock_gettime is the vDSO). The access line, when enabled, goes to `AccessLog`.
//
// A request's life as the stats see it: `statBegin` when its head is parsed, `statRoute` /
// `statUpstream` when a cluster and endpoint are chosen, then exactly one `statFinish`: when the
// proxied response is complete (finishExchange), when a local reply is written (sendLocalReply,
// sendRedirect), or when the client connection closes with the request unanswered (closeConn,
// flag DC). `startNs == 0` means "nothing in flight", which makes a second finish a no-op.

/// The stats of one exchange (kept in `Exchange.stats`).
struct ExchangeStats {
    /// CLOCK_MONOTONIC ns when the request head was parsed; 0 = nothing to record.
    var startNs: UInt64 = 0
    var headBytes: UInt32 = 0
    /// Request head + body bytes received.
    var requestBytes: UInt64 = 0
    /// Response bytes sent to the client.
    var responseBytes: UInt64 = 0
    var status: UInt16 = 0
    var flags: UInt16 = 0
    /// A gRPC request's grpc-status from the response's fields or trailers (`noGRPCStatus`:
    /// none seen; statFinish then maps the HTTP status, as Envoy does).
    var grpcStatus: UInt8 = ExchangeStats.noGRPCStatus
    static let noGRPCStatus: UInt8 = 0xFF
    /// Cluster stats record of the request (TCP routes: of the connection pair).
    var record: Int32 = Int32(ClusterStats.unknownRecord)
    /// Stable endpoint id of the upstream, or UInt32.max.
    var endpoint: UInt32 = .max
    /// Pending access-log fields (a pooled small buffer) and their layout.
    var log: UnsafeMutableRawPointer? = nil
    /// Bytes of the first part ("[time] \"METHOD PATH PROTO\" "), then the end of the second.
    var logSplit: Int32 = 0
    var logLen: Int32 = 0
    /// Where the upstream address goes (logLen == logMark: none was chosen).
    var logMark: Int32 = 0
    /// Offset of the 36-byte x-request-id ingressd generated for the request (0: none).
    var logRid: Int32 = 0
}

/// Per-worker stats state: where each cluster of the current table counts, and the access log.
struct StatsRecorder: ~Copyable {
    /// Cluster stats record per cluster index of the current table.
    var clusterRecords = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    var clusterCount = 0
    let durationBounds: UnsafeBufferPointer<UInt64>
    let bytesBounds: UnsafeBufferPointer<UInt64>
    var accessLog = AccessLog()
    /// The access-log buffer not being filled or written, ready for the next swap.
    var spareLogBuffer: UnsafeMutableRawPointer? = nil

    init() {
        let d = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: StatBuckets.durationBoundsUs.count)
        _ = d.initialize(from: StatBuckets.durationBoundsUs)
        durationBounds = UnsafeBufferPointer(d)
        let b = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: StatBuckets.bytesBounds.count)
        _ = b.initialize(from: StatBuckets.bytesBounds)
        bytesBounds = UnsafeBufferPointer(b)
    }
}

extension ProxyEngine {
    /// False only in a build with `-Xswiftc -DINGRESSD_NO_STATS`: the per-request hooks below
    /// do nothing, the baseline perf/stats-overhead compares against (a constant: the checks
    /// fold away in a normal release build).
    #if INGRESSD_NO_STATS
    static let statsCompiledIn = false
    #else
    static let statsCompiledIn = true
    #endif

    /// After a table switch: map its clusters to stats records (claimed by name hash).
    mutating func statsTableLoaded(_ reader: TableReader) {
        let n = Int(reader.clusters.upperBound)
        let map = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, n))
        _ = stats.claimClusterRecord(key: StatKey.unknown)
        for c in reader.clusters {
            map[Int(c)] = Int32(stats.claimClusterRecord(key: StatKey.hash(reader.clusterName(c))))
        }
        recorder.clusterRecords.deallocate()
        recorder.clusterRecords = map
        recorder.clusterCount = n
    }

    /// Exchange `x` began: its request head was parsed.
    @inline(__always)
    mutating func statBegin(_ x: Int32, source: UnsafeRawBufferPointer, head: RequestHead) {
        guard ProxyEngine.statsCompiledIn else { return }
        let e = exchanges.slots + Int(x)
        e.pointee.stats.startNs = ing_monotonic_ns()
        e.pointee.stats.headBytes = UInt32(head.headLength)
        e.pointee.stats.requestBytes = UInt64(head.headLength)
        if recorder.accessLog.enabled { accessLogBegin(x, source: source, head: head) }
    }

    /// Exchange `x` goes to cluster index `cluster` of the current table.
    @inline(__always)
    func statRoute(_ x: Int32, cluster: Int32) {
        guard ProxyEngine.statsCompiledIn else { return }
        guard cluster >= 0, Int(cluster) < recorder.clusterCount else { return }
        let r = recorder.clusterRecords[Int(cluster)]
        exchanges.slots[Int(x)].stats.record = r
        statAdd(stats.clusterRecord(Int(r)), ClusterStats.rqTotal)
    }

    /// Exchange `x` is forwarded to `ep` over upstream connection `u`.
    @inline(__always)
    mutating func statUpstream(_ x: Int32, _ u: Int32, _ ep: ChosenEndpoint) {
        guard ProxyEngine.statsCompiledIn else { return }
        let e = exchanges.slots + Int(x)
        e.pointee.stats.endpoint = ep.id
        // A pooled connection keeps the cluster it was opened for (its cx_active was counted
        // there; pools are per address, so another cluster may reuse it).
        if !conns[Int(u)].connected { conns[Int(u)].cxRecord = e.pointee.stats.record }
        if e.pointee.stats.log != nil { accessLogUpstream(x, ep) }
    }

    /// Upstream `u` connected (true) or failed to connect (false).
    @inline(__always)
    func statConnect(_ u: Int32, ok: Bool) {
        guard ProxyEngine.statsCompiledIn else { return }
        let rec = stats.clusterRecord(Int(conns[Int(u)].cxRecord))
        if ok {
            statAdd(rec, ClusterStats.cxTotal)
            statAdd(rec, ClusterStats.cxActive)
        } else {
            statAdd(rec, ClusterStats.cxConnectFail)
        }
    }

    /// The TLS handshake of upstream `u` completed (`reused`: it resumed a session) or failed
    /// (Envoy's cluster ssl.handshake, ssl.session_reused, ssl.connection_error).
    @inline(__always)
    func statUpstreamTLS(_ u: Int32, ok: Bool, reused: Bool = false) {
        guard ProxyEngine.statsCompiledIn else { return }
        let rec = stats.clusterRecord(Int(conns[Int(u)].cxRecord))
        guard ok else {
            statAdd(rec, ClusterStats.sslConnectionError)
            return
        }
        statAdd(rec, ClusterStats.sslHandshake)
        if reused { statAdd(rec, ClusterStats.sslSessionReused) }
    }

    /// Upstream `u` is being finalized.
    @inline(__always)
    func statUpstreamClosed(_ u: Int32) {
        breakerConnectionClosed(u)   // CircuitBreakers.swift
        guard ProxyEngine.statsCompiledIn else { return }
        if conns[Int(u)].connected {
            statAdd(stats.clusterRecord(Int(conns[Int(u)].cxRecord)), ClusterStats.cxActive, UInt64.max)   // -1
        }
    }

    // MARK: TCP routes (istio_tcp_*)
    //
    // A TCP-route client connection is counted opened exactly once, by `statTCPOpened` in
    // every path of `startTCPRoute` (on its cluster's record, or `unknown` when it reached no
    // cluster), and closed exactly once, by `statTCPClosed` from `closeConn`, on the same record
    // with the one flag it collected (UF, UH, UO, NR, NC) in its exchange's `stats.flags`. Its
    // upstream connection carries the same record for upstream_cx_*.

    /// The TCP-route exchange `x` goes to cluster index `cluster` (-1: none).
    @inline(__always)
    func statTCPOpened(_ x: Int32, cluster: Int32, flags: UInt16 = 0) {
        guard ProxyEngine.statsCompiledIn else { return }
        var r = Int32(ClusterStats.unknownRecord)
        if cluster >= 0 && Int(cluster) < recorder.clusterCount { r = recorder.clusterRecords[Int(cluster)] }
        exchanges.slots[Int(x)].stats.record = r
        exchanges.slots[Int(x)].stats.flags = flags
        statAdd(stats.clusterRecord(Int(r)), ClusterStats.tcpOpened)
    }

    /// The client connection of TCP-route exchange `x` is closing.
    @inline(__always)
    func statTCPClosed(_ x: Int32) {
        guard ProxyEngine.statsCompiledIn else { return }
        let e = exchanges.slots + Int(x)
        statAdd(stats.clusterRecord(Int(e.pointee.stats.record)),
                ClusterStats.tcpClosed + ClusterStats.tcpClosedSlot(e.pointee.stats.flags) * 8)
    }

    /// `read` bytes came from connection `s` and `written` went to its peer `d` by splice: TCP
    /// routes count them per cluster; spliced HTTP bodies count in the exchange's request or
    /// response bytes like copied ones (Engine+Request bodyPortion, Engine+Send).
    @inline(__always)
    func statSplicedBytes(_ s: Int32, _ d: Int32, read: Int64, written: Int64) {
        guard ProxyEngine.statsCompiledIn else { return }
        let c = conns + Int(s)
        guard c.pointee.exchange >= 0 else { return }
        let e = ex(s)
        if c.pointee.spliceFlags & SpliceFlag.tcp != 0 {
            let rec = stats.clusterRecord(Int(e.pointee.stats.record))
            if c.pointee.role == .downstream {
                statAdd(rec, ClusterStats.tcpReceivedBytes, UInt64(read))
            } else {
                statAdd(rec, ClusterStats.tcpSentBytes, UInt64(written))
            }
        } else if c.pointee.role == .downstream {
            e.pointee.stats.requestBytes &+= UInt64(read)
        } else {
            e.pointee.stats.responseBytes &+= UInt64(written)
        }
    }

    /// `n` bytes came from connection `s` of a TCP-route pair whose bytes are copied (TLS
    /// terminated or originated) and are being passed to its peer: counted like spliced ones.
    @inline(__always)
    func statTunnelBytes(_ s: Int32, _ n: Int) {
        guard ProxyEngine.statsCompiledIn else { return }
        let c = conns + Int(s)
        guard c.pointee.spliceFlags & SpliceFlag.tcp != 0, c.pointee.exchange >= 0 else { return }
        statAdd(stats.clusterRecord(Int(ex(s).pointee.stats.record)),
                c.pointee.role == .downstream ? ClusterStats.tcpReceivedBytes : ClusterStats.tcpSentBytes, UInt64(n))
    }

    /// Records exchange `x` once; `status` 0 keeps the one already noted.
    mutating func statFinish(_ x: Int32, status: UInt16 = 0, responseBytes: Int = -1) {
        guard ProxyEngine.statsCompiledIn else { return }
        let e = exchanges.slots + Int(x)
        var bare = false
        if e.pointee.stats.startNs == 0 {
            // A reply with no parsed request (codec error, header timeout): count it too.
            guard status != 0 else { return }
            e.pointee.stats = ExchangeStats()
            e.pointee.stats.startNs = ing_monotonic_ns()
            if status >= 400 && status != 408 { e.pointee.stats.flags |= ResponseFlags.dpe }
            bare = true
        }
        if status != 0 { e.pointee.stats.status = status }
        if responseBytes >= 0 { e.pointee.stats.responseBytes = UInt64(responseBytes) }
        let ex = e.pointee.stats
        let durationUs = (ing_monotonic_ns() &- ex.startNs) / 1000
        e.pointee.stats.startNs = 0

        let rec = stats.clusterRecord(Int(ex.record))
        // (status, flags, gRPC status) count: find the key or a free slot among the 16.
        let grpc = e.pointee.grpc
        let key = ResponseKey.make(status: ex.status, flags: ex.flags, grpcStatus: !grpc ? -1
            : ex.grpcStatus != ExchangeStats.noGRPCStatus ? Int(ex.grpcStatus) : grpcStatus(forHTTP: ex.status))
        let keys = (rec + ClusterStats.codeKeys).assumingMemoryBound(to: UInt32.self)
        var slot = ClusterStats.codeSlots - 1
        for k in 0..<ClusterStats.codeSlots {
            let v = keys[k]
            if v == key { slot = k; break }
            if v == 0 {
                keys[k] = key   // single writer; the supervisor reads it after the count below
                slot = k
                break
            }
        }
        if slot == ClusterStats.codeSlots - 1 && keys[slot] != key { keys[slot] = ResponseKey.other }
        statAdd(rec, ClusterStats.codeCounts + slot * 8)
        let h = rec + (grpc ? ClusterStats.grpcShift : 0)   // gRPC requests' histograms
        statAdd(h, ClusterStats.durationBuckets + StatBuckets.index(durationUs, recorder.durationBounds) * 8)
        statAdd(h, ClusterStats.durationSumUs, durationUs)
        statAdd(h, ClusterStats.requestBytesBuckets + StatBuckets.index(ex.requestBytes, recorder.bytesBounds) * 8)
        statAdd(h, ClusterStats.requestBytesSum, ex.requestBytes)
        statAdd(h, ClusterStats.responseBytesBuckets + StatBuckets.index(ex.responseBytes, recorder.bytesBounds) * 8)
        statAdd(h, ClusterStats.responseBytesSum, ex.responseBytes)

        // Passive health evidence (outlier detection): consecutive 5xx / gateway errors.
        if ex.endpoint != .max && ex.status != 0, let ep = stats.endpointRecord(ex.endpoint) {
            statAdd(ep, EndpointStats.rqTotal)
            if ex.status >= 500 {
                statAdd(ep, EndpointStats.consecutive5xx)
            } else {
                statAdd(ep, EndpointStats.non5xx)
                ing_store_relaxed_u64(ep + EndpointStats.consecutive5xx, 0)
            }
            if ex.status >= 502 && ex.status <= 504 {
                statAdd(ep, EndpointStats.consecutiveGateway)
            } else {
                statAdd(ep, EndpointStats.nonGateway)
                ing_store_relaxed_u64(ep + EndpointStats.consecutiveGateway, 0)
            }
        }
        if ex.log != nil {
            accessLogFinish(x, durationUs: durationUs)
        } else if bare && recorder.accessLog.enabled {
            accessLogBare(status: ex.status, flags: ex.flags, sent: ex.responseBytes, durationUs: durationUs)
        }
    }
}
