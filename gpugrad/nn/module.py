"""`Module`: the base class of layers and models (parameters, buffers, submodules)."""

from __future__ import annotations

import copy
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from . import hooks as _hooks
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model.

    Assigning a `Parameter`, a `Module` or (through `register_buffer`) a Tensor to an
    attribute registers it; `parameters()`, `state_dict()`, `to()`, `train()` and friends
    then walk the tree of submodules. Subclasses define `forward`; calling the module
    calls `forward`.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args, **kwargs):
        """The computation of this module; subclasses override it."""
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        if _hooks.has_hooks(self):
            return _hooks.call_with_hooks(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # -- hooks (see nn/hooks.py) ----------------------------------------------------------
    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> _hooks.RemovableHandle:
        """Run `hook(module, args)` before each forward (`hook(module, args, kwargs)`
        with `with_kwargs`); a non-None result replaces the inputs."""
        return _hooks.add_hook(self, "_forward_pre_hooks", hook, prepend,
                               with_kwargs=with_kwargs)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> _hooks.RemovableHandle:
        """Run `hook(module, args, output)` after each forward (`hook(module, args,
        kwargs, output)` with `with_kwargs`); a non-None result replaces the output.
        `always_call` runs it (with output None) also when forward raises."""
        return _hooks.add_hook(self, "_forward_hooks", hook, prepend, with_kwargs=with_kwargs,
                               always_call=always_call)

    def register_full_backward_hook(self, hook: Callable,
                                    prepend: bool = False) -> _hooks.RemovableHandle:
        """Run `hook(module, grad_input, grad_output)` when the gradients of the module's
        tensor inputs are computed; a non-None result replaces grad_input."""
        return _hooks.add_hook(self, "_backward_hooks", hook, prepend)

    def register_full_backward_pre_hook(self, hook: Callable,
                                        prepend: bool = False) -> _hooks.RemovableHandle:
        """Run `hook(module, grad_output)` when the gradients of the module's outputs are
        known; a non-None result replaces grad_output."""
        return _hooks.add_hook(self, "_backward_pre_hooks", hook, prepend)

    # -- registration ----------------------------------------------------------------
    def _registry(self, name: str) -> dict:
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign to a Module before Module.__init__() is called")
        return self.__dict__

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        if isinstance(value, Parameter):
            self._registry(name)
            self._forget(name, keep="_parameters")
            d["_parameters"][name] = value
        elif isinstance(value, Module):
            self._registry(name)
            self._forget(name, keep="_modules")
            d["_modules"][name] = value
        elif "_parameters" in d and name in d["_parameters"]:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                "(gg.nn.Parameter or None expected)")
            d["_parameters"][name] = None
        elif "_modules" in d and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module "
                                f"{name!r} (gg.nn.Module or None expected)")
            d["_modules"][name] = None
        elif "_buffers" in d and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} "
                                "(gg.Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: str = "") -> None:
        """Drop `name` from every registry but `keep`, whose entry the caller overwrites in
        place: re-assigning keeps its position, so parameters() and state_dict() keep
        PyTorch's order (optimizer state and zipped models pair parameters by position)."""
        d = self.__dict__
        d.pop(name, None)
        for reg in ("_parameters", "_buffers", "_modules"):
            if reg != keep:
                d[reg].pop(name, None)
        d["_non_persistent"].discard(name)

    def __getattr__(self, name: str):
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            if reg in d and name in d[reg]:
                return d[reg][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            if name in d.get(reg, ()):
                del d[reg][name]
                d["_non_persistent"].discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder) under `name`."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter {name!r}")
        self._registry(name)
        self._forget(name, keep="_parameters")
        self.__dict__["_parameters"][name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a non-learnable tensor (e.g. running statistics) that `to()` moves and,
        when `persistent`, `state_dict()` saves."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer {name!r}")
        if "." in name or not name:
            raise KeyError(f"buffer name must be a non-empty string without '.', got {name!r}")
        self._registry(name)
        self._forget(name, keep="_buffers")
        self.__dict__["_buffers"][name] = tensor
        if not persistent:
            self.__dict__["_non_persistent"].add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under `name`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module")
        self._registry(name)
        self._forget(name, keep="_modules")
        self.__dict__["_modules"][name] = module

    register_module = add_module

    # -- traversal -------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "") -> Iterator:
        """(name, module) for this module and every descendant, each once, depth first."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        """This module and every descendant."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator:
        """(name, module) for the direct children."""
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        """The direct child modules."""
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry: str, recurse: bool, prefix: str = "") -> Iterator:
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in mods:
            for name, t in m.__dict__[registry].items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator:
        """(dotted name, Parameter) pairs in registration order; shared ones once."""
        return self._named_members("_parameters", recurse, prefix)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """The Parameters of this module and (with `recurse`) its descendants."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator:
        """(dotted name, Tensor) for the buffers."""
        return self._named_members("_buffers", recurse, prefix)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """The buffers of this module and (with `recurse`) its descendants."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- modes and gradients ---------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (affects Dropout, BatchNorm) on this module and descendants."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode; the same as `train(False)`."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set `requires_grad` on every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter: to None, or to zeros in place."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                g = p.grad
                if g.grad_fn is not None:
                    g.detach_()
                with no_grad():
                    g.zero_()

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call `fn` on every descendant (children first) and then on this module."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- device and dtype --------------------------------------------------------------
    def to(self, *args, **kwargs) -> Module:
        """Move (and/or cast floating point) parameters and buffers in place:
        `m.to("cuda")`, `m.to(gg.float64)`. Parameters keep their identity."""

        def convert(t: Tensor) -> Tensor:
            if t.is_floating_point():
                kw = dict(kwargs)
                if t.ndim not in (4, 5):  # as PyTorch: a memory format is for images only
                    kw.pop("memory_format", None)
                return t.detach().to(*args, **kw)
            keep = [a for a in args if isinstance(a, str) or _is_device(a)]
            kw = {k: v for k, v in kwargs.items() if k == "device"}
            return t.detach().to(*keep, **kw)

        return self._apply_to_tensors(convert)

    def _apply_to_tensors(self, fn: Callable[[Tensor], Tensor]) -> Module:
        with no_grad():
            for m in self.modules():
                for p in m._parameters.values():
                    if p is None:
                        continue
                    p.data = fn(p)
                    if p.grad is not None:
                        p.grad = fn(p.grad)
                for name, b in m._buffers.items():
                    if b is not None:
                        m._buffers[name] = fn(b)
        return self

    def cpu(self) -> Module:
        """Move everything to the CPU."""
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Module:
        """Move everything to a GPU."""
        return self.to("cuda" if device is None else f"cuda:{device}")

    def double(self) -> Module:
        """Cast floating point parameters and buffers to float64."""
        from .. import _dtype

        return self.to(_dtype.float64)

    def float(self) -> Module:
        """Cast floating point parameters and buffers to float32."""
        from .. import _dtype

        return self.to(_dtype.float32)

    # -- state dict --------------------------------------------------------------------
    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """name -> Tensor for every parameter and persistent buffer (detached, sharing
        storage unless `keep_vars`)."""
        out = OrderedDict()
        for mod_prefix, m in self.named_modules(prefix=prefix.rstrip(".")):
            for reg in ("_parameters", "_buffers"):
                for name, t in m.__dict__[reg].items():
                    if t is None or (reg == "_buffers" and name in m._non_persistent):
                        continue
                    key = f"{mod_prefix}.{name}" if mod_prefix else name
                    out[key] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values from `state_dict` into the parameters and buffers, in place.

        Raises RuntimeError listing missing keys, unexpected keys (when `strict`) and shape
        mismatches (always); nothing is modified when it raises. Returns the missing and
        unexpected keys.
        """
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: "
                              + ", ".join(map(repr, unexpected)))
        updates = []
        for k, dst in own.items():
            if k not in state_dict:
                continue
            src = state_dict[k]
            if not isinstance(src, Tensor):
                try:
                    src = Tensor(src)
                except TypeError:
                    errors.append(f"value for {k!r} is a {type(src).__name__}, not a Tensor")
                    continue
            if tuple(src.shape) != tuple(dst.shape):
                errors.append(f"size mismatch for {k}: copying a param with shape "
                              f"{tuple(src.shape)} from checkpoint, the shape in current "
                              f"model is {tuple(dst.shape)}.")
                continue
            updates.append((dst, src))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for dst, src in updates:
                dst.copy_(src)
        return IncompatibleKeys(missing, unexpected)

    # -- repr --------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text shown inside this module's parentheses in its repr."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def __deepcopy__(self, memo: dict) -> Module:
        # Backends are per-device singletons that ops compare by identity: share them.
        for m in self.modules():
            for t in list(m._parameters.values()) + list(m._buffers.values()):
                if t is not None:
                    memo.setdefault(id(t._backend), t._backend)
                    if t.grad is not None:
                        memo.setdefault(id(t.grad._backend), t.grad._backend)
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            object.__setattr__(new, k, copy.deepcopy(v, memo))
        return new

    def __dir__(self) -> list:
        keys = set(super().__dir__())
        for reg in ("_parameters", "_buffers", "_modules"):
            keys.update(self.__dict__.get(reg, ()))
        return sorted(keys)


def _is_device(a) -> bool:
    from ..device import device as Device

    return isinstance(a, Device)
