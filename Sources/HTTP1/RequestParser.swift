// Request head parsing (RFC 9112 §2–§3, §5, §6; DESIGN.md §8 smuggling refusal).

/// Parses the request head at the start of `buffer`.
///
/// Stateless: when it returns `.incomplete`, call it again with the same bytes plus those that
/// arrived since (the buffer may move between calls; only the result of the last call counts).
/// It finds the end of the head first (cheap) and validates the head once complete, but it
/// enforces `limits` on incomplete input too, so the caller never buffers more than
/// `limits.maxHeadBytes` for a head.
///
/// - `buffer`: bytes received on the connection, starting at this request (for pipelined
///   requests, rebase the buffer at the previous request's `headLength` + body). Leading empty
///   lines (CRLF) are skipped. Bytes after the head (body, next request) are not looked at.
/// - `headers`: where the fields go, in order; at most `min(headers.count,
///   limits.maxHeaderCount)` of them, more is 431.
/// - `head`: filled on `.complete`; unspecified otherwise. All ranges are relative to
///   `buffer.baseAddress`.
/// - Returns `.error` for every malformed or ambiguous head; the caller answers with
///   `error.status` and closes the connection. Never traps on any input.
public func parseRequestHead(_ buffer: UnsafeRawBufferPointer, limits: HTTPLimits = .default,
                             headers: UnsafeMutableBufferPointer<HeaderField>,
                             into head: inout RequestHead) -> ParseStatus {
    guard let p = buffer.baseAddress, buffer.count > 0 else { return .incomplete }
    let start: Int, firstLF: Int, end: Int
    switch locateHead(p, buffer.count, limits, skipLeadingCRLF: true) {
    case .incomplete: return .incomplete
    case .error(let error): return .error(error)
    case let .found(s, l, e): (start, firstLF, end) = (s, l, e)
    }
    head = RequestHead()
    if let error = parseRequestLine(p, start: start, lf: firstLF, into: &head) {
        return .error(error)
    }

    var s = FieldSemantics()
    let capacity = min(headers.count, limits.maxHeaderCount)
    switch parseFields(p, from: firstLF &+ 1, end: end, headers: headers, capacity: capacity,
                       isRequest: true, semantics: &s) {
    case .failure(let error): return .error(error)
    case .success(let count): head.headerCount = count
    }

    let http11 = head.version == .http11
    if s.hostCount > 1 { return .error(.multipleHost) }
    if s.hostCount == 0 && http11 { return .error(.missingHost) }
    if let error = checkFraming(s) { return .error(error) }
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing; refuse it
    // rather than guess what the next hop would make of it.
    if s.hasTransferEncoding && !http11 { return .error(.invalidTransferEncoding) }

    if head.targetForm == .origin || head.targetForm == .asterisk { head.host = s.host }
    head.contentLength = s.contentLength
    head.isChunked = s.chunkedSeen
    head.keepAlive = http11 ? !s.connectionClose : (s.connectionKeepAlive && !s.connectionClose)
    head.isUpgrade = http11 && s.connectionUpgrade && s.upgradeSeen
    head.expectContinue = http11 && s.expectContinue
    head.xForwardedForIndex = s.xForwardedForIndex
    head.xRequestIdIndex = s.xRequestIdIndex
    head.headLength = Int32(truncatingIfNeeded: end)
    if s.upgradeSeen || s.connectionNominates {
        finishHopByHop(p, headers, count: Int(head.headerCount), keepUpgrade: head.isUpgrade, &s)
    }
    return .complete
}

/// `method SP request-target SP HTTP-version CRLF`; `lf` is the offset of the line's LF.
/// Exactly one SP between the parts (RFC 9112 §3 allows lenience; a proxy must not be lenient
/// where the next hop might split the line differently).
@usableFromInline
func parseRequestLine(_ p: UnsafeRawPointer, start: Int, lf: Int,
                      into head: inout RequestHead) -> HTTPError? {
    if lf == start || byte(p, lf &- 1) != asciiCR { return .bareLF }
    let lineEnd = lf &- 1  // the CR

    var i = start
    while isTchar(byte(p, i)) { i &+= 1 }
    if i == start || byte(p, i) != asciiSP { return .invalidMethod }
    head.methodRange = ByteRange(start: start, count: i &- start)
    head.method = classifyMethod(p, start, i &- start)

    // request-target: visible ASCII and obs-text; never CTL, SP, DEL or a fragment.
    let targetStart = i &+ 1
    var j = targetStart
    var question = -1
    while true {
        let b = byte(p, j)
        if b <= asciiSP || b == 0x7F { break }
        if b == 0x23 { return .invalidTarget }  // '#'
        if b == 0x3F && question < 0 { question = j }  // '?'
        j &+= 1
    }
    if j == targetStart || byte(p, j) != asciiSP { return .invalidTarget }
    head.target = ByteRange(start: targetStart, count: j &- targetStart)

    // HTTP-version = "HTTP/" DIGIT "." DIGIT, then the line's CR.
    let v = j &+ 1
    if lineEnd &- v != 8 { return .invalidVersion }
    switch parseVersion(p, v) {
    case .failure(let error): return error
    case .success(let version): head.version = version
    }
    head.requestLine = ByteRange(start: start, count: lineEnd &- start)
    return parseTarget(p, targetStart, j, question: question, into: &head)
}

/// Splits the request-target into path/query/host by form, refusing forms that do not fit
/// the method (RFC 9112 §3.2).
@usableFromInline
func parseTarget(_ p: UnsafeRawPointer, _ start: Int, _ end: Int, question: Int,
                 into head: inout RequestHead) -> HTTPError? {
    let first = byte(p, start)
    if head.method == .connect {
        // authority-form: host:port, nothing else.
        var i = start
        while i < end {
            let b = byte(p, i)
            if b == 0x2F || b == 0x3F || b == 0x40 { return .invalidTarget }  // / ? @
            i &+= 1
        }
        head.targetForm = .authority
        head.host = head.target
        return nil
    }
    let pathEnd = question >= 0 ? question : end
    if question >= 0 { head.query = ByteRange(start: question &+ 1, count: end &- question &- 1) }
    if first == 0x2F {  // '/'
        head.targetForm = .origin
        head.path = ByteRange(start: start, count: pathEnd &- start)
        return nil
    }
    if first == 0x2A && end &- start == 1 {  // '*'
        guard head.method == .options else { return .invalidTarget }
        head.targetForm = .asterisk
        head.path = head.target
        return nil
    }
    // absolute-form: "http://" or "https://" authority [path] ["?" query]
    var authorityStart: Int
    if end &- start >= 7 && equalsLowercase(p, start, 7, "http://") {
        authorityStart = start &+ 7
    } else if end &- start >= 8 && equalsLowercase(p, start, 8, "https://") {
        authorityStart = start &+ 8
    } else {
        return .invalidTarget
    }
    var i = authorityStart
    while i < pathEnd && byte(p, i) != 0x2F {
        if byte(p, i) == 0x40 { return .invalidTarget }  // userinfo is refused (RFC 9110 §4.2.4)
        i &+= 1
    }
    if i == authorityStart { return .invalidTarget }
    head.targetForm = .absolute
    head.host = ByteRange(start: authorityStart, count: i &- authorityStart)
    head.path = ByteRange(start: i, count: pathEnd &- i)
    return nil
}

/// "HTTP/1.1" or "HTTP/1.0" at `p[v..<v+8]`; another `HTTP/d.d` is 505, anything else 400.
@usableFromInline
func parseVersion(_ p: UnsafeRawPointer, _ v: Int) -> Result<HTTPVersion, HTTPError> {
    // "HTTP/1.1" as a little-endian word: one compare for the common case.
    let word = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: v, as: UInt64.self))
    if word == 0x312E_312F_5054_5448 { return .success(.http11) }
    if word == 0x302E_312F_5054_5448 { return .success(.http10) }
    let major = byte(p, v &+ 5) &- 0x30, dot = byte(p, v &+ 6), minor = byte(p, v &+ 7) &- 0x30
    if word & 0xFF_FFFF_FFFF == 0x2F_5054_5448 && major <= 9 && dot == 0x2E && minor <= 9 {
        return .failure(.unsupportedVersion)
    }
    return .failure(.invalidVersion)
}

@usableFromInline
func classifyMethod(_ p: UnsafeRawPointer, _ start: Int, _ count: Int) -> HTTPMethod {
    @inline(__always) func eq(_ lit: StaticString) -> Bool {
        let l = UnsafeRawPointer(lit.utf8Start)
        for k in 0..<count where byte(p, start &+ k) != byte(l, k) { return false }
        return true
    }
    switch count {
    case 3: return eq("GET") ? .get : eq("PUT") ? .put : .other
    case 4: return eq("POST") ? .post : eq("HEAD") ? .head : .other
    case 5: return eq("PATCH") ? .patch : eq("TRACE") ? .trace : .other
    case 6: return eq("DELETE") ? .delete : .other
    case 7: return eq("OPTIONS") ? .options : eq("CONNECT") ? .connect : .other
    default: return .other
    }
}
