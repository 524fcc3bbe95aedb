// Both GELUs, value and derivative, as Activation.swift defines them, 16 lanes at a time; tails by masked lanes (each
// lane is computed alone, so a tail gets the same bits as a whole vector).
#include "avx512_kernels.h"
#include "vector_math.h"

static const float k_sqrt_2_over_pi = 0.7978845608028654f, inv_sqrt2 = 0.7071067811865475f,
                   inv_sqrt_2pi = 0.3989422804014327f;

/// k·(x + 0.044715·x³), the tanh form's argument.
AVX512_TARGET static inline __m512 tanh_argument(__m512 x) {
    const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    return _mm512_mul_ps(ak_splat(k_sqrt_2_over_pi), _mm512_add_ps(x, _mm512_mul_ps(ak_splat(0.044715f), x3)));
}

AVX512_TARGET static inline __m512 value(int tanh_form, __m512 x) {
    if (tanh_form) {
        const __m512 t = ak_tanh(tanh_argument(x));
        return _mm512_mul_ps(_mm512_mul_ps(ak_splat(0.5f), x), _mm512_add_ps(ak_splat(1.0f), t));
    }
    const __m512 cdf = _mm512_mul_ps(ak_splat(0.5f), _mm512_add_ps(ak_splat(1.0f), ak_erf(_mm512_mul_ps(x, ak_splat(inv_sqrt2)))));
    return _mm512_mul_ps(x, cdf);
}

AVX512_TARGET static inline __m512 derivative(int tanh_form, __m512 x) {
    if (tanh_form) {
        const __m512 t = ak_tanh(tanh_argument(x));
        const __m512 x2 = _mm512_mul_ps(x, x);
        const __m512 d_argument = _mm512_mul_ps(ak_splat(k_sqrt_2_over_pi),
                                                _mm512_add_ps(ak_splat(1.0f), _mm512_mul_ps(ak_splat(0.134145f), x2)));
        const __m512 half = _mm512_mul_ps(ak_splat(0.5f), _mm512_add_ps(ak_splat(1.0f), t));
        const __m512 slope = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(ak_splat(0.5f), x),
                                                         _mm512_sub_ps(ak_splat(1.0f), _mm512_mul_ps(t, t))), d_argument);
        return _mm512_add_ps(half, slope);
    }
    const __m512 cdf = _mm512_mul_ps(ak_splat(0.5f), _mm512_add_ps(ak_splat(1.0f), ak_erf(_mm512_mul_ps(x, ak_splat(inv_sqrt2)))));
    const __m512 pdf = _mm512_mul_ps(ak_exp(_mm512_mul_ps(_mm512_mul_ps(ak_splat(-0.5f), x), x)), ak_splat(inv_sqrt_2pi));
    return _mm512_add_ps(cdf, _mm512_mul_ps(x, pdf));
}

AVX512_TARGET void ak_gelu_forward(int tanh_form, const float *x, float *y, long count) {
    for (long i = 0; i < count; i += 16) {
        const __mmask16 live = ak_lanes(count - i);
        _mm512_mask_storeu_ps(y + i, live, value(tanh_form, _mm512_maskz_loadu_ps(live, x + i)));
    }
}

AVX512_TARGET void ak_gelu_forward_bias(int tanh_form, const float *x, const float *bias, float *y, long count) {
    for (long i = 0; i < count; i += 16) {
        const __mmask16 live = ak_lanes(count - i);
        const __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(live, x + i), _mm512_maskz_loadu_ps(live, bias + i));
        _mm512_mask_storeu_ps(y + i, live, value(tanh_form, v));
    }
}

AVX512_TARGET void ak_gelu_value_and_derivative(int tanh_form, const float *x, float *y, float *d, long count) {
    for (long i = 0; i < count; i += 16) {
        const __mmask16 live = ak_lanes(count - i);
        const __m512 v = _mm512_maskz_loadu_ps(live, x + i);
        _mm512_mask_storeu_ps(y + i, live, value(tanh_form, v));
        _mm512_mask_storeu_ps(d + i, live, derivative(tanh_form, v));
    }
}

AVX512_TARGET void ak_gelu_backward(int tanh_form, const float *dy, const float *x, float *dx, long count) {
    for (long i = 0; i < count; i += 16) {
        const __mmask16 live = ak_lanes(count - i);
        const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(live, dy + i), derivative(tanh_form, _mm512_maskz_loadu_ps(live, x + i)));
        _mm512_mask_storeu_ps(dx + i, live, g);
    }
}
