"""The row family: softmax, log-softmax, integer-target cross-entropy and layer norm over
the last axis. The NumPy versions are the reference; the CUDA backend runs one kernel per
row (kernels/softmax.cu, layer_norm.cu)."""

from __future__ import annotations

from . import trace as _trace
from .array import quiet_fp, widen

_XENT_REDUCTIONS = ("mean", "sum", "none")


class RowFamily:
    """Row kernels of a backend (mixed into Backend; uses `xp`)."""

    # Whether ops route through the fused row methods below (one kernel each way on the
    # CUDA backend); the CPU ops keep their own NumPy formulas. Read only through
    # `fuses_rows`; tests switch it on to run the NumPy reference of the fused path.
    fused_rows = False

    def fuses_rows(self, ndim: int, dim: int | None) -> bool:
        """Whether a normalisation over `dim` of an `ndim`-d array should take this
        backend's fused row methods (they normalise over the last axis only) rather than
        a composite of array ops."""
        return self.fused_rows and dim is not None and dim == ndim - 1

    @_trace.traced
    def softmax(self, x, epilogue=None):
        """exp(x − max) / Σ exp(x − max) along the last axis (float32 math for 16-bit x).
        With an `epilogue` (row_epilogue.Epilogue), its program is applied to the result
        into `epilogue.out` (here as a second pass; the CUDA kernel fuses it)."""
        xp = self.xp
        with quiet_fp(xp):
            z = widen(xp, x)
            z = z - z.max(axis=-1, keepdims=True)
            e = xp.exp(z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True)))
        y = e.astype(x.dtype, copy=False)
        return y if epilogue is None else epilogue.finish(self, y)

    @_trace.traced
    def log_softmax(self, x, epilogue=None):
        """(x − max) − log Σ exp(x − max) along the last axis; `epilogue` as in softmax."""
        xp = self.xp
        with quiet_fp(xp):
            z = widen(xp, x)
            z = z - z.max(axis=-1, keepdims=True)
            out = z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
        y = out.astype(x.dtype, copy=False)
        return y if epilogue is None else epilogue.finish(self, y)

    def rows_epilogue(self, rows_fn, x, blockable: bool, epilogue) -> tuple:
        """(y, *stats) = rows_fn(x) (a row op's array code: softmax, a normalisation) with
        the program of `epilogue` (row_epilogue.Epilogue) applied to y into `epilogue.out`;
        y may be None when `epilogue.keep_y` is false. `blockable`: rows_fn reduces no
        axis 0, so it may run on blocks of rows. Here: rows_fn, then the program as a
        second pass; the CPU backend runs both on each cache block (row_epilogue.cpu_rows)."""
        y, *stats = rows_fn(x)
        epilogue.finish(self, y)
        return (y, *stats)

    @_trace.traced
    def softmax_backward(self, y, g):
        """x̄ = y·(ȳ − Σ ȳ·y) from the softmax output y."""
        xp = self.xp
        y32, g32 = widen(xp, y), widen(xp, g)
        return (y32 * (g32 - (g32 * y32).sum(axis=-1, keepdims=True))).astype(y.dtype,
                                                                               copy=False)

    @_trace.traced
    def log_softmax_backward(self, y, g):
        """x̄ = ȳ − exp(y)·Σ ȳ from the log-softmax output y."""
        xp = self.xp
        y32, g32 = widen(xp, y), widen(xp, g)
        return (g32 - xp.exp(y32) * g32.sum(axis=-1, keepdims=True)).astype(y.dtype,
                                                                             copy=False)

    @_trace.traced
    def softmax_cross_entropy(self, logits, target, ignore_index: int = -100,
                              reduction: str = "mean"):
        """(loss, lse) for logits (N, C) and integer targets (N,): per row
        lse = log Σ_c exp(x_c) and ℓ = lse − x[target] (0 where target == ignore_index);
        the loss is ℓ (reduction "none"), Σℓ ("sum") or Σℓ / #non-ignored rows ("mean",
        NaN when every row is ignored, as PyTorch), in the logits' dtype. lse (N,) is kept
        for the backward, in float32 (float64 for float64 logits). A target outside
        [0, C) that is not ignore_index gives a NaN loss for its row."""
        xp = self.xp
        check_xent(logits, target, reduction)
        with quiet_fp(xp):
            z = widen(xp, logits)
            m = z.max(axis=-1, keepdims=True)
            lse = (m + xp.log(xp.exp(z - m).sum(axis=-1, keepdims=True)))[:, 0]
            ignored = target == ignore_index
            valid = (target >= 0) & (target < z.shape[-1])
            picked = xp.take_along_axis(z, xp.where(valid, target, 0)[:, None], axis=-1)[:, 0]
            rows = xp.where(ignored, 0, xp.where(valid, lse - picked, xp.nan)).astype(z.dtype)
            loss = reduce_rows(xp, rows, ignored, reduction)
        return loss.astype(logits.dtype), lse

    @_trace.traced
    def softmax_cross_entropy_backward(self, logits, target, lse, g, ignore_index: int = -100,
                                       reduction: str = "mean"):
        """x̄ = (softmax(x) − one_hot(target))·s, with softmax(x) = exp(x − lse), and
        s = ȳ / #non-ignored rows ("mean"), ȳ ("sum") or ȳ per row ("none"); rows whose
        target is ignore_index get 0. `g` is the loss gradient (0-d, or (N,) for "none")."""
        xp = self.xp
        check_xent(logits, target, reduction)
        z = widen(xp, logits)
        ignored = target == ignore_index
        scale = xp.asarray(g).astype(z.dtype)
        if reduction == "mean":
            scale = scale / (~ignored).sum().astype(z.dtype)
        scale = scale[:, None] if reduction == "none" else scale
        with quiet_fp(xp):
            p = xp.exp(z - lse[:, None].astype(z.dtype))
            onehot = xp.arange(z.shape[-1])[None, :] == target[:, None]
            gx = xp.where(ignored[:, None], 0, (p - onehot) * scale)
        return gx.astype(logits.dtype)

    # -- layer normalisation over the last axis -----------------------------------------------
    @_trace.traced
    def layer_norm_forward(self, x, weight, bias, eps: float, epilogue=None):
        """(y, mean, rstd): y = (x − μ)·rstd·w + b over the last axis, rstd = 1/√(σ² + ε)
        with the biased variance; `weight` / `bias` (shape (C,)) may be None. mean and rstd
        have shape x.shape[:-1], in float32 (float64 for float64 x). `epilogue` as in
        softmax."""
        xp = self.xp
        z = widen(xp, x)
        mean = z.mean(axis=-1)
        d = z - mean[..., None]
        rstd = 1 / xp.sqrt((d * d).mean(axis=-1) + z.dtype.type(eps))
        y = d * rstd[..., None]
        if weight is not None:
            y = y * widen(xp, weight)
        if bias is not None:
            y = y + widen(xp, bias)
        y = y.astype(x.dtype, copy=False)
        if epilogue is not None:
            epilogue.finish(self, y)
        return y, mean, rstd

    @_trace.traced
    def layer_norm_backward(self, x, weight, mean, rstd, g):
        """(x̄, w̄, b̄) of layer_norm_forward: with x̂ = (x − μ)·rstd and ĝ = ȳ·w,
        x̄ = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)); w̄ = Σ ȳ·x̂ and b̄ = Σ ȳ over the leading
        axes (both None when weight is None)."""
        xp = self.xp
        z, g32 = widen(xp, x), widen(xp, g)
        xhat = (z - mean[..., None]) * rstd[..., None]
        gh = g32 * widen(xp, weight) if weight is not None else g32
        gx = rstd[..., None] * (gh - gh.mean(axis=-1, keepdims=True)
                                - xhat * (gh * xhat).mean(axis=-1, keepdims=True))
        gw = gb = None
        if weight is not None:
            c = x.shape[-1]
            gw = (g32 * xhat).reshape(-1, c).sum(axis=0).astype(weight.dtype)
            gb = g32.reshape(-1, c).sum(axis=0).astype(weight.dtype)
        return gx.astype(x.dtype, copy=False), gw, gb


def check_xent(logits, target, reduction: str) -> None:
    """The argument checks shared by every softmax_cross_entropy implementation."""
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"softmax_cross_entropy: logits of shape (N, C) and target of shape "
                         f"(N,) expected, got {tuple(logits.shape)} and {tuple(target.shape)}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy: integer targets expected, got {target.dtype}")
    if reduction not in _XENT_REDUCTIONS:
        raise ValueError(f"softmax_cross_entropy: reduction must be one of "
                         f"{_XENT_REDUCTIONS}, got {reduction!r}")


def reduce_rows(xp, rows, ignored, reduction: str):
    """Per-row losses reduced as a 0-d array (mean over the rows not ignored)."""
    if reduction == "none":
        return rows
    total = rows.sum()
    if reduction == "mean":
        total = total / (~ignored).sum().astype(rows.dtype)
    return xp.asarray(total, dtype=rows.dtype)

