// Q4_0 / Q8_0 kernels with vpdpbusd, compiled twice from vnni_qdot.h: VEX-encoded (AVX-VNNI) and
// EVEX-encoded at 256 bits (AVX-512 VNNI + VL). The dispatchers below prefer the VEX form and
// fall back to the EVEX one, which CPUs with AVX-512 but no AVX-VNNI (Zen 4, Ice Lake / Cascade
// Lake servers) have. On CPUs with AVX-512 VNNI, matrix-matrix products with enough tokens take
// 512-bit tiles (vnni_zmm.h), and Q4_0 (eight rows), Q4_K, Q5_K and Q6_K decode 512-bit kernels
// (vnni_zdot.h), so those decode kernels are compiled in the VEX form only. Products of a few
// tokens take the 512-bit decode kernels too, Q8_0's (four rows) from two tokens. All give the same
// bits as the scalar twins (see vnni_qdot.h).
#include "vnni.h"

#if defined(__x86_64__)
#include "avx2.h"
#include "half.h"
#include "kscales.h"
#include "tiles.h"

#pragma STDC FP_CONTRACT OFF  // the block finish must round as the scalar code does (see quant.c)

#ifndef MOEK_VNNI_PREFETCH_BYTES
/// How far ahead the decode kernels prefetch, in bytes of the matrix (whole rows, at least the
/// next four). The CPUs with these instructions have more memory bandwidth and more loads in
/// flight than the Zen 1 the older kernels' four rows were tuned on: Zen 5, one thread, Q4_0,
/// µs per streamed matrix (1024x2048 / 2048x1024): four rows ahead (4.6 / 2.3 KiB) 46.0 / 44.9,
/// 8 KiB 37.7-40.4 / 39.3-40.0, 16 KiB 38.1-38.5 / 39.0-39.8, 32 KiB 38.7-40.2 / 40.4-41.5;
/// on two threads 16 KiB was the steadiest (43.5-45.3 / 42.2-45.8 vs 46.0-51.7 at four rows).
#define MOEK_VNNI_PREFETCH_BYTES 16384
#endif
/// Rows ahead to prefetch for rows `stride` bytes long.
static inline size_t prefetch_rows(size_t stride) {
    const size_t rows = (MOEK_VNNI_PREFETCH_BYTES + stride - 1) / stride;
    return rows < 4 ? 4 : rows;
}

#define MOEK_VNNI_ATTR __attribute__((target("avx2,fma,f16c,avxvnni")))
#define MOEK_VNNI_NAME(name) name##_vex
#define MOEK_DPBUSD(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#define MOEK_DPWSSD(acc, a, b) _mm256_dpwssd_avx_epi32(acc, a, b)
#define MOEK_VNNI_VEX_DECODE 1
#include "vnni_qdot.h"
#undef MOEK_VNNI_ATTR
#undef MOEK_VNNI_NAME
#undef MOEK_DPBUSD
#undef MOEK_DPWSSD
#undef MOEK_VNNI_VEX_DECODE

#define MOEK_VNNI_ATTR __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define MOEK_VNNI_NAME(name) name##_evex
#define MOEK_DPBUSD(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#define MOEK_DPWSSD(acc, a, b) _mm256_dpwssd_epi32(acc, a, b)
#define MOEK_VNNI_VEX_DECODE 0
#include "vnni_qdot.h"
#undef MOEK_VNNI_ATTR
#undef MOEK_VNNI_NAME
#undef MOEK_DPBUSD
#undef MOEK_DPWSSD
#undef MOEK_VNNI_VEX_DECODE

#include "vnni_zmm.h"
#include "vnni_zdot.h"

static inline int vex(void) { return (moek_cpu_features() & MOEK_CPU_AVX_VNNI) != 0; }

/// Tokens from which CPUs with AVX-512 VNNI use the 512-bit tiles (vnni_zmm.h). Zen 5, one thread,
/// a streamed 1024x2048 matrix, µs per token, 512-bit vs 256-bit tiles: Q4_0 4 tokens 17.7-20.5
/// vs 19.7, 5: 17.7 vs 18.5, 8: 11.4 vs 16.6, 64: 7.0 vs 14.3; Q8_0 4: 27.7 vs 25.0, 5: 23.9 vs
/// 23.0, 6: 20.6 vs 21.7, 8: 16.3 vs 20.3.
#define ZMM_TILE_TOKENS 6

/// Whether the 512-bit tiles take a product with `tokens` tokens.
static inline int zmm(size_t tokens) { return (moek_cpu_features() & MOEK_CPU_AVX512_VNNI) && tokens >= ZMM_TILE_TOKENS; }

/// Tokens from which the 512-bit K-quant tiles run (Q6_K: ZMM_Q6_K_TILE_TOKENS). Their 256-bit alternatives cost
/// more per token than the Q4_0 ones (Q5_K's is the four-row decode kernel once per token), so
/// the crossover comes earlier: same measure, Q4_K 2 tokens 33.0 vs 34.0, 3: 22.4 vs 28.3;
/// Q5_K 2: 45.2 vs 44.3, 3: 28.1 vs 42.7; Q6_K 2: 45.4 vs 54.6, 3: 29.3 vs 42.7.
#define ZMM_K_TILE_TOKENS 3
/// Tokens up to which Q4_K and Q5_K products with AVX-512 VNNI take the four-row decode kernels,
/// each four-row group unpacked once for up to four tokens (zd_dotT), rather than the tiles
/// (ZD_Q6_K_TOKENS: Q6_K). Zen 5, one thread, 1024x2048 matrices streamed from memory, µs per
/// matrix, tiles -> decode kernels: Q4_K 2 tokens 71.6 -> 39.3, 3: 86.4 -> 59.3, 4: 86.2 -> 72.4,
/// 5: 96.0 -> 98.3, 8: 107.0 -> 143.9; Q5_K 2: 65.8 -> 44.7, 4: 98.2 -> 82.2, 5: 102.6 -> 114.1;
/// Q6_K 2: 105.5 -> 41.9, 4: 103.0 -> 65.8, 6: 116.1 -> 100.1, 8: 125.3 -> 126.7. (From L3 the
/// tiles keep up from four tokens: Q4_K 70.7 vs 73.0; a decode step's weights come from memory.)
/// Since the tiles prefetch during two token passes, not one (vnni_zmm.h), Q6_K's cross at
/// six tokens: decode kernel vs tiles, 5 tokens 84.4-90.9 vs 92.5-100.3, 6: 94.6-104.9 vs
/// 92.8-95.4; Q4_K and Q5_K at 4 tokens 68.7-69.5 / 76.9-82.9 vs 81.3 / 101.4-102.3.
#ifndef ZD_K_TOKENS
#define ZD_K_TOKENS 4
#endif
#ifndef ZD_Q6_K_TOKENS
#define ZD_Q6_K_TOKENS 5
#endif
/// Tokens up to which Q4_0 products with AVX-512 VNNI take the eight-row decode kernel, each
/// block's levels unpacked once for up to four tokens (zd_dotT8), rather than the tiles. Zen 5,
/// one thread, streamed 1024x2048 matrices, µs, tiles vs this: 2 tokens 60.0-61.0 vs 37.8-39.2,
/// 3: 67.8-69.2 vs 47.5-48.0, 4: 79.0-80.5 vs 58.2-59.9, 5: 93.4-95.5 vs 86.7-88.1, 6:
/// 105.1-108.2 vs 96.2-98.6, 8: 117.9-121.4 vs 123.2-123.6, 12: 137-141 vs 180-188. With the
/// tiles prefetching during two token passes: 5 tokens 86.8-91.3 vs 94.7-98.7, 6: 96.9-100.6 vs
/// 85.0-86.4, so the tiles take six.
#ifndef ZD_Q4_0_TOKENS
#define ZD_Q4_0_TOKENS 5
#endif
/// Tokens up to which Q8_0 products with AVX-512 VNNI take the four-row 512-bit decode kernel
/// (zd_dotT4_q8), four tokens per pass, rather than the tiles; from two, as one token keeps
/// vnni_qdot.h's 256-bit kernel. Zen 5, one thread, streamed 1024x2048 matrices, µs, tiles vs
/// this: 2 tokens 92.1-98.7 vs 52.6-53.2, 3: 94.4-96.8 vs 66.6-68.5, 4: 101.1-107.7 vs 87.7-89.3,
/// 5: 117-118 vs 116-120, 6: 144 vs 134-137, 8: 143-152 vs 175-176; one token 50.2-50.4 (256
/// bits) vs 64.5-66.5.
#ifndef ZD_Q8_0_TOKENS
#define ZD_Q8_0_TOKENS 4
#endif
#define ZMM_Q6_K_TILE_TOKENS 2

void moek_vnni_dot4_q4_0(const void *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out) {
    if (vex()) dot4_q4_0_vex((const uint8_t *)w, stride, x, offsets, n, out);
    else dot4_q4_0_evex((const uint8_t *)w, stride, x, offsets, n, out);
}
void moek_vnni_dot8_q4_0(const void *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out) {
    if (moek_cpu_features() & MOEK_CPU_AVX512_VNNI) zd_dot8_q4_0((const uint8_t *)w, stride, x, offsets, n, out);
    else dot8_q4_0_vex((const uint8_t *)w, stride, x, offsets, n, out);
}
void moek_vnni_dot4_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out) {
    if (vex()) dot4_q8_0_vex((const uint8_t *)w, stride, x, n, out);
    else dot4_q8_0_evex((const uint8_t *)w, stride, x, n, out);
}
void moek_vnni_dot4_q4_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    if (moek_cpu_features() & MOEK_CPU_AVX512_VNNI) zd_dot4_q4_K((const uint8_t *)w, stride, x, n, out);
    else dot4_q4_K_vex((const uint8_t *)w, stride, x, n, out);
}
void moek_vnni_dot4_q6_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    if (moek_cpu_features() & MOEK_CPU_AVX512_VNNI) zd_dot4_q6_K((const uint8_t *)w, stride, x, n, out);
    else dot4_q6_K_vex((const uint8_t *)w, stride, x, n, out);
}
void moek_vnni_dot4_q5_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out) {
    if (moek_cpu_features() & MOEK_CPU_AVX512_VNNI) zd_dot4_q5_K((const uint8_t *)w, stride, x, n, out);
    else dot4_q5_K_vex((const uint8_t *)w, stride, x, n, out);
}
/// moek_vnni_gemm_q4_0 (q4 = 1) or moek_vnni_gemm_q8_0 (q4 = 0): the 512-bit tiles on the
/// sixteen-row groups when they take `tokens`, the 256-bit ones on the rest.
static void gemm_q4_0_q8_0(int q4, const uint8_t *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x,
                           const int32_t *offsets, size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride,
                           const int32_t *yIndex) {
    if (zmm(tokens)) {
        const size_t done = gemm_tiles16(q4, w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
        w += done * rowBytes;
        rows -= done;
        y += done;
        if (rows == 0) return;
    }
    if (q4 && vex()) gemm_q4_0_vex(w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
    else if (q4) gemm_q4_0_evex(w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
    else if (vex()) gemm_q8_0_vex(w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
    else gemm_q8_0_evex(w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
}
void moek_vnni_gemm_q4_0(const void *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x, const int32_t *offsets,
                         size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_q4_0_q8_0(1, (const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
}
void moek_vnni_gemm_q8_0(const void *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x, const int32_t *offsets,
                         size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    gemm_q4_0_q8_0(0, (const uint8_t *)w, rowBytes, rows, n, x, offsets, xStride, xIndex, tokens, y, yStride, yIndex);
}

size_t moek_vnni_gemm_q_small(int q4, const void *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x, const int32_t *offsets,
                              size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    if (!(moek_cpu_features() & MOEK_CPU_AVX512_VNNI) || tokens > (q4 ? ZD_Q4_0_TOKENS : ZD_Q8_0_TOKENS) || (!q4 && tokens < 2)) return 0;
    const size_t group = q4 ? 8 : 4;
    size_t r = 0;
    for (; r + group <= rows; r += group) {
        for (size_t t0 = 0; t0 < tokens; t0 += 4) {  // up to four tokens per pass, the rows in L1 for the next
            const int count = tokens - t0 < 4 ? (int)(tokens - t0) : 4;
            const moek_block_q8_0 *xs[4];
            const int32_t *os[4];
            float *outs[4];
            for (int j = 0; j < count; j++) {
                const size_t xi = token_row(xIndex, t0 + j);
                xs[j] = x + xi * xStride;
                os[j] = q4 ? offsets + xi * xStride : NULL;
                outs[j] = y + token_row(yIndex, t0 + j) * yStride + r;
            }
            const uint8_t *rw = (const uint8_t *)w + r * rowBytes;
            if (q4) zd_dotT8(count, rw, rowBytes, xs, os, n, outs);
            else zd_dotT4_q8(count, rw, rowBytes, xs, n, outs);
        }
    }
    return r;
}

size_t moek_vnni_gemm_k_small(int kind, const void *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x, size_t xStride,
                              const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    if (!(moek_cpu_features() & MOEK_CPU_AVX512_VNNI) || tokens > (size_t)(kind == 6 ? ZD_Q6_K_TOKENS : ZD_K_TOKENS)) return 0;
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        // Up to four tokens per pass; the rows stay in L1 for the next pass.
        for (size_t t0 = 0; t0 < tokens; t0 += 4) {
            const int count = tokens - t0 < 4 ? (int)(tokens - t0) : 4;
            const moek_block_q8_K *xs[4];
            float *outs[4];
            for (int j = 0; j < count; j++) {
                xs[j] = x + token_row(xIndex, t0 + j) * xStride;
                outs[j] = y + token_row(yIndex, t0 + j) * yStride + r;
            }
            zd_dotT(kind, count, (const uint8_t *)w + r * rowBytes, rowBytes, xs, n, outs);
        }
    }
    return r;
}

size_t moek_vnni_gemm_k_zmm(int kind, const void *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x, size_t xStride,
                            const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex) {
    if (!(moek_cpu_features() & MOEK_CPU_AVX512_VNNI) || tokens < (kind == 6 ? ZMM_Q6_K_TILE_TOKENS : ZMM_K_TILE_TOKENS)) return 0;
    if (kind == 6) return gemm_q6_K_tiles16((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
    if (kind == 5) return gemm_q5_K_tiles16((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
    return gemm_q4_K_tiles16((const uint8_t *)w, rowBytes, rows, n, x, xStride, xIndex, tokens, y, yStride, yIndex);
}
#endif
