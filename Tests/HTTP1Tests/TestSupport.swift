import HTTP1
import XCTest

/// A request parse over a copy of `bytes`, with its results turned into Strings for asserting.
struct ParsedRequest {
    var status: ParseStatus
    var head: RequestHead
    var fields: [HeaderField]
    var bytes: [UInt8]

    func text(_ r: ByteRange) -> String {
        String(decoding: bytes[Int(r.start)..<Int(r.end)], as: UTF8.self)
    }
    var names: [String] { fields.map { text($0.name) } }
    var values: [String] { fields.map { text($0.value) } }
    /// Names of the fields carrying `flag`.
    func flagged(_ flag: HeaderFlags) -> [String] {
        fields.filter { $0.flags.contains(flag) }.map { text($0.name) }
    }
}

func parseRequest(_ text: String, limits: HTTPLimits = .default, capacity: Int = 128) -> ParsedRequest {
    parseRequest(bytes: Array(text.utf8), limits: limits, capacity: capacity)
}

func parseRequest(bytes: [UInt8], limits: HTTPLimits = .default, capacity: Int = 128) -> ParsedRequest {
    var head = RequestHead()
    var fields = [HeaderField](repeating: HeaderField(name: .empty, value: .empty), count: capacity)
    let status = bytes.withUnsafeBytes { buf in
        fields.withUnsafeMutableBufferPointer { parseRequestHead(buf, limits: limits, headers: $0, into: &head) }
    }
    let count = status == .complete ? Int(head.headerCount) : 0
    return ParsedRequest(status: status, head: head, fields: Array(fields.prefix(count)), bytes: bytes)
}

struct ParsedResponse {
    var status: ParseStatus
    var head: ResponseHead
    var fields: [HeaderField]
    var bytes: [UInt8]

    func text(_ r: ByteRange) -> String {
        String(decoding: bytes[Int(r.start)..<Int(r.end)], as: UTF8.self)
    }
    func flagged(_ flag: HeaderFlags) -> [String] {
        fields.filter { $0.flags.contains(flag) }.map { text($0.name) }
    }
}

func parseResponse(_ text: String, limits: HTTPLimits = .default) -> ParsedResponse {
    let bytes = Array(text.utf8)
    var head = ResponseHead()
    var fields = [HeaderField](repeating: HeaderField(name: .empty, value: .empty), count: 128)
    let status = bytes.withUnsafeBytes { buf in
        fields.withUnsafeMutableBufferPointer { parseResponseHead(buf, limits: limits, headers: $0, into: &head) }
    }
    let count = status == .complete ? Int(head.headerCount) : 0
    return ParsedResponse(status: status, head: head, fields: Array(fields.prefix(count)), bytes: bytes)
}

/// Runs a serializer into a 64 KiB buffer and returns what it wrote as a String (nil when it
/// reported that the output did not fit).
func written(capacity: Int = 65536, _ body: (UnsafeMutableRawBufferPointer) -> Int?) -> String? {
    var out = [UInt8](repeating: 0, count: capacity)
    let n = out.withUnsafeMutableBytes { body($0) }
    guard let n else { return nil }
    return String(decoding: out[0..<n], as: UTF8.self)
}

/// Deterministic PRNG (SplitMix64) so fuzz-style tests are repeatable.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
