// Gateway (istio-semantics.md §2): the ports, protocols and hosts the proxy serves.

public struct Gateway: Sendable, Equatable {
    /// Workload labels; a standalone ingressd serves every Gateway and ignores this.
    public var selector: [String: String]
    public var servers: [Server]

    public struct Server: Sendable, Equatable {
        public var port: Port?
        /// `[ns/]dnsName` as written.
        public var hosts: [String]
        public var bind: String?
        public var name: String?
        public var defaultEndpoint: String?
        public var tls: ServerTLS?
    }

    public struct Port: Sendable, Equatable {
        public var number: UInt32
        public var name: String
        /// As written (parsing is case-insensitive).
        public var proto: String
        public var targetPort: UInt32?
    }

    public struct ServerTLS: Sendable, Equatable {
        public var httpsRedirect: Bool
        /// PASSTHROUGH when absent (enum value 0).
        public var mode: String?
        public var serverCertificate: String?
        public var privateKey: String?
        public var caCertificates: String?
        public var caCrl: String?
        public var credentialName: String?
        public var credentialNames: [String]
        public var caCertCredentialName: String?
        public var tlsCertificates: [CertificatePair]
        public var subjectAltNames: [String]
        public var verifyCertificateSpki: [String]
        public var verifyCertificateHash: [String]
        public var minProtocolVersion: String?
        public var maxProtocolVersion: String?
        public var cipherSuites: [String]
        public var insecureSkipVerify: Bool?

        /// True when something other than `httpsRedirect` is set.
        public var hasTermination: Bool {
            mode != nil || serverCertificate != nil || privateKey != nil || caCertificates != nil
                || caCrl != nil || credentialName != nil || !credentialNames.isEmpty
                || caCertCredentialName != nil || !tlsCertificates.isEmpty || !subjectAltNames.isEmpty
                || !verifyCertificateSpki.isEmpty || !verifyCertificateHash.isEmpty
                || minProtocolVersion != nil || maxProtocolVersion != nil || !cipherSuites.isEmpty
                || insecureSkipVerify != nil
        }

        /// Certificates or keys are configured.
        public var hasCertificates: Bool {
            serverCertificate != nil || privateKey != nil || caCertificates != nil || credentialName != nil
                || !credentialNames.isEmpty || !tlsCertificates.isEmpty
        }
    }

    public struct CertificatePair: Sendable, Equatable {
        public var serverCertificate: String?
        public var privateKey: String?
        public var caCertificates: String?
    }
}

extension Gateway {
    init(_ spec: YObject) {
        selector = spec.stringMap("selector")
        servers = spec.list("servers").compactMap { Gateway.server($0) }
    }

    private static func server(_ v: YValue) -> Server? {
        guard let o = v.object(["port", "hosts", "bind", "name", "defaultEndpoint", "tls"]) else { return nil }
        return Server(port: o["port"].flatMap(port), hosts: o.strings("hosts"), bind: o.string("bind"),
                      name: o.string("name"), defaultEndpoint: o.string("defaultEndpoint"),
                      tls: o["tls"].flatMap(tls))
    }

    private static func port(_ v: YValue) -> Port? {
        guard let o = v.object(["number", "name", "protocol", "targetPort"]) else { return nil }
        return Port(number: o.uint32("number") ?? 0, name: o.string("name") ?? "",
                    proto: o.string("protocol") ?? "", targetPort: o.uint32("targetPort"))
    }

    private static func tls(_ v: YValue) -> ServerTLS? {
        guard let o = v.object([
            "httpsRedirect", "mode", "serverCertificate", "privateKey", "caCertificates", "caCrl",
            "credentialName", "credentialNames", "caCertCredentialName", "tlsCertificates", "subjectAltNames",
            "verifyCertificateSpki", "verifyCertificateHash", "minProtocolVersion", "maxProtocolVersion",
            "cipherSuites", "insecureSkipVerify",
        ]) else { return nil }
        let pairs: [CertificatePair] = o.list("tlsCertificates").compactMap { p in
            guard let po = p.object(["serverCertificate", "privateKey", "caCertificates"]) else { return nil }
            return CertificatePair(serverCertificate: po.string("serverCertificate"),
                                   privateKey: po.string("privateKey"), caCertificates: po.string("caCertificates"))
        }
        return ServerTLS(
            httpsRedirect: o.bool("httpsRedirect") ?? false, mode: o.string("mode"),
            serverCertificate: o.string("serverCertificate"), privateKey: o.string("privateKey"),
            caCertificates: o.string("caCertificates"), caCrl: o.string("caCrl"),
            credentialName: o.string("credentialName"), credentialNames: o.strings("credentialNames"),
            caCertCredentialName: o.string("caCertCredentialName"), tlsCertificates: pairs,
            subjectAltNames: o.strings("subjectAltNames"), verifyCertificateSpki: o.strings("verifyCertificateSpki"),
            verifyCertificateHash: o.strings("verifyCertificateHash"),
            minProtocolVersion: o.string("minProtocolVersion"), maxProtocolVersion: o.string("maxProtocolVersion"),
            cipherSuites: o.strings("cipherSuites"), insecureSkipVerify: o.bool("insecureSkipVerify"))
    }
}
