// Fused activations: forward y = act(x) and backward x̄ = act'(·) · ȳ, one pass each, and
// swish y = x·σ(βx) with its β gradient. The NumPy reference is Backend.act_forward /
// act_backward / swish_* in gpugrad/backend/base.py. Arithmetic is in float for the
// 16- and 32-bit types and in double for float64.
//
// kind (gpugrad/backend/kernels.py ACTIVATION_KINDS): 0 relu, 1 sigmoid, 2 tanh,
// 3 leaky_relu, 4 gelu (erf), 5 gelu_tanh, 6 silu. The backward of relu, sigmoid and tanh
// reads the output y; the backward of leaky_relu, gelu, gelu_tanh and silu reads the input x.
#include "common.cuh"
#include "activation.cuh"

template <typename T>
__device__ void act_forward_impl(const T* __restrict__ x, T* __restrict__ y, long long n,
                                 int kind, double slope) {
    typedef typename gg_acc<T>::type A;
    GG_GRID_STRIDE(i, n) { gg_store(y + i, act_forward_value<A>(kind, gg_load(x + i), A(slope))); }
}

template <typename T>
__device__ void act_backward_impl(const T* __restrict__ v, const T* __restrict__ g,
                                  T* __restrict__ out, long long n, int kind, double slope) {
    typedef typename gg_acc<T>::type A;
    GG_GRID_STRIDE(i, n) {
        gg_store(out + i, act_backward_value<A>(kind, gg_load(v + i), gg_load(g + i), A(slope)));
    }
}

// β is *beta when beta is not null (a 0-d device array: no host read), else beta_value.
template <typename T> __device__ __forceinline__ typename gg_acc<T>::type
swish_beta(const T* beta, double beta_value) {
    typedef typename gg_acc<T>::type A;
    return beta ? gg_load(beta) : A(beta_value);
}

template <typename T>
__device__ void swish_forward_impl(const T* __restrict__ x, const T* __restrict__ beta,
                                   double beta_value, T* __restrict__ y, long long n) {
    typedef typename gg_acc<T>::type A;
    const A b = swish_beta(beta, beta_value);
    GG_GRID_STRIDE(i, n) {
        const A xi = gg_load(x + i);
        gg_store(y + i, xi * gg_sigmoid(b * xi));
    }
}

// x̄ = ȳ·s·(1 + βx(1 − s)) and β̄ᵢ = ȳ·x²·s(1 − s), s = σ(βx); returns β̄ᵢ.
template <typename A>
__device__ __forceinline__ A swish_backward_value(A x, A b, A g, A* gx) {
    const A s = gg_sigmoid(b * x);
    const A xs = x * (A(1) - s);
    *gx = g * s * (A(1) + b * xs);
    return g * xs * x * s;
}

// Per-element β̄ into gb (when not null).
template <typename T>
__device__ void swish_backward_impl(const T* __restrict__ x, const T* __restrict__ g,
                                    const T* __restrict__ beta, double beta_value,
                                    T* __restrict__ gx, T* __restrict__ gb, long long n) {
    typedef typename gg_acc<T>::type A;
    const A b = swish_beta(beta, beta_value);
    GG_GRID_STRIDE(i, n) {
        A dx;
        const A db = swish_backward_value<A>(gg_load(x + i), b, gg_load(g + i), &dx);
        gg_store(gx + i, dx);
        if (gb) gg_store(gb + i, db);
    }
}

#define GG_ACTIVATION_KERNELS(sfx, T)                                                       \
    extern "C" __global__ void act_forward_##sfx(const T* x, T* y, long long n, int kind,    \
                                                 double slope) {                             \
        act_forward_impl<T>(x, y, n, kind, slope);                                           \
    }                                                                                        \
    extern "C" __global__ void act_backward_##sfx(const T* v, const T* g, T* out,            \
                                                  long long n, int kind, double slope) {     \
        act_backward_impl<T>(v, g, out, n, kind, slope);                                     \
    }                                                                                        \
    extern "C" __global__ void swish_forward_##sfx(const T* x, const T* beta,                \
                                                   double beta_value, T* y, long long n) {   \
        swish_forward_impl<T>(x, beta, beta_value, y, n);                                    \
    }                                                                                        \
    extern "C" __global__ void swish_backward_##sfx(const T* x, const T* g, const T* beta,   \
                                                    double beta_value, T* gx, T* gb,         \
                                                    long long n) {                           \
        swish_backward_impl<T>(x, g, beta, beta_value, gx, gb, n);                           \
    }
GG_FOREACH_FLOAT(GG_ACTIVATION_KERNELS)

#ifndef GG_HOST_SHIM
// Swish backward with β̄ = Σᵢ β̄ᵢ reduced in the same launch: each block writes its sum to
// partials[blockIdx.x] (accumulation type); the caller sums the gridDim.x partials in a
// second tiny launch, which keeps the result deterministic (no atomics).
template <typename T>
__device__ void swish_backward_reduce_impl(const T* __restrict__ x, const T* __restrict__ g,
                                           const T* __restrict__ beta, double beta_value,
                                           T* __restrict__ gx,
                                           typename gg_acc<T>::type* __restrict__ partials,
                                           long long n) {
    typedef typename gg_acc<T>::type A;
    const A b = swish_beta(beta, beta_value);
    A acc = A(0);
    GG_GRID_STRIDE(i, n) {
        A dx;
        acc += swish_backward_value<A>(gg_load(x + i), b, gg_load(g + i), &dx);
        gg_store(gx + i, dx);
    }
    acc = gg_block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

#define GG_SWISH_REDUCE_KERNEL(sfx, T)                                                      \
    extern "C" __global__ void swish_backward_reduce_##sfx(                                 \
        const T* x, const T* g, const T* beta, double beta_value, T* gx,                    \
        typename gg_acc<T>::type* partials, long long n) {                                  \
        swish_backward_reduce_impl<T>(x, g, beta, beta_value, gx, partials, n);             \
    }
GG_FOREACH_FLOAT(GG_SWISH_REDUCE_KERNEL)
#endif
