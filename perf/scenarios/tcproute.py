"""perf/bench scenario `tcp`: 1 MiB transfers through TCP routes (ingressd's spliced TCP path)
against nginx `stream` and HAProxy `mode tcp`, stock settings.

The proxies and their upstream are the ones perf/scenarios/tcp.py starts (the standalone splice
bench): an nginx upstream with one worker serving a 1 MiB file with sendfile, ingressd with a TCP
server on its Gateway and a VirtualService `tcp` route, nginx `stream { proxy_pass }`, HAProxy
`listen … mode tcp`, one worker each. wrk speaks HTTP/1.1 keep-alive through the TCP proxies to
the upstream (the proxies see opaque bytes), `--large-connections` connections (default 10)."""

import os
import shutil
import tempfile

from . import Scenario, ScenarioSkip, register
from . import tcp as tcpbench

MIB = 1 << 20
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


class _Target:
    def __init__(self, name, pid, port):
        self.name = name
        self.pid = pid
        self.port = port


@register
class TCPRoute(Scenario):
    name = "tcp"
    title = ("TCP routes, 1 MiB responses (wrk keep-alive through ingressd tcp[] / nginx stream / "
             "HAProxy mode tcp; ingressd splices)")
    order = 45
    tools = ("wrk", "curl")
    columns = (("rps", "req/s", 0), ("gbps", "GB/s", 3), ("user_us_per_req", "user us/req", 1),
               ("sys_us_per_req", "sys us/req", 1), ("total_us_per_req", "total us/req", 1),
               ("cpu_s_per_gb", "CPU s/GB", 3))
    ratio_keys = ("rps", "total_us_per_req", "cpu_s_per_gb")

    def variants(self, args):
        return args.large_connections

    def setup(self, ctx):
        if "nginx" in ctx.args.proxies and not os.path.exists(STREAM_MODULE):
            raise ScenarioSkip("nginx stream module missing (%s; apt-get install libnginx-mod-stream)"
                               % STREAM_MODULE)
        # Not under ctx.workdir (0700): the upstream nginx workers run as an unprivileged user.
        self.tmp = tempfile.mkdtemp(prefix="ingressd-bench-tcp-")
        os.chmod(self.tmp, 0o755)
        self.procs = tcpbench.Procs()
        binary = ctx.args.binary if "ingressd" in ctx.args.proxies else None
        baseline = ctx.args.baseline if "ingressd-base" in ctx.args.proxies else None
        started = tcpbench.setup(self.tmp, self.procs, binary, {}, baseline=baseline)
        self.targets_ = {}
        for name, (pid, ports) in started.items():
            if name not in ctx.args.proxies:
                continue
            try:
                tcpbench.check(ports["tcp"], "/1m", MIB, name)
            except SystemExit as err:
                ctx.meta["skipped_scenarios"]["tcp/" + name] = str(err)
                continue
            self.targets_[name] = _Target(name, pid, ports["tcp"])
        if not self.targets_:
            self.teardown(ctx)
            raise ScenarioSkip("no TCP proxy answered the 1 MiB body")

    def targets(self, ctx):
        return self.targets_

    def run(self, ctx, target, variant):
        n, secs, errs = tcpbench.wrk(target.port, "/1m", ctx.args.duration, variant)
        return {"requests": n, "errors": errs if errs >= 0 else 1, "rps": n / secs if secs else 0,
                "bytes": n * MIB, "gbps": n * MIB / secs / 1e9 if secs else 0}

    def teardown(self, ctx):
        procs = getattr(self, "procs", None)
        if procs:
            procs.stop()
            self.procs = None
        shutil.rmtree(getattr(self, "tmp", ""), ignore_errors=True)
