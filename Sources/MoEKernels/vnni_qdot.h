// Q4_0 / Q8_0 kernels with vpdpbusd (32 unsigned-by-signed byte products summed four at a time
// into eight int32 lanes, one instruction), included twice by vnni.c: once for AVX-VNNI (VEX
// encoding: Intel Alder Lake and later client CPUs, AMD Zen 5) and once for AVX-512 VNNI at 256
// bits (EVEX encoding: Intel Ice Lake and later servers, AMD Zen 4 and 5). The includer defines
// MOEK_VNNI_ATTR (the target attribute), MOEK_VNNI_NAME(name) (a suffixed name) and
// MOEK_DPBUSD(acc, u, s), and MOEK_VNNI_VEX_DECODE: 1 for the decode kernels that CPUs with
// AVX-512 VNNI run 512 bits wide instead (vnni_zdot.h: Q4_0 eight rows, Q4_K, Q5_K, Q6_K), so
// that they are compiled in the VEX form only.
//
// No 16-bit intermediate sums, so no sign trick: Q4_0 nibbles (0..15) and Q8_0 weights shifted to
// 0..255 (w + 128, an xor) are the unsigned operand, the activations the signed one, and the shift
// is taken back out per block (8·Σa for Q4_0, 128·Σa for Q8_0). Integer sums are exact, and every
// block is finished as the scalar code does (moek_finish4), so each kernel returns the scalar
// twin's bits.

#define MOEK_VNNI_INLINE static inline __attribute__((always_inline)) MOEK_VNNI_ATTR

/// Two rows' pair sums ([row k: 4 lanes | row k+1: 4 lanes] each) folded to one lane per row:
/// rows 0-3 in lanes 0-3. Unpacks, adds and a blend, no horizontal adds.
MOEK_VNNI_INLINE __m128i MOEK_VNNI_NAME(fold_pairs)(__m256i p01, __m256i p23) {
    const __m256i t = _mm256_add_epi32(_mm256_unpacklo_epi64(p01, p23), _mm256_unpackhi_epi64(p01, p23));
    const __m256i u = _mm256_add_epi32(t, _mm256_shuffle_epi32(t, _MM_SHUFFLE(2, 3, 0, 1)));
    // u: [r0 r0 r2 r2 | r1 r1 r3 r3]
    return _mm_blend_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1), 0xA);
}

/// Rows r and r + stride of a Q4_0 block against activation halves alo / ahi (each broadcast to
/// both 128-bit halves): row r's sums in lanes 0-3, the next row's in lanes 4-7. The low nibbles
/// (elements 0-15) go against the first half, the high nibbles against the second, so a pair
/// ends with four lanes per row and the fold needs no horizontal adds.
MOEK_VNNI_INLINE __m256i MOEK_VNNI_NAME(q4_0_pair)(const uint8_t *r, size_t stride, __m256i alo, __m256i ahi) {
    const __m256i low = _mm256_set1_epi8(0xF);
    const __m256i v = _mm256_loadu2_m128i((const __m128i *)(r + stride + 2), (const __m128i *)(r + 2));
    return MOEK_DPBUSD(MOEK_DPBUSD(_mm256_setzero_si256(), _mm256_and_si256(v, low), alo), _mm256_and_si256(_mm256_srli_epi16(v, 4), low), ahi);
}

/// Activation block xb's first (lo) and second (hi) 16 bytes, each in both 128-bit halves.
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(q8_halves)(const moek_block_q8_0 *xb, __m256i *lo, __m256i *hi) {
    *lo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)xb->qs));
    *hi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(xb->qs + 16)));
}

/// One Q4_0 block of four rows (at r, r + stride, ...) against activation block xb: the four
/// integer sums, 8·Σa already subtracted.
MOEK_VNNI_INLINE __m128i MOEK_VNNI_NAME(q4_0_sums4)(const uint8_t *r, size_t stride, const moek_block_q8_0 *xb, int32_t offset) {
    __m256i alo, ahi;
    MOEK_VNNI_NAME(q8_halves)(xb, &alo, &ahi);
    const __m128i f = MOEK_VNNI_NAME(fold_pairs)(MOEK_VNNI_NAME(q4_0_pair)(r, stride, alo, ahi),
                                                 MOEK_VNNI_NAME(q4_0_pair)(r + 2 * stride, stride, alo, ahi));
    return _mm_sub_epi32(f, _mm_set1_epi32(offset));
}

/// Decode: four Q4_0 rows (w, w + stride, ...) · one token, as moek_vec_dot4_q4_0_q8_0. Two
/// blocks per pass (both blocks' sums before either finish; the prefetch once per 36 bytes).
MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(dot4_q4_0)(const uint8_t *w, size_t stride, const moek_block_q8_0 *x,
                                                     const int32_t *offsets, size_t n, float *out) {
    __m128 acc = _mm_setzero_ps();
    const size_t blocks = n / 32, ahead = prefetch_rows(stride) * stride;
    size_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        const uint8_t *r = w + b * 18;
        moek_prefetch_span(w, 4 * stride, ahead, b / 2, blocks / 2);
        const __m128i s0 = MOEK_VNNI_NAME(q4_0_sums4)(r, stride, &x[b], offsets[b]);
        const __m128i s1 = MOEK_VNNI_NAME(q4_0_sums4)(r + 18, stride, &x[b + 1], offsets[b + 1]);
        acc = moek_finish4(acc, moek_scales4(r, stride), moek_h2f4(&x[b].d), s0);
        acc = moek_finish4(acc, moek_scales4(r + 18, stride), moek_h2f4(&x[b + 1].d), s1);
    }
    if (b < blocks) {
        const uint8_t *r = w + b * 18;
        acc = moek_finish4(acc, moek_scales4(r, stride), moek_h2f4(&x[b].d), MOEK_VNNI_NAME(q4_0_sums4)(r, stride, &x[b], offsets[b]));
    }
    _mm_storeu_ps(out, acc);
}

#if MOEK_VNNI_VEX_DECODE
/// One Q4_0 block of eight rows against activation block xb: the eight integer sums (8·Σa
/// subtracted), four row pairs as in q4_0_sums4.
MOEK_VNNI_INLINE __m256i MOEK_VNNI_NAME(q4_0_sums8)(const uint8_t *r, size_t stride, const moek_block_q8_0 *xb, int32_t offset) {
    __m256i alo, ahi, p[4];
    MOEK_VNNI_NAME(q8_halves)(xb, &alo, &ahi);
    for (int j = 0; j < 4; j++) p[j] = MOEK_VNNI_NAME(q4_0_pair)(r + 2 * j * stride, stride, alo, ahi);
    const __m256i f = _mm256_set_m128i(MOEK_VNNI_NAME(fold_pairs)(p[2], p[3]), MOEK_VNNI_NAME(fold_pairs)(p[0], p[1]));
    return _mm256_sub_epi32(f, _mm256_set1_epi32(offset));
}
/// The eight half scales at p, p + stride, ... p + 7·stride, as floats.
MOEK_VNNI_INLINE __m256 MOEK_VNNI_NAME(scales8)(const uint8_t *p, size_t stride) {
    return _mm256_set_m128(moek_scales4(p + 4 * stride, stride), moek_scales4(p, stride));
}
/// One Q4_0 block of eight rows against activation block xb, the eight integer sums (8·Σa
/// subtracted) in the order rows 0, 2, 4, 6, 1, 3, 5, 7: the four row-pair vectors fold together
/// (three unpack-and-add steps) instead of two pairs at a time (fold_pairs, then a join).
MOEK_VNNI_INLINE __m256i MOEK_VNNI_NAME(q4_0_sums8_evens)(const uint8_t *r, size_t stride, const moek_block_q8_0 *xb, int32_t offset) {
    __m256i alo, ahi, p[4];
    MOEK_VNNI_NAME(q8_halves)(xb, &alo, &ahi);
    for (int j = 0; j < 4; j++) p[j] = MOEK_VNNI_NAME(q4_0_pair)(r + 2 * j * stride, stride, alo, ahi);
    // Lane 0 of p[j]: row 2j, lane 1: row 2j + 1.
    const __m256i t01 = _mm256_add_epi32(_mm256_unpacklo_epi32(p[0], p[1]), _mm256_unpackhi_epi32(p[0], p[1]));
    const __m256i t23 = _mm256_add_epi32(_mm256_unpacklo_epi32(p[2], p[3]), _mm256_unpackhi_epi32(p[2], p[3]));
    const __m256i f = _mm256_add_epi32(_mm256_unpacklo_epi64(t01, t23), _mm256_unpackhi_epi64(t01, t23));
    return _mm256_sub_epi32(f, _mm256_set1_epi32(offset));
}
/// Byte shuffles that move row k's scales of two consecutive blocks (bytes 0-1 and 18-19 of a
/// 32-byte load at the first block) to word k' of each 128-bit half, k' its place in the order
/// 0, 2, 4, 6, 1, 3, 5, 7 (the rest zero), so that the eight shuffled rows OR together.
static const uint8_t MOEK_VNNI_NAME(scale_moves)[8][32] __attribute__((aligned(32))) = {
#define Z 0x80
#define MOEK_SCALE_MOVE(w) {                                                                                   \
        (w) == 0 ? 0 : Z, (w) == 0 ? 1 : Z, (w) == 1 ? 0 : Z, (w) == 1 ? 1 : Z, (w) == 2 ? 0 : Z, (w) == 2 ? 1 : Z, \
        (w) == 3 ? 0 : Z, (w) == 3 ? 1 : Z, (w) == 4 ? 0 : Z, (w) == 4 ? 1 : Z, (w) == 5 ? 0 : Z, (w) == 5 ? 1 : Z, \
        (w) == 6 ? 0 : Z, (w) == 6 ? 1 : Z, (w) == 7 ? 0 : Z, (w) == 7 ? 1 : Z,                                  \
        (w) == 0 ? 2 : Z, (w) == 0 ? 3 : Z, (w) == 1 ? 2 : Z, (w) == 1 ? 3 : Z, (w) == 2 ? 2 : Z, (w) == 2 ? 3 : Z, \
        (w) == 3 ? 2 : Z, (w) == 3 ? 3 : Z, (w) == 4 ? 2 : Z, (w) == 4 ? 3 : Z, (w) == 5 ? 2 : Z, (w) == 5 ? 3 : Z, \
        (w) == 6 ? 2 : Z, (w) == 6 ? 3 : Z, (w) == 7 ? 2 : Z, (w) == 7 ? 3 : Z }
    MOEK_SCALE_MOVE(0), MOEK_SCALE_MOVE(4), MOEK_SCALE_MOVE(1), MOEK_SCALE_MOVE(5),
    MOEK_SCALE_MOVE(2), MOEK_SCALE_MOVE(6), MOEK_SCALE_MOVE(3), MOEK_SCALE_MOVE(7),
#undef MOEK_SCALE_MOVE
#undef Z
};
/// The scales of two consecutive Q4_0 blocks (at p and p + 18) of eight rows as floats, in the
/// order q4_0_sums8_evens gives the sums: one 32-byte load per row holds both blocks' halves,
/// where loading them one by one through a general register (scales8) cost more than the fold.
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(scales8x2_evens)(const uint8_t *p, size_t stride, __m256 *d0, __m256 *d1) {
    __m256i h = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++)
        h = _mm256_or_si256(h, _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(p + k * stride)),
                                                   _mm256_load_si256((const __m256i *)MOEK_VNNI_NAME(scale_moves)[k])));
    *d0 = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    *d1 = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}
/// Decode: eight Q4_0 rows · one token, as moek_vec_dot8_q4_0_q8_0. One activation load, scale
/// conversion and loop step per eight rows instead of four, the finish eight lanes wide (the
/// same per-lane operations as moek_finish4): one thread, Zen 5, µs per streamed matrix,
/// 1024x2048 41.4-43.5 -> 33.1-34.4, 2048x1024 45.8-47.4 -> 33.9-34.7. Block pairs keep the
/// rows in the order 0, 2, 4, 6, 1, 3, 5, 7 (q4_0_sums8_evens, scales8x2_evens), put back in
/// order once at the end: 1024x2048 from L2 31.2-31.8 -> 29.0-30.2, streamed 33.6-34.8 ->
/// 30.6-33.6 (Zen 5 with AVX-512 masked off).
MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(dot8_q4_0)(const uint8_t *w, size_t stride, const moek_block_q8_0 *x,
                                                     const int32_t *offsets, size_t n, float *out) {
    __m256 acc = _mm256_setzero_ps();
    const size_t blocks = n / 32, ahead = prefetch_rows(stride) * stride;
    size_t b = 0;
    // Block pairs with the rows in the order 0, 2, 4, 6, 1, 3, 5, 7; back in order after.
    for (; b + 2 <= blocks; b += 2) {
        const uint8_t *r = w + b * 18;
        moek_prefetch_span(w, 8 * stride, ahead, b / 2, blocks / 2);
        const __m256i s0 = MOEK_VNNI_NAME(q4_0_sums8_evens)(r, stride, &x[b], offsets[b]);
        const __m256i s1 = MOEK_VNNI_NAME(q4_0_sums8_evens)(r + 18, stride, &x[b + 1], offsets[b + 1]);
        __m256 w0, w1;
        MOEK_VNNI_NAME(scales8x2_evens)(r, stride, &w0, &w1);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(w0, _mm256_set1_ps(moek_h2f(x[b].d))), _mm256_cvtepi32_ps(s0), acc);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(w1, _mm256_set1_ps(moek_h2f(x[b + 1].d))), _mm256_cvtepi32_ps(s1), acc);
    }
    acc = _mm256_permutevar8x32_ps(acc, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    if (b < blocks) {
        const uint8_t *r = w + b * 18;
        const __m256 d0 = _mm256_mul_ps(MOEK_VNNI_NAME(scales8)(r, stride), _mm256_set1_ps(moek_h2f(x[b].d)));
        acc = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(MOEK_VNNI_NAME(q4_0_sums8)(r, stride, &x[b], offsets[b])), acc);
    }
    _mm256_storeu_ps(out, acc);
}
#endif

/// Decode: four Q8_0 rows · one token, as moek_vec_dot4_q8_0_q8_0. Every row's sums start from
/// −128·Σa of each lane's four activations (one vpdpbusd for all four rows), so the xor's +128
/// cancels lane by lane and needs no offsets.
MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(dot4_q8_0)(const uint8_t *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out) {
    __m128 acc = _mm_setzero_ps();
    const __m256i flip = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
    const size_t ahead = prefetch_rows(stride) * stride;
    for (size_t b = 0; b < n / 32; b++) {
        moek_prefetch_span(w, 4 * stride, ahead, b, n / 32);
        const __m256i a = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i shift = MOEK_DPBUSD(zero, flip, _mm256_sub_epi8(zero, a));  // |a| <= 127: −a fits
        const uint8_t *r = w + b * 34;
        __m256i s[4];
        for (int k = 0; k < 4; k++) {
            const uint8_t *p = r + k * stride;
            s[k] = MOEK_DPBUSD(shift, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)), flip), a);
        }
        acc = moek_finish4(acc, moek_scales4(r, stride), moek_h2f4(&x[b].d), moek_fold4_256(s[0], s[1], s[2], s[3]));
    }
    _mm_storeu_ps(out, acc);
}

#if MOEK_VNNI_VEX_DECODE
/// Bit `bit` (0-7, a constant after unrolling) of every byte of h, as 16 or 0: one shift of the
/// 16-bit lanes (by at most four, so no bit crosses into the other byte at bit 4) and a mask.
MOEK_VNNI_INLINE __m256i MOEK_VNNI_NAME(bit_to_16)(__m256i h, const int bit) {
    const __m256i moved = bit <= 4 ? _mm256_slli_epi16(h, 4 - bit) : _mm256_srli_epi16(h, bit - 4);
    return _mm256_and_si256(moved, _mm256_set1_epi8(16));
}

/// Chunk c (elements 64c..64c+63) of a Q4_K/Q5_K block of four rows (at b, b + stride, ...) against
/// activations a: s[j] (rows 2j, 2j+1) += each row's scaled sums of sub-blocks 2c and 2c+1, four
/// lanes per row. `pick` selects the two scales from sc; `high` holds the rows' qh (Q5_K).
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(k4_chunk)(const uint8_t *b, size_t stride, size_t qsOffset, const int8_t *a, __m256i pick,
                                                const int c, const __m256i (*high)[2], const int fifth_bit, const __m256i *sc,
                                                __m256i *s) {
    const __m256i low = _mm256_set1_epi8(0xF), zero = _mm256_setzero_si256();
    __m256i av[4];
    for (int q = 0; q < 4; q++) av[q] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(a + 16 * q)));
    for (int j = 0; j < 2; j++) {
        const uint8_t *r = b + 2 * j * stride + qsOffset + 32 * c;
        const __m256i v0 = _mm256_loadu2_m128i((const __m128i *)(r + stride), (const __m128i *)r);
        const __m256i v1 = _mm256_loadu2_m128i((const __m128i *)(r + stride + 16), (const __m128i *)(r + 16));
        __m256i l0 = _mm256_and_si256(v0, low), l1 = _mm256_and_si256(v1, low);
        __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low), h1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low);
        if (fifth_bit) {  // bit 2c (low nibbles) or 2c+1 (high) of each qh byte, moved to bit 4
            l0 = _mm256_or_si256(l0, MOEK_VNNI_NAME(bit_to_16)(high[j][0], 2 * c));
            l1 = _mm256_or_si256(l1, MOEK_VNNI_NAME(bit_to_16)(high[j][1], 2 * c));
            h0 = _mm256_or_si256(h0, MOEK_VNNI_NAME(bit_to_16)(high[j][0], 2 * c + 1));
            h1 = _mm256_or_si256(h1, MOEK_VNNI_NAME(bit_to_16)(high[j][1], 2 * c + 1));
        }
        const __m256i slo = MOEK_DPBUSD(MOEK_DPBUSD(zero, l0, av[0]), l1, av[1]);
        const __m256i shi = MOEK_DPBUSD(MOEK_DPBUSD(zero, h0, av[2]), h1, av[3]);
        s[j] = MOEK_DPWSSD(s[j], _mm256_packs_epi32(slo, shi), _mm256_shuffle_epi8(sc[j], pick));
    }
}

/// Decode: four Q4_K (`fifth_bit` 0) or Q5_K (1) rows · one token, as moek_vec_dot4_q4_K_q8_K.
/// Rows in pairs as in dot4_q4_0: per 64-element chunk, vpdpbusd gives each row four lanes of
/// its low-nibble sub-block (2c) and four of its high-nibble one (2c+1), every lane a sum of eight
/// products (at most 8·31·127 = 31496: int16 holds it), so one pack to int16 and one vpdpwssd
/// against the two sub-blocks' 6-bit scales accumulates the scaled sums in int32. The minimums'
/// part and the float finish are the AVX2 kernel's (the scalar twin's operations).
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(dot4_k4)(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n,
                                               const int fifth_bit, float *out) {
    const size_t blockBytes = fifth_bit ? 176 : 144, qsOffset = fifth_bit ? 48 : 16;
    const size_t ahead = prefetch_rows(stride) * stride;
    const __m256i zero = _mm256_setzero_si256();
    __m128 acc = _mm_setzero_ps();
    for (size_t i = 0; i < n / 256; i++) {
        const uint8_t *b = w + i * blockBytes;
        moek_prefetch_span(w, 4 * stride, ahead, i, n / 256);
        const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x[i].bsums), _mm_loadu_si128((const __m128i *)(x[i].bsums + 8)));
        __m128i sm[4];
        __m256i sc[2];  // rows 2j and 2j+1: their eight scales as int16, one row per 128-bit half
        for (int k = 0; k < 4; k++)
            sm[k] = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)k4_unpack(b + k * stride + 4, 1))), pairs);
        for (int j = 0; j < 2; j++)
            sc[j] = _mm256_cvtepu8_epi16(_mm_set_epi64x((long long)k4_unpack(b + (2 * j + 1) * stride + 4, 0),
                                                        (long long)k4_unpack(b + 2 * j * stride + 4, 0)));
        __m256i high[2][2];
        if (fifth_bit)
            for (int j = 0; j < 2; j++)
                for (int h = 0; h < 2; h++)
                    high[j][h] = _mm256_loadu2_m128i((const __m128i *)(b + (2 * j + 1) * stride + 16 + 16 * h),
                                                     (const __m128i *)(b + 2 * j * stride + 16 + 16 * h));
        __m256i s[2] = {zero, zero};
        // Byte shuffle putting the int16 scale of sub-block 2c in elements 0-3 of each half and
        // that of 2c+1 in elements 4-7 (for c = 0; each chunk moves it on by four bytes).
        const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3);
        // Q5_K unrolled, so that its bit shifts are constants (Zen 5: 58-62 -> 48 µs per matrix);
        // Q4_K was faster rolled (32 vs 34-36).
        if (fifth_bit) {
#pragma clang loop unroll(full)
            for (int c = 0; c < 4; c++)
                MOEK_VNNI_NAME(k4_chunk)(b, stride, qsOffset, x[i].qs + 64 * c, _mm256_add_epi8(pick, _mm256_set1_epi8((char)(4 * c))), c, (const __m256i (*)[2])high, 1, sc, s);
        } else {
#pragma clang loop unroll(disable)
            for (int c = 0; c < 4; c++)
                MOEK_VNNI_NAME(k4_chunk)(b, stride, qsOffset, x[i].qs + 64 * c, _mm256_add_epi8(pick, _mm256_set1_epi8((char)(4 * c))), c, (const __m256i (*)[2])high, 0, sc, s);
        }
        const __m128i sumi = MOEK_VNNI_NAME(fold_pairs)(s[0], s[1]), summ = moek_fold4(sm[0], sm[1], sm[2], sm[3]);
        const __m128 xd = _mm_set1_ps(x[i].d);
        const __m128 d = _mm_mul_ps(moek_scales4(b, stride), xd), dmin = _mm_mul_ps(moek_scales4(b + 2, stride), xd);
        // sum += d * (float)sumi - dmin * (float)summ, per row
        acc = _mm_add_ps(acc, _mm_sub_ps(_mm_mul_ps(d, _mm_cvtepi32_ps(sumi)), _mm_mul_ps(dmin, _mm_cvtepi32_ps(summ))));
    }
    _mm_storeu_ps(out, acc);
}

MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(dot4_q4_K)(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    MOEK_VNNI_NAME(dot4_k4)(w, stride, x, n, 0, out);
}
MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(dot4_q5_K)(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    MOEK_VNNI_NAME(dot4_k4)(w, stride, x, n, 1, out);
}

/// Q6_K, one row of one block against activations av (av[h][g]: the 32 bytes at 128h + 32g):
/// the scaled level sums (8 lanes) and the scales times the activation sums of their groups
/// (the offset, as q6_row in kquants.c). The levels (moek_q6_levels) go through one vpdpbusd per
/// 32 (four products per lane, at most 4·63·127 = 32004: int16 holds it), two such vectors pack
/// to int16 and one vpdpwssd applies their four groups' scales, where the AVX2 form needs a
/// maddubs, a scale shuffle and a madd per vector.
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(q6_row)(const uint8_t *b, const __m256i (*av)[4], __m256i bsums, __m256i *sumi, __m256i *offset) {
    const __m256i zero = _mm256_setzero_si256();
    // Bytes of each 128-bit half's int16 scales: elements 0-3 group 0 (lower) / 1 (upper), 4-7
    // group 2 / 3; the next pair of vectors' groups are four scales on.
    const __m256i pick01 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 4, 5, 4, 5, 4, 5, 4, 5, 2, 3, 2, 3, 2, 3, 2, 3, 6, 7, 6, 7, 6, 7, 6, 7);
    const __m256i pick23 = _mm256_add_epi8(pick01, _mm256_set1_epi8(8));
    const uint8_t *ql = b, *qh = b + 128;
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 192)));
    *offset = _mm256_madd_epi16(scales16, bsums);
    __m256i acc = zero;
    for (int half = 0; half < 2; half++, ql += 64, qh += 32) {
        const __m256i halfScales = half ? _mm256_permute2x128_si256(scales16, scales16, 0x11) : _mm256_permute2x128_si256(scales16, scales16, 0x00);
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
        __m256i q[4];
        moek_q6_levels(l0, l1, h, q);
        // Vector g's lower half is group 2g of this half, its upper half group 2g + 1.
        const __m256i p01 = _mm256_packs_epi32(MOEK_DPBUSD(zero, q[0], av[half][0]), MOEK_DPBUSD(zero, q[1], av[half][1]));
        const __m256i p23 = _mm256_packs_epi32(MOEK_DPBUSD(zero, q[2], av[half][2]), MOEK_DPBUSD(zero, q[3], av[half][3]));
        acc = MOEK_DPWSSD(acc, p01, _mm256_shuffle_epi8(halfScales, pick01));
        acc = MOEK_DPWSSD(acc, p23, _mm256_shuffle_epi8(halfScales, pick23));
    }
    *sumi = acc;
}

/// Decode: four Q6_K rows · one token, as moek_vec_dot4_q6_K_q8_K: q6_row per row (the block's
/// activations loaded once for the four), then the AVX2 kernel's folds and float finish.
MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(dot4_q6_K)(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    __m128 acc = _mm_setzero_ps();
    const size_t ahead = prefetch_rows(stride) * stride;
    for (size_t i = 0; i < n / 256; i++) {
        const uint8_t *b = w + i * 210;
        moek_prefetch_span(w, 4 * stride, ahead, i, n / 256);
        __m256i av[2][4];
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++) av[h][g] = _mm256_loadu_si256((const __m256i *)(x[i].qs + 128 * h + 32 * g));
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)x[i].bsums);
        __m256i si[4], off[4];
        for (int k = 0; k < 4; k++) MOEK_VNNI_NAME(q6_row)(b + k * stride, (const __m256i (*)[4])av, bsums, &si[k], &off[k]);
        const __m128i offset = moek_fold4_256(off[0], off[1], off[2], off[3]);
        const __m128i sumi = _mm_sub_epi32(moek_fold4_256(si[0], si[1], si[2], si[3]), _mm_slli_epi32(offset, 5));
        // sum += d * x.d * (float)(sumi - 32 * offset), per row
        const __m128 d = _mm_mul_ps(moek_scales4(b + 208, stride), _mm_set1_ps(x[i].d));
        acc = _mm_add_ps(acc, _mm_mul_ps(d, _mm_cvtepi32_ps(sumi)));
    }
    _mm_storeu_ps(out, acc);
}
#endif

// Matrix-matrix tiles. Four rows' block is stored as four vectors, vector g holding, for rows 0-3,
// elements 4g..4g+3 in lanes 0-3 and elements 16+4g..16+4g+3 in lanes 4-7 (unsigned bytes). A
// token's activation block with dword g of each 128-bit half broadcast across that half (one
// in-lane shuffle) is then the matching operand: four vpdpbusd leave row k's block sum split
// between lanes k and k+4, and one add of the two halves gives the four rows in order, with no
// horizontal adds. Each interleaved vector is loaded once for up to four tokens.

/// `count` (1-4, a constant after inlining) tokens against a segment of `sb` interleaved blocks:
/// `acc[i]` += token i's four row sums, block by block. `shift` multiplies the offsets (1 for
/// Q4_0's 8·Σa, 16 for Q8_0's 128·Σa). With `next`, each block also prefetches the same bytes of
/// the four rows at `next` (`rowBytes` apart), so the next tile's reads overlap this one's work.
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(tile_tokens)(const __m256i (*iq)[4], const float (*dw)[4], size_t sb,
                                                   const moek_block_q8_0 *const *xb, const int32_t *const *ob, int shift,
                                                   __m128 *acc, const int count, const uint8_t *next, size_t rowBytes, size_t blockBytes) {
    const __m256i zero = _mm256_setzero_si256();
    __m128 a[4];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t b = 0; b < sb; b++) {
        if (next) {
            for (int k = 0; k < 4; k++) {
                const char *line = (const char *)(next + b * blockBytes + k * rowBytes);
                _mm_prefetch(line, _MM_HINT_T0);
                if (blockBytes > 18) _mm_prefetch(line + blockBytes - 1, _MM_HINT_T0);
            }
        }
        __m256i act[4], s[4];
        for (int t = 0; t < count; t++) {
            act[t] = _mm256_loadu_si256((const __m256i *)xb[t][b].qs);
            s[t] = zero;
        }
#define MOEK_VNNI_GROUP(g)                                                                  \
        {                                                                                   \
            const __m256i q = _mm256_load_si256(&iq[b][g]);                                 \
            for (int t = 0; t < count; t++)                                                 \
                s[t] = MOEK_DPBUSD(s[t], q, _mm256_shuffle_epi32(act[t], (g) * 0x55));     \
        }
        MOEK_VNNI_GROUP(0) MOEK_VNNI_GROUP(1) MOEK_VNNI_GROUP(2) MOEK_VNNI_GROUP(3)
#undef MOEK_VNNI_GROUP
        const __m128 d = _mm_load_ps(dw[b]);
        for (int t = 0; t < count; t++) {
            const __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(s[t]), _mm256_extracti128_si256(s[t], 1));
            a[t] = moek_finish4(a[t], d, moek_h2f4(&xb[t][b].d), _mm_sub_epi32(sums, _mm_set1_epi32(shift * ob[t][b])));
        }
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}

/// Eight rows · `count` (1-2, a constant after inlining) tokens against a segment interleaved as
/// two four-row groups (`iq[b][0..3]` rows 0-3, `iq[b][4..7]` rows 4-7): each shuffled activation
/// dword feeds both groups' vpdpbusd, and the finish runs eight lanes wide with tile_tokens's
/// operations per lane (the same bits). `acc[i]` holds token i's eight row sums.
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(tile8_tokens)(const __m256i (*iq)[8], const float (*dw)[8], size_t sb,
                                                    const moek_block_q8_0 *const *xb, const int32_t *const *ob, int shift,
                                                    __m256 *acc, const int count, const uint8_t *next, size_t rowBytes, size_t blockBytes) {
    const __m256i zero = _mm256_setzero_si256();
    __m256 a[2];
    for (int t = 0; t < count; t++) a[t] = acc[t];
    for (size_t b = 0; b < sb; b++) {
        if (next) {
            for (int k = 0; k < 8; k++) {
                const char *line = (const char *)(next + b * blockBytes + k * rowBytes);
                _mm_prefetch(line, _MM_HINT_T0);
                if (blockBytes > 18) _mm_prefetch(line + blockBytes - 1, _MM_HINT_T0);
            }
        }
        __m256i act[2], lo[2], hi[2];
        for (int t = 0; t < count; t++) {
            act[t] = _mm256_loadu_si256((const __m256i *)xb[t][b].qs);
            lo[t] = zero;
            hi[t] = zero;
        }
#define MOEK_VNNI_GROUP8(g)                                                                 \
        {                                                                                   \
            const __m256i q0 = _mm256_load_si256(&iq[b][g]), q1 = _mm256_load_si256(&iq[b][4 + (g)]); \
            for (int t = 0; t < count; t++) {                                               \
                const __m256i v = _mm256_shuffle_epi32(act[t], (g) * 0x55);                \
                lo[t] = MOEK_DPBUSD(lo[t], q0, v);                                          \
                hi[t] = MOEK_DPBUSD(hi[t], q1, v);                                          \
            }                                                                               \
        }
        MOEK_VNNI_GROUP8(0) MOEK_VNNI_GROUP8(1) MOEK_VNNI_GROUP8(2) MOEK_VNNI_GROUP8(3)
#undef MOEK_VNNI_GROUP8
        const __m256 d = _mm256_load_ps(dw[b]);
        for (int t = 0; t < count; t++) {
            // Row k's halves sit in lanes k and k+4 of its group's vector: low halves + high halves.
            const __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(lo[t], hi[t], 0x20),
                                                  _mm256_permute2x128_si256(lo[t], hi[t], 0x31));
            uint16_t h;
            memcpy(&h, &xb[t][b].d, 2);
            const __m256 dx = _mm256_cvtph_ps(_mm_set1_epi16((short)h));
            a[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(_mm256_sub_epi32(sums, _mm256_set1_epi32(shift * ob[t][b]))), a[t]);
        }
    }
    for (int t = 0; t < count; t++) acc[t] = a[t];
}

/// Rows 0-3 (as 256-bit vectors of eight dwords) transposed within each 128-bit half: out[g]
/// holds dword g of every row in its low half and dword 4 + g in its high half.
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(transpose4x2)(const __m256i *rows, __m256i *out) {
    const __m256i a = _mm256_unpacklo_epi32(rows[0], rows[1]), b = _mm256_unpacklo_epi32(rows[2], rows[3]);
    const __m256i c = _mm256_unpackhi_epi32(rows[0], rows[1]), d = _mm256_unpackhi_epi32(rows[2], rows[3]);
    out[0] = _mm256_unpacklo_epi64(a, b);
    out[1] = _mm256_unpackhi_epi64(a, b);
    out[2] = _mm256_unpacklo_epi64(c, d);
    out[3] = _mm256_unpackhi_epi64(c, d);
}

/// Q4_0 (q4 = 1) or Q8_0 (q4 = 0) weight rows times several tokens, as moek_gemm_q4_0_q8_0: four
/// rows at a time, each segment of their blocks interleaved once (Q4_0 nibbles unpacked, Q8_0
/// bytes shifted to unsigned) and then passed over by every token of the tile.
MOEK_VNNI_INLINE void MOEK_VNNI_NAME(gemm_tiles)(const int q4, const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                                  const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride,
                                                  const int32_t *xIndex, size_t tokens, float *y, size_t yStride,
                                                  const int32_t *yIndex) {
    const size_t nb = n / 32, blockBytes = q4 ? 18 : 34;
    const int shift = q4 ? 1 : 16;
    _Alignas(32) __m256i iq[SEGMENT][4];
    _Alignas(16) float dw[SEGMENT][4];
    __m128 acc[TILE];
    const __m256i low = _mm256_set1_epi8(0xF), flip = _mm256_set1_epi8((char)0x80);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t s = 0; s < nb; s += SEGMENT) {
            const size_t sb = nb - s < SEGMENT ? nb - s : SEGMENT;
            const uint8_t *p = w0 + s * blockBytes;
            // The next four rows' segment: during the first token pass when there is one tile,
            // in a burst up front when there are several (as gemm.c's interleaved Q4_0 tiles).
            const uint8_t *next = tile_next_rows(p, rowBytes, 4, sb * blockBytes, tokens);
            for (size_t b = 0; b < sb; b++, p += blockBytes) {
                _mm_store_ps(dw[b], moek_scales4(p, rowBytes));
                __m256i v[4];
                if (q4) {
                    __m128i packed[4], t[4];
                    for (int k = 0; k < 4; k++) packed[k] = _mm_loadu_si128((const __m128i *)(p + k * rowBytes + 2));
                    moek_transpose4(packed, t);
                    for (int g = 0; g < 4; g++) v[g] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t[g], 4), t[g]), low);
                } else {
                    __m256i q[4];
                    for (int k = 0; k < 4; k++) q[k] = _mm256_loadu_si256((const __m256i *)(p + k * rowBytes + 2));
                    MOEK_VNNI_NAME(transpose4x2)(q, v);
                    for (int g = 0; g < 4; g++) v[g] = _mm256_xor_si256(v[g], flip);
                }
                for (int g = 0; g < 4; g++) _mm256_store_si256(&iq[b][g], v[g]);
            }
            for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
                const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
                for (size_t i = 0; i < tt; i++) acc[i] = tile_resume(s, y + token_row(yIndex, t0 + i) * yStride + r);
                for (size_t i = 0; i < tt; i += 4) {
                    const moek_block_q8_0 *xb[4];
                    const int32_t *ob[4];
                    const int count = tt - i < 4 ? (int)(tt - i) : 4;
                    tile_q8_0_tokens(x, offsets, xStride, xIndex, t0 + i, count, s, xb, ob);
                    const __m256i (*q)[4] = (const __m256i (*)[4])iq;
                    const float (*d)[4] = (const float (*)[4])dw;
                    const uint8_t *pf = i == 0 ? next : NULL;
                    switch (count) {
                    case 4: MOEK_VNNI_NAME(tile_tokens)(q, d, sb, xb, ob, shift, acc + i, 4, pf, rowBytes, blockBytes); break;
                    case 3: MOEK_VNNI_NAME(tile_tokens)(q, d, sb, xb, ob, shift, acc + i, 3, pf, rowBytes, blockBytes); break;
                    case 2: MOEK_VNNI_NAME(tile_tokens)(q, d, sb, xb, ob, shift, acc + i, 2, pf, rowBytes, blockBytes); break;
                    default: MOEK_VNNI_NAME(tile_tokens)(q, d, sb, xb, ob, shift, acc + i, 1, pf, rowBytes, blockBytes); break;
                    }
                }
                for (size_t i = 0; i < tt; i++) _mm_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
            }
        }
    }
    if (r < rows)
        for (size_t k = r; k < rows; k++)
            for (size_t t = 0; t < tokens; t++)
                y[token_row(yIndex, t) * yStride + k] = q4 ? moek_vec_dot_q4_0_q8_0(w + k * rowBytes, x + token_row(xIndex, t) * xStride, n)
                                                           : moek_vec_dot_q8_0_q8_0(w + k * rowBytes, x + token_row(xIndex, t) * xStride, n);
}

/// Q4_0 (q4 = 1) or Q8_0 rows eight at a time (tile8_tokens), as gemm_tiles; returns how many rows
/// it did (a multiple of 8), the rest left to gemm_tiles. Zen 5, one thread, 1024x2048 Q4_0
/// streamed, µs per token, eight rows vs four: 3 tokens 24.5 vs 32.8, 4: 21.3 vs 26.9, 8: 17.5
/// vs 21.5, 64: 15.0 vs 19.3.
MOEK_VNNI_INLINE size_t MOEK_VNNI_NAME(gemm_tiles8)(const int q4, const uint8_t *w, size_t rowBytes, size_t rows, size_t n,
                                                     const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride,
                                                     const int32_t *xIndex, size_t tokens, float *y, size_t yStride,
                                                     const int32_t *yIndex) {
    const size_t nb = n / 32, blockBytes = q4 ? 18 : 34;
    const int shift = q4 ? 1 : 16;
    _Alignas(32) __m256i iq[SEGMENT][8];
    _Alignas(32) float dw[SEGMENT][8];
    __m256 acc[TILE];
    const __m256i low = _mm256_set1_epi8(0xF), flip = _mm256_set1_epi8((char)0x80);
    size_t r = 0;
    for (; r + 8 <= rows; r += 8) {
        const uint8_t *w0 = w + r * rowBytes;
        for (size_t s = 0; s < nb; s += SEGMENT) {
            const size_t sb = nb - s < SEGMENT ? nb - s : SEGMENT;
            const uint8_t *p = w0 + s * blockBytes;
            // The next eight rows' segment: during the first token pass when there is one tile,
            // in a burst up front when there are several.
            const uint8_t *next = tile_next_rows(p, rowBytes, 8, sb * blockBytes, tokens);
            for (size_t b = 0; b < sb; b++, p += blockBytes) {
                _mm_store_ps(dw[b], moek_scales4(p, rowBytes));
                _mm_store_ps(dw[b] + 4, moek_scales4(p + 4 * rowBytes, rowBytes));
                for (int half = 0; half < 2; half++) {
                    const uint8_t *ph = p + 4 * half * rowBytes;
                    __m256i v[4];
                    if (q4) {
                        __m128i packed[4], t[4];
                        for (int k = 0; k < 4; k++) packed[k] = _mm_loadu_si128((const __m128i *)(ph + k * rowBytes + 2));
                        moek_transpose4(packed, t);
                        for (int g = 0; g < 4; g++) v[g] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t[g], 4), t[g]), low);
                    } else {
                        __m256i q[4];
                        for (int k = 0; k < 4; k++) q[k] = _mm256_loadu_si256((const __m256i *)(ph + k * rowBytes + 2));
                        MOEK_VNNI_NAME(transpose4x2)(q, v);
                        for (int g = 0; g < 4; g++) v[g] = _mm256_xor_si256(v[g], flip);
                    }
                    for (int g = 0; g < 4; g++) _mm256_store_si256(&iq[b][4 * half + g], v[g]);
                }
            }
            for (size_t t0 = 0; t0 < tokens; t0 += TILE) {
                const size_t tt = tokens - t0 < TILE ? tokens - t0 : TILE;
                for (size_t i = 0; i < tt; i++) {
                    const float *out = y + token_row(yIndex, t0 + i) * yStride + r;
                    acc[i] = s == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out);
                }
                for (size_t i = 0; i < tt; i += 2) {
                    const moek_block_q8_0 *xb[2];
                    const int32_t *ob[2];
                    const int count = tt - i < 2 ? 1 : 2;
                    tile_q8_0_tokens(x, offsets, xStride, xIndex, t0 + i, count, s, xb, ob);
                    const __m256i (*q)[8] = (const __m256i (*)[8])iq;
                    const float (*d)[8] = (const float (*)[8])dw;
                    const uint8_t *pf = i == 0 ? next : NULL;
                    if (count == 2) MOEK_VNNI_NAME(tile8_tokens)(q, d, sb, xb, ob, shift, acc + i, 2, pf, rowBytes, blockBytes);
                    else MOEK_VNNI_NAME(tile8_tokens)(q, d, sb, xb, ob, shift, acc + i, 1, pf, rowBytes, blockBytes);
                }
                for (size_t i = 0; i < tt; i++) _mm256_storeu_ps(y + token_row(yIndex, t0 + i) * yStride + r, acc[i]);
            }
        }
    }
    return r;
}

MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(gemm_q4_0)(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x,
                                                     const int32_t *offsets, size_t xStride, const int32_t *xIndex, size_t tokens,
                                                     float *y, size_t yStride, const int32_t *yIndex) {
    const size_t done = MOEK_VNNI_NAME(gemm_tiles8)(1, w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
    MOEK_VNNI_NAME(gemm_tiles)(1, w + done * rowBytes, rowBytes, rows - done, n, x, offsets, xStride, xIndex, tokens, y + done, yStride, yIndex);
}
MOEK_VNNI_ATTR static void MOEK_VNNI_NAME(gemm_q8_0)(const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x,
                                                     const int32_t *offsets, size_t xStride, const int32_t *xIndex, size_t tokens,
                                                     float *y, size_t yStride, const int32_t *yIndex) {
    // Q8_0 up to one tile of tokens is memory-bound when streamed, where eight rows at once (and
    // eight ahead) lost (1024x2048, 4 tokens 30.8 vs 27.5 µs per token, 8: 22.4 vs 21.6); from
    // L3 and beyond one tile they win (4 tokens 20.6 vs 24.6; 16 streamed 24.0 vs 28.2; 64 16.1 vs 21.4).
    const size_t done = tokens <= TILE ? 0 : MOEK_VNNI_NAME(gemm_tiles8)(0, w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
    MOEK_VNNI_NAME(gemm_tiles)(0, w + done * rowBytes, rowBytes, rows - done, n, x, offsets, xStride, xIndex, tokens, y + done, yStride, yIndex);
}

#undef MOEK_VNNI_INLINE
