// Response head parsing for what upstreams send (RFC 9112 §4). Same field syntax and CL/TE
// rules as requests: an upstream that frames ambiguously is answered with 502, never guessed.

/// Parses the response head at the start of `buffer`. Same calling convention as
/// `parseRequestHead`: stateless, re-call with more bytes on `.incomplete`, limits enforced
/// on incomplete input (the status line is bounded by `limits.maxRequestLineBytes`).
/// A 1xx head is returned like any other; the caller forwards it and parses the next head.
/// `.error` means the upstream is broken: answer 502 and close the upstream connection.
public func parseResponseHead(_ buffer: UnsafeRawBufferPointer, limits: HTTPLimits = .default,
                              headers: UnsafeMutableBufferPointer<HeaderField>,
                              into head: inout ResponseHead) -> ParseStatus {
    guard let p = buffer.baseAddress, buffer.count > 0 else { return .incomplete }
    let n = buffer.count
    // Fast path as in `parseRequestHead`: a buffer ending in LF bounds every scan itself.
    if byte(p, n &- 1) == asciiLF {
        let firstLF = findLF(p, from: 0, end: min(n, limits.maxHeadBytes))
        if firstLF < min(n, limits.maxHeadBytes) {
            switch parseResponse(p, firstLF: firstLF, end: n, limits, headers, &head) {
            case .incomplete: break
            case let status: return status
            }
        }
    }
    switch locateHead(p, n, limits, skipLeadingCRLF: false) {
    case .incomplete: return .incomplete
    case .error(let error): return .error(error)
    case let .found(_, firstLF, end):
        return parseResponse(p, firstLF: firstLF, end: end, limits, headers, &head)
    }
}

/// Phase 2 for a response head; `p[end - 1]` is LF (see `parseFields`).
@usableFromInline
func parseResponse(_ p: UnsafeRawPointer, firstLF: Int, end: Int, _ limits: HTTPLimits,
                   _ headers: UnsafeMutableBufferPointer<HeaderField>,
                   _ head: inout ResponseHead) -> ParseStatus {
    let lineLength = firstLF &- (firstLF > 0 && byte(p, firstLF &- 1) == asciiCR ? 1 : 0)
    if lineLength > limits.maxRequestLineBytes { return .error(.requestLineTooLong) }
    head = ResponseHead()
    if let error = parseStatusLine(p, lf: firstLF, into: &head) { return .error(error) }

    var s = FieldSemantics()
    let capacity = min(headers.count, limits.maxHeaderCount)
    switch parseFields(p, from: firstLF &+ 1, end: end, headers: headers, capacity: capacity,
                       isRequest: false, semantics: &s) {
    case .incomplete: return .incomplete
    case .error(let error): return .error(error)
    case let .complete(count, headEnd):
        if headEnd > limits.maxHeadBytes { return .error(.headTooLarge) }
        head.headerCount = count
        head.headLength = Int32(truncatingIfNeeded: headEnd)
    }
    if let error = checkFraming(s) { return .error(error) }

    let http11 = head.version == .http11
    head.contentLength = s.contentLength
    head.isChunked = s.chunkedSeen
    head.keepAlive = http11 ? !s.connectionClose : (s.connectionKeepAlive && !s.connectionClose)
    head.isUpgrade = head.status == 101 && s.connectionUpgrade && s.upgradeSeen
    if s.upgradeSeen || s.connectionNominates {
        finishHopByHop(p, headers, count: Int(head.headerCount), keepUpgrade: head.isUpgrade, &s)
    }
    head.hasHopByHop = s.hopByHopSeen
    return .complete
}

/// `HTTP-version SP 3DIGIT SP [reason-phrase] CRLF`. A missing SP after the status
/// (`HTTP/1.1 200\r\n`) is accepted: old servers send it and it is unambiguous.
@usableFromInline
func parseStatusLine(_ p: UnsafeRawPointer, lf: Int, into head: inout ResponseHead) -> HTTPError? {
    if lf == 0 || byte(p, lf &- 1) != asciiCR { return .bareLF }
    let lineEnd = lf &- 1
    if lineEnd < 12 { return lineEnd >= 8 && byte(p, 8) == asciiSP ? .invalidStatus : .invalidVersion }
    switch parseVersion(p, 0) {
    case .failure(let error): return error
    case .success(let version): head.version = version
    }
    if byte(p, 8) != asciiSP { return .invalidVersion }
    var status: UInt16 = 0
    for k in 9..<12 {
        let d = byte(p, k) &- 0x30
        if d > 9 { return .invalidStatus }
        status = status &* 10 &+ UInt16(d)
    }
    if status < 100 { return .invalidStatus }
    head.status = status
    var reasonStart = 12
    if lineEnd > 12 {
        if byte(p, 12) != asciiSP { return .invalidStatus }
        reasonStart = 13
        // reason-phrase = *( HTAB / SP / VCHAR / obs-text )
        var k = reasonStart
        while true {
            k = findControl(p, from: k, end: lineEnd)
            if k == lineEnd { break }
            if byte(p, k) != asciiHTAB { return byte(p, k) == asciiCR ? .bareCR : .invalidStatus }
            k &+= 1
        }
    }
    head.reason = ByteRange(start: reasonStart, count: lineEnd &- reasonStart)
    head.statusLine = ByteRange(start: 0, count: lineEnd)
    return nil
}
