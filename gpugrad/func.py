"""`gg.func`: composable function transforms in the style of torch.func (vjp, grad,
jacobian). They sit above the ops (jacobian stacks rows), so they live here rather than
in gpugrad.autograd, which imports no ops."""

from __future__ import annotations

from collections.abc import Callable

from .autograd import grad as _grad
from .autograd.grad_mode import enable_grad
from .creation import zeros, zeros_like
from .ops.shape import stack
from .tensor import Tensor

__all__ = ["vjp", "grad", "jacobian"]


def _prepare(x):
    """A primal to differentiate with respect to: a fresh leaf unless it is already part of
    an outer graph (so that transforms nest)."""
    if isinstance(x, Tensor) and x.dtype.can_require_grad and not x.requires_grad:
        return x.detach().requires_grad_(True)
    return x


def vjp(fn: Callable, *primals):
    """Evaluate `fn(*primals)`; return (outputs, vjp_fn) where `vjp_fn(cotangent)` gives the
    tuple of vector-Jacobian products, one per primal (zeros where unused)."""
    xs = tuple(_prepare(p) for p in primals)
    # Keep the VJP differentiable only when a primal was already part of an outer graph.
    nested = any(isinstance(p, Tensor) and p.requires_grad for p in primals)
    with enable_grad():
        out = fn(*xs)
    outs = (out,) if isinstance(out, Tensor) else tuple(out)
    diff = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]

    def vjp_fn(*cotangents):
        cts = cotangents[0] if len(cotangents) == 1 and not isinstance(
            cotangents[0], Tensor) else cotangents
        cts = (cts,) if isinstance(cts, Tensor) else tuple(cts)
        live = [(o, c) for o, c in zip(outs, cts) if o.requires_grad]
        if not live:
            grads = (None,) * len(diff)
        else:
            grads = _grad([o for o, _ in live], diff, [c for _, c in live], retain_graph=True,
                          create_graph=nested, allow_unused=True)
        it = iter(grads)
        result = []
        for x in xs:
            if isinstance(x, Tensor) and x.requires_grad:
                g = next(it)
                result.append(zeros_like(x) if g is None else g)
            else:
                result.append(None)
        return tuple(result)

    return out, vjp_fn


def grad(fn: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """A function computing d fn / d args[argnums] for a scalar-valued `fn` (nests, so
    `grad(grad(f))` gives second derivatives)."""

    def grad_fn(*args):
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        xs = list(args)
        for i in nums:
            xs[i] = _prepare(args[i])
        with enable_grad():
            out = fn(*xs)
        aux = None
        if has_aux:
            out, aux = out
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("func.grad: fn must return a scalar Tensor, got "
                               f"{getattr(out, 'shape', type(out).__name__)}")
        inputs = [xs[i] for i in nums]
        if not out.requires_grad:
            grads = tuple(zeros_like(x) for x in inputs)
        else:
            grads = _grad(out, inputs, create_graph=True, allow_unused=True)
            grads = tuple(zeros_like(x) if g is None else g for x, g in zip(inputs, grads))
        # At the outermost level (a primal that was not already in a graph) the result is
        # a plain value; nested levels keep the graph so that an outer grad can use it.
        grads = tuple(g if isinstance(args[i], Tensor) and args[i].requires_grad else g.detach()
                      for i, g in zip(nums, grads))
        result = grads[0] if isinstance(argnums, int) else grads
        return (result, aux) if has_aux else result

    return grad_fn


def jacobian(fn: Callable, *primals, create_graph: bool = False):
    """The Jacobian of `fn` at `primals`: shape output.shape + input.shape. A Tensor for one
    input, a tuple for several (and a tuple over outputs when fn returns several)."""
    xs = tuple(_prepare(p) for p in primals)
    with enable_grad():
        out = fn(*xs)
    single_out = isinstance(out, Tensor)
    outs = (out,) if single_out else tuple(out)
    per_output = []
    for o in outs:
        rows = [[] for _ in xs]
        flat_n = o.numel()
        for m in range(flat_n):
            seed = zeros_like(o).reshape(-1)
            seed._data[m] = 1
            seed = seed.reshape(o.shape)
            if o.requires_grad:
                gs = _grad(o, xs, seed, retain_graph=True, create_graph=create_graph,
                           allow_unused=True)
            else:
                gs = (None,) * len(xs)
            for k, (x, g) in enumerate(zip(xs, gs)):
                rows[k].append(zeros_like(x) if g is None else g)
        jac = []
        for k, x in enumerate(xs):
            if flat_n:
                j = stack(rows[k], 0).reshape(tuple(o.shape) + tuple(x.shape))
            else:
                j = zeros(tuple(o.shape) + tuple(x.shape), dtype=x.dtype, device=x.device)
            jac.append(j if create_graph else j.detach())
        per_output.append(jac[0] if len(xs) == 1 else tuple(jac))
    return per_output[0] if single_out else tuple(per_output)
