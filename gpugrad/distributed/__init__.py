"""`gg.distributed`: processes that train together, as in `torch.distributed`.

Start the processes with `gpugrad run -n N script.py` (a thin wrapper over MPI's
`mpiexec`), call `init_process_group()` in each, then use the collectives below on
tensors, in place, or wrap a model in `gg.nn.parallel.DistributedDataParallel`.

Backends: "mpi" (mpi4py; host memory, GPU tensors staged through the host) and "nccl"
(CuPy's NCCL bindings for GPU tensors; MPI still starts the processes and moves host
tensors). "auto" picks NCCL when this process has a GPU, else MPI. Each rank uses the GPU
of its local rank (its rank among the processes of its node). Every collective is polled
against the group's timeout, so a rank that died makes the others raise
`DistributedTimeoutError` instead of hanging.

mpi4py and the MPI runtime come from an extra: `pip install gpugrad[distributed]`.
Importing this module imports neither; `init_process_group` does.
"""

from __future__ import annotations

import atexit
import datetime
import sys

from ..tensor import Tensor
from ._mpi import _describe
from ._work import DistributedPeerExitedError, DistributedTimeoutError, Work

__all__ = [
    "init_process_group", "destroy_process_group", "is_initialized", "is_available",
    "get_rank", "get_world_size", "get_local_rank", "get_backend", "barrier", "all_reduce",
    "broadcast", "all_gather", "ReduceOp", "Work", "DistributedTimeoutError",
    "DistributedPeerExitedError",
]

_group = None  # the default process group, once init_process_group has run
_atexit_registered = False
_previous_excepthook = sys.excepthook
DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)


class ReduceOp:
    """Names of the reductions `all_reduce` accepts (plain strings work too)."""

    SUM = "sum"
    MEAN = "mean"
    AVG = "mean"
    MAX = "max"
    MIN = "min"


_REDUCE_OPS = ("sum", "mean", "max", "min")


def is_available() -> bool:
    """True when mpi4py (and so an MPI library) can be imported."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_initialized() -> bool:
    """True between `init_process_group()` and `destroy_process_group()`."""
    return _group is not None


def init_process_group(backend: str = "auto",
                       timeout: datetime.timedelta | float = DEFAULT_TIMEOUT) -> None:
    """Join this process to the job's process group (every rank must call it).

    `backend` is "mpi", "nccl" or "auto" (NCCL when this process owns a GPU and the
    default device is CUDA, else MPI).
    `timeout` (a timedelta or seconds) bounds every collective: past it the waiting rank
    raises DistributedTimeoutError. When a GPU is visible, the rank switches to the GPU
    of its local rank and makes it the default device.
    """
    global _group, _atexit_registered, _previous_excepthook
    if _group is not None:
        raise RuntimeError("init_process_group() was called twice; call "
                           "destroy_process_group() first to start a new group")
    if backend not in ("auto", "mpi", "nccl"):
        raise ValueError(f"init_process_group: unknown backend {backend!r}; "
                         "expected 'auto', 'mpi' or 'nccl'")
    seconds = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) \
        else float(timeout)
    if not seconds > 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout!r}")
    if not is_available():
        raise RuntimeError("gg.distributed needs mpi4py and an MPI runtime: "
                           "pip install gpugrad[distributed]")
    from .. import cuda
    from ..device import default_device

    has_gpu = cuda.is_available()
    if backend == "nccl" and not has_gpu:
        raise RuntimeError("init_process_group(backend='nccl') needs a CUDA GPU and CuPy; "
                           "this process has none (use backend='mpi')")
    if backend == "nccl" or (backend == "auto" and has_gpu
                             and default_device().type == "cuda"):
        from ._nccl import NCCLProcessGroup

        group = NCCLProcessGroup(seconds)
    else:
        from ._mpi import MPIProcessGroup

        group = MPIProcessGroup(seconds)
    if has_gpu:
        _use_local_gpu(group.local_rank % cuda.device_count())
    _group = group
    if not _atexit_registered:
        atexit.register(_abort_job_if_broken)
        _atexit_registered = True
    if group.size > 1 and sys.excepthook is not _abort_job_on_uncaught_exception:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _abort_job_on_uncaught_exception


def destroy_process_group() -> None:
    """Leave the process group; collectives raise again until the next init."""
    global _group
    if _group is not None:
        group, _group = _group, None
        group.destroy()
    if sys.excepthook is _abort_job_on_uncaught_exception:
        sys.excepthook = _previous_excepthook


def get_rank() -> int:
    """This process's rank, 0 .. world size - 1."""
    return _require_group("get_rank").rank


def get_world_size() -> int:
    """The number of processes in the group."""
    return _require_group("get_world_size").size


def get_local_rank() -> int:
    """This process's rank among the processes on its node (it picks the GPU)."""
    return _require_group("get_local_rank").local_rank


def get_backend() -> str:
    """"mpi" or "nccl": the backend the group was created with."""
    return _require_group("get_backend").backend


def barrier() -> None:
    """Wait until every rank has reached this call (raises after the timeout)."""
    group = _require_group("barrier")
    group.agree("barrier()", "barrier")
    group.barrier().wait()


def all_reduce(tensor: Tensor, op: str = ReduceOp.SUM, async_op: bool = False) -> Work | None:
    """Reduce `tensor` across ranks in place: "sum", "mean", "max" or "min" of the
    elementwise values. With `async_op`, return a Work to `wait()` on instead of waiting."""
    group = _require_group("all_reduce")
    _check_tensor(tensor, "all_reduce")
    if op not in _REDUCE_OPS:
        raise ValueError(f"all_reduce: unknown op {op!r}; expected one of {_REDUCE_OPS}")
    dtype = tensor.dtype
    if dtype.name == "bool":
        raise TypeError(f"all_reduce: cannot reduce a {dtype.name} tensor (shape "
                        f"{tuple(tensor.shape)}); convert it to an integer dtype first")
    if op == "mean" and not (dtype.is_floating_point or dtype.is_complex):
        raise TypeError(f"all_reduce: op 'mean' needs a floating-point tensor, got {dtype.name} "
                        f"(shape {tuple(tensor.shape)}); use 'sum' or convert it first")
    if op in ("max", "min") and dtype.is_complex:
        raise TypeError(f"all_reduce: op {op!r} is not defined for complex tensors "
                        f"({dtype.name}, shape {tuple(tensor.shape)})")
    group.agree(_call(f"all_reduce(op={op!r})", tensor), "all_reduce",
                _describe("all_reduce", tensor._data, op))
    return _finish(group.all_reduce(tensor._data, op), tensor, async_op)


def broadcast(tensor: Tensor, src: int = 0, async_op: bool = False) -> Work | None:
    """Copy rank `src`'s `tensor` into `tensor` on every other rank, in place."""
    group = _require_group("broadcast")
    _check_tensor(tensor, "broadcast")
    _check_rank(src, group, "broadcast", "src")
    group.agree(_call(f"broadcast(src={src})", tensor), "broadcast",
                _describe(f"broadcast from rank {src}", tensor._data))
    return _finish(group.broadcast(tensor._data, src), tensor, async_op)


def all_gather(tensor_list: list[Tensor], tensor: Tensor, async_op: bool = False) -> Work | None:
    """Fill `tensor_list[r]` with rank r's `tensor`, on every rank. The list holds one
    tensor per rank, each with `tensor`'s shape, dtype and device."""
    group = _require_group("all_gather")
    _check_tensor(tensor, "all_gather")
    if len(tensor_list) != group.size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors but the "
                         f"world size is {group.size}; pass one tensor per rank")
    for r, t in enumerate(tensor_list):
        _check_tensor(t, "all_gather")
        if t.shape != tensor.shape or t.dtype != tensor.dtype:
            raise ValueError(
                f"all_gather: tensor_list[{r}] has shape {tuple(t.shape)} and dtype "
                f"{t.dtype.name} but the input tensor has shape {tuple(tensor.shape)} and "
                f"dtype {tensor.dtype.name}; every output must match the input")
        if t.device != tensor.device:
            raise ValueError(f"all_gather: tensor_list[{r}] is on {t.device} but the input "
                             f"tensor is on {tensor.device}")
    group.agree(_call("all_gather", tensor), "all_gather",
                _describe("all_gather", tensor._data))
    xp = tensor._backend.xp
    gathered = xp.empty((group.size, *tensor.shape), dtype=tensor._data.dtype)
    work = group.all_gather(gathered, tensor._data)

    def scatter_into_list():
        for r, t in enumerate(tensor_list):
            t._data[...] = gathered[r]
            t._bump_version()

    return _after(work, scatter_into_list, async_op)


# -- helpers -----------------------------------------------------------------------------
def _require_group(what: str):
    if _group is None:
        raise RuntimeError(f"{what}: the default process group is not initialized; call "
                           "gg.distributed.init_process_group() first (and start the "
                           "processes with `gpugrad run -n N ...`)")
    if _group.broken:
        raise RuntimeError(f"{what}: an earlier collective of this process group failed "
                           "(timed out); the group cannot be used any more")
    return _group


def _check_tensor(tensor, what: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what}: expected a gg.Tensor, got {type(tensor).__name__}")


def _check_rank(rank: int, group, what: str, name: str) -> None:
    if not 0 <= rank < group.size:
        raise ValueError(f"{what}: {name}={rank} is not a rank of this group "
                         f"(world size {group.size})")


def _finish(work: Work, tensor: Tensor, async_op: bool) -> Work | None:
    return _after(work, tensor._bump_version, async_op)


def _after(work: Work, then, async_op: bool) -> Work | None:
    """Chain `then` after `work` completes; wait now unless `async_op`."""
    finish = work._finish

    def finish_then():
        if finish is not None:
            finish()
        then()

    work._finish = finish_then
    if async_op:
        return work
    work.wait()
    return None


def _all_gather_object(obj) -> list:
    """Every rank's `obj` (anything JSON can encode), in rank order. Used for checks
    that need to see all ranks at once, such as DDP's model comparison."""
    import json

    group = _require_group("all_gather_object")
    group.agree("all_gather_object()", "all_gather_object")
    return [json.loads(b) for b in group.all_gather_bytes(json.dumps(obj).encode())]


def _call(name: str, tensor: Tensor) -> str:
    """This rank's call as the cross-rank check compares it."""
    return (f"{name} of a {tensor.dtype.name} tensor of shape {tuple(tensor.shape)} on "
            f"{tensor.device.type}")


def _use_local_gpu(index: int) -> None:
    import cupy

    from ..device import default_device, set_default_device

    cupy.cuda.Device(index).use()
    if default_device().type == "cuda":
        set_default_device(f"cuda:{index}")


def _abort_job_if_broken() -> None:
    if _group is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        _group.abort_if_broken()


def _abort_job_on_uncaught_exception(exc_type, exc, traceback) -> None:
    """An exception that ends one rank ends the job (after printing it), as
    `python -m mpi4py` does: the other ranks would otherwise wait for it until their
    collectives time out."""
    _previous_excepthook(exc_type, exc, traceback)
    if _group is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        _group.mark_broken()
        _group.abort_if_broken()
