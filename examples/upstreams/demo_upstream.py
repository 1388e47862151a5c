#!/usr/bin/env python3
"""A demo HTTP/1.1 upstream for ingressd: it names itself and echoes the request.

    demo_upstream.py --name frontend-v1 --port 18081 [--host 127.0.0.1] [--log FILE] [--quiet]

Every method on every path answers 200 `text/plain` with a body such as

    upstream: frontend-v1 (127.0.0.1:18081)
    request: GET /cart HTTP/1.1
    headers:
      Host: hipster.example.com
      x-forwarded-for: 127.0.0.1
      ...
    body-bytes: 0
    body-sha256: e3b0c442...

so a person sees at a glance which upstream a route reached and what the gateway forwarded.
The response also carries `x-demo-upstream: NAME`, which scripts and tests can count.

Request bodies are read whole, by `Content-Length` or `Transfer-Encoding: chunked`; their length
and SHA-256 are echoed, not the bytes. A chunked body's trailer section, when it has fields, is
echoed raw as `trailer-section: b'name: value\r\n...\r\n'` (Python's repr of the bytes). Connections are kept alive (HTTP/1.1) until the client
closes them or asks `Connection: close`.

Test hooks, by the end of the path (any prefix before them, the query ignored), so they work
behind a route's prefix too (`/kiali/status/503`):

    .../status/NNN   answer status NNN (with the usual echo body, none for 1xx/204/304)
    .../bytes/N      answer N bytes of `application/octet-stream`, streamed in 64 KiB writes
    .../delay/MS     wait MS milliseconds, then answer as usual
    .../chunked/N    answer N bytes with Transfer-Encoding: chunked (4 KiB chunks)
    x-upstream-close a request carrying this header is answered with `connection: close`
    Upgrade          a request with `Connection: upgrade` and `Upgrade: X` gets 101 and then
                     every byte it sends is echoed back until it closes (a stand-in WebSocket)

`--log FILE` appends one line per request (`NAME METHOD PATH body=N`), flushed at once, so a test
can see what reached the upstream, or that nothing did. Python 3 standard library only.
"""

import argparse
import hashlib
import http.server
import re
import socket
import sys
import threading
import time

CHUNK = 64 * 1024
# A hook may follow any prefix, so it works behind a route: /kiali/status/503, /jaeger/bytes/1024.
STATUS_RE = re.compile(r"(?:^|/)status/(\d{3})/?$")
BYTES_RE = re.compile(r"(?:^|/)bytes/(\d+)/?$")
DELAY_RE = re.compile(r"(?:^|/)delay/(\d+)/?$")
CHUNKED_RE = re.compile(r"(?:^|/)chunked/(\d+)/?$")


class BadRequest(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says otherwise
    server_version = "demo-upstream"
    sys_version = ""
    # Headers and small bodies go out in one write (below); no Nagle delay for the rest.
    disable_nagle_algorithm = True

    # BaseHTTPRequestHandler dispatches to do_<METHOD>; answer every method the same way.
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)

    def log_message(self, fmt, *args):  # the default goes to stderr for every request
        if not self.server.quiet:
            sys.stderr.write("%s: %s\n" % (self.server.name, fmt % args))

    # -- request body ---------------------------------------------------------------------------

    def read_body(self):
        """Reads the whole request body; returns (length, sha256 hex)."""
        digest = hashlib.sha256()
        length = 0
        self.trailer_section = None
        te = self.headers.get_all("Transfer-Encoding") or []
        codings = [c.strip().lower() for v in te for c in v.split(",") if c.strip()]
        if codings and codings[-1] == "chunked":
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise BadRequest("connection closed in chunked body")
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise BadRequest("bad chunk size %r" % size_text)
                if size == 0:
                    # trailers, up to the empty line (kept raw for the echo)
                    section = b""
                    while True:
                        trailer = self.rfile.readline(65537)
                        section += trailer
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    if section not in (b"\r\n", b"\n", b""):
                        self.trailer_section = section
                    break
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, CHUNK))
                    if not data:
                        raise BadRequest("connection closed in chunk")
                    digest.update(data)
                    length += len(data)
                    remaining -= len(data)
                self.rfile.readline(3)  # CRLF after the chunk data
        else:
            cl = self.headers.get("Content-Length")
            if cl:
                try:
                    remaining = int(cl)
                except ValueError:
                    raise BadRequest("bad content-length %r" % cl)
                while remaining > 0:
                    data = self.rfile.read(min(remaining, CHUNK))
                    if not data:
                        raise BadRequest("connection closed in body")
                    digest.update(data)
                    length += len(data)
                    remaining -= len(data)
        return length, digest.hexdigest()

    # -- response -------------------------------------------------------------------------------

    def echo_text(self, body_len, body_sha):
        srv = self.server
        lines = [
            "upstream: %s (%s:%d)" % (srv.name, srv.server_address[0], srv.server_address[1]),
            "request: %s" % self.requestline,
            "headers:",
        ]
        for name, value in self.headers.items():
            lines.append("  %s: %s" % (name, value))
        lines.append("body-bytes: %d" % body_len)
        lines.append("body-sha256: %s" % body_sha)
        section = getattr(self, "trailer_section", None)
        if section is not None:
            lines.append("trailer-section: %r" % section)
            self.trailer_section = None
        return ("\n".join(lines) + "\n").encode("utf-8", "replace")

    def send_simple(self, status, body, content_type="text/plain; charset=utf-8"):
        no_body = status < 200 or status in (204, 304) or self.command == "HEAD"
        head = ["HTTP/1.1 %d %s" % (status, self.responses.get(status, ("Status",))[0])]
        head.append("content-type: %s" % content_type)
        if not (status < 200 or status == 204):
            head.append("content-length: %d" % len(body))
        head.append("x-demo-upstream: %s" % self.server.name)
        if self.close_connection:
            head.append("connection: close")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if not no_body:
            payload += body
        self.wfile.write(payload)
        self.log_request(status, len(body))

    def send_bytes(self, count):
        head = (
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
            "content-length: %d\r\nx-demo-upstream: %s\r\n%s\r\n"
            % (count, self.server.name, "connection: close\r\n" if self.close_connection else "")
        )
        self.wfile.write(head.encode("latin-1"))
        if self.command != "HEAD":
            block = (b"0123456789abcdef" * (CHUNK // 16))
            remaining = count
            while remaining > 0:
                n = min(remaining, CHUNK)
                self.wfile.write(block[:n])
                remaining -= n
        self.log_request(200, count)

    def send_chunked(self, count):
        head = (
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
            "transfer-encoding: chunked\r\nx-demo-upstream: %s\r\n\r\n" % self.server.name
        )
        out = [head.encode("latin-1")]
        if self.command != "HEAD":
            remaining = count
            while remaining > 0:
                n = min(remaining, 4096)
                out.append(b"%x\r\n" % n + b"x" * n + b"\r\n")
                remaining -= n
            out.append(b"0\r\n\r\n")
        self.wfile.write(b"".join(out))
        self.log_request(200, count)

    def upgrade_echo(self):
        proto = self.headers.get("Upgrade", "")
        self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nupgrade: %s\r\nconnection: Upgrade\r\n"
                          "x-demo-upstream: %s\r\n\r\n" % (proto, self.server.name)).encode("latin-1"))
        self.wfile.flush()
        self.close_connection = True
        conn = self.connection
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)

    def handle_any(self):
        if "upgrade" in self.headers.get("Connection", "").lower() and self.headers.get("Upgrade"):
            self.server.record(self.command, self.path, 0)
            self.upgrade_echo()
            return
        try:
            body_len, body_sha = self.read_body()
        except BadRequest as err:
            self.close_connection = True
            self.server.record(self.command, self.path, -1)
            self.send_simple(400, ("bad request: %s\n" % err).encode())
            return
        self.server.record(self.command, self.path, body_len)
        if self.headers.get("x-upstream-close"):
            self.close_connection = True   # answer with `connection: close`, then close
        path = self.path.split("?", 1)[0]
        m = DELAY_RE.search(path)
        if m:
            time.sleep(int(m.group(1)) / 1000.0)
        m = BYTES_RE.search(path)
        if m:
            self.send_bytes(int(m.group(1)))
            return
        m = CHUNKED_RE.search(path)
        if m:
            self.send_chunked(int(m.group(1)))
            return
        status = 200
        m = STATUS_RE.search(path)
        if m:
            status = int(m.group(1))
        self.send_simple(status, self.echo_text(body_len, body_sha))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # wrk opens hundreds of connections at once

    def __init__(self, addr, name, log_path, quiet):
        self.name = name
        self.quiet = quiet
        self.log_lock = threading.Lock()
        self.log_file = open(log_path, "a", buffering=1) if log_path else None
        super().__init__(addr, Handler)

    def record(self, method, path, body_len):
        if self.log_file:
            with self.log_lock:
                self.log_file.write("%s %s %s body=%d\n" % (self.name, method, path, body_len))
                self.log_file.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True, help="name to report in every answer")
    ap.add_argument("--port", type=int, required=True, help="TCP port (0 picks a free one)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--log", help="append one line per request to this file")
    ap.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    args = ap.parse_args()
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    Server.address_family = family
    srv = Server((args.host, args.port), args.name, args.log, args.quiet)
    # First line on stdout says where it listens (useful with --port 0).
    print("%s listening on %s:%d" % (args.name, args.host, srv.server_address[1]), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
