import HTTPCore

/// What the matcher needs to know about one request. Every range points into `bytes`
/// (normally the receive buffer holding the request head). The caller owns `bytes` and
/// `headers` and keeps them valid during the lookup. Built on the request path: no allocation.
@frozen
public struct MatchRequest {
    /// The buffer all ranges index into.
    public var bytes: UnsafeRawBufferPointer
    /// Method token, e.g. "GET".
    public var method: ByteRange
    /// Path without the query string ("/a/b").
    public var path: ByteRange
    /// Query string without the '?', empty when absent.
    public var query: ByteRange
    /// Raw Host / :authority value (may include a port). Matching by domain ignores the port
    /// and case; `authority` matches see the raw value.
    public var authority: ByteRange
    /// True for https (TLS-terminated) listeners.
    public var isHTTPS: Bool
    /// Listener port the request arrived on.
    public var listenerPort: UInt16
    /// Header fields (names as sent; matching is case-insensitive on names).
    public var headers: UnsafeBufferPointer<HeaderField>

    @inlinable
    public init(bytes: UnsafeRawBufferPointer, method: ByteRange, path: ByteRange, query: ByteRange,
                authority: ByteRange, isHTTPS: Bool, listenerPort: UInt16,
                headers: UnsafeBufferPointer<HeaderField>) {
        self.bytes = bytes
        self.method = method
        self.path = path
        self.query = query
        self.authority = authority
        self.isHTTPS = isHTTPS
        self.listenerPort = listenerPort
        self.headers = headers
    }
}
