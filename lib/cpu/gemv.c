/* Matrix products with very few rows of A (M <= 4) against a large B: a Linear layer at
 * batch 1. The packed GEMM copies all of B into panels to use each value M times, reading
 * B twice and writing it once (VGG-16's first classifier layer has a 411 MB weight);
 * here B is streamed once, split between threads by columns:
 *   - B with contiguous columns (y = x W^T, W (out, in) row-major): each column of B is M
 *     dot products;
 *   - B with contiguous rows (dx = dy W in the backward, or x W with W (in, out)): C's
 *     rows are sums of B's rows scaled by A, block by block of columns held in L1.
 * Each output is one thread's fixed-order sum, so the result never depends on the
 * thread count. */
#include "lib/cpu/gemv.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <string.h>

#include "lib/cpu/clones.h"
#include "lib/cpu/gemm/gemm_blas.h"
#include "lib/cpu/gemm/gemm_kernels.h"
#include "lib/cpu/threadpool.h"

#define TG_GEMV_MAX_M 4
/* Lanes of each running sum: two AVX-512 vectors, so that the adds of one row form two
 * independent chains (the compiler vectorises fixed lanes without reassociating). */
#define TG_GEMV_LANES 32
/* Below this many elements of B the packed GEMM's copy is cheap (it stays in L2). */
#define TG_GEMV_MIN_B 65536
/* Dot products this short would spend more on their final sums than on the products. */
#define TG_GEMV_MIN_K 128
/* Bytes of B worth handing to another thread (~5 us of streaming on one core). */
#define TG_GEMV_GRAIN_BYTES (64 * 1024)

/* Its loops (TG_CPU_CLONES) have clones for AVX-512 and AVX2 (lib/cpu/clones.h), with the
 * same bits from each: every lane sums the same terms in the same order whatever the
 * vector width. */

typedef struct {
    int64_t M, K;
    const float *A, *B;
    int64_t rsa, csa, rsb, csb;
    float *C;
    int64_t rsc, csc;
    bool avx512; /* the GEMM's kernel set is AVX-512's (tg_gemm_select can pick another) */
} tg_gemv_job;

/* ---------------------------------------------------------------- B with contiguous columns */

/* C[i][j] = A[i] . B[:, j] for M rows (a constant in each caller, so that the sums stay
 * in registers) and columns [j0, j1). */
static inline __attribute__((always_inline)) void tg_gemv_dots(const tg_gemv_job *g, const int M, int64_t j0,
                                                               int64_t j1)
{
    int64_t K = g->K, kv = K / TG_GEMV_LANES * TG_GEMV_LANES;
    for (int64_t j = j0; j < j1; j++) {
        const float *b = g->B + j * g->csb;
        float acc[TG_GEMV_MAX_M][TG_GEMV_LANES] = { { 0 } };
        for (int64_t k = 0; k < kv; k += TG_GEMV_LANES)
            for (int i = 0; i < M; i++) {
                const float *a = g->A + i * g->rsa + k;
                for (int l = 0; l < TG_GEMV_LANES; l++)
                    acc[i][l] += a[l] * b[k + l];
            }
        for (int i = 0; i < M; i++) {
            const float *a = g->A + i * g->rsa;
            float s = 0;
            for (int l = 0; l < TG_GEMV_LANES; l++)
                s += acc[i][l];
            for (int64_t k = kv; k < K; k++)
                s += a[k] * b[k];
            g->C[i * g->rsc + j * g->csc] = s;
        }
    }
}

TG_CPU_CLONES static void tg_gemv_cols_c(const tg_gemv_job *g, int64_t j0, int64_t j1)
{
    switch (g->M) {
    case 1: tg_gemv_dots(g, 1, j0, j1); break;
    case 2: tg_gemv_dots(g, 2, j0, j1); break;
    case 3: tg_gemv_dots(g, 3, j0, j1); break;
    default: tg_gemv_dots(g, 4, j0, j1); break;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* AVX-512: CB columns at a time share each load of A's rows, and M x CB independent FMA
 * chains cover the FMA latency; the K tail is a masked load. One core streams B at about
 * the rate of a plain sum (the C lanes above reach half of it). */
static inline __attribute__((always_inline, target("avx512f"))) void
tg_gemv_block_avx512(const tg_gemv_job *g, const int M, const int CB, int64_t j)
{
    int64_t K = g->K, kv = K / 16 * 16;
    __m512 acc[TG_GEMV_MAX_M][4];
    for (int i = 0; i < M; i++)
        for (int c = 0; c < CB; c++)
            acc[i][c] = _mm512_setzero_ps();
    const float *b = g->B + j * g->csb;
    for (int64_t k = 0; k <= kv; k += 16) {
        __mmask16 m = k < kv ? (__mmask16)0xffff : (__mmask16)((1u << (K - kv)) - 1);
        if (!m)
            break;
        __m512 bv[4];
        for (int c = 0; c < CB; c++)
            bv[c] = _mm512_maskz_loadu_ps(m, b + c * g->csb + k);
        for (int i = 0; i < M; i++) {
            __m512 av = _mm512_maskz_loadu_ps(m, g->A + i * g->rsa + k);
            for (int c = 0; c < CB; c++)
                acc[i][c] = _mm512_fmadd_ps(av, bv[c], acc[i][c]);
        }
    }
    for (int i = 0; i < M; i++)
        for (int c = 0; c < CB; c++)
            g->C[i * g->rsc + (j + c) * g->csc] = _mm512_reduce_add_ps(acc[i][c]);
}

static inline __attribute__((always_inline, target("avx512f"))) void
tg_gemv_span_avx512(const tg_gemv_job *g, const int M, int64_t j0, int64_t j1)
{
    const int CB = M <= 2 ? 4 : 2; /* M * CB accumulators and CB loads of B in registers */
    int64_t j = j0;
    for (; j + CB <= j1; j += CB)
        tg_gemv_block_avx512(g, M, CB, j);
    for (; j < j1; j++)
        tg_gemv_block_avx512(g, M, 1, j);
}

__attribute__((target("avx512f"))) static void tg_gemv_cols_avx512(const tg_gemv_job *g, int64_t j0, int64_t j1)
{
    switch (g->M) {
    case 1: tg_gemv_span_avx512(g, 1, j0, j1); break;
    case 2: tg_gemv_span_avx512(g, 2, j0, j1); break;
    case 3: tg_gemv_span_avx512(g, 3, j0, j1); break;
    default: tg_gemv_span_avx512(g, 4, j0, j1); break;
    }
}

#endif

static void tg_gemv_cols(void *ctx, int64_t j0, int64_t j1)
{
    const tg_gemv_job *g = ctx;
#if defined(__x86_64__) && defined(__GNUC__)
    if (g->avx512) {
        tg_gemv_cols_avx512(g, j0, j1);
        return;
    }
#endif
    tg_gemv_cols_c(g, j0, j1);
}

/* ---------------------------------------------------------------- B with contiguous rows */

/* Columns of C a block holds while B's rows stream past: M rows of it stay in L1. */
#define TG_GEMV_ROW_BLOCK 1024

/* C[i][j] = sum_k A[i][k] B[k][j] for columns [j0, j1), a block of columns at a time:
 * the block of C's rows is zeroed, then each row of B adds into it in k order. */
TG_CPU_CLONES static void tg_gemv_row_sums(void *ctx, int64_t j0, int64_t j1)
{
    const tg_gemv_job *g = ctx;
    float acc[TG_GEMV_MAX_M][TG_GEMV_ROW_BLOCK];
    for (int64_t jb = j0; jb < j1; jb += TG_GEMV_ROW_BLOCK) {
        int64_t n = j1 - jb < TG_GEMV_ROW_BLOCK ? j1 - jb : TG_GEMV_ROW_BLOCK;
        for (int64_t i = 0; i < g->M; i++)
            for (int64_t j = 0; j < n; j++)
                acc[i][j] = 0;
        int64_t k = 0;
        for (; k + 4 <= g->K; k += 4) { /* four rows of B in flight; the sums' order is k's */
            const float *b0 = g->B + k * g->rsb + jb, *b1 = b0 + g->rsb, *b2 = b1 + g->rsb, *b3 = b2 + g->rsb;
            for (int64_t i = 0; i < g->M; i++) {
                const float *a = g->A + i * g->rsa + k * g->csa;
                float a0 = a[0], a1 = a[g->csa], a2 = a[2 * g->csa], a3 = a[3 * g->csa], *c = acc[i];
                for (int64_t j = 0; j < n; j++)
                    c[j] = c[j] + a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
            }
        }
        for (; k < g->K; k++) {
            const float *b = g->B + k * g->rsb + jb;
            for (int64_t i = 0; i < g->M; i++) {
                float a = g->A[i * g->rsa + k * g->csa], *c = acc[i];
                for (int64_t j = 0; j < n; j++)
                    c[j] += a * b[j];
            }
        }
        for (int64_t i = 0; i < g->M; i++)
            for (int64_t j = 0; j < n; j++)
                g->C[i * g->rsc + (jb + j) * g->csc] = acc[i][j];
    }
}

/* ---------------------------------------------------------------- entry */

bool tg_cpu_gemv_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa, const float *B,
                     int64_t rsb, int64_t csb, float *C, int64_t rsc, int64_t csc)
{
    bool cols = rsb == 1 && csa == 1 && K >= TG_GEMV_MIN_K, rows = csb == 1 && !cols;
    if (M < 1 || M > TG_GEMV_MAX_M || N < 1 || K < 1 || N * K < TG_GEMV_MIN_B || !(cols || rows) ||
        tg_cpu_blas_active())
        return false;
    tg_gemv_job g = { M, K, A, B, rsa, csa, rsb, csb, C, rsc, csc,
                      strcmp(tg_gemm_kernels_current()->name, "avx512") == 0 };
    int64_t grain = TG_GEMV_GRAIN_BYTES / (K * (int64_t)sizeof(float));
    tg_pool_parallel_for(N, grain > 0 ? grain : 1, cols ? tg_gemv_cols : tg_gemv_row_sums, &g);
    return true;
}
