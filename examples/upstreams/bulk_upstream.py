#!/usr/bin/env python3
"""Bulk-transfer peers for testing and measuring ingressd's splice paths (TCP routes, large
HTTP bodies). Python 3 standard library only, but for the `h2` mode (python3-h2).

    bulk_upstream.py tcp  [--port 0] [--banner NAME] [--linger-ms MS]
        TCP echo server. With --banner it first writes "NAME\\n" on every connection. Every byte
        received is echoed; when the client half-closes, the server waits --linger-ms, writes
        "END <received bytes> <sha256 of them>\\n", then closes: so a client that shut down its
        sending side still receives everything (half-close is passed on, not turned into a close).

    bulk_upstream.py http [--port 0]
        HTTP/1.1 keep-alive server. GET .../blob/N answers N pseudo-random bytes (seeded by N) with
        Content-Length and `x-sha256`; GET .../stream/N answers N bytes of `pattern` (below), made
        and sent 1 MiB at a time (memory stays flat for any N), with Content-Length and `x-sha256`;
        POST/PUT .../echo answers the request body back (Content-Length framing); any other
        POST/PUT reads the body 1 MiB at a time (Content-Length or chunked) and answers
        "<length> <sha256>" of it.

    bulk_upstream.py h2 [--port 0]
        The same GET .../stream/N and POST/PUT "<length> <sha256>" over HTTP/2 cleartext (prior
        knowledge), with Debian's python3-h2 (so /usr/bin/python3); bodies flow under HTTP/2 flow
        control (the server's windows: 16 MiB per stream, 1 GiB per connection). One thread per
        connection; streams of a connection are served in turn.

    bulk_upstream.py pattern N [--sha]
        Writes the N bytes GET .../stream/N answers to stdout (--sha: prints their sha256 instead).

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


PATTERN_BLOCK = random.Random(20250101).randbytes(1 << 20)


def pattern_chunks(n):
    """The N bytes of .../stream/N: PATTERN_BLOCK repeated, as views of at most 1 MiB."""
    view = memoryview(PATTERN_BLOCK)
    sent = 0
    while sent < n:
        k = min(len(view), n - sent)
        yield view[:k]
        sent += k


_PATTERN_SHA = {}


def pattern_sha(n):
    if n not in _PATTERN_SHA:
        h = hashlib.sha256()
        for chunk in pattern_chunks(n):
            h.update(chunk)
        _PATTERN_SHA[n] = h.hexdigest()
    return _PATTERN_SHA[n]


def pattern(args):
    if args.sha:
        print(pattern_sha(args.n), flush=True)
        return
    out = sys.stdout.buffer
    try:
        for chunk in pattern_chunks(args.n):
            out.write(chunk)
        out.flush()
    except BrokenPipeError:
        pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        m = re.search(r"stream/(\d+)", self.path)
        if m:
            n = int(m.group(1))
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(n))
            self.send_header("x-sha256", pattern_sha(n))
            self.end_headers()
            for chunk in pattern_chunks(n):
                self.wfile.write(chunk)
            return
        m = re.search(r"blob/(\d+)", self.path)
        if not m:
            self.reply(b"ok\n")
            return
        n = int(m.group(1))
        body = random.Random(n).randbytes(n)
        self.reply(body, sha=hashlib.sha256(body).hexdigest())

    def do_POST(self):
        if self.path.endswith("/echo"):
            n = int(self.headers.get("content-length", "0"))
            self.reply(self.rfile.read(n) if n else b"")
            return
        h = hashlib.sha256()
        total = 0
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # the trailer section
                    break
                total += self.read_into(h, size)
                self.rfile.readline()  # CRLF after the chunk
        else:
            total = self.read_into(h, int(self.headers.get("content-length", "0")))
        self.reply(b"%d %s" % (total, h.hexdigest().encode()))

    def read_into(self, h, n):
        """Reads n body bytes 1 MiB at a time into the hash; returns how many came."""
        got = 0
        while got < n:
            d = self.rfile.read(min(1 << 20, n - got))
            if not d:
                break
            h.update(d)
            got += len(d)
        return got

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


def h2_server(args):
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions
    import h2.settings

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(512)
    print("listening on 127.0.0.1:%d" % srv.getsockname()[1], flush=True)
    E = h2.events

    def serve(c):
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16 << 20,
                              h2.settings.SettingCodes.MAX_FRAME_SIZE: 1 << 20})
        conn.increment_flow_control_window((1 << 30) - 65535)
        uploads = {}    # stream id -> [hash, bytes]
        downloads = {}  # stream id -> [chunks iterator, current view]

        def answer(sid, status, body, extra=()):
            conn.send_headers(sid, [(":status", str(status)), ("content-length", str(len(body)))] + list(extra),
                              end_stream=not body)
            if body:
                conn.send_data(sid, body, end_stream=True)

        def push():
            """Sends what the windows allow of every download; True if something went out."""
            moved = False
            for sid in list(downloads):
                it, view = downloads[sid]
                while True:
                    if not view:
                        view = next(it, None)
                        if view is None:
                            conn.end_stream(sid)
                            del downloads[sid]
                            moved = True
                            break
                    k = min(len(view), conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                    if k <= 0:
                        downloads[sid] = [it, view]
                        break
                    conn.send_data(sid, view[:k].tobytes())
                    view = view[k:]
                    moved = True
            return moved

        try:
            while True:
                moved = push()
                data = conn.data_to_send()
                if data:
                    c.sendall(data)
                try:
                    # While downloads move, only take what has come; else wait for it.
                    d = c.recv(1 << 20, socket.MSG_DONTWAIT if moved else 0)
                except BlockingIOError:
                    continue
                if not d:
                    break
                for e in conn.receive_data(d):
                    if isinstance(e, E.RequestReceived):
                        hs = dict(e.headers)
                        m = re.search(r"stream/(\d+)", hs.get(":path", ""))
                        if hs.get(":method") in ("POST", "PUT"):
                            uploads[e.stream_id] = [hashlib.sha256(), 0]
                        elif m:
                            n = int(m.group(1))
                            conn.send_headers(e.stream_id, [(":status", "200"), ("content-length", str(n)),
                                                            ("content-type", "application/octet-stream"),
                                                            ("x-sha256", pattern_sha(n))])
                            downloads[e.stream_id] = [pattern_chunks(n), None]
                        else:
                            answer(e.stream_id, 200, b"ok\n")
                    elif isinstance(e, E.DataReceived):
                        up = uploads.get(e.stream_id)
                        if up:
                            up[0].update(e.data)
                            up[1] += len(e.data)
                        conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                    elif isinstance(e, E.StreamEnded):
                        up = uploads.pop(e.stream_id, None)
                        if up:
                            answer(e.stream_id, 200, b"%d %s" % (up[1], up[0].hexdigest().encode()))
                    elif isinstance(e, E.StreamReset):
                        uploads.pop(e.stream_id, None)
                        downloads.pop(e.stream_id, None)
                    elif isinstance(e, E.ConnectionTerminated):
                        return
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


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
    h = sub.add_parser("h2")
    h.add_argument("--port", type=int, default=0)
    g = sub.add_parser("pattern")
    g.add_argument("n", type=int)
    g.add_argument("--sha", action="store_true")
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
    {"tcp": tcp_server, "http": http_server, "h2": h2_server, "pattern": pattern, "client": client}[args.mode](args)


if __name__ == "__main__":
    main()
