#!/usr/bin/env python3
"""Tables of tests/cluster/cluster.sh bench runs: median out-of-place busbw (GB/s) per size and
configuration over the repetitions, the tuner's choice in the aware runs, and aware / blind.
Usage: summarize.py OUT NODES RAILS RPN RAIL_RATE SPINE_RATE"""
import glob
import json
import os
import re
import statistics
import sys

out, nodes, rails, rpn, rail_rate, spine_rate = sys.argv[1:7]
rows = {}  # (coll, config) -> size -> [busbw]
wrong = 0
for path in sorted(glob.glob(os.path.join(out, "r*.*.*.json"))):
    _, coll, config = os.path.basename(path)[:-5].split(".", 2)
    d = json.load(open(path))
    wrong += d["wrong_total"]
    for r in d["rows"]:
        rows.setdefault((coll, config), {}).setdefault(r["size"], []).append(r["outofplace"]["busbw_gbps"])
choice = {}  # (coll, size as trellis-bench prints it) -> algorithm, from the aware runs' tuner log
for path in glob.glob(os.path.join(out, "r*.*.aware.log")):
    for line in open(path):
        # "allreduce 1048576 B on 8 ranks: hier (model, cached)" (sizes as nccl-tests count them)
        m = re.search(r"(\w+) (\d+) B on \d+ ranks: (\w+)", line)
        if m:
            choice.setdefault((m.group(1), int(m.group(2))), set()).add(m.group(3))

def human(n):
    for unit, f in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= f and n % f == 0:
            return f"{n // f}{unit}"
    return str(n)

nranks = int(nodes) * int(rpn)
reps = max((len(v) for c in rows.values() for v in c.values()), default=0)
print(f"{nodes} nodes x {rails} rails x {rpn} ranks/node ({nranks} ranks), rail links {rail_rate}, "
      f"leaf-spine links {spine_rate}; busbw GB/s, median of {reps} repetitions (out of place); the range "
      f"divides the slowest aware run by the fastest blind one and the fastest by the slowest")
for coll in ("allreduce", "alltoall"):
    configs = [c for (k, c) in rows if k == coll]
    order = ["blind", "blind1", "aware"] + sorted(c for c in configs if c not in ("blind", "blind1", "aware"))
    order = [c for c in order if c in configs]
    if not order:
        continue
    sizes = sorted(rows[(coll, order[0])])
    print()
    print(f"### {coll}")
    print()
    print("| size | " + " | ".join(order) + " | aware choice | aware / best blind (range) |")
    print("|---:|" + "---:|" * len(order) + "---|---:|")
    for size in sizes:
        runs = {c: rows[(coll, c)][size] for c in order if size in rows[(coll, c)]}
        med = {c: statistics.median(v) for c, v in runs.items()}
        ch = "/".join(sorted(choice.get((coll, size), {"?"})))
        blinds = [c for c in ("blind", "blind1") if c in med]
        best = max(blinds, key=lambda c: med[c]) if blinds else None
        ratio = "-"
        if best and med[best] > 0 and "aware" in med:
            lo = min(runs["aware"]) / max(runs[best])
            hi = max(runs["aware"]) / min(runs[best])
            ratio = f"{med['aware'] / med[best]:.2f}x ({lo:.2f}-{hi:.2f}, vs {best})"
        cells = " | ".join(f"{med[c]:.3g}" if c in med else "-" for c in order)
        print(f"| {human(size)} | {cells} | {ch} | {ratio} |")
print()
print("Median time per call in ms (out of place), sizes >= 1 MiB, for comparing with the cost model:")
for coll in ("allreduce", "alltoall"):
    configs = sorted(c for (k, c) in rows if k == coll)
    if not configs:
        continue
    sizes = sorted({s for c in configs for s in rows[(coll, c)] if s >= 1 << 20})
    times = {}
    for path in sorted(glob.glob(os.path.join(out, f"r*.{coll}.*.json"))):
        config = os.path.basename(path)[:-5].split(".", 2)[2]
        for r in json.load(open(path))["rows"]:
            times.setdefault((config, r["size"]), []).append(r["outofplace"]["time_us"] / 1000)
    print()
    print(f"| {coll} | " + " | ".join(human(s) for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for c in configs:
        cells = " | ".join(f"{statistics.median(times[(c, s)]):.1f}" if (c, s) in times else "-" for s in sizes)
        print(f"| {c} | {cells} |")
print()
print(f"wrong values in all rows: {wrong}")
