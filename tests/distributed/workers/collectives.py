"""Every collective on every dtype; each rank saves what it got to OUT/rank{r}.npz.

Rank r contributes `value(r, dtype)`; the test computes what each result must be."""

import json
import sys
from pathlib import Path

import numpy as np

import gpugrad as gg
import gpugrad.distributed as dist

DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int32", "int64", "complex64"]
OPS = {"float": ["sum", "mean", "max", "min"], "int": ["sum", "max", "min"],
       "complex": ["sum", "mean"]}


def value(rank: int, dtype: str) -> np.ndarray:
    base = np.arange(12).reshape(3, 4)
    v = base * (rank + 1) + rank - 2 * (base % 3 == 0) * rank  # ranks win different elements
    if dtype.startswith("float"):
        v = v + 0.25 * rank
    if dtype == "complex64":
        v = v + 1j * rank
    if dtype == "uint8":
        v = np.abs(v)
    return v.astype(dtype)


def kind(dtype: str) -> str:
    return "float" if dtype.startswith("float") else "complex" if "complex" in dtype else "int"


def main(out: Path) -> None:
    dist.init_process_group(backend="mpi", timeout=30)
    rank, size = dist.get_rank(), dist.get_world_size()
    results = {}
    for dtype in DTYPES:
        for op in OPS[kind(dtype)]:
            t = gg.tensor(value(rank, dtype))
            assert dist.all_reduce(t, op) is None
            results[f"all_reduce/{op}/{dtype}"] = t.numpy()
        # A transposed (non-contiguous) view, started asynchronously.
        t = gg.tensor(value(rank, dtype)).T
        work = dist.all_reduce(t, "sum", async_op=True)
        assert work.wait() and work.is_completed()
        results[f"all_reduce_async_transposed/sum/{dtype}"] = t.numpy()

        t = gg.tensor(value(rank, dtype))
        dist.broadcast(t, src=size - 1)
        results[f"broadcast/{dtype}"] = t.numpy()

        gathered = [gg.zeros((3, 4), dtype=getattr(gg, dtype)) for _ in range(size)]
        dist.all_gather(gathered, gg.tensor(value(rank, dtype)))
        results[f"all_gather/{dtype}"] = np.stack([g.numpy() for g in gathered])

    scalar = gg.tensor(float(rank + 1))
    dist.all_reduce(scalar, dist.ReduceOp.MAX)
    results["all_reduce/max/scalar"] = scalar.numpy()
    empty = gg.zeros((0, 3))
    dist.all_reduce(empty)
    results["all_reduce/sum/empty"] = empty.numpy()
    dist.barrier()
    np.savez(out / f"rank{rank}.npz", **results)
    (out / f"rank{rank}.json").write_text(json.dumps(
        {"rank": rank, "world_size": size, "local_rank": dist.get_local_rank(),
         "backend": dist.get_backend()}))
    dist.destroy_process_group()
    assert not dist.is_initialized()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
