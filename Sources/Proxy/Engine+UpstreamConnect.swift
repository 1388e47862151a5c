import CSupport
import CURing
import HTTP1
import SharedMemory
import URing
#if canImport(Glibc)
import Glibc
#endif

// Upstream connections: a pooled one or a new connect for an exchange, the connect's outcome,
// and what happens to an exchange when its upstream connection fails (retry, or a local 503,
// or closing the client once the response has started). Responses: Engine+Upstream.swift.

extension ProxyEngine {
    /// An idle pooled connection to `ep` for exchange `x`, or a new one (connect submitted).
    /// -1 when no slot or socket is available; -2 when the cluster's circuit breaker holds the
    /// request back (it waits, or was answered 503 UO: CircuitBreakers.swift).
    mutating func acquireUpstream(_ ep: ChosenEndpoint, for x: Int32) -> Int32 {
        let u = ep.http2 ? h2AcquireStream(ep, for: x) : openUpstream(ep, for: x)
        if u >= 0 {
            breakerPendingDone(x)
            beginActiveRequest(x, endpoint: ep.id)
            conns[Int(u)].requestsSent &+= 1
        }
        return u
    }

    /// A connection that carries no exchange (a mirror's copy): outside the circuit breakers.
    /// To an HTTP/2 cluster it is a stream on the endpoint's multiplexed connection.
    mutating func acquireUpstream(_ ep: ChosenEndpoint) -> Int32 {
        var ep = ep
        ep.breaker = -1
        return ep.http2 ? h2AcquireStream(ep, for: -1) : openUpstream(ep, for: -1)
    }

    /// `x` may be -1 only when `ep.breaker` is -1.
    mutating func openUpstream(_ ep: ChosenEndpoint, for x: Int32) -> Int32 {
        if ep.pool >= 0 {
            let u = pools.idleHead(ep.pool)
            if u >= 0 {
                unlinkIdle(u)
                if ep.tlsCluster < 0 || pooledSNIMatches(u, for: x) {
                    setDeadline(u, 0)
                    return u
                }
                closeConn(u)   // auto SNI made for another Host: a new connection instead
            }
        }
        return connectUpstream(ep, for: x)
    }

    /// Opens a new connection to `ep` (the connect is queued); -1: no slot or socket, -2: the
    /// circuit breaker holds exchange `x`.
    mutating func connectUpstream(_ ep: ChosenEndpoint, for x: Int32) -> Int32 {
        guard mayOpenConnection(ep, for: x) else { return -2 }
        let u = allocSlot()
        guard u >= 0 else { return -1 }
        let family = ep.family == 6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            freeSlot(u)
            return -1
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let uc = conns + Int(u)
        uc.pointee.fd = fd
        uc.pointee.role = .upstream
        uc.pointee.pool = ep.pool
        uc.pointee.reusable = true
        if ep.tlsCluster >= 0 && !prepareUpstreamTLS(u, cluster: ep.tlsCluster) {
            close(fd)
            uc.pointee.fd = -1
            uc.pointee.role = .free
            freeSlot(u)
            return -1
        }
        breakerConnectionOpened(u, ep)
        setDeadline(u, nowMs + UInt64(ep.connectTimeoutMs == 0 ? 10_000 : ep.connectTimeoutMs))
        var address = ep.address
        if ep.family == 6 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = ep.port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { dst in
                withUnsafeBytes(of: &address) { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<16])) }
            }
            uc.pointee.addr = sin6
            uc.pointee.addrLen = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = ep.port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { dst in
                withUnsafeBytes(of: &address) { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<4])) }
            }
            withUnsafeMutableBytes(of: &uc.pointee.addr) { dst in
                withUnsafeBytes(of: &sin) { dst.copyMemory(from: $0) }
            }
            uc.pointee.addrLen = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        // SAFETY: the slab never moves, so `addr` stays valid until the connect completes.
        let addrPtr = UnsafeRawPointer(uc).advanced(by: MemoryLayout<Conn>.offset(of: \Conn.addr)!)
            .assumingMemoryBound(to: sockaddr.self)
        ring.prepConnect(fd: fd, addr: addrPtr, len: uc.pointee.addrLen, userData: userData(.upConnect, u))
        uc.pointee.pendingOps += 1
        return u
    }

    mutating func onUpConnect(_ u: Int32, result: Int32) {
        let uc = conns + Int(u)
        guard result >= 0 else {
            stats.add(WorkerSlotField.upstreamConnectFailures)
            if uc.pointee.h2 != nil { h2UpConnectionLost(u); return }   // its streams fail
            upstreamFailed(u)
            return
        }
        if uc.pointee.ssl != nil {
            startUpstreamHandshake(u)   // Engine+UpstreamTLS.swift; upstreamReady when done
            return
        }
        stats.add(WorkerSlotField.upstreamConnectionsOpened)
        statConnect(u, ok: true)
        uc.pointee.connected = true
        setDeadline(u, 0)
        upstreamReady(u)
    }

    /// A new upstream connection can carry its request (connected, handshake done).
    mutating func upstreamReady(_ u: Int32) {
        let uc = conns + Int(u)
        if uc.pointee.h2 != nil {
            h2UpConnected(u)   // an HTTP/2 connection: its streams go (Engine+HTTP2Upstream.swift)
            return
        }
        if uc.pointee.mirror {
            mirrorConnected(u)
            return
        }
        let d = peerOf(u)
        guard d >= 0 else {
            closeConn(u)
            return
        }
        if uc.pointee.spliceFlags & SpliceFlag.tcp != 0 {
            tcpConnected(d, u)   // Engine+TCP.swift
            return
        }
        armRecv(u, idle: true)
        // (A TLS connection may still be sending its last handshake bytes: the head queues.)
        if uc.pointee.outLen > 0 && uc.pointee.sendQueue.isEmpty {
            send(u, UnsafeRawPointer(uc.pointee.out!), uc.pointee.outLen, release: .none)
        }
    }

    /// The upstream connection failed or reset. Before any response byte reached the client
    /// that is a local 503 (Envoy: UF/UC); after, the client connection is closed.
    mutating func upstreamFailed(_ u: Int32) {
        let connectFailure = !conns[Int(u)].connected
        if connectFailure { statConnect(u, ok: false) }
        if conns[Int(u)].spliceFlags & SpliceFlag.tcp != 0 {
            if conns[Int(u)].exchange >= 0 && ex(u).pointee.stats.flags == 0 {
                ex(u).pointee.stats.flags = connectFailure ? ResponseFlags.uf : ResponseFlags.uc
            }
            closeTCPPair(u)   // no HTTP reply on a TCP route: the client connection closes
            return
        }
        let x = conns[Int(u)].exchange
        if x >= 0 {
            if mayRetry(x, connectFailure ? .connectFailure : .reset) {
                scheduleRetry(x, from: u)
                return
            }
            statRetryExhausted(x)
        }
        let body = connectFailure ? LocalReplyBody.upstreamConnectFailure : LocalReplyBody.upstreamReset
        abandonExchange(u, status: 503, flag: connectFailure ? ResponseFlags.uf : ResponseFlags.uc,
                        body: UnsafeRawBufferPointer(start: body.utf8Start, count: body.utf8CodeUnitCount))
    }

    /// Closes upstream `u` and answers its client with `status` (recording response `flag`) if
    /// nothing of the response reached it yet; otherwise the client connection is closed too.
    mutating func abandonExchange(_ u: Int32, status: UInt16, flag: UInt16, body: UnsafeRawBufferPointer?) {
        let d = peerOf(u)
        let x = conns[Int(u)].exchange
        closeConn(u)
        guard d >= 0, !conns[Int(d)].closing else { return }
        let e = exchanges.slots + Int(x)
        e.pointee.stats.flags |= flag
        if e.pointee.responseStarted {
            closeConn(d)
        } else {
            setRouteTimeout(x, ms: 0)
            sendLocalReply(d, status: status, body: body, close: !conns[Int(d)].requestDone)
        }
    }
}
