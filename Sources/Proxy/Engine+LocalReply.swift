import HTTP1
import RouteTable
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// Replies the proxy writes itself (DESIGN.md §8): 404, 503, redirects, direct responses,
// and the codec's 4xx.

extension ProxyEngine {
    /// Sends a local reply on downstream `i`. `close`: end the connection afterwards (also
    /// forced when a request body was not read, as it would otherwise be taken for a request).
    /// A gRPC request gets it as a gRPC status: `grpcStatus` when ≥ 0, else mapped from `status`.
    mutating func sendLocalReply(_ i: Int32, status: UInt16, body: UnsafeRawBufferPointer?, close: Bool,
                                 fields: UnsafeBufferPointer<HeaderEdit> = UnsafeBufferPointer(start: nil, count: 0),
                                 grpcStatus explicitGRPC: Int = -1) {
        let c = conns + Int(i)
        if close || !c.pointee.requestDone || draining { c.pointee.keepAlive = false }
        if c.pointee.rx == .head { c.pointee.keepAlive = false }   // a parse error: the stream is lost
        c.pointee.rx = .none
        let x = exchangeOf(downstream: i)
        assert(exchanges.slots[Int(x)].up < 0, "callers close the upstream before replying locally")
        countResponse(status)
        let bodyCount = body?.count ?? 0
        let needLarge = bodyCount + 256 > small.size
        var out: UnsafeMutableRawPointer
        var cap: Int
        if bodyCount + 256 > large.size {
            // A direct response larger than a pooled buffer (up to 1 MB by validation):
            // rare, so a one-off allocation released after the send.
            cap = bodyCount + 256
            out = .allocate(byteCount: cap, alignment: 16)
            c.pointee.outLarge = true
        } else {
            out = needLarge ? large.get() : small.get()
            cap = needLarge ? large.size : small.size
            c.pointee.outLarge = needLarge
        }
        c.pointee.out = out
        let omit = exchanges.slots[Int(x)].method == .head
        let grpc = exchanges.slots[Int(x)].grpc
        let code = explicitGRPC >= 0 ? explicitGRPC : grpcStatus(forHTTP: status)
        var n = withUnsafeBytes(of: &date.bytes) { d in
            grpc
                ? serializeGRPCLocalResponse(grpcStatus: code, message: body ?? UnsafeRawBufferPointer(start: nil, count: 0),
                                             date: UnsafeRawBufferPointer(rebasing: d[0..<DateCache.count]),
                                             closeConnection: !c.pointee.keepAlive,
                                             into: UnsafeMutableRawBufferPointer(start: out, count: cap)) ?? 0
                : serializeLocalResponse(status: status, body: body ?? UnsafeRawBufferPointer(start: nil, count: 0),
                                         date: UnsafeRawBufferPointer(rebasing: d[0..<DateCache.count]),
                                         closeConnection: !c.pointee.keepAlive, omitBody: omit, fields: fields,
                                         into: UnsafeMutableRawBufferPointer(start: out, count: cap)) ?? 0
        }
        n = insertOverloadedHeader(x, out, n, cap)   // x-envoy-overloaded (CircuitBreakers.swift)
        if grpc {
            // Counted and logged as what the client got, as Envoy does: 200 with a grpc-status.
            exchanges.slots[Int(x)].stats.grpcStatus = UInt8(code)
        }
        statFinish(x, status: grpc ? 200 : status, responseBytes: n)
        send(i, UnsafeRawPointer(out), Int32(n), release: .out)
    }

    mutating func sendLocalReply(_ i: Int32, status: UInt16, body: StaticString, close: Bool, grpcStatus: Int = -1) {
        sendLocalReply(i, status: status, body: UnsafeRawBufferPointer(start: body.utf8Start, count: body.utf8CodeUnitCount),
                       close: close, grpcStatus: grpcStatus)
    }

    /// `tls.httpsRedirect`: 301 to https:// with the same host (port dropped) and path.
    mutating func sendHTTPSRedirect(_ i: Int32, source: UnsafeRawBufferPointer, head: RequestHead) {
        var w = LocationWriter()
        w.append("https://")
        w.append(hostWithoutPort(source, head.host))
        w.append(slice(source, head.target.count > 0 && source[Int(head.target.start)] == UInt8(ascii: "/") ? head.target : joinPathQuery(head)))
        sendRedirect(i, status: 301, location: &w)
    }

    /// A VirtualService `redirect`: scheme, authority, port, uri or prefixRewrite replace the
    /// request's parts (istio-semantics.md §1.4).
    mutating func sendRouteRedirect(_ i: Int32, reader: TableReader, route: Int32, source: UnsafeRawBufferPointer, head: RequestHead) {
        var w = LocationWriter()
        if let s = reader.redirectScheme(route: route) { w.append(s) } else { w.append("http") }
        w.append("://")
        let host = reader.redirectAuthority(route: route) ?? hostWithoutPort(source, head.host)
        w.append(host)
        if let port = reader.redirectPort(route: route) {
            let scheme = reader.redirectScheme(route: route)
            let isHTTPS = scheme.map { $0.count == 5 } ?? false
            if !((port == 80 && !isHTTPS) || (port == 443 && isHTTPS)) {
                w.append(":")
                w.appendDecimal(Int(port))
            }
        }
        let path = slice(source, head.path)
        if let uri = reader.redirectURI(route: route) {
            w.append(uri)
        } else if let rewrite = reader.redirectPrefixRewrite(route: route) {
            let matched = matchedPrefixLength(reader, route: route, path: path)
            w.append(rewrite)
            w.append(UnsafeRawBufferPointer(rebasing: path[matched...]))
        } else {
            w.append(path)
        }
        if head.query.count > 0 {
            w.append("?")
            w.append(slice(source, head.query))
        }
        sendRedirect(i, status: reader.redirectStatus(route: route), location: &w)
    }

    mutating func sendRedirect(_ i: Int32, status: UInt16, location w: inout LocationWriter) {
        let c = conns + Int(i)
        if !c.pointee.requestDone || draining { c.pointee.keepAlive = false }
        c.pointee.rx = .none
        let x = exchangeOf(downstream: i)
        countResponse(status)
        let out = large.get()
        c.pointee.out = out
        c.pointee.outLarge = true
        let n = w.withBytes { loc in
            withUnsafeBytes(of: &date.bytes) { d in
                serializeRedirect(status: status, location: loc,
                                  date: UnsafeRawBufferPointer(rebasing: d[0..<DateCache.count]),
                                  closeConnection: !c.pointee.keepAlive,
                                  into: UnsafeMutableRawBufferPointer(start: out, count: large.size)) ?? 0
            }
        }
        statFinish(x, status: status, responseBytes: n)
        send(i, UnsafeRawPointer(out), Int32(n), release: .out)
    }

    /// Length of the first URI prefix condition of `route` that `path` starts with.
    func matchedPrefixLength(_ reader: TableReader, route: Int32, path: UnsafeRawBufferPointer) -> Int {
        for m in reader.routeMatches(route) {
            for cond in reader.matchConditions(m) {
                let v = reader.condition(cond)
                if v.target == .uri && v.kind == .prefix && v.value.count <= path.count
                    && (v.value.count == 0 || memcmp(v.value.baseAddress!, path.baseAddress!, v.value.count) == 0) {
                    return v.value.count
                }
            }
        }
        return 0
    }
}

@inline(__always)
func slice(_ source: UnsafeRawBufferPointer, _ r: ByteRange) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: source[Int(r.start)..<Int(r.end)])
}

/// Host without a trailing `:port` (IPv6 literals keep their brackets).
func hostWithoutPort(_ source: UnsafeRawBufferPointer, _ host: ByteRange) -> UnsafeRawBufferPointer {
    let h = slice(source, host)
    var end = h.count
    var k = h.count - 1
    while k >= 0 {
        let b = h[k]
        if b == UInt8(ascii: ":") { end = k; break }
        if b == UInt8(ascii: "]") || !(b >= 0x30 && b <= 0x39) { break }
        k -= 1
    }
    return UnsafeRawBufferPointer(rebasing: h[0..<end])
}

func joinPathQuery(_ head: RequestHead) -> ByteRange {
    // path and query are contiguous in the target ("/p?q"); join them.
    if head.query.count == 0 { return head.path }
    return ByteRange(start: head.path.start, count: head.query.end - head.path.start)
}

/// A bounded buffer for Location values (redirects are not on the fast path).
struct LocationWriter {
    var storage = [UInt8]()
    mutating func append(_ s: StaticString) {
        storage.append(contentsOf: UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
    mutating func append(_ b: UnsafeRawBufferPointer) { storage.append(contentsOf: b) }
    mutating func appendDecimal(_ v: Int) { storage.append(contentsOf: Array(String(v).utf8)) }
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { storage.withUnsafeBytes(body) }
}
