// Layer normalisation over the last axis of a (rows, cols) row-major array:
// y = (x − μ)·rstd·w + b with rstd = 1/√(σ² + ε) (biased variance), and its backward
// x̄ = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = ȳ·w, x̂ = (x − μ)·rstd;
// w̄ = Σ_rows ȳ·x̂, b̄ = Σ_rows ȳ. The NumPy reference is Backend.layer_norm_forward /
// layer_norm_backward in gpugrad/backend/rows.py. μ and rstd are saved in the
// accumulation type (float for 16-bit inputs). All kernels here use block reductions or
// shared memory and are GPU-only.
#include "common.cuh"

#ifndef GG_HOST_SHIM
// One block per row (grid-stride); blockDim.x a multiple of 32. w and b may be null.
// store(i, y_i) writes element i = row·cols + col (gg_store_at, or a generated epilogue).
template <typename T, typename Store>
__device__ void layer_norm_rows(const T* __restrict__ x, const T* __restrict__ w,
                                const T* __restrict__ b,
                                typename gg_acc<T>::type* __restrict__ mean,
                                typename gg_acc<T>::type* __restrict__ rstd,
                                long long rows, long long cols, double eps, Store store) {
    typedef typename gg_acc<T>::type A;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        A s = A(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) s += gg_load(xr + c);
        const A mu = gg_block_sum(s) / A(cols);
        // Two passes (the row is cached) avoid E[x²] − E[x]²'s cancellation.
        A q = A(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            const A d = gg_load(xr + c) - mu;
            q += d * d;
        }
        const A rs = gg_rsqrt(gg_block_sum(q) / A(cols) + A(eps));
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            A v = (gg_load(xr + c) - mu) * rs;
            if (w) v *= gg_load(w + c);
            if (b) v += gg_load(b + c);
            store(r * cols + c, v);
        }
        if (threadIdx.x == 0) {
            mean[r] = mu;
            rstd[r] = rs;
        }
    }
}

template <typename T>
__device__ void layer_norm_forward_impl(const T* __restrict__ x, const T* __restrict__ w,
                                        const T* __restrict__ b, T* __restrict__ y,
                                        typename gg_acc<T>::type* __restrict__ mean,
                                        typename gg_acc<T>::type* __restrict__ rstd,
                                        long long rows, long long cols, double eps) {
    layer_norm_rows<T>(x, w, b, mean, rstd, rows, cols, eps, gg_store_at<T>{y});
}

// x̄ for one block per row; w may be null (no affine weight).
template <typename T>
__device__ void layer_norm_backward_impl(const T* __restrict__ x, const T* __restrict__ g,
                                         const T* __restrict__ w,
                                         const typename gg_acc<T>::type* __restrict__ mean,
                                         const typename gg_acc<T>::type* __restrict__ rstd,
                                         T* __restrict__ gx, long long rows, long long cols) {
    typedef typename gg_acc<T>::type A;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        const T* gr = g + r * cols;
        T* gxr = gx + r * cols;
        const A mu = mean[r], rs = rstd[r];
        A s1 = A(0), s2 = A(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            A gh = gg_load(gr + c);
            if (w) gh *= gg_load(w + c);
            s1 += gh;
            s2 += gh * (gg_load(xr + c) - mu) * rs;
        }
        const A m1 = gg_block_sum(s1) / A(cols);
        const A m2 = gg_block_sum(s2) / A(cols);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            A gh = gg_load(gr + c);
            if (w) gh *= gg_load(w + c);
            const A xh = (gg_load(xr + c) - mu) * rs;
            gg_store(gxr + c, rs * (gh - m1 - xh * m2));
        }
    }
}

// Block (32, 8), grid (ceil(cols / 32), gy): per-block column sums
// of ȳ·x̂ into pw[by·cols + col] and of ȳ into pb[...] (either may be null); the caller
// sums the gy rows.
template <typename T>
__device__ void layer_norm_param_grad_impl(const T* __restrict__ x, const T* __restrict__ g,
                                           const typename gg_acc<T>::type* __restrict__ mean,
                                           const typename gg_acc<T>::type* __restrict__ rstd,
                                           typename gg_acc<T>::type* __restrict__ pw,
                                           typename gg_acc<T>::type* __restrict__ pb,
                                           long long rows, long long cols) {
    typedef typename gg_acc<T>::type A;
    const long long col = blockIdx.x * 32LL + threadIdx.x;
    A aw = A(0), ab = A(0);
    if (col < cols) {
        for (long long r = blockIdx.y * 8LL + threadIdx.y; r < rows; r += 8LL * gridDim.y) {
            const long long i = r * cols + col;
            const A gi = gg_load(g + i);
            aw += gi * (gg_load(x + i) - mean[r]) * rstd[r];
            ab += gi;
        }
    }
    if (pw) gg_tile_column_sum(aw, pw + blockIdx.y * cols, col, cols);
    if (pb) gg_tile_column_sum(ab, pb + blockIdx.y * cols, col, cols);
}

#define GG_LAYER_NORM_KERNELS(sfx, T)                                                        \
    extern "C" __global__ void layer_norm_forward_##sfx(                                     \
        const T* x, const T* w, const T* b, T* y, typename gg_acc<T>::type* mean,            \
        typename gg_acc<T>::type* rstd, long long rows, long long cols, double eps) {        \
        layer_norm_forward_impl<T>(x, w, b, y, mean, rstd, rows, cols, eps);                 \
    }                                                                                        \
    extern "C" __global__ void layer_norm_backward_##sfx(                                    \
        const T* x, const T* g, const T* w, const typename gg_acc<T>::type* mean,            \
        const typename gg_acc<T>::type* rstd, T* gx, long long rows, long long cols) {       \
        layer_norm_backward_impl<T>(x, g, w, mean, rstd, gx, rows, cols);                    \
    }                                                                                        \
    extern "C" __global__ void layer_norm_param_grad_##sfx(                                  \
        const T* x, const T* g, const typename gg_acc<T>::type* mean,                        \
        const typename gg_acc<T>::type* rstd, typename gg_acc<T>::type* pw,                  \
        typename gg_acc<T>::type* pb, long long rows, long long cols) {                      \
        layer_norm_param_grad_impl<T>(x, g, mean, rstd, pw, pb, rows, cols);                 \
    }
#ifndef GG_ROW_EPILOGUE_ONLY  // a generated epilogue kernel needs only the templates
GG_FOREACH_FLOAT(GG_LAYER_NORM_KERNELS)
#endif
#endif
