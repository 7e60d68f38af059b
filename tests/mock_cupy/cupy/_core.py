"""The mock device array and the dispatch of CuPy's NumPy-like API to NumPy.

Device memory is NumPy memory that only this module touches: `ndarray` wraps a NumPy
array and refuses implicit conversion to the host (`numpy.asarray(x)` raises TypeError
as CuPy does); `.get()` and `cupy.asnumpy` copy to the host and are counted. Every call
that takes device arrays rejects NumPy arrays among its arguments (CuPy's "Unsupported
type"), computes with NumPy and wraps the results (reductions give 0-d device arrays).

CUDA graph capture: while the current stream captures, every call is still computed (so
shapes and dtypes exist) and also recorded as a thunk that recomputes it into the same
output buffers; at the end of the capture the contents of all device memory that existed
before it are restored (a GPU records without running), and a replay runs the thunks.
Reading device memory to the host during a capture raises, as the CUDA runtime does.
"""

from __future__ import annotations

import operator
import threading
import types as _types
import weakref

import numpy as np

# -- bookkeeping -----------------------------------------------------------------------------
counters = {"device_to_host": 0, "host_to_device": 0}
_live: dict[int, weakref.ref] = {}  # id -> base NumPy buffer of every live device array
_state = threading.local()
_owners = weakref.WeakValueDictionary()  # id(NumPy owner) -> its (first) device ndarray


class StreamCaptureError(RuntimeError):
    """cudaErrorStreamCaptureUnsupported: an operation a capturing stream cannot record."""


_current_stream = None  # cupy.cuda.get_current_stream, bound on first use (import order)


def capturing():
    """The recording list of the current stream's capture, or None."""
    global _current_stream
    if _current_stream is None:
        from .cuda import get_current_stream as _current_stream
    return _current_stream()._capture


def _record(thunk) -> None:
    rec = capturing()
    if rec is not None:
        rec.append(thunk)


def _register(base: np.ndarray) -> None:
    key = id(base)
    ref = _live.get(key)
    if ref is None or ref() is not base:  # a dead buffer's id can be reused at once
        _live[key] = weakref.ref(base, lambda r, k=key: _live.get(k) is r and _live.pop(k))


def snapshot() -> list:
    """(buffer, saved copy) of every live device allocation."""
    out = []
    for ref in list(_live.values()):
        buf = ref()
        if buf is not None and buf.size:
            out.append((buf, buf.copy()))
    return out


def to_host_check(what: str) -> None:
    counters["device_to_host"] += 1
    if capturing() is not None:
        raise StreamCaptureError(f"cudaErrorStreamCaptureUnsupported: {what} copies device "
                                 "memory to the host while the stream is capturing a graph")


# -- the array -------------------------------------------------------------------------------
class MemoryPointer:
    """A device address (`ptr`) into an allocation, as cupy.cuda.MemoryPointer."""

    def __init__(self, owner: ndarray | None, ptr: int) -> None:
        self._owner, self.ptr = owner, ptr

    def copy_from_host_async(self, mem, size, stream=None) -> None:
        """Copy `size` bytes from host address `mem.ptr` (or an int) at this address, in
        stream order (a capture records the copy, which rereads the host buffer)."""
        import ctypes

        src = getattr(mem, "ptr", mem)
        dst = self.ptr
        counters["host_to_device"] += 1
        keep = (mem, self._owner)
        ctypes.memmove(dst, src, size)
        _record(lambda: (ctypes.memmove(dst, src, size), keep))

    def copy_from_host(self, mem, size) -> None:
        self.copy_from_host_async(mem, size)

    def __int__(self) -> int:
        return self.ptr


class _Flags:
    def __init__(self, a: np.ndarray) -> None:
        self.c_contiguous = a.flags.c_contiguous
        self.f_contiguous = a.flags.f_contiguous
        self.owndata = a.flags.owndata

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]


class ndarray:
    """A device array of the mock CUDA device (CuPy 13/14's cupy.ndarray surface)."""

    __array_priority__ = 100
    __slots__ = ("_a", "__weakref__")

    def __init__(self, shape=None, dtype=float, memptr=None, strides=None, order="C",
                 _a=None) -> None:
        if _a is None:
            _a = np.empty(shape, dtype=dtype, order=order)
        if not isinstance(_a, np.ndarray):
            raise TypeError(f"mock cupy.ndarray over {type(_a).__name__}")
        if not _a.flags.writeable:  # CuPy's arrays are all writable (diagonal, broadcast_to)
            try:
                _a.setflags(write=True)
            except ValueError:  # a view of read-only host memory: NumPy keeps it so
                pass
        self._a = _a
        base = _a
        while isinstance(base.base, np.ndarray):
            base = base.base
        _register(base)
        if base is _a:
            _owners[id(_a)] = self

    # identity and metadata
    def _device_ptr(self) -> int:
        return self._a.__array_interface__["data"][0]

    @property
    def data(self) -> MemoryPointer:
        return MemoryPointer(self, self._device_ptr())

    @property
    def device(self):
        from .cuda import Device

        return Device(0)

    @property
    def flags(self) -> _Flags:
        return _Flags(self._a)

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)

    def _set_part(self, part: str, value) -> None:
        def assign(a, v):
            setattr(a, part, v)
        call(assign, (self, value), {}, name=f"ndarray.{part}")

    real = property(lambda self: call(lambda a: a.real, (self,), {}),
                    lambda self, v: self._set_part("real", v))
    imag = property(lambda self: call(lambda a: a.imag, (self,), {}),
                    lambda self, v: self._set_part("imag", v))

    @property
    def base(self):
        """The array owning the memory of a view (the same object for every view of it,
        as in CuPy), or None."""
        if self._a.base is None:
            return None
        root = self._a
        while isinstance(root.base, np.ndarray):
            root = root.base
        owner = _owners.get(id(root))
        if owner is None or owner._a is not root:
            owner = wrap(root)
        return owner

    # host transfers: the only ways out
    def get(self, stream=None, order="C", out=None, blocking=True):
        """A NumPy copy (a counted device-to-host transfer)."""
        to_host_check("ndarray.get()")
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order)

    def set(self, arr, stream=None) -> None:
        """Copy a NumPy array of the same shape into this array (host to device)."""
        setitem(self, Ellipsis, arr)

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")

    def _scalar(self, what: str):
        to_host_check(what)
        return self._a

    def __bool__(self) -> bool:
        return bool(self._scalar("bool()"))

    def __float__(self) -> float:
        return float(self._scalar("float()"))

    def __int__(self) -> int:
        return int(self._scalar("int()"))

    def __complex__(self) -> complex:
        return complex(self._scalar("complex()"))

    def __index__(self) -> int:
        return operator.index(self._scalar("index()"))

    def item(self, *args):
        return self._scalar("item()").item(*args)

    def tolist(self):
        return self._scalar("tolist()").tolist()

    def __repr__(self) -> str:
        return repr(self._a).replace("array(", "array(", 1)

    def __str__(self) -> str:
        return str(self._a)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        for i in range(len(self._a)):
            yield self[i]

    __hash__ = None

    def __copy__(self):
        return call(np.copy, (self,), {})

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __reduce__(self):
        return (_rebuild, (self.get(),))

    # indexing
    def __getitem__(self, key):
        return call(_getitem, (self, key), {}, name="ndarray.__getitem__")

    def __setitem__(self, key, value) -> None:
        setitem(self, key, value)

    # everything else (methods and attributes) through NumPy
    def __getattr__(self, name: str):
        if name.startswith("__"):  # __array_interface__, __array_struct__, buffer: host only
            raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}'")
        attr = getattr(self._a, name)
        if callable(attr):
            def method(*args, **kwargs):
                return call(lambda a, *r, **k: getattr(a, name)(*r, **k), (self, *args),
                            kwargs)
            method.__name__ = name
            return method
        if isinstance(attr, np.ndarray):  # T, real, imag, flat views
            return call(lambda a: getattr(a, name), (self,), {})
        return attr

    # NumPy protocols: CuPy takes over ufuncs and array functions on its arrays
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = getattr(ufunc, method)
        return call(fn, inputs, kwargs, name=f"numpy.{ufunc.__name__}")

    def __array_function__(self, func, types, args, kwargs):
        return call(func, args, kwargs, name=f"numpy.{func.__name__}")


def _getitem(a: np.ndarray, key):
    """a[key] as CuPy computes it: where NumPy gives a scalar (integers selecting one
    element), CuPy gives a 0-d array, a view of `a` under basic indexing."""
    out = a[key]
    if isinstance(out, np.generic):
        out = a[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
    return out


def _rebuild(host):
    return asarray(host)


def _binary(op):
    def fn(self, other):
        return call(op, (self, other), {}, name=op.__name__)
    return fn


def _reflected(op):
    def fn(self, other):
        return call(op, (other, self), {}, name=op.__name__)
    return fn


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and",
              "or", "xor", "lshift", "rshift"):
    _op = getattr(operator, _name + "_" if _name in ("and", "or") else _name)
    setattr(ndarray, f"__{_name}__", _binary(_op))
    setattr(ndarray, f"__r{_name}__", _reflected(_op))
    setattr(ndarray, f"__i{_name}__", _binary(getattr(operator, f"i{_name}")))
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _binary(getattr(operator, _name)))
ndarray.__divmod__ = _binary(divmod)
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__",
            (lambda op: lambda self: call(op, (self,), {}, name=op.__name__))(
                getattr(operator, _name)))


# -- dispatch --------------------------------------------------------------------------------
def wrap(a) -> ndarray:
    return ndarray(_a=a)


def _unwrap(obj, name: str, allow_host: bool = False):
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, np.ndarray):
        if allow_host:
            return obj
        raise TypeError(f"Unsupported type {type(obj)}: {name} got a NumPy (host) array "
                        "among device arrays")
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o, name, allow_host) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v, name, allow_host) for k, v in obj.items()}
    return obj


def _wrap_result(res, known: dict):
    if isinstance(res, np.ndarray):
        hit = known.get(id(res))
        return hit if hit is not None and hit._a is res else wrap(res)
    if isinstance(res, np.generic):
        return wrap(np.asarray(res))
    if isinstance(res, tuple):
        return tuple(_wrap_result(r, known) for r in res)
    if isinstance(res, list):
        return [_wrap_result(r, known) for r in res]
    return res


def _known(args, known: dict) -> dict:
    for a in args:
        if isinstance(a, ndarray):
            known[id(a._a)] = a
        elif isinstance(a, (list, tuple)):
            _known(a, known)
        elif isinstance(a, dict):
            _known(a.values(), known)
    return known


def _refill(out, new) -> None:
    """Replay: write a recomputed result into the buffers the capture handed out."""
    if isinstance(out, ndarray):
        new = np.asarray(new)
        if out._a is new or (out._a.size and np.may_share_memory(out._a, new)):
            return
        if out._a.shape == new.shape:
            np.copyto(out._a, new, casting="unsafe")
    elif isinstance(out, (tuple, list)) and isinstance(new, (tuple, list)):
        for o, n in zip(out, new):
            _refill(o, n)


_PRODUCTS = {np.matmul, operator.matmul, np.dot, np.tensordot, np.inner, np.einsum,
             np.ndarray.dot}


def _product_dtype(fn, ua, res):
    """CuPy's products of bfloat16 arrays are bfloat16 (NumPy's, through ml_dtypes, are
    float32)."""
    if fn not in _PRODUCTS or not isinstance(res, np.ndarray) or res.dtype.name == "bfloat16":
        return res
    dts = [a.dtype for a in ua if isinstance(a, np.ndarray)]
    if dts and all(d.name == "bfloat16" for d in dts):
        return res.astype(dts[0])
    return res


# -- cuBLAS compute types (cupy._core._routines_linalg) --------------------------------------
COMPUTE_TYPE_TBD, COMPUTE_TYPE_DEFAULT, COMPUTE_TYPE_PEDANTIC = 0, 1, 2
COMPUTE_TYPE_FP16, COMPUTE_TYPE_FP32, COMPUTE_TYPE_FP64 = 3, 4, 5
COMPUTE_TYPE_BF16, COMPUTE_TYPE_TF32 = 6, 7
_compute_types = [COMPUTE_TYPE_TBD] * 3  # by index: float16, float32/complex64, float64/128


def _compute_type_index(dtype) -> int:
    char = np.dtype(dtype).char
    for i, chars in enumerate(("e", "fF", "dD")):
        if char in chars:
            return i
    raise TypeError(f"dtype is not supported: {np.dtype(dtype)}")


def set_compute_type(dtype, compute_type: int) -> None:
    """The cuBLAS compute type of the products of `dtype` (float32 and complex64 share one,
    as do float64 and complex128)."""
    if compute_type not in range(8):
        raise ValueError(f"Unknown compute type: {compute_type}")
    _compute_types[_compute_type_index(dtype)] = compute_type


def get_compute_type(dtype) -> int:
    """The cuBLAS compute type of the products of `dtype`; the first query settles an unset
    one (TF32 for float32/complex64 when the environment sets CUPY_TF32 > 0, else DEFAULT)."""
    import os

    i = _compute_type_index(dtype)
    if _compute_types[i] == COMPUTE_TYPE_TBD:
        tf32 = np.dtype(dtype).char in "fF" and int(os.environ.get("CUPY_TF32", "0")) > 0
        _compute_types[i] = COMPUTE_TYPE_TF32 if tf32 else COMPUTE_TYPE_DEFAULT
    return _compute_types[i]


_routines_linalg = _types.ModuleType("cupy._core._routines_linalg",
                                     "cuBLAS compute types of CuPy's products.")
for _name in ("COMPUTE_TYPE_TBD", "COMPUTE_TYPE_DEFAULT", "COMPUTE_TYPE_PEDANTIC",
              "COMPUTE_TYPE_FP16", "COMPUTE_TYPE_FP32", "COMPUTE_TYPE_FP64",
              "COMPUTE_TYPE_BF16", "COMPUTE_TYPE_TF32", "set_compute_type",
              "get_compute_type"):
    setattr(_routines_linalg, _name, globals()[_name])


def _to_tf32(a: np.ndarray) -> np.ndarray:
    """float32 (or complex64) values rounded to TF32's 10 mantissa bits (nearest, ties to
    even), as tensor cores read a GEMM's inputs; inf and NaN pass unchanged."""
    parts = a.view(np.float32)
    bits = parts.view(np.uint32)
    rounded = ((bits + np.uint32(0xFFF) + ((bits >> np.uint32(13)) & np.uint32(1)))
               & np.uint32(0xFFFFE000)).view(np.float32)
    return np.where(np.isfinite(parts), rounded, parts).view(a.dtype).reshape(a.shape)


def _product_inputs(fn, ua: tuple) -> tuple:
    """The inputs of a product as cuBLAS reads them: TF32 for float32/complex64 arrays when
    that compute type is set."""
    if fn not in _PRODUCTS or get_compute_type(np.float32) != COMPUTE_TYPE_TF32:
        return ua
    return tuple(_to_tf32(np.ascontiguousarray(a))
                 if isinstance(a, np.ndarray) and a.dtype.char in "fF" else a for a in ua)


def call(fn, args, kwargs, name: str | None = None, allow_host: bool = False):
    """fn(*args, **kwargs) on the device arrays' NumPy buffers, results as device arrays
    (recorded while a capture is open)."""
    label = name or getattr(fn, "__name__", "a CuPy function")
    ua = _unwrap(tuple(args), label, allow_host)
    uk = _unwrap(kwargs, label, allow_host)
    with np.errstate(all="ignore"):  # a GPU computes inf and NaN without warnings
        pa = _product_inputs(fn, ua)
        res = _wrap_result(_product_dtype(fn, ua, fn(*pa, **uk)), _known((args, kwargs), {}))
    if capturing() is not None:
        def replay():
            with np.errstate(all="ignore"):
                ra = _unwrap(tuple(args), label, True)
                pa = _product_inputs(fn, ra)
                _refill(res, _product_dtype(fn, ra, fn(*pa, **_unwrap(kwargs, label, True))))
        _record(replay)
    return res


def setitem(arr: ndarray, key, value) -> None:
    """arr[key] = value; a NumPy value is copied from the host (as CuPy allows)."""
    if isinstance(value, np.ndarray):
        counters["host_to_device"] += 1
        value = value.copy()  # a capture freezes the uploaded values
    ukey = _unwrap(key, "__setitem__", allow_host=True)
    arr._a[ukey] = _unwrap(value, "__setitem__", allow_host=True)
    if capturing() is not None:
        _record(lambda: arr._a.__setitem__(_unwrap(key, "", True), _unwrap(value, "", True)))


# -- creation and transfers ------------------------------------------------------------------
def _from_host(obj, dtype=None, copy=True, order="K", ndmin=0):
    counters["host_to_device"] += 1
    host = np.array(obj, dtype=dtype, copy=True, order=order, ndmin=ndmin)
    out = wrap(host)
    if capturing() is not None:
        frozen = host.copy()
        _record(lambda: np.copyto(out._a, frozen))
    return out


def _has_device(obj) -> bool:
    if isinstance(obj, ndarray):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_device(o) for o in obj)
    return False


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, blocking=False):
    """A device array from a device array (a device copy) or host data (an upload)."""
    if isinstance(obj, ndarray):
        if not copy and (dtype is None or np.dtype(dtype) == obj.dtype) and not ndmin:
            return obj
        return call(lambda a: np.array(a, dtype=dtype, copy=True, order=order, ndmin=ndmin),
                    (obj,), {})
    if _has_device(obj):
        return call(lambda o: np.array(o, dtype=dtype, order=order, ndmin=ndmin), (obj,), {})
    return _from_host(obj, dtype, order=order, ndmin=ndmin)


def asarray(a, dtype=None, order=None, blocking=False):
    """`a` as a device array (no copy when it already is one of that dtype)."""
    if isinstance(a, ndarray):
        if dtype is None or np.dtype(dtype) == a.dtype:
            return a
        return call(lambda x: x.astype(dtype), (a,), {})
    return array(a, dtype=dtype, order=order or "K")


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """A host (NumPy) copy of `a` (a counted transfer); host data passes through."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


class _scalar:  # noqa: N801 - cupy._core._scalar
    """C type names of kernel argument dtypes."""

    @staticmethod
    def get_typename(dtype) -> str:
        dtype = np.dtype(dtype)
        if dtype.name == "bfloat16":
            return "__nv_bfloat16"
        return {"float16": "half", "float32": "float", "float64": "double", "int64": "long long",
                "int32": "int", "bool": "bool", "uint32": "unsigned int",
                "uint64": "unsigned long long"}.get(dtype.name, dtype.name)
