#include "avx512_kernels.h"
#include "vector_math.h"

/// The max of row + bias (bias NULL: of row); a NaN never replaces it, as in the Swift kernels (max is exact, so any
/// order gives it).
AVX512_TARGET static inline float row_max(const float *row, const float *bias, long count) {
    __m512 mx = _mm512_set1_ps(-__builtin_inff());
    for (long j = 0; j < count; j += 16) {
        const __mmask16 live = ak_lanes(count - j);
        __m512 z = _mm512_mask_loadu_ps(mx, live, row + j);
        if (bias) z = _mm512_add_ps(z, _mm512_maskz_loadu_ps(live, bias + j));
        mx = _mm512_mask_mov_ps(mx, _mm512_cmp_ps_mask(z, mx, _CMP_GT_OQ), z);
    }
    return _mm512_reduce_max_ps(mx);
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
