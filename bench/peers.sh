#!/usr/bin/env bash
# Trellis against OpenMPI and Gloo in one invocation: trellis-bench through each implementation,
# interleaved (trellis, mpi, gloo, trellis, mpi, gloo, ...) for REPS repetitions so that the
# machine's drift hits every peer alike, for allreduce, alltoall, broadcast, allgather and
# reducescatter at 2 and 4 ranks, 8 B .. 256 MiB (x4), with a one-thread memcpy ceiling measured
# in every repetition. Writes a markdown table of medians with their spread (min-max) to OUT.md.
#
# Usage: bench/peers.sh BUILD OUT.md
#   env: RANKS="2 4" COLLS="allreduce alltoall broadcast allgather reducescatter" REPS=3
#        MAXB=256M IMPLS="trellis mpi gloo" ITERS=10 WARMUP=3
#        SMALL_ITERS=100 SMALL_WARMUP=10  (sizes up to 128 KiB, a run of their own: with 10 calls a
#        4-rank oversubscribed small-message row measured scheduling luck more than the libraries)
#
# Each peer gets its best configuration on this machine (notes/peer-baselines.md): OpenMPI with
# ob1 + vader + CMA single copy, bound to cores, malloc on huge pages; with more ranks than cores
# it is overloaded onto the cores and yields when idle (without mpi_yield_when_idle an
# oversubscribed OpenMPI busy-polls: 8 B allreduce at 4 ranks on 2 cores takes ~33 ms instead of
# tens of µs). Gloo: TCP on 127.0.0.1, FileStore rendezvous in a fresh directory per run.
set -uo pipefail
build=${1:?usage: bench/peers.sh BUILD OUT.md}
out=${2:?usage: bench/peers.sh BUILD OUT.md}
RANKS=${RANKS:-"2 4"}
COLLS=${COLLS:-"allreduce alltoall broadcast allgather reducescatter"}
REPS=${REPS:-3}
MAXB=${MAXB:-256M}
IMPLS=${IMPLS:-"trellis mpi gloo"}
ITERS=${ITERS:-10}
WARMUP=${WARMUP:-3}
SMALL_ITERS=${SMALL_ITERS:-100}
SMALL_WARMUP=${SMALL_WARMUP:-10}
run="$build/tools/trellis_run/trellis-run"
bench="$build/bench/trellis_bench/trellis-bench"
for b in "$run" "$bench"; do
  [ -x "$b" ] || { echo "peers.sh: $b not built" >&2; exit 1; }
done
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cores=$(nproc)
mpi_common=(--mca pml ob1 --mca btl self,vader --mca btl_vader_single_copy_mechanism cma
            -x GLIBC_TUNABLES=glibc.malloc.hugetlb=1)

memcpy_gbs() {  # one thread, 64 MiB, best of 9 (libc memmove through ctypes: no Python loop)
  python3 - <<'PY'
import ctypes, time
n = 64 << 20
a = ctypes.create_string_buffer(n); b = ctypes.create_string_buffer(n)
ctypes.memmove(b, a, n)
best = 0.0
for _ in range(9):
    t = time.perf_counter(); ctypes.memmove(b, a, n); dt = time.perf_counter() - t
    best = max(best, n / dt / 1e9)
print(f"{best:.2f}")
PY
}

sweep_reaches() {  # is MAXB one of 8 x 4^k?
  python3 -c "
import sys
s = sys.argv[1]; m = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}
v = int(s[:-1]) * m[s[-1].upper()] if s[-1].upper() in m else int(s)
x = 8
while x < v: x *= 4
print('yes' if x == v else 'no')" "$1"
}

start=$(date +%s)
for rep in $(seq 1 "$REPS"); do
  memcpy_gbs >> "$raw/memcpy"
  for n in $RANKS; do
    if [ "$n" -gt "$cores" ]; then
      mpi_place=(--oversubscribe --bind-to core:overload-allowed --mca mpi_yield_when_idle 1)
    else
      mpi_place=(--bind-to core)
    fi
    for coll in $COLLS; do
      for impl in $IMPLS; do
        args=(--impl "$impl" --op-name "$coll" -c 1)
        f="$raw/$n.$impl.$coll.$rep"
        echo "peers.sh: rep $rep/$REPS, $n ranks, $coll, $impl ($(( $(date +%s) - start )) s)" >&2
        # 8 x 4^k never equals a power of two with an even exponent (256 MiB): the last size
        # is its own short run when the x4 sweep does not reach it.
        # Small sizes (8 B .. 128 KiB) with more calls per size than the large ones.
        small_end=$MAXB
        [ "$(numfmt --from=iec "$MAXB")" -gt 131072 ] && small_end=128K
        sweeps=("-b 8 -e $small_end -f 4 -n $SMALL_ITERS -w $SMALL_WARMUP")
        [ "$small_end" = "$MAXB" ] || sweeps+=("-b 512K -e $MAXB -f 4 -n $ITERS -w $WARMUP")
        [ "$(sweep_reaches "$MAXB")" = yes ] || sweeps+=("-b $MAXB -e $MAXB -n $ITERS -w $WARMUP")
        : > "$f"
        for sizes in "${sweeps[@]}"; do
          # shellcheck disable=SC2086  # $sizes is a list of flags
          case $impl in
            mpi) timeout 1800 mpirun -np "$n" "${mpi_place[@]}" "${mpi_common[@]}" "$bench" "${args[@]}" $sizes ;;
            *) "$run" -n "$n" --timeout 1800 --no-tag "$bench" "${args[@]}" $sizes ;;
          esac >> "$f" 2>&1
          rc=$?
          [ "$rc" -eq 0 ] || { echo "peers.sh: $impl $coll n=$n rep $rep exited $rc" >&2; echo "EXIT $rc" >> "$f"; }
        done
      done
    done
  done
done

{
  echo "Measured by \`bench/peers.sh\` on $(date -u +%Y-%m-%d): $(nproc) CPUs" \
       "($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), $REPS repetitions interleaved" \
       "(per repetition and collective: ${IMPLS// /, }), float32 sum, -c 1, -n $SMALL_ITERS -w $SMALL_WARMUP up to 128 KiB and -n $ITERS -w $WARMUP above," \
       "$(( $(date +%s) - start )) s in all."
  echo "OpenMPI $(mpirun --version 2>/dev/null | head -1 | awk '{print $NF}'):" \
       "\`mpirun ${mpi_common[*]} --bind-to core\` (more ranks than cores:" \
       "\`--oversubscribe --bind-to core:overload-allowed --mca mpi_yield_when_idle 1\`);" \
       "Gloo $(dpkg-query -W -f='${Version}' libgloo-dev 2>/dev/null || echo '?') over TCP 127.0.0.1;" \
       "Trellis under trellis-run."
  echo
} > "$out"
python3 - "$raw" "$RANKS" "$COLLS" "$IMPLS" >> "$out" <<'PY'
import collections, os, statistics, sys
raw, ranks, colls, impls = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
data = collections.defaultdict(list)    # (n, coll, impl, size) -> [(time_us, busbw)]
bad = collections.defaultdict(set)      # (n, coll, impl) -> problems
for f in sorted(os.listdir(raw)):
    if f == "memcpy":
        continue
    n, impl, coll, rep = f.split(".")
    for line in open(os.path.join(raw, f), errors="replace"):
        p = line.split()
        if line.startswith("EXIT"):
            bad[(n, coll, impl)].add("run failed (" + line.strip() + ")")
        elif line.startswith("# skipped"):
            bad[(n, coll, impl)].add("skipped: " + line.split(":", 2)[-1].strip())
        elif len(p) >= 13 and p[0].isdigit():
            if p[8] not in ("0", "N/A"):
                bad[(n, coll, impl)].add(f"#wrong {p[8]} at {p[0]} B")
                continue
            data[(n, coll, impl, int(p[0]))].append((float(p[5]), float(p[7])))
mem = [float(x) for x in open(os.path.join(raw, "memcpy")).read().split()]
def spread(v, fmt):
    return f"{fmt(statistics.median(v))} ({fmt(min(v))}–{fmt(max(v))})"
g = lambda x: f"{x:.0f}" if x >= 100 else f"{x:.3g}"
print(f"One-thread memcpy ceiling, 64 MiB, best of 9 per repetition: {spread(mem, g)} GB/s.\n")
print("Cells: median (min–max) over the repetitions, out-of-place; busbw in GB/s (nccl-tests"
      " definitions) from 256 KiB up, time in µs below. Ratio: the peer's median time over"
      " Trellis' (>1: Trellis faster).\n")
for n in ranks:
    for coll in colls:
        sizes = sorted({k[3] for k in data if k[0] == n and k[1] == coll})
        if not sizes:
            continue
        print(f"#### {coll}, {n} ranks\n")
        peers = [i for i in impls if i != "trellis"]
        print("| size (B) | " + " | ".join(impls) + "".join(f" | {p}/trellis" for p in peers) + " |")
        print("|---:" * (1 + len(impls) + len(peers)) + "|")
        for s in sizes:
            cells, med = [], {}
            for impl in impls:
                v = data.get((n, coll, impl, s), [])
                if not v:
                    cells.append("–")
                    continue
                med[impl] = statistics.median(x[0] for x in v)
                small = s < 256 * 1024
                cells.append(spread([x[0] if small else x[1] for x in v], g) + (" µs" if small else ""))
            ratios = [f"{med[p] / med['trellis']:.2f}" if p in med and med.get("trellis") else "–"
                      for p in peers]
            print(f"| {s} | " + " | ".join(cells) + "".join(f" | {r}" for r in ratios) + " |")
        notes = [f"{impl}: {'; '.join(sorted(bad[(n, coll, impl)]))}" for impl in impls
                 if bad.get((n, coll, impl))]
        if notes:
            print("\n" + "\n".join(f"- {x}" for x in notes))
        print()
PY
echo "peers.sh: wrote $out" >&2
