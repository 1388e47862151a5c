#if canImport(Glibc)
import Glibc
#endif
import CSupport

/// A request to the admin endpoint: only what routing needs.
struct AdminRequest {
    var method: String
    /// Path without the query string.
    var path: String
    var query: String
}

struct AdminResponse {
    var status: Int
    var contentType: String
    var body: String

    static func json(_ body: String, status: Int = 200) -> AdminResponse {
        AdminResponse(status: status, contentType: "application/json", body: body + "\n")
    }
    static func text(_ body: String, status: Int = 200) -> AdminResponse {
        AdminResponse(status: status, contentType: "text/plain; charset=utf-8", body: body)
    }
}

/// The admin endpoint's HTTP/1.1 server (DESIGN.md §7), driven by the supervisor's poll loop:
/// non-blocking sockets, one request per connection, `Connection: close`. It is for probes,
/// operators and scrapers on loopback, not for load: small limits, no keep-alive, no pipelining.
/// The `--readiness` listener is a second instance whose responder knows one path.
///
/// Nobody can hold it down by keeping connections open (any local user can connect): at the
/// connection limit the oldest connection still waiting for its request head is closed to make
/// room (a probe sends its request at once, so it is answered before it could become the oldest),
/// a head must arrive within `headTimeoutNs`, and accepting pauses briefly when the process is
/// out of descriptors instead of polling a listener it cannot accept from.
///
/// Owns the listening socket and every accepted connection. The responder passed to `service`
/// runs synchronously inside it.
struct AdminServer {
    let listenFd: Int32
    let address: IPAddress
    let port: UInt16
    /// "admin" or "readiness", for log lines.
    let name: String
    private var connections: [Int32: Connection] = [:]
    /// Accepting is paused until then (EMFILE/ENFILE); 0 = accepting.
    private var acceptPausedUntilNs: UInt64 = 0
    /// What happened since the last log line about it (`logLimits`, at most one per interval).
    private var evicted = 0
    private var refused = 0
    private var timedOut = 0
    private var acceptFailures = 0
    private var lastAcceptErrno: Int32 = 0
    private var nextLimitLogNs: UInt64 = 0

    /// Request heads larger than this get 431 (our paths are short; anything bigger is junk).
    static let maxRequestBytes = 8 * 1024
    /// Open connections at most; at the limit the oldest one still waiting for its head is
    /// evicted for a new one (a stuck scraper must not eat descriptors, nor lock probes out).
    static let maxConnections = 64
    /// 3 s for the request head: probes and scrapers send theirs at once (kubelet's probe
    /// timeout defaults to 1 s); a slow-loris connection is closed after this.
    static let headTimeoutNs: UInt64 = 3_000_000_000
    /// A connection that has not completed its whole exchange (head and response) in this time
    /// is closed: a scraper that stops reading a big /stats/prometheus.
    static let timeoutNs: UInt64 = 10_000_000_000
    /// How long accepting pauses when the process is out of descriptors.
    static let acceptPauseNs: UInt64 = 250_000_000
    /// One log line per this about evictions, refusals, timeouts and accept failures.
    static let limitLogIntervalNs: UInt64 = 10_000_000_000

    private struct Connection {
        var input: [UInt8] = []
        var output: [UInt8] = []
        var sent = 0
        var openedNs: UInt64
        var responding: Bool { !output.isEmpty }
    }

    /// `name` ("admin", "readiness") names the port in errors and log lines.
    static func open(_ address: IPAddress, port: UInt16, name: String = "admin") -> Result<AdminServer, StartupError> {
        switch makeListeningSocket(address, port: port, ListenOptions(reusePort: false, v6Only: true, backlog: 128)) {
        case .success(let fd):
            return .success(AdminServer(listenFd: fd, address: address, port: boundPort(fd), name: name))
        case .failure(let e):
            let why = e.errno == EADDRINUSE ? "address already in use" : "\(e.call): \(errnoText(e.errno))"
            return .failure(StartupError(description: "cannot listen on \(name) port \(port) (\(address.withPort(port))): \(why)"))
        }
    }

    /// Descriptors and the events the loop must poll for (not the listener while accepting is
    /// paused: it stays readable, and polling it would spin). The listener comes last: the loop
    /// services in this order, so requests that arrived are read before new connections are
    /// accepted (and could evict them).
    var pollInterest: [(fd: Int32, events: Int16)] {
        let conns = connections.map { ($0.key, Int16($0.value.responding ? POLLOUT : POLLIN)) }
        return acceptPausedUntilNs != 0 ? conns : conns + [(listenFd, Int16(POLLIN))]
    }

    /// Whether `fd` is this server's listener or one of its connections.
    func owns(_ fd: Int32) -> Bool { fd == listenFd || connections[fd] != nil }

    /// Handles readiness of one of our descriptors; `responder` builds the answer.
    mutating func service(fd: Int32, revents: Int16, nowNs: UInt64, responder: (AdminRequest) -> AdminResponse) {
        if fd == listenFd {
            acceptAll(nowNs: nowNs, responder: responder)
            return
        }
        guard var c = connections[fd] else { return }
        if revents & Int16(POLLERR | POLLNVAL) != 0 { drop(fd); return }
        if !c.responding {
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    c.input += buf[0..<n]
                    if c.input.count > Self.maxRequestBytes { break }
                    continue
                }
                if n == 0 { drop(fd); return }   // peer closed before a full request
                let e = ing_errno()
                if e == EAGAIN || e == EWOULDBLOCK { break }
                if e == EINTR { continue }
                drop(fd)
                return
            }
            if c.input.count > Self.maxRequestBytes {
                c.output = Self.serialize(.text("request header fields too large\n", status: 431), head: false)
            } else if let end = Self.headEnd(c.input) {
                c.output = Self.answer(head: Array(c.input[0..<end]), responder: responder)
            } else {
                connections[fd] = c
                return
            }
        }
        // Write what we can; finish and close when everything is out.
        while c.sent < c.output.count {
            let n = c.output.withUnsafeBytes { send(fd, $0.baseAddress! + c.sent, $0.count - c.sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { c.sent += n; continue }
            let e = ing_errno()
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) { connections[fd] = c; return }
            drop(fd)
            return
        }
        drop(fd)
    }

    /// Timers, every loop tick: closes connections past their head or exchange timeout, ends
    /// an accept pause, and logs what the limits did (at most once per interval).
    mutating func expire(nowNs: UInt64) {
        for (fd, c) in connections {
            let age = nowNs &- c.openedNs
            if age > Self.timeoutNs || (!c.responding && age > Self.headTimeoutNs) {
                drop(fd)
                timedOut += 1
            }
        }
        if acceptPausedUntilNs != 0 && nowNs >= acceptPausedUntilNs { acceptPausedUntilNs = 0 }
        logLimits(nowNs: nowNs)
    }

    /// Accepts what is queued, at most `maxConnections` per call so that a client connecting
    /// without pause cannot keep the supervisor's loop (signals, heartbeats, the watchdog) from
    /// its other work. Each new connection is read at once: a probe's request is usually there
    /// already and is answered before a burst of other connections could make it the oldest one
    /// waiting (and evict it).
    private mutating func acceptAll(nowNs: UInt64, responder: (AdminRequest) -> AdminResponse) {
        for _ in 0..<Self.maxConnections {
            let fd = accept(listenFd, nil, nil)
            if fd < 0 {
                let e = ing_errno()
                if e == EINTR { return }   // the listener is still readable: next poll
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                    // The connection stays queued; the listener stays readable: stop polling it.
                    acceptPausedUntilNs = nowNs + Self.acceptPauseNs
                    acceptFailures += 1
                    lastAcceptErrno = e
                }
                return   // EAGAIN, or a per-connection error (ECONNABORTED): next poll
            }
            if connections.count >= Self.maxConnections && !evictOldestWaiting() {
                close(fd)   // every connection is busy answering: this one waits for none
                refused += 1
                continue
            }
            setNonBlockingCloexec(fd)
            connections[fd] = Connection(openedNs: nowNs)
            service(fd: fd, revents: Int16(POLLIN), nowNs: nowNs, responder: responder)
        }
    }

    /// Closes the oldest connection that has not sent a complete request head; false when all
    /// are being answered (they finish on their own, within `timeoutNs`).
    private mutating func evictOldestWaiting() -> Bool {
        var oldest: (fd: Int32, openedNs: UInt64)?
        for (fd, c) in connections where !c.responding && c.openedNs < (oldest?.openedNs ?? .max) {
            oldest = (fd, c.openedNs)
        }
        guard let victim = oldest else { return false }
        drop(victim.fd)
        evicted += 1
        return true
    }

    private mutating func logLimits(nowNs: UInt64) {
        guard evicted + refused + timedOut + acceptFailures > 0, nowNs >= nextLimitLogNs else { return }
        var parts: [String] = []
        if evicted > 0 { parts.append("\(evicted) idle connection(s) closed to make room (limit \(Self.maxConnections))") }
        if refused > 0 { parts.append("\(refused) connection(s) refused (\(Self.maxConnections) busy)") }
        if timedOut > 0 { parts.append("\(timedOut) connection(s) timed out") }
        if acceptFailures > 0 {
            parts.append("accept failed \(acceptFailures) time(s): \(errnoText(lastAcceptErrno)), pausing accepts \(Self.acceptPauseNs / 1_000_000) ms at a time")
        }
        // Timeouts alone are routine (a client that connected and went away): debug level.
        let line = "\(name) port \(port): " + parts.joined(separator: "; ")
        if evicted + refused + acceptFailures > 0 { Log.warning(line) } else { Log.debug(line) }
        evicted = 0
        refused = 0
        timedOut = 0
        acceptFailures = 0
        nextLimitLogNs = nowNs + Self.limitLogIntervalNs
    }

    private mutating func drop(_ fd: Int32) {
        connections.removeValue(forKey: fd)
        close(fd)
    }

    /// Index just past "\r\n\r\n" (or "\n\n"), or nil while the head is incomplete.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0A {
                if i + 1 < bytes.count && bytes[i + 1] == 0x0A { return i + 2 }
                if i + 2 < bytes.count && bytes[i + 1] == 0x0D && bytes[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    static func answer(head: [UInt8], responder: (AdminRequest) -> AdminResponse) -> [UInt8] {
        let firstLine = head.prefix { $0 != 0x0D && $0 != 0x0A }
        let parts = firstLine.split(separator: 0x20, omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].starts(with: Array("HTTP/1.".utf8)) else {
            return serialize(.text("bad request\n", status: 400), head: false)
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        var target = String(decoding: parts[1], as: UTF8.self)
        if target.hasPrefix("http://"), let slash = target.dropFirst(7).firstIndex(of: "/") {
            target = String(target[slash...])   // absolute-form
        }
        let q = target.firstIndex(of: "?")
        let path = q.map { String(target[..<$0]) } ?? target
        let query = q.map { String(target[target.index(after: $0)...]) } ?? ""
        guard method == "GET" || method == "HEAD" else {
            return serialize(.text("method not allowed\n", status: 405), head: false)
        }
        return serialize(responder(AdminRequest(method: method, path: path, query: query)), head: method == "HEAD")
    }

    static func serialize(_ r: AdminResponse, head: Bool) -> [UInt8] {
        let body = Array(r.body.utf8)
        var s = "HTTP/1.1 \(r.status) \(reason(r.status))\r\n"
        s += "content-type: \(r.contentType)\r\n"
        s += "content-length: \(body.count)\r\n"
        s += "cache-control: no-cache, max-age=0\r\n"
        s += "connection: close\r\n\r\n"
        return Array(s.utf8) + (head ? [] : body)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}
