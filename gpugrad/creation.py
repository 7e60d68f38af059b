"""Creating tensors: from data, filled, ranges and random numbers."""

from __future__ import annotations

import numpy as np

from . import _dtype
from ._dtype import DType, from_numpy_dtype, to_dtype
from ._generator import sample
from .backend import all_backends, cpu_backend, get_backend
from .device import default_device
from .tensor import Tensor, _size_tuple, _wrap_array

__all__ = ["tensor", "as_tensor", "from_numpy", "from_dlpack", "zeros", "ones", "full", "empty",
           "zeros_like", "ones_like", "full_like", "empty_like", "arange", "linspace", "eye",
           "rand", "randn", "randint", "rand_like", "randn_like", "manual_seed", "logspace",
           "randint_like"]

_PY_DEFAULTS = {np.dtype(np.int32): _dtype.int64, np.dtype(np.int64): _dtype.int64}


def _py_default(np_dt):
    """The dtype of Python data that NumPy reads as `np_dt`: floats and complex numbers
    take the default dtypes (gg.set_default_dtype), ints int64; None for the rest."""
    if np_dt == np.float64:
        return _dtype.DEFAULT_FLOAT
    if np_dt == np.complex128:
        return _dtype.DEFAULT_COMPLEX
    return _PY_DEFAULTS.get(np_dt)


def _backend_for(device, fallback=None):
    if device is None:
        return fallback if fallback is not None else get_backend(default_device())
    return get_backend(device)


def _np_dtype(backend, dtype: DType):
    np_dt = backend.np_dtype(dtype)
    if np_dt is None:
        raise TypeError(f"dtype {dtype} is not supported on device {backend.device}"
                        + (f" ({_dtype.BF16_HINT})" if dtype is _dtype.bfloat16 else ""))
    return np_dt


def _to_array(data, dtype=None, device=None):
    """(array, backend) holding a copy of `data`, with PyTorch's dtype inference."""
    dtype = to_dtype(dtype) if dtype is not None else None
    if isinstance(data, Tensor):
        backend = _backend_for(device, data._backend)
        src = data._data
        if backend is not data._backend:
            src = backend.asarray(data._backend.to_host(src))
        dt = dtype or data.dtype
        return src.astype(_np_dtype(backend, dt), copy=True), backend
    module = type(data).__module__.split(".")[0]
    if module == "cupy":
        backend = _backend_for(device, get_backend(f"cuda:{data.device.id}"))
        dt = dtype or from_numpy_dtype(data.dtype)
        if backend is cpu_backend:
            return backend.to_host(data).astype(_np_dtype(backend, dt)), backend
        return backend.asarray(data, dtype=_np_dtype(backend, dt)), backend
    if module == "torch":
        data = data.detach().cpu().numpy()
    backend = _backend_for(device)
    if isinstance(data, (np.ndarray, np.generic)):
        host = np.array(data)
        dt = dtype or from_numpy_dtype(host.dtype)
    else:
        try:
            host = np.array(data)
        except (ValueError, TypeError) as e:
            raise TypeError(f"tensor: cannot make a tensor from {type(data).__name__}: {e}") \
                from None
        if host.dtype == object:
            raise TypeError(f"tensor: cannot make a tensor from {type(data).__name__} "
                            "(ragged or non-numeric data)")
        if host.size == 0 and host.dtype == np.float64:
            dt = dtype or _dtype.DEFAULT_FLOAT
        else:
            dt = dtype or _py_default(host.dtype) or from_numpy_dtype(host.dtype)
    host = host.astype(_np_dtype(cpu_backend, dt) if dt.np is not None else host.dtype,
                       copy=False)
    if backend is cpu_backend:
        if dt.np is None:
            raise TypeError(f"dtype {dt} is not supported on device cpu ({_dtype.BF16_HINT})")
        return host, backend
    return backend.asarray(host, dtype=_np_dtype(backend, dt)), backend


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (a number, nested lists, a NumPy/CuPy array or
    a Tensor). Python floats become float32, ints int64; arrays keep their dtype."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like `tensor`, but returns `data` itself when it already matches."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype is to_dtype(dtype)) and \
            (device is None or data.device == device):
        return data
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with a NumPy array (no copy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    from_numpy_dtype(array.dtype)
    return _wrap_array(array, cpu_backend)


def from_dlpack(obj) -> Tensor:
    """A tensor sharing memory with any DLPack-capable array (NumPy, CuPy, PyTorch...)."""
    if isinstance(obj, Tensor):
        return obj.detach()
    dev_type, dev_id = obj.__dlpack_device__()
    if int(dev_type) == 1:  # kDLCPU
        return _wrap_array(np.from_dlpack(obj), cpu_backend)
    backend = get_backend(f"cuda:{dev_id}")
    with backend.cuda_device:
        return _wrap_array(backend.xp.from_dlpack(obj), backend)


def _shape(size, op: str = "size") -> tuple:
    shape = _size_tuple(size, op)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    return shape


def _filled(fill, shape, dtype, device, requires_grad) -> Tensor:
    backend = _backend_for(device)
    dt = to_dtype(dtype) if dtype is not None else _dtype.DEFAULT_FLOAT
    xp = backend.xp
    np_dt = _np_dtype(backend, dt)
    if fill is None:
        arr = xp.empty(shape, dtype=np_dt)
    elif fill == 0:
        arr = xp.zeros(shape, dtype=np_dt)
    else:
        arr = xp.full(shape, fill, dtype=np_dt)
    t = _wrap_array(arr, backend)
    return t.requires_grad_(True) if requires_grad else t


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros; `zeros(2, 3)` and `zeros((2, 3))` are the same."""
    return _filled(0, _shape(size, "zeros"), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _filled(1, _shape(size, "ones"), dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor."""
    return _filled(None, _shape(size, "empty"), dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with `fill_value` (its dtype follows the value, as in PyTorch)."""
    if dtype is None:
        dtype = (_dtype.bool_ if isinstance(fill_value, bool) else _dtype.int64
                 if isinstance(fill_value, int) else _dtype.DEFAULT_COMPLEX
                 if isinstance(fill_value, complex) else _dtype.DEFAULT_FLOAT)
    size = _shape((size,) if isinstance(size, int) else tuple(size), "full")
    return _filled(fill_value, size, dtype, device, requires_grad)


def _like(t: Tensor, dtype, device):
    return (dtype if dtype is not None else t.dtype), (device if device is not None else t.device)


def zeros_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape (and by default dtype and device) of `input`."""
    dt, dev = _like(input, dtype, device)
    return _filled(0, input.shape, dt, dev, requires_grad)


def ones_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape (and by default dtype and device) of `input`."""
    dt, dev = _like(input, dtype, device)
    return _filled(1, input.shape, dt, dev, requires_grad)


def full_like(input: Tensor, fill_value, dtype=None, device=None,
              requires_grad: bool = False) -> Tensor:
    """`fill_value` with the shape (and by default dtype and device) of `input`."""
    dt, dev = _like(input, dtype, device)
    return _filled(fill_value, input.shape, dt, dev, requires_grad)


def empty_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uninitialised, with the shape (and by default dtype and device) of `input`."""
    dt, dev = _like(input, dtype, device)
    return _filled(None, input.shape, dt, dev, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Values from start (inclusive) to end (exclusive) by step; int64 when all are ints."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = _dtype.int64 if ints else _dtype.DEFAULT_FLOAT
    backend = _backend_for(device)
    dt = to_dtype(dtype)
    arr = backend.xp.arange(start, end, step).astype(_np_dtype(backend, dt))
    t = _wrap_array(arr, backend)
    return t.requires_grad_(True) if requires_grad else t


def _spaced(op: str, start, end, steps: int, dtype, device, requires_grad, base=None):
    """linspace/logspace: `steps` points computed in float64 and cast to `dtype`. With an
    integer dtype the endpoints are first truncated to integers, as in PyTorch."""
    start, end = (float(v.item()) if isinstance(v, Tensor) else v for v in (start, end))
    if isinstance(steps, Tensor):
        steps = int(steps.item())
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool):
        raise TypeError(f"{op}: steps must be an int, got {type(steps).__name__}")
    if steps < 0:
        raise RuntimeError(f"{op}: number of steps must be non-negative, got {steps}")
    backend = _backend_for(device)
    dt = to_dtype(dtype) if dtype is not None else _dtype.DEFAULT_FLOAT
    if dt.category == _dtype.int64.category:
        start, end = int(start), int(end)
    points = np.linspace(start, end, steps, dtype=np.complex128 if dt.is_complex else
                         np.float64)
    if base is not None:
        points = np.power(float(base), points)
    host = points.astype(_np_dtype(cpu_backend, dt)) if dt.np is not None else points
    arr = host if backend is cpu_backend else backend.asarray(host, _np_dtype(backend, dt))
    t = _wrap_array(arr, backend)
    return t.requires_grad_(True) if requires_grad else t


def linspace(start, end, steps: int, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from start to end inclusive: start + i·(end − start) /
    (steps − 1). float32 by default; an integer dtype truncates the endpoints first and then
    each value, as in PyTorch."""
    return _spaced("linspace", start, end, steps, dtype, device, requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """base ** linspace(start, end, steps): `steps` values spaced evenly on a log scale,
    with linspace's dtype rules."""
    return _spaced("logspace", start, end, steps, dtype, device, requires_grad, base)


def eye(n: int, m: int | None = None, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    """The n×m identity matrix (ones on the main diagonal, zeros elsewhere)."""
    for name, v in (("n", n), ("m", m)):
        if v is not None and v < 0:
            raise RuntimeError(f"eye: {name} must be greater or equal to 0, got {v}")
    backend = _backend_for(device)
    dt = to_dtype(dtype) if dtype is not None else _dtype.DEFAULT_FLOAT
    t = _wrap_array(backend.xp.eye(n, m, dtype=_np_dtype(backend, dt)), backend)
    return t.requires_grad_(True) if requires_grad else t


def _random(kind: str, shape, dtype, device, requires_grad, generator=None) -> Tensor:
    backend = _backend_for(device)
    dt = to_dtype(dtype) if dtype is not None else _dtype.DEFAULT_FLOAT

    def draw(shape, np_dt):
        return sample(backend, generator, kind, "uniform" if kind == "rand" else "normal",
                      shape, np_dt)

    if dt.is_complex:
        # As torch: independent real and imaginary parts; randn scales each by 1/√2 so
        # that E|z|² = 1.
        part = _dtype.float64 if dt is _dtype.complex128 else _dtype.float32
        re, im = (draw(shape, _np_dtype(backend, part)) for _ in range(2))
        arr = backend.xp.empty(shape, dtype=_np_dtype(backend, dt))
        scale = 1.0 if kind == "rand" else 0.5 ** 0.5
        arr.real, arr.imag = re * scale, im * scale
        t = _wrap_array(arr, backend)
        return t.requires_grad_(True) if requires_grad else t
    if not dt.is_floating_point:
        raise TypeError(f"{kind}: expected a floating point or complex dtype, got {dt}")
    t = _wrap_array(draw(shape, _np_dtype(backend, dt)), backend)
    return t.requires_grad_(True) if requires_grad else t


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) (from `generator` when given)."""
    return _random("rand", _shape(size, "rand"), dtype, device, requires_grad, generator)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples (from `generator` when given)."""
    return _random("randn", _shape(size, "randn"), dtype, device, requires_grad, generator)


def rand_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False,
              generator=None) -> Tensor:
    """Uniform samples shaped like `input` (and by default of its dtype and device)."""
    dt, dev = _like(input, dtype, device)
    return _random("rand", input.shape, dt, dev, requires_grad, generator)


def randn_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False,
               generator=None) -> Tensor:
    """Standard normal samples shaped like `input` (and by default of its dtype and device)."""
    dt, dev = _like(input, dtype, device)
    return _random("randn", input.shape, dt, dev, requires_grad, generator)


def randint_like(input: Tensor, low: int = 0, high: int | None = None, dtype=None, device=None,
                 requires_grad: bool = False, generator=None) -> Tensor:
    """Integers uniform in [low, high) shaped like `input`; `randint_like(x, high)` also
    works. The dtype defaults to `input`'s (a float tensor gets whole-number floats)."""
    if high is None:
        low, high = 0, low
    dt, dev = _like(input, dtype, device)
    t = randint(low, high, input.shape, dtype=dt, device=dev, generator=generator)
    return t.requires_grad_(True) if requires_grad else t


def randint(low, high=None, size=None, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Integers uniform in [low, high); `randint(high, size)` also works."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: expected randint(low, high, size) or randint(high, size)")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be less than high ({high})")
    backend = _backend_for(device)
    dt = to_dtype(dtype) if dtype is not None else _dtype.int64
    size = _shape((size,) if isinstance(size, int) else tuple(size), "randint")
    arr = sample(backend, generator, "randint", "integers", size, _np_dtype(backend, dt),
                 low, high)
    t = _wrap_array(arr, backend)
    return t.requires_grad_(True) if requires_grad else t


def manual_seed(seed: int) -> None:
    """Seed every backend: the same seed gives the same numbers on the same backend."""
    from . import cuda

    seed = int(seed)
    if cuda.is_available():
        get_backend("cuda")
    for backend in all_backends():
        backend.manual_seed(seed)


seed = manual_seed
