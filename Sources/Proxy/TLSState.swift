import COpenSSL
import TLS
#if canImport(Glibc)
import Glibc
#endif

// The worker's TLS state that is not per connection: the transports a connection slot can
// have, the SSL_CTXs of the current route table (server and upstream-client contexts, built on
// first use), and the pool of plaintext buffers with its idle trim (Engine+TLS.swift uses them).

/// How bytes on a connection's socket relate to the bytes its session reads and writes.
enum Transport: UInt8 {
    /// The socket carries the session's bytes.
    case plain = 0
    /// An HTTPS/TLS listener's connection before its ClientHello was read (bytes go to accum).
    case hello
    /// TLS terminated here: `Conn.ssl` encrypts and decrypts.
    case tls
    /// An HTTP/2 stream: no socket; its bytes come from and go to its connection's nghttp2
    /// session (Engine+HTTP2.swift).
    case h2stream
}

/// Worker-side TLS state per route table: one SSL_CTX per terminating server, built when a
/// connection first needs it (most servers of a large table never see a handshake on a
/// given worker).
struct TLSContexts {
    var contexts: UnsafeMutablePointer<OpaquePointer?>? = nil
    var count = 0
    /// Servers whose context failed to build (logged once per table).
    var failed: UnsafeMutablePointer<Bool>? = nil
    /// Client contexts per cluster (TLS to upstreams), built on first use, and failures.
    var clientContexts: UnsafeMutablePointer<OpaquePointer?>? = nil
    var clientCount = 0
    var clientFailed: UnsafeMutablePointer<Bool>? = nil

    /// Frees every context of the old table (connections keep theirs: SSL objects hold a
    /// reference) and makes room for `n` servers of the new one.
    mutating func reset(servers n: Int, clusters m: Int) {
        if let c = contexts {
            for k in 0..<count { ServerContext.free(c[k]) }
            c.deallocate()
            failed?.deallocate()
        }
        if let c = clientContexts {
            for k in 0..<clientCount { ServerContext.free(c[k]) }
            c.deallocate()
            clientFailed?.deallocate()
        }
        count = n
        contexts = n > 0 ? .allocate(capacity: n) : nil
        failed = n > 0 ? .allocate(capacity: n) : nil
        for k in 0..<n {
            contexts![k] = nil
            failed![k] = false
        }
        clientCount = m
        clientContexts = m > 0 ? .allocate(capacity: m) : nil
        clientFailed = m > 0 ? .allocate(capacity: m) : nil
        for k in 0..<m {
            clientContexts![k] = nil
            clientFailed![k] = false
        }
    }
}

/// Receive-buffer ids `base..<base + capacity`, beyond the ring's: plaintext buffers of TLS
/// connections (`plain`), and bulk buffers a response body for a TLS client is received into
/// (`bulk`, Engine+Upstream.swift). Allocated on first use and kept for reuse; memory unused
/// for a trim interval is freed (`trim`).
struct PlainBuffers {
    let base: Int
    let size: Int
    let capacity: Int
    let memory: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let freeIds: UnsafeMutablePointer<UInt16>
    var freeCount = 0
    var fresh = 0

    init(base: Int, size: Int, capacity: Int) {
        self.base = base
        self.size = size
        self.capacity = capacity
        memory = .allocate(capacity: capacity)
        freeIds = .allocate(capacity: capacity)
    }

    /// Whether receive-buffer id `id` is one of these.
    @inline(__always)
    func owns(_ id: UInt16) -> Bool { Int(id) >= base && Int(id) < base + capacity }

    /// Free ids from the bottom of `freeIds` up to here have no memory (freed by `trim`).
    var bareBelow = 0
    /// The fewest free ids since the last trim.
    var lowWater = 0

    /// A buffer id (≥ base) and its memory, or nil when every id is in use.
    @inline(__always)
    mutating func get() -> (UInt16, UnsafeMutableRawPointer)? {
        if freeCount > 0 {
            freeCount -= 1
            if freeCount < lowWater { lowWater = freeCount }
            let id = freeIds[freeCount]
            if freeCount < bareBelow {
                bareBelow = freeCount
                let m = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
                memory[Int(id) - base] = m
                return (id, m)
            }
            return (id, memory[Int(id) - base]!)
        }
        lowWater = 0
        guard fresh < capacity else { return nil }
        let k = fresh
        fresh += 1
        let m = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        memory[k] = m
        return (UInt16(base + k), m)
    }

    @inline(__always)
    mutating func put(_ id: UInt16) {
        freeIds[freeCount] = id
        freeCount += 1
    }

    /// Frees the memory of the ids that were not taken since the last trim (the bottom of the
    /// free list), keeping `keep`; the ids stay free and get memory again when next taken.
    /// Returns how many buffers were freed.
    mutating func trim(keep: Int) -> Int {
        let top = min(lowWater, freeCount) - keep
        lowWater = freeCount
        guard top > bareBelow else { return 0 }
        for k in bareBelow..<top {
            let j = Int(freeIds[k]) - base
            memory[j]!.deallocate()
            memory[j] = nil
        }
        defer { bareBelow = top }
        return top - bareBelow
    }

    @inline(__always)
    func buffer(_ id: UInt16) -> UnsafeMutableRawPointer { memory[Int(id) - base]! }
}
