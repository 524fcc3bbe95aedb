// Bias + activation, forward and backward (Activation.swift). Shapes: N rows, F features.
//   form 0: gelu (erf, HF `gelu`), 1: gelu_new (tanh form), 2: tanh (the pooler), 3: relu; f and f′ from bert_shared.cuh,
//   bit-identical to the CPU's. cuBLASLt's GELU epilogue is the tanh form only, hence these kernels.
// Launch: any grid, threads stride over the N·F elements.
#include "bert_device.cuh"

/// u = x + bias (bias [F] broadcast over rows; null for none), y = f(u); `pre` [N, F] saves u for the backward (null
/// in inference).
template <typename T>
__device__ void bias_activation(T* y, float* pre, const float* x, const float* bias, long long n, int F, int form) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float u = bias ? x[i] + bias[i % F] : x[i];
        if (pre) pre[i] = u;
        bd_store(y, i, bs_activation(form, u));
    }
}

extern "C" __global__ void bias_activation_forward_f32(float* y, float* pre, const float* x, const float* bias,
                                                       long long n, int F, int form) {
    bias_activation(y, pre, x, bias, n, F, form);
}

extern "C" __global__ void bias_activation_forward_bf16(bf16* y, float* pre, const float* x, const float* bias,
                                                        long long n, int F, int form) {
    bias_activation(y, pre, x, bias, n, F, form);
}

/// dx = dy · f′(pre); dx may alias dy. The bias gradient is the column sums of dx (column_partial_sums).
extern "C" __global__ void activation_backward(float* dx, const float* dy, const float* pre, long long n, int form) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        dx[i] = dy[i] * bs_activation_derivative(form, pre[i]);
}

/// y = f(x) and d = f′(x) in one pass, d kept for the backward (activation_backward_saved).
extern "C" __global__ void activation_value_and_derivative(float* y, float* d, const float* x, long long n, int form) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float u = x[i];
        y[i] = bs_activation(form, u);
        d[i] = bs_activation_derivative(form, u);
    }
}

/// dx = dy · d with a derivative saved by activation_value_and_derivative; dx may alias dy.
extern "C" __global__ void activation_backward_saved(float* dx, const float* dy, const float* d, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        dx[i] = dy[i] * d[i];
}
