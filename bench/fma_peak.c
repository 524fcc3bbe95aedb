// The machine's fp32 FMA peak, the ceiling every GEMM-bound figure in bench/results is read against: each of THREADS
// threads (default 1, then 2) runs twelve independent chains of fused multiply-adds in registers, 16-lane AVX-512
// where the CPU has it, else 8-lane AVX2, for about a second; GFLOP/s per thread and in all, best of 5 rounds.
//   cc -O2 bench/fma_peak.c -o /tmp/fma_peak -lpthread && /tmp/fma_peak [THREADS]
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { CHAINS = 12, ITERATIONS = 50000000 };

/// FLOPs a second of one thread: 2 a lane a multiply-add.
#define CHAIN_LOOP(VEC, SET1, FMA, LANES)                                                                            \
    VEC c[CHAINS], a = SET1(0.999f), b = SET1(0.0001f);                                                              \
    for (int i = 0; i < CHAINS; i++) c[i] = SET1(0.001f * i);                                                        \
    const double start = now();                                                                                      \
    for (long n = 0; n < ITERATIONS; n++) {                                                                          \
        /* Twelve named chains: a loop over an array here left them in memory. */                                    \
        c[0] = FMA(c[0], a, b); c[1] = FMA(c[1], a, b); c[2] = FMA(c[2], a, b); c[3] = FMA(c[3], a, b);              \
        c[4] = FMA(c[4], a, b); c[5] = FMA(c[5], a, b); c[6] = FMA(c[6], a, b); c[7] = FMA(c[7], a, b);              \
        c[8] = FMA(c[8], a, b); c[9] = FMA(c[9], a, b); c[10] = FMA(c[10], a, b); c[11] = FMA(c[11], a, b);          \
        __asm__ volatile("" : "+x"(a));                                                                              \
    }                                                                                                                \
    const double seconds = now() - start;                                                                            \
    float sink = 0;                                                                                                  \
    for (int i = 0; i < CHAINS; i++) sink += c[i][0];                                                                \
    if (sink == 12345) puts("");                                                                                     \
    return 2.0 * LANES * CHAINS * ITERATIONS / seconds;

__attribute__((target("avx512f"))) static double avx512(void) {
    CHAIN_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
}

__attribute__((target("avx2,fma"))) static double avx2(void) {
    CHAIN_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)
}

static void *run(void *result) {
    *(double *)result = __builtin_cpu_supports("avx512f") ? avx512() : avx2();
    return NULL;
}

static void measure(int threads) {
    double best[64] = {0}, bestTotal = 0;
    for (int round = 0; round < 5; round++) {
        pthread_t id[64];
        double rate[64], total = 0;
        for (int t = 0; t < threads; t++) pthread_create(&id[t], NULL, run, &rate[t]);
        for (int t = 0; t < threads; t++) { pthread_join(id[t], NULL); total += rate[t]; }
        if (total > bestTotal) { bestTotal = total; for (int t = 0; t < threads; t++) best[t] = rate[t]; }
    }
    printf("%d thread%s, %s: %.1f GFLOP/s in all (", threads, threads == 1 ? "" : "s",
           __builtin_cpu_supports("avx512f") ? "AVX-512" : "AVX2/FMA", bestTotal * 1e-9);
    for (int t = 0; t < threads; t++) printf("%s%.1f", t ? ", " : "", best[t] * 1e-9);
    puts(" a thread)");
}

int main(int argc, char **argv) {
    if (argc > 1) { int threads = atoi(argv[1]); measure(threads < 1 ? 1 : threads > 64 ? 64 : threads); return 0; }
    measure(1);
    measure(2);
    return 0;
}
