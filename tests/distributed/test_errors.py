"""Bad states give clear errors: before init, wrong arguments, models that differ across
ranks, and ranks that hang, die or raise (the others fail instead of waiting forever)."""

import json

import pytest

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn


@pytest.mark.parametrize("call", [
    lambda: dist.all_reduce(gg.ones(2)),
    lambda: dist.broadcast(gg.ones(2), 0),
    lambda: dist.all_gather([gg.ones(2)], gg.ones(2)),
    lambda: dist.barrier(),
    lambda: dist.get_rank(),
    lambda: dist.get_world_size(),
    lambda: nn.parallel.DistributedDataParallel(nn.Linear(2, 2)),
], ids=["all_reduce", "broadcast", "all_gather", "barrier", "get_rank", "get_world_size",
        "DistributedDataParallel"])
def test_collectives_before_init_say_to_call_init_process_group(call):
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match=r"call gg\.distributed\.init_process_group\(\)"):
        call()


def test_bad_init_arguments_are_refused_before_starting_mpi():
    with pytest.raises(ValueError, match="unknown backend 'gloo'"):
        dist.init_process_group(backend="gloo")
    with pytest.raises(ValueError, match="timeout must be positive, got -1"):
        dist.init_process_group(timeout=-1)
    assert not dist.is_initialized()


@pytest.mark.skipif(gg.cuda.is_available(), reason="checks the no-GPU message")
def test_nccl_without_a_gpu_says_so():
    with pytest.raises(RuntimeError, match="backend='nccl'.*needs a CUDA GPU"):
        dist.init_process_group(backend="nccl")


@pytest.fixture(scope="module")
def errors(mpirun, tmp_path_factory):
    out = tmp_path_factory.mktemp("errors")
    mpirun(2, "errors.py", out)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.parametrize("case, error, pieces", [
    ("all_gather_length", "ValueError", ["tensor_list has 1 tensors", "world size is 2"]),
    ("all_gather_shape", "ValueError",
     ["tensor_list[1] has shape (3, 2) and dtype float32", "input tensor has shape (2, 3)"]),
    ("all_gather_dtype", "ValueError",
     ["tensor_list[1] has shape (2, 3) and dtype float64", "dtype float32"]),
    ("mean_of_integers", "TypeError", ["'mean' needs a floating-point tensor, got int64"]),
    ("max_of_complex", "TypeError", ["'max' is not defined for complex", "complex64"]),
    ("bool_sum", "TypeError", ["cannot reduce a bool tensor"]),
    ("unknown_op", "ValueError", ["unknown op 'median'"]),
    ("broadcast_src", "ValueError", ["src=2 is not a rank", "world size 2"]),
    ("not_a_tensor", "TypeError", ["expected a gg.Tensor, got list"]),
    ("init_twice", "RuntimeError", ["init_process_group() was called twice"]),
    ("ddp_shape", "RuntimeError",
     ["parameter '0.weight' has shape (6, 4) (float32) on rank 0",
      "shape (5, 4) (float32) on rank 1"]),
    ("ddp_count", "RuntimeError",
     ["rank 0 has 4 parameters but rank 1 has 6", "on rank 1, is '2.weight'"]),
    ("ddp_names", "RuntimeError", ["parameter '0.bias' on rank 0 is '1.weight' on rank 1"]),
])
def test_error_names_what_is_wrong(errors, case, error, pieces):
    for rank, caught in enumerate(errors):  # every rank raises, none waits for the others
        assert caught[case] is not None, f"{case} raised nothing on rank {rank}"
        kind, message = caught[case]
        assert kind == error, message
        for piece in pieces:
            assert piece in message


def test_a_hanging_rank_makes_the_others_time_out(mpirun):
    done = mpirun(2, "failures.py", "hang", check=False, timeout=60)
    assert done.returncode != 0
    assert ("CAUGHT DistributedTimeoutError: all_reduce (op 'sum') of a float32 array of "
            "shape (3,) timed out after 1 s on rank 0 of 2") in done.stdout


def test_a_dead_rank_makes_backward_time_out(mpirun):
    done = mpirun(2, "failures.py", "die", check=False, timeout=60)
    assert done.returncode != 0
    assert "CAUGHT DistributedTimeoutError: all_reduce (op 'mean')" in done.stdout
    assert "timed out after 1 s on rank 0 of 2" in done.stdout


def test_an_exception_on_one_rank_ends_the_job(mpirun):
    # Rank 0 waits in a barrier with a 120 s timeout: only the abort can end it in time.
    done = mpirun(2, "failures.py", "raise", check=False, timeout=60)
    assert done.returncode != 0
    assert "ValueError: rank 1 gives up" in done.stderr
    assert "CAUGHT" not in done.stdout


def test_the_nccl_backend_imports_without_cupy():
    import importlib.util
    import sys

    module = importlib.import_module("gpugrad.distributed._nccl")
    assert hasattr(module, "NCCLProcessGroup")
    if importlib.util.find_spec("cupy") is None:
        assert "cupy" not in sys.modules
        with pytest.raises(RuntimeError, match=r"needs CuPy with NCCL: pip install "
                                               r"gpugrad\[cuda12\]"):
            module._nccl_module()
