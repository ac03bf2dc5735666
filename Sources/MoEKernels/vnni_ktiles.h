// Q4_K, Q5_K and Q6_K matrix-matrix tiles with vpdpbusd, included twice by gemm.c (as vnni_qdot.h by vnni.c:
// MOEK_VNNI_ATTR, MOEK_VNNI_NAME, MOEK_DPBUSD) after the interleaved K-quant layout it reads.
//
// The four rows' super-blocks are interleaved as for the half-width tiles (k4_interleave: per
// sub-block j and group g, weights 4g..4g+3 of rows 0-3). Groups g and g+4 of a sub-block form
// one 256-bit operand, matched by the token's 32 activations of that sub-block with dword g of
// each 128-bit half broadcast across it (one in-lane shuffle); four vpdpbusd leave row k's
// sub-block sum split between lanes k and k+4, at most 16·15·127 = 30480 each, so one madd
// against the rows' scales (as (scale, 0) int16 pairs) scales it exactly. Q5_K's levels (up to
// 31) would reach 16·31·127 = 62992, so its sums are scaled after every two groups (8·31·127 =
// 31496), one more madd per sub-block. Minimums and the float finish are k4_interleaved_tokens's,
// the scalar twin's operations, so the bits are the one-token kernels'. Q4_K and Q5_K go eight rows
// per pass (two such groups sharing each activation shuffle; gemm_q4_K_rows8), the four-row body
// taking a remaining group of four.

#define MOEK_VNNI_INLINE static inline __attribute__((always_inline)) MOEK_VNNI_ATTR

MOEK_VNNI_INLINE void MOEK_VNNI_NAME(k4_tokens_body)(const k4_interleaved *blocks, size_t sb, const moek_block_q8_K *const *xb,
                                                      __m128 *acc, const int count, const int fifth_bit, const uint8_t *next,
                                                      size_t rowBytes) {
    const size_t blockBytes = fifth_bit ? 176 : 144;
    const __m256i lowHalf = _mm256_set1_epi32(0xFFFF), zero = _mm256_setzero_si256();
    __m128 a[4];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t i = 0; i < sb; i++) {
        const k4_interleaved *blk = &blocks[i];
        if (next) prefetch_block4(next + i * blockBytes, rowBytes, blockBytes);
        __m128i summ[4];
        __m256i sumi[4];
        for (int t = 0; t < count; t++) {
            summ[t] = k4_mins_sum(blk, xb[t][i].bsums);
            sumi[t] = zero;
        }
        for (int j = 0; j < 8; j++) {
            const __m256i sc = _mm256_and_si256(_mm256_broadcastsi128_si256(blk->scales[j]), lowHalf);
            __m256i s[4], act[4];
            for (int t = 0; t < count; t++) {
                s[t] = zero;
                act[t] = _mm256_loadu_si256((const __m256i *)(xb[t][i].qs + 32 * j));
            }
#define MOEK_VNNI_K4_GROUP(g)                                                                          \
            {                                                                                          \
                const __m256i q = _mm256_loadu2_m128i(&blk->q[j][(g) + 4], &blk->q[j][g]);            \
                for (int t = 0; t < count; t++)                                                        \
                    s[t] = MOEK_DPBUSD(s[t], q, _mm256_shuffle_epi32(act[t], (g) * 0x55));             \
            }
            MOEK_VNNI_K4_GROUP(0) MOEK_VNNI_K4_GROUP(1)
            if (fifth_bit) {
                for (int t = 0; t < count; t++) {
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(s[t], sc));
                    s[t] = zero;
                }
            }
            MOEK_VNNI_K4_GROUP(2) MOEK_VNNI_K4_GROUP(3)
#undef MOEK_VNNI_K4_GROUP
            for (int t = 0; t < count; t++) sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(s[t], sc));
        }
        for (int t = 0; t < count; t++) {
            const __m128i si = _mm_add_epi32(_mm256_castsi256_si128(sumi[t]), _mm256_extracti128_si256(sumi[t], 1));
            // sum += d · x.d · float(sumi) − dmin · x.d · float(summ), per row
            const __m128 xd = _mm_set1_ps(xb[t][i].d);
            const __m128 d = _mm_mul_ps(blk->d, xd), dmin = _mm_mul_ps(blk->dmin, xd);
            a[t] = _mm_add_ps(a[t], _mm_sub_ps(_mm_mul_ps(d, _mm_cvtepi32_ps(si)), _mm_mul_ps(dmin, _mm_cvtepi32_ps(summ[t]))));
        }
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}

/// `count` (1-4) tokens against a segment of interleaved Q4_K super-blocks, as k4_interleaved_tokens.
MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(k4_tokens)(const k4_interleaved *blocks, size_t sb, const moek_block_q8_K *const *xb,
                                                     __m128 *acc, int count, const uint8_t *next, size_t rowBytes) {
    switch (count) {
    case 4: MOEK_VNNI_NAME(k4_tokens_body)(blocks, sb, xb, acc, 4, 0, next, rowBytes); break;
    case 3: MOEK_VNNI_NAME(k4_tokens_body)(blocks, sb, xb, acc, 3, 0, next, rowBytes); break;
    case 2: MOEK_VNNI_NAME(k4_tokens_body)(blocks, sb, xb, acc, 2, 0, next, rowBytes); break;
    default: MOEK_VNNI_NAME(k4_tokens_body)(blocks, sb, xb, acc, 1, 0, next, rowBytes); break;
    }
}
/// The same for interleaved Q5_K super-blocks.
MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(k5_tokens)(const k4_interleaved *blocks, size_t sb, const moek_block_q8_K *const *xb,
                                                     __m128 *acc, int count, const uint8_t *next, size_t rowBytes) {
    switch (count) {
    case 4: MOEK_VNNI_NAME(k4_tokens_body)(blocks, sb, xb, acc, 4, 1, next, rowBytes); break;
    case 3: MOEK_VNNI_NAME(k4_tokens_body)(blocks, sb, xb, acc, 3, 1, next, rowBytes); break;
    case 2: MOEK_VNNI_NAME(k4_tokens_body)(blocks, sb, xb, acc, 2, 1, next, rowBytes); break;
    default: MOEK_VNNI_NAME(k4_tokens_body)(blocks, sb, xb, acc, 1, 1, next, rowBytes); break;
    }
}

/// Eight rows (two interleaved four-row super-blocks `lo`, `hi`) · `count` (1-2) tokens: each
/// shuffled activation dword feeds both halves' vpdpbusd, and the finish runs eight lanes wide
/// (rows 0-7 in order), with the four-row body's operations per lane (the same bits). Zen 5, one
/// thread, a 1024x2048 Q4_K matrix streamed, µs per token, eight rows vs four: 2 tokens 35.5 vs
/// 45.5, 4: 23.4 vs 30.0, 8: 18.9 vs 24.5, 64: 15.2 vs 21.4. Up to four tokens per pass spilled
/// registers (16 in VEX form) and was slower from 4 tokens on (8: 21.1, 64: 16.9).
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(k4x8_tokens_body)(const k4_interleaved *lo, const k4_interleaved *hi, size_t sb,
                                                        const moek_block_q8_K *const *xb, __m256 *acc, const int count,
                                                        const int fifth_bit, const uint8_t *next, size_t rowBytes) {
    const __m256i lowHalf = _mm256_set1_epi32(0xFFFF), zero = _mm256_setzero_si256();
    const size_t blockBytes = fifth_bit ? 176 : 144;
    __m256 a[2];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t i = 0; i < sb; i++) {
        const k4_interleaved *A = &lo[i], *B = &hi[i];
        if (next) {
            prefetch_block4(next + i * blockBytes, rowBytes, blockBytes);
            prefetch_block4(next + 4 * rowBytes + i * blockBytes, rowBytes, blockBytes);
        }
        __m256i summ[2], sumA[2], sumB[2];
        for (int t = 0; t < count; t++) {
            summ[t] = _mm256_set_m128i(k4_mins_sum(B, xb[t][i].bsums), k4_mins_sum(A, xb[t][i].bsums));
            sumA[t] = zero;
            sumB[t] = zero;
        }
        for (int j = 0; j < 8; j++) {
            const __m256i scA = _mm256_and_si256(_mm256_broadcastsi128_si256(A->scales[j]), lowHalf);
            const __m256i scB = _mm256_and_si256(_mm256_broadcastsi128_si256(B->scales[j]), lowHalf);
            __m256i sA[2], sB[2], act[2];
            for (int t = 0; t < count; t++) {
                sA[t] = zero;
                sB[t] = zero;
                act[t] = _mm256_loadu_si256((const __m256i *)(xb[t][i].qs + 32 * j));
            }
#define MOEK_VNNI_K4X8_GROUP(g)                                                                        \
            {                                                                                          \
                const __m256i qa = _mm256_loadu2_m128i(&A->q[j][(g) + 4], &A->q[j][g]);               \
                const __m256i qb = _mm256_loadu2_m128i(&B->q[j][(g) + 4], &B->q[j][g]);               \
                for (int t = 0; t < count; t++) {                                                      \
                    const __m256i v = _mm256_shuffle_epi32(act[t], (g) * 0x55);                      \
                    sA[t] = MOEK_DPBUSD(sA[t], qa, v);                                                 \
                    sB[t] = MOEK_DPBUSD(sB[t], qb, v);                                                 \
                }                                                                                      \
            }
            MOEK_VNNI_K4X8_GROUP(0) MOEK_VNNI_K4X8_GROUP(1)
            if (fifth_bit) {  // Q5_K: scale every two groups (see the top)
                for (int t = 0; t < count; t++) {
                    sumA[t] = _mm256_add_epi32(sumA[t], _mm256_madd_epi16(sA[t], scA));
                    sumB[t] = _mm256_add_epi32(sumB[t], _mm256_madd_epi16(sB[t], scB));
                    sA[t] = zero;
                    sB[t] = zero;
                }
            }
            MOEK_VNNI_K4X8_GROUP(2) MOEK_VNNI_K4X8_GROUP(3)
#undef MOEK_VNNI_K4X8_GROUP
            for (int t = 0; t < count; t++) {
                sumA[t] = _mm256_add_epi32(sumA[t], _mm256_madd_epi16(sA[t], scA));
                sumB[t] = _mm256_add_epi32(sumB[t], _mm256_madd_epi16(sB[t], scB));
            }
        }
        const __m256 d = _mm256_set_m128(B->d, A->d), dmin = _mm256_set_m128(B->dmin, A->dmin);
        for (int t = 0; t < count; t++) {
            // Row k's halves sit in lanes k and k+4 of its group's vector: low halves + high halves.
            const __m256i si = _mm256_add_epi32(_mm256_permute2x128_si256(sumA[t], sumB[t], 0x20),
                                                _mm256_permute2x128_si256(sumA[t], sumB[t], 0x31));
            const __m256 xd = _mm256_set1_ps(xb[t][i].d);
            a[t] = _mm256_add_ps(a[t], _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(d, xd), _mm256_cvtepi32_ps(si)),
                                                     _mm256_mul_ps(_mm256_mul_ps(dmin, xd), _mm256_cvtepi32_ps(summ[t]))));
        }
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}


/// Q6_K: sub-blocks j and j+1 (16 weights each) share a vector, the token's 32 activations of the
/// two with dword g of each half broadcast, so four vpdpbusd give rows 0-3's sums of sub-block j
/// in lanes 0-3 and of j+1 in lanes 4-7 (at most 16·63·127 = 128016: int32, multiplied by the
/// rows' int8 scales with vpmulld). The levels' offset and the finish are q6_interleaved_tokens's.
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(k6_tokens_body)(const q6_interleaved *blocks, size_t sb, const moek_block_q8_K *const *xb,
                                                      __m128 *acc, const int count, const uint8_t *next, size_t rowBytes) {
    const __m256i zero = _mm256_setzero_si256();
    __m128 a[4];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t i = 0; i < sb; i++) {
        const q6_interleaved *blk = &blocks[i];
        if (next) prefetch_block4(next + i * 210, rowBytes, 210);
        __m128i offset[4];
        __m256i sumi[4];
        for (int t = 0; t < count; t++) {
            offset[t] = q6_level_offset(blk, xb[t][i].bsums);
            sumi[t] = zero;
        }
        for (int j = 0; j < 16; j += 2) {
            // Row k's int8 scale, sign-extended from the high 16 bits of lane k, for j and j+1.
            const __m256i sc = _mm256_srai_epi32(_mm256_set_m128i(blk->scales[j + 1], blk->scales[j]), 16);
            __m256i s[4], act[4];
            for (int t = 0; t < count; t++) {
                s[t] = zero;
                act[t] = _mm256_loadu_si256((const __m256i *)(xb[t][i].qs + 16 * j));
            }
#define MOEK_VNNI_K6_GROUP(g)                                                                          \
            {                                                                                          \
                const __m256i q = _mm256_loadu2_m128i(&blk->q[j + 1][g], &blk->q[j][g]);              \
                for (int t = 0; t < count; t++)                                                        \
                    s[t] = MOEK_DPBUSD(s[t], q, _mm256_shuffle_epi32(act[t], (g) * 0x55));             \
            }
            MOEK_VNNI_K6_GROUP(0) MOEK_VNNI_K6_GROUP(1) MOEK_VNNI_K6_GROUP(2) MOEK_VNNI_K6_GROUP(3)
#undef MOEK_VNNI_K6_GROUP
            for (int t = 0; t < count; t++) sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(s[t], sc));
        }
        for (int t = 0; t < count; t++) {
            const __m128i si = _mm_sub_epi32(_mm_add_epi32(_mm256_castsi256_si128(sumi[t]), _mm256_extracti128_si256(sumi[t], 1)), offset[t]);
            // sum += d · x.d · float(sumi), per row
            a[t] = _mm_add_ps(a[t], _mm_mul_ps(_mm_mul_ps(blk->d, _mm_set1_ps(xb[t][i].d)), _mm_cvtepi32_ps(si)));
        }
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}

/// Eight Q6_K rows (two interleaved four-row super-blocks) · `count` (1-2) tokens, as
/// k4x8_tokens_body is to k4_tokens_body: each shuffled activation dword feeds both groups, the
/// finish runs eight lanes wide with k6_tokens_body's operations per lane (the same bits).
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(k6x8_tokens_body)(const q6_interleaved *lo, const q6_interleaved *hi, size_t sb,
                                                        const moek_block_q8_K *const *xb, __m256 *acc, const int count,
                                                        const uint8_t *next, size_t rowBytes) {
    const __m256i zero = _mm256_setzero_si256();
    __m256 a[2];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t i = 0; i < sb; i++) {
        const q6_interleaved *A = &lo[i], *B = &hi[i];
        if (next) {
            prefetch_block4(next + i * 210, rowBytes, 210);
            prefetch_block4(next + 4 * rowBytes + i * 210, rowBytes, 210);
        }
        __m256i offset[2], sumA[2], sumB[2];
        for (int t = 0; t < count; t++) {
            offset[t] = _mm256_set_m128i(q6_level_offset(B, xb[t][i].bsums), q6_level_offset(A, xb[t][i].bsums));
            sumA[t] = zero;
            sumB[t] = zero;
        }
        for (int j = 0; j < 16; j += 2) {
            const __m256i scA = _mm256_srai_epi32(_mm256_set_m128i(A->scales[j + 1], A->scales[j]), 16);
            const __m256i scB = _mm256_srai_epi32(_mm256_set_m128i(B->scales[j + 1], B->scales[j]), 16);
            __m256i sA[2], sB[2], act[2];
            for (int t = 0; t < count; t++) {
                sA[t] = zero;
                sB[t] = zero;
                act[t] = _mm256_loadu_si256((const __m256i *)(xb[t][i].qs + 16 * j));
            }
#define MOEK_VNNI_K6X8_GROUP(g)                                                                        \
            {                                                                                          \
                const __m256i qa = _mm256_loadu2_m128i(&A->q[j + 1][g], &A->q[j][g]);                 \
                const __m256i qb = _mm256_loadu2_m128i(&B->q[j + 1][g], &B->q[j][g]);                 \
                for (int t = 0; t < count; t++) {                                                      \
                    const __m256i v = _mm256_shuffle_epi32(act[t], (g) * 0x55);                      \
                    sA[t] = MOEK_DPBUSD(sA[t], qa, v);                                                 \
                    sB[t] = MOEK_DPBUSD(sB[t], qb, v);                                                 \
                }                                                                                      \
            }
            MOEK_VNNI_K6X8_GROUP(0) MOEK_VNNI_K6X8_GROUP(1) MOEK_VNNI_K6X8_GROUP(2) MOEK_VNNI_K6X8_GROUP(3)
#undef MOEK_VNNI_K6X8_GROUP
            for (int t = 0; t < count; t++) {
                sumA[t] = _mm256_add_epi32(sumA[t], _mm256_mullo_epi32(sA[t], scA));
                sumB[t] = _mm256_add_epi32(sumB[t], _mm256_mullo_epi32(sB[t], scB));
            }
        }
        const __m256 d = _mm256_set_m128(B->d, A->d);
        for (int t = 0; t < count; t++) {
            // Sub-block j's sums in lanes 0-3, j+1's in 4-7 of each group: low halves + high halves.
            const __m256i si = _mm256_sub_epi32(_mm256_add_epi32(_mm256_permute2x128_si256(sumA[t], sumB[t], 0x20),
                                                                 _mm256_permute2x128_si256(sumA[t], sumB[t], 0x31)),
                                                offset[t]);
            a[t] = _mm256_add_ps(a[t], _mm256_mul_ps(_mm256_mul_ps(d, _mm256_set1_ps(xb[t][i].d)), _mm256_cvtepi32_ps(si)));
        }
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}

/// `count` (1-4) tokens against a segment of interleaved Q6_K super-blocks, as q6_interleaved_tokens.
MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(k6_tokens)(const q6_interleaved *blocks, size_t sb, const moek_block_q8_K *const *xb,
                                                     __m128 *acc, int count, const uint8_t *next, size_t rowBytes) {
    switch (count) {
    case 4: MOEK_VNNI_NAME(k6_tokens_body)(blocks, sb, xb, acc, 4, next, rowBytes); break;
    case 3: MOEK_VNNI_NAME(k6_tokens_body)(blocks, sb, xb, acc, 3, next, rowBytes); break;
    case 2: MOEK_VNNI_NAME(k6_tokens_body)(blocks, sb, xb, acc, 2, next, rowBytes); break;
    default: MOEK_VNNI_NAME(k6_tokens_body)(blocks, sb, xb, acc, 1, next, rowBytes); break;
    }
}

/// Q4_K, Q5_K or Q6_K (`kind` 4, 5, 6) rows eight at a time (two four-row groups per pass);
/// returns how many rows it did (a multiple of 8), the rest left to the four-row tiles.
MOEK_VNNI_INLINE size_t MOEK_VNNI_NAME(gemm_k_rows8)(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                                     const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                                                     size_t tokens, float *y, size_t yStride, const int32_t *yIndex, const int kind) {
    const int q6 = kind == 6, q5 = kind == 5;
    const size_t nb = n / 256, blockBytes = q6 ? 210 : q5 ? 176 : 144;
    union { k4_interleaved k4[2][K_SEGMENT]; q6_interleaved q6[2][K_SEGMENT]; } segment;
    __m256 acc[TILE];
    size_t r = 0;
    for (; r + 8 <= rows; r += 8) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t s = 0; s < nb; s += K_SEGMENT) {
            const size_t sb = nb - s < K_SEGMENT ? nb - s : K_SEGMENT;
            const uint8_t *p = w0 + s * blockBytes;
            const uint8_t *next = tile_next_rows(p, rowBytes, 8, sb * blockBytes, tokens);
            for (size_t b = 0; b < sb; b++) {
                for (int half = 0; half < 2; half++) {
                    const uint8_t *ph = p + 4 * half * rowBytes + b * blockBytes;
                    if (q6) q6_interleave(ph, rowBytes, &segment.q6[half][b]);
                    else k4_interleave(ph, rowBytes, q5 ? 48 : 16, q5, &segment.k4[half][b]);
                }
            }
            for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
                const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
                for (size_t i = 0; i < tt; i++) {
                    float *out = y + token_row(yIndex, t0 + i) * yStride + r;
                    acc[i] = s == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out);
                }
                for (size_t i = 0; i < tt; i += 2) {
                    const moek_block_q8_K *xb[2];
                    const int count = tt - i < 2 ? 1 : 2;
                    for (int j = 0; j < count; j++) xb[j] = x + token_row(xIndex, t0 + i + j) * xStride + s;
                    const uint8_t *pf = i == 0 ? next : NULL;
                    if (q6 && count == 2) MOEK_VNNI_NAME(k6x8_tokens_body)(segment.q6[0], segment.q6[1], sb, xb, acc + i, 2, pf, rowBytes);
                    else if (q6) MOEK_VNNI_NAME(k6x8_tokens_body)(segment.q6[0], segment.q6[1], sb, xb, acc + i, 1, pf, rowBytes);
                    else if (q5 && count == 2) MOEK_VNNI_NAME(k4x8_tokens_body)(segment.k4[0], segment.k4[1], sb, xb, acc + i, 2, 1, pf, rowBytes);
                    else if (q5) MOEK_VNNI_NAME(k4x8_tokens_body)(segment.k4[0], segment.k4[1], sb, xb, acc + i, 1, 1, pf, rowBytes);
                    else if (count == 2) MOEK_VNNI_NAME(k4x8_tokens_body)(segment.k4[0], segment.k4[1], sb, xb, acc + i, 2, 0, pf, rowBytes);
                    else MOEK_VNNI_NAME(k4x8_tokens_body)(segment.k4[0], segment.k4[1], sb, xb, acc + i, 1, 0, pf, rowBytes);
                }
                for (size_t i = 0; i < tt; i++) _mm256_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
            }
        }
    }
    return r;
}
MOEK_VNNI_ATTR static size_t MOEK_VNNI_NAME(gemm_q4_K_rows8)(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                                             const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                                                             size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    return MOEK_VNNI_NAME(gemm_k_rows8)(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 4);
}
MOEK_VNNI_ATTR static size_t MOEK_VNNI_NAME(gemm_q5_K_rows8)(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                                             const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                                                             size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    return MOEK_VNNI_NAME(gemm_k_rows8)(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 5);
}
MOEK_VNNI_ATTR static size_t MOEK_VNNI_NAME(gemm_q6_K_rows8)(const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                                             const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                                                             size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    return MOEK_VNNI_NAME(gemm_k_rows8)(w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex, 6);
}

#undef MOEK_VNNI_INLINE
