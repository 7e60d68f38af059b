"""`gg.compile`: PyTorch's `torch.compile` signature, eager behaviour.

gpugrad has no graph compiler yet, so `compile` returns the model or function itself,
which then runs eagerly, as PyTorch's "eager" backend does. Scripts that write
`model = torch.compile(model)` or decorate a step with `@torch.compile` run unchanged; the
returned object is the argument itself (a Module keeps its `state_dict()` keys, without
PyTorch's `_orig_mod.` prefix).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["compile"]

_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile(model: Callable | None = None, *, fullgraph: bool = False,  # noqa: A001
            dynamic: bool | None = None, backend: str | Callable = "inductor",
            mode: str | None = None, options: dict | None = None,
            disable: bool = False) -> Callable:
    """`model` (a Module or a function) itself, run eagerly; with no `model`, a decorator.
    The options are checked as PyTorch checks them and otherwise ignored."""
    if mode is not None and options is not None:
        raise RuntimeError("compile: either mode or options can be specified, but both can't "
                           "be specified at the same time")
    if mode is not None and mode not in _MODES:
        raise RuntimeError(f"compile: unrecognized mode {mode!r}, expected one of "
                           f"{', '.join(map(repr, _MODES))}")
    if not (isinstance(backend, str) or callable(backend)):
        raise TypeError(f"compile: backend must be a string or a callable, got "
                        f"{type(backend).__name__}")
    if model is None:
        def decorator(fn: Callable) -> Callable:
            if fn is None:
                raise RuntimeError("compile: model can't be None")
            return compile(fn, fullgraph=fullgraph, dynamic=dynamic, backend=backend,
                           mode=mode, options=options, disable=disable)

        return decorator
    if not callable(model):
        raise TypeError(f"compile: expected a Module or a function, got "
                        f"{type(model).__name__}")
    return model
