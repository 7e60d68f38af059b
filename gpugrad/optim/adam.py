"""Adam and AdamW (Kingma & Ba; Loshchilov & Hutter), with AMSGrad."""

from __future__ import annotations

from ..creation import zeros_like
from ..tensor import Tensor
from .optimizer import Optimizer, check_hyper, group_by_backend

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """PyTorch's Adam: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²,
    p ← p − lr/(1 − β₁ᵗ) · m / (√(v or max v) / √(1 − β₂ᵗ) + ε), with g = ∇ + wd·p.
    State per parameter: "step" (0-d float32 tensor: on the CPU, or on the parameter's device
    with `capturable=True` or once a GradScaler has driven the step), "exp_avg",
    "exp_avg_sq" and, with `amsgrad`, "max_exp_avg_sq". `capturable=True` computes the bias
    corrections on the device, so the step can be captured in a CUDA graph."""

    _param_state_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False, capturable: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, capturable=capturable)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas!r} (expected two numbers)")
        for i, b in enumerate(betas):
            check_hyper(b, f"beta parameter at index {i}", 0.0, 1.0, high_open=True)
        check_hyper(group["eps"], "epsilon value")
        check_hyper(group["weight_decay"], "weight_decay value")

    def _init_state(self, group: dict, p: Tensor) -> None:
        state = self.state.setdefault(p, {})
        if "step" not in state:
            self._zero_step(p)
        for key in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ()):
            if key not in state:
                state[key] = zeros_like(p)

    def _update_group(self, group: dict, params: list[Tensor], grads: list[Tensor],
                      found_inf) -> None:
        beta1, beta2 = group["betas"]
        amsgrad = group["amsgrad"]
        for backend, idx in group_by_backend(params).items():
            states = [self.state[params[i]] for i in idx]
            flag = found_inf.on(backend)
            backend.adam_update(
                [params[i]._data for i in idx], [grads[i]._data for i in idx],
                [s["exp_avg"]._data for s in states], [s["exp_avg_sq"]._data for s in states],
                [s["max_exp_avg_sq"]._data for s in states] if amsgrad else None,
                self._next_steps(group, [params[i] for i in idx], flag),
                lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                weight_decay=group["weight_decay"], amsgrad=amsgrad,
                maximize=group["maximize"], decoupled_weight_decay=self._decoupled,
                found_inf=flag)


class AdamW(Adam):
    """Adam with decoupled weight decay: p ← p·(1 − lr·wd) before the Adam update."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, capturable: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, capturable=capturable)
