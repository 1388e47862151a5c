#!/usr/bin/env python3
"""perf/scenarios/tcp.py: bulk transfers through ingressd, nginx and HAProxy (the splice paths).

    perf/scenarios/tcp.py [--duration 4] [--rounds 3] [--connections 10] [--binary PATH]
                          [--scenarios tcp-1m,http-1m,upload-10m,threshold] [--json FILE]

Scenarios (one worker per proxy, same nginx upstream with 1 worker, wrk keep-alive, interleaved
rounds, medians):
  tcp-1m      1 MiB responses through a TCP route: ingressd (VirtualService tcp, spliced),
              nginx `stream` proxy_pass, HAProxy `mode tcp` (stock settings)
  http-1m     1 MiB responses through HTTP routes (ingressd splices bodies >= its threshold)
  upload-10m  10 MiB request bodies (POST) through HTTP routes
  threshold   ingressd alone: GET bodies of 64 KiB, 256 KiB, 1 MiB, 10 MiB with the copy path
              (INGRESSD_SPLICE_MIN_BYTES=0) against the splice path (=1)

Reported per run: MB/s through the proxy (wrk requests x body size / time), and the proxy's CPU
(user+sys of all its processes from /proc) per GB moved, in ms. Python 3 standard library only.
"""

import argparse
import datetime
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")
SIZES = {"64k": 64 << 10, "256k": 256 << 10, "1m": 1 << 20, "10m": 10 << 20}


def log(m):
    print(m, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for e in os.listdir("/proc"):
            if e.isdigit():
                try:
                    st = open("/proc/%s/stat" % e).read()
                    if int(st[st.rindex(")") + 2:].split()[1]) == p:
                        todo.append(int(e))
                except (OSError, ValueError):
                    pass
    return out


def cpu(pids):
    u = s = 0
    for p in pids:
        try:
            f = open("/proc/%d/stat" % p).read()
            x = f[f.rindex(")") + 2:].split()
            u += int(x[11])
            s += int(x[12])
        except OSError:
            pass
    return u / CLK_TCK, s / CLK_TCK


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, env=None, **kw):
        p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            for pid in reversed(tree(p.pid)):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def setup(tmp, procs, binary, env_extra, baseline=None):
    """Starts the upstream and the three proxies (and "ingressd-base", the `baseline` binary with
    ingressd's configuration, when given); returns {name: (pid, {scenario: port})}."""
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    os.chmod(tmp, 0o755)   # nginx workers run as another user
    os.chmod(www, 0o755)
    for name, n in SIZES.items():
        with open(os.path.join(www, name), "wb") as f:
            f.write(os.urandom(n))
        os.chmod(os.path.join(www, name), 0o644)
    up = free_port()
    open(os.path.join(tmp, "up.conf"), "w").write("""
worker_processes 1; daemon off; pid %(t)s/up.pid; error_log %(t)s/up.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; client_max_body_size 0;
  server { listen 127.0.0.1:%(p)d; root %(w)s; sendfile on;
    location /up { client_body_buffer_size 1m; return 200 "ok\\n"; } } }
""" % {"t": tmp, "p": up, "w": www})
    procs.start(["nginx", "-c", os.path.join(tmp, "up.conf"), "-p", tmp])
    wait_port(up)
    out = {}
    # ingressd: an HTTP server and a TCP server on one Gateway.
    for name, exe in (("ingressd", binary), ("ingressd-base", baseline)):
        if not exe:
            continue
        h, t = free_port(), free_port()
        open(os.path.join(tmp, name + ".yaml"), "w").write("""
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: %d, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: %d, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: up}
spec:
  hosts: [up]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: %d}}]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: up}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: up, port: {number: 80}}}]}]
  tcp: [{route: [{destination: {host: up, port: {number: 80}}}]}]
""" % (h, t, up))
        env = dict(os.environ, **env_extra)
        p = procs.start([exe, "run", "-c", os.path.join(tmp, name + ".yaml"), "--workers", "1",
                         "--bind", "127.0.0.1", "--admin", "127.0.0.1:%d" % free_port(), "--access-log", "off"], env=env)
        if wait_port(h) and wait_port(t):
            out[name] = (p.pid, {"http": h, "tcp": t})
    h, t = free_port(), free_port()
    open(os.path.join(tmp, "nginx.conf"), "w").write("""
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1; daemon off; pid %(t)s/ng.pid; error_log %(t)s/ng.err;
events { worker_connections 4096; }
stream { server { listen 127.0.0.1:%(tp)d; proxy_pass 127.0.0.1:%(u)d; } }
http { access_log off; client_max_body_size 0;
  upstream up { server 127.0.0.1:%(u)d; keepalive 1024; }
  server { listen 127.0.0.1:%(h)d;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr; } } }
""" % {"t": tmp, "tp": t, "u": up, "h": h})
    p = procs.start(["nginx", "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp])
    if wait_port(h) and wait_port(t):
        out["nginx"] = (p.pid, {"http": h, "tcp": t})
    h, t = free_port(), free_port()
    open(os.path.join(tmp, "haproxy.cfg"), "w").write("""
global
  nbthread 1
defaults
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fh
  mode http
  bind 127.0.0.1:%(h)d
  option forwardfor
  http-reuse always
  default_backend bh
backend bh
  mode http
  server s 127.0.0.1:%(u)d
listen lt
  mode tcp
  bind 127.0.0.1:%(t)d
  server s 127.0.0.1:%(u)d
""" % {"h": h, "t": t, "u": up})
    p = procs.start(["haproxy", "-f", os.path.join(tmp, "haproxy.cfg")])
    if wait_port(h) and wait_port(t):
        out["haproxy"] = (p.pid, {"http": h, "tcp": t})
    return out


def wrk(port, path, duration, conns, script=None):
    args = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration, "http://127.0.0.1:%d%s" % (port, path)]
    if script:
        args[1:1] = ["-s", script]
    r = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"(\d+) requests in ([\d.]+)s", r.stdout)
    errs = sum(int(x) for x in re.findall(r"(?:Non-2xx or 3xx responses:|connect|read|write|timeout) (\d+)", r.stdout))
    return (int(m.group(1)), float(m.group(2)), errs) if m else (0, float(duration), -1)


def check(port, path, size, proxy):
    """The proxy answers the body the scenario counts (a 403 would count as 1 MiB otherwise)."""
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                        "http://127.0.0.1:%d%s" % (port, path)], capture_output=True, text=True)
    if r.stdout != "200 %d" % size:
        raise SystemExit("%s on port %d: GET %s answered %s, expected 200 %d" % (proxy, port, path, r.stdout, size))


def measure(pid, port, path, size, args, script=None):
    pids = tree(pid)
    u0, s0 = cpu(pids)
    n, secs, errs = wrk(port, path, args.duration, args.connections, script)
    u1, s1 = cpu(pids)
    gb = n * size / 1e9
    return {"requests": n, "errors": errs, "MBps": n * size / secs / 1e6,
            "user_ms_per_GB": (u1 - u0) * 1e3 / gb if gb else None,
            "sys_ms_per_GB": (s1 - s0) * 1e3 / gb if gb else None,
            "cpu_ms_per_GB": ((u1 - u0) + (s1 - s0)) * 1e3 / gb if gb else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=10)
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build/release/ingressd"))
    ap.add_argument("--scenarios", default="tcp-1m,http-1m,upload-10m,threshold")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    scenarios = args.scenarios.split(",")
    tmp = tempfile.mkdtemp(prefix="ingressd-tcpbench-")
    os.chmod(tmp, 0o755)
    lua = os.path.join(tmp, "upload.lua")
    open(lua, "w").write('wrk.method = "POST"\nwrk.body = string.rep("x", %d)\n' % (10 << 20))
    runs = []
    procs = Procs()
    try:
        if any(s != "threshold" for s in scenarios):
            peers = setup(tmp, procs, args.binary, {})
            log("proxies: %s" % ", ".join(peers))
            plan = [("tcp-1m", "tcp", "/1m", 1 << 20, None), ("http-1m", "http", "/1m", 1 << 20, None),
                    ("upload-10m", "http", "/up", 10 << 20, lua)]
            for r in range(args.rounds):
                for name, kind, path, size, script in plan:
                    if name not in scenarios:
                        continue
                    for proxy, (pid, ports) in peers.items():
                        if r == 0 and not script:
                            check(ports[kind], path, size, proxy)
                        m = measure(pid, ports[kind], path, size, args, script)
                        m.update(round=r, scenario=name, proxy=proxy)
                        runs.append(m)
                        log("round %d %-10s %-8s %8.0f MB/s %7.1f ms CPU/GB (%d errors)"
                            % (r, name, proxy, m["MBps"], m["cpu_ms_per_GB"] or 0, m["errors"]))
            procs.stop()
            procs = Procs()
        if "threshold" in scenarios:
            for mode, env in (("copy", "0"), ("splice", "1")):
                t2 = tempfile.mkdtemp(prefix="ingressd-tcpbench-", dir=tmp)
                peers = setup(t2, procs, args.binary, {"INGRESSD_SPLICE_MIN_BYTES": env})
                pid, ports = peers["ingressd"]
                for r in range(args.rounds):
                    for size_name, size in SIZES.items():
                        if r == 0:
                            check(ports["http"], "/" + size_name, size, "ingressd-" + mode)
                        m = measure(pid, ports["http"], "/" + size_name, size, args)
                        m.update(round=r, scenario="threshold-" + size_name, proxy="ingressd-" + mode)
                        runs.append(m)
                        log("round %d %-14s %-16s %8.0f MB/s %7.1f ms CPU/GB"
                            % (r, m["scenario"], m["proxy"], m["MBps"], m["cpu_ms_per_GB"] or 0))
                procs.stop()
                procs = Procs()
    finally:
        procs.stop()
    # Table of medians.
    keys = sorted({(r["scenario"], r["proxy"]) for r in runs})
    print("%-16s %-16s %10s %10s %10s %10s" % ("scenario", "proxy", "MB/s", "user ms/GB", "sys ms/GB", "CPU ms/GB"))
    summary = {}
    for sc, px in keys:
        rs = [r for r in runs if r["scenario"] == sc and r["proxy"] == px]
        med = {k: statistics.median([r[k] for r in rs if r[k] is not None] or [0])
               for k in ("MBps", "user_ms_per_GB", "sys_ms_per_GB", "cpu_ms_per_GB")}
        summary.setdefault(sc, {})[px] = med
        print("%-16s %-16s %10.0f %10.1f %10.1f %10.1f" % (sc, px, med["MBps"], med["user_ms_per_GB"],
                                                           med["sys_ms_per_GB"], med["cpu_ms_per_GB"]))
    path = args.json or os.path.join(ROOT, "perf/results/tcp-%s.json" % datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    json.dump({"meta": {"kernel": os.uname().release, "cpus": os.cpu_count(), "args": vars(args)},
               "summary": summary, "runs": runs}, open(path, "w"), indent=1)
    log("wrote %s" % path)


if __name__ == "__main__":
    main()
