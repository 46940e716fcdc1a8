"""A rank of a "trellis" group dies: the survivors' calls fail, and say why, instead of hanging.

2 ranks. After one good allreduce, rank 1 exits without any cleanup (os._exit). Rank 0's next
allreduce must raise (through Work.wait and through its Future) a message naming the backend, rank 0
and the failed call, well before the group's timeout; a later call fails at once with the first error;
the group can then be destroyed without waiting for the dead rank.

Usage: test_fault.py
"""

import os
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

harness.import_torch_or_skip()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

GROUP_TIMEOUT_S = 60


def rank_main(rank, size, store_path):
    import trellis_torch  # noqa: F401

    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=size,
                            timeout=timedelta(seconds=GROUP_TIMEOUT_S))
    tg = dist.new_group(backend="trellis", timeout=timedelta(seconds=GROUP_TIMEOUT_S))
    x = torch.ones(1 << 20)
    dist.all_reduce(x, group=tg)
    assert bool((x == size).all())
    dist.barrier()  # gloo: both ranks are past the good allreduce
    if rank == 1:
        os._exit(0)  # dies without destroying anything; harness counts exit 0 as done
    failures = []
    start = time.monotonic()
    work = dist.all_reduce(torch.ones(1 << 20), group=tg, async_op=True)
    try:
        work.wait()
        failures.append("allreduce with a dead peer did not fail")
    except RuntimeError as e:
        msg = str(e)
        took = time.monotonic() - start
        print(f"[rank 0] failed after {took:.1f} s: {msg}", flush=True)
        for word in ("trellis", "rank 0 of 2", "allreduce of 1048576 x Float"):
            if word not in msg:
                failures.append(f"error message lacks {word!r}: {msg!r}")
        if took > GROUP_TIMEOUT_S / 2:
            failures.append(f"the failure took {took:.1f} s, close to the {GROUP_TIMEOUT_S} s timeout")
    try:
        work.get_future().wait()
        failures.append("the future of the failed allreduce completed without error")
    except RuntimeError as e:
        if "trellis" not in str(e):
            failures.append(f"the future's error is not the backend's: {e}")
    start = time.monotonic()
    try:
        dist.broadcast(torch.ones(10), src=0, group=tg)
        failures.append("a call after the failure did not fail")
    except RuntimeError as e:
        took = time.monotonic() - start
        print(f"[rank 0] next call failed after {took:.2f} s: {e}", flush=True)
        if took > 5:
            failures.append(f"a call after the failure took {took:.1f} s to fail")
    start = time.monotonic()
    dist.destroy_process_group(tg)
    del tg
    import gc

    gc.collect()
    took = time.monotonic() - start
    if took > 10:
        failures.append(f"destroying the failed group took {took:.1f} s")
    for f in failures:
        print(f"[rank 0] FAIL {f}", flush=True)
    if failures:
        raise SystemExit(1)
    return 0


def main():
    harness.run(rank_main, 2, 100)
    print("a dead rank makes the survivor's calls fail promptly, with the backend's message")


if __name__ == "__main__":
    main()
