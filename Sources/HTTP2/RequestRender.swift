// An HTTP/2 request's header block written as the HTTP/1.1 head the engine's session parses
// (RFC 9113 §8.3.1 → RFC 9112 §3): the request line from :method and :path (:authority for
// CONNECT), `host` from :authority (it wins over a `host` field, as in Envoy), the fields in
// order, `cookie` crumbs joined with "; " into one field (RFC 9113 §8.2.3), `te` dropped (its
// only allowed value, "trailers", means nothing to an HTTP/1.1 upstream), and the body's
// framing: none when END_STREAM came with the headers, the client's content-length, else
// chunked. nghttp2 has already refused what RFC 9113 §8.2 forbids (uppercase names,
// connection-specific fields, a `te` other than "trailers", missing pseudo-fields).

public struct RenderedHead: Sendable {
    public var length: Int
    /// The body is sent chunked (the client gave no content-length).
    public var chunked: Bool
    /// The request has a body (END_STREAM did not come with the headers).
    public var hasBody: Bool
}

/// Writes the head into `out`; nil when it does not fit `capacity`.
public func renderRequestHead(_ inbox: UnsafePointer<H2Inbox>, _ e: H2Event, into out: UnsafeMutableRawPointer,
                              capacity: Int) -> RenderedHead? {
    var method = UnsafeRawBufferPointer(start: nil, count: 0)
    var path = UnsafeRawBufferPointer(start: nil, count: 0)
    var authority = UnsafeRawBufferPointer(start: nil, count: 0)
    var hasContentLength = false
    var cookies = 0
    let records = HeaderRecords(inbox, e.block)
    for (name, value) in records {
        if name.count > 0 && name[0] == UInt8(ascii: ":") {
            if bytesEqual(name, ":method") { method = value }
            else if bytesEqual(name, ":path") { path = value }
            else if bytesEqual(name, ":authority") { authority = value }
        } else if bytesEqual(name, "content-length") {
            hasContentLength = true
        } else if bytesEqual(name, "cookie") {
            cookies += 1
        }
    }
    var w = HeadWriter(out: out, capacity: capacity)
    w.append(method)
    w.append(" ")
    w.append(path.count > 0 ? path : authority)
    w.append(" HTTP/1.1\r\n")
    if authority.count > 0 {
        w.append("host: ")
        w.append(authority)
        w.append("\r\n")
    }
    for (name, value) in records {
        if name.count == 0 || name[0] == UInt8(ascii: ":") { continue }
        if (authority.count > 0 && bytesEqual(name, "host")) || bytesEqual(name, "te") || bytesEqual(name, "cookie") { continue }
        w.append(name)
        w.append(": ")
        w.append(value)
        w.append("\r\n")
    }
    if cookies > 0 {
        w.append("cookie: ")
        var first = true
        for (name, value) in records where bytesEqual(name, "cookie") {
            if !first { w.append("; ") }
            w.append(value)
            first = false
        }
        w.append("\r\n")
    }
    let chunked = !e.endStream && !hasContentLength
    if chunked { w.append("transfer-encoding: chunked\r\n") }
    w.append("\r\n")
    guard !w.overflow else { return nil }
    return RenderedHead(length: w.count, chunked: chunked, hasBody: !e.endStream)
}

@inline(__always)
func bytesEqual(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
    guard b.count == s.utf8CodeUnitCount else { return false }
    let q = s.utf8Start
    for k in 0..<b.count where b[k] != q[k] { return false }
    return true
}

struct HeadWriter {
    let out: UnsafeMutableRawPointer
    let capacity: Int
    var count = 0
    var overflow = false

    init(out: UnsafeMutableRawPointer, capacity: Int) {
        self.out = out
        self.capacity = capacity
    }

    @inline(__always)
    mutating func append(_ b: UnsafeRawBufferPointer) {
        guard b.count > 0 else { return }
        guard count + b.count <= capacity else { overflow = true; return }
        (out + count).copyMemory(from: b.baseAddress!, byteCount: b.count)
        count += b.count
    }

    @inline(__always)
    mutating func append(_ s: StaticString) {
        append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
}
