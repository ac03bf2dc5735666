// MoEKernels: the hot loops of swift-moe, in C, with SIMD paths chosen at run time.
// Every SIMD kernel has a scalar twin (suffix _scalar) that the tests compare it against.
#ifndef MOE_KERNELS_H
#define MOE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// CPU features the kernels can use, detected once at run time.
typedef enum moek_cpu_feature {
    MOEK_CPU_AVX2_FMA = 1 << 0,  // x86-64 AVX2 + FMA + F16C
    MOEK_CPU_NEON = 1 << 1,      // arm64 Advanced SIMD
    // Not an instruction set but a preference: the CPU runs 256-bit AVX2 instructions as two
    // 128-bit halves (AMD's first Zen generation), so some kernels do better with 128-bit vectors.
    MOEK_CPU_AVX2_HALF_WIDTH = 1 << 2,
    MOEK_CPU_NEON_DOTPROD = 1 << 3,  // arm64 dot-product extension (SDOT), with MOEK_CPU_NEON
    MOEK_CPU_AVX_VNNI = 1 << 4,      // x86-64 AVX-VNNI (VEX vpdpbusd), with MOEK_CPU_AVX2_FMA
    // x86-64 AVX-512 VNNI with AVX-512 VL and BW, and the OS saving AVX-512 state (the kernels use
    // its EVEX vpdpbusd at 256 bits), with MOEK_CPU_AVX2_FMA.
    MOEK_CPU_AVX512_VNNI = 1 << 5,
} moek_cpu_feature;

/// The features detected on this machine (a bit set of moek_cpu_feature), masked by this
/// thread's moek_set_feature_mask. Thread-safe.
uint32_t moek_cpu_features(void);

/// Restricts the kernels called from this thread to the given features (0 forces the scalar
/// paths); for tests and benchmarks. Returns the thread's previous mask.
uint32_t moek_set_feature_mask(uint32_t mask);

/// Restricts the kernels of every thread to the given features (combined with each thread's
/// own mask), for A/B benchmarks in one process; set it while no kernel runs (between steps), as
/// a kernel already dispatched keeps its path. Returns the previous mask.
uint32_t moek_set_process_feature_mask(uint32_t mask);

/// Adds preference bits (only MOEK_CPU_AVX2_HALF_WIDTH; instruction sets cannot be forced) to
/// what this thread's kernels see, so tests can run either variant on any AVX2 machine. Returns
/// the thread's previous forced bits.
uint32_t moek_force_features(uint32_t bits);

/// A block of 32 activations quantized to 8 bits, as ggml's block_q8_0: x ~= d * qs[i].
typedef struct moek_block_q8_0 {
    uint16_t d;      // IEEE half
    int8_t qs[32];
} moek_block_q8_0;

/// Converts n IEEE halves to floats.
void moek_f16_to_f32(const uint16_t *src, float *dst, size_t n);

/// Quantizes n floats (n a multiple of 32) into n/32 Q8_0 blocks, as ggml's x86 kernel does for
/// activations: scale 127 / max|x|, round to nearest with ties to even.
void moek_quantize_row_q8_0(const float *x, moek_block_q8_0 *y, size_t n);
void moek_quantize_row_q8_0_scalar(const float *x, moek_block_q8_0 *y, size_t n);

/// Dot product of n elements (a multiple of 32): a Q8_0 weight row with Q8_0 activations.
float moek_vec_dot_q8_0_q8_0(const void *w, const moek_block_q8_0 *x, size_t n);
float moek_vec_dot_q8_0_q8_0_scalar(const void *w, const moek_block_q8_0 *x, size_t n);

/// Dot product of n elements (a multiple of 32): a Q4_0 weight row with Q8_0 activations.
float moek_vec_dot_q4_0_q8_0(const void *w, const moek_block_q8_0 *x, size_t n);
float moek_vec_dot_q4_0_q8_0_scalar(const void *w, const moek_block_q8_0 *x, size_t n);

/// A block of 256 activations quantized to 8 bits with block sums, as ggml's block_q8_K.
typedef struct moek_block_q8_K {
    float d;
    int8_t qs[256];
    int16_t bsums[16];  // sums of each 16 qs
} moek_block_q8_K;

/// Quantizes n floats (n a multiple of 256) into n/256 Q8_K blocks, rounding as ggml's reference.
void moek_quantize_row_q8_K(const float *x, moek_block_q8_K *y, size_t n);
void moek_quantize_row_q8_K_scalar(const float *x, moek_block_q8_K *y, size_t n);

/// Dot products of n elements (a multiple of 256): a K-quant weight row with Q8_K activations.
/// Each has an AVX2 path that returns the scalar twin's result bit for bit.
float moek_vec_dot_q4_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n);
float moek_vec_dot_q4_K_q8_K_scalar(const void *w, const moek_block_q8_K *x, size_t n);
float moek_vec_dot_q5_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n);
float moek_vec_dot_q5_K_q8_K_scalar(const void *w, const moek_block_q8_K *x, size_t n);
float moek_vec_dot_q6_K_q8_K(const void *w, const moek_block_q8_K *x, size_t n);
float moek_vec_dot_q6_K_q8_K_scalar(const void *w, const moek_block_q8_K *x, size_t n);
/// Four rows at once (row k at w + k * stride bytes) with the same Q8_K activations, out[0..3];
/// each equals the single-row (and scalar) result bit for bit.
void moek_vec_dot4_q4_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out);
/// moek_vec_dot4_q4_K_q8_K for Q5_K weights.
void moek_vec_dot4_q5_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out);
/// moek_vec_dot4_q4_K_q8_K for Q6_K weights.
void moek_vec_dot4_q6_K_q8_K(const void *w, size_t stride, const moek_block_q8_K *x, size_t n, float *out);

/// Rounds n floats to IEEE half precision (to nearest, ties to even).
void moek_f32_to_f16(const float *src, uint16_t *dst, size_t n);
void moek_f32_to_f16_scalar(const float *src, uint16_t *dst, size_t n);

/// y[i] += a * x[i] for n half-precision x (the value sum of attention).
void moek_vec_mad_f16(float *y, float a, const uint16_t *x, size_t n);
void moek_vec_mad_f16_scalar(float *y, float a, const uint16_t *x, size_t n);
/// moek_vec_mad_f16(y, w[p], x + p·stride, n) for p = 0, 1, ..., rows - 1 in turn, bit for bit:
/// one attention head's weighted sum of `rows` cached values.
void moek_vec_mad_f16_rows(float *y, const float *w, const uint16_t *x, size_t stride, size_t n, size_t rows);

/// Root-mean-square normalisation: y[i] = x[i] · scale (· weight[i] when weight is not NULL),
/// scale = 1 / sqrt(mean + eps), y may be x. The squares, rounded to float, are summed in double
/// as ggml does, but in eight lanes (element i in lane i mod 8, the lanes added in order), so the
/// sum is eight independent chains instead of one; it differs from a single chain in the last
/// bits of the double at most. One portable form, the same bits on every CPU.
void moek_rms_norm(const float *x, float *y, size_t n, const float *weight, float eps);

/// Attention probabilities in place: p[i] = exp(p[i] − max) / Σ exp(p[j] − max), each rounded
/// to half precision and back (the value sum multiplies F16 values by F16 probabilities, as ggml
/// does). exp is one polynomial (about one ulp) on every path and the sum runs in double in eight
/// lanes in a fixed order, so every path returns the scalar twin's bits.
void moek_softmax_f16_round(float *p, size_t n);
void moek_softmax_f16_round_scalar(float *p, size_t n);
/// x[i] = e^x[i] in place for x[i] <= 0 with the softmax's exp (0 below −87 and for NaN).
void moek_vec_exp_nonpositive(float *x, size_t n);
void moek_vec_exp_nonpositive_scalar(float *x, size_t n);
/// SwiGLU's elementwise product in place: g[i] = silu(g[i]) · u[i], silu(x) = x / (1 + e^-x),
/// with the softmax's exp (about one ulp) on e^-|x| so nothing overflows; within a few ulps of
/// libm's form, and every path returns the scalar twin's bits.
void moek_swiglu(float *g, const float *u, size_t n);
void moek_swiglu_scalar(float *g, const float *u, size_t n);

/// Dot product of n elements of two half-precision rows, accumulated in float.
float moek_vec_dot_f16(const uint16_t *a, const uint16_t *b, size_t n);
float moek_vec_dot_f16_scalar(const uint16_t *a, const uint16_t *b, size_t n);
/// out[p] = moek_vec_dot_f16(a + p·stride, x, n) · scale for p < rows, bit for bit: one
/// attention head's scores against `rows` cached keys `stride` halves apart.
void moek_vec_dot_f16_rows(const uint16_t *a, size_t stride, const uint16_t *x, size_t n, size_t rows, float scale, float *out);

/// The sum of n floats, read as fast as the memory system allows (for bandwidth measurement).
float moek_sum_f32(const float *x, size_t n);

/// Four dot products at once: rows w, w + stride, w + 2*stride, w + 3*stride (bytes) of a Q4_0 or
/// Q8_0 matrix with the same Q8_0 activations; results in out[0..3]. Sharing the activation loads
/// and keeping four accumulators makes this much faster per row than four single calls.
/// For Q4_0, `offsets` holds one int32 per activation block from moek_q8_0_offsets. Every SIMD
/// form (and the matrix-matrix tiles) returns exactly the scalar single-row result.
void moek_vec_dot4_q4_0_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out);

/// moek_vec_dot4_q4_0_q8_0 for eight rows (w, w + stride, ... w + 7·stride): out[0..7]. Where the
/// CPU has an eight-row kernel (vpdpbusd) it runs it, else two four-row calls; the same bits.
void moek_vec_dot8_q4_0_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, const int32_t *offsets, size_t n, float *out);

/// Per activation block, 8 * Σ qs (one int32 per block): the correction that lets Q4_0 kernels
/// multiply unsigned nibbles and subtract the offset of 8 once per block.
void moek_q8_0_offsets(const moek_block_q8_0 *x, size_t n, int32_t *offsets);
void moek_vec_dot4_q8_0_q8_0(const void *w, size_t stride, const moek_block_q8_0 *x, size_t n, float *out);

/// Matrix-matrix products for the prompt path: `rows` weight rows (row r at w + r * rowBytes, each
/// n inputs) times `tokens` activation rows. Token t reads activation row xIndex[t] (t when xIndex
/// is NULL), at x + xIndex[t] * xStride blocks (for Q4_0, its offsets at offsets + xIndex[t] *
/// xStride), and writes y[yIndex[t] * yStride + r] (yIndex NULL: t). Each output equals
/// the matching single-row dot product bit for bit. Every type with a four-row kernel runs it per
/// token on groups of four L1-hot rows (each row read from memory once for all tokens); on
/// full-width AVX2 CPUs Q4_0 and Q8_0 use tiles instead (four rows by up to eight tokens, nibbles
/// unpacked once per tile); F16/F32 loop row by row.
void moek_gemm_q4_0_q8_0(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
/// Q8_0 weights times Q8_0 activation rows (with their moek_q8_0_offsets); see moek_gemm_q4_0_q8_0.
void moek_gemm_q8_0_q8_0(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_0 *x, const int32_t *offsets, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
/// K-quant weights times Q8_K activation rows (xStride in Q8_K blocks); see moek_gemm_q4_0_q8_0.
void moek_gemm_q4_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
/// Q5_K weights times Q8_K activation rows; see moek_gemm_q4_K_q8_K.
void moek_gemm_q5_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
/// Q6_K weights times Q8_K activation rows; see moek_gemm_q4_K_q8_K.
void moek_gemm_q6_K_q8_K(const void *w, size_t rowBytes, size_t rows, size_t n,
                         const moek_block_q8_K *x, size_t xStride, const int32_t *xIndex,
                         size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
/// Half-precision weights (rows of n) times half-precision activation rows (xStride in halves).
void moek_gemm_f16(const uint16_t *w, size_t rows, size_t n, const uint16_t *x, size_t xStride, const int32_t *xIndex,
                   size_t tokens, float *y, size_t yStride, const int32_t *yIndex);
/// Float weights (rows of n) times float activation rows (xStride in floats).
void moek_gemm_f32(const float *w, size_t rows, size_t n, const float *x, size_t xStride, const int32_t *xIndex,
                   size_t tokens, float *y, size_t yStride, const int32_t *yIndex);

/// Dot product of n floats.
float moek_vec_dot_f32(const float *a, const float *b, size_t n);
float moek_vec_dot_f32_scalar(const float *a, const float *b, size_t n);

/// A CPU hint for spin-wait loops (PAUSE on x86-64, YIELD on arm64).
static inline void moek_cpu_relax(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Opens `path` read-only so that reads bypass the page cache: O_DIRECT on Linux (offsets,
/// lengths and buffers must then be aligned, see moek_uncached_needs_alignment), F_NOCACHE on
/// Darwin. Returns -1 (errno set) where the OS or file system refuses.
int moek_open_uncached(const char *path);
/// 1 when reads through moek_open_uncached's descriptor need 4096-byte alignment.
int moek_uncached_needs_alignment(void);
/// Tells the OS the cached pages of a file range are not needed again (POSIX_FADV_DONTNEED).
void moek_drop_cached_range(int fd, int64_t offset, int64_t length);
/// A monotonic clock in nanoseconds.
uint64_t moek_monotonic_ns(void);

#ifdef __cplusplus
}
#endif

#endif
