import CSupport
import HTTP1
import RouteTable
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// A request whose route forwards (istio-semantics.md §1.4): destination, fault injection,
// rewrites and header edits, then dispatch to an upstream connection; retries re-dispatch the
// same forwarded bytes (Engine+Retry.swift).
//
//   forwardRoute ─► pick destination ─► fault delay? ──yes──► stage .delayed (timer) ─┐
//                                        │ no                                          │
//                                        ▼                                             ▼
//                                fault abort? ─► local reply (FI)         fault abort? (after
//                                        │                                the delay, as Envoy)
//                                        ▼                                             │
//                         no cluster? ─► 503 NC                                        │
//                                        ▼                                             │
//                      forwarded head built into a pooled buffer (`Exchange.pending`) ◄┘
//                                        ▼
//                      dispatch: endpoint (UH 503), upstream connection (UO 503), the
//                      buffer becomes the upstream's `out`; route timeout armed on the first
//                      try, per-try timeout on each
//
// The forwarded head does not depend on the endpoint, so it is built once; a fault delay or a
// retry back-off keeps it in the exchange until a connection takes it.

extension ProxyEngine {
    /// True with probability `ppm` parts per million.
    @inline(__always)
    mutating func fires(_ ppm: UInt32) -> Bool {
        ppm >= 1_000_000 || (ppm > 0 && UInt32(truncatingIfNeeded: nextRandom() % 1_000_000) < ppm)
    }

    /// Handles a matched route of kind `.forward` for exchange `x` on downstream `i`.
    mutating func forwardRoute(_ i: Int32, _ x: Int32, reader: TableReader, route: Int32,
                               source: UnsafeRawBufferPointer, head: RequestHead) {
        let e = exchanges.slots + Int(x)
        let dest = reader.pickDestination(route: route, random: UInt32(truncatingIfNeeded: nextRandom()))
        let cluster = dest >= 0 ? reader.destinationCluster(dest) : -1
        e.pointee.tableGeneration = table.generation
        e.pointee.route = route
        e.pointee.destination = dest
        e.pointee.cluster = cluster
        computeHashKey(i, x, reader: reader, cluster: cluster, source: source, head: head)   // LoadBalancer.swift
        e.pointee.timeoutMs = reader.routeTimeoutMs(route)
        if e.pointee.grpc { applyGRPCTimeout(x, source: source, head: head) }   // Engine+HTTP2.swift
        let policy = reader.retryPolicy(route: route)
        e.pointee.perTryTimeoutMs = policy.perTryTimeoutMs
        var features: UInt8 = 0
        if !reader.responseHeaderOps(route: route).isEmpty
            || (dest >= 0 && !reader.destinationResponseHeaderOps(dest).isEmpty) { features |= RouteFeature.responseEdits }
        if policy.attempts > 0 && (!policy.retryOn.isDisjoint(with: [.status5xx, .gatewayError, .retriable4xx])
                                   || (policy.retryOn.contains(.retriableStatusCodes) && !policy.statusCodes.isEmpty)) {
            features |= RouteFeature.statusRetries
        }
        if !reader.routeMirrors(route: route).isEmpty { features |= RouteFeature.mirrors }
        if policy.attempts > 0 {
            features |= RouteFeature.retries
            if !policy.retryOn.isDisjoint(with: [.cancelled, .deadlineExceeded, .internal, .resourceExhausted, .unavailable]) {
                features |= RouteFeature.grpcRetries
            }
        }
        e.pointee.features = features
        if cluster >= 0 {
            let pool = reader.clusterConnectionPool(cluster)
            e.pointee.maxRequestsPerConnection = pool.maxRequestsPerConnection
            e.pointee.maxConcurrentStreams = pool.maxConcurrentStreams
            e.pointee.h2KeepaliveIntervalMs = pool.http2KeepaliveIntervalMs
            e.pointee.h2KeepaliveTimeoutMs = pool.http2KeepaliveTimeoutMs
            e.pointee.poolIdleTimeoutMs = pool.idleTimeoutMs
        }
        statRoute(x, cluster: cluster)
        if applyCors(i, x, reader: reader, route: route, source: source, head: head) { return }
        var delayMs: UInt32 = 0
        if let delay = reader.faultDelay(route: route), fires(delay.ppm) { delayMs = max(delay.fixedDelayMs, 1) }
        if delayMs == 0 && abortIfFaulted(i, x, reader: reader, route: route) { return }
        if delayMs == 0 && cluster < 0 {
            // Destination host or subset unknown: Envoy's cluster_not_found (503, NC).
            e.pointee.stats.flags |= ResponseFlags.nc
            sendLocalReply(i, status: 503, body: nil, close: false)
            return
        }
        guard buildForwardedHead(i, x, reader: reader, source: source, head: head) else { return }
        if delayMs > 0 {
            e.pointee.stats.flags |= ResponseFlags.di
            e.pointee.stage = .delayed
            setStageTimer(x, ms: UInt64(delayMs))
            return
        }
        dispatch(x, reader: reader)
    }

    /// `fault.abort`: answers the configured status (`fault filter abort`, flag FI) to the share
    /// of requests it applies to; the upstream is never reached. True when it answered.
    mutating func abortIfFaulted(_ i: Int32, _ x: Int32, reader: TableReader, route: Int32) -> Bool {
        guard let abort = reader.faultAbort(route: route), fires(abort.ppm) else { return false }
        exchanges.slots[Int(x)].stats.flags |= ResponseFlags.fi
        releasePending(x)
        sendLocalReply(i, status: abort.httpStatus, body: LocalReplyBody.faultAbort, close: false, grpcStatus: abort.grpcStatus)
        return true
    }

    /// A fault delay ended: abort if the route says so, then dispatch. A reload during the
    /// delay leaves the exchange's route and cluster indices meaningless: 503 (UH).
    mutating func resumeAfterDelay(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        guard let (d, reader) = resumeParked(x) else { return }
        if abortIfFaulted(d, x, reader: reader, route: e.pointee.route) { return }
        if e.pointee.cluster < 0 {
            failForward(x, status: 503, flag: ResponseFlags.nc, body: nil)
            return
        }
        dispatch(x, reader: reader)
        startUpstreamSend(d)
    }

    /// An exchange parked on its stage timer (fault delay, retry back-off) goes on: its client
    /// and the table it was routed on, or nil when the client is gone or a reload replaced the
    /// table (then the client got 503 UH: the route's indices mean nothing in the new table).
    mutating func resumeParked(_ x: Int32) -> (Int32, TableReader)? {
        let e = exchanges.slots + Int(x)
        let d = e.pointee.down
        guard d >= 0, !conns[Int(d)].closing else { return nil }
        e.pointee.stage = .routing
        guard e.pointee.tableGeneration == table.generation, let reader = table.reader else {
            failForward(x, status: 503, flag: ResponseFlags.uh, body: LocalReplyBody.noHealthyUpstream)
            return nil
        }
        return (d, reader)
    }

    /// Answers exchange `x` locally instead of forwarding it (its pending buffer is dropped).
    mutating func failForward(_ x: Int32, status: UInt16, flag: UInt16, body: StaticString?) {
        let e = exchanges.slots + Int(x)
        releasePending(x)
        e.pointee.stats.flags |= flag
        let d = e.pointee.down
        guard d >= 0, !conns[Int(d)].closing else { return }
        if let body {
            sendLocalReply(d, status: status, body: body, close: !conns[Int(d)].requestDone)
        } else {
            sendLocalReply(d, status: status, body: nil, close: !conns[Int(d)].requestDone)
        }
    }

    @inline(__always)
    mutating func releasePending(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        if let p = e.pointee.pending {
            if e.pointee.pendingLarge { large.put(p) } else { small.put(p) }
            e.pointee.pending = nil
            e.pointee.pendingLen = 0
        }
    }

    /// Writes the head sent upstream into a pooled buffer held by the exchange (`pending`):
    /// the request line (path rewritten per `rewrite.uri`), the received fields with the route's
    /// and the destination's request header edits, Host per `rewrite.authority`, and the
    /// proxy's x-forwarded-* and x-request-id. False when it cannot (the client got 414/431).
    mutating func buildForwardedHead(_ i: Int32, _ x: Int32, reader: TableReader,
                                     source: UnsafeRawBufferPointer, head: RequestHead) -> Bool {
        let c = conns + Int(i)
        let e = exchanges.slots + Int(x)
        let route = e.pointee.route
        // Header edits: the route's, then the picked destination's.
        var editCount = 0
        var editBytes = 0
        if let xfcc = c.pointee.xfcc {
            // Mutual TLS: Istio's gateway sets x-forwarded-client-cert (the client's own was
            // dropped by the codec); route header operations come after it and may change it.
            edits[0] = HeaderEdit(kind: .add, name: UnsafeRawBufferPointer(start: StaticString("x-forwarded-client-cert").utf8Start, count: 23),
                                  value: UnsafeRawBufferPointer(start: xfcc, count: Int(c.pointee.xfccLen)))
            editCount = 1
            editBytes = Int(c.pointee.xfccLen) + 27
        }
        let destOps = e.pointee.destination >= 0 ? reader.destinationRequestHeaderOps(e.pointee.destination) : 0..<0
        for pass in 0..<2 {
            let ops = pass == 0 ? reader.requestHeaderOps(route: route) : destOps
            for k in ops where editCount < editCapacity {
                let op = reader.headerOp(k)
                edits[editCount] = HeaderEdit(kind: HeaderEdit.Kind(op.kind), name: op.name, value: op.value)
                editCount += 1
                editBytes += op.name.count + op.value.count + 4
            }
        }

        // rewrite.uri: the matched part of the path is replaced; the query is kept.
        var target: UnsafeRawBufferPointer? = nil
        if let uri = reader.rewriteURI(route: route) {
            let path = slice(source, head.path)
            let keep = reader.rewriteURIReplaceCount(route: route, pathLength: path.count)
            let restCount = path.count - min(keep, path.count)
            let queryCount = head.query.count > 0 ? Int(head.query.count) + 1 : 0
            let n = uri.count + restCount + queryCount
            guard n <= targetScratchBytes else {
                sendLocalReply(i, status: 414, body: nil, close: true)
                return false
            }
            var w = targetScratch
            w.copyMemory(from: uri.baseAddress!, byteCount: uri.count)
            w += uri.count
            if restCount > 0 {
                w.copyMemory(from: path.baseAddress! + (path.count - restCount), byteCount: restCount)
                w += restCount
            }
            if queryCount > 0 {
                w.storeBytes(of: UInt8(ascii: "?"), as: UInt8.self)
                (w + 1).copyMemory(from: source.baseAddress! + Int(head.query.start), byteCount: queryCount - 1)
            }
            target = UnsafeRawBufferPointer(start: targetScratch, count: n)
        }
        if target == nil, let rx = reader.rewriteRegex(route: route) {
            // rewrite.uriRegexRewrite: every match in the path replaced; the query is kept.
            let path = slice(source, head.path)
            if var n = table.rewriteRegexes.rewrite(route: route, path: path, substitution: rx.substitution,
                                                    into: targetScratch, capacity: targetScratchBytes - 1) {
                let queryCount = head.query.count > 0 ? Int(head.query.count) + 1 : 0
                if n + queryCount <= targetScratchBytes {
                    if queryCount > 0 {
                        (targetScratch + n).storeBytes(of: UInt8(ascii: "?"), as: UInt8.self)
                        (targetScratch + n + 1).copyMemory(from: source.baseAddress! + Int(head.query.start),
                                                           byteCount: queryCount - 1)
                        n += queryCount
                    }
                    target = UnsafeRawBufferPointer(start: targetScratch, count: n)
                }
            }
        }
        let authority = reader.rewriteAuthority(route: route)

        // Heads up to ~3.5 KiB (nearly all) fit the small class; the rest the large one.
        let estimate = Int(head.headLength) + 512 + Int(c.pointee.peerTextLen) + editBytes
            + (target?.count ?? 0) + (authority?.count ?? 0)
        let needLarge = estimate > small.size
        let out = needLarge ? large.get() : small.get()
        var rid: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        var ridLen = 0
        if head.xRequestIdIndex < 0 || headers[Int(head.xRequestIdIndex)].value.count == 0 {
            ridLen = withUnsafeMutableBytes(of: &rid) { requestIdForUpstream(x, into: $0) }   // the logged one
        }
        let written = withUnsafeBytes(of: &c.pointee.peerText) { peer in
            withUnsafeBytes(of: &rid) { ridBytes in
                serializeForwardedRequestHead(
                    source: source, head: head,
                    headers: UnsafeBufferPointer(start: headers, count: Int(head.headerCount)),
                    clientAddress: UnsafeRawBufferPointer(rebasing: peer[0..<Int(c.pointee.peerTextLen)]),
                    proto: isSecure(i) ? .https : .http,
                    generatedRequestId: UnsafeRawBufferPointer(rebasing: ridBytes[0..<ridLen]),
                    target: target, authority: authority,
                    edits: UnsafeBufferPointer(start: edits, count: editCount),
                    into: UnsafeMutableRawBufferPointer(start: out, count: needLarge ? large.size : small.size))
            }
        }
        guard let n = written else {
            if needLarge { large.put(out) } else { small.put(out) }
            sendLocalReply(i, status: 431, body: nil, close: true)
            return false
        }
        e.pointee.pending = out
        e.pointee.pendingLarge = needLarge
        e.pointee.pendingLen = Int32(n)
        return true
    }

    /// Sends exchange `x`'s pending request to an endpoint of its cluster over a pooled or new
    /// connection; the buffer becomes that connection's `out`. Answers the client itself when
    /// no endpoint is healthy (503 UH) or no connection can be had (503 UO). The caller starts
    /// the send (`startUpstreamSend`) once the bytes that follow the head are accounted for.
    /// `reader` is the current table's (the caller checked that the exchange was routed on it).
    mutating func dispatch(_ x: Int32, reader: TableReader) {
        let e = exchanges.slots + Int(x)
        guard var ep = chooseEndpoint(reader, cluster: e.pointee.cluster, avoiding: e.pointee.lastEndpoint,
                                      hash: e.pointee.lbHash, hasHash: e.pointee.lbHasHash) else {
            failForward(x, status: 503, flag: ResponseFlags.uh, body: LocalReplyBody.noHealthyUpstream)
            return
        }
        ep.http2 = reader.clusterUsesClientProtocol(e.pointee.cluster) ? clientHTTP2(x) : reader.clusterHTTP2(e.pointee.cluster)
        guard requestBudgetAvailable(x, reader: reader) else { return }   // http2MaxRequests (CircuitBreakers.swift)
        let u = acquireUpstream(ep, for: x)
        guard u >= 0 else {
            if u == -2 { return }   // circuit breaker: waiting, or answered 503 UO (CircuitBreakers.swift)
            failForward(x, status: 503, flag: ResponseFlags.uo, body: LocalReplyBody.upstreamConnectFailure)
            return
        }
        let uc = conns + Int(u)
        statUpstream(x, u, ep)
        uc.pointee.out = e.pointee.pending
        uc.pointee.outLarge = e.pointee.pendingLarge
        uc.pointee.outLen = e.pointee.pendingLen
        e.pointee.pending = nil
        e.pointee.pendingLen = 0
        uc.pointee.rx = .head
        uc.pointee.responseDone = false
        attachUpstream(x, u)
        e.pointee.stage = .upstream
        e.pointee.tries &+= 1
        e.pointee.lastEndpoint = ep.id
        if e.pointee.tries == 1 && e.pointee.timeoutMs > 0 { setRouteTimeout(x, ms: UInt64(e.pointee.timeoutMs)) }
        if e.pointee.perTryTimeoutMs > 0 { setStageTimer(x, ms: UInt64(e.pointee.perTryTimeoutMs)) }
        if !uc.pointee.recvArmed && uc.pointee.connected { armRecv(u) }
    }

    /// After a dispatch: body bytes buffered on downstream `d` travel in the same send as the
    /// head, and the send starts if the connection is usable (else when it connects).
    mutating func startUpstreamSend(_ d: Int32) {
        let u = peerOf(d)
        guard u >= 0, !conns[Int(u)].closing else { return }
        appendBodyFromAccum(downstream: d, upstream: u)
        // The whole request is in `out` now, or the rest of the body will come from elsewhere.
        let e = ex(d)
        let x = conns[Int(d)].exchange
        e.pointee.replayable = conns[Int(d)].requestDone
        if !e.pointee.replayable && e.pointee.tries == 1 && e.pointee.features & (RouteFeature.mirrors | RouteFeature.retries) != 0,
           let out = conns[Int(u)].out {
            startRequestCopy(x, UnsafeRawPointer(out), Int(conns[Int(u)].outLen))   // Engine+RequestCopy.swift
        }
        if e.pointee.features & RouteFeature.mirrors != 0 { mirrorRequest(x, from: u) }
        if conns[Int(u)].connected && !conns[Int(u)].sendArmed {
            send(u, UnsafeRawPointer(conns[Int(u)].out!), conns[Int(u)].outLen, release: .none)
        }
    }

    /// The response edits of exchange `x` (route's, then destination's) in the scratch array;
    /// none after a reload (the indices belong to the old table).
    mutating func responseEdits(_ x: Int32) -> UnsafeBufferPointer<HeaderEdit> {
        let e = exchanges.slots + Int(x)
        guard e.pointee.features & RouteFeature.responseEdits != 0 || e.pointee.corsOrigin != nil || e.pointee.lbSetCookie,
              e.pointee.route >= 0, e.pointee.tableGeneration == table.generation, let reader = table.reader else {
            return UnsafeBufferPointer(start: nil, count: 0)
        }
        var n = 0
        for k in reader.responseHeaderOps(route: e.pointee.route) where n < editCapacity {
            let op = reader.headerOp(k)
            edits[n] = HeaderEdit(kind: HeaderEdit.Kind(op.kind), name: op.name, value: op.value)
            n += 1
        }
        if e.pointee.destination >= 0 {
            for k in reader.destinationResponseHeaderOps(e.pointee.destination) where n < editCapacity {
                let op = reader.headerOp(k)
                edits[n] = HeaderEdit(kind: HeaderEdit.Kind(op.kind), name: op.name, value: op.value)
                n += 1
            }
        }
        if e.pointee.corsOrigin != nil { n = corsResponseEdits(x, reader: reader, at: n) }
        n = appendHashCookie(x, n)   // consistentHash.httpCookie generated (LoadBalancer.swift)
        return UnsafeBufferPointer(start: edits, count: n)
    }
}

extension HeaderEdit.Kind {
    @inline(__always)
    init(_ k: HeaderOpKind) {
        switch k {
        case .set: self = .set
        case .add: self = .add
        case .remove: self = .remove
        }
    }
}
