#!/usr/bin/env bash
# Runs inside the qemu guest (tests/rdma/qemu_guest.sh), chrooted into the host's / : the verbs
# transport tests, the collective suite over verbs, and the NCCL net plugin's harness over its verbs
# backend (every ncclNetPlugin_vN, v6..v11), on the guest's two Soft-RoCE devices.
# Usage (guest): guest_tests.sh BUILD_DIR [GTEST_FILTER]
set -uo pipefail
build=$1
filter=${2:-*}
export TRELLIS_DEBUG=${TRELLIS_DEBUG:-warn}
rc=0
step() {  # step NAME TIMEOUT CMD...: runs one step with a timeout, reports its status and time
  local name=$1 t=$2; shift 2
  local start=$(date +%s%N)
  timeout --kill-after=5 "$t" "$@"
  local r=$?
  local ms=$((($(date +%s%N) - start) / 1000000))
  printf 'guest step %-12s status %d, %d.%01d s\n' "$name" "$r" $((ms / 1000)) $((ms % 1000 / 100))
  [ "$r" -eq 0 ] || rc=1
}
step ibv_devinfo 20 ibv_devinfo -l
step rdma_link 20 rdma link show
# Not --gtest_brief: each test's name and time are printed, so a step killed by its timeout on a
# loaded host shows which test was running and where the time went.
step transport 240 "$build/tests/rdma/test_verbs_transport" --gtest_filter="$filter"
step collectives 300 "$build/tests/rdma/test_verbs_collectives" --gtest_filter="$filter"
# The plugin's cases named *_verbs* exist only where an RDMA device is seen; TRELLIS_TEST_NCCL_VERBS=1
# insists on them (a guest without its devices fails here instead of running no case). Every case
# runs over verbs through the oldest and the newest ABI (v6, v11); v7..v10 (whose adapters the host
# runs over tcp and ucx in full) run the cases whose argument or property types differ by version.
# The whole set takes 1-2 minutes in the guest on a quiet machine, several on a loaded one.
nccl_filter="*/v6_verbs:*/v11_verbs:*.InitDevicesProperties/*_verbs:*.TransfersBothDirections/*_verbs"
nccl_filter+=":*.GroupedReceiveMatchesTags/*_verbs:*VdevTest.VirtualDeviceFusesNics/v9_verbs"
nccl_filter+=":Versions/VersionTest.*/v6:Versions/VersionTest.*/v11:NetPluginVerbs.*"
if [ -x "$build/tests/nccl_net/test_nccl_net" ]; then
  step nccl_net 300 env TRELLIS_TEST_NCCL_VERBS=1 "$build/tests/nccl_net/test_nccl_net" \
    --gtest_filter="$nccl_filter"
else
  echo "guest step nccl_net     not run: $build/tests/nccl_net/test_nccl_net is not built (the NCCL plugin is off in this build)"
fi
exit $rc
