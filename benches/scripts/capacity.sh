#!/usr/bin/env bash
# Capacity benchmark (issue 6, benchmark 2): zero-loss concurrent calls and
# CPU per packet of mediafork (socket backend), rtpengine (pcap recording)
# and a recvmmsg floor, ramping up, over loopback. See benches/CAPACITY.md.
#
#   sudo bash benches/scripts/capacity.sh                 # 60 s steps, full ramp
#   sudo bash benches/scripts/capacity.sh --step-secs 20  # shorter steps
#
# Extra arguments go to the bench (`--help` lists them). Needs root only for
# apt-get; the run itself does not. Results: stdout (markdown tables) and
# capacity-<date>.json in the current directory.
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

cargo build --release -p mediafork-control --bin mediafork
json="capacity-$(date +%Y%m%d-%H%M%S).json"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "uptime before: $(uptime)"
cargo bench -p mediafork-benches --bench capacity -- --json "$json" "$@"
echo "uptime after: $(uptime)"
echo "per-step JSON: $json"
