"""Gradient accumulation with DDP: micro-batch 0 inside no_sync(), micro-batch 1 outside.

Usage: no_sync.py OUT. Rank 0 saves the initial weights; every rank saves its local
gradients after the no_sync backward (they must differ between ranks) and after the
synchronised backward (OUT/rank{r}-local.safetensors, OUT/rank{r}-synced.safetensors)."""

import sys
from pathlib import Path

import numpy as np
from ddp_train import CLASSES, FEATURES, PER_RANK_BATCH, build_mlp

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn
import gpugrad.nn.functional as F


def micro_batches(world_size: int):
    rng = np.random.default_rng(7)
    for _ in range(2):
        x = rng.standard_normal((world_size * PER_RANK_BATCH, FEATURES)).astype(np.float32)
        yield x, rng.integers(0, CLASSES, len(x))


def grads(model) -> dict:
    return {name: p.grad for name, p in model.named_parameters()}


def main(out: Path) -> None:
    dist.init_process_group(backend="mpi", timeout=30)
    rank, size = dist.get_rank(), dist.get_world_size()
    gg.manual_seed(rank)
    model = build_mlp()
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.002)
    if rank == 0:
        gg.save(model.state_dict(), out / "initial.safetensors")
    mine = slice(rank * PER_RANK_BATCH, (rank + 1) * PER_RANK_BATCH)
    (x0, y0), (x1, y1) = micro_batches(size)
    with ddp.no_sync():
        F.cross_entropy(ddp(gg.tensor(x0[mine])), gg.tensor(y0[mine])).backward()
    gg.save(grads(model), out / f"rank{rank}-local.safetensors")
    F.cross_entropy(ddp(gg.tensor(x1[mine])), gg.tensor(y1[mine])).backward()
    gg.save(grads(model), out / f"rank{rank}-synced.safetensors")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
