#include "avx512_kernels.h"
#include "vector_math.h"

AVX512_TARGET void ak_softmax_exponentials(float *row, const float *bias, long count, float sums[8]) {
    // The max of row + bias; a NaN never replaces it, as in the Swift kernel (max is exact, so any order gives it).
    __m512 mx = _mm512_set1_ps(-__builtin_inff());
    for (long j = 0; j < count; j += 16) {
        const __mmask16 live = ak_lanes(count - j);
        const __m512 z = _mm512_add_ps(_mm512_mask_loadu_ps(mx, live, row + j), _mm512_maskz_loadu_ps(live, bias + j));
        mx = _mm512_mask_mov_ps(mx, _mm512_cmp_ps_mask(z, mx, _CMP_GT_OQ), z);
    }
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    // Exponentials 16 at a time, summed 8 at a time in the Swift kernel's order (lanes past the row add 0).
    __m256 sum = _mm256_setzero_ps();
    for (long j = 0; j < count; j += 16) {
        const __mmask16 live = ak_lanes(count - j);
        const __m512 z = _mm512_add_ps(_mm512_maskz_loadu_ps(live, row + j), _mm512_maskz_loadu_ps(live, bias + j));
        const __m512 e = _mm512_maskz_mov_ps(live, ak_exp(_mm512_sub_ps(z, m)));
        _mm512_mask_storeu_ps(row + j, live, e);
        sum = _mm256_add_ps(sum, _mm512_castps512_ps256(e));
        if (count - j > 8) sum = _mm256_add_ps(sum, _mm512_extractf32x8_ps(e, 1));
    }
    _mm256_storeu_ps(sums, sum);
}
