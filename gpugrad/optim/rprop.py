"""Rprop: resilient backpropagation (Riedmiller & Braun, 1993)."""

from __future__ import annotations

from ..creation import full_like, zeros_like
from ._eager import EagerOptimizer

__all__ = ["Rprop"]


class Rprop(EagerOptimizer):
    """PyTorch's Rprop: per element, s = sign(g·g_prev) picks η₊ (> 0), η₋ (< 0) or 1;
    step ← clamp(step·s, step_min, step_max); where s was η₋ the gradient counts as 0;
    p ← p − sign(g)·step; g_prev ← g. State: "step", "prev", "step_size" (starts at lr)."""

    _param_state_keys = ("prev", "step_size")

    def __init__(self, params, lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes),
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        eta_minus, eta_plus = group["etas"]
        if not 0.0 < eta_minus < 1.0 < eta_plus:
            raise ValueError(f"Invalid eta values: {eta_minus}, {eta_plus}")

    def _init_state(self, group: dict, p) -> None:
        state = self.state.setdefault(p, {})
        if "step" not in state:
            self._zero_step(p)
        if "prev" not in state:
            state["prev"] = zeros_like(p)
        if "step_size" not in state:
            state["step_size"] = full_like(p, group["lr"])

    def _update_param(self, group, p, g, state, step, xp) -> None:
        eta_minus, eta_plus = group["etas"]
        lo, hi = group["step_sizes"]
        if group["maximize"]:
            g = -g
        prev, size = state["prev"]._data, state["step_size"]._data
        s = xp.sign(g * prev)
        factor = xp.where(s > 0, eta_plus, xp.where(s < 0, eta_minus, 1.0)).astype(g.dtype)
        size *= factor
        xp.clip(size, lo, hi, out=size)
        g = xp.where(factor == eta_minus, 0, g).astype(g.dtype)
        p -= xp.sign(g) * size
        prev[...] = g
