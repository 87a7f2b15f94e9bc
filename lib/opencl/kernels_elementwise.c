/* OpenCL elementwise launches: fill, copy/cast, unary, binary, where, arange, random.
 * Unary, binary and comparison kernels take the op as their first argument, so one
 * kernel per dtype serves many (unary: two, the transcendental ops apart); random has a
 * kernel per kind. Geometry goes to the kernels as (nd, shape, per-operand offset and strides), after
 * merging axes, so dense operands take the one-axis path. An empty output returns
 * before any kernel is looked up (so nothing is compiled for it). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/graph/error.h"
#include "lib/opencl/opencl.h"

_Static_assert(TG_UN_COUNT == 19 && TG_BIN_COUNT == 13 && TG_BIN_FIRST_CMP == 7,
               "kernels/elementwise.cl numbers the ops as lib/graph/backend.h does");

/* A scalar argument in the kernel's W (double where the device has fp64) or CT type. */
typedef union {
    cl_float f;
    cl_double d;
    cl_int i;
    cl_uchar u;
    cl_long l;
} scalar;

/* The CPU path's store() into i64: truncates, saturates, NaN becomes 0. */
static cl_long sat_i64(double v) {
    return v != v ? 0 : v >= 0x1p63 ? INT64_MAX : v <= -0x1p63 ? INT64_MIN : (cl_long)v;
}

/* v is an integer that i64 holds exactly. */
static bool integral(double v) { return v == floor(v) && v >= -0x1p63 && v < 0x1p63; }

static int64_t numel_of(const tg_tensor *t) { return tg_shape_numel(t->ndim, t->shape); }

static tg_cl_arg as_float(scalar *s, double v, bool dbl) {
    if (dbl) {
        s->d = v;
        return (tg_cl_arg){ sizeof s->d, &s->d };
    }
    s->f = (cl_float)v;
    return (tg_cl_arg){ sizeof s->f, &s->f };
}

static tg_cl_arg wide(const tg_cl_device *d, scalar *s, double v) { return as_float(s, v, d->fp64); }

/* The CPU path's store(): integers saturate, NaN becomes 0. */
static tg_cl_arg element(scalar *s, tg_dtype dt, double v) {
    switch (dt) {
    case TG_F32: return as_float(s, v, false);
    case TG_F64: return as_float(s, v, true);
    case TG_I32:
        s->i = v != v ? 0 : v >= 2147483647.0 ? INT32_MAX : v <= -2147483648.0 ? INT32_MIN : (cl_int)v;
        return (tg_cl_arg){ sizeof s->i, &s->i };
    case TG_I64:
        s->l = sat_i64(v);
        return (tg_cl_arg){ sizeof s->l, &s->l };
    default:
        s->u = v != v || v <= 0 ? 0 : v >= 255 ? 255 : (cl_uchar)v;
        return (tg_cl_arg){ sizeof s->u, &s->u };
    }
}

/* The device takes clEnqueueFillBuffer (OpenCL 1.2). */
static bool has_fill_buffer(const tg_cl_device *d) {
    int major = 1, minor = 0;
    sscanf(d->c_version, "OpenCL C %d.%d", &major, &minor);
    return major > 1 || (major == 1 && minor >= 2);
}

tg_status tg_cl_fill(tg_tensor *out, double value) {
    tg_cl_device *d = tg_cl_of(out);
    if (numel_of(out) == 0) return TG_OK;
    if (tg_tensor_is_dense(out) && has_fill_buffer(d)) {
        /* The driver's own fill: nothing to compile, and the vendor's fastest path. */
        scalar v;
        tg_cl_arg pat = element(&v, out->dtype, value);
        size_t es = tg_elsize(out->dtype);
        cl_int e = clEnqueueFillBuffer(d->queue, tg_cl_mem(out), pat.value, pat.size, (size_t)out->offset * es,
                                       (size_t)numel_of(out) * es, 0, NULL, NULL);
        tg_cl_count_launch(d);
        return e == CL_SUCCESS ? TG_OK : tg_cl_fail(d, "clEnqueueFillBuffer", e);
    }
    cl_kernel k = tg_cl_kernel(d, out->dtype, TG_K_FILL);
    if (!k) return tg_last_status();
    tg_cl_geom g;
    tg_cl_geom_init(&g, out->ndim, out->shape, 1, (const tg_tensor *[]){ out });
    cl_mem om = tg_cl_mem(out);
    cl_long oo = out->offset, n = g.numel;
    scalar v;
    return tg_cl_launch_1d(d, k, "tg_fill",
                           TG_CL_ARGS(TG_CL_ARG(n), TG_CL_ARG(g.nd), TG_CL_ARG(g.shape), TG_CL_ARG(om),
                                      TG_CL_ARG(oo), TG_CL_ARG(g.st[0]), element(&v, out->dtype, value)),
                           n);
}

tg_status tg_cl_copy(tg_tensor *out, const tg_tensor *x) {
    tg_cl_device *d = tg_cl_of(out);
    int64_t numel = tg_shape_numel(out->ndim, out->shape);
    if (numel == 0) return TG_OK;
    bool same = tg_cl_mem(out) == tg_cl_mem(x);
    if (same && out->offset == x->offset && out->dtype == x->dtype &&
        memcmp(out->strides, x->strides, sizeof out->strides[0] * (size_t)out->ndim) == 0)
        return TG_OK;
    /* Dense to dense in one buffer copy, unless the ranges overlap (CL_MEM_COPY_OVERLAP). */
    if (out->dtype == x->dtype && tg_tensor_is_dense(out) && tg_tensor_is_dense(x) &&
        (!same || out->offset >= x->offset + numel || x->offset >= out->offset + numel)) {
        size_t es = tg_elsize(out->dtype);
        cl_int e = clEnqueueCopyBuffer(d->queue, tg_cl_mem(x), tg_cl_mem(out), (size_t)x->offset * es,
                                       (size_t)out->offset * es, (size_t)numel * es, 0, NULL, NULL);
        tg_cl_count_launch(d);
        return e == CL_SUCCESS ? TG_OK : tg_cl_fail(d, "clEnqueueCopyBuffer", e);
    }
    bool convert = out->dtype != x->dtype;
    cl_kernel k = convert ? tg_cl_copy_kernel(d, out->dtype, x->dtype) : tg_cl_kernel(d, out->dtype, TG_K_COPY);
    if (!k) return tg_last_status();
    tg_cl_geom g;
    tg_cl_geom_init(&g, out->ndim, out->shape, 2, (const tg_tensor *[]){ out, x });
    cl_mem om = tg_cl_mem(out), xm = tg_cl_mem(x);
    cl_long oo = out->offset, xo = x->offset, n = g.numel;
    cl_int in_dt = (cl_int)x->dtype;
    if (convert) /* tg_convert takes the input's dtype first */
        return tg_cl_launch_1d(d, k, "tg_convert",
                               TG_CL_ARGS(TG_CL_ARG(in_dt), TG_CL_ARG(n), TG_CL_ARG(g.nd), TG_CL_ARG(g.shape),
                                          TG_CL_ARG(om), TG_CL_ARG(oo), TG_CL_ARG(g.st[0]), TG_CL_ARG(xm),
                                          TG_CL_ARG(xo), TG_CL_ARG(g.st[1])),
                               n);
    return tg_cl_launch_1d(d, k, "tg_copy",
                           TG_CL_ARGS(TG_CL_ARG(n), TG_CL_ARG(g.nd), TG_CL_ARG(g.shape), TG_CL_ARG(om),
                                      TG_CL_ARG(oo), TG_CL_ARG(g.st[0]), TG_CL_ARG(xm), TG_CL_ARG(xo),
                                      TG_CL_ARG(g.st[1])),
                           n);
}

tg_status tg_cl_unary(tg_unary_op op, tg_tensor *out, const tg_tensor *x, double p0, double p1) {
    tg_cl_device *d = tg_cl_of(out);
    if (numel_of(out) == 0) return TG_OK;
    bool math = op == TG_UN_EXP || op == TG_UN_LOG || op == TG_UN_SIGMOID || op == TG_UN_TANH || op == TG_UN_SIN ||
                op == TG_UN_COS || op == TG_UN_POW_SCALAR; /* unary_math of elementwise.cl */
    cl_kernel k = tg_cl_kernel(d, x->dtype, math ? TG_K_UNARY_MATH : TG_K_UNARY);
    if (!k) return tg_last_status();
    tg_cl_geom g;
    tg_cl_geom_init(&g, out->ndim, out->shape, 2, (const tg_tensor *[]){ out, x });
    cl_mem om = tg_cl_mem(out), xm = tg_cl_mem(x);
    cl_long oo = out->offset, xo = x->offset, n = g.numel;
    /* CT: the dtype itself for floats, W for integers; i64 takes integral scalars exactly. */
    bool dbl = x->dtype == TG_F64 || (!tg_is_float(x->dtype) && d->fp64);
    cl_long lp0 = sat_i64(p0), lp1 = sat_i64(p1);
    cl_int exact = integral(p0) && integral(p1);
    if ((op == TG_UN_CLAMP || op == TG_UN_STEP) && p0 == p0 && p1 == p1) {
        /* An integer x against any bound compares exactly with an integral one: x >= lo
         * iff x >= ceil(lo), x <= hi iff x <= floor(hi), x > t iff x > floor(t); an
         * infinite bound saturates. So these stay exact, as on the CPU. */
        lp0 = sat_i64(op == TG_UN_CLAMP ? ceil(p0) : floor(p0));
        lp1 = sat_i64(floor(p1));
        exact = 1;
    }
    scalar s0, s1;
    cl_int code = (cl_int)op;
    return tg_cl_launch_1d(d, k, math ? "tg_unary_math" : "tg_unary",
                           TG_CL_ARGS(TG_CL_ARG(code), as_float(&s0, p0, dbl), as_float(&s1, p1, dbl), TG_CL_ARG(lp0), TG_CL_ARG(lp1),
                                      TG_CL_ARG(exact), TG_CL_ARG(n),
                                      TG_CL_ARG(g.nd), TG_CL_ARG(g.shape), TG_CL_ARG(om), TG_CL_ARG(oo),
                                      TG_CL_ARG(g.st[0]), TG_CL_ARG(xm), TG_CL_ARG(xo), TG_CL_ARG(g.st[1])),
                           n);
}

tg_status tg_cl_binary(tg_binary_op op, tg_tensor *out, const tg_tensor *a, const tg_tensor *b) {
    tg_cl_device *d = tg_cl_of(out);
    bool cmp = op >= TG_BIN_FIRST_CMP;
    if (numel_of(out) == 0) return TG_OK;
    cl_kernel k = tg_cl_kernel(d, a->dtype, cmp ? TG_K_COMPARE : op == TG_BIN_POW ? TG_K_BINARY_POW : TG_K_BINARY);
    if (!k) return tg_last_status();
    tg_cl_geom g;
    tg_cl_geom_init(&g, out->ndim, out->shape, 3, (const tg_tensor *[]){ out, a, b });
    cl_mem om = tg_cl_mem(out), am = tg_cl_mem(a), bm = tg_cl_mem(b);
    cl_long oo = out->offset, ao = a->offset, bo = b->offset, n = g.numel;
    cl_int code = (cl_int)op;
    return tg_cl_launch_1d(d, k, cmp ? "tg_compare" : op == TG_BIN_POW ? "tg_binary_pow" : "tg_binary",
                           TG_CL_ARGS(TG_CL_ARG(code), TG_CL_ARG(n), TG_CL_ARG(g.nd), TG_CL_ARG(g.shape),
                                      TG_CL_ARG(om), TG_CL_ARG(oo), TG_CL_ARG(g.st[0]), TG_CL_ARG(am),
                                      TG_CL_ARG(ao), TG_CL_ARG(g.st[1]), TG_CL_ARG(bm), TG_CL_ARG(bo),
                                      TG_CL_ARG(g.st[2])),
                           n);
}

tg_status tg_cl_axpy(tg_tensor *dst, double alpha, const tg_tensor *x) {
    tg_cl_device *d = tg_cl_of(dst);
    if (numel_of(dst) == 0) return TG_OK;
    cl_kernel k = tg_cl_kernel(d, dst->dtype, TG_K_AXPY);
    if (!k) return tg_last_status();
    tg_cl_geom g;
    tg_cl_geom_init(&g, dst->ndim, dst->shape, 2, (const tg_tensor *[]){ dst, x });
    cl_mem om = tg_cl_mem(dst), xm = tg_cl_mem(x);
    cl_long oo = dst->offset, xo = x->offset, n = g.numel;
    scalar a;
    return tg_cl_launch_1d(d, k, "tg_axpy",
                           TG_CL_ARGS(TG_CL_ARG(n), TG_CL_ARG(g.nd), TG_CL_ARG(g.shape), TG_CL_ARG(om),
                                      TG_CL_ARG(oo), TG_CL_ARG(g.st[0]), TG_CL_ARG(xm), TG_CL_ARG(xo),
                                      TG_CL_ARG(g.st[1]), element(&a, dst->dtype, alpha)),
                           n);
}

tg_status tg_cl_where(tg_tensor *out, const tg_tensor *c, const tg_tensor *a, const tg_tensor *b) {
    tg_cl_device *d = tg_cl_of(out);
    if (numel_of(out) == 0) return TG_OK;
    cl_kernel k = tg_cl_kernel(d, out->dtype, TG_K_WHERE);
    if (!k) return tg_last_status();
    tg_cl_geom g;
    tg_cl_geom_init(&g, out->ndim, out->shape, 4, (const tg_tensor *[]){ out, c, a, b });
    cl_mem om = tg_cl_mem(out), cm = tg_cl_mem(c), am = tg_cl_mem(a), bm = tg_cl_mem(b);
    cl_long oo = out->offset, co = c->offset, ao = a->offset, bo = b->offset, n = g.numel;
    return tg_cl_launch_1d(d, k, "tg_where",
                           TG_CL_ARGS(TG_CL_ARG(n), TG_CL_ARG(g.nd), TG_CL_ARG(g.shape), TG_CL_ARG(om),
                                      TG_CL_ARG(oo), TG_CL_ARG(g.st[0]), TG_CL_ARG(cm), TG_CL_ARG(co),
                                      TG_CL_ARG(g.st[1]), TG_CL_ARG(am), TG_CL_ARG(ao), TG_CL_ARG(g.st[2]),
                                      TG_CL_ARG(bm), TG_CL_ARG(bo), TG_CL_ARG(g.st[3])),
                           n);
}

tg_status tg_cl_arange(tg_tensor *out, double start, double step) {
    tg_cl_device *d = tg_cl_of(out);
    if (out->ndim != 1 || (out->shape[0] > 1 && out->strides[0] != 1))
        return tg_error(TG_ERR_INVALID, "tg_arange: the output must be dense and 1-D, got %d dimensions", out->ndim);
    if (out->shape[0] == 0) return TG_OK;
    cl_kernel k = tg_cl_kernel(d, out->dtype, TG_K_ARANGE);
    if (!k) return tg_last_status();
    cl_mem om = tg_cl_mem(out);
    cl_long oo = out->offset, n = out->shape[0], ls = sat_i64(start), lst = sat_i64(step);
    cl_int exact = integral(start) && integral(step); /* i64: start + i * step in 64-bit integers */
    scalar s0, s1;
    return tg_cl_launch_1d(d, k, "tg_arange",
                           TG_CL_ARGS(TG_CL_ARG(n), TG_CL_ARG(om), TG_CL_ARG(oo), wide(d, &s0, start),
                                      wide(d, &s1, step), TG_CL_ARG(ls), TG_CL_ARG(lst), TG_CL_ARG(exact)),
                           n);
}

tg_status tg_cl_random(tg_rng_kind kind, tg_tensor *out, uint64_t seed, uint64_t counter, double p0, double p1) {
    tg_cl_device *d = tg_cl_of(out);
    if (numel_of(out) == 0) return TG_OK;
    tg_cl_kernel_id id = kind == TG_RNG_UNIFORM  ? TG_K_RANDOM_UNIFORM
                         : kind == TG_RNG_NORMAL ? TG_K_RANDOM_NORMAL
                                                 : TG_K_RANDOM_BERNOULLI;
    cl_kernel k = tg_cl_kernel(d, out->dtype, id);
    if (!k) return tg_last_status();
    /* Strides unmerged: element i is the i-th in out's row-major order whatever they are. */
    tg_cl_geom g;
    memset(&g, 0, sizeof g);
    g.nd = out->ndim > 0 ? out->ndim : 1;
    g.shape.s[0] = 1;
    for (int i = 0; i < out->ndim; i++) g.shape.s[i] = out->shape[i], g.st[0].s[i] = out->strides[i];
    cl_mem om = tg_cl_mem(out);
    cl_long oo = out->offset, n = numel_of(out);
    cl_ulong cs = seed, cc = counter;
    /* u < p with u = k 2^-24 is k < ceil(p 2^24): exact without fp64. */
    double t = kind == TG_RNG_BERNOULLI ? ceil(p0 * 16777216.0) : 0;
    cl_uint threshold = t <= 0 ? 0 : t >= 16777216.0 ? 16777216u : (cl_uint)t;
    scalar s0, s1;
    return tg_cl_launch_1d(d, k, "tg_random",
                           TG_CL_ARGS(TG_CL_ARG(n), TG_CL_ARG(g.nd), TG_CL_ARG(g.shape), TG_CL_ARG(om),
                                      TG_CL_ARG(oo), TG_CL_ARG(g.st[0]), TG_CL_ARG(cs),
                                      TG_CL_ARG(cc), wide(d, &s0, p0), wide(d, &s1, p1), TG_CL_ARG(threshold)),
                           n);
}
