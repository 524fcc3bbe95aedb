// Inverted dropout with the CPU's counter-based mask (Dropout.swift). Shapes: n elements.
//   y_i = residual_i + x_i · keep_i / (1 − p)   (residual optional; keep from bs_dropout_keep)
// The backward is the same kernel without a residual (dx = dropout(dy), the residual's gradient is dy itself).
// Element i of the [T, S, W] tensor (t, s, w) draws stream element (t·stream_S + s)·stream_W + w: a tensor trimmed
// from [T, stream_S, stream_W] keeps its bits (DropoutLayout, Dropout.swift); S = 1, W = n for a plain tensor.
// Launch: any grid, threads stride over the elements.
#include "bert_device.cuh"

/// y = [residual +] dropout(x); y may alias x; `residual` may be null; p = 0 is the identity.
extern "C" __global__ void dropout_apply(float* y, const float* x, const float* residual, long long n, float p,
                                         unsigned long long seed, unsigned long long stream, long long S,
                                         long long W, long long stream_S, long long stream_W) {
    float scale = 1.0f / (1.0f - p);
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        long long r = i / W, e = ((r / S) * stream_S + r % S) * stream_W + i % W;
        float v = p > 0.0f ? x[i] * (float)bs_dropout_keep(seed, stream, e, p) * scale : x[i];
        y[i] = residual ? residual[i] + v : v;
    }
}
