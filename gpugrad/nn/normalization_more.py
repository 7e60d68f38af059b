"""More normalization layers, as PyTorch's: `GroupNorm`, `InstanceNorm1d/2d`,
`LocalResponseNorm`, `RMSNorm` (and their functional forms). All standardise with the
`Normalize` op (x̂ = (x − μ)/√(σ² + ε), biased σ²) or compose existing ops."""

from __future__ import annotations

import numpy as np

from ..autograd.grad_mode import no_grad
from ..creation import ones, zeros
from ..errors import ShapeError
from ..ops.elementwise import sqrt
from ..ops.normalization import standardize
from ..ops.pool import avg_pool2d
from ..ops.shape import pad as _pad
from ..tensor import Tensor
from .module import Module
from .parameter import Parameter

__all__ = ["GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "LocalResponseNorm", "RMSNorm",
           "group_norm", "instance_norm", "local_response_norm", "rms_norm"]


def _channel_shape(x: Tensor) -> tuple:
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Standardise each of `num_groups` channel groups of (N, C, *) over its channels and
    positions, then ·weight[c] + bias[c]."""
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise ShapeError(f"group_norm: expected (N, C, *) with C divisible by num_groups="
                         f"{num_groups}, got shape {tuple(input.shape)}")
    n = input.shape[0]
    y = standardize(input.reshape(n, num_groups, -1), (2,), eps).reshape(*input.shape)
    if weight is not None:
        y = y * weight.reshape(_channel_shape(input))
    if bias is not None:
        y = y + bias.reshape(_channel_shape(input))
    return y


class GroupNorm(Module):
    """Group normalization (Wu & He): per sample, channels split into `num_groups` groups
    standardised together; affine weight (ones) and bias (zeros) per channel."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        if affine:
            self.weight = Parameter(ones(num_channels, device=device, dtype=dtype))
            self.bias = Parameter(zeros(num_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Standardise each (sample, channel) of (N, C, *) over its positions (or with the
    running statistics when not `use_input_stats`), then ·weight + bias. In training the
    running statistics move towards the batch mean of the instance means and unbiased
    variances, as PyTorch's."""
    dims = tuple(range(2, input.ndim))
    cshape = _channel_shape(input)
    if use_input_stats:
        y = standardize(input, dims, eps)
        if running_mean is not None and running_var is not None:
            with no_grad():
                m = int(np.prod(input.shape[2:]))
                mean = input.detach().mean(dims)
                var = input.detach().var(dims, correction=1) if m > 1 else \
                    input.detach().var(dims, correction=0)
                running_mean.mul_(1 - momentum).add_(mean.mean(0) * momentum)
                running_var.mul_(1 - momentum).add_(var.mean(0) * momentum)
    else:
        y = (input - running_mean.reshape(cshape)) / sqrt(running_var.reshape(cshape) + eps)
    if weight is not None:
        y = y * weight.reshape(cshape)
    if bias is not None:
        y = y + bias.reshape(cshape)
    return y


class _InstanceNorm(Module):
    _nd = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        kw = {"device": device, "dtype": dtype}
        if affine:
            self.weight = Parameter(ones(num_features, **kw))
            self.bias = Parameter(zeros(num_features, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, **kw))
            self.register_buffer("running_var", ones(num_features, **kw))
            self.register_buffer("num_batches_tracked", Tensor(0, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, input: Tensor) -> Tensor:
        nd = self._nd
        if input.ndim not in (nd + 1, nd + 2):
            raise ShapeError(f"{type(self).__name__}: expected a {nd + 1}-d or {nd + 2}-d "
                             f"input, got shape {tuple(input.shape)}")
        unbatched = input.ndim == nd + 1
        x = input.unsqueeze(0) if unbatched else input
        if x.shape[1] != self.num_features and self.affine:
            raise ShapeError(f"{type(self).__name__}: expected {self.num_features} channels, "
                             f"got input shape {tuple(input.shape)}")
        use_input_stats = self.training or not self.track_running_stats
        y = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          use_input_stats, self.momentum, self.eps)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over (N, C, L) or (C, L)."""

    _nd = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over (N, C, H, W) or (C, H, W)."""

    _nd = 2


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """x / (k + α·mean of x² over a window of `size` neighbouring channels)^β (PyTorch's
    form: the window is zero-padded by ⌊size/2⌋ before and ⌊(size−1)/2⌋ after)."""
    if input.ndim < 3:
        raise ShapeError(f"local_response_norm: expected 3-d or more (N, C, *) input, got "
                         f"shape {tuple(input.shape)}")
    n, c = input.shape[:2]
    sq = (input * input).reshape(n, 1, c, -1)
    sq = _pad(sq, (0, 0, size // 2, (size - 1) // 2))
    div = avg_pool2d(sq, (size, 1), stride=1).reshape(*input.shape)
    return input / (div * alpha + k) ** beta


class LocalResponseNorm(Module):
    """Local response normalization across channels (see `local_response_norm`)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input: Tensor) -> Tensor:
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / √(mean(x²) + ε) over the trailing `normalized_shape` dims, ·weight; ε defaults to
    the dtype's machine epsilon, as in PyTorch."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ShapeError(f"rms_norm: input shape {tuple(input.shape)} does not end with "
                         f"normalized_shape {shape}")
    if eps is None:
        eps = float(np.finfo(np.dtype(input.dtype.name)).eps)
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    y = input / sqrt((input * input).mean(dims, keepdim=True) + eps)
    return y if weight is None else y * weight


class RMSNorm(Module):
    """Root-mean-square layer normalization (Zhang & Sennrich), weight ones initially."""

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(ones(self.normalized_shape, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)

    def forward(self, input: Tensor) -> Tensor:
        return rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


