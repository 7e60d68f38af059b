"""The reverse-mode engine: walks the recorded graph from the outputs to the leaves.

The walk is iterative (no recursion, so a 100,000-op chain is fine): first count, for
every reachable node, how many edges lead into it; then run nodes whose count has
dropped to zero, summing the cotangents that reach each node's outputs from several
paths. A leaf's gradient is accumulated into `.grad` (after its hooks) as soon as the
last edge into it has delivered.

Without create_graph, connected nodes of one fusable family (the pointwise ops) whose
intermediate gradients nothing else sees run as one region: when a node of such a family
is about to run, the engine grows its region over the producers that qualify, and the
family's `fused_backward` runs it as one program (one kernel on CUDA, one blocked pass on
the CPU). To the walk a region is one node whose edges are the region's edges to the rest
of the graph.
"""

from __future__ import annotations

import threading

from ..backend import trace as _trace
from .function import Function
from .grad_mode import _state


def _dependencies(roots, reach=None, leaf_edges: dict | None = None) -> dict:
    """Number of edges into each node reachable from `roots` (only within `reach`, the
    nodes that matter for `autograd.grad`, when given); `leaf_edges`, if given, receives
    the number of edges into each leaf, by id."""
    deps: dict = {}
    get = deps.get
    stack = list(roots)
    rootset = set(roots)
    while stack:
        node = stack.pop()
        for edge in node._edges:
            if edge is None:
                continue
            nxt, nr = edge
            if nr < 0:  # a leaf
                if leaf_edges is not None:
                    k = id(nxt)
                    leaf_edges[k] = leaf_edges.get(k, 0) + 1
                continue
            if reach is not None and nxt not in reach:
                continue
            c = get(nxt)
            if c is None:
                deps[nxt] = 1
                if nxt not in rootset:
                    stack.append(nxt)
            else:
                deps[nxt] = c + 1
    return deps


def _nodes_to_run(roots, leaf_inputs, input_nodes) -> set:
    """For `autograd.grad`: the nodes whose backward lies on a path to an input (a leaf
    input or an input's grad_fn). Nothing upstream of the inputs runs, as in PyTorch."""
    leads: dict = {}
    stack = [(n, False) for n in roots]
    while stack:
        node, expanded = stack.pop()
        if node in leads:
            continue
        if not expanded:
            stack.append((node, True))
            for edge in node._edges:
                if edge is not None and isinstance(edge[0], Function) and edge[0] not in leads:
                    stack.append((edge[0], False))
            continue
        result = False
        for edge in node._edges:
            if edge is None:
                continue
            nxt, nr = edge
            if nr < 0:
                result = result or id(nxt) in leaf_inputs
            else:
                result = result or nxt in input_nodes or leads.get(nxt, False)
        leads[node] = result
    return {n for n, on_path in leads.items() if on_path}


def _accumulate(a, b):
    return b if a is None else a + b


def _check_grad(node, i: int, g, meta):
    """Cast a returned gradient to its input's dtype (the real part of a complex gradient
    for a real input) and verify its shape; a node with `broadcast_grads` may return it in
    a shape that its input's broadcasts to, which is summed down here (differentiably,
    under create_graph)."""
    shape, dtype = meta
    if not isinstance(g, Tensor):
        raise TypeError(f"{node.name()}.backward returned {type(g).__name__} for input {i}; "
                        "expected a Tensor or None")
    if g._data.shape != shape:
        reduced = None
        if node.broadcast_grads:
            try:
                reduced = g.sum_to_size(shape)
            except RuntimeError:  # not a broadcast of the input's shape
                pass
        if reduced is not None:
            g = reduced
        elif g._data.size == 1 and len(shape) == 0:
            g = g.reshape(())
        else:
            raise RuntimeError(
                f"{node.name()} returned an invalid gradient at index {i}: got shape "
                f"{tuple(g._data.shape)} but expected shape {tuple(shape)}")
    if g._data.dtype != dtype:
        # complex → real keeps the real part (a dtype rule of the cast): a real input only
        # moves along the real axis (PyTorch's rule)
        g = g.to(from_numpy_dtype(dtype))
    return g


# Per thread, one list of pending end-of-backward callbacks per backward in progress (a
# hook may run a backward of its own, which finishes first and runs only its own callbacks).
_callbacks = threading.local()


def _callback_lists() -> list:
    lists = getattr(_callbacks, "lists", None)
    if lists is None:
        lists = _callbacks.lists = []
    return lists


def queue_callback(callback) -> None:
    """Run `callback()` once the backward that is running now has finished.

    Call it from a hook during backward (as PyTorch's `queue_callback`): the callback runs
    after every leaf's `.grad` has been accumulated and before `backward()` returns, in the
    order queued; a callback may queue further callbacks. Data-parallel training uses it to
    wait for its gradient all-reduces. If the backward raises, its callbacks are dropped.
    """
    lists = _callback_lists()
    if not lists:
        raise RuntimeError("queue_callback() was called outside backward; call it from a "
                           "tensor hook while backward() is running")
    lists[-1].append(callback)


def run_backward(roots, root_grads, retain_graph: bool, create_graph: bool,
                 inputs=None, allow_unused: bool = False):
    """Backpropagate `root_grads` from `roots`, then run the callbacks queued meanwhile.

    With `inputs=None`, gradients accumulate into the `.grad` of the leaves. Otherwise
    nothing is accumulated and the gradients of `inputs` are returned, in order.
    """
    callbacks: list = []
    lists = _callback_lists()
    lists.append(callbacks)
    # A running profile puts the whole pass in the backward phase: the gradient sums
    # between nodes and into .grad run outside every node's backward.
    rec = _trace.active
    depth = rec.enter_phase("backward") if rec is not None else 0
    try:
        result = _walk_graph(roots, root_grads, retain_graph, create_graph, inputs,
                             allow_unused)
        while callbacks:
            callbacks.pop(0)()
    finally:
        lists.pop()
        if rec is not None:
            rec.leave_phase(depth)
    return result


def _walk_graph(roots, root_grads, retain_graph: bool, create_graph: bool, inputs,
                allow_unused: bool):
    capture_leaf: dict = {}
    capture_node: dict = {}
    if inputs is not None:
        for k, t in enumerate(inputs):
            if t.grad_fn is None:
                capture_leaf.setdefault(id(t), []).append(k)
            else:
                capture_node.setdefault((id(t.grad_fn), t._output_nr), []).append(k)
    captured = [None] * (len(inputs) if inputs is not None else 0)

    buffers: dict = {}
    leaves: dict = {}  # id(leaf) -> [leaf, grad]
    root_nodes = []
    for t, g in zip(roots, root_grads):
        fn = t.grad_fn
        if fn is None:
            slot = leaves.setdefault(id(t), [t, None])
            slot[1] = _accumulate(slot[1], g)
            continue
        buf = buffers.get(fn)
        if buf is None:
            buf = buffers[fn] = [None] * len(fn._output_meta)
            root_nodes.append(fn)
        buf[t._output_nr] = _accumulate(buf[t._output_nr], g)

    run = reach = None
    if inputs is not None:
        input_nodes = {t.grad_fn for t in inputs if t.grad_fn is not None}
        run = _nodes_to_run(root_nodes, capture_leaf, input_nodes)
        reach = run | input_nodes
        root_nodes = [n for n in root_nodes if n in reach]
    # Without `inputs`, each leaf's gradient is final once its last edge has delivered:
    # its hooks run then, while the rest of backward goes on (data parallelism starts
    # reducing a bucket of gradients there), and it is accumulated into .grad.
    leaf_left: dict | None = {} if inputs is None else None
    deps = _dependencies(root_nodes if run is None else [n for n in root_nodes if n in run],
                         reach, leaf_left)
    ready = [n for n in root_nodes if n not in deps]
    # Fusion regions grow from a node as it runs, over producers whose gradient only it
    # makes: that needs each node's count of edges before the walk decrements it.
    fusion = (dict(deps), set(root_nodes), run, capture_node) \
        if not create_graph and not _anomaly.enabled else None
    # A gradient that a node passed through unchanged (or a user's gradient) may be aliased
    # elsewhere: such arrays are copied before becoming a leaf's .grad.
    shared: dict = {id(g._data): g._data for g in root_grads}
    # ids of gradient arrays that something else may hold (an id reused after its array
    # was freed only costs an in-place accumulation, never a wrong sum)
    aliased = set(shared)

    rec = _trace.active  # a running profile records each node's backward
    prev_mode = _state.enabled
    _state.enabled = create_graph
    try:
        while ready:
            node = ready.pop()
            grads = buffers.pop(node, None)
            if grads is None:
                in_grads = ()
            else:
                if node._hooks:
                    _run_node_hooks(node, grads)
                if capture_node:
                    for nr, g in enumerate(grads):
                        for k in capture_node.get((id(node), nr), ()):
                            captured[k] = g
                if run is not None and node not in run:
                    continue  # an input's node with nothing to compute upstream of it
                for g in grads:
                    if g is None:
                        _materialize(node, grads)
                        break
                region = None
                if fusion is not None and node.fusable is not None:
                    region = _fusion_region(node, *fusion)
                if region is not None:
                    in_grads = (type(node).fused_backward(region, grads) if rec is None
                                else rec.backward(region, grads, type(node).fused_backward))
                    if in_grads is not None:
                        node = region  # its edges are the region's edges out
                    else:  # the family declined: its nodes run one by one
                        in_grads = (type(node).backward(node, *grads) if rec is None
                                    else rec.backward(node, grads))
                else:
                    in_grads = (type(node).backward(node, *grads) if rec is None
                                else rec.backward(node, grads))
                if type(in_grads) is not tuple:
                    in_grads = (in_grads,)
                if len(in_grads) != len(node._edges):
                    in_grads = _check_grad_count(node, in_grads, len(node._edges))
            edges = node._edges
            if _anomaly.enabled and in_grads:
                check_gradients(node, in_grads)
            if not retain_graph:
                node._release()
            for i, edge in enumerate(edges):
                if edge is None:
                    continue
                g = in_grads[i] if in_grads else None
                if g is not None:
                    shape, dtype = node._input_meta[i]
                    try:
                        data = g._data
                        ok = data.shape == shape and (data.dtype is dtype or data.dtype == dtype)
                    except AttributeError:
                        ok = False
                    if not ok:
                        g = _check_grad(node, i, g, node._input_meta[i])
                nxt, nr = edge
                if reach is not None and (id(nxt) not in capture_leaf if nr < 0
                                          else nxt not in reach):
                    continue  # leads to no input of autograd.grad
                # An array that may be seen elsewhere is marked: it is never summed into.
                if nr < 0:  # a leaf
                    if g is not None:
                        if not node._raw or _aliased(g, grads, in_grads, i):
                            shared[id(g._data)] = g._data
                            aliased.add(id(g._data))
                        slot = leaves.get(id(nxt))
                        if slot is None:
                            leaves[id(nxt)] = [nxt, g]
                        else:
                            slot[1] = _sum_grads(slot[1], g, aliased, create_graph)
                    if leaf_left is not None:
                        left = leaf_left[id(nxt)] - 1
                        leaf_left[id(nxt)] = left
                        if left == 0 and id(nxt) in leaves:
                            _finish_leaf(*leaves.pop(id(nxt)), create_graph, shared)
                    continue
                if g is not None:
                    buf = buffers.get(nxt)
                    if buf is None:
                        buf = buffers[nxt] = [None] * len(nxt._output_meta)
                    if buf[nr] is not None:
                        buf[nr] = _sum_grads(buf[nr], g, aliased, create_graph)
                    else:
                        # Only a slot with more contributions to come is summed into.
                        if deps[nxt] > 1 and (not node._raw
                                              or _aliased(g, grads, in_grads, i)):
                            aliased.add(id(g._data))
                        buf[nr] = g
                left = deps[nxt] - 1
                deps[nxt] = left
                if left == 0:
                    ready.append(nxt)

        for leaf, g in leaves.values():  # roots that are leaves, or autograd.grad's
            if inputs is None:
                _finish_leaf(leaf, g, create_graph, shared)
                continue
            g = _run_leaf_hooks(leaf, g)
            for k in capture_leaf.get(id(leaf), ()):
                captured[k] = g
    finally:
        _state.enabled = prev_mode

    if inputs is not None:
        for k, g in enumerate(captured):
            if g is None and not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {k}, shape "
                    f"{tuple(inputs[k].shape)}) appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior.")
        return tuple(captured)
    return None


# The most nodes one fused region holds: longer chains are split (bounds the size of a
# generated program and its compile time on CUDA).
REGION_MAX_NODES = 32


class FusedRegion:
    """Nodes of one fusable family whose backward runs as one: `nodes` in walk order (the
    region's root first), `links[k]` = (index of the node consuming node k's output, the
    argument index there) for k ≥ 1. To the engine it is one node: `_edges` and
    `_input_meta` are the region's edges to the rest of the graph (those of the nodes
    that are not links, in node order), `outer[j]` = (node index, argument index) of
    edge j; the family's `fused_backward(region, grads)` returns one gradient (or None)
    per edge, or None to run the nodes one by one."""

    __slots__ = ("nodes", "links", "_edges", "_input_meta", "outer")
    _raw = True
    _hooks = None
    broadcast_grads = True

    def __init__(self, nodes: list, links: list, edges: list, meta: list,
                 outer: list) -> None:
        self.nodes, self.links = nodes, links
        self._edges, self._input_meta, self.outer = edges, meta, outer

    def name(self) -> str:
        return "Fused(" + ", ".join(n.name() for n in self.nodes) + ")"

    @property
    def _backend(self):
        return self.nodes[0]._backend

    def _release(self) -> None:
        for n in self.nodes:
            n._release()


def _fusion_region(head, deps: dict, roots: set, run, capture_node: dict):
    """The fused region rooted at `head`, which is about to run its backward (None when
    no producer joins it).

    A producer v joins the region of its consumer u (from u's first output) when both
    are of one fusable family, with one output each of the same shape and dtype, and v's
    gradient is seen by nothing else: exactly one edge led into it (`deps`: the counts
    before the walk), it is no root of the backward, it has no hooks (retain_grad is one)
    and `autograd.grad` does not capture its output. The regions are trees (a node's
    gradient has one consumer) of at most REGION_MAX_NODES nodes; a producer left out
    for the bound runs as the head of a region of its own."""
    fam = head.fusable
    if len(head._output_meta) != 1 or (run is not None and head not in run):
        return None
    nodes, inner = [head], [None]
    edges, meta, outer = [], [], []
    get = deps.get
    k = 0
    while k < len(nodes):
        u = nodes[k]
        shape, dtype = u._output_meta[0]
        i = -1
        for e in u._edges:
            i += 1
            if e is None:
                continue
            v, nr = e
            if nr == 0 and v.fusable is fam and get(v) == 1 and v not in roots \
                    and len(nodes) < REGION_MAX_NODES:
                vms = v._output_meta
                if len(vms) == 1 and vms[0][0] == shape \
                        and (vms[0][1] is dtype or vms[0][1] == dtype) \
                        and not (v._hooks and any(v._hooks.values())) \
                        and (run is None or v in run) \
                        and not (capture_node and (id(v), 0) in capture_node):
                    nodes.append(v)
                    inner.append((k, i))
                    continue
            edges.append(e)  # the region's edges out: those of no link
            meta.append(u._input_meta[i])
            outer.append((k, i))
        k += 1
    if len(nodes) == 1:
        return None
    return FusedRegion(nodes, inner, edges, meta, outer)


def _check_grad_count(node, in_grads: tuple, n: int) -> tuple:
    """PyTorch's rule: one gradient per forward argument; extra trailing Nones are allowed."""
    if len(in_grads) < n or any(g is not None for g in in_grads[n:]):
        raise RuntimeError(f"function {node.name()} returned an incorrect number of gradients "
                           f"(expected {n}, got {len(in_grads)})")
    return in_grads[:n]


def _hook_result(fn, old, new):
    """A hook's replacement gradient must keep the gradient's shape, dtype and device."""
    if not isinstance(new, Tensor):
        raise TypeError(f"hook '{getattr(fn, '__name__', fn)}' returned "
                        f"{type(new).__name__}; a gradient hook must return a Tensor or None")
    if new._data.shape != old._data.shape:
        raise RuntimeError(f"hook '{getattr(fn, '__name__', fn)}' has changed the size of value "
                           f"(was {tuple(old.shape)} got {tuple(new.shape)})")
    if new._data.dtype != old._data.dtype:
        raise RuntimeError(f"hook '{getattr(fn, '__name__', fn)}' has changed the type of value "
                           f"(was {old.dtype} got {new.dtype})")
    if new._backend is not old._backend:
        raise RuntimeError(f"hook '{getattr(fn, '__name__', fn)}' has changed the device of "
                           f"value (was {old.device} got {new.device})")
    return new


def _run_leaf_hooks(leaf, g):
    """The leaf's tensor hooks, in order; each may replace the gradient."""
    for fn in leaf._hooks or ():
        r = fn(g)
        if r is not None:
            g = _hook_result(fn, g, r)
    return g


def _finish_leaf(leaf, g, create_graph: bool, shared: dict) -> None:
    """A leaf's complete gradient: its hooks, then accumulation into `.grad`."""
    _accumulate_into_leaf(leaf, _run_leaf_hooks(leaf, g), create_graph, shared)


# Backward passes in several threads may reach the same leaf: its read-add-write of
# `.grad` holds one of these locks (picked by the leaf's id), as PyTorch's AccumulateGrad
# holds a mutex, so no contribution is lost. Striped: no per-tensor lock to create.
_LEAF_LOCKS = tuple(threading.Lock() for _ in range(64))


def _accumulate_into_leaf(leaf, g, create_graph: bool, shared: dict) -> None:
    with _LEAF_LOCKS[(id(leaf) >> 4) % 64]:
        _accumulate_locked(leaf, g, create_graph, shared)


def _accumulate_locked(leaf, g, create_graph: bool, shared: dict) -> None:
    old = leaf.grad
    if old is None:
        if not create_graph:
            data = g._data
            base = data.base
            # Copy only what may be aliased: a gradient passed through unchanged, or a view
            # of one; a view of a fresh result (e.g. a transposed matmul output) is ours.
            if id(data) in shared or (base is not None and id(base) in shared):
                data = data.copy()
                base = None
            shared[id(data)] = data
            if base is not None:
                shared[id(base)] = base
            g = _wrap_array(data, g._backend)
        leaf.grad = g
    elif create_graph or old._requires_grad:
        leaf.grad = old + g
    else:
        xp = old._backend.xp
        xp.add(old._data, g._data, out=old._data)
        if old._version is not None:
            old._version.value += 1


def _aliased(g, grads, in_grads, i: int) -> bool:
    """Whether gradient `g` (for input i) may share its array with another gradient: an
    upstream gradient passed through, or the same array returned for another input."""
    data = g._data
    for x in grads:
        if x is not None and (g is x or data is x._data):
            return True
    for k, x in enumerate(in_grads):
        if k != i and x is not None and x._data is data:
            return True
    return False


def _sum_grads(acc, g, aliased: set, create_graph: bool):
    """acc + g. Without a graph to record, the sum is written into acc's array when that
    array is a fresh result nothing else holds (not a view, not passed through): on large
    tensors this saves an allocation and a pass through memory per extra contribution."""
    if not create_graph:
        a, b = acc._data, g._data
        if (id(a) not in aliased and getattr(a, "base", 0) is None and a is not b
                and a.shape == b.shape and a.dtype == b.dtype):
            acc._backend.add_(a, b)
            return acc
    return acc + g


def _materialize(node, grads: list) -> None:
    """Zeros for outputs that received no gradient (unless the node opted out)."""
    if node.materialize_grads:
        for nr, g in enumerate(grads):
            if g is None:
                shape, dtype = node._output_meta[nr]
                grads[nr] = _zeros(node._backend, shape, dtype)


def _run_node_hooks(node, grads: list) -> None:
    """Tensor hooks (and retain_grad) registered on this node's outputs."""
    for nr, fns in node._hooks.items():
        for fn in fns:
            if grads[nr] is not None:
                r = fn(grads[nr])
                if r is not None:
                    grads[nr] = _hook_result(fn, grads[nr], r)


def _zeros(backend, shape, dtype):
    return _wrap_array(backend.xp.zeros(shape, dtype=dtype), backend)


from .._dtype import from_numpy_dtype  # noqa: E402
from ..tensor import Tensor, _wrap_array  # noqa: E402
from .anomaly import _state as _anomaly  # noqa: E402
from .anomaly import check_gradients  # noqa: E402
