#!/usr/bin/env bash
# Point-to-point bandwidth in the qemu guest: perftest's ib_write_bw against trellis-verbs-bw (the
# verbs transport: clear-to-send + RDMA WRITE-with-immediate per message) on the same Soft-RoCE
# device, interleaved, REPS repetitions, medians. Run on the host:
#   tests/rdma/qemu_guest.sh --timeout 600 tests/rdma/bench.sh $PWD/build [REPS] [SIZES]
# Absolute numbers in an emulated guest mean little; the ratio to ib_write_bw does.
set -uo pipefail
build=$1
reps=${2:-3}
sizes=${3:-1048576:4194304}  # colon-separated (the guest command line splits on commas)
total=${TOTAL_BYTES:-209715200}  # bytes per run (200 MiB): iterations = total / size
port=18600
tmp=${TMPDIR:-/tmp}
perftest() {  # perftest SIZE: prints ib_write_bw's average MB/s
  local s=$1 n=$(($total / $1))
  port=$((port + 1))
  timeout 120 ib_write_bw -d rxe0 -x 1 -s "$s" -n "$n" -F -p $port >$tmp/pt-srv.txt 2>&1 &
  local srv=$!
  local ok=0
  for _ in $(seq 50); do  # the server needs a moment to listen
    if timeout 120 ib_write_bw -d rxe0 -x 1 -s "$s" -n "$n" -F -p $port 10.77.1.1 >$tmp/pt-cli.txt 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  wait $srv
  [ $ok = 1 ] || { echo "ib_write_bw failed: $(tail -3 $tmp/pt-cli.txt)" >&2; echo 0; return; }
  awk -v s="$s" '$1 == s && NF >= 4 {print $4}' $tmp/pt-cli.txt | tail -1
}
trellis() {  # trellis SIZE HCA: prints trellis-verbs-bw's MB/s
  TRELLIS_IB_HCA=$2 timeout 120 "$build/bench/verbs_bw/trellis-verbs-bw" -s "$1" -n $(($total / $1)) -w 16 |
    sed -n 's/.*MB\/s=\([0-9.]*\).*/\1/p'
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
echo "# ib_write_bw: perftest $(dpkg-query -W -f='${Version}' perftest 2>/dev/null), 1 QP, $total bytes per run, -x 1 (IPv4-mapped RoCE v2 GID)"
echo "# trellis-verbs-bw: $total bytes per run, 16 messages in flight, TRELLIS_IB_QPS_PER_CONNECTION=${TRELLIS_IB_QPS_PER_CONNECTION:-2}, blocking waits"
printf '%-10s %-18s %10s %10s %10s %8s\n' bytes config rep_MB/s "" median ratio
for s in ${sizes//:/ }; do
  : >"$tmp/pt.txt"; : >"$tmp/t1.txt"; : >"$tmp/t2.txt"
  for r in $(seq "$reps"); do  # interleaved
    perftest "$s" >>$tmp/pt.txt
    trellis "$s" rxe0 >>$tmp/t1.txt
    trellis "$s" "" >>$tmp/t2.txt
  done
  pt=$(median <$tmp/pt.txt); t1=$(median <$tmp/t1.txt); t2=$(median <$tmp/t2.txt)
  printf '%-10s %-18s %32s %10s\n' "$s" "ib_write_bw rxe0" "$(tr '\n' ' ' <$tmp/pt.txt)" "$pt"
  printf '%-10s %-18s %32s %10s %8s\n' "$s" "trellis rxe0" "$(tr '\n' ' ' <$tmp/t1.txt)" "$t1" \
    "$(awk -v a="$t1" -v b="$pt" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')"
  printf '%-10s %-18s %32s %10s %8s\n' "$s" "trellis rxe0+rxe1" "$(tr '\n' ' ' <$tmp/t2.txt)" "$t2" \
    "$(awk -v a="$t2" -v b="$pt" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')"
done
