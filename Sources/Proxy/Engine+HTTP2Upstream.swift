import CNGHTTP2
import COpenSSL
import CSupport
import HTTP1
import HTTP2
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// HTTP/2 to upstreams (a cluster whose port protocol is GRPC, GRPC-WEB or HTTP2, or whose
// DestinationRule says `h2UpgradePolicy: UPGRADE`; TableReader.clusterHTTP2). One multiplexed
// connection per endpoint per worker (`UpstreamPools.Pool.h2Conn`), another when it refuses new
// streams (GOAWAY) or is full (the upstream's SETTINGS_MAX_CONCURRENT_STREAMS). Each request's
// stream is a slot of its own (role upstream, transport `.h2stream`), which the engine's HTTP/1
// upstream session drives exactly as a pooled connection carrying one request: the forwarded
// head it writes becomes HEADERS (`H2Connection.submitRequest`), its body DATA pulled as the
// upstream's windows allow; the response comes back rendered as HTTP/1.1 (head, body chunked
// unless it has a length and no trailers can follow, trailers as the chunked trailer section),
// so retries, timeouts, header edits and stats apply unchanged — and a downstream HTTP/2 stream
// turns the trailer section back into trailers, which is what gRPC needs end to end.
//
//   dispatch ─► h2AcquireStream: the endpoint's connection (connecting, or new) + a stream slot
//   stream send(head [+ body]) ─► submitRequest ─► flush (end of iteration) ─► upstream
//   upstream bytes ─► nghttp2 ─► .response/.data/.trailers/.end ─► the stream slot reads them
//                                 as HTTP/1.1 (h2UpDeliver) ─► handleResponseHead, body, ...
//   .closed with an error before the response ended ─► upstreamFailed (503 UC, or a retry)
//   connection lost / GOAWAY'd streams ─► every stream fails the same way

extension ProxyEngine {
    /// A stream slot for exchange `x` on the endpoint's HTTP/2 connection (opened when there is
    /// none with room). -1: no slot or socket; -2: the circuit breaker holds the exchange.
    mutating func h2AcquireStream(_ ep: ChosenEndpoint, for x: Int32) -> Int32 {
        var p: Int32 = ep.pool >= 0 ? pools.pools[Int(ep.pool)].h2Conn : -1
        if p >= 0 {
            let pc = conns + Int(p)
            // DestinationRule connectionPool.http.maxConcurrentStreams, also while connecting.
            let configured = x >= 0 ? exchanges.slots[Int(x)].maxConcurrentStreams : 0
            if pc.pointee.closing || pc.pointee.h2GoingAway || pc.pointee.h2 == nil
                || (pc.pointee.connected && pc.pointee.h2!.pointee.refusesNewStreams)
                || (pc.pointee.connected && Int(pc.pointee.h2Streams) >= pc.pointee.h2!.pointee.remoteMaxStreams)
                || (configured > 0 && UInt32(pc.pointee.h2Streams) >= configured) {
                p = -1
            }
        }
        if p < 0 {
            p = connectUpstream(ep, for: x)
            guard p >= 0 else { return p }
            guard let h = H2Connection.make(inbox: h2Inbox, client: true) else {
                closeConn(p)
                return -1
            }
            conns[Int(p)].h2 = h
            conns[Int(p)].reusable = false   // never in the HTTP/1.1 idle list
            if x >= 0 {
                conns[Int(p)].cxRecord = exchanges.slots[Int(x)].stats.record   // its cluster's upstream_cx_*
                conns[Int(p)].h2KaIntervalMs = exchanges.slots[Int(x)].h2KeepaliveIntervalMs
                conns[Int(p)].h2KaTimeoutMs = exchanges.slots[Int(x)].h2KeepaliveTimeoutMs
            }
            if let ssl = conns[Int(p)].ssl {
                // TLS to the upstream (DestinationRule tls): HTTP/2 is asked for by ALPN.
                var protos: (UInt8, UInt8, UInt8) = (2, UInt8(ascii: "h"), UInt8(ascii: "2"))
                _ = withUnsafeBytes(of: &protos) { SSL_set_alpn_protos(ssl, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), 3) }
            }
            if ep.pool >= 0 { pools.pools[Int(ep.pool)].h2Conn = p }
        }
        let s = allocSlot()
        guard s >= 0 else { return -1 }
        let pc = conns + Int(p)
        let c = conns + Int(s)
        c.pointee.role = .upstream
        c.pointee.transport = .h2stream
        c.pointee.pool = -1
        c.pointee.reusable = false
        c.pointee.connected = pc.pointee.connected
        c.pointee.cxRecord = pc.pointee.cxRecord
        c.pointee.h2Parent = p
        c.pointee.h2Secure = pc.pointee.ssl != nil
        c.pointee.h2Next = pc.pointee.h2First
        if pc.pointee.h2First >= 0 { conns[Int(pc.pointee.h2First)].h2Prev = s }
        pc.pointee.h2First = s
        pc.pointee.h2Streams += 1
        if pc.pointee.connected { setDeadline(p, 0) }
        return s
    }

    /// The HTTP/2 connection `p` to an upstream is up (connected, handshake done): its
    /// SETTINGS go out, and the streams that waited send their requests.
    mutating func h2UpConnected(_ p: Int32) {
        h2ScheduleFlush(p)
        armRecv(p)
        var s = conns[Int(p)].h2First
        while s >= 0 {
            let next = conns[Int(s)].h2Next
            conns[Int(s)].connected = true
            if !conns[Int(s)].closing { upstreamReady(s) }
            s = next
        }
        if conns[Int(p)].h2Streams == 0 { setDeadline(p, nowMs + limits.upstreamIdleTimeoutMs) }
        h2KeepaliveStart(p)
    }

    /// The upstream connection `p` is gone (EOF, error, connect failure or timeout, GOAWAY with
    /// nothing left): every stream on it fails as a reset would (503 UF/UC, or a retry).
    mutating func h2UpConnectionLost(_ p: Int32) {
        let pc = conns + Int(p)
        pc.pointee.h2GoingAway = true
        let connectFailure = !pc.pointee.connected   // counted per stream by upstreamFailed
        var s = pc.pointee.h2First
        while s >= 0 {
            let next = conns[Int(s)].h2Next
            if !conns[Int(s)].closing {
                conns[Int(s)].connected = !connectFailure
                if conns[Int(s)].exchange >= 0 { upstreamFailed(s) } else { closeConn(s) }
            }
            s = next
        }
        closeConn(p)
    }

    // MARK: stream: request

    /// The upstream session of stream slot `s` queued bytes: the forwarded head (maybe with
    /// body bytes after it), or more body.
    mutating func h2UpStreamSend(_ s: Int32) {
        let c = conns + Int(s)
        let p = c.pointee.h2Parent
        guard let (h, base, n) = h2SendStart(s, needsStream: false) else { return }
        var head = RequestHead()
        let status = parseRequestHead(UnsafeRawBufferPointer(start: base, count: n), limits: .default,
                                      headers: UnsafeMutableBufferPointer(start: headers, count: ProxyEngine.maxHeaders),
                                      into: &head)
        guard case .complete = status else {
            h2CompleteLater(s)
            badUpstreamResponse(s)   // cannot happen: the engine wrote this head
            return
        }
        c.pointee.h2HeadDone = true
        let headLen = Int(head.headLength)
        let out = h2Source(s)
        out.pointee.release()
        out.pointee = H2Source()
        var hasBody = true
        switch requestBodyFraming(head) {
        case .length(let l) where l > 0:
            out.pointee.framing = .length
            out.pointee.remaining = l
        case .chunked:
            out.pointee.framing = .chunked
        default:
            hasBody = false
        }
        out.pointee.owner = UnsafeMutableRawPointer(h)
        out.pointee.slot = s
        out.pointee.generation = c.pointee.generation
        if hasBody && headLen < n {
            out.pointee.base = base + headLen
            out.pointee.count = n - headLen
        }
        let id = h.pointee.submitRequest(source: UnsafeRawBufferPointer(start: base, count: n), head: head,
                                         headers: UnsafeBufferPointer(start: headers, count: Int(head.headerCount)),
                                         https: c.pointee.h2Secure, slot: s, body: hasBody ? out : nil)
        guard id > 0 else {
            h2CompleteLater(s)
            upstreamFailed(s)   // the connection cannot take a stream: as a reset
            return
        }
        c.pointee.h2Stream = id
        out.pointee.stream = id
        if !hasBody { c.pointee.h2Out.ended = true }
        if out.pointee.base == nil { h2CompleteLater(s) }
        h2ScheduleFlush(p)
    }

    // MARK: stream: response

    /// A response head (interim or final) for stream slot `s`, kept for its session to read.
    mutating func h2UpResponse(_ s: Int32, _ e: H2Event) {
        let c = conns + Int(s)
        if c.pointee.h2UpHead == nil {
            c.pointee.h2UpHead = small.get()
            c.pointee.h2UpHeadLen = 0
            c.pointee.h2UpHeadOff = 0
            c.pointee.h2UpHeadLarge = false
        }
        let at = Int(c.pointee.h2UpHeadLen)
        let x = c.pointee.exchange
        let grpc = x >= 0 && exchanges.slots[Int(x)].grpc   // its grpc-status trailer must get through
        var rendered = e.tooLarge ? nil   // past the head limits (60 KiB / 100 fields)
            : renderResponseHead(UnsafePointer(h2Inbox), e, into: c.pointee.h2UpHead! + at,
                                 capacity: (c.pointee.h2UpHeadLarge ? large.size : small.size) - at, trailers: grpc)
        if rendered == nil && !e.tooLarge && !c.pointee.h2UpHeadLarge {
            // Past 4 KiB (large cookies, gRPC metadata): into a large buffer, as an HTTP/1.1
            // upstream's head would go into the accumulation buffer.
            let big = large.get()
            big.copyMemory(from: c.pointee.h2UpHead!, byteCount: at)
            small.put(c.pointee.h2UpHead!)
            c.pointee.h2UpHead = big
            c.pointee.h2UpHeadLarge = true
            rendered = renderResponseHead(UnsafePointer(h2Inbox), e, into: big + at, capacity: large.size - at, trailers: grpc)
        }
        guard let r = rendered else {
            h2UpStreamReset(s)
            badUpstreamResponse(s)   // unusable head: 502 UPE
            return
        }
        c.pointee.h2UpHeadLen += Int32(r.length)
        if r.status >= 200 {
            c.pointee.h2InChunked = r.chunked
            if e.endStream { c.pointee.h2InClosed = true }
        }
        if c.pointee.recvArmed && !c.pointee.h2InPending { h2UpDeliver(s) }
    }

    /// A trailer section for stream slot `s`: the end of its chunked body (past the head
    /// limits, the body ends without them).
    mutating func h2UpTrailers(_ s: Int32, _ e: H2Event) {
        let c = conns + Int(s)
        c.pointee.h2InClosed = true
        let x = c.pointee.exchange
        if x >= 0 && exchanges.slots[Int(x)].grpc {   // the call's status, for Istio's metrics
            let g = grpcStatusRecord(UnsafePointer(h2Inbox), e)
            if g >= 0 { exchanges.slots[Int(x)].stats.grpcStatus = UInt8(g) }
        }
        if c.pointee.h2InChunked && !e.tooLarge { h2KeepTrailers(s, e) }
        if c.pointee.recvArmed && !c.pointee.h2InPending { h2UpDeliver(s) }
    }

    /// Whether stream slot `s` has response bytes its session has not read.
    @inline(__always)
    func h2UpHasInput(_ s: Int32) -> Bool {
        let c = conns + Int(s)
        return c.pointee.h2UpHead != nil || c.pointee.h2InEnd > c.pointee.h2InStart
            || (c.pointee.h2InClosed && c.pointee.h2InChunked && !c.pointee.h2InTerminated)
    }

    /// Hands stream slot `s`'s session the next piece of its response as HTTP/1.1, as one
    /// receive would: the head, then body bytes (chunk-framed when chunked), then the end.
    mutating func h2UpDeliver(_ s: Int32) {
        let c = conns + Int(s)
        guard h2UpHasInput(s) else { return }
        guard let (pid, buf) = plain.get() else {
            receiveStarved(s)
            return
        }
        c.pointee.recvArmed = false
        var w = 0
        if let head = c.pointee.h2UpHead {
            // The head, in pieces of a receive buffer when it is larger.
            let off = Int(c.pointee.h2UpHeadOff)
            w = min(Int(c.pointee.h2UpHeadLen) - off, plain.size)
            buf.copyMemory(from: head + off, byteCount: w)
            if off + w < Int(c.pointee.h2UpHeadLen) {
                c.pointee.h2UpHeadOff += Int32(w)
            } else {
                h2UpReleaseStream(s)
            }
        } else {
            w = h2TakeBody(s, into: buf, room: plain.size - 24)
            w = h2TakeBodyEnd(s, into: buf, w, capacity: plain.size)
        }
        onUpData(s, buf, w, pid)
    }

    /// Resets stream slot `s`'s stream (the exchange gave up on it), once.
    mutating func h2UpStreamReset(_ s: Int32) {
        let c = conns + Int(s)
        guard c.pointee.h2Stream != 0, let h = conns[Int(c.pointee.h2Parent)].h2 else { return }
        if !c.pointee.h2InClosed { h.pointee.reset(stream: c.pointee.h2Stream, code: UInt32(NGHTTP2_CANCEL.rawValue)) }
        h.pointee.clearSlot(stream: c.pointee.h2Stream)
        c.pointee.h2Stream = 0
        h2ScheduleFlush(c.pointee.h2Parent)
    }

    /// Closing upstream stream slot `s` (from `closeConn`): reset the stream if its response
    /// did not end, and leave the connection's list (an idle connection waits for its idle
    /// timeout).
    mutating func h2UpStreamClosing(_ s: Int32) {
        let c = conns + Int(s)
        let p = c.pointee.h2Parent
        h2GiveBackUnread(s)
        h2UpStreamReset(s)
        if c.pointee.h2Prev >= 0 { conns[Int(c.pointee.h2Prev)].h2Next = c.pointee.h2Next } else { conns[Int(p)].h2First = c.pointee.h2Next }
        if c.pointee.h2Next >= 0 { conns[Int(c.pointee.h2Next)].h2Prev = c.pointee.h2Prev }
        c.pointee.h2Next = -1
        c.pointee.h2Prev = -1
        conns[Int(p)].h2Streams -= 1
        if conns[Int(p)].h2Streams == 0 && !conns[Int(p)].closing && conns[Int(p)].connected {
            setDeadline(p, nowMs + limits.upstreamIdleTimeoutMs)
        }
    }

    /// Frees a stream slot's pending response head (from `finalizeIfIdle`; its trailers go
    /// with `h2ReleaseStream`).
    mutating func h2UpReleaseStream(_ s: Int32) {
        let c = conns + Int(s)
        if let b = c.pointee.h2UpHead {
            if c.pointee.h2UpHeadLarge { large.put(b) } else { small.put(b) }
        }
        c.pointee.h2UpHead = nil
        c.pointee.h2UpHeadLen = 0
        c.pointee.h2UpHeadOff = 0
        c.pointee.h2UpHeadLarge = false
    }

    /// Acts on an event of upstream connection `p`'s session.
    mutating func h2UpEvent(_ p: Int32, _ h: UnsafeMutablePointer<H2Connection>, _ e: H2Event) {
        // The slot as nghttp2 had it; still this stream's only if it holds the stream.
        let s = e.slot
        let mine = s >= 0 && conns[Int(s)].h2Parent == p && conns[Int(s)].h2Stream == e.stream
            && conns[Int(s)].transport == .h2stream && conns[Int(s)].role == .upstream && !conns[Int(s)].closing
        switch e.kind {
        case .request:
            break   // push is disabled: nghttp2 refuses it
        case .response:
            if mine { h2UpResponse(s, e) }
        case .trailers:
            if mine { h2UpTrailers(s, e) }
        case .data:
            if mine {
                h2BufferBody(s, e.data!, e.length)
            } else {
                h.pointee.consume(stream: e.stream, e.length)
            }
        case .end:
            if mine {
                conns[Int(s)].h2InClosed = true
                if conns[Int(s)].recvArmed && !conns[Int(s)].h2InPending { h2UpDeliver(s) }
            }
        case .closed:
            guard mine else { return }
            conns[Int(s)].h2Stream = 0
            if e.errorCode != 0 || !conns[Int(s)].h2InClosed {
                // Reset by the upstream (or refused: GOAWAY, too many streams) before the
                // response ended: as a reset connection (503 UC, or a retry).
                upstreamFailed(s)
            }
        }
    }
}
