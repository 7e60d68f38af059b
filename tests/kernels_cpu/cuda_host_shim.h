// Compiles the elementwise CUDA kernels in kernels/*.cu as plain C++ with g++, so their
// arithmetic is tested on a machine without a GPU (tests/test_kernels_cpu.py).
//
// __global__ functions become ordinary extern "C" functions; the launch coordinates are
// globals set by gg_shim_set_launch, and the test calls a kernel once per (block, thread)
// of a small grid, serially. That is exact for grid-stride kernels without shared memory
// or warp intrinsics; code that has them is guarded by GG_HOST_SHIM in the sources.
#pragma once
#define GG_HOST_SHIM 1

#include <cmath>
#include <cstdint>
#include <cstring>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

struct gg_shim_dim3 {
    unsigned int x, y, z;
};

static gg_shim_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static gg_shim_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};

extern "C" void gg_shim_set_launch(unsigned int block, unsigned int thread,
                                   unsigned int grid_dim, unsigned int block_dim) {
    blockIdx.x = block;
    threadIdx.x = thread;
    gridDim.x = grid_dim;
    blockDim.x = block_dim;
}

// CUDA intrinsics and math functions that the C library lacks.
inline float __uint_as_float(unsigned int u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}
inline double __longlong_as_double(long long u) {
    double d;
    std::memcpy(&d, &u, sizeof d);
    return d;
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
