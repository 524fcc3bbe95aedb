// LayerNorm over the last dimension (LayerNorm.swift). Shapes: N rows, H features. Statistics in fp32 whatever the
// output type.
//   y = (x − mean) · rstd · γ + β,  rstd = 1 / sqrt(var + eps) (biased variance)
// Launch: grid (N), one block per row, blockDim.x a multiple of 32.
#include "bert_device.cuh"

/// Normalises row blockIdx.x of `s` into `y`, saving mean and rstd.
template <typename T>
__device__ void layernorm_row(T* y, float* mean, float* rstd, const float* s, const float* gamma, const float* beta,
                              int H, float eps) {
    __shared__ float scratch[32];
    long long r = blockIdx.x;
    const float* sr = s + r * H;
    float sum = 0.0f;
    for (int h = threadIdx.x; h < H; h += blockDim.x) sum += sr[h];
    float m = bd_block_sum(sum, scratch) / H;
    float squares = 0.0f;
    for (int h = threadIdx.x; h < H; h += blockDim.x) { float d = sr[h] - m; squares += d * d; }
    float rs = 1.0f / sqrtf(bd_block_sum(squares, scratch) / H + eps);
    for (int h = threadIdx.x; h < H; h += blockDim.x) bd_store(y, r * H + h, (sr[h] - m) * rs * gamma[h] + beta[h]);
    if (threadIdx.x == 0) { mean[r] = m; rstd[r] = rs; }
}

extern "C" __global__ void layernorm_forward_f32(float* y, float* mean, float* rstd, const float* x,
                                                 const float* gamma, const float* beta, int H, float eps) {
    layernorm_row(y, mean, rstd, x, gamma, beta, H, eps);
}

extern "C" __global__ void layernorm_forward_bf16(bf16* y, float* mean, float* rstd, const float* x,
                                                  const float* gamma, const float* beta, int H, float eps) {
    layernorm_row(y, mean, rstd, x, gamma, beta, H, eps);
}

/// Backward of layernorm_row. With x̂ = (x − mean)·rstd and g = dy·γ: dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)).
/// dγ and dβ go to `partial` [gridDim.x, 2H] (Σ dy·x̂ then Σ dy over the rows this block visits; add_partial_sums
/// folds them into the gradients), so no atomics and the same sums on every run. `dx` may alias `dy`.
/// Launch: any grid (blocks stride over the rows), blockDim.x a multiple of 32.
extern "C" __global__ void layernorm_backward(float* dx, float* partial, const float* dy, const float* x,
                                              const float* gamma, const float* mean, const float* rstd, int N,
                                              int H) {
    __shared__ float scratch[32];
    float* pg = partial + (long long)blockIdx.x * 2 * H;
    float* pb = pg + H;
    for (int h = threadIdx.x; h < H; h += blockDim.x) { pg[h] = 0.0f; pb[h] = 0.0f; }
    for (int r = blockIdx.x; r < N; r += gridDim.x) {
        const float* xr = x + (long long)r * H;
        const float* dyr = dy + (long long)r * H;
        float m = mean[r], s = rstd[r], sum_g = 0.0f, sum_gx = 0.0f;
        for (int h = threadIdx.x; h < H; h += blockDim.x) {
            float xh = (xr[h] - m) * s, d = dyr[h], g = d * gamma[h];
            sum_g += g;
            sum_gx += g * xh;
            pg[h] += d * xh;
            pb[h] += d;
        }
        float mean_g = bd_block_sum(sum_g, scratch) / H;
        float mean_gx = bd_block_sum(sum_gx, scratch) / H;
        for (int h = threadIdx.x; h < H; h += blockDim.x) {
            float xh = (xr[h] - m) * s, g = dyr[h] * gamma[h];
            dx[(long long)r * H + h] = (g - mean_g - xh * mean_gx) * s;
        }
    }
}
