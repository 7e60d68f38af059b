"""Hypothesis strategies and the gpugrad-vs-PyTorch comparison used by the property tests.

Values are drawn from a seed and a "mode" rather than element by element, which keeps
generation fast for 5-d inputs; modes put values at the edges of an op's domain (near 0+
for log/sqrt, large magnitudes for exp/tanh/sigmoid, exact zeros and ties for kinks).
Leaves are handed to gpugrad in a generated memory layout (C order, Fortran order, a
strided slice of a larger buffer, or negative strides) and to PyTorch as contiguous copies.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gpugrad as gg

DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = st.sampled_from(["c", "fortran", "strided", "negative"])
# Exactly the exception types an op may raise for bad input (subclasses from NumPy, such as
# numpy.exceptions.AxisError, which is both a ValueError and an IndexError, do not count).
DOCUMENTED_ERRORS = (TypeError, ValueError, IndexError, RuntimeError, NotImplementedError,
                     gg.ShapeError, gg.DeviceError)


def shapes(min_dims=0, max_dims=5, min_side=0, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


# domain name -> list of modes; each mode maps (rng, shape, dtype) to values
def _uniform(lo, hi):
    return lambda rng, shape, dt: rng.uniform(lo, hi, size=shape)


def _log_uniform(lo, hi, sign=1.0):
    return lambda rng, shape, dt: sign * np.exp(rng.uniform(np.log(lo), np.log(hi), size=shape))


def _discrete(rng, shape, dt):
    """Small integers: exact zeros and many ties (kinks of abs/relu/clamp/max)."""
    return rng.integers(-2, 3, size=shape).astype(np.float64)


def _tiny_float(rng, shape, dt):
    lo = 1e-30 if dt == np.float32 else 1e-200
    return np.exp(rng.uniform(np.log(lo), 0.0, size=shape))


MODES = {
    "real": [_uniform(-2, 2), _discrete, _uniform(-30, 30), _log_uniform(1e-6, 1.0)],
    "positive": [_uniform(0.5, 2.0), _tiny_float, _log_uniform(1e-6, 1e3)],
    "nonneg": [_uniform(0.5, 2.0), _tiny_float,
               lambda rng, s, dt: np.where(rng.random(s) < 0.3, 0.0, rng.uniform(0, 2, s))],
    "above_m1": [_uniform(-0.5, 2.0), lambda rng, s, dt: -1.0 + _tiny_float(rng, s, dt),
                 _log_uniform(1e-6, 1e3)],
    "large": [_uniform(-2, 2), _uniform(-80, 80),
              lambda rng, s, dt: rng.choice([-1, 1], size=s) * rng.uniform(20, 500, size=s)],
    "exp": [_uniform(-2, 2), _uniform(-80, 80), _uniform(-700, 80)],
    "away0": [lambda rng, s, dt: rng.choice([-1, 1], size=s) * rng.uniform(0.3, 2.0, size=s),
              lambda rng, s, dt: rng.choice([-1, 1], size=s) * np.exp(
                  rng.uniform(np.log(1e-3), np.log(1e3), size=s))],
}


@st.composite
def arrays(draw, shape, dtype, domain="real"):
    """A NumPy array of `shape`/`dtype` with values from one of `domain`'s modes."""
    seed = draw(st.integers(0, 2**32 - 1))
    mode = draw(st.sampled_from(MODES[domain]))
    rng = np.random.default_rng(seed)
    return np.asarray(mode(rng, tuple(shape), dtype)).astype(dtype)


def layout(a: np.ndarray, kind: str) -> np.ndarray:
    """The same values as `a` stored in the given memory layout (a view, not a copy)."""
    if a.ndim == 0:  # np.asfortranarray would make it 1-d
        return a.copy()
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided":
        buf = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        buf[..., ::2] = a
        return buf[..., ::2]
    if kind == "negative":
        return a[..., ::-1].copy()[..., ::-1]
    return a.copy()


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def tolerances(dtype) -> tuple:
    return (1e-4, 1e-5) if np.dtype(dtype) == np.float32 else (1e-9, 1e-10)


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype, what: str, scale_to=None):
    """allclose with dtype tolerances; absolute error scales with the largest finite
    magnitude of `scale_to` (default: the reference), since sums of many terms lose bits."""
    rtol, atol = tolerances(dtype)
    ref = expected if scale_to is None else scale_to
    finite = np.abs(ref[np.isfinite(ref)]) if np.size(ref) else np.zeros(0)
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, equal_nan=True,
                               err_msg=what)


def exact_type_ok(err: BaseException) -> bool:
    return type(err) in DOCUMENTED_ERRORS or type(err).__module__.startswith("gpugrad")


def compare(fn, arrays_, torch_fn=None, *, layouts=None, grad=True, cot_seed=0,
            dtype=None, grad_scale=None):
    """Run `fn` on gpugrad leaves and `torch_fn` (default `fn`) on torch leaves built from the
    same NumPy arrays (non-arrays pass through); compare outputs, then the gradients for a
    random cotangent. If PyTorch rejects the call, gpugrad must raise a documented error."""
    torch_fn = torch_fn or fn
    layouts = layouts or ["c"] * len(arrays_)
    g_in, t_in = [], []
    for a, lay in zip(arrays_, layouts):
        if isinstance(a, np.ndarray):
            diff = grad and a.dtype.kind == "f"
            g = gg.from_numpy(layout(a, lay))
            t = torch.from_numpy(a.copy())
            if diff:
                g.requires_grad_(True)
                t.requires_grad_(True)
            g_in.append(g)
            t_in.append(t)
        else:
            g_in.append(a)
            t_in.append(a)
    try:
        t_out = _as_list(torch_fn(*t_in))
    except (RuntimeError, IndexError, ValueError, TypeError) as e:
        try:
            fn(*g_in)
        except Exception as ge:  # noqa: BLE001 - the type is the point of the check
            assert exact_type_ok(ge), f"gpugrad raised {type(ge)!r}: {ge} (torch: {e})"
            return None
        raise AssertionError(f"torch raised {type(e).__name__}: {e}; gpugrad did not") from None
    g_out = _as_list(fn(*g_in))
    assert len(g_out) == len(t_out)
    dt = dtype or next((a.dtype for a in arrays_ if isinstance(a, np.ndarray)
                        and a.dtype.kind == "f"), np.float64)
    for k, (go, to) in enumerate(zip(g_out, t_out)):
        assert tuple(go.shape) == tuple(to.shape), \
            f"output {k}: shape {tuple(go.shape)} != torch {tuple(to.shape)}"
        assert str(go.dtype).split(".")[-1] == str(to.dtype).split(".")[-1], \
            f"output {k}: dtype {go.dtype} != torch {to.dtype}"
        assert_close(go.detach().numpy(), to.detach().numpy(), dt, f"output {k}")
    if not grad:
        return g_out
    pairs = [(go, to) for go, to in zip(g_out, t_out) if to.requires_grad]
    g_leaves = [x for x in g_in if isinstance(x, gg.Tensor) and x.requires_grad]
    t_leaves = [x for x in t_in if isinstance(x, torch.Tensor) and x.requires_grad]
    if not pairs or not t_leaves:
        return g_out
    rng = np.random.default_rng(cot_seed)
    cots = [rng.uniform(-1, 1, size=tuple(to.shape)).astype(to.detach().numpy().dtype)
            for _, to in pairs]
    tg = torch.autograd.grad([to for _, to in pairs], t_leaves,
                             [torch.from_numpy(c.copy()) for c in cots], allow_unused=True)
    gg_g = gg.autograd.grad([go for go, _ in pairs], g_leaves,
                            [gg.from_numpy(c.copy()) for c in cots], allow_unused=True)
    for k, (a, b) in enumerate(zip(gg_g, tg)):
        if b is None:
            assert a is None or not np.any(a.numpy()), f"input {k}: torch has no gradient"
            continue
        assert a is not None, f"input {k}: gpugrad returned no gradient"
        assert tuple(a.shape) == tuple(b.shape), f"gradient {k}: shape {a.shape} != {b.shape}"
        assert_close(a.numpy(), b.numpy(), dt, f"gradient of input {k}",
                     scale_to=None if grad_scale is None else grad_scale(b.numpy()))
    return g_out


@st.composite
def broadcast_pair(draw, max_dims=5):
    """Two shapes that broadcast together (dims dropped from the front or set to 1)."""
    out = draw(shapes(0, max_dims))
    other = list(out[draw(st.integers(0, len(out))):])
    for i in range(len(other)):
        if draw(st.booleans()):
            other[i] = 1
    first = list(out)
    for i in range(len(first)):
        if draw(st.integers(0, 3)) == 0:
            first[i] = 1
    pair = (tuple(first), tuple(other))
    return pair if draw(st.booleans()) else pair[::-1]


def dims_for(draw, ndim: int):
    """None, an int or a tuple of distinct dims (negative ones included)."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or (ndim == 0 and kind == "tuple"):
        return None
    if kind == "int":
        return draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
    picked = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in picked)


def require(cond: bool) -> None:
    assume(cond)
