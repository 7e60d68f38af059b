"""Scatter/index ops and rearranging ops against PyTorch (issue 15)."""

import warnings

import numpy as np
import pytest
import torch

import gpugrad as gg
from gpugrad.errors import ShapeError
from tests.oracle import check, gradcheck, rand

RNG = np.random.default_rng(7)


def lib(t):
    return gg if isinstance(t, gg.Tensor) else torch


def idx(high, *shape):
    return RNG.integers(0, high, size=shape).astype(np.int64)


# --- scatter family -----------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_src_and_value(dim):
    x = rand(4, 5)
    n = x.shape[dim]
    # a permutation per column: no repeated targets, so the result is defined
    perm = np.stack([RNG.permutation(n)[:3] for _ in range(5 if dim == 0 else 4)], axis=1)
    index = perm if dim == 0 else perm.T
    src = rand(*index.shape)
    check(lambda a, i, s: a.scatter(dim, i, s), [x, index, src])
    check(lambda a, i: a.scatter(dim, i, 2.5), [x, index])
    gradcheck(lambda a, s: a.scatter(dim, gg.tensor(index), s), x, src)


@pytest.mark.parametrize("reduce", ["add", "multiply"])
def test_scatter_legacy_reduce(reduce):
    x, index = rand(3, 4), idx(3, 5, 4)
    check(lambda a, i, s: a.scatter(0, i, s, reduce=reduce), [x, index, rand(5, 4)], grad=False)


def test_scatter_add_function_and_method():
    x, index, src = rand(3, 4), idx(3, 5, 4), rand(5, 4)
    check(lambda a, i, s: a.scatter_add(0, i, s), [x, index, src])


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce(reduce, include_self):
    x, index, src = rand(4, 3), idx(4, 6, 3), rand(6, 3)
    index[:, 0] = 1  # a target with many sources
    check(lambda a, i, s: a.scatter_reduce(0, i, s, reduce, include_self=include_self),
          [x, index, src])
    gradcheck(lambda a, s: a.scatter_reduce(0, gg.tensor(index), s, reduce,
                                            include_self=include_self), x, src)


@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_prod_with_zeros(include_self):
    x = np.array([[1.5, 0.0], [2.0, -1.0], [0.5, 3.0]])
    index = np.array([[0, 1], [0, 1], [2, 1], [0, 0]])
    src = np.array([[0.0, 2.0], [3.0, 0.0], [0.0, 0.0], [0.0, 4.0]])
    check(lambda a, i, s: a.scatter_reduce(0, i, s, "prod", include_self=include_self),
          [x, index, src])
    gradcheck(lambda a, s: a.scatter_reduce(0, gg.tensor(index), s, "prod",
                                            include_self=include_self), x, src)


def test_scatter_reduce_amax_ties_share_gradient():
    x = np.array([1.0, 5.0, 0.0])
    index = np.array([0, 0, 1, 1])
    src = np.array([1.0, 1.0, 5.0, 2.0])
    check(lambda a, i, s: a.scatter_reduce(0, i, s, "amax"), [x, index, src])
    check(lambda a, i, s: a.scatter_reduce(0, i, s, "mean"), [np.array([1, 2, 3]), index,
                                                             np.array([4, 5, 6, 7])],
          grad=False)


def test_scatter_errors():
    x = gg.tensor(rand(3, 4))
    with pytest.raises(IndexError, match="out of bounds"):
        x.scatter(0, gg.tensor([[3]]), 1.0)
    with pytest.raises(ShapeError, match=r"\(1, 1, 1\)"):
        x.scatter(0, gg.tensor([[[0]]]), 1.0)
    with pytest.raises(RuntimeError, match="reduce"):
        x.scatter_reduce(0, gg.tensor([[0]]), x, "max")
    with pytest.raises(TypeError, match="integer"):
        x.scatter(0, gg.tensor([[0.0]]), 1.0)


def test_index_fill_copy():
    x = rand(4, 5)
    check(lambda a, i: a.index_fill(1, i, -1.0), [x, np.array([0, 3])])
    check(lambda a, i, v: a.index_fill(0, i, v), [x, np.array([2]), np.array(1.5)])
    check(lambda a, i, s: a.index_copy(1, i, s), [x, np.array([4, 0]), rand(4, 2)])
    check(lambda a, i, s: a.index_copy(0, i, s), [x, np.array([1, 2, 0]), rand(3, 5)])
    gradcheck(lambda a, s: a.index_copy(1, gg.tensor([4, 0]), s), x, rand(4, 2))
    with pytest.raises(ShapeError, match="index_copy"):
        gg.index_copy(gg.tensor(x), 1, gg.tensor([0]), gg.tensor(rand(4, 2)))


def test_masked_select_scatter():
    x, m = rand(3, 4), rand(3, 4) > 0
    check(lambda a, k: a.masked_select(k), [x, m])
    check(lambda a, k: a.masked_select(k), [x, m[:1]])  # mask broadcasts
    src = rand(12)
    check(lambda a, k, s: a.masked_scatter(k, s), [x, m, src])
    gradcheck(lambda a, s: a.masked_scatter(gg.tensor(m), s), x, src)
    with pytest.raises(RuntimeError, match="bool"):
        gg.masked_select(gg.tensor(x), gg.tensor(m.astype(np.int64)))


def test_nonzero_take_take_along_dim():
    z = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
    check(lambda a: a.nonzero(), [z], grad=False)
    check(lambda a: a.nonzero(as_tuple=True), [z], grad=False)
    check(lambda a: a.nonzero(), [np.array(1.0)], grad=False)
    check(lambda a: gg.argwhere(a) if isinstance(a, gg.Tensor) else torch.argwhere(a), [z],
          grad=False)
    x = rand(3, 4)
    check(lambda a, i: a.take(i), [x, np.array([[0, 11], [5, -1]])])
    check(lambda a, i: a.take_along_dim(i, 1), [x, idx(4, 3, 2)])
    check(lambda a, i: a.take_along_dim(i, 0), [x, idx(3, 1, 4)])
    check(lambda a, i: a.take_along_dim(i), [x, idx(12, 5)])
    check(lambda a, i: gg.take_along_dim(a, i, dim=1) if isinstance(a, gg.Tensor)
          else torch.take_along_dim(a, i, dim=1), [rand(1, 4), idx(4, 3, 2)])
    with pytest.raises(IndexError, match="out of range"):  # checked on the CPU only, as torch
        gg.take(gg.tensor(x, device="cpu"), gg.tensor([12], device="cpu"))


# --- rearranging -------------------------------------------------------------------------
def test_repeat_and_repeat_interleave():
    x = rand(2, 3)
    check(lambda a: a.repeat(2, 1), [x])
    check(lambda a: a.repeat(3, 1, 2), [x])
    check(lambda a: a.repeat(0, 2), [x])
    check(lambda a: a.repeat_interleave(2), [x])
    check(lambda a: a.repeat_interleave(2, dim=1), [x])
    check(lambda a, r: a.repeat_interleave(r, dim=0), [x, np.array([3, 0])])
    check(lambda a, r: a.repeat_interleave(r, 1), [x, np.array([1, 2, 0])])
    check(lambda r: gg.repeat_interleave(r) if isinstance(r, gg.Tensor)
          else torch.repeat_interleave(r), [np.array([2, 0, 3])], grad=False)
    gradcheck(lambda a: a.repeat(2, 2), x)
    gradcheck(lambda a: a.repeat_interleave(3, 1), x)
    with pytest.raises(RuntimeError, match="smaller"):
        gg.tensor(x).repeat(2)


def test_flip_roll_rot90():
    x = rand(3, 4, 2)
    check(lambda a: a.flip(0, 2), [x])
    check(lambda a: a.flip((1,)), [x])
    check(lambda a: lib(a).flip(a, dims=[0, 1]), [x])
    check(lambda a: a.fliplr(), [x])
    check(lambda a: a.flipud(), [x])
    check(lambda a: a.roll(2), [x])
    check(lambda a: a.roll(-1, 1), [x])
    check(lambda a: a.roll((1, 5), (0, 2)), [x])
    for k in (-1, 0, 1, 2, 3, 6):
        check(lambda a, k=k: a.rot90(k, (0, 1)), [x])
    check(lambda a: a.rot90(1, (2, 0)), [x])
    gradcheck(lambda a: a.roll((1, -2), (0, 1)).flip(1), x)
    with pytest.raises(RuntimeError, match="repeated"):
        gg.flip(gg.tensor(x), (0, 0))


def test_movedim_swap_unfold():
    x = rand(2, 3, 4)
    check(lambda a: a.movedim(0, -1), [x])
    check(lambda a: a.movedim((0, 1), (2, 0)), [x])
    check(lambda a: a.moveaxis(1, 0), [x])
    check(lambda a: a.swapaxes(0, 2), [x])
    check(lambda a: a.swapdims(1, 2), [x])
    check(lambda a: a.unfold(2, 2, 1), [x])
    check(lambda a: a.unfold(1, 2, 2), [x])
    check(lambda a: a.unfold(0, 2, 3), [x])
    check(lambda a: a.unfold(2, 0, 1), [x])
    gradcheck(lambda a: a.unfold(1, 2, 1), x)
    u = gg.tensor(x).unfold(2, 3, 1)
    assert u.array.base is not None  # a strided view, not a copy
    with pytest.raises(RuntimeError, match="size"):
        gg.tensor(x).unfold(0, 3, 1)


def test_tensor_split_family_atleast():
    x = rand(7, 6, 4)
    for arg in (3, [1, 4], [5, 2], [0, 9], 7):
        check(lambda a, s=arg: a.tensor_split(s, 0), [x])
    check(lambda a: a.tensor_split(4, dim=1), [x])
    check(lambda a: a.hsplit(3), [x])
    check(lambda a: a.vsplit([2, 3]), [x])
    check(lambda a: a.dsplit(2), [x])
    check(lambda a: a.hsplit(2), [rand(6)])
    with pytest.raises(RuntimeError, match="divisible"):
        gg.hsplit(gg.tensor(x), 4)
    for fn in ("atleast_1d", "atleast_2d", "atleast_3d"):
        for shape in ((), (3,), (2, 3), (2, 3, 4)):
            check(lambda a, f=fn: getattr(gg if isinstance(a, gg.Tensor) else torch, f)(a),
                  [rand(*shape)])
    out = gg.atleast_2d(gg.tensor(1.0), gg.tensor([1.0, 2.0]))
    assert [tuple(o.shape) for o in out] == [(1, 1), (1, 2)]


# --- __getitem__ / __setitem__ -----------------------------------------------------------
KEYS = [[0, 2], ([0, 1], [1, 2]), (0, 1), [[0, 1], [1, 2]], [[0], [2]], [0, [1, 2]],
        [slice(None), [1, 3]], [True, False, True], [[True, False, True]], ((0, 1),),
        [None, 1], (Ellipsis, [0, 0])]


@pytest.mark.parametrize("key", KEYS, ids=[str(k) for k in KEYS])
def test_nested_list_and_tuple_indices(key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(lambda a: a[key], [rand(3, 4)])


def test_boolean_mask_assignment():
    a = np.arange(12.0).reshape(3, 4)
    g, t = gg.tensor(a), torch.tensor(a)
    g[g > 5] = 0.0
    t[t > 5] = 0.0
    np.testing.assert_array_equal(g.numpy(), t.numpy())
    g[g > 2] = gg.tensor([7.0, 8.0, 9.0])
    t[t > 2] = torch.tensor([7.0, 8.0, 9.0], dtype=torch.float64)
    np.testing.assert_array_equal(g.numpy(), t.numpy())
    g[gg.tensor([True, False, True])] = gg.tensor([1.0, 2.0, 3.0, 4.0])
    t[torch.tensor([True, False, True])] = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    np.testing.assert_array_equal(g.numpy(), t.numpy())
    g[[0, 2], [1, 3]] = -1.0
    t[[0, 2], [1, 3]] = -1.0
    np.testing.assert_array_equal(g.numpy(), t.numpy())


def test_scatter_reduce_second_order():
    index = gg.tensor([[0, 1], [0, 1], [2, 1]])

    def grad_of(reduce):
        def run(a):
            with gg.enable_grad():  # gradcheck's finite differences run without grad
                a = a if a.requires_grad else a.detach().requires_grad_()
                y = a.scatter_reduce(0, index, a * 1.5, reduce)
                w = gg.tensor(np.linspace(0.5, 1.5, y.numel()).reshape(y.shape))
                (g,) = gg.autograd.grad((y * w).sum(), a, create_graph=True)
            return g
        return run

    for reduce in ("prod", "mean", "sum"):
        gradcheck(grad_of(reduce), rand(3, 2))
