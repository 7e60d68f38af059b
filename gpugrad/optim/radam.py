"""RAdam: Adam with a rectified adaptive learning rate (Liu et al., 2019)."""

from __future__ import annotations

import math

from ._eager import (
    AdamLikeOptimizer,
    effective_grad,
    update_moments,
)

__all__ = ["RAdam"]


class RAdam(AdamLikeOptimizer):
    """PyTorch's RAdam: g ← ±g + wd·p (or p ← p(1 − lr·wd) when `decoupled_weight_decay`);
    m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; m̂ = m/(1 − β₁ᵗ);
    ρ∞ = 2/(1 − β₂) − 1, ρₜ = ρ∞ − 2tβ₂ᵗ/(1 − β₂ᵗ). When ρₜ > 5:
    r = √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ)) and
    p ← p − lr·m̂·r·√(1 − β₂ᵗ)/(√v + ε); otherwise p ← p − lr·m̂.
    State per parameter: "step", "exp_avg", "exp_avg_sq"."""

    _param_state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, foreach=foreach,
                        maximize=maximize, capturable=capturable,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _update_param(self, group, p, g, state, step, xp) -> None:
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        g = effective_grad(group, p, g)
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        update_moments(m, v, g, beta1, beta2)
        bc1, bc2 = 1 - beta1 ** step, 1 - beta2 ** step
        m_hat = m / bc1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bc2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            p -= m_hat * lr * (bc2 ** 0.5 / (xp.sqrt(v) + group["eps"])) * rect
        else:
            p -= m_hat * lr
