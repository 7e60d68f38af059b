"""MultiheadAttention with one tensor as query, key and value projects it with one GEMM
(in_proj_weight whole), and batch-first inputs stay batch-first (no transposed copies):
values and gradients as PyTorch's, in every layout, with masks and without biases."""

import numpy as np
import pytest
import torch

import gpugrad as gg
from gpugrad import nn
from tests.nn.test_attention import make_mha as _pair

RNG = np.random.default_rng(7)


def _compare_self(ours, theirs, x, tol=1e-9, **kw):
    """ours(x, x, x) against theirs(x, x, x): output, weights, x̄ and parameter grads."""
    tkw = {n: (torch.tensor(m) if isinstance(m, np.ndarray) else m) for n, m in kw.items()}
    gkw = {n: (gg.tensor(m) if isinstance(m, np.ndarray) else m) for n, m in kw.items()}
    xg, xt = gg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_g, w_g = ours(xg, xg, xg, **gkw)
    out_t, w_t = theirs(xt, xt, xt, **tkw)
    assert tuple(out_g.shape) == tuple(out_t.shape)
    np.testing.assert_allclose(out_g.detach().numpy(), out_t.detach().numpy(), rtol=tol,
                               atol=tol)
    loss_g, loss_t = (out_g ** 2).sum(), (out_t ** 2).sum()
    if w_t is not None:
        np.testing.assert_allclose(w_g.detach().numpy(), w_t.detach().numpy(), rtol=tol,
                                   atol=tol)
        c = RNG.standard_normal(tuple(w_t.shape))
        loss_g = loss_g + (w_g * gg.tensor(c)).sum()
        loss_t = loss_t + (w_t * torch.tensor(c)).sum()
    else:
        assert w_g is None
    loss_g.backward()
    loss_t.backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[name].grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=name)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("need_weights", [True, False])
def test_self_attention_one_tensor_matches_torch(batch_first, bias, need_weights):
    ours, theirs = _pair(batch_first=batch_first, bias=bias)
    x = RNG.standard_normal((3, 5, 8))
    _compare_self(ours, theirs, x, need_weights=need_weights)


@pytest.mark.parametrize("batch_first", [False, True])
def test_self_attention_masks_and_unbatched(batch_first):
    ours, theirs = _pair(embed=12, heads=3, batch_first=batch_first)
    n, s = 2, 5
    x = RNG.standard_normal((n, s, 12) if batch_first else (s, n, 12))
    pad = np.array([[False, False, False, True, True], [False] * 5])
    _compare_self(ours, theirs, x, key_padding_mask=pad, average_attn_weights=False)
    for m in (ours, theirs):
        m.zero_grad()
    attn = RNG.uniform(size=(s, s)) > 0.5
    attn[:, 0] = False
    _compare_self(ours, theirs, x, attn_mask=attn)
    for m in (ours, theirs):
        m.zero_grad()
    _compare_self(ours, theirs, RNG.standard_normal((s, 12)), is_causal=False)


def test_self_attention_noncontiguous_input_and_kdim_module():
    ours, theirs = _pair(batch_first=True)
    x = np.asfortranarray(RNG.standard_normal((3, 4, 8)))  # a non-contiguous tensor
    _compare_self(ours, theirs, x)
    ours, theirs = _pair(kdim=5, vdim=6, batch_first=True)  # separate weights: no fusion
    q, k, v = RNG.standard_normal((2, 3, 8)), RNG.standard_normal((2, 4, 5)), \
        RNG.standard_normal((2, 4, 6))
    out_g = ours(gg.tensor(q), gg.tensor(k), gg.tensor(v))[0]
    out_t = theirs(torch.tensor(q), torch.tensor(k), torch.tensor(v))[0]
    np.testing.assert_allclose(out_g.detach().numpy(), out_t.detach().numpy(), rtol=1e-9,
                               atol=1e-9)


def test_self_attention_gradcheck_batch_first():
    mha = nn.MultiheadAttention(4, 2, dtype=gg.float64, batch_first=True)
    x = gg.tensor(RNG.standard_normal((2, 3, 4)), requires_grad=True)
    params = list(mha.parameters())
    assert gg.autograd.gradcheck(lambda x, *ps: mha(x, x, x)[0], [x] + params)


def test_self_attention_projects_with_one_gemm(monkeypatch, cpu_default_device):  # NumPy spy
    """One (rows, E) @ (E, 3E) product for q, k and v, on batch-first rows."""
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = gg.tensor(RNG.standard_normal((3, 5, 8)).astype(np.float32))
    seen = []
    real = np.matmul

    def spy(a, b, *args, **kw):
        seen.append((np.shape(a), np.shape(b)))
        return real(a, b, *args, **kw)

    monkeypatch.setattr(np, "matmul", spy)
    mha(x, x, x, need_weights=False)
    monkeypatch.undo()
    in_proj = [s for s in seen if s[1] in ((8, 24), (8, 8)) and len(s[0]) == 2]
    assert in_proj[0] == ((15, 8), (8, 24)), seen
    assert sum(1 for s in in_proj if s[1] == (8, 24)) == 1


def test_batch_first_key_value_mismatch_names_seq_batch_shapes():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    with pytest.raises(gg.ShapeError, match=r"key \(4, 2, 8\) and value \(5, 2, 8\)"):
        mha(gg.zeros(2, 3, 8), gg.zeros(2, 4, 8), gg.zeros(2, 5, 8))
