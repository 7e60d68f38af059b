"""Matrix functions and decompositions (gg.linalg): inv, solve, det, slogdet, cholesky,
qr, svd, eigh, and the vector and matrix norms. Batched over leading dims; real dtypes.

Each VJP is PyTorch's (FunctionsManual.cpp), written with Tensor ops so that it is
differentiable again; Xᴴ is the conjugate transpose (the transpose, for real X).
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd.function import Op
from ..errors import ShapeError
from ..tensor import Tensor, _wrap_array
from . import return_types
from ._util import norm_dims
from .elementwise import abs, where  # noqa: A004
from .linalg import matmul
from .reduce import amax, amin, sum
from .shape import transpose

__all__ = ["inv", "solve", "det", "slogdet", "cholesky", "qr", "svd", "svdvals", "eigh",
           "eigvalsh", "vector_norm", "matrix_norm", "norm"]


def _mT(t: Tensor) -> Tensor:
    return transpose(t, -1, -2)


def _square(op: str, a: Tensor) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"linalg.{op}: expected a square matrix (or a batch of them), got "
                         f"shape {tuple(a.shape)}")
    if a.dtype.category != 2:
        raise TypeError(f"linalg.{op}: expected a floating point input, got {a.dtype}")


def _diag_embed(v: Tensor) -> Tensor:
    n = v.shape[-1]
    eye = _wrap_array(v._backend.xp.eye(n, dtype=v._data.dtype), v._backend)
    return v.unsqueeze(-1) * eye


def _eye_like(a: Tensor, n: int) -> Tensor:
    return _wrap_array(a._backend.xp.eye(n, dtype=a._data.dtype), a._backend)


def _diagonal(a: Tensor) -> Tensor:
    return sum(a * _eye_like(a, a.shape[-1]), -1)


def _tril(a: Tensor, k: int = 0) -> Tensor:
    n, m = a.shape[-2], a.shape[-1]
    mask = np.tril(np.ones((n, m), dtype=bool), k)
    return a * _wrap_array(a._backend.xp.asarray(mask.astype(a._data.dtype)), a._backend)


def _factor(ctx, op: str, *arrays):
    """`xp.linalg.<op>(*arrays)`, a LinAlgError raised as a RuntimeError naming the op."""
    try:
        return getattr(ctx.xp.linalg, op)(*arrays)
    except np.linalg.LinAlgError as e:
        raise RuntimeError(f"linalg.{op}: the input is singular or not positive-definite "
                           f"({e})") from None


class Inv(Op):
    """Y = A⁻¹;  Ā = −Yᴴ Ȳ Yᴴ."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_output()
        return _factor(ctx, "inv", a)

    @staticmethod
    def backward(ctx, g):
        yh = _mT(ctx.saved_output)
        return -matmul(yh, matmul(g, yh))


def inv(A: Tensor) -> Tensor:
    """The inverse of a square matrix (batched); raises for a singular one."""
    _square("inv", A)
    return Inv.apply(A)


class Solve(Op):
    """X = A⁻¹B (B a batch of matrices);  B̄ = A⁻ᴴ X̄,  Ā = −B̄ Xᴴ."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_inputs(0)
        ctx.save_output()
        return _factor(ctx, "solve", a, b)

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_input(0), ctx.saved_output
        gb = Solve.apply(_mT(a), g)
        need = ctx.needs_input_grad
        ga = -matmul(gb, _mT(x)) if need[0] else None
        return ga, gb if need[1] else None


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """X with A X = B (left=False: X A = B); B may be a vector (…, n), batches broadcast."""
    _square("solve", A)
    if not left:
        return _mT(solve(_mT(A), _mT(B)))
    vec = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    b = B.unsqueeze(-1) if vec else B
    if b.shape[-2] != A.shape[-1]:
        raise ShapeError(f"linalg.solve: A {tuple(A.shape)} and B {tuple(B.shape)} are "
                         "incompatible")
    batch = np.broadcast_shapes(tuple(A.shape[:-2]), tuple(b.shape[:-2]))
    a = A.expand(*batch, *A.shape[-2:]) if tuple(A.shape[:-2]) != batch else A
    b = b.expand(*batch, *b.shape[-2:]) if tuple(b.shape[:-2]) != batch else b
    x = Solve.apply(a, b)
    return x.squeeze(-1) if vec else x


def det(A: Tensor) -> Tensor:
    """det A; its gradient is the cofactor matrix, defined for singular A too."""
    _square("det", A)
    return Det.apply(A)


class Det(Op):
    """y = det A;  Ā = ȳ · cof(A), the cofactor matrix (= det A · A⁻ᴴ when A is invertible),
    formed from the SVD A = U S Vh so that it exists for singular A as well:
    cof(A) = det(U) det(Vh) · U diag(Π_{j≠i} s_j) Vh."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_inputs(0)
        return ctx.xp.asarray(ctx.xp.linalg.det(a), dtype=a.dtype)

    @staticmethod
    def backward(ctx, g):
        return g.unsqueeze(-1).unsqueeze(-1) * _cofactor(ctx.saved_input(0))


def _cofactor(a: Tensor) -> Tensor:
    u, s, vh = svd(a, full_matrices=False)
    xp, be = a._backend.xp, a._backend
    n = s.shape[-1]
    eye = xp.eye(n, dtype=bool)
    others = _wrap_array(xp.broadcast_to(eye, s.shape[:-1] + (n, n)), be)
    # row i: the singular values with s_i replaced by 1, whose product is Π_{j≠i} s_j
    from .scan import prod

    p = prod(where(others, 1.0, s.unsqueeze(-2)), -1)
    sign = xp.linalg.det(u._data) * xp.linalg.det(vh._data)  # ±1: no gradient
    sign = _wrap_array(xp.asarray(sign, dtype=a._data.dtype), be)
    return sign.unsqueeze(-1).unsqueeze(-1) * matmul(u * p.unsqueeze(-2), vh)


class SlogDet(Op):
    """(s, ℓ) = (sign det A, log |det A|);  Ā = ℓ̄ · A⁻ᴴ (the sign has no gradient)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_inputs(0)
        s, logabs = ctx.xp.linalg.slogdet(a)
        return ctx.xp.asarray(s, dtype=a.dtype), ctx.xp.asarray(logabs, dtype=a.dtype)

    @staticmethod
    def backward(ctx, _gs, gl):
        return gl.unsqueeze(-1).unsqueeze(-1) * _mT(inv(ctx.saved_input(0)))


def slogdet(A: Tensor):
    """(sign, logabsdet) of det A, as torch.linalg.slogdet."""
    _square("slogdet", A)
    s, logabs = SlogDet.apply(A)
    return return_types.slogdet(s, logabs)


class Cholesky(Op):
    """A = L Lᴴ, L lower triangular;  with Φ(X) = tril(X) with its diagonal halved,
    S = L⁻ᴴ Φ(Lᴴ L̄) L⁻¹ and Ā = (S + Sᴴ)/2."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_output()
        return _factor(ctx, "cholesky", a)

    @staticmethod
    def backward(ctx, g):
        L = ctx.saved_output
        g = _tril(g)
        phi = matmul(_mT(L), g)
        phi = _tril(phi) - 0.5 * _diag_embed(_diagonal(phi))
        linv = inv(L)
        s = matmul(_mT(linv), matmul(phi, linv))
        return 0.5 * (s + _mT(s))


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    """The Cholesky factor of a symmetric positive-definite matrix (lower, or upper = Lᴴ)."""
    _square("cholesky", A)
    L = Cholesky.apply(A)
    return _mT(L) if upper else L


class QR(Op):
    """A = QR (reduced, m ≥ n), TensorFlow's rule (equal to PyTorch's): with
    X = tril(QᴴQ̄ − Q̄ᴴQ + R R̄ᴴ − R̄ Rᴴ),  Ā = Q (R̄ + X R⁻ᴴ) + (Q̄ − Q QᴴQ̄) R⁻ᴴ."""

    @staticmethod
    def forward(ctx, a, mode):
        q, r = ctx.xp.linalg.qr(a, mode=mode)
        ctx.save_outputs(0, 1)
        ctx.mode = mode
        return q, r

    @staticmethod
    def backward(ctx, gq, gr):
        q, r = ctx.saved_outputs
        m, n = q.shape[-2], r.shape[-1]
        if m < n or (ctx.mode == "complete" and m > n):
            raise NotImplementedError(
                f"linalg.qr: the gradient is implemented for mode='reduced' with m >= n (and "
                f"for square inputs), got Q {tuple(q.shape)} and R {tuple(r.shape)}")
        qdq = matmul(_mT(q), gq)
        rdr = matmul(r, _mT(gr))
        low = _tril(qdq - _mT(qdq) + rdr - _mT(rdr))
        rinv_h = _mT(inv(r))
        ga = matmul(q, gr + matmul(low, rinv_h))
        ga = ga + matmul(gq - matmul(q, qdq), rinv_h)
        return ga, None


def qr(A: Tensor, mode: str = "reduced"):
    """(Q, R) with A = QR, Q orthonormal columns, R upper triangular; mode "reduced",
    "complete" or "r" (Q empty)."""
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    if A.ndim < 2:
        raise ShapeError(f"linalg.qr: expected a matrix, got shape {tuple(A.shape)}")
    q, r = QR.apply(A, "reduced" if mode == "r" else mode)
    if mode == "r":
        q = _wrap_array(A._backend.xp.zeros((0,), dtype=A._data.dtype), A._backend)
    return return_types.qr(q, r)


class SVD(Op):
    """A = U diag(S) Vh (reduced). PyTorch's VJP, with E_ij = S_j² − S_i² (1 on the diagonal)
    and skew(X) = X − Xᴴ:  Ā = U [(skew(UᴴŪ)·S_j + S_i·skew(Vh V̄h ᴴ)) / E + diag(S̄)] Vh,
    plus (Ū − U UᴴŪ) S⁻¹ Vh when m > k, or U S⁻¹ (V̄h − V̄h Vhᴴ Vh) when n > k."""

    @staticmethod
    def forward(ctx, a, full_matrices):
        u, s, vh = ctx.xp.linalg.svd(a, full_matrices=full_matrices)
        ctx.save_outputs(0, 1, 2)
        ctx.full = full_matrices
        return u, s, vh

    @staticmethod
    def backward(ctx, gu, gs, gvh):
        u, s, vh = ctx.saved_outputs
        k = s.shape[-1]
        if ctx.full:  # only the first k singular vectors enter A
            u, gu = u[..., :k], gu[..., :k]
            vh, gvh = vh[..., :k, :], gvh[..., :k, :]
        m, n = u.shape[-2], vh.shape[-1]
        uhgu = matmul(_mT(u), gu)
        uhgu = uhgu - _mT(uhgu)
        vhgv = matmul(vh, _mT(gvh))
        vhgv = vhgv - _mT(vhgv)
        s2 = s * s
        e = s2.unsqueeze(-2) - s2.unsqueeze(-1)
        e = e + _eye_like(e, k)
        ga = (uhgu * s.unsqueeze(-2) + s.unsqueeze(-1) * vhgv) / e + _diag_embed(gs)
        if m > k:
            ga = matmul(u, ga)
            gus = gu / s.unsqueeze(-2)
            ga = ga + gus - matmul(u, matmul(_mT(u), gus))
            return matmul(ga, vh), None
        if n > k:
            ga = matmul(ga, vh)
            sgvh = gvh / s.unsqueeze(-1)
            ga = ga + sgvh - matmul(matmul(sgvh, _mT(vh)), vh)
            return matmul(u, ga), None
        return matmul(u, matmul(ga, vh)), None


def svd(A: Tensor, full_matrices: bool = True):
    """(U, S, Vh) with A = U diag(S) Vh, singular values descending. The gradient needs
    distinct nonzero singular values where U or Vh is used, as in PyTorch."""
    if A.ndim < 2:
        raise ShapeError(f"linalg.svd: expected a matrix, got shape {tuple(A.shape)}")
    return return_types.svd(*SVD.apply(A, bool(full_matrices)))


def svdvals(A: Tensor) -> Tensor:
    """The singular values, descending (gradient U diag(S̄) Vh)."""
    return svd(A, full_matrices=False).S


class Eigh(Op):
    """A = V diag(λ) Vᴴ for symmetric A (its lower triangle is read);
    Ā = V (diag(λ̄) + skew(VᴴV̄) / E) Vᴴ with skew(X) = (X − Xᴴ)/2 and E_ij = λ_j − λ_i off
    the diagonal (PyTorch's rule)."""

    @staticmethod
    def forward(ctx, a, uplo):
        w, v = ctx.xp.linalg.eigh(a, UPLO=uplo)
        ctx.save_outputs(0, 1)
        return w, v

    @staticmethod
    def backward(ctx, gw, gv):
        w, v = ctx.saved_outputs
        n = w.shape[-1]
        e = w.unsqueeze(-2) - w.unsqueeze(-1)
        eye = _eye_like(e, n)
        vhgv = matmul(_mT(v), gv)
        inner = 0.5 * (vhgv - _mT(vhgv)) / (e + eye) * (1 - eye) + _diag_embed(gw)
        return matmul(v, matmul(inner, _mT(v))), None


def eigh(A: Tensor, UPLO: str = "L"):
    """(eigenvalues ascending, eigenvectors as columns) of a symmetric matrix."""
    _square("eigh", A)
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    return return_types.eigh(*Eigh.apply(A, UPLO))


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    """The eigenvalues of a symmetric matrix, ascending."""
    return eigh(A, UPLO).eigenvalues


# --- norms ---------------------------------------------------------------------------------
def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """(Σ |x|^ord)^(1/ord) over `dim` (all elements when None); ord inf/−inf is max/min |x|,
    ord 0 counts the nonzeros."""
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype.category < 2:
        raise TypeError(f"linalg.vector_norm: expected a floating point input, got {x.dtype}")
    dims = norm_dims(dim, x.ndim, "vector_norm")
    a = abs(x)
    if ord == math.inf:
        return amax(a, dims, keepdim)
    if ord == -math.inf:
        return amin(a, dims, keepdim)
    if ord == 0:
        return sum((a != 0).to(a.dtype) + a * 0, dims, keepdim)  # a·0: zero gradient
    if ord == 1:
        return sum(a, dims, keepdim)
    if ord == 2:
        from .reduce import Norm2

        return Norm2.apply(x, dims, keepdim)
    return sum(a ** ord, dims, keepdim) ** (1.0 / ord)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *,
                dtype=None) -> Tensor:
    """Matrix norm over the two dims `dim`: 'fro', 'nuc' (Σ singular values), ±2 (largest /
    smallest singular value), ±1 (max / min column sum of |A|), ±inf (row sums)."""
    if dtype is not None:
        A = A.to(dtype)
    if A.ndim < 2:
        raise ShapeError(f"linalg.matrix_norm: expected a matrix, got shape {tuple(A.shape)}")
    d0, d1 = (norm_dims(d, A.ndim, "matrix_norm")[0] for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims {dim} must differ")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        moved = _to_last(A, d0, d1)
        s = svdvals(moved)
        out = sum(s, -1) if ord == "nuc" else (amax(s, -1) if ord == 2 else amin(s, -1))
        return _keep(out, A, d0, d1) if keepdim else out
    if ord in (1, -1, math.inf, -math.inf):
        red, keep = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = sum(abs(A), red, keepdim=True)
        pick = amax if ord in (1, math.inf) else amin
        out = pick(sums, keep, keepdim=True)
        return out if keepdim else out.squeeze((d0, d1))
    raise RuntimeError(f"linalg.matrix_norm: unsupported ord {ord!r}")


def _to_last(A: Tensor, d0: int, d1: int) -> Tensor:
    order = [d for d in range(A.ndim) if d not in (d0, d1)] + [d0, d1]
    return A.permute(*order)


def _keep(out: Tensor, A: Tensor, d0: int, d1: int) -> Tensor:
    shape = list(A.shape)
    shape[d0] = shape[d1] = 1
    return out.reshape(shape)


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """linalg.norm: a vector norm when `dim` is an int or the input is 1-d (ord=None: 2), a
    matrix norm when `dim` is a pair or the input is 2-d (ord=None: 'fro')."""
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None and len(dim) == 2 or (dim is None and ord is not None and A.ndim == 2):
        return matrix_norm(A, "fro" if ord is None else ord, dim or (-2, -1), keepdim,
                           dtype=dtype)
    if dim is None and ord is not None and A.ndim != 1:
        raise RuntimeError(f"linalg.norm: ord {ord!r} needs a 1-d or 2-d input or dim, got "
                           f"shape {tuple(A.shape)}")
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)

