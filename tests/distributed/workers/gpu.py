"""Collectives and a DDP step on CUDA tensors. Usage: gpu.py OUT BACKEND, where BACKEND is
"nccl" (NCCL on the GPU) or "mpi" (MPI with the GPU tensors staged through the host).
Each rank checks the values itself and writes OUT/rank{r}.json when all were right."""

import json
import sys
from pathlib import Path

import numpy as np

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn
import gpugrad.nn.functional as F


def main(out: Path, backend: str) -> None:
    dist.init_process_group(backend=backend, timeout=60)
    rank, size = dist.get_rank(), dist.get_world_size()
    assert dist.get_backend() == backend
    assert gg.default_device().type == "cuda", gg.default_device()
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    values = [base * (r + 1) - 3 * r for r in range(size)]
    for dtype in (gg.float32, gg.float64, gg.int64):
        for op in ("sum", "max", "min") + (("mean",) if dtype.is_floating_point else ()):
            t = gg.tensor(values[rank], dtype=dtype, device="cuda")
            dist.all_reduce(t, op)
            stacked = np.stack(values).astype(dtype.np)
            want = stacked.mean(0) if op == "mean" else getattr(stacked, op)(0)
            np.testing.assert_allclose(t.cpu().numpy(), want, rtol=1e-6, err_msg=f"{op} {dtype}")
    t = gg.tensor(values[rank], device="cuda").T  # non-contiguous
    dist.all_reduce(t)
    np.testing.assert_allclose(t.cpu().numpy(), np.sum(values, 0).T, rtol=1e-6)
    t = gg.tensor(values[rank], device="cuda")
    dist.broadcast(t, src=size - 1)
    np.testing.assert_array_equal(t.cpu().numpy(), values[size - 1])
    gathered = [gg.zeros((3, 4), device="cuda") for _ in range(size)]
    dist.all_gather(gathered, gg.tensor(values[rank], device="cuda"))
    np.testing.assert_array_equal(np.stack([g.cpu().numpy() for g in gathered]),
                                  np.stack(values))
    dist.barrier()

    # DDP (several buckets) against one process on the concatenated batch.
    gg.manual_seed(rank)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)).to("cuda")
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.0002)
    reference = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)).to("cuda")
    reference.load_state_dict(model.state_dict())
    rng = np.random.default_rng(0)
    x = gg.tensor(rng.standard_normal((4 * size, 8)).astype(np.float32), device="cuda")
    y = gg.tensor(rng.integers(0, 3, 4 * size), device="cuda")
    mine = slice(4 * rank, 4 * rank + 4)
    F.cross_entropy(ddp(x[mine]), y[mine]).backward()
    F.cross_entropy(reference(x), y).backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.cpu().numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=name)
    (out / f"rank{rank}.json").write_text(json.dumps({"ok": True, "rank": rank}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
