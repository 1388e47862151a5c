import CNGHTTP2

// What nghttp2 reports while it reads a client's bytes, kept as plain events for the engine to
// act on after `nghttp2_session_mem_recv` returns (the engine is never called from inside
// nghttp2): `ingest(bytes) -> events`, the session seam of the pipeline (DESIGN.md §9).
//
//   on_begin_headers ─► a header block starts (request headers or trailers)
//   on_header        ─► one field, appended to the arena as a record
//   on_frame_recv    ─► HEADERS done: `.request` / `.response` (the block's records) or
//                       `.trailers` (which end the stream); DATA with END_STREAM: `.end`
//   on_data_chunk    ─► `.data` (points into the input bytes, valid until the next call)
//   on_stream_close  ─► `.closed` (the client reset it, nghttp2 reset it, or it completed)
//
// Header blocks are never interleaved (RFC 9113 §4.3: CONTINUATION frames follow their
// HEADERS at once), so one block is in progress at a time. The arena is bounded: a block is
// cut at `maxBlockBytes` (the request gets 431), and the callback pauses nghttp2 once the arena
// is half full; the engine then handles the events, the block in progress moves to the front,
// and the rest of the input is fed again.

/// A range of bytes in the inbox arena.
public struct ArenaRange: Sendable {
    public var start: Int32 = 0
    public var count: Int32 = 0
    public init() {}
}

public enum H2EventKind: UInt8, Sendable {
    /// A request's header block is complete (server side).
    case request
    /// A response's header block is complete (client side): interim (1xx) or final.
    case response
    /// A trailer section (its records in `block`; `endStream` is set).
    case trailers
    /// Request body bytes.
    case data
    /// The client ended its side of the stream (END_STREAM, possibly after trailers).
    case end
    /// The stream is closed (`errorCode` 0: both sides ended normally).
    case closed
}

public struct H2Event {
    public var kind: H2EventKind = .request
    public var stream: Int32 = 0
    /// `.request`, `.response`, `.trailers`: END_STREAM came with the headers (no body).
    public var endStream = false
    /// `.request`, `.response`, `.trailers`: the block passed `maxBlockBytes` or `maxFields`
    /// and was cut.
    public var tooLarge = false
    /// `.request`, `.response`, `.trailers`: the records of the header block.
    public var block = ArenaRange()
    /// `.data`: the bytes, inside the input given to `ingest`.
    public var data: UnsafeRawPointer? = nil
    public var length: Int = 0
    /// `.closed`: the RST_STREAM / GOAWAY error code.
    public var errorCode: UInt32 = 0
    /// The engine slot tied to the stream when nghttp2 reported it (-1: none); read in the
    /// callback, as nghttp2 forgets a stream as soon as it closes, which may be before the
    /// engine handles the event. The engine checks it still holds this stream.
    public var slot: Int32 = -1
    public init() {}
}

/// Events and header records from one `ingest` call. One per worker, shared by all its HTTP/2
/// connections (single-threaded; drained after every call).
public struct H2Inbox {
    public let events: UnsafeMutablePointer<H2Event>
    public var count = 0
    public let capacity: Int
    /// Header records: [name length: UInt16][value length: UInt32][name][value].
    public let arena: UnsafeMutableRawPointer
    public let arenaCapacity: Int
    public var used = 0
    /// The header block in progress: its stream, where it starts, its size on the wire as
    /// HTTP/1.1 would count it, and whether it was cut.
    var blockStream: Int32 = 0
    var blockStart = 0
    var blockBytes = 0
    var blockFields = 0
    var blockTooLarge = false
    /// The block's nghttp2_headers_category.
    var blockCategory: UInt32 = 0
    /// A request head is limited like HTTP/1.1's (DESIGN.md §8: 60 KiB, 100 fields).
    public static let maxBlockBytes = 60 * 1024
    public static let maxFields = 100
    /// Scratch for a response head handed to nghttp2 (it copies the fields): the name/value
    /// array and the lowercased names.
    public let nv: UnsafeMutablePointer<nghttp2_nv>
    public let names: UnsafeMutableRawPointer
    public static let nvCapacity = 128
    public static let namesCapacity = 16 * 1024

    public init(capacity: Int = 2048, arenaCapacity: Int = 256 * 1024) {
        self.capacity = capacity
        events = .allocate(capacity: capacity)
        events.initialize(repeating: H2Event(), count: capacity)
        self.arenaCapacity = arenaCapacity
        arena = .allocate(byteCount: arenaCapacity, alignment: 8)
        nv = .allocate(capacity: H2Inbox.nvCapacity)
        names = .allocate(byteCount: H2Inbox.namesCapacity, alignment: 8)
    }

    /// The connection whose bytes the last `ingest` read (the owner of a block in progress).
    var owner: UnsafeMutablePointer<H2Connection>? = nil

    /// A buffer for the trailer section of a chunked body being sent in DATA frames
    /// (`H2Source.trailerCapacity` bytes), kept for the next one: a body holds it only from
    /// its last chunk until nghttp2 took the fields, so the worker rarely needs a second.
    var spareTrailerSink: UnsafeMutableRawPointer? = nil

    mutating func takeTrailerSink() -> UnsafeMutableRawPointer {
        if let p = spareTrailerSink {
            spareTrailerSink = nil
            return p
        }
        return .allocate(byteCount: H2Source.trailerCapacity, alignment: 8)
    }

    mutating func giveBackTrailerSink(_ p: UnsafeMutableRawPointer) {
        if spareTrailerSink == nil { spareTrailerSink = p } else { p.deallocate() }
    }

    /// Forgets the handled events. A header block still in progress (its frame, or its
    /// CONTINUATIONs, not all read yet) belongs to the connection that was read: it is kept with
    /// that connection (`H2Connection.partial`) until its next `ingest`, since the inbox serves
    /// every connection of the worker and the next one read may be another.
    public mutating func reset() {
        count = 0
        if blockStream != 0, let h = owner {
            h.pointee.savePartial(self)
            blockStream = 0
        }
        used = 0
        blockStart = 0
    }

    /// Puts connection `h`'s saved block in progress back (before its bytes are read).
    mutating func restore(_ h: UnsafeMutablePointer<H2Connection>) {
        owner = h
        guard h.pointee.partialStream != 0 else { return }
        let n = h.pointee.partialLen
        if n > 0 { arena.copyMemory(from: h.pointee.partial!, byteCount: n) }
        used = n
        blockStart = 0
        blockStream = h.pointee.partialStream
        blockBytes = h.pointee.partialBytes
        blockFields = h.pointee.partialFields
        blockTooLarge = h.pointee.partialTooLarge
        blockCategory = h.pointee.partialCategory
        h.pointee.partialStream = 0
        h.pointee.partialLen = 0
    }

    @inline(__always)
    mutating func push(_ e: H2Event) -> Bool {
        guard count < capacity else { return false }
        events[count] = e
        count += 1
        return true
    }

    /// Events may be added only while there is room for the worst a frame can add (`ingest`
    /// feeds nghttp2 at most `maxInputPerCall` bytes at a time, so this holds).
    var nearlyFull: Bool { count + 8 >= capacity || used > arenaCapacity / 2 }
}

/// Walks the records of a header block.
public struct HeaderRecords: Sequence {
    let base: UnsafeRawPointer
    let count: Int
    public init(_ inbox: UnsafePointer<H2Inbox>, _ r: ArenaRange) {
        base = UnsafeRawPointer(inbox.pointee.arena + Int(r.start))
        count = Int(r.count)
    }
    public struct Iterator: IteratorProtocol {
        let base: UnsafeRawPointer
        let count: Int
        var k = 0
        public mutating func next() -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)? {
            guard k + 6 <= count else { return nil }
            let nl = Int(base.loadUnaligned(fromByteOffset: k, as: UInt16.self))
            let vl = Int(base.loadUnaligned(fromByteOffset: k + 2, as: UInt32.self))
            let name = UnsafeRawBufferPointer(start: base + k + 6, count: nl)
            let value = UnsafeRawBufferPointer(start: base + k + 6 + nl, count: vl)
            k += 6 + nl + vl
            return (name, value)
        }
    }
    public func makeIterator() -> Iterator { Iterator(base: base, count: count) }
}
