#!/usr/bin/env bash
# Capacity benchmark (issue 6, benchmark 2): zero-loss concurrent calls and
# CPU per packet of mediafork (socket backend), rtpengine (pcap recording),
# a recvmmsg floor over loopback, and mediafork's DPDK backend (net_af_packet
# on a veth pair), ramping up. See benches/CAPACITY.md.
#
#   sudo bash benches/scripts/capacity.sh                 # 60 s steps, full ramp
#   sudo bash benches/scripts/capacity.sh --step-secs 20  # shorter steps
#   sudo bash benches/scripts/capacity.sh --start 500 --factor 1.5 --max 2600 \
#       --ports 2000-15999                                # the run in CAPACITY.md
#
# Extra arguments go to the bench (`--help` lists them). With libdpdk-dev
# installed and root, the binary is built with `--features dpdk` and the
# `dpdk` configuration is added (it needs root: network namespaces and an
# AF_PACKET socket); MF_CAPACITY_CONFIGS overrides the list. Results: stdout
# (markdown tables) and capacity-<date>.json in the current directory.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v rtpengine >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y --no-install-recommends rtpengine-daemon
    else
        echo "rtpengine not found: sudo apt-get install -y --no-install-recommends rtpengine-daemon" >&2
        exit 1
    fi
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "warning: fewer than 2 CPUs; recorder and load generator will share a core" >&2
fi

configs="${MF_CAPACITY_CONFIGS:-socket,rtpengine,floor}"
if [ -z "${MF_CAPACITY_CONFIGS:-}" ] && [ "$(id -u)" = 0 ] && pkg-config --exists libdpdk 2>/dev/null; then
    configs="socket,rtpengine,floor,dpdk"
fi
if [[ "$configs" == *dpdk* ]]; then
    cargo build --release -p mediafork-control --bin mediafork --features dpdk
else
    cargo build --release -p mediafork-control --bin mediafork
fi
json="capacity-$(date +%Y%m%d-%H%M%S).json"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "uptime before: $(uptime)"
cargo bench -p mediafork-benches --bench capacity -- --configs "$configs" --json "$json" "$@"
echo "uptime after: $(uptime)"
echo "per-step JSON: $json"
