"""gg.fuse: a chain of pointwise ops that starts on a softmax, log-softmax or layer-norm
output runs as that row op's epilogue (one blocked CPU pass, one generated CUDA row kernel)
instead of a second pass over its output; values and gradients (first and second order)
are those of the unfused ops and of PyTorch."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from oracle import second_order

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import profiler
from gpugrad.backend import cpu_backend, cpu_parallel
from gpugrad.backend import row_epilogue as RE
from tests.test_fuse import DTYPES, TOL, _close, _np

C = 24


@pytest.fixture
def passes(monkeypatch):
    """{"pointwise": programs run by backend.pointwise, "epilogue": keep_y of each row-op
    epilogue pass} on the CPU; blocks of 64 elements, so that small arrays are cut into
    several blocks shared by the threads."""
    seen: dict = {"pointwise": [], "epilogue": []}
    cls = type(cpu_backend)
    pw, rows = cls.pointwise, cls.rows_epilogue

    def pointwise(self, prog, *args, **kwargs):
        seen["pointwise"].append(prog.key)
        return pw(self, prog, *args, **kwargs)

    def rows_epilogue(self, rows_fn, x, blockable, epilogue):
        seen["epilogue"].append(epilogue.keep_y)
        return rows(self, rows_fn, x, blockable, epilogue)

    monkeypatch.setattr(cls, "pointwise", pointwise)
    monkeypatch.setattr(cls, "rows_epilogue", rows_epilogue)
    monkeypatch.setattr(cpu_parallel, "BLOCK", 64)
    return seen


# The chains: (name, function of (x, w, b), the PyTorch twin)
def softmax_affine_gelu(x, w, b):
    return F.gelu(F.softmax(x, -1) * w + b)


def log_softmax_chain(x, w, b):
    return gg.tanh(F.log_softmax(x, -1) * 0.5 + w) * b


def log_softmax_mid(x, w, b):  # a 3-D input normalised over its middle axis
    return gg.exp(F.log_softmax(x, 1)) * w - b


def layer_norm_silu(x, w, b):
    return F.silu(F.layer_norm(x, (x.shape[-1],), w, b, 1e-5))


def softmax_dim0(x, w, b):
    return gg.sigmoid(F.softmax(x, 0) * w - b)


CHAINS = {
    "softmax_affine_gelu": (softmax_affine_gelu, lambda x, w, b: torch.nn.functional.gelu(
        torch.softmax(x, -1) * w + b)),
    "log_softmax": (log_softmax_chain, lambda x, w, b: torch.tanh(
        torch.log_softmax(x, -1) * 0.5 + w) * b),
    "log_softmax_mid": (log_softmax_mid, lambda x, w, b: torch.exp(
        torch.log_softmax(x, 1)) * w - b),
    "layer_norm_silu": (layer_norm_silu, lambda x, w, b: torch.nn.functional.silu(
        torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, 1e-5))),
    "softmax_dim0": (softmax_dim0, lambda x, w, b: torch.sigmoid(torch.softmax(x, 0) * w - b)),
}


def _inputs(dtype: str, shape=(12, 5, C), device="cpu", seed=0):
    rng = np.random.default_rng(seed)
    dt = getattr(gg, dtype)
    arrays = [rng.standard_normal(shape) * 2, rng.standard_normal(C),
              rng.standard_normal(C) * 0.5 + 1]
    ours = [gg.tensor(a, dtype=dt, device=device, requires_grad=True) for a in arrays]
    return arrays, ours


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CHAINS))
def test_chain_after_a_row_op_is_its_epilogue(name, dtype, passes):
    fn, _ = CHAINS[name]
    _, (x, w, b) = _inputs(dtype)
    y1 = gg.fuse(fn)(x, w, b)
    assert passes["pointwise"] == [] and passes["epilogue"] == [True]  # one pass, y kept
    assert y1.grad_fn.name() == "FusedBackward"
    y0 = fn(x, w, b)
    _close(y1, y0, dtype)
    g = gg.randn(*y0.shape, dtype=y0.dtype)
    for a, c in zip(gg.autograd.grad(y1, [x, w, b], g), gg.autograd.grad(y0, [x, w, b], g)):
        _close(a, c, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CHAINS))
def test_epilogue_matches_pytorch(name, dtype):
    fn, twin = CHAINS[name]
    arrays, ours = _inputs(dtype, shape=(5, 7, C), seed=1)
    theirs = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
    y1, y0 = gg.fuse(fn)(*ours), twin(*theirs)
    np.testing.assert_allclose(_np(y1), y0.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(2).standard_normal(y0.shape)
    y1.backward(gg.tensor(g, dtype=getattr(gg, dtype)))
    y0.backward(torch.tensor(g, dtype=getattr(torch, dtype)))
    for a, c in zip(ours, theirs):
        np.testing.assert_allclose(_np(a.grad), c.grad.numpy(), **TOL[dtype])


def test_without_grad_only_the_chain_is_stored(passes):
    _, (x, w, b) = _inputs("float32")
    with gg.no_grad():
        y1 = gg.fuse(softmax_affine_gelu)(x, w, b)
        y0 = softmax_affine_gelu(x, w, b)
    # without a node to record and with y unused, y is never stored; the one pointwise
    # call is the unfused twin's
    assert passes["epilogue"] == [False] and len(passes["pointwise"]) == 1
    assert y1.grad_fn is None
    _close(y1, y0, "float32")


def test_row_op_output_read_afterwards_is_kept(passes):
    _, (x, w, b) = _inputs("float64")
    v = gg.randn(C, 5, dtype=gg.float64, requires_grad=True)
    with gg.fuse():
        s = F.softmax(x, -1)
        z = F.gelu(s * w + b)
    assert passes["epilogue"] == [True] and passes["pointwise"] == []
    assert s.grad_fn.name() == "SoftmaxBackward" and z.grad_fn.name() == "FusedBackward"
    out = (z.sum() + (s @ v).sum())
    s0 = F.softmax(x, -1)
    ref = F.gelu(s0 * w + b).sum() + (s0 @ v).sum()
    _close(out, ref, "float64")
    for a, c in zip(gg.autograd.grad(out, [x, w, b, v]), gg.autograd.grad(ref, [x, w, b, v])):
        _close(a, c, "float64")


def test_row_op_output_used_by_other_ops_runs_alone(passes):
    _, (x, w, b) = _inputs("float64")
    v = gg.randn(C, C, dtype=gg.float64)
    a2 = gg.randn(12, 5, C, dtype=gg.float64, requires_grad=True)

    def f(x, w, b):
        p = F.softmax(x, -1) @ v  # a matmul reads it: softmax runs as usual
        two = F.softmax(x, -1) + F.log_softmax(a2, -1) * w  # two row ops in one chain
        red = (F.layer_norm(x, (C,), w, b) * 2).sum(dim=-1)  # a reduction epilogue
        return p, two, red

    got = gg.fuse(f)(x, w, b)
    want = f(x, w, b)
    params = [x, w, b, a2]
    loss1 = sum((t * t).sum() for t in got)
    loss0 = sum((t * t).sum() for t in want)
    for a, c in zip(got, want):
        _close(a, c, "float64")
    for a, c in zip(gg.autograd.grad(loss1, params), gg.autograd.grad(loss0, params)):
        _close(a, c, "float64")


def test_chain_of_another_shape_does_not_fuse(passes):
    _, (x, w, b) = _inputs("float32", shape=(10, C))
    big = gg.randn(3, 10, C)
    y1 = gg.fuse(lambda x: gg.tanh(F.softmax(x, -1) * big))(x)  # y broadcast: read 3 times
    assert passes["epilogue"] == [] and len(passes["pointwise"]) == 1
    _close(y1, gg.tanh(F.softmax(x, -1) * big), "float32")


def test_profile_shows_one_epilogue_pass():
    _, (x, w, b) = _inputs("float32")
    with profiler.profile() as prof:
        gg.fuse(softmax_affine_gelu)(x, w, b)
    names = [e.name for e in prof.events() if e.kind == "kernel"]
    assert len([n for n in names if n.startswith("gg_rows_epi_")]) == 1
    assert not [n for n in names if n.startswith("gg_pw_")]
    with profiler.profile() as plain:
        softmax_affine_gelu(x, w, b)
    assert len([e for e in plain.events() if e.kind == "kernel"
                and e.name.startswith("gg_pw_")]) >= 1


def test_in_place_write_before_the_row_op_ran_leaves_its_value():
    x = gg.randn(4, C)
    s0 = F.softmax(x, -1)
    with gg.fuse():
        s = F.softmax(x, -1)
        x.add_(1.0)  # s was deferred reading x: it reads a copy from before the write
        t = gg.tanh(s * 2)
    np.testing.assert_allclose(s.numpy(), s0.numpy(), rtol=1e-6)
    np.testing.assert_allclose(t.numpy(), np.tanh(s0.numpy() * 2), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_gradcheck_and_second_order_float64(name):
    fn, _ = CHAINS[name]
    _, (x, w, b) = _inputs("float64", shape=(3, C))
    fused = gg.fuse(fn)
    assert gg.autograd.gradcheck(fused, (x, w, b))
    assert gg.autograd.gradcheck(second_order(lambda t: fused(t, w, b)), (x,))
    g1 = second_order(lambda t: fused(t, w, b))(x)
    g0 = second_order(lambda t: fn(t, w, b))(x)
    _close(g1, g0, "float64")


# --- CUDA: the generated row kernels ---------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_epilogue_kernels_compile_with_nvrtc(dtype):
    from test_kernels import compile_ptx
    from test_kernels_cpu import SUFFIX

    from gpugrad.backend.kernels import row_epilogue_source
    from gpugrad.ops.table import ROWS

    _, (x, w, b) = _inputs("float32", shape=(3, C))
    row = gg.fuse(lambda x, w, b: F.gelu(x * w + b))(x, w, b).grad_fn.row
    two = ROWS["lerp"].program  # three operands: y at slot 1, a parameterless number
    sfx = SUFFIX[dtype]
    cases = [("softmax", row.program, 0, "axx_1i"), ("softmax", row.program, 0, "aaa"),
             ("layer_norm", row.program, 0, "ass"), ("layer_norm", two, 1, "pax_2l"),
             ("softmax", ROWS["tanh"].program, 0, "a")]
    for family, prog, slot, sig in cases:
        src = row_epilogue_source(family, prog, slot, SimpleNamespace(name=dtype), sig)
        ptx = compile_ptx(src, f"{family}_epi_{sfx}.cu", "compute_80")
        name = RE.epilogue_kernel_name(family, prog, slot, sfx, sig)
        assert f".entry {name}(" in ptx
        assert ptx.count(".entry ") == 1  # only the variant: the row file's own kernels not


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("name", ["softmax_affine_gelu", "log_softmax", "layer_norm_silu"])
def test_epilogue_on_cuda(name, dtype):
    fn, _ = CHAINS[name]
    _, (x, w, b) = _inputs(dtype, shape=(6, C), device="cuda")
    emu = sys.modules.get("cupy._emu")
    before = dict(emu.launch_counts) if emu is not None else {}
    y1 = gg.fuse(fn)(x, w, b)
    if emu is not None:
        new = [k for k, v in emu.launch_counts.items() if v != before.get(k, 0)]
        assert len(new) == 1 and "_epi_" in new[0], new  # the row kernel with the chain
    y0 = fn(x, w, b)
    _close(y1, y0, dtype)
    params = [x, w, b]
    for a, c in zip(gg.autograd.grad(y1.sum(), params), gg.autograd.grad(y0.sum(), params)):
        _close(a, c, dtype)


@pytest.mark.gpu
def test_epilogue_on_cuda_without_grad_stores_no_y():
    _, (x, w, b) = _inputs("float32", shape=(5, C), device="cuda")
    with gg.no_grad():
        y1 = gg.fuse(softmax_affine_gelu)(x, w, b)
        y0 = softmax_affine_gelu(x, w, b)
    _close(y1, y0, "float32")


@pytest.mark.parametrize("name", ["softmax_affine_gelu", "log_softmax", "layer_norm_silu"])
def test_row_kernel_references_take_the_epilogue_as_a_second_pass(name, monkeypatch):
    """With the fused row methods switched on (the CUDA backend's route, here on their NumPy
    references), the chain still runs through the row op's epilogue argument and gives the
    unfused values and gradients (LayerNormRows for layer norm)."""
    monkeypatch.setattr(type(cpu_backend), "fused_rows", True)
    fn, _ = CHAINS[name]
    _, (x, w, b) = _inputs("float64", shape=(6, C))
    y1 = gg.fuse(fn)(x, w, b)
    y0 = fn(x, w, b)
    _close(y1, y0, "float64")
    for a, c in zip(gg.autograd.grad(y1.sum(), [x, w, b]), gg.autograd.grad(y0.sum(), [x, w, b])):
        _close(a, c, "float64")
    with gg.no_grad():
        _close(gg.fuse(fn)(x, w, b), y0, "float64")
