// user_data layout of every SQE the proxy submits (STYLE.md: the index, not an object).
//
//   bits  0..7   Op            what completed
//   bits  8..39  index         connection slot (or listener index for .accept)
//   bits 40..63  generation    low 24 bits of the slot's generation when submitted; a
//                              completion whose generation differs is stale (defensive: a
//                              slot is reused only after all its ops completed)

@usableFromInline
enum Op: UInt8 {
    case accept = 1
    /// Receive on a downstream (client) connection.
    case downRecv = 2
    case downSend = 3
    case upConnect = 4
    case upRecv = 5
    case upSend = 6
    /// Completions we do not act on (cancel requests).
    case ignore = 7
    /// An access-log write (AccessLog.swift); index and generation unused.
    case logWrite = 8
    /// Splice path (Engine+Splice.swift): POLLIN on the slot's socket (it is a source).
    case pollIn = 9
    /// Splice path: POLLOUT on the slot's socket (it is a destination).
    case pollOut = 10
    /// A receive served from OpenSSL's buffers (a NOP; Engine+TLS.swift).
    case tlsPending = 11
    /// An HTTP/2 stream's buffered request body is handed to its session (a NOP).
    case h2Pending = 12
    /// Receive on an upstream connection into a bulk buffer (`Conn.bulkRecv`), not a ring
    /// buffer: a response body for a TLS client (Engine+Upstream.swift).
    case upRecvBulk = 13
}

@inline(__always)
func packUserData(_ op: Op, _ index: Int32, _ generation: UInt32) -> UInt64 {
    UInt64(op.rawValue) | (UInt64(UInt32(bitPattern: index)) << 8) | (UInt64(generation & 0xFF_FFFF) << 40)
}

@inline(__always)
func unpackUserData(_ v: UInt64) -> (op: UInt8, index: Int32, generation: UInt32) {
    (UInt8(truncatingIfNeeded: v), Int32(bitPattern: UInt32(truncatingIfNeeded: v >> 8)), UInt32(truncatingIfNeeded: v >> 40))
}
