import CPCRE2

// PCRE2 configured to behave like RE2 full matches, as Envoy's `safe_regex` does
// (istio-semantics.md §1.3): the whole subject must match, bytes not UTF-8 code points.
// The builder compiles every pattern once to reject bad ones with a message; each worker's
// `RouteMatcher` compiles them again (compiled code cannot live in shared memory).

enum PCRE2Options {
    /// ANCHORED | ENDANCHORED: the match must cover the whole subject (RE2 FullMatch).
    /// DOLLAR_ENDONLY: `$` matches only at the very end, as in RE2 (PCRE2 would also match
    /// before a final newline). NEVER_UTF: `(*UTF)` in a pattern cannot switch UTF on; subjects
    /// are raw request bytes. NEVER_BACKSLASH_C: `\C` does not exist in RE2.
    static let compile: UInt32 = PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY
        | PCRE2_NEVER_UTF | PCRE2_NEVER_BACKSLASH_C

    /// RE2 matches in linear time; PCRE2 backtracks. These limits bound the work one header
    /// value can cause (a request that hits them simply does not match). 100 000 is far above
    /// what route regexes over paths and header values need (a few hundred steps).
    static let matchLimit: UInt32 = 100_000
    static let depthLimit: UInt32 = 10_000
}

/// A pattern PCRE2 rejected.
struct PCRE2CompileFailure: Error {
    var offset: Int
    var message: String
}

/// Compiles `pattern`. The caller owns the returned code and frees it with `pcre2_code_free_8`.
func pcre2Compile(_ pattern: UnsafeRawBufferPointer) -> Result<OpaquePointer, PCRE2CompileFailure> {
    var errorCode: Int32 = 0
    var errorOffset = 0
    // SAFETY: PCRE2 reads exactly `pattern.count` bytes; a non-nil pointer is passed even for an
    // empty pattern because PCRE2 10.42 rejects NULL with length 0.
    let empty: UInt8 = 0
    let code: OpaquePointer? = withUnsafePointer(to: empty) { emptyPtr in
        let base = pattern.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptyPtr
        return pcre2_compile_8(base, pattern.count, PCRE2Options.compile, &errorCode, &errorOffset, nil)
    }
    guard let code else {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(errorCode, $0.baseAddress, $0.count) }
        let message = n > 0 ? String(decoding: buffer[..<Int(n)], as: UTF8.self) : "error \(errorCode)"
        return .failure(PCRE2CompileFailure(offset: errorOffset, message: message))
    }
    return .success(code)
}

/// Compiles a Swift string pattern (control plane: builder validation).
func pcre2Compile(_ pattern: String) -> Result<OpaquePointer, PCRE2CompileFailure> {
    var bytes = Array(pattern.utf8)
    return bytes.withUnsafeMutableBytes { pcre2Compile(UnsafeRawBufferPointer($0)) }
}
