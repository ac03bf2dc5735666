#include "MoEKernels.h"
#include <stdatomic.h>
#include <string.h>

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
    unsigned family = (a >> 8) & 0xF, model = (a >> 4) & 0xF;
    if (family == 0xF) { family += (a >> 20) & 0xFF; model |= ((a >> 16) & 0xF) << 4; }
    char vendor[13] = {0};
    unsigned v0, v1, v2, v3;
    if (__get_cpuid(0, &v0, &v1, &v2, &v3)) { memcpy(vendor, &v1, 4); memcpy(vendor + 4, &v3, 4); memcpy(vendor + 8, &v2, 4); }
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!((b >> 5) & 1)) return 0;
    // AVX-512 VNNI (ECX bit 11) with F (EBX 16), BW (30) and VL (31), and the OS saving opmask
    // and ZMM state (XCR0 bits 5-7): EVEX instructions fault without it, even at 256 bits.
    const int avx512vnni = ((c >> 11) & 1) && ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1) && (lo & 0xE0) == 0xE0;
    unsigned a1 = 0, b1, c1, d1;
    const int avxvnni = __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 4) & 1);  // AVX-VNNI: leaf 7.1 EAX bit 4
    // Zen and Zen+ (family 17h, models below 30h) and Hygon's Dhyana (18h) split 256-bit ops.
    int half = (strcmp(vendor, "AuthenticAMD") == 0 && family == 0x17 && model < 0x30)
        || (strcmp(vendor, "HygonGenuine") == 0 && family == 0x18);
    return MOEK_CPU_AVX2_FMA | (half ? MOEK_CPU_AVX2_HALF_WIDTH : 0) | (avxvnni ? MOEK_CPU_AVX_VNNI : 0)
        | (avx512vnni ? MOEK_CPU_AVX512_VNNI : 0);
}
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
static uint32_t detect(void) {
    int dot = 0;
    size_t size = sizeof dot;
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &dot, &size, NULL, 0) != 0) dot = 0;
    return MOEK_CPU_NEON | (dot ? MOEK_CPU_NEON_DOTPROD : 0);
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
static uint32_t detect(void) {
    // HWCAP_ASIMDDP (bit 20 of AT_HWCAP): the kernel reports the dot-product instructions.
    return MOEK_CPU_NEON | ((getauxval(AT_HWCAP) & (1ul << 20)) ? MOEK_CPU_NEON_DOTPROD : 0);
}
#elif defined(__aarch64__)
static uint32_t detect(void) { return MOEK_CPU_NEON; }
#else
static uint32_t detect(void) { return 0; }
#endif

static _Atomic uint32_t detected = 0xFFFFFFFFu;
// Per thread, so a test that forces the scalar paths cannot change what other threads compute.
static _Thread_local uint32_t feature_mask = 0xFFFFFFFFu;
static _Thread_local uint32_t forced = 0;
// For every thread at once (`moe bench --ab-without`): a pool's workers see it between steps.
static _Atomic uint32_t process_mask = 0xFFFFFFFFu;

uint32_t moek_cpu_features(void) {
    uint32_t f = atomic_load_explicit(&detected, memory_order_relaxed);
    if (f == 0xFFFFFFFFu) {
        f = detect();
        atomic_store_explicit(&detected, f, memory_order_relaxed);
    }
    return (f | (forced & MOEK_CPU_AVX2_HALF_WIDTH & (f & MOEK_CPU_AVX2_FMA ? ~0u : 0u))) & feature_mask
        & atomic_load_explicit(&process_mask, memory_order_relaxed);
}

uint32_t moek_set_process_feature_mask(uint32_t mask) {
    return atomic_exchange_explicit(&process_mask, mask, memory_order_relaxed);
}

uint32_t moek_force_features(uint32_t bits) {
    uint32_t previous = forced;
    forced = bits;
    return previous;
}

uint32_t moek_set_feature_mask(uint32_t mask) {
    uint32_t previous = feature_mask;
    feature_mask = mask;
    return previous;
}
