#include "avx512_kernels.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int avx512_state;
static pthread_once_t avx512_once = PTHREAD_ONCE_INIT;

static void avx512_probe(void) {
    // BERT_AVX512=0 keeps the 8-lane Swift kernels (to compare, or to rule this path out).
    const char *setting = getenv("BERT_AVX512");
    if (setting && strcmp(setting, "0") == 0) return;
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || (ecx & bit_OSXSAVE) == 0) return;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return;
    const unsigned wanted = bit_AVX512F | bit_AVX512DQ | bit_AVX512BW | bit_AVX512VL;
    if ((ebx & wanted) != wanted) return;
    // The OS must save the opmask and both halves of the 32 zmm registers (XCR0 bits 1, 2, 5, 6, 7).
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    avx512_state = (lo & 0xE6) == 0xE6;
}

int ak_avx512_available(void) {
    pthread_once(&avx512_once, avx512_probe);
    return avx512_state;
}
