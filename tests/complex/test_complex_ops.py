"""Complex tensors: creation, promotion, and every complex op's values and gradients against
PyTorch (random complex inputs, broadcasting), plus a complex128 finite-difference check
of each. The same op tests run on the GPU (marked `gpu`) where one answers."""

import numpy as np
import pytest
import torch
from oracle import check_complex, crand, gradcheck_complex, rand

import gpugrad as gg

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def away(*shape, margin=0.3):
    """Complex values with modulus at least `margin` (abs/angle/log/1/z are smooth there)."""
    z = crand(*shape)
    small = np.abs(z) < margin
    return np.where(small, z / np.maximum(np.abs(z), 1e-12) * (margin + 0.5) + small * 0.5, z)


# --- creation and dtypes --------------------------------------------------------------------
def test_python_complex_data_becomes_complex64():
    assert gg.tensor([1 + 2j, 3.0]).dtype is gg.complex64
    assert gg.tensor(1j).dtype is gg.complex64
    assert gg.tensor([[1, 2j]]).dtype is gg.complex64
    assert gg.full((2,), 1j).dtype is gg.complex64
    assert gg.tensor([1 + 2j]).tolist() == [1 + 2j]
    assert complex(gg.tensor(1 - 1j)) == 1 - 1j


@pytest.mark.parametrize("np_dt, dt", [(np.complex64, gg.complex64),
                                       (np.complex128, gg.complex128)])
def test_numpy_complex_arrays_keep_their_dtype(np_dt, dt):
    a = crand(2, 3, dtype=np_dt)
    assert gg.tensor(a).dtype is dt
    assert gg.from_numpy(a).dtype is dt
    np.testing.assert_array_equal(gg.tensor(a).numpy(), a)
    assert gg.tensor(a).is_complex() and gg.is_complex(gg.tensor(a))
    assert gg.zeros(2, dtype=dt).dtype is dt and gg.ones(2, dtype=dt).numpy().dtype == np_dt


def test_complex_tensors_can_require_grad():
    z = gg.zeros(3, dtype=gg.complex64, requires_grad=True)
    assert z.requires_grad


def test_randn_complex_has_unit_power():
    z = gg.randn(20000, dtype=gg.complex64)
    assert z.dtype is gg.complex64
    assert abs((z.abs() ** 2).mean().item() - 1) < 0.05
    assert abs(z.real.var().item() - 0.5) < 0.03
    r = gg.rand(100, dtype=gg.complex128)
    assert r.dtype is gg.complex128 and 0 <= r.real.min().item() and r.imag.max().item() < 1


_DTYPES = {"float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64),
           "complex64": (np.complex64, torch.complex64),
           "complex128": (np.complex128, torch.complex128), "int64": (np.int64, torch.int64)}


@pytest.mark.parametrize("a", list(_DTYPES))
@pytest.mark.parametrize("b", list(_DTYPES))
@pytest.mark.parametrize("zero_dim", [False, True])
def test_promotion_matches_torch(a, b, zero_dim):
    na, ta = _DTYPES[a]
    nb, tb = _DTYPES[b]
    shape_b = () if zero_dim else (3,)
    x = (gg.ones(3, dtype=gg.tensor(np.ones(1, na)).dtype) +
         gg.tensor(np.ones(shape_b, nb)))
    y = torch.ones(3, dtype=ta) + torch.ones(shape_b, dtype=tb)
    assert str(x.dtype).split(".")[-1] == str(y.dtype).split(".")[-1]


@pytest.mark.parametrize("dt", ["float32", "float64", "complex64", "complex128", "int64"])
@pytest.mark.parametrize("scalar", [1j, 2.5, 3, 1 + 0j])
def test_scalar_promotion_matches_torch(dt, scalar):
    nd, td = _DTYPES[dt]
    x = gg.tensor(np.ones(3, nd)) * scalar
    y = torch.ones(3, dtype=td) * scalar
    assert str(x.dtype).split(".")[-1] == str(y.dtype).split(".")[-1]


def test_gg_promote_types_float_with_complex():
    from gpugrad._dtype import promote_types

    assert promote_types(gg.float64, gg.complex64) is gg.complex128
    assert promote_types(gg.complex64, gg.float32) is gg.complex64
    assert promote_types(gg.float16, gg.complex64) is gg.complex64
    assert promote_types(gg.float32, gg.complex128) is gg.complex128


# --- elementwise ------------------------------------------------------------------------------
UNARY = [
    ("neg", lambda z: -z, crand),
    ("exp", lambda z: z.exp(), crand),
    ("log", lambda z: z.log(), away),
    ("log1p", lambda z: z.log1p(), lambda *s: away(*s) + 2),
    ("sqrt", lambda z: z.sqrt(), away),
    ("sin", lambda z: z.sin(), crand),
    ("cos", lambda z: z.cos(), crand),
    ("tanh", lambda z: z.tanh(), lambda *s: crand(*s) * 0.5),
    ("sigmoid", lambda z: z.sigmoid(), lambda *s: crand(*s) * 0.5),
    ("abs", lambda z: z.abs(), away),
    ("abs_builtin", lambda z: abs(z), away),
    ("angle", lambda z: z.angle(), away),
    ("conj", lambda z: z.conj(), crand),
    ("conj_physical", lambda z: z.conj_physical(), crand),
    ("real", lambda z: z.real, crand),
    ("imag", lambda z: z.imag, crand),
    ("reciprocal", lambda z: 1 / z, away),
    ("square", lambda z: z ** 2, crand),
    ("cube", lambda z: z ** 3, crand),
    ("pow_half", lambda z: z ** 0.5, away),
    ("pow_complex", lambda z: z ** (0.5 + 1j), away),
    ("rpow", lambda z: 2 ** z, crand),
    ("rpow_complex", lambda z: (1 + 1j) ** z, crand),
    ("mul_complex_scalar", lambda z: z * (2 - 3j), crand),
    ("add_complex_scalar", lambda z: (1j + z) - 2j, crand),
    ("div_complex_scalar", lambda z: (1 - 1j) / z + z / (0.5j), away),
    ("real_scalar", lambda z: z * 2.5 - 1.0, crand),
    ("view_as_real", None, crand),
    ("sum", lambda z: z.sum(), crand),
    ("sum_dim", lambda z: z.sum(1, keepdim=True), crand),
    ("mean", lambda z: z.mean(0), crand),
    ("norm", lambda z: z.norm(), crand),
    ("norm_dim", lambda z: z.norm(dim=1), crand),
    ("var", lambda z: z.var(0), crand),
    ("std", lambda z: z.std(), crand),
    ("sgn", lambda z: z.sgn(), away),
    ("abs_sq_sum", lambda z: (z.abs() ** 2).sum(), crand),
]


def _unary(name, fn):
    if name == "view_as_real":
        return lambda z: (gg if isinstance(z, gg.Tensor) else torch).view_as_real(z)
    return fn


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("name, fn, make", UNARY, ids=[u[0] for u in UNARY])
def test_unary_matches_torch(name, fn, make, dtype, device):
    tol = dict(atol=1e-10, rtol=1e-9) if dtype == np.complex128 else dict(atol=2e-5, rtol=2e-4)
    check_complex(_unary(name, fn), [make(3, 4).astype(dtype)], device=device, **tol)


@pytest.mark.parametrize("name, fn, make", UNARY, ids=[u[0] for u in UNARY])
def test_unary_gradcheck(name, fn, make):
    gradcheck_complex(_unary(name, fn), make(2, 3))


BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
    ("pow", lambda a, b: a ** b),
    ("add_alpha", lambda a, b: a.add(b, alpha=2)),
    ("mixed", lambda a, b: (a * b - a / b).exp() * b),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, fn", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (4,)), ((2, 1, 3), (4, 1))])
def test_binary_complex_complex_matches_torch(name, fn, shapes, device):
    sa, sb = shapes
    check_complex(fn, [away(*sa) * 0.7, away(*sb) * 0.7], device=device, atol=1e-9, rtol=1e-8)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, fn", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("real_first", [True, False])
def test_binary_real_with_complex_matches_torch(name, fn, real_first, device):
    """A real input of a complex op gets the real part of the complex cotangent."""
    z, x = away(3, 1) * 0.7, rand(4, low=0.5, high=1.5)
    ins = [x, z] if real_first else [z, x]
    check_complex(fn, ins, device=device, atol=1e-9, rtol=1e-8)


@pytest.mark.parametrize("device", DEVICES)
def test_float32_with_complex64_and_float64_promotion_gradients(device):
    check_complex(lambda a, b: a * b, [rand(3).astype(np.float32), crand(3, dtype=np.complex64)],
                  device=device, atol=1e-5, rtol=1e-5)
    check_complex(lambda a, b: a * b, [rand(3), crand(3, dtype=np.complex64)], device=device,
                  atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name, fn", BINARY, ids=[b[0] for b in BINARY])
def test_binary_gradcheck(name, fn):
    gradcheck_complex(fn, away(2, 1) * 0.7, away(3) * 0.7)
    gradcheck_complex(fn, away(2, 1) * 0.7, rand(3, low=0.5, high=1.5))


@pytest.mark.parametrize("device", DEVICES)
def test_complex_constructors_match_torch(device):
    check_complex(lambda a, b: (gg if isinstance(a, gg.Tensor) else torch).complex(a, b),
                  [rand(3, 1), rand(4)], device=device)
    check_complex(lambda r: (gg if isinstance(r, gg.Tensor) else torch).view_as_complex(r),
                  [rand(3, 4, 2)], device=device)
    check_complex(lambda a, b: (gg if isinstance(a, gg.Tensor) else torch).polar(a, b),
                  [rand(5, low=0.5), rand(5)], device=device)
    check_complex(lambda x: x.to(torch.complex128 if isinstance(x, torch.Tensor)
                                 else gg.complex128) * (1 + 2j), [rand(4)], device=device)
    check_complex(lambda x: x.angle(), [rand(4)], device=device)


def test_constructor_gradchecks():
    gradcheck_complex(lambda a, b: gg.complex(a, b), rand(3, 1), rand(4))
    gradcheck_complex(lambda r: gg.view_as_complex(r), rand(3, 2))
    gradcheck_complex(lambda a, b: gg.polar(a, b), rand(3, low=0.5), rand(3))
    gradcheck_complex(lambda x: x.to(gg.complex128) * (1 + 2j), rand(3))


def test_view_as_real_and_real_imag_are_views():
    z = gg.tensor(crand(2, 3))
    r = gg.view_as_real(z)
    assert r.shape == (2, 3, 2) and r.dtype is gg.float64
    with gg.no_grad():
        r[0, 0, 1] = 7.0
        z.real[1, 2] = -3.0
    assert z[0, 0].item().imag == 7.0 and z[1, 2].item().real == -3.0
    c = gg.view_as_complex(r)
    np.testing.assert_array_equal(c.numpy(), z.numpy())
    x = gg.tensor(rand(3))
    assert x.real is x


def test_in_place_write_through_real_view_is_caught():
    z = gg.tensor(crand(3), requires_grad=True)
    w = z * 2
    y = w.sin()  # saves w
    with gg.no_grad():
        w.real.zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.abs().sum().backward()


# --- linear algebra, shape, indexing -------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)),
                                    ((3, 4), (4,)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_matches_torch(shapes, device):
    sa, sb = shapes
    check_complex(lambda a, b: a @ b, [crand(*sa), crand(*sb)], device=device, atol=1e-9,
                  rtol=1e-8)


def test_matmul_gradcheck_and_transposed_operand():
    gradcheck_complex(lambda a, b: a @ b, crand(2, 3), crand(3, 2))
    gradcheck_complex(lambda a, b: a @ b.T, crand(2, 3), crand(2, 3))
    check_complex(lambda a, b: a @ b.T, [crand(3, 4), crand(5, 4)])


SHAPE_OPS = [
    ("reshape", lambda z: z.reshape(4, 3)),
    ("view", lambda z: z.view(-1)),
    ("flatten", lambda z: z.flatten()),
    ("transpose", lambda z: z.transpose(0, 1) * 1j),
    ("T", lambda z: z.T.exp()),
    ("permute", lambda z: z.unsqueeze(0).permute(2, 0, 1)),
    ("squeeze", lambda z: z[:1].squeeze(0)),
    ("expand", lambda z: z[:, :1].expand(3, 5) * z.sum()),
    ("cat", lambda z: (gg if isinstance(z, gg.Tensor) else torch).cat([z, z * 1j], 0)),
    ("stack", lambda z: (gg if isinstance(z, gg.Tensor) else torch).stack([z, z.conj()], 1)),
    ("split", lambda z: z.split(1, 0)),
    ("chunk", lambda z: z.chunk(2, 1)),
    ("getitem_basic", lambda z: z[1:, ::2]),
    ("getitem_int", lambda z: z[0] * z[2]),
    ("getitem_advanced", lambda z: z[[0, 0, 2], [1, 1, 3]]),
    ("getitem_mask", lambda z: z[z.real > 0]),
    ("index_select", lambda z: z.index_select(1, _index(z, [3, 0, 3]))),
    ("gather", lambda z: z.gather(1, _index(z, [[0, 1], [2, 2], [3, 0]]))),
    ("clone", lambda z: z.clone()),
    ("pad", lambda z: gg.pad(z, (1, 2)) if isinstance(z, gg.Tensor)
     else torch.nn.functional.pad(z, (1, 2))),
    ("dot", lambda z: z[0].dot(z[1])),
    ("outer", lambda z: z[0].outer(z[1])),
    ("where", lambda z: (gg if isinstance(z, gg.Tensor) else torch).where(z.real > 0, z, z * 2j)),
]


def _index(z, values):
    if isinstance(z, gg.Tensor):
        return gg.tensor(values, device=z.device)
    return torch.tensor(values)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, fn", SHAPE_OPS, ids=[s[0] for s in SHAPE_OPS])
def test_shape_and_index_ops_match_torch(name, fn, device):
    check_complex(fn, [crand(3, 4)], device=device)


@pytest.mark.parametrize("name, fn", SHAPE_OPS, ids=[s[0] for s in SHAPE_OPS])
def test_shape_and_index_ops_gradcheck(name, fn):
    gradcheck_complex(fn, crand(3, 4))


def test_setitem_complex_value():
    z = gg.tensor(crand(3), requires_grad=True)
    w = gg.tensor(crand(1), requires_grad=True)
    y = z * 1
    y[1] = w[0] * 2j
    (y.abs() ** 2).sum().backward()
    zt = torch.tensor(z.detach().numpy(), requires_grad=True)
    wt = torch.tensor(w.detach().numpy(), requires_grad=True)
    yt = zt * 1
    yt[1] = wt[0] * 2j
    (yt.abs() ** 2).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), zt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), atol=1e-12)


# --- errors -----------------------------------------------------------------------------------
def test_backward_on_complex_scalar_needs_a_real_loss():
    z = gg.tensor(crand(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="real"):
        (z * z).sum().backward()


def test_backward_on_complex_non_scalar_needs_gradient():
    z = gg.tensor(crand(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="gradient="):
        (z * z).backward()
    g = crand(3)
    (z * z).backward(gg.tensor(g))
    zt = torch.tensor(z.detach().numpy(), requires_grad=True)
    (zt * zt).backward(torch.tensor(g))
    np.testing.assert_allclose(z.grad.numpy(), zt.grad.numpy(), atol=1e-12)


def test_complex_op_errors():
    z = gg.tensor(crand(3))
    with pytest.raises(RuntimeError, match="imag"):
        _ = gg.tensor(rand(3)).imag
    with pytest.raises(TypeError, match="complex"):
        z.relu()
    with pytest.raises(RuntimeError, match="complex"):
        gg.view_as_real(gg.tensor(rand(3)))
    with pytest.raises(RuntimeError, match="size 2"):
        gg.view_as_complex(gg.tensor(rand(3, 3)))
    with pytest.raises(TypeError, match="same dtype"):
        gg.complex(gg.tensor(rand(3)), gg.tensor(rand(3).astype(np.float32)))
    with pytest.raises(TypeError, match="complex64"):
        gg.tensor(crand(2, 2)) @ gg.tensor(crand(2, 2, dtype=np.complex64))
