"""The CuPy (CUDA) backend. CuPy is imported only when this backend is created."""

from __future__ import annotations

import numpy as np

from ..device import device as Device
from . import base
from .base import Backend
from .kernels import dtype_suffix, kernel, pointwise_kernel

_THREADS = 256  # threads per block of the elementwise kernels
_MAX_BLOCKS = 8192  # grid-stride loops cover the rest
_TILE = (32, 8)  # block of the column-sum kernels (bias and layer-norm parameter grads)
_CHUNK = 1 << 16  # elements per block-sized chunk of the multi-tensor kernels
_META_CACHE_SIZE = 64
_NULL = np.uint64(0)  # a null pointer argument
# CuPy's cuBLAS compute types (the cpdef enum in cupy/_core/_routines_linalg.pxd)
_COMPUTE_TYPE_DEFAULT, _COMPUTE_TYPE_TF32 = 1, 7


def multi_tensor_meta(columns: list, sizes: list, chunk: int) -> tuple[np.ndarray, int]:
    """(int64 metadata, number of chunks) in kernels/optim.cu's layout: the per-tensor
    columns (pointers, flags, bit-cast doubles), the tensor sizes, then the chunk table
    (tensor index of each chunk, then its start offset); a tensor of n elements has
    ceil(n / chunk) chunks."""
    sizes_np = np.asarray(sizes, dtype=np.int64)
    counts = -(-sizes_np // chunk)
    nchunks = int(counts.sum())
    chunk_tensor = np.repeat(np.arange(len(sizes), dtype=np.int64), counts)
    chunk_start = (np.arange(nchunks, dtype=np.int64)
                   - np.repeat(np.cumsum(counts) - counts, counts)) * chunk
    host = np.concatenate([np.asarray(c, dtype=np.int64).reshape(-1) for c in columns]
                          + [sizes_np, chunk_tensor, chunk_start])
    return host, nchunks


class CupyBackend(Backend):
    """GPU arrays through CuPy, on one CUDA device."""

    name = "cuda"
    regenerates_dropout_mask = True  # kernels/dropout.cu, Philox counters
    fused_kernels = True  # kernels/softmax.cu, layer_norm.cu
    # While gpugrad.cuda.CUDAGraph captures: the graph's list of objects to keep alive.
    _capture_keep: list | None = None

    def __init__(self, dev: Device) -> None:
        import cupy
        import cupyx

        super().__init__(dev)
        self.xp = cupy
        self._cupy = cupy  # CuPy itself (xp is swapped for a wrapper during graph capture)
        self._cupyx = cupyx
        self.array_type = cupy.ndarray
        self.cuda_device = cupy.cuda.Device(dev.index)
        with self.cuda_device:
            self.rng = cupy.random.default_rng()
        self._meta_cache: dict = {}  # multi-tensor launch metadata, by content

    def set_matmul_tf32(self, flag: bool) -> None:
        """cuBLAS compute type of CuPy's float32/complex64 products: TF32 tensor cores when
        `flag` (CuPy falls back to full float32, with a warning, below compute
        capability 8.0), else full float32. The setting is CuPy's, process-wide."""
        from cupy._core import _routines_linalg as linalg

        kind = _COMPUTE_TYPE_TF32 if flag else _COMPUTE_TYPE_DEFAULT
        for dt in (np.float32, np.complex64):
            linalg.set_compute_type(dt, kind)

    def asarray(self, data, dtype=None):
        with self.cuda_device:
            return self.xp.array(data, dtype=dtype)

    def to_host(self, array):
        self.counter.device_to_host += 1
        return self.xp.asnumpy(array)

    def synchronize(self) -> None:
        self.counter.synchronizations += 1
        self.cuda_device.synchronize()

    def manual_seed(self, seed: int) -> None:
        with self.cuda_device:
            self.rng = self.xp.random.default_rng(seed)
        self.seed_philox(seed)

    def uniform(self, shape, dtype):
        with self.cuda_device:
            if dtype in (np.float32, np.float64):
                return self.rng.random(shape, dtype=dtype)
            return self.rng.random(shape).astype(dtype)

    def normal(self, shape, dtype):
        with self.cuda_device:
            if dtype in (np.float32, np.float64):
                return self.rng.standard_normal(shape, dtype=dtype)
            return self.rng.standard_normal(shape).astype(dtype)

    def randint(self, low, high, shape, dtype):
        with self.cuda_device:
            return self.rng.integers(low, high, size=shape, dtype=dtype)

    def index_add_(self, out, index, values) -> None:
        self._cupyx.scatter_add(out, index, values)

    def accumulate(self, op: str, x, axis: int):
        """Inclusive scan by doubling (Hillis–Steele): log2(n) elementwise passes, for the
        ufuncs whose accumulate CuPy lacks."""
        fn = getattr(self.xp, op)
        out = self.xp.moveaxis(x, axis, 0).copy()
        shift = 1
        while shift < out.shape[0]:
            out[shift:] = fn(out[shift:], out[:-shift].copy())
            shift *= 2
        return self.xp.moveaxis(out, 0, axis)

    def index_reduce_(self, out, index, values, op: str) -> None:
        """out[index] = op(out[index], values) with repeats combined ("max", "min", "mul").
        CuPy has atomic scatter max/min; a product has none, so it is combined on the
        host (a slow path, as a scatter_reduce "prod" is rare in training)."""
        if op == "max":
            self._cupyx.scatter_max(out, index, values)
        elif op == "min":
            self._cupyx.scatter_min(out, index, values)
        else:
            host = out.get()
            np.multiply.at(host, tuple(i.get() if hasattr(i, "get") else i for i in index),
                           values.get() if hasattr(values, "get") else values)
            out[...] = self.xp.asarray(host)

    def reshape_view(self, array, shape):
        out = array.reshape(shape)
        # A copy lives in a fresh allocation, so an unchanged pointer means a view.
        if out.size and out.data.ptr != array.data.ptr:
            raise ValueError("reshape needs a copy")
        return out

    def np_dtype(self, dtype):
        if dtype.name == "bfloat16":
            try:
                import ml_dtypes  # CuPy's bfloat16 support goes through ml_dtypes

                return np.dtype(ml_dtypes.bfloat16)
            except ImportError:
                return None
        return dtype.np

    # -- launching the kernels of kernels/*.cu -------------------------------------------------
    # Each override below launches one kernel (the NumPy reference is the Backend method of
    # the same name in base.py) and falls back to that reference for dtypes without a
    # kernel, mixed dtypes or layouts the kernel does not take.
    def _launch(self, module: str, entry: str, dtype, grid, block, args) -> None:
        with self.cuda_device:
            kernel(module, entry, dtype)(grid, block, args)

    def _elementwise(self, module: str, entry: str, dtype, n: int, args, per_thread: int = 1):
        blocks = max(1, min(-(-n // (_THREADS * per_thread)), _MAX_BLOCKS))
        self._launch(module, entry, dtype, (blocks,), (_THREADS,), args)

    @staticmethod
    def _has_kernel(*arrays) -> bool:
        """All arrays share one float dtype that the kernels cover."""
        dt = arrays[0].dtype
        return dtype_suffix(dt) is not None and all(a.dtype == dt for a in arrays)

    def _acc(self, dtype):
        """The kernels' accumulation dtype for `dtype`."""
        return self.xp.float64 if dtype == self.xp.float64 else self.xp.float32

    def _c(self, a):
        return self.xp.ascontiguousarray(a)

    @staticmethod
    def _row_threads(cols: int) -> int:
        """Threads of a one-block-per-row kernel: a multiple of 32, at most 1024."""
        return 32 * max(1, min(-(-cols // 32), 32))

    def _rows_grid(self, rows: int) -> tuple:
        return (max(1, min(rows, 1 << 16)),)

    def _tile_grid(self, rows: int, cols: int) -> tuple:
        """Grid of a (32, 8)-block column-sum kernel: each thread walks ~8 rows or more."""
        return (-(-cols // 32), max(1, min(-(-rows // 64), 256)))

    # -- generated pointwise kernels -------------------------------------------------------
    def pointwise(self, prog, ins, params=()):
        """One generated kernel (gpugrad/backend/pointwise.py) when every array operand has
        the same float dtype (or is a bool condition): full-size operands are read at the
        element index, single values once, numbers become kernel arguments; other
        broadcasts are materialised first. Anything else (integers, complex, mixed
        dtypes) runs the NumPy/CuPy rendering."""
        xp = self.xp
        dtype = None
        for a in ins:
            if isinstance(a, xp.ndarray) and a.dtype != np.bool_:
                if dtype is None:
                    dtype = a.dtype
                elif a.dtype != dtype:
                    return super().pointwise(prog, ins, params)
        if dtype is None or dtype_suffix(dtype) is None or any(
                type(a) is complex for a in ins):
            return super().pointwise(prog, ins, params)
        shape = np.broadcast_shapes(*[np.shape(a) for a in ins])
        n = int(np.prod(shape))
        sig, args = [], []
        for a in ins:
            if not isinstance(a, xp.ndarray):
                sig.append("p")
                args.append(np.float64(a))
                continue
            b = a.dtype == np.bool_
            if a.size == 1:
                sig.append("c" if b else "s")
                args.append(self._c(a.reshape(())))
            else:
                sig.append("b" if b else "a")
                args.append(self._c(xp.broadcast_to(a, shape)))
        outs = tuple(xp.empty(shape, dtype=dtype) for _ in prog.outputs)
        if n:
            fn = pointwise_kernel(prog, dtype, "".join(sig))
            blocks = max(1, min(-(-n // _THREADS), _MAX_BLOCKS))
            with self.cuda_device:
                fn((blocks,), (_THREADS,), (*args, *outs, *[np.float64(p) for p in params],
                                             np.int64(n)))
        return outs[0] if len(outs) == 1 else outs

    def _softmax_rows(self, x, log_out: bool):
        if x.ndim == 0 or not x.size or not self._has_kernel(x):
            return None
        x = self._c(x)
        y = self.xp.empty_like(x)
        cols = x.shape[-1]
        rows = x.size // cols
        self._launch("softmax", "softmax_forward", x.dtype, self._rows_grid(rows),
                     (self._row_threads(cols),),
                     (x, y, np.int64(rows), np.int64(cols), np.int32(log_out)))
        return y

    def softmax(self, x):
        y = self._softmax_rows(x, False)
        return super().softmax(x) if y is None else y

    def log_softmax(self, x):
        y = self._softmax_rows(x, True)
        return super().log_softmax(x) if y is None else y

    def _softmax_rows_backward(self, y, g, log_out: bool):
        if y.ndim == 0 or not y.size or g.shape != y.shape or not self._has_kernel(y, g):
            return None
        y, g = self._c(y), self._c(g)
        gx = self.xp.empty_like(y)
        cols = y.shape[-1]
        rows = y.size // cols
        self._launch("softmax", "softmax_backward", y.dtype, self._rows_grid(rows),
                     (self._row_threads(cols),),
                     (y, g, gx, np.int64(rows), np.int64(cols), np.int32(log_out)))
        return gx

    def softmax_backward(self, y, g):
        gx = self._softmax_rows_backward(y, g, False)
        return super().softmax_backward(y, g) if gx is None else gx

    def log_softmax_backward(self, y, g):
        gx = self._softmax_rows_backward(y, g, True)
        return super().log_softmax_backward(y, g) if gx is None else gx

    def softmax_cross_entropy(self, logits, target, ignore_index: int = -100,
                              reduction: str = "mean"):
        xp = self.xp
        base._check_xent(logits, target, reduction)
        rows, cols = logits.shape
        if not rows or not cols or not self._has_kernel(logits):
            return super().softmax_cross_entropy(logits, target, ignore_index, reduction)
        x = self._c(logits)
        t = self._c(target.astype(xp.int64, copy=False))
        acc = self._acc(x.dtype)
        loss_rows, lse = xp.empty(rows, dtype=acc), xp.empty(rows, dtype=acc)
        self._launch("softmax", "softmax_xent_forward", x.dtype, self._rows_grid(rows),
                     (self._row_threads(cols),),
                     (x, t, loss_rows, lse, np.int64(rows), np.int64(cols),
                      np.int64(ignore_index)))
        loss = base._reduce_rows(xp, loss_rows, t == ignore_index, reduction)
        return loss.astype(logits.dtype), lse

    def softmax_cross_entropy_backward(self, logits, target, lse, g, ignore_index: int = -100,
                                       reduction: str = "mean"):
        xp = self.xp
        base._check_xent(logits, target, reduction)
        rows, cols = logits.shape
        acc = self._acc(logits.dtype)
        if not logits.size or not self._has_kernel(logits) or lse.dtype != acc:
            return super().softmax_cross_entropy_backward(logits, target, lse, g,
                                                          ignore_index, reduction)
        x = self._c(logits)
        t = self._c(target.astype(xp.int64, copy=False))
        scale = xp.asarray(g).astype(acc)
        if reduction == "mean":
            scale = scale / (t != ignore_index).sum().astype(acc)
        scale = self._c(xp.broadcast_to(scale, (rows,)) if reduction == "none"
                        else scale.reshape(1))
        gx = xp.empty_like(x)
        self._elementwise("softmax", "softmax_xent_backward", x.dtype, x.size,
                          (x, t, self._c(lse), scale, np.int32(reduction == "none"), gx,
                           np.int64(rows), np.int64(cols), np.int64(ignore_index)))
        return gx

    # -- layer normalisation ---------------------------------------------------------------
    def _affine_ok(self, x, *params) -> bool:
        return all(p is None or (p.shape == x.shape[-1:] and p.dtype == x.dtype) for p in params)

    def layer_norm_forward(self, x, weight, bias, eps: float):
        xp = self.xp
        if (x.ndim == 0 or not x.size or not self._has_kernel(x)
                or not self._affine_ok(x, weight, bias)):
            return super().layer_norm_forward(x, weight, bias, eps)
        x = self._c(x)
        cols = x.shape[-1]
        rows = x.size // cols
        acc = self._acc(x.dtype)
        y = xp.empty_like(x)
        mean, rstd = xp.empty(x.shape[:-1], dtype=acc), xp.empty(x.shape[:-1], dtype=acc)
        w = _NULL if weight is None else self._c(weight)
        b = _NULL if bias is None else self._c(bias)
        self._launch("layer_norm", "layer_norm_forward", x.dtype, self._rows_grid(rows),
                     (self._row_threads(cols),),
                     (x, w, b, y, mean, rstd, np.int64(rows), np.int64(cols), np.float64(eps)))
        return y, mean, rstd

    def layer_norm_backward(self, x, weight, mean, rstd, g):
        xp = self.xp
        acc = self._acc(x.dtype)
        if (x.ndim == 0 or not x.size or g.shape != x.shape or not self._has_kernel(x, g)
                or not self._affine_ok(x, weight) or mean.dtype != acc or rstd.dtype != acc):
            return super().layer_norm_backward(x, weight, mean, rstd, g)
        x, g, mean, rstd = self._c(x), self._c(g), self._c(mean), self._c(rstd)
        cols = x.shape[-1]
        rows = x.size // cols
        gx = xp.empty_like(x)
        w = _NULL if weight is None else self._c(weight)
        self._launch("layer_norm", "layer_norm_backward", x.dtype, self._rows_grid(rows),
                     (self._row_threads(cols),),
                     (x, g, w, mean, rstd, gx, np.int64(rows), np.int64(cols)))
        if weight is None:
            return gx, None, None
        grid = self._tile_grid(rows, cols)
        pw, pb = xp.empty((grid[1], cols), dtype=acc), xp.empty((grid[1], cols), dtype=acc)
        self._launch("layer_norm", "layer_norm_param_grad", x.dtype, grid, _TILE,
                     (x, g, mean, rstd, pw, pb, np.int64(rows), np.int64(cols)))
        return gx, pw.sum(axis=0).astype(weight.dtype), pb.sum(axis=0).astype(weight.dtype)

    # -- dropout ---------------------------------------------------------------------------------
    def _dropout_apply(self, x, p, seed, offset):
        if p >= 1 or not self._has_kernel(x):
            return super()._dropout_apply(x, p, seed, offset)
        x = self._c(x)
        y = self.xp.empty_like(x)
        if x.size:
            self._elementwise("dropout", "dropout_apply", x.dtype, -(-x.size // 4),
                              (x, y, np.int64(x.size), np.uint32(base.dropout_threshold(p)),
                               np.float64(1.0 / (1.0 - p)), np.uint64(seed), np.uint64(offset)))
        return y

    # -- multi-tensor optimizer kernels (kernels/optim.cu) ---------------------------------------
    def _mt_meta(self, columns: list, sizes: list):
        """(device int64 metadata, number of chunks) for kernels/optim.cu: the per-tensor
        columns, the sizes, then the chunk table. Cached by content, so an unchanged set of
        tensors costs no upload.

        While a CUDA graph is captured (`_capture_keep` is the graph's keep-alive list),
        the metadata array becomes part of the graph: a cached one is kept alive with the
        graph (the cache may evict it), and a new one is uploaded from pinned host memory
        that the graph keeps too, since the captured copy rereads that host buffer at every
        replay (CuPy's asarray would stage through a pinned buffer that is recycled)."""
        host, nchunks = multi_tensor_meta(columns, sizes, _CHUNK)
        key = host.tobytes()
        dev = self._meta_cache.get(key)
        keep = self._capture_keep
        if keep is not None:
            if dev is None:
                dev = self._upload_for_graph(host, keep)
            keep.append(dev)
            return dev, nchunks
        if dev is None:
            if len(self._meta_cache) >= _META_CACHE_SIZE:
                self._meta_cache.pop(next(iter(self._meta_cache)))
            with self.cuda_device:
                dev = self._meta_cache[key] = self.xp.asarray(host)
        return dev, nchunks

    def _upload_for_graph(self, host: np.ndarray, keep: list):
        """`host` (contiguous) copied to a new device array by a copy that a capturing
        stream records; its pinned source buffer is appended to `keep`."""
        import ctypes

        cupy = self._cupy
        with self.cuda_device:
            pinned = cupy.cuda.alloc_pinned_memory(host.nbytes)
            ctypes.memmove(pinned.ptr, host.ctypes.data, host.nbytes)
            dev = cupy.empty(host.shape, dtype=host.dtype)
            dev.data.copy_from_host_async(pinned.ptr, host.nbytes,
                                          cupy.cuda.get_current_stream())
        keep.append(pinned)
        return dev

    def _mt_launch(self, entry: str, dtype, columns, sizes, args) -> None:
        meta, nchunks = self._mt_meta(columns, sizes)
        if nchunks:
            self._launch("optim", entry, dtype, (min(nchunks, 1 << 20),), (_THREADS,),
                         (meta, np.int32(len(sizes)), np.int64(nchunks), np.int64(_CHUNK),
                          *args))

    def _mt_groups(self, arrays_per_tensor: list) -> tuple[dict, list]:
        """Split tensor indices into {dtype: [i, ...]} for the kernels (every array of
        entry i contiguous, of one covered dtype) and a list of the rest."""
        groups: dict = {}
        rest = []
        for i, arrays in enumerate(arrays_per_tensor):
            arrays = [a for a in arrays if a is not None]
            if (self._has_kernel(*arrays) and all(a.flags.c_contiguous for a in arrays)
                    and all(a.shape == arrays[0].shape for a in arrays)):
                groups.setdefault(arrays[0].dtype, []).append(i)
            else:
                rest.append(i)
        return groups, rest

    def _found_inf_arg(self, found_inf):
        if found_inf is None:
            return _NULL
        return self._c(found_inf.astype(self.xp.float32, copy=False).reshape(-1))

    @staticmethod
    def _ptr(a) -> int:
        return 0 if a is None else a.data.ptr

    def sgd_update(self, params, grads, bufs, *, lr, momentum, dampening, weight_decay,
                   nesterov, maximize, found_inf=None) -> None:
        """One multi-tensor launch per dtype. A buffer created here starts as zeros and is
        set to d by the kernel's first-step flag, so a skipped step leaves zeros, as the
        reference does."""
        xp = self.xp
        grads = [self._c(g) if g.shape == p.shape else g for p, g in zip(params, grads)]
        first = [momentum != 0 and b is None for b in bufs]
        groups, rest = self._mt_groups([(p, g, b) for p, g, b in zip(params, grads, bufs)])
        for i in [i for ids in groups.values() for i in ids]:
            if first[i]:
                with self.cuda_device:
                    bufs[i] = xp.zeros_like(params[i])
        flag = self._found_inf_arg(found_inf)
        for dtype, ids in groups.items():
            columns = [[self._ptr(params[i]) for i in ids], [self._ptr(grads[i]) for i in ids],
                       [self._ptr(bufs[i]) if momentum != 0 else 0 for i in ids],
                       [int(first[i]) for i in ids]]
            self._mt_launch("sgd_multi", dtype, columns, [params[i].size for i in ids],
                            (np.float64(lr), np.float64(momentum), np.float64(dampening),
                             np.float64(weight_decay), np.int32(bool(nesterov)),
                             np.int32(bool(maximize)), flag))
        if rest:
            sub_bufs = [bufs[i] for i in rest]
            super().sgd_update([params[i] for i in rest], [grads[i] for i in rest], sub_bufs,
                               lr=lr, momentum=momentum, dampening=dampening,
                               weight_decay=weight_decay, nesterov=nesterov,
                               maximize=maximize, found_inf=found_inf)
            for i, b in zip(rest, sub_bufs):
                bufs[i] = b

    def adam_update(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *,
                    lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                    decoupled_weight_decay, found_inf=None) -> None:
        """One multi-tensor launch per dtype; per-tensor step counts travel in the
        metadata (a host step as its two bias-correction doubles, a device step as a
        pointer)."""
        xp = self.xp
        grads = [self._c(g) if g.shape == p.shape else g for p, g in zip(params, grads)]
        vmaxes = [max_exp_avg_sqs[i] if amsgrad else None for i in range(len(params))]
        groups, rest = self._mt_groups(list(zip(params, grads, exp_avgs, exp_avg_sqs, vmaxes)))
        flag = self._found_inf_arg(found_inf)
        keep_alive = []
        for dtype, ids in groups.items():
            step_ptr, step_size, bc2 = [], [], []
            for i in ids:
                t = steps[i]
                if isinstance(t, (int, float, np.integer, np.floating)):
                    step_ptr.append(0)
                    step_size.append(lr / (1 - beta1 ** t))
                    bc2.append((1 - beta2 ** t) ** 0.5)
                else:
                    t = self._c(t.astype(xp.float32, copy=False).reshape(()))
                    keep_alive.append(t)
                    step_ptr.append(t.data.ptr)
                    step_size.append(0.0)
                    bc2.append(0.0)
            columns = [[self._ptr(params[i]) for i in ids], [self._ptr(grads[i]) for i in ids],
                       [self._ptr(exp_avgs[i]) for i in ids],
                       [self._ptr(exp_avg_sqs[i]) for i in ids],
                       [self._ptr(vmaxes[i]) for i in ids], step_ptr,
                       np.asarray(step_size, dtype=np.float64).view(np.int64),
                       np.asarray(bc2, dtype=np.float64).view(np.int64)]
            self._mt_launch("adam_multi", dtype, columns, [params[i].size for i in ids],
                            (np.float64(lr), np.float64(beta1), np.float64(beta2),
                             np.float64(eps), np.float64(weight_decay),
                             np.int32(bool(decoupled_weight_decay)), np.int32(bool(amsgrad)),
                             np.int32(bool(maximize)), flag))
        if rest:
            super().adam_update([params[i] for i in rest], [grads[i] for i in rest],
                                [exp_avgs[i] for i in rest], [exp_avg_sqs[i] for i in rest],
                                [max_exp_avg_sqs[i] for i in rest] if amsgrad else
                                [None] * len(rest), [steps[i] for i in rest], lr=lr,
                                beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                                amsgrad=amsgrad, maximize=maximize,
                                decoupled_weight_decay=decoupled_weight_decay,
                                found_inf=found_inf)

    def grad_norm(self, grads, norm_type: float = 2.0):
        """The 2-norm by one sum-of-squares launch per dtype (per-chunk block sums, then
        CuPy's sum of the partials); other norms use the reference."""
        xp = self.xp
        if float(norm_type) != 2.0 or not all(self._has_kernel(g) for g in grads):
            return super().grad_norm(grads, norm_type)
        acc = xp.float64 if any(g.dtype == xp.float64 for g in grads) else xp.float32
        grads = [self._c(g) for g in grads if g.size]
        groups, _ = self._mt_groups([(g,) for g in grads])
        with self.cuda_device:
            total = xp.zeros((), dtype=acc)
            for dtype, ids in groups.items():
                meta, nchunks = self._mt_meta([[grads[i].data.ptr for i in ids]],
                                              [grads[i].size for i in ids])
                partials = xp.empty(nchunks, dtype=self._acc(dtype))
                self._launch("optim", "sumsq_multi", dtype, (min(nchunks, 1 << 20),),
                             (_THREADS,), (meta, np.int32(len(ids)), np.int64(nchunks),
                                           np.int64(_CHUNK), partials))
                total = total + partials.sum().astype(acc)
            return xp.sqrt(total)

    def unscale_grads_(self, grads, inv_scale, found_inf) -> None:
        """One launch per dtype; non-contiguous grads and an unexpected flag layout use
        the reference."""
        xp = self.xp
        flag_ok = (found_inf.dtype == xp.float32 and found_inf.size == 1
                   and found_inf.flags.c_contiguous)
        live = [g for g in grads if g.size]
        groups, rest = self._mt_groups([(g,) for g in live]) if flag_ok else ({}, live)
        inv = self._c(inv_scale.astype(xp.float32, copy=False).reshape(()))
        for dtype, ids in groups.items():
            self._mt_launch("unscale_multi", dtype, [[live[i].data.ptr for i in ids]],
                            [live[i].size for i in ids], (inv, found_inf))
        if rest:
            super().unscale_grads_([live[i] for i in rest] if flag_ok else rest, inv_scale,
                                   found_inf)
