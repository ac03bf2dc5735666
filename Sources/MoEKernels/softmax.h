// Attention's softmax, the parts every path shares (not part of the API): its exp, written once
// here and lane by lane in the vector forms with the same operations in the same order, and the
// bookkeeping of its eight lanes (element i in lane i mod 8), so the SIMD softmax kernels return
// the scalar twin's bits. SwiGLU's product (moek_silu_mul) uses the same exp, for the same reason.
#ifndef MOE_KERNELS_SOFTMAX_H
#define MOE_KERNELS_SOFTMAX_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/// Below this exp(x) is taken as 0 (e^-87 ≈ 1.6e-38, the bottom of the normal floats).
#define MOEK_EXP_FLOOR (-87.0f)

/// Constants of moek_exp_nonpositive: x = n·ln2 + r with ln2 in two parts (the first exact in a
/// few bits, so n·hi is exact), and a degree-6 polynomial for e^r on |r| <= ln2/2 (Cephes' expf
/// coefficients; about one ulp).
#define MOEK_LOG2E 1.44269504088896341f
#define MOEK_LN2_HI 0.693359375f
#define MOEK_LN2_LO (-2.12194440e-4f)
#define MOEK_EXP_P0 1.9875691500e-4f
#define MOEK_EXP_P1 1.3981999507e-3f
#define MOEK_EXP_P2 8.3334519073e-3f
#define MOEK_EXP_P3 4.1665795894e-2f
#define MOEK_EXP_P4 1.6666665459e-1f
#define MOEK_EXP_P5 5.0000001201e-1f

/// e^x for x <= 0 (softmax inputs less their maximum); 0 below MOEK_EXP_FLOOR or for NaN. The
/// vector forms do exactly these operations (fused where fmaf is written) per lane.
static inline float moek_exp_nonpositive(float x) {
    if (!(x >= MOEK_EXP_FLOOR)) return 0;
    const float t = x * MOEK_LOG2E;
    const float n = nearbyintf(t);  // to nearest, ties to even (the default rounding mode)
    float r = fmaf(n, -MOEK_LN2_HI, x);
    r = fmaf(n, -MOEK_LN2_LO, r);
    float y = MOEK_EXP_P0;
    y = fmaf(y, r, MOEK_EXP_P1);
    y = fmaf(y, r, MOEK_EXP_P2);
    y = fmaf(y, r, MOEK_EXP_P3);
    y = fmaf(y, r, MOEK_EXP_P4);
    y = fmaf(y, r, MOEK_EXP_P5);
    const float r2 = r * r;
    y = fmaf(y, r2, r);
    y = y + 1.0f;
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;  // 2^n; n is in -126...0 here
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

/// SwiGLU's product for one element: silu(x) · u, silu(x) = x · sigmoid(x), with the sigmoid
/// from e = e^-|x| (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) below. NaN stays NaN;
/// below -87 the sigmoid is 0. The vector forms do the same operations per lane.
static inline float moek_silu_mul(float x, float u) {
    const float e = moek_exp_nonpositive(-fabsf(x));
    const float s = (x < 0 ? e : 1.0f) / (1.0f + e);
    return x * s * u;
}

/// The maximum of p[0..<n], given the eight lane maxima of the elements before `from` (the vector
/// forms' running maxima; the scalar twin passes from = 0 and lanes all p[0]): the rest join their
/// lanes i mod 8, then the lanes are compared in order.
static inline float moek_softmax_max(const float *p, size_t from, size_t n, float m[8]) {
    for (size_t i = from; i < n; i++) m[i % 8] = p[i] > m[i % 8] ? p[i] : m[i % 8];
    float max = m[0];
    for (int j = 1; j < 8; j++) max = m[j] > max ? m[j] : max;
    return max;
}

/// exp(p[i] − max) in place for i in from..<n, added to lane i mod 8 of `acc` (double sums of the
/// elements before `from`); returns 1 / (the lanes added in order), rounded to float.
static inline float moek_softmax_inverse_sum(float *p, size_t from, size_t n, float max, double acc[8]) {
    for (size_t i = from; i < n; i++) {
        p[i] = moek_exp_nonpositive(p[i] - max);
        acc[i % 8] += (double)p[i];
    }
    double sum = acc[0];
    for (int j = 1; j < 8; j++) sum += acc[j];
    return (float)(1 / sum);
}

#endif
