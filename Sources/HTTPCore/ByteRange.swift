/// A range of bytes inside a buffer that the caller owns. Codecs never copy header names or
/// values; they hand out ranges relative to the start of the buffer they were given, and the
/// caller keeps the buffer alive (and unmoved) for as long as it uses the ranges.
@frozen
public struct ByteRange: Equatable, Sendable {
    /// Offset of the first byte, from the start of the parsed buffer.
    public var start: Int32
    /// Number of bytes.
    public var count: Int32

    @inlinable
    public init(start: Int32, count: Int32) {
        self.start = start
        self.count = count
    }

    @inlinable
    public init(start: Int, count: Int) {
        self.start = Int32(truncatingIfNeeded: start)
        self.count = Int32(truncatingIfNeeded: count)
    }

    /// No bytes; `isEmpty` is true. Used for absent fields.
    public static let empty = ByteRange(start: 0, count: 0)

    @inlinable public var end: Int32 { start + count }
    @inlinable public var isEmpty: Bool { count == 0 }
}

/// Flags the parser sets on a header field, so the proxy can forward a head without
/// re-inspecting names.
@frozen
public struct HeaderFlags: OptionSet, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Hop-by-hop: not forwarded (Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade
    /// unless tunnelling, and every header named in a Connection token). Transfer-Encoding is
    /// NOT flagged: a chunked body is forwarded as chunked.
    public static let hopByHop = HeaderFlags(rawValue: 1 << 0)
    /// The field is one the proxy rewrites itself (x-forwarded-for, x-forwarded-proto,
    /// x-request-id); the serializer emits the proxy's version instead.
    public static let rewritten = HeaderFlags(rawValue: 1 << 1)
    /// The field is an x-forwarded-for (always with `.rewritten`): the serializer joins the
    /// values of every such field, in order, before appending the client address.
    public static let forwardedFor = HeaderFlags(rawValue: 1 << 2)
}

/// One header field of a parsed head: name and value as ranges into the parsed buffer.
/// The value has surrounding whitespace removed.
@frozen
public struct HeaderField: Sendable {
    public var name: ByteRange
    public var value: ByteRange
    public var flags: HeaderFlags

    @inlinable
    public init(name: ByteRange, value: ByteRange, flags: HeaderFlags = []) {
        self.name = name
        self.value = value
        self.flags = flags
    }
}
