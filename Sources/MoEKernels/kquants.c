// K-quant dot products against Q8_K activations, and half-precision rows.
// Scalar for now; the SIMD paths come with the speed work, tested against these.
#include "MoEKernels.h"
#include "half.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MOEK_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

void moek_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = moek_float_to_half(src[i]);
}

void moek_quantize_row_q8_K(const float *x, moek_block_q8_K *y, size_t n) {
    for (size_t b = 0; b < n / 256; b++, x += 256) {
        float amax = 0, max = 0;
        for (int j = 0; j < 256; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0) { memset(&y[b], 0, sizeof y[b]); continue; }
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            int v = (int)nearbyintf(iscale * x[j]);
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

// The 6-bit scale and min of sub-block j from a Q4_K/Q5_K block's 12 packed bytes.
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) { *sc = q[j] & 63; *m = q[j + 4] & 63; }
    else { *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

float moek_vec_dot_q4_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
    const uint8_t *b = (const uint8_t *)w;
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += 144) {
        const float d = moek_half_at(b) * x[i].d, dmin = moek_half_at(b + 2) * x[i].d;
        const uint8_t *scales = b + 4, *q = b + 16;
        const int8_t *a = x[i].qs;
        int sumi = 0, summ = 0;
        for (int chunk = 0; chunk < 4; chunk++, q += 32, a += 64) {
            int sc1, m1, sc2, m2;
            scale_min_k4(2 * chunk, scales, &sc1, &m1);
            scale_min_k4(2 * chunk + 1, scales, &sc2, &m2);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) { s1 += (q[l] & 0xF) * a[l]; s2 += (q[l] >> 4) * a[l + 32]; }
            sumi += sc1 * s1 + sc2 * s2;
            summ += m1 * (x[i].bsums[4 * chunk] + x[i].bsums[4 * chunk + 1])
                  + m2 * (x[i].bsums[4 * chunk + 2] + x[i].bsums[4 * chunk + 3]);
        }
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

float moek_vec_dot_q5_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
    const uint8_t *b = (const uint8_t *)w;
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += 176) {
        const float d = moek_half_at(b) * x[i].d, dmin = moek_half_at(b + 2) * x[i].d;
        const uint8_t *scales = b + 4, *qh = b + 16, *q = b + 48;
        const int8_t *a = x[i].qs;
        int sumi = 0, summ = 0;
        for (int chunk = 0; chunk < 4; chunk++, q += 32, a += 64) {
            int sc1, m1, sc2, m2;
            scale_min_k4(2 * chunk, scales, &sc1, &m1);
            scale_min_k4(2 * chunk + 1, scales, &sc2, &m2);
            const uint8_t u1 = (uint8_t)(1u << (2 * chunk)), u2 = (uint8_t)(2u << (2 * chunk));
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += ((q[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) * a[l];
                s2 += ((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) * a[l + 32];
            }
            sumi += sc1 * s1 + sc2 * s2;
            summ += m1 * (x[i].bsums[4 * chunk] + x[i].bsums[4 * chunk + 1])
                  + m2 * (x[i].bsums[4 * chunk + 2] + x[i].bsums[4 * chunk + 3]);
        }
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

float moek_vec_dot_q6_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n) {
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
MOEK_AVX2 static float vec_dot_f16_avx2(const uint16_t *a, const uint16_t *b, size_t n) {
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256 y = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i)));
        acc = _mm256_fmadd_ps(x, y, acc);
    }
    __m128 s = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float sum = _mm_cvtss_f32(s);
    for (; i < n; i++) sum += moek_half_at((const uint8_t *)(a + i)) * moek_half_at((const uint8_t *)(b + i));
    return sum;
}
#endif

float moek_vec_dot_f16(const uint16_t *a, const uint16_t *b, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) return vec_dot_f16_avx2(a, b, n);
#endif
    return moek_vec_dot_f16_scalar(a, b, n);
}
