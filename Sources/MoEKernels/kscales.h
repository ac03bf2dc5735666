// Q4_K/Q5_K scale unpacking shared by the scalar, AVX2 and NEON kernels (not part of the API).
#ifndef MOE_KERNELS_KSCALES_H
#define MOE_KERNELS_KSCALES_H

#include <stdint.h>

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

#endif
