#!/usr/bin/env bash
# Starts the workshop's four demo upstreams in the background (see examples/services.yaml):
#
#   frontend-v1  127.0.0.1:18081   (frontend, label version=v0.1.2)
#   frontend-v2  127.0.0.1:18082   (frontend, label version=v0.1.3)
#   kiali        127.0.0.1:20001
#   tracing      127.0.0.1:18686   (Jaeger query in the workshop)
#   grpc-echo    127.0.0.1:19090   (gRPC, examples/grpc; needs Debian's python3-grpcio)
#
# Usage: run_demo.sh [start]   start them (stopping any earlier set first), print their pids
#        run_demo.sh stop      stop the ones this script started
#        run_demo.sh status    say which are running
#
# Pids are kept in $DEMO_RUN_DIR (default /tmp/ingressd-demo); logs go beside them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
run_dir="${DEMO_RUN_DIR:-/tmp/ingressd-demo}"
upstreams=("frontend-v1:18081" "frontend-v2:18082" "kiali:20001" "tracing:18686" "grpc-echo:19090")

stop() {
    local pidfile pid
    for pidfile in "$run_dir"/*.pid; do
        [[ -e "$pidfile" ]] || continue
        pid="$(cat "$pidfile")"
        # Only stop a process that still is our demo upstream (the pid may have been reused).
        if kill -0 "$pid" 2>/dev/null && grep -qE "demo_upstream|grpc_echo" "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            echo "stopped $(basename "$pidfile" .pid) (pid $pid)"
        fi
        rm -f "$pidfile"
    done
}

status() {
    local entry name pid
    for entry in "${upstreams[@]}"; do
        name="${entry%%:*}"
        pid="$(cat "$run_dir/$name.pid" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            echo "$name running (pid $pid, port ${entry##*:})"
        else
            echo "$name not running"
        fi
    done
}

start() {
    mkdir -p "$run_dir"
    stop >/dev/null
    local entry name port pid i
    for entry in "${upstreams[@]}"; do
        name="${entry%%:*}"
        port="${entry##*:}"
        if [[ "$name" == grpc-echo ]]; then
            # Debian's python3-grpcio belongs to the system interpreter.
            /usr/bin/python3 "$here/grpc_echo.py" --name "$name" --port "$port" >"$run_dir/$name.log" 2>&1 &
        else
            python3 "$here/demo_upstream.py" --name "$name" --port "$port" \
                >"$run_dir/$name.log" 2>&1 &
        fi
        pid=$!
        echo "$pid" >"$run_dir/$name.pid"
    done
    # Wait until each answers (or died, e.g. port in use).
    for entry in "${upstreams[@]}"; do
        name="${entry%%:*}"
        port="${entry##*:}"
        pid="$(cat "$run_dir/$name.pid")"
        for i in $(seq 1 50); do
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "run_demo.sh: $name failed to start on port $port:" >&2
                cat "$run_dir/$name.log" >&2
                stop >/dev/null
                exit 1
            fi
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                break
            fi
            sleep 0.1
        done
        echo "$name listening on 127.0.0.1:$port (pid $pid)"
    done
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
