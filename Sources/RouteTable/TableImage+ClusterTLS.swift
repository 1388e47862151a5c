// Builder side of the ClusterTLS records (TableLayout.swift: ClusterTLS, Cluster bytes 72–75).
// Control plane only.

extension ImageBuilder {
    /// Writes the ClusterTLS record of `c` (or reuses an equal one); returns its index, or -1
    /// for a plain-text cluster (nil or `.disable`). Rejects MUTUAL without a client certificate
    /// chain and key, SIMPLE with either, and insecureSkipVerify with a CA, SANs or CRLs.
    mutating func clusterTLS(_ c: ClusterSpec) throws(TableBuildError) -> Int32 {
        guard let t = c.tls, t.mode != .disable else { return -1 }
        if let i = clusterTLSIndex[t] { return i }
        let client = !t.clientCertificateChainPEM.isEmpty || !t.clientPrivateKeyPEM.isEmpty
        switch t.mode {
        case .mutual:
            guard !t.clientCertificateChainPEM.isEmpty, !t.clientPrivateKeyPEM.isEmpty else {
                throw .invalidClusterTLS(cluster: c.name, what: "MUTUAL needs a client certificate chain and a private key")
            }
        case .simple:
            guard !client else {
                throw .invalidClusterTLS(cluster: c.name, what: "SIMPLE carries no client certificate or key")
            }
        case .disable: return -1
        }
        if t.insecureSkipVerify, !t.caCertificatesPEM.isEmpty || !t.subjectAltNames.isEmpty || !t.crlPEM.isEmpty {
            throw .invalidClusterTLS(cluster: c.name, what: "insecureSkipVerify excludes a CA, subjectAltNames and CRLs")
        }
        for v in [t.sni] + t.subjectAltNames where v.utf8.contains(where: { $0 == 0 || $0 == 10 || $0 == 13 }) {
            throw .invalidValue(owner: "cluster \(c.name) tls", value: v)
        }
        let ca = string(t.caCertificatesPEM), chain = string(t.clientCertificateChainPEM)
        let key = string(t.clientPrivateKeyPEM), sni = string(t.sni), crl = string(t.crlPEM)
        let sans = names(t.subjectAltNames)
        let index = Int32(count(.clusterTLS))
        record(.clusterTLS) { w in
            w.u8(t.mode.rawValue); w.u8(t.insecureSkipVerify ? 1 : 0); w.u16(0)
            w.ref(ca); w.ref(chain); w.ref(key); w.ref(sni)
            w.u32(sans.0); w.u32(sans.1)
            w.u64(t.identity)
            w.ref(crl)
        }
        clusterTLSIndex[t] = index
        return index
    }
}
