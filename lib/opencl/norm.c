/* OpenCL batch, layer and group norm, forward and backward (kernels/norm.cl), with the
 * formulas and argument rules of lib/cpu/norm.c. The three share one shape: statistics
 * over "sets" (a channel for batch norm, an (n, group) pair for group norm, a row for
 * layer norm as one group of C elements with S = 1), each reduced by one work-group in
 * a fixed order, so results repeat run to run. Forward: the statistics pass (with the
 * running-stat update of batch norm in training), then an elementwise pass that reads
 * them in W from the thread's scratch buffer. Backward: per-set sums of g*w and
 * g*w*xhat to scratch, an elementwise dx pass, and per-channel dweight and dbias. */
#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

typedef struct {
    cl_long8 ng;
    cl_int bn;
    int64_t nsets, numel;
} norm_shape;

static norm_shape shape_of(const tg_norm_params *p, bool bn) {
    norm_shape s = { .bn = bn };
    int64_t G = bn ? 1 : p->groups, M = bn ? p->N * p->S : p->C / G * p->S;
    cl_long v[8] = { p->N, p->C, p->S, G, M, bn ? p->S : M, bn ? p->C * p->S : 0, bn ? p->S : M };
    for (int i = 0; i < 8; i++) s.ng.s[i] = v[i];
    s.nsets = bn ? p->C : p->N * G;
    s.numel = p->N * p->C * p->S;
    return s;
}

/* A per-channel tensor as the kernels take it: buffer, offset, stride (dflt stands in
 * for an absent one, never read). */
typedef struct {
    cl_mem m;
    cl_long o, s;
} vec;

static vec vec_of(const tg_tensor *t, cl_mem dflt) {
    if (!t) return (vec){ dflt, 0, 0 };
    return (vec){ tg_cl_mem(t), t->offset, t->ndim == 1 ? t->strides[0] : 1 };
}
#define VARG(v) TG_CL_ARG((v).m), TG_CL_ARG((v).o), TG_CL_ARG((v).s)

/* A W argument: double where the programs have fp64, else float. */
typedef struct {
    cl_double d;
    cl_float f;
} wscalar;
static wscalar w_of(double v) { return (wscalar){ v, (cl_float)v }; }
static tg_cl_arg warg(const tg_cl_device *d, const wscalar *w) {
    return d->fp64 ? (tg_cl_arg){ sizeof w->d, &w->d } : (tg_cl_arg){ sizeof w->f, &w->f };
}
static size_t w_size(const tg_cl_device *d) { return d->fp64 ? sizeof(cl_double) : sizeof(cl_float); }

static tg_status groups(tg_cl_device *d, cl_kernel k, const char *what, const tg_cl_arg *args, int nargs, int64_t n) {
    size_t local = (size_t)d->wg, global = (size_t)n * local;
    return n ? tg_cl_launch(d, k, what, args, nargs, 1, &global, &local) : TG_OK;
}

/* The forward of all three; running stats only for batch norm. */
static tg_status forward(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, tg_tensor *running_mean,
                         tg_tensor *running_var, const tg_tensor *x, const tg_tensor *weight, const tg_tensor *bias,
                         const tg_norm_params *p, bool bn) {
    tg_cl_device *d = tg_cl_of(x);
    tg_dtype dt = x->dtype;
    cl_kernel ks = tg_cl_kernel(d, dt, TG_K_NORM_STATS), ka = ks ? tg_cl_kernel(d, dt, TG_K_NORM_APPLY) : NULL;
    if (!ka) return tg_last_status();
    norm_shape sh = shape_of(p, bn);
    void *ws;
    tg_status st = tg_scratch(&d->base, (size_t)(sh.nsets ? 2 * sh.nsets : 1) * w_size(d), &ws);
    if (st != TG_OK) return st;
    cl_mem xm = tg_cl_mem(x), wsm = (cl_mem)ws, om = tg_cl_mem(out);
    cl_long xo = x->offset, oo = out->offset;
    vec sm = vec_of(save_mean, xm), si = vec_of(save_invstd, xm), rm = vec_of(running_mean, xm),
        rv = vec_of(running_var, xm), w = vec_of(weight, xm), b = vec_of(bias, xm);
    cl_int training = !bn || p->training, has_rm = running_mean != NULL, has_rv = running_var != NULL;
    cl_int has_w = weight != NULL, has_b = bias != NULL;
    wscalar mom = w_of(p->momentum), eps = w_of(p->eps);
    st = groups(d, ks, "tg_norm_stats",
                TG_CL_ARGS(TG_CL_ARG(sh.ng), TG_CL_ARG(xm), TG_CL_ARG(xo), VARG(sm), VARG(si), TG_CL_ARG(wsm),
                           TG_CL_ARG(training), TG_CL_ARG(has_rm), VARG(rm), TG_CL_ARG(has_rv), VARG(rv),
                           warg(d, &mom), warg(d, &eps)),
                sh.nsets);
    if (st != TG_OK) return st;
    return tg_cl_launch_1d(d, ka, "tg_norm_apply",
                           TG_CL_ARGS(TG_CL_ARG(sh.ng), TG_CL_ARG(sh.bn), TG_CL_ARG(xm), TG_CL_ARG(xo), TG_CL_ARG(wsm),
                                      TG_CL_ARG(has_w), VARG(w), TG_CL_ARG(has_b), VARG(b), TG_CL_ARG(om),
                                      TG_CL_ARG(oo)),
                           sh.numel);
}

/* dx (when wanted): the per-set sums first unless the statistics were fixed. */
static tg_status backward_dx(tg_cl_device *d, const norm_shape *sh, bool training, tg_tensor *dx,
                             const tg_tensor *dout, const tg_tensor *x, const tg_tensor *weight, vec sm, vec si) {
    tg_dtype dt = x->dtype;
    cl_kernel kd = tg_cl_kernel(d, dt, TG_K_NORM_DX);
    if (!kd) return tg_last_status();
    cl_mem gm = tg_cl_mem(dout), xm = tg_cl_mem(x), wsm = xm, dm = tg_cl_mem(dx);
    cl_long go = dout->offset, xo = x->offset, dxo = dx->offset;
    vec w = vec_of(weight, xm);
    cl_int has_w = weight != NULL, tr = training;
    if (training) {
        cl_kernel kb = tg_cl_kernel(d, dt, TG_K_NORM_BSUMS);
        void *ws;
        tg_status st = kb ? tg_scratch(&d->base, (size_t)(sh->nsets ? 2 * sh->nsets : 1) * w_size(d), &ws)
                          : tg_last_status();
        if (st != TG_OK) return st;
        wsm = (cl_mem)ws;
        st = groups(d, kb, "tg_norm_bsums",
                    TG_CL_ARGS(TG_CL_ARG(sh->ng), TG_CL_ARG(sh->bn), TG_CL_ARG(gm), TG_CL_ARG(go), TG_CL_ARG(xm),
                               TG_CL_ARG(xo), VARG(sm), VARG(si), TG_CL_ARG(has_w), VARG(w), TG_CL_ARG(wsm)),
                    sh->nsets);
        if (st != TG_OK) return st;
    }
    return tg_cl_launch_1d(d, kd, "tg_norm_dx",
                           TG_CL_ARGS(TG_CL_ARG(sh->ng), TG_CL_ARG(sh->bn), TG_CL_ARG(tr), TG_CL_ARG(gm), TG_CL_ARG(go),
                                      TG_CL_ARG(xm), TG_CL_ARG(xo), VARG(sm), VARG(si), TG_CL_ARG(has_w), VARG(w),
                                      TG_CL_ARG(wsm), TG_CL_ARG(dm), TG_CL_ARG(dxo)),
                           sh->numel);
}

static tg_status backward(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                          const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                          const tg_tensor *save_invstd, const tg_norm_params *p, bool bn) {
    tg_cl_device *d = tg_cl_of(x);
    norm_shape sh = shape_of(p, bn);
    cl_mem xm = tg_cl_mem(x);
    vec sm = vec_of(save_mean, xm), si = vec_of(save_invstd, xm);
    tg_status st = dx ? backward_dx(d, &sh, !bn || p->training, dx, dout, x, weight, sm, si) : TG_OK;
    if (st != TG_OK || (!dweight && !dbias)) return st;
    cl_kernel k = tg_cl_kernel(d, x->dtype, TG_K_NORM_DWB);
    if (!k) return tg_last_status();
    cl_mem gm = tg_cl_mem(dout);
    cl_long go = dout->offset, xo = x->offset;
    vec dw = vec_of(dweight, xm), db = vec_of(dbias, xm);
    cl_int has_dw = dweight != NULL, has_db = dbias != NULL;
    return groups(d, k, "tg_norm_dwb",
                  TG_CL_ARGS(TG_CL_ARG(sh.ng), TG_CL_ARG(sh.bn), TG_CL_ARG(gm), TG_CL_ARG(go), TG_CL_ARG(xm),
                             TG_CL_ARG(xo), VARG(sm), VARG(si), TG_CL_ARG(has_dw), VARG(dw), TG_CL_ARG(has_db),
                             VARG(db)),
                  p->C);
}

/* Layer norm as group norm of one group over rows of C elements. */
static tg_norm_params ln_as_group(const tg_norm_params *p) {
    tg_norm_params q = *p;
    q.groups = 1;
    q.S = 1;
    return q;
}

tg_status tg_cl_batch_norm(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, tg_tensor *running_mean,
                           tg_tensor *running_var, const tg_tensor *x, const tg_tensor *weight, const tg_tensor *bias,
                           const tg_norm_params *p) {
    return forward(out, save_mean, save_invstd, running_mean, running_var, x, weight, bias, p, true);
}

tg_status tg_cl_batch_norm_backward(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                                    const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                                    const tg_tensor *save_invstd, const tg_norm_params *p) {
    return backward(dx, dweight, dbias, dout, x, weight, save_mean, save_invstd, p, true);
}

tg_status tg_cl_layer_norm(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, const tg_tensor *x,
                           const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p) {
    tg_norm_params q = ln_as_group(p);
    return forward(out, save_mean, save_invstd, NULL, NULL, x, weight, bias, &q, false);
}

tg_status tg_cl_layer_norm_backward(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                                    const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                                    const tg_tensor *save_invstd, const tg_norm_params *p) {
    tg_norm_params q = ln_as_group(p);
    return backward(dx, dweight, dbias, dout, x, weight, save_mean, save_invstd, &q, false);
}

tg_status tg_cl_group_norm(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, const tg_tensor *x,
                           const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p) {
    return forward(out, save_mean, save_invstd, NULL, NULL, x, weight, bias, p, false);
}

tg_status tg_cl_group_norm_backward(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,
                                    const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,
                                    const tg_tensor *save_invstd, const tg_norm_params *p) {
    return backward(dx, dweight, dbias, dout, x, weight, save_mean, save_invstd, p, false);
}
