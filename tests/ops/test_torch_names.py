"""PyTorch names real programs use (`import gpugrad as torch`): the pointwise rows erfinv,
frac, sinc, deg2rad, rad2deg, logit, xlogy, logaddexp2, heaviside, nan_to_num, and the
functions clamp_min/max, float_power, positive, signbit, addcmul/addcdiv, softmax,
log_softmax, masked_fill, select, numel, is_tensor, is_floating_point, broadcast_tensors,
fill_diagonal_, triu_/tril_, each against PyTorch on random inputs (broadcasting and edge
shapes), with float64 gradchecks and the errors PyTorch raises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpugrad as gg
from tests.oracle import check, gradcheck, rand

# (name, input range): unary rows compared with torch on broadcast-free edge shapes too.
UNARY = [("erfinv", (-0.95, 0.95)), ("frac", (-4.0, 4.0)), ("sinc", (-3.0, 3.0)),
         ("deg2rad", (-400.0, 400.0)), ("rad2deg", (-7.0, 7.0)), ("logit", (0.05, 0.95))]
SHAPES = [(), (0,), (5,), (3, 4), (2, 0, 3), (2, 3, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name,domain", UNARY)
def test_unary_rows_match_torch(name, domain, shape):
    x = rand(*shape, low=domain[0], high=domain[1])
    if name == "sinc" and x.size:
        x.reshape(-1)[0] = 0.0  # sinc(0) = 1 and its gradient 0
    check(lambda t: getattr(t, name)(), [x], atol=1e-9, rtol=1e-8)
    check(lambda t: getattr(gg, name)(t), [x], lambda t: getattr(torch, name)(t), atol=1e-9,
          rtol=1e-8)
    check(lambda t: getattr(t, name)(), [x.astype(np.float32)], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["erfinv", "sinc", "deg2rad", "rad2deg", "logit"])
def test_integer_inputs_compute_in_float32(name):
    a = np.array([0, 1, -1, 3], dtype=np.int64)
    g = getattr(gg, name)(gg.tensor(a))
    t = getattr(torch, name)(torch.tensor(a))
    assert g.dtype == gg.float32 and t.dtype == torch.float32
    np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-6, equal_nan=True)


def test_erfinv_extremes():
    x = np.array([-1.0, 1.0, 0.0, -0.0, 1.5, np.nan, 1 - 1e-15, -1 + 1e-12])
    np.testing.assert_allclose(gg.erfinv(gg.tensor(x)).numpy(),
                               torch.erfinv(torch.tensor(x)).numpy(), rtol=1e-12,
                               equal_nan=True)


@pytest.mark.parametrize("eps", [None, 0.1, 0.0])
def test_logit_eps_matches_torch(eps):
    x = rand(4, 5, low=-0.2, high=1.2)
    x[0, :3] = [0.1, 0.9, 0.5]  # on the clamp's bounds: PyTorch's closed interval
    fn = (lambda t: t.logit(eps)) if eps is not None else (lambda t: t.logit())
    if eps is None:
        x = np.clip(x, 0.02, 0.98)
    check(fn, [x], atol=1e-9, rtol=1e-8)


def test_frac_keeps_sign_and_refuses_integers():
    check(lambda t: gg.frac(t), [np.array([-2.5, -0.25, 0.0, 3.75, 7.0])], torch.frac)
    with pytest.raises(TypeError, match="int64"):
        gg.frac(gg.tensor([1, 2]))


@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 1), (4,)), ((), (2, 3)),
                                   ((2, 1, 3), (4, 1)), ((0, 3), (3,))])
def test_xlogy_and_logaddexp2_broadcast(sa, sb):
    a, b = rand(*sa), rand(*sb, low=0.1, high=3.0)
    if a.size:
        a.reshape(-1)[0] = 0.0
    check(lambda x, y: gg.xlogy(x, y), [a, b], torch.xlogy, atol=1e-9, rtol=1e-8)
    check(lambda x, y: x.xlogy(y), [a, b], atol=1e-9, rtol=1e-8)
    check(lambda x, y: gg.logaddexp2(x, y), [a, rand(*sb)], torch.logaddexp2, atol=1e-9,
          rtol=1e-8)
    check(lambda x, y: x.logaddexp2(y), [a.astype(np.float32), rand(*sb, dtype=np.float32)],
          atol=1e-5, rtol=1e-5)


def test_xlogy_zero_and_nan_rules_and_numbers():
    a = np.array([0.0, 0.0, 0.0, 2.0, 3.0])
    b = np.array([0.0, np.nan, 5.0, 0.0, np.inf])
    check(lambda x, y: gg.xlogy(x, y), [a, b], torch.xlogy)
    x = rand(3, dtype=np.float32)
    check(lambda t: gg.xlogy(t, 2.5), [x], lambda t: torch.xlogy(t, 2.5), atol=1e-6)
    check(lambda t: gg.xlogy(2, t), [np.abs(x)], lambda t: torch.xlogy(2, t), atol=1e-6)
    ints = gg.xlogy(gg.tensor([0, 1, 2]), gg.tensor([3, 4, 5]))
    assert ints.dtype == gg.float32


def test_heaviside_matches_torch():
    x = rand(4, 5)
    x[0, :3] = [0.0, np.nan, -0.0]
    for v in (rand(5), rand(4, 1), rand()):
        check(lambda a, b: gg.heaviside(a, b), [x, v], torch.heaviside, grad=False)
    i = np.array([-2, 0, 3])
    check(lambda a, b: a.heaviside(b), [i, np.array([7])], grad=False)
    b = np.array([True, False, False])
    check(lambda a, v: gg.heaviside(a, v), [b, np.array([True])], torch.heaviside, grad=False)


def test_heaviside_errors():
    with pytest.raises(RuntimeError, match="different dtypes.*float32.*float64"):
        gg.heaviside(gg.zeros(3), gg.zeros(3, dtype=gg.float64))
    with pytest.raises(TypeError, match="values.*int"):
        gg.heaviside(gg.zeros(3), 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_nan_to_num_defaults_and_values(dtype):
    x = rand(3, 4).astype(dtype)
    x[0, :3] = [np.nan, np.inf, -np.inf]
    check(lambda t: gg.nan_to_num(t), [x], torch.nan_to_num, grad=dtype != np.float16)
    check(lambda t: t.nan_to_num(nan=1.5, posinf=9.0, neginf=-7.0), [x], grad=False)
    check(lambda t: t.nan_to_num(posinf=2.0), [x], grad=False)
    i = gg.tensor([1, 2])
    assert gg.nan_to_num(i).dtype == gg.int64 and gg.nan_to_num(i).tolist() == [1, 2]


def test_nan_to_num_in_place_and_complex():
    x = gg.tensor([np.nan, 1.0, -np.inf])
    assert x.nan_to_num_(nan=3.0) is x
    np.testing.assert_array_equal(x.numpy(), [3.0, 1.0, np.finfo(np.float32).min])
    z = np.array([complex(np.nan, 1.0), complex(2.0, np.inf)])
    np.testing.assert_array_equal(gg.nan_to_num(gg.tensor(z)).numpy(),
                                  torch.nan_to_num(torch.tensor(z)).numpy())


@pytest.mark.parametrize("bound", ["number", "tensor"])
def test_clamp_min_max(bound):
    x = rand(3, 4)
    b = 0.3 if bound == "number" else rand(4)
    args = [x] + ([b] if bound == "tensor" else [])
    if bound == "number":
        check(lambda t: gg.clamp_min(t, 0.3), args, lambda t: torch.clamp_min(t, 0.3))
        check(lambda t: t.clamp_max(0.3), args)
    else:
        check(lambda t, u: gg.clamp_min(t, u), args, torch.clamp_min)
        check(lambda t, u: t.clamp_max(u), args)
    assert gg.clamp_min(gg.tensor([1, 2]), 1.5).dtype == gg.float32


def test_float_power_dtypes():
    x = rand(3, 4, dtype=np.float32)
    check(lambda t: gg.float_power(t, 2.5), [np.abs(x)], lambda t: torch.float_power(t, 2.5))
    check(lambda t, e: t.float_power(e), [np.abs(x), rand(4, dtype=np.float32)])
    check(lambda e: gg.float_power(2, e), [rand(4)], lambda e: torch.float_power(2, e))
    i = gg.float_power(gg.tensor([1, 2, 3]), 2)
    assert i.dtype == gg.float64 and i.tolist() == [1.0, 4.0, 9.0]
    z = gg.float_power(gg.tensor([0.5, 2.0]), 1j)
    np.testing.assert_allclose(z.numpy(), torch.float_power(torch.tensor([0.5, 2.0]),
                                                            1j).numpy())
    with pytest.raises(TypeError, match="Tensor"):
        gg.float_power(2, 3)


def test_float_power_in_place_needs_double():
    x = gg.tensor([1.5, 2.0], dtype=gg.float64)
    assert x.float_power_(2) is x and x.tolist() == [2.25, 4.0]
    with pytest.raises(RuntimeError, match="float_power_ has dtype gpugrad.float32.*float64"):
        gg.ones(2).float_power_(2)
    with pytest.raises(RuntimeError, match="float_power_"):
        torch.ones(2).float_power_(2)


def test_positive_and_signbit():
    x = gg.tensor([1.0, -2.0])
    assert gg.positive(x) is x and x.positive() is x
    with pytest.raises(RuntimeError, match="bool"):
        gg.positive(gg.tensor([True]))
    a = np.array([-0.0, 0.0, -1.5, np.nan, -np.nan, np.inf, -np.inf], dtype=np.float32)
    assert gg.signbit(gg.tensor(a)).tolist() == torch.signbit(torch.tensor(a)).tolist()
    i = np.array([-3, 0, 5])
    assert gg.tensor(i).signbit().tolist() == torch.signbit(torch.tensor(i)).tolist()
    assert not gg.signbit(x).requires_grad


def test_addcmul_addcdiv_top_level():
    a, b, c = rand(3, 1), rand(4), rand(2, 3, 4, low=0.5)
    check(lambda x, y, z: gg.addcmul(x, y, z, value=0.5), [a, b, c],
          lambda x, y, z: torch.addcmul(x, y, z, value=0.5))
    check(lambda x, y, z: gg.addcdiv(x, y, z, value=-2.0), [a, b, c],
          lambda x, y, z: torch.addcdiv(x, y, z, value=-2.0))
    with pytest.raises(RuntimeError, match="integer division.*int64.*int64"):
        gg.addcdiv(gg.tensor([1]), gg.tensor([1]), gg.tensor([2]))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_top_level(name):
    x = rand(3, 4, 5)
    for dim in (0, -1, 1):
        check(lambda t, d=dim: getattr(gg, name)(t, d), [x],
              lambda t, d=dim: getattr(torch, name)(t, d))
    check(lambda t: getattr(gg, name)(t, 1, dtype=gg.float64), [x.astype(np.float32)],
          lambda t: getattr(torch, name)(t, 1, dtype=torch.float64))


def test_masked_fill_matches_torch():
    x, m = rand(3, 4), np.random.default_rng(0).random((4,)) < 0.5
    check(lambda t: gg.masked_fill(t, gg.tensor(m), -1.5), [x],
          lambda t: torch.masked_fill(t, torch.tensor(m), -1.5))
    check(lambda t, v: gg.masked_fill(t, gg.tensor(m), v), [x, rand()],
          lambda t, v: torch.masked_fill(t, torch.tensor(m), v))
    i = gg.tensor([1, 2, 3]).masked_fill(gg.tensor([True, False, True]), 2.7)
    assert i.dtype == gg.int64 and i.tolist() == [2, 2, 2]


def test_masked_fill_errors():
    with pytest.raises(RuntimeError, match="boolean masks.*float32"):
        gg.masked_fill(gg.zeros(3), gg.tensor([1.0, 0.0, 0.0]), 1.0)
    with pytest.raises(RuntimeError, match="0-dimensional.*1 dimension.*\\(2,\\)"):
        gg.zeros(3).masked_fill(gg.tensor([True, False, True]), gg.zeros(2))


@pytest.mark.parametrize("shape,dim,index", [((3, 4), 1, 2), ((3, 4), -1, -1), ((5,), 0, 3),
                                             ((2, 3, 4), 0, -2), ((2, 0, 3), 2, 1)])
def test_select_matches_torch(shape, dim, index):
    check(lambda t: gg.select(t, dim, index), [rand(*shape)],
          lambda t: torch.select(t, dim, index))
    check(lambda t: t.select(dim, index), [rand(*shape)])


def test_select_errors():
    with pytest.raises(IndexError, match=r"index 5 out of range for tensor of size \[3, 4\] "
                                         "at dimension 1"):
        gg.select(gg.zeros(3, 4), 1, 5)
    with pytest.raises(IndexError, match="out of range"):
        gg.select(gg.zeros(3, 4), 2, 0)
    with pytest.raises(IndexError, match="0-dim"):
        gg.select(gg.zeros(()), 0, 0)


def test_numel_is_tensor_is_floating_point():
    t = gg.zeros(2, 3, 4)
    assert gg.numel(t) == torch.numel(torch.zeros(2, 3, 4)) == 24
    assert gg.numel(gg.zeros(0, 3)) == 0
    assert gg.is_tensor(t) and gg.is_tensor(gg.nn.Parameter(gg.zeros(1)))
    assert not gg.is_tensor(np.zeros(2)) and not gg.is_tensor(1.0)
    assert gg.is_floating_point(t) and gg.is_floating_point(t.half())
    assert not gg.is_floating_point(gg.tensor([1])) and not gg.is_floating_point(
        gg.tensor([1j]))
    with pytest.raises(TypeError, match="must be Tensor, not int"):
        gg.numel(3)
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        gg.is_floating_point(1.0)


@pytest.mark.parametrize("shapes", [[(3, 1), (2,)], [(2, 1, 4), (3, 1), ()], [(0, 3), (1,)],
                                    [(4,)]])
def test_broadcast_tensors_matches_torch(shapes):
    arrays = [rand(*s) for s in shapes]
    check(lambda *ts: gg.broadcast_tensors(*ts), arrays,
          lambda *ts: torch.broadcast_tensors(*ts))


def test_broadcast_tensors_error_names_shapes():
    with pytest.raises(gg.ShapeError, match=r"\(3, 4\) and \(2,\)"):
        gg.broadcast_tensors(gg.zeros(3, 4), gg.zeros(2))


@pytest.mark.parametrize("shape,wrap", [((3, 3), False), ((5, 3), False), ((5, 3), True),
                                        ((7, 2), True), ((2, 5), True), ((3, 3, 3), False)])
def test_fill_diagonal_matches_torch(shape, wrap):
    a = rand(*shape)
    g, t = gg.tensor(a), torch.tensor(a)
    assert g.fill_diagonal_(2.5, wrap=wrap) is g
    t.fill_diagonal_(2.5, wrap=wrap)
    np.testing.assert_array_equal(g.numpy(), t.numpy())


def test_fill_diagonal_grad_and_errors():
    x = gg.tensor(rand(3, 3), requires_grad=True)
    y = x * 1
    y.fill_diagonal_(0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 1 - np.eye(3))
    with pytest.raises(RuntimeError, match=r"\(3,\)"):
        gg.zeros(3).fill_diagonal_(1.0)
    with pytest.raises(RuntimeError, match=r"equal length.*\(2, 3, 3\)"):
        gg.zeros(2, 3, 3).fill_diagonal_(1.0)


@pytest.mark.parametrize("name", ["triu_", "tril_"])
@pytest.mark.parametrize("diagonal", [0, 1, -1])
def test_triangle_in_place(name, diagonal):
    a = rand(2, 3, 4)
    g, t = gg.tensor(a), torch.tensor(a)
    assert getattr(g, name)(diagonal) is g
    getattr(t, name)(diagonal)
    np.testing.assert_array_equal(g.numpy(), t.numpy())


@pytest.mark.parametrize("name", ["erfinv_", "frac_", "sinc_", "deg2rad_", "rad2deg_",
                                  "logit_", "clamp_min_", "clamp_max_"])
def test_in_place_forms(name):
    a = rand(3, 4, low=0.1, high=0.9)
    args = (0.5,) if name.startswith("clamp") else ()
    g, t = gg.tensor(a), torch.tensor(a)
    assert getattr(g, name)(*args) is g
    getattr(t, name)(*args)
    np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-12)


# --- float64 finite differences -------------------------------------------------------------
def test_gradchecks():
    gradcheck(gg.erfinv, rand(3, 4, low=-0.9, high=0.9))
    gradcheck(gg.frac, rand(3, 4, low=0.1, high=0.9) + np.arange(4))
    gradcheck(gg.sinc, np.array([-1.3, -0.4, 0.2, 0.7, 1.9, 2.5]))
    gradcheck(gg.deg2rad, rand(5))
    gradcheck(gg.rad2deg, rand(5))
    gradcheck(gg.logit, rand(3, 4, low=0.1, high=0.9))
    gradcheck(lambda t: gg.logit(t, 0.2), np.array([0.05, 0.3, 0.5, 0.7, 0.95]))
    gradcheck(gg.xlogy, rand(3, 1), rand(4, low=0.2, high=2.0))
    gradcheck(gg.logaddexp2, rand(3, 1), rand(4))
    gradcheck(gg.nan_to_num, rand(3, 4))
    gradcheck(lambda t: gg.float_power(t, 2.5), rand(4, low=0.5, high=2.0))
    gradcheck(lambda t: gg.clamp_min(t, 0.1), np.array([-1.0, -0.3, 0.5, 1.2]))
    gradcheck(lambda a, b, c: gg.addcdiv(a, b, c, value=0.7), rand(3, 1), rand(4),
              rand(3, 4, low=0.5))
    gradcheck(lambda t, v: gg.masked_fill(t, gg.tensor([True, False, True]), v), rand(2, 3),
              rand())
    gradcheck(lambda t: gg.select(t, 1, -1), rand(2, 3, 4))
    gradcheck(lambda a, b: gg.broadcast_tensors(a, b)[0] * gg.broadcast_tensors(a, b)[1],
              rand(3, 1), rand(4))


def test_new_rows_are_in_the_in_place_and_method_tables():
    for name in ("erfinv", "frac", "sinc", "deg2rad", "rad2deg", "logit", "xlogy",
                 "logaddexp2", "heaviside", "nan_to_num", "clamp_min", "clamp_max",
                 "float_power", "positive", "signbit", "select", "fill_diagonal_",
                 "nan_to_num_", "triu_", "tril_"):
        assert callable(getattr(gg.Tensor, name)), name
    for name in ("softmax", "log_softmax", "masked_fill", "nan_to_num", "addcmul", "addcdiv",
                 "erfinv", "frac", "heaviside", "select", "numel", "is_tensor",
                 "is_floating_point", "broadcast_tensors", "xlogy", "logit", "sinc",
                 "deg2rad", "rad2deg", "signbit", "clamp_min", "clamp_max", "logaddexp2",
                 "float_power", "positive"):
        assert callable(getattr(gg, name)), name
        assert getattr(gg, name).__doc__, name


@pytest.mark.gpu
def test_new_rows_on_the_gpu_match_the_cpu():
    """The generated CUDA kernels of the new rows (forward and backward) against NumPy."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.05, 0.95, (33, 7))
    x[0, :3] = [np.nan, np.inf, -np.inf]
    cases = [(gg.erfinv, ()), (gg.frac, ()), (gg.sinc, ()), (gg.deg2rad, ()),
             (gg.logit, ()), (lambda t: gg.logit(t, 0.2), ()), (gg.nan_to_num, ()),
             (lambda t: gg.xlogy(t, t * 2), ()), (lambda t: gg.logaddexp2(t, 1 - t), ()),
             (lambda t: gg.heaviside(t - 0.5, t), ())]
    for dt in (gg.float32, gg.float64):
        for fn, _ in cases:
            c = gg.tensor(x, dtype=dt, requires_grad=True)
            d = gg.tensor(x, dtype=dt, device="cuda", requires_grad=True)
            yc, yd = fn(c), fn(d)
            np.testing.assert_allclose(yd.detach().cpu().numpy(), yc.detach().numpy(),
                                       rtol=1e-5, atol=1e-6, equal_nan=True)
            if yc.grad_fn is not None:
                (gc,) = gg.autograd.grad(yc.sum(), c, allow_unused=True)
                (gd,) = gg.autograd.grad(yd.sum(), d, allow_unused=True)
                if gc is not None:
                    np.testing.assert_allclose(gd.cpu().numpy(), gc.numpy(), rtol=1e-5,
                                               atol=1e-6, equal_nan=True)
