#!/usr/bin/env bash
# perf/device-run.sh: perf/scaling on a larger, borrowed machine, in one go (perf/README.md).
#
#   perf/device-run.sh prepare   HERE: static release build of ingressd (Swift runtime and
#                                Foundation linked in) plus nginx, wrk, taskset and the perf/tools
#                                C helpers, with every shared library they need besides glibc
#                                (liburing, RE2, OpenSSL, LuaJIT, libstdc++ ...), into
#                                perf/device/bundle/ (69 MiB) and perf/device/bundle.tar.xz
#                                (19 MiB: the one path to carry; both git-ignored)
#   perf/device-run.sh run       THERE: perf/scaling pinned at 1, 2 and 4 workers, ingressd and
#                                nginx at the same counts, results under $OUT (default
#                                perf/results/device-TIMESTAMP): machine.txt, scaling.txt,
#                                scaling/scaling.json, scaling/scaling.svg
#   perf/device-run.sh bench     THERE: perf/bench SCENARIOS (default large,keepalive), one
#                                worker per proxy pinned to CPU 1, the load on the others
#   perf/device-run.sh check     HERE: `run` through the bundle, small (1 worker, 1 round), to
#                                prove the bundle works before spending device time on it
#
# The device needs Linux x86-64 with glibc >= 2.35 (what the bundled binaries ask for), python3
# and >= 6 CPUs (workers on CPUs 1-4, wrk and the upstream on the rest). Nothing is installed
# there and nothing is fetched. Tunables (environment): WORKERS ("1 2 4"), ROUNDS (3), DURATION
# (5 s per run), CONNS_PER_WORKER (50). About 2-3 minutes with the defaults.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="$ROOT/perf/device/bundle"
TARBALL="$ROOT/perf/device/bundle.tar.xz"
WORKERS="${WORKERS:-1 2 4}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
CONNS_PER_WORKER="${CONNS_PER_WORKER:-50}"

die() { echo "device-run: $*" >&2; exit 1; }

# Shared libraries of $1 that are not glibc's own (those come from the device).
non_glibc_libs() {
    ldd "$1" | awk '/=>/ {print $3}' | grep -vE '/(libc|libm|libdl|librt|libpthread|libresolv|ld-linux[^/]*)\.so' || true
}

prepare() {
    cd "$ROOT"
    command -v swift >/dev/null || die "swift is not on PATH"
    for t in nginx wrk taskset cc ldd; do
        command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || die "$t missing (make deps-test; apt-get install gcc)"
    done
    echo "device-run: static release build (.build-static)"
    swift build -c release --static-swift-stdlib --scratch-path .build-static --product ingressd
    rm -rf "$BUNDLE"
    mkdir -p "$BUNDLE/bin" "$BUNDLE/lib"
    cp .build-static/release/ingressd "$BUNDLE/bin/ingressd"
    strip "$BUNDLE/bin/ingressd"
    cp "$(command -v nginx || echo /usr/sbin/nginx)" "$BUNDLE/bin/nginx"
    cp "$(command -v wrk)" "$BUNDLE/bin/wrk"
    cp "$(command -v taskset)" "$BUNDLE/bin/taskset"
    cp "$(command -v haproxy || echo /usr/sbin/haproxy)" "$BUNDLE/bin/haproxy"
    for tool in openloop sink; do
        cc -O2 -Wall -o "$BUNDLE/bin/$tool" "perf/tools/$tool.c"
    done
    for b in "$BUNDLE"/bin/*; do
        non_glibc_libs "$b"
    done | sort -u | while read -r lib; do
        cp -L "$lib" "$BUNDLE/lib/"
    done
    {
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(uname -r)"
        echo "git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
        for b in "$BUNDLE"/bin/*; do
            echo "$(basename "$b"): needs $(objdump -T "$b" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -t. -k2 -n -u | tail -1)"
        done
    } > "$BUNDLE/BUILD-INFO"
    cat "$BUNDLE/BUILD-INFO"
    ls "$BUNDLE/lib"
    echo "device-run: compressing (xz)"
    tar -C "$ROOT/perf/device" -cf - bundle | xz -6 -T0 > "$TARBALL"
    echo "device-run: bundle ready: perf/device/bundle ($(du -sh "$BUNDLE" | cut -f1)), perf/device/bundle.tar.xz ($(du -sh "$TARBALL" | cut -f1))"
    echo "device-run: on the device: bash perf/device-run.sh run   (carry perf/device/bundle.tar.xz)"
}

use_bundle() {
    if [ ! -x "$BUNDLE/bin/ingressd" ] && [ -f "$TARBALL" ]; then
        echo "device-run: unpacking $TARBALL"
        xz -dc "$TARBALL" | tar -C "$ROOT/perf/device" -xf -
    fi
    [ -x "$BUNDLE/bin/ingressd" ] || die "no bundle at $BUNDLE (run 'perf/device-run.sh prepare' first, and carry perf/device/bundle.tar.xz)"
    command -v python3 >/dev/null || die "python3 is needed to run perf/scaling"
    export PATH="$BUNDLE/bin:$PATH"
    export LD_LIBRARY_PATH="$BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export PERF_TOOLS_BIN="$BUNDLE/bin"     # perflib uses these instead of compiling perf/tools/*.c
    local t out
    for t in "ingressd version" "nginx -v" "wrk -v" "taskset --version" "haproxy -v"; do
        out=$("$BUNDLE/bin/${t%% *}" ${t#* } 2>&1 || true)
        if echo "$out" | grep -qE 'error while loading shared libraries|GLIBC_[0-9.]+. not found|cannot execute'; then
            die "bundled ${t%% *} does not run here: $out"
        fi
    done
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

machine_info() {
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "host: $(uname -n)  kernel: $(uname -r)"
        echo "cpus: $(nproc) online: $(cat /sys/devices/system/cpu/online 2>/dev/null || echo '?')"
        grep -m1 'model name' /proc/cpuinfo || true
        command -v lscpu >/dev/null && lscpu | grep -E 'Socket|Core|Thread|NUMA|MHz|L3' || true
        echo "memory: $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
        echo "open files: $(ulimit -n)"
        cat "$BUNDLE/BUILD-INFO" 2>/dev/null || true
    } > "$1/machine.txt"
    cat "$1/machine.txt"
}

run() {
    use_bundle
    local out="${OUT:-$ROOT/perf/results/device-$(date +%Y%m%d-%H%M%S)}"
    mkdir -p "$out"
    machine_info "$out"
    local ncpu
    ncpu=$(nproc)
    local kmax=0
    for k in $WORKERS; do [ "$k" -gt "$kmax" ] && kmax=$k; done
    local pin=on
    if [ "$ncpu" -lt $((kmax + 2)) ]; then
        echo "device-run: $ncpu CPUs: too few to pin $kmax workers apart from the load; running unpinned"
        pin=off
    fi
    python3 "$ROOT/perf/scaling" --binary "$BUNDLE/bin/ingressd" --workers "$WORKERS" --pin "$pin" \
        --rounds "$ROUNDS" --duration "$DURATION" --connections-per-worker "$CONNS_PER_WORKER" \
        --out "$out/scaling" 2>&1 | tee "$out/scaling.txt"
    echo "device-run: results in $out"
}

# perf/bench scenarios (default: 1 MiB responses and keep-alive) with one worker per proxy pinned
# to CPU 1 and the load on the others: the bulk bars of issue 4 measured on a quiet machine.
bench() {
    use_bundle
    local out="${OUT:-$ROOT/perf/results/device-$(date +%Y%m%d-%H%M%S)}"
    mkdir -p "$out"
    machine_info "$out"
    local last=$(( $(nproc) - 1 )) pin=()
    [ "$last" -ge 3 ] && pin=(--proxy-cpus 1 --load-cpus "2-$last")
    python3 "$ROOT/perf/bench" --binary "$BUNDLE/bin/ingressd" --scenarios "${SCENARIOS:-large,keepalive}" \
        --rounds "$ROUNDS" --duration "$DURATION" "${pin[@]}" \
        --json "$out/bench.json" 2>&1 | tee "$out/bench.txt"
    echo "device-run: results in $out"
}

check() {
    WORKERS="${WORKERS_CHECK:-1}" ROUNDS=1 DURATION=2 OUT="${OUT:-$ROOT/perf/results/device-check}" run
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    bench) bench ;;
    check) check ;;
    *) echo "usage: perf/device-run.sh prepare|run|bench|check" >&2; exit 2 ;;
esac
