// Shapes shared by the matrix-matrix tiles (gemm.c, vnni_qdot.h); not part of the API.
#ifndef MOEK_TILES_H
#define MOEK_TILES_H
#include <stddef.h>
#include <stdint.h>

/// Blocks of 32 weights unpacked at a time (per row: 2 KiB of int8 and 64 scales, so four rows
/// stay in L1 while every token of the tile passes over them).
#define SEGMENT 64
/// Tokens whose accumulators are kept per pass over a segment.
#define TILE 8

/// Activation / output row of token t: index[t], or t without an index.
static inline size_t token_row(const int32_t *index, size_t t) { return index ? (size_t)index[t] : t; }
#endif
