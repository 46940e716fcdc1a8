#!/usr/bin/env bash
# Trellis over its different transports in one invocation: trellis-bench under trellis-run with
# each VARIANT's environment, interleaved (variant 1, 2, ..., 1, 2, ...) for REPS repetitions so
# that the machine's drift hits every variant alike. Writes a markdown table of medians with their
# spread (min-max) per collective to OUT.md; the ratio columns are each variant's median time over
# the first variant's (>1: the first is faster).
#
# Usage: bench/transports.sh BUILD OUT.md
#   env: RANKS=2 COLLS="allreduce alltoall" REPS=3 MAXB=32M ITERS=10 WARMUP=3
#        VARIANTS="tcp:TRELLIS_TRANSPORT=tcp ucx-tcp:TRELLIS_TRANSPORT=ucx,TRELLIS_UCX_TLS=tcp ..."
#        (name:VAR=value,VAR=value; the default compares Trellis' TCP, UCX over tcp, UCX over
#        shared memory, and Trellis' own shared memory)
set -uo pipefail
build=${1:?usage: bench/transports.sh BUILD OUT.md}
out=${2:?usage: bench/transports.sh BUILD OUT.md}
RANKS=${RANKS:-2}
COLLS=${COLLS:-"allreduce alltoall"}
REPS=${REPS:-3}
MAXB=${MAXB:-32M}
ITERS=${ITERS:-10}
WARMUP=${WARMUP:-3}
VARIANTS=${VARIANTS:-"tcp:TRELLIS_TRANSPORT=tcp ucx-tcp:TRELLIS_TRANSPORT=ucx,TRELLIS_UCX_TLS=tcp ucx-sm:TRELLIS_TRANSPORT=ucx,TRELLIS_UCX_TLS=sm shm:TRELLIS_TRANSPORT=auto"}
run="$build/tools/trellis_run/trellis-run"
bench="$build/bench/trellis_bench/trellis-bench"
for b in "$run" "$bench"; do
  [ -x "$b" ] || { echo "transports.sh: $b not built" >&2; exit 1; }
done
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
names=()
start=$(date +%s)
for rep in $(seq 1 "$REPS"); do
  for n in $RANKS; do
    for coll in $COLLS; do
      for v in $VARIANTS; do
        name=${v%%:*}
        [ "$rep" -gt 1 ] || [ "$n" != "${RANKS%% *}" ] || [ "$coll" != "${COLLS%% *}" ] || names+=("$name")
        IFS=, read -r -a envs <<< "${v#*:}"
        f="$raw/$n.$name.$coll.$rep"
        echo "transports.sh: rep $rep/$REPS, $n ranks, $coll, $name ($(( $(date +%s) - start )) s)" >&2
        env "${envs[@]}" "$run" -n "$n" --timeout 1800 --no-tag "$bench" --op-name "$coll" -c 1 \
          -n "$ITERS" -w "$WARMUP" -b 8 -e "$MAXB" -f 4 > "$f" 2>&1
        rc=$?
        [ "$rc" -eq 0 ] || { echo "transports.sh: $name $coll n=$n rep $rep exited $rc" >&2; echo "EXIT $rc" >> "$f"; }
      done
    done
  done
done

{
  echo "Measured by \`bench/transports.sh\` on $(date -u +%Y-%m-%d): $(nproc) CPUs" \
       "($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), $REPS repetitions interleaved," \
       "float32 sum, -n $ITERS -w $WARMUP -c 1, $(( $(date +%s) - start )) s in all. UCX" \
       "$(dpkg-query -W -f='${Version}' libucx0 2>/dev/null || echo '?'). Variants: $VARIANTS."
  echo
} > "$out"
python3 - "$raw" "$RANKS" "$COLLS" "${names[*]}" >> "$out" <<'PY'
import collections, os, statistics, sys
raw, ranks, colls, names = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
data = collections.defaultdict(list)  # (n, coll, variant, size) -> [(time_us, busbw)]
bad = collections.defaultdict(set)
for f in sorted(os.listdir(raw)):
    n, name, coll, rep = f.split(".")
    for line in open(os.path.join(raw, f), errors="replace"):
        p = line.split()
        if line.startswith("EXIT"):
            bad[(n, coll, name)].add("run failed (" + line.strip() + ")")
        elif len(p) >= 13 and p[0].isdigit():
            if p[8] not in ("0", "N/A"):
                bad[(n, coll, name)].add(f"#wrong {p[8]} at {p[0]} B")
                continue
            data[(n, coll, name, int(p[0]))].append((float(p[5]), float(p[7])))
def spread(v, fmt):
    return f"{fmt(statistics.median(v))} ({fmt(min(v))}–{fmt(max(v))})"
g = lambda x: f"{x:.0f}" if x >= 100 else f"{x:.3g}"
print("Cells: median (min–max) over the repetitions, out-of-place; busbw in GB/s (nccl-tests"
      f" definitions) from 256 KiB up, time in µs below. Ratios: a variant's median time over {names[0]}'s.\n")
for n in ranks:
    for coll in colls:
        sizes = sorted({k[3] for k in data if k[0] == n and k[1] == coll})
        if not sizes:
            continue
        print(f"#### {coll}, {n} ranks\n")
        others = names[1:]
        print("| size (B) | " + " | ".join(names) + "".join(f" | {o}/{names[0]}" for o in others) + " |")
        print("|---:" * (1 + len(names) + len(others)) + "|")
        for s in sizes:
            cells, med = [], {}
            for name in names:
                v = data.get((n, coll, name, s), [])
                if not v:
                    cells.append("–")
                    continue
                med[name] = statistics.median(x[0] for x in v)
                small = s < 256 * 1024
                cells.append(spread([x[0] if small else x[1] for x in v], g) + (" µs" if small else ""))
            ratios = [f"{med[o] / med[names[0]]:.2f}" if o in med and med.get(names[0]) else "–" for o in others]
            print(f"| {s} | " + " | ".join(cells) + "".join(f" | {r}" for r in ratios) + " |")
        notes = [f"{name}: {'; '.join(sorted(bad[(n, coll, name)]))}" for name in names if bad.get((n, coll, name))]
        if notes:
            print("\n" + "\n".join(f"- {x}" for x in notes))
        print()
PY
echo "transports.sh: wrote $out" >&2
