#!/usr/bin/env python3
"""Bulk-transfer peers for testing and measuring ingressd's splice paths (TCP routes, large
HTTP bodies). Python 3 standard library only.

    bulk_upstream.py tcp  [--port 0] [--banner NAME] [--linger-ms MS]
        TCP echo server. With --banner it first writes "NAME\\n" on every connection. Every byte
        received is echoed; when the client half-closes, the server waits --linger-ms, writes
        "END <received bytes> <sha256 of them>\\n", then closes: so a client that shut down its
        sending side still receives everything (half-close is passed on, not turned into a close).

    bulk_upstream.py http [--port 0]
        HTTP/1.1 keep-alive server. GET .../blob/N answers N pseudo-random bytes (seeded by N) with
        Content-Length and `x-sha256`; POST/PUT .../echo answers the request body back (Content-Length
        framing); any other POST/PUT answers "<length> <sha256>" of the body.

    bulk_upstream.py client --port P [--send N] [--half-close] [--banner] [--count C]
        Connects, optionally reads a banner line, sends N random bytes while reading everything
        the server returns until EOF, and prints one JSON line: sent, sent_sha256, received,
        received_sha256 (of the echoed bytes, the END line excluded), banner, end (the END line).

Servers print "listening on 127.0.0.1:PORT" once ready.
"""

import argparse
import hashlib
import http.server
import json
import os
import random
import re
import socket
import socketserver
import sys
import threading
import time


def tcp_server(args):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(512)
    print("listening on 127.0.0.1:%d" % srv.getsockname()[1], flush=True)

    def serve(c):
        try:
            if args.banner:
                c.sendall(args.banner.encode() + b"\n")
            h = hashlib.sha256()
            n = 0
            while True:
                d = c.recv(1 << 20)
                if not d:
                    break
                n += len(d)
                h.update(d)
                c.sendall(d)
            time.sleep(args.linger_ms / 1000.0)
            c.sendall(b"END %d %s\n" % (n, h.hexdigest().encode()))
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        m = re.search(r"blob/(\d+)", self.path)
        if not m:
            self.reply(b"ok\n")
            return
        n = int(m.group(1))
        body = random.Random(n).randbytes(n)
        self.reply(body, sha=hashlib.sha256(body).hexdigest())

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(n) if n else b""
        if self.path.endswith("/echo"):
            self.reply(body)
        else:
            self.reply(b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode()))

    do_PUT = do_POST

    def reply(self, body, sha=None):
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(len(body)))
        if sha:
            self.send_header("x-sha256", sha)
        self.end_headers()
        view = memoryview(body)
        for k in range(0, len(body), 1 << 20):
            self.wfile.write(view[k:k + (1 << 20)])


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 512


def http_server(args):
    srv = Server(("127.0.0.1", args.port), Handler)
    print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever()


def banners(args):
    """--count N: N short connections; prints how many times each banner was seen."""
    seen = {}
    for _ in range(args.count):
        c = socket.create_connection(("127.0.0.1", args.port), timeout=10)
        c.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            d = c.recv(4096)
            if not d:
                break
            data += d
        c.close()
        name = data.partition(b"\n")[0].decode() if data else "<closed>"
        seen[name] = seen.get(name, 0) + 1
    print(json.dumps(seen), flush=True)


def client(args):
    if args.count:
        return banners(args)
    c = socket.create_connection(("127.0.0.1", args.port), timeout=60)
    banner = None
    buf = b""
    if args.banner:
        while b"\n" not in buf:
            d = c.recv(4096)
            if not d:
                break
            buf += d
        line, _, buf = buf.partition(b"\n")
        banner = line.decode()
    received = bytearray(buf)

    def reader():
        while True:
            try:
                d = c.recv(1 << 20)
            except OSError:
                break
            if not d:
                break
            received.extend(d) if args.keep else None
            counts[0] += len(d)
            hasher.update(d) if args.keep is False else None

    counts = [len(buf)]
    hasher = hashlib.sha256(buf)
    t = threading.Thread(target=reader)
    t.start()
    sent_hash = hashlib.sha256()
    block = os.urandom(1 << 20)
    sent = 0
    while sent < args.send:
        k = min(len(block), args.send - sent)
        chunk = block[:k] if sent % (3 << 20) else os.urandom(k)
        c.sendall(chunk)
        sent_hash.update(chunk)
        sent += k
    if args.half_close:
        c.shutdown(socket.SHUT_WR)
    t.join()
    c.close()
    data = bytes(received)
    end = None
    if args.keep:
        idx = data.rfind(b"END ")
        if idx >= 0 and data.endswith(b"\n"):
            end = data[idx:].decode().strip()
            data = data[:idx]
        rsha = hashlib.sha256(data).hexdigest()
        rlen = len(data)
    else:
        rsha = None
        rlen = counts[0]
    print(json.dumps({"sent": sent, "sent_sha256": sent_hash.hexdigest(), "received": rlen,
                      "received_sha256": rsha, "banner": banner, "end": end}), flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("tcp")
    t.add_argument("--port", type=int, default=0)
    t.add_argument("--banner", default="")
    t.add_argument("--linger-ms", type=int, default=0)
    h = sub.add_parser("http")
    h.add_argument("--port", type=int, default=0)
    c = sub.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--send", type=int, default=0)
    c.add_argument("--half-close", action="store_true")
    c.add_argument("--banner", action="store_true")
    c.add_argument("--count", type=int, default=0,
                   help="make COUNT short connections and print how often each banner came back")
    c.add_argument("--no-keep", dest="keep", action="store_false",
                   help="count the received bytes without keeping them (large transfers)")
    args = p.parse_args()
    {"tcp": tcp_server, "http": http_server, "client": client}[args.mode](args)


if __name__ == "__main__":
    main()
