#!/usr/bin/env bash
# `make run`: a local multi-rank benchmark of every collective with correctness checks, then a
# one-screen summary of this machine's topology. Usage: scripts/run.sh BUILD RANKS
set -euo pipefail
build=${1:-build}
ranks=${2:-4}
run="$build/tools/trellis_run/trellis-run"
bench="$build/bench/trellis_bench/trellis-bench"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== trellis-bench: $ranks ranks, every collective, float32 sum, 8 B .. 64 MiB (x4), checked"
"$run" -n "$ranks" --timeout 900 --no-tag "$bench" -C all -b 8 -e 64M -f 4 -c 1 -n 10 -w 2 | tee "$log"
echo
echo "== correctness pass: every datatype x op, 8 B .. 64 KiB"
"$run" -n "$ranks" --timeout 900 --no-tag "$bench" -C all -d all -o all -b 8 -e 64K -f 32 -c 1 -n 1 -w 0 >> "$log"
grep -E '^# (Out of bounds|skipped)' "$log" | sort | uniq -c
if grep -q 'Out of bounds values : [1-9]' "$log"; then
  echo "FAIL: wrong results (see #wrong above)"
  exit 1
fi
echo
echo "== topology of this machine"
topo="$build/tools/trellis_topo/trellis-topo"
if [ -x "$topo" ]; then
  "$topo" show
else
  echo "host        $(hostname)"
  echo "cpu         $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
  echo "numa nodes  $(ls -d /sys/devices/system/node/node* 2>/dev/null | wc -l)"
  echo "memory      $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "gpus        $(ls /proc/driver/nvidia/gpus 2>/dev/null | wc -l)"
  echo "rdma        $(ls /sys/class/infiniband 2>/dev/null | tr '\n' ' ' || true)"
  echo "network:"
  ip -br addr 2>/dev/null | sed 's/^/  /'
fi
