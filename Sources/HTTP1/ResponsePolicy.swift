// What a proxy does with an upstream's interim (1xx) responses (RFC 9110 §15.2), and which
// responses end the reuse of the upstream connection. Sans-I/O: decisions from what the parsed
// heads said; the engine acts on them.

/// Interim responses accepted per exchange before the upstream is taken for broken (502):
/// a real server sends one `100 Continue`, maybe a `103 Early Hints` or a few `102 Processing`;
/// ten thousand of them are an upstream stalling the exchange past every head timeout.
public let maxInformationalResponses: UInt8 = 16

/// What to do with one interim response head.
@frozen
public enum InformationalAction: Equatable, Sendable {
    /// Send it to the client (a `100 Continue` the client asked for, once).
    case forward
    /// Read past it: the client did not ask for it (Envoy drops 1xx other than 100 and a 101
    /// that accepts an upgrade).
    case drop
    /// A protocol error: a `101` the client did not ask for (the connection would change
    /// protocol under the client), or more than `maxInformationalResponses` interim heads.
    case reject
}

/// The action for an interim head with `status` (100...199), the `seen`th one of this exchange
/// (counting it). `expectContinue`: the client sent `Expect: 100-continue` in HTTP/1.1 (an
/// HTTP/1.0 client never gets a 1xx, RFC 9110 §15.2). `continueForwarded`: a `100` already
/// went to the client. A `101` answering an upgrade the client asked for is not interim (the
/// caller tunnels) and must not be passed here.
@inlinable
public func informationalAction(status: UInt16, seen: UInt8, expectContinue: Bool,
                                continueForwarded: Bool) -> InformationalAction {
    if status == 101 || seen > maxInformationalResponses { return .reject }
    if status == 100 && expectContinue && !continueForwarded { return .forward }
    return .drop
}

/// Whether the upstream connection can carry another request after this response (its framing
/// and `Connection` aside): never after a `101` (the connection switched protocol) or a 2xx to
/// CONNECT (it is a tunnel now, RFC 9110 §9.3.6): pooling it would put the next client's
/// request inside the first client's tunnel.
@inlinable
public func responseAllowsReuse(status: UInt16, requestMethod: HTTPMethod) -> Bool {
    if status == 101 { return false }
    if requestMethod == .connect && status >= 200 && status < 300 { return false }
    return true
}
