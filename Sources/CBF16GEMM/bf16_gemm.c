// AMX tiles, as this file uses them: eight registers of 16 rows x 64 bytes. A tile multiply-add (TDPBF16PS) takes a
// left tile of 16 rows x 32 bf16, a right tile of 16 rows of 16 bf16 pairs (pairs consecutive in K: the "VNNI" layout)
// and adds the 16 x 16 fp32 products into a third. Tiles 0-3 hold a 32 x 32 block of C, 4-5 two row blocks of A,
// 6-7 two column blocks of B.
//
// Only the functions that touch tiles or AVX-512 carry those targets: the rest of the binary, and the check that
// picks this path, still run on any AVX2 CPU.
#include "bf16_gemm.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <immintrin.h>

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl")))
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int amx_state;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void) {
    // BERT_AMX=0 keeps the tiles unused (the portable path), to compare or to work around a platform.
    const char *setting = getenv("BERT_AMX");
    if (setting && strcmp(setting, "0") == 0) return;
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return;
    const unsigned amx_bf16 = 1u << 22, amx_tile = 1u << 24;
    if ((edx & amx_bf16) == 0 || (edx & amx_tile) == 0) return;
    // Linux hands out the 8 KB tile state only on request (since 5.16); a refusal means no AMX for us.
    amx_state = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int bg_amx_available(void) {
    pthread_once(&amx_once, amx_probe);
    return amx_state;
}

/// A mask of the first `n` of 16 lanes (all when n >= 16).
AMX_TARGET static inline __mmask16 lanes(long n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/// bert_shared.cuh's `bs_bf16_from_float` (the GPU kernels' rounding) on 16 floats at once: each 32-bit lane's
/// upper half is the bf16.
AMX_TARGET static inline __m512i rounded16(__m512 x) {
    const __m512i b = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7FFF)), lsb);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7FFFFFFF)),
                                                  _mm512_set1_epi32(0x7F800000));
    return _mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32(0x7FC00000));
}

/// The 32 floats at `x` (those past `count` read as zeros) as 16 bf16 pairs: pair j is x[2j] (low half), x[2j + 1].
AMX_TARGET static inline __m512i pairs32(const float *x, long count) {
    const __m512i lo = rounded16(_mm512_maskz_loadu_ps(lanes(count), x));
    const __m512i hi = rounded16(_mm512_maskz_loadu_ps(lanes(count - 16), x + 16));
    // The bf16 of float i sits in 16-bit lane 2i + 1 of lo:hi; keep the odd lanes.
    const __m512i odd = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,
                                         31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    return _mm512_permutex2var_epi16(lo, odd, hi);
}

/// Transposes 16 x 16 32-bit values in place: v[i] lane j becomes v[j] lane i.
AMX_TARGET static inline void transpose16(__m512i v[16]) {
    __m512i t[16];
    // 32-bit then 64-bit interleaves: v[4i + c]'s 128-bit lane L holds column 4L + c of rows 4i..4i+3.
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        v[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        v[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        v[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        v[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    // Then a 4 x 4 transpose of 128-bit lanes for each c: column 4L + c gathers lane L of v[c], v[4 + c], v[8 + c], v[12 + c].
    for (int c = 0; c < 4; c++) {
        const __m512i u0 = _mm512_shuffle_i32x4(v[c], v[4 + c], 0x44), u1 = _mm512_shuffle_i32x4(v[c], v[4 + c], 0xEE);
        const __m512i u2 = _mm512_shuffle_i32x4(v[8 + c], v[12 + c], 0x44);
        const __m512i u3 = _mm512_shuffle_i32x4(v[8 + c], v[12 + c], 0xEE);
        t[c] = _mm512_shuffle_i32x4(u0, u2, 0x88);
        t[4 + c] = _mm512_shuffle_i32x4(u0, u2, 0xDD);
        t[8 + c] = _mm512_shuffle_i32x4(u1, u3, 0x88);
        t[12 + c] = _mm512_shuffle_i32x4(u1, u3, 0xDD);
    }
    for (int i = 0; i < 16; i++) v[i] = t[i];
}

/// Pairs from two rows: lane j of the result is (x0[j], x1[j]) as bf16, x0's in the low half.
AMX_TARGET static inline __m512i interleaved(const float *x0, const float *x1, __mmask16 live) {
    const __m512i r0 = rounded16(x0 ? _mm512_maskz_loadu_ps(live, x0) : _mm512_setzero_ps());
    const __m512i r1 = rounded16(x1 ? _mm512_maskz_loadu_ps(live, x1) : _mm512_setzero_ps());
    return _mm512_or_si512(_mm512_srli_epi32(r0, 16), _mm512_and_si512(r1, _mm512_set1_epi32((int)0xFFFF0000)));
}

/// Where the 16 pairs from pair p (a multiple of 16) of packed row m start, in pairs: A is stored tile by tile,
/// [M32 / 16][K32 / 32][16 rows][16 pairs], so that a tile is 1 KB in one piece.
static inline long a_tile(long m, long p, long k32) { return ((m / 16) * (k32 / 32) + p / 16) * 256 + (m % 16) * 16; }

/// Where the pairs of packed row p for columns n..n+15 (n a multiple of 16) start, in pairs: B is stored by column
/// blocks, [N32 / 16][K32 / 2][16 columns], so that a tile (16 pair rows of one block) is 1 KB in one piece.
static inline long b_tile(long p, long n, long k32) { return ((n / 16) * (k32 / 2) + p) * 16; }

AMX_TARGET
void bg_pack_a(const float *a, long lda, int transposed, long rows, long depth, long m0, long m1, uint16_t *out) {
    const long k32 = bg_padded(depth), real = m1 < rows ? m1 : rows;
    uint32_t *out32 = (uint32_t *)out;
    if (!transposed) {
        for (long m = m0; m < m1; m++)
            for (long p = 0; p < k32 / 2; p += 16)
                _mm512_storeu_si512(out32 + a_tile(m, p, k32),
                                    m < real ? pairs32(a + m * lda + 2 * p, depth - 2 * p) : _mm512_setzero_si512());
        return;
    }
    // op(A) = Aᵀ: rows k and k + 1 of A give one pair for each of 16 values of m; 16 such vectors, transposed, are
    // 16 pairs along k for each of 16 packed rows.
    for (long mb = m0; mb < m1; mb += 16) {
        const __mmask16 live = lanes(real - mb);
        for (long pb = 0; pb < k32 / 2; pb += 16) {
            __m512i v[16];
            for (int j = 0; j < 16; j++) {
                const long k = 2 * (pb + j);
                v[j] = interleaved(k < depth ? a + k * lda + mb : 0, k + 1 < depth ? a + (k + 1) * lda + mb : 0, live);
            }
            transpose16(v);
            for (int i = 0; i < 16; i++) _mm512_storeu_si512(out32 + a_tile(mb + i, pb, k32), v[i]);
        }
    }
}

AMX_TARGET
void bg_pack_b(const float *b, long ldb, int transposed, long depth, long columns, long n0, long n1, uint16_t *out) {
    const long k32 = bg_padded(depth);
    uint32_t *out32 = (uint32_t *)out;
    if (!transposed) {
        // Rows k and k + 1 of B interleave into one packed row.
        for (long p = 0; p < k32 / 2; p++) {
            const long k = 2 * p;
            const float *r0 = k < depth ? b + k * ldb : 0, *r1 = k + 1 < depth ? b + (k + 1) * ldb : 0;
            for (long n = n0; n < n1; n += 16)
                _mm512_storeu_si512(out32 + b_tile(p, n, k32),
                                    interleaved(r0 ? r0 + n : 0, r1 ? r1 + n : 0, lanes(columns - n)));
        }
        return;
    }
    // op(B) = Bᵀ: 32 values along a row of B are 16 pairs of one column n; 16 columns' vectors, transposed, are 16
    // packed rows' pairs for those columns.
    for (long nb = n0; nb < n1; nb += 16) {
        for (long pb = 0; pb < k32 / 2; pb += 16) {
            const long k = 2 * pb;
            __m512i v[16];
            for (int i = 0; i < 16; i++)
                v[i] = nb + i < columns ? pairs32(b + (nb + i) * ldb + k, depth - k) : _mm512_setzero_si512();
            transpose16(v);
            for (int j = 0; j < 16; j++) _mm512_storeu_si512(out32 + b_tile(pb + j, nb, k32), v[j]);
        }
    }
}

/// The tile shapes: every register 16 rows of 64 bytes.
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} tile_config;

/// One 32 x 32 block of C at (m, n), its tiles already configured.
AMX_TARGET static inline void multiply_block(const uint16_t *a, const uint16_t *b, long rows, long columns, long k32,
                                             float alpha, float beta, float *c, long ldc, long m, long n) {
    const long strideC = ldc * 4;
    // A whole block with alpha 1 and beta 0 or 1 accumulates in C itself; others go through `block`.
    const int direct = m + 32 <= rows && n + 32 <= columns && alpha == 1 && (beta == 0 || beta == 1);
    float *c00 = c + m * ldc + n, *c01 = c00 + 16, *c10 = c00 + 16 * ldc, *c11 = c10 + 16;
    if (direct && beta == 1) {
        _tile_loadd(0, c00, strideC);
        _tile_loadd(1, c01, strideC);
        _tile_loadd(2, c10, strideC);
        _tile_loadd(3, c11, strideC);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    // Tiles are 1 KB apart along k in both packed layouts (see a_tile, b_tile).
    const uint32_t *a0 = (const uint32_t *)a + a_tile(m, 0, k32), *a1 = (const uint32_t *)a + a_tile(m + 16, 0, k32);
    const uint32_t *b0 = (const uint32_t *)b + b_tile(0, n, k32), *b1 = (const uint32_t *)b + b_tile(0, n + 16, k32);
    for (long k = 0; k < k32; k += 32) {
        _tile_loadd(4, a0 + k * 8, 64);
        _tile_loadd(5, a1 + k * 8, 64);
        _tile_loadd(6, b0 + k * 8, 64);
        _tile_loadd(7, b1 + k * 8, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    if (direct) {
        _tile_stored(0, c00, strideC);
        _tile_stored(1, c01, strideC);
        _tile_stored(2, c10, strideC);
        _tile_stored(3, c11, strideC);
        return;
    }
    float block[32 * 32];
    _tile_stored(0, block, 128);
    _tile_stored(1, block + 16, 128);
    _tile_stored(2, block + 16 * 32, 128);
    _tile_stored(3, block + 16 * 32 + 16, 128);
    const long mr = rows - m < 32 ? rows - m : 32, nr = columns - n < 32 ? columns - n : 32;
    for (long i = 0; i < mr; i++) {
        float *ci = c00 + i * ldc;
        const float *t = block + i * 32;
        if (beta == 0)
            for (long j = 0; j < nr; j++) ci[j] = alpha * t[j];
        else
            for (long j = 0; j < nr; j++) ci[j] = alpha * t[j] + beta * ci[j];
    }
}

AMX_TARGET
void bg_multiply(const uint16_t *a, const uint16_t *b, long rows, long columns, long depth, float alpha, float beta,
                 float *c, long ldc, long bm0, long bm1, long bn0, long bn1) {
    tile_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) config.bytes_per_row[t] = 64, config.rows[t] = 16;
    _tile_loadconfig(&config);

    const long k32 = bg_padded(depth);
    // Columns of B go by panels, each met by every block row of A before the next. Few rows against many columns (a
    // batch-1 forward): panels of one block, so A, the smaller operand, is what gets re-read, from cache. Otherwise
    // panels of about 1 MB (a column block is k32 × 32 bf16), so that a large weight stays in L2 across the block rows
    // and is read from memory once, not once per block row.
    const long fill = (1L << 20) / (k32 * 64), panel = bm1 - bm0 <= bn1 - bn0 || fill < 1 ? 1 : fill;
    for (long first = bn0; first < bn1; first += panel)
        for (long bm = bm0; bm < bm1; bm++)
            for (long bn = first; bn < first + panel && bn < bn1; bn++)
                multiply_block(a, b, rows, columns, k32, alpha, beta, c, ldc, bm * 32, bn * 32);
    _tile_release();
}
