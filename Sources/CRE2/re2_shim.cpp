// See include/cre2_shim.h. The only C++ in ingressd: a thin extern "C" layer so Swift never
// sees a C++ type or exception.
#include "cre2_shim.h"

#include <re2/re2.h>
#include <cstring>
#include <new>

struct ingressd_re2 {
    re2::RE2 re;
    ingressd_re2(const re2::StringPiece &pattern, const re2::RE2::Options &options) : re(pattern, options) {}
};

extern "C" ingressd_re2 *ingressd_re2_compile(const char *pattern, size_t length,
                                              char *error, size_t error_capacity, long *error_offset) {
    re2::RE2::Options options;      // UTF-8, leftmost-first, case-sensitive: as Envoy builds them
    options.set_log_errors(false);  // the caller reports the error, with the route it belongs to
    if (error_offset) *error_offset = -1;
    ingressd_re2 *r = new (std::nothrow) ingressd_re2(re2::StringPiece(length ? pattern : "", length), options);
    if (r == nullptr) {
        if (error && error_capacity) std::strncpy(error, "out of memory", error_capacity - 1), error[error_capacity - 1] = 0;
        return nullptr;
    }
    if (!r->re.ok()) {
        if (error && error_capacity) {
            const std::string &message = r->re.error();
            size_t n = message.size() < error_capacity - 1 ? message.size() : error_capacity - 1;
            std::memcpy(error, message.data(), n);
            error[n] = 0;
        }
        if (error_offset) {
            // RE2 names the offending fragment (error_arg); its position in the pattern is the
            // closest thing to an offset it offers.
            const std::string &arg = r->re.error_arg();
            if (!arg.empty()) {
                re2::StringPiece p(pattern, length);
                size_t at = p.find(arg);
                if (at != re2::StringPiece::npos) *error_offset = static_cast<long>(at);
            }
        }
        delete r;
        return nullptr;
    }
    return r;
}

extern "C" int ingressd_re2_full_match(const ingressd_re2 *r, const char *subject, size_t length) {
    return r->re.Match(re2::StringPiece(length ? subject : "", length), 0, length,
                       re2::RE2::ANCHOR_BOTH, nullptr, 0) ? 1 : 0;
}

extern "C" long ingressd_re2_global_replace(const ingressd_re2 *r, const char *subject, size_t length,
                                            const char *rewrite, size_t rewrite_length, char *out, size_t capacity) {
    try {
        std::string s(length ? subject : "", length);
        re2::StringPiece rw(rewrite_length ? rewrite : "", rewrite_length);
        std::string why;
        if (!r->re.CheckRewriteString(rw, &why)) return -1;
        re2::RE2::GlobalReplace(&s, r->re, rw);
        if (s.size() > capacity) return -1;
        std::memcpy(out, s.data(), s.size());
        return static_cast<long>(s.size());
    } catch (...) {
        return -1;   // std::bad_alloc: never let an exception cross into Swift
    }
}

extern "C" void ingressd_re2_free(ingressd_re2 *r) {
    delete r;
}
