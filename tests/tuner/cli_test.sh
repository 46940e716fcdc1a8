#!/bin/sh
# trellis-topo tune end to end: the 128-node x 8-rail 2:1 fat tree from its cluster file (choices,
# bus bandwidth bounded by the links, the blind baseline slower), a node topology file from the
# fixtures, flags only, forced algorithms, and errors that name what is wrong (exit code 2).
# usage: cli_test.sh TRELLIS_TOPO SOURCE_DIR
set -eu
T=$1
SRC=$2
F=$SRC/../shared/fixtures
[ -d "$F" ] || F=/work/shared/fixtures
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PY3=/usr/bin/python3; [ -x "$PY3" ] || PY3=python3

"$T" tune --input "$SRC/docs/examples/fat_tree_128x8_2to1.json" --planned --blind --coll allreduce,alltoall \
  --sizes 64K,16M,256M --json > "$TMP/fat.json" || fail "tune on the 128x8 fat tree"
"$PY3" - "$TMP/fat.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["simulation"] is True and d["nranks"] == 1024, d["shape"]
assert "128 nodes x 8 ranks, 8 rails" in d["shape"] and "spine 2:1" in d["shape"], d["shape"]
rows = {(r["collective"], r["size"]): r for r in d["rows"]}
big = rows[("allreduce", 256 << 20)]
assert big["algo"] in ("hier", "topo_ring"), big
# 8 rails of 48 GB/s: no AllReduce bus bandwidth above the node's NICs plus NVLink can be predicted.
assert 0 < big["busbw_gbps"] < 8 * 48 + 360, big
assert big["blind_time_s"] > 1.3 * big["time_s"], big
a2a = rows[("alltoall", 256 << 20)]
assert a2a["algo"] == "rail" and a2a["blind_time_s"] > a2a["time_s"], a2a
for r in d["rows"]:
    assert r["time_s"] > 0 and r["runner_up"], r
PY
[ $? -eq 0 ] || fail "fat tree predictions"

"$T" tune --input "$F/nccl-topo/azure-ndv5-h100.xml" --nodes 4 --coll allreduce --sizes 1M > "$TMP/dgx.txt" 2>&1 ||
  { cat "$TMP/dgx.txt"; fail "tune with a node topology"; }
grep -q "4 nodes x 8 ranks" "$TMP/dgx.txt" || { cat "$TMP/dgx.txt"; fail "the DGX topology gives 8 GPUs per node"; }
grep -q "SIMULATION" "$TMP/dgx.txt" || fail "the output says it is a simulation"

"$T" tune --kind cpu --ranks-per-node 4 --cores 2 --direct --algo allreduce:ring --coll allreduce --sizes 1M,4M --json \
  > "$TMP/cpu.json" || fail "tune with flags"
"$PY3" -c "
import json, sys
d = json.load(open('$TMP/cpu.json'))
assert [r['algo'] for r in d['rows']] == ['ring', 'ring'] and all(r['how'] == 'TRELLIS_ALGO' for r in d['rows']), d
assert d['rows'][1]['time_s'] > d['rows'][0]['time_s']
" || fail "forced algorithm predictions"

"$T" tune --constants | grep -q "^net.nic_bps" || fail "--constants lists the table"
if "$T" tune --set nosuch=1 > "$TMP/e1" 2>&1; then fail "an unknown constant is accepted"; fi
grep -q "nosuch=1" "$TMP/e1" || { cat "$TMP/e1"; fail "the error names the bad constant"; }
set +e
"$T" tune --tune 'allreduce:0-64k:@nope' > "$TMP/e2" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || fail "a bad tune string exits 2 (got $rc)"
grep -q "at position 16 ('@nope')" "$TMP/e2" || { cat "$TMP/e2"; fail "the error points at the token"; }
if "$T" tune --nodes 2 --ranks-per-node 8,8,4 > "$TMP/e3" 2>&1; then fail "inconsistent --nodes accepted"; fi
grep -q "lists 3 nodes but --nodes is 2" "$TMP/e3" || { cat "$TMP/e3"; fail "the error names both counts"; }
echo "cli_test: ok"
