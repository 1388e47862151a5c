import CSupport

// Per-worker statistics inside each worker's slot (DESIGN.md §2, §7). One writer per slot (its
// worker), relaxed loads and stores, no locked instruction and no syscall on the request path.
// The supervisor sums the slots of live workers and a retired total it folds every reaped
// worker's slot into before the slot is reused (`Supervisor+Stats.swift`).
//
// Worker slot (`WorkerSlotLayout.bytes`, sparse: untouched pages cost nothing)
//   0                    the fixed fields and process counters of `WorkerSlotField`
//   ListenerStats.offset ListenerStats.capacity × ListenerStats.recordBytes, one per listener
//                        port (the rest of the first page)
//   clusterStatsOffset   ClusterStats.capacity × ClusterStats.recordBytes
//   endpointStatsOffset  EndpointStats.capacity × EndpointStats.recordBytes, indexed by the
//                        endpoint's stable id (the same index as the health array)
//   breakerOffset        BreakerLayout.capacity × BreakerLayout.recordBytes: this worker's
//                        share of the circuit-breaker counts (see "circuit breakers" below)
//
// Identity across reloads. Table generations renumber clusters, so a worker's cluster record
// is keyed by a 64-bit hash of the cluster's name (`StatKey.hash`), claimed in an
// open-addressed table when a table is loaded (not per request); the supervisor keeps
// hash → name for every configuration it compiled. Two names with the same 64-bit FNV-1a hash
// would share a record: 2^-64 per pair, accepted. Endpoint ids are made stable by the
// supervisor (`EndpointIds`: same cluster name, address and port → same id across reloads),
// so an endpoint record survives reloads the same way.

/// Slot geometry.
public enum WorkerSlotLayout {
    /// Bytes per worker slot: 1 MiB (cluster and endpoint tables below, with room to grow).
    public static let bytes = 1 << 20
    public static let clusterStatsOffset = 4096
    public static let endpointStatsOffset = clusterStatsOffset + ClusterStats.capacity * ClusterStats.recordBytes
}

/// One cluster's counters and histograms in a worker slot. All UInt64 unless said otherwise.
public enum ClusterStats {
    /// Records per slot. A worker whose tables named more distinct clusters than this (over
    /// its whole life) counts the excess in record `overflowRecord`.
    public static let capacity = 256
    public static let recordBytes = 1184
    /// Record 0: requests that reached no cluster (404 NR, 503 NC, local replies, codec errors);
    /// Istio reports them with destination_service="unknown".
    public static let unknownRecord = 0
    /// The last record: clusters beyond `capacity` (named "overflow" by the supervisor).
    public static let overflowRecord = capacity - 1

    /// `StatKey.hash` of the cluster name; 0 = free. Written once, when the worker claims it.
    public static let keyHash = 0
    /// Requests routed to the cluster (Envoy upstream_rq_total).
    public static let rqTotal = 8
    /// Upstream connections opened (upstream_cx_total).
    public static let cxTotal = 16
    /// Upstream connections open now (upstream_cx_active): a gauge, reset when the worker dies.
    public static let cxActive = 24
    /// Upstream connect failures and timeouts (upstream_cx_connect_fail).
    public static let cxConnectFail = 32
    /// Responses by (status, flags, gRPC status): `codeSlots` UInt32 keys (`ResponseKey`; 0 =
    /// free), then `codeSlots` UInt64 counts. A response whose key finds no slot counts in the
    /// last one, keyed `ResponseKey.other`.
    public static let codeKeys = 48
    public static let codeCounts = codeKeys + codeSlots * 4
    public static let codeSlots = 16
    // The histograms of HTTP requests (request_protocol="http"); those of gRPC requests are the
    // same fields `grpcShift` bytes further on (request_protocol="grpc").
    /// `durationBoundsUs.count + 1` bucket counts (last = +Inf), then the sum in µs.
    public static let durationBuckets = codeCounts + codeSlots * 8
    public static let durationSumUs = durationBuckets + (StatBuckets.durationBoundsUs.count + 1) * 8
    /// Request bytes (head + body): `bytesBounds.count + 1` buckets, then the sum.
    public static let requestBytesBuckets = durationSumUs + 8
    public static let requestBytesSum = requestBytesBuckets + (StatBuckets.bytesBounds.count + 1) * 8
    /// Response bytes sent to the client (head + body), same buckets.
    public static let responseBytesBuckets = requestBytesSum + 8
    public static let responseBytesSum = responseBytesBuckets + (StatBuckets.bytesBounds.count + 1) * 8

    // TCP-route connections (Istio's istio_tcp_* metrics; Engine+TCP.swift).
    /// Client connections routed to the cluster (to `unknownRecord` when no route or cluster).
    public static let tcpOpened = responseBytesSum + 8
    /// Bytes read from clients and passed upstream (istio_tcp_received_bytes_total).
    public static let tcpReceivedBytes = tcpOpened + 8
    /// Bytes passed from the upstream to clients (istio_tcp_sent_bytes_total).
    public static let tcpSentBytes = tcpReceivedBytes + 8
    /// Connections closed, by their one response flag: `tcpClosedSlots` counts, slot 0 = no
    /// flag, slot 1 + k = flag bit k of `ResponseFlags` (a connection records at most one).
    public static let tcpClosed = tcpSentBytes + 8
    public static let tcpClosedSlots = 1 + ResponseFlags.count

    // Retries (Engine+Retry.swift; Envoy's names).
    /// Retries dispatched (upstream_rq_retry).
    public static let rqRetry = tcpClosed + tcpClosedSlots * 8
    /// Requests whose retry got a response that was forwarded (upstream_rq_retry_success).
    public static let rqRetrySuccess = rqRetry + 8
    /// Requests that failed after using up their retries (upstream_rq_retry_limit_exceeded).
    public static let rqRetryLimitExceeded = rqRetrySuccess + 8

    // Circuit-breaker overflows (CircuitBreakers.swift; Envoy's names).
    /// A new connection was wanted at tcp.maxConnections (upstream_cx_overflow).
    public static let cxOverflow = rqRetryLimitExceeded + 8
    /// A request found http1MaxPendingRequests waiting and got 503 UO (upstream_rq_pending_overflow).
    public static let rqPendingOverflow = cxOverflow + 8
    /// A retry was refused at http.maxRetries (upstream_rq_retry_overflow).
    public static let rqRetryOverflow = rqPendingOverflow + 8

    // TLS to the cluster's endpoints (Engine+UpstreamTLS.swift; Envoy's cluster ssl.* names).
    /// Handshakes completed (ssl.handshake).
    public static let sslHandshake = rqRetryOverflow + 8
    /// Of those, the ones that resumed a session (ssl.session_reused).
    public static let sslSessionReused = sslHandshake + 8
    /// Handshakes that failed: verification or protocol errors (ssl.connection_error).
    public static let sslConnectionError = sslSessionReused + 8

    /// The gRPC requests' histograms: `durationBuckets` … `responseBytesSum` moved by this.
    public static let grpcShift = sslConnectionError + 8 - durationBuckets
    static let histogramBytes = responseBytesSum + 8 - durationBuckets
    public static let end = durationBuckets + grpcShift + histogramBytes

    /// Slot of `tcpClosed` for `flags` (its lowest bit).
    @inline(__always)
    public static func tcpClosedSlot(_ flags: UInt16) -> Int {
        flags == 0 ? 0 : 1 + flags.trailingZeroBitCount
    }
}

/// A response's key in a cluster record's `codeKeys`: the response flags in bits 0–15, the
/// HTTP status in bits 16–25, and bits 26–31 for gRPC requests (Istio's request_protocol="grpc"):
/// 0 = not gRPC, else 1 + the grpc-status (0…62; more counts as 62).
public enum ResponseKey {
    /// The last slot, once every slot holds another key.
    public static let other: UInt32 = 0xFFFF_FFFF

    @inline(__always)
    public static func make(status: UInt16, flags: UInt16, grpcStatus: Int) -> UInt32 {
        let g = grpcStatus < 0 ? 0 : UInt32(min(grpcStatus, 62) + 1)
        return g << 26 | UInt32(status & 0x3FF) << 16 | UInt32(flags)
    }
    public static func status(_ key: UInt32) -> UInt16 { UInt16(key >> 16 & 0x3FF) }
    public static func flags(_ key: UInt32) -> UInt16 { UInt16(key & 0xFFFF) }
    /// The grpc-status of a gRPC request's response; nil for other requests.
    public static func grpcStatus(_ key: UInt32) -> Int? { key >> 26 == 0 ? nil : Int(key >> 26) - 1 }
}

/// Histogram bounds (upper bounds, inclusive). Istio's defaults for
/// istio_request_duration_milliseconds, and decades for the byte-size histograms.
public enum StatBuckets {
    public static let durationBoundsUs: [UInt64] = [
        500, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
        5_000_000, 10_000_000, 30_000_000, 60_000_000, 300_000_000, 600_000_000, 1_800_000_000,
        3_600_000_000,
    ]
    public static let bytesBounds: [UInt64] = [
        1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000,
    ]

    /// Bucket index of `v` (the first bound ≥ v; `bounds.count` for +Inf). ~20 compares.
    @inline(__always)
    public static func index(_ v: UInt64, _ bounds: UnsafeBufferPointer<UInt64>) -> Int {
        var i = 0
        while i < bounds.count && v > bounds[i] { i += 1 }
        return i
    }
}

/// One endpoint's passive-health evidence and counters in a worker slot (outlier detection).
public enum EndpointStats {
    /// Endpoint ids beyond this are not counted (and read as healthy, like the health array).
    public static let capacity = 16_384
    public static let recordBytes = 40
    /// 5xx responses (and connect failures) since this worker's last non-5xx response.
    public static let consecutive5xx = 0
    /// Gateway errors (502/503/504, connect failures) since the last other response.
    public static let consecutiveGateway = 8
    /// Responses (local 503s for connect failures included).
    public static let rqTotal = 16
    /// Non-5xx responses: each one reset `consecutive5xx`, so the supervisor can tell a reset
    /// from a count that merely did not grow.
    public static let non5xx = 24
    /// Non-gateway-error responses (each one reset `consecutiveGateway`).
    public static let nonGateway = 32
}

/// Per-listener TLS counters in a worker slot: Envoy's listener `ssl.*` and
/// `no_filter_chain_match` stats, which Istio exposes labelled by `listener_address`. Records
/// in the rest of the slot's first page, one per listener port of the worker, claimed in order
/// when the worker starts (a worker's listeners are fixed for its life: a port change rolls a
/// new worker set onto a zeroed slot). Listeners beyond `capacity` count only in the
/// process-wide fields (`WorkerSlotField.tlsHandshakes` …), which every event also counts in.
public enum ListenerStats {
    public static let offset = 1024
    public static let recordBytes = 48
    public static let capacity = (4096 - offset) / recordBytes
    /// UInt64: the listener's port; 0 = free.
    public static let port = 0
    // Counters, in the order of their process-wide fields (`processField`).
    /// Handshakes completed (ssl.handshake).
    public static let handshakes = 8
    /// Connections that failed: not TLS, malformed hello, failed handshake, TLS error later
    /// (ssl.connection_error).
    public static let connectionErrors = 16
    /// Handshakes that failed for want of a valid client certificate (ssl.fail_verify_no_cert).
    public static let failVerifyNoCert = 24
    /// Resumed sessions (ssl.session_reused).
    public static let sessionReused = 32
    /// SNI matched no server or passthrough route (no_filter_chain_match).
    public static let noFilterChainMatch = 40

    /// The process-wide `WorkerSlotField` of a record field (the same order, 8 bytes apart).
    @inline(__always)
    public static func processField(_ field: Int) -> Int {
        WorkerSlotField.tlsHandshakes + field - handshakes
    }
}

/// Names of stats records.
public enum StatKey {
    /// 64-bit FNV-1a of `bytes`, never 0 or 1 (0 marks a free record, 1 is `unknown`).
    @inline(__always)
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h < 2 ? h &+ 2 : h
    }

    public static func hash(_ s: String) -> UInt64 {
        var copy = s
        return copy.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    /// Key of the `unknown` record.
    public static let unknown: UInt64 = 1
    /// Key of the overflow record.
    public static let overflow: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
}

extension WorkerSlot {
    /// Base of cluster record `index`.
    @inline(__always)
    public func clusterRecord(_ index: Int) -> UnsafeMutableRawPointer {
        base + WorkerSlotLayout.clusterStatsOffset + index * ClusterStats.recordBytes
    }

    /// Base of endpoint record `id`, nil beyond the capacity.
    @inline(__always)
    public func endpointRecord(_ id: UInt32) -> UnsafeMutableRawPointer? {
        Int(id) < EndpointStats.capacity ? base + WorkerSlotLayout.endpointStatsOffset + Int(id) * EndpointStats.recordBytes : nil
    }

    /// Worker: the record for cluster name hash `key`, claiming a free one (open addressing,
    /// linear probing over records 1..<overflow). Called when a table is loaded, not per request.
    public func claimClusterRecord(key: UInt64) -> Int {
        if key == StatKey.unknown { ing_store_relaxed_u64(clusterRecord(0), StatKey.unknown); return 0 }
        let n = ClusterStats.capacity - 2
        var i = Int(key % UInt64(n))
        for _ in 0..<n {
            let r = 1 + i
            let k = ing_load_relaxed_u64(clusterRecord(r))
            if k == key { return r }
            if k == 0 {
                ing_store_release_u64(clusterRecord(r), key)
                return r
            }
            i = (i + 1) % n
        }
        ing_store_release_u64(clusterRecord(ClusterStats.overflowRecord), StatKey.overflow)
        return ClusterStats.overflowRecord
    }

    /// Base of listener record `index` (< `ListenerStats.capacity`).
    @inline(__always)
    public func listenerRecord(_ index: Int) -> UnsafeMutableRawPointer {
        base + ListenerStats.offset + index * ListenerStats.recordBytes
    }

    /// Worker: the listener record of `port` (its own, or the first free one), nil when every
    /// record holds another port. Called when the worker sets up its listeners.
    public func claimListenerRecord(port: UInt16) -> Int? {
        for r in 0..<ListenerStats.capacity {
            let k = ing_load_relaxed_u64(listenerRecord(r))
            if k == UInt64(port) { return r }
            if k == 0 {
                ing_store_release_u64(listenerRecord(r), UInt64(port))
                return r
            }
        }
        return nil
    }

    /// Supervisor: zeroes every stats byte (after folding them into the retired total, with no
    /// worker attached to the slot).
    public func zeroStats() {
        (base + WorkerSlotField.connectionsAccepted).initializeMemory(as: UInt8.self, repeating: 0,
                                                                     count: 4096 - WorkerSlotField.connectionsAccepted)
        (base + WorkerSlotLayout.clusterStatsOffset).initializeMemory(
            as: UInt8.self, repeating: 0, count: WorkerSlotLayout.bytes - WorkerSlotLayout.clusterStatsOffset)
    }
}

/// Relaxed counter helpers on raw record pointers (single writer).
@inline(__always)
public func statAdd(_ p: UnsafeMutableRawPointer, _ offset: Int, _ delta: UInt64 = 1) {
    let q = p + offset
    ing_store_relaxed_u64(q, ing_load_relaxed_u64(q) &+ delta)
}

@inline(__always)
public func statLoad(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
    ing_load_relaxed_u64(UnsafeMutableRawPointer(mutating: p) + offset)
}

/// Envoy's response flags (the `response_flags` label and the access log's %RESPONSE_FLAGS%).
public enum ResponseFlags {
    /// No route (404).
    public static let nr: UInt16 = 1 << 0
    /// No healthy upstream.
    public static let uh: UInt16 = 1 << 1
    /// Upstream connection failure.
    public static let uf: UInt16 = 1 << 2
    /// Upstream request timeout (route timeout, 504).
    public static let ut: UInt16 = 1 << 3
    /// Upstream overflow (no connection slot or socket).
    public static let uo: UInt16 = 1 << 4
    /// Downstream connection terminated before the response.
    public static let dc: UInt16 = 1 << 5
    /// Cluster not found (destination host or subset unknown).
    public static let nc: UInt16 = 1 << 6
    /// Upstream connection reset / terminated.
    public static let uc: UInt16 = 1 << 7
    /// Upstream protocol error (unparseable response).
    public static let upe: UInt16 = 1 << 8
    /// Downstream protocol error (the codec refused the request).
    public static let dpe: UInt16 = 1 << 9
    /// The request was delayed by fault injection.
    public static let di: UInt16 = 1 << 10
    /// The request was aborted by fault injection (the upstream was not reached).
    public static let fi: UInt16 = 1 << 11
    /// Upstream retry limit exceeded (the last try's failure is what the client got).
    public static let urx: UInt16 = 1 << 12
    /// Stream idle timeout (no byte moved for --stream-idle-timeout).
    public static let si: UInt16 = 1 << 13

    /// Number of flag bits.
    public static let count = 14

    /// Names in bit order, as Envoy prints them.
    public static let names: [String] = ["NR", "UH", "UF", "UT", "UO", "DC", "NC", "UC", "UPE", "DPE", "DI", "FI", "URX", "SI"]

    /// "UF,UH" or "-".
    public static func text(_ flags: UInt16) -> String {
        if flags == 0 { return "-" }
        var parts: [String] = []
        for (i, n) in names.enumerated() where flags & (1 << UInt16(i)) != 0 { parts.append(n) }
        return parts.joined(separator: ",")
    }
}


// MARK: circuit breakers

// Envoy's circuit breakers count per cluster across the whole gateway instance (all workers):
// connections open, requests waiting for a connection, retries in flight. Where the counts live
// and who writes what:
//
//  * Header `breakerKeys[b]` names breaker record b by cluster-name hash. Any worker claims a
//    free record with compare-and-swap when a table is loaded; records are never released
//    (like stats records; past `capacity` names a cluster gets no circuit breaker).
//  * Each worker counts only its own share, in its own slot at `WorkerSlotLayout.breakerOffset
//    + b × recordBytes` (single writer, relaxed stores, no locked instruction per request).
//  * A worker checking a limit sums the share of every worker slot (`breakerCount`). The sum is
//    read without a lock, so concurrent workers can each pass a check at the same time and
//    overshoot a limit by at most (workers − 1), as with Envoy's relaxed atomic counts.
//  * A worker that dies leaks nothing: the supervisor zeroes its slot when it reaps it
//    (`foldSlot` → `zeroStats`, before anyone reuses the slot), so its share stops counting at
//    once. Its connections died with it.
public enum BreakerLayout {
    /// Breaker records (header bytes 2048..<4088).
    public static let capacity = 255
    public static let recordBytes = 32
    /// UInt64 gauges of one worker's share.
    /// Upstream connections open or connecting (tcp.maxConnections).
    public static let connections = 0
    /// Requests waiting for a connection (http.http1MaxPendingRequests).
    public static let pending = 8
    /// Retries in flight (http.maxRetries).
    public static let retries = 16
    /// Requests in flight (http.http2MaxRequests: Envoy's max_requests).
    public static let requests = 24
}

extension WorkerSlotLayout {
    /// This worker's circuit-breaker shares: `BreakerLayout.capacity` records.
    public static let breakerOffset = endpointStatsOffset + EndpointStats.capacity * EndpointStats.recordBytes
}

extension WorkerSlot {
    /// This worker's share of breaker record `b`.
    @inline(__always)
    public func breakerShare(_ b: Int) -> UnsafeMutableRawPointer {
        base + WorkerSlotLayout.breakerOffset + b * BreakerLayout.recordBytes
    }
}

extension SharedRegion {
    /// Worker, at table load: the breaker record of cluster-name hash `key`, claiming a free
    /// one (compare-and-swap, open addressing); -1 when all are taken by other names.
    public func claimBreaker(key: UInt64) -> Int {
        let n = BreakerLayout.capacity
        var i = Int(key % UInt64(n))
        for _ in 0..<n {
            let p = base + RegionHeader.breakerKeys + i * 8
            var k = ing_load_acquire_u64(p)
            if k == 0 { k = ing_cas_u64(p, 0, key); if k == 0 { return i } }
            if k == key { return i }
            i = (i + 1) % n
        }
        return -1
    }

    /// The breaker record of `key` if some worker claimed it (supervisor, for display); -1.
    public func findBreaker(key: UInt64) -> Int {
        let n = BreakerLayout.capacity
        var i = Int(key % UInt64(n))
        for _ in 0..<n {
            let k = ing_load_acquire_u64(base + RegionHeader.breakerKeys + i * 8)
            if k == key { return i }
            if k == 0 { return -1 }
            i = (i + 1) % n
        }
        return -1
    }

    /// Gateway-wide count of `field` of breaker record `b`: the sum of every worker's share.
    @inline(__always)
    public func breakerCount(_ b: Int, _ field: Int) -> UInt64 {
        var sum: UInt64 = 0
        for w in 0..<maxWorkers {
            sum &+= ing_load_relaxed_u64(workerSlot(w).breakerShare(b) + field)
        }
        return sum
    }
}
