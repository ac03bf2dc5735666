// Q4_0 / Q8_0 matrix-matrix tiles with 512-bit vpdpbusd (AVX-512 VNNI), included once by vnni.c
// after the EVEX instantiation of vnni_qdot.h, whose helpers (transpose4x2_evex) they share.
//
// Sixteen rows per pass. A segment of their blocks is unpacked once into eight 512-bit vectors
// per block, vector j holding dword j (weights 4j..4j+3 of the block's 32, unsigned bytes: Q4_0
// nibbles, Q8_0 bytes + 128) of rows 0-15 in lanes 0-15. A token's activation dword j is then
// vpdpbusd's broadcast memory operand ({1to16}): eight instructions give each row's block sum in
// its own lane, with no shuffles of activations and no folding of partial sums, where the 256-bit
// tiles (vnni_qdot.h) shuffle every activation dword and fold two lanes per row. Zen 5, which
// runs 512-bit instructions whole, one thread, 64 tokens of a 1024x2048 matrix: Q4_0 7.0 µs per
// token against 14.3, Q8_0 6.9 against 13.2 (312 G multiply-adds a second from L3). Every lane's
// float operations are the 256-bit tiles' (tile8_tokens), so the results are the scalar twins'
// bits.

#define MOEK_ZMM_ATTR __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define MOEK_ZMM_INLINE static inline __attribute__((always_inline)) MOEK_ZMM_ATTR

/// Blocks interleaved per segment: sixteen rows of 32 blocks are 16 KiB of unpacked bytes and
/// 2 KiB of scales, which leave room in L1 for the activations of the tokens in flight.
#define ZMM_SEGMENT 32

/// The cache lines of the next sixteen rows' segment, prefetched a few per block during a tile's
/// first token pass so that the reads overlap its products (a burst up front left a 16-token
/// product waiting on memory).
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
            zmm_prefetch next = zmm_prefetch_start(p + 16 * rowBytes, rowBytes, sb * blockBytes, sb);
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
                    zmm_prefetch *pf = t0 == 0 && i == 0 && r + 16 < rows ? &next : NULL;
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

#undef MOEK_ZMM_INLINE
