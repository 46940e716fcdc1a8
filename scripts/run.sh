#!/usr/bin/env bash
# `make run`: a local multi-rank benchmark of every collective with correctness checks, then a
# one-screen summary of this machine's topology. Fails (exit 1) if any check found a wrong value or
# a run failed. Usage: scripts/run.sh BUILD RANKS
set -uo pipefail
build=${1:-build}
ranks=${2:-4}
run="$build/tools/trellis_run/trellis-run"
bench="$build/bench/trellis_bench/trellis-bench"
for b in "$run" "$bench"; do
  [ -x "$b" ] || { echo "run.sh: $b not built (cmake --build $build)" >&2; exit 1; }
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0

echo "== trellis-bench: $ranks ranks, every collective, float32 sum, 8 B .. 64 MiB (x4), checked"
"$run" -n "$ranks" --timeout 600 --no-tag "$bench" --op-name all -b 8 -e 64M -f 4 -c 1 -n 10 -w 2 \
  | tee -a "$log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || { echo "FAIL: the sweep exited with status $rc"; failed=1; }
echo
echo "== correctness: every datatype x op x collective, 7 B .. 64 KiB (odd counts), in and out of place"
"$run" -n "$ranks" --timeout 600 --no-tag "$bench" --op-name all -d all -o all \
  -b 7 -e 64K -f 31 -c 1 -n 1 -w 0 > "$log.all" 2>&1
rc=$?
cat "$log.all" >> "$log"
rows=$(grep -cE '^ +[0-9]+ ' "$log.all" || true)
echo "$rows rows checked; $(grep -E '^# (Out of bounds|skipped)' "$log.all" | sort | uniq -c | tr -s ' ')"
[ "$rc" -eq 0 ] || { tail -20 "$log.all"; echo "FAIL: the correctness pass exited with status $rc"; failed=1; }
rm -f "$log.all"
# Column 9 and 13 are #wrong of the out-of-place and in-place groups.
bad=$(awk '/^ +[0-9]+ / && (($9 != "0" && $9 != "N/A") || ($13 != "0" && $13 != "N/A"))' "$log")
if [ -n "$bad" ] || grep -q 'Out of bounds values : [1-9]' "$log"; then
  echo "FAIL: wrong results:"
  echo "$bad" | head -20
  failed=1
fi
[ "$failed" -eq 0 ] && echo "all checks passed (#wrong 0 everywhere)"
echo
echo "== topology of this machine"
topo="$build/tools/trellis_topo/trellis-topo"
if [ -x "$topo" ]; then
  "$topo" show || failed=1
else
  echo "host        $(hostname)"
  echo "cpu         $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1) x $(nproc)"
  echo "numa nodes  $(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)"
  echo "memory      $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "network:"
  ip -br link 2>/dev/null | sed 's/^/  /'
fi
exit "$failed"
