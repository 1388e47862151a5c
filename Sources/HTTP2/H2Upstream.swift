import CNGHTTP2
import HTTP1
import HTTPCore
#if canImport(Glibc)
import Glibc
#endif

// The client side, towards an upstream that speaks HTTP/2 (a GRPC/HTTP2 port, or
// `h2UpgradePolicy: UPGRADE`). The engine's session writes the forwarded request as HTTP/1.1
// (one codec builds and checks every head); `submitRequest` turns it into HEADERS (+ DATA
// pulled from an `H2Source`, as for responses downstream), and the response's blocks come back
// rendered as HTTP/1.1 for the upstream session to parse: the head with its framing (chunked
// unless the upstream gave a length and no trailers can follow), then the trailer section.

extension H2Connection {
    /// Submits the HTTP/1.1 request head at `source` on a new stream: `:method`, `:scheme`,
    /// `:authority` from Host, `:path` from the target; the fields lowercased without Host and
    /// the connection-specific ones; `te: trailers` when the request is gRPC (gRPC requires it;
    /// the HTTP/1.1 form had dropped it). `body` nil: the HEADERS frame ends the stream.
    /// Returns the stream id, or a negative nghttp2 error.
    public func submitRequest(source: UnsafeRawBufferPointer, head: RequestHead, headers: UnsafeBufferPointer<HeaderField>,
                              https: Bool, slot: Int32, body: UnsafeMutablePointer<H2Source>?) -> Int32 {
        let user = UnsafeMutableRawPointer(bitPattern: Int(slot) + 1)   // as `setSlot`
        let nv = inbox.pointee.nv
        let names = inbox.pointee.names
        let base = source.baseAddress!
        let flags = UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
        var n = 0
        var w = 0
        @inline(__always)
        func constant(_ s: StaticString) -> UnsafeMutablePointer<UInt8> { UnsafeMutablePointer(mutating: s.utf8Start) }
        @inline(__always)
        func at(_ r: ByteRange) -> UnsafeMutablePointer<UInt8> {
            UnsafeMutablePointer(mutating: (base + Int(r.start)).assumingMemoryBound(to: UInt8.self))
        }
        nv[0] = nghttp2_nv(name: constant(":method"), value: at(head.methodRange), namelen: 7, valuelen: Int(head.methodRange.count), flags: flags)
        let scheme: StaticString = https ? "https" : "http"
        nv[1] = nghttp2_nv(name: constant(":scheme"), value: constant(scheme), namelen: 7, valuelen: scheme.utf8CodeUnitCount, flags: flags)
        nv[2] = nghttp2_nv(name: constant(":authority"), value: at(head.host), namelen: 10, valuelen: Int(head.host.count), flags: flags)
        nv[3] = nghttp2_nv(name: constant(":path"), value: at(head.target), namelen: 5, valuelen: Int(head.target.count), flags: flags)
        n = 4
        var grpc = false
        for h in headers {
            let nameLen = Int(h.name.count)
            let p = base + Int(h.name.start)
            guard nameLen > 0, n < H2Inbox.nvCapacity - 1, w + nameLen <= H2Inbox.namesCapacity,
                  !isConnectionSpecific(p, nameLen), !equalsLower(p, nameLen, "host"), !equalsLower(p, nameLen, "te") else { continue }
            for k in 0..<nameLen {
                var b = p.load(fromByteOffset: k, as: UInt8.self)
                if b >= 0x41 && b <= 0x5A { b |= 0x20 }
                names.storeBytes(of: b, toByteOffset: w + k, as: UInt8.self)
            }
            if equalsLower(p, nameLen, "content-type") && h.value.count >= 16
                && equalsLower(base + Int(h.value.start), 16, "application/grpc") {
                grpc = true
            }
            nv[n] = nghttp2_nv(name: (names + w).assumingMemoryBound(to: UInt8.self), value: at(h.value),
                               namelen: nameLen, valuelen: Int(h.value.count), flags: flags)
            n += 1
            w += nameLen
        }
        if grpc {
            nv[n] = nghttp2_nv(name: constant("te"), value: constant("trailers"), namelen: 2, valuelen: 8, flags: flags)
            n += 1
        }
        if let body {
            var prd = nghttp2_data_provider(source: nghttp2_data_source(ptr: UnsafeMutableRawPointer(body)), read_callback: readBody)
            return nghttp2_submit_request(session, nil, nv, n, &prd, user)
        }
        return nghttp2_submit_request(session, nil, nv, n, nil, user)
    }
}

/// How an upstream's response was written as HTTP/1.1.
public struct RenderedResponse: Sendable {
    public var length: Int
    public var status: UInt16
    /// The body follows chunked (the upstream gave no content-length, or trailers may follow).
    public var chunked: Bool
}

/// Writes a `.response` block as an HTTP/1.1 response head into `out`: the status line, the
/// fields, and the framing (`content-length: 0` for a final response that ended with its
/// headers; chunked when a body follows without a length). A body with a length is chunked too
/// (its content-length dropped) when trailers may follow it: the response announces them
/// (a `trailer` field) or `trailers` says so (a gRPC call: grpc-status comes as a trailer, and a
/// server may send content-length too, as nghttpd does); only a chunked body carries trailers
/// through the session. nil when it does not fit or the block has no valid :status.
public func renderResponseHead(_ inbox: UnsafePointer<H2Inbox>, _ e: H2Event, into out: UnsafeMutableRawPointer,
                               capacity: Int, trailers: Bool = false) -> RenderedResponse? {
    var status: UInt16 = 0
    var hasLength = false
    var announced = false
    let records = HeaderRecords(inbox, e.block)
    for (name, value) in records {
        if bytesEqual(name, ":status") {
            guard value.count == 3 else { return nil }
            for b in value {
                guard b >= 0x30 && b <= 0x39 else { return nil }
                status = status * 10 + UInt16(b - 0x30)
            }
        } else if bytesEqual(name, "content-length") {
            hasLength = true
        } else if bytesEqual(name, "trailer") {
            announced = true
        }
    }
    guard status >= 100 else { return nil }
    let interim = status < 200
    let noBody = interim || status == 204 || status == 304
    // Chunked: a body follows with no length, or one that trailers may follow.
    let chunked = !noBody && !e.endStream && (!hasLength || trailers || announced)
    var w = HeadWriter(out: out, capacity: capacity)
    w.append("HTTP/1.1 ")
    var digits = (UInt8(0x30 + status / 100), UInt8(0x30 + status / 10 % 10), UInt8(0x30 + status % 10))
    withUnsafeBytes(of: &digits) { w.append($0) }
    w.append(" ")
    w.append(reasonPhrase(status))
    w.append("\r\n")
    for (name, value) in records where name.count > 0 && name[0] != UInt8(ascii: ":") {
        if chunked && bytesEqual(name, "content-length") { continue }
        w.append(name)
        w.append(": ")
        w.append(value)
        w.append("\r\n")
    }
    if chunked {
        w.append("transfer-encoding: chunked\r\n")
    } else if !noBody && e.endStream && !hasLength {
        w.append("content-length: 0\r\n")
    }
    w.append("\r\n")
    guard !w.overflow else { return nil }
    return RenderedResponse(length: w.count, status: status, chunked: chunked)
}

/// The `grpc-status` of a header block (trailers), or -1 when it has none or it is not a
/// number below 255 (field names arrive lowercase over HTTP/2).
public func grpcStatusRecord(_ inbox: UnsafePointer<H2Inbox>, _ e: H2Event) -> Int {
    let want: StaticString = "grpc-status"
    for (name, value) in HeaderRecords(inbox, e.block)
    where name.count == want.utf8CodeUnitCount && memcmp(name.baseAddress!, want.utf8Start, name.count) == 0 {
        var v = 0
        guard value.count > 0 && value.count <= 3 else { return -1 }
        for b in value {
            guard b >= 0x30 && b <= 0x39 else { return -1 }
            v = v * 10 + Int(b - 0x30)
        }
        return v < 255 ? v : -1
    }
    return -1
}

/// Writes a `.trailers` block (an upstream's response trailers, a client's request trailers) as
/// the end of a chunked body: the last chunk, the fields but those a trailer may not carry
/// (`isForbiddenTrailer`), the empty line. nil when it does not fit.
public func renderTrailerSection(_ inbox: UnsafePointer<H2Inbox>, _ e: H2Event, into out: UnsafeMutableRawPointer,
                                 capacity: Int) -> Int? {
    var w = HeadWriter(out: out, capacity: capacity)
    w.append("0\r\n")
    for (name, value) in HeaderRecords(inbox, e.block) where !isForbiddenTrailer(name.baseAddress!, name.count) {
        w.append(name)
        w.append(": ")
        w.append(value)
        w.append("\r\n")
    }
    w.append("\r\n")
    return w.overflow ? nil : w.count
}
