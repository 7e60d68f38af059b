"""Indexing, __setitem__, gather/scatter and segment ops against PyTorch and float64
finite differences."""

import re

import numpy as np
import pytest
import torch
from oracle import check, gradcheck, rand

import gpugrad as gg


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else gg


IDX = np.array([2, 0, 2, 2], dtype=np.int64)  # repeated indices must accumulate
MASK = np.array([True, False, True])

# (name, fn(x), input shape); keys built from constants are shared by both libraries
GETITEM = [
    ("int", lambda x: x[1], (3, 4)),
    ("neg_int", lambda x: x[-1, -2], (3, 4)),
    ("slice", lambda x: x[1:], (3, 4)),
    ("slice_step", lambda x: x[::2, 1::2], (3, 4)),
    ("slice_neg", lambda x: x[-2:, :-1], (3, 4)),
    ("slice_empty", lambda x: x[2:1], (3, 4)),
    ("none", lambda x: x[None, :, None], (3, 4)),
    ("ellipsis", lambda x: x[..., 1], (2, 3, 4)),
    ("ellipsis_mid", lambda x: x[0, ..., 1:3], (2, 3, 4)),
    ("ellipsis_0d", lambda x: x[...], ()),
    ("none_0d", lambda x: x[None], ()),
    ("mixed", lambda x: x[1, None, 1, ...], (2, 3, 4)),
    ("list", lambda x: x[[0, 2, 2]], (3, 4)),
    ("list_2d", lambda x: x[[0, 1], [3, 3]], (3, 4)),
    ("bool_mask_rows", lambda x: x[MASK.tolist()], (3, 4)),
    ("int_array_dim1", lambda x: x[:, [1, 1, 0]], (3, 4)),
    ("int_with_slice", lambda x: x[1:, [0, 0]], (3, 4)),
    ("size1", lambda x: x[0, :, 0], (1, 3, 1)),
    ("empty_list", lambda x: x[[]], (3, 4)),
]


@pytest.mark.parametrize("name,fn,shape", GETITEM, ids=[g[0] for g in GETITEM])
def test_getitem_vs_torch(name, fn, shape):
    check(fn, [rand(*shape)])
    check(lambda x: fn(x.transpose(0, -1).transpose(0, -1)[...]), [rand(*shape)])


@pytest.mark.parametrize("name,fn,shape", GETITEM, ids=[g[0] for g in GETITEM])
def test_getitem_gradcheck(name, fn, shape):
    gradcheck(fn, rand(*shape))


def test_getitem_noncontiguous():
    check(lambda x: x[1:, [0, 2, 0]], [rand(3, 4)], non_contiguous=True)
    check(lambda x: x.T[[1, 1]], [rand(3, 4)])
    check(lambda x: x[:, ::2][..., 1], [rand(3, 4)])


def test_getitem_tensor_indices_accumulate():
    # the index tensor travels as an int64 input of both libraries
    check(lambda x, i: x[i], [rand(3, 2), IDX])
    check(lambda x, i: x[i], [rand(3, 2), np.array([[0, 1], [2, 2]])])
    check(lambda x, i: x[:, i], [rand(2, 3), IDX])
    check(lambda x, i, j: x[i, j], [rand(3, 4), IDX, np.array([1, 1, 3, 1])])
    gradcheck(lambda x: x[gg.tensor(IDX)], rand(3, 2))


def test_getitem_bool_mask_tensor():
    m = rand(3, 4) > 0
    m[0, 0] = True
    check(lambda x, k: x[k], [rand(3, 4), m])
    check(lambda x, k: x[k], [rand(3, 4), MASK])
    check(lambda x, k: x[k], [rand(3, 4), np.zeros((3, 4), dtype=bool)])
    gradcheck(lambda x: x[gg.tensor(m)], rand(3, 4))


@pytest.mark.parametrize("name,fn,shape", GETITEM, ids=[g[0] for g in GETITEM])
def test_getitem_double_backward(name, fn, shape):
    def first_grad(x):
        return _lib(x).autograd.grad((fn(x) ** 2).sum(), [x], create_graph=True)[0]

    check(first_grad, [rand(*shape)])


@pytest.mark.parametrize("key,shape", [
    (5, (3, 4)), (-4, (3, 4)), ((0, 4), (3, 4)), ([0, 3], (3,)),
], ids=["int", "neg", "second", "list"])
def test_getitem_out_of_range_raises_index_error(key, shape):
    with pytest.raises(IndexError, match=re.escape(str(shape))):
        gg.ones(*shape)[key]


def test_getitem_tensor_index_out_of_range():
    with pytest.raises(IndexError, match=r"\(3, 4\)"):
        gg.ones(3, 4)[gg.tensor([0, 7])]


def test_getitem_float_index_raises():
    with pytest.raises(IndexError, match="float"):
        gg.ones(3)[gg.tensor([0.0])]


# --- __setitem__ ---------------------------------------------------------------------------
SETITEM = [
    ("int", lambda y, v: y.__setitem__(1, v), (4,)),
    ("slice", lambda y, v: y.__setitem__((slice(None), slice(1, 3)), v), (3, 2)),
    ("broadcast", lambda y, v: y.__setitem__((slice(None), 0), v), (1,)),
    ("scalar_v", lambda y, v: y.__setitem__((0, 0), v), ()),
    ("list", lambda y, v: y.__setitem__([0, 2], v), (2, 4)),
    ("ellipsis", lambda y, v: y.__setitem__((Ellipsis, -1), v), (3,)),
    ("mask", lambda y, v: y.__setitem__(MASK.tolist(), v), (4,)),
]


@pytest.mark.parametrize("name,assign,vshape", SETITEM, ids=[s[0] for s in SETITEM])
def test_setitem_vs_torch(name, assign, vshape):
    def fn(x, v):
        y = x * 1.0
        assign(y, v * 2)
        return y * y

    check(fn, [rand(3, 4), rand(*vshape)])
    gradcheck(fn, rand(3, 4), rand(*vshape))


def test_setitem_python_number_and_noncontiguous():
    def fn(x):
        y = x.T * 1.0
        y[1:, 0] = 0.5
        return y

    check(fn, [rand(3, 4)])


def test_setitem_with_tensor_indices():
    def fn(x, v, i):
        y = x.clone()
        y[i] = v
        return y

    check(fn, [rand(5, 2), rand(3, 2), np.array([4, 0, 1])])


def test_setitem_errors():
    with pytest.raises(IndexError, match=r"\(3, 4\)"):
        gg.ones(3, 4)[5] = 1.0
    with pytest.raises(ValueError, match=r"setitem.*\(3,\).*\(4,\)"):
        gg.ones(3, 4)[0] = gg.ones(3)


# --- gather / scatter ----------------------------------------------------------------------
GATHER = [
    ("gather0", lambda x, i: x.gather(0, i), (3, 4), np.array([[0, 2, 2, 1], [2, 2, 0, 0]])),
    ("gather1", lambda x, i: x.gather(1, i), (3, 4), np.array([[0, 0], [3, 1], [2, 2]])),
    ("gather_neg", lambda x, i: x.gather(-1, i), (2, 3), np.array([[1], [1]])),
    ("gather_small", lambda x, i: x.gather(1, i), (3, 4), np.array([[1, 1, 1]])),
    ("gather_1d", lambda x, i: x.gather(0, i), (4,), np.array([3, 3, 0])),
    ("gather_empty", lambda x, i: x.gather(0, i), (3, 4), np.zeros((0, 4), dtype=np.int64)),
    ("index_select0", lambda x, i: x.index_select(0, i), (3, 4), np.array([2, 0, 2])),
    ("index_select1", lambda x, i: x.index_select(1, i), (3, 4), np.array([3, 3])),
    ("index_select_empty", lambda x, i: x.index_select(1, i), (3, 4), np.zeros(0, np.int64)),
    ("index_select_0d_idx", lambda x, i: x.index_select(0, i), (3, 4), np.array(1)),
]


@pytest.mark.parametrize("name,fn,shape,idx", GATHER, ids=[g[0] for g in GATHER])
def test_gather_vs_torch(name, fn, shape, idx):
    check(fn, [rand(*shape), idx.astype(np.int64)])
    gradcheck(lambda x: fn(x, gg.tensor(idx.astype(np.int64))), rand(*shape))


def test_gather_noncontiguous():
    i = np.array([[0, 2], [1, 1], [2, 0], [0, 0]])
    check(lambda x, i: x.T.gather(1, i), [rand(3, 4), i])
    check(lambda x, i: x.gather(0, i), [rand(4, 3), i], non_contiguous=True)


def _scatter_add(x, dim, i, src):
    return _lib(x).scatter_add(x, dim, i, src)


SCATTER = [
    ("scatter_add0", lambda x, s, i: _scatter_add(x, 0, i, s), (3, 4), (2, 4),
     np.array([[0, 2, 2, 1], [2, 2, 0, 0]])),
    ("scatter_add1", lambda x, s, i: _scatter_add(x, 1, i, s), (3, 4), (3, 2),
     np.array([[0, 0], [3, 1], [2, 2]])),
    ("scatter_add_method", lambda x, s, i: x.scatter_add(1, i, s), (2, 3), (2, 2),
     np.array([[1, 1], [0, 2]])),
    ("index_add0", lambda x, s, i: x.index_add(0, i, s), (3, 4), (4, 4), IDX),
    ("index_add1", lambda x, s, i: x.index_add(1, i, s), (2, 3), (2, 4), IDX),
    ("index_add_alpha", lambda x, s, i: x.index_add(0, i, s, alpha=-2.0), (3, 2), (4, 2),
     IDX),
    ("index_add_empty", lambda x, s, i: x.index_add(0, i, s), (3, 2), (0, 2),
     np.zeros(0, np.int64)),
    ("index_add_fn", lambda x, s, i: _lib(x).index_add(x, 0, i, s), (3,), (4,), IDX),
]


@pytest.mark.parametrize("name,fn,xshape,sshape,idx", SCATTER, ids=[s[0] for s in SCATTER])
def test_scatter_vs_torch(name, fn, xshape, sshape, idx):
    idx = idx.astype(np.int64)
    check(fn, [rand(*xshape), rand(*sshape), idx])
    gradcheck(lambda x, s: fn(x, s, gg.tensor(idx)), rand(*xshape), rand(*sshape))


def test_scatter_add_src_larger_than_index():
    # only src[:2, :2] is read; the rest gets a zero gradient (torch's own backward
    # rejects this case, so compare values with torch and gradients by finite differences)
    i = np.array([[0, 0], [3, 1]])
    check(lambda x, s, i: _scatter_add(x, 1, i, s), [rand(3, 4), rand(3, 3), i], grad=False)
    gradcheck(lambda x, s: gg.scatter_add(x, 1, gg.tensor(i), s), rand(3, 4), rand(3, 3))


def test_scatter_noncontiguous():
    check(lambda x, s, i: x.index_add(0, i, s.T), [rand(3, 2), rand(2, 4), IDX])
    check(lambda x, s, i: _scatter_add(x.T, 0, i, s), [rand(4, 3), rand(2, 4),
                                                       np.array([[0, 1, 2, 2], [2, 2, 2, 0]])])


@pytest.mark.parametrize("dshape,ids,n", [
    ((4, 2), IDX, 3), ((4,), IDX, 5), ((3, 2, 2), np.array([1, 1, 1]), 2),
    ((0, 2), np.zeros(0, np.int64), 2), ((4, 2), IDX, 0 + 3),
], ids=["2d", "1d", "3d", "empty", "repeat"])
def test_segment_sum_vs_index_add(dshape, ids, n):
    ids = ids.astype(np.int64)

    def fn(d, s):
        if isinstance(d, torch.Tensor):
            return torch.zeros((n,) + d.shape[1:], dtype=d.dtype).index_add(0, s, d)
        return gg.segment_sum(d, s, n)

    check(fn, [rand(*dshape), ids])
    gradcheck(lambda d: gg.segment_sum(d, gg.tensor(ids), n), rand(*dshape))


def test_gather_scatter_double_backward():
    i = np.array([[0, 2, 2, 1], [2, 2, 0, 0]])

    def g(lib):
        def f(x, s, i):
            y = (lib.scatter_add(x, 0, i, s) ** 2).sum() + (x.gather(0, i) ** 3).sum()
            return lib.autograd.grad(y, [x, s], create_graph=True)
        return f

    check(g(gg), [rand(3, 4), rand(2, 4), i], torch_fn=g(torch))


# --- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda x: x.gather(1, gg.tensor([[0, 4]])),
    lambda x: x.index_select(1, gg.tensor([4])),
    lambda x: x.index_select(0, gg.tensor([-4])),
    lambda x: x.index_add(0, gg.tensor([3]), gg.ones(1, 4)),
    lambda x: gg.scatter_add(x, 0, gg.tensor([[5]]), gg.ones(1, 1)),
    lambda x: gg.segment_sum(x, gg.tensor([0, 1, 9]), 2),
], ids=["gather", "index_select", "index_select_neg", "index_add", "scatter_add",
        "segment_sum"])
def test_index_out_of_range_raises_index_error(call):
    with pytest.raises(IndexError, match=r"\(3, 4\)|\(2, 4\)"):
        call(gg.ones(3, 4, requires_grad=True))


@pytest.mark.parametrize("call,match", [
    (lambda x: x.gather(0, gg.tensor([0, 1])), r"gather.*\(2,\).*\(3, 4\)"),
    (lambda x: x.index_select(0, gg.tensor([[0]])), r"index_select.*\(1, 1\)"),
    (lambda x: x.index_add(0, gg.tensor([0]), gg.ones(1, 3)), r"index_add.*\(1, 3\).*\(3, 4\)"),
    (lambda x: gg.scatter_add(x, 0, gg.tensor([[0]]), gg.ones(1)),
     r"scatter_add.*\(1, 1\).*\(1,\).*\(3, 4\)"),
    (lambda x: gg.segment_sum(x, gg.tensor([0, 1]), 2), r"segment_sum.*\(2,\).*\(3, 4\)"),
])
def test_index_shape_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(gg.ones(3, 4))


@pytest.mark.parametrize("call", [
    lambda x: x.gather(2, gg.tensor([[0]])), lambda x: x.index_select(-3, gg.tensor([0])),
    lambda x: x.index_add(2, gg.tensor([0]), gg.ones(3, 1)),
    lambda x: gg.scatter_add(x, 2, gg.tensor([[0]]), gg.ones(1, 1)),
], ids=["gather", "index_select", "index_add", "scatter_add"])
def test_index_dim_out_of_range(call):
    with pytest.raises(IndexError, match=r"dimension -?\d out of range"):
        call(gg.ones(3, 4))


def test_index_must_be_integer():
    with pytest.raises(TypeError, match="gather.*integer"):
        gg.ones(3, 4).gather(0, gg.tensor([[0.0]]))
