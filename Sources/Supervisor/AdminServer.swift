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
///
/// Owns the listening socket and every accepted connection. The responder passed to `service`
/// runs synchronously inside it.
struct AdminServer {
    let listenFd: Int32
    let address: IPAddress
    let port: UInt16
    private var connections: [Int32: Connection] = [:]

    /// Request heads larger than this get 431 (our paths are short; anything bigger is junk).
    static let maxRequestBytes = 8 * 1024
    /// Connections beyond this are closed at once: a stuck scraper must not eat descriptors.
    static let maxConnections = 64
    /// A connection that has not completed its exchange in this time is closed.
    static let timeoutNs: UInt64 = 5_000_000_000

    private struct Connection {
        var input: [UInt8] = []
        var output: [UInt8] = []
        var sent = 0
        var openedNs: UInt64
        var responding: Bool { !output.isEmpty }
    }

    static func open(_ address: IPAddress, port: UInt16) -> Result<AdminServer, StartupError> {
        switch makeListeningSocket(address, port: port, ListenOptions(reusePort: false, v6Only: true, backlog: 128)) {
        case .success(let fd):
            return .success(AdminServer(listenFd: fd, address: address, port: boundPort(fd)))
        case .failure(let e):
            let why = e.errno == EADDRINUSE ? "address already in use" : "\(e.call): \(errnoText(e.errno))"
            return .failure(StartupError(description: "cannot listen on admin port \(port) (\(address.withPort(port))): \(why)"))
        }
    }

    /// Descriptors and the events the loop must poll for.
    var pollInterest: [(fd: Int32, events: Int16)] {
        [(listenFd, Int16(POLLIN))] + connections.map { ($0.key, Int16($0.value.responding ? POLLOUT : POLLIN)) }
    }

    /// Handles readiness of one of our descriptors; `responder` builds the answer.
    mutating func service(fd: Int32, revents: Int16, nowNs: UInt64, responder: (AdminRequest) -> AdminResponse) {
        if fd == listenFd {
            acceptAll(nowNs: nowNs)
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

    /// Closes connections that have been open too long.
    mutating func expire(nowNs: UInt64) {
        for (fd, c) in connections where nowNs &- c.openedNs > Self.timeoutNs { drop(fd) }
    }

    private mutating func acceptAll(nowNs: UInt64) {
        while true {
            let fd = accept(listenFd, nil, nil)
            if fd < 0 {
                if ing_errno() == EINTR { continue }
                return   // EAGAIN, or a transient error (EMFILE, ECONNABORTED): retry on next poll
            }
            guard connections.count < Self.maxConnections else {
                close(fd)
                Log.warning("admin: too many connections, refusing one")
                continue
            }
            setNonBlockingCloexec(fd)
            connections[fd] = Connection(openedNs: nowNs)
        }
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
