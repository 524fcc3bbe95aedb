// Softmax cross-entropy over the masked rows (CrossEntropy.swift). Shapes: N rows, C classes, row stride ld ≥ C
// (the MLM decoder's logits are [N, V8], the vocabulary padded to a multiple of 8; columns ≥ C ignored).
// Per-row outputs, summed by the host in row order as the CPU does, so the loss needs no atomics.
// Launch: grid (N), one block per row, blockDim.x a multiple of 32.
#include "bert_device.cuh"

/// lse[n] = log Σ exp(logits[n]); loss[n] = lse[n] − logits[n][label]; correct[n] = 1 when the first argmax is the
/// label (torch's argmax), else 0.
extern "C" __global__ void cross_entropy_forward(float* loss, float* lse, int* correct, const float* logits,
                                                 const int* labels, int C, int ld) {
    __shared__ float scratch[32];
    __shared__ int first_max;
    long long n = blockIdx.x;
    const float* row = logits + n * ld;
    float m = __int_as_float(0xFF800000);
    for (int j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, row[j]);
    m = bd_block_max(m, scratch);
    if (threadIdx.x == 0) first_max = C;
    __syncthreads();
    float sum = 0.0f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        sum += bs_exp(row[j] - m);
        if (row[j] == m) atomicMin(&first_max, j);
    }
    float total = bd_block_sum(sum, scratch);   // its barriers also order the atomicMin before the read below
    if (threadIdx.x == 0) {
        int label = labels[n];
        lse[n] = m + logf(total);
        loss[n] = lse[n] - row[label];
        correct[n] = first_max == label;
    }
}

/// Backward of scale · Σ loss: logits become scale · (softmax − onehot) in place, padding columns 0.
extern "C" __global__ void cross_entropy_backward(float* logits, const float* lse, const int* labels, int C, int ld,
                                                  float scale) {
    long long n = blockIdx.x;
    float* row = logits + n * ld;
    int label = labels[n];
    for (int j = threadIdx.x; j < ld; j += blockDim.x)
        row[j] = j < C ? bs_exp(row[j] - lse[n]) * scale - (j == label ? scale : 0.0f) : 0.0f;
}
