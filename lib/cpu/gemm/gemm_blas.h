/* The optional system BLAS (-Dblas): our kernels stay the default; TG_GEMM=blas in the
 * environment sends every GEMM whose layout BLAS can express to cblas_?gemm. */
#ifndef TG_CPU_GEMM_BLAS_H
#define TG_CPU_GEMM_BLAS_H

#include <stdbool.h>
#include <stdint.h>

#ifdef TG_HAVE_BLAS
/* True when this build has a BLAS and TG_GEMM=blas asked for it (read once). */
bool tg_cpu_blas_active(void);
/* Runs the GEMM through BLAS and returns true, or returns false (nothing done) when a
 * matrix has no unit stride on either axis (expanded or doubly strided views). */
bool tg_cpu_blas_gemm_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa,
                          const float *B, int64_t rsb, int64_t csb, float beta, float *C, int64_t rsc, int64_t csc);
bool tg_cpu_blas_gemm_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t rsa, int64_t csa,
                          const double *B, int64_t rsb, int64_t csb, double beta, double *C, int64_t rsc,
                          int64_t csc);
#else
static inline bool tg_cpu_blas_active(void) { return false; }
#define tg_cpu_blas_gemm_f32(...) false
#define tg_cpu_blas_gemm_f64(...) false
#endif

#endif
