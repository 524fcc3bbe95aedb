// Inverted dropout with the CPU's counter-based mask (Dropout.swift). Shapes: n elements.
//   y_i = residual_i + x_i · keep_i / (1 − p)   (residual optional; keep from bs_dropout_keep)
// The backward is the same kernel without a residual (dx = dropout(dy), the residual's gradient is dy itself).
// Launch: any grid, threads stride over the elements.
#include "bert_device.cuh"

/// y = [residual +] dropout(x); y may alias x; `residual` may be null; p = 0 is the identity.
extern "C" __global__ void dropout_apply(float* y, const float* x, const float* residual, long long n, float p,
                                         unsigned long long seed, unsigned long long stream) {
    float scale = 1.0f / (1.0f - p);
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float v = p > 0.0f ? x[i] * (float)bs_dropout_keep(seed, stream, i, p) * scale : x[i];
        y[i] = residual ? residual[i] + v : v;
    }
}
