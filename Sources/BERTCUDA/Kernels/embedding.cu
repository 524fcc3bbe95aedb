// BERT's input embeddings: word + position + token type (Embedding.swift). Shapes: B batch, S sequence, H hidden.
//   ids, segments [B, S] int32; word [V, H], position [max position, H], token_type [T, H]; out / d_out [B, S, H]
//   positions [B, S] int32 or null: packed rows' position ids (restarting at each sequence); null means t mod S
// Launch: grid (B·S), block ≥ 32 threads striding over H.
#include "bert_device.cuh"

/// out[t] = word[ids[t]] + position[positions[t] or t mod S] + token_type[segments[t]].
extern "C" __global__ void embedding_forward(float* out, const int* ids, const int* segments, const int* positions,
                                             const float* word, const float* position, const float* token_type, int S,
                                             int H) {
    long long t = blockIdx.x;
    const float* w = word + (long long)ids[t] * H;
    const float* p = position + (positions ? (long long)positions[t] : t % S) * H;
    const float* y = token_type + (long long)segments[t] * H;
    for (int h = threadIdx.x; h < H; h += blockDim.x) out[t * H + h] = w[h] + p[h] + y[h];
}

/// Scatter-adds d_out into the three tables' gradients; the word row `padding_id` gets none (nn.Embedding's
/// padding_idx; −1 for none). Atomic adds: the sums equal the CPU's up to the order of additions.
extern "C" __global__ void embedding_backward(float* d_word, float* d_position, float* d_token_type,
                                              const float* d_out, const int* ids, const int* segments,
                                              const int* positions, int S, int H, int padding_id) {
    long long t = blockIdx.x;
    int id = ids[t];
    long long position = positions ? (long long)positions[t] : t % S;
    const float* g = d_out + t * H;
    for (int h = threadIdx.x; h < H; h += blockDim.x) {
        if (id != padding_id) atomicAdd(d_word + (long long)id * H + h, g[h]);
        atomicAdd(d_position + position * H + h, g[h]);
        atomicAdd(d_token_type + (long long)segments[t] * H + h, g[h]);
    }
}
