// Shared helpers for every kernel file: storage types, float conversions, math overloads,
// block reductions and the per-dtype wrapper macro.
//
// No CUDA header is included: NVRTC compiles this with only its built-in declarations, and
// the CPU test suite compiles the elementwise kernels with g++ against
// tests/kernels_cpu/cuda_host_shim.h, which defines GG_HOST_SHIM. Code that needs shared
// memory or warp shuffles sits inside `#ifndef GG_HOST_SHIM`; the mock CUDA device
// (tests/mock_cupy, GPUGRAD_MOCK_CUDA=1) compiles those sections too, since its launcher
// runs each block's threads as cooperating fibers with real barriers and warp exchanges.
//
// gpugrad/backend/kernels.py pastes this file in place of `#include "common.cuh"` before
// compiling, so CuPy's source-keyed compile cache sees header changes too.
#pragma once

// float16 / bfloat16 storage: the raw 16 bits (the pointers CuPy passes are untyped).
struct gg_half { unsigned short bits; };
struct gg_bf16 { unsigned short bits; };

// The accumulation type: float for every float type but double.
template <typename T> struct gg_acc { typedef float type; };
template <> struct gg_acc<double> { typedef double type; };

// -- 16-bit float conversions ------------------------------------------------------------
#ifdef GG_HOST_SHIM
// Software round-to-nearest-even conversions (the host has no f16 instructions).
inline float gg_half_to_float(unsigned short h) {
    unsigned int sign = (unsigned int)(h & 0x8000u) << 16;
    unsigned int e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {  // zero or subnormal: m * 2^-24
        float f = (float)m * 5.9604644775390625e-8f;
        return __uint_as_float(__float_as_uint(f) | sign);
    }
    if (e == 31) return __uint_as_float(sign | 0x7f800000u | (m << 13));
    return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}

inline unsigned short gg_float_to_half(float f) {
    unsigned int x = __float_as_uint(f);
    unsigned int sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (unsigned short)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // >= 65520 rounds to inf
    if (ax < 0x38800000u) {  // below 2^-14: a subnormal half, round(|f| * 2^24) exactly
        return (unsigned short)(sign | (unsigned int)nearbyintf(__uint_as_float(ax) * 16777216.0f));
    }
    ax += 0xfffu + ((ax >> 13) & 1u);  // round to nearest even on the 13 dropped bits
    return (unsigned short)(sign | ((ax - (112u << 23)) >> 13));
}
#else
__device__ __forceinline__ float gg_half_to_float(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ unsigned short gg_float_to_half(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
#endif

__device__ __forceinline__ float gg_bf16_to_float(unsigned short b) {
    return __uint_as_float((unsigned int)b << 16);
}

__device__ __forceinline__ unsigned short gg_float_to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
    return (unsigned short)(u >> 16);
}

// -- loads and stores in the accumulation type --------------------------------------------
__device__ __forceinline__ float gg_load(const float* p) { return *p; }
__device__ __forceinline__ double gg_load(const double* p) { return *p; }
__device__ __forceinline__ float gg_load(const gg_half* p) { return gg_half_to_float(p->bits); }
__device__ __forceinline__ float gg_load(const gg_bf16* p) { return gg_bf16_to_float(p->bits); }

__device__ __forceinline__ void gg_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void gg_store(double* p, double v) { *p = v; }
__device__ __forceinline__ void gg_store(gg_half* p, float v) { p->bits = gg_float_to_half(v); }
__device__ __forceinline__ void gg_store(gg_bf16* p, float v) { p->bits = gg_float_to_bf16(v); }

// -- math in the accumulation type (precise library functions, no fast-math) ---------------
__device__ __forceinline__ float gg_exp(float x) { return expf(x); }
__device__ __forceinline__ double gg_exp(double x) { return exp(x); }
__device__ __forceinline__ float gg_log(float x) { return logf(x); }
__device__ __forceinline__ double gg_log(double x) { return log(x); }
__device__ __forceinline__ float gg_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double gg_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float gg_erf(float x) { return erff(x); }
__device__ __forceinline__ double gg_erf(double x) { return erf(x); }
__device__ __forceinline__ float gg_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double gg_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float gg_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double gg_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float gg_rsqrt(float x) { return rsqrtf(x); }
__device__ __forceinline__ double gg_rsqrt(double x) { return rsqrt(x); }

// The rest of the pointwise primitives (gpugrad/backend/expr.py renders each to one of these).
#define GG_MATH1(name, ff, fd)                                                      \
    __device__ __forceinline__ float name(float x) { return ff(x); }               \
    __device__ __forceinline__ double name(double x) { return fd(x); }
#define GG_MATH2(name, ff, fd)                                                      \
    __device__ __forceinline__ float name(float x, float y) { return ff(x, y); }   \
    __device__ __forceinline__ double name(double x, double y) { return fd(x, y); }
GG_MATH1(gg_expm1, expm1f, expm1)
GG_MATH1(gg_exp2, exp2f, exp2)
GG_MATH1(gg_log1p, log1pf, log1p)
GG_MATH1(gg_log2, log2f, log2)
GG_MATH1(gg_log10, log10f, log10)
GG_MATH1(gg_sin, sinf, sin)
GG_MATH1(gg_cos, cosf, cos)
GG_MATH1(gg_tan, tanf, tan)
GG_MATH1(gg_asin, asinf, asin)
GG_MATH1(gg_acos, acosf, acos)
GG_MATH1(gg_atan, atanf, atan)
GG_MATH1(gg_sinh, sinhf, sinh)
GG_MATH1(gg_cosh, coshf, cosh)
GG_MATH1(gg_asinh, asinhf, asinh)
GG_MATH1(gg_acosh, acoshf, acosh)
GG_MATH1(gg_atanh, atanhf, atanh)
GG_MATH1(gg_erfc, erfcf, erfc)
GG_MATH1(gg_erfinv, erfinvf, erfinv)
GG_MATH1(gg_abs, fabsf, fabs)
GG_MATH1(gg_floor, floorf, floor)
GG_MATH1(gg_trunc, truncf, trunc)
GG_MATH2(gg_atan2, atan2f, atan2)
GG_MATH2(gg_hypot, hypotf, hypot)
GG_MATH2(gg_copysign, copysignf, copysign)
GG_MATH2(gg_fmod, fmodf, fmod)

template <typename A> __device__ __forceinline__ A gg_inf();
template <> __device__ __forceinline__ float gg_inf<float>() { return __uint_as_float(0x7f800000u); }
template <> __device__ __forceinline__ double gg_inf<double>() {
    return __longlong_as_double(0x7ff0000000000000LL);
}

template <typename A> __device__ __forceinline__ A gg_nan() { return gg_inf<A>() - gg_inf<A>(); }

// max that propagates a NaN from either side (as NumPy's maximum).
template <typename A> __device__ __forceinline__ A gg_max(A a, A b) {
    return (a != a || a > b) ? a : b;
}

// min that propagates a NaN from either side (as NumPy's minimum).
template <typename A> __device__ __forceinline__ A gg_min(A a, A b) {
    return (a != a || a < b) ? a : b;
}

// -1, 0 or 1 (0 at NaN, as torch.sign).
template <typename A> __device__ __forceinline__ A gg_sign(A x) {
    return A((x > A(0)) - (x < A(0)));
}

// Python's / NumPy's remainder: the sign of the divisor.
template <typename A> __device__ __forceinline__ A gg_remainder(A a, A b) {
    A r = gg_fmod(a, b);
    return (r != A(0) && ((r < A(0)) != (b < A(0)))) ? r + b : r;
}

// 1 / (1 + e^-x): exp overflow gives 1/inf = 0, never NaN.
template <typename A> __device__ __forceinline__ A gg_sigmoid(A x) {
    return A(1) / (A(1) + gg_exp(-x));
}

// ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|), without overflow.
template <typename A> __device__ __forceinline__ A gg_softplus(A x) {
    return gg_max(x, A(0)) + gg_log1p(gg_exp(-gg_abs(x)));
}

// ln(e^a + e^b) (NumPy's logaddexp: equal infinities give themselves).
template <typename A> __device__ __forceinline__ A gg_logaddexp(A a, A b) {
    if (a == b) return a + A(0.69314718055994530942);
    return gg_max(a, b) + gg_log1p(gg_exp(-gg_abs(a - b)));
}

// Φ(x) = ½·erfc(−x/√2), accurate in relative terms in both tails.
template <typename A> __device__ __forceinline__ A gg_ndtr(A x) {
    return A(0.5) * gg_erfc(x * A(-0.70710678118654752440));
}

// x - x is 0 exactly for finite x and NaN for inf or NaN (valid without fast-math).
template <typename A> __device__ __forceinline__ bool gg_isfinite(A x) { return x - x == A(0); }

// One grid-stride loop over [0, n): the loop every elementwise kernel uses.
#define GG_GRID_STRIDE(i, n)                                                       \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

// The store of a row kernel (softmax_rows, layer_norm_rows): y[i] = v in the storage type.
// gpugrad/backend/row_epilogue.py generates the other store, a lambda that also applies a
// pointwise program to v (a fused epilogue), and compiles the row template with it.
template <typename T> struct gg_store_at {
    T* __restrict__ y;
    template <typename A> __device__ __forceinline__ void operator()(long long i, A v) const {
        gg_store(y + i, v);
    }
};

// M(suffix, storage type) for every supported float dtype; kernels.py builds the same
// suffixes (f32, f64, f16, bf16) from array dtypes.
#define GG_FOREACH_FLOAT(M) M(f32, float) M(f64, double) M(f16, gg_half) M(bf16, gg_bf16)

#ifndef GG_HOST_SHIM
// -- block reductions (GPU only): blockDim.x must be a multiple of 32, at most 1024, and
// every thread of the block must call them (no thread may have returned early) ----------
template <typename A> __device__ __forceinline__ A gg_warp_sum(A v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <typename A> __device__ __forceinline__ A gg_warp_max(A v) {
    for (int o = 16; o > 0; o >>= 1) v = gg_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The sum of v over the block, returned to every thread.
template <typename A> __device__ A gg_block_sum(A v) {
    __shared__ A partial[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = gg_warp_sum(v);
    __syncthreads();  // a previous call's readers are done with `partial`
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? partial[lane] : A(0);
    return gg_warp_sum(v);
}

// The maximum of v over the block (NaN if any is NaN), returned to every thread.
template <typename A> __device__ A gg_block_max(A v) {
    __shared__ A partial[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = gg_warp_max(v);
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? partial[lane] : -gg_inf<A>();
    return gg_warp_max(v);
}

// Column sums of a (32 x 8) block tile: `acc` is this thread's partial for column
// blockIdx.x * 32 + threadIdx.x; thread row 0 writes the block's sum to out[col].
// blockDim must be (32, 8).
template <typename A> __device__ void gg_tile_column_sum(A acc, A* out, long long col,
                                                        long long cols) {
    __shared__ A tile[8][33];
    tile[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        A s = A(0);
        for (int k = 0; k < 8; ++k) s += tile[k][threadIdx.x];
        out[col] = s;
    }
    __syncthreads();
}
#endif
