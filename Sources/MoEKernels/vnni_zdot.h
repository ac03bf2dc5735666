// Decode kernels with 512-bit vpdpbusd (AVX-512 VNNI): four K-quant rows, eight Q4_0 rows or
// four Q8_0 rows times one to four tokens, included once by vnni.c after vnni_zmm.h (whose
// attributes they use).
//
// A few tokens leave too little to amortize an interleaving pass over (the sixteen-row tiles in
// vnni_zmm.h pay for theirs from five to seven tokens when the rows stream from memory), so these read each row as the file stores it:
// one 64-byte load holds 128 of a row's weights, whose low nibbles go against one activation
// vector and high nibbles against another, arranged once per block for all four rows. Each
// 128-bit lane then meets a single sub-block, so one pack to int16 and one vpdpwssd against the
// rows' sub-block scales accumulate the scaled sums exactly, as in vnni_qdot.h's 256-bit kernels,
// with half the instructions per weight and no pairing of rows. The integer sums are exact and
// the float finish is the scalar twin's, lane by lane, so the results are the scalar bits.
//
// Q6_K reads a half's 64 low-bit bytes in one load: their low nibbles are weights 0-63 in
// order and their high nibbles 64-127, so the same scheme applies (zd_q6_half).

/// Four rows' sixteen int32 lanes (`s[k]`: row k) summed: row k's total in lane k.
MOEK_ZMM_INLINE __m128i zd_fold4(const __m512i *s) {
    const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[0], s[1]), _mm512_unpackhi_epi32(s[0], s[1]));
    const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[2], s[3]), _mm512_unpackhi_epi32(s[2], s[3]));
    const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
    const __m256i v = _mm256_add_epi32(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

/// The levels of half h (weights 128h..128h+127) of one Q4_K/Q5_K row's super-block: `v` its 64
/// bytes of nibbles (chunks 2h and 2h+1: lanes 0-1 the first, 2-3 the second), `l` the low
/// nibbles', `u` the high nibbles'. Q5_K (`qh` not NULL) ORs in bit 4 from the qh bytes of the
/// low (bit 4h, lanes 2-3: 4h+2) and high (4h+1, 4h+3) nibbles.
MOEK_ZMM_INLINE void zd_k4_levels(__m512i v, const __m512i *qh, const int h, __m512i *l, __m512i *u) {
    const __m512i low = _mm512_set1_epi8(0xF);
    *l = _mm512_and_si512(v, low);
    *u = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    if (qh) {
        const __m512i sixteen = _mm512_set1_epi8(16);
        // One bit per byte: lanes 0-1 test bit 4h (low) / 4h+1 (high), lanes 2-3 bits 4h+2 / 4h+3.
        const __m512i bitLow = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (4 * h))), _mm256_set1_epi8((char)(4 << (4 * h))), 1);
        const __m512i bitHigh = _mm512_add_epi8(bitLow, bitLow);
        *l = _mm512_mask_add_epi8(*l, _mm512_test_epi8_mask(*qh, bitLow), *l, sixteen);  // l <= 15: the add is an OR
        *u = _mm512_mask_add_epi8(*u, _mm512_test_epi8_mask(*qh, bitHigh), *u, sixteen);
    }
}

/// `acc` plus a half's sub-block sums: levels `l` against activations `alo` and `u` against
/// `ahi` (vpdpbusd), packed to int16 and weighted by `scw`, each lane's two sub-block scales as
/// int16 (the low levels' in words 0-3, the high levels' in 4-7; vpdpwssd). Every vpdpbusd lane
/// sums four products, at most 4·63·127 = 32004, so the pack to int16 is exact.
MOEK_ZMM_INLINE __m512i zd_scaled_sums(__m512i acc, __m512i l, __m512i u, __m512i alo, __m512i ahi, __m512i scw) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i sums = _mm512_packs_epi32(_mm512_dpbusd_epi32(zero, l, alo), _mm512_dpbusd_epi32(zero, u, ahi));
    return _mm512_dpwssd_epi32(acc, sums, scw);
}

/// The first sixteen bytes of four Q4_K/Q5_K super-blocks (d, dmin and the twelve packed 6-bit
/// scales: row k's in lane k) with the scales unpacked: bytes 0-7 of lane k row k's eight
/// scales, bytes 8-15 its eight minimums (k4_unpack's arithmetic on 32-bit lanes).
MOEK_ZMM_INLINE __m512i zd_k4_scales(__m512i head) {
    const __m512i six = _mm512_set1_epi8(0x3F), four = _mm512_set1_epi8(0xF), two = _mm512_set1_epi8(3);
    // Dwords per lane: head [d|dmin, w0, w1, w2]; lo [w0, w0, w1, w1]; hi [w2, w2, w2, w2 >> 4].
    const __m512i lo = _mm512_shuffle_epi32(head, _MM_SHUFFLE(2, 2, 1, 1));
    const __m512i hi = _mm512_srlv_epi32(_mm512_shuffle_epi32(head, _MM_SHUFFLE(3, 3, 3, 3)), _mm512_set4_epi32(4, 0, 0, 0));
    const __m512i first = _mm512_and_si512(lo, six);  // dwords 0 and 2: sub-blocks 0-3
    const __m512i second = _mm512_or_si512(_mm512_and_si512(hi, four), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(lo, 6), two), 4));
    return _mm512_mask_blend_epi32(0xAAAA, first, second);
}

/// Decode: four Q4_K (`q5` 0) or Q5_K (1) rows · `T` tokens (1-4; `x[t]`, `out[t]`), as
/// moek_vec_dot4_q4_K_q8_K once per token, 512 bits wide (see the top of this file): the four
/// rows' scales, minimums and super-block scales unpacked together from one vector of their
/// headers, and each half of a row's nibbles unpacked once for all tokens; the float finish is
/// vnni_qdot.h's, per token, so every token gets the one-token kernel's bits.
MOEK_ZMM_INLINE void zd_dotT_k4(const uint8_t *w, size_t stride, const moek_block_q8_K *const *x, const int T, size_t n, const int q5, float *const *out) {
    const size_t blockBytes = q5 ? 176 : 144, qsOffset = q5 ? 48 : 16;
    const size_t ahead = prefetch_rows(stride) * stride;
    // Byte shuffles (within each 128-bit lane of a row's unpacked scales, zd_k4_scales) putting
    // the int16 scales of half h's sub-blocks where zd_scaled_sums wants them: lanes 0-1 sub-blocks
    // 4h and 4h+1, lanes 2-3 sub-blocks 4h+2 and 4h+3.
    const char z = (char)0x80;
    const __m512i pick0 = _mm512_inserti64x4(
        _mm512_broadcast_i32x4(_mm_setr_epi8(0, z, 0, z, 0, z, 0, z, 1, z, 1, z, 1, z, 1, z)),
        _mm256_broadcastsi128_si256(_mm_setr_epi8(2, z, 2, z, 2, z, 2, z, 3, z, 3, z, 3, z, 3, z)), 1);
    const __m512i pick1 = _mm512_add_epi8(pick0, _mm512_maskz_set1_epi8(0x5555555555555555ull, 4));
    // The minimums (bytes 8-15) as int16; the halves d (bytes 0-1) and dmin (2-3) of each lane
    // gathered: d of rows 0-3 in bytes 0-7, dmin in 8-15.
    const __m512i minWords = _mm512_broadcast_i32x4(_mm_setr_epi8(8, z, 9, z, 10, z, 11, z, 12, z, 13, z, 14, z, 15, z));
    const __m512i heads = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i halves = _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    __m128 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm_setzero_ps();
    for (size_t i = 0; i < n / 256; i++) {
        const uint8_t *b = w + i * blockBytes;
        moek_prefetch_span(w, 4 * stride, ahead, i, n / 256);
        __m512i head = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)b));
        head = _mm512_inserti32x4(head, _mm_loadu_si128((const __m128i *)(b + stride)), 1);
        head = _mm512_inserti32x4(head, _mm_loadu_si128((const __m128i *)(b + 2 * stride)), 2);
        head = _mm512_inserti32x4(head, _mm_loadu_si128((const __m128i *)(b + 3 * stride)), 3);
        const __m512i scales = zd_k4_scales(head);
        const __m512i mins = _mm512_shuffle_epi8(scales, minWords);
        const __m512i rowScales[4] = {  // row k's lane in all four
            _mm512_shuffle_i32x4(scales, scales, 0x00), _mm512_shuffle_i32x4(scales, scales, 0x55),
            _mm512_shuffle_i32x4(scales, scales, 0xAA), _mm512_shuffle_i32x4(scales, scales, 0xFF),
        };
        __m512i s[4][4];  // token t, row k
        for (int t = 0; t < T; t++)
            for (int k = 0; k < 4; k++) s[t][k] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            // Half h's low nibbles meet activations 128h + (0..31, 64..95), high ones 128h + (32..63, 96..127).
            __m512i alo[4], ahi[4];
            for (int t = 0; t < T; t++) {
                const int8_t *a = x[t][i].qs + 128 * h;
                alo[t] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                                            _mm256_loadu_si256((const __m256i *)(a + 64)), 1);
                ahi[t] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(a + 32))),
                                            _mm256_loadu_si256((const __m256i *)(a + 96)), 1);
            }
            for (int k = 0; k < 4; k++) {
                const uint8_t *r = b + k * stride;
                __m512i qh, l, u;
                if (q5) qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(r + 16)));
                zd_k4_levels(_mm512_loadu_si512(r + qsOffset + 64 * h), q5 ? &qh : NULL, h, &l, &u);
                const __m512i scw = _mm512_shuffle_epi8(rowScales[k], h ? pick1 : pick0);
                for (int t = 0; t < T; t++) s[t][k] = zd_scaled_sums(s[t][k], l, u, alo[t], ahi[t], scw);
            }
        }
        const __m128i dd = _mm_shuffle_epi8(_mm512_castsi512_si128(_mm512_permutexvar_epi32(heads, head)), halves);
        const __m128 dw = _mm_cvtph_ps(dd), dminw = _mm_cvtph_ps(_mm_unpackhi_epi64(dd, dd));
        for (int t = 0; t < T; t++) {
            // The minimums' term: each minimum times its sub-block's activation sum, row k in lane k.
            const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x[t][i].bsums), _mm_loadu_si128((const __m128i *)(x[t][i].bsums + 8)));
            __m512i m = _mm512_madd_epi16(mins, _mm512_broadcast_i32x4(pairs));
            m = _mm512_add_epi32(m, _mm512_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
            m = _mm512_add_epi32(m, _mm512_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
            const __m128i summ = _mm512_castsi512_si128(_mm512_permutexvar_epi32(heads, m));
            const __m128i sumi = zd_fold4(s[t]);
            const __m128 xd = _mm_set1_ps(x[t][i].d);
            const __m128 d = _mm_mul_ps(dw, xd), dmin = _mm_mul_ps(dminw, xd);
            // sum += d * (float)sumi - dmin * (float)summ, per row
            acc[t] = _mm_add_ps(acc[t], _mm_sub_ps(_mm_mul_ps(d, _mm_cvtepi32_ps(sumi)), _mm_mul_ps(dmin, _mm_cvtepi32_ps(summ))));
        }
    }
    for (int t = 0; t < T; t++) _mm_storeu_ps(out[t], acc[t]);
}

MOEK_ZMM_ATTR static void zd_dot4_q4_K(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    zd_dotT_k4(w, stride, &x, 1, n, 0, &out);
}
MOEK_ZMM_ATTR static void zd_dot4_q5_K(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    zd_dotT_k4(w, stride, &x, 1, n, 1, &out);
}

/// The levels of one Q4_0 block of four rows (16 bytes of nibbles each at q, q + stride, ...;
/// row k in lane k): `l` the low nibbles (elements 0-15), `u` the high ones (16-31).
MOEK_ZMM_INLINE void zd_q4_0_levels(const uint8_t *q, size_t stride, __m512i *l, __m512i *u) {
    const __m512i low = _mm512_set1_epi8(0xF);
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(q + stride)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(q + 2 * stride)), 2);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(q + 3 * stride)), 3);
    *l = _mm512_and_si512(v, low);
    *u = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
}

/// One Q4_0 block of eight rows, its levels unpacked (`q[0]`, `q[1]`: rows 0-3, low and high
/// nibbles; `q[2]`, `q[3]`: rows 4-7), against activation block xb, 8·Σa (`offset`) taken out at
/// the start of each row's first lane: dwords 2k and 2k+1 of lane k hold rows k and k + 4 twice
/// over, summed (gather dwords 0, 4, 8, 12 and 2, 6, 10, 14 for rows 0-7).
MOEK_ZMM_INLINE __m512i zd_q4_0_sums8(const __m512i *q, const moek_block_q8_0 *xb, int32_t offset) {
    const __m512i alo = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)xb->qs));
    const __m512i ahi = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(xb->qs + 16)));
    const __m512i start = _mm512_maskz_set1_epi32(0x1111, -offset);
    const __m512i p0 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, q[0], alo), q[1], ahi);
    const __m512i p1 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, q[2], alo), q[3], ahi);
    const __m512i t = _mm512_add_epi32(_mm512_unpacklo_epi64(p0, p1), _mm512_unpackhi_epi64(p0, p1));
    return _mm512_add_epi32(t, _mm512_shuffle_epi32(t, _MM_SHUFFLE(2, 3, 0, 1)));
}

/// Two consecutive Q4_0 blocks of eight rows (levels `q0`, `q1` as zd_q4_0_sums8 takes them)
/// against activation blocks xb[0], xb[1]: the sixteen row sums, the first block's rows 0-7 then
/// the second's, before the 8·Σa offsets come out. The four partial-sum vectors fold together
/// (three unpack-and-add steps) and one permute puts the rows in order.
MOEK_ZMM_INLINE __m512i zd_q4_0_sums8x2(const __m512i *q0, const __m512i *q1, const moek_block_q8_0 *xb, __m512i order) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i alo0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)xb[0].qs));
    const __m512i ahi0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(xb[0].qs + 16)));
    const __m512i alo1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)xb[1].qs));
    const __m512i ahi1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(xb[1].qs + 16)));
    // Lane k: row k's (A, C) or row k+4's (B, D) four partial sums, block b (A, B) or b+1 (C, D).
    const __m512i A = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, q0[0], alo0), q0[1], ahi0);
    const __m512i B = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, q0[2], alo0), q0[3], ahi0);
    const __m512i C = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, q1[0], alo1), q1[1], ahi1);
    const __m512i D = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, q1[2], alo1), q1[3], ahi1);
    const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(A, B), _mm512_unpackhi_epi32(A, B));
    const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(C, D), _mm512_unpackhi_epi32(C, D));
    // Lane k: rows k and k+4 of block b, then of block b+1.
    const __m512i r = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    return _mm512_permutexvar_epi32(order, r);
}

/// The levels of one Q4_0 block of eight rows (at r, r + stride, ...), as zd_q4_0_sums8 takes them.
MOEK_ZMM_INLINE void zd_q4_0_levels8(const uint8_t *r, size_t stride, __m512i *q) {
    zd_q4_0_levels(r + 2, stride, &q[0], &q[1]);
    zd_q4_0_levels(r + 4 * stride + 2, stride, &q[2], &q[3]);
}

/// The high 256 bits of v.
MOEK_ZMM_INLINE __m256 zd_high(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

/// The scales of two consecutive Q4_0 blocks (at p and p + 18) of eight rows (p, p + stride,
/// ...) as floats: the first block's rows 0-7, then the second's. One 32-byte load per row holds
/// both (words 0 and 9), and two word permutes (`pick`, zd_scale_picks) gather the sixteen, where
/// loading them one by one into a general register (moek_scales4) took a third of the time.
MOEK_ZMM_INLINE __m512 zd_scales8x2(const uint8_t *p, size_t stride, const __m512i *pick) {
    __m512i pair[4];
    for (int j = 0; j < 4; j++)
        pair[j] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 2 * j * stride))),
                                     _mm256_loadu_si256((const __m256i *)(p + (2 * j + 1) * stride)), 1);
    const __m512i lo = _mm512_permutex2var_epi32(pair[0], pick[0], pair[1]), hi = _mm512_permutex2var_epi32(pair[2], pick[1], pair[3]);
    const __m512i both = _mm512_mask_blend_epi32(0xF0F0, lo, hi);
    // The first block's halves are the low words of dwords 0-7, the second's the high words of 8-15.
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_mask_srli_epi32(both, 0xFF00, both, 16)));
}

/// zd_scales8x2's word permutes: rows 0-3 (of pair vectors 0-1: row j's 32 bytes at word 16j)
/// into words 0-3 (first block) and 8-11 (second), rows 4-7 into words 4-7 and 12-15.
MOEK_ZMM_INLINE void zd_scale_picks(__m512i *pick) {
    pick[0] = _mm512_setr_epi32(0, 8, 16, 24, 0, 0, 0, 0, 4, 12, 20, 28, 0, 0, 0, 0);
    pick[1] = _mm512_setr_epi32(0, 0, 0, 0, 0, 8, 16, 24, 0, 0, 0, 0, 4, 12, 20, 28);
}

/// Decode: eight Q4_0 rows · `T` tokens (1-4; `x[t]`, `offsets[t]`, `out[t]`), as
/// moek_vec_dot8_q4_0_q8_0 once per token, 512 bits wide: four rows per vector (a row per 128-bit
/// lane) against the activation halves in every lane, each block's levels unpacked once for all
/// tokens. Two blocks per pass share, per token, one fold of their four partial-sum vectors
/// (zd_q4_0_sums8x2), one subtraction of the 8·Σa offsets, one conversion, and one scale multiply
/// with both activation scales converted from halves in one instruction, then finish in block
/// order as vnni_qdot.h's dot8_q4_0 does (the same bits). Folding the two blocks together and
/// taking the offsets out after the fold (instead of folding each block on its own and starting
/// its sums from −8·Σa) cut a matrix of 1024x2048 from L2, one thread, 29.1 -> 24.9 µs at one
/// token and 61.3 -> 57.2 at four (streamed: 30.7 -> 29.6, 61.0 -> 59.9).
MOEK_ZMM_INLINE void zd_dotT8_q4_0(const uint8_t *w, size_t stride, const moek_block_q8_0 *const *x, const int32_t *const *offsets,
                                   const int T, size_t n, float *const *out) {
    const __m512i gather = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 16, 20, 24, 28, 18, 22, 26, 30);
    __m512i pick[2];
    zd_scale_picks(pick);
    __m256 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const size_t blocks = n / 32, ahead = prefetch_rows(stride) * stride;
    size_t b = 0;
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i pairOf = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    for (; b + 2 <= blocks; b += 2) {
        const uint8_t *r = w + b * 18;
        moek_prefetch_span(w, 8 * stride, ahead, b / 2, blocks / 2);
        __m512i q0[4], q1[4];
        zd_q4_0_levels8(r, stride, q0);
        zd_q4_0_levels8(r + 18, stride, q1);
        const __m512 scales = zd_scales8x2(r, stride, pick);
        for (int t = 0; t < T; t++) {
            const __m512i sums = zd_q4_0_sums8x2(q0, q1, &x[t][b], order);
            const __m512i off = _mm512_permutexvar_epi32(pairOf, _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)&offsets[t][b])));
            const __m512 sf = _mm512_cvtepi32_ps(_mm512_sub_epi32(sums, off));
            const __m256i xh = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)x[t][b].d)),
                                                       _mm_set1_epi16((short)x[t][b + 1].d), 1);
            const __m512 d = _mm512_mul_ps(scales, _mm512_cvtph_ps(xh));
            acc[t] = _mm256_fmadd_ps(_mm512_castps512_ps256(d), _mm512_castps512_ps256(sf), acc[t]);
            acc[t] = _mm256_fmadd_ps(zd_high(d), zd_high(sf), acc[t]);
        }
    }
    if (b < blocks) {
        const uint8_t *r = w + b * 18;
        __m512i q0[4];
        zd_q4_0_levels8(r, stride, q0);
        const __m256 d0 = _mm256_set_m128(moek_scales4(r + 4 * stride, stride), moek_scales4(r, stride));
        for (int t = 0; t < T; t++) {
            const __m512i s0 = zd_q4_0_sums8(q0, &x[t][b], offsets[t][b]);
            const __m256 sums = _mm256_cvtepi32_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi32(gather, s0)));
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d0, _mm256_set1_ps(moek_h2f(x[t][b].d))), sums, acc[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm256_storeu_ps(out[t], acc[t]);
}

MOEK_ZMM_ATTR static void zd_dot8_q4_0(const uint8_t *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out) {
    zd_dotT8_q4_0(w, stride, &x, &offsets, 1, n, &out);
}

/// Eight Q4_0 rows · `T` tokens (2-4): zd_dotT8_q4_0 with the token count fixed at compile time.
MOEK_ZMM_ATTR static void zd_dotT8(int T, const uint8_t *w, size_t stride, const moek_block_q8_0 *const *x, const int32_t *const *offsets,
                                   size_t n, float *const *out) {
    switch (T) {
        case 4: zd_dotT8_q4_0(w, stride, x, offsets, 4, n, out); break;
        case 3: zd_dotT8_q4_0(w, stride, x, offsets, 3, n, out); break;
        case 2: zd_dotT8_q4_0(w, stride, x, offsets, 2, n, out); break;
        default: zd_dotT8_q4_0(w, stride, x, offsets, 1, n, out); break;
    }
}

/// Four Q8_0 rows · `T` tokens (1-4; `x[t]`, `out[t]`), as moek_vec_dot4_q8_0_q8_0 once
/// per token, 512 bits wide: a vector holds one row's blocks b and b + 1 (a block per 256-bit
/// half), flipped to unsigned once (xor 0x80) for all tokens, and each token's sums start from
/// −128·Σa lane by lane, as vnni_qdot.h's dot4_q8_0 does; the four rows fold together (zd_fold4's
/// steps: lane L holds rows 0-3 of lane L's quarter) and each block finishes in order, so every
/// token gets the scalar twin's bits.
MOEK_ZMM_INLINE void zd_dotT4_q8_0(const uint8_t *w, size_t stride, const moek_block_q8_0 *const *x, const int T, size_t n, float *const *out) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    __m128 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm_setzero_ps();
    const size_t blocks = n / 32, ahead = prefetch_rows(stride) * stride;
    size_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        const uint8_t *r = w + b * 34;
        moek_prefetch_span(w, 4 * stride, ahead, b / 2, blocks / 2);
        __m512i v[4];
        for (int k = 0; k < 4; k++) {
            const uint8_t *p = r + k * stride;
            const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 2))),
                                                    _mm256_loadu_si256((const __m256i *)(p + 36)), 1);
            v[k] = _mm512_xor_si512(both, flip);
        }
        const __m128 d0 = moek_scales4(r, stride), d1 = moek_scales4(r + 34, stride);
        for (int t = 0; t < T; t++) {
            const __m512i a = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[t][b].qs)),
                                                 _mm256_loadu_si256((const __m256i *)x[t][b + 1].qs), 1);
            const __m512i shift = _mm512_dpbusd_epi32(zero, flip, _mm512_sub_epi8(zero, a));  // |a| <= 127: −a fits
            __m512i s[4];
            for (int k = 0; k < 4; k++) s[k] = _mm512_dpbusd_epi32(shift, v[k], a);
            const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[0], s[1]), _mm512_unpackhi_epi32(s[0], s[1]));
            const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[2], s[3]), _mm512_unpackhi_epi32(s[2], s[3]));
            const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
            // lanes 0 + 1: block b's rows 0-3; lanes 2 + 3: block b + 1's
            const __m512i sums = _mm512_add_epi32(u, _mm512_shuffle_i64x2(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
            acc[t] = moek_finish4(acc[t], d0, moek_h2f4(&x[t][b].d), _mm512_castsi512_si128(sums));
            acc[t] = moek_finish4(acc[t], d1, moek_h2f4(&x[t][b + 1].d), _mm512_extracti32x4_epi32(sums, 2));
        }
    }
    if (b < blocks) {
        const uint8_t *r = w + b * 34;
        const __m256i flip8 = _mm256_set1_epi8((char)0x80), zero8 = _mm256_setzero_si256();
        __m256i v[4];
        for (int k = 0; k < 4; k++) v[k] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(r + k * stride + 2)), flip8);
        const __m128 d0 = moek_scales4(r, stride);
        for (int t = 0; t < T; t++) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)x[t][b].qs);
            const __m256i shift = _mm256_dpbusd_epi32(zero8, flip8, _mm256_sub_epi8(zero8, a));
            const __m128i sums = moek_fold4_256(_mm256_dpbusd_epi32(shift, v[0], a), _mm256_dpbusd_epi32(shift, v[1], a),
                                                _mm256_dpbusd_epi32(shift, v[2], a), _mm256_dpbusd_epi32(shift, v[3], a));
            acc[t] = moek_finish4(acc[t], d0, moek_h2f4(&x[t][b].d), sums);
        }
    }
    for (int t = 0; t < T; t++) _mm_storeu_ps(out[t], acc[t]);
}

/// Four Q8_0 rows · `T` tokens (2-4): zd_dotT4_q8_0 with the token count fixed at compile time.
MOEK_ZMM_ATTR static void zd_dotT4_q8(int T, const uint8_t *w, size_t stride, const moek_block_q8_0 *const *x, size_t n, float *const *out) {
    switch (T) {
        case 4: zd_dotT4_q8_0(w, stride, x, 4, n, out); break;
        case 3: zd_dotT4_q8_0(w, stride, x, 3, n, out); break;
        case 2: zd_dotT4_q8_0(w, stride, x, 2, n, out); break;
        default: zd_dotT4_q8_0(w, stride, x, 1, n, out); break;
    }
}

/// The levels (0-63) of half h (weights 128h..128h+127) of one Q6_K row's super-block: `ql` its
/// 64 low-bit bytes, `qh` its 32 high-bit bytes; `lo` weights 0-63 of the half, `hi` 64-127. The
/// low nibbles of the 64 bytes are weights 0-63 in order and the high nibbles 64-127, so each
/// 128-bit lane of either vector is one 16-weight group; the two high bits of a weight sit at
/// bits 2j, 2j+1 of its qh byte (j: which quarter of the half), moved to bits 4-5 by one variable
/// shift per vector (`shlo`, `shhi`: 4 and 2 to the left, 0 and 2 to the right, per 256-bit
/// half). Levels 0-63 times int8 stay within zd_scaled_sums' bound, as in vnni_qdot.h's q6_row.
MOEK_ZMM_INLINE void zd_q6_levels(const uint8_t *ql, const uint8_t *qh, __m512i shlo, __m512i shhi, __m512i *lo, __m512i *hi) {
    const __m512i low = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    const __m512i l = _mm512_loadu_si512(ql);
    const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));
    // (a & b) | c: the nibble and its two high bits
    *lo = _mm512_ternarylogic_epi32(l, low, _mm512_and_si512(_mm512_sllv_epi16(h, shlo), top), 0xEA);
    *hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), low, _mm512_and_si512(_mm512_srlv_epi16(h, shhi), top), 0xEA);
}

/// Decode: four Q6_K rows · `T` tokens (1-4; `x[t]`, `out[t]`), as moek_vec_dot4_q6_K_q8_K once
/// per token, 512 bits wide: zd_q6_levels twice per row and block, once for all tokens, with
/// each lane's scales against activations 128h + 0..63 and 64..127 (lane j: the low levels'
/// group j in words 0-3, the high levels' group 4 + j in words 4-7); the offset of 32 (the scales
/// times the activation sums) and the float finish are vnni_qdot.h's dot4_q6_K's, per token, so
/// the results are the same bits.
MOEK_ZMM_INLINE void zd_dotT_q6_K(const uint8_t *w, size_t stride, const moek_block_q8_K *const *x, const int T, size_t n, float *const *out) {
    const __m512i shlo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shhi = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    // Word indices into a row's sixteen int16 scales for half 0 (lane j: j four times, then
    // 4 + j four times); half 1's are eight on.
    const __m512i pick0 = _mm512_setr_epi32(0x00000000, 0x00000000, 0x00040004, 0x00040004, 0x00010001, 0x00010001, 0x00050005, 0x00050005,
                                            0x00020002, 0x00020002, 0x00060006, 0x00060006, 0x00030003, 0x00030003, 0x00070007, 0x00070007);
    const __m512i pick1 = _mm512_add_epi16(pick0, _mm512_set1_epi16(8));
    __m128 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm_setzero_ps();
    const size_t ahead = prefetch_rows(stride) * stride;
    for (size_t i = 0; i < n / 256; i++) {
        const uint8_t *b = w + i * 210;
        moek_prefetch_span(w, 4 * stride, ahead, i, n / 256);
        __m256i sc16[4];
        for (int k = 0; k < 4; k++) sc16[k] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + k * stride + 192)));
        __m512i s[4][4];  // token t, row k
        for (int t = 0; t < T; t++)
            for (int k = 0; k < 4; k++) s[t][k] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            __m512i alo[4], ahi[4];
            for (int t = 0; t < T; t++) {
                alo[t] = _mm512_loadu_si512(x[t][i].qs + 128 * h);
                ahi[t] = _mm512_loadu_si512(x[t][i].qs + 128 * h + 64);
            }
            for (int k = 0; k < 4; k++) {
                const uint8_t *r = b + k * stride;
                __m512i lo, hi;
                zd_q6_levels(r + 64 * h, r + 128 + 32 * h, shlo, shhi, &lo, &hi);
                const __m512i scw = _mm512_permutexvar_epi16(h ? pick1 : pick0, _mm512_castsi256_si512(sc16[k]));  // words 0-15 only
                for (int t = 0; t < T; t++) s[t][k] = zd_scaled_sums(s[t][k], lo, hi, alo[t], ahi[t], scw);
            }
        }
        const __m128 dw = moek_scales4(b + 208, stride);
        for (int t = 0; t < T; t++) {
            const __m256i bsums = _mm256_loadu_si256((const __m256i *)x[t][i].bsums);
            const __m128i offset = moek_fold4_256(_mm256_madd_epi16(sc16[0], bsums), _mm256_madd_epi16(sc16[1], bsums),
                                                  _mm256_madd_epi16(sc16[2], bsums), _mm256_madd_epi16(sc16[3], bsums));
            const __m128i sumi = _mm_sub_epi32(zd_fold4(s[t]), _mm_slli_epi32(offset, 5));
            // sum += d * x.d * (float)(sumi - 32 * offset), per row
            const __m128 d = _mm_mul_ps(dw, _mm_set1_ps(x[t][i].d));
            acc[t] = _mm_add_ps(acc[t], _mm_mul_ps(d, _mm_cvtepi32_ps(sumi)));
        }
    }
    for (int t = 0; t < T; t++) _mm_storeu_ps(out[t], acc[t]);
}

MOEK_ZMM_ATTR static void zd_dot4_q6_K(const uint8_t *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    zd_dotT_q6_K(w, stride, &x, 1, n, &out);
}

/// Four rows of Q4_K (`kind` 4), Q5_K (5) or Q6_K (6) · `T` tokens (2-4): zd_dotT_k4 /
/// zd_dotT_q6_K with the token count fixed at compile time.
MOEK_ZMM_ATTR static void zd_dotT(int kind, int T, const uint8_t *w, size_t stride, const moek_block_q8_K *const *x, size_t n, float *const *out) {
#define MOEK_ZD_CASE(t) \
    if (kind == 6) zd_dotT_q6_K(w, stride, x, t, n, out); \
    else zd_dotT_k4(w, stride, x, t, n, kind == 5, out);
    switch (T) {
        case 4: MOEK_ZD_CASE(4); break;
        case 3: MOEK_ZD_CASE(3); break;
        case 2: MOEK_ZD_CASE(2); break;
        default: MOEK_ZD_CASE(1); break;
    }
#undef MOEK_ZD_CASE
}

#undef MOEK_ZMM_INLINE
