/// Why a head or a chunked body was refused. Each case names one rule; `status` is the answer the
/// proxy gives the client (for a malformed *upstream* response the proxy answers 502 instead and
/// logs `reason`). After any of these the connection's framing can no longer be trusted: the
/// caller sends the error response and closes the connection (DESIGN.md §8, smuggling refusal).
///
/// One byte, `Equatable`, no payload: cheap to return from the hot path and to compare in tests.
@frozen
public enum HTTPError: UInt8, Error, Equatable, Sendable {
    // Limits (DESIGN.md §8).
    /// The request line is longer than `HTTPLimits.maxRequestLineBytes` (414).
    case requestLineTooLong
    /// The head is longer than `HTTPLimits.maxHeadBytes` (431).
    case headTooLarge
    /// More fields than `HTTPLimits.maxHeaderCount` or than the caller's header array holds (431).
    case tooManyHeaders

    // Start line.
    /// The method is empty or contains a non-tchar byte (400).
    case invalidMethod
    /// The request-target is empty, contains a CTL/SP/'#', or its form does not fit the method (400).
    case invalidTarget
    /// The version is not `HTTP/<digit>.<digit>` (400).
    case invalidVersion
    /// A well-formed version other than HTTP/1.0 and HTTP/1.1 (505).
    case unsupportedVersion
    /// A response status that is not three digits, or not followed by SP / CRLF (upstream: 502).
    case invalidStatus

    // Line and field syntax.
    /// A line ends in LF without CR (400).
    case bareLF
    /// A CR that is not followed by LF (400).
    case bareCR
    /// A field line starts with SP or HTAB: obsolete line folding (400).
    case obsFold
    /// SP or HTAB between a field name and its colon (400).
    case whitespaceBeforeColon
    /// An empty field name, a non-tchar byte in it, or a line without a colon (400).
    case invalidHeaderName
    /// A CTL other than HTAB (or DEL) in a field value (400).
    case invalidHeaderValue

    // Semantics.
    /// HTTP/1.1 request without Host (400).
    case missingHost
    /// More than one Host field (400).
    case multipleHost
    /// Both Content-Length and Transfer-Encoding (400).
    case contentLengthAndTransferEncoding
    /// A Content-Length that is not a list of decimal digits, or overflows (400).
    case invalidContentLength
    /// Content-Length values that differ (400).
    case conflictingContentLength
    /// Transfer-Encoding whose final coding is not `chunked`, that applies `chunked` twice or
    /// with parameters, is empty, or appears in an HTTP/1.0 request (400).
    case invalidTransferEncoding
    /// A transfer coding other than `chunked` before the final `chunked` (`gzip, chunked`, or
    /// `gzip` and `chunked` in two fields): 501, as Envoy answers; the proxy does not decode
    /// codings and will not forward one (RFC 9112 §6.1).
    case unknownTransferCoding

    // Chunked body (RFC 9112 §7.1).
    /// A chunk-size that is empty, not hex, longer than 16 digits or overflows Int64 (400).
    case invalidChunkSize
    /// A malformed chunk extension, or a chunk-size line longer than the scanner allows (400).
    case invalidChunkExtension
    /// Chunk data not followed by CRLF (400).
    case invalidChunkDelimiter
    /// A malformed trailer field, or a trailer section longer than the scanner allows (400).
    case invalidTrailer

    // Added later; kept at the end so earlier raw values do not move.
    /// Content-Length as a list or in more than one field, even with identical values
    /// (`Content-Length: 3, 3`): 400, as Envoy answers (see `parseContentLength`).
    case repeatedContentLength
    /// A Host value (or the authority of an absolute-form or CONNECT target) with a byte that
    /// cannot appear in an authority, such as SP (400, as Envoy's authority check).
    case invalidHost

    /// The status code to answer a downstream client with.
    @inlinable
    public var status: UInt16 {
        switch self {
        case .requestLineTooLong: return 414
        case .headTooLarge, .tooManyHeaders: return 431
        case .unsupportedVersion: return 505
        case .unknownTransferCoding: return 501
        default: return 400
        }
    }

    /// A short, stable reason for logs and access-log response flags.
    public var reason: StaticString {
        switch self {
        case .requestLineTooLong: return "request line too long"
        case .headTooLarge: return "header section too large"
        case .tooManyHeaders: return "too many header fields"
        case .invalidMethod: return "invalid method"
        case .invalidTarget: return "invalid request-target"
        case .invalidVersion: return "invalid HTTP version"
        case .unsupportedVersion: return "unsupported HTTP version"
        case .invalidStatus: return "invalid status line"
        case .bareLF: return "bare LF line ending"
        case .bareCR: return "bare CR"
        case .obsFold: return "obsolete line folding"
        case .whitespaceBeforeColon: return "whitespace before colon"
        case .invalidHeaderName: return "invalid header name"
        case .invalidHeaderValue: return "invalid header value"
        case .missingHost: return "missing Host"
        case .multipleHost: return "multiple Host"
        case .contentLengthAndTransferEncoding: return "both Content-Length and Transfer-Encoding"
        case .invalidContentLength: return "invalid Content-Length"
        case .conflictingContentLength: return "conflicting Content-Length"
        case .invalidTransferEncoding: return "invalid Transfer-Encoding"
        case .unknownTransferCoding: return "unknown transfer coding"
        case .invalidChunkSize: return "invalid chunk size"
        case .invalidChunkExtension: return "invalid chunk extension"
        case .invalidChunkDelimiter: return "missing CRLF after chunk data"
        case .invalidTrailer: return "invalid trailer section"
        case .repeatedContentLength: return "repeated Content-Length"
        case .invalidHost: return "invalid Host"
        }
    }
}

/// Result of a stateless head parse.
@frozen
public enum ParseStatus: Equatable, Sendable {
    /// The head is not complete yet and no limit is exceeded: call again with the same bytes
    /// plus whatever arrives next. The output head is unspecified.
    case incomplete
    /// The head is complete and valid; the output head and header array are filled.
    case complete
    /// The head is invalid or exceeds a limit; see `HTTPError.status`. Close after answering.
    case error(HTTPError)
}
