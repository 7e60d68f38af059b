"""A rank that hangs, dies, raises or leaves early: the job must end with a clear error
instead of waiting for the collective timeout. Usage: failures.py MODE; the last rank
misbehaves, after DistributedDataParallel is built:

- hang: it sleeps; the others' all_reduce times out after 1 s;
- die: it ends with os._exit(0) (no exit status reported);
- kill: it kills itself with SIGKILL;
- raise: it raises ValueError;
- exit1: it calls sys.exit(1);
- early: it returns normally (status 0) while the others wait in a DDP backward.

The other ranks wait in a DDP backward (in a barrier for "raise") with a 120 s timeout
(1 s for "hang"), so that only the launcher or the exited-peer check can end the job in
time. A rank that catches an error prints "CAUGHT <type>: <message>" and re-raises it."""

import os
import signal
import sys
import time

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn


def main(mode: str) -> None:
    dist.init_process_group(backend="mpi", timeout=1 if mode == "hang" else 120)
    rank, last = dist.get_rank(), dist.get_world_size() - 1
    model = nn.parallel.DistributedDataParallel(nn.Linear(3, 2))
    if rank == last:
        if mode == "hang":
            time.sleep(120)
        elif mode == "die":
            os._exit(0)
        elif mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif mode == "raise":
            raise ValueError(f"rank {rank} gives up")
        elif mode == "exit1":
            sys.exit(1)
        return  # early
    try:
        if mode == "hang":
            dist.all_reduce(gg.ones(3))
        elif mode == "raise":
            dist.barrier()
        else:
            model(gg.ones((4, 3))).sum().backward()
    except Exception as e:
        print(f"CAUGHT {type(e).__name__}: {e}", flush=True)
        raise


if __name__ == "__main__":
    main(sys.argv[1])
