/* GEMM through the system CBLAS, for -Dblas builds. Strided views map onto BLAS's
 * (transpose, leading dimension) pairs; a column-major C is handled by computing
 * C^T = B^T A^T in row-major order. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpu/gemm/gemm_blas.h"

bool tg_cpu_blas_active(void) {
    static int active = -1;
    if (active < 0) {
        const char *e = getenv("TG_GEMM");
        active = e && strcmp(e, "blas") == 0;
    }
    return active;
}

/* A (rows x cols) with strides (rs, cs) as a row-major BLAS operand: a transpose flag
 * and a leading dimension, or false when neither stride is 1. */
static bool operand(int64_t rows, int64_t cols, int64_t rs, int64_t cs, CBLAS_TRANSPOSE *t, int64_t *ld) {
    if (cs == 1 && rs >= (cols > 1 ? cols : 1)) {
        *t = CblasNoTrans, *ld = rs;
        return true;
    }
    if (rs == 1 && cs >= (rows > 1 ? rows : 1)) {
        *t = CblasTrans, *ld = cs;
        return true;
    }
    if (rows == 1 && cs == 1) { /* a single row: any row stride will do */
        *t = CblasNoTrans, *ld = cols > 1 ? cols : 1;
        return true;
    }
    return false;
}

#define BLAS_GEMM(NAME, T, CALL)                                                                           \
    bool NAME(int64_t M, int64_t N, int64_t K, const T *A, int64_t rsa, int64_t csa, const T *B, int64_t rsb, \
              int64_t csb, T beta, T *C, int64_t rsc, int64_t csc) {                                       \
        if (csc != 1 && rsc == 1) /* column-major C: C^T = B^T A^T */                                      \
            return NAME(N, M, K, B, csb, rsb, A, csa, rsa, beta, C, csc, rsc);                             \
        CBLAS_TRANSPOSE ta, tb;                                                                            \
        int64_t lda, ldb;                                                                                  \
        if (csc != 1 || rsc < (N > 1 ? N : 1) || !operand(M, K, rsa, csa, &ta, &lda) ||                    \
            !operand(K, N, rsb, csb, &tb, &ldb) || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)        \
            return false;                                                                                  \
        CALL(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1, A, (int)lda, B, (int)ldb, beta, C, (int)rsc); \
        return true;                                                                                       \
    }

BLAS_GEMM(tg_cpu_blas_gemm_f32, float, cblas_sgemm)
BLAS_GEMM(tg_cpu_blas_gemm_f64, double, cblas_dgemm)
