"""Runs a function on N ranks, as processes forked from this one, for the torch backend's tests and
benchmark. Ranks meet through a FileStore in a fresh temporary folder (no ports to collide when
ctest runs tests in parallel). A rank that raises prints its traceback prefixed with its rank; the
others are then killed and run() raises, naming the ranks that failed."""

import os
import pickle
import sys
import tempfile
import time
import traceback

SKIP = 77  # ctest SKIP_RETURN_CODE


def import_torch_or_skip():
    """Imports torch and trellis_torch. Exits with SKIP when torch itself is missing (the backend cannot
    exist then); a trellis_torch that fails to import next to a working torch is a failure."""
    try:
        import torch  # noqa: F401
        import torch.distributed as dist
    except ImportError as e:
        print(f"SKIPPED: cannot import torch ({e}); `make deps` installs python3-torch", flush=True)
        sys.exit(SKIP)
    if not dist.is_available() or not dist.is_gloo_available():
        print("SKIPPED: this torch has no torch.distributed with gloo (the reference backend)", flush=True)
        sys.exit(SKIP)
    import trellis_torch  # noqa: F401


def _child(fn, rank, size, folder, args):
    code = 0
    try:
        import torch

        torch.set_num_threads(1)
        result = fn(rank, size, os.path.join(folder, "store"), *args)
        with open(os.path.join(folder, f"result.{rank}"), "wb") as f:
            pickle.dump(result, f)
    except BaseException:  # noqa: B036 - report anything, including SystemExit from a failed check
        lines = traceback.format_exc().rstrip().splitlines()
        print("\n".join(f"[rank {rank}] {line}" for line in lines), file=sys.stderr, flush=True)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no atexit handlers of the parent in a forked child


def run(fn, size, timeout_s, *args):
    """Runs fn(rank, size, store_path, *args) on `size` forked ranks; returns their results by rank (None
    for a rank that exited 0 without returning)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="trellis-torch-") as folder:
        procs = [ctx.Process(target=_child, args=(fn, r, size, folder, args)) for r in range(size)]
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout_s
        failed = []
        while any(p.exitcode is None for p in procs):
            bad = [r for r, p in enumerate(procs) if p.exitcode not in (None, 0)]
            if bad or time.monotonic() > deadline:
                failed = bad or ["timeout"]
                break
            for p in procs:
                p.join(0.05)
        for p in procs:
            if p.exitcode is None:
                p.kill()
            p.join()
        if failed == ["timeout"]:
            raise RuntimeError(f"{size} ranks still running after {timeout_s} s; killed")
        failed = [r for r, p in enumerate(procs) if p.exitcode != 0 and p.exitcode != -9]
        codes = {r: p.exitcode for r, p in enumerate(procs)}
        if failed:
            raise RuntimeError(f"rank(s) {failed} failed (exit codes {codes})")
        results = []
        for r in range(size):
            path = os.path.join(folder, f"result.{r}")
            if not os.path.exists(path):  # a rank that left through os._exit(0) on purpose
                results.append(None)
                continue
            with open(path, "rb") as f:
                results.append(pickle.load(f))
        return results
