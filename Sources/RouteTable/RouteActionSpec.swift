// What a matched route does to the request besides choosing where it goes: rewrites, header
// operations, retries, fault injection, mirrors and CORS (istio-semantics.md §1.4, §3.2).
// Compiler's view, like TableSpec.swift: resolved values with Istio's defaults applied, no
// Istio names left. The image form and its reader are in TableLayout.swift and
// TableReader+Actions.swift.

/// The per-route actions. `RouteActionsSpec()` is what a VirtualService rule without any of
/// these fields gets: no rewrite, no header operations, Istio's default retry policy, no
/// fault, no mirror, no CORS.
public struct RouteActionsSpec: Sendable, Equatable {
    public var rewrite: RewriteSpec?
    /// Rule-level `headers`.
    public var headers: HeaderOpsSpec
    public var retry: RetrySpec
    public var fault: FaultSpec?
    /// In configuration order; mirrors with 0 % are dropped by the compiler.
    public var mirrors: [MirrorSpec]
    public var cors: CorsSpec?

    public init(rewrite: RewriteSpec? = nil, headers: HeaderOpsSpec = HeaderOpsSpec(), retry: RetrySpec = .istioDefault,
                fault: FaultSpec? = nil, mirrors: [MirrorSpec] = [], cors: CorsSpec? = nil) {
        self.rewrite = rewrite
        self.headers = headers
        self.retry = retry
        self.fault = fault
        self.mirrors = mirrors
        self.cors = cors
    }
}

/// `rewrite`: applied before forwarding. At most one of `uri` and `uriRegex` (validation).
public struct RewriteSpec: Sendable, Equatable {
    /// Replaces the part of the path the route's uri match matched (Envoy prefix_rewrite): the
    /// prefix for a prefix match, the whole path for exact and regex matches, and the leading
    /// "/" when the route has no uri match (Istio matches prefix "/" then).
    public var uri: String?
    /// Replaces the Host / :authority sent upstream.
    public var authority: String?
    /// `uriRegexRewrite`: every non-overlapping match of `pattern` (RE2) in the path is replaced
    /// by `substitution` (`\1`… are capture groups), like Envoy's `regex_rewrite`.
    public var uriRegex: RegexRewriteSpec?

    public init(uri: String? = nil, authority: String? = nil, uriRegex: RegexRewriteSpec? = nil) {
        self.uri = uri
        self.authority = authority
        self.uriRegex = uriRegex
    }
}

public struct RegexRewriteSpec: Sendable, Equatable {
    public var pattern: String
    public var substitution: String
    public init(pattern: String, substitution: String) {
        self.pattern = pattern
        self.substitution = substitution
    }
}

/// How a header operation changes a header.
public enum HeaderOpKind: UInt8, Sendable, Equatable {
    /// Replace every value of the header (add it when absent).
    case set = 1
    /// Append one more value ("a comma-separated list of values").
    case add = 2
    /// Delete the header.
    case remove = 3
}

public struct HeaderOpSpec: Sendable, Equatable {
    public var kind: HeaderOpKind
    /// Lower-case header name (validation rejects pseudo-headers). A `set host` request
    /// operation is an authority rewrite (Istio turns it into Envoy's host_rewrite_literal).
    public var name: String
    /// Empty for `.remove`. May hold Envoy `%VAR%` formatters as written (`%%` is a literal `%`).
    public var value: String

    public init(_ kind: HeaderOpKind, _ name: String, _ value: String = "") {
        self.kind = kind
        self.name = name
        self.value = value
    }
}

/// `headers` of a rule or of one weighted destination: operations in the order to apply them.
/// The compiler writes Envoy's order: removes first, then sets, then adds, each group sorted
/// by name (Istio sorts the maps' keys).
public struct HeaderOpsSpec: Sendable, Equatable {
    /// Applied to the request sent upstream.
    public var request: [HeaderOpSpec]
    /// Applied to the response sent downstream.
    public var response: [HeaderOpSpec]

    public init(request: [HeaderOpSpec] = [], response: [HeaderOpSpec] = []) {
        self.request = request
        self.response = response
    }

    public var isEmpty: Bool { request.isEmpty && response.isEmpty }
}

/// Conditions a retry policy retries on: Envoy's `x-envoy-retry-on` (HTTP) and
/// `x-envoy-retry-grpc-on` (gRPC status) policies. One bit per policy; the values are part of
/// the image format (TableLayout.swift), append only.
public struct RetryOn: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Upstream answered 5xx, or timed out, or the connection failed or was reset.
    public static let status5xx = RetryOn(rawValue: 1 << 0)
    /// 502, 503 or 504.
    public static let gatewayError = RetryOn(rawValue: 1 << 1)
    /// Disconnect, reset or read timeout before the response began.
    public static let reset = RetryOn(rawValue: 1 << 2)
    public static let connectFailure = RetryOn(rawValue: 1 << 3)
    /// 409.
    public static let retriable4xx = RetryOn(rawValue: 1 << 4)
    /// HTTP/2 REFUSED_STREAM.
    public static let refusedStream = RetryOn(rawValue: 1 << 5)
    /// A status in `RetrySpec.retriableStatusCodes`.
    public static let retriableStatusCodes = RetryOn(rawValue: 1 << 6)
    /// gRPC status CANCELLED (1).
    public static let cancelled = RetryOn(rawValue: 1 << 7)
    /// gRPC status DEADLINE_EXCEEDED (4).
    public static let deadlineExceeded = RetryOn(rawValue: 1 << 8)
    /// gRPC status INTERNAL (13).
    public static let `internal` = RetryOn(rawValue: 1 << 9)
    /// gRPC status RESOURCE_EXHAUSTED (8).
    public static let resourceExhausted = RetryOn(rawValue: 1 << 10)
    /// gRPC status UNAVAILABLE (14).
    public static let unavailable = RetryOn(rawValue: 1 << 11)
    /// Reset before any request byte was sent upstream.
    public static let resetBeforeRequest = RetryOn(rawValue: 1 << 12)
    /// Envoy-specific (`x-envoy-ratelimited`); carried, never true for ingressd upstreams.
    public static let envoyRatelimited = RetryOn(rawValue: 1 << 13)
    /// Retriable response headers (Istio offers no way to configure them).
    public static let retriableHeaders = RetryOn(rawValue: 1 << 14)
    public static let http3PostConnectFailure = RetryOn(rawValue: 1 << 15)

    /// Every defined bit; an image with another bit set is corrupt.
    public static let all = RetryOn(rawValue: (1 << 16) - 1)

    /// Envoy's policy names, in bit order.
    public static let names: [(name: String, bit: RetryOn)] = [
        ("5xx", .status5xx), ("gateway-error", .gatewayError), ("reset", .reset),
        ("connect-failure", .connectFailure), ("retriable-4xx", .retriable4xx), ("refused-stream", .refusedStream),
        ("retriable-status-codes", .retriableStatusCodes), ("cancelled", .cancelled),
        ("deadline-exceeded", .deadlineExceeded), ("internal", .internal), ("resource-exhausted", .resourceExhausted),
        ("unavailable", .unavailable), ("reset-before-request", .resetBeforeRequest),
        ("envoy-ratelimited", .envoyRatelimited), ("retriable-headers", .retriableHeaders),
        ("http3-post-connect-failure", .http3PostConnectFailure),
    ]

    /// The policy named `name` (Envoy spelling), or nil.
    public init?(name: String) {
        guard let e = RetryOn.names.first(where: { $0.name == name }) else { return nil }
        self = e.bit
    }

    /// "connect-failure,refused-stream,…" in bit order (for display).
    public var text: String { RetryOn.names.filter { contains($0.bit) }.map(\.name).joined(separator: ",") }
}

/// `retries`, resolved. A route whose rule has no `retries` gets `.istioDefault`; `attempts: 0`
/// (or `retries` without `attempts`, Istio's proto default) gets `.disabled`.
public struct RetrySpec: Sendable, Equatable {
    /// Retries after the first try (at most 1 + attempts requests); 0 = no retries.
    public var attempts: UInt32
    /// Timeout of each try in milliseconds; 0 = none (the route timeout bounds all tries).
    public var perTryTimeoutMs: UInt32
    public var retryOn: RetryOn
    /// Statuses retried when `retryOn` has `.retriableStatusCodes`, in configuration order.
    public var retriableStatusCodes: [UInt16]
    /// `retryRemoteLocalities` (Envoy's previous_priorities). ingressd has no localities; carried.
    public var retryRemoteLocalities: Bool
    /// `retryIgnorePreviousHosts` (default true): a retry avoids the endpoints already tried.
    public var ignorePreviousHosts: Bool
    /// Base interval of the exponential back-off between tries, ms (default 25; Envoy's max is 10×).
    public var backoffBaseMs: UInt32

    public init(attempts: UInt32, perTryTimeoutMs: UInt32 = 0, retryOn: RetryOn, retriableStatusCodes: [UInt16] = [],
                retryRemoteLocalities: Bool = false, ignorePreviousHosts: Bool = true, backoffBaseMs: UInt32 = 25) {
        self.attempts = attempts
        self.perTryTimeoutMs = perTryTimeoutMs
        self.retryOn = retryOn
        self.retriableStatusCodes = retriableStatusCodes
        self.retryRemoteLocalities = retryRemoteLocalities
        self.ignorePreviousHosts = ignorePreviousHosts
        self.backoffBaseMs = backoffBaseMs
    }

    /// Istio's `retryOn` when absent: connect-failure,refused-stream,unavailable,cancelled,
    /// retriable-status-codes (retry.go). Since Istio 1.24 no status code comes with it: 503
    /// was removed as unsafe (istio/istio 65aaaf4f8c5).
    public static let defaultRetryOn: RetryOn = [.connectFailure, .refusedStream, .unavailable, .cancelled,
                                                 .retriableStatusCodes]
    /// The policy of a rule without `retries`: 2 attempts on `defaultRetryOn`, no status codes.
    public static let istioDefault = RetrySpec(attempts: 2, retryOn: defaultRetryOn)
    /// `attempts: 0`.
    public static let disabled = RetrySpec(attempts: 0, retryOn: [])
}

/// `fault`: delay and abort are independent.
public struct FaultSpec: Sendable, Equatable {
    public var delay: FaultDelaySpec?
    public var abort: FaultAbortSpec?
    public init(delay: FaultDelaySpec? = nil, abort: FaultAbortSpec? = nil) {
        self.delay = delay
        self.abort = abort
    }
}

public struct FaultDelaySpec: Sendable, Equatable {
    public var fixedDelayMs: UInt32
    /// Share of requests delayed, parts per million (1 000 000 = 100 %). A missing percentage is 0.
    public var ppm: UInt32
    public init(fixedDelayMs: UInt32, ppm: UInt32) {
        self.fixedDelayMs = fixedDelayMs
        self.ppm = ppm
    }
}

public struct FaultAbortSpec: Sendable, Equatable {
    /// The local reply's status (body `fault filter abort`); 200 with `grpcStatus` (Envoy's).
    public var httpStatus: UInt16
    /// Share of requests aborted, parts per million. A missing percentage is 0.
    public var ppm: UInt32
    /// `abort.grpcStatus` as a code (0…16): a gRPC request gets a gRPC reply with it; nil:
    /// the reply's grpc-status follows `httpStatus`.
    public var grpcStatus: UInt8?
    public init(httpStatus: UInt16, ppm: UInt32, grpcStatus: UInt8? = nil) {
        self.httpStatus = httpStatus
        self.ppm = ppm
        self.grpcStatus = grpcStatus
    }
}

/// `mirror` + `mirrorPercentage`, or one `mirrors[]` entry.
public struct MirrorSpec: Sendable, Equatable {
    /// Index into `TableSpec.clusters`, or -1 when the destination or subset does not exist.
    public var cluster: Int32
    /// Share of requests copied, parts per million (default 1 000 000 = 100 %).
    public var ppm: UInt32
    public init(cluster: Int32, ppm: UInt32 = 1_000_000) {
        self.cluster = cluster
        self.ppm = ppm
    }
}

/// `corsPolicy.unmatchedPreflights`: what happens to a preflight whose origin is not allowed.
public enum UnmatchedPreflights: UInt8, Sendable, Equatable {
    /// Forward it upstream (UNSPECIFIED and FORWARD; Envoy's forward_not_matching_preflights).
    case forward = 1
    /// Answer it locally without CORS headers (IGNORE).
    case ignore = 2
}

/// `corsPolicy`, as Istio hands it to Envoy's CORS filter.
public struct CorsSpec: Sendable, Equatable {
    /// Origins allowed: `allowOrigins`, or else the deprecated `allowOrigin` as exact matches.
    /// `.present` does not occur.
    public var allowOrigins: [StringMatchSpec]
    /// Each list is sent joined with "," (Istio does the same); the image keeps only the joined
    /// value, so an entry holding "," reads back as two.
    public var allowMethods: [String]
    public var allowHeaders: [String]
    public var exposeHeaders: [String]
    /// `Access-Control-Max-Age` in whole seconds; nil = not sent.
    public var maxAgeSeconds: UInt32?
    /// Sends `Access-Control-Allow-Credentials: true` when true.
    public var allowCredentials: Bool
    public var unmatchedPreflights: UnmatchedPreflights

    public init(allowOrigins: [StringMatchSpec] = [], allowMethods: [String] = [], allowHeaders: [String] = [],
                exposeHeaders: [String] = [], maxAgeSeconds: UInt32? = nil, allowCredentials: Bool = false,
                unmatchedPreflights: UnmatchedPreflights = .forward) {
        self.allowOrigins = allowOrigins
        self.allowMethods = allowMethods
        self.allowHeaders = allowHeaders
        self.exposeHeaders = exposeHeaders
        self.maxAgeSeconds = maxAgeSeconds
        self.allowCredentials = allowCredentials
        self.unmatchedPreflights = unmatchedPreflights
    }
}
