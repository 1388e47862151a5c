"""Shared plumbing of perf/bench, perf/scaling and perf/profile: processes, /proc readings,
tools, wrk. Python 3 standard library only."""

import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # perf/
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
# Command -> Debian package. h2load and nghttp (nghttp2-client) for the h2 scenarios, nghttpd
# (nghttp2-server) for h2up's HTTP/2 upstream; perf and valgrind for profile.
DEBIAN_PACKAGES = {"wrk": "wrk", "nginx": "nginx", "haproxy": "haproxy", "h2load": "nghttp2-client",
                   "nghttp": "nghttp2-client", "nghttpd": "nghttp2-server",
                   "perf": "linux-perf", "valgrind": "valgrind", "cc": "gcc", "taskset": "util-linux",
                   "openssl": "openssl"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def http_get(url, headers=None, timeout=2.0):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


# -- /proc --------------------------------------------------------------------------------------

def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    # fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return stat[stat.rindex(")") + 2:].split()


def proc_children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if int(_stat_fields(int(entry))[1]) == pid:
                kids.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return kids


def proc_tree(pid):
    tree, i = [pid], 0
    while i < len(tree):
        tree.extend(proc_children(tree[i]))
        i += 1
    return tree


def cpu_seconds(pid):
    """(user, system) CPU seconds of pid and all its descendants now alive."""
    user = system = 0
    for p in proc_tree(pid):
        try:
            fields = _stat_fields(p)
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def rss_bytes(pid):
    """Resident set size of pid and all its descendants (sum of VmRSS), in bytes."""
    total = 0
    for p in proc_tree(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def raise_fd_limit(want=65536):
    """Soft RLIMIT_NOFILE up to `want` (raising the hard limit too when root may): the proxies
    and load generators started from here inherit it (10 000 idle connections need 2 fds each
    in a proxy)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            pass
    target = want if hard == resource.RLIM_INFINITY else min(max(soft, want), hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def fd_limit():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- processes ----------------------------------------------------------------------------------

def taskset_prefix(cpus):
    """['taskset', '-c', LIST] when cpus (a list of ints or a string) is set, else []."""
    if not cpus:
        return []
    spec = cpus if isinstance(cpus, str) else ",".join(str(c) for c in cpus)
    return [tool("taskset"), "-c", spec]


def pin(pid, cpu, all_threads=False):
    """Pins a running process (or all its threads) to one CPU or a list."""
    spec = str(cpu) if isinstance(cpu, int) else ",".join(str(c) for c in cpu)
    argv = [tool("taskset")] + (["-a"] if all_threads else []) + ["-pc", spec, str(pid)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


class Service:
    """A process started by the bench, in its own session so its whole tree can be stopped."""

    def __init__(self, name, argv, workdir, port, cpus=None):
        self.name = name
        self.port = port
        self.argv = taskset_prefix(cpus) + argv
        self.out = open(os.path.join(workdir, name + ".log"), "w")
        self.proc = subprocess.Popen(self.argv, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, lines=15):
        try:
            with open(self.out.name) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()


# -- tools --------------------------------------------------------------------------------------

def tool(name):
    return shutil.which(name) or "/usr/sbin/" + name


def have(name):
    return shutil.which(name) is not None or os.path.exists("/usr/sbin/" + name)


def ensure_tools(needed, prog="bench"):
    """Installs missing commands with apt-get when root on Debian, else exits naming them."""
    missing = [t for t in dict.fromkeys(needed) if not have(t)]
    if not missing:
        return
    packages = [DEBIAN_PACKAGES.get(t, t) for t in missing]
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("%s: missing %s; install them (Debian: apt-get install %s) or run as root"
                 % (prog, ", ".join(missing), " ".join(packages)))
    log("%s: installing %s with apt-get" % (prog, " ".join(packages)))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = "/usr/sbin/policy-rc.d"  # keep the packages' own services from starting
    made_policy = not os.path.exists(policy)
    if made_policy:
        with open(policy, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + packages,
                       check=True, env=env)
    except subprocess.CalledProcessError as err:
        sys.exit("%s: apt-get failed (%s); install %s yourself" % (prog, err, " ".join(packages)))
    finally:
        if made_policy:
            os.remove(policy)
    still = [t for t in missing if not have(t)]
    if still:
        sys.exit("%s: still missing after apt-get: %s" % (prog, ", ".join(still)))


def version_of(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout + out.stderr).strip().splitlines()
        return text[0] if text else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def build_c_tool(name, cache_dir=None, libs=()):
    """Compiles perf/tools/NAME.c with cc -O2 into perf/tools/build/ (rebuilt when the source is
    newer), linked with `libs` (e.g. ["-lssl", "-lcrypto"]), and returns the binary's path."""
    prebuilt = os.environ.get("PERF_TOOLS_BIN")  # perf/device-run.sh ships them built
    if prebuilt and os.access(os.path.join(prebuilt, name), os.X_OK):
        return os.path.join(prebuilt, name)
    src = os.path.join(HERE, "tools", name + ".c")
    out_dir = cache_dir or os.path.join(HERE, "tools", "build")
    os.makedirs(out_dir, exist_ok=True)
    binary = os.path.join(out_dir, name)
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(src):
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            raise RuntimeError("no C compiler (cc) to build perf/tools/%s.c" % name)
        subprocess.run([cc, "-O2", "-Wall", "-o", binary, src] + list(libs), check=True)
    return binary


# -- wrk ----------------------------------------------------------------------------------------

def parse_duration_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_size_bytes(text):
    m = re.match(r"([\d.]+)(B|KB|MB|GB|TB)", text)
    if not m:
        return None
    return float(m.group(1)) * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m.group(2)]


def parse_wrk(out):
    result = {"requests": 0, "rps": 0.0, "errors": 0, "non2xx": 0, "p50_ms": None, "p99_ms": None,
              "bytes_read": None}
    m = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+\w+) read", out)
    if m:
        result["requests"] = int(m.group(1))
        result["bytes_read"] = parse_size_bytes(m.group(2))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        result["rps"] = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        result["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        result["non2xx"] = int(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M)
        if m:
            result[key] = parse_duration_ms(m.group(1))
    return result


def run_wrk(port, connections, duration, threads, path, extra=(), cpus=None, scheme="http"):
    """One wrk run against 127.0.0.1:port (scheme "https": wrk's OpenSSL client); parse_wrk's
    dict plus wrk_exit (and wrk_output when it failed)."""
    url = "%s://127.0.0.1:%d%s" % (scheme, port, path)
    argv = taskset_prefix(cpus) + ["wrk", "-t%d" % max(1, min(threads, connections)),
                                   "-c%d" % connections, "-d%ds" % duration, "--latency"] + list(extra) + [url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    result = parse_wrk(out.stdout)
    result["wrk_exit"] = out.returncode
    if out.returncode != 0 or not result["requests"]:
        result["wrk_output"] = (out.stdout + out.stderr)[-2000:]
    return result


# -- numbers ------------------------------------------------------------------------------------

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float) and value >= 1000:
        return "%.0f" % value
    return ("%." + str(digits) + "f") % value


def parse_list(text, kind=int):
    return [kind(c) for c in re.split(r"[,\s]+", str(text).strip()) if c]


def parse_cpus(text):
    """'1-4,7' -> [1, 2, 3, 4, 7]."""
    cpus = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-")
            cpus.extend(range(int(a), int(b) + 1))
        else:
            cpus.append(int(part))
    return cpus


def online_cpus():
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))
