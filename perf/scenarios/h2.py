"""perf/bench scenarios over HTTP/2 downstream: `h2` (cleartext, prior knowledge: h2c), `h2s`
(HTTPS, ALPN h2) and `h2up` (h2c to the proxy and h2c from the proxy to an HTTP/2 upstream: HTTP/2
end to end, as gRPC is carried). All: h2load (Debian nghttp2-client), `--h2-connections`
connections (10) x `--h2-streams` concurrent streams each (100), GET / (the upstream's 20-byte
body); h2 and h2s with the bench's one HTTP/1.1 upstream behind every proxy, h2up with an nghttpd
of its own (below).

Each scenario starts proxies of its own (the bench's plain proxies stay HTTP/1.1 only), with the
bench's worker count and usual decoration (x-forwarded-for, x-forwarded-proto, x-request-id):

  * ingressd: `h2` the bench's plain Gateway (`protocol: HTTP`, hosts "*", the same as
    keepalive's): HTTP/2 by prior knowledge; `h2s` a Gateway server `protocol: HTTPS`, SIMPLE,
    with the TLS scenarios' kind of certificate (ECDSA P-256, self-signed): HTTP/2 by ALPN;
  * nginx: `listen PORT http2` (nginx < 1.25.1; `http2 on;` from 1.25.1), `ssl` added for h2s,
    proxy_pass to the upstream with the keepalive pool, as in keepalive;
  * HAProxy: `bind PORT proto h2` (h2), `bind PORT ssl crt PEM alpn h2,http/1.1` (h2s),
    mode http, the same backend as keepalive.

h2up: the upstream is nghttpd (Debian nghttp2-server; `--no-tls`, `--upstream-workers` threads,
`-m 4096` so one connection may carry every stream in flight) serving the same 20-byte body as
DOCROOT/index.html; its CPU use is recorded per run (`upstream CPU%`) to show it is not the
bottleneck. The proxies as in h2, forwarding over HTTP/2 cleartext:

  * ingressd: the ServiceEntry port's protocol is HTTP2 (one multiplexed upstream connection per
    endpoint per worker, another when the upstream's SETTINGS_MAX_CONCURRENT_STREAMS is reached);
  * nginx: `grpc_pass grpc://backend` (the gRPC module carries any request over h2c, GETs too) to
    an upstream block with `keepalive`: connections are reused but never multiplexed, so nginx
    holds about one upstream connection per stream in flight (connections x streams);
  * HAProxy: `server ... proto h2` (multiplexed, http-reuse always).

h2load runs a fixed number of requests (`-n`), not a fixed time: with `-D` it counts the streams
still in flight when the time is up as failed ("errored"), up to connections x streams per run,
which would hide real failures. The count is sized per proxy and variant to last about
`--duration` seconds: from a calibration run before the first round (`-D`, `--warmup` seconds,
at least 1, not recorded) and then from that proxy's previous run. `-N 10` (inactivity timeout)
ends a stalled run: its requests then count as failed.

Validity: before the first round each proxy is asked once with `nghttp` (prior knowledge for
h2, ALPN h2 only for h2s) for / and must answer the upstream's 20-byte body over HTTP/2. A proxy
that fails (a build without HTTP/2: "h2 not supported") is not loaded at all: each of its runs is
reported as invalid with the reason, kept out of every ratio, and the others are measured as
usual. A run is invalid too where h2load negotiated something other than h2/h2c, where any
request failed (errored, reset, timed out: counted and printed as errors, never averaged away),
where an answer was not 2xx, or where no request succeeded ("all requests failed").
"""

import os
import re
import subprocess

import time

from perflib.common import (Service, cpu_seconds, free_port, log, parse_duration_ms, taskset_prefix, tool,
                            version_of, wait_port)
from perflib.peers import (BASELINE, BODY, haproxy_conf, ingressd_conf, nginx_grpc_conf, nginx_proxy_conf,
                           pin_workers, start_haproxy, start_ingressd, start_nginx)
from . import Scenario, ScenarioSkip, register
from .tls import make_certificate

# h2load's inactivity timeout (seconds): a connection silent that long is closed and its
# requests count as timed out, so a stalled proxy cannot hang the bench.
INACTIVITY_S = 10


def nginx_version():
    """(major, minor, patch) of the nginx on PATH, (0, 0, 0) when unknown."""
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version_of([tool("nginx"), "-v"]))
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def nginx_http2_syntax():
    """(listen_extra, server_extra) enabling HTTP/2 on a listener: `http2 on;` from nginx 1.25.1
    (the listen parameter is deprecated there), the `http2` listen parameter before (Debian 12:
    1.22.1)."""
    if nginx_version() >= (1, 25, 1):
        return "", "    http2 on;\n"
    return " http2", ""


def parse_h2load(out):
    """The numbers of h2load's summary (nghttp2 1.52):
        finished in 2.01s, 30123.45 req/s, 2.50MB/s
        requests: 60000 total, 60000 started, 60000 done, 60000 succeeded, 0 failed, 0 errored, 0 timeout
        status codes: 60000 2xx, 0 3xx, 0 4xx, 0 5xx
        time for request:      1.2ms   40.1ms   3.2ms   1.1ms   80.00%
    `succeeded` counts 2xx/3xx answers; `failed` everything else, including `errored` (reset,
    connection lost) and `timeout`. Missing lines leave None."""
    r = {"rps": None, "elapsed_s": None, "total": None, "started": None, "done": None, "succeeded": None,
         "failed": None, "errored": None, "timeout": None, "s2xx": None, "s3xx": None, "s4xx": None,
         "s5xx": None, "protocol": None, "mean_ms": None, "max_ms": None}
    m = re.search(r"finished in ([\d.]+\w+), ([\d.]+) req/s", out)
    if m:
        r["elapsed_s"] = (parse_duration_ms(m.group(1)) or 0.0) / 1000.0
        r["rps"] = float(m.group(2))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    if m:
        for key, value in zip(("total", "started", "done", "succeeded", "failed", "errored", "timeout"), m.groups()):
            r[key] = int(value)
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        for key, value in zip(("s2xx", "s3xx", "s4xx", "s5xx"), m.groups()):
            r[key] = int(value)
    m = re.search(r"Application protocol: (\S+)", out)
    if m:
        r["protocol"] = m.group(1)
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        r["max_ms"] = parse_duration_ms(m.group(2))
        r["mean_ms"] = parse_duration_ms(m.group(3))
    return r


def run_h2load(url, connections, streams, threads, requests=None, duration=None, cpus=None, tls=False, extra=()):
    """One h2load run: `requests` in all (-n) or for `duration` seconds (-D); `extra`: more
    h2load arguments (grpc: the body and headers of a gRPC call). Returns parse_h2load's dict
    plus h2load_exit, and h2load_output where it did not finish cleanly."""
    argv = taskset_prefix(cpus) + [
        tool("h2load"), "-c%d" % connections, "-m%d" % streams, "-t%d" % max(1, min(threads, connections)),
        "-N", "%d" % INACTIVITY_S] + list(extra)
    if tls:
        argv.append("--npn-list=h2")  # offer h2 alone: a proxy without ALPN h2 fails, not falls back
    if requests is not None:
        argv += ["-n", "%d" % requests]
        limit = INACTIVITY_S * 3 + 600
    else:
        argv += ["-D", "%d" % duration]
        limit = duration + INACTIVITY_S * 3 + 60
    argv.append(url)
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=limit)
        text, code = out.stdout + out.stderr, out.returncode
    except subprocess.TimeoutExpired as err:
        text = ((err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or ""))
        text += "\nh2load did not finish in %d s" % limit
        code = None
    r = parse_h2load(text)
    r["h2load_exit"] = code
    if code != 0 or r["total"] is None or r["failed"]:
        r["h2load_output"] = text[-2000:]
    return r


def nghttp_get(url, timeout=5):
    """GET url with nghttp (HTTP/2 only: prior knowledge on http://, ALPN h2 on https://; the
    certificate is not verified). Returns (body, output) where body is None when it failed."""
    argv = [tool("nghttp"), "-t", "%d" % timeout, url]
    try:
        out = subprocess.run(argv, capture_output=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return None, "nghttp did not finish in %d s" % (timeout + 10)
    text = (out.stdout + out.stderr).decode(errors="replace")
    if out.returncode != 0 or "Some requests were not processed" in text:
        return None, text.strip()
    return out.stdout, text.strip()


class _H2Scenario(Scenario):
    tools = ("h2load", "nghttp")
    variant_header = "conns"
    columns = (("rps", "req/s", 0), ("user_us_per_req", "user us/req", 2), ("sys_us_per_req", "sys us/req", 2),
               ("total_us_per_req", "total us/req", 2), ("mean_ms", "mean ms", 2), ("max_ms", "max ms", 2),
               ("failed", "failed", 0), ("proxy_cpu_pct", "proxy CPU%", 0), ("load_cpu_pct", "h2load CPU%", 0))
    ratio_keys = ("rps", "user_us_per_req", "sys_us_per_req", "total_us_per_req")
    #: "http" or "https".
    scheme = "http"

    def variants(self, args):
        return args.h2_connections

    def url(self, port):
        return "%s://127.0.0.1:%d/" % (self.scheme, port)

    def h2load_extra(self, ctx):
        """More h2load arguments for every run (grpc: method, body and headers)."""
        return ()

    def check_proxy(self, port):
        """None when the proxy answers as the upstream does over HTTP/2, else why not."""
        body, out = nghttp_get(self.url(port))
        if body == BODY.encode():
            return None
        if body is None:
            return "h2 not supported: nghttp got no HTTP/2 answer (%s)" % (
                out.splitlines()[-1] if out else "no output")
        return "h2 answer was %d bytes %r instead of the upstream's body" % (len(body), body[:60])

    def start_proxy(self, ctx, name, port, keepalive):
        raise NotImplementedError

    def setup(self, ctx):
        args = ctx.args
        self.services = {}
        self.invalid = {}
        self.requests = {}  # (proxy, variant) -> h2load -n for the next run
        keepalive = max([1024] + [c * args.h2_streams for c in args.h2_connections])
        for name in args.proxies:
            port = free_port()
            try:
                svc = self.start_proxy(ctx, name, port, keepalive)
                pin_workers(svc, name, args.workers, args.proxy_cpus)
            except (RuntimeError, OSError) as err:
                ctx.meta["skipped_scenarios"]["%s/%s" % (self.name, name)] = str(err).splitlines()[0]
                log("bench: %s: %s did not start: %s" % (self.name, name, err))
                continue
            self.services[name] = svc
            why = self.check_proxy(port)
            if why:
                why += "; not measured"
                self.invalid[name] = why
                ctx.meta.setdefault("notes", []).append("%s: %s: %s" % (self.name, name, why))
                log("bench: %s: %s: %s" % (self.name, name, why))
        if not self.services:
            raise ScenarioSkip("no proxy started with the %s configuration" % self.name)
        ctx.meta.setdefault("h2", {})["h2load"] = version_of([tool("h2load"), "--version"])

    def targets(self, ctx):
        return self.services

    def name_of(self, target):
        return next((n for n, s in self.services.items() if s is target), None)

    def warmup(self, ctx, target):
        """Fills the upstream pools and sizes each variant's -n: a -D run of --warmup seconds
        (at least 1), not recorded."""
        name = self.name_of(target)
        if name in self.invalid:
            return
        for conns in self.variants(ctx.args):
            r = run_h2load(self.url(target.port), conns, ctx.args.h2_streams, ctx.threads,
                           duration=max(1, ctx.args.warmup), cpus=ctx.load_cpus, tls=self.scheme == "https",
                           extra=self.h2load_extra(ctx))
            self.size_next(ctx, name, conns, r)

    def size_next(self, ctx, name, conns, r):
        rate = r.get("rps") or 0.0
        n = int(rate * ctx.args.duration)
        floor = max(1000, 4 * conns * ctx.args.h2_streams)
        n = max(n, floor)
        self.requests[(name, conns)] = (n + conns - 1) // conns * conns  # a multiple of the clients

    def run(self, ctx, target, variant):
        name = self.name_of(target)
        streams = ctx.args.h2_streams
        base = {"connections": variant, "streams": streams}
        if name in self.invalid:
            return dict(base, requests=0, errors=0, invalid=self.invalid[name])
        n = self.requests.get((name, variant)) or max(1000, 4 * variant * streams)
        h = run_h2load(self.url(target.port), variant, streams, ctx.threads, requests=n, cpus=ctx.load_cpus,
                       tls=self.scheme == "https", extra=self.h2load_extra(ctx))
        succeeded = h["succeeded"] or 0
        failed = h["failed"] if h["failed"] is not None else n
        non2xx = sum(h[k] or 0 for k in ("s3xx", "s4xx", "s5xx"))
        r = dict(base)
        r.update({k: v for k, v in h.items() if v is not None})
        r.update({"requests": succeeded, "asked": n, "failed": failed, "non2xx": non2xx,
                  "errors": max(failed, non2xx)})
        if h["rps"] is None:
            r["rps"] = 0.0
        if h["total"] is None:
            r["invalid"] = "h2load gave no summary (exit %s): %s" % (
                h["h2load_exit"], " | ".join(h.get("h2load_output", "").strip().splitlines()[-3:]))
        elif h["protocol"] not in ("h2", "h2c"):
            r["invalid"] = "negotiated %s, not HTTP/2; not comparable" % (h["protocol"] or "no protocol")
        elif not succeeded:
            r["invalid"] = "h2 not supported or broken: all %d requests failed (%d errored, %d timed out)" % (
                n, h["errored"] or 0, h["timeout"] or 0)
        elif failed or non2xx:
            r["invalid"] = "%d of %d requests failed (%d errored, %d timed out, %d non-2xx); not comparable" % (
                max(failed, non2xx), n, h["errored"] or 0, h["timeout"] or 0, non2xx)
        if succeeded:
            self.size_next(ctx, name, variant, h)
        return r

    def teardown(self, ctx):
        for svc in getattr(self, "services", {}).values():
            svc.stop()
        self.services = {}


@register
class H2(_H2Scenario):
    name = "h2"
    title = ("HTTP/2 cleartext by prior knowledge (h2c), h2load -n sized to --duration, "
             "20-byte responses, HTTP/1.1 upstream")
    order = 80

    def setup(self, ctx):
        super().setup(ctx)
        self.title = self.title.replace("h2load", "h2load -m%d" % ctx.args.h2_streams)

    def start_proxy(self, ctx, name, port, keepalive):
        args, peers = ctx.args, ctx.peers
        svc_name = "h2-" + name
        if name == "nginx":
            listen_extra, server_extra = nginx_http2_syntax()
            return start_nginx(svc_name, nginx_proxy_conf(
                ctx.workdir, port, peers.upstream_port, keepalive, args.workers, name=svc_name,
                listen_extra=listen_extra, server_extra=server_extra), ctx.workdir, port, cpus=args.proxy_cpus)
        if name == "haproxy":
            return start_haproxy(ctx.workdir, port, peers.upstream_port, args.workers, cpus=args.proxy_cpus,
                                 name=svc_name, conf_text=haproxy_conf(
                                     port, peers.upstream_port, args.workers, bind_extra=" proto h2"))
        binary = args.baseline if name == BASELINE else args.binary
        return start_ingressd(binary, ctx.workdir, port, peers.upstream_port, args.workers,
                              cpus=args.proxy_cpus, name=svc_name, conf_text=ingressd_conf(port, peers.upstream_port))


@register
class H2S(_H2Scenario):
    name = "h2s"
    title = ("HTTP/2 over TLS 1.3 by ALPN h2, ECDSA P-256, h2load -n sized to --duration, "
             "20-byte responses, HTTP/1.1 upstream")
    order = 81
    tools = ("h2load", "nghttp", "openssl")
    scheme = "https"

    def setup(self, ctx):
        certdir = os.path.join(ctx.workdir, "h2s")
        os.makedirs(certdir, exist_ok=True)
        self.cert, self.key, self.combined = make_certificate(certdir)
        super().setup(ctx)
        self.title = self.title.replace("h2load", "h2load -m%d" % ctx.args.h2_streams)

    def start_proxy(self, ctx, name, port, keepalive):
        args, peers = ctx.args, ctx.peers
        svc_name = "h2s-" + name
        if name == "nginx":
            listen_extra, server_extra = nginx_http2_syntax()
            server_extra += ("    ssl_certificate %s;\n    ssl_certificate_key %s;\n"
                             "    ssl_protocols TLSv1.2 TLSv1.3;\n" % (self.cert, self.key))
            return start_nginx(svc_name, nginx_proxy_conf(
                ctx.workdir, port, peers.upstream_port, keepalive, args.workers, name=svc_name,
                listen_extra=" ssl" + listen_extra, server_extra=server_extra), ctx.workdir, port,
                cpus=args.proxy_cpus)
        if name == "haproxy":
            return start_haproxy(ctx.workdir, port, peers.upstream_port, args.workers, cpus=args.proxy_cpus,
                                 name=svc_name, conf_text=haproxy_conf(
                                     port, peers.upstream_port, args.workers,
                                     bind_extra=" ssl crt %s alpn h2,http/1.1" % self.combined,
                                     global_extra="  ssl-default-bind-options ssl-min-ver TLSv1.2\n",
                                     proto="https"))
        binary = args.baseline if name == BASELINE else args.binary
        return start_ingressd(binary, ctx.workdir, port, peers.upstream_port, args.workers,
                              cpus=args.proxy_cpus, name=svc_name,
                              conf_text=ingressd_conf(port, peers.upstream_port, tls=(self.cert, self.key)))


@register
class H2Up(_H2Scenario):
    """HTTP/2 end to end: h2c from h2load to the proxy, h2c from the proxy to nghttpd."""
    name = "h2up"
    title = ("HTTP/2 end to end, as gRPC is carried: h2c by prior knowledge, h2load -n sized to --duration, "
             "20-byte responses, HTTP/2 cleartext upstream (nghttpd)")
    order = 82
    tools = ("h2load", "nghttp", "nghttpd")
    columns = _H2Scenario.columns + (("upstream_cpu_pct", "upstream CPU%", 0),)
    #: nghttpd's SETTINGS_MAX_CONCURRENT_STREAMS: room for every stream h2load keeps in flight on
    #: one connection (HAProxy and ingressd open another connection when it is reached).
    upstream_max_streams = 4096

    #: ServiceEntry port protocol of ingressd's upstream (both make it speak HTTP/2 cleartext).
    upstream_protocol = "HTTP2"

    def fill_docroot(self, docroot):
        """What nghttpd serves: the 20-byte body as index.html (GET /)."""
        with open(os.path.join(docroot, "index.html"), "w") as f:
            f.write(BODY)

    def upstream_args(self, ctx):
        """More nghttpd arguments (grpc: the trailer, the MIME types)."""
        return []

    def check_upstream(self):
        """None when nghttpd answers as the scenario needs, else why not."""
        body, out = nghttp_get("http://127.0.0.1:%d/" % self.upstream_port)
        if body == BODY.encode():
            return None
        return "nghttpd did not serve the 20-byte body over h2c: %s" % (out.splitlines()[-1] if out else "no output")

    def setup(self, ctx):
        docroot = os.path.join(ctx.workdir, self.name + "-htdocs")
        os.makedirs(docroot, exist_ok=True)
        self.fill_docroot(docroot)
        self.upstream = None
        self.upstream_port = free_port()
        workers = max(1, ctx.args.upstream_workers)
        self.upstream = Service(self.name + "-nghttpd", [
            tool("nghttpd"), "--no-tls", "-a", "127.0.0.1", "-d", docroot, "-n", "%d" % workers,
            "-m", "%d" % self.upstream_max_streams] + self.upstream_args(ctx) + ["%d" % self.upstream_port],
            ctx.workdir, self.upstream_port, ctx.load_cpus)
        if not wait_port(self.upstream_port, self.upstream.proc):
            why = "nghttpd did not start: %s" % (self.upstream.log_tail(3).strip() or "no output")
            self.upstream.stop()
            self.upstream = None
            raise ScenarioSkip(why)
        why = self.check_upstream()
        if why:
            self.upstream.stop()
            self.upstream = None
            raise ScenarioSkip(why)
        try:
            super().setup(ctx)
        except ScenarioSkip:
            self.upstream.stop()
            self.upstream = None
            raise
        self.title = self.title.replace("h2load", "h2load -m%d" % ctx.args.h2_streams)
        ctx.meta.setdefault("h2", {})["nghttpd"] = version_of([tool("nghttpd"), "--version"])
        ctx.meta["h2"][self.name + "_upstream"] = {"threads": workers,
                                                   "max_concurrent_streams": self.upstream_max_streams}

    def start_proxy(self, ctx, name, port, keepalive):
        args = ctx.args
        up = self.upstream_port
        svc_name = self.name + "-" + name
        if name == "nginx":
            listen_extra, server_extra = nginx_http2_syntax()
            return start_nginx(svc_name, nginx_grpc_conf(
                ctx.workdir, port, up, keepalive, args.workers, name=svc_name,
                listen_extra=listen_extra, server_extra=server_extra), ctx.workdir, port, cpus=args.proxy_cpus)
        if name == "haproxy":
            return start_haproxy(ctx.workdir, port, up, args.workers, cpus=args.proxy_cpus, name=svc_name,
                                 conf_text=haproxy_conf(port, up, args.workers, bind_extra=" proto h2",
                                                        server_extra=" proto h2"))
        binary = args.baseline if name == BASELINE else args.binary
        return start_ingressd(binary, ctx.workdir, port, up, args.workers, cpus=args.proxy_cpus, name=svc_name,
                              conf_text=ingressd_conf(port, up, upstream_protocol=self.upstream_protocol))

    def run(self, ctx, target, variant):
        """_H2Scenario.run, plus nghttpd's CPU use over the run (percent of one CPU): near 100
        per thread would mean the upstream, not the proxy, sets the pace."""
        alive = self.upstream is not None and self.upstream.alive()
        if alive:
            t0 = time.monotonic()
            u0, s0 = cpu_seconds(self.upstream.pid)
        r = super().run(ctx, target, variant)
        if alive:
            u1, s1 = cpu_seconds(self.upstream.pid)
            wall = time.monotonic() - t0
            r["upstream_cpu_pct"] = 100.0 * (u1 - u0 + s1 - s0) / wall if wall > 0 else None
        if self.upstream is not None and not self.upstream.alive() and not r.get("invalid"):
            r["invalid"] = "nghttpd exited during the run: %s" % self.upstream.log_tail(3).strip()
        return r

    def teardown(self, ctx):
        super().teardown(ctx)
        if getattr(self, "upstream", None) is not None:
            self.upstream.stop()
            self.upstream = None
