// Phase 2 of head parsing, shared by requests and responses: field-line syntax
// (RFC 9112 §5, RFC 9110 §5.5) and the semantics of the fields that decide framing and
// forwarding (Content-Length, Transfer-Encoding, Connection, Host, Upgrade, Expect, ...).

/// What the field lines of one head said, accumulated while they are parsed.
@usableFromInline
struct FieldSemantics {
    @usableFromInline var hostCount: Int32 = 0
    @usableFromInline var host: ByteRange = .empty
    /// Content-Length, -1 when absent.
    @usableFromInline var contentLength: Int64 = -1
    /// Content-Length values seen, over every list element of every field (only 1 is accepted).
    @usableFromInline var contentLengthCount: Int32 = 0
    @usableFromInline var hasTransferEncoding = false
    /// `chunked` was seen; any coding after it is an error, so at the end this means
    /// "the final coding is chunked".
    @usableFromInline var chunkedSeen = false
    /// A coding other than `chunked` appeared (before `chunked`): gzip, deflate, anything.
    @usableFromInline var unknownCoding = false
    @usableFromInline var connectionClose = false
    @usableFromInline var connectionKeepAlive = false
    @usableFromInline var connectionUpgrade = false
    /// A Connection token names some other field, which must then be flagged hop-by-hop.
    @usableFromInline var connectionNominates = false
    @usableFromInline var upgradeSeen = false
    /// The Upgrade field asks for h2c (RFC 7540 §3.2): not honoured, as in Envoy — the
    /// request is served as HTTP/1.1 and the Upgrade (and HTTP2-Settings) fields are dropped.
    @usableFromInline var upgradeH2c = false
    @usableFromInline var expectContinue = false
    @usableFromInline var hopByHopSeen = false
    @usableFromInline var xForwardedForIndex: Int32 = -1
    @usableFromInline var xRequestIdIndex: Int32 = -1

    @usableFromInline init() {}
}

/// Outcome of parsing the field lines.
@usableFromInline
enum FieldsResult {
    /// `count` fields; the head ends at `end` (one past the blank line's LF).
    case complete(count: Int32, end: Int)
    /// The bytes ran out at the start of a line: more are needed.
    case incomplete
    case error(HTTPError)
}

/// Parses the field lines in `p[from..<end]` into `headers`, at most `capacity` of them, up to
/// and including the blank line. `isRequest` selects the request-only semantics (Host, Expect,
/// the fields the proxy rewrites).
///
/// Precondition (what keeps every scan in bounds without per-byte checks): `p[end - 1]` is LF.
/// Either phase 1 located the head and `end` is one past its blank line, or the caller's
/// buffer happens to end in LF (the fast path); in the latter case the bytes may run out at a
/// line start, which is `.incomplete`.
@usableFromInline
func parseFields(_ p: UnsafeRawPointer, from: Int, end: Int,
                 headers: UnsafeMutableBufferPointer<HeaderField>, capacity: Int,
                 isRequest: Bool, semantics s: inout FieldSemantics) -> FieldsResult {
    assert(end >= from && byte(p, end &- 1) == asciiLF)
    var i = from
    var count = 0
    while true {
        if i >= end { return .incomplete }
        let first = byte(p, i)
        if first == asciiCR {
            // SAFETY: p[end-1] is LF, so a CR at i < end has a byte after it.
            if byte(p, i &+ 1) == asciiLF { break }
            return .error(.bareCR)
        }
        if first == asciiLF { return .error(.bareLF) }
        if isOWS(first) { return .error(.obsFold) }

        // field-name ":" — the scan stops at the latest at the head's final LF.
        var j = i
        while isTchar(byte(p, j)) { j &+= 1 }
        let stop = byte(p, j)
        if stop != asciiColon {
            return .error(isOWS(stop) && j > i ? .whitespaceBeforeColon : .invalidHeaderName)
        }
        if j == i { return .error(.invalidHeaderName) }

        // OWS field-value OWS CRLF
        var k = j &+ 1
        while isOWS(byte(p, k)) { k &+= 1 }
        let valueStart = k
        while true {
            k = findControl(p, from: k, end: end)
            // SAFETY: end-1 holds LF, a control byte, so k < end.
            let c = byte(p, k)
            if c == asciiHTAB { k &+= 1; continue }
            if c == asciiCR {
                if byte(p, k &+ 1) == asciiLF { break }
                return .error(.bareCR)
            }
            return .error(c == asciiLF ? .bareLF : .invalidHeaderValue)
        }
        var valueEnd = k
        while valueEnd > valueStart && isOWS(byte(p, valueEnd &- 1)) { valueEnd &-= 1 }

        if count >= capacity { return .error(.tooManyHeaders) }
        var field = HeaderField(name: ByteRange(start: i, count: j &- i),
                                value: ByteRange(start: valueStart, count: valueEnd &- valueStart))
        if let error = classify(p, &field, index: Int32(truncatingIfNeeded: count),
                                isRequest: isRequest, &s) {
            return .error(error)
        }
        headers[count] = field
        count &+= 1
        i = k &+ 2
    }
    return .complete(count: Int32(truncatingIfNeeded: count), end: i &+ 2)
}

/// Recognises the fields that matter (by length first, so most names cost one compare) and
/// records what they say. Sets the field's flags.
@inlinable @inline(__always)
func classify(_ p: UnsafeRawPointer, _ f: inout HeaderField, index: Int32, isRequest: Bool,
              _ s: inout FieldSemantics) -> HTTPError? {
    let n = Int(f.name.start), len = Int(f.name.count)
    let vs = Int(f.value.start), ve = Int(f.value.end)
    switch len {
    case 2:
        if equalsLowercase(p, n, len, "te") { f.flags.insert(.hopByHop) }
    case 4:
        if isRequest && equalsLowercase(p, n, len, "host") {
            s.hostCount &+= 1
            s.host = f.value
        }
    case 6:
        if isRequest && equalsLowercase(p, n, len, "expect") {
            if equalsLowercase(p, vs, ve &- vs, "100-continue") { s.expectContinue = true }
        }
    case 7:
        if equalsLowercase(p, n, len, "upgrade") {
            // Flagged (or not) once the whole head is known: see `finishHopByHop`.
            s.upgradeSeen = true
            if equalsLowercase(p, vs, ve &- vs, "h2c") { s.upgradeH2c = true }
        } else if equalsLowercase(p, n, len, "trailer") {
            f.flags.insert(.hopByHop)
        }
    case 10:
        if equalsLowercase(p, n, len, "connection") {
            f.flags.insert(.hopByHop)
            parseConnection(p, vs, ve, &s)
        } else if equalsLowercase(p, n, len, "keep-alive") {
            f.flags.insert(.hopByHop)
        }
    case 12:
        if isRequest && equalsLowercase(p, n, len, "x-request-id") {
            f.flags.insert(.rewritten)
            if s.xRequestIdIndex < 0 { s.xRequestIdIndex = index }
        }
    case 14:
        if equalsLowercase(p, n, len, "content-length") {
            return parseContentLength(p, vs, ve, &s)
        }
    case 15:
        if isRequest && equalsLowercase(p, n, len, "x-forwarded-for") {
            f.flags.formUnion([.rewritten, .forwardedFor])
            if s.xForwardedForIndex < 0 { s.xForwardedForIndex = index }
        }
    case 16:
        if equalsLowercase(p, n, len, "proxy-connection") { f.flags.insert(.hopByHop) }
    case 17:
        if equalsLowercase(p, n, len, "transfer-encoding") {
            return parseTransferEncoding(p, vs, ve, &s)
        }
        if isRequest && equalsLowercase(p, n, len, "x-forwarded-proto") {
            f.flags.insert(.rewritten)
        }
    case 23:
        // Istio's gateways sanitize it (forward_client_cert_details SANITIZE_SET): a client
        // cannot claim a certificate; the proxy sets it for mutual TLS connections.
        if isRequest && equalsLowercase(p, n, len, "x-forwarded-client-cert") {
            f.flags.insert(.rewritten)
        }
    default:
        break
    }
    if f.flags.contains(.hopByHop) { s.hopByHopSeen = true }
    return nil
}

/// Content-Length = 1*DIGIT. RFC 9110 §8.6 lets a recipient merge a list or repeated fields of
/// identical values, but the proxy forwards heads as received, and the next hop may not merge
/// them; so, like Envoy, exactly one value in one field is accepted: differing values are
/// `conflictingContentLength`, identical repeats `repeatedContentLength` (found once the whole
/// head is known, in `checkFraming`).
@usableFromInline
func parseContentLength(_ p: UnsafeRawPointer, _ start: Int, _ end: Int,
                        _ s: inout FieldSemantics) -> HTTPError? {
    var i = start
    while true {
        while i < end && isOWS(byte(p, i)) { i &+= 1 }
        var value: Int64 = 0
        let digitsStart = i
        while i < end {
            let d = byte(p, i) &- 0x30
            if d > 9 { break }
            // 18 digits always fit in Int64; refuse more rather than check each step.
            if i &- digitsStart >= 18 { return .invalidContentLength }
            value = value &* 10 &+ Int64(d)
            i &+= 1
        }
        if i == digitsStart { return .invalidContentLength }
        if s.contentLength >= 0 && s.contentLength != value { return .conflictingContentLength }
        s.contentLength = value
        s.contentLengthCount &+= 1
        while i < end && isOWS(byte(p, i)) { i &+= 1 }
        if i == end { return nil }
        if byte(p, i) != asciiComma { return .invalidContentLength }
        i &+= 1
    }
}

/// Transfer-Encoding = #transfer-coding (RFC 9112 §6.1). Only a final `chunked` frames a
/// message; `chunked` must appear once, last, without parameters. Any other coding (gzip,
/// deflate, ...) is not applied or removed by the proxy, so forwarding it would hand the next
/// hop a framing it may read differently: like Envoy, only `chunked` alone is served and any
/// other coding is `unknownTransferCoding` (501; 502 from an upstream). Empty list elements are
/// skipped (RFC 9110 §5.6.1.2) but an empty field value is refused.
@usableFromInline
func parseTransferEncoding(_ p: UnsafeRawPointer, _ start: Int, _ end: Int,
                           _ s: inout FieldSemantics) -> HTTPError? {
    if start == end { return .invalidTransferEncoding }
    s.hasTransferEncoding = true
    var i = start
    while i < end {
        while i < end && (isOWS(byte(p, i)) || byte(p, i) == asciiComma) { i &+= 1 }
        if i == end { break }
        let tokenStart = i
        while i < end && isTchar(byte(p, i)) { i &+= 1 }
        let tokenLength = i &- tokenStart
        if tokenLength == 0 { return .invalidTransferEncoding }
        while i < end && isOWS(byte(p, i)) { i &+= 1 }
        var hasParameters = false
        if i < end && byte(p, i) == asciiSemicolon {
            hasParameters = true
            while i < end && byte(p, i) != asciiComma { i &+= 1 }
        } else if i < end && byte(p, i) != asciiComma {
            return .invalidTransferEncoding
        }
        // Anything after `chunked` means chunked is not final.
        if s.chunkedSeen { return .invalidTransferEncoding }
        if equalsLowercase(p, tokenStart, tokenLength, "chunked") {
            if hasParameters { return .invalidTransferEncoding }
            s.chunkedSeen = true
        } else {
            s.unknownCoding = true
        }
    }
    return nil
}

/// Connection = #connection-option; records close / keep-alive / upgrade and whether other
/// fields are nominated.
@usableFromInline
func parseConnection(_ p: UnsafeRawPointer, _ start: Int, _ end: Int, _ s: inout FieldSemantics) {
    var i = start
    while i < end {
        while i < end && (isOWS(byte(p, i)) || byte(p, i) == asciiComma) { i &+= 1 }
        let tokenStart = i
        while i < end && byte(p, i) != asciiComma { i &+= 1 }
        var tokenEnd = i
        while tokenEnd > tokenStart && isOWS(byte(p, tokenEnd &- 1)) { tokenEnd &-= 1 }
        let length = tokenEnd &- tokenStart
        if length == 0 { continue }
        if equalsLowercase(p, tokenStart, length, "close") {
            s.connectionClose = true
        } else if equalsLowercase(p, tokenStart, length, "keep-alive") {
            s.connectionKeepAlive = true
        } else if equalsLowercase(p, tokenStart, length, "upgrade") {
            s.connectionUpgrade = true
        } else {
            s.connectionNominates = true
        }
    }
}

/// Framing checks common to requests and responses, once every field is known.
@usableFromInline
func checkFraming(_ s: FieldSemantics) -> HTTPError? {
    if s.hasTransferEncoding {
        if s.contentLength >= 0 { return .contentLengthAndTransferEncoding }
        if !s.chunkedSeen { return .invalidTransferEncoding }
        if s.unknownCoding { return .unknownTransferCoding }
    }
    if s.contentLengthCount > 1 { return .repeatedContentLength }
    return nil
}

/// Flags the Upgrade fields (unless `keepUpgrade`) and every field a Connection token names.
/// Runs only when the head has an Upgrade field or a nominating Connection token, both rare.
/// The framing fields (Host, Content-Length, Transfer-Encoding) are never flagged by a
/// Connection token: dropping them would desynchronise the upstream (a known smuggling trick).
@usableFromInline
func finishHopByHop(_ p: UnsafeRawPointer, _ headers: UnsafeMutableBufferPointer<HeaderField>,
                    count: Int, keepUpgrade: Bool, _ s: inout FieldSemantics) {
    if s.upgradeSeen && !keepUpgrade {
        for i in 0..<count where equalsLowercase(p, Int(headers[i].name.start),
                                                 Int(headers[i].name.count), "upgrade") {
            headers[i].flags.insert(.hopByHop)
            s.hopByHopSeen = true
        }
    }
    guard s.connectionNominates else { return }
    for c in 0..<count {
        let name = headers[c].name
        guard equalsLowercase(p, Int(name.start), Int(name.count), "connection") else { continue }
        let end = Int(headers[c].value.end)
        var i = Int(headers[c].value.start)
        while i < end {
            while i < end && (isOWS(byte(p, i)) || byte(p, i) == asciiComma) { i &+= 1 }
            let tokenStart = i
            while i < end && byte(p, i) != asciiComma { i &+= 1 }
            var tokenEnd = i
            while tokenEnd > tokenStart && isOWS(byte(p, tokenEnd &- 1)) { tokenEnd &-= 1 }
            let length = tokenEnd &- tokenStart
            if length == 0
                || equalsLowercase(p, tokenStart, length, "close")
                || equalsLowercase(p, tokenStart, length, "keep-alive")
                || equalsLowercase(p, tokenStart, length, "upgrade")
                || equalsLowercase(p, tokenStart, length, "host")
                || equalsLowercase(p, tokenStart, length, "content-length")
                || equalsLowercase(p, tokenStart, length, "transfer-encoding") { continue }
            for h in 0..<count where Int(headers[h].name.count) == length
                && equalsIgnoringCase(p, Int(headers[h].name.start), tokenStart, length) {
                headers[h].flags.insert(.hopByHop)
                s.hopByHopSeen = true
            }
        }
    }
}
