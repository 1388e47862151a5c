import COpenSSL
import HTTP1
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// Timeouts (DESIGN.md §3: one timer structure per worker, no syscall per timer): every
// connection and every exchange has one timer in the worker's millisecond wheel
// (TimerWheel.swift), identified by its slot index (exchanges after the connections, then
// their stage timers, then the connections' keepalive timers).
//
//   connection timer  downstream: idle keep-alive (60 s), the rest of a head (10 s, 408), or
//                     while an exchange is open its stream idle timeout (5 min, 408/reset);
//                     upstream: connect timeout, or idle in its pool (1 h);
//                     TCP-route pair: idle timeout
//   exchange timers   the route timeout (504 before the response starts, else close), and
//                     the stage timer: a fault delay, a retry back-off or a per-try timeout
//   keepalive timer   an HTTP/2 upstream connection of a cluster with http2KeepAlive: the next
//                     PING, or the wait for its answer (Engine+HTTP2Keepalive.swift)
//
// The worker loop advances the wheel every iteration (`tick`) and sleeps at most until the
// next timer is due (`waitTimeoutNs`), so a deadline fires within a millisecond or so.

extension ProxyEngine {
    @inline(__always)
    func exchangeTimer(_ x: Int32) -> Int32 { capacity + x }
    @inline(__always)
    func stageTimer(_ x: Int32) -> Int32 { 2 * capacity + x }
    @inline(__always)
    func keepaliveTimer(_ i: Int32) -> Int32 { 3 * capacity + i }

    /// Arms exchange `x`'s stage timer `ms` from now (fault delay, back-off, per-try timeout);
    /// 0 disarms it.
    @inline(__always)
    mutating func setStageTimer(_ x: Int32, ms: UInt64) {
        if ms == 0 { timers.cancel(stageTimer(x)) } else { timers.schedule(stageTimer(x), at: nowMs + ms) }
    }

    /// Arms connection `i`'s timer for `deadlineMs` (worker clock); 0 disarms it.
    @inline(__always)
    mutating func setDeadline(_ i: Int32, _ deadlineMs: UInt64) {
        if deadlineMs == 0 { timers.cancel(i) } else { timers.schedule(i, at: deadlineMs) }
    }

    /// Connection `i`'s armed deadline, 0 when none.
    @inline(__always)
    func deadline(_ i: Int32) -> UInt64 { timers.deadline(i) }

    /// Arms exchange `x`'s route timeout `ms` from now; 0 disarms it.
    @inline(__always)
    mutating func setRouteTimeout(_ x: Int32, ms: UInt64) {
        if ms == 0 { timers.cancel(exchangeTimer(x)) } else { timers.schedule(exchangeTimer(x), at: nowMs + ms) }
    }

    /// How long the loop may sleep: until the next timer is due, at most `limitNs`.
    public func waitTimeoutNs(limitNs: UInt64) -> UInt64 {
        let wake = timers.nextWakeMs(limitMs: nowMs + limitNs / 1_000_000)
        return wake <= nowMs ? 0 : min(limitNs, (wake - nowMs) * 1_000_000)
    }

    /// Fires every timer due at `nowMs` (called from `tick`).
    mutating func runTimers() {
        timers.advance(to: nowMs)
        while true {
            let id = timers.popExpired()
            if id < 0 { break }
            if id < capacity {
                connectionTimedOut(id)
            } else if id < 2 * capacity {
                routeTimedOut(id - capacity)
            } else if id < 3 * capacity {
                stageTimedOut(id - 2 * capacity)
            } else {
                h2KeepaliveTimerFired(id - 3 * capacity)
            }
        }
    }

    /// Once a second: the cached Date header.
    public mutating func sweep() {
        date.refresh()
    }

    /// Connection `i`'s deadline passed.
    mutating func connectionTimedOut(_ i: Int32) {
        let c = conns + Int(i)
        guard c.pointee.role != .free, !c.pointee.closing else { return }
        if c.pointee.spliceFlags & SpliceFlag.tcp != 0 {
            tcpIdleTimeout(i)
        } else if c.pointee.role == .downstream {
            if c.pointee.transport == .hello || (c.pointee.transport == .tls && SSL_is_init_finished(c.pointee.ssl) != 1) {
                statListenerTLS(i, ListenerStats.connectionErrors)
                closeConn(i)   // a ClientHello or handshake that stalled: closed, no bytes
            } else if c.pointee.h2 != nil {
                h2GoAway(i)   // no stream for the idle timeout: GOAWAY, then close
            } else if c.pointee.exchange >= 0 {
                streamIdleTimedOut(c.pointee.exchange)
            } else if c.pointee.accum != nil && c.pointee.accumEnd > c.pointee.accumStart && !c.pointee.sendArmed {
                // Part of a head, then silence: 408 (header timeout).
                c.pointee.rx = .none
                sendLocalReply(i, status: 408, body: nil, close: true)
            } else if !c.pointee.sendArmed {
                closeConn(i)   // idle keep-alive timeout
            }
        } else if c.pointee.h2 != nil {
            // An HTTP/2 upstream connection: connect timeout, or idle with no stream.
            if !c.pointee.connected { stats.add(WorkerSlotField.upstreamConnectFailures) }
            if !c.pointee.connected || c.pointee.h2Streams == 0 { h2UpConnectionLost(i) }
        } else if !c.pointee.connected {
            stats.add(WorkerSlotField.upstreamConnectFailures)
            upstreamFailed(i)   // connect timeout
        } else if c.pointee.rx == .pooled || c.pointee.mirror {
            closeConn(i)   // idle in its pool for upstreamIdleTimeoutMs, or a mirror gave up
        }
    }

    /// Bytes moved on one of exchange `x`'s connections: push its stream idle timeout back
    /// (the downstream's connection timer; a store in the wheel when it only moves later).
    /// TCP-route pairs keep their own idle timeout (Engine+Splice.swift).
    @inline(__always)
    mutating func streamActive(_ x: Int32) {
        let d = exchanges.slots[Int(x)].down
        guard d >= 0 else { return }
        if conns[Int(d)].spliceFlags & SpliceFlag.tcp != 0 {
            // A TLS-terminated TCP pair copies instead of splicing: its traffic is seen here.
            if conns[Int(d)].transport == .tls { timers.schedule(d, at: nowMs + limits.tcpIdleTimeoutMs) }
            return
        }
        guard limits.streamIdleTimeoutMs > 0 else { return }
        timers.schedule(d, at: nowMs + limits.streamIdleTimeoutMs)
    }

    /// No byte moved on exchange `x` for streamIdleTimeoutMs (a stalled request body, a silent
    /// upstream, a client that stopped reading): Envoy answers 408 when no response started,
    /// else resets; flag SI either way.
    mutating func streamIdleTimedOut(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        let d = e.pointee.down
        guard d >= 0, !conns[Int(d)].closing, conns[Int(d)].spliceFlags & SpliceFlag.tcp == 0 else { return }
        e.pointee.stats.flags |= ResponseFlags.si
        let u = e.pointee.up
        if u >= 0 { closeConn(u) }
        setStageTimer(x, ms: 0)
        releasePending(x)
        if e.pointee.responseStarted || conns[Int(d)].sendArmed {
            closeConn(d)
        } else {
            setRouteTimeout(x, ms: 0)
            sendLocalReply(d, status: 408, body: LocalReplyBody.streamTimeout, close: true)
        }
    }

    /// Exchange `x`'s stage timer fired.
    mutating func stageTimedOut(_ x: Int32) {
        switch exchanges.slots[Int(x)].stage {
        case .delayed: resumeAfterDelay(x)
        case .backoff: retryNow(x)
        case .upstream: perTryTimedOut(x)
        case .routing: break
        }
    }

    /// Exchange `x`'s route timeout passed: 504 if the response has not started, else the
    /// client connection closes (Envoy: UT).
    mutating func routeTimedOut(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        let d = e.pointee.down
        let u = e.pointee.up
        guard d >= 0, !conns[Int(d)].closing else { return }
        if u < 0 {
            // Between two tries (back-off): the route timeout spans all of them.
            guard e.pointee.stage == .backoff else { return }
            setStageTimer(x, ms: 0)
            e.pointee.stage = .routing
            failForward(x, status: 504, flag: ResponseFlags.ut, body: LocalReplyBody.upstreamRequestTimeout)
            return
        }
        e.pointee.stats.flags |= ResponseFlags.ut
        closeConn(u)
        if e.pointee.responseStarted || conns[Int(d)].sendArmed {
            closeConn(d)
        } else {
            sendLocalReply(d, status: 504, body: LocalReplyBody.upstreamRequestTimeout, close: !conns[Int(d)].requestDone)
        }
    }

    /// SIGTERM: stop accepting, close idle connections; busy ones close after their response.
    public mutating func beginDrain() {
        guard !draining else { return }
        draining = true
        for l in 0..<listenerCount where listenerFds[l] >= 0 {
            ring.prepCancel(target: packUserData(.accept, Int32(l), 0), userData: packUserData(.ignore, 0, 0))
            // The supervisor keeps its copy of the socket: closing ours resets nothing.
            close(listenerFds[l])
            listenerFds[l] = -1
        }
        var i: Int32 = 0
        while i < highWater {
            let c = conns + Int(i)
            if c.pointee.h2 != nil && !c.pointee.closing {
                h2GoAway(i)   // the streams it has finish; no new ones
            } else if c.pointee.role == .downstream && !c.pointee.closing && c.pointee.transport != .h2stream {
                c.pointee.keepAlive = false
                if c.pointee.rx == .head && c.pointee.exchange < 0 && !c.pointee.sendArmed
                    && (c.pointee.accum == nil || c.pointee.accumEnd == c.pointee.accumStart) {
                    closeConn(i)
                }
            }
            i += 1
        }
    }
}
