"""Zero-size batches through convolutions, and layers whose weights have a zero-size
dimension, as PyTorch handles them (empty outputs, zero weight gradients, a warning
instead of a division by zero at init)."""

import warnings

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from tests.oracle import check, rand


@pytest.mark.parametrize("x_shape, w_shape, kw", [
    ((0, 3, 8, 8), (4, 3, 3, 3), {"padding": 1}),
    ((0, 3, 9, 7), (6, 1, 3, 3), {"groups": 3, "stride": 2}),  # depthwise
    ((0, 4, 8, 8), (4, 2, 2, 3), {"groups": 2, "dilation": 2}),
], ids=["conv2d", "depthwise", "grouped-dilated"])
def test_conv2d_with_an_empty_batch_matches_pytorch(x_shape, w_shape, kw):
    check(lambda x, w, b: F.conv2d(x, w, b, **kw) if isinstance(x, gg.Tensor)
          else torch.nn.functional.conv2d(x, w, b, **kw),
          [rand(*x_shape), rand(*w_shape), rand(w_shape[0])])


@pytest.mark.parametrize("groups", [1, 3])
def test_conv1d_with_an_empty_batch_matches_pytorch(groups):
    check(lambda x, w: F.conv1d(x, w, groups=groups) if isinstance(x, gg.Tensor)
          else torch.nn.functional.conv1d(x, w, groups=groups),
          [rand(0, 3, 10), rand(6, 3 // groups, 3)])


def test_empty_batch_gives_zero_weight_and_bias_grads():
    conv = nn.Conv2d(3, 5, 3, padding=1)
    x = gg.zeros((0, 3, 6, 6), requires_grad=True)
    y = conv(x)
    assert y.shape == (0, 5, 6, 6)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 6, 6)
    np.testing.assert_array_equal(conv.weight.grad.numpy(), np.zeros((5, 3, 3, 3)))
    np.testing.assert_array_equal(conv.bias.grad.numpy(), np.zeros(5))


@pytest.mark.parametrize("make, weight_shape", [
    (lambda: nn.Linear(0, 4), (4, 0)),
    (lambda: nn.Conv2d(3, 4, (0, 3)), (4, 3, 0, 3)),
    (lambda: nn.Conv2d(0, 4, 3), (4, 0, 3, 3)),
    (lambda: nn.Conv1d(3, 4, 0), (4, 3, 0)),
], ids=["Linear(0, 4)", "Conv2d zero kernel", "Conv2d zero channels", "Conv1d zero kernel"])
def test_zero_size_weights_initialise_with_pytorchs_warning(make, weight_shape):
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        layer = make()
    assert layer.weight.shape == weight_shape
    np.testing.assert_array_equal(layer.bias.detach().numpy(), np.zeros(4))  # bound 0, as PyTorch


def test_linear_zero_in_features_forward_is_the_bias():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = nn.Linear(0, 3)
    out = layer(gg.zeros((2, 0)))
    bias = layer.bias.detach().numpy()
    np.testing.assert_array_equal(out.detach().numpy(), np.stack([bias, bias]))


def test_kaiming_on_a_nonempty_tensor_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.init.kaiming_uniform_(gg.empty(3, 4))
        nn.init.kaiming_normal_(gg.empty(3, 4))
