// PEM certificate and key checks with OpenSSL, at compile time (so `ingressd check` and a
// reload catch what a TLS handshake would fail on later), and certificate summaries for
// `ingressd routes` and `/config_dump`. Control plane only. Private key bytes never leave
// `checkPrivateKey`: no message, summary or log line quotes them.
import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// What a PEM certificate chain holds, for people.
public struct CertificateSummary: Sendable, Equatable {
    /// The leaf's subject, OpenSSL one-line form: "/CN=a.example.com/O=Example".
    public var subject: String
    /// The leaf's validity, ISO 8601 UTC ("2026-12-05T12:00:00Z").
    public var notBefore: String
    public var notAfter: String
    /// Certificates in the PEM text (leaf first).
    public var count: Int
    /// Now is past notAfter / before notBefore.
    public var expired: Bool
    public var notYetValid: Bool
}

enum PEMCheck {
    /// Largest certificate, key or CA file read (1 MiB): a CA bundle of a few hundred
    /// certificates fits; anything larger is not a certificate file.
    static let maxFileBytes = 1 << 20

    /// The file's bytes, or a message naming the path and the reason.
    static func read(_ path: String) -> Result<[UInt8], PEMError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(PEMError("cannot read \(path): \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(PEMError("cannot read \(path): \(String(cString: strerror(errno)))"))
            }
            if n == 0 { break }
            out += chunk[0..<n]
            if out.count > maxFileBytes {
                return .failure(PEMError("\(path) is larger than \(maxFileBytes) bytes; not a certificate or key file"))
            }
        }
        return .success(out)
    }

    /// Runs `body` over a read-only memory BIO of `bytes`.
    static func withBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) -> T) -> T? {
        bytes.withUnsafeBytes { raw -> T? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return body(bio)
        }
    }

    /// Never prompt for a pass phrase (OpenSSL's default callback reads the terminal): an
    /// encrypted key is an error instead.
    static let noPassphrase: @convention(c) (UnsafeMutablePointer<CChar>?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = { _, _, _, _ in 0 }

    /// The certificates of a PEM text (X509 pointers, leaf first; the caller frees them).
    static func certificates(_ pem: [UInt8]) -> [OpaquePointer] {
        let certs = withBIO(pem) { bio -> [OpaquePointer] in
            var out: [OpaquePointer] = []
            while let x = PEM_read_bio_X509(bio, nil, noPassphrase, nil) { out.append(x) }
            return out
        } ?? []
        ERR_clear_error()  // the read that ends the loop leaves "no start line" behind
        return certs
    }

    /// Summary of a PEM chain; nil when it holds no certificate.
    static func summary(_ pem: [UInt8]) -> CertificateSummary? {
        let certs = certificates(pem)
        defer { for x in certs { X509_free(x) } }
        guard let leaf = certs.first else { return nil }
        var buf = [CChar](repeating: 0, count: 512)
        let subject = buf.withUnsafeMutableBufferPointer { b -> String in
            guard X509_NAME_oneline(X509_get_subject_name(leaf), b.baseAddress, Int32(b.count)) != nil else { return "?" }
            return String(cString: b.baseAddress!)
        }
        let before = X509_get0_notBefore(leaf), after = X509_get0_notAfter(leaf)
        return CertificateSummary(subject: subject, notBefore: iso8601(before), notAfter: iso8601(after),
                                  count: certs.count,
                                  expired: X509_cmp_current_time(after) < 0,
                                  notYetValid: X509_cmp_current_time(before) > 0)
    }

    static func iso8601(_ t: UnsafePointer<ASN1_TIME>?) -> String {
        var tm = tm()
        guard let t, ASN1_TIME_to_tm(t, &tm) == 1 else { return "?" }
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))Z"
    }

    /// nil when `keyPEM` is an unencrypted PEM private key that belongs to the leaf of
    /// `chainPEM`; otherwise what is wrong (the key's bytes are never part of the message).
    static func checkPrivateKey(_ keyPEM: [UInt8], path: String, chainPEM: [UInt8], chainPath: String) -> PEMError? {
        let key = withBIO(keyPEM) { PEM_read_bio_PrivateKey($0, nil, noPassphrase, nil) } ?? nil
        ERR_clear_error()
        guard let key else {
            return PEMError("\(path) is not a PEM private key (or it is encrypted: ingressd needs an unencrypted key)")
        }
        defer { EVP_PKEY_free(key) }
        let certs = certificates(chainPEM)
        defer { for x in certs { X509_free(x) } }
        guard let leaf = certs.first else { return nil }  // reported on the certificate
        let ok = X509_check_private_key(leaf, key) == 1
        ERR_clear_error()
        return ok ? nil : PEMError("\(path) does not match the certificate \(chainPath) (the key is not the certificate's)")
    }
}

extension PEMCheck {
    /// The key type of the leaf's public key (OpenSSL's EVP_PKEY base id, e.g. EVP_PKEY_RSA,
    /// EVP_PKEY_EC), its name for messages; nil when `pem` holds no certificate.
    static func keyType(_ pem: [UInt8]) -> (id: Int32, name: String)? {
        let certs = certificates(pem)
        defer { for x in certs { X509_free(x) } }
        guard let leaf = certs.first, let key = X509_get0_pubkey(leaf) else { return nil }
        let id = EVP_PKEY_get_base_id(key)
        let name = id == EVP_PKEY_RSA ? "RSA" : id == EVP_PKEY_EC ? "ECDSA" : id == EVP_PKEY_ED25519 ? "Ed25519"
            : String(cString: OBJ_nid2sn(id))
        return (id, name)
    }

    /// The number of PEM CRLs in `pem` (0: none could be read).
    static func crlCount(_ pem: [UInt8]) -> Int {
        let n = withBIO(pem) { bio -> Int in
            var n = 0
            while let c = PEM_read_bio_X509_CRL(bio, nil, noPassphrase, nil) {
                X509_CRL_free(c)
                n += 1
            }
            return n
        } ?? 0
        ERR_clear_error()
        return n
    }
}

struct PEMError: Error, Equatable {
    var message: String
    init(_ message: String) { self.message = message }
}

/// The leaf of `pem` summarised (control plane: `routes`, `/config_dump`); nil when `pem` holds
/// no certificate.
public func certificateSummary(_ pem: [UInt8]) -> CertificateSummary? {
    PEMCheck.summary(pem)
}

/// How a certificate file is named in messages, and what an expired one will cause.
struct CertificateUse {
    /// "certificate", "client certificate", "CA certificate".
    var what: String
    /// In parentheses after "holds no PEM certificate" (nil: nothing).
    var label: String?
    /// "clients will refuse it", "upstream TLS handshakes will fail".
    var consequence: String
}

/// What checking certificate files found: errors and warnings, each on a field.
struct CertificateFindings {
    var errors: [(field: String, message: String)] = []
    var warnings: [(field: String, message: String)] = []
}

extension PEMCheck {
    /// The bytes of a PEM certificate file (a chain or a CA bundle); a warning when its first
    /// certificate is expired or not yet valid, an error naming the path and why it failed.
    static func readCertificates(_ path: String, _ use: CertificateUse, field: String,
                                 _ findings: inout CertificateFindings) -> [UInt8]? {
        switch read(path) {
        case .failure(let e):
            findings.errors.append((field, e.message))
            return nil
        case .success(let bytes):
            guard let s = summary(bytes) else {
                findings.errors.append((field, "\(path) holds no PEM certificate" + (use.label.map { " (\($0))" } ?? "")))
                return nil
            }
            if s.expired {
                findings.warnings.append((field, "\(use.what) \(path) (\(s.subject)) expired on \(s.notAfter); \(use.consequence)"))
            } else if s.notYetValid {
                findings.warnings.append((field, "\(use.what) \(path) (\(s.subject)) is not valid before \(s.notBefore); \(use.consequence)"))
            }
            return bytes
        }
    }

    /// A certificate chain and its private key, each checked (read, PEM, the key the leaf's);
    /// a part that failed is empty.
    static func readCertificateAndKey(cert: (field: String, path: String), key: (field: String, path: String),
                                      _ use: CertificateUse, _ findings: inout CertificateFindings) -> (chain: [UInt8], key: [UInt8]) {
        let chainPEM = readCertificates(cert.path, use, field: cert.field, &findings) ?? []
        var keyPEM: [UInt8] = []
        switch read(key.path) {
        case .failure(let e): findings.errors.append((key.field, e.message))
        case .success(let bytes):
            if let e = checkPrivateKey(bytes, path: key.path, chainPEM: chainPEM, chainPath: cert.path) {
                findings.errors.append((key.field, e.message))
            } else {
                keyPEM = bytes
            }
        }
        return (chainPEM, keyPEM)
    }
}
