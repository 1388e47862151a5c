import COpenSSL
import CSupport
import RouteTable
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// TCP routes (VirtualService tcp[] on TCP/MONGO Gateway servers): each accepted connection
// takes the listener's first TCP route, a cluster by weight and an endpoint round-robin, gets
// its own upstream connection (never pooled) and is then spliced both ways
// (Engine+Splice.swift) until both directions finished, either side fails, or the pair is idle
// for `tcpIdleTimeoutMs`.
//
//   accept ─► route/cluster/endpoint ─► connect ─► splice ⇄ ─► both FINs passed on ─► close
//      └── no route, no cluster, no healthy endpoint, connect failure or timeout ─► close client
//
// There is no HTTP on these connections: a failure closes the client (Envoy tcp_proxy does the
// same; there is no 503 to send).
//
// When either side speaks TLS through ingressd (a terminating TLS server's tcp route, or a
// cluster with DestinationRule `tls`, whose handshake completes before `tcpConnected`), the
// pair is a tunnel of copies through the TLS transport instead: the kernel cannot splice
// bytes it would have to encrypt or decrypt (no kTLS). It counts its bytes as it copies them
// (`statTunnelBytes`) and half-closes as a spliced pair does: an EOF or a close_notify from one
// side ends that direction and is passed on to the other side once what is left to send there
// is out (a TLS side gets close_notify, then shutdown(SHUT_WR)); the other direction flows on
// until it ends too, and then both close.
//
//   EOF from S ─► S finished, D finPending ─► D's sends drained ─► [SSL_shutdown ─► close_notify
//   sent] ─► shutdown(D, SHUT_WR) ─► both directions finished and passed on ─► close the pair

extension ProxyEngine {
    /// Whether the table routes `port` as opaque TCP. Linear in the listener count (a handful).
    func isTCPListener(_ port: UInt16) -> Bool {
        guard let r = table.reader else { return false }
        let l = r.listener(port: port)
        return l >= 0 && r.listenerProtocol(l) == .tcp
    }

    /// Routes a connection accepted on a TCP listener and starts its upstream connect.
    mutating func startTCPRoute(_ d: Int32) {
        guard let reader = table.reader else {
            startTCPRoute(d, cluster: -1, flags: ResponseFlags.nr)
            return
        }
        let routes = reader.listenerTCPRoutes(reader.listener(port: conns[Int(d)].listenerPort))
        guard !routes.isEmpty else {
            startTCPRoute(d, cluster: -1, flags: ResponseFlags.nr)
            return
        }
        startTCPRoute(d, cluster: reader.pickTCPCluster(route: routes.lowerBound, random: UInt32(truncatingIfNeeded: nextRandom())))
    }

    /// Starts the upstream connect of a TCP-route (or TLS passthrough) connection to `cluster`
    /// (-1: none, the connection closes with `flags`, NC by default). Bytes already read from
    /// the client (a ClientHello) stay in its accum and go upstream first (`tcpConnected`).
    mutating func startTCPRoute(_ d: Int32, cluster: Int32, flags: UInt16 = ResponseFlags.nc) {
        let dc = conns + Int(d)
        dc.pointee.spliceFlags = SpliceFlag.tcp
        dc.pointee.rx = .tunnel
        dc.pointee.keepAlive = false
        setDeadline(d, 0)   // the upstream's connect timeout covers the connect
        let x = openExchange(d)   // one exchange for the connection pair
        guard let reader = table.reader else {
            statTCPOpened(x, cluster: -1, flags: ResponseFlags.nr)
            closeConn(d)
            return
        }
        guard cluster >= 0 else {
            statTCPOpened(x, cluster: -1, flags: flags)
            closeConn(d)
            return
        }
        guard var ep = chooseEndpoint(reader, cluster: cluster) else {
            statTCPOpened(x, cluster: cluster, flags: ResponseFlags.uh)
            closeConn(d)
            return
        }
        statTCPOpened(x, cluster: cluster)
        ep.pool = -1   // a TCP-route upstream belongs to its client connection only
        ep.tcp = true   // tcp.maxConnections: no waiting, UO (CircuitBreakers.swift)
        let u = acquireUpstream(ep, for: x)
        guard u >= 0 else {
            exchanges.slots[Int(x)].stats.flags = ResponseFlags.uo
            closeConn(d)
            return
        }
        let uc = conns + Int(u)
        uc.pointee.cxRecord = exchanges.slots[Int(x)].stats.record   // upstream_cx_* of the cluster
        uc.pointee.spliceFlags = SpliceFlag.tcp
        uc.pointee.rx = .tunnel
        uc.pointee.reusable = false
        attachUpstream(x, u)
    }

    /// The upstream of a TCP-route pair connected: splice both ways.
    mutating func tcpConnected(_ d: Int32, _ u: Int32) {
        if !sendPrefix(d, u) {
            closeTCPPair(u)
            return
        }
        if conns[Int(d)].transport == .tls || conns[Int(u)].transport == .tls {
            // TLS terminated here, or originated to the upstream (DestinationRule tls): the
            // kernel cannot splice plaintext it never sees (no kTLS), so the pair is a tunnel
            // of copies (one buffer in flight per direction, as an Upgrade's) whose idle
            // timeout every completion pushes back (`streamActive`).
            setDeadline(d, nowMs + limits.tcpIdleTimeoutMs)
            conns[Int(d)].spliceFlags |= SpliceFlag.copied
            conns[Int(u)].spliceFlags |= SpliceFlag.copied
            armRecv(d)
            armRecv(u)
            return
        }
        let p1 = pipes.acquire()
        let p2 = p1 >= 0 ? pipes.acquire() : -1
        guard p2 >= 0 else {
            if p1 >= 0 { pipes.release(p1) }
            closeTCPPair(u)
            return
        }
        let dc = conns + Int(d)
        let uc = conns + Int(u)
        dc.pointee.pipe = p1
        uc.pointee.pipe = p2
        dc.pointee.bodyRemaining = .max
        uc.pointee.bodyRemaining = .max
        dc.pointee.spliceFlags |= SpliceFlag.active
        uc.pointee.spliceFlags |= SpliceFlag.active
        setDeadline(d, nowMs + limits.tcpIdleTimeoutMs)
        pumpSplice(d)
        if !uc.pointee.closing && uc.pointee.spliceFlags & SpliceFlag.active != 0 { pumpSplice(u) }
    }

    /// TLS passthrough: the ClientHello read to find the SNI goes to the upstream before any
    /// spliced byte. A fresh connection's socket buffer takes it whole (at most
    /// ClientHello.maxBytes), so one non-blocking send(2) suffices; a short one fails the pair.
    /// To a TLS upstream (a passthrough route to a cluster with DestinationRule tls) it is
    /// written into the upstream's TLS session (a memory BIO takes it whole) and flushed.
    mutating func sendPrefix(_ d: Int32, _ u: Int32) -> Bool {
        let dc = conns + Int(d)
        guard let acc = dc.pointee.accum, dc.pointee.accumEnd > dc.pointee.accumStart else { return true }
        let n = Int(dc.pointee.accumEnd - dc.pointee.accumStart)
        var sent = -1
        if conns[Int(u)].transport == .tls, let ssl = conns[Int(u)].ssl {
            sent = Int(SSL_write(ssl, acc + Int(dc.pointee.accumStart), Int32(n)))
            if sent == n { tlsFlush(u) } else { ERR_clear_error() }
        } else {
            sent = Glibc.send(conns[Int(u)].fd, acc + Int(dc.pointee.accumStart), n, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
        }
        releaseAccum(d)
        if sent == n, dc.pointee.exchange >= 0 {
            exchanges.slots[Int(dc.pointee.exchange)].stats.requestBytes &+= UInt64(n)
        }
        return sent == n
    }

    // MARK: half-close through the TLS transport

    /// Whether connection `i` is one side of a TCP-route pair copying through TLS (both sides
    /// up): its EOF half-closes the pair (`tunnelSourceEnded`) instead of closing it.
    @inline(__always)
    func copiesTCP(_ i: Int32) -> Bool {
        conns[Int(i)].spliceFlags & SpliceFlag.copied != 0
    }

    /// Connection `s` of a copying TCP pair ended its direction (EOF, or a TLS close_notify):
    /// nothing more is read from it, and its FIN goes on to the other side.
    mutating func tunnelSourceEnded(_ s: Int32) {
        let d = peerOf(s)
        guard d >= 0, !conns[Int(d)].closing else {
            closeTCPPair(s)
            return
        }
        conns[Int(s)].spliceFlags |= SpliceFlag.finished
        conns[Int(d)].spliceFlags |= SpliceFlag.finPending
        tunnelShutWrite(d)
    }

    /// Passes the FIN pending for connection `d` on once nothing is left to send to it (called
    /// again by its send completions): close_notify first on a TLS connection (its ciphertext
    /// through the usual send path), then shutdown(SHUT_WR). Closes the pair when both
    /// directions ended and both FINs went out.
    mutating func tunnelShutWrite(_ d: Int32) {
        let c = conns + Int(d)
        guard c.pointee.spliceFlags & SpliceFlag.finPending != 0, c.pointee.role != .free, !c.pointee.closing,
              !c.pointee.sendArmed, c.pointee.sendQueue.isEmpty else { return }
        if c.pointee.transport == .tls, let ssl = c.pointee.ssl {
            if SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN == 0 {
                _ = SSL_shutdown(ssl)   // writes close_notify; reading goes on (SSL_read)
                ERR_clear_error()
            }
            if ing_bio_pending(SSL_get_wbio(ssl)) > 0 {
                tlsSubmitSend(d)   // back here from onTLSSendComplete once it is on the wire
                return
            }
        }
        c.pointee.spliceFlags &= ~SpliceFlag.finPending
        shutdown(c.pointee.fd, Int32(SHUT_WR))
        let p = peerOf(d)
        if c.pointee.spliceFlags & SpliceFlag.finished != 0
            && (p < 0 || conns[Int(p)].spliceFlags & SpliceFlag.finPending == 0) {
            closeTCPPair(d)
        }
    }

    /// Closes both connections of a TCP-route pair (either may be given).
    mutating func closeTCPPair(_ i: Int32) {
        let p = peerOf(i)
        closeConn(i)
        if p >= 0 { closeConn(p) }
    }

    /// The per-second sweep found a TCP-route connection past its deadline: idle for
    /// `tcpIdleTimeoutMs` (downstream), or its upstream connect timed out.
    mutating func tcpIdleTimeout(_ i: Int32) {
        if conns[Int(i)].role == .upstream && !conns[Int(i)].connected {
            stats.add(WorkerSlotField.upstreamConnectFailures)
            statConnect(i, ok: false)
            if conns[Int(i)].exchange >= 0 { ex(i).pointee.stats.flags = ResponseFlags.uf }
        }
        closeTCPPair(i)
    }
}
