"""`Function`: the graph node every differentiable op (built-in or user-defined) becomes.

A call `SomeOp.apply(*args)` runs `forward`, and when grad mode is on and an input
requires grad, the instance (`ctx`) stays in the graph as the node whose `backward`
maps output cotangents to input cotangents (a vector-Jacobian product).

`Function` is the public, PyTorch-style API: `forward` receives and returns Tensors.
`Op` is the built-in variant: `forward` receives raw backend arrays (or Python scalars)
and returns arrays, which keeps the per-op bookkeeping to a minimum. Both write
`backward` with Tensor operations, so `create_graph=True` differentiates it again.
"""

from __future__ import annotations

from .._dtype import is_inexact
from ..backend import trace as _trace
from ..errors import DeviceError
from .grad_mode import _state, no_grad

_FREED_MSG = (
    "Trying to backward through the graph a second time (or to access saved tensors after "
    "they have been freed). Saved values are freed when you call .backward() or "
    "autograd.grad(); pass retain_graph=True to the first call if you need to backward "
    "through the graph a second time."
)


class Version:
    """In-place modification counter shared by a tensor and its views."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


def version_of(t) -> int:
    v = t._version
    return 0 if v is None else v.value


def version_counter(t) -> Version:
    """The tensor's counter object, created on first need (most tensors never need one)."""
    v = t._version
    if v is None:
        v = t._version = Version()
    return v


class Function:
    """Base class of graph nodes and of user-defined differentiable operations.

    Subclass it with static `forward(ctx, *args)` and `backward(ctx, *grad_outputs)`
    and call `MyFunction.apply(*args)`. `backward` returns one gradient (or None) per
    argument of `forward`.
    """

    _raw = False  # Op sets True: forward works on arrays
    _edges: tuple = ()
    _input_meta: tuple = ()
    _output_meta: tuple = ()
    _saved = None
    _freed = False
    _hooks = None
    _non_diff = None
    materialize_grads = True
    # True where backward may return a gradient in the broadcast (output) shape of an
    # input: the engine then sums it down to the input's shape (Tensor.sum_to_size)
    broadcast_grads = False
    # A family tag (e.g. "pointwise") where connected nodes of one family may run their
    # backward as one fused region without a graph: the class then implements
    # `fused_backward(region, grads)` (see autograd/engine.py, `_fusion_region`)
    fusable = None

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must define a static forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(f"{type(ctx).__name__} does not define backward")

    # -- ctx API -------------------------------------------------------------------
    @property
    def needs_input_grad(self) -> tuple:
        """Per forward argument: does it need a gradient? (Read in backward.)"""
        return tuple([e is not None for e in self._edges])

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors (inputs or outputs of forward) for `backward`; read them back with
        `ctx.saved_tensors`, which checks that none was modified in place since."""
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple:
        """The tensors given to `save_for_backward`, checked against in-place writes."""
        return self._unpack_saved()

    def input_shape(self, i: int) -> tuple:
        """The shape of forward argument `i` (recorded for inputs that need a gradient)."""
        return self._input_meta[i][0]

    def mark_non_differentiable(self, *tensors) -> None:
        """Declare outputs that never require grad (indices, masks)."""
        self._non_diff = {id(t) for t in tensors}

    def set_materialize_grads(self, value: bool) -> None:
        """With False, `backward` receives None (not zeros) for outputs without a gradient."""
        self.materialize_grads = bool(value)

    def name(self) -> str:
        """The node's name as shown in errors and `grad_fn` reprs, e.g. "MulBackward"."""
        return type(self).__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    @property
    def next_functions(self) -> tuple:
        """((node_or_leaf, output_nr) | None, ...) per forward argument."""
        return self._edges

    # -- graph construction ------------------------------------------------------------
    @classmethod
    def apply(cls, *args, **kwargs):
        """Run forward and, when grad is enabled and an input requires it, record the node."""
        hook = _fuse_hook  # read once: another thread may close the last region meanwhile
        if hook is not None:  # a gg.fuse region is open: it may defer the op
            out = hook(cls, args, kwargs)
            if out is not NotImplemented:
                return out  # a profile records the program that computes it, not this call
        rec = _trace.active
        if rec is not None and rec.wants_op():  # a profile is running: record this op
            return rec.op(_apply, cls, args, kwargs)
        ctx = _new(cls)
        raw = cls._raw
        backend, need, arrays = _operands(cls, args)
        need = need and _state.enabled
        ctx._backend = backend
        if raw:
            try:
                out = cls.forward(ctx, *arrays, **kwargs)
            except (TypeError, RuntimeError):
                # A 0-d Tensor where PyTorch takes a Scalar (alpha=...) fails on the arrays;
                # read it as a number and run again. Checking kwargs up front would cost
                # every add/sub call; a try block costs nothing until it raises.
                if not any(isinstance(v, Tensor) for v in kwargs.values()):
                    raise
                out = cls.forward(ctx, *arrays, **_scalar_kwargs(cls, kwargs))
            multi = type(out) is tuple
            backend = ctx._backend  # forward may move the result (ToDevice)
            if multi:
                results = tuple(_wrap_array(o, backend) for o in out)
            else:
                results = (_wrap_array(out, backend),)
        else:
            with no_grad():
                out = cls.forward(ctx, *args, **kwargs)
            multi = type(out) is tuple
            outs = out if multi else (out,)
            results = tuple(_alias_output(o) for o in outs)
            if need:
                _remap_saved(ctx, outs, results)
        if need:
            _record(ctx, args, results)
        return results if multi else results[0]

    # -- used by the engine ------------------------------------------------------------
    def _unpack_saved(self) -> tuple:
        if self._freed:
            raise RuntimeError(_FREED_MSG)
        saved = self._saved
        if saved is None:
            to_save = self.__dict__.get("_to_save")
            return tuple(to_save) if to_save is not None else ()
        return tuple(None if e is None else self._unpack_entry(e) for e in saved)

    def _unpack_entry(self, entry):
        kind, obj, ver = entry
        if kind == 0:  # an input tensor
            if version_of(obj) != ver:
                raise RuntimeError(_modified_message(self, obj.shape, version_of(obj), ver))
            return obj
        # One of our outputs, rebuilt on demand so that the node does not keep itself alive.
        array, counter, nr = obj
        if counter.value != ver:
            raise RuntimeError(_modified_message(self, array.shape, counter.value, ver))
        t = _wrap_array(array, self._backend)
        t._version = counter
        t._requires_grad = True
        t.grad_fn = self
        t._output_nr = nr
        return t

    def _release(self) -> None:
        """Free saved values after backward (unless retain_graph)."""
        if self._saved is not None:
            self._saved = None
            self._freed = True
        elif not self._raw and "_to_save" in self.__dict__:
            del self.__dict__["_to_save"]
            self._freed = True


class Op(Function):
    """A built-in op: `forward(ctx, *arrays)` computes on backend arrays.

    In `forward`, `ctx.save_inputs(i, ...)` and `ctx.save_output()` mark what `backward`
    may need; in `backward`, `ctx.saved_input(i)` and `ctx.saved_output` return them as
    Tensors. Only what backward actually reads is checked against in-place writes, so
    an op should read only the inputs its needed gradients use. `ctx.xp` is the array
    module of the inputs' device.
    """

    _raw = True
    _save_in = ()
    _save_out = ()

    @classmethod
    def apply(cls, *args, **kwargs):
        """`Function.apply` for arrays: the common call (no keywords, no profile or fusion
        region open, one result) without the general path's branches, as most of a small
        op's time is this bookkeeping."""
        if kwargs or _trace.active is not None or _fuse_hook is not None:
            return _apply(cls, *args, **kwargs)
        backend, need, arrays = _operands(cls, args)
        ctx = _new(cls)
        ctx._backend = backend
        out = cls.forward(ctx, *arrays)
        backend = ctx._backend  # forward may move the result (ToDevice)
        if type(out) is tuple:
            results = tuple(_wrap_array(o, backend) for o in out)
            if need and _state.enabled:
                _record(ctx, args, results)
            return results
        if type(out) is not backend.array_type:
            out = backend.xp.asarray(out)
        r = _new(Tensor)
        r._data = out
        r._backend = backend
        if need and _state.enabled:
            _record_one(ctx, args, r)
        return r

    @property
    def xp(self):
        return self._backend.xp

    @property
    def backend(self):
        return self._backend

    def save_inputs(self, *indices: int) -> None:
        self._save_in = indices

    def save_output(self, index: int = 0) -> None:
        self._save_out = (index,)

    def saved_input(self, i: int):
        """Forward argument `i` as a Tensor (None for a non-tensor argument)."""
        if self._freed:
            raise RuntimeError(_FREED_MSG)
        entry = self._saved[i]
        return None if entry is None else self._unpack_entry(entry)

    def save_outputs(self, *indices: int) -> None:
        """Mark several outputs for backward (a decomposition's factors); read them back,
        connected to this node, with `ctx.saved_outputs`."""
        self._save_out = indices

    @property
    def saved_outputs(self) -> tuple:
        """The outputs marked by `save_outputs`, as Tensors connected to this node (so a
        VJP written with them is differentiable again)."""
        if self._freed:
            raise RuntimeError(_FREED_MSG)
        n = len(self._save_out)
        return tuple(self._unpack_entry(e) for e in self._saved[-n:])

    def saved_output_array(self):
        """The saved output's raw array (checked against in-place writes), for a fused
        backward that records no graph."""
        if self._freed:
            raise RuntimeError(_FREED_MSG)
        _, (array, counter, _), ver = self._saved[-1]
        if counter.value != ver:
            raise RuntimeError(_modified_message(self, array.shape, counter.value, ver))
        return array

    @property
    def saved_output(self):
        """The (first saved) output of forward, as a Tensor connected to this node."""
        if self._freed:
            raise RuntimeError(_FREED_MSG)
        return self._unpack_entry(self._saved[-1])


def _operands(cls, args) -> tuple:
    """(the tensors' backend, whether one requires grad, the arguments with each tensor
    replaced by its array); raises DeviceError for tensors on different devices."""
    backend = None
    need = False
    arrays = []
    for a in args:
        if isinstance(a, Tensor):
            if backend is None:
                backend = a._backend
            elif a._backend is not backend:
                raise DeviceError(_device_message(cls, args))
            if a._requires_grad:
                need = True
            arrays.append(a._data)
        else:
            arrays.append(a)
    return backend, need, arrays


def _scalar_kwargs(cls, kwargs: dict) -> dict:
    """A built-in op's keyword scalars (alpha=...) as Python numbers: a one-element Tensor
    is accepted wherever PyTorch takes a Scalar and read as one (a device sync on the GPU,
    as in PyTorch; no gradient flows through a Scalar)."""
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, Tensor):
            if v._data.size != 1:
                raise TypeError(f"{cls.__name__.lower()}: {k} must be a number or a "
                                f"one-element tensor, got a tensor of shape {tuple(v.shape)}")
            v = v.item()
        out[k] = v
    return out


def _record(ctx, args, results) -> None:
    """Attach the node to the graph: edges to the inputs, outputs' grad_fn, saved values."""
    if len(results) == 1 and ctx._non_diff is None:
        _record_one(ctx, args, results[0])
        return
    saved, _ = _link_inputs(ctx, args)
    non_diff = ctx._non_diff
    out_meta = []
    for i, r in enumerate(results):
        data = r._data
        out_meta.append((data.shape, data.dtype))
        if is_inexact(data.dtype) and (non_diff is None or id(r) not in non_diff):
            r._requires_grad = True
            r.grad_fn = ctx
            if i:
                r._output_nr = i
    ctx._output_meta = out_meta
    if saved is not None:
        for i in ctx._save_out:
            _save_output(saved, results[i], i)
        ctx._saved = saved


def _record_one(ctx, args, r) -> None:
    """`_record` for a node of one result (the common call of a built-in op). Its output
    metadata is that of an input's producer where it has the same shape and dtype (a
    pointwise chain allocates none)."""
    saved, like = _link_inputs(ctx, args)
    data = r._data
    dt = data.dtype
    if like is not None and like[0][1] is dt and like[0][0] == data.shape:
        ctx._output_meta = like
    else:
        ctx._output_meta = ((data.shape, dt),)
    if dt.kind in "fc" or is_inexact(dt):
        r._requires_grad = True
        r.grad_fn = ctx
    if saved is not None:
        for i in ctx._save_out:
            _save_output(saved, r, i)
        ctx._saved = saved


def _link_inputs(ctx, args) -> tuple:
    """Set the node's edges to its inputs and their metadata (that of the input's
    producer, shared: every object a node holds is one more for the cycle collector to
    scan while the graph lives, which costs more than making it). Returns (the node's
    saved-value list with the saved inputs filled in, or None when an op saves nothing;
    the output metadata of an input's producer, or None)."""
    # an Op's saved values: one entry per forward argument (None unless saved), then the
    # saved outputs
    save_in = ctx._save_in if ctx._raw else ()
    saved = [None] * len(args) if save_in or ctx._raw and ctx._save_out else None
    edges = []
    meta = []
    like = None
    i = 0
    for a in args:
        if isinstance(a, Tensor):
            if a._requires_grad:
                fn = a.grad_fn
                if fn is None:
                    edges.append((a, -1))
                    data = a._data
                    meta.append((data.shape, data.dtype))
                else:
                    nr = a._output_nr
                    edges.append((fn, nr))
                    m = fn._output_meta
                    meta.append(m[nr])
                    if like is None and nr == 0 and len(m) == 1:
                        like = m
            else:
                edges.append(None)
                meta.append(None)
            if saved is not None and i in save_in:
                v = a._version
                saved[i] = (0, a, 0 if v is None else v.value)
        else:
            edges.append(None)
            meta.append(None)
        i += 1
    if _anomaly.enabled:
        capture_creation(ctx)
    ctx._edges = edges
    ctx._input_meta = meta
    return saved, like


def _save_output(saved: list, r, i: int) -> None:
    """Save output `i` (Tensor r) without a reference cycle through its grad_fn."""
    counter = version_counter(r)
    saved.append((1, (r._data, counter, i), counter.value))


def _remap_saved(ctx, raw_outs, results) -> None:
    """User Functions: store saved outputs without a reference cycle through grad_fn."""
    to_save = ctx.__dict__.pop("_to_save", None)
    if to_save is None:
        return
    out_index = {id(o): i for i, o in enumerate(raw_outs)}
    saved = []
    for t in to_save:
        if t is None:
            saved.append(None)
        elif id(t) in out_index:
            i = out_index[id(t)]
            _save_output(saved, results[i], i)
        else:
            saved.append((0, t, version_of(t)))
    ctx._saved = tuple(saved)


def _alias_output(o):
    if not isinstance(o, Tensor):
        raise TypeError(f"Function.forward must return Tensors, got {type(o).__name__}")
    t = _wrap_array(o._data, o._backend)
    t._version = version_counter(o)
    return t


def _modified_message(node, shape, now: int, expected: int) -> str:
    return (
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: the tensor of shape {tuple(shape)} saved by {node.name()} is at "
        f"version {now}; expected version {expected} instead. Compute on a .clone() or avoid "
        "the in-place write."
    )


def _device_message(cls, args) -> str:
    devices = [str(a.device) for a in args if isinstance(a, Tensor)]
    seen = list(dict.fromkeys(devices))
    return (f"{cls.__name__.lower()}: expected all tensors on the same device, but found "
            f"tensors on {seen[0]} and {seen[1]}")


_new = object.__new__
# gpugrad.fuse's hook(cls, args, kwargs) while any fusion region is open, else None: it
# returns the op's (deferred) result, or NotImplemented to run the op here as usual.
_fuse_hook = None
_apply = Function.apply.__func__  # the undecorated apply, which a profile calls back

# Late imports: tensor.py imports this module.
from ..tensor import Tensor, _wrap_array  # noqa: E402
from .anomaly import _state as _anomaly  # noqa: E402
from .anomaly import capture_creation  # noqa: E402
