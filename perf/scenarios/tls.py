"""perf/bench scenarios over TLS: `https` (keep-alive small responses), `handshake` (new TLS
connections per second, full and resumed) and `https-large` (1 MiB responses).

The three share one set of proxies, started for them alone (the bench's own proxies stay plain
HTTP): each terminates TLS with the same ECDSA P-256 certificate (self-signed, CN and SAN
bench.example.com, made with the `openssl` CLI in the bench's temp dir) and forwards plain HTTP to
the bench's one upstream, with the bench's usual decoration (x-forwarded-for, x-forwarded-proto
= https, x-request-id) and worker count:

  * ingressd: a Gateway server `protocol: HTTPS`, `tls: {mode: SIMPLE, serverCertificate,
    privateKey}`, hosts "*" (every SNI: wrk sends the URL's host, 127.0.0.1, as SNI);
  * nginx: `listen PORT ssl`, `ssl_certificate`, `ssl_certificate_key`, `ssl_protocols TLSv1.2
    TLSv1.3`, everything else stock (session tickets on, no shared session cache);
  * HAProxy: `bind PORT ssl crt combined.pem` (certificate + key in one file),
    `ssl-default-bind-options ssl-min-ver TLSv1.2`, stock otherwise (tickets on).

Validity: before the first round each proxy is asked once over HTTPS (Python's ssl module,
SNI bench.example.com, the certificate verified against the generated one) for / (the 20-byte
body, TLS 1.3 expected) and /1m (1 MiB); the handshake scenario also runs perf/tools/tlsloop
for half a second in `resumed` mode and expects the sessions to resume. A proxy that fails is
still measured, but its runs in the scenario concerned are marked invalid with the reason and
left out of every ratio. A run with non-2xx answers, or a `resumed` run in which fewer than all
but each slot's first connection resumed, is invalid too.
"""

import os
import socket
import ssl
import subprocess

from perflib.common import build_c_tool, free_port, log, run_wrk, taskset_prefix, tool
from perflib.peers import (BASELINE, BODY, haproxy_conf, ingressd_conf, nginx_proxy_conf, pin_workers,
                           start_haproxy, start_ingressd, start_nginx)
from . import Scenario, ScenarioSkip, register

MIB = 1 << 20
SNI = "bench.example.com"
CHECK_PATHS = {"/": BODY.encode(), "/1m": b"x" * MIB}


def ktls_available():
    """Whether the kernel offers the TLS upper-layer protocol (kTLS) to sockets."""
    try:
        with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
            ulps = f.read().split()
    except OSError:
        ulps = []
    if "tls" in ulps:
        return True, ""
    try:
        with socket.socket() as lst, socket.socket() as cli:
            lst.bind(("127.0.0.1", 0))
            lst.listen(1)
            cli.connect(lst.getsockname())
            cli.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
            return True, ""
    except OSError as err:
        return False, "TCP_ULP \"tls\": %s; tcp_available_ulp: %s" % (err.strerror, " ".join(ulps) or "-")


def make_certificate(workdir):
    """ECDSA P-256, self-signed, CN and SAN bench.example.com. Returns (cert, key, combined)."""
    cert, key = os.path.join(workdir, "tls-cert.pem"), os.path.join(workdir, "tls-key.pem")
    out = subprocess.run(
        [tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=" + SNI,
         "-addext", "subjectAltName=DNS:" + SNI], capture_output=True, text=True)
    if out.returncode != 0:
        raise ScenarioSkip("openssl could not make the certificate: %s" % (out.stderr.strip()[-300:]))
    combined = os.path.join(workdir, "tls-combined.pem")
    with open(combined, "w") as f:
        f.write(open(cert).read() + open(key).read())
    return cert, key, combined


def https_get(port, path, cafile, timeout=5.0):
    """GET path over TLS with SNI bench.example.com and the certificate verified against cafile.
    Returns (status, body, TLS version, cipher) or raises OSError / ssl.SSLError."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=SNI) as sock:
            sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, SNI)).encode())
            data = b""
            while True:
                try:
                    chunk = sock.recv(1 << 16)
                except ssl.SSLEOFError:
                    break  # closed without close_notify: the body length decides below
                if not chunk:
                    break
                data += chunk
            version, cipher = sock.version(), sock.cipher()[0]
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    length = next((int(v) for n, _, v in (line.partition(":") for line in lines[1:])
                   if n.strip().lower() == "content-length"), None)
    if length is not None:
        body = body[:length] if len(body) >= length else body
    return status, body, version, cipher


def check_https(port, cafile):
    """{path: reason} for the paths the proxy got wrong, and 'TLSv1.3 cipher' as seen."""
    wrong, seen = {}, ""
    for path, want in CHECK_PATHS.items():
        try:
            status, body, version, cipher = https_get(port, path, cafile)
        except (OSError, ssl.SSLError) as err:
            wrong[path] = "HTTPS GET %s failed: %s; not comparable" % (path, err)
            continue
        seen = seen or "%s %s" % (version, cipher)
        if status != 200 or body != want:
            wrong[path] = ("HTTPS GET %s answered %d with %d bytes %r instead of the upstream's %d bytes; "
                           "not comparable" % (path, status, len(body), body[:60], len(want)))
        elif path == "/" and version != "TLSv1.3":
            wrong[path] = "negotiated %s, not TLSv1.3; not comparable" % version
    return wrong, seen


class TLSPeers:
    """The TLS-terminating proxies, started by the first TLS scenario's setup and stopped by the
    last one's teardown. `services` {name: Service}; `invalid` {name: {"/" | "/1m": reason}};
    `seen` {name: "TLSv1.3 TLS_AES_256_GCM_SHA384"}."""

    def __init__(self):
        self.users = 0
        self.services = {}
        self.invalid = {}
        self.seen = {}

    def start(self, ctx):
        args, peers = ctx.args, ctx.peers
        self.cert, self.key, self.combined = make_certificate(ctx.workdir)
        keepalive = max([1024] + list(args.https_connections) + list(args.handshake_connections))
        ssl_lines = ("    ssl_certificate %s;\n    ssl_certificate_key %s;\n    ssl_protocols TLSv1.2 TLSv1.3;\n"
                     % (self.cert, self.key))
        for name in args.proxies:
            port = free_port()
            svc_name = "tls-" + name
            try:
                if name == "nginx":
                    svc = start_nginx(svc_name, nginx_proxy_conf(
                        ctx.workdir, port, peers.upstream_port, keepalive, args.workers, name=svc_name,
                        listen_extra=" ssl", server_extra=ssl_lines), ctx.workdir, port, cpus=args.proxy_cpus)
                elif name == "haproxy":
                    svc = start_haproxy(ctx.workdir, port, peers.upstream_port, args.workers, cpus=args.proxy_cpus,
                                        name=svc_name, conf_text=haproxy_conf(
                                            port, peers.upstream_port, args.workers,
                                            bind_extra=" ssl crt %s" % self.combined,
                                            global_extra="  ssl-default-bind-options ssl-min-ver TLSv1.2\n",
                                            proto="https"))
                else:
                    binary = args.baseline if name == BASELINE else args.binary
                    svc = start_ingressd(binary, ctx.workdir, port, peers.upstream_port, args.workers,
                                         cpus=args.proxy_cpus, name=svc_name,
                                         conf_text=ingressd_conf(port, peers.upstream_port, tls=(self.cert, self.key)))
                pin_workers(svc, name, args.workers, args.proxy_cpus)
            except (RuntimeError, OSError) as err:
                ctx.meta["skipped_scenarios"]["tls/" + name] = str(err).splitlines()[0]
                log("bench: tls: %s did not start: %s" % (name, err))
                continue
            self.services[name] = svc
            wrong, seen = check_https(port, self.cert)
            self.invalid[name] = wrong
            self.seen[name] = seen
            for path, why in wrong.items():
                ctx.meta.setdefault("notes", []).append("tls: %s: %s" % (name, why))
                log("bench: tls: %s: %s" % (name, why))
        ctx.meta["tls"] = {"certificate": "ECDSA P-256, self-signed, CN/SAN " + SNI,
                           "negotiated": self.seen, "ktls": ktls_available()[0]}
        if not self.services:
            raise ScenarioSkip("no proxy started with the TLS configuration")

    def stop(self):
        for svc in self.services.values():
            svc.stop()
        self.services = {}


def acquire(ctx):
    shared = getattr(ctx, "tls_peers", None)
    if shared is None:
        shared = ctx.tls_peers = TLSPeers()
    if not shared.users:
        try:
            shared.start(ctx)
        except BaseException:
            shared.stop()
            raise
    shared.users += 1
    return shared


def release(ctx):
    shared = getattr(ctx, "tls_peers", None) if ctx else None
    if shared and shared.users:
        shared.users -= 1
        if not shared.users:
            shared.stop()


class _TLSScenario(Scenario):
    tools = ("wrk", "openssl")

    def setup(self, ctx):
        self.shared = acquire(ctx)

    def targets(self, ctx):
        return self.shared.services

    def teardown(self, ctx):
        if getattr(self, "shared", None):
            release(ctx)
            self.shared = None

    def name_of(self, target):
        return next((n for n, s in self.shared.services.items() if s is target), None)

    def invalid_reason(self, target, path):
        return self.shared.invalid.get(self.name_of(target), {}).get(path)


@register
class HTTPS(_TLSScenario):
    name = "https"
    title = ("HTTPS keep-alive, 20-byte responses, TLS 1.3, ECDSA P-256 (wrk https://, closed loop)")
    order = 70
    columns = (("rps", "req/s", 0), ("user_us_per_req", "user us/req", 2), ("sys_us_per_req", "sys us/req", 2),
               ("total_us_per_req", "total us/req", 2), ("p50_ms", "p50 ms", 2), ("p99_ms", "p99 ms", 2),
               ("proxy_cpu_pct", "proxy CPU%", 0), ("load_cpu_pct", "wrk CPU%", 0))
    ratio_keys = ("rps", "user_us_per_req", "sys_us_per_req", "total_us_per_req")

    def variants(self, args):
        return args.https_connections

    def warmup(self, ctx, target):
        if ctx.args.warmup:
            run_wrk(target.port, min(ctx.args.https_connections), ctx.args.warmup, ctx.threads, "/",
                    cpus=ctx.load_cpus, scheme="https")

    def run(self, ctx, target, variant):
        r = run_wrk(target.port, variant, ctx.args.duration, ctx.threads, "/", cpus=ctx.load_cpus, scheme="https")
        r["connections"] = variant
        r["errors"] = r["errors"] + r["non2xx"]
        why = self.invalid_reason(target, "/")
        if why:
            r["invalid"] = why
        elif r["non2xx"]:
            r["invalid"] = "%d non-2xx answers; not comparable" % r["non2xx"]
        elif not r["requests"]:
            r["invalid"] = "no request completed (wrk: %s)" % r.get("wrk_output", "").strip()[-200:]
        return r


@register
class HTTPSLarge(_TLSScenario):
    name = "https-large"
    title = "HTTPS 1 MiB responses (wrk https:// keep-alive, GET /1m; no kTLS: encrypted in user space)"
    order = 72
    columns = (("rps", "req/s", 0), ("gbps", "GB/s", 3), ("user_us_per_req", "user us/req", 1),
               ("sys_us_per_req", "sys us/req", 1), ("total_us_per_req", "total us/req", 1),
               ("cpu_s_per_gb", "CPU s/GB", 3), ("p99_ms", "p99 ms", 2), ("proxy_cpu_pct", "proxy CPU%", 0),
               ("load_cpu_pct", "wrk CPU%", 0))
    ratio_keys = ("rps", "gbps", "total_us_per_req", "cpu_s_per_gb")

    def variants(self, args):
        return args.large_connections

    def setup(self, ctx):
        super().setup(ctx)
        ok, why = ktls_available()
        if not ok:
            note = "https-large: no kTLS on this box (%s): every proxy encrypts in user space" % why
        else:
            note = "https-large: kTLS is available here; none of the proxies is configured to use it"
        ctx.meta.setdefault("notes", []).append(note)

    def run(self, ctx, target, variant):
        r = run_wrk(target.port, variant, ctx.args.duration, ctx.threads, "/1m", cpus=ctx.load_cpus, scheme="https")
        r["connections"] = variant
        r["errors"] = r["errors"] + r["non2xx"]
        r["bytes"] = r["requests"] * MIB
        r["gbps"] = r["bytes"] / ctx.args.duration / 1e9
        why = self.invalid_reason(target, "/1m")
        if why:
            r["invalid"] = why
        elif r["non2xx"]:
            r["invalid"] = "%d non-2xx answers; not comparable" % r["non2xx"]
        elif r["bytes_read"] is not None and r["bytes_read"] < 0.99 * r["bytes"]:
            r["invalid"] = "short responses (wrk read %d bytes for %d MiB); not comparable" % (
                r["bytes_read"], r["requests"])
        return r


@register
class Handshake(_TLSScenario):
    name = "handshake"
    title = ("new TLS connections per second (perf/tools/tlsloop: connect, handshake, GET / with "
             "Connection: close, close; `full` = new session each time, `resumed` = the previous "
             "connection's session ticket)")
    order = 71
    tools = ("openssl", "cc")
    variant_header = "mode"
    columns = (("rate", "conns/s", 0), ("user_us_per_req", "user us/conn", 2), ("sys_us_per_req", "sys us/conn", 2),
               ("total_us_per_req", "total us/conn", 2), ("resumed_pct", "resumed %", 1),
               ("p50_ms", "p50 ms", 2), ("p99_ms", "p99 ms", 2), ("proxy_cpu_pct", "proxy CPU%", 0),
               ("load_us_per_req", "client us/conn", 0), ("load_cpu_pct", "client CPU%", 0))
    ratio_keys = ("rate", "user_us_per_req", "sys_us_per_req", "total_us_per_req")

    def variants(self, args):
        return ["full", "resumed"]

    def setup(self, ctx):
        try:
            self.tlsloop = build_c_tool("tlsloop", libs=["-lssl", "-lcrypto"])
        except (RuntimeError, subprocess.CalledProcessError, OSError) as err:
            raise ScenarioSkip("cannot build perf/tools/tlsloop.c (cc and libssl-dev): %s" % err)
        super().setup(ctx)
        # Does each proxy resume at all? Half a second of the resumed mode, 4 slots.
        self.no_resume = {}
        for name, svc in self.shared.services.items():
            r = self.loop(ctx, svc.port, "resumed", 0.5, 4)
            if r.get("completed", 0) <= 4 or r.get("reused", 0) < r["completed"] - 4:
                why = "sessions not resumed (%d of %d connections, %d errors); not comparable" % (
                    r.get("reused", 0), r.get("completed", 0), r.get("errors", 0))
                self.no_resume[name] = why
                ctx.meta.setdefault("notes", []).append("handshake: %s: %s" % (name, why))
                log("bench: handshake: %s: %s" % (name, why))

    def loop(self, ctx, port, mode, duration, conns, clients=1):
        """`clients` tlsloop processes at once (one thread each), `conns` slots each; their
        counts and rates summed, p50/p99 the slowest process's."""
        argv = taskset_prefix(ctx.load_cpus) + [
            self.tlsloop, "127.0.0.1", str(port), mode, str(duration), str(conns), SNI, "/", ctx.args.handshake_tls]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(clients)]
        total = {"completed": 0, "reused": 0, "errors": 0, "non200": 0, "rate": 0.0, "p50_us": 0, "p99_us": 0}
        for proc in procs:
            try:
                out, _ = proc.communicate(timeout=duration + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            kv = {}
            for line in out.splitlines():
                k, sep, v = line.partition("=")
                if sep:
                    try:
                        kv[k] = float(v) if k in ("secs", "rate") else int(v)
                    except ValueError:
                        kv[k] = v
            if proc.returncode != 0 or "completed" not in kv:
                total["errors"] += 1
                total["output"] = out[-500:]
                continue
            for k in ("completed", "reused", "errors", "non200", "rate"):
                total[k] += kv[k]
            for k in ("p50_us", "p99_us"):
                total[k] = max(total[k], kv[k])
            for k in ("version", "cipher", "group"):
                total[k] = kv.get(k)
        return total

    def run(self, ctx, target, variant):
        clients = ctx.args.handshake_clients
        conns = ctx.args.handshake_connections[0]
        kv = self.loop(ctx, target.port, variant, ctx.args.duration, conns, clients)
        n = kv.get("completed", 0)
        r = {"requests": n, "rate": kv.get("rate", 0.0), "errors": kv["errors"] + kv["non200"],
             "connections": conns * clients, "reused": kv.get("reused", 0),
             "resumed_pct": 100.0 * kv.get("reused", 0) / n if n else 0.0,
             "p50_ms": kv.get("p50_us", 0) / 1000.0, "p99_ms": kv.get("p99_us", 0) / 1000.0,
             "tls": "%s %s %s" % (kv.get("version"), kv.get("cipher"), kv.get("group"))}
        name = self.name_of(target)
        why = self.invalid_reason(target, "/")
        if why:
            r["invalid"] = why
        elif not n:
            r["invalid"] = "no connection completed (%s)" % kv.get("output", "").strip()[-200:]
        elif kv.get("non200"):
            r["invalid"] = "%d non-200 answers; not comparable" % kv["non200"]
        elif variant == "resumed" and (self.no_resume.get(name) or r["reused"] < n - conns * clients):
            r["invalid"] = self.no_resume.get(name) or "only %d of %d connections resumed; not comparable" % (
                r["reused"], n)
        elif variant == "full" and r["reused"]:
            r["invalid"] = "%d connections resumed in the full mode" % r["reused"]
        return r
