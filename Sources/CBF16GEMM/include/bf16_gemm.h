// bf16 matrix multiply on Intel AMX (Sapphire Rapids and later): C = alpha * op(A) * op(B) + beta * C with op(A) and
// op(B) rounded to bf16 (to nearest even, as bert_shared.cuh's bs_bf16_from_float) and fp32 accumulation.
//
// The work is three steps so that the caller's thread pool runs each one in parallel over its own slices:
//   bg_pack_a   op(A)[M, K] -> bf16, tile by tile: [M32 / 16][K32 / 32][16 rows][32 values of k]
//   bg_pack_b   op(B)[K, N] -> bf16 pairs along k (the layout a tile's right operand reads), by blocks of 16 columns:
//               [N32 / 16][K32 / 2][16 columns][2 values of k]
//   bg_multiply C blocks of 32 x 32 from the packed operands, any range of block rows and block columns
// (M32, N32, K32: M, N, K rounded up to multiples of 32.) Each tile is then 1 KB in one piece.
// Padding is zeros, so padded sums are exact; only C's real rows and columns are written. The tile instruction reads
// subnormal bf16 inputs (below 1.2e-38 in magnitude) as zero.
#ifndef BF16_GEMM_H
#define BF16_GEMM_H

#include <stdint.h>

/// 1 when the CPU has AMX-BF16 and the kernel lets this process use the tile registers (asked once), else 0; 0 too
/// when the environment sets BERT_AMX=0.
int bg_amx_available(void);

/// Rounds up to the multiple of 32 the packed layouts use.
static inline long bg_padded(long n) { return (n + 31) / 32 * 32; }

/// Rows m0..<m1 (m1 may pass M: those rows are zeros) of op(A), where op(A)[m, k] = A[m * lda + k], or
/// A[k * lda + m] when transposed, into `out` (m0 and m1 multiples of 32; K32 = bg_padded(K)).
void bg_pack_a(const float *a, long lda, int transposed, long rows, long depth, long m0, long m1, uint16_t *out);

/// Columns n0..<n1 (n1 may pass N: zeros) of op(B), where op(B)[k, n] = B[k * ldb + n], or B[n * ldb + k] when
/// transposed, into `out` (n0 and n1 multiples of 32).
void bg_pack_b(const float *b, long ldb, int transposed, long depth, long columns, long n0, long n1, uint16_t *out);

/// C blocks [bm0, bm1) x [bn0, bn1) of 32 x 32 from packed `a` and `b` (depth K32 = bg_padded(K)); C is [M, N] with
/// leading dimension ldc. Needs bg_amx_available().
void bg_multiply(const uint16_t *a, const uint16_t *b, long rows, long columns, long depth, float alpha, float beta,
                 float *c, long ldc, long bm0, long bm1, long bn0, long bn1);

#endif
