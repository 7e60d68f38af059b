"""`Row` and `Pointwise`: one Op class that runs any elementwise formula of the table.

A `Row` is a forward expression (gpugrad/backend/expr.py) over its operands x0, x1, ...
and its declared scalar parameters, plus an optional hand-written VJP where the rule is a
choice (relu's subgradient at 0, ties, NaN propagation). Everything else is derived:

- the VJP, by symbolic reverse-mode differentiation of the forward expression, with the
  forward expression itself replaced by the saved output y wherever it reappears (so exp,
  tanh and sigmoid save y, silu and gelu save x);
- what backward saves (the operands and/or y that the VJP reads);
- the backward itself, a `Row` again (outputs: the needed input cotangents), so double
  backward differentiates the VJP expression and never needs a hand-written derivative.

Complex operands follow PyTorch's convention (x̄ = ȳ·conj(∂y/∂x) for holomorphic
primitives), applied centrally by the differentiation; a VJP is a pure pointwise
expression: its result has the output's (broadcast) shape and the engine sums it down to
each input's shape (`Pointwise.broadcast_grads`).

Without a graph to record, the engine hands connected rows to `Pointwise.fused_backward`
(rows are one fusable family): their VJP expressions are composed into one program,
cached by the region's structure, and run as one pass (see `_fused_backward`).
"""

from __future__ import annotations

import threading

from ..autograd.function import Op
from ..autograd.grad_mode import _state as _grad_state
from ..backend import expr as E
from ..backend.pointwise import Program
from ..tensor import _wrap_array
from ._util import broadcast_error

__all__ = ["Row", "Pointwise", "X", "Y", "G", "P"]

_PY = (int, float, complex, bool)


def X(i: int) -> E.Expr:
    """Operand i of a row."""
    return E.var(f"x{i}")


Y = E.var("y0")  # the row's output, for hand-written VJPs that read it
G = E.var("g0")  # the output's cotangent


def P(name: str) -> E.Expr:
    """A declared scalar parameter of a row."""
    return E.param(name)


class Row:
    """One elementwise op: `outputs` (usually one expression) over operands x0..x{n-1} and
    the scalar `params`; `vjp`, where given, is one Expr (or None for no gradient) per
    operand over the operands, Y, G and the params, used for real dtypes, and
    `complex_vjp` likewise for complex ones (derived where not given). `keep` lists
    subexpressions worth keeping from forward on backends that compute rather than stream
    (the CPU: GELU's Φ), which a backward without a graph then reads instead of
    recomputing; a differentiable (create_graph) backward always recomputes them.

    `label` is the op's name in errors and grad_fn names (default `name`; add and add with
    alpha are one op to the user). `array_vjp(backend, g, *operands)`, where given, may
    compute every operand's cotangent of a real backward without a graph in one backend
    call (Mul's one-pass two-product kernel), or return None to use the program.

    A row whose forward is one arithmetic primitive over its operands in order runs
    forward as the backend's ufunc (`ufunc`: Backend.binary/unary, threaded on the CPU,
    broadcasting in place on CuPy), as + − × ÷ ran before the table."""

    def __init__(self, name: str, outputs, n_in: int, params: tuple = (), vjp=None,
                 keep: tuple = (), complex_vjp=None, label: str | None = None,
                 array_vjp=None) -> None:
        self.name = name
        self.label = label or name
        self.complex_vjp = None if complex_vjp is None else tuple(complex_vjp)
        self.array_vjp = array_vjp
        self.outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
        self.n_in = n_in
        self.params = tuple(params)
        self.vjp = None if vjp is None else tuple(vjp)
        self.program = Program(tuple(f"x{i}" for i in range(n_in)), self.outputs,
                               self.params)
        self.keep = tuple(keep)
        self.program_keep = Program(self.program.inputs, self.outputs + self.keep,
                                    self.params) if keep else None
        self._backward: dict = {}
        self._fuse: dict = {}
        self._cases: dict = {}  # need/complex/kept mask -> _Case (fused backward)
        self._plans: dict = {}
        every = (True,) * n_in
        srcs = self._grad_exprs(every, False)[1] + self._grad_exprs(every, True)[1]
        self.saved_inputs = tuple(sorted({k for kind, k in srcs if kind == "x"}))
        self.saves_output = any(kind == "y" for kind, _ in srcs)
        self.saves_all = self.saved_inputs == tuple(range(n_in))
        self.real_from_complex = any(e.op in _REAL_OF_COMPLEX for e in E.topo_order(self.outputs))
        # The Op class running this row: the row and what it saves are class attributes,
        # so a call passes no keywords and forward sets nothing per node for them.
        out = self.outputs[0]
        self.ufunc = _UFUNCS.get(out.op) if len(self.outputs) == 1 and not self.params \
            and out.args == tuple(X(i) for i in range(n_in)) else None
        self.op = type(_class_name(self.label), (Pointwise,), {
            "row": self, "_save_in": self.saved_inputs,
            "_save_out": _OUT0 if self.saves_output else ()})
        self.apply = self.op.apply

    def __repr__(self) -> str:
        return f"Row({self.name}: {', '.join(map(repr, self.outputs))})"

    def _grad_exprs(self, need: tuple, cplx: bool, kept: bool = False):
        """(one VJP Expr or None per operand that needs a gradient, the sources they read:
        ("x", i), ("y", 0), ("g", k) or ("k", j) (kept values), in argument order)."""
        idx = [i for i, n in enumerate(need) if n]
        if self.vjp is not None and not cplx:
            exprs = [self.vjp[i] for i in idx]
        elif self.complex_vjp is not None and cplx:
            exprs = [self.complex_vjp[i] for i in idx]
        else:
            cots = [E.var(f"g{k}") for k in range(len(self.outputs))]
            exprs = E.vjp(self.outputs, cots, [X(i) for i in idx], cplx)
            if len(self.outputs) == 1 and self.outputs[0].op != "var":
                exprs = [None if e is None else E.substitute(e, {self.outputs[0]: Y})
                         for e in exprs]
        if kept:
            sub = {k: E.var(f"k{j}") for j, k in enumerate(self.keep)}
            exprs = [None if e is None else E.substitute(e, sub) for e in exprs]
        names = E.free_vars([e for e in exprs if e is not None])
        srcs = [("x", i) for i in range(self.n_in) if f"x{i}" in names]
        srcs += [("y", 0)] if "y0" in names else []
        srcs += [("g", k) for k in range(len(self.outputs)) if f"g{k}" in names]
        srcs += [("k", j) for j in range(len(self.keep)) if f"k{j}" in names]
        return exprs, srcs

    def fuse_info(self, need: tuple, cplx: bool, kept: bool):
        """`_grad_exprs` cached per case, for composing a fused backward region."""
        key = (need, cplx, kept)
        hit = self._fuse.get(key)
        if hit is None:
            hit = self._fuse[key] = self._grad_exprs(need, cplx, kept)
        return hit

    def backward_row(self, need: tuple, cplx: bool, kept: bool = False):
        """(the Row computing the needed operands' cotangents, its sources, the operand
        index of each of its outputs), cached per need mask, complex flag and whether the
        kept values are read."""
        key = (need, cplx, kept)
        hit = self._backward.get(key)
        if hit is not None:
            return hit
        exprs, srcs = self._grad_exprs(need, cplx, kept)
        idx = [i for i, n in enumerate(need) if n]
        live = [(i, e) for i, e in zip(idx, exprs) if e is not None]
        rename = {E.var(f"{kind}{k}"): X(j) for j, (kind, k) in enumerate(srcs)}
        outs = [E.substitute(e, rename) for _, e in live]
        row = Row(f"{self.name}_backward", outs, len(srcs), self.params) if outs else None
        hit = self._backward[key] = (row, srcs, [i for i, _ in live])
        return hit


class _Plan:
    """How a backward without a graph runs for one (need, complex, kept) case of a row:
    the sources its program reads (0: an operand, 1: y, 2: a cotangent, 3: a kept value;
    with their index), the program computing the outputs that are not a cotangent itself,
    and per output of the backward row its operand index and where its value comes from
    (("g", k): cotangent k passed through, as add's VJP; ("p", j): program output j).
    `run(ctx, gs, kept)` is the runner for the case's shape (all passed through, one
    computed output of a unary row, a fused array VJP, or the general one)."""

    __slots__ = ("program", "srcs", "targets", "outs", "zeros", "array_vjp", "run", "ufunc",
                 "ufunc_args")

    def __init__(self, row: Row, need: tuple, cplx: bool, kept: bool) -> None:
        bw, srcs, targets = row.backward_row(need, cplx, kept)
        self.targets = tuple(targets)
        self.zeros = tuple(i for i, n in enumerate(need) if n and i not in self.targets)
        self.program, self.srcs, self.outs = None, (), ()
        self.array_vjp = row.array_vjp if not cplx and all(need) else None
        self.run = self._run_general
        if bw is None:
            return
        outs, computed = [], []
        for o in bw.outputs:
            src = srcs[int(o.value[1:])] if o.op == "var" else None
            if src is not None and src[0] == "g":
                outs.append(("g", src[1]))
            else:
                outs.append(("p", len(computed)))
                computed.append(o)
        self.outs = tuple(outs)
        if computed:
            prog = bw.program if len(computed) == len(bw.outputs) else \
                Program(bw.program.inputs, tuple(computed), bw.program.params)
            used = E.free_vars(computed)
            self.srcs = tuple(("xygk".index(kind), k) if f"x{j}" in used else None
                              for j, (kind, k) in enumerate(srcs))
            self.program = prog
        if self.zeros:
            return
        if not computed:
            self.run = self._run_passthrough
        elif len(computed) == 1 and len(bw.outputs) == 1 and computed[0].op in _UFUNCS \
                and all(a.op == "var" for a in computed[0].args):
            # one arithmetic primitive over the sources (neg's −ȳ, ȳ·c for a number c): the
            # backend's ufunc, as forward
            self.ufunc = _UFUNCS[computed[0].op]
            self.ufunc_args = tuple(self.srcs[int(a.value[1:])] for a in computed[0].args)
            self.run = self._run_ufunc
        elif self.array_vjp is not None:
            self.run = self._run_array_vjp
        elif len(need) == 1:
            self.run = self._run_unary

    def _arrays(self, ctx, gs, kept) -> list:
        """The program's source arrays."""
        arrays = []
        for src in self.srcs:
            if src is None:  # read only by a passed-through output: any value will do
                arrays.append(0)
                continue
            kind, k = src
            if kind == 2:
                arrays.append(gs[k]._data)
            elif kind == 1:
                arrays.append(ctx.saved_output_array())
            elif kind == 0:
                t = ctx.saved_input(k)
                arrays.append(ctx.scalars[k] if t is None else t._data)
            else:
                arrays.append(kept[k])
        return arrays

    def _run_passthrough(self, ctx, gs, kept) -> tuple:
        meta = ctx._input_meta
        if len(gs) == 1 and len(meta) == 2:  # add, sub: ȳ itself for each needed operand
            g = gs[0]
            m0, m1 = meta
            return (None if m0 is None else g, None if m1 is None else g)
        result = [None] * len(meta)
        for i, (_, k) in zip(self.targets, self.outs):
            result[i] = gs[k]
        return tuple(result)

    def _run_unary(self, ctx, gs, kept) -> tuple:
        arrays = []
        for kind, k in self.srcs:  # _arrays, inlined: the hottest runner
            if kind == 2:
                arrays.append(gs[k]._data)
            elif kind == 1:
                arrays.append(ctx.saved_output_array())
            elif kind == 0:
                arrays.append(ctx.saved_input(k)._data)
            else:
                arrays.append(kept[k])
        backend = ctx._backend
        return (_wrap_array(backend.pointwise(self.program, arrays, ctx.params), backend),)

    def _run_ufunc(self, ctx, gs, kept) -> tuple:
        args = []
        for kind, k in self.ufunc_args:
            if kind == 2:
                args.append(gs[k]._data)
            elif kind == 1:
                args.append(ctx.saved_output_array())
            elif kind == 0:
                t = ctx.saved_input(k)
                args.append(ctx.scalars[k] if t is None else t._data)
            else:
                args.append(kept[k])
        backend = ctx._backend
        fn = getattr(backend.xp, self.ufunc)
        out = backend.unary(fn, args[0]) if len(args) == 1 else backend.binary(fn, *args)
        r = _wrap_array(out, backend)
        if len(ctx._input_meta) == 1:
            return (r,)
        result = [None] * len(ctx._input_meta)
        result[self.targets[0]] = r
        return tuple(result)

    def _run_array_vjp(self, ctx, gs, kept) -> tuple:
        backend = ctx._backend
        if len(ctx._input_meta) == 2:
            out = self.array_vjp(backend, gs[0]._data, ctx.saved_input(0)._data,
                                 ctx.saved_input(1)._data)
        else:
            out = self.array_vjp(backend, gs[0]._data,
                                 *[ctx.saved_input(i)._data for i in range(len(ctx._edges))])
        if out is None:
            return self._run_general(ctx, gs, kept)
        return tuple([_wrap_array(o, backend) for o in out])

    def _run_general(self, ctx, gs, kept) -> tuple:
        backend = ctx._backend
        meta = ctx._input_meta
        computed = ()
        if self.program is not None:
            computed = backend.pointwise(self.program, self._arrays(ctx, gs, kept), ctx.params)
            if type(computed) is not tuple:
                computed = (computed,)
        result = [None] * len(meta)
        for i, (kind, k) in zip(self.targets, self.outs):
            result[i] = gs[k] if kind == "g" else _wrap_array(computed[k], backend)
        for i in self.zeros:  # no dependence: a zero gradient, as in PyTorch
            result[i] = _zeros_like_input(ctx, i)
        return tuple(result)


class Pointwise(Op):
    """y = row(x0, x1, ...; params) elementwise, with broadcasting; x̄ᵢ = sum_to(VJP row),
    the row's hand-written or derived VJP (see the module docstring), summed to xᵢ's shape
    by the engine. Each row runs through its own subclass (`Row.op`, `Row.apply`);
    `Pointwise.apply(*operands, row=row, params=...)` runs any row as well; `out=` hands
    forward a result already computed (gpugrad.fuse: a row kernel's epilogue), so only the
    node is recorded."""

    row: Row  # the row of a row's subclass
    broadcast_grads = True  # the VJP rows give x̄ᵢ in the output's shape

    @staticmethod
    def forward(ctx, *arrays, row=None, params=(), out=None):
        if row is None:
            row = ctx.row
        else:
            ctx.row = row
            ctx._save_in = row.saved_inputs
            ctx._save_out = _OUT0 if row.saves_output else ()
        if row.saved_inputs:  # a number operand's value, for backward
            if row.saves_all:
                ctx.scalars = arrays
            else:
                for a in arrays:
                    if type(a) in _PY:
                        ctx.scalars = tuple(v if type(v) in _PY else None for v in arrays)
                        break
        if out is not None:  # computed already: the epilogue of a row kernel (gpugrad.fuse)
            if params:
                ctx.params = params
            return out
        backend = ctx._backend
        try:
            uf = row.ufunc
            if uf is not None:
                if len(arrays) == 2:
                    return backend.binary(getattr(backend.xp, uf), arrays[0], arrays[1])
                return backend.unary(getattr(backend.xp, uf), arrays[0])
            if params:
                ctx.params = params
            if row.keep and backend.keeps_intermediates:
                out = backend.pointwise(row.program_keep, arrays, params)
                ctx.kept = out[1:]
                return out[0]
            return backend.pointwise(row.program, arrays, params)
        except ValueError as e:
            shapes = [getattr(a, "shape", ()) for a in arrays]
            if "broadcast" in str(e):
                raise broadcast_error(row.label, *shapes) from None
            raise

    @staticmethod
    def backward(ctx, *gs):
        row = ctx.row
        need = _need(ctx._edges)
        # complex: a complex cotangent, or (rows whose output can be real for a complex
        # operand, like abs) a complex operand
        if len(gs) == 1:
            cplx = gs[0]._data.dtype.kind == "c"
        else:
            cplx = False
            for g in gs:
                if g is not None and g._data.dtype.kind == "c":
                    cplx = True
        if not cplx and row.real_from_complex:
            for m in ctx._input_meta:
                if m is not None and m[1].kind == "c":
                    cplx = True
        if not _grad_state.enabled:  # nothing to record: run the backward on the arrays
            kept = ctx.kept
            key = (need, cplx, kept is not None)
            plan = row._plans.get(key)
            if plan is None:
                plan = row._plans[key] = _Plan(row, need, cplx, kept is not None)
            return plan.run(ctx, gs, kept)
        bw, srcs, targets = row.backward_row(need, cplx, False)
        result = [None] * len(need)
        if bw is not None:  # create_graph: the backward is a node of its own
            ins = []
            for kind, k in srcs:
                if kind == "x":
                    t = ctx.saved_input(k)
                    ins.append(ctx.scalars[k] if t is None else t)
                elif kind == "y":
                    ins.append(ctx.saved_output)
                else:
                    ins.append(gs[k])
            res = bw.apply(*ins, params=ctx.params) if ctx.params else bw.apply(*ins)
            if type(res) is not tuple:
                res = (res,)
            for i, r in zip(targets, res):
                result[i] = r
        for i, n in enumerate(need):
            if n and result[i] is None:
                result[i] = _zeros_like_input(ctx, i)
        return tuple(result)

    fusable = "pointwise"  # connected rows' backward runs as one region (engine.py)

    @classmethod
    def fused_backward(cls, region, grads):
        """A region of rows' backward (see `FusedRegion` in autograd/engine.py) as one
        program: the rows' VJP expressions composed (each intermediate cotangent
        substituted into its producer's VJP), the contributions to one input summed in the
        program (a broadcast input's sum is then reduced once, by the engine), run by one
        `backend.pointwise` call (one kernel on CUDA, one blocked pass on the CPU).
        Returns one gradient per edge of the region (None on an edge whose contribution
        another edge carries), or None where the region cannot run fused (the engine then
        runs its nodes one by one)."""
        return _fused_backward(region, grads)

    kept = None  # values of the row's `keep` expressions, where forward kept them
    params = ()  # the row's scalar parameters

    def name(self) -> str:
        return _class_name(self.row.label) + "Backward"


def _need(edges) -> tuple:
    """Which operands need a gradient (an edge leads on from them)."""
    if len(edges) == 1:
        return _NEED1
    if len(edges) == 2:
        return (edges[0] is not None, edges[1] is not None)
    return tuple([e is not None for e in edges])


def _zeros_like_input(ctx, i: int):
    shape, dtype = ctx._input_meta[i]
    return _wrap_array(ctx._backend.xp.zeros(shape, dtype=dtype), ctx._backend)


def _class_name(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


_OUT0 = (0,)
_NEED1 = (True,)
# Arithmetic primitives and the ufunc computing each (see Row.ufunc).
_REAL_OF_COMPLEX = ("abs", "real")  # primitives with a real value for a complex operand
_ARITHMETIC = frozenset({"add", "sub", "mul", "div", "neg", "where", "max", "min", "abs",
                         "lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not", "real",
                         "conj", "sgn"})
_UFUNCS = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "true_divide",
           "neg": "negative"}


# --- fused backward of a region of rows (Pointwise.fused_backward) ------------------------
# Counts of fused backward runs (regions and the nodes they held), read by tests and
# profiling: a fused region is one `backend.pointwise` call instead of one per node.
FUSION_STATS = {"regions": 0, "nodes": 0}
_FUSED: dict = {}  # structural key -> _FusedPlan (or None: this structure runs unfused)
_FUSED_MAX = 2048  # cached plans kept at most (the cache is cleared when full)
_PROGRAM_MAX_NODES = 1500  # a larger composed program runs unfused


class _FusedPlan:
    """A composed region backward: `program` over the source slots `ins` (slot 0: the
    region's cotangent; then saved operands, outputs, kept values and numbers, each array
    once), and per edge of the region where its gradient comes from: ("p", k) program
    output k, ("a", slot) a source passed through, or None (summed into another edge)."""

    __slots__ = ("program", "ins", "outs")

    def __init__(self, program, ins: tuple, outs: tuple) -> None:
        self.program, self.ins, self.outs = program, ins, outs


class _Case:
    """One row's part in fused regions: the row, which operands need a gradient, whether
    it runs complex and reads kept values, and the sources its VJP reads (`Row.fuse_info`),
    under one small int `code` that stands for all of it in a region's key."""

    __slots__ = ("code", "row", "need", "cplx", "kept", "srcs")


_CASES: list = []  # _Case by code
_CPLX_BIT, _KEPT_BIT = 1 << 30, 1 << 31  # a case's mask; bits 0-29: operands needing grads
_CASES_LOCK = threading.Lock()


def _new_case(row, mask: int, n_in: int) -> _Case:
    """The `_Case` of `row` for `mask` (bit i: operand i needs a gradient; _CPLX_BIT:
    complex; _KEPT_BIT: kept values), made once and cached on the row."""
    case = _Case()
    case.row = row
    case.need = tuple(bool(mask >> i & 1) for i in range(n_in))
    case.cplx = bool(mask & _CPLX_BIT)
    case.kept = bool(mask & _KEPT_BIT)
    case.srcs = row.fuse_info(case.need, case.cplx, case.kept)[1]
    with _CASES_LOCK:
        case.code = len(_CASES)
        _CASES.append(case)
    row._cases[mask] = case
    return case


def _fused_backward(region, grads):
    nodes = region.nodes
    root = nodes[0]
    gdata = grads[0]._data
    shape, dtype = root._output_meta[0]
    if gdata.dtype != dtype or gdata.shape != shape:
        return None
    backend = root._backend
    arrays = [gdata]
    ids = {id(gdata): 0}
    # where each array was made, for recomputation: the node (its first output), (node,
    # output nr) or id(leaf) -> slot of the array
    made = {}
    # The region's structure as one flat tuple (the plan cache's key, parsed back by
    # `_parse_key` on a miss): the node count; per node its case's code (row, need mask,
    # complex flag, whether it kept values: a `_Case`) and the slot each VJP source reads
    # (-1: its cotangent); per node the slot of each operand and of its output (-1: not
    # among the arrays); the links, as ints; per region edge the first edge into the same
    # input; the slot count; whether the backend keeps intermediates. All ints: cheap to
    # hash and compare.
    key = [len(nodes)]
    params = []
    complex_ = _CPLX_BIT if dtype.kind == "c" else 0
    for n in nodes:
        row = n.row
        edges = n._edges
        if len(edges) == 1:
            mask = 1
        elif len(edges) == 2:
            mask = (edges[0] is not None) | (edges[1] is not None) << 1
        else:
            mask = 0
            for i, e in enumerate(edges):
                if e is not None:
                    mask |= 1 << i
        mask |= complex_
        if not complex_ and row.real_from_complex:
            for m in n._input_meta:
                if m is not None and m[1].kind == "c":
                    mask |= _CPLX_BIT
        kept = n.kept
        if kept is not None:
            mask |= _KEPT_BIT
        case = row._cases.get(mask) or _new_case(row, mask, len(edges))
        key.append(case.code)
        for kind, i in case.srcs:
            if kind == "g":
                key.append(-1)
                continue
            if kind == "x":  # n.saved_input(i), inlined (it raises what this cannot read)
                entry = None if n._freed else n._saved[i]
                if entry is None:
                    if n._freed:
                        n.saved_input(i)
                    a = n.scalars[i]  # a number operand
                else:
                    t = entry[1]
                    v = t._version
                    if (0 if v is None else v.value) != entry[2]:
                        n.saved_input(i)
                    a = t._data
                    fn = t.grad_fn
                    nr = t._output_nr
                    made[id(t) if fn is None else fn if nr == 0 else (fn, nr)] = \
                        ids.get(id(a), len(arrays))
            elif kind == "y":  # n.saved_output_array(), inlined
                entry = None if n._freed else n._saved[-1]
                if entry is None or entry[1][1].value != entry[2]:
                    n.saved_output_array()  # raises the error
                a = entry[1][0]
                made[n] = ids.get(id(a), len(arrays))
            else:
                a = kept[i]
            slot = ids.get(id(a))
            if slot is None:
                slot = ids[id(a)] = len(arrays)
                arrays.append(a)
            key.append(slot)
        if n.params:
            params.extend(n.params)
    get = made.get
    for n in nodes:
        for e in n._edges:
            if e is None:
                key.append(-1)
            else:
                v, nr = e
                key.append(get(v if nr == 0 else id(v) if nr < 0 else (v, nr), -1))
        key.append(get(n, -1))
    key += [k * 64 + i for k, i in region.links[1:]]
    # contributions to one input (of the region's dtype) are summed in the program: one
    # output, and one reduction by the engine where that input was broadcast
    first: dict = {}
    p = 0
    for e, m in zip(region._edges, region._input_meta):
        key.append(first.setdefault((id(e[0]), e[1]), p) if m[1] == dtype else p)
        p += 1
    keeps = backend.keeps_intermediates
    key.append(len(arrays))
    key.append(keeps)
    key = tuple(key)
    plan = _FUSED.get(key, False)
    if plan is False:
        if len(_FUSED) >= _FUSED_MAX:
            _FUSED.clear()
        spec, operands, groups = _parse_key(key, nodes)
        plan = _FUSED[key] = _compose(spec, region.links, region.outer, groups, operands,
                                      len(arrays), keeps)
    if plan is None:
        return None
    ins = [arrays[s] for s in plan.ins]
    if plan.ins and plan.ins[0] == 0 and gdata.ndim and gdata.size > 1 and not any(gdata.strides):
        ins[0] = gdata[(slice(0, 1),) * gdata.ndim]  # a broadcast cotangent: read one value
    out = ()
    if plan.program is not None:
        out = backend.pointwise(plan.program, ins, tuple(params))
        if type(out) is not tuple:
            out = (out,)
    result = []
    for src in plan.outs:
        if src is None:
            result.append(None)
            continue
        kind, k = src
        if kind == "p":
            o = out[k]
            if o.shape != shape:  # every operand read was smaller than the region
                o = backend.xp.ascontiguousarray(backend.xp.broadcast_to(o, shape))
        else:  # the cotangent passed through (the engine copies what may be aliased)
            o = arrays[k] if k == 0 else arrays[k].copy()
        result.append(_wrap_array(o, backend))
    FUSION_STATS["regions"] += 1
    FUSION_STATS["nodes"] += len(nodes)
    return tuple(result)


def _parse_key(key: tuple, nodes) -> tuple:
    """(spec, operands, groups) from a region's flat key (see `_fused_backward`): spec,
    per node (row, need, cplx, kept, slots); operands, per node (operand slots, output
    slot); groups, per region edge."""
    n = key[0]
    pos = 1
    spec = []
    for _ in range(n):
        case = _CASES[key[pos]]
        k = len(case.srcs)
        spec.append((case.row, case.need, case.cplx, case.kept, key[pos + 1:pos + 1 + k]))
        pos += 1 + k
    operands = []
    for node in nodes:
        k = len(node._edges)
        operands.append((key[pos:pos + k], key[pos + k]))
        pos += k + 1
    return spec, operands, list(key[pos + n - 1:-2])


def _compose(spec, links, outer, groups, operands, n_slots, keeps):
    """The `_FusedPlan` of a region's structure (None where it cannot be fused): each
    node's VJP expressions with its cotangent, sources and parameters substituted.

    A forward value that the VJPs read (a saved output or operand made in the region) is
    recomputed from the region's operands where every array that takes is read by the
    region anyway: fewer passes over memory (the activation chain's backward then reads
    only x and one value of the cotangent, not σ(x) and tanh's output). On backends that
    stream (GPUs) that is always worth it; on those that keep intermediates (`keeps`,
    compute-bound CPUs) only while it adds at most one transcendental function per array
    read it saves."""
    a = [E.var(f"a{s}") for s in range(n_slots)]
    cot = {0: a[0]}
    child = {link: k for k, link in enumerate(links) if link is not None}
    per_edge = {}
    pnames = []
    for k, (row, need, cplx, kept, slots) in enumerate(spec):
        exprs, srcs = row.fuse_info(need, cplx, kept)
        sub = {}
        for (kind, i), s in zip(srcs, slots):
            sub[E.var(f"{kind}{i}")] = cot[k] if kind == "g" else a[s]
        for name in row.params:
            sub[E.param(name)] = E.param(f"{name}_{k}")
            pnames.append(f"{name}_{k}")
        for i, e in zip([i for i, n in enumerate(need) if n], exprs):
            if e is None:  # no dependence: a zero gradient, left to the unfused path
                return None
            e = E.substitute(e, sub)
            c = child.get((k, i))
            if c is not None:
                cot[c] = e
            else:
                per_edge[(k, i)] = e
    exprs = [per_edge[ki] for ki in outer]
    exprs = _recompute(spec, child, operands, exprs, a, keeps)
    for p, e in enumerate(exprs):
        if groups[p] != p:
            exprs[groups[p]] = E.add(exprs[groups[p]], e)
    outs, computed = [None] * len(exprs), []
    for p, e in enumerate(exprs):
        if groups[p] != p:
            continue
        if e.op == "var":
            outs[p] = ("a", int(e.value[1:]))
        else:
            outs[p] = ("p", len(computed))
            computed.append(e)
    program, ins = None, ()
    if computed:
        used = E.free_vars(computed)
        ins = tuple(s for s in range(n_slots) if f"a{s}" in used)
        program = Program(tuple(f"a{s}" for s in ins), tuple(computed), tuple(pnames))
        if len(program.nodes) > _PROGRAM_MAX_NODES:
            return None
    return _FusedPlan(program, ins, tuple(outs))


def _recompute(spec, child, operands, exprs, a, keeps):
    """`exprs` with forward values recomputed from the operands where that adds no read
    (see `_compose`)."""
    n = len(spec)
    value = {}
    for k in reversed(range(n)):  # a node's producers come after it
        row = spec[k][0]
        ops, out = operands[k]
        sub = {}
        for i in range(row.n_in):
            c = child.get((k, i))
            v = value.get(c) if c is not None else None
            if v is None:
                s = operands[c][1] if c is not None else ops[i]
                if s < 0:
                    break
                v = a[s]
            sub[E.var(f"x{i}")] = v
        else:
            for name in row.params:
                sub[E.param(name)] = E.param(f"{name}_{k}")
            value[k] = E.substitute(row.outputs[0], sub)
    reads = E.free_vars(exprs)
    made = {f"a{operands[k][1]}" for k in range(n) if operands[k][1] >= 0}
    outside = reads - made  # arrays read anyway
    swap = {}
    for k, v in value.items():
        out = operands[k][1]
        if out >= 0 and f"a{out}" in reads and E.free_vars([v]) <= outside:
            swap[a[out]] = v
    if not swap:
        return exprs
    new = [E.substitute(e, swap) for e in exprs]
    if keeps and _transcendental(new) - _transcendental(exprs) > \
            len(reads - E.free_vars(new)):
        return exprs
    return new


def _transcendental(exprs) -> int:
    """How many nodes of `exprs` are more than arithmetic and selection."""
    return sum(1 for e in E.topo_order(exprs) if e.args and e.op not in _ARITHMETIC)
