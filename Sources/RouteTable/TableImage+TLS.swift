// Builder side of the TLS records (TableLayout.swift: TLSServer, TLSRoute, TLSName and the
// listener's bytes 48–103). Control plane only.

extension ImageBuilder {
    /// Writes the TLS servers and routes of `l` and their SNI tables; returns the listener's
    /// bytes 48–103. Rejects a name that is not exact, "*.suffix" or "*", the same server name
    /// twice on the listener, and a server whose certificate material does not fit its mode.
    mutating func addTLS(_ l: ListenerSpec, clusterCount: Int) throws(TableBuildError) -> [UInt8] {
        var w = ByteWriter()

        // Servers.
        let firstServer = count(.tlsServers)
        var exact: [([UInt8], Int32)] = [], suffix: [([UInt8], Int32)] = []
        var seen = Set<[UInt8]>()
        var anyServer: Int32 = -1
        for s in l.tlsServers {
            let index = Int32(count(.tlsServers))
            let firstHost = count(.tlsNames)
            for h in s.hosts {
                let lowered = h.utf8.map(HostHash.lower)
                guard let kind = DomainKind(lowered) else { throw .invalidDomain(domain: h, virtualHost: s.name) }
                guard seen.insert(lowered).inserted else { throw .duplicateServerName(name: h, port: l.port) }
                switch kind {
                case .exact(let k): exact.append((k, index))
                case .suffix(let k): suffix.append((k, index))
                case .any: anyServer = index
                case .prefix: throw .invalidDomain(domain: h, virtualHost: s.name)
                }
                name(lowered)
            }
            try add(s, firstHost: firstHost)
        }
        let serverCount = count(.tlsServers) - firstServer
        let serverExact = hostTable(exact, hash: HostHash.forward)
        let serverSuffix = hostTable(suffix, hash: HostHash.backward)
        w.u32(firstServer); w.u32(serverCount); w.i32(anyServer)
        w.u32(serverExact.first); w.u32(serverExact.count)
        w.u32(serverSuffix.first); w.u32(serverSuffix.count)

        // Routes: a name several routes share belongs to the first of them.
        let firstRoute = count(.tlsRoutes)
        exact = []; suffix = []; seen = []
        var anyRoute: Int32 = -1
        for r in l.tlsRoutes {
            let index = Int32(count(.tlsRoutes))
            let firstSni = count(.tlsNames)
            for h in r.sniHosts {
                let lowered = h.utf8.map(HostHash.lower)
                guard let kind = DomainKind(lowered) else { throw .invalidDomain(domain: h, virtualHost: r.name) }
                if seen.insert(lowered).inserted {
                    switch kind {
                    case .exact(let k): exact.append((k, index))
                    case .suffix(let k): suffix.append((k, index))
                    case .any: anyRoute = index
                    case .prefix: throw .invalidDomain(domain: h, virtualHost: r.name)
                    }
                }
                name(lowered)
            }
            let sniCount = count(.tlsNames) - firstSni
            let ws = try weighted(r.destinations, route: r.name, clusterCount: clusterCount)
            let nameRef = string(r.name)
            record(.tlsRoutes) { rec in
                rec.ref(nameRef)
                rec.u32(firstSni); rec.u32(sniCount)
                rec.u32(ws.first); rec.u32(ws.count); rec.u32(ws.total)
                rec.u32(0)
            }
        }
        let routeCount = count(.tlsRoutes) - firstRoute
        let routeExact = hostTable(exact, hash: HostHash.forward)
        let routeSuffix = hostTable(suffix, hash: HostHash.backward)
        w.u32(firstRoute); w.u32(routeCount); w.i32(anyRoute)
        w.u32(routeExact.first); w.u32(routeExact.count)
        w.u32(routeSuffix.first); w.u32(routeSuffix.count)
        assert(w.bytes.count == Layout.listenerBytes - 48)
        return w.bytes
    }

    /// Appends one TLSName record.
    mutating func name(_ bytes: [UInt8]) {
        let r = string(bytes)
        record(.tlsNames) { $0.ref(r) }
    }

    /// Appends TLSName records for `list`; returns (first, count).
    mutating func names(_ list: [String]) -> (UInt32, UInt32) {
        let first = count(.tlsNames)
        for s in list { name(Array(s.utf8)) }
        return (first, count(.tlsNames) - first)
    }

    mutating func add(_ s: TLSServerSpec, firstHost: UInt32) throws(TableBuildError) {
        let hostCount = count(.tlsNames) - firstHost
        let terminates = s.mode != .passthrough
        if terminates {
            guard !s.certificateChainPEM.isEmpty, !s.privateKeyPEM.isEmpty else {
                throw .invalidTLSServer(server: s.name, what: "a terminating server needs a certificate chain and a private key")
            }
            guard s.secondCertificateChainPEM.isEmpty == s.secondPrivateKeyPEM.isEmpty else {
                throw .invalidTLSServer(server: s.name, what: "a second certificate needs both a chain and a private key")
            }
        } else {
            guard s.certificateChainPEM.isEmpty, s.privateKeyPEM.isEmpty, s.caCertificatesPEM.isEmpty,
                  s.secondCertificateChainPEM.isEmpty, s.secondPrivateKeyPEM.isEmpty, s.crlPEM.isEmpty else {
                throw .invalidTLSServer(server: s.name, what: "a passthrough server carries no certificate, key, CA or CRL")
            }
        }
        if s.minVersion != .auto, s.maxVersion != .auto, s.minVersion.rawValue > s.maxVersion.rawValue {
            throw .invalidTLSServer(server: s.name, what: "minimum TLS version is above the maximum")
        }
        let sans = names(s.subjectAltNames)
        let spki = names(s.verifyCertificateSpki)
        let hashes = names(s.verifyCertificateHash)
        let nameRef = string(s.name)
        let chain = string(s.certificateChainPEM), key = string(s.privateKeyPEM)
        let ca = string(s.caCertificatesPEM), ciphers = string(s.cipherSuites)
        let chain2 = string(s.secondCertificateChainPEM), key2 = string(s.secondPrivateKeyPEM), crl = string(s.crlPEM)
        record(.tlsServers) { w in
            w.ref(nameRef)
            w.u8(s.mode.rawValue); w.u8(s.minVersion.rawValue); w.u8(s.maxVersion.rawValue); w.u8(0)
            w.u32(firstHost); w.u32(hostCount)
            w.ref(chain); w.ref(key); w.ref(ca); w.ref(ciphers)
            w.u32(sans.0); w.u32(sans.1)
            w.u32(spki.0); w.u32(spki.1)
            w.u32(hashes.0); w.u32(hashes.1)
            w.ref(chain2); w.ref(key2); w.ref(crl)
        }
    }
}
