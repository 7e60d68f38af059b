// Row-wise softmax / log-softmax over the last axis of a (rows, cols) row-major array, their
// backward, and softmax cross-entropy against integer targets. The NumPy reference is
// Backend.softmax / log_softmax / softmax_backward / log_softmax_backward /
// softmax_cross_entropy(_backward) in gpugrad/backend/rows.py.
//
// The row kernels run one block per row (grid-stride over rows) with blockDim.x a multiple
// of 32: they use block reductions and are GPU-only. softmax_xent_backward is elementwise
// (it reads the per-row log-sum-exp saved by the forward) and also runs under the host shim.
#include "common.cuh"

#ifndef GG_HOST_SHIM
// The row's maximum and log Σ exp(x − max), reduced over the block.
template <typename T, typename A>
__device__ __forceinline__ void row_max_logsum(const T* __restrict__ xr, long long cols,
                                               A* row_max, A* log_sum) {
    A m = -gg_inf<A>();
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) m = gg_max(m, gg_load(xr + c));
    m = gg_block_max(m);
    A s = A(0);
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) s += gg_exp(gg_load(xr + c) - m);
    s = gg_block_sum(s);
    *row_max = m;
    *log_sum = gg_log(s);
}

// y = exp(x − max) / Σ exp(x − max), or log_softmax y = (x − max) − log Σ exp(x − max);
// store(i, y_i) writes element i = row·cols + col (gg_store_at, or a generated epilogue).
template <typename T, typename Store>
__device__ void softmax_rows(const T* __restrict__ x, long long rows, long long cols,
                             int log_out, Store store) {
    typedef typename gg_acc<T>::type A;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        A m, ls;
        row_max_logsum<T, A>(xr, cols, &m, &ls);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            const A z = gg_load(xr + c) - m;
            store(r * cols + c, log_out ? z - ls : gg_exp(z - ls));
        }
    }
}

template <typename T>
__device__ void softmax_forward_impl(const T* __restrict__ x, T* __restrict__ y,
                                     long long rows, long long cols, int log_out) {
    softmax_rows<T>(x, rows, cols, log_out, gg_store_at<T>{y});
}

// softmax: x̄ = y·(ȳ − Σ ȳ·y);  log_softmax: x̄ = ȳ − exp(y)·Σ ȳ.
template <typename T>
__device__ void softmax_backward_impl(const T* __restrict__ y, const T* __restrict__ g,
                                      T* __restrict__ gx, long long rows, long long cols,
                                      int log_out) {
    typedef typename gg_acc<T>::type A;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* yr = y + r * cols;
        const T* gr = g + r * cols;
        T* gxr = gx + r * cols;
        A s = A(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            const A gc = gg_load(gr + c);
            s += log_out ? gc : gc * gg_load(yr + c);
        }
        s = gg_block_sum(s);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            const A yc = gg_load(yr + c), gc = gg_load(gr + c);
            gg_store(gxr + c, log_out ? gc - gg_exp(yc) * s : yc * (gc - s));
        }
    }
}

// Per row: lse = log Σ exp(x); loss = lse − x[target] (0 where target == ignore_index, NaN
// for a target outside [0, cols)). loss and lse are in the accumulation type.
template <typename T>
__device__ void softmax_xent_forward_impl(const T* __restrict__ x,
                                          const long long* __restrict__ target,
                                          typename gg_acc<T>::type* __restrict__ loss,
                                          typename gg_acc<T>::type* __restrict__ lse,
                                          long long rows, long long cols,
                                          long long ignore_index) {
    typedef typename gg_acc<T>::type A;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        A m, ls;
        row_max_logsum<T, A>(xr, cols, &m, &ls);
        if (threadIdx.x == 0) {
            const long long t = target[r];
            const A l = m + ls;
            lse[r] = l;
            if (t == ignore_index) loss[r] = A(0);
            else if (t < 0 || t >= cols) loss[r] = gg_nan<A>();
            else loss[r] = l - gg_load(xr + t);
        }
    }
}

#define GG_SOFTMAX_ROW_KERNELS(sfx, T)                                                       \
    extern "C" __global__ void softmax_forward_##sfx(const T* x, T* y, long long rows,       \
                                                     long long cols, int log_out) {          \
        softmax_forward_impl<T>(x, y, rows, cols, log_out);                                  \
    }                                                                                        \
    extern "C" __global__ void softmax_backward_##sfx(const T* y, const T* g, T* gx,         \
                                                      long long rows, long long cols,        \
                                                      int log_out) {                         \
        softmax_backward_impl<T>(y, g, gx, rows, cols, log_out);                             \
    }                                                                                        \
    extern "C" __global__ void softmax_xent_forward_##sfx(                                   \
        const T* x, const long long* target, typename gg_acc<T>::type* loss,                 \
        typename gg_acc<T>::type* lse, long long rows, long long cols,                       \
        long long ignore_index) {                                                            \
        softmax_xent_forward_impl<T>(x, target, loss, lse, rows, cols, ignore_index);        \
    }
#ifndef GG_ROW_EPILOGUE_ONLY  // a generated epilogue kernel needs only the templates
GG_FOREACH_FLOAT(GG_SOFTMAX_ROW_KERNELS)
#endif
#endif

// x̄ = (softmax(x) − one_hot(target))·scale, with softmax(x) = exp(x − lse) from the
// forward's per-row lse; scale is scale[0] (mean / sum: ȳ / count or ȳ) or scale[row]
// (reduction "none": ȳ per row) when per_row; rows whose target is ignore_index get 0.
template <typename T>
__device__ void softmax_xent_backward_impl(const T* __restrict__ x,
                                           const long long* __restrict__ target,
                                           const typename gg_acc<T>::type* __restrict__ lse,
                                           const typename gg_acc<T>::type* __restrict__ scale,
                                           int per_row, T* __restrict__ gx, long long rows,
                                           long long cols, long long ignore_index) {
    typedef typename gg_acc<T>::type A;
    GG_GRID_STRIDE(i, rows * cols) {
        const long long r = i / cols, c = i - r * cols;
        const long long t = target[r];
        A d = A(0);
        if (t != ignore_index) {
            const A p = gg_exp(gg_load(x + i) - lse[r]);
            d = (c == t ? p - A(1) : p) * scale[per_row ? r : 0];
        }
        gg_store(gx + i, d);
    }
}

#define GG_SOFTMAX_XENT_BACKWARD(sfx, T)                                                     \
    extern "C" __global__ void softmax_xent_backward_##sfx(                                  \
        const T* x, const long long* target, const typename gg_acc<T>::type* lse,            \
        const typename gg_acc<T>::type* scale, int per_row, T* gx, long long rows,           \
        long long cols, long long ignore_index) {                                            \
        softmax_xent_backward_impl<T>(x, target, lse, scale, per_row, gx, rows, cols,        \
                                      ignore_index);                                         \
    }
#ifndef GG_ROW_EPILOGUE_ONLY
GG_FOREACH_FLOAT(GG_SOFTMAX_XENT_BACKWARD)
#endif
