#!/usr/bin/env bash
# An emulated rail-optimized cluster on one machine, and trellis-bench on it three ways.
#
# Nodes are network namespaces; each node has RAILS NICs (veth pairs named rail<r>); every rail has
# its own leaf switch (a namespace holding a Linux bridge, also the rail's IP gateway); the leaves
# meet only through a spine namespace, so traffic between rails crosses the spine. Every link is
# shaped with tc tbf in both directions (netem is not in this kernel): rail links RAIL_RATE, each
# leaf's uplink to the spine SPINE_RATE. Nodes route like multi-rail hosts: traffic from a NIC's
# address leaves through that NIC (per-NIC source routing tables); unbound traffic follows the
# default route through rail 0. Per node, a topology file maps GPU r (the emulated GPUs are the
# CPU ranks, local rank r) to NIC rail<r> (port mlx5_<r>), and a cluster file places the NICs on
# the leaves. Ranks are launched directly (TRELLIS_RANK/WORLD_SIZE/ROOT_ADDR, TRELLIS_HOST_ID per
# node) in a fixed scheduler-scrambled order: rank numbers are not grouped by node.
#
# Configurations (every one with the same scrambled placement):
#   blind      TRELLIS_TOPO_AWARE=0; rank k listens on NIC rail<k mod RAILS> of its node ("any
#              NIC"), connects unbound; flat algorithms (the tuner's size rules)
#   blind1     as blind, every rank on rail0 (one NIC per node, as a default interface gives)
#   aware      per-node topology + cluster files; the tuner's choice (hier / rail), own NICs
#   <algo>     aware with TRELLIS_ALGO forcing each algorithm
#
# Usage: tests/cluster/cluster.sh BUILD [check|bench]
#   check: a small correctness run (checked results, every collective, blind, aware and each
#          topology-aware algorithm forced); exit 0 on success, 77 when namespaces cannot be made
#   bench: AllReduce and AlltoAll busbw tables (medians over REPS interleaved repetitions)
# Environment: NODES (4) RAILS (2) RPN ranks per node (2) RAIL_RATE (400mbit) SPINE_RATE (200mbit)
#   MINB (16K) MAXB (64M) ITERS (5) REPS (3) OUT (directory for the JSON rows and the table)
#   CALIBRATED (0; 1 adds "aware_cal": aware with TRELLIS_TUNER_CALIBRATE=1) ONLY (regex on coll.config)
set -euo pipefail
BUILD=$(cd "${1:?usage: $0 BUILD [check|bench]}" && pwd)
MODE=${2:-bench}
NODES=${NODES:-4}
RAILS=${RAILS:-2}
RPN=${RPN:-2}
RAIL_RATE=${RAIL_RATE:-400mbit}
SPINE_RATE=${SPINE_RATE:-200mbit}
MINB=${MINB:-16K}
MAXB=${MAXB:-64M}
ITERS=${ITERS:-5}
REPS=${REPS:-3}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
lanes() {  # "400mbit" -> 8 (lanes of 50 Mbit/s)
  local m=${1%mbit}
  if ! [[ "$1" =~ ^[0-9]+mbit$ ]] || [ $((m % 50)) -ne 0 ] || [ "$m" -eq 0 ]; then
    echo "error: rates are multiples of 50mbit (got '$1')" >&2
    return 1
  fi
  echo $((m / 50))
}
RAIL_LANES=$(lanes "$RAIL_RATE") || exit 2
SPINE_LANES=$(lanes "$SPINE_RATE") || exit 2
BENCH="$BUILD/bench/trellis_bench/trellis-bench"
NRANKS=$((NODES * RPN))
HERE=$(cd "$(dirname "$0")" && pwd)

skip() {
  echo "SKIP: $*"
  exit 77
}
[ -x "$BENCH" ] || { echo "error: $BENCH not built"; exit 1; }
command -v ip > /dev/null || skip "the ip command (iproute2) is missing"
command -v tc > /dev/null || skip "the tc command (iproute2) is missing"
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root (uid $(id -u))"
[ "$RAILS" -le 8 ] && [ "$NODES" -le 200 ] || { echo "error: RAILS <= 8 and NODES <= 200"; exit 2; }

P="tcl$$"  # namespace prefix: concurrent runs do not collide
WORK=$(mktemp -d /tmp/trellis-cluster.XXXXXX)
OUT=${OUT:-$WORK/out}
mkdir -p "$OUT"
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
  for ns in $(ip netns list 2> /dev/null | awk -v p="$P-" 'index($1, p) == 1 {print $1}'); do
    for pid in $(ip netns pids "$ns" 2> /dev/null); do kill -9 "$pid" 2> /dev/null || true; done
    ip netns del "$ns" 2> /dev/null || true
  done
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$P-probe" 2> /dev/null || skip "cannot create a network namespace (ip netns add failed: no CAP_SYS_ADMIN?)"
ip netns del "$P-probe"

nsx() { ip netns exec "$@"; }
shape() {  # namespace device rate
  nsx "$1" tc qdisc replace dev "$2" root tbf rate "$3" burst 256kb latency 50ms
}
quiet_ns() {  # forwarding on, reverse-path filter off (paths between rails are asymmetric)
  nsx "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}
addr() { echo "10.60.$1.$(($2 + 1))"; }  # rail node

echo "# emulated cluster: $NODES nodes x $RAILS rails x $RPN ranks/node; rail links $RAIL_RATE, leaf uplinks to the spine $SPINE_RATE"
S="$P-spine"
ip netns add "$S"
quiet_ns "$S"
nsx "$S" ip link set lo up
for r in $(seq 0 $((RAILS - 1))); do
  L="$P-leaf$r"
  ip netns add "$L"
  quiet_ns "$L"
  nsx "$L" ip link set lo up
  ip -n "$L" link add br0 type bridge
  ip -n "$L" addr add "10.60.$r.254/24" dev br0
  ip -n "$L" link set br0 up
  ip link add uplink netns "$L" type veth peer name "down$r" netns "$S"
  ip -n "$L" addr add "10.61.$r.1/30" dev uplink
  ip -n "$S" addr add "10.61.$r.2/30" dev "down$r"
  ip -n "$L" link set uplink up
  ip -n "$S" link set "down$r" up
  ip -n "$L" route add 10.60.0.0/16 via "10.61.$r.2"
  ip -n "$S" route add "10.60.$r.0/24" via "10.61.$r.1"
  shape "$L" uplink "$SPINE_RATE"
  shape "$S" "down$r" "$SPINE_RATE"
done
for i in $(seq 0 $((NODES - 1))); do
  N="$P-n$i"
  ip netns add "$N"
  nsx "$N" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  nsx "$N" ip link set lo up
  for r in $(seq 0 $((RAILS - 1))); do
    L="$P-leaf$r"
    a=$(addr "$r" "$i")
    ip link add "rail$r" netns "$N" type veth peer name "port$i" netns "$L"
    ip -n "$L" link set "port$i" master br0
    ip -n "$L" link set "port$i" up
    ip -n "$N" addr add "$a/24" dev "rail$r" noprefixroute
    ip -n "$N" link set "rail$r" up
    nsx "$N" sysctl -qw "net.ipv4.conf.rail$r.rp_filter=0"
    # Source routing: what leaves from this NIC's address goes through this NIC.
    ip -n "$N" route add "10.60.$r.0/24" dev "rail$r" src "$a" table $((100 + r))
    ip -n "$N" route add 10.60.0.0/16 via "10.60.$r.254" dev "rail$r" src "$a" table $((100 + r))
    ip -n "$N" rule add from "$a" table $((100 + r)) pref $((100 + r))
    shape "$N" "rail$r" "$RAIL_RATE"
    shape "$L" "port$i" "$RAIL_RATE"
  done
  # Unbound traffic: rail 0, its own subnet directly, the others through its leaf and the spine.
  ip -n "$N" route add 10.60.0.0/24 dev rail0 src "$(addr 0 "$i")"
  ip -n "$N" route add 10.60.0.0/16 via 10.60.0.254 dev rail0 src "$(addr 0 "$i")"
done
# Every node reaches every NIC of every other node (through the spine when rails differ).
# A TCP connection from node 0's rail-0 address to the last node's last rail: through the spine.
probe_to=$(addr $((RAILS - 1)) $((NODES - 1)))
nsx "$P-n$((NODES - 1))" python3 -c "
import socket; s = socket.socket(); s.bind(('$probe_to', 29699)); s.listen(); s.settimeout(10)
c, _ = s.accept(); c.sendall(b'ok')" &
probe=$!
nsx "$P-n0" python3 -c "
import socket, time
for _ in range(100):
    try:
        c = socket.create_connection(('$probe_to', 29699), timeout=5, source_address=('$(addr 0 0)', 0)); break
    except ConnectionRefusedError: time.sleep(0.05)
assert c.recv(2) == b'ok'" && wait $probe ||
  { echo "error: the emulated network does not route between rails ($(addr 0 0) -> $probe_to)"; exit 1; }

# Topology file per node: GPU r and NIC rail<r> (port mlx5_<r>) under PCIe switch r.
for i in $(seq 0 $((NODES - 1))); do
  {
    echo "{\"format\": \"trellis-topology\", \"version\": 1, \"hostname\": \"node$i\", \"nodes\": ["
    echo "  {\"id\": 0, \"kind\": \"cpu\", \"parent\": -1, \"numa\": 0}"
    for r in $(seq 0 $((RAILS - 1))); do
      b=$(printf '%02x' $((16 * (r + 1))))
      echo "  ,{\"id\": $((3 * r + 1)), \"kind\": \"pci-switch\", \"parent\": 0, \"busid\": \"0000:$b:00.0\"}"
      echo "  ,{\"id\": $((3 * r + 2)), \"kind\": \"gpu\", \"parent\": $((3 * r + 1)), \"busid\": \"0000:$b:01.0\", \"dev\": $r, \"sm\": 90}"
      echo "  ,{\"id\": $((3 * r + 3)), \"kind\": \"nic\", \"parent\": $((3 * r + 1)), \"busid\": \"0000:$b:02.0\", \"ports\": [{\"name\": \"mlx5_$r\", \"netdev\": \"rail$r\", \"link_layer\": \"Ethernet\", \"speed_mbps\": ${RAIL_RATE%mbit}}]}"
    done
    echo "]}"
  } > "$WORK/topo.node$i.json"
done
# The cluster file gives cable rates as InfiniBand lanes, 1xSDR per 50 Mbit/s, so the ratio of
# host ports to uplinks (the spine's oversubscription, which the tuner reads) is the emulated one.
cat > "$WORK/fabric.json" << EOF
{"format": "trellis-cluster", "version": 1, "link": "${RAIL_LANES}xSDR",
 "spines": [{"name": "spine0"}],
 "leaves": [{"name": "leaf-r[0-$((RAILS - 1))]", "uplinks": ["spine0"], "uplink_link": "${SPINE_LANES}xSDR"}],
 "nodes": [{"name": "node[0-$((NODES - 1))]", "leaves": ["leaf-r[0-$((RAILS - 1))]"]}]}
EOF

# Scheduler-scrambled placement: rank k runs on node NODE_OF[k] (a fixed shuffle of the slots).
mapfile -t SLOTS < <(seq 0 $((NRANKS - 1)) | shuf --random-source=<(yes trellis-cluster))
NODE_OF=()
for k in $(seq 0 $((NRANKS - 1))); do NODE_OF[k]=$((SLOTS[k] / RPN)); done
echo "# placement (rank:node): $(for k in $(seq 0 $((NRANKS - 1))); do printf '%d:%d ' "$k" "${NODE_OF[k]}"; done)"
SECRET=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
PORT=29700

# run NAME EXTRA_ENV -- BENCH_ARGS...: one job, all ranks; rank 0's JSON rows to $OUT/NAME.json.
run() {
  local name=$1 extra=$2
  shift 3
  PORT=$((PORT + 1))
  local root
  root="$(addr 0 "${NODE_OF[0]}"):$PORT"
  PIDS=()
  for k in $(seq 0 $((NRANKS - 1))); do
    local n=${NODE_OF[k]} envs=()
    envs=(TRELLIS_RANK=$k TRELLIS_WORLD_SIZE=$NRANKS TRELLIS_ROOT_ADDR=$root TRELLIS_SECRET=$SECRET
          TRELLIS_HOST_ID=node$n TRELLIS_TIMEOUT_S=300 TRELLIS_BOOTSTRAP_TIMEOUT_S=120)
    local e
    for e in $extra; do
      e=${e//@NODE@/$n}
      e=${e//@ANYNIC@/rail$((k % RAILS))}
      envs+=("$e")
    done
    local json=()
    [ "$k" -eq 0 ] && json=(-J "$OUT/$name.json")
    nsx "$P-n$n" env "${envs[@]}" timeout "$RUN_TIMEOUT" "$BENCH" "$@" "${json[@]}" > "$WORK/out.$k" 2>&1 &
    PIDS+=($!)
  done
  local failed=0
  for k in $(seq 0 $((NRANKS - 1))); do
    if ! wait "${PIDS[k]}"; then
      echo "FAIL: $name: rank $k (node ${NODE_OF[k]}) exited non-zero:"
      tail -5 "$WORK/out.$k" | sed 's/^/    /'
      failed=1
    fi
  done
  PIDS=()
  cp "$WORK/out.0" "$OUT/$name.log"
  return $failed
}

BLIND="TRELLIS_TOPO_AWARE=0 TRELLIS_SOCKET_IFNAME==@ANYNIC@"
BLIND1="TRELLIS_TOPO_AWARE=0 TRELLIS_SOCKET_IFNAME==rail0"
AWARE="TRELLIS_TOPO_FILE=$WORK/topo.node@NODE@.json TRELLIS_FABRIC_FILE=$WORK/fabric.json"
TOPO_ALGOS="allreduce:hier,reducescatter:hier,allgather:hier,broadcast:hier,reduce:hier,alltoall:rail"

if [ "$MODE" = check ]; then
  fails=0
  args=(--op-name all -b 8 -e 256K -f 32 -n 1 -w 0 -c 1 -d float,int32 -o sum,max)
  run check-blind "$BLIND" -- "${args[@]}" || fails=1
  run check-aware "$AWARE TRELLIS_DEBUG=debug TRELLIS_DEBUG_SUBSYS=topo,net" -- "${args[@]}" || fails=1
  run check-hier "$AWARE TRELLIS_ALGO=$TOPO_ALGOS" -- "${args[@]}" || fails=1
  run check-topo_ring "$AWARE TRELLIS_ALGO=allreduce:topo_ring,reducescatter:topo_ring,allgather:topo_ring" -- "${args[@]}" || fails=1
  # One rank per node (in reverse node order): each takes every rail and stripes over its NICs.
  saved_node_of=("${NODE_OF[@]}")
  saved_nranks=$NRANKS
  NRANKS=$NODES
  NODE_OF=()
  for k in $(seq 0 $((NODES - 1))); do NODE_OF[k]=$((NODES - 1 - k)); done
  run striped-1pernode "$AWARE TRELLIS_DEBUG=info TRELLIS_DEBUG_SUBSYS=net" -- \
    --op-name allreduce,alltoall,broadcast,allgather -b 8 -e 4M -f 64 -n 1 -w 0 -c 1 || fails=1
  NODE_OF=("${saved_node_of[@]}")
  NRANKS=$saved_nranks
  if grep -q "listening on rail0 .* (rail 0), rail1 .* (rail 1), sockets bound" "$OUT/striped-1pernode.log"; then
    grep -h "listening on" "$OUT/striped-1pernode.log" | sed 's/.*listening on/one rank per node: rank 0 TCP listens on/'
  else
    echo "FAIL: with one rank per node, rank 0 does not listen on both of its NICs"
    fails=1
  fi
  python3 -c "
import json, sys
d = json.load(open('$OUT/striped-1pernode.json'))
print(f'striped-1pernode.json: {len(d[\"rows\"])} rows, {d[\"wrong_total\"]} wrong')
sys.exit(1 if d['wrong_total'] or not d['rows'] else 0)" || fails=1
  for f in "$OUT"/check-*.json; do
    python3 - "$f" << 'PY' || fails=1
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
bad = d["wrong_total"]
colls = sorted({r["collective"] for r in rows})
print(f"{sys.argv[1].rsplit('/', 1)[-1]}: {len(rows)} rows ({', '.join(colls)}), {bad} wrong, {d['skipped']} skipped")
sys.exit(1 if bad or len(colls) < 6 or d["nranks"] < 2 else 0)
PY
  done
  # Rank 0 of the aware run: no warning, its NICs from the topology, leaves from the cluster file.
  log="$OUT/check-aware.log"
  if grep -h "TRELLIS WARN" "$log"; then
    echo "FAIL: rank 0 warned in the aware run of a consistent cluster"
    fails=1
  fi
  grep -q "sockets bound to these NICs" "$log" || { echo "FAIL: rank 0's TCP did not use its NIC"; fails=1; }
  grep -q " leaf-r1$" "$log" || { echo "FAIL: the cluster view has no leaf switches from the cluster file"; fails=1; }
  grep -h "listening on" "$log" | sed 's/.*listening on/rank 0 TCP listens on/' 
  [ $fails -eq 0 ] && echo "PASS: emulated cluster correctness ($NODES nodes x $RAILS rails x $RPN ranks)"
  exit $fails
fi

# bench: interleaved repetitions; every configuration once per repetition and sweep. Small sizes
# (MINB..1M) take SMALL_ITERS timed iterations, large ones (4M..MAXB) ITERS. ONLY (a regex on
# "collective.configuration") limits the runs.
SMALL_ITERS=${SMALL_ITERS:-20}
CALIBRATED=${CALIBRATED:-0}  # 1: also "aware_cal", the aware configuration with TRELLIS_TUNER_CALIBRATE=1
ONLY=${ONLY:-.}
bytes() { numfmt --from=iec "$1"; }
bench_run() {  # coll config env
  [[ "$1.$2" =~ $ONLY ]] || return 0
  if [ "$(bytes "$MINB")" -le $((1 << 20)) ]; then
    local e=1M
    [ "$(bytes "$MAXB")" -lt $((1 << 20)) ] && e=$MAXB
    run "r$rep-small.$1.$2" "$3" -- --op-name "$1" -b "$MINB" -e "$e" -f 4 -n "$SMALL_ITERS" -w 2 -c 0
  fi
  if [ "$(bytes "$MAXB")" -ge $((4 << 20)) ]; then
    local b=4M
    [ "$(bytes "$MINB")" -gt $((4 << 20)) ] && b=$MINB
    run "r$rep-large.$1.$2" "$3" -- --op-name "$1" -b "$b" -e "$MAXB" -f 4 -n "$ITERS" -w 1 -c 0
  fi
}
for rep in $(seq 1 "$REPS"); do
  echo "# repetition $rep of $REPS"
  bench_run allreduce blind "$BLIND"
  bench_run allreduce blind1 "$BLIND1"
  bench_run allreduce aware "$AWARE TRELLIS_DEBUG=debug TRELLIS_DEBUG_SUBSYS=tuner"
  [ "$CALIBRATED" = 1 ] && bench_run allreduce aware_cal "$AWARE TRELLIS_TUNER_CALIBRATE=1 TRELLIS_DEBUG=info TRELLIS_DEBUG_SUBSYS=tuner"
  for a in ring rd rabenseifner topo_ring hier; do bench_run allreduce "$a" "$AWARE TRELLIS_ALGO=allreduce:$a"; done
  bench_run alltoall blind "$BLIND"
  bench_run alltoall blind1 "$BLIND1"
  bench_run alltoall aware "$AWARE TRELLIS_DEBUG=debug TRELLIS_DEBUG_SUBSYS=tuner"
  [ "$CALIBRATED" = 1 ] && bench_run alltoall aware_cal "$AWARE TRELLIS_TUNER_CALIBRATE=1 TRELLIS_DEBUG=info TRELLIS_DEBUG_SUBSYS=tuner"
  for a in pairwise rail; do bench_run alltoall "$a" "$AWARE TRELLIS_ALGO=alltoall:$a"; done
done
python3 "$HERE/summarize.py" "$OUT" "$NODES" "$RAILS" "$RPN" "$RAIL_RATE" "$SPINE_RATE" | tee "$OUT/table.md"
echo "# rows and logs in $OUT (removed on exit unless OUT was given)"
