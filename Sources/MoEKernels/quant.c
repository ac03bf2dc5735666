#include "MoEKernels.h"
#include "half.h"
#include "vnni.h"
#include "neon.h"
#include "tiles.h"
#include <math.h>
#include <string.h>

#include "avx2.h"
// The SIMD kernels (AVX2 here and in gemm.c, NEON in neon.c) finish each block with the same float
// operations as the scalar code and must round the same way: no fused multiply-adds from
// contraction, in the scalar code or in the AVX2 functions (compiled with FMA available). Where a
// kernel wants a fused multiply-add it says so with an intrinsic (or fmaf, as the Q4_0/Q8_0 block
// finish moek_finish1 in half.h does, on every path).
#pragma STDC FP_CONTRACT OFF

void moek_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = moek_half_to_float(src[i]);
}

// ---- activation quantization ----

// Activations are quantized as ggml's x86 kernel does (so results match llama.cpp on x86):
// id = 127 / max|x| and rounding to nearest, ties to even. (ggml's scalar reference, used for
// weights in files, divides by d and rounds ties away from zero; the two differ in rare last bits.)
void moek_quantize_row_q8_0_scalar(const float *x, moek_block_q8_0 *y, size_t n) {
    for (size_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(xb[i]));
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        y[b].d = moek_float_to_half(d);
        for (int i = 0; i < 32; i++) y[b].qs[i] = (int8_t)nearbyintf(xb[i] * id);
    }
}

#if defined(__x86_64__)
MOEK_AVX2 static void quantize_row_q8_0_avx2(const float *x, moek_block_q8_0 *y, size_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) { v[k] = _mm256_loadu_ps(xb + 8 * k); m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k])); }
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        y[b].d = moek_float_to_half(d);
        const __m256 mul = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            const __m256 r = _mm256_round_ps(_mm256_mul_ps(v[k], mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q[k] = _mm256_cvtps_epi32(_mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q)));  // NaN -> 0, as before
        }
        // Levels are within -127..127, so the saturating packs keep them; they interleave the
        // 128-bit halves, which one dword permute puts back in order.
        const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)y[b].qs, _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
}
#endif

void moek_quantize_row_q8_0(const float *x, moek_block_q8_0 *y, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { quantize_row_q8_0_avx2(x, y, n); return; }
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) { moek_neon_quantize_row_q8_0(x, y, n); return; }
#endif
    moek_quantize_row_q8_0_scalar(x, y, n);
}

// ---- dot products ----

float moek_vec_dot_q8_0_q8_0_scalar(const void *w, const moek_block_q8_0 *x, size_t n) {
    const uint8_t *wb = (const uint8_t *)w;
    float sum = 0;
    for (size_t b = 0; b < n / 32; b++, wb += 34) {
        uint16_t dh; memcpy(&dh, wb, 2);
        int32_t acc = 0;
        for (int i = 0; i < 32; i++) acc += (int32_t)(int8_t)wb[2 + i] * x[b].qs[i];
        sum = moek_finish1(sum, moek_half_to_float(dh) * moek_half_to_float(x[b].d), acc);
    }
    return sum;
}

float moek_vec_dot_q4_0_q8_0_scalar(const void *w, const moek_block_q8_0 *x, size_t n) {
    const uint8_t *wb = (const uint8_t *)w;
    float sum = 0;
    for (size_t b = 0; b < n / 32; b++, wb += 18) {
        uint16_t dh; memcpy(&dh, wb, 2);
        int32_t acc = 0;
        for (int i = 0; i < 16; i++) {
            acc += ((wb[2 + i] & 0xF) - 8) * x[b].qs[i];
            acc += ((wb[2 + i] >> 4) - 8) * x[b].qs[i + 16];
        }
        sum = moek_finish1(sum, moek_half_to_float(dh) * moek_half_to_float(x[b].d), acc);
    }
    return sum;
}

float moek_vec_dot_f32_scalar(const float *a, const float *b, size_t n) {
    float sum = 0;
    for (size_t i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}

#if defined(__x86_64__)
MOEK_AVX2 static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Q4_0 and Q8_0 kernels finish every block exactly as the scalar code does: the block's integer
// sum, converted once, times (weight scale · activation scale), added to one float per row in
// block order by one fused multiply-add (moek_finish1). SIMD only computes the integer sums
// (exact in any order), so every path here (128- or 256-bit, one row or four, the matrix-matrix
// tiles of gemm.c, NEON) gives the scalar bits.
MOEK_AVX2 static inline int32_t hsum_i32(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(v);
}

MOEK_AVX2 static float vec_dot_q8_0_q8_0_avx2(const void *w, const moek_block_q8_0 *x, size_t n) {
    const uint8_t *wb = (const uint8_t *)w;
    float sum = 0;
    for (size_t b = 0; b < n / 32; b++, wb += 34) {
        uint16_t dh; memcpy(&dh, wb, 2);
        const __m256i q = _mm256_loadu_si256((const __m256i *)(wb + 2)), a = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i s = moek_q8_sums256(q, a);
        const int32_t acc = hsum_i32(_mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)));
        sum = moek_finish1(sum, moek_h2f(dh) * moek_h2f(x[b].d), acc);
    }
    return sum;
}

MOEK_AVX2 static float vec_dot_q4_0_q8_0_avx2(const void *w, const moek_block_q8_0 *x, size_t n) {
    const uint8_t *wb = (const uint8_t *)w;
    float sum = 0;
    const __m128i low = _mm_set1_epi8(0xF), eight = _mm_set1_epi8(8);
    for (size_t b = 0; b < n / 32; b++, wb += 18) {
        uint16_t dh; memcpy(&dh, wb, 2);
        const __m128i packed = _mm_loadu_si128((const __m128i *)(wb + 2));
        const __m128i qlo = _mm_sub_epi8(_mm_and_si128(packed, low), eight), qhi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(packed, 4), low), eight);
        const __m128i alo = _mm_loadu_si128((const __m128i *)x[b].qs), ahi = _mm_loadu_si128((const __m128i *)(x[b].qs + 16));
        const __m128i s = _mm_add_epi32(moek_q8_sums128(qlo, alo), moek_q8_sums128(qhi, ahi));
        sum = moek_finish1(sum, moek_h2f(dh) * moek_h2f(x[b].d), hsum_i32(s));
    }
    return sum;
}

MOEK_AVX2 static float vec_dot_f32_avx2(const float *a, const float *b, size_t n) {
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float sum = hsum(acc);
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}
#endif

#if defined(__x86_64__)
/// Four rows (`n` apart) · `count` (1-3, a constant after inlining) tokens: twelve independent
/// chains at most, each vec_dot_f32_avx2's own (one eight-lane fused multiply-add chain, hsum,
/// then the tail), so the same bits; one row's chain alone waits on every previous result.
MOEK_AVX2 __attribute__((always_inline)) static inline void dot_f32_rows4(const float *w, size_t n, const float *const *x, int count,
                                                                          float *const *y) {
    __m256 acc[4][3];
    for (int k = 0; k < 4; k++)
        for (int t = 0; t < count; t++) acc[k][t] = _mm256_setzero_ps();
    const size_t whole = n / 8 * 8;
    for (size_t i = 0; i < whole; i += 8) {
        __m256 a[3];
        for (int t = 0; t < count; t++) a[t] = _mm256_loadu_ps(x[t] + i);
        for (int k = 0; k < 4; k++) {
            const __m256 wk = _mm256_loadu_ps(w + k * n + i);
            for (int t = 0; t < count; t++) acc[k][t] = _mm256_fmadd_ps(wk, a[t], acc[k][t]);
        }
    }
    for (int k = 0; k < 4; k++)
        for (int t = 0; t < count; t++) {
            float sum = hsum(acc[k][t]);
            for (size_t i = whole; i < n; i++) sum += w[k * n + i] * x[t][i];
            y[t][k] = sum;
        }
}

MOEK_AVX2 static void gemm_f32_avx2(const float *w, size_t rows, size_t n, const float *x, size_t xStride, const int32_t *xIndex,
                                    size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        for (size_t t = 0; t < tokens; t += 3) {
            const int count = tokens - t < 3 ? (int)(tokens - t) : 3;
            const float *xs[3];
            float *ys[3];
            for (int j = 0; j < count; j++) {
                xs[j] = x + token_row(xIndex, t + j) * xStride;
                ys[j] = y + token_row(yIndex, t + j) * yStride + r;
            }
            if (count == 3) dot_f32_rows4(w + r * n, n, xs, 3, ys);
            else if (count == 2) dot_f32_rows4(w + r * n, n, xs, 2, ys);
            else dot_f32_rows4(w + r * n, n, xs, 1, ys);
        }
    }
    for (; r < rows; r++)
        for (size_t t = 0; t < tokens; t++)
            y[token_row(yIndex, t) * yStride + r] = vec_dot_f32_avx2(w + r * n, x + token_row(xIndex, t) * xStride, n);
}

MOEK_AVX2 static float sum_f32_avx2(const float *x, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += x[i];
    return s;
}
#endif

#if defined(__x86_64__)
// Decode streams each matrix from memory once; the hardware prefetcher alone leaves the core
// waiting on loads (most samples land just after them). Each row therefore also prefetches the
// same position four rows on, which is where the next call (the next four rows) will read: on
// olmoe Q4_0 decode, 8.84 t/s without, 9.48 at 512 bytes ahead, 11.28 at four rows ahead, 12.2
// prefetching every other block (36 bytes, so still every line) instead of every block; eight rows
// ahead or into L2 only were no better.
//
// Four rows per pass: the activation block and its scale are loaded once for all four rows. Per
// block, each row's integer products are summed into a vector, the four vectors are folded by
// unpacks and adds into one lane per row, and a single convert / multiply / fused multiply-add
// finishes all four rows (the scalar finish, four lanes wide). Q4_0 nibbles stay unsigned (0..15)
// for maddubs and the block's 8·Σa (moek_q8_0_offsets) is subtracted from the folded sums.
//
// Each kernel comes in 256-bit and 128-bit form; the 128-bit one is for CPUs that split 256-bit
// instructions in two (MOEK_CPU_AVX2_HALF_WIDTH), where it also needs no cross-lane insert for the
// nibbles. Both give the same bits. On this project's Zen 1 machine, a 1024x2048 matrix from L1/L2
// took 0.21 ms (Q4_0) / 0.28 ms (Q8_0) with the earlier per-lane float accumulators, 0.15 / 0.20
// ms with this finish.

MOEK_AVX2 static void vec_dot4_q4_0_q8_0_avx2(const uint8_t *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out) {
    __m128 acc = _mm_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0xF);
    for (size_t b = 0; b < n / 32; b++) {
        const __m256i a = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const uint8_t *r = w + b * 18;
        if (!(b & 1)) moek_prefetch_span(w, 4 * stride, 4 * stride, b / 2, (n / 32 + 1) / 2);  // the next four rows
        __m128i s[4];
        for (int k = 0; k < 4; k++) {
            const __m128i packed = _mm_loadu_si128((const __m128i *)(r + k * stride + 2));
            s[k] = moek_q4_sums16_256(_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), low), a);
        }
        const __m128i sums = _mm_sub_epi32(moek_fold4_q4(s[0], s[1], s[2], s[3]), _mm_set1_epi32(offsets[b]));
        acc = moek_finish4(acc, moek_scales4(r, stride), moek_h2f4(&x[b].d), sums);
    }
    _mm_storeu_ps(out, acc);
}

/// One Q4_0 block of four rows (at r, r + stride, ...) against activation block xb: the four
/// integer sums, 8·Σa already subtracted. 128-bit operations only.
MOEK_AVX2_INLINE __m128i q4_0_sums4_128(const uint8_t *r, size_t stride, const moek_block_q8_0 *xb, int32_t offset) {
    const __m128i low = _mm_set1_epi8(0xF);
    const __m128i alo = _mm_loadu_si128((const __m128i *)xb->qs), ahi = _mm_loadu_si128((const __m128i *)(xb->qs + 16));
    __m128i s[4];
    for (int k = 0; k < 4; k++) {
        const __m128i packed = _mm_loadu_si128((const __m128i *)(r + k * stride + 2));
        s[k] = moek_q4_sums16(_mm_and_si128(packed, low), _mm_and_si128(_mm_srli_epi16(packed, 4), low), alo, ahi);
    }
    return _mm_sub_epi32(moek_fold4_q4(s[0], s[1], s[2], s[3]), _mm_set1_epi32(offset));
}

// Two blocks per pass: both blocks' integer sums are computed before either is finished, which
// lets the two dependency chains overlap and halves the loop overhead and the prefetch test
// (Zen 1, 1024x2048 Q4_0 matrix in L2: 126.6 -> 122.1 us; streamed on two threads: 145 -> 142;
// olmoe Q4_0 decode 19.47 -> 20.2 t/s). The Q8_0 kernel gained nothing from the same change.
MOEK_AVX2 static void vec_dot4_q4_0_q8_0_avx2_128(const uint8_t *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out) {
    __m128 acc = _mm_setzero_ps();
    const size_t blocks = n / 32;
    size_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        const uint8_t *r = w + b * 18;
        moek_prefetch_span(w, 4 * stride, 4 * stride, b / 2, blocks / 2);
        const __m128i s0 = q4_0_sums4_128(r, stride, &x[b], offsets[b]);
        const __m128i s1 = q4_0_sums4_128(r + 18, stride, &x[b + 1], offsets[b + 1]);
        acc = moek_finish4(acc, moek_scales4(r, stride), moek_h2f4(&x[b].d), s0);
        acc = moek_finish4(acc, moek_scales4(r + 18, stride), moek_h2f4(&x[b + 1].d), s1);
    }
    if (b < blocks) {
        const uint8_t *r = w + b * 18;
        acc = moek_finish4(acc, moek_scales4(r, stride), moek_h2f4(&x[b].d), q4_0_sums4_128(r, stride, &x[b], offsets[b]));
    }
    _mm_storeu_ps(out, acc);
}

MOEK_AVX2 static void vec_dot4_q8_0_q8_0_avx2(const uint8_t *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out) {
    __m128 acc = _mm_setzero_ps();
    for (size_t b = 0; b < n / 32; b++) {
        const __m256i a = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const uint8_t *r = w + b * 34;
        moek_prefetch_span(w, 4 * stride, 4 * stride, b, n / 32);
        __m256i s[4];
        for (int k = 0; k < 4; k++) {
            const uint8_t *p = r + k * stride;
            s[k] = moek_q8_sums256(_mm256_loadu_si256((const __m256i *)(p + 2)), a);
        }
        acc = moek_finish4(acc, moek_scales4(r, stride), moek_h2f4(&x[b].d), moek_fold4_256(s[0], s[1], s[2], s[3]));
    }
    _mm_storeu_ps(out, acc);
}

MOEK_AVX2 static void vec_dot4_q8_0_q8_0_avx2_128(const uint8_t *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out) {
    __m128 acc = _mm_setzero_ps();
    for (size_t b = 0; b < n / 32; b++) {
        const __m128i alo = _mm_loadu_si128((const __m128i *)x[b].qs), ahi = _mm_loadu_si128((const __m128i *)(x[b].qs + 16));
        const uint8_t *r = w + b * 34;
        moek_prefetch_span(w, 4 * stride, 4 * stride, b, n / 32);
        __m128i s[4];
        for (int k = 0; k < 4; k++) {
            const uint8_t *p = r + k * stride;
            s[k] = _mm_add_epi32(moek_q8_sums128(_mm_loadu_si128((const __m128i *)(p + 2)), alo), moek_q8_sums128(_mm_loadu_si128((const __m128i *)(p + 18)), ahi));
        }
        acc = moek_finish4(acc, moek_scales4(r, stride), moek_h2f4(&x[b].d), moek_fold4(s[0], s[1], s[2], s[3]));
    }
    _mm_storeu_ps(out, acc);
}
#endif

void moek_q8_0_offsets(const moek_block_q8_0 *x, size_t n, int32_t *offsets) {
    for (size_t b = 0; b < n / 32; b++) {
        int32_t s = 0;
        for (int i = 0; i < 32; i++) s += x[b].qs[i];
        offsets[b] = 8 * s;
    }
}

void moek_vec_dot4_q4_0_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out) {
#if defined(__x86_64__)
    const uint32_t f = moek_cpu_features();
    if (f & MOEK_CPU_AVX2_HALF_WIDTH) { vec_dot4_q4_0_q8_0_avx2_128((const uint8_t *)w, stride, x, offsets, n, out); return; }
    if (moek_has_vnni(f)) { moek_vnni_dot4_q4_0(w, stride, x, offsets, n, out); return; }
    if (f & MOEK_CPU_AVX2_FMA) { vec_dot4_q4_0_q8_0_avx2((const uint8_t *)w, stride, x, offsets, n, out); return; }
#endif
    (void)offsets;  // elsewhere the levels are made signed instead
#if defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) { moek_neon_vec_dot4_q4_0_q8_0(w, stride, x, n, out); return; }
#endif
    for (int k = 0; k < 4; k++) out[k] = moek_vec_dot_q4_0_q8_0((const uint8_t *)w + k * stride, x, n);
}

void moek_vec_dot8_q4_0_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out) {
#if defined(__x86_64__)
    if (moek_has_vnni(moek_cpu_features())) { moek_vnni_dot8_q4_0(w, stride, x, offsets, n, out); return; }
#endif
    moek_vec_dot4_q4_0_q8_0(w, stride, x, offsets, n, out);
    moek_vec_dot4_q4_0_q8_0((const uint8_t *)w + 4 * stride, stride, x, offsets, n, out + 4);
}

void moek_vec_dot4_q8_0_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out) {
#if defined(__x86_64__)
    const uint32_t f = moek_cpu_features();
    if (f & MOEK_CPU_AVX2_HALF_WIDTH) { vec_dot4_q8_0_q8_0_avx2_128((const uint8_t *)w, stride, x, n, out); return; }
    if (moek_has_vnni(f)) { moek_vnni_dot4_q8_0(w, stride, x, n, out); return; }
    if (f & MOEK_CPU_AVX2_FMA) { vec_dot4_q8_0_q8_0_avx2((const uint8_t *)w, stride, x, n, out); return; }
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) { moek_neon_vec_dot4_q8_0_q8_0(w, stride, x, n, out); return; }
#endif
    for (int k = 0; k < 4; k++) out[k] = moek_vec_dot_q8_0_q8_0((const uint8_t *)w + k * stride, x, n);
}

float moek_vec_dot_q8_0_q8_0(const void *w, const moek_block_q8_0 *x, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) return vec_dot_q8_0_q8_0_avx2(w, x, n);
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) return moek_neon_vec_dot_q8_0_q8_0(w, x, n);
#endif
    return moek_vec_dot_q8_0_q8_0_scalar(w, x, n);
}

float moek_vec_dot_q4_0_q8_0(const void *w, const moek_block_q8_0 *x, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) return vec_dot_q4_0_q8_0_avx2(w, x, n);
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) return moek_neon_vec_dot_q4_0_q8_0(w, x, n);
#endif
    return moek_vec_dot_q4_0_q8_0_scalar(w, x, n);
}

float moek_vec_dot_f32(const float *a, const float *b, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) return vec_dot_f32_avx2(a, b, n);
#elif defined(__aarch64__)
    if (moek_cpu_features() & MOEK_CPU_NEON) return moek_neon_vec_dot_f32(a, b, n);
#endif
    return moek_vec_dot_f32_scalar(a, b, n);
}

void moek_gemm_f32(const float *w, size_t rows, size_t n, const float *x, size_t xStride, const int32_t *xIndex,
                   size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) { gemm_f32_avx2(w, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex); return; }
#endif
    for (size_t r = 0; r < rows; r++)
        for (size_t t = 0; t < tokens; t++)
            y[token_row(yIndex, t) * yStride + r] = moek_vec_dot_f32(w + r * n, x + token_row(xIndex, t) * xStride, n);
}

float moek_sum_f32(const float *x, size_t n) {
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) return sum_f32_avx2(x, n);
#endif
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) { s0 += x[i]; s1 += x[i + 1]; s2 += x[i + 2]; s3 += x[i + 3]; }
    for (; i < n; i++) s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}
