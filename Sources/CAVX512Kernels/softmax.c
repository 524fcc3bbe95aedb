#include "avx512_kernels.h"
#include "vector_math.h"

/// The max of row + bias (bias NULL: of row); a NaN never replaces it, as in the Swift kernels (`max_ps` returns its
/// second operand when either is NaN). Max is exact, so any order gives it: four running maxima over blocks of 64,
/// since one waits on its own latency at every step.
AVX512_TARGET static inline __m512 biased(const float *row, const float *bias, long j) {
    const __m512 z = _mm512_loadu_ps(row + j);
    return bias ? _mm512_add_ps(z, _mm512_loadu_ps(bias + j)) : z;
}

AVX512_TARGET static inline float row_max(const float *row, const float *bias, long count) {
    __m512 m0 = _mm512_set1_ps(-__builtin_inff()), m1 = m0, m2 = m0, m3 = m0;
    long j = 0;
    for (; j + 64 <= count; j += 64) {
        m0 = _mm512_max_ps(biased(row, bias, j), m0);
        m1 = _mm512_max_ps(biased(row, bias, j + 16), m1);
        m2 = _mm512_max_ps(biased(row, bias, j + 32), m2);
        m3 = _mm512_max_ps(biased(row, bias, j + 48), m3);
    }
    for (; j < count; j += 16) {
        const __mmask16 live = ak_lanes(count - j);
        __m512 z = _mm512_mask_loadu_ps(m0, live, row + j);
        if (bias) z = _mm512_add_ps(z, _mm512_maskz_loadu_ps(live, bias + j));
        m0 = _mm512_mask_max_ps(m0, live, z, m0);
    }
    return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

/// e^(row[j] + bias[j] − max) 16 at a time, stored back when `store`, summed 8 at a time in the Swift kernels' order
/// (lanes past the row add 0) into `sums`.
AVX512_TARGET static inline void exponentials(float *row, const float *bias, long count, float max, int store,
                                              float sums[8]) {
    const __m512 m = _mm512_set1_ps(max);
    __m256 sum = _mm256_setzero_ps();
    for (long j = 0; j < count; j += 16) {
        const __mmask16 live = ak_lanes(count - j);
        __m512 z = _mm512_maskz_loadu_ps(live, row + j);
        if (bias) z = _mm512_add_ps(z, _mm512_maskz_loadu_ps(live, bias + j));
        const __m512 e = _mm512_maskz_mov_ps(live, ak_exp(_mm512_sub_ps(z, m)));
        if (store) _mm512_mask_storeu_ps(row + j, live, e);
        sum = _mm256_add_ps(sum, _mm512_castps512_ps256(e));
        if (count - j > 8) sum = _mm256_add_ps(sum, _mm512_extractf32x8_ps(e, 1));
    }
    _mm256_storeu_ps(sums, sum);
}

AVX512_TARGET void ak_softmax_exponentials(float *row, const float *bias, long count, float sums[8]) {
    exponentials(row, bias, count, row_max(row, bias, count), 1, sums);
}

AVX512_TARGET float ak_max_and_exponential_sums(const float *row, long count, float sums[8]) {
    const float max = row_max(row, 0, count);
    exponentials((float *)row, 0, count, max, 0, sums);
    return max;
}
