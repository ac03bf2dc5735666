// Matrix-matrix products: a range of weight rows times several activation rows (the tokens of a
// prompt, or the tokens routed to one expert). Each weight row is read from memory once for all
// tokens, and Q4_0 nibbles are unpacked once per token tile instead of once per token.
//
// Every output equals the matching single dot product (moek_vec_dot_*) bit for bit: per (row,
// token) the kernels do the same integer lane sums, the same float multiply-adds in the same block
// order, and the same final horizontal sum. Only the loop order around them changes.
#include "MoEKernels.h"
#include "half.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MOEK_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

/// Blocks of 32 weights unpacked at a time (per row: 2 KiB of int8 and 64 scales, so four rows
/// stay in L1 while every token of the tile passes over them).
#define SEGMENT 64
/// Tokens whose accumulators are kept per pass over a segment.
#define TILE 8

static inline size_t token_row(const int32_t *index, size_t t) { return index ? (size_t)index[t] : t; }

// ---- generic loops: one weight row at a time, every token against it while it is in L1 ----

typedef float (*row_dot_q8_0)(const void *, const moek_block_q8_0 *, size_t);
typedef float (*row_dot_q8_K)(const void *, const moek_block_q8_K *, size_t);

static void gemm_loop_q8_0(row_dot_q8_0 dot, const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                           const moek_block_q8_0 *x, size_t xStride, const int32_t *xIndex,
                           size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    for (size_t r = 0; r < rows; r++) {
        for (size_t t = 0; t < tokens; t++) {
            y[token_row(yIndex, t) * yStride + r] = dot(w + r * rowBytes, x + token_row(xIndex, t) * xStride, n);
        }
    }
}

static void gemm_loop_q8_K(row_dot_q8_K dot, const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                           const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                           size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    for (size_t r = 0; r < rows; r++) {
        for (size_t t = 0; t < tokens; t++) {
            y[token_row(yIndex, t) * yStride + r] = dot(w + r * rowBytes, x + token_row(xIndex, t) * xStride, n);
        }
    }
}

#if defined(__x86_64__)
MOEK_AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Four rows at a time. Per segment the four rows' nibbles are unpacked to bytes (0..15) and their
// scales converted, once per tile of tokens; each token then runs the same lane arithmetic as
// moek_vec_dot4_q4_0_q8_0: unsigned nibbles times activations, minus the 8·Σa offset lanes.
MOEK_AVX2 static void gemm_q4_0_avx2(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                     const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                                     size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    const size_t nb = n / 32;
    _Alignas(32) uint8_t q[4][SEGMENT][32];
    float dw[4][SEGMENT];
    __m256 acc[TILE][4];
    const __m256i low = _mm256_set1_epi8(0xF), ones = _mm256_set1_epi16(1);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
            const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
            for (size_t i = 0; i < tt; i++) for (int k = 0; k < 4; k++) acc[i][k] = _mm256_setzero_ps();
            for (size_t s = 0; s < nb; s += SEGMENT) {
                const size_t sb = nb - s < SEGMENT ? nb - s : SEGMENT;
                for (int k = 0; k < 4; k++) {
                    const uint8_t *p = w0 + k * rowBytes + s * 18;
                    // The next four rows, as in moek_vec_dot4_q4_0_q8_0 (every line of them).
                    for (size_t line = 0; line < sb * 18; line += 64) _mm_prefetch((const char *)(p + 4 * rowBytes + line), _MM_HINT_T0);
                    for (size_t b = 0; b < sb; b++, p += 18) {
                        uint16_t dh; memcpy(&dh, p, 2);
                        dw[k][b] = _cvtsh_ss(dh);
                        __m128i packed = _mm_loadu_si128((const __m128i *)(p + 2));
                        _mm256_store_si256((__m256i *)q[k][b], _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), low));
                    }
                }
                for (size_t i = 0; i < tt; i++) {
                    const size_t xi = token_row(xIndex, t0 + i);
                    const moek_block_q8_0 *xb = x + xi * xStride + s;
                    const int32_t *ob = offsets + (xi * xStride + s) * 8;
                    __m256 a0 = acc[i][0], a1 = acc[i][1], a2 = acc[i][2], a3 = acc[i][3];
                    for (size_t b = 0; b < sb; b++) {
                        const __m256i a = _mm256_loadu_si256((const __m256i *)xb[b].qs);
                        const __m256i off = _mm256_loadu_si256((const __m256i *)(ob + 8 * b));
                        const float dx = _cvtsh_ss(xb[b].d);
#define MOEK_GEMM_Q4(k, accv) do { \
                            __m256i s32 = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)q[k][b]), a), ones), off); \
                            accv = _mm256_fmadd_ps(_mm256_set1_ps(dw[k][b] * dx), _mm256_cvtepi32_ps(s32), accv); } while (0)
                        MOEK_GEMM_Q4(0, a0); MOEK_GEMM_Q4(1, a1); MOEK_GEMM_Q4(2, a2); MOEK_GEMM_Q4(3, a3);
#undef MOEK_GEMM_Q4
                    }
                    acc[i][0] = a0; acc[i][1] = a1; acc[i][2] = a2; acc[i][3] = a3;
                }
            }
            for (size_t i = 0; i < tt; i++) {
                float *out = y + token_row(yIndex, t0 + i) * yStride + r;
                for (int k = 0; k < 4; k++) out[k] = hsum8(acc[i][k]);
            }
        }
    }
    if (r < rows) gemm_loop_q8_0(moek_vec_dot_q4_0_q8_0, w + r * rowBytes, rowBytes, rows - r, n, x, xStride, xIndex, tokens, y + r, yStride, yIndex);
}

// Four rows at a time; the int8 weights need no unpacking, so each token reads them straight from
// the segment (in L1 after the first token) with the sign trick of moek_vec_dot4_q8_0_q8_0.
MOEK_AVX2 static void gemm_q8_0_avx2(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                     const moek_block_q8_0 *x, size_t xStride, const int32_t *xIndex,
                                     size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    const size_t nb = n / 32;
    float dw[4][SEGMENT];
    __m256 acc[TILE][4];
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
            const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
            for (size_t i = 0; i < tt; i++) for (int k = 0; k < 4; k++) acc[i][k] = _mm256_setzero_ps();
            for (size_t s = 0; s < nb; s += SEGMENT) {
                const size_t sb = nb - s < SEGMENT ? nb - s : SEGMENT;
                for (int k = 0; k < 4; k++) {
                    const uint8_t *p = w0 + k * rowBytes + s * 34;
                    for (size_t line = 0; line < sb * 34; line += 64) _mm_prefetch((const char *)(p + 4 * rowBytes + line), _MM_HINT_T0);
                    for (size_t b = 0; b < sb; b++, p += 34) { uint16_t dh; memcpy(&dh, p, 2); dw[k][b] = _cvtsh_ss(dh); }
                }
                for (size_t i = 0; i < tt; i++) {
                    const moek_block_q8_0 *xb = x + token_row(xIndex, t0 + i) * xStride + s;
                    __m256 a0 = acc[i][0], a1 = acc[i][1], a2 = acc[i][2], a3 = acc[i][3];
                    const uint8_t *p = w0 + s * 34;
                    for (size_t b = 0; b < sb; b++, p += 34) {
                        const __m256i a = _mm256_loadu_si256((const __m256i *)xb[b].qs);
                        const float dx = _cvtsh_ss(xb[b].d);
#define MOEK_GEMM_Q8(k, accv) do { \
                            __m256i qv = _mm256_loadu_si256((const __m256i *)(p + (k) * rowBytes + 2)); \
                            __m256i dot16 = _mm256_maddubs_epi16(_mm256_sign_epi8(qv, qv), _mm256_sign_epi8(a, qv)); \
                            __m256 sum = _mm256_cvtepi32_ps(_mm256_madd_epi16(dot16, _mm256_set1_epi16(1))); \
                            accv = _mm256_fmadd_ps(_mm256_set1_ps(dw[k][b] * dx), sum, accv); } while (0)
                        MOEK_GEMM_Q8(0, a0); MOEK_GEMM_Q8(1, a1); MOEK_GEMM_Q8(2, a2); MOEK_GEMM_Q8(3, a3);
#undef MOEK_GEMM_Q8
                    }
                    acc[i][0] = a0; acc[i][1] = a1; acc[i][2] = a2; acc[i][3] = a3;
                }
            }
            for (size_t i = 0; i < tt; i++) {
                float *out = y + token_row(yIndex, t0 + i) * yStride + r;
                for (int k = 0; k < 4; k++) out[k] = hsum8(acc[i][k]);
            }
        }
    }
    if (r < rows) gemm_loop_q8_0(moek_vec_dot_q8_0_q8_0, w + r * rowBytes, rowBytes, rows - r, n, x, xStride, xIndex, tokens, y + r, yStride, yIndex);
}
#endif

// One token (an expert only one token chose, a batch of one): the decode path's four-row kernel,
// which streams with prefetch and needs no unpacking pass; the same numbers either way.
static void one_token_q8_0(int q4, const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                          const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                          float *y, size_t yStride, const int32_t *yIndex) {
    const size_t xi = token_row(xIndex, 0);
    const moek_block_q8_0 *xt = x + xi * xStride;
    float *out = y + token_row(yIndex, 0) * yStride;
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        if (q4) moek_vec_dot4_q4_0_q8_0(w + r * rowBytes, rowBytes, xt, offsets + xi * xStride * 8, n, out + r);
        else moek_vec_dot4_q8_0_q8_0(w + r * rowBytes, rowBytes, xt, n, out + r);
    }
    for (; r < rows; r++) out[r] = q4 ? moek_vec_dot_q4_0_q8_0(w + r * rowBytes, xt, n) : moek_vec_dot_q8_0_q8_0(w + r * rowBytes, xt, n);
}

void moek_gemm_q4_0_q8_0(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    if (tokens == 1) { one_token_q8_0(1, (const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, y, yStride, yIndex); return; }
#if defined(__x86_64__)
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) {
        gemm_q4_0_avx2((const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
#endif
    (void)offsets;
    gemm_loop_q8_0(moek_vec_dot_q4_0_q8_0, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q8_0_q8_0(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_0 *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    if (tokens == 1) { one_token_q8_0(0, (const uint8_t *)w, rowBytes, rows, n, x, NULL, xStride, xIndex, y, yStride, yIndex); return; }
#if defined(__x86_64__)
    if ((moek_cpu_features() & MOEK_CPU_AVX2_FMA) && tokens < 4) {
        // Two or three tokens: per four-row group, the decode kernel once per token while the rows
        // sit in L1 (faster here than the tile, whose separate pass over the scales does not pay
        // for itself until four tokens: 0.55 vs 0.67 ms for two tokens of a 1024x2048 matrix).
        const uint8_t *wb = (const uint8_t *)w;
        size_t r = 0;
        for (; r + 4 <= rows; r += 4) {
            for (size_t t = 0; t < tokens; t++) {
                float out[4];
                moek_vec_dot4_q8_0_q8_0(wb + r * rowBytes, rowBytes, x + token_row(xIndex, t) * xStride, n, out);
                float *yt = y + token_row(yIndex, t) * yStride + r;
                for (int k = 0; k < 4; k++) yt[k] = out[k];
            }
        }
        if (r < rows) gemm_loop_q8_0(moek_vec_dot_q8_0_q8_0, wb + r * rowBytes, rowBytes, rows - r, n, x, xStride, xIndex, tokens, y + r, yStride, yIndex);
        return;
    }
    if (moek_cpu_features() & MOEK_CPU_AVX2_FMA) {
        gemm_q8_0_avx2((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
#endif
    gemm_loop_q8_0(moek_vec_dot_q8_0_q8_0, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q4_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_loop_q8_K(moek_vec_dot_q4_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q5_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_loop_q8_K(moek_vec_dot_q5_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q6_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_loop_q8_K(moek_vec_dot_q6_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_f16(const uint16_t *w, size_t rows, size_t n, const uint16_t *x, size_t xStride, const int32_t *xIndex,
                   size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    for (size_t r = 0; r < rows; r++) {
        for (size_t t = 0; t < tokens; t++) {
            y[token_row(yIndex, t) * yStride + r] = moek_vec_dot_f16(w + r * n, x + token_row(xIndex, t) * xStride, n);
        }
    }
}

void moek_gemm_f32(const float *w, size_t rows, size_t n, const float *x, size_t xStride, const int32_t *xIndex,
                   size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    for (size_t r = 0; r < rows; r++) {
        for (size_t t = 0; t < tokens; t++) {
            y[token_row(yIndex, t) * yStride + r] = moek_vec_dot_f32(w + r * n, x + token_row(xIndex, t) * xStride, n);
        }
    }
}
