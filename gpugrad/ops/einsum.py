"""Einstein summation and the products built from it or from matmul: einsum, tensordot,
kron, cross, addmm, addmv, addbmm, baddbmm.

einsum's VJP is einsum again: for y = einsum(s₁,…,sₙ → o), the cotangent of operand k is
einsum(o, s₁,…,ŝₖ,…,sₙ → sₖ) of ȳ and the other operands. Two cases need care: a letter of
sₖ that appears nowhere else was summed within operand k only, so its gradient is constant
along it (broadcast); a letter repeated within sₖ (a diagonal) receives the gradient on that
diagonal only (zeros elsewhere).
"""

from __future__ import annotations

import string

import numpy as np

from ..autograd.function import Op
from ..errors import ShapeError
from ..tensor import Tensor, _check_same_device, _wrap_array
from ._util import norm_dim
from .elementwise import where
from .index import IndexBackward, index_select
from .linalg import matmul
from .reduce import sum as _sum
from .shape import broadcast_to, permute, reshape

__all__ = ["einsum", "tensordot", "kron", "cross", "addmm", "addmv", "addbmm", "baddbmm"]

_LETTERS = string.ascii_letters


class Einsum(Op):
    """y = einsum(subscripts, *xs) with explicit output and no ellipsis (see the module
    docstring for the VJP)."""

    @staticmethod
    def forward(ctx, spec, *xs):
        ctx.spec = spec
        ctx.save_inputs(*range(1, len(xs) + 1))
        ins, out = spec
        expr = ",".join(ins) + "->" + out
        dt = xs[0].dtype
        if dt.kind == "V":  # bfloat16 (ml_dtypes): NumPy's einsum takes float32, as the GPU
            xs = [x.astype("float32") for x in xs]  # accumulates; rounded back once
        return ctx.xp.einsum(expr, *xs, optimize=len(xs) > 2).astype(dt, copy=False)

    @staticmethod
    def backward(ctx, g):
        ins, out = ctx.spec
        xs = [ctx.saved_input(i + 1) for i in range(len(ins))]
        need = ctx.needs_input_grad[1:]
        return (None,) + tuple(_operand_grad(g, out, ins, xs, k) if need[k] else None
                               for k in range(len(ins)))


def _operand_grad(g: Tensor, out: str, ins: list, xs: list, k: int) -> Tensor:
    sub, x = ins[k], xs[k]
    sizes = dict(zip(sub, x.shape))
    uniq = "".join(dict.fromkeys(sub))
    avail = set(out).union(*(set(s) for i, s in enumerate(ins) if i != k))
    target = "".join(c for c in uniq if c in avail)
    others = [(s, t) for i, (s, t) in enumerate(zip(ins, xs)) if i != k]
    gk = _einsum_spec(([out] + [s for s, _ in others], target), [g] + [t for _, t in others])
    if target != uniq:  # letters summed within operand k only: the gradient is constant
        shape = tuple(sizes[c] if c in target else 1 for c in uniq)
        gk = broadcast_to(reshape(permute_to(gk, target, [c for c in uniq if c in target]),
                                  shape), tuple(sizes[c] for c in uniq))
    if uniq != sub:  # a repeated letter: the gradient lies on the diagonal
        xp = x._backend.xp
        key = []
        for c in sub:
            shape = [1] * len(uniq)
            shape[uniq.index(c)] = sizes[c]
            key.append(xp.arange(sizes[c]).reshape(shape))
        gk = IndexBackward.apply(gk, tuple(x.shape), tuple(key), False)
    return gk


def permute_to(t: Tensor, have: str, want) -> Tensor:
    """t with axes labelled `have` reordered to `want`."""
    order = tuple(have.index(c) for c in want)
    return permute(t, order) if order != tuple(range(len(order))) else t


def _einsum_spec(spec, xs) -> Tensor:
    ins, out = spec
    if len(xs) == 1 and ins[0] == out:
        return xs[0]
    return Einsum.apply((tuple(ins), out), *xs)


def _parse(equation: str, shapes: list) -> tuple:
    """(input subscripts, output subscript) with ellipses replaced by fresh letters and the
    implicit output (letters seen once, sorted, after the broadcast dims) made explicit."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} has {len(terms)} operands but "
                         f"{len(shapes)} tensors were given")
    used = set(c for c in eq if c in _LETTERS)
    for c in eq:
        if c not in _LETTERS and c not in ",->.":
            raise ValueError(f"einsum: invalid subscript {c!r} in {equation!r}")
    free = [c for c in _LETTERS if c not in used]
    n_ell = 0
    for t, shp in zip(terms, shapes):
        if "..." in t:
            n_ell = max(n_ell, len(shp) - (len(t) - 3))
    ell = "".join(free[:n_ell])
    ins = []
    for t, shp in zip(terms, shapes):
        if "..." in t:
            k = len(shp) - (len(t) - 3)
            t = t.replace("...", ell[n_ell - k:] if k else "")
        if len(t) != len(shp):
            raise ValueError(f"einsum: subscripts {t!r} do not match an operand of shape "
                             f"{tuple(shp)} in {equation!r}")
        ins.append(t)
    if arrow:
        out = rhs.replace("...", ell)
        for c in out:
            if not any(c in t for t in ins):
                raise ValueError(f"einsum: output subscript {c!r} does not appear in the "
                                 f"inputs of {equation!r}")
        if len(set(out)) != len(out):
            raise ValueError(f"einsum: output subscript repeated in {equation!r}")
    else:
        counts = {}
        for t in ins:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted((c for c, n in counts.items() if n == 1 and c not in ell),
                                   key=lambda c: (c.islower(), c)))
    return ins, out


def _sublist(args) -> tuple:
    """einsum(op1, [0, 1], op2, [1, 2], [0, 2]) as an equation and its operands."""
    def letters(sub):
        return "".join("..." if s is Ellipsis else _LETTERS[s] for s in sub)

    out = None
    if len(args) % 2:
        args, out = args[:-1], args[-1]
    ops, subs = list(args[0::2]), list(args[1::2])
    eq = ",".join(letters(s) for s in subs)
    if out is not None:
        eq += "->" + letters(out)
    return eq, ops


def einsum(*args) -> Tensor:
    """Einstein summation as torch.einsum: an equation and operands (or one list of them),
    or the sublist format; ellipses broadcast, repeated letters take diagonals, an implicit
    output lists the letters seen once in alphabetical order."""
    if args and isinstance(args[0], str):
        equation, ops = args[0], list(args[1:])
        if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
            ops = list(ops[0])
    else:
        equation, ops = _sublist(args)
    if not ops or not all(isinstance(t, Tensor) for t in ops):
        raise TypeError("einsum: operands must be Tensors")
    _check_same_device("einsum", *ops)
    dt = ops[0].dtype
    for t in ops[1:]:
        if t.dtype is not dt:
            raise TypeError(f"einsum: expected operands of one dtype, got {dt} and {t.dtype}")
    ins, out = _parse(equation, [t.shape for t in ops])
    # Sizes of each letter; size-1 dims broadcast (as torch), by expanding that operand.
    sizes = {}
    for t, sub in zip(ops, ins):
        for c, n in zip(sub, t.shape):
            if sizes.get(c, 1) == 1:
                sizes[c] = n
            elif n not in (1, sizes[c]):
                raise ShapeError(f"einsum: subscript {c!r} has size {n} for operand "
                                 f"{tuple(t.shape)} which does not match size {sizes[c]} in "
                                 f"{equation!r}")
    for i, (t, sub) in enumerate(zip(ops, ins)):
        want = tuple(sizes[c] for c in sub)
        if tuple(t.shape) != want:
            if len(set(sub)) != len(sub):
                raise ShapeError(f"einsum: cannot broadcast a diagonal {sub!r} of shape "
                                 f"{tuple(t.shape)}")
            ops[i] = broadcast_to(t, want)
    return _einsum_spec((ins, out), ops)


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Σ over the last `dims` axes of a and the first of b (or the axis lists dims = (da,
    db)), as one matmul of the flattened operands."""
    if isinstance(dims, int) or (isinstance(dims, Tensor) and dims.ndim == 0):
        n = int(dims)
        if n < 0 or n > min(a.ndim, b.ndim):
            raise RuntimeError(f"tensordot: dims {n} out of range for shapes {tuple(a.shape)} "
                               f"and {tuple(b.shape)}")
        da, db = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
    da = [norm_dim(d, a.ndim, "tensordot") for d in da]
    db = [norm_dim(d, b.ndim, "tensordot") for d in db]
    if len(da) != len(db) or any(a.shape[i] != b.shape[j] for i, j in zip(da, db)):
        raise ShapeError(f"tensordot: contracted dims {da} of {tuple(a.shape)} and {db} of "
                         f"{tuple(b.shape)} do not match")
    fa = [d for d in range(a.ndim) if d not in da]
    fb = [d for d in range(b.ndim) if d not in db]
    k = int(np.prod([a.shape[d] for d in da], dtype=np.int64))
    am = reshape(permute(a, tuple(fa + da)), (-1, k) if a._data.size else
                 (int(np.prod([a.shape[d] for d in fa], dtype=np.int64)), k))
    bm = reshape(permute(b, tuple(db + fb)), (k, int(np.prod([b.shape[d] for d in fb],
                                                           dtype=np.int64))))
    return reshape(matmul(am, bm), tuple(a.shape[d] for d in fa) + tuple(b.shape[d] for d in fb))


def kron(input: Tensor, other: Tensor) -> Tensor:
    """Kronecker product: out[i·p + k, j·q + l] = a[i, j]·b[k, l] (any number of dims, the
    shorter operand padded with leading 1s)."""
    n = max(input.ndim, other.ndim)
    a = reshape(input, (1,) * (n - input.ndim) + tuple(input.shape))
    b = reshape(other, (1,) * (n - other.ndim) + tuple(other.shape))
    ia, ib = [], []
    for s, t in zip(a.shape, b.shape):
        ia += [s, 1]
        ib += [1, t]
    prod = reshape(a, tuple(ia)) * reshape(b, tuple(ib))
    return reshape(prod, tuple(s * t for s, t in zip(a.shape, b.shape)))


def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """Cross product of 3-vectors along `dim` (by default the first dim of size 3, as
    torch.cross), broadcasting the other dims: (a × b)_i = a_{i+1} b_{i+2} − a_{i+2} b_{i+1}."""
    try:
        shape = np.broadcast_shapes(tuple(input.shape), tuple(other.shape))
    except ValueError:
        raise ShapeError(f"cross: shapes {tuple(input.shape)} and {tuple(other.shape)} cannot "
                         "be broadcast together") from None
    input, other = broadcast_to(input, shape), broadcast_to(other, shape)
    if dim is None:
        dims = [i for i, n in enumerate(shape) if n == 3]
        if not dims:
            raise RuntimeError(f"cross: no dimension of size 3 in shape {shape}")
        dim = dims[0]
    d = norm_dim(dim, len(shape), "cross")
    if shape[d] != 3:
        raise RuntimeError(f"cross: dimension {dim} of shapes {tuple(input.shape)} must have "
                           "size 3")
    be = input._backend

    def rot(t: Tensor, order) -> Tensor:
        return index_select(t, d, _wrap_array(be.xp.asarray(order, dtype=np.int64), be))

    return rot(input, [1, 2, 0]) * rot(other, [2, 0, 1]) - rot(input, [2, 0, 1]) * \
        rot(other, [1, 2, 0])


def _scaled_add(input: Tensor, prod: Tensor, beta, alpha) -> Tensor:
    """β·input + α·prod, where β = 0 ignores input (NaN in it does not propagate)."""
    if alpha != 1:
        prod = prod * alpha
    if beta == 0:  # where(True, …): input gets a zero gradient, and its NaNs stay out
        shape = np.broadcast_shapes(tuple(input.shape), tuple(prod.shape))
        keep = _wrap_array(prod._backend.xp.ones(shape, dtype=bool), prod._backend)
        return where(keep, prod, input)
    return (input if beta == 1 else input * beta) + prod


def _check_ndims(op: str, a: Tensor, b: Tensor, na: int, nb: int, what: str) -> None:
    if a.ndim != na or b.ndim != nb:
        raise ShapeError(f"{op}: expected {what}, got {tuple(a.shape)} and {tuple(b.shape)}")


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """β·input + α·(mat1 @ mat2) for 2-d mat1, mat2."""
    _check_ndims("addmm", mat1, mat2, 2, 2, "2-d matrices")
    return _scaled_add(input, matmul(mat1, mat2), beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """β·input + α·(mat @ vec) for a 2-d mat and 1-d vec."""
    _check_ndims("addmv", mat, vec, 2, 1, "a matrix and a vector")
    return _scaled_add(input, matmul(mat, vec), beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """β·input + α·(batch1 @ batch2) for 3-d batches."""
    _check_ndims("baddbmm", batch1, batch2, 3, 3, "3-d batches")
    return _scaled_add(input, matmul(batch1, batch2), beta, alpha)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """β·input + α·Σ_b batch1[b] @ batch2[b]."""
    _check_ndims("addbmm", batch1, batch2, 3, 3, "3-d batches")
    return _scaled_add(input, _sum(matmul(batch1, batch2), 0), beta, alpha)
