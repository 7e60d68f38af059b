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
from .ops.linalg import matmul

__all__ = ["cholesky", "cross", "det", "eigh", "eigvalsh", "inv", "matmul", "matrix_norm",
           "norm", "qr", "slogdet", "solve", "svd", "svdvals", "vector_norm"]


def cross(input, other, *, dim: int = -1):
    """Cross product of 3-vectors along `dim` (-1 by default, unlike torch.cross)."""
    return _cross(input, other, dim)
