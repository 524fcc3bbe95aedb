// Vector.swift's vexp, verf and vtanh on 16 lanes, operation for operation (each product and sum rounded on its own
// unless Swift fuses it explicitly with addingProduct: this target builds with -ffp-contract=off, as Swift never
// fuses a multiply and an add by itself), so every lane gets the bits the 8-lane Swift functions give.
#ifndef VECTOR_MATH_H
#define VECTOR_MATH_H

#include <immintrin.h>

#define AVX512_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))

/// A mask of the first `n` of 16 lanes (all when n >= 16).
AVX512_TARGET static inline __mmask16 ak_lanes(long n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

AVX512_TARGET static inline __m512 ak_splat(float v) { return _mm512_set1_ps(v); }

/// e^x: inputs below −87.3 give exactly 0, above 88.3 clamped (Vector.swift's vexp, Cephes' polynomial, fused).
AVX512_TARGET static inline __m512 ak_exp(__m512 x) {
    const __mmask16 underflow = _mm512_cmp_ps_mask(x, ak_splat(-87.3f), _CMP_LT_OQ);
    x = _mm512_mask_mov_ps(x, underflow, ak_splat(-87.3f));
    x = _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, ak_splat(88.3f), _CMP_GT_OQ), ak_splat(88.3f));
    const float magic = 12582912.0f;
    const __m512 t = _mm512_fmadd_ps(x, ak_splat(1.44269504f), ak_splat(magic));
    const __m512 n = _mm512_sub_ps(t, ak_splat(magic));
    const __m512 r = _mm512_fmadd_ps(n, ak_splat(2.12194440e-4f), _mm512_fnmadd_ps(n, ak_splat(0.693359375f), x));
    __m512 p = ak_splat(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, ak_splat(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, ak_splat(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, ak_splat(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, ak_splat(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, ak_splat(5.0000001201e-1f));
    const __m512 er = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), ak_splat(1.0f));
    const __m512i ni = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(ak_splat(magic)));
    const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(ni, _mm512_set1_epi32(127)), 23));
    return _mm512_maskz_mov_ps((__mmask16)~underflow, _mm512_mul_ps(er, scale));
}

AVX512_TARGET static inline __m512 ak_abs(__m512 x) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
}

/// |magnitude| with the sign bit of x (magnitude's own sign bit is clear).
AVX512_TARGET static inline __m512 ak_with_sign_of(__m512 magnitude, __m512 x) {
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(magnitude), sign));
}

/// erf(x) (Abramowitz & Stegun 7.1.26, as Vector.swift's verf).
AVX512_TARGET static inline __m512 ak_erf(__m512 x) {
    const __m512 a = ak_abs(x);
    const __m512 t = _mm512_div_ps(ak_splat(1.0f), _mm512_fmadd_ps(a, ak_splat(0.3275911f), ak_splat(1.0f)));
    __m512 p = ak_splat(1.061405429f);
    p = _mm512_fmsub_ps(p, t, ak_splat(1.453152027f));
    p = _mm512_fmadd_ps(p, t, ak_splat(1.421413741f));
    p = _mm512_fmsub_ps(p, t, ak_splat(0.284496736f));
    p = _mm512_fmadd_ps(p, t, ak_splat(0.254829592f));
    const __m512 minus_a = _mm512_sub_ps(_mm512_setzero_ps(), a);
    const __m512 tail = _mm512_mul_ps(_mm512_mul_ps(p, t), ak_exp(_mm512_mul_ps(minus_a, a)));
    return ak_with_sign_of(_mm512_sub_ps(ak_splat(1.0f), tail), x);
}

/// tanh(x) = 1 − 2 / (e^{2|x|} + 1) with the sign of x (Vector.swift's vtanh).
AVX512_TARGET static inline __m512 ak_tanh(__m512 x) {
    const __m512 e = ak_exp(_mm512_mul_ps(ak_splat(2.0f), ak_abs(x)));
    const __m512 y = _mm512_sub_ps(ak_splat(1.0f), _mm512_div_ps(ak_splat(2.0f), _mm512_add_ps(e, ak_splat(1.0f))));
    return ak_with_sign_of(y, x);
}

#endif
