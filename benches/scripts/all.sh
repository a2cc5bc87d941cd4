#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md, in its section order, into one folder:
#
#   sudo bash benches/scripts/all.sh [OUT_DIR]      (default: bench-<date>/)
#
# 1. per_packet (ns/packet at 1k..200k tracks)        -> per_packet.md
# 2. dpdk_vs_socket (pps per worker core, ratio)      -> dpdk_vs_socket.txt
# 3. capacity (mediafork socket and DPDK, rtpengine,  -> capacity.txt, capacity.json
#    recvmmsg floor; benches/scripts/capacity.sh)
# 4. latency (arrival to writer buffer, p50..p999)    -> latency.txt, latency.json
# 5. memory_per_call                                  -> memory.txt, memory.json
# 6. loadgen_pacing (socket vs DPDK transmit)         -> pacing.txt, pacing.json
#
# Root is needed for DPDK, network namespaces and installing rtpengine; with
# libdpdk-dev missing, the DPDK parts are left out and say so. The full run
# takes about 2 hours on a 2-core machine (the capacity ramp is most of it);
# MF_BENCH_ONLY="1 4" runs only the listed sections. Each section's own
# options are in its `--help` and in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

out="${1:-bench-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
only="${MF_BENCH_ONLY:-1 2 3 4 5 6}"
want() { [[ " $only " == *" $1 "* ]]; }

dpdk=()
if pkg-config --exists libdpdk 2>/dev/null && [ "$(id -u)" = 0 ]; then
    dpdk=(--features dpdk)
else
    echo "note: no libdpdk-dev or not root: sections 2 and 6 (dpdk-null) are skipped" >&2
fi
bench() { cargo bench --locked -p mediafork-benches "${dpdk[@]}" --bench "$@"; }

{
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "start: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt"

if want 1; then
    echo "== 1. per-packet cost"
    bench per_packet 2>&1 | python3 benches/scripts/per_packet_table.py | tee "$out/per_packet.md"
fi
if want 2 && [ ${#dpdk[@]} -gt 0 ]; then
    echo "== 2. DPDK vs kernel sockets"
    bench dpdk_vs_socket 2>&1 | tee "$out/dpdk_vs_socket.txt"
fi
if want 3; then
    echo "== 3. capacity"
    touch "$out/.capacity-start"
    bash benches/scripts/capacity.sh 2>&1 | tee "$out/capacity.txt"
    # capacity.sh writes its JSON in the repository root.
    find . -maxdepth 1 -name 'capacity-*.json' -newer "$out/.capacity-start" -exec mv {} "$out/" \;
    rm -f "$out/.capacity-start"
fi
if want 4; then
    echo "== 4. latency"
    bench latency -- --json "$out/latency.json" 2>&1 | tee "$out/latency.txt"
fi
if want 5; then
    echo "== 5. memory per call"
    TMPDIR=/dev/shm bench memory_per_call -- --json "$out/memory.json" 2>&1 | tee "$out/memory.txt"
fi
if want 6; then
    echo "== 6. loadgen pacing"
    sinks=discard,loopback
    if [ ${#dpdk[@]} -gt 0 ]; then sinks=discard,dpdk-null,loopback; fi
    bench loadgen_pacing -- --sinks "$sinks" --json "$out/pacing.json" 2>&1 | tee "$out/pacing.txt"
fi
echo "end: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
echo "results in $out/"
