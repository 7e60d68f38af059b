"""The fused ops (`FusedOp`): softmax, log-softmax, the cross-entropies, normalize and layer
norm, dropout, the LSTM/GRU cells. Without create_graph their backward is the array VJP;
under create_graph it differentiates their composite definition. Checked here: the array
VJP against PyTorch and against the composite's VJP, second derivatives (Hessian-vector
products) against PyTorch, with the backend's fused row kernels switched on and off, and
that each path is the one taken."""

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.backend import cpu_backend
from gpugrad.ops.activation import Dropout, LogSoftmax, PhiloxDropout, Softmax
from gpugrad.ops.loss import IndexCrossEntropy, SoftmaxCrossEntropy
from gpugrad.ops.normalization import LayerNormRows, Normalize
from gpugrad.ops.recurrent import GRUCell, LSTMCell, gru_cell, lstm_cell
from tests.nn.test_fused_rows import _close

TF = torch.nn.functional

pytestmark = pytest.mark.usefixtures("cpu_default_device")


@pytest.fixture(params=[False, True], ids=["composite_rows", "fused_rows"])
def fused(request, monkeypatch):
    """The NumPy backend with and without the fused row methods (the CUDA path)."""
    monkeypatch.setattr(type(cpu_backend), "fused_rows", request.param)
    return request.param


def _check(fn, arrays, op, seed=0, tol=1e-10):
    """fn(lib, T, *inputs) in both frameworks (lib: F or torch's functional, T: a constant
    tensor from an array): the output comes from `op`; the first derivatives of
    L = Σ w·out² without a graph (the array VJP) and with one (the composite's VJP) equal
    PyTorch's; a Hessian-vector product of L equals PyTorch's."""
    rng = np.random.default_rng(seed)

    def run(lib_g: bool):
        if lib_g:
            xs = [gg.tensor(a, requires_grad=True) for a in arrays]
            out = fn(F, gg.tensor, *xs)
        else:
            xs = [torch.tensor(a, requires_grad=True) for a in arrays]
            out = fn(TF, torch.tensor, *xs)
        return xs, out

    xs, out = run(True)
    assert isinstance(out.grad_fn, op), type(out.grad_fn)
    ts, out_t = run(False)
    _close(out, out_t)
    w = rng.standard_normal(tuple(out_t.shape))
    lt = (torch.tensor(w) * out_t * out_t).sum()
    t1 = torch.autograd.grad(lt, ts, create_graph=True)
    fast = gg.autograd.grad((gg.tensor(w) * out * out).sum(), xs)
    for a, b in zip(fast, t1):
        _close(a, b, tol)
    xs2, out2 = run(True)
    g1 = gg.autograd.grad((gg.tensor(w) * out2 * out2).sum(), xs2, create_graph=True)
    for a, b, c in zip(g1, fast, t1):
        _close(a, b, tol)  # the composite's VJP is the array VJP
        _close(a, c, tol)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    g2 = gg.autograd.grad(sum((a * gg.tensor(v)).sum() for a, v in zip(g1, vs)), xs2,
                          allow_unused=True)
    t2 = torch.autograd.grad(sum((a * torch.tensor(v)).sum() for a, v in zip(t1, vs)), ts,
                             allow_unused=True)
    for a, b in zip(g2, t2):
        _close(a, b, tol)


RNG = np.random.default_rng(42)


@pytest.mark.parametrize("name,op", [("softmax", Softmax), ("log_softmax", LogSoftmax)])
@pytest.mark.parametrize("shape,dim", [((5, 7), -1), ((5, 7), 0), ((2, 3, 4), 1), ((6,), 0)])
def test_softmax_family(name, op, shape, dim, fused):
    _check(lambda lib, T, x: getattr(lib, name)(x, dim), [RNG.standard_normal(shape) * 3], op)


def test_softmax_with_masked_logits(fused):
    """−inf logits (a masked attention row): the composite, evaluated at the log of the
    output (the only thing kept), still gives PyTorch's finite derivatives."""
    a = RNG.standard_normal((4, 6))
    a[:, 1] = a[2, 4] = -np.inf
    _check(lambda lib, T, x: lib.softmax(x, -1), [a], Softmax)


CE_CASES = {
    "plain": {},
    "ignore_index": {"ignore_index": 2},
    "smoothing": {"label_smoothing": 0.2},
    "weights": {"weight": True},
    "all": {"weight": True, "label_smoothing": 0.1, "ignore_index": 0},
}


@pytest.mark.parametrize("case", sorted(CE_CASES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_integer_targets(case, reduction, fused):
    kw = dict(CE_CASES[case])
    target = np.array([0, 4, 2, 2, 1, 3, 0, 2])
    weight = RNG.uniform(0.5, 2.0, 5) if kw.pop("weight", False) else None
    plain = not kw.get("label_smoothing") and weight is None
    op = IndexCrossEntropy if fused and plain else SoftmaxCrossEntropy

    def fn(lib, T, x):
        w = None if weight is None else T(weight)
        return lib.cross_entropy(x, T(target), weight=w, reduction=reduction, **kw)

    if reduction != "none":  # the reduction is an op after the cross-entropy
        out = fn(F, gg.tensor, gg.tensor(RNG.standard_normal((8, 5)), requires_grad=True))
        if op is SoftmaxCrossEntropy:
            op = type(out.grad_fn)
    _check(fn, [RNG.standard_normal((8, 5)) * 2], op)


def test_cross_entropy_spatial_and_probability_targets():
    """Classes along dim 1 of (N, C, d) logits; soft targets that require grad get their
    own first and second derivatives."""
    t = np.array([[0, 2, 1], [1, 1, 0]])
    _check(lambda lib, T, x: lib.cross_entropy(x, T(t), reduction="none", label_smoothing=0.3),
           [RNG.standard_normal((2, 3, 3))], SoftmaxCrossEntropy)
    q = RNG.dirichlet(np.ones(4), size=5)
    _check(lambda lib, T, x, p: lib.cross_entropy(x, p, reduction="none"),
           [RNG.standard_normal((5, 4)), q], SoftmaxCrossEntropy)


@pytest.mark.parametrize("affine", ["both", "weight", "none"])
@pytest.mark.parametrize("shape,norm", [((3, 4, 7), (7,)), ((3, 4, 7), (4, 7))])
def test_layer_norm(affine, shape, norm, fused):
    arrays = [RNG.standard_normal(shape)]
    if affine != "none":
        arrays.append(RNG.standard_normal(norm))
    if affine == "both":
        arrays.append(RNG.standard_normal(norm))
    op = LayerNormRows if fused and len(norm) == 1 else Normalize

    def fn(lib, T, x, *wb):
        return lib.layer_norm(x, norm, *wb, eps=1e-5)

    if affine != "none" and op is Normalize:  # the affine part is ordinary arithmetic
        op = type(fn(F, gg.tensor, *[gg.tensor(a, requires_grad=True) for a in arrays]).grad_fn)
    _check(fn, arrays, op, tol=1e-9)


def test_batch_norm_standardizes_with_its_own_statistics():
    """Batch norm passes its batch statistics to `Normalize`; the composite recomputes
    them from x, so second derivatives include the statistics' dependence on x."""
    _check(lambda lib, T, x: lib.batch_norm(x, None, None, training=True),
           [RNG.standard_normal((6, 3, 4))], Normalize, tol=1e-9)


@pytest.mark.parametrize("philox", [False, True], ids=["stored_mask", "philox_mask"])
def test_dropout_double_backward_uses_the_forward_mask(philox, monkeypatch):
    monkeypatch.setattr(type(cpu_backend), "regenerates_dropout_mask", philox)
    gg.manual_seed(11)
    a = RNG.uniform(0.5, 2.0, (40, 9))
    x = gg.tensor(a, requires_grad=True)
    y = F.dropout(x, 0.35)
    assert isinstance(y.grad_fn, PhiloxDropout if philox else Dropout)
    scale = y.detach().numpy() / a  # m/(1 − p): 0 or 1/0.65
    assert set(np.unique(np.round(scale, 12))) == {0.0, round(1 / 0.65, 12)}
    w = RNG.standard_normal(a.shape)
    (fast,) = gg.autograd.grad((y ** 3 * gg.tensor(w)).sum(), (x,), retain_graph=True)
    (g1,) = gg.autograd.grad((y ** 3 * gg.tensor(w)).sum(), (x,), create_graph=True)
    want = 3 * (a * scale) ** 2 * scale * w
    np.testing.assert_allclose(fast.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(g1.detach().numpy(), want, rtol=1e-12)
    v = RNG.standard_normal(a.shape)
    (g2,) = gg.autograd.grad((g1 * gg.tensor(v)).sum(), (x,))
    np.testing.assert_allclose(g2.numpy(), 6 * a * scale ** 3 * w * v, rtol=1e-12)


def _torch_lstm_cell(x, p, c):
    i, f, g, o = (x + p).split(c.shape[-1], -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _torch_gru_cell(x, p, h):
    n = h.shape[-1]
    xr, xz, xn = x.split(n, -1)
    pr, pz, pn = p.split(n, -1)
    r, z = torch.sigmoid(xr + pr), torch.sigmoid(xz + pz)
    return (1 - z) * torch.tanh(xn + r * pn) + z * h


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_cells(cell):
    """The cells' array VJP and second derivatives against the same math in PyTorch (the
    layers' are in test_rnn_fused.py), and a second-order gradcheck."""
    k = 4 if cell == "lstm" else 3
    arrays = [RNG.standard_normal((3, k * 2)), RNG.standard_normal((3, k * 2)),
              RNG.standard_normal((3, 2))]
    ours, theirs, op = ((lstm_cell, _torch_lstm_cell, LSTMCell) if cell == "lstm"
                        else (gru_cell, _torch_gru_cell, GRUCell))

    def fn(lib, T, *ins):
        out = ours(*ins) if lib is F else theirs(*ins)
        return out[0] * out[1] if cell == "lstm" else out  # one output that uses both

    if cell == "lstm":
        xs = [gg.tensor(a, requires_grad=True) for a in arrays]
        assert isinstance(ours(*xs)[0].grad_fn, LSTMCell)
        op = type(fn(F, gg.tensor, *xs).grad_fn)
    _check(fn, arrays, op)
    xs = [gg.tensor(a, requires_grad=True) for a in arrays]

    def first(*ins):
        with gg.enable_grad():  # gradcheck's finite differences run under no_grad
            out = ours(*ins)
            loss = (out[0] ** 2).sum() + out[1].sum() if cell == "lstm" else (out ** 2).sum()
            return gg.autograd.grad(loss, list(ins), create_graph=True)

    assert gg.autograd.gradcheck(first, xs)


# --- which path runs ----------------------------------------------------------------------
def _softmax_loss(x):
    return (F.softmax(x, -1) ** 2).sum()


PATH_CASES = {
    "softmax": (Softmax, _softmax_loss, False),
    "softmax_fused": (Softmax, _softmax_loss, True),
    "log_softmax": (LogSoftmax, lambda x: (F.log_softmax(x, 0) ** 2).sum(), False),
    "cross_entropy": (SoftmaxCrossEntropy,
                      lambda x: F.cross_entropy(x, gg.tensor([1, 0, 2]), label_smoothing=0.1),
                      False),
    "index_cross_entropy": (IndexCrossEntropy,
                            lambda x: F.cross_entropy(x, gg.tensor([1, 0, 2])), True),
    "layer_norm": (Normalize, lambda x: (F.layer_norm(x, (4,)) ** 3).sum(), False),
    "layer_norm_rows": (LayerNormRows, lambda x: (F.layer_norm(x, (4,)) ** 3).sum(), True),
    "dropout": (Dropout, lambda x: (F.dropout(x, 0.5) ** 2).sum(), False),
    "lstm_cell": (LSTMCell, lambda x: (lstm_cell(x, x * 0.5, x[:, :1])[0] ** 2).sum(), False),
    "gru_cell": (GRUCell, lambda x: (gru_cell(x[:, :3], x[:, 1:], x[:, :1]) ** 2).sum(), False),
}


@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_array_vjp_without_create_graph_and_composite_with_it(case, monkeypatch):
    op, loss_of, rows = PATH_CASES[case]
    monkeypatch.setattr(type(cpu_backend), "fused_rows", rows)
    calls = []
    for name in ("composite", "backward_arrays"):
        real = getattr(op, name)
        monkeypatch.setattr(op, name, staticmethod(
            lambda *a, _n=name, _f=real: calls.append(_n) or _f(*a)))
    x = gg.randn(3, 4, dtype=gg.float64, requires_grad=True)
    loss_of(x).backward()
    assert calls == ["backward_arrays"]
    calls.clear()
    gg.autograd.grad(loss_of(x), (x,), create_graph=True)
    assert calls == ["composite"]
