"""Every gg.nn layer, activation and loss module against its torch.nn twin with the same
weights: forward values, input gradients and parameter gradients."""

import numpy as np
import pytest
import torch
from oracle import check_module as compare
from oracle import copy_weights, rand

import gpugrad as gg
from gpugrad import nn


def test_linear():
    ours, theirs = nn.Linear(4, 3), torch.nn.Linear(4, 3)
    copy_weights(ours, theirs)
    compare(ours, theirs, rand(5, 4, dtype=np.float32))
    no_bias = nn.Linear(4, 3, bias=False)
    compare(no_bias, _twin(no_bias), rand(2, 7, 4, dtype=np.float32))


def _twin(ours: nn.Module) -> torch.nn.Module:
    """A torch Linear with ours' weights."""
    t = torch.nn.Linear(ours.in_features, ours.out_features, bias=ours.bias is not None)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(ours.weight.detach().numpy()))
        if ours.bias is not None:
            t.bias.copy_(torch.tensor(ours.bias.detach().numpy()))
    return t


def test_linear_wrong_in_features_names_both_shapes():
    with pytest.raises(gg.ShapeError, match=r"\(2, 5\).*\(3, 4\)"):
        nn.Linear(4, 3)(gg.zeros(2, 5))


def test_embedding():
    ours, theirs = nn.Embedding(6, 3, padding_idx=1), torch.nn.Embedding(6, 3, padding_idx=1)
    copy_weights(ours, theirs)
    compare(ours, theirs, np.array([[0, 1, 5], [1, 2, 2]]))
    assert np.all(nn.Embedding(5, 2, padding_idx=0).weight.detach().numpy()[0] == 0)


def test_layer_norm():
    ours, theirs = nn.LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4))
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    copy_weights(ours, theirs)
    compare(ours, theirs, rand(2, 3, 4, dtype=np.float32))
    compare(nn.LayerNorm(4, elementwise_affine=False), torch.nn.LayerNorm(
        4, elementwise_affine=False), rand(5, 4, dtype=np.float32))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_1d_training_running_stats_and_eval(momentum):
    ours = nn.BatchNorm1d(3, momentum=momentum)
    theirs = torch.nn.BatchNorm1d(3, momentum=momentum)
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    copy_weights(ours, theirs)
    for shape in [(8, 3), (4, 3, 5)]:
        for p in list(ours.parameters()) + list(theirs.parameters()):
            p.grad = None
        compare(ours, theirs, rand(*shape, dtype=np.float32))
    for name, buf in ours.named_buffers():
        np.testing.assert_allclose(buf.numpy(), theirs.state_dict()[name].numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    ours.eval()
    theirs.eval()
    for p in list(ours.parameters()) + list(theirs.parameters()):
        p.grad = None
    compare(ours, theirs, rand(6, 3, dtype=np.float32))


def test_batch_norm_2d():
    ours, theirs = nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    copy_weights(ours, theirs)
    compare(ours, theirs, rand(3, 2, 4, 4, dtype=np.float32))
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-5)


def test_batch_norm_errors():
    with pytest.raises(gg.ShapeError, match="channels"):
        nn.BatchNorm1d(3)(gg.zeros(4, 2))
    with pytest.raises(ValueError, match="more than 1 value"):
        nn.BatchNorm1d(3)(gg.zeros(1, 3))


def test_dropout_module_train_eval():
    m = nn.Dropout(0.5)
    x = gg.ones(100)
    assert (m(x).numpy() == 0).any()
    m.eval()
    assert np.all(m(x).numpy() == 1)


def test_identity_flatten():
    x = rand(2, 3, 4, dtype=np.float32)
    assert nn.Identity(5, foo=1)(gg.tensor(x)).shape == (2, 3, 4)
    compare(nn.Flatten(), torch.nn.Flatten(), x)
    compare(nn.Flatten(0, 1), torch.nn.Flatten(0, 1), x)


ACTIVATIONS = [
    (nn.ReLU(), torch.nn.ReLU()), (nn.Sigmoid(), torch.nn.Sigmoid()),
    (nn.Tanh(), torch.nn.Tanh()), (nn.GELU(), torch.nn.GELU()),
    (nn.GELU("tanh"), torch.nn.GELU("tanh")), (nn.SiLU(), torch.nn.SiLU()),
    (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)),
    (nn.LeakyReLU(0.3), torch.nn.LeakyReLU(0.3)),
]


@pytest.mark.parametrize("pair", ACTIVATIONS, ids=[type(a[0]).__name__ for a in ACTIVATIONS])
def test_activation_modules(pair):
    compare(pair[0], pair[1], rand(4, 5, dtype=np.float32))


class TorchSwish(torch.nn.Module):
    def __init__(self, beta):
        super().__init__()
        self.beta = torch.nn.Parameter(torch.tensor(beta))

    def forward(self, x):
        return x * torch.sigmoid(self.beta * x)


def test_swish_learnable_matches_torch_twin():
    ours, theirs = nn.Swish(0.7), TorchSwish(0.7)
    assert isinstance(ours.beta, nn.Parameter) and ours.beta.shape == ()
    assert [n for n, _ in ours.named_parameters()] == ["beta"]
    compare(ours, theirs, rand(3, 4, dtype=np.float32))


def test_swish_beta_gradient_is_analytic_sum():
    m = nn.Swish(1.3, dtype=gg.float64)
    x = rand(5, 4)
    up = rand(5, 4)
    xt = gg.tensor(x)
    m(xt).backward(gg.tensor(up))
    s = 1 / (1 + np.exp(-1.3 * x))
    expected = np.sum(up * x * x * s * (1 - s))
    assert np.isclose(m.beta.grad.item(), expected, rtol=1e-10)


def test_swish_not_learnable():
    m = nn.Swish(2.0, learnable=False)
    assert isinstance(m.beta, float) and m.beta == 2.0
    assert list(m.parameters()) == [] and m.state_dict() == {}
    x = rand(3, dtype=np.float32)
    np.testing.assert_allclose(m(gg.tensor(x)).numpy(), x / (1 + np.exp(-2 * x)), rtol=1e-6)


LOSSES = [
    (nn.MSELoss, torch.nn.MSELoss, {}), (nn.L1Loss, torch.nn.L1Loss, {}),
    (nn.HuberLoss, torch.nn.HuberLoss, {"delta": 0.7}),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("cls", LOSSES, ids=[c[0].__name__ for c in LOSSES])
def test_regression_loss_modules(cls, reduction):
    ours, theirs, kw = cls
    compare(ours(reduction=reduction, **kw), theirs(reduction=reduction, **kw),
            rand(4, 3, dtype=np.float32), rand(4, 3, dtype=np.float32))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_classification_loss_modules(reduction):
    t = np.array([0, 2, 1, -100, 2])
    compare(nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.15),
            torch.nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.15),
            rand(5, 3, dtype=np.float32), t)
    compare(nn.NLLLoss(reduction=reduction), torch.nn.NLLLoss(reduction=reduction),
            rand(5, 3, dtype=np.float32), t)
    y = rand(5, 3, dtype=np.float32, low=0, high=1)
    compare(nn.BCEWithLogitsLoss(reduction=reduction),
            torch.nn.BCEWithLogitsLoss(reduction=reduction), rand(5, 3, dtype=np.float32), y)
    compare(nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction),
            rand(5, 3, dtype=np.float32, low=0.05, high=0.95), y)


def test_loss_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
