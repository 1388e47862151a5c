// Per-resource validation with Istio's rules and messages (istio-semantics.md §7.2), plus
// warnings for fields that ingressd accepts but does not serve yet.

/// Validates one resource on its own. `load` calls this for every resource it decodes.
public func validate(_ resource: Resource) -> [Diagnostic] {
    var c = Checks(meta: resource.meta)
    switch resource.spec {
    case .gateway(let g): c.gateway(g)
    case .virtualService(let v): c.virtualService(v)
    case .destinationRule(let d): c.destinationRule(d)
    case .serviceEntry(let s): c.serviceEntry(s)
    }
    return c.out
}

/// The message for fields that are accepted but not acted on, where ignoring them changes
/// what traffic sees.
public let unsupportedMessage = "not supported by ingressd yet; ignored"

struct Checks {
    let meta: ResourceMeta
    var out: [Diagnostic] = []

    mutating func error(_ path: String, _ message: String) {
        out.append(meta.diagnostic(.error, path, message))
    }

    mutating func warning(_ path: String, _ message: String) {
        out.append(meta.diagnostic(.warning, path, message))
    }

    /// False (with an error) for a host list longer than `InputLimits.maxHosts`: the pairwise
    /// checks are then skipped.
    mutating func hostCount(_ hosts: [String], path: String) -> Bool {
        guard hosts.count > InputLimits.maxHosts else { return true }
        error(path, "too many hosts (\(hosts.count)); at most \(InputLimits.maxHosts)")
        return false
    }

    mutating func note(_ path: String, _ message: String) {
        out.append(meta.diagnostic(.note, path, message))
    }

    mutating func unsupported(_ path: String) {
        warning(path, unsupportedMessage)
    }

    mutating func duration(_ path: String, _ d: Duration?) {
        guard let d else { return }
        guard let ns = d.nanoseconds else {
            error(path, "invalid duration \"\(d.text)\" (write a number with a unit: 100ms, 5s, 1m)")
            return
        }
        if ns < 1_000_000 {
            error(path, "duration must be greater than 1ms")
        } else if ns % 1_000_000 != 0 {
            error(path, "only durations to ms precision are supported")
        }
    }

    mutating func port(_ path: String, _ n: UInt32) {
        if n < 1 || n > 65535 {
            error(path, "port number \(n) must be in the range 1..65535")
        }
    }

    mutating func labels(_ path: String, _ labels: [String: String]) {
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) {
            let name = k.split(separator: "/").last.map(String.init) ?? k
            if !isLabelValue(name) || name.isEmpty {
                error("\(path).\(k)", "invalid label key \"\(k)\"")
            }
            if !isLabelValue(v) {
                error("\(path).\(k)", "invalid label value \"\(v)\"")
            }
        }
    }

    /// Kubernetes label value: ≤ 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends, or empty.
    func isLabelValue(_ v: String) -> Bool {
        if v.isEmpty { return true }
        guard v.utf8.count <= 63 else { return false }
        let u = Array(v.utf8)
        func alnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
        guard alnum(u.first!), alnum(u.last!) else { return false }
        return u.allSatisfy { alnum($0) || $0 == 45 || $0 == 95 || $0 == 46 }
    }

    mutating func exportTo(_ path: String, _ values: [String]) {
        var seen: Set<String> = []
        for v in values {
            if seen.contains(v) { error(path, "duplicate entries in exportTo for entry \(v)") }
            seen.insert(v)
        }
        if seen.contains("*") && seen.count > 1 {
            error(path, "cannot have both public (*) and non-public exportTo values for a resource")
        }
        if !values.isEmpty && values != ["*"] {
            note(path, "exportTo is not applied by ingressd (a standalone gateway sees every resource it loads)")
        }
    }

    mutating func resourceName(_ isGatewayLabel: Bool) {
        if isGatewayLabel {
            if !HostName.isDNS1123Label(meta.name) {
                error("metadata.name", "invalid gateway name: \"\(meta.name)\"")
            }
        } else if !meta.name.isEmpty && !HostName.isDNS1123Subdomain(meta.name) {
            error("metadata.name", "invalid name \"\(meta.name)\": must be a lower-case DNS-1123 subdomain")
        }
        if !HostName.isDNS1123Label(meta.namespace) {
            error("metadata.namespace", "invalid namespace \"\(meta.namespace)\": must be a lower-case DNS-1123 label")
        }
    }
}

// MARK: - Gateway

let gatewayProtocols = ["HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS", "REDIS", "MYSQL"]

extension Checks {
    mutating func gateway(_ g: Gateway) {
        resourceName(true)
        if g.servers.isEmpty {
            error("spec.servers", "gateway must have at least one server")
        }
        var portNames: Set<String> = []
        for (n, server) in g.servers.enumerated() {
            let p = "spec.servers[\(n)]"
            if let port = server.port {
                if !port.name.isEmpty {
                    if portNames.contains(port.name) {
                        error("\(p).port.name", "port names in servers must be unique: duplicate name \(port.name)")
                    }
                    portNames.insert(port.name)
                }
            }
            self.server(server, path: p)
        }
    }

    mutating func server(_ s: Gateway.Server, path p: String) {
        if s.hosts.isEmpty {
            error("\(p).hosts", "server config must contain at least one host")
        }
        if hostCount(s.hosts, path: "\(p).hosts") {
            for (n, h) in s.hosts.enumerated() {
                gatewayHost(h, path: "\(p).hosts[\(n)]")
            }
        }
        guard let port = s.port else {
            error("\(p).port", "port is required")
            return
        }
        let proto = port.proto.uppercased()
        if !gatewayProtocols.contains(proto) {
            error("\(p).port.protocol",
                  "invalid protocol \"\(port.proto)\", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP")
        }
        if let bind = s.bind, bind.hasPrefix("unix://") {
            if port.number != 0 { error("\(p).port.number", "port number must be 0 for unix domain socket: \(bind)") }
        } else {
            self.port("\(p).port.number", port.number)
        }
        if port.targetPort != nil {
            error("\(p).port.targetPort", "targetPort has no impact on Gateways")
        }
        if port.name.isEmpty {
            error("\(p).port.name", "port name must be set: number:\(port.number) protocol:\"\(port.proto)\"")
        }
        if let bind = s.bind {
            if !bind.hasPrefix("unix://") && !HostName.isIPAddress(bind) {
                error("\(p).bind", "\(bind) is not a valid IP")
            }
            warning("\(p).bind", "bind is \(unsupportedMessage) (ingressd listens on --bind)")
        }
        if s.defaultEndpoint != nil {
            note("\(p).defaultEndpoint", "defaultEndpoint is not implemented by Istio either; ignored")
        }
        let isTLSProto = proto == "HTTPS" || proto == "TLS"
        let isHTTPProto = ["HTTP", "HTTP2", "GRPC", "GRPC-WEB"].contains(proto)
        if let tls = s.tls {
            if isTLSProto {
                serverTLS(tls, path: "\(p).tls")
            } else if isHTTPProto {
                if tls.hasTermination && (tls.hasCertificates || (tls.mode ?? "PASSTHROUGH").uppercased() != "PASSTHROUGH") {
                    error("\(p).tls", "server cannot have TLS settings for plain text HTTP ports")
                }
            } else if gatewayProtocols.contains(proto) {
                error("\(p).tls", "server cannot have TLS settings for non HTTPS/TLS ports")
            }
            if tls.httpsRedirect && !isHTTPProto {
                warning("\(p).tls.httpsRedirect", "tls.httpsRedirect should only be used with http servers")
            }
        } else if isTLSProto {
            error("\(p).tls", "server must have TLS settings for HTTPS/TLS protocols")
        }
        if proto == "REDIS" || proto == "MYSQL" {
            warning("\(p).port.protocol",
                    "protocol \(proto) is \(unsupportedMessage) (the port is listed but serves no routes)")
        } else if proto != "HTTP" && isHTTPProto {
            note("\(p).port.protocol", "protocol \(proto) is served as plain HTTP/1.1 by ingressd for now")
        }
    }

    mutating func gatewayHost(_ h: String, path: String) {
        let parts = h.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        var dns = h
        if parts.count == 2 {
            if parts[0].isEmpty || parts[1].isEmpty {
                error(path, "config namespace and dnsName in host entry cannot be empty")
                return
            }
            if parts[0] != "*" && parts[0] != "." && !HostName.isDNS1123Label(parts[0]) {
                error(path, "invalid namespace value \"\(parts[0])\" in gateway")
            }
            dns = parts[1]
        }
        if HostName.isIPAddress(dns) { return }
        if HostName.isPartialWildcard(dns) {
            error(path, "partial wildcard \"\(dns)\" not allowed")
            return
        }
        if let e = HostName.validateWildcardDomain(dns) {
            error(path, e)
            return
        }
        if dns != "*" && !dns.contains(".") {
            error(path, "short names (non FQDN) are not allowed")
        }
    }

    mutating func serverTLS(_ t: Gateway.ServerTLS, path p: String) {
        let mode = (t.mode ?? "PASSTHROUGH").uppercased()
        let sources = [t.credentialName != nil, !t.credentialNames.isEmpty,
                       t.serverCertificate != nil || t.privateKey != nil, !t.tlsCertificates.isEmpty].filter { $0 }
        switch mode {
        case "ISTIO_MUTUAL":
            let fields: [(Bool, String)] = [(t.serverCertificate != nil, "server certificate"),
                                            (t.privateKey != nil, "private key"), (t.caCertificates != nil, "CA bundle"),
                                            (!t.tlsCertificates.isEmpty, "tlsCertificates"),
                                            (t.credentialName != nil, "credentialName"),
                                            (!t.credentialNames.isEmpty, "credentialNames")]
            for (set, what) in fields where set {
                error(p, "ISTIO_MUTUAL TLS cannot have associated \(what)")
            }
            error("\(p).mode", "ISTIO_MUTUAL is mesh-only (certificates issued by istiod to sidecars); a standalone ingressd does not serve it: use SIMPLE or MUTUAL with certificates")
        case "SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL":
            if sources.count > 1 {
                error(p, "only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified")
            }
            if t.credentialName == nil && t.credentialNames.isEmpty && t.tlsCertificates.isEmpty {
                if t.serverCertificate == nil { error(p, "\(mode == "SIMPLE" ? "SIMPLE" : "MUTUAL") TLS requires a server certificate") }
                if t.privateKey == nil { error(p, "\(mode == "SIMPLE" ? "SIMPLE" : "MUTUAL") TLS requires a private key") }
            }
            if mode != "SIMPLE" && t.caCertificates == nil && t.credentialName == nil && t.credentialNames.isEmpty
                && t.caCertCredentialName == nil && !t.tlsCertificates.contains(where: { $0.caCertificates != nil }) {
                error(p, "MUTUAL TLS requires a client CA bundle")
            }
            if t.caCrl != nil {
                if t.credentialName != nil {
                    error("\(p).caCrl", "CRL is not supported with credentialName. CRL has to be specified in the credential")
                } else if mode == "SIMPLE" {
                    error("\(p).caCrl", "CRL is not supported with SIMPLE TLS")
                }
            }
            if mode == "SIMPLE" {
                for (field, list) in [("subjectAltNames", t.subjectAltNames), ("verifyCertificateSpki", t.verifyCertificateSpki),
                                      ("verifyCertificateHash", t.verifyCertificateHash)] where !list.isEmpty {
                    warning("\(p).\(field)", "SIMPLE TLS asks for no client certificate: \(field) is only checked with MUTUAL or OPTIONAL_MUTUAL; ignored")
                }
            }
            for (k, pair) in t.tlsCertificates.enumerated() {
                if pair.serverCertificate == nil { error("\(p).tlsCertificates[\(k)]", "\(mode == "SIMPLE" ? "SIMPLE" : "MUTUAL") TLS requires a server certificate") }
                if pair.privateKey == nil { error("\(p).tlsCertificates[\(k)]", "\(mode == "SIMPLE" ? "SIMPLE" : "MUTUAL") TLS requires a private key") }
            }
            if t.insecureSkipVerify != nil {
                warning("\(p).insecureSkipVerify", "insecureSkipVerify is \(unsupportedMessage) (client certificates are always verified)")
            }
        case "PASSTHROUGH":
            if t.hasCertificates {
                warning(p, "\(mode) mode does not use certificates, they will be ignored")
            }
        case "AUTO_PASSTHROUGH":
            if t.hasCertificates {
                warning(p, "\(mode) mode does not use certificates, they will be ignored")
            }
            error("\(p).mode", "AUTO_PASSTHROUGH is mesh-only (the SNI names an Istio cluster, for multi-network meshes); a standalone ingressd does not serve it: use PASSTHROUGH with VirtualService tls routes")
        default:
            error("\(p).mode", "invalid TLS mode \"\(t.mode ?? "")\" (use PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL or OPTIONAL_MUTUAL)")
        }
        if t.credentialName != nil && !t.credentialNames.isEmpty {
            error(p, "only one of credentialName or credentialNames can be set")
        }
        if t.credentialNames.count > 2 { error("\(p).credentialNames", "credentialNames can support up to 2 server certificates") }
        if t.tlsCertificates.count > 2 { error("\(p).tlsCertificates", "tlsCertificates can support up to 2 server certificates") }
        let versions = ["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]
        for (field, v) in [("minProtocolVersion", t.minProtocolVersion), ("maxProtocolVersion", t.maxProtocolVersion)] {
            if let v, !versions.contains(v.uppercased()) {
                error("\(p).\(field)", "invalid TLS version \"\(v)\" (use \(versions.joined(separator: ", ")))")
            }
        }
        if let lo = t.minProtocolVersion?.uppercased(), let hi = t.maxProtocolVersion?.uppercased(),
           let l = versions.firstIndex(of: lo), let h = versions.firstIndex(of: hi), l > 0, h > 0, l > h {
            error("\(p).maxProtocolVersion", "maxProtocolVersion \(hi) is below minProtocolVersion \(lo)")
        }
        if let v = t.minProtocolVersion?.uppercased(), v == "TLSV1_0" || v == "TLSV1_1", t.cipherSuites.isEmpty {
            warning("\(p).minProtocolVersion",
                    "TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers.")
        }
        let invalid = t.cipherSuites.filter { !supportedCipherSuites.contains($0) }
        if !invalid.isEmpty { warning("\(p).cipherSuites", "ignoring invalid cipher suites: [\(invalid.joined(separator: " "))]") }
        var seen: Set<String> = []
        let dups = t.cipherSuites.filter { !seen.insert($0).inserted }
        if !dups.isEmpty { warning("\(p).cipherSuites", "ignoring duplicate cipher suites: [\(dups.joined(separator: " "))]") }
    }
}

/// Istio's gateway cipher suites (`tls.cipherSuites`, istio-semantics.md §2): others are ignored
/// with a warning.
public let supportedCipherSuites: Set<String> = [
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA",
]
