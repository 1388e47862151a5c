import COpenSSL
import SharedMemory

// TLS session-ticket keys (issue 8). The supervisor makes them and publishes them in shared
// memory (RegionHeader.ticketKeys); every worker's TLS contexts encrypt tickets with the
// current key and accept the current and the previous one, so a client resumes on whichever
// worker accepts its next connection, and across reloads. Keys live only in memory: a restart
// of ingressd starts with new ones (clients then do one full handshake), as Envoy without
// configured ticket keys does.

extension Supervisor {
    /// How often a new current key is made. A ticket stays usable for one more period (the
    /// previous key), at most OpenSSL's ticket lifetime (2 h) in practice.
    static let ticketKeyRotationNs: UInt64 = 12 * 3600 * 1_000_000_000

    /// Makes a new current key (the old current becomes the previous one).
    func rotateTicketKeys(nowNs: UInt64) {
        let shared = region.ticketKeys.assumingMemoryBound(to: ing_ticket_keys.self)
        var keys = [ing_ticket_key](repeating: ing_ticket_key(), count: 2)
        _ = ing_ticket_keys_read(shared, &keys)   // false on the first call: zeros
        keys[1] = keys[0]
        var fresh = ing_ticket_key()
        let ok = withUnsafeMutableBytes(of: &fresh) { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32($0.count)) == 1 }
        guard ok else {
            Log.error("TLS session tickets: no random bytes for a new key (\(openSSLError())); keeping the current one")
            nextTicketRotationNs = nowNs + 60_000_000_000
            return
        }
        keys[0] = fresh
        ing_ticket_keys_write(shared, keys)
        nextTicketRotationNs = nowNs + Self.ticketKeyRotationNs
    }
}

/// The oldest error on OpenSSL's queue as text (the queue is cleared).
func openSSLError() -> String {
    let e = ERR_get_error()
    ERR_clear_error()
    var buf = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(e, &buf, buf.count)
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
