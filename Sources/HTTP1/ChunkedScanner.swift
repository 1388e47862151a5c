// Walks a chunked body that is forwarded unchanged and says where it ends (RFC 9112 §7.1).
//
//   chunked-body = *chunk last-chunk trailer-section CRLF
//   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//
//            hex digit                ';' / SP              any but CTL
//   ┌──────┐ ───────┐       ┌──────────┐ ──────► ┌─────┐ ──────┐
//   │ size │◄───────┘  SP  │ sizeSpace│   ';'   │ ext │◄──────┘
//   └──┬───┘ ─────────────►└──────────┘ ──────► └──┬──┘
//      │ CR                                        │ CR
//      ▼                                           ▼
//   ┌────────┐ LF, size > 0  ┌──────┐ n bytes ┌────────┐ CR ┌────────┐ LF
//   │ sizeLF │ ────────────► │ data │ ──────► │ dataCR │ ─► │ dataLF │ ──► size
//   └───┬────┘               └──────┘         └────────┘    └────────┘
//       │ LF, size == 0
//       ▼
//   ┌──────────────┐ tchar ┌──────────────┐ ':' ┌──────────────┐ CR ┌───────────┐ LF
//   │ trailerStart │ ────► │ trailerName  │ ──► │ trailerValue │ ─► │ trailerLF │ ──► trailerStart
//   └──────┬───────┘       └──────────────┘     └──────────────┘    └───────────┘
//          │ CR
//          ▼
//   ┌─────────┐ LF  ┌──────┐
//   │ finalLF │ ──► │ done │
//   └─────────┘     └──────┘
//
// Every other byte in any state is an error: bare LF, bare CR, obs-fold in trailers, CTLs,
// non-hex sizes. The scanner copies nothing and allocates nothing; it keeps its position in
// a few integers, so input may be split at any byte.

/// Result of feeding bytes to a `ChunkedScanner`.
@frozen
public enum ChunkedScan: Equatable, Sendable {
    /// Every byte given belongs to the body and the body is not over yet.
    case needMore
    /// The body ends after `consumed` bytes of the bytes just given (through the CRLF that
    /// closes the trailer section); anything after them is the next message.
    case done(consumed: Int)
    /// The body is malformed; the caller answers 400 (502 towards a client when the upstream
    /// sent it) and closes the connection.
    case error(HTTPError)
}

/// A sans-I/O walker over a chunked body. Create one per body; call `scan` with each piece of
/// the body as it arrives (pieces may be split anywhere). After `.done` or `.error` it stays
/// there: further calls return `.done(consumed: 0)` or the same error.
@frozen
public struct ChunkedScanner: Sendable {
    @usableFromInline
    enum State: UInt8, Sendable {
        case size, sizeSpace, ext, sizeLF, data, dataCR, dataLF
        case trailerStart, trailerName, trailerValue, trailerLF, finalLF, done, failed
    }

    @usableFromInline var state: State = .size
    /// The chunk size being read, then the data bytes still to skip.
    @usableFromInline var remaining: Int64 = 0
    /// Hex digits read in the current chunk-size.
    @usableFromInline var digits: Int32 = 0
    /// Bytes of the current chunk-size line, or of the whole trailer section.
    @usableFromInline var lineBytes: Int = 0
    @usableFromInline var failure: HTTPError = .invalidChunkSize
    /// Longest chunk-size line (size and extensions), without CRLF.
    public let maxLineBytes: Int
    /// Longest trailer section.
    public let maxTrailerBytes: Int

    /// Chunk extensions are meaningless to the proxy and only forwarded, so 4 KiB of them is
    /// generous; the trailer section gets the same budget as a head (DESIGN.md §8).
    @inlinable
    public init(maxLineBytes: Int = 4096, maxTrailerBytes: Int = 60 * 1024) {
        self.maxLineBytes = maxLineBytes
        self.maxTrailerBytes = maxTrailerBytes
    }

    /// True once the final CRLF has been seen.
    @inlinable public var isDone: Bool { state == .done }

    /// Walks `bytes`, which continue the body from where the previous call stopped.
    public mutating func scan(_ bytes: UnsafeRawBufferPointer) -> ChunkedScan {
        switch state {
        case .done: return .done(consumed: 0)
        case .failed: return .error(failure)
        default: break
        }
        guard let p = bytes.baseAddress else { return .needMore }
        let n = bytes.count
        var i = 0
        while i < n {
            if state == .data {
                let take = Int(min(remaining, Int64(n &- i)))
                remaining &-= Int64(take)
                i &+= take
                if remaining == 0 { state = .dataCR }
                continue
            }
            let b = byte(p, i)
            i &+= 1
            switch state {
            case .size:
                let hex = hexValue(b)
                if hex >= 0 {
                    // 16 digits hold any Int64; a 17th, or a value past Int64.max, is refused.
                    if digits == 16 || remaining > (Int64.max >> 4) { return fail(.invalidChunkSize) }
                    remaining = remaining << 4 | Int64(hex)
                    digits &+= 1
                } else if digits == 0 {
                    return fail(.invalidChunkSize)
                } else if b == asciiCR {
                    state = .sizeLF
                } else if b == asciiSemicolon {
                    state = .ext
                } else if isOWS(b) {
                    state = .sizeSpace  // BWS before ';' (RFC 9112 §7.1.1)
                } else {
                    return fail(.invalidChunkSize)
                }
                if !countLineByte() { return fail(.invalidChunkExtension) }
            case .sizeSpace:
                if b == asciiSemicolon {
                    state = .ext
                } else if !isOWS(b) {
                    return fail(.invalidChunkExtension)
                }
                if !countLineByte() { return fail(.invalidChunkExtension) }
            case .ext:
                if b == asciiCR {
                    state = .sizeLF
                } else if b < 0x20 && b != asciiHTAB || b == 0x7F {
                    return fail(.invalidChunkExtension)
                }
                if !countLineByte() { return fail(.invalidChunkExtension) }
            case .sizeLF:
                if b != asciiLF { return fail(.invalidChunkSize) }
                lineBytes = 0
                digits = 0
                state = remaining == 0 ? .trailerStart : .data
            case .dataCR:
                if b != asciiCR { return fail(.invalidChunkDelimiter) }
                state = .dataLF
            case .dataLF:
                if b != asciiLF { return fail(.invalidChunkDelimiter) }
                state = .size
            case .trailerStart:
                if b == asciiCR {
                    state = .finalLF
                } else if isTchar(b) {
                    state = .trailerName
                } else {
                    return fail(.invalidTrailer)  // obs-fold, bare LF, empty name, ...
                }
                if !countTrailerByte() { return fail(.invalidTrailer) }
            case .trailerName:
                if b == asciiColon {
                    state = .trailerValue
                } else if !isTchar(b) {
                    return fail(.invalidTrailer)
                }
                if !countTrailerByte() { return fail(.invalidTrailer) }
            case .trailerValue:
                if b == asciiCR {
                    state = .trailerLF
                } else if b < 0x20 && b != asciiHTAB || b == 0x7F {
                    return fail(.invalidTrailer)
                }
                if !countTrailerByte() { return fail(.invalidTrailer) }
            case .trailerLF:
                if b != asciiLF { return fail(.invalidTrailer) }
                if !countTrailerByte() { return fail(.invalidTrailer) }
                state = .trailerStart
            case .finalLF:
                if b != asciiLF { return fail(.invalidTrailer) }
                state = .done
                return .done(consumed: i)
            case .data, .done, .failed:
                assert(false, "unreachable chunked state")
            }
        }
        return .needMore
    }

    /// Counts one byte of a chunk-size line (CR included); false past `maxLineBytes`.
    @inlinable @inline(__always)
    mutating func countLineByte() -> Bool {
        lineBytes &+= 1
        return lineBytes <= maxLineBytes
    }

    /// Counts one byte of the trailer section; false past `maxTrailerBytes`.
    @inlinable @inline(__always)
    mutating func countTrailerByte() -> Bool {
        lineBytes &+= 1
        return lineBytes <= maxTrailerBytes
    }

    @inlinable
    mutating func fail(_ error: HTTPError) -> ChunkedScan {
        state = .failed
        failure = error
        return .error(error)
    }
}

/// 0–15 for a hex digit, -1 otherwise.
@inlinable @inline(__always)
func hexValue(_ b: UInt8) -> Int {
    if b &- 0x30 <= 9 { return Int(b &- 0x30) }
    let l = b | 0x20
    if l &- 0x61 <= 5 { return Int(l &- 0x61) &+ 10 }
    return -1
}
