#if canImport(Glibc)
import Glibc
#endif
import CSupport

/// sd_notify(3) without libsystemd: one datagram per message to the AF_UNIX socket named by
/// `NOTIFY_SOCKET` (a path, or an abstract name when it starts with '@'). Inert when the
/// variable is unset (not started by systemd with Type=notify).
///
/// Messages used (DESIGN.md §6): READY=1 once every worker accepts; RELOADING=1 with
/// MONOTONIC_USEC before a reload and READY=1 after; STOPPING=1 on drain; WATCHDOG=1 every half
/// WATCHDOG_USEC; STATUS= for `systemctl status`.
struct SystemdNotifier {
    private let fd: Int32
    private var address = sockaddr_un()
    private var addressLength = socklen_t(0)
    /// Half of WATCHDOG_USEC (systemd's advice), or nil when the watchdog is off.
    let watchdogIntervalNs: UInt64?

    var enabled: Bool { fd >= 0 }

    init() {
        var wd: UInt64?
        if let w = getenv("WATCHDOG_USEC"), let usec = UInt64(String(cString: w)), usec > 0 {
            // WATCHDOG_PID, when set, must be us; otherwise the watchdog belongs to another process.
            if let p = getenv("WATCHDOG_PID"), Int32(String(cString: p)) != getpid() {
                wd = nil
            } else {
                wd = usec * 1000 / 2
            }
        }
        watchdogIntervalNs = wd
        guard let raw = getenv("NOTIFY_SOCKET") else { fd = -1; return }
        var path = Array(String(cString: raw).utf8)
        let maxPath = MemoryLayout.size(ofValue: address.sun_path)
        guard !path.isEmpty, path.count < maxPath, path[0] == UInt8(ascii: "/") || path[0] == UInt8(ascii: "@") else {
            Log.warning("NOTIFY_SOCKET is not a usable socket address; not notifying systemd")
            fd = -1
            return
        }
        let abstract = path[0] == UInt8(ascii: "@")
        if abstract { path[0] = 0 }   // abstract namespace: leading NUL, no terminator
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        addressLength = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1))
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { Log.warning("cannot create the sd_notify socket: \(errnoText(ing_errno()))") }
    }

    /// Sends `lines` (joined by newlines) as one datagram. Failures are logged at debug level:
    /// systemd going away must never stop the gateway.
    func notify(_ lines: String...) {
        guard fd >= 0 else { return }
        let message = Array(lines.joined(separator: "\n").utf8)
        var addr = address
        let n = message.withUnsafeBytes { buf in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL), $0, addressLength)
                }
            }
        }
        if n < 0 { Log.debug("sd_notify failed: \(errnoText(ing_errno()))") }
    }

    /// CLOCK_MONOTONIC in µs, as RELOADING=1 wants it (Type=notify-reload, systemd 253+).
    static func monotonicUsec() -> UInt64 { monotonicNs() / 1000 }
}
