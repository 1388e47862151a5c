// A C API over RE2 (Debian libre2-dev) for Swift: compile a pattern, full-match a byte range,
// free. RE2 is the engine Envoy's `safe_regex` (and so Istio) uses: it matches in time linear
// in the subject and has no match limit, so a match never "fails" the way a backtracking
// engine can; a lookup is either a match or not.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An immutable compiled pattern (an `RE2` object). Not shared between processes.
typedef struct ingressd_re2 ingressd_re2;

/// Compiles `pattern[0..<length]` (UTF-8, RE2 syntax, Envoy's default options: UTF-8 subjects,
/// leftmost-first). Returns NULL when RE2 refuses it and writes RE2's message, NUL-terminated and
/// cut at `error_capacity`, to `error` (which may be NULL when `error_capacity` is 0), and the
/// byte offset in the pattern where it gave up (or -1 when RE2 does not say) to `*error_offset`.
/// The caller owns the result and frees it with `ingressd_re2_free`.
ingressd_re2 *ingressd_re2_compile(const char *pattern, size_t length,
                                   char *error, size_t error_capacity, long *error_offset);

/// 1 when the whole of `subject[0..<length]` matches (RE2::FullMatch), else 0. `subject` may be
/// NULL when `length` is 0. Allocates only when the lazily built DFA meets a state it has not
/// seen (bounded by RE2's max_mem; past it RE2 resets its cache or falls back to the NFA, still
/// in linear time). Never fails.
int ingressd_re2_full_match(const ingressd_re2 *re, const char *subject, size_t length);

/// Replaces every non-overlapping match of `re` in `subject[0..<length]` with `rewrite`
/// (`\1`…`\9` are capture groups; RE2::GlobalReplace, Envoy's `regex_rewrite`) and writes the
/// result to `out`. Returns its length, or -1 when it would not fit in `capacity` bytes (nothing
/// usable was written) or the rewrite names a group the pattern does not have. Allocates (RE2
/// builds the result in a std::string): only routes with `uriRegexRewrite` call it.
long ingressd_re2_global_replace(const ingressd_re2 *re, const char *subject, size_t length,
                                 const char *rewrite, size_t rewrite_length, char *out, size_t capacity);

/// Frees a pattern from `ingressd_re2_compile`. NULL is allowed.
void ingressd_re2_free(ingressd_re2 *re);

#ifdef __cplusplus
}
#endif
