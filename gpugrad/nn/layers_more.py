"""More layers, as PyTorch's: channel dropout (`Dropout1d`, `Dropout2d`), `AlphaDropout`,
1-d pooling, `Upsample`, `PixelShuffle`/`PixelUnshuffle`, `Bilinear` and `EmbeddingBag`.
Each composes existing ops."""

from __future__ import annotations

import math

import numpy as np

from ..creation import empty, rand, zeros
from ..errors import ShapeError
from ..ops.elementwise import cast
from ..ops.index import index_select, segment_sum
from ..ops.pool_more import avg_pool1d, max_pool1d
from ..ops.reduce import amax
from ..ops.resample import interpolate, pixel_shuffle, pixel_unshuffle
from ..ops.shape import stack
from ..tensor import Tensor
from . import init
from ._functional_extra import embedding
from .layers import _padding_index
from .module import Module
from .parameter import Parameter
from .pooling import _AvgPoolNd, _MaxPoolNd

__all__ = ["Dropout1d", "Dropout2d", "AlphaDropout", "MaxPool1d", "AvgPool1d", "Upsample",
           "PixelShuffle", "PixelUnshuffle", "Bilinear", "EmbeddingBag", "feature_dropout",
           "alpha_dropout", "bilinear", "dropout1d", "dropout2d", "dropout3d", "embedding_bag",
           "feature_alpha_dropout", "FeatureAlphaDropout"]


def _check_p(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def feature_dropout(input: Tensor, p: float, training: bool, batched: bool) -> Tensor:
    """Zero whole channels with probability p (one draw per (sample, channel)) and scale
    the rest by 1/(1 − p)."""
    p = _check_p(p)
    if not training or p == 0.0:
        return input
    lead = 2 if batched else 1
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    keep = rand(*shape, device=input.device) >= p
    return input * (cast(keep, input.dtype) * (1.0 / (1.0 - p)) if p < 1 else 0.0)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Channel dropout of (N, C, L) or (C, L)."""
    return feature_dropout(input, p, training, input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Channel dropout of (N, C, H, W) (a 3-d input counts as (N, C, L), as in PyTorch)."""
    return feature_dropout(input, p, training, input.ndim in (3, 4))


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Channel dropout of (N, C, D, H, W) or (C, D, H, W)."""
    return feature_dropout(input, p, training, input.ndim == 5)


class _FeatureDropout(Module):
    _nd = 1

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p, self.inplace = _check_p(p), inplace

    def forward(self, input: Tensor) -> Tensor:
        nd = self._nd
        if input.ndim not in (nd + 1, nd + 2):
            raise ShapeError(f"{type(self).__name__}: expected a {nd + 1}-d or {nd + 2}-d "
                             f"input, got shape {tuple(input.shape)}")
        # a 3-d input to Dropout2d is (N, C, L), as PyTorch keeps it for compatibility
        batched = input.ndim == nd + 2 or (nd == 2 and input.ndim == 3)
        return feature_dropout(input, self.p, self.training, batched)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_FeatureDropout):
    """Zero entire channels of (N, C, L) or (C, L) inputs with probability p."""

    _nd = 1


class Dropout2d(_FeatureDropout):
    """Zero entire channels of (N, C, H, W) inputs with probability p."""

    _nd = 2


_SELU_ALPHA = 1.7580993408473766  # λ·α of SELU


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False) -> Tensor:
    """Dropout that keeps SELU's zero mean and unit variance: with a = 1/√((α²p + 1)(1 − p))
    and keep mask m, y = a·m·x + α·a·(m − 1) + α·a·p (PyTorch's form, α = λα of SELU)."""
    p = _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    a = 1.0 / math.sqrt((_SELU_ALPHA ** 2 * p + 1) * (1 - p))
    m = cast(rand(*input.shape, device=input.device) >= p, input.dtype)
    return input * (m * a) + (m - 1) * (_SELU_ALPHA * a) + _SELU_ALPHA * a * p


class AlphaDropout(Module):
    """`alpha_dropout` in training mode, the identity in eval mode."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p, self.inplace = _check_p(p), inplace

    def forward(self, input: Tensor) -> Tensor:
        return alpha_dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class MaxPool1d(_MaxPoolNd):
    """1-d max pooling (see `F.max_pool1d`)."""

    _fn = staticmethod(max_pool1d)


class AvgPool1d(_AvgPoolNd):
    """1-d average pooling (see `F.avg_pool1d`)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad)


class Upsample(Module):
    """Resize by `size` or `scale_factor` (see `F.interpolate`)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None) -> None:
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


class PixelShuffle(Module):
    """(…, C·r², H, W) → (…, C, H·r, W·r) (see `F.pixel_shuffle`)."""

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(…, C, H·r, W·r) → (…, C·r², H, W) (see `F.pixel_unshuffle`)."""

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:
    """y[…, o] = Σᵢⱼ x₁[…, i]·W[o, i, j]·x₂[…, j] + b[o]."""
    o, i1, i2 = weight.shape
    if input1.shape[-1] != i1 or input2.shape[-1] != i2 or \
            tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise ShapeError(f"bilinear: input1 {tuple(input1.shape)} and input2 "
                         f"{tuple(input2.shape)} do not fit weight {tuple(weight.shape)}")
    lead = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, i1)
    x2 = input2.reshape(-1, i2)
    t = (x1 @ weight.permute(1, 0, 2).reshape(i1, o * i2)).reshape(-1, o, i2)
    y = (t * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, o)


class Bilinear(Module):
    """y = x₁ᵀ·A·x₂ + b with weight (out, in1, in2) and bias (out,), both U(±1/√in1)."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        kw = {"device": device, "dtype": dtype}
        self.weight = Parameter(empty(out_features, in1_features, in2_features, **kw))
        if bias:
            self.bias = Parameter(empty(out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(±1/√in1_features) for weight and bias, as PyTorch."""
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None,
                  max_norm: float | None = None, norm_type: float = 2.0,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """Sums, means or maxima of bags of rows of `weight` (see `EmbeddingBag`)."""
    name = "embedding_bag"
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"{name}: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if padding_idx is not None:
        padding_idx %= weight.shape[0]
    dim = weight.shape[1]
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{name}: offsets must be None for a 2-d input, got shape "
                             f"{tuple(input.shape)}")
        b, length = input.shape
        bag_of = np.repeat(np.arange(b), length)
        flat = input.reshape(-1)
        pw = None if per_sample_weights is None else per_sample_weights.reshape(-1)
    elif input.ndim == 1:
        if offsets is None or offsets.ndim != 1:
            raise ValueError(f"{name}: a 1-d input needs 1-d offsets, got "
                             f"{None if offsets is None else tuple(offsets.shape)}")
        starts = np.asarray(offsets.cpu().numpy(), dtype=np.int64)
        n = input.shape[0]
        if include_last_offset:
            bounds = starts
        else:
            bounds = np.append(starts, n)
        b = len(bounds) - 1
        bag_of = np.repeat(np.arange(b), np.diff(bounds))[:n]
        flat, pw = input, per_sample_weights
    else:
        raise ShapeError(f"{name}: expected a 1-d or 2-d input, got shape "
                         f"{tuple(input.shape)}")
    if pw is not None and mode != "sum":
        raise NotImplementedError(f"{name}: per_sample_weights is only supported for "
                                  f"mode='sum', got mode={mode!r}")
    idx = flat.cpu().numpy()
    keep = np.ones(len(idx), bool) if padding_idx is None else idx != padding_idx
    rows = embedding(flat, weight, None, max_norm, norm_type, scale_grad_by_freq, sparse)
    if pw is not None:
        rows = rows * pw.unsqueeze(-1)
    sel = np.nonzero(keep)[0]
    dev = weight.device
    rows = index_select(rows, 0, Tensor(sel, device=dev))
    seg = bag_of[sel]
    if mode == "max":
        outs = []
        for i in range(b):
            mine = np.nonzero(seg == i)[0]
            outs.append(amax(index_select(rows, 0, Tensor(mine, device=dev)), 0)
                        if len(mine) else zeros(dim, dtype=rows.dtype, device=dev))
        return stack(outs) if outs else zeros(0, dim, dtype=rows.dtype, device=dev)
    out = segment_sum(rows, Tensor(seg, device=dev), b)
    if mode == "mean":
        counts = np.maximum(np.bincount(seg, minlength=b), 1).astype(np.float64)
        out = out / Tensor(counts.reshape(b, 1), dtype=out.dtype, device=dev)
    return out


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings without materialising the lookups as a
    padded batch: `input` (B, L) is B bags of L indices, or 1-d with `offsets` (the start of
    each bag). `per_sample_weights` (mode "sum") scale each lookup; entries equal to
    `padding_idx` are left out (not counted in the mean); empty bags give zeros."""

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, _weight: Tensor | None = None,
                 include_last_offset: bool = False, padding_idx: int | None = None,
                 device=None, dtype=None) -> None:
        super().__init__()
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type, self.mode = max_norm, norm_type, mode
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        self.include_last_offset = include_last_offset
        padding_idx = _padding_index(padding_idx, num_embeddings, "EmbeddingBag: ")
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = Parameter(empty(num_embeddings, embedding_dim, device=device,
                                          dtype=dtype))
            init.normal_(self.weight)
            if padding_idx is not None:
                self.weight._data[padding_idx] = 0
        else:
            self.weight = Parameter(_weight)

    def forward(self, input: Tensor, offsets: Tensor | None = None,
                per_sample_weights: Tensor | None = None) -> Tensor:
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                             self.scale_grad_by_freq, self.mode, self.sparse,
                             per_sample_weights, self.include_last_offset, self.padding_idx)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, **kwargs) -> EmbeddingBag:
        """An EmbeddingBag whose weight is `embeddings` (rows × dim), frozen by default."""
        bag = cls(embeddings.shape[0], embeddings.shape[1], _weight=embeddings.detach(),
                  **kwargs)
        bag.weight.requires_grad_(not freeze)
        return bag

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """`alpha_dropout` with one keep/drop draw per (sample, channel), as PyTorch's."""
    p = _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    a = 1.0 / math.sqrt((_SELU_ALPHA ** 2 * p + 1) * (1 - p))
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    m = cast(rand(*shape, device=input.device) >= p, input.dtype)
    return input * (m * a) + (m - 1) * (_SELU_ALPHA * a) + _SELU_ALPHA * a * p


class FeatureAlphaDropout(AlphaDropout):
    """`feature_alpha_dropout` in training mode, the identity in eval mode."""

    def forward(self, input: Tensor) -> Tensor:
        return feature_alpha_dropout(input, self.p, self.training)
