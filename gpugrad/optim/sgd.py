"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

import math

from ..tensor import Tensor, _wrap_array
from .optimizer import Optimizer, check_hyper, group_by_backend

__all__ = ["SGD"]


class SGD(Optimizer):
    """PyTorch's SGD: d = g + wd·p; b ← μ·b + (1 − dampening)·d (b = d at the first
    step); d = d + μ·b with Nesterov, else b; p ← p − lr·d (gradient ascent when
    `maximize`). The state of each parameter is its "momentum_buffer" when momentum ≠ 0."""

    _param_state_keys = ("momentum_buffer",)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        check_hyper(group["momentum"], "momentum value")
        check_hyper(group["dampening"], "dampening value", low=-math.inf)
        check_hyper(group["weight_decay"], "weight_decay value")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update_group(self, group: dict, params: list[Tensor], grads: list[Tensor],
                      found_inf) -> None:
        use_momentum = group["momentum"] != 0
        for backend, idx in group_by_backend(params).items():
            ps = [params[i] for i in idx]
            bufs = [self.state.get(p, {}).get("momentum_buffer") for p in ps] \
                if use_momentum else [None] * len(ps)
            arrays = [None if b is None else b._data for b in bufs]
            backend.sgd_update([p._data for p in ps], [grads[i]._data for i in idx], arrays,
                               lr=group["lr"], momentum=group["momentum"],
                               dampening=group["dampening"],
                               weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                               maximize=group["maximize"], found_inf=found_inf.on(backend))
            if use_momentum:
                for p, buf, arr in zip(ps, bufs, arrays):
                    if buf is None:
                        self.state.setdefault(p, {})["momentum_buffer"] = \
                            _wrap_array(arr, backend)
