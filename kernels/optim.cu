// Multi-tensor optimizer kernels: one launch updates every tensor of a list.
// The NumPy reference is Backend.sgd_update / adam_update / grad_norm / unscale_grads_ in
// gpugrad/backend/optim.py; gpugrad/backend/cupy_optim.py builds the launch metadata.
//
// `meta` is one int64 device array: R per-tensor columns of length nt (device pointers, or
// flags), then the nt tensor sizes, then the chunk table: nchunks tensor indices followed
// by nchunks start offsets. Each block takes chunks k = blockIdx.x, blockIdx.x + gridDim.x,
// ... and its threads stride through elements [start, min(start + chunk, size)).
// found_inf (a float32 device scalar, or null): when nonzero the whole update is skipped,
// decided on the device (no host read).
//
// sgd_multi, adam_multi and unscale_multi are elementwise and run under the host shim;
// sumsq_multi uses a block reduction and is GPU-only.
#include "common.cuh"

struct gg_mt_chunk {
    int tensor;
    long long begin, end;
};

__device__ __forceinline__ gg_mt_chunk gg_mt_get_chunk(const long long* meta, int roles, int nt,
                                                       long long nchunks, long long chunk,
                                                       long long k) {
    const long long* sizes = meta + (long long)roles * nt;
    const long long* chunk_tensor = sizes + nt;
    const long long* chunk_start = chunk_tensor + nchunks;
    gg_mt_chunk c;
    c.tensor = (int)chunk_tensor[k];
    c.begin = chunk_start[k];
    const long long end = c.begin + chunk, size = sizes[c.tensor];
    c.end = end < size ? end : size;
    return c;
}

template <typename P> __device__ __forceinline__ P* gg_mt_ptr(const long long* meta, int role,
                                                              int nt, int t) {
    return (P*)(meta[(long long)role * nt + t]);
}

__device__ __forceinline__ bool gg_skip_step(const float* found_inf) {
    return found_inf && *found_inf != 0.0f;
}

// Columns: params, grads, momentum buffers, first-step flags (buffer ← d when set).
// d = ±g + wd·p; b = μ·b + (1 − τ)·d (b = d on the first step); d = d + μ·b (Nesterov)
// or b; p ← p − lr·d.
template <typename T>
__device__ void sgd_multi_impl(const long long* __restrict__ meta, int nt, long long nchunks,
                               long long chunk, double lr, double momentum, double dampening,
                               double weight_decay, int nesterov, int maximize,
                               const float* __restrict__ found_inf) {
    typedef typename gg_acc<T>::type A;
    if (gg_skip_step(found_inf)) return;
    const A a_lr = A(lr), mu = A(momentum), keep = A(1.0 - dampening), wd = A(weight_decay);
    for (long long k = blockIdx.x; k < nchunks; k += gridDim.x) {
        const gg_mt_chunk c = gg_mt_get_chunk(meta, 4, nt, nchunks, chunk, k);
        T* p = gg_mt_ptr<T>(meta, 0, nt, c.tensor);
        const T* g = gg_mt_ptr<const T>(meta, 1, nt, c.tensor);
        T* buf = gg_mt_ptr<T>(meta, 2, nt, c.tensor);
        const bool first = meta[3LL * nt + c.tensor] != 0;
        for (long long i = c.begin + threadIdx.x; i < c.end; i += blockDim.x) {
            const A pi = gg_load(p + i);
            A d = gg_load(g + i);
            if (maximize) d = -d;
            if (weight_decay != 0.0) d += wd * pi;
            if (momentum != 0.0) {
                const A b = first ? d : mu * gg_load(buf + i) + keep * d;
                gg_store(buf + i, b);
                d = nesterov ? d + mu * b : b;
            }
            gg_store(p + i, pi - a_lr * d);
        }
    }
}

// Columns: params, grads, exp_avg m, exp_avg_sq v, max_exp_avg_sq v̂ (amsgrad; else 0),
// then the step: a device pointer to a float32 step count t (0 when the step is a host
// number), and the host step's step_size = lr / (1 − β₁ᵗ) and bc2 = √(1 − β₂ᵗ) as the bits
// of two doubles. A device t gives step_size and bc2 computed here in double, then rounded
// to the accumulation type (as the host numbers are).
// AdamW (decoupled) scales p by 1 − lr·wd; Adam adds wd·p to g.
template <typename T>
__device__ void adam_multi_impl(const long long* __restrict__ meta, int nt, long long nchunks,
                                long long chunk, double lr, double beta1, double beta2,
                                double eps, double weight_decay, int decoupled, int amsgrad,
                                int maximize, const float* __restrict__ found_inf) {
    typedef typename gg_acc<T>::type A;
    if (gg_skip_step(found_inf)) return;
    const A b1c = A(1.0 - beta1), b2 = A(beta2), b2c = A(1.0 - beta2), wd = A(weight_decay);
    const A decay = A(1.0 - lr * weight_decay), a_eps = A(eps);
    for (long long k = blockIdx.x; k < nchunks; k += gridDim.x) {
        const gg_mt_chunk c = gg_mt_get_chunk(meta, 8, nt, nchunks, chunk, k);
        T* p = gg_mt_ptr<T>(meta, 0, nt, c.tensor);
        const T* g = gg_mt_ptr<const T>(meta, 1, nt, c.tensor);
        T* m = gg_mt_ptr<T>(meta, 2, nt, c.tensor);
        T* v = gg_mt_ptr<T>(meta, 3, nt, c.tensor);
        T* vmax = gg_mt_ptr<T>(meta, 4, nt, c.tensor);
        const float* t_dev = gg_mt_ptr<const float>(meta, 5, nt, c.tensor);
        A step_size, bc2;
        if (t_dev) {  // in double, then rounded, as the host numbers: 1 − β₂ᵗ cancels
            const double t = double(*t_dev);
            step_size = A(lr / (1.0 - gg_pow(beta1, t)));
            bc2 = A(gg_sqrt(1.0 - gg_pow(beta2, t)));
        } else {
            step_size = A(__longlong_as_double(meta[6LL * nt + c.tensor]));
            bc2 = A(__longlong_as_double(meta[7LL * nt + c.tensor]));
        }
        for (long long i = c.begin + threadIdx.x; i < c.end; i += blockDim.x) {
            A pi = gg_load(p + i);
            A gi = gg_load(g + i);
            if (maximize) gi = -gi;
            if (weight_decay != 0.0) {
                if (decoupled) pi *= decay;
                else gi += wd * pi;
            }
            A mi = gg_load(m + i);
            mi += b1c * (gi - mi);
            const A vi = b2 * gg_load(v + i) + b2c * (gi * gi);
            gg_store(m + i, mi);
            gg_store(v + i, vi);
            A vv = vi;
            if (amsgrad) {
                vv = gg_max(gg_load(vmax + i), vi);
                gg_store(vmax + i, vv);
            }
            const A denom = gg_sqrt(vv) / bc2 + a_eps;
            gg_store(p + i, pi - step_size * (mi / denom));
        }
    }
}

// Column: grads. g ← g·inv_scale in place; *found_inf = 1 if any g was inf or NaN.
template <typename T>
__device__ void unscale_multi_impl(const long long* __restrict__ meta, int nt, long long nchunks,
                                   long long chunk, const float* __restrict__ inv_scale,
                                   float* __restrict__ found_inf) {
    typedef typename gg_acc<T>::type A;
    const A s = A(*inv_scale);
    bool bad = false;
    for (long long k = blockIdx.x; k < nchunks; k += gridDim.x) {
        const gg_mt_chunk c = gg_mt_get_chunk(meta, 1, nt, nchunks, chunk, k);
        T* g = gg_mt_ptr<T>(meta, 0, nt, c.tensor);
        for (long long i = c.begin + threadIdx.x; i < c.end; i += blockDim.x) {
            const A gi = gg_load(g + i);
            bad |= !gg_isfinite(gi);
            gg_store(g + i, gi * s);
        }
    }
    if (bad) *found_inf = 1.0f;  // every writer stores the same value: a benign race
}

#define GG_OPTIM_KERNELS(sfx, T)                                                             \
    extern "C" __global__ void sgd_multi_##sfx(                                              \
        const long long* meta, int nt, long long nchunks, long long chunk, double lr,         \
        double momentum, double dampening, double weight_decay, int nesterov, int maximize,  \
        const float* found_inf) {                                                            \
        sgd_multi_impl<T>(meta, nt, nchunks, chunk, lr, momentum, dampening, weight_decay,   \
                          nesterov, maximize, found_inf);                                    \
    }                                                                                        \
    extern "C" __global__ void adam_multi_##sfx(                                             \
        const long long* meta, int nt, long long nchunks, long long chunk, double lr,         \
        double beta1, double beta2, double eps, double weight_decay, int decoupled,          \
        int amsgrad, int maximize, const float* found_inf) {                                 \
        adam_multi_impl<T>(meta, nt, nchunks, chunk, lr, beta1, beta2, eps, weight_decay,    \
                           decoupled, amsgrad, maximize, found_inf);                         \
    }                                                                                        \
    extern "C" __global__ void unscale_multi_##sfx(const long long* meta, int nt,            \
                                                   long long nchunks, long long chunk,       \
                                                   const float* inv_scale,                   \
                                                   float* found_inf) {                       \
        unscale_multi_impl<T>(meta, nt, nchunks, chunk, inv_scale, found_inf);               \
    }
GG_FOREACH_FLOAT(GG_OPTIM_KERNELS)

#ifndef GG_HOST_SHIM
// Column: grads. partials[k] = Σ g² over chunk k, in the accumulation type (the caller
// sums the partials: deterministic, no atomics).
template <typename T>
__device__ void sumsq_multi_impl(const long long* __restrict__ meta, int nt, long long nchunks,
                                 long long chunk, typename gg_acc<T>::type* __restrict__ partials) {
    typedef typename gg_acc<T>::type A;
    for (long long k = blockIdx.x; k < nchunks; k += gridDim.x) {
        const gg_mt_chunk c = gg_mt_get_chunk(meta, 1, nt, nchunks, chunk, k);
        const T* g = gg_mt_ptr<const T>(meta, 0, nt, c.tensor);
        A s = A(0);
        for (long long i = c.begin + threadIdx.x; i < c.end; i += blockDim.x) {
            const A gi = gg_load(g + i);
            s += gi * gi;
        }
        s = gg_block_sum(s);
        if (threadIdx.x == 0) partials[k] = s;
    }
}

#define GG_SUMSQ_KERNEL(sfx, T)                                                              \
    extern "C" __global__ void sumsq_multi_##sfx(const long long* meta, int nt,              \
                                                 long long nchunks, long long chunk,         \
                                                 typename gg_acc<T>::type* partials) {       \
        sumsq_multi_impl<T>(meta, nt, nchunks, chunk, partials);                             \
    }
GG_FOREACH_FLOAT(GG_SUMSQ_KERNEL)
#endif
