import CRE2

// Builder side of route actions and cluster traffic policies (layout: TableLayout.swift,
// Route bytes 72–167, HeaderOp, RetryStatus, Mirror, Cors, Origin, Cluster bytes 20–71).

extension ImageBuilder {
    static let ppmMax: UInt32 = 1_000_000

    /// Writes the HeaderOp records of one operation list pair, request ops first.
    mutating func headerOps(_ ops: HeaderOpsSpec, route: String) throws(TableBuildError) -> (first: UInt32, request: UInt32, response: UInt32) {
        let first = count(.headerOps)
        for op in ops.request + ops.response {
            guard Self.isHeaderName(op.name) else { throw .invalidHeaderName(route: route, name: op.name) }
            guard Self.isFieldValue(op.value) else { throw .invalidValue(owner: "route \(route)", value: op.value) }
            let name = string(op.name)
            let value = string(op.kind == .remove ? "" : op.value)
            record(.headerOps) { w in
                w.u8(op.kind.rawValue); w.u8(0); w.u16(0)
                w.ref(name); w.ref(value)
            }
        }
        return (first, UInt32(ops.request.count), UInt32(ops.response.count))
    }

    /// Non-empty, no upper-case ASCII, no byte a header name cannot hold (controls, space, ":"
    /// except as the first byte, ",").
    static func isHeaderName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty else { return false }
        for (i, b) in bytes.enumerated() {
            if b <= 0x20 || b >= 0x7F || b == UInt8(ascii: ",") || (b >= 65 && b <= 90) { return false }
            if b == UInt8(ascii: ":") && i != 0 { return false }
        }
        return true
    }

    /// No CR, LF or NUL: a value the engine copies into a request or response head must not be
    /// able to end a header line (request smuggling, response splitting).
    static func isFieldValue(_ s: String) -> Bool { !s.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0 } }

    /// The 96 bytes of a Route record from offset 72, writing the records they refer to.
    mutating func actions(_ a: RouteActionsSpec, route: String, clusterCount: Int) throws(TableBuildError) -> [UInt8] {
        var rewriteURI = Self.absentRef, rewriteAuthority = Self.absentRef
        var regexPattern = Self.absentRef, regexSubst = Self.absentRef
        if let rw = a.rewrite {
            for v in [rw.uri, rw.authority, rw.uriRegex?.substitution].compactMap({ $0 }) where !Self.isFieldValue(v) {
                throw .invalidValue(owner: "route \(route)", value: v)
            }
            // The rewritten path goes into the request line: no space or control byte.
            if let u = rw.uri, u.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
                throw .invalidValue(owner: "route \(route)", value: u)
            }
            rewriteURI = optionalString(rw.uri)
            rewriteAuthority = optionalString(rw.authority)
            if let rx = rw.uriRegex {
                // Compiled here only to reject a bad pattern; the engine compiles it for searching.
                switch regexCompile(rx.pattern) {
                case .success(let code): ingressd_re2_free(code)
                case .failure(let f):
                    throw .regexDoesNotCompile(pattern: rx.pattern, route: route, offset: f.offset, message: f.message)
                }
                regexPattern = string(rx.pattern)
                regexSubst = string(rx.substitution)
            }
        }
        let ops = try headerOps(a.headers, route: route)

        let retry = a.retry
        let firstStatus = count(.retryStatuses)
        for code in retry.retriableStatusCodes {
            guard code >= 100 && code <= 599 else { throw .invalidStatusCode(route: route, code: code) }
            record(.retryStatuses) { $0.u16(code) }
        }
        var flags: UInt16 = 0
        var delayMs: UInt32 = 0, delayPpm: UInt32 = 0, abortPpm: UInt32 = 0, abortStatus: UInt16 = 0
        if let d = a.fault?.delay {
            guard d.ppm <= Self.ppmMax else { throw .ppmOutOfRange(route: route, field: "fault delay", ppm: d.ppm) }
            flags |= 1
            delayMs = d.fixedDelayMs
            delayPpm = d.ppm
        }
        if let ab = a.fault?.abort {
            guard ab.ppm <= Self.ppmMax else { throw .ppmOutOfRange(route: route, field: "fault abort", ppm: ab.ppm) }
            flags |= 2
            abortPpm = ab.ppm
            abortStatus = ab.httpStatus
            if let g = ab.grpcStatus {
                guard g <= 16 else { throw .invalidStatusCode(route: route, code: UInt16(g)) }
                flags |= 0x10 | UInt16(g) << 8
            }
        }
        if retry.retryRemoteLocalities { flags |= 4 }
        if retry.ignorePreviousHosts { flags |= 8 }

        let firstMirror = count(.mirrors)
        for m in a.mirrors {
            guard m.cluster >= -1, Int(m.cluster) < clusterCount else {
                throw .mirrorClusterOutOfRange(route: route, index: m.cluster)
            }
            guard m.ppm <= Self.ppmMax else { throw .ppmOutOfRange(route: route, field: "mirror", ppm: m.ppm) }
            record(.mirrors) { w in w.i32(m.cluster); w.u32(m.ppm) }
        }
        var cors: Int32 = -1
        if let c = a.cors { cors = try self.cors(c, route: route) }

        var w = ByteWriter()
        w.ref(rewriteURI); w.ref(rewriteAuthority); w.ref(regexPattern); w.ref(regexSubst)
        w.u32(ops.first); w.u32(ops.request); w.u32(ops.response)
        w.u32(retry.attempts); w.u32(retry.perTryTimeoutMs); w.u32(retry.retryOn.rawValue)
        w.u32(firstStatus); w.u32(UInt32(retry.retriableStatusCodes.count)); w.u32(retry.backoffBaseMs)
        w.u32(delayMs); w.u32(delayPpm); w.u32(abortPpm); w.u16(abortStatus); w.u16(flags)
        w.u32(firstMirror); w.u32(UInt32(a.mirrors.count))
        w.i32(cors)
        assert(w.bytes.count == Layout.routeBytes - 72)
        return w.bytes
    }

    /// Writes one Cors record and its Origin records; returns the Cors index.
    mutating func cors(_ c: CorsSpec, route: String) throws(TableBuildError) -> Int32 {
        let firstOrigin = count(.origins)
        for o in c.allowOrigins {
            var regex: Int32 = -1
            let kind: ConditionKind, value: (UInt32, UInt32)
            switch o {
            case .exact(let v): kind = .exact; value = string(v)
            case .prefix(let v): kind = .prefix; value = string(v)
            case .regex(let v): kind = .regex; value = string(v); regex = try self.regex(v, route: route)
            case .present: throw .invalidPolicy(owner: "route \(route)", what: "a CORS origin must be exact, prefix or regex")
            }
            record(.origins) { w in w.u8(kind.rawValue); w.u8(0); w.u16(0); w.ref(value); w.i32(regex) }
        }
        for list in [c.allowMethods, c.allowHeaders, c.exposeHeaders] {
            for item in list where !Self.isFieldValue(item) { throw .invalidValue(owner: "route \(route)", value: item) }
        }
        let methods = string(c.allowMethods.joined(separator: ","))
        let headers = string(c.allowHeaders.joined(separator: ","))
        let expose = string(c.exposeHeaders.joined(separator: ","))
        let originCount = count(.origins) - firstOrigin
        let index = Int32(count(.cors))
        var flags: UInt8 = c.allowCredentials ? 1 : 0
        if c.maxAgeSeconds != nil { flags |= 2 }
        record(.cors) { w in
            w.u32(firstOrigin); w.u32(originCount)
            w.ref(methods); w.ref(headers); w.ref(expose)
            w.u32(c.maxAgeSeconds ?? 0)
            w.u8(flags); w.u8(c.unmatchedPreflights.rawValue); w.u16(0)
        }
        return index
    }

    /// The 52 bytes of a Cluster record from offset 20.
    mutating func trafficPolicy(_ c: ClusterSpec) throws(TableBuildError) -> [UInt8] {
        let lb = c.loadBalancer
        let hashed = lb.kind == .ringHash || lb.kind == .maglev
        guard hashed == (lb.hashKey != nil) else {
            throw .invalidPolicy(owner: "cluster \(c.name)", what: "a hash key goes with ringHash or maglev load balancing, and only with them")
        }
        var key = HashKeyKind.none
        var name = Self.absentRef, path = Self.absentRef
        var flags: UInt8 = 0, ttl: UInt32 = 0
        switch lb.hashKey {
        case nil: break
        case .header(let h)?:
            guard Self.isHeaderName(h) else { throw .invalidPolicy(owner: "cluster \(c.name)", what: "hash header \"\(h)\" is not a lower-case header name") }
            key = .header; name = string(h)
        case let .cookie(n, p, t)?:
            for v in [n, p ?? ""] where !Self.isFieldValue(v) { throw .invalidValue(owner: "cluster \(c.name)", value: v) }
            key = .cookie; name = string(n); path = optionalString(p)
            if let t { flags |= 1; ttl = t }
        case .sourceIP?: key = .sourceIP
        case .queryParameter(let q)?: key = .queryParameter; name = string(q)
        }
        if c.http2 { flags |= 2 }
        if c.useClientProtocol { flags |= 4 }
        let pool = c.connectionPool
        var w = ByteWriter()
        w.u8(lb.kind.rawValue); w.u8(key.rawValue); w.u8(flags); w.u8(0)
        w.ref(name); w.ref(path); w.u32(ttl); w.u32(hashed ? lb.tableSize : 0)
        w.u32(pool.maxConnections); w.u32(pool.maxPendingRequests); w.u32(pool.maxRequests)
        w.u32(pool.maxRequestsPerConnection); w.u32(pool.maxRetries); w.u32(pool.idleTimeoutMs)
        assert(w.bytes.count == 52)  // bytes 20–71 of the Cluster record
        return w.bytes
    }
}
