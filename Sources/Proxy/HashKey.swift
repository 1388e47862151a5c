import HTTP1
import RouteTable
import SharedMemory

// Consistent-hash keys (DestinationRule loadBalancer.consistentHash): what a request is hashed
// on (a header, a cookie — generated when absent —, the source IP or a query parameter), the
// hash itself, and the Set-Cookie a generated cookie puts on the response. The balancers that
// use the key: LoadBalancer.swift.

// MARK: hashing

/// 64-bit FNV-1a of `bytes` followed by a finalizer (FNV's high bits mix poorly).
@inline(__always)
func hashBytes(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    return mix(h)
}

/// splitmix64's finalizer.
@inline(__always)
func mix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

// MARK: hash keys (routing time)

extension ProxyEngine {
    /// Routing: the consistent-hash key of exchange `x` for `cluster` (`Exchange.lbHash`), from
    /// the request head on downstream `i`. A cookie policy with a TTL and no cookie in the
    /// request generates one (Envoy: the hex of a hash of the client address): the request is
    /// hashed on it and the response sets it (`appendHashCookie`).
    mutating func computeHashKey(_ i: Int32, _ x: Int32, reader: TableReader, cluster: Int32,
                                 source: UnsafeRawBufferPointer, head: RequestHead) {
        let e = exchanges.slots + Int(x)
        e.pointee.lbHasHash = false
        e.pointee.lbSetCookie = false
        guard cluster >= 0, Int(cluster) < table.balancers.clusterCount else { return }
        let kind = table.balancers.kinds[Int(cluster)]
        guard kind == .ringHash || kind == .maglev else { return }
        let lb = reader.clusterLoadBalancer(cluster)
        switch lb.hashKey {
        case .none:
            return
        case .header:
            for k in 0..<Int(head.headerCount) where nameEquals(source, headers[k].name, lb.hashName) {
                e.pointee.lbHash = hashBytes(slice(source, headers[k].value))
                e.pointee.lbHasHash = true
                return
            }
        case .sourceIP:
            let c = conns + Int(i)
            e.pointee.lbHash = withUnsafeBytes(of: &c.pointee.peerText) {
                hashBytes(UnsafeRawBufferPointer(rebasing: $0[0..<Int(c.pointee.peerTextLen)]))
            }
            e.pointee.lbHasHash = true
        case .queryParameter:
            if let v = queryValue(slice(source, head.query), lb.hashName) {
                e.pointee.lbHash = hashBytes(v)
                e.pointee.lbHasHash = true
            }
        case .cookie:
            for k in 0..<Int(head.headerCount) where nameEquals(source, headers[k].name, UnsafeRawBufferPointer(start: cookieHeader.utf8Start, count: 6)) {
                if let v = cookieValue(slice(source, headers[k].value), lb.hashName) {
                    e.pointee.lbHash = hashBytes(v)
                    e.pointee.lbHasHash = true
                    return
                }
            }
            guard lb.cookieTtlSeconds != nil else { return }
            // Generated: 16 hex digits of a hash of the client address and connection.
            let c = conns + Int(i)
            var seed = withUnsafeBytes(of: &c.pointee.peerText) {
                hashBytes(UnsafeRawBufferPointer(rebasing: $0[0..<Int(c.pointee.peerTextLen)]))
            }
            seed = mix(seed ^ (UInt64(UInt32(bitPattern: i)) << 32 | UInt64(c.pointee.generation)))
            e.pointee.lbCookie = seed
            e.pointee.lbSetCookie = true
            var text: (UInt64, UInt64) = (0, 0)
            e.pointee.lbHash = withUnsafeMutableBytes(of: &text) { t in
                writeHex(seed, into: t.baseAddress!)
                return hashBytes(UnsafeRawBufferPointer(t))
            }
            e.pointee.lbHasHash = true
        }
    }

    /// responseEdits: for a generated hash cookie, `Set-Cookie: NAME="HEX"; Max-Age=TTL;
    /// Path=PATH; HttpOnly` (Envoy's makeSetCookieValue) as edit `n`; returns the edit count.
    mutating func appendHashCookie(_ x: Int32, _ n: Int) -> Int {
        let e = exchanges.slots + Int(x)
        guard e.pointee.lbSetCookie, n < editCapacity, e.pointee.cluster >= 0,
              e.pointee.tableGeneration == table.generation, let reader = table.reader else { return n }
        let lb = reader.clusterLoadBalancer(e.pointee.cluster)
        guard lb.hashKey == .cookie, let ttl = lb.cookieTtlSeconds else { return n }
        var w = CookieWriter(base: table.breakers.cookieScratch, cap: 512)
        w.append(lb.hashName)
        w.append(byte: UInt8(ascii: "="))
        w.append(byte: UInt8(ascii: "\""))
        if w.len + 16 <= w.cap {
            writeHex(e.pointee.lbCookie, into: w.base + w.len)
            w.len += 16
        }
        w.append(byte: UInt8(ascii: "\""))
        if ttl > 0 {
            w.append(staticString: "; Max-Age=")
            w.appendDecimal(UInt64(ttl))
        }
        if let path = lb.cookiePath, path.count > 0 {
            w.append(staticString: "; Path=")
            w.append(path)
        }
        w.append(staticString: "; HttpOnly")
        edits[n] = HeaderEdit(kind: .add, name: UnsafeRawBufferPointer(start: setCookieName.utf8Start, count: setCookieName.utf8CodeUnitCount),
                              value: UnsafeRawBufferPointer(start: w.base, count: w.len))
        return n + 1
    }
}

private let setCookieName: StaticString = "set-cookie"
private let cookieHeader: StaticString = "cookie"

/// A bounded writer into the cookie scratch buffer (drops what does not fit).
struct CookieWriter {
    let base: UnsafeMutableRawPointer
    let cap: Int
    var len = 0
    mutating func append(byte: UInt8) {
        guard len < cap else { return }
        base.storeBytes(of: byte, toByteOffset: len, as: UInt8.self)
        len += 1
    }
    mutating func append(_ b: UnsafeRawBufferPointer) { for x in b { append(byte: x) } }
    mutating func append(staticString s: StaticString) {
        append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
    mutating func appendDecimal(_ v: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            var k = 0
            var x = v
            repeat { d[k] = UInt8(ascii: "0") + UInt8(x % 10); x /= 10; k += 1 } while x > 0
            while k > 0 { k -= 1; append(byte: d[k]) }
        }
    }
}

/// 16 lower-case hex digits of `v` at `p`.
@inline(__always)
func writeHex(_ v: UInt64, into p: UnsafeMutableRawPointer) {
    for k in 0..<16 {
        let nib = UInt8((v >> UInt64(60 - 4 * k)) & 0xF)
        p.storeBytes(of: nib < 10 ? UInt8(ascii: "0") + nib : UInt8(ascii: "a") + nib - 10, toByteOffset: k, as: UInt8.self)
    }
}

/// Whether header name `r` of `source` equals `lower` (lower-case) ignoring ASCII case.
@inline(__always)
func nameEquals(_ source: UnsafeRawBufferPointer, _ r: ByteRange, _ lower: UnsafeRawBufferPointer) -> Bool {
    guard Int(r.end - r.start) == lower.count else { return false }
    var k = 0
    for j in Int(r.start)..<Int(r.end) {
        var b = source[j]
        if b >= 65 && b <= 90 { b |= 0x20 }
        if b != lower[k] { return false }
        k += 1
    }
    return true
}

/// The value of query parameter `name` (first occurrence, as written, not decoded).
func queryValue(_ query: UnsafeRawBufferPointer, _ name: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
    var start = 0
    while start <= query.count {
        var end = start
        while end < query.count && query[end] != UInt8(ascii: "&") { end += 1 }
        var eq = start
        while eq < end && query[eq] != UInt8(ascii: "=") { eq += 1 }
        if eq - start == name.count && (0..<name.count).allSatisfy({ query[start + $0] == name[$0] }) {
            return UnsafeRawBufferPointer(rebasing: query[min(eq + 1, end)..<end])
        }
        start = end + 1
    }
    return nil
}

/// The value of cookie `name` in a Cookie header value (`a=1; b="2"`), quotes removed.
func cookieValue(_ header: UnsafeRawBufferPointer, _ name: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
    var start = 0
    while start < header.count {
        while start < header.count && (header[start] == UInt8(ascii: " ") || header[start] == UInt8(ascii: "\t")) { start += 1 }
        var end = start
        while end < header.count && header[end] != UInt8(ascii: ";") { end += 1 }
        var eq = start
        while eq < end && header[eq] != UInt8(ascii: "=") { eq += 1 }
        if eq < end && eq - start == name.count && (0..<name.count).allSatisfy({ header[start + $0] == name[$0] }) {
            var vs = eq + 1
            var ve = end
            while ve > vs && (header[ve - 1] == UInt8(ascii: " ") || header[ve - 1] == UInt8(ascii: "\t")) { ve -= 1 }
            if ve - vs >= 2 && header[vs] == UInt8(ascii: "\"") && header[ve - 1] == UInt8(ascii: "\"") { vs += 1; ve -= 1 }
            return UnsafeRawBufferPointer(rebasing: header[vs..<ve])
        }
        start = end + 1
    }
    return nil
}
