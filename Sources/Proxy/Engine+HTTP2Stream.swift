import CNGHTTP2
import CSupport
import HTTP1
import HTTP2
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// The streams of an HTTP/2 client connection (Engine+HTTP2.swift has the connection and its
// diagram): a slot per stream, its request head handed to the HTTP/1 session in HTTP/1.1 form,
// its body delivered as the session reads (the window opened as it takes the bytes), its
// response turned back into HEADERS / DATA / trailers, and what nghttp2 is told when it ends.

extension ProxyEngine {
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
            conns[Int(c.pointee.h2Parent)].h2!.pointee.clearSlot(stream: c.pointee.h2Stream)
            c.pointee.h2Stream = 0   // reset once: closing adds no second RST_STREAM
            if c.pointee.role == .downstream { downstreamGone(s) } else { upstreamFailed(s) }
            return
        }
        (c.pointee.h2In! + Int(c.pointee.h2InEnd)).copyMemory(from: data, byteCount: n)
        c.pointee.h2InEnd += Int32(n)
        if c.pointee.recvArmed && !c.pointee.h2InPending {
            if c.pointee.role == .downstream { h2Deliver(s) } else { h2UpDeliver(s) }
        }
    }

    /// The client ended stream slot `s`'s request.
    mutating func h2RequestEnded(_ s: Int32) {
        conns[Int(s)].h2InClosed = true
        if conns[Int(s)].recvArmed && !conns[Int(s)].h2InPending { h2Deliver(s) }
    }

    /// The client's trailers for stream slot `s`, which end its request. A body sent chunked
    /// carries them as its trailer section (to an HTTP/1.1 upstream as they are; an HTTP/2
    /// upstream stream turns the section back into trailers: H2Source). A body with a
    /// content-length cannot carry them in HTTP/1.1: they are dropped, as Envoy does. Past the
    /// head limits (60 KiB, 100 fields) the request fails as a malformed body does (400 DPE,
    /// as an HTTP/1.1 trailer section past ChunkedScanner's 60 KiB).
    mutating func h2RequestTrailers(_ s: Int32, _ e: H2Event) {
        let c = conns + Int(s)
        c.pointee.h2InClosed = true
        if e.tooLarge && c.pointee.exchange >= 0 && (c.pointee.rx == .body || c.pointee.rx == .chunked) {
            failRequestBody(s)
            return
        }
        if !e.tooLarge && c.pointee.h2InChunked && !c.pointee.h2InTerminated { h2KeepTrailers(s, e) }
        if c.pointee.recvArmed && !c.pointee.h2InPending { h2Deliver(s) }
    }

    /// Keeps trailer block `e` for stream slot `s` (either role), rendered as its chunked body's
    /// end — last chunk, trailer section, empty line — for the session to read after the body
    /// (`h2TakeBodyEnd`): in a small buffer, or a large one when it does not fit (a block is at
    /// most 60 KiB: it does). Nothing is kept when it does not fit either: the body ends bare.
    mutating func h2KeepTrailers(_ s: Int32, _ e: H2Event) {
        let c = conns + Int(s)
        guard c.pointee.h2Tail == nil else { return }
        let inbox = UnsafePointer(h2Inbox)
        var buf = small.get()
        var n = renderTrailerSection(inbox, e, into: buf, capacity: small.size)
        var big = false
        if n == nil {
            small.put(buf)
            buf = large.get()
            big = true
            n = renderTrailerSection(inbox, e, into: buf, capacity: large.size)
        }
        guard let n else {
            large.put(buf)
            return
        }
        c.pointee.h2Tail = buf
        c.pointee.h2TailLen = Int32(n)
        c.pointee.h2TailSent = 0
        c.pointee.h2TailLarge = big
    }

    /// Once every body byte of stream slot `s` (either role) was taken and its peer ended the
    /// stream, writes the end of a chunked body after the `w` bytes in `buf` (`capacity` in
    /// all): the kept trailers, as many of their bytes as fit (the rest at the next read), or
    /// the last chunk alone. Returns the bytes now in `buf`.
    mutating func h2TakeBodyEnd(_ s: Int32, into buf: UnsafeMutableRawPointer, _ w: Int, capacity: Int) -> Int {
        let c = conns + Int(s)
        guard c.pointee.h2InChunked && c.pointee.h2InClosed && c.pointee.h2In == nil && !c.pointee.h2InTerminated else { return w }
        if let tail = c.pointee.h2Tail {
            let k = min(Int(c.pointee.h2TailLen - c.pointee.h2TailSent), capacity - w)
            (buf + w).copyMemory(from: tail + Int(c.pointee.h2TailSent), byteCount: k)
            c.pointee.h2TailSent += Int32(k)
            if c.pointee.h2TailSent == c.pointee.h2TailLen {
                h2ReleaseTail(s)
                c.pointee.h2InTerminated = true
            }
            return w + k
        }
        guard capacity - w >= 5 else { return w }
        let last: StaticString = "0\r\n\r\n"
        (buf + w).copyMemory(from: last.utf8Start, byteCount: 5)
        c.pointee.h2InTerminated = true
        return w + 5
    }

    /// Gives back stream slot `s`'s kept trailers, if any.
    @inline(__always)
    mutating func h2ReleaseTail(_ s: Int32) {
        let c = conns + Int(s)
        guard let tail = c.pointee.h2Tail else { return }
        if c.pointee.h2TailLarge { large.put(tail) } else { small.put(tail) }
        c.pointee.h2Tail = nil
        c.pointee.h2TailLen = 0
        c.pointee.h2TailSent = 0
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
    /// a receive-sized buffer, chunk-framed when the upstream gets the body chunked, then the
    /// body's end (with the client's trailers, if any).
    mutating func h2Deliver(_ s: Int32) {
        let c = conns + Int(s)
        guard h2HasInput(s) else { return }
        guard let (pid, buf) = plain.get() else {
            receiveStarved(s)   // re-armed by `tick` (armRecv → h2StreamRead)
            return
        }
        c.pointee.recvArmed = false
        var w = h2TakeBody(s, into: buf, room: plain.size - 24)
        w = h2TakeBodyEnd(s, into: buf, w, capacity: plain.size)
        onDownData(s, buf, w, pid)
    }

    /// Moves buffered body bytes of stream slot `s` (either role) into `buf` as one receive
    /// would carry them: at most `room` of them, chunk-framed when the body travels chunked,
    /// the stream's window opened by as much (its WINDOW_UPDATE leaves with the next flush),
    /// the buffer given back once empty. Returns the bytes written; the caller adds the end.
    mutating func h2TakeBody(_ s: Int32, into buf: UnsafeMutableRawPointer, room: Int) -> Int {
        let c = conns + Int(s)
        let take = min(Int(c.pointee.h2InEnd - c.pointee.h2InStart), room)
        var w = 0
        if take > 0 {
            if c.pointee.h2InChunked {
                w = writeChunkSize(buf, take)
                buf.storeBytes(of: 0x0A0D, toByteOffset: w, as: UInt16.self)
                w += 2
            }
            (buf + w).copyMemory(from: c.pointee.h2In! + Int(c.pointee.h2InStart), byteCount: take)
            w += take
            if c.pointee.h2InChunked {
                buf.storeBytes(of: 0x0A0D, toByteOffset: w, as: UInt16.self)
                w += 2
            }
            c.pointee.h2InStart += Int32(take)
            conns[Int(c.pointee.h2Parent)].h2!.pointee.consume(stream: c.pointee.h2Stream, take)
            h2ScheduleFlush(c.pointee.h2Parent)
        }
        if c.pointee.h2InStart == c.pointee.h2InEnd, let b = c.pointee.h2In {
            large.put(b)
            c.pointee.h2In = nil
            c.pointee.h2InStart = 0
            c.pointee.h2InEnd = 0
        }
        return w
    }

    /// The body source nghttp2 reads for stream slot `s`, in the slot's own (never moving)
    /// memory, as the pointer nghttp2 keeps in its data provider.
    @inline(__always)
    func h2Source(_ s: Int32) -> UnsafeMutablePointer<H2Source> {
        // SAFETY: the slab never moves; `h2Out` is a stored field of the slot.
        (UnsafeMutableRawPointer(conns + Int(s)) + MemoryLayout<Conn>.offset(of: \Conn.h2Out)!)
            .assumingMemoryBound(to: H2Source.self)
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
        let out = h2Source(s)
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
        h2GiveBackUnread(s)
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

    /// Body bytes stream slot `s` received and its session never took (the stream ends early)
    /// are consumed for the connection: nghttp2 counts every received DATA byte against the
    /// connection's window until it is consumed, so left behind they would shrink it for good.
    mutating func h2GiveBackUnread(_ s: Int32) {
        let c = conns + Int(s)
        let n = Int(c.pointee.h2InEnd - c.pointee.h2InStart)
        guard n > 0, let h = conns[Int(c.pointee.h2Parent)].h2 else { return }
        h.pointee.consume(stream: c.pointee.h2Stream, n)   // 0 once closed: the connection's alone
        c.pointee.h2InStart = c.pointee.h2InEnd
    }

    /// Frees what a stream slot holds (from `finalizeIfIdle`); `xfcc` is its connection's.
    mutating func h2ReleaseStream(_ s: Int32) {
        let c = conns + Int(s)
        if let b = c.pointee.h2In { large.put(b) }
        c.pointee.h2In = nil
        h2ReleaseTail(s)
        c.pointee.xfcc = nil
        c.pointee.h2Out.release()
        c.pointee.h2Out = H2Source()
    }

}
