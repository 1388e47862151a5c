// TLS to a cluster's endpoints: DestinationRule `trafficPolicy.tls` as merged for the cluster
// (TLSSpec.swift `ClusterTLSSpec` states the semantics, TableLayout.swift the ClusterTLS
// record). Data plane: no allocation, no String. Every accessor takes a cluster index in
// `clusters`; a plain-text cluster reads as `.disable` with empty fields.

extension TableReader {
    /// The cluster's ClusterTLS record offset, or nil for a plain-text cluster.
    @inline(__always)
    func clusterTLSRecord(_ c: Int32) -> Int? {
        precondition(clusters.contains(c))
        let t = i32(clusterOff(c) + 72)
        return t < 0 ? nil : clusterTLSOff(t)  // validated: -1 or a record
    }

    @inline(__always)
    func clusterTLSBytes(_ c: Int32, _ field: Int) -> UnsafeRawBufferPointer {
        guard let at = clusterTLSRecord(c) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return bytes(at + field)
    }

    /// `.disable` when the cluster has no tls (plain text to the endpoints).
    public func clusterTLSMode(_ c: Int32) -> ClusterTLSMode {
        guard let at = clusterTLSRecord(c) else { return .disable }
        return ClusterTLSMode(rawValue: u8(at))!  // validated: simple or mutual
    }

    /// PEM CA bundle verifying the upstream's certificate; count 0: the system's CAs.
    public func clusterTLSCACertificates(_ c: Int32) -> UnsafeRawBufferPointer { clusterTLSBytes(c, 4) }

    /// PEM client certificate chain, leaf first, for MUTUAL; count 0 otherwise.
    public func clusterTLSCertificateChain(_ c: Int32) -> UnsafeRawBufferPointer { clusterTLSBytes(c, 12) }

    /// PEM client private key for MUTUAL; count 0 otherwise. Secret: never log it.
    public func clusterTLSPrivateKey(_ c: Int32) -> UnsafeRawBufferPointer { clusterTLSBytes(c, 20) }

    /// The SNI to send; count 0: the request's Host without its port (Istio's auto SNI).
    public func clusterTLSSNI(_ c: Int32) -> UnsafeRawBufferPointer { clusterTLSBytes(c, 28) }

    /// SANs the upstream certificate must carry (one of them); 0: it must match the SNI
    /// unless insecureSkipVerify.
    public func clusterTLSSubjectAltNameCount(_ c: Int32) -> Int32 {
        guard let at = clusterTLSRecord(c) else { return 0 }
        return Int32(u32(at + 40))
    }

    public func clusterTLSSubjectAltName(_ c: Int32, _ i: Int32) -> UnsafeRawBufferPointer {
        guard let at = clusterTLSRecord(c) else { preconditionFailure("cluster \(c) has no TLS SANs") }
        let names = range(at + 36)
        precondition(i >= 0 && i < Int32(names.count))
        return bytes(tlsNameOff(names.lowerBound + i))
    }

    /// No verification of the upstream's certificate at all (never set with a CA or SANs).
    public func clusterTLSInsecureSkipVerify(_ c: Int32) -> Bool {
        guard let at = clusterTLSRecord(c) else { return false }
        return u8(at + 1) & 1 != 0
    }

    /// PEM CRLs the upstream's certificate chain is checked against; count 0: no revocation
    /// check.
    public func clusterTLSCRL(_ c: Int32) -> UnsafeRawBufferPointer { clusterTLSBytes(c, 52) }

    /// A 64-bit identity of the cluster's TLS settings (mode, CA, client cert, SNI, SANs, CRLs, skip):
    /// two clusters with equal settings have equal identities. Upstream connection pools key
    /// TLS connections by it (0 for .disable).
    public func clusterTLSIdentity(_ c: Int32) -> UInt64 {
        guard let at = clusterTLSRecord(c) else { return 0 }
        return UInt64(u32(at + 44)) | UInt64(u32(at + 48)) << 32
    }

    /// The cluster's TLS settings as a spec (nil for plain text), private key included: callers
    /// that show it must drop the key. Control plane only (allocates).
    public func decodeClusterTLS(_ c: Int32) -> ClusterTLSSpec? {
        let mode = clusterTLSMode(c)
        guard mode != .disable else { return nil }
        return ClusterTLSSpec(mode: mode, caCertificatesPEM: Array(clusterTLSCACertificates(c)),
                              clientCertificateChainPEM: Array(clusterTLSCertificateChain(c)),
                              clientPrivateKeyPEM: Array(clusterTLSPrivateKey(c)),
                              sni: Self.string(clusterTLSSNI(c)),
                              subjectAltNames: (0..<clusterTLSSubjectAltNameCount(c)).map {
                                  Self.string(clusterTLSSubjectAltName(c, $0))
                              },
                              insecureSkipVerify: clusterTLSInsecureSkipVerify(c), crlPEM: Array(clusterTLSCRL(c)))
    }

    /// ClusterTLS records: known mode and flags, references inside the image, client material
    /// present exactly for MUTUAL, skip-verify without CA, SANs or CRLs, and an identity that is the
    /// one its fields give.
    func validateClusterTLSRecords() throws(TableReadError) {
        for t in 0..<clusterTLSCount {
            let at = clusterTLSOff(t)
            guard let mode = ClusterTLSMode(rawValue: u8(at)), mode != .disable, u8(at + 1) & ~1 == 0,
                  strRefValid(at + 4), strRefValid(at + 12), strRefValid(at + 20), strRefValid(at + 28),
                  strRefValid(at + 52), rangeValid(at + 36, tlsNameCount) else {
                throw .badRecord(.clusterTLS, index: Int(t))
            }
            let chain = u32(at + 16), key = u32(at + 24), ca = u32(at + 8), sans = u32(at + 40), crl = u32(at + 56)
            let skip = u8(at + 1) & 1 != 0
            guard mode == .mutual ? chain > 0 && key > 0 : chain == 0 && key == 0,
                  !skip || (ca == 0 && sans == 0 && crl == 0) else {
                throw .badRecord(.clusterTLS, index: Int(t))
            }
            let first = Int32(u32(at + 36))
            let identity = ClusterTLSIdentity.of(mode: mode.rawValue, skipVerify: skip, ca: bytes(at + 4),
                                                 chain: bytes(at + 12), key: bytes(at + 20), sni: bytes(at + 28),
                                                 sans: (0..<Int32(sans)).map { Array(bytes(tlsNameOff(first + $0))) },
                                                 crl: bytes(at + 52))
            guard identity == UInt64(u32(at + 44)) | UInt64(u32(at + 48)) << 32 else {
                throw .badRecord(.clusterTLS, index: Int(t))
            }
        }
    }
}
