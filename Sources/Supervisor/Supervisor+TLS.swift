import COpenSSL
import CSupport
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

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

extension Supervisor {
    /// Whether the kernel offers kernel TLS (the `tls` upper-layer protocol), probed once on a
    /// loopback connection (ULPs attach only to established sockets): nil when it does, else
    /// why not. kTLS hand-off is not implemented yet; the log says which path serves HTTPS.
    static func probeKernelTLS() -> String? {
        let l = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(l); close(c) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let connected = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(l, $0, len) == 0 && listen(l, 1) == 0 && getsockname(l, $0, &len) == 0 && connect(c, $0, len) == 0
            }
        }
        guard connected else { return "no loopback connection to probe with (\(errnoText(ing_errno())))" }
        let a = accept(l, nil, nil)
        defer { if a >= 0 { close(a) } }
        let rc = "tls".withCString { setsockopt(c, Int32(IPPROTO_TCP), 31 /* TCP_ULP */, $0, 3) }
        return rc == 0 ? nil : "setsockopt(TCP_ULP, \"tls\"): \(errnoText(ing_errno()))"
    }

    /// Says once, at start, how HTTPS is encrypted on this machine (when a port serves TLS).
    func logTLSPath() {
        guard config.spec.listeners.contains(where: { !$0.tlsServers.isEmpty && $0.tlsServers.contains { $0.mode != .passthrough } }) else { return }
        if let why = Self.probeKernelTLS() {
            Log.info("TLS: no kernel TLS here (\(why)); HTTPS is encrypted in user space by OpenSSL, bodies copied, not spliced")
        } else {
            Log.info("TLS: the kernel offers kernel TLS, but ingressd does not hand keys to it yet; HTTPS is encrypted in user space by OpenSSL")
        }
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
