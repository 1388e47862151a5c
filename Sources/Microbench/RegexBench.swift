// microbench regex pcre2|re2 CASE N: N full matches of one route-style regex, straight through
// the engine's C API, to compare the per-match cost of the two engines (item: regex bypass).
import CPCRE2
import CRE2

struct RegexCase {
    let pattern: String
    let subject: String
}

let regexCases: [String: RegexCase] = [
    // A short path regex, the common Istio use.
    "api": RegexCase(pattern: "/api/v[0-9]+/items", subject: "/api/v1/items"),
    // The pattern of the bypass report against an ordinary matching path.
    "files": RegexCase(pattern: "/files/(?:[a-z0-9]+/)*[a-z0-9]+\\.pdf", subject: "/files/2024/q3/reports/summary.pdf"),
    // A header regex over a browser User-Agent.
    "header": RegexCase(pattern: ".*(Android|iPhone).*",
                        subject: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"),
    // The crafted path: 4 200 `a/` segments that never end in `.pdf`.
    "crafted": RegexCase(pattern: "/files/(?:[a-z0-9]+/)*[a-z0-9]+\\.pdf",
                         subject: "/files/" + String(repeating: "a/", count: 4_200) + "x"),
]

func runRegex(engine: String, caseName: String, n: Int) -> Int {
    guard let c = regexCases[caseName] else { fail("no regex case \(caseName)") }
    let subject = Input(c.subject)
    var pattern = Array(c.pattern.utf8)
    var sum = 0
    switch engine {
    case "pcre2":
        var code: OpaquePointer?
        var errorCode: Int32 = 0
        var errorOffset = 0
        let options: UInt32 = PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_UTF | PCRE2_NEVER_BACKSLASH_C
        code = pcre2_compile_8(&pattern, pattern.count, options, &errorCode, &errorOffset, nil)
        guard let code, pcre2_jit_compile_8(code, PCRE2_JIT_COMPLETE) == 0 else { fail("pcre2 compile/jit") }
        let md = pcre2_match_data_create_8(1, nil)
        let mc = pcre2_match_context_create_8(nil)
        pcre2_set_match_limit_8(mc, 100_000)
        pcre2_set_depth_limit_8(mc, 10_000)
        let stack = pcre2_jit_stack_create_8(32 * 1024, 1024 * 1024, nil)
        pcre2_jit_stack_assign_8(mc, nil, UnsafeMutableRawPointer(stack))
        for _ in 0..<n {
            let p = opaque(subject.bytes.baseAddress!).assumingMemoryBound(to: UInt8.self)
            sum &+= Int(pcre2_jit_match_8(code, p, subject.bytes.count, 0, 0, md, mc))
        }
    case "re2":
        guard let re = ingressd_re2_compile(pattern.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self) },
                                            pattern.count, nil, 0, nil) else { fail("re2 compile") }
        for _ in 0..<n {
            let p = opaque(subject.bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
            sum &+= Int(ingressd_re2_full_match(re, p, subject.bytes.count))
        }
    default:
        fail("engine: pcre2 or re2")
    }
    return sum
}
