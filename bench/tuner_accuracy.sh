#!/usr/bin/env bash
# The cost model against measured times on this machine: every algorithm forced with TRELLIS_ALGO,
# at each size, over shared memory and over TCP (TRELLIS_TRANSPORT=tcp), at each rank count; the
# prediction is `trellis-topo tune --algo` for the same one-host shape. Repetitions are interleaved
# (rep 1 of everything, then rep 2, ...) so the machine's drift hits every row alike; a row's
# measured time is the median over repetitions of trellis-bench's out-of-place time (the average
# over ranks of the per-call time). Writes a markdown table with the error of each row.
#
# Usage: bench/tuner_accuracy.sh BUILD OUT.md
#   env: RANKS="2 4" WIRES="shm tcp" SIZES="1M 4M 16M" REPS=5 ITERS=10 WARMUP=5 ALGOS="<coll:algo> ..."
#        CORES=$(nproc)  (what the model is told the ranks share)
#        RAW=dir         keep the raw trellis-bench JSON there (default: a temporary directory)
#        PREDICT_ONLY=1  measure nothing: re-predict and re-tabulate the runs already in RAW
#        TUNE_ARGS="..." extra trellis-topo tune arguments (e.g. --set shm.read_bps=1e10)
#        CALIBRATE=1     predict with this machine's constants: before the runs (and again after them),
#                        a job per wire and rank count with TRELLIS_TUNER_CALIBRATE=1 logs what the
#                        library's calibration probe measures; the median of the two values of each
#                        constant is passed to trellis-topo tune with --set (saved in RAW/calib.*).
#                        CALIBRATE=0: the table's constants (measured on another machine)
#        ITER_TIME=mean  trellis-bench --iter-time: mean (nccl-tests) or min (the fastest iteration)
#        NICE=0          scheduling priority of the measured runs (root may give -20 on a shared machine)
#        MIN_IDLE=80     before each run wait (up to WAIT_S=1800 s) until this percentage of the CPUs was
#                        idle for 3 s: the machine is shared, and a loaded machine measures the load
# The table reports the median 1-minute load average seen at the start of a row's runs.
set -uo pipefail
build=${1:?usage: bench/tuner_accuracy.sh BUILD OUT.md}
out=${2:?usage: bench/tuner_accuracy.sh BUILD OUT.md}
RANKS=${RANKS:-"2 4"}
WIRES=${WIRES:-"shm tcp"}
SIZES=${SIZES:-"1M 4M 16M"}
REPS=${REPS:-5}
ITERS=${ITERS:-10}
WARMUP=${WARMUP:-5}
CORES=${CORES:-$(nproc)}
ALGOS=${ALGOS:-"allreduce:ring allreduce:rd allreduce:rabenseifner allreduce:direct broadcast:binomial
  broadcast:scatter_allgather broadcast:direct reduce:binomial allgather:ring allgather:direct reducescatter:ring
  reducescatter:direct alltoall:pairwise alltoall:direct"}
run="$build/tools/trellis_run/trellis-run"
bench="$build/bench/trellis_bench/trellis-bench"
topo="$build/tools/trellis_topo/trellis-topo"
# A copied build (a frozen set of binaries) still loads its own libtrellis.
export LD_LIBRARY_PATH="$build/src${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for b in "$run" "$bench" "$topo"; do
  [ -x "$b" ] || { echo "tuner_accuracy.sh: $b not built" >&2; exit 1; }
done
if [ -n "${RAW:-}" ]; then
  raw=$RAW
  mkdir -p "$raw"
else
  raw=$(mktemp -d)
  trap 'rm -rf "$raw"' EXIT
fi
[ "${PREDICT_ONLY:-0}" = 1 ] && REPS=0
sizes_csv=$(echo $SIZES | tr ' ' ',')
min=$(echo $SIZES | awk '{print $1}')
start=$(date +%s)
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
# The library's calibration probe, as a job of the measured shape runs it; the report lines look like
# "calibration: shm.read_bps = 1.386e+10 B/s (table ...)".
calibrate() {  # pass
  [ "${CALIBRATE:-1}" = 1 ] || return 0
  for wire in $WIRES; do
    for n in $RANKS; do
      local env=(TRELLIS_TUNER_CALIBRATE=1 TRELLIS_DEBUG=info TRELLIS_DEBUG_SUBSYS=tuner)
      [ "$wire" = tcp ] && env+=(TRELLIS_TRANSPORT=tcp)
      env "${env[@]}" timeout 300 "$run" -n "$n" "$bench" --op-name allreduce -b 8 -e 8 -n 1 -w 0 -c 0 2>&1 |
        sed -n 's/.*\[0\] TRELLIS INFO .*calibration: \([a-z_.]*\) = \([0-9.e+-]*\) .*/\1=\2/p' \
        > "$raw/calib.$wire.$n.$1"
    done
  done
}
[ "${PREDICT_ONLY:-0}" = 1 ] || calibrate 1
for rep in $(seq 1 "$REPS"); do
  for wire in $WIRES; do
    for n in $RANKS; do
      for pair in $ALGOS; do
        coll=${pair%%:*}; algo=${pair##*:}
        [ "$wire" = tcp ] && [ "$algo" = direct ] && continue  # needs shared memory
        env=(TRELLIS_ALGO="$pair" TRELLIS_CHUNK_BYTES=262144)  # a fixed chunk: rows do not depend on the tuner
        [ "$wire" = tcp ] && env+=(TRELLIS_TRANSPORT=tcp)
        f="$raw/$wire.$n.$coll.$algo.r$rep.$(date +%s)"
        echo "tuner_accuracy.sh: rep $rep/$REPS $wire $n ranks $pair ($(( $(date +%s) - start )) s, load $(cut -d' ' -f1 /proc/loadavg))" >&2
        for sz in $SIZES; do  # one size per run: each size gets its own warm-up
          wait_quiet
          cut -d' ' -f1 /proc/loadavg > "$f.$sz.load"
          env "${env[@]}" nice -n "${NICE:-0}" timeout 600 "$run" -n "$n" "$bench" --op-name "$coll" -b "$sz" -e "$sz" \
            -n "$ITERS" -w "$WARMUP" -c 0 --iter-time "${ITER_TIME:-mean}" -J "$f.$sz.json" > /dev/null 2> "$f.$sz.err" &&
            rm -f "$f.$sz.err" ||
            echo "tuner_accuracy.sh: $wire $n $pair $sz failed: $(tail -2 "$f.$sz.err")" >&2
        done
      done
    done
  done
done
[ "${PREDICT_ONLY:-0}" = 1 ] || calibrate 2
# Predictions for the same shapes.
calib_args() {  # wire n: --set NAME=VALUE for the median of the calibration passes' values
  [ "${CALIBRATE:-1}" = 1 ] || return 0
  cat "$raw"/calib."$1"."$2".* 2>/dev/null | python3 -c '
import sys, statistics, collections
v = collections.defaultdict(list)
for line in sys.stdin:
    k, _, x = line.strip().partition("=")
    if k and x:
        v[k].append(float(x))
for k in sorted(v):
    print(f"--set {k}={statistics.median(v[k]):.4g}")'
}
for wire in $WIRES; do
  for n in $RANKS; do
    for pair in $ALGOS; do
      coll=${pair%%:*}; algo=${pair##*:}
      [ "$wire" = tcp ] && [ "$algo" = direct ] && continue
      args=(--kind cpu --nodes 1 --ranks-per-node "$n" --cores "$CORES" --algo "$pair" --coll "$coll" --chunk 256K
            --sizes "$sizes_csv" --json)
      if [ "$wire" = tcp ]; then args+=(--intra tcp); else args+=(--direct); fi
      # shellcheck disable=SC2086,SC2046
      "$topo" tune "${args[@]}" $(calib_args "$wire" "$n") ${TUNE_ARGS:-} > "$raw/pred.$wire.$n.$coll.$algo.json"
    done
  done
done
python3 - "$raw" "$out" <<'PY'
import glob, json, os, statistics, sys
raw, out = sys.argv[1], sys.argv[2]
meas = {}
for f in glob.glob(os.path.join(raw, "*.json")):
    base = os.path.basename(f)
    if base.startswith("pred."):
        continue
    wire, n, coll, algo = base.split(".")[:4]
    try:
        doc = json.load(open(f))
    except Exception:
        continue
    try:
        load = float(open(f[:-len(".json")] + ".load").read())
    except Exception:
        load = float("nan")
    for r in (doc.get("rows", []) if isinstance(doc, dict) else doc):
        t = (r.get("outofplace") or {}).get("time_us")
        if t:
            meas.setdefault((wire, int(n), coll, algo, r["size"]), []).append((t * 1e-6, load))
pred = {}
for f in glob.glob(os.path.join(raw, "pred.*.json")):
    _, wire, n, coll, algo, _ = os.path.basename(f).split(".")
    for r in json.load(open(f))["rows"]:
        pred[(wire, int(n), coll, algo, r["size"])] = r["time_s"]
def fmt(s):
    return f"{s*1e3:.2f} ms" if s >= 1e-3 else f"{s*1e6:.0f} us"
lines = ["| wire | ranks | collective | algorithm | size | measured median (min-max) | load | predicted | error |",
         "|---|---|---|---|---|---|---|---|---|"]
errs, inside = [], 0
for key in sorted(meas, key=lambda k: (k[0], k[1], k[2], k[3], k[4])):
    v = [x[0] for x in meas[key]]
    ld = statistics.median([x[1] for x in meas[key]])
    p = pred.get(key)
    if p is None or p <= 0:
        continue
    m = statistics.median(v)
    e = (p - m) / m
    errs.append(abs(e))
    inside += abs(e) <= 0.25
    wire, n, coll, algo, size = key
    mark = "" if abs(e) <= 0.25 else " **miss**"
    lines.append(f"| {wire} | {n} | {coll} | {algo} | {size >> 20} MiB | {fmt(m)} ({fmt(min(v))}-{fmt(max(v))}, {len(v)} runs) "
                 f"| {ld:.1f} | {fmt(p)} | {e*100:+.0f}%{mark} |")
summary = (f"\n{inside} of {len(errs)} rows within +-25%; median |error| "
           f"{statistics.median(errs)*100:.0f}%, worst {max(errs)*100:.0f}%.\n" if errs else "\nno rows\n")
cal = []
for f in sorted(glob.glob(os.path.join(raw, "calib.*"))):
    _, wire, n, npass = os.path.basename(f).split(".")
    vals = ", ".join(l.strip() for l in open(f) if l.strip())
    cal.append(f"- {wire}, {n} ranks, pass {npass}: {vals or '(nothing measured)'}")
if cal:
    summary += ("\nConstants measured by the calibration probe (the predictions use the median of the passes):\n"
                + "\n".join(cal) + "\n")
open(out, "w").write("\n".join(lines) + "\n" + summary)
print(summary.strip())
PY
