"""Collectives whose calls differ across ranks (shapes, dtypes, devices, the collective
itself, DDP steps): every rank must raise a RuntimeError naming the collective, the
ranks and the difference, instead of exchanging garbage. Each case's error type and
message go to OUT/rank{r}.json; after each case a correct all_reduce shows that the
group is still usable (its result goes to the JSON too).

Usage: mismatch.py OUT"""

import json
import sys
from pathlib import Path

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn


def ddp_uneven(rank: int) -> None:
    gg.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(nn.Linear(3, 2))
    for _ in range(3 if rank == 0 else 2):  # rank 0 has one batch more
        model(gg.ones((4, 3))).sum().backward()
    dist.all_reduce(gg.ones(()))  # the epoch's loss, say


def main(out: Path) -> None:
    dist.init_process_group(backend="mpi", timeout=30)
    rank = dist.get_rank()
    cases = {
        "shape": lambda: dist.all_reduce(gg.ones(3 + rank)),
        "dtype": lambda: dist.all_reduce(gg.ones(3, dtype=gg.float32 if rank == 0
                                                 else gg.float64)),
        "op": lambda: dist.all_reduce(gg.ones(3), "sum" if rank == 0 else "max"),
        "broadcast_shape": lambda: dist.broadcast(gg.ones((2, 3) if rank == 0 else (3, 2))),
        "all_gather_dtype": lambda: dist.all_gather(
            [gg.ones(2, dtype=gg.int64 if rank else gg.int32) for _ in range(2)],
            gg.ones(2, dtype=gg.int64 if rank else gg.int32)),
        "different_collectives": lambda: dist.barrier() if rank == 0
        else dist.all_reduce(gg.ones(3)),
        "ddp_uneven": lambda: ddp_uneven(rank),
    }
    caught = {}
    for name, case in cases.items():
        try:
            case()
            caught[name] = None
        except Exception as e:
            caught[name] = [type(e).__name__, str(e)]
        check = gg.full((2,), float(rank + 1))
        dist.all_reduce(check)
        caught[f"{name}_after"] = check.tolist()
    (out / f"rank{rank}.json").write_text(json.dumps(caught))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
