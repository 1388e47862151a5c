// Responses the proxy makes itself (DESIGN.md §8), shaped like Envoy's local replies so that
// clients and scripts see what Istio's gateway sends:
//
//   HTTP/1.1 503 Service Unavailable\r\n
//   content-length: 19\r\n
//   content-type: text/plain\r\n        (only with a body)
//   date: <date>\r\n
//   server: istio-envoy\r\n
//   connection: close\r\n               (only when closing)
//   \r\n
//   no healthy upstream

/// Bodies of Envoy's local replies, for the cases DESIGN.md §8 names. 404 (no route) has an
/// empty body.
public enum LocalReplyBody {
    public static let noHealthyUpstream: StaticString = "no healthy upstream"
    public static let upstreamConnectFailure: StaticString =
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
    public static let upstreamReset: StaticString =
        "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
    public static let upstreamRequestTimeout: StaticString = "upstream request timeout"
    public static let faultAbort: StaticString = "fault filter abort"
    public static let badRequest: StaticString = "Bad Request"
    public static let requestTimeout: StaticString = "request timeout"
    /// Envoy's body for a stream idle timeout.
    public static let streamTimeout: StaticString = "stream timeout"
    public static let payloadTooLarge: StaticString = "Payload Too Large"
    public static let uriTooLong: StaticString = "URI Too Long"
    public static let headersTooLarge: StaticString = "Request Header Fields Too Large"
    public static let badGateway: StaticString = "Bad Gateway"
    public static let notImplemented: StaticString = "Not Implemented"
    public static let versionNotSupported: StaticString = "HTTP Version Not Supported"
}

/// Writes a complete local response: head (see the file comment) and `body`.
/// - `date`: the `date` value, an IMF-fixdate the caller formats once per second.
/// - `closeConnection`: add `connection: close` (after errors that end the connection).
/// - `omitBody`: for a HEAD request: the head says the body's length but no body follows.
/// Returns the bytes written, or nil when `out` is too small.
public func serializeLocalResponse(status: UInt16, body: UnsafeRawBufferPointer,
                                   date: UnsafeRawBufferPointer, closeConnection: Bool,
                                   omitBody: Bool = false,
                                   fields: UnsafeBufferPointer<HeaderEdit> = UnsafeBufferPointer(start: nil, count: 0),
                                   into out: UnsafeMutableRawBufferPointer) -> Int? {
    var w = ByteWriter(out)
    writeStatusLine(&w, status)
    // Extra fields (a CORS preflight answer): written as `name: value`, whatever their kind.
    for k in 0..<fields.count {
        w.append(fields[k].name)
        w.append(": ")
        w.append(fields[k].value)
        w.append("\r\n")
    }
    writeLocalFields(&w, bodyCount: body.count, date: date, closeConnection: closeConnection)
    if !omitBody { w.append(body) }
    return w.result
}

/// A `grpc-timeout` value (gRPC over HTTP/2: 1–8 digits and a unit, H M S m u n) in
/// milliseconds, rounded up (at least 1); nil when malformed.
public func parseGRPCTimeout(_ v: UnsafeRawBufferPointer) -> UInt64? {
    guard v.count >= 2, v.count <= 9 else { return nil }
    var n: UInt64 = 0
    for k in 0..<(v.count - 1) {
        let b = v[k]
        guard b >= 0x30 && b <= 0x39 else { return nil }
        n = n * 10 + UInt64(b - 0x30)
    }
    let ms: UInt64
    switch v[v.count - 1] {
    case UInt8(ascii: "H"): ms = n * 3_600_000
    case UInt8(ascii: "M"): ms = n * 60_000
    case UInt8(ascii: "S"): ms = n * 1000
    case UInt8(ascii: "m"): ms = n
    case UInt8(ascii: "u"): ms = (n + 999) / 1000
    case UInt8(ascii: "n"): ms = (n + 999_999) / 1_000_000
    default: return nil
    }
    return max(ms, 1)
}

/// The gRPC status Envoy gives a local reply to a gRPC request (its `httpToGrpcStatus`; an
/// upstream timeout, the only 504 ingressd answers, is DEADLINE_EXCEEDED as Envoy's router
/// sends it).
public func grpcStatus(forHTTP status: UInt16) -> Int {
    switch status {
    case 400: return 13   // INTERNAL
    case 401: return 16   // UNAUTHENTICATED
    case 403: return 7    // PERMISSION_DENIED
    case 404: return 12   // UNIMPLEMENTED
    case 429, 502, 503: return 14   // UNAVAILABLE
    case 504: return 4    // DEADLINE_EXCEEDED
    default: return 2     // UNKNOWN
    }
}

/// The `grpc-status` of a response head (`name: value` lines; the name in any case), or -1
/// when it has none or its value is not a number (0…254). For the stats of gRPC requests.
public func grpcStatusField(_ head: UnsafeRawBufferPointer) -> Int {
    let name: StaticString = "grpc-status:"
    let n = name.utf8CodeUnitCount
    var i = 0
    while i + n < head.count {
        // Line starts only: the first line is the status line.
        if head[i] == 0x0A && i + 1 + n <= head.count {
            var k = 0
            while k < n && head[i + 1 + k] | (head[i + 1 + k] >= 0x41 && head[i + 1 + k] <= 0x5A ? 0x20 : 0) == name.utf8Start[k] { k += 1 }
            if k == n {
                var j = i + 1 + n
                while j < head.count && (head[j] == 0x20 || head[j] == 0x09) { j += 1 }
                var v = 0, digits = 0
                while j < head.count && head[j] >= 0x30 && head[j] <= 0x39 && v < 256 {
                    v = v * 10 + Int(head[j] - 0x30)
                    digits += 1
                    j += 1
                }
                return digits > 0 && v < 255 ? v : -1
            }
        }
        i += 1
    }
    return -1
}

/// A local reply to a gRPC request, as Envoy sends it: HTTP 200, `content-type:
/// application/grpc`, `grpcStatus` (`grpcStatus(forHTTP:)` of the HTTP status, or a fault's) in
/// `grpc-status` and the reply's text in `grpc-message`
/// (percent-encoded as gRPC says), no body — over HTTP/2 a trailers-only response.
public func serializeGRPCLocalResponse(grpcStatus: Int, message: UnsafeRawBufferPointer,
                                       date: UnsafeRawBufferPointer, closeConnection: Bool,
                                       into out: UnsafeMutableRawBufferPointer) -> Int? {
    var w = ByteWriter(out)
    writeStatusLine(&w, 200)
    w.append("content-type: application/grpc\r\ngrpc-status: ")
    w.appendDecimal(grpcStatus)
    w.append("\r\n")
    if message.count > 0 {
        w.append("grpc-message: ")
        let hex: StaticString = "0123456789ABCDEF"
        for k in 0..<message.count {
            if message[k] >= 0x20 && message[k] <= 0x7E && message[k] != UInt8(ascii: "%") {
                w.append(message.baseAddress! + k, 1)
            } else {
                w.append("%")
                w.append(hex.utf8Start + Int(message[k] >> 4), 1)
                w.append(hex.utf8Start + Int(message[k] & 0xF), 1)
            }
        }
        w.append("\r\n")
    }
    writeLocalFields(&w, bodyCount: 0, date: date, closeConnection: closeConnection)
    return w.result
}

/// `serializeLocalResponse` with a constant body, such as a `LocalReplyBody`.
public func serializeLocalResponse(status: UInt16, body: StaticString,
                                   date: UnsafeRawBufferPointer, closeConnection: Bool,
                                   omitBody: Bool = false,
                                   into out: UnsafeMutableRawBufferPointer) -> Int? {
    serializeLocalResponse(status: status,
                           body: UnsafeRawBufferPointer(start: body.utf8Start, count: body.utf8CodeUnitCount),
                           date: date, closeConnection: closeConnection, omitBody: omitBody, into: out)
}

/// Writes a redirect (301 for `tls.httpsRedirect`, or a VirtualService `redirect` status) with
/// `location` and an empty body. Returns the bytes written, or nil when `out` is too small.
public func serializeRedirect(status: UInt16, location: UnsafeRawBufferPointer,
                              date: UnsafeRawBufferPointer, closeConnection: Bool,
                              into out: UnsafeMutableRawBufferPointer) -> Int? {
    var w = ByteWriter(out)
    writeStatusLine(&w, status)
    w.append("location: ")
    w.append(location)
    w.append("\r\n")
    writeLocalFields(&w, bodyCount: 0, date: date, closeConnection: closeConnection)
    return w.result
}

@usableFromInline
func writeStatusLine(_ w: inout ByteWriter, _ status: UInt16) {
    w.append("HTTP/1.1 ")
    w.appendDecimal(Int(status))
    w.append(" ")
    w.append(reasonPhrase(status))
    w.append("\r\n")
}

@usableFromInline
func writeLocalFields(_ w: inout ByteWriter, bodyCount: Int, date: UnsafeRawBufferPointer,
                      closeConnection: Bool) {
    w.append("content-length: ")
    w.appendDecimal(bodyCount)
    w.append(bodyCount > 0 ? "\r\ncontent-type: text/plain\r\ndate: " : "\r\ndate: ")
    w.append(date)
    w.append(closeConnection ? "\r\nserver: istio-envoy\r\nconnection: close\r\n\r\n"
                             : "\r\nserver: istio-envoy\r\n\r\n")
}

/// The standard reason phrase (RFC 9110 §15), "Unknown" for codes it does not define —
/// as Envoy writes it.
public func reasonPhrase(_ status: UInt16) -> StaticString {
    switch status {
    case 100: return "Continue"
    case 101: return "Switching Protocols"
    case 200: return "OK"
    case 201: return "Created"
    case 202: return "Accepted"
    case 204: return "No Content"
    case 206: return "Partial Content"
    case 301: return "Moved Permanently"
    case 302: return "Found"
    case 303: return "See Other"
    case 304: return "Not Modified"
    case 307: return "Temporary Redirect"
    case 308: return "Permanent Redirect"
    case 400: return "Bad Request"
    case 401: return "Unauthorized"
    case 403: return "Forbidden"
    case 404: return "Not Found"
    case 405: return "Method Not Allowed"
    case 408: return "Request Timeout"
    case 409: return "Conflict"
    case 411: return "Length Required"
    case 413: return "Payload Too Large"
    case 414: return "URI Too Long"
    case 417: return "Expectation Failed"
    case 421: return "Misdirected Request"
    case 426: return "Upgrade Required"
    case 429: return "Too Many Requests"
    case 431: return "Request Header Fields Too Large"
    case 500: return "Internal Server Error"
    case 501: return "Not Implemented"
    case 502: return "Bad Gateway"
    case 503: return "Service Unavailable"
    case 504: return "Gateway Timeout"
    case 505: return "HTTP Version Not Supported"
    default: return "Unknown"
    }
}
