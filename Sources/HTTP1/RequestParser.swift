// Request head parsing (RFC 9112 §2–§3, §5, §6; DESIGN.md §8 smuggling refusal).

/// Parses the request head at the start of `buffer`.
///
/// Stateless: when it returns `.incomplete`, call it again with the same bytes plus those that
/// arrived since (the buffer may move between calls; only the result of the last call counts).
/// It enforces `limits` on incomplete input too, so the caller never buffers more than
/// `limits.maxHeadBytes` for a head. A malformed line may be reported before the head is
/// complete. Re-parsing a growing head is cheap (see `HeadLocator.swift`).
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
    let n = buffer.count
    // Fast path: a buffer that ends in LF (almost always: the whole head in one read) bounds
    // every scan by itself, so the head is parsed in one pass without locating its end first.
    // At most one call per received line takes this path, which keeps re-parsing a slowly
    // growing head cheap.
    if byte(p, n &- 1) == asciiLF {
        let searchEnd = min(n, limits.maxHeadBytes)
        var start = 0
        while start &+ 1 < searchEnd && byte(p, start) == asciiCR && byte(p, start &+ 1) == asciiLF {
            start &+= 2
        }
        let firstLF = findLF(p, from: start, end: searchEnd)
        if firstLF < searchEnd {
            switch parseRequest(p, start: start, firstLF: firstLF, end: n, limits, headers, &head) {
            case .incomplete: break  // fall back to phase 1 for the limits
            case let status: return status
            }
        }
    }
    switch locateHead(p, n, limits, skipLeadingCRLF: true) {
    case .incomplete: return .incomplete
    case .error(let error): return .error(error)
    case let .found(start, firstLF, end):
        return parseRequest(p, start: start, firstLF: firstLF, end: end, limits, headers, &head)
    }
}

/// Phase 2: validates and decodes a request head whose start line is `[start, firstLF]`;
/// `p[end - 1]` is LF (see `parseFields`).
@usableFromInline
func parseRequest(_ p: UnsafeRawPointer, start: Int, firstLF: Int, end: Int, _ limits: HTTPLimits,
                  _ headers: UnsafeMutableBufferPointer<HeaderField>,
                  _ head: inout RequestHead) -> ParseStatus {
    let lineLength = firstLF &- start &- (firstLF > start && byte(p, firstLF &- 1) == asciiCR ? 1 : 0)
    if lineLength > limits.maxRequestLineBytes { return .error(.requestLineTooLong) }
    head = RequestHead()
    if let error = parseRequestLine(p, start: start, lf: firstLF, into: &head) {
        return .error(error)
    }

    var s = FieldSemantics()
    let capacity = min(headers.count, limits.maxHeaderCount)
    switch parseFields(p, from: firstLF &+ 1, end: end, headers: headers, capacity: capacity,
                       isRequest: true, semantics: &s) {
    case .incomplete: return .incomplete
    case .error(let error): return .error(error)
    case let .complete(count, headEnd):
        if headEnd > limits.maxHeadBytes { return .error(.headTooLarge) }
        head.headerCount = count
        head.headLength = Int32(truncatingIfNeeded: headEnd)
    }

    let http11 = head.version == .http11
    if s.hostCount > 1 { return .error(.multipleHost) }
    if s.hostCount == 0 && http11 { return .error(.missingHost) }
    // Envoy answers 400 to a Host (or target authority) no authority can hold, such as
    // `Host: a b`; forwarding it would let the next hop pick its own reading.
    if !isValidAuthority(p, Int(s.host.start), Int(s.host.end)) { return .error(.invalidHost) }
    if head.targetForm == .absolute || head.targetForm == .authority,
       !isValidAuthority(p, Int(head.host.start), Int(head.host.end)) { return .error(.invalidHost) }
    if let error = checkFraming(s) { return .error(error) }
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing; refuse it
    // rather than guess what the next hop would make of it.
    if s.hasTransferEncoding && !http11 { return .error(.invalidTransferEncoding) }

    if head.targetForm == .origin || head.targetForm == .asterisk { head.host = s.host }
    head.contentLength = s.contentLength
    head.isChunked = s.chunkedSeen
    head.keepAlive = http11 ? !s.connectionClose : (s.connectionKeepAlive && !s.connectionClose)
    head.isUpgrade = http11 && s.connectionUpgrade && s.upgradeSeen && !s.upgradeH2c
    head.expectContinue = http11 && s.expectContinue
    head.xForwardedForIndex = s.xForwardedForIndex
    head.xRequestIdIndex = s.xRequestIdIndex
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
        // SAFETY: the line's CR at lineEnd stops the scan.
        j = findTargetDelimiter(p, from: j, end: lineEnd)
        let b = byte(p, j)
        if b == 0x23 { return .invalidTarget }  // '#'
        if b != 0x3F { break }
        if question < 0 { question = j }  // '?'
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
