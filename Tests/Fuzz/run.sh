#!/usr/bin/env bash
# Fuzzes the codecs with libFuzzer (bundled with the Swift toolchain): the HTTP/1 request parser
# (+ forwarding serializer), the response parser and the chunked scanner (HTTP1Fuzz.swift), and
# the TLS ClientHello reader (TLSFuzz.swift, target `hello`).
#   Tests/Fuzz/run.sh [SECONDS] [TARGET...]   SECONDS in all (default 60), split between the
#                                              targets (default: request response chunked hello)
# `make test` runs it for 24 s. A toolchain that cannot build -sanitize=fuzzer makes it skip with
# a message (exit 0), never pass silently.
# A crash leaves crash-* in Tests/Fuzz/crashes/<target>/ and fails the run: keep the file there
# (HTTP1Tests.FuzzCorpusTests and TLSTests.ClientHelloFuzzTests replay every file under corpus/
# and crashes/ in `swift test`), fix the codec, and add the input to the codec's test target as
# a named regression case (STYLE.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request response chunked hello)
per=$(( seconds / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# One module of HTTPCore and HTTP1 (whose Exports.swift only re-exports HTTPCore).
sources=("$root"/Sources/HTTPCore/*.swift)
for f in "$root"/Sources/HTTP1/*.swift; do [ "$(basename "$f")" = Exports.swift ] || sources+=("$f"); done
if ! swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name HTTP1 \
        "${sources[@]}" "$here/HTTP1Fuzz.swift" -o "$out/http1-fuzz" \
        >"$out/build.log" 2>&1; then
    echo "fuzz: SKIPPED: this Swift toolchain cannot build a libFuzzer target (-sanitize=fuzzer,address):"
    grep -v "Cannot export local symbol" "$out/build.log" | head -5 | sed 's/^/fuzz:   /'
    exit 0
fi
# The TLS module's ClientHello reader (no dependencies; the OpenSSL part is left out) with its harness. The toolchain built the one above, so a
# failure here is a compile error in the harness or the codec: that fails the run.
if ! swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name TLS \
        "$root"/Sources/TLS/ClientHello.swift "$here/TLSFuzz.swift" -o "$out/tls-fuzz" \
        >"$out/build-tls.log" 2>&1; then
    echo "fuzz: the TLS fuzz target does not build:" >&2
    grep -v "Cannot export local symbol" "$out/build-tls.log" | head -20 >&2
    exit 1
fi

status=0
for t in "${targets[@]}"; do
    [ -d "$here/corpus/$t" ] || { echo "fuzz: no corpus for target $t" >&2; exit 2; }
    mkdir -p "$out/corpus-$t" "$here/crashes/$t"
    cp "$here/corpus/$t"/* "$out/corpus-$t/"
    # SWIFT_BACKTRACE=enable=no: on a trap the Swift runtime's backtracer would otherwise start
    # and can hold the run; libFuzzer prints the input and the stack itself.
    case "$t" in hello) bin="$out/tls-fuzz" ;; *) bin="$out/http1-fuzz" ;; esac
    if SWIFT_BACKTRACE=enable=no INGRESSD_FUZZ_TARGET="$t" "$bin" \
            -max_total_time="$per" -max_len=4096 -timeout=10 -print_final_stats=0 \
            -artifact_prefix="$here/crashes/$t/" "$out/corpus-$t" >"$out/$t.log" 2>&1; then
        echo "fuzz: $t: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$out/$t.log" | tail -1)s, no crash"
    else
        status=1
        echo "fuzz: $t: FAILED; reproducer in Tests/Fuzz/crashes/$t/:" >&2
        grep -E "^(==|SUMMARY|Fatal|.*precondition|artifact_prefix|Test unit written)" "$out/$t.log" | head -20 >&2
    fi
    rmdir "$here/crashes/$t" 2>/dev/null || true
done
rmdir "$here/crashes" 2>/dev/null || true
exit $status
