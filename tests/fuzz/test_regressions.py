"""Minimal examples of the failures the property tests found, kept as plain tests.

Each names the fix."""

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn.functional as F


@pytest.mark.parametrize("log", [False, True])
def test_softmax_over_empty_dim(log):
    # ops/activation.py Softmax/LogSoftmax.forward: max() of a size-0 axis raised NumPy's
    # "zero-size array to reduction operation maximum which has no identity"
    x = gg.zeros(0, requires_grad=True)
    y = (F.log_softmax if log else F.softmax)(x, dim=0)
    assert y.shape == (0,)
    y.sum().backward()
    assert x.grad.shape == (0,)


def test_chunk_of_empty_dim():
    # ops/shape.py chunk: torch gives `chunks` empty pieces, gpugrad gave one
    pieces = gg.zeros(0, 3).chunk(2)
    assert [tuple(p.shape) for p in pieces] == [(0, 3), (0, 3)]
    assert len(gg.zeros(0).chunk(3)) == len(torch.zeros(0).chunk(3)) == 3


def test_cat_skipped_empty_tensor_gets_a_gradient():
    # ops/shape.py cat: 1-d empty tensors are skipped (as in torch) but then got no gradient
    a = gg.zeros(0, requires_grad=True)
    b = gg.ones(2, 2, requires_grad=True)
    gg.cat([b, a]).sum().backward()
    assert a.grad is not None and a.grad.shape == (0,)
    np.testing.assert_array_equal(b.grad.numpy(), np.ones((2, 2)))
    c, d = gg.zeros(0, requires_grad=True), gg.zeros(0, requires_grad=True)
    gx = gg.autograd.grad(gg.cat([c, d]).sum(), [c, d])
    assert [tuple(g.shape) for g in gx] == [(0,), (0,)]


def test_index_add_on_0d_input():
    # ops/index.py index_add: torch treats a 0-d input as shape (1,); gpugrad raised ShapeError
    x = gg.tensor(1.0, requires_grad=True)
    s = gg.tensor(2.0, requires_grad=True)
    y = x.index_add(0, gg.tensor([0]), s, alpha=3)
    assert y.shape == () and y.item() == 7.0
    y.backward()
    assert x.grad.item() == 1.0 and s.grad.item() == 3.0


@pytest.mark.parametrize("op", ["gather", "index_select", "index_add", "scatter_add",
                                "embedding"])
@pytest.mark.parametrize("bad", [-1, 3])
def test_index_ops_reject_out_of_range_indices(op, bad):
    # ops/index.py _check_bounds: NumPy wrapped negative indices silently (torch raises)
    x = gg.zeros(3, 2, requires_grad=True)
    calls = {
        "gather": lambda: x.gather(0, gg.tensor([[bad, 0]])),
        "index_select": lambda: x.index_select(0, gg.tensor([bad])),
        "index_add": lambda: x.index_add(0, gg.tensor([bad]), gg.ones(1, 2)),
        "scatter_add": lambda: gg.scatter_add(x, 0, gg.tensor([[bad, 0]]), gg.ones(1, 2)),
        "embedding": lambda: F.embedding(gg.tensor([bad]), x),
    }
    # embedding names itself (issue 16), not the index_select it is built on
    what = "out of range" if op == "embedding" else "out of bounds"
    with pytest.raises(IndexError, match=f"^{op}: index {bad} is {what}"):
        calls[op]()
    assert not x.detach().numpy().any()


def test_sign_and_abs_grad_at_nan():
    # ops/elementwise.py sign: torch.sign(nan) is 0, so abs's gradient at NaN is 0, not NaN
    n = float("nan")
    assert gg.tensor([n, -2.0, 0.0]).sign().tolist() == [0.0, -1.0, 0.0]
    x = gg.tensor([n, -2.0], requires_grad=True)
    x.abs().sum().backward()
    assert x.grad.tolist() == [0.0, -1.0]


def test_amax_grad_with_nan_maximum_is_nan():
    # ops/reduce.py Extremum.backward: a NaN maximum matches no element; torch's ȳ/count·mask
    # gives NaN gradients, gpugrad's where(mask, share, 0) gave silent zeros
    x = gg.tensor([[float("nan"), 1.0], [2.0, 3.0]], requires_grad=True)
    x.amax(-1).sum().backward()
    t = torch.tensor([[float("nan"), 1.0], [2.0, 3.0]], requires_grad=True)
    t.amax(-1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("key", [(0, slice(None), [0, 1]), (None, [0, 1], None, -1),
                                 (slice(None), 0, [1, 0])])
def test_getitem_int_with_separated_index_array(key):
    # ops/index.py getitem/_split_int_key: NumPy treats the int as an advanced index and moves
    # the indexed dims to the front; torch applies ints first
    a = np.arange(2 * 2 * 3, dtype=np.float64).reshape(2, 2, 3)
    tkey = tuple(torch.tensor(k) if isinstance(k, list) else k for k in key)
    x = gg.from_numpy(a.copy()).requires_grad_(True)
    t = torch.from_numpy(a.copy()).requires_grad_(True)
    y, ty = x[key], t[tkey]
    assert tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    w = np.random.default_rng(0).standard_normal(tuple(ty.shape))
    (y * gg.from_numpy(w)).sum().backward()
    (ty * torch.from_numpy(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_relu_grad_at_nan_passes_through():
    x = gg.tensor([float("nan"), 1.0, -1.0], requires_grad=True)
    x.relu().sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0]
