// arm64 Advanced SIMD (NEON) paths, picked at run time by the dispatchers in quant.c and
// kquants.c when moek_cpu_features() reports MOEK_CPU_NEON.
//
// The quantized dot products compute each block's integer sum with NEON (exact) and finish it with
// the same scalar float operations, in the same order, as their scalar twins, so they return the
// scalar result bit for bit. They are compiled twice from neon_qdot.h: for baseline ARMv8.0
// (every arm64 CPU), and with the dot-product extension (SDOT: sixteen byte products summed into
// four int32 lanes in one instruction; Apple M1 and later, Cortex-A55/A76 and later, Graviton 2+),
// used where moek_cpu_features() reports MOEK_CPU_NEON_DOTPROD. Both give the same integers.
#include "neon.h"

#if defined(__aarch64__)
#include "half.h"
#include "softmax.h"
#include "kscales.h"
#include <arm_neon.h>
#include <string.h>

// The scalar twins are compiled without contraction too; a fused multiply-add would round
// differently.
#pragma STDC FP_CONTRACT OFF

// Baseline: Σ q[i] * a[i] over 16 signed bytes by widening multiplies (|q|, |a| <= 128: each
// int16 pair sum stays in range), four int32 lanes.
static inline int32x4_t dot16_base(int8x16_t q, int8x16_t a) {
    int16x8_t p = vmull_s8(vget_low_s8(q), vget_low_s8(a));
    p = vmlal_s8(p, vget_high_s8(q), vget_high_s8(a));
    return vpaddlq_s16(p);
}
#define MOEK_NEON_ATTR
#define MOEK_NEON_NAME(name) name##_base
#define MOEK_NEON_DOT16(q, a) dot16_base(q, a)
#include "neon_qdot.h"
#undef MOEK_NEON_ATTR
#undef MOEK_NEON_NAME
#undef MOEK_NEON_DOT16

// The dot-product extension: the same sums (in other lanes; only their total is used).
__attribute__((target("dotprod"))) static inline int32x4_t dot16_sdot(int8x16_t q, int8x16_t a) {
    return vdotq_s32(vdupq_n_s32(0), q, a);
}
#define MOEK_NEON_ATTR __attribute__((target("dotprod")))
#define MOEK_NEON_NAME(name) name##_sdot
#define MOEK_NEON_DOT16(q, a) dot16_sdot(q, a)
#include "neon_qdot.h"
#undef MOEK_NEON_ATTR
#undef MOEK_NEON_NAME
#undef MOEK_NEON_DOT16

static inline int has_sdot(void) { return (moek_cpu_features() & MOEK_CPU_NEON_DOTPROD) != 0; }

float moek_neon_vec_dot_q8_0_q8_0(const void *w, const moek_block_q8_0 *x, size_t n) {
    return has_sdot() ? dot_q8_0_sdot(w, x, n) : dot_q8_0_base(w, x, n);
}
float moek_neon_vec_dot_q4_0_q8_0(const void *w, const moek_block_q8_0 *x, size_t n) {
    return has_sdot() ? dot_q4_0_sdot(w, x, n) : dot_q4_0_base(w, x, n);
}
void moek_neon_vec_dot4_q8_0_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out) {
    if (has_sdot()) dot4_q8_0_sdot(w, stride, x, n, out); else dot4_q8_0_base(w, stride, x, n, out);
}
void moek_neon_vec_dot4_q4_0_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out) {
    if (has_sdot()) dot4_q4_0_sdot(w, stride, x, n, out); else dot4_q4_0_base(w, stride, x, n, out);
}
float moek_neon_vec_dot_q4_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
    return has_sdot() ? dot_k4_sdot((const uint8_t *)w, x, n, 144, 16, 0) : dot_k4_base((const uint8_t *)w, x, n, 144, 16, 0);
}
float moek_neon_vec_dot_q5_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
    return has_sdot() ? dot_k4_sdot((const uint8_t *)w, x, n, 176, 48, 1) : dot_k4_base((const uint8_t *)w, x, n, 176, 48, 1);
}
float moek_neon_vec_dot_q6_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
    return has_sdot() ? dot_q6_K_sdot(w, x, n) : dot_q6_K_base(w, x, n);
}
void moek_neon_vec_dot4_q4_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    if (has_sdot()) dot4_k4_sdot((const uint8_t *)w, stride, x, n, 144, 16, 0, out); else dot4_k4_base((const uint8_t *)w, stride, x, n, 144, 16, 0, out);
}
void moek_neon_vec_dot4_q5_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    if (has_sdot()) dot4_k4_sdot((const uint8_t *)w, stride, x, n, 176, 48, 1, out); else dot4_k4_base((const uint8_t *)w, stride, x, n, 176, 48, 1, out);
}
void moek_neon_vec_dot4_q6_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    if (has_sdot()) dot4_q6_K_sdot((const uint8_t *)w, stride, x, n, out); else dot4_q6_K_base((const uint8_t *)w, stride, x, n, out);
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

/// moek_exp_nonpositive on four lanes: the same operations, fused where it fuses.
static inline float32x4_t exp_nonpositive4(float32x4_t x) {
    const uint32x4_t keep = vcgeq_f32(x, vdupq_n_f32(MOEK_EXP_FLOOR));  // false for NaN
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(MOEK_LOG2E)));
    float32x4_t r = vfmaq_f32(x, n, vdupq_n_f32(-MOEK_LN2_HI));
    r = vfmaq_f32(r, n, vdupq_n_f32(-MOEK_LN2_LO));
    float32x4_t y = vdupq_n_f32(MOEK_EXP_P0);
    y = vfmaq_f32(vdupq_n_f32(MOEK_EXP_P1), y, r);
    y = vfmaq_f32(vdupq_n_f32(MOEK_EXP_P2), y, r);
    y = vfmaq_f32(vdupq_n_f32(MOEK_EXP_P3), y, r);
    y = vfmaq_f32(vdupq_n_f32(MOEK_EXP_P4), y, r);
    y = vfmaq_f32(vdupq_n_f32(MOEK_EXP_P5), y, r);
    y = vfmaq_f32(r, y, vmulq_f32(r, r));
    y = vaddq_f32(y, vdupq_n_f32(1.0f));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t v = vmulq_f32(y, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), keep));
}

void moek_neon_vec_exp_nonpositive(float *x, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, exp_nonpositive4(vld1q_f32(x + i)));
    for (; i < n; i++) x[i] = moek_exp_nonpositive(x[i]);
}

void moek_neon_swiglu(float *g, const float *u, size_t n) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = vld1q_f32(g + i);
        const float32x4_t e = exp_nonpositive4(vnegq_f32(vabsq_f32(x)));  // e^-|x|
        const float32x4_t num = vbslq_f32(vcltq_f32(x, vdupq_n_f32(0.0f)), e, one);
        const float32x4_t s = vdivq_f32(num, vaddq_f32(one, e));
        vst1q_f32(g + i, vmulq_f32(vmulq_f32(x, s), vld1q_f32(u + i)));
    }
    for (; i < n; i++) g[i] = moek_silu_mul(g[i], u[i]);
}

/// As the AVX2 form: the scalar twin's eight lanes (two float registers of four; four double
/// registers of two), the tail added to lanes i mod 8 after them.
void moek_neon_softmax_f16_round(float *p, size_t n) {
    if (n == 0) return;
    float32x4_t m0 = vdupq_n_f32(p[0]), m1 = m0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t a = vld1q_f32(p + i), b = vld1q_f32(p + i + 4);
        m0 = vbslq_f32(vcgtq_f32(a, m0), a, m0);
        m1 = vbslq_f32(vcgtq_f32(b, m1), b, m1);
    }
    float m[8];
    vst1q_f32(m, m0);
    vst1q_f32(m + 4, m1);
    const float max = moek_softmax_max(p, i, n, m);

    const float32x4_t vmax = vdupq_n_f32(max);
    float64x2_t s0 = vdupq_n_f64(0), s1 = s0, s2 = s0, s3 = s0;
    for (i = 0; i + 8 <= n; i += 8) {
        const float32x4_t a = exp_nonpositive4(vsubq_f32(vld1q_f32(p + i), vmax));
        const float32x4_t b = exp_nonpositive4(vsubq_f32(vld1q_f32(p + i + 4), vmax));
        vst1q_f32(p + i, a);
        vst1q_f32(p + i + 4, b);
        s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(a)));
        s1 = vaddq_f64(s1, vcvt_high_f64_f32(a));
        s2 = vaddq_f64(s2, vcvt_f64_f32(vget_low_f32(b)));
        s3 = vaddq_f64(s3, vcvt_high_f64_f32(b));
    }
    double acc[8];
    vst1q_f64(acc, s0);
    vst1q_f64(acc + 2, s1);
    vst1q_f64(acc + 4, s2);
    vst1q_f64(acc + 6, s3);
    const float inv = moek_softmax_inverse_sum(p, i, n, max, acc);
    const float32x4_t vinv = vdupq_n_f32(inv);
    for (i = 0; i + 4 <= n; i += 4) {
        const float16x4_t h = vcvt_f16_f32(vmulq_f32(vld1q_f32(p + i), vinv));
        vst1q_f32(p + i, vcvt_f32_f16(h));
    }
    for (; i < n; i++) p[i] = moek_half_to_float(moek_float_to_half(p[i] * inv));
}
#endif
