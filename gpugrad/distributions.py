"""`gg.distributions`: probability distributions whose samples carry gradients.

`Normal(loc, scale).rsample()` is the reparameterization trick: a sample is written as a
deterministic function of the parameters and parameter-free noise,

    z = μ + σ·ε,   ε ~ N(0, I),

so the chain rule reaches μ and σ: ∂z/∂μ = 1 and ∂z/∂σ = ε. `sample()` draws the same
way without recording a graph. The formulas for `log_prob`, `entropy` and
`kl_divergence` are PyTorch's.
"""

from __future__ import annotations

import math

import numpy as np

from .autograd.grad_mode import no_grad
from .creation import randn, tensor
from .ops.elementwise import log
from .tensor import Tensor

__all__ = ["Distribution", "Normal", "kl_divergence"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _as_tensor(value, like: Tensor | None) -> Tensor:
    """A parameter as a Tensor; a Python number takes the other parameter's dtype/device."""
    if isinstance(value, Tensor):
        return value
    if like is not None:
        return tensor(value, dtype=like.dtype, device=like.device)
    return tensor(float(value))


class Distribution:
    """Base class: a batch of independent distributions of shape `batch_shape`."""

    has_rsample = False

    def __init__(self, batch_shape: tuple = ()) -> None:
        self.batch_shape = tuple(batch_shape)

    def _extended_shape(self, sample_shape=()) -> tuple:
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        return tuple(sample_shape) + self.batch_shape

    def rsample(self, sample_shape=()) -> Tensor:
        """A reparameterised sample, differentiable with respect to the parameters."""
        raise NotImplementedError(f"{type(self).__name__} has no rsample")

    def sample(self, sample_shape=()) -> Tensor:
        """A sample that records no graph."""
        with no_grad():
            return self.rsample(sample_shape).detach()

    def log_prob(self, value: Tensor) -> Tensor:
        """The log density at `value`."""
        raise NotImplementedError

    def entropy(self) -> Tensor:
        """The differential entropy, one value per batch element."""
        raise NotImplementedError


class Normal(Distribution):
    """The normal distribution N(loc, scale²), batched by broadcasting `loc` with `scale`.

    `rsample(sample_shape)` returns loc + scale·ε with ε ~ N(0, 1) drawn on the
    parameters' device, of shape `sample_shape + batch_shape`.
    """

    has_rsample = True

    def __init__(self, loc: Tensor | float, scale: Tensor | float,
                 validate_args: bool = False) -> None:
        loc_t = _as_tensor(loc, scale if isinstance(scale, Tensor) else None)
        self.loc = loc_t
        self.scale = _as_tensor(scale, loc_t)
        if self.loc.device != self.scale.device:
            from .errors import DeviceError

            raise DeviceError(f"Normal: loc is on {self.loc.device} but scale is on "
                              f"{self.scale.device}")
        try:
            shape = np.broadcast_shapes(tuple(self.loc.shape), tuple(self.scale.shape))
        except ValueError as e:
            raise ValueError(f"Normal: loc of shape {tuple(self.loc.shape)} and scale of shape "
                             f"{tuple(self.scale.shape)} do not broadcast") from e
        if validate_args and not bool((self.scale > 0).all().item()):
            raise ValueError("Normal: scale must be positive")
        super().__init__(shape)

    @property
    def mean(self) -> Tensor:
        """The mean, loc."""
        return self.loc

    @property
    def stddev(self) -> Tensor:
        """The standard deviation, scale."""
        return self.scale

    @property
    def variance(self) -> Tensor:
        """The variance, scale²."""
        return self.scale * self.scale

    def rsample(self, sample_shape=()) -> Tensor:
        """loc + scale·ε, ε ~ N(0, 1): gradients reach loc (∂/∂loc = 1) and scale (= ε)."""
        shape = self._extended_shape(sample_shape)
        dtype = self.loc.dtype if self.loc.is_floating_point() else self.scale.dtype
        eps = randn(shape, dtype=dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value: Tensor) -> Tensor:
        """log N(x; μ, σ²) = −(x − μ)²/(2σ²) − log σ − ½·log 2π."""
        value = _as_tensor(value, self.loc)
        var = self.scale * self.scale
        return -((value - self.loc) ** 2) / (2 * var) - log(self.scale) - _HALF_LOG_2PI

    def entropy(self) -> Tensor:
        """½ + ½·log 2π + log σ, broadcast to `batch_shape`."""
        h = 0.5 + _HALF_LOG_2PI + log(self.scale)
        if tuple(h.shape) != self.batch_shape:
            h = h.expand(self.batch_shape)
        return h

    def __repr__(self) -> str:
        return f"Normal(loc: {tuple(self.loc.shape)}, scale: {tuple(self.scale.shape)})"


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """KL(p ‖ q), elementwise over the batch. For two normals:
    ½·(r + ((μ_p − μ_q)/σ_q)² − 1 − log r) with r = (σ_p/σ_q)²."""
    if isinstance(p, Normal) and isinstance(q, Normal):
        var_ratio = (p.scale / q.scale) ** 2
        t1 = ((p.loc - q.loc) / q.scale) ** 2
        return 0.5 * (var_ratio + t1 - 1 - log(var_ratio))
    raise NotImplementedError(f"kl_divergence: no formula for {type(p).__name__} and "
                              f"{type(q).__name__}")
