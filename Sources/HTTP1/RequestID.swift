/// Formats 16 random bytes as a lowercase UUID version 4 (8-4-4-4-12 hex digits, 36 bytes)
/// into `out`, the form Envoy uses for a generated x-request-id. The version nibble (byte 6)
/// and the variant bits (byte 8) are overwritten, as RFC 9562 §5.4 requires; the other 122
/// bits are the caller's. Returns 36, or nil when `random` is shorter than 16 bytes or `out`
/// shorter than 36.
@inlinable
public func formatUUID(random: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int? {
    guard random.count >= 16, out.count >= 36, let src = random.baseAddress, let dst = out.baseAddress
    else { return nil }
    let hex: StaticString = "0123456789abcdef"
    let digits = UnsafeRawPointer(hex.utf8Start)
    var o = 0
    for i in 0..<16 {
        var b = src.load(fromByteOffset: i, as: UInt8.self)
        if i == 6 { b = b & 0x0F | 0x40 }
        if i == 8 { b = b & 0x3F | 0x80 }
        if i == 4 || i == 6 || i == 8 || i == 10 {
            dst.storeBytes(of: 0x2D, toByteOffset: o, as: UInt8.self)  // '-'
            o &+= 1
        }
        dst.storeBytes(of: digits.load(fromByteOffset: Int(b >> 4), as: UInt8.self), toByteOffset: o, as: UInt8.self)
        dst.storeBytes(of: digits.load(fromByteOffset: Int(b & 0x0F), as: UInt8.self), toByteOffset: o &+ 1, as: UInt8.self)
        o &+= 2
    }
    return 36
}
