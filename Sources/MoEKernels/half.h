// IEEE half precision conversions shared by the kernels (portable, exact; not part of the API).
#ifndef MOE_KERNELS_HALF_H
#define MOE_KERNELS_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/// The finish of one Q4_0/Q8_0 block, shared by every path: sum + scale · float(blockSum) as one
/// fused multiply-add (scale = weight scale · activation scale). The SIMD kernels use the same
/// fused operation lane by lane (moek_finish4, vfmaq_f32), so every path rounds alike.
static inline float moek_finish1(float sum, float scale, int32_t blockSum) {
    return fmaf(scale, (float)blockSum, sum);
}

static inline float moek_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    union { uint32_t u; float f; } v;
    if (exp == 0) { float m = (float)man * 0x1p-24f; return sign ? -m : m; }
    v.u = exp == 31 ? (sign | 0x7F800000u | (man << 13)) : (sign | ((exp + 112) << 23) | (man << 13));
    return v.f;
}

// Round to nearest, ties to even; overflow gives infinity.
static inline uint16_t moek_float_to_half(float f) {
    union { float f; uint32_t u; } v = { f };
    uint32_t bits = v.u, man = bits & 0x7FFFFF;
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    int exp = (int)((bits >> 23) & 0xFF);
    if (exp == 0xFF) return sign | 0x7C00 | (man ? (0x200 | (man >> 13)) : 0);
    int e = exp - 127 + 15;
    if (e >= 31) return sign | 0x7C00;
    if (e <= 0) {
        if (e < -10) return sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e), r = man >> shift, rest = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (r & 1))) r++;
        return sign | (uint16_t)r;
    }
    uint32_t r = ((uint32_t)e << 10) | (man >> 13), rest = man & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) r++;
    return sign | (uint16_t)r;
}

// A half stored at an unaligned address in a weight block.
static inline float moek_half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return moek_half_to_float(h);
}

#endif
