"""The CUDA backend's row family: one kernel per row (kernels/softmax.cu, layer_norm.cu)
for softmax, log-softmax, integer-target cross-entropy and layer norm; the NumPy
references in rows.py take the cases the kernels do not."""

from __future__ import annotations

import numpy as np

from . import trace as _trace
from .cuda_launch import NULL, TILE
from .kernels import row_epilogue_kernel
from .pointwise import launch_plan
from .rows import check_xent, reduce_rows


class CupyRows:
    """Overrides of RowFamily (mixed into CupyBackend before Backend)."""

    fused_rows = True

    def _softmax_rows(self, x, log_out: bool, epilogue=None):
        if x.ndim == 0 or not x.size or not self._has_kernel(x):
            return None
        x = self._c(x)
        cols = x.shape[-1]
        rows = x.size // cols
        grid, block = self._rows_grid(rows), (self._row_threads(cols),)
        tail = (np.int64(rows), np.int64(cols), np.int32(log_out))
        if epilogue is not None:
            done, y = self._epilogue_launch("softmax", x, epilogue, grid, block, (x,), tail)
            if done:
                return y
        y = self.xp.empty_like(x)
        self._launch("softmax", "softmax_forward", x.dtype, grid, block, (x, y, *tail))
        return y if epilogue is None else epilogue.finish(self, y)

    def softmax(self, x, epilogue=None):
        y = self._softmax_rows(x, False, epilogue)
        return super().softmax(x, epilogue) if y is None else y

    def log_softmax(self, x, epilogue=None):
        y = self._softmax_rows(x, True, epilogue)
        return super().log_softmax(x, epilogue) if y is None else y

    def _epilogue_launch(self, family: str, x, ep, grid, block, head: tuple, tail: tuple):
        """Launch the row kernel `family` with the program of `ep` as its generated epilogue
        (kernels.row_epilogue_kernel) over y of x's shape and dtype: (True, y, or None when
        `ep.keep_y` is false), with `ep.out` set; (False, None) where an operand is not an
        array of x's dtype, a bool array or a real number, or would need a copy (the
        caller then runs the plain kernel and the program as a second pass)."""
        xp = self.xp
        dt, shape = x.dtype, x.shape
        ops = ep.with_y(x)
        plan = []
        for a in ops:
            if isinstance(a, xp.ndarray):
                if a.dtype != dt and a.dtype != np.bool_:
                    return False, None
                plan.append(a)
            elif type(a) in (int, float, bool):
                plan.append(None)
            else:
                return False, None
        try:
            np.broadcast_shapes(shape, *[a.shape for a in plan if a is not None])
        except ValueError:
            return False, None
        sig, layout, copy = launch_plan(shape, plan)
        if copy:
            return False, None
        y = xp.empty_like(x) if ep.keep_y else None
        outs = tuple(xp.empty(shape, dtype=dt) for _ in ep.prog.outputs)
        args = [np.float64(a) if p is None else a.reshape(()) if a.size == 1 else a
                for k, (a, p) in enumerate(zip(ops, plan)) if k != ep.slot]
        args = (*head, NULL if y is None else y, *args, *outs,
                *[np.float64(p) for p in ep.params], *[np.int64(v) for v in layout], *tail)
        fn = row_epilogue_kernel(family, ep.prog, ep.slot, dt, sig)
        self._launch_compiled(f"{family}_epilogue", fn, grid, block, args)
        ep.out = outs[0] if len(outs) == 1 else outs
        return True, y

    def _launch_compiled(self, name: str, fn, grid, block, args) -> None:
        """Launch a compiled kernel (recorded as `name` under the profiler)."""
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            arrays = [a for a in args if isinstance(a, self.array_type)]
            return rec.kernel(name, self, arrays, self._launch_compiled, name, fn, grid,
                              block, args)
        with self.cuda_device:
            fn(grid, block, args)

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
        check_xent(logits, target, reduction)
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
        loss = reduce_rows(xp, loss_rows, t == ignore_index, reduction)
        return loss.astype(logits.dtype), lse

    def softmax_cross_entropy_backward(self, logits, target, lse, g, ignore_index: int = -100,
                                       reduction: str = "mean"):
        xp = self.xp
        check_xent(logits, target, reduction)
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

    def layer_norm_forward(self, x, weight, bias, eps: float, epilogue=None):
        xp = self.xp
        if (x.ndim == 0 or not x.size or not self._has_kernel(x)
                or not self._affine_ok(x, weight, bias)):
            return super().layer_norm_forward(x, weight, bias, eps, epilogue)
        x = self._c(x)
        cols = x.shape[-1]
        rows = x.size // cols
        acc = self._acc(x.dtype)
        mean, rstd = xp.empty(x.shape[:-1], dtype=acc), xp.empty(x.shape[:-1], dtype=acc)
        w = NULL if weight is None else self._c(weight)
        b = NULL if bias is None else self._c(bias)
        grid, block = self._rows_grid(rows), (self._row_threads(cols),)
        tail = (mean, rstd, np.int64(rows), np.int64(cols), np.float64(eps))
        if epilogue is not None:
            done, y = self._epilogue_launch("layer_norm", x, epilogue, grid, block, (x, w, b),
                                            tail)
            if done:
                return y, mean, rstd
        y = xp.empty_like(x)
        self._launch("layer_norm", "layer_norm_forward", x.dtype, grid, block,
                     (x, w, b, y, *tail))
        if epilogue is not None:
            epilogue.finish(self, y)
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
        w = NULL if weight is None else self._c(weight)
        self._launch("layer_norm", "layer_norm_backward", x.dtype, self._rows_grid(rows),
                     (self._row_threads(cols),),
                     (x, g, w, mean, rstd, gx, np.int64(rows), np.int64(cols)))
        if weight is None:
            return gx, None, None
        grid = self._tile_grid(rows, cols)
        pw, pb = xp.empty((grid[1], cols), dtype=acc), xp.empty((grid[1], cols), dtype=acc)
        self._launch("layer_norm", "layer_norm_param_grad", x.dtype, grid, TILE,
                     (x, g, mean, rstd, pw, pb, np.int64(rows), np.int64(cols)))
        return gx, pw.sum(axis=0).astype(weight.dtype), pb.sum(axis=0).astype(weight.dtype)
