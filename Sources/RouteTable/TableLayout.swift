// The route-table image: the binary form of a `TableSpec` that the supervisor writes into a
// shared-memory slot and every worker reads in place (DESIGN.md §2). It is position-independent:
// every reference is an offset or an index, never a pointer, so the same bytes work at any
// address in any process. All integers are little-endian and fixed-width; records are packed at
// the offsets below and read with unaligned loads, so the image needs no particular alignment.
// `TableImage.build` writes it, `TableReader.init(validating:count:)` checks it.
//
// Image
// ─────
//   [Header: 192 bytes] [section] [section] ... [strings] [tcpRoutes] [headerOps] ... [tlsNames]
//   [clusterTLS]
//   (sections in `Section` order)
//
// Header (offset: field)
//     0: magicU32          0x42545249, the bytes "IRTB" (ingressd route table, binary)
//     4: versionU16        `Layout.version`; a reader rejects any other value
//     6: headerBytesU16    192 (16 + 22 section entries = 192, no spare); a reader rejects a
//                          smaller value
//     8: totalBytesU32     size of the whole image, header included; at most the bytes readable
//                          (a slot may be larger than the image it holds)
//    12: reservedU32       0
//    16: section table, 22 entries of (offsetU32, countU32), in `Section` order:
//        offset = bytes from the image start to the first record; count = number of records
//        (for `strings`, number of bytes). A section with count 0 may have any offset ≤ total.
//
// StrRef (8 bytes): a byte string inside the `strings` section.
//     0: offsetU32   from the start of the strings section
//     4: lengthU32   bytes
//   `Layout.absent` (0xFFFF_FFFF) in offsetU32 means "no value" (an optional spec field that is nil).
//
// Listener (104 bytes), one per port, in `TableSpec.listeners` order:
//     0: portU16            listening port
//     2: protoU8            `ListenerProtocol.rawValue`
//     3: padU8
//     4: firstVHostU32      index of the listener's first VirtualHost; its hosts are contiguous
//     8: vhostCountU32
//    12: catchAllVHostI32   virtual host with domain "*", or -1
//    16: exactFirstU32      first HostSlot of the exact-domain hash table
//    20: exactCountU32      its slot count: 0 or a power of two
//    24: suffixFirstU32     first HostSlot of the suffix-wildcard table ("*.foo.com" keyed ".foo.com")
//    28: suffixCountU32     0 or a power of two
//    32: prefixFirstU32     first HostSlot of the prefix-wildcard table ("foo.*" keyed "foo.")
//    36: prefixCountU32     0 or a power of two
//    40: firstTcpRouteU32   `.tcp` listeners: TCPRoute records, contiguous, in match order
//    44: tcpRouteCountU32   0 for other protocols (and for a TCP port no VirtualService binds)
//   `.https` / `.tls` listeners (TLSSpec.swift; the compiler writes none for others). Both the
//   servers and the routes are chosen by SNI through HostSlots (exact, then suffix wildcard) in
//   the `hostSlots` section, whose vhostI32 then holds a global TLSServer / TLSRoute index:
//    48: firstTLSServerU32        TLSServer records of this listener, contiguous, spec order
//    52: tlsServerCountU32
//    56: tlsAnyServerI32          the server with host "*" (also takes a hello without SNI), or -1
//    60: tlsServerExactFirstU32   HostSlots keyed by the exact server names
//    64: tlsServerExactCountU32   0 or a power of two
//    68: tlsServerSuffixFirstU32  HostSlots for "*.foo.com" keyed ".foo.com" (backward hash)
//    72: tlsServerSuffixCountU32  0 or a power of two
//    76: firstTLSRouteU32         TLSRoute records of this listener, contiguous, spec order
//    80: tlsRouteCountU32
//    84: tlsAnyRouteI32           the first route with SNI host "*", or -1
//    88: tlsRouteExactFirstU32    as for servers; a name several routes share is keyed to the
//    92: tlsRouteExactCountU32    first of them (ties go to the earlier route)
//    96: tlsRouteSuffixFirstU32
//   100: tlsRouteSuffixCountU32
//
// VirtualHost (28 bytes):
//     0: name StrRef
//     8: firstDomainU32     index into `domains` (StrRefs, lower-case, in spec order, for display)
//    12: domainCountU32
//    16: firstRouteU32      routes are contiguous and in match order
//    20: routeCountU32
//    24: flagsU32           bit 0: httpsRedirect
//
// HostSlot (16 bytes), open addressing with linear probing (see HostHash.swift):
//     0: hashU32            `HostHash` of the key (exact/prefix: forward, suffix: backward)
//     4: key StrRef         lower-case fixed part of the domain
//    12: vhostI32           global virtual-host index; -1 marks an empty slot
//
// Route (168 bytes):
//     0: name StrRef
//     8: firstMatchU32      match blocks (OR); matchCount 0 matches every request
//    12: matchCountU32
//    16: timeoutMsU32       0 = no route timeout
//    20: actionU8           `RouteActionKind.rawValue`
//    21: redirectFlagsU8    bit 0: redirect port present
//    22: statusU16          direct-response or redirect status
//    24: firstWeightedU32   forward only: WeightedCluster entries
//    28: weightedCountU32
//    32: totalWeightU32     forward only: sum of the weights (build rejects overflow)
//    36: redirectPortU16
//    38: padU16
//    40: strA StrRef        direct response: body; redirect: scheme
//    48: strB StrRef        redirect: authority
//    56: strC StrRef        redirect: uri
//    64: strD StrRef        redirect: prefixRewrite
//   Actions (RouteActionSpec.swift), written for every route kind:
//    72: rewriteURI StrRef           absent = no `rewrite.uri`
//    80: rewriteAuthority StrRef     absent = no `rewrite.authority`
//    88: regexRewritePattern StrRef  absent = no `rewrite.uriRegexRewrite`
//    96: regexRewriteSubst StrRef    absent exactly when the pattern is
//   104: firstHeaderOpU32            rule-level HeaderOps: request ops, then response ops
//   108: requestHeaderOpCountU32
//   112: responseHeaderOpCountU32
//   116: retryAttemptsU32            0 = no retries
//   120: retryPerTryTimeoutMsU32     0 = none
//   124: retryOnU32                  `RetryOn` bits; no bit outside `RetryOn.all`
//   128: firstRetryStatusU32         RetryStatus records
//   132: retryStatusCountU32
//   136: retryBackoffBaseMsU32
//   140: faultDelayMsU32
//   144: faultDelayPpmU32            parts per million, ≤ 1 000 000
//   148: faultAbortPpmU32            parts per million, ≤ 1 000 000
//   152: faultAbortStatusU16
//   154: actionFlagsU16              bit 0: fault delay present; bit 1: fault abort present;
//                                    bit 2: retryRemoteLocalities; bit 3: retry ignores
//                                    previous hosts; bit 4: the abort carries a gRPC status,
//                                    bits 8–12 its code (≤ 16); other bits 0
//   156: firstMirrorU32              Mirror records
//   160: mirrorCountU32
//   164: corsI32                     index into `cors`, or -1
//
// MatchBlock (16 bytes), conditions ANDed:
//     0: firstConditionU32
//     4: conditionCountU32
//     8: portU16            listener port required when flags bit 1 is set
//    10: flagsU8            bit 0: ignoreUriCase; bit 1: port present
//    11: padU8
//    12: padU32
//
// Condition (24 bytes):
//     0: targetU8           `ConditionTarget.rawValue` (uri, scheme, method, authority, header,
//                           withoutHeader, queryParam)
//     1: kindU8             `ConditionKind.rawValue` (exact, prefix, regex, present)
//     2: padU16
//     4: name StrRef        header name (lower-case) or query parameter name; empty otherwise
//    12: value StrRef       exact/prefix value or the regex pattern (kept for display)
//    20: regexI32          index into `regexes` for kind regex, else -1
//
// WeightedCluster (20 bytes):
//     0: clusterI32         index into clusters, or -1: the destination does not exist (503 NC)
//     4: weightU32          relative weight
//     8: firstHeaderOpU32   per-destination HeaderOps (`route[].headers`): request, then response
//    12: requestHeaderOpCountU32
//    16: responseHeaderOpCountU32
//
// HeaderOp (20 bytes):
//     0: kindU8             `HeaderOpKind.rawValue` (set, add, remove)
//     1: padU8
//     2: padU16
//     4: name StrRef        lower-case header name
//    12: value StrRef       empty for remove
//
// RetryStatus (2 bytes): statusU16, a retriable status code (100–599).
//
// Mirror (8 bytes):
//     0: clusterI32         index into clusters, or -1 (mirror destination does not exist)
//     4: ppmU32             share of requests mirrored, parts per million, ≤ 1 000 000
//
// Cors (40 bytes), a `corsPolicy`:
//     0: firstOriginU32     Origin records (allowed origins)
//     4: originCountU32
//     8: allowMethods StrRef   the header value: names joined with ","
//    16: allowHeaders StrRef
//    24: exposeHeaders StrRef
//    32: maxAgeSecondsU32
//    36: flagsU8            bit 0: allowCredentials; bit 1: maxAge present
//    37: unmatchedPreflightsU8  `UnmatchedPreflights.rawValue`
//    38: padU16
//
// Origin (16 bytes), one allowed-origin string match:
//     0: kindU8             `ConditionKind.rawValue`: exact, prefix or regex
//     1: padU8
//     2: padU16
//     4: value StrRef       exact/prefix value or the regex pattern
//    12: regexI32           index into `regexes` (full match) for kind regex, else -1
//
// TCPRoute (24 bytes), a VirtualService `tcp` block on a TCP listener:
//     0: name StrRef
//     8: firstWeightedU32   WeightedCluster entries (shared with HTTP routes)
//    12: weightedCountU32
//    16: totalWeightU32     sum of the weights (build rejects overflow)
//    20: padU32
//
// TLSServer (100 bytes), one Gateway server of an HTTPS/TLS listener (TLSServerSpec):
//     0: name StrRef
//     8: modeU8             `TLSServerMode.rawValue` (simple, mutual, optionalMutual, passthrough)
//     9: minVersionU8       `TLSVersionSpec.rawValue` (0 = auto)
//    10: maxVersionU8       `TLSVersionSpec.rawValue` (0 = auto); min ≤ max when both are set
//    11: padU8
//    12: firstHostU32       TLSName records: the SNI names, lower-case, spec order
//    16: hostCountU32
//    20: certificateChain StrRef   PEM, leaf first; non-empty exactly when the mode terminates
//    28: privateKey StrRef         PEM; non-empty exactly when the mode terminates
//    36: caCertificates StrRef     PEM client CA bundle; empty = none (always empty for passthrough)
//    44: cipherSuites StrRef       OpenSSL list joined with ":"; empty = the default list
//    52: firstSanU32        TLSName records: subjectAltNames
//    56: sanCountU32
//    60: firstSpkiU32       TLSName records: verifyCertificateSpki (base64)
//    64: spkiCountU32
//    68: firstHashU32       TLSName records: verifyCertificateHash (hex)
//    72: hashCountU32
//    76: secondCertificateChain StrRef  PEM of a second certificate (another key type); empty = none
//    84: secondPrivateKey StrRef        its key; empty exactly when the chain is
//    92: crl StrRef         PEM CRLs for client certificates; empty = none (always empty for
//                           passthrough)
//
// TLSRoute (32 bytes), a VirtualService `tls[]` block on a passthrough server (TLSRouteSpec):
//     0: name StrRef
//     8: firstSniU32        TLSName records: the SNI hosts, lower-case, spec order
//    12: sniCountU32
//    16: firstWeightedU32   WeightedCluster entries (shared with HTTP and TCP routes)
//    20: weightedCountU32
//    24: totalWeightU32     sum of the weights (build rejects overflow)
//    28: padU32
//
// TLSName (8 bytes): a StrRef; the string lists of TLSServer, TLSRoute and ClusterTLS records.
//
// Cluster (88 bytes):
//     0: name StrRef
//     8: connectTimeoutMsU32
//    12: firstEndpointU32
//    16: endpointCountU32
//   DestinationRule traffic policy (ClusterTrafficSpec.swift), merged for this cluster:
//    20: lbKindU8           `LoadBalancerKind.rawValue`
//    21: hashKeyU8          `HashKeyKind.rawValue`; 0 (none) unless lbKind is ringHash or maglev,
//                           and never 0 for those
//    22: flagsU8            bit 0: cookie TTL present (generate the cookie when missing);
//                           bit 1: upstream HTTP/2 (`ClusterSpec.http2`: prior knowledge, or
//                           ALPN h2 over TLS); bit 2: the client's protocol upstream
//                           (`ClusterSpec.useClientProtocol`); other bits 0
//    23: padU8
//    24: hashName StrRef    header name (lower-case), cookie name or query parameter name;
//                           absent for sourceIP and none
//    32: cookiePath StrRef  absent = no Path attribute
//    40: cookieTtlSecondsU32   0 with flag bit 0 = session cookie
//    44: hashTableSizeU32   ringHash: minimum ring size; maglev: table size; else 0
//    48: maxConnectionsU32        connectionPool.tcp.maxConnections (default 2^32-1)
//    52: maxPendingRequestsU32    http.http1MaxPendingRequests (default 2^32-1)
//    56: maxRequestsU32           http.http2MaxRequests: active requests (default 2^32-1)
//    60: maxRequestsPerConnectionU32  0 = unlimited
//    64: maxRetriesU32            concurrent retries (default 2^32-1)
//    68: idleTimeoutMsU32         http.idleTimeout, 0 = none (default 1 h)
//    72: tlsI32             index into `clusterTLS`, or -1: plain text (DestinationRule tls mode
//                           DISABLE or none). Clusters with equal TLS settings share one record.
//    76: maxConcurrentStreamsU32  http.maxConcurrentStreams per HTTP/2 upstream connection;
//                           0 = the upstream's own limit
//    80: h2KeepaliveIntervalMsU32  http.http2KeepAlive.interval: a PING per HTTP/2 upstream
//                           connection this often (+ up to 15 % jitter); 0 = no keepalive
//    84: h2KeepaliveTimeoutMsU32   http.http2KeepAlive.timeout: the connection closes when
//                           nothing arrives this long after a PING; non-zero exactly when
//                           the interval is
//
// ClusterTLS (60 bytes), DestinationRule `trafficPolicy.tls` of a cluster (ClusterTLSSpec,
// TLSSpec.swift), after the top-level / port-level / subset merge. No two records are equal.
//     0: modeU8             `ClusterTLSMode.rawValue`: simple or mutual (never disable: a plain-text
//                           cluster has no record)
//     1: flagsU8            bit 0: insecureSkipVerify; other bits 0
//     2: padU16
//     4: caCertificates StrRef     PEM bundle verifying the upstream; empty = the system's CAs
//    12: certificateChain StrRef   PEM client certificate chain; non-empty exactly for mutual
//    20: privateKey StrRef         PEM client key; non-empty exactly for mutual
//    28: sni StrRef                empty = the request's Host (without its port)
//    36: firstSanU32        TLSName records: subjectAltNames the upstream certificate must carry
//    40: sanCountU32
//    44: identityU64        `ClusterTLSIdentity` of the other fields (never 0): equal settings
//                           give equal identities, in any image; a reader recomputes it and
//                           rejects a record whose identity does not match
//    52: crl StrRef                PEM CRLs checking the upstream's chain (`caCrl`); empty = none
//   insecureSkipVerify excludes a CA and SANs (Istio rejects the combination) and CRLs.
//
// Endpoint (32 bytes):
//     0: familyU8           4 or 6
//     1: padU8
//     2: portU16
//     4: weightU32
//     8: idU32              index into the shared-memory health array
//    12: address[16]        network byte order; IPv4 uses the first 4 bytes, the rest are 0
//    28: padU32
//
// Regexes: StrRef per distinct pattern; a worker's `RouteMatcher` compiles them by index (full
// match). Match conditions and CORS origins share them; `uriRegexRewrite` patterns are not here
// (they are searched, not fully matched) but in the route record.
// Domains: StrRef per virtual-host domain.
// Strings: raw bytes, deduplicated, no terminators. They include the TLS servers' and the
// clusters' PEM certificates and private keys: the image is as secret as the key files it was
// built from.

/// Constants of the image format. Offsets and sizes are the ones documented above.
public enum Layout {
    /// "IRTB" read as a little-endian UInt32.
    public static let magic: UInt32 = 0x4254_5249
    /// Bumped on any change of a record's size or meaning.
    /// 2: listeners grew to 48 bytes (TCP routes), section `tcpRoutes` added.
    /// 3: route actions and cluster traffic policies: routes 168 bytes, weighted clusters 20,
    ///    clusters 72; sections headerOps, retryStatuses, mirrors, cors, origins; header 160.
    /// 4: TLS: listeners grew to 104 bytes (TLS servers and routes, their SNI tables); sections
    ///    tlsServers, tlsRoutes, tlsNames; header 192.
    /// 5: TLS to upstreams: clusters 76 bytes (tlsI32), section clusterTLS; header 192 with 22
    ///    sections.
    /// 6: clusters 88 bytes (maxConcurrentStreamsU32, h2KeepaliveIntervalMsU32,
    ///    h2KeepaliveTimeoutMsU32); TLS servers 100 bytes (a second certificate, CRLs);
    ///    ClusterTLS 60 bytes (upstream CRLs, in the identity too).
    public static let version: UInt16 = 6
    static let headerBytes = 192
    static let sectionTableOffset = 16
    /// Marks a nil optional string.
    static let absent: UInt32 = 0xFFFF_FFFF

    static let listenerBytes = 104
    static let vhostBytes = 28
    static let strRefBytes = 8
    static let hostSlotBytes = 16
    static let routeBytes = 168
    static let matchBytes = 16
    static let conditionBytes = 24
    static let weightedBytes = 20
    static let clusterBytes = 88
    static let endpointBytes = 32
    static let tcpRouteBytes = 24
    static let headerOpBytes = 20
    static let retryStatusBytes = 2
    static let mirrorBytes = 8
    static let corsBytes = 40
    static let originBytes = 16
    static let tlsServerBytes = 100
    static let tlsRouteBytes = 32
    static let clusterTLSBytes = 60
}

/// Sections of the image, in the order of the header's section table.
public enum Section: UInt8, Sendable, CaseIterable {
    case listeners = 0, virtualHosts, domains, hostSlots, routes, matches, conditions, weighted,
         clusters, endpoints, regexes, strings, tcpRoutes, headerOps, retryStatuses, mirrors, cors, origins,
         tlsServers, tlsRoutes, tlsNames, clusterTLS

    /// Bytes per record (1 for the string bytes).
    var recordBytes: Int {
        switch self {
        case .listeners: return Layout.listenerBytes
        case .virtualHosts: return Layout.vhostBytes
        case .domains, .regexes, .tlsNames: return Layout.strRefBytes
        case .hostSlots: return Layout.hostSlotBytes
        case .routes: return Layout.routeBytes
        case .matches: return Layout.matchBytes
        case .conditions: return Layout.conditionBytes
        case .weighted: return Layout.weightedBytes
        case .clusters: return Layout.clusterBytes
        case .endpoints: return Layout.endpointBytes
        case .strings: return 1
        case .tcpRoutes: return Layout.tcpRouteBytes
        case .headerOps: return Layout.headerOpBytes
        case .retryStatuses: return Layout.retryStatusBytes
        case .mirrors: return Layout.mirrorBytes
        case .cors: return Layout.corsBytes
        case .origins: return Layout.originBytes
        case .tlsServers: return Layout.tlsServerBytes
        case .tlsRoutes: return Layout.tlsRouteBytes
        case .clusterTLS: return Layout.clusterTLSBytes
        }
    }
}

/// What a route does when it matches.
public enum RouteActionKind: UInt8, Sendable {
    case forward = 1
    case directResponse = 2
    case redirect = 3
}

/// Which part of the request a condition looks at.
public enum ConditionTarget: UInt8, Sendable {
    case uri = 1
    case scheme = 2
    case method = 3
    case authority = 4
    case header = 5
    /// Inverted header match; a missing header counts as the empty string.
    case withoutHeader = 6
    case queryParam = 7
}

/// How a condition compares.
public enum ConditionKind: UInt8, Sendable {
    case exact = 1
    case prefix = 2
    case regex = 3
    case present = 4
}
