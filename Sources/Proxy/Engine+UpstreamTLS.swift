import COpenSSL
import RouteTable
import SharedMemory
import TLS
#if canImport(Glibc)
import Glibc
#endif

// TLS to upstreams (DestinationRule `trafficPolicy.tls`, SIMPLE and MUTUAL): the same TLS
// transport as downstream (Engine+TLS.swift), in the client role.
//
//   openUpstream ─► SSL_new(cluster's client context): SANs to verify, or none yet
//        │ connect completes (Engine+UpstreamConnect.swift)
//        ▼
//   SNI = the cluster's `sni`, else the forwarded Host without its port (Istio's auto SNI);
//   with no `subjectAltNames`, the certificate must match that SNI (auto SAN validation);
//   with CRLs (`caCrl`), no certificate of its chain may be revoked
//        │ handshake (bounded by the connect timeout; a failure is a connect failure: 503 UF,
//        ▼ retried as connect-failure)
//   upstreamReady: the head goes out, the response comes back through the transport; the
//   connection is pooled like a plain one, in a pool keyed by the cluster's TLS identity
//
// TCP routes (and TLS servers' tcp routes, and passthrough routes) to such a cluster originate
// TLS the same way: no Host, so the SNI is the cluster's `sni` or none; once the handshake is
// done the pair is a tunnel of copies through the transport (Engine+TCP.swift tcpConnected):
// the kernel cannot splice what it must encrypt. A failed handshake closes the client (UF).
//
// The pool of an auto-SNI cluster may hold connections made for other Hosts: one whose SNI
// hash differs from the request's is closed instead of reused.
//
// Session resumption (Envoy's upstream session cache): each cluster's client context keeps the
// newest session per endpoint and SNI (TLS/ClientContext.swift; TLS 1.3 tickets arrive after
// the handshake, through OpenSSL's new-session callback), and a new connection to the same
// endpoint and name offers it: an abbreviated handshake when the upstream accepts it. Counted
// per cluster: envoy_cluster_ssl_handshake, _ssl_session_reused, _ssl_connection_error.

extension ProxyEngine {
    /// The client SSL_CTX of `cluster` in the current table (built on first use).
    mutating func clientContext(_ reader: TableReader, _ cluster: Int32) -> OpaquePointer? {
        guard Int(cluster) < tls.clientCount, let ctxs = tls.clientContexts else { return nil }
        if let ctx = ctxs[Int(cluster)] { return ctx }
        if tls.clientFailed![Int(cluster)] { return nil }
        let mode = reader.clusterTLSMode(cluster)
        var cfg = ClientContextConfig(
            caCertificatesPEM: reader.clusterTLSCACertificates(cluster),
            certificateChainPEM: mode == .mutual ? reader.clusterTLSCertificateChain(cluster) : UnsafeRawBufferPointer(start: nil, count: 0),
            privateKeyPEM: mode == .mutual ? reader.clusterTLSPrivateKey(cluster) : UnsafeRawBufferPointer(start: nil, count: 0),
            verify: !reader.clusterTLSInsecureSkipVerify(cluster))
        cfg.crlPEM = reader.clusterTLSCRL(cluster)
        let (ctx, error) = ClientContext.make(cfg)
        if ctx == nil {
            tls.clientFailed![Int(cluster)] = true
            log("worker: TLS to cluster \(String(decoding: reader.clusterName(cluster), as: UTF8.self)): \(error ?? "unknown error"); its requests fail (503 UF)")
        }
        ctxs[Int(cluster)] = ctx
        return ctx
    }

    /// A new upstream connection to a TLS cluster: its SSL, configured but not started (the
    /// handshake begins when the TCP connect completes). False when no SSL could be made.
    mutating func prepareUpstreamTLS(_ u: Int32, cluster: Int32) -> Bool {
        guard let reader = table.reader, let ctx = clientContext(reader, cluster), let ssl = SSL_new(ctx) else { return false }
        let uc = conns + Int(u)
        uc.pointee.ssl = ssl
        uc.pointee.tlsServer = cluster
        uc.pointee.tlsTable = UInt32(truncatingIfNeeded: table.generation)
        let sni = reader.clusterTLSSNI(cluster)
        uc.pointee.tlsAutoSNI = sni.count == 0
        if sni.count > 0 { setSNI(ssl, sni) }
        let verify = !reader.clusterTLSInsecureSkipVerify(cluster)
        let sans = reader.clusterTLSSubjectAltNameCount(cluster)
        if verify && sans > 0 {
            // The certificate must carry one of the names (DNS names, wildcards as OpenSSL
            // matches them; other SAN types are compared as IP or e-mail by OpenSSL).
            let param = SSL_get0_param(ssl)
            for k in 0..<sans {
                let name = reader.clusterTLSSubjectAltName(cluster, k)
                _ = withCString(name) { X509_VERIFY_PARAM_add1_host(param, $0, 0) }
            }
            uc.pointee.tlsVerifyHost = false
        } else {
            uc.pointee.tlsVerifyHost = verify
        }
        return true
    }

    /// The TCP connect of a TLS upstream completed: SNI (auto from the forwarded Host), then
    /// the handshake. `upstreamReady` runs when it is done.
    mutating func startUpstreamHandshake(_ u: Int32) {
        let uc = conns + Int(u)
        guard let ssl = uc.pointee.ssl, let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            upstreamFailed(u)
            return
        }
        _ = ing_bio_set_mem_eof_return(rbio, -1)
        _ = ing_bio_set_mem_eof_return(wbio, -1)
        SSL_set_bio(ssl, rbio, wbio)
        var host = UnsafeRawBufferPointer(start: nil, count: 0)
        // A TCP route has no Host: no SNI unless the cluster names one, and (with no
        // `subjectAltNames`) only the chain is verified, as Envoy's tcp_proxy does.
        if uc.pointee.tlsAutoSNI || uc.pointee.tlsVerifyHost, uc.pointee.spliceFlags & SpliceFlag.tcp == 0,
           let out = uc.pointee.out {
            host = forwardedHost(UnsafeRawBufferPointer(start: out, count: Int(uc.pointee.outLen)))
        }
        if uc.pointee.tlsAutoSNI && host.count > 0 {
            setSNI(ssl, host)
            uc.pointee.sniHash = hostHash(host)
        }
        if uc.pointee.tlsVerifyHost {
            // Auto SAN validation: the certificate must match the SNI (the cluster's, or the Host).
            let name: UnsafeRawBufferPointer
            if uc.pointee.tlsAutoSNI {
                name = host
            } else if let s = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) {
                name = UnsafeRawBufferPointer(start: s, count: strlen(s))
            } else {
                name = host
            }
            _ = withCString(name) { X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), $0, 0) }
        }
        _ = ClientContext.offerSession(ssl, key: sessionKey(u, ssl))
        SSL_set_connect_state(ssl)
        uc.pointee.transport = .tls
        tlsRead(u)
    }

    /// The key of upstream `u`'s TLS sessions in its cluster's context: its endpoint's address
    /// and the SNI (none, the cluster's, or the Host), hashed (FNV-1a, never 0). A session is
    /// only offered to the endpoint and name it was made with, so auto SNI cannot resume a
    /// session verified for another Host.
    func sessionKey(_ u: Int32, _ ssl: OpaquePointer) -> UInt64 {
        var h: UInt64 = 14_695_981_039_346_656_037
        let a = UnsafeRawPointer(conns + Int(u)).advanced(by: MemoryLayout<Conn>.offset(of: \Conn.addr)!)
        for k in 0..<min(Int(conns[Int(u)].addrLen), MemoryLayout<sockaddr_in6>.size) {
            h = (h ^ UInt64(a.load(fromByteOffset: k, as: UInt8.self))) &* 1_099_511_628_211
        }
        h = (h ^ 0xFF) &* 1_099_511_628_211
        if let s = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) {
            var p = s
            while p.pointee != 0 {
                h = (h ^ UInt64(UInt8(bitPattern: p.pointee))) &* 1_099_511_628_211
                p += 1
            }
        }
        return h | 1
    }

    /// The handshake with the upstream completed (or the connection needs none).
    mutating func upstreamHandshakeDone(_ u: Int32) {
        stats.add(WorkerSlotField.upstreamConnectionsOpened)
        statConnect(u, ok: true)
        conns[Int(u)].connected = true
        setDeadline(u, 0)
        upstreamReady(u)
    }

    /// The Host of a forwarded head (the value of its `host:` field without a port); empty
    /// when there is none.
    func forwardedHost(_ head: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var k = 0
        let n = head.count
        while k + 7 < n {
            // Start of a line: after "\r\n".
            if head[k] == 10 {
                let s = k + 1
                if s + 5 <= n && (head[s] | 0x20) == UInt8(ascii: "h") && (head[s + 1] | 0x20) == UInt8(ascii: "o")
                    && (head[s + 2] | 0x20) == UInt8(ascii: "s") && (head[s + 3] | 0x20) == UInt8(ascii: "t")
                    && head[s + 4] == UInt8(ascii: ":") {
                    var a = s + 5
                    while a < n && (head[a] == 32 || head[a] == 9) { a += 1 }
                    var b = a
                    while b < n && head[b] != 13 && head[b] != 10 { b += 1 }
                    var end = b
                    // Drop a port (not inside an IPv6 literal's brackets).
                    var p = b - 1
                    while p > a && head[p] >= 48 && head[p] <= 57 { p -= 1 }
                    if p > a && p < b - 1 && head[p] == UInt8(ascii: ":") && head[p - 1] != UInt8(ascii: ":") { end = p }
                    if end > a && head[a] == UInt8(ascii: "[") && head[end - 1] == UInt8(ascii: "]") {
                        return UnsafeRawBufferPointer(rebasing: head[(a + 1)..<(end - 1)])
                    }
                    return UnsafeRawBufferPointer(rebasing: head[a..<end])
                }
            }
            k += 1
        }
        return UnsafeRawBufferPointer(start: nil, count: 0)
    }

    @inline(__always)
    func hostHash(_ b: UnsafeRawBufferPointer) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        for x in b { h = (h ^ UInt32(x | (x >= 65 && x <= 90 ? 0x20 : 0))) &* 16_777_619 }
        return h | 1
    }

    /// Whether pooled TLS connection `u` may carry exchange `x` (auto SNI: made for its Host).
    func pooledSNIMatches(_ u: Int32, for x: Int32) -> Bool {
        let c = conns[Int(u)]
        guard c.transport == .tls, c.tlsAutoSNI, x >= 0, let p = exchanges.slots[Int(x)].pending else { return true }
        let host = forwardedHost(UnsafeRawBufferPointer(start: p, count: Int(exchanges.slots[Int(x)].pendingLen)))
        return host.count == 0 || hostHash(host) == c.sniHash
    }

    func setSNI(_ ssl: OpaquePointer, _ name: UnsafeRawBufferPointer) {
        _ = withCString(name) { ing_ssl_set_tlsext_host_name(ssl, $0) }
    }

    /// Runs `body` with `b` as a NUL-terminated C string (at most 255 bytes; names are).
    func withCString<T>(_ b: UnsafeRawBufferPointer, _ body: (UnsafePointer<CChar>) -> T) -> T {
        var buf: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &buf) { dst in
            let n = min(b.count, dst.count - 1)
            if n > 0 { dst.baseAddress!.copyMemory(from: b.baseAddress!, byteCount: n) }
            dst[n] = 0
            return body(dst.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
    }
}
