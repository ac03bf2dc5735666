#include "MoEKernels.h"
#include <stdatomic.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
static uint32_t detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;  // the OS saves XMM and YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return ((b >> 5) & 1) ? MOEK_CPU_AVX2_FMA : 0;
}
#elif defined(__aarch64__)
static uint32_t detect(void) { return MOEK_CPU_NEON; }
#else
static uint32_t detect(void) { return 0; }
#endif

static _Atomic uint32_t detected = 0xFFFFFFFFu;
// Per thread, so a test that forces the scalar paths cannot change what other threads compute.
static _Thread_local uint32_t feature_mask = 0xFFFFFFFFu;

uint32_t moek_cpu_features(void) {
    uint32_t f = atomic_load_explicit(&detected, memory_order_relaxed);
    if (f == 0xFFFFFFFFu) {
        f = detect();
        atomic_store_explicit(&detected, f, memory_order_relaxed);
    }
    return f & feature_mask;
}

uint32_t moek_set_feature_mask(uint32_t mask) {
    uint32_t previous = feature_mask;
    feature_mask = mask;
    return previous;
}
