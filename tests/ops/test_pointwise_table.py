"""The rows of the pointwise table against PyTorch: forward and gradient with broadcasting,
edge values (subgradients, ties, infinities, NaN), float64 gradcheck and a second-order
gradcheck (the derived VJP differentiated again), plus the nn modules."""

import numpy as np
import pytest
import torch
from oracle import check, rand

import gpugrad as gg
import gpugrad.nn.functional as F

TF = torch.nn.functional

# name: (gpugrad fn, torch fn, low, high)
UNARY = {
    "erf": (gg.erf, torch.erf, -3, 3),
    "erfc": (gg.erfc, torch.erfc, -3, 3),
    "exp2": (gg.exp2, torch.exp2, -3, 3),
    "expm1": (gg.expm1, torch.expm1, -3, 3),
    "log2": (gg.log2, torch.log2, 0.2, 3),
    "log10": (gg.log10, torch.log10, 0.2, 3),
    "log1p": (gg.log1p, torch.log1p, -0.5, 3),
    "rsqrt": (gg.rsqrt, torch.rsqrt, 0.2, 3),
    "tan": (gg.tan, torch.tan, -1.2, 1.2),
    "asin": (gg.asin, torch.asin, -0.9, 0.9),
    "acos": (gg.acos, torch.acos, -0.9, 0.9),
    "atan": (gg.atan, torch.atan, -3, 3),
    "sinh": (gg.sinh, torch.sinh, -3, 3),
    "cosh": (gg.cosh, torch.cosh, -3, 3),
    "asinh": (gg.asinh, torch.asinh, -3, 3),
    "acosh": (gg.acosh, torch.acosh, 1.2, 3),
    "atanh": (gg.atanh, torch.atanh, -0.9, 0.9),
    "softplus": (lambda x: F.softplus(x, 2.0, 3.0), lambda x: TF.softplus(x, 2.0, 3.0), -3, 3),
    "mish": (F.mish, TF.mish, -3, 3),
    "elu": (lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7), -3, 3),
    "selu": (F.selu, TF.selu, -3, 3),
    "celu": (lambda x: F.celu(x, 1.3), lambda x: TF.celu(x, 1.3), -3, 3),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 0.8), lambda x: TF.hardtanh(x, -0.5, 0.8), -2, 2),
    "relu6": (F.relu6, TF.relu6, -2, 8),
    "hardsigmoid": (F.hardsigmoid, TF.hardsigmoid, -5, 5),
    "hardswish": (F.hardswish, TF.hardswish, -5, 5),
    "softsign": (F.softsign, TF.softsign, -3, 3),
    "logsigmoid": (F.logsigmoid, TF.logsigmoid, -3, 3),
    "gelu": (F.gelu, TF.gelu, -3, 3),
    "gelu_tanh": (lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh"), -3, 3),
    "silu": (F.silu, TF.silu, -3, 3),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), -3, 3),
    "swish": (lambda x: F.swish(x, 0.7), lambda x: x * torch.sigmoid(0.7 * x), -3, 3),
    "neg": (lambda x: -x, lambda x: -x, -3, 3),
}

# name: (fn(a, b) on both libraries' tensors, b's (low, high))
BINARY = {
    "add": (lambda a, b: a + b, (-2, 2)),
    "add_alpha": (lambda a, b: a.add(b, alpha=0.3), (-2, 2)),
    "sub": (lambda a, b: a - b, (-2, 2)),
    "sub_alpha": (lambda a, b: a.sub(b, alpha=-1.7), (-2, 2)),
    "mul": (lambda a, b: a * b, (-2, 2)),
    "div": (lambda a, b: a / b, (0.6, 2)),
    "atan2": (lambda a, b: a.atan2(b), (-2, 2)),
    "hypot": (lambda a, b: a.hypot(b), (-2, 2)),
    "copysign": (lambda a, b: a.copysign(b), (-2, 2)),
    "fmod": (lambda a, b: a.fmod(b), (0.6, 2)),
    "remainder": (lambda a, b: a.remainder(b), (0.6, 2)),
    "logaddexp": (lambda a, b: a.logaddexp(b), (-2, 2)),
    "maximum": (lambda a, b: a.maximum(b), (-2, 2)),
    "minimum": (lambda a, b: a.minimum(b), (-2, 2)),
    "fmax": (lambda a, b: a.fmax(b), (-2, 2)),
    "fmin": (lambda a, b: a.fmin(b), (-2, 2)),
    "lerp_tensor": (lambda a, b: a.lerp(b, b * 0.3 + 0.1), (-2, 2)),
    "lerp_scalar": (lambda a, b: a.lerp(b, 0.7), (-2, 2)),
    "clamp_tensor": (lambda a, b: a.clamp(b - 0.5, b + 0.5), (-2, 2)),
    "clamp_min_tensor": (lambda a, b: a.clamp(min=b), (-2, 2)),
    "clamp_max_tensor": (lambda a, b: a.clamp(max=b), (-2, 2)),
}


# PyTorch computes these gradients with a float32 constant (1/6, 1/α) even in float64
RTOL = {"hardsigmoid": 1e-7, "celu": 1e-7}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", [(5, 4), (), (0, 3)])
def test_unary_rows_match_torch(name, shape):
    ours, theirs, lo, hi = UNARY[name]
    check(ours, [rand(*shape, low=lo, high=hi)], torch_fn=theirs, atol=1e-10,
          rtol=RTOL.get(name, 1e-9))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_rows_float32_match_torch(name):
    ours, theirs, lo, hi = UNARY[name]
    check(ours, [rand(7, 3, low=lo, high=hi, dtype=np.float32)], torch_fn=theirs, atol=1e-5,
          rtol=1e-5)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((3, 1), (4,)), ((2, 3), (2, 3)), ((), (3,))])
def test_binary_rows_match_torch_with_broadcasting(name, shapes):
    fn, (lo, hi) = BINARY[name]
    check(fn, [rand(*shapes[0]), rand(*shapes[1], low=lo, high=hi)], atol=1e-10, rtol=1e-9)


EDGE = np.array([0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, -0.5, 0.8, 25.0, -25.0, 1e-8])


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_rows_at_edge_values(name):
    """Subgradients at kinks and thresholds (relu6 at 0 and 6, hardswish at ±3, hardtanh
    at its bounds, softplus at its threshold) and large magnitudes match PyTorch."""
    ours, theirs, lo, hi = UNARY[name]
    x = EDGE[(EDGE >= lo) & (EDGE <= hi)] if lo > -3 or hi < 3 else EDGE
    if name in ("acosh",):
        x = np.array([1.5, 2.0, 3.0])
    check(ours, [x], torch_fn=theirs, atol=1e-10, rtol=RTOL.get(name, 1e-9))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_rows_propagate_nan_and_inf(name):
    ours, theirs, _, _ = UNARY[name]
    x = np.array([np.nan, np.inf, -np.inf])
    check(ours, [x], torch_fn=theirs, grad=False)


def test_ties_and_nan_in_maximum_minimum_fmax():
    a = np.array([1.0, 2.0, np.nan, 3.0, np.nan])
    b = np.array([1.0, 1.0, 0.5, np.nan, np.nan])
    for fn in (lambda x, y: x.maximum(y), lambda x, y: x.minimum(y),
               lambda x, y: x.fmax(y), lambda x, y: x.fmin(y),
               lambda x, y: x.clamp(min=y), lambda x, y: x.clamp(max=y)):
        check(fn, [a, b])


def _gradgrad(fn, *arrays):
    """gradcheck of x ↦ VJP of fn at x (a cotangent fixed): second-order gradcheck."""
    rng = np.random.default_rng(5)
    ins = [gg.tensor(a, dtype=gg.float64, requires_grad=True) for a in arrays]
    cot = gg.tensor(rng.standard_normal(fn(*ins).shape))

    def vjp(*xs):
        with gg.enable_grad():  # gradcheck's finite differences run without a graph
            xs = [x if x.requires_grad else x.detach().requires_grad_() for x in xs]
            return gg.autograd.grad(fn(*xs), xs, cot, create_graph=True)

    assert gg.autograd.gradcheck(fn, ins)
    assert gg.autograd.gradcheck(vjp, ins)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_rows_gradcheck_and_second_order(name):
    ours, _, lo, hi = UNARY[name]
    # away from kinks, where finite differences are meaningless
    x = np.array([lo + 0.13 * (hi - lo), lo + 0.41 * (hi - lo), lo + 0.77 * (hi - lo)])
    _gradgrad(ours, x)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_rows_gradcheck_and_second_order(name):
    fn, (lo, hi) = BINARY[name]
    a = np.array([[0.3, -1.1, 1.7]])
    b = np.array([[lo + 0.21 * (hi - lo)], [lo + 0.64 * (hi - lo)]])
    _gradgrad(fn, a, b)


def test_second_order_matches_torch():
    a = rand(4, 3)
    for ours, theirs in [(F.mish, TF.mish), (F.selu, TF.selu), (gg.erf, torch.erf),
                         (lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh")),
                         (F.logsigmoid, TF.logsigmoid)]:
        x = gg.tensor(a, requires_grad=True)
        xt = torch.tensor(a, requires_grad=True)
        (g,) = gg.autograd.grad(ours(x).sum(), x, create_graph=True)
        (gt,) = torch.autograd.grad(theirs(xt).sum(), xt, create_graph=True)
        (g * g).sum().backward()
        (gt * gt).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


MODULES = [
    (gg.nn.Softplus(2.0, 3.0), torch.nn.Softplus(2.0, 3.0)), (gg.nn.Mish(), torch.nn.Mish()),
    (gg.nn.ELU(0.7), torch.nn.ELU(0.7)), (gg.nn.SELU(), torch.nn.SELU()),
    (gg.nn.CELU(1.3), torch.nn.CELU(1.3)),
    (gg.nn.Hardtanh(-0.5, 0.8), torch.nn.Hardtanh(-0.5, 0.8)),
    (gg.nn.ReLU6(), torch.nn.ReLU6()), (gg.nn.Hardsigmoid(), torch.nn.Hardsigmoid()),
    (gg.nn.Hardswish(), torch.nn.Hardswish()), (gg.nn.Softsign(), torch.nn.Softsign()),
    (gg.nn.LogSigmoid(), torch.nn.LogSigmoid()),
]


@pytest.mark.parametrize("pair", MODULES, ids=lambda p: type(p[0]).__name__)
def test_activation_modules_match_torch(pair):
    ours, theirs = pair
    check(ours, [rand(3, 5, low=-4, high=4)], torch_fn=theirs, atol=1e-10, rtol=1e-7)


def test_integer_inputs_compute_in_float32():
    x = gg.tensor([1, 2, 3])
    for fn in (gg.erf, gg.expm1, F.mish, F.selu):
        assert fn(x).dtype == gg.float32


def test_bad_arguments():
    x = gg.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(x, "fast")
    with pytest.raises(ValueError, match="min_val"):
        F.hardtanh(x, 1.0, -1.0)
    with pytest.raises(gg.ShapeError, match=r"hypot: shapes \(2,\) and \(3,\)"):
        gg.hypot(x, gg.tensor([1.0, 2.0, 3.0]))


def test_division_saves_its_operands_so_its_output_may_be_written_in_place():
    """As PyTorch: div's VJP reads a and b, not y, so y += 1 after the division is fine."""
    a, b = rand(3, 4), rand(4, low=0.6, high=2.0)
    grads = []
    for lib in (gg, torch):
        ta, tb = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        y = ta / tb
        y.add_(1.0)
        (y * y).sum().backward()
        grads.append((ta.grad.detach().numpy(), tb.grad.detach().numpy()))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_mul_one_pass_backward_equals_the_rows_program():
    """Mul's fused two-product VJP (same-shape real operands) computes the row's own VJP."""
    from gpugrad.backend import cpu_backend
    from gpugrad.ops.table import ROWS

    row = ROWS["mul"]
    g, a, b = rand(33, 7), rand(33, 7), rand(33, 7)
    fused = row.array_vjp(cpu_backend, g, a, b)
    bw, srcs, _ = row.backward_row((True, True), False)
    arrays = {("x", 0): a, ("x", 1): b, ("g", 0): g}
    program = cpu_backend.pointwise(bw.program, [arrays[s] for s in srcs])
    for f, p in zip(fused, program):
        np.testing.assert_array_equal(f, p)
    assert row.array_vjp(cpu_backend, g, a, b[:1]) is None  # broadcast: the program's job
    x = gg.tensor(a, requires_grad=True)
    assert (x * x).grad_fn.name() == "MulBackward"
    assert gg.add(x, x, alpha=2).grad_fn.name() == "AddBackward"
