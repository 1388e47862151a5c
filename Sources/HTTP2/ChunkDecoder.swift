// Takes the framing off a chunked HTTP/1.1 body (RFC 9112 §7.1) so that its data can travel
// in HTTP/2 DATA frames. The bytes were already checked by the HTTP1 ChunkedScanner on the
// connection they came from, so this decoder only follows the structure: sizes, extensions
// and the trailer section are skipped, data is copied out.
//
//   size (─ext─► sizeExt) ──LF (size > 0)──► data ──n bytes──► dataEnd ──LF──► size
//     └──LF (size == 0)──► trailers ──empty line──► done

public struct ChunkDecoder {
    enum State: UInt8, Sendable { case size, sizeExt, data, dataEnd, trailerLine, trailerStart, done }

    var state: State = .size
    var remaining: Int64 = 0
    /// The trailer line being read has bytes other than CR (so it is not the empty line).
    var lineHasBytes = false
    /// Where the trailer section goes (`name: value\r\n` lines), when the caller gave room:
    /// `decode` stops at the first trailer byte while there is none (`wantsTrailerSink`).
    public var trailerSink: UnsafeMutableRawPointer? = nil
    public var trailerCapacity = 0
    public var trailerCount = 0
    /// Trailer bytes that did not fit the sink (dropped).
    public var trailersTruncated = false
    public private(set) var wantsTrailerSink = false

    /// Gives the decoder room for the trailer section.
    public mutating func setTrailerSink(_ p: UnsafeMutableRawPointer, capacity: Int) {
        trailerSink = p
        trailerCapacity = capacity
        wantsTrailerSink = false
    }

    public init() {}

    public var isDone: Bool { state == .done }

    /// Decodes from `input` into `output`: returns the input bytes consumed and the data bytes
    /// written. Stops when the output is full, the input is used up, or the body ended.
    public mutating func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> (consumed: Int, produced: Int) {
        var i = 0
        var o = 0
        let n = input.count
        while i < n && state != .done {
            switch state {
            case .size:
                let b = input[i]
                i += 1
                if let v = hexValue(b) {
                    remaining = remaining &* 16 &+ Int64(v)
                } else if b == 0x0A {
                    state = remaining > 0 ? .data : .trailerStart
                } else {
                    state = .sizeExt   // ';' extensions, spaces and CR: skipped up to the LF
                }
            case .sizeExt:
                if input[i] == 0x0A { state = remaining > 0 ? .data : .trailerStart }
                i += 1
            case .data:
                let room = output.count - o
                if room == 0 { return (i, o) }
                let k = Int(min(Int64(min(n - i, room)), remaining))
                (output.baseAddress! + o).copyMemory(from: input.baseAddress! + i, byteCount: k)
                i += k
                o += k
                remaining -= Int64(k)
                if remaining == 0 { state = .dataEnd }
            case .dataEnd:
                if input[i] == 0x0A { state = .size; remaining = 0 }
                i += 1
            case .trailerStart, .trailerLine:
                let b = input[i]
                if trailerSink == nil && state == .trailerStart && b != 0x0D && b != 0x0A {
                    wantsTrailerSink = true   // the caller gives a sink and calls again
                    return (i, o)
                }
                i += 1
                if let sink = trailerSink, state == .trailerLine || (b != 0x0D && b != 0x0A) {
                    if trailerCount < trailerCapacity {
                        sink.storeBytes(of: b, toByteOffset: trailerCount, as: UInt8.self)
                        trailerCount += 1
                    } else {
                        trailersTruncated = true
                    }
                }
                if b == 0x0A {
                    if state == .trailerStart || !lineHasBytes { state = .done } else { state = .trailerStart }
                    lineHasBytes = false
                } else if b != 0x0D {
                    lineHasBytes = true
                    state = .trailerLine
                }
            case .done:
                break
            }
        }
        return (i, o)
    }

    @inline(__always)
    private func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x61...0x66: return b - 0x61 + 10
        case 0x41...0x46: return b - 0x41 + 10
        default: return nil
        }
    }
}
