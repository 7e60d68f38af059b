"""PyTorch's further elementwise functions: each is a row of the pointwise table
(gpugrad/ops/table.py: erfinv, frac, sinc, deg2rad, rad2deg, logit, xlogy, logaddexp2,
heaviside, nan_to_num), an existing row under PyTorch's other name (clamp_min, clamp_max),
or a one-line composite of existing ops (float_power, positive, signbit)."""

from __future__ import annotations

from .. import _dtype
from .._dtype_info import finfo
from ..tensor import Tensor
from ._util import binary_operands, tensor_arg
from .complex import complex as _complex
from .elementwise import (
    _binary_float,
    _nondiff,
    _unary_doc,
    cast,
    clamp,
    full_like_scalar,
    pow,
    run,
)
from .inplace import (  # addcmul, addcdiv: re-exported as gg.addcmul, gg.addcdiv
    addcdiv,  # noqa: F401
    addcmul,  # noqa: F401
    inplace_method,
)

__all__ = ["erfinv", "frac", "sinc", "deg2rad", "rad2deg", "logit", "xlogy", "logaddexp2",
           "heaviside", "nan_to_num", "clamp_min", "clamp_max", "float_power", "positive",
           "signbit", "addcmul", "addcdiv"]

erfinv = _unary_doc("erfinv", "erf⁻¹ x, the inverse error function (±inf at ±1, NaN "
                              "outside [−1, 1]);  x̄ = ȳ·(√π/2)·e^(y²)")
sinc = _unary_doc("sinc", "sin(πx)/(πx), 1 at x = 0;  x̄ = ȳ·(πx·cos(πx) − sin(πx))/(πx²), "
                          "0 at 0")
deg2rad = _unary_doc("deg2rad", "x·π/180 (degrees to radians);  x̄ = ȳ·π/180")
rad2deg = _unary_doc("rad2deg", "x·180/π (radians to degrees);  x̄ = ȳ·180/π")
logaddexp2 = _binary_float("logaddexp2", "log₂(2^input + 2^other), computed stably;  "
                                         "ā = ȳ·σ((a − b)·ln 2)")


def xlogy(input, other) -> Tensor:
    """input·ln(other), 0 where input = 0 (unless other is NaN), broadcasting; either may be
    a number, integers are computed in the default float dtype;  ā = ȳ·ln b (0 where
    a = 0 and b ≤ 0), b̄ = ȳ·a/b (row `xlogy`)."""
    a, b = binary_operands(input, other, "xlogy")
    t = a if isinstance(a, Tensor) else b
    dt = t.dtype if t.dtype.category >= 2 else _dtype.DEFAULT_FLOAT
    a, b = [cast(v, dt) if isinstance(v, Tensor) else full_like_scalar(t, v, dt)
            for v in (a, b)]  # a number as a 0-d tensor: ln(number) would be float64
    return run("xlogy", a, b)


def frac(input: Tensor) -> Tensor:
    """x − trunc(x), the fractional part with x's sign;  x̄ = ȳ (row `frac`). Floating
    dtypes only (an integer or bool input raises TypeError, as PyTorch refuses it)."""
    tensor_arg(input, "frac")
    if not input.dtype.is_floating_point:
        raise TypeError(f"frac: not implemented for dtype {input.dtype} (floating types only)")
    return run("frac", input)


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """ln(z/(1 − z)) with z = x, or x clamped to [eps, 1 − eps] when `eps` is given;
    x̄ = ȳ/(x(1 − x)) (0 outside [eps, 1 − eps]) (rows `logit`, `logit_eps`; integers are
    computed in the default float dtype)."""
    tensor_arg(input, "logit")
    if input.dtype.category < 2:
        input = cast(input, _dtype.DEFAULT_FLOAT)
    if eps is None:
        return run("logit", input)
    return run("logit_eps", input, params=(float(eps),))


def heaviside(input: Tensor, values: Tensor) -> Tensor:
    """The Heaviside step: 0 where x < 0, `values` where x = 0, 1 where x > 0 (0 at NaN),
    broadcasting; `input` and `values` must have one dtype, as in PyTorch. Not
    differentiable: its gradient is zero (PyTorch has no derivative for it)."""
    tensor_arg(input, "heaviside")
    tensor_arg(values, "heaviside", "values")
    if input.dtype is not values.dtype:
        raise RuntimeError(f"heaviside is not yet implemented for tensors with different "
                           f"dtypes ({input.dtype} and {values.dtype})")
    if input.dtype.is_complex:
        raise TypeError(f"heaviside: not implemented for dtype {input.dtype}")
    out = run("heaviside", *binary_operands(input, values, "heaviside"))
    return out if out.dtype is input.dtype else cast(out, input.dtype)  # bool stays bool


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """NaN → `nan`, +inf → `posinf`, −inf → `neginf` (by default the dtype's largest and
    lowest finite values), other values kept;  x̄ = ȳ where x is finite, else 0 (row
    `nan_to_num`). Integer and bool tensors come back as a copy; a complex tensor is
    cleaned in its real and imaginary parts."""
    tensor_arg(input, "nan_to_num")
    if input.dtype.is_complex:
        return _complex(nan_to_num(input.real, nan, posinf, neginf),
                        nan_to_num(input.imag, nan, posinf, neginf))
    if not input.dtype.is_floating_point:
        return input.clone()
    info = finfo(input.dtype)
    return run("nan_to_num", input, params=(
        float(nan), info.max if posinf is None else float(posinf),
        info.min if neginf is None else float(neginf)))


def clamp_min(input: Tensor, min) -> Tensor:  # noqa: A002 - torch's name
    """max(x, min) elementwise, `min` a number or a Tensor (`clamp(input, min=min)`)."""
    return clamp(input, min=min)


def clamp_max(input: Tensor, max) -> Tensor:  # noqa: A002 - torch's name
    """min(x, max) elementwise, `max` a number or a Tensor (`clamp(input, max=max)`)."""
    return clamp(input, max=max)


def float_power(input, exponent) -> Tensor:
    """input ** exponent computed in double precision, as torch.float_power: the result is
    float64, or complex128 where either operand is complex (VJPs those of `pow`)."""
    ops = [input, exponent]
    if not any(isinstance(v, Tensor) for v in ops):
        raise TypeError("float_power: expected at least one Tensor operand, got "
                        f"{type(input).__name__} and {type(exponent).__name__}")
    cplx = any((v.dtype.is_complex if isinstance(v, Tensor) else isinstance(v, complex))
               for v in ops)
    dt = _dtype.complex128 if cplx else _dtype.float64
    a, b = [cast(v, dt) if isinstance(v, Tensor) else (complex(v) if cplx else v)
            for v in ops]
    return pow(a, b)


def float_power_(self: Tensor, exponent) -> Tensor:
    """In-place `float_power`: `self` must already be float64 (complex128 for a complex
    exponent), as PyTorch requires."""
    want = _dtype.complex128 if (self.dtype.is_complex or isinstance(exponent, complex) or (
        isinstance(exponent, Tensor) and exponent.dtype.is_complex)) else _dtype.float64
    if self.dtype is not want:
        raise RuntimeError(f"the base given to float_power_ has dtype {self.dtype} but the "
                           f"operation's result requires dtype {want}")
    return _float_power_inplace(self, exponent)


_float_power_inplace = inplace_method("float_power")


def positive(input: Tensor) -> Tensor:
    """`input` itself (unary +); a bool tensor raises RuntimeError, as in PyTorch."""
    tensor_arg(input, "positive")
    if input.dtype is _dtype.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


def signbit(input: Tensor) -> Tensor:
    """Whether each element's sign bit is set (True for −0.0 and negative NaNs), a bool
    tensor that never requires grad."""
    tensor_arg(input, "signbit")
    if input.dtype.is_complex:
        raise TypeError(f"signbit: not implemented for complex dtype {input.dtype}")
    xp = input._backend.xp
    if input.dtype.is_floating_point:
        return _nondiff(xp.signbit, input)
    return _nondiff(lambda a: a < 0, input)
