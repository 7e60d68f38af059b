"""scaled_dot_product_attention and MultiheadAttention against PyTorch: values and
gradients for queries, keys, values and every projection weight, with masks."""

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import nn

RNG = np.random.default_rng(0)


def randn(*shape):
    return RNG.standard_normal(shape)


def check_sdpa(q, k, v, tol=1e-10, **kw):
    tkw = {n: (torch.tensor(m) if isinstance(m, np.ndarray) else m) for n, m in kw.items()}
    gkw = {n: (gg.tensor(m) if isinstance(m, np.ndarray) else m) for n, m in kw.items()}
    g_in = [gg.tensor(a, requires_grad=True) for a in (q, k, v)]
    t_in = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out_g = F.scaled_dot_product_attention(*g_in, **gkw)
    out_t = torch.nn.functional.scaled_dot_product_attention(*t_in, **tkw)
    np.testing.assert_allclose(out_g.detach().numpy(), out_t.detach().numpy(), rtol=tol,
                               atol=tol)
    cot = randn(*out_t.shape)
    out_g.backward(gg.tensor(cot))
    out_t.backward(torch.tensor(cot))
    for name, a, b in zip("qkv", g_in, t_in):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=name)


def test_sdpa_plain_and_scaled():
    check_sdpa(randn(2, 3, 4, 8), randn(2, 3, 5, 8), randn(2, 3, 5, 6))
    check_sdpa(randn(4, 8), randn(5, 8), randn(5, 2), scale=0.3)


def test_sdpa_masks():
    q, k, v = randn(2, 4, 8), randn(2, 4, 8), randn(2, 4, 3)
    check_sdpa(q, k, v, is_causal=True)
    bool_mask = RNG.uniform(size=(2, 4, 4)) > 0.3
    bool_mask[:, :, 0] = True  # every query keeps at least one key
    check_sdpa(q, k, v, attn_mask=bool_mask)
    check_sdpa(q, k, v, attn_mask=randn(4, 4))


def test_sdpa_errors():
    with pytest.raises(gg.ShapeError, match=r"\(2, 8\).*\(3, 7\)"):
        F.scaled_dot_product_attention(gg.zeros(2, 8), gg.zeros(3, 7), gg.zeros(3, 7))
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(gg.zeros(2, 8), gg.zeros(2, 8), gg.zeros(2, 8),
                                       attn_mask=gg.ones(2, 2), is_causal=True)


def make_mha(embed=8, heads=2, **kw):
    theirs = torch.nn.MultiheadAttention(embed, heads, **kw).double()
    with torch.no_grad():  # torch zeroes the biases; make them count
        for name, p in theirs.named_parameters():
            if "bias" in name:
                p.normal_()
    ours = nn.MultiheadAttention(embed, heads, dtype=gg.float64, **kw)
    ours.load_state_dict({n: gg.tensor(t.detach().numpy()) for n, t in
                          theirs.state_dict().items()})
    return ours, theirs


def compare_mha(ours, theirs, q, k, v, tol=1e-9, **kw):
    tkw = {n: (torch.tensor(m) if isinstance(m, np.ndarray) else m) for n, m in kw.items()}
    gkw = {n: (gg.tensor(m) if isinstance(m, np.ndarray) else m) for n, m in kw.items()}
    g_in = [gg.tensor(a, requires_grad=True) for a in (q, k, v)]
    t_in = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out_g, w_g = ours(*g_in, **gkw)
    out_t, w_t = theirs(*t_in, **tkw)
    np.testing.assert_allclose(out_g.detach().numpy(), out_t.detach().numpy(), rtol=tol,
                               atol=tol)
    if w_t is None:
        assert w_g is None
        loss_g, loss_t = (out_g ** 2).sum(), (out_t ** 2).sum()
    else:
        assert tuple(w_g.shape) == tuple(w_t.shape)
        np.testing.assert_allclose(w_g.detach().numpy(), w_t.detach().numpy(), rtol=tol,
                                   atol=tol)
        c = randn(*w_t.shape)
        loss_g = (out_g ** 2).sum() + (w_g * gg.tensor(c)).sum()
        loss_t = (out_t ** 2).sum() + (w_t * torch.tensor(c)).sum()
    loss_g.backward()
    loss_t.backward()
    for name, a, b in zip("qkv", g_in, t_in):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=name)
    tp = dict(theirs.named_parameters())
    gp = dict(ours.named_parameters())
    assert list(gp) == list(tp)
    for name, p in gp.items():
        np.testing.assert_allclose(p.grad.numpy(), tp[name].grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=name)


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_self_and_cross_attention(batch_first):
    ours, theirs = make_mha(batch_first=batch_first)
    shape = (lambda n: (3, n, 8)) if batch_first else (lambda n: (n, 3, 8))
    x = randn(*shape(5))
    compare_mha(ours, theirs, x, x, x)
    ours.zero_grad()
    theirs.zero_grad()
    compare_mha(ours, theirs, randn(*shape(4)), randn(*shape(6)), randn(*shape(6)),
                average_attn_weights=False)


def test_mha_masks_and_need_weights():
    ours, theirs = make_mha(embed=12, heads=3)
    q, k = randn(4, 2, 12), randn(5, 2, 12)
    pad = np.array([[False, False, False, True, True], [False] * 5])
    compare_mha(ours, theirs, q, k, k, key_padding_mask=pad)
    for m in (ours, theirs):
        m.zero_grad()
    attn = RNG.uniform(size=(4, 5)) > 0.5
    attn[:, 0] = False  # False = may attend
    compare_mha(ours, theirs, q, k, k, attn_mask=attn, need_weights=False)
    for m in (ours, theirs):
        m.zero_grad()
    compare_mha(ours, theirs, q, k, k, attn_mask=randn(2 * 3, 4, 5))


def test_mha_unbatched_no_bias_kdim():
    ours, theirs = make_mha(bias=False)
    compare_mha(ours, theirs, randn(3, 8), randn(4, 8), randn(4, 8))
    ours, theirs = make_mha(kdim=5, vdim=6)
    compare_mha(ours, theirs, randn(3, 2, 8), randn(4, 2, 5), randn(4, 2, 6))


def test_mha_parameters_like_torch():
    ours, theirs = nn.MultiheadAttention(16, 4), torch.nn.MultiheadAttention(16, 4)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert np.all(ours.in_proj_bias.detach().numpy() == 0)
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(gg.ShapeError, match=r"\(2, 1, 7\).*16"):
        ours(gg.zeros(2, 1, 7), gg.zeros(2, 1, 16), gg.zeros(2, 1, 16))


def test_attention_gradcheck():
    q, k, v = (gg.tensor(randn(2, 3, 4), requires_grad=True) for _ in range(3))
    assert gg.autograd.gradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [q, k, v])
    mha = nn.MultiheadAttention(4, 2, dtype=gg.float64)
    x = gg.tensor(randn(3, 2, 4), requires_grad=True)
    params = list(mha.parameters())
    assert gg.autograd.gradcheck(lambda x, *ps: mha(x, x, x)[0], [x] + params)


def test_mha_is_causal_equals_explicit_causal_mask():
    ours, theirs = make_mha()
    x = randn(4, 2, 8)
    causal = np.triu(np.ones((4, 4), dtype=bool), 1)  # True = may not attend
    out_t, w_t = theirs(*(torch.tensor(x),) * 3, attn_mask=torch.tensor(causal))
    out_g, w_g = ours(*(gg.tensor(x),) * 3, is_causal=True)
    np.testing.assert_allclose(out_g.detach().numpy(), out_t.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(w_g.detach().numpy(), w_t.detach().numpy(), atol=1e-12)
