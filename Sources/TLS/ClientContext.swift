import COpenSSL

// OpenSSL client contexts for TLS to upstreams (DestinationRule `trafficPolicy.tls`), one per
// cluster per route table, built by a worker from the PEM bytes its table carries.

public struct ClientContextConfig {
    /// PEM CA bundle; empty = the system's CAs (OpenSSL's default paths).
    public var caCertificatesPEM: UnsafeRawBufferPointer
    /// MUTUAL: the client certificate chain and key; empty for SIMPLE.
    public var certificateChainPEM: UnsafeRawBufferPointer
    public var privateKeyPEM: UnsafeRawBufferPointer
    /// Verify the upstream's certificate chain (false: `insecureSkipVerify`).
    public var verify: Bool
    /// PEM CRLs the upstream's chain is checked against (with `verify`); empty = no revocation
    /// check.
    public var crlPEM = UnsafeRawBufferPointer(start: nil, count: 0)

    public init(caCertificatesPEM: UnsafeRawBufferPointer, certificateChainPEM: UnsafeRawBufferPointer,
                privateKeyPEM: UnsafeRawBufferPointer, verify: Bool) {
        self.caCertificatesPEM = caCertificatesPEM
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.verify = verify
    }
}

public enum ClientContext {
    /// The SSL_CTX ex_data index of the upstream session caches (COpenSSL/shim.h).
    static let sessionCacheIndex = ing_session_cache_index()

    /// Builds a client SSL_CTX (TLS 1.2–1.3, as Envoy's upstream defaults) that keeps the
    /// sessions its connections get for the next connection to resume (`offerSession`, as
    /// Envoy's upstream session cache), or the reason not.
    public static func make(_ c: ClientContextConfig) -> (context: OpaquePointer?, error: String?) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { return (nil, "SSL_CTX_new: " + ServerContext.lastError()) }
        func fail(_ what: String) -> (OpaquePointer?, String?) {
            let e = what + ": " + ServerContext.lastError()
            SSL_CTX_free(ctx)
            return (nil, e)
        }
        guard ing_ssl_ctx_set_min_proto(ctx, TLS1_2_VERSION) == 1, ing_ssl_ctx_set_max_proto(ctx, TLS1_3_VERSION) == 1 else {
            return fail("protocol versions")
        }
        _ = ing_ssl_ctx_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        guard sessionCacheIndex >= 0, ing_client_session_cache(ctx, sessionCacheIndex) == 1 else {
            return fail("session cache")
        }
        if c.verify {
            if c.caCertificatesPEM.count > 0 {
                guard let cas = ServerContext.readCertificates(c.caCertificatesPEM), !cas.isEmpty else {
                    return fail("CA certificates: no PEM certificate")
                }
                defer { for x in cas { X509_free(x) } }
                let store = SSL_CTX_get_cert_store(ctx)
                for x in cas where X509_STORE_add_cert(store, x) != 1 { return fail("CA certificates") }
            } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
                return fail("the system's CA certificates")
            }
            if c.crlPEM.count > 0 {
                // A revoked upstream certificate fails the handshake (a connect failure, 503 UF);
                // every certificate of the chain is checked, as Envoy does unless
                // only_verify_leaf_cert_crl is set, so each issuer needs its CRL here.
                guard let crls = ServerContext.readCRLs(c.crlPEM), !crls.isEmpty else { return fail("CRL: no PEM CRL") }
                defer { for x in crls { X509_CRL_free(x) } }
                let store = SSL_CTX_get_cert_store(ctx)
                for x in crls where X509_STORE_add_crl(store, x) != 1 { return fail("CRL") }
                _ = X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL))
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        if c.certificateChainPEM.count > 0 {
            guard let certs = ServerContext.readCertificates(c.certificateChainPEM), !certs.isEmpty else {
                return fail("client certificate: no PEM certificate")
            }
            defer { for x in certs { X509_free(x) } }
            guard SSL_CTX_use_certificate(ctx, certs[0]) == 1 else { return fail("client certificate") }
            for x in certs.dropFirst() where ing_ssl_ctx_add1_chain_cert(ctx, x) != 1 { return fail("client certificate chain") }
            guard let key = ServerContext.withBIO(c.privateKeyPEM, { PEM_read_bio_PrivateKey($0, nil, nil, nil) }) else {
                return fail("client private key: no PEM key")
            }
            defer { EVP_PKEY_free(key) }
            guard SSL_CTX_use_PrivateKey(ctx, key) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
                return fail("client private key does not match the certificate")
            }
        }
        return (ctx, nil)
    }

    /// Before the handshake of `ssl` (made from a context of `make`): offers the session kept
    /// for `key` (the endpoint and SNI, hashed, nonzero) and has the connection's own sessions
    /// kept under it. True when a session was offered.
    @inline(__always)
    public static func offerSession(_ ssl: OpaquePointer, key: UInt64) -> Bool {
        ing_client_session_offer(ssl, key) == 1
    }
}
