#if canImport(Glibc)
import Glibc
#endif
import CSupport
import RouteTable

/// Active health checks (annotation `ingressd.io/health-check`), run once by the supervisor for
/// every endpoint of every cluster that has one — not once per worker. Non-blocking sockets
/// driven by the supervisor's poll loop: one probe in flight per endpoint, each bounded by its
/// timeout, so a dead endpoint costs a socket for at most `timeout` per `interval`.
///
///   idle ──due──► connecting ──POLLOUT ok──► (tcp: success) / (http: request sent) reading
///     ▲                │ error/timeout                                   │ status line / EOF / timeout
///     └──── result ◄───┴─────────────────────────────────────────────────┘
///
/// An endpoint starts healthy (a new configuration does not wait for its first probes); after
/// `unhealthy` consecutive failures it is unhealthy, after `healthy` consecutive successes it is
/// healthy again.
struct HealthChecker {
    struct Probe {
        var id: UInt32
        var cluster: String
        var address: [UInt8]
        var port: UInt16
        var host: String
        var policy: HealthCheckPolicy
        var fd: Int32 = -1
        var reading = false
        var deadlineNs: UInt64 = 0
        var nextNs: UInt64 = 0
        var input: [UInt8] = []
        var successes: UInt32 = 0
        var failures: UInt32 = 0
        var healthy = true
        /// The last result, for /clusters ("HTTP 200", "connect: Connection refused", "timeout").
        var last = "not checked yet"
        var checks: UInt64 = 0
    }

    /// By endpoint id.
    private(set) var probes: [UInt32: Probe] = [:]

    var isEmpty: Bool { probes.isEmpty }

    /// The endpoints to probe in a (new) configuration; the state of endpoints kept by id
    /// carries over, probes of endpoints that are gone are closed.
    mutating func configure(_ spec: TableSpec, nowNs: UInt64) {
        var next: [UInt32: Probe] = [:]
        for c in spec.clusters {
            guard let policy = c.healthCheck else { continue }
            let host = c.name.split(separator: "|", omittingEmptySubsequences: false).last.map(String.init) ?? ""
            for e in c.endpoints {
                if var p = probes.removeValue(forKey: e.id), p.address == e.address, p.port == e.port {
                    p.policy = policy
                    p.host = host
                    next[e.id] = p
                } else {
                    next[e.id] = Probe(id: e.id, cluster: c.name, address: e.address, port: e.port, host: host,
                                       policy: policy, nextNs: nowNs)
                }
            }
        }
        for (_, p) in probes where p.fd >= 0 { close(p.fd) }
        probes = next
    }

    /// Whether active checking says `id` is unhealthy, and why.
    func state(_ id: UInt32) -> Probe? { probes[id] }

    var pollInterest: [(fd: Int32, events: Int16)] {
        probes.values.filter { $0.fd >= 0 }.map { ($0.fd, Int16($0.reading ? POLLIN : POLLOUT)) }
    }

    func owns(_ fd: Int32) -> UInt32? { probes.first { $0.value.fd == fd }?.key }

    /// Starts due probes and fails overdue ones. Returns true when some endpoint changed state.
    mutating func tick(nowNs: UInt64) -> Bool {
        var changed = false
        for id in Array(probes.keys) {
            guard var p = probes[id] else { continue }
            if p.fd >= 0 {
                if nowNs >= p.deadlineNs { changed = finish(&p, ok: false, "timeout after \(msText(p.policy.timeoutMs * 1_000_000))", nowNs: nowNs) || changed }
            } else if nowNs >= p.nextNs {
                changed = start(&p, nowNs: nowNs) || changed
            }
            probes[id] = p
        }
        return changed
    }

    /// Readiness of a probe socket. Returns true when an endpoint changed state.
    mutating func service(id: UInt32, revents: Int16, nowNs: UInt64) -> Bool {
        guard var p = probes[id], p.fd >= 0 else { return false }
        defer { probes[id] = p }
        if !p.reading {
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 { return finish(&p, ok: false, "connect: \(errnoText(err))", nowNs: nowNs) }
            guard case .http(let path) = p.policy.kind else { return finish(&p, ok: true, "connected", nowNs: nowNs) }
            let request = Array("GET \(path) HTTP/1.1\r\nHost: \(p.host)\r\nUser-Agent: ingressd-health-check\r\nConnection: close\r\n\r\n".utf8)
            let n = request.withUnsafeBytes { send(p.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n == request.count else { return finish(&p, ok: false, "send: \(errnoText(ing_errno()))", nowNs: nowNs) }
            p.reading = true
            return false
        }
        var buf = [UInt8](repeating: 0, count: 1024)
        let n = buf.withUnsafeMutableBytes { recv(p.fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            let e = ing_errno()
            if e == EAGAIN || e == EINTR { return false }
            return finish(&p, ok: false, "recv: \(errnoText(e))", nowNs: nowNs)
        }
        if n == 0 { return finish(&p, ok: false, "connection closed before a status line", nowNs: nowNs) }
        p.input += buf[0..<n]
        guard let eol = p.input.firstIndex(of: 0x0A) else {
            if p.input.count > 4096 { return finish(&p, ok: false, "no status line", nowNs: nowNs) }
            return false
        }
        let line = String(decoding: p.input[0..<eol], as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            return finish(&p, ok: false, "not an HTTP response", nowNs: nowNs)
        }
        return finish(&p, ok: (200...299).contains(status), "HTTP \(status)", nowNs: nowNs)
    }

    private func start(_ p: inout Probe, nowNs: UInt64) -> Bool {
        p.input = []
        p.reading = false
        let v6 = p.address.count == 16
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            p.nextNs = nowNs + p.policy.intervalMs * 1_000_000
            p.last = "socket: \(errnoText(ing_errno()))"   // our problem, not the endpoint's: no verdict
            return false
        }
        let address = IPAddress(bytes: p.address)
        let rc = address.withSockaddr(port: p.port) { sa, len in connect(fd, sa, len) }
        p.fd = fd
        p.deadlineNs = nowNs + p.policy.timeoutMs * 1_000_000
        if rc != 0 && ing_errno() != EINPROGRESS {
            return finish(&p, ok: false, "connect: \(errnoText(ing_errno()))", nowNs: nowNs)
        }
        return false   // the result comes through poll (POLLOUT), even for an immediate connect
    }

    /// Records a probe result. Returns true when the endpoint's verdict changed.
    private func finish(_ p: inout Probe, ok: Bool, _ what: String, nowNs: UInt64) -> Bool {
        if p.fd >= 0 { close(p.fd) }
        p.fd = -1
        p.reading = false
        p.input = []
        p.nextNs = nowNs + p.policy.intervalMs * 1_000_000
        p.last = what
        p.checks += 1
        let endpoint = "\(p.cluster) \(IPAddress(bytes: p.address).withPort(p.port))"
        if ok {
            p.successes += 1
            p.failures = 0
            if !p.healthy && p.successes >= p.policy.healthyThreshold {
                p.healthy = true
                Log.info("health check: \(endpoint) is healthy again (\(what))")
                return true
            }
        } else {
            p.failures += 1
            p.successes = 0
            if p.healthy && p.failures >= p.policy.unhealthyThreshold {
                p.healthy = false
                Log.warning("health check: \(endpoint) is unhealthy after \(p.failures) failed check(s) (\(what))")
                return true
            }
        }
        return false
    }
}

extension IPAddress {
    /// From 4 or 16 network-order bytes (a table endpoint's address).
    init(bytes: [UInt8]) {
        self = bytes.count == 16 ? .v6(bytes) : .v4(Array(bytes.prefix(4)))
    }

    /// Calls `body` with a sockaddr for this address and `port`.
    func withSockaddr<R>(port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch self {
        case .v4(let bytes):
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let bytes):
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}
