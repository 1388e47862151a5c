// Certificates for the TLS tests, made at test time with the openssl CLI (Debian's openssl):
// a CA, server certificates for any names, and client certificates for mutual TLS. ECDSA
// P-256, as the perf bar asks for.

import Foundation

struct TestPKI {
    let harness: Harness
    let dir: String

    /// Creates the CA in `harness`'s directory.
    init(_ harness: Harness, name: String = "pki") throws {
        self.harness = harness
        dir = harness.path(name)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.crt", "-days", "3650",
                     "-subj", "/CN=ingressd test CA \(name)"])
    }

    var caPath: String { "\(dir)/ca.crt" }

    /// A certificate for `names` (subjectAltName DNS entries) signed by the CA: (crt, key) paths.
    @discardableResult
    func issue(_ file: String, names: [String], client: Bool = false, days: Int = 3650, rsa: Bool = false) throws -> (crt: String, key: String) {
        let crt = "\(dir)/\(file).crt", key = "\(dir)/\(file).key", csr = "\(dir)/\(file).csr", ext = "\(dir)/\(file).ext"
        try openssl(["req", "-newkey"] + (rsa ? ["rsa:2048"] : ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]) + ["-nodes",
                     "-keyout", key, "-out", csr, "-subj", "/CN=\(names[0])"])
        var extText = "subjectAltName=" + names.map { "DNS:\($0)" }.joined(separator: ",") + "\n"
        if client { extText += "extendedKeyUsage=clientAuth\n" }
        try extText.write(toFile: ext, atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", csr, "-CA", caPath, "-CAkey", "\(dir)/ca.key", "-CAcreateserial",
                     "-out", crt, "-days", String(days), "-extfile", ext])
        return (crt, key)
    }

    /// Writes a Kubernetes-TLS-secret-shaped credential directory DIR/NAME/{tls.crt,tls.key[,ca.crt]}.
    func credential(in credentialsDir: String, name: String, names: [String], withCA: Bool = false) throws {
        let (crt, key) = try issue("cred-\(name)", names: names)
        let d = "\(credentialsDir)/\(name)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        for (from, to) in [(crt, "tls.crt"), (key, "tls.key")] + (withCA ? [(caPath, "ca.crt")] : []) {
            try? FileManager.default.removeItem(atPath: "\(d)/\(to)")
            try FileManager.default.copyItem(atPath: from, toPath: "\(d)/\(to)")
        }
    }

    /// Revokes the certificates `crts` (issued by this CA) and writes the CA's CRL listing every
    /// certificate revoked so far; returns its path.
    @discardableResult
    func revoke(_ crts: [String], crl: String = "ca.crl") throws -> String {
        let index = "\(dir)/index.txt", cnf = "\(dir)/ca.cnf"
        if !FileManager.default.fileExists(atPath: index) { FileManager.default.createFile(atPath: index, contents: nil) }
        try "[ca]\ndefault_ca = d\n[d]\ndatabase = \(index)\ndefault_md = sha256\ndefault_crl_days = 30\n"
            .write(toFile: cnf, atomically: true, encoding: .utf8)
        for c in crts { try openssl(["ca", "-config", cnf, "-revoke", c, "-keyfile", "\(dir)/ca.key", "-cert", caPath]) }
        let out = "\(dir)/\(crl)"
        try openssl(["ca", "-config", cnf, "-gencrl", "-keyfile", "\(dir)/ca.key", "-cert", caPath, "-out", out])
        return out
    }

    func openssl(_ args: [String]) throws {
        let r = try harness.run("openssl", args, timeout: 30)
        guard r.status == 0 else { throw HarnessError("openssl \(args.joined(separator: " ")) failed: \(r.output)") }
    }
}
