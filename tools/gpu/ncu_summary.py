#!/usr/bin/env python3
"""Summarizes an `ncu --csv --metrics gpu__time_duration.sum` log: kernels grouped by name, then the first
launches in order (one layer's sequence). Usage: ncu_summary.py FILE.csv [first-N]"""
import csv
import re
import statistics
import sys
from collections import OrderedDict


def short(name):
    name = re.sub(r"\(.*$", "", name)            # drop the parameter list
    name = re.sub(r"<.*>", "<..>", name)          # and template arguments
    return name[:70]


def main():
    path = sys.argv[1]
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]
    rows = list(csv.DictReader(lines))
    launches = []
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        v = float(r["Metric Value"].replace(",", ""))
        unit = r.get("Metric Unit", "nsecond")
        us = v / 1e3 if unit.startswith("n") else v if unit.startswith("u") else v * 1e3
        launches.append((short(r["Kernel Name"]), us, r.get("Grid Size", ""), r.get("Block Size", "")))
    if not launches:
        print("no kernels in", path)
        return
    total = sum(u for _, u, _, _ in launches)
    groups = OrderedDict()
    for name, us, grid, block in launches:
        groups.setdefault(name, []).append(us)
    print(f"{len(launches)} kernels, {total / 1e3:.3f} ms of kernel time (sum of durations)")
    print(f"{'kernel':70s} {'count':>6s} {'total us':>10s} {'median':>8s} {'share':>6s}")
    for name, us in sorted(groups.items(), key=lambda e: -sum(e[1]))[:30]:
        print(f"{name:70s} {len(us):6d} {sum(us):10.1f} {statistics.median(us):8.2f} {100 * sum(us) / total:5.1f}%")
    print(f"first {first} launches in order:")
    for name, us, grid, block in launches[:first]:
        print(f"  {us:9.2f} us  {name}  grid {grid} block {block}")


if __name__ == "__main__":
    main()
