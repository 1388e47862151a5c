// Reader side of the route-table image (layout: TableLayout.swift). Data plane: no allocation,
// no String, no existentials. `init(validating:count:)` checks every offset, index and string
// reference once per table generation, so the accessors and the matcher can then read without
// bounds checks. A corrupt image is a `TableReadError`, never a crash.

/// Why an image was rejected. `index` is the record number inside `section`.
public enum TableReadError: Error, Equatable {
    /// Fewer bytes than a header, or fewer than the header's `totalBytes`.
    case truncated(byteCount: Int)
    case badMagic(UInt32)
    case unsupportedVersion(UInt16)
    /// headerBytes or totalBytes make no sense.
    case badHeader
    /// A section's records do not lie inside the image.
    case sectionOutOfBounds(Section)
    /// A record refers outside its target (index, range, string) or holds an unknown enum value.
    case badRecord(Section, index: Int)
}

/// An endpoint as stored in the image.
public struct EndpointView {
    /// 4 or 6.
    public var family: UInt8
    /// Network byte order; 4 bytes for IPv4, 16 for IPv6. Valid while the image is.
    public var address: UnsafeRawBufferPointer
    public var port: UInt16
    public var weight: UInt32
    /// Index into the shared-memory health array.
    public var id: UInt32
}

/// One condition of a match block, for display (`ingressd routes`, `/config_dump`).
public struct ConditionView {
    public var target: ConditionTarget
    public var kind: ConditionKind
    /// Header name (lower-case) or query parameter name; empty for uri/scheme/method/authority.
    public var name: UnsafeRawBufferPointer
    /// Exact or prefix value, or the regex pattern; empty for `present`.
    public var value: UnsafeRawBufferPointer
}

/// A validated view of an image. The caller owns the memory and keeps it mapped and unchanged
/// for as long as the reader, or a `RouteMatcher` built from it, is in use. Index arguments of
/// the accessors must be in range (callers get them from this reader); out of range is a
/// precondition failure, because reading past the image would be worse.
public struct TableReader {
    public let base: UnsafeRawPointer
    /// The image's own size (`totalBytes`), at most the count passed to init.
    public let byteCount: Int

    @usableFromInline let listenersAt: Int, listenerCount: Int32
    @usableFromInline let vhostsAt: Int, vhostCount: Int32
    @usableFromInline let domainsAt: Int, domainCount: Int32
    @usableFromInline let slotsAt: Int, slotCount: Int32
    @usableFromInline let routesAt: Int, routeCount: Int32
    @usableFromInline let matchesAt: Int, matchCount: Int32
    @usableFromInline let condsAt: Int, condCount: Int32
    @usableFromInline let weightedAt: Int, weightedCount: Int32
    @usableFromInline let clustersAt: Int, clusterCount: Int32
    @usableFromInline let endpointsAt: Int, endpointCount: Int32
    @usableFromInline let regexesAt: Int, regexCount: Int32
    @usableFromInline let stringsAt: Int, stringBytes: Int
    @usableFromInline let tcpRoutesAt: Int, tcpRouteCount: Int32
    @usableFromInline let headerOpsAt: Int, headerOpCount: Int32
    @usableFromInline let retryStatusesAt: Int, retryStatusCount: Int32
    @usableFromInline let mirrorsAt: Int, mirrorCount: Int32
    @usableFromInline let corsAt: Int, corsCount: Int32
    @usableFromInline let originsAt: Int, originCount: Int32
    @usableFromInline let tlsServersAt: Int, tlsServerCount: Int32
    @usableFromInline let tlsRoutesAt: Int, tlsRouteCount: Int32
    @usableFromInline let tlsNamesAt: Int, tlsNameCount: Int32
    @usableFromInline let clusterTLSAt: Int, clusterTLSCount: Int32

    /// Checks magic, version, sizes and every reference of the image at `base` (`count` bytes
    /// readable, e.g. the whole shared-memory slot). Accepts exactly what `TableImage.build`
    /// of this `Layout.version` writes; reads nothing outside `count` bytes.
    public init(validating base: UnsafeRawPointer, count: Int) throws(TableReadError) {
        guard count >= Layout.headerBytes else { throw .truncated(byteCount: count) }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        let magic = u32(0)
        guard magic == Layout.magic else { throw .badMagic(magic) }
        let version = u16(4)
        guard version == Layout.version else { throw .unsupportedVersion(version) }
        let headerBytes = Int(u16(6)), total = Int(u32(8))
        guard headerBytes >= Layout.headerBytes, total >= headerBytes else { throw .badHeader }
        guard total <= count else { throw .truncated(byteCount: count) }

        var at = [Int](repeating: 0, count: Section.allCases.count)
        var n = [Int](repeating: 0, count: Section.allCases.count)
        for s in Section.allCases {
            let i = Int(s.rawValue)
            at[i] = Int(u32(Layout.sectionTableOffset + 8 * i))
            n[i] = Int(u32(Layout.sectionTableOffset + 8 * i + 4))
            // Counts are < 2^32 and record sizes ≤ 168, so this cannot overflow Int64.
            guard n[i] <= Int(Int32.max), at[i] >= headerBytes, at[i] + n[i] * s.recordBytes <= total else {
                throw .sectionOutOfBounds(s)
            }
        }
        self.base = base
        self.byteCount = total
        func sec(_ s: Section) -> (Int, Int32) { (at[Int(s.rawValue)], Int32(n[Int(s.rawValue)])) }
        (listenersAt, listenerCount) = sec(.listeners)
        (vhostsAt, vhostCount) = sec(.virtualHosts)
        (domainsAt, domainCount) = sec(.domains)
        (slotsAt, slotCount) = sec(.hostSlots)
        (routesAt, routeCount) = sec(.routes)
        (matchesAt, matchCount) = sec(.matches)
        (condsAt, condCount) = sec(.conditions)
        (weightedAt, weightedCount) = sec(.weighted)
        (clustersAt, clusterCount) = sec(.clusters)
        (endpointsAt, endpointCount) = sec(.endpoints)
        (regexesAt, regexCount) = sec(.regexes)
        (tcpRoutesAt, tcpRouteCount) = sec(.tcpRoutes)
        (headerOpsAt, headerOpCount) = sec(.headerOps)
        (retryStatusesAt, retryStatusCount) = sec(.retryStatuses)
        (mirrorsAt, mirrorCount) = sec(.mirrors)
        (corsAt, corsCount) = sec(.cors)
        (originsAt, originCount) = sec(.origins)
        (tlsServersAt, tlsServerCount) = sec(.tlsServers)
        (tlsRoutesAt, tlsRouteCount) = sec(.tlsRoutes)
        (tlsNamesAt, tlsNameCount) = sec(.tlsNames)
        (clusterTLSAt, clusterTLSCount) = sec(.clusterTLS)
        let (sAt, sBytes) = sec(.strings)
        stringsAt = sAt
        stringBytes = Int(sBytes)
        try validateRecords()
    }

    // MARK: raw loads (offsets already validated)

    @inline(__always)
    func u8(_ at: Int) -> UInt8 { base.load(fromByteOffset: at, as: UInt8.self) }
    @inline(__always)
    func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    @inline(__always)
    func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    @inline(__always)
    func i32(_ at: Int) -> Int32 { Int32(bitPattern: u32(at)) }

    /// The bytes of the StrRef at `at`; empty for an absent one.
    @inline(__always)
    func bytes(_ at: Int) -> UnsafeRawBufferPointer {
        let off = u32(at)
        if off == Layout.absent { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + stringsAt + Int(off), count: Int(u32(at + 4)))
    }

    @inline(__always)
    func optionalBytes(_ at: Int) -> UnsafeRawBufferPointer? {
        u32(at) == Layout.absent ? nil : bytes(at)
    }

    func listenerOff(_ l: Int32) -> Int { listenersAt + Int(l) * Layout.listenerBytes }
    func vhostOff(_ v: Int32) -> Int { vhostsAt + Int(v) * Layout.vhostBytes }
    func routeOff(_ r: Int32) -> Int { routesAt + Int(r) * Layout.routeBytes }
    func matchOff(_ m: Int32) -> Int { matchesAt + Int(m) * Layout.matchBytes }
    func condOff(_ c: Int32) -> Int { condsAt + Int(c) * Layout.conditionBytes }
    func weightedOff(_ w: Int32) -> Int { weightedAt + Int(w) * Layout.weightedBytes }
    func clusterOff(_ c: Int32) -> Int { clustersAt + Int(c) * Layout.clusterBytes }
    func endpointOff(_ e: Int32) -> Int { endpointsAt + Int(e) * Layout.endpointBytes }
    func slotOff(_ s: Int32) -> Int { slotsAt + Int(s) * Layout.hostSlotBytes }
    func tcpRouteOff(_ r: Int32) -> Int { tcpRoutesAt + Int(r) * Layout.tcpRouteBytes }
    func headerOpOff(_ h: Int32) -> Int { headerOpsAt + Int(h) * Layout.headerOpBytes }
    func mirrorOff(_ m: Int32) -> Int { mirrorsAt + Int(m) * Layout.mirrorBytes }
    func corsOff(_ c: Int32) -> Int { corsAt + Int(c) * Layout.corsBytes }
    func originOff(_ o: Int32) -> Int { originsAt + Int(o) * Layout.originBytes }
    func tlsServerOff(_ s: Int32) -> Int { tlsServersAt + Int(s) * Layout.tlsServerBytes }
    func tlsRouteOff(_ r: Int32) -> Int { tlsRoutesAt + Int(r) * Layout.tlsRouteBytes }
    func tlsNameOff(_ n: Int32) -> Int { tlsNamesAt + Int(n) * Layout.strRefBytes }
    func clusterTLSOff(_ t: Int32) -> Int { clusterTLSAt + Int(t) * Layout.clusterTLSBytes }

    func range(_ at: Int) -> Range<Int32> {
        let first = Int32(truncatingIfNeeded: u32(at))
        return first..<(first + Int32(truncatingIfNeeded: u32(at + 4)))
    }

    // MARK: listeners

    public var listeners: Range<Int32> { 0..<listenerCount }

    /// The listener serving `port`, or -1. Linear in the number of ports (a handful).
    public func listener(port: UInt16) -> Int32 {
        var l: Int32 = 0
        while l < listenerCount {
            if u16(listenerOff(l)) == port { return l }
            l += 1
        }
        return -1
    }

    public func listenerPort(_ l: Int32) -> UInt16 { precondition(listeners.contains(l)); return u16(listenerOff(l)) }
    public func listenerProtocol(_ l: Int32) -> ListenerProtocol {
        precondition(listeners.contains(l))
        return ListenerProtocol(rawValue: u8(listenerOff(l) + 2))!  // validated
    }
    /// Global virtual-host indices of this listener.
    public func listenerVirtualHosts(_ l: Int32) -> Range<Int32> { precondition(listeners.contains(l)); return range(listenerOff(l) + 4) }

    // MARK: virtual hosts

    public var virtualHosts: Range<Int32> { 0..<vhostCount }
    public func virtualHostName(_ v: Int32) -> UnsafeRawBufferPointer { precondition(virtualHosts.contains(v)); return bytes(vhostOff(v)) }
    public func virtualHostDomainCount(_ v: Int32) -> Int32 { precondition(virtualHosts.contains(v)); return Int32(u32(vhostOff(v) + 12)) }
    /// The `i`th domain, lower-case, as in the spec.
    public func virtualHostDomain(_ v: Int32, _ i: Int32) -> UnsafeRawBufferPointer {
        let ds = range(vhostOff(v) + 8)
        precondition(virtualHosts.contains(v) && i >= 0 && i < Int32(ds.count))
        return bytes(domainsAt + Int(ds.lowerBound + i) * Layout.strRefBytes)
    }
    /// Routes in match order.
    public func virtualHostRoutes(_ v: Int32) -> Range<Int32> { precondition(virtualHosts.contains(v)); return range(vhostOff(v) + 16) }
    public func virtualHostHTTPSRedirect(_ v: Int32) -> Bool { precondition(virtualHosts.contains(v)); return u32(vhostOff(v) + 24) & 1 != 0 }

    // MARK: routes

    public var routes: Range<Int32> { 0..<routeCount }
    public func routeName(_ r: Int32) -> UnsafeRawBufferPointer { precondition(routes.contains(r)); return bytes(routeOff(r)) }
    public func routeActionKind(_ r: Int32) -> RouteActionKind {
        precondition(routes.contains(r))
        return RouteActionKind(rawValue: u8(routeOff(r) + 20))!  // validated
    }
    /// 0 = no timeout.
    public func routeTimeoutMs(_ r: Int32) -> UInt32 { precondition(routes.contains(r)); return u32(routeOff(r) + 16) }
    /// Match blocks (OR); empty means the route matches every request.
    public func routeMatches(_ r: Int32) -> Range<Int32> { precondition(routes.contains(r)); return range(routeOff(r) + 8) }

    /// Number of weighted destinations; 0 unless the action is `.forward`.
    public func weightedClusterCount(route r: Int32) -> Int32 {
        precondition(routes.contains(r))
        return routeActionKind(r) == .forward ? Int32(u32(routeOff(r) + 28)) : 0
    }
    /// The `i`th destination: cluster index (-1 = cluster missing, 503 NC) and relative weight.
    public func weightedCluster(route r: Int32, _ i: Int32) -> (cluster: Int32, weight: UInt32) {
        precondition(i >= 0 && i < weightedClusterCount(route: r))
        let at = weightedOff(Int32(u32(routeOff(r) + 24)) + i)
        return (i32(at), u32(at + 4))
    }

    /// Chooses a destination of a `.forward` route by weight. `random` is uniform over UInt32;
    /// the result is the cluster index, or -1 when the chosen destination is missing, when the
    /// route has no destination, or when the route does not forward. One destination gets all
    /// traffic whatever its weight; a total weight of 0 picks the first (istio-semantics.md §1.4).
    public func pickCluster(route r: Int32, random: UInt32) -> Int32 {
        precondition(routes.contains(r))
        let at = routeOff(r)
        guard u8(at + 20) == RouteActionKind.forward.rawValue else { return -1 }
        let n = Int32(u32(at + 28))
        guard n > 0 else { return -1 }
        return pickWeighted(first: Int32(u32(at + 24)), n, total: u32(at + 32), random: random)
    }

    /// Weighted choice among the `n` (> 0) WeightedCluster records from `first`: its cluster.
    @inline(__always)
    func pickWeighted(first: Int32, _ n: Int32, total: UInt32, random: UInt32) -> Int32 {
        i32(weightedOff(pickWeightedIndex(first: first, n, total: total, random: random)))
    }

    /// Weighted choice among the `n` (> 0) WeightedCluster records from `first`: its index.
    @inline(__always)
    func pickWeightedIndex(first: Int32, _ n: Int32, total: UInt32, random: UInt32) -> Int32 {
        if n == 1 || total == 0 { return first }
        // Multiply-shift maps random uniformly onto [0, total) without a division.
        var target = UInt32((UInt64(random) &* UInt64(total)) >> 32)
        var i: Int32 = 0
        while i < n - 1 {
            let w = u32(weightedOff(first + i) + 4)
            if target < w { return first + i }
            target -= w
            i += 1
        }
        return first + n - 1
    }

    // MARK: TCP routes

    public var tcpRoutes: Range<Int32> { 0..<tcpRouteCount }
    /// TCP routes of a listener in match order (empty unless it is a `.tcp` listener with routes).
    public func listenerTCPRoutes(_ l: Int32) -> Range<Int32> { precondition(listeners.contains(l)); return range(listenerOff(l) + 40) }
    public func tcpRouteName(_ r: Int32) -> UnsafeRawBufferPointer { precondition(tcpRoutes.contains(r)); return bytes(tcpRouteOff(r)) }
    public func tcpWeightedClusterCount(route r: Int32) -> Int32 {
        precondition(tcpRoutes.contains(r))
        return Int32(u32(tcpRouteOff(r) + 12))
    }
    /// The `i`th destination of a TCP route: cluster index (-1 = missing) and relative weight.
    public func tcpWeightedCluster(route r: Int32, _ i: Int32) -> (cluster: Int32, weight: UInt32) {
        precondition(i >= 0 && i < tcpWeightedClusterCount(route: r))
        let at = weightedOff(Int32(u32(tcpRouteOff(r) + 8)) + i)
        return (i32(at), u32(at + 4))
    }
    /// Chooses a destination of TCP route `r` by weight, like `pickCluster(route:random:)`:
    /// the cluster index, or -1 when the chosen destination is missing or there is none.
    public func pickTCPCluster(route r: Int32, random: UInt32) -> Int32 {
        precondition(tcpRoutes.contains(r))
        let at = tcpRouteOff(r)
        let n = Int32(u32(at + 12))
        guard n > 0 else { return -1 }
        return pickWeighted(first: Int32(u32(at + 8)), n, total: u32(at + 16), random: random)
    }

    public func directResponseStatus(route r: Int32) -> UInt16 { precondition(routes.contains(r)); return u16(routeOff(r) + 22) }
    /// Empty unless the action is `.directResponse`.
    public func directResponseBody(route r: Int32) -> UnsafeRawBufferPointer {
        precondition(routes.contains(r))
        return routeActionKind(r) == .directResponse ? bytes(routeOff(r) + 40) : UnsafeRawBufferPointer(start: nil, count: 0)
    }

    public func redirectStatus(route r: Int32) -> UInt16 { directResponseStatus(route: r) }
    /// Nil fields keep the request's value. All nil unless the action is `.redirect`.
    public func redirectScheme(route r: Int32) -> UnsafeRawBufferPointer? { redirectString(r, 40) }
    public func redirectAuthority(route r: Int32) -> UnsafeRawBufferPointer? { redirectString(r, 48) }
    public func redirectURI(route r: Int32) -> UnsafeRawBufferPointer? { redirectString(r, 56) }
    public func redirectPrefixRewrite(route r: Int32) -> UnsafeRawBufferPointer? { redirectString(r, 64) }
    public func redirectPort(route r: Int32) -> UInt16? {
        precondition(routes.contains(r))
        let at = routeOff(r)
        return u8(at + 20) == RouteActionKind.redirect.rawValue && u8(at + 21) & 1 != 0 ? u16(at + 36) : nil
    }

    func redirectString(_ r: Int32, _ field: Int) -> UnsafeRawBufferPointer? {
        precondition(routes.contains(r))
        return routeActionKind(r) == .redirect ? optionalBytes(routeOff(r) + field) : nil
    }

    // MARK: match blocks (display)

    /// The listener port a block requires, or nil.
    public func matchPort(_ m: Int32) -> UInt16? {
        precondition(m >= 0 && m < matchCount)
        return u8(matchOff(m) + 10) & 2 != 0 ? u16(matchOff(m) + 8) : nil
    }
    public func matchIgnoreUriCase(_ m: Int32) -> Bool { precondition(m >= 0 && m < matchCount); return u8(matchOff(m) + 10) & 1 != 0 }
    public func matchConditions(_ m: Int32) -> Range<Int32> { precondition(m >= 0 && m < matchCount); return range(matchOff(m)) }
    public func condition(_ c: Int32) -> ConditionView {
        precondition(c >= 0 && c < condCount)
        let at = condOff(c)
        return ConditionView(target: ConditionTarget(rawValue: u8(at))!, kind: ConditionKind(rawValue: u8(at + 1))!,
                             name: bytes(at + 4), value: bytes(at + 12))
    }

    // MARK: clusters and endpoints

    public var clusters: Range<Int32> { 0..<clusterCount }
    public func clusterName(_ c: Int32) -> UnsafeRawBufferPointer { precondition(clusters.contains(c)); return bytes(clusterOff(c)) }
    public func clusterConnectTimeoutMs(_ c: Int32) -> UInt32 { precondition(clusters.contains(c)); return u32(clusterOff(c) + 8) }
    public func clusterEndpoints(_ c: Int32) -> Range<Int32> { precondition(clusters.contains(c)); return range(clusterOff(c) + 12) }

    public var endpoints: Range<Int32> { 0..<endpointCount }
    public func endpoint(_ e: Int32) -> EndpointView {
        precondition(endpoints.contains(e))
        let at = endpointOff(e)
        let family = u8(at)
        return EndpointView(family: family, address: UnsafeRawBufferPointer(start: base + at + 12, count: family == 4 ? 4 : 16),
                            port: u16(at + 2), weight: u32(at + 4), id: u32(at + 8))
    }

    // MARK: regexes

    public var regexes: Range<Int32> { 0..<regexCount }
    public func regexPattern(_ i: Int32) -> UnsafeRawBufferPointer {
        precondition(regexes.contains(i))
        return bytes(regexesAt + Int(i) * Layout.strRefBytes)
    }
}
