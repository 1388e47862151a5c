import CSupport
import HTTP1
import URing
#if canImport(Glibc)
import Glibc
#endif

// The transport's outbound side: a per-connection queue of segments, each with what to give
// back once it is on the wire, sent one at a time (liburing#1001: sends on one socket may
// complete out of order, so at most one is in flight).
//
//   send(i, bytes, release) ─► queued ─► in flight (short send: the rest from the same memory)
//                                              │ complete
//                                              ▼
//                              release it ─► next segment in flight, or the queue is empty:
//                                            the session's after-send step (afterDownSend,
//                                            afterUpSend) decides what comes next
//
// Ownership: the memory of a queued segment belongs to the queue until its release runs:
// a receive buffer is recycled, the connection's `out` buffer is given back to its pool, and
// `.none` memory (an upstream's forwarded head, reused for body bytes) stays with the
// connection. A failed send, or a connection that closes, releases everything still queued.

/// What to do with a segment's memory once it was sent (or dropped).
enum SendRelease: Equatable {
    /// Owned elsewhere.
    case none
    /// A provided receive buffer: recycle it.
    case recv(UInt16)
    /// The connection's `out` buffer: give it back to its pool.
    case out
}

struct SendSegment {
    var base: UnsafeRawPointer? = nil
    var count: Int32 = 0
    var release: SendRelease = .none
}

/// Two segments: the one in flight and one behind it (the copy path of a body receives the
/// next buffer while the previous one is being sent; more would only let one exchange pin
/// more receive buffers).
struct SendQueue {
    var first = SendSegment()
    var second = SendSegment()
    var count: UInt8 = 0
    /// Bytes of `first` already sent.
    var sent: Int32 = 0
    static let capacity: UInt8 = 2

    @inline(__always) var isEmpty: Bool { count == 0 }
    @inline(__always) var isFull: Bool { count == SendQueue.capacity }
}

extension ProxyEngine {
    /// Queues `n` bytes at `p` for connection `i` and starts sending if nothing is in flight.
    /// `release` says what happens to the memory once sent. The queue must have room
    /// (callers pace themselves on `sendQueue.isFull`).
    @inline(__always)
    mutating func send(_ i: Int32, _ p: UnsafeRawPointer, _ n: Int32, release: SendRelease) {
        let c = conns + Int(i)
        let seg = SendSegment(base: p, count: n, release: release)
        switch c.pointee.sendQueue.count {
        case 0: c.pointee.sendQueue.first = seg
        case 1: c.pointee.sendQueue.second = seg
        default: preconditionFailure("send queue full")
        }
        c.pointee.sendQueue.count += 1
        if !c.pointee.sendArmed { submitSend(i) }
    }

    @inline(__always)
    mutating func submitSend(_ i: Int32) {
        let c = conns + Int(i)
        if c.pointee.transport == .tls {
            tlsSubmitSend(i)
            return
        }
        if c.pointee.transport == .h2stream {
            if c.pointee.role == .downstream { h2StreamSend(i) } else { h2UpStreamSend(i) }   // Engine+HTTP2*.swift
            return
        }
        let off = Int(c.pointee.sendQueue.sent)
        let seg = c.pointee.sendQueue.first
        ring.prepSend(fd: c.pointee.fd, buffer: seg.base! + off, count: Int(seg.count) - off,
                      userData: userData(c.pointee.role == .downstream ? .downSend : .upSend, i))
        c.pointee.pendingOps += 1
        c.pointee.sendArmed = true
    }

    @inline(__always)
    mutating func release(_ i: Int32, _ r: SendRelease) {
        switch r {
        case .none: break
        case .recv(let bid): recycleRecv(bid)
        case .out: releaseOut(i)
        }
    }

    /// The segment in flight is done (sent or failed): give its memory back and take it off.
    @inline(__always)
    mutating func popSent(_ i: Int32) {
        let c = conns + Int(i)
        guard c.pointee.sendQueue.count > 0 else { return }
        release(i, c.pointee.sendQueue.first.release)
        c.pointee.sendQueue.first = c.pointee.sendQueue.second
        c.pointee.sendQueue.second = SendSegment()
        c.pointee.sendQueue.count -= 1
        c.pointee.sendQueue.sent = 0
    }

    /// Drops everything queued (a failed send, a closing connection), releasing its memory.
    @inline(__always)
    mutating func dropSendQueue(_ i: Int32) {
        while conns[Int(i)].sendQueue.count > 0 { popSent(i) }
    }

    @inline(__always)
    mutating func releaseOut(_ i: Int32) {
        let c = conns + Int(i)
        if let o = c.pointee.out {
            if c.pointee.outLarge { large.put(o) } else { small.put(o) }
            c.pointee.out = nil
            c.pointee.outLen = 0
        }
    }

    mutating func onSendComplete(_ i: Int32, result: Int32, downstream: Bool) {
        let c = conns + Int(i)
        guard result > 0 else {
            dropSendQueue(i)
            if downstream {
                downstreamGone(i)
            } else {
                upstreamFailed(i)
            }
            return
        }
        c.pointee.sendQueue.sent += result
        if downstream && c.pointee.exchange >= 0 { ex(i).pointee.stats.responseBytes &+= UInt64(result) }
        if c.pointee.sendQueue.sent < c.pointee.sendQueue.first.count {
            submitSend(i)   // short send: the rest from the same memory
            return
        }
        popSent(i)
        if !c.pointee.sendQueue.isEmpty {
            submitSend(i)
            // The body bytes received while the last send was in flight are going out now:
            // receive the next piece meanwhile.
            if downstream {
                let u = peerOf(i)
                if u >= 0 && !conns[Int(u)].closing { armBodyRecvEarly(u) }
            }
            return
        }
        if downstream {
            afterDownSend(i)
        } else {
            afterUpSend(i)
        }
    }

    /// A send to the client completed.
    mutating func afterDownSend(_ d: Int32) {
        let dc = conns + Int(d)
        if dc.pointee.h2 != nil {
            h2AfterSend(d)   // an HTTP/2 connection (Engine+HTTP2.swift)
            return
        }
        let u = peerOf(d)
        if u < 0 {
            // A local reply (or what was left to send when the upstream went away).
            if !dc.pointee.requestDone { dc.pointee.keepAlive = false }
            exchangeEnded(d)
            return
        }
        let uc = conns + Int(u)
        if uc.pointee.closing {
            closeConn(d)
            return
        }
        if dc.pointee.rx == .tunnel {
            // A side whose direction ended (a half-closed TCP pair) is not read again.
            if !uc.pointee.recvArmed && uc.pointee.spliceFlags & SpliceFlag.finished == 0 { armRecv(u) }
            if !dc.pointee.recvArmed && !uc.pointee.sendArmed && dc.pointee.spliceFlags & SpliceFlag.finished == 0 {
                armRecv(d)
            }
            tunnelShutWrite(d)   // the upstream's FIN, once its last bytes are out
            return
        }
        if uc.pointee.responseDone {
            finishExchange(d, u)
        } else if uc.pointee.accum != nil && uc.pointee.accumEnd > uc.pointee.accumStart {
            if uc.pointee.rx == .head {
                parseAccumulatedResponse(u)
            } else {
                // Body bytes kept back from the first read: forward them from the accumulator.
                replayAccumulatedBody(u)
            }
        } else if uc.pointee.rx == .body && uc.pointee.bodyRemaining >= limits.spliceMinBytes
                    && limits.spliceMinBytes > 0 && !uc.pointee.recvArmed && startSplice(from: u) {
            // The rest of a large response body goes upstream → pipe → client (Engine+Splice.swift).
        } else if !uc.pointee.recvArmed {
            armRecv(u)
        }
    }

    /// Copy path of a response body with a known length below the splice threshold: the next
    /// receive is armed while the send of the previous buffer is in flight, so the two overlap
    /// (at most two receive buffers per exchange: one being sent, one queued).
    @inline(__always)
    mutating func armBodyRecvEarly(_ u: Int32) {
        let uc = conns + Int(u)
        guard uc.pointee.rx == .body, !uc.pointee.responseDone, !uc.pointee.recvArmed,
              !uc.pointee.closing,
              limits.spliceMinBytes == 0 || uc.pointee.bodyRemaining < limits.spliceMinBytes else { return }
        armRecv(u)
    }

    /// Forwards response-body bytes that were kept in the upstream's accumulation buffer.
    mutating func replayAccumulatedBody(_ u: Int32) {
        let uc = conns + Int(u)
        let d = peerOf(u)
        let n = Int(uc.pointee.accumEnd - uc.pointee.accumStart)
        let out = large.get()
        let take = min(n, large.size)
        out.copyMemory(from: uc.pointee.accum! + Int(uc.pointee.accumStart), byteCount: take)
        consumeAccum(u, take)
        var k = take
        if uc.pointee.rx == .body {
            k = Int(min(Int64(take), uc.pointee.bodyRemaining))
            uc.pointee.bodyRemaining -= Int64(k)
            if uc.pointee.bodyRemaining == 0 { uc.pointee.responseDone = true }
        }
        let dc = conns + Int(d)
        dc.pointee.out = out
        dc.pointee.outLarge = true
        send(d, UnsafeRawPointer(out), Int32(k), release: .out)
    }

    /// A send to the upstream completed.
    mutating func afterUpSend(_ u: Int32) {
        if conns[Int(u)].h2 != nil {
            h2AfterSend(u)   // an HTTP/2 connection (Engine+HTTP2.swift)
            return
        }
        let d = peerOf(u)
        guard d >= 0 else {
            // A mirror waits for its response head; a pooled connection for its next request.
            if conns[Int(u)].rx != .pooled && !conns[Int(u)].mirror { closeConn(u) }
            return
        }
        if conns[Int(d)].rx == .tunnel {
            if !conns[Int(d)].recvArmed && conns[Int(d)].spliceFlags & SpliceFlag.finished == 0 { armRecv(d) }
            tunnelShutWrite(u)   // the client's FIN, once its last bytes are out
            return
        }
        pumpRequestBody(d, u)
    }
}
