"""DDP training of an MLP; every rank starts from different random weights (DDP must
replace them with rank 0's) and trains on its slice of each global batch.

Usage: ddp_train.py OUT STEPS BUCKET_CAP_MB. Rank 0 saves the weights it started from
(OUT/initial.safetensors); every rank saves its final weights (OUT/rank{r}.safetensors)
and a few facts (OUT/rank{r}.json)."""

import json
import sys
from pathlib import Path

import numpy as np

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn
import gpugrad.nn.functional as F

PER_RANK_BATCH = 6
FEATURES, CLASSES = 10, 3


def build_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(FEATURES, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, CLASSES))


def make_optimizer(params):
    return gg.optim.SGD(params, lr=0.1, momentum=0.9)


def global_batches(steps: int, world_size: int):
    """The same batches on every rank (and in the single-process reference)."""
    rng = np.random.default_rng(123)
    for _ in range(steps):
        x = rng.standard_normal((world_size * PER_RANK_BATCH, FEATURES)).astype(np.float32)
        yield x, rng.integers(0, CLASSES, len(x))


def main(out: Path, steps: int, bucket_cap_mb: float) -> None:
    dist.init_process_group(backend="mpi", timeout=30)
    rank, size = dist.get_rank(), dist.get_world_size()
    gg.manual_seed(1000 + rank)
    model = build_mlp()
    own_start = float(sum(p.detach().sum().item() for p in model.parameters()))
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb)
    if rank == 0:
        gg.save(model.state_dict(), out / "initial.safetensors")
    optimizer = make_optimizer(ddp.parameters())
    mine = slice(rank * PER_RANK_BATCH, (rank + 1) * PER_RANK_BATCH)
    for x, y in global_batches(steps, size):
        optimizer.zero_grad()
        loss = F.cross_entropy(ddp(gg.tensor(x[mine])), gg.tensor(y[mine]))
        loss.backward()
        optimizer.step()
    gg.save(model.state_dict(), out / f"rank{rank}.safetensors")
    (out / f"rank{rank}.json").write_text(json.dumps(
        {"own_start": own_start, "buckets": len(ddp._buckets),
         "state_keys": sorted(ddp.state_dict())}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
