/// Appends bytes to a caller-provided output buffer and remembers whether anything did not
/// fit. Once one append overflows, the rest are dropped and `result` is nil: serializers write
/// whole messages or nothing the caller may send.
@usableFromInline
struct ByteWriter {
    @usableFromInline let base: UnsafeMutableRawPointer?
    @usableFromInline let capacity: Int
    @usableFromInline var count = 0
    @usableFromInline var overflowed = false

    @inlinable
    init(_ out: UnsafeMutableRawBufferPointer) {
        base = out.baseAddress
        capacity = out.count
    }

    /// Bytes written, or nil when the output buffer was too small.
    @inlinable var result: Int? { overflowed ? nil : count }

    @inlinable @inline(__always)
    mutating func append(_ src: UnsafeRawPointer?, _ n: Int) {
        guard n > 0 else { return }
        guard !overflowed, let base, let src, n <= capacity &- count else {
            overflowed = true
            return
        }
        // SAFETY: n <= capacity - count keeps the copy inside the output buffer; the source
        // range was validated by the caller (it comes from a parse of that buffer).
        (base + count).copyMemory(from: src, byteCount: n)
        count &+= n
    }

    @inlinable @inline(__always)
    mutating func append(_ s: StaticString) {
        append(UnsafeRawPointer(s.utf8Start), s.utf8CodeUnitCount)
    }

    @inlinable @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        append(bytes.baseAddress, bytes.count)
    }

    /// Appends `source[range]`.
    @inlinable @inline(__always)
    mutating func append(_ range: ByteRange, of source: UnsafeRawPointer) {
        append(source + Int(range.start), Int(range.count))
    }

    /// Appends a non-negative integer in decimal.
    @inlinable
    mutating func appendDecimal(_ value: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: enough for Int.max
        var v = UInt(max(value, 0))
        withUnsafeMutableBytes(of: &digits) { d in
            var i = d.count
            repeat {
                i &-= 1
                d[i] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
                v /= 10
            } while v != 0
            append(UnsafeRawPointer(d.baseAddress! + i), d.count &- i)
        }
    }
}
