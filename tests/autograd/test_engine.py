"""Engine behaviour: accumulation, graph freeing, hooks, grad modes, in-place checks."""

import gc
import threading
import tracemalloc

import numpy as np
import pytest

import gpugrad as gg


def leaf(*values):
    return gg.tensor(list(values), dtype=gg.float64, requires_grad=True)


def test_grad_accumulates_across_backward_calls_until_zeroed():
    x = leaf(1.0, 2.0)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]
    x.grad.zero_()
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_leaf_grads_never_alias_each_other():
    a, b = leaf(1.0), leaf(2.0)
    (a + b).sum().backward()
    a.grad.mul_(10)
    assert b.grad.tolist() == [1.0]


def test_user_gradient_is_not_aliased_by_grad():
    x = leaf(1.0, 2.0)
    g = gg.tensor([1.0, 1.0], dtype=gg.float64)
    (x + 0).backward(g)
    x.grad.mul_(5)
    assert g.tolist() == [1.0, 1.0]


def test_long_chain_does_not_recurse():
    x = gg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_graph_is_freed_and_memory_stays_flat():
    # host memory, measured by tracemalloc: CPU tensors whatever the default device
    w = gg.randn(64, 64, requires_grad=True, device="cpu")

    def step():
        h = (gg.randn(16, 64, device="cpu") @ w).tanh()
        (h * h).mean().backward()
        w.grad = None

    for _ in range(20):
        step()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(1000):
        step()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 200_000, f"memory grew by {grown} bytes over 1000 steps"


def test_no_reference_cycles_after_backward():
    gc.collect()
    gc.disable()
    try:
        x = gg.randn(8, requires_grad=True)
        y = (x.exp() * x).sigmoid().sum()
        y.backward()
        del y
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_second_backward_through_freed_graph_says_retain_graph():
    x = leaf(1.0, 2.0)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = leaf(1.0, 2.0)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_backward_on_non_scalar_needs_gradient():
    x = leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match=r"gradient=.*\(2,\)|\(2,\).*gradient="):
        (x * 2).backward()
    (x * 2).backward(gradient=gg.tensor([1.0, 0.5], dtype=gg.float64))
    assert x.grad.tolist() == [2.0, 1.0]


def test_backward_on_tensor_without_grad_says_what_to_do():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        gg.tensor([1.0]).sum().backward()


def test_gradient_shape_mismatch():
    x = leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(gg.ones(3, dtype=gg.float64))


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        gg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError):
        gg.arange(3).requires_grad_()


def test_non_differentiable_results_do_not_require_grad():
    x = leaf(1.0, -2.0)
    for out in (x > 0, x.argmax(), x.sign(), x.round(), x.floor(), x == x):
        assert not out.requires_grad


def test_no_grad_and_enable_grad():
    x = leaf(1.0)
    with gg.no_grad():
        y = x * 2
        with gg.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @gg.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert gg.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = []

    def worker():
        seen.append(gg.is_grad_enabled())

    with gg.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert seen == [True]


def test_hooks_and_retain_grad():
    x = leaf(1.0, 2.0)
    h = x * 3
    h.retain_grad()
    calls = []
    h.register_hook(lambda g: calls.append(g.tolist()))
    x.register_hook(lambda g: g * 10)
    (h * h).sum().backward()
    assert calls == [[6.0, 12.0]]
    assert h.grad.tolist() == [6.0, 12.0]
    assert x.grad.tolist() == [180.0, 360.0]


def test_hook_handle_remove():
    x = leaf(1.0)
    handle = x.register_hook(lambda g: g * 0)
    handle.remove()
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0]


def test_inplace_on_saved_tensor_raises_naming_the_op():
    x = leaf(1.0, 2.0)
    y = x.exp()
    z = y * 2
    y.mul_(3)  # exp saved its output y
    with pytest.raises(RuntimeError, match="ExpBackward"):
        z.sum().backward()


def test_inplace_not_saved_is_fine():
    x = leaf(1.0, 2.0)
    y = x * 2
    y += 1
    y *= 3
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]


def test_inplace_on_leaf_requiring_grad_is_refused():
    x = leaf(1.0)
    with pytest.raises(RuntimeError, match="leaf"):
        x.add_(1)
    with gg.no_grad():
        x.add_(1)
    assert x.tolist() == [2.0]


def test_inplace_dtype_mismatch():
    a = gg.zeros(2)
    with pytest.raises(TypeError, match="float32.*float64|float64.*float32"):
        a.add_(gg.ones(2, dtype=gg.float64))


def test_detach_and_data():
    x = leaf(1.0, 2.0)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf
    d = x.data
    assert not d.requires_grad and np.shares_memory(d.array, x.array)


def test_numpy_refuses_tensor_requiring_grad():
    x = leaf(1.0)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0]


def test_autograd_grad_does_not_touch_dot_grad():
    x = leaf(1.0, 2.0)
    (g,) = gg.autograd.grad((x * x).sum(), x)
    assert g.tolist() == [2.0, 4.0] and x.grad is None


def test_autograd_grad_of_intermediate():
    x = leaf(1.0, 2.0)
    h = x * 3
    (g,) = gg.autograd.grad((h * h).sum(), h)
    assert g.tolist() == [6.0, 12.0]


def test_autograd_grad_unused_input():
    x, y = leaf(1.0), leaf(2.0)
    with pytest.raises(RuntimeError, match="allow_unused"):
        gg.autograd.grad((x * 2).sum(), [x, y])
    gx, gy = gg.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gy is None and gx.tolist() == [2.0]


def test_mixed_dtype_promotes_and_grads_keep_dtype():
    a = gg.tensor([1.0, 2.0], requires_grad=True)
    b = gg.tensor([3.0, 4.0], dtype=gg.float64, requires_grad=True)
    y = a * b
    assert y.dtype == gg.float64
    y.sum().backward()
    assert a.grad.dtype == gg.float32 and b.grad.dtype == gg.float64


def test_python_scalars_do_not_promote():
    x = gg.ones(2)
    assert (x * 2.0).dtype == gg.float32
    assert (gg.arange(3) * 2.5).dtype == gg.float32
    assert (gg.arange(3) / 2).dtype == gg.float32
    assert (gg.arange(3) + 1).dtype == gg.int64


class _Cube(gg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x


def test_custom_function_first_and_second_order():
    x = gg.tensor(2.0, dtype=gg.float64, requires_grad=True)
    y = _Cube.apply(x)
    assert y.grad_fn is not None
    (g,) = gg.autograd.grad(y, x, create_graph=True)
    (h,) = gg.autograd.grad(g, x)
    assert (g.item(), h.item()) == (12.0, 12.0)
    assert gg.autograd.gradcheck(_Cube.apply, (gg.tensor([0.3, -1.2], dtype=gg.float64,
                                                          requires_grad=True),))


def test_gradcheck_catches_a_wrong_vjp():
    class Wrong(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2x·g

    x = gg.tensor([1.5], dtype=gg.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        gg.autograd.gradcheck(Wrong.apply, (x,))


def test_device_mismatch_names_both_devices():
    from gpugrad.backend.numpy_backend import NumpyBackend
    from gpugrad.tensor import _wrap_array

    other = NumpyBackend(gg.device("cuda:1"))  # stands in for a second device
    a = gg.ones(2, device="cpu")
    b = _wrap_array(np.ones(2, dtype=np.float32), other)
    with pytest.raises(gg.DeviceError, match="cpu.*cuda:1"):
        a + b
    with pytest.raises(gg.DeviceError, match="cpu.*cuda:1|cuda:1.*cpu"):
        a @ b


def test_shape_mismatch_names_both_shapes_and_op():
    with pytest.raises(gg.ShapeError, match=r"matmul.*\(3, 4\).*\(5, 6\)"):
        gg.ones(3, 4) @ gg.ones(5, 6)
    with pytest.raises(gg.ShapeError, match=r"add.*\(2, 3\).*\(4,\)"):
        gg.ones(2, 3) + gg.ones(4)


def test_matmul_dtype_mismatch():
    with pytest.raises(TypeError, match="float32.*float64"):
        gg.ones(2, 2) @ gg.ones(2, 2, dtype=gg.float64)


def test_linear_weight_grad_is_row_major_and_unaliased():
    x = gg.randn(8, 5)
    w = gg.randn(3, 5, requires_grad=True)
    v = gg.randn(3, 5, requires_grad=True)
    ((x @ w.T).sum() + (x @ v.T).sum()).backward()
    assert w.grad.array.flags.c_contiguous
    np.testing.assert_allclose(w.grad.numpy(), np.ones((8, 3)).T @ x.numpy(), rtol=1e-5)
    w.grad.mul_(0)
    assert np.abs(v.grad.numpy()).sum() > 0


def test_two_leaves_given_views_of_one_array_do_not_alias():
    class Split(gg.autograd.Op):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            t = g * 2  # fresh; both gradients are views of it
            return t.reshape(-1).reshape(g.shape), t.T.T

    a = gg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = gg.tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)
    Split.apply(a, b).sum().backward()
    a.grad.mul_(10)
    assert b.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    assert a.grad.tolist() == [[20.0, 20.0], [20.0, 20.0]]


def test_autograd_grad_runs_nothing_upstream_of_its_inputs():
    calls = []

    class Exploding(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            raise AssertionError("upstream of the requested input: must not run")

    x = leaf(1.0, 2.0)
    h = Exploding.apply(x)
    y = h * 3
    z = (y * y).sum() + (x * x).sum()  # x is also used directly: still not needed here
    (gh,) = gg.autograd.grad(z, h, retain_graph=True)
    assert gh.tolist() == [18.0, 36.0] and calls == []
    with pytest.raises(AssertionError, match="must not run"):  # x is upstream: now it runs
        gg.autograd.grad(z, x)


# --- gradients summed in place (without create_graph) must never touch a shared array ------
def test_passed_through_gradient_is_not_summed_into():
    x = leaf(1.0, 2.0)
    gy = gg.tensor([1.0, 10.0], dtype=gg.float64)
    y = x + x  # Add hands the same upstream gradient to both of x's edges
    (y + x * 3).backward(gy)
    assert x.grad.tolist() == [5.0, 50.0]
    assert gy.tolist() == [1.0, 10.0]


def test_same_array_returned_for_two_inputs_is_not_summed_into():
    from gpugrad.autograd.function import Op

    class Twice(Op):  # returns one array as the gradient of both inputs
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            same = g * 2
            return same, same

    for twice_first in (True, False):
        a, b = leaf(1.0, 1.0), leaf(1.0, 1.0)
        c = gg.tensor([1.0, 1.0], dtype=gg.float64, requires_grad=True) * 1
        # a and b each get a second contribution, before or after the shared array
        terms = [Twice.apply(a, b), (a * 5).exp().log() + (b * 3).exp().log() + c]
        out = terms[0] + terms[1] if twice_first else terms[1] + terms[0]
        out.sum().backward()
        assert a.grad.tolist() == [7.0, 7.0]
        assert b.grad.tolist() == [5.0, 5.0]


def test_user_function_gradient_is_not_summed_into():
    class Keep(gg.autograd.Function):
        kept = []

        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            out = g * 2
            Keep.kept.append(out)
            return out

    for keep_first in (True, False):
        Keep.kept.clear()
        x = leaf(1.0, 2.0)
        terms = [Keep.apply(x), (x * 3).exp().log()]
        (terms[0] + terms[1] if keep_first else terms[1] + terms[0]).sum().backward()
        assert x.grad.tolist() == [5.0, 5.0]
        assert Keep.kept[0].tolist() == [2.0, 2.0]


@pytest.mark.parametrize("seed", range(40))
def test_in_place_sums_match_torch_on_random_graphs_with_shared_subexpressions(seed):
    """Random DAGs where many nodes feed several others, through ops that pass their
    gradient through unchanged (add, reshape, clone, views) and ops that make new ones."""
    import torch

    rng = np.random.default_rng(seed)
    xv = rng.standard_normal((3, 4))
    x = gg.tensor(xv, requires_grad=True)
    xt = torch.tensor(xv, requires_grad=True)
    ops = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b,
           lambda a, b: (a + b).reshape(4, 3).reshape(3, 4), lambda a, b: a.clone() + b,
           lambda a, b: a.sin() + b, lambda a, b: (a * 0.5).exp() * b,
           lambda a, b: a.transpose(0, 1).transpose(0, 1) + b * 2]
    plan = [(int(rng.integers(len(ops))), int(rng.integers(k + 1)), int(rng.integers(k + 1)))
            for k in range(12)]
    picks = rng.choice(13, size=4, replace=False)
    for t in (x, xt):
        nodes = [t]
        for op, i, j in plan:
            nodes.append(ops[op](nodes[i], nodes[j]))
        loss = sum((nodes[k] * (k + 1)).sum() for k in picks) + nodes[-1].sum()
        loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_in_place_sums_match_torch_on_a_diamond_graph():
    import torch

    rng = np.random.default_rng(0)
    xv = rng.standard_normal((64, 33))
    x = gg.tensor(xv, requires_grad=True)
    xt = torch.tensor(xv, requires_grad=True)
    for lib, t in ((gg, x), (torch, xt)):
        s = lib.sigmoid(t)
        u = s * t
        v = lib.tanh(u + t * s) * s
        (v + u.exp() + t.reshape(-1).reshape(64, 33) * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_retained_intermediate_grad_is_complete_and_untouched():
    x = leaf(1.0, 2.0)
    y = x * 3
    y.retain_grad()
    (y * 1 + y * 2 + y.exp() * 0).sum().backward()
    kept = y.grad.tolist()
    assert kept == [3.0, 3.0]
    assert x.grad.tolist() == [9.0, 9.0]


def test_leaf_hook_runs_as_soon_as_its_gradient_is_complete():
    """A leaf's gradient is final when its last edge has delivered: its hooks run (and
    .grad is set) then, before the rest of backward, as PyTorch's AccumulateGrad does;
    data parallelism relies on it to overlap reduction with backward."""
    events = []

    class Recorder(gg.autograd.Function):
        @staticmethod
        def forward(ctx, h):
            return h * 1

        @staticmethod
        def backward(ctx, g):
            events.append("upstream node")
            return g

    x, w1, w2 = leaf(1.0, 2.0), leaf(3.0, 4.0), leaf(5.0, 6.0)
    w1.register_hook(lambda g: events.append("w1"))
    w2.register_hook(lambda g: events.append(("w2", w2.grad is None)))
    h = Recorder.apply(x * w1)
    (h * w2 + w2).sum().backward()  # two edges into w2, both from the last node
    assert events == [("w2", True), "upstream node", "w1"]
    assert w2.grad.tolist() == [4.0, 9.0]
    assert w1.grad.tolist() == [5.0, 12.0]
