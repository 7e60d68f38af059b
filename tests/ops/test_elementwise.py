"""Elementwise ops against PyTorch, float64 finite differences, dtypes and errors."""

import numpy as np
import pytest
import torch
from oracle import check, gradcheck, positive, rand

import gpugrad as gg


def away(*shape, margin=0.2):
    """Random values at least `margin` away from 0 (relu/abs kinks)."""
    a = rand(*shape)
    return np.where(np.abs(a) < margin, np.copysign(margin + 0.3, a), a)


def away_from(*kinks, margin=0.1):
    """An input maker like `away`, also keeping values `margin` away from `kinks` (clamp
    bounds), where a finite difference would straddle the kink."""
    def make(*shape):
        a = away(*shape)
        for k in kinks:
            a = np.where(np.abs(a - k) < margin, k + np.copysign(2 * margin, a - k), a)
        return a
    return make


# (name, fn shared by both libraries, input maker, torch_fn or None)
UNARY = [
    ("neg", lambda x: -x, rand, None),
    ("abs", lambda x: x.abs(), away, None),
    ("abs_builtin", lambda x: abs(x), away, None),
    ("exp", lambda x: x.exp(), rand, None),
    ("log", lambda x: x.log(), positive, None),
    ("log1p", lambda x: x.log1p(), positive, None),
    ("sqrt", lambda x: x.sqrt(), positive, None),
    ("sin", lambda x: x.sin(), rand, None),
    ("cos", lambda x: x.cos(), rand, None),
    ("tanh", lambda x: x.tanh(), rand, None),
    ("sigmoid", lambda x: x.sigmoid(), rand, None),
    ("relu", lambda x: x.relu(), away, None),
    ("clamp", lambda x: x.clamp(-0.5, 0.7), away_from(-0.5, 0.7), None),
    ("clamp_min", lambda x: x.clamp(min=-0.5), away_from(-0.5), None),
    ("clamp_max", lambda x: x.clamp(max=0.7), away_from(0.7), None),
    ("pow2", lambda x: x ** 2, rand, None),
    ("pow3", lambda x: x ** 3, rand, None),
    ("pow_half", lambda x: x ** 0.5, positive, None),
    ("pow_neg", lambda x: x ** -1.5, positive, None),
    ("pow0", lambda x: x ** 0, rand, None),
    ("rpow", lambda x: 2.0 ** x, rand, None),
    ("pow_method", lambda x: x.pow(2.5), positive, None),
    ("add_scalar", lambda x: x + 1.5, rand, None),
    ("radd_scalar", lambda x: 1.5 + x, rand, None),
    ("sub_scalar", lambda x: x - 1.5, rand, None),
    ("rsub_scalar", lambda x: 1.5 - x, rand, None),
    ("mul_scalar", lambda x: x * -3.0, rand, None),
    ("rmul_scalar", lambda x: 3 * x, rand, None),
    ("div_scalar", lambda x: x / 4.0, rand, None),
    ("rdiv_scalar", lambda x: 2.0 / x, away, None),
]

SHAPES = [(3, 4), (), (1,), (2, 1, 3), (0, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,fn,make,torch_fn", UNARY, ids=[u[0] for u in UNARY])
def test_unary_vs_torch(name, fn, make, torch_fn, shape):
    check(fn, [make(*shape)], torch_fn=torch_fn)


@pytest.mark.parametrize("name,fn,make,torch_fn", UNARY, ids=[u[0] for u in UNARY])
def test_unary_noncontiguous(name, fn, make, torch_fn):
    # a transposed and a strided-sliced view of the input
    check(lambda x: fn(x.transpose(0, 1)[:, ::2]), [make(4, 3)])
    check(fn, [make(3, 4)], non_contiguous=True)


@pytest.mark.parametrize("name,fn,make,torch_fn", UNARY, ids=[u[0] for u in UNARY])
def test_unary_gradcheck(name, fn, make, torch_fn):
    if name == "pow0":
        pytest.skip("constant output; covered against torch")
    gradcheck(fn, make(2, 3))


@pytest.mark.parametrize("name,fn,make,torch_fn", UNARY, ids=[u[0] for u in UNARY])
def test_unary_double_backward(name, fn, make, torch_fn):
    if name == "pow0":
        pytest.skip("constant output")

    # d/dx Σ x·f(x) = f(x) + x·f'(x) keeps the first gradient differentiable even where
    # f'' = 0 (relu, abs), so the VJP of every VJP is exercised.
    def first_grad(x):
        (g,) = gg.autograd.grad((fn(x) * x).sum(), [x], create_graph=True)
        return g

    def first_grad_torch(x):
        (g,) = torch.autograd.grad((fn(x) * x).sum(), [x], create_graph=True)
        return g

    check(first_grad, [make(2, 3)], torch_fn=first_grad_torch)


BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
    ("pow", lambda a, b: a ** b),
    ("pow_fn", lambda a, b: a.pow(b)),
    ("maximum", lambda a, b: a.maximum(b)),
    ("minimum", lambda a, b: a.minimum(b)),
    ("add_alpha", lambda a, b: a.add(b, alpha=2.5)),
    ("sub_alpha", lambda a, b: a.sub(b, alpha=-0.5)),
]

PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 1), (4,)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((2, 1, 3), (4, 1)),
    ((1,), ()),
    ((0, 3), (1, 3)),
    ((2, 0), (2, 1)),
]


def _binary_inputs(name, sa, sb):
    # positive base for pow; divisor away from 0
    a = positive(*sa) if name.startswith("pow") else rand(*sa)
    b = away(*sb) if name == "div" else rand(*sb)
    return a, b


@pytest.mark.parametrize("sa,sb", PAIRS, ids=str)
@pytest.mark.parametrize("name,fn", BINARY, ids=[b[0] for b in BINARY])
def test_binary_vs_torch(name, fn, sa, sb):
    check(fn, list(_binary_inputs(name, sa, sb)))


@pytest.mark.parametrize("name,fn", BINARY, ids=[b[0] for b in BINARY])
def test_binary_noncontiguous(name, fn):
    a, b = _binary_inputs(name, (4, 3), (3, 4))
    check(lambda x, y: fn(x.T, y), [a, b])
    check(lambda x, y: fn(x[::2], y[1:, 1:]), [a, b])
    check(fn, [a.T.copy(), b], non_contiguous=True)


@pytest.mark.parametrize("sa,sb", [((2, 3), (2, 3)), ((2, 1), (3,)), ((), (2,))], ids=str)
@pytest.mark.parametrize("name,fn", BINARY, ids=[b[0] for b in BINARY])
def test_binary_gradcheck(name, fn, sa, sb):
    gradcheck(fn, *_binary_inputs(name, sa, sb))


def test_pow_zero_base_grad_matches_torch():
    # d(a^b)/db at a = 0 is 0 in torch (b ≥ 0), and d(a^b)/da at b = 0 is 0, not nan
    check(lambda a, b: a ** b, [np.array([0.0, 1.5, 2.0]), np.array([2.0, 1.5, 3.0])])
    check(lambda a, b: a ** b, [np.array([0.0, 1.0, 0.0]), np.array([0.0, 2.0, 1.0])])
    check(lambda b: 0.0 ** b, [np.array([0.0, 2.0, 1.0])])


def test_maximum_nan_sends_gradient_to_both_like_torch():
    a, b = np.array([np.nan, 1.0, 2.0]), np.array([0.0, np.nan, 2.0])
    check(lambda x, y: x.maximum(y), [a, b])
    check(lambda x, y: x.minimum(y), [a, b])


@pytest.mark.parametrize("sc,sa,sb", [
    ((3, 4), (3, 4), (3, 4)),
    ((3, 1), (4,), (3, 4)),
    ((4,), (3, 4), ()),
    ((), (2,), (2,)),
    ((0, 2), (1, 2), (2,)),
], ids=str)
def test_where_vs_torch(sc, sa, sb):
    cond = np.asarray(rand(*sc) > 0)

    def fn(c, a, b):
        return a.where(c, b) if isinstance(a, torch.Tensor) else gg.where(c, a, b)

    check(fn, [cond, rand(*sa), rand(*sb)])


def test_where_scalar_and_gradcheck():
    cond = rand(2, 3) > 0
    check(lambda c, a: gg.where(c, a, 0.5) if isinstance(a, gg.Tensor)
          else torch.where(c, a, 0.5), [cond, rand(2, 3)])
    gradcheck(lambda a, b: gg.where(gg.tensor(cond), a, b), rand(2, 3), rand(3))


@pytest.mark.parametrize("fn", [
    lambda a, b: a.maximum(b), lambda a, b: a.minimum(b),
], ids=["maximum", "minimum"])
def test_maximum_ties_split_gradient_like_torch(fn):
    a = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    b = np.array([[1.0, 0.0, 3.0], [0.5, 5.0, 2.0]])
    check(fn, [a, b])


def test_clamp_with_tensor_bounds():
    lo, hi = rand(3, 1) - 0.5, rand(4) + 3
    check(lambda x, a, b: x.clamp(a, b), [away(3, 4), lo, hi])


def test_clamp_boundary_grad_matches_torch():
    # torch passes the gradient through where x equals a bound
    check(lambda x: x.clamp(-1.0, 1.0), [np.array([-1.0, 0.0, 1.0, 2.0, -3.0])])


def test_activations_float32():
    x = rand(3, 4, dtype=np.float32)
    for f in (lambda t: t.tanh(), lambda t: t.sigmoid(), lambda t: t.relu(), lambda t: t.exp()):
        check(f, [x], atol=1e-5)


def test_sigmoid_extremes():
    check(lambda x: x.sigmoid(), [np.array([-800.0, -30.0, 0.0, 30.0, 800.0])])


# --- non-differentiable ops --------------------------------------------------------------
NONDIFF = [
    ("lt", lambda a, b: a < b),
    ("le", lambda a, b: a <= b),
    ("gt", lambda a, b: a > b),
    ("ge", lambda a, b: a >= b),
    ("eq", lambda a, b: a == b),
    ("ne", lambda a, b: a != b),
    ("lt_scalar", lambda a, b: a < 0.5),
    ("eq_scalar", lambda a, b: 1.0 == a),
    ("sign", lambda a, b: a.sign()),
    ("round", lambda a, b: (a * 3).round()),
    ("floor", lambda a, b: a.floor()),
    ("ceil", lambda a, b: a.ceil()),
    ("trunc", lambda a, b: a.trunc()),
    ("floordiv", lambda a, b: a // b),
    ("isnan", lambda a, b: (a / b).isnan()),
    ("argmax", lambda a, b: a.argmax()),
    ("argmin", lambda a, b: a.argmin()),
    ("argmax_dim", lambda a, b: a.argmax(1)),
    ("argmin_dim_keep", lambda a, b: a.argmin(0, keepdim=True)),
]


@pytest.mark.parametrize("name,fn", NONDIFF, ids=[n[0] for n in NONDIFF])
def test_nondifferentiable_float_ops(name, fn):
    a = np.round(rand(3, 4), 1)
    a[0, 0] = 0.0
    b = np.round(away(3, 4), 1)
    b[1] = a[1]  # some equal elements
    ga, gb = gg.tensor(a, requires_grad=True), gg.tensor(b, requires_grad=True)
    out = fn(ga, gb)
    expect = fn(torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True))
    assert not out.requires_grad and out.grad_fn is None
    assert str(out.dtype).split(".")[-1] == str(expect.dtype).split(".")[-1]
    np.testing.assert_array_equal(out.numpy(), expect.detach().numpy())


INT_OPS = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("floordiv", lambda a, b: a // b), ("mod", lambda a, b: a % b),
    ("and", lambda a, b: a & b), ("or", lambda a, b: a | b), ("xor", lambda a, b: a ^ b),
    ("invert", lambda a, b: ~a), ("neg", lambda a, b: -a), ("abs", lambda a, b: a.abs()),
    ("relu", lambda a, b: a.relu()), ("lt", lambda a, b: a < b), ("sum", lambda a, b: a.sum(0)),
    ("bool_and", lambda a, b: (a > 0) & (b > 2)), ("bool_not", lambda a, b: ~(a > 0)),
    ("bool_or", lambda a, b: (a > 0) | (b > 2)), ("max_dim", lambda a, b: a.max(1)[0]),
]


@pytest.mark.parametrize("name,fn", INT_OPS, ids=[n[0] for n in INT_OPS])
def test_integer_and_bool_ops(name, fn):
    a = np.array([[3, -2, 0], [7, 5, -9]], dtype=np.int64)
    b = np.array([[2, 3, 1], [4, 2, 5]], dtype=np.int64)
    out = fn(gg.tensor(a), gg.tensor(b))
    expect = fn(torch.tensor(a), torch.tensor(b))
    assert not out.requires_grad
    assert str(out.dtype).split(".")[-1] == str(expect.dtype).split(".")[-1]
    np.testing.assert_array_equal(out.numpy(), expect.detach().numpy())


# --- dtype promotion --------------------------------------------------------------------
DTYPE_CASES = [
    ("f32*2.0", np.float32, None, lambda a, b: a * 2.0),
    ("f32*2", np.float32, None, lambda a, b: a * 2),
    ("i64*2.5", np.int64, None, lambda a, b: a * 2.5),
    ("i64*2", np.int64, None, lambda a, b: a * 2),
    ("i32+1", np.int32, None, lambda a, b: a + 1),
    ("f32+f64", np.float32, np.float64, lambda a, b: a + b),
    ("f64*f32", np.float64, np.float32, lambda a, b: a * b),
    ("i64/i64", np.int64, np.int64, lambda a, b: a / b),
    ("i64/2", np.int64, None, lambda a, b: a / 2),
    ("i32+i64", np.int32, np.int64, lambda a, b: a + b),
    ("i64+f32", np.int64, np.float32, lambda a, b: a + b),
    ("bool+i32", np.bool_, np.int32, lambda a, b: a + b),
    ("bool*1.5", np.bool_, None, lambda a, b: a * 1.5),
    ("f32+f64_0d", np.float32, "f64_0d", lambda a, b: a + b),
    ("i64+f64_0d", np.int64, "f64_0d", lambda a, b: a + b),
    ("i32+i64_0d", np.int32, "i64_0d", lambda a, b: a + b),
    ("f32**2", np.float32, None, lambda a, b: a ** 2),
    ("i64.exp", np.int64, None, lambda a, b: a.exp()),
    ("i64.sqrt", np.int64, None, lambda a, b: a.sqrt()),
    ("i64.sigmoid", np.int64, None, lambda a, b: a.sigmoid()),
    ("f32.max(f64)", np.float32, np.float64, lambda a, b: a.maximum(b)),
    ("i64<f32", np.int64, np.float32, lambda a, b: a < b),
]


@pytest.mark.parametrize("name,da,db,fn", DTYPE_CASES, ids=[c[0] for c in DTYPE_CASES])
def test_result_dtype_matches_torch(name, da, db, fn):
    a = np.array([[1, 2, 3], [4, 5, 6]]).astype(da)
    if db is None:
        b = None
    elif db == "f64_0d":
        b = np.array(2.0)
    elif db == "i64_0d":
        b = np.array(2, dtype=np.int64)
    else:
        b = np.array([1, 2, 4]).astype(db)

    def mk(lib, arr):
        if arr is None:
            return None
        return gg.tensor(arr) if lib == "gg" else torch.tensor(arr)

    out = fn(mk("gg", a), mk("gg", b))
    expect = fn(mk("torch", a), mk("torch", b))
    assert str(out.dtype).split(".")[-1] == str(expect.dtype).split(".")[-1]
    np.testing.assert_allclose(out.numpy(), expect.numpy(), rtol=1e-6)


def test_promotion_keeps_gradient_dtype():
    check(lambda a, b: a * b, [rand(2, 3, dtype=np.float32), rand(3)], atol=1e-5)


# --- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("op,fn", [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("maximum", lambda a, b: gg.maximum(a, b)),
    ("pow", lambda a, b: a ** b), ("lt", lambda a, b: a < b),
])
def test_broadcast_error_names_op_and_shapes(op, fn):
    a, b = gg.ones(3, 4, requires_grad=True), gg.ones(5, 6)
    name = {"lt": "less"}.get(op, op)
    with pytest.raises(ValueError, match=rf"{name}.*\(3, 4\).*\(5, 6\)"):
        fn(a, b)


def test_where_shape_error():
    with pytest.raises(ValueError, match=r"where.*\(3,\).*\(2,\)"):
        gg.where(gg.ones(3) > 0, gg.ones(2), gg.ones(2))


def test_ints_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        gg.tensor([1, 2]).requires_grad_(True)
