"""RNN, LSTM and GRU against torch.nn with the same weights (state dicts copied through
NumPy): outputs, final states, and gradients for inputs, initial states, weights and
biases; float64 gradchecks of the fused cells; gradient clipping; bad inputs."""

import numpy as np
import pytest
import torch

import gpugrad as gg
from gpugrad import nn

MODES = ["RNN", "LSTM", "GRU"]


def make_pair(mode: str, input_size=3, hidden=5, dtype=gg.float64, **kw):
    """A torch layer and its gpugrad twin holding the torch weights."""
    theirs = getattr(torch.nn, mode)(input_size, hidden, **kw)
    theirs = theirs.double() if dtype is gg.float64 else theirs
    ours = getattr(nn, mode)(input_size, hidden, dtype=dtype, **kw)
    ours.load_state_dict({k: gg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    return ours, theirs


def run_both(ours, theirs, x, state=None, tol=1e-9):
    """Forward both, backward a loss touching output and final states, compare all."""
    is_lstm = isinstance(ours, nn.LSTM)
    xg, xt = gg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    sg = st = None
    leaves_g, leaves_t = [xg], [xt]
    if state is not None:
        sg = [gg.tensor(s, requires_grad=True) for s in state]
        st = [torch.tensor(s, requires_grad=True) for s in state]
        leaves_g += sg
        leaves_t += st
        sg, st = (tuple(sg), tuple(st)) if is_lstm else (sg[0], st[0])
    og, hg = ours(xg, sg)
    ot, ht = theirs(xt, st)
    hg, ht = (list(hg), list(ht)) if is_lstm else ([hg], [ht])
    assert tuple(og.shape) == tuple(ot.shape)
    for a, b in zip([og] + hg, [ot] + ht):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)
    rng = np.random.default_rng(7)
    weights = [rng.standard_normal(tuple(b.shape)) for b in [ot] + ht]
    loss_g = sum((a * gg.tensor(w.astype(x.dtype))).sum() for a, w in zip([og] + hg, weights))
    loss_t = sum((a * torch.tensor(w.astype(x.dtype))).sum() for a, w in zip([ot] + ht, weights))
    loss_g.backward()
    loss_t.backward()
    for k, (a, b) in enumerate(zip(leaves_g, leaves_t)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=f"leaf {k}")
    t_params = dict(theirs.named_parameters())
    g_params = dict(ours.named_parameters())
    assert list(g_params) == list(t_params)
    for name, p in g_params.items():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=tol,
                                   atol=tol, err_msg=name)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_matches_torch(mode, num_layers, batch_first, with_state):
    ours, theirs = make_pair(mode, num_layers=num_layers, batch_first=batch_first)
    rng = np.random.default_rng(num_layers)
    for steps in (1, 3, 6):
        x = rng.standard_normal((2, steps, 3) if batch_first else (steps, 2, 3))
        state = None
        if with_state:
            state = [rng.standard_normal((num_layers, 2, 5))
                     for _ in range(2 if mode == "LSTM" else 1)]
        ours.zero_grad()
        theirs.zero_grad()
        run_both(ours, theirs, x, state)


@pytest.mark.parametrize("mode", MODES)
def test_bidirectional_no_bias_relu_and_unbatched(mode):
    rng = np.random.default_rng(3)
    ours, theirs = make_pair(mode, num_layers=2, bidirectional=True)
    run_both(ours, theirs, rng.standard_normal((4, 2, 3)),
             [rng.standard_normal((4, 2, 5)) for _ in range(2 if mode == "LSTM" else 1)])
    ours, theirs = make_pair(mode, bias=False, batch_first=True)
    run_both(ours, theirs, rng.standard_normal((2, 4, 3)))
    ours, theirs = make_pair(mode)
    run_both(ours, theirs, rng.standard_normal((5, 3)),  # unbatched (T, input_size)
             [rng.standard_normal((1, 5)) for _ in range(2 if mode == "LSTM" else 1)])


def test_relu_rnn_and_float32():
    rng = np.random.default_rng(4)
    ours, theirs = make_pair("RNN", nonlinearity="relu", num_layers=2)
    run_both(ours, theirs, rng.standard_normal((5, 3, 3)))
    ours, theirs = make_pair("LSTM", input_size=4, hidden=6, dtype=gg.float32)
    run_both(ours, theirs, rng.standard_normal((7, 3, 4)).astype(np.float32), tol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_parameters_and_init_like_torch(mode):
    ours = getattr(nn, mode)(4, 8, num_layers=2)
    theirs = getattr(torch.nn, mode)(4, 8, num_layers=2)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    bound = 1 / np.sqrt(8)
    values = np.concatenate([p.detach().numpy().ravel() for p in ours.parameters()])
    assert values.min() >= -bound and values.max() <= bound and values.std() > bound / 3
    # A gpugrad state dict loads into torch too.
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})


@pytest.mark.parametrize("cell", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_torch(cell):
    theirs = getattr(torch.nn, cell)(3, 4).double()
    ours = getattr(nn, cell)(3, 4, dtype=gg.float64)
    ours.load_state_dict({k: gg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((2, 3))
    xg, xt = gg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    hg, ht = ours(xg), theirs(xt)
    if cell == "LSTMCell":
        hg, ht = hg[0] * 2 + hg[1], ht[0] * 2 + ht[1]
    np.testing.assert_allclose(hg.detach().numpy(), ht.detach().numpy(), rtol=1e-10)
    (hg ** 2).sum().backward()
    (ht ** 2).sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (n, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9, err_msg=n)


# --- float64 gradchecks --------------------------------------------------------------------
def _leaf(rng, *shape):
    return gg.tensor(rng.standard_normal(shape), dtype=gg.float64, requires_grad=True)


def test_gradcheck_fused_cells():
    from gpugrad.ops.recurrent import gru_cell, lstm_cell

    rng = np.random.default_rng(0)
    a, p, c = _leaf(rng, 2, 8), _leaf(rng, 2, 8), _leaf(rng, 2, 2)
    assert gg.autograd.gradcheck(lambda a, p, c: lstm_cell(a, p, c), [a, p, c])
    x, p, h = _leaf(rng, 2, 6), _leaf(rng, 2, 6), _leaf(rng, 2, 2)
    assert gg.autograd.gradcheck(lambda x, p, h: gru_cell(x, p, h), [x, p, h])


def test_double_backward_of_cells_matches_torch():
    """create_graph=True takes the differentiable VJP; second derivatives match torch."""
    from gpugrad.ops.recurrent import lstm_cell

    rng = np.random.default_rng(1)
    a0, c0 = rng.standard_normal((2, 12)), rng.standard_normal((2, 3))
    a, c = gg.tensor(a0, requires_grad=True), gg.tensor(c0, requires_grad=True)
    h, c1 = lstm_cell(a * 0.5, a * 0.5, c)
    ga, gc = gg.autograd.grad((h * h).sum() + (c1 * c1).sum(), [a, c], create_graph=True)
    (ga.sum() + (gc * gc).sum()).backward()

    at, ct = torch.tensor(a0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    i, f, g, o = at.chunk(4, -1)
    c1t = torch.sigmoid(f) * ct + torch.sigmoid(i) * torch.tanh(g)
    ht = torch.sigmoid(o) * torch.tanh(c1t)
    gat, gct = torch.autograd.grad((ht * ht).sum() + (c1t * c1t).sum(), [at, ct],
                                   create_graph=True)
    (gat.sum() + (gct * gct).sum()).backward()
    np.testing.assert_allclose(ga.detach().numpy(), gat.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(c.grad.numpy(), ct.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_layers(mode):
    gg.manual_seed(0)
    layer = getattr(nn, mode)(2, 3, num_layers=2, dtype=gg.float64)
    rng = np.random.default_rng(2)
    x = _leaf(rng, 3, 2, 2)
    params = list(layer.parameters())

    def fn(x, *ps):
        out, _ = layer(x)
        return out

    assert gg.autograd.gradcheck(fn, [x] + params)


def test_gru_double_backward_gradcheck():
    from gpugrad.ops.recurrent import gru_cell

    rng = np.random.default_rng(3)
    x, p, h = _leaf(rng, 1, 6), _leaf(rng, 1, 6), _leaf(rng, 1, 2)

    def first_grads(x, p, h):
        with gg.enable_grad():  # gradcheck's finite differences run under no_grad
            out = gru_cell(x, p, h)
            return gg.autograd.grad((out * out).sum(), [x, p, h], create_graph=True)

    assert gg.autograd.gradcheck(first_grads, [x, p, h])


def test_lstm_cell_state_path_is_the_forget_gate():
    """dc_{t-1} = dc_t · f_t: the cell-state gradient is scaled by the forget gate."""
    from gpugrad.ops.recurrent import lstm_cell

    rng = np.random.default_rng(4)
    a = gg.tensor(rng.standard_normal((1, 8)))
    c = gg.tensor(rng.standard_normal((1, 2)), requires_grad=True)
    _, c1 = lstm_cell(a, gg.zeros(1, 8), c)
    c1.sum().backward()
    f = 1 / (1 + np.exp(-a.numpy()[:, 2:4]))
    np.testing.assert_allclose(c.grad.numpy(), f, rtol=1e-6)


# --- gradient clipping tamed -------------------------------------------------------------
def test_exploding_gradient_is_clipped():
    gg.manual_seed(0)
    rnn = nn.RNN(4, 16, nonlinearity="relu")
    with gg.no_grad():
        rnn.weight_hh_l0.mul_(3.0)  # recurrent gain > 1: gradients grow with every step
    x = gg.tensor(np.random.default_rng(0).uniform(0, 1, (30, 2, 4)).astype(np.float32))
    out, _ = rnn(x)
    out[-1].sum().backward()
    params = list(rnn.parameters())
    before = [p.grad.numpy().copy() for p in params]
    total = gg.nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert 1e3 < total.item() < np.inf
    after = np.sqrt(sum(float((p.grad.numpy().astype(np.float64) ** 2).sum()) for p in params))
    np.testing.assert_allclose(after, 1.0, rtol=1e-3)  # bounded to max_norm, direction kept
    for b, p in zip(before, params):
        np.testing.assert_allclose(p.grad.numpy(), b / total.item(), rtol=1e-3, atol=1e-12)


# --- bad inputs ----------------------------------------------------------------------------
def test_wrong_input_size_names_both_sizes():
    lstm = nn.LSTM(4, 3)
    with pytest.raises(gg.ShapeError, match=r"Expected 4, got 5"):
        lstm(gg.zeros(2, 1, 5))


def test_bad_states_and_ranks():
    gru = nn.GRU(4, 3, num_layers=2)
    with pytest.raises(gg.ShapeError, match=r"\(2, 1, 3\).*\(1, 1, 3\)"):
        gru(gg.zeros(2, 1, 4), gg.zeros(1, 1, 3))
    with pytest.raises(gg.ShapeError, match="2D or 3D"):
        gru(gg.zeros(2, 1, 1, 4))
    with pytest.raises(TypeError, match=r"\(h_0, c_0\)"):
        nn.LSTM(4, 3)(gg.zeros(2, 1, 4), gg.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(4, 3, nonlinearity="sigmoid")
    with pytest.raises(gg.ShapeError, match="input_size"):
        nn.LSTMCell(4, 3)(gg.zeros(2, 5))


def test_in_place_change_of_saved_state_is_caught():
    lstm = nn.LSTMCell(2, 2)
    c = gg.zeros(1, 2, requires_grad=True) * 1
    h, c1 = lstm(gg.ones(1, 2), (gg.zeros(1, 2), c))
    with gg.no_grad():
        c.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (h.sum() + c1.sum()).backward()


def test_lstm_cell_leaf_gradients_do_not_alias():
    """The cell returns one gate gradient for both projections; leaves get separate arrays."""
    from gpugrad.ops.recurrent import lstm_cell

    x, p = gg.randn(2, 8, requires_grad=True), gg.randn(2, 8, requires_grad=True)
    h, c = lstm_cell(x, p, gg.randn(2, 2))
    (h.sum() + c.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), p.grad.numpy())
    x.grad.mul_(2.0)
    assert not np.array_equal(x.grad.numpy(), p.grad.numpy())
