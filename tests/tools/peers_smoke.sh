#!/usr/bin/env bash
# Smoke test of bench/peers.sh: a tiny interleaved run (2 ranks, allreduce, 8..32 B plus the 64 B
# end point as its own run, 2 repetitions) must produce a table with a median for every
# implementation at every size and no failed, wrong or skipped run.
set -euo pipefail
src=$1 build=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
RANKS=2 COLLS=allreduce REPS=2 MAXB=64 ITERS=1 WARMUP=0 bash "$src/bench/peers.sh" "$build" "$out"
cat "$out"
grep -q '^#### allreduce, 2 ranks' "$out"
grep -q '^One-thread memcpy ceiling' "$out"
rows=$(grep -cE '^\| (8|32|64) \| [0-9.]+ \([0-9.]+–[0-9.]+\) µs \| [0-9.]+ .* \| [0-9.]+ .* \| [0-9.]+ \| [0-9.]+ \|$' "$out")
[ "$rows" -eq 3 ] || { echo "expected 3 complete rows (8, 32, 64 B), got $rows"; exit 1; }
if grep -q '^- ' "$out"; then echo "failures or skips listed"; exit 1; fi
echo OK
