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
//                                        .trailers: the chunked body's trailer section
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
        var settings = H2Settings()
        settings.maxConcurrentStreams = limits.http2MaxConcurrentStreams
        guard let h = H2Connection.make(inbox: h2Inbox, settings: settings) else {
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
        if conns[Int(p)].h2KaAwaiting { h2KeepaliveAnswered(p) }   // anything received: it is alive
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
            case .end:
                let s = h2SlotOf(p, e)
                if s >= 0 { h2RequestEnded(s) }
            case .trailers:
                // The request's trailers (they end it): the chunked body's trailer section.
                let s = h2SlotOf(p, e)
                if s >= 0 { h2RequestTrailers(s, e) }
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
