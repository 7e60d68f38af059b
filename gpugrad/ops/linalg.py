"""Matrix products. Transposes in the VJPs are strided views, never copies."""

from __future__ import annotations

import math

from .._autocast import LOWER, autocast_inputs
from ..autograd.function import Op
from ..autograd.grad_mode import _state as _grad_state
from ..backend import trace as _trace
from ..errors import ShapeError
from ..tensor import Tensor, _check_same_device, _wrap_array
from .broadcast import sum_to
from .elementwise import conj


def _rows(a):
    """`a` (…, k) as the 2-d (rows, k) array of its flattened leading dims (a view when
    the layout allows, else a copy); explicit sizes, so that empty shapes reshape too."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def _mm(xp, a, b):
    """xp.matmul in the operands' dtype: NumPy's bfloat16 (ml_dtypes) products come out in
    float32, the accumulation type, and are rounded back as the GPU's are. An (…, k) @
    (k, n) product is one GEMM over the flattened rows of `a`: NumPy's batched matmul
    calls BLAS once per matrix and is about 2x slower for Linear-sized operands."""
    rec = _trace.active
    if rec is not None and rec.wants_kernel():  # a GEMM, on the enclosing op's device
        return rec.kernel("matmul", None, (a, b), _mm, xp, a, b)
    if a.ndim > 2 and b.ndim == 2:
        out = xp.matmul(_rows(a), b).reshape(a.shape[:-1] + b.shape[1:])
    else:
        out = xp.matmul(a, b)
    return out if out.dtype == a.dtype else out.astype(a.dtype)


def _flat_rows(t: Tensor) -> Tensor:
    """`_rows` for a Tensor, recorded as a reshape (differentiable)."""
    return t.reshape(math.prod(t.shape[:-1]), t.shape[-1])


def _mT(t: Tensor) -> Tensor:
    from .shape import transpose

    return transpose(t, -1, -2)


class MatMul(Op):
    """Y = A @ B (batched, ≥ 2-d);  Ā = sum_to(Ȳ @ Bᴴ),  B̄ = sum_to(Aᴴ @ Ȳ)
    (Bᴴ = conj(B)ᵀ, which is Bᵀ for real B)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_inputs(0, 1)
        return _mm(ctx.xp, a, b)

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        a, b = ctx.saved_input(0), ctx.saved_input(1)
        if not _grad_state.enabled and g._data.dtype.kind != "c":
            return _matmul_vjp_arrays(ctx, g._data, a._data, b._data, need)
        if g._data.dtype.kind == "c":
            a, b = conj(a), conj(b)
        ga = sum_to(matmul(g, _mT(b)), a.shape) if need[0] else None
        gb = None
        if need[1]:
            flags = b._data.flags
            if b.ndim == 2 and a.ndim > 2:
                # B̄ = Σ_batch Aᵀ Ȳ is one product of the flattened rows: Aᵀ Ȳ over (rows, ·)
                a, g = _flat_rows(a), _flat_rows(g)
            if a.ndim == 2 and b.ndim == 2 and flags.f_contiguous and not flags.c_contiguous:
                # B is a transposed view (x @ W.T): form (Ȳᵀ A)ᵀ so that W's gradient comes
                # out in W's own row-major layout, with no strided copy later.
                gb = _mT(matmul(_mT(g), a))
            else:
                gb = sum_to(matmul(_mT(a), g), b.shape)
        return ga, gb


def _matmul_vjp_arrays(ctx, g, a, b, need) -> tuple:
    """MatMul's VJP on raw arrays, for a real backward that records no graph (no transpose
    or sum_to ops: the transposes are strided views handed to BLAS)."""
    xp, be = ctx.xp, ctx.backend
    ga = gb = None
    if need[0]:
        ga = _wrap_array(be.sum_to_shape(_mm(xp, g, xp.swapaxes(b, -1, -2)), a.shape), be)
    if need[1]:
        if b.ndim == 2 and a.ndim > 2:
            a, g = _rows(a), _rows(g)  # B̄ = Σ_batch Aᵀ Ȳ as one GEMM over the rows
        if a.ndim == 2 and b.ndim == 2 and b.flags.f_contiguous and not b.flags.c_contiguous:
            gb = _mm(xp, g.T, a).T  # B is a transposed view: B̄ in B's own layout
        else:
            gb = be.sum_to_shape(_mm(xp, xp.swapaxes(a, -1, -2), g), b.shape)
        gb = _wrap_array(gb, be)
    return ga, gb


class Linear(Op):
    """y = x·Wᵀ + b for x (…, in), W (out, in), b (out,) or None: one op (as PyTorch's
    addmm) instead of a transpose, a product and a broadcast add.
    VJP: x̄ = ȳ·W,  W̄ = Ȳᵀ·X,  b̄ = Σ_rows Ȳ, with X, Ȳ the (rows, ·) flattenings of x, ȳ;
    W̄ comes out in W's own row-major layout. Recorded with Tensor ops under
    `create_graph=True`, so it is differentiable again."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_inputs(0, 1)
        y = _mm(ctx.xp, x, w.T)
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        x, w = ctx.saved_input(0), ctx.saved_input(1)
        if _grad_state.enabled:
            g2 = _flat_rows(g)
            gx = g @ w if need[0] else None
            gw = _mT(g2) @ _flat_rows(x) if need[1] else None
            gb = g2.sum(0) if need[2] else None
            return gx, gw, gb
        xp, be = ctx.xp, ctx.backend
        gd = g._data
        g2 = _rows(gd)
        gx = _wrap_array(_mm(xp, gd, w._data), be) if need[0] else None
        gw = _wrap_array(_mm(xp, g2.T, _rows(x._data)), be) if need[1] else None
        gb = _wrap_array(g2.sum(axis=0), be) if need[2] else None
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x·Wᵀ + b with W (out, in) and b (out,) as one op; other shapes go through
    matmul and broadcasting."""
    if (weight.ndim == 2 and input.ndim >= 1 and input.shape[-1] == weight.shape[1]
            and (bias is None or tuple(bias.shape) == (weight.shape[0],))
            and input.dtype is weight.dtype and (bias is None or bias.dtype is weight.dtype)):
        return Linear.apply(input, weight, bias)
    out = input @ (weight.T if weight.ndim == 2 else weight)
    return out if bias is None else out + bias


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: 1-d operands are vectors, batch dims broadcast."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("matmul: both operands must be Tensors")
    input, other = autocast_inputs(LOWER, input, other)
    _check_same_device("matmul", input, other)
    if input.dtype is not other.dtype:
        raise TypeError(f"matmul: expected both operands to have the same dtype, got "
                        f"{input.dtype} and {other.dtype}")
    sa, sb = input.shape, other.shape
    if input.ndim == 0 or other.ndim == 0:
        raise ShapeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                         f"{tuple(sa)} and {tuple(sb)}")
    k_a = sa[-1]
    k_b = sb[0] if other.ndim == 1 else sb[-2]
    if k_a != k_b:
        raise ShapeError(f"matmul: shapes {tuple(sa)} and {tuple(sb)} cannot be multiplied "
                         f"({k_a} != {k_b})")
    try:
        a = input if input.ndim > 1 else input.reshape(1, k_a)
        b = other if other.ndim > 1 else other.reshape(k_b, 1)
        out = MatMul.apply(a, b)
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of shapes {tuple(sa)} and {tuple(sb)} "
                         "cannot be broadcast") from None
    if input.ndim == 1 and other.ndim == 1:
        return out.reshape(())
    if input.ndim == 1:
        return out.reshape(out.shape[:-2] + out.shape[-1:])
    if other.ndim == 1:
        return out.reshape(out.shape[:-1])
    return out


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """2-d matrix product."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(f"mm: expected 2-d tensors, got {tuple(input.shape)} and "
                         f"{tuple(mat2.shape)}")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched 3-d matrix product."""
    if input.ndim != 3 or mat2.ndim != 3:
        raise ShapeError(f"bmm: expected 3-d tensors, got {tuple(input.shape)} and "
                         f"{tuple(mat2.shape)}")
    return matmul(input, mat2)


def dot(input: Tensor, other: Tensor) -> Tensor:
    """Inner product of two 1-d tensors."""
    if input.ndim != 1 or other.ndim != 1:
        raise ShapeError(f"dot: expected 1-d tensors, got {tuple(input.shape)} and "
                         f"{tuple(other.shape)}")
    return matmul(input, other)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two 1-d tensors."""
    return matmul(input.reshape(-1, 1), vec2.reshape(1, -1))
