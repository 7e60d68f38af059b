"""Conv1d / Conv2d against torch.nn with copied weights: forward values and the gradients
of the input, weight and bias over strides, paddings, dilations and groups (depthwise
included); float64 gradcheck and double backward; errors for bad inputs."""

import numpy as np
import pytest
import torch
from oracle import check_module as compare
from oracle import copy_weights, rand

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import nn

CONV2D_CASES = [
    # (in, out, kernel, stride, padding, dilation, groups, bias)
    (3, 4, 3, 1, 0, 1, 1, True),
    (3, 4, 3, 1, 1, 1, 1, False),
    (4, 6, (3, 2), (2, 1), (1, 0), 1, 1, True),
    (4, 6, 3, 2, 2, 2, 2, True),
    (6, 6, 3, 1, 1, 1, 6, True),            # depthwise
    (4, 8, 3, 1, 1, (2, 1), 4, True),       # depthwise with a channel multiplier
    (6, 9, 2, 1, "same", 1, 3, True),       # even kernel: asymmetric 'same' padding
    (3, 5, 3, 3, "valid", 1, 1, True),
    (4, 4, 1, 1, 0, 1, 1, True),            # pointwise
    (2, 4, 5, 2, 2, 1, 2, True),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", CONV2D_CASES)
def test_conv2d_matches_torch(case):
    c_in, c_out, k, s, p, d, g, bias = case
    theirs = torch.nn.Conv2d(c_in, c_out, k, s, p, d, g, bias).double()
    ours = nn.Conv2d(c_in, c_out, k, s, p, d, g, bias, dtype=gg.float64)
    copy_weights(ours, theirs)
    compare(ours, theirs, rand(2, c_in, 9, 8), atol=1e-10, rtol=1e-8)


def test_conv2d_float32_and_unbatched():
    theirs = torch.nn.Conv2d(3, 5, 3, padding=1)
    ours = nn.Conv2d(3, 5, 3, padding=1)
    copy_weights(ours, theirs)
    compare(ours, theirs, rand(4, 3, 7, 7, dtype=np.float32))
    compare(ours, theirs, rand(3, 6, 5, dtype=np.float32))


@pytest.mark.parametrize("case", [(16, 8, 3, 1, 1, 1, 1, True), (16, 12, 3, 2, 2, 2, 4, False),
                                  (16, 16, 3, 1, 1, 1, 16, True)])
def test_conv2d_large_enough_for_the_threaded_path_matches_torch(case):
    """Batches big enough that the CPU backend splits the image GEMMs and col2im across
    threads in cache-sized ranges (cpu_parallel.over_rows) give the same results."""
    c_in, c_out, k, s, p, d, g, bias = case
    theirs = torch.nn.Conv2d(c_in, c_out, k, s, p, d, g, bias).double()
    ours = nn.Conv2d(c_in, c_out, k, s, p, d, g, bias, dtype=gg.float64)
    copy_weights(ours, theirs)
    compare(ours, theirs, rand(9, c_in, 31, 33), atol=1e-9, rtol=1e-8)


@pytest.mark.parametrize("case", [(3, 4, 3, 1, 0, 1, 1), (4, 6, 3, 2, 1, 2, 2),
                                  (4, 4, 5, 1, "same", 1, 4), (2, 3, 4, 3, 2, 1, 1)])
def test_conv1d_matches_torch(case):
    c_in, c_out, k, s, p, d, g = case
    theirs = torch.nn.Conv1d(c_in, c_out, k, s, p, d, g).double()
    ours = nn.Conv1d(c_in, c_out, k, s, p, d, g, dtype=gg.float64)
    copy_weights(ours, theirs)
    compare(ours, theirs, rand(3, c_in, 11), atol=1e-10, rtol=1e-8)


def test_default_init_matches_pytorch_bounds():
    conv = nn.Conv2d(8, 16, 3, groups=2)
    bound = 1 / np.sqrt(4 * 9)  # fan_in = in/groups * kh * kw
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    assert w.shape == (16, 4, 3, 3) and b.shape == (16,)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.8 * bound  # uniform over the whole range, not a narrow one
    assert nn.Conv1d(3, 2, 4).weight.shape == (2, 3, 4)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(dilation=2, padding=2, groups=2),
                                dict(padding="same", groups=4)])
def test_conv2d_gradcheck(kw):
    x, w, b = rand(2, 4, 5, 5), rand(4, 4 // kw.get("groups", 1), 3, 3), rand(4)
    ins = [gg.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert gg.autograd.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), ins)


def test_conv1d_gradcheck():
    ins = [gg.tensor(a, requires_grad=True) for a in (rand(2, 2, 7), rand(4, 1, 3), rand(4))]
    assert gg.autograd.gradcheck(lambda x, w, b: F.conv1d(x, w, b, 2, 1, 1, 2), ins)


def test_conv2d_double_backward_matches_torch():
    x, w = rand(2, 4, 6, 5), rand(6, 2, 3, 3)
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    results = []
    for lib, conv in ((gg, F.conv2d), (torch, torch.nn.functional.conv2d)):
        X, W = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)
        y = conv(X, W, None, **kw)
        gx, gw = lib.autograd.grad((y * y).sum(), [X, W], create_graph=True)
        second = (gx * gx).sum() + gw.sin().sum()
        results.append([g.detach().numpy() for g in lib.autograd.grad(second, [X, W])])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


def test_retain_graph_backward_twice():
    conv = nn.Conv2d(2, 3, 3, dtype=gg.float64)
    x = gg.tensor(rand(1, 2, 5, 5), requires_grad=True)
    y = conv(x).sum()
    y.backward(retain_graph=True)
    first = conv.weight.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(conv.weight.grad.numpy(), 2 * first)


def test_wrong_channel_count_names_both_shapes():
    with pytest.raises(gg.ShapeError, match=r"\(2, 5, 8, 8\).*\(4, 3, 3, 3\)"):
        nn.Conv2d(3, 4, 3)(gg.zeros(2, 5, 8, 8))
    with pytest.raises(gg.ShapeError, match=r"\(2, 4, 8\).*\(4, 1, 3\)"):
        nn.Conv1d(2, 4, 3, groups=2)(gg.zeros(2, 4, 8))


def test_wrong_ndim_and_bad_arguments():
    with pytest.raises(gg.ShapeError, match=r"3-d.*4-d.*\(8, 8\)"):
        nn.Conv2d(1, 2, 3)(gg.zeros(8, 8))
    with pytest.raises(gg.ShapeError, match=r"conv1d.*\(1, 1, 2, 8\)"):
        nn.Conv1d(1, 2, 3)(gg.zeros(1, 1, 2, 8))
    with pytest.raises(gg.ShapeError, match="smaller than"):
        nn.Conv2d(1, 2, 5)(gg.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(gg.zeros(1, 1, 5, 5), gg.zeros(1, 1, 3, 3), stride=2, padding="same")
    with pytest.raises(TypeError, match="float64.*float32"):
        F.conv2d(gg.zeros(1, 1, 5, 5, dtype=gg.float64), gg.zeros(1, 1, 3, 3))


def test_separable_block_trains():
    """A depthwise + pointwise block learns a fixed target (loss drops)."""
    gg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, groups=3), nn.Conv2d(3, 2, 1))
    x, target = gg.randn(4, 3, 6, 6), gg.randn(4, 2, 6, 6)
    opt = gg.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        loss = F.mse_loss(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
