"""The arithmetic of the elementwise CUDA kernels, run on the CPU.

Each kernels/*.cu file is compiled with g++ against tests/kernels_cpu/cuda_host_shim.h,
which turns `__global__` functions into plain C functions and a launch into a serial loop
over a small grid (3 blocks of 5 threads, so grid-stride and chunk loops take uneven
strides); the results are compared with the NumPy reference methods of the kernel
families (gpugrad/backend/rows.py, random.py, optim.py), for float32, float64, float16 and
bfloat16 (the shim converts the 16-bit types in software, with the same
round-to-nearest-even as the GPU).

Covered here: the generated pointwise kernels (tests/test_pointwise_kernels.py runs every
row of the table), softmax_xent_backward, dropout_apply (masks bit-identical to the NumPy
Philox) and the Philox known-answer block, sgd_multi, adam_multi, unscale_multi.

Block-level (shared memory / warp shuffles): softmax_forward, softmax_backward,
softmax_xent_forward, layer_norm_forward, layer_norm_backward, layer_norm_param_grad,
sumsq_multi run in tests/gpu/, on a GPU or on the mock CUDA device (GPUGRAD_MOCK_CUDA=1),
whose launcher (the same shim) runs blocks of cooperating threads;
tests/test_cuda_emulator.py checks that launcher.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gpugrad.backend import cpu_backend
from gpugrad.backend.cupy_optim import multi_tensor_meta
from gpugrad.backend.kernels import STORAGE, expand_includes, kernel_dir, kernel_source
from gpugrad.backend.pointwise import cuda_source
from gpugrad.backend.random import dropout_threshold, philox4x32_10
from gpugrad.ops.table import ROWS

SHIM = Path(__file__).parent / "kernels_cpu" / "cuda_host_shim.h"
GRID, BLOCK = 3, 5
SUFFIX = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16"}
DTYPES = ["float32", "float64", "float16", "bfloat16"]


# -- building and calling ------------------------------------------------------------------
@pytest.fixture(scope="session")
def shim_lib(tmp_path_factory):
    """lib(name): kernels/NAME.cu built once per session with g++ and the host shim."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found")
    folder = tmp_path_factory.mktemp("kernels_cpu")
    libs: dict[str, ctypes.CDLL] = {}

    def lib(name: str, source: str | None = None) -> ctypes.CDLL:
        if name not in libs:
            src = folder / f"{name}.cpp"
            src.write_text(kernel_source(name) if source is None else source)
            out = folder / f"lib{name}.so"
            cmd = [gxx, "-std=c++17", "-O1", "-shared", "-fPIC", "-include", str(SHIM),
                   str(src), "-o", str(out)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            assert res.returncode == 0, f"g++ failed for {name}:\n{res.stderr}"
            libs[name] = ctypes.CDLL(str(out))
        return libs[name]

    return lib


def pointwise_library(programs, dtype: str) -> str:
    """One source with the generated kernel of each (program, operand signature) for
    `dtype`, common.cuh pasted in once."""
    sfx = SUFFIX[dtype]
    unique = {p.kernel_name(sfx, sig): (p, sig) for p, sig in programs}  # rows may share
    body = "\n".join(cuda_source(p, STORAGE[sfx], sfx, sig) for p, sig in unique.values())
    return expand_includes('#include "common.cuh"\n' + body, kernel_dir())


def launch(lib, entry: str, *args, grid: int = GRID, block: int = BLOCK) -> None:
    """Run kernel `entry` once per (block, thread) of a grid x block launch."""
    fn = getattr(lib, entry)
    fn.restype = None
    for b in range(grid):
        for t in range(block):
            lib.gg_shim_set_launch(b, t, grid, block)
            fn(*args)


def ptr(a) -> ctypes.c_void_p:
    return ctypes.c_void_p(None if a is None else a.ctypes.data)


NULL = ctypes.c_void_p(None)
i32, i64, f64 = ctypes.c_int, ctypes.c_longlong, ctypes.c_double
u32, u64 = ctypes.c_uint, ctypes.c_ulonglong


# -- 16-bit storage ---------------------------------------------------------------------------
def to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits, round to nearest even (quiet NaN kept)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), rounded)


def from_bf16_bits(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << 16).view(np.float32)


def store(a: np.ndarray, dtype: str) -> np.ndarray:
    """Host storage of `a` in `dtype` (bfloat16 as uint16 bits)."""
    if dtype == "bfloat16":
        return to_bf16_bits(a.astype(np.float32))
    return np.array(a, dtype=dtype)  # always a copy


def load(a: np.ndarray, dtype: str) -> np.ndarray:
    """float64 values of storage `a`."""
    return (from_bf16_bits(a) if dtype == "bfloat16" else a).astype(np.float64)


def rounded(a: np.ndarray, dtype: str) -> np.ndarray:
    """The reference result (float32/64 math) rounded to `dtype`, as float64."""
    return load(store(a, dtype), dtype)


TOL = {"float32": dict(rtol=2e-6, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-13),
       "float16": dict(rtol=1e-3, atol=1e-4), "bfloat16": dict(rtol=8e-3, atol=1e-3)}


# The gelu_tanh / silu backward formulas cancel for x ≈ −5 (½(1 + t) with t ≈ −1): two
# float32 libraries' tanh differ there by ~1e-6 absolute, relative to |ȳ| ~ 1.
ACT_TOL = {**TOL, "float32": dict(rtol=2e-6, atol=1e-5)}


def ref_dtype(dtype: str):
    return np.float64 if dtype == "float64" else np.float32


def sample(n: int, dtype: str, seed: int = 0, scale: float = 4.0) -> np.ndarray:
    """Random values plus extremes (±80, tiny, ±0, NaN) in the reference dtype."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * scale
    x[:7] = [80.0, -80.0, 1e-30, -1e-30, 0.0, -0.0, np.nan][: min(7, n)]
    return load(store(x, dtype), dtype).astype(ref_dtype(dtype))


# -- conversions ----------------------------------------------------------------------------
def test_bf16_helper_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 1e3
    x[:3] = [np.inf, -np.inf, 3.0e38]
    want = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(to_bf16_bits(x), want)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16bit_conversions_match_numpy(shim_lib, dtype):
    """The shim's software 16-bit conversions round as NumPy / torch do (subnormals,
    ties, overflow to inf, NaN): relu of 16-bit values is the identity (widen, narrow),
    and leaky_relu of negative values rounds the float32 product x·slope to 16 bits."""
    rng = np.random.default_rng(1)
    mags = np.abs(rng.standard_normal(600)) * 10.0 ** rng.integers(-9, 6, 600)
    x = np.concatenate([mags, [65504.0, 65519.0, 65520.0, 1e6, 6e-8, 2.98e-8, 3e-8, np.inf,
                               np.nan]]).astype(np.float32)
    with np.errstate(over="ignore"):  # 1e6 and 65520 overflow to inf, as intended
        src = x.astype(np.float16) if dtype == "float16" else to_bf16_bits(x)
    relu, leaky = ROWS["relu"].program, ROWS["leaky_relu"].program
    lib = shim_lib(f"pw16_{dtype}", pointwise_library([(relu, "a"), (leaky, "a")], dtype))
    y = np.empty_like(src)
    launch(lib, relu.kernel_name(SUFFIX[dtype], "a"), ptr(src), ptr(y), i64(src.size))
    np.testing.assert_array_equal(y.view(np.uint16), src.view(np.uint16))

    slope = 1.2345678
    neg = (-src.astype(np.float32) if dtype == "float16" else -from_bf16_bits(src))
    neg_src = neg.astype(np.float16) if dtype == "float16" else to_bf16_bits(neg)
    launch(lib, leaky.kernel_name(SUFFIX[dtype], "a"), ptr(neg_src), ptr(y), f64(slope),
           i64(src.size))
    wide = (neg_src.astype(np.float32) if dtype == "float16" else from_bf16_bits(neg_src))
    product = wide * np.float32(slope)
    with np.errstate(over="ignore"):
        want = product.astype(np.float16) if dtype == "float16" else to_bf16_bits(product)
    np.testing.assert_array_equal(y.view(np.uint16), want.view(np.uint16))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_xent_backward_kernel(shim_lib, dtype, reduction):
    lib = shim_lib("softmax")
    rows, cols = 7, 11
    rng = np.random.default_rng(4)
    x = load(store(rng.standard_normal((rows, cols)) * 5, dtype), dtype).astype(ref_dtype(dtype))
    target = rng.integers(0, cols, rows).astype(np.int64)
    target[2] = -100
    _, lse = cpu_backend.softmax_cross_entropy(x, target, -100, reduction)
    g = (rng.standard_normal(rows) if reduction == "none" else np.asarray(1.7)).astype(x.dtype)
    ref = cpu_backend.softmax_cross_entropy_backward(x, target, lse, g, -100, reduction)
    acc = lse.dtype
    scale = g.astype(acc)
    if reduction == "mean":
        scale = scale / acc.type((target != -100).sum())
    scale = np.ascontiguousarray(np.reshape(scale, -1), dtype=acc)
    xs = store(x, dtype)
    gx = np.empty_like(xs)
    launch(lib, f"softmax_xent_backward_{SUFFIX[dtype]}", ptr(xs), ptr(target),
           ptr(np.ascontiguousarray(lse)), ptr(scale), i32(reduction == "none"), ptr(gx),
           i64(rows), i64(cols), i64(-100))
    np.testing.assert_allclose(load(gx, dtype), rounded(ref, dtype), **TOL[dtype])
    assert not load(gx, dtype)[2].any()  # the ignored row


# -- dropout / Philox -----------------------------------------------------------------------
def test_philox_kernel_known_answers(shim_lib):
    lib = shim_lib("dropout")
    cases = [((0, 0, 0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 6, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD))]
    for ctr_key, want in cases:
        inp = np.array(ctr_key, dtype=np.uint32)
        out = np.zeros(4, dtype=np.uint32)
        launch(lib, "philox4x32_10_block", ptr(inp), ptr(out))
        assert [hex(v) for v in out] == [hex(v) for v in want]
        np_out = philox4x32_10(np, ctr_key[:4], ctr_key[4:])
        assert [int(v) for v in np_out] == list(want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 37, 1000])
def test_dropout_kernel_bit_identical_to_numpy(shim_lib, dtype, n):
    lib = shim_lib("dropout")
    p, seed, offset = 0.3, 0x1234_5678_9ABC_DEF0, (1 << 32) + 5
    x = sample(n, dtype)
    xs = store(x, dtype)
    y = np.empty_like(xs)
    launch(lib, f"dropout_apply_{SUFFIX[dtype]}", ptr(xs), ptr(y), i64(n),
           u32(dropout_threshold(p)), f64(1 / (1 - p)), u64(seed), u64(offset))
    want = store(cpu_backend.dropout_forward(x, p, seed, offset), dtype)
    np.testing.assert_array_equal(y.view(np.uint8), want.view(np.uint8))


# -- multi-tensor optimizers ---------------------------------------------------------------
SIZES = [13, 1, 0, 30]
CHUNK = 7  # small, so that tensors span several chunks and blocks take several chunks


def _tensors(dtype, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * scale).astype(dtype) for n in SIZES]


def _meta(columns):
    host, nchunks = multi_tensor_meta(columns, SIZES, CHUNK)
    return host, (i32(len(SIZES)), i64(nchunks), i64(CHUNK))


def _addr(arrays):
    return [0 if a is None else a.ctypes.data for a in arrays]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("momentum,dampening,nesterov,wd,maximize",
                         [(0.0, 0.0, False, 0.0, False), (0.9, 0.1, False, 0.01, True),
                          (0.9, 0.0, True, 0.0, False)])
@pytest.mark.parametrize("skip", [False, True])
def test_sgd_multi_kernel(shim_lib, dtype, momentum, dampening, nesterov, wd, maximize, skip):
    lib = shim_lib("optim")
    hyper = dict(lr=0.1, momentum=momentum, dampening=dampening, weight_decay=wd,
                 nesterov=nesterov, maximize=maximize)
    params, grads = _tensors(dtype, 0), _tensors(dtype, 1)
    found = np.array([1.0 if skip else 0.0], dtype=np.float32)
    ref_p = [p.copy() for p in params]
    ref_b = [None] * len(SIZES)
    for _ in range(2):  # the first step creates the buffers
        cpu_backend.sgd_update(ref_p, grads, ref_b, found_inf=found, **hyper)
    bufs = [np.zeros_like(p) for p in params]
    for step in range(2):
        flags = [int(step == 0 and momentum != 0)] * len(SIZES)
        meta, dims = _meta([_addr(params), _addr(grads),
                            _addr(bufs) if momentum else [0] * 4, flags])
        launch(lib, f"sgd_multi_{SUFFIX[dtype]}", ptr(meta), *dims, f64(0.1), f64(momentum),
               f64(dampening), f64(wd), i32(nesterov), i32(maximize), ptr(found))
    for got, want in zip(params, ref_p):
        np.testing.assert_allclose(got, want, **TOL[dtype])
    if momentum:
        for got, want in zip(bufs, ref_b):
            np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("decoupled,amsgrad,maximize,wd", [(False, False, False, 0.0),
                                                           (False, True, True, 0.1),
                                                           (True, True, False, 0.05)])
@pytest.mark.parametrize("device_step", [False, True])
def test_adam_multi_kernel(shim_lib, dtype, decoupled, amsgrad, maximize, wd, device_step):
    lib = shim_lib("optim")
    hyper = dict(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=wd,
                 amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=decoupled)
    params = _tensors(dtype, 0)
    ref = [p.copy() for p in params]
    state = [[np.zeros_like(p) for p in params] for _ in range(3)]
    ref_state = [[np.zeros_like(p) for p in params] for _ in range(3)]
    no_skip = np.zeros(1, dtype=np.float32)
    for step in (1, 2, 3):
        grads = _tensors(dtype, step, scale=step)
        t = np.asarray(step, dtype=np.float32)
        cpu_backend.adam_update(ref, grads, *ref_state, [t if device_step else step] * 4,
                                found_inf=no_skip, **hyper)
        step_ptr = [t.ctypes.data if device_step else 0] * 4
        step_size = np.full(4, 0.0 if device_step else 0.01 / (1 - 0.9 ** step))
        bc2 = np.full(4, 0.0 if device_step else (1 - 0.99 ** step) ** 0.5)
        meta, dims = _meta([_addr(params), _addr(grads), _addr(state[0]), _addr(state[1]),
                            _addr(state[2]) if amsgrad else [0] * 4, step_ptr,
                            step_size.view(np.int64), bc2.view(np.int64)])
        launch(lib, f"adam_multi_{SUFFIX[dtype]}", ptr(meta), *dims, f64(0.01), f64(0.9),
               f64(0.99), f64(1e-8), f64(wd), i32(decoupled), i32(amsgrad), i32(maximize),
               ptr(no_skip))
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == "float32" else TOL[dtype]
    for got, want in zip(params + sum(state, []), ref + sum(ref_state, [])):
        np.testing.assert_allclose(got, want, **tol)


def test_adam_multi_kernel_skips_on_found_inf(shim_lib):
    lib = shim_lib("optim")
    params, grads = _tensors("float32", 0), _tensors("float32", 1)
    state = [[np.full_like(p, 0.5) for p in params] for _ in range(3)]
    before = [a.copy() for a in params + sum(state, [])]
    found = np.array([1.0], dtype=np.float32)
    meta, dims = _meta([_addr(params), _addr(grads), _addr(state[0]), _addr(state[1]),
                        _addr(state[2]), [0] * 4, np.full(4, 0.1).view(np.int64),
                        np.full(4, 0.1).view(np.int64)])
    launch(lib, "adam_multi_f32", ptr(meta), *dims, f64(0.01), f64(0.9), f64(0.99), f64(1e-8),
           f64(0.0), i32(0), i32(1), i32(0), ptr(found))
    for got, want in zip(params + sum(state, []), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [None, np.inf, np.nan])
def test_unscale_multi_kernel(shim_lib, dtype, bad):
    lib = shim_lib("optim")
    vals = _tensors("float64", 5, scale=100.0)
    if bad is not None:
        vals[3][17] = bad
    grads = [store(v, dtype) for v in vals]
    inv = np.asarray(1 / 64, dtype=np.float32)
    found = np.zeros(1, dtype=np.float32)
    meta, dims = _meta([_addr(grads)])
    launch(lib, f"unscale_multi_{SUFFIX[dtype]}", ptr(meta), *dims, ptr(inv), ptr(found))
    assert found[0] == (0.0 if bad is None else 1.0)
    ref_vals = [load(store(v, dtype), dtype).astype(ref_dtype(dtype)) for v in vals]
    ref_found = np.zeros(1, dtype=np.float32)
    cpu_backend.unscale_grads_(ref_vals, inv, ref_found)
    assert ref_found[0] == found[0]
    for got, want in zip(grads, ref_vals):
        np.testing.assert_allclose(load(got, dtype), rounded(want, dtype), **TOL[dtype])
