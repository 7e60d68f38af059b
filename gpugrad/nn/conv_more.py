"""More convolution layers: `Conv3d`, `ConvTranspose1d`, `ConvTranspose2d` (PyTorch's
parameters, initialisation and options)."""

from __future__ import annotations

from ..ops.conv_transpose import conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d
from ..tensor import Tensor
from .conv import _ConvNd, _ntuple

__all__ = ["Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class Conv3d(_ConvNd):
    """3-d convolution over (N, C_in, D, H, W) inputs: weight (C_out, C_in/groups, kd, kh,
    kw), optional bias (C_out,)."""

    _nd = 3

    def forward(self, input: Tensor) -> Tensor:
        x, padding = self._padded(input)
        return conv3d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                      self.groups)


class _ConvTransposeNd(_ConvNd):
    """Transposed convolution layers: weight (C_in, C_out/groups, *kernel), PyTorch's
    initialisation (fan_in = C_out/groups · ∏ kernel)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple, got "
                             f"{padding!r}")
        if padding_mode != "zeros":
            raise ValueError(f"Only 'zeros' padding mode is supported for "
                             f"{type(self).__name__}, got {padding_mode!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        self.output_padding = _ntuple(output_padding, self._nd)

    def _weight_shape(self) -> tuple:
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def _output_padding(self, input: Tensor, output_size) -> tuple:
        if output_size is None:
            return self.output_padding
        want = tuple(output_size)[-self._nd:]
        spatial = tuple(input.shape[-self._nd:])
        least = tuple((n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                      zip(spatial, self.stride, self.padding, self.dilation, self.kernel_size))
        extra = tuple(w - m for w, m in zip(want, least))
        most = tuple(m + max(s, d) - 1 for m, s, d in zip(least, self.stride, self.dilation))
        if any(not lo <= w <= hi for w, lo, hi in zip(want, least, most)):
            raise ValueError(f"{type(self).__name__}: requested an output size of {want}, but "
                             f"valid sizes range from {least} to {most} (for an input of shape "
                             f"{tuple(input.shape)})")
        return extra

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        return self._fn(input, self.weight, self.bias, self.stride, self.padding,
                        self._output_padding(input, output_size), self.groups, self.dilation)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        return s


class ConvTranspose1d(_ConvTransposeNd):
    """1-d transposed convolution over (N, C_in, L) inputs (see `F.conv_transpose1d`)."""

    _nd = 1
    _fn = staticmethod(conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """2-d transposed convolution over (N, C_in, H, W) inputs (see `F.conv_transpose2d`)."""

    _nd = 2
    _fn = staticmethod(conv_transpose2d)




class ConvTranspose3d(_ConvTransposeNd):
    """3-d transposed convolution over (N, C_in, D, H, W) inputs (see
    `F.conv_transpose3d`)."""

    _nd = 3
    _fn = staticmethod(conv_transpose3d)
