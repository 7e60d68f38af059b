// Fused bias + activation over a (rows, cols) row-major x and a (cols,) bias:
// forward y = act(x + b); backward x̄ = act'(·)·ȳ and b̄ = Σ_rows x̄ in one launch.
// The NumPy reference is Backend.bias_act_forward / bias_act_backward in
// gpugrad/backend/base.py; the activation kinds and formulas are activation.cu's.
#include "common.cuh"
#include "activation.cuh"

template <typename T>
__device__ void bias_act_forward_impl(const T* __restrict__ x, const T* __restrict__ bias,
                                      T* __restrict__ y, long long rows, long long cols,
                                      int kind, double slope) {
    typedef typename gg_acc<T>::type A;
    GG_GRID_STRIDE(i, rows * cols) {
        const A z = gg_load(x + i) + gg_load(bias + i % cols);
        gg_store(y + i, act_forward_value<A>(kind, z, A(slope)));
    }
}

#define GG_BIAS_ACT_FORWARD(sfx, T)                                                          \
    extern "C" __global__ void bias_act_forward_##sfx(const T* x, const T* bias, T* y,       \
                                                      long long rows, long long cols,        \
                                                      int kind, double slope) {              \
        bias_act_forward_impl<T>(x, bias, y, rows, cols, kind, slope);                       \
    }
GG_FOREACH_FLOAT(GG_BIAS_ACT_FORWARD)

#ifndef GG_HOST_SHIM
// Block (32, 8), grid (ceil(cols / 32), gy): thread (tx, ty) of block (bx, by) handles
// column bx·32 + tx for rows by·8 + ty, stepping 8·gy, so a warp reads 32 adjacent
// columns (coalesced). v is y (relu, sigmoid, tanh) or x; when bias is not null it is
// added to v first (x + b is the activation's input). Each block's column sums of x̄ go
// to partials[by·cols + col]; the caller sums the gy rows of partials (a second tiny
// launch, deterministic).
template <typename T>
__device__ void bias_act_backward_impl(const T* __restrict__ v, const T* __restrict__ bias,
                                       const T* __restrict__ g, T* __restrict__ gx,
                                       typename gg_acc<T>::type* __restrict__ partials,
                                       long long rows, long long cols, int kind,
                                       double slope) {
    typedef typename gg_acc<T>::type A;
    const long long col = blockIdx.x * 32LL + threadIdx.x;
    A acc = A(0);
    if (col < cols) {
        const A b = bias ? gg_load(bias + col) : A(0);
        for (long long r = blockIdx.y * 8LL + threadIdx.y; r < rows; r += 8LL * gridDim.y) {
            const long long i = r * cols + col;
            const A d = act_backward_value<A>(kind, gg_load(v + i) + b, gg_load(g + i), A(slope));
            gg_store(gx + i, d);
            acc += d;
        }
    }
    gg_tile_column_sum(acc, partials + blockIdx.y * cols, col, cols);
}

#define GG_BIAS_ACT_BACKWARD(sfx, T)                                                         \
    extern "C" __global__ void bias_act_backward_##sfx(                                      \
        const T* v, const T* bias, const T* g, T* gx, typename gg_acc<T>::type* partials,    \
        long long rows, long long cols, int kind, double slope) {                            \
        bias_act_backward_impl<T>(v, bias, g, gx, partials, rows, cols, kind, slope);        \
    }
GG_FOREACH_FLOAT(GG_BIAS_ACT_BACKWARD)
#endif
