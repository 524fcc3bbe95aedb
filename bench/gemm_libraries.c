// OpenBLAS's sgemm against oneDNN's on the GEMM shapes of bert-mini (batch 32) and bert-base (batch 16) training and
// of batch-1 inference, called as `GEMM.multiply` calls them: two threads, each one single-threaded call on half of
// C's rows; oneDNN also in `OneDNNGEMM`'s pieces of at most 768 terms of K. GFLOP/s, best of ROUNDS (default 6)
// rounds, the libraries taking turns within each.
//   cc -O2 bench/gemm_libraries.c -o /tmp/gemm_libraries -lopenblas -ldnnl -lgomp -lpthread
//   OPENBLAS_NUM_THREADS=1 /tmp/gemm_libraries [ROUNDS]
//   DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 /tmp/gemm_libraries   (both on AVX2)
#include <cblas.h>
#include <dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void omp_set_num_threads(int);

enum { OPENBLAS, ONEDNN, ONEDNN_PIECES, LIBRARIES };
static const char *names[LIBRARIES] = {"OpenBLAS", "oneDNN", "oneDNN, K ≤ 768 a call"};

typedef struct { int library, ta, tb, M, N, K, m0, m1; const float *A, *B; float *C; } Job;

static void *half(void *argument) {
    Job *j = argument;
    long lda = j->ta ? j->M : j->K, ldb = j->tb ? j->K : j->N, rows = j->m1 - j->m0;
    const float *a = j->ta ? j->A + j->m0 : j->A + (long)j->m0 * lda;
    float *c = j->C + (long)j->m0 * j->N;
    if (j->library == OPENBLAS) {
        cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, rows, j->N,
                    j->K, 1, a, lda, j->B, ldb, 0, c, j->N);
        return NULL;
    }
    omp_set_num_threads(1);
    long piece = j->library == ONEDNN_PIECES ? 768 : j->K;
    for (long k0 = 0; k0 < j->K; k0 += piece) {
        long depth = j->K - k0 < piece ? j->K - k0 : piece;
        dnnl_sgemm(j->ta ? 'T' : 'N', j->tb ? 'T' : 'N', rows, j->N, depth, 1, j->ta ? a + k0 * lda : a + k0, lda,
                   j->tb ? j->B + k0 : j->B + k0 * ldb, ldb, k0 ? 1 : 0, c, j->N);
    }
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 6;
    // M, N, K, transpose A, transpose B: forward (NT), input gradient (NN), weight gradient (TN).
    static const int shapes[][5] = {
        {4096, 256, 256, 0, 1}, {4096, 1024, 256, 0, 1}, {4096, 256, 1024, 0, 1}, {4096, 256, 1024, 0, 0},
        {4096, 1024, 256, 0, 0}, {256, 1024, 4096, 1, 0}, {1024, 256, 4096, 1, 0},
        {2048, 768, 768, 0, 1}, {2048, 3072, 768, 0, 1}, {2048, 768, 3072, 0, 1}, {2048, 768, 3072, 0, 0},
        {768, 3072, 2048, 1, 0}, {3072, 768, 2048, 1, 0},
        {128, 256, 256, 0, 1}, {128, 1024, 256, 0, 1}, {128, 256, 1024, 0, 1},
        {128, 768, 768, 0, 1}, {128, 3072, 768, 0, 1}, {128, 768, 3072, 0, 1}};
    printf("| M × N × K, op | %s | %s | %s | oneDNN / OpenBLAS |\n| --- | --- | --- | --- | --- |\n", names[0], names[1],
           names[2]);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = shapes[s][3], tb = shapes[s][4];
        float *A = malloc(4L * M * K), *B = malloc(4L * K * N), *C = malloc(4L * M * N);
        for (long i = 0; i < (long)M * K; i++) A[i] = (float)(rand() % 1001 - 500) * 1e-3f;
        for (long i = 0; i < (long)K * N; i++) B[i] = (float)(rand() % 1001 - 500) * 1e-3f;
        double best[LIBRARIES] = {1e30, 1e30, 1e30};
        int split = (M / 2 + 15) / 16 * 16;
        for (int round = 0; round < rounds; round++) {
            for (int library = 0; library < LIBRARIES; library++) {
                Job jobs[2] = {{library, ta, tb, M, N, K, 0, split, A, B, C}, {library, ta, tb, M, N, K, split, M, A, B, C}};
                pthread_t threads[2];
                double t0 = now();
                for (int t = 0; t < 2; t++) pthread_create(&threads[t], NULL, half, &jobs[t]);
                for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
                double seconds = now() - t0;
                if (seconds < best[library]) best[library] = seconds;
            }
        }
        double flops = 2.0 * M * N * K;
        printf("| %d × %d × %d, %c%c | %.0f | %.0f | %.0f | %.2f× |\n", M, N, K, ta ? 'T' : 'N', tb ? 'T' : 'N',
               flops / best[0] * 1e-9, flops / best[1] * 1e-9, flops / best[2] * 1e-9, best[0] / best[2]);
        free(A);
        free(B);
        free(C);
    }
    return 0;
}
