"""On a GPU: NCCL with one rank, and two MPI ranks staging CUDA tensors through the host."""

import json

import pytest

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("n, backend", [(1, "nccl"), (2, "mpi")],
                         ids=["NCCL, world size 1", "MPI staging, 2 ranks"])
def test_collectives_and_ddp_on_cuda_tensors(mpirun, tmp_path, n, backend):
    mpirun(n, "gpu.py", tmp_path, backend, env={"GPUGRAD_DEVICE": "cuda"}, timeout=300)
    for r in range(n):
        assert json.loads((tmp_path / f"rank{r}.json").read_text()) == {"ok": True, "rank": r}
