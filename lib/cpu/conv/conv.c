/* conv2d on the CPU: picks an algorithm by shape (conv_driver_tmpl.h has them, for f32
 * and f64), checks the tensors, and keeps the scratch.
 * Scratch rule: each thread owns three 64-byte-aligned buffers (slots) that grow to
 * the largest request and are freed when the thread exits (a pthread key destructor):
 * slot 0 a worker's packing / col buffer, slot 1 the caller's packed weight and row
 * tables, slot 2 the caller's transformed weight or a worker's copy of dw. A call
 * allocates only when a buffer must grow, so steady-state training allocates nothing. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpu/clones.h"
#include "lib/cpu/conv/conv.h"
#include "lib/cpu/conv/conv_impl.h"
#include "lib/cpu/conv/conv_strided_bwd.h"
#include "lib/cpu/conv/conv_winograd.h"
#include "lib/cpu/cpu.h"
#include "lib/cpu/gemm/gemm.h"
#include "lib/cpu/gemm/gemm_kernels.h"
#include "lib/cpu/threadpool.h"
#include "lib/graph/error.h"

/* A band's block of packed im2col (kc x nb) is sized to this many bytes, to stay in L2
 * beside the weight panels (Sapphire Rapids 2 MB, Zen 4 1 MB). */
#define TG_CONV_B_BYTES (384.0 * 1024)
/* The least work worth a thread (the GEMM's grain, ~5 us on one core). */
#define TG_CONV_GRAIN_FLOPS (2.0 * 64 * 64 * 64)
/* Columns of im2col / col a chunk of the col and wgrad paths takes (one GEMM's K or N). */
#define TG_CONV_CHUNK 512
/* The fewest columns of dw (of the weight gradient's GEMM) a block of input channels
 * may have when the weight gradient's units are such blocks. */
#define TG_CONV_WGRAD_MIN_COLS 128
/* What moving one weight value costs, in flops, for tg_conv_parallel's choice of threads. */
#define TG_CONV_MOVE_FLOPS 32.0
/* Output positions a unit of the 1x1 path takes (fewer where the batch is small): enough
 * work (2 * M * K * 512 flops) to pay for the unit's start, many units to balance. */
#define TG_CONV_1X1_BAND 512
/* The largest weight (one group's, in bytes) the 1x1 path takes: it stays in L2 (1 MB on
 * Zen 4) beside a strip of the input and of the output. */
#define TG_CONV_1X1_MAX_W_BYTES (512.0 * 1024)

/* ---------------------------------------------------------------- scratch */

#define TG_CONV_SLOTS 4 /* 0-2 the algorithms', TG_CONV_SLOT_STRIDED the strided classes' */
typedef struct {
    void *data[TG_CONV_SLOTS];
    size_t size[TG_CONV_SLOTS];
} tg_conv_bufs;

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static void tg_conv_bufs_free(void *p)
{
    tg_conv_bufs *b = p;
    for (int i = 0; b && i < TG_CONV_SLOTS; i++)
        free(b->data[i]);
    free(b);
}

static void tg_conv_key_init(void)
{
    pthread_key_create(&g_key, tg_conv_bufs_free);
}

void *tg_conv_scratch(int slot, size_t size)
{
    pthread_once(&g_key_once, tg_conv_key_init);
    tg_conv_bufs *b = pthread_getspecific(g_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(g_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (b->size[slot] < size || !b->data[slot]) {
        size = (size + 4095) & ~(size_t)4095;
        free(b->data[slot]);
        b->data[slot] = aligned_alloc(64, size ? size : 4096);
        b->size[slot] = b->data[slot] ? size : 0;
    }
    return b->data[slot];
}

void tg_conv_parallel(double flops, int64_t units, tg_pool_fn fn, void *ctx)
{
    int64_t n = (int64_t)(flops / 1024), grain = (int64_t)(TG_CONV_GRAIN_FLOPS / 1024);
    if (units > 1 && tg_pool_num_threads() > 1 && n > grain)
        tg_pool_parallel_for(n, grain, fn, ctx);
    else
        fn(ctx, 0, 1);
}

/* ---------------------------------------------------------------- weight-gradient order */

/* The weight gradient sums over positions in an order fixed by the problem alone, never
 * by the threads, so that a training run's gradients are bitwise the same run to run and
 * for any TG_NUM_THREADS (two threads summing in timing order moved the segmentation
 * example's IoU between 0.67 and 0.82): units are cut as for TG_CONV_WGRAD_THREADS
 * threads whatever the pool has, and where units add into one dw, they are summed into
 * partial sums (slots) whose number comes from the problem's size: slot s takes the
 * units [s*U/S, (s+1)*U/S) in order, the slots go to threads as they come free, and the
 * slots are added in order at the end. */
#define TG_CONV_WGRAD_THREADS 2
/* Two slots where there are two units or more (the work of two threads, as the pool's
 * default here), more (a power of two, so that 4, 8 and 16 threads share them out evenly)
 * up to TG_CONV_WGRAD_SLOTS only where each is worth TG_CONV_WGRAD_SLOT_FLOPS flops a
 * value of dw, all of them together at most TG_CONV_WGRAD_SLOT_BYTES: every slot is
 * zeroed, filled and added, whatever the threads (one core: ResNet-20's 64 -> 64 3x3 at
 * 8x8, 8 192 flops a value, lost a few % a doubling from 2 slots to 8; the 3x3 64 -> 64
 * at 56x56 b32, 200 000 a value, takes 8). */
#define TG_CONV_WGRAD_SLOTS 16
#define TG_CONV_WGRAD_SLOT_BYTES (64.0 * 1024 * 1024)
#define TG_CONV_WGRAD_SLOT_FLOPS 16384.0

/* The slots for `units` units adding into a dw of `size` values of `esize` bytes. */
static int64_t tg_conv_wgrad_slots(int64_t units, int64_t size, size_t esize, double flops)
{
    int64_t s = units >= 2 ? 2 : 1;
    while (2 * s <= units && 2 * s <= TG_CONV_WGRAD_SLOTS &&
           (double)(2 * s) * (double)size * (double)esize <= TG_CONV_WGRAD_SLOT_BYTES &&
           flops >= (double)(2 * s) * (double)size * TG_CONV_WGRAD_SLOT_FLOPS)
        s *= 2;
    return s;
}

/* ---------------------------------------------------------------- kernels */

static tg_conv_algo g_algo = TG_CONV_AUTO;

void tg_cpu_conv_set_algo(tg_conv_algo a)
{
    g_algo = a;
}

/* The packer that matches the kernel set's nr, or NULL for the plain-C one. */
static tg_conv_pack_fn tg_conv_packer_f32(const tg_gemm_kernels *kr)
{
#if defined(__x86_64__)
    if (strcmp(kr->name, "avx512") == 0 && kr->f32.nr == 32)
        return tg_conv_pack_avx512_f32;
#endif
    (void)kr;
    return NULL;
}

static tg_conv_pack_fn tg_conv_packer_f64(const tg_gemm_kernels *kr)
{
#if defined(__x86_64__)
    if (strcmp(kr->name, "avx512") == 0 && kr->f64.nr == 16)
        return tg_conv_pack_avx512_f64;
#endif
    (void)kr;
    return NULL;
}

/* ---------------------------------------------------------------- direct (f32, AVX-512) */

/* The most output channels a group may have for the direct path: up to here packing
 * im2col for the GEMM costs about as much as the GEMM (each packed value meets only M
 * weights); beyond, the packed GEMM with its K blocking wins (one core: 128 -> 128 3x3 at
 * 28x28 91 GFLOP/s packed against 70 direct; 96 -> 96 even; 64 -> 64 at 56x56 even). */
#define TG_CONV_DIRECT_MAX_M 64
/* A tile's masks and runs cost about as much as Cg * M / 16 of its vector FMAs, and
 * they are made again for every input channel block of 8 or fewer: below these (the
 * 1- and 3-channel first layers: VGG's 3 -> 64 at 224x224 52 packed, 46 direct) the
 * packed GEMM is faster. */
#define TG_CONV_DIRECT_MIN_CM 128
#define TG_CONV_DIRECT_MIN_C 8

typedef struct {
    tg_conv_direct_geom dg; /* group 0 */
    int64_t x_group, a_group, out_group, Q, ntiles, units;
    atomic_llong next;
} tg_conv_direct_job;

static void tg_conv_direct_fn(void *ctx, int64_t begin, int64_t end)
{
    tg_conv_direct_job *j = ctx;
    (void)begin, (void)end; /* every participant takes tiles until none are left */
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (u >= j->units)
            break;
        int64_t gi = u / j->ntiles, q0 = u % j->ntiles * TG_CONV_DIRECT_TILE;
        tg_conv_direct_geom dg = j->dg;
        dg.x += gi * j->x_group, dg.ap += gi * j->a_group, dg.out += gi * j->out_group;
        dg.bias = dg.bias ? dg.bias + gi * dg.M : NULL;
        int64_t nq = j->Q - q0 < TG_CONV_DIRECT_TILE ? j->Q - q0 : TG_CONV_DIRECT_TILE;
#if defined(__x86_64__)
        tg_conv_direct_avx512_f32(&dg, q0, (int)nq);
#else
        (void)dg, (void)nq;
#endif
    }
}

/* ---------------------------------------------------------------- lanes (f32, AVX-512) */

#if defined(__x86_64__)

/* A unit's padded input (and for the weight gradient its transposed dout) is kept to
 * about this many bytes, to stay in L2 beside the weight. */
#define TG_CONV_LANES_BYTES (192.0 * 1024)

/* Which of the lane kernels takes the forward conv g (f32, AVX-512 kernels selected,
 * at most 64 output channels a group): 2 the positions in lanes, for fewer than 16
 * output or at most 3 input channels at stride 1 along a row (the first layer and its
 * gradient), 1 the channels in lanes at stride 1 or 2, 0 neither. AUTO leaves out
 * 33-48 channels (an empty vector of 16). */
static int conv_lanes_kind_f32(const tg_conv2d_geom *g)
{
    int64_t M = g->OC / g->groups, Cg = g->C / g->groups;
    if (!(g_algo == TG_CONV_AUTO || g_algo == TG_CONV_LANES) ||
        strcmp(tg_gemm_kernels_current()->name, "avx512") != 0 || M > 64)
        return 0;
    if (g->stride[1] == 1 && (M < 16 || Cg <= 3))
        return 2;
    return g->stride[1] <= 2 && (g_algo == TG_CONV_LANES || M <= 32 || M > 48) ? 1 : 0;
}

/* The weight gradient's: the channels in lanes for 16-64 channels (any number when
 * forced) at stride 1 or 2 with 3- or 5-column kernels. */
static int wgrad_lanes_ok_f32(const tg_conv2d_geom *g, const tg_conv_lanes_geom *lg)
{
    int64_t M = g->OC / g->groups;
    return (g_algo == TG_CONV_AUTO || g_algo == TG_CONV_LANES) &&
           strcmp(tg_gemm_kernels_current()->name, "avx512") == 0 && M <= 64 && g->stride[1] <= 2 &&
           (g_algo == TG_CONV_LANES || (M >= 16 && (M <= 32 || M > 48))) && tg_conv_wgrad_lanes_ok(lg) &&
           !(g->KH == 1 && g->KW == 1);
}

/* The lane geometry of group 0 of g, the weight's rows Mp long: M padded to 16, 32 or
 * 64 lanes, or for the positions in lanes (rows) to 8 (1 stays 1). */
static tg_conv_lanes_geom conv_lanes_geom(const tg_conv2d_geom *g, const float *x, int rows)
{
    int64_t M = g->OC / g->groups, Mp = M <= 16 ? 16 : M <= 32 ? 32 : 64;
    if (rows)
        Mp = M == 1 ? 1 : (M + 7) / 8 * 8;
    return (tg_conv_lanes_geom){ x, g->C * g->H * g->W, g->C / g->groups, g->H, g->W, g->KH, g->KW,
                                 g->stride[0], g->stride[1], g->dilation[0], g->dilation[1], g->pad[0],
                                 g->pad[1], g->OH, g->OW, M, Mp, NULL, NULL, NULL, g->OC * g->OH * g->OW,
                                 NULL, 0, NULL, 0 };
}

/* Output rows a unit takes: a whole image where the batch gives the threads enough units,
 * fewer rows where it does not or where the unit's scratch would outgrow L2. The weight
 * gradient's cut plans for TG_CONV_WGRAD_THREADS threads: a unit's rows are summed in
 * registers, so its rows fix the order of the sum. */
static int64_t conv_lanes_rows(const tg_conv2d_geom *g, const tg_conv_lanes_geom *lg, int wgrad)
{
    int threads = wgrad ? TG_CONV_WGRAD_THREADS : tg_pool_num_threads();
    int64_t per = g->N * g->groups, want = 4 * threads, rows = g->OH;
    if (per < want)
        rows = (g->OH * per + want - 1) / want;
    while (rows > 1 && (double)tg_conv_lanes_buf(lg, rows, wgrad) * sizeof(float) > TG_CONV_LANES_BYTES)
        rows = (rows + 1) / 2;
    return rows < 1 ? 1 : rows;
}

typedef struct {
    tg_conv_lanes_geom lg;  /* group 0 */
    const float *dout;      /* weight gradient: dout's group 0 */
    int rows_kernel;        /* forward: the positions in lanes */
    int64_t x_group, out_group, wt_group, N, rows, nrb, units, buf;
    int64_t nslots;         /* forward: units; weight gradient: tg_conv_wgrad_slots */
    float *sums;            /* weight gradient: the slots' sums, k-major, part_size apart */
    int64_t part_size;
    atomic_llong next;      /* the next slot */
    atomic_int oom;
} tg_conv_lanes_job;

static void conv_lanes_unit(const tg_conv_lanes_job *j, int64_t u, float *buf, float *sum)
{
    int64_t gi = u / (j->N * j->nrb), n = u / j->nrb % j->N, oh0 = u % j->nrb * j->rows;
    int64_t rows = j->lg.OH - oh0 < j->rows ? j->lg.OH - oh0 : j->rows;
    tg_conv_lanes_geom lg = j->lg;
    lg.x += gi * j->x_group;
    if (j->dout) {
        tg_conv_wgrad_lanes_avx512_f32(&lg, j->dout + gi * j->out_group, n, oh0, rows, buf,
                                       sum + gi * j->wt_group);
        return;
    }
    lg.wt += gi * j->wt_group, lg.out += gi * j->out_group;
    lg.bias = lg.bias ? lg.bias + gi * lg.Mp : NULL;
    lg.ecoef = lg.ecoef ? lg.ecoef + gi * lg.M : NULL;
    lg.eres = lg.eres ? lg.eres + gi * j->out_group : NULL;
    if (j->rows_kernel)
        tg_conv_rows_avx512_f32(&lg, n, oh0, rows, buf);
    else
        tg_conv_lanes_avx512_f32(&lg, n, oh0, rows, buf);
}

static void conv_lanes_fn(void *ctx, int64_t begin, int64_t end)
{
    tg_conv_lanes_job *j = ctx;
    (void)begin, (void)end; /* every participant takes slots until none are left */
    float *buf = NULL;
    for (;;) {
        int64_t s = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (s >= j->nslots)
            break;
        if (!buf && !(buf = tg_conv_scratch(0, (size_t)j->buf * sizeof(float)))) {
            atomic_store(&j->oom, 1);
            atomic_store(&j->next, j->nslots);
            break;
        }
        float *sum = j->dout ? j->sums + s * j->part_size : NULL;
        if (sum)
            memset(sum, 0, (size_t)j->part_size * sizeof(float));
        for (int64_t u = s * j->units / j->nslots; u < (s + 1) * j->units / j->nslots; u++)
            conv_lanes_unit(j, u, buf, sum);
    }
}

/* Runs the job's units over (group, image, block of rows); -1 when out of memory. */
static int conv_lanes_run(tg_conv_lanes_job *j, const tg_conv2d_geom *g, int wgrad)
{
    int64_t K = j->lg.C * g->KH * g->KW;
    j->x_group = j->lg.C * g->H * g->W, j->out_group = j->lg.M * g->OH * g->OW;
    j->wt_group = K * j->lg.Mp, j->N = g->N;
    j->rows = conv_lanes_rows(g, &j->lg, wgrad);
    j->nrb = (g->OH + j->rows - 1) / j->rows;
    j->units = g->groups * g->N * j->nrb;
    j->buf = tg_conv_lanes_buf(&j->lg, j->rows, wgrad);
    j->part_size = g->groups * j->wt_group;
    double flops = 2.0 * (double)(g->OC * K) * (double)(g->N * g->OH * g->OW);
    j->nslots = j->units;
    if (wgrad) {
        j->nslots = tg_conv_wgrad_slots(j->units, j->part_size, sizeof(float), flops);
        j->sums = tg_conv_scratch(2, (size_t)(j->nslots * j->part_size) * sizeof(float));
        if (!j->sums)
            return -1;
    }
    atomic_init(&j->next, 0);
    atomic_init(&j->oom, 0);
    tg_conv_parallel(flops, j->nslots, conv_lanes_fn, j);
    return atomic_load(&j->oom) ? -1 : 1;
}

typedef struct {
    const tg_conv_lanes_job *j;
    float *dw;
    int64_t M, K;
} tg_conv_lanes_sum;

/* dw[g][m][k] = the slots' sums at [g][k][m], added in slot order; units are rows (g, k). */
static void conv_lanes_sum_fn(void *ctx, int64_t begin, int64_t end)
{
    const tg_conv_lanes_sum *r = ctx;
    const tg_conv_lanes_job *j = r->j;
    const int64_t Mp = j->lg.Mp;
    float t[64] __attribute__((aligned(64)));
    for (int64_t gk = begin; gk < end; gk++) {
        const float *s = j->sums + gk * Mp;
        for (int64_t m = 0; m < Mp; m++)
            t[m] = s[m];
        for (int64_t p = 1; p < j->nslots; p++)
            for (int64_t m = 0; m < Mp; m++)
                t[m] += s[p * j->part_size + m];
        int64_t gi = gk / r->K, k = gk % r->K;
        for (int64_t m = 0; m < r->M; m++)
            r->dw[(gi * r->M + m) * r->K + k] = t[m];
    }
}

/* out = conv(x, A) + bias by the channel-lane kernel: 1 done, -1 out of memory (message
 * set). A is the weight as a matrix (groups x M x K). epi (or NULL): the channels-in-lanes
 * kernel does it in its stores. */
static int conv_lanes_f32(float *out, const float *x, const float *A, const float *bias,
                          const tg_conv2d_geom *g, int kind, tg_conv_epi *epi)
{
    tg_conv_lanes_job j = { .lg = conv_lanes_geom(g, x, kind == 2), .rows_kernel = kind == 2 };
    if (epi && kind == 1) {
        j.lg.ecoef = epi->coef, j.lg.eoc = epi->oc, j.lg.eres = epi->res, j.lg.erelu = epi->relu;
        epi->applied = 1;
    }
    int64_t M = j.lg.M, Mp = j.lg.Mp, K = j.lg.C * g->KH * g->KW;
    float *wt = tg_conv_scratch(1, (size_t)(g->groups * (K + 1) * Mp) * sizeof(float));
    if (!wt) {
        tg_error(TG_ERR_NOMEM, "conv2d: out of memory for the packed weight");
        return -1;
    }
    float *bp = wt + g->groups * K * Mp; /* then the bias, Mp a group */
    for (int64_t gi = 0; gi < g->groups; gi++)
        for (int64_t m = 0; m < Mp; m++) {
            for (int64_t k = 0; k < K; k++)
                wt[(gi * K + k) * Mp + m] = m < M ? A[(gi * M + m) * K + k] : 0.0f;
            bp[gi * Mp + m] = bias && m < M ? bias[gi * M + m] : 0.0f;
        }
    j.lg.wt = wt, j.lg.bias = bias ? bp : NULL, j.lg.out = out;
    if (conv_lanes_run(&j, g, 0) < 0) {
        tg_error(TG_ERR_NOMEM, "conv2d: out of memory for a thread's padded input");
        return -1;
    }
    return 1;
}

/* dw = the weight gradient by the channel-lane kernel where it applies: 1 done, 0 not
 * applicable, -1 out of memory (message set). */
static int wgrad_lanes_f32(float *dw, const float *dout, const float *x, const tg_conv2d_geom *g)
{
    tg_conv_lanes_job j = { .lg = conv_lanes_geom(g, x, 0), .dout = dout };
    if (!wgrad_lanes_ok_f32(g, &j.lg))
        return 0;
    if (conv_lanes_run(&j, g, 1) < 0) {
        tg_error(TG_ERR_NOMEM, "conv2d backward: out of memory for the weight-gradient sums");
        return -1;
    }
    tg_conv_lanes_sum r = { &j, dw, j.lg.M, j.lg.C * g->KH * g->KW };
    int64_t rows = g->groups * r.K;
    double moved = (double)(rows * j.lg.Mp) * (double)j.nslots;
    if (tg_pool_num_threads() > 1 && moved * TG_CONV_MOVE_FLOPS > 4 * TG_CONV_GRAIN_FLOPS)
        tg_pool_parallel_for(rows, 64, conv_lanes_sum_fn, &r);
    else
        conv_lanes_sum_fn(&r, 0, rows);
    return 1;
}
#else
static int conv_lanes_kind_f32(const tg_conv2d_geom *g)
{
    (void)g;
    return 0;
}

static int conv_lanes_f32(float *out, const float *x, const float *A, const float *bias,
                          const tg_conv2d_geom *g, int kind, tg_conv_epi *epi)
{
    (void)out, (void)x, (void)A, (void)bias, (void)g, (void)kind, (void)epi;
    return 0;
}

static int wgrad_lanes_f32(float *dw, const float *dout, const float *x, const tg_conv2d_geom *g)
{
    (void)dw, (void)dout, (void)x, (void)g;
    return 0;
}
#endif

/* f64 has no lanes path: the packed GEMM serves it (gradcheck, not speed). */
static int wgrad_lanes_f64(double *dw, const double *dout, const double *x, const tg_conv2d_geom *g)
{
    (void)dw, (void)dout, (void)x, (void)g;
    return 0;
}

/* out = conv(x, A) + bias as conv_implicit_f32 computes it, by the lane kernels where
 * they apply, else by direct tiles where the geometry suits them (stride 1, few output
 * channels, AVX-512 kernels selected; under AUTO that leaves 33-48 channels): returns 1
 * when done, 0 when not applicable, -1 out of memory (message set). One core, 2 threads'
 * cpu%: the notes' 16->32 5x5 at 14x14 64% by the tiles, 80% by the lanes; ResNet-20's
 * 16->32 3x3 at stride 2 (no tiles) 25% packed, 72% by the lanes. */
static int conv_direct_f32(float *out, const float *x, const float *A, const float *bias,
                           const tg_conv2d_geom *g, tg_conv_epi *epi)
{
    int lanes = conv_lanes_kind_f32(g);
    if (lanes)
        return conv_lanes_f32(out, x, A, bias, g, lanes, epi);
    const tg_gemm_kernels *kr = tg_gemm_kernels_current();
    int64_t Cg = g->C / g->groups, M = g->OC / g->groups, K = Cg * g->KH * g->KW;
    if (!(g_algo == TG_CONV_AUTO || g_algo == TG_CONV_DIRECT) || strcmp(kr->name, "avx512") != 0 ||
        g->stride[0] != 1 || g->stride[1] != 1 || g->OW < 4 || M > TG_CONV_DIRECT_MAX_M ||
        (g_algo == TG_CONV_AUTO && (Cg * M < TG_CONV_DIRECT_MIN_CM || Cg < TG_CONV_DIRECT_MIN_C)) ||
        g->KH * g->KW > TG_CONV_DIRECT_MAX_KK)
        return 0;
#if !defined(__x86_64__)
    return 0;
#else
    int64_t Mp = (M + 7) / 8 * 8;
    float *ap = tg_conv_scratch(1, (size_t)(g->groups * Mp * K) * sizeof(float));
    if (!ap) {
        tg_error(TG_ERR_NOMEM, "conv2d: out of memory for the packed weight");
        return -1;
    }
    for (int64_t gi = 0; gi < g->groups; gi++) /* 8-row panels, rows past M zero */
        for (int64_t m = 0; m < Mp; m++)
            for (int64_t k = 0; k < K; k++)
                ap[gi * Mp * K + m / 8 * 8 * K + k * 8 + m % 8] = m < M ? A[(gi * M + m) * K + k] : 0.0f;
    int64_t P = g->OH * g->OW;
    tg_conv_direct_job j = { .x_group = Cg * g->H * g->W, .a_group = Mp * K, .out_group = M * P,
                             .Q = g->N * P };
    j.dg = (tg_conv_direct_geom){ x, g->C * g->H * g->W, g->H, g->W, g->OW, P, Cg, g->KH, g->KW,
                                  g->dilation[0], g->dilation[1], g->pad[0], g->pad[1], ap, M, K,
                                  out, g->OC * P, bias };
    j.ntiles = (j.Q + TG_CONV_DIRECT_TILE - 1) / TG_CONV_DIRECT_TILE;
    j.units = g->groups * j.ntiles;
    atomic_init(&j.next, 0);
    tg_conv_parallel(2.0 * (double)(g->groups * M * K) * (double)j.Q, j.units, tg_conv_direct_fn, &j);
    return 1;
#endif
}

/* Whether the weight gradient takes the direct tiles where the lanes do not
 * (wgrad_lanes_f32: the notes' 16->32 5x5 at 14x14 47% cpu by the GEMM, 78% by the
 * lanes) (the forward's conditions, 5x5 at most; a 1x1 stride-1 conv reads x as the GEMM's operand and needs no im2col). AUTO
 * wants whole vectors of one output row (OW 16 or 32): a vector cut into runs loads
 * dout once a run for every kernel column block, and the tiles then lost to the GEMM
 * (64@8x8: 45 against 60 GFLOP/s; the notes' 16->32 5x5 at 14x14: 36 against 56), as
 * they did on longer rows (32@112x112: 68 against 82). */
static int wgrad_direct_ok_f32(const tg_conv2d_geom *g)
{
    int64_t Cg = g->C / g->groups, M = g->OC / g->groups;
    return (g_algo == TG_CONV_AUTO || g_algo == TG_CONV_DIRECT) &&
           strcmp(tg_gemm_kernels_current()->name, "avx512") == 0 && g->stride[0] == 1 &&
           g->stride[1] == 1 && g->OW >= 4 && g->KH * g->KW <= TG_CONV_WGRAD_MAX_KK &&
           (g_algo == TG_CONV_DIRECT || (Cg * M >= TG_CONV_DIRECT_MIN_CM && Cg >= TG_CONV_DIRECT_MIN_C &&
                                         M <= TG_CONV_DIRECT_MAX_M && (g->OW == 16 || g->OW == 32))) &&
           !(g->KH == 1 && g->KW == 1);
}

/* acc (M x K of group gi) += the weight gradient over positions [q0, q0 + nq). */
static void wgrad_direct_f32(const tg_conv2d_geom *g, const float *dout, const float *x, float *acc,
                             int64_t gi, int64_t q0, int64_t nq)
{
#if defined(__x86_64__)
    int64_t Cg = g->C / g->groups, M = g->OC / g->groups, P = g->OH * g->OW;
    tg_conv_direct_geom dg = { x + gi * Cg * g->H * g->W, g->C * g->H * g->W, g->H, g->W, g->OW, P, Cg,
                               g->KH, g->KW, g->dilation[0], g->dilation[1], g->pad[0], g->pad[1], NULL, M,
                               Cg * g->KH * g->KW, NULL, g->OC * P, NULL };
    tg_conv_wgrad_direct_avx512_f32(&dg, dout + gi * M * P, acc, q0, (int)nq);
#else
    (void)g, (void)dout, (void)x, (void)acc, (void)gi, (void)q0, (void)nq;
#endif
}

static int wgrad_direct_ok_f64(const tg_conv2d_geom *g)
{
    (void)g;
    return 0;
}

static void wgrad_direct_f64(const tg_conv2d_geom *g, const double *dout, const double *x, double *acc,
                             int64_t gi, int64_t q0, int64_t nq)
{
    (void)g, (void)dout, (void)x, (void)acc, (void)gi, (void)q0, (void)nq;
}

/* f64 has no direct path: the packed GEMM serves it (gradcheck, not speed). */
static int conv_direct_f64(double *out, const double *x, const double *A, const double *bias,
                           const tg_conv2d_geom *g, tg_conv_epi *epi)
{
    (void)out, (void)x, (void)A, (void)bias, (void)g, (void)epi;
    return 0;
}

#define T float
#define S f32
#define FN(name) name##_f32
#define UKR tg_gemm_ukr_f32
#define PACKER tg_conv_packer_f32
#include "lib/cpu/conv/conv_driver_tmpl.h"
#undef T
#undef S
#undef FN
#undef UKR
#undef PACKER

#define T double
#define S f64
#define FN(name) name##_f64
#define UKR tg_gemm_ukr_f64
#define PACKER tg_conv_packer_f64
#include "lib/cpu/conv/conv_driver_tmpl.h"
#undef T
#undef S
#undef FN
#undef UKR
#undef PACKER

/* ---------------------------------------------------------------- dispatch */

/* groups == C > 1 (one input channel a group). A plain conv of a 1-channel input is not
 * one: the GEMM paths run it several times faster than the depthwise loops (the notes'
 * first 5x5 layer). */
static int tg_conv_is_depthwise(const tg_conv2d_geom *g)
{
    return g->groups == g->C && g->C > 1 && g->OC % g->C == 0;
}

static int tg_conv_is_1x1(const tg_conv2d_geom *g)
{
    return g->KH == 1 && g->KW == 1 && g->stride[0] == 1 && g->stride[1] == 1 &&
           g->pad[0] == 0 && g->pad[1] == 0 && g->OH == g->H && g->OW == g->W;
}

static int tg_conv_empty(const tg_conv2d_geom *g)
{
    return g->N == 0 || g->OC == 0 || g->OH == 0 || g->OW == 0;
}

/* The geometry of backward-data at stride 1 as a forward conv of dout: channels and
 * sizes swap, the kernel flips, the padding becomes (KH-1)*dh - ph. */
static tg_conv2d_geom tg_conv_bwd_geom(const tg_conv2d_geom *g)
{
    tg_conv2d_geom t = *g;
    t.C = g->OC, t.H = g->OH, t.W = g->OW;
    t.OC = g->C, t.OH = g->H, t.OW = g->W;
    t.pad[0] = (g->KH - 1) * g->dilation[0] - g->pad[0];
    t.pad[1] = (g->KW - 1) * g->dilation[1] - g->pad[1];
    return t;
}

/* The epilogue's pass after a path that could not do it in its stores: a plane (image,
 * channel) at a time, in the batch norm kernel's order of operations. */
#define TG_CONV_EPI_PASS(T, S)                                                                 \
    typedef struct {                                                                           \
        T *out;                                                                                \
        const T *coef, *res;                                                                   \
        int64_t OC, P;                                                                         \
        int relu;                                                                              \
    } conv_epi_job_##S;                                                                        \
                                                                                               \
    TG_CPU_CLONES static void conv_epi_planes_##S(void *vc, int64_t i0, int64_t i1)            \
    {                                                                                          \
        const conv_epi_job_##S *j = vc;                                                        \
        for (int64_t i = i0; i < i1; i++) {                                                    \
            T *restrict o = j->out + i * j->P;                                                 \
            const T *restrict z = j->res ? j->res + i * j->P : NULL;                           \
            int64_t c = i % j->OC;                                                             \
            if (j->coef) {                                                                     \
                T m = j->coef[c], l = j->coef[j->OC + c], s = j->coef[2 * j->OC + c],          \
                  t = j->coef[3 * j->OC + c];                                                  \
                for (int64_t p = 0; p < j->P; p++)                                             \
                    o[p] = ((o[p] - m) - l) * s + t;                                           \
            }                                                                                  \
            if (z)                                                                             \
                for (int64_t p = 0; p < j->P; p++)                                             \
                    o[p] += z[p];                                                              \
            if (j->relu)                                                                       \
                for (int64_t p = 0; p < j->P; p++)                                             \
                    o[p] = o[p] < 0 ? (T)0 : o[p];                                             \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    static void conv_epi_pass_##S(T *out, const tg_conv2d_geom *g, const tg_conv_epi *epi)     \
    {                                                                                          \
        conv_epi_job_##S j = { out, epi->coef, epi->res, g->OC, g->OH * g->OW, epi->relu };    \
        int64_t planes = g->N * g->OC, grain = TG_GRAIN_ELEMENTWISE / (j.P > 0 ? j.P : 1);     \
        tg_pool_parallel_for(planes, grain > 0 ? grain : 1, conv_epi_planes_##S, &j);          \
    }

TG_CONV_EPI_PASS(float, f32)
TG_CONV_EPI_PASS(double, f64)

/* Whether AUTO takes Winograd's F(2x2, 3x3) for g (tg_conv_winograd_ok): with the
 * AVX-512 kernels and a panel of 2x2 tiles or more, 128 channels or more on both sides,
 * or 64 or more over images of 28x28 or more. Against AUTO's other paths (forward,
 * alternated calls, 2 threads, Zen 4): at 128-512 channels 1.1-1.8x (128 -> 128 at 28x28
 * batch 1 1.49x, 256 -> 256 at 14x14 batch 32 1.80x, 512 -> 512 at 14x14 batch 1
 * 1.16x); 64 channels 1.10-1.18x at 56x56 and 224x224, 1.0x at 14x14-28x28 and 0.85x at
 * 8x8 (edge tiles, which gather their patches element by element, are most of a small
 * image); 32-48 channels 0.5-0.85x (the transforms weigh against 32 * channels flops
 * a transformed value); 512 -> 512 at 7x7 batch 1 0.56x (16 tiles: the filter
 * transform, 16 values a weight, is most of the work). */
static int conv_winograd_auto(const tg_conv2d_geom *g)
{
    int64_t tiles = g->N * ((g->OH + 1) / 2) * ((g->OW + 1) / 2);
    int wide = g->C >= 128 && g->OC >= 128, large = g->C >= 64 && g->OC >= 64 && g->OH >= 28 && g->OW >= 28;
    /* the transformed weight, 16 values a channel pair, kept to 64 MB (1024 x 1024) */
    int fits = (double)g->C * (double)g->OC <= 1024.0 * 1024.0;
    return strcmp(tg_gemm_kernels_current()->name, "avx512") == 0 && tiles >= 32 && (wide || large) && fits;
}

/* Winograd's F(2x2, 3x3) (conv_winograd.c), f32 only: where forced, or where AUTO takes
 * it. Returns 1 when it ran (*st its status), else 0. */
static int conv_winograd_f32(float *out, const float *x, const float *w, int flip, const float *bias,
                             const tg_conv2d_geom *g, tg_conv_epi *epi, tg_status *st)
{
    if (!tg_conv_winograd_ok(g) || !(g_algo == TG_CONV_WINOGRAD || (g_algo == TG_CONV_AUTO && conv_winograd_auto(g))))
        return 0;
    *st = tg_conv_winograd_f32(out, x, w, flip, bias, g, epi);
    return 1;
}

static int conv_winograd_f64(double *out, const double *x, const double *w, int flip, const double *bias,
                             const tg_conv2d_geom *g, tg_conv_epi *epi, tg_status *st)
{
    (void)out, (void)x, (void)w, (void)flip, (void)bias, (void)g, (void)epi, (void)st;
    return 0;
}

#define TG_CONV_DISPATCH(T, S)                                                                 \
    static tg_status conv_forward_paths_##S(T *out, const T *x, const T *w, const T *bias,     \
                                            const tg_conv2d_geom *g, tg_conv_epi *epi);        \
                                                                                               \
    tg_status tg_cpu_conv2d_forward_##S(T *out, const T *x, const T *w, const T *bias,         \
                                        const tg_conv2d_geom *g)                               \
    {                                                                                          \
        return conv_forward_paths_##S(out, x, w, bias, g, NULL);                               \
    }                                                                                          \
                                                                                               \
    /* The forward with the epilogue: in a path's stores where it can, else one pass after. */ \
    static tg_status conv_forward_##S(T *out, const T *x, const T *w, const T *bias,           \
                                      const tg_conv2d_geom *g, tg_conv_epi *epi)               \
    {                                                                                          \
        tg_status st = conv_forward_paths_##S(out, x, w, bias, g, epi);                        \
        if (st == TG_OK && !epi->applied)                                                      \
            conv_epi_pass_##S(out, g, epi);                                                    \
        return st;                                                                             \
    }                                                                                          \
                                                                                               \
    static tg_status conv_forward_paths_##S(T *out, const T *x, const T *w, const T *bias,     \
                                            const tg_conv2d_geom *g, tg_conv_epi *epi)         \
    {                                                                                          \
        if (tg_conv_empty(g))                                                                  \
            return TG_OK;                                                                      \
        int64_t Cg = g->C / g->groups, M = g->OC / g->groups, P = g->OH * g->OW;              \
        if (Cg == 0) { /* no input channels: a sum of nothing, the bias */                     \
            for (int64_t i = 0; i < g->N * g->OC; i++)                                         \
                for (int64_t p = 0; p < P; p++)                                                \
                    out[i * P + p] = bias ? bias[i % g->OC] : (T)0;                            \
            return TG_OK;                                                                      \
        }                                                                                      \
        if (tg_conv_is_depthwise(g) && (g_algo == TG_CONV_AUTO || g_algo == TG_CONV_DEPTHWISE)) { \
            conv_depthwise_##S(0, out, x, w, bias, g);                                         \
            return TG_OK;                                                                      \
        }                                                                                      \
        if (conv_1x1_ok_##S(0, g) && g_algo == TG_CONV_AUTO)                                   \
            return conv_1x1_##S(0, out, x, w, bias, g);                                        \
        if (tg_conv_is_1x1(g) && (g_algo == TG_CONV_GEMM || g_algo == TG_CONV_AUTO)) {        \
            int64_t nb = g->N * g->groups;                                                     \
            int64_t *off = tg_conv_scratch(1, (size_t)(3 * nb) * sizeof(int64_t));             \
            if (!off)                                                                          \
                return tg_error(TG_ERR_NOMEM, "conv2d: out of memory");                         \
            for (int64_t i = 0; i < nb; i++) {                                                 \
                int64_t n = i / g->groups, gi = i % g->groups;                                 \
                off[i] = gi * M * Cg;                                                          \
                off[nb + i] = (n * g->C + gi * Cg) * P;                                        \
                off[2 * nb + i] = (n * g->OC + gi * M) * P;                                    \
            }                                                                                  \
            if (bias)                                                                          \
                for (int64_t i = 0; i < g->N * g->OC; i++)                                     \
                    for (int64_t p = 0; p < P; p++)                                            \
                        out[i * P + p] = bias[i % g->OC];                                      \
            tg_cpu_gemm_batched_##S(nb, M, P, Cg, w, off, Cg, 1, x, off + nb, P, 1,            \
                                    (T)(bias ? 1 : 0), out, off + 2 * nb, P, 1);                \
            return TG_OK;                                                                      \
        }                                                                                      \
        tg_status wst;                                                                         \
        if (conv_winograd_##S(out, x, w, 0, bias, g, epi, &wst))                               \
            return wst;                                                                        \
        return conv_implicit_##S(out, x, w, 0, bias, g, epi);                                  \
    }                                                                                          \
                                                                                               \
    tg_status tg_cpu_conv2d_backward_data_##S(T *dx, const T *dout, const T *w,                \
                                              const tg_conv2d_geom *g)                         \
    {                                                                                          \
        if (g->N == 0 || g->C == 0 || g->H == 0 || g->W == 0)                                  \
            return TG_OK;                                                                      \
        if (tg_conv_empty(g)) {                                                                \
            memset(dx, 0, (size_t)(g->N * g->C * g->H * g->W) * sizeof(T));                   \
            return TG_OK;                                                                      \
        }                                                                                      \
        if (tg_conv_is_depthwise(g) && (g_algo == TG_CONV_AUTO || g_algo == TG_CONV_DEPTHWISE)) { \
            conv_depthwise_##S(1, dx, dout, w, NULL, g);                                       \
            return TG_OK;                                                                      \
        }                                                                                      \
        int64_t Cg = g->C / g->groups, M = g->OC / g->groups, KK = g->KH * g->KW;             \
        if (conv_1x1_ok_##S(1, g) && g_algo == TG_CONV_AUTO) {                                 \
            T *wt = tg_conv_scratch(2, (size_t)(g->OC * Cg) * sizeof(T));                      \
            if (!wt)                                                                           \
                return tg_error(TG_ERR_NOMEM, "conv2d backward: out of memory for the weight"); \
            conv_flip_w_##S(wt, w, g->groups, M, Cg, 1); /* A = W_g^T (Cg x M) */              \
            return conv_1x1_##S(1, dx, dout, wt, NULL, g);                                     \
        }                                                                                      \
        if (g_algo != TG_CONV_COL && tg_conv_strided_bwd_ok(g, g_algo != TG_CONV_AUTO))       \
            return tg_conv_strided_bwd_data_##S(dx, dout, w, g);                               \
        if (g->stride[0] != 1 || g->stride[1] != 1 || g_algo == TG_CONV_COL)                   \
            return conv_col_bwd_data_##S(dx, dout, w, g);                                      \
        if (tg_conv_is_1x1(g) && (g_algo == TG_CONV_GEMM || g_algo == TG_CONV_AUTO)) {        \
            /* dx_n,g (Cg x P) = W_g^T (Cg x M) * dout_n,g (M x P) */                          \
            int64_t nb = g->N * g->groups, P = g->H * g->W;                                    \
            int64_t *off = tg_conv_scratch(1, (size_t)(3 * nb) * sizeof(int64_t));             \
            if (!off)                                                                          \
                return tg_error(TG_ERR_NOMEM, "conv2d backward: out of memory");                \
            for (int64_t i = 0; i < nb; i++) {                                                 \
                int64_t n = i / g->groups, gi = i % g->groups;                                 \
                off[i] = gi * M * Cg;                                                          \
                off[nb + i] = (n * g->OC + gi * M) * P;                                        \
                off[2 * nb + i] = (n * g->C + gi * Cg) * P;                                    \
            }                                                                                  \
            tg_cpu_gemm_batched_##S(nb, Cg, P, M, w, off, 1, Cg, dout, off + nb, P, 1, (T)0,    \
                                    dx, off + 2 * nb, P, 1);                                   \
            return TG_OK;                                                                      \
        }                                                                                      \
        tg_conv2d_geom t = tg_conv_bwd_geom(g);                                                \
        tg_status wst;                                                                         \
        if (conv_winograd_##S(dx, dout, w, 1, NULL, &t, NULL, &wst))                           \
            return wst;                                                                        \
        if (Cg > TG_CONV_DIRECT_MAX_M) /* never the direct tiles: packed straight from w */     \
            return conv_implicit_##S(dx, dout, w, 1, NULL, &t, NULL);                          \
        T *wt = tg_conv_scratch(2, (size_t)(g->OC * Cg * KK) * sizeof(T));                     \
        if (!wt)                                                                               \
            return tg_error(TG_ERR_NOMEM, "conv2d backward: out of memory for the weight");    \
        conv_flip_w_##S(wt, w, g->groups, M, Cg, KK);                                          \
        return conv_implicit_##S(dx, dout, wt, 0, NULL, &t, NULL);                             \
    }                                                                                          \
                                                                                               \
    tg_status tg_cpu_conv2d_backward_weight_##S(T *dw, const T *dout, const T *x,              \
                                                const tg_conv2d_geom *g)                       \
    {                                                                                          \
        if (tg_conv_empty(g) || g->C == 0 || g->H == 0 || g->W == 0) {                         \
            memset(dw, 0, (size_t)(g->OC * (g->C / g->groups) * g->KH * g->KW) * sizeof(T));   \
            return TG_OK;                                                                      \
        }                                                                                      \
        if (tg_conv_is_depthwise(g) && (g_algo == TG_CONV_AUTO || g_algo == TG_CONV_DEPTHWISE)) { \
            conv_depthwise_##S(2, dw, dout, x, NULL, g);                                       \
            return TG_OK;                                                                      \
        }                                                                                      \
        return conv_wgrad_##S(dw, dout, x, g);                                                 \
    }

TG_CONV_DISPATCH(float, f32)
TG_CONV_DISPATCH(double, f64)

/* ---------------------------------------------------------------- tensors */

/* Checks the geometry and that t is dense, of dtype dt, shaped (a, b, c, d). */
static tg_status tg_conv_check(const char *fn, const char *what, const tg_tensor *t, tg_dtype dt,
                               int64_t a, int64_t b, int64_t c, int64_t d)
{
    if (!t)
        return tg_error(TG_ERR_INVALID, "%s: %s is NULL", fn, what);
    if (t->dtype != dt || (dt != TG_F32 && dt != TG_F64))
        return tg_error(TG_ERR_DTYPE, "%s: %s must be f32 or f64 like the others", fn, what);
    int64_t want[4] = { a, b, c, d };
    int nd = d < 0 ? 1 : 4;
    if (t->ndim != nd || !tg_tensor_is_dense(t))
        return tg_error(TG_ERR_INVALID, "%s: %s must be a dense %d-d tensor", fn, what, nd);
    for (int i = 0; i < nd; i++)
        if (t->shape[i] != want[i]) {
            char buf[128];
            return tg_error(TG_ERR_SHAPE, "%s: %s has shape %s, expected [%lld,%lld,%lld,%lld]", fn,
                            what, tg_shape_str(buf, t->ndim, t->shape), (long long)a, (long long)b,
                            (long long)c, (long long)d);
        }
    return TG_OK;
}

static tg_status tg_conv_check_geom(const char *fn, const tg_conv2d_geom *g)
{
    if (!g)
        return tg_error(TG_ERR_INVALID, "%s: geometry is NULL", fn);
    int64_t v[] = { g->N, g->C, g->H, g->W, g->OC, g->KH, g->KW, g->OH, g->OW, g->pad[0], g->pad[1] };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] < 0)
            return tg_error(TG_ERR_INVALID, "%s: negative size or padding in the geometry", fn);
    if (g->stride[0] < 1 || g->stride[1] < 1 || g->dilation[0] < 1 || g->dilation[1] < 1)
        return tg_error(TG_ERR_INVALID, "%s: stride and dilation must be >= 1", fn);
    if (g->groups < 1 || g->C % g->groups || g->OC % g->groups || g->KH < 1 || g->KW < 1)
        return tg_error(TG_ERR_INVALID, "%s: groups (%lld) must divide C (%lld) and OC (%lld)", fn,
                        (long long)g->groups, (long long)g->C, (long long)g->OC);
    return TG_OK;
}

#define TG_CONV_CHECK(expr)                  \
    do {                                     \
        tg_status st_ = (expr);              \
        if (st_ != TG_OK)                    \
            return st_;                      \
    } while (0)

tg_status tg_cpu_conv2d_forward(tg_tensor *out, const tg_tensor *x, const tg_tensor *w,
                                const tg_tensor *bias, const tg_conv2d_geom *g)
{
    const char *fn = "conv2d";
    TG_CONV_CHECK(tg_conv_check_geom(fn, g));
    tg_dtype dt = x ? x->dtype : TG_F32;
    TG_CONV_CHECK(tg_conv_check(fn, "x", x, dt, g->N, g->C, g->H, g->W));
    TG_CONV_CHECK(tg_conv_check(fn, "weight", w, dt, g->OC, g->C / g->groups, g->KH, g->KW));
    TG_CONV_CHECK(tg_conv_check(fn, "out", out, dt, g->N, g->OC, g->OH, g->OW));
    if (bias)
        TG_CONV_CHECK(tg_conv_check(fn, "bias", bias, dt, g->OC, 0, 0, -1));
    if (dt == TG_F32)
        return tg_cpu_conv2d_forward_f32((float *)tg_cpu_ptr(out), (const float *)tg_cpu_ptr(x),
                                         (const float *)tg_cpu_ptr(w),
                                         bias ? (const float *)tg_cpu_ptr(bias) : NULL, g);
    return tg_cpu_conv2d_forward_f64((double *)tg_cpu_ptr(out), (const double *)tg_cpu_ptr(x),
                                     (const double *)tg_cpu_ptr(w),
                                     bias ? (const double *)tg_cpu_ptr(bias) : NULL, g);
}

/* Channel c's coefficients of eval-mode batch norm, as the batch norm kernel computes
 * them (norm_tmpl.h's bn_coef): m, l (the mean's high and low parts), s, t. */
#define TG_CONV_BN_COEF(T)                                                                          \
    do {                                                                                            \
        T *cf = coef;                                                                               \
        for (int64_t c = 0; c < OC; c++) {                                                          \
            double mean = ((const T *)tg_cpu_ptr(e->mean))[c], var = ((const T *)tg_cpu_ptr(e->var))[c]; \
            double invstd = 1 / sqrt(var + e->eps);                                                 \
            cf[c] = (T)mean;                                                                        \
            cf[OC + c] = (T)(mean - (double)(T)mean);                                               \
            cf[2 * OC + c] = (T)(invstd * (e->weight ? (double)((const T *)tg_cpu_ptr(e->weight))[c] : 1.0)); \
            cf[3 * OC + c] = e->bias ? ((const T *)tg_cpu_ptr(e->bias))[c] : (T)0;                  \
        }                                                                                           \
    } while (0)

tg_status tg_cpu_conv2d_fused(tg_tensor *out, const tg_tensor *x, const tg_tensor *w, const tg_tensor *bias,
                              const tg_conv_epilogue *e, const tg_conv2d_geom *g)
{
    const char *fn = "conv2d";
    TG_CONV_CHECK(tg_conv_check_geom(fn, g));
    tg_dtype dt = x ? x->dtype : TG_F32;
    TG_CONV_CHECK(tg_conv_check(fn, "x", x, dt, g->N, g->C, g->H, g->W));
    TG_CONV_CHECK(tg_conv_check(fn, "weight", w, dt, g->OC, g->C / g->groups, g->KH, g->KW));
    TG_CONV_CHECK(tg_conv_check(fn, "out", out, dt, g->N, g->OC, g->OH, g->OW));
    if (bias)
        TG_CONV_CHECK(tg_conv_check(fn, "bias", bias, dt, g->OC, 0, 0, -1));
    if (!e)
        return tg_error(TG_ERR_INVALID, "%s: epilogue is NULL", fn);
    if (e->residual)
        TG_CONV_CHECK(tg_conv_check(fn, "residual", e->residual, dt, g->N, g->OC, g->OH, g->OW));
    if (!e->mean != !e->var || ((e->weight || e->bias) && !e->mean))
        return tg_error(TG_ERR_INVALID, "%s: the epilogue's batch norm needs both running statistics", fn);
    const tg_tensor *vecs[4] = { e->mean, e->var, e->weight, e->bias };
    for (int i = 0; i < 4; i++)
        if (vecs[i])
            TG_CONV_CHECK(tg_conv_check(fn, "batch norm", vecs[i], dt, g->OC, 0, 0, -1));
    int64_t OC = g->OC;
    size_t es = dt == TG_F32 ? sizeof(float) : sizeof(double);
    void *coef = NULL;
    if (e->mean) {
        if (!(coef = malloc((size_t)(4 * (OC > 0 ? OC : 1)) * es)))
            return tg_error(TG_ERR_NOMEM, "%s: out of memory for the batch norm's coefficients", fn);
        if (dt == TG_F32)
            TG_CONV_BN_COEF(float);
        else
            TG_CONV_BN_COEF(double);
    }
    tg_conv_epi epi = { coef, OC, e->residual ? tg_cpu_ptr(e->residual) : NULL, e->relu, 0 };
    tg_status st = dt == TG_F32
                       ? conv_forward_f32((float *)tg_cpu_ptr(out), (const float *)tg_cpu_ptr(x),
                                          (const float *)tg_cpu_ptr(w),
                                          bias ? (const float *)tg_cpu_ptr(bias) : NULL, g, &epi)
                       : conv_forward_f64((double *)tg_cpu_ptr(out), (const double *)tg_cpu_ptr(x),
                                          (const double *)tg_cpu_ptr(w),
                                          bias ? (const double *)tg_cpu_ptr(bias) : NULL, g, &epi);
    free(coef);
    return st;
}

tg_status tg_cpu_conv2d_backward_data(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *w,
                                      const tg_conv2d_geom *g)
{
    const char *fn = "conv2d backward";
    TG_CONV_CHECK(tg_conv_check_geom(fn, g));
    tg_dtype dt = dout ? dout->dtype : TG_F32;
    TG_CONV_CHECK(tg_conv_check(fn, "dout", dout, dt, g->N, g->OC, g->OH, g->OW));
    TG_CONV_CHECK(tg_conv_check(fn, "weight", w, dt, g->OC, g->C / g->groups, g->KH, g->KW));
    TG_CONV_CHECK(tg_conv_check(fn, "dx", dx, dt, g->N, g->C, g->H, g->W));
    if (dt == TG_F32)
        return tg_cpu_conv2d_backward_data_f32((float *)tg_cpu_ptr(dx),
                                               (const float *)tg_cpu_ptr(dout),
                                               (const float *)tg_cpu_ptr(w), g);
    return tg_cpu_conv2d_backward_data_f64((double *)tg_cpu_ptr(dx),
                                           (const double *)tg_cpu_ptr(dout),
                                           (const double *)tg_cpu_ptr(w), g);
}

tg_status tg_cpu_conv2d_backward_weight(tg_tensor *dw, const tg_tensor *dout, const tg_tensor *x,
                                        const tg_conv2d_geom *g)
{
    const char *fn = "conv2d backward";
    TG_CONV_CHECK(tg_conv_check_geom(fn, g));
    tg_dtype dt = dout ? dout->dtype : TG_F32;
    TG_CONV_CHECK(tg_conv_check(fn, "dout", dout, dt, g->N, g->OC, g->OH, g->OW));
    TG_CONV_CHECK(tg_conv_check(fn, "x", x, dt, g->N, g->C, g->H, g->W));
    TG_CONV_CHECK(tg_conv_check(fn, "dweight", dw, dt, g->OC, g->C / g->groups, g->KH, g->KW));
    if (dt == TG_F32)
        return tg_cpu_conv2d_backward_weight_f32((float *)tg_cpu_ptr(dw),
                                                 (const float *)tg_cpu_ptr(dout),
                                                 (const float *)tg_cpu_ptr(x), g);
    return tg_cpu_conv2d_backward_weight_f64((double *)tg_cpu_ptr(dw),
                                             (const double *)tg_cpu_ptr(dout),
                                             (const double *)tg_cpu_ptr(x), g);
}
