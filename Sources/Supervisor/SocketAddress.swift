#if canImport(Glibc)
import Glibc
#endif
import CSupport

/// An IP address to bind, parsed from `--bind` / `--admin`. Bytes in network order.
public enum IPAddress: Equatable, Sendable, CustomStringConvertible {
    case v4([UInt8])
    case v6([UInt8])

    /// Accepts an IPv4 literal, an IPv6 literal with or without brackets, or `localhost`
    /// (127.0.0.1). No DNS: a listening address must not depend on a resolver at boot.
    public init?(parsing text: String) {
        var t = text
        if t.hasPrefix("[") && t.hasSuffix("]") { t = String(t.dropFirst().dropLast()) }
        if t == "localhost" { self = .v4([127, 0, 0, 1]); return }
        var v4 = in_addr()
        if inet_pton(AF_INET, t, &v4) == 1 {
            self = .v4(withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, t, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }

    public static let anyV4 = IPAddress.v4([0, 0, 0, 0])
    public static let anyV6 = IPAddress.v6([UInt8](repeating: 0, count: 16))

    public var description: String {
        switch self {
        case .v4(let b): return b.map(String.init).joined(separator: ".")
        case .v6(let b):
            var a = in6_addr()
            withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: b) }
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count)) != nil else { return "?" }
            return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// `ADDR:PORT` with brackets around IPv6.
    public func withPort(_ port: UInt16) -> String {
        switch self {
        case .v4: return "\(self):\(port)"
        case .v6: return "[\(self)]:\(port)"
        }
    }
}

/// `--admin ADDR:PORT`: IPv4 or `localhost` then `:PORT`, or `[IPv6]:PORT`.
public func parseHostPort(_ text: String) -> (IPAddress, UInt16)? {
    guard let colon = text.lastIndex(of: ":") else { return nil }
    let host = String(text[..<colon])
    guard let port = UInt16(text[text.index(after: colon)...]) else { return nil }
    if host.contains(":") && !host.hasPrefix("[") { return nil }   // IPv6 needs brackets here
    guard let address = IPAddress(parsing: host) else { return nil }
    return (address, port)
}

/// Why a listening socket could not be made: the failing call and its errno.
struct SocketError: Error {
    var call: String
    var errno: Int32
}

/// Options of one listening socket.
struct ListenOptions {
    var reusePort: Bool
    /// IPv6 only: false makes `::` accept IPv4 too (mapped addresses).
    var v6Only: Bool = true
    var backlog: Int32
}

/// Creates a non-blocking, close-on-exec TCP socket bound to `address:port` and listening.
/// The caller owns the returned descriptor. `SO_REUSEADDR` is always set so a restart does not
/// wait for TIME_WAIT sockets of the previous process.
func makeListeningSocket(_ address: IPAddress, port: UInt16, _ options: ListenOptions) -> Result<Int32, SocketError> {
    let family: Int32
    switch address {
    case .v4: family = AF_INET
    case .v6: family = AF_INET6
    }
    let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(SocketError(call: "socket", errno: ing_errno())) }
    func fail(_ call: String) -> Result<Int32, SocketError> {
        let e = ing_errno()
        close(fd)
        return .failure(SocketError(call: call, errno: e))
    }
    var one: Int32 = 1
    guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4) == 0 else { return fail("setsockopt(SO_REUSEADDR)") }
    if options.reusePort {
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, 4) == 0 else { return fail("setsockopt(SO_REUSEPORT)") }
    }
    let rc: Int32
    switch address {
    case .v4(let bytes):
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: bytes) }
        rc = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    case .v6(let bytes):
        var v6only: Int32 = options.v6Only ? 1 : 0
        guard setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6only, 4) == 0 else { return fail("setsockopt(IPV6_V6ONLY)") }
        var sa = sockaddr_in6()
        sa.sin6_family = sa_family_t(AF_INET6)
        sa.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: bytes) }
        rc = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    }
    guard rc == 0 else { return fail("bind") }
    guard listen(fd, options.backlog) == 0 else { return fail("listen") }
    return .success(fd)
}

/// The port a socket is bound to (for `--admin ...:0`).
func boundPort(_ fd: Int32) -> UInt16 {
    var ss = sockaddr_storage()
    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let ok = withUnsafeMutablePointer(to: &ss) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    guard ok == 0 else { return 0 }
    return withUnsafeBytes(of: &ss) { raw in
        // sin_port and sin6_port are both at offset 2, network order.
        UInt16(raw[2]) << 8 | UInt16(raw[3])
    }
}

/// `/proc/sys/net/core/somaxconn`: the kernel caps `listen`'s backlog there anyway, and asking
/// for exactly that keeps bursts of connections queued instead of refused. 4096 (the kernel's
/// default since 5.4) when the file cannot be read.
func systemBacklog() -> Int32 {
    guard let f = fopen("/proc/sys/net/core/somaxconn", "r") else { return 4096 }
    defer { fclose(f) }
    var buf = [CChar](repeating: 0, count: 32)
    guard fgets(&buf, 32, f) != nil else { return 4096 }
    let text = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).trimmingWhitespace()
    guard let v = Int32(text), v > 0 else { return 4096 }
    return v
}

/// Moves a descriptor to number ≥ `floor` (close-on-exec), closing the original. Descriptors
/// handed to workers live there so that the spawn file actions `dup2(src, 3…)` never overwrite a
/// source that a later action still needs. Returns the original on failure (still usable).
func moveHigh(_ fd: Int32, floor: Int32 = 100) -> Int32 {
    guard fd < floor else { return fd }
    let high = ing_fcntl_int(fd, F_DUPFD_CLOEXEC, floor)
    guard high >= 0 else { return fd }
    close(fd)
    return high
}

/// Sets O_NONBLOCK and FD_CLOEXEC (accept(2) without accept4, which the Glibc module lacks).
func setNonBlockingCloexec(_ fd: Int32) {
    _ = ing_fcntl_int(fd, F_SETFL, ing_fcntl(fd, F_GETFL) | O_NONBLOCK)
    _ = ing_fcntl_int(fd, F_SETFD, FD_CLOEXEC)
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\n" || c == "\t" || c == "\r" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" || c == "\r" { s.removeLast() }
        return String(s)
    }
}
