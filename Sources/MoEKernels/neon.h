// The NEON kernels of neon.c (arm64 only), called by the dispatchers; not part of the API.
#ifndef MOE_KERNELS_NEON_H
#define MOE_KERNELS_NEON_H

#include "MoEKernels.h"

#if defined(__aarch64__)
void moek_neon_quantize_row_q8_0(const float *x, moek_block_q8_0 *y, size_t n);
float moek_neon_vec_dot_q8_0_q8_0(const void *w, const moek_block_q8_0 *x, size_t n);
float moek_neon_vec_dot_q4_0_q8_0(const void *w, const moek_block_q8_0 *x, size_t n);
void moek_neon_vec_dot4_q8_0_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out);
void moek_neon_vec_dot4_q4_0_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out);
float moek_neon_vec_dot_q4_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n);
float moek_neon_vec_dot_q5_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n);
float moek_neon_vec_dot_q6_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n);
void moek_neon_vec_dot4_q4_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out);
void moek_neon_vec_dot4_q5_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out);
void moek_neon_vec_dot4_q6_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out);
float moek_neon_vec_dot_f32(const float *a, const float *b, size_t n);
float moek_neon_vec_dot_f16(const uint16_t *a, const uint16_t *b, size_t n);
void moek_neon_vec_mad_f16(float *y, float a, const uint16_t *x, size_t n);
void moek_neon_softmax_f16_round(float *p, size_t n);
void moek_neon_vec_exp_nonpositive(float *x, size_t n);
void moek_neon_swiglu(float *g, const float *u, size_t n);
#endif

#endif
