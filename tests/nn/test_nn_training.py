"""End-to-end behaviour: the seed MLP step against PyTorch, the 4-layer scalar chain from the
issue, initialisation statistics, and gradient clipping without host syncs."""

import math

import numpy as np
import pytest
import torch

import gpugrad as gg
from gpugrad import nn


def test_seed_mlp_sgd_step_matches_torch():
    ours = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    theirs = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(),
                                 torch.nn.Linear(32, 1))
    ours.load_state_dict({k: gg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((16, 10), dtype=np.float32), rng.standard_normal(
        (16, 1), dtype=np.float32)
    lr = 0.05
    loss = nn.MSELoss()(ours(gg.tensor(x)), gg.tensor(y))
    loss.backward()
    with gg.no_grad():
        for p in ours.parameters():
            p -= lr * p.grad
    t_loss = torch.nn.MSELoss()(theirs(torch.tensor(x)), torch.tensor(y))
    t_loss.backward()
    with torch.no_grad():
        for p in theirs.parameters():
            p -= lr * p.grad
    assert np.isclose(loss.item(), t_loss.item(), rtol=1e-5)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=k)


def test_four_layer_scalar_chain_from_issue():
    layers = [nn.Linear(1, 1) for _ in range(4)]
    for lin, w in zip(layers, [1.0, 2.0, 1.0, 1.0]):
        nn.init.constant_(lin.weight, w)
        nn.init.zeros_(lin.bias)
    model = nn.Sequential(layers[0], nn.Identity(), layers[1], nn.Identity(), layers[2],
                          nn.Tanh(), layers[3], nn.Identity())
    model.to(gg.float64)
    z = model(gg.tensor([[2.0]], dtype=gg.float64))
    loss = ((z - 10.0) ** 2).sum() * 0.5
    loss.backward()
    assert math.isclose(loss.item(), 40.506, abs_tol=1e-3)
    assert math.isclose(layers[3].weight.grad.item(), -8.994, abs_tol=1e-3)
    assert math.isclose(layers[3].bias.grad.item(), -9.0007, abs_tol=1e-4)
    assert math.isclose(layers[2].weight.grad.item(), -0.0483, abs_tol=1e-4)
    with gg.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    assert math.isclose(layers[3].weight.item(), 1.8994, abs_tol=1e-4)


def test_default_init_statistics_match_torch():
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w = lin.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.isclose(w.std(), bound / math.sqrt(3), rtol=0.02)
    b = lin.bias.detach().numpy()
    assert np.abs(b).max() <= bound
    emb = nn.Embedding(500, 100).weight.detach().numpy()
    assert abs(emb.mean()) < 0.02 and abs(emb.std() - 1) < 0.02


def test_init_functions():
    t = gg.empty(200, 300)
    std = math.sqrt(2.0 / 500)
    assert np.isclose(nn.init.xavier_normal_(t).numpy().std(), std, rtol=0.03)
    a = math.sqrt(6.0 / 500)
    v = nn.init.xavier_uniform_(t).numpy()
    assert np.abs(v).max() <= a and np.isclose(v.std(), a / math.sqrt(3), rtol=0.03)
    k = nn.init.kaiming_normal_(t, nonlinearity="relu").numpy()
    assert np.isclose(k.std(), math.sqrt(2.0 / 300), rtol=0.03)
    ku = nn.init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu").numpy()
    assert np.abs(ku).max() <= math.sqrt(6.0 / 200)
    assert np.isclose(nn.init.normal_(t, 3.0, 0.5).numpy().mean(), 3.0, atol=0.01)
    u = nn.init.uniform_(t, -2.0, -1.0).numpy()
    assert u.min() >= -2 and u.max() < -1
    assert np.all(nn.init.ones_(t).numpy() == 1) and np.all(nn.init.zeros_(t).numpy() == 0)
    p = nn.Parameter(gg.zeros(3, 3))
    nn.init.constant_(p, 0.5)  # works on a leaf that requires grad
    assert p.requires_grad and np.all(p.detach().numpy() == 0.5)
    with pytest.raises(ValueError, match="fan in"):
        nn.init.xavier_uniform_(gg.zeros(3))


def test_init_reproducible_with_manual_seed():
    gg.manual_seed(3)
    a = nn.Linear(5, 5).weight.detach().numpy()
    gg.manual_seed(3)
    b = nn.Linear(5, 5).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


def _params_with_grads(values):
    ps = []
    for v in values:
        p = nn.Parameter(gg.zeros(len(v)))
        p.grad = gg.tensor(v)
        ps.append(p)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    vals = [[3.0, -4.0], [12.0]]
    ours = _params_with_grads(vals)
    theirs = [torch.zeros(len(v), requires_grad=True) for v in vals]
    for t, v in zip(theirs, vals):
        t.grad = torch.tensor(v)
    total = nn.utils.clip_grad_norm_(ours, 5.0, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, 5.0, norm_type=norm_type)
    assert isinstance(total, gg.Tensor)
    assert np.isclose(total.item(), t_total.item(), rtol=1e-6)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-6)


def test_clip_grad_norm_no_clip_when_small_and_no_host_sync(monkeypatch):
    ps = _params_with_grads([[0.3, 0.4]])

    def forbidden(*args, **kwargs):
        raise AssertionError("host sync in clip_grad_norm_")

    monkeypatch.setattr(gg.Tensor, "item", forbidden)
    monkeypatch.setattr(gg.Tensor, "__float__", forbidden)
    monkeypatch.setattr(gg.Tensor, "__bool__", forbidden)
    monkeypatch.setattr(gg.Tensor, "tolist", forbidden)
    monkeypatch.setattr(type(ps[0]._backend), "to_host", forbidden)
    total = nn.utils.clip_grad_norm_(iter(ps), 1.0)
    monkeypatch.undo()
    assert np.isclose(total.item(), 0.5)
    np.testing.assert_allclose(ps[0].grad.numpy(), [0.3, 0.4], rtol=1e-6)


def test_clip_grad_value():
    ps = _params_with_grads([[3.0, -4.0, 0.5]])
    nn.utils.clip_grad_value_(ps, 1.0)
    np.testing.assert_array_equal(ps[0].grad.numpy(), [1.0, -1.0, 0.5])


def test_small_classifier_trains():
    """A few full-batch steps of an MLP with LayerNorm, GELU, Dropout and cross-entropy
    reduce the loss (everything wired end to end)."""
    rng = np.random.default_rng(0)
    x = gg.tensor(rng.standard_normal((64, 4)).astype(np.float32))
    y = gg.tensor((rng.standard_normal(64) > 0).astype(np.int64))
    model = nn.Sequential(nn.Linear(4, 16), nn.LayerNorm(16), nn.GELU(), nn.Dropout(0.1),
                          nn.Linear(16, 2))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    first = None
    for _ in range(30):
        model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        with gg.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        first = loss.item() if first is None else first
    model.eval()
    assert loss_fn(model(x), y).item() < first
