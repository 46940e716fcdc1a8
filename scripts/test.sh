#!/usr/bin/env bash
# `make test`: runs the whole suite of a configured and built tree. Usage: scripts/test.sh BUILD
set -euo pipefail
build=${1:-build}
jobs=${TEST_JOBS:-2}
# Leaked shared-memory segments are a test failure: note what exists before.
before=$(ls /dev/shm 2>/dev/null | grep -c '^trellis' || true)
rc=0
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 900 --output-junit ctest-junit.xml || rc=$?
# ctest prints only "Skipped" for a skipped test: print the reason each one gave (gtest's message
# after "file:line: Skipped", else the test's last output line).
python3 - "$build/ctest-junit.xml" <<'PY' || true
import sys, xml.etree.ElementTree as ET
for t in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    if t.find("skipped") is not None:
        out = (t.findtext("system-out") or "").strip().splitlines()
        why = out[-1] if out else "(no output)"
        for i, line in enumerate(out[:-1]):
            if line.endswith(": Skipped"):
                why = out[i + 1]
                break
        print(f"skipped: {t.get('name').split('  #')[0]}: {why}")
PY
[ "$rc" -eq 0 ] || exit "$rc"
after=$(ls /dev/shm 2>/dev/null | grep -c '^trellis' || true)
if [ "$after" -gt "$before" ]; then
  echo "FAIL: the test suite leaked $((after - before)) /dev/shm/trellis* segment(s):"
  ls -la /dev/shm | grep trellis
  exit 1
fi
