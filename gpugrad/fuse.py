"""`gg.fuse`: chains of elementwise ops run as one program (one generated CUDA kernel, one
blocked CPU pass) forward and backward.

    @gg.fuse                      # or @gg.fuse(), as cupy.fuse / jax.jit decorate
    def act(x):
        return gg.tanh(gg.sigmoid(x) * x + F.silu(x))

    with gg.fuse():               # a region: the same deferral for the code inside
        y = gg.tanh(x) * 2 + b

How it works: while a region is open (a decorated call is one), a pointwise op of the
table (gpugrad/ops/table.py) is not run: it returns a *deferred* tensor (its shape, dtype,
device and requires_grad are known; its array is not computed). A deferred tensor is
computed when something other than a pointwise op needs it: a non-pointwise op (matmul,
indexing, a reduction that is not an epilogue, a cast, an in-place op), a read of its
values (`.item()`, `bool()`, printing, `.numpy()`), or the end of the region (the
decorated function's results first, then every deferred tensor still alive). Then the
chain of deferred ops behind it becomes one dynamic `Row` (ops/pointwise.py) over the
chain's inputs: its forward expression is the rows' expressions composed by substitution
(common subexpressions merged by the hash-consed DAG), its VJP is the rows' VJPs (each
row's hand-written rule where it has one, relu's subgradient, clamp's interval, ...)
composed in reverse, so the fused gradient equals the unfused one, and reads the output
y where the chain reappears in it; double backward differentiates that VJP, as for any
row. So the forward is one backend.pointwise program and the backward another.

A sum, mean, amax or amin whose input is deferred fuses as a reduction epilogue
(`Backend.pointwise_reduce`: the CPU reduces each cache block as it computes it, CUDA runs
one generated reduction kernel), so the elementwise result is not materialised. A
non-pointwise op is a boundary: Linear's matmul runs on BLAS/cuBLAS and the bias add and
activation after it become one program (the GEMM's epilogue).

Softmax, log-softmax and layer norm (the row ops `Softmax`, `LogSoftmax`, `Normalize`,
`LayerNormRows`) are deferred too: a chain that starts on such an output (of the chain's
shape) runs as the row op's epilogue (gpugrad/backend/row_epilogue.py), so y is not read
back in a second pass: the CPU computes the op one cache block of rows at a time and runs
the chain's program on each block while it is in cache; CUDA runs the row kernel compiled
with the program's rendering in its store. The row op's node and the chain's node are
recorded as if they had run one after the other (so backward, and double backward
through the op's composite, are theirs); y is stored only where a node or the user
needs it (under no_grad, with y unread, only the chain's result is written). A row op's
output that anything else reads first (a matmul, a second row op in the same chain)
runs alone, as written.

What fuses: rows of the table over Tensors of one floating dtype (float16, bfloat16,
float32, float64) on one device, and Python numbers (kernel arguments, so a new value
compiles nothing). Anything else runs as usual (eagerly), after computing the deferred
tensors it reads. A chain longer than `MAX_CHAIN` ops is split into several programs.
Fused programs are cached by structure (bounded, `CACHE_SIZE`); on CUDA each (program,
dtype, operand layout) compiles once per process through cupy.RawKernel, whose binary
CuPy keeps in its disk cache (CUPY_CACHE_DIR) for later processes. Counts and times are in
`gpugrad.backend.pointwise.compile_stats()`. Nothing is deferred while a backward runs (the
VJPs run as written), and a fused program that fails to build or run falls back to the
chain's ops one by one.

Reading a deferred tensor's `grad_fn` (so `backward()`, `is_leaf`, hooks, in-place
checks) computes it too, and later programs then read it as an input. Autograd sees one
program as one node from its inputs: a value that a program (a reduction epilogue, a
longer chain, or the outputs computed together at the region's end) read as an
intermediate is not on that program's graph, so `autograd.grad(out, [value])` does not
reach it, and a hook or `retain_grad()` on it sees only the other paths: register them
before later ops use the value (they are refused with a RuntimeError while it is still
deferred and already read). Differences from running eagerly: float16/bfloat16 chains compute
in float32 throughout and round once at the end (eagerly each op rounds), and
floating-point results may differ in the last bits. An in-place write (a Tensor's `*_`
methods, `t[...] = v`, an optimizer's step) into a tensor or deferred value that pending
deferred ops read gives those a copy of the value from before the write (a clone, as
PyTorch saves an in-place op's original self), so they compute what they would have
eagerly; a write that bypasses these (a collective into a tensor) is caught by the version
counter (RuntimeError). Python side effects run as written: nothing is traced or replayed, each
call records its ops afresh, and only the built programs are cached.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from .autograd import function as _function
from .autograd.engine import _callback_lists as _backward_running
from .autograd.function import Op, version_of
from .autograd.grad_mode import _state as _grad_state
from .autograd.grad_mode import set_grad_enabled
from .backend import expr as E
from .backend.pointwise import record_build
from .backend.row_epilogue import Epilogue
from .ops.activation import LogSoftmax, Softmax
from .ops.broadcast import broadcast_to
from .ops.linalg import Linear
from .ops.normalization import LayerNormRows, Normalize
from .ops.pointwise import Row, X, Y
from .ops.reduce import Extremum, Mean, Sum, sum_to
from .ops.table import ROWS
from .tensor import Tensor, _wrap_array

__all__ = ["fuse", "MAX_CHAIN", "CACHE_SIZE"]

MAX_CHAIN = 64  # ops per fused program; a longer chain is split
CACHE_SIZE = 512  # fused programs kept (least recently used dropped)

_TABLE_ROWS = {id(r): r for r in ROWS.values()}
_NUMBERS = (int, float, bool)
_REDUCE_OPS = {Sum: "sum", Mean: "mean"}
_ADD = ROWS["add"].apply
# Row ops whose output a chain of pointwise ops may take as a generated epilogue
_SOURCE_OPS = (Softmax, LogSoftmax, Normalize, LayerNormRows)


# --- deferred values --------------------------------------------------------------------
class _Node:
    """A deferred application of `row` to `args` (Nodes, Tensors or numbers) with the
    row's `params`; `value` is its Tensor once computed; `tensor` (weak) the deferred
    Tensor handed to the user, which is completed in place when the node is computed."""

    __slots__ = ("row", "args", "params", "versions", "shape", "dtype", "grad", "value",
                 "tensor", "backend", "folded", "need", "__weakref__")

    def __init__(self, row, args, params, shape, dtype, backend) -> None:
        self.row, self.args, self.params = row, args, params
        self.versions = tuple(version_of(a) if isinstance(a, Tensor) else 0 for a in args)
        self.shape, self.dtype, self.backend = shape, dtype, backend
        self.grad = _grad_state.enabled
        self.value = None
        self.tensor = None
        self.folded = False  # read inside a program already run (its graph skips this node)
        self.need = False  # it required grad when deferred (inputs may change afterwards)


class _Source:
    """A deferred row op (softmax, log-softmax, a normalisation) `cls.apply(*args)`: run
    when a chain of pointwise ops that starts on its output is computed, with the chain's
    program as the row kernel's epilogue (one pass), or alone when anything else needs
    its output. `need`: its output will require grad."""

    __slots__ = ("cls", "args", "versions", "shape", "dtype", "grad", "need", "value",
                 "tensor", "backend", "__weakref__")

    def __init__(self, cls, args, shape, dtype, backend, need: bool) -> None:
        self.cls, self.args = cls, args
        self.versions = tuple(version_of(a) if isinstance(a, Tensor) else 0 for a in args)
        self.shape, self.dtype, self.backend = shape, dtype, backend
        self.grad = _grad_state.enabled
        self.need = need
        self.value = None
        self.tensor = None


class _Deferred:
    """The `_data` of a deferred Tensor: shape, dtype, ndim, size and itemsize are known;
    anything else computes the node (and completes its Tensor) and answers for the
    array."""

    __slots__ = ("node", "shape", "dtype", "__weakref__")

    def __init__(self, node: _Node) -> None:
        self.node, self.shape, self.dtype = node, node.shape, node.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    def _real(self):
        return _compute([self.node])[0]._data

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(self._real(), name)

    def __array__(self, dtype=None, copy=None):
        real = self._real()
        host = real if isinstance(real, np.ndarray) else self.node.backend.to_host(real)
        return np.array(host, dtype=dtype, copy=True) if copy else np.asarray(host, dtype)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        return repr(self._real())


def _forward_dunder(name: str):
    def method(self, *args):
        return getattr(self._real(), name)(*args)

    method.__name__ = name
    return method


for _name in ("__getitem__", "__setitem__", "__iter__", "__bool__", "__float__", "__int__",
              "__index__", "__complex__", "__format__", "__add__", "__radd__", "__sub__",
              "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__", "__neg__",
              "__pow__", "__rpow__", "__lt__", "__le__", "__gt__", "__ge__", "__eq__",
              "__ne__", "__matmul__", "__rmatmul__", "__abs__", "__cuda_array_interface__",
              # in place on the array (backend code writing `g *= c` into a Tensor's _data,
              # as clip_grad_norm_ does): without these Python would rebind g to a new array
              "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ipow__", "__ifloordiv__",
              "__imod__", "__iand__", "__ior__", "__ixor__"):
    setattr(_Deferred, _name, _forward_dunder(_name))
_Deferred.__hash__ = object.__hash__
_Deferred.__cuda_array_interface__ = property(
    lambda self: self._real().__cuda_array_interface__)


class _DeferredTensor(Tensor):
    """A deferred Tensor (a plain Tensor again once computed): reading its `grad_fn`, or an
    in-place write into it or of a deferred value into a Tensor, computes it first."""

    def _write_result(self, result: Tensor, op: str) -> Tensor:
        _compute([n for n in (_node_of(self), _node_of(result)) if n is not None])
        return Tensor._write_result(self, result, op)

    def _computed(self) -> Tensor:
        """Computed now (stored as another tensor's .grad or .data, its array is written)."""
        node = _node_of(self)
        if node is not None:
            _compute([node])
        return self

    def __reduce_ex__(self, protocol):
        """Pickling and copying (copy.deepcopy too) compute it first: the pending node is
        no part of a Tensor's state."""
        return Tensor.__reduce_ex__(self._computed(), protocol)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Computed first: as a leaf that requires grad, later ops must read it as an input
        (their programs would otherwise run from its own inputs, past it)."""
        return Tensor.requires_grad_(self._computed(), flag)

    def retain_grad(self) -> None:
        """`Tensor.retain_grad`, refused (see `_refuse_folded`) once a fused program has
        read this value as an intermediate."""
        _refuse_folded(self, "retain_grad()")
        return Tensor.retain_grad(self)

    def register_hook(self, fn):
        """`Tensor.register_hook`, refused (see `_refuse_folded`) once a fused program has
        read this value as an intermediate."""
        _refuse_folded(self, "register_hook()")
        return Tensor.register_hook(self, fn)

    @property
    def grad_fn(self):
        """Reading the graph (backward, is_leaf, hooks, in-place checks) computes it."""
        node = _node_of(self)
        if node is not None:
            _compute([node])
        return self.__dict__.get("grad_fn")

    @grad_fn.setter
    def grad_fn(self, fn) -> None:
        self.__dict__["grad_fn"] = fn


def _refuse_folded(t: Tensor, what: str) -> None:
    """A deferred value that a program already run (a reduction epilogue, a longer chain)
    read as an intermediate is not on that program's graph (it goes from the program's
    inputs), so a hook or retained gradient on it would silently miss that part of the
    gradient: refused."""
    node = _node_of(t)
    if t._requires_grad and type(node) is _Node and node.folded:
        raise RuntimeError(
            f"gg.fuse: {what} on a deferred value of shape {tuple(node.shape)} that a fused "
            f"program has already read as an intermediate (that program's graph runs from "
            f"its inputs, not through this value, so {what} would miss its part of the "
            f"gradient); call {what} before later ops use the value")


def _node_of(a):
    """The pending node behind a deferred Tensor, else None."""
    if isinstance(a, Tensor):
        d = a._data
        if type(d) is _Deferred:
            return d.node
    return None


# --- regions ------------------------------------------------------------------------------
class _Local(threading.local):
    depth = 0
    regions: list


_local = _Local()
_open = [0]  # regions open in all threads (the hook is installed while > 0)
_open_lock = threading.Lock()


class _Region:
    """An open region: the deferred Tensors it made (weakly), computed at its end."""

    def __init__(self) -> None:
        self.made: list = []
        self.bound = 256  # prune `made` when it grows past this (a loop in one region)

    def add(self, node) -> None:
        """Remember pending `node` (weakly); the references of nodes computed or dropped
        meanwhile are pruned as the list doubles, so a long loop inside one region keeps
        only what is still pending."""
        made = self.made
        made.append(weakref.ref(node))
        if len(made) > self.bound:
            self.made = made = [r for r in made if (n := r()) is not None and n.value is None]
            self.bound = max(256, 2 * len(made))

    def __enter__(self) -> _Region:
        if _local.depth == 0:
            _local.regions = []
        _local.depth += 1
        _local.regions.append(self)
        with _open_lock:
            _open[0] += 1
            _function._fuse_hook = _hook
            # stays installed (a no-op outside regions): a thread between its check and
            # its call must not find it gone when another closes the last region
            Tensor._before_write = _before_write
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                pending = [n for n in (r() for r in self.made) if n is not None and
                           n.value is None and n.tensor is not None and
                           n.tensor() is not None]
                if pending:
                    _compute(pending)  # those of one shape as one program
        finally:
            _local.regions.pop()
            _local.depth -= 1
            with _open_lock:
                _open[0] -= 1
                if _open[0] == 0:
                    _function._fuse_hook = None


def _hook(cls, args, kwargs):
    """Function.apply's hook while a region is open: defer a pointwise row, fuse a
    reduction of a deferred value, compute the deferred inputs of anything else."""
    if _local.depth == 0:
        return NotImplemented
    if _backward_running():  # VJPs run as written (the engine takes arrays from them)
        deferred = [n for n in map(_node_of, _flat(args, kwargs)) if n is not None]
        if deferred:
            _compute(deferred)
        return NotImplemented
    row = getattr(cls, "row", None)
    if row is not None and id(row) in _TABLE_ROWS and (not kwargs or kwargs.keys() <= {"params"}):
        out = _defer(row, args, kwargs.get("params", ()))
        if out is not None:
            return out
    elif args and (cls in _REDUCE_OPS or (cls is Extremum and len(args) == 4)):
        node = _node_of(args[0])
        if node is not None and not kwargs:
            return _reduce_epilogue(cls, node, args)
    elif cls in _SOURCE_OPS and not kwargs:
        out = _defer_source(cls, args)
        if out is not None:
            return out
    elif cls is Linear and len(args) == 3 and isinstance(args[2], Tensor) and not kwargs:
        # the GEMM's epilogue: x·Wᵀ on BLAS/cuBLAS, then the bias add deferred, so it fuses
        # with the activation (and whatever pointwise follows) into one program
        return _ADD(Linear.apply(args[0], args[1], None), args[2])
    deferred = [n for n in map(_node_of, _flat(args, kwargs)) if n is not None]
    if deferred:
        _compute(deferred)
    return NotImplemented


def _before_write(*tensors: Tensor) -> None:
    """In-place writes into `tensors` (or changes of their requires_grad) are about to
    happen while a region is open: the pending nodes of this thread's regions that read
    one of them (as a Tensor, as a deferred value, or through a view, a detached alias or
    `.data`) read a copy of it from before instead (a differentiable clone, as PyTorch
    saves an in-place op's original self), so they compute what they would have eagerly,
    with the graph they would have recorded, stay deferred, and their programs save the
    copy, not the tensor the write changes."""
    if _local.depth == 0:
        return
    written = [n for n in map(_node_of, tensors) if n is not None]
    ids = {id(t) for t in tensors}
    ids.update(id(t._version) for t in tensors if t._version is not None)
    # `.data` (and the arrays behind any alias) shares the storage, not the counter
    ids.update(id(_storage(t._data)) for t in tensors if _node_of(t) is None)
    ids.update(map(id, written))
    readers = []
    for region in _local.regions:
        alive = []
        for ref in region.made:
            n = ref()
            if n is None or n.value is not None:
                continue  # computed or dropped: nothing left to protect
            alive.append(ref)
            if any(_aliases(a, ids) for a in n.args):
                readers.append(n)
        region.made = alive
    if not readers:
        return
    if written:
        _compute(written)  # the deferred values written: computed, to be copied
    copies: dict = {}
    for n in readers:
        args, versions = list(n.args), list(n.versions)
        for i, a in enumerate(args):
            if not _aliases(a, ids):
                continue
            real = a.value if type(a) in (_Node, _Source) else a
            c = copies.get((id(real), n.grad))
            if c is None:
                with set_grad_enabled(n.grad):
                    c = copies[(id(real), n.grad)] = real.clone()
            args[i], versions[i] = c, version_of(c)
        n.args, n.versions = tuple(args), tuple(versions)


def _aliases(a, ids: set) -> bool:
    """Whether argument `a` of a pending node (a Tensor, a number, a deferred node) is one
    of the written tensors (`ids`: theirs, their nodes' and their version counters')."""
    if id(a) in ids:
        return True
    if type(a) in (_Node, _Source):
        a = a.value
    return isinstance(a, Tensor) and (id(a) in ids or id(a._version) in ids or
                                      id(_storage(a._data)) in ids)


def _storage(array):
    """The array owning `array`'s memory (NumPy and CuPy views keep it as `.base`)."""
    base = getattr(array, "base", None)
    return array if base is None else base


def _flat(args, kwargs):
    for a in (*args, *kwargs.values()):
        if isinstance(a, (list, tuple)):
            yield from a
        else:
            yield a


def _defer(row: Row, args, params):
    """A deferred Tensor for row(args), or None where the op cannot be deferred."""
    if len(row.outputs) != 1:
        return None
    backend = dtype = None
    shapes, need = [], False
    grad = _grad_state.enabled
    ins = []
    for a in args:
        if isinstance(a, Tensor):
            if backend is None:
                backend, dtype = a._backend, a._data.dtype
            elif a._backend is not backend or a._data.dtype != dtype:
                return None
            node = _node_of(a)
            if node is not None and node.grad != grad:
                _compute([node])
                node = None
            ins.append(a if node is None else node)
            shapes.append(a._data.shape)
            need = need or a._requires_grad
        elif type(a) in _NUMBERS:
            ins.append(a)
        else:
            return None
    if any(type(p) not in _NUMBERS for p in params):
        return None
    if backend is None or not (dtype.kind == "f" or dtype.name == "bfloat16"):
        return None
    shape = shapes[0]
    if any(sh != shape for sh in shapes):
        try:
            shape = np.broadcast_shapes(*shapes)
        except ValueError:
            return None  # run eagerly: the op raises its broadcasting error
    if not all(shape):
        return None
    node = _Node(row, tuple(ins), tuple(params), shape, dtype, backend)
    t = _new(_DeferredTensor)
    t._data = _Deferred(node)
    t._backend = backend
    if need and grad:
        t._requires_grad = node.need = True
    node.tensor = weakref.ref(t)
    _local.regions[-1].add(node)
    return t


def _defer_source(cls, args):
    """A deferred Tensor for a row op's output (see `_Source`), or None to run it now."""
    if cls is Normalize and len(args) > 3 and args[3] is not None:
        return None  # batch norm's statistics: computed by the caller already
    x = args[0]
    if not isinstance(x, Tensor):
        return None
    deferred = [n for n in map(_node_of, args) if n is not None]
    if deferred:
        _compute(deferred)
    dtype, backend = x._data.dtype, x._backend
    shape = x._data.shape
    if not shape or not all(shape) or not (dtype.kind == "f" or dtype.name == "bfloat16"):
        return None
    if any(isinstance(a, Tensor) and a._backend is not backend for a in args):
        return None  # run now: the op raises its device error
    need = _grad_state.enabled and any(isinstance(a, Tensor) and a._requires_grad
                                       for a in args)
    src = _Source(cls, tuple(args), shape, dtype, backend, need)
    t = _new(_DeferredTensor)
    t._data = _Deferred(src)
    t._backend = backend
    if need:
        t._requires_grad = True
    src.tensor = weakref.ref(t)
    _local.regions[-1].add(src)
    return t


_new = object.__new__


# --- computing deferred nodes -------------------------------------------------------------
def _pending_args(n) -> list:
    """The arguments of a deferred node that are deferred nodes not yet computed."""
    return [a for a in n.args if type(a) is _Node and a.value is None]


def _graph(outs: list):
    """(pending nodes in topological order, their leaves (Tensors once each, numbers once
    per use), per node the reference of each argument: ("n", node index) or ("l", leaf
    index))."""
    order = E.postorder([n for n in outs if n.value is None], _pending_args, id)
    index = {id(n): k for k, n in enumerate(order)}
    leaves, tensor_leaf, refs = [], {}, []
    for n in order:
        r = []
        for a in n.args:
            if type(a) is _Node:
                if a.value is None:
                    r.append(("n", index[id(a)]))
                    continue
                a = a.value
            elif type(a) is _Source and a.value is not None:
                a = a.value
            if isinstance(a, Tensor) or type(a) is _Source:  # a pending source: a leaf
                k = tensor_leaf.get(id(a))
                if k is None:
                    k = tensor_leaf[id(a)] = len(leaves)
                    leaves.append(a)
            else:
                k = len(leaves)
                leaves.append(a)
            r.append(("l", k))
        refs.append(tuple(r))
    return order, leaves, refs


def _structure(order, leaves, refs, outs, reduce_kind) -> tuple:
    """The structural cache key of a chain: rows and references, the leaves' kinds
    (Tensor, or a number's type), the outputs and the reduction."""
    index = {id(n): k for k, n in enumerate(order)}
    kinds = tuple("t" if isinstance(a, (Tensor, _Source)) else type(a).__name__
                  for a in leaves)
    return (tuple((n.row.name, r) for n, r in zip(order, refs)), kinds,
            tuple(index[id(o)] for o in outs), reduce_kind)


_CACHE: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


def _fused_row(order, refs, n_leaves, outs_idx, with_y: bool) -> tuple:
    """(the Row of a chain, names of its parameters per node): forward expressions
    composed by substitution, VJP composed from each row's VJP in reverse."""
    start = time.perf_counter()
    leaf = [X(k) for k in range(n_leaves)]
    fwd, pmaps, pnames = [], [], []
    for j, (n, r) in enumerate(zip(order, refs)):
        pm = {E.param(p): E.param(f"{p}_{j}") for p in n.row.params}
        pmaps.append(pm)
        pnames.extend(f"{p}_{j}" for p in n.row.params)
        sub = {X(i): (fwd[k] if kind == "n" else leaf[k]) for i, (kind, k) in enumerate(r)}
        sub.update(pm)
        fwd.append(E.substitute(n.row.outputs[0], sub))
    outs = [fwd[k] for k in outs_idx]
    # reverse pass over the rows: adjoint of each node and of each leaf
    adj: dict = {}
    for k, o in enumerate(outs_idx):
        g = E.var(f"g{k}")
        adj[("n", o)] = g if ("n", o) not in adj else E.add(adj[("n", o)], g)
    for j in range(len(order) - 1, -1, -1):
        a = adj.get(("n", j))
        if a is None:
            continue
        n, r = order[j], refs[j]
        exprs, _ = n.row._grad_exprs((True,) * n.row.n_in, False)
        sub = {X(i): (fwd[k] if kind == "n" else leaf[k]) for i, (kind, k) in enumerate(r)}
        sub.update(pmaps[j])
        sub[Y] = fwd[j]
        sub[E.var("g0")] = a
        for (kind, k), e in zip(r, exprs):
            if e is None:
                continue
            c = E.substitute(e, sub)
            prev = adj.get((kind, k))
            adj[(kind, k)] = c if prev is None else E.add(prev, c)
    vjp = [adj.get(("l", k)) for k in range(n_leaves)]
    # y is read back (saved) only where the chain's last row saves its output eagerly too:
    # div's VJP reads its operands, so that y may be written in place afterwards, as PyTorch
    if with_y and len(outs) == 1 and order[outs_idx[0]].row.saves_output:
        vjp = [None if v is None else E.substitute(v, {outs[0]: Y}) for v in vjp]
    row = Row("fused", tuple(outs), n_leaves, tuple(pnames), vjp=tuple(vjp))
    record_build("fused", time.perf_counter() - start)
    return row


def _row_for(order, leaves, refs, outs, reduce_kind=None):
    key = _structure(order, leaves, refs, outs, reduce_kind)
    with _cache_lock:
        row = _CACHE.get(key)
        if row is not None:
            _CACHE.move_to_end(key)
            return row
    index = {id(n): k for k, n in enumerate(order)}
    row = _fused_row(order, refs, len(leaves), [index[id(o)] for o in outs],
                     reduce_kind is None)
    with _cache_lock:
        _CACHE[key] = row
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return row


def _check_versions(order) -> None:
    for n in order:
        for a, v in zip(n.args, n.versions):
            if isinstance(a, Tensor) and version_of(a) != v:
                label = n.cls.__name__.lower() if type(n) is _Source else n.row.label
                raise RuntimeError(
                    f"gg.fuse: a tensor of shape {tuple(a.shape)} read by a deferred "
                    f"{label} was modified in place (version {version_of(a)}, "
                    f"expected {v}) before the fused program ran; compute on a .clone()")


def _split(outs: list):
    """Compute the prefix of a chain longer than MAX_CHAIN first (its nodes become leaves)."""
    while True:
        order, leaves, refs = _graph(outs)
        if len(order) <= MAX_CHAIN:
            return order, leaves, refs
        _compute([order[MAX_CHAIN - 1]])


def _compute(nodes: list) -> list:
    """Compute pending `nodes` (one shape, one grad mode) as one fused program; returns
    their Tensors (the user's deferred Tensors, completed in place). A chain that starts
    on one pending row op's output runs as that row op's epilogue (`_with_epilogue`)."""
    pending = [n for n in dict.fromkeys(nodes) if n.value is None]
    groups: dict = {}
    for n in pending:
        if type(n) is _Node:
            groups.setdefault((n.shape, n.dtype, id(n.backend), n.grad), []).append(n)
    for group in groups.values():
        order, leaves, refs = _split(group)
        group = [n for n in group if n.value is None]
        if not group:
            continue
        _check_versions(order)
        srcs = [k for k, a in enumerate(leaves) if type(a) is _Source]
        g0 = group[0]
        slot = srcs[0] if len(srcs) == 1 and _fits(leaves[srcs[0]], g0) else None
        if slot is None:
            _run_sources(leaves)
        try:
            row = _row_for(order, leaves, refs, group)
            params = tuple(p for n in order for p in n.params)
            if slot is not None:
                res = _with_epilogue(row, leaves, slot, params, g0)
            else:
                with set_grad_enabled(g0.grad):
                    res = (row.apply(*leaves, params=params) if params
                           else row.apply(*leaves))
            res = res if type(res) is tuple else (res,)
        except Exception:  # noqa: BLE001 - a program that fails: the ops one by one, as
            _run_sources(leaves)  # written (their own errors)
            res = _run_eagerly(order, leaves, refs, group)
        # a chain that simplifies to one of its inputs (-(-x)) or to another output comes
        # back as that array: each result gets storage of its own, as eagerly
        taken = {id(_storage(a._data)) for a in leaves if isinstance(a, Tensor)}
        for r in res:
            if id(_storage(r._data)) in taken:
                r._data = r._data.copy()
            taken.add(id(_storage(r._data)))
        for n, r in zip(group, res):
            _finish(n, r)
            n.args = ()  # the chain behind it can be freed
        for n in order:
            n.folded = n.folded or n.value is None
    for n in pending:
        if type(n) is _Source and n.value is None:
            _run_source(n)
    return [n.value for n in nodes]


def _finish(n, r: Tensor) -> None:
    """Complete pending `n` with its value `r` (the user's deferred Tensor, in place)."""
    t = n.tensor() if n.tensor is not None else None
    if t is None:  # read by later nodes only: with a graph only where it needed one
        n.value = r if type(n) is _Source or n.need or r.grad_fn is None else r.detach()
        return
    t.__class__ = Tensor
    t._data = r._data
    t._version = r._version
    # a program of several outputs records one node for all of them: an output that needed
    # no gradient when it was deferred (none of its own inputs required one) stays off it
    if r.grad_fn is not None and t._requires_grad:
        t.grad_fn = r.grad_fn
        t._output_nr = r._output_nr
        t._requires_grad = True
    n.value = t


def _fits(src: _Source, g0: _Node) -> bool:
    """Whether the chain of `g0` (its group) can be the epilogue of `src`: the same shape,
    dtype, device and grad mode."""
    return (src.value is None and src.shape == g0.shape and src.dtype == g0.dtype
            and src.backend is g0.backend and src.grad == g0.grad)


def _run_source(src: _Source) -> Tensor:
    """A deferred row op run alone (its output is needed as such)."""
    if src.value is None:
        _check_versions([src])
        depth, _local.depth = _local.depth, 0  # the op itself is not deferred again
        try:
            with set_grad_enabled(src.grad):
                r = src.cls.apply(*src.args)
        finally:
            _local.depth = depth
        _finish(src, r)
    return src.value


def _run_sources(leaves: list) -> None:
    for k, a in enumerate(leaves):
        if type(a) is _Source:
            leaves[k] = _run_source(a)


def _with_epilogue(row, leaves: list, slot: int, params: tuple, g0: _Node):
    """The chain's program (`row`) run as the epilogue of the row op `leaves[slot]`: one
    pass (row_epilogue.py). The row op's node and the chain's node are recorded as if
    they had run one after the other (so backward and double backward are theirs); y, the
    row op's output, is stored only where its node, the chain's node or the user needs
    it."""
    src = leaves[slot]
    _check_versions([src])
    recording = g0.grad and (src.need or any(isinstance(a, Tensor) and a._requires_grad
                                             for a in leaves))
    alive = src.tensor is not None and src.tensor() is not None
    arrays = [None if k == slot else a._data if isinstance(a, Tensor) else a
              for k, a in enumerate(leaves)]
    ep = Epilogue(row.program, slot, arrays, params, keep_y=recording or alive)
    if not ep.keep_y:  # nothing to record and y unused: the arrays only (src stays pending)
        ctx = _new(src.cls)
        ctx._backend = src.backend
        src.cls.forward(ctx, *[a._data if isinstance(a, Tensor) else a for a in src.args],
                        epilogue=ep)
        outs = ep.out if type(ep.out) is tuple else (ep.out,)
        return tuple(_wrap_array(o, src.backend) for o in outs)
    with set_grad_enabled(src.grad):
        y = src.cls.apply(*src.args, epilogue=ep)
    _finish(src, y)
    leaves[slot] = src.value
    with set_grad_enabled(g0.grad):
        return (row.apply(*leaves, params=params, out=ep.out) if params
                else row.apply(*leaves, out=ep.out))


def _run_eagerly(order, leaves, refs, outs) -> tuple:
    """The chain's rows applied one by one (nothing deferred meanwhile); the outputs'
    values."""
    values = []
    depth, _local.depth = _local.depth, 0
    try:
        for n, r in zip(order, refs):
            args = [values[k] if kind == "n" else leaves[k] for kind, k in r]
            with set_grad_enabled(n.grad):
                values.append(n.row.apply(*args, params=n.params) if n.params
                              else n.row.apply(*args))
    finally:
        _local.depth = depth
    index = {id(n): k for k, n in enumerate(order)}
    return tuple(values[index[id(o)]] for o in outs)


# --- reduction epilogue -------------------------------------------------------------------
def _reduce_epilogue(cls, node: _Node, args):
    if cls is Extremum:
        kind = "amax" if args[3] else "amin"
    else:
        kind = _REDUCE_OPS[cls]
    dims, keepdim = args[1], args[2]
    if not dims or any(node.shape[d] == 0 for d in dims):
        _compute([node])
        return NotImplemented
    order, leaves, refs = _split([node])
    _check_versions(order)
    _run_sources(leaves)
    params = tuple(p for n in order for p in n.params)
    try:
        row = _row_for(order, leaves, refs, [node], kind)
        # recorded where the reduced value required grad when it was deferred (a leaf
        # made to require grad later, as eagerly, is not on its graph)
        with set_grad_enabled(node.need and _grad_state.enabled):
            out = FusedReduce.apply(*leaves, row=row, kind=kind, dims=tuple(dims),
                                    keepdim=bool(keepdim), params=params, shape=node.shape)
        for n in order:
            n.folded = True
        return out
    except Exception:  # noqa: BLE001 - the chain, then the reduction, as written
        _compute([node])
        return NotImplemented


class FusedReduce(Op):
    """y = reduce_dims(row(x0, x1, ...)) without materialising row's result: reduce is a
    sum, a mean (the sum / n), or amax/amin (ties share the gradient evenly, as
    `amax`). x̄ᵢ = sum_to(row's VJP with ȳ spread back over dims (/ n for a mean; · [f = y]
    / #ties for amax/amin)); the VJP is a Row, so double backward is derived."""

    @staticmethod
    def forward(ctx, *arrays, row, kind, dims, keepdim, params, shape):
        ctx.row, ctx.kind, ctx.dims, ctx.shape, ctx.params = row, kind, dims, shape, params
        ctx.scalars = arrays
        if kind in ("amax", "amin"):  # the backward recomputes the values to find the ties
            ctx.save_inputs(*range(len(arrays)))
            ctx.save_output()
        else:  # only what the VJP reads, as the unfused ops save (a - b: nothing)
            ctx.save_inputs(*row.saved_inputs)
        return ctx.backend.pointwise_reduce(row.program, arrays, params, kind, dims, keepdim)

    @staticmethod
    def backward(ctx, g):
        row, dims, shape, params = ctx.row, ctx.dims, ctx.shape, ctx.params
        saved = ctx._save_in  # the rest is not read (numbers come from ctx.scalars)
        ins = [ctx.saved_input(i) if i in saved else None for i in range(len(ctx._edges))]
        ins = [ctx.scalars[i] if t is None else t for i, t in enumerate(ins)]
        keep = tuple(1 if i in dims else n for i, n in enumerate(shape))
        if ctx.kind == "mean":
            g = g / math.prod(shape[d] for d in dims)
        gf = broadcast_to(g.reshape(keep), shape)
        if ctx.kind in ("amax", "amin"):
            backend = ctx.backend
            with set_grad_enabled(False):
                full = row.apply(*ins, params=params) if params else row.apply(*ins)
            mask = full._data == ctx.saved_output._data.reshape(keep)
            count = mask.sum(axis=dims, keepdims=True).astype(full._data.dtype)
            share = g.reshape(keep) / _wrap_array(count, backend)
            gf = share * _wrap_array(mask.astype(full._data.dtype), backend)
        need = ctx.needs_input_grad
        bw, srcs, targets = row.backward_row(tuple(need), False)
        result = [None] * len(need)
        if bw is not None:
            bins = [ins[k] if kind == "x" else gf for kind, k in srcs]
            res = bw.apply(*bins, params=params) if params else bw.apply(*bins)
            res = res if type(res) is tuple else (res,)
            for i, r in zip(targets, res):
                result[i] = sum_to(r, ctx.input_shape(i))
        for i, n in enumerate(need):
            if n and result[i] is None:
                sh, dt = ctx._input_meta[i]
                result[i] = _wrap_array(ctx.backend.xp.zeros(sh, dtype=dt), ctx.backend)
        return tuple(result)

    def name(self) -> str:
        return f"Fused{self.kind.capitalize()}Backward"


# --- the public API -----------------------------------------------------------------------
def _complete(value):
    """Compute the deferred Tensors in a function's result (tuples, lists, dicts), those of
    one shape as one program."""
    found: list = []

    def walk(v) -> None:
        n = _node_of(v)
        if n is not None:
            found.append(n)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(value)
    if found:
        _compute(found)
    return value


class _FuseType(type):
    """`with gg.fuse:` (the class, not an instance) names the fix instead of Python's
    "'type' object does not support the context manager protocol"."""

    def __enter__(cls):
        raise TypeError("gg.fuse is used as `with gg.fuse():` (called), or as a decorator")

    def __exit__(cls, *exc) -> None:
        pass


class fuse(metaclass=_FuseType):  # noqa: N801 - a decorator and a context manager, as cupy.fuse
    """Fuse the elementwise ops of a function (`@gg.fuse`, `@gg.fuse()`, `gg.fuse(fn)`) or
    of a block (`with gg.fuse():`) into one program forward and one backward; see the
    module docstring. `kernel_name` is accepted for cupy.fuse's signature and unused."""

    def __new__(cls, fn: Callable | None = None, *, kernel_name: str | None = None):
        if fn is not None:
            if not callable(fn):
                raise TypeError(f"fuse: expected a function, got {type(fn).__name__}")
            return _fused_function(fn)
        return super().__new__(cls)

    def __init__(self, fn: Callable | None = None, *, kernel_name: str | None = None) -> None:
        pass

    def __call__(self, fn: Callable) -> Callable:
        if not callable(fn):
            raise TypeError(f"fuse: expected a function, got {type(fn).__name__}")
        return _fused_function(fn)

    def __enter__(self):
        _Region().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        # this thread's innermost region: one `fuse()` object may be entered by several
        # threads at once (a module-level instance), so it keeps no regions of its own
        _local.regions[-1].__exit__(*exc)


def _fused_function(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def fused(*args, **kwargs):
        with _Region():
            return _complete(fn(*args, **kwargs))

    fused.__wrapped_fuse__ = True
    return fused
