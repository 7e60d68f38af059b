"""Linear and N-d @ 2-d matmul as one GEMM over the flattened leading dims: same values
and gradients as PyTorch (3-d/4-d, empty and non-contiguous inputs, both VJP paths)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import check, gradcheck, rand

import gpugrad as gg
import gpugrad.nn.functional as F

X_SHAPES = [(2, 3, 4), (2, 3, 5, 4), (0, 3, 4), (2, 0, 4), (1, 1, 4)]


@pytest.mark.parametrize("x_shape", X_SHAPES, ids=str)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("non_contiguous", [False, True])
def test_linear_nd_vs_torch(x_shape, bias, non_contiguous):
    ins = [rand(*x_shape), rand(6, 4)] + ([rand(6)] if bias else [])
    check(lambda *a: F.linear(*a), ins, torch_fn=TF.linear, atol=1e-12, rtol=1e-12,
          non_contiguous=non_contiguous)


@pytest.mark.parametrize("x_shape", X_SHAPES, ids=str)
@pytest.mark.parametrize("transposed_w", [False, True])
@pytest.mark.parametrize("non_contiguous", [False, True])
def test_matmul_nd_by_2d_vs_torch(x_shape, transposed_w, non_contiguous):
    if transposed_w:
        check(lambda x, w: x @ w.T, [rand(*x_shape), rand(6, 4)], atol=1e-12, rtol=1e-12,
              non_contiguous=non_contiguous)
    else:
        check(lambda x, w: x @ w, [rand(*x_shape), rand(4, 6)], atol=1e-12, rtol=1e-12,
              non_contiguous=non_contiguous)


def test_linear_zero_in_features():
    check(lambda x, w, b: F.linear(x, w, b), [rand(2, 3, 0), rand(5, 0), rand(5)],
          torch_fn=TF.linear)
    check(lambda x, w: x @ w, [rand(2, 3, 0), rand(0, 5)])


def test_linear_strided_slice_input():
    """A sliced (gapped) input needs a copy to flatten; the result must not alias it."""
    base = rand(2, 5, 8)
    check(lambda x, w, b: F.linear(x[:, ::2, 1::2], w, b), [base, rand(3, 4), rand(3)],
          torch_fn=lambda x, w, b: TF.linear(x[:, ::2, 1::2], w, b), atol=1e-12, rtol=1e-12)


def test_linear_nd_float32():
    check(lambda x, w, b: F.linear(x, w, b),
          [rand(4, 7, 16, dtype=np.float32), rand(8, 16, dtype=np.float32),
           rand(8, dtype=np.float32)], torch_fn=TF.linear, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("x_shape", [(2, 3, 4), (2, 1, 3, 4)], ids=str)
def test_linear_nd_gradcheck(x_shape):
    gradcheck(lambda x, w, b: F.linear(x, w, b), rand(*x_shape), rand(5, 4), rand(5))
    gradcheck(lambda x, w: x @ w, rand(*x_shape), rand(4, 5))
    gradcheck(lambda x, w: x @ w.T, rand(*x_shape), rand(5, 4))


@pytest.mark.parametrize("op", ["linear", "matmul", "matmul_t"])
def test_nd_second_order_vs_torch(op):
    """The create_graph path (VJP recorded as ops) flattens the rows as a reshape op."""
    fns = {"linear": (lambda x, w: F.linear(x, w), lambda x, w: TF.linear(x, w)),
           "matmul": (lambda x, w: x @ w.T.contiguous(), lambda x, w: x @ w.T.contiguous()),
           "matmul_t": (lambda x, w: x @ w.T, lambda x, w: x @ w.T)}
    fn, tfn = fns[op]
    rng = np.random.default_rng(1)
    xv, wv = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4))
    cot = rng.standard_normal((2, 3, 5))
    ins = [gg.tensor(a, requires_grad=True) for a in (xv, wv)]
    ins_t = [torch.tensor(a, requires_grad=True) for a in (xv, wv)]
    y, yt = fn(*ins), tfn(*ins_t)
    g1 = gg.autograd.grad((y * y * gg.tensor(cot)).sum(), ins, create_graph=True)
    t1 = torch.autograd.grad((yt * yt * torch.tensor(cot)).sum(), ins_t, create_graph=True)
    g2 = gg.autograd.grad(sum((g * g).sum() for g in g1), ins)
    t2 = torch.autograd.grad(sum((g * g).sum() for g in t1), ins_t)
    for a, b in zip(g1 + g2, t1 + t2):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10,
                                   atol=1e-10)


@pytest.mark.parametrize("op", ["linear", "matmul"])
def test_nd_products_are_2d_gemms(monkeypatch, op, cpu_default_device):  # spies on NumPy
    """Forward and backward hand BLAS 2-d operands only (one GEMM over the rows), not
    NumPy's batched loop over the leading dims."""
    seen = []
    real = np.matmul

    def spy(a, b, *args, **kw):
        seen.append((np.ndim(a), np.ndim(b)))
        return real(a, b, *args, **kw)

    x = gg.tensor(rand(3, 5, 4), requires_grad=True)
    w = gg.tensor(rand(6, 4), requires_grad=True)
    monkeypatch.setattr(np, "matmul", spy)
    y = F.linear(x, w) if op == "linear" else x @ w.T
    y.sum().backward()
    monkeypatch.undo()
    assert len(seen) == 3, seen  # y, x̄, W̄
    assert all(nd == (2, 2) for nd in seen), seen
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    wt = torch.tensor(w.detach().numpy(), requires_grad=True)
    (xt @ wt.T).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-12, atol=1e-12)
