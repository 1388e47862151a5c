"""`perf script` output -> folded stacks -> an SVG flame graph, and the top frames.

Standard library only (the stackcollapse-perf.pl / flamegraph.pl idea, rewritten small): a
folded stack is `comm;outermost;...;leaf COUNT`; the SVG draws each frame as a box whose width
is its share of the samples, callers below callees, with a tooltip (title) per box."""

import html
import re
import shutil
import subprocess
import zlib

_HEADER = re.compile(r"^\S.*?\s+\d+(?:/\d+)?\s+[\d.]+:\s+(\d+)?\s*\S+:")
_FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$")


def collapse(perf_script_text):
    """{folded stack: samples}. Frames are `symbol` with the +0xOFF dropped; unknown symbols
    become `[dso]`; kernel frames get a `_[k]` suffix (as stackcollapse-perf.pl does)."""
    stacks = {}
    comm, frames = None, []

    def flush():
        if comm is not None and frames:
            key = ";".join([comm] + frames[::-1])
            stacks[key] = stacks.get(key, 0) + 1

    for line in perf_script_text.splitlines():
        if not line.strip():
            flush()
            comm, frames = None, []
            continue
        if comm is None and not line[0].isspace():
            comm = line.split()[0]
            continue
        m = _FRAME.match(line)
        if not m or comm is None:
            continue
        sym, dso = m.group(1), m.group(2)
        sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
        if sym in ("[unknown]", ""):
            sym = "[%s]" % dso.rsplit("/", 1)[-1]
        if "kernel.kallsyms" in dso or dso.startswith("[kernel"):
            sym += "_[k]"
        frames.append(sym)
    flush()
    return stacks


def demangle(stacks):
    """Swift symbols ($s...) to readable names with swift-demangle, when it is on PATH."""
    exe = shutil.which("swift-demangle")
    if not exe:
        return stacks
    names = sorted({f for key in stacks for f in key.split(";") if f.startswith(("$s", "_$s"))})
    if not names:
        return stacks
    out = subprocess.run([exe, "--simplified", "--compact"], input="\n".join(names) + "\n",
                         capture_output=True, text=True)
    lines = out.stdout.splitlines()
    if out.returncode != 0 or len(lines) != len(names):
        return stacks
    table = {n: d.replace(";", ",") for n, d in zip(names, lines)}
    result = {}
    for key, count in stacks.items():
        new = ";".join(table.get(f, f) for f in key.split(";"))
        result[new] = result.get(new, 0) + count
    return result


def folded_text(stacks):
    return "".join("%s %d\n" % (k, v) for k, v in sorted(stacks.items()))


def top_frames(stacks, n=15):
    """(total, [(self samples, symbol)], [(inclusive samples, symbol)]) over all stacks."""
    total = sum(stacks.values())
    self_count, incl = {}, {}
    for key, count in stacks.items():
        frames = key.split(";")[1:] or key.split(";")  # drop the comm
        leaf = frames[-1]
        self_count[leaf] = self_count.get(leaf, 0) + count
        for f in set(frames):
            incl[f] = incl.get(f, 0) + count
    by_self = sorted(((c, s) for s, c in self_count.items()), reverse=True)[:n]
    by_incl = sorted(((c, s) for s, c in incl.items()), reverse=True)[:n]
    return total, by_self, by_incl


def top_user_frames(stacks, n=15):
    """[(self samples, symbol)] of leaf frames outside the kernel: the proxy's own code and its
    libraries."""
    counts = {}
    for key, count in stacks.items():
        leaf = key.rsplit(";", 1)[-1]
        if not leaf.endswith("_[k]"):
            counts[leaf] = counts.get(leaf, 0) + count
    return sorted(((c, s) for s, c in counts.items()), reverse=True)[:n]


def kernel_share(stacks):
    total = sum(stacks.values()) or 1
    kernel = sum(c for k, c in stacks.items() if k.rsplit(";", 1)[-1].endswith("_[k]"))
    return kernel / total


def _color(name):
    h = zlib.crc32(name.encode())
    if name.endswith("_[k]"):
        return "rgb(%d,%d,%d)" % (230, 140 + h % 60, 40 + (h >> 8) % 40)      # kernel: orange
    if "swift" in name.lower() or "." in name:
        return "rgb(%d,%d,%d)" % (220 + h % 35, 80 + (h >> 8) % 80, 60 + (h >> 16) % 40)  # ours: red
    return "rgb(%d,%d,%d)" % (200 + h % 55, 170 + (h >> 8) % 60, 60 + (h >> 16) % 40)    # libs: yellow


def flame_svg(stacks, title, width=1200, frame_h=16, min_width=0.5):
    """An SVG flame graph (callers at the bottom). Boxes narrower than min_width px are left
    out (their samples still count in their callers)."""
    tree = {"n": 0, "kids": {}}
    for key, count in stacks.items():
        node = tree
        node["n"] += count
        for f in key.split(";"):
            node = node["kids"].setdefault(f, {"n": 0, "kids": {}})
            node["n"] += count
    total = tree["n"] or 1
    scale = (width - 20) / total

    def depth(node):
        return 1 + max((depth(k) for k in node["kids"].values()), default=0)

    levels = depth(tree)
    height = (levels + 3) * frame_h + 40
    boxes = []

    def walk(node, name, x, level):
        w = node["n"] * scale
        if w < min_width:
            return
        if name is not None:
            y = height - 20 - level * frame_h
            pct = 100.0 * node["n"] / total
            label = name if len(name) * 7 < w else (name[: max(0, int(w / 7) - 2)] + ".." if w > 21 else "")
            boxes.append(
                '<g><title>%s (%d samples, %.2f%%)</title><rect x="%.1f" y="%d" width="%.1f" height="%d" '
                'fill="%s" rx="2"/><text x="%.1f" y="%d">%s</text></g>'
                % (html.escape(name), node["n"], pct, x, y, w, frame_h - 1, _color(name), x + 3, y + frame_h - 4,
                   html.escape(label)))
        cx = x
        for kid_name, kid in sorted(node["kids"].items()):
            walk(kid, kid_name, cx, level + (0 if name is None else 1))
            cx += kid["n"] * scale

    walk(tree, None, 10, 0)
    return (
        '<?xml version="1.0" standalone="no"?>\n'
        '<svg version="1.1" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">\n'
        '<style>text{font-family:monospace;font-size:11px;fill:#000;pointer-events:none}'
        'rect:hover{stroke:#000;stroke-width:0.5}</style>\n'
        '<rect x="0" y="0" width="%d" height="%d" fill="#f8f8f8"/>\n'
        '<text x="10" y="24" style="font-size:15px">%s</text>\n'
        '<text x="10" y="40">%d samples; width = share of samples; hover a box for its name and share</text>\n'
        '%s\n</svg>\n'
        % (width, height, width, height, html.escape(title), total, "\n".join(boxes)))
