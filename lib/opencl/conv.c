/* OpenCL conv2d, forward and both backward passes, as implicit GEMM (kernels/conv.cl):
 * each tile load forms its im2col entries from x or dout in place, so no column matrix
 * is stored or moved. One launch per direction covers every image and group (batch
 * axis z). The weight gradient has a long K (N*OH*OW) and few tiles, so where tiles
 * would leave compute units idle it splits K into chunks whose partial dw go to the
 * thread's scratch buffer (tg_scratch) and are added in split order by a second
 * launch: results depend only on the shapes, never on timing. */
#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

#define SPLIT_MIN_K 1024 /* a split of the weight gradient's K is at least this long */
#define SPLIT_MAX 64

typedef struct {
    cl_long8 ga, gb;
} conv_args;

static conv_args args_of(const tg_conv2d_geom *g) {
    conv_args a = { 0 };
    cl_long ga[8] = { g->N, g->C, g->H, g->W, g->OC, g->KH, g->KW, g->groups };
    cl_long gb[8] = { g->OH, g->OW, g->stride[0], g->stride[1], g->pad[0], g->pad[1], g->dilation[0], g->dilation[1] };
    for (int i = 0; i < 8; i++) {
        a.ga.s[i] = ga[i];
        a.gb.s[i] = gb[i];
    }
    return a;
}

/* One implicit-GEMM launch: (M, NC) outputs per batch z in [0, nz), K summed in chunks
 * of kchunk; c_stride apart per split (weight gradient only). */
static tg_status launch(tg_cl_device *d, tg_cl_kernel_id id, tg_dtype dt, const char *what, const tg_conv2d_geom *g,
                        cl_long M, cl_long NC, cl_long K, cl_long kchunk, int64_t nz, const tg_tensor *a,
                        const tg_tensor *b, const tg_tensor *bias, cl_mem cm, cl_long co, cl_long c_stride) {
    if (M == 0 || NC == 0 || nz == 0) return TG_OK;
    cl_kernel k = tg_cl_kernel(d, dt, id);
    if (!k) return tg_last_status();
    conv_args ca = args_of(g);
    cl_mem am = tg_cl_mem(a), bm = tg_cl_mem(b), biasm = bias ? tg_cl_mem(bias) : cm;
    cl_long ao = a->offset, bo = b->offset, biaso = bias ? bias->offset : 0;
    cl_int has_bias = bias != NULL;
    size_t ts = (size_t)d->gemm_l * 4, local[3] = { (size_t)d->gemm_l, (size_t)d->gemm_l, 1 };
    size_t global[3] = { ((size_t)NC + ts - 1) / ts * local[0], ((size_t)M + ts - 1) / ts * local[1], (size_t)nz };
    return tg_cl_launch(d, k, what,
                        TG_CL_ARGS(TG_CL_ARG(ca.ga), TG_CL_ARG(ca.gb), TG_CL_ARG(M), TG_CL_ARG(NC), TG_CL_ARG(K),
                                   TG_CL_ARG(kchunk), TG_CL_ARG(am), TG_CL_ARG(ao), TG_CL_ARG(bm), TG_CL_ARG(bo),
                                   TG_CL_ARG(biasm), TG_CL_ARG(biaso), TG_CL_ARG(has_bias), TG_CL_ARG(cm),
                                   TG_CL_ARG(co), TG_CL_ARG(c_stride)),
                        3, global, local);
}

tg_status tg_cl_conv2d(tg_tensor *out, const tg_tensor *x, const tg_tensor *w, const tg_tensor *bias,
                       const tg_conv2d_geom *g) {
    // x is (N, C, H, W), w (OC, C/groups, KH, KW), bias (OC) or NULL, out (N, OC, OH, OW)
    tg_cl_device *d = tg_cl_of(out);
    int64_t Cg = g->C / g->groups, K = Cg * g->KH * g->KW;
    return launch(d, TG_K_CONV_FWD, out->dtype, "tg_conv_fwd", g, g->OC / g->groups, g->OH * g->OW, K, K,
                  g->N * g->groups, w, x, bias, tg_cl_mem(out), out->offset, 0);
}

tg_status tg_cl_conv2d_backward_data(tg_tensor *dx, const tg_tensor *dout, const tg_tensor *w,
                                     const tg_conv2d_geom *g) {
    // dout is (N, OC, OH, OW), w (OC, C/groups, KH, KW), dx (N, C, H, W)
    tg_cl_device *d = tg_cl_of(dx);
    int64_t K = g->OC / g->groups * g->KH * g->KW;
    return launch(d, TG_K_CONV_BWD_DATA, dx->dtype, "tg_conv_bwd_data", g, g->C / g->groups, g->H * g->W, K, K,
                  g->N * g->groups, w, dout, NULL, tg_cl_mem(dx), dx->offset, 0);
}

/* How many chunks the weight gradient's K goes in: enough tiles for every compute
 * unit a few times over, each chunk at least SPLIT_MIN_K long. */
static int64_t splits(const tg_cl_device *d, int64_t M, int64_t NC, int64_t K, int64_t groups) {
    int64_t ts = (int64_t)d->gemm_l * 4, tiles = ((M + ts - 1) / ts) * ((NC + ts - 1) / ts) * groups;
    int64_t want = 4 * (int64_t)d->compute_units, n = (want + tiles - 1) / tiles, most = K / SPLIT_MIN_K;
    if (n > most) n = most;
    if (n > SPLIT_MAX) n = SPLIT_MAX;
    return n < 1 ? 1 : n;
}

tg_status tg_cl_conv2d_backward_weight(tg_tensor *dw, const tg_tensor *dout, const tg_tensor *x,
                                       const tg_conv2d_geom *g) {
    // dout is (N, OC, OH, OW), x (N, C, H, W), dw (OC, C/groups, KH, KW)
    tg_cl_device *d = tg_cl_of(dw);
    int64_t OCg = g->OC / g->groups, CgKK = g->C / g->groups * g->KH * g->KW, K = g->N * g->OH * g->OW;
    int64_t n = splits(d, OCg, CgKK, K, g->groups), kchunk = (K + n - 1) / n;
    if (n > 1) n = (K + kchunk - 1) / kchunk; /* no empty split */
    if (n == 1)
        return launch(d, TG_K_CONV_BWD_WEIGHT, dw->dtype, "tg_conv_bwd_weight", g, OCg, CgKK, K, K, g->groups, dout,
                      x, NULL, tg_cl_mem(dw), dw->offset, 0);
    cl_long total = g->OC * CgKK;
    void *part;
    tg_status st = tg_scratch(&d->base, (size_t)(n * total) * tg_elsize(dw->dtype), &part);
    if (st != TG_OK) return st;
    st = launch(d, TG_K_CONV_BWD_WEIGHT, dw->dtype, "tg_conv_bwd_weight", g, OCg, CgKK, K, kchunk, n * g->groups,
                dout, x, NULL, (cl_mem)part, 0, total);
    if (st != TG_OK) return st;
    cl_kernel k = tg_cl_kernel(d, dw->dtype, TG_K_CONV_SUM_SPLITS);
    if (!k) return tg_last_status();
    cl_mem pm = (cl_mem)part, dm = tg_cl_mem(dw);
    cl_int ns = (cl_int)n;
    cl_long dwo = dw->offset;
    return tg_cl_launch_1d(d, k, "tg_conv_sum_splits",
                           TG_CL_ARGS(TG_CL_ARG(total), TG_CL_ARG(ns), TG_CL_ARG(total), TG_CL_ARG(pm), TG_CL_ARG(dm),
                                      TG_CL_ARG(dwo)),
                           total);
}
