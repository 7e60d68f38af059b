"""Shape ops against PyTorch and float64 finite differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracle import check, gradcheck, rand

import gpugrad as gg


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else gg


def _rev(x):
    return tuple(reversed(range(x.ndim)))


# (name, fn, input shapes); fn returns a Tensor or a tuple of Tensors
SHAPE_OPS = [
    ("reshape", lambda x: x.reshape(4, 6), [(2, 3, 4)]),
    ("reshape_infer", lambda x: x.reshape(-1, 3), [(2, 3, 4)]),
    ("reshape_tuple", lambda x: x.reshape((3, 8)), [(2, 3, 4)]),
    ("reshape_0d", lambda x: x.reshape(1, 1), [()]),
    ("reshape_to_0d", lambda x: x.reshape(()), [(1, 1)]),
    ("reshape_empty", lambda x: x.reshape(3, 0), [(0, 3)]),
    ("view", lambda x: x.view(6, 4), [(2, 3, 4)]),
    ("view_infer", lambda x: x.view(-1), [(2, 3, 4)]),
    ("flatten", lambda x: x.flatten(), [(2, 3, 4)]),
    ("flatten_range", lambda x: x.flatten(1, 2), [(2, 3, 4, 1)]),
    ("flatten_0d", lambda x: x.flatten(), [()]),
    ("squeeze", lambda x: x.squeeze(), [(1, 3, 1, 2)]),
    ("squeeze_dim", lambda x: x.squeeze(2), [(1, 3, 1, 2)]),
    ("squeeze_noop", lambda x: x.squeeze(1), [(1, 3, 1, 2)]),
    ("squeeze_dims", lambda x: x.squeeze((0, 2)), [(1, 3, 1, 2)]),
    ("squeeze_0d", lambda x: x.squeeze(0), [()]),
    ("unsqueeze0", lambda x: x.unsqueeze(0), [(2, 3)]),
    ("unsqueeze_last", lambda x: x.unsqueeze(-1), [(2, 3)]),
    ("unsqueeze_mid", lambda x: x.unsqueeze(1), [(2, 3)]),
    ("unsqueeze_0d", lambda x: x.unsqueeze(0), [()]),
    ("transpose", lambda x: x.transpose(0, 2), [(2, 3, 4)]),
    ("transpose_neg", lambda x: x.transpose(-1, -2), [(2, 3, 4)]),
    ("transpose_same", lambda x: x.transpose(1, 1), [(2, 3)]),
    ("T", lambda x: x.T, [(2, 3)]),
    ("T_1d", lambda x: x.T if _lib(x) is gg else x.permute(*_rev(x)), [(3,)]),
    ("T_3d", lambda x: x.T if _lib(x) is gg else x.permute(*_rev(x)), [(2, 3, 4)]),
    ("mT", lambda x: x.mT, [(2, 3, 4)]),
    ("permute", lambda x: x.permute(2, 0, 1), [(2, 3, 4)]),
    ("permute_tuple", lambda x: x.permute((1, -1, 0)), [(2, 3, 4)]),
    ("expand", lambda x: x.expand(2, 3, 4), [(3, 1)]),
    ("expand_keep", lambda x: x.expand(-1, 4), [(3, 1)]),
    ("expand_0d", lambda x: x.expand(2, 2), [()]),
    ("expand_empty", lambda x: x.expand(0, 3), [(1, 3)]),
    ("broadcast_to", lambda x: _lib(x).broadcast_to(x, (4, 2, 3)), [(2, 1)]),
    ("cat0", lambda x, y: _lib(x).cat([x, y]), [(2, 3), (4, 3)]),
    ("cat1", lambda x, y: _lib(x).cat([x, y], 1), [(2, 3), (2, 1)]),
    ("cat_neg", lambda x, y, z: _lib(x).cat([x, y, z], -1), [(2, 1), (2, 3), (2, 2)]),
    ("cat_empty", lambda x, y: _lib(x).cat([x, y], 0), [(0, 3), (2, 3)]),
    ("cat_one", lambda x: _lib(x).cat([x], 0), [(2, 3)]),
    ("stack0", lambda x, y: _lib(x).stack([x, y]), [(2, 3), (2, 3)]),
    ("stack_last", lambda x, y: _lib(x).stack([x, y], -1), [(2, 3), (2, 3)]),
    ("stack_0d", lambda x, y, z: _lib(x).stack([x, y, z]), [(), (), ()]),
    ("split_int", lambda x: x.split(2), [(5, 3)]),
    ("split_int_dim", lambda x: x.split(2, dim=1), [(3, 4)]),
    ("split_sections", lambda x: x.split([1, 3, 1]), [(5, 2)]),
    ("split_big", lambda x: x.split(10), [(5, 2)]),
    ("split_zero_piece", lambda x: x.split([2, 0, 3]), [(5, 2)]),
    ("split_fn", lambda x: _lib(x).split(x, [1, 2], 1), [(2, 3)]),
    ("chunk", lambda x: x.chunk(3), [(7, 2)]),
    ("chunk_dim", lambda x: x.chunk(2, dim=-1), [(2, 5)]),
    ("chunk_small", lambda x: x.chunk(5), [(3,)]),
    ("chunk_exact", lambda x: x.chunk(2), [(4, 1)]),
    ("unbind", lambda x: x.unbind(1), [(2, 3)]),
    ("pad_last", lambda x: _pad(x, (1, 2)), [(2, 3)]),
    ("pad_two", lambda x: _pad(x, (1, 0, 0, 2)), [(2, 3)]),
    ("pad_value", lambda x: _pad(x, (2, 1), value=-1.5), [(3,)]),
    ("pad_3d", lambda x: _pad(x, (0, 1, 1, 1, 2, 0)), [(2, 1, 3)]),
    ("pad_empty", lambda x: _pad(x, (1, 1)), [(0, 2)]),
    ("contiguous", lambda x: x.T.contiguous(), [(2, 3)]),
    ("clone", lambda x: x.clone() * 2, [(2, 3)]),
]


def _pad(x, p, value=0.0):
    if isinstance(x, torch.Tensor):
        return F.pad(x, p, value=value)
    return gg.pad(x, p, value=value)


IDS = [s[0] for s in SHAPE_OPS]


@pytest.mark.parametrize("name,fn,shapes", SHAPE_OPS, ids=IDS)
def test_shape_op_vs_torch(name, fn, shapes):
    check(fn, [rand(*s) for s in shapes])


@pytest.mark.parametrize("name,fn,shapes", SHAPE_OPS, ids=IDS)
def test_shape_op_gradcheck(name, fn, shapes):
    gradcheck(fn, *[rand(*s) for s in shapes])


@pytest.mark.parametrize("name,fn,shapes", [s for s in SHAPE_OPS if not s[0].startswith("view")
                                            and all(len(t) >= 2 for t in s[2])],
                         ids=[s[0] for s in SHAPE_OPS if not s[0].startswith("view")
                              and all(len(t) >= 2 for t in s[2])])
def test_shape_op_noncontiguous(name, fn, shapes):
    check(fn, [rand(*s) for s in shapes], non_contiguous=True)


def _second_order(fn):
    """x ↦ ∂/∂x Σ fn(x)²: its own gradient runs the VJP of every VJP in fn."""
    def first_grad(*xs):
        out = fn(*xs)
        loss = sum((o ** 2).sum() for o in (out if isinstance(out, tuple) else (out,)))
        return _lib(xs[0]).autograd.grad(loss, list(xs), create_graph=True)
    return first_grad


@pytest.mark.parametrize("name,fn,shapes", SHAPE_OPS, ids=IDS)
def test_shape_op_double_backward(name, fn, shapes):
    check(_second_order(fn), [rand(*s) for s in shapes])


def test_ops_on_transposed_and_sliced_views():
    check(lambda x: x.T.reshape(-1), [rand(2, 3)])
    check(lambda x: x[:, ::2].flatten(), [rand(3, 5)])
    check(lambda x: x.permute(1, 0, 2)[1:].split(1, dim=2), [rand(2, 3, 2)])
    check(lambda x, y: _lib(x).cat([x.T, y[::2]]), [rand(3, 2), rand(4, 3)])
    check(lambda x: _pad(x.T, (1, 1, 1, 0)), [rand(3, 2)])
    check(lambda x: x.T.unsqueeze(1).expand(3, 4, 2), [rand(2, 3)])


def test_view_of_noncontiguous_raises():
    x = gg.tensor(rand(2, 3)).T
    with pytest.raises(RuntimeError, match="reshape"):
        x.view(6)


def test_reshape_returns_view_sharing_storage():
    x = gg.zeros(2, 3)
    y = x.reshape(3, 2)
    y.array[0, 0] = 5.0
    assert x[0, 0].item() == 5.0


def test_split_pieces_grad_with_unused_piece():
    # only some pieces are used: the others contribute zeros
    check(lambda x: x.split(2)[1] * 3, [rand(5, 2)])
    check(lambda x: x.chunk(3, dim=1)[0].sum(), [rand(2, 6)])


def test_cat_promotes_dtypes():
    out = gg.cat([gg.ones(2, dtype=gg.float32), gg.ones(2, dtype=gg.float64)])
    assert out.dtype == gg.float64
    expect = torch.cat([torch.ones(2, dtype=torch.float32), torch.ones(2, dtype=torch.float64)])
    assert str(expect.dtype).endswith(str(out.dtype).split(".")[-1])


def test_cat_mixed_dtype_grad():
    check(lambda x, y: _lib(x).cat([x, y]), [rand(2, dtype=np.float32), rand(3)], atol=1e-5)


# --- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("call,match", [
    (lambda x: x.reshape(5, 5), r"reshape.*\(5, 5\).*\(2, 3, 4\)"),
    (lambda x: x.view(7, -1), r"view.*\(7, -1\).*\(2, 3, 4\)"),
    (lambda x: x.reshape(-1, -1), r"reshape.*one dimension"),
    (lambda x: x.expand(3, 3, 4), r"broadcast_to.*\(2, 3, 4\).*\(3, 3, 4\)"),
    (lambda x: x.expand(3, 4), r"expand.*\(3, 4\).*\(2, 3, 4\)"),
    (lambda x: gg.broadcast_to(x, (2, 5, 4)), r"\(2, 3, 4\).*\(2, 5, 4\)"),
    (lambda x: gg.cat([x, gg.ones(2, 4, 4)]), r"cat.*\(2, 3, 4\).*\(2, 4, 4\)"),
    (lambda x: gg.cat([x, gg.ones(2, 3)]), r"cat.*\(2, 3, 4\).*\(2, 3\)"),
    (lambda x: gg.stack([x, gg.ones(2, 3, 5)]), r"stack.*\(2, 3, 4\).*\(2, 3, 5\)"),
    (lambda x: x.split([1, 2]), r"split.*\[1, 2\].*\(2, 3, 4\)"),
    (lambda x: x.permute(0, 1), r"permute.*\(2, 3, 4\)"),
])
def test_shape_errors_name_op_and_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call(gg.ones(2, 3, 4, requires_grad=True))


@pytest.mark.parametrize("call", [
    lambda x: x.transpose(0, 3), lambda x: x.unsqueeze(4), lambda x: x.unsqueeze(-5),
    lambda x: x.squeeze(3), lambda x: x.permute(0, 1, 3), lambda x: x.flatten(0, 3),
    lambda x: gg.cat([x, x], 3), lambda x: gg.stack([x, x], 4), lambda x: x.split(1, 3),
    lambda x: x.chunk(2, -4), lambda x: x.unbind(3),
], ids=["transpose", "unsqueeze", "unsqueeze_neg", "squeeze", "permute", "flatten", "cat",
        "stack", "split", "chunk", "unbind"])
def test_dim_out_of_range_raises_index_error(call):
    with pytest.raises(IndexError, match=r"dimension -?\d out of range"):
        call(gg.ones(2, 3, 4))


def test_pad_errors():
    with pytest.raises(ValueError, match=r"pad.*\(2, 3\)"):
        gg.pad(gg.ones(2, 3), (1, 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="pad"):
        gg.pad(gg.ones(2, 3), (1,))
