// CBLAS as shipped by Debian's libopenblas-dev (pthread variant).
#include <cblas.h>

/// The widest vector ISA this CPU and its OS support, as OpenBLAS's kernel families divide them: 2 for AVX-512
/// (F, CD, BW, DQ, VL: the SkylakeX kernels), 1 for AVX2 with FMA (the Haswell kernels), 0 for anything older.
static inline int bert_cpu_vector_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}
