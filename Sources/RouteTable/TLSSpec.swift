// TLS on a listener as the control plane compiles it (Gateway servers with `protocol: HTTPS`
// or `TLS`, istio-semantics.md §1.3 and §3.3). Every connection on an HTTPS/TLS listener starts
// with the worker reading the ClientHello's SNI itself (Sources/TLS/ClientHello.swift); the SNI
// then picks one `TLSServerSpec` the way Envoy picks a filter chain (`TableReader.tlsServer`):
//   * a terminating server (SIMPLE, MUTUAL, OPTIONAL_MUTUAL): the worker completes the handshake
//     with that server's certificate and serves the listener's virtual hosts (HTTPS) or its TCP
//     routes (TLS protocol, terminated);
//   * a PASSTHROUGH server: the connection is not terminated; `TableReader.tlsRoute` picks the
//     VirtualService `tls[]` route by SNI and the bytes (ClientHello first) are spliced to it.
// No server matches (or no route for a passthrough SNI): the connection is closed (flag NR).
// Certificates travel inside the table as PEM bytes: the supervisor reads the files when it
// compiles, so a reload (SIGHUP, --watch) that changed only a certificate file publishes it,
// and a table always carries a certificate that was valid when it was checked.

/// `ServerTLSSettings.mode` as served. ISTIO_MUTUAL / AUTO_PASSTHROUGH are mesh-only: rejected.
public enum TLSServerMode: UInt8, Sendable, Equatable {
    case simple = 1
    case mutual = 2
    case optionalMutual = 3
    case passthrough = 4
}

/// `tls.minProtocolVersion` / `maxProtocolVersion`. `.auto`: the default (minimum TLS 1.2,
/// maximum TLS 1.3, as Envoy's server defaults).
public enum TLSVersionSpec: UInt8, Sendable, Equatable {
    case auto = 0
    case v1_0 = 10
    case v1_1 = 11
    case v1_2 = 12
    case v1_3 = 13
}

/// One Gateway server on a TLS-carrying listener.
public struct TLSServerSpec: Sendable, Equatable {
    /// For logs, `routes` and stats: "<namespace>/<gateway> servers[<index>]" (+ " port.name").
    public var name: String
    /// Lower-case SNI names this server answers: "a.example.com", "*.example.com" (one or more
    /// labels in front), or "*" (every SNI, and a ClientHello without SNI).
    public var hosts: [String]
    public var mode: TLSServerMode
    /// PEM bytes: the certificate chain (leaf first) and its private key. Empty for passthrough.
    public var certificateChainPEM: [UInt8]
    public var privateKeyPEM: [UInt8]
    /// PEM bytes of the CA bundle that verifies client certificates (MUTUAL, OPTIONAL_MUTUAL);
    /// empty otherwise.
    public var caCertificatesPEM: [UInt8]
    public var minVersion: TLSVersionSpec
    public var maxVersion: TLSVersionSpec
    /// OpenSSL cipher list for TLS ≤ 1.2, names joined with ":" (`tls.cipherSuites`, invalid and
    /// duplicate names already dropped with a warning); empty = the default list.
    public var cipherSuites: String
    /// MUTUAL: the client certificate must carry one of these SANs (empty: any).
    public var subjectAltNames: [String]
    /// MUTUAL: base64 SHA-256 of the client certificate's SPKI / hex SHA-256 of its DER
    /// (either list matching is enough; both empty: no pinning).
    public var verifyCertificateSpki: [String]
    public var verifyCertificateHash: [String]
    /// A second certificate chain and key of another key type (`credentialNames[1]`,
    /// `tlsCertificates[1]`: RSA beside ECDSA); OpenSSL serves the one the client's signature
    /// algorithms accept. Both empty: one certificate.
    public var secondCertificateChainPEM: [UInt8]
    public var secondPrivateKeyPEM: [UInt8]
    /// PEM CRLs checked against client certificates (MUTUAL, OPTIONAL_MUTUAL: `caCrl`, or the
    /// credential's `ca.crl`); empty = none.
    public var crlPEM: [UInt8]

    public init(name: String, hosts: [String], mode: TLSServerMode, certificateChainPEM: [UInt8] = [],
                privateKeyPEM: [UInt8] = [], caCertificatesPEM: [UInt8] = [], minVersion: TLSVersionSpec = .auto,
                maxVersion: TLSVersionSpec = .auto, cipherSuites: String = "", subjectAltNames: [String] = [],
                verifyCertificateSpki: [String] = [], verifyCertificateHash: [String] = [],
                secondCertificateChainPEM: [UInt8] = [], secondPrivateKeyPEM: [UInt8] = [], crlPEM: [UInt8] = []) {
        self.secondCertificateChainPEM = secondCertificateChainPEM
        self.secondPrivateKeyPEM = secondPrivateKeyPEM
        self.crlPEM = crlPEM
        self.name = name
        self.hosts = hosts
        self.mode = mode
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.caCertificatesPEM = caCertificatesPEM
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.cipherSuites = cipherSuites
        self.subjectAltNames = subjectAltNames
        self.verifyCertificateSpki = verifyCertificateSpki
        self.verifyCertificateHash = verifyCertificateHash
    }
}

/// A VirtualService `tls[]` block (one per match, SNI hosts already intersected with the
/// Gateway server's hosts) on a passthrough listener.
public struct TLSRouteSpec: Sendable, Equatable {
    /// "<namespace>/<virtualservice>/tls[<index>]".
    public var name: String
    /// Lower-case SNI names: exact, "*.suffix" or "*".
    public var sniHosts: [String]
    public var destinations: [WeightedClusterSpec]

    public init(name: String, sniHosts: [String], destinations: [WeightedClusterSpec]) {
        self.name = name
        self.sniHosts = sniHosts
        self.destinations = destinations
    }
}

/// DestinationRule `trafficPolicy.tls` (ClientTLSSettings) as a cluster uses it, after the
/// top-level / port-level / subset-level merge: how the gateway speaks TLS to the endpoints.
public enum ClusterTLSMode: UInt8, Sendable, Equatable {
    case disable = 0
    case simple = 1
    case mutual = 2
}

public struct ClusterTLSSpec: Sendable, Hashable {
    public var mode: ClusterTLSMode
    /// PEM CA bundle verifying the upstream's certificate; empty = the system's CAs
    /// (Istio's default when caCertificates is unset).
    public var caCertificatesPEM: [UInt8]
    /// MUTUAL: the gateway's client certificate chain and key (PEM).
    public var clientCertificateChainPEM: [UInt8]
    public var clientPrivateKeyPEM: [UInt8]
    /// `sni`; empty = the request's Host (Istio's auto SNI), without its port.
    public var sni: String
    /// The upstream certificate must carry one of these SANs; empty = it must match the SNI
    /// (Istio's auto SAN validation) unless `insecureSkipVerify`.
    public var subjectAltNames: [String]
    /// No verification of the upstream's certificate at all.
    public var insecureSkipVerify: Bool
    /// PEM CRLs the upstream's certificate chain is checked against (`caCrl`, or the
    /// credential's `ca.crl`/`crl`): every certificate of the chain must have its issuer's CRL
    /// here and not be revoked in it; empty = no revocation check. Never with insecureSkipVerify.
    public var crlPEM: [UInt8]

    public init(mode: ClusterTLSMode, caCertificatesPEM: [UInt8] = [], clientCertificateChainPEM: [UInt8] = [],
                clientPrivateKeyPEM: [UInt8] = [], sni: String = "", subjectAltNames: [String] = [],
                insecureSkipVerify: Bool = false, crlPEM: [UInt8] = []) {
        self.crlPEM = crlPEM
        self.mode = mode
        self.caCertificatesPEM = caCertificatesPEM
        self.clientCertificateChainPEM = clientCertificateChainPEM
        self.clientPrivateKeyPEM = clientPrivateKeyPEM
        self.sni = sni
        self.subjectAltNames = subjectAltNames
        self.insecureSkipVerify = insecureSkipVerify
    }

    /// What `TableReader.clusterTLSIdentity` reads for a cluster with these settings: 0 for
    /// `.disable`, else `ClusterTLSIdentity.of` the settings.
    public var identity: UInt64 {
        guard mode != .disable else { return 0 }
        return ClusterTLSIdentity.of(mode: mode.rawValue, skipVerify: insecureSkipVerify, ca: caCertificatesPEM,
                                     chain: clientCertificateChainPEM, key: clientPrivateKeyPEM,
                                     sni: Array(sni.utf8), sans: subjectAltNames.map { Array($0.utf8) }, crl: crlPEM)
    }
}
