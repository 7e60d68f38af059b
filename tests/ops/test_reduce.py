"""Reductions against PyTorch and float64 finite differences."""

import numpy as np
import pytest
import torch
from oracle import check, gradcheck, rand

import gpugrad as gg


def _is_torch(x):
    return isinstance(x, torch.Tensor)


def _all_dims(x, dim):
    return tuple(range(x.ndim)) if dim is None else dim


# name -> fn(x, dim, keepdim); torch lacks dim=None for some of these, so spell it out
REDUCTIONS = {
    "sum": lambda x, d, k: x.sum(_all_dims(x, d), keepdim=k) if _is_torch(x) and d is None
    else x.sum(d, keepdim=k),
    "mean": lambda x, d, k: x.mean(_all_dims(x, d), keepdim=k),
    "var": lambda x, d, k: x.var(d, keepdim=k),
    "var_c0": lambda x, d, k: x.var(d, correction=0, keepdim=k),
    "var_c2": lambda x, d, k: x.var(d, correction=2, keepdim=k),
    "amax": lambda x, d, k: x.amax(_all_dims(x, d), keepdim=k),
    "amin": lambda x, d, k: x.amin(_all_dims(x, d), keepdim=k),
    "logsumexp": lambda x, d, k: x.logsumexp(_all_dims(x, d), keepdim=k),
    "norm": lambda x, d, k: torch.linalg.vector_norm(x, dim=d, keepdim=k) if _is_torch(x)
    else x.norm(dim=d, keepdim=k),
}
DIMS = [None, 0, -1, (0, 2), (2, 0, 1), (-2,)]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reduction_vs_torch(name, dim, keepdim):
    fn = REDUCTIONS[name]
    check(lambda x: fn(x, dim, keepdim), [rand(2, 3, 4)])


@pytest.mark.parametrize("shape,dim", [
    ((), None), ((), 0), ((), -1), ((1,), 0), ((3, 1), 1), ((1, 1), None), ((4, 1, 3), (0, 1)),
], ids=str)
@pytest.mark.parametrize("name", [n for n in REDUCTIONS if n != "var_c2"])
def test_reduction_small_shapes(name, shape, dim):
    fn = REDUCTIONS[name]
    for keepdim in (False, True):
        check(lambda x, k=keepdim: fn(x, dim, k), [rand(*shape)])


@pytest.mark.parametrize("name", ["sum", "mean", "logsumexp", "norm"])
@pytest.mark.parametrize("shape,dim", [((0, 3), 0), ((0, 3), 1), ((0,), None), ((2, 0), None)],
                         ids=str)
def test_reduction_empty(name, shape, dim):
    fn = REDUCTIONS[name]
    check(lambda x: fn(x, dim, False), [rand(*shape)])


@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_empty_raises(name):
    with pytest.raises((RuntimeError, IndexError), match=r"\(0, 3\)"):
        getattr(gg.zeros(0, 3), name)(0)


def test_amax_empty_along_nonempty_dim():
    check(lambda x: x.amax(1), [rand(0, 3)])


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reduction_noncontiguous(name):
    fn = REDUCTIONS[name]
    check(lambda x: fn(x.transpose(0, 2)[:, ::2], (0, 1), False), [rand(3, 2, 4)])
    check(lambda x: fn(x, 1, True), [rand(3, 4)], non_contiguous=True)


@pytest.mark.parametrize("dim", [None, 1, (0, 1)], ids=str)
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reduction_gradcheck(name, dim):
    fn = REDUCTIONS[name]
    gradcheck(lambda x: fn(x, dim, False), rand(2, 3))


@pytest.mark.parametrize("name", ["var", "logsumexp", "norm", "amax", "mean"])
def test_reduction_double_backward(name):
    fn = REDUCTIONS[name]

    def first_grad(lib):
        def f(x):
            return lib.autograd.grad((fn(x, 1, False) ** 2).sum(), [x], create_graph=True)[0]
        return f

    check(first_grad(gg), [rand(2, 3)], torch_fn=first_grad(torch))


@pytest.mark.parametrize("name", ["sum", "mean", "var", "amax", "amin", "norm"])
def test_empty_dim_tuple_reduces_everything_like_torch(name):
    # torch's var backward treats () as "no dims" (inf gradients): compare values only there
    check(lambda x: REDUCTIONS[name](x, (), False), [rand(2, 3)], grad=name != "var")
    gradcheck(lambda x: REDUCTIONS[name](x, (), False), rand(2, 3))


def test_var_degenerate():
    # n - correction <= 0: torch gives nan (n=1,c=1) or inf values; gradients nan
    check(lambda x: x.var(0), [rand(1, 3)])
    check(lambda x: x.var(), [rand()])


def test_var_unbiased_flag():
    check(lambda x: x.var(1, unbiased=False), [rand(3, 4)])


def test_norm_at_zero_has_zero_grad():
    check(lambda x: x.norm(dim=1), [np.array([[0.0, 0.0], [3.0, 4.0]])])


@pytest.mark.parametrize("p", [1, 3, float("inf")])
def test_norm_other_p(p):
    check(lambda x: x.norm(p=p, dim=1), [rand(3, 4)])


def test_logsumexp_stable_and_inf():
    check(lambda x: x.logsumexp(1), [np.array([[1000.0, 1000.0], [-1000.0, -999.0]])])
    check(lambda x: x.logsumexp(1), [np.array([[-np.inf, -np.inf], [-np.inf, 0.0]])],
          grad=False)


# --- max / min -----------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("shape", [(2, 3, 4), (), (1,), (5,)], ids=str)
def test_max_no_dim_returns_value(op, shape):
    check(lambda x: getattr(x, op)(), [rand(*shape)])
    gradcheck(lambda x: getattr(x, op)(), rand(*shape))


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_dim_returns_values_indices(op, dim, keepdim):
    x = rand(2, 3, 4)
    check(lambda t: tuple(getattr(t, op)(dim, keepdim=keepdim)), [x])
    res = getattr(gg.tensor(x), op)(dim, keepdim)
    values, indices = res
    assert res.values is values and res.indices is indices
    assert indices.dtype == gg.int64 and not indices.requires_grad
    gradcheck(lambda t: getattr(t, op)(dim, keepdim)[0], rand(2, 3))


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_dim_small_shapes(op):
    check(lambda t: tuple(getattr(t, op)(0)), [rand()])
    check(lambda t: tuple(getattr(t, op)(-1, keepdim=True)), [rand()])
    check(lambda t: tuple(getattr(t, op)(1)), [rand(3, 1)])
    check(lambda t: tuple(getattr(t, op)(1)), [rand(0, 3)])
    check(lambda t: tuple(getattr(t, op)(0)), [rand(4, 3).T])


def test_max_elementwise_form():
    check(lambda a, b: a.max(b), [rand(3, 4), rand(4)])


TIES = np.array([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.5], [-1.0, 2.0, -1.0, -1.0]])


@pytest.mark.parametrize("fn", [
    lambda x: x.amax(), lambda x: x.amax(1), lambda x: x.amin(1), lambda x: x.amax(0),
    lambda x: x.amin((0, 1)), lambda x: x.max(), lambda x: x.min(),
    lambda x: x.norm(p=float("inf"), dim=1),
], ids=["amax", "amax1", "amin1", "amax0", "amin01", "max", "min", "norm_inf"])
def test_extremum_ties_split_gradient_like_torch(fn):
    check(fn, [TIES])


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_dim_with_ties_values(op):
    # the winning index among ties is unspecified, but the value is not
    values = getattr(gg.tensor(TIES), op)(1)[0]
    np.testing.assert_array_equal(values.numpy(), getattr(torch.tensor(TIES), op)(1)[0].numpy())


# --- non-differentiable reductions -------------------------------------------------------
@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("op", ["all", "any"])
def test_all_any(op, dim, keepdim):
    x = np.array([[1.0, 0.0, 2.0], [3.0, 4.0, 5.0]])
    out = getattr(gg.tensor(x, requires_grad=True), op)(dim, keepdim=keepdim)
    t = torch.tensor(x) != 0
    expect = getattr(t, op)(*(() if dim is None else (dim,)), **(
        {"keepdim": keepdim} if dim is not None else {}))
    if dim is None and keepdim:
        expect = expect.reshape(1, 1)
    assert not out.requires_grad and out.dtype == gg.bool
    np.testing.assert_array_equal(out.numpy(), expect.numpy())


@pytest.mark.parametrize("call", [
    lambda x: x.argmax(), lambda x: x.argmin(), lambda x: x.argmax(1),
    lambda x: x.argmin(0, keepdim=True), lambda x: x.argmax(-1, keepdim=True),
], ids=["argmax", "argmin", "argmax1", "argmin0k", "argmax-1k"])
def test_argmax_argmin(call):
    x = rand(3, 4)
    out = call(gg.tensor(x, requires_grad=True))
    assert not out.requires_grad and out.dtype == gg.int64
    np.testing.assert_array_equal(out.numpy(), call(torch.tensor(x)).numpy())


def test_sum_int_gives_int64():
    out = gg.tensor(np.array([[1, 2], [3, 4]], dtype=np.int32)).sum(0)
    assert out.dtype == gg.int64 and out.tolist() == [4, 6]


def test_mean_of_int_raises():
    with pytest.raises(TypeError, match="mean"):
        gg.tensor([1, 2]).mean()


# --- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda x: x.sum(3), lambda x: x.mean(-4), lambda x: x.var((0, 5)), lambda x: x.amax(3),
    lambda x: x.max(3), lambda x: x.logsumexp(3), lambda x: x.norm(dim=3),
    lambda x: x.argmax(3), lambda x: x.all(3),
], ids=["sum", "mean", "var", "amax", "max", "logsumexp", "norm", "argmax", "all"])
def test_dim_out_of_range_raises_index_error(call):
    with pytest.raises(IndexError, match=r"dimension -?\d out of range"):
        call(gg.ones(2, 3, 4))


def test_repeated_dim_raises():
    with pytest.raises(ValueError, match="multiple times"):
        gg.ones(2, 3).sum((0, 0))
