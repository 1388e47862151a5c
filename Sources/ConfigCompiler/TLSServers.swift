// Gateway servers on HTTPS/TLS ports → TLSServerSpec, and VirtualService tls[] blocks →
// TLSRouteSpec (istio-semantics.md §2 `tls.*`, §3.3; TLSSpec.swift states what the data plane
// does with them).
//
// Every server of the port's protocol is kept, from any number of Gateways, except one that
// repeats a host already on the port (Istio: "skipping server on gateway %s, duplicate host
// names: %v"). Certificates are read and checked here, so that the table carries PEM bytes that
// parsed and a key that matches: an unreadable or non-PEM file or a key that does not match is an
// error (the configuration, or the reload, is rejected); an expired or not-yet-valid certificate
// is a warning, as clients decide what to do with it.
//
// Certificate sources, first that is set: `credentialName` (or `credentialNames[0]`) under
// `--credentials-dir` (IstioConfig/Credentials.swift), `tlsCertificates[0]`, then
// `serverCertificate`/`privateKey`. The client CA (MUTUAL, OPTIONAL_MUTUAL only):
// `caCertCredentialName`, else the credential's CA, else `caCertificates`
// (`tlsCertificates[0].caCertificates`). A second certificate of another key type:
// `credentialNames[1]` or `tlsCertificates[1]`. Client CRLs (MUTUAL, OPTIONAL_MUTUAL): `caCrl`,
// else the credential's `ca.crl`/`crl`. Not carried (validation says so): `insecureSkipVerify`
// (warning; certificates are always verified).
import IstioConfig
import RouteTable

extension Compilation {
    /// The servers of one HTTPS/TLS port that survive, each with its spec, in Gateway order.
    mutating func tlsServers(port: UInt32, servers: [BoundServer]) -> [(BoundServer, TLSServerSpec)] {
        var out: [(BoundServer, TLSServerSpec)] = []
        var taken: Set<String> = []
        for bound in servers {
            var hosts: [String] = []
            for h in bound.server.hosts {
                // "ns/host": the namespace part only limits which VirtualServices bind.
                let name = (h.firstIndex(of: "/").map { String(h[h.index(after: $0)...]) } ?? h).lowercased()
                if !hosts.contains(name) { hosts.append(name) }
            }
            let duplicates = hosts.filter { taken.contains($0) }
            if !duplicates.isEmpty {
                diagnostics.append(bound.gateway.diagnostic(.warning, "spec.servers[\(bound.index)].hosts",
                    "skipping server on gateway \(bound.gateway.name), duplicate host names: [\(duplicates.joined(separator: " "))]"))
                continue
            }
            guard let spec = tlsServer(bound, hosts: hosts) else { continue }
            taken.formUnion(hosts)
            out.append((bound, spec))
        }
        return out
    }

    /// Nil for a server that cannot be served: no `tls` block, a mesh-only mode (both already
    /// validation errors), or certificate material that fails its checks (an error here).
    mutating func tlsServer(_ bound: BoundServer, hosts: [String]) -> TLSServerSpec? {
        guard let tls = bound.server.tls else { return nil }
        let meta = bound.gateway
        let p = "spec.servers[\(bound.index)].tls"
        let portName = bound.server.port?.name ?? ""
        let name = "\(meta.qualifiedName) servers[\(bound.index)]" + (portName.isEmpty ? "" : " \(portName)")
        let mode: TLSServerMode
        switch (tls.mode ?? "PASSTHROUGH").uppercased() {
        case "PASSTHROUGH": return TLSServerSpec(name: name, hosts: hosts, mode: .passthrough)
        case "SIMPLE": mode = .simple
        case "MUTUAL": mode = .mutual
        case "OPTIONAL_MUTUAL": mode = .optionalMutual
        default: return nil
        }

        // Where the certificate, key and CA come from: (diagnostic path, file path) each.
        var cert: (String, String)?, key: (String, String)?, ca: (String, String)?
        let dir = options.credentialsDir
        var caFromCredential: String?
        if let (field, credential) = tls.credentialName.map({ ("\(p).credentialName", $0) })
            ?? tls.credentialNames.first.map({ ("\(p).credentialNames[0]", $0) }) {
            let files = CredentialFiles.resolve(credential, in: dir)
            certificateFiles += CredentialFiles.certificateCandidates(credential, in: dir)
                + CredentialFiles.keyCandidates(credential, in: dir)
            cert = (field, files.certificate ?? CredentialFiles.certificateCandidates(credential, in: dir)[0])
            key = (field, files.privateKey ?? CredentialFiles.keyCandidates(credential, in: dir)[0])
            if mode != .simple {
                certificateFiles += CredentialFiles.caCandidates(credential, in: dir)
                if let f = files.caCertificates { ca = (field, f) }
                caFromCredential = credential
            }
        } else if let pair = tls.tlsCertificates.first {
            cert = pair.serverCertificate.map { ("\(p).tlsCertificates[0].serverCertificate", $0) }
            key = pair.privateKey.map { ("\(p).tlsCertificates[0].privateKey", $0) }
            if mode != .simple {
                ca = pair.caCertificates.map { ("\(p).tlsCertificates[0].caCertificates", $0) }
                    ?? tls.caCertificates.map { ("\(p).caCertificates", $0) }
            }
        } else {
            cert = tls.serverCertificate.map { ("\(p).serverCertificate", $0) }
            key = tls.privateKey.map { ("\(p).privateKey", $0) }
            if mode != .simple { ca = tls.caCertificates.map { ("\(p).caCertificates", $0) } }
        }
        if mode != .simple, let caName = tls.caCertCredentialName {
            certificateFiles += CredentialFiles.caCandidates(caName, in: dir, separate: false)
            ca = ("\(p).caCertCredentialName",
                  CredentialFiles.resolveCA(caName, in: dir) ?? CredentialFiles.caCandidates(caName, in: dir, separate: false)[0])
        }
        guard let (certField, certPath) = cert, let (keyField, keyPath) = key else { return nil }  // validation error
        certificateFiles += [certPath, keyPath] + (ca.map { [$0.1] } ?? [])

        var failed = false
        func fail(_ field: String, _ e: PEMError) {
            diagnostics.append(meta.diagnostic(.error, field, e.message))
            failed = true
        }
        /// A certificate chain and its key, checked (empty where a check failed).
        func readPair(_ certField: String, _ certPath: String, _ keyField: String, _ keyPath: String) -> ([UInt8], [UInt8]) {
            var found = CertificateFindings()
            let pair = PEMCheck.readCertificateAndKey(cert: (certField, certPath), key: (keyField, keyPath),
                                                      CertificateUse(what: "certificate", label: nil, consequence: "clients will refuse it"),
                                                      &found)
            for w in found.warnings { diagnostics.append(meta.diagnostic(.warning, w.field, w.message)) }
            for e in found.errors { fail(e.field, PEMError(e.message)) }
            return pair
        }
        var caPEM: [UInt8] = []
        let (chainPEM, keyPEM) = readPair(certField, certPath, keyField, keyPath)

        // A second certificate of another key type (RSA beside ECDSA): `credentialNames[1]` or
        // `tlsCertificates[1]`; OpenSSL picks per client by its signature algorithms.
        var second: (cert: (String, String), key: (String, String))?
        if tls.credentialName == nil, tls.credentialNames.count == 2 {
            let credential = tls.credentialNames[1], field = "\(p).credentialNames[1]"
            let files = CredentialFiles.resolve(credential, in: dir)
            certificateFiles += CredentialFiles.certificateCandidates(credential, in: dir) + CredentialFiles.keyCandidates(credential, in: dir)
            second = ((field, files.certificate ?? CredentialFiles.certificateCandidates(credential, in: dir)[0]),
                      (field, files.privateKey ?? CredentialFiles.keyCandidates(credential, in: dir)[0]))
        } else if tls.credentialName == nil, tls.credentialNames.isEmpty, tls.tlsCertificates.count == 2,
                  let c2 = tls.tlsCertificates[1].serverCertificate, let k2 = tls.tlsCertificates[1].privateKey {
            second = (("\(p).tlsCertificates[1].serverCertificate", c2), ("\(p).tlsCertificates[1].privateKey", k2))
        }
        var secondChainPEM: [UInt8] = [], secondKeyPEM: [UInt8] = []
        if let (c2, k2) = second {
            certificateFiles += [c2.1, k2.1]
            (secondChainPEM, secondKeyPEM) = readPair(c2.0, c2.1, k2.0, k2.1)
            if let t1 = PEMCheck.keyType(chainPEM), let t2 = PEMCheck.keyType(secondChainPEM), t1.id == t2.id {
                fail(c2.0, PEMError("\(c2.1) has an \(t2.name) key like the first certificate \(certPath): a second certificate must be of another key type (RSA beside ECDSA); a client gets the one its signature algorithms accept"))
            }
        }

        // Client certificate revocation lists (MUTUAL, OPTIONAL_MUTUAL): `caCrl`, or the
        // credential's `ca.crl` / `crl` (Istio's Secret keys).
        var crlPEM: [UInt8] = []
        if mode != .simple {
            var crl: (String, String)?
            if let path = tls.caCrl {
                crl = ("\(p).caCrl", path)
            } else if let credential = caFromCredential ?? tls.caCertCredentialName {
                let candidates = CredentialFiles.crlCandidates(credential, in: dir)
                certificateFiles += candidates
                crl = candidates.first(where: { CredentialFiles.fileExists($0) }).map { ("\(p).credentialName", $0) }
            }
            if let (crlField, crlPath) = crl {
                certificateFiles.append(crlPath)
                switch PEMCheck.read(crlPath) {
                case .failure(let e): fail(crlField, e)
                case .success(let bytes):
                    if PEMCheck.crlCount(bytes) > 0 {
                        crlPEM = bytes
                    } else {
                        fail(crlField, PEMError("\(crlPath) holds no PEM certificate revocation list (X509 CRL)"))
                    }
                }
            }
        }
        if mode != .simple {
            if let (caField, caPath) = ca {
                switch PEMCheck.read(caPath) {
                case .failure(let e): fail(caField, e)
                case .success(let bytes):
                    if PEMCheck.summary(bytes) != nil {
                        caPEM = bytes
                    } else {
                        fail(caField, PEMError("\(caPath) holds no PEM certificate (client CA bundle)"))
                    }
                }
            } else if let credential = caFromCredential {
                fail("\(p).credentialName", PEMError(
                    "MUTUAL TLS requires a client CA bundle: credential \"\(credential)\" has none (looked for \(CredentialFiles.caCandidates(credential, in: dir).joined(separator: ", ")))"))
            } else {
                return nil  // validation: MUTUAL TLS requires a client CA bundle
            }
        }
        if failed { return nil }

        var minVersion = Compilation.tlsVersion(tls.minProtocolVersion)
        var maxVersion = Compilation.tlsVersion(tls.maxProtocolVersion)
        if minVersion != .auto, maxVersion != .auto, minVersion.rawValue > maxVersion.rawValue {
            (minVersion, maxVersion) = (.auto, .auto)  // validation error
        }
        var seen: Set<String> = []
        let ciphers = tls.cipherSuites.filter { supportedCipherSuites.contains($0) && seen.insert($0).inserted }
        return TLSServerSpec(name: name, hosts: hosts, mode: mode, certificateChainPEM: chainPEM, privateKeyPEM: keyPEM,
                             caCertificatesPEM: caPEM, minVersion: minVersion, maxVersion: maxVersion,
                             cipherSuites: ciphers.joined(separator: ":"), subjectAltNames: tls.subjectAltNames,
                             verifyCertificateSpki: tls.verifyCertificateSpki,
                             verifyCertificateHash: tls.verifyCertificateHash,
                             secondCertificateChainPEM: secondChainPEM, secondPrivateKeyPEM: secondKeyPEM, crlPEM: crlPEM)
    }

    static func tlsVersion(_ v: String?) -> TLSVersionSpec {
        switch v?.uppercased() {
        case "TLSV1_0": return .v1_0
        case "TLSV1_1": return .v1_1
        case "TLSV1_2": return .v1_2
        case "TLSV1_3": return .v1_3
        default: return .auto
        }
    }

    /// VirtualService tls[] blocks for the passthrough `servers` of a port (Istio gateway.go
    /// buildGatewayNetworkFiltersFromTLSRoutes): in merge order, one route per match whose
    /// `port` (if any) is this port and whose gateways (the match's, else the VirtualService's)
    /// name a server's Gateway; its SNI hosts are the match's `sniHosts` intersected with the
    /// hosts of every such server the VirtualService's hosts also meet. A match meeting no
    /// server gives no route. `destinationSubnets`, `sourceLabels` and `sourceNamespace` are
    /// not matched on a gateway (as for tcp routes).
    mutating func tlsRoutes(port: UInt32, servers: [BoundServer]) -> [TLSRouteSpec] {
        guard !servers.isEmpty else { return [] }
        var out: [TLSRouteSpec] = []
        for (meta, vs) in virtualServices where !vs.tls.isEmpty {
            func names(_ refs: [String], _ gw: ResourceMeta) -> Bool {
                refs.contains { ref in
                    guard let r = GatewayReference.resolve(ref, virtualServiceNamespace: meta.namespace) else { return false }
                    return r.namespace == gw.namespace && r.name == gw.name
                }
            }
            for (i, tls) in vs.tls.enumerated() {
                let path = "spec.tls[\(i)]"
                var destinations: [WeightedClusterSpec]??  // computed once per block
                for (j, m) in tls.match.enumerated() {
                    if let p = m.port, p != port { continue }
                    var sni: [String] = []
                    for bound in servers where names(m.gateways.isEmpty ? vs.gateways : m.gateways, bound.gateway) {
                        let serverHosts = GatewayReference.serverHosts(bound.server.hosts, gatewayNamespace: bound.gateway.namespace,
                                                                       virtualServiceNamespace: meta.namespace)
                        guard !HostName.intersection(serverHosts, vs.hosts).isEmpty else { continue }
                        for h in HostName.intersection(serverHosts, m.sniHosts) where !sni.contains(h) { sni.append(h) }
                    }
                    guard !sni.isEmpty else { continue }
                    if !m.destinationSubnets.isEmpty || !m.sourceLabels.isEmpty || m.sourceNamespace != nil {
                        diagnostics.append(meta.diagnostic(.note, "\(path).match[\(j)]",
                            "destinationSubnets, sourceLabels and sourceNamespace are not matched on a gateway (as in Istio); the block applies to every connection with these SNI names on port \(port)"))
                    }
                    if destinations == nil { destinations = .some(tcpDestinations(tls.route, meta, path: path)) }
                    guard let dests = destinations ?? nil else { continue }
                    out.append(TLSRouteSpec(name: "\(meta.qualifiedName)/tls[\(i)]", sniHosts: sni, destinations: dests))
                }
            }
        }
        return out
    }

    /// TCP routes for the terminated servers of a TLS-protocol port. The listener has one list
    /// for every terminated server (the data plane takes its first route), so when the servers
    /// bind different tcp blocks only the first server's is served, with a warning.
    mutating func terminatedTCPRoutes(port: UInt32, servers: [BoundServer]) -> [TCPRouteSpec] {
        var chosen: [TCPRouteSpec] = []
        for bound in servers {
            let routes = tcpRoutes(port: port, server: bound)
            if chosen.isEmpty {
                chosen = routes
            } else if !routes.isEmpty && routes != chosen {
                diagnostics.append(bound.gateway.diagnostic(.warning, "spec.servers[\(bound.index)]",
                    "terminated TLS servers on port \(port) share one tcp route: \(chosen[0].name) serves this server too (\(routes[0].name) is not used)"))
            }
        }
        return chosen
    }
}
