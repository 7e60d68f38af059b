"""Convolution layers: `Conv1d` and `Conv2d` (stride, padding, dilation, groups)."""

from __future__ import annotations

import math

from ..creation import empty
from ..ops.conv import conv1d, conv2d
from ..ops.resample import pad as _pad_modes
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Conv1d", "Conv2d"]


class _ConvNd(Module):
    """Shared parameters and initialisation of the N-d convolution layers."""

    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__()
        nd = self._nd
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{type(self).__name__}: in_channels ({in_channels}) and "
                             f"out_channels ({out_channels}) must be divisible by groups "
                             f"({groups})")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{type(self).__name__}: padding_mode must be one of 'zeros', "
                             f"'reflect', 'replicate' or 'circular', got {padding_mode!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _ntuple(kernel_size, nd)
        self.stride = _ntuple(stride, nd)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, nd)
        self.dilation = _ntuple(dilation, nd)
        self.groups = int(groups)
        self.padding_mode = padding_mode
        self.weight = Parameter(empty(*self._weight_shape(), device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _padded(self, input: Tensor) -> tuple:
        """(input, padding) for the convolution: with a non-zero `padding_mode` the input
        is padded here in that mode (F.pad) and the convolution pads nothing."""
        if self.padding_mode == "zeros":
            return input, self.padding
        nd = self._nd
        if self.padding == "valid":
            return input, 0
        if self.padding == "same":
            totals = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
            pairs = [(t // 2, t - t // 2) for t in totals]
        else:
            pairs = [(p, p) for p in self.padding]
        flat = [v for pair in reversed(pairs) for v in pair]
        return _pad_modes(input, flat, self.padding_mode), (0,) * nd

    def _weight_shape(self) -> tuple:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def reset_parameters(self) -> None:
        """PyTorch's default: W ~ kaiming_uniform_(a=√5) = U(±1/√fan_in), b ~ U(±1/√fan_in),
        with fan_in = in_channels/groups · ∏ kernel_size."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding not in ("valid", (0,) * self._nd):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


def _ntuple(v, nd: int) -> tuple:
    return (int(v),) * nd if isinstance(v, int) else tuple(int(e) for e in v)


class Conv1d(_ConvNd):
    """1-d convolution over (N, C_in, L) inputs: weight (C_out, C_in/groups, k), optional
    bias (C_out,). `groups=C_in` is a depthwise convolution; padding may be 'same'/'valid'."""

    _nd = 1

    def forward(self, input: Tensor) -> Tensor:
        x, padding = self._padded(input)
        return conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                      self.groups)


class Conv2d(_ConvNd):
    """2-d convolution over (N, C_in, H, W) inputs: weight (C_out, C_in/groups, kh, kw),
    optional bias (C_out,). `groups=C_in` is a depthwise convolution; padding may be an
    int, a pair, 'same' or 'valid'. Initialised as in PyTorch."""

    _nd = 2

    def forward(self, input: Tensor) -> Tensor:
        x, padding = self._padded(input)
        return conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                      self.groups)
