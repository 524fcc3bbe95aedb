// Device functions shared with the CPU kernels, written once for both sides: NVRTC compiles them into the CUDA
// kernels, and plain C compiles them on the host (the CBERTShared target) so that a test can check them bit for bit
// against the Swift kernels of BERTKernels. Each mirrors one Swift function operation by operation:
//   bs_philox          CounterRNG.block            (Philox4x32-10)
//   bs_dropout_keep    Dropout.keep                (the stream-element → word mapping of Dropout.swift)
//   bs_exp, bs_erf, bs_tanh                        vexp, verf, vtanh of Vector.swift (Cephes exp, A&S 7.1.26)
//   bs_activation, bs_activation_derivative        Activation.value / derivative (gelu erf, gelu tanh, tanh, relu)
//   bs_bf16_from_float, bs_bf16_to_float           round to nearest even, as PyTorch's c10::BFloat16
// and the optimizer kernels' chunk type, which the Swift host code fills in.
// Every product and sum goes through bs_mul / bs_add / bs_sub / bs_div / bs_fma: on the device they are the _rn
// intrinsics, which the compiler never contracts into an FMA, so the device rounds exactly as the CPU's separate SIMD
// multiply and add do, and fuses exactly where the Swift side fuses (addingProduct); the host build passes
// -ffp-contract=off for the same reason.
#ifndef BERT_SHARED_CUH
#define BERT_SHARED_CUH

#if defined(__CUDACC__)
#define BS_FN __host__ __device__ __forceinline__
#else
#define BS_FN static inline
#endif

typedef unsigned int bs_u32;
typedef unsigned long long bs_u64;
/// bf16 in memory: the upper half of an IEEE-754 binary32, the same bits as __nv_bfloat16 and cuBLASLt's CUDA_R_16BF
/// (declared here so that NVRTC needs no CUDA headers at run time).
typedef unsigned short bf16;

/// One chunk of the optimizer kernels' table: at most 4096 elements of one tensor, from `offset` in the flat parameter
/// and gradient buffers. Swift builds the table with this very type (OptimizerChunkTable), so the layouts agree.
typedef struct { long long offset; int count; int tensor; } bert_chunk;

/// The four 32-bit words of one Philox block.
typedef struct { bs_u32 w0, w1, w2, w3; } bs_u32x4;

#if defined(__CUDA_ARCH__)
BS_FN float bs_mul(float a, float b) { return __fmul_rn(a, b); }
BS_FN float bs_add(float a, float b) { return __fadd_rn(a, b); }
BS_FN float bs_sub(float a, float b) { return __fsub_rn(a, b); }
BS_FN float bs_div(float a, float b) { return __fdiv_rn(a, b); }
BS_FN float bs_fma(float a, float b, float c) { return __fmaf_rn(a, b, c); }
BS_FN bs_u32 bs_float_bits(float x) { return __float_as_uint(x); }
BS_FN float bs_bits_float(bs_u32 b) { return __uint_as_float(b); }
#else
BS_FN float bs_mul(float a, float b) { return a * b; }
BS_FN float bs_add(float a, float b) { return a + b; }
BS_FN float bs_sub(float a, float b) { return a - b; }
BS_FN float bs_div(float a, float b) { return a / b; }
BS_FN float bs_fma(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
BS_FN bs_u32 bs_float_bits(float x) { union { float f; bs_u32 u; } v; v.f = x; return v.u; }
BS_FN float bs_bits_float(bs_u32 b) { union { float f; bs_u32 u; } v; v.u = b; return v.f; }
#endif

/// Philox4x32-10 block `index` of stream `stream` under key `seed` (CounterRNG.block).
BS_FN bs_u32x4 bs_philox(bs_u64 seed, bs_u64 stream, bs_u64 index) {
    bs_u32 c0 = (bs_u32)index, c1 = (bs_u32)(index >> 32), c2 = (bs_u32)stream, c3 = (bs_u32)(stream >> 32);
    bs_u32 k0 = (bs_u32)seed, k1 = (bs_u32)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        bs_u64 p0 = 0xD2511F53ull * c0, p1 = 0xCD9E8D57ull * c2;
        bs_u32 n0 = (bs_u32)(p1 >> 32) ^ c1 ^ k0, n1 = (bs_u32)p1;
        bs_u32 n2 = (bs_u32)(p0 >> 32) ^ c3 ^ k1, n3 = (bs_u32)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    bs_u32x4 out = {c0, c1, c2, c3};
    return out;
}

/// Element `i` of a dropout stream is kept (1) or dropped (0) with probability `p` (Dropout.keep): a run of 32
/// elements draws word ⌊r/8⌋ of block 8·⌊i/32⌋ + r mod 8, r = i mod 32, and drops when its top 24 bits < p·2²⁴.
BS_FN int bs_dropout_keep(bs_u64 seed, bs_u64 stream, bs_u64 i, float p) {
    bs_u32 r = (bs_u32)(i & 31);
    bs_u32x4 b = bs_philox(seed, stream, (i >> 5) * 8 + (r & 7));
    bs_u32 word = (r >> 3) == 0 ? b.w0 : (r >> 3) == 1 ? b.w1 : (r >> 3) == 2 ? b.w2 : b.w3;
    return (word >> 8) < (bs_u32)(p * 16777216.0f) ? 0 : 1;
}

/// e^x (vexp): 0 below −87.3 (no denormals), clamped above 88.3; Cephes' polynomial on x − n·ln 2.
BS_FN float bs_exp(float x) {
    int underflow = x < -87.3f;
    if (underflow) x = -87.3f;
    if (x > 88.3f) x = 88.3f;
    const float magic = 12582912.0f;   // 1.5·2²³: adding it rounds to an integer, left in the low mantissa bits
    float t = bs_fma(x, 1.44269504f, magic);
    float n = bs_sub(t, magic);
    float r = bs_fma(n, 2.12194440e-4f, bs_fma(-n, 0.693359375f, x));
    float p = 1.9875691500e-4f;
    p = bs_fma(p, r, 1.3981999507e-3f);
    p = bs_fma(p, r, 8.3334519073e-3f);
    p = bs_fma(p, r, 4.1665795894e-2f);
    p = bs_fma(p, r, 1.6666665459e-1f);
    p = bs_fma(p, r, 5.0000001201e-1f);
    float er = bs_add(bs_fma(p, bs_mul(r, r), r), 1.0f);
    bs_u32 ni = bs_float_bits(t) - bs_float_bits(magic);
    float scale = bs_bits_float((ni + 127u) << 23);
    return underflow ? 0.0f : bs_mul(er, scale);
}

/// `magnitude` with the sign bit of `x` or-ed in (withSignOf in Vector.swift).
BS_FN float bs_with_sign_of(float magnitude, float x) {
    return bs_bits_float(bs_float_bits(magnitude) | (bs_float_bits(x) & 0x80000000u));
}

/// erf(x) (verf): Abramowitz & Stegun 7.1.26.
BS_FN float bs_erf(float x) {
    float a = bs_bits_float(bs_float_bits(x) & 0x7FFFFFFFu);
    float t = bs_div(1.0f, bs_fma(a, 0.3275911f, 1.0f));
    float p = 1.061405429f;
    p = bs_fma(p, t, -1.453152027f);
    p = bs_fma(p, t, 1.421413741f);
    p = bs_fma(p, t, -0.284496736f);
    p = bs_fma(p, t, 0.254829592f);
    float tail = bs_mul(bs_mul(p, t), bs_exp(bs_mul(-a, a)));
    return bs_with_sign_of(bs_sub(1.0f, tail), x);
}

/// tanh(x) (vtanh): 1 − 2 / (e^{2|x|} + 1) with the sign of x.
BS_FN float bs_tanh(float x) {
    float e = bs_exp(bs_mul(2.0f, bs_bits_float(bs_float_bits(x) & 0x7FFFFFFFu)));
    return bs_with_sign_of(bs_sub(1.0f, bs_div(2.0f, bs_add(e, 1.0f))), x);
}

/// The activation forms a kernel's `form` argument selects (Activation in Activation.swift).
enum { BS_GELU_ERF = 0, BS_GELU_TANH = 1, BS_TANH = 2, BS_RELU = 3 };

#define BS_SQRT_2_OVER_PI 0.7978845608028654f
#define BS_INV_SQRT_2 0.7071067811865475f
#define BS_INV_SQRT_2PI 0.3989422804014327f

/// k·(x + 0.044715·x³), the tanh GELU's argument.
BS_FN float bs_gelu_tanh_inner(float x) {
    float x3 = bs_mul(bs_mul(x, x), x);
    return bs_mul(BS_SQRT_2_OVER_PI, bs_add(x, bs_mul(0.044715f, x3)));
}

/// f(x) for `form` (Activation.value).
BS_FN float bs_activation(int form, float x) {
    if (form == BS_GELU_ERF) {
        float cdf = bs_mul(0.5f, bs_add(1.0f, bs_erf(bs_mul(x, BS_INV_SQRT_2))));
        return bs_mul(x, cdf);
    }
    if (form == BS_GELU_TANH) {
        float t = bs_tanh(bs_gelu_tanh_inner(x));
        return bs_mul(bs_mul(0.5f, x), bs_add(1.0f, t));
    }
    if (form == BS_RELU) return x < 0.0f ? 0.0f : x;
    return bs_tanh(x);
}

/// f′(x) for `form` (Activation.derivative).
BS_FN float bs_activation_derivative(int form, float x) {
    if (form == BS_GELU_ERF) {
        float cdf = bs_mul(0.5f, bs_add(1.0f, bs_erf(bs_mul(x, BS_INV_SQRT_2))));
        float pdf = bs_mul(bs_exp(bs_mul(bs_mul(-0.5f, x), x)), BS_INV_SQRT_2PI);
        return bs_add(cdf, bs_mul(x, pdf));
    }
    if (form == BS_GELU_TANH) {
        float t = bs_tanh(bs_gelu_tanh_inner(x));
        float x2 = bs_mul(x, x);
        float d_inner = bs_mul(BS_SQRT_2_OVER_PI, bs_add(1.0f, bs_mul(0.134145f, x2)));
        float half = bs_mul(0.5f, bs_add(1.0f, t));
        return bs_add(half, bs_mul(bs_mul(bs_mul(0.5f, x), bs_sub(1.0f, bs_mul(t, t))), d_inner));
    }
    if (form == BS_RELU) return x > 0.0f ? 1.0f : 0.0f;
    float t = bs_tanh(x);
    return bs_sub(1.0f, bs_mul(t, t));
}

/// The bf16 nearest to `x`, ties to even; every NaN becomes the quiet NaN 0x7FC0 (c10::BFloat16's rounding).
BS_FN bf16 bs_bf16_from_float(float x) {
    bs_u32 b = bs_float_bits(x);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return (bf16)0x7FC0;
    return (bf16)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

/// The float a bf16 stands for (exact).
BS_FN float bs_bf16_to_float(bf16 h) { return bs_bits_float((bs_u32)h << 16); }

#endif
