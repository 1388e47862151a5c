"""perf/bench scenario `actions`: a route that does work on the request, against nginx and HAProxy
doing the same work.

The route (Istio's VirtualService fields, and their nginx / HAProxy equivalents):

  * matches the prefix /api/ and rewrites it to /  (`rewrite.uri: /`;
    nginx `rewrite ^/api/(.*)$ /$1 break;`; HAProxy `http-request replace-path ^/api/(.*) /\\1`)
  * sets two request headers  (`headers.request.set`; nginx `proxy_set_header` x2;
    HAProxy `http-request set-header` x2)
  * has Istio's default retry policy: no `retries` field, so Envoy retries twice (3 attempts) on
    connect-failure, refused-stream, unavailable, cancelled, retriable-status-codes. nginx:
    `proxy_next_upstream error timeout; proxy_next_upstream_tries 3;` with the upstream listed
    three times (nginx never retries a single-server upstream group); HAProxy: `retries 2` +
    `retry-on conn-failure empty-response` (an L7 retry: HAProxy keeps the request to replay it).
    Retries never fire here (the upstream is healthy); what is measured is what the policy costs.

Each proxy keeps the bench's usual decoration (x-forwarded-for, -proto, x-request-id), runs the
bench's worker count, and forwards to the bench's one upstream. The proxies are started for this
scenario alone (the bench's own proxies stay plain). wrk drives `GET /api/items` keep-alive, small
responses, `--actions-connections` connections.

Validity: the upstream answers `/items` with both headers at their values with the usual 20-byte
body and anything else with 404 and what it saw (perflib.peers.actions_upstream_locations). Before
the first round each proxy is asked once (also sending `x-bench-a: from-client`, which `set` must
replace); a proxy that fails is still measured, but every one of its runs is marked invalid with
the reason ("upstream saw the unrewritten path; not comparable") and left out of the ratios. A
run with any non-2xx answer is invalid too.
"""

from perflib.common import free_port, http_get, log, run_wrk
from perflib.peers import (ACTIONS_HEADERS, ACTIONS_PATH, BASELINE, BODY, haproxy_conf, ingressd_conf,
                           nginx_proxy_conf, pin_workers, start_haproxy, start_ingressd, start_nginx)
from . import Scenario, ScenarioSkip, register


def ingressd_actions_conf(port, upstream_port):
    """The bench's ingressd configuration with the route given a prefix match, a rewrite and two
    headers to set (and no `retries`: Istio's default policy)."""
    plain = ingressd_conf(port, upstream_port)
    route = "  http:\n  - route:\n"
    assert route in plain
    sets = "".join("          %s: %s\n" % (name, value) for name, value in ACTIONS_HEADERS)
    return plain.replace(route, (
        "  http:\n"
        "  - match:\n"
        "    - uri:\n"
        "        prefix: /api/\n"
        "    rewrite:\n"
        "      uri: /\n"
        "    headers:\n"
        "      request:\n"
        "        set:\n" + sets +
        "    route:\n"))


def nginx_actions_location():
    sets = "".join("      proxy_set_header %s %s;\n" % (name, value) for name, value in ACTIONS_HEADERS)
    return ("      rewrite ^/api/(.*)$ /$1 break;\n" + sets +
            "      proxy_next_upstream error timeout;\n"
            "      proxy_next_upstream_tries 3;\n")


def haproxy_actions_conf(port, upstream_port, workers):
    sets = "".join("  http-request set-header %s %s\n" % (name, value) for name, value in ACTIONS_HEADERS)
    backend = ("  retries 2\n"
               "  retry-on conn-failure empty-response\n" + sets +
               "  http-request replace-path ^/api/(.*) /\\1\n")
    return haproxy_conf(port, upstream_port, workers, backend_extra=backend,
                        use_backend="use_backend be if { path_beg /api/ }")


def check_target(port):
    """None when the proxy forwarded the rewritten path with both headers set, else why not."""
    status, body = http_get("http://127.0.0.1:%d%s" % (port, ACTIONS_PATH), headers={"x-bench-a": "from-client"})
    text = body.decode(errors="replace").strip()
    if status == 200 and text == BODY.strip():
        return None
    if text.startswith("unrewritten path"):
        return "upstream saw the unrewritten path (%s); not comparable" % text.split(" ", 2)[2]
    if text.startswith("missing header"):
        name = text.split()[-1]
        value = dict(ACTIONS_HEADERS)[name] if name in dict(ACTIONS_HEADERS) else "?"
        return "upstream did not get %s: %s; not comparable" % (name, value)
    return "answered %d %r instead of the upstream's body; not comparable" % (status, body[:80])


@register
class Actions(Scenario):
    name = "actions"
    title = ("route actions: /api/ prefix rewritten to /, two request headers set, Istio's default "
             "retry policy (wrk keep-alive, GET /api/items, 20-byte responses)")
    order = 15
    tools = ("wrk",)
    columns = (("rps", "req/s", 0), ("user_us_per_req", "user us/req", 2), ("sys_us_per_req", "sys us/req", 2),
               ("total_us_per_req", "total us/req", 2), ("p50_ms", "p50 ms", 2), ("p99_ms", "p99 ms", 2))
    ratio_keys = ("rps", "user_us_per_req", "sys_us_per_req", "total_us_per_req")

    def variants(self, args):
        return args.actions_connections

    def setup(self, ctx):
        args, peers = ctx.args, ctx.peers
        self.services = {}
        self.invalid = {}
        keepalive = max([1024] + list(args.actions_connections))
        for name in args.proxies:
            port = free_port()
            svc_name = "actions-" + name
            try:
                if name == "nginx":
                    svc = start_nginx(svc_name, nginx_proxy_conf(
                        ctx.workdir, port, peers.upstream_port, keepalive, args.workers, name=svc_name,
                        location="/api/", location_extra=nginx_actions_location(), servers=3),
                        ctx.workdir, port, cpus=args.proxy_cpus)
                elif name == "haproxy":
                    svc = start_haproxy(ctx.workdir, port, peers.upstream_port, args.workers, cpus=args.proxy_cpus,
                                        name=svc_name,
                                        conf_text=haproxy_actions_conf(port, peers.upstream_port, args.workers))
                else:
                    binary = args.baseline if name == BASELINE else args.binary
                    svc = start_ingressd(binary, ctx.workdir, port, peers.upstream_port, args.workers,
                                         cpus=args.proxy_cpus, name=svc_name,
                                         conf_text=ingressd_actions_conf(port, peers.upstream_port))
                pin_workers(svc, name, args.workers, args.proxy_cpus)
            except (RuntimeError, OSError) as err:
                ctx.meta["skipped_scenarios"]["actions/" + name] = str(err).splitlines()[0]
                log("bench: actions: %s did not start: %s" % (name, err))
                continue
            self.services[name] = svc
            why = check_target(port)
            if why:
                self.invalid[name] = why
                ctx.meta.setdefault("notes", []).append("actions: %s: %s" % (name, why))
                log("bench: actions: %s: %s" % (name, why))
        if not self.services:
            raise ScenarioSkip("no proxy started with the actions configuration")

    def targets(self, ctx):
        return self.services

    def warmup(self, ctx, target):
        if ctx.args.warmup:
            run_wrk(target.port, min(ctx.args.actions_connections), ctx.args.warmup, ctx.threads, ACTIONS_PATH,
                    cpus=ctx.load_cpus)

    def run(self, ctx, target, variant):
        r = run_wrk(target.port, variant, ctx.args.duration, ctx.threads, ACTIONS_PATH, cpus=ctx.load_cpus)
        r["connections"] = variant
        r["errors"] = r["errors"] + r["non2xx"]
        why = self.invalid.get(self._name_of(target))
        if why:
            r["invalid"] = why
        elif r["non2xx"]:
            r["invalid"] = "%d non-2xx answers (the upstream refused the forwarded request); not comparable" % r["non2xx"]
        return r

    def _name_of(self, target):
        return next((n for n, s in self.services.items() if s is target), None)

    def teardown(self, ctx):
        for svc in getattr(self, "services", {}).values():
            svc.stop()
        self.services = {}
