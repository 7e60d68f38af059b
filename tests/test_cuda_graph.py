"""CUDA graphs on a machine without a GPU: clear errors, and the capture GEMM's cuBLAS call
planning checked against a NumPy emulation of cublasGemmStridedBatchedEx."""

import ctypes

import numpy as np
import pytest

import gpugrad as gg
from gpugrad._capture_gemm import CaptureGemm

no_gpu = pytest.mark.skipif(gg.cuda.is_available(), reason="checks the no-GPU behaviour")


@no_gpu
def test_graphed_on_cpu_raises_device_error_naming_the_device():
    with pytest.raises(gg.DeviceError, match=r"example input 0 is on cpu.*cuda"):
        gg.cuda.graphed(lambda x: x * 2, gg.ones(3))


@no_gpu
def test_cuda_graph_without_cuda_raises_device_error():
    with pytest.raises(gg.DeviceError, match="CUDA is not available"):
        gg.cuda.CUDAGraph()
    with pytest.raises(gg.DeviceError, match="CUDA is not available"):
        gg.cuda.graphed(lambda: None)
    assert gg.cuda.is_current_stream_capturing() is False


_DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 4: np.complex64, 5: np.complex128}


class FakeCublas:
    """cuBLAS's column-major strided-batched GEMM on host memory, from raw pointers."""

    def __init__(self):
        self.calls = []

    def cublasCreate_v2(self, handle):
        return 0

    def cublasDestroy_v2(self, handle):
        return 0

    def cublasSetStream_v2(self, handle, stream):
        self.stream = stream.value
        return 0

    def cublasSetWorkspace_v2(self, handle, ptr, size):
        self.workspace = size
        return 0

    def cublasGemmStridedBatchedEx(self, handle, ta, tb, m, n, k, alpha, a, atype, lda, sa,
                                   b, btype, ldb, sb, beta, c, ctype, ldc, sc, batch,
                                   compute, algo):
        assert ta == tb == 0 and atype == btype == ctype and algo == -1
        dt = np.dtype(_DTYPES[atype])
        assert compute == (70 if dt in (np.float64, np.complex128) else 68)
        self.calls.append((m, n, k, sa, sb, batch))
        scalar = ctypes.c_double if compute == 70 else ctypes.c_float
        al = scalar.from_address(alpha).value
        assert scalar.from_address(beta).value == 0

        def mat(ptr, stride, i, rows, cols, ld):
            span = (cols - 1) * ld + rows
            raw = (ctypes.c_uint8 * (span * dt.itemsize)).from_address(
                ptr + i * stride * dt.itemsize)
            flat = np.ctypeslib.as_array(raw).view(dt)
            return np.lib.stride_tricks.as_strided(
                flat, (rows, cols), (dt.itemsize, ld * dt.itemsize))

        for i in range(batch):
            A, B = mat(a, sa, i, m, k, lda), mat(b, sb, i, k, n, ldb)
            C = mat(c, sc, i, m, n, ldc)
            acc = np.result_type(dt, np.float64)
            C[...] = (al * (A.astype(acc) @ B.astype(acc))).astype(dt)
        return 0


def _gemm():
    return CaptureGemm(np, stream_ptr=1234, lib=FakeCublas())


@pytest.mark.parametrize("sa, sb", [
    ((3, 4), (4, 5)),            # one product
    ((2, 3, 4), (2, 4, 5)),      # batched
    ((3, 4), (6, 4, 5)),         # left operand shared: batch stride 0
    ((2, 1, 3, 4), (5, 4, 2)),   # broadcast batch dims: materialised
    ((4,), (2, 4, 5)),           # vector @ batched matrices
    ((2, 3, 4), (4,)),           # batched matrices @ vector
    ((4,), (4,)),                # dot product
    ((3, 0), (0, 5)),            # k = 0: zeros
    ((0, 4), (4, 5)),            # empty result
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.complex64])
def test_capture_gemm_matches_numpy_matmul(sa, sb, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(sa).astype(dtype)
    b = rng.standard_normal(sb).astype(dtype)
    out = _gemm().matmul(a, b)
    acc = np.result_type(dtype, np.float64)
    expected = np.matmul(a.astype(acc), b.astype(acc)).astype(dtype)
    assert out.shape == expected.shape and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=2e-3 if dtype == np.float16 else 1e-5,
                               atol=1e-2 if dtype == np.float16 else 1e-6)


def test_capture_gemm_plans_one_call_with_zero_stride_for_a_shared_operand():
    gemm = _gemm()
    gemm.matmul(np.ones((3, 4), np.float32), np.ones((6, 4, 5), np.float32))
    # column-major Cᵀ = Bᵀ·Aᵀ: m' = n = 5, n' = m = 3; A (shared) has stride 0
    assert gemm.lib.calls == [(5, 3, 4, 20, 0, 6)]
    assert gemm.lib.stream == 1234 and gemm.lib.workspace == 32 << 20


def test_capture_gemm_transposed_views_and_out():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((5, 4)).astype(np.float32)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    out = np.empty((3, 5), np.float32)
    res = _gemm().matmul(x, w.T, out=out)
    assert res is out
    np.testing.assert_allclose(out, x @ w.T, rtol=1e-5)


def test_capture_gemm_errors_name_dtypes_and_shapes():
    gemm = _gemm()
    with pytest.raises(TypeError, match="float32 and float64"):
        gemm.matmul(np.ones((2, 2), np.float32), np.ones((2, 2)))
    with pytest.raises(TypeError, match="int64"):
        gemm.matmul(np.ones((2, 2), np.int64), np.ones((2, 2), np.int64))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 2\)"):
        gemm.matmul(np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="cannot be broadcast"):
        gemm.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 2)))
