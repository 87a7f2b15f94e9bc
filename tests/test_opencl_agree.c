/* Cross-device agreement: every op family run on the CPU and on the OpenCL device from
 * the same inputs (contiguous and as transposed, flipped and strided views), compared
 * value by value; conv2d, pooling and normalization forward and backward; random
 * tensors from the same seed; a short MLP training run on both. The CPU path is the
 * reference. Without an OpenCL device the program exits 77 (meson: skipped). */
#include "opencl_check.h"
#include "lib/opencl/opencl.h"

/* Views applied identically on both devices. */
enum { V_DENSE, V_TRANSPOSED, V_FLIPPED, V_STRIDED, V_COUNT };
static const char *const k_views[V_COUNT] = { "dense", "transposed", "flipped", "strided" };

/* x has shape s (2-D or more); the view has shape s too, with other strides. The
 * transposed and strided variants need x made with the matching "base" shape. */
static tg_shape base_shape(tg_shape s, int view) {
    int nd = s.ndim;
    if (view == V_TRANSPOSED) {
        int64_t t = s.dims[nd - 1];
        s.dims[nd - 1] = s.dims[nd - 2];
        s.dims[nd - 2] = t;
    } else if (view == V_STRIDED) {
        s.dims[nd - 1] = 2 * s.dims[nd - 1] + 1;
    }
    return s;
}

static tg_tensor *apply_view(tg_tensor *x, int view) {
    switch (view) {
    case V_TRANSPOSED: return tg_transpose(x, -1, -2);
    case V_FLIPPED: return tg_flip(x, TG_AXES(0, -1));
    case V_STRIDED: return tg_slice(x, -1, 1, INT64_MAX, 2);
    default: return x;
    }
}

/* An input of shape s seen through `view`: the CPU tensor in *c, the device's in *d. */
static void input_pair(tg_device *dev, tg_dtype dt, tg_shape s, int view, double lo, double hi, uint32_t seed,
                       tg_tensor **c, tg_tensor **d) {
    tg_tensor *base = host_uniform(dt, base_shape(s, view), lo, hi, seed);
    *c = apply_view(base, view);
    *d = apply_view(tg_to(base, dev), view);
}

static const char *dtype_label(tg_dtype dt) { return tg_dtype_name(dt); }

/* ------------------------------------------------------------------ elementwise */

typedef struct {
    const char *name;
    tg_tensor *(*fn)(tg_tensor *);
    double lo, hi;
} unary_case;

static tg_tensor *leaky(tg_tensor *x) { return tg_leaky_relu(x, 0.1); }
static tg_tensor *pow3(tg_tensor *x) { return tg_pow_scalar(x, 3); }
static tg_tensor *powhalf(tg_tensor *x) { return tg_pow_scalar(x, 0.5); }
static tg_tensor *addsc(tg_tensor *x) { return tg_add_scalar(x, 1.25); }
static tg_tensor *mulsc(tg_tensor *x) { return tg_mul_scalar(x, -0.75); }
static tg_tensor *clampc(tg_tensor *x) { return tg_clamp(x, -0.5, 0.25); }

TEST(unary_agree) {
    NEED_OPENCL(dev);
    const unary_case cs[] = {
        { "neg", tg_neg, -3, 3 },          { "exp", tg_exp, -20, 20 },        { "log", tg_log, 1e-3, 50 },
        { "sqrt", tg_sqrt, 0, 50 },        { "rsqrt", tg_rsqrt, 1e-3, 50 },   { "abs", tg_abs, -3, 3 },
        { "sign", tg_sign, -3, 3 },        { "relu", tg_relu, -3, 3 },        { "sigmoid", tg_sigmoid, -30, 30 },
        { "tanh", tg_tanh, -12, 12 },      { "sin", tg_sin, -6, 6 },          { "cos", tg_cos, -6, 6 },
        { "square", tg_square, -3, 3 },    { "reciprocal", tg_reciprocal, 0.1, 5 },
        { "leaky_relu", leaky, -3, 3 },    { "pow3", pow3, -3, 3 },           { "pow0.5", powhalf, 0, 9 },
        { "add_scalar", addsc, -3, 3 },    { "mul_scalar", mulsc, -3, 3 },    { "clamp", clampc, -1, 1 },
    };
    int ndt = has_fp64(dev) ? 2 : 1;
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int t = 0; t < ndt; t++)
            for (int v = 0; v < V_COUNT; v++) {
                tg_scope_begin();
                tg_dtype dt = t ? TG_F64 : TG_F32;
                char what[96];
                snprintf(what, sizeof what, "%s %s %s", cs[q].name, dtype_label(dt), k_views[v]);
                tg_tensor *c, *d;
                input_pair(dev, dt, TG_SHAPE(13, 37), v, cs[q].lo, cs[q].hi, 7 + (uint32_t)q, &c, &d);
                AGREE(cs[q].fn(c), cs[q].fn(d), dt == TG_F32 ? 1e-5 : 1e-12, what);
                tg_scope_end();
            }
}

TEST(binary_broadcast_agree) {
    NEED_OPENCL(dev);
    tg_tensor *(*const fns[])(tg_tensor *, tg_tensor *) = { tg_add, tg_sub, tg_mul, tg_div, tg_pow,
                                                            tg_maximum, tg_minimum, tg_eq, tg_ne, tg_lt,
                                                            tg_le, tg_gt, tg_ge };
    const char *names[] = { "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge" };
    struct {
        tg_shape a, b;
    } shapes[] = {
        { TG_SHAPE(6, 9), TG_SHAPE(6, 9) }, { TG_SHAPE(4, 1, 9), TG_SHAPE(5, 9) }, { TG_SHAPE(7, 3), TG_SHAPE(1, 3) },
        { TG_SHAPE(1), TG_SHAPE(3, 4, 5) },
    };
    int ndt = has_fp64(dev) ? 2 : 1;
    for (int f = 0; f < 13; f++)
        for (int t = 0; t < ndt; t++)
            for (int s = 0; s < 4; s++)
                for (int v = 0; v < V_COUNT; v++) {
                    if (v != V_DENSE && (shapes[s].a.ndim < 2 || shapes[s].b.ndim < 2)) continue;
                    tg_scope_begin();
                    tg_dtype dt = t ? TG_F64 : TG_F32;
                    char what[96];
                    snprintf(what, sizeof what, "%s %s shapes#%d %s", names[f], dtype_label(dt), s, k_views[v]);
                    bool pos = f == 4; /* pow: positive bases */
                    tg_tensor *ca, *da, *cb, *db;
                    /* Small integers make ties for the comparisons and maximum/minimum. */
                    double lo = pos ? 0.1 : -3, hi = 3;
                    input_pair(dev, dt, shapes[s].a, v, lo, hi, 11, &ca, &da);
                    input_pair(dev, dt, shapes[s].b, v == V_TRANSPOSED ? V_FLIPPED : v, lo, hi, 12, &cb, &db);
                    if (f >= 5 && f != 4) {
                        ca = tg_cast(tg_cast(ca, TG_I32), dt), da = tg_cast(tg_cast(da, TG_I32), dt);
                        cb = tg_cast(tg_cast(cb, TG_I32), dt), db = tg_cast(tg_cast(db, TG_I32), dt);
                    }
                    AGREE(fns[f](ca, cb), fns[f](da, db), dt == TG_F32 ? 1e-5 : 1e-12, what);
                    tg_scope_end();
                }
}

TEST(nan_and_special_values) {
    NEED_OPENCL(dev);
    double v[] = { NAN, 1, -INFINITY, INFINITY, -0.0, 3, NAN, -2 };
    double w[] = { 2, NAN, -INFINITY, 5, 0.0, 3, NAN, -7 };
    tg_tensor *a = tg_from_f64(v, TG_SHAPE(2, 4), g_cpu), *b = tg_from_f64(w, TG_SHAPE(2, 4), g_cpu);
    for (int t = 0; t < 2; t++) {
        tg_dtype dt = t ? TG_F64 : TG_F32;
        if (dt == TG_F64 && !has_fp64(dev)) continue;
        tg_tensor *ca = tg_cast(a, dt), *cb = tg_cast(b, dt), *da = tg_to(ca, dev), *db = tg_to(cb, dev);
        SAME(tg_maximum(ca, cb), tg_maximum(da, db), "maximum with NaN");
        SAME(tg_minimum(ca, cb), tg_minimum(da, db), "minimum with NaN");
        SAME(tg_eq(ca, cb), tg_eq(da, db), "eq with NaN");
        SAME(tg_relu(ca), tg_relu(da), "relu with NaN");
        SAME(tg_sign(ca), tg_sign(da), "sign with NaN");
        SAME(tg_clamp(ca, -1, 1), tg_clamp(da, -1, 1), "clamp with NaN");
        SAME(tg_max(ca, TG_AXES(1), false), tg_max(da, TG_AXES(1), false), "max propagates NaN");
        SAME(tg_min(ca, TG_AXES(0), false), tg_min(da, TG_AXES(0), false), "min propagates NaN");
        SAME(tg_argmax(ca, 1, false), tg_argmax(da, 1, false), "argmax picks the first NaN");
        SAME(tg_argmin(cb, 1, false), tg_argmin(db, 1, false), "argmin picks the first NaN");
        SAME(tg_tanh(tg_mul_scalar(ca, 1000)), tg_tanh(tg_mul_scalar(da, 1000)), "tanh saturates");
    }
}

TEST(casts_saturate_like_cpu) {
    NEED_OPENCL(dev);
    double v[] = { 0, -1.5, 2.7, 255.5, 256, 300, -300, 1e10, -1e10, NAN, INFINITY, -INFINITY, 2147483647.0, 77, 0.999, -0.999 };
    tg_tensor *src = tg_from_f64(v, TG_SHAPE(4, 4), g_cpu);
    tg_dtype dts[] = { TG_F32, TG_F64, TG_I32, TG_U8 };
    for (int i = 0; i < 4; i++)
        for (int o = 0; o < 4; o++) {
            if ((dts[i] == TG_F64 || dts[o] == TG_F64) && !has_fp64(dev)) continue;
            char what[64];
            snprintf(what, sizeof what, "cast %s -> %s", tg_dtype_name(dts[i]), tg_dtype_name(dts[o]));
            tg_tensor *c = tg_cast(src, dts[i]); /* the CPU's own conversion makes the input */
            tg_tensor *d = tg_to(c, dev);
            SAME(tg_cast(tg_transpose(c, 0, 1), dts[o]), tg_cast(tg_transpose(d, 0, 1), dts[o]), what);
            SAME(tg_cast(tg_flip(c, TG_AXES(0)), dts[o]), tg_cast(tg_flip(d, TG_AXES(0)), dts[o]), what);
        }
}

TEST(integer_and_mask_ops) {
    NEED_OPENCL(dev);
    tg_tensor *ci = host_uniform(TG_I32, TG_SHAPE(5, 8), -1000, 1000, 3), *di = tg_to(ci, dev);
    tg_tensor *cu = host_uniform(TG_U8, TG_SHAPE(5, 8), 0, 256, 4), *du = tg_to(cu, dev);
    tg_tensor *cv = host_uniform(TG_U8, TG_SHAPE(8), 0, 256, 5), *dv = tg_to(cv, dev);
    SAME(tg_add(cu, cv), tg_add(du, dv), "u8 add saturates");
    SAME(tg_sub(cu, cv), tg_sub(du, dv), "u8 sub saturates");
    SAME(tg_mul(ci, ci), tg_mul(di, di), "i32 mul");
    SAME(tg_maximum(ci, tg_flip(ci, TG_AXES(1))), tg_maximum(di, tg_flip(di, TG_AXES(1))), "i32 maximum");
    SAME(tg_lt(cu, cv), tg_lt(du, dv), "u8 lt");
    SAME(tg_sum(ci, TG_AXES(1), false), tg_sum(di, TG_AXES(1), false), "i32 sum");
    SAME(tg_sum(cu, TG_ALL, false), tg_sum(du, TG_ALL, false), "u8 sum saturates");
    SAME(tg_max(cu, TG_AXES(0), true), tg_max(du, TG_AXES(0), true), "u8 max");
    SAME(tg_argmin(ci, 0, false), tg_argmin(di, 0, false), "i32 argmin");
    tg_tensor *cm = tg_gt(cu, cv), *dm = tg_to(cm, dev);
    tg_tensor *ca = host_uniform(TG_F32, TG_SHAPE(5, 8), -1, 1, 6), *cb = host_uniform(TG_F32, TG_SHAPE(1, 8), -1, 1, 7);
    SAME(tg_where(cm, ca, cb), tg_where(dm, tg_to(ca, dev), tg_to(cb, dev)), "where");
    SAME(tg_where(cm, ci, tg_neg(ci)), tg_where(dm, di, tg_neg(di)), "where i32");
    SAME(tg_one_hot(tg_from_i32((int32_t[]){ 2, 0, 3 }, TG_SHAPE(3), g_cpu), 4),
         tg_one_hot(tg_from_i32((int32_t[]){ 2, 0, 3 }, TG_SHAPE(3), dev), 4), "one_hot");
}

TEST(creation_fill_arange) {
    NEED_OPENCL(dev);
    tg_dtype dts[] = { TG_F32, TG_F64, TG_I32, TG_U8 };
    for (int i = 0; i < 4; i++) {
        if (dts[i] == TG_F64 && !has_fp64(dev)) continue;
        char what[64];
        snprintf(what, sizeof what, "fill %s", tg_dtype_name(dts[i]));
        SAME(tg_full(dts[i], TG_SHAPE(3, 5), -7.75, g_cpu), tg_full(dts[i], TG_SHAPE(3, 5), -7.75, dev), what);
        SAME(tg_full(dts[i], TG_SHAPE(2), 1e12, g_cpu), tg_full(dts[i], TG_SHAPE(2), 1e12, dev), what);
        snprintf(what, sizeof what, "arange %s", tg_dtype_name(dts[i]));
        SAME(tg_arange(dts[i], -3, 40, 0.7, g_cpu), tg_arange(dts[i], -3, 40, 0.7, dev), what);
        SAME(tg_eye(dts[i], 5, g_cpu), tg_eye(dts[i], 5, dev), "eye");
    }
    SAME(tg_linspace(TG_F32, -1, 1, 17, g_cpu), tg_linspace(TG_F32, -1, 1, 17, dev), "linspace");
    /* Filling a strided view leaves the rest alone. */
    tg_tensor *c = tg_zeros(TG_F32, TG_SHAPE(4, 6), g_cpu), *d = tg_zeros(TG_F32, TG_SHAPE(4, 6), dev);
    CHECK(tg_fill_(tg_slice(tg_transpose(c, 0, 1), 0, 1, INT64_MAX, 2), 3) == TG_OK);
    CHECK(tg_fill_(tg_slice(tg_transpose(d, 0, 1), 0, 1, INT64_MAX, 2), 3) == TG_OK);
    SAME(c, d, "fill of a strided view");
    tg_tensor *e = tg_empty(TG_F32, TG_SHAPE(0, 3), dev);
    CHECK(e && tg_numel(e) == 0 && tg_numel(tg_sum(e, TG_AXES(0), false)) == 3);
    SAME(tg_sum(tg_empty(TG_F32, TG_SHAPE(0, 3), g_cpu), TG_AXES(0), false), tg_sum(e, TG_AXES(0), false),
         "sum over an empty axis");
}

TEST(inplace_updates_agree) {
    NEED_OPENCL(dev);
    tg_tensor *c = host_uniform(TG_F32, TG_SHAPE(6, 7), -1, 1, 21), *d = tg_to(c, dev);
    tg_tensor *s = host_uniform(TG_F32, TG_SHAPE(7), -1, 1, 22), *sd = tg_to(s, dev);
    CHECK(tg_add_(c, s) == TG_OK && tg_add_(d, sd) == TG_OK);
    CHECK(tg_axpy_(c, -0.5, tg_flip(c, TG_AXES(1))) == TG_OK && tg_axpy_(d, -0.5, tg_flip(d, TG_AXES(1))) == TG_OK);
    CHECK(tg_mul_(tg_transpose(c, 0, 1), tg_full(TG_F32, TG_SHAPE(7, 1), 3, g_cpu)) == TG_OK);
    CHECK(tg_mul_(tg_transpose(d, 0, 1), tg_full(TG_F32, TG_SHAPE(7, 1), 3, dev)) == TG_OK);
    CHECK(tg_copy_(tg_slice(c, 0, 0, INT64_MAX, 3), s) == TG_OK && tg_copy_(tg_slice(d, 0, 0, INT64_MAX, 3), sd) == TG_OK);
    AGREE(c, d, 1e-6, "in-place chain");
    tg_tensor *parts[3] = { c, tg_neg(c), tg_transpose(tg_ones(TG_F32, TG_SHAPE(7, 6), g_cpu), 0, 1) };
    tg_tensor *dparts[3] = { d, tg_neg(d), tg_transpose(tg_ones(TG_F32, TG_SHAPE(7, 6), dev), 0, 1) };
    SAME(tg_cat(3, parts, 1), tg_cat(3, dparts, 1), "cat");
    SAME(tg_pad(c, TG_PADS(1, 2, 0, 1), -5), tg_pad(d, TG_PADS(1, 2, 0, 1), -5), "pad");
}

/* ------------------------------------------------------------------ reductions */

TEST(reductions_agree) {
    NEED_OPENCL(dev);
    struct {
        tg_shape s;
        tg_axes axes;
    } cs[] = {
        { TG_SHAPE(37), TG_ALL },                { TG_SHAPE(300001), TG_ALL },          { TG_SHAPE(64, 3000), TG_AXES(1) },
        { TG_SHAPE(64, 3000), TG_AXES(0) },      { TG_SHAPE(9000, 10), TG_AXES(1) },    { TG_SHAPE(3, 4, 5, 6), TG_AXES(0, 2) },
        { TG_SHAPE(2, 70000), TG_AXES(1) },      { TG_SHAPE(5, 6, 7), TG_AXES(1) },     { TG_SHAPE(40, 50), TG_ALL },
    };
    int ndt = has_fp64(dev) ? 2 : 1;
    for (int force = 0; force < 4; force++) {
        tg_opencl_force_paths_for_test(0, 0, force);
        for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
            for (int t = 0; t < ndt; t++) {
                if (force == 1 && cs[q].s.ndim == 1 && cs[q].s.dims[0] > 100000)
                    continue; /* one work-item over 300k elements: slow and adds nothing */
                tg_scope_begin();
                tg_dtype dt = t ? TG_F64 : TG_F32;
                int view = cs[q].s.ndim >= 2 ? (q % 3 == 0 ? V_TRANSPOSED : q % 3 == 1 ? V_FLIPPED : V_STRIDED) : V_DENSE;
                tg_tensor *c, *d;
                input_pair(dev, dt, cs[q].s, view, -2, 3, 30 + (uint32_t)q, &c, &d);
                char what[96];
                double tol = dt == TG_F32 ? 1e-4 : 1e-12;
                snprintf(what, sizeof what, "sum case %d %s path %d", q, dtype_label(dt), force);
                AGREE(tg_sum(c, cs[q].axes, true), tg_sum(d, cs[q].axes, true), tol, what);
                snprintf(what, sizeof what, "max case %d %s path %d", q, dtype_label(dt), force);
                SAME(tg_max(c, cs[q].axes, false), tg_max(d, cs[q].axes, false), what);
                snprintf(what, sizeof what, "min case %d %s path %d", q, dtype_label(dt), force);
                SAME(tg_min(c, cs[q].axes, false), tg_min(d, cs[q].axes, false), what);
                if (cs[q].axes.n == 1) {
                    int ax = cs[q].axes.axes[0];
                    snprintf(what, sizeof what, "argmax case %d %s path %d", q, dtype_label(dt), force);
                    SAME(tg_argmax(c, ax, false), tg_argmax(d, ax, false), what);
                    /* Ties: the first index wins on both. */
                    tg_tensor *cr = tg_cast(tg_cast(c, TG_I32), dt), *dr = tg_to(cr, dev);
                    SAME(tg_argmin(cr, ax, true), tg_argmin(dr, ax, true), "argmin with ties");
                }
                snprintf(what, sizeof what, "mean/var case %d %s path %d", q, dtype_label(dt), force);
                AGREE(tg_var(c, cs[q].axes, 1, false), tg_var(d, cs[q].axes, 1, false), tol, what);
                tg_scope_end();
            }
    }
    tg_opencl_force_paths_for_test(0, 0, 0);
}

TEST(log_softmax_agree) {
    NEED_OPENCL(dev);
    struct {
        tg_shape s;
        int axis;
    } cs[] = { { TG_SHAPE(64, 10), 1 }, { TG_SHAPE(3, 1000), -1 }, { TG_SHAPE(7, 5, 3), 0 }, { TG_SHAPE(9000, 4), 1 },
               { TG_SHAPE(2, 3, 300), 2 } };
    int ndt = has_fp64(dev) ? 2 : 1;
    for (int force = 0; force < 3; force++) {
        tg_opencl_force_paths_for_test(0, 0, force);
        for (int q = 0; q < 5; q++)
            for (int t = 0; t < ndt; t++) {
                tg_scope_begin();
                tg_dtype dt = t ? TG_F64 : TG_F32;
                tg_tensor *c, *d;
                input_pair(dev, dt, cs[q].s, q % 2 ? V_TRANSPOSED : V_FLIPPED, -20, 20, 40 + (uint32_t)q, &c, &d);
                char what[96];
                snprintf(what, sizeof what, "log_softmax case %d %s path %d", q, dtype_label(dt), force);
                AGREE(tg_log_softmax(c, cs[q].axis), tg_log_softmax(d, cs[q].axis), dt == TG_F32 ? 1e-5 : 1e-12, what);
                AGREE(tg_softmax(c, cs[q].axis), tg_softmax(d, cs[q].axis), dt == TG_F32 ? 1e-5 : 1e-12, what);
                tg_scope_end();
            }
    }
    tg_opencl_force_paths_for_test(0, 0, 0);
    double rows[] = { -INFINITY, -INFINITY, -INFINITY, 1, 2, -INFINITY };
    tg_tensor *c = tg_from_f64(rows, TG_SHAPE(2, 3), g_cpu);
    c = tg_cast(c, TG_F32);
    /* Infinities must match exactly; finite values within the f32 tolerance. */
    AGREE(tg_log_softmax(c, 1), tg_log_softmax(tg_to(c, dev), 1), 1e-5, "log_softmax of -inf rows");
}

/* ------------------------------------------------------------------ indexing */

TEST(gather_scatter_agree) {
    NEED_OPENCL(dev);
    int ndt = has_fp64(dev) ? 2 : 1;
    for (int t = 0; t < ndt; t++) {
        tg_dtype dt = t ? TG_F64 : TG_F32;
        tg_tensor *cx, *dx;
        input_pair(dev, dt, TG_SHAPE(6, 9), V_TRANSPOSED, -1, 1, 50, &cx, &dx);
        for (int axis = 0; axis < 2; axis++) {
            int64_t lim = axis ? 9 : 6;
            tg_tensor *ci = host_uniform(TG_I32, axis ? TG_SHAPE(6, 20) : TG_SHAPE(15, 9), 0, (double)lim, 51);
            tg_tensor *di = tg_to(ci, dev);
            char what[64];
            snprintf(what, sizeof what, "gather axis %d %s", axis, dtype_label(dt));
            SAME(tg_gather(cx, axis, ci), tg_gather(dx, axis, di), what);
            tg_tensor *cs = host_uniform(dt, tg_shape_of(ci), -1, 1, 52), *ds = tg_to(cs, dev);
            for (int mode = 1; mode <= 2; mode++) {
                tg_opencl_force_paths_for_test(0, mode, 0);
                snprintf(what, sizeof what, "scatter_add axis %d %s mode %d", axis, dtype_label(dt), mode);
                /* Lines add in the CPU's order: equal. Atomics may reorder: close. */
                tg_tensor *r = tg_scatter_add(cx, axis, ci, cs), *q = tg_scatter_add(dx, axis, di, tg_flip(tg_flip(ds, TG_AXES(0)), TG_AXES(0)));
                if (mode == 1) SAME(r, q, what);
                else AGREE(r, q, dt == TG_F32 ? 1e-5 : 1e-12, what);
            }
            tg_opencl_force_paths_for_test(0, 0, 0);
        }
        SAME(tg_index_select(cx, 1, tg_from_i32((int32_t[]){ 8, 0, 2, 3 }, TG_SHAPE(4), g_cpu)),
             tg_index_select(dx, 1, tg_from_i32((int32_t[]){ 8, 0, 2, 3 }, TG_SHAPE(4), dev)), "index_select");
    }
    /* Many updates to few outputs: the atomic path under contention. */
    tg_tensor *ci = host_uniform(TG_I32, TG_SHAPE(4096, 1), 0, 3, 53), *cs = host_uniform(TG_F32, TG_SHAPE(4096, 1), 0, 1, 54);
    tg_tensor *z = tg_zeros(TG_F32, TG_SHAPE(3, 1), g_cpu);
    tg_opencl_force_paths_for_test(0, 2, 0);
    AGREE(tg_scatter_add(z, 0, ci, cs), tg_scatter_add(tg_to(z, dev), 0, tg_to(ci, dev), tg_to(cs, dev)), 1e-5,
          "scatter_add atomics under contention");
    tg_opencl_force_paths_for_test(0, 0, 0);
    /* Bad indices: the CPU's message, with the first bad index in row-major order. */
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(2, 10), dev);
    tg_tensor *bad = tg_from_i32((int32_t[]){ 3, 12, -20, 4 }, TG_SHAPE(2, 2), dev);
    CHECK_ERROR(tg_gather(x, 1, bad), "tg_gather: index 12 is out of range for axis 1 of size 10");
    for (int mode = 1; mode <= 2; mode++) {
        tg_opencl_force_paths_for_test(0, mode, 0);
        CHECK_ERROR(tg_scatter_add(x, 1, bad, tg_ones(TG_F32, TG_SHAPE(2, 2), dev)),
                    "tg_scatter_add: index 12 is out of range for axis 1 of size 10");
    }
    tg_opencl_force_paths_for_test(0, 0, 0);
    CHECK(tg_gather(x, 1, tg_from_i32((int32_t[]){ 9, 0 }, TG_SHAPE(2, 1), dev)) != NULL); /* the flag was reset */
    CHECK_ERROR(tg_gather(x, 1, tg_from_i32((int32_t[]){ 9, -10 }, TG_SHAPE(2, 1), dev)),
                "tg_gather: index -10 is out of range for axis 1 of size 10"); /* negatives never wrap */
}

/* ------------------------------------------------------------------ random */

TEST(random_same_on_both_devices) {
    NEED_OPENCL(dev);
    tg_manual_seed(2024);
    tg_tensor *cu = tg_rand(TG_F32, TG_SHAPE(333, 7), g_cpu), *cn = tg_randn(TG_F32, TG_SHAPE(1001), g_cpu);
    tg_tensor *cb = tg_bernoulli(TG_U8, TG_SHAPE(5000), 0.3, g_cpu);
    tg_tensor *cw = tg_empty(TG_F32, TG_SHAPE(40, 30), g_cpu);
    CHECK(tg_uniform_(tg_transpose(cw, 0, 1), -2, 5) == TG_OK);
    tg_manual_seed(2024);
    tg_tensor *du = tg_rand(TG_F32, TG_SHAPE(333, 7), dev), *dn = tg_randn(TG_F32, TG_SHAPE(1001), dev);
    tg_tensor *db = tg_bernoulli(TG_U8, TG_SHAPE(5000), 0.3, dev);
    tg_tensor *dw = tg_empty(TG_F32, TG_SHAPE(40, 30), dev);
    CHECK(tg_uniform_(tg_transpose(dw, 0, 1), -2, 5) == TG_OK);
    SAME(cu, du, "uniform f32 equal as floats");
    CHECK(mismatches(cn, dn, 0, 0, "normal f32 exactly") < 20); /* log/cos may differ in the last ulp */
    CHECK(mismatches(cn, dn, 1e-6, 1, "normal f32 within 1e-6") == 0);
    SAME(cb, db, "bernoulli u8");
    SAME(cw, dw, "uniform_ into a transposed view");
    if (has_fp64(dev)) {
        tg_manual_seed(99);
        tg_tensor *c64 = tg_rand(TG_F64, TG_SHAPE(500), g_cpu), *cn64 = tg_randn(TG_F64, TG_SHAPE(500), g_cpu);
        tg_manual_seed(99);
        tg_tensor *d64 = tg_rand(TG_F64, TG_SHAPE(500), dev), *dn64 = tg_randn(TG_F64, TG_SHAPE(500), dev);
        SAME(c64, d64, "uniform f64 equal");
        CHECK(mismatches(cn64, dn64, 1e-12, 1, "normal f64") == 0);
    }
    /* p = 0 and 1 are exact; a p near a 2^-24 step rounds the same way. */
    tg_manual_seed(5);
    tg_tensor *c1 = tg_bernoulli(TG_F32, TG_SHAPE(999), 0.1, g_cpu);
    tg_manual_seed(5);
    SAME(c1, tg_bernoulli(TG_F32, TG_SHAPE(999), 0.1, dev), "bernoulli f32 p=0.1");
    CHECK(tg_item(tg_sum(tg_bernoulli(TG_F32, TG_SHAPE(100), 1.0, dev), TG_ALL, false)) == 100);
    CHECK(tg_item(tg_sum(tg_bernoulli(TG_F32, TG_SHAPE(100), 0.0, dev), TG_ALL, false)) == 0);
}

/* ------------------------------------------------------------------ matmul */

TEST(matmul_agree) {
    NEED_OPENCL(dev);
    struct {
        tg_shape a, b;
    } cs[] = {
        { TG_SHAPE(64, 128), TG_SHAPE(128, 96) }, { TG_SHAPE(1, 300), TG_SHAPE(300, 1) },
        { TG_SHAPE(3, 1, 17, 33), TG_SHAPE(4, 33, 9) }, { TG_SHAPE(5, 20, 30), TG_SHAPE(30, 12) },
        { TG_SHAPE(130, 70), TG_SHAPE(70, 65) },  { TG_SHAPE(7), TG_SHAPE(2, 7, 5) },
    };
    int ndt = has_fp64(dev) ? 2 : 1;
    for (int gemm = 1; gemm <= 2; gemm++) { /* the tiled kernel, CLBlast */
        tg_opencl_force_paths_for_test(gemm, 0, 0);
        for (int q = 0; q < 6; q++)
            for (int t = 0; t < ndt; t++)
                for (int v = 0; v < V_COUNT; v++) {
                    if (v != V_DENSE && (cs[q].a.ndim < 2 || cs[q].b.ndim < 2)) continue;
                    tg_scope_begin();
                    tg_dtype dt = t ? TG_F64 : TG_F32;
                    tg_tensor *ca, *da, *cb, *db;
                    input_pair(dev, dt, cs[q].a, v, -1, 1, 60, &ca, &da);
                    input_pair(dev, dt, cs[q].b, (v + 1) % V_COUNT, -1, 1, 61, &cb, &db);
                    char what[96];
                    snprintf(what, sizeof what, "matmul case %d %s %s gemm %d", q, dtype_label(dt), k_views[v], gemm);
                    /* Sums of products of [-1,1) values: compare on the scale of the terms. */
                    CHECK(mismatches(tg_matmul(ca, cb), tg_matmul(da, db), dt == TG_F32 ? 1e-4 : 1e-11, 1, what) == 0);
                    tg_scope_end();
                }
    }
    tg_opencl_force_paths_for_test(0, 0, 0);
    tg_tensor *z = tg_matmul(tg_ones(TG_F32, TG_SHAPE(3, 0), dev), tg_ones(TG_F32, TG_SHAPE(0, 4), dev));
    SAME(tg_zeros(TG_F32, TG_SHAPE(3, 4), g_cpu), z, "matmul with K = 0");
}

/* ------------------------------------------------------------------ training */

/* A 2-layer MLP on a fixed synthetic problem; the loss of each step in losses[]. */
static bool train_mlp(tg_device *dev, int steps, double *losses) {
    tg_scope_begin();
    tg_manual_seed(7); /* parameters from the CPU's generator, moved: the same start everywhere */
    tg_tensor *w1 = tg_retain(tg_param(tg_to(tg_mul_scalar(tg_randn(TG_F32, TG_SHAPE(20, 32), g_cpu), 0.3), dev)));
    tg_tensor *b1 = tg_retain(tg_param(tg_zeros(TG_F32, TG_SHAPE(32), dev)));
    tg_tensor *w2 = tg_retain(tg_param(tg_to(tg_mul_scalar(tg_randn(TG_F32, TG_SHAPE(32, 5), g_cpu), 0.3), dev)));
    tg_tensor *b2 = tg_retain(tg_param(tg_zeros(TG_F32, TG_SHAPE(5), dev)));
    tg_tensor *x = tg_retain(tg_to(host_uniform(TG_F32, TG_SHAPE(64, 20), -1, 1, 70), dev));
    tg_tensor *y = tg_retain(tg_to(host_uniform(TG_I32, TG_SHAPE(64), 0, 5, 71), dev));
    tg_scope_end();
    tg_tensor *params[4] = { w1, b1, w2, b2 };
    bool ok = true;
    for (int s = 0; s < steps && ok; s++) {
        tg_scope_begin();
        tg_tensor *h = tg_relu(tg_add(tg_matmul(x, w1), b1));
        tg_tensor *loss = tg_cross_entropy(tg_add(tg_matmul(h, w2), b2), y);
        ok = loss && tg_backward(loss) == TG_OK;
        losses[s] = ok ? tg_item(loss) : NAN;
        bool prev = tg_set_grad_enabled(false);
        for (int i = 0; i < 4 && ok; i++) {
            ok = tg_axpy_(params[i], -0.5, tg_grad(params[i])) == TG_OK;
            tg_zero_grad(params[i]);
        }
        tg_set_grad_enabled(prev);
        tg_scope_end();
    }
    for (int i = 0; i < 4; i++) tg_release(params[i]);
    tg_release(x), tg_release(y);
    return ok;
}

TEST(mlp_training_matches_cpu) {
    NEED_OPENCL(dev);
    double lc[20], ld[20];
    CHECK(train_mlp(g_cpu, 20, lc));
    CHECK(train_mlp(dev, 20, ld));
    for (int s = 0; s < 20; s++)
        if (!(fabs(lc[s] - ld[s]) <= 1e-4 * fabs(lc[s]))) FAIL_("step %d: cpu loss %.9g, opencl %.9g", s, lc[s], ld[s]);
    CHECK(ld[19] < 0.8 * ld[0]); /* it did learn */
}

/* ------------------------------------------------------------------ conv, pooling, norm
 * Each op forward on both devices from the same host values, then the gradients of
 * sum(y * r) (r fixed random) w.r.t. every input: the CPU's kernels are the reference. */

typedef tg_tensor *(*op_fn)(tg_tensor **in, const void *ctx);

/* Inputs of the given shapes, uniform in [lo, hi) (all but the first in [0.5, 1.5) when
 * positive_rest, for weights and scales), on the CPU and on dev; returns mismatches. */
static int64_t agree_with_grads(tg_device *dev, tg_dtype dt, op_fn f, const void *ctx, int n, const tg_shape *shapes,
                                double lo, double hi, bool positive_rest, const char *what) {
    tg_scope_begin();
    tg_tensor *ci[4], *di[4];
    for (int i = 0; i < n; i++) {
        bool pos = positive_rest && i > 0;
        tg_tensor *h = host_uniform(dt, shapes[i], pos ? 0.5 : lo, pos ? 1.5 : hi, 90 + (uint32_t)i);
        ci[i] = tg_param(tg_cast(h, dt));
        di[i] = tg_param(tg_to(h, dev));
    }
    tg_tensor *cy = f(ci, ctx), *dy = f(di, ctx);
    char buf[160];
    snprintf(buf, sizeof buf, "%s %s forward", what, tg_dtype_name(dt));
    double rtol = dt == TG_F32 ? 2e-4 : 1e-10;
    int64_t bad = mismatches(cy, dy, rtol, 1, buf);
    if (cy && dy) {
        tg_tensor *r = host_uniform(dt, tg_shape_of(cy), -1, 1, 77);
        bad += tg_backward(tg_sum(tg_mul(cy, r), TG_ALL, false)) != TG_OK;
        bad += tg_backward(tg_sum(tg_mul(dy, tg_to(r, dev)), TG_ALL, false)) != TG_OK;
        for (int i = 0; i < n; i++) {
            snprintf(buf, sizeof buf, "%s %s grad of input %d", what, tg_dtype_name(dt), i);
            bad += mismatches(tg_grad(ci[i]), tg_grad(di[i]), rtol, 1, buf);
        }
    }
    tg_scope_end();
    return bad;
}

typedef struct {
    tg_conv2d_opts o;
    bool bias;
} conv_case;

static tg_tensor *conv_op(tg_tensor **in, const void *ctx) {
    const conv_case *c = ctx;
    return tg_conv2d(in[0], in[1], c->bias ? in[2] : NULL, &c->o);
}

TEST(conv2d_agree) {
    NEED_OPENCL(dev);
    struct {
        int64_t N, C, H, W, OC, KH, KW;
        conv_case c;
    } cs[] = {
        { 2, 3, 9, 8, 4, 3, 3, { { .padding = 1 }, true } },
        { 1, 4, 11, 7, 6, 3, 2, { { .stride_hw = { 2, 1 }, .padding_hw = { 1, 0 }, .dilation_hw = { 1, 2 }, .groups = 2 }, true } },
        { 2, 6, 8, 8, 6, 3, 3, { { .stride = 2, .padding = 1, .groups = 6 }, false } }, /* depthwise */
        { 1, 2, 6, 6, 3, 2, 2, { { .padding_kind = TG_CONV_PAD_SAME }, true } },       /* implied bottom/right */
        { 2, 4, 32, 32, 8, 3, 3, { { .padding = 1 }, true } }, /* a long K: the split weight gradient */
    };
    int ndt = has_fp64(dev) ? 2 : 1;
    for (size_t q = 0; q < sizeof cs / sizeof cs[0]; q++)
        for (int t = 0; t < ndt; t++) {
            int64_t Cg = cs[q].C / (cs[q].c.o.groups ? cs[q].c.o.groups : 1);
            tg_shape sh[3] = { TG_SHAPE(cs[q].N, cs[q].C, cs[q].H, cs[q].W), TG_SHAPE(cs[q].OC, Cg, cs[q].KH, cs[q].KW),
                               TG_SHAPE(cs[q].OC) };
            char what[64];
            snprintf(what, sizeof what, "conv2d case %zu", q);
            CHECK(agree_with_grads(dev, t ? TG_F64 : TG_F32, conv_op, &cs[q].c, cs[q].c.bias ? 3 : 2, sh, -1, 1, false,
                                   what) == 0);
        }
}

typedef struct {
    int kind; /* 0 max, 1 avg, 2 adaptive avg, 3 adaptive max */
    tg_max_pool2d_opts mo;
    tg_avg_pool2d_opts ao;
    int64_t oh, ow;
} pool_case;

static tg_tensor *pool_op(tg_tensor **in, const void *ctx) {
    const pool_case *c = ctx;
    switch (c->kind) {
    case 0: return tg_max_pool2d(in[0], &c->mo);
    case 1: return tg_avg_pool2d(in[0], &c->ao);
    case 2: return tg_adaptive_avg_pool2d(in[0], c->oh, c->ow);
    default: return tg_adaptive_max_pool2d(in[0], c->oh, c->ow);
    }
}

TEST(pool2d_agree) {
    NEED_OPENCL(dev);
    pool_case cs[] = {
        { .kind = 0, .mo = { .kernel_size = 3, .stride = 2, .padding = 1 } },
        { .kind = 0, .mo = { .kernel_size = 3, .stride = 1, .dilation = 2, .padding = 1, .ceil_mode = true } },
        { .kind = 0, .mo = { .kernel_size_hw = { 2, 3 }, .stride_hw = { 3, 2 }, .ceil_mode = true } },
        { .kind = 1, .ao = { .kernel_size = 3, .stride = 2, .padding = 1 } },
        { .kind = 1, .ao = { .kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true,
                             .count_include_pad = TG_SOME(false) } },
        { .kind = 1, .ao = { .kernel_size = 2, .divisor_override = 3 } },
        { .kind = 2, .oh = 3, .ow = 4 },
        { .kind = 3, .oh = 4, .ow = 3 },
        { .kind = 3, .oh = 9, .ow = 13 }, /* more outputs than inputs on W */
    };
    int ndt = has_fp64(dev) ? 2 : 1;
    for (size_t q = 0; q < sizeof cs / sizeof cs[0]; q++)
        for (int t = 0; t < ndt; t++) {
            tg_shape sh[1] = { TG_SHAPE(2, 3, 9, 10) };
            char what[64];
            snprintf(what, sizeof what, "pool2d case %zu", q);
            CHECK(agree_with_grads(dev, t ? TG_F64 : TG_F32, pool_op, &cs[q], 1, sh, -1, 1, false, what) == 0);
        }
    /* Ties and NaN: values from a few levels, one NaN; indices exactly the CPU's. */
    tg_scope_begin();
    double v[2 * 36];
    for (int i = 0; i < 72; i++) v[i] = (double)((i * 7) % 3);
    v[17] = NAN;
    tg_tensor *cx = tg_from_f64(v, TG_SHAPE(2, 1, 6, 6), g_cpu), *dx = tg_to(cx, dev), *ci, *di;
    tg_max_pool2d_opts mo = { .kernel_size = 3, .stride = 2, .padding = 1 };
    SAME(tg_max_pool2d_with_indices(cx, &mo, &ci), tg_max_pool2d_with_indices(dx, &mo, &di), "max ties/NaN values");
    SAME(ci, di, "max ties/NaN indices");
    tg_max_unpool2d_opts uo = { .kernel_size = 3, .stride = 2, .padding = 1, .output_size = { 6, 6 } };
    tg_tensor *cp = tg_max_pool2d(cx, &mo);
    SAME(tg_max_unpool2d(cp, ci, &uo), tg_max_unpool2d(tg_to(cp, dev), di, &uo), "max_unpool2d");
    int64_t bad[18] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 36, 0, 0, 0, 0, 0 };
    tg_tensor *bidx = tg_to(tg_from_i64(bad, TG_SHAPE(2, 1, 3, 3), g_cpu), dev);
    CHECK_ERROR(tg_max_unpool2d(tg_to(cp, dev), bidx, &uo),
                "tg_max_unpool2d: index 36 is outside the output plane of 6x6 (valid: 0 to 35)");
    tg_scope_end();
}

typedef struct {
    int kind; /* 0 batch norm (training), 1 batch norm (eval), 2 layer norm, 3 group norm */
    bool affine;
    tg_tensor *rm[2], *rv[2]; /* the CPU's, the device's: each updated in place */
} norm_case;

static tg_tensor *norm_op(tg_tensor **in, const void *ctx) {
    const norm_case *c = ctx;
    tg_tensor *w = c->affine ? in[1] : NULL, *b = c->affine ? in[2] : NULL, *x = in[0];
    switch (c->kind) {
    case 0:
    case 1: {
        int on = tg_device_of(x) != g_cpu;
        return tg_batch_norm(x, c->rm[on], c->rv[on], w, b,
                             &(tg_batch_norm_opts){ .training = c->kind == 0, .momentum = TG_SOME(0.3) });
    }
    case 2: return tg_layer_norm(x, TG_SHAPE(3, 5), w, b, 1e-5);
    default: return tg_group_norm(x, 2, w, b, 1e-5);
    }
}

TEST(norm_agree) {
    NEED_OPENCL(dev);
    int ndt = has_fp64(dev) ? 2 : 1;
    for (int t = 0; t < ndt; t++)
        for (int kind = 0; kind < 4; kind++)
            for (int affine = 0; affine < 2; affine++) {
                tg_scope_begin();
                tg_dtype dt = t ? TG_F64 : TG_F32;
                int64_t C = kind == 2 ? 3 : 4;
                norm_case c = { kind, affine, { host_uniform(dt, TG_SHAPE(C), -1, 1, 5) },
                                { host_uniform(dt, TG_SHAPE(C), 0.5, 2, 6) } };
                c.rm[1] = tg_to(c.rm[0], dev);
                c.rv[1] = tg_to(c.rv[0], dev);
                tg_shape sh[3] = { TG_SHAPE(3, C, 5, 2), TG_SHAPE(C), TG_SHAPE(C) };
                if (kind == 2) sh[0] = TG_SHAPE(4, 2, 3, 5), sh[1] = sh[2] = TG_SHAPE(3, 5);
                char what[64];
                snprintf(what, sizeof what, "norm kind %d affine %d", kind, affine);
                /* x around 3 with spread 2: the mean is not small against the deviations */
                CHECK(agree_with_grads(dev, dt, norm_op, &c, affine ? 3 : 1, sh, 2, 4, true, what) == 0);
                tg_scope_end();
            }
    /* The running statistics after a training step, updated in place on each device. */
    tg_scope_begin();
    tg_tensor *x = host_uniform(TG_F32, TG_SHAPE(6, 4, 3, 3), -2, 3, 8);
    tg_tensor *crm = host_uniform(TG_F32, TG_SHAPE(4), -1, 1, 9), *crv = host_uniform(TG_F32, TG_SHAPE(4), 0.5, 2, 10);
    tg_tensor *drm = tg_to(crm, dev), *drv = tg_to(crv, dev);
    tg_batch_norm_opts tr = { .training = true, .momentum = TG_SOME(0.25) };
    CHECK(tg_batch_norm(x, crm, crv, NULL, NULL, &tr) && tg_batch_norm(tg_to(x, dev), drm, drv, NULL, NULL, &tr));
    AGREE(crm, drm, 1e-5, "running_mean");
    AGREE(crv, drv, 1e-5, "running_var");
    tg_scope_end();
}

TG_TEST_MAIN(&tg_case_unary_agree, &tg_case_binary_broadcast_agree, &tg_case_nan_and_special_values,
             &tg_case_casts_saturate_like_cpu, &tg_case_integer_and_mask_ops, &tg_case_creation_fill_arange,
             &tg_case_inplace_updates_agree, &tg_case_reductions_agree, &tg_case_log_softmax_agree,
             &tg_case_gather_scatter_agree, &tg_case_random_same_on_both_devices, &tg_case_matmul_agree,
             &tg_case_conv2d_agree, &tg_case_pool2d_agree, &tg_case_norm_agree, &tg_case_mlp_training_matches_cpu)
