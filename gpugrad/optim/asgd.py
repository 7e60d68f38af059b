"""ASGD: averaged stochastic gradient descent (Polyak & Juditsky, 1992)."""

from __future__ import annotations

import numpy as np

from ..creation import zeros_like
from ..tensor import _wrap_array
from ._eager import EagerOptimizer, check_nonnegative, effective_grad

__all__ = ["ASGD"]


class ASGD(EagerOptimizer):
    """PyTorch's ASGD: g ← ±g + wd·p; p ← p·(1 − λη) − η·g; the average
    a ← a + μ(p − a) (a = p while μ = 1); then η = lr/(1 + λ·lr·t)^α and
    μ = 1/max(1, t − t₀). State: "step", "eta" and "mu" (0-d float32, as PyTorch keeps
    them), "ax" (the average)."""

    _param_state_keys = ("ax",)

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        check_nonnegative(group, "weight_decay")

    def _init_state(self, group: dict, p) -> None:
        state = self.state.setdefault(p, {})
        if "step" not in state:
            self._zero_step(p)
        be = p._backend
        if "eta" not in state:
            state["eta"] = _wrap_array(be.asarray(np.float32(group["lr"])), be)
        if "mu" not in state:
            state["mu"] = _wrap_array(be.asarray(np.float32(1.0)), be)
        if "ax" not in state:
            state["ax"] = zeros_like(p)

    def _update_param(self, group, p, g, state, step, xp) -> None:
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        g = effective_grad(group, p, g)
        eta = float(state["eta"]._data)
        p *= 1 - lambd * eta
        p -= eta * g
        ax, mu = state["ax"]._data, float(state["mu"]._data)
        if mu != 1:
            ax += (p - ax) * mu
        else:
            ax[...] = p
        state["eta"]._data[...] = np.float32(lr / ((1 + lambd * lr * step) ** alpha))
        state["mu"]._data[...] = np.float32(1 / max(1, step - t0))
