#!/usr/bin/env bash
# run_gpu_ranks.sh TRELLIS_RUN PROGRAM N [ARGS...]: PROGRAM on N ranks (processes) under trellis-run,
# or exit 77 (ctest: skipped) after PROGRAM --probe finds no CUDA device. The probe runs in its own
# process so that no rank inherits an initialised CUDA across fork().
set -uo pipefail
run=$1
prog=$2
n=$3
shift 3
"$prog" --probe
rc=$?
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
exec "$run" -n "$n" "$prog" "$@"
