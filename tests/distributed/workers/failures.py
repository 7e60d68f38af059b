"""A rank that hangs, dies, or raises: the others must fail with a clear error instead of
waiting forever. Usage: failures.py MODE, MODE one of

- hang: rank 1 sleeps; rank 0's all_reduce times out after 1 s;
- die: rank 1 exits without a word after DDP is built; rank 0's backward times out;
- raise: rank 1 raises; the launcher's hook ends the job while rank 0 waits in a barrier.

Rank 0 prints the error it caught as "CAUGHT <type>: <message>" and re-raises it."""

import os
import sys
import time

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn


def main(mode: str) -> None:
    dist.init_process_group(backend="mpi", timeout=1 if mode != "raise" else 120)
    rank = dist.get_rank()
    model = nn.parallel.DistributedDataParallel(nn.Linear(3, 2))
    if rank == 1:
        if mode == "hang":
            time.sleep(120)
        elif mode == "die":
            os._exit(0)
        else:
            raise ValueError("rank 1 gives up")
    try:
        if mode == "hang":
            dist.all_reduce(gg.ones(3))
        elif mode == "die":
            model(gg.ones((4, 3))).sum().backward()
        else:
            dist.barrier()
    except Exception as e:
        print(f"CAUGHT {type(e).__name__}: {e}", flush=True)
        raise


if __name__ == "__main__":
    main(sys.argv[1])
