import HTTP1
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// Timeouts from one sweep a second over the slab (DESIGN.md §3: one timer structure per
// worker, no syscall per timer). A deadline fires between 0 and 1 s late.

extension ProxyEngine {
    public mutating func sweep() {
        date.refresh()
        var i: Int32 = 0
        while i < highWater {
            let c = conns + Int(i)
            if c.pointee.role != .free && !c.pointee.closing {
                if c.pointee.deadlineMs != 0 && nowMs >= c.pointee.deadlineMs {
                    c.pointee.deadlineMs = 0
                    if c.pointee.spliceFlags & SpliceFlag.tcp != 0 {
                        tcpIdleTimeout(i)
                    } else if c.pointee.role == .downstream {
                        if c.pointee.accum != nil && c.pointee.accumEnd > c.pointee.accumStart && !c.pointee.sendArmed {
                            // Part of a head, then silence: 408 (header timeout).
                            c.pointee.rx = .none
                            sendLocalReply(i, status: 408, body: nil, close: true)
                        } else if c.pointee.exchange < 0 && !c.pointee.sendArmed {
                            closeConn(i)   // idle keep-alive timeout
                        }
                    } else if !c.pointee.connected {
                        stats.add(WorkerSlotField.upstreamConnectFailures)
                        upstreamFailed(i)   // connect timeout
                    }
                }
                if c.pointee.role == .downstream && c.pointee.exchange >= 0 && ex(i).pointee.routeDeadlineMs != 0
                    && nowMs >= ex(i).pointee.routeDeadlineMs {
                    let e = ex(i)
                    e.pointee.routeDeadlineMs = 0
                    let u = peerOf(i)
                    if u >= 0 {
                        e.pointee.stats.flags |= ResponseFlags.ut
                        let started = e.pointee.responseStarted
                        closeConn(u)
                        if started || c.pointee.sendArmed {
                            closeConn(i)
                        } else {
                            sendLocalReply(i, status: 504, body: LocalReplyBody.upstreamRequestTimeout, close: !c.pointee.requestDone)
                        }
                    }
                }
            }
            i += 1
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
            if c.pointee.role == .downstream && !c.pointee.closing {
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
