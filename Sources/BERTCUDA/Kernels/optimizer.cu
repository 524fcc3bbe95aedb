// Optimizer updates as multi-tensor passes over the flat buffers (Optimizer.swift holds the formulas and the
// scalar logic: clipping factor, bias corrections, trust ratios, computed on the host from the per-tensor sums these
// kernels produce). One launch covers every tensor: the host cuts the segments into chunks of at most 4096 elements
// (the CPU's norm blocks), ordered by tensor, and each block takes one chunk.
//   chunks [K]: bert_chunk (bert_shared.cuh), built by OptimizerChunkTable in Swift
//   first_chunk [T + 1]: tensor t owns chunks first_chunk[t] ..< first_chunk[t + 1]
//   tensor_decay [T]: λ for tensors with weight decay, else 0;  m, v are addressed from `base` (ZeRO slices)
// Launch: grid (K), blockDim.x a multiple of 32, except tensor_sums (threads over T · width).
#include "bert_device.cuh"

/// partial[k · width + column] = Σ x² over chunk k: fp32 per thread, fp64 across the block.
extern "C" __global__ void chunk_sum_squares(double* partial, const float* x, const bert_chunk* chunks, int width,
                                             int column) {
    __shared__ double scratch[32];
    bert_chunk ch = chunks[blockIdx.x];
    float sum = 0.0f;
    for (int j = threadIdx.x; j < ch.count; j += blockDim.x) { float e = x[ch.offset + j]; sum += e * e; }
    double total = bd_block_sum((double)sum, scratch);
    if (threadIdx.x == 0) partial[(long long)blockIdx.x * width + column] = total;
}

/// sums[t · width + c] = Σ partial[k · width + c] over tensor t's chunks, in chunk order (deterministic).
extern "C" __global__ void tensor_sums(double* sums, const double* partial, const int* first_chunk, int tensors,
                                       int width) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= tensors * width) return;
    int t = i / width, c = i % width;
    double sum = 0.0;
    for (int k = first_chunk[t]; k < first_chunk[t + 1]; ++k) sum += partial[(long long)k * width + c];
    sums[i] = sum;
}

/// Adam's moments at element s: m ← β1 m + c1 g, v ← β2 v + c2 g²; returns the new (m, v).
__device__ __forceinline__ float2 update_moments(float* m, float* v, long long s, float g, float b1, float b2, float c1,
                                                 float c2) {
    float mi = b1 * m[s] + c1 * g, vi = b2 * v[s] + c2 * g * g;
    m[s] = mi;
    v[s] = vi;
    return make_float2(mi, vi);
}

/// LAMB's moments and update direction (apex FusedLAMB stage 1), the direction written over the gradient:
/// g ← clip·g;  m ← β1 m + c1 g;  v ← β2 v + c2 g²;  g ← (m / bc1) / (√(v / bc2) + ε) + λ w.
extern "C" __global__ void lamb_moments(float* g, float* m, float* v, const float* w, const bert_chunk* chunks,
                                        const float* tensor_decay, long long base, float clip, float b1, float b2,
                                        float c1, float c2, float bc1, float bc2, float eps) {
    bert_chunk ch = chunks[blockIdx.x];
    float lambda = tensor_decay[ch.tensor];
    for (int j = threadIdx.x; j < ch.count; j += blockDim.x) {
        long long i = ch.offset + j, s = i - base;
        float2 mv = update_moments(m, v, s, g[i] * clip, b1, b2, c1, c2);
        g[i] = (mv.x / bc1) / (sqrtf(mv.y / bc2) + eps) + lambda * w[i];
    }
}

/// w ← w − tensor_scale[t] · u (LAMB stage 2; the scale is lr times the trust ratio, from the host).
extern "C" __global__ void scaled_update(float* w, const float* u, const bert_chunk* chunks, const float* tensor_scale) {
    bert_chunk ch = chunks[blockIdx.x];
    float scale = tensor_scale[ch.tensor];
    for (int j = threadIdx.x; j < ch.count; j += blockDim.x) w[ch.offset + j] -= scale * u[ch.offset + j];
}

/// AdamW in one pass. bias_correction 1 (torch.optim.AdamW): w ← w(1 − lr λ), then
/// w ← w − step_size · m / (√v / bc2_root + ε). bias_correction 0 (Google's AdamWeightDecayOptimizer):
/// w ← w − lr (m / (√v + ε) + λ w).
extern "C" __global__ void adamw_update(float* w, float* m, float* v, const float* g, const bert_chunk* chunks,
                                        const float* tensor_decay, long long base, float clip, float b1, float b2,
                                        float c1, float c2, float lr, float step_size, float bc2_root, float eps,
                                        int bias_correction) {
    bert_chunk ch = chunks[blockIdx.x];
    float lambda = tensor_decay[ch.tensor];
    for (int j = threadIdx.x; j < ch.count; j += blockDim.x) {
        long long i = ch.offset + j, s = i - base;
        float2 mv = update_moments(m, v, s, g[i] * clip, b1, b2, c1, c2);
        if (bias_correction) w[i] = w[i] * (1.0f - lr * lambda) - step_size * mv.x / (sqrtf(mv.y) / bc2_root + eps);
        else w[i] -= lr * (mv.x / (sqrtf(mv.y) + eps) + lambda * w[i]);
    }
}

/// LANS moments of the per-tensor normalised gradient ĝ = g · tensor_scale[t] (the scale folds clipping in).
extern "C" __global__ void lans_moments(float* m, float* v, const float* g, const bert_chunk* chunks,
                                        const float* tensor_scale, long long base, float b1, float b2, float c1,
                                        float c2) {
    bert_chunk ch = chunks[blockIdx.x];
    float scale = tensor_scale[ch.tensor];
    for (int j = threadIdx.x; j < ch.count; j += blockDim.x)
        update_moments(m, v, ch.offset + j - base, g[ch.offset + j] * scale, b1, b2, c1, c2);
}

/// LANS's two directions for element i of tensor t: r = m̂ / (√v̂ + ε) + λ w,  c = ĝ / (√v̂ + ε) + λ w.
__device__ __forceinline__ void lans_directions(float* r, float* c, long long i, long long s, const float* w,
                                                const float* m, const float* v, const float* g, float scale,
                                                float lambda, float bc1, float bc2, float eps) {
    float denominator = sqrtf(v[s] / bc2) + eps;
    *r = (m[s] / bc1) / denominator + lambda * w[i];
    *c = g[i] * scale / denominator + lambda * w[i];
}

/// partial[k · 3 + 1] = Σ r², partial[k · 3 + 2] = Σ c² over chunk k (column 0, Σ w², comes from chunk_sum_squares).
extern "C" __global__ void lans_direction_sums(double* partial, const float* w, const float* m, const float* v,
                                               const float* g, const bert_chunk* chunks, const float* tensor_decay,
                                               const float* tensor_scale, long long base, float bc1, float bc2,
                                               float eps) {
    __shared__ double scratch[32];
    bert_chunk ch = chunks[blockIdx.x];
    float scale = tensor_scale[ch.tensor], lambda = tensor_decay[ch.tensor], rr = 0.0f, cc = 0.0f;
    for (int j = threadIdx.x; j < ch.count; j += blockDim.x) {
        float r, c;
        lans_directions(&r, &c, ch.offset + j, ch.offset + j - base, w, m, v, g, scale, lambda, bc1, bc2, eps);
        rr += r * r;
        cc += c * c;
    }
    double r_sum = bd_block_sum((double)rr, scratch), c_sum = bd_block_sum((double)cc, scratch);
    if (threadIdx.x == 0) {
        partial[(long long)blockIdx.x * 3 + 1] = r_sum;
        partial[(long long)blockIdx.x * 3 + 2] = c_sum;
    }
}

/// w ← w − r_scale[t] · r − c_scale[t] · c (the scales are lr β1 ‖w‖/‖r‖ and lr (1 − β1) ‖w‖/‖c‖, from the host).
extern "C" __global__ void lans_update(float* w, const float* m, const float* v, const float* g,
                                       const bert_chunk* chunks, const float* tensor_decay, const float* tensor_scale,
                                       const float* r_scale, const float* c_scale, long long base, float bc1,
                                       float bc2, float eps) {
    bert_chunk ch = chunks[blockIdx.x];
    float scale = tensor_scale[ch.tensor], lambda = tensor_decay[ch.tensor];
    float rs = r_scale[ch.tensor], cs = c_scale[ch.tensor];
    for (int j = threadIdx.x; j < ch.count; j += blockDim.x) {
        float r, c;
        long long i = ch.offset + j;
        lans_directions(&r, &c, i, i - base, w, m, v, g, scale, lambda, bc1, bc2, eps);
        w[i] -= rs * r + cs * c;
    }
}
