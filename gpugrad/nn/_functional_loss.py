"""The loss functions of `gg.nn.functional` (re-exported there)."""

from __future__ import annotations

from ..errors import ShapeError
from ..ops import loss as _loss
from ..ops.elementwise import abs, cast, where  # noqa: A004
from ..ops.index import gather
from ..tensor import Tensor, _wrap_array

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _same_shape(op: str, input: Tensor, target: Tensor) -> Tensor:
    if not isinstance(target, Tensor):
        target = Tensor(target, dtype=input.dtype, device=input.device)
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"{op}: target shape {tuple(target.shape)} must be the same as input "
                         f"shape {tuple(input.shape)}")
    return cast(target, input.dtype) if target.dtype is not input.dtype else target


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """(x − y)², reduced."""
    target = _same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """|x − y|, reduced."""
    target = _same_shape("l1_loss", input, target)
    return _reduce(abs(input - target), reduction, "l1_loss")


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """½d² where |d| < δ, else δ(|d| − ½δ), with d = x − y; reduced."""
    target = _same_shape("huber_loss", input, target)
    d = input - target
    ad = abs(d)
    loss = where(ad < delta, d * d * 0.5, (ad - 0.5 * delta) * delta)
    return _reduce(loss, reduction, "huber_loss")


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """½d²/β where |d| < β, else |d| − ½β (Huber divided by β)."""
    if beta == 0:
        return l1_loss(input, target, reduction)
    _check_reduction(reduction, "smooth_l1_loss")
    loss = huber_loss(input, target, "none", beta) * (1.0 / beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


# --- class-index losses ----------------------------------------------------------------------
def _class_targets(op: str, input: Tensor, target: Tensor, allow_probs: bool):
    """Validate `target` against `input`; returns (class dim, is probability target)."""
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor, got {type(target).__name__}")
    if input.ndim == 0:
        raise ShapeError(f"{op}: input must have a class dimension, got shape ()")
    cdim = 0 if input.ndim == 1 else 1
    expected = tuple(s for i, s in enumerate(input.shape) if i != cdim)
    if target._backend is not input._backend:
        raise ValueError(f"{op}: target is on {target.device} but input is on {input.device}")
    if allow_probs and target.dtype.is_floating_point and tuple(target.shape) == \
            tuple(input.shape):
        return cdim, True
    if target.dtype.category != 1 or tuple(target.shape) != expected:
        probs = " (or float class probabilities of the input's shape)" if allow_probs else ""
        raise ShapeError(f"{op}: expected integer class targets of shape {expected}{probs} for "
                         f"input of shape {tuple(input.shape)}, got target of shape "
                         f"{tuple(target.shape)} and dtype {target.dtype}")
    return cdim, False


def _class_weights(input: Tensor, weight: Tensor | None, op: str):
    if weight is None:
        return None
    c = input.shape[0 if input.ndim == 1 else 1]
    if tuple(weight.shape) != (c,):
        raise ShapeError(f"{op}: weight of shape {tuple(weight.shape)} does not match "
                         f"{c} classes")
    if weight._backend is not input._backend:
        raise ValueError(f"{op}: weight is on {weight.device} but input is on {input.device}")
    return weight._data.astype(input._data.dtype, copy=False)


def _indices(op: str, input: Tensor, target: Tensor, ignore_index: int, c: int):
    """(safe indices, valid mask) as arrays; range-checked on the CPU (a free check there;
    on the GPU it would be a host sync, so out-of-range classes only contribute nothing)."""
    xp = input._backend.xp
    t = target._data
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)
    if xp.__name__ == "numpy" and safe.size and (safe.min() < 0 or safe.max() >= c):
        bad = safe[(safe < 0) | (safe >= c)].flat[0]
        raise IndexError(f"{op}: target {int(bad)} is out of bounds for {c} classes")
    return safe, valid


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits `input` (N, C, *) or (C,) against integer class targets
    (N, *) or class probabilities of the input's shape, computed stably from log_softmax;
    its gradient is softmax − (smoothed) one-hot. `label_smoothing` ε mixes the targets
    with the uniform distribution: q = (1 − ε)·onehot + ε/C."""
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    cdim, probs = _class_targets("cross_entropy", input, target, allow_probs=True)
    c = input.shape[cdim]
    w = _class_weights(input, weight, "cross_entropy")
    if probs:
        dt = input._data.dtype
        if target.requires_grad:  # q as a Tensor, so the loss is differentiable in it
            q = target.to(input.dtype) * (1 - label_smoothing) + label_smoothing / c
            if w is not None:
                q = q * _wrap_array(w.reshape(tuple(c if i == cdim else 1
                                                     for i in range(input.ndim))),
                                    input._backend)
        else:
            q = target._data.astype(dt, copy=False) * (1 - label_smoothing) + label_smoothing / c
            if w is not None:
                q = q * w.reshape(tuple(c if i == cdim else 1 for i in range(input.ndim)))
        loss = _loss.SoftmaxCrossEntropy.apply(input, q, cdim)
        return _reduce(loss, reduction, "cross_entropy")
    safe, valid = _indices("cross_entropy", input, target, ignore_index, c)
    if (input.ndim == 2 and w is None and label_smoothing == 0.0
            and input._backend.fuses_rows(2, 1)):  # one fused kernel each way
        return _loss.IndexCrossEntropy.apply(input, target, ignore_index, reduction)
    return _index_cross_entropy(input, cdim, c, safe, valid, w, label_smoothing, reduction)


def _index_cross_entropy(input: Tensor, cdim: int, c: int, safe, valid, w, label_smoothing,
                         reduction: str) -> Tensor:
    """Cross-entropy against integer targets (as `safe` indices and a `valid` mask) through
    the dense (smoothed, weighted) one-hot distribution."""
    backend = input._backend
    q, total = _loss.dense_targets(backend.xp, safe, valid, c, cdim, input._data.dtype, w,
                                   label_smoothing)
    loss = _loss.SoftmaxCrossEntropy.apply(input, q, cdim)
    if reduction != "mean":
        return _reduce(loss, reduction, "cross_entropy")
    return loss.sum() / _wrap_array(total, backend)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """−w[t]·x[t] for log-probabilities x (N, C, *) or (C,) and integer targets; the mean
    divides by the total weight of the non-ignored targets."""
    _check_reduction(reduction, "nll_loss")
    cdim, _ = _class_targets("nll_loss", input, target, allow_probs=False)
    c = input.shape[cdim]
    dt = input._data.dtype
    w = _class_weights(input, weight, "nll_loss")
    safe, valid = _indices("nll_loss", input, target, ignore_index, c)
    backend = input._backend
    picked = gather(input, cdim, _wrap_array(safe, backend).unsqueeze(cdim)).squeeze(cdim)
    wt = valid.astype(dt) if w is None else w[safe] * valid
    wt_t = _wrap_array(wt, backend)
    loss = -picked * wt_t
    if reduction != "mean":
        return _reduce(loss, reduction, "nll_loss")
    return loss.sum() / wt_t.sum()


# --- binary losses ---------------------------------------------------------------------------
def _check_probabilities(input: Tensor) -> None:
    """Every input in [0, 1] (NaN fails), as PyTorch checks on the CPU. Checked on the CPU
    backend only: on a GPU the check would read a flag back to the host, a synchronisation
    per loss (PyTorch's CUDA kernel asserts on the device instead)."""
    x = input._data
    span = input._backend.value_range(x) if x.size else None
    if span is None:
        return
    lo, hi = span
    if not (lo >= 0 and hi <= 1):  # NaN fails too
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 "
                           f"and 1 (input of shape {tuple(input.shape)}, min {lo}, "
                           f"max {hi})")


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """−w·(y·ln x + (1 − y)·ln(1 − x)) for probabilities x (logs clamped at −100)."""
    _check_reduction(reduction, "binary_cross_entropy")
    target = _same_shape("binary_cross_entropy", input, target)
    _check_probabilities(input)
    loss = _loss.BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of σ(x), computed stably from the logits x:
    (1 − y)·x + w_pos·softplus(−x), with w_pos = 1 + (pos_weight − 1)·y."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    target = _same_shape("binary_cross_entropy_with_logits", input, target)
    if pos_weight is not None:
        pos_weight = cast(pos_weight, input.dtype)
    loss = _loss.BinaryCrossEntropyWithLogits.apply(input, target, pos_weight)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")
