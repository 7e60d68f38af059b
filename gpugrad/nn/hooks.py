"""Module hooks as in PyTorch: forward pre-hooks, forward hooks, full backward hooks and
backward pre-hooks, each registered with a `RemovableHandle`.

Backward hooks wrap the module's tensor inputs and outputs in identity autograd nodes:
the node after the outputs sees the gradients of the outputs (grad_output) and the node
before the inputs sees the gradients of the inputs (grad_input), where the hooks run and
may replace them.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

from ..autograd import Function
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor

__all__ = ["RemovableHandle", "call_with_hooks", "HOOK_KINDS"]

#: The registries a module may hold, by kind of hook.
HOOK_KINDS = ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks",
              "_backward_pre_hooks")

_ids = itertools.count()


class RemovableHandle:
    """What a `register_*_hook` returns: `remove()` unregisters the hook (also on leaving
    a `with` block)."""

    def __init__(self, registry: OrderedDict, extra: dict | None = None) -> None:
        self.id = next(_ids)
        self._registry = registry
        self._extra = extra

    def remove(self) -> None:
        """Unregister the hook (a second call does nothing)."""
        self._registry.pop(self.id, None)
        if self._extra is not None:
            self._extra.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def add_hook(module, kind: str, hook, prepend: bool = False, **flags) -> RemovableHandle:
    """Register `hook` in `module`'s registry `kind` (made on first use); `flags`
    (with_kwargs, always_call) are kept beside it."""
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    d = module.__dict__
    registry = d.get(kind)
    if registry is None:
        registry = d[kind] = OrderedDict()
    opts = d.setdefault("_hook_flags", {})
    handle = RemovableHandle(registry, opts)
    registry[handle.id] = hook
    if prepend:
        registry.move_to_end(handle.id, last=False)
    opts[handle.id] = flags
    return handle


def has_hooks(module) -> bool:
    """True when `module` has any registered hook."""
    get = module.__dict__.get  # spelled out: this runs on every module call
    return bool(get("_forward_pre_hooks") or get("_forward_hooks") or get("_backward_hooks")
                or get("_backward_pre_hooks"))


def call_with_hooks(module, args: tuple, kwargs: dict):
    """Call `module.forward(*args, **kwargs)` with its hooks, in PyTorch's order: forward
    pre-hooks, (backward wrapping of the inputs), forward, forward hooks, (backward
    wrapping of the outputs)."""
    d = module.__dict__
    flags = d.get("_hook_flags", {})
    for hid, hook in list((d.get("_forward_pre_hooks") or {}).items()):
        if flags.get(hid, {}).get("with_kwargs"):
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError("forward pre-hook must return None or a tuple of "
                                       f"(new_args, new_kwargs), but got {result!r}")
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    backward = (d.get("_backward_hooks") or d.get("_backward_pre_hooks")) and is_grad_enabled()
    state = None
    if backward:
        state = _HookState(module)
        args = state.wrap_inputs(args)
    try:
        output = module.forward(*args, **kwargs)
    except Exception:
        for hid, hook in list((d.get("_forward_hooks") or {}).items()):
            if flags.get(hid, {}).get("always_call"):
                try:
                    _call_forward_hook(hook, flags.get(hid, {}), module, args, kwargs, None)
                except Exception:  # the forward's error is the one to report
                    pass
        raise
    for hid, hook in list((d.get("_forward_hooks") or {}).items()):
        result = _call_forward_hook(hook, flags.get(hid, {}), module, args, kwargs, output)
        if result is not None:
            output = result
    if backward:
        output = state.wrap_outputs(output)
    return output


def _call_forward_hook(hook, flags: dict, module, args, kwargs, output):
    if flags.get("with_kwargs"):
        return hook(module, args, kwargs, output)
    return hook(module, args, output)


class _HookState:
    """One call's backward-hook bookkeeping: which inputs take part, the grad_output."""

    def __init__(self, module) -> None:
        self.module = module
        self.n_inputs = 0
        self.input_positions: list = []
        self.grad_output = None
        self.inputs_need_grad = False

    def wrap_inputs(self, args: tuple) -> tuple:
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.n_inputs = len(positions)
        self.input_positions = positions
        self.needs = [args[i].requires_grad for i in positions]
        self.inputs_need_grad = any(self.needs)
        if not self.inputs_need_grad:
            return args
        wrapped = _InputsNode.apply(self, *[args[i] for i in positions])
        wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
        args = list(args)
        for i, t in zip(positions, wrapped):
            args[i] = t
        return tuple(args)

    def wrap_outputs(self, output):
        single = isinstance(output, Tensor)
        outs = (output,) if single else output
        if not isinstance(outs, tuple) or not all(isinstance(o, Tensor) for o in outs):
            return output  # PyTorch also hooks only tensors and tuples of tensors
        if not any(o.requires_grad for o in outs):
            return output
        wrapped = _OutputsNode.apply(self, *outs)
        return wrapped if single else (wrapped if isinstance(wrapped, tuple) else (wrapped,))

    def run_backward_hooks(self, grad_input: tuple) -> tuple:
        d = self.module.__dict__
        for hook in list((d.get("_backward_hooks") or {}).values()):
            result = hook(self.module, grad_input, self.grad_output)
            if result is not None:
                result = result if isinstance(result, tuple) else (result,)
                if len(result) != len(grad_input):
                    raise RuntimeError(f"backward hook returned {len(result)} gradients, but "
                                       f"the module has {len(grad_input)} tensor inputs")
                grad_input = result
        return grad_input


class _IdentityNode(Function):
    """Identity on a module's tensors (a lone tensor unwrapped), keeping the hook state
    for the backward."""

    @staticmethod
    def forward(ctx, state, *tensors):
        ctx.state = state
        return tensors if len(tensors) > 1 else tensors[0]


class _OutputsNode(_IdentityNode):
    """Identity on the module's outputs; its backward records grad_output and runs the
    backward pre-hooks (which may replace it)."""

    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        module = state.module
        for hook in list((module.__dict__.get("_backward_pre_hooks") or {}).values()):
            result = hook(module, grads)
            if result is not None:
                grads = result if isinstance(result, tuple) else (result,)
        state.grad_output = grads
        if not state.inputs_need_grad:
            state.run_backward_hooks((None,) * state.n_inputs)
        return (None, *grads)


class _InputsNode(_IdentityNode):
    """Identity on the module's tensor inputs; its backward runs the full backward hooks
    with grad_input (None for inputs that need no gradient)."""

    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        grad_input = tuple(g if need else None for g, need in zip(grads, state.needs))
        grad_input = state.run_backward_hooks(grad_input)
        return (None, *grad_input)
