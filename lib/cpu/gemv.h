/* Products with very few rows of A against a large B (a Linear layer at batch 1), at
 * memory bandwidth: see gemv.c. */
#ifndef TG_CPU_GEMV_H
#define TG_CPU_GEMV_H

#include <stdbool.h>
#include <stdint.h>

/* C (M x N) = A (M x K) B (K x N) when M <= 4, B has contiguous columns (rsb == 1, with
 * A's rows contiguous) or contiguous rows (csb == 1), and B is large enough for the
 * packed GEMM's copy of it to cost: returns true when done, false (nothing written)
 * when the shape is not one of these or the system BLAS was asked for. */
bool tg_cpu_gemv_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa, const float *B,
                     int64_t rsb, int64_t csb, float *C, int64_t rsc, int64_t csc);

#endif
