#!/usr/bin/env bash
# Before/after check of the tuner's choices: trellis-bench with automatic algorithm selection from
# two builds (BASE: before the change, NEW: after), interleaved (base, new, base, new, ...) REPS
# times, every collective at each rank count, 8 B .. MAXB x4. Writes a markdown table of the median
# out-of-place and in-place times per size and the ratio new/base, flagging sizes more than 5%
# slower (a ratio > 1.05).
#
# Usage: bench/tuner_regress.sh BASE NEW OUT.md
#   BASE, NEW: a build directory, or a directory holding trellis-run, trellis-bench and libtrellis.so*.
#   NEW's trellis-run and trellis-bench run both sides, each against its own libtrellis.so (only the
#   library differs; the C API is the same), so BASE may be an older build whose bench lacks options.
#   env: RANKS="2 4" COLLS="allreduce broadcast reduce allgather reducescatter alltoall" REPS=5
#        MAXB=64M ITERS=20 WARMUP=5 MIN_IDLE (wait until this percentage of the CPUs was idle
#        for 3 s, up to WAIT_S=1800 s per run) EXTRA_ENV="TRELLIS_TRANSPORT=tcp" (applied to both)
set -uo pipefail
base=${1:?usage: bench/tuner_regress.sh BASE NEW OUT.md}
new=${2:?usage: bench/tuner_regress.sh BASE NEW OUT.md}
out=${3:?usage: bench/tuner_regress.sh BASE NEW OUT.md}
RANKS=${RANKS:-"2 4"}
COLLS=${COLLS:-"allreduce broadcast reduce allgather reducescatter alltoall"}
REPS=${REPS:-5}
MAXB=${MAXB:-64M}
ITERS=${ITERS:-20}
WARMUP=${WARMUP:-5}
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT

tools() {  # dir -> "run bench libdir"
  if [ -x "$1/bench/trellis_bench/trellis-bench" ]; then
    echo "$1/tools/trellis_run/trellis-run $1/bench/trellis_bench/trellis-bench $1/src"
  else
    echo "$1/trellis-run $1/trellis-bench $1"
  fi
}
cpu_idle() {  # percent of CPU time idle over the next 3 seconds (all CPUs)
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat)
  sleep 3
  b=$(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," "); t=y[1]-x[1]; print (t>0 ? int(100*(y[2]-x[2])/t) : 0)}'
}
wait_quiet() {  # until MIN_IDLE percent of the CPUs were idle for 3 s, at most WAIT_S seconds
  [ -n "${MIN_IDLE:-}" ] || return 0
  local t0
  t0=$(date +%s)
  while [ "$(cpu_idle)" -lt "$MIN_IDLE" ]; do
    [ $(( $(date +%s) - t0 )) -ge "${WAIT_S:-1800}" ] && return 0
  done
}
start=$(date +%s)
for rep in $(seq 1 "$REPS"); do
  for n in $RANKS; do
    for coll in $COLLS; do
      for which in base new; do
        dir=$base
        [ "$which" = new ] && dir=$new
        read -r _ _ lib <<< "$(tools "$dir")"
        read -r run bench _ <<< "$(tools "$new")"
        wait_quiet
        echo "tuner_regress.sh: rep $rep/$REPS $n ranks $coll $which ($(( $(date +%s) - start )) s, load $(cut -d' ' -f1 /proc/loadavg))" >&2
        # shellcheck disable=SC2086
        env LD_LIBRARY_PATH="$lib" ${EXTRA_ENV:-} nice -n "${NICE:-0}" timeout 900 "$run" -n "$n" "$bench" --op-name "$coll" -b 8 \
          -e "$MAXB" -f 4 -n "$ITERS" -w "$WARMUP" -c 0 --iter-time "${ITER_TIME:-mean}" -J "$raw/$which.$n.$coll.$rep.json" > /dev/null \
          2> "$raw/$which.$n.$coll.$rep.err" || echo "tuner_regress.sh: $which $n $coll failed" >&2
      done
    done
  done
done
python3 - "$raw" "$out" <<'PY'
import glob, json, os, statistics, sys
raw, out = sys.argv[1], sys.argv[2]
t = {}
for f in glob.glob(os.path.join(raw, "*.json")):
    which, n, coll, _, _ = os.path.basename(f).split(".")
    try:
        doc = json.load(open(f))
    except Exception:
        continue
    for r in doc.get("rows", []):
        for ip in ("outofplace", "inplace"):
            x = r.get(ip)
            if x and x.get("time_us"):
                t.setdefault((int(n), coll, r["size"], ip, which), []).append(x["time_us"])
def fmt(us):
    return f"{us/1e3:.2f} ms" if us >= 1e3 else f"{us:.1f} us"
lines = ["| ranks | collective | size | base out-of-place | new | new/base | base in-place | new | new/base |",
         "|---|---|---|---|---|---|---|---|---|"]
slower = []
keys = sorted({(k[0], k[1], k[2]) for k in t})
for n, coll, size in keys:
    cells = []
    for ip in ("outofplace", "inplace"):
        b, w = t.get((n, coll, size, ip, "base")), t.get((n, coll, size, ip, "new"))
        if not b or not w:
            cells += ["-", "-", "-"]
            continue
        mb, mw = statistics.median(b), statistics.median(w)
        ratio = mw / mb
        flag = " **slower**" if ratio > 1.05 else ""
        if ratio > 1.05:
            slower.append(f"{n} ranks {coll} {size} B {ip}: {ratio:.2f}x")
        cells += [fmt(mb), fmt(mw), f"{ratio:.2f}x{flag}"]
    lines.append(f"| {n} | {coll} | {size} | " + " | ".join(cells) + " |")
summary = f"\n{len(slower)} of {2*len(keys)} (size, in/out-of-place) cells more than 5% slower (median of runs)"
summary += (":\n" + "\n".join("- " + s for s in slower) + "\n") if slower else ".\n"
open(out, "w").write("\n".join(lines) + "\n" + summary)
print(summary.strip())
PY
