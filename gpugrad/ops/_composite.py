"""The differentiable backward of a fused op: the VJP of the same computation written as
ordinary ops. Fused ops compute their VJP on raw arrays when no graph is recorded; under
`create_graph=True` they rebuild their composite graph instead, so that higher
derivatives are exact and the composite remains the definition.
"""

from __future__ import annotations

from ..autograd.function import Op
from ..autograd.grad_mode import enable_grad


class Alias(Op):
    """Identity, y = x; x̄ = ȳ. A separate graph node to differentiate with respect to (see
    `vjp_through_composite`)."""

    @staticmethod
    def forward(ctx, x):
        return x[...]

    @staticmethod
    def backward(ctx, g):
        return g


def vjp_through_composite(ctx, grads, rebuild, inputs=None) -> tuple:
    """A fused op's VJP as a differentiable graph: rebuild the op from its saved inputs
    (or `inputs`, one entry per input of the op, None for a non-tensor) as
    `rebuild(*inputs)` (a tuple of outputs, matching `grads`), and take that graph's VJP
    with `autograd.grad(create_graph=True)`.

    The inputs enter the rebuilt graph through `Alias` nodes whose edges are cut while
    that inner backward runs, so it stops at them instead of walking (and running) the
    graph that produced the inputs; restored afterwards, the edges connect the returned
    gradients to that graph, so they can be differentiated again with respect to it.
    """
    from ..autograd import grad

    need = ctx.needs_input_grad
    ins = list(inputs) if inputs is not None else [ctx.saved_input(k)
                                                   for k in range(len(need))]
    wrt, slots, cuts = [], [], []
    with enable_grad():
        for k, t in enumerate(ins):
            if need[k]:
                a = Alias.apply(t)
                node = a.grad_fn
                cuts.append((node, node._edges))
                node._edges = [None]
                ins[k] = a
                wrt.append(a)
                slots.append(k)
        try:
            outs = rebuild(*ins)
            pairs = [(o, g) for o, g in zip(outs, grads) if g is not None]
            res = grad([o for o, _ in pairs], wrt, [g for _, g in pairs], create_graph=True,
                       allow_unused=True)
        finally:
            for node, edges in cuts:
                node._edges = edges
    result = [None] * len(need)
    for k, r in zip(slots, res):
        result[k] = r
    return tuple(result)
