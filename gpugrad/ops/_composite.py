"""Fused ops that stay differentiable: one idiom, `FusedOp`.

A fused op computes its forward and its first-order VJP on raw arrays (the backend's fused
kernels, in-place array code, no graph) and declares its *composite*: the same function
written with ordinary ops, the single definition of its math beyond first order. Backward
without `create_graph` runs the array VJP; under `create_graph=True` it differentiates the
composite (`vjp_through_composite`), so higher derivatives are exact and never written by
hand.
"""

from __future__ import annotations

from ..autograd import grad
from ..autograd.function import Op
from ..autograd.grad_mode import _state, enable_grad
from ..tensor import Tensor, _wrap_array


class Alias(Op):
    """Identity, y = x; x̄ = ȳ. A separate graph node to differentiate with respect to (see
    `vjp_through_composite`)."""

    @staticmethod
    def forward(ctx, x):
        return x[...]

    @staticmethod
    def backward(ctx, g):
        return g


class FusedOp(Op):
    """A built-in op with a fast array path and a composite definition. A subclass defines:

    - `forward(ctx, *arrays)`: the fused forward on arrays, as any `Op`; it saves (with
      `ctx.save_inputs`) every tensor input that needs a gradient, unless it overrides
      `composite_inputs`;
    - `backward_arrays(ctx, *grads)`: the first-order VJP on arrays: the output cotangents
      as arrays (None for an output without one where the op opted out of zeros) to one
      array or None per forward argument, as a tuple;
    - `composite(ctx, *inputs)`: the op written with ordinary, differentiable ops. It gets
      one value per forward argument (a Tensor for a tensor argument, None for the others:
      parameters are read from ctx) and returns the output, or the tuple of outputs.

    `backward` takes `backward_arrays` when no graph is being recorded (`create_graph=False`)
    and otherwise the VJP of `composite`, rebuilt on the saved inputs.
    """

    @staticmethod
    def backward_arrays(ctx, *grads) -> tuple:
        raise NotImplementedError(f"{type(ctx).__name__} does not define backward_arrays")

    @staticmethod
    def composite(ctx, *inputs):
        raise NotImplementedError(f"{type(ctx).__name__} does not define composite")

    def composite_inputs(self) -> tuple:
        """The values at which backward evaluates the composite, one per forward argument
        (a Tensor or None; an array is accepted for an input that needs a gradient): the
        saved inputs by default. An op that saves less may
        return any values at which the composite has the same derivatives (softmax: the log
        of its output, equal to x up to a shift per row; a linear op: zeros)."""
        return tuple(self.saved_input(k) for k in range(len(self._edges)))

    @staticmethod
    def backward(ctx, *grads):
        cls = type(ctx)
        if _state.enabled:  # create_graph=True: differentiate the definition
            return vjp_through_composite(
                ctx, grads, lambda *ins: _as_tuple(cls.composite(ctx, *ins)),
                ctx.composite_inputs())
        out = cls.backward_arrays(ctx, *[None if g is None else g._data for g in grads])
        be = ctx._backend
        return tuple([None if a is None else _wrap_array(a, be) for a in out])


def _as_tuple(out) -> tuple:
    return out if type(out) is tuple else (out,)


def vjp_through_composite(ctx, grads, rebuild, inputs=None) -> tuple:
    """A fused op's VJP as a differentiable graph: rebuild the op as `rebuild(*inputs)` (a
    tuple of outputs, matching `grads`) from `inputs`, one value per input of the op (a
    Tensor, or an array where it needs a gradient; None for a non-tensor; the saved inputs
    when not given), and take
    that graph's VJP with `autograd.grad(create_graph=True)`.

    Each input that needs a gradient enters the rebuilt graph through an `Alias` node
    whose edge is cut while that inner backward runs, so it stops there instead of walking
    (and running) the graph that produced the input; afterwards the edge is set to the
    op's own edge for that input, which connects the returned gradients to the graph that
    produced it, so they can be differentiated again with respect to it.
    """
    need = ctx.needs_input_grad
    ins = list(inputs) if inputs is not None else [ctx.saved_input(k)
                                                   for k in range(len(need))]
    be = ctx._backend
    wrt, slots, cuts = [], [], []
    with enable_grad():
        for k, t in enumerate(ins):
            data = t._data if isinstance(t, Tensor) else t
            if need[k]:
                leaf = _wrap_array(data, be)
                leaf._requires_grad = True
                a = Alias.apply(leaf)
                node = a.grad_fn
                node._edges = [None]
                cuts.append((node, ctx._edges[k]))
                ins[k] = a
                wrt.append(a)
                slots.append(k)
        try:
            outs = rebuild(*ins)
            pairs = [(o, g) for o, g in zip(outs, grads) if g is not None]
            res = grad([o for o, _ in pairs], wrt, [g for _, g in pairs], create_graph=True,
                       allow_unused=True)
        finally:
            for node, edge in cuts:
                node._edges = [edge]
    result = [None] * len(need)
    for k, r in zip(slots, res):
        result[k] = r
    return tuple(result)
