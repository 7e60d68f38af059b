"""NAdam: Adam with Nesterov momentum (Dozat, 2016)."""

from __future__ import annotations

import numpy as np

from ..backend import cpu_backend
from ..tensor import _wrap_array
from ._eager import (
    AdamLikeOptimizer,
    effective_grad,
    update_moments,
)

__all__ = ["NAdam"]


class NAdam(AdamLikeOptimizer):
    """PyTorch's NAdam: μₜ = β₁(1 − 0.96^(t·ψ)/2) with ψ = `momentum_decay`, Πₜ = ∏ μ
    (kept in float32, as PyTorch keeps it); g ← ±g + wd·p (or p ← p(1 − lr·wd) when
    `decoupled_weight_decay`); m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²;
    d = √(v/(1 − β₂ᵗ)) + ε;
    p ← p − lr(1 − μₜ)/(1 − Πₜ) · g/d − lr·μₜ₊₁/(1 − Πₜμₜ₊₁) · m/d.
    State per parameter: "step", "mu_product", "exp_avg", "exp_avg_sq"."""

    _param_state_keys = ("exp_avg", "exp_avg_sq")
    _nonnegative = ("eps", "weight_decay", "momentum_decay")

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, foreach=foreach,
                        maximize=maximize, capturable=capturable,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, group: dict, p) -> None:
        state = self.state.setdefault(p, {})
        if "step" not in state:
            self._zero_step(p)
        if "mu_product" not in state:
            state["mu_product"] = _wrap_array(np.ones((), np.float32), cpu_backend)
        super()._init_state(group, p)

    def _update_param(self, group, p, g, state, step, xp) -> None:
        beta1, beta2 = group["betas"]
        lr, psi = group["lr"], group["momentum_decay"]
        g = effective_grad(group, p, g)
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
        prod_arr = state["mu_product"]._data
        prod_arr[...] = prod_arr * np.float32(mu)
        prod = float(prod_arr)
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        update_moments(m, v, g, beta1, beta2)
        denom = xp.sqrt(v / (1 - beta2 ** step)) + group["eps"]
        p += (-lr * (1.0 - mu) / (1.0 - prod)) * (g / denom)
        p += (-lr * mu_next / (1.0 - prod * mu_next)) * (m / denom)
