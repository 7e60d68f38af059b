"""Prints what a rank sees: its rank, world size, the launcher's variables, its arguments."""

import os
import sys

import gpugrad.distributed as dist

dist.init_process_group(backend="mpi", timeout=30)
print(f"rank {dist.get_rank()} of {dist.get_world_size()} nproc={os.environ['GPUGRAD_NPROC']} "
      f"threads={os.environ['OMP_NUM_THREADS']} args={sys.argv[1:]}", flush=True)
dist.destroy_process_group()
