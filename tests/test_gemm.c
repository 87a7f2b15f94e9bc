/* Checks the CPU GEMM against the triple-loop oracle: every kernel set this CPU runs
 * (avx512, avx2, c), 1 and 2 threads, f32 and f64, A, B and C each row-major,
 * column-major, padded (row stride past the width), fully strided and flipped (negative
 * row stride), beta 0 (C full of NaN beforehand) and beta 1, awkward sizes, K = 0, the
 * cache-block edges, and the batched entry points.
 *
 * Tolerance: |c - ref| <= (K + 2) * eps * (sum_k |a_ik b_kj| + |c0_ij|), eps = 2^-23 for
 * f32 and 2^-52 for f64: the worst-case bound for two summation orders. A wrong element
 * is off by about the size of the sum itself, far above that. Elements of C's buffer
 * outside the view must keep their sentinel. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpu/gemm/gemm.h"
#include "lib/cpu/gemm/gemm_kernels.h"
#include "lib/cpu/threadpool.h"

static int g_passed, g_failed;
static char g_ctx[96]; /* kernel and threads, for failure lines */

/* ---------------------------------------------------------------- views */

enum { L_ROW, L_COL, L_ROWPAD, L_COLPAD, L_STRIDED, L_FLIP, L_COUNT };
static const char *const k_layouts[L_COUNT] = { "row", "col", "rowpad", "colpad", "strided",
                                                "flip" };

/* A rows x cols view in a buffer of *size elements starting at element *off. */
typedef struct {
    int64_t rs, cs, off, size;
} view;

static view make_view(int64_t rows, int64_t cols, int layout)
{
    view v = { 0, 0, 0, 0 };
    switch (layout) {
    case L_ROW: v.rs = cols, v.cs = 1; break;
    case L_COL: v.rs = 1, v.cs = rows; break;
    case L_ROWPAD: v.rs = cols + 3, v.cs = 1; break;
    case L_COLPAD: v.rs = 1, v.cs = rows + 5; break;
    case L_STRIDED: v.rs = 2 * cols + 1, v.cs = 2; break;
    case L_FLIP: v.rs = -(cols + 1), v.cs = 1; break;
    }
    int64_t span_r = (rows - 1) * (v.rs < 0 ? -v.rs : v.rs), span_c = (cols - 1) * v.cs;
    v.size = (rows > 0 && cols > 0 ? span_r + span_c + 1 : 0) + 8;
    v.off = v.rs < 0 ? span_r : 0;
    return v;
}

/* ---------------------------------------------------------------- random */

static uint64_t g_rng = 88172645463325252u;

static double rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * 0x1p-52 - 1.0; /* [-1, 1) */
}

/* ---------------------------------------------------------------- one case */

static void noop(void *ctx, int64_t begin, int64_t end)
{
    (void)ctx, (void)begin, (void)end;
}

/* Wakes the pool's workers (a job of 64 grains is never run inline), so that the GEMM
 * right after finds them spinning and splits even mid-sized problems. */
static void warm_pool(void)
{
    tg_pool_parallel_for(64, 1, noop, NULL);
}

typedef struct {
    int64_t M, N, K;
    int la, lb, lc;
    int beta; /* 0 or 1 */
} gcase;

#define SENTINEL (-7777.0)

/* Runs one case for element type T (f64: is_f64) and checks it. The body is a macro so
 * f32 and f64 share it. */
#define TG_TEST_CASE(T, GEMM, REF, EPS)                                                  \
    static int64_t check_##T(const gcase *g, int64_t *bad_i, int64_t *bad_j, double *got, \
                             double *want)                                               \
    {                                                                                    \
        view va = make_view(g->M, g->K, g->la), vb = make_view(g->K, g->N, g->lb);       \
        view vc = make_view(g->M, g->N, g->lc);                                          \
        T *A = malloc((size_t)va.size * sizeof(T)), *B = malloc((size_t)vb.size * sizeof(T)); \
        T *C = malloc((size_t)vc.size * sizeof(T)), *R = malloc((size_t)vc.size * sizeof(T)); \
        T *C0 = malloc((size_t)vc.size * sizeof(T));                                     \
        if (!A || !B || !C || !R || !C0) {                                               \
            fprintf(stderr, "out of memory\n");                                          \
            exit(2);                                                                     \
        }                                                                                \
        for (int64_t i = 0; i < va.size; i++)                                            \
            A[i] = (T)rnd();                                                             \
        for (int64_t i = 0; i < vb.size; i++)                                            \
            B[i] = (T)rnd();                                                             \
        for (int64_t i = 0; i < vc.size; i++)                                            \
            C0[i] = (T)SENTINEL;                                                         \
        for (int64_t i = 0; i < g->M; i++)                                               \
            for (int64_t j = 0; j < g->N; j++)                                           \
                C0[vc.off + i * vc.rs + j * vc.cs] = g->beta ? (T)rnd() : (T)NAN;        \
        memcpy(C, C0, (size_t)vc.size * sizeof(T));                                      \
        memcpy(R, C0, (size_t)vc.size * sizeof(T));                                      \
        warm_pool();                                                                     \
        GEMM(g->M, g->N, g->K, A + va.off, va.rs, va.cs, B + vb.off, vb.rs, vb.cs,       \
             (T)g->beta, C + vc.off, vc.rs, vc.cs);                                      \
        REF(g->M, g->N, g->K, A + va.off, va.rs, va.cs, B + vb.off, vb.rs, vb.cs,        \
            (T)g->beta, R + vc.off, vc.rs, vc.cs);                                       \
        int64_t nbad = 0;                                                                \
        for (int64_t i = 0; i < g->M; i++)                                               \
            for (int64_t j = 0; j < g->N; j++) {                                         \
                double mag = g->beta ? fabs((double)C0[vc.off + i * vc.rs + j * vc.cs]) : 0; \
                for (int64_t k = 0; k < g->K; k++)                                       \
                    mag += fabs((double)A[va.off + i * va.rs + k * va.cs] *              \
                                (double)B[vb.off + k * vb.rs + j * vb.cs]);              \
                double c = C[vc.off + i * vc.rs + j * vc.cs];                            \
                double r = R[vc.off + i * vc.rs + j * vc.cs];                            \
                if (!(fabs(c - r) <= (double)(g->K + 2) * (EPS) * mag)) {                \
                    if (!nbad++)                                                         \
                        *bad_i = i, *bad_j = j, *got = c, *want = r;                     \
                }                                                                        \
                C[vc.off + i * vc.rs + j * vc.cs] = (T)SENTINEL; /* for the next loop */ \
            }                                                                            \
        for (int64_t i = 0; i < vc.size; i++)                                            \
            if (C[i] != (T)SENTINEL) {                                                   \
                if (!nbad++)                                                             \
                    *bad_i = -1, *bad_j = i, *got = C[i], *want = SENTINEL;              \
            }                                                                            \
        free(A), free(B), free(C), free(R), free(C0);                                    \
        return nbad;                                                                     \
    }

TG_TEST_CASE(float, tg_cpu_gemm_f32, tg_cpu_gemm_ref_f32, 0x1p-23)
TG_TEST_CASE(double, tg_cpu_gemm_f64, tg_cpu_gemm_ref_f64, 0x1p-52)

static void run_case(const gcase *g, int is_f64)
{
    int64_t bi = 0, bj = 0;
    double got = 0, want = 0;
    int64_t nbad = is_f64 ? check_double(g, &bi, &bj, &got, &want)
                          : check_float(g, &bi, &bj, &got, &want);
    if (!nbad) {
        g_passed++;
        return;
    }
    g_failed++;
    printf("FAIL %s %s M=%lld N=%lld K=%lld A=%s B=%s C=%s beta=%d: %lld bad, first ",
           g_ctx, is_f64 ? "f64" : "f32", (long long)g->M, (long long)g->N, (long long)g->K,
           k_layouts[g->la], k_layouts[g->lb], k_layouts[g->lc], g->beta, (long long)nbad);
    if (bi < 0)
        printf("outside the view at buffer index %lld: %g\n", (long long)bj, got);
    else
        printf("C[%lld,%lld] = %.9g want %.9g\n", (long long)bi, (long long)bj, got, want);
}

/* ---------------------------------------------------------------- batched */

#define TG_TEST_BATCHED(T, BATCHED, REF, EPS)                                             \
    static int check_batched_##T(int64_t batch, int64_t M, int64_t N, int64_t K, int beta) \
    {                                                                                    \
        /* A items row-major and spaced apart, B items column-major, C padded rows */    \
        int64_t sa = M * K + 3, sb = K * N + 1, rsc = N + 2, sc = M * rsc + 5;            \
        T *A = malloc((size_t)(batch * sa) * sizeof(T));                                 \
        T *B = malloc((size_t)(batch * sb) * sizeof(T));                                 \
        T *C = malloc((size_t)(batch * sc) * sizeof(T));                                 \
        T *R = malloc((size_t)(batch * sc) * sizeof(T));                                 \
        int64_t *ao = calloc((size_t)batch + 1, sizeof(int64_t));                          \
        int64_t *bo = calloc((size_t)batch + 1, sizeof(int64_t));                          \
        int64_t *co = calloc((size_t)batch + 1, sizeof(int64_t));                          \
        if (!A || !B || !C || !R || !ao || !bo || !co) {                                 \
            fprintf(stderr, "out of memory\n");                                          \
            exit(2);                                                                     \
        }                                                                                \
        for (int64_t i = 0; i < batch * sa; i++)                                         \
            A[i] = (T)rnd();                                                             \
        for (int64_t i = 0; i < batch * sb; i++)                                         \
            B[i] = (T)rnd();                                                             \
        for (int64_t i = 0; i < batch * sc; i++)                                         \
            C[i] = R[i] = beta ? (T)rnd() : (T)NAN;                                      \
        for (int64_t b = 0; b < batch; b++) /* items in reverse order in memory */       \
            ao[b] = (batch - 1 - b) * sa, bo[b] = b * sb, co[b] = (batch - 1 - b) * sc;   \
        warm_pool();                                                                     \
        BATCHED(batch, M, N, K, A, ao, K, 1, B, bo, 1, K, (T)beta, C, co, rsc, 1);       \
        for (int64_t b = 0; b < batch; b++)                                              \
            REF(M, N, K, A + ao[b], K, 1, B + bo[b], 1, K, (T)beta, R + co[b], rsc, 1);  \
        int bad = 0;                                                                     \
        for (int64_t b = 0; b < batch && !bad; b++)                                      \
            for (int64_t i = 0; i < M; i++)                                              \
                for (int64_t j = 0; j < N; j++) {                                        \
                    double c = C[co[b] + i * rsc + j], r = R[co[b] + i * rsc + j];        \
                    if (!(fabs(c - r) <= (double)(K + 2) * (EPS) * ((double)K + 1)))     \
                        bad = 1;                                                         \
                }                                                                        \
        free(A), free(B), free(C), free(R), free(ao), free(bo), free(co);                \
        return bad;                                                                      \
    }

TG_TEST_BATCHED(float, tg_cpu_gemm_batched_f32, tg_cpu_gemm_ref_f32, 0x1p-23)
TG_TEST_BATCHED(double, tg_cpu_gemm_batched_f64, tg_cpu_gemm_ref_f64, 0x1p-52)

static void run_batched(int64_t batch, int64_t M, int64_t N, int64_t K, int beta, int is_f64)
{
    int bad = is_f64 ? check_batched_double(batch, M, N, K, beta)
                     : check_batched_float(batch, M, N, K, beta);
    if (!bad) {
        g_passed++;
        return;
    }
    g_failed++;
    printf("FAIL %s %s batched batch=%lld M=%lld N=%lld K=%lld beta=%d\n", g_ctx,
           is_f64 ? "f64" : "f32", (long long)batch, (long long)M, (long long)N, (long long)K,
           beta);
}

/* ---------------------------------------------------------------- the suite */

static void suite(int is_f64)
{
    static const int64_t small[] = { 1, 7, 17, 33 };
    static const int64_t big[] = { 100, 257 };
    /* every small shape in every layout of A and B, C row-major or column-major */
    for (int mi = 0; mi < 4; mi++)
        for (int ni = 0; ni < 4; ni++)
            for (int ki = 0; ki < 4; ki++)
                for (int la = 0; la < L_COUNT; la++)
                    for (int lb = 0; lb < L_COUNT; lb++) {
                        gcase g = { small[mi], small[ni], small[ki], la, lb,
                                    (la + lb) % 2 ? L_COL : L_ROW, (la + lb + ki) % 2 };
                        run_case(&g, is_f64);
                    }
    /* every C layout and beta on mixed shapes */
    for (int lc = 0; lc < L_COUNT; lc++)
        for (int beta = 0; beta < 2; beta++)
            for (int la = 0; la < L_COUNT; la += 2) {
                gcase g1 = { 33, 17, 100, la, (la + 1) % L_COUNT, lc, beta };
                gcase g2 = { 100, 257, 33, (la + 3) % L_COUNT, la, lc, beta };
                run_case(&g1, is_f64);
                run_case(&g2, is_f64);
            }
    /* the larger awkward sizes */
    for (int mi = 0; mi < 2; mi++)
        for (int ni = 0; ni < 2; ni++)
            for (int ki = 0; ki < 2; ki++)
                for (int l = 0; l < 4; l++) {
                    gcase g = { big[mi], big[ni], big[ki], l, (l + 1) % 4, l % 2 ? L_COL : L_ROWPAD,
                                l % 2 };
                    run_case(&g, is_f64);
                }
    /* row counts that end on the short kernels (M mod 14 = 4 or 8) and their neighbours,
     * full-width columns, B row-major (packed since K < 64) and column-major */
    static const int64_t edge_m[] = { 4, 8, 18, 22, 64, 65 };
    for (int mi = 0; mi < 6; mi++)
        for (int lb = 0; lb < 2; lb++)
            for (int beta = 0; beta < 2; beta++) {
                gcase g = { edge_m[mi], 64, 40, L_ROW, lb ? L_COL : L_ROW, L_ROW, beta };
                run_case(&g, is_f64);
            }
    /* K = 0: C = beta C */
    for (int beta = 0; beta < 2; beta++)
        for (int lc = 0; lc < L_COUNT; lc++) {
            gcase g = { 17, 33, 0, L_ROW, L_ROW, lc, beta };
            run_case(&g, is_f64);
        }
    /* past every cache block (M > mc, N > nc, K > kc) */
    gcase g1 = { 400, 600, 300, L_ROW, L_ROW, L_ROW, 1 };
    gcase g2 = { 401, 530, 513, L_COL, L_ROWPAD, L_ROWPAD, 0 };
    run_case(&g1, is_f64);
    run_case(&g2, is_f64);
    /* batched: small items (threaded across items), large items (within), edge cases */
    run_batched(9, 7, 17, 33, 0, is_f64);
    run_batched(64, 16, 16, 16, 1, is_f64);
    run_batched(3, 200, 150, 120, 0, is_f64);
    run_batched(1, 33, 1, 7, 1, is_f64);
    run_batched(4, 5, 6, 0, 0, is_f64);
    run_batched(0, 5, 6, 7, 1, is_f64);
}

int main(void)
{
    static const char *const kernels[] = { "avx512", "avx2", "c" };
    printf("default kernel: %s\n", tg_cpu_gemm_kernel_name());
    for (int ki = 0; ki < 3; ki++) {
        if (tg_gemm_select(kernels[ki]) != 0) {
            printf("kernel %s: not available\n", kernels[ki]);
            continue;
        }
        for (int threads = 1; threads <= 2; threads++) {
            tg_pool_set_num_threads(threads);
            snprintf(g_ctx, sizeof g_ctx, "%s threads=%d", tg_cpu_gemm_kernel_name(), threads);
            int before = g_failed;
            suite(0);
            suite(1);
            printf("%s: %s\n", g_ctx, g_failed == before ? "ok" : "FAILED");
        }
    }
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
