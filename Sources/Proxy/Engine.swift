import CSupport
import CURing
import HTTP1
import HTTP2
import SharedMemory
import URing
#if canImport(Glibc)
import Glibc
#endif

/// Limits and timeouts of the data plane (DESIGN.md §8 defaults).
public struct ProxyLimits: Sendable {
    public var maxConnections: Int = 65_536
    public var idleTimeoutMs: UInt64 = 60_000
    public var headerTimeoutMs: UInt64 = 10_000
    /// Envoy's stream_idle_timeout: an exchange with no byte moving on either of its
    /// connections for this long ends (408 before the response started, else both close);
    /// 0 = none. Every completion on an exchange's connections pushes it back.
    public var streamIdleTimeoutMs: UInt64 = 300_000
    /// SETTINGS_MAX_CONCURRENT_STREAMS of downstream HTTP/2 connections (`--http2-max-concurrent-streams`,
    /// 1…1000; Envoy's recommended edge value 100): more streams at once are refused.
    public var http2MaxConcurrentStreams: UInt32 = 100
    public var receiveBuffers: Int = 1024
    public var receiveBufferBytes: Int = 16 * 1024
    /// HTTP bodies with a known length of at least this many bytes still to forward (after the
    /// bytes that came with the head) are spliced instead of copied. Measured (perf/README.md
    /// "Splice"): splicing 64 KiB bodies was 11% slower than copying, 256 KiB bodies 1.6× faster
    /// at a third of the CPU; 128 KiB keeps 64 KiB bodies on the copy path and splices every
    /// body of 256 KiB and more. INGRESSD_SPLICE_MIN_BYTES overrides it (0 = never splice HTTP
    /// bodies); perf/scenarios/tcp.py uses it to compare the two paths.
    public var spliceMinBytes: Int64 = 128 * 1024
    /// Idle timeout of a TCP-route connection pair (Istio's connectionPool.tcp.idleTimeout
    /// default: 1 h). INGRESSD_TCP_IDLE_TIMEOUT_MS overrides it (tests).
    public var tcpIdleTimeoutMs: UInt64 = 3_600_000
    /// Idle pooled upstream connections are closed after this long (Istio's
    /// connectionPool.http.idleTimeout default: 1 h). INGRESSD_UPSTREAM_IDLE_TIMEOUT_MS
    /// overrides it (tests).
    public var upstreamIdleTimeoutMs: UInt64 = 3_600_000
    /// Overload protection (Envoy's overload manager, for the one resource a slow client can
    /// pile up here): at most this many 80 KiB buffers hold partial heads (a head past 4 KiB
    /// split over several reads) per worker, 160 MiB. Past it a head that needs one gets 431
    /// and its connection closes, instead of 65,536 slow clients pinning 5 GiB.
    /// INGRESSD_MAX_LARGE_HEAD_BUFFERS overrides it (tests).
    public var maxLargeHeadBuffers = 2048
    /// Idle upstream connections kept per endpoint per worker. 1024, Envoy's default
    /// max_connections per cluster: an HTTP/2 client with 100 streams on each of 10 connections
    /// needs 1000 HTTP/1.1 upstream connections at once, and a smaller pool would close and
    /// reopen most of them on every wave (measured with h2load -c10 -m100: 5230 connections
    /// opened for 20,000 requests at 256). INGRESSD_UPSTREAM_IDLE_CAP overrides it (tests).
    public var maxIdlePerPool: Int32 = 1024
    public init() {}
}

/// The proxy of one worker: connection slab, buffers, upstream pools and the route table in
/// use, driven by completions from the worker's ring. Single-threaded; every method runs on
/// the worker's loop thread and none blocks.
///
/// Callbacks never run synchronously: every handler only queues SQEs, which the loop submits
/// in one io_uring_enter per iteration.
public struct ProxyEngine: ~Copyable {
    public let ring: Ring
    let rx: BufferRing
    var limits: ProxyLimits

    // Connection slab.
    let conns: UnsafeMutablePointer<Conn>
    let capacity: Int32
    let freeSlots: UnsafeMutablePointer<Int32>
    var freeCount: Int32
    /// Slots ever used: sweeps scan 0..<highWater.
    var highWater: Int32 = 0
    /// Requests being served (Exchange.swift).
    var exchanges: ExchangeSlab
    /// One timer per connection slot and per exchange slot (Engine+Timers.swift).
    var timers: TimerWheel
    public internal(set) var downstreamCount = 0

    /// Pipes for the splice path (TCP routes, large HTTP bodies).
    var pipes: PipePool
    /// Bytes moved by splice (both directions, TCP routes and HTTP bodies), for stats.
    public internal(set) var splicedBytes: UInt64 = 0

    var small = BufferPool(size: 4096)
    var large = BufferPool(size: 80 * 1024)
    /// Large (80 KiB) buffers holding partial heads now (`ProxyLimits.maxLargeHeadBuffers`).
    var largeHeadBuffers = 0
    /// Scratch header array for the head being parsed (used synchronously, never kept).
    let headers: UnsafeMutablePointer<HeaderField>
    static let maxHeaders = 101
    /// Scratch for a route's header edits and a rewritten request-target while a head is
    /// written (Engine+Forward.swift; used synchronously, never kept). Edits past the capacity
    /// are not applied (validation keeps routes far below it).
    let edits: UnsafeMutablePointer<HeaderEdit>
    let editCapacity = 256
    let targetScratch: UnsafeMutableRawPointer
    /// A request line is at most 16 KiB (414 beyond); a rewrite adds its `uri`.
    let targetScratchBytes = 24 * 1024

    // Listeners.
    let listenerFds: UnsafeMutablePointer<Int32>
    let listenerPorts: UnsafeMutablePointer<UInt16>
    /// Each listener's TLS stats record in the worker slot (`ListenerStats`), -1: none left.
    let listenerRecords: UnsafeMutablePointer<Int32>
    let listenerCount: Int
    public internal(set) var draining = false
    /// Accepting paused after running out of descriptors (Engine+AcceptPause.swift).
    var acceptPause = AcceptPause()

    // Routing.
    var table = ActiveTable()
    /// Upstream connection pools, per endpoint address (UpstreamPools.swift).
    var pools = UpstreamPools()

    // Time, randomness, stats.
    public var nowMs: UInt64 = 0
    var rng: UInt64
    let stats: WorkerSlot
    let region: SharedRegion
    /// "Fri, 27 Nov 2026 04:00:00 GMT" for local replies, refreshed once a second.
    var date = DateCache()
    /// Connections whose receive hit ENOBUFS (the provided-buffer ring was empty), each once
    /// (`Conn.starved`); re-armed together by `tick` at most every `starvedRetryMs`.
    var starved: UnsafeMutablePointer<Int32>
    var starvedCount = 0
    /// When `tick` trims the buffer pools next (monotonic ms; `trimBuffers`).
    var trimAtMs: UInt64 = 0
    static let trimIntervalMs: UInt64 = 2_000
    /// When `tick` may re-arm the starved receives next (monotonic ms).
    var starvedRetryAtMs: UInt64 = 0
    /// Buffers come back only as sends to slow readers complete, and a receive re-armed into
    /// an empty ring fails at once: re-arming on every loop iteration spun the worker at 100%
    /// CPU for as long as the ring stayed empty. 2 ms bounds that to ~500 re-arm rounds a
    /// second while adding at most 2 ms to a receive that was starved anyway.
    static let starvedRetryMs: UInt64 = 2
    /// Stats records of the current table and the access log (Engine+Stats.swift).
    var recorder = StatsRecorder()
    /// TLS (Engine+TLS.swift): the current table's server contexts, plaintext buffers.
    var tls = TLSContexts()
    var plain: PlainBuffers
    /// Bulk receive buffers (ids above the plaintext ones): a response body on its way to a
    /// TLS client is received 64 KiB at a time and encrypted in one piece (Engine+Upstream.swift).
    var bulk: PlainBuffers
    static let bulkIds = 4096
    static let bulkBytes = 64 * 1024
    /// HTTP/2 (Engine+HTTP2.swift): what nghttp2 reports while it reads, for every connection.
    let h2Inbox: UnsafeMutablePointer<H2Inbox>
    /// HTTP/2 connections with frames to send, flushed once at the end of each loop iteration
    /// (`tick`), so that every response that became ready in one batch of completions leaves
    /// in one send.
    let h2FlushList: UnsafeMutablePointer<Int32>
    var h2FlushCount = 0

    public init(ring: consuming Ring, listeners: [(fd: Int32, port: UInt16)], region: SharedRegion,
                slot: WorkerSlot, limits: ProxyLimits = ProxyLimits()) throws(RingError) {
        var limits = limits
        limits.applyEnvironment()
        self.rx = try BufferRing(ring: ring, groupID: 0, count: limits.receiveBuffers, size: limits.receiveBufferBytes)
        pools.maxIdlePerPool = limits.maxIdlePerPool
        self.ring = ring
        self.limits = limits
        plain = PlainBuffers(base: limits.receiveBuffers, size: limits.receiveBufferBytes,
                             capacity: 65_536 - ProxyEngine.bulkIds - limits.receiveBuffers)
        bulk = PlainBuffers(base: 65_536 - ProxyEngine.bulkIds, size: ProxyEngine.bulkBytes, capacity: ProxyEngine.bulkIds)
        pipes = PipePool(capacity: limits.maxConnections)
        capacity = Int32(limits.maxConnections)
        // The slab is reserved, not touched: anonymous pages are backed only when a slot is
        // first used (slots are handed out lowest first), so RSS follows the peak number of
        // connections, not maxConnections. Slots are initialized on first use (allocSlot).
        conns = reserveSlab(Conn.self, count: limits.maxConnections)
        exchanges = ExchangeSlab(capacity: limits.maxConnections)
        timers = TimerWheel(capacity: 4 * limits.maxConnections, nowMs: ing_monotonic_ns() / 1_000_000)
        freeSlots = .allocate(capacity: limits.maxConnections)
        for i in 0..<limits.maxConnections {
            freeSlots[i] = Int32(limits.maxConnections - 1 - i)
        }
        freeCount = capacity
        headers = .allocate(capacity: ProxyEngine.maxHeaders)
        edits = .allocate(capacity: 256)
        targetScratch = .allocate(byteCount: 24 * 1024, alignment: 16)
        listenerCount = listeners.count
        listenerFds = .allocate(capacity: max(1, listeners.count))
        listenerPorts = .allocate(capacity: max(1, listeners.count))
        listenerRecords = .allocate(capacity: max(1, listeners.count))
        for (i, l) in listeners.enumerated() {
            listenerFds[i] = l.fd
            listenerPorts[i] = l.port
            listenerRecords[i] = slot.claimListenerRecord(port: l.port).map { Int32($0) } ?? -1
        }
        starved = .allocate(capacity: limits.maxConnections)
        h2Inbox = .allocate(capacity: 1)
        h2Inbox.initialize(to: H2Inbox())
        h2FlushList = .allocate(capacity: limits.maxConnections)
        self.region = region
        self.stats = slot
        rng = ing_realtime_ns() ^ (UInt64(getpid()) << 32) | 1
        nowMs = ing_monotonic_ns() / 1_000_000
        date.refresh()
    }

    /// Arms a multishot accept on every listener.
    public mutating func startAccepting() {
        for i in 0..<listenerCount {
            ring.prepMultishotAccept(fd: listenerFds[i], userData: packUserData(.accept, Int32(i), 0))
        }
    }

    // MARK: completion dispatch

    /// Handles one completion. Called by the worker loop for each CQE of a batch.
    @inline(__always)
    public mutating func handle(userData: UInt64, result: Int32, flags: UInt32) {
        let (op, index, gen) = unpackUserData(userData)
        if op == Op.accept.rawValue {
            onAccept(listener: Int(index), result: result, flags: flags)
            return
        }
        if op == Op.ignore.rawValue || op == 0 { return }
        if op == Op.logWrite.rawValue { onAccessLogWritten(result: result); return }
        let c = conns + Int(index)
        if c.pointee.generation & 0xFF_FFFF != gen {
            // Stale: should not happen (slots are reused only after their ops complete).
            if flags & ING_CQE_F_BUFFER != 0 { recycleRecv(UInt16(flags >> ING_CQE_BUFFER_SHIFT)) }
            return
        }
        c.pointee.pendingOps -= 1
        if c.pointee.exchange >= 0 { streamActive(c.pointee.exchange) }
        switch op {
        case Op.downRecv.rawValue, Op.upRecv.rawValue:
            c.pointee.recvArmed = false
            if c.pointee.closing {
                if flags & ING_CQE_F_BUFFER != 0 { recycleRecv(UInt16(flags >> ING_CQE_BUFFER_SHIFT)) }
                finalizeIfIdle(index)
                return
            }
            if c.pointee.transport != .plain {
                onTLSRecv(index, result: result, flags: flags)
            } else if op == Op.downRecv.rawValue {
                onDownRecv(index, result: result, flags: flags)
            } else {
                onUpRecv(index, result: result, flags: flags)
            }
        case Op.downSend.rawValue, Op.upSend.rawValue:
            c.pointee.sendArmed = false
            if c.pointee.closing {
                dropSendQueue(index)
                finalizeIfIdle(index)
                return
            }
            if c.pointee.transport == .tls {
                onTLSSendComplete(index, result: result)
            } else {
                onSendComplete(index, result: result, downstream: op == Op.downSend.rawValue)
            }
        case Op.upRecvBulk.rawValue:
            c.pointee.recvArmed = false
            let bid = c.pointee.bulkRecv
            if c.pointee.closing || result <= 0 {
                bulk.put(bid)
                if c.pointee.closing {
                    finalizeIfIdle(index)
                } else {
                    onUpRecv(index, result: result, flags: 0)
                }
                return
            }
            onUpData(index, bulk.buffer(bid), Int(result), bid)
        case Op.tlsPending.rawValue:
            c.pointee.recvArmed = false
            if c.pointee.closing {
                finalizeIfIdle(index)
                return
            }
            tlsRead(index)
        case Op.h2Pending.rawValue:
            onH2Pending(index)
        case Op.pollIn.rawValue, Op.pollOut.rawValue:
            onSplicePoll(index, out: op == Op.pollOut.rawValue, result: result)
        case Op.upConnect.rawValue:
            if c.pointee.closing {
                finalizeIfIdle(index)
                return
            }
            onUpConnect(index, result: result)
        default:
            break
        }
    }

    /// Once per loop iteration: fire due timers, re-arm starved receives, flush the access log.
    public mutating func tick(nowNs: UInt64) {
        nowMs = nowNs / 1_000_000
        runTimers()
        flushHTTP2()   // Engine+HTTP2.swift
        flushAccessLog()
        if nowMs >= trimAtMs { trimBuffers() }
        if starvedCount > 0 && nowMs >= starvedRetryAtMs {
            starvedRetryAtMs = nowMs + ProxyEngine.starvedRetryMs
            let n = starvedCount
            starvedCount = 0
            for k in 0..<n {
                // An entry whose flag is clear is stale: its slot was closed (and maybe reused).
                let i = starved[k]
                guard conns[Int(i)].starved else { continue }
                conns[Int(i)].starved = false
                if conns[Int(i)].role != .free && !conns[Int(i)].closing && !conns[Int(i)].recvArmed {
                    armRecv(i)
                }
            }
        }
    }

    /// Every `trimIntervalMs`: buffers of the worker's pools that no connection took during
    /// the whole interval are freed, and glibc is asked to return freed heap pages
    /// (malloc_trim: the pools' buffers, memory BIOs replaced by shrinkBIOs and OpenSSL's
    /// released record buffers are heap chunks below the mmap threshold, which free() keeps
    /// resident). After a burst of large HTTPS responses the idle worker shrinks back, as
    /// nginx frees an idle connection's buffers; under steady load the pools keep what the
    /// load uses. The receive ring (`rx`, registered with the kernel) is not trimmed.
    mutating func trimBuffers() {
        trimAtMs = nowMs + ProxyEngine.trimIntervalMs
        var freed = large.trim(keep: 4) + small.trim(keep: 16)
        freed += plain.trim(keep: 4) + bulk.trim(keep: 2)
        if freed > 0 { _ = ing_malloc_trim() }
    }

    /// The receive of connection `i` found the buffer ring empty: `tick` re-arms it later.
    /// A connection pins at most `SendQueue.capacity` receive buffers (its peer's bytes queued
    /// for it), so the ring empties only when many slow readers each hold their two.
    @inline(__always)
    mutating func receiveStarved(_ i: Int32) {
        guard !conns[Int(i)].starved else { return }
        guard starvedCount < Int(capacity) else {
            armRecv(i)   // only stale entries can fill the list: retry now rather than overflow
            return
        }
        conns[Int(i)].starved = true
        starved[starvedCount] = i
        starvedCount += 1
    }

    /// When the worker must wake to re-arm starved receives (nil: none are waiting).
    public var starvedRetryAtNs: UInt64? {
        starvedCount > 0 ? starvedRetryAtMs * 1_000_000 : nil
    }

    // MARK: slots

    /// A fresh connection slot (the slab is reserved untouched: a slot's memory is initialized
    /// on its first use), or -1 when every slot is taken.
    @inline(__always)
    mutating func allocSlot() -> Int32 {
        guard freeCount > 0 else { return -1 }
        freeCount -= 1
        let i = freeSlots[Int(freeCount)]
        var gen: UInt32 = 1
        if i >= highWater {
            // First use of this slot: its memory is still the zero page, not a Conn.
            highWater = i + 1
            (conns + Int(i)).initialize(to: Conn())
        } else {
            gen = conns[Int(i)].generation &+ 1
            conns[Int(i)] = Conn()
            timers.cancel(i)
            timers.cancel(keepaliveTimer(i))
        }
        conns[Int(i)].generation = gen
        return i
    }

    @inline(__always)
    func userData(_ op: Op, _ i: Int32) -> UInt64 {
        packUserData(op, i, conns[Int(i)].generation)
    }

    @inline(__always)
    mutating func nextRandom() -> UInt64 {
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        return rng
    }
}
