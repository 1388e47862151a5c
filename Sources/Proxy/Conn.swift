import HTTP1
import HTTP2
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

/// What a connection slot is used for.
enum Role: UInt8 {
    case free = 0
    /// A client connection accepted on a listener.
    case downstream = 1
    /// A connection to an upstream endpoint (pooled per endpoint between requests).
    case upstream = 2
}

/// How received bytes on a connection are interpreted.
///
/// Downstream:  head ──(no body)──────────────► idle(not reading) ──response done──► head
///                └─(body)─► body/chunked ──done──┘
///              upgrade: tunnel in both directions until either side closes.
/// Upstream:    head ─► body/chunked/untilClose ─► pooled (recv armed to notice a close)
enum RxMode: UInt8 {
    /// Not expecting bytes (a downstream whose request is complete and whose response is in
    /// flight; pipelined requests wait in the socket buffer).
    case none = 0
    /// Parsing a message head.
    case head
    /// A body with `bodyRemaining` bytes left.
    case body
    /// A chunked body scanned by `chunk`.
    case chunked
    /// A response body delimited by the upstream closing.
    case untilClose
    /// Opaque bytes (after an Upgrade).
    case tunnel
    /// Upstream connection parked in its endpoint pool; any byte or EOF closes it.
    case pooled
}

/// One connection slot in the worker's slab. Plain data: addressed by index, never referenced
/// by an object (STYLE.md hot-path rules). Memory it points at (accum/out buffers, held
/// receive buffer) is owned by the slot and given back when the slot is finalized.
struct Conn {
    var fd: Int32 = -1
    /// Bumped each time the slot is reused; stale completions compare it.
    var generation: UInt32 = 0
    var role: Role = .free
    var rx: RxMode = .none
    /// Operations in flight on this slot; the slot is finalized only when this reaches 0.
    var pendingOps: UInt16 = 0
    var recvArmed = false
    /// The bulk buffer (a receive-buffer id) an armed `upRecvBulk` receive fills.
    var bulkRecv: UInt16 = 0
    /// In the engine's list of receives starved by an empty buffer ring (`receiveStarved`).
    var starved = false
    var sendArmed = false
    var closing = false
    /// Connection to upstream established.
    var connected = false

    /// The exchange this connection carries now (-1: none): a downstream's request being
    /// served, an upstream's request in flight. The other side is reached through it
    /// (`ProxyEngine.peerOf`), never stored here.
    var exchange: Int32 = -1
    /// Listener port (downstream) — the route table is keyed by it.
    var listenerPort: UInt16 = 0

    // Buffered, not yet processed received bytes: accum[accumStart..<accumEnd].
    var accum: UnsafeMutableRawPointer? = nil
    var accumStart: Int32 = 0
    var accumEnd: Int32 = 0
    /// `accum` is from the large pool (else the small one).
    var accumLarge = false
    /// Pooled output buffer (forwarded head, local reply); `outLarge` says which pool.
    var out: UnsafeMutableRawPointer? = nil
    var outLarge = false
    /// Bytes of `out` filled (a forwarded head, body bytes copied after it, a local reply).
    var outLen: Int32 = 0

    /// Outbound bytes (Engine+Send.swift): the segment being sent and what waits behind it,
    /// each with what to give back when it is sent.
    var sendQueue = SendQueue()

    // Message state.
    var bodyRemaining: Int64 = 0
    var chunk = ChunkedScanner()
    /// Downstream: keep the client connection after this response.
    var keepAlive = true
    /// Downstream: the request message (head and body) was read completely.
    var requestDone = false
    /// Upstream: the response message was read completely.
    var responseDone = false
    /// Upstream: the connection may go back to the pool after the response.
    var reusable = true
    /// Upstream: carries a mirrored copy of a request (Engine+Mirror.swift), no exchange.
    var mirror = false

    // The connection's deadline (idle, head, connect, TCP idle) is its timer in the worker's
    // wheel, by slot index (Engine+Timers.swift).

    // Upstream pool bookkeeping.
    var pool: Int32 = -1
    var nextIdle: Int32 = -1
    var prevIdle: Int32 = -1

    /// Connect address for upstreams; must stay valid until the connect completes.
    var addr = sockaddr_in6()
    var addrLen: socklen_t = 0


    /// Splicing (Engine+Splice.swift): the pipe of the direction whose source is this
    /// connection (-1 = none) and `SpliceFlag` bits.
    var pipe: Int32 = -1
    var spliceFlags: UInt8 = 0

    /// Client address as text for x-forwarded-for (downstream).
    var peerText: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    var peerTextLen: UInt8 = 0

    /// Connection-level stats (Engine+Stats.swift): the cluster record an upstream's
    /// upstream_cx_* count in (a pooled connection keeps the cluster it was opened for).
    var cxRecord: Int32 = Int32(ClusterStats.unknownRecord)
    /// Upstream: circuit-breaker record it counts in (-1: none) and requests it carried
    /// (CircuitBreakers.swift).
    var breaker: Int32 = -1
    var requestsSent: UInt32 = 0

    /// The transport under the session (Engine+TLS.swift): plain, reading a ClientHello, or TLS.
    var transport: Transport = .plain
    /// TLS close: the alert (or last bytes) being sent is the last thing on this connection.
    var tlsCloseAfterSend = false
    var tlsOutLarge = false
    /// The OpenSSL connection (transport `.tls`), owned by the slot.
    var ssl: OpaquePointer? = nil
    /// Ciphertext being sent: tlsOut[tlsOutSent..<tlsOutLen], standing for `tlsPlain` bytes of
    /// the first queued segment (0: handshake bytes, tickets or an alert).
    var tlsOut: UnsafeMutableRawPointer? = nil
    var tlsOutLen: Int32 = 0
    var tlsOutSent: Int32 = 0
    var tlsPlain: Int32 = 0
    /// The Gateway server that terminates this connection and the table it belongs to (low 32
    /// bits of the generation): its client-certificate lists are checked after the handshake.
    var tlsServer: Int32 = -1
    var tlsTable: UInt32 = 0
    /// Mutual TLS: the x-forwarded-client-cert value for every request of the connection (a
    /// small pooled buffer, made once after the handshake), nil without a client certificate.
    var xfcc: UnsafeMutableRawPointer? = nil
    var xfccLen: Int32 = 0
    /// Upstream TLS (Engine+UpstreamTLS.swift): SNI from the Host (auto SNI) and its hash; the
    /// certificate is checked against the SNI (auto SAN validation). `tlsServer` holds the
    /// cluster for an upstream.
    var tlsAutoSNI = false
    var tlsVerifyHost = false
    var sniHash: UInt32 = 0

    // HTTP/2 (Engine+HTTP2.swift). A connection that speaks it holds its nghttp2 state; each
    // of its streams is a slot of its own (transport `.h2stream`) that the HTTP/1 session
    // serves as if it were a connection carrying one request.
    var h2: UnsafeMutablePointer<H2Connection>? = nil
    /// Connection: its stream slots (a list through `h2Next`/`h2Prev`) and their number.
    var h2First: Int32 = -1
    var h2Streams: Int32 = 0
    /// Connection: a flush (NOP completion) is queued / running / must run once more; a
    /// GOAWAY was sent (close once the last stream is done).
    var h2FlushQueued = false
    var h2Flushing = false
    var h2FlushAgain = false
    var h2GoingAway = false
    /// Connection: nghttp2 failed fatally (its error): our own GOAWAY goes out, then close.
    var h2Fatal: Int32 = 0
    var h2FatalSent = false
    /// Upstream connection: its cluster's HTTP/2 keepalive (ms; interval 0: none), and whether
    /// a PING went out with nothing received since (Engine+HTTP2Keepalive.swift).
    var h2KaIntervalMs: UInt32 = 0
    var h2KaTimeoutMs: UInt32 = 0
    var h2KaAwaiting = false
    /// Connection: an HTTP/1.1 request was read (the HTTP/2 preface is looked for only before).
    var h1Seen = false
    /// Stream: its connection, its id, and its siblings.
    var h2Parent: Int32 = -1
    var h2Stream: Int32 = 0
    var h2Next: Int32 = -1
    var h2Prev: Int32 = -1
    /// Stream: the connection is TLS (x-forwarded-proto, the SNI's server).
    var h2Secure = false
    /// Stream: request body bytes received and not yet taken (`h2In[h2InStart..<h2InEnd]`, a
    /// large pooled buffer; at most the stream's window), the client ended the stream, the body
    /// is sent chunked and its last chunk was given.
    var h2In: UnsafeMutableRawPointer? = nil
    var h2InStart: Int32 = 0
    var h2InEnd: Int32 = 0
    var h2InClosed = false
    var h2InChunked = false
    var h2InTerminated = false
    /// Stream: a NOP completion will hand buffered body bytes to the session.
    var h2InPending = false
    /// Stream: the final response head was submitted (what follows is body).
    var h2HeadDone = false
    /// Stream: the response is complete (the exchange ended normally).
    var h2ResponseDone = false
    /// Stream: the body source nghttp2 reads (a downstream stream's response, an upstream
    /// stream's request).
    var h2Out = H2Source()
    /// Upstream stream: the response head(s) rendered as HTTP/1.1, not yet read by the session
    /// (a small pooled buffer).
    var h2UpHead: UnsafeMutableRawPointer? = nil
    var h2UpHeadLen: Int32 = 0
    /// Bytes of `h2UpHead` already handed to the session (a head larger than one receive
    /// buffer goes in pieces).
    var h2UpHeadOff: Int32 = 0
    /// `h2UpHead` is a large pooled buffer (a head past 4 KiB), else a small one.
    var h2UpHeadLarge = false
    /// Stream (either role): the peer's trailers rendered as the chunked body's end (last chunk
    /// and trailer section), read by the session after the body, `h2TailSent` of them so far
    /// (a small pooled buffer, or a large one when they do not fit it).
    var h2Tail: UnsafeMutableRawPointer? = nil
    var h2TailLen: Int32 = 0
    var h2TailSent: Int32 = 0
    var h2TailLarge = false
}
