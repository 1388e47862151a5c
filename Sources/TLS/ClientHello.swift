// Reads the ClientHello that opens a connection on a TLS listener, before any TLS library sees
// it (Envoy's tls_inspector does the same): the SNI picks the Gateway server (certificate) or,
// for passthrough, the upstream; ALPN says whether HTTP/2 was offered. The bytes are left
// untouched for OpenSSL or the upstream. Sans-I/O: bytes in, a `ClientHelloStatus` out; no
// state between calls, no allocation, no Foundation.
//
// What is read (RFC 8446 §5.1 records, §4.1.2 ClientHello and §4.2 extensions; RFC 5246
// §7.4.1.2 for hellos without extensions; RFC 6066 §3 server_name; RFC 7301 §3.1 ALPN):
//
//   record    type 22 (1) | legacy_record_version 0x03 0x00..0x04 (2) | length 1..2^14 (2) | fragment
//   message   msg_type 1 (1) | length (3) | body           ← one message, fragmented over ≥ 1 records
//   body      legacy_version 0x03XX (2) | random (32) | session_id <0..32> | cipher_suites <2..2^16-2>
//             | compression_methods <1..2^8-1> | [ extensions <0..2^16-1> ]
//   extension type (2) | extension_data <0..2^16-1>         ← each type at most once
//     server_name (0)   ServerNameList <1..2^16-1> of { name_type (1) | name <0..2^16-1> };
//                       the first name_type 0 (host_name) entry is the SNI
//     ALPN (16)         ProtocolNameList <2..2^16-1> of ProtocolName <1..2^8-1>
//
// Two passes. Framing walks the record headers (never more than the bytes given) and decides
// as early as the bytes allow: the first byte tells a TLS handshake from plaintext, the
// handshake header tells a ClientHello and its size. Once every record carrying the message is
// in, the body is parsed through `HandshakeCursor`, which reads the message as one stream
// across record boundaries. Every length is checked against its container before it is used.

/// What `parseClientHello` found in the bytes read so far on a TLS listener.
public enum ClientHelloStatus: Equatable, Sendable {
    /// More bytes are needed (the caller keeps reading, up to `ClientHello.maxBytes`).
    /// Only returned while fewer than `ClientHello.maxBytes` bytes were given.
    case incomplete
    /// A complete ClientHello was read.
    case hello(ClientHello)
    /// Not a TLS handshake at all (e.g. plaintext HTTP sent to an HTTPS port): close, say nothing.
    /// Decided from the first byte (not 22, the handshake content type: this covers plaintext
    /// and SSLv2-compatible hellos, whose first byte has the high bit set) or the second
    /// (22 not followed by major version 3).
    case notTLS
    /// A TLS record/handshake that is malformed, too large, or not a ClientHello; also an SNI
    /// that is not a plausible host name. Close (a TLS library would answer with an alert).
    case malformed
}

/// The parts of a ClientHello the data plane routes on.
public struct ClientHello: Equatable, Sendable {
    /// The host_name of the server_name extension, as offsets into the bytes given (count 0: no
    /// SNI). 1...255 bytes of `[A-Za-z0-9._-]`, as sent (not lower-cased); always inside one
    /// record, so always contiguous in the bytes given.
    public var sniStart: Int32, sniCount: Int32
    /// Whether ALPN offered "h2" / "http/1.1".
    public var offersH2: Bool, offersHTTP11: Bool
    /// Bytes the hello occupied (all records carrying it), i.e. where the next record starts.
    /// The hello ends at a record boundary (a record carrying more than the hello is
    /// `.malformed`); what follows (a ChangeCipherSpec, early data) is not looked at.
    public var length: Int32

    public init(sniStart: Int32, sniCount: Int32, offersH2: Bool, offersHTTP11: Bool, length: Int32) {
        self.sniStart = sniStart
        self.sniCount = sniCount
        self.offersH2 = offersH2
        self.offersHTTP11 = offersHTTP11
        self.length = length
    }

    /// The largest ClientHello body accepted (the handshake message after its 4-byte header):
    /// 16 KiB, the limit BoringSSL puts on every handshake message a server reads before it
    /// asks for a certificate (`ssl_max_handshake_message_len`, kMaxMessageLen = 16384). So no
    /// client that must work with Google, Cloudflare or Envoy (which parses the hello with
    /// BoringSSL) sends more. Real hellos are far smaller: 200–600 bytes, about 1.8 KiB with a
    /// post-quantum key share (X25519MLKEM768). OpenSSL accepts up to 128 KiB, but holding that
    /// per handshaking connection would be memory an idle attacker can pin for free.
    public static let maxBodyBytes = 16 * 1024

    /// The most bytes a hello may occupy, records included: the largest body and its header
    /// (16 388 bytes, which needs 2 records of at most 2^14 bytes), plus the headers of 4
    /// records, leaving room for a client that fragments it once or twice more. A smaller hello
    /// may come in more records as long as the total fits: a 500-byte hello still fits in
    /// 1-byte records. A hello that needs more is `.malformed`, decided as soon as a record
    /// header says it will not fit, so a caller never buffers more than this: 16 408 bytes.
    public static let maxBytes = 4 + maxBodyBytes + 4 * 5
}

/// TLS record content type handshake (RFC 8446 §5.1).
let contentTypeHandshake: UInt8 = 22
/// Handshake type client_hello (RFC 8446 §4).
let handshakeTypeClientHello: UInt32 = 1
/// Record header: type (1), legacy_record_version (2), length (2).
let recordHeaderBytes = 5
/// Handshake header: msg_type (1), length (3).
let handshakeHeaderBytes = 4
/// A TLSPlaintext fragment is at most 2^14 bytes (RFC 8446 §5.1: record_overflow).
let maxRecordPayloadBytes = 1 << 14
/// Extension types (IANA TLS ExtensionType registry).
let extensionServerName = 0
let extensionALPN = 16
/// Duplicate extensions are found by remembering the types seen, on the stack, so their number
/// is capped: IANA has assigned about 60 types and browsers send about 20 (GREASE included), so
/// a hello with more than 128 extensions is no real client. It is `.malformed`.
let maxExtensions = 128

/// Reads the ClientHello at the start of `bytes`, the bytes received so far on a connection.
///
/// Accepts a hello in one or several handshake records, in any number of reads: the caller
/// calls again with the same bytes plus what arrived since, and gets `.incomplete` until the
/// last record of the hello is in, then the result one call over all the bytes would give.
/// Nothing is kept between calls and `bytes` is not retained; every result but `.incomplete`
/// is final for any bytes that could follow. A call walks the record headers again (a few
/// instructions per record) and parses the body only once the whole hello is in.
///
/// Rejects (`.malformed`) what a TLS server would refuse anyway: a record that is not a
/// handshake after the first, a record version outside 3.0–3.4, an empty or over-long record,
/// a handshake message that is not a ClientHello or is larger than `ClientHello.maxBodyBytes`,
/// a record that carries bytes past the hello, any length that overruns its container or
/// leaves bytes unread in it, a duplicated extension (RFC 8446 §4.2) or more than 128 of them,
/// an empty ALPN protocol name, and an SNI host_name that is empty, longer than 255 bytes (RFC
/// 6066 §3), has a byte outside `[A-Za-z0-9._-]` (Envoy rejects such an SNI) or is split
/// across two records (it could not be returned as one range of `bytes`; no client does that
/// but a DPI-evasion tool).
public func parseClientHello(_ bytes: UnsafeRawBufferPointer) -> ClientHelloStatus {
    guard let p = bytes.baseAddress, bytes.count > 0 else { return .incomplete }
    let n = bytes.count
    // Framing: `off` is where the next record header starts. The handshake header can itself
    // be split over records, so its bytes are gathered into `header` as they come.
    var off = 0
    var header: UInt32 = 0
    var headerBytes = 0
    var messageBytes = -1  // handshake header + body, once the header is known
    var recordBytes = 0    // message bytes announced by the record headers read so far
    while true {
        if off == n { return .incomplete }
        // SAFETY (every `byte(p, i)` below): i < n is checked just before it.
        if byte(p, off) != contentTypeHandshake { return off == 0 ? .notTLS : .malformed }
        if off + 1 < n, byte(p, off + 1) != 3 { return off == 0 ? .notTLS : .malformed }
        if off + 2 < n, byte(p, off + 2) > 4 { return .malformed }
        if off + recordHeaderBytes > n { return .incomplete }
        let len = Int(byte(p, off + 3)) << 8 | Int(byte(p, off + 4))
        // A zero-length handshake fragment is forbidden (RFC 8446 §5.1); refusing it also
        // makes every record move the cursor forward.
        guard len > 0, len <= maxRecordPayloadBytes,
              off + recordHeaderBytes + len <= ClientHello.maxBytes else { return .malformed }
        let payload = off + recordHeaderBytes
        let present = min(len, n - payload)
        var i = 0
        while headerBytes < handshakeHeaderBytes && i < present {
            header = header << 8 | UInt32(byte(p, payload + i))
            headerBytes += 1
            i += 1
        }
        if headerBytes > 0 && header >> (8 * UInt32(headerBytes - 1)) != handshakeTypeClientHello {
            return .malformed
        }
        if headerBytes == handshakeHeaderBytes && messageBytes < 0 {
            let body = Int(header & 0xFF_FFFF)
            guard body <= ClientHello.maxBodyBytes else { return .malformed }
            messageBytes = handshakeHeaderBytes + body
        }
        recordBytes += len
        if messageBytes >= 0 && recordBytes > messageBytes { return .malformed }
        if payload + len > n { return .incomplete }
        off = payload + len
        if recordBytes == messageBytes { break }
        // The next record needs a header and at least one byte.
        if off + recordHeaderBytes + 1 > ClientHello.maxBytes { return .malformed }
    }

    // Every record carrying the message is in `bytes`, whole, and holds nothing else.
    let firstLen = Int(byte(p, 3)) << 8 | Int(byte(p, 4))
    var c = HandshakeCursor(base: p, at: recordHeaderBytes, recordEnd: recordHeaderBytes + firstLen,
                            pos: 0, end: messageBytes)
    var hello = ClientHello(sniStart: 0, sniCount: 0, offersH2: false, offersHTTP11: false, length: Int32(off))
    guard c.skip(handshakeHeaderBytes),
          let version = c.u16(), version >> 8 == 3,
          c.skip(32),                                                    // random
          let sessionID = c.u8(), sessionID <= 32, c.skip(sessionID),
          let suites = c.u16(), suites >= 2, suites & 1 == 0, c.skip(suites),
          let compression = c.u8(), compression >= 1, c.skip(compression)
    else { return .malformed }
    if c.pos == c.end { return .hello(hello) }  // no extensions: an SSLv3/TLS 1.0-era hello
    guard let extensionsLen = c.u16(), extensionsLen == c.end - c.pos else { return .malformed }
    // Types seen: a 256-bit filter (4 words), then up to `maxExtensions` types. 288 bytes: under
    // the 1 KiB that withUnsafeTemporaryAllocation always takes from the stack.
    let ok = withUnsafeTemporaryAllocation(byteCount: 32 + 2 * maxExtensions, alignment: 8) { scratch in
        readExtensions(&c, &hello, scratch)
    }
    return ok ? .hello(hello) : .malformed
}

/// Reads the extension block up to the end of the message into `hello`; false if malformed.
/// `scratch` is uninitialized, 32 + 2 * maxExtensions bytes.
func readExtensions(_ c: inout HandshakeCursor, _ hello: inout ClientHello,
                    _ scratch: UnsafeMutableRawBufferPointer) -> Bool {
    // SAFETY: scratch is 32 + 2 * maxExtensions bytes, 8-aligned: 4 words of filter, then types.
    guard let base = scratch.baseAddress else { return false }
    let filter = base.bindMemory(to: UInt64.self, capacity: 4)
    let types = (base + 32).bindMemory(to: UInt16.self, capacity: maxExtensions)
    filter.initialize(repeating: 0, count: 4)
    var count = 0
    while c.pos < c.end {
        guard let type = c.u16(), let len = c.u16(), len <= c.end - c.pos else { return false }
        // Duplicates (RFC 8446 §4.2: "MUST NOT be more than one extension of the same type").
        let bucket = Int((UInt32(type) &* 0x9E37_79B1) >> 24)
        let bit: UInt64 = 1 << UInt64(bucket & 63)
        if filter[bucket >> 6] & bit != 0 {
            for k in 0..<count where types[k] == UInt16(type) { return false }
        }
        guard count < maxExtensions else { return false }
        filter[bucket >> 6] |= bit
        types[count] = UInt16(type)
        count += 1

        let extensionEnd = c.pos + len
        switch type {
        case extensionServerName:
            guard readServerName(&c, len, &hello) else { return false }
        case extensionALPN:
            guard readALPN(&c, len, &hello) else { return false }
        default:
            guard c.skip(len) else { return false }
        }
        guard c.pos == extensionEnd else { return false }
    }
    return true
}

/// server_name (RFC 6066 §3): the first host_name entry becomes the SNI. Other entries are
/// checked for framing and skipped; a later host_name entry is ignored.
func readServerName(_ c: inout HandshakeCursor, _ len: Int, _ hello: inout ClientHello) -> Bool {
    guard let listLen = c.u16(), listLen >= 1, listLen == len - 2 else { return false }
    let listEnd = c.pos + listLen
    var found = false
    while c.pos < listEnd {
        guard let nameType = c.u8(), let nameLen = c.u16(), nameLen <= listEnd - c.pos else { return false }
        if nameType == 0 && !found {
            guard nameLen >= 1, nameLen <= 255, let start = c.contiguous(nameLen) else { return false }
            for i in start..<(start + nameLen) where !isSNIByte(byte(c.base, i)) { return false }
            hello.sniStart = Int32(start)
            hello.sniCount = Int32(nameLen)
            found = true
        } else {
            guard c.skip(nameLen) else { return false }
        }
    }
    return true
}

/// ALPN (RFC 7301 §3.1): notes whether "h2" and "http/1.1" are among the protocols offered.
func readALPN(_ c: inout HandshakeCursor, _ len: Int, _ hello: inout ClientHello) -> Bool {
    guard let listLen = c.u16(), listLen >= 2, listLen == len - 2 else { return false }
    let listEnd = c.pos + listLen
    while c.pos < listEnd {
        guard let nameLen = c.u8(), nameLen >= 1, nameLen <= listEnd - c.pos else { return false }
        if nameLen == 2 || nameLen == 8 {
            var word: UInt64 = 0
            for _ in 0..<nameLen {
                guard let b = c.u8() else { return false }
                word = word << 8 | UInt64(b)
            }
            if nameLen == 2 && word == 0x6832 { hello.offersH2 = true }                      // "h2"
            if nameLen == 8 && word == 0x6874_7470_2F31_2E31 { hello.offersHTTP11 = true }  // "http/1.1"
        } else {
            guard c.skip(nameLen) else { return false }
        }
    }
    return true
}

/// `[A-Za-z0-9._-]`: the bytes a host name (RFC 1123 labels, plus `_`, which real service names
/// carry) may hold. Anything else (IP literal colons, NUL, UTF-8) is refused, as Envoy does.
@inline(__always)
func isSNIByte(_ b: UInt8) -> Bool {
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F: return true
    default: return false
    }
}

@inline(__always)
func byte(_ p: UnsafeRawPointer, _ i: Int) -> UInt8 {
    p.load(fromByteOffset: i, as: UInt8.self)
}

/// A forward-only reader over one handshake message whose records framing has checked: `pos`
/// counts message bytes (0 is msg_type), `at` is the matching offset into the caller's bytes.
/// A read that reaches the end of a record's payload continues after the next record header.
/// Every read is checked against `end`, the message's length, and fails (nil / false) past it.
struct HandshakeCursor {
    let base: UnsafeRawPointer
    /// Offset into the bytes of the next message byte, or the end of the current record's
    /// payload (then the next byte is after the next record header).
    var at: Int
    /// Offset into the bytes where the current record's payload ends.
    var recordEnd: Int
    /// Message bytes consumed.
    var pos: Int
    /// Message length (handshake header + body).
    let end: Int

    /// Steps over the next record header when the current record is used up.
    /// SAFETY: only called with pos < end. Framing checked that the records carrying the whole
    /// message are in the bytes, whole, non-empty and back to back, so when the current one is
    /// used up and message bytes remain, a complete record header and payload start at `at`.
    @inline(__always)
    mutating func enterNextRecordIfAtEnd() {
        if at == recordEnd {
            let len = Int(byte(base, at + 3)) << 8 | Int(byte(base, at + 4))
            at += recordHeaderBytes
            recordEnd = at + len
        }
    }

    mutating func u8() -> Int? {
        guard pos < end else { return nil }
        enterNextRecordIfAtEnd()
        let v = byte(base, at)
        at += 1
        pos += 1
        return Int(v)
    }

    mutating func u16() -> Int? {
        guard let hi = u8(), let lo = u8() else { return nil }
        return hi << 8 | lo
    }

    /// Skips `n` message bytes, across records; false if fewer remain.
    mutating func skip(_ n: Int) -> Bool {
        guard n >= 0, n <= end - pos else { return false }
        var left = n
        while left > 0 {
            enterNextRecordIfAtEnd()
            let k = min(left, recordEnd - at)  // ≥ 1: records are non-empty
            at += k
            pos += k
            left -= k
        }
        return true
    }

    /// Consumes the next `n` (≥ 1) message bytes and returns their offset into the bytes, if
    /// they lie in one record; nil if they cross a record boundary or overrun the message.
    mutating func contiguous(_ n: Int) -> Int? {
        guard n >= 1, n <= end - pos else { return nil }
        enterNextRecordIfAtEnd()
        guard n <= recordEnd - at else { return nil }
        let start = at
        at += n
        pos += n
        return start
    }
}
