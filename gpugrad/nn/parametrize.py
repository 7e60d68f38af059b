"""Parametrizations, as `torch.nn.utils.parametrize`: after
`register_parametrization(module, "weight", p)`, `module.weight` is computed as p(original)
on each access, where the original tensor(s) live in
`module.parametrizations.weight.original` (or `original0`, `original1`, … when p's
`right_inverse` returns several). State-dict keys and layout are PyTorch's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from .container import ModuleDict, ModuleList
from .module import Module
from .parameter import Parameter

__all__ = ["register_parametrization", "remove_parametrizations", "is_parametrized",
           "cached", "ParametrizationList", "type_before_parametrizations"]


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order, and its original value(s)."""

    def __init__(self, modules, original: Tensor, unsafe: bool = False) -> None:
        super().__init__(modules)
        self.unsafe = unsafe
        with no_grad():
            new = original
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    new = m.right_inverse(new)
        requires_grad = original.requires_grad
        if isinstance(new, Tensor):
            self.is_tensor = True
            if new is original and isinstance(original, Parameter):
                self.original = original
            else:
                self.original = Parameter(new.detach(), requires_grad=requires_grad)
        else:
            self.is_tensor = False
            self.ntensors = len(new)
            for i, t in enumerate(new):
                setattr(self, f"original{i}", Parameter(t.detach(), requires_grad=requires_grad))

    def right_inverse(self, value: Tensor) -> None:
        """Set the original(s) so that the parametrization gives `value`."""
        with no_grad():
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    value = m.right_inverse(value)
            if self.is_tensor:
                self.original.copy_(value)
            else:
                for i, t in enumerate(value):
                    getattr(self, f"original{i}").copy_(t)

    def forward(self) -> Tensor:
        """The parametrized tensor."""
        mods = list(self)
        if self.is_tensor:
            x = mods[0](self.original)
        else:
            x = mods[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for m in mods[1:]:
            x = m(x)
        return x


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """True when `module` has a parametrization (on `tensor_name`, when given)."""
    plist = module.__dict__.get("_modules", {}).get("parametrizations")
    if plist is None or not isinstance(plist, ModuleDict):
        return False
    return len(plist) > 0 if tensor_name is None else tensor_name in plist


def type_before_parametrizations(module: Module) -> type:
    """The module's class before any parametrization was registered."""
    cls = type(module)
    return cls.__bases__[0] if is_parametrized(module) else cls


def _property(name: str) -> property:
    def get(self):
        return self.parametrizations[name]()

    def set_(self, value):
        self.parametrizations[name].right_inverse(value)

    return property(get, set_)


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Parametrize `module.<tensor_name>` (a parameter or buffer) by `parametrization`;
    a second registration on the same name composes after the first. Returns `module`."""
    if is_parametrized(module, tensor_name):
        module.parametrizations[tensor_name].append(parametrization)
        return module
    original = getattr(module, tensor_name, None)
    if not isinstance(original, Tensor):
        raise ValueError(f"Module '{type(module).__name__}' has no parameter or buffer with "
                         f"name '{tensor_name}'")
    if not unsafe:
        with no_grad():
            probe = parametrization(original) if not hasattr(parametrization, "right_inverse") \
                else None
        if probe is not None and (tuple(probe.shape) != tuple(original.shape)
                                  or probe.dtype != original.dtype):
            raise ValueError(f"Registering a parametrization may not change the shape or dtype "
                             f"of the tensor, unless `unsafe` flag is enabled: {tensor_name} "
                             f"{tuple(original.shape)} {original.dtype} -> "
                             f"{tuple(probe.shape)} {probe.dtype}")
    delattr(module, tensor_name)
    plist = ParametrizationList([parametrization], original, unsafe)
    if not is_parametrized(module):
        cls = type(module)
        module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {})
        module.parametrizations = ModuleDict()
    module.parametrizations[tensor_name] = plist
    setattr(type(module), tensor_name, _property(tensor_name))
    return module


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Undo the parametrizations of `tensor_name`: it becomes a plain parameter again,
    holding the parametrized value (or the original, with `leave_parametrized=False`)."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {type(module).__name__} does not have a parametrization on "
                         f"{tensor_name}")
    plist = module.parametrizations[tensor_name]
    with no_grad():
        if leave_parametrized:
            value = plist()
        elif plist.is_tensor:
            value = plist.original
        else:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                             "that is parametrized in terms of a sequence of tensors")
    requires_grad = (plist.original if plist.is_tensor else plist.original0).requires_grad
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    param = value if isinstance(value, Parameter) else \
        Parameter(value.detach(), requires_grad=requires_grad)
    module.register_parameter(tensor_name, param)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = type(module).__bases__[0]
    return module


@contextlib.contextmanager
def cached() -> Iterator[None]:
    """Accepted for PyTorch compatibility; parametrized tensors are recomputed on each
    access (the result is the same, only slower)."""
    yield
