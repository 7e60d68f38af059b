"""Adamax, the infinity-norm variant of Adam (Kingma & Ba, 2014)."""

from __future__ import annotations

from ._eager import AdamLikeOptimizer, effective_grad

__all__ = ["Adamax"]


class Adamax(AdamLikeOptimizer):
    """PyTorch's Adamax: g ← ±g + wd·p; m ← β₁m + (1 − β₁)g; u ← max(β₂u, |g| + ε);
    p ← p − lr/(1 − β₁ᵗ) · m/u. State per parameter: "step", "exp_avg" (m) and
    "exp_inf" (u)."""

    _param_state_keys = ("exp_avg", "exp_inf")

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _update_param(self, group, p, g, state, step, xp) -> None:
        beta1, beta2 = group["betas"]
        g = effective_grad(group, p, g)
        m, u = state["exp_avg"]._data, state["exp_inf"]._data
        m += (g - m) * (1 - beta1)
        u *= beta2
        xp.maximum(u, xp.abs(g) + group["eps"], out=u)
        p -= group["lr"] / (1 - beta1 ** step) * (m / u)
