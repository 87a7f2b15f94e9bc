/* OpenCL reductions (sum, max, min, argmax, argmin) and log-softmax. x's axes split
 * into kept ones (one output each; out is dense in their order) and reduced ones; the
 * shape of the launch follows the work: one work-item per output when outputs are many
 * or lines short, a work-group per output otherwise, and for a few long outputs
 * several groups per output whose partials a second launch combines in a fixed order.
 * Work splits depend only on the shapes, so results repeat exactly run to run.
 * Sums write out's dtype, which may differ from x's (integer sums into i64, exactly);
 * arg ops write i32 or i64 indices. A sum over an empty axis is 0; max, min and the
 * arg ops over one are an error, as in PyTorch. */
#include <string.h>

#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

#define SERIAL_MAX_LEN 256    /* lines this short (a group would idle): one work-item each */
#define SERIAL_MIN_OUT 8192   /* this many outputs: one work-item each */
#define SERIAL_MIN_OUT_CPU 4  /* per compute unit, on a CPU device (groups there are loops) */
#define CHUNK_MIN_LEN 65536   /* split lines this long ... */
#define CHUNK_MAX_OUT 16      /* ... when there are at most this many */
#define CHUNK_LEN 16384

typedef struct {
    cl_int nk, nr;
    cl_long8 kshape, kst, rshape, rst;
    cl_long nout, R;
} red_geom;

static void push_axis(cl_int *n, cl_long8 *shape, cl_long8 *st, int64_t size, int64_t stride) {
    if (*n > 0 && st->s[*n - 1] == stride * size) {
        shape->s[*n - 1] *= size;
        st->s[*n - 1] = stride;
        return;
    }
    shape->s[*n] = size;
    st->s[*n] = stride;
    (*n)++;
}

static void red_geom_init(red_geom *g, const tg_tensor *x, uint32_t mask) {
    memset(g, 0, sizeof *g);
    g->nout = g->R = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (mask >> i & 1) g->R *= x->shape[i];
        else g->nout *= x->shape[i];
        if (x->shape[i] == 1) continue;
        if (mask >> i & 1) push_axis(&g->nr, &g->rshape, &g->rst, x->shape[i], x->strides[i]);
        else push_axis(&g->nk, &g->kshape, &g->kst, x->shape[i], x->strides[i]);
    }
}

typedef enum { SERIAL, GROUPS } red_plan;

/* One work-item per output, or groups: the first when outputs are many or short, and
 * on a CPU device for one output of a line too short to split, where a group runs on
 * one core as the item does (so the serial kernels, which a run compiles anyway for its
 * short lines, serve it rather than compiling the group kernels at a first result). */
static bool serial_fits(const tg_cl_device *d, int64_t nout, int64_t len) {
    if (tg_cl_force_reduce) return tg_cl_force_reduce == 1;
    return len <= SERIAL_MAX_LEN || nout >= SERIAL_MIN_OUT ||
           (!d->is_gpu && (nout >= SERIAL_MIN_OUT_CPU * (int64_t)d->compute_units ||
                           (nout == 1 && len < CHUNK_MIN_LEN)));
}

static red_plan plan(const tg_cl_device *d, const red_geom *g, cl_long *nchunk) {
    *nchunk = 1;
    if (tg_cl_force_reduce == 3) {
        *nchunk = g->R >= 4 ? 4 : 1;
        return GROUPS;
    }
    if (serial_fits(d, g->nout, g->R)) return SERIAL;
    if (g->nout <= CHUNK_MAX_OUT && g->R >= CHUNK_MIN_LEN) {
        *nchunk = (g->R + CHUNK_LEN - 1) / CHUNK_LEN;
        if (*nchunk > 1024) *nchunk = 1024;
    }
    return GROUPS;
}

#define RED_ARGS(g, xm, xo)                                                                            \
    TG_CL_ARG((g).nout), TG_CL_ARG((g).R), TG_CL_ARG((g).nk), TG_CL_ARG((g).kshape), TG_CL_ARG((g).kst), \
        TG_CL_ARG((g).nr), TG_CL_ARG((g).rshape), TG_CL_ARG((g).rst), TG_CL_ARG(xm), TG_CL_ARG(xo)

static tg_status groups_launch(tg_cl_device *d, cl_kernel k, const char *what, const tg_cl_arg *args, int nargs,
                               int64_t ngroups) {
    size_t local = (size_t)d->wg, global = (size_t)ngroups * local;
    return ngroups ? tg_cl_launch(d, k, what, args, nargs, 1, &global, &local) : TG_OK;
}

/* Sum, max, min: serial, or groups with partials and a final pass. */
static tg_status reduce_values(tg_cl_device *d, tg_reduce_op op, tg_tensor *out, const tg_tensor *x,
                               uint32_t mask) {
    bool sum = op == TG_RED_SUM;
    red_geom g;
    red_geom_init(&g, x, mask);
    if (g.nout == 0) return TG_OK;
    cl_long nchunk;
    red_plan p = plan(d, &g, &nchunk);
    int v = sum ? (int)out->dtype : 0;
    cl_kernel k = tg_cl_kernel_v(d, p == SERIAL ? (sum ? TG_K_SUM_SERIAL : TG_K_MM_SERIAL) : (sum ? TG_K_SUM_WG : TG_K_MM_WG),
                                 x->dtype, v);
    if (!k) return tg_last_status();
    cl_mem xm = tg_cl_mem(x), om = tg_cl_mem(out);
    cl_long xo = x->offset, oo = out->offset;
    cl_int is_max = op == TG_RED_MAX;
    if (p == SERIAL) {
        if (sum)
            return tg_cl_launch_1d(d, k, "tg_sum_serial", TG_CL_ARGS(RED_ARGS(g, xm, xo), TG_CL_ARG(om), TG_CL_ARG(oo)),
                                   g.nout);
        return tg_cl_launch_1d(d, k, "tg_mm_serial",
                               TG_CL_ARGS(TG_CL_ARG(is_max), RED_ARGS(g, xm, xo), TG_CL_ARG(om), TG_CL_ARG(oo)),
                               g.nout);
    }
    /* Partials: W or long for sums (8 bytes at most), x's dtype for max/min. */
    cl_mem pm = om;
    size_t pbytes = (size_t)(g.nout * nchunk) * (sum ? 8 : tg_elsize(x->dtype));
    tg_status st = TG_OK;
    if (nchunk > 1 && (st = tg_cl_alloc(&d->base, pbytes, (void **)&pm)) != TG_OK) return st;
    cl_long chunk = (g.R + nchunk - 1) / nchunk;
    if (sum)
        st = groups_launch(d, k, "tg_sum_wg",
                           TG_CL_ARGS(RED_ARGS(g, xm, xo), TG_CL_ARG(nchunk), TG_CL_ARG(chunk), TG_CL_ARG(om),
                                      TG_CL_ARG(oo), TG_CL_ARG(pm)),
                           g.nout * nchunk);
    else
        st = groups_launch(d, k, "tg_mm_wg",
                           TG_CL_ARGS(TG_CL_ARG(is_max), RED_ARGS(g, xm, xo), TG_CL_ARG(nchunk), TG_CL_ARG(chunk),
                                      TG_CL_ARG(om), TG_CL_ARG(oo), TG_CL_ARG(pm)),
                           g.nout * nchunk);
    if (st == TG_OK && nchunk > 1) {
        cl_kernel f = tg_cl_kernel_v(d, sum ? TG_K_SUM_FINAL : TG_K_MM_FINAL, x->dtype, v);
        if (!f) st = tg_last_status();
        else if (sum)
            st = tg_cl_launch_1d(d, f, "tg_sum_final",
                                 TG_CL_ARGS(TG_CL_ARG(g.nout), TG_CL_ARG(nchunk), TG_CL_ARG(pm), TG_CL_ARG(om),
                                            TG_CL_ARG(oo)),
                                 g.nout);
        else
            st = tg_cl_launch_1d(d, f, "tg_mm_final",
                                 TG_CL_ARGS(TG_CL_ARG(is_max), TG_CL_ARG(g.nout), TG_CL_ARG(nchunk), TG_CL_ARG(pm),
                                            TG_CL_ARG(om), TG_CL_ARG(oo)),
                                 g.nout);
    }
    if (pm != om) tg_cl_free(&d->base, pm, pbytes);
    return st;
}

/* What the kernels cannot take, as an error naming the op (never an assert: the
 * backend entry is reachable with any tensors). */
static tg_status check_reduce(tg_reduce_op op, const tg_tensor *out, const tg_tensor *x, uint32_t mask) {
    static const char *const names[] = { "tg_sum", "tg_max", "tg_min", "tg_argmax", "tg_argmin" };
    const char *name = names[op];
    char sb[128];
    bool arg = op == TG_RED_ARGMAX || op == TG_RED_ARGMIN;
    if (!tg_tensor_is_dense(out))
        return tg_error(TG_ERR_INVALID, "%s: the output must be dense, got shape %s with other strides", name,
                        tg_shape_str(sb, out->ndim, out->shape));
    if (arg && out->dtype != TG_I32 && out->dtype != TG_I64)
        return tg_error(TG_ERR_DTYPE, "%s: indices are written as i32 or i64, not %s", name, tg_dtype_name(out->dtype));
    if (op != TG_RED_SUM && !arg && out->dtype != x->dtype)
        return tg_error(TG_ERR_DTYPE, "%s: the output dtype %s differs from the input's %s", name,
                        tg_dtype_name(out->dtype), tg_dtype_name(x->dtype));
    if (op == TG_RED_SUM || tg_shape_numel(out->ndim, out->shape) == 0) return TG_OK;
    for (int i = 0; i < x->ndim; i++)
        if ((mask >> i & 1) && x->shape[i] == 0)
            return tg_error(TG_ERR_SHAPE, "%s: cannot reduce over axis %d of size 0", name, i);
    return TG_OK;
}

tg_status tg_cl_reduce(tg_reduce_op op, tg_tensor *out, const tg_tensor *x, uint32_t mask) {
    tg_cl_device *d = tg_cl_of(out);
    tg_status st = check_reduce(op, out, x, mask);
    if (st != TG_OK) return st;
    if (op != TG_RED_ARGMAX && op != TG_RED_ARGMIN) return reduce_values(d, op, out, x, mask);
    red_geom g;
    red_geom_init(&g, x, mask);
    if (g.nout == 0) return TG_OK;
    cl_long nchunk;
    red_plan p = plan(d, &g, &nchunk);
    cl_kernel k = tg_cl_kernel_v(d, p == SERIAL ? TG_K_ARG_SERIAL : TG_K_ARG_WG, x->dtype, (int)out->dtype);
    if (!k) return tg_last_status();
    cl_mem xm = tg_cl_mem(x), om = tg_cl_mem(out);
    cl_long xo = x->offset, oo = out->offset;
    cl_int is_max = op == TG_RED_ARGMAX;
    if (g.nr == 0) g.rst.s[0] = 0; /* a line of one element */
    const tg_cl_arg args[] = { TG_CL_ARG(is_max), RED_ARGS(g, xm, xo), TG_CL_ARG(om), TG_CL_ARG(oo) };
    int nargs = (int)(sizeof args / sizeof args[0]);
    if (p == SERIAL) return tg_cl_launch_1d(d, k, "tg_arg_serial", args, nargs, g.nout);
    return groups_launch(d, k, "tg_arg_wg", args, nargs, g.nout);
}

/* ---------------------------------------------------------------- log-softmax */

tg_status tg_cl_log_softmax(tg_tensor *out, const tg_tensor *x, int axis) {
    tg_cl_device *d = tg_cl_of(out);
    cl_int nk = 0;
    cl_long8 kshape, kst, kso;
    memset(&kshape, 0, sizeof kshape);
    memset(&kst, 0, sizeof kst);
    memset(&kso, 0, sizeof kso);
    cl_long nlines = 1, len = x->shape[axis], xa = x->strides[axis], oa = out->strides[axis];
    for (int i = 0; i < x->ndim; i++) {
        if (i == axis) continue;
        nlines *= x->shape[i];
        if (x->shape[i] == 1) continue;
        if (nk > 0 && kst.s[nk - 1] == x->strides[i] * x->shape[i] && kso.s[nk - 1] == out->strides[i] * x->shape[i]) {
            kshape.s[nk - 1] *= x->shape[i];
            kst.s[nk - 1] = x->strides[i];
            kso.s[nk - 1] = out->strides[i];
            continue;
        }
        kshape.s[nk] = x->shape[i];
        kst.s[nk] = x->strides[i];
        kso.s[nk] = out->strides[i];
        nk++;
    }
    if (nlines == 0 || len == 0) return TG_OK;
    bool serial = serial_fits(d, nlines, len);
    if (!tg_is_float(x->dtype) || out->dtype != x->dtype)
        return tg_error(TG_ERR_DTYPE, "tg_log_softmax: expected a floating dtype (f32 or f64), got %s",
                        tg_dtype_name(x->dtype));
    cl_kernel k = tg_cl_kernel(d, x->dtype, serial ? TG_K_LSM_SERIAL : TG_K_LSM_WG);
    if (!k) return tg_last_status();
    cl_mem xm = tg_cl_mem(x), om = tg_cl_mem(out);
    cl_long xo = x->offset, oo = out->offset;
    const tg_cl_arg args[] = { TG_CL_ARG(nlines), TG_CL_ARG(len), TG_CL_ARG(nk), TG_CL_ARG(kshape), TG_CL_ARG(kst),
                               TG_CL_ARG(kso), TG_CL_ARG(xm), TG_CL_ARG(xo), TG_CL_ARG(xa), TG_CL_ARG(om),
                               TG_CL_ARG(oo), TG_CL_ARG(oa) };
    int nargs = (int)(sizeof args / sizeof args[0]);
    if (serial) return tg_cl_launch_1d(d, k, "tg_lsm_serial", args, nargs, nlines);
    return groups_launch(d, k, "tg_lsm_wg", args, nargs, nlines);
}
