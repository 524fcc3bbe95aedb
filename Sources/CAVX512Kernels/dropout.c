// Dropout masks from Philox4x32-10 on 16 blocks at once. AVX-512 multiplies 32 × 32 → 64 bits natively (even lanes,
// then odd lanes shifted down), where the 8-lane Swift kernel builds each product from four 16-bit halves.
#include "avx512_kernels.h"
#include "vector_math.h"

/// High and low 32 bits of a · m in each of 16 lanes.
AVX512_TARGET static inline void multiply_full_width(__m512i a, __m512i m, __m512i *hi, __m512i *lo) {
    const __m512i even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

/// CounterRNG's blocks `first ..< first + 16` (first a multiple of 8): lane k of w[j] is word j of block first + k,
/// exactly as two calls of its `blocks8`.
AVX512_TARGET static inline void philox16(uint64_t first, uint64_t seed, uint64_t stream, __m512i w[4]) {
    const uint64_t second = first + 8;
    const __m512i iota = _mm512_set_epi32(7, 6, 5, 4, 3, 2, 1, 0, 7, 6, 5, 4, 3, 2, 1, 0);
    __m512i c0 = _mm512_add_epi32(_mm512_mask_set1_epi32(_mm512_set1_epi32((int)(uint32_t)first), 0xFF00,
                                                         (int)(uint32_t)second), iota);
    __m512i c1 = _mm512_mask_set1_epi32(_mm512_set1_epi32((int)(uint32_t)(first >> 32)), 0xFF00,
                                        (int)(uint32_t)(second >> 32));
    __m512i c2 = _mm512_set1_epi32((int)(uint32_t)stream), c3 = _mm512_set1_epi32((int)(uint32_t)(stream >> 32));
    const __m512i m0 = _mm512_set1_epi64(0xD2511F53), m1 = _mm512_set1_epi64(0xCD9E8D57);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        __m512i hi0, lo0, hi1, lo1;
        multiply_full_width(c0, m0, &hi0, &lo0);
        multiply_full_width(c2, m1, &hi1, &lo1);
        c0 = _mm512_ternarylogic_epi32(hi1, c1, _mm512_set1_epi32((int)k0), 0x96);
        c2 = _mm512_ternarylogic_epi32(hi0, c3, _mm512_set1_epi32((int)k1), 0x96);
        c1 = lo1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    w[0] = c0, w[1] = c1, w[2] = c2, w[3] = c3;
}

AVX512_TARGET
void ak_dropout_runs(const float *src, float *dst, long first, long count, float p, uint64_t seed, uint64_t stream) {
    // The same float arithmetic as the Swift kernel: threshold UInt32(p · 2^24), scale 1 / (1 − p).
    const __m512i threshold = _mm512_set1_epi32((int)(uint32_t)(p * 16777216.0f));
    const __m256 kept = _mm256_set1_ps(1.0f / (1.0f - p));
    for (long g = first; g < first + count; g += 64) {
        const int runs = first + count - g >= 64 ? 2 : 1;
        __m512i w[4];
        philox16((uint64_t)(g >> 5) * 8, seed, stream, w);
        for (int j = 0; j < 4; j++) {
            // Lanes 0-7 of word j mask elements 8j ..< 8j + 8 of the first run, lanes 8-15 those of the second.
            const __mmask16 keep = _mm512_cmpge_epu32_mask(_mm512_srli_epi32(w[j], 8), threshold);
            for (int run = 0; run < runs; run++) {
                const long o = g - first + 32 * run + 8 * j;
                // x · 0 rather than a zeroing mask, as the Swift kernel: −0 for negative x, NaN stays NaN.
                const __m256 factor = _mm256_maskz_mov_ps((__mmask8)(keep >> (8 * run)), kept);
                _mm256_storeu_ps(dst + o, _mm256_mul_ps(_mm256_loadu_ps(src + o), factor));
            }
        }
    }
}
