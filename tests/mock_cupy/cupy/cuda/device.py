"""cupy.cuda.device, and a stand-in libcublas for gpugrad's capture GEMM.

gpugrad/_capture_gemm.py finds libcublas among the libraries this process has loaded
(/proc/self/maps) and calls cublasCreate_v2 / SetStream / SetWorkspace /
GemmStridedBatchedEx through ctypes. `get_cublas_handle()` here compiles and loads a small
C library named libcublas.so.gg-mock whose GEMM calls back into Python, which emulates
cublasGemmStridedBatchedEx (column-major, strided batches, alpha/beta in host pointer
mode, 16-bit types accumulated in float32) with NumPy matmul, and records it when the
current stream is capturing, so a graph replay recomputes it."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess

import numpy as np

from .. import _core, _emu

_SOURCE = r"""
typedef int (*gg_gemm_cb)(long long*, const void*, const void*, const void*, const void*,
                          void*);
static gg_gemm_cb cb = 0;
void gg_mock_set_gemm(gg_gemm_cb f) { cb = f; }
static int handles = 0;
int cublasCreate_v2(void** h) { *h = (void*)(long long)(++handles); return 0; }
int cublasDestroy_v2(void* h) { return 0; }
int cublasSetStream_v2(void* h, void* s) { return 0; }
int cublasSetWorkspace_v2(void* h, void* w, unsigned long n) { return 0; }
int cublasGemmStridedBatchedEx(void* h, int ta, int tb, int m, int n, int k,
                               const void* alpha, const void* A, int at, int lda, long long sa,
                               const void* B, int bt, int ldb, long long sb, const void* beta,
                               void* C, int ct, int ldc, long long sc, int batch, int compute,
                               int algo) {
    long long v[17] = {ta, tb, m, n, k, at, lda, sa, bt, ldb, sb, ct, ldc, sc, batch,
                       compute, algo};
    return cb ? cb(v, alpha, A, B, beta, C) : 14;
}
"""

_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_longlong), ctypes.c_void_p,
                       ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_lib = None
_callback = None


def _np_type(code: int):
    if code == 14:
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype({0: np.float32, 1: np.float64, 2: np.float16, 4: np.complex64,
                     5: np.complex128}[code])


def _matrices(ptr: int, dtype, rows: int, cols: int, ld: int, stride: int, batch: int):
    """The column-major (rows x cols, leading dimension ld) matrices at ptr as NumPy views
    of shape (batch, rows, cols)."""
    isz = dtype.itemsize
    extent = (stride * (batch - 1) if batch > 1 else 0) + ld * (cols - 1) + rows
    buf = (ctypes.c_char * (extent * isz)).from_address(ptr)
    base = np.frombuffer(buf, dtype=dtype)
    return np.lib.stride_tricks.as_strided(base, shape=(batch, rows, cols),
                                           strides=(stride * isz, isz, ld * isz))


def _gemm(v, alpha_p, a_p, b_p, beta_p, c_p) -> None:
    ta, tb, m, n, k, at, lda, sa, bt, ldb, sb, ct, ldc, sc, batch, compute, _ = v
    if ta or tb:
        raise NotImplementedError("mock cuBLAS: only CUBLAS_OP_N")
    ad, bd, cd = _np_type(at), _np_type(bt), _np_type(ct)
    acc = np.float64 if compute == 70 else np.float32  # CUBLAS_COMPUTE_64F / 32F
    scalar = np.dtype(acc)
    if cd.kind == "c":
        scalar = np.dtype(np.complex128 if acc is np.float64 else np.complex64)
        acc = scalar.type
    alpha = np.frombuffer((ctypes.c_char * scalar.itemsize).from_address(alpha_p), scalar)[0]
    beta = np.frombuffer((ctypes.c_char * scalar.itemsize).from_address(beta_p), scalar)[0]
    a = _matrices(a_p, ad, m, k, lda, sa, batch).astype(acc)
    b = _matrices(b_p, bd, k, n, ldb, sb, batch).astype(acc)
    c = _matrices(c_p, cd, m, n, ldc, sc, batch)
    result = alpha * np.matmul(a, b)
    if beta != 0:
        result = result + beta * c.astype(acc)
    c[...] = result.astype(cd)


def _on_gemm(v, alpha_p, a_p, b_p, beta_p, c_p) -> int:
    args = ([v[i] for i in range(17)], alpha_p, a_p, b_p, beta_p, c_p)
    try:
        _gemm(*args)
        if _core.capturing() is not None:
            # host pointer mode: alpha and beta are copied into the graph
            sz = 16
            frozen = [bytes((ctypes.c_char * sz).from_address(p)) for p in (alpha_p, beta_p)]
            keep = [ctypes.create_string_buffer(f, sz) for f in frozen]
            _core._record(lambda: _gemm(args[0], ctypes.addressof(keep[0]), a_p, b_p,
                                        ctypes.addressof(keep[1]), c_p))
    except Exception as e:  # noqa: BLE001 - a cuBLAS status, not an exception, crosses C
        _core.counters.setdefault("cublas_errors", []).append(repr(e))
        return 7  # CUBLAS_STATUS_INVALID_VALUE
    return 0


def _load():
    global _lib, _callback
    if _lib is None:
        gcc = shutil.which("gcc") or shutil.which("cc")
        key = hashlib.sha256(_SOURCE.encode()).hexdigest()[:16]
        folder = _emu._CACHE / f"cublas-{key}"
        path = folder / "libcublas.so.gg-mock"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            src = folder / f"cublas.{os.getpid()}.c"
            src.write_text(_SOURCE)
            tmp = folder / f"tmp.{os.getpid()}.so"
            subprocess.run([gcc, "-shared", "-fPIC", "-O1", str(src), "-o", str(tmp)],
                           check=True, capture_output=True)
            src.unlink()
            os.replace(tmp, path)
        _lib = ctypes.CDLL(str(path))
        _callback = _CB(_on_gemm)
        _lib.gg_mock_set_gemm.argtypes = [_CB]
        _lib.gg_mock_set_gemm(_callback)
    return _lib


def get_cublas_handle() -> int:
    """A cuBLAS handle (loads the stand-in libcublas)."""
    _load()
    return 1


def get_device_id() -> int:
    return 0
