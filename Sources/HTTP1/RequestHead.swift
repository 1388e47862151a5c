/// The four request-target forms (RFC 9112 §3.2).
@frozen
public enum RequestTargetForm: UInt8, Sendable {
    /// `/path?query`, the usual form.
    case origin
    /// `http://host/path?query` (proxies; servers must accept it). The target's host wins.
    case absolute
    /// `host:port`, only with CONNECT.
    case authority
    /// `*`, only with OPTIONS.
    case asterisk
}

/// A parsed request head. Every `ByteRange` is relative to the start of the buffer that was
/// parsed; the caller keeps that buffer alive and unmoved while it uses them.
/// Filled by `parseRequestHead`; its contents are unspecified unless that returned `.complete`.
@frozen
public struct RequestHead: Sendable {
    /// The method token as received.
    public var methodRange: ByteRange
    public var method: HTTPMethod
    /// The request-target as received.
    public var target: ByteRange
    public var targetForm: RequestTargetForm
    /// The path without the query. Empty for authority-form, and for an absolute-form target
    /// without a path (`http://h`, whose path means "/"). `*` for asterisk-form.
    public var path: ByteRange
    /// The query without its '?'; empty when absent (or present but empty).
    public var query: ByteRange
    public var version: HTTPVersion
    /// `method SP target SP version`, without CRLF: what the proxy forwards as its request line.
    public var requestLine: ByteRange
    /// Where the request goes: the Host value, or the authority of an absolute-form or
    /// authority-form target (those win over Host). Empty when the client sent none (HTTP/1.0).
    /// Includes any port; the router strips it.
    public var host: ByteRange
    /// Header fields written to the caller's array.
    public var headerCount: Int32
    /// The (merged) Content-Length, -1 when absent.
    public var contentLength: Int64
    /// The body is chunked (Transfer-Encoding ends in `chunked`).
    public var isChunked: Bool
    /// The connection may be reused after this request: HTTP/1.1 unless a Connection token is
    /// `close`; HTTP/1.0 only with a `keep-alive` token and no `close`.
    public var keepAlive: Bool
    /// HTTP/1.1 request with a Connection token `upgrade` and an Upgrade field (WebSocket).
    /// Its Upgrade field is then not flagged hop-by-hop, so it is forwarded.
    public var isUpgrade: Bool
    /// HTTP/1.1 request with `Expect: 100-continue` (ignored in HTTP/1.0, RFC 9110 §10.1.1).
    public var expectContinue: Bool
    /// Index in the header array of the first x-forwarded-for field, -1 if none.
    public var xForwardedForIndex: Int32
    /// Index in the header array of the first x-request-id field, -1 if none.
    public var xRequestIdIndex: Int32
    /// Bytes from the start of the buffer through the blank line's LF. The next pipelined
    /// request (or the body) starts here.
    public var headLength: Int32

    @inlinable
    public init() {
        methodRange = .empty
        method = .other
        target = .empty
        targetForm = .origin
        path = .empty
        query = .empty
        version = .http11
        requestLine = .empty
        host = .empty
        headerCount = 0
        contentLength = -1
        isChunked = false
        keepAlive = false
        isUpgrade = false
        expectContinue = false
        xForwardedForIndex = -1
        xRequestIdIndex = -1
        headLength = 0
    }
}

/// A parsed response head (from an upstream). Ranges are relative to the parsed buffer.
@frozen
public struct ResponseHead: Sendable {
    /// The status code, 100–999.
    public var status: UInt16
    public var version: HTTPVersion
    /// `version SP status SP reason`, without CRLF, as received.
    public var statusLine: ByteRange
    /// The reason phrase (may be empty).
    public var reason: ByteRange
    public var headerCount: Int32
    /// The (merged) Content-Length, -1 when absent.
    public var contentLength: Int64
    public var isChunked: Bool
    /// The upstream connection may be reused: false on `Connection: close`, and on HTTP/1.0
    /// without `keep-alive`. (A body delimited by close also ends reuse; see `BodyFraming`.)
    public var keepAlive: Bool
    /// A 101 answer to an upgrade (Connection token `upgrade` and an Upgrade field); its
    /// Upgrade field is then not flagged hop-by-hop.
    public var isUpgrade: Bool
    /// Some field is flagged hop-by-hop. When false the proxy may forward the head bytes
    /// `[0, headLength)` unchanged.
    public var hasHopByHop: Bool
    /// Bytes through the blank line's LF; the body starts here.
    public var headLength: Int32

    @inlinable
    public init() {
        status = 0
        version = .http11
        statusLine = .empty
        reason = .empty
        headerCount = 0
        contentLength = -1
        isChunked = false
        keepAlive = false
        isUpgrade = false
        hasHopByHop = false
        headLength = 0
    }
}
