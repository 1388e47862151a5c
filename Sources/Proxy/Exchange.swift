import HTTP1
#if canImport(Glibc)
import Glibc
#endif

// One request and its response (RFC 9110 §3.9 "message exchange"), in its own slab, addressed
// by index like the connection slab. An exchange links the downstream connection the request
// came on and, while it is forwarded, the upstream connection that carries it; the
// connections hold the exchange's index (`Conn.exchange`), never each other's.
//
// Lifecycle (RFC 9112 §6–§9 for the HTTP/1.1 framing the sessions apply):
//
//   downstream session parsed a head (or must answer one it could not parse)
//        │ openExchange(d)            request state: method, upgrade, stats, log fields
//        ▼
//     routed ──── no route / no cluster / no endpoint / redirect / direct response ─┐
//        │ forward: attachUpstream(x, u)                                             │
//        ▼                                                                           │
//     request sent ──► response head (responseStarted) ──► body ──► response done    │
//        │                    │                                         │            │
//        │  upstream fails before responseStarted: local 503/502 ───────┼────────────┤
//        │  route timeout before responseStarted: local 504 ────────────┼────────────┤
//        │  after responseStarted: the client connection closes         │            ▼
//        │                                                              │      local reply sent
//        ▼                                                              ▼            │
//     upstream detached (pooled or closed) ───────────────► endExchange(d) ◄─────────┘
//                                                               │
//             the downstream *session* decides what follows: the next (maybe pipelined)
//             request on a kept-alive connection, or close
//
// An exchange is freed when neither side refers to it any more (`down` and `up` both -1):
// a downstream that closes first leaves it to the upstream still attached, which sees
// `down == -1` and closes itself; an upstream detached first leaves it to the downstream.
// TCP routes use one exchange for the whole connection pair (its stats are istio_tcp_*).
//
// In HTTP/1.1 a downstream has at most one exchange at a time, so the slab has one slot per
// connection slot and allocation cannot fail; HTTP/2 will give a session many.

/// `Exchange.features` bits.
enum RouteFeature {
    /// Response header edits at route or destination level.
    static let responseEdits: UInt8 = 1 << 0
    /// The retry policy may retry on a response status (5xx, gateway-error, retriable-4xx,
    /// listed codes).
    static let statusRetries: UInt8 = 1 << 1
    /// The route has mirrors.
    static let mirrors: UInt8 = 1 << 2
    /// The retry policy allows retries (attempts > 0).
    static let retries: UInt8 = 1 << 3
    /// The retry policy may retry on a gRPC status (cancelled, deadline-exceeded, internal,
    /// resource-exhausted, unavailable: Envoy's x-envoy-retry-grpc-on).
    static let grpcRetries: UInt8 = 1 << 4
}

/// Where a forwarded exchange stands.
enum ExchangeStage: UInt8 {
    /// Being routed (or answered locally).
    case routing
    /// Waiting for a fault-injection delay (its second timer).
    case delayed
    /// Held by an upstream connection (request being sent, or response awaited/streaming).
    case upstream
    /// Waiting to be retried (back-off on its second timer).
    case backoff
}

/// One exchange. Plain data in a slab; see the diagram above. It has two timers in the worker's
/// wheel (Engine+Timers.swift): the route timeout, and the stage timer (fault delay, retry
/// back-off, per-try timeout).
struct Exchange {
    /// Bumped each time the slot is reused (timers and later asynchronous work compare it).
    var generation: UInt32 = 0
    /// The downstream connection (-1: it closed).
    var down: Int32 = -1
    /// The upstream connection carrying the request (-1: none yet, or detached).
    var up: Int32 = -1
    /// Request method (HEAD and CONNECT change the response framing, RFC 9112 §6.3).
    var method: HTTPMethod = .get
    /// The request asked for an Upgrade (a 101 turns both connections into a tunnel).
    var upgrade = false
    /// A response head reached the downstream: after that a failure can only close it.
    var responseStarted = false
    /// The client sent `Expect: 100-continue` (HTTP/1.1 only): one upstream `100` may go to it.
    var expectContinue = false
    /// A `100 Continue` went to the client (the next ones are dropped).
    var continueForwarded = false
    /// Interim (1xx) response heads received (HTTP1 `informationalAction`).
    var informational: UInt8 = 0
    /// A gRPC request (HTTP/2, `content-type: application/grpc…`): local replies are gRPC
    /// statuses (Engine+LocalReply.swift).
    var grpc = false

    // Routing (Engine+Forward.swift). Route, destination and cluster are indices into the
    // table of generation `tableGeneration`; after a reload they no longer mean anything, so
    // what needs them later (response header edits, a retry) checks the generation first.
    var tableGeneration: UInt64 = 0
    var route: Int32 = -1
    /// The weighted destination picked (its header edits apply after the route's).
    var destination: Int32 = -1
    var cluster: Int32 = -1
    /// Route timeout in ms (0 = none), armed when the request is first dispatched.
    var timeoutMs: UInt32 = 0
    /// Where the request is: see `ExchangeStage`.
    var stage: ExchangeStage = .routing
    /// The forwarded head (and the body bytes that came with it) while no upstream holds it:
    /// during a fault delay or a retry back-off (a pooled buffer; `pendingLarge` says which).
    var pending: UnsafeMutableRawPointer? = nil
    var pendingLen: Int32 = 0
    var pendingLarge = false
    /// The whole request is in the forwarded buffer (no body, or a body that came with the
    /// head and fit): a retry can send it again. Cleared when body bytes are sent from
    /// anywhere else.
    var replayable = false
    /// A request whose body streams (an HTTP/2 client's, say) on a route with mirrors or
    /// retries: its copy — the forwarded head, then the body as it is read — for the mirrors
    /// once the request ended and for a retry until the response starts (a pooled buffer, small
    /// then large; Engine+RequestCopy.swift). `requestCopyDone`: the request ended with its copy
    /// whole, so a retry can send it again.
    var requestCopy: UnsafeMutableRawPointer? = nil
    var requestCopyLen: Int32 = 0
    var requestCopyLarge = false
    var requestCopyDone = false
    /// Which of the route's mirrors fire (bits by index, decided at the first send) and still
    /// wait for the request copy.
    var mirrorFires: UInt32 = 0
    /// Tries dispatched so far (the first one included).
    var tries: UInt8 = 0
    /// Stable id of the endpoint of the last try (a retry prefers another one).
    var lastEndpoint: UInt32 = .max
    /// What the route asks for beyond forwarding (`RouteFeature` bits), read once from the
    /// table when the request is routed, so that the response path and the send path touch
    /// the table only when there is something to do.
    var features: UInt8 = 0
    /// The route's per-try timeout (0 = none).
    var perTryTimeoutMs: UInt32 = 0
    /// The cluster's connectionPool.http.maxRequestsPerConnection (0 = unlimited) and
    /// idleTimeout (ms, 0 = none), read at routing so that pooling needs no table lookup.
    var maxRequestsPerConnection: UInt32 = 0
    /// The cluster's connectionPool.http.maxConcurrentStreams (0: the upstream's own limit):
    /// streams per HTTP/2 upstream connection.
    var maxConcurrentStreams: UInt32 = 0
    /// The cluster's connectionPool.http.http2KeepAlive (ms; 0: none), given to an HTTP/2
    /// upstream connection this exchange opens (Engine+HTTP2Keepalive.swift).
    var h2KeepaliveIntervalMs: UInt32 = 0
    var h2KeepaliveTimeoutMs: UInt32 = 0
    var poolIdleTimeoutMs: UInt32 = 0
    /// The request's Origin when the route's CORS policy allows it (a pooled small buffer):
    /// the response gets the access-control-* headers (Engine+CORS.swift).
    var corsOrigin: UnsafeMutableRawPointer? = nil
    var corsOriginLen: Int32 = 0
    /// Stats and access-log fields (Engine+Stats.swift).
    var stats = ExchangeStats()

    // Load balancing and circuit breakers (LoadBalancer.swift, CircuitBreakers.swift).
    /// Consistent-hash key, computed at routing (`lbHasHash` false: the request has none).
    var lbHash: UInt64 = 0
    var lbHasHash = false
    /// A hash cookie was generated (value `lbCookie` in hex): the response sets it.
    var lbSetCookie = false
    var lbCookie: UInt64 = 0
    /// The response is a circuit-breaker overflow (x-envoy-overloaded: true).
    var overloaded = false
    /// Breaker record whose pending count / retry count this exchange holds (-1: none).
    var breakerPending: Int32 = -1
    var breakerRetry: Int32 = -1
    /// Breaker record whose requests-in-flight count (http2MaxRequests) it holds (-1: none).
    var breakerRequest: Int32 = -1
    /// Endpoint id whose active-request count this exchange's try holds (.max: none).
    var activeEndpoint: UInt32 = .max
}

/// The exchange slab: reserved untouched like the connection slab, slots initialized on first
/// use, a LIFO free list so hot slots stay in cache.
struct ExchangeSlab: ~Copyable {
    let slots: UnsafeMutablePointer<Exchange>
    let capacity: Int32
    private let free: UnsafeMutablePointer<Int32>
    private var freeCount: Int32
    /// Slots ever used.
    private(set) var highWater: Int32 = 0
    /// Exchanges open now.
    var active: Int { Int(capacity - freeCount) }

    init(capacity: Int) {
        self.capacity = Int32(capacity)
        slots = reserveSlab(Exchange.self, count: capacity)
        free = .allocate(capacity: capacity)
        for i in 0..<capacity { free[i] = Int32(capacity - 1 - i) }
        freeCount = Int32(capacity)
    }

    /// A fresh exchange, or -1 when the slab is full.
    @inline(__always)
    mutating func alloc() -> Int32 {
        guard freeCount > 0 else { return -1 }
        freeCount -= 1
        let x = free[Int(freeCount)]
        var gen: UInt32 = 1
        if x >= highWater {
            highWater = x + 1
            (slots + Int(x)).initialize(to: Exchange())
        } else {
            gen = slots[Int(x)].generation &+ 1
            slots[Int(x)] = Exchange()
        }
        slots[Int(x)].generation = gen
        return x
    }

    @inline(__always)
    mutating func release(_ x: Int32) {
        assert(slots[Int(x)].down < 0 && slots[Int(x)].up < 0, "exchange released while linked")
        free[Int(freeCount)] = x
        freeCount += 1
    }
}

/// Untouched anonymous memory for `count` values of `T`: pages are backed only when a slot is
/// first written (slots are handed out lowest first), so RSS follows the peak in use.
func reserveSlab<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
    let bytes = MemoryLayout<T>.stride * max(1, count)
    if let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
       p != MAP_FAILED {
        // SAFETY: page-aligned, `bytes` long, never unmapped; slots are initialized on first use.
        return p.bindMemory(to: T.self, capacity: count)
    }
    return .allocate(capacity: count)
}
