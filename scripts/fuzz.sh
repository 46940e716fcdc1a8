#!/usr/bin/env bash
# Long fuzzing run: every libFuzzer target for SECONDS each (default 600), PARALLEL at a time
# (default 1), on the seeds and corpora of the test suite's fuzz tests, so the corpora grow from
# run to run. Needs a build configured with TRELLIS_FUZZ=ON (the default) and a working clang.
# Crashes are written to BUILD/fuzz-artifacts/; a summary line per fuzzer (runs, coverage, time)
# goes to BUILD/fuzz-long.txt. Exit status 1 when any fuzzer found a crash.
#   scripts/fuzz.sh [BUILD] [SECONDS] [PARALLEL]      env ONLY=REGEX: only the fuzz tests whose name matches
set -uo pipefail
build=${1:-build}
secs=${2:-600}
par=${3:-1}
cmake --build "$build" --target trellis_fuzzers >/dev/null || { echo "fuzz.sh: building the fuzzers failed"; exit 1; }
# The commands ctest would run, with the time limit replaced.
mapfile -t cmds < <(ctest --test-dir "$build" -R '^fuzz\.' --show-only=json-v1 | python3 -c '
import json, re, shlex, sys
secs, only = sys.argv[1], sys.argv[2]
for t in json.load(sys.stdin)["tests"]:
    cmd = t.get("command")
    if not cmd or "fuzz.unavailable" == t["name"] or not re.search(only, t["name"]):
        continue
    cmd = ["-max_total_time=" + secs if a.startswith("-max_total_time=") else a for a in cmd]
    # The long runs grow fuzz-corpus; the test suite keeps its own, small one.
    cmd = [a.replace("/fuzz-corpus-test/", "/fuzz-corpus/") for a in cmd]
    print(t["name"] + "\t" + " ".join(shlex.quote(a) for a in cmd))
' "$secs" "${ONLY:-.}")
[ ${#cmds[@]} -gt 0 ] || { echo "fuzz.sh: no fuzz tests registered in $build (clang/libFuzzer missing?)"; exit 1; }
summary="$build/fuzz-long.txt"
: > "$summary"
logs="$build/fuzz-logs"
mkdir -p "$logs"
run_one() {
  local name=$1 cmd=$2 start end rc
  start=$(date +%s)
  eval "nice $cmd" > "$logs/$name.log" 2>&1
  rc=$?
  end=$(date +%s)
  local runs cov
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$logs/$name.log" | awk '{print $2}')
  cov=$(grep -oE '(cov|ft): [0-9]+' "$logs/$name.log" | tail -2 | tr '\n' ' ')
  printf '%-28s rc=%d %5ds  runs=%s  %s\n' "$name" "$rc" $((end - start)) "${runs:-?}" "$cov" >> "$summary"
  return $rc
}
failed=0
active=0
for line in "${cmds[@]}"; do
  name=${line%%$'\t'*}
  cmd=${line#*$'\t'}
  echo "fuzz.sh: $name for ${secs}s"
  run_one "$name" "$cmd" &
  active=$((active + 1))
  if [ "$active" -ge "$par" ]; then
    wait -n || failed=1
    active=$((active - 1))
  fi
done
while [ "$active" -gt 0 ]; do
  wait -n || failed=1
  active=$((active - 1))
done
cat "$summary"
ls "$build"/fuzz-artifacts/ 2>/dev/null | grep -q . && { echo "crash inputs:"; ls -la "$build"/fuzz-artifacts/; }
exit $failed
