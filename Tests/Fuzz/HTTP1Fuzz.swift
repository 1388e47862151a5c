// libFuzzer targets for the HTTP/1 codec (STYLE.md: codecs get fuzzing). Built by Tests/Fuzz/run.sh,
// not by SwiftPM: it compiles Sources/HTTP1 together with this file under -sanitize=fuzzer,address.
// One binary, three targets, chosen by INGRESSD_FUZZ_TARGET (run.sh sets it; each has its own
// corpus under corpus/<target>/):
//
//   request   parseRequestHead; every range inside the head; the forwarded head re-parses as
//             complete with the same method and framing, in origin-form, with the routed host as
//             its Host (what the upstream sees is what was checked: the anti-smuggling property)
//   response  parseResponseHead; ranges; the head forwarded downstream re-parses with the same
//             status and framing; a chunked body after the head goes through the scanner
//   chunked   ChunkedScanner over the input in one piece and split in two at a point taken from
//             the first byte: both must give the same outcome at the same offset
//
// A property that does not hold traps (precondition), which libFuzzer reports as a crash.

#if canImport(Glibc)
import Glibc
#endif

enum Target { case request, response, chunked }

let fuzzTarget: Target = {
    guard let v = getenv("INGRESSD_FUZZ_TARGET") else { return .request }
    switch String(cString: v) {
    case "response": return .response
    case "chunked": return .chunked
    default: return .request
    }
}()

/// Limits for re-parsing forwarded heads: the proxy adds up to five fields and may lengthen a
/// line, so the re-parse must not fail on limits the original just met.
let roomy = HTTPLimits(maxHeadBytes: 1 << 20, maxHeaderCount: 512, maxRequestLineBytes: 1 << 20)
let headers = UnsafeMutableBufferPointer<HeaderField>.allocate(capacity: 512)
let again = UnsafeMutableBufferPointer<HeaderField>.allocate(capacity: 512)
let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 8)

func inside(_ r: ByteRange, _ limit: Int) -> Bool {
    r.start >= 0 && r.count >= 0 && Int(r.end) <= limit
}

func bytesEqual(_ a: UnsafeRawBufferPointer, _ ra: ByteRange, _ b: UnsafeRawBufferPointer, _ rb: ByteRange) -> Bool {
    guard ra.count == rb.count else { return false }
    for k in 0..<Int(ra.count) {
        var x = a[Int(ra.start) + k], y = b[Int(rb.start) + k]
        if x >= 0x41 && x <= 0x5A { x |= 0x20 }
        if y >= 0x41 && y <= 0x5A { y |= 0x20 }
        if x != y { return false }
    }
    return true
}

func fuzzRequest(_ buf: UnsafeRawBufferPointer) {
    var head = RequestHead()
    guard case .complete = parseRequestHead(buf, headers: headers, into: &head) else { return }
    let limit = Int(head.headLength)
    precondition(limit <= buf.count)
    for r in [head.methodRange, head.target, head.path, head.query, head.requestLine, head.host] {
        precondition(inside(r, limit))
    }
    for i in 0..<Int(head.headerCount) {
        precondition(inside(headers[i].name, limit) && inside(headers[i].value, limit))
    }
    let id: StaticString = "fuzz-id"
    guard let n = serializeForwardedRequestHead(
        source: buf, head: head, headers: UnsafeBufferPointer(headers),
        clientAddress: UnsafeRawBufferPointer(start: nil, count: 0), proto: .http,
        generatedRequestId: UnsafeRawBufferPointer(start: id.utf8Start, count: id.utf8CodeUnitCount), into: out)
    else { preconditionFailure("a parsed head did not fit 256 KiB forwarded") }
    let fwd = UnsafeRawBufferPointer(rebasing: out[0..<n])
    var re = RequestHead()
    let status = parseRequestHead(fwd, limits: roomy, headers: again, into: &re)
    precondition(status == .complete, "the forwarded head does not parse")
    precondition(Int(re.headLength) == n)
    precondition(re.method == head.method && re.version == head.version)
    precondition(re.isChunked == head.isChunked && re.contentLength == head.contentLength)
    // Absolute-form goes out as origin-form (RFC 9112 §3.2.2), so the upstream's Host field
    // (re.host for origin-form) is the host the request was routed by (HTTP/1.0 may have none).
    precondition(re.targetForm != .absolute, "absolute-form forwarded")
    precondition(re.targetForm == head.targetForm || head.targetForm == .absolute)
    precondition(bytesEqual(buf, head.host, fwd, re.host), "forwarded Host differs from the routed one")
}

func fuzzResponse(_ buf: UnsafeRawBufferPointer) {
    var head = ResponseHead()
    guard case .complete = parseResponseHead(buf, headers: headers, into: &head) else { return }
    let limit = Int(head.headLength)
    precondition(limit <= buf.count)
    precondition(inside(head.statusLine, limit) && inside(head.reason, limit))
    for i in 0..<Int(head.headerCount) {
        precondition(inside(headers[i].name, limit) && inside(headers[i].value, limit))
    }
    guard let n = serializeForwardedResponseHead(source: buf, head: head, headers: UnsafeBufferPointer(headers),
                                                 connection: .close, into: out)
    else { preconditionFailure("a parsed response head did not fit 256 KiB forwarded") }
    var re = ResponseHead()
    let status = parseResponseHead(UnsafeRawBufferPointer(rebasing: out[0..<n]), limits: roomy, headers: again, into: &re)
    precondition(status == .complete, "the forwarded response head does not parse")
    precondition(re.status == head.status && re.isChunked == head.isChunked && re.contentLength == head.contentLength)
    precondition(!re.keepAlive)
    if responseBodyFraming(head, requestMethod: .get) == .chunked {
        var s = ChunkedScanner()
        if case .done(let consumed) = s.scan(UnsafeRawBufferPointer(rebasing: buf[limit...])) {
            precondition(consumed >= 5 && consumed <= buf.count - limit)
        }
    }
}

func fuzzChunked(_ buf: UnsafeRawBufferPointer) {
    guard buf.count > 0 else { return }
    let body = UnsafeRawBufferPointer(rebasing: buf[1...])
    let cut = body.isEmpty ? 0 : Int(buf[0]) % (body.count + 1)
    var whole = ChunkedScanner(maxLineBytes: 64, maxTrailerBytes: 256)
    let one = whole.scan(body)
    var split = ChunkedScanner(maxLineBytes: 64, maxTrailerBytes: 256)
    var two = split.scan(UnsafeRawBufferPointer(rebasing: body[..<cut]))
    if two == .needMore {
        two = split.scan(UnsafeRawBufferPointer(rebasing: body[cut...]))
        if case .done(let k) = two { two = .done(consumed: cut + k) }
    }
    precondition(one == two, "split scan differs")
    if case .done(let k) = one { precondition(k >= 5 && k <= body.count) }
    // After the end, the scanner stays there.
    if case .done = one { precondition(whole.scan(body) == .done(consumed: 0)) }
    if case .error(let e) = one { precondition(whole.scan(body) == .error(e)) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buf = UnsafeRawBufferPointer(start: data, count: size)
    switch fuzzTarget {
    case .request: fuzzRequest(buf)
    case .response: fuzzResponse(buf)
    case .chunked: fuzzChunked(buf)
    }
    return 0
}
