"""`gg.nn.functional` (import as `F`): stateless forms of the layers, activations and
losses. The module classes in `gg.nn` call these."""

from __future__ import annotations

import warnings

from .. import _dtype
from .._autocast import FP32, LOWER, autocast_fp32, autocast_inputs
from ..autograd.grad_mode import no_grad
from ..errors import ShapeError
from ..ops import activation as _act
from ..ops.conv import conv1d, conv2d
from ..ops.elementwise import cast, relu, sigmoid, tanh
from ..ops.linalg import linear as _linear
from ..ops.normalization import layer_norm_rows, standardize
from ..ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from ..tensor import Tensor, _wrap_array
from ._functional_loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)

# Under autocast the losses see float32 inputs (the one hook for all of them).
(binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, l1_loss,
 mse_loss, nll_loss, smooth_l1_loss) = map(autocast_fp32, (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, l1_loss,
    mse_loss, nll_loss, smooth_l1_loss))

__all__ = [
    "linear", "relu", "sigmoid", "tanh", "gelu", "silu", "swish", "leaky_relu", "softmax",
    "log_softmax", "dropout", "layer_norm", "batch_norm", "embedding", "one_hot", "mse_loss",
    "l1_loss", "cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "nll_loss", "huber_loss", "smooth_l1_loss",
    "conv1d", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "softplus", "mish", "elu", "selu", "celu", "hardtanh", "relu6", "hardsigmoid",
    "hardswish", "softsign", "logsigmoid",
]


def _float(x: Tensor) -> Tensor:
    return x if x.dtype.category >= 2 else cast(x, _dtype.DEFAULT_FLOAT)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x·Wᵀ + b, with W of shape (out_features, in_features) and x of shape (*, in)."""
    input, weight, bias = autocast_inputs(LOWER, input, weight, bias)
    w_in = weight.shape[-1] if weight.ndim else None
    if input.ndim == 0 or weight.ndim not in (1, 2) or input.shape[-1] != w_in:
        raise ShapeError(f"linear: input shape {tuple(input.shape)} does not match weight shape "
                         f"{tuple(weight.shape)} (the input's last dimension must equal "
                         f"in_features = {w_in})")
    return _linear(input, weight, bias)


# --- activations ----------------------------------------------------------------------------
def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x·Φ(x) (`approximate="none"`, with erf) or its tanh approximation (`"tanh"`)."""
    return _act.gelu(input, approximate)


def silu(input: Tensor) -> Tensor:
    """x·σ(x) (also called swish with β = 1)."""
    return _act.silu(input)


def swish(input: Tensor, beta: float | Tensor = 1.0) -> Tensor:
    """x·σ(β·x); `beta` is a number or a (learnable) Tensor broadcastable to x."""
    return _act.swish(input, beta)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope·x otherwise."""
    return _act.leaky_relu(input, negative_slope)


softplus, mish, elu, selu, celu = _act.softplus, _act.mish, _act.elu, _act.selu, _act.celu
hardtanh, relu6, hardsigmoid, hardswish = (_act.hardtanh, _act.relu6, _act.hardsigmoid,
                                           _act.hardswish)
softsign, logsigmoid = _act.softsign, _act.logsigmoid


def _softmax_dim(x: Tensor, dim: int | None, name: str) -> int:
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the "
                      "call to include dim=X as an argument.", UserWarning, stacklevel=3)
        dim = 0 if x.ndim in (0, 1, 3) else 1
    n = max(x.ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{name}: dimension {dim} out of range for a {x.ndim}-d tensor")
    return dim % n if x.ndim else None


def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """exp(x) / Σ_dim exp(x), computed stably."""
    (input,) = autocast_inputs(FP32, input)
    x = _float(input if dtype is None else cast(input, dtype))
    return _act.Softmax.apply(x, _softmax_dim(x, dim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """x − logsumexp_dim(x), computed stably."""
    (input,) = autocast_inputs(FP32, input)
    x = _float(input if dtype is None else cast(input, dtype))
    return _act.LogSoftmax.apply(x, _softmax_dim(x, dim, "log_softmax"))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1 − p) (training only).
    The mask is drawn with gpugrad's RNG on the input's device."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return _act.dropout(input, float(p))


# --- normalization --------------------------------------------------------------------------
def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Standardise over the trailing `normalized_shape` dims, then scale and shift."""
    input, weight, bias = autocast_inputs(FP32, input, weight, bias)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[-k:]) != shape:
        raise ShapeError(f"layer_norm: input shape {tuple(input.shape)} does not end with "
                         f"normalized_shape {shape}")
    if (k == 1 and input._backend.fuses_rows(input.ndim, input.ndim - 1)
            and all(t is None or tuple(t.shape) == shape for t in (weight, bias))):
        return layer_norm_rows(input, weight, bias, float(eps))
    out = standardize(input, tuple(range(input.ndim - k, input.ndim)), float(eps))
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float | Tensor = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) of an (N, C, *) input. In training, batch statistics
    are used and the running ones updated in place on the device (unbiased variance);
    otherwise the running statistics are used."""
    input, weight, bias = autocast_inputs(FP32, input, weight, bias)
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected an (N, C, *) input, got shape {tuple(input.shape)}")
    c = input.shape[1]
    bshape = (1, c) + (1,) * (input.ndim - 2)
    dims = (0,) + tuple(range(2, input.ndim))
    if training or running_mean is None or running_var is None:
        n = input.numel() // max(c, 1)
        if training and n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {tuple(input.shape)}")
        x = input._data
        mean = x.mean(axis=dims, keepdims=True)
        var = input._backend.xp.square(x - mean).mean(axis=dims, keepdims=True)
        if training and running_mean is not None and running_var is not None:
            _update_running(running_mean, running_var, mean, var, n, momentum, input._backend)
        out = standardize(input, dims, float(eps), (mean, var))
    else:
        rm, rv = running_mean.reshape(bshape), running_var.reshape(bshape)
        out = (input - rm) * ((rv + eps) ** -0.5)
    if weight is not None:
        out = out * weight.reshape(bshape)
    if bias is not None:
        out = out + bias.reshape(bshape)
    return out


def _update_running(rm: Tensor, rv: Tensor, mean, var, n: int, momentum, backend) -> None:
    with no_grad():
        batch_mean = _wrap_array(mean.reshape(-1), backend)
        batch_var = _wrap_array(var.reshape(-1) * (n / max(n - 1, 1)), backend)
        rm.mul_(1 - momentum).add_(cast(batch_mean, rm.dtype) * momentum)
        rv.mul_(1 - momentum).add_(cast(batch_var, rv.dtype) * momentum)


# --- embeddings and encodings ----------------------------------------------------------------
def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding along a new last dimension. With num_classes = -1 the count
    is max + 1, which reads the maximum back to the host."""
    if tensor.dtype.category != 1:
        raise TypeError(f"one_hot: expected an integer tensor, got dtype {tensor.dtype}")
    xp = tensor._backend.xp
    # Class range checked on the CPU only, as PyTorch: on a GPU it would read the range
    # back to the host, a synchronisation per call.
    span = tensor._backend.value_range(tensor._data) if tensor.numel() else None
    if span is not None and int(span[0]) < 0:
        raise RuntimeError(f"one_hot: Class values must be non-negative (got "
                           f"{int(span[0])} in a tensor of shape {tuple(tensor.shape)})")
    if num_classes < 0:
        num_classes = int(tensor.max().item()) + 1 if tensor.numel() else 0
    elif span is not None and int(span[1]) >= num_classes:
        raise RuntimeError(f"one_hot: Class values must be smaller than num_classes (got "
                           f"{int(span[1])} with num_classes={num_classes})")
    classes = xp.arange(num_classes)
    return _wrap_array((tensor._data[..., None] == classes).astype(xp.int64), tensor._backend)


from .attention import scaled_dot_product_attention  # noqa: E402 - uses this module

__all__ += ["scaled_dot_product_attention"]

from ..ops.conv_transpose import (  # noqa: E402
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
)
from ..ops.conv_transpose import fold_patches as fold  # noqa: E402
from ..ops.conv_transpose import unfold_patches as unfold  # noqa: E402
from ..ops.pool_more import (  # noqa: E402
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool3d,
    max_pool1d,
    max_pool3d,
    max_unpool2d,
)
from ..ops.resample import interpolate, pad, pixel_shuffle, pixel_unshuffle  # noqa: E402
from ..ops.softmax import softmin  # noqa: E402
from ._functional_extra import (  # noqa: E402
    cosine_embedding_loss,
    cosine_similarity,
    embedding,
    gaussian_nll_loss,
    glu,
    gumbel_softmax,
    kl_div,
    margin_ranking_loss,
    normalize,
    pairwise_distance,
    poisson_nll_loss,
    triplet_margin_loss,
)

upsample = interpolate

__all__ += [
    "normalize", "cosine_similarity", "pairwise_distance", "kl_div", "margin_ranking_loss",
    "triplet_margin_loss", "cosine_embedding_loss", "poisson_nll_loss", "gaussian_nll_loss",
    "glu", "gumbel_softmax", "softmin", "conv_transpose1d", "conv_transpose2d", "conv3d",
    "fold", "unfold", "max_pool1d", "avg_pool1d", "max_pool3d", "avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "max_unpool2d", "interpolate", "upsample",
    "pad", "pixel_shuffle", "pixel_unshuffle",
]

from .layers_more import alpha_dropout, bilinear  # noqa: E402
from .normalization_more import (  # noqa: E402
    group_norm,
    instance_norm,
    local_response_norm,
    rms_norm,
)

__all__ += ["alpha_dropout", "bilinear", "group_norm", "instance_norm", "local_response_norm",
            "rms_norm"]

from ..ops.ctc import ctc_loss  # noqa: E402

__all__ += ["ctc_loss"]

from ..ops.pool_more import adaptive_avg_pool1d  # noqa: E402
from ._functional_extra import (  # noqa: E402
    channel_shuffle,
    hinge_embedding_loss,
    multi_margin_loss,
    multilabel_soft_margin_loss,
    pdist,
    soft_margin_loss,
    triplet_margin_with_distance_loss,
)
from .layers_more import dropout1d, dropout2d, dropout3d  # noqa: E402

__all__ += ["adaptive_avg_pool1d", "channel_shuffle", "hinge_embedding_loss",
            "multi_margin_loss", "multilabel_soft_margin_loss", "pdist", "soft_margin_loss",
            "triplet_margin_with_distance_loss", "dropout1d", "dropout2d", "dropout3d"]

from ..ops.pool_more import (  # noqa: E402
    adaptive_avg_pool3d,
    adaptive_max_pool3d,
    lp_pool1d,
    lp_pool2d,
    lp_pool3d,
)

__all__ += ["adaptive_avg_pool3d", "adaptive_max_pool3d", "lp_pool1d", "lp_pool2d",
            "lp_pool3d"]

from ..ops.conv_transpose import conv_transpose3d  # noqa: E402

__all__ += ["conv_transpose3d"]

from .layers_more import embedding_bag  # noqa: E402

__all__ += ["embedding_bag"]

from ..ops.pool_more import max_unpool1d  # noqa: E402
from .layers_more import feature_alpha_dropout  # noqa: E402


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated PyTorch alias: `interpolate(..., mode="nearest")`."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated PyTorch alias: `interpolate(..., mode="bilinear", align_corners=True)`."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


__all__ += ["max_unpool1d", "feature_alpha_dropout", "upsample_nearest", "upsample_bilinear"]

from .grid_sample import affine_grid, grid_sample  # noqa: E402

__all__ += ["affine_grid", "grid_sample"]

from ._functional_extra import multilabel_margin_loss  # noqa: E402

__all__ += ["multilabel_margin_loss"]
