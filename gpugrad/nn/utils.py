"""`gg.nn.utils`: gradient clipping that stays on the device."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..autograd.grad_mode import no_grad
from ..ops.shape import cat
from ..tensor import Tensor, _wrap_array

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale the gradients in place so that their joint `norm_type`-norm is at most
    `max_norm`; returns the norm before clipping as a 0-d Tensor (float32, or float64 when
    a gradient is float64), as PyTorch does.

    Nothing is read back to the host: each device computes its part of the norm and
    multiplies its gradients by min(1, max_norm / (norm + 1e-6)) with its backend's
    multi-tensor methods (`grad_norm`, `clip_grads_`). Gradients on several devices need
    one copy of each partial norm. `error_if_nonfinite=True` must look at the norm, so it
    reads it on the host (one synchronisation) and raises RuntimeError, before any
    gradient changes, if it is inf or NaN. `foreach` is accepted for PyTorch compatibility.
    """
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        from ..creation import zeros

        return zeros(())
    by_backend: dict = {}
    for g in grads:
        by_backend.setdefault(g._backend, []).append(g._data)
    parts = [(b, b.grad_norm(arrays, norm_type)) for b, arrays in by_backend.items()]
    home = grads[0]._backend
    total = _combine([_wrap_array(n, b).to(home.device) for b, n in parts], norm_type)
    if error_if_nonfinite and not math.isfinite(float(home.to_host(total._data))):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm "
                           "anyway, set `error_if_nonfinite=False`")
    with no_grad():
        for backend, arrays in by_backend.items():
            on_device = total if backend is home else total.to(backend.device)
            backend.clip_grads_(arrays, max_norm, on_device._data)
    for g in grads:
        g._bump_version()
    return total


def _combine(norms: list, norm_type: float) -> Tensor:
    """The joint norm from per-device norms (all on one device)."""
    if len(norms) == 1:
        return norms[0]
    from ..ops.reduce import amax, amin
    from ..ops.shape import stack

    s = stack(norms)
    if norm_type == math.inf:
        return amax(s)
    if norm_type == -math.inf:
        return amin(s)
    if norm_type == 0:
        return s.sum()
    return (s ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every gradient elementwise to [−clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.detach().clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-d tensor (differentiable)."""
    params = list(parameters)
    if params and len({p.device for p in params}) > 1:
        raise RuntimeError(f"parameters_to_vector: parameters are on several devices "
                           f"{sorted({str(p.device) for p in params})}")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-d `vec` into the parameters, in place (no
    gradient is recorded)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected vec to be a Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} must be 1-d "
                         f"with {total} elements (the parameters' total)")
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec[offset:offset + n].reshape(p.shape))
            offset += n


from . import parametrizations, parametrize  # noqa: E402 - attributes of nn.utils, as in torch

__all__ += ["parameters_to_vector", "vector_to_parameters", "parametrize", "parametrizations"]

from .legacy_norms import (  # noqa: E402
    remove_spectral_norm,
    remove_weight_norm,
    spectral_norm,
    weight_norm,
)

__all__ += ["weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm"]
