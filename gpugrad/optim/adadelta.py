"""Adadelta (Zeiler, 2012)."""

from __future__ import annotations

from ._eager import EagerOptimizer, check_nonnegative, effective_grad

__all__ = ["Adadelta"]


class Adadelta(EagerOptimizer):
    """PyTorch's Adadelta: g ← ±g + wd·p; v ← ρv + (1 − ρ)g²;
    δ = √(u + ε) / √(v + ε) · g; u ← ρu + (1 − ρ)δ²; p ← p − lr·δ.
    State per parameter: "step", "square_avg" (v) and "acc_delta" (u)."""

    _param_state_keys = ("square_avg", "acc_delta")

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach,
                        capturable=capturable, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {group['rho']}")
        check_nonnegative(group, "eps", "weight_decay")

    def _update_param(self, group, p, g, state, step, xp) -> None:
        rho, eps = group["rho"], group["eps"]
        g = effective_grad(group, p, g)
        v, u = state["square_avg"]._data, state["acc_delta"]._data
        v *= rho
        v += (1 - rho) * (g * g)
        delta = xp.sqrt(u + eps) / xp.sqrt(v + eps) * g
        u *= rho
        u += (1 - rho) * (delta * delta)
        p -= group["lr"] * delta
