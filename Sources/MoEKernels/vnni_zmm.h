// Matrix-matrix tiles with 512-bit vpdpbusd (AVX-512 VNNI) for Q4_0, Q8_0, Q4_K, Q5_K and Q6_K,
// included once by vnni.c after the EVEX instantiation of vnni_qdot.h, whose helpers
// (transpose4x2_evex) they share.
//
// Sixteen rows per pass. A segment of their blocks is unpacked once into vectors that each hold
// one dword (four consecutive weights, unsigned bytes: Q4_0/Q4_K nibbles, Q8_0 bytes + 128,
// Q5_K levels 0..31, Q6_K levels 0..63) of all sixteen rows, row r in lane r. A token's matching
// activation dword is then vpdpbusd's broadcast memory operand ({1to16}): each row's block sum
// ends in its own lane, with no shuffles of activations and no folding of partial sums, where
// the 256-bit tiles (vnni_qdot.h, vnni_ktiles.h) shuffle every activation dword and fold two
// lanes per row. Zen 5, which runs 512-bit instructions whole, one thread, 64 tokens of a
// 1024x2048 matrix from L3, µs per token: Q4_0 7.0 against 14.3, Q8_0 6.9 against 13.2, Q4_K
// 6.5 against 14.2, Q5_K 6.6 against 42.3 (it had no tiles), Q6_K 6.9 against 15.5 (about 310 G
// multiply-adds a second). Every lane's integer sums are exact and its float operations the
// scalar twin's, so the results are the scalar bits.

#define MOEK_ZMM_ATTR __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define MOEK_ZMM_INLINE static inline __attribute__((always_inline)) MOEK_ZMM_ATTR

/// Blocks interleaved per segment: sixteen rows of 32 blocks are 16 KiB of unpacked bytes and
/// 2 KiB of scales, which leave room in L1 for the activations of the tokens in flight.
#define ZMM_SEGMENT 32

/// The cache lines of the next sixteen rows' segment, prefetched a few per block during a tile's
/// first two four-token passes over a segment (ZMM_PREFETCH_PASSES), so that the reads overlap
/// its products: a burst up front left a 16-token product waiting on memory, and the first pass
/// alone left 8-16 tokens waiting. One thread, a streamed 1024x2048 Q4_0 matrix, gathered
/// tokens, µs, first pass / two / every pass: 8 tokens 115.6 / 91.1 / 89.7 (88 from L3), 16:
/// 156.1 / 138.4 / 138.9, 40: 306 / 300 / 300.
typedef struct zmm_prefetch {
    const uint8_t *next;     // the next rows' segment, row 0
    size_t rowBytes, bytes;  // row stride; bytes of the segment per row
    const uint8_t *line, *end;
    int row, perBlock;       // the row `line` is in (16: done); lines per block
} zmm_prefetch;

/// A cursor over the segment of `bytes` per row at `next`, spread over `blocks` blocks.
static inline zmm_prefetch zmm_prefetch_start(const uint8_t *next, size_t rowBytes, size_t bytes, size_t blocks) {
    zmm_prefetch p = { next, rowBytes, bytes, (const uint8_t *)((uintptr_t)next & ~(uintptr_t)63), next + bytes, 0, 0 };
    p.perBlock = (int)((16 * (bytes / 64 + 2) + blocks - 1) / blocks);
    return p;
}

/// Four-token passes over a segment that spread the next rows' prefetch (the first ones).
#ifndef ZMM_PREFETCH_PASSES
#define ZMM_PREFETCH_PASSES 2
#endif
/// How many of a tile's four-token passes over a segment prefetch for `tokens` tokens (TILE is a
/// multiple of 4, so pass j covers tokens 4j..4j+3).
static inline size_t zmm_passes(size_t tokens) {
    const size_t passes = (tokens + 3) / 4;
    return passes < ZMM_PREFETCH_PASSES ? passes : ZMM_PREFETCH_PASSES;
}

/// Prefetches the cursor's next `perBlock` lines.
static inline void zmm_prefetch_step(zmm_prefetch *p) {
    for (int i = 0; i < p->perBlock && p->row < 16; i++) {
        _mm_prefetch((const char *)p->line, _MM_HINT_T0);
        p->line += 64;
        if (p->line >= p->end && ++p->row < 16) {
            const uint8_t *row = p->next + (size_t)p->row * p->rowBytes;
            p->line = (const uint8_t *)((uintptr_t)row & ~(uintptr_t)63);
            p->end = row + p->bytes;
        }
    }
}

/// Sixteen rows · `count` (1-4, a constant after inlining) tokens against a segment of `sb`
/// interleaved blocks: `acc[i]` += token i's sixteen row sums, block by block. Each of a block's
/// eight weight vectors meets its activation dword as vpdpbusd's broadcast memory operand, so the
/// products need no shuffles and end with one lane per row; two chains per token (even and odd
/// dwords, the first started at the block's offset) keep the adds' latency hidden.
MOEK_ZMM_INLINE void tile16_tokens(const __m512i (*iq)[8], const float (*dw)[16], size_t sb,
                                   const moek_block_q8_0 *const *xb, const int32_t *const *ob, int shift,
                                   __m512 *acc, const int count, zmm_prefetch *prefetch) {
    const __m512i zero = _mm512_setzero_si512();
    __m512 a[4];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t b = 0; b < sb; b++) {
        if (prefetch) zmm_prefetch_step(prefetch);
        __m512i even[4], odd[4];
        for (int t = 0; t < count; t++) {
            even[t] = _mm512_set1_epi32(-shift * ob[t][b]);
            odd[t] = zero;
        }
#define MOEK_ZMM_DWORD(j, sum)                                                                \
        {                                                                                     \
            const __m512i q = _mm512_load_si512(&iq[b][j]);                                   \
            for (int t = 0; t < count; t++) {                                                 \
                int32_t v;                                                                    \
                memcpy(&v, xb[t][b].qs + 4 * (j), 4);                                         \
                sum[t] = _mm512_dpbusd_epi32(sum[t], q, _mm512_set1_epi32(v));                \
            }                                                                                 \
        }
        MOEK_ZMM_DWORD(0, even) MOEK_ZMM_DWORD(1, odd) MOEK_ZMM_DWORD(2, even) MOEK_ZMM_DWORD(3, odd)
        MOEK_ZMM_DWORD(4, even) MOEK_ZMM_DWORD(5, odd) MOEK_ZMM_DWORD(6, even) MOEK_ZMM_DWORD(7, odd)
#undef MOEK_ZMM_DWORD
        const __m512 d = _mm512_load_ps(dw[b]);
        for (int t = 0; t < count; t++) {
            uint16_t h;
            memcpy(&h, &xb[t][b].d, 2);
            const __m512 dx = _mm512_cvtph_ps(_mm256_set1_epi16((short)h));
            a[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(_mm512_add_epi32(even[t], odd[t])), a[t]);
        }
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}

/// Q4_0 (q4 = 1) or Q8_0 (q4 = 0) rows sixteen at a time, as vnni_qdot.h's gemm_tiles for more
/// than one tile of tokens (the next rows are prefetched up front, tile_next_rows); returns how
/// many rows it did (a multiple of 16), the rest left to the 256-bit tiles.
MOEK_ZMM_ATTR static size_t gemm_tiles16(const int q4, const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                         const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride,
                                         const int32_t *xIndex, size_t tokens, float *y, size_t yStride,
                                         const int32_t *yIndex) {
    const size_t nb = n / 32, blockBytes = q4 ? 18 : 34;
    const int shift = q4 ? 1 : 16;
    _Alignas(64) __m512i iq[ZMM_SEGMENT][8];
    _Alignas(64) float dw[ZMM_SEGMENT][16];
    __m512 acc[TILE];
    const __m128i low = _mm_set1_epi8(0xF);
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    size_t r = 0;
    for (; r + 16 <= rows; r += 16) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t s = 0; s < nb; s += ZMM_SEGMENT) {
            const size_t sb = nb - s < ZMM_SEGMENT ? nb - s : ZMM_SEGMENT;
            const uint8_t *p = w0 + s * blockBytes;
            zmm_prefetch next = zmm_prefetch_start(p + 16 * rowBytes, rowBytes, sb * blockBytes, sb * zmm_passes(tokens));
            for (size_t b = 0; b < sb; b++, p += blockBytes) {
                for (int k = 0; k < 4; k++) {  // rows 4k..4k+3: quarter k of every vector
                    const uint8_t *pk = p + 4 * k * rowBytes;
                    _mm_store_ps(dw[b] + 4 * k, moek_scales4(pk, rowBytes));
                    if (q4) {  // dword j < 4: low nibbles of bytes 4j..4j+3; j >= 4: high nibbles of 4(j-4)..
                        __m128i packed[4], t[4];
                        for (int j = 0; j < 4; j++) packed[j] = _mm_loadu_si128((const __m128i *)(pk + j * rowBytes + 2));
                        moek_transpose4(packed, t);
                        for (int g = 0; g < 4; g++) {
                            _mm_store_si128((__m128i *)&iq[b][g] + k, _mm_and_si128(t[g], low));
                            _mm_store_si128((__m128i *)&iq[b][4 + g] + k, _mm_and_si128(_mm_srli_epi16(t[g], 4), low));
                        }
                    } else {  // dword g of each row in the low halves, 4 + g in the high ones
                        __m256i q[4], v[4];
                        for (int j = 0; j < 4; j++) q[j] = _mm256_loadu_si256((const __m256i *)(pk + j * rowBytes + 2));
                        transpose4x2_evex(q, v);
                        for (int g = 0; g < 4; g++) {
                            v[g] = _mm256_xor_si256(v[g], flip);
                            _mm_store_si128((__m128i *)&iq[b][g] + k, _mm256_castsi256_si128(v[g]));
                            _mm_store_si128((__m128i *)&iq[b][4 + g] + k, _mm256_extracti128_si256(v[g], 1));
                        }
                    }
                }
            }
            for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
                const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
                for (size_t i = 0; i < tt; i++)
                    acc[i] = s == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(y + token_row(yIndex, t0 + i) * yStride + r);
                for (size_t i = 0; i < tt; i += 4) {
                    const moek_block_q8_0 *xb[4];
                    const int32_t *ob[4];
                    const int count = tt - i < 4 ? (int)(tt - i) : 4;
                    tile_q8_0_tokens(x, offsets, xStride, xIndex, t0 + i, count, s, xb, ob);
                    const __m512i (*q)[8] = (const __m512i (*)[8])iq;
                    const float (*d)[16] = (const float (*)[16])dw;
                    zmm_prefetch *pf = r + 16 < rows && (t0 + i) / 4 < ZMM_PREFETCH_PASSES ? &next : NULL;
                    switch (count) {
                    case 4: tile16_tokens(q, d, sb, xb, ob, shift, acc + i, 4, pf); break;
                    case 3: tile16_tokens(q, d, sb, xb, ob, shift, acc + i, 3, pf); break;
                    case 2: tile16_tokens(q, d, sb, xb, ob, shift, acc + i, 2, pf); break;
                    default: tile16_tokens(q, d, sb, xb, ob, shift, acc + i, 1, pf); break;
                    }
                }
                for (size_t i = 0; i < tt; i++) _mm512_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
            }
        }
    }
    return r;
}

// Q4_K. Sixteen rows' super-block unpacked as for Q4_0 (vector (j, d): dword d of sub-block j,
// lane r: row r), plus each row's sub-block scales (an int32 lane each) and minimums (sub-blocks
// 2p and 2p+1 as an int16 pair per lane). Per token and sub-block, eight vpdpbusd in two chains
// (even and odd dwords: 16 products a lane, at most 16·15·128 = 30720, so an int16 holds each
// sum) and two vpdpwssd against the scales (a lane's low half times the scale, its high half, the
// sign, times 0) accumulate the scaled sums exactly; four vpdpwssd of the minimum pairs against
// the token's paired sub-block sums give the minimums' term. The float finish is the scalar
// twin's, lane by lane.

/// Sixteen Q4_K rows' super-block, unpacked (4.9 KiB).
typedef struct zk4_block {
    __m512i q[8][8];    ///< sub-block j, dword d: weights 4d..4d+3 of sub-block j, lane r: row r
    __m512i scales[8];  ///< sub-block j: row r's 6-bit scale in lane r
    __m512i mins[4];    ///< sub-blocks 2p, 2p+1: row r's two minimums, an int16 pair in lane r
    __m512 d, dmin;     ///< the rows' super-block scales
} zk4_block;

/// Super-blocks unpacked per segment: four (1024 inputs) take 19.6 KiB (Q4_K) or 22.3 KiB (Q6_K).
#define ZK_SEGMENT 4

/// Sixteen rows' eight bytes each (`rows[r]`) as eight columns: byte j of rows 0-15 in `cols[j]`.
MOEK_ZMM_INLINE void transpose16x8_bytes(const uint64_t *rows, __m128i *cols) {
    const __m128i order = _mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    __m128i a[8], t[8], u[8];
    // a[k]: word j = byte j of rows 2k and 2k+1; then an 8x8 transpose of words.
    for (int k = 0; k < 8; k++) a[k] = _mm_shuffle_epi8(_mm_set_epi64x((long long)rows[2 * k + 1], (long long)rows[2 * k]), order);
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm_unpacklo_epi16(a[k], a[k + 1]);
        t[k + 1] = _mm_unpackhi_epi16(a[k], a[k + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm_unpacklo_epi32(t[h], t[h + 2]);
        u[h + 1] = _mm_unpackhi_epi32(t[h], t[h + 2]);
        u[h + 2] = _mm_unpacklo_epi32(t[h + 1], t[h + 3]);
        u[h + 3] = _mm_unpackhi_epi32(t[h + 1], t[h + 3]);
    }
    for (int j = 0; j < 4; j++) {
        cols[2 * j] = _mm_unpacklo_epi64(u[j], u[j + 4]);
        cols[2 * j + 1] = _mm_unpackhi_epi64(u[j], u[j + 4]);
    }
}

/// Unpacks the Q4_K (`q5` 0) or Q5_K (1: levels 0..31, bit 4 from qh) super-block at p and its
/// fifteen rowBytes-apart neighbours.
MOEK_ZMM_INLINE void zk4_unpack(const uint8_t *p, size_t rowBytes, zk4_block *out, const int q5) {
    const __m256i low = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    const size_t qs = q5 ? 48 : 16;
    uint64_t sc[16], mn[16];
    for (int k = 0; k < 4; k++) {
        const uint8_t *pk = p + 4 * k * rowBytes;
        _mm_store_ps((float *)&out->d + 4 * k, moek_scales4(pk, rowBytes));
        _mm_store_ps((float *)&out->dmin + 4 * k, moek_scales4(pk + 2, rowBytes));
    }
    for (int r = 0; r < 16; r++) {
        sc[r] = k4_unpack(p + r * rowBytes + 4, 0);
        mn[r] = k4_unpack(p + r * rowBytes + 4, 1);
    }
    __m128i cols[8];
    transpose16x8_bytes(sc, cols);
    for (int j = 0; j < 8; j++) out->scales[j] = _mm512_cvtepu8_epi32(cols[j]);
    transpose16x8_bytes(mn, cols);
    for (int q = 0; q < 4; q++)
        out->mins[q] = _mm512_or_si512(_mm512_cvtepu8_epi32(cols[2 * q]), _mm512_slli_epi32(_mm512_cvtepu8_epi32(cols[2 * q + 1]), 16));
    for (int c = 0; c < 4; c++) {  // chunk c: low nibbles sub-block 2c, high nibbles 2c + 1
        for (int k = 0; k < 4; k++) {  // rows 4k..4k+3: quarter k of every vector
            __m256i b[4], v[4], hb[4], hv[4];
            for (int j = 0; j < 4; j++) b[j] = _mm256_loadu_si256((const __m256i *)(p + (4 * k + j) * rowBytes + qs + 32 * c));
            transpose4x2_evex(b, v);  // v[g]: dword g of the four rows (low half), dword 4 + g (high half)
            if (q5) {  // qh byte l: bit 2c for weight 64c + l, bit 2c + 1 for weight 64c + 32 + l
                for (int j = 0; j < 4; j++) hb[j] = _mm256_loadu_si256((const __m256i *)(p + (4 * k + j) * rowBytes + 16));
                transpose4x2_evex(hb, hv);
            }
            for (int g = 0; g < 4; g++) {
                __m256i l = _mm256_and_si256(v[g], low), h = _mm256_and_si256(_mm256_srli_epi16(v[g], 4), low);
                if (q5) {
                    l = _mm256_or_si256(l, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv[g], 2 * c), one), 4));
                    h = _mm256_or_si256(h, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv[g], 2 * c + 1), one), 4));
                }
                _mm_store_si128((__m128i *)&out->q[2 * c][g] + k, _mm256_castsi256_si128(l));
                _mm_store_si128((__m128i *)&out->q[2 * c][4 + g] + k, _mm256_extracti128_si256(l, 1));
                _mm_store_si128((__m128i *)&out->q[2 * c + 1][g] + k, _mm256_castsi256_si128(h));
                _mm_store_si128((__m128i *)&out->q[2 * c + 1][4 + g] + k, _mm256_extracti128_si256(h, 1));
            }
        }
    }
}

/// Sixteen Q4_K (`q5` 0) or Q5_K (1) rows · `count` (1-4, a constant after inlining) tokens
/// against a segment of `sb` unpacked super-blocks: `acc[i]` += token i's sixteen row sums.
/// Q5_K's 31-level chains can reach 16·31·128, past int16, so their sum takes vpmulld instead.
MOEK_ZMM_INLINE void zk4_tokens(const zk4_block *blocks, size_t sb, const moek_block_q8_K *const *xb, __m512 *acc,
                                const int count, zmm_prefetch *prefetch, const int q5) {
    const __m512i zero = _mm512_setzero_si512();
    __m512 a[4];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t i = 0; i < sb; i++) {
        const zk4_block *blk = &blocks[i];
        __m512i sumi[4], summ[4];
        for (int t = 0; t < count; t++) {
            // Sub-block sums of the activations, paired: dword p = (sum of 2p, sum of 2p + 1).
            const int16_t *bs = xb[t][i].bsums;
            const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bs), _mm_loadu_si128((const __m128i *)(bs + 8)));
            __m512i m = _mm512_dpwssd_epi32(zero, blk->mins[0], _mm512_broadcastd_epi32(pairs));
            m = _mm512_dpwssd_epi32(m, blk->mins[1], _mm512_broadcastd_epi32(_mm_shuffle_epi32(pairs, 0x55)));
            m = _mm512_dpwssd_epi32(m, blk->mins[2], _mm512_broadcastd_epi32(_mm_shuffle_epi32(pairs, 0xAA)));
            summ[t] = _mm512_dpwssd_epi32(m, blk->mins[3], _mm512_broadcastd_epi32(_mm_shuffle_epi32(pairs, 0xFF)));
            sumi[t] = zero;
        }
        for (int j = 0; j < 8; j++) {
            if (prefetch) zmm_prefetch_step(prefetch);
            __m512i even[4], odd[4];
            for (int t = 0; t < count; t++) {
                even[t] = zero;
                odd[t] = zero;
            }
#define MOEK_ZK4_DWORD(d, sum)                                                                \
            {                                                                                 \
                const __m512i q = _mm512_load_si512(&blk->q[j][d]);                           \
                for (int t = 0; t < count; t++) {                                             \
                    int32_t v;                                                                \
                    memcpy(&v, xb[t][i].qs + 32 * j + 4 * (d), 4);                            \
                    sum[t] = _mm512_dpbusd_epi32(sum[t], q, _mm512_set1_epi32(v));            \
                }                                                                             \
            }
            MOEK_ZK4_DWORD(0, even) MOEK_ZK4_DWORD(1, odd) MOEK_ZK4_DWORD(2, even) MOEK_ZK4_DWORD(3, odd)
            MOEK_ZK4_DWORD(4, even) MOEK_ZK4_DWORD(5, odd) MOEK_ZK4_DWORD(6, even) MOEK_ZK4_DWORD(7, odd)
#undef MOEK_ZK4_DWORD
            const __m512i sc = _mm512_load_si512(&blk->scales[j]);
            for (int t = 0; t < count; t++) {
                if (q5) sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(_mm512_add_epi32(even[t], odd[t]), sc));
                else sumi[t] = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(sumi[t], even[t], sc), odd[t], sc);
            }
        }
        for (int t = 0; t < count; t++) {
            // sum += d · x.d · float(sumi) − dmin · x.d · float(summ), per row
            const __m512 xd = _mm512_set1_ps(xb[t][i].d);
            const __m512 d = _mm512_mul_ps(blk->d, xd), dmin = _mm512_mul_ps(blk->dmin, xd);
            a[t] = _mm512_add_ps(a[t], _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi[t])),
                                                     _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(summ[t]))));
        }
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}

// Q6_K. Sub-blocks of 16 weights (four dwords): vector (k, d) holds dword d of sub-block k of
// sixteen rows as unsigned levels 0..63, so four vpdpbusd per token give each row's sub-block sum
// of level · activation (up to 16·63·128, so scaled with vpmulld by the row's int8 scale, an
// int32 lane). The levels' offset of 32 comes back out once per super-block: 32·Σ scale ·
// (activation sum of the sub-block), eight vpdpwssd of the rows' paired scales (times 32) against
// the token's paired bsums. The finish is the scalar twin's (d · x.d · float(sumi), per lane).

/// Sixteen Q6_K rows' super-block, unpacked (5.6 KiB).
typedef struct zk6_block {
    __m512i q[16][4];    ///< sub-block k, dword d: levels 4d..4d+3 of sub-block k, lane r: row r
    __m512i scales[16];  ///< sub-block k: row r's int8 scale, sign-extended, in lane r
    __m512i pairs[8];    ///< sub-blocks 2p, 2p+1: row r's two scales times 32, an int16 pair in lane r
    __m512 d;            ///< the rows' super-block scales
} zk6_block;

/// Unpacks the Q6_K super-block at p and its fifteen rowBytes-apart neighbours.
MOEK_ZMM_INLINE void zk6_unpack(const uint8_t *p, size_t rowBytes, zk6_block *out) {
    const __m256i low = _mm256_set1_epi8(0xF), two = _mm256_set1_epi8(3);
    for (int k = 0; k < 4; k++) _mm_store_ps((float *)&out->d + 4 * k, moek_scales4(p + 4 * k * rowBytes + 208, rowBytes));
    uint64_t lo[16], hi[16];
    for (int r = 0; r < 16; r++) {
        memcpy(&lo[r], p + r * rowBytes + 192, 8);
        memcpy(&hi[r], p + r * rowBytes + 200, 8);
    }
    __m128i cols[16];
    transpose16x8_bytes(lo, cols);
    transpose16x8_bytes(hi, cols + 8);
    const __m512i half = _mm512_set1_epi32(0xFFFF);
    for (int k = 0; k < 16; k++) out->scales[k] = _mm512_cvtepi8_epi32(cols[k]);
    for (int q = 0; q < 8; q++)
        out->pairs[q] = _mm512_or_si512(_mm512_and_si512(_mm512_slli_epi32(out->scales[2 * q], 5), half),
                                        _mm512_slli_epi32(out->scales[2 * q + 1], 21));
    for (int h = 0; h < 2; h++) {      // weights 128h.. : ql bytes 64h.., qh bytes 32h..
        for (int k = 0; k < 4; k++) {  // rows 4k..4k+3: quarter k of every vector
            __m256i a[4], b[4], c[4], at[4], bt[4], ct[4];
            for (int j = 0; j < 4; j++) {
                const uint8_t *row = p + (4 * k + j) * rowBytes;
                a[j] = _mm256_loadu_si256((const __m256i *)(row + 64 * h));
                b[j] = _mm256_loadu_si256((const __m256i *)(row + 64 * h + 32));
                c[j] = _mm256_loadu_si256((const __m256i *)(row + 128 + 32 * h));
            }
            // Byte-wise level arithmetic commutes with moving dwords, so transpose first:
            // xt[g] holds dword g of the four rows (low half) and dword 4 + g (high half).
            transpose4x2_evex(a, at);
            transpose4x2_evex(b, bt);
            transpose4x2_evex(c, ct);
            for (int g = 0; g < 4; g++) {
                // Weights 128h + 32m + l (l = 0..31): low bits from a (m = 0, 2) or b (1, 3), the
                // low or high nibble; high bits 2m of c. Dwords 0-3 are sub-block 8h + 2m, 4-7 the next.
                const __m256i hb = ct[g];
                const __m256i level[4] = {
                    _mm256_or_si256(_mm256_and_si256(at[g], low), _mm256_slli_epi16(_mm256_and_si256(hb, two), 4)),
                    _mm256_or_si256(_mm256_and_si256(bt[g], low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), two), 4)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(at[g], 4), low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), two), 4)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bt[g], 4), low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), two), 4)),
                };
                for (int m = 0; m < 4; m++) {
                    _mm_store_si128((__m128i *)&out->q[8 * h + 2 * m][g] + k, _mm256_castsi256_si128(level[m]));
                    _mm_store_si128((__m128i *)&out->q[8 * h + 2 * m + 1][g] + k, _mm256_extracti128_si256(level[m], 1));
                }
            }
        }
    }
}

/// Sixteen Q6_K rows · `count` (1-4, a constant after inlining) tokens against a segment of `sb`
/// unpacked super-blocks: `acc[i]` += token i's sixteen row sums.
MOEK_ZMM_INLINE void zk6_tokens(const zk6_block *blocks, size_t sb, const moek_block_q8_K *const *xb, __m512 *acc,
                                const int count, zmm_prefetch *prefetch) {
    const __m512i zero = _mm512_setzero_si512();
    __m512 a[4];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t i = 0; i < sb; i++) {
        const zk6_block *blk = &blocks[i];
        __m512i sumi[4];
        for (int t = 0; t < count; t++) {
            __m512i o = zero;
            for (int q = 0; q < 8; q++) {
                int32_t bs;  // the bsums of sub-blocks 2q and 2q + 1, an int16 pair
                memcpy(&bs, xb[t][i].bsums + 2 * q, 4);
                o = _mm512_dpwssd_epi32(o, blk->pairs[q], _mm512_set1_epi32(bs));
            }
            sumi[t] = _mm512_sub_epi32(zero, o);
        }
        for (int k = 0; k < 16; k++) {
            if (prefetch && (k & 1)) zmm_prefetch_step(prefetch);
            __m512i sum[4];
            for (int t = 0; t < count; t++) sum[t] = zero;
            for (int d = 0; d < 4; d++) {
                const __m512i q = _mm512_load_si512(&blk->q[k][d]);
                for (int t = 0; t < count; t++) {
                    int32_t v;
                    memcpy(&v, xb[t][i].qs + 16 * k + 4 * d, 4);
                    sum[t] = _mm512_dpbusd_epi32(sum[t], q, _mm512_set1_epi32(v));
                }
            }
            const __m512i sc = _mm512_load_si512(&blk->scales[k]);
            for (int t = 0; t < count; t++) sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(sum[t], sc));
        }
        for (int t = 0; t < count; t++)  // sum += d · x.d · float(sumi), per row
            a[t] = _mm512_add_ps(a[t], _mm512_mul_ps(_mm512_mul_ps(blk->d, _mm512_set1_ps(xb[t][i].d)), _mm512_cvtepi32_ps(sumi[t])));
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}

/// Q4_K, Q5_K or Q6_K (`kind` 4, 5, 6, a constant in each caller) rows sixteen at a time (n a
/// multiple of 256), as moek_gemm_q4_K_q8_K; returns how many rows it did (a multiple of 16), the
/// rest left to the 256-bit kernels.
MOEK_ZMM_INLINE size_t gemm_k_tiles16(const int kind, const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x,
                                      size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride,
                                      const int32_t *yIndex) {
    const int q6 = kind == 6, q5 = kind == 5;
    const size_t nb = n / 256, blockBytes = q6 ? 210 : q5 ? 176 : 144;
    _Alignas(64) union { zk4_block k4[ZK_SEGMENT]; zk6_block k6[ZK_SEGMENT]; } segment;
    __m512 acc[TILE];
    size_t r = 0;
    for (; r + 16 <= rows; r += 16) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t s = 0; s < nb; s += ZK_SEGMENT) {
            const size_t sb = nb - s < ZK_SEGMENT ? nb - s : ZK_SEGMENT;
            const uint8_t *p = w0 + s * blockBytes;
            zmm_prefetch next = zmm_prefetch_start(p + 16 * rowBytes, rowBytes, sb * blockBytes, sb * 8 * zmm_passes(tokens));
            for (size_t b = 0; b < sb; b++) {
                if (q6) zk6_unpack(p + b * blockBytes, rowBytes, &segment.k6[b]);
                else zk4_unpack(p + b * blockBytes, rowBytes, &segment.k4[b], q5);
            }
            for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
                const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
                for (size_t i = 0; i < tt; i++)
                    acc[i] = s == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(y + token_row(yIndex, t0 + i) * yStride + r);
                for (size_t i = 0; i < tt; i += 4) {
                    const moek_block_q8_K *xb[4];
                    const int count = tt - i < 4 ? (int)(tt - i) : 4;
#pragma clang loop vectorize(disable)
                    for (int j = 0; j < count; j++) xb[j] = x + token_row(xIndex, t0 + i + j) * xStride + s;
                    zmm_prefetch *pf = r + 16 < rows && (t0 + i) / 4 < ZMM_PREFETCH_PASSES ? &next : NULL;
#define MOEK_ZK_TOKENS(c) (q6 ? zk6_tokens(segment.k6, sb, xb, acc + i, c, pf) : zk4_tokens(segment.k4, sb, xb, acc + i, c, pf, q5))
                    switch (count) {
                    case 4: MOEK_ZK_TOKENS(4); break;
                    case 3: MOEK_ZK_TOKENS(3); break;
                    case 2: MOEK_ZK_TOKENS(2); break;
                    default: MOEK_ZK_TOKENS(1); break;
                    }
#undef MOEK_ZK_TOKENS
                }
                for (size_t i = 0; i < tt; i++) _mm512_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
            }
        }
    }
    return r;
}

MOEK_ZMM_ATTR static size_t gemm_q4_K_tiles16(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x,
                                              size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride,
                                              const int32_t *yIndex) {
    return gemm_k_tiles16(4, w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}
MOEK_ZMM_ATTR static size_t gemm_q5_K_tiles16(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x,
                                              size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride,
                                              const int32_t *yIndex) {
    return gemm_k_tiles16(5, w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}
MOEK_ZMM_ATTR static size_t gemm_q6_K_tiles16(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x,
                                              size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride,
                                              const int32_t *yIndex) {
    return gemm_k_tiles16(6, w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}
