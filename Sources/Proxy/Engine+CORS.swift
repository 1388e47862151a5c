import HTTP1
import RouteTable
#if canImport(Glibc)
import Glibc
#endif

// VirtualService `corsPolicy` as Envoy's CORS filter applies it (it runs before the fault
// filter and the router):
//
//   no Origin header ─────────────────────────────────────► nothing (not a CORS request)
//   preflight (OPTIONS + Origin + Access-Control-Request-Method)
//     origin allowed ─► 200 from the gateway: access-control-allow-origin (the Origin),
//                       -allow-methods, -allow-headers, -max-age, -allow-credentials
//     not allowed   ─► unmatchedPreflights FORWARD (default): forwarded as any request;
//                      IGNORE: 200 from the gateway without CORS headers
//   other requests with an allowed Origin ─► forwarded; the response gets
//                       access-control-allow-origin (the Origin), -allow-credentials,
//                       -expose-headers
//
// An origin is allowed when one of `allowOrigins` matches it (exact, prefix, or an RE2 full
// match) or a matcher is the literal "*".

extension ProxyEngine {
    /// Applies route `route`'s CORS policy to exchange `x`. True when the gateway answered the
    /// request itself (a preflight).
    mutating func applyCors(_ i: Int32, _ x: Int32, reader: TableReader, route: Int32,
                            source: UnsafeRawBufferPointer, head: RequestHead) -> Bool {
        let c = reader.routeCors(route: route)
        guard c >= 0, let originRange = findHeader(source, head, "origin") else { return false }
        let policy = reader.cors(c)
        let origin = slice(source, originRange)
        let allowed = corsAllows(reader, policy, origin)
        let preflight = head.method == .options && findHeader(source, head, "access-control-request-method") != nil
        if preflight {
            if allowed {
                var n = 0
                let originValue = keepCorsOrigin(x, origin)
                n = corsField(n, "access-control-allow-origin", originValue)
                if policy.allowMethods.count > 0 { n = corsField(n, "access-control-allow-methods", policy.allowMethods) }
                if policy.allowHeaders.count > 0 { n = corsField(n, "access-control-allow-headers", policy.allowHeaders) }
                if let age = policy.maxAgeSeconds { n = corsField(n, "access-control-max-age", decimal(UInt64(age))) }
                if policy.allowCredentials { n = corsField(n, "access-control-allow-credentials", staticBytes("true")) }
                sendLocalReply(i, status: 200, body: nil, close: false, fields: UnsafeBufferPointer(start: edits, count: n))
                return true
            }
            if policy.unmatchedPreflights == .ignore {
                sendLocalReply(i, status: 200, body: nil, close: false)
                return true
            }
            return false
        }
        if allowed { _ = keepCorsOrigin(x, origin) }
        return false
    }

    /// The access-control-* fields for the response of exchange `x`, written into the edit
    /// scratch from index `n`; returns the new count.
    mutating func corsResponseEdits(_ x: Int32, reader: TableReader, at n: Int) -> Int {
        let e = exchanges.slots + Int(x)
        guard let o = e.pointee.corsOrigin else { return n }
        let c = reader.routeCors(route: e.pointee.route)
        guard c >= 0 else { return n }
        let policy = reader.cors(c)
        var k = corsField(n, "access-control-allow-origin", UnsafeRawBufferPointer(start: o, count: Int(e.pointee.corsOriginLen)))
        if policy.allowCredentials { k = corsField(k, "access-control-allow-credentials", staticBytes("true")) }
        if policy.exposeHeaders.count > 0 { k = corsField(k, "access-control-expose-headers", policy.exposeHeaders) }
        return k
    }

    func corsAllows(_ reader: TableReader, _ policy: CorsView, _ origin: UnsafeRawBufferPointer) -> Bool {
        for k in policy.origins {
            let m = reader.corsOrigin(k)
            switch m.kind {
            case .exact:
                if m.value.count == 1 && m.value[0] == UInt8(ascii: "*") { return true }
                if m.value.count == origin.count && (origin.count == 0 || memcmp(m.value.baseAddress!, origin.baseAddress!, origin.count) == 0) { return true }
            case .prefix:
                if m.value.count <= origin.count && (m.value.count == 0 || memcmp(m.value.baseAddress!, origin.baseAddress!, m.value.count) == 0) { return true }
            case .regex:
                if m.regex >= 0 && table.matcher?.regexMatches(m.regex, origin) == true { return true }
            case .present:
                return true
            }
        }
        return false
    }

    /// Copies the Origin into a pooled buffer the exchange keeps (the head's bytes are gone by
    /// the time the response comes); returns a view of the copy.
    mutating func keepCorsOrigin(_ x: Int32, _ origin: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let e = exchanges.slots + Int(x)
        let n = min(origin.count, small.size)
        let buf = e.pointee.corsOrigin ?? small.get()
        if n > 0 { buf.copyMemory(from: origin.baseAddress!, byteCount: n) }
        e.pointee.corsOrigin = buf
        e.pointee.corsOriginLen = Int32(n)
        return UnsafeRawBufferPointer(start: buf, count: n)
    }

    @inline(__always)
    func corsField(_ n: Int, _ name: StaticString, _ value: UnsafeRawBufferPointer) -> Int {
        guard n < editCapacity else { return n }
        edits[n] = HeaderEdit(kind: .set, name: staticBytes(name), value: value)
        return n + 1
    }

    @inline(__always)
    func staticBytes(_ s: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
    }

    /// `v` in decimal, in the rewrite scratch (valid until the next head is written).
    func decimal(_ v: UInt64) -> UnsafeRawBufferPointer {
        var digits = 0
        var t = v
        repeat { digits += 1; t /= 10 } while t > 0
        let base = targetScratch + targetScratchBytes - 24
        t = v
        for k in stride(from: digits - 1, through: 0, by: -1) {
            (base + k).storeBytes(of: UInt8(48 + t % 10), as: UInt8.self)
            t /= 10
        }
        return UnsafeRawBufferPointer(start: base, count: digits)
    }
}
