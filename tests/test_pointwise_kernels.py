"""Every row of the pointwise table renders to CUDA that compiles (NVRTC) and computes, run
on the CPU through the g++ host shim, what its NumPy rendering computes: forward and
backward (every operand's cotangent in one kernel), in float32, float64, float16 and
bfloat16. A single-value operand ('s'), a number operand ('p') and a bool condition ('b')
are covered too, and strided and broadcast operands ('x', 'y': transposed, stepped,
flipped, expanded) read in place, on the host shim and through the CUDA backend (a GPU or
the mock device) without a contiguous copy."""

import ctypes
import math
import sys

import numpy as np
import pytest
from test_kernels import compile_ptx
from test_kernels_cpu import (
    SUFFIX,
    from_bf16_bits,
    launch,
    pointwise_library,
    ptr,
    shim_lib,  # noqa: F401 - the fixture
    to_bf16_bits,
)

from gpugrad.backend import cpu_backend
from gpugrad.backend.pointwise import (
    MAX_STRIDED_DIMS,
    collapse_dims,
    launch_plan,
    strided_signature,
)
from gpugrad.ops.table import ROWS

DTYPES = ["float32", "float64", "float16", "bfloat16"]
N = 64

# Operand ranges inside each row's domain (default (-3, 3)); parameters' values.
DOMAIN = {"log": (0.1, 3), "log2": (0.1, 3), "log10": (0.1, 3), "sqrt": (0.1, 3),
          "rsqrt": (0.1, 3), "log1p": (-0.5, 3), "asin": (-0.9, 0.9), "acos": (-0.9, 0.9),
          "atanh": (-0.9, 0.9), "acosh": (1.1, 3), "pow": (0.2, 2), "pow_scalar": (0.2, 3),
          "fmod": (0.5, 3), "remainder": (0.5, 3), "erfinv": (-0.9, 0.9), "logit": (0.1, 0.9),
          "logit_eps": (0.02, 0.98), "xlogy": (0.1, 3)}
PARAMS = {"p": 2.5, "s": 1.7, "weight": 0.3, "min": -0.5, "max": 0.7, "beta": 1.3,
          "threshold": 2.0, "alpha": 0.8, "slope": 0.1, "eps": 0.1, "nan": 0.5, "posinf": 9.0,
          "neginf": -9.0}
TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-11),
       "float16": dict(rtol=4e-3, atol=2e-3), "bfloat16": dict(rtol=3e-2, atol=2e-2)}


def programs():
    """(id, row, program, is_backward) for each row's forward and full backward."""
    out = []
    for name, row in sorted(ROWS.items()):
        out.append((f"{name}", row, row.program, False))
        bw = row.backward_row((True,) * row.n_in, False)[0]
        if bw is not None:
            out.append((f"{name}_backward", row, bw.program, True))
    return out


PROGRAMS = programs()


def signature(row, prog) -> str:
    """Every operand a full array; where's condition (its operand 0, forward and backward)
    a bool array."""
    n = len(prog.inputs)
    return "b" + "a" * (n - 1) if row.name == "where" else "a" * n


def _operands(row, prog, dtype, rng):
    """Host storage arrays (bfloat16 as bits) and their float32/64 values, per input."""
    lo, hi = DOMAIN.get(row.name, (-3, 3))
    stores, values = [], []
    for k, _ in enumerate(prog.inputs):
        if row.name == "where" and k == 0:
            b = rng.random(N) < 0.5
            stores.append(b)
            values.append(b)
            continue
        v = rng.uniform(lo, hi, N)
        if dtype == "bfloat16":
            bits = to_bf16_bits(v.astype(np.float32))
            stores.append(bits)
            values.append(from_bf16_bits(bits))
        else:
            a = v.astype(dtype)
            stores.append(a)
            values.append(a)
    return stores, values


def _reference(prog, values, params, dtype):
    ref = cpu_backend.pointwise(prog, values, params)
    refs = ref if isinstance(ref, tuple) else (ref,)
    return [np.asarray(r, dtype=np.float64) if dtype != "bfloat16"
            else from_bf16_bits(to_bf16_bits(np.asarray(r, np.float32))).astype(np.float64)
            for r in refs]


@pytest.mark.parametrize("dtype", DTYPES)
def test_generated_kernels_match_numpy(shim_lib, dtype):  # noqa: F811
    sigs = [signature(row, prog) for _, row, prog, _ in PROGRAMS]
    lib = shim_lib(f"pointwise_{dtype}",
                   pointwise_library([(p, s) for (_, _, p, _), s in zip(PROGRAMS, sigs)],
                                     dtype))
    rng = np.random.default_rng(0)
    sfx = SUFFIX[dtype]
    storage = np.uint16 if dtype == "bfloat16" else dtype
    failures = []
    for (name, row, prog, _), sig in zip(PROGRAMS, sigs):
        params = tuple(PARAMS[p] for p in prog.params)
        stores, values = _operands(row, prog, dtype, rng)
        outs = [np.empty(N, dtype=storage) for _ in prog.outputs]
        launch(lib, prog.kernel_name(sfx, sig), *[ptr(a) for a in stores],
               *[ptr(o) for o in outs], *[ctypes.c_double(p) for p in params],
               ctypes.c_longlong(N))
        for k, (o, r) in enumerate(zip(outs, _reference(prog, values, params, dtype))):
            got = from_bf16_bits(o) if dtype == "bfloat16" else o
            try:
                np.testing.assert_allclose(np.asarray(got, np.float64), r, **TOL[dtype],
                                           err_msg=f"{name} output {k}")
            except AssertionError as e:
                failures.append(str(e))
    assert not failures, "\n".join(failures)


def test_single_value_number_and_bool_operands(shim_lib):  # noqa: F811
    """'s' (a single value read once), 'p' (a number argument) and 'b' (bool) operands."""
    where, mx = ROWS["where"].program, ROWS["maximum"].program
    lib = shim_lib("pointwise_sig", pointwise_library([(where, "bsp"), (mx, "as")],
                                                      "float32"))
    rng = np.random.default_rng(1)
    c = rng.random(N) < 0.5
    a = np.float32([2.5])
    out = np.empty(N, np.float32)
    launch(lib, where.kernel_name("f32", "bsp"), ptr(c), ptr(a), ctypes.c_double(-1.25),
           ptr(out), ctypes.c_longlong(N))
    np.testing.assert_array_equal(out, np.where(c, 2.5, -1.25).astype(np.float32))
    x = rng.standard_normal(N).astype(np.float32)
    x[3] = np.nan
    launch(lib, mx.kernel_name("f32", "as"), ptr(x), ptr(np.float32([0.2])), ptr(out),
           ctypes.c_longlong(N))
    np.testing.assert_array_equal(out, np.maximum(x, np.float32(0.2)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_generated_kernels_compile_with_nvrtc(dtype):
    sfx = SUFFIX[dtype]
    progs = [(p, signature(row, p)) for _, row, p, _ in PROGRAMS]
    ptx = compile_ptx(pointwise_library(progs, dtype), f"pointwise_{sfx}.cu", "compute_80")
    for p, sig in progs:
        assert f".entry {p.kernel_name(sfx, sig)}(" in ptx


# -- strided and broadcast operands ----------------------------------------------------------
# (row, backward): a binary, a ternary with a bool condition, a ternary, one with a
# parameter, and backward programs with 2 to 4 operands and 1 to 3 outputs.
STRIDED_PROGRAMS = [("mul", False), ("where", False), ("lerp", False), ("leaky_relu", False),
                    ("where", True), ("lerp", True), ("sigmoid", True)]
STRIDED_SHAPES = [(), (7,), (5, 6), (3, 4, 5), (2, 3, 2, 5), (2, 1, 3, 2, 4), (3, 2, 1, 2, 3, 2)]
LAYOUTS = ["contig", "T", "perm", "step", "flip", "flipstep", "expand", "bcast", "lead",
           "single", "number"]


def _program(name: str, backward: bool):
    row = ROWS[name]
    return row, (row.backward_row((True,) * row.n_in, False)[0].program if backward
                 else row.program)


def _view(kind: str, shape: tuple, make, rng, xp=np):
    """An operand of the launch over `shape` in layout `kind`, viewing storage from
    make(base_shape): transposed, permuted and flipped, sliced with steps (also negative),
    broadcast by shape (size-1 and missing dims) or expanded (stride 0), a 0-d value."""
    nd = len(shape)
    if kind == "single" or not nd:
        return make(())
    if kind == "contig":
        return make(shape)
    if kind == "T":
        return make(shape[::-1]).T
    if kind == "perm":
        p = rng.permutation(nd)
        return make(tuple(shape[i] for i in p)).transpose(*map(int, np.argsort(p)))[::-1]
    if kind in ("step", "flipstep"):
        base = make(tuple(2 * d + 1 for d in shape))
        return base[(slice(1, None, 2) if kind == "step" else slice(-2, None, -2),) * nd]
    if kind == "flip":
        return make(shape)[(slice(None, None, -1),) * nd]
    small = tuple(1 if j % 2 == 0 else d for j, d in enumerate(shape))
    if kind == "expand":
        return make(small)
    if kind == "bcast":
        return xp.broadcast_to(make(small), shape)
    assert kind == "lead"
    return make(shape[-1:])


def _maker(rng, dtype: str, cond: bool, lo: float, hi: float):
    """make(shape): fresh host storage of random values in [lo, hi) (bool when `cond`)."""
    def make(s):
        if cond:
            return np.asarray(rng.random(s) < 0.5)
        v = rng.uniform(lo, hi, s)
        return (to_bf16_bits(np.asarray(v, np.float32)).reshape(s) if dtype == "bfloat16"
                else np.asarray(v, dtype=dtype))
    return make


def _strided_cases(dtype: str):
    """(id, program, operand storages, operand float values, shape, params) per case: each
    program, shape and layout for every operand at once, then mixed layouts (operand k in
    layout k + s)."""
    rng = np.random.default_rng(5)
    cases = []
    for name, backward in STRIDED_PROGRAMS:
        row, prog = _program(name, backward)
        lo, hi = DOMAIN.get(row.name, (-3, 3))
        params = tuple(PARAMS[p] for p in prog.params)
        m = len(prog.inputs)
        for shape in STRIDED_SHAPES:
            combos = [(lay,) * m for lay in LAYOUTS]
            combos += [tuple(LAYOUTS[(k + s) % len(LAYOUTS)] for k in range(m))
                       for s in range(len(LAYOUTS))]
            for combo in combos:
                stores, values = [], []
                for k, lay in enumerate(combo):
                    cond = row.name == "where" and k == 0
                    if lay == "number" and not cond:
                        v = float(rng.uniform(lo, hi))
                        stores.append(v)
                        values.append(v)
                        continue
                    make = _maker(rng, dtype, cond, lo, hi)
                    a = _view("expand" if lay == "number" else lay, shape, make, rng)
                    stores.append(a)
                    values.append(a if cond else from_bf16_bits(a) if dtype == "bfloat16"
                                  else a.astype(np.float32 if dtype == "float16" else dtype))
                cid = f"{name}{'_backward' if backward else ''} {shape} {combo}"
                out_shape = np.broadcast_shapes(*[np.shape(a) for a in stores])
                cases.append((cid, prog, stores, values, out_shape, params))
    return cases


def _round_to(r, dtype: str) -> np.ndarray:
    r = np.asarray(r)
    if dtype == "bfloat16":
        return from_bf16_bits(to_bf16_bits(r.astype(np.float32))).reshape(r.shape).astype(
            np.float64)
    return r.astype(dtype).astype(np.float64)


def _launch_strided(lib, prog, sfx: str, stores, shape, params, storage):
    """Launch the generated kernel as the CUDA backend does (`launch_plan` decides each
    operand's reading, its layout arguments follow n); returns the outputs and signature."""
    sig, layout, copy = launch_plan(shape, [None if isinstance(a, float) else a
                                            for a in stores])
    keep = [np.ascontiguousarray(np.broadcast_to(a, shape)) if k in copy else a
            for k, a in enumerate(stores)]
    outs = [np.empty(shape, dtype=storage) for _ in prog.outputs]
    launch(lib, prog.kernel_name(sfx, sig),
           *[ctypes.c_double(a) if isinstance(a, float) else ptr(a) for a in keep],
           *[ptr(o) for o in outs], *[ctypes.c_double(p) for p in params],
           ctypes.c_longlong(math.prod(shape)), *[ctypes.c_longlong(v) for v in layout])
    return outs, sig


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_broadcast_operands_match_numpy(shim_lib, dtype):  # noqa: F811
    """Transposed, permuted, stepped, flipped (negative strides), broadcast (stride 0) and
    0-d operands mixed with contiguous ones and numbers, ranks 0 to 5: the kernels read
    each in place and match the NumPy rendering; no operand is copied. (The index code is
    the same for every dtype: the others run a third of float32's cases.)"""
    cases = _strided_cases(dtype)[:: 1 if dtype == "float32" else 3]
    plans = [launch_plan(shape, [None if isinstance(a, float) else a for a in stores])
             for _, _, stores, _, shape, _ in cases]
    assert not any(copy for _, _, copy in plans)
    sigs = {sig for sig, _, _ in plans}
    assert {int(s.partition("_")[2][:-1]) for s in sigs if "_" in s} == {1, 2, 3, 4, 5}
    assert {"x", "y"} <= {c for s in sigs if "_" in s for c in s}
    lib = shim_lib(f"pointwise_strided_{dtype}",
                   pointwise_library([(prog, sig) for (_, prog, *_), (sig, _, _)
                                      in zip(cases, plans)], dtype))
    sfx = SUFFIX[dtype]
    storage = np.uint16 if dtype == "bfloat16" else dtype
    failures = []
    for cid, prog, stores, values, shape, params in cases:
        outs, sig = _launch_strided(lib, prog, sfx, stores, shape, params, storage)
        ref = cpu_backend.pointwise(prog, values, params)
        for k, (o, r) in enumerate(zip(outs, ref if isinstance(ref, tuple) else (ref,))):
            got = from_bf16_bits(o) if dtype == "bfloat16" else o
            try:
                np.testing.assert_allclose(np.asarray(got, np.float64),
                                           np.broadcast_to(_round_to(r, dtype), shape),
                                           **TOL[dtype], err_msg=f"{cid} [{sig}] output {k}")
            except AssertionError as e:
                failures.append(str(e))
    assert not failures, "\n".join(failures[:5])


def test_wide_index_kernels_match_int_index_kernels(shim_lib):  # noqa: F811
    """The 64-bit index variant ('l', taken when n or an operand's offset range passes
    2³¹ − 1) computes what the 32-bit one does."""
    cases = [c for c in _strided_cases("float32") if len(c[4]) >= 2][::7]
    pairs, runs = [], []
    for cid, prog, stores, _, shape, params in cases:
        sig, layout, _ = launch_plan(shape, [None if isinstance(a, float) else a
                                             for a in stores])
        if sig.endswith("i"):
            pairs += [(prog, sig), (prog, sig[:-1] + "l")]
            runs.append((cid, prog, stores, shape, params, sig, layout))
    assert len(runs) > 20
    lib = shim_lib("pointwise_strided_wide", pointwise_library(pairs, "float32"))
    for cid, prog, stores, shape, params, sig, layout in runs:
        got = []
        for s in (sig, sig[:-1] + "l"):
            outs = [np.empty(shape, np.float32) for _ in prog.outputs]
            launch(lib, prog.kernel_name("f32", s),
                   *[ctypes.c_double(a) if isinstance(a, float) else ptr(a) for a in stores],
                   *[ptr(o) for o in outs], *[ctypes.c_double(p) for p in params],
                   ctypes.c_longlong(math.prod(shape)), *[ctypes.c_longlong(v) for v in layout])
            got.append(outs)
        for a, b in zip(*got):
            np.testing.assert_array_equal(a, b, err_msg=cid)


def test_index_width_and_collapse():
    """Dims of size 1 drop out, dims that every operand walks linearly merge (transposes,
    steps and broadcasts keep theirs apart), and the index is 64-bit exactly when the
    element count or an operand's offset range passes int's range."""
    assert collapse_dims((4, 1, 5, 6), [(30, 0, 6, 1), (0, 0, 0, 0)]) == ((120,), [(1,), (0,)])
    assert collapse_dims((4, 5, 6), [(1, 4, 20)]) == ((4, 5, 6), [(1, 4, 20)])  # transposed
    assert collapse_dims((4, 5, 6), [(60, 12, 2)]) == ((120,), [(2,)])  # every other element
    assert collapse_dims((4, 5, 6), [(-30, 6, 1)]) == ((4, 30), [(-30, 1)])  # rows flipped
    assert collapse_dims((4, 5, 6), [(0, 6, 1), (30, 6, 1)]) == ((4, 30), [(0, 1), (30, 1)])
    assert collapse_dims((), []) == ((), [])
    assert strided_signature("xa", (4, 30), [(0, 1)]) == "xa_2i"
    assert strided_signature("x", (2**31,), [(0,)]) == "x_1l"  # n
    assert strided_signature("x", (2**31 - 1,), [(1,)]) == "x_1i"
    assert strided_signature("x", (2**30 - 1, 2), [(1, 0)]) == "x_2i"
    assert strided_signature("xx", (3, 2**30 + 1), [(0, 1), (0, -2)]) == "xx_2l"  # span
    assert strided_signature("x", (3, 5), [(2**30, 1)]) == "x_2l"


def test_launch_plan_copies_only_beyond_the_rank_limit():
    """A layout that keeps more than MAX_STRIDED_DIMS dims after collapsing is passed
    contiguous (the one case that copies); a byte stride that is no multiple of the item
    size too; a C-contiguous or single-value operand never is."""
    d = MAX_STRIDED_DIMS + 1
    x = np.zeros((2,) * d, np.float32)
    assert launch_plan(x.shape, [x.T, x, None]) == ("aap", [], [0])
    eight = x.transpose(6, 5, 4, 3, 2, 1, 0, 7, 8)  # its last two dims merge
    assert launch_plan(x.shape, [eight, x]) == (
        "xa_8i", [2] * 6 + [4] + [4, 8, 16, 32, 64, 128, 256, 1], [])
    rec = np.zeros((4, 3), dtype=[("a", np.float32), ("b", np.uint8)])  # 5-byte strides
    assert launch_plan((4, 3), [rec["a"], np.zeros((4, 3), np.float32)]) == ("aa", [], [0])
    y = np.zeros((3, 4), np.float64)
    assert launch_plan((3, 4), [y, y[:1, :1], np.array(1.0), y > 0]) == ("assb", [], [])
    assert launch_plan((3, 4), [y.T.T, y[::-1], y.T > 0])[0] == "axy_2i"


def test_strided_signatures_compile_with_nvrtc():
    """Strided kernels of rank 1 to MAX_STRIDED_DIMS, both index widths, with float and bool
    strided operands, compile with NVRTC for every dtype."""
    where, lerp_bw = ROWS["where"].program, _program("lerp", True)[1]
    progs = [(where, f"yxs_{r}{w}") for r in range(1, MAX_STRIDED_DIMS + 1) for w in "il"]
    progs += [(lerp_bw, f"xxxx_{r}l") for r in (1, 3, MAX_STRIDED_DIMS)]
    for dtype in DTYPES:
        sfx = SUFFIX[dtype]
        ptx = compile_ptx(pointwise_library(progs, dtype), f"strided_{sfx}.cu", "compute_80")
        for p, sig in progs:
            assert f".entry {p.kernel_name(sfx, sig)}(" in ptx


# -- the CUDA backend end to end (a GPU, or the mock device: GPUGRAD_MOCK_CUDA=1) ------------
@pytest.fixture
def gpu_counting_copies(monkeypatch):
    """(CUDA backend, calls) where calls counts every contiguous copy the backend or CuPy's
    ascontiguousarray makes while the test runs."""
    from gpugrad.backend import get_backend

    gpu = get_backend("cuda")
    calls = []
    c, asc = type(gpu)._c, gpu.xp.ascontiguousarray

    def counted_c(self, a):
        calls.append("CupyBackend._c")
        return c(self, a)

    def counted_asc(a, *args, **kwargs):
        calls.append("cupy.ascontiguousarray")
        return asc(a, *args, **kwargs)

    monkeypatch.setattr(type(gpu), "_c", counted_c)
    monkeypatch.setattr(gpu.xp, "ascontiguousarray", counted_asc)
    return gpu, calls


def _kernels_launched():
    """Names of the generated kernels launched so far on the mock device (None on a GPU)."""
    emu = sys.modules.get("cupy._emu")
    return None if emu is None else {k for k in emu.launch_counts if k.startswith("gg_pw_")}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_cuda_backend_reads_strided_operands_without_copies(gpu_counting_copies, dtype):
    """backend.pointwise on transposed, permuted, stepped, flipped and expanded device views
    mixed with contiguous operands, 0-d values and numbers: one generated kernel each, the
    NumPy rendering's values, and no contiguous copy (the old path copied each such
    operand)."""
    gpu, calls = gpu_counting_copies
    rng = np.random.default_rng(11)
    progs = [("mul", False), ("where", False), ("lerp", False), ("lerp", True)]
    shapes = [(6,), (3, 4, 5), (2, 3, 1, 4, 3)]
    before = _kernels_launched()
    n_strided = 0
    for (name, backward), shape in [(p, s) for p in progs for s in shapes]:
        row, prog = _program(name, backward)
        m = len(prog.inputs)
        for s in range(0, len(LAYOUTS), 3):
            combo = [LAYOUTS[(k + s) % len(LAYOUTS)] for k in range(m)]
            ins = []
            for k, lay in enumerate(combo):
                cond = row.name == "where" and k == 0
                if lay == "number" and not cond:
                    ins.append(float(rng.uniform(-3, 3)))
                    continue
                host = _maker(rng, dtype, cond, -3, 3)
                ins.append(_view("expand" if lay == "number" else lay, shape,
                                 lambda sh, host=host: gpu.asarray(host(sh)), rng, gpu.xp))
            ref_ins = [a if isinstance(a, float) else gpu.to_host(a) for a in ins]
            ref_ins = [a.astype(np.float32) if isinstance(a, np.ndarray) and
                       a.dtype == np.float16 else a for a in ref_ins]
            ref = cpu_backend.pointwise(prog, ref_ins, ())
            sig = launch_plan(np.broadcast_shapes(*[np.shape(a) for a in ins]),
                              [None if isinstance(a, float) else a for a in ins])[0]
            n_strided += "_" in sig
            del calls[:]
            got = gpu.pointwise(prog, ins, ())
            assert not calls, f"{name} {shape} {combo}: {calls}"
            for k, (o, r) in enumerate(zip(got if isinstance(got, tuple) else (got,),
                                           ref if isinstance(ref, tuple) else (ref,))):
                np.testing.assert_allclose(
                    np.asarray(gpu.to_host(o), np.float64),
                    np.broadcast_to(_round_to(r, dtype), o.shape), **TOL[dtype],
                    err_msg=f"{name} {shape} {combo} [{sig}] output {k}")
    assert n_strided > 20
    after = _kernels_launched()
    if after is not None:
        assert any("_x" in k or "_y" in k for k in after - before)


@pytest.mark.gpu
def test_tensor_ops_on_views_run_strided_kernels(gpu_counting_copies):
    """Through the Tensor API on cuda: pointwise ops on a transposed, a flipped and a
    stepped tensor and a broadcast bias run without a contiguous copy, and values and
    gradients match the CPU's."""
    import gpugrad as gg

    gpu, calls = gpu_counting_copies
    rng = np.random.default_rng(12)
    xs = rng.standard_normal((6, 5)).astype(np.float32)
    ws = rng.standard_normal((10, 6)).astype(np.float32)
    bs = rng.standard_normal(6).astype(np.float32)

    def run(device, count: bool):
        x, w, b = (gg.tensor(a, device=device, requires_grad=True) for a in (xs, ws, bs))
        n0 = len(calls)
        y = gg.where(x.T > 0, x.T * w[::2], b) + b  # (5, 6): transposed, stepped, bias
        z = (y.flip(0) * x.T).sigmoid()
        if count:
            assert len(calls) == n0, calls[n0:]
        z.sum().backward()
        return [t.detach().to("cpu").numpy() for t in (z, x.grad, w.grad, b.grad)]

    for got, want in zip(run("cuda", True), run("cpu", False)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_cuda_backend_copies_only_beyond_the_rank_limit(gpu_counting_copies):
    """A layout keeping more than MAX_STRIDED_DIMS dims is copied contiguous (once) and
    still computes the right values."""
    gpu, calls = gpu_counting_copies
    x = np.random.default_rng(13).standard_normal((2,) * (MAX_STRIDED_DIMS + 1))
    d = gpu.asarray(x)
    del calls[:]
    got = gpu.pointwise(ROWS["mul"].program, [d.T, d], ())
    assert calls.count("CupyBackend._c") == 1
    np.testing.assert_allclose(gpu.to_host(got), x.T * x, rtol=1e-12)
