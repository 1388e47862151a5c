import CSupport

// The shared-memory region between the supervisor and its workers (DESIGN.md §2).
// One memfd, mapped MAP_SHARED by the supervisor before the first worker starts and by every
// worker (inherited fd). Fixed-width fields at fixed offsets, never pointers.
//
//   offset 0                    Header (one page; circuit-breaker keys from `breakerKeys`)
//   workerSlotsOffset           maxWorkers × WorkerSlot (WorkerSlotLayout.bytes each; one writer:
//                               that worker; stats tables in StatsLayout.swift)
//   healthOffset                healthCapacity × UInt64 endpoint health words (writer: supervisor)
//   tableSlotOffset[0], [1]     two route-table slots, tableSlotBytes each (writer: supervisor)
//
// The table slots are sized for growth; the memfd is sparse, so unused bytes cost nothing.

/// Field offsets of the header page. All fields little-endian, naturally aligned.
public enum RegionHeader {
    /// UInt64: `SharedRegion.magic`; checked on attach.
    public static let magic = 0
    /// UInt32: `SharedRegion.layoutVersion`; a mismatch means a binary from another version.
    public static let layoutVersion = 8
    /// UInt32: number of worker slots.
    public static let maxWorkers = 12
    /// UInt64: total bytes of the region (the memfd's size).
    public static let regionBytes = 16
    /// UInt64: bytes of each table slot, slot header included.
    public static let tableSlotBytes = 24
    /// UInt64 × 2: offsets of table slots 0 and 1.
    public static let tableSlotOffset0 = 32
    public static let tableSlotOffset1 = 40
    /// UInt64: offset of worker slot 0.
    public static let workerSlotsOffset = 48
    /// UInt64: bytes per worker slot.
    public static let workerSlotBytes = 56
    /// UInt64: offset of the endpoint health array.
    public static let healthOffset = 64
    /// UInt64: number of UInt64 words in the health array.
    public static let healthCapacity = 72
    /// UInt64 (own cache line): the published table generation, stored with release by the
    /// supervisor after the slot is complete. 0 = nothing published yet. Generation G lives in
    /// slot G & 1.
    public static let publishedGeneration = 128
    /// UInt32 (own cache line): 1 while the supervisor drains (SIGTERM); workers stop accepting.
    public static let draining = 192
    /// TLS session-ticket keys shared by every worker (`struct ing_ticket_keys` in
    /// Sources/COpenSSL/shim.h: a UInt64 seqlock, then the current and the previous key of 80
    /// bytes each). Writer: the supervisor, at start and on rotation.
    public static let ticketKeys = 1024
    public static let ticketKeysBytes = 168
    /// UInt64 × `BreakerLayout.capacity`: cluster-name hashes (`StatKey.hash`) of the circuit
    /// breaker records, 0 = free. Claimed by workers with compare-and-swap when they load a
    /// table, never released (CircuitBreakers in StatsLayout.swift).
    public static let breakerKeys = 2048
}

/// Field offsets inside one table slot. The image follows the slot header.
public enum TableSlotField {
    /// UInt64: generation of the image in this slot (written before publishing).
    public static let generation = 0
    /// UInt64: image length in bytes.
    public static let imageBytes = 8
    /// Offset of the image from the slot start (64-byte aligned).
    public static let image = 64
}

/// Worker states stored in `WorkerSlotField.state`.
public enum WorkerState: UInt32, Sendable {
    case empty = 0
    /// Exec'd, attaching and loading the table; not accepting yet.
    case starting = 1
    /// Accept is armed on every listener.
    case accepting = 2
    /// Stopped accepting; finishing in-flight requests.
    case draining = 3
}

/// Field offsets inside one worker slot (one page, written only by its worker except where a
/// field says otherwise). Counters are monotonic UInt64, written with relaxed stores by the
/// worker alone, summed by the supervisor.
public enum WorkerSlotField {
    /// UInt32: the worker's pid (written by the supervisor at spawn, cleared when reaped).
    public static let pid = 0
    /// UInt32: `WorkerState`.
    public static let state = 4
    /// UInt64: CLOCK_MONOTONIC ns of the worker's latest loop iteration.
    public static let heartbeatNs = 8
    /// UInt64: the table generation this worker uses or is copying (its claim on a slot).
    public static let generationInUse = 16
    /// UInt64: CLOCK_MONOTONIC ns when the worker started.
    public static let startedNs = 24

    // Counters (cache line 1 onwards).
    /// Downstream connections accepted.
    public static let connectionsAccepted = 64
    /// Downstream connections currently open (a gauge, still single-writer).
    public static let connectionsActive = 72
    /// Requests fully parsed and routed or answered.
    public static let requestsTotal = 80
    /// Responses by class: 1xx..5xx at 88, 96, 104, 112, 120.
    public static let responses1xx = 88
    /// Upstream connect failures.
    public static let upstreamConnectFailures = 128
    /// Requests refused by the parser (4xx from the codec).
    public static let badRequests = 136
    /// Upstream connections opened.
    public static let upstreamConnectionsOpened = 144
    /// Access-log lines written, and lines dropped because the log buffer was full.
    public static let accessLogLines = 152
    public static let accessLogDropped = 160
    /// TLS on downstream connections (Envoy's listener ssl.* stats), summed over listeners
    /// (per listener: `ListenerStats`, same order): handshakes completed, connections that
    /// failed (not TLS, malformed hello, failed handshake, TLS error later), handshakes that
    /// failed for want of a valid client certificate, resumed sessions.
    public static let tlsHandshakes = 192
    public static let tlsConnectionErrors = 200
    public static let tlsFailVerifyNoCert = 208
    public static let tlsSessionReused = 216
    /// Connections on HTTPS/TLS listeners whose SNI matched no server or passthrough route.
    public static let tlsNoFilterChainMatch = 224
    /// HTTP/2 downstream: connections, streams (requests), and connections closed for a
    /// protocol error (bad preface, flood, framing; nghttp2 sent GOAWAY).
    public static let h2Connections = 232
    public static let h2Streams = 240
    public static let h2ProtocolErrors = 248

    /// First byte after the fixed counters; later versions extend from here, up to
    /// `ListenerStats.offset` (the per-listener records fill the rest of the page).
    public static let end = 256
}
