"""perf/bench scenario `grpc`: gRPC unary calls through each proxy, HTTP/2 end to end (the gRPC
issue's bar: ingressd >= 1.0x nginx grpc_pass req/s at <= 0.8x its CPU per request).

As h2up (perf/scenarios/h2.py: h2load by prior knowledge, `--h2-connections` x `--h2-streams`,
-n sized to `--duration`, an nghttpd upstream of its own, the same nginx `grpc_pass` and HAProxy
`proto h2` configurations), but every request is a gRPC unary call and every answer ends with a
`grpc-status` trailer:

  * client: h2load `-d REQUEST_FILE` (so POST, with content-length) and the headers a gRPC client
    sends, `content-type: application/grpc` and `te: trailers`, to GRPC_PATH; the body is one
    length-prefixed gRPC message (flag 0, 4-byte big-endian length, a 7-byte protobuf);
  * upstream: nghttpd `--trailer 'grpc-status: 0'` serving one length-prefixed gRPC message (a
    21-byte protobuf carrying the bench's "hello from upstream") as the file GRPC_PATH names.
    nghttpd answers a POST with the file (reading and dropping the request body) and sends the
    trailer after the last DATA frame; the ".grpc" suffix of the method is only there so that
    `--mime-types-file` gives the answer `content-type: application/grpc` (nghttpd types files by
    their extension), as a gRPC server's would be;
  * ingressd: the ServiceEntry port's protocol is GRPC (HTTP/2 cleartext to the upstream, one
    multiplexed connection per endpoint per worker); the request is recognised as gRPC
    (content-type), as a real call would be.

Validity, before the first round, for the upstream and then each proxy: `nghttp -v` with the
same body and headers must get `:status: 200`, `content-type: application/grpc`, the upstream's
message, and `grpc-status: 0` received after it (a trailer); and, where /usr/bin/python3 has
grpcio, a real grpcio unary call must return the message with status OK. A proxy failing either is
not loaded (its runs are invalid, with the reason). Per run, as h2up: any failed or non-2xx
request makes the run invalid (h2load does not read trailers, so per-run validity stops at the
status)."""

import os
import re
import struct
import subprocess

from perflib.common import tool
from . import register
from .h2 import H2Up

GRPC_PATH = "/bench.Bench/Echo.grpc"
REQUEST_MESSAGE = b"\x0a\x05hello"  # protobuf: field 1, string "hello"
RESPONSE_MESSAGE = b"\x0a\x13hello from upstream"  # field 1, string of 19 bytes
GRPC_PYTHON = "/usr/bin/python3"  # Debian's, with python3-grpcio (the PATH python3 may lack it)


def grpc_frame(message):
    """One length-prefixed gRPC message: uncompressed flag, 4-byte big-endian length, bytes."""
    return b"\x00" + struct.pack(">I", len(message)) + message


REQUEST = grpc_frame(REQUEST_MESSAGE)
RESPONSE = grpc_frame(RESPONSE_MESSAGE)
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")


def nghttp_grpc_call(url, request_file, timeout=5):
    """One gRPC unary call with `nghttp -v` (prior knowledge). None when it answered as a gRPC
    server does (200, application/grpc, the RESPONSE message, then a grpc-status: 0 trailer),
    else why not."""
    argv = [tool("nghttp"), "-v", "-t", "%d" % timeout, "-d", request_file]
    for h in GRPC_HEADERS:
        argv += ["-H", h]
    try:
        out = subprocess.run(argv + [url], capture_output=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return "nghttp did not finish in %d s" % (timeout + 10)
    raw = out.stdout + out.stderr
    text = raw.decode(errors="replace")
    last = text.strip().splitlines()[-1] if text.strip() else "no output"
    if out.returncode != 0 or "Some requests were not processed" in text:
        return "no HTTP/2 answer to a gRPC call (%s)" % last
    status = re.search(r"recv \(stream_id=\d+\) :status: (\d+)", text)
    if not status or status.group(1) != "200":
        return "gRPC call answered %s, not 200" % (status.group(1) if status else "no status")
    if not re.search(r"recv \(stream_id=\d+\) content-type: application/grpc", text):
        return "gRPC call answered without content-type: application/grpc"
    at = raw.find(RESPONSE)
    if at < 0:
        return "gRPC call's answer did not carry the upstream's message"
    trailer = re.compile(rb"recv \(stream_id=\d+\) grpc-status: (\S+)")
    m = trailer.search(raw, at + len(RESPONSE))
    if not m:
        return "no grpc-status trailer after the message"
    if m.group(1) != b"0":
        return "grpc-status %s, not 0" % m.group(1).decode(errors="replace")
    return None


GRPCIO_CALL = r"""
import sys
import grpc
channel = grpc.insecure_channel(sys.argv[1])
call = channel.unary_unary(sys.argv[2])
try:
    reply, state = call.with_call(bytes.fromhex(sys.argv[3]), timeout=5)
except grpc.RpcError as err:
    sys.exit("grpcio: %s %s" % (err.code(), err.details()))
if state.code() != grpc.StatusCode.OK or reply != bytes.fromhex(sys.argv[4]):
    sys.exit("grpcio: %s %r" % (state.code(), reply))
"""


def have_grpcio():
    try:
        return subprocess.run([GRPC_PYTHON, "-c", "import grpc"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def grpcio_call(port):
    """A real grpcio unary call to GRPC_PATH: None when it returned RESPONSE_MESSAGE with OK."""
    argv = [GRPC_PYTHON, "-c", GRPCIO_CALL, "127.0.0.1:%d" % port, GRPC_PATH, REQUEST_MESSAGE.hex(),
            RESPONSE_MESSAGE.hex()]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "grpcio call did not finish in 30 s"
    if out.returncode != 0:
        lines = (out.stdout + out.stderr).strip().splitlines()
        return "grpcio call failed: %s" % (lines[-1] if lines else "exit %d" % out.returncode)
    return None


@register
class GRPC(H2Up):
    """gRPC unary calls: h2c from h2load to the proxy, h2c from the proxy to nghttpd."""
    name = "grpc"
    title = ("gRPC unary calls (POST, application/grpc, te: trailers, 12-byte request, 26-byte answer + "
             "grpc-status trailer), h2c end to end, h2load -n sized to --duration, nghttpd upstream")
    order = 83
    upstream_protocol = "GRPC"

    def url(self, port):
        return "http://127.0.0.1:%d%s" % (port, GRPC_PATH)

    def fill_docroot(self, docroot):
        method = os.path.join(docroot, GRPC_PATH.lstrip("/"))
        os.makedirs(os.path.dirname(method), exist_ok=True)
        with open(method, "wb") as f:
            f.write(RESPONSE)
        base = os.path.dirname(docroot)
        self.request_file = os.path.join(base, "grpc-request.bin")
        with open(self.request_file, "wb") as f:
            f.write(REQUEST)
        self.mime_types = os.path.join(base, "grpc-mime.types")
        with open(self.mime_types, "w") as f:
            f.write("application/grpc grpc\n")

    def upstream_args(self, ctx):
        return ["--trailer", "grpc-status: 0", "--mime-types-file", self.mime_types]

    def h2load_extra(self, ctx):
        extra = ["-d", self.request_file]
        for h in GRPC_HEADERS:
            extra += ["-H", h]
        return extra

    def check_upstream(self):
        why = nghttp_grpc_call(self.url(self.upstream_port), self.request_file)
        if why:
            return "nghttpd: " + why
        self.grpcio = have_grpcio()
        if self.grpcio:
            why = grpcio_call(self.upstream_port)
            if why:
                return "nghttpd: " + why
        return None

    def check_proxy(self, port):
        why = nghttp_grpc_call(self.url(port), self.request_file)
        if not why and self.grpcio:
            why = grpcio_call(port)
        return why

    def setup(self, ctx):
        super().setup(ctx)
        ctx.meta["h2"]["grpc_check"] = "nghttp -v" + (" and grpcio" if self.grpcio else " (no grpcio)")
