"""gg.linalg, as torch.linalg: decompositions, solvers and norms (see gpugrad.ops.decomp)."""

from __future__ import annotations

from .ops.decomp import (
    cholesky,
    det,
    eigh,
    eigvalsh,
    inv,
    matrix_norm,
    norm,
    qr,
    slogdet,
    solve,
    svd,
    svdvals,
    vector_norm,
)
from .ops.einsum import cross as _cross
from .ops.extras import chain_matmul, matrix_power
from .ops.extras import pinverse as _pinverse
from .ops.linalg import matmul

__all__ = ["cholesky", "cross", "det", "eigh", "eigvalsh", "inv", "matmul", "matrix_norm",
           "norm", "qr", "slogdet", "solve", "svd", "svdvals", "vector_norm", "multi_dot",
           "pinv", "matrix_power", "vecdot", "matrix_rank", "solve_triangular", "cond"]


def cross(input, other, *, dim: int = -1):
    """Cross product of 3-vectors along `dim` (-1 by default, unlike torch.cross)."""
    return _cross(input, other, dim)


def multi_dot(tensors):
    """A₁ A₂ … Aₙ (1-d first and last operands as row and column vectors)."""
    ts = list(tensors)
    if len(ts) < 2:
        raise RuntimeError(f"linalg.multi_dot: expected at least 2 tensors, got {len(ts)}")
    first, last = ts[0].ndim == 1, ts[-1].ndim == 1
    if first:
        ts[0] = ts[0].unsqueeze(0)
    if last:
        ts[-1] = ts[-1].unsqueeze(1)
    out = chain_matmul(*ts)
    if first:
        out = out.squeeze(0)
    if last:
        out = out.squeeze(-1)
    return out


def pinv(A, *, rtol: float | None = None, hermitian: bool = False):
    """Moore–Penrose pseudo-inverse (singular values ≤ rtol·max dropped; rtol defaults to
    ε·max(m, n), as torch)."""
    import numpy as np

    if rtol is None:
        rtol = float(np.finfo(A.dtype.np).eps) * max(A.shape[-2:])
    return _pinverse(A, rtol)


def vecdot(x, y, *, dim: int = -1):
    """Σ conj(x)·y along `dim` (broadcasting)."""
    from .ops.elementwise import conj

    return (conj(x) * y).sum(dim)


def matrix_rank(A, *, atol: float | None = None, rtol: float | None = None,
                hermitian: bool = False):
    """The number of singular values above max(atol, rtol·σ_max) (int64, not
    differentiable); rtol defaults to ε·max(m, n)."""
    import numpy as np

    s = svdvals(A.detach())
    if rtol is None:
        rtol = 0.0 if atol else float(np.finfo(A.dtype.np).eps) * max(A.shape[-2:])
    tol = s.amax(-1, keepdim=True) * rtol
    if atol:
        tol = tol.clamp(min=atol)
    return (s > tol).sum(-1)


def solve_triangular(A, B, *, upper: bool, left: bool = True, unitriangular: bool = False):
    """X with A X = B (A X = B read from A's upper or lower triangle), through solve: the
    other triangle is masked out, so its gradient is zero, as torch."""
    import numpy as np

    from .tensor import _wrap_array

    n = A.shape[-1]
    keep = np.triu(np.ones((n, n))) if upper else np.tril(np.ones((n, n)))
    if unitriangular:
        np.fill_diagonal(keep, 0)
    mask = _wrap_array(A._backend.xp.asarray(keep.astype(A.dtype.np)), A._backend)
    T = A * mask
    if unitriangular:
        T = T + _wrap_array(A._backend.xp.eye(n, dtype=A.dtype.np), A._backend)
    return solve(T, B, left=left)


def cond(A, p=None):
    """The condition number ‖A‖_p·‖A⁻¹‖_p: for p None or 2 (and −2) the ratio of extreme
    singular values, otherwise through inv."""
    if p in (None, 2, -2):
        s = svdvals(A)
        hi, lo = s.amax(-1), s.amin(-1)
        return hi / lo if p in (None, 2) else lo / hi
    return matrix_norm(A, p) * matrix_norm(inv(A), p)
