"""Elementwise ops: arithmetic, unary math, activations, comparisons (casts and device
copies live in `convert`, re-exported here).

The differentiable elementwise math is rows of the pointwise table (gpugrad/ops/table.py)
run by the one `Pointwise` op (`run(name, ...)`): each function here only promotes its
operands and picks the row; forward, VJP and second derivatives come from the row's
expression, + − × ÷ included (their forward runs as the backend's ufunc, Mul's backward
as one two-product pass); `sum_to` reduces a broadcast gradient back to an input's shape.

Complex tensors follow PyTorch's convention: the cotangent of a complex value is the
conjugate Wirtinger derivative ∂L/∂z̄ (times 2), so for a holomorphic y = f(x) the VJP is
x̄ = ȳ·conj(f'(x)); the table's differentiation applies the conjugation centrally.
"""

from __future__ import annotations

from .. import _dtype
from ..autograd.function import Op, _scalar_kwargs
from ..tensor import Tensor, _wrap_array
from ._util import binary_operands, float_dtype_of, is_scalar
from .broadcast import broadcast_error
from .convert import Cast, CopyFrom, ToDevice, cast, copy_from, real  # noqa: F401 - re-exported
from .table import ROWS


def _shape(x) -> tuple:
    return getattr(x, "shape", ())


# --- arithmetic ---------------------------------------------------------------------------
# Rows of the table too (add, add_alpha, sub, sub_alpha, mul, div, neg): their forward runs
# as the backend's ufunc (see Row.ufunc) and Mul's real backward as one two-product pass.
_ADD, _ADD_ALPHA = ROWS["add"].apply, ROWS["add_alpha"].apply
_SUB, _SUB_ALPHA = ROWS["sub"].apply, ROWS["sub_alpha"].apply
_MUL, _DIV, _NEG = ROWS["mul"].apply, ROWS["div"].apply, ROWS["neg"].apply


def _alpha(row: str, alpha):
    """alpha as a number: a one-element Tensor is read as one, as PyTorch reads a Scalar."""
    return _scalar_kwargs(ROWS[row].op, {"alpha": alpha})["alpha"]


class Conj(Op):
    """y = conj(x) (not holomorphic);  x̄ = conj(ȳ)."""

    @staticmethod
    def forward(ctx, x):
        return ctx.xp.conj(x)

    @staticmethod
    def backward(ctx, g):
        return conj(g)


# --- functional API ----------------------------------------------------------------------
def add(input, other, *, alpha=1) -> Tensor:
    """input + alpha · other, broadcasting;  ā = ȳ, b̄ = ȳ·conj(α) (rows `add`,
    `add_alpha`)."""
    a, b = binary_operands(input, other, "add")
    if type(alpha) is int and alpha == 1:
        return _ADD(a, b)
    if isinstance(alpha, Tensor):
        alpha = _alpha("add", alpha)
    return _ADD(a, b) if alpha == 1 else _ADD_ALPHA(a, b, params=(alpha,))


def sub(input, other, *, alpha=1) -> Tensor:
    """input − alpha · other, broadcasting;  ā = ȳ, b̄ = −ȳ·conj(α) (rows `sub`,
    `sub_alpha`)."""
    a, b = binary_operands(input, other, "sub")
    if type(alpha) is int and alpha == 1:
        return _SUB(a, b)
    if isinstance(alpha, Tensor):
        alpha = _alpha("sub", alpha)
    return _SUB(a, b) if alpha == 1 else _SUB_ALPHA(a, b, params=(alpha,))


def rsub(input, other) -> Tensor:
    """other − input."""
    b, a = binary_operands(input, other, "sub")
    return _SUB(a, b)


def mul(input, other) -> Tensor:
    """input · other, broadcasting;  ā = ȳ·conj(b), b̄ = ȳ·conj(a) (row `mul`)."""
    a, b = binary_operands(input, other, "mul")
    return _MUL(a, b)


def div(input, other, *, rounding_mode=None) -> Tensor:
    """input / other, broadcasting: true division (integers give float32), or rounded
    toward zero (`rounding_mode="trunc"`) or down (`"floor"`), which keeps an integer
    dtype exactly (an integer division by zero raises, as in PyTorch);  ā = ȳ / conj(b),
    b̄ = −ȳ·conj((a/b)/b) (row `div`)."""
    if rounding_mode not in (None, "trunc", "floor"):
        raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                         f"but found {rounding_mode!r}")
    a, b = binary_operands(input, other, "div")
    t = a if isinstance(a, Tensor) else b
    if rounding_mode is not None and t.dtype.category < 2:
        return _int_divide(a, b, rounding_mode)
    if rounding_mode == "floor":
        return floor_divide(a, b)
    if t.dtype.category < 2:
        a = cast(a, _dtype.DEFAULT_FLOAT) if isinstance(a, Tensor) else a
        b = cast(b, _dtype.DEFAULT_FLOAT) if isinstance(b, Tensor) else b
    if rounding_mode == "trunc":
        return trunc(_DIV(a, b))
    return _DIV(a, b)


def _check_int_divisor(op: str, b) -> None:
    """PyTorch raises on an integer division by zero (NumPy would warn and give 0)."""
    data = b._data if isinstance(b, Tensor) else b
    zero = (data == 0).any() if isinstance(b, Tensor) else data == 0
    if bool(b._backend.to_host(zero) if isinstance(b, Tensor) else zero):
        raise RuntimeError(f"ZeroDivisionError ({op}: integer division by zero)")


def _int_divide(a, b, rounding_mode: str) -> Tensor:
    _check_int_divisor("div", b)
    t = a if isinstance(a, Tensor) else b
    xp = t._backend.xp
    if rounding_mode == "floor":
        return _nondiff(xp.floor_divide, a, b)

    def trunc_div(x, y):
        q = xp.floor_divide(x, y)
        inexact = (q * y != x) & ((x < 0) != (y < 0))
        return xp.where(inexact, q + 1, q).astype(q.dtype, copy=False)

    return _nondiff(trunc_div, a, b)


true_divide = divide = div


def rdiv(input, other) -> Tensor:
    """other / input."""
    return div(other, input) if isinstance(other, Tensor) else div(
        full_like_scalar(input, other), input)


def full_like_scalar(t: Tensor, value, dt=None) -> Tensor:
    dt = _result_dtype_scalar(t, value) if dt is None else dt
    return _wrap_array(t._backend.xp.full((), value, dtype=t._backend.np_dtype(dt)),
                       t._backend)


def _result_dtype_scalar(t, value):
    from ._util import result_dtype

    return result_dtype(t, value)


def neg(input: Tensor) -> Tensor:
    """−input;  x̄ = −ȳ (row `neg`)."""
    return _NEG(input)


negative = neg


def run(name: str, *operands, params: tuple = ()) -> Tensor:
    """Row `name` of the pointwise table (gpugrad/ops/table.py) applied to `operands`
    (Tensors of one dtype, or numbers) with its scalar `params`, in the row's order."""
    row = ROWS[name]
    return row.apply(*operands, params=params) if params else row.apply(*operands)


def pow_scalar(x: Tensor, p) -> Tensor:
    """x^p for a number p."""
    return run("square", x) if p == 2 else run("pow_scalar", x, params=(p,))


def pow(input, exponent) -> Tensor:  # noqa: A001 - torch.pow
    """input ** exponent; either may be a number.  x̄ = ȳ·conj(b·a^(b−1)) (0 where b = 0),
    b̄ = ȳ·conj(y·ln a) (0 where a = 0 and Re b ≥ 0, as in PyTorch)."""
    if isinstance(input, Tensor) and is_scalar(exponent):
        a, p = binary_operands(input, exponent, "pow")
        return pow_scalar(a, p)
    if is_scalar(input) and isinstance(exponent, Tensor):
        s, e = binary_operands(input, exponent, "pow")
        return run("rpow_scalar", e, params=(s,))
    a, b = binary_operands(input, exponent, "pow")
    return run("pow", a, b)


def _float(x: Tensor) -> Tensor:
    return x if x._data.dtype.kind in "fc" else cast(x, float_dtype_of(x))


def _unary_doc(name: str, math_: str):
    apply = ROWS[name].apply

    def op(input: Tensor) -> Tensor:
        if input._data.dtype.kind not in "fc":
            input = cast(input, float_dtype_of(input))
        return apply(input)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"{math_} elementwise (integers computed in the default float dtype; "
                  f"row `{name}`).")
    return op


exp = _unary_doc("exp", "eˣ")
expm1 = _unary_doc("expm1", "eˣ − 1, accurate for small x")
exp2 = _unary_doc("exp2", "2ˣ")
log = _unary_doc("log", "The natural logarithm ln x")
log1p = _unary_doc("log1p", "ln(1 + x), accurate for small x")
log2 = _unary_doc("log2", "log₂ x")
log10 = _unary_doc("log10", "log₁₀ x")
sqrt = _unary_doc("sqrt", "√x")
rsqrt = _unary_doc("rsqrt", "1/√x")
sin = _unary_doc("sin", "sin x")
cos = _unary_doc("cos", "cos x")
tan = _unary_doc("tan", "tan x")
asin = _unary_doc("asin", "arcsin x")
acos = _unary_doc("acos", "arccos x")
atan = _unary_doc("atan", "arctan x")
sinh = _unary_doc("sinh", "sinh x")
cosh = _unary_doc("cosh", "cosh x")
tanh = _unary_doc("tanh", "tanh x")
asinh = _unary_doc("asinh", "arsinh x")
acosh = _unary_doc("acosh", "arcosh x")
atanh = _unary_doc("atanh", "artanh x")
sigmoid = _unary_doc("sigmoid", "σ(x) = 1 / (1 + e⁻ˣ), computed without overflow")
erf = _unary_doc("erf", "erf x = 2/√π ∫₀ˣ e^(−t²) dt")
erfc = _unary_doc("erfc", "erfc x = 1 − erf x, accurate in the right tail")
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh


def _binary_float(name: str, math_: str):
    def op(input, other) -> Tensor:
        a, b = binary_operands(input, other, name)
        a = _float(a) if isinstance(a, Tensor) else a
        b = _float(b) if isinstance(b, Tensor) else b
        a, b = binary_operands(a, b, name)
        return run(name, a, b)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"{math_} elementwise, broadcasting (row `{name}`)."
    return op


atan2 = arctan2 = _binary_float("atan2", "atan2(input, other), the angle of (other, input)")
hypot = _binary_float("hypot", "√(input² + other²) without overflow")
copysign = _binary_float("copysign", "|input| with the sign of other")
logaddexp = _binary_float("logaddexp", "ln(e^input + e^other), computed stably")


def abs(input: Tensor) -> Tensor:  # noqa: A001 - torch.abs
    """|x| elementwise (real for complex x);  x̄ = ȳ·sgn(x) (x/|x| for complex x, 0 at 0)."""
    return run("abs", input)


absolute = abs


def square(input: Tensor) -> Tensor:
    """x² elementwise."""
    return run("square", input)


def conj(input):
    """The complex conjugate (the input itself for real tensors and numbers, as in torch)."""
    if isinstance(input, Tensor):
        return Conj.apply(input) if input._data.dtype.kind == "c" else input
    return input.conjugate() if isinstance(input, complex) else input


def sgn(input: Tensor) -> Tensor:
    """x/|x| for complex x (0 at 0), sign(x) for real x."""
    if input._data.dtype.kind != "c":
        return sign(input)
    a = abs(input)
    return where(a == 0, 0.0, input / where(a == 0, 1.0, a))


def relu(input: Tensor) -> Tensor:
    """max(x, 0) elementwise;  x̄ = 0 where y ≤ 0, else ȳ."""
    if input._data.dtype.kind == "c":
        raise TypeError("relu: not implemented for complex tensors")
    return run("relu", input)


def clamp(input: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """Clip to [min, max]; either bound may be None, a number or a Tensor;
    x̄ = ȳ where min ≤ x ≤ max (and to a tensor bound where it is the result, as PyTorch)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        if min is not None and max is not None:
            x, lo = binary_operands(input, min, "clamp")
            x, hi = binary_operands(x, max, "clamp")
            x, lo = binary_operands(x, lo, "clamp")
            return run("clamp_tensor", x, lo, hi)
        if min is not None:
            return run("clamp_min_tensor", *binary_operands(input, min, "clamp"))
        return run("clamp_max_tensor", *binary_operands(input, max, "clamp"))
    bound = min if min is not None else max
    t, _ = binary_operands(input, bound, "clamp")
    if min is None:
        return run("clamp_max", t, params=(max,))
    if max is None:
        return run("clamp_min", t, params=(min,))
    return run("clamp", t, params=(min, max))


clip = clamp


def maximum(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise maximum, NaN propagating;  ā = ȳ·(1 − [a<b] − ½[a=b]) (ties split the
    gradient equally, a NaN operand takes all of it), b̄ likewise."""
    return run("maximum", *binary_operands(input, other, "maximum"))


def minimum(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise minimum, NaN propagating (ties split the gradient equally)."""
    return run("minimum", *binary_operands(input, other, "minimum"))


def fmax(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise maximum ignoring NaN (NaN only where both are);  ā = ȳ where a ≥ b or
    b is NaN, b̄ = ȳ elsewhere."""
    return run("fmax", *binary_operands(input, other, "fmax"))


def fmin(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise minimum ignoring NaN (NaN only where both are)."""
    return run("fmin", *binary_operands(input, other, "fmin"))


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    """input + weight·(end − input), weight a number or a Tensor (broadcasting);
    ā = ȳ(1 − w), ē = ȳ·w, w̄ = ȳ(end − input)."""
    a, b = binary_operands(input, end, "lerp")
    if isinstance(weight, Tensor):
        a, w = binary_operands(a, weight, "lerp")
        a, b = binary_operands(a, b, "lerp")
        b, w = binary_operands(b, w, "lerp")
        return run("lerp", a, b, w)
    return run("lerp_scalar", a, b, params=(weight,))


def where(condition, input, other) -> Tensor:
    """Elementwise `input` where `condition` else `other` (numbers allowed), broadcasting;
    ā = ȳ where condition (0 elsewhere), b̄ the rest."""
    if not isinstance(condition, Tensor):
        raise TypeError("where: condition must be a bool Tensor")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        if not (is_scalar(input) and is_scalar(other)):
            raise TypeError("where: input and other must be Tensors or numbers")
        dt = _dtype.promote_types(_dtype.dtype_for_scalar_category(_dtype.scalar_category(
            input)), _dtype.dtype_for_scalar_category(_dtype.scalar_category(other)))
        input = full_like_scalar(condition, input, dt)
    a, b = binary_operands(input, other, "where")
    ref = a if isinstance(a, Tensor) else b
    if condition._backend is not ref._backend:
        from ..tensor import _check_same_device

        _check_same_device("where", condition, ref)
    cond = condition._data if condition._data.dtype == bool else condition._data.astype(bool)
    return run("where", _wrap_array(cond, condition._backend), a, b)


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


def _ufunc_binary(name: str, ufunc: str, doc: str, check=None):
    """gg.NAME(input, other): the backend's `ufunc` on the promoted operands, a result that
    never requires grad; `check(a, b)` vets the operands first."""
    def op(input, other) -> Tensor:
        a, b = binary_operands(input, other, name)
        if check is not None:
            check(a, b)
        t = a if isinstance(a, Tensor) else b
        return _nondiff(getattr(t._backend.xp, ufunc), a, b)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


def _compare(name: str, ufunc: str | None = None):
    ufunc = ufunc or name
    return _ufunc_binary(name, ufunc,
                         f"Elementwise `{ufunc}` (a bool tensor that never requires grad).")


eq = _compare("eq", "equal")
ne = _compare("ne", "not_equal")
lt = _compare("lt", "less")
le = _compare("le", "less_equal")
gt = _compare("gt", "greater")
ge = _compare("ge", "greater_equal")
logical_and = _compare("logical_and")
logical_or = _compare("logical_or")
logical_xor = _compare("logical_xor")


def floor_divide(input, other) -> Tensor:
    """⌊input / other⌋ (not differentiable; an integer division by zero raises)."""
    a, b = binary_operands(input, other, "floor_divide")
    t = a if isinstance(a, Tensor) else b
    if t.dtype.category < 2:
        _check_int_divisor("floor_divide", b)
    return _nondiff(t._backend.xp.floor_divide, a, b)


def _modulo(name: str, doc: str):
    def op(input, other) -> Tensor:
        a, b = binary_operands(input, other, name)
        t = a if isinstance(a, Tensor) else b
        if t._data.dtype.kind == "f":
            return run(name, a, b)
        _check_int_divisor(name, b)
        return _nondiff(getattr(t._backend.xp, name), a, b)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


remainder = _modulo("remainder", """input mod other with the sign of other, as Python's %;
    ā = ȳ, b̄ = −ȳ·⌊a/b⌋ (integers: not differentiable, and a zero divisor raises).""")
fmod = _modulo("fmod", """input − trunc(input/other)·other (the sign of input);  ā = ȳ,
    b̄ = −ȳ·trunc(a/b) (integers keep their dtype, are not differentiable, and a zero divisor
    raises).""")


def _bitwise(name: str, ufunc: str, ints_only: bool = False):
    kinds = "integer" if ints_only else "integer or bool"

    def check(a, b) -> None:
        for v in (a, b):
            dt = v.dtype if isinstance(v, Tensor) else None
            if (dt is not None and (dt.category >= 2 or (ints_only and dt.category == 0))) \
                    or isinstance(v, float):
                raise TypeError(f"{name}: expected {kinds} tensors, got "
                                f"{getattr(a, 'dtype', type(a).__name__)} and "
                                f"{getattr(b, 'dtype', type(b).__name__)}")

    return _ufunc_binary(name, ufunc, f"Elementwise `{ufunc}` of {kinds} tensors.", check)


bitwise_and = _bitwise("bitwise_and", "bitwise_and")
bitwise_or = _bitwise("bitwise_or", "bitwise_or")
bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor")
bitwise_left_shift = _bitwise("bitwise_left_shift", "left_shift", ints_only=True)
bitwise_right_shift = _bitwise("bitwise_right_shift", "right_shift", ints_only=True)


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

