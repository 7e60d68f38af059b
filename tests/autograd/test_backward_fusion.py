"""Backward-chain fusion in the engine: connected pointwise nodes whose intermediate
gradients nothing else sees run their composed VJP as one program. Fused must equal
unfused (the engine with region search switched off) on random chains, and everything a
user can observe (hooks, retain_grad, autograd.grad inputs, .grad aliasing, errors) must
be as without fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpugrad as gg
import gpugrad.autograd.engine as engine
import gpugrad.nn.functional as F
from gpugrad.ops import pointwise
from gpugrad.ops.table import ROWS

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=1e-5),
       "float16": dict(rtol=2e-2, atol=2e-2), "complex128": dict(rtol=1e-10, atol=1e-12)}


def _unfused(fn, monkeypatch=None):
    """fn() with the engine's region search switched off."""
    old = engine._fusion_region
    engine._fusion_region = lambda *a: None
    try:
        return fn()
    finally:
        engine._fusion_region = old


def _regions() -> int:
    return pointwise.FUSION_STATS["regions"]


# --- random chains ------------------------------------------------------------------------
UNARY = {
    "tanh": gg.tanh, "sigmoid": gg.sigmoid, "sin": gg.sin, "silu": F.silu,
    "exp_small": lambda v: gg.exp(v * 0.25), "square": lambda v: v * v,
    "softplus": lambda v: F.softplus(v, beta=2.0, threshold=5.0),
    "leaky": lambda v: F.leaky_relu(v, 0.1), "elu": lambda v: F.elu(v, alpha=0.7),
    "gelu": F.gelu, "abs": gg.abs, "neg": lambda v: -v, "scale": lambda v: v * 1.5 - 0.25,
}
BINARY = {
    "mul": lambda a, b: a * b, "add": lambda a, b: a + b, "sub": lambda a, b: a - b,
    "add_alpha": lambda a, b: gg.add(a, b, alpha=0.5),
    "div": lambda a, b: a / (b * b + 1.0), "maximum": gg.maximum,
    "where": lambda a, b: gg.where(a > b, a, b * 0.5),
    "lerp": lambda a, b: gg.lerp(a, b, 0.3),
}


def _lerp3(a, b, c):
    return gg.lerp(a, b, gg.sigmoid(c))


steps = st.lists(st.tuples(st.sampled_from(sorted(UNARY) + sorted(BINARY) + ["lerp3"]),
                           st.integers(0, 100), st.integers(0, 100)), min_size=2, max_size=9)


def _build(ops, x, w):
    """A chain over the pool [w, x, ...]: each step's first operand is the newest value
    (so the chain is long, of x's shape), the others are drawn from the pool (leaves used
    many times, values with several consumers). It starts with sin(tanh(x)), whose tanh
    nothing else reads: one region at least."""
    pool = [w, x, gg.sin(gg.tanh(x))]
    for name, i, j in ops:
        last = pool[-1]
        if name in UNARY:
            v = UNARY[name](last)
        elif name in BINARY:
            v = BINARY[name](last, pool[i % len(pool)])
        else:
            v = _lerp3(last, pool[i % len(pool)], pool[j % len(pool)])
        pool.append(v)
    return pool[-1]


def _run_chain(ops, xa, wa, cot, dtype, fused: bool):
    def go():
        x = gg.tensor(xa, dtype=dtype, requires_grad=True)
        w = gg.tensor(wa, dtype=dtype, requires_grad=True)
        y = _build(ops, x, w)
        y.backward(gg.tensor(np.broadcast_to(cot, y.shape).copy(), dtype=dtype))
        return [t.numpy() for t in (y.detach(), x.grad, w.grad) if t is not None]
    return go() if fused else _unfused(go)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=steps, dtype=st.sampled_from(["float64", "float32", "float16"]),
       wshape=st.sampled_from([(3, 5), (5,), (1, 5), (3, 1)]),
       noncontig=st.booleans(), seed=st.integers(0, 2**16))
def test_random_chains_fused_equal_unfused(ops, dtype, wshape, noncontig, seed):
    rng = np.random.default_rng(seed)
    xa = rng.uniform(-1.5, 1.5, (3, 5))
    if noncontig:
        xa = np.asfortranarray(xa)  # read through non-contiguous strides
    wa = rng.uniform(-1.5, 1.5, wshape)
    cot = rng.uniform(-1, 1, (3, 5))
    dt = getattr(gg, dtype)
    before = _regions()
    fused = _run_chain(ops, xa, wa, cot, dt, True)
    ran_fused = _regions() > before
    unfused = _run_chain(ops, xa, wa, cot, dt, False)
    assert len(fused) == len(unfused)
    for a, b in zip(fused, unfused):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), **TOL[dtype])
    assert ran_fused


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_activation_chain_matches_torch_and_is_one_program(dtype, monkeypatch):
    """The benchmark's chain: its whole backward (below the sum) is one pointwise call."""
    xa = np.random.default_rng(0).standard_normal((64, 32)).astype(dtype)
    x = gg.tensor(xa, requires_grad=True)
    y = gg.tanh(gg.sigmoid(x) * x + F.swish(x, 1.0)).sum()
    be = x._backend
    calls = []
    real = type(be).pointwise
    monkeypatch.setattr(type(be), "pointwise",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    y.backward(retain_graph=True)
    assert len(calls) == 1
    fused = x.grad.numpy()
    x.grad = None
    calls.clear()
    _unfused(lambda: y.backward())
    assert len(calls) > 1
    np.testing.assert_allclose(fused, x.grad.numpy(), **TOL[dtype])
    t = torch.tensor(xa, requires_grad=True)
    torch.tanh(torch.sigmoid(t) * t + t * torch.sigmoid(t)).sum().backward()
    np.testing.assert_allclose(fused, t.grad.numpy(), **TOL[dtype])


def test_complex_chain():
    rng = np.random.default_rng(3)
    za = rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))
    wa = rng.standard_normal((3,)) + 1j * rng.standard_normal((3,))
    cot = rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))

    def go():
        z = gg.tensor(za, requires_grad=True)
        w = gg.tensor(wa, requires_grad=True)
        y = gg.exp(z * w * 0.5) + gg.sin(z) * z - w
        y.backward(gg.tensor(cot))
        return z.grad.numpy(), w.grad.numpy()

    before = _regions()
    fused = go()
    assert _regions() > before
    unfused = _unfused(go)
    t, tw = torch.tensor(za, requires_grad=True), torch.tensor(wa, requires_grad=True)
    (torch.exp(t * tw * 0.5) + torch.sin(t) * t - tw).backward(torch.tensor(cot))
    for a, b, c in zip(fused, unfused, (t.grad.numpy(), tw.grad.numpy())):
        np.testing.assert_allclose(a, b, **TOL["complex128"])
        np.testing.assert_allclose(a, c, **TOL["complex128"])


def test_long_chain_is_split_and_leaf_used_everywhere():
    xa = np.random.default_rng(1).uniform(-0.5, 0.5, (4, 4))

    def go():
        x = gg.tensor(xa, requires_grad=True)
        y = x
        for _ in range(30):  # 120 nodes: several regions of at most REGION_MAX_NODES
            y = gg.tanh(y * 1.0001 + x) - 0.5
        y.sum().backward()
        return x.grad.numpy()

    before = dict(pointwise.FUSION_STATS)
    fused = go()
    regions = pointwise.FUSION_STATS["regions"] - before["regions"]
    nodes = pointwise.FUSION_STATS["nodes"] - before["nodes"]
    assert regions >= 120 // engine.REGION_MAX_NODES and nodes == 120
    np.testing.assert_allclose(fused, _unfused(go), rtol=1e-12, atol=1e-12)


def test_shared_subexpression_and_broadcast_root_cotangent():
    """σ(x) feeds two consumers (not fused into one tree, still right); the sum's
    broadcast cotangent is read as one value, and a program that reads no full-size array
    still gives x.grad its full shape, writable for accumulation."""
    xa = np.random.default_rng(2).standard_normal((5, 6))

    def go():
        x = gg.tensor(xa, requires_grad=True)
        s = gg.sigmoid(x)
        (gg.tanh(s * x) + s * 2.0).sum().backward()
        ((x * 2.0 + 1.0) * 3.0).sum().backward()  # reads only the cotangent
        return x.grad.numpy().copy()

    np.testing.assert_allclose(go(), _unfused(go), rtol=1e-12)


@pytest.mark.parametrize("exp_first", [True, False])
def test_a_producer_whose_other_consumer_already_ran_stays_out_of_a_region(exp_first):
    """Regions grow as their heads run: sin(x) feeds exp (a region head of its own) and
    tanh (behind a matmul, so it runs later). When tanh's region grows, one edge into
    sin is left, but sin already holds exp's contribution: it must not join (the count
    that decides is the one before the walk), or exp's part of x.grad is lost."""
    xa = np.random.default_rng(4).standard_normal((3, 4))
    wa = np.random.default_rng(5).standard_normal((4, 2))

    def go():
        x = gg.tensor(xa, requires_grad=True)
        v = gg.sin(x)
        a = gg.exp(v).sum()
        b = (gg.tanh(v) @ gg.tensor(wa)).sum()
        (a + b if exp_first else b + a).backward()
        return x.grad.numpy()

    xt = torch.tensor(xa, requires_grad=True)
    vt = torch.sin(xt)
    (torch.exp(vt).sum() + (torch.tanh(vt) @ torch.tensor(wa)).sum()).backward()
    np.testing.assert_allclose(go(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(go(), _unfused(go), rtol=1e-12)


def test_contributions_to_a_non_leaf_are_summed_in_the_program():
    """h (a matmul's output) feeds three nodes of one region: their contributions are one
    program output, and the matmul still runs once, after all three edges delivered."""
    rng = np.random.default_rng(8)
    xa, wa = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))

    def go(lib, **kw):
        x = lib.tensor(xa, requires_grad=True)
        w = lib.tensor(wa, requires_grad=True)
        h = x @ w
        y = lib.tanh(h) * h + lib.sigmoid(h) - h * 0.5
        y.sum().backward(**kw)
        return x.grad.numpy(), w.grad.numpy()

    before = _regions()
    fused = go(gg)
    assert _regions() == before + 1
    for a, b, c in zip(fused, _unfused(lambda: go(gg)), go(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_allclose(a, c, rtol=1e-10)


def test_a_broadcast_input_is_reduced_once_per_region(monkeypatch):
    xa = np.random.default_rng(9).standard_normal((4, 5))
    ba = np.random.default_rng(10).standard_normal(5)

    def go():
        x = gg.tensor(xa, requires_grad=True)
        b = gg.tensor(ba, requires_grad=True)
        y = x
        for _ in range(6):
            y = gg.tanh(y) + b
        y.sum().backward()
        return x.grad.numpy(), b.grad.numpy()

    be = gg.tensor(xa)._backend
    calls = []
    real = type(be).sum_to_shape
    monkeypatch.setattr(type(be), "sum_to_shape",
                        lambda self, a, shape: calls.append(shape) or real(self, a, shape))
    fused = go()
    assert calls == [(5,)]  # six contributions to b, summed in the program
    calls.clear()
    unfused = _unfused(go)
    assert calls == [(5,)] * 6
    for a, b in zip(fused, unfused):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_retained_graph_runs_fused_twice_and_accumulates():
    x = gg.tensor(np.linspace(-1, 1, 8).reshape(2, 4), requires_grad=True)
    y = (gg.tanh(gg.sigmoid(x) * x) * 2.0).sum()
    y.backward(retain_graph=True)
    once = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * once, rtol=1e-12)
    x.grad = None
    z = (gg.tanh(gg.sigmoid(x) * x) * 2.0).sum()
    _unfused(z.backward)
    np.testing.assert_allclose(x.grad.numpy(), once, rtol=1e-12)


# --- what users observe is unchanged ------------------------------------------------------
def test_hook_and_retain_grad_on_an_intermediate():
    xa = np.random.default_rng(4).standard_normal((3, 4))
    seen = []

    def go():
        x = gg.tensor(xa, requires_grad=True)
        h = gg.sigmoid(x) * x
        h.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 2)
        r = gg.tanh(h) + 1.0
        r.retain_grad()
        m = gg.exp(r * 0.1)
        (m * 3.0).sum().backward()
        return x.grad.numpy(), r.grad.numpy()

    before = dict(pointwise.FUSION_STATS)
    fused = go()
    # three regions (σ·x | tanh, +1 | ·0.1, exp, ·3) form around the hooked and the
    # retained value, never across them
    assert pointwise.FUSION_STATS["regions"] - before["regions"] == 3
    assert pointwise.FUSION_STATS["nodes"] - before["nodes"] == 7
    unfused = _unfused(go)
    assert len(seen) == 2
    np.testing.assert_allclose(seen[0], seen[1], rtol=1e-12)
    for a, b in zip(fused, unfused):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_autograd_grad_with_an_intermediate_input():
    xa = np.random.default_rng(5).standard_normal((3, 4))

    def go():
        x = gg.tensor(xa, requires_grad=True)
        h = gg.sigmoid(x) * 2.0
        y = gg.tanh(h * x + gg.exp(h * 0.5))
        return [g.numpy() for g in gg.autograd.grad(y.sum(), [h, x])]

    for a, b in zip(go(), _unfused(go)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_second_order_through_create_graph():
    xa = np.random.default_rng(6).standard_normal((3, 4))

    def go():
        x = gg.tensor(xa, requires_grad=True)
        y = gg.tanh(gg.sigmoid(x) * x + F.silu(x))
        (gx,) = gg.autograd.grad(y.sum(), x, create_graph=True)
        (gx * gx).sum().backward()  # fused: the backward rows' nodes form regions
        return gx.detach().numpy(), x.grad.numpy()

    before = _regions()
    fused = go()
    assert _regions() > before
    for a, b in zip(fused, _unfused(go)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    t = torch.tensor(xa, requires_grad=True)
    ty = torch.tanh(torch.sigmoid(t) * t + torch.nn.functional.silu(t))
    (tg,) = torch.autograd.grad(ty.sum(), t, create_graph=True)
    (tg * tg).sum().backward()
    np.testing.assert_allclose(fused[1], t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_create_graph_backward_is_not_fused():
    x = gg.tensor(np.linspace(-1, 1, 6), requires_grad=True)
    before = _regions()
    (gx,) = gg.autograd.grad(gg.tanh(gg.sin(x) * 2.0).sum(), x, create_graph=True)
    assert _regions() == before and gx.grad_fn is not None


def test_passed_through_cotangent_is_not_aliased_by_grad():
    x = gg.tensor(np.ones(4), requires_grad=True)
    g = gg.tensor(np.full(4, 2.0))
    ((x + 0.5) - 0.25).backward(g)  # both VJPs pass ȳ through: the program reads only it
    assert not np.shares_memory(x.grad.numpy(), g.numpy())
    g.add_(1.0)
    assert x.grad.tolist() == [2.0] * 4
    ((x + 0.5) - 0.25).backward(g)  # accumulates in place into a .grad of its own
    assert x.grad.tolist() == [5.0] * 4 and g.tolist() == [3.0] * 4


def test_errors_are_as_unfused():
    x = gg.tensor(np.linspace(-1, 1, 6), requires_grad=True)
    y = gg.tanh(gg.sigmoid(x) * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    y = (gg.sin(x) * x * 2.0).sum()  # the region's first nodes save only operands
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    s = gg.sigmoid(x)
    z = gg.tanh(s * x)
    s.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_anomaly_mode_runs_unfused():
    x = gg.tensor(np.linspace(-1, 1, 6), requires_grad=True)
    before = _regions()
    with gg.autograd.detect_anomaly():
        gg.tanh(gg.sigmoid(x) * x).sum().backward()
    assert _regions() == before
    expected = x.grad.numpy().copy()
    x.grad = None
    gg.tanh(gg.sigmoid(x) * x).sum().backward()
    assert _regions() > before
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


def test_region_search_finds_nothing_without_fusable_links():
    x = gg.tensor(np.ones((2, 3)), requires_grad=True)
    y = (gg.tanh(x) @ gg.tensor(np.ones((3, 2)))).sum()  # tanh's only consumer: matmul
    before = _regions()
    y.backward()
    assert _regions() == before


@pytest.mark.gpu
def test_cuda_chain_fused_equals_cpu():
    rng = np.random.default_rng(7)
    xa = rng.standard_normal((33, 17)).astype(np.float32)
    wa = rng.standard_normal((17,)).astype(np.float32)

    def go(device):
        x = gg.tensor(xa, device=device, requires_grad=True)
        w = gg.tensor(wa, device=device, requires_grad=True)
        y = gg.tanh(gg.sigmoid(x) * x + F.silu(x) * w) - F.softplus(w * x, beta=2.0)
        y.sum().backward()
        return x.grad.cpu().numpy(), w.grad.cpu().numpy()

    before = _regions()
    on_gpu = go("cuda")
    assert _regions() > before
    for a, b in zip(on_gpu, _unfused(lambda: go("cpu"))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_nodes_with_several_outputs_end_a_region(monkeypatch):
    """A node with several outputs (a VJP row recorded by double backward: mul's gives
    ȳ·b and ȳ·a) receives several cotangents, so it neither roots nor joins a region (the
    LSTM cell's second derivative lost w1's cotangent when it did)."""
    mul_vjp = ROWS["mul"].backward_row((True, True), False)[0]  # (x1·x2, x0·x2)
    add_vjp = ROWS["add"].backward_row((True, True), False)[0]  # (x0, x0)
    data = [np.random.default_rng(5).standard_normal((3, 2)) for _ in range(3)]

    def grads():
        x, y, g = (gg.tensor(a, requires_grad=True) for a in data)
        v0, _ = add_vjp.apply(gg.tanh(g))
        w0, w1 = mul_vjp.apply(x, y, v0)
        both = gg.autograd.grad((w0 * 2 + w1 * 3).sum(), [x, y, g])
        # one output read, by a node of one output: the several-output node still stays
        # out of that node's region (its other cotangent is not the region's)
        w0, _ = mul_vjp.apply(x, y, gg.tanh(g))
        first = gg.autograd.grad(gg.exp(w0).sum(), [x, y, g])
        return [t.numpy() for t in both + first]

    fused = grads()
    monkeypatch.setattr(engine, "_fusion_region", lambda *a: None)
    for f, u in zip(fused, grads()):
        np.testing.assert_allclose(f, u, rtol=1e-12)
