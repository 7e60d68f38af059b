"""gg.autocast on the CPU (float16): op dtypes against torch.autocast, values and gradients
against float32, the state's scoping rules, and the errors."""

import threading

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn.functional as F

# CPU autocast: CPU tensors even when GPUGRAD_DEVICE=cuda makes cuda the default device.
pytestmark = pytest.mark.usefixtures("cpu_default_device")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 8)).astype(np.float32)
W = RNG.standard_normal((3, 8)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)
IMG = RNG.standard_normal((2, 2, 6, 6)).astype(np.float32)
KER = RNG.standard_normal((3, 2, 3, 3)).astype(np.float32)
TARGET = np.array([0, 2, 1, 0])

# name -> f(lib, functional, x, w, b): the same op in gpugrad and torch
OPS = {
    "matmul": lambda lib, f, x, w, b: x @ w.T,
    "linear": lambda lib, f, x, w, b: f.linear(x, w, b),
    "conv2d": lambda lib, f, x, w, b: f.conv2d(lib.tensor(IMG), lib.tensor(KER), None, 1, 1),
    "conv1d": lambda lib, f, x, w, b: f.conv1d(lib.tensor(IMG[:, :, 0]), lib.tensor(KER[:, :, 0]),
                                               None, 1, 1),
    "mse_loss": lambda lib, f, x, w, b: f.mse_loss(f.linear(x, w), f.linear(x, w) * 0.5),
    "cross_entropy": lambda lib, f, x, w, b: f.cross_entropy(f.linear(x, w, b),
                                                             lib.tensor(TARGET)),
    "l1_loss": lambda lib, f, x, w, b: f.l1_loss(f.linear(x, w), f.linear(x, w) * 0.5),
}


def _run(name, lib, f, requires_grad=False):
    x = lib.tensor(X)
    w = lib.tensor(W, requires_grad=requires_grad)
    b = lib.tensor(B, requires_grad=requires_grad)
    return OPS[name](lib, f, x, w, b), (w, b)


@pytest.mark.parametrize("name", sorted(OPS))
def test_output_dtype_matches_torch_cpu_autocast(name):
    with gg.autocast("cpu", dtype=gg.float16):
        ours, _ = _run(name, gg, F)
    with torch.autocast("cpu", dtype=torch.float16):
        theirs, _ = _run(name, torch, torch.nn.functional)
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")


@pytest.mark.parametrize("name", sorted(OPS))
def test_values_and_master_gradients_close_to_float32(name):
    with gg.autocast(dtype=gg.float16):
        low, (w, b) = _run(name, gg, F, requires_grad=True)
    ref, (rw, rb) = _run(name, gg, F, requires_grad=True)
    np.testing.assert_allclose(low.detach().numpy().astype(np.float32), ref.detach().numpy(),
                               rtol=1e-2, atol=2e-2)
    if name.startswith("conv"):
        return  # the weights do not take part
    low.float().sum().backward()
    ref.sum().backward()
    for p, q in ((w, rw), (b, rb)):
        if q.grad is None:
            assert p.grad is None
            continue
        assert p.grad.dtype is gg.float32  # float32 master weights get float32 gradients
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=2e-2, atol=2e-2)


def test_gradients_match_torch_autocast():
    with gg.autocast(dtype=gg.float16):
        ours, (w, b) = _run("cross_entropy", gg, F, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.float16):
        theirs, (tw, tb) = _run("cross_entropy", torch, torch.nn.functional, True)
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=2e-3)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-2, atol=1e-3)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("fn", [
    lambda y: F.softmax(y, dim=-1),
    lambda y: F.log_softmax(y, dim=-1),
    lambda y: F.layer_norm(y, (3,)),
    lambda y: F.batch_norm(y, None, None, training=True),
])
def test_softmax_and_norms_run_in_float32(fn):
    """PyTorch's CUDA lists (its CPU lists keep these in low precision)."""
    with gg.autocast(dtype=gg.float16):
        y = F.linear(gg.tensor(X), gg.tensor(W))
        assert y.dtype is gg.float16
        assert fn(y).dtype is gg.float32


def test_float64_and_integer_tensors_are_left_alone():
    with gg.autocast(dtype=gg.float16):
        assert (gg.tensor(X.astype(np.float64)) @ gg.tensor(W.T.astype(np.float64))).dtype \
            is gg.float64
        assert (gg.ones(2, 2, dtype=gg.int64) @ gg.ones(2, 2, dtype=gg.int64)).dtype is gg.int64


def test_enabled_false_nesting_exit_on_error_and_decorator():
    x, w = gg.tensor(X), gg.tensor(W)
    with gg.amp.autocast(dtype=gg.float16):
        assert gg.amp.is_autocast_enabled("cpu")
        with gg.autocast(enabled=False):
            assert (x @ w.T).dtype is gg.float32
        assert (x @ w.T).dtype is gg.float16
    with pytest.raises(ZeroDivisionError), gg.autocast(dtype=gg.float16):
        raise ZeroDivisionError
    assert not gg.amp.is_autocast_enabled() and (x @ w.T).dtype is gg.float32

    @gg.autocast(dtype=gg.float16)
    def product(a, b):
        return a @ b

    assert product(x, w.T).dtype is gg.float16
    assert gg.amp.get_autocast_dtype("cpu") is None


def test_state_is_thread_local():
    seen = []
    with gg.autocast(dtype=gg.float16):
        t = threading.Thread(target=lambda: seen.append(gg.amp.is_autocast_enabled()))
        t.start()
        t.join()
    assert seen == [False]


def test_autocast_is_exported_once():
    assert gg.autocast is gg.amp.autocast


def test_bfloat16_on_cpu_runs_through_ml_dtypes():
    # (without ml_dtypes it raises naming the package: tests/amp/test_bf16_cpu.py)
    pytest.importorskip("ml_dtypes")
    a = gg.randn(2, 3)
    with gg.autocast("cpu", dtype=gg.bfloat16):
        assert (a @ a.mT).dtype is gg.bfloat16


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(device_type="cpu", dtype=gg.float64), TypeError, "float16 or gg.bfloat16"),
    (dict(device_type="tpu"), ValueError, "'cpu' or 'cuda'"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        gg.autocast(**kwargs)


@pytest.mark.skipif(gg.cuda.is_available(), reason="checks the no-GPU behaviour")
def test_cuda_autocast_without_cuda_warns_and_does_nothing():
    with pytest.warns(UserWarning, match="CUDA is not available"):
        ctx = gg.autocast("cuda", dtype=gg.bfloat16)
    with ctx:
        assert (gg.tensor(X) @ gg.tensor(W).T).dtype is gg.float32


@pytest.mark.parametrize("reduce", ["sum", "mean", "var", "norm", "logsumexp"])
def test_reductions_run_in_float32_under_autocast(reduce):
    x = gg.tensor(X, requires_grad=True)
    w = gg.tensor(W, requires_grad=True)
    fns = {"sum": lambda t: t.sum(), "mean": lambda t: t.mean(), "var": lambda t: gg.var(t),
           "norm": lambda t: gg.norm(t), "logsumexp": lambda t: gg.logsumexp(t, 1).sum()}
    with gg.autocast(dtype=gg.float16):
        h = x @ w.T
        assert h.dtype == gg.float16
        out = fns[reduce](h)
    assert out.dtype == gg.float32  # the float16 product is reduced in float32
    out.backward()
    assert x.grad.dtype == gg.float32 and w.grad.dtype == gg.float32
    ref = fns[reduce](gg.tensor(X.astype(np.float16).astype(np.float32)
                                @ W.astype(np.float16).astype(np.float32).T))
    np.testing.assert_allclose(out.item(), ref.item(), rtol=2e-3)
