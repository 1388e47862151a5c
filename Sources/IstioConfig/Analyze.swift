// Cross-resource checks in the manner of `istioctl analyze` (istio-semantics.md §7.3).

/// A VirtualService's reference to a Gateway, resolved to namespace and name.
public enum GatewayReference {
    /// `ns/name` → (ns, name); `name` → (VS namespace, name); legacy `name.ns` → (ns, name);
    /// `mesh` → nil (sidecars, not a gateway).
    public static func resolve(_ ref: String, virtualServiceNamespace: String) -> (namespace: String, name: String)? {
        if ref == "mesh" { return nil }
        let slash = ref.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        if slash.count == 2 { return (String(slash[0]), String(slash[1])) }
        let dot = ref.split(separator: ".", omittingEmptySubsequences: false)
        if dot.count > 1 { return (String(dot[1]), String(dot[0])) }
        return (virtualServiceNamespace, ref)
    }

    /// Server hosts that VirtualServices in `namespace` may bind to: `ns/host` only for `ns`,
    /// `./host` only for the Gateway's namespace, `*/host` and `host` for all.
    public static func serverHosts(_ hosts: [String], gatewayNamespace: String, virtualServiceNamespace: String) -> [String] {
        hosts.compactMap { h in
            let parts = h.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else { return h }
            let ns = parts[0] == "." ? gatewayNamespace : parts[0]
            return ns == "*" || ns == virtualServiceNamespace ? parts[1] : nil
        }
    }
}

/// Cross-resource findings: missing gateways (IST0101, error), VirtualService hosts that no
/// server of their gateway serves (IST0132), subsets that no DestinationRule defines, and — with
/// `credentialsDir` — `tls.credentialName`s of Gateways and DestinationRules whose files are
/// missing there (IST0101, error).
public func analyze(_ resources: [Resource], credentialsDir: String? = nil) -> [Diagnostic] {
    var out: [Diagnostic] = []
    var gateways: [String: (ResourceMeta, Gateway)] = [:]
    for r in resources {
        if let g = r.gateway { gateways[r.meta.qualifiedName] = (r.meta, g) }
    }
    if let dir = credentialsDir {
        for r in resources {
            if let g = r.gateway { out += credentialFindings(g, r.meta, dir: dir) }
            if let dr = r.destinationRule { out += credentialFindings(dr, r.meta, dir: dir) }
        }
    }
    let rules = resources.compactMap { r in r.destinationRule.map { (r.meta, $0) } }

    for r in resources {
        guard let vs = r.virtualService else { continue }
        let meta = r.meta
        // Gateways: the top-level list and per-match overrides.
        var refs: [(String, String)] = vs.gateways.enumerated().map { ("spec.gateways[\($0)]", $1) }
        for (i, http) in vs.http.enumerated() {
            for (j, m) in http.match.enumerated() {
                refs += m.gateways.enumerated().map { ("spec.http[\(i)].match[\(j)].gateways[\($0)]", $1) }
            }
        }
        var checkedHosts: Set<String> = []
        for (path, ref) in refs {
            guard let (ns, name) = GatewayReference.resolve(ref, virtualServiceNamespace: meta.namespace) else { continue }
            guard let (gwMeta, gw) = gateways["\(ns)/\(name)"] else {
                out.append(meta.diagnostic(.error, path, "Referenced gateway not found: \"\(ref)\"", code: "IST0101"))
                continue
            }
            guard !checkedHosts.contains(gwMeta.qualifiedName) else { continue }
            checkedHosts.insert(gwMeta.qualifiedName)
            let serverHosts = gw.servers.flatMap {
                GatewayReference.serverHosts($0.hosts, gatewayNamespace: gwMeta.namespace,
                                             virtualServiceNamespace: meta.namespace)
            }
            for (k, host) in vs.hosts.enumerated() where !serverHosts.contains(where: { HostName.matches($0, host) }) {
                out.append(meta.diagnostic(.warning, "spec.hosts[\(k)]",
                                           "one or more host [\(host)] defined in VirtualService \(meta.qualifiedName) not found in Gateway \(gwMeta.qualifiedName).",
                                           code: "IST0132"))
            }
        }
        // Subsets.
        func checkSubset(_ d: Destination?, _ path: String) {
            guard let d, let subset = d.subset, !subset.isEmpty else { return }
            let fqdn = HostName.fqdn(d.host, namespace: meta.namespace)
            let defined = rules.contains { drMeta, dr in
                HostName.subsetOf(fqdn, HostName.fqdn(dr.host, namespace: drMeta.namespace))
                    && dr.subsets.contains { $0.name == subset }
            }
            if !defined {
                out.append(meta.diagnostic(.warning, "\(path).subset",
                                           "Referenced host+subset in destinationrule not found: \"\(d.host)+\(subset)\"",
                                           code: "IST0101"))
            }
        }
        for (i, http) in vs.http.enumerated() {
            for (j, rd) in http.route.enumerated() { checkSubset(rd.destination, "spec.http[\(i)].route[\(j)].destination") }
        }
        for (i, t) in vs.tls.enumerated() {
            for (j, rd) in t.route.enumerated() { checkSubset(rd.destination, "spec.tls[\(i)].route[\(j)].destination") }
        }
        for (i, t) in vs.tcp.enumerated() {
            for (j, rd) in t.route.enumerated() { checkSubset(rd.destination, "spec.tcp[\(i)].route[\(j)].destination") }
        }
    }
    return out
}

/// IST0101 for each credential of a terminating server whose files are not under `dir`
/// (Credentials.swift); the message names the files looked for.
func credentialFindings(_ g: Gateway, _ meta: ResourceMeta, dir: String) -> [Diagnostic] {
    var out: [Diagnostic] = []
    for (i, server) in g.servers.enumerated() {
        guard let tls = server.tls, let proto = server.port?.proto.uppercased(), proto == "HTTPS" || proto == "TLS" else {
            continue
        }
        let mode = (tls.mode ?? "PASSTHROUGH").uppercased()
        guard ["SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"].contains(mode) else { continue }
        let p = "spec.servers[\(i)].tls"
        func missing(_ path: String, _ name: String, _ looked: [String]) {
            out.append(meta.diagnostic(.error, path,
                "Referenced credentialName not found: \"\(name)\" (looked for \(looked.joined(separator: ", ")))",
                code: "IST0101"))
        }
        let named: (String, String)? = tls.credentialName.map { ("\(p).credentialName", $0) }
            ?? tls.credentialNames.first.map { ("\(p).credentialNames[0]", $0) }
        if let (path, name) = named {
            let files = CredentialFiles.resolve(name, in: dir)
            if files.certificate == nil { missing(path, name, CredentialFiles.certificateCandidates(name, in: dir)) }
            if files.privateKey == nil { missing(path, name, CredentialFiles.keyCandidates(name, in: dir)) }
            if mode != "SIMPLE" && tls.caCertificates == nil && tls.caCertCredentialName == nil && files.caCertificates == nil {
                missing(path, "\(name)-cacert", CredentialFiles.caCandidates(name, in: dir))
            }
        }
        if mode != "SIMPLE", let ca = tls.caCertCredentialName, CredentialFiles.resolveCA(ca, in: dir) == nil {
            missing("\(p).caCertCredentialName", ca, CredentialFiles.caCandidates(ca, in: dir, separate: false))
        }
    }
    return out
}

/// IST0101 for each DestinationRule `tls.credentialName` (SIMPLE, MUTUAL) whose files are not
/// under `dir`: MUTUAL needs the client certificate and key, both need the CA unless
/// insecureSkipVerify (ConfigCompiler/UpstreamTLS.swift).
func credentialFindings(_ dr: DestinationRule, _ meta: ResourceMeta, dir: String) -> [Diagnostic] {
    var blocks: [(String, ClientTLSSettings?)] = []
    func add(_ tp: TrafficPolicy?, _ p: String) {
        guard let tp else { return }
        blocks.append(("\(p).tls", tp.tls))
        for (i, pl) in tp.portLevelSettings.enumerated() { blocks.append(("\(p).portLevelSettings[\(i)].tls", pl.tls)) }
    }
    add(dr.trafficPolicy, "spec.trafficPolicy")
    for (i, s) in dr.subsets.enumerated() { add(s.trafficPolicy, "spec.subsets[\(i)].trafficPolicy") }
    var out: [Diagnostic] = []
    for case let (p, tls?) in blocks {
        let mode = (tls.mode ?? "DISABLE").uppercased()
        guard mode == "SIMPLE" || mode == "MUTUAL", let name = tls.credentialName else { continue }
        func missing(_ name: String, _ looked: [String]) {
            out.append(meta.diagnostic(.error, "\(p).credentialName",
                "Referenced credentialName not found: \"\(name)\" (looked for \(looked.joined(separator: ", ")))",
                code: "IST0101"))
        }
        let files = CredentialFiles.resolve(name, in: dir)
        if mode == "MUTUAL" {
            if files.certificate == nil { missing(name, CredentialFiles.certificateCandidates(name, in: dir)) }
            if files.privateKey == nil { missing(name, CredentialFiles.keyCandidates(name, in: dir)) }
        }
        if tls.insecureSkipVerify != true && files.caCertificates == nil {
            missing("\(name)-cacert", CredentialFiles.caCandidates(name, in: dir))
        }
    }
    return out
}
