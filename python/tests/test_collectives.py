"""Every collective of the "trellis" torch.distributed backend against gloo, on the same inputs.

Each rank creates a gloo default group and a trellis group, runs every case through both on copies of
the same per-rank inputs, and compares: data movement and integer reductions must be equal, MIN/MAX
too; floating sums, products and averages within 1e-6 relative (float32/64/complex) or a few units in
the last place (float16: 2^-9, bfloat16: 2^-6), since the two libraries add in different orders.
Where gloo lacks an operation or dtype, the reference is still gloo's result on the same inputs, through
an operation it has (stated per case): reduce_scatter = this rank's slice of gloo's allreduce, bfloat16 =
gloo on float32 rounded once, bool = gloo on bytes (SUM as MAX, PRODUCT as MIN, like NCCL), AVG = gloo's
SUM / world size.

Usage: test_collectives.py --ranks N
"""

import argparse
import os
import sys
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

harness.import_torch_or_skip()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

R = dist.ReduceOp
GLOO_TYPES = {torch.float32, torch.float64, torch.float16, torch.int8, torch.uint8, torch.int32, torch.int64}
REDUCE_TYPES = [torch.uint8, torch.int8, torch.int32, torch.int64, torch.float16, torch.bfloat16, torch.float32,
                torch.float64, torch.bool]
MOVE_TYPES = REDUCE_TYPES + [torch.int16, torch.complex64, torch.complex128]
OPS = [R.SUM, R.PRODUCT, R.MIN, R.MAX, R.AVG]
SIZES = [1, 7, 1023, 65536 + 3]  # the last is past TRELLIS_DIRECT_MIN_BYTES for every dtype
RTOL = {torch.float32: 1e-6, torch.float64: 1e-6, torch.complex64: 1e-6, torch.complex128: 1e-6,
        torch.float16: 2.0**-9, torch.bfloat16: 2.0**-6}


def inputs(dtype, n, rank, seed, op=None):
    """Per-rank inputs: floats in [0.5, 1.5) (sums and products without cancellation or overflow),
    small integers (products fit every integer type)."""
    g = torch.Generator().manual_seed(seed * 977 + rank)
    if dtype.is_complex:
        return torch.view_as_complex(torch.rand(n, 2, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    if dtype.is_floating_point:
        return (torch.rand(n, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, (n,), generator=g).bool()
    if dtype == torch.uint8 or (op is not None and op == R.PRODUCT):
        lo, hi = (0, 4) if dtype == torch.uint8 else (-3, 4)
    else:
        lo, hi = (-100, 100) if dtype in (torch.int8, torch.int16) else (-100000, 100000)
    return torch.randint(lo, hi, (n,), generator=g).to(dtype)


def gloo_bytes(t):
    """t itself when gloo moves its dtype, else a byte view of it (gloo moves bytes for any dtype)."""
    return t if t.dtype in GLOO_TYPES else t.view(torch.uint8)


class Checks:
    def __init__(self, rank):
        self.rank = rank
        self.count = 0
        self.failures = []

    def same(self, what, got, ref, rtol=None):
        self.count += 1
        if got.dtype != ref.dtype or got.shape != ref.shape:
            self.failures.append(f"{what}: got {got.dtype} {tuple(got.shape)}, gloo {ref.dtype} {tuple(ref.shape)}")
            return
        if rtol is None or torch.equal(got, ref):
            if not torch.equal(got, ref):
                bad = (got != ref).nonzero()[0].tolist()
                self.failures.append(f"{what}: differs from gloo at {bad}: {got[tuple(bad)].item()} vs "
                                     f"{ref[tuple(bad)].item()} ({int((got != ref).sum())} elements differ)")
            return
        wide = torch.complex128 if got.dtype.is_complex else torch.float64
        g, r = got.to(wide), ref.to(wide)
        err = ((g - r).abs() / r.abs().clamp_min(1e-300)).max().item()
        if not err <= rtol:
            i = int(((g - r).abs() / r.abs().clamp_min(1e-300)).argmax())
            self.failures.append(f"{what}: relative error {err:.3g} > {rtol:.3g} at {i}: {got[i].item()} vs gloo "
                                 f"{ref[i].item()}")


def tol(dtype, op):
    if op in (R.MIN, R.MAX) or not (dtype.is_floating_point or dtype.is_complex):
        return None
    return RTOL[dtype]


def gloo_allreduce(t, op, size, gg):
    """gloo's allreduce of t (a copy), through an operation gloo has for every dtype and op we test."""
    if t.dtype == torch.bool:
        y = t.to(torch.uint8)
        dist.all_reduce(y, op={R.SUM: R.MAX, R.PRODUCT: R.MIN}.get(op, op), group=gg)
        return y.bool()
    if t.dtype == torch.bfloat16:
        return gloo_allreduce(t.float(), op, size, gg).to(torch.bfloat16)
    y = t.clone()
    dist.all_reduce(y, op=R.SUM if op == R.AVG else op, group=gg)
    if op == R.AVG:
        y = y / size if y.dtype.is_floating_point else torch.div(y, size, rounding_mode="trunc")
    return y


def supported(dtype, op):
    return not (dtype == torch.bool and op == R.AVG)


def case_allreduce(c, rank, size, tg, gg):
    seed = 0
    for dtype in REDUCE_TYPES:
        for op in OPS:
            if not supported(dtype, op):
                continue
            for n in SIZES:
                seed += 1
                x = inputs(dtype, n, rank, seed, op)
                got = x.clone()
                work = dist.all_reduce(got, op=op, group=tg, async_op=True)
                work.wait()
                c.same(f"allreduce {dtype} {op} n={n}", got, gloo_allreduce(x, op, size, gg), tol(dtype, op))
    # complex: SUM and AVG (reduced as (re, im) pairs); gloo sums complex tensors itself
    for dtype in (torch.complex64, torch.complex128):
        x = inputs(dtype, 1023, rank, 99)
        got = x.clone()
        dist.all_reduce(got, group=tg)
        ref = x.clone()
        dist.all_reduce(ref, group=gg)
        c.same(f"allreduce {dtype} SUM", got, ref, RTOL[dtype])
    # large float32 SUM: 4M+1 elements (16 MiB), the ring/direct path with many chunks
    x = inputs(torch.float32, (1 << 22) + 1, rank, 7)
    got = x.clone()
    dist.all_reduce(got, group=tg)
    c.same("allreduce float32 SUM n=4M+1", got, gloo_allreduce(x, R.SUM, size, gg), 1e-6)
    # non-contiguous: every other column of a matrix; the rest of the matrix must stay as it was
    base = inputs(torch.float64, 64 * 33, rank, 11).reshape(64, 33)
    view_in = base[:, ::2]
    got = base.clone()
    dist.all_reduce(got[:, ::2], group=tg)
    ref = gloo_allreduce(view_in.contiguous(), R.SUM, size, gg)
    c.same("allreduce non-contiguous (written view)", got[:, ::2].contiguous(), ref, 1e-6)
    c.same("allreduce non-contiguous (untouched columns)", got[:, 1::2].contiguous(), base[:, 1::2].contiguous())
    # transposed
    got = base.clone().t()
    dist.all_reduce(got, op=R.MAX, group=tg)
    c.same("allreduce transposed MAX", got, gloo_allreduce(base.t().contiguous(), R.MAX, size, gg))
    # coalesced
    xs = [inputs(torch.float32, n, rank, 40 + n) for n in (3, 1000, 17)]
    got = [x.clone() for x in xs]
    dist.all_reduce_coalesced(got, group=tg)
    ref = [x.clone() for x in xs]
    dist.all_reduce_coalesced(ref, group=gg)
    for i in range(3):
        c.same(f"allreduce_coalesced tensor {i}", got[i], ref[i], 1e-6)


def case_broadcast(c, rank, size, tg, gg):
    for i, dtype in enumerate(MOVE_TYPES):
        for root in range(size):
            for n in (1, 1023, 65536 + 3):
                x = inputs(dtype, n, rank, 1000 + i * 10 + root)
                got = x.clone()
                dist.broadcast(got, src=root, group=tg)
                ref = x.clone()
                dist.broadcast(gloo_bytes(ref), src=root, group=gg)
                c.same(f"broadcast {dtype} root {root} n={n}", got, ref)
    base = inputs(torch.int64, 40 * 7, rank, 5).reshape(40, 7)
    got = base.clone()
    dist.broadcast(got[::3, 1:5], src=size - 1, group=tg)
    ref = base.clone()
    view = ref[::3, 1:5].contiguous()
    dist.broadcast(view, src=size - 1, group=gg)
    ref[::3, 1:5] = view
    c.same("broadcast non-contiguous view", got, ref)


def case_reduce(c, rank, size, tg, gg):
    seed = 2000
    for dtype in REDUCE_TYPES:
        for op in OPS:
            if not supported(dtype, op):
                continue
            for root in range(size):
                seed += 1
                x = inputs(dtype, 1023, rank, seed, op)
                got = x.clone()
                dist.reduce(got, dst=root, op=op, group=tg)
                ref = gloo_allreduce(x, op, size, gg)  # the root's result of gloo's reduce is this
                if rank == root:
                    c.same(f"reduce {dtype} {op} root {root}", got, ref, tol(dtype, op))
    # gloo's own reduce, float32 SUM, large
    x = inputs(torch.float32, 65536 + 3, rank, 77)
    got, ref = x.clone(), x.clone()
    dist.reduce(got, dst=size - 1, group=tg)
    dist.reduce(ref, dst=size - 1, group=gg)
    if rank == size - 1:
        c.same("reduce float32 SUM (gloo reduce)", got, ref, 1e-6)


def case_allgather(c, rank, size, tg, gg):
    for i, dtype in enumerate(MOVE_TYPES):
        for n in (1, 1023, 65536 + 3):
            x = inputs(dtype, n, rank, 3000 + i)
            got = [torch.empty_like(x) for _ in range(size)]
            dist.all_gather(got, x, group=tg)
            ref = [gloo_bytes(torch.empty_like(x)) for _ in range(size)]
            dist.all_gather(ref, gloo_bytes(x), group=gg)
            ref = [r.view(dtype) for r in ref]
            for r in range(size):
                c.same(f"allgather {dtype} n={n} from rank {r}", got[r], ref[r])
            # _allgather_base (all_gather_into_tensor): gloo has none; the reference is gloo's
            # all_gather above, concatenated
            flat = torch.empty(size * n, dtype=dtype)
            dist.all_gather_into_tensor(flat, x, group=tg)
            c.same(f"all_gather_into_tensor {dtype} n={n}", flat, torch.cat(ref))
    # outputs that are non-contiguous views; an in-place all_gather_into_tensor
    x = inputs(torch.float32, 6 * 5, rank, 31).reshape(6, 5)
    outs = [torch.zeros(5, 6).t() for _ in range(size)]
    dist.all_gather(outs, x, group=tg)
    ref = [torch.empty(6, 5) for _ in range(size)]
    dist.all_gather(ref, x, group=gg)
    for r in range(size):
        c.same(f"allgather into transposed output {r}", outs[r], ref[r])
    flat = torch.zeros(size * 30)
    flat[rank * 30:(rank + 1) * 30] = x.reshape(-1)
    dist.all_gather_into_tensor(flat, flat[rank * 30:(rank + 1) * 30], group=tg)
    c.same("all_gather_into_tensor in place", flat, torch.cat([r.reshape(-1) for r in ref]))


def case_reduce_scatter(c, rank, size, tg, gg):
    # gloo has no reduce_scatter: the reference is this rank's slice of gloo's allreduce
    seed = 4000
    for dtype in REDUCE_TYPES:
        for op in OPS:
            if not supported(dtype, op):
                continue
            for n in (1, 1023, 16384 + 3):
                seed += 1
                x = inputs(dtype, size * n, rank, seed, op)
                ref = gloo_allreduce(x, op, size, gg)[rank * n:(rank + 1) * n]
                got = torch.empty(n, dtype=dtype)
                dist.reduce_scatter(got, list(x.split(n)), op=op, group=tg)
                c.same(f"reduce_scatter {dtype} {op} n={n}", got, ref, tol(dtype, op))
                got = torch.empty(n, dtype=dtype)
                dist.reduce_scatter_tensor(got, x, op=op, group=tg)
                c.same(f"reduce_scatter_tensor {dtype} {op} n={n}", got, ref, tol(dtype, op))
    x = inputs(torch.float64, size * 100, rank, 4999)
    ref = gloo_allreduce(x, R.SUM, size, gg)[rank * 100:(rank + 1) * 100]
    inplace = x.clone()
    dist.reduce_scatter_tensor(inplace[rank * 100:(rank + 1) * 100], inplace, group=tg)
    c.same("reduce_scatter_tensor in place", inplace[rank * 100:(rank + 1) * 100], ref, 1e-6)
    out = torch.zeros(5, 20, dtype=torch.float64).t()  # a non-contiguous output
    pieces = [t.reshape(20, 5) for t in x.split(100)]
    dist.reduce_scatter(out, pieces, group=tg)
    c.same("reduce_scatter into transposed output", out.contiguous(), ref.reshape(20, 5), 1e-6)


def case_alltoall(c, rank, size, tg, gg):
    for i, dtype in enumerate(MOVE_TYPES):
        for n in (1, 1000, 20000):
            x = inputs(dtype, size * n, rank, 5000 + i)
            got = torch.empty_like(x)
            dist.all_to_all_single(got, x, group=tg)
            ref = gloo_bytes(torch.empty_like(x))
            dist.all_to_all_single(ref, gloo_bytes(x), group=gg)
            c.same(f"all_to_all_single even {dtype} n={n}", got, ref.view(dtype))
    # uneven splits, rows of 3 elements: rank r sends (r + p) % 3 + p rows to rank p (some zero)
    for dtype in (torch.float32, torch.int64, torch.bfloat16):
        send = [(rank + p) % 3 + p for p in range(size)]
        recv = [(p + rank) % 3 + rank for p in range(size)]
        x = inputs(dtype, sum(send) * 3, rank, 5100).reshape(-1, 3)
        got = torch.full((sum(recv), 3), -1).to(dtype)
        dist.all_to_all_single(got, x, output_split_sizes=recv, input_split_sizes=send, group=tg)
        ref = gloo_bytes(torch.empty(sum(recv), 3, dtype=dtype))
        dist.all_to_all_single(ref, gloo_bytes(x), output_split_sizes=recv, input_split_sizes=send, group=gg)
        c.same(f"all_to_all_single uneven {dtype} {send}->{recv}", got, ref.view(dtype))
    # list all_to_all (gloo has none: the reference is gloo's all_to_all_single on the same data)
    send = [p + 1 for p in range(size)]
    recv = [rank + 1] * size
    x = inputs(torch.float32, sum(send), rank, 5200)
    outs = [torch.empty(k) for k in recv]
    dist.all_to_all(outs, list(x.split(send)), group=tg)
    ref = torch.empty(sum(recv))
    dist.all_to_all_single(ref, x, output_split_sizes=recv, input_split_sizes=send, group=gg)
    c.same("all_to_all (list) uneven", torch.cat(outs), ref)


def case_gather_scatter(c, rank, size, tg, gg):
    for root in range(size):
        x = inputs(torch.float32, 1027, rank, 6000 + root)
        got = [torch.empty_like(x) for _ in range(size)] if rank == root else None
        dist.gather(x, got, dst=root, group=tg)
        ref = [torch.empty_like(x) for _ in range(size)] if rank == root else None
        dist.gather(x, ref, dst=root, group=gg)
        if rank == root:
            for r in range(size):
                c.same(f"gather root {root} from {r}", got[r], ref[r])
        chunks = [inputs(torch.int32, 513, root, 6100 + p) for p in range(size)] if rank == root else None
        got = torch.empty(513, dtype=torch.int32)
        dist.scatter(got, chunks, src=root, group=tg)
        ref = torch.empty(513, dtype=torch.int32)
        dist.scatter(ref, chunks, src=root, group=gg)
        c.same(f"scatter root {root}", got, ref)


def ring_exchange(x, rank, size, group):
    """batch_isend_irecv: send to the next rank, receive from the previous one."""
    out = torch.empty_like(x)
    ops = [dist.P2POp(dist.isend, x, (rank + 1) % size, group), dist.P2POp(dist.irecv, out, (rank - 1) % size, group)]
    for w in dist.batch_isend_irecv(ops):
        w.wait()
    return out


def case_send_recv(c, rank, size, tg, gg):
    for dtype in (torch.float32, torch.int64, torch.bool, torch.complex64):
        for n in (1, 1000, 1 << 18):  # up to 1 MiB of float32: the single-copy path
            x = inputs(dtype, n, rank, 7000 + n)
            c.same(f"batch_isend_irecv ring {dtype} n={n}", ring_exchange(x, rank, size, tg),
                   ring_exchange(gloo_bytes(x), rank, size, gg).view(dtype))
    # blocking send / recv: rank 0 sends to every other rank, which answers with what it received + rank
    for group, name in ((tg, "trellis"), (gg, "gloo")):
        x = inputs(torch.float64, 4099, 0, 7100)
        if rank == 0:
            got = []
            for p in range(1, size):
                dist.send(x, p, group=group)
            for p in range(1, size):
                y = torch.empty_like(x)
                dist.recv(y, p, group=group)
                got.append(y)
            if name == "trellis":
                mine = got
            else:
                for p in range(1, size):
                    c.same(f"send/recv reply from {p}", mine[p - 1], got[p - 1])
                    c.same(f"send/recv reply from {p} (value)", got[p - 1], x + p)
        else:
            y = torch.empty_like(x)
            dist.recv(y, 0, group=group)
            dist.send(y + rank, 0, group=group)
    # recv into a non-contiguous view
    if size >= 2 and rank in (0, 1):
        if rank == 0:
            dist.send(torch.arange(12.0), 1, group=tg)
        else:
            m = torch.zeros(4, 6)
            dist.recv(m[:, ::2], 0, group=tg)
            ref = torch.zeros(4, 6)
            ref[:, ::2] = torch.arange(12.0).reshape(4, 3)
            c.same("recv into a non-contiguous view", m, ref)


def case_barrier(c, rank, size, tg, gg, folder):
    # Rank 0 computes a little, creates a file, then enters the barrier: whoever leaves the barrier
    # must see the file (a barrier that did not wait for rank 0 would let the others look too early).
    marker = os.path.join(folder, "barrier-marker")
    for i in range(3):
        path = f"{marker}.{i}"
        if rank == 0:
            torch.randn(300, 300) @ torch.randn(300, 300)  # make rank 0 late
            with open(path, "w") as f:
                f.write("x")
        dist.barrier(group=tg)
        c.count += 1
        if not os.path.exists(path):
            c.failures.append(f"barrier {i}: left the barrier before rank 0 reached it")
        dist.barrier(group=gg)


def case_async(c, rank, size, tg, gg, store):
    """The Work returned by a call is in flight, and its Future completes on the progress thread:
    rank 0 checks that its allreduce is not complete while the other ranks are held back (they wait
    for a store key rank 0 sets only after the check)."""
    import threading

    x = torch.ones(1000) * (rank + 1)
    if rank == 0:
        work = dist.all_reduce(x, group=tg, async_op=True)
        seen = {}

        def callback(f):
            seen["thread"] = threading.get_ident()
            return f.value()

        fut = work.get_future().then(callback)
        c.count += 1
        if work.is_completed():
            c.failures.append("async: allreduce complete before the other ranks called it")
        store.set("trellis-async-go", "1")
        work.wait()
        fut.wait()
        c.count += 1
        if seen.get("thread") == threading.get_ident():
            c.failures.append("async: the future's callback ran on the calling thread, not the progress thread")
        c.same("async allreduce future value", work.get_future().value()[0], torch.ones(1000) * sum(range(1, size + 1)))
    else:
        store.wait(["trellis-async-go"])
        dist.all_reduce(x, group=tg)


def case_objects(c, rank, size, tg, gg):
    """torch's object collectives (pickles in byte tensors, sizes in Long tensors) over both groups."""
    mine = {"rank": rank, "payload": list(range(rank * 1000))}
    got, ref = [None] * size, [None] * size
    dist.all_gather_object(got, mine, group=tg)
    dist.all_gather_object(ref, mine, group=gg)
    c.count += 1
    if got != ref:
        c.failures.append("all_gather_object differs from gloo's")
    for root in range(size):
        got = [f"from {rank}", rank] if rank == root else [None, None]
        dist.broadcast_object_list(got, src=root, group=tg)
        c.count += 1
        if got != [f"from {root}", root]:
            c.failures.append(f"broadcast_object_list from {root}: got {got}")


def case_errors(c, rank, size, tg, gg):
    """Calls Trellis cannot do raise at once, on the caller, naming what is wrong (no communication)."""
    def expect(what, fn, words):
        c.count += 1
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            msg = str(e)
            if not all(w in msg for w in words):
                c.failures.append(f"errors: {what}: message {msg[:300]!r} lacks {words}")
            return
        c.failures.append(f"errors: {what}: no error raised")

    expect("BAND", lambda: dist.all_reduce(torch.ones(3, dtype=torch.int32), op=R.BAND, group=tg), ["BAND", "SUM"])
    expect("BXOR", lambda: dist.all_reduce(torch.ones(3, dtype=torch.int32), op=R.BXOR, group=tg), ["BXOR"])
    expect("int16 reduce", lambda: dist.all_reduce(torch.ones(3, dtype=torch.int16), group=tg), ["Short"])
    # torch's Python layer refuses complex MAX itself; the backend's own check is reached through the
    # ProcessGroup method
    opts = dist.AllreduceOptions()
    opts.reduceOp = R.MAX
    expect("complex MAX", lambda: tg.allreduce([torch.ones(3, dtype=torch.complex64)], opts), ["MAX", "ComplexFloat"])
    expect("bool AVG", lambda: dist.all_reduce(torch.ones(3, dtype=torch.bool), op=R.AVG, group=tg), ["AVG", "bool"])
    expect("tag", lambda: dist.send(torch.ones(3), (rank + 1) % size, group=tg, tag=5), ["tag 5"])
    bopts = dist.BroadcastOptions()
    bopts.rootRank = size + 2
    expect("broadcast root", lambda: tg.broadcast([torch.ones(3)], bopts), [f"root rank {size + 2}"])
    expect("allgather list length",
           lambda: dist.all_gather([torch.empty(3)] * (size + 1), torch.ones(3), group=tg), ["output list"])
    expect("uneven alltoall splits",
           lambda: dist.all_to_all_single(torch.empty(5), torch.ones(5), [5] + [0] * (size - 1), [4] + [0] * (size - 1),
                                          group=tg), ["split sizes add up to 4"])


CASES = ["allreduce", "broadcast", "reduce", "allgather", "reduce_scatter", "alltoall", "gather_scatter",
         "send_recv", "barrier", "async", "objects", "errors"]


def rank_main(rank, size, store_path, cases):
    import trellis_torch  # noqa: F401

    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=size,
                            timeout=timedelta(seconds=120))
    gg = dist.group.WORLD
    tg = dist.new_group(backend="trellis")
    assert dist.get_backend(tg) == "trellis", dist.get_backend(tg)
    store = dist.distributed_c10d._get_default_store()
    c = Checks(rank)
    for name in cases:
        fn = globals()[f"case_{name}"]
        before = (c.count, len(c.failures))
        if name == "barrier":
            fn(c, rank, size, tg, gg, os.path.dirname(store_path))
        elif name == "async":
            fn(c, rank, size, tg, gg, store)
        else:
            fn(c, rank, size, tg, gg)
        sys.stdout.write(f"[rank {rank}] {name}: {c.count - before[0]} checks, {len(c.failures) - before[1]} failed\n")
        sys.stdout.flush()
    dist.destroy_process_group(tg)
    dist.destroy_process_group()
    for f in c.failures:
        print(f"[rank {rank}] FAIL {f}", flush=True)
    return c.count, len(c.failures)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    args = ap.parse_args()
    results = harness.run(rank_main, args.ranks, 240, args.cases.split(","))
    checks = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    print(f"{args.ranks} ranks: {checks} checks against gloo, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
