// x86-64 Q4_0 / Q8_0 / Q4_K / Q5_K kernels with 8-bit dot-product instructions (vnni.c); called by the
// dispatchers in quant.c and gemm.c when moek_has_vnni(). Not part of the API.
#ifndef MOEK_VNNI_H
#define MOEK_VNNI_H
#include "MoEKernels.h"

/// Whether features `f` select the vpdpbusd kernels: AVX-VNNI or AVX-512 VNNI, on a CPU that
/// runs 256-bit instructions whole.
static inline int moek_has_vnni(uint32_t f) {
    return (f & (MOEK_CPU_AVX_VNNI | MOEK_CPU_AVX512_VNNI)) && !(f & MOEK_CPU_AVX2_HALF_WIDTH);
}

#if defined(__x86_64__)
/// moek_vec_dot4_q4_0_q8_0 with vpdpbusd.
void moek_vnni_dot4_q4_0(const void *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out);
/// moek_vec_dot8_q4_0_q8_0 with vpdpbusd.
void moek_vnni_dot8_q4_0(const void *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out);
/// moek_vec_dot4_q8_0_q8_0 with vpdpbusd.
void moek_vnni_dot4_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out);
/// moek_vec_dot4_q4_K_q8_K with vpdpbusd / vpdpwssd.
void moek_vnni_dot4_q4_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out);
/// moek_vec_dot4_q5_K_q8_K with vpdpbusd / vpdpwssd.
void moek_vnni_dot4_q5_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out);
/// moek_vec_dot4_q6_K_q8_K with vpdpbusd / vpdpwssd.
void moek_vnni_dot4_q6_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out);
/// moek_gemm_q4_0_q8_0 with vpdpbusd tiles.
void moek_vnni_gemm_q4_0(const void *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x, const int32_t *offsets,
                         size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
/// moek_gemm_q8_0_q8_0 with vpdpbusd tiles.
void moek_vnni_gemm_q8_0(const void *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x, const int32_t *offsets,
                         size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
/// The 512-bit Q4_K, Q5_K or Q6_K (`kind` 4, 5, 6) tiles on the first rows of
/// moek_gemm_qN_K_q8_K's product where the CPU has AVX-512 VNNI and there are enough tokens:
/// returns how many rows they did (0 if none).
size_t moek_vnni_gemm_k_zmm(int kind, const void *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x, size_t xStride,
                            const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
/// K-quant matrix · few tokens (Q4_K `kind` 4, Q5_K 5, Q6_K 6) on CPUs with AVX-512 VNNI, up to
/// ZD_K_TOKENS / ZD_Q6_K_TOKENS (vnni.c): the 512-bit decode kernels, each four-row group
/// unpacked once for up to four tokens. Returns the rows done (a multiple of four; 0 where it does not apply).
size_t moek_vnni_gemm_k_small(int kind, const void *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_K *x, size_t xStride,
                              const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
/// moek_gemm_q4_0_q8_0 (q4 = 1) or moek_gemm_q8_0_q8_0 (q4 = 0) with a few tokens on CPUs with
/// AVX-512 VNNI (vnni.c: Q4_0 up to ZD_Q4_0_TOKENS, Q8_0 from 2 to ZD_Q8_0_TOKENS): the 512-bit
/// decode kernels, eight Q4_0 or four Q8_0 rows at a time, each block unpacked once for up to
/// four tokens. Returns the rows done (a multiple of eight / four; 0 where it does not apply).
size_t moek_vnni_gemm_q_small(int q4, const void *w, size_t rowBytes, size_t rows, size_t n, const moek_block_q8_0 *x, const int32_t *offsets,
                              size_t xStride, const int32_t *xIndex, size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
#endif
#endif
