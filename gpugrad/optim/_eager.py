"""A base for optimizers whose update is written as plain array math (no fused backend
kernel): each parameter's update runs on its backend's array module, `backend.xp`."""

from __future__ import annotations

from ..creation import zeros_like
from ..tensor import Tensor
from .optimizer import Optimizer, group_by_backend

__all__ = ["EagerOptimizer", "AdamLikeOptimizer", "check_betas", "check_nonnegative",
           "effective_grad", "update_moments"]


class EagerOptimizer(Optimizer):
    """Subclasses define `_update_param(group, p, g, state, step, xp)`, which updates the
    arrays `p` (the parameter) and the state tensors' arrays in place from the gradient
    array `g`; `step` is the parameter's step count after this step (an int).

    A GradScaler's `found_inf` flag is read on the host here (as PyTorch does for
    optimizers without a fused kernel): when set, nothing changes, steps included."""

    def _update_group(self, group: dict, params: list[Tensor], grads: list[Tensor],
                      found_inf) -> None:
        for backend, idx in group_by_backend(params).items():
            flag = found_inf.on(backend)
            if flag is not None and bool(backend.to_host(flag).reshape(-1)[0] != 0):
                continue
            ps = [params[i] for i in idx]
            steps = self._next_steps(group, ps)
            for i, step in zip(idx, steps):
                p, g = params[i], grads[i]
                self._update_param(group, p._data, g._data, self.state[p], step, backend.xp)

    def _init_state(self, group: dict, p: Tensor) -> None:
        """The step count and a zero tensor like `p` for each of `_param_state_keys` (for
        those missing); subclasses with other state add it before calling this."""
        state = self.state.setdefault(p, {})
        if "step" not in state:
            self._zero_step(p)
        for key in self._param_state_keys:
            if key not in state:
                state[key] = zeros_like(p)

    def _update_param(self, group: dict, p, g, state: dict, step: int, xp) -> None:
        raise NotImplementedError


class AdamLikeOptimizer(EagerOptimizer):
    """An eager optimizer with Adam's `betas`: checks them and that each group entry named
    in `_nonnegative` is at least 0."""

    _nonnegative: tuple = ("eps", "weight_decay")

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        check_betas(group["betas"])
        check_nonnegative(group, *self._nonnegative)


def effective_grad(group: dict, p, g):
    """The gradient array an update uses: g ← −g when `maximize`, then g ← g + wd·p, or,
    when the group has `decoupled_weight_decay` set, p ← p(1 − lr·wd) in place instead."""
    if group["maximize"]:
        g = -g
    wd = group["weight_decay"]
    if wd != 0:
        if group.get("decoupled_weight_decay", False):
            p *= 1 - group["lr"] * wd
        else:
            g = g + wd * p
    return g


def update_moments(m, v, g, beta1: float, beta2: float) -> None:
    """Adam's moment updates, in place: m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²."""
    m += (g - m) * (1 - beta1)
    v *= beta2
    v += (1 - beta2) * (g * g)


def check_nonnegative(group: dict, *keys: str) -> None:
    """Raise ValueError naming the first of `keys` whose value in `group` is negative."""
    for key in keys:
        if group[key] < 0:
            raise ValueError(f"Invalid {key} value: {group[key]}")


def check_betas(betas) -> None:
    """Raise ValueError unless `betas` is two numbers in [0, 1)."""
    if len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas} (expected two numbers)")
    for i, b in enumerate(betas):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {b}")
