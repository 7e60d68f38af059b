"""Attention: `scaled_dot_product_attention` (also `F.scaled_dot_product_attention`) and
`MultiheadAttention`, both following PyTorch's signatures, masks and parameter layout.

softmax(Q·Kᵀ·scale + mask)·V is built from matmul, the softmax op and elementwise ops,
so its gradients to Q, K, V (and every projection weight) come from their VJPs.
"""

from __future__ import annotations

import math

import numpy as np

from ..creation import arange, empty
from ..errors import ShapeError
from ..ops.elementwise import where
from ..ops.shape import chunk
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import Linear
from .module import Module
from .parameter import Parameter

__all__ = ["scaled_dot_product_attention", "MultiheadAttention"]

_NEG_INF = float("-inf")


def _is_bool(t: Tensor) -> bool:
    return str(t.dtype).endswith("bool")


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(Q·Kᵀ·scale + M)·V over the last two dims, as `torch.nn.functional`'s.

    query (…, L, E), key (…, S, E), value (…, S, Ev) -> (…, L, Ev); leading dims
    broadcast. `scale` defaults to 1/√E. A boolean `attn_mask` (broadcastable to (…, L, S))
    marks with True the positions that take part in attention; a float mask is added to
    the scores. `is_causal` masks out positions j > i (and excludes `attn_mask`).
    `dropout_p` drops attention weights (always applied when > 0, as in PyTorch).
    `enable_gqa`: key and value may have fewer heads (dim −3) than query, a divisor of
    its count; each key/value head then serves that many consecutive query heads.
    """
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ShapeError(f"scaled_dot_product_attention: query, key and value need at least 2 "
                         f"dims, got {tuple(query.shape)}, {tuple(key.shape)} and "
                         f"{tuple(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: query {tuple(query.shape)}, key "
                         f"{tuple(key.shape)} and value {tuple(value.shape)} do not fit "
                         "(query and key need the same last dim, key and value the same "
                         "sequence length)")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or "
                         "is_causal=True, not both")
    if enable_gqa:
        key, value = _repeat_heads(query, key, "key"), _repeat_heads(query, value, "value")
    L, S = query.shape[-2], key.shape[-2]
    s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = (query @ key.transpose(-2, -1)) * s
    if is_causal:
        attn_mask = _causal_mask(L, S, scores)
    if attn_mask is not None:
        _check_mask_shape(attn_mask, tuple(scores.shape))
        scores = where(attn_mask, scores, _NEG_INF) if _is_bool(attn_mask) else (
            scores + attn_mask)
    weights = F.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p, True)
    return weights @ value


def _check_mask_shape(mask, scores_shape: tuple) -> None:
    """attn_mask must broadcast to the scores (…, L, S) without growing them."""
    shape = tuple(getattr(mask, "shape", ()))
    try:
        fits = np.broadcast_shapes(shape, scores_shape) == scores_shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"scaled_dot_product_attention: attn_mask of shape {shape} does not "
                         f"broadcast to the attention scores' shape {scores_shape} (…, L, S), "
                         f"L = {scores_shape[-2]} query and S = {scores_shape[-1]} key positions")


def _causal_mask(L: int, S: int, like: Tensor) -> Tensor:
    """Boolean (L, S) mask, True where j ≤ i (positions that may be attended)."""
    i = arange(L, device=like.device).reshape(L, 1)
    j = arange(S, device=like.device).reshape(1, S)
    return j <= i


class MultiheadAttention(Module):
    """Multi-head attention as `torch.nn.MultiheadAttention`:
    MHA(Q, K, V) = concat(head₁, …, head_h)·W_oᵀ + b_o with
    head_k = softmax(Q W_qₖᵀ (K W_kₖᵀ)ᵀ / √d + mask)·V W_vₖᵀ and d = embed_dim / num_heads.

    Parameters use PyTorch's layout: `in_proj_weight` (3E, E) and `in_proj_bias` (3E) hold
    the q, k, v projections stacked (or `q_proj_weight`, `k_proj_weight`, `v_proj_weight`
    when kdim/vdim differ from embed_dim), and `out_proj` is a `Linear(E, E)`.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be positive, got {embed_dim} and "
                             f"{num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are "
                                      "not supported")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = float(dropout), batch_first
        self.head_dim = embed_dim // num_heads
        kw = {"device": device, "dtype": dtype}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Xavier-uniform projections, zero biases (PyTorch's defaults)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _projections(self) -> tuple:
        if self._qkv_same_embed_dim:
            ws = chunk(self.in_proj_weight, 3, 0)
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        bs = (None,) * 3 if self.in_proj_bias is None else chunk(self.in_proj_bias, 3, 0)
        return ws, bs

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple:
        """Returns (attn_output, attn_weights).

        query (L, N, E) (or (N, L, E) with batch_first, or unbatched (L, E)); key and value
        (S, N, kdim/vdim) likewise. `key_padding_mask` (N, S): True (or −inf) marks keys
        to ignore. `attn_mask` (L, S) or (N·num_heads, L, S): True marks positions that may
        NOT be attended; a float mask is added to the scores. attn_weights are (N, L, S)
        averaged over heads (or (N, num_heads, L, S)), None when need_weights is False.
        """
        name = "MultiheadAttention"
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ShapeError(f"{name}: query, key and value must all be 3-D (batched) or 2-D "
                             f"(unbatched), got {tuple(query.shape)}, {tuple(key.shape)} and "
                             f"{tuple(value.shape)}")
        for t, dim, what in ((query, self.embed_dim, "query"), (key, self.kdim, "key"),
                             (value, self.vdim, "value")):
            if t.shape[-1] != dim:
                raise ShapeError(f"{name}: {what} of shape {tuple(t.shape)} does not match the "
                                 f"expected embedding size {dim}")
        same = query is key and key is value  # self-attention: one projection GEMM
        # batch-first inputs stay (N, ·, E) through the projections (contiguous rows for
        # one GEMM each, no transposed copies); the others are (·, N, E)
        bf = self.batch_first and batched
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        # shapes as (seq, batch, ·), whatever the layout
        q_sn, k_sn, v_sn = ((t.shape[1], t.shape[0], t.shape[2]) if bf else tuple(t.shape)
                            for t in (query, key, value))
        L, N, E = q_sn
        S = k_sn[0]
        if k_sn[:2] != v_sn[:2] or k_sn[1] != N:
            raise ShapeError(f"{name}: key {k_sn} and value {v_sn} "
                             f"must share (S, N) with query's batch {N}")
        h, d = self.num_heads, self.head_dim

        def heads(y: Tensor, n: int) -> Tensor:
            # (N, n, E) or (n, N, E) -> (N, h, n, d)
            if bf:
                return y.reshape(N, n, h, d).permute(0, 2, 1, 3)
            return y.reshape(n, N, h, d).permute(1, 2, 0, 3)

        if same and self._qkv_same_embed_dim:
            y = F.linear(query, self.in_proj_weight, self.in_proj_bias)  # (…, 3E)
            q, k, v = (heads(t, L) for t in chunk(y, 3, -1))
        else:
            (wq, wk, wv), (bq, bk, bv) = self._projections()
            q, k, v = (heads(F.linear(x, w, b), n) for x, w, b, n in
                       ((query, wq, bq, L), (key, wk, bk, S), (value, wv, bv, S)))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))  # (N, h, L, S)
        if attn_mask is None and is_causal:
            attn_mask = ~_causal_mask(L, S, query)
        if attn_mask is not None:
            if attn_mask.ndim == 2:
                if tuple(attn_mask.shape) != (L, S):
                    raise ShapeError(f"{name}: 2-D attn_mask should be of size {(L, S)}, got "
                                     f"{tuple(attn_mask.shape)}")
            elif attn_mask.ndim == 3 and tuple(attn_mask.shape) == (N * h, L, S):
                attn_mask = attn_mask.reshape(N, h, L, S)
            else:
                raise ShapeError(f"{name}: attn_mask should be of size {(L, S)} or "
                                 f"{(N * h, L, S)}, got {tuple(attn_mask.shape)}")
            scores = _apply_mask(scores, attn_mask)
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (N, S):
                raise ShapeError(f"{name}: key_padding_mask should be of size {(N, S)}, got "
                                 f"{tuple(key_padding_mask.shape)}")
            scores = _apply_mask(scores, key_padding_mask.reshape(N, 1, 1, S))
        weights = F.softmax(scores, dim=-1)
        if self.dropout > 0.0 and self.training:
            weights = F.dropout(weights, self.dropout, True)
        out = weights @ v  # (N, h, L, d)
        if bf:
            out = self.out_proj(out.permute(0, 2, 1, 3).reshape(N, L, E))
        else:
            out = self.out_proj(out.permute(2, 0, 1, 3).reshape(L, N, E))
        if not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, (weights if batched else weights.squeeze(0))

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


def _apply_mask(scores: Tensor, mask: Tensor) -> Tensor:
    """True in a boolean mask means "do not attend" (−inf); a float mask is added."""
    if _is_bool(mask):
        return where(mask, _NEG_INF, scores)
    return scores + mask


def _repeat_heads(query: Tensor, kv: Tensor, what: str) -> Tensor:
    """kv (…, Hk, S, E) with each head repeated Hq/Hk times consecutively (GQA)."""
    if query.ndim < 3 or kv.ndim < 3:
        raise ShapeError(f"scaled_dot_product_attention: enable_gqa needs a heads dim (-3); got "
                         f"query {tuple(query.shape)} and {what} {tuple(kv.shape)}")
    hq, hk = query.shape[-3], kv.shape[-3]
    if hq == hk:
        return kv
    if hq % hk:
        raise ShapeError(f"scaled_dot_product_attention: the number of query heads ({hq}) "
                         f"must be a multiple of the number of {what} heads ({hk})")
    r = hq // hk
    lead, (s, e) = tuple(kv.shape[:-3]), kv.shape[-2:]
    return kv.unsqueeze(-3).expand(*lead, hk, r, s, e).reshape(*lead, hq, s, e)
