// K-quant dot products against Q8_K activations, and half-precision rows: scalar twins, and AVX2
// forms (one row, four rows) that equal them bit for bit; NEON forms are in neon.c.
#include "MoEKernels.h"
#include "half.h"
#include "neon.h"
#include "kscales.h"
#include "vnni.h"

// No fused multiply-adds from contraction: the AVX2 paths finish each block with the same scalar
// float operations as the scalar twins, and must round the same way to be bit-for-bit equal.
#pragma STDC FP_CONTRACT OFF
#include <math.h>
#include <string.h>

#include "avx2.h"
#include "softmax.h"

void moek_softmax_f16_round_scalar(float *p, size_t n) {
    if (n == 0) return;
    // Lane j of eight holds elements j, j + 8, ...: the order every vector form keeps.
    float m[8];
    for (int j = 0; j < 8; j++) m[j] = p[0];
    double acc[8] = {0};
    const float inv = moek_softmax_inverse_sum(p, 0, n, moek_softmax_max(p, 0, n, m), acc);
    for (size_t i = 0; i < n; i++) p[i] = moek_half_to_float(moek_float_to_half(p[i] * inv));
}

void moek_rms_norm(const float *x, float *y, size_t n, const float *weight, float eps) {
    double acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += (double)(x[i + j] * x[i + j]);
    for (; i < n; i++) acc[i % 8] += (double)(x[i] * x[i]);
    double sum = acc[0];
    for (int j = 1; j < 8; j++) sum += acc[j];
    const float scale = 1.0f / sqrtf((float)(sum / (double)(n == 0 ? 1 : n)) + eps);
    if (weight) {
        for (i = 0; i < n; i++) y[i] = x[i] * scale * weight[i];
    } else {
        for (i = 0; i < n; i++) y[i] = x[i] * scale;
    }
}

void moek_vec_exp_nonpositive_scalar(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = moek_exp_nonpositive(x[i]);
}

void moek_swiglu_scalar(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] = moek_silu_mul(g[i], u[i]);
}

void moek_f32_to_f16_scalar(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = moek_float_to_half(src[i]);
}

void moek_vec_mad_f16_scalar(float *y, float a, const uint16_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * moek_half_to_float(x[i]);
}

#if defined(__x86_64__)
MOEK_AVX2 static void f32_to_f16_f16c(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; i++) dst[i] = moek_float_to_half(src[i]);
}

// Multiply and add kept separate (no FMA) so the result equals the scalar twin's bit for bit.
MOEK_AVX2 static void vec_mad_f16_f16c(float *y, float a, const uint16_t *x, size_t n) {
    const __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(va, v)));
    }
    for (; i < n; i++) y[i] += a * moek_half_to_float(x[i]);
}

/// Four rows at a time: each group of eight y stays in a register for all four (one load and
/// one store instead of four), added to in row order with vec_mad_f16_f16c's operations.

/// How far ahead the attention kernels prefetch the cache: 16 positions, 4 KiB of a 128-wide
/// head, so the next page's walk and stream start before the loop gets there. A head's scan over
/// the context leaves the L2 behind (olmoe Q4_0 at 2048 positions, 2 threads: attention 12.1 ->
/// 10.5 ms per token; 32 positions ahead no better).
#define MOEK_KV_AHEAD_ROWS 16

/// Prefetches rows r0...r0+3 (n halves each, stride halves apart) MOEK_KV_AHEAD_ROWS ahead. Past
/// the end of the context the lines are unused positions of the same cache (or nothing: a
/// prefetch never faults).
MOEK_AVX2_INLINE void kv_prefetch4(const uint16_t *r0, size_t stride, size_t n) {
    const char *p = (const char *)(r0 + MOEK_KV_AHEAD_ROWS * stride);
    for (int k = 0; k < 4; k++)
        for (size_t b = 0; b < n * 2; b += 64) _mm_prefetch(p + k * stride * 2 + b, _MM_HINT_T0);
}
MOEK_AVX2 static void vec_mad_f16_rows_f16c(float *y, const float *w, const uint16_t *x, size_t stride, size_t n, size_t rows);

/// vec_mad_f16_rows_f16c sixteen elements at a time with AVX-512 (each element's products are
/// added one row after another, unfused, as there: the same bits), eight rows per pass over y.
__attribute__((target("avx2,fma,f16c,avx512f"))) static void vec_mad_f16_rows_avx512(float *y, const float *w, const uint16_t *x,
                                                                                     size_t stride, size_t n, size_t rows) {
    size_t p = 0;
    for (; p + 8 <= rows; p += 8) {
        const uint16_t *r = x + p * stride;
        __m512 a[8];
        for (int k = 0; k < 8; k++) a[k] = _mm512_set1_ps(w[p + k]);
        kv_prefetch4(r, stride, n);
        kv_prefetch4(r + 4 * stride, stride, n);
        for (size_t i = 0; i < n; i += 16) {
            __m512 acc = _mm512_loadu_ps(y + i);
            for (int k = 0; k < 8; k++)
                acc = _mm512_add_ps(acc, _mm512_mul_ps(a[k], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r + k * stride + i)))));
            _mm512_storeu_ps(y + i, acc);
        }
    }
    if (p < rows) vec_mad_f16_rows_f16c(y, w + p, x + p * stride, stride, n, rows - p);
}

MOEK_AVX2 static void vec_mad_f16_rows_f16c(float *y, const float *w, const uint16_t *x, size_t stride, size_t n, size_t rows) {
    size_t p = 0;
    for (; p + 4 <= rows; p += 4) {
        const uint16_t *r0 = x + p * stride, *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
        const __m256 a0 = _mm256_set1_ps(w[p]), a1 = _mm256_set1_ps(w[p + 1]), a2 = _mm256_set1_ps(w[p + 2]), a3 = _mm256_set1_ps(w[p + 3]);
        kv_prefetch4(r0, stride, n);
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 acc = _mm256_loadu_ps(y + i);
            acc = _mm256_add_ps(acc, _mm256_mul_ps(a0, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r0 + i)))));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(a1, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r1 + i)))));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(a2, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r2 + i)))));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(a3, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r3 + i)))));
            _mm256_storeu_ps(y + i, acc);
        }
        for (; i < n; i++) {
            y[i] += w[p] * moek_half_to_float(r0[i]);
            y[i] += w[p + 1] * moek_half_to_float(r1[i]);
            y[i] += w[p + 2] * moek_half_to_float(r2[i]);
            y[i] += w[p + 3] * moek_half_to_float(r3[i]);
        }
    }
    for (; p < rows; p++) vec_mad_f16_f16c(y, w[p], x + p * stride, n);
}

/// moek_exp_nonpositive on eight lanes: the same operations, fused where it fuses.
MOEK_AVX2_INLINE __m256 exp_nonpositive8(__m256 x) {
    const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(MOEK_EXP_FLOOR), _CMP_GE_OQ);  // false for NaN
    const __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(MOEK_LOG2E));
    const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-MOEK_LN2_HI), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-MOEK_LN2_LO), r);
    __m256 y = _mm256_set1_ps(MOEK_EXP_P0);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(MOEK_EXP_P1));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(MOEK_EXP_P2));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(MOEK_EXP_P3));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(MOEK_EXP_P4));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(MOEK_EXP_P5));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    // 2^n from n's integer: for NaN or x below the floor n is garbage, and the mask zeroes it.
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), keep);
}

MOEK_AVX2 static void vec_exp_nonpositive_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp_nonpositive8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = moek_exp_nonpositive(x[i]);
}

MOEK_AVX2 static void swiglu_avx2(float *g, const float *u, size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = exp_nonpositive8(_mm256_or_ps(x, sign));  // e^-|x|
        const __m256 num = _mm256_blendv_ps(one, e, _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
        const __m256 s = _mm256_div_ps(num, _mm256_add_ps(one, e));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(x, s), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = moek_silu_mul(g[i], u[i]);
}

/// The scalar twin's lanes: eight running maxima, eight double sums (lanes 0-3 and 4-7 of each
/// group of eight in two registers), the tail added to lanes i mod 8 after them.
MOEK_AVX2 static void softmax_f16_round_avx2(float *p, size_t n) {
    if (n == 0) return;
    __m256 vm = _mm256_set1_ps(p[0]);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(p + i);
        vm = _mm256_blendv_ps(vm, v, _mm256_cmp_ps(v, vm, _CMP_GT_OQ));
    }
    float m[8];
    _mm256_storeu_ps(m, vm);
    const float max = moek_softmax_max(p, i, n, m);

    const __m256 vmax = _mm256_set1_ps(max);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = exp_nonpositive8(_mm256_sub_ps(_mm256_loadu_ps(p + i), vmax));
        _mm256_storeu_ps(p + i, e);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double acc[8];
    _mm256_storeu_pd(acc, lo);
    _mm256_storeu_pd(acc + 4, hi);
    const float inv = moek_softmax_inverse_sum(p, i, n, max, acc);
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(p + i), vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_ps(p + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) p[i] = moek_half_to_float(moek_float_to_half(p[i] * inv));
}
#endif

void moek_vec_exp_nonpositive(float *x, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { vec_exp_nonpositive_avx2(x, n); return; }
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) { moek_neon_vec_exp_nonpositive(x, n); return; }
#endif
    moek_vec_exp_nonpositive_scalar(x, n);
}

void moek_swiglu(float *g, const float *u, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { swiglu_avx2(g, u, n); return; }
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) { moek_neon_swiglu(g, u, n); return; }
#endif
    moek_swiglu_scalar(g, u, n);
}

void moek_softmax_f16_round(float *p, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { softmax_f16_round_avx2(p, n); return; }
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) { moek_neon_softmax_f16_round(p, n); return; }
#endif
    moek_softmax_f16_round_scalar(p, n);
}

void moek_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { f32_to_f16_f16c(src, dst, n); return; }
#endif
    moek_f32_to_f16_scalar(src, dst, n);
}

void moek_vec_mad_f16(float *y, float a, const uint16_t *x, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { vec_mad_f16_f16c(y, a, x, n); return; }
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) { moek_neon_vec_mad_f16(y, a, x, n); return; }
#endif
    moek_vec_mad_f16_scalar(y, a, x, n);
}

void moek_vec_mad_f16_rows(float *y, const float *w, const uint16_t *x, size_t stride, size_t n, size_t rows) {
#if defined(__x86_64__)
    const uint32_t f = moek_cpu_features();
    if ((f & MOEK_CPU_AVX512_VNNI) && n % 16 == 0) { vec_mad_f16_rows_avx512(y, w, x, stride, n, rows); return; }
    if (f & MOEK_CPU_AVX2_FMA) { vec_mad_f16_rows_f16c(y, w, x, stride, n, rows); return; }
#endif
    for (size_t p = 0; p < rows; p++) moek_vec_mad_f16(y, w[p], x + p * stride, n);
}

#if defined(__x86_64__)
/// moek_quantize_row_q8_K_scalar with AVX2, the same bits: the largest magnitude by a vector max
/// (NaN lanes lose, as they fail the scalar's `>`), its first element by a compare, the same
/// product and round to nearest even, NaN to 0, saturating packs (the scalar clamps at 127; -128
/// cannot occur), and the 16-element sums by byte-pair and word-pair adds.
MOEK_AVX2 static void quantize_row_q8_K_avx2(const float *x, moek_block_q8_K *y, size_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (size_t b = 0; b < n / 256; b++, x += 256) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 32; k++) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), m);
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0) { memset(&y[b], 0, sizeof y[b]); continue; }
        const __m256 target = _mm256_set1_ps(amax);
        int first = 0;
        for (int k = 0; k < 32; k++) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), target, _CMP_EQ_OQ));
            if (hit) { first = 8 * k + __builtin_ctz((unsigned)hit); break; }
        }
        const float iscale = -127.0f / x[first];
        const __m256 mul = _mm256_set1_ps(iscale);
        for (int k = 0; k < 8; k++) {  // 32 levels at a time
            __m256i q[4];
            for (int j = 0; j < 4; j++) {
                const __m256 v = _mm256_round_ps(_mm256_mul_ps(mul, _mm256_loadu_ps(x + 32 * k + 8 * j)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[j] = _mm256_cvtps_epi32(_mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)));  // NaN -> 0, as the scalar
            }
            // The packs interleave 128-bit halves; one dword permute restores the order.
            const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])), order);
            _mm256_storeu_si256((__m256i *)(y[b].qs + 32 * k), bytes);
            // Sums of elements 32k..32k+15 and 32k+16..: pairs, then quads, then two hadds per half.
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, bytes), ones16);
            s = _mm256_hadd_epi32(s, s);
            s = _mm256_hadd_epi32(s, s);
            y[b].bsums[2 * k] = (int16_t)_mm256_extract_epi32(s, 0);
            y[b].bsums[2 * k + 1] = (int16_t)_mm256_extract_epi32(s, 4);
        }
        y[b].d = 1 / iscale;
    }
}
#endif

void moek_quantize_row_q8_K(const float *x, moek_block_q8_K *y, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { quantize_row_q8_K_avx2(x, y, n); return; }
#endif
    moek_quantize_row_q8_K_scalar(x, y, n);
}

void moek_quantize_row_q8_K_scalar(const float *x, moek_block_q8_K *y, size_t n) {
    for (size_t b = 0; b < n / 256; b++, x += 256) {
        float amax = 0, max = 0;
        for (int j = 0; j < 256; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0) { memset(&y[b], 0, sizeof y[b]); continue; }
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            const float r = nearbyintf(iscale * x[j]);
            const int v = r == r ? (int)r : 0;  // a NaN input level is 0 (converting it is undefined)
            y[b].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += y[b].qs[16 * j + i];
            y[b].bsums[j] = (int16_t)sum;
        }
        y[b].d = 1 / iscale;
    }
}

float moek_vec_dot_q4_K_q8_K_scalar(const void *w, const moek_block_q8_K *x, size_t n) {
    const uint8_t *b = (const uint8_t *)w;
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += 144) {
        const float d = moek_half_at(b) * x[i].d, dmin = moek_half_at(b + 2) * x[i].d;
        const uint8_t *scales = b + 4, *q = b + 16;
        const int8_t *a = x[i].qs;
        int sumi = 0, summ = 0;
        for (int chunk = 0; chunk < 4; chunk++, q += 32, a += 64) {
            int sc1, sc2;
            summ += chunk_scales_k4(chunk, scales, x[i].bsums, &sc1, &sc2);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) { s1 += (q[l] & 0xF) * a[l]; s2 += (q[l] >> 4) * a[l + 32]; }
            sumi += sc1 * s1 + sc2 * s2;
        }
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

float moek_vec_dot_q5_K_q8_K_scalar(const void *w, const moek_block_q8_K *x, size_t n) {
    const uint8_t *b = (const uint8_t *)w;
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += 176) {
        const float d = moek_half_at(b) * x[i].d, dmin = moek_half_at(b + 2) * x[i].d;
        const uint8_t *scales = b + 4, *qh = b + 16, *q = b + 48;
        const int8_t *a = x[i].qs;
        int sumi = 0, summ = 0;
        for (int chunk = 0; chunk < 4; chunk++, q += 32, a += 64) {
            int sc1, sc2;
            summ += chunk_scales_k4(chunk, scales, x[i].bsums, &sc1, &sc2);
            const uint8_t u1 = (uint8_t)(1u << (2 * chunk)), u2 = (uint8_t)(2u << (2 * chunk));
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += ((q[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) * a[l];
                s2 += ((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) * a[l + 32];
            }
            sumi += sc1 * s1 + sc2 * s2;
        }
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

float moek_vec_dot_q6_K_q8_K_scalar(const void *w, const moek_block_q8_K *x, size_t n) {
    const uint8_t *b = (const uint8_t *)w;
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const int8_t *a = x[i].qs;
        int sumi = 0;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, a += 128) {
            int s[8] = {0};
            for (int l = 0; l < 32; l++) {
                const int g = l / 16;
                const int q1 = (int)((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                s[g] += q1 * a[l];
                s[g + 2] += q2 * a[l + 32];
                s[g + 4] += q3 * a[l + 64];
                s[g + 6] += q4 * a[l + 96];
            }
            for (int k = 0; k < 8; k++) sumi += sc[k] * s[k];
        }
        sum += moek_half_at(b + 208) * x[i].d * (float)sumi;
    }
    return sum;
}

float moek_vec_dot_f16_scalar(const uint16_t *a, const uint16_t *b, size_t n) {
    float sum = 0;
    for (size_t i = 0; i < n; i++) sum += moek_half_at((const uint8_t *)(a + i)) * moek_half_at((const uint8_t *)(b + i));
    return sum;
}

#if defined(__x86_64__)
/// The end of an F16 dot product: acc's eight lanes summed, then elements i..<n one by one.
MOEK_AVX2_INLINE float dot_f16_finish(__m256 acc, const uint16_t *a, const uint16_t *b, size_t i, size_t n) {
    __m128 s = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float sum = _mm_cvtss_f32(s);
    for (; i < n; i++) sum += moek_half_at((const uint8_t *)(a + i)) * moek_half_at((const uint8_t *)(b + i));
    return sum;
}

MOEK_AVX2 static float vec_dot_f16_avx2(const uint16_t *a, const uint16_t *b, size_t n) {
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256 y = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i)));
        acc = _mm256_fmadd_ps(x, y, acc);
    }
    return dot_f16_finish(acc, a, b, i, n);
}

/// Four rows at a time, each with vec_dot_f16_avx2's operations: four independent chains of fused
/// multiply-adds where one row had a single one waiting on each previous result.
/// The eight row accumulators of vec_dot_f16_rows_avx2's eight-row pass folded to eight sums (row
/// order), times `scale`, stored at `out`.
MOEK_AVX2_INLINE void dot_f16_finish8(const __m256 *c, float scale, float *out) {
    // Lanes j + (j+4) of each row, two rows to a vector: [B0 | B1], [B2 | B3], ...
    __m256 b[4];
    for (int k = 0; k < 4; k++)
        b[k] = _mm256_add_ps(_mm256_permute2f128_ps(c[2 * k], c[2 * k + 1], 0x20), _mm256_permute2f128_ps(c[2 * k], c[2 * k + 1], 0x31));
    // Then (0 + 2, 1 + 3) within each row: [C0, C2 | C1, C3] and [C4, C6 | C5, C7].
    const __m256 y0 = _mm256_add_ps(_mm256_shuffle_ps(b[0], b[1], 0x44), _mm256_shuffle_ps(b[0], b[1], 0xEE));
    const __m256 y1 = _mm256_add_ps(_mm256_shuffle_ps(b[2], b[3], 0x44), _mm256_shuffle_ps(b[2], b[3], 0xEE));
    // Then 0 + 1: rows [0, 2, 4, 6 | 1, 3, 5, 7], put in order.
    const __m256 sums = _mm256_add_ps(_mm256_shuffle_ps(y0, y1, 0x88), _mm256_shuffle_ps(y0, y1, 0xDD));
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_permutevar8x32_ps(sums, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)), _mm256_set1_ps(scale)));
}

MOEK_AVX2 static void vec_dot_f16_rows_avx2(const uint16_t *a, size_t stride, const uint16_t *x, size_t n, size_t rows,
                                            float scale, float *out) {
    size_t p = 0;
    if (n % 8 == 0) {
        // Eight rows at a time, whole vectors only: the eight rows' lane sums are folded together
        // (permutes and shuffles that pair the same lanes as dot_f16_finish's tree), so the adds
        // are the one-row kernel's, in its order, with no horizontal sum per row.
        for (; p + 8 <= rows; p += 8) {
            const uint16_t *r = a + p * stride;
            __m256 c[8];
            for (int k = 0; k < 8; k++) c[k] = _mm256_setzero_ps();
            kv_prefetch4(r, stride, n);
            kv_prefetch4(r + 4 * stride, stride, n);
            for (size_t i = 0; i < n; i += 8) {
                const __m256 q = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
                for (int k = 0; k < 8; k++)
                    c[k] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r + k * stride + i))), q, c[k]);
            }
            dot_f16_finish8(c, scale, out + p);
        }
    }
    for (; p + 4 <= rows; p += 4) {
        const uint16_t *r0 = a + p * stride, *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        kv_prefetch4(r0, stride, n);
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 q = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
            c0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r0 + i))), q, c0);
            c1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r1 + i))), q, c1);
            c2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r2 + i))), q, c2);
            c3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r3 + i))), q, c3);
        }
        out[p] = dot_f16_finish(c0, r0, x, i, n) * scale;
        out[p + 1] = dot_f16_finish(c1, r1, x, i, n) * scale;
        out[p + 2] = dot_f16_finish(c2, r2, x, i, n) * scale;
        out[p + 3] = dot_f16_finish(c3, r3, x, i, n) * scale;
    }
    for (; p < rows; p++) out[p] = vec_dot_f16_avx2(a + p * stride, x, n) * scale;
}
#endif

float moek_vec_dot_f16(const uint16_t *a, const uint16_t *b, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) return vec_dot_f16_avx2(a, b, n);
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) return moek_neon_vec_dot_f16(a, b, n);
#endif
    return moek_vec_dot_f16_scalar(a, b, n);
}

void moek_vec_dot_f16_rows(const uint16_t *a, size_t stride, const uint16_t *x, size_t n, size_t rows, float scale, float *out) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { vec_dot_f16_rows_avx2(a, stride, x, n, rows, scale, out); return; }
#endif
    for (size_t p = 0; p < rows; p++) out[p] = moek_vec_dot_f16(a + p * stride, x, n) * scale;
}

#if defined(__x86_64__)
// ---- AVX2: one row, and four rows at a time (decode) ----
//
// Each row's integer sums for a block stay in vectors (k4_row, q6_row). One row: they are summed
// horizontally and the block finished with the scalar twin's float operations. Four rows, as the
// Q4_0/Q8_0 four-row kernels (quant.c): the activation block is shared by four rows, horizontal
// adds fold the four rows into one lane each, and one set of float operations finishes the block
// for all four — again the scalar twins' own sequence. Either way the results equal the scalar
// ones bit for bit. The four-row kernels prefetch the next four rows as they go.

/// Q4_K/Q5_K, one row of one block: the scaled level sums (8 lanes) and the minimums times the
/// activation sums of their sub-blocks (4 lanes); both add up to the scalar code's sumi and summ.
/// Per 64-element chunk, the low nibbles (sub-block 2c) and high nibbles (2c+1) go through maddubs
/// unsigned and their int16 pair sums are scaled by the 6-bit sub-block scales in one madd. Q5_K
/// adds each level's fifth bit from qh (bit 2c for the low nibbles, 2c+1 for the high ones) at 16.
/// `fifth_bit` is a constant in each caller, so the branch folds away.
MOEK_AVX2 __attribute__((always_inline)) static inline void k4_row(const uint8_t *b, const int8_t *a, __m128i pairs,
                                                                   size_t qs_offset, int fifth_bit, __m256i *sumi, __m128i *summ) {
    const __m256i low = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    const uint64_t sc = k4_unpack(b + 4, 0);
    *summ = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)k4_unpack(b + 4, 1))), pairs);
    const uint8_t *q = b + qs_offset;
    const __m256i high = fifth_bit ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++, q += 32, a += 64) {
        const __m256i bits = _mm256_loadu_si256((const __m256i *)q);
        __m256i qlo = _mm256_and_si256(bits, low), qhi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low);
        if (fifth_bit) {
            qlo = _mm256_or_si256(qlo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * c), one), 4));
            qhi = _mm256_or_si256(qhi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * c + 1), one), 4));
        }
        const __m256i plo = _mm256_maddubs_epi16(qlo, _mm256_loadu_si256((const __m256i *)a));
        const __m256i phi = _mm256_maddubs_epi16(qhi, _mm256_loadu_si256((const __m256i *)(a + 32)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(plo, _mm256_set1_epi16((int16_t)((sc >> (16 * c)) & 0xFF))));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(phi, _mm256_set1_epi16((int16_t)((sc >> (16 * c + 8)) & 0xFF))));
    }
    *sumi = acc;
}


MOEK_AVX2 __attribute__((always_inline)) static inline void vec_dot4_k4_avx2(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n,
                                                                             size_t block_bytes, size_t qs_offset, int fifth_bit, float *out) {
    __m128 acc = _mm_setzero_ps();
    for (size_t i = 0; i < n / 256; i++) {
        const uint8_t *b = w + i * block_bytes;
        moek_prefetch_span(w, 4 * stride, 4 * stride, i, n / 256);  // the next four rows
        // Activation sums per 32-element sub-block (the minimums' weights).
        const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x[i].bsums), _mm_loadu_si128((const __m128i *)(x[i].bsums + 8)));
        __m256i si[4];
        __m128i sm[4];
        for (int k = 0; k < 4; k++) k4_row(b + k * stride, x[i].qs, pairs, qs_offset, fifth_bit, &si[k], &sm[k]);
        const __m128i sumi = moek_fold4_256(si[0], si[1], si[2], si[3]), summ = moek_fold4(sm[0], sm[1], sm[2], sm[3]);
        const __m128 xd = _mm_set1_ps(x[i].d);
        const __m128 d = _mm_mul_ps(moek_scales4(b, stride), xd), dmin = _mm_mul_ps(moek_scales4(b + 2, stride), xd);
        // sum += d * (float)sumi - dmin * (float)summ, per row
        acc = _mm_add_ps(acc, _mm_sub_ps(_mm_mul_ps(d, _mm_cvtepi32_ps(sumi)), _mm_mul_ps(dmin, _mm_cvtepi32_ps(summ))));
    }
    _mm_storeu_ps(out, acc);
}

/// Q6_K, one row of one block: the scaled level sums (8 lanes, levels 0..63 through maddubs
/// unsigned, each 16-element group's int8 scale applied in a madd: lower 128-bit lane first group,
/// upper lane second) and the scales times the activation sums of their 16-element groups (8
/// lanes), whose total times 32 is the offset of the levels.
MOEK_AVX2 __attribute__((always_inline)) static inline void q6_row(const uint8_t *b, const moek_block_q8_K *x, __m256i bsums,
                                                                   __m256i *sumi, __m256i *offset) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const int8_t *a = x->qs;
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
    *offset = _mm256_madd_epi16(scales16, bsums);
    __m256i acc = _mm256_setzero_si256();
    for (int half = 0; half < 2; half++, ql += 64, qh += 32, a += 128) {
        // This half's eight scales (int16) in both 128-bit lanes, so that group g's scale vector
        // (scale 2g in the lower lane, 2g+1 in the upper) is one byte shuffle instead of two
        // broadcasts from memory and an insert (decode kernel 246-249 -> 208-216 µs per matrix
        // streamed, 215-220 -> 185-195 in L2).
        const __m256i halfScales = half ? _mm256_permute2x128_si256(scales16, scales16, 0x11) : _mm256_permute2x128_si256(scales16, scales16, 0x00);
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
        __m256i qs[4];
        moek_q6_levels(l0, l1, h, qs);
        for (int g = 0; g < 4; g++) {
            const __m256i p = _mm256_maddubs_epi16(qs[g], _mm256_loadu_si256((const __m256i *)(a + 32 * g)));
            // Bytes 2e, 2e+1 of each lane: int16 element e (2g below, 2g+1 above).
            const __m256i pick = _mm256_set_m128i(_mm_set1_epi16((short)(0x0100 + 0x0202 * (2 * g + 1))), _mm_set1_epi16((short)(0x0100 + 0x0202 * (2 * g))));
            const __m256i scale = _mm256_shuffle_epi8(halfScales, pick);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scale));
        }
    }
    *sumi = acc;
}

MOEK_AVX2 static void vec_dot4_q6_K_q8_K_avx2(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    __m128 acc = _mm_setzero_ps();
    for (size_t i = 0; i < n / 256; i++) {
        const uint8_t *b = w + i * 210;
        moek_prefetch_span(w, 4 * stride, 4 * stride, i, n / 256);  // the next four rows
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)x[i].bsums);
        __m256i si[4], off[4];
        for (int k = 0; k < 4; k++) q6_row(b + k * stride, &x[i], bsums, &si[k], &off[k]);
        const __m128i offset = moek_fold4_256(off[0], off[1], off[2], off[3]);
        const __m128i sumi = _mm_sub_epi32(moek_fold4_256(si[0], si[1], si[2], si[3]), _mm_slli_epi32(offset, 5));
        // sum += d * x.d * (float)(sumi - 32 * offset), per row
        const __m128 d = _mm_mul_ps(moek_scales4(b + 208, stride), _mm_set1_ps(x[i].d));
        acc = _mm_add_ps(acc, _mm_mul_ps(d, _mm_cvtepi32_ps(sumi)));
    }
    _mm_storeu_ps(out, acc);
}

MOEK_AVX2 static inline int32_t hsum_i32x4(__m128i s) {
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}
MOEK_AVX2 static inline int32_t hsum_i32x8(__m256i v) {
    return hsum_i32x4(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

MOEK_AVX2 __attribute__((always_inline)) static inline float vec_dot_k4_avx2(const uint8_t *b, const moek_block_q8_K *x, size_t n,
                                                                             size_t block_bytes, size_t qs_offset, int fifth_bit) {
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += block_bytes) {
        const float d = moek_half_at(b) * x[i].d, dmin = moek_half_at(b + 2) * x[i].d;
        const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x[i].bsums), _mm_loadu_si128((const __m128i *)(x[i].bsums + 8)));
        __m256i sumi;
        __m128i summ;
        k4_row(b, x[i].qs, pairs, qs_offset, fifth_bit, &sumi, &summ);
        sum += d * (float)hsum_i32x8(sumi) - dmin * (float)hsum_i32x4(summ);
    }
    return sum;
}

MOEK_AVX2 static float vec_dot_q4_K_q8_K_avx2(const void *w, const moek_block_q8_K *x, size_t n) {
    return vec_dot_k4_avx2((const uint8_t *)w, x, n, 144, 16, 0);
}

MOEK_AVX2 static float vec_dot_q5_K_q8_K_avx2(const void *w, const moek_block_q8_K *x, size_t n) {
    return vec_dot_k4_avx2((const uint8_t *)w, x, n, 176, 48, 1);
}

MOEK_AVX2 static float vec_dot_q6_K_q8_K_avx2(const void *w, const moek_block_q8_K *x, size_t n) {
    const uint8_t *b = (const uint8_t *)w;
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += 210) {
        __m256i sumi, offset;
        q6_row(b, &x[i], _mm256_loadu_si256((const __m256i *)x[i].bsums), &sumi, &offset);
        sum += moek_half_at(b + 208) * x[i].d * (float)(hsum_i32x8(sumi) - 32 * hsum_i32x8(offset));
    }
    return sum;
}

/// Q4_K, four rows at a time, the way the Q4_0 four-row kernel works: each 32-element sub-block is
/// summed per row in 16 bits (two maddubs and an add: four products per lane), the four rows'
/// vectors are folded into two int16 lanes per row (moek_fold4_16), and one madd against the
/// rows' 6-bit sub-block scales — picked by a byte shuffle into the lanes of their rows — gives
/// every row's scaled sub-block sum. One multiply per 16 products plus one per sub-block instead
/// of k4_row's madd per maddubs (Zen 1, one thread, 1024x2048: 133 -> 106 us per matrix from L2,
/// 144 -> 125 streamed). Levels up to 15 keep the fold within int16; Q5_K's 31 would not, so it
/// stays on vec_dot4_k4_avx2. `wide`: one 256-bit maddubs per 32 bytes (CPUs with full-width
/// AVX2) instead of two 128-bit ones; the same int16 sums either way.
MOEK_AVX2 __attribute__((always_inline)) static inline void vec_dot4_q4_K_fold(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, int wide, float *out) {
    __m128 acc = _mm_setzero_ps();
    const __m128i low = _mm_set1_epi8(0xF);
    const __m256i low256 = _mm256_set1_epi8(0xF);
    // Byte shuffles that put sub-block j's scale of rows 0, 1 (from A) and 2, 3 (from B) into both
    // int16 lanes of their row: index j or 8 + j, zero bytes above (an index with bit 7 set).
    const __m128i pickA = _mm_setr_epi8(0, -128, 0, -128, 8, -128, 8, -128, -128, -128, -128, -128, -128, -128, -128, -128);
    const __m128i pickB = _mm_setr_epi8(-128, -128, -128, -128, -128, -128, -128, -128, 0, -128, 0, -128, 8, -128, 8, -128);
    for (size_t i = 0; i < n / 256; i++) {
        const uint8_t *b = w + i * 144;
        moek_prefetch_span(w, 4 * stride, 4 * stride, i, n / 256);  // the next four rows
        const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x[i].bsums), _mm_loadu_si128((const __m128i *)(x[i].bsums + 8)));
        uint64_t sc[4];
        __m128i sm[4];
        for (int k = 0; k < 4; k++) {
            sc[k] = k4_unpack(b + k * stride + 4, 0);
            sm[k] = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)k4_unpack(b + k * stride + 4, 1))), pairs);
        }
        const __m128i scA = _mm_set_epi64x((long long)sc[1], (long long)sc[0]), scB = _mm_set_epi64x((long long)sc[3], (long long)sc[2]);
        __m128i sumi = _mm_setzero_si128();
        const int8_t *a = x[i].qs;
        for (int c = 0; c < 4; c++, a += 64) {
            __m128i lo[4], hi[4];
            for (int k = 0; k < 4; k++) {
                const uint8_t *q = b + k * stride + 16 + 32 * c;
                if (wide) {
                    const __m256i bits = _mm256_loadu_si256((const __m256i *)q);
                    lo[k] = moek_q4_sums16_256(_mm256_and_si256(bits, low256), _mm256_loadu_si256((const __m256i *)a));
                    hi[k] = moek_q4_sums16_256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), low256), _mm256_loadu_si256((const __m256i *)(a + 32)));
                } else {
                    const __m128i b0 = _mm_loadu_si128((const __m128i *)q), b1 = _mm_loadu_si128((const __m128i *)(q + 16));
                    lo[k] = _mm_add_epi16(_mm_maddubs_epi16(_mm_and_si128(b0, low), _mm_loadu_si128((const __m128i *)a)),
                                          _mm_maddubs_epi16(_mm_and_si128(b1, low), _mm_loadu_si128((const __m128i *)(a + 16))));
                    hi[k] = _mm_add_epi16(_mm_maddubs_epi16(_mm_and_si128(_mm_srli_epi16(b0, 4), low), _mm_loadu_si128((const __m128i *)(a + 32))),
                                          _mm_maddubs_epi16(_mm_and_si128(_mm_srli_epi16(b1, 4), low), _mm_loadu_si128((const __m128i *)(a + 48))));
                }
            }
            const __m128i j0 = _mm_set1_epi8((char)(2 * c)), j1 = _mm_set1_epi8((char)(2 * c + 1));
            const __m128i s0 = _mm_or_si128(_mm_shuffle_epi8(scA, _mm_add_epi8(pickA, j0)), _mm_shuffle_epi8(scB, _mm_add_epi8(pickB, j0)));
            const __m128i s1 = _mm_or_si128(_mm_shuffle_epi8(scA, _mm_add_epi8(pickA, j1)), _mm_shuffle_epi8(scB, _mm_add_epi8(pickB, j1)));
            sumi = _mm_add_epi32(sumi, _mm_add_epi32(_mm_madd_epi16(moek_fold4_16(lo[0], lo[1], lo[2], lo[3]), s0),
                                                     _mm_madd_epi16(moek_fold4_16(hi[0], hi[1], hi[2], hi[3]), s1)));
        }
        const __m128i summ = moek_fold4(sm[0], sm[1], sm[2], sm[3]);
        const __m128 xd = _mm_set1_ps(x[i].d);
        const __m128 d = _mm_mul_ps(moek_scales4(b, stride), xd), dmin = _mm_mul_ps(moek_scales4(b + 2, stride), xd);
        // sum += d * (float)sumi - dmin * (float)summ, per row
        acc = _mm_add_ps(acc, _mm_sub_ps(_mm_mul_ps(d, _mm_cvtepi32_ps(sumi)), _mm_mul_ps(dmin, _mm_cvtepi32_ps(summ))));
    }
    _mm_storeu_ps(out, acc);
}

MOEK_AVX2 static void vec_dot4_q4_K_q8_K_avx2(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    vec_dot4_q4_K_fold(w, stride, x, n, 1, out);
}
MOEK_AVX2 static void vec_dot4_q4_K_q8_K_avx2_128(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    vec_dot4_q4_K_fold(w, stride, x, n, 0, out);
}
MOEK_AVX2 static void vec_dot4_q5_K_q8_K_avx2(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    vec_dot4_k4_avx2(w, stride, x, n, 176, 48, 1, out);
}
#endif

void moek_vec_dot4_q4_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
#if defined(__x86_64__)
    const uint32_t f = moek_cpu_features();
    if (f & MOEK_CPU_AVX2_HALF_WIDTH) { vec_dot4_q4_K_q8_K_avx2_128((const uint8_t *)w, stride, x, n, out); return; }
    if (moek_has_vnni(f)) { moek_vnni_dot4_q4_K(w, stride, x, n, out); return; }
    if (f & MOEK_CPU_AVX2_FMA) { vec_dot4_q4_K_q8_K_avx2((const uint8_t *)w, stride, x, n, out); return; }
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) { moek_neon_vec_dot4_q4_K_q8_K(w, stride, x, n, out); return; }
#endif
    for (int k = 0; k < 4; k++) out[k] = moek_vec_dot_q4_K_q8_K((const uint8_t *)w + k * stride, x, n);
}

void moek_vec_dot4_q5_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
#if defined(__x86_64__)
    if (moek_has_vnni(moek_cpu_features())) { moek_vnni_dot4_q5_K(w, stride, x, n, out); return; }
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { vec_dot4_q5_K_q8_K_avx2((const uint8_t *)w, stride, x, n, out); return; }
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) { moek_neon_vec_dot4_q5_K_q8_K(w, stride, x, n, out); return; }
#endif
    for (int k = 0; k < 4; k++) out[k] = moek_vec_dot_q5_K_q8_K((const uint8_t *)w + k * stride, x, n);
}

void moek_vec_dot4_q6_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
#if defined(__x86_64__)
    if (moek_has_vnni(moek_cpu_features())) { moek_vnni_dot4_q6_K(w, stride, x, n, out); return; }
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { vec_dot4_q6_K_q8_K_avx2((const uint8_t *)w, stride, x, n, out); return; }
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) { moek_neon_vec_dot4_q6_K_q8_K(w, stride, x, n, out); return; }
#endif
    for (int k = 0; k < 4; k++) out[k] = moek_vec_dot_q6_K_q8_K((const uint8_t *)w + k * stride, x, n);
}

float moek_vec_dot_q4_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) return vec_dot_q4_K_q8_K_avx2(w, x, n);
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) return moek_neon_vec_dot_q4_K_q8_K(w, x, n);
#endif
    return moek_vec_dot_q4_K_q8_K_scalar(w, x, n);
}

float moek_vec_dot_q5_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) return vec_dot_q5_K_q8_K_avx2(w, x, n);
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) return moek_neon_vec_dot_q5_K_q8_K(w, x, n);
#endif
    return moek_vec_dot_q5_K_q8_K_scalar(w, x, n);
}

float moek_vec_dot_q6_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) return vec_dot_q6_K_q8_K_avx2(w, x, n);
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) return moek_neon_vec_dot_q6_K_q8_K(w, x, n);
#endif
    return moek_vec_dot_q6_K_q8_K_scalar(w, x, n);
}
