"""RMSprop (Hinton), optionally centered and with momentum."""

from __future__ import annotations

from ..creation import zeros_like
from ..tensor import Tensor
from .optimizer import Optimizer, check_hyper, group_by_backend

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """PyTorch's RMSprop: s ← αs + (1 − α)g²; centered: ḡ ← αḡ + (1 − α)g, s̃ = s − ḡ²;
    a = √s̃ + ε; p ← p − lr·g/a, or with momentum b ← μb + g/a, p ← p − lr·b.
    State per parameter: "step", "square_avg", plus "momentum_buffer" (momentum > 0)
    and "grad_avg" (centered). `capturable=True` counts steps on the parameter's device
    (as a GradScaler-driven step does), so the step can be captured in a CUDA graph."""

    _param_state_keys = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False, capturable: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        for key in ("alpha", "eps", "weight_decay", "momentum"):
            check_hyper(group[key], f"{key} value")

    def _init_state(self, group: dict, p: Tensor) -> None:
        state = self.state.setdefault(p, {})
        if "step" not in state:
            self._zero_step(p)
        keys = ("square_avg",) + (("momentum_buffer",) if group["momentum"] > 0 else ()) + \
            (("grad_avg",) if group["centered"] else ())
        for key in keys:
            if state.get(key) is None:
                state[key] = zeros_like(p)

    def _update_group(self, group: dict, params: list[Tensor], grads: list[Tensor],
                      found_inf) -> None:
        momentum, centered = group["momentum"], group["centered"]
        for backend, idx in group_by_backend(params).items():
            states = [self.state[params[i]] for i in idx]
            flag = found_inf.on(backend)
            self._next_steps(group, [params[i] for i in idx], flag)
            backend.rmsprop_update(
                [params[i]._data for i in idx], [grads[i]._data for i in idx],
                [s["square_avg"]._data for s in states],
                [s["grad_avg"]._data for s in states] if centered else None,
                [s["momentum_buffer"]._data for s in states] if momentum > 0 else None,
                lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                weight_decay=group["weight_decay"], momentum=momentum, centered=centered,
                maximize=group["maximize"], found_inf=flag)
