"""gg.nn.functional against torch.nn.functional: values, gradients, gradchecks, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import check, gradcheck, positive, rand

import gpugrad as gg
import gpugrad.nn.functional as F

# --- activations ------------------------------------------------------------------------------
ACTIVATIONS = [
    ("relu", lambda x: F.relu(x), TF.relu),
    ("sigmoid", lambda x: F.sigmoid(x), torch.sigmoid),
    ("tanh", lambda x: F.tanh(x), torch.tanh),
    ("gelu", lambda x: F.gelu(x), TF.gelu),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"),
     lambda x: TF.gelu(x, approximate="tanh")),
    ("silu", lambda x: F.silu(x), TF.silu),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("softmax0", lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0)),
    ("softmax-1", lambda x: F.softmax(x, dim=-1), lambda x: TF.softmax(x, dim=-1)),
    ("log_softmax1", lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1)),
    ("swish", lambda x: F.swish(x, 1.7), lambda x: x * torch.sigmoid(1.7 * x)),
]


@pytest.mark.parametrize("name,fn,tfn", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_matches_torch(name, fn, tfn):
    check(fn, [rand(3, 4, 5)], torch_fn=tfn)


@pytest.mark.parametrize("name,fn,tfn", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_float32(name, fn, tfn):
    check(fn, [rand(6, 7, dtype=np.float32)], torch_fn=tfn, atol=1e-5, rtol=1e-4)


GRADCHECKED = [
    lambda x: F.gelu(x),
    lambda x: F.gelu(x, approximate="tanh"),
    lambda x: F.silu(x),
    lambda x: F.leaky_relu(x, 0.1),
    lambda x: F.softmax(x, 1),
    lambda x: F.log_softmax(x, 0),
    lambda x: F.layer_norm(x, (4,)),
    lambda x: F.batch_norm(x, None, None, training=True),
]


@pytest.mark.parametrize("k", range(len(GRADCHECKED)))
def test_gradcheck_ops(k):
    gradcheck(GRADCHECKED[k], rand(3, 4))


@pytest.mark.parametrize("k", range(len(GRADCHECKED)))
def test_double_backward_gradcheck(k):
    """The VJPs are differentiable: gradcheck the gradient function itself."""
    fn = GRADCHECKED[k]

    def grad_of(x):
        with gg.enable_grad():  # gradcheck's finite differences run under no_grad
            (g,) = gg.autograd.grad((fn(x) * fn(x)).sum(), [x], create_graph=True)
        return g

    gradcheck(grad_of, rand(2, 4))


def test_swish_gradcheck_beta():
    gradcheck(lambda x, b: F.swish(x, b), rand(3, 4), np.array(0.8))


def test_swish_tensor_beta_matches_torch():
    check(lambda x, b: F.swish(x, b), [rand(3, 4), np.array(1.3)],
          torch_fn=lambda x, b: x * torch.sigmoid(b * x))


def test_softmax_extreme_logits():
    x = gg.tensor([[1000.0, 0.0, -1000.0]])
    y = F.softmax(x, -1).numpy()
    assert np.all(np.isfinite(y)) and np.allclose(y, [[1, 0, 0]])
    assert np.isfinite(F.log_softmax(x, -1).numpy()).all()


def test_dropout_statistics_and_grad():
    x = gg.ones(2000, requires_grad=True)
    y = F.dropout(x, 0.25, training=True)
    kept = y.detach().numpy() != 0
    assert 0.68 < kept.mean() < 0.82
    assert np.allclose(y.detach().numpy()[kept], 1 / 0.75)
    y.sum().backward()
    assert np.allclose(x.grad.numpy(), np.where(kept, 1 / 0.75, 0))
    assert F.dropout(x, 0.5, training=False) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)


def test_linear_and_embedding():
    check(lambda x, w, b: F.linear(x, w, b), [rand(2, 3, 4), rand(5, 4), rand(5)],
          torch_fn=TF.linear)
    idx = np.array([[0, 2], [1, 2]])
    check(lambda w: F.embedding(gg.tensor(idx), w), [rand(4, 3)],
          torch_fn=lambda w: TF.embedding(torch.tensor(idx), w))
    check(lambda w: F.embedding(gg.tensor(idx), w, padding_idx=2), [rand(4, 3)],
          torch_fn=lambda w: TF.embedding(torch.tensor(idx), w, padding_idx=2))


@pytest.mark.parametrize("x_shape", [(4,), (3, 4), (2, 3, 4), (0, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_matches_torch_to_second_order(x_shape, bias):
    from gpugrad.ops.linalg import Linear

    rng = np.random.default_rng(0)
    xv, wv, bv = rng.standard_normal(x_shape), rng.standard_normal((5, 4)), rng.standard_normal(5)
    ins = [gg.tensor(a, requires_grad=True) for a in (xv, wv, bv)][:3 if bias else 2]
    ins_t = [torch.tensor(a, requires_grad=True) for a in (xv, wv, bv)][:3 if bias else 2]
    y = F.linear(*ins)
    assert isinstance(y.grad_fn, Linear)
    yt = TF.linear(*ins_t)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    cot = rng.standard_normal(yt.shape)
    g1 = gg.autograd.grad((y * y * gg.tensor(cot)).sum(), ins, create_graph=True)
    t1 = torch.autograd.grad((yt * yt * torch.tensor(cot)).sum(), ins_t, create_graph=True)
    g2 = gg.autograd.grad(sum(g.sum() for g in g1), ins)
    t2 = torch.autograd.grad(sum(g.sum() for g in t1), ins_t)
    for a, b in zip(g1 + g2, t1 + t2):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10,
                                   atol=1e-10)
    x, w = (gg.tensor(a, requires_grad=True) for a in (xv, wv))
    (F.linear(x, w) * gg.tensor(cot)).sum().backward()  # the raw-array VJP
    xt, wt = (torch.tensor(a, requires_grad=True) for a in (xv, wv))
    (TF.linear(xt, wt) * torch.tensor(cot)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert w.grad.numpy().flags.c_contiguous


def test_linear_dtype_mismatch_names_both():
    with pytest.raises(TypeError, match="float32.*float64"):
        F.linear(gg.zeros(2, 4), gg.zeros(3, 4, dtype=gg.float64))


def test_linear_bad_shape_names_both():
    with pytest.raises(gg.ShapeError, match=r"\(2, 5\).*\(3, 4\)"):
        F.linear(gg.zeros(2, 5), gg.zeros(3, 4))


def test_one_hot():
    t = gg.tensor([0, 2, 1])
    assert F.one_hot(t, 4).tolist() == TF.one_hot(torch.tensor([0, 2, 1]), 4).tolist()
    assert F.one_hot(t).shape == (3, 3) and F.one_hot(t).dtype == gg.int64


def test_layer_norm_and_batch_norm_match_torch():
    check(lambda x, w, b: F.layer_norm(x, (4, 5), w, b), [rand(3, 4, 5), rand(4, 5), rand(4, 5)],
          torch_fn=lambda x, w, b: TF.layer_norm(x, (4, 5), w, b))
    check(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
          [rand(6, 3, 4), rand(3), rand(3)],
          torch_fn=lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True))


# --- losses -----------------------------------------------------------------------------------
REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses(reduction):
    for ours, theirs in [(F.mse_loss, TF.mse_loss), (F.l1_loss, TF.l1_loss),
                         (F.huber_loss, TF.huber_loss)]:
        check(lambda x, y, f=ours: f(x, y, reduction=reduction), [rand(4, 3), rand(4, 3)],
              torch_fn=lambda x, y, f=theirs: f(x, y, reduction=reduction))
    check(lambda x, y: F.huber_loss(x, y, reduction=reduction, delta=0.5),
          [rand(4, 3), rand(4, 3)],
          torch_fn=lambda x, y: TF.huber_loss(x, y, reduction=reduction, delta=0.5))


TARGETS = np.array([2, 0, 4, 1, 3, 0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(reduction, smoothing):
    t = TARGETS

    def ours(x):
        return F.cross_entropy(x, gg.tensor(t), reduction=reduction, label_smoothing=smoothing)

    def theirs(x):
        return TF.cross_entropy(x, torch.tensor(t), reduction=reduction,
                                label_smoothing=smoothing)

    check(ours, [rand(6, 5)], torch_fn=theirs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_weight_ignore_index_spatial(reduction):
    t = np.array([[1, -100, 2], [0, 2, -100]])
    w = np.array([0.5, 2.0, 1.5])

    def ours(x):
        return F.cross_entropy(x, gg.tensor(t), weight=gg.tensor(w), reduction=reduction,
                               label_smoothing=0.2)

    def theirs(x):
        return TF.cross_entropy(x, torch.tensor(t), weight=torch.tensor(w),
                                reduction=reduction, label_smoothing=0.2)

    check(ours, [rand(2, 3, 3)], torch_fn=theirs)


def test_cross_entropy_probability_targets_and_1d():
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=3)
    check(lambda x: F.cross_entropy(x, gg.tensor(p)), [rand(3, 4)],
          torch_fn=lambda x: TF.cross_entropy(x, torch.tensor(p)))
    check(lambda x: F.cross_entropy(x, gg.tensor(2)), [rand(4)],
          torch_fn=lambda x: TF.cross_entropy(x, torch.tensor(2)))


def test_cross_entropy_stable_and_gradient_is_softmax_minus_onehot():
    x = gg.tensor([[1000.0, -1000.0, 0.0]], requires_grad=True)
    loss = F.cross_entropy(x, gg.tensor([1]))
    assert np.isclose(loss.item(), 2000.0)
    loss.backward()
    assert np.allclose(x.grad.numpy(), [[1.0, -1.0, 0.0]])


def test_cross_entropy_gradcheck():
    t = gg.tensor(TARGETS[:4])
    gradcheck(lambda x: F.cross_entropy(x, t, label_smoothing=0.1), rand(4, 5))

    def grad_of(x):
        with gg.enable_grad():
            return gg.autograd.grad(F.cross_entropy(x, t), [x], create_graph=True)[0]

    gradcheck(grad_of, rand(4, 5))


@pytest.mark.usefixtures("cpu_default_device")  # the range check is CPU-only (a GPU sync)
def test_cross_entropy_bad_targets_name_them():
    x = gg.zeros(4, 3)
    with pytest.raises(gg.ShapeError, match=r"shape \(4, 1\).*int64"):
        F.cross_entropy(x, gg.zeros(4, 1, dtype=gg.int64))
    with pytest.raises(gg.ShapeError, match=r"float32"):
        F.cross_entropy(x, gg.zeros(4))
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, gg.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, gg.tensor([0, 1, 2, 0]), reduction="avg")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    t = np.array([1, -100, 0, 2])
    w = np.array([1.0, 0.5, 2.0])
    check(lambda x: F.nll_loss(x, gg.tensor(t), weight=gg.tensor(w), reduction=reduction),
          [rand(4, 3)],
          torch_fn=lambda x: TF.nll_loss(x, torch.tensor(t), weight=torch.tensor(w),
                                         reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    probs = positive(4, 3) / 2.5
    check(lambda x, y: F.binary_cross_entropy(x, y, reduction=reduction),
          [probs, rand(4, 3, low=0, high=1)],
          torch_fn=lambda x, y: TF.binary_cross_entropy(x, y, reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    check(lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=reduction),
          [rand(4, 3) * 10, rand(4, 3, low=0, high=1)],
          torch_fn=lambda x, y: TF.binary_cross_entropy_with_logits(x, y, reduction=reduction))
    pw = positive(3)
    check(lambda x, y: F.binary_cross_entropy_with_logits(
        x, y, reduction=reduction, pos_weight=gg.tensor(pw)),
        [rand(4, 3), rand(4, 3, low=0, high=1)],
        torch_fn=lambda x, y: TF.binary_cross_entropy_with_logits(
            x, y, reduction=reduction, pos_weight=torch.tensor(pw)))


def test_loss_gradchecks():
    y = rand(3, 2, low=0, high=1)
    gradcheck(lambda x: F.binary_cross_entropy(x, gg.tensor(y)), positive(3, 2) / 2.5)
    gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=gg.tensor(
        np.array([1.5, 0.5]))), rand(3, 2), y)
    gradcheck(lambda x: F.nll_loss(x, gg.tensor([0, 1, 1])), rand(3, 2))
    gradcheck(lambda x, t: F.huber_loss(x, t), rand(3, 2), rand(3, 2))


def test_bce_saturated_probabilities_clamped():
    loss = F.binary_cross_entropy(gg.tensor([0.0, 1.0]), gg.tensor([1.0, 0.0]), reduction="none")
    assert np.allclose(loss.numpy(), [100.0, 100.0])
