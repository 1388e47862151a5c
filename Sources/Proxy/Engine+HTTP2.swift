import CNGHTTP2
import CSupport
import HTTP1
import HTTP2
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// HTTP/2 downstream (RFC 9113) over nghttp2 (Sources/HTTP2). A connection becomes HTTP/2 by
// prior knowledge (the client preface on a plain listener) or by ALPN "h2" after a TLS
// handshake. Its nghttp2 session turns the client's bytes into events; every stream is a slot
// of its own, transport `.h2stream`, that the HTTP/1 session serves exactly as a connection
// carrying one request — routing, route actions, retries, stats, the access log — so each
// stream is an exchange of its own:
//
//   client bytes ─► nghttp2 ─► events ─► .request: a stream slot; its head (HTTP/1.1 form,
//                                        RequestRender.swift) is parsed and routed as usual
//                                        .data/.end: request body, handed over when the
//                                        session reads (armRecv), window opened as taken
//                                        .closed: a reset client stream ends its exchange (DC)
//   session send(stream, bytes) ─► response head → HEADERS; body → the stream's H2Source,
//                                  pulled by nghttp2 as windows allow ─► flush: frames into
//                                  the connection's send queue; a segment taken whole
//                                  completes the stream's send (its memory goes back)
//
// Nothing here is called from inside nghttp2: events are handled after mem_recv returns, and
// completions after mem_send returns. Stream work that must not run inside the caller's step
// goes later: buffered body bytes through a NOP completion on the ring, and a connection's
// frames at the end of the loop iteration (`flushHTTP2`, from `tick`), so that all the
// responses a batch of completions made ready leave in one send.

extension ProxyEngine {
    // MARK: detection

    /// The HTTP/2 client connection preface (RFC 9113 §3.4).
    static let h2Preface: StaticString = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    /// 1: `p` starts with the whole preface; 0: with a part of it (wait for more); -1: not.
    @inline(__always)
    func prefaceMatch(_ p: UnsafeRawPointer, _ n: Int) -> Int {
        let pre = ProxyEngine.h2Preface
        let k = min(n, pre.utf8CodeUnitCount)
        if memcmp(p, pre.utf8Start, k) != 0 { return -1 }
        return k == pre.utf8CodeUnitCount ? 1 : 0
    }

    /// The connection starts speaking HTTP/2 (ALPN h2, or the preface seen). False when
    /// nghttp2 could not make a session (the connection is closed).
    mutating func h2Start(_ p: Int32) -> Bool {
        guard let h = H2Connection.make(inbox: h2Inbox) else {
            closeConn(p)
            return false
        }
        conns[Int(p)].h2 = h
        conns[Int(p)].rx = .none
        stats.add(WorkerSlotField.h2Connections)
        setDeadline(p, nowMs + limits.idleTimeoutMs)
        h2ScheduleFlush(p)   // the server's SETTINGS
        return true
    }

    // MARK: connection: input

    /// Client bytes on an HTTP/2 connection: through nghttp2, then its events.
    mutating func h2Ingest(_ p: Int32, _ data: UnsafeMutableRawPointer, _ n: Int, _ bid: UInt16) {
        let gen = conns[Int(p)].generation
        var off = 0
        var failed = false
        while off < n {
            let r = H2Connection.ingest(conns[Int(p)].h2!, data + off, n - off)
            if r < 0 {
                failed = true
                conns[Int(p)].h2Fatal = Int32(r)
                break
            }
            off += r
            h2HandleEvents(p)
            if !h2Alive(p, gen) { break }
        }
        if h2Alive(p, gen) { h2HandleEvents(p) }
        recycleRecv(bid)
        guard h2Alive(p, gen) else { return }
        if failed && conns[Int(p)].role == .upstream {
            h2UpConnectionLost(p)   // an upstream broke the protocol: its streams fail (503 UC / retry)
            return
        }
        if failed {
            // A fatal error (bad preface, CONTINUATION or outbound flood): nghttp2 queues
            // nothing, so our own GOAWAY goes out (h2Flush), then the connection closes.
            // Protocol errors nghttp2 handles itself end with its GOAWAY (onFrameSend).
            stats.add(WorkerSlotField.h2ProtocolErrors)
            conns[Int(p)].h2GoingAway = true
            h2CloseStreams(p)
        }
        h2ScheduleFlush(p)   // responses and WINDOW_UPDATEs leave at the end of the iteration
        if h2Alive(p, gen) && !conns[Int(p)].recvArmed && !conns[Int(p)].h2GoingAway { armRecv(p) }
    }

    /// Connection `p` (of generation `gen`) is still open: a step that may close it (and free
    /// its slot at once when nothing is in flight) was taken since `gen` was read.
    @inline(__always)
    func h2Alive(_ p: Int32, _ gen: UInt32) -> Bool {
        let c = conns + Int(p)
        return c.pointee.generation == gen && c.pointee.role != .free && !c.pointee.closing && c.pointee.h2 != nil
    }

    /// Acts on the events in the inbox (from an ingest or a flush), then empties it.
    mutating func h2HandleEvents(_ p: Int32) {
        let inbox = h2Inbox
        var k = 0
        while k < inbox.pointee.count {
            let e = inbox.pointee.events[k]
            k += 1
            guard let h = conns[Int(p)].h2, !conns[Int(p)].closing else { continue }
            if conns[Int(p)].role == .upstream {
                h2UpEvent(p, h, e)   // Engine+HTTP2Upstream.swift
                continue
            }
            switch e.kind {
            case .request:
                h2OpenStream(p, h, e)
            case .data:
                let s = h2SlotOf(p, e)
                if s >= 0 {
                    h2BufferBody(s, e.data!, e.length)
                } else {
                    h.pointee.consume(stream: e.stream, e.length)   // nobody reads it: keep windows open
                }
            case .end, .trailers:
                // Request trailers are not forwarded to an HTTP/1.1 upstream: the end.
                guard e.kind == .end || e.endStream else { continue }
                let s = h2SlotOf(p, e)
                if s >= 0 {
                    conns[Int(s)].h2InClosed = true
                    if conns[Int(s)].recvArmed && !conns[Int(s)].h2InPending { h2Deliver(s) }
                }
            case .response:
                break   // a server session gets none
            case .closed:
                // The slot as it was when the stream closed; it may have been closed (and
                // reused by a stream of this connection) since: then it is not this stream's.
                let s = h2SlotOf(p, e)
                guard s >= 0 else { continue }
                conns[Int(s)].h2Stream = 0   // nothing more to say to nghttp2 about it
                if !conns[Int(s)].h2ResponseDone {
                    // The client reset the stream (or nghttp2 did, for a protocol error):
                    // its exchange ends as a client that went away (DC).
                    downstreamGone(s)
                }
            }
        }
        inbox.pointee.reset()
    }

    /// The open stream slot of connection `p` that event `e` is about (-1: none any more): the
    /// slot nghttp2 had, if it still holds that stream. A stream whose request came in the same
    /// input had no slot yet when nghttp2 reported its DATA: it is looked up now.
    @inline(__always)
    func h2SlotOf(_ p: Int32, _ e: H2Event) -> Int32 {
        var s = e.slot
        if s < 0, let h = conns[Int(p)].h2 { s = h.pointee.slot(stream: e.stream) }
        guard s >= 0 else { return -1 }
        let c = conns + Int(s)
        return c.pointee.h2Parent == p && c.pointee.h2Stream == e.stream && c.pointee.transport == .h2stream
            && c.pointee.role != .free && !c.pointee.closing ? s : -1
    }

    /// A request's headers arrived: a slot for the stream, its head written in HTTP/1.1 form
    /// and handed to the HTTP/1 session.
    mutating func h2OpenStream(_ p: Int32, _ h: UnsafeMutablePointer<H2Connection>, _ e: H2Event) {
        // A stream the client reset in the same input (the rapid-reset shape, CVE-2023-44487)
        // is gone from nghttp2 already: it costs nothing more, no upstream request.
        guard h.pointee.slot(stream: e.stream) < 0, h.pointee.setSlot(stream: e.stream, -1) else {
            stats.add(WorkerSlotField.h2Streams)
            return
        }
        let s = allocSlot()
        guard s >= 0 else {
            h.pointee.reset(stream: e.stream, code: UInt32(NGHTTP2_REFUSED_STREAM.rawValue))
            return
        }
        let pc = conns + Int(p)
        let c = conns + Int(s)
        c.pointee.role = .downstream
        c.pointee.transport = .h2stream
        c.pointee.rx = .head
        c.pointee.listenerPort = pc.pointee.listenerPort
        c.pointee.peerText = pc.pointee.peerText
        c.pointee.peerTextLen = pc.pointee.peerTextLen
        c.pointee.xfcc = pc.pointee.xfcc          // borrowed: the connection owns it
        c.pointee.xfccLen = pc.pointee.xfccLen
        c.pointee.h2Secure = pc.pointee.transport == .tls
        c.pointee.h2Parent = p
        c.pointee.h2Stream = e.stream
        c.pointee.h2Next = pc.pointee.h2First
        if pc.pointee.h2First >= 0 { conns[Int(pc.pointee.h2First)].h2Prev = s }
        pc.pointee.h2First = s
        pc.pointee.h2Streams += 1
        setDeadline(p, 0)   // busy: the connection's idle timeout waits for its last stream
        h.pointee.setSlot(stream: e.stream, s)
        stats.add(WorkerSlotField.h2Streams)

        // The head, as HTTP/1.1 (a small buffer fits nearly all).
        let inbox = UnsafePointer(h2Inbox)
        var rendered: RenderedHead? = nil
        if !e.tooLarge {
            let big = Int(e.block.count) + 256 > small.size
            c.pointee.accum = big ? large.get() : small.get()
            c.pointee.accumLarge = big
            if big { largeHeadBuffers += 1 }
            rendered = renderRequestHead(inbox, e, into: c.pointee.accum!, capacity: big ? large.size : small.size)
        }
        guard let head = rendered else {
            // Past the head limits (60 KiB, 100 fields): 431, as for HTTP/1.1.
            c.pointee.h2InClosed = e.endStream
            stats.add(WorkerSlotField.badRequests)
            sendLocalReply(s, status: 431, body: nil, close: true)
            return
        }
        c.pointee.accumStart = 0
        c.pointee.accumEnd = Int32(head.length)
        c.pointee.h2InChunked = head.chunked
        c.pointee.h2InClosed = !head.hasBody
        parseAccumulatedRequest(s)
    }

    // MARK: stream: request body

    /// Body bytes for stream slot `s`: kept until its session reads (at most the stream's
    /// window: 64 KiB), or handed over at once when it is reading.
    mutating func h2BufferBody(_ s: Int32, _ data: UnsafeRawPointer, _ n: Int) {
        let c = conns + Int(s)
        if c.pointee.h2In == nil {
            c.pointee.h2In = large.get()
            c.pointee.h2InStart = 0
            c.pointee.h2InEnd = 0
        }
        if c.pointee.h2InStart > 0 && Int(c.pointee.h2InEnd) + n > large.size {
            let len = Int(c.pointee.h2InEnd - c.pointee.h2InStart)
            c.pointee.h2In!.copyMemory(from: c.pointee.h2In! + Int(c.pointee.h2InStart), byteCount: len)
            c.pointee.h2InStart = 0
            c.pointee.h2InEnd = Int32(len)
        }
        guard Int(c.pointee.h2InEnd) + n <= large.size else {
            // More than the window we granted: a flow-control violation by the client.
            conns[Int(c.pointee.h2Parent)].h2!.pointee.reset(stream: c.pointee.h2Stream, code: UInt32(NGHTTP2_FLOW_CONTROL_ERROR.rawValue))
            downstreamGone(s)
            return
        }
        (c.pointee.h2In! + Int(c.pointee.h2InEnd)).copyMemory(from: data, byteCount: n)
        c.pointee.h2InEnd += Int32(n)
        if c.pointee.recvArmed && !c.pointee.h2InPending {
            if c.pointee.role == .downstream { h2Deliver(s) } else { h2UpDeliver(s) }
        }
    }

    /// The session of stream slot `s` reads (`armRecv`): buffered body bytes are handed over by
    /// a NOP completion (not inside the caller's step); otherwise the next DATA frame is.
    mutating func h2StreamRead(_ s: Int32) {
        let c = conns + Int(s)
        c.pointee.recvArmed = true
        guard !c.pointee.h2InPending else { return }
        if c.pointee.role == .downstream ? h2HasInput(s) : h2UpHasInput(s) {
            ring.prepNop(userData: userData(.h2Pending, s))
            c.pointee.pendingOps += 1
            c.pointee.h2InPending = true
        }
    }

    @inline(__always)
    func h2HasInput(_ s: Int32) -> Bool {
        let c = conns + Int(s)
        guard c.pointee.rx == .body || c.pointee.rx == .chunked else { return false }
        return c.pointee.h2InEnd > c.pointee.h2InStart
            || (c.pointee.h2InClosed && c.pointee.h2InChunked && !c.pointee.h2InTerminated)
    }

    /// Hands buffered body bytes to the session of stream slot `s` as one receive would: in
    /// a receive-sized buffer, chunk-framed when the upstream gets the body chunked.
    mutating func h2Deliver(_ s: Int32) {
        let c = conns + Int(s)
        guard h2HasInput(s) else { return }
        guard let (pid, buf) = plain.get() else {
            receiveStarved(s)   // re-armed by `tick` (armRecv → h2StreamRead)
            return
        }
        c.pointee.recvArmed = false
        let avail = Int(c.pointee.h2InEnd - c.pointee.h2InStart)
        let take = min(avail, plain.size - 24)
        var w = 0
        if c.pointee.h2InChunked {
            if take > 0 {
                w = writeChunkSize(buf, take)
                buf.storeBytes(of: 0x0A0D, toByteOffset: w, as: UInt16.self)
                w += 2
            }
        }
        if take > 0 {
            (buf + w).copyMemory(from: c.pointee.h2In! + Int(c.pointee.h2InStart), byteCount: take)
            w += take
            c.pointee.h2InStart += Int32(take)
            conns[Int(c.pointee.h2Parent)].h2!.pointee.consume(stream: c.pointee.h2Stream, take)
            h2ScheduleFlush(c.pointee.h2Parent)   // the WINDOW_UPDATE
        }
        if c.pointee.h2InChunked {
            if take > 0 {
                buf.storeBytes(of: 0x0A0D, toByteOffset: w, as: UInt16.self)
                w += 2
            }
            if c.pointee.h2InClosed && c.pointee.h2InStart == c.pointee.h2InEnd {
                let last: StaticString = "0\r\n\r\n"
                (buf + w).copyMemory(from: last.utf8Start, byteCount: 5)
                w += 5
                c.pointee.h2InTerminated = true
            }
        }
        if c.pointee.h2InStart == c.pointee.h2InEnd, let b = c.pointee.h2In {
            large.put(b)
            c.pointee.h2In = nil
            c.pointee.h2InStart = 0
            c.pointee.h2InEnd = 0
        }
        onDownData(s, buf, w, pid)
    }

    /// Writes `v` in lowercase hex at `p`; returns the digits written.
    @inline(__always)
    func writeChunkSize(_ p: UnsafeMutableRawPointer, _ v: Int) -> Int {
        var digits = 1
        while v >> (4 * digits) != 0 { digits += 1 }
        for k in 0..<digits {
            let d = UInt8((v >> (4 * (digits - 1 - k))) & 0xF)
            p.storeBytes(of: d < 10 ? 0x30 + d : 0x57 + d, toByteOffset: k, as: UInt8.self)
        }
        return digits
    }

    /// The NOP of `h2StreamRead` completed.
    mutating func onH2Pending(_ s: Int32) {
        let c = conns + Int(s)
        c.pointee.h2InPending = false
        if c.pointee.closing {
            finalizeIfIdle(s)
            return
        }
        if c.pointee.recvArmed {
            if c.pointee.role == .downstream { h2Deliver(s) } else { h2UpDeliver(s) }
        }
    }

    // MARK: stream: response

    /// The session of stream slot `s` queued bytes (an HTTP/1.1 response, head first).
    mutating func h2StreamSend(_ s: Int32) {
        let c = conns + Int(s)
        let p = c.pointee.h2Parent
        // (A client stream already gone: nothing can be sent; completed as dropped.)
        guard let (h, base, n) = h2SendStart(s, needsStream: true) else { return }
        var head = ResponseHead()
        let status = parseResponseHead(UnsafeRawBufferPointer(start: base, count: n), limits: .default,
                                       headers: UnsafeMutableBufferPointer(start: headers, count: ProxyEngine.maxHeaders),
                                       into: &head)
        guard case .complete = status else {
            // The engine wrote this head: cannot happen; the stream is reset, not answered.
            h.pointee.reset(stream: c.pointee.h2Stream, code: UInt32(NGHTTP2_INTERNAL_ERROR.rawValue))
            h2CompleteLater(s)
            return
        }
        let source = UnsafeRawBufferPointer(start: base, count: n)
        let fields = UnsafeBufferPointer(start: headers, count: Int(head.headerCount))
        let headLen = Int(head.headLength)
        if head.status < 200 {
            _ = h.pointee.submitResponse(stream: c.pointee.h2Stream, status: head.status, source: source,
                                         headers: fields, final: false, body: nil)
            h2CompleteLater(s)
            return
        }
        let method = c.pointee.exchange >= 0 ? ex(s).pointee.method : .get
        var framing: H2BodyFraming = .untilEnd
        var length: Int64 = 0
        switch responseBodyFraming(head, requestMethod: method) {
        case .none: framing = .length
        case .length(let l): framing = .length; length = l
        case .chunked: framing = .chunked
        case .untilClose: framing = .untilEnd
        }
        c.pointee.h2HeadDone = true
        let out = withUnsafeMutablePointer(to: &c.pointee.h2Out) { $0 }
        if framing == .length && length == 0 {
            out.pointee.ended = true
            out.pointee.eofSent = true
            _ = h.pointee.submitResponse(stream: c.pointee.h2Stream, status: head.status, source: source,
                                         headers: fields, final: true, body: nil)
            h2CompleteLater(s)
            return
        }
        out.pointee.release()
        out.pointee = H2Source()
        out.pointee.owner = UnsafeMutableRawPointer(h)
        out.pointee.stream = c.pointee.h2Stream
        out.pointee.slot = s
        out.pointee.generation = c.pointee.generation
        out.pointee.framing = framing
        out.pointee.remaining = length
        if headLen < n {
            out.pointee.base = base + headLen
            out.pointee.count = n - headLen
        }
        guard h.pointee.submitResponse(stream: c.pointee.h2Stream, status: head.status, source: source,
                                       headers: fields, final: true, body: out) else {
            h2CompleteLater(s)
            return
        }
        if out.pointee.base == nil { h2CompleteLater(s) }   // the head only: the body follows
        h2ScheduleFlush(p)
    }

    /// The start of a stream slot's send (either role): the segment now in flight is in the
    /// session's hands. A body segment after the head is given to the stream's source (nghttp2
    /// pulls it as the windows allow); a head is returned for the caller to submit. nil when it
    /// was handled here (body, or no connection — or, with `needsStream`, no stream — left: then
    /// completed as dropped).
    @inline(__always)
    mutating func h2SendStart(_ s: Int32, needsStream: Bool) -> (UnsafeMutablePointer<H2Connection>, UnsafeRawPointer, Int)? {
        let c = conns + Int(s)
        c.pointee.sendArmed = true
        guard let h = conns[Int(c.pointee.h2Parent)].h2, !needsStream || c.pointee.h2Stream != 0 else {
            h2CompleteLater(s)
            return nil
        }
        let seg = c.pointee.sendQueue.first
        let base = seg.base! + Int(c.pointee.sendQueue.sent)
        let n = Int(seg.count - c.pointee.sendQueue.sent)
        guard !c.pointee.h2HeadDone else {
            c.pointee.h2Out.base = base
            c.pointee.h2Out.count = n
            c.pointee.h2Out.offset = 0
            if c.pointee.h2Stream != 0 { h.pointee.resume(stream: c.pointee.h2Stream, &c.pointee.h2Out) }
            h2ScheduleFlush(c.pointee.h2Parent)
            return nil
        }
        return (h, base, n)
    }

    /// Stream slot `s`'s segment in flight is done without nghttp2 reading it (a head, an
    /// interim head, a stream already gone): completed at the connection's next flush.
    @inline(__always)
    mutating func h2CompleteLater(_ s: Int32) {
        let p = conns[Int(s)].h2Parent
        guard let h = conns[Int(p)].h2 else { return }
        h.pointee.complete(s, conns[Int(s)].generation)
        h2ScheduleFlush(p)
    }

    // MARK: connection: output

    /// Runs `h2Flush` for connection `p` at the end of this loop iteration (not inside the
    /// caller's step), once however often it is asked for.
    @inline(__always)
    mutating func h2ScheduleFlush(_ p: Int32) {
        let c = conns + Int(p)
        if c.pointee.h2Flushing {
            c.pointee.h2FlushAgain = true
            return
        }
        guard !c.pointee.h2FlushQueued, !c.pointee.closing, h2FlushCount < Int(capacity) else { return }
        c.pointee.h2FlushQueued = true
        h2FlushList[h2FlushCount] = p
        h2FlushCount += 1
    }

    /// The end of a loop iteration (`tick`): every connection that asked flushes. An entry
    /// whose connection closed since (its flag cleared, or its slot reused) is skipped.
    mutating func flushHTTP2() {
        var k = 0
        while k < h2FlushCount {
            let p = h2FlushList[k]
            k += 1
            let c = conns + Int(p)
            guard c.pointee.h2FlushQueued else { continue }
            c.pointee.h2FlushQueued = false
            guard c.pointee.h2 != nil, !c.pointee.closing else { continue }
            let gen = c.pointee.generation
            h2Flush(p)
            if h2Alive(p, gen) && !conns[Int(p)].recvArmed && !conns[Int(p)].h2GoingAway { armRecv(p) }
        }
        h2FlushCount = 0
    }

    /// Sends what nghttp2 has queued (when no send is in flight), then completes the stream
    /// sends whose segments were taken and acts on the events that sending produced (streams
    /// closed). Repeats while those steps queue more.
    mutating func h2Flush(_ p: Int32) {
        let c = conns + Int(p)
        guard let h = c.pointee.h2, !c.pointee.closing else { return }
        let gen = c.pointee.generation
        if c.pointee.h2Flushing {
            c.pointee.h2FlushAgain = true
            return
        }
        if c.pointee.h2Fatal != 0 {
            // Past a fatal nghttp2 error only our GOAWAY is sent; then the connection closes.
            if !c.pointee.sendArmed && c.pointee.sendQueue.isEmpty {
                if c.pointee.h2FatalSent || c.pointee.role == .upstream {
                    closeConn(p)
                } else {
                    c.pointee.h2FatalSent = true
                    let out = small.get()
                    let n = h.pointee.fatalGoAway(error: Int(c.pointee.h2Fatal), into: out)
                    c.pointee.out = out
                    c.pointee.outLarge = false
                    send(p, UnsafeRawPointer(out), Int32(n), release: .out)
                }
            }
            return
        }
        c.pointee.h2Flushing = true
        var rounds = 0
        repeat {
            c.pointee.h2FlushAgain = false
            rounds += 1
            if !c.pointee.sendArmed && c.pointee.sendQueue.isEmpty && h.pointee.wantsWrite {
                let out = large.get()
                let n = H2Connection.fill(h, out, large.size)
                if h.pointee.sentErrorGoAway && !c.pointee.h2GoingAway {
                    // nghttp2 ended the session for a protocol error or a flood (its GOAWAY is
                    // in this send): counted once; the connection closes once it is out.
                    stats.add(WorkerSlotField.h2ProtocolErrors)
                    c.pointee.h2GoingAway = true
                }
                if n > 0 {
                    c.pointee.out = out
                    c.pointee.outLarge = true
                    send(p, UnsafeRawPointer(out), Int32(n), release: .out)
                } else {
                    large.put(out)
                    if n < 0 {
                        c.pointee.h2Flushing = false
                        closeConn(p)
                        return
                    }
                }
            }
            // Completed stream sends (they may queue more output: the loop runs again).
            var k = 0
            while k < h.pointee.completedCount {
                let v = h.pointee.completed[k]
                k += 1
                let s = Int32(bitPattern: UInt32(truncatingIfNeeded: v))
                let streamGen = UInt32(truncatingIfNeeded: v >> 32)
                let sc = conns + Int(s)
                guard sc.pointee.generation == streamGen, sc.pointee.role != .free, sc.pointee.h2Parent == p,
                      !sc.pointee.closing, sc.pointee.sendArmed, sc.pointee.sendQueue.count > 0 else { continue }
                sc.pointee.sendArmed = false
                let rest = sc.pointee.sendQueue.first.count - sc.pointee.sendQueue.sent
                onSendComplete(s, result: max(rest, 1), downstream: sc.pointee.role == .downstream)
                if !h2Alive(p, gen) { break }
            }
            if !h2Alive(p, gen) { c.pointee.h2Flushing = false; return }
            h.pointee.completedCount = 0
            h2HandleEvents(p)
            if !h2Alive(p, gen) { c.pointee.h2Flushing = false; return }
        } while c.pointee.h2FlushAgain && rounds < 64
        c.pointee.h2Flushing = false
        if c.pointee.h2FlushAgain { h2ScheduleFlush(p) }
        // Over: a GOAWAY went out and no stream is left, or nghttp2 is done with it.
        if !c.pointee.sendArmed && c.pointee.sendQueue.isEmpty && !h.pointee.wantsWrite
            && ((c.pointee.h2GoingAway && c.pointee.h2Streams == 0) || h.pointee.finished) {
            closeConn(p)
        }
    }

    /// A send on an HTTP/2 connection completed: more frames may wait (sent at the end of
    /// the iteration, with whatever else this batch of completions makes ready).
    mutating func h2AfterSend(_ p: Int32) {
        h2ScheduleFlush(p)
    }

    // MARK: endings

    /// Stream slot `s`'s exchange ended normally: its response is complete.
    mutating func h2StreamEnded(_ s: Int32) {
        let c = conns + Int(s)
        c.pointee.h2ResponseDone = true
        detach(s)
        closeConn(s)
    }

    /// Closing stream slot `s` (from `closeConn`): tell nghttp2 what became of the stream.
    mutating func h2StreamClosing(_ s: Int32) {
        let c = conns + Int(s)
        let p = c.pointee.h2Parent
        guard let h = conns[Int(p)].h2 else { return }
        let stream = c.pointee.h2Stream
        if stream != 0 {
            if !c.pointee.h2ResponseDone {
                // Cut short (upstream failed mid-response, timeout, reset): the client sees a
                // reset stream, never a truncated body taken for complete.
                h.pointee.reset(stream: stream, code: UInt32(NGHTTP2_INTERNAL_ERROR.rawValue))
            } else {
                if !c.pointee.h2Out.eofSent {
                    c.pointee.h2Out.ended = true   // a body delimited by the upstream's close
                    h.pointee.resume(stream: stream, &c.pointee.h2Out)
                }
                if !c.pointee.h2InClosed {
                    // Answered before the request body ended (RFC 9113 §8.1): stop the client.
                    h.pointee.reset(stream: stream, code: UInt32(NGHTTP2_NO_ERROR.rawValue))
                }
            }
            h.pointee.clearSlot(stream: stream)
            c.pointee.h2Stream = 0
        }
        // Off the connection's list.
        if c.pointee.h2Prev >= 0 { conns[Int(c.pointee.h2Prev)].h2Next = c.pointee.h2Next } else { conns[Int(p)].h2First = c.pointee.h2Next }
        if c.pointee.h2Next >= 0 { conns[Int(c.pointee.h2Next)].h2Prev = c.pointee.h2Prev }
        c.pointee.h2Next = -1
        c.pointee.h2Prev = -1
        conns[Int(p)].h2Streams -= 1
        if conns[Int(p)].h2Streams == 0 && !conns[Int(p)].closing {
            setDeadline(p, nowMs + limits.idleTimeoutMs)
        }
        h2ScheduleFlush(p)
    }

    /// Frees what a stream slot holds (from `finalizeIfIdle`); `xfcc` is its connection's.
    mutating func h2ReleaseStream(_ s: Int32) {
        let c = conns + Int(s)
        if let b = c.pointee.h2In { large.put(b) }
        c.pointee.h2In = nil
        c.pointee.xfcc = nil
        c.pointee.h2Out.release()
        c.pointee.h2Out = H2Source()
    }

    /// Closes every stream of connection `p` (it is closing or going away).
    mutating func h2CloseStreams(_ p: Int32) {
        var s = conns[Int(p)].h2First
        while s >= 0 {
            let next = conns[Int(s)].h2Next
            closeConn(s)
            s = next
        }
    }

    /// The connection is closing (from `closeConn`): its streams first. An upstream
    /// connection's streams fail as a reset would (503 UC, or a retry elsewhere).
    mutating func h2ConnectionClosing(_ p: Int32) {
        let c = conns + Int(p)
        if c.pointee.role == .upstream {
            if c.pointee.pool >= 0 && pools.pools[Int(c.pointee.pool)].h2Conn == p { pools.pools[Int(c.pointee.pool)].h2Conn = -1 }
            var s = c.pointee.h2First
            while s >= 0 {
                let next = conns[Int(s)].h2Next
                if !conns[Int(s)].closing {
                    if conns[Int(s)].exchange >= 0 { upstreamFailed(s) } else { closeConn(s) }
                }
                s = next
            }
            return
        }
        h2CloseStreams(p)
    }

    /// Frees the nghttp2 session (from `finalizeIfIdle`).
    mutating func h2ReleaseConnection(_ p: Int32) {
        if let h = conns[Int(p)].h2 {
            H2Connection.destroy(h)
            conns[Int(p)].h2 = nil
        }
    }

    /// Idle (no stream for the idle timeout) or draining: GOAWAY, then close once the streams
    /// it lets finish are done.
    mutating func h2GoAway(_ p: Int32) {
        let c = conns + Int(p)
        guard let h = c.pointee.h2, !c.pointee.closing, !c.pointee.h2GoingAway else { return }
        c.pointee.h2GoingAway = true
        h.pointee.goAway()
        h2Flush(p)
    }
}

extension ProxyEngine {
    /// The connection that holds the TLS state of downstream `i` (a stream's connection).
    @inline(__always)
    func tlsConnection(_ i: Int32) -> Int32 {
        conns[Int(i)].transport == .h2stream ? conns[Int(i)].h2Parent : i
    }

    /// Downstream `i` came over TLS (directly or as a stream of a TLS connection).
    @inline(__always)
    func isSecure(_ i: Int32) -> Bool {
        let t = conns[Int(i)].transport
        return t == .tls || (t == .h2stream && conns[Int(i)].h2Secure)
    }
}

extension ProxyEngine {
    /// The request is gRPC: its content-type is `application/grpc` or `application/grpc+…`
    /// (gRPC over HTTP/2; Envoy's `Grpc::Common::isGrpcRequestHeaders`).
    func isGRPC(_ source: UnsafeRawBufferPointer, _ head: RequestHead) -> Bool {
        guard let v = findHeader(source, head, "content-type") else { return false }
        let value = slice(source, v)
        let prefix: StaticString = "application/grpc"
        let n = prefix.utf8CodeUnitCount
        guard value.count >= n, memcmp(value.baseAddress!, prefix.utf8Start, n) == 0 else { return false }
        return value.count == n || value[n] == UInt8(ascii: "+") || value[n] == UInt8(ascii: ";")
    }
}

extension ProxyEngine {
    /// `grpc-timeout` on a gRPC request (Istio routes set Envoy's `max_stream_duration` with
    /// `grpc_timeout_header_max` equal to the route timeout): the header's deadline becomes the
    /// exchange's timeout, capped by the route's `timeout` when it has one. Past it: 504 UT,
    /// which a gRPC client gets as DEADLINE_EXCEEDED.
    mutating func applyGRPCTimeout(_ x: Int32, source: UnsafeRawBufferPointer, head: RequestHead) {
        guard let v = findHeader(source, head, "grpc-timeout"), let ms = parseGRPCTimeout(slice(source, v)) else { return }
        let e = exchanges.slots + Int(x)
        let route = UInt64(e.pointee.timeoutMs)
        e.pointee.timeoutMs = UInt32(clamping: route == 0 ? ms : min(ms, route))
    }
}
