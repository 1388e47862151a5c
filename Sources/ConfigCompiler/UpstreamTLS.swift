// DestinationRule `trafficPolicy.tls` (ClientTLSSettings, istio-semantics.md §4) → the
// ClusterTLSSpec of a cluster: how the gateway originates TLS to the endpoints (TLSSpec.swift
// states what the data plane does with it). Which block applies to a cluster is Istio's merge
// (TrafficPolicies.swift: top level, replaced by its port level; subset; subset port level).
//
//   DISABLE (or no mode)   plain text: no spec.
//   SIMPLE                 server-authenticated TLS; CA from `caCertificates`, or the
//                          credential's CA with `credentialName`, else the system's CAs.
//   MUTUAL                 plus the gateway's client certificate: `clientCertificate` and
//                          `privateKey`, or the credential's certificate and key.
//   ISTIO_MUTUAL           mesh-only (istiod's workload certificates): a validation error.
//                          Istio's gateway without a mesh CA never gets the certificate, so the
//                          cluster's connections all fail; ingressd says so at load instead of
//                          failing every request, and never falls back to plain text.
//
// `credentialName: NAME` is the directory NAME under `--credentials-dir` laid out as a Secret
// (IstioConfig/Credentials.swift): `tls.crt`/`cert` and `tls.key`/`key` hold the client
// certificate (MUTUAL), `ca.crt`/`cacert` in NAME or in NAME-cacert the CA (Istio reads it
// from the `NAME-cacert` SDS resource). With `credentialName` the CA is required unless
// `insecureSkipVerify` (Istio's validation context then names that resource, and a missing one
// leaves the cluster unable to connect).
//
// Revocation (SIMPLE, MUTUAL): `caCrl: PATH`, or with `credentialName` the credential's
// `ca.crl`/`crl` (in NAME or NAME-cacert, optional; `caCrl` beside `credentialName` is Istio's
// validation error). The upstream's whole chain is checked against it, as Envoy does: a revoked
// certificate, or one whose issuer has no CRL there, fails the handshake (503 UF). Not with
// `insecureSkipVerify` (nothing is verified; a validation error with `caCrl`).
//
// Files are read and checked here, as for Gateway servers (TLSServers.swift): an unreadable or
// non-PEM file, a CRL file without a PEM CRL, or a key that does not match its certificate, is
// an error naming the field and the path; an expired or not-yet-valid client certificate or CA
// is a warning. The CRL is a watched certificate file: a reload publishes a new one.
import IstioConfig
import RouteTable

extension Registry {
    /// The spec for the `tls` block at `path` of DestinationRule `rule`; nil for DISABLE, a
    /// mesh-only or unknown mode (validation errors), or material that fails its checks (errors
    /// here). Compiled once per block: later clusters get the same result and no new diagnostics.
    mutating func clusterTLS(_ tls: ClientTLSSettings, rule: ResourceMeta, path p: String) -> ClusterTLSSpec? {
        let key = "\(rule.qualifiedName) \(p)"
        if let done = tlsBlocks[key] { return done }
        let spec = compileClusterTLS(tls, rule: rule, path: p)
        tlsBlocks[key] = .some(spec)
        return spec
    }

    private mutating func compileClusterTLS(_ tls: ClientTLSSettings, rule: ResourceMeta, path p: String) -> ClusterTLSSpec? {
        let mode: ClusterTLSMode
        switch (tls.mode ?? "DISABLE").uppercased() {
        case "SIMPLE": mode = .simple
        case "MUTUAL": mode = .mutual
        default: return nil  // DISABLE; ISTIO_MUTUAL and unknown modes are validation errors
        }
        let skip = tls.insecureSkipVerify ?? false
        var failed = false
        func fail(_ field: String, _ message: String) {
            diagnostics.append(rule.diagnostic(.error, field, message))
            failed = true
        }

        // Where the material comes from: (diagnostic path, file path) each.
        var cert: (String, String)?, key: (String, String)?, ca: (String, String)?, crl: (String, String)?
        if let credential = tls.credentialName {
            let field = "\(p).credentialName", dir = options.credentialsDir
            let files = CredentialFiles.resolve(credential, in: dir)
            if mode == .mutual {
                let certs = CredentialFiles.certificateCandidates(credential, in: dir)
                let keys = CredentialFiles.keyCandidates(credential, in: dir)
                certificateFiles += certs + keys
                cert = (field, files.certificate ?? certs[0])
                key = (field, files.privateKey ?? keys[0])
            }
            if !skip {
                let cas = CredentialFiles.caCandidates(credential, in: dir)
                certificateFiles += cas
                if let f = files.caCertificates {
                    ca = (field, f)
                } else {
                    fail(field, "credential \"\(credential)\" has no CA certificate to verify the upstream with (looked for \(cas.joined(separator: ", "))); add ca.crt, or set insecureSkipVerify")
                }
                let crls = CredentialFiles.crlCandidates(credential, in: dir)
                certificateFiles += crls
                crl = crls.first(where: { CredentialFiles.fileExists($0) }).map { (field, $0) }
            }
        } else {
            cert = tls.clientCertificate.map { ("\(p).clientCertificate", $0) }
            key = tls.privateKey.map { ("\(p).privateKey", $0) }
            if !skip {
                ca = tls.caCertificates.map { ("\(p).caCertificates", $0) }
                crl = tls.caCrl.map { ("\(p).caCrl", $0) }
            }
        }
        if mode == .simple { cert = nil; key = nil }  // SIMPLE sends no client certificate
        if mode == .mutual, cert == nil || key == nil { return nil }  // validation error
        certificateFiles += [cert?.1, key?.1, ca?.1, crl?.1].compactMap { $0 }

        var chainPEM: [UInt8] = [], keyPEM: [UInt8] = [], caPEM: [UInt8] = []
        var found = CertificateFindings()
        if let cert, let key {
            (chainPEM, keyPEM) = PEMCheck.readCertificateAndKey(
                cert: cert, key: key, CertificateUse(what: "client certificate", label: "client certificate",
                                                     consequence: "upstream TLS handshakes will fail"), &found)
        }
        if let (caField, caPath) = ca {
            caPEM = PEMCheck.readCertificates(caPath, CertificateUse(what: "CA certificate", label: "CA certificate",
                                                                     consequence: "upstream TLS handshakes will fail"),
                                              field: caField, &found) ?? []
        }
        var crlPEM: [UInt8] = []
        if let (crlField, crlPath) = crl {
            switch PEMCheck.read(crlPath) {
            case .failure(let e): fail(crlField, e.message)
            case .success(let bytes):
                if PEMCheck.crlCount(bytes) > 0 {
                    crlPEM = bytes
                } else {
                    fail(crlField, "\(crlPath) holds no PEM certificate revocation list (X509 CRL)")
                }
            }
        }
        for w in found.warnings { diagnostics.append(rule.diagnostic(.warning, w.field, w.message)) }
        for e in found.errors { fail(e.field, e.message) }
        if failed { return nil }
        return ClusterTLSSpec(mode: mode, caCertificatesPEM: caPEM, clientCertificateChainPEM: chainPEM,
                              clientPrivateKeyPEM: keyPEM, sni: tls.sni ?? "",
                              subjectAltNames: skip ? [] : tls.subjectAltNames, insecureSkipVerify: skip,
                              crlPEM: crlPEM)
    }
}
