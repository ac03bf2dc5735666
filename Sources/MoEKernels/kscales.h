// Q4_K/Q5_K scale unpacking shared by the scalar, AVX2 and NEON kernels (not part of the API).
#ifndef MOE_KERNELS_KSCALES_H
#define MOE_KERNELS_KSCALES_H

#include <stdint.h>
#include <string.h>

// The 6-bit scale and min of sub-block j from a Q4_K/Q5_K block's 12 packed bytes.
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) { *sc = q[j] & 63; *m = q[j + 4] & 63; }
    else { *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

// For 64-element chunk c of a Q4_K/Q5_K block: the scales of its two sub-blocks, and the integer
// the minimums subtract (each min times the activation sum of its 32 elements, from Q8_K's bsums).
static inline int chunk_scales_k4(int c, const uint8_t *scales, const int16_t *bsums, int *sc1, int *sc2) {
    int m1, m2;
    scale_min_k4(2 * c, scales, sc1, &m1);
    scale_min_k4(2 * c + 1, scales, sc2, &m2);
    return m1 * (bsums[4 * c] + bsums[4 * c + 1]) + m2 * (bsums[4 * c + 2] + bsums[4 * c + 3]);
}

/// The eight 6-bit scales (bytes 0-7 of the result) or minimums of a Q4_K/Q5_K block from its 12
/// packed bytes (the layout scale_min_k4 reads, four sub-blocks per 32-bit word at a time).
static inline uint64_t k4_unpack(const uint8_t *packed, int mins) {
    uint32_t w0, w1, w2;
    memcpy(&w0, packed, 4); memcpy(&w1, packed + 4, 4); memcpy(&w2, packed + 8, 4);
    const uint32_t six = 0x3F3F3F3Fu, four = 0x0F0F0F0Fu, two = 0x03030303u;
    // Sub-blocks 0-3: the low six bits of bytes 0-3 (scales) or 4-7 (mins). Sub-blocks 4-7: a
    // nibble of bytes 8-11 (low: scales, high: mins) and, above it, the top two bits of bytes 0-3
    // (scales) or 4-7 (mins).
    const uint32_t first = mins ? w1 & six : w0 & six;
    const uint32_t second = mins ? ((w2 >> 4) & four) | (((w1 >> 6) & two) << 4) : (w2 & four) | (((w0 >> 6) & two) << 4);
    return (uint64_t)first | (uint64_t)second << 32;
}

#endif
