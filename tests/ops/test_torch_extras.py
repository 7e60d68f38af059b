"""Smaller PyTorch conveniences and the in-place forms of scatter/index ops (issue 15)."""

import numpy as np
import pytest
import torch

import gpugrad as gg
from tests.oracle import check, gradcheck, rand


def lib(t):
    return gg if isinstance(t, gg.Tensor) else torch


def test_compositions():
    a = rand(4, 4)
    check(lambda x: x.trace(), [a])
    check(lambda x: x.trace(), [rand(3, 5)])
    check(lambda x, y: lib(x).inner(x, y), [rand(2, 3), rand(4, 3)])
    check(lambda x, y: lib(x).vdot(x, y), [rand(3), rand(3)])
    check(lambda x, y: lib(x).ger(x, y), [rand(3), rand(2)])
    check(lambda x: x.ravel(), [rand(2, 3)])
    check(lambda x: x.diff(), [rand(3, 5)])
    check(lambda x: x.diff(n=2, dim=0), [rand(4, 3)])
    check(lambda x, p: lib(x).diff(x, dim=1, prepend=p), [rand(2, 3), rand(2, 1)])
    check(lambda x: lib(x).matrix_power(x, 3), [a])
    check(lambda x: lib(x).matrix_power(x, 0), [a])
    check(lambda x: lib(x).matrix_power(x, -2), [a + 4 * np.eye(4)])
    check(lambda x, y, z: lib(x).linalg.multi_dot([x, y, z]) if lib(x) is torch
          else gg.chain_matmul(x, y, z), [rand(2, 3), rand(3, 4), rand(4, 2)])
    for p in (1.0, 2.0, 3.0):
        check(lambda x, y, p=p: lib(x).cdist(x, y, p), [rand(2, 4, 3), rand(2, 5, 3)])
    check(lambda x, y: lib(x).dist(x, y), [rand(3, 2), rand(3, 2)])
    n = rand(3, 4)
    n[0, 1] = n[2, 2] = np.nan
    check(lambda x: x.nansum(1), [n])
    check(lambda x: x.nanmean(), [n])
    gradcheck(lambda x: gg.cdist(x, x[:2] * 2.0), rand(3, 2))


def test_linalg_torch_spellings():
    a = rand(3, 3) + 4 * np.eye(3)
    check(lambda x: x.det(), [a])
    check(lambda x: x.logdet(), [a])
    check(lambda x: x.inverse(), [a])
    check(lambda x: tuple(x.slogdet()), [a])
    s = a @ a.T
    check(lambda x: x.cholesky(), [s])
    check(lambda x: tuple(lib(x).qr(x)), [rand(4, 3)])
    m = rand(4, 3)
    check(lambda x: tuple(t * t if i != 1 else t for i, t in enumerate(lib(x).svd(x))), [m])
    check(lambda x: x.pinverse(), [m])
    assert np.isnan(gg.logdet(gg.tensor(-np.eye(3))).item())


def test_searchsorted_bucketize():
    s = np.array([1, 3, 5, 7])
    v = np.array([[0, 3], [6, 9]])
    for right in (False, True):
        check(lambda a, b, r=right: lib(a).searchsorted(a, b, right=r), [s, v], grad=False)
        check(lambda a, b, r=right: lib(a).bucketize(a, b, right=r), [v, s], grad=False)
    rows = np.array([[1, 2, 3], [2, 4, 6]])
    check(lambda a, b: lib(a).searchsorted(a, b, side="right"), [rows, np.array([[2], [5]])],
          grad=False)


@pytest.mark.parametrize("op", ["scatter_", "scatter_add_", "scatter_reduce_", "index_fill_",
                                "index_copy_", "index_add_", "masked_scatter_", "masked_fill_",
                                "cumsum_", "cumprod_"])
def test_inplace_forms(op):
    idx = np.array([[0, 2, 1, 0]])
    calls = {
        "scatter_": lambda x, s: x.scatter_(0, lib(x).tensor(idx), s),
        "scatter_add_": lambda x, s: x.scatter_add_(0, lib(x).tensor(idx), s),
        "scatter_reduce_": lambda x, s: x.scatter_reduce_(0, lib(x).tensor(idx), s, "amax"),
        "index_fill_": lambda x, s: x.index_fill_(1, lib(x).tensor([1, 3]), -2.0),
        "index_copy_": lambda x, s: x.index_copy_(0, lib(x).tensor([2]), s),
        "index_add_": lambda x, s: x.index_add_(0, lib(x).tensor([2]), s),
        "masked_scatter_": lambda x, s: x.masked_scatter_(x > 1, s),
        "masked_fill_": lambda x, s: x.masked_fill_(x > 0, 0.5),
        "cumsum_": lambda x, s: x.cumsum_(1),
        "cumprod_": lambda x, s: x.cumprod_(0),
    }

    def run(x, s):
        y = x * 1  # a non-leaf, so the in-place op is recorded
        out = calls[op](y, s)
        assert out is y
        return y

    check(run, [rand(3, 4), rand(1, 4)])
    leaf = gg.tensor(rand(3, 4), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        calls[op](leaf, gg.tensor(rand(1, 4)))


def test_stacking():
    a, b = rand(2, 3), rand(2, 3)
    for name in ("hstack", "vstack", "dstack", "column_stack", "row_stack"):
        check(lambda x, y, n=name: getattr(lib(x), n)([x, y]), [a, b])
        check(lambda x, y, n=name: getattr(lib(x), n)((x, y)), [rand(3), rand(3)])
    check(lambda x, y: lib(x).column_stack([x, y]), [rand(3), rand(3, 2)])


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile(interpolation):
    x = rand(4, 7)
    kw = {"interpolation": interpolation}
    check(lambda t: t.quantile(0.3, **kw), [x])
    check(lambda t: t.quantile(0.5, dim=1, keepdim=True, **kw), [x])
    check(lambda t, q: t.quantile(q, dim=0, **kw), [x, np.array([0.0, 0.25, 1.0])], grad=False)
    n = x.copy()
    n[1, 2] = np.nan
    check(lambda t: t.quantile(0.4, dim=1, **kw), [n], grad=False)
    check(lambda t: t.nanquantile(0.4, dim=1, **kw), [n], grad=False)
    gradcheck(lambda t: gg.quantile(t, 0.3, dim=1), x)


def test_cov_corrcoef_unique_consecutive_index_put():
    x = rand(3, 6)
    check(lambda t: t.cov(), [x])
    check(lambda t: t.cov(correction=0), [x])
    check(lambda t: t.corrcoef(), [x])
    v = np.array([1, 1, 2, 2, 3, 1, 1, 2])
    check(lambda t: tuple(t.unique_consecutive(return_inverse=True, return_counts=True)), [v],
          grad=False)
    rows = np.array([[1, 2], [1, 2], [3, 4], [1, 2]])
    check(lambda t: tuple(t.unique_consecutive(return_counts=True, dim=0)), [rows], grad=False)
    i = np.array([0, 2, 0])
    check(lambda t, s: t.index_put((lib(t).tensor(i),), s, accumulate=True), [rand(3, 2),
                                                                               rand(3, 2)])
    check(lambda t, s: t.index_put((lib(t).tensor([1, 2]),), s), [rand(3, 2), rand(2, 2)])


def test_linalg_extras():
    a = rand(4, 3)
    check(lambda x, y, z: lib(x).linalg.multi_dot([x, y, z]), [rand(3), rand(3, 4), rand(4)])
    check(lambda x: lib(x).linalg.pinv(x), [a])
    check(lambda x: lib(x).linalg.matrix_power(x, 2), [rand(3, 3)])
    check(lambda x, y: lib(x).linalg.vecdot(x, y), [rand(2, 3), rand(3)])
    check(lambda x: lib(x).linalg.matrix_rank(x), [a @ rand(3, 5)], grad=False)
    check(lambda x: lib(x).linalg.matrix_rank(x), [rand(4, 1) @ rand(1, 5)], grad=False)
    t = rand(3, 3) + 3 * np.eye(3)
    for upper in (True, False):
        for unit in (False, True):
            check(lambda x, y, u=upper, un=unit: lib(x).linalg.solve_triangular(
                x, y, upper=u, unitriangular=un), [t, rand(3, 2)])
    check(lambda x, y: lib(x).linalg.solve_triangular(x, y, upper=True, left=False),
          [t, rand(2, 3)])


def test_more_linalg_names():
    check(lambda i, a, b: lib(i).addr(i, a, b, beta=0.5, alpha=2.0), [rand(3, 2), rand(3),
                                                                     rand(2)])
    check(lambda a, b, c: lib(a).block_diag(a, b, c), [rand(2, 3), rand(1, 2), rand(3)])
    check(lambda a, b, c: lib(a).cartesian_prod(a, b, c), [rand(2), rand(3), rand(2)])
    s = rand(3, 3)
    s = s @ s.T + 3 * np.eye(3)
    L = np.linalg.cholesky(s)
    for upper in (False, True):
        f = L.T.copy() if upper else L
        check(lambda b, m, u=upper: lib(b).cholesky_solve(b, m, upper=u), [rand(3, 2), f])
        # (torch 2.13's cholesky_inverse backward fails on its own in-place write)
        check(lambda m, u=upper: lib(m).cholesky_inverse(m, upper=u), [f], grad=False)
        gradcheck(lambda m, u=upper: gg.cholesky_inverse(m, upper=u), f)
    a = rand(3, 3) + 2 * np.eye(3)
    for p in (None, 2, -2):
        check(lambda x, p=p: lib(x).linalg.cond(x, p), [a])
    for p in ("fro", 1, float("inf")):  # torch 2.13's backward fails here (in-place write)
        check(lambda x, p=p: lib(x).linalg.cond(x, p), [a], grad=False)
        gradcheck(lambda x, p=p: gg.linalg.cond(x, p), a)
