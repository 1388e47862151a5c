import COpenSSL

// OpenSSL server contexts for terminating Gateway servers, built by a worker from the PEM
// bytes its route table carries (RouteTable/TLSSpec.swift). One SSL_CTX per server per table:
// OpenSSL reference-counts it, so connections that started on an older table keep theirs while
// the worker frees its own reference at the switch.

/// What a terminating server needs: bytes borrowed from the route table for the duration of
/// `ServerContext.make`.
public struct ServerContextConfig {
    public var certificateChainPEM: UnsafeRawBufferPointer
    public var privateKeyPEM: UnsafeRawBufferPointer
    /// Empty: no client certificates requested.
    public var caCertificatesPEM: UnsafeRawBufferPointer
    /// Client certificates: 0 none, 1 required (MUTUAL), 2 requested and verified if sent
    /// (OPTIONAL_MUTUAL).
    public var clientCertificates: UInt8
    /// TLS versions as 10...13; 0 = default (minimum 1.2, maximum 1.3).
    public var minVersion: UInt8
    public var maxVersion: UInt8
    /// OpenSSL cipher list for TLS ≤ 1.2; empty = Envoy's default list.
    public var cipherSuites: UnsafeRawBufferPointer
    /// A second certificate chain and key of another key type (RSA beside ECDSA); empty = none.
    public var secondCertificateChainPEM = UnsafeRawBufferPointer(start: nil, count: 0)
    public var secondPrivateKeyPEM = UnsafeRawBufferPointer(start: nil, count: 0)
    /// PEM CRLs that client certificates are checked against (with `caCertificatesPEM`);
    /// empty = no revocation check.
    public var crlPEM = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Session-ticket keys shared by every worker (`struct ing_ticket_keys` in shared memory);
    /// nil: OpenSSL's per-context keys (resumption only on the same worker).
    public var ticketKeys: UnsafeMutableRawPointer? = nil

    public init(certificateChainPEM: UnsafeRawBufferPointer, privateKeyPEM: UnsafeRawBufferPointer,
                caCertificatesPEM: UnsafeRawBufferPointer, clientCertificates: UInt8,
                minVersion: UInt8, maxVersion: UInt8, cipherSuites: UnsafeRawBufferPointer) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.caCertificatesPEM = caCertificatesPEM
        self.clientCertificates = clientCertificates
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.cipherSuites = cipherSuites
    }
}

public enum ServerContext {
    /// Envoy's default server cipher list for TLS 1.2 (BoringSSL's equal-preference groups
    /// written in OpenSSL order); TLS 1.3 suites are OpenSSL's defaults, as in Envoy.
    public static let defaultCipherList =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
        + "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"

    /// Builds an SSL_CTX, or returns the reason it could not (the supervisor checked the same
    /// bytes, so a failure here means a corrupt table or an OpenSSL limit).
    public static func make(_ c: ServerContextConfig) -> (context: OpaquePointer?, error: String?) {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { return (nil, "SSL_CTX_new: " + lastError()) }
        func fail(_ what: String) -> (OpaquePointer?, String?) {
            let e = what + ": " + lastError()
            SSL_CTX_free(ctx)
            return (nil, e)
        }
        let minV = c.minVersion == 0 ? TLS1_2_VERSION : protoVersion(c.minVersion)
        let maxV = c.maxVersion == 0 ? TLS1_3_VERSION : protoVersion(c.maxVersion)
        if minV < TLS1_2_VERSION { SSL_CTX_set_security_level(ctx, 0) }   // TLS 1.0/1.1 need SHA-1
        guard ing_ssl_ctx_set_min_proto(ctx, minV) == 1, ing_ssl_ctx_set_max_proto(ctx, maxV) == 1 else {
            return fail("protocol versions")
        }
        // No renegotiation (a client-initiated renegotiation is refused with an alert), no
        // compression (CRIME), server cipher preference.
        SSL_CTX_set_options(ctx, ing_ssl_server_options())
        // Idle connections give their 34 KiB of record buffers back (nginx does the same).
        _ = ing_ssl_ctx_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        // Stateless resumption only (tickets); no server-side cache to share between workers.
        _ = ing_ssl_ctx_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        _ = ing_ssl_ctx_set_num_tickets(ctx, 1)
        let sidContext: [UInt8] = Array("ingressd".utf8)
        _ = sidContext.withUnsafeBufferPointer { SSL_CTX_set_session_id_context(ctx, $0.baseAddress, UInt32($0.count)) }
        let ciphers = c.cipherSuites.count > 0 ? String(decoding: c.cipherSuites, as: UTF8.self) : defaultCipherList
        guard SSL_CTX_set_cipher_list(ctx, ciphers) == 1 else { return fail("cipher suites \"\(ciphers)\"") }

        // Certificate chains: leaf first, then intermediates. A second one of another key type
        // sits beside the first (OpenSSL keeps one per type; the chain calls apply to the
        // certificate set last), and the handshake picks the one the client can verify.
        if let e = useCertificate(ctx, c.certificateChainPEM, c.privateKeyPEM) { return fail(e) }
        if c.secondCertificateChainPEM.count > 0,
           let e = useCertificate(ctx, c.secondCertificateChainPEM, c.secondPrivateKeyPEM) { return fail("second " + e) }
        if c.clientCertificates != 0 {
            guard let cas = readCertificates(c.caCertificatesPEM), !cas.isEmpty else {
                return fail("CA certificates: no PEM certificate")
            }
            defer { for x in cas { X509_free(x) } }
            let store = SSL_CTX_get_cert_store(ctx)
            for x in cas {
                guard X509_STORE_add_cert(store, x) == 1 else { return fail("CA certificates") }
                _ = SSL_CTX_add_client_CA(ctx, x)
            }
            if c.crlPEM.count > 0 {
                // Revoked client certificates fail the handshake; every certificate of the chain
                // is checked, as Envoy does unless only_verify_leaf_cert_crl is set.
                guard let crls = readCRLs(c.crlPEM), !crls.isEmpty else { return fail("CRL: no PEM CRL") }
                defer { for x in crls { X509_CRL_free(x) } }
                for x in crls {
                    guard X509_STORE_add_crl(store, x) == 1 else { return fail("CRL") }
                }
                _ = X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL))
            }
            let mode = c.clientCertificates == 1 ? (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT) : SSL_VERIFY_PEER
            SSL_CTX_set_verify(ctx, mode, nil)
        }
        SSL_CTX_set_alpn_select_cb(ctx, selectALPN, nil)
        if let keys = c.ticketKeys {
            guard ing_ssl_ctx_use_shared_ticket_keys(ctx, keys) == 1 else { return fail("session ticket keys") }
        }
        return (ctx, nil)
    }

    public static func free(_ ctx: OpaquePointer?) {
        if let ctx { SSL_CTX_free(ctx) }
    }

    static func protoVersion(_ v: UInt8) -> Int32 {
        switch v {
        case 10: return TLS1_VERSION
        case 11: return TLS1_1_VERSION
        case 12: return TLS1_2_VERSION
        default: return TLS1_3_VERSION
        }
    }

    static func withBIO<T>(_ bytes: UnsafeRawBufferPointer, _ body: (OpaquePointer) -> T?) -> T? {
        guard bytes.count > 0, let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { return nil }
        defer { BIO_free(bio) }
        return body(bio)
    }

    /// Sets one certificate chain and its key on `ctx`; the reason when it cannot.
    static func useCertificate(_ ctx: OpaquePointer, _ chainPEM: UnsafeRawBufferPointer,
                               _ keyPEM: UnsafeRawBufferPointer) -> String? {
        guard let certs = readCertificates(chainPEM), !certs.isEmpty else { return "certificate chain: no PEM certificate" }
        defer { for x in certs { X509_free(x) } }
        guard SSL_CTX_use_certificate(ctx, certs[0]) == 1 else { return "certificate" }
        for x in certs.dropFirst() {
            guard ing_ssl_ctx_add1_chain_cert(ctx, x) == 1 else { return "certificate chain" }
        }
        guard let key = withBIO(keyPEM, { PEM_read_bio_PrivateKey($0, nil, nil, nil) }) else { return "private key: no PEM key" }
        defer { EVP_PKEY_free(key) }
        guard SSL_CTX_use_PrivateKey(ctx, key) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
            return "private key does not match the certificate"
        }
        return nil
    }

    /// Every PEM CRL in `bytes`, in order (nil: none could be read).
    static func readCRLs(_ bytes: UnsafeRawBufferPointer) -> [OpaquePointer]? {
        withBIO(bytes) { bio in
            var out: [OpaquePointer] = []
            while let x = PEM_read_bio_X509_CRL(bio, nil, nil, nil) { out.append(x) }
            ERR_clear_error()
            return out
        }
    }

    /// Every PEM certificate in `bytes`, in order (nil: none could be read).
    static func readCertificates(_ bytes: UnsafeRawBufferPointer) -> [OpaquePointer]? {
        withBIO(bytes) { bio in
            var out: [OpaquePointer] = []
            while let x = PEM_read_bio_X509(bio, nil, nil, nil) { out.append(x) }
            ERR_clear_error()   // the loop ends on "no start line"
            return out
        }
    }

    /// The oldest error on this thread's OpenSSL error queue as text (the queue is cleared).
    public static func lastError() -> String {
        let e = ERR_get_error()
        ERR_clear_error()
        guard e != 0 else { return "unknown error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(e, &buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// ALPN, in the server's order of preference as Envoy's gateway listeners: h2 when the client
/// offers it, else HTTP/1.1; a client that offers neither gets no protocol and the handshake
/// goes on (Envoy: it still gets HTTP/1.1 on the connection).
private let selectALPN: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                                        UnsafeMutablePointer<UInt8>?, UnsafePointer<UInt8>?, UInt32,
                                        UnsafeMutableRawPointer?) -> Int32 = { _, out, outLen, inp, inLen, _ in
    guard let inp, let out, let outLen else { return SSL_TLSEXT_ERR_NOACK }
    var http11: UnsafePointer<UInt8>? = nil
    var k = 0
    let n = Int(inLen)
    while k < n {
        let l = Int(inp[k])
        if k + 1 + l > n { break }
        if l == 2 && memeq(inp + k + 1, "h2") {
            out.pointee = inp + k + 1
            outLen.pointee = 2
            return SSL_TLSEXT_ERR_OK
        }
        if l == 8 && memeq(inp + k + 1, "http/1.1") { http11 = inp + k + 1 }
        k += 1 + l
    }
    if let http11 {
        out.pointee = http11
        outLen.pointee = 8
        return SSL_TLSEXT_ERR_OK
    }
    return SSL_TLSEXT_ERR_NOACK
}

/// The protocol ALPN selected on `ssl` is h2.
public func alpnSelectedH2(_ ssl: OpaquePointer) -> Bool {
    var p: UnsafePointer<UInt8>? = nil
    var n: UInt32 = 0
    SSL_get0_alpn_selected(ssl, &p, &n)
    guard let p, n == 2 else { return false }
    return p[0] == UInt8(ascii: "h") && p[1] == UInt8(ascii: "2")
}

@inline(__always)
private func memeq(_ p: UnsafePointer<UInt8>, _ s: StaticString) -> Bool {
    let q = s.utf8Start
    for i in 0..<s.utf8CodeUnitCount where p[i] != q[i] { return false }
    return true
}
