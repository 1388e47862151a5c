// Serialization of forwarded heads (DESIGN.md §8): what the proxy sends upstream for a
// request, and downstream for a response whose head it must change.
//
// Fields are copied as received, whole lines at a time: the field lines a parse accepted are
// contiguous in the source buffer and end in CRLF, so every run of fields that is forwarded
// unchanged is one copy (in the common case, the whole header section is one copy).

/// The scheme the client used, for x-forwarded-proto.
@frozen
public enum ForwardedProto: UInt8, Sendable {
    case http, https
}

/// What the proxy says about the downstream connection in a forwarded response.
@frozen
public enum ConnectionDirective: UInt8, Sendable {
    /// Nothing: HTTP/1.1 defaults apply (and an accepted upgrade gets `connection: upgrade`).
    case none
    /// `connection: close`: the proxy closes the client connection after this response.
    case close
    /// `connection: keep-alive`: for an HTTP/1.0 client whose connection stays open.
    case keepAlive
}

/// Writes the head the proxy sends upstream for a parsed request.
///
/// - `source`, `head`, `headers`: the buffer that was parsed and what `parseRequestHead`
///   made of it (`headers` holds at least `head.headerCount` fields).
/// - Output: the request line as received (or `method SP target SP version` when `target` is
///   given: a rewritten request-target), every field not flagged `.hopByHop` or `.rewritten`
///   (and no Host when `authority` is given; `host: <authority>` is written instead).
///   An absolute-form request (`GET http://a.example/x HTTP/1.1`) is routed by its target's
///   authority, so it is forwarded for that authority too (RFC 9112 §3.2.2: the proxy replaces
///   Host with it): unless `target` / `authority` are given, the target becomes origin-form
///   (`/x`, `/` for an empty path, `*` for an OPTIONS without path, the query kept) and
///   `host: <the target's authority>` replaces the received Host. Then come
///   `x-forwarded-for: <received values joined by ", ">, <clientAddress>` (just the address
///   when none was received), `x-forwarded-proto`, `x-request-id` (the first received value,
///   else `generatedRequestId`), `connection: upgrade` for an upgrade, and the blank line.
/// - `edits`: the route's header operations (HeaderEdit), applied to the received fields and
///   written after them, before the proxy's own x-forwarded-* fields.
/// - Returns the bytes written, or nil when `out` is too small (nothing usable was written).
public func serializeForwardedRequestHead(
    source: UnsafeRawBufferPointer, head: RequestHead, headers: UnsafeBufferPointer<HeaderField>,
    clientAddress: UnsafeRawBufferPointer, proto: ForwardedProto,
    generatedRequestId: UnsafeRawBufferPointer,
    target: UnsafeRawBufferPointer? = nil, authority: UnsafeRawBufferPointer? = nil,
    edits: UnsafeBufferPointer<HeaderEdit> = UnsafeBufferPointer(start: nil, count: 0),
    into out: UnsafeMutableRawBufferPointer
) -> Int? {
    guard let src = source.baseAddress, head.headLength > 0,
          Int(head.headLength) <= source.count, Int(head.headerCount) <= headers.count
    else { return nil }
    var w = ByteWriter(out)
    let absolute = head.targetForm == .absolute

    if target != nil || absolute {
        w.append(head.methodRange, of: src)
        w.append(" ")
        if let target {
            w.append(target)
        } else {
            // Origin-form of an absolute target: path (from its start, so the query follows).
            let rest = Int(head.target.end) - Int(head.path.start)
            if head.path.isEmpty { w.append(head.method == .options && rest == 0 ? "*" : "/") }
            w.append(src + Int(head.path.start), rest)
        }
        w.append(" ")
        w.append(src + Int(head.requestLine.end) - 8, 8)  // "HTTP/1.x"
    } else {
        w.append(head.requestLine, of: src)
    }
    w.append("\r\n")

    let count = Int(head.headerCount)
    let skip: HeaderFlags = [.hopByHop, .rewritten]
    let authority = authority ?? (absolute
        ? UnsafeRawBufferPointer(start: src + Int(head.host.start), count: Int(head.host.count)) : nil)
    let replaceHost = authority != nil
    copyFieldRuns(&w, src, headers, count: count, fieldsEnd: Int(head.headLength) - 2) { field in
        field.flags.isDisjoint(with: skip)
            && !(replaceHost && equalsLowercase(src, Int(field.name.start), Int(field.name.count), "host"))
            && !editsDrop(edits, from: 0, src + Int(field.name.start), Int(field.name.count))
    }
    if let authority {
        w.append("host: ")
        w.append(authority)
        w.append("\r\n")
    }
    appendEdits(&w, edits)

    w.append("x-forwarded-for: ")
    if head.xForwardedForIndex >= 0 {
        for i in Int(head.xForwardedForIndex)..<count where headers[i].flags.contains(.forwardedFor)
            && !headers[i].value.isEmpty {
            w.append(headers[i].value, of: src)
            w.append(", ")
        }
    }
    w.append(clientAddress)
    w.append(proto == .https ? "\r\nx-forwarded-proto: https\r\n" : "\r\nx-forwarded-proto: http\r\n")

    w.append("x-request-id: ")
    if head.xRequestIdIndex >= 0 && !headers[Int(head.xRequestIdIndex)].value.isEmpty {
        w.append(headers[Int(head.xRequestIdIndex)].value, of: src)
    } else {
        w.append(generatedRequestId)
    }
    w.append("\r\n")
    if head.isUpgrade { w.append("connection: upgrade\r\n") }
    w.append("\r\n")
    return w.result
}

/// Writes the head the proxy sends downstream for a parsed response, when it cannot forward
/// `[0, headLength)` unchanged: the response has hop-by-hop fields (`head.hasHopByHop`) or
/// the proxy must add a Connection directive.
///
/// Output: the status line as received, every field not flagged `.hopByHop` (with the route's
/// header `edits` applied), then `connection: close` / `connection: keep-alive` per
/// `connection`, or `connection: upgrade` for an accepted upgrade (`head.isUpgrade`, with
/// `.none`), and the blank line. Returns the bytes written, or nil when `out` is too small.
public func serializeForwardedResponseHead(
    source: UnsafeRawBufferPointer, head: ResponseHead, headers: UnsafeBufferPointer<HeaderField>,
    connection: ConnectionDirective,
    edits: UnsafeBufferPointer<HeaderEdit> = UnsafeBufferPointer(start: nil, count: 0),
    into out: UnsafeMutableRawBufferPointer
) -> Int? {
    guard let src = source.baseAddress, head.headLength > 0,
          Int(head.headLength) <= source.count, Int(head.headerCount) <= headers.count
    else { return nil }
    var w = ByteWriter(out)
    w.append(head.statusLine, of: src)
    w.append("\r\n")
    copyFieldRuns(&w, src, headers, count: Int(head.headerCount),
                  fieldsEnd: Int(head.headLength) - 2) { field in
        !field.flags.contains(.hopByHop)
            && !editsDrop(edits, from: 0, src + Int(field.name.start), Int(field.name.count))
    }
    appendEdits(&w, edits)
    switch connection {
    case .close: w.append("connection: close\r\n")
    case .keepAlive: w.append("connection: keep-alive\r\n")
    case .none: if head.isUpgrade { w.append("connection: upgrade\r\n") }
    }
    w.append("\r\n")
    return w.result
}

/// Whether an edit at index `from` or later removes or replaces fields named `name`.
@inlinable @inline(__always)
func editsDrop(_ edits: UnsafeBufferPointer<HeaderEdit>, from: Int, _ name: UnsafeRawPointer, _ count: Int) -> Bool {
    var k = from
    while k < edits.count {
        let e = edits[k]
        if e.kind != .add && e.name.count == count && equalsLowercase(name, e.name) { return true }
        k &+= 1
    }
    return false
}

/// Writes the `.set` and `.add` edits as fields, except those a later edit drops again.
@inlinable
func appendEdits(_ w: inout ByteWriter, _ edits: UnsafeBufferPointer<HeaderEdit>) {
    for k in 0..<edits.count {
        let e = edits[k]
        guard e.kind != .remove, let name = e.name.baseAddress,
              !editsDrop(edits, from: k &+ 1, name, e.name.count) else { continue }
        w.append(e.name)
        w.append(": ")
        w.append(e.value)
        w.append("\r\n")
    }
}

/// Copies the lines of the fields `keep` accepts, one copy per run of consecutive kept fields.
/// Field i's line is `[name.start, next field's name.start)`; the last one ends at `fieldsEnd`
/// (the blank line's CR). The predicate is inlined at both call sites; it is not stored.
@inlinable @inline(__always)
func copyFieldRuns(_ w: inout ByteWriter, _ src: UnsafeRawPointer,
                   _ headers: UnsafeBufferPointer<HeaderField>, count: Int, fieldsEnd: Int,
                   _ keep: (HeaderField) -> Bool) {
    var runStart = -1
    for i in 0..<count {
        let field = headers[i]
        if keep(field) {
            if runStart < 0 { runStart = Int(field.name.start) }
        } else if runStart >= 0 {
            w.append(src + runStart, Int(field.name.start) - runStart)
            runStart = -1
        }
    }
    if runStart >= 0 { w.append(src + runStart, fieldsEnd - runStart) }
}
