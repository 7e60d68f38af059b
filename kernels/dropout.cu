// Dropout with a counter-based RNG: y = x·m/(1 − p), m = [u ≥ threshold], where u is a
// 32-bit word of Philox4x32-10 (Salmon et al., SC'11; Random123's constants) keyed by
// the 64-bit seed. Element i takes word i mod 4 of the block for counter
// (j_lo, j_hi, offset_lo, offset_hi), j = i div 4, so the mask is a pure function of
// (seed, offset, i): the backward regenerates it instead of storing it, and
// Backend.dropout_forward in gpugrad/backend/random.py (the NumPy reference, same Philox in
// vectorised uint32 math) gives bit-identical masks. threshold = ⌊p·2³²⌋, so
// P(keep) = 1 − threshold/2³². Elementwise only: runs under the host shim too.
#include "common.cuh"

#define GG_PHILOX_M0 0xD2511F53u
#define GG_PHILOX_M1 0xCD9E8D57u
#define GG_PHILOX_W0 0x9E3779B9u
#define GG_PHILOX_W1 0xBB67AE85u

struct gg_uint4 { unsigned int x, y, z, w; };

__device__ __forceinline__ gg_uint4 philox4x32_10(gg_uint4 c, unsigned int k0, unsigned int k1) {
    for (int round = 0; round < 10; ++round) {
        if (round) {
            k0 += GG_PHILOX_W0;
            k1 += GG_PHILOX_W1;
        }
        const unsigned int hi0 = __umulhi(GG_PHILOX_M0, c.x), lo0 = GG_PHILOX_M0 * c.x;
        const unsigned int hi1 = __umulhi(GG_PHILOX_M1, c.z), lo1 = GG_PHILOX_M1 * c.z;
        gg_uint4 n;
        n.x = hi1 ^ c.y ^ k0;
        n.y = lo1;
        n.z = hi0 ^ c.w ^ k1;
        n.w = lo0;
        c = n;
    }
    return c;
}

// The Philox block for the raw counter and key: exported for the known-answer test.
extern "C" __global__ void philox4x32_10_block(const unsigned int* ctr_key, unsigned int* out) {
    if (blockIdx.x * blockDim.x + threadIdx.x != 0) return;
    gg_uint4 c = {ctr_key[0], ctr_key[1], ctr_key[2], ctr_key[3]};
    c = philox4x32_10(c, ctr_key[4], ctr_key[5]);
    out[0] = c.x;
    out[1] = c.y;
    out[2] = c.z;
    out[3] = c.w;
}

// y = x·(scale where the Philox word is ≥ threshold, else 0), so a NaN stays NaN as in
// PyTorch (the same kernel applies the mask to ȳ in backward). One thread per block of 4 elements, grid-stride.
template <typename T>
__device__ void dropout_apply_impl(const T* __restrict__ x, T* __restrict__ y, long long n,
                                   unsigned int threshold, double scale,
                                   unsigned long long seed, unsigned long long offset) {
    typedef typename gg_acc<T>::type A;
    const A s = A(scale);
    const unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
    const long long blocks = (n + 3) / 4;
    GG_GRID_STRIDE(j, blocks) {
        gg_uint4 c = {(unsigned int)j, (unsigned int)((unsigned long long)j >> 32),
                      (unsigned int)offset, (unsigned int)(offset >> 32)};
        c = philox4x32_10(c, k0, k1);
        const unsigned int u[4] = {c.x, c.y, c.z, c.w};
        for (int lane = 0; lane < 4; ++lane) {
            const long long i = 4 * j + lane;
            if (i < n) gg_store(y + i, gg_load(x + i) * (u[lane] >= threshold ? s : A(0)));
        }
    }
}

#define GG_DROPOUT_KERNEL(sfx, T)                                                            \
    extern "C" __global__ void dropout_apply_##sfx(const T* x, T* y, long long n,            \
                                                   unsigned int threshold, double scale,     \
                                                   unsigned long long seed,                  \
                                                   unsigned long long offset) {              \
        dropout_apply_impl<T>(x, y, n, threshold, scale, seed, offset);                      \
    }
GG_FOREACH_FLOAT(GG_DROPOUT_KERNEL)
