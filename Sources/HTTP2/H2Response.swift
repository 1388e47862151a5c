import CNGHTTP2
import HTTP1
import HTTPCore

// A response goes out on a stream as HTTP/1.1 bytes from the engine's session (the HTTP/1
// codec stays the one place heads are built and checked): `submitResponse` turns the head into
// a HEADERS frame, and the body is pulled by nghttp2 from the stream's `H2Source` — the segment
// the engine queued, with its HTTP/1.1 framing taken off — as the stream's and the
// connection's windows allow. A segment taken whole is reported in `H2Connection.completed`:
// only then does the engine release its memory and go on, so a client that does not read
// holds one segment per stream, not the response.

/// How the body of the response on a stream is delimited in the HTTP/1.1 bytes.
public enum H2BodyFraming: UInt8, Sendable {
    case length, chunked, untilEnd
}

/// The body source of one stream, kept in the engine's slot for the stream (stable memory):
/// nghttp2's read callback reaches it through the data provider.
public struct H2Source {
    /// The connection and stream it belongs to; a read for anything else finds the stream's
    /// slot reused after its response completed (the body is over).
    public var owner: UnsafeMutableRawPointer? = nil
    public var stream: Int32 = 0
    /// The engine slot and its generation, reported in `completed`.
    public var slot: Int32 = -1
    public var generation: UInt32 = 0
    /// The segment being read (nil: none queued).
    public var base: UnsafeRawPointer? = nil
    public var count = 0
    public var offset = 0
    public var framing: H2BodyFraming = .untilEnd
    /// `.length`: body bytes still to come.
    public var remaining: Int64 = 0
    public var chunk = ChunkDecoder()
    /// No more body after what is queued (the engine ended the response).
    public var ended = false
    /// END_STREAM was given to nghttp2.
    public var eofSent = false
    /// The read callback deferred: `H2Connection.resume` wakes it.
    public var deferred = false
    public init() {}

    /// A chunked body's trailer section (`chunk.trailerSink`) is kept in a buffer of this size
    /// when the body has one (a gRPC response's grpc-status; a client's request trailers) until
    /// nghttp2 took the fields: the worker's spare (`H2Inbox.takeTrailerSink`), given back then.
    /// The HTTP/1 limit on a trailer section (ChunkedScanner: 60 KiB) fits; fields past it, or
    /// past `H2Inbox.nvCapacity`, are dropped.
    public static let trailerCapacity = 60 * 1024

    /// Frees the trailer buffer, if any (the stream's slot is released with its trailer
    /// section still being read: rare, so it is not kept).
    public mutating func release() {
        if let t = chunk.trailerSink {
            t.deallocate()
            chunk.trailerSink = nil
        }
    }
}

extension H2Connection {
    /// Submits a response head on `stream`: the status and the fields of an HTTP/1.1 head at
    /// `source` (names lowercased; connection-specific fields dropped, RFC 9113 §8.2.2). With
    /// `body` the DATA comes from `body`; without, the HEADERS frame ends the stream. Interim
    /// (1xx) heads pass `final: false`. Returns false when nghttp2 refused (the stream is gone).
    public func submitResponse(stream: Int32, status: UInt16, source: UnsafeRawBufferPointer,
                               headers: UnsafeBufferPointer<HeaderField>, final: Bool,
                               body: UnsafeMutablePointer<H2Source>?) -> Bool {
        let nv = inbox.pointee.nv
        let nvCapacity = H2Inbox.nvCapacity
        var nvCount = 0
        let scratch = inbox.pointee.names
        let scratchCapacity = H2Inbox.namesCapacity
        // ":status" and its three digits live at the start of the scratch buffer.
        let statusName = StaticString(":status")
        var w = 0
        scratch.copyMemory(from: statusName.utf8Start, byteCount: 7)
        scratch.storeBytes(of: UInt8(0x30 + status / 100 % 10), toByteOffset: 7, as: UInt8.self)
        scratch.storeBytes(of: UInt8(0x30 + status / 10 % 10), toByteOffset: 8, as: UInt8.self)
        scratch.storeBytes(of: UInt8(0x30 + status % 10), toByteOffset: 9, as: UInt8.self)
        w = 10
        let flags = UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
        nv[0] = nghttp2_nv(name: scratch.assumingMemoryBound(to: UInt8.self), value: (scratch + 7).assumingMemoryBound(to: UInt8.self),
                           namelen: 7, valuelen: 3, flags: flags)
        nvCount = 1
        let base = source.baseAddress!
        for h in headers {
            let nameLen = Int(h.name.count)
            guard nameLen > 0, !isConnectionSpecific(base + Int(h.name.start), nameLen) else { continue }
            guard w + nameLen <= scratchCapacity, nvCount < nvCapacity else { break }
            let dst = scratch + w
            for k in 0..<nameLen {
                var b = base.load(fromByteOffset: Int(h.name.start) + k, as: UInt8.self)
                if b >= 0x41 && b <= 0x5A { b |= 0x20 }
                dst.storeBytes(of: b, toByteOffset: k, as: UInt8.self)
            }
            w += nameLen
            nv[nvCount] = nghttp2_nv(name: dst.assumingMemoryBound(to: UInt8.self),
                                     value: UnsafeMutablePointer(mutating: (base + Int(h.value.start)).assumingMemoryBound(to: UInt8.self)),
                                     namelen: nameLen, valuelen: Int(h.value.count), flags: flags)
            nvCount += 1
        }
        // nghttp2 copies the fields; the scratch is free again when this returns.
        let rc: Int32
        if !final {
            rc = nghttp2_submit_headers(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, nil, nv, nvCount, nil)
        } else if let body {
            var prd = nghttp2_data_provider(source: nghttp2_data_source(ptr: UnsafeMutableRawPointer(body)), read_callback: readBody)
            rc = nghttp2_submit_response(session, stream, nv, nvCount, &prd)
        } else {
            rc = nghttp2_submit_response(session, stream, nv, nvCount, nil)
        }
        return rc == 0
    }
}

extension H2Connection {
    /// Submits an HTTP/1.1 trailer section (`name: value\r\n` lines) as trailers on `stream`
    /// (names lowercased; the fields a trailer may not carry dropped: `isForbiddenTrailer`; a
    /// line cut short by the sink's capacity, without its LF, dropped whole). Called from the
    /// read callback, which nghttp2 allows for trailers. False when there was nothing to send.
    func submitTrailers(stream: Int32, _ section: UnsafeRawBufferPointer) -> Bool {
        let nv = inbox.pointee.nv
        let names = inbox.pointee.names
        var nvCount = 0
        var w = 0
        var k = 0
        let n = section.count
        while k < n && nvCount < H2Inbox.nvCapacity {
            var end = k
            while end < n && section[end] != 0x0A { end += 1 }
            if end == n { break }   // cut short: not a whole field
            var lineEnd = end
            if lineEnd > k && section[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            var colon = k
            while colon < lineEnd && section[colon] != UInt8(ascii: ":") { colon += 1 }
            let nameLen = colon - k
            if colon < lineEnd && nameLen > 0 && w + nameLen <= H2Inbox.namesCapacity
                && !isForbiddenTrailer(section.baseAddress! + k, nameLen) {
                for j in 0..<nameLen {
                    var b = section[k + j]
                    if b >= 0x41 && b <= 0x5A { b |= 0x20 }
                    names.storeBytes(of: b, toByteOffset: w + j, as: UInt8.self)
                }
                var v = colon + 1
                while v < lineEnd && (section[v] == 0x20 || section[v] == 0x09) { v += 1 }
                var ve = lineEnd
                while ve > v && (section[ve - 1] == 0x20 || section[ve - 1] == 0x09) { ve -= 1 }
                nv[nvCount] = nghttp2_nv(name: (names + w).assumingMemoryBound(to: UInt8.self),
                                         value: UnsafeMutablePointer(mutating: (section.baseAddress! + v).assumingMemoryBound(to: UInt8.self)),
                                         namelen: nameLen, valuelen: ve - v, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                nvCount += 1
                w += nameLen
            }
            k = end + 1
        }
        guard nvCount > 0 else { return false }
        return nghttp2_submit_trailer(session, stream, nv, nvCount) == 0
    }
}

/// Fields that mean something only to one HTTP/1.1 connection and are never sent in HTTP/2.
@inline(__always)
func isConnectionSpecific(_ p: UnsafeRawPointer, _ n: Int) -> Bool {
    switch n {
    case 7: return equalsLower(p, n, "upgrade")
    case 10: return equalsLower(p, n, "connection") || equalsLower(p, n, "keep-alive")
    case 16: return equalsLower(p, n, "proxy-connection")
    case 17: return equalsLower(p, n, "transfer-encoding")
    default: return false
    }
}

/// Fields a trailer section may not carry, dropped wherever trailers change protocol (RFC 9110
/// §6.5.1, RFC 9113 §8.1): pseudo-fields, connection-specific fields (transfer-encoding among
/// them), `te`, and what frames or routes the message (`content-length`, `host`). A received
/// HTTP/2 block was already checked by nghttp2, an HTTP/1.1 section by the ChunkedScanner.
@inline(__always)
public func isForbiddenTrailer(_ p: UnsafeRawPointer, _ n: Int) -> Bool {
    guard n > 0, p.load(as: UInt8.self) != UInt8(ascii: ":") else { return true }
    switch n {
    case 2: return equalsLower(p, n, "te")
    case 4: return equalsLower(p, n, "host")
    case 14: return equalsLower(p, n, "content-length")
    default: return isConnectionSpecific(p, n)
    }
}

@inline(__always)
func equalsLower(_ p: UnsafeRawPointer, _ n: Int, _ s: StaticString) -> Bool {
    guard n == s.utf8CodeUnitCount else { return false }
    let q = s.utf8Start
    for k in 0..<n {
        var b = p.load(fromByteOffset: k, as: UInt8.self)
        if b >= 0x41 && b <= 0x5A { b |= 0x20 }
        if b != q[k] { return false }
    }
    return true
}

/// nghttp2's pull of response body bytes (see `H2Source`).
let readBody: nghttp2_data_source_read_callback = { _, stream, buf, length, flags, source, user in
    let src = source!.pointee.ptr!.assumingMemoryBound(to: H2Source.self)
    guard src.pointee.owner == user, src.pointee.stream == stream else {
        // The slot was released after the response completed: nothing more to send.
        flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
        return 0
    }
    var produced = 0
    if let base = src.pointee.base {
        let input = UnsafeRawBufferPointer(start: base + src.pointee.offset, count: src.pointee.count - src.pointee.offset)
        switch src.pointee.framing {
        case .chunked:
            var (c, p) = src.pointee.chunk.decode(input, into: UnsafeMutableRawBufferPointer(start: buf, count: length))
            if src.pointee.chunk.wantsTrailerSink {
                // Trailers follow the last chunk: room for them, and on.
                let inbox = user!.assumingMemoryBound(to: H2Connection.self).pointee.inbox
                src.pointee.chunk.setTrailerSink(inbox.pointee.takeTrailerSink(), capacity: H2Source.trailerCapacity)
                let rest = UnsafeRawBufferPointer(rebasing: input[c...])
                let (c2, p2) = src.pointee.chunk.decode(rest, into: UnsafeMutableRawBufferPointer(start: buf! + p, count: length - p))
                c += c2
                p += p2
            }
            src.pointee.offset += c
            produced = p
            if src.pointee.chunk.isDone { src.pointee.ended = true }
        case .length:
            let k = Int(min(Int64(min(input.count, length)), src.pointee.remaining))
            if k > 0 { UnsafeMutableRawPointer(buf!).copyMemory(from: input.baseAddress!, byteCount: k) }
            src.pointee.offset += k
            src.pointee.remaining -= Int64(k)
            produced = k
            if src.pointee.remaining == 0 {
                src.pointee.ended = true
                src.pointee.offset = src.pointee.count   // nothing after the body belongs to it
            }
        case .untilEnd:
            let k = min(input.count, length)
            if k > 0 { UnsafeMutableRawPointer(buf!).copyMemory(from: input.baseAddress!, byteCount: k) }
            src.pointee.offset += k
            produced = k
        }
        if src.pointee.offset >= src.pointee.count || src.pointee.ended {
            src.pointee.base = nil
            user!.assumingMemoryBound(to: H2Connection.self).pointee.complete(src.pointee.slot, src.pointee.generation)
        }
    }
    if src.pointee.ended && src.pointee.base == nil {
        src.pointee.eofSent = true
        flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
        if let t = src.pointee.chunk.trailerSink {
            // The trailer section becomes a HEADERS frame that ends the stream (RFC 9113 §8.1),
            // in either role: a response's trailers to a client, a request's to an upstream.
            let h = user!.assumingMemoryBound(to: H2Connection.self)
            if src.pointee.chunk.trailerCount > 0
                && h.pointee.submitTrailers(stream: stream, UnsafeRawBufferPointer(start: t, count: src.pointee.chunk.trailerCount)) {
                flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue)
            }
            h.pointee.inbox.pointee.giveBackTrailerSink(t)   // nghttp2 copied the fields
            src.pointee.chunk.trailerSink = nil
        }
        return produced
    }
    if produced == 0 {
        src.pointee.deferred = true
        return Int(NGHTTP2_ERR_DEFERRED.rawValue)
    }
    return produced
}
