"""The CUDA backend's optimizer family: one multi-tensor launch per dtype
(kernels/optim.cu) for SGD, Adam/AdamW, the 2-norm and unscaling; the NumPy references
in optim.py take the cases the kernels do not."""

from __future__ import annotations

import numpy as np

from .cuda_launch import CHUNK, NULL, THREADS

_META_CACHE_SIZE = 64


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



class CupyOptim:
    """Overrides of OptimFamily (mixed into CupyBackend before Backend)."""

    def _mt_meta(self, columns: list, sizes: list):
        """(device int64 metadata, number of chunks) for kernels/optim.cu: the per-tensor
        columns, the sizes, then the chunk table. Cached by content, so an unchanged set of
        tensors costs no upload.

        While a CUDA graph is captured (`_capture_keep` is the graph's keep-alive list),
        the metadata array becomes part of the graph: a cached one is kept alive with the
        graph (the cache may evict it), and a new one is uploaded from pinned host memory
        that the graph keeps too, since the captured copy rereads that host buffer at every
        replay (CuPy's asarray would stage through a pinned buffer that is recycled)."""
        host, nchunks = multi_tensor_meta(columns, sizes, CHUNK)
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
            self._launch("optim", entry, dtype, (min(nchunks, 1 << 20),), (THREADS,),
                         (meta, np.int32(len(sizes)), np.int64(nchunks), np.int64(CHUNK),
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
            return NULL
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
                             (THREADS,), (meta, np.int32(len(ids)), np.int64(nchunks),
                                           np.int64(CHUNK), partials))
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
