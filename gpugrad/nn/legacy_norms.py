"""The hook-based `nn.utils.weight_norm` and `nn.utils.spectral_norm` (PyTorch's older
API, still common in published models): the module keeps `<name>_g`/`<name>_v` (or
`<name>_orig` with `<name>_u`/`<name>_v` buffers) and a forward pre-hook recomputes
`<name>` before each forward, with PyTorch's state-dict keys."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..creation import empty
from ..tensor import Tensor
from . import init
from ._functional_extra import normalize
from .module import Module
from .parameter import Parameter
from .parametrizations import _norm_except_dim

__all__ = ["weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm"]


class _WeightNormHook:
    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def compute_weight(self, module: Module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / _norm_except_dim(v, self.dim))

    def __call__(self, module: Module, inputs) -> None:
        object.__setattr__(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize `module.<name>` as g·v/‖v‖ with parameters `<name>_g` and `<name>_v`,
    recomputed by a forward pre-hook (PyTorch's `torch.nn.utils.weight_norm`)."""
    dim = -1 if dim is None else dim
    hooks = module.__dict__.setdefault("_legacy_norms", {})
    if name in hooks:
        raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    weight = getattr(module, name)
    hook = _WeightNormHook(name, dim)
    delattr(module, name)
    with no_grad():
        module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight, dim).detach()))
        module.register_parameter(name + "_v", Parameter(weight.detach().clone()))
    object.__setattr__(module, name, hook.compute_weight(module))
    hooks[name] = (hook, module.register_forward_pre_hook(hook))
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo `weight_norm`: `<name>` becomes a plain parameter with the current weight."""
    hook, handle = _pop(module, name, _WeightNormHook, "weight_norm")
    with no_grad():
        weight = hook.compute_weight(module).detach()
    handle.remove()
    delattr(module, name + "_g")
    delattr(module, name + "_v")
    module.__dict__.pop(name, None)
    module.register_parameter(name, Parameter(weight))
    return module


class _SpectralNormHook:
    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float) -> None:
        self.name, self.n, self.dim, self.eps = name, n_power_iterations, dim, eps

    def matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        mat = self.matrix(weight)
        if do_power_iteration:
            with no_grad():
                m = mat.detach()
                for _ in range(self.n):
                    v.copy_(normalize(m.transpose(0, 1) @ u, dim=0, eps=self.eps))
                    u.copy_(normalize(m @ v, dim=0, eps=self.eps))
        u, v = u.clone(), v.clone()
        return weight / (u * (mat @ v)).sum()

    def __call__(self, module: Module, inputs) -> None:
        object.__setattr__(module, self.name,
                           self.compute_weight(module, do_power_iteration=module.training))


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Normalise `module.<name>` by its spectral norm, estimated by power iteration in a
    forward pre-hook (PyTorch's `torch.nn.utils.spectral_norm`: `<name>_orig` parameter,
    `<name>_u` and `<name>_v` buffers)."""
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    hooks = module.__dict__.setdefault("_legacy_norms", {})
    if name in hooks:
        raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter "
                           f"{name}")
    if n_power_iterations <= 0:
        raise ValueError(f"Expected n_power_iterations to be positive, but got "
                         f"n_power_iterations={n_power_iterations}")
    weight = getattr(module, name)
    hook = _SpectralNormHook(name, n_power_iterations, dim, eps)
    with no_grad():
        mat = hook.matrix(weight)
        h, w = mat.shape
        kw = {"dtype": weight.dtype, "device": weight.device}
        u = normalize(init.normal_(empty(h, **kw)), dim=0, eps=eps)
        v = normalize(init.normal_(empty(w, **kw)), dim=0, eps=eps)
    delattr(module, name)
    module.register_parameter(name + "_orig", weight if isinstance(weight, Parameter)
                              else Parameter(weight.detach()))
    object.__setattr__(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    hooks[name] = (hook, module.register_forward_pre_hook(hook))
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo `spectral_norm`: `<name>` becomes a plain parameter with the normalised weight."""
    hook, handle = _pop(module, name, _SpectralNormHook, "spectral_norm")
    with no_grad():
        weight = hook.compute_weight(module, do_power_iteration=False).detach()
    handle.remove()
    delattr(module, name + "_orig")
    delattr(module, name + "_u")
    delattr(module, name + "_v")
    module.__dict__.pop(name, None)
    module.register_parameter(name, Parameter(weight))
    return module


def _pop(module: Module, name: str, kind: type, what: str) -> tuple:
    entry = module.__dict__.get("_legacy_norms", {}).get(name)
    if entry is None or not isinstance(entry[0], kind):
        raise ValueError(f"{what} of '{name}' not found in {type(module).__name__}")
    return module.__dict__["_legacy_norms"].pop(name)
