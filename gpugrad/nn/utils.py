"""`gg.nn.utils`: gradient clipping that stays on the device."""

from __future__ import annotations

from collections.abc import Iterable

from ..autograd.grad_mode import no_grad
from ..creation import zeros
from ..ops.elementwise import cast, clamp
from ..ops.reduce import amax, norm, sum  # noqa: A004
from ..ops.shape import stack
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0) -> Tensor:
    """Scale the gradients in place so that their joint `norm_type`-norm is at most
    `max_norm`; returns the norm before clipping as a 0-d Tensor.

    Nothing is read back to the host: the factor min(1, max_norm / (norm + 1e-6)) is a
    device tensor multiplied into every gradient (a no-op multiply by 1 when not clipped).
    """
    grads = _grads(parameters)
    if not grads:
        return zeros(())
    norm_type = float(norm_type)
    with no_grad():
        dt = grads[0].dtype
        if norm_type == float("inf"):
            per = [amax(g.detach().abs()) for g in grads]
            total = amax(stack([cast(n, dt) for n in per]))
        elif norm_type == 2.0:
            total = norm(stack([cast(norm(g.detach()), dt) for g in grads]))
        else:
            per = [sum(g.detach().abs() ** norm_type) for g in grads]
            total = sum(stack([cast(n, dt) for n in per])) ** (1.0 / norm_type)
        coef = clamp(max_norm / (total + 1e-6), max=1.0)
        for g in grads:
            g.detach().mul_(cast(coef, g.dtype))
    return total


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every gradient elementwise to [−clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.detach().clamp_(-clip_value, clip_value)
