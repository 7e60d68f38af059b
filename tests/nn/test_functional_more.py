# ruff: noqa: B023 - each lambda is called by check() inside its own loop iteration
"""The nn.functional additions of issue 15 against PyTorch (values and gradients on random
inputs, edge shapes) and float64 finite differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import check, gradcheck, positive, rand

import gpugrad as gg
import gpugrad.nn.functional as F

pytestmark = pytest.mark.filterwarnings("ignore:.*(reduction. .mean.|padding=.same.).*:UserWarning")


# --- convolutions ---------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [
    dict(),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 3), padding=(0, 1), dilation=(2, 1), output_padding=(1, 2)),
    dict(groups=2, stride=2),
])
def test_conv_transpose2d(kw):
    g = kw.get("groups", 1)
    check(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), [rand(2, 4, 5, 4),
          rand(4, 3, 3, 2), rand(3 * g)], torch_fn=lambda x, w, b: TF.conv_transpose2d(
              x, w, b, **kw), atol=1e-10)


@pytest.mark.parametrize("kw", [dict(), dict(stride=3, padding=2, output_padding=1, dilation=2),
                                dict(groups=2)])
def test_conv_transpose1d_and_unbatched(kw):
    g = kw.get("groups", 1)
    check(lambda x, w: F.conv_transpose1d(x, w, **kw), [rand(2, 4, 6), rand(4, 3, 3)],
          torch_fn=lambda x, w: TF.conv_transpose1d(x, w, **kw), atol=1e-10)
    check(lambda x, w, b: F.conv_transpose1d(x, w, b, **kw), [rand(4, 6), rand(4, 3, 3),
          rand(3 * g)], torch_fn=lambda x, w, b: TF.conv_transpose1d(x, w, b, **kw),
          atol=1e-10)


@pytest.mark.parametrize("kw", [dict(), dict(stride=(2, 1, 2), padding=1, dilation=(1, 2, 1)),
                                dict(groups=2, padding="same"), dict(padding=(0, 1, 2))])
def test_conv3d(kw):
    check(lambda x, w, b: F.conv3d(x, w, b, **kw), [rand(2, 4, 5, 6, 5), rand(6, 4 // kw.get(
        "groups", 1), 2, 3, 3), rand(6)], torch_fn=lambda x, w, b: TF.conv3d(x, w, b, **kw),
        atol=1e-10)


def test_conv_gradchecks():
    gradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1),
              rand(1, 2, 3, 3), rand(2, 2, 2, 2))
    gradcheck(lambda x, w: F.conv3d(x, w, padding=1, stride=2), rand(1, 2, 3, 4, 3),
              rand(2, 2, 2, 2, 2))


def test_conv_errors_name_shapes():
    with pytest.raises(gg.errors.ShapeError, match=r"\(2, 3, 5, 5\)"):
        F.conv_transpose2d(gg.tensor(rand(2, 3, 5, 5)), gg.tensor(rand(4, 2, 3, 3)))
    with pytest.raises(ValueError, match="output padding"):
        F.conv_transpose2d(gg.tensor(rand(1, 4, 5, 5)), gg.tensor(rand(4, 2, 3, 3)),
                           output_padding=1)
    with pytest.raises(gg.errors.ShapeError, match="conv3d"):
        F.conv3d(gg.tensor(rand(1, 3, 4, 4)), gg.tensor(rand(2, 3, 2, 2, 2)))


# --- fold / unfold ------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=(2, 3), dilation=(1, 2),
                                                          padding=1, stride=2)])
def test_unfold_and_fold(kw):
    check(lambda x: F.unfold(x, **kw), [rand(2, 3, 5, 6)],
          torch_fn=lambda x: TF.unfold(x, **kw))
    cols = TF.unfold(torch.zeros(2, 3, 5, 6), **kw).shape
    check(lambda c: F.fold(c, (5, 6), **kw), [rand(*cols)],
          torch_fn=lambda c: TF.fold(c, (5, 6), **kw))
    gradcheck(lambda x: F.unfold(x, **kw), rand(1, 2, 4, 5))
    gradcheck(lambda c: F.fold(c, (4, 5), **kw),
              rand(*TF.unfold(torch.zeros(1, 2, 4, 5), **kw).shape))


def test_fold_rejects_a_mismatched_block_count():
    with pytest.raises(gg.errors.ShapeError, match=r"\(2, 12, 10\)"):
        F.fold(gg.tensor(rand(2, 12, 10)), (5, 6), (2, 3), padding=1, stride=2)


# --- interpolate ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 5, 7), dict(size=(8, 4), mode="nearest")),
    ((2, 3, 5, 7), dict(scale_factor=2.5, mode="nearest")),
    ((2, 3, 5, 7), dict(size=(9, 3), mode="nearest-exact")),
    ((2, 3, 5, 7), dict(size=(8, 11), mode="bilinear")),
    ((2, 3, 5, 7), dict(size=(3, 11), mode="bilinear", align_corners=True)),
    ((2, 3, 5, 7), dict(scale_factor=(1.5, 0.5), mode="bilinear")),
    ((2, 3, 5, 7), dict(scale_factor=1.7, mode="bicubic")),
    ((2, 3, 5, 7), dict(size=(9, 4), mode="bicubic", align_corners=True)),
    ((2, 3, 5, 7), dict(size=(3, 4), mode="area")),
    ((2, 3, 5), dict(size=9, mode="linear")),
    ((2, 3, 5), dict(scale_factor=3, mode="nearest")),
    ((1, 2, 4, 3, 5), dict(scale_factor=2, mode="trilinear")),
    ((1, 2, 4, 3, 5), dict(size=(2, 5, 3), mode="nearest")),
    ((2, 3, 1, 1), dict(size=(3, 2), mode="bilinear", align_corners=True)),
])
def test_interpolate(shape, kw):
    check(lambda x: F.interpolate(x, **kw), [rand(*shape)],
          torch_fn=lambda x: TF.interpolate(x, **kw), atol=1e-12)


def test_interpolate_gradcheck_and_errors():
    gradcheck(lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"), rand(1, 1, 3, 3))
    assert F.upsample is F.interpolate
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(gg.tensor(rand(1, 1, 3, 3)), size=2, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(gg.tensor(rand(1, 1, 3, 3)), size=2, align_corners=True)
    with pytest.raises(gg.errors.ShapeError, match=r"\(1, 3, 3\)"):
        F.interpolate(gg.tensor(rand(1, 3, 3)), size=2, mode="bilinear")


# --- pad --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pads", [(2, 1, 1, 3), (-1, 2, 3, -2), (0, 0, 2, 2), (1, 1)])
def test_pad_modes(mode, pads):
    shape = (2, 3, 5, 7) if len(pads) == 4 else (2, 3, 7)
    check(lambda x: F.pad(x, pads, mode=mode), [rand(*shape)],
          torch_fn=lambda x: TF.pad(x, pads, mode=mode))


def test_pad_value_and_errors():
    check(lambda x: F.pad(x, (1, 2), value=3.5), [rand(2, 4)],
          torch_fn=lambda x: TF.pad(x, (1, 2), value=3.5))
    gradcheck(lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), rand(1, 1, 3, 4))
    with pytest.raises(ValueError, match="reflect"):
        F.pad(gg.tensor(rand(1, 2, 3)), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="even length"):
        F.pad(gg.tensor(rand(2, 3)), (1, 2, 3))


def test_pixel_shuffle_round_trip():
    check(lambda x: F.pixel_shuffle(x, 2), [rand(2, 12, 3, 4)],
          torch_fn=lambda x: TF.pixel_shuffle(x, 2))
    check(lambda x: F.pixel_unshuffle(x, 3), [rand(2, 2, 6, 9)],
          torch_fn=lambda x: TF.pixel_unshuffle(x, 3))
    with pytest.raises(gg.errors.ShapeError, match=r"\(2, 5, 3, 4\)"):
        F.pixel_shuffle(gg.tensor(rand(2, 5, 3, 4)), 2)


# --- pooling ------------------------------------------------------------------------------------
def test_pool_1d():
    check(lambda x: F.max_pool1d(x, 3, 2, 1), [rand(2, 3, 9)],
          torch_fn=lambda x: TF.max_pool1d(x, 3, 2, 1))
    check(lambda x: F.max_pool1d(x, 2, return_indices=True)[0], [rand(3, 8)],
          torch_fn=lambda x: TF.max_pool1d(x, 2, return_indices=True)[0])
    for kw in (dict(), dict(count_include_pad=False), dict(ceil_mode=True)):
        check(lambda x: F.avg_pool1d(x, 3, 2, 1, **kw), [rand(2, 3, 10)],
              torch_fn=lambda x: TF.avg_pool1d(x, 3, 2, 1, **kw))


@pytest.mark.parametrize("kw", [dict(), dict(count_include_pad=False), dict(divisor_override=5),
                                dict(ceil_mode=True, count_include_pad=False)])
def test_avg_pool3d(kw):
    check(lambda x: F.avg_pool3d(x, (2, 3, 2), (2, 2, 1), 1, **kw), [rand(2, 3, 5, 7, 6)],
          torch_fn=lambda x: TF.avg_pool3d(x, (2, 3, 2), (2, 2, 1), 1, **kw))


def test_max_pool3d_and_adaptive_max():
    check(lambda x: F.max_pool3d(x, (2, 3, 2), (1, 2, 2), 1, ceil_mode=True),
          [rand(2, 3, 5, 7, 6)],
          torch_fn=lambda x: TF.max_pool3d(x, (2, 3, 2), (1, 2, 2), 1, ceil_mode=True))
    check(lambda x: F.max_pool3d(x, 2), [rand(3, 4, 4, 5)],
          torch_fn=lambda x: TF.max_pool3d(x, 2))
    for out in ((3, 4), 2, (None, 3), (7, 9)):
        check(lambda x: F.adaptive_max_pool2d(x, out), [rand(2, 3, 7, 9)],
              torch_fn=lambda x: TF.adaptive_max_pool2d(x, out))
    check(lambda x: F.adaptive_max_pool1d(x, 4), [rand(2, 3, 10)],
          torch_fn=lambda x: TF.adaptive_max_pool1d(x, 4))


def test_max_unpool2d():
    x = torch.tensor(rand(2, 3, 6, 8))
    _, idx = TF.max_pool2d(x, 2, return_indices=True)
    i = idx.numpy()
    check(lambda y: F.max_unpool2d(y, gg.tensor(i), 2), [rand(2, 3, 3, 4)],
          torch_fn=lambda y: TF.max_unpool2d(y, torch.tensor(i), 2))
    check(lambda y: F.max_unpool2d(y, gg.tensor(i), 2, output_size=(7, 9)), [rand(2, 3, 3, 4)],
          torch_fn=lambda y: TF.max_unpool2d(y, torch.tensor(i), 2, output_size=(7, 9)))


# --- similarities and distances -----------------------------------------------------------------
def test_normalize_cosine_pairwise():
    for p, dim in ((2, 1), (1, -1), (3.0, 0)):
        check(lambda x: F.normalize(x, p, dim), [rand(3, 4, 2)],
              torch_fn=lambda x: TF.normalize(x, p, dim))
    check(lambda a, b: F.cosine_similarity(a, b), [rand(5, 4), rand(5, 4)],
          torch_fn=lambda a, b: TF.cosine_similarity(a, b))
    check(lambda a, b: F.cosine_similarity(a, b, dim=-1), [rand(2, 3, 4), rand(3, 1)],
          torch_fn=lambda a, b: TF.cosine_similarity(a, b, dim=-1))
    for p in (2.0, 1.0, 3.0):
        check(lambda a, b: F.pairwise_distance(a, b, p), [rand(5, 4), rand(5, 4)],
              torch_fn=lambda a, b: TF.pairwise_distance(a, b, p))
    check(lambda a, b: F.pairwise_distance(a, b, keepdim=True), [rand(5, 4), rand(1, 4)],
          torch_fn=lambda a, b: TF.pairwise_distance(a, b, keepdim=True))
    gradcheck(lambda a, b: F.cosine_similarity(a, b), rand(3, 4), rand(3, 4))


# --- losses -------------------------------------------------------------------------------------
REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    target = rand(4, 5, low=0.0, high=1.0)
    if log_target:
        target = np.log(target + 0.1)
    check(lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target),
          [np.log(positive(4, 5)), target],
          torch_fn=lambda x, t: TF.kl_div(x, t, reduction=reduction, log_target=log_target))
    if not log_target:  # a zero target contributes 0 (PyTorch's xlogy); constant target
        target[0, :2] = 0.0
        check(lambda x: F.kl_div(x, gg.tensor(target), reduction=reduction),
              [np.log(positive(4, 5))],
              torch_fn=lambda x: TF.kl_div(x, torch.tensor(target), reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_triplet_cosine_embedding(reduction):
    y = np.where(rand(6) > 0, 1.0, -1.0)
    check(lambda a, b: F.margin_ranking_loss(a, b, gg.tensor(y), 0.3, reduction=reduction),
          [rand(6), rand(6)], torch_fn=lambda a, b: TF.margin_ranking_loss(
              a, b, torch.tensor(y), 0.3, reduction=reduction))
    for kw in (dict(), dict(margin=0.5, p=1, swap=True)):
        check(lambda a, p, n: F.triplet_margin_loss(a, p, n, reduction=reduction, **kw),
              [rand(5, 4), rand(5, 4), rand(5, 4)],
              torch_fn=lambda a, p, n: TF.triplet_margin_loss(a, p, n, reduction=reduction,
                                                              **kw))
    check(lambda a, b: F.cosine_embedding_loss(a, b, gg.tensor(y), 0.1, reduction=reduction),
          [rand(6, 3), rand(6, 3)], torch_fn=lambda a, b: TF.cosine_embedding_loss(
              a, b, torch.tensor(y), 0.1, reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_poisson_and_gaussian_nll(reduction):
    target = np.floor(positive(4, 3) * 2)
    for kw in (dict(), dict(log_input=False), dict(full=True), dict(log_input=False, full=True)):
        x = positive(4, 3) if kw.get("log_input") is False else rand(4, 3)
        check(lambda a, t: F.poisson_nll_loss(a, t, reduction=reduction, **kw), [x, target],
              torch_fn=lambda a, t: TF.poisson_nll_loss(a, t, reduction=reduction, **kw))
    for var_shape in ((4, 3), (4,), (4, 1)):
        for full in (False, True):
            check(lambda a, t, v: F.gaussian_nll_loss(a, t, v, full=full, reduction=reduction),
                  [rand(4, 3), rand(4, 3), positive(*var_shape)],
                  torch_fn=lambda a, t, v: TF.gaussian_nll_loss(a, t, v, full=full,
                                                                reduction=reduction))


def test_loss_errors_and_gradchecks():
    with pytest.raises(ValueError, match="reduction"):
        F.margin_ranking_loss(gg.tensor(rand(3)), gg.tensor(rand(3)), gg.tensor(rand(3)),
                              reduction="avg")
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        F.gaussian_nll_loss(gg.tensor(rand(4, 3)), gg.tensor(rand(4, 3)),
                            gg.tensor(positive(4, 2)))
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(gg.tensor(rand(4, 3)), gg.tensor(rand(4, 3)),
                            gg.tensor(-positive(4, 3)))
    gradcheck(lambda a, t, v: F.gaussian_nll_loss(a, t, v), rand(3, 2), rand(3, 2),
              positive(3, 2))
    gradcheck(lambda a, t: F.kl_div(a, t, reduction="batchmean"), rand(3, 2), positive(3, 2))


def test_bce_with_weights():
    w = positive(4, 3)
    for reduction in REDUCTIONS:
        check(lambda x, t: F.binary_cross_entropy(x, t, gg.tensor(w), reduction=reduction),
              [rand(4, 3, low=0.05, high=0.95), rand(4, 3, low=0.0, high=1.0)],
              torch_fn=lambda x, t: TF.binary_cross_entropy(x, t, torch.tensor(w),
                                                            reduction=reduction))


def test_smooth_l1_loss():
    for beta in (1.0, 0.5):
        check(lambda x, t: F.smooth_l1_loss(x, t, beta=beta), [rand(4, 3), rand(4, 3)],
              torch_fn=lambda x, t: TF.smooth_l1_loss(x, t, beta=beta))


# --- activations-like ---------------------------------------------------------------------------
def test_softmin_glu_and_softmax_methods():
    check(lambda x: F.softmin(x, dim=1), [rand(3, 4)], torch_fn=lambda x: TF.softmin(x, dim=1))
    check(lambda x: F.glu(x), [rand(3, 4)], torch_fn=lambda x: TF.glu(x))
    check(lambda x: F.glu(x, 0), [rand(4, 3)], torch_fn=lambda x: TF.glu(x, 0))
    check(lambda x: x.softmax(-1), [rand(2, 3, 4)])
    check(lambda x: x.log_softmax(dim=0), [rand(2, 3, 4)])
    check(lambda x: x.softmax(1, dtype=gg.float64), [rand(2, 3).astype(np.float32)],
          torch_fn=lambda x: x.softmax(1, dtype=torch.float64), atol=1e-6)
    with pytest.raises(gg.errors.ShapeError, match="even"):
        F.glu(gg.tensor(rand(3, 5)))
    with pytest.raises(IndexError, match="out of range"):
        gg.tensor(rand(3, 5)).softmax(2)


def test_gumbel_softmax_is_a_distribution_and_hard_is_straight_through():
    gg.manual_seed(0)
    logits = gg.tensor(rand(6, 5), requires_grad=True)
    y = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(y.detach().numpy().sum(-1), 1.0)
    h = F.gumbel_softmax(logits, hard=True)
    hv = h.detach().numpy()
    assert set(np.unique(hv)) <= {0.0, 1.0} and (hv.sum(-1) == 1).all()
    (h * gg.tensor(rand(6, 5))).sum().backward()
    assert logits.grad is not None and np.abs(logits.grad.numpy()).sum() > 0
    # the noise is Gumbel(0, 1): a large-sample argmax frequency follows softmax(logits)
    big = gg.tensor(np.tile(np.log([[0.6, 0.3, 0.1]]), (4000, 1)))
    counts = F.gumbel_softmax(big, hard=True).detach().numpy().mean(0)
    np.testing.assert_allclose(counts, [0.6, 0.3, 0.1], atol=0.04)


# --- embedding ------------------------------------------------------------------------------
def test_embedding_padding_idx_and_max_norm_match_torch():
    idx = np.array([[0, 2, 2], [3, 1, 2]])
    w0 = rand(5, 4) * 2
    for kw in (dict(padding_idx=2), dict(padding_idx=-1), dict(max_norm=1.0),
               dict(max_norm=1.5, norm_type=1.0, padding_idx=0)):
        ours = gg.tensor(w0.copy(), requires_grad=True)
        theirs = torch.tensor(w0.copy(), requires_grad=True)
        a = F.embedding(gg.tensor(idx), ours, **kw)
        b = TF.embedding(torch.tensor(idx), theirs, **kw)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)
        cot = rand(*b.shape)
        a.backward(gg.tensor(cot))
        b.backward(torch.tensor(cot))
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)


def test_scaled_dot_product_attention_gqa():
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
          [rand(2, 6, 4, 5), rand(2, 2, 3, 5), rand(2, 2, 3, 5)],
          torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, enable_gqa=True))
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                         enable_gqa=True),
          [rand(4, 4, 5), rand(1, 4, 5), rand(1, 4, 5)],
          torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                   enable_gqa=True))
    with pytest.raises(gg.errors.ShapeError, match="multiple"):
        F.scaled_dot_product_attention(gg.tensor(rand(1, 3, 2, 4)), gg.tensor(rand(1, 2, 2, 4)),
                                       gg.tensor(rand(1, 2, 2, 4)), enable_gqa=True)


# --- ctc -----------------------------------------------------------------------------------------
def _ctc_case(seed=0, t=7, n=3, c=5):
    r = np.random.default_rng(seed)
    lp = torch.log_softmax(torch.tensor(r.normal(size=(t, n, c))), -1).numpy()
    return lp


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ["padded", "concatenated", "empty-target", "blank-last"])
def test_ctc_loss_matches_torch(reduction, case):
    lp = _ctc_case()
    il, tl = [7, 5, 6], [3, 1, 2]
    tg = np.array([[1, 2, 2], [3, 0, 0], [4, 1, 0]])
    blank = 0
    if case == "concatenated":
        tg = np.array([1, 2, 2, 3, 4, 1])
    elif case == "empty-target":
        tl = [3, 0, 2]
    elif case == "blank-last":
        blank, tg = 4, np.array([[1, 2, 2], [3, 0, 0], [0, 1, 0]])
    check(lambda x: F.ctc_loss(x, gg.tensor(tg), il, tl, blank, reduction), [lp],
          torch_fn=lambda x: TF.ctc_loss(x, torch.tensor(tg), il, tl, blank, reduction),
          atol=1e-12)


def test_ctc_loss_unbatched_zero_infinity_and_module():
    lp = _ctc_case(1, t=4, n=1, c=4)[:, 0]
    tg = np.array([1, 1, 2])  # a repeated label needs a blank between: 5 frames > 4
    check(lambda x: F.ctc_loss(x, gg.tensor(tg), (4,), (3,), reduction="none"), [lp],
          torch_fn=lambda x: TF.ctc_loss(x, torch.tensor(tg), (4,), (3,), reduction="none"))
    check(lambda x: F.ctc_loss(x, gg.tensor(tg), (4,), (3,), zero_infinity=True), [lp],
          torch_fn=lambda x: TF.ctc_loss(x, torch.tensor(tg), (4,), (3,), zero_infinity=True))
    lp3 = _ctc_case()
    tg3 = np.array([[1, 2], [3, 3], [2, 4]])
    check(lambda x: gg.nn.CTCLoss(blank=0)(x, gg.tensor(tg3), gg.tensor([7, 5, 6]),
                                           gg.tensor([2, 2, 1])), [lp3],
          torch_fn=lambda x: torch.nn.CTCLoss(blank=0)(x, torch.tensor(tg3),
                                                       torch.tensor([7, 5, 6]),
                                                       torch.tensor([2, 2, 1])))


def test_ctc_loss_gradcheck_through_log_softmax():
    # the gradient PyTorch defines is that of the logits under log_softmax
    tg = np.array([[1, 2], [2, 2]])
    gradcheck(lambda x: F.ctc_loss(F.log_softmax(x, -1), gg.tensor(tg), [4, 5], [2, 2]),
              rand(5, 2, 3))


def test_ctc_loss_errors():
    lp = gg.tensor(_ctc_case())
    with pytest.raises(ValueError, match="input_lengths"):
        F.ctc_loss(lp, gg.tensor(np.array([[1, 2]] * 3)), [8, 5, 6], [2, 2, 2])
    with pytest.raises(gg.errors.ShapeError, match="target_lengths"):
        F.ctc_loss(lp, gg.tensor(np.array([[1, 2]] * 3)), [7, 5, 6], [2, 2])
    with pytest.raises(ValueError, match="labels"):
        F.ctc_loss(lp, gg.tensor(np.array([[1, 9]] * 3)), [7, 5, 6], [2, 2, 2])


@pytest.mark.parametrize("name,kwargs,arrays", [
    ("KLDivLoss", dict(reduction="batchmean"), lambda: [np.log(positive(3, 4)),
                                                        positive(3, 4) / 4]),
    ("MarginRankingLoss", dict(margin=0.2), lambda: [rand(5), rand(5),
                                                     np.sign(rand(5)) + (rand(5) == 0)]),
    ("TripletMarginLoss", dict(margin=0.5, swap=True), lambda: [rand(4, 3), rand(4, 3),
                                                                rand(4, 3)]),
    ("CosineEmbeddingLoss", dict(margin=0.1), lambda: [rand(4, 3), rand(4, 3),
                                                       np.array([1.0, -1.0, 1.0, -1.0])]),
    ("PoissonNLLLoss", dict(full=True), lambda: [rand(4, 3), np.floor(positive(4, 3) * 2)]),
    ("SmoothL1Loss", dict(beta=0.5), lambda: [rand(4, 3), rand(4, 3)]),
])
def test_loss_modules_match_torch(name, kwargs, arrays):
    xs = arrays()
    check(lambda *a: getattr(gg.nn, name)(**kwargs)(*a), xs,
          torch_fn=lambda *a: getattr(torch.nn, name)(**kwargs)(*a))


def test_gaussian_nll_module():
    check(lambda a, t, v: gg.nn.GaussianNLLLoss(full=True)(a, t, v),
          [rand(4, 3), rand(4, 3), positive(4, 1)],
          torch_fn=lambda a, t, v: torch.nn.GaussianNLLLoss(full=True)(a, t, v))


# --- float64 finite differences of the composed functional forms -----------------------------
@pytest.mark.parametrize("fn,shapes", [
    (lambda x: F.max_pool3d(x, 2, 1), [(1, 1, 3, 3, 3)]),
    (lambda x: F.avg_pool3d(x, 2, 1, 1, count_include_pad=False), [(1, 1, 3, 2, 3)]),
    (lambda x: F.adaptive_max_pool2d(x, (2, 3)), [(1, 2, 3, 5)]),
    (lambda x: F.avg_pool1d(x, 2, 1, 1), [(1, 2, 5)]),
    (lambda x: F.pixel_shuffle(x, 2), [(1, 4, 2, 2)]),
    (lambda x, w, b: F.group_norm(x, 2, w, b), [(2, 4, 3), (4,), (4,)]),
    (lambda x: F.instance_norm(x), [(2, 3, 4)]),
    (lambda x, w: F.rms_norm(x, (3,), w), [(2, 3), (3,)]),
    (lambda x: F.local_response_norm(x, 3), [(1, 4, 3)]),
    (lambda a, b, w, c: F.bilinear(a, b, w, c), [(2, 3), (2, 2), (4, 3, 2), (4,)]),
    (lambda x: F.glu(x, 0), [(4, 3)]),
    (lambda x: F.normalize(x, 3.0, 1), [(3, 4)]),
    (lambda a, p, n: F.triplet_margin_loss(a, p, n, swap=True), [(3, 4), (3, 4), (3, 4)]),
    (lambda a, b: F.pairwise_distance(a, b, 1.5), [(3, 4), (3, 4)]),
    (lambda x: F.softmin(x, 1), [(3, 4)]),
    (lambda x, w: F.conv_transpose1d(x, w, stride=2), [(1, 2, 4), (2, 3, 2)]),
])
def test_gradcheck(fn, shapes):
    gradcheck(fn, *[rand(*s) for s in shapes])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_more_margin_losses(reduction):
    y = np.where(rand(5, 3) > 0, 1.0, -1.0)
    check(lambda x: F.hinge_embedding_loss(x, gg.tensor(y), 0.5, reduction=reduction),
          [rand(5, 3)], torch_fn=lambda x: TF.hinge_embedding_loss(
              x, torch.tensor(y), 0.5, reduction=reduction))
    check(lambda x: F.soft_margin_loss(x, gg.tensor(y), reduction=reduction), [rand(5, 3)],
          torch_fn=lambda x: TF.soft_margin_loss(x, torch.tensor(y), reduction=reduction))
    t01 = (y > 0).astype(np.float64)
    w = positive(3)
    check(lambda x: F.multilabel_soft_margin_loss(x, gg.tensor(t01), gg.tensor(w),
                                                  reduction=reduction), [rand(5, 3) * 5],
          torch_fn=lambda x: TF.multilabel_soft_margin_loss(x, torch.tensor(t01),
                                                            torch.tensor(w),
                                                            reduction=reduction))
    cls = np.array([0, 2, 1, 2, 0])
    for p, wt in ((1, None), (2, positive(3))):
        check(lambda x: F.multi_margin_loss(x, gg.tensor(cls), p, 0.7,
                                            None if wt is None else gg.tensor(wt),
                                            reduction=reduction), [rand(5, 3)],
              torch_fn=lambda x: TF.multi_margin_loss(x, torch.tensor(cls), p, 0.7,
                                                      None if wt is None else torch.tensor(wt),
                                                      reduction=reduction))
    check(lambda a, p, n: F.triplet_margin_with_distance_loss(
        a, p, n, distance_function=lambda u, v: 1 - F.cosine_similarity(u, v), swap=True,
        reduction=reduction), [rand(4, 3), rand(4, 3), rand(4, 3)],
        torch_fn=lambda a, p, n: TF.triplet_margin_with_distance_loss(
            a, p, n, distance_function=lambda u, v: 1 - TF.cosine_similarity(u, v), swap=True,
            reduction=reduction))


def test_pdist_channel_shuffle_adaptive_avg_pool1d_and_channel_dropout():
    for p in (2.0, 1.0):
        check(lambda x: F.pdist(x, p), [rand(5, 3)], torch_fn=lambda x: TF.pdist(x, p))
    check(lambda x: F.channel_shuffle(x, 3), [rand(2, 6, 2, 2)],
          torch_fn=lambda x: TF.channel_shuffle(x, 3))
    check(lambda x: F.adaptive_avg_pool1d(x, 3), [rand(2, 3, 8)],
          torch_fn=lambda x: TF.adaptive_avg_pool1d(x, 3))
    gg.manual_seed(0)
    for fn, shape in ((F.dropout1d, (4, 6, 5)), (F.dropout2d, (4, 6, 3, 3)),
                      (F.dropout3d, (6, 2, 2, 2))):
        y = fn(gg.tensor(np.ones(shape)), 0.5).numpy()
        per = y.reshape(-1, int(np.prod(shape[-1 if fn is F.dropout1d else
                                           (-2 if fn is F.dropout2d else -3):])))
        assert ((per == 0).all(-1) | (per == 2).all(-1)).all()
        np.testing.assert_array_equal(fn(gg.tensor(np.ones(shape)), 0.5, False).numpy(),
                                      np.ones(shape))


@pytest.mark.parametrize("name,kwargs,target", [
    ("HingeEmbeddingLoss", dict(margin=0.3), lambda: np.sign(rand(4, 3))),
    ("SoftMarginLoss", dict(), lambda: np.sign(rand(4, 3))),
    ("MultiLabelSoftMarginLoss", dict(), lambda: (rand(4, 3) > 0) * 1.0),
])
def test_more_loss_modules(name, kwargs, target):
    t = target()
    check(lambda x: getattr(gg.nn, name)(**kwargs)(x, gg.tensor(t)), [rand(4, 3)],
          torch_fn=lambda x: getattr(torch.nn, name)(**kwargs)(x, torch.tensor(t)))
    check(lambda a, p, n: gg.nn.TripletMarginWithDistanceLoss(margin=0.4)(a, p, n),
          [rand(4, 3), rand(4, 3), rand(4, 3)],
          torch_fn=lambda a, p, n: torch.nn.TripletMarginWithDistanceLoss(margin=0.4)(a, p, n))


def test_multi_margin_loss_module_and_channel_shuffle_module():
    cls = np.array([1, 0, 2])
    check(lambda x: gg.nn.MultiMarginLoss(margin=0.5)(x, gg.tensor(cls)), [rand(3, 4)],
          torch_fn=lambda x: torch.nn.MultiMarginLoss(margin=0.5)(x, torch.tensor(cls)))
    check(lambda x: gg.nn.ChannelShuffle(2)(x), [rand(1, 4, 3)],
          torch_fn=lambda x: torch.nn.ChannelShuffle(2)(x))
    check(lambda x: gg.nn.AdaptiveAvgPool1d(2)(x), [rand(1, 4, 5)],
          torch_fn=lambda x: torch.nn.AdaptiveAvgPool1d(2)(x))


def test_conv_transpose3d_gradcheck_and_errors():
    gradcheck(lambda x, w: F.conv_transpose3d(x, w, stride=(2, 1, 1), padding=(1, 0, 0)),
              rand(1, 2, 2, 2, 2), rand(2, 1, 3, 2, 1))
    with pytest.raises(ValueError, match="output padding"):
        F.conv_transpose3d(gg.tensor(rand(1, 2, 2, 2, 2)), gg.tensor(rand(2, 1, 2, 2, 2)),
                           output_padding=1)


def test_embedding_bag_functional_matches_torch():
    w = rand(6, 3)
    idx, offsets = np.array([0, 2, 1, 4, 4, 5]), np.array([0, 2, 2, 4])
    for mode in ("sum", "mean", "max"):
        check(lambda wt: F.embedding_bag(gg.tensor(idx), wt, gg.tensor(offsets), mode=mode,
                                         padding_idx=4), [w],
              torch_fn=lambda wt: TF.embedding_bag(torch.tensor(idx), wt,
                                                   torch.tensor(offsets), mode=mode,
                                                   padding_idx=4))
    with pytest.raises(ValueError, match="mode"):
        F.embedding_bag(gg.tensor(idx), gg.tensor(w), gg.tensor(offsets), mode="median")


def test_embedding_out_of_range_names_embedding(cpu_default_device):  # a CPU-only check
    with pytest.raises(IndexError, match=r"^embedding: index 7 is out of range .*\(5, 3\)"):
        F.embedding(gg.tensor([[0, 7]]), gg.tensor(rand(5, 3)))
    with pytest.raises(IndexError, match="index -1"):
        gg.nn.Embedding(5, 3)(gg.tensor([-1]))


@pytest.mark.filterwarnings("ignore:.*deprecated.*:UserWarning")
def test_unpool1d_upsample_aliases_and_feature_alpha_dropout():
    x = torch.tensor(rand(2, 3, 8))
    y, i = TF.max_pool1d(x, 2, return_indices=True)
    np.testing.assert_array_equal(
        F.max_unpool1d(gg.tensor(y.numpy()), gg.tensor(i.numpy()), 2).numpy(),
        TF.max_unpool1d(y, i, 2).numpy())
    np.testing.assert_array_equal(
        gg.nn.MaxUnpool1d(2)(gg.tensor(y.numpy()), gg.tensor(i.numpy())).numpy(),
        torch.nn.MaxUnpool1d(2)(y, i).numpy())
    check(lambda v: F.upsample_bilinear(v, scale_factor=2), [rand(1, 2, 3, 3)],
          torch_fn=lambda v: TF.upsample_bilinear(v, scale_factor=2))
    check(lambda v: F.upsample_nearest(v, size=5), [rand(1, 2, 3, 3)],
          torch_fn=lambda v: TF.upsample_nearest(v, size=5))
    gg.manual_seed(0)
    z = F.feature_alpha_dropout(gg.tensor(np.ones((50, 6, 4))), 0.3, True).numpy()
    assert (z == z[..., :1]).all() and len(np.unique(z)) == 2
    m = gg.nn.FeatureAlphaDropout(0.3).eval()
    np.testing.assert_array_equal(m(gg.tensor(np.ones((2, 3, 4)))).numpy(), 1.0)


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid(align_corners):
    check(lambda t: F.affine_grid(t, (2, 3, 4, 5), align_corners), [rand(2, 2, 3)],
          torch_fn=lambda t: TF.affine_grid(t, (2, 3, 4, 5), align_corners=align_corners))
    check(lambda t: F.affine_grid(t, (1, 2, 3, 4, 2), align_corners), [rand(1, 3, 4)],
          torch_fn=lambda t: TF.affine_grid(t, (1, 2, 3, 4, 2), align_corners=align_corners))


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_bilinear(padding_mode, align_corners):
    grid = rand(2, 3, 6, 2, low=-1.3, high=1.3)
    check(lambda x, g: F.grid_sample(x, g, "bilinear", padding_mode, align_corners),
          [rand(2, 3, 4, 5), grid],
          torch_fn=lambda x, g: TF.grid_sample(x, g, "bilinear", padding_mode, align_corners),
          atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_nearest_and_gradcheck(padding_mode):
    grid = rand(2, 3, 6, 2, low=-1.3, high=1.3)
    x = rand(2, 3, 4, 5)
    a = F.grid_sample(gg.tensor(x), gg.tensor(grid), "nearest", padding_mode)
    b = TF.grid_sample(torch.tensor(x), torch.tensor(grid), "nearest", padding_mode,
                       align_corners=False)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    gradcheck(lambda x, g: F.grid_sample(x, g, padding_mode=padding_mode), rand(1, 2, 3, 3),
              rand(1, 2, 2, 2, low=-0.9, high=0.9))
    with pytest.raises(gg.errors.ShapeError, match=r"\(2, 3, 6\)"):
        F.grid_sample(gg.tensor(x), gg.tensor(rand(2, 3, 6)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin_loss(reduction):
    tgt = np.array([[3, 0, -1, 1], [1, 2, 3, 0], [-1, 1, 2, 3], [2, 2, -1, 0]])
    check(lambda x: F.multilabel_margin_loss(x, gg.tensor(tgt), reduction=reduction),
          [rand(4, 4)], torch_fn=lambda x: TF.multilabel_margin_loss(x, torch.tensor(tgt),
                                                                     reduction=reduction))
    check(lambda x: gg.nn.MultiLabelMarginLoss(reduction=reduction)(x, gg.tensor(tgt[0])),
          [rand(4)], torch_fn=lambda x: torch.nn.MultiLabelMarginLoss(reduction=reduction)(
              x, torch.tensor(tgt[0])))
