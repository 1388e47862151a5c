// Phase 1 of head parsing: find where a head ends, cheaply, and enforce the size limits on
// input that is still incomplete (DESIGN.md §8).
//
// Parsing is stateless (picohttpparser style): the caller re-parses from the start when more
// bytes arrive. Phase 1 costs one LF search per line (eight bytes per step). The full
// validation (phase 2, `HeadFields.swift`) runs directly only when the buffer ends in LF,
// which bounds its scans (the common case: the whole head arrived in one read); otherwise it
// runs after phase 1 located a complete head. So a slow client growing its head byte by byte
// costs a word scan per call, plus at most one full parse per line it completes (and lines
// are bounded by `maxHeaderCount`).

/// Where phase 1 found the head, or why there is none yet.
@usableFromInline
enum HeadLocation {
    /// The start line is `[start, firstLF)` (its CR included), the head ends at `end`
    /// (one past the LF of the blank line). Every line in between ends in LF.
    case found(start: Int, firstLF: Int, end: Int)
    case incomplete
    case error(HTTPError)
}

/// Locates the head in `p[0..<n]`.
/// - `skipLeadingCRLF`: requests may be preceded by empty lines (RFC 9112 §2.2: a server
///   SHOULD ignore at least one CRLF before the request-line; browsers send one after a POST
///   body). They count towards `headLength` and `maxHeadBytes`.
/// - A blank line is LF or CRLF; a bare-LF blank line is reported as found and refused by
///   phase 2, so that `\n\n` heads are refused rather than waited on.
@usableFromInline
func locateHead(_ p: UnsafeRawPointer, _ n: Int, _ limits: HTTPLimits,
                skipLeadingCRLF: Bool) -> HeadLocation {
    // The head can end no later than this; beyond it the answer is 431 either way.
    let searchEnd = min(n, limits.maxHeadBytes)
    var start = 0
    if skipLeadingCRLF {
        while start &+ 1 < searchEnd && byte(p, start) == asciiCR && byte(p, start &+ 1) == asciiLF {
            start &+= 2
        }
    }

    // Start line.
    let firstLF = findLF(p, from: start, end: searchEnd)
    if firstLF == searchEnd {
        if firstLF &- start > limits.maxRequestLineBytes { return .error(.requestLineTooLong) }
        if n > limits.maxHeadBytes { return .error(.headTooLarge) }
        return .incomplete
    }
    var lineLength = firstLF &- start
    if lineLength > 0 && byte(p, firstLF &- 1) == asciiCR { lineLength &-= 1 }
    if lineLength > limits.maxRequestLineBytes { return .error(.requestLineTooLong) }

    // Field lines until a blank one.
    var fieldLines = 0
    var lineStart = firstLF &+ 1
    while true {
        let lf = findLF(p, from: lineStart, end: searchEnd)
        if lf == searchEnd {
            if n > limits.maxHeadBytes { return .error(.headTooLarge) }
            return .incomplete
        }
        let length = lf &- lineStart
        if length == 0 || (length == 1 && byte(p, lineStart) == asciiCR) {
            return .found(start: start, firstLF: firstLF, end: lf &+ 1)
        }
        fieldLines &+= 1
        if fieldLines > limits.maxHeaderCount { return .error(.tooManyHeaders) }
        lineStart = lf &+ 1
    }
}
