/* Contiguous SIMD kernels for the hot elementwise and reduction loops. Each has a
 * plain-C twin (simd/simd_c.c); tg_simd_init() fills the table with the C versions, then
 * overrides entries by CPU flags (AVX2+FMA, AVX-512F). tests/test_simd.c compares every
 * entry with its twin on random inputs of awkward sizes. */
#ifndef TG_CPU_SIMD_H
#define TG_CPU_SIMD_H

#include <stdint.h>

#include "lib/graph/backend.h"

/* out[i] = op(x[i]) with scalar parameters p0, p1 (see tg_unary_op). out may equal x. */
typedef void (*tg_unary_f32_fn)(int64_t n, const float *x, float *out, float p0, float p1);
typedef void (*tg_unary_f64_fn)(int64_t n, const double *x, double *out, double p0, double p1);
/* out[i] = a[i*sa] op b[i*sb], sa and sb each 0 or 1 (scalar broadcast). out may alias a
 * or b at the same positions. Arithmetic ops only (TG_BIN_ADD .. TG_BIN_MINIMUM). */
typedef void (*tg_binary_f32_fn)(int64_t n, const float *a, int64_t sa, const float *b,
                                 int64_t sb, float *out);
typedef void (*tg_binary_f64_fn)(int64_t n, const double *a, int64_t sa, const double *b,
                                 int64_t sb, double *out);

typedef struct {
    const char *name; /* "avx512", "avx2", "c": the best level in use */
    tg_unary_f32_fn unary_f32[TG_UN_COUNT];   /* NULL where no kernel: caller falls back */
    tg_unary_f64_fn unary_f64[TG_UN_COUNT];
    tg_binary_f32_fn binary_f32[TG_BIN_FIRST_CMP];
    tg_binary_f64_fn binary_f64[TG_BIN_FIRST_CMP];
    double (*sum_f32)(int64_t n, const float *x);   /* accumulates in double-safe order */
    double (*sum_f64)(int64_t n, const double *x);
    float (*max_f32)(int64_t n, const float *x);    /* n >= 1; NaN propagates */
    float (*min_f32)(int64_t n, const float *x);
    double (*max_f64)(int64_t n, const double *x);
    double (*min_f64)(int64_t n, const double *x);
    /* y[i] += alpha * x[i] */
    void (*axpy_f32)(int64_t n, float alpha, const float *x, float *y);
    void (*axpy_f64)(int64_t n, double alpha, const double *x, double *y);
    /* 2x2 stride-2 max pooling of one plane whose windows are all whole (H >= 2*OH, W >=
     * 2*OW, H*W < 2^31): y (OH x OW) and, unless idx is NULL, the flat index in the plane
     * of each maximum; ties keep the first tap in window order, NaN propagates with the
     * last NaN's index. NULL where the level has none (pool.c's plane loop runs);
     * tests/test_pool.c checks it against naive loops. */
    void (*max_pool_2x2_f32)(int64_t OH, int64_t OW, const float *x, int64_t W, float *y, int64_t *idx);
    /* Output rows [r0, r1) (row r: plane r / OH, output row r % OH) of a max or average
     * pool over dense f32 NCHW x, g not adaptive, any window, padding, dilation and
     * ceil_mode, stride 1 or 2 along W, indices (idx, may be NULL) fitting 32 bits
     * (pool.c checks). pool.c's semantics: ties, NaN, the index of an empty window, the
     * order of an average's sums and its divisor. NULL where the level has none. */
    void (*pool_rows_f32)(tg_pool_kind kind, const tg_pool2d_geom *g, const float *x, float *y, int64_t *idx,
                          int64_t r0, int64_t r1);
} tg_simd_table;

/* The table in use (initialised on first call, thread-safe). */
const tg_simd_table *tg_simd(void);
/* The tables per level, for the checker: level 0 = C, 1 = AVX2+FMA, 2 = AVX-512; NULL if
 * this CPU (or this build) lacks it. */
const tg_simd_table *tg_simd_level(int level);

/* Builders of each level's table (simd_c.c, simd_avx2.c, simd_avx512.c). */
void tg_simd_fill_c(tg_simd_table *t);
void tg_simd_fill_avx2(tg_simd_table *t);
void tg_simd_fill_avx512(tg_simd_table *t);

/* The AVX-512 pooling kernels (pool_avx512.c). */
void tg_max_pool_2x2_avx512_f32(int64_t OH, int64_t OW, const float *x, int64_t W, float *y, int64_t *idx);
void tg_pool_rows_avx512_f32(tg_pool_kind kind, const tg_pool2d_geom *g, const float *x, float *y, int64_t *idx,
                             int64_t r0, int64_t r1);

#endif
