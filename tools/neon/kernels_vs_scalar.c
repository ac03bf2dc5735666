// The arm64 NEON kernels against their scalar twins on random data: quantization and the quantized
// dot products (one row, four rows, matrix-matrix) must be equal bit for bit, F32/F16 dots within
// 1e-4 — with the dot-product extension and without. Built and run by tools/check-neon.
#include "MoEKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
static uint64_t s = 88172645463325252ull;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
static float nrm(void) { float u = (rnd() % 1000000) / 1e6f + 1e-7f, v = (rnd() % 1000000) / 1e6f; return sqrtf(-2 * logf(u)) * cosf(6.2831853f * v); }
static int fails = 0;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL " __VA_ARGS__); printf("\n"); } } while (0)
static uint16_t h(float f) { uint16_t o; moek_f32_to_f16_scalar(&f, &o, 1); return o; }
static void check_all(const char *variant) {
    printf("%s: features %u\n", variant, moek_cpu_features());
    size_t sizes[] = {32, 96, 256, 2048, 4096 + 256};
    for (int si = 0; si < 5; si++) {
        size_t n = sizes[si];
        float *x = malloc(4 * n); for (size_t i = 0; i < n; i++) x[i] = nrm() * (i % 7 == 0 ? 10 : 1);
        for (int i = 0; i < 6 && i < (int)n; i++) x[i] = (float[]){2.5f, -2.5f, 0.5f, 126.5f, 1.5f, -0.5f}[i];
        moek_block_q8_0 *qa = malloc(sizeof *qa * n / 32), *qb = malloc(sizeof *qb * n / 32);
        moek_quantize_row_q8_0(x, qa, n);
        moek_quantize_row_q8_0_scalar(x, qb, n);
        CHECK(memcmp(qa, qb, sizeof *qa * n / 32) == 0, "quantize q8_0 n=%zu", n);
        // random weight rows: Q8_0 (34 B/block), Q4_0 (18 B/block), with sane half scales
        uint8_t *w8 = malloc(34 * n / 32), *w4 = malloc(18 * n / 32);
        for (size_t b = 0; b < n / 32; b++) {
            for (int i = 0; i < 34; i++) w8[34 * b + i] = rnd();
            for (int i = 0; i < 18; i++) w4[18 * b + i] = rnd();
            uint16_t d = h(0.01f + (rnd() % 100) / 1000.0f); memcpy(w8 + 34 * b, &d, 2); memcpy(w4 + 18 * b, &d, 2);
        }
        float a = moek_vec_dot_q8_0_q8_0(w8, qa, n), b = moek_vec_dot_q8_0_q8_0_scalar(w8, qa, n);
        CHECK(a == b, "q8_0 dot n=%zu %g %g", n, a, b);
        a = moek_vec_dot_q4_0_q8_0(w4, qa, n); b = moek_vec_dot_q4_0_q8_0_scalar(w4, qa, n);
        CHECK(a == b, "q4_0 dot n=%zu %g %g", n, a, b);
        float f1 = moek_vec_dot_f32(x, x, n), f2 = moek_vec_dot_f32_scalar(x, x, n);
        CHECK(fabsf(f1 - f2) <= 1e-4f * fabsf(f2), "f32 dot n=%zu %g %g", n, f1, f2);
        uint16_t *hx = malloc(2 * n); moek_f32_to_f16_scalar(x, hx, n);
        f1 = moek_vec_dot_f16(hx, hx, n); f2 = moek_vec_dot_f16_scalar(hx, hx, n);
        CHECK(fabsf(f1 - f2) <= 1e-4f * fabsf(f2), "f16 dot n=%zu %g %g", n, f1, f2);
        float *y1 = malloc(4 * n), *y2 = malloc(4 * n);
        for (size_t i = 0; i < n; i++) y1[i] = y2[i] = nrm();
        moek_vec_mad_f16(y1, 0.37f, hx, n - 1); moek_vec_mad_f16_scalar(y2, 0.37f, hx, n - 1);
        CHECK(memcmp(y1, y2, 4 * n) == 0, "mad f16 n=%zu", n);
        // Attention's softmax and its exp, at lengths that leave tails (n - 3), bit for bit.
        for (size_t i = 0; i < n; i++) y1[i] = y2[i] = -fabsf(x[i]) * 9;
        y1[1] = y2[1] = -90; y1[2] = y2[2] = NAN;
        moek_vec_exp_nonpositive(y1, n - 3); moek_vec_exp_nonpositive_scalar(y2, n - 3);
        CHECK(memcmp(y1, y2, 4 * n) == 0, "exp n=%zu", n);
        for (size_t i = 0; i < n; i++) y1[i] = y2[i] = x[i] * 4;
        moek_softmax_f16_round(y1, n - 3); moek_softmax_f16_round_scalar(y2, n - 3);
        CHECK(memcmp(y1, y2, 4 * n) == 0, "softmax n=%zu", n);
        // SwiGLU's product over gate values of both signs, large ones, NaN.
        for (size_t i = 0; i < n; i++) y1[i] = y2[i] = x[i] * 30;
        y1[1] = y2[1] = -95; y1[2] = y2[2] = NAN; y1[3] = y2[3] = 95;
        moek_swiglu(y1, x, n - 3); moek_swiglu_scalar(y2, x, n - 3);
        CHECK(memcmp(y1, y2, 4 * n) == 0, "swiglu n=%zu", n);
        // Four-row kernels on four different rows, and the matrix-matrix products (which run them
        // once per token) on 5 rows x 3 tokens, against the scalar single-row dot products.
        float four[4]; int32_t *off = malloc(4 * n / 32); moek_q8_0_offsets(qa, n, off);
        const size_t r4 = 18 * n / 32, r8 = 34 * n / 32;
        uint8_t *w4r = malloc(r4 * 5), *w8r = malloc(r8 * 5);
        for (size_t i = 0; i < r4 * 5; i++) w4r[i] = rnd();
        for (size_t i = 0; i < r8 * 5; i++) w8r[i] = rnd();
        for (size_t blk = 0; blk < 5 * n / 32; blk++) {
            uint16_t d = h(0.01f + (rnd() % 100) / 1000.0f); memcpy(w4r + 18 * blk, &d, 2); memcpy(w8r + 34 * blk, &d, 2);
        }
        moek_vec_dot4_q4_0_q8_0(w4r, r4, qa, off, n, four);
        for (int r = 0; r < 4; r++) CHECK(four[r] == moek_vec_dot_q4_0_q8_0_scalar(w4r + r * r4, qa, n), "q4_0 dot4 n=%zu row %d", n, r);
        moek_vec_dot4_q8_0_q8_0(w8r, r8, qa, n, four);
        for (int r = 0; r < 4; r++) CHECK(four[r] == moek_vec_dot_q8_0_q8_0_scalar(w8r + r * r8, qa, n), "q8_0 dot4 n=%zu row %d", n, r);
        moek_block_q8_0 *q3 = malloc(sizeof *q3 * 3 * n / 32); int32_t *o3 = malloc(4 * 3 * n / 32);
        for (int t = 0; t < 3; t++) {
            for (size_t i = 0; i < n; i++) x[i] = nrm();
            moek_quantize_row_q8_0_scalar(x, q3 + t * n / 32, n);
            moek_q8_0_offsets(q3 + t * n / 32, n, o3 + t * n / 32);
        }
        float g[15], g8[15];
        moek_gemm_q4_0_q8_0(w4r, r4, 5, n, q3, o3, n / 32, NULL, 3, g, 5, NULL);
        moek_gemm_q8_0_q8_0(w8r, r8, 5, n, q3, o3, n / 32, NULL, 3, g8, 5, NULL);
        for (int t = 0; t < 3; t++) {
            for (int r = 0; r < 5; r++) {
                CHECK(g[t * 5 + r] == moek_vec_dot_q4_0_q8_0_scalar(w4r + r * r4, q3 + t * n / 32, n), "q4_0 gemm n=%zu token %d row %d", n, t, r);
                CHECK(g8[t * 5 + r] == moek_vec_dot_q8_0_q8_0_scalar(w8r + r * r8, q3 + t * n / 32, n), "q8_0 gemm n=%zu token %d row %d", n, t, r);
            }
        }
        free(q3); free(o3); free(w4r); free(w8r); free(off);
        if (n % 256 == 0) {
            moek_block_q8_K *k8 = malloc(sizeof *k8 * n / 256); moek_quantize_row_q8_K(x, k8, n);
            size_t bytes[3] = {144, 176, 210};
            for (int t = 0; t < 3; t++) {
                // Five rows: the first for the one-row kernel, four for the four-row kernel and
                // five (4 + 1 left over) for the matrix-matrix product.
                const size_t rowBytes = bytes[t] * n / 256;
                uint8_t *wk = malloc(rowBytes * 5);
                for (size_t i = 0; i < rowBytes * 5; i++) wk[i] = rnd();
                for (size_t bk = 0; bk < 5 * n / 256; bk++) {
                    uint16_t d = h(0.001f * (1 + rnd() % 50)), m = h(0.002f * (1 + rnd() % 50));
                    if (t < 2) { memcpy(wk + bytes[t] * bk, &d, 2); memcpy(wk + bytes[t] * bk + 2, &m, 2); }
                    else memcpy(wk + bytes[t] * bk + 208, &d, 2);
                }
                float p, q;
                if (t == 0) { p = moek_vec_dot_q4_K_q8_K(wk, k8, n); q = moek_vec_dot_q4_K_q8_K_scalar(wk, k8, n); }
                else if (t == 1) { p = moek_vec_dot_q5_K_q8_K(wk, k8, n); q = moek_vec_dot_q5_K_q8_K_scalar(wk, k8, n); }
                else { p = moek_vec_dot_q6_K_q8_K(wk, k8, n); q = moek_vec_dot_q6_K_q8_K_scalar(wk, k8, n); }
                CHECK(p == q, "k-quant %d n=%zu %g %g", t, n, p, q);
                float k4[4], kg[5];
                if (t == 0) moek_vec_dot4_q4_K_q8_K(wk, rowBytes, k8, n, k4);
                else if (t == 1) moek_vec_dot4_q5_K_q8_K(wk, rowBytes, k8, n, k4);
                else moek_vec_dot4_q6_K_q8_K(wk, rowBytes, k8, n, k4);
                if (t == 0) moek_gemm_q4_K_q8_K(wk, rowBytes, 5, n, k8, n / 256, NULL, 1, kg, 5, NULL);
                else if (t == 1) moek_gemm_q5_K_q8_K(wk, rowBytes, 5, n, k8, n / 256, NULL, 1, kg, 5, NULL);
                else moek_gemm_q6_K_q8_K(wk, rowBytes, 5, n, k8, n / 256, NULL, 1, kg, 5, NULL);
                for (int r = 0; r < 5; r++) {
                    const uint8_t *row = wk + r * rowBytes;
                    const float expected = t == 0 ? moek_vec_dot_q4_K_q8_K_scalar(row, k8, n)
                                         : t == 1 ? moek_vec_dot_q5_K_q8_K_scalar(row, k8, n) : moek_vec_dot_q6_K_q8_K_scalar(row, k8, n);
                    if (r < 4) CHECK(k4[r] == expected, "k-quant %d dot4 n=%zu row %d %g %g", t, n, r, k4[r], expected);
                    CHECK(kg[r] == expected, "k-quant %d gemm n=%zu row %d %g %g", t, n, r, kg[r], expected);
                }
                free(wk);
            }
            free(k8);
        }
    }
}

int main(void) {
    const uint32_t all = moek_cpu_features();
    // Every kernel as detected (with the dot-product extension where the CPU has it: qemu's
    // default CPU does), then with it masked off: the baseline ARMv8.0 copies.
    check_all("detected");
    if (all & MOEK_CPU_NEON_DOTPROD) {
        moek_set_feature_mask(~(uint32_t)MOEK_CPU_NEON_DOTPROD);
        check_all("without the dot-product extension");
        moek_set_feature_mask(~0u);
    } else {
        printf("no dot-product extension on this CPU: only the baseline kernels were checked\n");
    }
    printf(fails ? "%d failures\n" : "all NEON kernels equal their scalar twins\n", fails);
    return fails != 0;
}
