import CSupport
import HTTP1
import URing
#if canImport(Glibc)
import Glibc
#endif

// Sends: at most one in flight per socket (liburing#1001: sends may complete out of order).

extension ProxyEngine {
    /// Starts sending `n` bytes at `p` on connection `i`. The memory belongs to the send until
    /// it completes: `out` (released per `sendReleasesOut`) or the receive buffer recorded in
    /// `heldBuffer` (recycled on completion).
    @inline(__always)
    mutating func startSend(_ i: Int32, _ p: UnsafeRawPointer, _ n: Int32) {
        let c = conns + Int(i)
        assert(!c.pointee.sendArmed, "one send in flight per socket")
        c.pointee.seg0 = p
        c.pointee.seg0Len = n
        c.pointee.sendOffset = 0
        submitSend(i)
    }

    @inline(__always)
    mutating func submitSend(_ i: Int32) {
        let c = conns + Int(i)
        let off = Int(c.pointee.sendOffset)
        ring.prepSend(fd: c.pointee.fd, buffer: c.pointee.seg0! + off, count: Int(c.pointee.seg0Len) - off,
                      userData: userData(c.pointee.role == .downstream ? .downSend : .upSend, i))
        c.pointee.pendingOps += 1
        c.pointee.sendArmed = true
    }

    /// Gives back what the finished (or failed) send was reading from.
    @inline(__always)
    mutating func releaseSendResources(_ i: Int32) {
        let c = conns + Int(i)
        if c.pointee.heldBuffer >= 0 {
            rx.recycle(UInt16(c.pointee.heldBuffer))
            c.pointee.heldBuffer = -1
        }
        if c.pointee.sendReleasesOut {
            c.pointee.sendReleasesOut = false
            releaseOut(i)
        }
        c.pointee.seg0 = nil
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
            dropQueued(i)
            releaseSendResources(i)
            if downstream {
                downstreamGone(i)
            } else {
                upstreamFailed(i)
            }
            return
        }
        c.pointee.sendOffset += result
        if downstream && c.pointee.exchange >= 0 { ex(i).pointee.stats.responseBytes &+= UInt64(result) }
        if c.pointee.sendOffset < c.pointee.seg0Len {
            submitSend(i)   // short send: the rest from the same memory
            return
        }
        releaseSendResources(i)
        if downstream {
            afterDownSend(i)
        } else {
            afterUpSend(i)
        }
    }

    /// A send to the client completed.
    mutating func afterDownSend(_ d: Int32) {
        let dc = conns + Int(d)
        let u = peerOf(d)
        if u < 0 {
            // A local reply (or what was left to send when the upstream went away).
            dropQueued(d)
            if !dc.pointee.requestDone { dc.pointee.keepAlive = false }
            exchangeEnded(d)
            return
        }
        let uc = conns + Int(u)
        if uc.pointee.closing {
            dropQueued(d)
            closeConn(d)
            return
        }
        if dc.pointee.queuedBuffer >= 0 {
            // The body bytes received while the last send was in flight.
            let bid = dc.pointee.queuedBuffer
            dc.pointee.queuedBuffer = -1
            dc.pointee.heldBuffer = bid
            startSend(d, UnsafeRawPointer(rx.buffer(UInt16(bid))), dc.pointee.queuedLen)
            armBodyRecvEarly(u)
            return
        }
        if dc.pointee.rx == .tunnel {
            if !uc.pointee.recvArmed { armRecv(u) }
            if !dc.pointee.recvArmed && !uc.pointee.sendArmed { armRecv(d) }
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

    /// A queued body buffer of connection `i` that will not be sent (the send failed or the
    /// connection is closing).
    @inline(__always)
    mutating func dropQueued(_ i: Int32) {
        let c = conns + Int(i)
        if c.pointee.queuedBuffer >= 0 {
            rx.recycle(UInt16(c.pointee.queuedBuffer))
            c.pointee.queuedBuffer = -1
        }
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
        dc.pointee.sendReleasesOut = true
        startSend(d, UnsafeRawPointer(out), Int32(k))
    }

    /// A send to the upstream completed.
    mutating func afterUpSend(_ u: Int32) {
        let d = peerOf(u)
        guard d >= 0 else {
            if conns[Int(u)].rx != .pooled { closeConn(u) }
            return
        }
        if conns[Int(d)].rx == .tunnel {
            if !conns[Int(d)].recvArmed { armRecv(d) }
            return
        }
        pumpRequestBody(d, u)
    }
}
