// Byte classes and word-at-a-time scans shared by the parsers (RFC 9110 §5.6.2, RFC 9112 §2).
// Everything here reads through raw pointers whose bounds the caller has already checked.

@usableFromInline let asciiCR: UInt8 = 0x0D
@usableFromInline let asciiLF: UInt8 = 0x0A
@usableFromInline let asciiSP: UInt8 = 0x20
@usableFromInline let asciiHTAB: UInt8 = 0x09
@usableFromInline let asciiColon: UInt8 = 0x3A
@usableFromInline let asciiComma: UInt8 = 0x2C
@usableFromInline let asciiSemicolon: UInt8 = 0x3B

/// tchar (RFC 9110 §5.6.2) as a 128-bit set: bit b of `tcharLow` is byte b (0–63), bit b of
/// `tcharHigh` is byte 64+b. Two constants instead of a 256-byte table: no global to load, no
/// lazy initialisation, and the test is a shift and a mask.
@usableFromInline let tcharLow: UInt64 = 0x03FF_6CFA_0000_0000
@usableFromInline let tcharHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE

@inlinable @inline(__always)
func isTchar(_ b: UInt8) -> Bool {
    if b < 64 { return (tcharLow >> UInt64(b)) & 1 != 0 }
    if b < 128 { return (tcharHigh >> UInt64(b &- 64)) & 1 != 0 }
    return false
}

@inlinable @inline(__always)
func isOWS(_ b: UInt8) -> Bool { b == asciiSP || b == asciiHTAB }

@inlinable @inline(__always)
func byte(_ p: UnsafeRawPointer, _ i: Int) -> UInt8 {
    p.load(fromByteOffset: i, as: UInt8.self)
}

@usableFromInline let ones64: UInt64 = 0x0101_0101_0101_0101
@usableFromInline let highs64: UInt64 = 0x8080_8080_8080_8080

/// Offset of the first LF in `p[from..<end]`, or `end` when there is none.
/// Eight bytes per step: the lowest byte flagged by the classic "has zero byte" test on
/// `word ^ 0x0A..` is always a true LF (false positives only occur above a true one).
@inlinable
func findLF(_ p: UnsafeRawPointer, from: Int, end: Int) -> Int {
    var i = from
    while i &+ 8 <= end {
        let w = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        let x = w ^ (ones64 &* UInt64(asciiLF))
        let t = (x &- ones64) & ~x & highs64
        if t != 0 { return i &+ (t.trailingZeroBitCount >> 3) }
        i &+= 8
    }
    while i < end {
        if byte(p, i) == asciiLF { return i }
        i &+= 1
    }
    return end
}

/// Offset of the first byte in `p[from..<end]` that is a CTL (0x00–0x1F) or DEL, or `end`.
/// Field values are mostly VCHAR, so this skips eight clean bytes per step; obs-text
/// (0x80–0xFF) never stops it.
@inlinable
func findControl(_ p: UnsafeRawPointer, from: Int, end: Int) -> Int {
    var i = from
    while i &+ 8 <= end {
        let w = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        // Bytes below 0x20 (bytes >= 0x80 are excluded by `~w`).
        let below = (w &- (ones64 &* 0x20)) & ~w & highs64
        // Bytes equal to 0x7F.
        let x = w ^ (ones64 &* 0x7F)
        let del = (x &- ones64) & ~x & highs64
        let t = below | del
        if t != 0 { return i &+ (t.trailingZeroBitCount >> 3) }
        i &+= 8
    }
    while i < end {
        let b = byte(p, i)
        if b < 0x20 || b == 0x7F { return i }
        i &+= 1
    }
    return end
}

/// True when `p[start..<start+count]` equals `lower` ignoring ASCII case. `lower` must be
/// lowercase letters, digits and '-'; the `| 0x20` fold is exact for such literals when the
/// compared bytes are tchar (no other tchar folds onto a letter, digit or '-').
@inlinable @inline(__always)
func equalsLowercase(_ p: UnsafeRawPointer, _ start: Int, _ count: Int, _ lower: StaticString) -> Bool {
    if count != lower.utf8CodeUnitCount { return false }
    let l = UnsafeRawPointer(lower.utf8Start)
    var i = 0
    while i < count {
        if byte(p, start &+ i) | 0x20 != byte(l, i) { return false }
        i &+= 1
    }
    return true
}

/// Case-insensitive comparison of two byte ranges (ASCII only; used for Connection tokens
/// against field names, both tchar).
@inlinable
func equalsIgnoringCase(_ p: UnsafeRawPointer, _ a: Int, _ b: Int, _ count: Int) -> Bool {
    var i = 0
    while i < count {
        var x = byte(p, a &+ i), y = byte(p, b &+ i)
        if x >= 0x41 && x <= 0x5A { x |= 0x20 }
        if y >= 0x41 && y <= 0x5A { y |= 0x20 }
        if x != y { return false }
        i &+= 1
    }
    return true
}
