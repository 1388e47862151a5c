#!/usr/bin/env bash
# Fuzzes the HTTP/1 codec with libFuzzer (bundled with the Swift toolchain).
#   Tests/Fuzz/run.sh [SECONDS]      default 60
# A crash leaves crash-* in the working directory: add the input to Tests/HTTP1Tests as a
# permanent regression case (STYLE.md), and to corpus/http1/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."
seconds="${1:-60}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name HTTP1 \
    "$root"/Sources/HTTP1/*.swift "$here/HTTP1Fuzz.swift" -o "$out/http1-fuzz" 2>&1 | grep -v "Cannot export local symbol" || true
mkdir -p "$out/corpus"
cp "$here"/corpus/http1/* "$out/corpus/"
"$out/http1-fuzz" -max_total_time="$seconds" -max_len=4096 "$out/corpus"
