import CSupport
import SharedMemory
import URing
#if canImport(Glibc)
import Glibc
#endif

// Closing: a slot is finalized (fd closed, memory given back, slot reused) only after every
// operation it has in flight completed, so no completion can reach a reused slot.

extension ProxyEngine {
    /// Starts closing connection `i`: in-flight operations are woken (shutdown, or a cancel
    /// for a pending connect) and the slot is finalized when the last one completes.
    mutating func closeConn(_ i: Int32) {
        let c = conns + Int(i)
        guard c.pointee.role != .free, !c.pointee.closing else { return }
        let x = c.pointee.exchange
        if c.pointee.role == .downstream && x >= 0 {
            let e = exchanges.slots + Int(x)
            if c.pointee.spliceFlags & SpliceFlag.tcp != 0 {
                statTCPClosed(x)
            } else if e.pointee.stats.startNs != 0 {
                if e.pointee.stats.status == 0 && e.pointee.stats.flags == 0 { e.pointee.stats.flags = ResponseFlags.dc }
                statFinish(x)   // unanswered or cut short: recorded once, here
            }
        }
        if c.pointee.transport == .tls { tlsSendCloseNotify(i) }
        if c.pointee.transport == .h2stream {
            if c.pointee.role == .downstream { h2StreamClosing(i) } else { h2UpStreamClosing(i) }   // Engine+HTTP2*.swift
        } else if c.pointee.h2 != nil {
            c.pointee.closing = true
            h2ConnectionClosing(i)   // its streams first
        }
        c.pointee.closing = true
        if c.pointee.role == .upstream { unlinkIdle(i) }
        // Leave the exchange: the other side no longer acts on this connection.
        detach(i)
        if c.pointee.pendingOps > 0 {
            if c.pointee.role == .upstream && !c.pointee.connected {
                ring.prepCancel(target: userData(.upConnect, i), userData: packUserData(.ignore, i, 0))
            }
            if c.pointee.fd >= 0 { shutdown(c.pointee.fd, Int32(SHUT_RDWR)) }
        }
        finalizeIfIdle(i)
    }

    mutating func finalizeIfIdle(_ i: Int32) {
        let c = conns + Int(i)
        guard c.pointee.closing, c.pointee.pendingOps == 0 else { return }
        if c.pointee.fd >= 0 { close(c.pointee.fd) }
        dropSendQueue(i)   // defensive: segments are queued only while a send is in flight
        releaseOut(i)
        if c.pointee.pipe >= 0 { releasePipe(i) }
        releaseAccum(i)
        if c.pointee.transport == .h2stream {
            h2ReleaseStream(i)
            if c.pointee.role == .upstream { h2UpReleaseStream(i) }
        } else if c.pointee.transport != .plain || c.pointee.ssl != nil {
            releaseTLS(i)
        }
        if c.pointee.h2 != nil { h2ReleaseConnection(i) }
        if c.pointee.role == .upstream && c.pointee.transport != .h2stream { statUpstreamClosed(i) }
        if c.pointee.role == .downstream && c.pointee.transport != .h2stream {
            downstreamCount -= 1
            stats.set(WorkerSlotField.connectionsActive, UInt64(downstreamCount))
        }
        freeSlot(i)
    }

    @inline(__always)
    mutating func freeSlot(_ i: Int32) {
        conns[Int(i)].role = .free
        conns[Int(i)].fd = -1
        conns[Int(i)].closing = false
        freeSlots[Int(freeCount)] = i
        freeCount += 1
    }
}
