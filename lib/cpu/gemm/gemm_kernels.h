/* Internal to the GEMM: the register-blocked micro-kernels each ISA file provides, and
 * the cache blocking that goes with them. A micro-kernel computes one MR x NR tile of C
 * from a packed A micro-panel (k columns of MR values, k-major) and a packed B
 * micro-panel (k rows of NR values); NR is the vector direction, so C's rows must be
 * contiguous (the driver transposes the problem or goes through a tile buffer). */
#ifndef TG_CPU_GEMM_KERNELS_H
#define TG_CPU_GEMM_KERNELS_H

#include <stdint.h>

/* c[i*rsc + j] = (accumulate ? c[i*rsc + j] : 0) + sum_p a[p*MR + i] * b[p*NR + j]
 * for i < MR, j < NR. accumulate == 0 never reads c (it may hold NaN). a and b are
 * 64-byte aligned; c need not be. */
typedef void (*tg_gemm_ukr_f32)(int64_t k, const float *a, const float *b, float *c,
                                int64_t rsc, int accumulate);
typedef void (*tg_gemm_ukr_f64)(int64_t k, const double *a, const double *b, double *c,
                                int64_t rsc, int accumulate);

/* The unpacked path for small problems: C (M x N) (=|+=) A (M x K, any strides) times
 * B (K x N); rows of B and C contiguous (column stride 1). Optional (NULL). */
typedef void (*tg_gemm_small_f32)(int64_t M, int64_t N, int64_t K, const float *A,
                                  int64_t rsa, int64_t csa, const float *B, int64_t rsb,
                                  float *C, int64_t rsc, int accumulate);
typedef void (*tg_gemm_small_f64)(int64_t M, int64_t N, int64_t K, const double *A,
                                  int64_t rsa, int64_t csa, const double *B, int64_t rsb,
                                  double *C, int64_t rsc, int accumulate);

/* Optional packers for A and B with a unit stride, in the layouts of the driver's
 * pack_a/pack_b (gemm_driver_tmpl.h): A (mc x kc) into mr-row micro-panels, B (kc x nc)
 * into nr-column micro-panels, zero-padded. ld is the stride that is not 1: rsa for a
 * row-major A (csa == 1), csa for a column-major A (rsa == 1), and likewise for B. */
typedef void (*tg_gemm_pack_f32)(int64_t rows, int64_t cols, const float *X, int64_t ld,
                                 float *dst);
typedef void (*tg_gemm_pack_f64)(int64_t rows, int64_t cols, const double *X, int64_t ld,
                                 double *dst);

/* One type's kernel and blocking: kc rows of K per packed block (the A micro-panel,
 * mr x kc, stays in L1), nc columns of B per packed block (kc x nc stays in L2), mc rows
 * of A packed at a time. mc is a multiple of mr and nc of nr. */
#define TG_GEMM_KERNEL_STRUCT(T, S)                                                     \
    struct {                                                                            \
        int mr, nr, kc, mc, nc;                                                         \
        tg_gemm_ukr_##S ukr;                                                            \
        /* optional: the first 4 / 8 rows of an mr-row panel, for the last rows of M */ \
        tg_gemm_ukr_##S ukr4, ukr8;                                                     \
        tg_gemm_small_##S small;                                                        \
        tg_gemm_pack_##S pack_a_rowmajor; /* optional: A with csa == 1 */               \
        tg_gemm_pack_##S pack_a_colmajor; /* optional: A with rsa == 1 */               \
        tg_gemm_pack_##S pack_b_rowmajor; /* optional: B with csb == 1 */               \
        tg_gemm_pack_##S pack_b_colmajor; /* optional: B with rsb == 1 */               \
    }

typedef struct {
    const char *name; /* "avx512", "avx2", "c" */
    TG_GEMM_KERNEL_STRUCT(float, f32) f32;
    TG_GEMM_KERNEL_STRUCT(double, f64) f64;
} tg_gemm_kernels;

/* The largest mr and nr any kernel uses (the driver's tile buffer). */
#define TG_GEMM_MAX_MR 16
#define TG_GEMM_MAX_NR 64

/* The kernel set in use (conv2d drives the micro-kernels with its own packing). */
const tg_gemm_kernels *tg_gemm_kernels_current(void);

/* For tests and benchmarks: use the named kernel set ("avx512", "avx2", "c") from now
 * on. Returns 0, or -1 when this CPU or build lacks it. Not safe while a GEMM runs. */
int tg_gemm_select(const char *name);

/* Fill k with the ISA's kernels (gemm_avx512.c, gemm_avx2.c). */
void tg_gemm_fill_avx512(tg_gemm_kernels *k);
void tg_gemm_fill_avx2(tg_gemm_kernels *k);

#endif
