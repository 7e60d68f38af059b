"""Elementwise ops: arithmetic, unary math, activations, casts, comparisons.

Each Op's docstring states its forward and its VJP; `sum_to` reduces a broadcast
gradient back to an input's shape.

Complex tensors follow PyTorch's convention: the cotangent of a complex value is the
conjugate Wirtinger derivative ∂L/∂z̄ (times 2), so for a holomorphic y = f(x) the VJP is
x̄ = ȳ·conj(f'(x)). The real formulas below are the same with conj dropped; each backward
applies `conj` only when its cotangent is complex, so real dtypes pay one dtype test.
"""

from __future__ import annotations

import cmath
import math

from .. import _dtype
from .._dtype import from_numpy_dtype, to_dtype
from ..autograd.function import Op
from ..autograd.grad_mode import _state as _grad_state
from ..tensor import Tensor, _wrap_array
from ._util import binary_operands, broadcast_error, float_dtype_of, is_scalar
from .reduce import sum_to


def _shape(x) -> tuple:
    return getattr(x, "shape", ())


def _binary(ctx, fn, a, b, op: str):
    try:
        return fn(a, b)
    except ValueError:
        raise broadcast_error(op, _shape(a), _shape(b)) from None


# --- arithmetic ---------------------------------------------------------------------------
# The binary ops read input shapes from the node's input metadata (`ctx.input_shape(i)`,
# recorded for every input that needs a gradient) instead of storing them: they are the
# hottest ops, and every attribute saved in forward is per-op overhead.
_BOTH = (0, 1)
_OUT0 = (0,)


class Add(Op):
    """y = a + α·b;  ā = sum_to(ȳ),  b̄ = α·sum_to(ȳ)."""

    _sign, _name = 1, "add"

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        ctx.alpha = alpha
        if alpha != 1:
            b = b * alpha
        xp = ctx._backend.xp
        try:
            return ctx._backend.binary(xp.add if ctx._sign > 0 else xp.subtract, a, b)
        except ValueError:
            raise broadcast_error(ctx._name, _shape(a), _shape(b)) from None

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        gb = None
        if need[1]:
            gb = sum_to(g, ctx.input_shape(1))
            scale = ctx._sign * ctx.alpha
            if scale != 1:
                gb = gb * (scale.conjugate() if type(scale) is complex else scale)
        return (sum_to(g, ctx.input_shape(0)) if need[0] else None), gb


class Sub(Add):
    """y = a − α·b;  ā = sum_to(ȳ),  b̄ = −α·sum_to(ȳ)."""

    _sign, _name = -1, "sub"


class Mul(Op):
    """y = a·b;  ā = sum_to(ȳ·conj(b)),  b̄ = sum_to(ȳ·conj(a))."""

    @staticmethod
    def forward(ctx, a, b):
        ctx._save_in = _BOTH
        ctx.consts = (a, b)
        try:
            return ctx._backend.binary(ctx._backend.xp.multiply, a, b)
        except ValueError:
            raise broadcast_error("mul", _shape(a), _shape(b)) from None

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        cplx = g._data.dtype.kind == "c"
        ga = gb = None
        if need[0] and need[1] and not cplx and not _grad_state.enabled:
            a, b = ctx.saved_input(0), ctx.saved_input(1)
            gd, ad, bd = g._data, a._data, b._data
            if gd.shape == ad.shape == bd.shape and gd.dtype == ad.dtype == bd.dtype:
                # both products in one pass over ȳ (nothing to record: no create_graph)
                ga, gb = ctx.backend.mul_pair(gd, ad, bd)
                return _wrap_array(ga, ctx.backend), _wrap_array(gb, ctx.backend)
        if need[0]:
            b = ctx.saved_input(1)
            b = ctx.consts[1] if b is None else b
            ga = sum_to(g * (conj(b) if cplx else b), ctx.input_shape(0))
        if need[1]:
            a = ctx.saved_input(0)
            a = ctx.consts[0] if a is None else a
            gb = sum_to(g * (conj(a) if cplx else a), ctx.input_shape(1))
        return ga, gb


class Div(Op):
    """y = a / b;  ā = sum_to(ȳ / conj(b)),  b̄ = −sum_to(ȳ·conj(a) / conj(b²))."""

    @staticmethod
    def forward(ctx, a, b):
        ctx._save_in = _BOTH
        ctx.consts = (a, b)
        try:
            return ctx._backend.binary(ctx._backend.xp.true_divide, a, b)
        except ValueError:
            raise broadcast_error("div", _shape(a), _shape(b)) from None

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        b = ctx.saved_input(1)
        b = ctx.consts[1] if b is None else b
        if g._data.dtype.kind == "c":
            b = conj(b)
        ga = sum_to(g / b, ctx.input_shape(0)) if need[0] else None
        gb = None
        if need[1]:
            a = ctx.saved_input(0)
            a = ctx.consts[0] if a is None else a
            if g._data.dtype.kind == "c":
                a = conj(a)
            gb = sum_to(-(g * a) / (b * b), ctx.input_shape(1))
        return ga, gb


class Neg(Op):
    """y = −x;  x̄ = −ȳ."""

    @staticmethod
    def forward(ctx, x):
        return ctx.xp.negative(x)

    @staticmethod
    def backward(ctx, g):
        return -g


class PowScalar(Op):
    """y = x^p (p a number);  x̄ = ȳ·conj(p·x^(p−1))."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_inputs(0)
        ctx.p = p
        if p == 2:
            return ctx.xp.multiply(x, x)
        return ctx.xp.power(x, p)

    @staticmethod
    def backward(ctx, g):
        p = ctx.p
        if p == 0:
            return g * 0, None
        x = ctx.saved_input(0)
        d = x * 2 if p == 2 else pow_scalar(x, p - 1) * p
        if g._data.dtype.kind == "c":
            d = conj(d)
        return g * d, None


class RPowScalar(Op):
    """y = s^x (s a number);  x̄ = ȳ·conj(y·ln s) (0 where s = 0 and x ≥ 0, as in PyTorch;
    ln s is the principal complex logarithm when x is complex)."""

    @staticmethod
    def forward(ctx, s, x):
        ctx.save_output()
        if x.dtype.kind == "c":
            ctx.log_s = cmath.log(s) if s != 0 else float("-inf")
            return ctx.xp.power(s, x)
        if s == 0:
            ctx.save_inputs(1)
        ctx.log_s = math.log(s) if s > 0 else (float("-inf") if s == 0 else float("nan"))
        return ctx.xp.power(s, x)

    @staticmethod
    def backward(ctx, g):
        if g._data.dtype.kind == "c":
            return None, g * conj(ctx.saved_output * ctx.log_s)
        gx = g * ctx.saved_output * ctx.log_s
        if ctx.log_s == float("-inf"):
            gx = where(ctx.saved_input(1) >= 0, 0.0, gx)
        return None, gx


class Pow(Op):
    """y = a^b;  ā = sum_to(ȳ·conj(b·a^(b−1))) (0 where b = 0),
    b̄ = sum_to(ȳ·conj(y·ln a)) (0 where a = 0, Re b ≥ 0)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_inputs(0, 1)
        ctx.save_output()
        ctx.shapes = (a.shape, b.shape)
        return _binary(ctx, ctx.xp.power, a, b, "pow")

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        need = ctx.needs_input_grad
        a, b = ctx.saved_input(0), ctx.saved_input(1)
        cplx = g._data.dtype.kind == "c"
        ga = gb = None
        if need[0]:
            d = b * pow(a, b - 1)
            ga = sum_to(where(b == 0, 0.0, g * (conj(d) if cplx else d)), sa)
        if need[1]:
            y = ctx.saved_output
            zero = (a == 0) & ((real(b) if cplx else b) >= 0)
            d = y * log(a)
            gb = sum_to(where(zero, 0.0, g * (conj(d) if cplx else d)), sb)
        return ga, gb


# --- unary math ---------------------------------------------------------------------------
class Exp(Op):
    """y = eˣ;  x̄ = ȳ·conj(y)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_output()
        return ctx.xp.exp(x)

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved_output
        return g * (conj(y) if g._data.dtype.kind == "c" else y)


class Log(Op):
    """y = ln x;  x̄ = ȳ / conj(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_inputs(0)
        return ctx.xp.log(x)

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_input(0)
        return g / (conj(x) if g._data.dtype.kind == "c" else x)


class Log1p(Op):
    """y = ln(1 + x);  x̄ = ȳ / conj(1 + x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_inputs(0)
        return ctx.xp.log1p(x)

    @staticmethod
    def backward(ctx, g):
        d = ctx.saved_input(0) + 1
        return g / (conj(d) if g._data.dtype.kind == "c" else d)


class Sqrt(Op):
    """y = √x;  x̄ = ȳ / (2·conj(y))."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_output()
        return ctx.xp.sqrt(x)

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved_output
        return g / ((conj(y) if g._data.dtype.kind == "c" else y) * 2)


class Sin(Op):
    """y = sin x;  x̄ = ȳ·conj(cos x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_inputs(0)
        return ctx.xp.sin(x)

    @staticmethod
    def backward(ctx, g):
        d = cos(ctx.saved_input(0))
        return g * (conj(d) if g._data.dtype.kind == "c" else d)


class Cos(Op):
    """y = cos x;  x̄ = −ȳ·conj(sin x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_inputs(0)
        return ctx.xp.cos(x)

    @staticmethod
    def backward(ctx, g):
        d = sin(ctx.saved_input(0))
        return -(g * (conj(d) if g._data.dtype.kind == "c" else d))


class Abs(Op):
    """y = |x|;  x̄ = ȳ·sign(x); for complex x (y real), x̄ = ȳ·x/|x| (0 at x = 0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_inputs(0)
        return ctx.xp.abs(x)

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_input(0)
        if x._data.dtype.kind == "c":
            return g * sgn(x)
        return g * sign(x)


class Conj(Op):
    """y = conj(x) (not holomorphic);  x̄ = conj(ȳ)."""

    @staticmethod
    def forward(ctx, x):
        return ctx.xp.conj(x)

    @staticmethod
    def backward(ctx, g):
        return conj(g)


class ComplexActivation(Op):
    """y = tanh x or σ(x) for complex x (the fused kernels are real-only);
    x̄ = ȳ·conj(1 − y²) for tanh, ȳ·conj(y(1 − y)) for sigmoid."""

    @staticmethod
    def forward(ctx, x, kind):
        ctx.kind = kind
        ctx.save_output()
        xp = ctx.xp
        if kind == "tanh":
            return xp.tanh(x)
        if kind == "sigmoid":
            return xp.reciprocal(xp.exp(xp.negative(x)) + 1)
        raise TypeError(f"{kind}: not implemented for complex tensors")

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved_output
        d = 1 - y * y if ctx.kind == "tanh" else y * (1 - y)
        return g * conj(d), None


class Activation(Op):
    """y = act(x) for relu, sigmoid, tanh, through the backend's fused kernel;
    x̄ = ActivationBackward(y, ȳ): relu ȳ·[y>0], sigmoid ȳ·y(1−y), tanh ȳ·(1−y²)."""

    @staticmethod
    def forward(ctx, x, kind):
        ctx.kind = kind
        ctx._save_out = _OUT0
        return ctx._backend.act_forward(kind, x)

    @staticmethod
    def backward(ctx, g):
        if not _grad_state.enabled:  # no graph to record: just the fused kernel
            y = ctx.saved_output_array()
            return _wrap_array(ctx.backend.act_backward(ctx.kind, y, g._data), ctx.backend), None
        return ActivationBackward.apply(ctx.saved_output, g, ctx.kind), None

    def name(self) -> str:
        return self.kind.capitalize() + "Backward"


class ActivationBackward(Op):
    """z = act'(y)·ȳ in one kernel. Its own VJP, for double backward:
    ȳ̄ = act'(y)·z̄;  ȳ-path through y: relu 0, sigmoid z̄·ȳ·(1−2y), tanh −2·z̄·ȳ·y."""

    @staticmethod
    def forward(ctx, y, g, kind):
        ctx.kind = kind
        ctx.save_inputs(0, 1)
        return ctx.backend.act_backward(kind, y, g)

    @staticmethod
    def backward(ctx, gz):
        need = ctx.needs_input_grad
        y = ctx.saved_input(0)
        gy = gg = None
        if need[1]:
            gg = ActivationBackward.apply(y, gz, ctx.kind)
        if need[0] and ctx.kind != "relu":
            g = ctx.saved_input(1)
            if ctx.kind == "sigmoid":
                gy = gz * g * (1 - y * 2)
            else:
                gy = gz * g * y * -2
        return gy, gg, None


class Clamp(Op):
    """y = min(max(x, lo), hi);  x̄ = ȳ·[lo ≤ x ≤ hi]."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        xp = ctx.xp
        mask = xp.ones(x.shape, dtype=bool)
        if lo is not None:
            mask &= x >= lo
        if hi is not None:
            mask &= x <= hi
        ctx.mask = mask
        return xp.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        return where(_wrap_array(ctx.mask, ctx.backend), g, 0.0), None, None


class Maximum(Op):
    """y = max(a, b);  ā = ȳ·(1 − [a<b] − ½[a=b]),  b̄ = ȳ·(1 − [b<a] − ½[a=b])
    (ties split evenly; a NaN operand sends the full ȳ to both, as in PyTorch).
    min(a, b) is the same with < and > swapped."""

    @staticmethod
    def forward(ctx, a, b, take_max=True):
        xp = ctx.xp
        ctx.shapes = (a.shape, b.shape)
        out = _binary(ctx, xp.maximum if take_max else xp.minimum, a, b,
                      "maximum" if take_max else "minimum")
        lose_a, lose_b = (a < b, a > b) if take_max else (a > b, a < b)
        ctx.masks = lose_a, lose_b, a == b
        return out

    @staticmethod
    def backward(ctx, g):
        lose_a, lose_b, tie = ctx.masks
        dt = g._data.dtype
        sa, sb = ctx.shapes
        need = ctx.needs_input_grad

        def weight(lose):
            return _wrap_array(1 - lose.astype(dt) - tie.astype(dt) * 0.5, ctx.backend)

        ga = sum_to(g * weight(lose_a), sa) if need[0] else None
        gb = sum_to(g * weight(lose_b), sb) if need[1] else None
        return ga, gb, None


class Where(Op):
    """y = cond ? a : b;  ā = sum_to(cond ? ȳ : 0),  b̄ = sum_to(cond ? 0 : ȳ)."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond = cond
        ctx.shapes = (_shape(a), _shape(b))
        try:
            return ctx.xp.where(cond, a, b)
        except ValueError:
            raise broadcast_error("where", cond.shape, _shape(a), _shape(b)) from None

    @staticmethod
    def backward(ctx, g):
        c = _wrap_array(ctx.cond, ctx.backend)
        sa, sb = ctx.shapes
        need = ctx.needs_input_grad
        ga = sum_to(where(c, g, 0.0), sa) if need[1] else None
        gb = sum_to(where(c, 0.0, g), sb) if need[2] else None
        return None, ga, gb


class Cast(Op):
    """y = x as another dtype;  x̄ = ȳ cast back to x's dtype (its real part when x is real
    and y complex: a real input only sees the real direction)."""

    @staticmethod
    def forward(ctx, x, np_dtype):
        ctx.src = x.dtype
        return x.astype(np_dtype)

    @staticmethod
    def backward(ctx, g):
        if g._data.dtype.kind == "c" and ctx.src.kind != "c":
            g = real(g)
        return cast(g, from_numpy_dtype(ctx.src)), None


class ToDevice(Op):
    """y = x copied to another device;  x̄ = ȳ copied back."""

    @staticmethod
    def forward(ctx, x, target):
        src = ctx._backend
        ctx.src = src
        ctx._backend = target
        host = src.to_host(x)
        return host.copy() if target.name == "cpu" and host is x else target.asarray(host)

    @staticmethod
    def backward(ctx, g):
        return ToDevice.apply(g, ctx.src), None


class CopyFrom(Op):
    """y = broadcast(src) cast to dst's dtype (the value of dst.copy_(src));
    src̄ = sum_to(ȳ)."""

    @staticmethod
    def forward(ctx, dst, src):
        ctx.shape = src.shape
        try:
            return ctx.xp.broadcast_to(src, dst.shape).astype(dst.dtype)
        except ValueError:
            raise broadcast_error("copy_", dst.shape, src.shape) from None

    @staticmethod
    def backward(ctx, g):
        return None, sum_to(g, ctx.shape)


# --- functional API ----------------------------------------------------------------------
def add(input, other, *, alpha=1) -> Tensor:
    """input + alpha · other, broadcasting."""
    a, b = binary_operands(input, other, "add")
    return Add.apply(a, b, alpha=alpha)


def sub(input, other, *, alpha=1) -> Tensor:
    """input − alpha · other, broadcasting."""
    a, b = binary_operands(input, other, "sub")
    return Sub.apply(a, b, alpha=alpha)


def rsub(input, other) -> Tensor:
    """other − input."""
    b, a = binary_operands(input, other, "sub")
    return Sub.apply(a, b)


def mul(input, other) -> Tensor:
    """input · other, broadcasting."""
    a, b = binary_operands(input, other, "mul")
    return Mul.apply(a, b)


def div(input, other, *, rounding_mode=None) -> Tensor:
    """input / other (true division; integers give float32), broadcasting."""
    if rounding_mode == "floor":
        return floor_divide(input, other)
    a, b = binary_operands(input, other, "div")
    t = a if isinstance(a, Tensor) else b
    if t.dtype.category < 2:
        a = cast(a, _dtype.float32) if isinstance(a, Tensor) else a
        b = cast(b, _dtype.float32) if isinstance(b, Tensor) else b
    if rounding_mode == "trunc":
        return trunc(Div.apply(a, b))
    return Div.apply(a, b)


true_divide = divide = div


def rdiv(input, other) -> Tensor:
    """other / input."""
    return div(other, input) if isinstance(other, Tensor) else div(
        full_like_scalar(input, other), input)


def full_like_scalar(t: Tensor, value) -> Tensor:
    dt = _result_dtype_scalar(t, value)
    return _wrap_array(t._backend.xp.full((), value, dtype=dt.np), t._backend)


def _result_dtype_scalar(t, value):
    from ._util import result_dtype

    return result_dtype(t, value)


def neg(input: Tensor) -> Tensor:
    """−input."""
    return Neg.apply(input)


negative = neg


def pow_scalar(x: Tensor, p) -> Tensor:
    return PowScalar.apply(x, p)


def pow(input, exponent) -> Tensor:  # noqa: A001 - torch.pow
    """input ** exponent; either may be a number."""
    if isinstance(input, Tensor) and is_scalar(exponent):
        a, p = binary_operands(input, exponent, "pow")
        return PowScalar.apply(a, p)
    if is_scalar(input) and isinstance(exponent, Tensor):
        s, e = binary_operands(input, exponent, "pow")
        return RPowScalar.apply(s, e)
    a, b = binary_operands(input, exponent, "pow")
    return Pow.apply(a, b)


def _unary_float(op, x: Tensor) -> Tensor:
    if x.dtype.category < 2:
        x = cast(x, float_dtype_of(x))
    return op.apply(x)


def exp(input: Tensor) -> Tensor:
    """eˣ elementwise."""
    return _unary_float(Exp, input)


def log(input: Tensor) -> Tensor:
    """Natural logarithm elementwise."""
    return _unary_float(Log, input)


def log1p(input: Tensor) -> Tensor:
    """ln(1 + x) elementwise, accurate for small x."""
    return _unary_float(Log1p, input)


def sqrt(input: Tensor) -> Tensor:
    """√x elementwise."""
    return _unary_float(Sqrt, input)


def sin(input: Tensor) -> Tensor:
    """sin x elementwise."""
    return _unary_float(Sin, input)


def cos(input: Tensor) -> Tensor:
    """cos x elementwise."""
    return _unary_float(Cos, input)


def abs(input: Tensor) -> Tensor:  # noqa: A001 - torch.abs
    """|x| elementwise (real for complex x)."""
    return Abs.apply(input)


def conj(input):
    """The complex conjugate (the input itself for real tensors and numbers, as in torch)."""
    if isinstance(input, Tensor):
        return Conj.apply(input) if input._data.dtype.kind == "c" else input
    return input.conjugate() if isinstance(input, complex) else input


def real(input: Tensor) -> Tensor:
    """The real part (the input itself for a real tensor); differentiable."""
    from .complex import real as _real

    return _real(input)


def sgn(input: Tensor) -> Tensor:
    """x/|x| for complex x (0 at 0), sign(x) for real x."""
    if input._data.dtype.kind != "c":
        return sign(input)
    a = Abs.apply(input)
    return where(a == 0, 0.0, input / where(a == 0, 1.0, a))


def _activation(x: Tensor, kind: str) -> Tensor:
    k = x._data.dtype.kind
    if k != "f":
        if k == "c":
            return ComplexActivation.apply(x, kind)
        x = cast(x, float_dtype_of(x))
    return Activation.apply(x, kind)


def tanh(input: Tensor) -> Tensor:
    """tanh x elementwise."""
    return _activation(input, "tanh")


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e⁻ˣ) elementwise."""
    return _activation(input, "sigmoid")


def relu(input: Tensor) -> Tensor:
    """max(x, 0) elementwise."""
    cat = input.dtype.category
    if cat != 2:
        if cat == 3:
            raise TypeError("relu: not implemented for complex tensors")
        return _wrap_array(input._backend.xp.maximum(input._data, 0), input._backend)
    return Activation.apply(input, "relu")


def clamp(input: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """Clip to [min, max]; either bound may be None or a Tensor."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min if isinstance(min, Tensor) else full_like_scalar(out, min))
        if max is not None:
            out = minimum(out, max if isinstance(max, Tensor) else full_like_scalar(out, max))
        return out
    bound = min if min is not None else max
    t, _ = binary_operands(input, bound, "clamp")
    return Clamp.apply(t, min, max)


clip = clamp


def maximum(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise maximum of two tensors (ties split the gradient equally)."""
    a, b = binary_operands(input, other, "maximum")
    return Maximum.apply(a, b, True)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise minimum of two tensors (ties split the gradient equally)."""
    a, b = binary_operands(input, other, "minimum")
    return Maximum.apply(a, b, False)


def where(condition, input, other) -> Tensor:
    """Elementwise `input` where `condition` else `other` (numbers allowed), broadcasting."""
    if not isinstance(condition, Tensor):
        raise TypeError("where: condition must be a bool Tensor")
    if isinstance(input, Tensor) or isinstance(other, Tensor):
        a, b = binary_operands(input, other, "where")
        ref = a if isinstance(a, Tensor) else b
        if condition._backend is not ref._backend:
            from ..tensor import _check_same_device

            _check_same_device("where", condition, ref)
        cond = condition._data if condition._data.dtype == bool else condition._data.astype(bool)
        return Where.apply(_wrap_array(cond, condition._backend), a, b)
    raise TypeError("where: at least one of input and other must be a Tensor")


def cast(x, dtype) -> Tensor:
    """x converted to `dtype` (differentiable between floating types)."""
    if not isinstance(x, Tensor):
        return x
    dtype = to_dtype(dtype)
    np_dt = x._backend.np_dtype(dtype)
    if np_dt is None:
        raise TypeError(f"dtype {dtype} is not supported on {x.device}"
                        + (f" ({_dtype.BF16_HINT})" if dtype is _dtype.bfloat16 else ""))
    if x._data.dtype == np_dt:
        return x
    return Cast.apply(x, np_dt)


def copy_from(dst: Tensor, src) -> Tensor:
    if not isinstance(src, Tensor):
        src = Tensor(src, dtype=dst.dtype, device=dst.device)
    if src._backend is not dst._backend:
        src = src.to(dst.device)
    return CopyFrom.apply(dst.detach(), src)


# --- non-differentiable ---------------------------------------------------------------------
def _nondiff(fn, *args) -> Tensor:
    t = next(a for a in args if isinstance(a, Tensor))
    arrays = [a._data if isinstance(a, Tensor) else a for a in args]
    try:
        out = fn(*arrays)
    except ValueError:
        raise broadcast_error(getattr(fn, "__name__", "op"), *[_shape(a) for a in arrays]) \
            from None
    return _wrap_array(out, t._backend)


def _compare(name: str):
    def op(input, other) -> Tensor:
        a, b = binary_operands(input, other, name)
        t = a if isinstance(a, Tensor) else b
        return _nondiff(getattr(t._backend.xp, name), a, b)

    op.__name__ = name
    op.__doc__ = f"Elementwise `{name}` (a bool tensor that never requires grad)."
    return op


eq = _compare("equal")
ne = _compare("not_equal")
lt = _compare("less")
le = _compare("less_equal")
gt = _compare("greater")
ge = _compare("greater_equal")
logical_and = _compare("logical_and")
logical_or = _compare("logical_or")
logical_xor = _compare("logical_xor")
bitwise_and = _compare("bitwise_and")
bitwise_or = _compare("bitwise_or")
bitwise_xor = _compare("bitwise_xor")


def floor_divide(input, other) -> Tensor:
    """⌊input / other⌋ (not differentiable)."""
    a, b = binary_operands(input, other, "floor_divide")
    t = a if isinstance(a, Tensor) else b
    return _nondiff(t._backend.xp.floor_divide, a, b)


def remainder(input, other) -> Tensor:
    """input mod other with the sign of other, as Python's % (not differentiable)."""
    a, b = binary_operands(input, other, "remainder")
    t = a if isinstance(a, Tensor) else b
    return _nondiff(t._backend.xp.remainder, a, b)


def logical_not(input: Tensor) -> Tensor:
    """Elementwise not (a bool tensor)."""
    return _nondiff(input._backend.xp.logical_not, input)


def bitwise_not(input: Tensor) -> Tensor:
    """~x for bool and integer tensors."""
    if input.dtype.category >= 2:
        raise TypeError(f"bitwise_not: not supported for dtype {input.dtype}")
    return _nondiff(input._backend.xp.invert, input)


def sign(input: Tensor) -> Tensor:
    """−1, 0 or 1 elementwise (never requires grad); 0 at NaN, as in torch."""
    xp = input._backend.xp
    if input.dtype.category == 2:
        return _nondiff(lambda a: xp.nan_to_num(xp.sign(a), nan=0.0), input)
    return _nondiff(xp.sign, input)


def round(input: Tensor, decimals: int = 0) -> Tensor:  # noqa: A001
    """Round half to even (never requires grad)."""
    return _nondiff(lambda a: input._backend.xp.round(a, decimals), input)


def floor(input: Tensor) -> Tensor:
    """⌊x⌋ elementwise (never requires grad)."""
    return _nondiff(input._backend.xp.floor, input)


def ceil(input: Tensor) -> Tensor:
    """⌈x⌉ elementwise (never requires grad)."""
    return _nondiff(input._backend.xp.ceil, input)


def trunc(input: Tensor) -> Tensor:
    """x rounded toward zero (never requires grad)."""
    return _nondiff(input._backend.xp.trunc, input)


def isnan(input: Tensor) -> Tensor:
    """Elementwise NaN test."""
    return _nondiff(input._backend.xp.isnan, input)


def isinf(input: Tensor) -> Tensor:
    """Elementwise ±inf test."""
    return _nondiff(input._backend.xp.isinf, input)


def isfinite(input: Tensor) -> Tensor:
    """Elementwise finiteness test."""
    return _nondiff(input._backend.xp.isfinite, input)

