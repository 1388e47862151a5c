import HTTP2

// DestinationRule `connectionPool.http.http2KeepAlive` (Envoy's cluster
// `http2_protocol_options.connection_keepalive`): each HTTP/2 connection to an upstream of such
// a cluster sends a PING every `interval` (plus up to 15 % jitter, as Envoy's default
// interval_jitter), and when nothing arrives within `timeout` of one — no PING ACK, no other
// frame — the connection is lost: its streams fail as a reset would (503 UC, or a retry), and
// the next request opens a new one. Clusters without it send no PING.
//
// One timer per connection slot (`keepaliveTimer`, a fourth range of the wheel's ids), so it
// costs no allocation and leaves the connection timer to the connect and idle timeouts:
//
//   connected ─► armed at interval (+jitter)
//   fires, not awaiting ─► PING queued (flushed at the end of the iteration), awaiting,
//                          armed at timeout
//   bytes received while awaiting ─► not awaiting, armed at interval (+jitter)
//   fires, awaiting ─► h2UpConnectionLost
//   slot reused (allocSlot) ─► cancelled; a timer of a closed connection finds no keepalive

extension ProxyEngine {
    /// Upstream connection `p` is up: its first PING after the interval (no-op without
    /// keepalive).
    mutating func h2KeepaliveStart(_ p: Int32) {
        guard conns[Int(p)].h2KaIntervalMs > 0 else { return }
        conns[Int(p)].h2KaAwaiting = false
        h2KeepaliveArmInterval(p)
    }

    @inline(__always)
    mutating func h2KeepaliveArmInterval(_ p: Int32) {
        let interval = UInt64(conns[Int(p)].h2KaIntervalMs)
        let jitter = nextRandom() % (interval * 15 / 100 + 1)
        timers.schedule(keepaliveTimer(p), at: nowMs + interval + jitter)
    }

    /// Bytes arrived on upstream connection `p` while a PING waited for its answer.
    @inline(__always)
    mutating func h2KeepaliveAnswered(_ p: Int32) {
        conns[Int(p)].h2KaAwaiting = false
        h2KeepaliveArmInterval(p)
    }

    /// Connection `i`'s keepalive timer fired: send the next PING, or (one is unanswered past
    /// the timeout) the connection is lost.
    mutating func h2KeepaliveTimerFired(_ i: Int32) {
        let c = conns + Int(i)
        guard c.pointee.role == .upstream, !c.pointee.closing, c.pointee.connected,
              c.pointee.h2KaIntervalMs > 0, let h = c.pointee.h2 else { return }
        if c.pointee.h2KaAwaiting {
            h2UpConnectionLost(i)
            return
        }
        guard h.pointee.ping() else {
            h2UpConnectionLost(i)   // nghttp2 cannot queue it: the session is over
            return
        }
        c.pointee.h2KaAwaiting = true
        timers.schedule(keepaliveTimer(i), at: nowMs + UInt64(c.pointee.h2KaTimeoutMs))
        h2ScheduleFlush(i)
    }
}
