"""Thin module forms of functional ops, as PyTorch's: 3-d pooling, adaptive max pooling,
max unpooling, `Fold`/`Unfold`, `CosineSimilarity`, `PairwiseDistance`, the fixed-mode
`Upsampling*2d`, `Dropout3d` and `InstanceNorm3d`."""

from __future__ import annotations

from ..ops.conv_transpose import fold_patches, unfold_patches
from ..ops.pool_more import (
    adaptive_avg_pool1d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
    avg_pool3d,
    lp_pool1d,
    lp_pool2d,
    lp_pool3d,
    max_pool3d,
    max_unpool1d,
    max_unpool2d,
)
from ..tensor import Tensor
from ._functional_extra import channel_shuffle, cosine_similarity, pairwise_distance
from .layers_more import Upsample, _FeatureDropout
from .module import Module
from .normalization import _BatchNorm
from .normalization_more import _InstanceNorm
from .pooling import _AdaptiveMaxPoolNd, _AdaptivePoolNd, _AvgPoolNd, _MaxPoolNd, _MaxUnpoolNd

__all__ = ["MaxPool3d", "AvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "MaxUnpool2d",
           "Fold", "Unfold", "CosineSimilarity", "PairwiseDistance", "UpsamplingNearest2d",
           "UpsamplingBilinear2d", "Dropout3d", "InstanceNorm3d", "AdaptiveAvgPool1d",
           "ChannelShuffle", "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "LPPool1d", "LPPool2d",
           "LPPool3d", "BatchNorm3d", "MaxUnpool1d"]


class MaxPool3d(_MaxPoolNd):
    """3-d max pooling (see `F.max_pool3d`)."""

    _fn = staticmethod(max_pool3d)


class AvgPool3d(_AvgPoolNd):
    """3-d average pooling (see `F.avg_pool3d`)."""

    _fn = staticmethod(avg_pool3d)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Adaptive 1-d max pooling to `output_size`."""

    _fn = staticmethod(adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Adaptive 2-d max pooling to `output_size`."""

    _fn = staticmethod(adaptive_max_pool2d)


class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of MaxPool2d (see `F.max_unpool2d`)."""

    _fn = staticmethod(max_unpool2d)


class Unfold(Module):
    """Sliding local blocks as columns (see `F.unfold`)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = (kernel_size, dilation,
                                                                      padding, stride)

    def forward(self, input: Tensor) -> Tensor:
        return unfold_patches(input, self.kernel_size, self.dilation, self.padding,
                              self.stride)


class Fold(Module):
    """Columns summed back into an image (see `F.fold`)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.output_size = output_size
        self.kernel_size, self.dilation, self.padding, self.stride = (kernel_size, dilation,
                                                                      padding, stride)

    def forward(self, input: Tensor) -> Tensor:
        return fold_patches(input, self.output_size, self.kernel_size, self.dilation,
                            self.padding, self.stride)


class CosineSimilarity(Module):
    """Cosine similarity along `dim` (see `F.cosine_similarity`)."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """p-norm distance over the last dim (see `F.pairwise_distance`)."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling of (N, C, H, W)."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling of (N, C, H, W) with align_corners=True (PyTorch's choice)."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class Dropout3d(_FeatureDropout):
    """Zero entire channels of (N, C, D, H, W) or (C, D, H, W) inputs with probability p."""

    _nd = 3


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over (N, C, D, H, W) or (C, D, H, W)."""

    _nd = 3


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """Adaptive 1-d average pooling to `output_size`."""

    _fn = staticmethod(adaptive_avg_pool1d)


class ChannelShuffle(Module):
    """Interleave the channels of `groups` groups (see `F.channel_shuffle`)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Tensor) -> Tensor:
        return channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    """Adaptive 3-d average pooling to `output_size`."""

    _fn = staticmethod(adaptive_avg_pool3d)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Adaptive 3-d max pooling to `output_size`."""

    _fn = staticmethod(adaptive_max_pool3d)


class _LPPool(Module):
    _fn = staticmethod(lp_pool1d)

    def __init__(self, norm_type: float, kernel_size, stride=None,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type, self.kernel_size, self.stride = norm_type, kernel_size, stride
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        return self._fn(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPool):
    """Power-average pooling over 1-d windows (see `F.lp_pool1d`)."""

    _fn = staticmethod(lp_pool1d)


class LPPool2d(_LPPool):
    """Power-average pooling over 2-d windows (see `F.lp_pool2d`)."""

    _fn = staticmethod(lp_pool2d)


class LPPool3d(_LPPool):
    """Power-average pooling over 3-d windows (see `F.lp_pool3d`)."""

    _fn = staticmethod(lp_pool3d)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) inputs over N, D, H and W."""

    _expected_ndim = (5,)


class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of MaxPool1d (see `F.max_unpool1d`)."""

    _fn = staticmethod(max_unpool1d)
