import COpenSSL
import CURing
import CSupport
import HTTP1
import RouteTable
import SharedMemory
import TLS
import URing
#if canImport(Glibc)
import Glibc
#endif

// The TLS transport (issue 8): OpenSSL driven sans-I/O through two memory BIOs, by the ring.
// The session above it (the HTTP/1 code in Engine+Downstream/Request/Send) sees plaintext
// only and does not know the difference:
//
//   socket ─recv (ring buffer)─► BIO_write(rbio) ─► SSL_read ─► plaintext buffer ─► session
//   session ─send(segment)─► SSL_write ─► wbio ─BIO_read─► ciphertext buffer ─send─► socket
//
// A connection on an HTTPS/TLS listener goes through three transport states:
//
//   accept ─► hello: read the ClientHello ourselves (Sources/TLS/ClientHello.swift), bounded
//      │       by ClientHello.maxBytes and the header timeout; the SNI picks the server
//      │       (`TableReader.tlsServer`, Envoy's filter-chain order)
//      ├─ passthrough server ─► the SNI picks a `tls[]` route; the hello bytes go to the
//      │                        upstream first, then the TCP splice path (Engine+TCP.swift)
//      ├─ terminating server ─► tls: the hello is fed to a new SSL of that server's context;
//      │                        handshake, then plaintext HTTP/1.1 (x-forwarded-proto: https)
//      └─ not TLS, malformed, no server/route ─► closed without a byte (Envoy: no filter chain)
//
// Receives: one receive armed by the session delivers at most one plaintext buffer (a TLS
// record's worth, 16 KiB at most), so the session's backpressure is unchanged. When OpenSSL
// still holds bytes (several records arrived in one read), the next receive the session arms
// is a NOP completion (Op.tlsPending) instead of a socket read.
// Sends: the session's segment stays "in flight" until its ciphertext is on the wire; then the
// session's usual send completion runs with the plaintext byte count. Handshake messages,
// tickets and alerts go out the same way with no plaintext attached.
// Plaintext buffers share the receive-buffer id space (ids from `rx.count` up), so the send
// queue's `.recv(bid)` release and every other user of a received buffer work unchanged.
// Splicing (large bodies) is off for TLS connections: the kernel cannot encrypt (no kTLS).
// Instead a plain upstream's response body for a TLS client is received 64 KiB at a time into
// bulk buffers (Engine+Upstream.swift's armBulkRecv), each encrypted by one SSL_write (four
// records) and sent in one send: per MiB 16 receives and 16 sends instead of 64 and 64.

extension ProxyEngine {
    // MARK: receive-buffer ids (ring buffers and TLS plaintext buffers)

    @inline(__always)
    mutating func recycleRecv(_ bid: UInt16) {
        if Int(bid) < rx.count { rx.recycle(bid) } else if bulk.owns(bid) { bulk.put(bid) } else { plain.put(bid) }
    }

    // MARK: accept and the ClientHello

    /// The protocol of the listener on `port`, or nil when the table has none.
    func listenerProto(_ port: UInt16) -> (index: Int32, proto: ListenerProtocol)? {
        guard let r = table.reader else { return nil }
        let l = r.listener(port: port)
        return l >= 0 ? (l, r.listenerProtocol(l)) : nil
    }

    /// A connection accepted on an HTTPS/TLS listener: read its ClientHello first.
    mutating func startHello(_ i: Int32) {
        conns[Int(i)].transport = .hello
        setDeadline(i, nowMs + limits.headerTimeoutMs)
        armRecv(i)
    }

    /// Bytes of a ClientHello arrived (transport `.hello`).
    mutating func onHelloBytes(_ i: Int32, _ data: UnsafeMutableRawPointer, _ n: Int, _ bid: UInt16) {
        let kept = appendAccum(i, data, n)
        rx.recycle(bid)
        let c = conns + Int(i)
        guard kept, let acc = c.pointee.accum else {
            tlsRefused(i, flags: 0)
            return
        }
        let bytes = UnsafeRawBufferPointer(start: acc + Int(c.pointee.accumStart),
                                           count: Int(c.pointee.accumEnd - c.pointee.accumStart))
        switch parseClientHello(bytes) {
        case .incomplete:
            if bytes.count >= ClientHello.maxBytes {
                tlsRefused(i, flags: 0)
            } else {
                armRecv(i)
            }
        case .notTLS, .malformed:
            tlsRefused(i, flags: 0)
        case .hello(let hello):
            let sni = UnsafeRawBufferPointer(rebasing: bytes[Int(hello.sniStart)..<Int(hello.sniStart + hello.sniCount)])
            guard let reader = table.reader, let (l, _) = listenerProto(c.pointee.listenerPort) else {
                tlsRefused(i, flags: ResponseFlags.nr)
                return
            }
            let s = reader.tlsServer(listener: l, sni: sni)
            guard s >= 0 else {
                tlsRefused(i, flags: ResponseFlags.nr)
                return
            }
            if reader.tlsServerMode(s) == .passthrough {
                let r = reader.tlsRoute(listener: l, sni: sni)
                startTLSPassthrough(i, reader: reader, route: r)
            } else {
                startTermination(i, reader: reader, server: s, listener: l)
            }
        }
    }

    /// Closes a connection whose ClientHello was refused (not TLS, malformed, no server):
    /// no alert, no bytes, as Envoy does when no filter chain matches.
    mutating func tlsRefused(_ i: Int32, flags: UInt16) {
        statListenerTLS(i, flags == ResponseFlags.nr ? ListenerStats.noFilterChainMatch : ListenerStats.connectionErrors)
        closeConn(i)
    }

    /// Counts a TLS event of downstream connection `i` (a `ListenerStats` field) in its
    /// listener's record (envoy_listener_*{listener_address}) and in the process-wide total.
    /// Once per connection at most, not per request: a scan of the worker's few listeners.
    @inline(__always)
    mutating func statListenerTLS(_ i: Int32, _ field: Int) {
        stats.add(ListenerStats.processField(field))
        let port = conns[Int(i)].listenerPort
        for k in 0..<listenerCount where listenerPorts[k] == port {
            if listenerRecords[k] >= 0 { statAdd(stats.listenerRecord(Int(listenerRecords[k])), field) }
            return
        }
    }

    // MARK: termination

    /// The SSL_CTX of server `s` of the current table (built on first use).
    mutating func serverContext(_ reader: TableReader, _ s: Int32) -> OpaquePointer? {
        guard Int(s) < tls.count, let ctxs = tls.contexts else { return nil }
        if let ctx = ctxs[Int(s)] { return ctx }
        if tls.failed![Int(s)] { return nil }
        let mode = reader.tlsServerMode(s)
        let v = reader.tlsServerVersions(s)
        var cfg = ServerContextConfig(
            certificateChainPEM: reader.tlsServerCertificateChain(s), privateKeyPEM: reader.tlsServerPrivateKey(s),
            caCertificatesPEM: reader.tlsServerCACertificates(s),
            clientCertificates: mode == .mutual ? 1 : mode == .optionalMutual ? 2 : 0,
            minVersion: v.min.rawValue, maxVersion: v.max.rawValue, cipherSuites: reader.tlsServerCipherSuites(s))
        cfg.ticketKeys = region.ticketKeys
        (cfg.secondCertificateChainPEM, cfg.secondPrivateKeyPEM) = reader.tlsServerSecondCertificate(s)
        cfg.crlPEM = reader.tlsServerCRL(s)
        let (ctx, error) = ServerContext.make(cfg)
        if ctx == nil {
            tls.failed![Int(s)] = true
            log("worker: TLS server \(String(decoding: reader.tlsServerName(s), as: UTF8.self)): \(error ?? "unknown error"); its connections are closed")
        }
        ctxs[Int(s)] = ctx
        return ctx
    }

    mutating func startTermination(_ i: Int32, reader: TableReader, server s: Int32, listener l: Int32) {
        let c = conns + Int(i)
        guard let ctx = serverContext(reader, s), let ssl = SSL_new(ctx),
              let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            tlsRefused(i, flags: 0)
            return
        }
        _ = ing_bio_set_mem_eof_return(rbio, -1)   // empty: "retry", not EOF
        _ = ing_bio_set_mem_eof_return(wbio, -1)
        SSL_set_bio(ssl, rbio, wbio)
        SSL_set_accept_state(ssl)
        c.pointee.ssl = ssl
        c.pointee.transport = .tls
        c.pointee.tlsServer = s
        c.pointee.tlsTable = UInt32(truncatingIfNeeded: table.generation)
        // The ClientHello (and whatever followed it) is the handshake's first input.
        let n = Int(c.pointee.accumEnd - c.pointee.accumStart)
        _ = BIO_write(rbio, c.pointee.accum! + Int(c.pointee.accumStart), Int32(n))
        releaseAccum(i)
        tlsRead(i)
    }

    /// Whether OpenSSL holds bytes the session has not seen (decrypted, or a whole record).
    @inline(__always)
    func tlsHasPending(_ i: Int32) -> Bool {
        guard let ssl = conns[Int(i)].ssl else { return false }
        return SSL_pending(ssl) > 0 || ing_bio_pending(SSL_get_rbio(ssl)) >= 5
    }

    /// A receive for a TLS connection: from OpenSSL's buffers when it holds bytes, else from
    /// the socket.
    @inline(__always)
    mutating func armTLSRecv(_ i: Int32) {
        let c = conns + Int(i)
        if SSL_is_init_finished(c.pointee.ssl) == 1 && tlsHasPending(i) {
            ring.prepNop(userData: userData(.tlsPending, i))
        } else {
            ring.prepRecvSelect(fd: c.pointee.fd, group: rx.groupID,
                                userData: userData(c.pointee.role == .downstream ? .downRecv : .upRecv, i))
        }
        c.pointee.pendingOps += 1
        c.pointee.recvArmed = true
    }

    /// Ciphertext arrived for TLS connection `i`.
    mutating func onTLSRecv(_ i: Int32, result: Int32, flags: UInt32) {
        guard result > 0 else {
            if result == -ENOBUFS {
                receiveStarved(i)
                return
            }
            if copiesTCP(i) {
                // A TCP pair's side: EOF (without close_notify) ends its direction, as on a
                // plain socket; a reset closes the pair.
                if result == 0 { tunnelSourceEnded(i) } else { closeTCPPair(i) }
                return
            }
            tlsGone(i)
            return
        }
        let bid = UInt16(flags >> ING_CQE_BUFFER_SHIFT)
        let c = conns + Int(i)
        if c.pointee.transport == .hello {
            onHelloBytes(i, rx.buffer(bid), Int(result), bid)
            return
        }
        _ = BIO_write(SSL_get_rbio(c.pointee.ssl), rx.buffer(bid), result)
        rx.recycle(bid)
        tlsRead(i)
    }

    /// Advances the handshake, then hands at most one buffer of plaintext to the session;
    /// arms a socket receive when OpenSSL needs more ciphertext.
    mutating func tlsRead(_ i: Int32) {
        let c = conns + Int(i)
        guard let ssl = c.pointee.ssl else { return }
        if SSL_is_init_finished(ssl) != 1 {
            let r = SSL_do_handshake(ssl)
            if r != 1 {
                let err = SSL_get_error(ssl, r)
                tlsFlush(i)   // the server's flight, or an alert
                if err == SSL_ERROR_WANT_READ {
                    if !c.pointee.recvArmed { armTLSRecv(i) }
                } else if c.pointee.role == .upstream {
                    // The upstream's certificate did not verify, or its TLS is broken: a
                    // connect failure (503 UF, retried as connect-failure).
                    ERR_clear_error()
                    statUpstreamTLS(i, ok: false)
                    upstreamFailed(i)
                } else {
                    ERR_clear_error()
                    statListenerTLS(i, ListenerStats.connectionErrors)
                    if SSL_get_verify_result(ssl) != X509_V_OK || (c.pointee.ssl != nil && peerCertificateMissing(ssl)) {
                        statListenerTLS(i, ListenerStats.failVerifyNoCert)
                    }
                    tlsCloseAfterFlush(i)
                }
                return
            }
            guard c.pointee.role == .upstream || clientCertificatePasses(i, ssl) else {
                statListenerTLS(i, ListenerStats.connectionErrors)
                statListenerTLS(i, ListenerStats.failVerifyNoCert)
                tlsFlush(i)
                tlsCloseAfterFlush(i)
                return
            }
            if c.pointee.role == .upstream {
                // Cluster stats (envoy_cluster_ssl_*), not the listener's.
                statUpstreamTLS(i, ok: true, reused: ing_ssl_session_reused(ssl) != 0)
                tlsFlush(i)
                upstreamHandshakeDone(i)   // Engine+UpstreamTLS.swift
                return
            }
            statListenerTLS(i, ListenerStats.handshakes)
            if ing_ssl_session_reused(ssl) != 0 { statListenerTLS(i, ListenerStats.sessionReused) }
            recordClientCertificate(i, ssl)
            setDeadline(i, nowMs + limits.idleTimeoutMs)
            tlsFlush(i)
            if listenerProto(c.pointee.listenerPort)?.proto == .tls {
                // A TLS-protocol server, terminated: the plaintext goes to its tcp route
                // (Engine+TCP.swift, copied through the TLS transport instead of spliced).
                startTCPRoute(i)
                return
            }
            if alpnSelectedH2(ssl) && !h2Start(i) { return }   // HTTP/2 by ALPN (Engine+HTTP2.swift)
        }
        guard let (pid, buf) = plain.get() else {
            receiveStarved(i)
            return
        }
        let n = SSL_read(ssl, buf, Int32(plain.size))
        if n > 0 {
            if c.pointee.role == .downstream {
                onDownData(i, buf, Int(n), pid)
            } else {
                onUpData(i, buf, Int(n), pid)
            }
            return
        }
        plain.put(pid)
        let err = SSL_get_error(ssl, n)
        tlsFlush(i)
        if err == SSL_ERROR_WANT_READ {
            if !c.pointee.recvArmed && !c.pointee.closing { armTLSRecv(i) }
            return
        }
        ERR_clear_error()
        let failed = err != SSL_ERROR_ZERO_RETURN
        if failed && c.pointee.role == .downstream { statListenerTLS(i, ListenerStats.connectionErrors) }
        if !failed && copiesTCP(i) {
            tunnelSourceEnded(i)   // close_notify on a TCP pair: half-close (Engine+TCP.swift)
            return
        }
        tlsGone(i, error: failed)
    }

    /// MUTUAL / OPTIONAL_MUTUAL: the client certificate against the server's subjectAltNames,
    /// SPKI and hash lists (TLS/PeerCertificate.swift). A reload between the ClientHello and
    /// the end of the handshake leaves the lists unknown: the connection is refused.
    func clientCertificatePasses(_ i: Int32, _ ssl: OpaquePointer) -> Bool {
        let s = conns[Int(i)].tlsServer
        guard let reader = table.reader else { return false }
        guard conns[Int(i)].tlsTable == UInt32(truncatingIfNeeded: table.generation), reader.tlsServers.contains(s) else {
            return false
        }
        switch reader.tlsServerMode(s) {
        case .mutual, .optionalMutual:
            return PeerCertificate.passes(
                ssl, sanCount: reader.tlsServerSubjectAltNameCount(s), san: { reader.tlsServerSubjectAltName(s, $0) },
                spkiCount: reader.tlsServerSpkiCount(s), spki: { reader.tlsServerSpki(s, $0) },
                hashCount: reader.tlsServerHashCount(s), hash: { reader.tlsServerHash(s, $0) })
        default:
            return true
        }
    }

    /// A client certificate (mutual TLS): its x-forwarded-client-cert value, made once.
    mutating func recordClientCertificate(_ i: Int32, _ ssl: OpaquePointer) {
        let c = conns + Int(i)
        guard c.pointee.xfcc == nil, ing_ssl_ctx_verify_mode(SSL_get_SSL_CTX(ssl)) != 0 else { return }
        let buf = small.get()
        let n = PeerCertificate.forwardedClientCert(ssl, into: UnsafeMutableRawBufferPointer(start: buf, count: small.size))
        if n > 0 {
            c.pointee.xfcc = buf
            c.pointee.xfccLen = Int32(n)
        } else {
            small.put(buf)
        }
    }

    /// Whether a request with this Host may be routed on HTTPS connection `i`: the Host must
    /// pick the same Gateway server as the connection's SNI did (the TLS server lookup by name,
    /// exact before the longest `*.suffix` before `*`). Envoy keeps one route configuration per
    /// server, so a Host of another server gets 404 there; here the virtual hosts of a port are
    /// merged, and this check keeps the servers apart (stricter only where another server's
    /// exact name shadows this server's wildcard).
    func tlsHostAllowed(_ i: Int32, source: UnsafeRawBufferPointer, host: ByteRange) -> Bool {
        let c = conns + Int(i)
        guard let ssl = c.pointee.ssl, let reader = table.reader else { return false }
        let l = reader.listener(port: c.pointee.listenerPort)
        guard l >= 0 else { return false }
        var sni = UnsafeRawBufferPointer(start: nil, count: 0)
        if let s = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) { sni = UnsafeRawBufferPointer(start: s, count: strlen(s)) }
        let byConnection = reader.tlsServer(listener: l, sni: sni)
        return byConnection >= 0 && reader.tlsServer(listener: l, sni: hostWithoutPort(source, host)) == byConnection
    }

    @inline(__always)
    func peerCertificateMissing(_ ssl: OpaquePointer) -> Bool {
        guard let x = SSL_get1_peer_certificate(ssl) else { return true }
        X509_free(x)
        return false
    }

    /// The client closed (close_notify or EOF) or the connection failed.
    mutating func tlsGone(_ i: Int32, error: Bool = false) {
        if conns[Int(i)].transport == .hello {
            closeConn(i)
        } else if conns[Int(i)].role == .upstream {
            // As a plain upstream's EOF or reset (a response delimited by the close ends).
            onUpRecv(i, result: error ? -ECONNRESET : 0, flags: 0)
        } else {
            downstreamGone(i)
        }
    }

    /// A failed handshake: the alert OpenSSL wrote goes out, then the connection closes.
    mutating func tlsCloseAfterFlush(_ i: Int32) {
        conns[Int(i)].keepAlive = false
        conns[Int(i)].tlsCloseAfterSend = true
        if !conns[Int(i)].sendArmed { closeConn(i) }
    }

    // MARK: sends

    /// Encrypts the next piece of the first queued segment (at most 64 KiB) together with
    /// anything OpenSSL has to send, and sends the ciphertext. Called with no send in flight.
    mutating func tlsSubmitSend(_ i: Int32) {
        let c = conns + Int(i)
        guard let ssl = c.pointee.ssl else { return }
        var plainBytes: Int32 = 0
        if c.pointee.sendQueue.count > 0 {
            let seg = c.pointee.sendQueue.first
            let off = Int(c.pointee.sendQueue.sent)
            let take = min(Int32(seg.count) - Int32(off), 64 * 1024)
            let w = SSL_write(ssl, seg.base! + off, take)
            guard w == take else {
                ERR_clear_error()
                if c.pointee.role == .downstream { statListenerTLS(i, ListenerStats.connectionErrors) }
                dropSendQueue(i)
                closeConn(i)
                return
            }
            plainBytes = take
        }
        let wbio = SSL_get_wbio(ssl)
        let pending = ing_bio_pending(wbio)
        guard pending > 0 else { return }
        let useLarge = pending > small.size
        let buf = useLarge ? large.get() : small.get()
        let n = BIO_read(wbio, buf, Int32(min(pending, useLarge ? large.size : small.size)))
        c.pointee.tlsOut = buf
        c.pointee.tlsOutLarge = useLarge
        c.pointee.tlsOutLen = n
        c.pointee.tlsOutSent = 0
        c.pointee.tlsPlain = plainBytes
        ring.prepSend(fd: c.pointee.fd, buffer: buf, count: Int(n),
                      userData: userData(c.pointee.role == .downstream ? .downSend : .upSend, i))
        c.pointee.pendingOps += 1
        c.pointee.sendArmed = true
    }

    /// A memory BIO keeps the largest buffer it ever needed: after a large response a kept-alive
    /// connection would hold it while idle. When the connection goes idle (its exchange ended),
    /// an empty BIO past 8 KiB is replaced by a fresh one (an allocation only after responses
    /// of more than a few KiB).
    @inline(__always)
    mutating func shrinkBIOs(_ i: Int32) {
        guard let ssl = conns[Int(i)].ssl else { return }
        let w = SSL_get_wbio(ssl)
        if ing_bio_pending(w) == 0 && ing_bio_mem_capacity(w) > 8 * 1024, let fresh = BIO_new(BIO_s_mem()) {
            _ = ing_bio_set_mem_eof_return(fresh, -1)
            SSL_set0_wbio(ssl, fresh)
        }
        let r = SSL_get_rbio(ssl)
        if ing_bio_pending(r) == 0 && ing_bio_mem_capacity(r) > 8 * 1024, let fresh = BIO_new(BIO_s_mem()) {
            _ = ing_bio_set_mem_eof_return(fresh, -1)
            SSL_set0_rbio(ssl, fresh)   // takes our reference, frees the old BIO
        }
    }

    /// Sends what OpenSSL wrote on its own (handshake, tickets, alerts) if no send is in flight.
    @inline(__always)
    mutating func tlsFlush(_ i: Int32) {
        let c = conns + Int(i)
        guard !c.pointee.sendArmed, !c.pointee.closing, let ssl = c.pointee.ssl else { return }
        if c.pointee.sendQueue.count > 0 || ing_bio_pending(SSL_get_wbio(ssl)) > 0 { tlsSubmitSend(i) }
    }

    @inline(__always)
    mutating func releaseTLSOut(_ i: Int32) {
        let c = conns + Int(i)
        if let b = c.pointee.tlsOut {
            if c.pointee.tlsOutLarge { large.put(b) } else { small.put(b) }
            c.pointee.tlsOut = nil
        }
    }

    /// A ciphertext send of TLS connection `i` completed.
    mutating func onTLSSendComplete(_ i: Int32, result: Int32) {
        let c = conns + Int(i)
        guard result > 0 else {
            releaseTLSOut(i)
            c.pointee.tlsPlain = 0
            if c.pointee.tlsCloseAfterSend {
                dropSendQueue(i)
                closeConn(i)
                return
            }
            onSendComplete(i, result: result, downstream: c.pointee.role == .downstream)
            return
        }
        c.pointee.tlsOutSent += result
        if c.pointee.tlsOutSent < c.pointee.tlsOutLen {
            ring.prepSend(fd: c.pointee.fd, buffer: c.pointee.tlsOut! + Int(c.pointee.tlsOutSent),
                          count: Int(c.pointee.tlsOutLen - c.pointee.tlsOutSent),
                          userData: userData(c.pointee.role == .downstream ? .downSend : .upSend, i))
            c.pointee.pendingOps += 1
            c.pointee.sendArmed = true
            return
        }
        releaseTLSOut(i)
        if c.pointee.tlsCloseAfterSend {
            dropSendQueue(i)
            closeConn(i)
            return
        }
        let p = c.pointee.tlsPlain
        c.pointee.tlsPlain = 0
        if p > 0 {
            onSendComplete(i, result: p, downstream: c.pointee.role == .downstream)
        }
        if c.pointee.role != .free && !c.pointee.closing && !c.pointee.sendArmed { tlsFlush(i) }
        if c.pointee.spliceFlags & SpliceFlag.finPending != 0 { tunnelShutWrite(i) }   // close_notify out
    }

    // MARK: passthrough

    /// SNI passthrough: the ClientHello (in accum) goes to the route's upstream first, then the
    /// connection pair is spliced like a TCP route.
    mutating func startTLSPassthrough(_ i: Int32, reader: TableReader, route r: Int32) {
        guard r >= 0 else {
            tlsRefused(i, flags: ResponseFlags.nr)
            return
        }
        conns[Int(i)].transport = .plain
        startTCPRoute(i, cluster: reader.pickTLSCluster(route: r, random: UInt32(truncatingIfNeeded: nextRandom())))
    }

    /// A TLS connection closing with nothing in flight says so (close_notify) before the FIN:
    /// clients such as Python's ssl report a close without it as a truncation attack. 24 bytes
    /// in one non-blocking send(2); skipped when a send is in flight or an alert went out.
    mutating func tlsSendCloseNotify(_ i: Int32) {
        let c = conns + Int(i)
        guard let ssl = c.pointee.ssl, !c.pointee.sendArmed, !c.pointee.tlsCloseAfterSend,
              SSL_is_init_finished(ssl) == 1 else { return }
        c.pointee.tlsCloseAfterSend = true
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
        let wbio = SSL_get_wbio(ssl)
        var buf: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &buf) { b in
            let n = BIO_read(wbio, b.baseAddress, Int32(b.count))
            if n > 0 { _ = Glibc.send(c.pointee.fd, b.baseAddress, Int(n), Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)) }
        }
    }

    /// Frees the connection's TLS state (finalize).
    @inline(__always)
    mutating func releaseTLS(_ i: Int32) {
        let c = conns + Int(i)
        if let ssl = c.pointee.ssl {
            SSL_free(ssl)
            c.pointee.ssl = nil
        }
        releaseTLSOut(i)
        if let x = c.pointee.xfcc {
            small.put(x)
            c.pointee.xfcc = nil
        }
    }
}
