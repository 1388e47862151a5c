// Message body length (RFC 9112 §6.3), decided from a parsed head.

/// How a message body is delimited.
@frozen
public enum BodyFraming: Equatable, Sendable {
    /// No body follows the head (also used for Content-Length: 0).
    case none
    /// Exactly this many bytes follow (> 0).
    case length(Int64)
    /// A chunked body follows; walk it with `ChunkedScanner`.
    case chunked
    /// The body runs until the upstream closes the connection (responses only); the
    /// connection cannot be reused afterwards.
    case untilClose
}

/// Request bodies (RFC 9112 §6.3 rules 4–7): chunked, Content-Length, or none. A request is
/// never delimited by close. The parser has already refused every ambiguous combination.
@inlinable
public func requestBodyFraming(_ head: RequestHead) -> BodyFraming {
    if head.isChunked { return .chunked }
    if head.contentLength > 0 { return .length(head.contentLength) }
    return .none
}

/// Response bodies (RFC 9112 §6.3 rules 1–8):
/// * a response to HEAD, and every 1xx, 204 and 304, has no body whatever its fields say;
/// * a 2xx response to CONNECT starts a tunnel: no body (the caller switches to tunnelling);
/// * otherwise chunked, then Content-Length, and else the body runs until close.
/// A 101 has no body; the caller tunnels after it when it accepted the upgrade.
@inlinable
public func responseBodyFraming(_ head: ResponseHead, requestMethod: HTTPMethod) -> BodyFraming {
    let status = head.status
    if requestMethod == .head || status < 200 || status == 204 || status == 304 { return .none }
    if requestMethod == .connect && status < 300 { return .none }
    if head.isChunked { return .chunked }
    if head.contentLength >= 0 { return head.contentLength == 0 ? .none : .length(head.contentLength) }
    return .untilClose
}
