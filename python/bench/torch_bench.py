"""Benchmark of the "trellis" torch.distributed backend against gloo, in the same processes.

Two measurements, each interleaved (trellis block, gloo block, trellis block, ...) and reported as the
median and min-max over repetitions; a block's time is the slowest rank's:
  * allreduce: dist.all_reduce (float32 SUM, synchronous) at each --sizes; busbw = 2(n-1)/n x bytes / time.
    The result of every block is checked (exact: the inputs are small integers).
  * ddp: DDP training steps (forward, backward with the gradient AllReduce overlapped by DDP, SGD step) of
    a model with --params parameters (default ~6.6M: ~26 MB of float32 gradients, DDP's default 25 MB
    bucket cap gives 2 buckets) and a BatchNorm layer: --model mlp (compute grows with the batch) or
    embedding (an EmbeddingBag with dense gradients: the same bytes to reduce for little compute). The
    trellis and gloo models start equal and see the same batches; their final parameters are checked to
    agree within 1e-6 relative. --bucket-view passes gradient_as_bucket_view=True to DDP (both backends).
    The same steps on a plain copy of the model (no DDP, no communication) run interleaved with them,
    on every rank at once: the "no comm" column, the floor a backend's step time can approach.

Usage: PYTHONPATH=build/python /usr/bin/python3 python/bench/torch_bench.py [--ranks 2] [--mode all]
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import harness  # noqa: E402

harness.import_torch_or_skip()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402


def slowest(seconds, gg):
    t = torch.tensor([seconds], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=gg)
    return t.item()


def bench_allreduce(rank, size, groups, gg, sizes, reps, iters):
    out = {}
    for nbytes in sizes:
        n = nbytes // 4
        times = {name: [] for name in groups}
        for rep in range(reps + 1):  # repetition 0 is a warm-up, not recorded
            for name, group in groups.items():
                x = torch.full((n,), float(rank + 1))
                dist.barrier(group=gg)
                start = time.perf_counter()
                for _ in range(iters):
                    dist.all_reduce(x, group=group)
                elapsed = slowest(time.perf_counter() - start, gg) / iters
                # each iteration multiplies the sum by `size`: exact in float32 for these values
                expect = size * (size + 1) / 2 * size ** (iters - 1)
                if not bool((x == expect).all()):
                    raise AssertionError(f"{name} allreduce of {nbytes} B: got {x[:4].tolist()}..., expected {expect}")
                if rep:
                    times[name].append(elapsed)
        out[nbytes] = times
    return out


def make_model(kind, params, width):
    """mlp: an MLP of about `params` parameters (width -> width hidden layers, BatchNorm after the
    first). embedding: an EmbeddingBag of about `params` parameters (rows of 64, dense gradients),
    BatchNorm, a linear layer: the same gradient bytes for a small fraction of the compute."""
    torch.manual_seed(0)
    if kind == "embedding":
        return EmbeddingModel(params // 64, 64)
    layers = [nn.Linear(256, width), nn.BatchNorm1d(width), nn.ReLU()]
    total = 256 * width + width + 2 * width
    while total + width * width + width + width * 10 + 10 <= params:
        layers += [nn.Linear(width, width), nn.ReLU()]
        total += width * width + width
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


class EmbeddingModel(nn.Module):
    def __init__(self, rows, dim):
        super().__init__()
        self.rows = rows
        self.emb = nn.EmbeddingBag(rows, dim, mode="mean")
        self.norm = nn.BatchNorm1d(dim)
        self.out = nn.Linear(dim, 10)

    def forward(self, x):
        # x: float features as in the MLP; 16 rows per sample picked from them
        idx = (x[:, :16].abs() * 1e6).long() % self.rows
        return self.out(F.relu(self.norm(self.emb(idx))))


def bench_ddp(rank, size, groups, gg, kind, params, width, batch, reps, steps, bucket_view):
    models = {name: DDP(make_model(kind, params, width), process_group=group, gradient_as_bucket_view=bucket_view)
              for name, group in groups.items()}
    models["no comm"] = make_model(kind, params, width)
    opts = {name: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for name, m in models.items()}
    nparams = sum(p.numel() for p in next(iter(models.values())).parameters())
    times = {name: [] for name in models}
    step_of = {name: 0 for name in models}
    for rep in range(reps + 1):  # repetition 0 is a warm-up (and DDP's bucket rebuild), not recorded
        for name in models:
            model, opt = models[name], opts[name]
            batches = []
            for s in range(steps):
                g = torch.Generator().manual_seed(7919 * (step_of[name] + s) + rank)
                batches.append((torch.randn(batch, 256, generator=g), torch.randint(0, 10, (batch,), generator=g)))
            dist.barrier(group=gg)
            start = time.perf_counter()
            for x, y in batches:
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
            elapsed = slowest(time.perf_counter() - start, gg) / steps
            step_of[name] += steps
            if rep:
                times[name].append(elapsed)
    # Same start, same batches: the two runs must have trained the same model.
    names = list(groups)
    worst = 0.0
    for pa, pb in zip(models[names[0]].parameters(), models[names[1]].parameters()):
        d = ((pa.double() - pb.double()).abs() / pb.double().abs().clamp_min(1e-30)).max().item()
        worst = max(worst, d)
    if not worst <= 1e-6:
        raise AssertionError(f"DDP over {names[0]} and {names[1]} trained different parameters (rel diff {worst})")
    return {"times": times, "params": nparams, "grad_mb": nparams * 4 / 1e6, "param_rel_diff": worst}


def rank_main(rank, size, store_path, args):
    import trellis_torch  # noqa: F401

    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=size,
                            timeout=timedelta(seconds=300))
    gg = dist.group.WORLD
    groups = {"trellis": dist.new_group(backend="trellis"), "gloo": dist.new_group(backend="gloo")}
    result = {}
    if args.mode in ("allreduce", "all"):
        result["allreduce"] = bench_allreduce(rank, size, groups, gg, args.sizes, args.reps, args.iters)
    if args.mode in ("ddp", "all"):
        result["ddp"] = bench_ddp(rank, size, groups, gg, args.model, args.params, args.width, args.batch, args.reps,
                                  args.steps, args.bucket_view)
    for g in groups.values():
        dist.destroy_process_group(g)
    dist.destroy_process_group()
    return result


def summary(values, scale=1.0, fmt="{:.3g}"):
    v = [x * scale for x in values]
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"


def size_arg(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return [int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s) for s in text.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--mode", choices=["allreduce", "ddp", "all"], default="all")
    ap.add_argument("--reps", type=int, default=7, help="recorded repetitions per backend (plus one warm-up)")
    ap.add_argument("--sizes", type=size_arg, default=size_arg("1M,64M"), help="allreduce sizes in bytes (K/M suffix)")
    ap.add_argument("--iters", type=int, default=10, help="allreduce calls per block")
    ap.add_argument("--model", choices=["mlp", "embedding"], default="mlp", help="DDP model (see make_model)")
    ap.add_argument("--params", type=int, default=6_600_000, help="DDP model size (parameters)")
    ap.add_argument("--width", type=int, default=1024, help="DDP hidden layer width")
    ap.add_argument("--batch", type=int, default=8, help="DDP batch per rank")
    ap.add_argument("--steps", type=int, default=5, help="DDP steps per block")
    ap.add_argument("--bucket-view", action="store_true", help="DDP(gradient_as_bucket_view=True) for both backends")
    args = ap.parse_args()
    print(f"# torch {torch.__version__}, {args.ranks} ranks on {os.cpu_count()} CPUs, torch threads 1 per rank, load average "
          f"{os.getloadavg()[0]:.1f}; "
          f"{args.reps} interleaved repetitions per backend; median (min-max); time = slowest rank")
    res = harness.run(rank_main, args.ranks, 1800, args)[0]
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")
    n = args.ranks
    if "allreduce" in res:
        print("\n| dist.all_reduce float32 | trellis busbw GB/s | gloo busbw GB/s | trellis time | gloo time | "
              "gloo time / trellis time |")
        print("|---|---|---|---|---|---|")
        for nbytes, t in res["allreduce"].items():
            bw = lambda s: 2 * (n - 1) / n * nbytes / s / 1e9  # noqa: E731
            ratio = statistics.median(t["gloo"]) / statistics.median(t["trellis"])
            print(f"| {nbytes / (1 << 20):g} MiB | {summary([bw(s) for s in t['trellis']])} | "
                  f"{summary([bw(s) for s in t['gloo']])} | {summary(t['trellis'], 1e3)} ms | "
                  f"{summary(t['gloo'], 1e3)} ms | {ratio:.2f}x |")
    if "ddp" in res:
        d = res["ddp"]
        t = d["times"]
        ratio = statistics.median(t["gloo"]) / statistics.median(t["trellis"])
        print(f"\nDDP, {args.model} model: {d['params']} parameters ({d['grad_mb']:.1f} MB of float32 gradients), batch {args.batch} per "
              f"rank, {args.steps} steps per block, gradient_as_bucket_view={args.bucket_view}; trellis and gloo final "
              f"parameters agree within {d['param_rel_diff']:.3g} relative")
        floor = statistics.median(t["no comm"])
        over = lambda name: statistics.median(t[name]) - floor  # noqa: E731
        print("\n| DDP step | trellis ms | gloo ms | no comm ms | gloo / trellis | above no comm: trellis, gloo ms |")
        print("|---|---|---|---|---|---|")
        print(f"| {n} ranks | {summary(t['trellis'], 1e3)} | {summary(t['gloo'], 1e3)} | {summary(t['no comm'], 1e3)} | "
              f"{ratio:.2f}x | {over('trellis') * 1e3:.3g}, {over('gloo') * 1e3:.3g} |")


if __name__ == "__main__":
    main()
