"""The mock CUDA device's block-level emulator (tests/mock_cupy/cupy/_emu.py with
tests/kernels_cpu/cuda_host_shim.h): barriers, shared memory, warp intrinsics, atomics and
launch coordinates behave as CUDA defines them, and a missing barrier or a divergent one
shows. Runs in the normal suite (needs g++ and x86-64, no GPU, no GPUGRAD_MOCK_CUDA)."""

from __future__ import annotations

import importlib.util
import platform
import shutil
from pathlib import Path

import numpy as np
import pytest

if shutil.which("g++") is None or platform.machine() != "x86_64":
    pytest.skip("the CUDA emulator needs g++ on x86-64", allow_module_level=True)

_spec = importlib.util.spec_from_file_location(
    "gg_mock_cuda_emu", Path(__file__).parent / "mock_cupy" / "cupy" / "_emu.py")
emu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(emu)


class Dev:
    """A NumPy array passed to a kernel by address."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def _device_ptr(self) -> int:
        return self.a.ctypes.data


SOURCE = r"""
extern "C" __global__ void block_reverse(const float* x, float* y, int sync) {
    __shared__ float buf[256];
    const int t = threadIdx.x, base = blockIdx.x * blockDim.x;
    buf[t] = x[base + t];
    if (sync) __syncthreads();
    y[base + t] = buf[blockDim.x - 1 - t];
}

extern "C" __global__ void same_word(float* y, int clash) {
    __shared__ float slot[64];
    const int t = threadIdx.x;
    slot[clash ? 0 : t] = float(t);
    __syncwarp();
    y[t] = slot[clash ? 0 : (t | 31)];
}

extern "C" __global__ void warp_ops(const int* x, int* out) {
    const int t = threadIdx.x, lane = t & 31;
    int v = x[t];
    int s = v;
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    out[6 * t + 0] = s;                                        // warp sum, every lane
    out[6 * t + 1] = __shfl_down_sync(0xffffffffu, v, 3);      // lane + 3 (own past 31)
    out[6 * t + 2] = __shfl_sync(0xffffffffu, v, 5);           // lane 5's value
    out[6 * t + 3] = (int)__ballot_sync(0xffffffffu, v > 0);   // bit per positive lane
    out[6 * t + 4] = __any_sync(0xffffffffu, v > 100) + 2 * __all_sync(0xffffffffu, v > -100);
    out[6 * t + 5] = lane;
}

extern "C" __global__ void dyn_sum(const double* x, double* out, long long n) {
    extern __shared__ double part[];
    double s = 0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    part[threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0;
        for (unsigned k = 0; k < blockDim.x; ++k) t += part[k];
        out[blockIdx.x] = t;
    }
}

extern "C" __global__ void atomics(int* counter, int* maxv, int* cas, unsigned* order,
                                   float* fsum) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    const int ticket = atomicAdd(counter, 1);
    atomicMax(maxv, g * 7 % 101);
    atomicCAS(cas, 0, g + 1);  // exactly one thread wins
    atomicAdd(fsum, 0.5f);
    // blocks run one after another here, so ticket / threads is the block's turn
    if (threadIdx.x == 0 && threadIdx.y == 0)
        order[ticket / (blockDim.x * blockDim.y)] = blockIdx.x;
}

extern "C" __global__ void coords(unsigned* out) {
    const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned i = b * blockDim.x * blockDim.y * blockDim.z + t;
    out[4 * i] = threadIdx.x + 10 * threadIdx.y + 100 * threadIdx.z;
    out[4 * i + 1] = blockIdx.x + 10 * blockIdx.y + 100 * blockIdx.z;
    out[4 * i + 2] = blockDim.x * blockDim.y * blockDim.z * gridDim.x * gridDim.y * gridDim.z;
    out[4 * i + 3] = warpSize;
}

extern "C" __global__ void divergent_barrier(float* y) {
    if (threadIdx.x < 16) __syncthreads();
    y[threadIdx.x] = 1.0f;
}

extern "C" __global__ void early_return_shuffle(float* y) {
    if (threadIdx.x == 3) return;
    y[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}
"""


@pytest.fixture(scope="module")
def lib():
    return emu.compile_source(SOURCE)


def test_barrier_orders_shared_memory_and_its_absence_shows(lib):
    x = np.arange(4 * 256, dtype=np.float32)
    y = np.zeros_like(x)
    emu.launch(lib, "block_reverse", 4, 256, (Dev(x), Dev(y), np.int32(1)))
    np.testing.assert_array_equal(y.reshape(4, 256), x.reshape(4, 256)[:, ::-1])
    # without the barrier, threads of one warp read slots that other warps write: the
    # race checker names the array, the threads and the missing barrier
    with pytest.raises(RuntimeError, match=r"kernel block_reverse \(grid \(4, 1, 1\), block "
                       r"\(256, 1, 1\)\): shared-memory data race in block \(\d+,0,0\): "
                       r"thread \d+ (read|wrote) byte \d+ of __shared__ buf, which "
                       r"(thread|warp) \d+ (wrote|read) since the last __syncthreads\(\)"):
        emu.launch(lib, "block_reverse", 4, 256, (Dev(x), Dev(y), np.int32(0)))


def test_race_checker_write_write_and_unchecked_intra_warp_reads(lib):
    y = np.zeros(64, dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"thread \d+ wrote byte 0 of __shared__ slot, "
                                           r"which thread \d+ wrote since"):
        emu.launch(lib, "same_word", 1, 64, (Dev(y), np.int32(1)))
    # a warp reading what its own lanes wrote (then shuffled) is not flagged
    emu.launch(lib, "same_word", 1, 64, (Dev(y), np.int32(0)))
    np.testing.assert_array_equal(y, np.repeat([31.0, 63.0], 32))


def test_warp_intrinsics_per_32_lane_warp(lib):
    rng = np.random.default_rng(0)
    x = rng.integers(-50, 50, 96).astype(np.int32)
    x[40] = 200  # warp 1 has a lane > 100
    out = np.zeros((96, 6), dtype=np.int32)
    emu.launch(lib, "warp_ops", 1, 96, (Dev(x), Dev(out)))
    for w in range(3):
        xs, o = x[32 * w:32 * w + 32], out[32 * w:32 * w + 32]
        lanes = np.arange(32)
        np.testing.assert_array_equal(o[:, 0], xs.sum())
        np.testing.assert_array_equal(o[:, 1], np.where(lanes + 3 < 32, np.roll(xs, -3), xs))
        np.testing.assert_array_equal(o[:, 2], xs[5])
        ballot = sum(1 << int(i) for i in np.flatnonzero(xs > 0))
        np.testing.assert_array_equal(o[:, 3].view(np.uint32), ballot)
        np.testing.assert_array_equal(o[:, 4], int((xs > 100).any()) + 2 * int((xs > -100).all()))
        np.testing.assert_array_equal(o[:, 5], lanes)


def test_dynamic_shared_memory(lib):
    x = np.random.default_rng(1).standard_normal(1000)
    out = np.zeros(3)
    emu.launch(lib, "dyn_sum", 3, 128, (Dev(x), Dev(out), np.int64(x.size)), shared_mem=128 * 8)
    np.testing.assert_allclose(out, x.sum(), rtol=1e-12)


def test_atomics_and_seeded_block_order(lib, monkeypatch):
    orders = []
    for seed in ("1", "1", "2"):
        monkeypatch.setattr(emu, "_launches", 0)
        monkeypatch.setenv("GPUGRAD_MOCK_CUDA_SEED", seed)
        counter, maxv, cas = (np.zeros(1, np.int32) for _ in range(3))
        order, fsum = np.zeros(16, np.uint32), np.zeros(1, np.float32)
        emu.launch(lib, "atomics", 16, (8, 4), (Dev(counter), Dev(maxv), Dev(cas), Dev(order),
                                                Dev(fsum)))
        assert counter[0] == 16 * 32 and fsum[0] == 16 * 32 * 0.5
        assert maxv[0] == max(g * 7 % 101 for g in range(16 * 32))
        assert 1 <= cas[0] <= 16 * 32
        assert sorted(order) == list(range(16))  # every block ran once
        orders.append(order.tolist())
    assert orders[0] == orders[1]  # one seed, one order
    assert orders[0] != orders[2] and orders[0] != sorted(orders[0])  # seeds vary it


def test_launch_coordinates_in_three_dimensions(lib):
    grid, block = (2, 3, 2), (4, 2, 3)
    n = 12 * 24
    out = np.zeros((n, 4), dtype=np.uint32)
    emu.launch(lib, "coords", grid, block, (Dev(out),))
    want = [(tx + 10 * ty + 100 * tz, bx + 10 * by + 100 * bz, n, 32)
            for bz in range(2) for by in range(3) for bx in range(2)
            for tz in range(3) for ty in range(2) for tx in range(4)]
    np.testing.assert_array_equal(out, np.array(want, dtype=np.uint32))


@pytest.mark.parametrize("kernel, message", [
    ("divergent_barrier", "never reach"),
    ("early_return_shuffle", "deadlock"),
])
def test_divergent_barriers_and_shuffles_are_errors(lib, kernel, message):
    y = np.zeros(32, dtype=np.float32)
    with pytest.raises(RuntimeError, match=message) as info:
        emu.launch(lib, kernel, 1, 32, (Dev(y),))
    assert kernel in str(info.value)


def test_bad_launch_configuration(lib):
    y = np.zeros(32, dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"invalid launch configuration: grid \(1,1,1\), "
                                           r"block \(2048,1,1\)"):
        emu.launch(lib, "divergent_barrier", 1, 2048, (Dev(y),))


def test_compile_error_names_the_problem():
    with pytest.raises(emu.CompileError, match="undeclared|not declared"):
        emu.compile_source('extern "C" __global__ void k(float* y) { y[0] = nope; }')


def test_philox_block_kernel_through_the_launcher():
    """kernels/dropout.cu's known-answer kernel, launched as a 1-thread CUDA grid."""
    from gpugrad.backend.kernels import kernel_source

    dll = emu.compile_source(kernel_source("dropout"))
    out = np.zeros(4, dtype=np.uint32)
    emu.launch(dll, "philox4x32_10_block", 1, 1, (Dev(np.zeros(6, np.uint32)), Dev(out)))
    assert [hex(v) for v in out] == ["0x6627e8d5", "0xe169c58d", "0xbc57ac4c", "0x9b00dbd8"]
