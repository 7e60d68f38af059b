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
    assert ("gpugrad run: rank 0 of 2 failed with exit status 1: DistributedTimeoutError: "
            "all_reduce") in done.stderr


# The group timeout is 120 s in these: the 30 s limit is met only if the launcher (or the
# exited-peer check) ends the job.
@pytest.mark.parametrize("n, mode, named", [
    (2, "raise", "rank 1 of 2 failed with exit status 1: ValueError: rank 1 gives up"),
    (2, "exit1", "rank 1 of 2 failed with exit status 1: SystemExit: 1"),
    (2, "kill", "rank 1 of 2 (pid "),
    (2, "die", "rank 1 of 2 (pid "),
    (4, "kill", "rank 3 of 4 (pid "),
    (4, "exit1", "rank 3 of 4 failed with exit status 1: SystemExit: 1"),
])
def test_a_failing_rank_ends_the_job_within_seconds_and_is_named(mpirun, n, mode, named):
    done = mpirun(n, "failures.py", mode, check=False, timeout=30)
    assert done.returncode != 0
    assert f"gpugrad run: {named}" in done.stderr, done.stderr
    if mode in ("kill", "die"):
        assert "died without reporting an exit status (killed by a signal, or ended by " \
               "os._exit)" in done.stderr
    if mode == "raise":
        assert "ValueError: rank 1 gives up" in done.stderr  # the traceback is printed
        assert "CAUGHT" not in done.stdout


def test_a_rank_that_leaves_early_ends_the_others_wait(mpirun):
    # Rank 1 returns normally while rank 0 waits for it in a DDP backward (as with
    # uneven batches per rank): rank 0 raises at once and the launcher names it.
    done = mpirun(2, "failures.py", "early", check=False, timeout=30)
    assert done.returncode != 0
    assert ("CAUGHT DistributedPeerExitedError: DistributedDataParallel gradient all_reduce on "
            "rank 0 of 2 cannot finish: rank 1 has exited (status 0)") in done.stdout
    assert "uneven batches per rank" in done.stdout
    assert "gpugrad run: rank 0 of 2 failed with exit status 1: " \
           "DistributedPeerExitedError" in done.stderr


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


def _mismatch_run(mpirun, tmp_path, env=None):
    mpirun(2, "mismatch.py", tmp_path, env=env)
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.fixture(scope="module")
def mismatches(mpirun, tmp_path_factory):
    return _mismatch_run(mpirun, tmp_path_factory.mktemp("mismatch"))


@pytest.mark.parametrize("case, pieces", [
    ("shape", ["all_reduce: the ranks are not making the same collective call",
               "rank 0: all_reduce(op='sum') of a float32 tensor of shape (3,) on cpu",
               "rank 1: all_reduce(op='sum') of a float32 tensor of shape (4,) on cpu"]),
    ("dtype", ["rank 0: all_reduce(op='sum') of a float32 tensor",
               "rank 1: all_reduce(op='sum') of a float64 tensor"]),
    ("op", ["rank 0: all_reduce(op='sum')", "rank 1: all_reduce(op='max')"]),
    ("broadcast_shape", ["broadcast: the ranks", "shape (2, 3)", "shape (3, 2)"]),
    ("all_gather_dtype", ["all_gather: the ranks", "int32", "int64"]),
    ("different_collectives", ["rank 0: barrier()", "rank 1: all_reduce(op='sum')"]),
    ("ddp_uneven", ["rank 0: DistributedDataParallel backward (1 gradient buckets)",
                    "rank 1: all_reduce(op='sum') of a float32 tensor of shape () on cpu",
                    "uneven batches per rank"]),
])
def test_collectives_that_differ_across_ranks_raise_on_every_rank(mismatches, case, pieces):
    for rank, caught in enumerate(mismatches):
        assert caught[case] is not None, f"{case} raised nothing on rank {rank}"
        kind, message = caught[case]
        assert kind == "RuntimeError", message
        for piece in pieces:
            assert piece in message, message
        assert caught[f"{case}_after"] == [3.0, 3.0]  # the group still works


def test_detail_mode_adds_the_sequence_number(mpirun, tmp_path):
    caught = _mismatch_run(mpirun, tmp_path, env={"GPUGRAD_DISTRIBUTED_DEBUG": "DETAIL"})
    message = caught[0]["shape"][1]
    assert "rank 0: all_reduce(op='sum') of a float32 tensor of shape (3,) on cpu " \
           "[collective #1]" in message
    assert "[collective #" in caught[1]["ddp_uneven"][1]
    assert caught[1]["ddp_uneven_after"] == [3.0, 3.0]


def test_bad_debug_level_is_refused(monkeypatch):
    from gpugrad.distributed._mpi import debug_level

    monkeypatch.setenv("GPUGRAD_DISTRIBUTED_DEBUG", "verbose")
    with pytest.raises(ValueError, match="GPUGRAD_DISTRIBUTED_DEBUG='verbose': expected one "
                                         "of OFF, INFO, DETAIL"):
        debug_level()
    monkeypatch.setenv("GPUGRAD_DISTRIBUTED_DEBUG", "detail")
    assert debug_level() == "DETAIL"
