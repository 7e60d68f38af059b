"""Complex-specific ops: real/imag parts, building complex tensors, views as pairs of reals,
and the phase.

Gradients follow PyTorch's convention (see elementwise.py): a complex cotangent is
∂L/∂Re + i·∂L/∂Im of the real loss L, so crossing between real and complex keeps the
matching component: the real part of a complex cotangent flows into a real input, and a
real cotangent enters a complex input along the real (or, for `imag`, the imaginary) axis.
"""

from __future__ import annotations

from .. import _dtype
from ..autograd.function import Op
from ..autograd.views import is_view_of, make_view
from ..errors import ShapeError
from ..tensor import Tensor, _check_same_device
from . import elementwise as _ew
from .broadcast import sum_to

_REAL_OF = {"complex64": _dtype.float32, "complex128": _dtype.float64}
_COMPLEX_OF = {"float32": _dtype.complex64, "float64": _dtype.complex128}


def _view_of(out: Tensor, src: Tensor, view_fn) -> Tensor:
    """Mark `out` as a view of `src` (see autograd/views.py) when it shares its storage."""
    if is_view_of(out._data, src._data):
        make_view(out, src, view_fn, view_fn.__name__)
    return out


def _require_complex(x: Tensor, op: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x._data.dtype.kind != "c":
        raise RuntimeError(f"{op}: expected a complex tensor, got dtype {x.dtype}")


class Real(Op):
    """y = Re x (a view);  x̄ = ȳ + 0i."""

    @staticmethod
    def forward(ctx, x):
        ctx.src = x.dtype
        return x.real

    @staticmethod
    def backward(ctx, g):
        return _ew.cast(g, _dtype.from_numpy_dtype(ctx.src))


class Imag(Op):
    """y = Im x (a view);  x̄ = i·ȳ."""

    @staticmethod
    def forward(ctx, x):
        ctx.src = x.dtype
        return x.imag

    @staticmethod
    def backward(ctx, g):
        return _ew.cast(g, _dtype.from_numpy_dtype(ctx.src)) * 1j


class Complex(Op):
    """y = a + i·b (a, b real, broadcasting);  ā = sum_to(Re ȳ),  b̄ = sum_to(Im ȳ)."""

    @staticmethod
    def forward(ctx, a, b, np_dtype):
        xp = ctx.xp
        try:
            shape = xp.broadcast(a, b).shape
        except ValueError:
            raise ShapeError(f"complex: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                             "broadcast together") from None
        out = xp.empty(shape, dtype=np_dtype)
        out.real = a
        out.imag = b
        return out

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        ga = sum_to(real(g), ctx.input_shape(0)) if need[0] else None
        gb = sum_to(imag(g), ctx.input_shape(1)) if need[1] else None
        return ga, gb, None


class ViewAsReal(Op):
    """y[..., 0] = Re x, y[..., 1] = Im x (a view when the layout allows);
    x̄ = view_as_complex(ȳ)."""

    @staticmethod
    def forward(ctx, x):
        real_dt = x.real.dtype
        try:
            return x[..., None].view(real_dt)
        except (ValueError, TypeError, AttributeError):
            return ctx.xp.stack((x.real, x.imag), axis=-1)

    @staticmethod
    def backward(ctx, g):
        return view_as_complex(g)


class ViewAsComplex(Op):
    """y = x[..., 0] + i·x[..., 1] (a view when the layout allows);  x̄ = view_as_real(ȳ)."""

    @staticmethod
    def forward(ctx, x, np_dtype):
        if x.flags.c_contiguous:
            try:
                return x.view(np_dtype)[..., 0]
            except (ValueError, TypeError):
                pass
        out = ctx.xp.empty(x.shape[:-1], dtype=np_dtype)
        out.real = x[..., 0]
        out.imag = x[..., 1]
        return out

    @staticmethod
    def backward(ctx, g):
        return view_as_real(g), None


class Angle(Op):
    """y = arg x (atan2(Im x, Re x));  x̄ = ȳ·i·x/|x|² (0 at x = 0); for real x, x̄ = 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_inputs(0)
        xp = ctx.xp
        if x.dtype.kind != "c":
            # torch: 0 for x ≥ 0, π for x < 0, NaN stays NaN
            return xp.where(x < 0, xp.asarray(xp.pi, dtype=x.dtype), x * 0)
        return xp.angle(x)

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_input(0)
        if x._data.dtype.kind != "c":
            return g * 0
        a2 = real(x * _ew.conj(x))
        zero = a2 == 0
        return _ew.where(zero, 0.0, g * x * 1j / _ew.where(zero, 1.0, a2))


# --- functional API ----------------------------------------------------------------------
def real(input: Tensor) -> Tensor:
    """The real part of a complex tensor (a view, as in torch); a real tensor itself."""
    if input._data.dtype.kind != "c":
        return input
    return _view_of(Real.apply(input), input, real)


def imag(input: Tensor) -> Tensor:
    """The imaginary part of a complex tensor (a view, as in torch)."""
    if input._data.dtype.kind != "c":
        raise RuntimeError(f"imag is not implemented for tensors with non-complex dtypes "
                           f"(got {input.dtype})")
    return _view_of(Imag.apply(input), input, imag)


def complex(real: Tensor, imag: Tensor) -> Tensor:  # noqa: A001 - torch.complex
    """real + i·imag from two real tensors of the same dtype (float32 → complex64, float64 →
    complex128), broadcasting."""
    if not isinstance(real, Tensor) or not isinstance(imag, Tensor):
        raise TypeError("complex: real and imag must be Tensors")
    _check_same_device("complex", real, imag)
    if real.dtype is not imag.dtype:
        raise TypeError(f"complex: expected real and imag to have the same dtype, got "
                        f"{real.dtype} and {imag.dtype}")
    cdt = _COMPLEX_OF.get(real.dtype.name)
    if cdt is None:
        raise TypeError(f"complex: expected float32 or float64 parts, got {real.dtype}")
    return Complex.apply(real, imag, cdt.np)


def polar(abs: Tensor, angle: Tensor) -> Tensor:  # noqa: A002 - torch.polar
    """abs·(cos angle + i·sin angle)."""
    return complex(abs * _ew.cos(angle), abs * _ew.sin(angle))


def view_as_real(input: Tensor) -> Tensor:
    """A complex tensor of shape S as a real one of shape S + (2,) (real, imag pairs)."""
    _require_complex(input, "view_as_real")
    return _view_of(ViewAsReal.apply(input), input, view_as_real)


def view_as_complex(input: Tensor) -> Tensor:
    """A real tensor of shape S + (2,) as a complex one of shape S."""
    if not isinstance(input, Tensor):
        raise TypeError(f"view_as_complex: expected a Tensor, got {type(input).__name__}")
    cdt = _COMPLEX_OF.get(input.dtype.name)
    if cdt is None:
        raise RuntimeError(f"view_as_complex: expected a float32 or float64 tensor, got "
                           f"{input.dtype}")
    if input.ndim == 0 or input.shape[-1] != 2:
        raise RuntimeError(f"view_as_complex: the last dimension must have size 2, got shape "
                           f"{tuple(input.shape)}")
    return _view_of(ViewAsComplex.apply(input, cdt.np), input, view_as_complex)


def angle(input: Tensor) -> Tensor:
    """The phase arg(x) in (−π, π] elementwise (0 or π for real x); real-valued."""
    if input._data.dtype.kind not in "fc":
        input = _ew.cast(input, _dtype.DEFAULT_FLOAT)
    return Angle.apply(input)


def conj_physical(input: Tensor) -> Tensor:
    """The complex conjugate (gpugrad never uses lazy conjugation, so the same as conj)."""
    return _ew.conj(input)


def resolve_conj(input: Tensor) -> Tensor:
    """The input itself: conjugation is never lazy in gpugrad."""
    return input


def is_complex(input: Tensor) -> bool:
    """True for complex64 and complex128 tensors."""
    return input._data.dtype.kind == "c"
