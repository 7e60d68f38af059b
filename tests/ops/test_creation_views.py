"""Creation, dtype and view ops against PyTorch: tril/triu, diagonal/diag/diag_embed,
meshgrid, eye, linspace/logspace, narrow, t/T/mT, view(dtype), Tensor.type, new_*."""

from __future__ import annotations

import numpy as np
import oracle
import pytest
import torch
from oracle import check, gradcheck, rand

import gpugrad as gg


@pytest.fixture(autouse=True, scope="module")
def _leave_the_oracle_stream_as_found():
    """Later modules' random inputs stay what they were without this module (some of
    their tests are sensitive to exactly which values they draw)."""
    state = oracle.RNG.bit_generator.state
    yield
    oracle.RNG.bit_generator.state = state


def _dt(t):
    return str(t.dtype).split(".")[-1]


def _same(ours, theirs):
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert _dt(ours) == _dt(theirs)
    np.testing.assert_allclose(np.asarray(ours.detach().numpy(), dtype=np.float64),
                               theirs.detach().numpy().astype(np.float64), rtol=1e-6, atol=1e-6)


# --- triangles and diagonals ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tril", "triu"])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 2), (2, 3, 4), (0, 3)])
@pytest.mark.parametrize("k", [-2, 0, 1, 7])
def test_tril_triu(name, shape, k):
    check(lambda x: getattr(x, name)(k), [rand(*shape)])
    check(lambda x: getattr(x, name)(diagonal=k), [rand(*shape)],
          torch_fn=lambda x: getattr(torch, name)(x, diagonal=k))


def test_tril_triu_gradcheck_and_errors():
    gradcheck(lambda x: gg.tril(x, -1) * 2 + gg.triu(x, 1), rand(2, 3, 3))
    for name in ("tril", "triu"):
        with pytest.raises(RuntimeError, match=rf"{name}: .*at least 2 dimensions.*\(3,\)"):
            getattr(gg, name)(gg.zeros(3))


@pytest.mark.parametrize("args", [(0, 0, 1), (1, 0, 1), (-1, 0, 1), (2, 1, 2), (-1, 2, 0),
                                  (1, -1, -3), (5, 0, 1)])
def test_diagonal_matches_torch(args):
    check(lambda x: x.diagonal(*args), [rand(3, 4, 5)])
    check(lambda x: x.diagonal(offset=args[0], dim1=args[1], dim2=args[2]), [rand(3, 4, 5)],
          torch_fn=lambda x: torch.diagonal(x, offset=args[0], dim1=args[1], dim2=args[2]))
    gradcheck(lambda x: gg.diagonal(x, *args), rand(3, 4, 5))


def test_diagonal_is_a_view_tracked_by_autograd():
    x = gg.zeros(3, 3)
    x.diagonal().fill_(1.0)
    np.testing.assert_array_equal(x.numpy(), np.eye(3))
    a = gg.ones(3, 3, requires_grad=True)
    y = a * 1
    d = y.diagonal()
    z = (y * y).sum()
    d.mul_(2)  # writes y through the view: y was saved by y * y
    with pytest.raises(RuntimeError):
        z.backward()
    with pytest.raises(RuntimeError, match="cannot be identical"):
        gg.diagonal(gg.zeros(2, 2), 0, 1, 1)
    with pytest.raises(IndexError, match="out of range"):
        gg.diagonal(gg.zeros(2, 2), 0, 0, 2)


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 2, 4)])
@pytest.mark.parametrize("args", [(0, -2, -1), (1, -2, -1), (-2, 0, 2), (1, -1, 0)])
def test_diag_embed_matches_torch(shape, args):
    if len(shape) == 1 and args[1] == 0 and args[2] == 2:
        pytest.skip("dim 2 is out of range for a 2-d result")
    check(lambda x: x.diag_embed(*args), [rand(*shape)],
          torch_fn=lambda x: torch.diag_embed(x, *args))
    gradcheck(lambda x: gg.diag_embed(x, *args), rand(*shape))


@pytest.mark.parametrize("shape", [(4,), (3, 3), (3, 5), (1,)])
@pytest.mark.parametrize("k", [0, 1, -2])
def test_diag_matches_torch(shape, k):
    check(lambda x: x.diag(k), [rand(*shape)])
    gradcheck(lambda x: gg.diag(x, k), rand(*shape))


def test_diag_copies_and_rejects_3d():
    x = gg.ones(2, 2)
    d = gg.diag(x)
    d.fill_(5.0)
    assert x.numpy().max() == 1
    with pytest.raises(RuntimeError, match="1D or 2D.*3D"):
        gg.diag(gg.zeros(2, 2, 2))


# --- meshgrid, eye, linspace, logspace --------------------------------------------------------
@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("sizes", [(3,), (3, 2), (2, 4, 3), (0, 2)])
def test_meshgrid_matches_torch(indexing, sizes):
    arrays = [rand(n) for n in sizes]
    check(lambda *xs: gg.meshgrid(*xs, indexing=indexing), arrays,
          torch_fn=lambda *xs: torch.meshgrid(*xs, indexing=indexing))
    check(lambda *xs: gg.meshgrid(list(xs), indexing=indexing), arrays,
          torch_fn=lambda *xs: torch.meshgrid(list(xs), indexing=indexing))


def test_meshgrid_default_scalars_and_errors():
    a, b = gg.arange(3), gg.arange(2)
    for ours, theirs in zip(gg.meshgrid(a, b), torch.meshgrid(torch.arange(3), torch.arange(2),
                                                              indexing="ij")):
        _same(ours, theirs)
    _same(gg.meshgrid(gg.tensor(2.0), gg.arange(3.0), indexing="xy")[1],
          torch.meshgrid(torch.tensor(2.0), torch.arange(3.0), indexing="xy")[1])
    with pytest.raises(RuntimeError, match="0D or 1D"):
        gg.meshgrid(gg.zeros(2, 2))
    with pytest.raises(RuntimeError, match="same dtype"):
        gg.meshgrid(gg.zeros(2), gg.zeros(2, dtype=gg.int64))
    with pytest.raises(ValueError, match="indexing"):
        gg.meshgrid(a, b, indexing="ji")


@pytest.mark.parametrize("nm", [(3, None), (2, 4), (4, 2), (0, 3), (1, 1)])
@pytest.mark.parametrize("dtype", [None, "int64", "bool", "float64"])
def test_eye_matches_torch(nm, dtype):
    n, m = nm
    kw = {} if dtype is None else {"dtype": dtype}
    tkw = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    ours = gg.eye(n, m, **kw) if m is not None else gg.eye(n, **kw)
    theirs = torch.eye(n, m, **tkw) if m is not None else torch.eye(n, **tkw)
    _same(ours, theirs)
    with pytest.raises(RuntimeError, match="n must be greater or equal to 0"):
        gg.eye(-1)


@pytest.mark.parametrize("fn", ["linspace", "logspace"])
@pytest.mark.parametrize("args", [(0, 10, 5), (-10, 0, 5), (0, 2.5, 7), (-3.7, 5.2, 6),
                                  (5, -5, 4), (0.5, 2.5, 5), (3, 5, 1), (0, 1, 0)])
@pytest.mark.parametrize("dtype", [None, "float64", "int64", "int32", "uint8"])
def test_linspace_logspace_dtype_rules(fn, args, dtype):
    if dtype == "uint8" and min(args[:2]) < 0:
        pytest.skip("negative endpoints in uint8 wrap differently per platform in torch too")
    kw = {} if dtype is None else {"dtype": dtype}
    tkw = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    try:
        theirs = getattr(torch, fn)(*args, **tkw)
    except RuntimeError:  # torch refuses values that overflow uint8
        pytest.skip("torch refuses this combination")
    ours = getattr(gg, fn)(*args, **kw)
    assert _dt(ours) == _dt(theirs) and ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy().astype(np.float64),
                               theirs.numpy().astype(np.float64), rtol=2e-6, atol=1e-5)


def test_linspace_logspace_extras():
    _same(gg.logspace(0, 3, 4, base=2), torch.logspace(0, 3, 4, base=2))
    _same(gg.linspace(gg.tensor(1.0), gg.tensor(2.0), 3), torch.linspace(1, 2, 3))
    with pytest.raises(RuntimeError, match="non-negative"):
        gg.linspace(0, 1, -1)
    assert gg.linspace(0, 1, 5, requires_grad=True).requires_grad


# --- narrow, t, T, mT -----------------------------------------------------------------------
@pytest.mark.parametrize("args", [(0, 0, 2), (1, 1, 3), (-1, -2, 2), (0, 3, 0), (1, 4, 0)])
def test_narrow_matches_torch(args):
    check(lambda x: x.narrow(*args), [rand(3, 4)])
    check(lambda x: gg.narrow(x, *args) if isinstance(x, gg.Tensor) else torch.narrow(x, *args),
          [rand(3, 4)])
    gradcheck(lambda x: gg.narrow(x, *args), rand(3, 4))


def test_narrow_is_a_view_and_errors_as_torch():
    x = gg.zeros(5)
    x.narrow(0, 1, 2).fill_(1.0)
    assert x.tolist() == [0, 1, 1, 0, 0]
    for args, exc in (((0, 3, 3), RuntimeError), ((0, 6, 0), IndexError),
                      ((0, 0, -1), RuntimeError)):
        with pytest.raises(exc):
            torch.zeros(5).narrow(*args)
        with pytest.raises(exc, match=r"narrow"):
            x.narrow(*args)
    with pytest.raises(RuntimeError, match="0-dim"):
        gg.tensor(1.0).narrow(0, 0, 1)


@pytest.mark.parametrize("shape", [(), (3,), (3, 4)])
def test_t_matches_torch(shape):
    check(lambda x: x.t(), [rand(*shape)])
    check(lambda x: gg.t(x) if isinstance(x, gg.Tensor) else torch.t(x), [rand(*shape)])


def test_t_T_mT_mH():
    with pytest.raises(RuntimeError, match=r"t\(\) expects a tensor with <= 2 dimensions.*3D"):
        gg.zeros(2, 3, 4).t()
    check(lambda x: x.mT, [rand(2, 3, 4)])
    check(lambda x: x.T, [rand(3, 4)])
    check(lambda x: x.mH, [rand(2, 3, 4)])
    check(lambda x: x.H, [rand(3, 4)])
    with pytest.warns(UserWarning, match="deprecated"):
        check(lambda x: x.T, [rand(2, 3, 4)])
    with pytest.raises(RuntimeError, match="mT is only supported on matrices"):
        _ = gg.zeros(3).mT
    gradcheck(lambda x: x.t() * 3, rand(3, 4))
    c = gg.tensor(np.array([[1 + 2j, 3 - 1j]]))
    want = torch.tensor([[1 + 2j, 3 - 1j]]).mH.resolve_conj()
    np.testing.assert_array_equal(c.mH.numpy(), want.numpy())


# --- dtypes: view(dtype), type, new_* ---------------------------------------------------------
@pytest.mark.parametrize("src,dst,shape", [
    ("float32", "int32", (2, 4)), ("float32", "float64", (2, 4)), ("float64", "float32", (3,)),
    ("float32", "uint8", (2, 3)), ("int64", "float64", (5,)), ("uint8", "int32", (2, 8)),
    ("float32", "float32", (3,)), ("int16", "float16", (2, 2)), ("bool", "uint8", (4,)),
    ("complex64", "float64", (3,)), ("float32", "complex64", (2, 4)),
])
def test_view_dtype_reinterprets_bits_as_torch(src, dst, shape):
    a = (rand(*shape) * 50).astype(src)
    ours = gg.from_numpy(a.copy()).view(getattr(gg, dst))
    theirs = torch.from_numpy(a.copy()).view(getattr(torch, dst))
    assert ours.shape == tuple(theirs.shape) and _dt(ours) == _dt(theirs)
    np.testing.assert_array_equal(ours.numpy().view(np.uint8), theirs.numpy().view(np.uint8))


def test_view_dtype_shares_storage_and_never_requires_grad():
    x = gg.zeros(4, requires_grad=True)
    y = x.view(gg.int32)
    assert not y.requires_grad and y.grad_fn is None
    z = gg.zeros(2)
    z.view(gg.int32)[0] = 1065353216  # the bits of 1.0f
    assert z.tolist() == [1.0, 0.0]
    assert gg.zeros(2, 3).view(-1).shape == (6,) and gg.zeros(2, 3).view(3, 2).shape == (3, 2)


@pytest.mark.parametrize("make,dst", [
    (lambda m: m.zeros(2, 3), "float64"), (lambda m: m.zeros(()), "float64"),
    (lambda m: m.zeros(3, 4)[:, :3], "float64"), (lambda m: m.zeros(3, 4).t(), "float64"),
    (lambda m: m.zeros(4, 4)[::2], "float64"),
])
def test_view_dtype_errors_as_torch(make, dst):
    try:
        want = make(torch).view(getattr(torch, dst))
    except RuntimeError:
        with pytest.raises(RuntimeError, match="view"):
            make(gg).view(getattr(gg, dst))
    else:
        got = make(gg).view(getattr(gg, dst))
        assert got.shape == tuple(want.shape)


def test_tensor_type(cpu_default_device):  # the names of CPU tensors, as torch CPU
    names = {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor",
             "int32": "IntTensor", "bool": "BoolTensor", "uint8": "ByteTensor",
             "float16": "HalfTensor", "int16": "ShortTensor", "int8": "CharTensor"}
    for dt, name in names.items():
        assert torch.zeros(1, dtype=getattr(torch, dt)).type() == "torch." + name
        assert gg.zeros(1, dtype=getattr(gg, dt)).type() == "gpugrad." + name
    x = gg.tensor([1.5, -2.5], requires_grad=True)
    y = x.type(gg.float64)
    assert y.dtype == gg.float64 and y.requires_grad
    assert x.type("torch.IntTensor").tolist() == torch.tensor([1.5, -2.5]).type(
        "torch.IntTensor").tolist()
    assert x.type("gpugrad.DoubleTensor").dtype == gg.float64
    assert x.type(torch.float16).dtype == gg.float16
    with pytest.raises(ValueError, match="invalid type"):
        x.type("torch.NopeTensor")


@pytest.mark.parametrize("src", ["float64", "int32"])
def test_new_constructors_match_torch(src):
    x, tx = gg.zeros(2, dtype=getattr(gg, src)), torch.zeros(2, dtype=getattr(torch, src))
    _same(x.new_zeros(2, 3), tx.new_zeros(2, 3))
    _same(x.new_zeros((2, 3)), tx.new_zeros((2, 3)))
    _same(x.new_ones(3), tx.new_ones(3))
    _same(x.new_full((2,), 3), tx.new_full((2,), 3))
    _same(x.new_tensor([1, 2]), tx.new_tensor([1, 2]))
    _same(x.new_tensor([[1.0]], dtype=gg.float32), tx.new_tensor([[1.0]], dtype=torch.float32))
    assert x.new_empty(4, 1).shape == (4, 1) and x.new_empty(4).dtype == x.dtype
    _same(x.new_zeros(2, dtype=gg.int64), tx.new_zeros(2, dtype=torch.int64))
    assert gg.zeros(1).new_ones(2, requires_grad=True).requires_grad
    assert x.new_zeros(1).device == x.device


def test_meshgrid_gradcheck():
    gradcheck(lambda a, b: gg.meshgrid(a, b, indexing="xy")[0] * gg.meshgrid(a, b)[1].T,
              rand(3), rand(4))


@pytest.mark.parametrize("fn", [
    lambda m, x: m.diagonal(x, 1, 0, 2), lambda m, x: m.diag_embed(x[0], -1),
    lambda m, x: m.tril(x, 0), lambda m, x: m.narrow(x, 2, 1, 2),
])
def test_double_backward_against_torch(fn):
    # The VJPs are ops themselves (diagonal and diag_embed transpose each other), so the
    # gradient of a gradient is compared too: d/dx Σ x·fn(x)·fn(x).
    def first_grad(m):
        def grad(x):
            (g,) = m.autograd.grad((x.sum() * fn(m, x) * fn(m, x)).sum(), [x],
                                   create_graph=True)
            return g
        return grad

    check(first_grad(gg), [rand(3, 3, 3)], torch_fn=first_grad(torch))
