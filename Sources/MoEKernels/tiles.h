// Shapes shared by the matrix-matrix tiles (gemm.c, vnni_qdot.h); not part of the API.
#ifndef MOEK_TILES_H
#define MOEK_TILES_H
#include <stddef.h>
#include <stdint.h>
#include "MoEKernels.h"

/// Blocks of 32 weights unpacked at a time (per row: 2 KiB of int8 and 64 scales, so four rows
/// stay in L1 while every token of the tile passes over them).
#define SEGMENT 64
/// Tokens whose accumulators are kept per pass over a segment. The tiles loop segments outside
/// tiles, so each segment is unpacked once for all tokens (olmoe Q4_K, 512-token prompt: unpacking
/// per tile of 8 tokens took as long as the products); a tile's sums wait in its output rows
/// between segments (see tile_resume).
#define TILE 8

/// Activation / output row of token t: index[t], or t without an index.
static inline size_t token_row(const int32_t *index, size_t t) { return index ? (size_t)index[t] : t; }

/// A Q4_0/Q8_0 tile pass's operands: for `count` tokens from token `first`, the activation
/// blocks (`xb`) and their offsets (`ob`) from block `s` on.
static inline void tile_q8_0_tokens(const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                                    size_t first, int count, size_t s, const moek_block_q8_0 **xb, const int32_t **ob) {
    // Not vectorized: with AVX-512 clang read the index with a masked load even when it is NULL,
    // and on AMD a masked-off load from an unmapped page takes a microcode assist (a fifth of a
    // 512-bit tile's time).
#pragma clang loop vectorize(disable)
    for (int j = 0; j < count; j++) {
        const size_t xi = token_row(xIndex, first + j);
        xb[j] = x + xi * xStride + s;
        ob[j] = offsets + xi * xStride + s;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
/// Four rows' sums of one token before `segment`: zero before the first, else what the previous
/// segment stored at `y` (a float store and load are exact, so the sums' bits are unchanged).
static inline __m128 tile_resume(size_t segment, const float *y) { return segment == 0 ? _mm_setzero_ps() : _mm_loadu_ps(y); }

/// The next row group's segment for a tile pass to prefetch as it goes: `p + rows * rowBytes`
/// when one tile of tokens passes over the current group (its pass spreads the prefetch); with
/// several tiles, every cache line of the next `rows` rows' `bytes` is prefetched here up front
/// (spread, 32 tokens of a Zen 1 Q4_0 matrix took 4.0 instead of 3.6 ms) and NULL is returned.
static inline const uint8_t *tile_next_rows(const uint8_t *p, size_t rowBytes, int rows, size_t bytes, size_t tokens) {
    const uint8_t *next = p + rows * rowBytes;
    if (tokens <= TILE) return next;
    for (int k = 0; k < rows; k++)
        for (size_t line = 0; line < bytes; line += 64) _mm_prefetch((const char *)(next + k * rowBytes + line), _MM_HINT_T0);
    return NULL;
}
#endif
#endif
