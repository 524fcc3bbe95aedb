// Attention softmax with BERT's padding key bias and dropout, between the two batched GEMMs cuBLASLt runs
// (Attention.swift). Shapes: B batch, A heads, S sequence.
//   scores [B, A, S, S] = q·kᵀ/√D (the GEMM's alpha holds 1/√D); key_bias [B, S]: 0 real keys, −10000 padded
//   key_ranges [B, S, 2] or null: packed rows, query (b, i) sees only keys [lo, hi) (its own sequence); the others
//     get probability exactly 0
//   probs [B, A, S, S] = softmax(scores + key_bias) in fp32, saved for the backward (may alias scores)
//   dropped [B, A, S, S] = dropout(probs), the P·V GEMM's input (bf16 in bf16 mode)
// Row q = (b·A + a)·S + i; dropout element (q, j) is element ((b·A + a)·stream_S + i)·stream_S + j of the stream, as
// the CPU's per-pair tiles (stream_S: the untrimmed length of a trimmed batch, else S).
// Launch: grid (B·A·S), one block per row, blockDim.x a multiple of 32.
#include "bert_device.cuh"

template <typename T>
__device__ void softmax_row(float* probs, T* dropped, const float* scores, const float* key_bias,
                            const int* key_ranges, int A, int S, float p, bs_u64 seed, bs_u64 stream, int stream_S) {
    __shared__ float scratch[32];
    long long q = blockIdx.x, row = q * S, token = (q / S / A) * S + q % S;
    long long bits = ((q / S) * stream_S + q % S) * stream_S;
    const float* bias = key_bias + (q / S / A) * S;
    int lo = key_ranges ? key_ranges[2 * token] : 0, hi = key_ranges ? key_ranges[2 * token + 1] : S;
    float m = __int_as_float(0xFF800000);
    for (int j = threadIdx.x; j < S; j += blockDim.x) if (j >= lo && j < hi) m = fmaxf(m, scores[row + j] + bias[j]);
    m = bd_block_max(m, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < S; j += blockDim.x) {
        float e = j >= lo && j < hi ? bs_exp(scores[row + j] + bias[j] - m) : 0.0f;
        probs[row + j] = e;
        sum += e;
    }
    float inv = 1.0f / bd_block_sum(sum, scratch);
    float scale = 1.0f / (1.0f - p);
    for (int j = threadIdx.x; j < S; j += blockDim.x) {
        float P = probs[row + j] * inv;
        probs[row + j] = P;
        bd_store(dropped, row + j, p > 0.0f ? P * (float)bs_dropout_keep(seed, stream, bits + j, p) * scale : P);
    }
}

extern "C" __global__ void attention_softmax_forward_f32(float* probs, float* dropped, const float* scores,
                                                         const float* key_bias, const int* key_ranges, int A,
                                                         int S, float p, unsigned long long seed,
                                                         unsigned long long stream, int stream_S) {
    softmax_row(probs, dropped, scores, key_bias, key_ranges, A, S, p, seed, stream, stream_S);
}

extern "C" __global__ void attention_softmax_forward_bf16(float* probs, bf16* dropped, const float* scores,
                                                          const float* key_bias, const int* key_ranges, int A,
                                                          int S, float p, unsigned long long seed,
                                                          unsigned long long stream, int stream_S) {
    softmax_row(probs, dropped, scores, key_bias, key_ranges, A, S, p, seed, stream, stream_S);
}

/// Backward: dP = dropout(d_dropped) with the forward's mask, d_scores = P ⊙ (dP − Σⱼ dP ⊙ P).
/// d_scores may alias d_dropped (each thread reads its elements before writing them).
extern "C" __global__ void attention_softmax_backward(float* d_scores, const float* d_dropped, const float* probs,
                                                      int S, float p, unsigned long long seed,
                                                      unsigned long long stream, int stream_S) {
    __shared__ float scratch[32];
    long long row = (long long)blockIdx.x * S;
    long long bits = ((long long)(blockIdx.x / S) * stream_S + blockIdx.x % S) * stream_S;
    float scale = 1.0f / (1.0f - p), dot = 0.0f;
    for (int j = threadIdx.x; j < S; j += blockDim.x) {
        float d = d_dropped[row + j];
        if (p > 0.0f) d = d * (float)bs_dropout_keep(seed, stream, bits + j, p) * scale;
        d_scores[row + j] = d;
        dot += d * probs[row + j];
    }
    dot = bd_block_sum(dot, scratch);
    for (int j = threadIdx.x; j < S; j += blockDim.x) d_scores[row + j] = probs[row + j] * (d_scores[row + j] - dot);
}
