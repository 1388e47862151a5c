import CSupport
import HTTP1
import RouteTable
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// A parsed request: route it, answer locally or forward it upstream, then stream its body.

extension ProxyEngine {
    /// Handles a complete request head at `base` (`count` bytes available, the head first).
    /// `inAccum`: `base` points into the connection's accumulation buffer (else into a receive
    /// buffer that the caller recycles after this returns: everything needed is copied here).
    mutating func startRequest(_ i: Int32, base: UnsafeRawPointer, count: Int, head: RequestHead, inAccum: Bool) {
        let c = conns + Int(i)
        c.pointee.h1Seen = true
        stats.add(WorkerSlotField.requestsTotal)
        let x = openExchange(i)
        let e = exchanges.slots + Int(x)
        e.pointee.method = head.method
        e.pointee.upgrade = head.isUpgrade
        e.pointee.expectContinue = head.expectContinue
        if c.pointee.transport == .h2stream { e.pointee.grpc = isGRPC(UnsafeRawBufferPointer(start: base, count: count), head) }
        statBegin(x, source: UnsafeRawBufferPointer(start: base, count: count), head: head)
        c.pointee.keepAlive = head.keepAlive && !draining
        setDeadline(i, limits.streamIdleTimeoutMs == 0 ? 0 : nowMs + limits.streamIdleTimeoutMs)
        c.pointee.requestDone = false
        switch requestBodyFraming(head) {
        case .none, .untilClose:
            c.pointee.rx = .none
            c.pointee.requestDone = true
        case .length(let n):
            c.pointee.rx = .body
            c.pointee.bodyRemaining = n
        case .chunked:
            c.pointee.rx = .chunked
            c.pointee.chunk = ChunkedScanner()
        }

        let source = UnsafeRawBufferPointer(start: base, count: count)
        let req = MatchRequest(bytes: source, method: head.methodRange, path: head.path, query: head.query,
                               authority: head.host, isHTTPS: isSecure(i), listenerPort: c.pointee.listenerPort,
                               headers: UnsafeBufferPointer(start: headers, count: Int(head.headerCount)))
        let lookup = table.matcher?.route(req) ?? .noListener
        // HTTPS: only the virtual hosts of the server the connection's SNI chose (Envoy: one
        // route configuration per Gateway server), so a Host of another server — a MUTUAL one
        // reached over a SIMPLE server's connection — finds no route.
        let foreignHost = isSecure(i) && !tlsHostAllowed(tlsConnection(i), source: source, host: head.host)
        switch head.method == .connect || foreignHost ? .noRoute : lookup {
        case .noListener, .noVirtualHost, .noRoute:
            // CONNECT too: routes match paths and a CONNECT has none, so Envoy finds no route
            // and answers 404 (its FAQ "Why is Envoy sending 404s to CONNECT requests?");
            // forwarding it would turn a pooled upstream connection into a client's tunnel.
            // The connection closes after it: tunnel bytes may follow a CONNECT at once.
            e.pointee.stats.flags = ResponseFlags.nr
            sendLocalReply(i, status: 404, body: nil, close: head.method == .connect)
        case .httpsRedirect:
            sendHTTPSRedirect(i, source: source, head: head)
        case .matched(let route, _):
            let reader = table.reader!
            switch reader.routeActionKind(route) {
            case .directResponse:
                sendLocalReply(i, status: reader.directResponseStatus(route: route),
                               body: reader.directResponseBody(route: route), close: false)
            case .redirect:
                sendRouteRedirect(i, reader: reader, route: route, source: source, head: head)
            case .forward:
                forwardRoute(i, x, reader: reader, route: route, source: source, head: head)
            }
        }

        // The head is handled; keep whatever followed it (body bytes or a pipelined request).
        if inAccum {
            consumeAccum(i, Int(head.headLength))
        } else if count > Int(head.headLength) {
            _ = appendAccum(i, base + Int(head.headLength), count - Int(head.headLength), shed: false)
        }
        startUpstreamSend(i)
        if c.pointee.rx == .none { watchForClose(i) }
    }

    /// Moves request-body bytes buffered on the downstream into the upstream's output buffer
    /// (after whatever it holds), as far as they belong to the body and fit.
    mutating func appendBodyFromAccum(downstream d: Int32, upstream u: Int32) {
        let c = conns + Int(d)
        let uc = conns + Int(u)
        guard c.pointee.rx == .body || c.pointee.rx == .chunked,
              let acc = c.pointee.accum, c.pointee.accumEnd > c.pointee.accumStart,
              let out = uc.pointee.out else { return }
        let cap = uc.pointee.outLarge ? large.size : small.size
        let room = cap - Int(uc.pointee.outLen)
        guard room > 0 else { return }
        let avail = min(room, Int(c.pointee.accumEnd - c.pointee.accumStart))
        let src = acc + Int(c.pointee.accumStart)
        let (k, done, failed) = bodyPortion(d, UnsafeRawPointer(src), avail)
        if failed {
            failRequestBody(d)
            return
        }
        (out + Int(uc.pointee.outLen)).copyMemory(from: src, byteCount: k)
        uc.pointee.outLen += Int32(k)
        consumeAccum(d, k)
        if done { requestBodyDone(d) }
    }

    /// How many of `n` bytes belong to the request body being received, and whether the body
    /// ends within them. (The request copy of a streamed body collects them: Engine+RequestCopy.swift.)
    @inline(__always)
    mutating func bodyPortion(_ d: Int32, _ p: UnsafeRawPointer, _ n: Int) -> (Int, Bool, Bool) {
        let c = conns + Int(d)
        let e = ex(d)
        var r: (Int, Bool, Bool)
        if c.pointee.rx == .body {
            let k = Int(min(Int64(n), c.pointee.bodyRemaining))
            c.pointee.bodyRemaining -= Int64(k)
            e.pointee.stats.requestBytes &+= UInt64(k)
            r = (k, c.pointee.bodyRemaining == 0, false)
        } else {
            switch c.pointee.chunk.scan(UnsafeRawBufferPointer(start: p, count: n)) {
            case .needMore: e.pointee.stats.requestBytes &+= UInt64(n); r = (n, false, false)
            case .done(let consumed): e.pointee.stats.requestBytes &+= UInt64(consumed); r = (consumed, true, false)
            case .error: return (0, false, true)
            }
        }
        if e.pointee.requestCopy != nil { requestCopyCollect(c.pointee.exchange, p, r.0) }
        return r
    }

    @inline(__always)
    mutating func requestBodyDone(_ d: Int32) {
        conns[Int(d)].rx = .none
        conns[Int(d)].requestDone = true
        if ex(d).pointee.requestCopy != nil { requestCopyEnded(conns[Int(d)].exchange) }
        watchForClose(d)
    }

    /// The request is read; while its response is awaited, keep a receive armed (polled first:
    /// nothing is expected) so that a client closing its connection is noticed at once, as
    /// Envoy does: the exchange ends (flag DC) and its upstream connection is closed instead of
    /// working for nobody. Only with nothing buffered: bytes that arrive (a pipelined request)
    /// fill the empty head buffer once and wait there, and no further receive is armed until
    /// the next request.
    @inline(__always)
    mutating func watchForClose(_ d: Int32) {
        let c = conns + Int(d)
        guard !c.pointee.recvArmed, !c.pointee.closing, c.pointee.exchange >= 0,
              c.pointee.accum == nil || c.pointee.accumEnd == c.pointee.accumStart else { return }
        armRecv(d, idle: true)
    }

    /// A malformed request body (bad chunk framing): 400 if nothing was answered yet, and
    /// both connections close.
    mutating func failRequestBody(_ d: Int32) {
        stats.add(WorkerSlotField.badRequests)
        let e = ex(d)
        e.pointee.stats.flags |= ResponseFlags.dpe
        let answered = e.pointee.responseStarted
        let u = peerOf(d)
        if u >= 0 { closeConn(u) }
        if answered {
            closeConn(d)
        } else {
            sendLocalReply(d, status: 400, body: nil, close: true)
        }
    }

    /// Request-body bytes arrived in receive buffer `bid`: forward them from that buffer.
    mutating func forwardRequestBody(_ d: Int32, _ data: UnsafeMutableRawPointer, _ n: Int, _ bid: UInt16) {
        let u = peerOf(d)
        guard u >= 0, !conns[Int(u)].closing else {
            recycleRecv(bid)
            closeConn(d)
            return
        }
        let (k, done, failed) = bodyPortion(d, UnsafeRawPointer(data), n)
        if failed {
            recycleRecv(bid)
            failRequestBody(d)
            return
        }
        if n > k {
            // A pipelined request follows the body: keep it for later.
            _ = appendAccum(d, data + k, n - k, shed: false)
        }
        if done { requestBodyDone(d) }
        if k > 0 {
            send(u, UnsafeRawPointer(data), Int32(k), release: .recv(bid))
        } else {
            recycleRecv(bid)
            if !done { armRecv(d) }
        }
    }

    /// The upstream finished a send: continue with the request body.
    mutating func pumpRequestBody(_ d: Int32, _ u: Int32) {
        let c = conns + Int(d)
        guard c.pointee.rx == .body || c.pointee.rx == .chunked else { return }
        if c.pointee.accum != nil && c.pointee.accumEnd > c.pointee.accumStart {
            conns[Int(u)].outLen = 0
            appendBodyFromAccum(downstream: d, upstream: u)
            if conns[Int(u)].outLen > 0 && !conns[Int(u)].closing {
                send(u, UnsafeRawPointer(conns[Int(u)].out!), conns[Int(u)].outLen, release: .none)
                return
            }
        }
        if (c.pointee.rx == .body || c.pointee.rx == .chunked) && !c.pointee.recvArmed && !c.pointee.closing {
            if c.pointee.rx == .body && limits.spliceMinBytes > 0 && c.pointee.bodyRemaining >= limits.spliceMinBytes
                && startSplice(from: d) {
                return   // the rest of a large request body is spliced (Engine+Splice.swift)
            }
            armRecv(d)
        }
    }
}
