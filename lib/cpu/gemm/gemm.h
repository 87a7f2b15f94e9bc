/* The CPU GEMM: packed panels, cache blocking, register-blocked SIMD micro-kernels
 * (AVX-512, AVX2+FMA, plain C), threaded over the pool. Every matrix is given by a
 * pointer and element strides (row stride, column stride), so transposed and strided
 * views need no copy before the call. */
#ifndef TG_CPU_GEMM_H
#define TG_CPU_GEMM_H

#include <stdint.h>

/* C[i,j] = beta * C[i,j] + sum_k A[i,k] * B[k,j] for i < M, j < N, k < K.
 * A[i,k] is at A[i*rsa + k*csa], and so on. beta is 0 (C is overwritten, may hold
 * garbage/NaN) or 1. K == 0 gives beta * C. */
void tg_cpu_gemm_f32(int64_t M, int64_t N, int64_t K,
                     const float *A, int64_t rsa, int64_t csa,
                     const float *B, int64_t rsb, int64_t csb,
                     float beta, float *C, int64_t rsc, int64_t csc);
void tg_cpu_gemm_f64(int64_t M, int64_t N, int64_t K,
                     const double *A, int64_t rsa, int64_t csa,
                     const double *B, int64_t rsb, int64_t csb,
                     double beta, double *C, int64_t rsc, int64_t csc);

/* A batch of GEMMs of one geometry: item b uses A + a_off[b], B + b_off[b], C + c_off[b]
 * (element offsets). Threads across items when each is small, within items when large. */
void tg_cpu_gemm_batched_f32(int64_t batch, int64_t M, int64_t N, int64_t K,
                             const float *A, const int64_t *a_off, int64_t rsa, int64_t csa,
                             const float *B, const int64_t *b_off, int64_t rsb, int64_t csb,
                             float beta, float *C, const int64_t *c_off, int64_t rsc, int64_t csc);
void tg_cpu_gemm_batched_f64(int64_t batch, int64_t M, int64_t N, int64_t K,
                             const double *A, const int64_t *a_off, int64_t rsa, int64_t csa,
                             const double *B, const int64_t *b_off, int64_t rsb, int64_t csb,
                             double beta, double *C, const int64_t *c_off, int64_t rsc, int64_t csc);

/* The same on the calling thread only (never the system BLAS): for kernels that
 * thread over their own work units and run one GEMM a unit (conv2d). */
void tg_cpu_gemm_serial_f32(int64_t M, int64_t N, int64_t K,
                            const float *A, int64_t rsa, int64_t csa,
                            const float *B, int64_t rsb, int64_t csb,
                            float beta, float *C, int64_t rsc, int64_t csc);
void tg_cpu_gemm_serial_f64(int64_t M, int64_t N, int64_t K,
                            const double *A, int64_t rsa, int64_t csa,
                            const double *B, int64_t rsb, int64_t csb,
                            double beta, double *C, int64_t rsc, int64_t csc);

/* The same for a B that may be multiplied again unchanged (a weight): key names its
 * contents, the same key promising the same values (the CPU backend uses its storage's
 * unique id and version). From the second call with a key, B's packed panels are kept
 * and reused while the key stays the same. A storage_id of 0 means no key. */
typedef struct {
    uint64_t storage_id;
    uint32_t version;
} tg_gemm_b_key;
void tg_cpu_gemm_keyed_f32(int64_t M, int64_t N, int64_t K,
                           const float *A, int64_t rsa, int64_t csa,
                           const float *B, int64_t rsb, int64_t csb,
                           float beta, float *C, int64_t rsc, int64_t csc, const tg_gemm_b_key *key);
void tg_cpu_gemm_keyed_f64(int64_t M, int64_t N, int64_t K,
                           const double *A, int64_t rsa, int64_t csa,
                           const double *B, int64_t rsb, int64_t csb,
                           double beta, double *C, int64_t rsc, int64_t csc, const tg_gemm_b_key *key);
/* How many calls reused packed panels, and dropping every entry not in use (tests). */
uint64_t tg_cpu_gemm_cache_hits(void);
void tg_cpu_gemm_cache_clear(void);

/* The plain triple loop, kept as the oracle for tests. */
void tg_cpu_gemm_ref_f32(int64_t M, int64_t N, int64_t K,
                         const float *A, int64_t rsa, int64_t csa,
                         const float *B, int64_t rsb, int64_t csb,
                         float beta, float *C, int64_t rsc, int64_t csc);
void tg_cpu_gemm_ref_f64(int64_t M, int64_t N, int64_t K,
                         const double *A, int64_t rsa, int64_t csa,
                         const double *B, int64_t rsb, int64_t csb,
                         double beta, double *C, int64_t rsc, int64_t csc);

/* Which micro-kernel runs: "avx512", "avx2", or "c". */
const char *tg_cpu_gemm_kernel_name(void);

#endif
