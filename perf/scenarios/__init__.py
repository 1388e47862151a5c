"""perf/bench scenarios: a registry that every module in this package adds to.

A scenario is a class with the attributes and methods of `Scenario` below, decorated with
`@register`. perf/bench imports every module of this package (so a new file here, such as
tcp.py, plugs in without touching the bench), lists them in `--scenarios`, and for each round,
scenario, variant and proxy (interleaved) calls `run` between two readings of the proxy's CPU
time. The bench adds, to whatever `run` returns:

  cpu_user_s, cpu_sys_s                      the proxy's CPU time during the run (/proc)
  user_us_per_req, sys_us_per_req,
  total_us_per_req                           per item of `requests` in the result
  cpu_s_per_gb                               per GB (1e9 bytes) of `bytes` in the result, if any

then prints one table per scenario (medians over rounds, and ingressd/PEER ratio rows: medians
of the per-round ratios) and writes everything to the JSON file.

Contract of `run(ctx, target, variant)`: measure one proxy (`target`: .name, .port, .pid) once
and return a dict of numbers; include `requests` (operations completed) so CPU per request can
be derived, `errors` (failed operations; shown in the table), and `bytes` for bulk scenarios.
A run whose proxy did not do the work asked (the upstream saw the wrong request) carries
`invalid` = the reason: it stays in that proxy's medians, flagged, and out of every ratio.
Raise `ScenarioSkip("why")` from `setup` when the scenario cannot run here; it is then listed as
skipped with the reason and the others go on.
"""

import importlib
import os
import pkgutil

REGISTRY = {}


class ScenarioSkip(Exception):
    """Raised by a scenario's setup when it does not apply on this machine or with these proxies."""


class Scenario:
    #: `--scenarios` key.
    name = ""
    #: Heading of its table.
    title = ""
    #: Order in the default list (lower first).
    order = 100
    #: Commands it needs on PATH (perf/bench installs or names them).
    tools = ()
    #: Table columns after "variant" and "proxy": (result key, header, digits).
    columns = ()
    #: Keys whose ingressd/peer ratios are printed (per-round ratios, then the median).
    ratio_keys = ()
    #: Header of the variant column.
    variant_header = "conns"

    def variants(self, args):
        """The variants measured each round (e.g. concurrencies, rates)."""
        return [None]

    def setup(self, ctx):
        """Once, before the first round; may start services of its own (ctx.workdir) and may
        replace `ctx.scenario_targets[self.name]` with its own targets. Raise ScenarioSkip."""

    def targets(self, ctx):
        """{proxy name: target} to measure; default: the HTTP proxies the bench started."""
        return ctx.scenario_targets.get(self.name, ctx.peers.targets)

    def warmup(self, ctx, target):
        """Optional short load before the first round."""

    def run(self, ctx, target, variant):
        raise NotImplementedError

    def teardown(self, ctx):
        """Once, after the last round (also on errors): stop what setup started."""


def register(cls):
    if not cls.name:
        raise ValueError("scenario %r has no name" % cls)
    if cls.name in REGISTRY:
        raise ValueError("scenario %s registered twice" % cls.name)
    REGISTRY[cls.name] = cls
    return cls


def load_all():
    """Imports every module of this package; returns {name: scenario class} in table order."""
    here = os.path.dirname(os.path.abspath(__file__))
    for info in sorted(pkgutil.iter_modules([here]), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(__name__ + "." + info.name)
    return dict(sorted(REGISTRY.items(), key=lambda kv: (kv[1].order, kv[0])))
