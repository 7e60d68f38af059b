"""Reverse-mode automatic differentiation: backward, grad, Function, grad modes."""

from __future__ import annotations

from collections.abc import Sequence

from .anomaly import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .function import Function, Op
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Function", "Op", "backward", "grad", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled", "gradcheck", "detect_anomaly",
           "set_detect_anomaly", "is_anomaly_enabled"]


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _root_grads(outputs: tuple, grad_outputs, create_graph: bool) -> list:
    grads = list(_as_tuple(grad_outputs)) if grad_outputs is not None else [None] * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"got {len(grads)} gradients for {len(outputs)} outputs")
    out = []
    for k, (t, g) in enumerate(zip(outputs, grads)):
        if not isinstance(t, Tensor):
            raise TypeError(f"backward: output {k} is a {type(t).__name__}, not a Tensor")
        if not t._requires_grad:
            raise RuntimeError(
                f"element {k} of tensors does not require grad and does not have a grad_fn: "
                "backward needs a tensor computed from tensors created with "
                "requires_grad=True (or call .requires_grad_() on the leaf first)")
        if g is None:
            if t._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs, but the output "
                    f"has shape {tuple(t.shape)}; pass gradient= (a tensor of that shape) to "
                    "backward(), or reduce the output first (e.g. .sum())")
            if t.dtype.is_complex:
                raise RuntimeError("grad can be implicitly created only for real scalar "
                                   "outputs; backward needs a real loss (e.g. .abs() or .real)")
            g = _wrap_array(t._backend.xp.ones(t._data.shape, dtype=t._data.dtype), t._backend)
        else:
            if not isinstance(g, Tensor):
                g = Tensor(g, dtype=t.dtype, device=t.device)
            if g._backend is not t._backend:
                raise DeviceError(f"backward: gradient is on {g.device} but the output is on "
                                  f"{t.device}")
            if g.shape != t.shape:
                raise RuntimeError(f"backward: gradient has shape {tuple(g.shape)} but the "
                                   f"output has shape {tuple(t.shape)}; they must match")
            if g._data.dtype != t._data.dtype:
                g = g.to(t.dtype)
            if not create_graph:
                g = g.detach()
        out.append(g)
    return out


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs=None) -> None:
    """Accumulate d(tensors)/d(leaf) into every leaf's `.grad` (see Tensor.backward)."""
    outputs = _as_tuple(tensors)
    grads = _root_grads(outputs, grad_tensors, create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = _as_tuple(inputs)
        result = run_backward(outputs, grads, retain_graph, create_graph, inputs,
                              allow_unused=True)
        for t, g in zip(inputs, result):
            if g is not None:
                _accumulate_into_leaf(t, g, create_graph, {})
        return
    run_backward(outputs, grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False,
         materialize_grads: bool = False) -> tuple:
    """The gradients of `outputs` with respect to `inputs` (a tuple, one per input),
    without touching any `.grad`. With `create_graph=True` the result is differentiable."""
    outs = _as_tuple(outputs)
    ins = _as_tuple(inputs)
    if not isinstance(inputs, Sequence) and not isinstance(inputs, Tensor):
        ins = tuple(inputs)
    for k, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t._requires_grad:
            raise RuntimeError(f"grad: input {k} does not require grad; every input must be a "
                               "tensor with requires_grad=True")
    grads = _root_grads(outs, grad_outputs, create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outs, grads, retain_graph, create_graph, ins,
                          allow_unused=allow_unused or materialize_grads)
    if materialize_grads:
        from ..creation import zeros_like

        result = tuple(zeros_like(t) if g is None else g for t, g in zip(ins, result))
    return result


from ..errors import DeviceError  # noqa: E402
from ..tensor import Tensor, _wrap_array  # noqa: E402
from .engine import _accumulate_into_leaf, run_backward  # noqa: E402
from .gradcheck import gradcheck  # noqa: E402
