// The activation formulas shared by activation.cu and bias_act.cu (kinds: see activation.cu).
#pragma once
#include "common.cuh"

#define GG_SQRT1_2 0.70710678118654752440
#define GG_SQRT_2_OVER_PI 0.79788456080286535588
#define GG_INV_SQRT_2PI 0.39894228040143267794
#define GG_GELU_C 0.044715

template <typename A> __device__ __forceinline__ A gg_sigmoid(A x) {
    return A(1) / (A(1) + gg_exp(-x));  // exp overflow gives 1/inf = 0, never NaN
}

template <typename A> __device__ __forceinline__ A act_forward_value(int kind, A x, A slope) {
    switch (kind) {
        case 0: return x <= A(0) ? A(0) : x;  // NaN stays NaN, as in PyTorch
        case 1: return gg_sigmoid(x);
        case 2: return gg_tanh(x);
        case 3: return x > A(0) ? x : x * slope;
        case 4: return A(0.5) * x * (A(1) + gg_erf(x * A(GG_SQRT1_2)));
        case 5: {
            const A u = A(GG_SQRT_2_OVER_PI) * (x + A(GG_GELU_C) * x * x * x);
            return A(0.5) * x * (A(1) + gg_tanh(u));
        }
        default: return x * gg_sigmoid(x);
    }
}

// v is y for relu/sigmoid/tanh and x for the others (see the header comment).
template <typename A>
__device__ __forceinline__ A act_backward_value(int kind, A v, A g, A slope) {
    switch (kind) {
        case 0: return v <= A(0) ? A(0) : g;  // a NaN passes its gradient (as PyTorch)
        case 1: return g * v * (A(1) - v);
        case 2: return g * (A(1) - v * v);
        case 3: return v > A(0) ? g : g * slope;
        case 4: {
            const A cdf = A(0.5) * (A(1) + gg_erf(v * A(GG_SQRT1_2)));
            const A pdf = gg_exp(A(-0.5) * v * v) * A(GG_INV_SQRT_2PI);
            return g * (cdf + v * pdf);
        }
        case 5: {
            const A u = A(GG_SQRT_2_OVER_PI) * (v + A(GG_GELU_C) * v * v * v);
            const A t = gg_tanh(u);
            const A du = A(GG_SQRT_2_OVER_PI) * (A(1) + A(3 * GG_GELU_C) * v * v);
            return g * (A(0.5) * (A(1) + t) + A(0.5) * v * (A(1) - t * t) * du);
        }
        default: {
            const A s = gg_sigmoid(v);
            return g * s * (A(1) + v * (A(1) - s));
        }
    }
}

