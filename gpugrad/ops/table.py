"""The table of elementwise ops: one `Row` each (see pointwise.py for what a row derives).

x, a, b, w are the operands; P(name) a declared scalar parameter (a kernel argument and a
cache key, never baked into code); Y the output and G its cotangent, read only by the
hand-written VJPs, which exist where the rule is a choice:

- div: PyTorch's ā = ȳ / conj(b), b̄ = −ȳ·conj((a/b)/b), over the operands, not y (the
  derived rule would save y, and PyTorch lets y be written in place after a division);
- relu: x̄ = 0 where y ≤ 0, else ȳ (a NaN passes its gradient, as PyTorch);
- clamp/hardtanh: ȳ inside the closed (clamp) or open (hardtanh, PyTorch's) interval;
- fmax/fmin: the whole ȳ to the chosen operand (ties to the first, as PyTorch);
- softplus: ȳ above the threshold, ȳ·σ(βx) below;
- hardsigmoid, hardswish: PyTorch's one-sided rules at x = ±3;
- logit with eps: ȳ/(x(1 − x)) on the closed [eps, 1 − eps], 0 outside (PyTorch's);
- heaviside: no gradient (PyTorch has no derivative for it);
- sinc, logit, xlogy: PyTorch's formulas (xlogy's ā = ȳ·ln b, 0 where a = 0 and b ≤ 0).

maximum/minimum derive theirs from the `max`/`min` primitives (ties split evenly, a NaN
operand takes the whole ȳ). Every other VJP, and every second derivative, is derived.
"""

from __future__ import annotations

import math

from ..backend import expr as E
from .pointwise import G, P, Row, X, Y

x, a, b, w = X(0), X(0), X(1), X(2)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_TANH_C = 0.044715
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554804


def _elu(v, alpha, scale=1.0, input_scale=1.0):
    """scale·(v if v > 0 else α·(e^(v·input_scale) − 1)): elu, selu and celu."""
    return E.where(v > 0, v * scale, E.expm1(v * input_scale) * (alpha * scale))


def _lerp(s, e, t):
    """s + t·(e − s), from the nearer end as PyTorch (exact at t = 0 and t = 1)."""
    d = e - s
    return E.where(E.abs_(t) < 0.5, s + t * d, e - d * (1 - t))


def _relu6(v):
    return E.minimum(E.maximum(v, 0), 6)


def _logit_eps(v):
    """ln(z/(1 − z)), z = v clamped to [eps, 1 − eps]."""
    z = E.minimum(E.maximum(v, P("eps")), 1 - P("eps"))
    return E.log(z / (1 - z))


def _nan_to_num(v):
    """v with NaN, +inf and −inf replaced (v − v is 0 exactly for finite v); every where
    keeps an array branch, so NumPy keeps v's dtype."""
    inf = E.ne(v - v, 0) & E.eq(v, v)
    r = E.where(E.ne(v, v), P("nan"), v)
    return E.where(inf & (v > 0), P("posinf"), E.where(inf & (v < 0), P("neginf"), r))


def _unary(name: str, fn) -> Row:
    return Row(name, fn(x), 1)


def _mul_pair(backend, g, a, b):
    """Both products of Mul's real VJP in one pass over ȳ (same-shape, same-dtype arrays)."""
    if g.shape == a.shape == b.shape and g.dtype == a.dtype == b.dtype:
        return backend.mul_pair(g, a, b)
    return None


ROWS: dict[str, Row] = {r.name: r for r in [
    # --- arithmetic (alpha: PyTorch's add/sub scale of the second operand) ---
    Row("add", a + b, 2),
    Row("add_alpha", a + b * P("alpha"), 2, ("alpha",), label="add"),
    Row("sub", a - b, 2),
    Row("sub_alpha", a - b * P("alpha"), 2, ("alpha",), label="sub"),
    Row("mul", a * b, 2, array_vjp=_mul_pair),
    Row("div", a / b, 2, vjp=(G / b, -(G * ((a / b) / b))),
        complex_vjp=(G / E.conj(b), -(G * E.conj((a / b) / b)))),
    Row("neg", -x, 1),
    # --- unary math ---
    *[_unary(n, getattr(E, n)) for n in (
        "exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "sin", "cos",
        "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
        "sigmoid", "erf", "erfc")],
    Row("abs", E.abs_(x), 1),
    Row("square", x * x, 1),
    Row("pow_scalar", E.pow_(x, P("p")), 1, ("p",)),
    Row("rpow_scalar", E.pow_(P("s"), x), 1, ("s",)),
    Row("pow", E.pow_(a, b), 2),
    # --- binary math ---
    *[Row(n, getattr(E, n)(a, b), 2) for n in (
        "atan2", "hypot", "copysign", "fmod", "remainder", "logaddexp")],
    Row("lerp", _lerp(a, b, w), 3),
    Row("lerp_scalar", _lerp(a, b, P("weight")), 2, ("weight",)),
    # --- selection ---
    Row("maximum", E.maximum(a, b), 2),
    Row("minimum", E.minimum(a, b), 2),
    Row("fmax", E.where(E.ne(a, a), b, E.where(E.ne(b, b), a, E.maximum(a, b))), 2,
        vjp=(E.where((a >= b) | (E.ne(b, b)), G, 0), E.where((a >= b) | (E.ne(b, b)), 0, G))),
    Row("fmin", E.where(E.ne(a, a), b, E.where(E.ne(b, b), a, E.minimum(a, b))), 2,
        vjp=(E.where((a <= b) | (E.ne(b, b)), G, 0), E.where((a <= b) | (E.ne(b, b)), 0, G))),
    Row("where", E.where(X(0), X(1), X(2)), 3),
    Row("clamp", E.minimum(E.maximum(x, P("min")), P("max")), 1, ("min", "max"),
        vjp=(E.where((x >= P("min")) & (x <= P("max")), G, 0),)),
    Row("clamp_min", E.maximum(x, P("min")), 1, ("min",), vjp=(E.where(x >= P("min"), G, 0),)),
    Row("clamp_max", E.minimum(x, P("max")), 1, ("max",), vjp=(E.where(x <= P("max"), G, 0),)),
    Row("clamp_tensor", E.minimum(E.maximum(x, b), w), 3,
        vjp=(E.where((x >= b) & (x <= w), G, 0), E.where((x < b) & (b < w), G, 0),
             E.where((x > w) | (w < b), G, 0))),
    Row("clamp_min_tensor", E.maximum(x, b), 2,
        vjp=(E.where(x >= b, G, 0), E.where(x < b, G, 0))),
    Row("clamp_max_tensor", E.minimum(x, b), 2,
        vjp=(E.where(x <= b, G, 0), E.where(x > b, G, 0))),
    # --- activations ---
    Row("relu", E.maximum(x, 0), 1, vjp=(E.where(Y <= 0, 0, G),)),
    Row("leaky_relu", E.where(x > 0, x, x * P("slope")), 1, ("slope",)),
    Row("gelu", x * E.ndtr(x), 1, keep=(E.ndtr(x),)),
    Row("gelu_tanh", 0.5 * x * (1 + E.tanh(_SQRT_2_OVER_PI * x * (1 + GELU_TANH_C * x * x))), 1),
    Row("silu", x * E.sigmoid(x), 1),
    Row("swish", a * E.sigmoid(b * a), 2),
    Row("swish_scalar", x * E.sigmoid(P("beta") * x), 1, ("beta",)),
    Row("softplus", E.where(x * P("beta") > P("threshold"), x,
                            E.softplus(x * P("beta")) / P("beta")), 1, ("beta", "threshold"),
        vjp=(E.where(x * P("beta") > P("threshold"), G, G * E.sigmoid(x * P("beta"))),)),
    Row("mish", x * E.tanh(E.softplus(x)), 1),
    Row("elu", _elu(x, P("alpha")), 1, ("alpha",)),
    Row("selu", _elu(x, SELU_ALPHA, SELU_SCALE), 1),
    Row("celu", _elu(x, P("alpha"), 1.0, 1.0 / P("alpha")), 1, ("alpha",)),
    Row("hardtanh", E.minimum(E.maximum(x, P("min")), P("max")), 1, ("min", "max"),
        vjp=(E.where((x > P("min")) & (x < P("max")), G, 0),)),
    Row("hardsigmoid", _relu6(x + 3) / 6, 1, vjp=(E.where((x > -3) & (x < 3), G / 6, 0),)),
    Row("hardswish", x * _relu6(x + 3) / 6, 1,
        vjp=(E.where(x <= -3, 0, E.where(x < 3, G * (x / 3 + 0.5), G)),)),
    Row("softsign", x / (1 + E.abs_(x)), 1),
    Row("logsigmoid", -E.softplus(-x), 1),
    # --- PyTorch's further pointwise functions (issue: names real programs use) ---
    _unary("erfinv", E.erfinv),
    Row("frac", x - E.trunc(x), 1),
    Row("sinc", E.where(E.eq(x, 0), 1, E.sin(math.pi * x) / (math.pi * x)), 1,
        vjp=(E.where(E.eq(x, 0), 0, G * (math.pi * x * E.cos(math.pi * x) - E.sin(math.pi * x))
                     / (math.pi * x * x)),)),
    Row("deg2rad", x * (math.pi / 180.0), 1),
    Row("rad2deg", x * (180.0 / math.pi), 1),
    Row("logit", E.log(x / (1 - x)), 1, vjp=(G / (x * (1 - x)),)),
    Row("logit_eps", _logit_eps(x), 1, ("eps",),
        vjp=(E.where((x >= P("eps")) & (x <= 1 - P("eps")), G / (x * (1 - x)), 0),)),
    Row("xlogy", E.where(E.eq(a, 0) & E.eq(b, b), 0, a * E.log(b)), 2,
        vjp=(E.where(E.eq(a, 0) & (b <= 0), 0, G * E.log(b)), G * a / b)),
    Row("logaddexp2", E.logaddexp(a * math.log(2.0), b * math.log(2.0)) / math.log(2.0), 2),
    Row("heaviside", E.where(a > 0, 1, E.where(E.eq(a, 0), b, 0)), 2, vjp=(None, None)),
    Row("nan_to_num", _nan_to_num(x), 1, ("nan", "posinf", "neginf")),
]}
