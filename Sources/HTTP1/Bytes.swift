// Byte classes and word-at-a-time scans shared by the parsers (RFC 9110 §5.6.2, RFC 9112 §2).
// Everything here reads through raw pointers whose bounds the caller has already checked.

@usableFromInline let asciiCR: UInt8 = 0x0D
@usableFromInline let asciiLF: UInt8 = 0x0A
@usableFromInline let asciiSP: UInt8 = 0x20
@usableFromInline let asciiHTAB: UInt8 = 0x09
@usableFromInline let asciiColon: UInt8 = 0x3A
@usableFromInline let asciiComma: UInt8 = 0x2C
@usableFromInline let asciiSemicolon: UInt8 = 0x3B

/// tchar (RFC 9110 §5.6.2) as a 128-byte table: byte b is 1 when b is a tchar. A
/// `StaticString` lives in the binary's read-only data, so a lookup is one load (no lazy
/// global, no bounds check); the `b < 0x80` test keeps the index inside it. Measured: the
/// name scan went from 12 to 5 instructions per byte against a two-word bit set.
@usableFromInline let tcharTable: StaticString =
    "\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{1}\u{0}\u{1}\u{1}\u{1}\u{1}\u{1}\u{0}\u{0}\u{1}\u{1}\u{0}\u{1}\u{1}\u{0}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{0}\u{0}\u{0}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{0}\u{1}\u{0}\u{1}\u{0}"

@inlinable @inline(__always)
func isTchar(_ b: UInt8) -> Bool {
    b < 0x80 && UnsafeRawPointer(tcharTable.utf8Start).load(fromByteOffset: Int(b), as: UInt8.self) != 0
}

/// The bytes an authority (`uri-host [":" port]`, RFC 3986 §3.2.2) can hold: ALPHA DIGIT
/// `-._~` `%` sub-delims `:` `[` `]` — the set Envoy checks Host against (nghttp2's
/// `check_authority`). A 128-byte table like `tcharTable` (one load per byte; a two-word bit set
/// cost 15 instructions per byte here).
@usableFromInline let authorityTable: StaticString =
    "\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{1}\u{0}\u{0}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{0}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{0}\u{1}\u{0}\u{0}\u{0}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{0}\u{1}\u{0}\u{1}\u{0}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{0}\u{0}\u{0}\u{1}\u{0}"

/// True when every byte of `p[start..<end]` may appear in an authority (empty is valid: an
/// HTTP/1.1 request whose target has no authority sends `Host:` empty, RFC 9112 §3.2).
@inlinable
func isValidAuthority(_ p: UnsafeRawPointer, _ start: Int, _ end: Int) -> Bool {
    let table = UnsafeRawPointer(authorityTable.utf8Start)
    var i = start
    while i < end {
        let b = byte(p, i)
        if b >= 0x80 || table.load(fromByteOffset: Int(b), as: UInt8.self) == 0 { return false }
        i &+= 1
    }
    return true
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
@inlinable @inline(__always)
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
/// Compares eight bytes at a time (the last word overlapping the previous one), so a
/// mismatch usually costs one load and one compare.
@inlinable @inline(__always)
func equalsLowercase(_ p: UnsafeRawPointer, _ start: Int, _ count: Int, _ lower: StaticString) -> Bool {
    if count != lower.utf8CodeUnitCount { return false }
    let l = UnsafeRawPointer(lower.utf8Start)
    let s = p + start
    if count >= 8 {
        let fold = ones64 &* 0x20
        var i = 0
        while true {
            let a = s.loadUnaligned(fromByteOffset: i, as: UInt64.self) | fold
            if a != l.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            if i &+ 8 == count { return true }
            i = min(i &+ 8, count &- 8)
        }
    }
    if count >= 4 {
        let fold: UInt32 = 0x2020_2020
        return s.loadUnaligned(as: UInt32.self) | fold == l.loadUnaligned(as: UInt32.self)
            && s.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self) | fold
                == l.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
    }
    var i = 0
    while i < count {
        if byte(s, i) | 0x20 != byte(l, i) { return false }
        i &+= 1
    }
    return true
}

/// True when the `lower.count` bytes at `p` equal `lower` (a lower-case name from the route
/// table) with ASCII letters of `p` folded to lower case. Header edits only: a byte loop,
/// names are short and there are few edits.
@inlinable @inline(__always)
func equalsLowercase(_ p: UnsafeRawPointer, _ lower: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    while i < lower.count {
        var c = byte(p, i)
        if c >= 0x41 && c <= 0x5A { c |= 0x20 }
        if c != lower[i] { return false }
        i &+= 1
    }
    return true
}

/// Offset of the first byte in `p[from..<end]` that ends or splits a request-target: a CTL,
/// SP, DEL, '#' or '?'; `end` when there is none. Eight bytes per step, like `findLF`.
@inlinable @inline(__always)
func findTargetDelimiter(_ p: UnsafeRawPointer, from: Int, end: Int) -> Int {
    var i = from
    while i &+ 8 <= end {
        let w = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        let below = (w &- (ones64 &* 0x21)) & ~w & highs64  // <= 0x20
        let d = w ^ (ones64 &* 0x7F), h = w ^ (ones64 &* 0x23), q = w ^ (ones64 &* 0x3F)
        let t = below | ((d &- ones64) & ~d) | ((h &- ones64) & ~h) | ((q &- ones64) & ~q)
        let hit = t & highs64
        if hit != 0 { return i &+ (hit.trailingZeroBitCount >> 3) }
        i &+= 8
    }
    while i < end {
        let b = byte(p, i)
        if b <= asciiSP || b == 0x7F || b == 0x23 || b == 0x3F { return i }
        i &+= 1
    }
    return end
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
