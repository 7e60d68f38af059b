"""Matrix products inside CUDA graph capture: cuBLAS called directly, bypassing CuPy.

Why. CuPy refuses every cuBLAS call while the current stream is capturing: its
`cupy_backends.cuda.libs.cublas.setStream`, which each of its cuBLAS wrappers calls first,
raises NotImplementedError("calling cuBLAS API during stream capture is currently
unsupported") — cupy issue 6290 keeps this open until CuPy can check cuBLAS's conditions
for capture. cuBLAS itself supports capture (cuBLAS documentation, "CUDA Graphs Support")
when the handle is bound to the capturing stream, when a user-owned workspace is set with
cublasSetWorkspace (so that cuBLAS never allocates during the capture), and with host
pointer mode, whose alpha/beta values are copied into the graph.

How. `CaptureGemm` owns its own cuBLAS handle, created before the capture begins, bound
to the capturing stream and given a 32 MiB workspace (NVIDIA's recommendation for
Hopper), and calls `cublasGemmStridedBatchedEx` through ctypes on the libcublas that CuPy
has already loaded. CuPy's own handle is left alone, so eager code is unaffected. Every
product becomes one batched GEMM: row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ, so the
operands are passed swapped, with no transposes; an operand without batch dimensions gets
batch stride 0, others are made contiguous (inside the graph, as copy kernels).
float16/bfloat16/float32 accumulate in float32 (CUBLAS_COMPUTE_32F, no TF32, as CuPy's
default); float64 and complex in their own precision.

The GEMM planning is plain Python over array shapes and pointers, so the CPU suite checks
it against a NumPy emulation of cublasGemmStridedBatchedEx.
"""

from __future__ import annotations

import ctypes
import math

__all__ = ["CaptureGemm", "CaptureXp", "load_cublas"]

WORKSPACE_BYTES = 32 << 20

# cudaDataType and cublasComputeType_t values (library_types.h, cublas_api.h).
_CUDA_R_32F, _CUDA_R_64F, _CUDA_R_16F, _CUDA_C_32F, _CUDA_C_64F, _CUDA_R_16BF = 0, 1, 2, 4, 5, 14
_COMPUTE_32F, _COMPUTE_64F = 68, 70
_GEMM_DEFAULT = -1
_OP_N = 0

# dtype name -> (cudaDataType, compute type, ctypes type of alpha/beta, complex?)
_TYPES = {
    "float16": (_CUDA_R_16F, _COMPUTE_32F, ctypes.c_float, False),
    "bfloat16": (_CUDA_R_16BF, _COMPUTE_32F, ctypes.c_float, False),
    "float32": (_CUDA_R_32F, _COMPUTE_32F, ctypes.c_float, False),
    "float64": (_CUDA_R_64F, _COMPUTE_64F, ctypes.c_double, False),
    "complex64": (_CUDA_C_32F, _COMPUTE_32F, ctypes.c_float, True),
    "complex128": (_CUDA_C_64F, _COMPUTE_64F, ctypes.c_double, True),
}


def load_cublas():
    """The libcublas that CuPy uses, opened with ctypes (the already-loaded library when
    CuPy has loaded it, found through /proc/self/maps; else by its usual sonames)."""
    import cupy

    cupy.cuda.device.get_cublas_handle()  # makes CuPy load libcublas
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                name = path.rsplit("/", 1)[-1]
                if name.startswith("libcublas.so"):
                    return _declare(ctypes.CDLL(path))
    except OSError:
        pass
    for name in ("libcublas.so.13", "libcublas.so.12", "libcublas.so"):
        try:
            return _declare(ctypes.CDLL(name))
        except OSError:
            continue
    raise RuntimeError("CUDA graph capture: cannot locate libcublas, which matmul needs "
                       "inside a capture")


def _declare(lib):
    """Argument types of the cuBLAS entry points we call (ctypes needs them for the
    64-bit strides and pointers)."""
    vp, i32, i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
    lib.cublasCreate_v2.argtypes = [ctypes.POINTER(vp)]
    lib.cublasDestroy_v2.argtypes = [vp]
    lib.cublasSetStream_v2.argtypes = [vp, vp]
    lib.cublasSetWorkspace_v2.argtypes = [vp, vp, ctypes.c_size_t]
    lib.cublasGemmStridedBatchedEx.argtypes = [
        vp, i32, i32, i32, i32, i32, vp,
        vp, i32, i32, i64,
        vp, i32, i32, i64,
        vp, vp, i32, i32, i64,
        i32, i32, i32]
    for fn in ("cublasCreate_v2", "cublasDestroy_v2", "cublasSetStream_v2",
               "cublasSetWorkspace_v2", "cublasGemmStridedBatchedEx"):
        getattr(lib, fn).restype = ctypes.c_int
    return lib


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"CUDA graph capture: {what} failed with cuBLAS status {status}")


def _ptr(array) -> int:
    """Device address of a CuPy array (host address of a NumPy one, for the CPU tests)."""
    data = array.data
    return data.ptr if hasattr(data, "ptr") else array.ctypes.data


class CaptureGemm:
    """Batched matrix products through our own cuBLAS handle bound to `stream_ptr`.

    `xp` is the array module (CuPy; NumPy with a fake `lib` in the tests). Create it
    before the capture begins: creating a handle and the workspace allocate memory."""

    def __init__(self, xp, stream_ptr: int, lib=None) -> None:
        self.xp = xp
        self.lib = load_cublas() if lib is None else lib
        handle = ctypes.c_void_p()
        _check(self.lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        self.handle = handle
        self.workspace = xp.empty(WORKSPACE_BYTES, dtype=xp.uint8)
        # SetStream resets the workspace to cuBLAS's default pool, so it goes first.
        _check(self.lib.cublasSetStream_v2(handle, ctypes.c_void_p(stream_ptr)),
               "cublasSetStream")
        _check(self.lib.cublasSetWorkspace_v2(handle, ctypes.c_void_p(_ptr(self.workspace)),
                                              WORKSPACE_BYTES), "cublasSetWorkspace")
        self.keep: list = []  # the alpha/beta scalars (host mode copies them; kept anyway)

    def close(self) -> None:
        """Destroy the handle (after the graph that used it is gone)."""
        if self.handle is not None:
            self.lib.cublasDestroy_v2(self.handle)
            self.handle = None

    def matmul(self, a, b, out=None):
        """NumPy's matmul semantics (1-d operands, broadcast batch dimensions, `out=`) for
        two arrays of one floating or complex dtype."""
        xp = self.xp
        if a.dtype != b.dtype or a.dtype.name not in _TYPES:
            raise TypeError(f"matmul inside CUDA graph capture needs two operands of one "
                            f"dtype among {sorted(_TYPES)}, got {a.dtype} and {b.dtype}")
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: operands must be at least 1-d")
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        (m, k), (k2, n) = a2.shape[-2:], b2.shape[-2:]
        if k != k2:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                             f"({k} != {k2})")
        batch = _broadcast_batch(a2.shape[:-2], b2.shape[:-2])
        result = xp.empty(batch + (m, n), dtype=a.dtype)
        if result.size:
            if k == 0:
                result[...] = 0
            else:
                self._gemm(a2, b2, result, batch, m, n, k)
        if a.ndim == 1:
            result = result.reshape(result.shape[:-2] + (n,))
        if b.ndim == 1:
            result = result.reshape(result.shape[:-1])
        if out is None:
            return result
        out[...] = result
        return out

    def _gemm(self, a, b, c, batch: tuple, m: int, n: int, k: int) -> None:
        """c[i] = a[i] @ b[i] over the batch, c contiguous, as one strided-batched GEMM."""
        a, stride_a = self._operand(a, batch)
        b, stride_b = self._operand(b, batch)
        dtype, compute, scalar, is_complex = _TYPES[c.dtype.name]
        alpha = (scalar * 2)(1, 0) if is_complex else scalar(1)
        beta = (scalar * 2)(0, 0) if is_complex else scalar(0)
        self.keep += [alpha, beta]
        # Row-major C (m×n) = A·B is column-major Cᵀ (n×m) = Bᵀ (n×k) · Aᵀ (k×m).
        _check(self.lib.cublasGemmStridedBatchedEx(
            self.handle, _OP_N, _OP_N, n, m, k, ctypes.addressof(alpha),
            _ptr(b), dtype, n, stride_b,
            _ptr(a), dtype, k, stride_a,
            ctypes.addressof(beta),
            _ptr(c), dtype, n, m * n,
            math.prod(batch), compute, _GEMM_DEFAULT), "cublasGemmStridedBatchedEx")

    def _operand(self, x, batch: tuple):
        """`x` as a contiguous array whose matrices are `x.shape[-2:]`, with its batch
        stride: 0 when x has no batch extent (shared by every product), else one matrix."""
        xp = self.xp
        rows, cols = x.shape[-2:]
        lead = x.shape[:-2]
        if math.prod(lead) == 1:
            return xp.ascontiguousarray(x.reshape(rows, cols)), 0
        if (1,) * (len(batch) - len(lead)) + tuple(lead) != batch:
            x = xp.broadcast_to(x, batch + (rows, cols))
        return xp.ascontiguousarray(x), rows * cols


def _broadcast_batch(sa: tuple, sb: tuple) -> tuple:
    """NumPy broadcasting of two batch shapes (ValueError naming both if impossible)."""
    n = max(len(sa), len(sb))
    sa, sb = (1,) * (n - len(sa)) + tuple(sa), (1,) * (n - len(sb)) + tuple(sb)
    out = []
    for x, y in zip(sa, sb):
        if x != y and 1 not in (x, y):
            raise ValueError(f"matmul: batch shapes {sa} and {sb} cannot be broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


class CaptureXp:
    """The array module gpugrad's ops see while a graph is captured: CuPy itself, except
    that `matmul` on the capturing stream goes through `CaptureGemm` (every other thread
    and stream still gets CuPy's matmul)."""

    def __init__(self, xp, gemm: CaptureGemm, stream_ptr: int) -> None:
        self._xp, self._gemm, self._stream_ptr = xp, gemm, stream_ptr

    def __getattr__(self, name: str):
        return getattr(self._xp, name)

    def matmul(self, a, b, out=None, **kwargs):
        """cupy.matmul, or the capture GEMM on the capturing stream."""
        current = self._xp.cuda.get_current_stream().ptr
        if kwargs or current != self._stream_ptr:
            return self._xp.matmul(a, b, out=out, **kwargs)
        return self._gemm.matmul(a, b, out=out)
