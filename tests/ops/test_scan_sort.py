"""Scans, products, sorting and order statistics against PyTorch (issue 15)."""

import numpy as np
import pytest
import torch

import gpugrad as gg
from tests.oracle import check, gradcheck, rand, second_order

SHAPES = [(5,), (3, 4), (2, 3, 4), (0, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("name", ["cumsum", "cumprod", "logcumsumexp"])
def test_scans(name, shape, dim):
    check(lambda x: getattr(x, name)(dim), [rand(*shape)])


def test_scan_axis_alias_ints_and_0d():
    check(lambda x: x.cumsum(axis=1), [rand(3, 4)],
          torch_fn=lambda x: torch.cumsum(x, axis=1))
    i = np.arange(6).reshape(2, 3).astype(np.int32)
    check(lambda x: x.cumsum(1), [i], grad=False)
    check(lambda x: x.cumprod(0), [np.array([True, False, True])], grad=False)
    check(lambda x: x.cumsum(0), [rand()])
    check(lambda x: x.cumsum(0, dtype=gg.float64), [rand(3).astype(np.float32)],
          torch_fn=lambda x: x.cumsum(0, dtype=torch.float64))


def test_cumprod_and_prod_gradient_with_zeros():
    x = rand(4, 6)
    x[0, 2] = 0.0
    x[1, 1] = x[1, 4] = 0.0
    x[2, 5] = 0.0
    x[3, 0] = x[3, 1] = 0.0
    check(lambda t: t.cumprod(1), [x])
    check(lambda t: t.prod(1), [x])
    check(lambda t: t.prod(), [x[:2, :3]])
    check(lambda t: t.prod(0, keepdim=True), [x])
    gradcheck(lambda t: t.cumprod(1), x)
    gradcheck(lambda t: t.prod(1), x)


def test_scan_gradchecks():
    gradcheck(lambda t: t.cumsum(0), rand(4, 3))
    gradcheck(lambda t: t.logcumsumexp(1), rand(3, 5))
    gradcheck(lambda t: gg.logcumsumexp(t, 0) * gg.tensor([1.0, -2.0, 3.0],
                                                          dtype=gg.float64)[:, None],
              rand(3, 2))


def test_logcumsumexp_large_values_stay_finite():
    x = np.array([1000.0, 1001.0, -1000.0])
    check(lambda t: t.logcumsumexp(0), [x])


def test_prod_forms():
    check(lambda t: t.prod(), [rand(3, 4)])
    check(lambda t: t.prod(dim=-1), [rand(3, 4)], torch_fn=lambda t: t.prod(dim=-1))
    check(lambda t: t.prod(axis=0), [rand(3, 4)], torch_fn=lambda t: t.prod(dim=0))
    check(lambda t: t.prod(1), [rand(3, 0)])
    check(lambda t: t.prod(), [np.arange(1, 6)], grad=False)


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin(name):
    x = np.array([[1.0, 3.0, 3.0, 2.0, 5.0, 5.0], [4.0, 2.0, 2.0, 7.0, 1.0, 1.0]])
    check(lambda t: tuple(getattr(t, name)(1)), [x])
    check(lambda t: tuple(getattr(t, name)(0)), [rand(4, 3)])
    nan = np.array([1.0, np.nan, 3.0, 0.0])
    check(lambda t: tuple(getattr(t, name)(0)), [nan], grad=False)
    r = getattr(gg, name)(gg.tensor(x), dim=1)
    assert r.values.shape == r.indices.shape == (2, 6)
    gradcheck(lambda t: getattr(t, name)(0).values, rand(4, 3))


@pytest.mark.parametrize("descending", [False, True])
def test_sort_stable_with_ties(descending):
    x = np.array([[2.0, 1.0, 2.0, 1.0, 3.0], [0.0, 0.0, -1.0, 5.0, 0.0]])
    check(lambda t: tuple(t.sort(dim=1, descending=descending, stable=True)), [x])
    check(lambda t: t.argsort(0, descending=descending), [x])
    ints = np.array([3, 1, 3, 1, 2])
    check(lambda t: tuple(gg.sort(t, descending=descending, stable=True)), [ints], grad=False,
          torch_fn=lambda t: tuple(torch.sort(t, descending=descending, stable=True)))


def test_sort_nan_and_shapes():
    x = np.array([3.0, np.nan, 1.0, 2.0])
    for desc in (False, True):
        check(lambda t, d=desc: tuple(t.sort(descending=d)), [x], grad=False)
    check(lambda t: tuple(t.sort(0)), [rand(0, 3)])
    check(lambda t: t.sort(dim=-1).values, [rand(2, 3, 4)])
    gradcheck(lambda t: t.sort(1)[0], rand(3, 4))
    v, i = gg.sort(gg.tensor(rand(3)))
    assert isinstance(gg.sort(gg.tensor(rand(3))), gg.return_types.sort)


@pytest.mark.parametrize("largest", [True, False])
def test_topk(largest):
    check(lambda t: tuple(t.topk(2, largest=largest)), [rand(3, 5)])
    check(lambda t: tuple(t.topk(3, dim=0, largest=largest)), [rand(4, 2)])
    check(lambda t: tuple(t.topk(0)), [rand(3)])
    gradcheck(lambda t: t.topk(2, 1)[0], rand(3, 5))
    with pytest.raises(RuntimeError, match="out of range"):
        gg.topk(gg.tensor(rand(3)), 4)


def test_kthvalue_median_mode():
    x = rand(4, 5)
    check(lambda t: tuple(t.kthvalue(2, 1)), [x])
    check(lambda t: tuple(t.kthvalue(4, 0, keepdim=True)), [x])
    check(lambda t: tuple(t.median(1)), [x])
    check(lambda t: tuple(t.median(0)), [x])
    check(lambda t: t.median(), [x])
    check(lambda t: t.median(), [rand(6)])  # lower median of an even count
    check(lambda t: tuple(t.median(dim=1, keepdim=True)), [x])
    check(lambda t: t.median(), [np.array([1.0, np.nan, 2.0])], grad=False)
    check(lambda t: tuple(t.nanmedian(0)), [np.array([[1.0, np.nan], [np.nan, np.nan],
                                                      [3.0, 2.0]])], grad=False)
    ints = np.array([[3, 1, 1, 3, 2], [5, 5, 4, 4, 9]])
    check(lambda t: tuple(t.mode(1)), [ints], grad=False)
    check(lambda t: tuple(t.mode(0)), [np.array([[1.0, 2.0], [1.0, 3.0], [2.0, 3.0]])])
    gradcheck(lambda t: t.median(1)[0], rand(3, 5))
    gradcheck(lambda t: t.kthvalue(2, 0)[0], rand(3, 5))
    with pytest.raises(RuntimeError, match="out of range"):
        gg.kthvalue(gg.tensor(rand(3)), 0)


def test_median_ties_index_points_at_value():
    x = gg.tensor([[1.0, 2.0, 2.0, 2.0, 3.0], [2.0, 2.0, 1.0, 1.0, 0.0]])
    v, i = x.median(1)
    np.testing.assert_array_equal(x.gather(1, i.unsqueeze(1)).squeeze(1).numpy(), v.numpy())
    np.testing.assert_array_equal(v.numpy(), [2.0, 1.0])


def test_unique():
    x = np.array([[3, 1, 2], [1, 3, 3]])
    check(lambda t: t.unique(), [x], grad=False)
    check(lambda t: tuple(t.unique(return_inverse=True, return_counts=True)), [x], grad=False)
    check(lambda t: tuple(gg.unique(t, return_counts=True)), [rand(6).round()], grad=False,
          torch_fn=lambda t: tuple(torch.unique(t, return_counts=True)))
    rows = np.array([[1, 2], [1, 2], [0, 5]])
    check(lambda t: tuple(t.unique(dim=0, return_inverse=True, return_counts=True)), [rows],
          grad=False)
    check(lambda t: t.unique(dim=1), [np.array([[1, 1, 0], [2, 2, 5]])], grad=False)


def test_var_std_mean_aminmax():
    x = rand(3, 4)
    check(lambda t: tuple(gg.var_mean(t, 1)), [x], torch_fn=lambda t: tuple(torch.var_mean(t, 1)))
    check(lambda t: tuple(gg.std_mean(t, dim=0, correction=0, keepdim=True)), [x],
          torch_fn=lambda t: tuple(torch.std_mean(t, dim=0, correction=0, keepdim=True)))
    check(lambda t: tuple(gg.std_mean(t)), [x], torch_fn=lambda t: tuple(torch.std_mean(t)))
    check(lambda t: tuple(t.aminmax()), [x])
    check(lambda t: tuple(t.aminmax(dim=1, keepdim=True)), [x])
    r = gg.aminmax(gg.tensor(x), dim=0)
    assert r.min.shape == r.max.shape == (4,)


def test_isclose_allclose_count_nonzero():
    a = np.array([1.0, 2.0, np.nan, np.inf, -np.inf, 1e-9])
    b = np.array([1.0 + 1e-6, 2.1, np.nan, np.inf, np.inf, 0.0])
    for eq in (False, True):
        check(lambda x, y, e=eq: x.isclose(y, equal_nan=e), [a, b], grad=False)
    check(lambda x, y: torch.isclose(x, y, rtol=0.1, atol=0.0) if isinstance(x, torch.Tensor)
          else gg.isclose(x, y, rtol=0.1, atol=0.0), [rand(3, 1), rand(4)], grad=False)
    assert gg.allclose(gg.tensor(a[:2]), gg.tensor(a[:2] + 1e-9))
    assert not gg.allclose(gg.tensor(a[:2]), gg.tensor(b[:2]))
    z = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])
    check(lambda t: t.count_nonzero(), [z], grad=False)
    check(lambda t: t.count_nonzero(dim=0), [z], grad=False)
    check(lambda t: gg.count_nonzero(t, axis=(0, 1)) if not isinstance(t, torch.Tensor)
          else torch.count_nonzero(t, dim=(0, 1)), [z], grad=False)


def test_bincount_histc():
    i = np.array([0, 3, 3, 1, 5])
    check(lambda t: t.bincount(), [i], grad=False)
    check(lambda t: t.bincount(minlength=9), [i], grad=False)
    w = rand(5)
    check(lambda t, u: t.bincount(u), [i, w], grad=False)
    check(lambda t: t.bincount(), [np.zeros(0, dtype=np.int64)], grad=False)
    with pytest.raises(RuntimeError, match="non-negative"):
        gg.bincount(gg.tensor([1, -1]))
    x = rand(50).astype(np.float32)
    check(lambda t: t.histc(7), [x], grad=False)
    check(lambda t: t.histc(4, min=-1, max=1), [x], grad=False)
    check(lambda t: t.histc(4, min=0, max=3), [np.array([1.0, 2.0, 1.0, 3.0, 5.0])], grad=False)


def test_axis_alias_on_existing_reductions():
    x = rand(3, 4)
    for name in ("sum", "mean", "amax", "logsumexp", "var"):
        check(lambda t, n=name: getattr(t, n)(axis=1), [x],
              torch_fn=lambda t, n=name: getattr(t, n)(dim=1))
    check(lambda t: tuple(t.max(axis=0)), [x], torch_fn=lambda t: tuple(t.max(dim=0)))
    check(lambda t: t.argmax(axis=1), [x], grad=False, torch_fn=lambda t: t.argmax(dim=1))


@pytest.mark.parametrize("op", ["maximum", "minimum", "fmax", "fmin", "logaddexp"])
def test_cupy_doubling_scan_matches_numpy_accumulate(op):
    """The CUDA backend's accumulate (CuPy lacks ufunc.accumulate for these), run on NumPy."""
    import types

    from gpugrad.backend.cupy_backend import CupyBackend

    x = rand(3, 13, 2)
    x[1, 4, 0] = np.nan
    fake = types.SimpleNamespace(xp=np)
    for axis in (0, 1, 2):
        np.testing.assert_allclose(CupyBackend.accumulate(fake, op, x, axis),
                                   getattr(np, op).accumulate(x, axis=axis), rtol=1e-14)


def test_scans_second_order():
    # (away from zeros: at an exact zero the first derivative is exact, the second is not)
    x = rand(3, 4)
    gradcheck(second_order(lambda t: t.cumprod(1)), x)
    gradcheck(second_order(lambda t: t.logcumsumexp(1)), rand(2, 4))
    gradcheck(second_order(lambda t: t.prod(0)), rand(3, 2))


def test_bad_inputs_name_what_is_wrong():
    x = gg.tensor(rand(2, 3))
    with pytest.raises(IndexError, match="out of range"):
        x.cumsum(2)
    with pytest.raises(IndexError, match="out of range"):
        x.sort(-3)
    with pytest.raises(RuntimeError, match=r"1-d integer.*\(2, 2\)"):
        gg.bincount(gg.tensor([[1, 2], [0, 1]]))
    with pytest.raises(RuntimeError, match="int64"):
        gg.histc(gg.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="floating"):
        gg.logcumsumexp(gg.tensor([1, 2]), 0)
    with pytest.raises(IndexError, match=r"empty dimension 1 \(shape \(2, 0\)\)"):
        gg.median(gg.zeros(2, 0), 1)
    with pytest.raises(TypeError, match="both dim= and its alias axis="):
        gg.sum(x, dim=0, axis=1)
