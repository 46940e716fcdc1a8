#!/usr/bin/env bash
# Long soak: 4 ranks x 10,000 collectives of random kind, size (0..8 MiB) and datatype, every result
# checked, RSS/fd/thread counts sampled after warm-up and at the end (trellis-soak), over shared
# memory and over TCP. Numbers go in docs/RELIABILITY.md.
#   scripts/soak.sh [BUILD] [ITERS]
set -uo pipefail
build=${1:-build}
iters=${2:-10000}
soak="$build/tests/soak/trellis-soak"
[ -x "$soak" ] || { echo "soak.sh: $soak not built (cmake --build $build --target trellis-soak)"; exit 1; }
failed=0
for wire in shm tcp; do
  echo "== $wire"
  TRELLIS_TIMEOUT_S=300 nice "$soak" --iters "$iters" --max-bytes $((8 << 20)) --wire "$wire" || failed=1
done
exit $failed
