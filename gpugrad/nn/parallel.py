"""`DistributedDataParallel`: one model replica per rank, gradients averaged after backward.

Each rank runs forward and backward on its own shard of the batch. The gradients are then
averaged across ranks, so that every replica takes the same optimizer step, equal to the
step of one process on the whole batch (for losses that are means over the batch).

The averaging is bucketed as in PyTorch: parameters are packed, in reverse order of
registration (roughly the order backward produces their gradients), into flat buffers of
about `bucket_cap_mb`. A gradient hook copies each gradient into its bucket; when a
bucket is full its all-reduce starts, non-blocking (MPI Iallreduce, or NCCL on a side
stream on the GPU), while backward goes on with the remaining gradients. A callback at
the end of backward (`gpugrad.autograd.engine.queue_callback`) waits for every bucket and
writes the averages into `.grad` before `backward()` returns.

gpugrad's engine runs a leaf's hooks as soon as the last edge into it has delivered, so
the last layers' buckets are on the wire while backward is still computing the gradients
of the first layers.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator

from .. import distributed
from ..autograd.engine import queue_callback
from ..tensor import Tensor, _wrap_array
from .module import Module

__all__ = ["DistributedDataParallel"]


class _Bucket:
    """Parameters of one dtype and device whose gradients travel in one flat buffer."""

    def __init__(self, params: list, xp, dtype) -> None:
        self.params = params
        self.offsets = []
        total = 0
        for p in params:
            self.offsets.append(total)
            total += p._data.size
        with _on_device(params[0]):
            self.flat = xp.zeros(total, dtype=dtype)
        self.ready = [False] * len(params)
        self.pending = len(params)
        self.work = None

    def view(self, slot: int):
        """The part of the flat buffer that holds parameter `slot`, shaped like it."""
        p = self.params[slot]
        start = self.offsets[slot]
        return self.flat[start:start + p._data.size].reshape(p._data.shape)

    def reset(self) -> None:
        self.ready = [False] * len(self.params)
        self.pending = len(self.params)
        self.work = None


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training across the ranks of the process group.

    At construction, every rank checks that all ranks hold the same parameters (names,
    shapes, dtypes) and receives rank 0's parameters and buffers. Calling the wrapper calls
    `module`; after `backward()` every parameter's `.grad` holds the mean of the ranks'
    gradients. `no_sync()` skips the averaging for gradient accumulation. The wrapped
    module is `.module` (state dict keys get the prefix "module.", as in PyTorch).
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25.0,
                 broadcast_buffers: bool = True) -> None:
        super().__init__()
        group = distributed._require_group("DistributedDataParallel")
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a gg.nn.Module, got "
                            f"{type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, "
                             f"got {bucket_cap_mb}")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.bucket_cap_mb = bucket_cap_mb
        self._group = group
        self._sync_enabled = True
        self._reducing = False  # a backward has started filling the buckets
        self._next_bucket = 0  # buckets are started in order, the same on every rank
        named = list(module.named_parameters())
        _check_same_parameters(named, group)
        _broadcast_from_rank0([p for _, p in named] + list(module.buffers()))
        self._buckets = _make_buckets([p for _, p in named if p.requires_grad],
                                      int(bucket_cap_mb * 1024 * 1024))
        self._hook_handles = []
        me = weakref.ref(self)  # the hooks must not keep a discarded wrapper alive
        for index, bucket in enumerate(self._buckets):
            for slot, p in enumerate(bucket.params):
                self._hook_handles.append(p.register_hook(_GradientReady(me, index, slot)))

    def forward(self, *args, **kwargs):
        """Run the wrapped module (after refreshing the buffers from rank 0)."""
        self._reducing = False
        if self.broadcast_buffers and self._group.size > 1:
            buffers = list(self.module.buffers())
            if buffers:
                _broadcast_from_rank0(buffers)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside this block, backward only accumulates local gradients; the next
        backward outside it averages the accumulated gradients across ranks."""
        previous, self._sync_enabled = self._sync_enabled, False
        try:
            yield
        finally:
            self._sync_enabled = previous

    # -- the reduction, driven by the gradient hooks and the end-of-backward callback -------
    def _gradient_ready(self, index: int, slot: int, grad: Tensor) -> None:
        if not self._sync_enabled:
            return
        if not self._reducing:
            self._reducing = True
            self._next_bucket = 0
            for bucket in self._buckets:
                bucket.reset()
            queue_callback(self._finish_reduction)
        bucket = self._buckets[index]
        if bucket.ready[slot]:
            return
        _pack(bucket, slot, grad)
        self._start_ready_buckets()

    def _start_ready_buckets(self) -> None:
        while self._next_bucket < len(self._buckets):
            bucket = self._buckets[self._next_bucket]
            if bucket.pending:
                return
            self._agree(self._next_bucket, bucket)
            bucket.work = self._group.all_reduce(bucket.flat, "mean",
                                                 getattr(self._group, "side_stream", None))
            self._next_bucket += 1

    def _agree(self, index: int, bucket) -> None:
        """The cross-rank check that every rank is in this DDP backward (see
        `gg.distributed`'s GPUGRAD_DISTRIBUTED_DEBUG): before the first bucket, or before
        every bucket in DETAIL mode. A rank with fewer batches than the others would
        otherwise meet them in a different collective."""
        detail = getattr(self._group, "debug", "OFF") == "DETAIL"
        if index == 0 or detail:
            call = f"DistributedDataParallel backward ({len(self._buckets)} gradient buckets)"
            if detail:
                call += f", bucket {index}: {bucket.flat.size} {bucket.flat.dtype} values"
            self._group.agree(call, "DistributedDataParallel gradient all_reduce")

    def _finish_reduction(self) -> None:
        """After backward: start the buckets that still wait for gradients that never
        came (parameters unused on this rank count as zero), wait for all, write back."""
        self._reducing = False
        for bucket in self._buckets[self._next_bucket:]:
            for slot, done in enumerate(bucket.ready):
                if not done:
                    _pack(bucket, slot, None)
        self._start_ready_buckets()
        for bucket in self._buckets:
            bucket.work.wait()
            for slot, p in enumerate(bucket.params):
                averaged = bucket.view(slot)
                if p.grad is None:
                    p.grad = _wrap_array(averaged.copy(), p._backend)
                else:
                    p.grad._backend.xp.copyto(p.grad._data, averaged)


class _GradientReady:
    """The hook on one parameter: tells its DDP wrapper that the gradient has arrived."""

    __slots__ = ("ddp", "index", "slot")

    def __init__(self, ddp: weakref.ref, index: int, slot: int) -> None:
        self.ddp, self.index, self.slot = ddp, index, slot

    def __call__(self, grad: Tensor) -> None:
        ddp = self.ddp()
        if ddp is not None:
            ddp._gradient_ready(self.index, self.slot, grad)


def _pack(bucket: _Bucket, slot: int, grad: Tensor | None) -> None:
    """Copy the gradient that `.grad` will hold after this backward (what it holds now
    plus `grad`) into the bucket, and mark the slot ready."""
    p = bucket.params[slot]
    xp = p._backend.xp
    out = bucket.view(slot)
    old = p.grad
    if grad is None:
        if old is None:
            out[...] = 0
        else:
            xp.copyto(out, old._data)
    elif old is None:
        xp.copyto(out, grad._data)
    else:
        xp.add(old._data, grad._data, out=out)
    bucket.ready[slot] = True
    bucket.pending -= 1


def _make_buckets(params: list, cap_bytes: int) -> list[_Bucket]:
    """Group parameters, last registered first, into buckets of one dtype and device of
    at most `cap_bytes` each (a larger parameter gets a bucket of its own)."""
    buckets, current, size = [], [], 0
    for p in reversed(params):
        nbytes = p._data.size * p._data.itemsize
        if current and (size + nbytes > cap_bytes or p._data.dtype != current[0]._data.dtype
                        or p._backend is not current[0]._backend):
            buckets.append(current)
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(current)
    return [_Bucket(b, b[0]._backend.xp, b[0]._data.dtype) for b in buckets]


def _check_same_parameters(named: list, group) -> None:
    """Raise RuntimeError (on every rank) unless all ranks hold parameters of the same
    names, shapes and dtypes, naming the first that differs and the ranks."""
    mine = [[name, list(p.shape), p.dtype.name] for name, p in named]
    everyone = distributed._all_gather_object(mine)
    reference = everyone[0]
    for rank, theirs in enumerate(everyone[1:], start=1):
        for (name0, shape0, dtype0), (name1, shape1, dtype1) in zip(reference, theirs):
            if name0 != name1:
                raise RuntimeError(
                    f"DistributedDataParallel: the models differ across ranks: parameter "
                    f"{name0!r} on rank 0 is {name1!r} on rank {rank}; every rank must build "
                    "the same model")
            if shape0 != shape1 or dtype0 != dtype1:
                raise RuntimeError(
                    f"DistributedDataParallel: parameter {name0!r} has shape {tuple(shape0)} "
                    f"({dtype0}) on rank 0 but shape {tuple(shape1)} ({dtype1}) on rank "
                    f"{rank}; every rank must build the same model")
        if len(reference) != len(theirs):
            longer, rank_longer = (reference, 0) if len(reference) > len(theirs) \
                else (theirs, rank)
            extra = longer[min(len(reference), len(theirs))][0]
            raise RuntimeError(
                f"DistributedDataParallel: rank 0 has {len(reference)} parameters but rank "
                f"{rank} has {len(theirs)} (the first extra one, on rank {rank_longer}, is "
                f"{extra!r}); every rank must build the same model")


def _broadcast_from_rank0(tensors: list) -> None:
    """Overwrite `tensors` with rank 0's values (all broadcasts in flight at once)."""
    works = [distributed.broadcast(t, 0, async_op=True) for t in tensors]
    for work in works:
        work.wait()


def _on_device(p):
    """A context that makes new arrays land on `p`'s GPU (nothing on the CPU)."""
    device = getattr(p._backend, "cuda_device", None)
    return device if device is not None else contextlib.nullcontext()
