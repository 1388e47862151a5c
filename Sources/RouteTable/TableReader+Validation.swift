// The record checks behind `TableReader.init(validating:count:)`. After they pass, every index,
// range and string reference in the image points inside the image, every enum byte is known,
// and every hash table has a power-of-two size, so no read the matcher or an accessor makes
// can leave the image and no probe loop can run forever. O(image size), once per generation.

extension TableReader {
    func validateRecords() throws(TableReadError) {
        func ref(_ at: Int, optional: Bool = false) -> Bool {
            let off = u32(at), len = Int(u32(at + 4))
            if off == Layout.absent { return optional }
            return Int(off) + len <= stringBytes
        }
        func within(_ r: Range<Int64>, _ count: Int32) -> Bool {
            r.lowerBound >= 0 && r.lowerBound <= r.upperBound && r.upperBound <= Int64(count)
        }
        func rng(_ at: Int) -> Range<Int64> {
            let first = Int64(u32(at))
            return first..<(first + Int64(u32(at + 4)))
        }
        func index(_ v: Int32, _ count: Int32, allowMissing: Bool) -> Bool {
            (allowMissing && v == -1) || (v >= 0 && v < count)
        }

        for l in 0..<listenerCount {
            let at = listenerOff(l)
            let vhs = rng(at + 4)
            guard ListenerProtocol(rawValue: u8(at + 2)) != nil, within(vhs, vhostCount) else {
                throw .badRecord(.listeners, index: Int(l))
            }
            guard within(rng(at + 40), tcpRouteCount) else { throw .badRecord(.listeners, index: Int(l)) }
            let catchAll = i32(at + 12)
            guard catchAll == -1 || vhs.contains(Int64(catchAll)) else { throw .badRecord(.listeners, index: Int(l)) }
            for table in [at + 16, at + 24, at + 32] {
                let slots = rng(table)
                let n = slots.count
                guard within(slots, slotCount), n == 0 || n & (n - 1) == 0 else {
                    throw .badRecord(.listeners, index: Int(l))
                }
                for s in slots {
                    let sAt = slotOff(Int32(s))
                    let vh = i32(sAt + 12)
                    guard ref(sAt + 4), vh == -1 || vhs.contains(Int64(vh)) else {
                        throw .badRecord(.hostSlots, index: Int(s))
                    }
                }
            }
        }
        for v in 0..<vhostCount {
            let at = vhostOff(v)
            guard ref(at), within(rng(at + 8), domainCount), within(rng(at + 16), routeCount) else {
                throw .badRecord(.virtualHosts, index: Int(v))
            }
        }
        for d in 0..<domainCount where !ref(domainsAt + Int(d) * Layout.strRefBytes) {
            throw .badRecord(.domains, index: Int(d))
        }
        for r in 0..<routeCount {
            let at = routeOff(r)
            guard ref(at), within(rng(at + 8), matchCount), let kind = RouteActionKind(rawValue: u8(at + 20)) else {
                throw .badRecord(.routes, index: Int(r))
            }
            guard validateRouteActions(at) else { throw .badRecord(.routes, index: Int(r)) }
            switch kind {
            case .forward:
                let ws = rng(at + 24)
                guard within(ws, weightedCount) else { throw .badRecord(.routes, index: Int(r)) }
                var sum: Int64 = 0
                for w in ws { sum += Int64(u32(weightedOff(Int32(w)) + 4)) }
                guard sum == Int64(u32(at + 32)) else { throw .badRecord(.routes, index: Int(r)) }
            case .directResponse:
                guard ref(at + 40) else { throw .badRecord(.routes, index: Int(r)) }
            case .redirect:
                for f in [40, 48, 56, 64] where !ref(at + f, optional: true) {
                    throw .badRecord(.routes, index: Int(r))
                }
            }
        }
        for r in 0..<tcpRouteCount {
            let at = tcpRouteOff(r)
            let ws = rng(at + 8)
            guard ref(at), within(ws, weightedCount) else { throw .badRecord(.tcpRoutes, index: Int(r)) }
            var sum: Int64 = 0
            for w in ws { sum += Int64(u32(weightedOff(Int32(w)) + 4)) }
            guard sum == Int64(u32(at + 16)) else { throw .badRecord(.tcpRoutes, index: Int(r)) }
        }
        for m in 0..<matchCount where !within(rng(matchOff(m)), condCount) {
            throw .badRecord(.matches, index: Int(m))
        }
        for c in 0..<condCount {
            let at = condOff(c)
            guard ConditionTarget(rawValue: u8(at)) != nil, let kind = ConditionKind(rawValue: u8(at + 1)),
                  ref(at + 4), ref(at + 12) else {
                throw .badRecord(.conditions, index: Int(c))
            }
            let rx = i32(at + 20)
            guard kind == .regex ? index(rx, regexCount, allowMissing: false) : rx == -1 else {
                throw .badRecord(.conditions, index: Int(c))
            }
        }
        for w in 0..<weightedCount where !index(i32(weightedOff(w)), clusterCount, allowMissing: true)
            || !opsWithin(weightedOff(w) + 8) {
            throw .badRecord(.weighted, index: Int(w))
        }
        for c in 0..<clusterCount {
            let at = clusterOff(c)
            let tls = i32(at + 72)
            guard ref(at), within(rng(at + 12), endpointCount), validateTrafficPolicy(at),
                  index(tls, clusterTLSCount, allowMissing: true),
                  (u32(at + 80) == 0) == (u32(at + 84) == 0) else {   // HTTP/2 keepalive: both or neither
                throw .badRecord(.clusters, index: Int(c))
            }
        }
        try validateActionRecords()
        try validateTLSRecords()
        try validateClusterTLSRecords()
        for e in 0..<endpointCount {
            let family = u8(endpointOff(e))
            guard family == 4 || family == 6 else { throw .badRecord(.endpoints, index: Int(e)) }
        }
        for x in 0..<regexCount where !ref(regexesAt + Int(x) * Layout.strRefBytes) {
            throw .badRecord(.regexes, index: Int(x))
        }
    }
}

// Route actions, their records, and cluster traffic policies (TableLayout.swift).
extension TableReader {
    func strRefValid(_ at: Int, optional: Bool = false) -> Bool {
        let off = u32(at), len = Int64(u32(at + 4))
        if off == Layout.absent { return optional }
        return Int64(off) + len <= Int64(stringBytes)
    }

    /// `first, count` at `at` lies inside a section of `count` records.
    func rangeValid(_ at: Int, _ count: Int32) -> Bool {
        Int64(u32(at)) + Int64(u32(at + 4)) <= Int64(count)
    }

    /// `first, requestCount, responseCount` at `at` lies inside the headerOps section.
    func opsWithin(_ at: Int) -> Bool {
        Int64(u32(at)) + Int64(u32(at + 4)) + Int64(u32(at + 8)) <= Int64(headerOpCount)
    }

    /// Bytes 72–167 of the Route record at `at`.
    func validateRouteActions(_ at: Int) -> Bool {
        let ppmMax: UInt32 = 1_000_000
        for f in [72, 80, 88, 96] where !strRefValid(at + f, optional: true) { return false }
        let hasPattern = u32(at + 88) != Layout.absent, hasSubst = u32(at + 96) != Layout.absent
        let cors = i32(at + 164)
        return hasPattern == hasSubst
            && opsWithin(at + 104)
            && u32(at + 124) & ~RetryOn.all.rawValue == 0
            && rangeValid(at + 128, retryStatusCount)
            && u32(at + 144) <= ppmMax && u32(at + 148) <= ppmMax
            && u16(at + 154) & ~0x1F1F == 0
            && (u16(at + 154) & 0x10 == 0 || u16(at + 154) >> 8 & 0x1F <= 16)
            && rangeValid(at + 156, mirrorCount)
            && (cors == -1 || (cors >= 0 && cors < corsCount))
    }

    /// Bytes 20–71 of the Cluster record at `at`.
    func validateTrafficPolicy(_ at: Int) -> Bool {
        guard let lb = LoadBalancerKind(rawValue: u8(at + 20)), let key = HashKeyKind(rawValue: u8(at + 21)) else {
            return false
        }
        let hashed = lb == .ringHash || lb == .maglev
        let named = key == .header || key == .cookie || key == .queryParameter
        return hashed == (key != .none)
            && u8(at + 22) & ~7 == 0
            && (named ? strRefValid(at + 24) : u32(at + 24) == Layout.absent)
            && strRefValid(at + 32, optional: true)
    }

    func validateActionRecords() throws(TableReadError) {
        for h in 0..<headerOpCount {
            let at = headerOpOff(h)
            guard HeaderOpKind(rawValue: u8(at)) != nil, strRefValid(at + 4), strRefValid(at + 12) else {
                throw .badRecord(.headerOps, index: Int(h))
            }
        }
        for i in 0..<retryStatusCount {
            let code = u16(retryStatusesAt + Int(i) * Layout.retryStatusBytes)
            guard code >= 100 && code <= 599 else { throw .badRecord(.retryStatuses, index: Int(i)) }
        }
        for m in 0..<mirrorCount {
            let at = mirrorOff(m)
            let c = i32(at)
            guard c >= -1 && c < clusterCount, u32(at + 4) <= 1_000_000 else { throw .badRecord(.mirrors, index: Int(m)) }
        }
        for c in 0..<corsCount {
            let at = corsOff(c)
            guard rangeValid(at, originCount), strRefValid(at + 8), strRefValid(at + 16), strRefValid(at + 24),
                  u8(at + 36) & ~3 == 0, UnmatchedPreflights(rawValue: u8(at + 37)) != nil else {
                throw .badRecord(.cors, index: Int(c))
            }
        }
        for o in 0..<originCount {
            let at = originOff(o)
            let rx = i32(at + 12)
            guard let kind = ConditionKind(rawValue: u8(at)), kind != .present, strRefValid(at + 4),
                  kind == .regex ? (rx >= 0 && rx < regexCount) : rx == -1 else {
                throw .badRecord(.origins, index: Int(o))
            }
        }
    }
}

// TLS servers, TLS routes and their names (TableLayout.swift, listener bytes 48–103).
extension TableReader {
    /// The SNI fields of a listener at `at` (anyI32, exact table, suffix table) name only
    /// records in `owned`, and the tables are power-of-two ranges of valid HostSlots.
    func sniTablesValid(_ at: Int, owned: Range<Int64>) -> Bool {
        let any = i32(at)
        guard any == -1 || owned.contains(Int64(any)) else { return false }
        for table in [at + 4, at + 12] {
            let first = Int64(u32(table)), n = Int64(u32(table + 4))
            guard first + n <= Int64(slotCount), n == 0 || n & (n - 1) == 0 else { return false }
            for s in first..<(first + n) {
                let sAt = slotOff(Int32(s))
                let v = i32(sAt + 12)
                guard strRefValid(sAt + 4), v == -1 || owned.contains(Int64(v)) else { return false }
            }
        }
        return true
    }

    func validateTLSRecords() throws(TableReadError) {
        func owned(_ at: Int) -> Range<Int64> {
            let first = Int64(u32(at))
            return first..<(first + Int64(u32(at + 4)))
        }
        for l in 0..<listenerCount {
            let at = listenerOff(l)
            guard rangeValid(at + 48, tlsServerCount), sniTablesValid(at + 56, owned: owned(at + 48)),
                  rangeValid(at + 76, tlsRouteCount), sniTablesValid(at + 84, owned: owned(at + 76)) else {
                throw .badRecord(.listeners, index: Int(l))
            }
        }
        for s in 0..<tlsServerCount {
            let at = tlsServerOff(s)
            guard strRefValid(at), let mode = TLSServerMode(rawValue: u8(at + 8)),
                  let lo = TLSVersionSpec(rawValue: u8(at + 9)), let hi = TLSVersionSpec(rawValue: u8(at + 10)),
                  lo == .auto || hi == .auto || lo.rawValue <= hi.rawValue,
                  rangeValid(at + 12, tlsNameCount), rangeValid(at + 52, tlsNameCount),
                  rangeValid(at + 60, tlsNameCount), rangeValid(at + 68, tlsNameCount),
                  strRefValid(at + 20), strRefValid(at + 28), strRefValid(at + 36), strRefValid(at + 44),
                  strRefValid(at + 76), strRefValid(at + 84), strRefValid(at + 92) else {
                throw .badRecord(.tlsServers, index: Int(s))
            }
            let chain = u32(at + 24), key = u32(at + 32), ca = u32(at + 40)
            let chain2 = u32(at + 80), key2 = u32(at + 88), crl = u32(at + 96)
            let fits = mode == .passthrough ? chain == 0 && key == 0 && ca == 0 && chain2 == 0 && key2 == 0 && crl == 0
                                            : chain > 0 && key > 0 && (chain2 == 0) == (key2 == 0)
            guard fits else { throw .badRecord(.tlsServers, index: Int(s)) }
        }
        for r in 0..<tlsRouteCount {
            let at = tlsRouteOff(r)
            guard strRefValid(at), rangeValid(at + 8, tlsNameCount), rangeValid(at + 16, weightedCount) else {
                throw .badRecord(.tlsRoutes, index: Int(r))
            }
            var sum: Int64 = 0
            let first = Int64(u32(at + 16))
            for w in first..<(first + Int64(u32(at + 20))) { sum += Int64(u32(weightedOff(Int32(w)) + 4)) }
            guard sum == Int64(u32(at + 24)) else { throw .badRecord(.tlsRoutes, index: Int(r)) }
        }
        for n in 0..<tlsNameCount where !strRefValid(tlsNameOff(n)) {
            throw .badRecord(.tlsNames, index: Int(n))
        }
    }
}
