// `tls.credentialName` → files (DESIGN.md §4, `--credentials-dir`). Istio reads a Kubernetes
// Secret; ingressd has no API client, so a credential is a directory named after the Secret
// whose files are the Secret's keys, as `kubectl create secret tls` / a Secret volume mount
// lays them out:
//   DIR/NAME/tls.crt  or DIR/NAME/cert     certificate chain (PEM, leaf first)
//   DIR/NAME/tls.key  or DIR/NAME/key      private key (PEM, unencrypted)
//   DIR/NAME/ca.crt   or DIR/NAME/cacert   client CA (MUTUAL, OPTIONAL_MUTUAL), else
//   DIR/NAME-cacert/ca.crt or .../cacert   Istio's separate "<secret>-cacert" Secret
//   DIR/NAME/ca.crl   or DIR/NAME/crl      client CRLs (optional; also in NAME-cacert)
// The first existing name of each list wins (Istio's order of keys: tls.* before the generic
// names). `caCertCredentialName: CA` is DIR/CA/ca.crt or DIR/CA/cacert and takes precedence.
#if canImport(Glibc)
import Glibc
#endif

/// `--credentials-dir`'s default (DESIGN.md §4).
public let defaultCredentialsDir = "/etc/ingressd/credentials"

public struct CredentialFiles: Sendable, Equatable {
    /// Existing files; nil where none of the candidates exists.
    public var certificate: String?
    public var privateKey: String?
    public var caCertificates: String?

    /// Resolves credential `name` under `dir`. `exists` is replaceable for tests.
    public static func resolve(_ name: String, in dir: String,
                               exists: (String) -> Bool = fileExists) -> CredentialFiles {
        CredentialFiles(certificate: certificateCandidates(name, in: dir).first(where: exists),
                        privateKey: keyCandidates(name, in: dir).first(where: exists),
                        caCertificates: caCandidates(name, in: dir).first(where: exists))
    }

    /// The CA of `caCertCredentialName: name`.
    public static func resolveCA(_ name: String, in dir: String, exists: (String) -> Bool = fileExists) -> String? {
        caCandidates(name, in: dir, separate: false).first(where: exists)
    }

    public static func certificateCandidates(_ name: String, in dir: String) -> [String] {
        ["tls.crt", "cert"].map { path(dir, name, $0) }
    }

    public static func keyCandidates(_ name: String, in dir: String) -> [String] {
        ["tls.key", "key"].map { path(dir, name, $0) }
    }

    /// With `separate`, also the "<name>-cacert" credential.
    public static func caCandidates(_ name: String, in dir: String, separate: Bool = true) -> [String] {
        ["ca.crt", "cacert"].map { path(dir, name, $0) }
            + (separate ? ["ca.crt", "cacert"].map { path(dir, "\(name)-cacert", $0) } : [])
    }

    /// Client certificate revocation lists of credential `name` (Istio's Secret keys `ca.crl`
    /// and `crl`), in it or in its "<name>-cacert" credential; optional.
    public static func crlCandidates(_ name: String, in dir: String) -> [String] {
        ["ca.crl", "crl"].map { path(dir, name, $0) } + ["ca.crl", "crl"].map { path(dir, "\(name)-cacert", $0) }
    }

    /// DIR/NAME/FILE, without doubling a trailing slash of DIR.
    static func path(_ dir: String, _ name: String, _ file: String) -> String {
        var d = dir
        while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
        return d == "/" ? "/\(name)/\(file)" : "\(d)/\(name)/\(file)"
    }

    /// A regular file (or a link to one) that exists; readability is the compiler's check.
    public static func fileExists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
}
