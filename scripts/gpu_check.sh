#!/usr/bin/env bash
# The GPU checks of issue 9 in one go (docs/GPU.md).
#
#   bash scripts/gpu_check.sh prepare [BUILD] [BUNDLE]   # here, no GPU needed
#       Configures BUILD (default build-gpu) with TRELLIS_WITH_CUDA=ON, builds only the GPU test
#       programs and trellis-run, and copies them (stripped) with every shared library they need
#       except glibc's into BUNDLE (default build-gpu-bundle; ignored by git, small enough to carry).
#   bash scripts/gpu_check.sh run [BUNDLE]               # on the machine with the GPU
#       Runs everything from BUNDLE with LD_LIBRARY_PATH=BUNDLE/lib, each step under a timeout, and
#       writes the log to $OUT/gpu_check.log (or ./gpu_check.log): device info, the host checks, the
#       kernels against the host kernels, the collectives on device buffers at 2, 4 and 8 ranks
#       (processes sharing the GPU), compute-sanitizer on a short run when it is installed, the
#       reduction kernels' bandwidth against a device-to-device copy, and AllReduce/AlltoAll bus
#       bandwidth on device buffers at 2 and 4 ranks. Exit 1 if any check failed; 77 if no GPU.
set -uo pipefail
mode=${1:-}
here=$(cd "$(dirname "$0")/.." && pwd)

prepare() {
  local build=${1:-build-gpu} bundle=${2:-build-gpu-bundle}
  set -e
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRELLIS_WITH_CUDA=ON \
        -DTRELLIS_BUILD_BENCH=OFF >/dev/null
  nice -n 10 cmake --build "$build" -j "${JOBS:-2}" --target test_cuda_host test_cuda_kernels gpu_collectives \
        gpu_reduce_bw trellis-run
  rm -rf "$bundle"
  mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/keep"
  local bins=("$build/tests/cuda/test_cuda_host" "$build/tests/cuda/test_cuda_kernels"
              "$build/tests/cuda/gpu_collectives" "$build/tests/cuda/gpu_reduce_bw"
              "$build/tools/trellis_run/trellis-run")
  for b in "${bins[@]}"; do
    [ -x "$b" ] || b=$(find "$build" -name "$(basename "$b")" -type f -perm -u+x | head -1)
    strip --strip-unneeded -o "$bundle/bin/$(basename "$b")" "$b"
    # Every shared library but glibc's own (the device machine may lack the Debian packages).
    ldd "$b" | awk '/=> \//{print $3}' | while read -r lib; do
      case "$(basename "$lib")" in
        libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
        *) cp -L -n "$lib" "$bundle/lib/" ;;
      esac
    done
  done
  # test_cuda_host reads nvcc's intermediates (kernel names in the cubins and PTX) from its build path.
  cp "$build"/cuda/keep/*.cubin "$build"/cuda/keep/*.ptx "$bundle/keep/"
  git -C "$here" describe --always --dirty > "$bundle/COMMIT" 2>/dev/null || true
  du -sh "$bundle"
  echo "bundle ready: carry '$bundle' and run: bash scripts/gpu_check.sh run $bundle"
}

run() {
  local bundle=${1:-build-gpu-bundle}
  bundle=$(cd "$bundle" && pwd)
  local out=${OUT:-.}
  local log="$out/gpu_check.log"
  export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATH="$bundle/bin:$PATH"
  local failed=0
  : > "$log"
  say() { echo "$@" | tee -a "$log"; }
  local budget=${GPU_CHECK_BUDGET_S:-540}  # stop starting steps past this (the device call's limit)
  step() {  # step NAME TIMEOUT_S CMD...
    local name=$1 t=$2
    shift 2
    if [ $((SECONDS + 10)) -ge "$budget" ]; then say "=== $name: NOT RUN (time budget of $budget s spent)"; return; fi
    [ $((SECONDS + t)) -le "$budget" ] || t=$((budget - SECONDS))
    say "=== $name: $*"
    local start=$SECONDS
    timeout "$t" "$@" >> "$log" 2>&1
    local rc=$?
    case $rc in
      0) say "=== $name: PASS ($((SECONDS - start)) s)" ;;
      77) say "=== $name: SKIPPED (no CUDA device)" ;;
      124) say "=== $name: FAIL (timed out after $t s)"; failed=1 ;;
      *) say "=== $name: FAIL (exit $rc)"; failed=1 ;;
    esac
    tail -5 "$log" | sed 's/^/    /'
  }
  say "commit $(cat "$bundle/COMMIT" 2>/dev/null || echo unknown); $(date -u)"
  nvidia-smi >> "$log" 2>&1 || say "(nvidia-smi not available)"
  if ! "$bundle/bin/gpu_collectives" --probe >> "$log" 2>&1; then
    say "no CUDA device: nothing to check"
    return 77
  fi
  export TRELLIS_TEST_CUDA_KEEP_DIR="$bundle/keep"  # nvcc's intermediates, for test_cuda_host
  # Most important first: a short device window still yields the correctness verdicts.
  step host-checks 60 test_cuda_host
  step kernels 180 test_cuda_kernels
  export TRELLIS_TIMEOUT_S=120
  step collectives-2ranks 180 trellis-run -n 2 "$bundle/bin/gpu_collectives"
  step collectives-4ranks 240 trellis-run -n 4 "$bundle/bin/gpu_collectives"
  step reduce-bandwidth 120 gpu_reduce_bw 256
  step busbw-2ranks 150 trellis-run -n 2 "$bundle/bin/gpu_collectives" --bench
  step busbw-4ranks 150 trellis-run -n 4 "$bundle/bin/gpu_collectives" --bench
  step collectives-8ranks 300 trellis-run -n 8 "$bundle/bin/gpu_collectives"
  if command -v compute-sanitizer >/dev/null; then
    step sanitizer-kernels 240 compute-sanitizer --error-exitcode 1 test_cuda_kernels --gtest_filter='*InPlaceAndAvg*:*PointerPlacement*'
    step sanitizer-collectives 240 trellis-run -n 2 compute-sanitizer --error-exitcode 1 "$bundle/bin/gpu_collectives"
  else
    say "=== compute-sanitizer: NOT RUN (not installed on this machine)"
  fi
  say "=== summary"
  grep -E '^=== .*: (PASS|FAIL|SKIPPED|NOT RUN)' "$log" | tee -a "$log.summary"
  grep -E '^#|^  (allreduce|alltoall|float|bfloat|int8)' "$log" >> "$log.summary" || true
  return $failed
}

case "$mode" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@"; exit $? ;;
  *) sed -n '2,17p' "$0"; exit 2 ;;
esac
