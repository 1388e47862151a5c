import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

// Client-certificate checks of MUTUAL / OPTIONAL_MUTUAL servers beyond the CA (Envoy's
// CertificateValidationContext, as Istio fills it from the Gateway's `tls`):
//   * `subjectAltNames`: one of the certificate's SANs (DNS, URI, e-mail or IP, as text) equals
//     one of the names;
//   * `verifyCertificateHash` (hex SHA-256 of the DER certificate, colons allowed, any case) or
//     `verifyCertificateSpki` (base64 SHA-256 of the DER SubjectPublicKeyInfo): when either list
//     is given, the certificate must match an entry of either.
// Run once per handshake that presented a certificate, after OpenSSL verified the chain.

public enum PeerCertificate {
    /// Whether the client certificate of `ssl` passes the server's lists (each list given as a
    /// count and an accessor for its entries). A connection without a client certificate passes
    /// (OPTIONAL_MUTUAL; MUTUAL never gets here without one).
    public static func passes(_ ssl: OpaquePointer,
                              sanCount: Int32, san: (Int32) -> UnsafeRawBufferPointer,
                              spkiCount: Int32, spki: (Int32) -> UnsafeRawBufferPointer,
                              hashCount: Int32, hash: (Int32) -> UnsafeRawBufferPointer) -> Bool {
        guard sanCount > 0 || spkiCount > 0 || hashCount > 0 else { return true }
        guard let cert = SSL_get1_peer_certificate(ssl) else { return true }
        defer { X509_free(cert) }
        if sanCount > 0 && !sanMatches(cert, count: sanCount, name: san) { return false }
        if spkiCount > 0 || hashCount > 0 {
            var pinned = false
            if hashCount > 0, let h = certificateHashHex(cert) {
                for k in 0..<hashCount where equalHex(hash(k), h) { pinned = true; break }
            }
            if !pinned && spkiCount > 0, let s = spkiBase64(cert) {
                for k in 0..<spkiCount where equalBytes(spki(k), s) { pinned = true; break }
            }
            if !pinned { return false }
        }
        return true
    }

    static func sanMatches(_ cert: OpaquePointer, count: Int32, name: (Int32) -> UnsafeRawBufferPointer) -> Bool {
        guard let raw = X509_get_ext_d2i(cert, NID_subject_alt_name, nil, nil) else { return false }
        let names = OpaquePointer(raw)
        defer { ing_general_names_free(names) }
        for i in 0..<ing_sk_general_name_num(names) {
            guard let g = ing_sk_general_name_value(names, i) else { continue }
            var value: UnsafeRawBufferPointer? = nil
            var ipText = [UInt8]()
            switch g.pointee.type {
            case GEN_DNS, GEN_URI, GEN_EMAIL:
                let s = g.pointee.d.ia5
                if let s, let data = ASN1_STRING_get0_data(s) {
                    value = UnsafeRawBufferPointer(start: data, count: Int(ASN1_STRING_length(s)))
                }
            case GEN_IPADD:
                if let s = g.pointee.d.iPAddress, let data = ASN1_STRING_get0_data(s) {
                    ipText = ipAddressText(UnsafeRawBufferPointer(start: data, count: Int(ASN1_STRING_length(s))))
                }
            default:
                break
            }
            let matched: Bool = ipText.isEmpty
                ? value.map { v in (0..<count).contains { equalBytes(name($0), v) } } ?? false
                : ipText.withUnsafeBytes { v in (0..<count).contains { equalBytes(name($0), v) } }
            if matched { return true }
        }
        return false
    }

    /// Lower-case hex SHA-256 of the DER certificate.
    static func certificateHashHex(_ cert: OpaquePointer) -> [UInt8]? {
        var md = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        guard X509_digest(cert, EVP_sha256(), &md, &len) == 1, len == 32 else { return nil }
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in md { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return out
    }

    /// Base64 SHA-256 of the DER SubjectPublicKeyInfo.
    static func spkiBase64(_ cert: OpaquePointer) -> [UInt8]? {
        guard let key = X509_get_X509_PUBKEY(cert) else { return nil }
        let n = i2d_X509_PUBKEY(key, nil)
        guard n > 0 else { return nil }
        var der = [UInt8](repeating: 0, count: Int(n))
        let wrote = der.withUnsafeMutableBufferPointer { b -> Int32 in
            var p: UnsafeMutablePointer<UInt8>? = b.baseAddress
            return i2d_X509_PUBKEY(key, &p)
        }
        guard wrote == n else { return nil }
        var md = [UInt8](repeating: 0, count: 32)
        var mdLen: UInt32 = 0
        guard EVP_Digest(der, der.count, &md, &mdLen, EVP_sha256(), nil) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: 48)
        let len = EVP_EncodeBlock(&out, md, 32)
        return Array(out[0..<Int(len)])
    }

    /// `configured` (hex, colons allowed, any case) equals `hex` (lower-case, no colons).
    static func equalHex(_ configured: UnsafeRawBufferPointer, _ hex: [UInt8]) -> Bool {
        var k = 0
        for b in configured where b != UInt8(ascii: ":") {
            let lower = b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F") ? b + 32 : b
            guard k < hex.count, hex[k] == lower else { return false }
            k += 1
        }
        return k == hex.count
    }

    static func equalBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && a.elementsEqual(b)
    }

    static func equalBytes(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        b.withUnsafeBytes { equalBytes(a, $0) }
    }

    /// "10.0.0.1" / "2001:db8::1" for a SAN iPAddress (4 or 16 bytes).
    static func ipAddressText(_ b: UnsafeRawBufferPointer) -> [UInt8] {
        if b.count == 4 { return Array("\(b[0]).\(b[1]).\(b[2]).\(b[3])".utf8) }
        guard b.count == 16 else { return [] }
        var text = [CChar](repeating: 0, count: 64)
        var a = [UInt8](b)
        _ = inet_ntop(AF_INET6, &a, &text, 64)
        return text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    }

    /// The x-forwarded-client-cert value Istio's gateways set for a client certificate
    /// (Envoy's SANITIZE_SET with subject, URI and DNS): `Hash=<hex SHA-256 of the DER>;
    /// Subject="<RFC 2253 subject>"` then `;URI=<uri SAN>` and `;DNS=<dns SAN>` for each one.
    /// Returns the bytes written into `out`, 0 without a certificate or when it does not fit.
    public static func forwardedClientCert(_ ssl: OpaquePointer, into out: UnsafeMutableRawBufferPointer) -> Int {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return 0 }
        defer { X509_free(cert) }
        var n = 0
        func put(_ bytes: UnsafeRawBufferPointer) -> Bool {
            guard n + bytes.count <= out.count else { return false }
            out.baseAddress!.advanced(by: n).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            n += bytes.count
            return true
        }
        func put(_ s: StaticString) -> Bool { put(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)) }
        guard let hash = certificateHashHex(cert), put("Hash="), hash.withUnsafeBytes({ put($0) }) else { return 0 }
        // Subject, RFC 2253 (Envoy: X509_NAME_print_ex with XN_FLAG_RFC2253).
        if let bio = BIO_new(BIO_s_mem()) {
            defer { BIO_free(bio) }
            if X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, ing_xn_flag_rfc2253()) >= 0 {
                var p: UnsafeMutablePointer<CChar>? = nil
                let len = Int(ing_bio_get_mem_data(bio, &p))
                if len > 0, let p {
                    guard put(";Subject=\""), put(UnsafeRawBufferPointer(start: p, count: len)), put("\"") else { return 0 }
                }
            }
        }
        if let raw = X509_get_ext_d2i(cert, NID_subject_alt_name, nil, nil) {
            let names = OpaquePointer(raw)
            defer { ing_general_names_free(names) }
            for pass in 0..<2 {
                for i in 0..<ing_sk_general_name_num(names) {
                    guard let g = ing_sk_general_name_value(names, i),
                          g.pointee.type == (pass == 0 ? GEN_URI : GEN_DNS),
                          let s = g.pointee.d.ia5, let data = ASN1_STRING_get0_data(s) else { continue }
                    guard put(pass == 0 ? ";URI=" : ";DNS="),
                          put(UnsafeRawBufferPointer(start: data, count: Int(ASN1_STRING_length(s)))) else { return 0 }
                }
            }
        }
        return n
    }
}
