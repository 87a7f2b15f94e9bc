/* The plain triple-loop GEMM: the oracle tests/test_gemm.c compares the fast driver
 * with. Accumulates in the element type, k innermost, so its rounding is that of a
 * textbook dot product. */
#include "lib/cpu/gemm/gemm.h"

#define TG_GEMM_REF(T, NAME)                                                             \
    void NAME(int64_t M, int64_t N, int64_t K, const T *A, int64_t rsa, int64_t csa,     \
              const T *B, int64_t rsb, int64_t csb, T beta, T *C, int64_t rsc,           \
              int64_t csc)                                                               \
    {                                                                                    \
        for (int64_t i = 0; i < M; i++)                                                  \
            for (int64_t j = 0; j < N; j++) {                                            \
                T s = 0;                                                                 \
                for (int64_t k = 0; k < K; k++)                                          \
                    s += A[i * rsa + k * csa] * B[k * rsb + j * csb];                    \
                T *c = &C[i * rsc + j * csc];                                            \
                *c = beta != 0 ? beta * *c + s : s; /* beta 0: C may hold NaN */         \
            }                                                                            \
    }

TG_GEMM_REF(float, tg_cpu_gemm_ref_f32)
TG_GEMM_REF(double, tg_cpu_gemm_ref_f64)
