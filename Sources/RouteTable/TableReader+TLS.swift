// TLS servers and TLS (passthrough) routes of HTTPS/TLS listeners (TLSSpec.swift states the
// semantics; TableLayout.swift the records). Data plane: no allocation, no String.
//
// SNI choice is Envoy's filter-chain order for server names: an exact name, then the longest
// "*.suffix" wildcard ("*.example.com" takes "a.example.com" and "a.b.example.com", never
// "example.com"), then "*" (which also takes a ClientHello without SNI). ASCII case-insensitive.
// Like the virtual-host lookup (TableReader+HostLookup.swift) the cost depends on the length of
// the SNI only: one probe for the exact table, one per label for the suffix table.

extension TableReader {
    // MARK: servers

    public var tlsServers: Range<Int32> { 0..<tlsServerCount }

    /// Global TLS-server indices of listener `l`, in spec order (empty unless HTTPS/TLS).
    public func listenerTLSServers(_ l: Int32) -> Range<Int32> {
        precondition(listeners.contains(l))
        return range(listenerOff(l) + 48)
    }

    /// "<namespace>/<gateway> servers[<index>]", for logs and stats.
    public func tlsServerName(_ s: Int32) -> UnsafeRawBufferPointer {
        precondition(tlsServers.contains(s))
        return bytes(tlsServerOff(s))
    }

    public func tlsServerMode(_ s: Int32) -> TLSServerMode {
        precondition(tlsServers.contains(s))
        return TLSServerMode(rawValue: u8(tlsServerOff(s) + 8))!  // validated
    }

    public func tlsServerHostCount(_ s: Int32) -> Int32 {
        precondition(tlsServers.contains(s))
        return Int32(u32(tlsServerOff(s) + 16))
    }

    /// The `i`th SNI name of server `s`, lower-case: exact, "*.suffix" or "*".
    public func tlsServerHost(_ s: Int32, _ i: Int32) -> UnsafeRawBufferPointer {
        tlsName(list: tlsServerOff(s) + 12, i, owner: s, count: tlsServerCount)
    }

    /// PEM certificate chain, leaf first; count 0 exactly for passthrough servers.
    public func tlsServerCertificateChain(_ s: Int32) -> UnsafeRawBufferPointer {
        precondition(tlsServers.contains(s))
        return bytes(tlsServerOff(s) + 20)
    }

    /// PEM private key; count 0 exactly for passthrough servers. Secret: never log it.
    public func tlsServerPrivateKey(_ s: Int32) -> UnsafeRawBufferPointer {
        precondition(tlsServers.contains(s))
        return bytes(tlsServerOff(s) + 28)
    }

    /// PEM CA bundle that verifies client certificates; count 0 = none (SIMPLE, passthrough).
    public func tlsServerCACertificates(_ s: Int32) -> UnsafeRawBufferPointer {
        precondition(tlsServers.contains(s))
        return bytes(tlsServerOff(s) + 36)
    }

    /// PEM chain and key of a second certificate of another key type; count 0 = none. The key
    /// is secret: never log it.
    public func tlsServerSecondCertificate(_ s: Int32) -> (chain: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) {
        precondition(tlsServers.contains(s))
        return (bytes(tlsServerOff(s) + 76), bytes(tlsServerOff(s) + 84))
    }

    /// PEM CRLs for client certificates; count 0 = none.
    public func tlsServerCRL(_ s: Int32) -> UnsafeRawBufferPointer {
        precondition(tlsServers.contains(s))
        return bytes(tlsServerOff(s) + 92)
    }

    /// `.auto` leaves the side at the default (minimum TLS 1.2, maximum TLS 1.3).
    public func tlsServerVersions(_ s: Int32) -> (min: TLSVersionSpec, max: TLSVersionSpec) {
        precondition(tlsServers.contains(s))
        let at = tlsServerOff(s)
        return (TLSVersionSpec(rawValue: u8(at + 9))!, TLSVersionSpec(rawValue: u8(at + 10))!)  // validated
    }

    /// OpenSSL cipher list (TLS ≤ 1.2) joined with ":"; count 0 = the default list.
    public func tlsServerCipherSuites(_ s: Int32) -> UnsafeRawBufferPointer {
        precondition(tlsServers.contains(s))
        return bytes(tlsServerOff(s) + 44)
    }

    public func tlsServerSubjectAltNameCount(_ s: Int32) -> Int32 {
        precondition(tlsServers.contains(s))
        return Int32(u32(tlsServerOff(s) + 56))
    }

    public func tlsServerSubjectAltName(_ s: Int32, _ i: Int32) -> UnsafeRawBufferPointer {
        tlsName(list: tlsServerOff(s) + 52, i, owner: s, count: tlsServerCount)
    }

    public func tlsServerSpkiCount(_ s: Int32) -> Int32 {
        precondition(tlsServers.contains(s))
        return Int32(u32(tlsServerOff(s) + 64))
    }

    /// Base64 SHA-256 of an accepted client certificate's SPKI.
    public func tlsServerSpki(_ s: Int32, _ i: Int32) -> UnsafeRawBufferPointer {
        tlsName(list: tlsServerOff(s) + 60, i, owner: s, count: tlsServerCount)
    }

    public func tlsServerHashCount(_ s: Int32) -> Int32 {
        precondition(tlsServers.contains(s))
        return Int32(u32(tlsServerOff(s) + 72))
    }

    /// Hex SHA-256 of an accepted client certificate (DER), as written in the Gateway.
    public func tlsServerHash(_ s: Int32, _ i: Int32) -> UnsafeRawBufferPointer {
        tlsName(list: tlsServerOff(s) + 68, i, owner: s, count: tlsServerCount)
    }

    /// The server a ClientHello with this SNI (raw bytes from the wire, any case; count 0 = no SNI
    /// extension) gets on listener `l`, Envoy filter-chain order: an exact name first, then the
    /// longest matching "*.suffix" wildcard ("*.example.com" matches "a.example.com" and
    /// "a.b.example.com", not "example.com"), then a server with "*" (which also takes a hello
    /// without SNI). -1: none. Allocation-free (it runs per connection on the data plane).
    /// `sni` is only read during the call.
    public func tlsServer(listener l: Int32, sni: UnsafeRawBufferPointer) -> Int32 {
        precondition(listeners.contains(l))
        return sniLookup(listenerOff(l) + 56, sni)
    }

    // MARK: routes

    public var tlsRoutes: Range<Int32> { 0..<tlsRouteCount }

    /// Global TLS-route indices of listener `l`, in VirtualService order.
    public func listenerTLSRoutes(_ l: Int32) -> Range<Int32> {
        precondition(listeners.contains(l))
        return range(listenerOff(l) + 76)
    }

    /// "<namespace>/<virtualservice>/tls[<index>]".
    public func tlsRouteName(_ r: Int32) -> UnsafeRawBufferPointer {
        precondition(tlsRoutes.contains(r))
        return bytes(tlsRouteOff(r))
    }

    public func tlsRouteSniHostCount(_ r: Int32) -> Int32 {
        precondition(tlsRoutes.contains(r))
        return Int32(u32(tlsRouteOff(r) + 12))
    }

    /// The `i`th SNI host of route `r`, lower-case: exact, "*.suffix" or "*".
    public func tlsRouteSniHost(_ r: Int32, _ i: Int32) -> UnsafeRawBufferPointer {
        tlsName(list: tlsRouteOff(r) + 8, i, owner: r, count: tlsRouteCount)
    }

    /// The passthrough route for this SNI on listener `l`: same specificity order as tlsServer
    /// across all the listener's routes (ties: the earlier route). -1: none.
    public func tlsRoute(listener l: Int32, sni: UnsafeRawBufferPointer) -> Int32 {
        precondition(listeners.contains(l))
        return sniLookup(listenerOff(l) + 84, sni)
    }

    public func tlsWeightedClusterCount(route r: Int32) -> Int32 {
        precondition(tlsRoutes.contains(r))
        return Int32(u32(tlsRouteOff(r) + 20))
    }

    /// The `i`th destination of a TLS route: cluster index (-1 = missing) and relative weight.
    public func tlsWeightedCluster(route r: Int32, _ i: Int32) -> (cluster: Int32, weight: UInt32) {
        precondition(i >= 0 && i < tlsWeightedClusterCount(route: r))
        let at = weightedOff(Int32(u32(tlsRouteOff(r) + 16)) + i)
        return (i32(at), u32(at + 4))
    }

    /// Chooses a destination of TLS route `r` by weight, like `pickTCPCluster(route:random:)`:
    /// the cluster index, or -1 when the chosen destination is missing or there is none.
    public func pickTLSCluster(route r: Int32, random: UInt32) -> Int32 {
        precondition(tlsRoutes.contains(r))
        let at = tlsRouteOff(r)
        let n = Int32(u32(at + 20))
        guard n > 0 else { return -1 }
        return pickWeighted(first: Int32(u32(at + 16)), n, total: u32(at + 24), random: random)
    }

    // MARK: helpers

    /// The `i`th TLSName of the (first, count) list at `list` inside record `owner`.
    func tlsName(list at: Int, _ i: Int32, owner: Int32, count: Int32) -> UnsafeRawBufferPointer {
        let names = range(at)
        precondition(owner >= 0 && owner < count && i >= 0 && i < Int32(names.count))
        return bytes(tlsNameOff(names.lowerBound + i))
    }

    /// SNI lookup over the listener fields at `at`: anyI32, exact table (first, count), suffix
    /// table (first, count). Validation guarantees every slot names a record of this listener.
    @inline(__always)
    func sniLookup(_ at: Int, _ sni: UnsafeRawBufferPointer) -> Int32 {
        let n = sni.count
        guard n > 0, let p = sni.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return i32(at) }
        let exactCount = u32(at + 8)
        if exactCount > 0 {
            var h = HostHash.seed
            for i in 0..<n { h = HostHash.step(h, p[i]) }
            let v = probe(first: u32(at + 4), count: exactCount, hash: h, key: p, count: n)
            if v >= 0 { return v }
        }
        let suffixCount = u32(at + 16)
        if suffixCount > 0 {
            // Backwards: at each dot after the first byte, h is the hash of sni[i...] (reversed).
            let first = u32(at + 12)
            var h = HostHash.seed, best: Int32 = -1
            var i = n - 1
            while i >= 1 {
                h = HostHash.step(h, p[i])
                if p[i] == UInt8(ascii: ".") {
                    let v = probe(first: first, count: suffixCount, hash: h, key: p + i, count: n - i)
                    if v >= 0 { best = v }  // further left = longer suffix
                }
                i -= 1
            }
            if best >= 0 { return best }
        }
        return i32(at)
    }
}
