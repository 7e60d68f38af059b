"""The Tensor: a backend array plus what autograd needs (grad, grad_fn, version)."""

from __future__ import annotations

import operator
import warnings

import numpy as np

from . import _dtype
from ._dtype import DType, from_numpy_dtype, to_dtype
from ._memory_format import check_memory_format, is_contiguous_as
from .backend import cpu_backend, get_backend
from .device import device as Device
from .errors import DeviceError

__all__ = ["Tensor"]


def _wrap_array(array, backend) -> Tensor:
    """A new Tensor around `array` (a backend array or a NumPy scalar from a 0-d op)."""
    if type(array) is not backend.array_type:
        array = backend.xp.asarray(array)
    t = _new(Tensor)
    t._data = array
    t._backend = backend
    return t


_new = object.__new__


class Tensor:
    """An n-dimensional array on a device that can record operations for backward.

    Create tensors with `gg.tensor`, `gg.zeros`, `gg.randn` and friends. Operations on
    tensors that require grad build a graph; `backward()` walks it in reverse.
    """

    __array_priority__ = 1000
    __array_ufunc__ = None  # make NumPy defer to our reflected operators

    # Class-level defaults keep construction cheap: only _data and _backend are set per
    # tensor; the rest lives in the instance __dict__ once it differs from the default.
    _requires_grad = False
    _grad = None
    grad_fn = None
    _output_nr = 0
    _version = None
    _hooks = None
    _retains_grad = False
    _base = None  # a view's base (see autograd/views.py)
    _before_write = None  # fn(tensor) run before an in-place write; set by gg.fuse (fuse.py)

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False) -> None:
        from .creation import _to_array

        self._data, self._backend = _to_array(data, dtype, device)
        if requires_grad:
            self.requires_grad_(True)

    # -- attributes ------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> DType:
        return from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> Device:
        return self._backend.device

    @property
    def is_cuda(self) -> bool:
        return self._backend.device.type == "cuda"

    @property
    def array(self):
        """The raw backend array (numpy.ndarray or cupy.ndarray), not a copy."""
        return self._data

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    @property
    def grad(self) -> Tensor | None:
        """The gradient accumulated by backward (None until then)."""
        return self._grad

    @grad.setter
    def grad(self, g: Tensor | None) -> None:
        if g is not None:
            _check_grad_assignment(self, g)
            g = g._computed()  # backward accumulates into its array
        self._grad = g

    def _is_view(self) -> bool:
        """Whether this tensor is a view of another's storage (its `_base`)."""
        return self._base is not None

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def data(self) -> Tensor:
        """A detached tensor sharing storage; writes through it are not tracked."""
        return _wrap_array(self._data, self._backend)

    @data.setter
    def data(self, other: Tensor) -> None:
        if not isinstance(other, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(other).__name__}")
        if Tensor._before_write is not None:
            Tensor._before_write(self)
        other = other._computed()
        self._data, self._backend = other._data, other._backend

    def _computed(self) -> Tensor:
        """This tensor, its values computed (a deferred value of gg.fuse computes itself)."""
        return self

    def size(self, dim: int | None = None):
        """The shape, or the length of dimension `dim`."""
        if dim is None:
            return self._data.shape
        return self._data.shape[_norm_dim(dim, self._data.ndim, "size")]

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def itemsize(self) -> int:
        """Bytes per element (the same as `element_size()`)."""
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of the elements (numel · itemsize), as PyTorch's `Tensor.nbytes`."""
        return int(self._data.nbytes)

    @property
    def is_sparse(self) -> bool:
        """Always False: gpugrad tensors are dense (strided)."""
        return False

    def is_contiguous(self, memory_format=None) -> bool:
        """Whether the elements lie in memory in the order of `memory_format`
        (row-major for `gg.contiguous_format`, NHWC for `gg.channels_last`)."""
        return is_contiguous_as(self._data, memory_format)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    # -- autograd --------------------------------------------------------------------
    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set whether autograd records operations on this leaf tensor (in place)."""
        if flag and not self.dtype.can_require_grad:
            raise TypeError(f"only floating point and complex tensors can require gradients, "
                            f"got dtype {self.dtype}")
        if not flag and self.grad_fn is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf variables; "
                               "use .detach() to get a tensor without a graph")
        hook = Tensor._before_write
        if hook is not None and self._requires_grad != bool(flag):
            hook(self)  # gg.fuse: ops deferred before the change read it as it was
        self._requires_grad = bool(flag)
        return self

    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Backpropagate from this tensor, accumulating into the `.grad` of the leaves."""
        from .autograd import backward

        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                 inputs=inputs)

    def detach(self) -> Tensor:
        """A tensor sharing storage (and in-place version counter) with no graph."""
        from .autograd.function import version_counter

        t = _wrap_array(self._data, self._backend)
        t._version = version_counter(self)
        return t

    def detach_(self) -> Tensor:
        """Detach this tensor from the graph in place, making it a leaf."""
        self.grad_fn = None
        self._requires_grad = False
        return self

    def retain_grad(self) -> None:
        """Keep `.grad` for this non-leaf tensor after backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on a tensor that has requires_grad=False")
        if self.grad_fn is None or self._retains_grad:
            return
        import weakref

        ref = weakref.ref(self)

        def _retain(grad):
            t = ref()
            if t is not None:
                g = grad.detach() if not _state.enabled else grad
                t.grad = g if t.grad is None else t.grad + g
            return None

        self._retains_grad = True
        self._add_node_hook(_retain)

    def register_hook(self, fn):
        """Call `fn(grad)` when this tensor's gradient is computed; a returned Tensor
        replaces the gradient. Returns a handle with `.remove()`."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require grad")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            hooks = self._add_node_hook(fn, add=False)
        hooks.append(fn)
        return _HookHandle(hooks, fn)

    def _add_node_hook(self, fn, add: bool = True) -> list:
        node = self.grad_fn
        if node._hooks is None:
            node._hooks = {}
        hooks = node._hooks.setdefault(self._output_nr, [])
        if add:
            hooks.append(fn)
        return hooks

    # -- conversion --------------------------------------------------------------------
    def item(self):
        """The single value as a Python number (a device-to-host copy on the GPU)."""
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted "
                               "to a Python scalar")
        return self._backend.to_host(self._data).reshape(()).item()

    def numpy(self) -> np.ndarray:
        """A NumPy array with this tensor's values (shares memory on the CPU)."""
        if self._requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        return self._backend.to_host(self._data)

    def tolist(self):
        """Nested Python lists (a Python number for a 0-d tensor)."""
        return self._backend.to_host(self._data).tolist()

    def __array__(self, dtype=None, copy=None):
        if self._requires_grad:
            raise RuntimeError("Can't convert a Tensor that requires grad to a NumPy array. "
                               "Use tensor.detach().numpy() instead.")
        a = self._backend.to_host(self._data)
        return a if dtype is None else a.astype(dtype)

    def __dlpack__(self, *args, **kwargs):
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def to(self, *args, **kwargs) -> Tensor:
        """Move to a device and/or cast to a dtype: `t.to("cuda")`, `t.to(gg.float64)`,
        `t.to("cpu", gg.float64)`, `t.to(other_tensor)`. Differentiable."""
        dev = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        check_memory_format(self, kwargs.pop("memory_format", None), "to")
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dev, dtype = a.device, a.dtype
            elif isinstance(a, (str, Device)):
                dev = a
            elif isinstance(a, int) and not isinstance(a, bool):
                dev = Device(a)  # t.to(0) is t.to("cuda:0"), as in PyTorch
            elif a is not None:
                dtype = a
        out = self
        if dev is not None:
            backend = get_backend(dev)
            if backend is not self._backend:
                from .ops.elementwise import ToDevice

                out = ToDevice.apply(out, backend)
        if dtype is not None:
            dtype = to_dtype(dtype)
            if dtype.np is None or dtype.np != out._data.dtype:
                from .ops.elementwise import cast

                out = cast(out, dtype)
        if copy and out is self:
            from .ops.shape import clone

            out = clone(out)
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device: int | str | None = None) -> Tensor:
        if isinstance(device, int):
            device = f"cuda:{device}"
        return self.to(device or "cuda")

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def float(self) -> Tensor:
        return self.to(_dtype.float32)

    def double(self) -> Tensor:
        return self.to(_dtype.float64)

    def half(self) -> Tensor:
        return self.to(_dtype.float16)

    def long(self) -> Tensor:
        return self.to(_dtype.int64)

    def int(self) -> Tensor:
        return self.to(_dtype.int32)

    def bool(self) -> Tensor:
        return self.to(_dtype.bool_)

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def is_complex(self) -> bool:
        return self.dtype.is_complex

    def __float__(self) -> float:
        return float(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self._data.size} elements is "
                               "ambiguous")
        return bool(self.item())

    def __hash__(self) -> int:
        return id(self)

    def __format__(self, spec: str) -> str:
        """`f"{loss:.4f}"`: a 0-d tensor formats as its value, as in PyTorch; other tensors
        take only the empty spec (their str)."""
        if self._data.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __repr__(self) -> str:
        body = np.array2string(self._backend.to_host(self._data), separator=", ",
                               precision=4, threshold=200, prefix="tensor(")
        extras = []
        if self._backend is not cpu_backend:
            extras.append(f"device='{self.device}'")
        if self._data.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # -- in-place helpers (shared by every in-place method) ---------------------------------
    def _bump_version(self) -> None:
        from .autograd.function import version_counter

        version_counter(self).value += 1

    def _check_inplace(self, op: str) -> None:
        if Tensor._before_write is not None:
            Tensor._before_write(self)
        if self._requires_grad and self.grad_fn is None and _state.enabled:
            raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an "
                               "in-place operation; wrap it in gg.no_grad() or use an "
                               "out-of-place op")

    def _assign_result(self, result: Tensor, op: str) -> Tensor:
        """Finish an in-place op: write `result` into our storage and take over its graph
        (a view overrides this to rebase its base's graph instead)."""
        result = self._write_result(result, op)
        if result.grad_fn is not None:
            self.grad_fn = result.grad_fn
            self._output_nr = result._output_nr
            self._requires_grad = True
        return self

    def _write_result(self, result: Tensor, op: str) -> Tensor:
        """Write `result` (checked, cast to our dtype) into our storage; returns it as cast."""
        if result._data.shape != self._data.shape:
            raise RuntimeError(f"{op}: output with shape {tuple(self._data.shape)} doesn't match "
                               f"the broadcast shape {tuple(result._data.shape)}")
        if result._data.dtype != self._data.dtype:
            if not np.can_cast(result._data.dtype, self._data.dtype, casting="same_kind"):
                raise TypeError(f"{op}: result type {from_numpy_dtype(result._data.dtype)} "
                                f"can't be cast to the desired output type {self.dtype}")
            from .ops.elementwise import cast

            result = cast(result, self.dtype)
        self._backend.xp.copyto(self._data, result._data)
        self._bump_version()
        return result

    def zero_(self) -> Tensor:
        """Fill with zeros in place."""
        return self.fill_(0)

    def fill_(self, value) -> Tensor:
        """Fill with `value` in place."""
        self._check_inplace("fill_")
        self._data[...] = value
        self._bump_version()
        if self.grad_fn is not None and _state.enabled:
            self.detach_()  # the value no longer depends on the graph
        return self

    def copy_(self, src, non_blocking: bool = False) -> Tensor:
        """Copy `src` (broadcast to our shape, cast to our dtype) into this tensor
        (`non_blocking` is accepted: copies are ordered on the device's stream anyway)."""
        from .ops.elementwise import copy_from

        self._check_inplace("copy_")
        return self._assign_result(copy_from(self, src), "copy_")

    def _inplace_binary(self, fn, other, op: str, saves_self: bool = True) -> Tensor:
        """`self = fn(self, other)` in place. With a graph to record, `fn` sees `self`'s value
        before the write as a copy when it may save it for backward (`saves_self`), as
        PyTorch saves `original_self`: the write would otherwise change the saved value."""
        self._check_inplace(op)
        if isinstance(other, Tensor) and other.dtype != self.dtype and \
                other.dtype.category >= self.dtype.category and other._data.ndim > 0:
            raise TypeError(f"{op}: in-place ops need equal dtypes, got {self.dtype} "
                            f"(self) and {other.dtype} (other)")
        if not self._requires_grad and not (isinstance(other, Tensor) and other._requires_grad
                                            and _state.enabled):
            result = fn(self, other)
            return self._assign_result(result, op)
        return self._assign_result(fn(_graph_alias(self, saves_self), other), op)

    def add_(self, other, *args, alpha=1) -> Tensor:
        """self += alpha · other (also PyTorch's deprecated `add_(alpha, other)`)."""
        from .ops.elementwise import add

        other, alpha = deprecated_scalar_first("add_", other, args, alpha)
        return self._inplace_binary(lambda a, b: add(a, b, alpha=alpha), other, "add_",
                                    saves_self=False)

    def sub_(self, other, *args, alpha=1) -> Tensor:
        """self −= alpha · other (also PyTorch's deprecated `sub_(alpha, other)`)."""
        from .ops.elementwise import sub

        other, alpha = deprecated_scalar_first("sub_", other, args, alpha)
        return self._inplace_binary(lambda a, b: sub(a, b, alpha=alpha), other, "sub_",
                                    saves_self=False)

    def mul_(self, other) -> Tensor:
        from .ops.elementwise import mul

        return self._inplace_binary(mul, other, "mul_")

    def div_(self, other, *, rounding_mode=None) -> Tensor:
        from .ops.elementwise import div

        return self._inplace_binary(lambda a, b: div(a, b, rounding_mode=rounding_mode),
                                    other, "div_")

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def __setitem__(self, index, value) -> None:
        from .ops.index import index_put

        self._check_inplace("__setitem__")
        src = self if self.grad_fn is None else _graph_alias(self, False)
        self._assign_result(index_put(src, index, value), "__setitem__")


def deprecated_scalar_first(op: str, other, args: tuple, alpha):
    """(other, alpha) of `op(other, *args, alpha=alpha)`, accepting PyTorch's deprecated
    scalar-first overload `op(alpha, other)` (old optimizers write `p.add_(-lr, d_p)`)."""
    if not args:
        return other, alpha
    if len(args) > 1 or isinstance(other, Tensor) or not isinstance(args[0], Tensor):
        raise TypeError(f"{op}() takes 1 positional argument (other) and alpha= (or the "
                        f"deprecated {op}(Number alpha, Tensor other)), got "
                        f"{1 + len(args)} positional arguments")
    warnings.warn(f"This overload of {op} is deprecated: {op}(Number alpha, Tensor other); "
                  f"use {op}(Tensor other, *, Number alpha) instead", UserWarning,
                  stacklevel=3)
    return args[0], other


def _graph_alias(t: Tensor, copy: bool = False) -> Tensor:
    """A second Tensor object standing for `t`'s current value and graph position, so an
    in-place op can record a node whose input is the old `t`; with `copy`, the value is a
    copy with its own version counter (it survives the in-place write)."""
    a = _wrap_array(t._data.copy(), t._backend) if copy else t.detach()
    fn = t.grad_fn
    if fn is not None:
        a._requires_grad = True
        a.grad_fn = fn
        a._output_nr = t._output_nr
    return a


class _HookHandle:
    __slots__ = ("_hooks", "_fn")

    def __init__(self, hooks: list, fn) -> None:
        self._hooks, self._fn = hooks, fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


def _check_grad_assignment(t: Tensor, g) -> None:
    """`t.grad = g` needs a Tensor of t's shape, dtype and device (PyTorch's rule)."""
    if not isinstance(g, Tensor):
        raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                        f"{type(g).__name__}")
    if g is t:
        raise RuntimeError("can't assign Variable as its own grad")
    if g._data.shape != t._data.shape:
        raise RuntimeError(f"attempting to assign a gradient of size {list(g.shape)} to a "
                           f"tensor of size {list(t.shape)}. Please ensure that the gradient "
                           "and the tensor are the same size")
    if g._data.dtype != t._data.dtype:
        raise RuntimeError(f"attempting to assign a gradient with dtype {g.dtype} to a tensor "
                           f"with dtype {t.dtype}. Please ensure that the gradient and the "
                           "tensor have the same dtype")
    if g._backend is not t._backend:
        raise RuntimeError(f"attempting to assign a gradient on device {g.device} to a tensor "
                           f"on device {t.device}. Please ensure that the gradient and the "
                           "tensor are on the same device")


def _size_tuple(size, op: str) -> tuple:
    """A shape given as ints (or as one tuple/list of them) as a tuple of ints. Anything
    int-like (NumPy integers, 1-element integer tensors) passes; a float raises TypeError,
    as in PyTorch, rather than being truncated."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    out = []
    for i, s in enumerate(size):
        try:
            out.append(operator.index(s))
        except TypeError:
            raise TypeError(f"{op}(): size must be a tuple of ints, but got "
                            f"{type(s).__name__} {s!r} at position {i}") from None
    return tuple(out)


def _norm_dim(dim: int, ndim: int, op: str) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension {dim} out of range for a {ndim}-d tensor "
                         f"(expected to be in range of [{-n}, {n - 1}])")
    return dim % n


def _check_same_device(op: str, *tensors) -> None:
    b = tensors[0]._backend
    for t in tensors[1:]:
        if t._backend is not b:
            raise DeviceError(f"{op}: expected all tensors on the same device, but found "
                              f"tensors on {tensors[0].device} and {t.device}")


# Imported last: the autograd package imports this module.
from .autograd.grad_mode import _state  # noqa: E402
