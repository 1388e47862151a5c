"""The upstream and the three HTTP proxies perf/ compares, with their configurations.

Every proxy runs `workers` workers in front of the same upstream (nginx answering a fixed
20-byte body on /, 1 MiB on /1m, and accepting uploads of any size on /upload), with the same
request decoration (x-forwarded-for, -proto, x-request-id) so the work is alike."""

import os
import subprocess
import time

from .common import (Service, build_c_tool, fd_limit, free_port, http_get, log, pin, proc_children, tool,
                     version_of, wait_port)

BODY = "hello from upstream\n"  # 20 bytes
ALL_PROXIES = ["ingressd", "nginx", "haproxy"]
# A second ingressd binary (perf/bench --baseline PATH, e.g. the build of the commit before a
# change), measured as one more proxy with the very same configuration as "ingressd".
BASELINE = "ingressd-base"
KNOWN_PROXIES = ["ingressd", BASELINE, "nginx", "haproxy"]


def nginx_common(workdir, name, workers=1):
    # Run as root when we are root: the temp dir is 0700, and nginx workers would otherwise
    # drop to nobody. Temp paths inside workdir so no system directory is needed.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        "%sworker_processes %d;\ndaemon off;\nmaster_process on;\npid %s/%s.pid;\n"
        "error_log %s/%s-error.log warn;\nworker_rlimit_nofile 65536;\n"
        "events { worker_connections 32768; multi_accept on; }\n"
        % (user, workers, workdir, name, workdir, name)
    )


def nginx_temp_paths(workdir, name):
    return "".join(
        "  %s_temp_path %s/%s-%s;\n" % (kind, workdir, name, kind)
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )


# The `actions` scenario (perf/scenarios/actions.py): clients ask for ACTIONS_PATH; each proxy
# must rewrite the /api/ prefix to / and set both ACTIONS_HEADERS. The upstream answers the
# usual body only to /items carrying both headers with these values, and 404 with what it saw
# otherwise (the scenario's validity check reads that body).
ACTIONS_PATH = "/api/items"
ACTIONS_REWRITTEN = "/items"
ACTIONS_HEADERS = (("x-bench-a", "one"), ("x-bench-b", "two"))


def actions_upstream_maps():
    """http-level maps of the upstream: $bench_X_ok is 1 when header X has its value. Evaluated
    only on /items, so the other scenarios' requests do not pay for them."""
    return "".join(
        "  map $http_%s $bench_%s_ok { \"%s\" 1; default 0; }\n"
        % (name.replace("-", "_"), name.replace("-", "_"), value) for name, value in ACTIONS_HEADERS)


def actions_upstream_locations():
    checks = "".join(
        "      if ($bench_%s_ok = 0) { return 404 \"missing header %s\\n\"; }\n"
        % (name.replace("-", "_"), name) for name, _ in ACTIONS_HEADERS)
    return ("    location = %s {\n      default_type text/plain;\n%s      return 200 \"%s\";\n    }\n"
            "    location /api/ { default_type text/plain; return 404 \"unrewritten path $request_uri\\n\"; }\n"
            % (ACTIONS_REWRITTEN, checks, BODY.replace("\n", "\\n")))


def upstream_conf(workdir, port, workers=1, sink_port=None):
    return nginx_common(workdir, "upstream", workers) + (
        "http {\n  access_log off;\n%s"
        "  keepalive_requests 10000000;\n  keepalive_timeout 300s;\n"
        "  client_max_body_size 0;\n%s"
        "  server {\n    listen 127.0.0.1:%d backlog=4096;\n"
        "    location = /1m { alias %s/1m.bin; default_type application/octet-stream; }\n"
        "%s%s"
        "    location / { default_type text/plain; return 200 \"%s\"; }\n  }\n}\n"
        % (nginx_temp_paths(workdir, "upstream"), actions_upstream_maps(), port, workdir,
           upload_location(sink_port), actions_upstream_locations(), BODY.replace("\n", "\\n"))
    )


def upload_location(sink_port):
    """/upload streams the body to perf/tools/sink, which answers once it has read all of it
    (nginx's own `return` answers before reading the body, and wrk then stalls)."""
    if not sink_port:
        return "    location = /upload { default_type text/plain; return 200 \"stored\\n\"; }\n"
    return ("    location = /upload {\n      proxy_pass http://127.0.0.1:%d;\n      proxy_http_version 1.1;\n"
            "      proxy_set_header Connection \"\";\n      proxy_request_buffering off;\n"
            "      proxy_buffering off;\n    }\n" % sink_port)


def nginx_proxy_conf(workdir, port, upstream_port, keepalive, workers=1, name="nginx", location="/",
                     location_extra="", servers=1, listen_extra="", server_extra=""):
    # The same request decoration ingressd does (x-forwarded-for, -proto, x-request-id), so the
    # comparison is like for like. Request bodies are streamed (proxy_request_buffering off), as
    # ingressd and HAProxy do, instead of being spooled to a temp file first. `location_extra`
    # (directives, each line indented by 6) and `servers` (the upstream listed that many times)
    # are for the actions scenario; `listen_extra` (" ssl") and `server_extra` (server-level
    # directives, each line indented by 4: certificates) for the TLS scenarios.
    return nginx_common(workdir, name, workers) + (
        "http {\n  access_log off;\n%s"
        "  keepalive_requests 10000000;\n  keepalive_timeout 300s;\n"
        "  client_max_body_size 0;\n"
        "  upstream backend {\n%s    keepalive %d;\n"
        "    keepalive_requests 10000000;\n    keepalive_timeout 300s;\n  }\n"
        "  server {\n    listen 127.0.0.1:%d backlog=4096%s%s;\n%s    location %s {\n%s"
        "      proxy_pass http://backend;\n      proxy_http_version 1.1;\n"
        "      proxy_set_header Connection \"\";\n      proxy_set_header Host $http_host;\n"
        "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "      proxy_set_header X-Forwarded-Proto $scheme;\n"
        "      proxy_set_header X-Request-Id $request_id;\n"
        "      proxy_request_buffering off;\n"
        "      proxy_buffering on;\n    }\n  }\n}\n"
        % (nginx_temp_paths(workdir, name), "    server 127.0.0.1:%d;\n" % upstream_port * servers,
           keepalive, port, " reuseport" if workers > 1 else "", listen_extra, server_extra, location,
           location_extra)
    )


def nginx_grpc_conf(workdir, port, upstream_port, keepalive, workers=1, name="nginx", listen_extra="",
                    server_extra=""):
    """nginx forwarding every request over HTTP/2 cleartext with grpc_pass (h2up): the gRPC
    module carries any method to any HTTP/2 server, GETs included. An upstream block with a
    keepalive pool so connections are reused; nginx never multiplexes them (one request at a
    time per upstream connection, so up to one connection per stream in flight). The same
    decoration as nginx_proxy_conf (Host: grpc_pass's default, $host)."""
    return nginx_common(workdir, name, workers) + (
        "http {\n  access_log off;\n%s"
        "  keepalive_requests 10000000;\n  keepalive_timeout 300s;\n"
        "  client_max_body_size 0;\n"
        "  upstream backend {\n    server 127.0.0.1:%d;\n    keepalive %d;\n"
        "    keepalive_requests 10000000;\n    keepalive_timeout 300s;\n  }\n"
        "  server {\n    listen 127.0.0.1:%d backlog=4096%s%s;\n%s    location / {\n"
        "      grpc_pass grpc://backend;\n"
        "      grpc_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "      grpc_set_header X-Forwarded-Proto $scheme;\n"
        "      grpc_set_header X-Request-Id $request_id;\n    }\n  }\n}\n"
        % (nginx_temp_paths(workdir, name), upstream_port, keepalive, port, " reuseport" if workers > 1 else "",
           listen_extra, server_extra)
    )


def haproxy_conf(port, upstream_port, workers=1, frontend_extra="", backend_extra="", use_backend="default_backend be",
                 bind_extra="", global_extra="", proto="http", server_extra=""):
    # maxconn high enough for the idle scenario's 10 000 connections; an explicit ulimit-n at
    # the limit we have (HAProxy would otherwise refuse to start when it cannot raise it to
    # 2 x maxconn, which it only needs when every connection also has a server connection).
    # `bind_extra` (" ssl crt PEM"), `global_extra` (lines indented by 2) and `proto` (the
    # X-Forwarded-Proto value) are for the TLS scenarios; `server_extra` (" proto h2") for h2up.
    limit = fd_limit()
    maxconn = max(4096, min(20000, (limit - 64) // 2))
    return (
        "global\n  nbthread %d\n  maxconn %d\n  ulimit-n %d\n%s\n"
        "defaults\n  mode http\n  option http-keep-alive\n  http-reuse always\n"
        "  timeout connect 5s\n  timeout client 300s\n  timeout server 300s\n"
        "  timeout http-keep-alive 300s\n\n"
        "frontend fe\n  bind 127.0.0.1:%d%s\n  option forwardfor\n"
        "  http-request set-header X-Forwarded-Proto %s\n"
        "  unique-id-format %%{+X}o%%ci%%cp%%fi%%fp%%Ts%%rt%%pid\n"
        "  unique-id-header X-Request-Id\n%s"
        "  %s\n\n"
        "backend be\n%s  server up 127.0.0.1:%d maxconn 4096%s\n"
        % (workers, maxconn, limit, global_extra, port, bind_extra, proto, frontend_extra, use_backend,
           backend_extra, upstream_port, server_extra)
    )


def ingressd_conf(port, upstream_port, tls=None, upstream_protocol="HTTP"):
    """The bench's ingressd configuration; `tls` = (certificate path, key path) makes the
    Gateway server HTTPS (mode SIMPLE, hosts "*": every SNI, and none); `upstream_protocol` is
    the ServiceEntry port's protocol (HTTP2, GRPC: ingressd speaks HTTP/2 to the upstream)."""
    server = "      name: http\n      protocol: HTTP\n    hosts:\n    - \"*\"\n"
    if tls:
        server = ("      name: https\n      protocol: HTTPS\n    hosts:\n    - \"*\"\n"
                  "    tls:\n      mode: SIMPLE\n      serverCertificate: %s\n      privateKey: %s\n" % tls)
    return """apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata:
  name: bench-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: %d
%s---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: bench
spec:
  hosts:
  - "*"
  gateways:
  - bench-gateway
  http:
  - route:
    - destination:
        host: upstream
        port:
          number: 80
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: upstream
spec:
  hosts:
  - upstream.default.svc.cluster.local
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: %s
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports:
      http: %d
""" % (port, server, upstream_protocol, upstream_port)


# -- starting -----------------------------------------------------------------------------------

def start_nginx(name, conf_text, workdir, port, cpus=None):
    conf = os.path.join(workdir, name + ".conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    errlog = os.path.join(workdir, name + "-error.log")
    svc = Service(name, [tool("nginx"), "-p", workdir, "-c", conf, "-e", errlog], workdir, port, cpus)
    if not wait_port(port, svc.proc):
        err = open(errlog).read() if os.path.exists(errlog) else ""
        svc.stop()
        raise RuntimeError("%s did not start:\n%s%s" % (name, svc.log_tail(), err))
    return svc


def start_haproxy(workdir, port, upstream_port, workers=1, cpus=None, name="haproxy", conf_text=None):
    conf = os.path.join(workdir, name + ".cfg")
    with open(conf, "w") as f:
        f.write(conf_text or haproxy_conf(port, upstream_port, workers))
    svc = Service(name, [tool("haproxy"), "-db", "-f", conf], workdir, port, cpus)
    if not wait_port(port, svc.proc):
        svc.stop()
        raise RuntimeError("%s did not start:\n%s" % (name, svc.log_tail()))
    return svc


def start_ingressd(binary, workdir, port, upstream_port, workers=1, cpus=None, name="ingressd", conf_text=None):
    conf = os.path.join(workdir, name + ".yaml")
    with open(conf, "w") as f:
        f.write(conf_text or ingressd_conf(port, upstream_port))
    admin = free_port()
    svc = Service(name, [binary, "run", "-c", conf, "--workers", str(workers), "--bind", "127.0.0.1",
                               "--admin", "127.0.0.1:%d" % admin, "--access-log", "off"],
                  workdir, port, cpus)
    svc.admin = admin
    deadline = time.time() + 15
    while time.time() < deadline:
        if svc.proc.poll() is not None:
            break
        if http_get("http://127.0.0.1:%d/ready" % admin)[0] == 200:
            return svc
        time.sleep(0.1)
    svc.stop()
    raise RuntimeError("%s did not become ready (exit %s):\n%s" % (name, svc.proc.returncode, svc.log_tail()))


def worker_pids(svc, expect, timeout=5.0):
    """The worker processes of a started proxy: the children of its root process (nginx master,
    ingressd supervisor) once `expect` of them exist."""
    deadline = time.time() + timeout
    while True:
        kids = sorted(proc_children(svc.pid))
        if len(kids) >= expect or time.time() > deadline:
            return kids
        time.sleep(0.05)


def pin_workers(svc, name, workers, cpus):
    """One worker per CPU of `cpus` (round robin): nginx and ingressd workers by pid, HAProxy's
    threads all to the set (it has one process)."""
    if not cpus:
        return
    if name == "haproxy":
        pin(svc.pid, cpus, all_threads=True)
        return
    for k, pid in enumerate(worker_pids(svc, workers)):
        pin(pid, cpus[k % len(cpus)], all_threads=True)


class Peers:
    """The upstream plus the HTTP proxies, started once and stopped together.

    `targets` maps a proxy name to its Service (port, pid). A proxy that does not start, or does
    not answer with the upstream's body, is left out and named in `skipped`. `baseline` is the
    binary of the proxy named BASELINE ("ingressd-base"), configured exactly like "ingressd"."""

    def __init__(self, workdir, proxies, binary, workers=1, upstream_workers=1, keepalive=1024,
                 proxy_cpus=None, load_cpus=None, baseline=None):
        self.workdir = workdir
        self.proxies = proxies
        self.binary = binary
        self.baseline = baseline
        self.workers = workers
        self.upstream_workers = upstream_workers
        self.keepalive = keepalive
        self.proxy_cpus = proxy_cpus
        self.load_cpus = load_cpus
        self.targets = {}
        self.skipped = {}
        self.upstream = None
        self.upstream_port = None
        self.sink = None

    def start(self):
        bulk = os.path.join(self.workdir, "1m.bin")
        if not os.path.exists(bulk):
            with open(bulk, "wb") as f:
                f.write(b"x" * (1 << 20))
        self.sink = None
        try:
            sink_port = free_port()
            self.sink = Service("sink", [build_c_tool("sink"), str(sink_port)], self.workdir, sink_port,
                                self.load_cpus)
            if not wait_port(sink_port, self.sink.proc):
                raise RuntimeError("sink did not start: " + self.sink.log_tail())
        except (RuntimeError, OSError, subprocess.CalledProcessError) as err:
            log("perf: no upload sink (%s); the upload scenario is skipped" % err)
            if self.sink:
                self.sink.stop()
            self.sink = None
        self.upstream_port = free_port()
        self.upstream = start_nginx("upstream", upstream_conf(self.workdir, self.upstream_port,
                                                              self.upstream_workers,
                                                              self.sink.port if self.sink else None),
                                    self.workdir, self.upstream_port, cpus=self.load_cpus)
        for name in self.proxies:
            port = free_port()
            try:
                if name == "nginx":
                    svc = start_nginx("nginx", nginx_proxy_conf(self.workdir, port, self.upstream_port,
                                                                self.keepalive, self.workers),
                                      self.workdir, port, cpus=self.proxy_cpus)
                elif name == "haproxy":
                    svc = start_haproxy(self.workdir, port, self.upstream_port, self.workers,
                                        cpus=self.proxy_cpus)
                elif name == BASELINE:
                    svc = start_ingressd(self.baseline, self.workdir, port, self.upstream_port,
                                         self.workers, cpus=self.proxy_cpus, name=BASELINE)
                else:
                    svc = start_ingressd(self.binary, self.workdir, port, self.upstream_port,
                                         self.workers, cpus=self.proxy_cpus)
                pin_workers(svc, name, self.workers, self.proxy_cpus)
                self.targets[name] = svc
            except (RuntimeError, OSError) as err:
                self.skipped[name] = str(err)
                log("perf: %s skipped: %s" % (name, err))
        # Each must answer 200 with the upstream's body before anything is measured.
        for name, svc in list(self.targets.items()):
            status, body = http_get("http://127.0.0.1:%d/" % svc.port)
            if status != 200 or body.decode(errors="replace") != BODY:
                self.skipped[name] = "answered %d %r instead of the upstream's body" % (status, body[:100])
                log("perf: %s skipped: %s" % (name, self.skipped[name]))
                svc.stop()
                del self.targets[name]
        return self

    def order(self):
        return [p for p in self.proxies if p in self.targets]

    def check_alive(self):
        for svc in list(self.targets.values()) + [self.upstream, self.sink]:
            if svc and svc.proc.poll() is not None:
                raise RuntimeError("%s exited during the run:\n%s" % (svc.name, svc.log_tail()))

    def stop(self):
        for svc in self.targets.values():
            svc.stop()
        if self.upstream:
            self.upstream.stop()
        if self.sink:
            self.sink.stop()

    def versions(self):
        return {
            "nginx": version_of([tool("nginx"), "-v"]),
            "haproxy": version_of([tool("haproxy"), "-v"]),
            "wrk": version_of(["wrk", "-v"]),
            "ingressd": version_of([self.binary, "version"]) if "ingressd" in self.targets else None,
            BASELINE: version_of([self.baseline, "version"]) if BASELINE in self.targets else None,
        }
