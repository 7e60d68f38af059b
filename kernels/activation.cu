// Fused activations: forward y = act(x) and backward x̄ = act'(y) · ȳ, one pass each.
// The NumPy reference is Backend.act_forward / act_backward in gpugrad/backend/base.py.
// kind: 0 = relu, 1 = sigmoid, 2 = tanh. Arithmetic is done in float (double for f64).

template <typename T, typename Acc>
__device__ __forceinline__ Acc act_forward_value(int kind, Acc x) {
    if (kind == 0) return x <= Acc(0) ? Acc(0) : x;  // NaN stays NaN, as in PyTorch
    if (kind == 1) return Acc(1) / (Acc(1) + exp(-x));
    return tanh(x);
}

// Backward from the activation's output y: relu [not y <= 0] (a NaN passes the gradient,
// as in PyTorch), sigmoid y(1 - y), tanh 1 - y².
template <typename Acc>
__device__ __forceinline__ Acc act_backward_value(int kind, Acc y, Acc g) {
    if (kind == 0) return y <= Acc(0) ? Acc(0) : g;
    if (kind == 1) return g * y * (Acc(1) - y);
    return g * (Acc(1) - y * y);
}

template <typename T, typename Acc>
__device__ void act_forward(const T* __restrict__ x, T* __restrict__ y, long long n, int kind) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] = (T)act_forward_value<T, Acc>(kind, (Acc)x[i]);
    }
}

template <typename T, typename Acc>
__device__ void act_backward(const T* __restrict__ y, const T* __restrict__ g,
                             T* __restrict__ out, long long n, int kind) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        out[i] = (T)act_backward_value<Acc>(kind, (Acc)y[i], (Acc)g[i]);
    }
}

extern "C" __global__ void act_forward_f32(const float* x, float* y, long long n, int kind) {
    act_forward<float, float>(x, y, n, kind);
}

extern "C" __global__ void act_forward_f64(const double* x, double* y, long long n, int kind) {
    act_forward<double, double>(x, y, n, kind);
}

extern "C" __global__ void act_backward_f32(const float* y, const float* g, float* out,
                                            long long n, int kind) {
    act_backward<float, float>(y, g, out, n, kind);
}

extern "C" __global__ void act_backward_f64(const double* y, const double* g, double* out,
                                            long long n, int kind) {
    act_backward<double, double>(y, g, out, n, kind);
}
