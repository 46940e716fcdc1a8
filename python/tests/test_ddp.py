"""DDP training over the "trellis" backend matches the same training over gloo.

2 ranks; "trellis" is the default group (init_process_group("trellis")), gloo a second group. A small
MLP with a BatchNorm layer trains 50 SGD steps (momentum) on per-rank batches, once with DDP over each
group, from the same initial weights and data. Checked on every rank: each step's loss over trellis is
within 1e-6 relative of gloo's, and so is every final parameter and buffer; the loss goes down; and
the final parameters of the trellis run are bit-identical across ranks. Then the same two runs with
DDP's fp16_compress_hook (a Python hook chaining .then() on the Work's Future): within 1e-3 relative
(float16's precision).

Usage: test_ddp.py [--ranks 2] [--steps 50]
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
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

RTOL = 1e-6
RTOL_FP16_HOOK = 1e-3


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 10))


TEACHER = torch.Generator().manual_seed(4242)
W_TEACHER = torch.randn(32, 10, generator=TEACHER)


def train(group, rank, steps, hook=None):
    model = make_model()
    ddp = DDP(model, process_group=group)  # broadcast_buffers: BatchNorm statistics come from rank 0
    if hook is not None:
        ddp.register_comm_hook(group, hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(steps):
        g = torch.Generator().manual_seed(10007 * step + rank)
        x = torch.randn(16, 32, generator=g)
        y = (x @ W_TEACHER).argmax(dim=1)  # a learnable target: the loss must go down
        opt.zero_grad()
        loss = F.cross_entropy(ddp(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    return torch.tensor(losses, dtype=torch.float64), params, buffers


def rel_diff(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs() / b.abs().clamp_min(1e-30)).max().item() if a.numel() else 0.0


def rank_main(rank, size, store_path, steps):
    import trellis_torch

    dist.init_process_group("trellis", init_method=f"file://{store_path}", rank=rank, world_size=size,
                            timeout=timedelta(seconds=120))
    assert dist.get_backend() == "trellis"
    tg = dist.group.WORLD
    assert isinstance(tg, trellis_torch.ProcessGroupTrellis), type(tg)
    gg = dist.new_group(backend="gloo")

    t_losses, t_params, t_buffers = train(tg, rank, steps)
    g_losses, g_params, g_buffers = train(gg, rank, steps)
    t_state, g_state = {**t_params, **t_buffers}, {**g_params, **g_buffers}

    failures = []
    loss_diff = rel_diff(t_losses, g_losses)
    if not loss_diff <= RTOL:
        failures.append(f"losses differ from gloo's by {loss_diff:.3g} relative (trellis {t_losses.tolist()}, "
                        f"gloo {g_losses.tolist()})")
    if not torch.isfinite(t_losses).all() or not t_losses[-5:].mean() < t_losses[:5].mean():
        failures.append(f"training did not progress: losses {t_losses.tolist()}")
    param_diff = 0.0
    for name, t in t_state.items():
        d = rel_diff(t, g_state[name])
        param_diff = max(param_diff, d)
        if not d <= RTOL:
            failures.append(f"final {name} differs from gloo's by {d:.3g} relative")
    # identical across ranks: gather every rank's final parameters (trellis run) through gloo. (Buffers
    # are not: DDP broadcasts rank 0's BatchNorm statistics before each forward, and the last forward
    # then updates them on each rank from its own batch, with gloo as with trellis.)
    flat = torch.cat([t.double().reshape(-1) for t in t_params.values()])
    everyone = [torch.empty_like(flat) for _ in range(size)]
    dist.all_gather(everyone, flat, group=gg)
    for r in range(size):
        if not torch.equal(everyone[r], flat):
            n = int((everyone[r] != flat).sum())
            failures.append(f"final parameters differ between rank {rank} and rank {r} ({n} elements)")
    # A Python communication hook chaining on the Future (float16 compression: a float16 AllReduce,
    # then a .then() callback that decompresses): same check against gloo, to float16's precision.
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import fp16_compress_hook

    h_losses, h_params, _ = train(tg, rank, steps, fp16_compress_hook)
    hg_losses, hg_params, _ = train(gg, rank, steps, fp16_compress_hook)
    hook_diff = max([rel_diff(h_losses, hg_losses)] + [rel_diff(h_params[k], hg_params[k]) for k in h_params])
    if not hook_diff <= RTOL_FP16_HOOK:
        failures.append(f"fp16_compress_hook run differs from gloo's by {hook_diff:.3g} relative")
    bitwise = all(torch.equal(t_state[k], g_state[k]) for k in t_state) and torch.equal(t_losses, g_losses)
    dist.destroy_process_group(gg)
    dist.destroy_process_group()
    for f in failures:
        print(f"[rank {rank}] FAIL {f}", flush=True)
    return {"failures": len(failures), "loss_diff": loss_diff, "param_diff": param_diff, "bitwise": bitwise,
            "hook_diff": hook_diff,
            "first_loss": t_losses[0].item(), "last_loss": t_losses[-1].item(), "elements": flat.numel()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    results = harness.run(rank_main, args.ranks, 240, args.steps)
    for r, res in enumerate(results):
        print(f"rank {r}: loss {res['first_loss']:.6f} -> {res['last_loss']:.6f} over {args.steps} steps; "
              f"vs gloo: losses max rel diff {res['loss_diff']:.3g}, final params/buffers max rel diff "
              f"{res['param_diff']:.3g}, {res['elements']} parameters identical across ranks, bit-identical to gloo: {res['bitwise']}; "
              f"fp16_compress_hook run vs gloo max rel diff {res['hook_diff']:.3g}; {res['failures']} failed checks")
    sys.exit(1 if any(res["failures"] for res in results) else 0)


if __name__ == "__main__":
    main()
