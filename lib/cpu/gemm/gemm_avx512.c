/* AVX-512 GEMM micro-kernels: f32 14 x 32 and f64 14 x 16 tiles (two zmm per row of C,
 * 28 accumulators), shorter ones for the last rows, the small-problem kernels, packing
 * with in-register transposes, and the blocking tuned for them on Zen 4 (32 KB L1,
 * 1 MB L2). Built with -mavx512f -mavx2 -mfma (meson.build). */
#include <immintrin.h>

#include "lib/cpu/gemm/gemm_kernels.h"

#define T float
#define V __m512
#define VL 16
#define VLOAD(p) _mm512_load_ps(p)
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VZERO() _mm512_setzero_ps()
#define VLOADN(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p)
#define VSTOREN(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define MR 14
#define NAME ukr_f32_14x32
#include "lib/cpu/gemm/gemm_ukr_tmpl.h"
#undef MR
#undef NAME
/* the last 1-4 and 5-8 rows of M, from 14-row panels */
#define ASTEP 14
#define MR 8
#define NAME ukr_f32_8x32
#include "lib/cpu/gemm/gemm_ukr_tmpl.h"
#undef MR
#undef NAME
#define MR 4
#define NAME ukr_f32_4x32
#include "lib/cpu/gemm/gemm_ukr_tmpl.h"
#undef MR
#undef NAME
#undef ASTEP
#define NAME small_f32
#include "lib/cpu/gemm/gemm_small_tmpl.h"
#undef NAME
#undef VLOADN
#undef VSTOREN
#undef T
#undef V
#undef VL
#undef VLOAD
#undef VLOADU
#undef VSTOREU
#undef VSET1
#undef VFMA
#undef VADD
#undef VZERO

#define T double
#define V __m512d
#define VL 8
#define VLOAD(p) _mm512_load_pd(p)
#define VLOADU(p) _mm512_loadu_pd(p)
#define VSTOREU(p, v) _mm512_storeu_pd(p, v)
#define VSET1(x) _mm512_set1_pd(x)
#define VFMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define VADD(a, b) _mm512_add_pd(a, b)
#define VZERO() _mm512_setzero_pd()
#define VLOADN(p, n) _mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1), p)
#define VSTOREN(p, v, n) _mm512_mask_storeu_pd(p, (__mmask8)((1u << (n)) - 1), v)
#define MR 14
#define NAME ukr_f64_14x16
#include "lib/cpu/gemm/gemm_ukr_tmpl.h"
#undef NAME
#undef MR
#define ASTEP 14
#define MR 8
#define NAME ukr_f64_8x16
#include "lib/cpu/gemm/gemm_ukr_tmpl.h"
#undef MR
#undef NAME
#define MR 4
#define NAME ukr_f64_4x16
#include "lib/cpu/gemm/gemm_ukr_tmpl.h"
#undef MR
#undef NAME
#undef ASTEP
#define NAME small_f64
#include "lib/cpu/gemm/gemm_small_tmpl.h"

/* ---------------------------------------------------------------- packing */

/* Transposes a block of up to 16 x 16 floats: row i < nrows of src (at src + i * ld,
 * ncols valid) becomes column i of dst; dst row c < ncols (at dst + c * dld) gets its
 * first dw values stored. Rows past nrows read as zero, so padding comes out zero. */
static inline __attribute__((always_inline)) void tr16_f32(const float *src, int64_t ld,
                                                           int nrows, int ncols, float *dst,
                                                           int64_t dld, int dw)
{
    __mmask16 lm = (__mmask16)((1u << ncols) - 1), sm = (__mmask16)((1u << dw) - 1);
    __m512 r[16], t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = i < nrows ? _mm512_maskz_loadu_ps(lm, src + i * ld) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) { /* 32-bit interleave of row pairs */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) { /* 64-bit: u[4j+q] lane L = column 4L+q of rows 4j.. */
        r[4 * j + 0] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * j + 1] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * j + 2] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * j + 3] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) { /* 4 x 4 transpose of 128-bit lanes */
        __m512 v0 = _mm512_shuffle_f32x4(r[q], r[4 + q], _MM_SHUFFLE(2, 0, 2, 0));
        __m512 v1 = _mm512_shuffle_f32x4(r[q], r[4 + q], _MM_SHUFFLE(3, 1, 3, 1));
        __m512 v2 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], _MM_SHUFFLE(2, 0, 2, 0));
        __m512 v3 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], _MM_SHUFFLE(3, 1, 3, 1));
        t[q] = _mm512_shuffle_f32x4(v0, v2, _MM_SHUFFLE(2, 0, 2, 0));
        t[4 + q] = _mm512_shuffle_f32x4(v1, v3, _MM_SHUFFLE(2, 0, 2, 0));
        t[8 + q] = _mm512_shuffle_f32x4(v0, v2, _MM_SHUFFLE(3, 1, 3, 1));
        t[12 + q] = _mm512_shuffle_f32x4(v1, v3, _MM_SHUFFLE(3, 1, 3, 1));
    }
#pragma GCC unroll 16
    for (int c = 0; c < 16; c++)
        if (c < ncols)
            _mm512_mask_storeu_ps(dst + c * dld, sm, t[c]);
}

/* The same for up to 8 x 8 doubles. */
static inline __attribute__((always_inline)) void tr8_f64(const double *src, int64_t ld,
                                                          int nrows, int ncols, double *dst,
                                                          int64_t dld, int dw)
{
    __mmask8 lm = (__mmask8)((1u << ncols) - 1), sm = (__mmask8)((1u << dw) - 1);
    __m512d r[8], t[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        r[i] = i < nrows ? _mm512_maskz_loadu_pd(lm, src + i * ld) : _mm512_setzero_pd();
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* t[2i+q] lane L = column 2L+q of rows 2i, 2i+1 */
        t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 2
    for (int q = 0; q < 2; q++) {
        __m512d v0 = _mm512_shuffle_f64x2(t[q], t[2 + q], _MM_SHUFFLE(2, 0, 2, 0));
        __m512d v1 = _mm512_shuffle_f64x2(t[q], t[2 + q], _MM_SHUFFLE(3, 1, 3, 1));
        __m512d v2 = _mm512_shuffle_f64x2(t[4 + q], t[6 + q], _MM_SHUFFLE(2, 0, 2, 0));
        __m512d v3 = _mm512_shuffle_f64x2(t[4 + q], t[6 + q], _MM_SHUFFLE(3, 1, 3, 1));
        r[q] = _mm512_shuffle_f64x2(v0, v2, _MM_SHUFFLE(2, 0, 2, 0));
        r[2 + q] = _mm512_shuffle_f64x2(v1, v3, _MM_SHUFFLE(2, 0, 2, 0));
        r[4 + q] = _mm512_shuffle_f64x2(v0, v2, _MM_SHUFFLE(3, 1, 3, 1));
        r[6 + q] = _mm512_shuffle_f64x2(v1, v3, _MM_SHUFFLE(3, 1, 3, 1));
    }
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++)
        if (c < ncols)
            _mm512_mask_storeu_pd(dst + c * dld, sm, r[c]);
}

static int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

/* A with unit column stride into 14-row micro-panels: 16 x 16 transposes. */
static void pack_a_rowmajor_f32(int64_t mc, int64_t kc, const float *A, int64_t rsa, float *dst)
{
    for (int64_t ir = 0; ir < mc; ir += 14, dst += 14 * kc) {
        int m = (int)imin(14, mc - ir);
        for (int64_t p = 0; p < kc; p += 16)
            tr16_f32(A + ir * rsa + p, rsa, m, (int)imin(16, kc - p), dst + p * 14, 14, 14);
    }
}

/* B with unit row stride into 32-column micro-panels: two 16-column halves. */
static void pack_b_colmajor_f32(int64_t kc, int64_t nc, const float *B, int64_t csb, float *dst)
{
    for (int64_t jr = 0; jr < nc; jr += 32, dst += 32 * kc)
        for (int h = 0; h < 2; h++) {
            int n = (int)imax(0, imin(16, nc - jr - 16 * h));
            const float *b = n ? B + (jr + 16 * h) * csb : B;
            for (int64_t p = 0; p < kc; p += 16)
                tr16_f32(b + p, csb, n, (int)imin(16, kc - p), dst + p * 32 + 16 * h, 32, 16);
        }
}

static void pack_a_rowmajor_f64(int64_t mc, int64_t kc, const double *A, int64_t rsa,
                                double *dst)
{
    for (int64_t ir = 0; ir < mc; ir += 14, dst += 14 * kc) {
        int m = (int)imin(14, mc - ir), m2 = m > 8 ? m - 8 : 0;
        const double *a = A + ir * rsa, *a2 = m2 ? a + 8 * rsa : a;
        for (int64_t p = 0; p < kc; p += 8) {
            int w = (int)imin(8, kc - p);
            tr8_f64(a + p, rsa, m < 8 ? m : 8, w, dst + p * 14, 14, 8);
            tr8_f64(a2 + p, rsa, m2, w, dst + p * 14 + 8, 14, 6);
        }
    }
}

static void pack_b_colmajor_f64(int64_t kc, int64_t nc, const double *B, int64_t csb,
                                double *dst)
{
    for (int64_t jr = 0; jr < nc; jr += 16, dst += 16 * kc)
        for (int h = 0; h < 2; h++) {
            int n = (int)imax(0, imin(8, nc - jr - 8 * h));
            const double *b = n ? B + (jr + 8 * h) * csb : B;
            for (int64_t p = 0; p < kc; p += 8)
                tr8_f64(b + p, csb, n, (int)imin(8, kc - p), dst + p * 16 + 8 * h, 16, 8);
        }
}

/* A with unit row stride: each k is 14 contiguous values of a column; columns are read
 * whole, one after another. */
static void pack_a_colmajor_f32(int64_t mc, int64_t kc, const float *A, int64_t csa, float *dst)
{
    for (int64_t p = 0; p < kc; p++) {
        const float *a = A + p * csa;
        float *d = dst + p * 14;
        for (int64_t ir = 0; ir < mc; ir += 14, d += 14 * kc) {
            __mmask16 m = (__mmask16)((1u << imin(14, mc - ir)) - 1);
            _mm512_mask_storeu_ps(d, 0x3fff, _mm512_maskz_loadu_ps(m, a + ir));
        }
    }
}

/* B with unit column stride: each k is 32 contiguous values of a row. Rows are read
 * whole, one after another (sequential reads; the writes go to nc/32 panels). */
static void pack_b_rowmajor_f32(int64_t kc, int64_t nc, const float *B, int64_t rsb, float *dst)
{
    int64_t full = nc / 32 * 32, n = nc - full;
    __mmask16 m0 = (__mmask16)((1u << imin(16, n)) - 1);
    __mmask16 m1 = (__mmask16)((1u << imax(0, n - 16)) - 1);
    for (int64_t p = 0; p < kc; p++) {
        const float *b = B + p * rsb;
        float *d = dst + p * 32;
        for (int64_t jr = 0; jr < full; jr += 32, d += 32 * kc) {
            _mm512_store_ps(d, _mm512_loadu_ps(b + jr));
            _mm512_store_ps(d + 16, _mm512_loadu_ps(b + jr + 16));
        }
        if (n) {
            _mm512_store_ps(d, _mm512_maskz_loadu_ps(m0, b + full));
            _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(m1, b + full + 16));
        }
    }
}

static void pack_a_colmajor_f64(int64_t mc, int64_t kc, const double *A, int64_t csa,
                                double *dst)
{
    for (int64_t p = 0; p < kc; p++) {
        const double *a = A + p * csa;
        double *d = dst + p * 14;
        for (int64_t ir = 0; ir < mc; ir += 14, d += 14 * kc) {
            int64_t m = imin(14, mc - ir);
            __mmask8 m0 = (__mmask8)((1u << imin(8, m)) - 1);
            __mmask8 m1 = (__mmask8)((1u << imax(0, m - 8)) - 1);
            _mm512_storeu_pd(d, _mm512_maskz_loadu_pd(m0, a + ir));
            _mm512_mask_storeu_pd(d + 8, 0x3f, _mm512_maskz_loadu_pd(m1, a + ir + 8));
        }
    }
}

static void pack_b_rowmajor_f64(int64_t kc, int64_t nc, const double *B, int64_t rsb,
                                double *dst)
{
    for (int64_t p = 0; p < kc; p++) {
        const double *b = B + p * rsb;
        double *d = dst + p * 16;
        for (int64_t jr = 0; jr < nc; jr += 16, d += 16 * kc) {
            int64_t n = imin(16, nc - jr);
            __mmask8 m0 = (__mmask8)((1u << imin(8, n)) - 1);
            __mmask8 m1 = (__mmask8)((1u << imax(0, n - 8)) - 1);
            _mm512_store_pd(d, _mm512_maskz_loadu_pd(m0, b + jr));
            _mm512_store_pd(d + 8, _mm512_maskz_loadu_pd(m1, b + jr + 8));
        }
    }
}

void tg_gemm_fill_avx512(tg_gemm_kernels *k)
{
    k->name = "avx512";
    k->f32.mr = 14;
    k->f32.nr = 32;
    k->f32.kc = 512;
    k->f32.mc = 14 * 24;
    k->f32.nc = 2048;
    k->f32.ukr = ukr_f32_14x32;
    k->f32.ukr4 = ukr_f32_4x32;
    k->f32.ukr8 = ukr_f32_8x32;
    k->f32.small = small_f32;
    k->f32.pack_a_rowmajor = pack_a_rowmajor_f32;
    k->f32.pack_b_colmajor = pack_b_colmajor_f32;
    k->f32.pack_a_colmajor = pack_a_colmajor_f32;
    k->f32.pack_b_rowmajor = pack_b_rowmajor_f32;
    k->f64.mr = 14;
    k->f64.nr = 16;
    k->f64.kc = 256;
    k->f64.mc = 14 * 24;
    k->f64.nc = 1024;
    k->f64.ukr = ukr_f64_14x16;
    k->f64.ukr4 = ukr_f64_4x16;
    k->f64.ukr8 = ukr_f64_8x16;
    k->f64.small = small_f64;
    k->f64.pack_a_rowmajor = pack_a_rowmajor_f64;
    k->f64.pack_b_colmajor = pack_b_colmajor_f64;
    k->f64.pack_a_colmajor = pack_a_colmajor_f64;
    k->f64.pack_b_rowmajor = pack_b_rowmajor_f64;
}
