"""Activation ops used by `gg.nn`: softmax, log-softmax and dropout as fused ops, and the
pointwise activations (GELU, SiLU, Swish, leaky ReLU, softplus, ELU, ...) as rows of the
pointwise table, whose VJPs and second derivatives are derived from their expressions.

Each op's docstring states its forward and its VJP. The fused ops (`FusedOp`) compute their
VJP on arrays and, under `create_graph=True`, differentiate their composite definition.
"""

from __future__ import annotations

from ..backend.array import quiet_fp
from ..tensor import Tensor, _wrap_array
from ._composite import FusedOp
from ._util import float_dtype_of
from .elementwise import cast, exp, log, run
from .reduce import amax, sum  # noqa: A004 - gg.sum, not builtins.sum


# --- softmax family -----------------------------------------------------------------------
def softmax_array(backend, x, dim, epilogue=None):
    """softmax(x) along `dim` on arrays: the backend's fused rows where it takes them.
    With an `epilogue` (backend.row_epilogue.Epilogue, from gg.fuse) its program is
    applied to the result as it is computed, into `epilogue.out`; the result itself is
    then None where `epilogue.keep_y` is false."""
    return _rows_array(backend, x, dim, epilogue, backend.softmax, _softmax_rows)


def _softmax_rows(backend, x, dim):
    e = backend.xp.exp(x - x.max(axis=dim, keepdims=True))
    e /= backend.sum(e, (dim,), True)
    return e


def log_softmax_array(backend, x, dim, epilogue=None):
    """log_softmax(x) along `dim` on arrays: the backend's fused rows where it takes them;
    `epilogue` as in `softmax_array`."""
    return _rows_array(backend, x, dim, epilogue, backend.log_softmax, _log_softmax_rows)


def _rows_array(backend, x, dim, epilogue, fused, rows):
    """`fused(x[, epilogue])` (the backend's kernel over last-axis rows) where the backend
    takes rows of this layout, else `rows(xp, x, dim)` (in blocks with an epilogue)."""
    if x.size == 0:  # nothing to normalise (and max() has no identity)
        return x.copy() if epilogue is None else epilogue.finish(backend, x.copy())
    if backend.fuses_rows(x.ndim, dim):
        return fused(x) if epilogue is None else fused(x, epilogue)
    if epilogue is not None:
        return backend.rows_epilogue(lambda xb: (rows(backend, xb, dim),), x,
                                     dim % x.ndim != 0, epilogue)[0]
    return rows(backend, x, dim)


def _log_softmax_rows(backend, x, dim):
    xp = backend.xp
    z = x - x.max(axis=dim, keepdims=True)
    return z - xp.log(backend.sum(xp.exp(z), (dim,), True))


def softmax_composite(x: Tensor, dim) -> Tensor:
    """softmax(x) along `dim` written with ordinary ops: exp(x − m) / Σ_dim exp(x − m), m the
    (constant) maximum, the definition `Softmax` differentiates beyond first order."""
    e = exp(x - _row_max(x, dim))
    return e / sum(e, dim, keepdim=True)


def log_softmax_composite(x: Tensor, dim) -> Tensor:
    """log_softmax(x) = (x − m) − log Σ_dim exp(x − m) with ordinary ops (see
    `softmax_composite`)."""
    z = x - _row_max(x, dim)
    return z - log(sum(exp(z), dim, keepdim=True))


def _row_max(x: Tensor, dim):
    """The maximum along `dim` as a constant (a shift that changes neither function)."""
    return amax(x, dim, keepdim=True).detach() if x.numel() else 0.0


class Softmax(FusedOp):
    """y = exp(x − max) / Σ_dim exp(x − max);  x̄ = y·(ȳ − Σ_dim ȳ·y). Beyond first order it
    differentiates `softmax_composite`, evaluated at log y (x up to a shift per row: only y
    is kept)."""

    @staticmethod
    def forward(ctx, x, dim, epilogue=None):
        ctx.dim = dim
        ctx.save_output()
        return softmax_array(ctx.backend, x, dim, epilogue)

    @staticmethod
    def backward_arrays(ctx, g):
        y = ctx.saved_output_array()
        dim = ctx.dim
        if y.size and ctx.backend.fuses_rows(y.ndim, dim):
            return ctx.backend.softmax_backward(y, g), None
        gx = g * y
        gx -= y * ctx.backend.sum(gx, (dim,), True)
        return gx, None

    def composite_inputs(self) -> tuple:
        with quiet_fp(self.xp):
            return self.xp.log(self.saved_output_array()), None

    @staticmethod
    def composite(ctx, x, _dim):
        return softmax_composite(x, ctx.dim)


class LogSoftmax(FusedOp):
    """y = x − logsumexp_dim(x);  x̄ = ȳ − exp(y)·Σ_dim ȳ. Beyond first order it
    differentiates `log_softmax_composite`, evaluated at y (x up to a shift per row)."""

    @staticmethod
    def forward(ctx, x, dim, epilogue=None):
        ctx.dim = dim
        ctx.save_output()
        return log_softmax_array(ctx.backend, x, dim, epilogue)

    @staticmethod
    def backward_arrays(ctx, g):
        y = ctx.saved_output_array()
        dim = ctx.dim
        if y.size and ctx.backend.fuses_rows(y.ndim, dim):
            return ctx.backend.log_softmax_backward(y, g), None
        gx = ctx.xp.exp(y)
        gx *= g.sum(axis=dim, keepdims=True)
        return g - gx, None

    def composite_inputs(self) -> tuple:
        return self.saved_output_array(), None

    @staticmethod
    def composite(ctx, x, _dim):
        return log_softmax_composite(x, ctx.dim)


# --- pointwise activations: rows of the table (gpugrad/ops/table.py) ------------------------
def _float(x: Tensor) -> Tensor:
    return x if x._data.dtype.kind in "fc" else cast(x, float_dtype_of(x))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Exact: y = x·Φ(x) = ½x(1 + erf(x/√2));  tanh form: y = ½x(1 + tanh u),
    u = √(2/π)·x·(1 + c·x²), c = GELU_TANH_C;  x̄ = ȳ·gelu'(x) (derived)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return run("gelu" if approximate == "none" else "gelu_tanh", _float(x))


def silu(x: Tensor) -> Tensor:
    """y = x·σ(x);  x̄ = ȳ·σ(x)·(1 + x·(1 − σ(x))) (derived), one pass each way."""
    return run("silu", _float(x))


def swish(x: Tensor, beta=1.0) -> Tensor:
    """y = x·σ(βx), β a number or a (learnable) Tensor broadcastable to x; with s = σ(βx):
    x̄ = ȳ·(s + βx·s(1 − s)), β̄ = Σ (over the broadcast) ȳ·x²·s(1 − s)."""
    x = _float(x)
    if isinstance(beta, Tensor):
        return run("swish", x, cast(beta, x.dtype))
    if beta == 1:  # the same function: SiLU's row saves the multiplication by β
        return run("silu", x)
    return run("swish_scalar", x, params=(float(beta),))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """y = x if x > 0 else α·x;  x̄ = ȳ if x > 0 else α·ȳ."""
    return run("leaky_relu", _float(x), params=(float(negative_slope),))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """y = ln(1 + e^(βx))/β, or x where βx > threshold;  x̄ = ȳ·σ(βx) (ȳ above it)."""
    return run("softplus", _float(x), params=(float(beta), float(threshold)))


def mish(x: Tensor) -> Tensor:
    """y = x·tanh(softplus(x))."""
    return run("mish", _float(x))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """y = x if x > 0 else α(eˣ − 1)."""
    return run("elu", _float(x), params=(float(alpha),))


def selu(x: Tensor) -> Tensor:
    """y = λ·(x if x > 0 else α(eˣ − 1)) with SELU's fixed λ and α."""
    return run("selu", _float(x))


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """y = x if x > 0 else α(e^(x/α) − 1)."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    return run("celu", _float(x), params=(float(alpha),))


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """y = clamp(x, min_val, max_val);  x̄ = ȳ strictly inside (min_val, max_val), as PyTorch."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    return run("hardtanh", _float(x), params=(min_val, max_val))


def relu6(x: Tensor) -> Tensor:
    """y = min(max(x, 0), 6) (hardtanh on [0, 6])."""
    return hardtanh(x, 0.0, 6.0)


def hardsigmoid(x: Tensor) -> Tensor:
    """y = relu6(x + 3)/6."""
    return run("hardsigmoid", _float(x))


def hardswish(x: Tensor) -> Tensor:
    """y = x·relu6(x + 3)/6;  x̄ = 0 (x < −3), ȳ(x/3 + ½) (x ≤ 3), ȳ else, as PyTorch."""
    return run("hardswish", _float(x))


def softsign(x: Tensor) -> Tensor:
    """y = x/(1 + |x|)."""
    return run("softsign", _float(x))


def logsigmoid(x: Tensor) -> Tensor:
    """y = ln σ(x) = −softplus(−x), computed without overflow."""
    return run("logsigmoid", _float(x))


class Dropout(FusedOp):
    """y = x·m/(1 − p) with m ~ Bernoulli(1 − p) drawn on x's device;  x̄ = ȳ·m/(1 − p). The
    scaled mask is kept; the composite multiplies by that same mask."""

    @staticmethod
    def forward(ctx, x, p):
        keep = ctx.backend.uniform(x.shape, x.dtype) >= p
        scale = ctx.xp.asarray(keep, dtype=x.dtype) * (1.0 / (1.0 - p))
        ctx.scale = scale.astype(x.dtype, copy=False)
        return x * ctx.scale

    @staticmethod
    def backward_arrays(ctx, g):
        return g * ctx.scale, None

    def composite_inputs(self) -> tuple:
        return _zeros_for_input(self, 0), None

    @staticmethod
    def composite(ctx, x, _p):
        return x * _wrap_array(ctx.scale, ctx.backend)


class PhiloxDropout(FusedOp):
    """y = x·m/(1 − p) with m the keep mask of Philox4x32-10 at (seed, offset), made in the
    same pass (`Backend.dropout_forward`). The mask is not stored: the VJP, x̄ = ȳ·m/(1 − p),
    regenerates it from the same (seed, offset), and so does the composite, x·(m/(1 − p))."""

    @staticmethod
    def forward(ctx, x, p, seed, offset):
        ctx.p, ctx.seed, ctx.offset = p, seed, offset
        return ctx.backend.dropout_forward(x, p, seed, offset)

    @staticmethod
    def backward_arrays(ctx, g):
        return ctx.backend.dropout_backward(g, ctx.p, ctx.seed, ctx.offset), None, None, None

    def composite_inputs(self) -> tuple:
        return _zeros_for_input(self, 0), None, None, None

    @staticmethod
    def composite(ctx, x, *_):
        be = ctx.backend
        scale = be.dropout_forward(be.xp.ones(x.shape, x._data.dtype), ctx.p, ctx.seed,
                                   ctx.offset)
        return x * _wrap_array(scale, be)


def _zeros_for_input(ctx, i: int):
    """A broadcast zero array of forward argument i's shape and dtype: where an op is linear
    in that input, its VJP does not depend on the value (so the input need not be kept)."""
    shape, dtype = ctx._input_meta[i]
    xp = ctx.xp
    return xp.broadcast_to(xp.zeros((), dtype=dtype), shape)


def dropout(x, p: float):
    """Dropout of x with probability p (0 < p < 1) on x's backend: a regenerated Philox
    mask where the backend has the kernels for it (CUDA), a stored Bernoulli mask else."""
    state = x._backend.dropout_philox_state(x.numel())
    if state is not None:
        return PhiloxDropout.apply(x, p, *state)
    return Dropout.apply(x, p)

