#!/usr/bin/env bash
# Long fault run: 50 randomized kill -9 iterations (4 ranks; AllReduce, AlltoAll or Broadcast; shm
# or TCP; random victim, size and kill point), survivors must fail with remote error within 10 s
# and leak no fd, thread or /dev/shm segment (test_faults KillLoop.Randomized).
#   scripts/faults.sh [BUILD] [ITERS] [SEED]
set -uo pipefail
build=${1:-build}
bin="$build/tests/faults/test_faults"
[ -x "$bin" ] || { echo "faults.sh: $bin not built (cmake --build $build --target test_faults)"; exit 1; }
TRELLIS_FAULT_ITERS=${2:-50} TRELLIS_FAULT_SEED=${3:-$RANDOM} TRELLIS_TIMEOUT_S=60 nice "$bin" \
  --gtest_filter='KillLoop.Randomized' 2>&1 | grep -v 'TRELLIS WARN'
exit "${PIPESTATUS[0]}"
