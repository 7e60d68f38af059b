"""Adagrad (Duchi et al., 2011)."""

from __future__ import annotations

from ..creation import full_like
from ._eager import EagerOptimizer, check_nonnegative, effective_grad

__all__ = ["Adagrad"]


class Adagrad(EagerOptimizer):
    """PyTorch's Adagrad: g ← ±g + wd·p; s ← s + g²;
    p ← p − lr / (1 + (t − 1)·lr_decay) · g / (√s + ε).
    State per parameter, created with the optimizer as in PyTorch: "step" and "sum"
    (starting at `initial_accumulator_value`)."""

    _param_state_keys = ("sum",)

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(group, p)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        check_nonnegative(group, "lr_decay", "weight_decay", "initial_accumulator_value",
                          "eps")

    def _init_state(self, group: dict, p) -> None:
        state = self.state.setdefault(p, {})
        if "step" not in state:
            self._zero_step(p)
        if "sum" not in state:
            state["sum"] = full_like(p, group["initial_accumulator_value"])

    def _update_param(self, group, p, g, state, step, xp) -> None:
        g = effective_grad(group, p, g)
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        s = state["sum"]._data
        s += g * g
        p -= clr * (g / (xp.sqrt(s) + group["eps"]))
