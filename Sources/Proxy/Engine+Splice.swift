import CSupport
import SharedMemory
import URing
#if canImport(Glibc)
import Glibc
#endif

// Zero-copy forwarding: socket → pipe → socket with splice(2), for TCP routes (both
// directions, Engine+TCP.swift) and for HTTP bodies with a known length of at least
// `ProxyLimits.spliceMinBytes` (request bodies from pumpRequestBody, response bodies from
// afterDownSend).
//
// How it is driven (measured on Linux 6.18, perf/README.md "Splice"): IORING_OP_SPLICE always
// runs on io_uring's worker threads (a hand-off per call, and runs stalled now and then), so the
// ring only polls (one-shot POLL_ADD) and the loop thread itself calls non-blocking splice(2)
// when a socket is ready. Everything below runs synchronously on the loop thread, so splice-in
// and splice-out never overlap on one pipe.
//
// One direction = a source connection S (its `pipe`, its `bodyRemaining` bytes still to read;
// Int64.max for TCP) and the destination D = peerOf(S), the other side of their exchange:
//
//        POLLIN(S) ─► pump ─► splice S→pipe (until the socket is drained, the pipe is full or
//          ▲           │       bodyRemaining hits 0) then pipe→D (until empty or EAGAIN)
//          │           ├─ pipe empty, source open ─────────► arm POLLIN(S)
//          │           ├─ pipe not empty (D full) ─────────► arm POLLOUT(D) ─► pump
//          └───────────┘  source done and pipe empty ───────► finished
//
// At most one poll is armed per direction: POLLIN only with an empty pipe, POLLOUT only with a
// non-empty one (a POLLIN armed while the pipe is full would fire at once and spin).
// Finished: TCP passes the FIN on (shutdown(D, SHUT_WR)) and closes the pair once both
// directions finished; HTTP completes the body (request done / response done → next request).
// Errors: the failing side is treated like a failed receive or send on the copy path.

enum SpliceFlag {
    /// The direction whose source is this connection is splicing.
    static let active: UInt8 = 0x01
    /// Its source hit EOF (TCP) or the end of the body (HTTP): nothing more to read.
    static let sourceDone: UInt8 = 0x02
    /// POLLIN armed on this socket (it is the source of a direction).
    static let pollInArmed: UInt8 = 0x04
    /// POLLOUT armed on this socket (it is the destination of a direction).
    static let pollOutArmed: UInt8 = 0x08
    /// The connection is one side of a TCP-route pair (no HTTP on it).
    static let tcp: UInt8 = 0x10
    /// TCP: the direction from this connection is over and its FIN was passed on (copied
    /// through TLS: its FIN is on its way, see `finPending` on the other side).
    static let finished: UInt8 = 0x20
    /// TCP copied through TLS: the other side's direction ended; this connection's write side
    /// shuts (close_notify first, for TLS) once nothing is left to send to it.
    static let finPending: UInt8 = 0x40
    /// TCP: the pair is a tunnel of copies through the TLS transport (connected, handshakes
    /// done): EOFs half-close it as the splice path does (Engine+TCP.swift).
    static let copied: UInt8 = 0x80
}

extension ProxyEngine {
    /// Starts splicing `bodyRemaining` bytes from connection `s` to its peer. Nothing may read
    /// `s` or write the peer meanwhile (no receive armed on `s`, no send in flight on the peer).
    /// False when no pipe is available (the caller falls back to copying). May finish, fail
    /// and close connections synchronously.
    mutating func startSplice(from s: Int32) -> Bool {
        // The kernel cannot encrypt or decrypt (no kTLS here): TLS bodies take the copy path.
        let peer = peerOf(s)
        guard conns[Int(s)].transport == .plain, peer < 0 || conns[Int(peer)].transport == .plain else { return false }
        let p = pipes.acquire()
        guard p >= 0 else { return false }
        let sc = conns + Int(s)
        if sc.pointee.role == .downstream && sc.pointee.exchange >= 0 {
            releaseRequestCopy(sc.pointee.exchange)   // a body this large is neither mirrored nor retried
        }
        sc.pointee.pipe = p
        sc.pointee.spliceFlags = (sc.pointee.spliceFlags & ~(SpliceFlag.sourceDone | SpliceFlag.finished)) | SpliceFlag.active
        pumpSplice(s)
        return true
    }

    /// A poll armed by the splice path completed on connection `i`.
    mutating func onSplicePoll(_ i: Int32, out: Bool, result: Int32) {
        let c = conns + Int(i)
        c.pointee.spliceFlags &= ~(out ? SpliceFlag.pollOutArmed : SpliceFlag.pollInArmed)
        if c.pointee.closing {
            finalizeIfIdle(i)
            return
        }
        // POLLIN: `i` is the source. POLLOUT: `i` is the destination; its peer the source.
        let s = out ? peerOf(i) : i
        guard s >= 0, conns[Int(s)].spliceFlags & SpliceFlag.active != 0 else { return }
        pumpSplice(s)
    }

    /// Moves what can be moved now in the direction from `s`, then arms the one poll it waits
    /// for, or finishes the direction.
    mutating func pumpSplice(_ s: Int32) {
        let sc = conns + Int(s)
        let d = peerOf(s)
        guard d >= 0, !sc.pointee.closing, sc.pointee.pipe >= 0 else {
            sc.pointee.spliceFlags &= ~SpliceFlag.active   // the other side went away
            return
        }
        let dc = conns + Int(d)
        let pe = pipes.entries + Int(sc.pointee.pipe)
        let flags = ING_SPLICE_F_MOVE | ING_SPLICE_F_NONBLOCK
        var inBlocked = false
        var outBlocked = false
        var moved: Int64 = 0
        var readIn: Int64 = 0
        while true {
            var progress = false
            if sc.pointee.spliceFlags & SpliceFlag.sourceDone == 0 && !inBlocked && pe.pointee.bytes < pe.pointee.capacity {
                let want = Int(min(Int64(pe.pointee.capacity - pe.pointee.bytes), sc.pointee.bodyRemaining))
                let n = ing_splice(sc.pointee.fd, pe.pointee.writeFd, want, flags)
                if n > 0 {
                    pe.pointee.bytes += Int32(n)
                    sc.pointee.bodyRemaining -= Int64(n)
                    readIn += Int64(n)
                    progress = true
                    if sc.pointee.bodyRemaining == 0 {
                        sc.pointee.spliceFlags |= SpliceFlag.sourceDone
                    } else if n < want {
                        // A non-blocking TCP splice returns what was queued: the socket is
                        // drained, so skip the EAGAIN a second call would return.
                        inBlocked = true
                    }
                } else if n == 0 {
                    if sc.pointee.spliceFlags & SpliceFlag.tcp == 0 {
                        spliceFailed(s)   // the sender closed in the middle of a body
                        return
                    }
                    sc.pointee.spliceFlags |= SpliceFlag.sourceDone
                } else if n == -Int(EAGAIN) {
                    inBlocked = true
                } else {
                    spliceFailed(s)
                    return
                }
            }
            if pe.pointee.bytes > 0 && !outBlocked {
                let m = ing_splice(pe.pointee.readFd, dc.pointee.fd, Int(pe.pointee.bytes), flags)
                if m > 0 {
                    pe.pointee.bytes -= Int32(m)
                    moved += Int64(m)
                    progress = true
                } else if m == -Int(EAGAIN) {
                    outBlocked = true
                } else {
                    spliceFailed(d)
                    return
                }
            }
            if !progress || (inBlocked && pe.pointee.bytes == 0) { break }
        }
        if (readIn | moved) != 0 { statSplicedBytes(s, d, read: readIn, written: moved) }
        if moved > 0 {
            splicedBytes &+= UInt64(moved)
            if sc.pointee.spliceFlags & SpliceFlag.tcp != 0 {
                setDeadline(sc.pointee.role == .downstream ? s : d, nowMs + limits.tcpIdleTimeoutMs)
            }
        }
        if pe.pointee.bytes > 0 {
            armSplicePoll(d, out: true)
        } else if sc.pointee.spliceFlags & SpliceFlag.sourceDone == 0 {
            armSplicePoll(s, out: false)
        } else {
            spliceFinished(s)
        }
    }

    @inline(__always)
    mutating func armSplicePoll(_ i: Int32, out: Bool) {
        let c = conns + Int(i)
        let bit = out ? SpliceFlag.pollOutArmed : SpliceFlag.pollInArmed
        guard c.pointee.spliceFlags & bit == 0 else { return }
        ring.prepPoll(fd: c.pointee.fd, events: UInt32(out ? POLLOUT : POLLIN),
                      userData: userData(out ? .pollOut : .pollIn, i))
        c.pointee.pendingOps += 1
        c.pointee.spliceFlags |= bit
    }

    /// The direction from `s` moved everything: give its (empty) pipe back and go on.
    mutating func spliceFinished(_ s: Int32) {
        let sc = conns + Int(s)
        let d = peerOf(s)
        releasePipe(s)
        sc.pointee.spliceFlags &= ~(SpliceFlag.active | SpliceFlag.sourceDone)
        if sc.pointee.spliceFlags & SpliceFlag.tcp != 0 {
            // Pass the FIN on; the other direction keeps flowing until it finishes too.
            sc.pointee.spliceFlags |= SpliceFlag.finished
            shutdown(conns[Int(d)].fd, Int32(SHUT_WR))
            if conns[Int(d)].spliceFlags & SpliceFlag.finished != 0 { closeTCPPair(s) }
            return
        }
        if sc.pointee.role == .upstream {
            sc.pointee.responseDone = true
            finishExchange(d, s)
        } else {
            requestBodyDone(s)
        }
    }

    /// A splice on connection `failing` (as source or destination) failed: like a failed
    /// receive or send there on the copy path.
    mutating func spliceFailed(_ failing: Int32) {
        if conns[Int(failing)].spliceFlags & SpliceFlag.tcp != 0 {
            closeTCPPair(failing)
        } else if conns[Int(failing)].role == .downstream {
            downstreamGone(failing)
        } else {
            upstreamFailed(failing)
        }
    }

    /// Gives connection `i`'s pipe back (closed instead of pooled when bytes are left in it).
    @inline(__always)
    mutating func releasePipe(_ i: Int32) {
        pipes.release(conns[Int(i)].pipe)
        conns[Int(i)].pipe = -1
    }
}

extension ProxyLimits {
    /// Tuning knobs read once at worker start (perf/ and tests use them).
    mutating func applyEnvironment() {
        if let v = getenv("INGRESSD_SPLICE_MIN_BYTES"), let n = Int64(String(cString: v)), n >= 0 {
            spliceMinBytes = n
        }
        if let v = getenv("INGRESSD_TCP_IDLE_TIMEOUT_MS"), let n = UInt64(String(cString: v)), n > 0 {
            tcpIdleTimeoutMs = n
        }
        // `receiveBuffers` (a power of two): tests of an exhausted buffer ring.
        if let v = getenv("INGRESSD_RECEIVE_BUFFERS"), let n = Int(String(cString: v)),
           n >= 2, n <= 32_768, n & (n - 1) == 0 {
            receiveBuffers = n
        }
        if let v = getenv("INGRESSD_UPSTREAM_IDLE_TIMEOUT_MS"), let n = UInt64(String(cString: v)), n > 0 {
            upstreamIdleTimeoutMs = n
        }
        if let v = getenv("INGRESSD_MAX_LARGE_HEAD_BUFFERS"), let n = Int(String(cString: v)), n >= 0 {
            maxLargeHeadBuffers = n
        }
        if let v = getenv("INGRESSD_UPSTREAM_IDLE_CAP"), let n = Int32(String(cString: v)), n >= 0 {
            maxIdlePerPool = n
        }
    }
}
