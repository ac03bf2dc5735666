// Matrix-matrix products: a range of weight rows times several activation rows (the tokens of a
// prompt, or the tokens routed to one expert). Each weight row is read from memory once for all
// tokens, and Q4_0 nibbles are unpacked once per token tile instead of once per token.
//
// Every output equals the matching single dot product (moek_vec_dot_*) bit for bit: the Q4_0/Q8_0
// tiles finish each block as the scalar code does (avx2.h), and the other types call the single
// dot products themselves. Only the loop order around them changes.
#include "MoEKernels.h"
#include "half.h"
#include <string.h>

#include "avx2.h"

#pragma STDC FP_CONTRACT OFF  // the block finish must round as the scalar code does (see quant.c)

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

typedef void (*rows4_dot_q8_K)(const void *, size_t, const moek_block_q8_K *, size_t, float *);

// K-quants: four rows at a time through the four-row decode kernel, once per token while the rows
// sit in L1 (each row is read from memory once for all tokens; the unpacking is per token).
static void gemm_rows4_q8_K(rows4_dot_q8_K dot4, row_dot_q8_K dot, const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                            const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                            size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        for (size_t t = 0; t < tokens; t++) {
            float out[4];
            dot4(w + r * rowBytes, rowBytes, x + token_row(xIndex, t) * xStride, n, out);
            float *yt = y + token_row(yIndex, t) * yStride + r;
            for (int k = 0; k < 4; k++) yt[k] = out[k];
        }
    }
    if (r < rows) gemm_loop_q8_K(dot, w + r * rowBytes, rowBytes, rows - r, n, x, xStride, xIndex, tokens, y + r, yStride, yIndex);
}

#if defined(__x86_64__)
// Four rows at a time, with the decode kernels' block finish (avx2.h): per token and block, the
// four rows' integer sums folded to one lane per row, one convert / multiply / add for all four.
// Each tile keeps one float vector per token, which is also the four outputs.
//
// On CPUs that split 256-bit units (MOEK_CPU_AVX2_HALF_WIDTH, this project's Zen 1 machine) the
// four-row decode kernel run once per token on L1-hot rows beats the tiles for small token counts
// (1024x2048 matrix, one thread: Q4_0 0.29 vs 0.41 ms for 2 tokens, 9.5 vs 9.9 ms for 64; Q8_0
// 0.90 vs 1.07-1.19 ms for 4), but once the tokens' activations outgrow L2 the tiles win (Q4_0,
// 256 tokens: 40-45 vs 41-49 ms; a 256-token prompt decoded 6-14% slower without them). So
// there the tiles take only groups of at least HALF_WIDTH_TILE_TOKENS tokens.
//
// Q4_0: per segment the four rows' nibbles are unpacked to bytes (0..15, elements 0-15 then
// 16-31) and their scales converted, once per tile of tokens; the block's 8·Σa offset is
// subtracted from the folded sums as in moek_vec_dot4_q4_0_q8_0. `wide` picks 256- or 128-bit
// integer arithmetic (MOEK_CPU_AVX2_HALF_WIDTH); both give the same bits.
MOEK_AVX2_INLINE void gemm_q4_0_tiles(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                      const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                                      size_t tokens, float *y, size_t yStride, const int32_t *yIndex, int wide) {
    const size_t nb = n / 32;
    _Alignas(32) uint8_t q[4][SEGMENT][32];
    _Alignas(16) float dw[SEGMENT][4];
    __m128 acc[TILE];
    const __m128i low = _mm_set1_epi8(0xF);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
            const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
            for (size_t i = 0; i < tt; i++) acc[i] = _mm_setzero_ps();
            for (size_t s = 0; s < nb; s += SEGMENT) {
                const size_t sb = nb - s < SEGMENT ? nb - s : SEGMENT;
                for (int k = 0; k < 4; k++) {
                    const uint8_t *p = w0 + k * rowBytes + s * 18;
                    // The next four rows, as in moek_vec_dot4_q4_0_q8_0 (every line of them).
                    for (size_t line = 0; line < sb * 18; line += 64) _mm_prefetch((const char *)(p + 4 * rowBytes + line), _MM_HINT_T0);
                    for (size_t b = 0; b < sb; b++, p += 18) {
                        uint16_t dh; memcpy(&dh, p, 2);
                        dw[b][k] = moek_h2f(dh);
                        const __m128i packed = _mm_loadu_si128((const __m128i *)(p + 2));
                        _mm_store_si128((__m128i *)q[k][b], _mm_and_si128(packed, low));
                        _mm_store_si128((__m128i *)(q[k][b] + 16), _mm_and_si128(_mm_srli_epi16(packed, 4), low));
                    }
                }
                for (size_t i = 0; i < tt; i++) {
                    const size_t xi = token_row(xIndex, t0 + i);
                    const moek_block_q8_0 *xb = x + xi * xStride + s;
                    const int32_t *ob = offsets + xi * xStride + s;
                    __m128 a4 = acc[i];
                    for (size_t b = 0; b < sb; b++) {
                        __m128i sums;
                        if (wide) {
                            const __m256i a = _mm256_loadu_si256((const __m256i *)xb[b].qs);
                            sums = moek_fold4_256(moek_q4_sums256(_mm256_load_si256((const __m256i *)q[0][b]), a),
                                                  moek_q4_sums256(_mm256_load_si256((const __m256i *)q[1][b]), a),
                                                  moek_q4_sums256(_mm256_load_si256((const __m256i *)q[2][b]), a),
                                                  moek_q4_sums256(_mm256_load_si256((const __m256i *)q[3][b]), a));
                        } else {
                            const __m128i alo = _mm_loadu_si128((const __m128i *)xb[b].qs), ahi = _mm_loadu_si128((const __m128i *)(xb[b].qs + 16));
#define MOEK_Q4_HALVES(k) moek_q4_sums128(_mm_load_si128((const __m128i *)q[k][b]), _mm_load_si128((const __m128i *)(q[k][b] + 16)), alo, ahi)
                            sums = moek_fold4(MOEK_Q4_HALVES(0), MOEK_Q4_HALVES(1), MOEK_Q4_HALVES(2), MOEK_Q4_HALVES(3));
#undef MOEK_Q4_HALVES
                        }
                        a4 = moek_finish4(a4, _mm_load_ps(dw[b]), moek_h2f(xb[b].d), _mm_sub_epi32(sums, _mm_set1_epi32(ob[b])));
                    }
                    acc[i] = a4;
                }
            }
            for (size_t i = 0; i < tt; i++) _mm_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
        }
    }
    if (r < rows) gemm_loop_q8_0(moek_vec_dot_q4_0_q8_0, w + r * rowBytes, rowBytes, rows - r, n, x, xStride, xIndex, tokens, y + r, yStride, yIndex);
}

MOEK_AVX2 static void gemm_q4_0_avx2(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x, const int32_t *offsets,
                                     size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_q4_0_tiles(w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex, 1);
}
MOEK_AVX2 static void gemm_q4_0_avx2_128(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x, const int32_t *offsets,
                                         size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_q4_0_tiles(w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex, 0);
}

// Q8_0: the int8 weights need no unpacking, so each token reads them straight from the segment
// (in L1 after the first token); only the scales are converted once per segment.
MOEK_AVX2_INLINE void gemm_q8_0_tiles(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                      const moek_block_q8_0 *x, size_t xStride, const int32_t *xIndex,
                                      size_t tokens, float *y, size_t yStride, const int32_t *yIndex, int wide) {
    const size_t nb = n / 32;
    _Alignas(16) float dw[SEGMENT][4];
    __m128 acc[TILE];
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
            const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
            for (size_t i = 0; i < tt; i++) acc[i] = _mm_setzero_ps();
            for (size_t s = 0; s < nb; s += SEGMENT) {
                const size_t sb = nb - s < SEGMENT ? nb - s : SEGMENT;
                for (int k = 0; k < 4; k++) {
                    const uint8_t *p = w0 + k * rowBytes + s * 34;
                    for (size_t line = 0; line < sb * 34; line += 64) _mm_prefetch((const char *)(p + 4 * rowBytes + line), _MM_HINT_T0);
                    for (size_t b = 0; b < sb; b++, p += 34) { uint16_t dh; memcpy(&dh, p, 2); dw[b][k] = moek_h2f(dh); }
                }
                for (size_t i = 0; i < tt; i++) {
                    const moek_block_q8_0 *xb = x + token_row(xIndex, t0 + i) * xStride + s;
                    __m128 a4 = acc[i];
                    const uint8_t *p = w0 + s * 34 + 2;
                    for (size_t b = 0; b < sb; b++, p += 34) {
                        __m128i sums;
                        if (wide) {
                            const __m256i a = _mm256_loadu_si256((const __m256i *)xb[b].qs);
#define MOEK_Q8_ROW(k) moek_q8_sums256(_mm256_loadu_si256((const __m256i *)(p + (k) * rowBytes)), a)
                            sums = moek_fold4_256(MOEK_Q8_ROW(0), MOEK_Q8_ROW(1), MOEK_Q8_ROW(2), MOEK_Q8_ROW(3));
#undef MOEK_Q8_ROW
                        } else {
                            const __m128i alo = _mm_loadu_si128((const __m128i *)xb[b].qs), ahi = _mm_loadu_si128((const __m128i *)(xb[b].qs + 16));
#define MOEK_Q8_ROW(k) _mm_add_epi32(moek_q8_sums128(_mm_loadu_si128((const __m128i *)(p + (k) * rowBytes)), alo), \
                                     moek_q8_sums128(_mm_loadu_si128((const __m128i *)(p + (k) * rowBytes + 16)), ahi))
                            sums = moek_fold4(MOEK_Q8_ROW(0), MOEK_Q8_ROW(1), MOEK_Q8_ROW(2), MOEK_Q8_ROW(3));
#undef MOEK_Q8_ROW
                        }
                        a4 = moek_finish4(a4, _mm_load_ps(dw[b]), moek_h2f(xb[b].d), sums);
                    }
                    acc[i] = a4;
                }
            }
            for (size_t i = 0; i < tt; i++) _mm_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
        }
    }
    if (r < rows) gemm_loop_q8_0(moek_vec_dot_q8_0_q8_0, w + r * rowBytes, rowBytes, rows - r, n, x, xStride, xIndex, tokens, y + r, yStride, yIndex);
}

MOEK_AVX2 static void gemm_q8_0_avx2(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x,
                                     size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_q8_0_tiles(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 1);
}
MOEK_AVX2 static void gemm_q8_0_avx2_128(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x,
                                         size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_q8_0_tiles(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 0);
}
#endif

// Four rows at a time through the decode kernel, once per token while the rows sit in L1: for one
// token (an expert only one token chose, a batch of one) it streams with prefetch and needs no
// unpacking pass, and on half-width AVX2 CPUs it beats the tiles at any token count.
static void rows4_q8_0(int q4, const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                       const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                       size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        for (size_t t = 0; t < tokens; t++) {
            const size_t xi = token_row(xIndex, t);
            float *out = y + token_row(yIndex, t) * yStride + r;
            if (q4) moek_vec_dot4_q4_0_q8_0(w + r * rowBytes, rowBytes, x + xi * xStride, offsets + xi * xStride, n, out);
            else moek_vec_dot4_q8_0_q8_0(w + r * rowBytes, rowBytes, x + xi * xStride, n, out);
        }
    }
    if (r < rows) gemm_loop_q8_0(q4 ? moek_vec_dot_q4_0_q8_0 : moek_vec_dot_q8_0_q8_0, w + r * rowBytes, rowBytes, rows - r, n,
                                 x, xStride, xIndex, tokens, y + r, yStride, yIndex);
}

/// Tokens from which half-width AVX2 CPUs use the tiles (see the tiles' comment).
#define HALF_WIDTH_TILE_TOKENS 16

void moek_gemm_q4_0_q8_0(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
#if defined(__x86_64__)
    const uint32_t f = moek_cpu_features();
    if ((f & MOEK_CPU_AVX2_HALF_WIDTH) && tokens >= HALF_WIDTH_TILE_TOKENS) {
        gemm_q4_0_avx2_128((const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
    if ((f & MOEK_CPU_AVX2_FMA) && !(f & MOEK_CPU_AVX2_HALF_WIDTH) && tokens > 1) {
        gemm_q4_0_avx2((const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
#endif
    rows4_q8_0(1, (const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q8_0_q8_0(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_0 *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
#if defined(__x86_64__)
    // Below four tokens the tile's separate pass over the scales did not pay for itself (0.55 vs
    // 0.67 ms for two tokens of a 1024x2048 matrix, with the earlier per-lane kernels).
    const uint32_t f = moek_cpu_features();
    if ((f & MOEK_CPU_AVX2_HALF_WIDTH) && tokens >= HALF_WIDTH_TILE_TOKENS) {
        gemm_q8_0_avx2_128((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
    if ((f & MOEK_CPU_AVX2_FMA) && !(f & MOEK_CPU_AVX2_HALF_WIDTH) && tokens >= 4) {
        gemm_q8_0_avx2((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
#endif
    rows4_q8_0(0, (const uint8_t *)w, rowBytes, rows, n, x, NULL, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q4_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_rows4_q8_K(moek_vec_dot4_q4_K_q8_K, moek_vec_dot_q4_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q5_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_rows4_q8_K(moek_vec_dot4_q5_K_q8_K, moek_vec_dot_q5_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q6_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_rows4_q8_K(moek_vec_dot4_q6_K_q8_K, moek_vec_dot_q6_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
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
