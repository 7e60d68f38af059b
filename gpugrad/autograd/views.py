"""View tracking: in-place ops on views reach their base's graph (PyTorch's CopySlices).

A view op (reshape/view, permute, getitem with a basic key, split, real/imag, ...) marks
its output with `make_view`: the output becomes a `ViewTensor` that knows its base (the
tensor owning the storage, never itself a view), the view function that re-derives it
from the base (views of views compose), and shares the base's version counter.

An in-place op on a view writes the base's storage; the base's history is then rebased:
its grad_fn becomes a `CopySlices` node whose backward passes the gradient outside the
view's region to the base's old history and the region (the view function applied to
the gradient) to the in-place op's result. Every view of the base sees the version bump
and regenerates its grad_fn lazily, as the view function of the base's new history, the
next time it is read. Tensors that are not views pay nothing: the bookkeeping lives in
the `ViewTensor` subclass.
"""

from __future__ import annotations

from ..tensor import Tensor, _wrap_array
from .anomaly import _state as _anomaly
from .anomaly import capture_creation
from .function import Function, Op, version_counter
from .grad_mode import _state, enable_grad

__all__ = ["make_view", "is_view_of", "ViewTensor", "CopySlices"]

_MULTI = 1  # output of an op returning several views (split, chunk, unbind)
_NO_GRAD = 2  # created with grad mode off from a base that requires grad

_MULTI_MSG = (
    "{op}: output {nr} of {name} is a view and is being modified inplace. This view is the "
    "output of a function that returns multiple views. Such functions do not allow the output "
    "views to be modified inplace. You should replace the inplace operation by an "
    "out-of-place one.")
_NO_GRAD_INPLACE_MSG = (
    "{op}: a view was created in no_grad mode and is being modified inplace with grad mode "
    "enabled. Given that this use case is ambiguous and error-prone, it is forbidden. You can "
    "clarify your code by moving both the view and the inplace either both inside the no_grad "
    "block (if you don't want the inplace to be tracked) or both outside (if you want the "
    "inplace to be tracked).")
_NO_GRAD_REBASE_MSG = (
    "A view was created in no_grad mode and its base or another view of its base has been "
    "modified inplace with grad mode enabled. Given that this use case is ambiguous and "
    "error-prone, it is forbidden. You can clarify your code by moving both the view and the "
    "inplace either both inside the no_grad block (if you don't want the inplace to be "
    "tracked) or both outside (if you want the inplace to be tracked).")


def is_view_of(out, src) -> bool:
    """Whether backend array `out` views `src`'s storage (NumPy and CuPy point a view's
    `base` at the array owning the memory; a reshape that had to copy has another base)."""
    b = out.base
    return b is not None and (b is src or b is src.base)


def make_view(out, src, view_fn, name: str, multi: bool = False):
    """Mark `out` (a fresh result of a view op on `src`) as a view: `view_fn(src)` must
    re-derive it (differentiably, as a view of its argument's storage). Returns `out`."""
    if type(src) is ViewTensor:
        base, first, _, flags = src._view

        def fn(b, first=first, then=view_fn):
            return then(first(b))
    else:
        base, fn, flags = src, view_fn, 0
    if multi:
        flags |= _MULTI
    if base._requires_grad and not _state.enabled:
        flags |= _NO_GRAD
    counter = base._version
    if counter is None:
        counter = version_counter(base)
    d = out.__dict__  # written directly: this runs on every view op
    if "grad_fn" in d:
        d["_vgrad_fn"] = d.pop("grad_fn")
    if "_requires_grad" in d:
        d["_vreq"] = d.pop("_requires_grad")
    out.__class__ = ViewTensor
    d["_version"] = counter
    d["_view"] = (base, fn, name, flags)
    d["_view_ver"] = counter.value
    return out


class ViewTensor(Tensor):
    """A Tensor that is a view of another's storage (see the module docstring)."""

    _vgrad_fn = None
    _vreq = False

    @property
    def grad_fn(self):
        if self._view_ver != self._version.value:
            self._regenerate()
        return self._vgrad_fn

    @grad_fn.setter
    def grad_fn(self, fn) -> None:
        self._vgrad_fn = fn

    @property
    def _requires_grad(self) -> bool:
        if self._view_ver != self._version.value:
            self._regenerate()
        return self._vreq

    @_requires_grad.setter
    def _requires_grad(self, flag: bool) -> None:
        self._vreq = flag

    @property
    def _base(self):
        """The tensor whose storage this view shares (PyTorch's `_base`)."""
        return self._view[0]

    def _regenerate(self) -> None:
        """The base (or another view of it) was modified in place: re-derive our history
        from the base's current one."""
        self._view_ver = self._version.value
        base, view_fn, _, flags = self._view
        if not base._requires_grad:
            if self._vgrad_fn is None:
                return
        elif flags & _NO_GRAD:
            raise RuntimeError(_NO_GRAD_REBASE_MSG)
        with enable_grad():
            fresh = view_fn(base)
        self._vgrad_fn = fresh.grad_fn
        self._output_nr = fresh._output_nr
        self._vreq = fresh._requires_grad

    def detach_(self):
        raise RuntimeError("Can't detach views in-place. Use detach() instead.")

    def _check_inplace(self, op: str) -> None:
        if Tensor._before_write is not None:
            Tensor._before_write(self)
        data = self._data
        if any(s == 0 and n > 1 for s, n in zip(data.strides, data.shape)):
            raise RuntimeError(
                f"{op}: unsupported operation: more than one element of the written-to tensor "
                f"(a {self._view[2]} view of shape {tuple(data.shape)}) refers to a single "
                "memory location. Please clone() the tensor before performing the operation.")
        if not getattr(data.flags, "writeable", True):
            raise RuntimeError(f"{op}: the {self._view[2]} view of shape {tuple(data.shape)} "
                               "is read-only; clone() it before writing in place")
        if not _state.enabled:
            return
        base, _, name, flags = self._view
        if base._requires_grad:
            if base.grad_fn is None:
                raise RuntimeError(
                    f"{op}: a view of a leaf Variable that requires grad is being used in an "
                    f"in-place operation (a {name} view of shape "
                    f"{tuple(data.shape)} of a leaf of shape {tuple(base.shape)}); clone the "
                    "leaf first or wrap the operation in gg.no_grad()")
            if flags & _NO_GRAD:
                raise RuntimeError(_NO_GRAD_INPLACE_MSG.format(op=op))
        if flags & _MULTI and (base._requires_grad or self._vreq):
            raise RuntimeError(_MULTI_MSG.format(op=op, nr=self._output_nr, name=name))

    def _assign_result(self, result, op: str):
        result = self._write_result(result, op)
        if _state.enabled:
            _rebase(self, result)
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self._data[...] = value
        self._bump_version()
        if _state.enabled:
            _rebase(self, None)
        return self


def _rebase(view: ViewTensor, result) -> None:
    """After `view`'s storage was overwritten by `result` (None: a constant), make the
    base's grad_fn a CopySlices node joining its old history and `result`'s."""
    base, view_fn = view._view[:2]
    res_fn = None if result is None else result.grad_fn
    if res_fn is None and not base._requires_grad:
        return
    node = _new(CopySlices)
    data = base._data
    node._backend = base._backend
    node._view_fn = view_fn
    # The region is zeroed in a buffer laid out as the base, where the view function
    # gives a view again (a reshape view of a Fortran-ordered base is not one of C order).
    node._proto = None if data.flags.c_contiguous else data
    edges, meta = [None, None], [None, None]
    if base._requires_grad:
        fn = base.grad_fn
        edges[0] = (fn, base._output_nr) if fn is not None else (base, -1)
        meta[0] = (data.shape, data.dtype)
    if res_fn is not None:
        edges[1] = (res_fn, result._output_nr)
        meta[1] = (result._data.shape, result._data.dtype)
    node._edges = edges
    node._input_meta = meta
    node._output_meta = ((data.shape, data.dtype),)
    if _anomaly.enabled:
        capture_creation(node)
    base.grad_fn = node
    base._output_nr = 0
    base._requires_grad = True


class CopySlices(Function):
    """base' = base with the view's region replaced by r (the in-place op's result);
    b̄ase = ḡ with the region zeroed,  r̄ = view_fn(ḡ)."""

    def name(self) -> str:
        return "CopySlices"

    @staticmethod
    def backward(ctx, g):
        gb = gr = None
        if ctx._edges[0] is not None:
            gb = ZeroRegion.apply(g, ctx._view_fn, ctx._proto)
        if ctx._edges[1] is not None:
            gr = ctx._view_fn(g)
        return gb, gr


class ZeroRegion(Op):
    """y = x with the region `view_fn` selects set to 0 (a projection);  x̄ = the same
    projection of ȳ."""

    @staticmethod
    def forward(ctx, x, view_fn, proto):
        ctx.view_fn, ctx.proto = view_fn, proto
        xp = ctx.xp
        out = xp.empty_like(proto, dtype=x.dtype) if proto is not None else \
            xp.empty(x.shape, dtype=x.dtype)
        out[...] = x
        region = view_fn(_wrap_array(out, ctx.backend))._data
        if region.base is not out:
            raise RuntimeError(f"in-place on a view: the view function does not give a view "
                               f"of a buffer of shape {tuple(out.shape)} (internal error)")
        region[...] = 0
        return out

    @staticmethod
    def backward(ctx, g):
        return ZeroRegion.apply(g, ctx.view_fn, ctx.proto), None, None


_new = object.__new__
