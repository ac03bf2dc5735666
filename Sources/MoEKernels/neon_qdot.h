// The NEON quantized dot products, included twice by neon.c (no include guard): once for baseline
// ARMv8.0 and once for the dot-product extension. The includer defines
//   MOEK_NEON_ATTR        the functions' target attribute (empty, or target("dotprod"))
//   MOEK_NEON_NAME(name)  the name of this copy of a function (name_base, name_sdot)
//   MOEK_NEON_DOT16(q, a) four int32 lanes whose total is Σ q[i]·a[i] over 16 signed bytes
// Every block's integer sum is exact, and each is finished with the scalar twin's float
// operations in the same order (per row: sum += (weight scale · activation scale) · float(block
// sum), fused into one multiply-add for Q4_0/Q8_0 as moek_finish1 does), so both copies return the
// scalar result bit for bit, one row or four.

/// Σ q[i]·a[i] for 32 elements given as two halves of 16, as four lanes.
MOEK_NEON_ATTR static inline int32x4_t MOEK_NEON_NAME(dot32x4)(int8x16_t q0, int8x16_t q1, const int8_t *a) {
    return vaddq_s32(MOEK_NEON_DOT16(q0, vld1q_s8(a)), MOEK_NEON_DOT16(q1, vld1q_s8(a + 16)));
}

MOEK_NEON_ATTR static float MOEK_NEON_NAME(dot_q8_0)(const void *w, const moek_block_q8_0 *x, size_t n) {
    const uint8_t *wb = (const uint8_t *)w;
    float sum = 0;
    for (size_t b = 0; b < n / 32; b++, wb += 34) {
        uint16_t dh; memcpy(&dh, wb, 2);
        const int32_t acc = vaddvq_s32(MOEK_NEON_NAME(dot32x4)(vld1q_s8((const int8_t *)(wb + 2)), vld1q_s8((const int8_t *)(wb + 18)), x[b].qs));
        sum = moek_finish1(sum, moek_half_to_float(dh) * moek_half_to_float(x[b].d), acc);
    }
    return sum;
}

/// A Q4_0 block's 32 levels minus 8, as signed bytes (elements 0-15, 16-31).
MOEK_NEON_ATTR static inline void MOEK_NEON_NAME(q4_levels)(const uint8_t *packed, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t bits = vld1q_u8(packed);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(bits, vdupq_n_u8(0xF))), vdupq_n_s8(8));
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(bits, 4)), vdupq_n_s8(8));
}

MOEK_NEON_ATTR static float MOEK_NEON_NAME(dot_q4_0)(const void *w, const moek_block_q8_0 *x, size_t n) {
    const uint8_t *wb = (const uint8_t *)w;
    float sum = 0;
    for (size_t b = 0; b < n / 32; b++, wb += 18) {
        uint16_t dh; memcpy(&dh, wb, 2);
        int8x16_t lo, hi;
        MOEK_NEON_NAME(q4_levels)(wb + 2, &lo, &hi);
        const int32_t acc = vaddvq_s32(MOEK_NEON_NAME(dot32x4)(lo, hi, x[b].qs));
        sum = moek_finish1(sum, moek_half_to_float(dh) * moek_half_to_float(x[b].d), acc);
    }
    return sum;
}

/// The half scales at p, p + stride, p + 2·stride, p + 3·stride as floats (the scalar twin's
/// conversion, so that even NaN payloads match).
static inline float32x4_t MOEK_NEON_NAME(scales4)(const uint8_t *p, size_t stride) {
    float f[4];
    for (int k = 0; k < 4; k++) { uint16_t h; memcpy(&h, p + k * stride, 2); f[k] = moek_half_to_float(h); }
    return vld1q_f32(f);
}

/// Four rows' block sums (four lanes each) as one lane per row, by pairwise adds.
MOEK_NEON_ATTR static inline int32x4_t MOEK_NEON_NAME(fold4)(int32x4_t s0, int32x4_t s1, int32x4_t s2, int32x4_t s3) {
    return vpaddq_s32(vpaddq_s32(s0, s1), vpaddq_s32(s2, s3));
}

/// Four rows `stride` bytes apart: the activation block is loaded once for the four, the four
/// integer sums folded into one vector and the block finished for all four rows at once.
MOEK_NEON_ATTR static void MOEK_NEON_NAME(dot4_q8_0)(const void *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out) {
    const uint8_t *wb = (const uint8_t *)w;
    float32x4_t acc = vdupq_n_f32(0);
    for (size_t b = 0; b < n / 32; b++, wb += 34) {
        const int8x16_t a0 = vld1q_s8(x[b].qs), a1 = vld1q_s8(x[b].qs + 16);
        int32x4_t s[4];
        for (int k = 0; k < 4; k++) {
            const int8_t *q = (const int8_t *)(wb + k * stride + 2);
            s[k] = vaddq_s32(MOEK_NEON_DOT16(vld1q_s8(q), a0), MOEK_NEON_DOT16(vld1q_s8(q + 16), a1));
        }
        const float32x4_t d = vmulq_n_f32(MOEK_NEON_NAME(scales4)(wb, stride), moek_half_to_float(x[b].d));
        acc = vfmaq_f32(acc, d, vcvtq_f32_s32(MOEK_NEON_NAME(fold4)(s[0], s[1], s[2], s[3])));
    }
    vst1q_f32(out, acc);
}

MOEK_NEON_ATTR static void MOEK_NEON_NAME(dot4_q4_0)(const void *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out) {
    const uint8_t *wb = (const uint8_t *)w;
    float32x4_t acc = vdupq_n_f32(0);
    for (size_t b = 0; b < n / 32; b++, wb += 18) {
        const int8x16_t a0 = vld1q_s8(x[b].qs), a1 = vld1q_s8(x[b].qs + 16);
        int32x4_t s[4];
        for (int k = 0; k < 4; k++) {
            int8x16_t lo, hi;
            MOEK_NEON_NAME(q4_levels)(wb + k * stride + 2, &lo, &hi);
            s[k] = vaddq_s32(MOEK_NEON_DOT16(lo, a0), MOEK_NEON_DOT16(hi, a1));
        }
        const float32x4_t d = vmulq_n_f32(MOEK_NEON_NAME(scales4)(wb, stride), moek_half_to_float(x[b].d));
        acc = vfmaq_f32(acc, d, vcvtq_f32_s32(MOEK_NEON_NAME(fold4)(s[0], s[1], s[2], s[3])));
    }
    vst1q_f32(out, acc);
}

// Q4_K and Q5_K share the layout of scales and mins (kscales.h); Q5_K adds a fifth bit per level from qh.
MOEK_NEON_ATTR static inline float MOEK_NEON_NAME(dot_k4)(const uint8_t *w, const moek_block_q8_K *x, size_t n, size_t blockBytes, size_t qsOffset, int fifth) {
    const uint8_t *b = w;
    const uint8x16_t low = vdupq_n_u8(0xF), sixteen = vdupq_n_u8(16);
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += blockBytes) {
        const float d = moek_half_at(b) * x[i].d, dmin = moek_half_at(b + 2) * x[i].d;
        const uint8_t *scales = b + 4, *qh = b + 16, *q = b + qsOffset;
        const int8_t *a = x[i].qs;
        int sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++, q += 32, a += 64) {
            int sc1, sc2;
            summ += chunk_scales_k4(c, scales, x[i].bsums, &sc1, &sc2);
            const uint8x16_t q0 = vld1q_u8(q), q1 = vld1q_u8(q + 16);
            uint8x16_t l0 = vandq_u8(q0, low), l1 = vandq_u8(q1, low), h0 = vshrq_n_u8(q0, 4), h1 = vshrq_n_u8(q1, 4);
            if (fifth) {
                const uint8x16_t u1 = vdupq_n_u8((uint8_t)(1u << (2 * c))), u2 = vdupq_n_u8((uint8_t)(2u << (2 * c)));
                const uint8x16_t b0 = vld1q_u8(qh), b1 = vld1q_u8(qh + 16);
                l0 = vorrq_u8(l0, vandq_u8(vtstq_u8(b0, u1), sixteen));
                l1 = vorrq_u8(l1, vandq_u8(vtstq_u8(b1, u1), sixteen));
                h0 = vorrq_u8(h0, vandq_u8(vtstq_u8(b0, u2), sixteen));
                h1 = vorrq_u8(h1, vandq_u8(vtstq_u8(b1, u2), sixteen));
            }
            const int32_t s1 = vaddvq_s32(MOEK_NEON_NAME(dot32x4)(vreinterpretq_s8_u8(l0), vreinterpretq_s8_u8(l1), a));
            const int32_t s2 = vaddvq_s32(MOEK_NEON_NAME(dot32x4)(vreinterpretq_s8_u8(h0), vreinterpretq_s8_u8(h1), a + 32));
            sumi += sc1 * s1 + sc2 * s2;
        }
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

MOEK_NEON_ATTR static float MOEK_NEON_NAME(dot_q6_K)(const void *w, const moek_block_q8_K *x, size_t n) {
    const uint8_t *b = (const uint8_t *)w;
    const uint8x16_t low = vdupq_n_u8(0xF), three = vdupq_n_u8(3);
    const int8x16_t offset = vdupq_n_s8(32);
    float sum = 0;
    for (size_t i = 0; i < n / 256; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const int8_t *a = x[i].qs;
        int sumi = 0;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, a += 128) {
            for (int g = 0; g < 2; g++) {  // elements 16g..16g+15 of each of the four quarters
                const uint8x16_t l0 = vld1q_u8(ql + 16 * g), l1 = vld1q_u8(ql + 32 + 16 * g), h = vld1q_u8(qh + 16 * g);
                const uint8x16_t u1 = vorrq_u8(vandq_u8(l0, low), vshlq_n_u8(vandq_u8(h, three), 4));
                const uint8x16_t u2 = vorrq_u8(vandq_u8(l1, low), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), three), 4));
                const uint8x16_t u3 = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), three), 4));
                const uint8x16_t u4 = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4));
                const int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(u1), offset), q2 = vsubq_s8(vreinterpretq_s8_u8(u2), offset);
                const int8x16_t q3 = vsubq_s8(vreinterpretq_s8_u8(u3), offset), q4 = vsubq_s8(vreinterpretq_s8_u8(u4), offset);
                sumi += sc[g] * vaddvq_s32(MOEK_NEON_DOT16(q1, vld1q_s8(a + 16 * g)));
                sumi += sc[g + 2] * vaddvq_s32(MOEK_NEON_DOT16(q2, vld1q_s8(a + 32 + 16 * g)));
                sumi += sc[g + 4] * vaddvq_s32(MOEK_NEON_DOT16(q3, vld1q_s8(a + 64 + 16 * g)));
                sumi += sc[g + 6] * vaddvq_s32(MOEK_NEON_DOT16(q4, vld1q_s8(a + 96 + 16 * g)));
            }
        }
        sum += moek_half_at(b + 208) * x[i].d * (float)sumi;
    }
    return sum;
}

/// Four int32 values as a vector (lane k = v[k]).
static inline int32x4_t MOEK_NEON_NAME(lanes4)(int v0, int v1, int v2, int v3) {
    const int32_t v[4] = {v0, v1, v2, v3};
    return vld1q_s32(v);
}

/// Four Q4_K/Q5_K rows `stride` bytes apart: per 64-weight chunk the activations are loaded once,
/// the four rows' sub-block sums folded into one lane per row and scaled by a vector of the rows'
/// scales; each super-block is finished for the four rows at once with the scalar twin's float
/// operations.
MOEK_NEON_ATTR static void MOEK_NEON_NAME(dot4_k4)(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n,
                                                   size_t blockBytes, size_t qsOffset, int fifth, float *out) {
    const uint8x16_t low = vdupq_n_u8(0xF), sixteen = vdupq_n_u8(16);
    float32x4_t acc = vdupq_n_f32(0);
    for (size_t i = 0; i < n / 256; i++) {
        const uint8_t *b = w + i * blockBytes;
        const float32x4_t d = vmulq_n_f32(MOEK_NEON_NAME(scales4)(b, stride), x[i].d);
        const float32x4_t dmin = vmulq_n_f32(MOEK_NEON_NAME(scales4)(b + 2, stride), x[i].d);
        int sc[4][8], summ[4] = {0, 0, 0, 0};
        for (int k = 0; k < 4; k++) {
            for (int c = 0; c < 4; c++) summ[k] += chunk_scales_k4(c, b + k * stride + 4, x[i].bsums, &sc[k][2 * c], &sc[k][2 * c + 1]);
        }
        int32x4_t sumi = vdupq_n_s32(0);
        for (int c = 0; c < 4; c++) {
            const int8_t *a = x[i].qs + 64 * c;
            const int8x16_t a0 = vld1q_s8(a), a1 = vld1q_s8(a + 16), a2 = vld1q_s8(a + 32), a3 = vld1q_s8(a + 48);
            int32x4_t s1[4], s2[4];
            for (int k = 0; k < 4; k++) {
                const uint8_t *q = b + k * stride + qsOffset + 32 * c;
                const uint8x16_t q0 = vld1q_u8(q), q1 = vld1q_u8(q + 16);
                uint8x16_t l0 = vandq_u8(q0, low), l1 = vandq_u8(q1, low), h0 = vshrq_n_u8(q0, 4), h1 = vshrq_n_u8(q1, 4);
                if (fifth) {
                    const uint8_t *qh = b + k * stride + 16;
                    const uint8x16_t u1 = vdupq_n_u8((uint8_t)(1u << (2 * c))), u2 = vdupq_n_u8((uint8_t)(2u << (2 * c)));
                    const uint8x16_t b0 = vld1q_u8(qh), b1 = vld1q_u8(qh + 16);
                    l0 = vorrq_u8(l0, vandq_u8(vtstq_u8(b0, u1), sixteen));
                    l1 = vorrq_u8(l1, vandq_u8(vtstq_u8(b1, u1), sixteen));
                    h0 = vorrq_u8(h0, vandq_u8(vtstq_u8(b0, u2), sixteen));
                    h1 = vorrq_u8(h1, vandq_u8(vtstq_u8(b1, u2), sixteen));
                }
                s1[k] = vaddq_s32(MOEK_NEON_DOT16(vreinterpretq_s8_u8(l0), a0), MOEK_NEON_DOT16(vreinterpretq_s8_u8(l1), a1));
                s2[k] = vaddq_s32(MOEK_NEON_DOT16(vreinterpretq_s8_u8(h0), a2), MOEK_NEON_DOT16(vreinterpretq_s8_u8(h1), a3));
            }
            sumi = vmlaq_s32(sumi, MOEK_NEON_NAME(fold4)(s1[0], s1[1], s1[2], s1[3]),
                             MOEK_NEON_NAME(lanes4)(sc[0][2 * c], sc[1][2 * c], sc[2][2 * c], sc[3][2 * c]));
            sumi = vmlaq_s32(sumi, MOEK_NEON_NAME(fold4)(s2[0], s2[1], s2[2], s2[3]),
                             MOEK_NEON_NAME(lanes4)(sc[0][2 * c + 1], sc[1][2 * c + 1], sc[2][2 * c + 1], sc[3][2 * c + 1]));
        }
        // sum += d · float(sumi) − dmin · float(summ), per row
        const float32x4_t fm = vcvtq_f32_s32(MOEK_NEON_NAME(lanes4)(summ[0], summ[1], summ[2], summ[3]));
        acc = vaddq_f32(acc, vsubq_f32(vmulq_f32(d, vcvtq_f32_s32(sumi)), vmulq_f32(dmin, fm)));
    }
    vst1q_f32(out, acc);
}

/// Four Q6_K rows `stride` bytes apart, as dot4_k4: per 16-weight group the four rows' sums are
/// folded to one lane per row and multiplied by a vector of the rows' int8 scales.
MOEK_NEON_ATTR static void MOEK_NEON_NAME(dot4_q6_K)(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    const uint8x16_t low = vdupq_n_u8(0xF), three = vdupq_n_u8(3);
    const int8x16_t offset = vdupq_n_s8(32);
    float32x4_t acc = vdupq_n_f32(0);
    for (size_t i = 0; i < n / 256; i++) {
        const uint8_t *b = w + i * 210;
        int32x4_t sumi = vdupq_n_s32(0);
        for (int half = 0; half < 2; half++) {
            const int8_t *a = x[i].qs + 128 * half;
            for (int g = 0; g < 2; g++) {  // elements 16g..16g+15 of each of the four quarters
                int32x4_t s[4][4];         // [quarter][row]
                for (int k = 0; k < 4; k++) {
                    const uint8_t *ql = b + k * stride + 64 * half, *qh = b + k * stride + 128 + 32 * half;
                    const uint8x16_t l0 = vld1q_u8(ql + 16 * g), l1 = vld1q_u8(ql + 32 + 16 * g), h = vld1q_u8(qh + 16 * g);
                    const uint8x16_t u1 = vorrq_u8(vandq_u8(l0, low), vshlq_n_u8(vandq_u8(h, three), 4));
                    const uint8x16_t u2 = vorrq_u8(vandq_u8(l1, low), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), three), 4));
                    const uint8x16_t u3 = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), three), 4));
                    const uint8x16_t u4 = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4));
                    s[0][k] = MOEK_NEON_DOT16(vsubq_s8(vreinterpretq_s8_u8(u1), offset), vld1q_s8(a + 16 * g));
                    s[1][k] = MOEK_NEON_DOT16(vsubq_s8(vreinterpretq_s8_u8(u2), offset), vld1q_s8(a + 32 + 16 * g));
                    s[2][k] = MOEK_NEON_DOT16(vsubq_s8(vreinterpretq_s8_u8(u3), offset), vld1q_s8(a + 64 + 16 * g));
                    s[3][k] = MOEK_NEON_DOT16(vsubq_s8(vreinterpretq_s8_u8(u4), offset), vld1q_s8(a + 96 + 16 * g));
                }
                for (int m = 0; m < 4; m++) {
                    const int j = 8 * half + g + 2 * m;  // the 16-weight group's scale
                    const int8_t *sc = (const int8_t *)(b + 192 + j);
                    sumi = vmlaq_s32(sumi, MOEK_NEON_NAME(fold4)(s[m][0], s[m][1], s[m][2], s[m][3]),
                                     MOEK_NEON_NAME(lanes4)(sc[0], sc[stride], sc[2 * stride], sc[3 * stride]));
                }
            }
        }
        // sum += d · x.d · float(sumi), per row
        acc = vaddq_f32(acc, vmulq_f32(vmulq_n_f32(MOEK_NEON_NAME(scales4)(b + 208, stride), x[i].d), vcvtq_f32_s32(sumi)));
    }
    vst1q_f32(out, acc);
}
