// Types every HTTP codec (HTTP/1.1 now, HTTP/2 next) and the route table share. No I/O, no
// Foundation: the data plane's vocabulary.

/// Request methods the proxy treats specially; any other token is `.other` (methods are
/// case-sensitive, RFC 9110 §9.1, so `get` is `.other`).
@frozen
public enum HTTPMethod: UInt8, Sendable {
    case get, head, post, put, delete, connect, options, trace, patch, other
}

/// The two HTTP/1 versions ingressd speaks. Anything else is refused with 505.
@frozen
public enum HTTPVersion: UInt8, Sendable {
    case http10, http11
}
