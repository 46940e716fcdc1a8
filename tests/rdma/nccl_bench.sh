#!/usr/bin/env bash
# NCCL net plugin in the qemu guest: its verbs backend and its tcp backend (trellis-nccl-net-bench:
# ncclNetPlugin_v11 between 2 processes, 8 messages in flight; each busy polling as NCCL's proxy
# does, and each with ranks that yield the CPU when a poll finds nothing) against perftest's
# ib_write_bw (1 QP, raw RDMA writes) on the same Soft-RoCE device, interleaved, REPS repetitions,
# medians. Run on the host:
#   tests/rdma/qemu_guest.sh --timeout 1500 tests/rdma/nccl_bench.sh $PWD/build [REPS]
# MB/s are 10^6 bytes/s throughout: ib_write_bw's "MB/sec" column is MiB/s (its message rate times
# the message size says so), so it is scaled by 1.048576 (the printed message rate itself is too
# coarse at these sizes). Absolute numbers in an emulated guest mean little; ratios do.
set -uo pipefail
build=$1
reps=${2:-3}
total=${TOTAL_BYTES:-67108864}  # bytes per size and run
port=18700
tmp=${TMPDIR:-/tmp}
bench=$build/bench/nccl_net_bench/trellis-nccl-net-bench
[ -x "$bench" ] || { echo "nccl_bench.sh: $bench is not built" >&2; exit 1; }

perftest() {  # perftest SIZE: prints ib_write_bw's average in MB/s
  local s=$1 n=$((total / $1))
  port=$((port + 1))
  timeout 120 ib_write_bw -d rxe0 -x 1 -s "$s" -n "$n" -F -p $port >"$tmp/pt-srv.txt" 2>&1 &
  local srv=$! ok=0
  for _ in $(seq 50); do  # the server needs a moment to listen
    if timeout 120 ib_write_bw -d rxe0 -x 1 -s "$s" -n "$n" -F -p $port 10.77.1.1 >"$tmp/pt-cli.txt" 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  wait $srv
  [ $ok = 1 ] || { echo "ib_write_bw failed: $(tail -3 "$tmp/pt-cli.txt")" >&2; echo 0; return; }
  awk -v s="$s" '$1 == s && NF >= 4 {print $4 * 1.048576}' "$tmp/pt-cli.txt" | tail -1
}

configs="verbs verbs+yield tcp tcp+yield"  # columns of trellis-nccl-net-bench, in this order
plugin() {  # one repetition of every configuration: prints "lat|SIZE CONFIG VALUE" (µs or MB/s)
  TRELLIS_IB_HCA==rxe0 TRELLIS_SOCKET_IFNAME==dummy0 timeout 600 "$bench" --reps 1 --mbps --lat-iters 200 \
    --transports "${configs// /,}" --sockets 4 --window 8 --min 1M --max 4M --bytes-per-point "$total" \
    >"$tmp/nb.txt" 2>&1 || { echo "trellis-nccl-net-bench failed: $(tail -5 "$tmp/nb.txt")" >&2; return; }
  awk -F'|' -v cfgs="$configs" 'BEGIN {n = split(cfgs, c, " ")}
    /latency/ {for (i = 1; i <= n; ++i) print "lat", c[i], $(i + 2) + 0}
    /MiB \(MB\/s\)/ {split($2, a, " "); for (i = 1; i <= n; ++i) print a[1] * 1048576, c[i], $(i + 2) + 0}' "$tmp/nb.txt"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }

: >"$tmp/all.txt"
for r in $(seq "$reps"); do  # interleaved: ib_write_bw, then the plugin's configurations
  for s in 1048576 4194304; do echo "$s pt $(perftest $s)" >>"$tmp/all.txt"; done
  plugin >>"$tmp/all.txt"
done
echo "# perftest $(dpkg-query -W -f='${Version}' perftest 2>/dev/null) ib_write_bw -d rxe0 -x 1 -F (1 QP);" \
  "trellis-nccl-net-bench --mbps --window 8 --lat-iters 200 (ncclNetPlugin_v11; verbs on rxe0, tcp 4 streams on dummy0);" \
  "$total bytes per size and run; $reps runs, interleaved; cells: runs, then **median**"
printf '| | ib_write_bw | plugin verbs | plugin verbs, yielding | plugin tcp | plugin tcp, yielding |\n|---|---|---|---|---|---|\n'
for s in lat 1048576 4194304; do
  col() { awk -v s="$s" -v c="$1" '$1 == s && $2 == c {print $3}' "$tmp/all.txt"; }
  cellOf() { local m; m=$(col "$1" | median); printf '%s: **%s**' "$(col "$1" | tr '\n' ' ' | sed 's/ $//')" "$m"; }
  if [ "$s" = lat ]; then
    printf '| 8 B latency (µs, half round trip) | |'
  else
    printf '| %d MiB (MB/s) | %s |' $((s >> 20)) "$(cellOf pt)"
  fi
  for c in $configs; do printf ' %s |' "$(cellOf "$c")"; done
  printf '\n'
done
for s in 1048576 4194304; do
  med() { awk -v s="$s" -v c="$1" '$1 == s && $2 == c {print $3}' "$tmp/all.txt" | median; }
  echo "# $((s >> 20)) MiB ratios of medians: verbs/ib_write_bw $(ratio "$(med verbs)" "$(med pt)")," \
    "verbs yielding/ib_write_bw $(ratio "$(med verbs+yield)" "$(med pt)"), verbs/tcp $(ratio "$(med verbs)" "$(med tcp)")," \
    "verbs yielding/tcp yielding $(ratio "$(med verbs+yield)" "$(med tcp+yield)")"
done
