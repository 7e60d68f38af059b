"""The fused recurrent layers (`LSTMLayer`, `GRULayer`): their hand-written BPTT (plain
backward) against the unrolled graph they stand for (taken under create_graph=True),
double backward through them, and the graph bookkeeping of their differentiable VJP."""

import numpy as np
import pytest
import torch

import gpugrad as gg
from gpugrad import nn
from gpugrad.ops.recurrent import (
    _gru_unrolled,
    _lstm_unrolled,
    _rnn_unrolled,
    gru_layer,
    lstm_layer,
    rnn_layer,
)


def _leaf(rng, *shape, dtype=gg.float64):
    return gg.tensor(rng.standard_normal(shape), dtype=dtype, requires_grad=True)


def _layer_inputs(rng, steps=5, batch=3, n_in=4, hidden=3, bias=True):
    x, h0, c0 = _leaf(rng, steps, batch, n_in), _leaf(rng, batch, hidden), _leaf(rng, batch,
                                                                                hidden)
    w_ih, w_hh = _leaf(rng, 4 * hidden, n_in), _leaf(rng, 4 * hidden, hidden)
    b_ih, b_hh = (_leaf(rng, 4 * hidden), _leaf(rng, 4 * hidden)) if bias else (None, None)
    return [x, h0, c0, w_ih, w_hh, b_ih, b_hh]


def _weighted_loss(outs, rng):
    return sum((o * gg.tensor(rng.standard_normal(tuple(o.shape)))).sum() for o in outs)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_layer_op_matches_unrolled_graph(reverse, bias):
    """Values and every input's gradient: fused op (plain backward) vs the unrolled graph."""
    rng = np.random.default_rng(0)
    ins = _layer_inputs(rng, bias=bias)
    fused = lstm_layer(*ins, reverse=reverse)
    unrolled = _lstm_unrolled(*ins, reverse=reverse)
    for a, b in zip(fused, unrolled):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12,
                                   atol=1e-14)
    wrt = [t for t in ins if t is not None]
    g_fused = gg.autograd.grad(_weighted_loss(fused, np.random.default_rng(1)), wrt)
    g_unrolled = gg.autograd.grad(_weighted_loss(unrolled, np.random.default_rng(1)), wrt)
    for k, (a, b) in enumerate(zip(g_fused, g_unrolled)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"input {k}")


def _grads(lstm, x, state, create_graph: bool):
    out, (h_n, c_n) = lstm(x, state)
    loss = _weighted_loss([out, h_n, c_n], np.random.default_rng(5))
    wrt = [x, *state, *lstm.parameters()]
    return gg.autograd.grad(loss, wrt, create_graph=create_graph)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, False), (1, True),
                                                      (2, True)])
def test_fused_backward_equals_differentiable_backward(batch_first, num_layers,
                                                       bidirectional):
    """Plain backward (BPTT on arrays) and create_graph=True (the unrolled graph's VJP)
    give the same gradients for the input, h0, c0 and every weight."""
    gg.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=num_layers, batch_first=batch_first,
                   bidirectional=bidirectional, dtype=gg.float64)
    rng = np.random.default_rng(2)
    n_states = num_layers * (2 if bidirectional else 1)
    x = _leaf(rng, *((2, 5, 3) if batch_first else (5, 2, 3)))
    state = (_leaf(rng, n_states, 2, 4), _leaf(rng, n_states, 2, 4))
    plain = _grads(lstm, x, state, create_graph=False)
    graph = _grads(lstm, x, state, create_graph=True)
    assert all(g._requires_grad for g in graph)
    assert not any(g._requires_grad for g in plain)
    for k, (a, b) in enumerate(zip(plain, graph)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"gradient {k}")


def test_double_backward_matches_torch():
    """A gradient penalty through a 2-layer bidirectional LSTM, against PyTorch."""
    theirs = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    ours = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=gg.float64)
    ours.load_state_dict({k: gg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((4, 2, 3))
    h0, c0 = rng.standard_normal((4, 2, 4)), rng.standard_normal((4, 2, 4))

    xg = gg.tensor(x0, requires_grad=True)
    hg, cg = gg.tensor(h0, requires_grad=True), gg.tensor(c0, requires_grad=True)
    out, (h_n, c_n) = ours(xg, (hg, cg))
    gx, gh = gg.autograd.grad((out ** 2).sum() + (c_n ** 2).sum(), [xg, hg], create_graph=True)
    ((gx ** 2).sum() + (gh * gh).sum()).backward()

    xt = torch.tensor(x0, requires_grad=True)
    ht, ct = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    with torch.backends.mkldnn.flags(enabled=False):
        out_t, (_, c_nt) = theirs(xt, (ht, ct))
        gxt, ght = torch.autograd.grad((out_t ** 2).sum() + (c_nt ** 2).sum(), [xt, ht],
                                       create_graph=True)
        ((gxt ** 2).sum() + (ght * ght).sum()).backward()

    np.testing.assert_allclose(gx.detach().numpy(), gxt.detach().numpy(), rtol=1e-9)
    for a, b in [(xg, xt), (hg, ht), (cg, ct)]:
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-11)
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=1e-8,
                                   atol=1e-11, err_msg=name)


def test_second_derivatives_gradcheck():
    """The differentiable VJP of the fused layer, checked by finite differences."""
    rng = np.random.default_rng(4)
    ins = _layer_inputs(rng, steps=3, batch=2, n_in=2, hidden=2)

    def first_grads(*ins):
        with gg.enable_grad():  # gradcheck's finite differences run under no_grad
            out, h, c = lstm_layer(*ins, reverse=True)
            loss = (out * out).sum() + (h * c).sum()
            return gg.autograd.grad(loss, list(ins), create_graph=True)

    assert gg.autograd.gradcheck(first_grads, ins)


def test_differentiable_backward_runs_upstream_nodes_once():
    """The VJP under create_graph=True differentiates only the layer: the graph before it
    runs once (in the outer backward) and parameter hooks fire once."""
    calls = []

    class Spy(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            calls.append("spy")
            return g

    gg.manual_seed(1)
    lstm = nn.LSTM(2, 3, dtype=gg.float64)
    lstm.weight_hh_l0.register_hook(lambda g: calls.append("hook"))
    x = _leaf(np.random.default_rng(6), 4, 1, 2)
    out, _ = lstm(Spy.apply(x))
    (gx,) = gg.autograd.grad(out.sum(), [x], create_graph=True)
    assert calls.count("spy") == 1 and calls.count("hook") <= 1  # not again from inside
    lstm.weight_hh_l0.grad = None
    loss = out.sum() * 0 + (gx * gx).sum()
    loss.backward()
    assert lstm.weight_hh_l0.grad is not None


def test_float32_fused_layer_matches_torch_long_sequence():
    theirs = torch.nn.LSTM(8, 16, num_layers=2)
    ours = nn.LSTM(8, 16, num_layers=2)
    ours.load_state_dict({k: gg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    x0 = np.random.default_rng(7).standard_normal((40, 3, 8)).astype(np.float32) * 3
    xg, xt = gg.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    og, ot = ours(xg)[0], theirs(xt)[0]
    np.testing.assert_allclose(og.detach().numpy(), ot.detach().numpy(), rtol=1e-4, atol=1e-5)
    og.sum().backward()
    ot.sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-5)
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=1e-3,
                                   atol=1e-4, err_msg=name)


def test_in_place_change_of_output_or_weight_is_caught():
    lstm = nn.LSTM(2, 3)
    x = gg.randn(4, 1, 2, requires_grad=True)
    out, _ = lstm(x)
    with gg.no_grad():
        out.add_(1.0)  # the layer's output holds the states its backward reads
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()
    out, _ = lstm(x)
    with gg.no_grad():
        lstm.weight_hh_l0.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_bias_gradients_do_not_alias():
    lstm = nn.LSTM(2, 3)
    out, _ = lstm(gg.randn(3, 2, 2))
    out.sum().backward()
    np.testing.assert_array_equal(lstm.bias_ih_l0.grad.numpy(), lstm.bias_hh_l0.grad.numpy())
    lstm.bias_ih_l0.grad.mul_(2.0)
    assert not np.array_equal(lstm.bias_ih_l0.grad.numpy(), lstm.bias_hh_l0.grad.numpy())


def test_only_final_states_used():
    """Gradients that reach only h_n or c_n (the output unused) flow back correctly."""
    rng = np.random.default_rng(8)
    ins = _layer_inputs(rng)
    for pick in (1, 2):
        fused = lstm_layer(*ins)[pick].sum()
        unrolled = _lstm_unrolled(*ins)[pick].sum()
        wrt = [t for t in ins if t is not None]
        for a, b in zip(gg.autograd.grad(fused, wrt), gg.autograd.grad(unrolled, wrt)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


# --- GRU ---------------------------------------------------------------------------------
def _gru_inputs(rng, steps=5, batch=3, n_in=4, hidden=3, bias=True):
    x, h0 = _leaf(rng, steps, batch, n_in), _leaf(rng, batch, hidden)
    w_ih, w_hh = _leaf(rng, 3 * hidden, n_in), _leaf(rng, 3 * hidden, hidden)
    b_ih, b_hh = (_leaf(rng, 3 * hidden), _leaf(rng, 3 * hidden)) if bias else (None, None)
    return [x, h0, w_ih, w_hh, b_ih, b_hh]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_gru_layer_op_matches_unrolled_graph(reverse, bias):
    rng = np.random.default_rng(10)
    ins = _gru_inputs(rng, bias=bias)
    fused = gru_layer(*ins, reverse=reverse)
    unrolled = _gru_unrolled(*ins, reverse=reverse)
    for a, b in zip(fused, unrolled):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12,
                                   atol=1e-14)
    wrt = [t for t in ins if t is not None]
    for pick in (None, 1):  # output and final state; the final state alone
        outs_f = fused if pick is None else fused[pick:pick + 1]
        outs_u = unrolled if pick is None else unrolled[pick:pick + 1]
        g_f = gg.autograd.grad(_weighted_loss(outs_f, np.random.default_rng(1)), wrt,
                               retain_graph=True)
        g_u = gg.autograd.grad(_weighted_loss(outs_u, np.random.default_rng(1)), wrt,
                               retain_graph=True)
        for k, (a, b) in enumerate(zip(g_f, g_u)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"input {k}")


def _single_state_grads(layer, x, h0, create_graph: bool):
    out, h_n = layer(x, h0)
    loss = _weighted_loss([out, h_n], np.random.default_rng(5))
    return gg.autograd.grad(loss, [x, h0, *layer.parameters()], create_graph=create_graph)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
def test_gru_fused_backward_equals_differentiable_backward(batch_first, num_layers,
                                                           bidirectional):
    gg.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=num_layers, batch_first=batch_first,
                 bidirectional=bidirectional, dtype=gg.float64)
    rng = np.random.default_rng(11)
    n_states = num_layers * (2 if bidirectional else 1)
    x = _leaf(rng, *((2, 5, 3) if batch_first else (5, 2, 3)))
    h0 = _leaf(rng, n_states, 2, 4)
    plain = _single_state_grads(gru, x, h0, create_graph=False)
    graph = _single_state_grads(gru, x, h0, create_graph=True)
    for k, (a, b) in enumerate(zip(plain, graph)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"gradient {k}")


def test_gru_second_derivatives_gradcheck():
    rng = np.random.default_rng(12)
    ins = _gru_inputs(rng, steps=3, batch=2, n_in=2, hidden=2)

    def first_grads(*ins):
        with gg.enable_grad():
            out, h = gru_layer(*ins)
            return gg.autograd.grad((out * out).sum() + h.sum(), list(ins), create_graph=True)

    assert gg.autograd.gradcheck(first_grads, ins)


# --- Elman RNN ---------------------------------------------------------------------------
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_layer_op_matches_unrolled_graph(relu, reverse):
    rng = np.random.default_rng(20)
    x, h0 = _leaf(rng, 5, 3, 4), _leaf(rng, 3, 3)
    ins = [x, h0, _leaf(rng, 3, 4), _leaf(rng, 3, 3), _leaf(rng, 3), _leaf(rng, 3)]
    fused = rnn_layer(*ins, reverse=reverse, relu=relu)
    unrolled = _rnn_unrolled(*ins, reverse=reverse, relu=relu)
    for a, b in zip(fused, unrolled):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12,
                                   atol=1e-14)
    g_f = gg.autograd.grad(_weighted_loss(fused, np.random.default_rng(1)), ins)
    g_u = gg.autograd.grad(_weighted_loss(unrolled, np.random.default_rng(1)), ins)
    for k, (a, b) in enumerate(zip(g_f, g_u)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"input {k}")


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_rnn_fused_backward_equals_differentiable_backward(nonlinearity, batch_first):
    gg.manual_seed(0)
    rnn = nn.RNN(3, 4, num_layers=2, nonlinearity=nonlinearity, batch_first=batch_first,
                 bidirectional=True, dtype=gg.float64)
    rng = np.random.default_rng(21)
    x = _leaf(rng, *((2, 5, 3) if batch_first else (5, 2, 3)))
    h0 = _leaf(rng, 4, 2, 4)
    plain = _single_state_grads(rnn, x, h0, create_graph=False)
    graph = _single_state_grads(rnn, x, h0, create_graph=True)
    for k, (a, b) in enumerate(zip(plain, graph)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"gradient {k}")


def test_rnn_second_derivatives_gradcheck():
    rng = np.random.default_rng(22)
    ins = [_leaf(rng, 3, 2, 2), _leaf(rng, 2, 2), _leaf(rng, 2, 2), _leaf(rng, 2, 2),
           _leaf(rng, 2), _leaf(rng, 2)]

    def first_grads(*ins):
        with gg.enable_grad():
            out, h = rnn_layer(*ins, reverse=True)
            return gg.autograd.grad((out * out).sum() + h.sum(), list(ins), create_graph=True)

    assert gg.autograd.gradcheck(first_grads, ins)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_retain_graph_and_inference(mode):
    """Backward twice with retain_graph accumulates twice; a freed graph says so; no_grad
    forward gives the same values."""
    gg.manual_seed(3)
    layer = getattr(nn, mode)(2, 3, num_layers=2, dtype=gg.float64)
    x = _leaf(np.random.default_rng(30), 4, 2, 2)
    out, _ = layer(x)
    out.sum().backward(retain_graph=True)
    first = x.grad.numpy().copy()
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-12)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.sum().backward()
    with gg.no_grad():
        again, _ = layer(x)
    assert again.grad_fn is None
    np.testing.assert_array_equal(again.numpy(), out.detach().numpy())
