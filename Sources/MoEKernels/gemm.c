// Matrix-matrix products: a range of weight rows times several activation rows (the tokens of a
// prompt, or the tokens routed to one expert). Each weight row is read from memory once for all
// tokens, and Q4_0 nibbles are unpacked once per token tile instead of once per token.
//
// Every output equals the matching single dot product (moek_vec_dot_*) bit for bit: the tiles
// (Q4_0/Q8_0, and the K-quants on half-width AVX2) finish each block as the scalar code does
// (avx2.h), and the other paths call the dot products themselves. Only the loop order changes.
#include "MoEKernels.h"
#include "half.h"
#include "kscales.h"
#include "vnni.h"
#include <string.h>

#include "avx2.h"

#pragma STDC FP_CONTRACT OFF  // the block finish must round as the scalar code does (see quant.c)

#include "tiles.h"

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
// Q4_0: per segment the four rows' nibbles are unpacked to bytes (0..15, elements 0-15 then
// 16-31) and their scales converted, once for all tokens; the block's 8·Σa offset is
// subtracted from the folded sums as in moek_vec_dot4_q4_0_q8_0. CPUs that split 256-bit units
// use the interleaved tiles below instead.
MOEK_AVX2 static void gemm_q4_0_avx2(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                      const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                                      size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    const size_t nb = n / 32;
    _Alignas(32) uint8_t q[4][SEGMENT][32];
    _Alignas(16) float dw[SEGMENT][4];
    __m128 acc[TILE];
    const __m128i low = _mm_set1_epi8(0xF);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = w + r * rowBytes;
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
            for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
                const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
                for (size_t i = 0; i < tt; i++) acc[i] = tile_resume(s, y + token_row(yIndex, t0 + i) * yStride + r);
                for (size_t i = 0; i < tt; i++) {
                    const size_t xi = token_row(xIndex, t0 + i);
                    const moek_block_q8_0 *xb = x + xi * xStride + s;
                    const int32_t *ob = offsets + xi * xStride + s;
                    __m128 a4 = acc[i];
                    for (size_t b = 0; b < sb; b++) {
                        const __m256i a = _mm256_loadu_si256((const __m256i *)xb[b].qs);
                        const __m128i sums = moek_fold4_q4(moek_q4_sums16_256(_mm256_load_si256((const __m256i *)q[0][b]), a),
                                                           moek_q4_sums16_256(_mm256_load_si256((const __m256i *)q[1][b]), a),
                                                           moek_q4_sums16_256(_mm256_load_si256((const __m256i *)q[2][b]), a),
                                                           moek_q4_sums16_256(_mm256_load_si256((const __m256i *)q[3][b]), a));
                        a4 = moek_finish4(a4, _mm_load_ps(dw[b]), moek_h2f4(&xb[b].d), _mm_sub_epi32(sums, _mm_set1_epi32(ob[b])));
                    }
                    acc[i] = a4;
                }
                for (size_t i = 0; i < tt; i++) _mm_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
            }
        }
    }
    if (r < rows) gemm_loop_q8_0(moek_vec_dot_q4_0_q8_0, w + r * rowBytes, rowBytes, rows - r, n, x, xStride, xIndex, tokens, y + r, yStride, yIndex);
}


// Q4_0 on CPUs that split 256-bit units (MOEK_CPU_AVX2_HALF_WIDTH, this project's Zen 1): the
// four rows' unpacked nibbles are interleaved per group of four weights — 16 bytes holding
// weights 4g..4g+3 of rows 0, 1, 2, 3 — so that one maddubs against the token's four activations
// of that group (broadcast) gives two 16-bit partial sums per row, lanes already in row order.
// The eight groups of a block add up in 16 bits (at most 8·2·15·128 = 30720 in magnitude), one
// madd with ones widens them to one int32 per row: no horizontal folds. Each interleaved group is
// loaded once for up to four tokens. The block finish is the scalar one, so the bits match.
// One thread, 40 different 1024x2048 matrices (read from memory), µs per token, interleaved vs
// the four-row kernel per token: 1 token 338 vs 202, 2: 202 vs 187-191, 4: 144 vs 184,
// 8: 117-125 vs 367-469, 16: 127-137 vs 188-210, 64: 118-121 vs 182-186 (the previous 128-bit
// tiles: 134-135 at 16-64 tokens). Groups under HALF_WIDTH_INTERLEAVED_TOKENS tokens keep the
// four-row kernel per token.

/// Four activations (int8) broadcast to every 32-bit lane.
MOEK_AVX2_INLINE __m128i broadcast4(const int8_t *p) { return _mm_castps_si128(_mm_broadcast_ss((const float *)p)); }

/// `count` (1-4, a constant after inlining) tokens against a segment of interleaved Q4_0 blocks:
/// `acc[i]` += token i's four row sums, block by block. With `next`, each block also prefetches
/// the same block of the four rows at `next` (`rowBytes` apart): the next tile's reads then
/// arrive while this one computes, instead of in a burst before it.
MOEK_AVX2_INLINE void q4_0_interleaved_tokens(const __m128i (*iq)[8], const float (*dw)[4], size_t sb,
                                               const moek_block_q8_0 *const *xb, const int32_t *const *ob,
                                               __m128 *acc, const int count, const uint8_t *next, size_t rowBytes) {
    const __m128i ones = _mm_set1_epi16(1);
    __m128 a0 = acc[0], a1 = count > 1 ? acc[1] : a0, a2 = count > 2 ? acc[2] : a0, a3 = count > 3 ? acc[3] : a0;
    for (size_t b = 0; b < sb; b++) {
        if (next) {
            const char *line = (const char *)(next + b * 18);
            for (int k = 0; k < 4; k++) _mm_prefetch(line + k * rowBytes, _MM_HINT_T0);
        }
        __m128i s0 = _mm_setzero_si128(), s1 = s0, s2 = s0, s3 = s0;
        for (int g = 0; g < 8; g++) {
            const __m128i w = _mm_load_si128(&iq[b][g]);
            s0 = _mm_add_epi16(s0, _mm_maddubs_epi16(w, broadcast4(xb[0][b].qs + 4 * g)));
            if (count > 1) s1 = _mm_add_epi16(s1, _mm_maddubs_epi16(w, broadcast4(xb[1][b].qs + 4 * g)));
            if (count > 2) s2 = _mm_add_epi16(s2, _mm_maddubs_epi16(w, broadcast4(xb[2][b].qs + 4 * g)));
            if (count > 3) s3 = _mm_add_epi16(s3, _mm_maddubs_epi16(w, broadcast4(xb[3][b].qs + 4 * g)));
        }
        const __m128 d = _mm_load_ps(dw[b]);
        a0 = moek_finish4(a0, d, moek_h2f4(&xb[0][b].d), _mm_sub_epi32(_mm_madd_epi16(s0, ones), _mm_set1_epi32(ob[0][b])));
        if (count > 1) a1 = moek_finish4(a1, d, moek_h2f4(&xb[1][b].d), _mm_sub_epi32(_mm_madd_epi16(s1, ones), _mm_set1_epi32(ob[1][b])));
        if (count > 2) a2 = moek_finish4(a2, d, moek_h2f4(&xb[2][b].d), _mm_sub_epi32(_mm_madd_epi16(s2, ones), _mm_set1_epi32(ob[2][b])));
        if (count > 3) a3 = moek_finish4(a3, d, moek_h2f4(&xb[3][b].d), _mm_sub_epi32(_mm_madd_epi16(s3, ones), _mm_set1_epi32(ob[3][b])));
    }
    acc[0] = a0;
    if (count > 1) acc[1] = a1;
    if (count > 2) acc[2] = a2;
    if (count > 3) acc[3] = a3;
}

MOEK_AVX2 static void gemm_q4_0_interleaved(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                            const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                                            size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    const size_t nb = n / 32;
    _Alignas(16) __m128i iq[SEGMENT][8];
    _Alignas(16) float dw[SEGMENT][4];
    __m128 acc[TILE];
    const __m128i low = _mm_set1_epi8(0xF);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t s = 0; s < nb; s += SEGMENT) {
            const size_t sb = nb - s < SEGMENT ? nb - s : SEGMENT;
            const uint8_t *p = w0 + s * 18;
            // The next four rows' segment: spread over the first token pass when there is only
            // one (one matrix, one thread: 1 token 0.33 vs 0.43 ms, 2: 0.39 vs 0.48, 4: 0.61 vs
            // 0.65), in a burst up front when there are several (spread, 32 tokens took 4.0
            // instead of 3.6 ms).
            const uint8_t *next = tile_next_rows(p, rowBytes, 4, sb * 18, tokens);
            for (size_t b = 0; b < sb; b++, p += 18) {
                _mm_store_ps(dw[b], moek_scales4(p, rowBytes));
                __m128i lo[4], hi[4];
                for (int k = 0; k < 4; k++) {
                    const __m128i packed = _mm_loadu_si128((const __m128i *)(p + k * rowBytes + 2));
                    lo[k] = _mm_and_si128(packed, low);                     // groups 0-3
                    hi[k] = _mm_and_si128(_mm_srli_epi16(packed, 4), low);  // groups 4-7
                }
                moek_transpose4(lo, iq[b]);
                moek_transpose4(hi, iq[b] + 4);
            }
            for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
                const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
                for (size_t i = 0; i < tt; i++) acc[i] = tile_resume(s, y + token_row(yIndex, t0 + i) * yStride + r);
                for (size_t i = 0; i < tt; i += 4) {
                    const moek_block_q8_0 *xb[4];
                    const int32_t *ob[4];
                    const int count = tt - i < 4 ? (int)(tt - i) : 4;
                    tile_q8_0_tokens(x, offsets, xStride, xIndex, t0 + i, count, s, xb, ob);
                    const __m128i (*q)[8] = (const __m128i (*)[8])iq;
                    const float (*d)[4] = (const float (*)[4])dw;
                    switch (count) {
                    case 4: q4_0_interleaved_tokens(q, d, sb, xb, ob, acc + i, 4, i == 0 ? next : NULL, rowBytes); break;
                    case 3: q4_0_interleaved_tokens(q, d, sb, xb, ob, acc + i, 3, i == 0 ? next : NULL, rowBytes); break;
                    case 2: q4_0_interleaved_tokens(q, d, sb, xb, ob, acc + i, 2, i == 0 ? next : NULL, rowBytes); break;
                    default: q4_0_interleaved_tokens(q, d, sb, xb, ob, acc + i, 1, i == 0 ? next : NULL, rowBytes); break;
                    }
                }
                for (size_t i = 0; i < tt; i++) _mm_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
            }
        }
    }
    if (r < rows) gemm_loop_q8_0(moek_vec_dot_q4_0_q8_0, w + r * rowBytes, rowBytes, rows - r, n, x, xStride, xIndex, tokens, y + r, yStride, yIndex);
}

// K-quants on half-width AVX2 CPUs: the same interleaving as the Q4_0 tiles, per 256-weight
// super-block. Levels (Q4_K 0..15, Q5_K 0..31, Q6_K 0..63) are unpacked to bytes and interleaved by
// groups of four weights across four rows, each row's sub-block scales spread to both 16-bit
// halves of its lane, so that after maddubs against a token's broadcast activations and 16-bit
// adds, one madd with the scales gives every row's scaled sub-block sum in its own lane. The
// 16-bit runs stay within range: Q4_K adds a sub-block's 8 groups (8·2·15·128 = 30720), Q5_K 4
// (4·2·31·128 = 31744), Q6_K 2 (2·2·63·127 = 32004). The minimums (Q4_K/Q5_K) and the level
// offset (Q6_K, 32 times each scale) multiply the activations' block sums, also one lane per row.
// Integer sums are exact in any order and each super-block is finished with the scalar twin's
// float operations, so every result equals the one-token dot product bit for bit.
// One thread, 40 different 1024x2048 matrices (from memory), µs per token, interleaved vs the
// four-row kernel per token: Q4_K 2 tokens 155 vs 165, 3: 126 vs 163, 8-64: 95-98 vs 156-158;
// Q5_K 2: 224-230 vs 211, 3: 175 vs 206, 8-64: 116-120 vs 192-211; Q6_K 2: 222 vs 255, 3: 178
// vs 250, 8-64: 126-139 vs 241-257.

/// Super-blocks interleaved at a time: 8 of them (2048 inputs) take 10 KiB, within L1 beside the
/// activations.
#define K_SEGMENT 8

/// Four Q4_K/Q5_K rows' super-block, interleaved (1248 bytes).
typedef struct {
    __m128i q[8][8];    ///< sub-block j, group g: weights 4g..4g+3 of sub-block j of rows 0-3, as bytes
    __m128i scales[8];  ///< sub-block j: row k's 6-bit scale in both 16-bit halves of lane k
    __m128i mins[4];    ///< sub-blocks 2c and 2c+1: row k's two minimums in lane k
    __m128 d, dmin;     ///< the rows' super-block scales
} k4_interleaved;

/// Interleaves the super-block at p and its three rowBytes-apart neighbours (Q5_K: `fifth_bit`,
/// each level's bit 4 from qh at byte 16).
MOEK_AVX2_INLINE void k4_interleave(const uint8_t *p, size_t rowBytes, size_t qs_offset, const int fifth_bit, k4_interleaved *out) {
    const __m128i low = _mm_set1_epi8(0xF), one = _mm_set1_epi8(1);
    out->d = moek_scales4(p, rowBytes);
    out->dmin = moek_scales4(p + 2, rowBytes);
    __m128i lo[4], hi[4];
    for (int k = 0; k < 4; k++) {
        const __m128i sc = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)k4_unpack(p + k * rowBytes + 4, 0)));
        lo[k] = _mm_unpacklo_epi16(sc, sc);  // sub-blocks 0-3, each scale twice
        hi[k] = _mm_unpackhi_epi16(sc, sc);  // sub-blocks 4-7
    }
    moek_transpose4(lo, out->scales);
    moek_transpose4(hi, out->scales + 4);
    for (int k = 0; k < 4; k++) lo[k] = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)k4_unpack(p + k * rowBytes + 4, 1)));
    moek_transpose4(lo, out->mins);
    for (int c = 0; c < 4; c++) {
        for (int half = 0; half < 2; half++) {
            // Weights 64c + 16·half .. +15 (low nibbles, sub-block 2c) and 32 further (high nibbles).
            __m128i l[4], h[4];
            for (int k = 0; k < 4; k++) {
                const uint8_t *b = p + k * rowBytes;
                const __m128i bits = _mm_loadu_si128((const __m128i *)(b + qs_offset + 32 * c + 16 * half));
                l[k] = _mm_and_si128(bits, low);
                h[k] = _mm_and_si128(_mm_srli_epi16(bits, 4), low);
                if (fifth_bit) {
                    const __m128i qh = _mm_loadu_si128((const __m128i *)(b + 16 + 16 * half));
                    l[k] = _mm_or_si128(l[k], _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(qh, 2 * c), one), 4));
                    h[k] = _mm_or_si128(h[k], _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(qh, 2 * c + 1), one), 4));
                }
            }
            moek_transpose4(l, out->q[2 * c] + 4 * half);
            moek_transpose4(h, out->q[2 * c + 1] + 4 * half);
        }
    }
}

/// Every cache line of the four rowBytes-apart blocks of `bytes` at p.
MOEK_AVX2_INLINE void prefetch_block4(const uint8_t *p, size_t rowBytes, size_t bytes) {
    for (int k = 0; k < 4; k++) {
        const char *b = (const char *)(p + k * rowBytes);
        for (size_t line = 0; line < bytes; line += 64) _mm_prefetch(b + line, _MM_HINT_T0);
        _mm_prefetch(b + bytes - 1, _MM_HINT_T0);
    }
}

/// The minimums' term of four interleaved Q4_K/Q5_K rows' super-block (the scalar code's summ),
/// one lane per row: the activation sums of sub-blocks 2c, 2c+1 in lane c, against each row's
/// two minimums.
MOEK_AVX2_INLINE __m128i k4_mins_sum(const k4_interleaved *blk, const int16_t *bsums) {
    const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bsums), _mm_loadu_si128((const __m128i *)(bsums + 8)));
    __m128i m = _mm_madd_epi16(blk->mins[0], _mm_shuffle_epi32(pairs, 0x00));
    m = _mm_add_epi32(m, _mm_madd_epi16(blk->mins[1], _mm_shuffle_epi32(pairs, 0x55)));
    m = _mm_add_epi32(m, _mm_madd_epi16(blk->mins[2], _mm_shuffle_epi32(pairs, 0xAA)));
    return _mm_add_epi32(m, _mm_madd_epi16(blk->mins[3], _mm_shuffle_epi32(pairs, 0xFF)));
}

/// `count` (1-4, a constant after inlining) tokens against a segment of interleaved Q4_K/Q5_K
/// super-blocks, as q4_0_interleaved_tokens.
MOEK_AVX2_INLINE void k4_interleaved_tokens(const k4_interleaved *blocks, size_t sb, const moek_block_q8_K *const *xb, __m128 *acc,
                                            const int count, const int fifth_bit, const uint8_t *next, size_t rowBytes, size_t blockBytes) {
    __m128 a[4];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t i = 0; i < sb; i++) {
        const k4_interleaved *blk = &blocks[i];
        if (next) prefetch_block4(next + i * blockBytes, rowBytes, blockBytes);
        __m128i sumi[4], summ[4];
        for (int t = 0; t < count; t++) {
            summ[t] = k4_mins_sum(blk, xb[t][i].bsums);
            sumi[t] = _mm_setzero_si128();
        }
        for (int j = 0; j < 8; j++) {
            __m128i s[4];
            for (int t = 0; t < count; t++) s[t] = _mm_setzero_si128();
            for (int g = 0; g < 8; g++) {
                const __m128i w = _mm_load_si128(&blk->q[j][g]);
                for (int t = 0; t < count; t++) s[t] = _mm_add_epi16(s[t], _mm_maddubs_epi16(w, broadcast4(xb[t][i].qs + 32 * j + 4 * g)));
                if (fifth_bit && g == 3) {
                    for (int t = 0; t < count; t++) {
                        sumi[t] = _mm_add_epi32(sumi[t], _mm_madd_epi16(s[t], blk->scales[j]));
                        s[t] = _mm_setzero_si128();
                    }
                }
            }
            for (int t = 0; t < count; t++) sumi[t] = _mm_add_epi32(sumi[t], _mm_madd_epi16(s[t], blk->scales[j]));
        }
        for (int t = 0; t < count; t++) {
            // sum += d · x.d · float(sumi) − dmin · x.d · float(summ), per row
            const __m128 xd = _mm_set1_ps(xb[t][i].d);
            const __m128 d = _mm_mul_ps(blk->d, xd), dmin = _mm_mul_ps(blk->dmin, xd);
            a[t] = _mm_add_ps(a[t], _mm_sub_ps(_mm_mul_ps(d, _mm_cvtepi32_ps(sumi[t])), _mm_mul_ps(dmin, _mm_cvtepi32_ps(summ[t]))));
        }
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}

/// Four Q6_K rows' super-block, interleaved (1424 bytes).
typedef struct {
    __m128i q[16][4];    ///< 16-weight sub-block j, group g: weights 4g..4g+3 of rows 0-3 (levels 0..63)
    __m128i scales[16];  ///< sub-block j: row k's int8 scale in both 16-bit halves of lane k
    __m128i offsets[8];  ///< sub-blocks 2c and 2c+1: 32 times row k's two scales in lane k
    __m128 d;            ///< the rows' super-block scales
} q6_interleaved;

/// Interleaves the Q6_K super-block at p and its three rowBytes-apart neighbours.
MOEK_AVX2_INLINE void q6_interleave(const uint8_t *p, size_t rowBytes, q6_interleaved *out) {
    const __m128i low = _mm_set1_epi8(0xF), two = _mm_set1_epi8(3);
    out->d = moek_scales4(p + 208, rowBytes);
    for (int part = 0; part < 2; part++) {
        __m128i lo[4], hi[4], off[4];
        for (int k = 0; k < 4; k++) {
            const __m128i sc = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(p + k * rowBytes + 192 + 8 * part)));
            lo[k] = _mm_unpacklo_epi16(sc, sc);
            hi[k] = _mm_unpackhi_epi16(sc, sc);
            off[k] = _mm_slli_epi16(sc, 5);
        }
        moek_transpose4(lo, out->scales + 8 * part);
        moek_transpose4(hi, out->scales + 8 * part + 4);
        moek_transpose4(off, out->offsets + 4 * part);
    }
    for (int h = 0; h < 2; h++) {
        for (int half = 0; half < 2; half++) {
            // Levels of weights 128h + 32m + 16·half .. +15 (m = 0..3): four bits from ql, two from qh.
            __m128i v[4][4];
            for (int k = 0; k < 4; k++) {
                const uint8_t *b = p + k * rowBytes;
                const __m128i l0 = _mm_loadu_si128((const __m128i *)(b + 64 * h + 16 * half));
                const __m128i l1 = _mm_loadu_si128((const __m128i *)(b + 64 * h + 32 + 16 * half));
                const __m128i qh = _mm_loadu_si128((const __m128i *)(b + 128 + 32 * h + 16 * half));
                v[0][k] = _mm_or_si128(_mm_and_si128(l0, low), _mm_slli_epi16(_mm_and_si128(qh, two), 4));
                v[1][k] = _mm_or_si128(_mm_and_si128(l1, low), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(qh, 2), two), 4));
                v[2][k] = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(l0, 4), low), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(qh, 4), two), 4));
                v[3][k] = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(l1, 4), low), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(qh, 6), two), 4));
            }
            for (int m = 0; m < 4; m++) moek_transpose4(v[m], out->q[8 * h + 2 * m + half]);
        }
    }
}

/// The levels' offset of four interleaved Q6_K rows' super-block, one lane per row: 32 · Σ scale ·
/// (activation sum of its 16 weights).
MOEK_AVX2_INLINE __m128i q6_level_offset(const q6_interleaved *blk, const int16_t *bsums) {
    const __m128i b0 = _mm_loadu_si128((const __m128i *)bsums), b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
    __m128i o = _mm_madd_epi16(blk->offsets[0], _mm_shuffle_epi32(b0, 0x00));
    o = _mm_add_epi32(o, _mm_madd_epi16(blk->offsets[1], _mm_shuffle_epi32(b0, 0x55)));
    o = _mm_add_epi32(o, _mm_madd_epi16(blk->offsets[2], _mm_shuffle_epi32(b0, 0xAA)));
    o = _mm_add_epi32(o, _mm_madd_epi16(blk->offsets[3], _mm_shuffle_epi32(b0, 0xFF)));
    o = _mm_add_epi32(o, _mm_madd_epi16(blk->offsets[4], _mm_shuffle_epi32(b1, 0x00)));
    o = _mm_add_epi32(o, _mm_madd_epi16(blk->offsets[5], _mm_shuffle_epi32(b1, 0x55)));
    o = _mm_add_epi32(o, _mm_madd_epi16(blk->offsets[6], _mm_shuffle_epi32(b1, 0xAA)));
    return _mm_add_epi32(o, _mm_madd_epi16(blk->offsets[7], _mm_shuffle_epi32(b1, 0xFF)));
}

/// `count` (1-4) tokens against a segment of interleaved Q6_K super-blocks.
MOEK_AVX2_INLINE void q6_interleaved_tokens(const q6_interleaved *blocks, size_t sb, const moek_block_q8_K *const *xb, __m128 *acc,
                                            const int count, const uint8_t *next, size_t rowBytes) {
    __m128 a[4];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t i = 0; i < sb; i++) {
        const q6_interleaved *blk = &blocks[i];
        if (next) prefetch_block4(next + i * 210, rowBytes, 210);
        __m128i sumi[4];
        for (int t = 0; t < count; t++) {
            // The levels' offset, subtracted up front.
            sumi[t] = _mm_sub_epi32(_mm_setzero_si128(), q6_level_offset(blk, xb[t][i].bsums));
        }
        for (int j = 0; j < 16; j++) {
            for (int g = 0; g < 4; g += 2) {
                const __m128i w0 = _mm_load_si128(&blk->q[j][g]), w1 = _mm_load_si128(&blk->q[j][g + 1]);
                for (int t = 0; t < count; t++) {
                    const int8_t *qa = xb[t][i].qs + 16 * j + 4 * g;
                    const __m128i s = _mm_add_epi16(_mm_maddubs_epi16(w0, broadcast4(qa)), _mm_maddubs_epi16(w1, broadcast4(qa + 4)));
                    sumi[t] = _mm_add_epi32(sumi[t], _mm_madd_epi16(s, blk->scales[j]));
                }
            }
        }
        // sum += d · x.d · float(sumi), per row
        for (int t = 0; t < count; t++) a[t] = _mm_add_ps(a[t], _mm_mul_ps(_mm_mul_ps(blk->d, _mm_set1_ps(xb[t][i].d)), _mm_cvtepi32_ps(sumi[t])));
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}

#define MOEK_VNNI_ATTR __attribute__((target("avx2,fma,f16c,avxvnni")))
#define MOEK_VNNI_NAME(name) name##_vex
#define MOEK_DPBUSD(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#include "vnni_ktiles.h"
#undef MOEK_VNNI_ATTR
#undef MOEK_VNNI_NAME
#undef MOEK_DPBUSD
#define MOEK_VNNI_ATTR __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define MOEK_VNNI_NAME(name) name##_evex
#define MOEK_DPBUSD(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#include "vnni_ktiles.h"
#undef MOEK_VNNI_ATTR
#undef MOEK_VNNI_NAME
#undef MOEK_DPBUSD

/// The interleaved K-quant tiles: `kind` 4 (Q4_K), 5 (Q5_K) or 6 (Q6_K), a constant in each caller;
/// `vnni`: 1 or 2 for the vpdpbusd tiles in VEX or EVEX form (vnni_ktiles.h).
MOEK_AVX2_INLINE void gemm_k_interleaved(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex, const int kind,
                                         const int vnni) {
    const size_t nb = n / 256, blockBytes = kind == 4 ? 144 : kind == 5 ? 176 : 210;
    union { k4_interleaved k4[K_SEGMENT]; q6_interleaved q6[K_SEGMENT]; } segment;
    k4_interleaved *k4 = segment.k4;
    q6_interleaved *q6 = segment.q6;
    __m128 acc[TILE];
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t s = 0; s < nb; s += K_SEGMENT) {
            const size_t sb = nb - s < K_SEGMENT ? nb - s : K_SEGMENT;
            const uint8_t *p = w0 + s * blockBytes;
            // The next four rows: spread over the first token pass, or up front (as the Q4_0 tiles).
            const uint8_t *next = tile_next_rows(p, rowBytes, 4, sb * blockBytes, tokens);
            for (size_t b = 0; b < sb; b++) {
                if (kind == 6) q6_interleave(p + b * blockBytes, rowBytes, &q6[b]);
                else k4_interleave(p + b * blockBytes, rowBytes, kind == 5 ? 48 : 16, kind == 5, &k4[b]);
            }
            for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
                const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
                for (size_t i = 0; i < tt; i++) acc[i] = tile_resume(s, y + token_row(yIndex, t0 + i) * yStride + r);
                for (size_t i = 0; i < tt; i += 4) {
                    const moek_block_q8_K *xb[4];
                    const int count = tt - i < 4 ? (int)(tt - i) : 4;
                    for (int j = 0; j < count; j++) xb[j] = x + token_row(xIndex, t0 + i + j) * xStride + s;
                    const uint8_t *pf = i == 0 ? next : NULL;
#define MOEK_K_TOKENS(c) (kind == 6 ? q6_interleaved_tokens(q6, sb, xb, acc + i, c, pf, rowBytes) \
                                    : k4_interleaved_tokens(k4, sb, xb, acc + i, c, kind == 5, pf, rowBytes, blockBytes))
                    if (vnni == 1 && kind == 4) { k4_tokens_vex(k4, sb, xb, acc + i, count, pf, rowBytes); continue; }
                    if (vnni == 2 && kind == 4) { k4_tokens_evex(k4, sb, xb, acc + i, count, pf, rowBytes); continue; }
                    if (vnni == 1 && kind == 5) { k5_tokens_vex(k4, sb, xb, acc + i, count, pf, rowBytes); continue; }
                    if (vnni == 2 && kind == 5) { k5_tokens_evex(k4, sb, xb, acc + i, count, pf, rowBytes); continue; }
                    if (vnni == 1 && kind == 6) { k6_tokens_vex(q6, sb, xb, acc + i, count, pf, rowBytes); continue; }
                    if (vnni == 2 && kind == 6) { k6_tokens_evex(q6, sb, xb, acc + i, count, pf, rowBytes); continue; }
                    switch (count) {
                    case 4: MOEK_K_TOKENS(4); break;
                    case 3: MOEK_K_TOKENS(3); break;
                    case 2: MOEK_K_TOKENS(2); break;
                    default: MOEK_K_TOKENS(1); break;
                    }
#undef MOEK_K_TOKENS
                }
                for (size_t i = 0; i < tt; i++) _mm_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
            }
        }
    }
    if (r < rows) {
        row_dot_q8_K dot = kind == 4 ? moek_vec_dot_q4_K_q8_K : kind == 5 ? moek_vec_dot_q5_K_q8_K : moek_vec_dot_q6_K_q8_K;
        gemm_loop_q8_K(dot, w + r * rowBytes, rowBytes, rows - r, n, x, xStride, xIndex, tokens, y + r, yStride, yIndex);
    }
}

MOEK_AVX2 static void gemm_q4_K_interleaved(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x,
                                            size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_k_interleaved(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 4, 0);
}
/// The vpdpbusd K-quant tiles (`kind` 4, 5 or 6: Q4_K, Q5_K, Q6_K), VEX form where the CPU has it.
MOEK_AVX2 static void gemm_k_vnni(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x,
                                  size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex,
                                  int kind) {
    const int vex = (moek_cpu_features() & MOEK_CPU_AVX_VNNI) != 0;
    // Sixteen rows per pass with AVX-512 VNNI and enough tokens (vnni_zmm.h).
    const size_t wide = moek_vnni_gemm_k_zmm(kind, w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
    w += wide * rowBytes;
    rows -= wide;
    y += wide;
    if (rows == 0) return;
    // Eight rows per pass, a remaining four-row group below.
    size_t done;
    switch (kind) {
    case 6: done = vex ? gemm_q6_K_rows8_vex(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex)
                       : gemm_q6_K_rows8_evex(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex); break;
    case 5: done = vex ? gemm_q5_K_rows8_vex(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex)
                       : gemm_q5_K_rows8_evex(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex); break;
    default: done = vex ? gemm_q4_K_rows8_vex(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex)
                        : gemm_q4_K_rows8_evex(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex); break;
    }
    w += done * rowBytes;
    rows -= done;
    y += done;
    if (rows == 0) return;
    switch (kind) {  // a literal kind per call, so that each inlined copy is specialized
    case 6: gemm_k_interleaved(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 6, vex ? 1 : 2); break;
    case 5: gemm_k_interleaved(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 5, vex ? 1 : 2); break;
    default: gemm_k_interleaved(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 4, vex ? 1 : 2); break;
    }
}
MOEK_AVX2 static void gemm_q5_K_interleaved(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x,
                                            size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_k_interleaved(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 5, 0);
}
MOEK_AVX2 static void gemm_q6_K_interleaved(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x,
                                            size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_k_interleaved(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 6, 0);
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
        for (size_t s = 0; s < nb; s += SEGMENT) {
            const size_t sb = nb - s < SEGMENT ? nb - s : SEGMENT;
            for (int k = 0; k < 4; k++) {
                const uint8_t *p = w0 + k * rowBytes + s * 34;
                for (size_t line = 0; line < sb * 34; line += 64) _mm_prefetch((const char *)(p + 4 * rowBytes + line), _MM_HINT_T0);
                for (size_t b = 0; b < sb; b++, p += 34) { uint16_t dh; memcpy(&dh, p, 2); dw[b][k] = moek_h2f(dh); }
            }
            for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
                const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
                for (size_t i = 0; i < tt; i++) acc[i] = tile_resume(s, y + token_row(yIndex, t0 + i) * yStride + r);
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
                        a4 = moek_finish4(a4, _mm_load_ps(dw[b]), moek_h2f4(&xb[b].d), sums);
                    }
                    acc[i] = a4;
                }
                for (size_t i = 0; i < tt; i++) _mm_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
            }
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

// Eight (Q4_0) or four rows at a time through the decode kernel, once per token while the rows sit
// in L1: for one token (an expert only one token chose, a batch of one) it streams with prefetch and needs no
// unpacking pass, and on half-width AVX2 CPUs it beats the tiles at any token count.
static void rows4_q8_0(int q4, const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                       const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                       size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    size_t r = 0;
    if (q4) {  // the eight-row kernel where it exists (VNNI), else two four-row calls
        for (; r + 8 <= rows; r += 8) {
            for (size_t t = 0; t < tokens; t++) {
                const size_t xi = token_row(xIndex, t);
                moek_vec_dot8_q4_0_q8_0(w + r * rowBytes, rowBytes, x + xi * xStride, offsets + xi * xStride, n,
                                        y + token_row(yIndex, t) * yStride + r);
            }
        }
    }
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

/// Tokens from which half-width AVX2 CPUs use the Q8_0 tiles: below, the four-row kernel per token
/// on L1-hot rows was faster (1024x2048, one thread: 0.90 vs 1.07-1.19 ms for 4 tokens), above,
/// once activations outgrow L2, the tiles (a 256-token prompt 6-14% slower without them).
#define HALF_WIDTH_TILE_TOKENS 16
/// Tokens from which half-width AVX2 CPUs use the interleaved Q4_0 tiles (see there).
#define HALF_WIDTH_INTERLEAVED_TOKENS 3
/// Tokens from which half-width AVX2 CPUs use the interleaved K-quant tiles. Two-token passes
/// lost to the four-row kernel per token for Q5_K (224-230 vs 211 µs per token) and, since its
/// four-row kernel folds in 16 bits (kquants.c), for Q4_K (134-139 vs 116-118; 3 tokens: 105 vs
/// 112-113); Q6_K's won (222 vs 255).
#define HALF_WIDTH_Q4_K_INTERLEAVED_TOKENS 3
#define HALF_WIDTH_Q5_K_INTERLEAVED_TOKENS 3
#define HALF_WIDTH_Q6_K_INTERLEAVED_TOKENS 2
/// Tokens from which full-width AVX2 CPUs without vpdpbusd use the interleaved Q5_K tiles rather
/// than the four-row kernel once per token. Zen 5 with AVX-512 masked off (before the vpdpbusd
/// Q5_K tiles), one thread, a streamed 1024x2048 matrix, µs per token, tiles vs four-row kernel:
/// 5 tokens 47.1 vs 42.8, 6: 42.2 vs 42.3, 8: 37.0 vs 42.6, 16: 35.7 vs 42.8, 64: 30.1 vs 42.1.
#define Q5_K_INTERLEAVED_TOKENS 8
/// The same for Q4_K and Q6_K on full-width AVX2 CPUs without vpdpbusd (Zen 5 with both VNNI
/// forms masked off, same measure): Q4_K 3 tokens 41.6 vs 45.2, 8: 32.2 vs 45.6, 64: 29.1 vs
/// 45.3; Q6_K 3: 52.5 vs 43.4, 8: 38.6 vs 42.2, 64: 34.2 vs 41.4.
#define AVX2_Q4_K_INTERLEAVED_TOKENS 3
#define AVX2_Q6_K_INTERLEAVED_TOKENS 8
/// Tokens from which CPUs with vpdpbusd use its Q8_0 tiles (vnni_qdot.h).
#define VNNI_TILE_TOKENS 2
/// Tokens from which CPUs with vpdpbusd use its Q4_0 tiles: below, the eight-row decode kernel
/// once per token. Zen 5, one thread, a 1024x2048 matrix for two tokens: the decode kernel twice
/// 60.0 µs streamed against 75.6 for the four-row tiles (so tiles began at 3), then the
/// eight-row tiles 63.6-63.7 streamed and 55.4-56.0 from L3 against 67.6-71.6 / 60.7-62.0.
/// With AVX-512 VNNI the decode kernel itself now takes a few tokens per pass and the tiles
/// begin past ZD_Q4_0_TOKENS (vnni.c); this threshold is for AVX-VNNI-only CPUs.
#define VNNI_Q4_0_TILE_TOKENS 2
/// Tokens from which CPUs with vpdpbusd use its Q4_K tiles (vnni_ktiles.h).
#define VNNI_Q4_K_TILE_TOKENS 2
/// Tokens from which CPUs with vpdpbusd use its Q5_K tiles (vnni_ktiles.h) rather than the
/// four-row kernel once per token. Zen 5 with AVX-512 masked off (AVX-VNNI only, as Intel client
/// CPUs), one thread, 64 streamed 1024x2048 matrices, µs per token, tiles vs four-row kernel (8
/// tokens on: vs the plain AVX2 tiles): 2 tokens 54.2-55.8 vs 46.6-48.3, 3: 43.5-44.2 vs
/// 46.2-47.9, 4: 34.7-35.2 vs 45.6-46.6, 6: 29.0 vs 46.2, 8: 25.9 vs 40.2, 16: 25.1 vs 37.9, 64:
/// 18.0 vs 32.4.
#ifndef VNNI_Q5_K_TILE_TOKENS
#define VNNI_Q5_K_TILE_TOKENS 3
#endif
/// Tokens from which CPUs with vpdpbusd use its Q6_K tiles (vnni_ktiles.h).
#define VNNI_Q6_K_TILE_TOKENS 2

#if defined(__x86_64__)
/// A Q4_0 (q4 = 1) or Q8_0 product with a few tokens through the 512-bit decode kernels where the
/// CPU has them (moek_vnni_gemm_q_small), the rows past their multiple of eight / four through
/// rows4_q8_0. Returns 0, having done nothing, where those kernels do not apply.
static int few_tokens(int q4, const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x, const int32_t *offsets,
                      size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    const size_t done = moek_vnni_gemm_q_small(q4, w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
    if (done == 0) return 0;
    if (rows > done) {
        rows4_q8_0(q4, w + done * rowBytes, rowBytes, rows - done, n, x, q4 ? offsets : NULL, xStride, xIndex, tokens, y + done, yStride, yIndex);
    }
    return 1;
}
#endif

void moek_gemm_q4_0_q8_0(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
#if defined(__x86_64__)
    const uint32_t f = moek_cpu_features();
    if ((f & MOEK_CPU_AVX2_HALF_WIDTH) && tokens >= HALF_WIDTH_INTERLEAVED_TOKENS) {
        gemm_q4_0_interleaved((const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
    if (few_tokens(1, (const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex)) return;
    if (moek_has_vnni(f) && tokens >= VNNI_Q4_0_TILE_TOKENS) {
        moek_vnni_gemm_q4_0(w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
    if ((f & MOEK_CPU_AVX2_FMA) && !(f & MOEK_CPU_AVX2_HALF_WIDTH) && !moek_has_vnni(f) && tokens > 1) {
        gemm_q4_0_avx2((const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
#endif
    rows4_q8_0(1, (const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q8_0_q8_0(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
#if defined(__x86_64__)
    // Below four tokens the tile's separate pass over the scales did not pay for itself (0.55 vs
    // 0.67 ms for two tokens of a 1024x2048 matrix, with the earlier per-lane kernels).
    const uint32_t f = moek_cpu_features();
    if ((f & MOEK_CPU_AVX2_HALF_WIDTH) && tokens >= HALF_WIDTH_TILE_TOKENS) {
        gemm_q8_0_avx2_128((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
    if (few_tokens(0, (const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex)) return;
    if (moek_has_vnni(f) && tokens >= VNNI_TILE_TOKENS) {
        moek_vnni_gemm_q8_0(w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
    if ((f & MOEK_CPU_AVX2_FMA) && !(f & MOEK_CPU_AVX2_HALF_WIDTH) && !moek_has_vnni(f) && tokens >= 4) {
        gemm_q8_0_avx2((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
#endif
    rows4_q8_0(0, (const uint8_t *)w, rowBytes, rows, n, x, NULL, xStride, xIndex, tokens, y, yStride, yIndex);
}

#if defined(__x86_64__)
/// Few tokens on CPUs with AVX-512 VNNI: moek_vnni_gemm_k_small's decode kernels on the four-row
/// groups, one dot per row and token on the rest. Whether it took the product.
static int gemm_k_small(int kind, row_dot_q8_K dot, const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                        const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                        size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    const size_t done = moek_vnni_gemm_k_small(kind, w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
    if (done == 0) return 0;
    if (done < rows) gemm_loop_q8_K(dot, w + done * rowBytes, rowBytes, rows - done, n, x, xStride, xIndex, tokens, y + done, yStride, yIndex);
    return 1;
}
#endif

void moek_gemm_q4_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
#if defined(__x86_64__)
    if (gemm_k_small(4, moek_vec_dot_q4_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex)) return;
    if (moek_has_vnni(moek_cpu_features()) && tokens >= VNNI_Q4_K_TILE_TOKENS) {
        gemm_k_vnni((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 4);
        return;
    }
    const uint32_t f = moek_cpu_features();
    if ((f & MOEK_CPU_AVX2_FMA)
        && tokens >= ((f & MOEK_CPU_AVX2_HALF_WIDTH) ? HALF_WIDTH_Q4_K_INTERLEAVED_TOKENS : AVX2_Q4_K_INTERLEAVED_TOKENS)) {
        gemm_q4_K_interleaved((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
#endif
    gemm_rows4_q8_K(moek_vec_dot4_q4_K_q8_K, moek_vec_dot_q4_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q5_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
#if defined(__x86_64__)
    if (gemm_k_small(5, moek_vec_dot_q5_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex)) return;
    const uint32_t f = moek_cpu_features();
    if ((f & MOEK_CPU_AVX2_HALF_WIDTH) && tokens >= HALF_WIDTH_Q5_K_INTERLEAVED_TOKENS) {
        gemm_q5_K_interleaved((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
    // The 512-bit tiles where the CPU has them, then the 256-bit vpdpbusd tiles (gemm_k_vnni).
    if (moek_has_vnni(f) && tokens >= VNNI_Q5_K_TILE_TOKENS) {
        gemm_k_vnni((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 5);
        return;
    }
    if ((f & MOEK_CPU_AVX2_FMA) && tokens >= Q5_K_INTERLEAVED_TOKENS) {
        gemm_q5_K_interleaved((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
#endif
    gemm_rows4_q8_K(moek_vec_dot4_q5_K_q8_K, moek_vec_dot_q5_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}

void moek_gemm_q6_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
#if defined(__x86_64__)
    if (gemm_k_small(6, moek_vec_dot_q6_K_q8_K, (const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex)) return;
    if (moek_has_vnni(moek_cpu_features()) && tokens >= VNNI_Q6_K_TILE_TOKENS) {
        gemm_k_vnni((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 6);
        return;
    }
    const uint32_t f = moek_cpu_features();
    if ((f & MOEK_CPU_AVX2_FMA)
        && tokens >= ((f & MOEK_CPU_AVX2_HALF_WIDTH) ? HALF_WIDTH_Q6_K_INTERLEAVED_TOKENS : AVX2_Q6_K_INTERLEAVED_TOKENS)) {
        gemm_q6_K_interleaved((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
        return;
    }
#endif
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
