import HTTP1
import RouteTable
import SharedMemory

// Retries (istio-semantics.md §1.4 `retries`; Envoy's router retry state). Every forwarded
// route has a policy: the VirtualService's, or Istio's default (2 retries on
// connect-failure, refused-stream, unavailable, cancelled, retriable-status-codes, with no
// retriable status codes since Istio 1.24, so a 503 answer is not retried).
//
//   try fails before the response reached the client ──► mayRetry? ──no──► as without retries
//     (connect failure, reset, a retriable status,            │ yes        (503 UF/UC, 504 UT,
//      per-try timeout)                                       ▼             or the response)
//                               take the request bytes back from the connection (`out` →
//                               `Exchange.pending`), close it, back off (jittered, Envoy:
//                               random in [0, (2^n − 1) × 25 ms], at most 250 ms), then
//                               dispatch again, preferring another endpoint
//
// Only a request whose bytes are all in the forwarded buffer can be sent again (no body, or a
// body that came with the head and fit: `Exchange.replayable`), or one whose streamed body (an
// HTTP/2 client's) ended whole in the exchange's request copy (Engine+RequestCopy.swift, up to
// 80 KiB); Envoy buffers up to 64 KiB, a larger body is not retried there either. A gRPC
// answer is retried on its grpc-status when it comes in the head (trailers-only, as Envoy's
// x-envoy-retry-grpc-on): Istio's default policy retries UNAVAILABLE and CANCELLED. The route timeout spans every try. A reload between
// tries ends the retries (the route's indices belong to the old table).

extension ProxyEngine {
    enum RetryReason {
        case connectFailure
        /// The connection failed or closed after it was established, before a response.
        case reset
        case status(UInt16)
        /// A trailers-only gRPC response with this grpc-status.
        case grpcStatus(Int)
        case perTryTimeout
    }

    /// Whether the route's policy retries grpc-status `code` (-1: none): retryOn cancelled (1),
    /// deadline-exceeded (4), resource-exhausted (8), internal (13), unavailable (14).
    func retriesOnGRPCStatus(_ reader: TableReader, route: Int32, _ code: Int) -> Bool {
        let on = reader.retryPolicy(route: route).retryOn
        switch code {
        case 1: return on.contains(.cancelled)
        case 4: return on.contains(.deadlineExceeded)
        case 8: return on.contains(.resourceExhausted)
        case 13: return on.contains(.internal)
        case 14: return on.contains(.unavailable)
        default: return false
        }
    }

    /// Whether exchange `x` may be tried again after `reason`.
    func mayRetry(_ x: Int32, _ reason: RetryReason) -> Bool {
        let e = exchanges.slots + Int(x)
        guard e.pointee.replayable || e.pointee.requestCopyDone, !e.pointee.responseStarted, e.pointee.route >= 0,
              e.pointee.tableGeneration == table.generation, let reader = table.reader else { return false }
        let d = e.pointee.down
        guard d >= 0, !conns[Int(d)].closing, !draining else { return false }
        let p = reader.retryPolicy(route: e.pointee.route)
        guard p.attempts > 0, UInt32(e.pointee.tries) <= p.attempts else { return false }
        let wanted: Bool
        switch reason {
        case .connectFailure:
            wanted = !p.retryOn.isDisjoint(with: [.connectFailure, .status5xx, .gatewayError, .reset])
        case .reset, .perTryTimeout:
            wanted = !p.retryOn.isDisjoint(with: [.reset, .status5xx, .gatewayError])
        case .status(let s):
            wanted = reader.retriesOnStatus(route: e.pointee.route, status: s)
        case .grpcStatus(let g):
            wanted = retriesOnGRPCStatus(reader, route: e.pointee.route, g)
        }
        return wanted && retryBudgetAvailable(x)   // connectionPool.http.maxRetries (CircuitBreakers.swift)
    }

    /// Takes exchange `x`'s request back from upstream `u` (which is closed) and dispatches it
    /// again after the back-off.
    mutating func scheduleRetry(_ x: Int32, from u: Int32) {
        let e = exchanges.slots + Int(x)
        let uc = conns + Int(u)
        if !e.pointee.replayable, let copy = e.pointee.requestCopy, e.pointee.requestCopyDone {
            // A streamed body: the request copy is the whole request (Engine+RequestCopy.swift);
            // the connection's own buffer goes with it.
            e.pointee.pending = copy
            e.pointee.pendingLarge = e.pointee.requestCopyLarge
            e.pointee.pendingLen = e.pointee.requestCopyLen
            e.pointee.requestCopy = nil
            releaseRequestCopy(x)
        } else {
            // SAFETY: the buffer moves to the exchange; a send still in flight from it only reads
            // it (its queue segment releases nothing), and it is not written until sent again.
            e.pointee.pending = uc.pointee.out
            e.pointee.pendingLarge = uc.pointee.outLarge
            e.pointee.pendingLen = uc.pointee.outLen
            uc.pointee.out = nil
            uc.pointee.outLen = 0
        }
        closeConn(u)
        statRetry(x)
        e.pointee.stage = .backoff
        // Jittered exponential back-off: retry n waits random [0, (2^n − 1) × base), ≤ 10 × base.
        let base = UInt64(table.reader.map { $0.retryPolicy(route: e.pointee.route).backoffBaseMs } ?? 25)
        let n = UInt64(min(Int(e.pointee.tries), 4))
        let span = min(((1 << n) - 1) * max(base, 1), 10 * max(base, 1))
        setStageTimer(x, ms: 1 + nextRandom() % span)
    }

    /// The back-off of exchange `x` ended: try again.
    mutating func retryNow(_ x: Int32) {
        guard let (d, reader) = resumeParked(x) else { return }
        dispatch(x, reader: reader)
        startUpstreamSend(d)
    }

    /// Exchange `x`'s try took longer than the route's perTryTimeout.
    mutating func perTryTimedOut(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        let u = e.pointee.up
        let d = e.pointee.down
        guard u >= 0, d >= 0, !conns[Int(d)].closing, !e.pointee.responseStarted else { return }
        if mayRetry(x, .perTryTimeout) {
            scheduleRetry(x, from: u)
            return
        }
        e.pointee.stats.flags |= ResponseFlags.ut
        statRetryExhausted(x)
        closeConn(u)
        if conns[Int(d)].sendArmed {
            closeConn(d)
        } else {
            setRouteTimeout(x, ms: 0)
            sendLocalReply(d, status: 504, body: LocalReplyBody.upstreamRequestTimeout, close: !conns[Int(d)].requestDone)
        }
    }

    // MARK: stats

    @inline(__always)
    func statRetry(_ x: Int32) {
        guard ProxyEngine.statsCompiledIn else { return }
        statAdd(stats.clusterRecord(Int(exchanges.slots[Int(x)].stats.record)), ClusterStats.rqRetry)
    }

    /// The exchange's response reached the client: after a retry that is a retry success.
    @inline(__always)
    func statRetrySucceeded(_ x: Int32) {
        guard ProxyEngine.statsCompiledIn, exchanges.slots[Int(x)].tries > 1 else { return }
        statAdd(stats.clusterRecord(Int(exchanges.slots[Int(x)].stats.record)), ClusterStats.rqRetrySuccess)
    }

    /// The exchange failed on a try after which its policy allowed no more: flag URX when it
    /// had been retried (Envoy flags the limit only when retries happened).
    @inline(__always)
    func statRetryExhausted(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        guard e.pointee.tries > 1 else { return }
        e.pointee.stats.flags |= ResponseFlags.urx
        guard ProxyEngine.statsCompiledIn else { return }
        statAdd(stats.clusterRecord(Int(e.pointee.stats.record)), ClusterStats.rqRetryLimitExceeded)
    }
}
