import CRE2

// Route regexes run on RE2 (Sources/CRE2), the engine of Envoy's `safe_regex` and so of Istio
// (istio-semantics.md §1.3): full matches, UTF-8 semantics (`.` is one code point), time linear
// in the subject, and no match limit. A lookup therefore has exactly two outcomes per regex,
// match or no match; there is no "engine gave up" that a crafted path could turn into a
// fall-through to a later, more permissive route (the PCRE2 engine used before could).
// The builder compiles every pattern once to reject bad ones with RE2's message; each worker's
// `RouteMatcher` compiles them again (compiled programs cannot live in shared memory).

/// A pattern RE2 rejected.
struct RegexCompileFailure: Error {
    /// Where in the pattern RE2 gave up (the offending fragment), -1 when it does not say.
    var offset: Int
    var message: String
}

/// Compiles `pattern`. The caller owns the returned program and frees it with `ingressd_re2_free`.
func regexCompile(_ pattern: UnsafeRawBufferPointer) -> Result<OpaquePointer, RegexCompileFailure> {
    var message = [CChar](repeating: 0, count: 256)
    var offset = -1
    // SAFETY: RE2 reads exactly `pattern.count` bytes; the shim accepts NULL when the count is 0.
    let re = message.withUnsafeMutableBufferPointer { m in
        ingressd_re2_compile(pattern.baseAddress?.assumingMemoryBound(to: CChar.self), pattern.count,
                             m.baseAddress, m.count, &offset)
    }
    guard let re else {
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return .failure(RegexCompileFailure(offset: offset, message: text.isEmpty ? "does not compile" : text))
    }
    return .success(re)
}

/// Compiles a Swift string pattern (control plane: builder validation).
func regexCompile(_ pattern: String) -> Result<OpaquePointer, RegexCompileFailure> {
    var bytes = Array(pattern.utf8)
    return bytes.withUnsafeMutableBytes { regexCompile(UnsafeRawBufferPointer($0)) }
}
