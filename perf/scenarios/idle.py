"""RSS per idle keep-alive connection: open N connections to the proxy, one request each
(answered in full, so each connection is past its first request and idle in keep-alive), then
read the proxy's resident memory from /proc."""

import selectors
import socket
import time

from perflib.common import fd_limit, rss_bytes
from . import Scenario, ScenarioSkip, register

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: perf-idle\r\n\r\n"
BATCH = 100   # requests in flight at once (bounds the upstream connections a proxy opens)


def read_response(sock, buf=b""):
    """Reads one whole response with a Content-Length body; returns (ok, leftover)."""
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            total = head_end + 4 + length
            if len(buf) >= total:
                return head.startswith("HTTP/1.1 200"), buf[total:]
        chunk = sock.recv(65536)
        if not chunk:
            return False, b""
        buf += chunk


def open_idle(port, n, timeout=30.0):
    """n keep-alive connections to 127.0.0.1:port, each after one answered request. Returns
    (sockets, failures)."""
    socks, failures = [], 0
    deadline = time.time() + timeout
    for start in range(0, n, BATCH):
        group = []
        for _ in range(min(BATCH, n - start)):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(REQUEST)
                group.append(s)
            except OSError:
                failures += 1
        for s in group:
            try:
                ok, _ = read_response(s)
            except OSError:
                ok = False
            if ok:
                socks.append(s)
            else:
                failures += 1
                s.close()
        if time.time() > deadline:
            failures += n - start - len(group)
            break
    return socks, failures


def still_open(socks):
    """How many of the idle connections the proxy has not closed (no EOF readable)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = len(sel.select(timeout=0))
    sel.close()
    return len(socks) - closed


@register
class IdleMemory(Scenario):
    name = "idle"
    title = ("RSS per idle keep-alive connection (N connections, one request each, then idle; "
             "VmRSS of all the proxy's processes, after minus before)")
    order = 60
    variant_header = "conns"
    columns = (("rss_before_mib", "RSS before MiB", 1), ("rss_after_mib", "RSS after MiB", 1),
               ("bytes_per_conn", "bytes/conn", 0), ("open", "still open", 0),
               ("user_us_per_req", "user us/req", 2), ("sys_us_per_req", "sys us/req", 2),
               ("total_us_per_req", "total us/req", 2))
    ratio_keys = ("bytes_per_conn", "total_us_per_req")

    def variants(self, args):
        # HAProxy wants 2 fds per connection of its maxconn (perflib.peers.haproxy_conf): where
        # the open-file limit cannot be raised far enough, every proxy gets the same smaller N
        # (bytes/conn is per connection, so the figure stays comparable).
        cap = (fd_limit() - 64) // 2 - 100
        return [min(n, cap) if "haproxy" in args.proxies else n for n in args.idle_connections]

    def setup(self, ctx):
        wanted, got = max(ctx.args.idle_connections), max(self.variants(ctx.args))
        if got < 100:
            raise ScenarioSkip("open-file limit %d too low (raise ulimit -n)" % fd_limit())
        if got < wanted:
            note = ("open-file limit %d (hard limit, not raisable here) allows %d idle connections, not %d"
                    % (fd_limit(), got, wanted))
            ctx.meta.setdefault("notes", []).append("idle: " + note)
            from perflib.common import log
            log("bench: idle: " + note)

    def run(self, ctx, target, variant):
        time.sleep(0.3)
        before = rss_bytes(target.pid)
        socks, failures = open_idle(target.port, variant)
        time.sleep(0.5)   # let the proxy finish whatever each request left behind
        after = rss_bytes(target.pid)
        still = still_open(socks)
        for s in socks:
            s.close()
        time.sleep(0.5)   # the proxy sees the closes before the next run
        n = len(socks)
        return {
            "requests": n,
            "errors": failures,
            "open": still,
            "rss_before_mib": before / (1 << 20),
            "rss_after_mib": after / (1 << 20),
            "bytes_per_conn": (after - before) / n if n else None,
        }
