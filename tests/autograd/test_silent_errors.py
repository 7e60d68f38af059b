"""Misuse that used to give silently wrong results now raises (or is exact) as in PyTorch:
concurrent backward into one leaf, hooks changing a gradient's type, custom Functions
returning too many gradients, `.grad` assignment, one_hot and binary cross-entropy ranges,
sizes given as floats."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.backend import cpu_backend


# --- concurrent backward ------------------------------------------------------------------
def _backward_in_threads(x, n_threads: int, reps: int) -> None:
    """`reps` backward passes of Σ x into x from each of `n_threads` threads started
    together."""
    start = threading.Barrier(n_threads)

    def work():
        start.wait()
        for _ in range(reps):
            (x * 1.0).sum().backward()

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_backward_into_one_leaf_loses_nothing():
    x = gg.zeros(100_000, requires_grad=True)
    n_threads, reps = 24, 4
    _backward_in_threads(x, n_threads, reps)
    assert np.all(x.grad.numpy() == n_threads * reps)


class _SlowInPlaceAdd:
    """NumPy, except that `add(a, b, out=a)` waits between reading and writing: a lost
    update between concurrent accumulations becomes certain instead of rare."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def add(a, b, out=None):
        if out is None:
            return np.add(a, b)
        total = a + b
        time.sleep(0.002)
        out[...] = total
        return out


def test_concurrent_accumulation_is_atomic_per_leaf(monkeypatch):
    x = gg.zeros(1000, requires_grad=True)
    x.grad = gg.zeros(1000)
    monkeypatch.setattr(cpu_backend, "xp", _SlowInPlaceAdd())
    n_threads = 8
    _backward_in_threads(x, n_threads, 3)
    monkeypatch.undo()
    assert np.all(x.grad.numpy() == n_threads * 3)


def test_concurrent_backward_shared_parameters():
    w = gg.ones(64, 64, requires_grad=True)
    inputs = [gg.randn(8, 64) for _ in range(16)]
    start = threading.Barrier(len(inputs))

    def work(a):
        start.wait()
        for _ in range(3):
            (a @ w).sum().backward()

    threads = [threading.Thread(target=work, args=(a,)) for a in inputs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = 3 * sum(a.numpy().sum(0) for a in inputs)[:, None] * np.ones((1, 64))
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-4)


# --- hooks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("leaf", [True, False], ids=["leaf", "non_leaf"])
def test_hook_changing_dtype_raises(leaf):
    x = gg.ones(3, requires_grad=True)
    y = x if leaf else x * 2

    def to_double(g):
        return g.double()

    y.register_hook(to_double)
    with pytest.raises(RuntimeError, match=r"hook 'to_double' has changed the type of value "
                                           r"\(was gpugrad.float32 got gpugrad.float64\)"):
        (y * 2).sum().backward()
    assert x.grad is None


@pytest.mark.parametrize("leaf", [True, False], ids=["leaf", "non_leaf"])
def test_hook_changing_shape_raises(leaf):
    x = gg.ones(3, requires_grad=True)
    y = x if leaf else x * 2
    y.register_hook(lambda g: g[:2])
    with pytest.raises(RuntimeError, match=r"has changed the size of value \(was \(3,\) got "
                                           r"\(2,\)\)"):
        (y * 2).sum().backward()


def test_hook_returning_non_tensor_raises():
    x = gg.ones(3, requires_grad=True)
    y = x * 2

    def three(g):
        return 3

    y.register_hook(three)
    with pytest.raises(TypeError, match="hook 'three' returned int"):
        y.sum().backward()


def test_hook_replacing_gradient_same_type_still_works():
    x = gg.ones(3, requires_grad=True)
    x.register_hook(lambda g: g * 10)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [20.0, 20.0, 20.0] and x.grad.dtype == gg.float32


# --- custom Function gradient count -----------------------------------------------------------
def _mul_function(base, name: str, grads):
    """A Function subclass `name`: forward a·b, backward returning `grads(g)`."""
    def forward(ctx, a, b):
        return a * b

    def backward(ctx, g):
        return grads(g)

    return type(name, (base,), {"forward": staticmethod(forward),
                                "backward": staticmethod(backward)})


def _functions(lib):
    base = lib.autograd.Function
    return (_mul_function(base, "TooMany", lambda g: (g, g, g)),
            _mul_function(base, "ExtraNone", lambda g: (g, g, None)),
            _mul_function(base, "TooFew", lambda g: (g,)))


def test_function_gradient_count_as_torch():
    for lib in (gg, torch):
        too_many, extra_none, too_few = _functions(lib)
        a = lib.ones(2, requires_grad=True)
        b = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match=r"returned an incorrect number of gradients "
                                               r"\(expected 2, got 3\)"):
            too_many.apply(a, b).sum().backward()
        with pytest.raises(RuntimeError, match=r"\(expected 2, got 1\)"):
            too_few.apply(a, b).sum().backward()
        extra_none.apply(a, b).sum().backward()  # trailing Nones are allowed
        assert a.grad.tolist() == [1.0, 1.0] and b.grad.tolist() == [1.0, 1.0]


def test_function_returning_other_dtype_is_cast_as_torch():
    class Double(gg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g.double()

    a = gg.ones(2, requires_grad=True)
    Double.apply(a).sum().backward()
    assert a.grad.dtype == gg.float32


# --- .grad assignment -------------------------------------------------------------------------
def test_grad_assignment_checked():
    a = gg.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient of size \[3, 2\] to a tensor of size "
                                           r"\[2, 3\]"):
        a.grad = gg.ones(3, 2)
    with pytest.raises(RuntimeError, match="dtype gpugrad.float64 to a tensor with dtype "
                                           "gpugrad.float32"):
        a.grad = gg.ones(2, 3, dtype=gg.float64)
    with pytest.raises(TypeError, match="Tensor or None but got grad of type int"):
        a.grad = 3
    with pytest.raises(RuntimeError, match="its own grad"):
        a.grad = a
    assert a.grad is None  # nothing assigned by the failed attempts
    a.grad = gg.full((2, 3), 2.0)
    a.grad = None
    assert a.grad is None


@pytest.mark.gpu
def test_grad_assignment_other_device_raises():
    if not gg.cuda.is_available():
        pytest.skip("no GPU")
    # devices named: the default device is cuda wherever a GPU answers
    a = gg.ones(2, device="cpu", requires_grad=True)
    with pytest.raises(RuntimeError, match="same device"):
        a.grad = gg.ones(2, device="cuda")
    assert a.grad is None
    b = gg.ones(2, device="cuda", requires_grad=True)
    with pytest.raises(RuntimeError, match="same device"):
        b.grad = gg.ones(2, device="cpu")
    assert b.grad is None


# --- one_hot, binary cross-entropy, float sizes -----------------------------------------------
def test_one_hot_out_of_range_raises_as_torch(cpu_default_device):  # a CPU-only check
    for bad, n, msg in [([0, 3], 3, "smaller than num_classes"),
                        ([0, -1], 3, "non-negative"), ([0, -1], -1, "non-negative")]:
        with pytest.raises(RuntimeError, match=msg):
            torch.nn.functional.one_hot(torch.tensor(bad), n)
        with pytest.raises(RuntimeError, match=msg):
            F.one_hot(gg.tensor(bad), n)
    assert F.one_hot(gg.tensor([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]


@pytest.mark.parametrize("bad", [1.5, -0.5, float("nan")])
def test_binary_cross_entropy_outside_unit_interval_raises(bad):
    x = np.array([0.3, bad], dtype=np.float32)
    y = np.array([1.0, 0.0], dtype=np.float32)
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        torch.nn.functional.binary_cross_entropy(torch.from_numpy(x), torch.from_numpy(y))
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(gg.from_numpy(x), gg.from_numpy(y))


def test_binary_cross_entropy_at_the_bounds_is_accepted():
    x = gg.tensor([0.0, 1.0, 0.5])
    y = gg.tensor([0.0, 1.0, 1.0])
    assert np.isfinite(F.binary_cross_entropy(x, y).item())


@pytest.mark.parametrize("make", [
    lambda: gg.ones(2.0, 3), lambda: gg.zeros((2.0,)), lambda: gg.empty([2, 3.5]),
    lambda: gg.randn(2, 3.0), lambda: gg.full((2.0, 1), 1.0), lambda: nn.Linear(2.5, 3),
    lambda: gg.ones(6).reshape(2.0, 3), lambda: gg.ones(6).view((2.0, 3)),
    lambda: gg.ones(1, 3).expand(2.0, 3), lambda: gg.ones(2, 3).permute(1.0, 0),
], ids=["ones", "zeros", "empty", "randn", "full", "linear", "reshape", "view", "expand",
        "permute"])
def test_float_sizes_raise_type_error(make):
    with pytest.raises(TypeError, match="size must be a tuple of ints, but got float"):
        make()


def test_int_like_sizes_accepted():
    assert gg.ones(np.int64(2), gg.tensor(3)).shape == (2, 3)
    assert gg.ones(6).reshape(np.int32(2), 3).shape == (2, 3)
