"""Random sampling as PyTorch spells it: `multinomial`, `bernoulli`, `normal`, `randperm`,
and the in-place initialisers `Tensor.normal_`, `uniform_`, `exponential_`, `random_`,
`bernoulli_`. Every function takes `generator=` (a `gg.Generator`); without one it draws
from the device's global stream that `gg.manual_seed` seeds. Results never require grad.
"""

from __future__ import annotations

import json

import numpy as np

from . import _dtype
from ._dtype import to_dtype
from ._generator import Generator, rng_for, sample
from .backend import cpu_backend
from .creation import _backend_for, _np_dtype, from_numpy, manual_seed
from .tensor import Tensor, _check_same_device, _wrap_array

__all__ = ["Generator", "multinomial", "bernoulli", "normal", "randperm", "seed",
           "get_rng_state", "set_rng_state"]


def _uniform_like(backend, generator, op: str, shape: tuple, np_dt=np.float64):
    return sample(backend, generator, op, "uniform", shape, np_dt)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator: Generator | None = None) -> Tensor:
    """Indices drawn from the categorical distribution(s) with weights `input` (1-d: one
    distribution; 2-d: one per row; weights need not sum to 1). Returns int64 of shape
    (num_samples,) or (rows, num_samples).

    With replacement, index k has probability pₖ / Σp at every draw (inverse CDF of a
    uniform). Without, the draws are distinct: the order of the keys pₖ / Eₖ, Eₖ ~ Exp(1),
    largest first, which is sequential sampling without replacement."""
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape "
                           f"{tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, "
                           f"got {input.dtype}")
    n_cat = input.shape[-1]
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples "
                           f"(got {num_samples})")
    if not replacement and num_samples > n_cat:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples "
                           f"without replacement ({num_samples} > {n_cat})")
    backend, xp = input._backend, input._backend.xp
    p = input._data.astype(np.float64).reshape(-1, n_cat)
    bad = ~xp.isfinite(p) | (p < 0)
    if bool(bad.any()):
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or "
                           "element < 0")
    total = p.sum(axis=1, keepdims=True)
    if bool((total <= 0).any()):
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of "
                           "probabilities <= 0)")
    rows = p.shape[0]
    if replacement:
        cdf = xp.cumsum(p / total, axis=1)
        cdf[:, -1] = 1.0  # rounding must not leave a gap above the last category
        u = _uniform_like(backend, generator, "multinomial", (rows, num_samples))
        # First k with cdf[k] > u; zero-weight categories have cdf equal to their
        # predecessor's, so they are never chosen. Row r is shifted to [r, r + 1] so that
        # one search over the flattened rows serves them all.
        shift = xp.arange(rows, dtype=np.float64)[:, None]
        flat = xp.searchsorted((cdf + shift).ravel(), (u + shift).ravel(), side="right")
        out = flat.reshape(rows, num_samples) - (shift * n_cat).astype(np.int64)
        out = xp.clip(out, 0, n_cat - 1)
    else:
        e = sample(backend, generator, "multinomial", "exponential", (rows, n_cat), np.float64)
        keys = p / e  # zero-weight categories come last, in index order, as on torch's CPU
        out = xp.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(np.int64)
    return _wrap_array(out.reshape(num_samples) if input.ndim == 1 else out, backend)


def bernoulli(input: Tensor, p: float | None = None, *,
              generator: Generator | None = None) -> Tensor:
    """Samples of 0/1 with probability `input` (elementwise), or with the scalar `p` for
    every element when given; same shape and dtype as `input`."""
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli: input must be a Tensor, got {type(input).__name__}")
    backend = input._backend
    if p is None:
        if not input.dtype.is_floating_point:
            raise RuntimeError(f"bernoulli: expected a floating point probability tensor, "
                               f"got {input.dtype}")
        prob = input._data
        if bool(((prob < 0) | (prob > 1) | backend.xp.isnan(prob)).any()):
            raise RuntimeError("bernoulli: all elements of input should be between 0 and 1")
    else:
        if not 0 <= p <= 1:
            raise RuntimeError(f"bernoulli: expected 0 <= p <= 1, got p={p}")
        prob = p
    u = _uniform_like(backend, generator, "bernoulli", input.shape)
    return _wrap_array((u < prob).astype(input._data.dtype), backend)


def normal(mean, std=1.0, size=None, *, generator: Generator | None = None, dtype=None,
           device=None, requires_grad: bool = False) -> Tensor:
    """Samples of N(mean, std²): `mean` and/or `std` tensors (broadcast together; the result
    has their promoted float dtype), or two numbers with `size` (float32 by default)."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ts = [t for t in (mean, std) if isinstance(t, Tensor)]
        _check_same_device("normal", *ts)
        backend = ts[0]._backend
        dt = ts[0].dtype if len(ts) == 1 else _dtype.promote_types(mean.dtype, std.dtype)
        if not dt.is_floating_point:
            raise RuntimeError(f"normal: expected floating point mean/std, got {dt}")
        m = mean._data if isinstance(mean, Tensor) else float(mean)
        s = std._data if isinstance(std, Tensor) else float(std)
        if bool((backend.xp.asarray(s) < 0).any()):
            raise RuntimeError("normal: expected all elements of std >= 0.0")
        try:
            shape = np.broadcast_shapes(np.shape(m), np.shape(s))
        except ValueError:
            raise RuntimeError(f"normal: mean of shape {np.shape(m)} and std of shape "
                               f"{np.shape(s)} do not broadcast") from None
        if size is not None and tuple(size) != shape:
            raise RuntimeError(f"normal: size {tuple(size)} does not match the shape {shape} "
                               "of mean and std")
        np_dt = _np_dtype(backend, dt)
    else:
        if size is None:
            raise TypeError("normal: with a number for both mean and std, pass size=")
        if std < 0:
            raise RuntimeError(f"normal: expected std >= 0.0, got {std}")
        m, s = float(mean), float(std)
        shape = (size,) if isinstance(size, int) else tuple(size)
        backend = _backend_for(device)
        dt = to_dtype(dtype) if dtype is not None else _dtype.DEFAULT_FLOAT
        np_dt = _np_dtype(backend, dt)
    z = sample(backend, generator, "normal", "normal", shape, np_dt)
    t = _wrap_array((z * s + m).astype(np_dt, copy=False), backend)
    return t.requires_grad_(True) if requires_grad else t


def randperm(n: int, *, generator: Generator | None = None, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of 0..n-1 (int64 by default)."""
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    backend = _backend_for(device)
    dt = to_dtype(dtype) if dtype is not None else _dtype.int64
    rng = rng_for(backend, generator, "randperm")
    if backend.device.type == "cpu":
        arr = rng.permutation(n)
    else:
        arr = backend.xp.argsort(_uniform_like(backend, generator, "randperm", (n,)))
    t = _wrap_array(arr.astype(_np_dtype(backend, dt)), backend)
    return t.requires_grad_(True) if requires_grad else t


# --- the global CPU stream ------------------------------------------------------------------
def seed() -> int:
    """Seed every backend from the operating system's entropy; returns the seed used."""
    s = int(np.random.SeedSequence().entropy) % 2 ** 63
    manual_seed(s)
    return s


def get_rng_state() -> Tensor:
    """The CPU backend's random state (its NumPy stream and its dropout Philox counter) as
    a uint8 tensor, for `set_rng_state`."""
    state = {"numpy": cpu_backend.rng.bit_generator.state,
             "philox": [cpu_backend._philox_seed, cpu_backend._philox_offset]}
    return from_numpy(np.frombuffer(json.dumps(state).encode(), dtype=np.uint8).copy())


def set_rng_state(new_state: Tensor) -> None:
    """Restore a state returned by `get_rng_state`."""
    if not isinstance(new_state, Tensor) or new_state.dtype is not _dtype.uint8:
        raise TypeError(f"set_rng_state: expected a uint8 tensor from get_rng_state(), got "
                        f"{type(new_state).__name__} of dtype {getattr(new_state, 'dtype', None)}")
    try:
        state = json.loads(np.asarray(new_state.numpy()).tobytes().decode())
        rng = np.random.default_rng()
        rng.bit_generator.state = state["numpy"]
        philox_seed, philox_offset = state["philox"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise RuntimeError("set_rng_state: the tensor is not a state saved by "
                           "get_rng_state()") from None
    cpu_backend.rng = rng
    cpu_backend._philox_seed, cpu_backend._philox_offset = philox_seed, int(philox_offset)


# --- in-place initialisers -------------------------------------------------------------------
def _fill_from(t: Tensor, values, op: str) -> Tensor:
    """Write `values` (an array of t's shape) into t with `fill_`'s autograd rules (a leaf
    that requires grad refuses under grad mode; the version bumps; a non-leaf leaves its
    graph), naming `op` in the error."""
    t._check_inplace(op)
    return t.fill_(values)


def _draw_for(t: Tensor, generator, op: str, kind: str, *params):
    dt = t._data.dtype if t._data.dtype in (np.float32, np.float64) else np.float64
    return sample(t._backend, generator, op, kind, t.shape, dt, *params)


def _require_float(t: Tensor, op: str) -> None:
    if not t.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating point tensor, got {t.dtype}")


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *,
            generator: Generator | None = None) -> Tensor:
    """Fill in place with samples of N(mean, std²)."""
    _require_float(self, "normal_")
    if std < 0:
        raise RuntimeError(f"normal_: expected std >= 0.0, got {std}")
    z = _draw_for(self, generator, "normal_", "normal")
    return _fill_from(self, z * std + mean, "normal_")


def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *,
             generator: Generator | None = None, **kw) -> Tensor:
    """Fill in place with samples uniform in [a, b) (PyTorch's `from`/`to` also accepted)."""
    a, b = kw.pop("from", a), kw.pop("to", b)
    if kw:
        raise TypeError(f"uniform_: unexpected arguments {sorted(kw)}")
    _require_float(self, "uniform_")
    if a > b:
        raise RuntimeError(f"uniform_: expects to return a [from, to) range, but found "
                           f"from={a} > to={b}")
    u = _draw_for(self, generator, "uniform_", "uniform")
    return _fill_from(self, u * (b - a) + a, "uniform_")


def exponential_(self: Tensor, lambd: float = 1.0, *,
                 generator: Generator | None = None) -> Tensor:
    """Fill in place with samples of Exp(lambd) (density lambd·e^(−lambd·x))."""
    _require_float(self, "exponential_")
    if not lambd > 0:
        raise RuntimeError(f"exponential_: expects lambda > 0.0, but found lambda={lambd}")
    e = _draw_for(self, generator, "exponential_", "exponential")
    return _fill_from(self, e / lambd, "exponential_")


def random_(self: Tensor, low: int = 0, high: int | None = None, *,
            generator: Generator | None = None, **kw) -> Tensor:
    """Fill in place with integers uniform in [low, high); `random_(high)` means [0, high);
    with neither, [0, 2^mantissa] for floats and the dtype's range for integers."""
    low, high = kw.pop("from", low), kw.pop("to", high)
    if kw:
        raise TypeError(f"random_: unexpected arguments {sorted(kw)}")
    if high is None and low != 0:
        low, high = 0, low
    if high is None:
        d = self._data.dtype
        high = (2 if d == np.bool_ else 2 ** (np.finfo(d).nmant + 1) + 1 if d.kind == "f"
                else int(np.iinfo(d).max) + 1)
    if low >= high:
        raise RuntimeError(f"random_: expects 'from' to be less than 'to', but got "
                           f"from={low} >= to={high}")
    v = sample(self._backend, generator, "random_", "integers", self.shape, np.int64,
               low, min(high, 2 ** 63 - 1))
    return _fill_from(self, v, "random_")


def bernoulli_(self: Tensor, p=0.5, *, generator: Generator | None = None) -> Tensor:
    """Fill in place with 0/1 samples of probability `p` (a number or a tensor)."""
    prob = p._data if isinstance(p, Tensor) else float(p)
    u = sample(self._backend, generator, "bernoulli_", "uniform", self.shape, np.float64)
    return _fill_from(self, u < prob, "bernoulli_")


def _bind_methods() -> None:
    for fn in (normal_, uniform_, exponential_, random_, bernoulli_):
        setattr(Tensor, fn.__name__, fn)
    Tensor.bernoulli = lambda self, p=None, *, generator=None: bernoulli(
        self, p, generator=generator)
    Tensor.multinomial = lambda self, num_samples, replacement=False, *, generator=None: \
        multinomial(self, num_samples, replacement, generator=generator)


_bind_methods()
