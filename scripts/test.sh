#!/usr/bin/env bash
# `make test`: runs the whole suite of a configured and built tree. Usage: scripts/test.sh BUILD
set -euo pipefail
build=${1:-build}
jobs=${TEST_JOBS:-2}
# Leaked shared-memory segments are a test failure: note what exists before.
before=$(ls /dev/shm 2>/dev/null | grep -c '^trellis' || true)
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 900
after=$(ls /dev/shm 2>/dev/null | grep -c '^trellis' || true)
if [ "$after" -gt "$before" ]; then
  echo "FAIL: the test suite leaked $((after - before)) /dev/shm/trellis* segment(s):"
  ls -la /dev/shm | grep trellis
  exit 1
fi
