#!/usr/bin/python3
"""A gRPC echo upstream for the demo and the tests (Debian's python3-grpcio; no generated code:
methods take and return raw bytes).

  /pkg.Svc/Echo    unary: "echo:<request> xff=<x-forwarded-for> xfp=<x-forwarded-proto>",
                   trailing metadata x-echo-trailer: yes; the request b"fail" ends NOT_FOUND
                   "nothing here"
  /pkg.Svc/Stream  bidirectional: "s:<message>" for each message
  /pkg.Svc/Slow    unary: answers "slow" after 2 s
  /pkg.Svc/Flaky   unary, request "CODE:N:KEY": the first N calls with that KEY end with status
                   CODE (a name: UNAVAILABLE, INTERNAL, ...; trailers-only), the next answers
                   "flaky:KEY after N" (a retry test's upstream)

Prints "NAME listening on 127.0.0.1:PORT" once serving (--port 0 picks a free port). `--log FILE`
appends one line per unary call, flushed at once: "NAME METHOD authority=AUTHORITY request=BYTES"
(so a test sees what reached it: a mirror's copy, say).
"""
import argparse
import sys
import threading
import time
from concurrent import futures

import grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="grpc-echo")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert", help="serve TLS (ALPN h2) with this PEM certificate chain")
    ap.add_argument("--tls-key", help="and this PEM private key")
    ap.add_argument("--log", help="append a line per unary call to this file")
    args = ap.parse_args()
    lock = threading.Lock()

    def record(request, context):
        if not args.log:
            return
        # The call's :authority and method: grpcio keeps them in the call details.
        details = getattr(getattr(context, "_rpc_event", None), "call_details", None)
        method = details.method.decode() if details else "?"
        authority = details.host.decode() if details else "?"
        with lock, open(args.log, "a") as f:
            f.write("%s %s authority=%s request=%s\n" % (args.name, method, authority, request.decode("utf-8", "replace")))

    def echo(request, context):
        record(request, context)
        md = dict(context.invocation_metadata())
        context.set_trailing_metadata((("x-echo-trailer", "yes"),))
        if request == b"fail":
            context.abort(grpc.StatusCode.NOT_FOUND, "nothing here")
        return (b"echo:" + request + b" xff=" + md.get("x-forwarded-for", "").encode()
                + b" xfp=" + md.get("x-forwarded-proto", "").encode())

    def slow(request, context):
        record(request, context)
        time.sleep(2)
        return b"slow"

    failures = {}

    def flaky(request, context):
        record(request, context)
        code, n, key = request.decode().split(":", 2)
        with lock:
            seen = failures.get(key, 0)
            failures[key] = seen + 1
        if seen < int(n):
            context.abort(getattr(grpc.StatusCode, code), "flaky %s %d" % (key, seen + 1))
        return ("flaky:%s after %d" % (key, seen)).encode()

    def stream(requests, context):
        for r in requests:
            yield b"s:" + r

    handler = grpc.method_handlers_generic_handler("pkg.Svc", {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Stream": grpc.stream_stream_rpc_method_handler(stream),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Flaky": grpc.unary_unary_rpc_method_handler(flaky),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    if args.tls_cert:
        with open(args.tls_key, "rb") as k, open(args.tls_cert, "rb") as c:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port(f"127.0.0.1:{args.port}", creds)
    else:
        port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"{args.name} listening on 127.0.0.1:{port}", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
