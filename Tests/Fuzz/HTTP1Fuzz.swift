// libFuzzer target for the HTTP/1 codec (STYLE.md: codecs get fuzzing). Built by Tests/Fuzz/run.sh,
// not by SwiftPM: it compiles Sources/HTTP1 together with this file under -sanitize=fuzzer,address.
// Every input goes through the request parser (+ the forwarding serializer when it parses),
// the response parser and the chunked scanner; ranges must stay inside the input.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buf = UnsafeRawBufferPointer(start: data, count: size)
    let headers = UnsafeMutableBufferPointer<HeaderField>.allocate(capacity: 101)
    defer { headers.deallocate() }
    var head = RequestHead()
    if case .complete = parseRequestHead(buf, headers: headers, into: &head) {
        precondition(Int(head.headLength) <= size)
        for i in 0..<Int(head.headerCount) {
            precondition(Int(headers[i].name.end) <= size && Int(headers[i].value.end) <= size)
        }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 * 1024, alignment: 8)
        defer { out.deallocate() }
        _ = serializeForwardedRequestHead(source: buf, head: head, headers: UnsafeBufferPointer(headers),
                                          clientAddress: UnsafeRawBufferPointer(start: nil, count: 0), proto: .http,
                                          generatedRequestId: UnsafeRawBufferPointer(start: nil, count: 0), into: out)
    }
    var rh = ResponseHead()
    _ = parseResponseHead(buf, headers: headers, into: &rh)
    var chunk = ChunkedScanner()
    _ = chunk.scan(buf)
    return 0
}
