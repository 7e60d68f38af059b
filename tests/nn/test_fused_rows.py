"""Softmax, log_softmax, layer norm and integer-target cross-entropy through the backend's
fused row methods (the path the CUDA backend takes, one kernel each way), exercised on the
CPU by switching the NumPy backend onto it: values, gradients and second derivatives
against PyTorch, and the composite graph under create_graph=True."""

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.backend import cpu_backend
from gpugrad.ops.loss import IndexCrossEntropy
from gpugrad.ops.normalization import LayerNormRows

# These check the CPU backend's fused paths: CPU tensors whatever GPUGRAD_DEVICE says.
pytestmark = pytest.mark.usefixtures("cpu_default_device")


@pytest.fixture(autouse=True)
def fused_rows(monkeypatch):
    monkeypatch.setattr(type(cpu_backend), "fused_rows", True)


def _pair(a):
    return gg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _hvp(out_g, out_t, ins_g, ins_t, cot):
    """First and second derivatives (a Hessian-vector product) of both frameworks (a
    first derivative that is constant, such as a bias's, drops out of the second)."""
    g1 = gg.autograd.grad(out_g, ins_g, create_graph=True)
    t1 = torch.autograd.grad(out_t, ins_t, create_graph=True)
    g2 = gg.autograd.grad(sum((a * gg.tensor(cot[k])).sum() for k, a in enumerate(g1)
                              if a.requires_grad), ins_g, allow_unused=True)
    t2 = torch.autograd.grad(sum((a * torch.tensor(cot[k])).sum() for k, a in enumerate(t1)
                                 if a.requires_grad), ins_t, allow_unused=True)
    return g1, t1, g2, t2


def _close(a, b, tol=1e-10):
    if a is None or b is None:  # unused: the other side must be absent or zero
        assert a is None or not a.detach().numpy().any()
        assert b is None or not b.detach().numpy().any()
        return
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_family(name, dim, monkeypatch):
    calls = []
    for method in (name, f"{name}_backward"):
        real = getattr(type(cpu_backend), method)
        monkeypatch.setattr(type(cpu_backend), method,
                            lambda self, *a, _m=method, _f=real: calls.append(_m) or _f(self, *a))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 5)) * 3
    x, xt = _pair(a)
    y, yt = getattr(F, name)(x, dim), getattr(torch.nn.functional, name)(xt, dim)
    _close(y, yt)
    cot = rng.standard_normal((6, 5))
    (y * gg.tensor(cot)).sum().backward()
    (yt * torch.tensor(cot)).sum().backward()
    _close(x.grad, xt.grad)
    # the fused methods run over the last axis only; create_graph below records Tensor ops
    assert calls == ([name, f"{name}_backward"] if dim == -1 else [])
    x2, xt2 = _pair(a)
    g1, t1, g2, t2 = _hvp((getattr(F, name)(x2, dim) ** 2).sum(),
                          (getattr(torch.nn.functional, name)(xt2, dim) ** 2).sum(),
                          (x2,), (xt2,), [cot])
    _close(g1[0], t1[0])
    _close(g2[0], t2[0])


@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
def test_layer_norm(affine):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4, 7))
    x, xt = _pair(a)
    w, wt = _pair(rng.standard_normal(7)) if affine in ("both", "weight") else (None, None)
    b, bt = _pair(rng.standard_normal(7)) if affine in ("both", "bias") else (None, None)
    y = F.layer_norm(x, (7,), w, b, 1e-5)
    assert isinstance(y.grad_fn, LayerNormRows)
    yt = torch.nn.functional.layer_norm(xt, (7,), wt, bt, 1e-5)
    _close(y, yt)
    ins = [t for t in (x, w, b) if t is not None]
    ins_t = [t for t in (xt, wt, bt) if t is not None]
    cot = rng.standard_normal(a.shape)
    (y * gg.tensor(cot)).sum().backward()  # the fused backward (no graph recorded)
    (yt * torch.tensor(cot)).sum().backward()
    for p, q in zip(ins, ins_t):
        _close(p.grad, q.grad)
    if affine == "bias":
        return  # torch's layer_norm double backward fails with a bias but no weight
    cots = [rng.standard_normal(t.shape) for t in ins]
    y = F.layer_norm(x, (7,), w, b, 1e-5)
    yt = torch.nn.functional.layer_norm(xt, (7,), wt, bt, 1e-5)
    g1, t1, g2, t2 = _hvp((y ** 3).sum(), (yt ** 3).sum(), ins, ins_t, cots)
    for p, q in zip(g1 + g2, t1 + t2):
        _close(p, q, 1e-9)


def test_layer_norm_over_several_axes_keeps_the_composite():
    x = gg.randn(2, 3, 4, requires_grad=True)
    assert not isinstance(F.layer_norm(x, (3, 4)).grad_fn, LayerNormRows)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_integer_targets(reduction):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((9, 5)) * 2
    t = np.array([0, 4, -100, 2, 2, 1, -100, 3, 0])
    x, xt = _pair(a)
    loss = F.cross_entropy(x, gg.tensor(t), reduction=reduction)
    assert isinstance(loss.grad_fn, IndexCrossEntropy)
    loss_t = torch.nn.functional.cross_entropy(xt, torch.tensor(t), reduction=reduction)
    _close(loss, loss_t)
    cot = rng.standard_normal(loss_t.shape)
    (loss * gg.tensor(cot)).sum().backward()
    (loss_t * torch.tensor(cot)).sum().backward()
    _close(x.grad, xt.grad)
    x2, xt2 = _pair(a)
    g1, t1, g2, t2 = _hvp(
        F.cross_entropy(x2, gg.tensor(t), reduction=reduction).sum(),
        torch.nn.functional.cross_entropy(xt2, torch.tensor(t), reduction=reduction).sum(),
        (x2,), (xt2,), [rng.standard_normal(a.shape)])
    _close(g1[0], t1[0])
    _close(g2[0], t2[0])


def test_cross_entropy_weights_and_smoothing_keep_the_composite():
    x, t = gg.randn(4, 3, requires_grad=True), gg.tensor([0, 1, 2, 1])
    assert not isinstance(F.cross_entropy(x, t, label_smoothing=0.1).grad_fn,
                          IndexCrossEntropy)
    assert not isinstance(F.cross_entropy(x, t, weight=gg.ones(3)).grad_fn,
                          IndexCrossEntropy)


@pytest.mark.parametrize("name,kw", [("gelu", {}), ("gelu", {"approximate": "tanh"}),
                                     ("leaky_relu", {"negative_slope": 0.1})])
def test_fused_activation_kernels(name, kw, monkeypatch):
    # one generated pointwise pass forward and one backward (the table's rows)
    calls = []
    real = type(cpu_backend).pointwise
    monkeypatch.setattr(type(cpu_backend), "pointwise",
                        lambda self, prog, *a, **k: calls.append(prog) or real(self, prog, *a,
                                                                                 **k))
    rng = np.random.default_rng(4)
    a = rng.standard_normal((7, 6)) * 3
    x, xt = _pair(a)
    ours = getattr(F, name)(x, **kw)
    theirs = getattr(torch.nn.functional, name)(xt, **kw)
    _close(ours, theirs)
    cot = rng.standard_normal(a.shape)
    ours.backward(gg.tensor(cot))
    (theirs * torch.tensor(cot)).sum().backward()
    _close(x.grad, xt.grad)
    assert len(calls) == 2
    x2, xt2 = _pair(a)
    g1, t1, g2, t2 = _hvp((getattr(F, name)(x2, **kw) ** 2).sum(),
                          (getattr(torch.nn.functional, name)(xt2, **kw) ** 2).sum(),
                          (x2,), (xt2,), [cot])
    _close(g1[0], t1[0])
    _close(g2[0], t2[0])
