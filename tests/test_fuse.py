"""gg.fuse: a chain of pointwise rows runs as one program forward and one backward, and gives
what the unfused ops give (forward, backward, second order), with fallbacks for whatever
is not pointwise, reduction epilogues, Linear's bias + activation epilogue, the `with`
region, and the generated CUDA kernels (NVRTC; the host shim; the emulated GPU)."""

from __future__ import annotations

import ctypes
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import second_order
from test_kernels_cpu import shim_lib  # noqa: F401 - the fixture

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.backend import cpu_backend
from gpugrad.backend.pointwise import compile_stats

_fm = sys.modules["gpugrad.fuse"]  # the module (gg.fuse is the decorator)

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-6),
       "float16": dict(rtol=2e-2, atol=2e-2), "bfloat16": dict(rtol=8e-2, atol=8e-2)}
DTYPES = ["float32", "float64", "float16", "bfloat16"]


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().float().cpu().numpy() if t.dtype in (gg.float16, gg.bfloat16)
                      else t.detach().cpu().numpy(), dtype=np.float64)


def _close(a, b, dtype: str) -> None:
    np.testing.assert_allclose(_np(a), _np(b), **TOL[dtype])


@pytest.fixture
def pointwise_calls(monkeypatch):
    """The programs backend.pointwise runs on the CPU (keys), in order."""
    calls: list = []
    backend_cls = type(cpu_backend)
    orig = backend_cls.pointwise

    def counting(self, prog, *args, **kwargs):
        calls.append(prog.key)
        return orig(self, prog, *args, **kwargs)

    monkeypatch.setattr(backend_cls, "pointwise", counting)
    return calls


def act_chain(x):
    return gg.tanh(gg.sigmoid(x) * x + F.silu(x))


# --- random chains -------------------------------------------------------------------------
UNARY = [
    ("tanh", gg.tanh), ("sigmoid", gg.sigmoid), ("silu", F.silu), ("gelu", F.gelu),
    ("gelu_tanh", lambda t: F.gelu(t, approximate="tanh")), ("relu", F.relu),
    ("leaky", lambda t: F.leaky_relu(t, 0.2)), ("softplus", lambda t: F.softplus(t, 2.0, 1.5)),
    ("elu", F.elu), ("sin", gg.sin), ("clamp", lambda t: gg.clamp(t, -0.5, 0.7)),
    ("scale", lambda t: t * 1.5), ("shift", lambda t: 0.25 - t), ("square", lambda t: t * t),
    ("exp_small", lambda t: gg.exp(gg.tanh(t))), ("rdiv", lambda t: 1.0 / (gg.abs(t) + 1)),
]
BINARY = [("add", lambda a, b: a + b), ("mul", lambda a, b: a * b), ("sub", lambda a, b: a - b),
          ("max", gg.maximum), ("div", lambda a, b: a / (b * b + 1))]


@st.composite
def chains(draw):
    steps = draw(st.lists(st.one_of(
        st.tuples(st.just("u"), st.integers(0, len(UNARY) - 1)),
        st.tuples(st.just("b"), st.integers(0, len(BINARY) - 1), st.booleans())),
        min_size=1, max_size=6))
    return steps


def _run_chain(steps, x, b):
    v = x
    for step in steps:
        if step[0] == "u":
            v = UNARY[step[1]][1](v)
        else:
            other = b if step[2] else x
            v = BINARY[step[1]][1](v, other)
    return v


@settings(max_examples=12, deadline=None)
@given(steps=chains(), dtype=st.sampled_from(DTYPES), layout=st.sampled_from(["c", "t", "s"]),
       bshape=st.sampled_from([(7,), (5, 1), (1, 7), ()]))
def test_fused_equals_unfused_on_random_chains(steps, dtype, layout, bshape):
    rng = np.random.default_rng(len(steps))
    dt = getattr(gg, dtype)
    base = rng.standard_normal((7, 5) if layout == "t" else (5, 14) if layout == "s" else (5, 7))
    x = gg.tensor(base, dtype=dt)
    x = x.T if layout == "t" else x[:, ::2] if layout == "s" else x  # non-contiguous views
    x = x.detach().requires_grad_(True) if layout == "c" else x.detach()
    if layout != "c":
        x.requires_grad_(True)
    b = gg.tensor(rng.standard_normal(bshape), dtype=dt, requires_grad=True)
    y0 = _run_chain(steps, x, b)
    y1 = gg.fuse(lambda x, b: _run_chain(steps, x, b))(x, b)
    assert y1.shape == y0.shape and y1.dtype is y0.dtype
    _close(y1, y0, dtype)
    g = gg.tensor(rng.standard_normal(y0.shape), dtype=dt)
    g0 = gg.autograd.grad([y0], [x, b], [g], allow_unused=True)
    g1 = gg.autograd.grad([y1], [x, b], [g], allow_unused=True)
    for a, c in zip(g0, g1):
        assert (a is None) == (c is None)
        if a is not None:
            assert a.shape == c.shape
            _close(c, a, dtype)


def test_act_chain_is_one_program_each_way(pointwise_calls):
    x = gg.randn(64, 32, requires_grad=True)
    y = gg.fuse(act_chain)(x)
    assert len(pointwise_calls) == 1 and y.grad_fn.name() == "FusedBackward"
    fwd = pointwise_calls[0]
    (g,) = gg.autograd.grad([y], [x], [gg.ones_like(y)])
    assert len(pointwise_calls) == 2 and pointwise_calls[1] != fwd
    y0 = act_chain(x)
    _close(y, y0, "float32")
    _close(g, gg.autograd.grad([y0], [x], [gg.ones_like(y0)])[0], "float32")


def test_act_chain_matches_pytorch():
    x = gg.randn(33, 17, dtype=gg.float64, requires_grad=True)
    y = gg.fuse(act_chain)(x)
    (g,) = gg.autograd.grad(y.sum(), [x])
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    yt = torch.tanh(torch.sigmoid(xt) * xt + torch.nn.functional.silu(xt))
    yt.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g.numpy(), xt.grad.numpy(), rtol=1e-10)


def test_decorator_forms_and_cache(pointwise_calls):
    @gg.fuse
    def a(x):
        return gg.exp(x) * 3 - x

    @gg.fuse()
    def b(x):
        return gg.exp(x) * 3 - x

    x = gg.randn(10, 4)
    before = compile_stats()["fused_programs"]
    ya, yb = a(x), b(x)
    after = compile_stats()["fused_programs"]
    assert after - before <= 1  # one structure: built once (or already cached), then reused
    a(x), b(gg.randn(3, 3))
    assert compile_stats()["fused_programs"] == after
    assert len(pointwise_calls) == 4 and len(set(pointwise_calls)) == 1
    _close(ya, gg.exp(x) * 3 - x, "float32")
    _close(yb, ya, "float32")
    with pytest.raises(TypeError, match="expected a function"):
        gg.fuse(3)


def test_python_scalars_are_kernel_arguments():
    @gg.fuse
    def f(x, slope, shift):
        return F.leaky_relu(x + shift, slope) * 2

    x = gg.randn(6, 5, requires_grad=True)
    before = compile_stats()["fused_programs"]
    for slope, shift in ((0.1, 1), (0.3, -2), (0.01, 0.5)):
        y = f(x, slope, shift)
        y0 = F.leaky_relu(x + shift, slope) * 2
        _close(y, y0, "float32")
        _close(gg.autograd.grad(y.sum(), [x])[0], gg.autograd.grad(y0.sum(), [x])[0], "float32")
    # the int and float shifts are two leaf kinds: at most two structures
    assert compile_stats()["fused_programs"] - before <= 2


def test_hand_written_vjps_are_kept():
    """relu's subgradient at 0 and clamp's closed interval: as unfused, not as the
    derivative of max/min (which would split ties)."""
    x = gg.tensor([-1.0, 0.0, 0.5, 0.7, 2.0], requires_grad=True)
    def f(x):
        return gg.clamp(F.relu(x), 0.0, 0.7) * 1.0
    (g1,) = gg.autograd.grad(gg.fuse(f)(x).sum(), [x])
    (g0,) = gg.autograd.grad(f(x).sum(), [x])
    np.testing.assert_array_equal(g1.numpy(), g0.numpy())


def test_multiple_outputs_one_program(pointwise_calls):
    @gg.fuse
    def f(x, b):
        s = gg.sigmoid(x + b)
        return s * x, {"t": gg.tanh(s)}

    x, b = gg.randn(8, 3, requires_grad=True), gg.randn(3, requires_grad=True)
    y, d = f(x, b)
    assert len(pointwise_calls) == 1
    s = gg.sigmoid(x + b)
    _close(y, s * x, "float32")
    _close(d["t"], gg.tanh(s), "float32")
    g1 = gg.autograd.grad((y * 2 + d["t"]).sum(), [x, b])
    g0 = gg.autograd.grad((s * x * 2 + gg.tanh(s)).sum(), [x, b])
    for a, c in zip(g1, g0):
        _close(a, c, "float32")


# --- second order ------------------------------------------------------------------------
def test_gradcheck_and_second_order_float64():
    x = gg.randn(4, 3, dtype=gg.float64, requires_grad=True)
    b = gg.randn(3, dtype=gg.float64, requires_grad=True)
    f = gg.fuse(lambda x, b: F.softplus(act_chain(x) * b, 2.0) + gg.sin(x) / (b * b + 1))
    assert gg.autograd.gradcheck(f, (x, b))

    def first(x, b):
        with gg.enable_grad():  # gradcheck's finite differences run without grad
            x = x if x.requires_grad else x.detach().requires_grad_()
            b = b if b.requires_grad else b.detach().requires_grad_()
            return gg.autograd.grad((f(x, b) * w).sum(), [x, b], create_graph=True)

    w = gg.tensor(np.linspace(0.5, 1.5, 12).reshape(4, 3))

    assert gg.autograd.gradcheck(first, (x, b))
    g1 = first(x, b)
    g0 = gg.autograd.grad(((F.softplus(act_chain(x) * b, 2.0) + gg.sin(x) / (b * b + 1))
                           * w).sum(), [x, b], create_graph=True)
    for a, c in zip(g1, g0):
        _close(a, c, "float64")


# --- fallbacks -----------------------------------------------------------------------------
def test_non_pointwise_ops_split_the_chain(pointwise_calls):
    w = gg.randn(7, 7, requires_grad=True)

    def f(x):
        h = gg.tanh(x) * 2 + 1          # program 1
        h = h @ w                        # matmul: a boundary
        h = gg.sigmoid(h) * h            # program 2
        h = h[1:, ::2]                   # indexing: a boundary
        return gg.exp(h) - h.mean()      # mean of a computed tensor, then program 3

    x = gg.randn(5, 7, requires_grad=True)
    y1 = gg.fuse(f)(x)
    assert len(pointwise_calls) <= 4
    y0 = f(x)
    _close(y1, y0, "float32")
    for a, c in zip(gg.autograd.grad(y1.sum(), [x, w]), gg.autograd.grad(y0.sum(), [x, w])):
        _close(a, c, "float32")


def test_python_control_flow_on_values():
    @gg.fuse
    def f(x):
        y = gg.tanh(x) * 3
        if y.sum() > 0:                  # reads a value: computed there
            return y + 1
        return y - float(y[0, 0])

    for seed in range(3):
        gg.manual_seed(seed)
        x = gg.randn(4, 4)
        y = gg.tanh(x) * 3
        y0 = y + 1 if y.sum() > 0 else y - float(y[0, 0])
        _close(f(x), y0, "float32")


def test_integer_and_mixed_dtypes_run_eagerly(pointwise_calls):
    i = gg.arange(6).reshape(2, 3)
    x = gg.randn(2, 3, dtype=gg.float64)
    y = gg.fuse(lambda i, x: (i * 2 + 1) * x + gg.exp(x.float()).double())(i, x)
    y0 = (i * 2 + 1) * x + gg.exp(x.float()).double()
    _close(y, y0, "float64")


def test_mismatched_broadcasting_names_the_shapes():
    f = gg.fuse(lambda a, b: gg.tanh(a) + b * 2)
    with pytest.raises(gg.ShapeError, match=r"add: shapes \(3, 4\) and \(5,\) cannot be "
                                            r"broadcast"):
        f(gg.randn(3, 4), gg.randn(5))


def test_long_chain_is_split(monkeypatch, pointwise_calls):
    monkeypatch.setattr(_fm, "MAX_CHAIN", 4)

    def f(x):
        for _ in range(5):
            x = gg.sin(x) * 0.9 + 0.1
        return x

    x = gg.randn(6, requires_grad=True)
    y = gg.fuse(f)(x)
    assert len(pointwise_calls) == 4  # 15 ops: 4 + 4 + 4 + 3
    y0 = f(x)
    _close(y, y0, "float32")
    _close(gg.autograd.grad(y.sum(), [x])[0], gg.autograd.grad(y0.sum(), [x])[0], "float32")


# --- reduction epilogues ------------------------------------------------------------------
REDUCE_CASES = [("sum", None, False), ("sum", 1, True), ("mean", (0, 1), False),
                ("mean", 0, True), ("amax", 1, False), ("amax", None, True), ("amin", 0, False)]


def _reduce(kind, t, dim, keepdim):
    fn = {"sum": gg.sum, "mean": gg.mean, "amax": gg.amax, "amin": gg.amin}[kind]
    return fn(t, dim=dim, keepdim=keepdim) if dim is not None else fn(t, keepdim=keepdim) \
        if kind in ("amax", "amin") else fn(t, dim=None, keepdim=keepdim)


@pytest.mark.parametrize("shape", [(6, 5), (1536, 384)])  # small; large: the blocked pass
@pytest.mark.parametrize("kind,dim,keepdim", REDUCE_CASES)
def test_reduction_epilogue(kind, dim, keepdim, shape, pointwise_calls):
    x = gg.randn(*shape, requires_grad=True)
    b = gg.randn(shape[-1], requires_grad=True)
    def f(x, b):
        return _reduce(kind, act_chain(x) * b, dim, keepdim)
    y1 = gg.fuse(f)(x, b)
    # large: the blocked pass never materialises the elementwise result; small: the
    # reference (the program, then the reduction) runs
    assert len(pointwise_calls) == (0 if shape[0] > 100 else 1)
    assert y1.grad_fn.name() == f"Fused{kind.capitalize()}Backward"
    y0 = f(x, b)
    assert y1.shape == y0.shape
    np.testing.assert_allclose(_np(y1), _np(y0), rtol=1e-5, atol=1e-5 * shape[0])
    g = gg.randn(*y0.shape)
    g1 = gg.autograd.grad([y1], [x, b], [g])
    g0 = gg.autograd.grad([y0], [x, b], [g])
    for a, c in zip(g1, g0):
        np.testing.assert_allclose(_np(a), _np(c), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_reduction_epilogue_dtypes_blocked(dtype):
    dt = getattr(gg, dtype)
    x = gg.randn(1024, 600, dtype=dt)
    y1 = gg.fuse(lambda x: (gg.sigmoid(x) * x).sum(dim=1))(x)
    y0 = (gg.sigmoid(x.double()) * x.double()).sum(dim=1)
    assert y1.dtype is dt
    np.testing.assert_allclose(_np(y1), _np(y0), rtol=TOL[dtype]["rtol"], atol=2.0
                               if dtype != "float64" else 1e-9)


def test_reduction_epilogue_second_order():
    x = gg.randn(5, 4, dtype=gg.float64, requires_grad=True)
    for kind in ("sum", "mean"):
        f = gg.fuse(lambda x, kind=kind: _reduce(kind, gg.tanh(x) * x, 1, False))
        assert gg.autograd.gradcheck(f, (x,))
        assert gg.autograd.gradcheck(second_order(f), (x,))


# --- Linear's epilogue ------------------------------------------------------------------------
def test_linear_bias_and_activation_are_one_epilogue(pointwise_calls):
    lin = gg.nn.Linear(16, 8)
    x = gg.randn(4, 16, requires_grad=True)
    def f(x):
        return F.gelu(lin(x)) * 2
    y1 = gg.fuse(f)(x)
    assert len(pointwise_calls) == 1  # GEMM on BLAS, then bias + gelu + scale in one pass
    assert y1.grad_fn.next_functions[0][0].name() == "LinearBackward"
    y0 = f(x)
    _close(y1, y0, "float32")
    params = [x, lin.weight, lin.bias]
    for a, c in zip(gg.autograd.grad(y1.sum(), params), gg.autograd.grad(y0.sum(), params)):
        _close(a, c, "float32")


# --- the with-region ----------------------------------------------------------------------
def test_with_region_defers_and_computes_at_exit(pointwise_calls):
    x = gg.randn(8, 8, requires_grad=True)
    with gg.fuse():
        y = gg.exp(x) * 2 + gg.sin(x)
        z = gg.tanh(y) - 1
        assert not pointwise_calls and z.shape == (8, 8) and z.requires_grad
        m = z.amax()  # a reduction epilogue, computed now
        assert m.grad_fn.name() == "FusedAmaxBackward"
        n = len(pointwise_calls)  # (small: the reference runs the program, then reduces)
    assert len(pointwise_calls) == n + 1  # y and z at the exit: one two-output program
    y0 = gg.exp(x) * 2 + gg.sin(x)
    _close(z, gg.tanh(y0) - 1, "float32")
    _close(y, y0, "float32")
    _close(m, (gg.tanh(y0) - 1).amax(), "float32")
    for a, c in zip(gg.autograd.grad((z + y).sum(), [x]),
                    gg.autograd.grad((gg.tanh(y0) - 1 + y0).sum(), [x])):
        _close(a, c, "float32")


def test_with_region_value_reads_compute():
    x = gg.randn(3, 3)
    with gg.fuse():
        y = gg.sigmoid(x) * 4
        v = y[1, 2].item()
        s = repr(y)
        n = y.numpy()
    assert v == pytest.approx(float(n[1, 2])) and "tensor" in s
    _close(y, gg.sigmoid(x) * 4, "float32")


def test_in_place_write_to_a_read_tensor_leaves_the_read_value():
    x = gg.randn(4)
    x0 = x.numpy().copy()
    with gg.fuse():
        y = gg.exp(x) * 2
        x.add_(1)  # y was deferred reading x: it reads a copy from before the write
    np.testing.assert_allclose(y.numpy(), np.exp(x0) * 2, rtol=1e-6)


# --- generated CUDA kernels: NVRTC and the host shim ------------------------------------------
def _fused_rows():
    """The fused row of act_chain(x) * b and of its sum over dim 1."""
    x, b = gg.randn(4, 3, requires_grad=True), gg.randn(3, requires_grad=True)
    y = gg.fuse(lambda x, b: act_chain(x) * b)(x, b)
    s = gg.fuse(lambda x, b: (act_chain(x) * b).sum(dim=1))(x, b)
    return y.grad_fn.row, s.grad_fn.row


@pytest.mark.parametrize("dtype", DTYPES)
def test_generated_fused_kernels_compile_with_nvrtc(dtype):
    from test_kernels import compile_ptx
    from test_kernels_cpu import SUFFIX

    from gpugrad.backend.kernels import STORAGE, expand_includes, kernel_dir
    from gpugrad.backend.pointwise import cuda_source
    from gpugrad.backend.pointwise_reduce import cuda_reduce_source

    row, rrow = _fused_rows()
    sfx = SUFFIX[dtype]
    bw = row.backward_row((True, True), False)[0]
    srcs = [cuda_source(row.program, STORAGE[sfx], sfx, "aa"),
            cuda_source(bw.program, STORAGE[sfx], sfx, "a" * len(bw.program.inputs))]
    srcs += [cuda_reduce_source(rrow.program, STORAGE[sfx], sfx, "aa", k)
             for k in ("sum", "mean", "amax", "amin")]
    assert all(s is not None for s in srcs)
    ptx = compile_ptx(expand_includes('#include "common.cuh"\n' + "\n".join(srcs),
                                      kernel_dir()), f"fused_{sfx}.cu", "compute_80")
    assert ptx.count(".entry gg_pw_") == 6


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_generated_fused_kernels_run_on_the_host_shim(shim_lib, dtype):  # noqa: F811
    from test_kernels_cpu import SUFFIX, from_bf16_bits, launch, ptr, to_bf16_bits

    from gpugrad.backend.kernels import STORAGE, expand_includes, kernel_dir
    from gpugrad.backend.pointwise import cuda_source
    from gpugrad.backend.pointwise_reduce import cuda_reduce_source, reduce_reference

    row, rrow = _fused_rows()
    sfx = SUFFIX[dtype]
    kinds = ("sum", "mean", "amax", "amin")
    bw = row.backward_row((True, True), False)[0]
    bsig = "a" * len(bw.program.inputs)
    src = "\n".join([cuda_source(row.program, STORAGE[sfx], sfx, "aa"),
                     cuda_source(bw.program, STORAGE[sfx], sfx, bsig)]
                    + [cuda_reduce_source(rrow.program, STORAGE[sfx], sfx, "aa", k)
                       for k in kinds])
    lib = shim_lib(f"fused_{dtype}", expand_includes('#include "common.cuh"\n' + src,
                                                     kernel_dir()))
    rng = np.random.default_rng(3)
    rows, cols = 6, 11
    xv, bv = rng.standard_normal((rows, cols)), rng.standard_normal((rows, cols))

    def store(v):
        if dtype == "bfloat16":
            bits = to_bf16_bits(v.astype(np.float32))
            return bits, from_bf16_bits(bits)
        a = v.astype(dtype)
        return a, a

    (xs, xval), (bs, bval) = store(xv), store(bv)
    storage = np.uint16 if dtype == "bfloat16" else dtype
    ref = np.asarray(cpu_backend.pointwise(row.program, [xval, bval]), np.float64)
    out = np.empty(rows * cols, dtype=storage)
    launch(lib, row.program.kernel_name(sfx, "aa"), ptr(xs), ptr(bs), ptr(out),
           ctypes.c_longlong(rows * cols))
    got = from_bf16_bits(out) if dtype == "bfloat16" else out
    np.testing.assert_allclose(np.asarray(got, np.float64).reshape(rows, cols), ref,
                               **TOL[dtype])
    # backward: every source a full array (x, b, and y and/or ȳ as the VJP reads them)
    bstores, bvals = zip(*[store(rng.standard_normal((rows, cols)))
                           for _ in bw.program.inputs])
    bref = cpu_backend.pointwise(bw.program, list(bvals))
    bref = bref if isinstance(bref, tuple) else (bref,)
    bouts = [np.empty(rows * cols, dtype=storage) for _ in bw.program.outputs]
    launch(lib, bw.program.kernel_name(sfx, bsig), *[ptr(a) for a in bstores],
           *[ptr(o) for o in bouts], ctypes.c_longlong(rows * cols))
    for o, r in zip(bouts, bref):
        got = from_bf16_bits(o) if dtype == "bfloat16" else o
        np.testing.assert_allclose(np.asarray(got, np.float64).reshape(rows, cols),
                                   np.asarray(r, np.float64), **TOL[dtype])
    acc = np.float64 if dtype == "float64" else np.float32
    for kind in kinds:
        nt = 4
        part = np.empty(rows * nt, dtype=acc)
        launch(lib, rrow.program.kernel_name(f"{sfx}_{kind}", "aa"), ptr(xs), ptr(bs),
               ptr(part), ctypes.c_longlong(rows), ctypes.c_longlong(cols),
               ctypes.c_longlong(nt))
        red = reduce_reference(np, part.reshape(rows, nt), "sum" if kind == "mean" else kind,
                               (1,), False) / (cols if kind == "mean" else 1)
        want = reduce_reference(np, ref, kind, (1,), False)
        np.testing.assert_allclose(red, want, rtol=TOL[dtype]["rtol"],
                                   atol=TOL[dtype]["atol"] * cols, err_msg=kind)


# --- the emulated GPU -------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_fused_chain_on_cuda(dtype):
    dt = getattr(gg, dtype)
    x = gg.randn(64, 33, device="cuda", dtype=dt, requires_grad=True)
    b = gg.randn(33, device="cuda", dtype=dt, requires_grad=True)
    def f(x, b):
        return gg.tanh(gg.sigmoid(x) * x + F.silu(x + b))
    emu = sys.modules.get("cupy._emu")
    before = dict(emu.launch_counts) if emu is not None else {}
    y1 = gg.fuse(f)(x, b)
    if emu is not None:
        new = {k: v - before.get(k, 0) for k, v in emu.launch_counts.items()
               if v != before.get(k, 0)}
        assert len(new) == 1 and next(iter(new)).startswith("gg_pw_")  # one kernel
    y0 = f(x, b)
    _close(y1, y0, dtype)
    for a, c in zip(gg.autograd.grad(y1.sum(), [x, b]), gg.autograd.grad(y0.sum(), [x, b])):
        _close(a, c, dtype)
    stats = compile_stats()  # the fused kernels were compiled (in this test or before)
    assert stats["cuda_kernels"] >= 2 and stats["cuda_compile_s"] > 0


@pytest.mark.gpu
@pytest.mark.parametrize("kind,dim,keepdim", REDUCE_CASES)
def test_reduction_epilogue_on_cuda(kind, dim, keepdim):
    x = gg.randn(40, 37, device="cuda", requires_grad=True)
    def f(x):
        return _reduce(kind, act_chain(x) * 2, dim, keepdim)
    y1 = gg.fuse(f)(x)
    assert y1.grad_fn.name() == f"Fused{kind.capitalize()}Backward"
    y0 = f(x)
    np.testing.assert_allclose(_np(y1), _np(y0), rtol=1e-5, atol=1e-4)
    for a, c in zip(gg.autograd.grad(y1.sum(), [x]), gg.autograd.grad(y0.sum(), [x])):
        _close(a, c, "float32")


def test_with_region_in_place_writes_and_views():
    x, w = gg.randn(3, 4), gg.randn(3, 4, requires_grad=True)
    x0 = x.clone()
    with gg.fuse():
        d = gg.exp(w) * 2
        x.add_(d)                          # a deferred value written into a tensor
        e = gg.sin(w) + 1
        e.mul_(3)                          # an in-place op on a deferred tensor
        t, r = d.T, d.reshape(4, 3)        # views: computed there
        s = gg.stack([d, e])
    ref_d = gg.exp(w) * 2
    _close(x, x0 + ref_d, "float32")
    _close(e, (gg.sin(w) + 1) * 3, "float32")
    _close(t, ref_d.T, "float32")
    _close(r, ref_d.reshape(4, 3), "float32")
    _close(s, gg.stack([ref_d, (gg.sin(w) + 1) * 3]), "float32")
    (g1,) = gg.autograd.grad(s.sum(), [w])
    (g0,) = gg.autograd.grad(gg.stack([ref_d, (gg.sin(w) + 1) * 3]).sum(), [w])
    _close(g1, g0, "float32")


def test_grad_mode_is_the_one_each_op_ran_under():
    x = gg.randn(3, requires_grad=True)
    with gg.fuse():
        a = gg.tanh(x) * 2
        with gg.no_grad():
            b = a * 3
        c = b + x
    assert a.grad_fn is not None and not b.requires_grad and b.grad_fn is None
    (g,) = gg.autograd.grad(c.sum(), [x])
    np.testing.assert_allclose(g.numpy(), np.ones(3))


def test_backward_inside_the_region():
    x = gg.randn(4, 3, requires_grad=True)
    with gg.fuse():
        z = gg.sin(x) * 3
        assert not z.is_leaf  # reading the graph computes the deferred tensor
        z.backward(gg.ones_like(z))
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.cos(x.detach().numpy()), rtol=1e-6)


def test_backward_inside_a_region_runs_its_vjps_as_written(pointwise_calls):
    x = gg.randn(5, 4, requires_grad=True)
    with gg.fuse():
        y = gg.tanh(x) * 2
        y.mean().backward()  # Mean's VJP divides by n: not deferred inside backward
    np.testing.assert_allclose(x.grad.numpy(), 2 * (1 - np.tanh(x.detach().numpy()) ** 2)
                               / 20, rtol=1e-5)


def test_a_program_that_fails_runs_the_ops_one_by_one(monkeypatch):
    def broken(*args, **kwargs):
        raise MemoryError("no room for the fused program")

    monkeypatch.setattr(_fm, "_row_for", broken)
    x = gg.randn(4, 3, requires_grad=True)
    y = gg.fuse(act_chain)(x)
    y0 = act_chain(x)
    _close(y, y0, "float32")
    _close(gg.autograd.grad(y.sum(), [x])[0], gg.autograd.grad(y0.sum(), [x])[0], "float32")
    s = gg.fuse(lambda x: act_chain(x).sum(dim=0))(x)
    assert s.grad_fn.name() == "SumBackward"
    _close(s, y0.sum(dim=0), "float32")


def test_module_forward_under_fuse_with_dropout(pointwise_calls):
    """An MLP's forward: each Linear's bias + activation is one program after its GEMM;
    dropout (random, not pointwise) runs as written on every call: nothing is frozen."""
    gg.manual_seed(1)
    model = gg.nn.Sequential(gg.nn.Linear(12, 16), gg.nn.GELU(), gg.nn.Linear(16, 16),
                             gg.nn.SiLU(), gg.nn.Dropout(0.5), gg.nn.Linear(16, 3))
    x = gg.randn(5, 12)
    fwd = gg.fuse(model)
    gg.manual_seed(7)
    y1 = fwd(x)
    gg.manual_seed(7)
    y0 = model(x)
    _close(y1, y0, "float32")
    params = list(model.parameters())
    for a, c in zip(gg.autograd.grad(y1.sum(), params), gg.autograd.grad(y0.sum(), params)):
        _close(a, c, "float32")
    assert not np.allclose(_np(fwd(x)), _np(fwd(x)))  # a fresh dropout mask per call
