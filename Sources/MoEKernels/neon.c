// arm64 Advanced SIMD (NEON) paths, picked at run time by the dispatchers in quant.c and
// kquants.c when moek_cpu_features() reports MOEK_CPU_NEON.
//
// The quantized dot products compute each block's integer sum with NEON (exact) and finish it with
// the same scalar float operations, in the same order, as their scalar twins, so they return the
// scalar result bit for bit. Baseline ARMv8.0 only (no dot-product extension), so every arm64
// CPU runs them.
#include "neon.h"

#if defined(__aarch64__)
#include "half.h"
#include "kscales.h"
#include <arm_neon.h>
#include <string.h>

// The scalar twins are compiled without contraction too; a fused multiply-add would round
// differently.
#pragma STDC FP_CONTRACT OFF

// Σ q[i] * a[i] over 16 signed bytes (|q|, |a| <= 128: each int16 pair sum stays in range).
static inline int32x4_t dot16_s8(int8x16_t q, int8x16_t a) {
    int16x8_t p = vmull_s8(vget_low_s8(q), vget_low_s8(a));
    p = vmlal_s8(p, vget_high_s8(q), vget_high_s8(a));
    return vpaddlq_s16(p);
}

// Σ q[i] * a[i] for 32 elements given as two halves of 16.
static inline int32_t dot32_s8(int8x16_t q0, int8x16_t q1, const int8_t *a) {
    return vaddvq_s32(vaddq_s32(dot16_s8(q0, vld1q_s8(a)), dot16_s8(q1, vld1q_s8(a + 16))));
}

void moek_neon_quantize_row_q8_0(const float *x, moek_block_q8_0 *y, size_t n) {
    for (size_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        float32x4_t v[8], m = vdupq_n_f32(0);
        for (int k = 0; k < 8; k++) { v[k] = vld1q_f32(xb + 4 * k); m = vmaxq_f32(m, vabsq_f32(v[k])); }
        const float amax = vmaxvq_f32(m);
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        y[b].d = moek_float_to_half(d);
        for (int k = 0; k < 8; k += 2) {
            // Round to nearest, ties to even, as the scalar twin's nearbyintf.
            int32x4_t q0 = vcvtnq_s32_f32(vmulq_n_f32(v[k], id)), q1 = vcvtnq_s32_f32(vmulq_n_f32(v[k + 1], id));
            int16x8_t q16 = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
            vst1_s8(y[b].qs + 4 * k, vmovn_s16(q16));
        }
    }
}

float moek_neon_vec_dot_q8_0_q8_0(const void *w, const moek_block_q8_0 *x, size_t n) {
    const uint8_t *wb = (const uint8_t *)w;
    float sum = 0;
    for (size_t b = 0; b < n / 32; b++, wb += 34) {
        uint16_t dh; memcpy(&dh, wb, 2);
        const int32_t acc = dot32_s8(vld1q_s8((const int8_t *)(wb + 2)), vld1q_s8((const int8_t *)(wb + 18)), x[b].qs);
        sum += moek_half_to_float(dh) * moek_half_to_float(x[b].d) * (float)acc;
    }
    return sum;
}

float moek_neon_vec_dot_q4_0_q8_0(const void *w, const moek_block_q8_0 *x, size_t n) {
    const uint8_t *wb = (const uint8_t *)w;
    const uint8x16_t low = vdupq_n_u8(0xF);
    const int8x16_t eight = vdupq_n_s8(8);
    float sum = 0;
    for (size_t b = 0; b < n / 32; b++, wb += 18) {
        uint16_t dh; memcpy(&dh, wb, 2);
        const uint8x16_t packed = vld1q_u8(wb + 2);
        const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, low)), eight);
        const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), eight);
        const int32_t acc = dot32_s8(lo, hi, x[b].qs);
        sum += moek_half_to_float(dh) * moek_half_to_float(x[b].d) * (float)acc;
    }
    return sum;
}

// Q4_K and Q5_K share the layout of scales and mins (kscales.h); Q5_K adds a fifth bit per level from qh.
static inline float dot_k4(const uint8_t *w, const moek_block_q8_K *x, size_t n, size_t blockBytes, size_t qsOffset, int fifth) {
    const uint8_t *b = w;
    const uint8x16_t low = vdupq_n_u8(0xF), sixteen = vdupq_n_u8(16);
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += blockBytes) {
        const float d = moek_half_at(b) * x[i].d, dmin = moek_half_at(b + 2) * x[i].d;
        const uint8_t *scales = b + 4, *qh = b + 16, *q = b + qsOffset;
        const int8_t *a = x[i].qs;
        int sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++, q += 32, a += 64) {
            int sc1, sc2;
            summ += chunk_scales_k4(c, scales, x[i].bsums, &sc1, &sc2);
            const uint8x16_t q0 = vld1q_u8(q), q1 = vld1q_u8(q + 16);
            uint8x16_t l0 = vandq_u8(q0, low), l1 = vandq_u8(q1, low), h0 = vshrq_n_u8(q0, 4), h1 = vshrq_n_u8(q1, 4);
            if (fifth) {
                const uint8x16_t u1 = vdupq_n_u8((uint8_t)(1u << (2 * c))), u2 = vdupq_n_u8((uint8_t)(2u << (2 * c)));
                const uint8x16_t b0 = vld1q_u8(qh), b1 = vld1q_u8(qh + 16);
                l0 = vorrq_u8(l0, vandq_u8(vtstq_u8(b0, u1), sixteen));
                l1 = vorrq_u8(l1, vandq_u8(vtstq_u8(b1, u1), sixteen));
                h0 = vorrq_u8(h0, vandq_u8(vtstq_u8(b0, u2), sixteen));
                h1 = vorrq_u8(h1, vandq_u8(vtstq_u8(b1, u2), sixteen));
            }
            const int32_t s1 = dot32_s8(vreinterpretq_s8_u8(l0), vreinterpretq_s8_u8(l1), a);
            const int32_t s2 = dot32_s8(vreinterpretq_s8_u8(h0), vreinterpretq_s8_u8(h1), a + 32);
            sumi += sc1 * s1 + sc2 * s2;
        }
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

float moek_neon_vec_dot_q4_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
    return dot_k4((const uint8_t *)w, x, n, 144, 16, 0);
}

float moek_neon_vec_dot_q5_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
    return dot_k4((const uint8_t *)w, x, n, 176, 48, 1);
}

float moek_neon_vec_dot_q6_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
    const uint8_t *b = (const uint8_t *)w;
    const uint8x16_t low = vdupq_n_u8(0xF), three = vdupq_n_u8(3);
    const int8x16_t offset = vdupq_n_s8(32);
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const int8_t *a = x[i].qs;
        int sumi = 0;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, a += 128) {
            for (int g = 0; g < 2; g++) {  // elements 16g..16g+15 of each of the four quarters
                const uint8x16_t l0 = vld1q_u8(ql + 16 * g), l1 = vld1q_u8(ql + 32 + 16 * g), h = vld1q_u8(qh + 16 * g);
                const uint8x16_t u1 = vorrq_u8(vandq_u8(l0, low), vshlq_n_u8(vandq_u8(h, three), 4));
                const uint8x16_t u2 = vorrq_u8(vandq_u8(l1, low), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), three), 4));
                const uint8x16_t u3 = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), three), 4));
                const uint8x16_t u4 = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4));
                const int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(u1), offset), q2 = vsubq_s8(vreinterpretq_s8_u8(u2), offset);
                const int8x16_t q3 = vsubq_s8(vreinterpretq_s8_u8(u3), offset), q4 = vsubq_s8(vreinterpretq_s8_u8(u4), offset);
                sumi += sc[g] * vaddvq_s32(dot16_s8(q1, vld1q_s8(a + 16 * g)));
                sumi += sc[g + 2] * vaddvq_s32(dot16_s8(q2, vld1q_s8(a + 32 + 16 * g)));
                sumi += sc[g + 4] * vaddvq_s32(dot16_s8(q3, vld1q_s8(a + 64 + 16 * g)));
                sumi += sc[g + 6] * vaddvq_s32(dot16_s8(q4, vld1q_s8(a + 96 + 16 * g)));
            }
        }
        sum += moek_half_at(b + 208) * x[i].d * (float)sumi;
    }
    return sum;
}

float moek_neon_vec_dot_f32(const float *a, const float *b, size_t n) {
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

float moek_neon_vec_dot_f16(const uint16_t *a, const uint16_t *b, size_t n) {
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t x = vreinterpretq_f16_u16(vld1q_u16(a + i)), y = vreinterpretq_f16_u16(vld1q_u16(b + i));
        acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vget_low_f16(x)), vcvt_f32_f16(vget_low_f16(y)));
        acc1 = vfmaq_f32(acc1, vcvt_f32_f16(vget_high_f16(x)), vcvt_f32_f16(vget_high_f16(y)));
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) sum += moek_half_to_float(a[i]) * moek_half_to_float(b[i]);
    return sum;
}

void moek_neon_vec_mad_f16(float *y, float a, const uint16_t *x, size_t n) {
    const float32x4_t va = vdupq_n_f32(a);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i)));
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_f32(va, v)));  // multiply, then add: as the scalar twin
    }
    for (; i < n; i++) y[i] += a * moek_half_to_float(x[i]);
}
#endif
