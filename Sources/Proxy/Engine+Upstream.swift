import CSupport
import CURing
import HTTP1
import SharedMemory
import URing
#if canImport(Glibc)
import Glibc
#endif

// Upstream side: responses (head, 1xx, body framing, forwarding) and the end of an exchange.
// Connections and their failures: Engine+UpstreamConnect.swift.

extension ProxyEngine {
    mutating func onUpRecv(_ u: Int32, result: Int32, flags: UInt32) {
        let uc = conns + Int(u)
        guard result > 0 else {
            if result == -ENOBUFS {
                receiveStarved(u)
                return
            }
            if uc.pointee.h2 != nil {
                h2UpConnectionLost(u)   // an HTTP/2 connection: all its streams
                return
            }
            switch uc.pointee.rx {
            case .pooled:
                closeConn(u)
            case .untilClose where result == 0:
                uc.pointee.responseDone = true
                uc.pointee.reusable = false
                let d = peerOf(u)
                if d >= 0 {
                    conns[Int(d)].keepAlive = false
                    if !conns[Int(d)].sendArmed { finishExchange(d, u) }
                } else {
                    closeConn(u)
                }
            case .tunnel where result == 0 && copiesTCP(u):
                tunnelSourceEnded(u)   // a TCP pair through TLS: half-close (Engine+TCP.swift)
            case .tunnel:
                let d = peerOf(u)
                closeConn(u)
                if d >= 0 { closeConn(d) }
            default:
                upstreamFailed(u)
            }
            return
        }
        let bid = UInt16(flags >> ING_CQE_BUFFER_SHIFT)
        onUpData(u, rx.buffer(bid), Int(result), bid)
    }

    /// `n` bytes from the upstream in receive buffer `bid` (a ring buffer, or a TLS plaintext
    /// buffer: Engine+UpstreamTLS.swift).
    @inline(__always)
    mutating func onUpData(_ u: Int32, _ data: UnsafeMutableRawPointer, _ n: Int, _ bid: UInt16) {
        let uc = conns + Int(u)
        if uc.pointee.h2 != nil {
            h2Ingest(u, data, n, bid)   // an HTTP/2 connection (Engine+HTTP2.swift)
            return
        }
        switch uc.pointee.rx {
        case .head:
            onUpHeadBytes(u, data, n, bid)
        case .body, .chunked, .untilClose:
            forwardResponseBody(u, data, n, bid)
        case .tunnel:
            let d = peerOf(u)
            if d >= 0 && !conns[Int(d)].closing {
                statTunnelBytes(u, n)
                send(d, UnsafeRawPointer(data), Int32(n), release: .recv(bid))
            } else {
                recycleRecv(bid)
                closeConn(u)
            }
        default:
            // Bytes on an idle pooled connection: the upstream is confused; drop it.
            recycleRecv(bid)
            closeConn(u)
        }
    }

    mutating func onUpHeadBytes(_ u: Int32, _ data: UnsafeMutableRawPointer, _ n: Int, _ bid: UInt16) {
        let uc = conns + Int(u)
        if uc.pointee.accum == nil {
            var head = ResponseHead()
            let status = parseResponseHead(UnsafeRawBufferPointer(start: data, count: n), limits: .default,
                                           headers: UnsafeMutableBufferPointer(start: headers, count: ProxyEngine.maxHeaders),
                                           into: &head)
            switch status {
            case .complete:
                handleResponseHead(u, base: UnsafeRawPointer(data), count: n, head: head, bid: Int32(bid))
            case .incomplete:
                let kept = appendAccum(u, data, n)
                recycleRecv(bid)
                guard kept else {
                    badUpstreamResponse(u)
                    return
                }
                armRecv(u)
            case .error:
                recycleRecv(bid)
                badUpstreamResponse(u)
            }
            return
        }
        let fits = appendAccum(u, data, n)
        recycleRecv(bid)
        guard fits else {
            badUpstreamResponse(u)
            return
        }
        parseAccumulatedResponse(u)
    }

    mutating func parseAccumulatedResponse(_ u: Int32) {
        let uc = conns + Int(u)
        guard let acc = uc.pointee.accum, uc.pointee.accumEnd > uc.pointee.accumStart else {
            releaseAccumIfEmpty(u)
            if !uc.pointee.recvArmed { armRecv(u) }
            return
        }
        let base = UnsafeRawPointer(acc + Int(uc.pointee.accumStart))
        let count = Int(uc.pointee.accumEnd - uc.pointee.accumStart)
        var head = ResponseHead()
        let status = parseResponseHead(UnsafeRawBufferPointer(start: base, count: count), limits: .default,
                                       headers: UnsafeMutableBufferPointer(start: headers, count: ProxyEngine.maxHeaders),
                                       into: &head)
        switch status {
        case .complete:
            handleResponseHead(u, base: base, count: count, head: head, bid: -1)
        case .incomplete:
            if !uc.pointee.recvArmed { armRecv(u) }
        case .error:
            badUpstreamResponse(u)
        }
    }

    /// An unparseable response: 502 if nothing reached the client yet.
    mutating func badUpstreamResponse(_ u: Int32) {
        abandonExchange(u, status: 502, flag: ResponseFlags.upe, body: nil)
    }

    /// A complete response head at `base` (`count` bytes available). `bid` ≥ 0: `base` is that
    /// receive buffer; -1: `base` points into the upstream's accumulation buffer.
    mutating func handleResponseHead(_ u: Int32, base: UnsafeRawPointer, count: Int, head: ResponseHead, bid: Int32) {
        let uc = conns + Int(u)
        let d = peerOf(u)
        guard d >= 0, !conns[Int(d)].closing else {
            if bid >= 0 { recycleRecv(UInt16(bid)) }
            closeConn(u)
            return
        }
        let dc = conns + Int(d)
        let x = uc.pointee.exchange
        let e = ex(u)
        // A gRPC answer without a body (trailers-only) has its grpc-status in the head; one with
        // a body has it in its trailers (h2UpTrailers), so the head is not scanned.
        let grpcHeadStatus = e.pointee.grpc && !head.isChunked && head.contentLength <= 0
            ? grpcStatusField(UnsafeRawBufferPointer(start: base, count: Int(head.headLength))) : -1
        if head.status == 200 && grpcHeadStatus >= 0 && e.pointee.features & RouteFeature.grpcRetries != 0 {
            // A trailers-only gRPC answer whose grpc-status the policy retries (Envoy's
            // x-envoy-retry-grpc-on; Istio's default retries unavailable and cancelled).
            if mayRetry(x, .grpcStatus(grpcHeadStatus)) {
                if bid >= 0 { recycleRecv(UInt16(bid)) }
                scheduleRetry(x, from: u)
                return
            }
        }
        if head.status >= 200 && e.pointee.features & RouteFeature.statusRetries != 0
            && !(head.status == 101 && e.pointee.upgrade) && mayRetry(x, .status(head.status)) {
            // A retriable answer (retryOn 5xx, gateway-error, retriable-4xx or a listed code):
            // not forwarded; the connection is closed rather than drained.
            if bid >= 0 { recycleRecv(UInt16(bid)) }
            scheduleRetry(x, from: u)
            return
        }
        if head.status >= 200 && e.pointee.tries > 1 {
            // The last try's answer goes to the client, retriable or not.
            if e.pointee.tableGeneration == table.generation
                && ((e.pointee.features & RouteFeature.statusRetries != 0
                     && table.reader!.retriesOnStatus(route: e.pointee.route, status: head.status))
                    || (e.pointee.grpc && e.pointee.features & RouteFeature.grpcRetries != 0 && head.status == 200
                        && retriesOnGRPCStatus(table.reader!, route: e.pointee.route, grpcHeadStatus))) {
                statRetryExhausted(x)
            } else {
                statRetrySucceeded(x)
            }
        }
        if head.status < 200 && !(head.status == 101 && e.pointee.upgrade) {
            // Interim response (RFC 9110 §15.2): at most one 100, to a client that asked.
            e.pointee.informational &+= 1
            switch informationalAction(status: head.status, seen: e.pointee.informational,
                                       expectContinue: e.pointee.expectContinue,
                                       continueForwarded: e.pointee.continueForwarded) {
            case .forward:
                e.pointee.continueForwarded = true
            case .drop:
                skipResponseHead(u, base: base, count: count, headLength: Int(head.headLength), bid: bid)
                return
            case .reject:
                if bid >= 0 { recycleRecv(UInt16(bid)) }
                badUpstreamResponse(u)
                return
            }
        }
        e.pointee.responseStarted = true
        if e.pointee.requestCopy != nil { requestCopyUnneeded(x) }   // no retry from now on
        setStageTimer(x, ms: 0)   // the per-try timeout covers the wait for a response head
        e.pointee.stats.status = head.status
        if grpcHeadStatus >= 0 { e.pointee.stats.grpcStatus = UInt8(grpcHeadStatus) }   // trailers-only
        if !head.keepAlive || !responseAllowsReuse(status: head.status, requestMethod: e.pointee.method) {
            uc.pointee.reusable = false   // a 101 or a CONNECT tunnel never goes back to the pool
        }
        let headLen = Int(head.headLength)
        let avail = count - headLen
        var bodyBytes = 0
        var done = false
        var informational = false
        if head.status == 101 && e.pointee.upgrade {
            uc.pointee.rx = .tunnel
            dc.pointee.rx = .tunnel
            uc.pointee.reusable = false
            dc.pointee.keepAlive = false
            bodyBytes = avail
        } else if head.status < 200 {
            informational = true   // forward it; the final head follows
        } else {
            switch responseBodyFraming(head, requestMethod: e.pointee.method) {
            case .none:
                done = true
            case .length(let n):
                uc.pointee.rx = .body
                bodyBytes = Int(min(Int64(avail), n))
                uc.pointee.bodyRemaining = n - Int64(bodyBytes)
                done = uc.pointee.bodyRemaining == 0
            case .chunked:
                uc.pointee.rx = .chunked
                uc.pointee.chunk = ChunkedScanner()
                switch uc.pointee.chunk.scan(UnsafeRawBufferPointer(start: base + headLen, count: avail)) {
                case .needMore: bodyBytes = avail
                case .done(let k): bodyBytes = k; done = true
                case .error:
                    // Nothing of this response was sent yet (a forwarded 100 Continue may
                    // precede a final response): the client gets a 502, not an empty reply.
                    e.pointee.responseStarted = false
                    if bid >= 0 { recycleRecv(UInt16(bid)) }
                    badUpstreamResponse(u)
                    return
                }
            case .untilClose:
                uc.pointee.rx = .untilClose
                uc.pointee.reusable = false
                dc.pointee.keepAlive = false
                bodyBytes = avail
            }
            countResponse(head.status)
        }
        let extra = avail - bodyBytes
        if extra > 0 && !informational { uc.pointee.reusable = false }   // bytes past the response
        uc.pointee.responseDone = done

        let edits = informational ? UnsafeBufferPointer<HeaderEdit>(start: nil, count: 0) : responseEdits(x)
        var editBytes = 0
        for k in 0..<edits.count { editBytes += edits[k].name.count + edits[k].value.count + 4 }
        let needRewrite = head.hasHopByHop || !dc.pointee.keepAlive || edits.count > 0
        let sendLen = headLen + bodyBytes
        if !needRewrite && bid >= 0 && !informational {
            // Zero-copy: send straight from the receive buffer.
            send(d, base, Int32(sendLen), release: .recv(UInt16(bid)))
            armBodyRecvEarly(u)
            return
        }
        // Rewrite (or copy out of a buffer that will be reused) into the downstream's output.
        let needLarge = sendLen + 64 + editBytes > small.size
        let out = needLarge ? large.get() : small.get()
        let cap = needLarge ? large.size : small.size
        dc.pointee.out = out
        dc.pointee.outLarge = needLarge
        var w: Int
        if needRewrite {
            let directive: ConnectionDirective = dc.pointee.keepAlive ? .none : .close
            guard let n = serializeForwardedResponseHead(
                source: UnsafeRawBufferPointer(start: base, count: count), head: head,
                headers: UnsafeBufferPointer(start: headers, count: Int(head.headerCount)),
                connection: directive, edits: edits,
                into: UnsafeMutableRawBufferPointer(start: out, count: cap)) else {
                if bid >= 0 { recycleRecv(UInt16(bid)) }
                badUpstreamResponse(u)
                return
            }
            w = n
        } else {
            out.copyMemory(from: base, byteCount: headLen)
            w = headLen
        }
        let copyBody = min(bodyBytes, cap - w)
        (out + w).copyMemory(from: base + headLen, byteCount: copyBody)
        w += copyBody
        // Bytes not copied (body beyond the buffer, or the head after a 1xx) are kept.
        let keepFrom = headLen + copyBody
        if copyBody < bodyBytes {
            // Body bytes that did not fit: process them after this send, as received bytes.
            uc.pointee.responseDone = false
            restoreBodyState(u, head: head, alreadyForwarded: copyBody, requestMethod: e.pointee.method)
        }
        if bid >= 0 {
            if count > keepFrom && (informational || copyBody < bodyBytes) {
                _ = appendAccum(u, base + keepFrom, count - keepFrom, shed: false)
            }
            recycleRecv(UInt16(bid))
        } else {
            let drop = (informational || copyBody < bodyBytes) ? keepFrom : count
            consumeAccum(u, drop)
        }
        if informational { uc.pointee.rx = .head }
        send(d, UnsafeRawPointer(out), Int32(w), release: .out)
    }

    /// Reads past an interim head that is not forwarded: the bytes after it (the next head) are
    /// kept in the accumulation buffer and parsed at once. Recursion is bounded by
    /// `maxInformationalResponses`.
    mutating func skipResponseHead(_ u: Int32, base: UnsafeRawPointer, count: Int, headLength: Int, bid: Int32) {
        if bid >= 0 {
            // Only parsed in place when nothing was accumulated, so this cannot overflow.
            if count > headLength { _ = appendAccum(u, base + headLength, count - headLength, shed: false) }
            recycleRecv(UInt16(bid))
        } else {
            consumeAccum(u, headLength)
        }
        parseAccumulatedResponse(u)
    }

    /// When a rewritten head plus body did not fit the output buffer, the unsent body bytes
    /// are re-scanned as if just received: reset the framing state to "after `alreadyForwarded`
    /// body bytes".
    mutating func restoreBodyState(_ u: Int32, head: ResponseHead, alreadyForwarded: Int, requestMethod: HTTPMethod) {
        let uc = conns + Int(u)
        switch responseBodyFraming(head, requestMethod: requestMethod) {
        case .length(let n):
            uc.pointee.rx = .body
            uc.pointee.bodyRemaining = n - Int64(alreadyForwarded)
        case .chunked:
            // Rare (a >76 KiB first read with a rewritten head): the scanner state is past the
            // forwarded bytes already, so re-scanning would double count; give up on reuse.
            uc.pointee.rx = .untilClose
            uc.pointee.reusable = false
        default:
            break
        }
    }

    /// Response-body bytes arrived in receive buffer `bid`: forward them from that buffer.
    mutating func forwardResponseBody(_ u: Int32, _ data: UnsafeMutableRawPointer, _ n: Int, _ bid: UInt16) {
        let uc = conns + Int(u)
        let d = peerOf(u)
        guard d >= 0, !conns[Int(d)].closing else {
            recycleRecv(bid)
            closeConn(u)
            return
        }
        var k = n
        switch uc.pointee.rx {
        case .body:
            k = Int(min(Int64(n), uc.pointee.bodyRemaining))
            uc.pointee.bodyRemaining -= Int64(k)
            if uc.pointee.bodyRemaining == 0 { uc.pointee.responseDone = true }
        case .chunked:
            switch uc.pointee.chunk.scan(UnsafeRawBufferPointer(start: data, count: n)) {
            case .needMore: k = n
            case .done(let c):
                k = c
                uc.pointee.responseDone = true
            case .error:
                // The head went out already: the client connection closes (flag UPE).
                recycleRecv(bid)
                badUpstreamResponse(u)
                return
            }
        default:
            k = n
        }
        if k < n { uc.pointee.reusable = false }
        if k == 0 {
            recycleRecv(bid)
            if uc.pointee.responseDone { finishExchange(d, u) } else { armRecv(u) }
            return
        }
        // Received while the previous buffer may still be in flight (armBodyRecvEarly): it is
        // queued behind it, and the next receive waits until it is the one in flight.
        send(d, UnsafeRawPointer(data), Int32(k), release: .recv(bid))
        if conns[Int(d)].sendQueue.count == 1 { armBodyRecvEarly(u) }
    }

    /// A plain upstream's response body on its way to a TLS client is received into a 64 KiB
    /// bulk buffer instead of a 16 KiB ring buffer, and that piece is encrypted and sent in one
    /// go (four TLS records per send, Engine+TLS.swift's `tlsSubmitSend`): a quarter of the
    /// receives and sends per MiB of the ring-buffer path, which cost more kernel time than
    /// the bytes (perf/README.md, https-large). Only bodies with more than a ring buffer's
    /// worth left; false (a ring receive instead) for other connections or when no bulk
    /// buffer is free. Called by armRecv for an upstream in `.body`.
    @inline(__always)
    mutating func armBulkRecv(_ u: Int32) -> Bool {
        let uc = conns + Int(u)
        guard uc.pointee.transport == .plain, uc.pointee.h2 == nil,
              uc.pointee.bodyRemaining > Int64(limits.receiveBufferBytes) else { return false }
        let d = peerOf(u)
        guard d >= 0, conns[Int(d)].transport == .tls, conns[Int(d)].h2 == nil,
              let (bid, buf) = bulk.get() else { return false }
        uc.pointee.bulkRecv = bid
        ring.prepRecv(fd: uc.pointee.fd, buffer: buf, count: Int(min(Int64(bulk.size), uc.pointee.bodyRemaining)),
                      userData: userData(.upRecvBulk, u))
        uc.pointee.pendingOps += 1
        uc.pointee.recvArmed = true
        return true
    }

    /// The response is complete and sent: pool or close the upstream, record the exchange,
    /// and let the client's session go on (exchangeEnded).
    mutating func finishExchange(_ d: Int32, _ u: Int32) {
        let dc = conns + Int(d)
        let uc = conns + Int(u)
        let x = dc.pointee.exchange
        detach(u)
        if !dc.pointee.requestDone {
            // The upstream answered before the whole request body arrived; the rest of the
            // body would be read as a new request, so neither connection can be reused.
            uc.pointee.reusable = false
            dc.pointee.keepAlive = false
        }
        let policy = poolPolicy(x, u)   // connectionPool.http: maxRequestsPerConnection, idleTimeout
        if uc.pointee.reusable && policy.reuse && !draining && uc.pointee.pool >= 0 && !uc.pointee.sendArmed && !uc.pointee.closing
            && pools.hasRoom(uc.pointee.pool) {
            releaseOut(u)
            uc.pointee.rx = .pooled
            pools.push(u, conns: conns)
            setDeadline(u, policy.idleMs == 0 ? 0 : nowMs + policy.idleMs)
            if !uc.pointee.recvArmed { armRecv(u, idle: true) }   // notices the upstream closing it
        } else {
            closeConn(u)
        }
        statFinish(x)
        exchangeEnded(d)
    }

    @inline(__always)
    mutating func unlinkIdle(_ u: Int32) {
        pools.unlink(u, conns: conns)
    }

    @inline(__always)
    func countResponse(_ status: UInt16) {
        let cls = Int(min(max(status / 100, 1), 5)) - 1
        stats.add(WorkerSlotField.responses1xx + cls * 8)
    }
}
