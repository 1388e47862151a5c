import CNGHTTP2
import HTTPCore

// One server-side HTTP/2 connection over nghttp2, sans-I/O: bytes in (`ingest` → events in the
// worker's inbox), bytes out (`fill` → frames copied into the caller's buffer). Responses are
// submitted with `submitResponse`; their bodies are pulled by nghttp2 from each stream's
// `H2Source` as flow control allows, and a source whose segment was taken whole is listed in
// `completed` for the engine to release.
//
// Settings (Envoy's defaults where Istio keeps them): 100 concurrent streams, 64 KiB - 1
// stream windows, a 1 MiB connection window, header lists up to 60 KiB; windows are opened
// only as the engine takes the bytes (no automatic WINDOW_UPDATE), so a stream holds at most
// its window of request body. nghttp2 bounds SETTINGS/PING floods (outbound ack queue),
// rapid resets (CVE-2023-44487: reset rate limit) and CONTINUATION floods (CVE-2024-27316:
// at most 8 CONTINUATION frames).

public struct H2Settings: Sendable {
    public var maxConcurrentStreams: UInt32 = 100
    public var initialWindowSize: UInt32 = 65_535
    public var connectionWindowSize: Int32 = 1 << 20
    public var maxHeaderListSize: UInt32 = 60 * 1024
    public init() {}
}

/// The state of one HTTP/2 connection. Allocated when a connection turns out to speak HTTP/2,
/// freed with it; nghttp2's callbacks reach it through the session's user data.
public struct H2Connection {
    public var session: OpaquePointer? = nil
    public let inbox: UnsafeMutablePointer<H2Inbox>
    /// Slots (index | generation << 32) whose response segment nghttp2 took whole, or that the
    /// engine finished itself (a head with no body): the engine completes their sends.
    public var completed: UnsafeMutablePointer<UInt64>
    public var completedCount = 0
    public let completedCapacity: Int
    /// A frame `fill` could not fit: nghttp2's bytes, valid until its next mem_send.
    var carry: UnsafeRawPointer? = nil
    var carryCount = 0
    /// nghttp2 sent a GOAWAY with an error code of its own accord (a protocol violation, a
    /// flood): the engine counts the connection as a protocol error once and lets it close.
    public var sentErrorGoAway = false
    /// A header block whose bytes had not all arrived when the inbox was reset (H2Inbox.reset):
    /// its records and state, restored at the next `ingest` (a buffer allocated when first
    /// needed, freed with the connection).
    var partial: UnsafeMutableRawPointer? = nil
    var partialCapacity = 0
    var partialLen = 0
    var partialStream: Int32 = 0
    var partialBytes = 0
    var partialFields = 0
    var partialTooLarge = false
    var partialCategory: UInt32 = 0

    mutating func savePartial(_ inbox: H2Inbox) {
        let n = inbox.used - inbox.blockStart
        if n > partialCapacity {
            partial?.deallocate()
            partialCapacity = max(n, 4096)
            partial = .allocate(byteCount: partialCapacity, alignment: 8)
        }
        if n > 0 { partial!.copyMemory(from: inbox.arena + inbox.blockStart, byteCount: n) }
        partialLen = n
        partialStream = inbox.blockStream
        partialBytes = inbox.blockBytes
        partialFields = inbox.blockFields
        partialTooLarge = inbox.blockTooLarge
        partialCategory = inbox.blockCategory
    }

    /// Makes a server session (or, `client: true`, a client session to an upstream) that
    /// reports into `inbox`. nil when nghttp2 cannot allocate.
    public static func make(inbox: UnsafeMutablePointer<H2Inbox>, settings: H2Settings = H2Settings(),
                            client: Bool = false) -> UnsafeMutablePointer<H2Connection>? {
        let h = UnsafeMutablePointer<H2Connection>.allocate(capacity: 1)
        let cap = client ? 1024 + 16 : Int(settings.maxConcurrentStreams) * 2 + 16
        h.initialize(to: H2Connection(inbox: inbox, completed: .allocate(capacity: cap), completedCapacity: cap))
        var session: OpaquePointer? = nil
        let rc = client
            ? nghttp2_session_client_new2(&session, H2Connection.callbacks, h, H2Connection.options)
            : nghttp2_session_server_new2(&session, H2Connection.callbacks, h, H2Connection.options)
        guard rc == 0, let session else {
            h.pointee.completed.deallocate()
            h.deallocate()
            return nil
        }
        h.pointee.session = session
        var iv = client ? [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize),
        ] : [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize),
        ]
        _ = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &iv, iv.count)
        _ = nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, settings.connectionWindowSize)
        return h
    }

    /// Frees the session and the state (the engine closed the connection).
    public static func destroy(_ h: UnsafeMutablePointer<H2Connection>) {
        if let s = h.pointee.session { nghttp2_session_del(s) }
        if h.pointee.inbox.pointee.owner == h { h.pointee.inbox.pointee.owner = nil }
        h.pointee.partial?.deallocate()
        h.pointee.completed.deallocate()
        h.deinitialize(count: 1)
        h.deallocate()
    }

    /// Input given to nghttp2 per call: bounds the events one call can produce (a frame is at
    /// least 9 bytes and adds at most two events).
    public static let maxInputPerCall = 4096

    /// Feeds client bytes to nghttp2; events land in the inbox. Returns the bytes taken (the
    /// caller handles the events, resets the inbox and calls again with the rest), or a
    /// negative nghttp2 error: the connection is broken (a GOAWAY may be queued; flush it
    /// and close).
    ///
    /// Static, on the pointer: nghttp2's callbacks write through the same pointer while the
    /// call runs, so no access to the value may span it (a `mutating` method would hold one
    /// and write back a stale copy).
    public static func ingest(_ h: UnsafeMutablePointer<H2Connection>, _ p: UnsafeRawPointer, _ n: Int) -> Int {
        let k = min(n, H2Connection.maxInputPerCall)
        let session = h.pointee.session
        h.pointee.inbox.pointee.restore(h)
        return nghttp2_session_mem_recv(session, p.assumingMemoryBound(to: UInt8.self), k)
    }

    /// Copies frames nghttp2 has to send into `out`: the number of bytes written (0: nothing
    /// to send, or -1: nghttp2 failed and the connection must close).
    /// Static for the reason `ingest` is (the read callback lists completed segments).
    public static func fill(_ h: UnsafeMutablePointer<H2Connection>, _ out: UnsafeMutableRawPointer, _ capacity: Int) -> Int {
        var w = 0
        if let c = h.pointee.carry {
            let k = min(h.pointee.carryCount, capacity)
            out.copyMemory(from: c, byteCount: k)
            w = k
            if k < h.pointee.carryCount {
                h.pointee.carry = c + k
                h.pointee.carryCount -= k
                return w
            }
            h.pointee.carry = nil
            h.pointee.carryCount = 0
        }
        let session = h.pointee.session
        h.pointee.inbox.pointee.owner = h   // sending may close streams (events of `h`)
        while w < capacity {
            var p: UnsafePointer<UInt8>? = nil
            let n = nghttp2_session_mem_send(session, &p)
            if n < 0 { return w > 0 ? w : -1 }
            if n == 0 { break }
            let k = min(n, capacity - w)
            (out + w).copyMemory(from: p!, byteCount: k)
            w += k
            if k < n {
                h.pointee.carry = UnsafeRawPointer(p! + k)
                h.pointee.carryCount = n - k
                break
            }
        }
        return w
    }

    /// Queues a PING (opaque data zero; the answer is nghttp2's to read). False when nghttp2
    /// cannot (out of memory, or the session is over).
    @discardableResult
    public func ping() -> Bool {
        nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil) == 0
    }

    /// nghttp2 has something to send (or bytes are carried over).
    public var wantsWrite: Bool { carry != nil || nghttp2_session_want_write(session) != 0 }
    /// The session is over: GOAWAY exchanged and no stream open, or a fatal error.
    public var finished: Bool { nghttp2_session_want_read(session) == 0 && !wantsWrite }

    /// The engine took `n` body bytes of `stream`: open its window (and the connection's).
    /// `stream` 0 (the engine's slot no longer holds the stream: it closed, for instance with
    /// the trailers that followed these bytes) opens the connection's window alone; nghttp2
    /// refuses stream 0 in `nghttp2_session_consume`, and the connection's window, which every
    /// received DATA byte counts against, would shrink for good.
    public func consume(stream: Int32, _ n: Int) {
        guard n > 0 else { return }
        if stream > 0 {
            _ = nghttp2_session_consume(session, stream, n)
        } else {
            _ = nghttp2_session_consume_connection(session, n)
        }
    }

    /// Ties a stream to an engine slot (+1, so that 0 means none) for data and close events.
    /// False when nghttp2 no longer has the stream (it was reset or closed meanwhile).
    @discardableResult
    public func setSlot(stream: Int32, _ slot: Int32) -> Bool {
        nghttp2_session_set_stream_user_data(session, stream, UnsafeMutableRawPointer(bitPattern: Int(slot) + 1)) == 0
    }

    public func clearSlot(stream: Int32) {
        _ = nghttp2_session_set_stream_user_data(session, stream, nil)
    }

    /// The engine slot of `stream`, or -1.
    public func slot(stream: Int32) -> Int32 {
        guard let p = nghttp2_session_get_stream_user_data(session, stream) else { return -1 }
        return Int32(Int(bitPattern: p) - 1)
    }

    /// Resets `stream` with `code` (RFC 9113 §7 error codes).
    public func reset(stream: Int32, code: UInt32) {
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, code)
    }

    /// Streams the peer allows open at once (client side: the engine opens another connection
    /// past it).
    public var remoteMaxStreams: Int {
        Int(nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS))
    }

    /// The peer sent GOAWAY, or the session cannot start streams any more.
    public var refusesNewStreams: Bool {
        nghttp2_session_check_request_allowed(session) == 0
    }

    /// After a fatal error of `ingest` (nghttp2 queues nothing then: a CONTINUATION flood, an
    /// outbound flood, a bad preface) the GOAWAY the peer is owed (RFC 9113 §5.4.1), written
    /// into `out` (17 bytes). Floods get ENHANCE_YOUR_CALM, the rest PROTOCOL_ERROR.
    public func fatalGoAway(error: Int, into out: UnsafeMutableRawPointer) -> Int {
        let calm = error == Int(NGHTTP2_ERR_FLOODED.rawValue) || error == -905   // NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
        let code = calm ? UInt32(NGHTTP2_ENHANCE_YOUR_CALM.rawValue) : UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue)
        let last = UInt32(max(0, nghttp2_session_get_last_proc_stream_id(session)))
        let frame: [UInt8] = [0, 0, 8, UInt8(NGHTTP2_GOAWAY.rawValue), 0, 0, 0, 0, 0,
                              UInt8(last >> 24 & 0x7F), UInt8(last >> 16 & 0xFF), UInt8(last >> 8 & 0xFF), UInt8(last & 0xFF),
                              UInt8(code >> 24), UInt8(code >> 16 & 0xFF), UInt8(code >> 8 & 0xFF), UInt8(code & 0xFF)]
        frame.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: 17) }
        return 17
    }

    /// A graceful GOAWAY: streams up to the last one received are still served.
    public func goAway() {
        let last = nghttp2_session_get_last_proc_stream_id(session)
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, UInt32(NGHTTP2_NO_ERROR.rawValue), nil, 0)
    }

    /// `source` has more to give (a segment, or its end) after the read callback deferred.
    public func resume(stream: Int32, _ source: UnsafeMutablePointer<H2Source>) {
        if source.pointee.deferred {
            source.pointee.deferred = false
            _ = nghttp2_session_resume_data(session, stream)
        }
    }

    @inline(__always)
    public mutating func complete(_ slot: Int32, _ generation: UInt32) {
        if completedCount < completedCapacity {
            completed[completedCount] = UInt64(UInt32(bitPattern: slot)) | UInt64(generation) << 32
            completedCount += 1
        }
    }

    nonisolated(unsafe) static let options: OpaquePointer? = {
        var o: OpaquePointer? = nil
        nghttp2_option_new(&o)
        nghttp2_option_set_no_auto_window_update(o, 1)
        nghttp2_option_set_no_closed_streams(o, 1)
        return o
    }()

    nonisolated(unsafe) static let callbacks: OpaquePointer? = {
        var cb: OpaquePointer? = nil
        nghttp2_session_callbacks_new(&cb)
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(cb, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, onFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, onStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(cb, onFrameSend)
        return cb
    }()
}

@inline(__always)
private func conn(_ user: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<H2Connection> {
    user!.assumingMemoryBound(to: H2Connection.self)
}

private let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, user in
    let inbox = conn(user).pointee.inbox
    let f = frame!.pointee
    inbox.pointee.blockStream = f.hd.stream_id
    inbox.pointee.blockStart = inbox.pointee.used
    inbox.pointee.blockBytes = 0
    inbox.pointee.blockFields = 0
    inbox.pointee.blockTooLarge = false
    inbox.pointee.blockCategory = f.headers.cat.rawValue
    return 0
}

private let onHeader: nghttp2_on_header_callback = { _, frame, name, nameLen, value, valueLen, _, user in
    let inbox = conn(user).pointee.inbox
    guard inbox.pointee.blockStream != 0 else { return 0 }
    // Counted as HTTP/1.1 would: "name: value\r\n".
    inbox.pointee.blockBytes += nameLen + valueLen + 4
    if name![0] != UInt8(ascii: ":") { inbox.pointee.blockFields += 1 }
    if inbox.pointee.blockTooLarge { return 0 }
    if inbox.pointee.blockBytes > H2Inbox.maxBlockBytes || inbox.pointee.blockFields > H2Inbox.maxFields {
        inbox.pointee.blockTooLarge = true
        return 0
    }
    let need = 6 + nameLen + valueLen
    let at = inbox.pointee.used
    guard at + need <= inbox.pointee.arenaCapacity else {
        inbox.pointee.blockTooLarge = true   // cannot happen: the arena pauses at half full
        return 0
    }
    let a = inbox.pointee.arena + at
    a.storeBytes(of: UInt16(nameLen), toByteOffset: 0, as: UInt16.self)
    a.storeBytes(of: UInt32(valueLen), toByteOffset: 2, as: UInt32.self)
    (a + 6).copyMemory(from: name!, byteCount: nameLen)
    if valueLen > 0 { (a + 6 + nameLen).copyMemory(from: value!, byteCount: valueLen) }
    inbox.pointee.used = at + need
    return inbox.pointee.nearlyFull ? Int32(NGHTTP2_ERR_PAUSE.rawValue) : 0
}

/// The engine slot tied to `stream` now (-1: none). Read in the callbacks: the events are
/// handled after nghttp2 returns, when a stream that closed meanwhile is forgotten.
@inline(__always)
private func slotNow(_ session: OpaquePointer?, _ stream: Int32) -> Int32 {
    guard stream > 0, let p = nghttp2_session_get_stream_user_data(session, stream) else { return -1 }
    return Int32(Int(bitPattern: p) - 1)
}

private let onFrameRecv: nghttp2_on_frame_recv_callback = { session, frame, user in
    let inbox = conn(user).pointee.inbox
    let f = frame!.pointee
    let endStream = f.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    var e = H2Event()
    e.stream = f.hd.stream_id
    e.slot = slotNow(session, f.hd.stream_id)
    if f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) {
        guard inbox.pointee.blockStream == f.hd.stream_id else { return 0 }
        let start = inbox.pointee.blockStart
        inbox.pointee.blockStream = 0
        switch inbox.pointee.blockCategory {
        case NGHTTP2_HCAT_REQUEST.rawValue: e.kind = .request
        case NGHTTP2_HCAT_RESPONSE.rawValue: e.kind = .response
        default:
            // A later block: the final response after interim ones (it has :status), or
            // trailers.
            let a = inbox.pointee.arena + start
            let isResponse = inbox.pointee.used - start >= 13 && a.load(fromByteOffset: 0, as: UInt8.self) == 7
                && a.load(fromByteOffset: 6, as: UInt8.self) == UInt8(ascii: ":")
            e.kind = isResponse ? .response : .trailers
        }
        e.endStream = endStream
        e.tooLarge = inbox.pointee.blockTooLarge
        e.block.start = Int32(start)
        e.block.count = Int32(inbox.pointee.used - start)
        _ = inbox.pointee.push(e)
    } else if f.hd.type == UInt8(NGHTTP2_DATA.rawValue) && endStream {
        e.kind = .end
        _ = inbox.pointee.push(e)
    }
    return 0
}

private let onDataChunk: nghttp2_on_data_chunk_recv_callback = { session, _, stream, data, len, user in
    let inbox = conn(user).pointee.inbox
    var e = H2Event()
    e.kind = .data
    e.stream = stream
    e.slot = slotNow(session, stream)
    e.data = UnsafeRawPointer(data)
    e.length = len
    _ = inbox.pointee.push(e)
    return inbox.pointee.nearlyFull ? Int32(NGHTTP2_ERR_PAUSE.rawValue) : 0
}

private let onFrameSend: nghttp2_on_frame_send_callback = { _, frame, user in
    let f = frame!.pointee
    if f.hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) && f.goaway.error_code != UInt32(NGHTTP2_NO_ERROR.rawValue) {
        conn(user).pointee.sentErrorGoAway = true
    }
    return 0
}

private let onStreamClose: nghttp2_on_stream_close_callback = { session, stream, code, user in
    let inbox = conn(user).pointee.inbox
    var e = H2Event()
    e.kind = .closed
    e.stream = stream
    e.errorCode = code
    e.slot = slotNow(session, stream)
    _ = inbox.pointee.push(e)
    return 0
}
