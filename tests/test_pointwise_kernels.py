"""Every row of the pointwise table renders to CUDA that compiles (NVRTC) and computes, run
on the CPU through the g++ host shim, what its NumPy rendering computes: forward and
backward (every operand's cotangent in one kernel), in float32, float64, float16 and
bfloat16. A single-value operand ('s'), a number operand ('p') and a bool condition ('b')
are covered too."""

import ctypes

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
from gpugrad.ops.table import ROWS

DTYPES = ["float32", "float64", "float16", "bfloat16"]
N = 64

# Operand ranges inside each row's domain (default (-3, 3)); parameters' values.
DOMAIN = {"log": (0.1, 3), "log2": (0.1, 3), "log10": (0.1, 3), "sqrt": (0.1, 3),
          "rsqrt": (0.1, 3), "log1p": (-0.5, 3), "asin": (-0.9, 0.9), "acos": (-0.9, 0.9),
          "atanh": (-0.9, 0.9), "acosh": (1.1, 3), "pow": (0.2, 2), "pow_scalar": (0.2, 3),
          "fmod": (0.5, 3), "remainder": (0.5, 3)}
PARAMS = {"p": 2.5, "s": 1.7, "weight": 0.3, "min": -0.5, "max": 0.7, "beta": 1.3,
          "threshold": 2.0, "alpha": 0.8, "slope": 0.1}
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
