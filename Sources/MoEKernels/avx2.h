// Shared AVX2 pieces of the Q4_0/Q8_0 kernels (quant.c: decode; gemm.c: matrix-matrix tiles).
// Every such kernel computes integer block sums with SIMD and finishes each block exactly as the
// scalar code does — sum += (weight scale · activation scale) · float(block sum), in block order,
// the add fused with the multiply (moek_finish1 in half.h) — so all of them give the scalar result
// bit for bit, whatever their vector width or row count.
#ifndef MOEK_AVX2_H
#define MOEK_AVX2_H
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define MOEK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define MOEK_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/// Step `step` of `steps` in a decode kernel over the rows at `w` (`groupBytes` of them in all):
/// prefetches the step's share of the same span `ahead` bytes on, in address order, each line
/// once (the lines that start in the share). The kernels read their rows side by side, a block
/// of each in turn; prefetching them the same way (one line per row per block, four or eight
/// streams) kept fewer lines in flight than one sequential stream does. Two threads streaming
/// 64 Q4_K matrices (1024x2048, 75 MB) on Zen 5, ms per pass, medians of 101 alternated:
/// 1.38-1.53 -> 1.34-1.46 while the VM's memory was slow, 1.17 -> 1.25 while it was fast; a
/// plain read of 75 MB four rows side by side, 50 -> 61 GB/s (one sequential stream: 63). Whole
/// decode steps gain more than that streaming test: see docs/PERFORMANCE.md. The 512-bit
/// kernels (vnni_zdot.h) needed it most: with the per-row prefetch they lost to the 256-bit
/// ones while memory was slow (1.45-1.65 ms), with it they match or beat them (1.34-1.44).
MOEK_AVX2_INLINE void moek_prefetch_span(const uint8_t *w, size_t groupBytes, size_t ahead, size_t step, size_t steps) {
    const uintptr_t base = (uintptr_t)(w + ahead), share = groupBytes / steps;
    const uintptr_t start = base + step * share, end = step + 1 == steps ? base + groupBytes : start + share;
    for (uintptr_t line = (start + 63) & ~(uintptr_t)63; line < end; line += 64) _mm_prefetch((const char *)line, _MM_HINT_T0);
}

/// An IEEE half as a float.
MOEK_AVX2_INLINE float moek_h2f(uint16_t h) { return _cvtsh_ss(h); }
/// The IEEE half at p as a float in all four lanes. A broadcast load, so that the conversion waits
/// on nothing: for moek_h2f clang inserts the half into whatever register is free — in the
/// four-row kernels the accumulator — which chained every block's activation scale to the
/// previous block's finish (Zen 1 Q4_0 decode kernel: 20.5 -> 17.5 cycles per block of four rows).
MOEK_AVX2_INLINE __m128 moek_h2f4(const uint16_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _mm_cvtph_ps(_mm_set1_epi16((short)h));
}

/// The four half scales at p, p + stride, p + 2·stride, p + 3·stride (bytes), as floats.
MOEK_AVX2_INLINE __m128 moek_scales4(const uint8_t *p, size_t stride) {
    uint16_t d0, d1, d2, d3;
    memcpy(&d0, p, 2); memcpy(&d1, p + stride, 2); memcpy(&d2, p + 2 * stride, 2); memcpy(&d3, p + 3 * stride, 2);
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)((uint64_t)d0 | (uint64_t)d1 << 16 | (uint64_t)d2 << 32 | (uint64_t)d3 << 48)));
}

/// One lane per row (row k in lane k) from four rows' vectors of 32-bit partial sums. Interleaving
/// unpacks and adds rather than three horizontal adds (each several micro-ops on Zen 1): the Q8_0
/// four-row kernel 22.4 -> 21.8 cycles per block of four rows.
MOEK_AVX2_INLINE __m128i moek_fold4(__m128i s0, __m128i s1, __m128i s2, __m128i s3) {
    const __m128i a01 = _mm_add_epi32(_mm_unpacklo_epi32(s0, s1), _mm_unpackhi_epi32(s0, s1));
    const __m128i a23 = _mm_add_epi32(_mm_unpacklo_epi32(s2, s3), _mm_unpackhi_epi32(s2, s3));
    return _mm_add_epi32(_mm_unpacklo_epi64(a01, a23), _mm_unpackhi_epi64(a01, a23));
}
/// moek_fold4 for 256-bit partial sums.
MOEK_AVX2_INLINE __m128i moek_fold4_256(__m256i s0, __m256i s1, __m256i s2, __m256i s3) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/// acc + (scales · dx) · float(sums) with one rounding of the multiply-add: moek_finish1 for four
/// rows at once (dx: the activation scale in every lane, moek_h2f4). Fused rather than a multiply
/// and an add, one instruction fewer per block (Zen 1 olmoe Q4_0: prompts 3-7% faster, decode
/// within noise).
MOEK_AVX2_INLINE __m128 moek_finish4(__m128 acc, __m128 scales, __m128 dx, __m128i sums) {
    return _mm_fmadd_ps(_mm_mul_ps(scales, dx), _mm_cvtepi32_ps(sums), acc);
}

/// Q4_0: 16-bit partial sums of unsigned nibbles (lo: elements 0-15, hi: 16-31, as bytes 0..15)
/// times the activation halves: four products per lane, at most 4·15·128 = 7680 in magnitude.
MOEK_AVX2_INLINE __m128i moek_q4_sums16(__m128i lo, __m128i hi, __m128i alo, __m128i ahi) {
    return _mm_add_epi16(_mm_maddubs_epi16(lo, alo), _mm_maddubs_epi16(hi, ahi));
}
/// moek_q4_sums16 with all 32 unpacked nibbles in one register (its two halves added).
MOEK_AVX2_INLINE __m128i moek_q4_sums16_256(__m256i q, __m256i a) {
    const __m256i m = _mm256_maddubs_epi16(q, a);
    return _mm_add_epi16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
}
/// Four rows' moek_q4_sums16 added in 16 bits, interleaved halves onto each other: row k's sums in
/// the two int16 lanes 2k and 2k+1 (each at most 4·7680 = 30720), ready for one madd.
MOEK_AVX2_INLINE __m128i moek_fold4_16(__m128i s0, __m128i s1, __m128i s2, __m128i s3) {
    const __m128i a01 = _mm_add_epi16(_mm_unpacklo_epi32(s0, s1), _mm_unpackhi_epi32(s0, s1));
    const __m128i a23 = _mm_add_epi16(_mm_unpacklo_epi32(s2, s3), _mm_unpackhi_epi32(s2, s3));
    return _mm_add_epi16(_mm_unpacklo_epi64(a01, a23), _mm_unpackhi_epi64(a01, a23));
}
/// Q4_0: one int32 lane per row (row k in lane k) from four rows' moek_q4_sums16. The lanes are
/// added in 16 bits, interleaved halves onto each other (at most 4·7680 = 30720, no overflow),
/// and widened by one madd: fewer multiplies and no horizontal adds (the Zen 1 decode kernel 12-15%
/// faster than with a madd per row and two rounds of hadd when rows stream from memory; no change
/// with the matrix in L2).
MOEK_AVX2_INLINE __m128i moek_fold4_q4(__m128i s0, __m128i s1, __m128i s2, __m128i s3) {
    return _mm_madd_epi16(moek_fold4_16(s0, s1, s2, s3), _mm_set1_epi16(1));
}

/// Q8_0: 32-bit partial sums of signed weights times activations (the sign trick, as maddubs
/// needs one unsigned operand).
MOEK_AVX2_INLINE __m128i moek_q8_sums128(__m128i q, __m128i a) {
    return _mm_madd_epi16(_mm_maddubs_epi16(_mm_sign_epi8(q, q), _mm_sign_epi8(a, q)), _mm_set1_epi16(1));
}
/// moek_q8_sums128 for a whole block.
MOEK_AVX2_INLINE __m256i moek_q8_sums256(__m256i q, __m256i a) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q)), _mm256_set1_epi16(1));
}
/// Rows 0-3 of a 4x4 matrix of 32-bit lanes (row k = rows[k]) as its columns.
MOEK_AVX2_INLINE void moek_transpose4(const __m128i *rows, __m128i *columns) {
    const __m128i a = _mm_unpacklo_epi32(rows[0], rows[1]), b = _mm_unpacklo_epi32(rows[2], rows[3]);
    const __m128i c = _mm_unpackhi_epi32(rows[0], rows[1]), d = _mm_unpackhi_epi32(rows[2], rows[3]);
    columns[0] = _mm_unpacklo_epi64(a, b);
    columns[1] = _mm_unpackhi_epi64(a, b);
    columns[2] = _mm_unpacklo_epi64(c, d);
    columns[3] = _mm_unpackhi_epi64(c, d);
}

/// One half of a Q6_K block's levels (0..63, unsigned bytes): from its 64 low-nibble bytes ql
/// (l0 = ql[0..<32], l1 = ql[32..<64]) and 32 high-bit bytes h, the four vectors of 32 levels
/// that go against activations 0-31, 32-63, 64-95 and 96-127 of the half.
MOEK_AVX2_INLINE void moek_q6_levels(__m256i l0, __m256i l1, __m256i h, __m256i q[4]) {
    const __m256i low = _mm256_set1_epi8(0xF), two = _mm256_set1_epi8(3);
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_slli_epi16(_mm256_and_si256(h, two), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), two), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), two), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), two), 4));
}
#endif

#endif
