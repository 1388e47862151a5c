"""HTTP scenarios through the bench's proxies: keep-alive small responses, fixed-rate latency,
a new connection per request, 1 MiB responses and 10 MiB uploads."""

import os
import subprocess

from perflib.common import build_c_tool, fmt, run_wrk
from . import Scenario, ScenarioSkip, register

MIB = 1 << 20
UPLOAD_BYTES = 10 * MIB


def wrk_result(r):
    """The common shape: requests, rps, errors (socket errors + non-2xx), latency."""
    out = dict(r)
    out["errors"] = r["errors"] + r["non2xx"]
    return out


@register
class KeepAlive(Scenario):
    name = "keepalive"
    title = "small keep-alive responses (20-byte body, wrk closed loop)"
    order = 10
    tools = ("wrk",)
    ratio_keys = ("rps", "user_us_per_req", "sys_us_per_req", "total_us_per_req")

    def variants(self, args):
        return args.connections

    def warmup(self, ctx, target):
        if ctx.args.warmup:
            run_wrk(target.port, min(ctx.args.connections), ctx.args.warmup, ctx.threads, ctx.args.path,
                    cpus=ctx.load_cpus)

    def run(self, ctx, target, variant):
        r = run_wrk(target.port, variant, ctx.args.duration, ctx.threads, ctx.args.path, cpus=ctx.load_cpus)
        r["connections"] = variant
        return r

    def print_table(self, summary, order, ctx):
        # The original perf/bench table, unchanged.
        args = ctx.args
        print("medians of %d rounds, %ds each, wrk -t%d, path %s, %s per proxy, %s CPUs shared"
              % (args.rounds, args.duration, ctx.threads, args.path,
                 "one worker" if args.workers == 1 else "%d workers" % args.workers, ctx.meta["cpus"]))
        header = "%5s  %-22s %10s %12s %11s %13s %8s %8s" % (
            "conns", "proxy", "req/s", "user us/req", "sys us/req", "total us/req", "p50 ms", "p99 ms")
        print(header)
        print("-" * len(header))
        for conns in self.variants(args):
            entry = summary[str(conns)]
            for name in order:
                e = entry[name]
                print("%5d  %-22s %10s %12s %11s %13s %8s %8s%s" % (
                    conns, name, fmt(e["rps"], 0), fmt(e["user_us_per_req"]), fmt(e["sys_us_per_req"]),
                    fmt(e["total_us_per_req"]), fmt(e["p50_ms"]), fmt(e["p99_ms"]),
                    "  (%d errors)" % e["errors"] if e["errors"] else ""))
            for key in ("ingressd/ingressd-base", "ingressd/nginx", "ingressd/haproxy"):
                if key in entry:
                    r = entry[key]
                    print("%5d  %-22s %10s %12s %11s %13s" % (
                        conns, key, fmt(r["rps"]), fmt(r["user_us_per_req"]), fmt(r["sys_us_per_req"]),
                        fmt(r["total_us_per_req"])))
            print()


@register
class Latency(Scenario):
    name = "latency"
    title = ("latency at a fixed rate below saturation (open loop: perf/tools/openloop, latency from "
             "each request's scheduled time; nearest-rank percentiles)")
    order = 20
    variant_header = "req/s"
    columns = (("achieved", "achieved/s", 0), ("p50_ms", "p50 ms", 3), ("p90_ms", "p90 ms", 3),
               ("p99_ms", "p99 ms", 3), ("p999_ms", "p99.9 ms", 3), ("max_ms", "max ms", 2),
               ("user_us_per_req", "user us/req", 2), ("sys_us_per_req", "sys us/req", 2),
               ("total_us_per_req", "total us/req", 2))
    ratio_keys = ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "total_us_per_req")

    def variants(self, args):
        return args.rates

    def setup(self, ctx):
        try:
            ctx.openloop = build_c_tool("openloop")
        except (RuntimeError, subprocess.CalledProcessError, OSError) as err:
            raise ScenarioSkip("cannot build perf/tools/openloop.c: %s" % err)

    def run(self, ctx, target, variant):
        from perflib.common import taskset_prefix
        argv = taskset_prefix(ctx.load_cpus) + [
            ctx.openloop, "127.0.0.1", str(target.port), "/", str(variant), str(ctx.args.duration),
            str(ctx.args.latency_connections), "1"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=ctx.args.duration + 60)
        kv = {}
        for line in out.stdout.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                kv[k] = float(v)
        if out.returncode != 0 or "completed" not in kv:
            return {"requests": 0, "errors": 1, "openloop_output": (out.stdout + out.stderr)[-2000:]}
        r = {
            "requests": int(kv["completed"]),   # all answered requests, warm-up second included
            "recorded": int(kv["recorded"]),
            "rate": variant,
            "achieved": kv["rate"],
            "errors": int(kv["errors"] + kv["unfinished"]),
            "unfinished": int(kv["unfinished"]),
        }
        for key in ("p50", "p90", "p99", "p999", "max"):
            r[key + "_ms"] = kv[key + "_us"] / 1000.0
        return r


@register
class NewConnection(Scenario):
    name = "newconn"
    title = "new connection per request (wrk, Connection: close; the proxy closes after each response)"
    order = 30
    tools = ("wrk",)
    columns = (("rps", "req/s", 0), ("user_us_per_req", "user us/req", 2), ("sys_us_per_req", "sys us/req", 2),
               ("total_us_per_req", "total us/req", 2), ("p50_ms", "p50 ms", 2), ("p99_ms", "p99 ms", 2))
    ratio_keys = ("rps", "user_us_per_req", "sys_us_per_req", "total_us_per_req")

    def variants(self, args):
        return args.newconn_connections

    def run(self, ctx, target, variant):
        r = run_wrk(target.port, variant, ctx.args.duration, ctx.threads, "/",
                    extra=["-H", "Connection: close"], cpus=ctx.load_cpus)
        return wrk_result(r)


@register
class LargeResponse(Scenario):
    name = "large"
    title = "1 MiB responses (wrk keep-alive, GET /1m)"
    order = 40
    tools = ("wrk",)
    columns = (("rps", "req/s", 0), ("gbps", "GB/s", 3), ("user_us_per_req", "user us/req", 1),
               ("sys_us_per_req", "sys us/req", 1), ("total_us_per_req", "total us/req", 1),
               ("cpu_s_per_gb", "CPU s/GB", 3), ("p99_ms", "p99 ms", 2))
    ratio_keys = ("rps", "total_us_per_req", "cpu_s_per_gb")

    def variants(self, args):
        return args.large_connections

    def run(self, ctx, target, variant):
        r = wrk_result(run_wrk(target.port, variant, ctx.args.duration, ctx.threads, "/1m", cpus=ctx.load_cpus))
        r["bytes"] = r["requests"] * MIB
        r["gbps"] = r["bytes"] / ctx.args.duration / 1e9
        # Every response must be the whole MiB: wrk's byte count (with headers) at least that.
        if r["bytes_read"] is not None and r["bytes_read"] < 0.99 * r["bytes"]:
            r["errors"] += 1
            r["short_read"] = True
        return r


@register
class Upload(Scenario):
    name = "upload"
    title = "10 MiB uploads (wrk keep-alive, POST /upload with a 10 MiB body; the upstream discards it)"
    order = 50
    tools = ("wrk",)
    columns = (("rps", "uploads/s", 1), ("gbps", "GB/s", 3), ("user_us_per_req", "user us/req", 0),
               ("sys_us_per_req", "sys us/req", 0), ("total_us_per_req", "total us/req", 0),
               ("cpu_s_per_gb", "CPU s/GB", 3), ("p99_ms", "p99 ms", 1))
    ratio_keys = ("rps", "total_us_per_req", "cpu_s_per_gb")

    def variants(self, args):
        return args.upload_connections

    def setup(self, ctx):
        if not ctx.peers.sink:
            raise ScenarioSkip("no upload sink (perf/tools/sink.c did not build or start)")
        self.script = os.path.join(ctx.workdir, "upload.lua")
        with open(self.script, "w") as f:
            f.write('wrk.method = "POST"\n'
                    'wrk.headers["Content-Type"] = "application/octet-stream"\n'
                    'wrk.body = string.rep("x", %d)\n' % UPLOAD_BYTES)

    def run(self, ctx, target, variant):
        r = wrk_result(run_wrk(target.port, variant, ctx.args.duration, ctx.threads, "/upload",
                               extra=["-s", self.script], cpus=ctx.load_cpus))
        r["bytes"] = r["requests"] * UPLOAD_BYTES
        r["gbps"] = r["bytes"] / ctx.args.duration / 1e9
        return r
