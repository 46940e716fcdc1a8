#!/bin/sh
# trellis-topo end to end: every input format, every dump format, diff exit codes, and the JSON
# written for each fixture validated against schemas/topology.schema.json.
# usage: cli_test.sh TRELLIS_TOPO SOURCE_DIR
set -eu
T=$1
SRC=$2
F=$SRC/../shared/fixtures
[ -d "$F" ] || F=/work/shared/fixtures
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for f in "$F"/nccl-topo/*.xml "$F"/real-topo/hwloc-*.xml "$F"/real-topo/nvidia-smi-topo-m-*.txt; do
  b=$(basename "$f")
  "$T" dump --format json --input "$f" > "$TMP/$b.json" || fail "dump json $b"
  "$T" dump --format nccl-xml --input "$f" > "$TMP/$b.nccl.xml" || fail "dump nccl-xml $b"
  "$T" dump --format dot --input "$f" | grep -q '^graph topology {' || fail "dump dot $b"
  "$T" show --input "$f" > "$TMP/$b.show" || fail "show $b"
  # NCCL XML written from any input loads back and agrees with the JSON on GPUs and NICs.
  "$T" diff "$TMP/$b.json" "$TMP/$b.nccl.xml" > "$TMP/$b.diff" || { cat "$TMP/$b.diff"; fail "json vs nccl-xml of $b differ"; }
done
PY3=/usr/bin/python3; [ -x "$PY3" ] || PY3=python3
"$PY3" - "$SRC/schemas/topology.schema.json" "$TMP" <<'PY'
import glob, json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
files = glob.glob(sys.argv[2] + "/*.json")
assert len(files) >= 10, files
for f in files:
    jsonschema.validate(json.load(open(f)), schema)
print("schema ok:", len(files), "files")
PY
# The IBM dump shows NV18 between every GPU pair, as nvidia-smi does on an 8xH100 box.
grep -q '^GPU0 *X *NV18 *NV18' "$TMP/ibm-gx3d-8xh100-full-dump.xml.show" || fail "IBM matrix"
# diff: 0 for the same file, 1 with the differences named.
"$T" diff "$F/nccl-topo/azure-ndv5-h100.xml" "$F/nccl-topo/azure-ndv5-h100.xml" > /dev/null || fail "diff same"
set +e
"$T" diff "$F/nccl-topo/azure-ndv5-h100.xml" "$F/nccl-topo/aws-p4d.24xlarge-a100.xml" > "$TMP/d.txt"
rc=$?
set -e
[ $rc -eq 1 ] || fail "diff rc $rc"
grep -q '^nic count: 8 vs 4$' "$TMP/d.txt" || fail "diff names the NIC counts"
# Errors: exit 2 with the file and line.
printf '<system version="1">\n<cpu numaid="0">\n<pci busid=' > "$TMP/cut.xml"
set +e
"$T" show --input "$TMP/cut.xml" 2> "$TMP/err.txt"
rc=$?
set -e
[ $rc -eq 2 ] || fail "truncated rc $rc"
grep -q "cut.xml:3" "$TMP/err.txt" || fail "error names file and line: $(cat "$TMP/err.txt")"
# The cluster fabric: the CLI prints what the library's golden files hold, under `cluster` and under
# the schedulers' own subcommands; --host places one host (an off-rail NIC is flagged).
IB=$F/real-topo/ibnetdiscover-dgx-h100-superpod.out
G=$SRC/tests/topo_fabric/golden
for fmt in summary slurm-tree slurm-block kueue volcano k8s-labels; do
  ext=$fmt; case $fmt in summary) ext=summary.txt;; slurm-*) ext=$fmt.conf;; kueue|volcano) ext=$fmt.yaml;; k8s-labels) ext=k8s-labels.txt;; esac
  "$T" cluster --input "$IB" --format "$fmt" > "$TMP/c.$fmt" 2> "$TMP/c.err" || fail "cluster $fmt: $(cat "$TMP/c.err")"
  diff -u "$G/superpod.$ext" "$TMP/c.$fmt" > /dev/null || fail "cluster --format $fmt differs from golden superpod.$ext"
done
"$T" slurm --ibnetdiscover "$IB" --topology block | cmp -s - "$G/superpod.slurm-block.conf" || fail "slurm --topology block"
"$T" k8s --ibnetdiscover "$IB" --kind volcano | cmp -s - "$G/superpod.volcano.yaml" || fail "k8s --kind volcano"
"$T" cluster --cluster-file "$SRC/tests/topo_fabric/data/fat_tree_128x8.json" --format slurm-tree |
  cmp -s - "$G/fat_tree.slurm-tree.conf" || fail "cluster file slurm-tree"
"$T" cluster --input "$IB" --host b08-p1-dgx-08-c01 > "$TMP/host.txt" || fail "cluster --host"
grep -q "leaf group su08" "$TMP/host.txt" || fail "host leaf group: $(cat "$TMP/host.txt")"
grep -q "OFF-RAIL" "$TMP/host.txt" || fail "off-rail NIC flagged: $(cat "$TMP/host.txt")"
"$T" cluster --input "$IB" --host b08-p1-dgx-08-c01 --format json | "$PY3" -c 'import json,sys; d=json.load(sys.stdin); assert d["leafGroup"]=="su08" and any(not h["onRail"] for h in d["hcas"]), d'
set +e
"$T" cluster --input "$IB" --host no-such-host 2> "$TMP/err.txt"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "no-such-host" "$TMP/err.txt" || fail "unknown host rc $rc: $(cat "$TMP/err.txt")"
# This machine: a summary with CPUs, interfaces and PCIe functions, even without GPUs.
"$T" show > "$TMP/local.txt"
grep -q '^CPUs: ' "$TMP/local.txt" || fail "local CPUs"
grep -q '^Network interfaces: ' "$TMP/local.txt" || fail "local interfaces"
# TRELLIS_TOPO_DUMP_FILE writes what was detected (%h: host name; .xml: NCCL XML), loadable again.
TRELLIS_TOPO_DUMP_FILE="$TMP/dump-%h.json" "$T" show > /dev/null
TRELLIS_TOPO_DUMP_FILE="$TMP/dump.xml" "$T" show > /dev/null
d=$(ls "$TMP"/dump-*.json) || fail "no JSON dump"
"$T" diff "$d" "$TMP/dump.xml" > /dev/null || fail "dumps disagree"
"$T" show --input "$d" | grep -q "NICs: " || fail "dump does not load"
echo "cli ok"
