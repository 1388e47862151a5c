// libFuzzer target for the ClientHello reader (STYLE.md: codecs get fuzzing). Built by
// Tests/Fuzz/run.sh, not by SwiftPM: it compiles Sources/TLS together with this file under
// -sanitize=fuzzer,address. One target, `hello` (corpus/hello/: real hellos from openssl
// s_client, Python and curl, fragmented ones, plaintext). Every input is read twice:
//
//   as is      parseClientHello on the raw bytes: offsets inside the hello, SNI bytes valid,
//              .incomplete only below maxBytes, a cut gives .incomplete or the same result
//   repaired   when the input starts like a one-record hello, its body (from byte 9) gets a
//              record and handshake header that agree with its length, so mutations reach the
//              body parser instead of dying at framing; then the same message in 7-byte records
//              must give the same answer (same SNI text and ALPN), unless the host name
//              straddles a record boundary (then .malformed)
//
// A property that does not hold traps (precondition), which libFuzzer reports as a crash.

/// `[A-Za-z0-9._-]`, written out again rather than taken from Sources/TLS.
func validSNIByte(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
        || b == 0x2D || b == 0x2E || b == 0x5F
}

/// Checks the properties of one input and returns its result.
@discardableResult
func check(_ buf: UnsafeRawBufferPointer) -> ClientHelloStatus {
    let status = parseClientHello(buf)
    switch status {
    case .hello(let h):
        let length = Int(h.length)
        precondition(length > 0 && length <= buf.count && length <= ClientHello.maxBytes, "length outside the bytes")
        precondition(h.sniCount >= 0 && h.sniCount <= 255 && h.sniStart >= 0, "SNI range")
        precondition(h.sniCount == 0 || (h.sniStart >= 5 && Int(h.sniStart + h.sniCount) <= length), "SNI outside the hello")
        for i in Int(h.sniStart)..<Int(h.sniStart + h.sniCount) { precondition(validSNIByte(buf[i]), "SNI byte") }
        precondition(parseClientHello(UnsafeRawBufferPointer(rebasing: buf[..<length])) == status,
                     "the hello's own bytes parse differently")
    case .incomplete:
        precondition(buf.count < ClientHello.maxBytes, ".incomplete at maxBytes")
    case .notTLS:
        precondition(parseClientHello(UnsafeRawBufferPointer(rebasing: buf[..<min(2, buf.count)])) == .notTLS,
                     ".notTLS not decided from 2 bytes")
    case .malformed:
        break
    }
    // Read more, call again: a prefix gives .incomplete or the final result.
    var cut = buf.count / 2
    for _ in 0..<2 {
        let prefix = parseClientHello(UnsafeRawBufferPointer(rebasing: buf[..<cut]))
        precondition(prefix == .incomplete || prefix == status, "a prefix decided differently")
        cut = buf.isEmpty ? 0 : (Int(buf[buf.count - 1]) &* 131 &+ buf.count) % (buf.count + 1)
    }
    return status
}

let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)
let fragmented = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)

/// Writes `message` (handshake header + body, in `scratch`) into `out` as records of `size`
/// bytes; returns the bytes written.
func frame(_ message: UnsafeRawBufferPointer, size: Int, into out: UnsafeMutableRawBufferPointer) -> Int {
    var at = 0, n = 0
    while at < message.count {
        let k = min(size, message.count - at)
        out[n] = 22; out[n + 1] = 3; out[n + 2] = 1; out[n + 3] = UInt8(k >> 8); out[n + 4] = UInt8(k & 0xFF)
        for i in 0..<k { out[n + 5 + i] = message[at + i] }
        n += 5 + k
        at += k
    }
    return n
}

func fuzzRepaired(_ buf: UnsafeRawBufferPointer) {
    guard buf.count >= 9, buf[0] == 22, buf[5] == 1, 4 + buf.count - 9 <= 1 << 14 else { return }
    let body = buf.count - 9
    let message = UnsafeMutableRawBufferPointer(rebasing: scratch[..<(4 + body)])
    message[0] = 1; message[1] = UInt8(body >> 16); message[2] = UInt8(body >> 8 & 0xFF); message[3] = UInt8(body & 0xFF)
    for i in 0..<body { message[4 + i] = buf[9 + i] }

    let oneLen = frame(UnsafeRawBufferPointer(message), size: 1 << 14, into: fragmented)
    let one = check(UnsafeRawBufferPointer(rebasing: fragmented[..<oneLen]))
    precondition(one != .incomplete && one != .notTLS, "a repaired hello is complete TLS")
    guard case .hello(let h1) = one else { return }
    // Copy the SNI out before `fragmented` is reused.
    let sniAt = Int(h1.sniStart) - 5  // offset in the message (one record: 5-byte header)
    let sniCount = Int(h1.sniCount)

    let size = 7
    let smallLen = frame(UnsafeRawBufferPointer(message), size: size, into: fragmented)
    guard smallLen <= ClientHello.maxBytes else { return }
    let small = check(UnsafeRawBufferPointer(rebasing: fragmented[..<smallLen]))
    if sniCount > 0 && sniAt / size != (sniAt + sniCount - 1) / size {
        precondition(small == .malformed, "a host name across records was accepted")
        return
    }
    guard case .hello(let h7) = small else { preconditionFailure("7-byte records changed the result: \(small)") }
    precondition(h7.offersH2 == h1.offersH2 && h7.offersHTTP11 == h1.offersHTTP11, "ALPN differs")
    precondition(Int(h7.length) == smallLen && Int(h7.sniCount) == sniCount, "length or SNI size differs")
    for i in 0..<sniCount {
        let m = sniAt + i
        precondition(fragmented[Int(h7.sniStart) + i] == message[m], "SNI text differs")
        precondition(Int(h7.sniStart) + i == m / size * (size + 5) + 5 + m % size, "SNI offset")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buf = UnsafeRawBufferPointer(start: data, count: size)
    check(buf)
    fuzzRepaired(buf)
    return 0
}
