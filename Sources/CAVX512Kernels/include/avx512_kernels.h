// Elementwise kernels on 16-lane AVX-512 registers, for the CPUs that have them; the Swift kernels (8-lane AVX2) stay
// the path every x86-64 build runs, and the definition these must match bit for bit.
#ifndef AVX512_KERNELS_H
#define AVX512_KERNELS_H

#include <stdint.h>

/// 1 when the CPU and the OS support AVX-512 F, DQ, BW and VL (asked once), else 0; 0 too when the environment sets
/// BERT_AVX512=0.
int ak_avx512_available(void);

/// Dropout.swift's `apply` over whole runs of 32 stream elements: `dst[o] = src[o] · m / (1 − p)` for stream elements
/// `first ..< first + count` (both multiples of 32), where the mask bit m of element i is word ⌊r/8⌋ of Philox block
/// 8·⌊i/32⌋ + r mod 8 (r = i mod 32) compared with p. `src` and `dst` point at stream element `first`; they may be equal.
void ak_dropout_runs(const float *src, float *dst, long first, long count, float p, uint64_t seed, uint64_t stream);

/// GELU as Activation.swift defines it, over `count` floats: `tanh_form` 0 is the exact (erf) GELU, 1 the tanh form.
/// `y = f(x)`; y may alias x.
void ak_gelu_forward(int tanh_form, const float *x, float *y, long count);
/// `y = f(x + bias)` over one row of `count` features.
void ak_gelu_forward_bias(int tanh_form, const float *x, const float *bias, float *y, long count);
/// `y = f(x)` and `d = f′(x)`.
void ak_gelu_value_and_derivative(int tanh_form, const float *x, float *y, float *d, long count);
/// `dx = dy · f′(x)`; dx may alias dy.
void ak_gelu_backward(int tanh_form, const float *dy, const float *x, float *dx, long count);

/// `row[j] = e^(row[j] − shift) · scale` (the cross-entropy backward's softmax), with Vector.swift's vexp.
void ak_exp_shifted_scaled(float *row, long count, float shift, float scale);

/// Attention.swift's softmax row up to the sum: `row[j] = e^(row[j] + bias[j] − max)` with max the largest
/// `row[j] + bias[j]`, and in `sums` the 8 lanes of their sum taken 8 at a time in order (the Swift kernel's partial
/// sums, to be reduced as it reduces them).
void ak_softmax_exponentials(float *row, const float *bias, long count, float sums[8]);

/// CrossEntropy.swift's forward over one row of logits: returns the row's max and leaves in `sums` the 8 lanes of
/// Σ e^(row[j] − max) taken 8 at a time in order (the row is only read).
float ak_max_and_exponential_sums(const float *row, long count, float sums[8]);

#endif
