// Drives one ProxyEngine in the test process, the way a worker's loop does, with a clock the
// test moves: a real io_uring ring, a shared region with a published route table, a listening
// socket the engine accepts on, and an "upstream" listening socket the test itself accepts and
// answers on, all on loopback. Everything is non-blocking and single-threaded: the test pumps
// the engine between its own socket operations, so every interleaving (a client closing while its
// request is upstream, an upstream closing before answering) is scripted, not raced.

import CSupport
import CURing
@testable import Proxy
import RouteTable
import SharedMemory
import URing
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class EngineHarness {
    var engine: ProxyEngine
    let region: SharedRegion
    let listenFd: Int32
    let listenPort: UInt16
    /// Listening sockets the test plays upstream on (one per endpoint).
    let upstreamFds: [Int32]
    let upstreamPorts: [UInt16]
    /// Added to the real monotonic clock: timers fire when the test moves it.
    var clockOffsetNs: UInt64 = 0
    private let cqes = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: 256)

    /// `routes` builds the route table given the upstream ports; `upstreams` listening sockets
    /// are opened first (a port in `deadUpstreams` is reserved and closed: nothing listens).
    init(upstreams: Int = 1, deadUpstreams: Int = 0, limits: ProxyLimits = ProxyLimits(),
         routes: ([UInt16]) -> TableSpec) throws {
        var fds: [Int32] = []
        var ports: [UInt16] = []
        for _ in 0..<upstreams {
            let (fd, port) = try EngineHarness.listen()
            fds.append(fd)
            ports.append(port)
        }
        for _ in 0..<deadUpstreams {
            let (fd, port) = try EngineHarness.listen()
            close(fd)
            ports.append(port)
        }
        upstreamFds = fds
        upstreamPorts = ports
        let (lfd, lport) = try EngineHarness.listen()
        listenFd = lfd
        listenPort = lport
        region = try SharedRegion.create(maxWorkers: 1, tableSlotBytes: 1 << 20, healthCapacity: 64)
        var spec = routes(ports)
        spec.listeners = spec.listeners.map { var l = $0; l.port = lport; return l }
        let image = try TableImage.build(spec)
        XCTAssertEqual(try region.publish(image: image, liveWorkers: []), .published(generation: 1))
        let ring = try Ring(entries: 256)
        var l = limits
        l.maxConnections = 256
        l.receiveBuffers = 64
        engine = try ProxyEngine(ring: ring, listeners: [(fd: listenFd, port: listenPort)], region: region,
                                 slot: region.workerSlot(0), limits: l)
        XCTAssertTrue(engine.refreshTable())
        engine.startAccepting()
    }

    deinit {
        close(listenFd)
        upstreamFds.forEach { close($0) }
        cqes.deallocate()
    }

    /// One loop iteration: timers, submit, wait at most `waitMs` (or the next timer), handle.
    func step(waitMs: UInt64 = 5) {
        let now = ing_monotonic_ns() &+ clockOffsetNs
        engine.tick(nowNs: now)
        _ = engine.ring.submitAndWait(1, timeoutNs: min(waitMs * 1_000_000, max(1, engine.waitTimeoutNs(limitNs: waitMs * 1_000_000))))
        while true {
            let n = engine.ring.peekBatch(cqes, max: 256)
            if n == 0 { break }
            for k in 0..<Int(n) {
                let c = cqes[k]!
                engine.handle(userData: c.pointee.user_data, result: c.pointee.res, flags: c.pointee.flags)
            }
            engine.ring.advance(by: n)
        }
    }

    /// Pumps until `done()` or `steps` iterations.
    @discardableResult
    func run(steps: Int = 400, until done: () -> Bool) -> Bool {
        for _ in 0..<steps {
            if done() { return true }
            step()
        }
        return done()
    }

    /// Moves the engine's clock forward (timers due by then fire on the next steps).
    func advance(ms: UInt64) {
        clockOffsetNs &+= ms * 1_000_000
        for _ in 0..<4 { step(waitMs: 1) }
    }

    // MARK: state the tests check

    var openExchanges: Int { engine.exchanges.active }
    var openConnections: Int { Int(engine.capacity - engine.freeCount) }

    // MARK: sockets

    static func listen() throws -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && Glibc.listen(fd, 64) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else { throw XCTSkip("cannot listen on loopback: errno \(errno)") }
        return (fd, UInt16(bigEndian: addr.sin_port))
    }

    /// A non-blocking client connected to the engine's listener.
    func connectClient() -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = listenPort.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        run(steps: 20) { openConnections > 0 }
        return fd
    }

    /// Accepts the engine's connection on upstream `index`, pumping the engine meanwhile; -1
    /// when none came.
    func acceptUpstream(_ index: Int = 0, steps: Int = 200) -> Int32 {
        var fd: Int32 = -1
        run(steps: steps) {
            fd = accept(upstreamFds[index], nil, nil)
            if fd >= 0 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            return fd >= 0
        }
        return fd
    }

    func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { off += n } else { step() }
        }
        step()
    }

    /// Reads what arrives on `fd` (pumping the engine) until `done(text)` or EOF; `eof` says
    /// whether the peer closed.
    func read(_ fd: Int32, steps: Int = 400, until done: (String) -> Bool) -> (text: String, eof: Bool) {
        var text = ""
        var eof = false
        var buf = [UInt8](repeating: 0, count: 65536)
        run(steps: steps) {
            while true {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 { text += String(decoding: buf[..<n], as: UTF8.self); continue }
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { eof = true }
                break
            }
            return eof || done(text)
        }
        return (text, eof)
    }

    func readHead(_ fd: Int32) -> String { read(fd) { $0.contains("\r\n\r\n") }.text }
}

/// A table with one listener (its port is replaced by the harness), one route and one cluster
/// whose endpoints are `ports`.
func oneRouteTable(_ ports: [UInt16], timeoutMs: UInt32 = 0, actions: RouteActionsSpec = RouteActionsSpec()) -> TableSpec {
    TableSpec(
        listeners: [ListenerSpec(port: 1, virtualHosts: [
            VirtualHostSpec(name: "any", domains: ["*"], routes: [
                RouteSpec(name: "r", matches: [], action: .forward([WeightedClusterSpec(cluster: 0, weight: 1)]),
                          timeoutMs: timeoutMs, actions: actions),
            ]),
        ])],
        clusters: [ClusterSpec(name: "outbound|80||app.test", endpoints: ports.enumerated().map {
            EndpointSpec(address: [127, 0, 0, 1], port: $0.element, id: UInt32($0.offset))
        }, loadBalancer: LoadBalancerSpec(kind: .roundRobin))])
}
