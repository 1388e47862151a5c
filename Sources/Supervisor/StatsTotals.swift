import SharedMemory

// The supervisor's view of the workers' statistics (StatsLayout.swift): sums of worker slots.
// Counters survive worker deaths because `Supervisor.reap` folds a dead worker's slot into
// `retired` and zeroes the slot before anyone reuses it; gauges (active connections) are not
// folded: a dead worker's connections are gone.

/// Process-wide counters of `WorkerSlotField`, by name for rendering.
let processCounterFields: [(name: String, offset: Int, gauge: Bool)] = [
    ("connectionsAccepted", WorkerSlotField.connectionsAccepted, false),
    ("connectionsActive", WorkerSlotField.connectionsActive, true),
    ("requestsTotal", WorkerSlotField.requestsTotal, false),
    ("responses1xx", WorkerSlotField.responses1xx, false),
    ("responses2xx", WorkerSlotField.responses1xx + 8, false),
    ("responses3xx", WorkerSlotField.responses1xx + 16, false),
    ("responses4xx", WorkerSlotField.responses1xx + 24, false),
    ("responses5xx", WorkerSlotField.responses1xx + 32, false),
    ("upstreamConnectFailures", WorkerSlotField.upstreamConnectFailures, false),
    ("badRequests", WorkerSlotField.badRequests, false),
    ("upstreamConnectionsOpened", WorkerSlotField.upstreamConnectionsOpened, false),
    ("accessLogLines", WorkerSlotField.accessLogLines, false),
    ("accessLogDropped", WorkerSlotField.accessLogDropped, false),
    ("tlsHandshakes", WorkerSlotField.tlsHandshakes, false),
    ("tlsConnectionErrors", WorkerSlotField.tlsConnectionErrors, false),
    ("tlsFailVerifyNoCert", WorkerSlotField.tlsFailVerifyNoCert, false),
    ("tlsSessionReused", WorkerSlotField.tlsSessionReused, false),
    ("tlsNoFilterChainMatch", WorkerSlotField.tlsNoFilterChainMatch, false),
    ("h2Connections", WorkerSlotField.h2Connections, false),
    ("h2Streams", WorkerSlotField.h2Streams, false),
    ("h2ProtocolErrors", WorkerSlotField.h2ProtocolErrors, false),
]

struct Histogram: Equatable {
    /// Per-bucket (not cumulative) counts; the last is +Inf.
    var buckets: [UInt64]
    var sum: UInt64
    init(bucketCount: Int) { buckets = Array(repeating: 0, count: bucketCount); sum = 0 }
    var count: UInt64 { buckets.reduce(0, &+) }

    mutating func add(record p: UnsafeRawPointer, buckets offset: Int, sum sumOffset: Int) {
        for i in buckets.indices { buckets[i] &+= statLoad(p, offset + i * 8) }
        sum &+= statLoad(p, sumOffset)
    }

    mutating func add(_ o: Histogram) {
        for i in buckets.indices { buckets[i] &+= o.buckets[i] }
        sum &+= o.sum
    }
}

struct ClusterTotals {
    var rqTotal: UInt64 = 0
    var cxTotal: UInt64 = 0
    var cxActive: UInt64 = 0
    var cxConnectFail: UInt64 = 0
    var rqRetry: UInt64 = 0
    var rqRetrySuccess: UInt64 = 0
    var rqRetryLimitExceeded: UInt64 = 0
    var cxOverflow: UInt64 = 0
    var rqPendingOverflow: UInt64 = 0
    var rqRetryOverflow: UInt64 = 0
    var sslHandshake: UInt64 = 0
    var sslSessionReused: UInt64 = 0
    var sslConnectionError: UInt64 = 0
    /// `ResponseKey` (status, flags, gRPC status) → responses.
    var responses: [UInt32: UInt64] = [:]
    /// Request histograms: [0] HTTP requests, [1] gRPC requests (request_protocol).
    var durations = [Histogram](repeating: Histogram(bucketCount: StatBuckets.durationBoundsUs.count + 1), count: 2)
    var requestSizes = [Histogram](repeating: Histogram(bucketCount: StatBuckets.bytesBounds.count + 1), count: 2)
    var responseSizes = [Histogram](repeating: Histogram(bucketCount: StatBuckets.bytesBounds.count + 1), count: 2)
    /// All requests' durations (Envoy's upstream_rq_time has no protocol).
    var durationUs: Histogram { var h = durations[0]; h.add(durations[1]); return h }
    var requestBytes: Histogram { var h = requestSizes[0]; h.add(requestSizes[1]); return h }
    var responseBytes: Histogram { var h = responseSizes[0]; h.add(responseSizes[1]); return h }
    /// TCP-route connections: opened, bytes from clients, bytes to clients, and closed by
    /// `tcpClosedSlot` (0: no flag, 1 + k: flag bit k).
    var tcpOpened: UInt64 = 0
    var tcpReceivedBytes: UInt64 = 0
    var tcpSentBytes: UInt64 = 0
    var tcpClosed = [UInt64](repeating: 0, count: ClusterStats.tcpClosedSlots)

    /// Whether any TCP-route connection reached this record.
    var hasTCP: Bool { tcpOpened > 0 || tcpClosed.contains { $0 > 0 } }

    mutating func add(record p: UnsafeRawPointer, gauges: Bool) {
        rqTotal &+= statLoad(p, ClusterStats.rqTotal)
        cxTotal &+= statLoad(p, ClusterStats.cxTotal)
        if gauges { cxActive &+= statLoad(p, ClusterStats.cxActive) }
        cxConnectFail &+= statLoad(p, ClusterStats.cxConnectFail)
        rqRetry &+= statLoad(p, ClusterStats.rqRetry)
        rqRetrySuccess &+= statLoad(p, ClusterStats.rqRetrySuccess)
        rqRetryLimitExceeded &+= statLoad(p, ClusterStats.rqRetryLimitExceeded)
        cxOverflow &+= statLoad(p, ClusterStats.cxOverflow)
        rqPendingOverflow &+= statLoad(p, ClusterStats.rqPendingOverflow)
        rqRetryOverflow &+= statLoad(p, ClusterStats.rqRetryOverflow)
        sslHandshake &+= statLoad(p, ClusterStats.sslHandshake)
        sslSessionReused &+= statLoad(p, ClusterStats.sslSessionReused)
        sslConnectionError &+= statLoad(p, ClusterStats.sslConnectionError)
        for k in 0..<ClusterStats.codeSlots {
            let key = p.load(fromByteOffset: ClusterStats.codeKeys + k * 4, as: UInt32.self)
            guard key != 0 else { continue }
            let n = statLoad(p, ClusterStats.codeCounts + k * 8)
            if n > 0 { responses[key, default: 0] &+= n }
        }
        for (k, shift) in [0, ClusterStats.grpcShift].enumerated() {
            durations[k].add(record: p, buckets: shift + ClusterStats.durationBuckets, sum: shift + ClusterStats.durationSumUs)
            requestSizes[k].add(record: p, buckets: shift + ClusterStats.requestBytesBuckets, sum: shift + ClusterStats.requestBytesSum)
            responseSizes[k].add(record: p, buckets: shift + ClusterStats.responseBytesBuckets, sum: shift + ClusterStats.responseBytesSum)
        }
        tcpOpened &+= statLoad(p, ClusterStats.tcpOpened)
        tcpReceivedBytes &+= statLoad(p, ClusterStats.tcpReceivedBytes)
        tcpSentBytes &+= statLoad(p, ClusterStats.tcpSentBytes)
        for k in tcpClosed.indices { tcpClosed[k] &+= statLoad(p, ClusterStats.tcpClosed + k * 8) }
    }

    mutating func add(_ o: ClusterTotals) {
        rqTotal &+= o.rqTotal
        cxTotal &+= o.cxTotal
        cxActive &+= o.cxActive
        cxConnectFail &+= o.cxConnectFail
        rqRetry &+= o.rqRetry
        rqRetrySuccess &+= o.rqRetrySuccess
        rqRetryLimitExceeded &+= o.rqRetryLimitExceeded
        cxOverflow &+= o.cxOverflow
        rqPendingOverflow &+= o.rqPendingOverflow
        rqRetryOverflow &+= o.rqRetryOverflow
        sslHandshake &+= o.sslHandshake
        sslSessionReused &+= o.sslSessionReused
        sslConnectionError &+= o.sslConnectionError
        for (k, v) in o.responses { responses[k, default: 0] &+= v }
        for k in 0..<2 {
            durations[k].add(o.durations[k])
            requestSizes[k].add(o.requestSizes[k])
            responseSizes[k].add(o.responseSizes[k])
        }
        tcpOpened &+= o.tcpOpened
        tcpReceivedBytes &+= o.tcpReceivedBytes
        tcpSentBytes &+= o.tcpSentBytes
        for k in tcpClosed.indices { tcpClosed[k] &+= o.tcpClosed[k] }
    }
}

struct EndpointTotals {
    var rqTotal: UInt64 = 0
    var rq5xx: UInt64 = 0
}

/// Per-listener TLS counters (`ListenerStats`), summed over workers.
struct ListenerTotals {
    /// The counters of `ListenerStats.fields`, in that order.
    var counts = [UInt64](repeating: 0, count: ListenerTotals.fields.count)
    static let fields = [ListenerStats.handshakes, ListenerStats.connectionErrors, ListenerStats.failVerifyNoCert,
                         ListenerStats.sessionReused, ListenerStats.noFilterChainMatch]
    var isZero: Bool { !counts.contains { $0 != 0 } }
}

/// Sums over worker slots.
struct StatsTotals {
    var process: [Int: UInt64] = [:]
    /// By listener port.
    var listeners: [UInt16: ListenerTotals] = [:]
    /// By cluster-name hash (`StatKey`).
    var clusters: [UInt64: ClusterTotals] = [:]
    /// By stable endpoint id.
    var endpoints: [UInt32: EndpointTotals] = [:]

    /// Adds one slot. `endpointIds`: the ids to read (those of any configuration we know).
    mutating func add(slot ws: WorkerSlot, gauges: Bool, endpointIds: some Sequence<UInt32>) {
        for f in processCounterFields where gauges || !f.gauge {
            process[f.offset, default: 0] &+= ws.counter(f.offset)
        }
        for r in 0..<ListenerStats.capacity {
            let p = UnsafeRawPointer(ws.listenerRecord(r))
            let port = statLoad(p, ListenerStats.port)
            guard port != 0 else { break }   // claimed in order: the first free one ends them
            var l = listeners[UInt16(truncatingIfNeeded: port), default: ListenerTotals()]
            for (k, f) in ListenerTotals.fields.enumerated() { l.counts[k] &+= statLoad(p, f) }
            listeners[UInt16(truncatingIfNeeded: port)] = l
        }
        for r in 0..<ClusterStats.capacity {
            let p = UnsafeRawPointer(ws.clusterRecord(r))
            let key = statLoad(p, ClusterStats.keyHash)
            guard key != 0 else { continue }
            clusters[key, default: ClusterTotals()].add(record: p, gauges: gauges)
        }
        for id in endpointIds {
            guard let p = ws.endpointRecord(id) else { continue }
            let total = statLoad(p, EndpointStats.rqTotal)
            guard total > 0 else { continue }
            var e = endpoints[id, default: EndpointTotals()]
            e.rqTotal &+= total
            e.rq5xx &+= total &- statLoad(p, EndpointStats.non5xx)
            endpoints[id] = e
        }
    }

    mutating func add(_ o: StatsTotals) {
        for (k, v) in o.process { process[k, default: 0] &+= v }
        for (port, v) in o.listeners {
            var l = listeners[port, default: ListenerTotals()]
            for k in l.counts.indices { l.counts[k] &+= v.counts[k] }
            listeners[port] = l
        }
        for (k, v) in o.clusters { clusters[k, default: ClusterTotals()].add(v) }
        for (k, v) in o.endpoints {
            var e = endpoints[k, default: EndpointTotals()]
            e.rqTotal &+= v.rqTotal
            e.rq5xx &+= v.rq5xx
            endpoints[k] = e
        }
    }
}
