#if canImport(Glibc)
import Glibc
#endif
import CSupport

/// A problem that stops start-up (exit 3: a port in use, a missing kernel feature) or, for a
/// listener opened by a reload, rejects that reload. The message names what and why.
public struct StartupError: Error, CustomStringConvertible {
    public var description: String
}

/// The Gateway listening sockets (DESIGN.md §1): for every port, one `SO_REUSEPORT` socket per
/// logical worker index, all created by the supervisor and kept open for its whole life so that
/// a replacement worker inherits the very socket (and accept queue) its predecessor left.
/// Owns every descriptor it holds; `close(port:)` is the only place they are closed.
struct ListenerSet {
    /// Where the ports listen; the default `::` becomes 0.0.0.0 on the first open when the host
    /// has no IPv6.
    private(set) var address: IPAddress
    /// True while `address` is `::` from the default: dual-stack (IPV6_V6ONLY off).
    private var dualStack: Bool
    private let isDefault: Bool
    let perPort: Int
    let backlog: Int32
    /// port → descriptors, index = logical worker index.
    private(set) var sockets: [UInt16: [Int32]] = [:]

    /// `bind` nil = the default: `::` dual-stack, falling back to 0.0.0.0 when the host has no
    /// IPv6. An explicit `::` is dual-stack too; any other address listens on that address only.
    init(bind: IPAddress?, perPort: Int, backlog: Int32) {
        self.isDefault = bind == nil
        self.address = bind ?? .anyV6
        self.dualStack = self.address == .anyV6
        self.perPort = perPort
        self.backlog = backlog
    }

    var ports: [UInt16] { sockets.keys.sorted() }

    /// The descriptors (in `ports` order) that worker `index` serves for `ports`.
    func descriptors(worker index: Int, ports: [UInt16]) -> [(fd: Int32, port: UInt16)] {
        ports.compactMap { p in sockets[p].map { ($0[index], p) } }
    }

    /// Opens `perPort` sockets on `port` (no-op when already open). All or nothing: on error
    /// nothing is left open and the message names the port and the cause.
    mutating func open(port: UInt16) -> StartupError? {
        if sockets[port] != nil { return nil }
        // Probe without SO_REUSEPORT first: a reuseport group of another process of the same
        // user would otherwise silently share the port with us instead of failing.
        switch probe(port) {
        case .failure(let e) where isDefault && address == .anyV6 && (e.errno == EAFNOSUPPORT || e.errno == EADDRNOTAVAIL):
            Log.info("IPv6 is unavailable (\(errnoText(e.errno))); listening on 0.0.0.0 only")
            address = .anyV4
            dualStack = false
            return open(port: port)
        case .failure(let e):
            return explain(e, port: port)
        case .success:
            break
        }
        var fds: [Int32] = []
        for _ in 0..<perPort {
            switch makeListeningSocket(address, port: port, ListenOptions(reusePort: true, v6Only: !dualStack, backlog: backlog)) {
            case .success(let fd):
                fds.append(moveHigh(fd))
            case .failure(let e):
                for fd in fds { Glibc.close(fd) }
                return explain(e, port: port)
            }
        }
        sockets[port] = fds
        Log.info("listening on \(address.withPort(port))\(dualStack ? " (IPv4 and IPv6)" : "") with \(perPort) SO_REUSEPORT socket(s)")
        return nil
    }

    /// Closes every socket of `port` (only once no worker holds them: that resets the queue).
    mutating func close(port: UInt16) {
        guard let fds = sockets.removeValue(forKey: port) else { return }
        for fd in fds { Glibc.close(fd) }
        Log.info("closed listener port \(port)")
    }

    private func probe(_ port: UInt16) -> Result<Void, SocketError> {
        switch makeListeningSocket(address, port: port, ListenOptions(reusePort: false, v6Only: !dualStack, backlog: 1)) {
        case .success(let fd):
            Glibc.close(fd)
            return .success(())
        case .failure(let e):
            return .failure(e)
        }
    }

    private func explain(_ e: SocketError, port: UInt16) -> StartupError {
        let where_ = address.withPort(port)
        switch e.errno {
        case EADDRINUSE:
            return StartupError(description: "cannot listen on port \(port) (\(where_)): address already in use")
        case EACCES, EPERM:
            return StartupError(description: "cannot listen on port \(port) (\(where_)): permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)")
        case EADDRNOTAVAIL:
            return StartupError(description: "cannot listen on port \(port): address \(address) is not configured on this host")
        default:
            return StartupError(description: "cannot listen on port \(port) (\(where_)): \(e.call): \(errnoText(e.errno))")
        }
    }
}
