"""In-place `*_` forms: values, gradients and in-place bookkeeping as PyTorch's."""

import warnings

import numpy as np
import pytest
import torch
from oracle import check, gradcheck, positive, rand

import gpugrad as gg
from gpugrad.ops.inplace import INPLACE_OPS

# name -> extra arguments (NumPy arrays become tensors of the same dtype); positive inputs
# for the ops whose domain needs them.
UNARY = ["abs", "neg", "negative", "exp", "log", "log1p", "sqrt", "sin", "cos", "tanh",
         "sigmoid", "relu"]
# Non-differentiable results: gpugrad detaches the tensor (as after fill_), PyTorch keeps a
# zero gradient; the values must match. (gpugrad's remainder has no gradient yet.)
NONDIFF = {"sign": (), "sgn": (), "floor": (), "ceil": (), "trunc": (), "round": (),
           "floor_divide": (0.7,), "eq": (0.5,), "ne": (0.5,),
           "lt": (0.5,), "le": (0.5,), "gt": (0.5,), "ge": (0.5,), "logical_not": ()}
POSITIVE = {"log", "log1p", "sqrt"}
WITH_ARGS = {
    "pow": lambda: (2.5,),
    "remainder": lambda: (0.7,),  # differentiable as in PyTorch (x̄ = ȳ)
    "clamp": lambda: (-0.5, 0.7),
    "clip": lambda: (None, 0.3),
    "multiply": lambda: (rand(4),),
    "subtract": lambda: (rand(4),),
    "divide": lambda: (positive(3, 4),),
    "addcmul": lambda: (rand(3, 4), rand(4)),
    "addcdiv": lambda: (rand(1, 4), positive(3, 1)),
    "lerp": lambda: (rand(3, 4), 0.3),
    "masked_fill": lambda: (rand(3, 4) > 0, 1.5),
}
KWARGS = {"addcmul": {"value": -0.5}, "addcdiv": {"value": 2.0}, "subtract": {"alpha": 3}}


def _args(args, lib):
    conv = (lambda a: torch.from_numpy(a.copy())) if lib is torch else \
        (lambda a: gg.tensor(a.copy()))  # on the default device, with the leaf
    return tuple(conv(a) if isinstance(a, np.ndarray) else a for a in args)


@pytest.mark.parametrize("name", UNARY + sorted(WITH_ARGS))
def test_inplace_value_and_gradient_match_torch(name):
    """t = f(leaf); t.NAME_(...) ; backward: both the value written into t and the
    gradient through the in-place op match PyTorch's."""
    x = positive(3, 4) if name in POSITIVE else rand(3, 4)
    args = WITH_ARGS.get(name, lambda: ())()
    kwargs = KWARGS.get(name, {})
    cot = rand(3, 4)
    results = []
    for lib in (gg, torch):
        leaf = (gg.tensor if lib is gg else torch.tensor)(x, requires_grad=True)
        t = leaf * 1.0  # a non-leaf, so the in-place op is recorded
        out = getattr(t, name + "_")(*_args(args, lib), **kwargs)
        assert out is t
        t.backward((gg.tensor if lib is gg else torch.tensor)(cot))
        results.append((t.detach().numpy(), leaf.grad.numpy()))
    (gv, gg_grad), (tv, th_grad) = results
    np.testing.assert_allclose(gv, tv, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gg_grad, th_grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(NONDIFF))
def test_inplace_non_differentiable_ops_match_torch_and_leave_the_graph(name):
    x = rand(3, 4)
    x[0, 0] = 0.5  # a tie for the comparisons
    leaf = gg.tensor(x, requires_grad=True)
    t = leaf * 1.0
    assert getattr(t, name + "_")(*NONDIFF[name]) is t
    expected = getattr(torch.tensor(x), name + "_")(*NONDIFF[name])
    np.testing.assert_array_equal(t.numpy(), expected.numpy())
    assert not t.requires_grad and t.grad_fn is None  # no stale graph: no wrong gradient


def test_every_listed_op_has_its_inplace_method_and_it_writes_in_place():
    for name in INPLACE_OPS:
        assert callable(getattr(gg.Tensor, name + "_")), name
    x = gg.tensor([1.0, 4.0, 9.0])
    data = x.array
    assert x.sqrt_() is x and x.array is data
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("name,args", [("addcmul_", (0.5,)), ("addcdiv_", (-2.0,)),
                                       ("lerp_", ())])
def test_inplace_composites_with_tensor_operands_get_gradients(name, args):
    """addcmul_/addcdiv_/lerp_ differentiate in their tensor operands (and a tensor lerp
    weight) as PyTorch does, also written into a leaf under no_grad-free recording."""
    a, b = rand(3, 4), positive(3, 4)
    w = rand(3, 4, low=0.0, high=1.0)
    grads = []
    for lib in (gg, torch):
        mk = gg.tensor if lib is gg else torch.tensor
        base = mk(rand(3, 4) * 0 + 1.0)  # a leaf that does not require grad
        ta, tb, tw = (mk(v, requires_grad=True) for v in (a, b, w))
        if name == "lerp_":
            out = base.lerp_(ta, tw)
        else:
            out = getattr(base, name)(ta, tb, value=args[0])
        assert out.requires_grad and not out.is_leaf
        out.sum().backward()
        grads.append([t.grad.numpy() for t in ((ta, tw) if name == "lerp_" else (ta, tb))])
    for g, t in zip(*grads):
        np.testing.assert_allclose(g, t, rtol=1e-6)


def test_deprecated_scalar_first_overloads_as_torch():
    """Old optimizers write p.add_(-lr, d_p) and exp_avg_sq.addcmul_(1 - beta2, g, g)."""
    x, y = rand(3), rand(3)
    for name, args in (("add_", (0.5, y)), ("sub_", (0.5, y)), ("addcmul_", (0.3, y, y)),
                       ("addcdiv_", (0.3, y, y + 3))):
        with pytest.warns(UserWarning, match="deprecated"):
            ours = getattr(gg.tensor(x), name)(*_args(args, gg))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch warns once per process
            theirs = getattr(torch.tensor(x), name)(*_args(args, torch))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    for bad in ((gg.tensor(y), 1, 2), (gg.tensor(y), 2), (1, 2)):
        with pytest.raises(TypeError, match=r"add_\(\) takes 1 positional argument"):
            gg.tensor(x).add_(*bad)


def test_inplace_bookkeeping_version_leaf_and_saved_tensor():
    leaf = gg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="exp_: a leaf Variable that requires grad"):
        leaf.exp_()
    with gg.no_grad():
        leaf.mul_(2).addcmul_(leaf, leaf, value=0.5)  # optimizer-style, allowed
    np.testing.assert_allclose(leaf.detach().numpy(), [4.0, 12.0])
    t = leaf * 1.0
    v = t._version.value if t._version is not None else 0
    y = t.exp()  # saves its output, not t
    z = t * t  # saves t
    t.sqrt_()
    assert t._version.value == v + 1
    y.sum().backward()  # unaffected
    with pytest.raises(RuntimeError, match="modified by an inplace operation|in-?place"):
        z.sum().backward()


def test_inplace_result_that_cannot_be_cast_back_raises_and_leaves_the_tensor():
    x = gg.tensor([4, 9])
    with pytest.raises(TypeError, match="sqrt_.*float32.*int64"):
        x.sqrt_()
    np.testing.assert_array_equal(x.numpy(), [4, 9])
    b = gg.tensor([0.5, 2.0])
    assert b.eq_(2.0) is b  # a bool result is cast into the float tensor, as in PyTorch
    np.testing.assert_array_equal(b.numpy(), [0.0, 1.0])


def test_div_rounding_mode_clamp_tensor_bounds_and_copy_non_blocking():
    x, lo = rand(3, 4), rand(4)
    np.testing.assert_allclose(gg.tensor(x).div_(0.7, rounding_mode="floor").numpy(),
                               torch.tensor(x).div_(0.7, rounding_mode="floor").numpy())
    np.testing.assert_allclose(gg.tensor(x).clamp_(min=gg.tensor(lo)).numpy(),
                               torch.tensor(x).clamp_(min=torch.tensor(lo)).numpy())
    z = gg.zeros(2, 3)
    z.copy_(gg.tensor([1, 2, 3]), non_blocking=True)
    np.testing.assert_array_equal(z.numpy(), [[1, 2, 3], [1, 2, 3]])


def test_composites_gradcheck_and_match_torch_with_broadcasting():
    """addcmul, addcdiv and lerp (composed of existing ops): float64 finite differences, and
    PyTorch's values and gradients with broadcasting and a tensor lerp weight on both sides
    of 0.5."""
    a, t1, t2 = rand(3, 4), rand(1, 4), positive(3, 1)
    w = rand(3, 4, low=0.0, high=1.0)
    gradcheck(lambda x, y, z: x.addcmul(y, z, value=-0.7), a, t1, t2)
    gradcheck(lambda x, y, z: x.addcdiv(y, z, value=1.3), a, t1, t2)
    gradcheck(lambda x, y, z: x.lerp(y, z), a, rand(3, 4), w)
    gradcheck(lambda x, y: x.lerp(y, 0.8), a, t1)
    check(lambda x, y, z: x.addcmul(y, z, value=0.5), [a, t1, t2])
    check(lambda x, y, z: x.addcdiv(y, z, value=-2.0), [a, t1, t2])
    check(lambda x, y, z: x.lerp(y, z), [a, rand(3, 4), w])
    check(lambda x, y: x.lerp(y, 0.25), [a, t1])
