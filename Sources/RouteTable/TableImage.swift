import CRE2

// Builder side of the route-table image (layout: TableLayout.swift). Control plane only: it
// allocates freely and runs in the supervisor (and in `ingressd check`/`routes`).

/// Why a `TableSpec` could not become an image. Messages name the offending value so that the
/// supervisor can report a reload error a person can act on.
public enum TableBuildError: Error, Equatable, CustomStringConvertible {
    /// RE2 rejected a regex; `offset` is the byte offset in the pattern of the fragment it
    /// names (-1 when it names none).
    case regexDoesNotCompile(pattern: String, route: String, offset: Int, message: String)
    /// The image would not fit the slot the caller has.
    case imageTooLarge(bytes: Int, limit: Int)
    /// A domain the host index cannot serve (empty, or a partial or inner wildcard).
    case invalidDomain(domain: String, virtualHost: String)
    /// The same domain twice on one listener (Envoy rejects this too).
    case duplicateDomain(domain: String, port: UInt16)
    /// Two listeners on one port.
    case duplicatePort(UInt16)
    /// An endpoint address that is neither 4 nor 16 bytes.
    case invalidAddress(cluster: String, byteCount: Int)
    /// A weighted destination that names no cluster of the table (and is not -1).
    case clusterIndexOutOfRange(route: String, index: Int32)
    /// The weights of one route do not fit in 32 bits.
    case totalWeightOverflow(route: String)
    /// A mirror that names no cluster of the table (and is not -1).
    case mirrorClusterOutOfRange(route: String, index: Int32)
    /// A percentage above 1 000 000 parts per million.
    case ppmOutOfRange(route: String, field: String, ppm: UInt32)
    /// A header name that is empty, not lower-case or not a token.
    case invalidHeaderName(route: String, name: String)
    /// A header value, rewrite or cookie attribute holding CR, LF or NUL (or a rewritten path
    /// holding a space or control byte).
    case invalidValue(owner: String, value: String)
    /// A retriable status code outside 100–599.
    case invalidStatusCode(route: String, code: UInt16)
    /// A CORS origin match that is `.present`, or a load balancer whose hash key does not fit it.
    case invalidPolicy(owner: String, what: String)
    /// The same SNI name on two TLS servers of one listener (Envoy rejects overlapping filter
    /// chain matches; the compiler skips such servers first).
    case duplicateServerName(name: String, port: UInt16)
    /// A TLS server whose certificate material does not fit its mode (a terminating server
    /// without a certificate chain or key, a passthrough server with one), or whose minimum
    /// version is above its maximum.
    case invalidTLSServer(server: String, what: String)
    /// A cluster's TLS settings that do not fit their mode (MUTUAL without a client certificate
    /// or key, SIMPLE with one), or insecureSkipVerify together with a CA or SANs.
    case invalidClusterTLS(cluster: String, what: String)

    public var description: String {
        switch self {
        case let .regexDoesNotCompile(pattern, route, offset, message):
            return "route \(route): regex \"\(pattern)\" does not compile"
                + (offset >= 0 ? " at offset \(offset)" : "") + ": \(message)"
        case let .imageTooLarge(bytes, limit):
            return "route table needs \(bytes) bytes, more than the \(limit)-byte table slot; raise the slot size"
        case let .invalidDomain(domain, vhost):
            return "virtual host \(vhost): domain \"\(domain)\" is not an exact name, \"*.suffix\", \"prefix.*\" or \"*\""
        case let .duplicateDomain(domain, port):
            return "listener \(port): domain \"\(domain)\" appears in more than one virtual host"
        case let .duplicatePort(port):
            return "listener \(port) appears twice"
        case let .invalidAddress(cluster, count):
            return "cluster \(cluster): endpoint address has \(count) bytes, expected 4 (IPv4) or 16 (IPv6)"
        case let .clusterIndexOutOfRange(route, index):
            return "route \(route): destination cluster index \(index) does not exist"
        case let .totalWeightOverflow(route):
            return "route \(route): sum of destination weights exceeds \(UInt32.max)"
        case let .mirrorClusterOutOfRange(route, index):
            return "route \(route): mirror cluster index \(index) does not exist"
        case let .ppmOutOfRange(route, field, ppm):
            return "route \(route): \(field) is \(ppm) parts per million, more than 1000000 (100%)"
        case let .invalidHeaderName(route, name):
            return "route \(route): header name \"\(name)\" is empty, not lower-case or not a token"
        case let .invalidValue(owner, value):
            return "\(owner): \(value.debugDescription) holds CR, LF, NUL or, in a path, a space"
        case let .invalidStatusCode(route, code):
            return "route \(route): retriable status code \(code) is not in 100..599"
        case let .invalidPolicy(owner, what):
            return "\(owner): \(what)"
        case let .duplicateServerName(name, port):
            return "listener \(port): SNI name \"\(name)\" appears in more than one TLS server"
        case let .invalidTLSServer(server, what):
            return "TLS server \(server): \(what)"
        case let .invalidClusterTLS(cluster, what):
            return "cluster \(cluster): tls: \(what)"
        }
    }
}

public enum TableImage {
    /// Serializes `spec` into a position-independent image (TableLayout.swift).
    /// Accepts any spec whose domains, regexes, addresses and cluster indices are valid; rejects
    /// the first problem found with a `TableBuildError`, and an image larger than `sizeLimit`
    /// bytes (the shared-memory slot) with `.imageTooLarge` — never a truncated image.
    public static func build(_ spec: TableSpec, sizeLimit: Int = Int(UInt32.max)) throws(TableBuildError) -> [UInt8] {
        var b = ImageBuilder()
        try b.add(spec)
        return try b.finish(sizeLimit: sizeLimit)
    }
}

/// Little-endian record writer.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8)) }
    mutating func u64(_ v: UInt64) { u32(UInt32(truncatingIfNeeded: v)); u32(UInt32(truncatingIfNeeded: v >> 32)) }
    mutating func u32(_ v: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8((v >> UInt32(shift)) & 0xFF)) }
    }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func ref(_ r: (UInt32, UInt32)) { u32(r.0); u32(r.1) }
    mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }

    mutating func set32(_ v: UInt32, at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8((v >> UInt32(8 * i)) & 0xFF) }
    }
}

struct ImageBuilder {
    var sections = [ByteWriter](repeating: ByteWriter(), count: Section.allCases.count)
    var counts = [Int](repeating: 0, count: Section.allCases.count)
    var stringIndex: [[UInt8]: UInt32] = [:]
    var regexIndex: [String: Int32] = [:]
    var vhostTotal = 0
    /// ClusterTLS records written so far, so that equal settings share one.
    var clusterTLSIndex: [ClusterTLSSpec: Int32] = [:]

    static let absentRef: (UInt32, UInt32) = (Layout.absent, 0)

    mutating func record(_ s: Section, _ body: (inout ByteWriter) -> Void) {
        let before = sections[Int(s.rawValue)].bytes.count
        body(&sections[Int(s.rawValue)])
        assert(sections[Int(s.rawValue)].bytes.count - before == s.recordBytes, "record size of \(s)")
        counts[Int(s.rawValue)] += 1
    }

    func count(_ s: Section) -> UInt32 { UInt32(truncatingIfNeeded: counts[Int(s.rawValue)]) }

    mutating func string(_ bytes: [UInt8]) -> (UInt32, UInt32) {
        if let off = stringIndex[bytes] { return (off, UInt32(bytes.count)) }
        let off = UInt32(truncatingIfNeeded: sections[Int(Section.strings.rawValue)].bytes.count)
        sections[Int(Section.strings.rawValue)].bytes.append(contentsOf: bytes)
        counts[Int(Section.strings.rawValue)] += bytes.count
        stringIndex[bytes] = off
        return (off, UInt32(bytes.count))
    }

    mutating func string(_ s: String) -> (UInt32, UInt32) { string(Array(s.utf8)) }

    mutating func optionalString(_ s: String?) -> (UInt32, UInt32) {
        guard let s else { return Self.absentRef }
        return string(s)
    }

    mutating func regex(_ pattern: String, route: String) throws(TableBuildError) -> Int32 {
        if let i = regexIndex[pattern] { return i }
        switch regexCompile(pattern) {
        case .success(let code): ingressd_re2_free(code)
        case .failure(let f):
            throw .regexDoesNotCompile(pattern: pattern, route: route, offset: f.offset, message: f.message)
        }
        let i = Int32(count(.regexes))
        let r = string(pattern)
        record(.regexes) { $0.ref(r) }
        regexIndex[pattern] = i
        return i
    }

    mutating func add(_ spec: TableSpec) throws(TableBuildError) {
        var ports = Set<UInt16>()
        for l in spec.listeners {
            guard ports.insert(l.port).inserted else { throw .duplicatePort(l.port) }
        }
        for l in spec.listeners { try add(l, clusterCount: spec.clusters.count) }
        for c in spec.clusters { try add(c) }
    }

    mutating func add(_ l: ListenerSpec, clusterCount: Int) throws(TableBuildError) {
        let firstVHost = vhostTotal
        var exact: [([UInt8], Int32)] = [], suffix: [([UInt8], Int32)] = [], prefix: [([UInt8], Int32)] = []
        var seen = Set<[UInt8]>()
        var catchAll: Int32 = -1
        for v in l.virtualHosts {
            let vIndex = Int32(vhostTotal)
            vhostTotal += 1
            let firstDomain = count(.domains)
            for d in v.domains {
                let lowered = d.utf8.map(HostHash.lower)
                guard let kind = DomainKind(lowered) else { throw .invalidDomain(domain: d, virtualHost: v.name) }
                guard seen.insert(lowered).inserted else { throw .duplicateDomain(domain: d, port: l.port) }
                switch kind {
                case .exact(let k): exact.append((k, vIndex))
                case .suffix(let k): suffix.append((k, vIndex))
                case .prefix(let k): prefix.append((k, vIndex))
                case .any: catchAll = vIndex
                }
                let r = string(lowered)
                record(.domains) { $0.ref(r) }
            }
            let firstRoute = count(.routes)
            for r in v.routes { try add(r, clusterCount: clusterCount) }
            let name = string(v.name)
            let domainCount = count(.domains) - firstDomain
            let routeCount = count(.routes) - firstRoute
            record(.virtualHosts) { w in
                w.ref(name)
                w.u32(firstDomain); w.u32(domainCount)
                w.u32(firstRoute); w.u32(routeCount)
                w.u32(v.httpsRedirect ? 1 : 0)
            }
        }
        let firstTCPRoute = count(.tcpRoutes)
        for r in l.tcpRoutes {
            let w = try weighted(r.destinations, route: r.name, clusterCount: clusterCount)
            let name = string(r.name)
            record(.tcpRoutes) { rec in
                rec.ref(name)
                rec.u32(w.first); rec.u32(w.count); rec.u32(w.total)
                rec.u32(0)
            }
        }
        let tcpRouteCount = count(.tcpRoutes) - firstTCPRoute
        let tls = try addTLS(l, clusterCount: clusterCount)
        let exactTable = hostTable(exact, hash: HostHash.forward)
        let suffixTable = hostTable(suffix, hash: HostHash.backward)
        let prefixTable = hostTable(prefix, hash: HostHash.forward)
        let vhostCount = UInt32(vhostTotal - firstVHost)
        record(.listeners) { w in
            w.u16(l.port); w.u8(l.proto.rawValue); w.u8(0)
            w.u32(UInt32(firstVHost)); w.u32(vhostCount)
            w.i32(catchAll)
            w.u32(exactTable.first); w.u32(exactTable.count)
            w.u32(suffixTable.first); w.u32(suffixTable.count)
            w.u32(prefixTable.first); w.u32(prefixTable.count)
            w.u32(firstTCPRoute); w.u32(tcpRouteCount)
            w.bytes.append(contentsOf: tls)
        }
    }

    /// Writes an open-addressing table with a load factor of at most 1/2, so that an absent key
    /// ends its probe after about two slots.
    mutating func hostTable(_ entries: [([UInt8], Int32)], hash: ([UInt8]) -> UInt32) -> (first: UInt32, count: UInt32) {
        let first = count(.hostSlots)
        guard !entries.isEmpty else { return (first, 0) }
        var slotCount = 2
        while slotCount < entries.count * 2 { slotCount <<= 1 }
        var slots = [(hash: UInt32, key: (UInt32, UInt32), vhost: Int32)](repeating: (0, (0, 0), -1), count: slotCount)
        for (key, vhost) in entries {
            let h = hash(key)
            var i = Int(h) & (slotCount - 1)
            while slots[i].vhost >= 0 { i = (i + 1) & (slotCount - 1) }
            slots[i] = (h, string(key), vhost)
        }
        for s in slots {
            record(.hostSlots) { w in w.u32(s.hash); w.ref(s.key); w.i32(s.vhost) }
        }
        return (first, UInt32(slotCount))
    }

    mutating func add(_ r: RouteSpec, clusterCount: Int) throws(TableBuildError) {
        let firstMatch = count(.matches)
        for m in r.matches { try add(m, route: r.name) }
        let matchCount = count(.matches) - firstMatch
        let name = string(r.name)
        var kind = RouteActionKind.forward
        var status: UInt16 = 0, flags: UInt8 = 0, port: UInt16 = 0
        var firstWeighted: UInt32 = 0, weightedCount: UInt32 = 0, total: UInt32 = 0
        var a = Self.absentRef, b = Self.absentRef, c = Self.absentRef, d = Self.absentRef
        switch r.action {
        case .forward(let dests):
            (firstWeighted, weightedCount, total) = try weighted(dests, route: r.name, clusterCount: clusterCount)
        case let .directResponse(s, body):
            kind = .directResponse
            status = s
            a = string(body)
        case .redirect(let red):
            kind = .redirect
            status = red.status
            a = optionalString(red.scheme)
            b = optionalString(red.authority)
            c = optionalString(red.uri)
            d = optionalString(red.prefixRewrite)
            if let p = red.port { flags |= 1; port = p }
        }
        let actions = try self.actions(r.actions, route: r.name, clusterCount: clusterCount)
        record(.routes) { w in
            w.ref(name)
            w.u32(firstMatch); w.u32(matchCount)
            w.u32(r.timeoutMs)
            w.u8(kind.rawValue); w.u8(flags); w.u16(status)
            w.u32(firstWeighted); w.u32(weightedCount); w.u32(total)
            w.u16(port); w.u16(0)
            w.ref(a); w.ref(b); w.ref(c); w.ref(d)
            w.bytes.append(contentsOf: actions)
        }
    }

    /// Writes the WeightedCluster records of one route (HTTP or TCP).
    mutating func weighted(_ dests: [WeightedClusterSpec], route: String,
                           clusterCount: Int) throws(TableBuildError) -> (first: UInt32, count: UInt32, total: UInt32) {
        let first = count(.weighted)
        var sum: UInt64 = 0
        for dst in dests {
            guard dst.cluster >= -1, Int(dst.cluster) < clusterCount else {
                throw .clusterIndexOutOfRange(route: route, index: dst.cluster)
            }
            sum += UInt64(dst.weight)
            let ops = try headerOps(dst.headers, route: route)
            record(.weighted) { w in
                w.i32(dst.cluster); w.u32(dst.weight)
                w.u32(ops.first); w.u32(ops.request); w.u32(ops.response)
            }
        }
        guard sum <= UInt64(UInt32.max) else { throw .totalWeightOverflow(route: route) }
        return (first, UInt32(dests.count), UInt32(sum))
    }

    mutating func add(_ m: MatchSpec, route: String) throws(TableBuildError) {
        let first = count(.conditions)
        if let u = m.uri { try condition(.uri, name: "", u, route: route) }
        if let s = m.scheme { try condition(.scheme, name: "", s, route: route) }
        if let s = m.method { try condition(.method, name: "", s, route: route) }
        if let s = m.authority { try condition(.authority, name: "", s, route: route) }
        for h in m.headers { try condition(.header, name: h.name.lowercased(), h.match, route: route) }
        for h in m.withoutHeaders { try condition(.withoutHeader, name: h.name.lowercased(), h.match, route: route) }
        for q in m.queryParams { try condition(.queryParam, name: q.name, q.match, route: route) }
        let n = count(.conditions) - first
        var flags: UInt8 = m.ignoreUriCase ? 1 : 0
        if m.port != nil { flags |= 2 }
        record(.matches) { w in
            w.u32(first); w.u32(n)
            w.u16(m.port ?? 0); w.u8(flags); w.u8(0); w.u32(0)
        }
    }

    mutating func condition(_ target: ConditionTarget, name: String, _ match: StringMatchSpec,
                            route: String) throws(TableBuildError) {
        let kind: ConditionKind, value: (UInt32, UInt32)
        var regex: Int32 = -1
        switch match {
        case .exact(let v): kind = .exact; value = string(v)
        case .prefix(let v): kind = .prefix; value = string(v)
        case .regex(let v): kind = .regex; value = string(v); regex = try self.regex(v, route: route)
        case .present: kind = .present; value = string([])
        }
        let nameRef = string(name)
        record(.conditions) { w in
            w.u8(target.rawValue); w.u8(kind.rawValue); w.u16(0)
            w.ref(nameRef); w.ref(value); w.i32(regex)
        }
    }

    mutating func add(_ c: ClusterSpec) throws(TableBuildError) {
        let first = count(.endpoints)
        for e in c.endpoints {
            guard e.address.count == 4 || e.address.count == 16 else {
                throw .invalidAddress(cluster: c.name, byteCount: e.address.count)
            }
            record(.endpoints) { w in
                w.u8(e.address.count == 4 ? 4 : 6); w.u8(0); w.u16(e.port)
                w.u32(e.weight); w.u32(e.id)
                w.bytes.append(contentsOf: e.address)
                w.zeros(16 - e.address.count)
                w.u32(0)
            }
        }
        let name = string(c.name)
        let n = count(.endpoints) - first
        let policy = try trafficPolicy(c)
        let tls = try clusterTLS(c)
        record(.clusters) { w in
            w.ref(name); w.u32(c.connectTimeoutMs); w.u32(first); w.u32(n)
            w.bytes.append(contentsOf: policy)
            w.i32(tls)
            w.u32(c.connectionPool.maxConcurrentStreams)
            w.u32(c.connectionPool.http2KeepaliveIntervalMs)
            w.u32(c.connectionPool.http2KeepaliveTimeoutMs)
        }
    }

    func finish(sizeLimit: Int) throws(TableBuildError) -> [UInt8] {
        var total = Layout.headerBytes
        for s in sections { total += s.bytes.count }
        guard total <= sizeLimit, total <= Int(UInt32.max) else {
            throw .imageTooLarge(bytes: total, limit: min(sizeLimit, Int(UInt32.max)))
        }
        var out = ByteWriter()
        out.bytes.reserveCapacity(total)
        out.u32(Layout.magic)
        out.u16(Layout.version)
        out.u16(UInt16(Layout.headerBytes))
        out.u32(UInt32(total))
        out.u32(0)
        var offset = Layout.headerBytes
        for s in Section.allCases {
            out.u32(UInt32(offset))
            out.u32(UInt32(counts[Int(s.rawValue)]))
            offset += sections[Int(s.rawValue)].bytes.count
        }
        out.zeros(Layout.headerBytes - out.bytes.count)
        assert(out.bytes.count == Layout.headerBytes)
        for s in sections { out.bytes.append(contentsOf: s.bytes) }
        return out.bytes
    }
}
