// microbench regex re2 CASE N: N full matches of one route-style regex, straight through the
// engine's C API (Sources/CRE2). The same loop over PCRE2 JIT (the engine before RE2) is in
// commit 6a3e2b3; perf/README.md has both results.
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
    let pattern = Array(c.pattern.utf8)
    var sum = 0
    switch engine {
    case "re2":
        let compiled = pattern.withUnsafeBufferPointer {
            ingressd_re2_compile(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count, nil, 0, nil)
        }
        guard let re = compiled else { fail("re2 compile") }
        for _ in 0..<n {
            let p = opaque(subject.bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
            sum &+= Int(ingressd_re2_full_match(re, p, subject.bytes.count))
        }
    default:
        fail("engine: re2")
    }
    return sum
}
