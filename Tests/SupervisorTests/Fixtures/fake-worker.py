#!/usr/bin/env python3
# A stand-in worker for supervisor tests (INGRESSD_WORKER_EXECUTABLE=this file): it follows the
# worker contract of Sources/Worker/WorkerMain.swift as far as the supervisor can see it —
# attaches the region at fd 3, marks its slot accepting, heart-beats, follows the published
# generation, and drains on SIGTERM — without serving traffic.
#
# FAKE_WORKER_MODE: "" (normal), "hang" (stop heart-beating after 1 s), "ignore-term"
# (ignore SIGTERM), "stale-claim" (keep claiming the first generation it saw, so the
# supervisor's publish of generation+2 stays busy). FAKE_WORKER_REPORT: a directory; the worker writes <pid>.txt there with its
# argv, open descriptors and signal mask/ignore sets, so tests can check what it inherited.
import mmap, os, signal, struct, sys, time

args = sys.argv[1:]
index = int(args[args.index("--index") + 1])
mode = os.environ.get("FAKE_WORKER_MODE", "")
report = os.environ.get("FAKE_WORKER_REPORT")
if report:
    with open(os.path.join(report, "%d.txt" % os.getpid()), "w") as f:
        f.write("argv %s\n" % " ".join(sys.argv[1:]))
        f.write("fds %s\n" % " ".join(sorted(os.listdir("/proc/self/fd"), key=int)))
        for line in open("/proc/self/status"):
            if line.startswith(("SigBlk", "SigIgn")):
                f.write(line)

size = os.fstat(3).st_size
m = mmap.mmap(3, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
wso, wsb = struct.unpack_from("<QQ", m, 48)
slot = wso + index * wsb
stop = False

def on_term(signum, frame):
    global stop
    stop = True

signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore-term" else on_term)
start = time.monotonic()
struct.pack_into("<I", m, slot + 4, 2)  # accepting
while not stop:
    if not (mode == "hang" and time.monotonic() - start > 1):
        struct.pack_into("<Q", m, slot + 8, time.clock_gettime_ns(time.CLOCK_MONOTONIC))
    gen = struct.unpack_from("<Q", m, 128)[0]
    if mode != "stale-claim" or struct.unpack_from("<Q", m, slot + 16)[0] == 0:
        struct.pack_into("<Q", m, slot + 16, gen)
    struct.pack_into("<Q", m, slot + 80, struct.unpack_from("<Q", m, slot + 80)[0] + 1)  # requestsTotal
    time.sleep(0.1)
struct.pack_into("<I", m, slot + 4, 3)  # draining
time.sleep(0.2)
sys.exit(0)
