#!/usr/bin/env bash
# Two emulated hosts joined by a 1 Gbit/s link: network namespaces trellis-nsa / trellis-nsb, a veth
# pair shaped with tc tbf in both directions. Runs trellis-bench (Trellis over TCP, and Gloo) between
# them, ranks pinned to different cores, and prints each run's table; cleans up on exit.
# Usage: bench/netns_tcp.sh BUILD [RATE=1gbit] [COLLS="allreduce alltoall"] [MAXB=64M]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
RATE=${RATE:-1gbit}
COLLS=${COLLS:-"allreduce alltoall"}
MAXB=${MAXB:-64M}
IMPLS=${IMPLS:-"trellis gloo"}
A=trellis-nsa B=trellis-nsb
bench="$build/bench/trellis_bench/trellis-bench"
store=$(mktemp -d)
cleanup() {
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
  rm -rf "$store"
}
trap cleanup EXIT
cleanup
mkdir -p "$store"
ip netns add $A
ip netns add $B
ip link add tva netns $A type veth peer name tvb netns $B
ip -n $A addr add 10.77.0.1/24 dev tva
ip -n $B addr add 10.77.0.2/24 dev tvb
for ns in $A $B; do ip -n $ns link set lo up; done
ip -n $A link set tva up
ip -n $B link set tvb up
# tbf on each sender's side shapes both directions.
ip netns exec $A tc qdisc add dev tva root tbf rate "$RATE" burst 256kb latency 100ms
ip netns exec $B tc qdisc add dev tvb root tbf rate "$RATE" burst 256kb latency 100ms
secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=29611
for coll in $COLLS; do
  for impl in $IMPLS; do
    echo "### $coll over $RATE, $impl"
    port=$((port + 1))
    common=(env TRELLIS_WORLD_SIZE=2 TRELLIS_ROOT_ADDR=10.77.0.1:$port TRELLIS_SECRET=$secret
            TRELLIS_SOCKET_IFNAME=tva,tvb TRELLIS_TIMEOUT_S=300)
    args=(--impl "$impl" --op-name "$coll" -b 8 -e "$MAXB" -f 4 -c 1 -n 5 -w 1 --gloo-store "$store/$coll" )
    mkdir -p "$store/$coll"
    ip netns exec $A taskset -c 0 "${common[@]}" TRELLIS_RANK=0 TRELLIS_HOST_ID=nsa "$bench" "${args[@]}" --gloo-host 10.77.0.1 > "$store/out.a" 2>&1 &
    pa=$!
    ip netns exec $B taskset -c 1 "${common[@]}" TRELLIS_RANK=1 TRELLIS_HOST_ID=nsb "$bench" "${args[@]}" --gloo-host 10.77.0.2 > "$store/out.b" 2>&1 &
    pb=$!
    wait $pa || echo "rank 0 failed: $(tail -3 "$store/out.a")"
    wait $pb || echo "rank 1 failed: $(tail -3 "$store/out.b")"
    grep -vE '^#  Rank' "$store/out.a"
    rm -rf "$store/$coll"
  done
done
