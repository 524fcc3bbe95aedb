// oneDNN's product over a weight packed once (`sgemm_pack` / `sgemm_compute`, what `OneDNNPackedWeight` calls)
// against `dnnl_sgemm`, which packs the weight on every call: one thread, y = x · Wᵀ with x [M, K] and W [N, K] as a
// linear layer holds them, on the shapes one thread meets in a forward (batch 1 split over two threads: 64 rows; a
// MiniLM or bert-base request; batch 32). GFLOP/s, best of ROUNDS (default 50, 5 from 1000 rows) calls, the two taking
// turns; and whether every output has the same bits.
// With `layouts`, the packed product alone over weights streamed from memory (as many copies as fill 200 MB, each
// read once a round), packed in the layout oneDNN makes for one thread and for two (`OneDNNPackedWeight.Layout`):
// GFLOP/s of one thread, best of 3 rounds, bytes against the weight's, same bits.
//   cc -O2 bench/onednn_packed.c -o /tmp/onednn_packed -ldnnl -lgomp && /tmp/onednn_packed [ROUNDS | layouts]
#include <dnnl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void omp_set_num_threads(int);

// oneDNN 2.x's dnnl::impl::cpu::sgemm_pack_get_size, sgemm_pack and sgemm_compute (gemm_pack.hpp): column-major,
// MKL's packed-GEMM interface. Exported by libdnnl without a C declaration, hence the C++ symbols.
typedef long dim_t;
int _ZN4dnnl4impl3cpu19sgemm_pack_get_sizeEPKcS3_S3_PKlS5_S5_S5_S5_PmPb(const char *, const char *, const char *,
    const dim_t *, const dim_t *, const dim_t *, const dim_t *, const dim_t *, size_t *, bool *);
int _ZN4dnnl4impl3cpu10sgemm_packEPKcS3_S3_PKlS5_S5_S5_S5_PKfPf(const char *, const char *, const char *, const dim_t *,
    const dim_t *, const dim_t *, const dim_t *, const dim_t *, const float *, float *);
int _ZN4dnnl4impl3cpu13sgemm_computeEPKcS3_PKlS5_S5_PKfS5_S7_S5_S7_PfS5_(const char *, const char *, const dim_t *,
    const dim_t *, const dim_t *, const float *, const dim_t *, const float *, const dim_t *, const float *, float *,
    const dim_t *);
#define pack_size _ZN4dnnl4impl3cpu19sgemm_pack_get_sizeEPKcS3_S3_PKlS5_S5_S5_S5_PmPb
#define pack _ZN4dnnl4impl3cpu10sgemm_packEPKcS3_S3_PKlS5_S5_S5_S5_PKfPf
#define compute _ZN4dnnl4impl3cpu13sgemm_computeEPKcS3_PKlS5_S5_PKfS5_S7_S5_S7_PfS5_

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// Packs `w` [N, K] in the layout of a team of `threads`; returns the bytes in `*bytes`, NULL on failure.
static float *packed_copy(const float *w, dim_t N, dim_t K, int threads, size_t *bytes) {
    omp_set_num_threads(threads);
    dim_t m = N, n = 16, lda = K, ldb = K;
    bool worth = false;
    float *p = NULL;
    if (pack_size("A", "T", "N", &m, &n, &K, &lda, &ldb, bytes, &worth) == 0
        && (p = aligned_alloc(64, (*bytes + 63) / 64 * 64))
        && pack("A", "T", "N", &m, &n, &K, &lda, &ldb, w, p) != 0) {
        free(p);
        p = NULL;
    }
    omp_set_num_threads(1);
    return p;
}

static int layouts(void) {
    // bert-base's shapes at 16 to 2048 rows (a request split over threads up to a batch), MiniLM's at 192 rows.
    static const int shapes[][3] = {
        {16, 3072, 768}, {64, 3072, 768}, {128, 3072, 768}, {256, 3072, 768}, {1024, 3072, 768}, {2048, 3072, 768},
        {64, 2304, 768}, {64, 768, 768}, {128, 768, 768}, {2048, 768, 768}, {64, 768, 256}, {64, 256, 256},
        {192, 1152, 384}, {192, 384, 384}, {192, 1536, 384}};
    printf("M × N × K          one-thread GFLOP/s   two-thread GFLOP/s   two / one   bytes / weight's (one, two)   same bits\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        dim_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        int copies = (int)(200e6 / (4.0 * N * K)) + 1;
        float *x = malloc(M * K * 4), *w = malloc(N * K * 4), *c[2] = {malloc(M * N * 4), malloc(M * N * 4)};
        for (dim_t i = 0; i < M * K; i++) x[i] = (float)((i * 7) % 13 - 6) / 7 + 1e-3f * (i % 5);
        for (dim_t i = 0; i < N * K; i++) w[i] = (float)((i * 5) % 11 - 5) / 50 + 1e-4f * (i % 7);
        double gflops[2];
        size_t bytes[2];
        for (int t = 0; t < 2; t++) {
            float **p = malloc(copies * sizeof *p);
            for (int i = 0; i < copies; i++)
                if (!(p[i] = packed_copy(w, N, K, t + 1, &bytes[t]))) {
                    fprintf(stderr, "oneDNN refused to pack %ld × %ld\n", (long)N, (long)K);
                    return 1;
                }
            double best = 1e9;
            for (int r = 0; r < 3; r++) {
                double start = now();
                for (int i = 0; i < copies; i++) {
                    dim_t m = N, n = M, lda = K, ldb = K, ldc = N;
                    float beta = 0;
                    compute("P", "N", &m, &n, &K, p[i], &lda, x, &ldb, &beta, c[t], &ldc);
                }
                double t1 = (now() - start) / copies;
                if (t1 < best) best = t1;
            }
            gflops[t] = 2.0 * M * N * K / best / 1e9;
            for (int i = 0; i < copies; i++) free(p[i]);
            free(p);
        }
        printf("%4ld × %4ld × %4ld   %10.0f           %10.0f          %6.2f        %5.2f, %5.2f                  %s\n",
               (long)M, (long)N, (long)K, gflops[0], gflops[1], gflops[1] / gflops[0], bytes[0] / (4.0 * N * K),
               bytes[1] / (4.0 * N * K), memcmp(c[0], c[1], M * N * 4) ? "NO" : "yes");
        free(x), free(w), free(c[0]), free(c[1]);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "layouts") == 0) return layouts();
    int rounds = argc > 1 ? atoi(argv[1]) : 50;
    omp_set_num_threads(1);
    // {M, N, K}: bert-mini's four products at 64 rows; MiniLM's at 192 (seq 384 split in two); bert-base's at 64;
    // then 2048 rows (batch 32 split in two).
    static const int shapes[][3] = {
        {64, 768, 256}, {64, 256, 256}, {64, 1024, 256}, {64, 256, 1024},
        {192, 1152, 384}, {192, 384, 384}, {192, 1536, 384}, {192, 384, 1536},
        {64, 2304, 768}, {64, 768, 768}, {64, 3072, 768}, {64, 768, 3072},
        {2048, 768, 256}, {2048, 256, 1024}, {2048, 2304, 768}, {2048, 768, 3072}};
    printf("M × N × K          dnnl_sgemm GFLOP/s   packed GFLOP/s   packed / plain   packed bytes / weight's   same bits\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        dim_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *x = malloc(M * K * 4), *w = malloc(N * K * 4), *plain = malloc(M * N * 4), *packed = malloc(M * N * 4);
        for (dim_t i = 0; i < M * K; i++) x[i] = (float)((i * 7) % 13 - 6) / 7 + 1e-3f * (i % 5);
        for (dim_t i = 0; i < N * K; i++) w[i] = (float)((i * 5) % 11 - 5) / 5 + 1e-3f * (i % 7);
        // Column-major: Cᵀ [N, M] = (Wᵀ)ᵀ · xᵀ, the weight being operand A, transposed.
        dim_t m = N, n = M, lda = K, ldb = K, ldc = N;
        size_t bytes = 0;
        bool worth = false;
        float beta = 0, *w_packed;
        if (pack_size("A", "T", "N", &m, &n, &K, &lda, &ldb, &bytes, &worth) != 0
            || !(w_packed = aligned_alloc(64, (bytes + 63) / 64 * 64))
            || pack("A", "T", "N", &m, &n, &K, &lda, &ldb, w, w_packed) != 0) {
            fprintf(stderr, "oneDNN refused to pack %ld × %ld\n", (long)N, (long)K);
            return 1;
        }
        int r = M >= 1000 ? 5 : rounds;
        double best_plain = 1e9, best_packed = 1e9;
        for (int i = 0; i < r; i++) {
            double t = now();
            dnnl_sgemm('N', 'T', M, N, K, 1, x, K, w, K, 0, plain, N);
            if ((t = now() - t) < best_plain) best_plain = t;
            t = now();
            compute("P", "N", &m, &n, &K, w_packed, &lda, x, &ldb, &beta, packed, &ldc);
            if ((t = now() - t) < best_packed) best_packed = t;
        }
        bool same = true;
        for (dim_t i = 0; i < M * N; i++) same &= plain[i] == packed[i];
        double flops = 2.0 * M * N * K;
        printf("%4ld × %4ld × %4ld   %10.0f           %10.0f       %8.2f         %8.2f                %s\n", (long)M,
               (long)N, (long)K, flops / best_plain / 1e9, flops / best_packed / 1e9, best_plain / best_packed,
               (double)bytes / (4.0 * N * K), same ? "yes" : "NO");
        free(x), free(w), free(plain), free(packed), free(w_packed);
    }
    return 0;
}
