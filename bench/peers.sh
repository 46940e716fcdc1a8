#!/usr/bin/env bash
# Runs trellis-bench through Trellis, OpenMPI and Gloo, interleaved (trellis, mpi, gloo, trellis, ...)
# for REPS repetitions, and writes a markdown table of medians (min-max) of busbw and of time for
# small sizes. Usage: bench/peers.sh BUILD OUT.md [RANKS="2 4"] [COLLS=...] [REPS=3] [MAXB=256M]
set -euo pipefail
build=${1:-build}
out=${2:-/dev/stdout}
RANKS=${RANKS:-"2 4"}
COLLS=${COLLS:-"allreduce alltoall broadcast allgather reducescatter"}
REPS=${REPS:-3}
MAXB=${MAXB:-256M}
IMPLS=${IMPLS:-"trellis mpi gloo"}
run="$build/tools/trellis_run/trellis-run"
bench="$build/bench/trellis_bench/trellis-bench"
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for n in $RANKS; do
  over=""
  bind="--bind-to core"
  [ "$n" -gt "$(nproc)" ] && over="--oversubscribe" && bind="--bind-to none"
  for rep in $(seq 1 "$REPS"); do
    for impl in $IMPLS; do
      for coll in $COLLS; do
        args=(-C "$coll" -b 8 -e "$MAXB" -f 4 -c 1 -n 10 -w 3)
        f="$raw/$n.$impl.$coll.$rep"
        case $impl in
          mpi) timeout 900 mpirun -np "$n" $over $bind --mca pml ob1 --mca btl self,vader \
                 --mca btl_vader_single_copy_mechanism cma -x GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
                 "$bench" --impl mpi "${args[@]}" > "$f" 2>&1 || echo "mpi $coll n=$n failed" >&2 ;;
          *) timeout 900 "$run" -n "$n" --no-tag "$bench" --impl "$impl" "${args[@]}" > "$f" 2>&1 || echo "$impl $coll n=$n failed" >&2 ;;
        esac
      done
    done
  done
done
# memcpy ceiling in the same run (one thread, 64 MiB, best of 9)
memcpy_gbs=$(python3 - <<'PY'
import ctypes, time
n = 64 << 20
a = ctypes.create_string_buffer(n); b = ctypes.create_string_buffer(n)
ctypes.memmove(b, a, n)
best = 0
for _ in range(9):
    t = time.perf_counter(); ctypes.memmove(b, a, n); dt = time.perf_counter() - t
    best = max(best, n / dt / 1e9)
print(f"{best:.1f}")
PY
)
python3 - "$raw" "$memcpy_gbs" "$RANKS" "$COLLS" "$IMPLS" > "$out" <<'PY'
import sys, os, statistics, collections
raw, memcpy, ranks, colls, impls = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), sys.argv[5].split()
data = collections.defaultdict(list)  # (n, coll, impl, size) -> [(time, busbw)]
for f in os.listdir(raw):
    n, impl, coll, rep = f.split('.')
    for line in open(os.path.join(raw, f)):
        p = line.split()
        if len(p) >= 9 and p[0].isdigit():
            try: data[(n, coll, impl, int(p[0]))].append((float(p[5]), float(p[7])))
            except ValueError: pass
def fmt(vals, i):
    if not vals: return "-"
    v = [x[i] for x in vals]
    return f"{statistics.median(v):.3g} ({min(v):.3g}-{max(v):.3g})"
print(f"One-thread memcpy ceiling measured in the same run (64 MiB, best of 9, python ctypes.memmove): {memcpy} GB/s\n")
for n in ranks:
    for coll in colls:
        sizes = sorted({k[3] for k in data if k[0] == n and k[1] == coll})
        if not sizes: continue
        print(f"### {coll}, {n} ranks: busbw GB/s, median (min-max) of out-of-place runs; time in µs for <= 64 KiB\n")
        print("| size | " + " | ".join(impls) + " | time of " + " / ".join(impls[1:]) + " over Trellis time (>1: Trellis faster) |")
        print("|---" * (len(impls) + 2) + "|")
        for s in sizes:
            cells, med = [], {}
            for impl in impls:
                vals = data.get((n, coll, impl, s), [])
                small = s <= 65536
                cells.append((fmt(vals, 0) + " µs") if small and vals else fmt(vals, 1))
                if vals: med[impl] = statistics.median([x[0] for x in vals])
            ratios = []
            for impl in impls[1:]:
                ratios.append(f"{med[impl] / med['trellis']:.2f}x" if 'trellis' in med and impl in med and med['trellis'] > 0 else "-")
            print(f"| {s} | " + " | ".join(cells) + " | " + " / ".join(ratios) + " |")
        print()
PY
