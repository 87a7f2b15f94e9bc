/* Checks conv2d's 1x1 path (a GEMM per image and group: the input read in place at
 * stride 1, gathered into a compact block at stride > 1, the data gradient scattered
 * back with zeros between) against the naive f64 loops (conv_ref.c): forward with and
 * without bias, backward-data and backward-weight, in f32 and f64, every GEMM kernel set
 * this CPU runs, 1 and 2 threads. The grid: strides 1, 2, 3 and unequal ones, outputs
 * that stop short of the input's last rows and columns, groups, batch 1, M and positions
 * that leave partial micro-panels and strips, K over a packing block, and the bench's
 * layers at a smaller batch. Then 3x3 layers at batch 1 on small images, where the weight
 * gradient's units are blocks of input channels and the weight's packing and flip for
 * backward data are threaded.
 *
 * Tolerance as in test_conv_kernels.c: |got - ref| <= (R + 2) * eps * mag, R the length
 * of the sum, mag the sum over absolute values; a wrong term is off by about mag. Each
 * output starts as NaN (the path must not read it) and is followed by sentinels that
 * must survive. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "lib/cpu/conv/conv.h"
#include "lib/cpu/gemm/gemm_kernels.h"
#include "lib/cpu/threadpool.h"

static int g_passed, g_failed;

static uint64_t g_rng = 0x2545F4914F6CDD1Du;
static double rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * 0x1p-52 - 1.0;
}

#define SENTINEL (-7777.0)
#define GUARD 5

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* One geometry's inputs, the oracle's results on them and on their absolute values. */
typedef struct {
    tg_conv2d_geom g;
    int64_t n[3];        /* elements of x, w, out */
    double *in[4];       /* x, w, dy, bias (rounded to f32 when f32) */
    double *ref[3];      /* out, dx, dw */
    double *mag[3];
} problem;

static void oracle(double **res, double *const *in, const tg_conv2d_geom *g, int bias)
{
    tg_cpu_conv2d_ref_forward_f64(res[0], in[0], in[1], bias ? in[3] : NULL, g);
    tg_cpu_conv2d_ref_backward_data_f64(res[1], in[2], in[1], g);
    tg_cpu_conv2d_ref_backward_weight_f64(res[2], in[2], in[0], g);
}

static problem prob_new(const tg_conv2d_geom *g, int f32, int bias)
{
    problem p = { .g = *g };
    p.n[0] = g->N * g->C * g->H * g->W;
    p.n[1] = g->OC * (g->C / g->groups) * g->KH * g->KW;
    p.n[2] = g->N * g->OC * g->OH * g->OW;
    int64_t len[4] = { p.n[0], p.n[1], p.n[2], g->OC }, out[3] = { p.n[2], p.n[0], p.n[1] };
    double *abs[4];
    for (int i = 0; i < 4; i++) {
        p.in[i] = xmalloc((size_t)(len[i] + 1) * sizeof(double));
        abs[i] = xmalloc((size_t)(len[i] + 1) * sizeof(double));
        for (int64_t j = 0; j < len[i]; j++) {
            double v = rnd();
            p.in[i][j] = f32 ? (double)(float)v : v;
            abs[i][j] = fabs(p.in[i][j]);
        }
    }
    for (int i = 0; i < 3; i++) {
        p.ref[i] = xmalloc((size_t)(out[i] + 1) * sizeof(double));
        p.mag[i] = xmalloc((size_t)(out[i] + 1) * sizeof(double));
    }
    oracle(p.ref, p.in, g, bias);
    oracle(p.mag, abs, g, bias);
    for (int i = 0; i < 4; i++)
        free(abs[i]);
    return p;
}

static void prob_free(problem *p)
{
    for (int i = 0; i < 4; i++)
        free(p->in[i]);
    for (int i = 0; i < 3; i++)
        free(p->ref[i]), free(p->mag[i]);
}

static void report(int bad, const char *what, const problem *p, const char *ctx, int64_t at)
{
    if (!bad) {
        g_passed++;
        return;
    }
    const tg_conv2d_geom *g = &p->g;
    g_failed++;
    printf("FAIL %s %s (%d bad, first at %lld): N=%lld C=%lld H=%lld W=%lld OC=%lld OH=%lld "
           "OW=%lld s=%lld,%lld groups=%lld\n", ctx, what, bad, (long long)at, (long long)g->N,
           (long long)g->C, (long long)g->H, (long long)g->W, (long long)g->OC, (long long)g->OH,
           (long long)g->OW, (long long)g->stride[0], (long long)g->stride[1], (long long)g->groups);
}

/* Runs the three kernels in type T and compares them with the oracle. */
#define TG_RUN(T, S, EPS)                                                                       \
    static void run_##S(const problem *p, int bias, const char *ctx)                           \
    {                                                                                           \
        const tg_conv2d_geom *g = &p->g;                                                        \
        T *v[4], *o[3];                                                                         \
        int64_t len[4] = { p->n[0], p->n[1], p->n[2], g->OC }, out[3] = { p->n[2], p->n[0], p->n[1] }; \
        for (int i = 0; i < 4; i++) {                                                           \
            v[i] = xmalloc((size_t)(len[i] + 1) * sizeof(T));                                   \
            for (int64_t j = 0; j < len[i]; j++)                                                \
                v[i][j] = (T)p->in[i][j];                                                       \
        }                                                                                       \
        for (int i = 0; i < 3; i++) {                                                           \
            o[i] = xmalloc((size_t)(out[i] + GUARD) * sizeof(T));                               \
            for (int64_t j = 0; j < out[i] + GUARD; j++)                                        \
                o[i][j] = j < out[i] ? (T)NAN : (T)SENTINEL;                                    \
        }                                                                                       \
        tg_status st[3] = {                                                                     \
            tg_cpu_conv2d_forward_##S(o[0], v[0], v[1], bias ? v[3] : NULL, g),                 \
            tg_cpu_conv2d_backward_data_##S(o[1], v[2], v[1], g),                               \
            tg_cpu_conv2d_backward_weight_##S(o[2], v[2], v[0], g),                             \
        };                                                                                      \
        int64_t KK = g->KH * g->KW;                                                             \
        double R[3] = { (double)(g->C / g->groups * KK + 1), (double)(g->OC / g->groups * KK),  \
                        (double)(g->N * g->OH * g->OW) };                                        \
        static const char *const what[3] = { #S " forward", #S " backward_data",               \
                                             #S " backward_weight" };                           \
        for (int i = 0; i < 3; i++) {                                                           \
            int bad = st[i] != TG_OK;                                                           \
            int64_t at = -1;                                                                    \
            for (int64_t j = 0; j < out[i] + GUARD; j++) {                                      \
                int ok = j < out[i] ? fabs((double)o[i][j] - p->ref[i][j]) <=                   \
                                          (R[i] + 2) * (EPS) * p->mag[i][j] + 1e-300            \
                                    : o[i][j] == (T)SENTINEL;                                   \
                if (!ok && !bad++)                                                              \
                    at = j;                                                                     \
            }                                                                                   \
            report(bad, what[i], p, ctx, at);                                                   \
        }                                                                                       \
        for (int i = 0; i < 4; i++)                                                             \
            free(v[i]);                                                                         \
        for (int i = 0; i < 3; i++)                                                             \
            free(o[i]);                                                                         \
    }
TG_RUN(float, f32, 0x1p-23)
TG_RUN(double, f64, 0x1p-52)

/* A 1x1 geometry; extra (0 or -1) shortens the output where the stride leaves a rest. */
static tg_conv2d_geom geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t sh,
                           int64_t sw, int64_t extra, int64_t groups)
{
    tg_conv2d_geom g = { N, C, H, W, OC, 1, 1, 0, 0, { sh, sw }, { 0, 0 }, { 1, 1 }, groups };
    g.OH = (H - 1 + extra) / sh + 1;
    g.OW = (W - 1 + extra) / sw + 1;
    return g;
}

/* A KxK geometry, "same" padding, for the batch-1 work splits. */
static tg_conv2d_geom geom_k(int64_t N, int64_t C, int64_t H, int64_t OC, int64_t K, int64_t s,
                             int64_t groups)
{
    tg_conv2d_geom g = { N, C, H, H, OC, K, K, 0, 0, { s, s }, { K / 2, K / 2 }, { 1, 1 }, groups };
    g.OH = g.OW = (H + 2 * (K / 2) - K) / s + 1;
    return g;
}

static void run_geom(const tg_conv2d_geom *g, int all_sets)
{
    static const char *const sets[] = { "avx512", "avx2", "c" };
    for (int f32 = 0; f32 < 2; f32++)
        for (int bias = 0; bias < 2; bias++) {
            problem p = prob_new(g, f32, bias);
            for (int s = 0; s < 3; s++) {
                if ((!all_sets && s > 0) || tg_gemm_select(sets[s]) != 0)
                    continue;
                for (int t = 1; t <= 2; t++) {
                    char ctx[64];
                    snprintf(ctx, sizeof ctx, "%s %d thr%s", sets[s], t, bias ? " bias" : "");
                    tg_pool_set_num_threads(t);
                    if (f32)
                        run_f32(&p, bias, ctx);
                    else
                        run_f64(&p, bias, ctx);
                }
            }
            tg_gemm_select("");
            prob_free(&p);
        }
}

int main(void)
{
    tg_cpu_conv_set_algo(TG_CONV_AUTO);
    const tg_conv2d_geom small[] = {
        geom(1, 1, 1, 1, 1, 1, 1, 0, 1),      /* everything 1 */
        geom(3, 7, 9, 9, 16, 1, 1, 0, 1),     /* positions not a multiple of a strip */
        geom(2, 600, 3, 5, 17, 1, 1, 0, 1),   /* K over a packing block, M a partial panel */
        geom(2, 9, 11, 13, 600, 1, 1, 0, 1),  /* backward's K over a block */
        geom(1, 5, 40, 41, 29, 1, 1, 0, 1),   /* batch 1: several bands */
        geom(2, 12, 7, 9, 18, 1, 1, 0, 3),    /* groups */
        geom(1, 40, 7, 7, 50, 2, 2, 0, 1),    /* stride 2, odd input */
        geom(2, 13, 8, 10, 9, 2, 2, 0, 1),    /* stride 2, even input */
        geom(2, 13, 9, 11, 9, 2, 2, -1, 1),   /* the output stops short of the last row */
        geom(1, 6, 10, 11, 7, 3, 1, 0, 1),    /* unequal strides */
        geom(1, 6, 11, 10, 8, 1, 3, 0, 2),
        geom(2, 8, 6, 7, 5, 1, 1, -1, 1),     /* stride 1, output smaller than the input */
        geom(1, 20, 45, 47, 30, 2, 2, 0, 2),  /* stride 2, groups, several bands */
        geom(2, 600, 3, 5, 300, 1, 1, 0, 1),  /* a weight over L2: the blocked GEMM */
        geom(1, 600, 5, 6, 300, 2, 2, 0, 1),  /* ... and the im2col path at stride 2 */
    };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        run_geom(&small[i], 1);
    /* the bench's layers (ResNet-50's 1x1 256 -> 64, ResNet-18's downsample), smaller batch */
    const tg_conv2d_geom bench[] = {
        geom(1, 256, 56, 56, 64, 1, 1, 0, 1),
        geom(2, 64, 56, 56, 128, 2, 2, 0, 1),
        geom(1, 128, 28, 28, 256, 2, 2, 0, 1),
    };
    for (size_t i = 0; i < sizeof bench / sizeof bench[0]; i++)
        run_geom(&bench[i], 0);
    /* batch 1 on small images: the weight gradient's units are blocks of channels, bands
     * of im2col are packed once for the units that share them, and backward data's weight
     * is packed straight from the forward one (over 64 input channels) */
    const tg_conv2d_geom b1[] = {
        geom_k(1, 96, 7, 80, 3, 1, 1),
        geom_k(1, 37, 5, 20, 3, 1, 1),  /* channel blocks of unequal size */
        geom_k(2, 24, 6, 18, 3, 1, 3),  /* groups, batch 2 */
        geom_k(1, 64, 9, 70, 3, 2, 1),
        geom_k(1, 300, 4, 40, 3, 1, 1), /* K over a packing block */
        geom_k(1, 80, 20, 72, 3, 1, 1), /* several bands, each packed ahead for 2 row blocks */
        geom_k(1, 48, 19, 160, 3, 2, 1), /* the same at stride 2, a last band of one column */
    };
    for (size_t i = 0; i < sizeof b1 / sizeof b1[0]; i++)
        run_geom(&b1[i], 1);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
