"""PyTorch's smaller conveniences composed of other ops: trace, inner, vdot, ger, ravel,
diff, matrix_power, chain_matmul, cdist, dist, nansum, nanmean, searchsorted, bucketize,
the torch.* spellings of the gg.linalg functions (det, logdet, inverse, svd with V, ...),
and the in-place forms of the scatter and index ops (`x.scatter_(...)`)."""

from __future__ import annotations

import builtins

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor, _wrap_array
from . import decomp
from ._dimarg import dim_alias
from ._util import norm_dim
from .elementwise import isnan, where
from .linalg import matmul
from .reduce import sum
from .shape import reshape, transpose

__all__ = ["trace", "inner", "vdot", "ger", "ravel", "diff", "matrix_power", "chain_matmul",
           "cdist", "dist", "nansum", "nanmean", "searchsorted", "bucketize", "det", "logdet",
           "inverse", "cholesky", "qr", "svd", "slogdet", "pinverse"]


def trace(input: Tensor) -> Tensor:
    """Σ_i A[i, i] of a 2-d tensor."""
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, got shape {tuple(input.shape)}")
    n = min(input.shape)
    idx = _wrap_array(input._backend.xp.arange(n), input._backend)
    return sum(input[idx, idx])


def inner(input: Tensor, other: Tensor) -> Tensor:
    """Σ over the last dims of both (a scalar times a tensor when one is 0-d)."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise ShapeError(f"inner: last dims of {tuple(input.shape)} and {tuple(other.shape)} "
                         "differ")
    from .einsum import tensordot

    return tensordot(input, other, ([input.ndim - 1], [other.ndim - 1]))


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """Σ conj(a)·b of two 1-d tensors."""
    from .elementwise import conj

    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"vdot: expected 1-d tensors, got {tuple(input.shape)} and "
                           f"{tuple(other.shape)}")
    return matmul(conj(input), other)


def ger(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product (the old name of outer)."""
    from .linalg import outer

    return outer(input, vec2)


def ravel(input: Tensor) -> Tensor:
    """The elements as a 1-d tensor (a view when possible)."""
    return reshape(input, -1)


@dim_alias
def diff(input: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """The n-th forward difference along `dim`: out[i] = x[i + 1] − x[i], n times, after
    concatenating `prepend` and `append`."""
    from .shape import cat

    d = norm_dim(dim, input.ndim, "diff")
    x = input
    if prepend is not None or append is not None:
        x = cat([t for t in (prepend, x, append) if t is not None], d)
    for _ in range(n):
        m = x.shape[d]
        hi = x[(slice(None),) * d + (slice(1, m),)]
        lo = x[(slice(None),) * d + (slice(0, max(m - 1, 0)),)]
        x = hi != lo if x.dtype.name == "bool" else hi - lo
    return x


def matrix_power(input: Tensor, n: int) -> Tensor:
    """A^n for an integer n (n < 0: the inverse's power; n = 0: the identity)."""
    decomp._square("matrix_power", input)
    if n < 0:
        return matrix_power(decomp.inv(input), -n)
    if n == 0:
        xp = input._backend.xp
        eye = _wrap_array(xp.eye(input.shape[-1], dtype=input._data.dtype), input._backend)
        keep = _wrap_array(xp.ones(input.shape, dtype=bool), input._backend)
        return where(keep, eye, input)  # the identity, with a zero gradient to A
    out, base = None, input
    while n:  # square and multiply
        if n & 1:
            out = base if out is None else matmul(out, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return out


def chain_matmul(*matrices) -> Tensor:
    """A₁ A₂ … Aₙ."""
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    out = matrices[0]
    for m in matrices[1:]:
        out = matmul(out, m)
    return out


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0) -> Tensor:
    """Pairwise p-norm distances between the rows of x1 (…, P, M) and x2 (…, R, M)."""
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist: x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} must have the "
                         "same last dimension")
    d = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    return decomp.vector_norm(d, p, -1)


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:
    """‖input − other‖_p over all elements."""
    return decomp.vector_norm(input - other, p)


@dim_alias
def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum treating NaN as zero."""
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.category >= 2:
        input = where(isnan(input), 0.0, input)
    return sum(input, dim, keepdim)


@dim_alias
def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean of the non-NaN elements."""
    if dtype is not None:
        input = input.to(dtype)
    count = sum((~isnan(input)).to(input.dtype), dim, keepdim)
    return nansum(input, dim, keepdim) / count


def searchsorted(sorted_sequence: Tensor, values, *, out_int32: bool = False,
                 right: bool = False, side: str | None = None, sorter=None) -> Tensor:
    """Insertion indices of `values` into the last dim of `sorted_sequence` (1-d, or with
    matching leading dims), left or right of equal elements."""
    xp, be = sorted_sequence._backend.xp, sorted_sequence._backend
    side = side or ("right" if right else "left")
    seq = sorted_sequence._data
    if sorter is not None:
        seq = xp.take_along_axis(seq, sorter._data, axis=-1)
    v = values._data if isinstance(values, Tensor) else xp.asarray(values)
    if seq.ndim == 1:
        out = xp.searchsorted(seq, v, side=side)
    else:
        if seq.shape[:-1] != v.shape[:-1]:
            raise RuntimeError(f"searchsorted: leading dims of sorted_sequence "
                               f"{tuple(seq.shape)} and values {tuple(v.shape)} differ")
        rows_s, rows_v = seq.reshape(-1, seq.shape[-1]), v.reshape(-1, v.shape[-1])
        out = xp.stack([xp.searchsorted(s, r, side=side) for s, r in zip(rows_s, rows_v)])
        out = out.reshape(v.shape)
    return _wrap_array(xp.asarray(out).astype(np.int32 if out_int32 else np.int64), be)


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False,
              right: bool = False) -> Tensor:
    """The bucket of each element given sorted 1-d `boundaries` (searchsorted flipped)."""
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


# --- torch.* spellings of the linalg functions ---------------------------------------------
def det(input: Tensor) -> Tensor:
    """torch.det: linalg.det."""
    return decomp.det(input)


def logdet(input: Tensor) -> Tensor:
    """log det A (NaN for a negative determinant, −inf for zero)."""
    s, logabs = decomp.slogdet(input)
    return where(s < 0, float("nan"), logabs)


def inverse(input: Tensor) -> Tensor:
    """torch.inverse: linalg.inv."""
    return decomp.inv(input)


def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    """torch.cholesky: linalg.cholesky."""
    return decomp.cholesky(input, upper=upper)


def qr(input: Tensor, some: bool = True):
    """torch.qr: linalg.qr, reduced unless some=False."""
    return decomp.qr(input, "reduced" if some else "complete")


def svd(input: Tensor, some: bool = True, compute_uv: bool = True):
    """torch.svd: (U, S, V) with V, not Vh; reduced unless some=False."""
    u, s, vh = decomp.svd(input, full_matrices=not some)
    from . import return_types

    return return_types.svd(u, s, transpose(vh, -1, -2))


def slogdet(input: Tensor):
    """torch.slogdet: linalg.slogdet."""
    return decomp.slogdet(input)


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """Moore–Penrose pseudo-inverse through the SVD: V diag(1/S) Uᴴ (S ≤ rcond·max S
    dropped)."""
    u, s, vh = decomp.svd(input, full_matrices=False)
    cut = rcond * s.amax(-1, keepdim=True)
    s_inv = where(s > cut, 1.0 / where(s > cut, s, 1.0), 0.0)
    return matmul(transpose(vh, -1, -2) * s_inv.unsqueeze(-2), transpose(u, -1, -2))



# --- stacking -------------------------------------------------------------------------------
def hstack(tensors) -> Tensor:
    """Concatenate along dim 1 (dim 0 for 1-d tensors)."""
    from .rearrange import atleast_1d
    from .shape import cat

    ts = [atleast_1d(t) for t in tensors]
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Concatenate along dim 0 after making each at least 2-d."""
    from .rearrange import atleast_2d
    from .shape import cat

    return cat([atleast_2d(t) for t in tensors], 0)


row_stack = vstack


def dstack(tensors) -> Tensor:
    """Concatenate along dim 2 after making each at least 3-d."""
    from .rearrange import atleast_3d
    from .shape import cat

    return cat([atleast_3d(t) for t in tensors], 2)


def column_stack(tensors) -> Tensor:
    """Stack 0-d/1-d tensors as columns (others concatenate along dim 1)."""
    from .shape import cat

    return cat([reshape(t, (-1, 1)) if t.ndim <= 1 else t for t in tensors], 1)


# --- statistics -----------------------------------------------------------------------------
def quantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Tensor:
    """The q-quantiles along `dim` (all elements when None) by sorting: q a number or 1-d
    tensor in [0, 1] (a leading dim of len(q) then), interpolation linear, lower, higher,
    midpoint or nearest; NaN in a slice makes its quantiles NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, False)


def nanquantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,
                interpolation: str = "linear") -> Tensor:
    """quantile ignoring NaNs."""
    return _quantile(input, q, dim, keepdim, interpolation, True)


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan) -> Tensor:
    from .shape import stack
    from .sort import sort

    modes = ("linear", "lower", "higher", "midpoint", "nearest")
    if interpolation not in modes:
        raise ValueError(f"quantile: interpolation must be one of {modes}, got "
                         f"{interpolation!r}")
    scalar_q = not isinstance(q, (Tensor, list, tuple))
    qs = [float(q)] if scalar_q else [float(v) for v in (q.tolist() if isinstance(q, Tensor)
                                                         else q)]
    if any(not 0 <= v <= 1 for v in qs):
        raise ValueError(f"quantile: q must be in [0, 1], got {qs}")
    x = input
    if dim is None:
        x, d = reshape(input, -1), 0
    else:
        d = norm_dim(dim, input.ndim, "quantile")
    s = sort(x, d).values  # NaNs sort last
    xp = x._backend.xp
    n = x.shape[d]
    nan = xp.isnan(x._data).sum(axis=d, keepdims=True)
    count = (n - nan) if ignore_nan else xp.full(nan.shape, n)
    outs = []
    for v in qs:
        pos = v * (count - 1).astype(np.float64)
        lo = xp.floor(pos).astype(np.int64)
        hi = xp.ceil(pos).astype(np.int64)
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = xp.round(pos).astype(np.int64)  # round half to even, as torch
        frac = pos - lo if interpolation == "linear" else xp.where(
            hi > lo, 0.5, 0.0) if interpolation == "midpoint" else xp.zeros_like(pos)
        lo, hi = xp.clip(lo, 0, max(n - 1, 0)), xp.clip(hi, 0, max(n - 1, 0))
        a = s.gather(d, _wrap_array(lo, x._backend))
        b = s.gather(d, _wrap_array(hi, x._backend))
        r = a + (b - a) * _wrap_array(frac.astype(x._data.dtype), x._backend)
        bad = (count == 0) if ignore_nan else (nan > 0)
        r = where(_wrap_array(bad, x._backend), float("nan"), r)
        if not keepdim:
            r = r.squeeze(d)
        elif dim is None:
            r = reshape(r, (1,) * input.ndim)
        outs.append(r)
    return outs[0] if scalar_q else stack(outs, 0)


def cov(input: Tensor, *, correction: int = 1, fweights=None, aweights=None) -> Tensor:
    """Covariance of the variables in the rows of `input` (observations in columns)."""
    if fweights is not None or aweights is not None:
        raise NotImplementedError("cov: fweights and aweights are not supported")
    x = input if input.ndim == 2 else reshape(input, (1, -1))
    n = x.shape[1]
    xc = x - x.mean(1, keepdim=True)
    out = matmul(xc, transpose(xc, 0, 1)) / max(n - correction, 0)
    return out if input.ndim == 2 else reshape(out, ())


def corrcoef(input: Tensor) -> Tensor:
    """Pearson correlation coefficients of the rows of `input`."""
    from .elementwise import clamp, sqrt

    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = sqrt(sum(c * _wrap_array(c._backend.xp.eye(c.shape[0], dtype=c._data.dtype),
                                 c._backend), 1))
    return clamp(c / d.unsqueeze(1) / d.unsqueeze(0), -1, 1)


def unique_consecutive(input: Tensor, return_inverse: bool = False,
                       return_counts: bool = False, dim: int | None = None):
    """Collapse runs of equal consecutive elements (flattened, or slices along `dim`)."""
    xp, be = input._backend.xp, input._backend
    if dim is None:
        x = input._data.reshape(-1)
        new = xp.ones(x.shape, dtype=bool)
        if x.size:
            new[1:] = x[1:] != x[:-1]
    else:
        d = norm_dim(dim, input.ndim, "unique_consecutive")
        x = xp.moveaxis(input._data, d, 0)
        new = xp.ones(x.shape[0], dtype=bool)
        if x.shape[0]:
            new[1:] = (x[1:] != x[:-1]).reshape(x.shape[0] - 1, -1).any(axis=1)
    starts = xp.nonzero(new)[0]
    vals = x[starts] if dim is None else xp.moveaxis(x[starts], 0, d)
    out = [_wrap_array(xp.ascontiguousarray(vals), be)]
    if return_inverse:
        inv = xp.cumsum(new) - 1
        out.append(_wrap_array(inv.reshape(input.shape if dim is None else -1)
                               .astype(np.int64), be))
    if return_counts:
        ends = xp.concatenate([starts[1:], xp.asarray([len(new)])])
        out.append(_wrap_array((ends - starts).astype(np.int64), be))
    return out[0] if len(out) == 1 else tuple(out)


def index_put(input: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """input with input[indices] = values (or += with accumulate), indices a tuple of
    index tensors; out of place."""
    from .index import IndexBackward, _normalize_key
    from .index import index_put as _put

    key = tuple(indices)
    if not accumulate:
        return _put(input, key, values)
    k, _ = _normalize_key(input, key)
    vals = values if isinstance(values, Tensor) else _wrap_array(
        input._backend.xp.asarray(values, dtype=input._data.dtype), input._backend)
    target = input[key]
    vals = vals.to(input.dtype).expand(*target.shape)
    return input + IndexBackward.apply(vals, tuple(input.shape), k, False)


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """β·input + α·outer(vec1, vec2)."""
    from .einsum import _scaled_add
    from .linalg import outer

    return _scaled_add(input, outer(vec1, vec2), beta, alpha)


def block_diag(*tensors) -> Tensor:
    """The tensors (0-d, 1-d as rows, or 2-d) placed along the diagonal of a zero matrix."""
    from .shape import cat, pad

    mats = [reshape(t, (1, -1)) if t.ndim < 2 else t for t in tensors]
    if any(m.ndim != 2 for m in mats):
        raise RuntimeError("block_diag: expected tensors of at most 2 dims")
    width = builtins.sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        rows.append(pad(m, (left, width - left - m.shape[1])))
        left += m.shape[1]
    return cat(rows, 0)


def cartesian_prod(*tensors) -> Tensor:
    """All tuples of one element of each 1-d tensor, as rows (1-d for one tensor)."""
    from .shape import stack

    if len(tensors) == 1:
        return tensors[0]
    n = len(tensors)
    cols = []
    for i, t in enumerate(tensors):
        shape = [1] * n
        shape[i] = t.shape[0]
        full = [u.shape[0] for u in tensors]
        cols.append(reshape(reshape(t, shape).expand(*full), -1))
    return stack(cols, 1)


def cholesky_solve(B: Tensor, L: Tensor, upper: bool = False) -> Tensor:
    """X with (L Lᴴ) X = B, for a Cholesky factor L (Uᴴ U with upper=True)."""
    A = matmul(transpose(L, -1, -2), L) if upper else matmul(L, transpose(L, -1, -2))
    return decomp.solve(A, B)


def cholesky_inverse(L: Tensor, upper: bool = False) -> Tensor:
    """(L Lᴴ)⁻¹ for a Cholesky factor L (Uᴴ U with upper=True)."""
    A = matmul(transpose(L, -1, -2), L) if upper else matmul(L, transpose(L, -1, -2))
    return decomp.inv(A)

