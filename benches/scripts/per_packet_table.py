#!/usr/bin/env python3
"""Turn `cargo bench --bench per_packet` output into the BENCHMARKS.md table.

Each criterion iteration handles 1024 packets, so ns/packet = time / 1024.
Usage: cargo bench -p mediafork-benches --bench per_packet 2>&1 | python3 benches/scripts/per_packet_table.py
"""
import re
import sys

rows = {}
for line in sys.stdin:
    m = re.match(r"^per_packet/(\d+)\s+time:\s+\[([\d.]+) (\w+) ([\d.]+) (\w+) ([\d.]+) (\w+)\]", line)
    if m:
        lo, mid, hi = (float(m.group(i)) * {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3}[m.group(i + 1)] for i in (2, 4, 6))
        rows[int(m.group(1))] = (lo * 1000 / 1024, mid * 1000 / 1024, hi * 1000 / 1024)
if not rows:
    sys.exit("no per_packet results in the input")
base = rows[min(rows)][1]
print("| active tracks | ns/packet (median) | 95% interval | vs 1k tracks |")
print("|---:|---:|---:|---:|")
for k in sorted(rows):
    lo, mid, hi = rows[k]
    print(f"| {k:,} | {mid:.1f} | {lo:.1f}–{hi:.1f} | {mid / base:.2f}× |")
