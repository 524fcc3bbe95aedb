// Row gathers and scatters and the transpose (Rows.swift), column sums for bias and LayerNorm gradients
// (Linear.addColumnSums), inference's bias + residual add (Linear.addBias), and the fp32 → bf16 copies of weights and
// activations.
#include "bert_device.cuh"

/// out[i] = src[rows[i]] for rows of `width` floats. Launch: grid (n), threads stride over the width.
extern "C" __global__ void gather_rows(float* out, const float* src, const int* rows, int width) {
    const float* s = src + (long long)rows[blockIdx.x] * width;
    for (int h = threadIdx.x; h < width; h += blockDim.x) out[(long long)blockIdx.x * width + h] = s[h];
}

/// dst[rows[i]] += src[i] (rows may repeat: atomic adds). Launch: grid (n), threads stride over the width.
extern "C" __global__ void scatter_add_rows(float* dst, const float* src, const int* rows, int width) {
    float* d = dst + (long long)rows[blockIdx.x] * width;
    for (int h = threadIdx.x; h < width; h += blockDim.x) atomicAdd(d + h, src[(long long)blockIdx.x * width + h]);
}

/// partial[blockIdx.y, c] = Σ of column c of m [rows, cols] over the rows blockIdx.y·rows_per_part ..< +rows_per_part.
/// Launch: grid (⌈cols / blockDim.x⌉, parts), then add_partial_sums with the same parts.
extern "C" __global__ void column_partial_sums(float* partial, const float* m, int rows, int cols, int rows_per_part) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    int first = blockIdx.y * rows_per_part, end = min(rows, first + rows_per_part);
    float sum = 0.0f;
    for (int r = first; r < end; ++r) sum += m[(long long)r * cols + c];
    partial[(long long)blockIdx.y * cols + c] = sum;
}

/// out[c] += Σₚ partial[p·ld + c], in order of p (deterministic). Launch: threads over the cols.
extern "C" __global__ void add_partial_sums(float* out, const float* partial, int parts, int cols, int ld) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float sum = 0.0f;
    for (int p = 0; p < parts; ++p) sum += partial[(long long)p * ld + c];
    out[c] += sum;
}

/// out = bf16(in), round to nearest even. Launch: any grid, threads stride over the elements.
extern "C" __global__ void convert_to_bf16(bf16* out, const float* in, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = bs_bf16_from_float(in[i]);
}

/// out[c·R + r] = x[r·C + c]: the [C, R] transpose of a row-major [R, C] matrix. Launch: threads over the R·C elements.
extern "C" __global__ void transpose(float* out, const float* x, int R, int C) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)R * C) return;
    long long r = i / C, c = i % C;
    out[c * R + r] = x[i];
}

/// out = y + bias + residual, bias [F] broadcast over the rows; out may alias y. Launch: any grid, threads stride over
/// the n elements.
extern "C" __global__ void bias_residual_add(float* out, const float* y, const float* bias, const float* residual,
                                             long long n, int F) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = y[i] + bias[i % F] + residual[i];
}
