// Device-only helpers of the kernels: block reductions and loads/stores of float and bf16 activations.
// Launch convention of every row kernel: one block per row, blockDim.x a multiple of 32 and at most 1024.
#ifndef BERT_DEVICE_CUH
#define BERT_DEVICE_CUH
#include "bert_shared.cuh"

__device__ __forceinline__ float bd_load(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float bd_load(const bf16* p, long long i) { return bs_bf16_to_float(p[i]); }
__device__ __forceinline__ void bd_store(float* p, long long i, float x) { p[i] = x; }
__device__ __forceinline__ void bd_store(bf16* p, long long i, float x) { p[i] = bs_bf16_from_float(x); }

__device__ __forceinline__ float bd_warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xFFFFFFFFu, x, o);
    return x;
}

__device__ __forceinline__ double bd_warp_sum(double x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xFFFFFFFFu, x, o);
    return x;
}

__device__ __forceinline__ float bd_warp_max(float x) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xFFFFFFFFu, x, o));
    return x;
}

/// Σ over the block, returned to every thread. `scratch` holds 32 values; the block is a multiple of 32 threads.
template <typename T> __device__ __forceinline__ T bd_block_sum(T x, T* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    x = bd_warp_sum(x);
    __syncthreads();   // scratch may still be read by a previous reduction
    if (lane == 0) scratch[warp] = x;
    __syncthreads();
    x = lane < warps ? scratch[lane] : (T)0;
    return bd_warp_sum(x);
}

/// max over the block, returned to every thread (same conditions as bd_block_sum).
__device__ __forceinline__ float bd_block_max(float x, float* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    x = bd_warp_max(x);
    __syncthreads();
    if (lane == 0) scratch[warp] = x;
    __syncthreads();
    x = lane < warps ? scratch[lane] : __int_as_float(0xFF800000);
    return bd_warp_max(x);
}

#endif
