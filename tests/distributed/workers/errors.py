"""Bad calls on 2 ranks: each is caught and its error type and message are written to
OUT/rank{r}.json (the job itself must end normally)."""

import json
import sys
from pathlib import Path

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn


def main(out: Path) -> None:
    dist.init_process_group(backend="mpi", timeout=30)
    rank = dist.get_rank()
    x = gg.zeros((2, 3))
    cases = {
        "all_gather_length": lambda: dist.all_gather([gg.zeros((2, 3))], x),
        "all_gather_shape": lambda: dist.all_gather([gg.zeros((2, 3)), gg.zeros((3, 2))], x),
        "all_gather_dtype": lambda: dist.all_gather(
            [gg.zeros((2, 3)), gg.zeros((2, 3), dtype=gg.float64)], x),
        "mean_of_integers": lambda: dist.all_reduce(gg.zeros(3, dtype=gg.int64), "mean"),
        "max_of_complex": lambda: dist.all_reduce(gg.zeros(3, dtype=gg.complex64), "max"),
        "bool_sum": lambda: dist.all_reduce(gg.zeros(3, dtype=gg.bool), "sum"),
        "unknown_op": lambda: dist.all_reduce(x, "median"),
        "broadcast_src": lambda: dist.broadcast(x, src=2),
        "not_a_tensor": lambda: dist.all_reduce([1.0, 2.0]),
        "init_twice": lambda: dist.init_process_group(backend="mpi"),
        # Rank 1 builds a wider first layer: both ranks must name it.
        "ddp_shape": lambda: nn.parallel.DistributedDataParallel(
            nn.Sequential(nn.Linear(4, 6 if rank == 0 else 5), nn.Linear(6, 2))),
        # Rank 1 has an extra layer.
        "ddp_count": lambda: nn.parallel.DistributedDataParallel(
            nn.Sequential(*[nn.Linear(4, 4) for _ in range(2 + rank)])),
        "ddp_names": lambda: nn.parallel.DistributedDataParallel(
            nn.Sequential(nn.Linear(4, 4, bias=rank == 0), nn.Linear(4, 4))),
    }
    caught = {}
    for name, case in cases.items():
        try:
            case()
        except Exception as e:  # noqa: BLE001 - recording whatever is raised is the point
            caught[name] = [type(e).__name__, str(e)]
        else:
            caught[name] = None
    dist.barrier()  # the group still works after all of these
    (out / f"rank{rank}.json").write_text(json.dumps(caught))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
