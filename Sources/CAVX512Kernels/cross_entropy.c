#include "avx512_kernels.h"
#include "vector_math.h"

AVX512_TARGET void ak_exp_shifted_scaled(float *row, long count, float shift, float scale) {
    for (long j = 0; j < count; j += 16) {
        const __mmask16 live = ak_lanes(count - j);
        const __m512 e = ak_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(live, row + j), ak_splat(shift)));
        _mm512_mask_storeu_ps(row + j, live, _mm512_mul_ps(e, ak_splat(scale)));
    }
}
