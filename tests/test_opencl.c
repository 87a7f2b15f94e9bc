/* Cross-device checks: every op family run on the CPU and on the OpenCL device from the
 * same inputs (contiguous and as transposed, flipped and strided views), compared
 * value by value; random tensors from the same seed; a short MLP training run on both;
 * and the OpenCL error paths: mixed devices, device out-of-memory, a failed kernel
 * build, a device without fp64 (the program cache: test_opencl_cache.c); i64 kernels and empty shapes
 * against host loops. Without an OpenCL device the program exits 77 (meson: skipped). */
#include <float.h>
#include <stdint.h>

#include "harness.h"
#include "lib/opencl/opencl.h"

/* ------------------------------------------------------------------ helpers */

/* No OpenCL device: the whole program counts as skipped (77), not passed. */
static void skip_without_opencl(void) __attribute__((constructor));
static void skip_without_opencl(void) {
    if (tg_device_get("opencl")) return;
    printf("skipped: %s\n", tg_last_error());
    exit(77);
}

static tg_device *g_cpu;

static tg_device *opencl_or_skip(void) {
    static int tried;
    static tg_device *dev;
    if (!tried) {
        tried = 1;
        dev = tg_device_get("opencl");
        if (!dev) printf("  (no OpenCL device: %s)\n", tg_last_error());
        tg_clear_error();
    }
    g_cpu = tg_device_get("cpu");
    return dev;
}

#define NEED_OPENCL(dev)                     \
    tg_device *dev = opencl_or_skip();       \
    if (!dev) SKIP("no OpenCL device")

static bool has_fp64(tg_device *dev) {
    tg_device_info info;
    return tg_device_get_info(dev, &info) == TG_OK && info.fp64;
}

/* Values of t as doubles (malloc'ed) or NULL; converted on the CPU, so they can be
 * read from a device without fp64. */
static double *values(tg_tensor *t) { return t ? tg_test_values(tg_to(t, g_cpu)) : NULL; }

/* Number of elements where a (CPU) and b (device) differ by more than
 * rtol * max(|a|, |b|, floor); NaNs must match NaNs and infinities match exactly.
 * Prints the first mismatch under `what`. */
static int64_t mismatches(tg_tensor *a, tg_tensor *b, double rtol, double floor, const char *what) {
    if (!a || !b) {
        fprintf(stderr, "  %s: no result (%s)\n", what, tg_last_error());
        return 1;
    }
    tg_shape sa = tg_shape_of(a), sb = tg_shape_of(b);
    if (sa.ndim != sb.ndim || memcmp(sa.dims, sb.dims, sizeof(int64_t) * (size_t)sa.ndim) != 0 ||
        tg_dtype_of(a) != tg_dtype_of(b)) {
        fprintf(stderr, "  %s: shape or dtype differ\n", what);
        return 1;
    }
    int64_t n = tg_numel(a), bad = 0;
    double *x = values(a), *y = values(b);
    if (!x || !y) {
        fprintf(stderr, "  %s: cannot read values (%s)\n", what, tg_last_error());
        free(x), free(y);
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        double u = x[i], v = y[i];
        bool ok;
        if (isnan(u) || isnan(v)) ok = isnan(u) && isnan(v);
        else if (isinf(u) || isinf(v)) ok = u == v;
        else ok = fabs(u - v) <= rtol * fmax(fmax(fabs(u), fabs(v)), floor);
        if (!ok && bad++ == 0)
            fprintf(stderr, "  %s: element %lld: cpu %.9g, opencl %.9g\n", what, (long long)i, u, v);
    }
    if (bad) fprintf(stderr, "  %s: %lld of %lld elements differ\n", what, (long long)bad, (long long)n);
    free(x), free(y);
    return bad;
}

#define AGREE(a, b, rtol, what) CHECK(mismatches((a), (b), (rtol), 1e-2, (what)) == 0)
#define SAME(a, b, what) CHECK(mismatches((a), (b), 0, 0, (what)) == 0)

/* A CPU tensor of uniform values in [lo, hi) from a fixed host generator. */
static tg_tensor *host_uniform(tg_dtype dt, tg_shape s, double lo, double hi, uint32_t seed) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = lo + (hi - lo) * (double)(x >> 11) * 0x1p-53;
        if (dt == TG_I32 || dt == TG_U8) v[i] = floor(v[i]);
    }
    tg_tensor *t = tg_cast(tg_from_f64(v, s, g_cpu), dt);
    free(v);
    return t;
}

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

/* ------------------------------------------------------------------ i64, against host loops
 * The kernels are called through the backend entries, so the checks hold whatever
 * promotion rules the ops layer applies to i64; expected values come from C's int64
 * arithmetic with overflow saturating, the library's rule for every integer dtype (the
 * CPU path's too). */

static const int64_t k_a64[12] = { 0, 1, -1, ((int64_t)1 << 40) + 3, -(((int64_t)1 << 53) + 1), INT64_MAX,
                                   INT64_MIN, 123456789012345, -7, 5, (int64_t)1 << 62, 3 };
static const int64_t k_b64[12] = { 3, -2, 0, 7, 1 << 20, 2, -1, -987654321, 4, 0, 5, INT64_MIN };

static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}
static int64_t sat_sub(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_sub_overflow(a, b, &r) ? (b < 0 ? INT64_MAX : INT64_MIN) : r;
}
static int64_t sat_mul(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? ((a < 0) != (b < 0) ? INT64_MIN : INT64_MAX) : r;
}

/* A device tensor of dtype dt with shape s, made by the backend from nothing but its
 * allocator (no op-layer rules involved). */
static tg_tensor *dev_new(tg_device *dev, tg_dtype dt, tg_shape s) { return tg_empty(dt, s, dev); }

/* n int64 values of t, or false. */
static bool read_i64(tg_tensor *t, int64_t *out, int64_t n) {
    return t && tg_dtype_of(t) == TG_I64 && tg_copy_to_host(t, out, (size_t)n * 8) == TG_OK;
}

static int64_t i64_mismatches(tg_tensor *t, const int64_t *want, int64_t n, const char *what) {
    int64_t *got = malloc((size_t)(n ? n : 1) * 8), bad = 0;
    if (!read_i64(t, got, n)) {
        fprintf(stderr, "  %s: no i64 result (%s)\n", what, tg_last_error());
        free(got);
        return 1;
    }
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i] && bad++ == 0)
            fprintf(stderr, "  %s: element %lld: got %lld, expected %lld\n", what, (long long)i, (long long)got[i],
                    (long long)want[i]);
    free(got);
    return bad;
}
#define I64_EQ(t, want, n, what) CHECK(i64_mismatches((t), (want), (n), (what)) == 0)

static int64_t sat_from_double(double v) {
    return v != v ? 0 : v >= 0x1p63 ? INT64_MAX : v <= -0x1p63 ? INT64_MIN : (int64_t)v;
}

TEST(i64_elementwise_exact) {
    NEED_OPENCL(dev);
    tg_shape s = TG_SHAPE(3, 4);
    tg_tensor *a = tg_from_data(k_a64, TG_I64, s, dev), *b = tg_from_data(k_b64, TG_I64, s, dev);
    CHECK(a && b);
    int64_t want[12];
    tg_tensor *o = dev_new(dev, TG_I64, s);
    CHECK(tg_cl_fill(o, -7.75) == TG_OK);
    for (int i = 0; i < 12; i++) want[i] = -7;
    I64_EQ(o, want, 12, "fill i64 -7.75");
    CHECK(tg_cl_fill(o, 1e30) == TG_OK);
    for (int i = 0; i < 12; i++) want[i] = INT64_MAX;
    I64_EQ(o, want, 12, "fill i64 saturates");
    /* unary ops with an integer form */
    struct {
        tg_unary_op op;
        double p0, p1;
        const char *name;
    } un[] = { { TG_UN_NEG, 0, 0, "neg" },       { TG_UN_ABS, 0, 0, "abs" },          { TG_UN_SIGN, 0, 0, "sign" },
               { TG_UN_SQUARE, 0, 0, "square" }, { TG_UN_ADD_SCALAR, 3, 0, "add 3" }, { TG_UN_MUL_SCALAR, -2, 0, "mul -2" },
               { TG_UN_CLAMP, -5, 0x1p40, "clamp" }, { TG_UN_STEP, 0, 0, "step" },    { TG_UN_RELU, 0, 0, "relu" } };
    for (int q = 0; q < (int)(sizeof un / sizeof un[0]); q++) {
        for (int i = 0; i < 12; i++) {
            int64_t x = k_a64[i], p0 = (int64_t)un[q].p0, p1 = (int64_t)un[q].p1;
            switch (un[q].op) {
            case TG_UN_NEG: want[i] = sat_sub(0, x); break;
            case TG_UN_ABS: want[i] = x < 0 ? sat_sub(0, x) : x; break;
            case TG_UN_SIGN: want[i] = (x > 0) - (x < 0); break;
            case TG_UN_SQUARE: want[i] = sat_mul(x, x); break;
            case TG_UN_ADD_SCALAR: want[i] = sat_add(x, p0); break;
            case TG_UN_MUL_SCALAR: want[i] = sat_mul(x, p0); break;
            case TG_UN_CLAMP: want[i] = x < p0 ? p0 : x > p1 ? p1 : x; break;
            case TG_UN_STEP: want[i] = x > p0; break;
            default: want[i] = x < 0 ? 0 : x; break;
            }
        }
        char what[64];
        snprintf(what, sizeof what, "i64 unary %s", un[q].name);
        CHECK(tg_cl_unary(un[q].op, o, a, un[q].p0, un[q].p1) == TG_OK);
        I64_EQ(o, want, 12, what);
    }
    /* binary, including through a transposed view of b */
    for (int op = TG_BIN_ADD; op <= TG_BIN_MINIMUM; op++) {
        const int64_t *bb = k_b64;
        int64_t small[12];
        if (op == TG_BIN_POW) /* exponents 0..11 */
            for (int i = 0; i < 12; i++) small[i] = i, bb = small;
        for (int i = 0; i < 12; i++) {
            int64_t x = k_a64[i], y = bb[i], r = 1;
            switch (op) {
            case TG_BIN_ADD: want[i] = sat_add(x, y); break;
            case TG_BIN_SUB: want[i] = sat_sub(x, y); break;
            case TG_BIN_MUL: want[i] = sat_mul(x, y); break;
            case TG_BIN_DIV:
                want[i] = y == 0 ? (x > 0 ? INT64_MAX : x < 0 ? INT64_MIN : 0) : (x == INT64_MIN && y == -1) ? INT64_MAX : x / y;
                break;
            case TG_BIN_POW:
                for (int64_t k = 0; k < y; k++) r = sat_mul(r, x);
                want[i] = r;
                break;
            case TG_BIN_MAXIMUM: want[i] = x > y ? x : y; break;
            default: want[i] = x < y ? x : y; break;
            }
        }
        char what[64];
        snprintf(what, sizeof what, "i64 binary op %d", op);
        tg_tensor *bt = tg_from_data(bb, TG_I64, s, dev);
        CHECK(tg_cl_binary((tg_binary_op)op, o, a, bt) == TG_OK);
        I64_EQ(o, want, 12, what);
    }
    tg_tensor *m = dev_new(dev, TG_U8, s);
    for (int op = TG_BIN_EQ; op <= TG_BIN_GE; op++) {
        uint8_t got[12], exp[12];
        for (int i = 0; i < 12; i++) {
            int64_t x = k_a64[i], y = k_b64[i];
            exp[i] = op == TG_BIN_EQ ? x == y : op == TG_BIN_NE ? x != y : op == TG_BIN_LT ? x < y
                   : op == TG_BIN_LE ? x <= y : op == TG_BIN_GT ? x > y : x >= y;
        }
        CHECK(tg_cl_binary((tg_binary_op)op, m, a, b) == TG_OK && tg_copy_to_host(m, got, 12) == TG_OK);
        if (memcmp(got, exp, 12) != 0) FAIL_("i64 comparison %d differs from the host's", op);
    }
    /* where: a where a < b, else b (differences of 1 in the low bits must survive) */
    CHECK(tg_cl_binary(TG_BIN_LT, m, a, b) == TG_OK && tg_cl_where(o, m, a, b) == TG_OK);
    for (int i = 0; i < 12; i++) want[i] = k_a64[i] < k_b64[i] ? k_a64[i] : k_b64[i];
    I64_EQ(o, want, 12, "i64 where");
    /* arange, exact beyond 2^53 */
    tg_tensor *r = dev_new(dev, TG_I64, TG_SHAPE(5));
    CHECK(tg_cl_arange(r, 0x1p60 + 0, 3) == TG_OK);
    for (int i = 0; i < 5; i++) want[i] = ((int64_t)1 << 60) + 3 * i;
    I64_EQ(r, want, 5, "i64 arange past 2^53");
}

TEST(i64_conversions) {
    NEED_OPENCL(dev);
    tg_shape s = TG_SHAPE(12);
    tg_tensor *a = tg_from_data(k_a64, TG_I64, s, dev);
    /* i64 -> f32, f64, i32, u8 */
    float f[12];
    double g[12];
    int32_t i32[12];
    uint8_t u8[12];
    tg_tensor *of = dev_new(dev, TG_F32, s), *oi = dev_new(dev, TG_I32, s), *ou = dev_new(dev, TG_U8, s);
    CHECK(tg_cl_copy(of, a) == TG_OK && tg_copy_to_host(of, f, sizeof f) == TG_OK);
    CHECK(tg_cl_copy(oi, a) == TG_OK && tg_copy_to_host(oi, i32, sizeof i32) == TG_OK);
    CHECK(tg_cl_copy(ou, a) == TG_OK && tg_copy_to_host(ou, u8, sizeof u8) == TG_OK);
    for (int i = 0; i < 12; i++) {
        int64_t v = k_a64[i];
        if (f[i] != (float)v) FAIL_("i64 -> f32 element %d: %.9g, expected %.9g", i, (double)f[i], (double)(float)v);
        int32_t wi = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
        uint8_t wu = v > 255 ? 255 : v < 0 ? 0 : (uint8_t)v;
        if (i32[i] != wi) FAIL_("i64 -> i32 element %d: %d, expected %d", i, i32[i], wi);
        if (u8[i] != wu) FAIL_("i64 -> u8 element %d: %d, expected %d", i, u8[i], wu);
    }
    if (has_fp64(dev)) {
        tg_tensor *og = dev_new(dev, TG_F64, s);
        CHECK(tg_cl_copy(og, a) == TG_OK && tg_copy_to_host(og, g, sizeof g) == TG_OK);
        for (int i = 0; i < 12; i++)
            if (g[i] != (double)k_a64[i]) FAIL_("i64 -> f64 element %d: %.17g", i, g[i]);
    }
    /* f32, f64, i32, u8 -> i64 */
    const double src[8] = { 1e19, -1e19, NAN, -2.5, 0x1p53 + 2, 2.9, INFINITY, -0.5 };
    const float srcf[8] = { 1e19f, -1e19f, NAN, -2.5f, 0x1p40f, 2.9f, -INFINITY, 0x1p63f };
    int64_t want[8];
    tg_tensor *o = dev_new(dev, TG_I64, TG_SHAPE(8));
    CHECK(tg_cl_copy(o, tg_from_data(srcf, TG_F32, TG_SHAPE(8), dev)) == TG_OK);
    for (int i = 0; i < 8; i++) want[i] = sat_from_double((double)srcf[i]);
    I64_EQ(o, want, 8, "f32 -> i64");
    if (has_fp64(dev)) {
        CHECK(tg_cl_copy(o, tg_from_data(src, TG_F64, TG_SHAPE(8), dev)) == TG_OK);
        for (int i = 0; i < 8; i++) want[i] = sat_from_double(src[i]);
        I64_EQ(o, want, 8, "f64 -> i64");
    }
    const int32_t si[8] = { INT32_MIN, INT32_MAX, -1, 0, 1, 77, -300, 65536 };
    const uint8_t su[8] = { 0, 255, 1, 128, 7, 9, 200, 254 };
    CHECK(tg_cl_copy(o, tg_from_data(si, TG_I32, TG_SHAPE(8), dev)) == TG_OK);
    for (int i = 0; i < 8; i++) want[i] = si[i];
    I64_EQ(o, want, 8, "i32 -> i64");
    CHECK(tg_cl_copy(o, tg_from_data(su, TG_U8, TG_SHAPE(8), dev)) == TG_OK);
    for (int i = 0; i < 8; i++) want[i] = su[i];
    I64_EQ(o, want, 8, "u8 -> i64");
    /* a strided i64 -> i64 copy (the same-dtype kernel) */
    tg_tensor *t = tg_transpose(tg_from_data(k_a64, TG_I64, TG_SHAPE(3, 4), dev), 0, 1);
    tg_tensor *c = dev_new(dev, TG_I64, TG_SHAPE(4, 3));
    CHECK(tg_cl_copy(c, t) == TG_OK);
    int64_t tw[12];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) tw[i * 3 + j] = k_a64[j * 4 + i];
    I64_EQ(c, tw, 12, "i64 transposed copy");
}

/* The backend's reduce over axis mask of x into a new tensor of dtype odt. */
static tg_tensor *reduce_to(tg_reduce_op op, tg_dtype odt, tg_tensor *x, uint32_t mask) {
    tg_shape s = tg_shape_of(x);
    for (int i = 0; i < s.ndim; i++)
        if (mask >> i & 1) s.dims[i] = 1;
    tg_tensor *o = tg_empty(odt, s, tg_device_of(x));
    return o && tg_cl_reduce(op, o, x, mask) == TG_OK ? o : NULL;
}

/* Values past 2^53 whose partial sums in any order fit int64 (OpenCL saturates as it
 * accumulates; the CPU sums exactly and saturates once, so they agree on these). */
static const int64_t k_sum64[12] = { 0, 1, -1, ((int64_t)1 << 40) + 3, -(((int64_t)1 << 53) + 1), (int64_t)1 << 61,
                                     -((int64_t)1 << 61), 123456789012345, -7, 5, (int64_t)1 << 60, 3 };

TEST(i64_reductions_exact) {
    NEED_OPENCL(dev);
#define k_a64 k_sum64
    tg_tensor *a = tg_from_data(k_a64, TG_I64, TG_SHAPE(3, 4), dev);
    int64_t want[4];
    for (int force = 1; force <= 3; force++) { /* serial, work-groups, chunked */
        tg_opencl_force_paths_for_test(0, 0, force);
        char what[64];
        int64_t ws[3], wx[3], wn[3], wax[3], wan[3];
        for (int r = 0; r < 3; r++) {
            ws[r] = 0, wx[r] = INT64_MIN, wn[r] = INT64_MAX, wax[r] = wan[r] = 0;
            for (int j = 0; j < 4; j++) {
                int64_t v = k_a64[r * 4 + j];
                ws[r] = sat_add(ws[r], v);
                if (v > wx[r]) wx[r] = v, wax[r] = j;
                if (v < wn[r]) wn[r] = v, wan[r] = j;
            }
        }
        snprintf(what, sizeof what, "i64 sum rows path %d", force);
        I64_EQ(reduce_to(TG_RED_SUM, TG_I64, a, 2), ws, 3, what);
        snprintf(what, sizeof what, "i64 max rows path %d", force);
        I64_EQ(reduce_to(TG_RED_MAX, TG_I64, a, 2), wx, 3, what);
        snprintf(what, sizeof what, "i64 min rows path %d", force);
        I64_EQ(reduce_to(TG_RED_MIN, TG_I64, a, 2), wn, 3, what);
        snprintf(what, sizeof what, "i64 argmax into i64 path %d", force);
        I64_EQ(reduce_to(TG_RED_ARGMAX, TG_I64, a, 2), wax, 3, what);
        int32_t ai[3];
        tg_tensor *am = reduce_to(TG_RED_ARGMIN, TG_I32, a, 2);
        CHECK(am && tg_copy_to_host(am, ai, sizeof ai) == TG_OK);
        for (int r = 0; r < 3; r++)
            if (ai[r] != wan[r]) FAIL_("i64 argmin into i32, row %d: %d, expected %lld (path %d)", r, ai[r], (long long)wan[r], force);
        /* integer sums into i64, past what the input dtype holds */
        enum { N = 70001 };
        uint8_t *u = malloc(N);
        int32_t *w = malloc(N * sizeof *w);
        int64_t su = 0, sw = 0;
        for (int i = 0; i < N; i++) {
            u[i] = (uint8_t)(255 - i % 7);
            w[i] = i % 2 ? INT32_MAX - i : INT32_MIN + 3 * i;
            su += u[i], sw += w[i];
        }
        snprintf(what, sizeof what, "u8 sum into i64 path %d", force);
        I64_EQ(reduce_to(TG_RED_SUM, TG_I64, tg_from_data(u, TG_U8, TG_SHAPE(N), dev), 1), &su, 1, what);
        snprintf(what, sizeof what, "i32 sum into i64 path %d", force);
        I64_EQ(reduce_to(TG_RED_SUM, TG_I64, tg_from_data(w, TG_I32, TG_SHAPE(N), dev), 1), &sw, 1, what);
        free(u), free(w);
        want[0] = 0;
        for (int i = 0; i < 12; i++) want[0] = sat_add(want[0], k_a64[i]);
        snprintf(what, sizeof what, "i64 sum of all, transposed, path %d", force);
        I64_EQ(reduce_to(TG_RED_SUM, TG_I64, tg_transpose(a, 0, 1), 3), want, 1, what);
    }
    tg_opencl_force_paths_for_test(0, 0, 0);
    CHECK_ERROR(reduce_to(TG_RED_ARGMAX, TG_F32, a, 2), "tg_argmax: indices are written as i32 or i64, not f32");
#undef k_a64
}

TEST(i64_gather_scatter_and_bounds) {
    NEED_OPENCL(dev);
    tg_tensor *x = tg_from_data(k_a64, TG_I64, TG_SHAPE(3, 4), dev);
    const int64_t id64[6] = { 3, 3, 0, 2, 0, 1 };
    const int32_t id32[6] = { 3, 3, 0, 2, 0, 1 };
    tg_tensor *i64 = tg_from_data(id64, TG_I64, TG_SHAPE(3, 2), dev), *i32 = tg_from_data(id32, TG_I32, TG_SHAPE(3, 2), dev);
    int64_t want[6];
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 2; j++) {
            int64_t v = id64[r * 2 + j];
            want[r * 2 + j] = k_a64[r * 4 + (v < 0 ? v + 4 : v)];
        }
    tg_tensor *o = dev_new(dev, TG_I64, TG_SHAPE(3, 2));
    CHECK(tg_cl_gather(o, x, 1, i64) == TG_OK);
    I64_EQ(o, want, 6, "gather i64 values, i64 index");
    CHECK(tg_cl_gather(o, x, 1, i32) == TG_OK);
    I64_EQ(o, want, 6, "gather i64 values, i32 index");
    /* scatter_add of f32 with i64 indices, both paths, against a host loop */
    const float src[6] = { 1, 2, 4, 8, 16, 32 };
    float expect[12] = { 0 }, got[12];
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 2; j++) {
            int64_t v = id64[r * 2 + j];
            expect[r * 4 + (v < 0 ? v + 4 : v)] += src[r * 2 + j];
        }
    for (int mode = 1; mode <= 2; mode++) {
        tg_opencl_force_paths_for_test(0, mode, 0);
        tg_tensor *z = tg_zeros(TG_F32, TG_SHAPE(3, 4), dev);
        CHECK(tg_cl_scatter_add(z, 1, i64, tg_from_data(src, TG_F32, TG_SHAPE(3, 2), dev)) == TG_OK);
        CHECK(tg_copy_to_host(z, got, sizeof got) == TG_OK);
        if (memcmp(got, expect, sizeof got) != 0) FAIL_("scatter_add with i64 indices, mode %d, differs", mode);
    }
    /* Out of range: the CPU path's words; 2^32 + 1 must not wrap to 1. */
    const int64_t bad64[4] = { 1, ((int64_t)1 << 32) + 1, -20, 2 };
    tg_tensor *bad = tg_from_data(bad64, TG_I64, TG_SHAPE(2, 2), dev);
    tg_tensor *o2 = dev_new(dev, TG_I64, TG_SHAPE(2, 2)), *x2 = tg_slice(x, 0, 0, 2, 1);
    CHECK_ERROR(tg_cl_gather(o2, x2, 1, bad), "tg_gather: index 4294967297 is out of range for axis 1 of size 4");
    for (int mode = 1; mode <= 2; mode++) {
        tg_opencl_force_paths_for_test(0, mode, 0);
        CHECK_ERROR(tg_cl_scatter_add(tg_zeros(TG_F32, TG_SHAPE(2, 4), dev), 1, bad, tg_ones(TG_F32, TG_SHAPE(2, 2), dev)),
                    "tg_scatter_add: index 4294967297 is out of range for axis 1 of size 4");
    }
    tg_opencl_force_paths_for_test(0, 0, 0);
    const int64_t neg64[2] = { -5, 0 };
    CHECK_ERROR(tg_cl_gather(dev_new(dev, TG_I64, TG_SHAPE(2, 1)), x2, 1, tg_from_data(neg64, TG_I64, TG_SHAPE(2, 1), dev)),
                "tg_gather: index -5 is out of range for axis 1 of size 4");
    CHECK_ERROR(tg_cl_gather(o2, x2, 1, tg_ones(TG_F32, TG_SHAPE(2, 2), dev)), "tg_gather: index must be i32 or i64, got f32");
    /* and through the public op with i32 indices: the same message */
    CHECK_ERROR(tg_gather(tg_zeros(TG_F32, TG_SHAPE(2, 4), dev), 1, tg_from_i32((int32_t[]){ 0, 4, 1, 1 }, TG_SHAPE(2, 2), dev)),
                "tg_gather: index 4 is out of range for axis 1 of size 4");
}

TEST(i64_bernoulli) {
    NEED_OPENCL(dev);
    /* The f32 draw is checked against the CPU elsewhere; the i64 one must be its cast. */
    tg_tensor *o = dev_new(dev, TG_I64, TG_SHAPE(999)), *f = dev_new(dev, TG_F32, TG_SHAPE(999));
    CHECK(tg_cl_random(TG_RNG_BERNOULLI, o, 77, 1000, 0.3, 0) == TG_OK);
    CHECK(tg_cl_random(TG_RNG_BERNOULLI, f, 77, 1000, 0.3, 0) == TG_OK);
    int64_t *got = malloc(999 * 8);
    float *ref = malloc(999 * sizeof *ref);
    CHECK(read_i64(o, got, 999) && tg_copy_to_host(f, ref, 999 * sizeof *ref) == TG_OK);
    int ones = 0, bad = 0;
    for (int i = 0; i < 999; i++) {
        ones += got[i] == 1;
        bad += got[i] != (int64_t)ref[i] || (got[i] != 0 && got[i] != 1);
    }
    CHECK(bad == 0 && ones > 200 && ones < 400);
    CHECK(tg_cl_random(TG_RNG_BERNOULLI, o, 5, 0, 1.0, 0) == TG_OK && read_i64(o, got, 999));
    for (int i = 0; i < 999; i++) bad += got[i] != 1;
    CHECK(bad == 0);
    /* a strided output: element i of the view takes counter + i */
    tg_tensor *big = tg_zeros(TG_F32, TG_SHAPE(10, 6), dev), *view = tg_slice(tg_transpose(big, 0, 1), 0, 1, 6, 2);
    CHECK(tg_cl_random(TG_RNG_UNIFORM, view, 9, 0, 0, 1) == TG_OK);
    tg_tensor *dense = dev_new(dev, TG_F32, TG_SHAPE(3, 10));
    CHECK(tg_cl_random(TG_RNG_UNIFORM, dense, 9, 0, 0, 1) == TG_OK);
    float a[30], b[30];
    CHECK(tg_copy_to_host(view, a, sizeof a) == TG_OK && tg_copy_to_host(dense, b, sizeof b) == TG_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    free(got), free(ref);
}

/* ------------------------------------------------------------------ empty shapes */

TEST(empty_shapes_every_family) {
    NEED_OPENCL(dev);
    tg_shape shapes[] = { TG_SHAPE(2, 0), TG_SHAPE(0, 3), TG_SHAPE(4, 0, 5) };
    tg_dtype dts[] = { TG_F32, TG_I32, TG_U8, TG_I64 };
    for (int q = 0; q < 3; q++)
        for (int t = 0; t < 4; t++) {
            tg_scope_begin();
            tg_shape s = shapes[q];
            tg_dtype dt = dts[t];
            char what[64];
            snprintf(what, sizeof what, "shape#%d %s", q, tg_dtype_name(dt));
            tg_tensor *x = tg_zeros(dt, s, dev), *y = tg_ones(dt, s, dev);
            if (!x || !y) FAIL_("%s: creation: %s", what, tg_last_error());
            CHECK(tg_cl_unary(TG_UN_NEG, x, y, 0, 0) == TG_OK);
            CHECK(tg_cl_binary(TG_BIN_ADD, x, x, y) == TG_OK && tg_cl_binary(TG_BIN_LT, tg_empty(TG_U8, s, dev), x, y) == TG_OK);
            CHECK(tg_cl_where(x, tg_empty(TG_U8, s, dev), x, y) == TG_OK);
            CHECK(tg_cl_copy(tg_empty(TG_F32, s, dev), x) == TG_OK && tg_cl_copy(tg_transpose(x, 0, 1), tg_transpose(y, 0, 1)) == TG_OK);
            CHECK(tg_cl_random(TG_RNG_BERNOULLI, x, 1, 0, 0.5, 0) == TG_OK);
            /* sum over an empty axis is 0 (into i64 for integers, as tg_sum will) */
            for (int ax = 0; ax < s.ndim; ax++) {
                tg_dtype odt = tg_is_float(dt) ? dt : TG_I64;
                tg_tensor *r = reduce_to(TG_RED_SUM, odt, x, 1u << ax);
                CHECK(r != NULL);
                if (!r) continue;
                int64_t n = tg_numel(r);
                double *v = values(tg_cast(r, TG_F32));
                bool zero = v != NULL;
                for (int64_t i = 0; v && i < n; i++) zero = zero && v[i] == 0;
                if (s.dims[ax] == 0 && !zero) FAIL_("%s: sum over empty axis %d is not 0", what, ax);
                free(v);
                bool empty_axis = s.dims[ax] == 0, empty_out = n == 0;
                tg_tensor *mx = reduce_to(TG_RED_MAX, dt, x, 1u << ax);
                if (empty_axis && !empty_out) {
                    char msg[96];
                    snprintf(msg, sizeof msg, "tg_max: cannot reduce over axis %d of size 0", ax);
                    CHECK(mx == NULL && strcmp(tg_last_error(), msg) == 0);
                    CHECK_ERROR_CONTAINS(reduce_to(TG_RED_ARGMIN, TG_I64, x, 1u << ax), "tg_argmin: cannot reduce over axis");
                } else {
                    CHECK(mx != NULL && reduce_to(TG_RED_ARGMAX, TG_I32, x, 1u << ax) != NULL);
                }
            }
            tg_tensor *all = reduce_to(TG_RED_SUM, tg_is_float(dt) ? dt : TG_I64, x, (1u << s.ndim) - 1);
            CHECK(all && tg_item(all) == 0);
            tg_scope_end();
        }
    /* the float-only families, through the public ops */
    tg_tensor *e = tg_zeros(TG_F32, TG_SHAPE(2, 0), dev), *f = tg_zeros(TG_F32, TG_SHAPE(0, 3), dev);
    CHECK(tg_numel(tg_log_softmax(e, 1)) == 0 && tg_numel(tg_log_softmax(f, 1)) == 0 && tg_numel(tg_softmax(f, 0)) == 0);
    tg_tensor *mm = tg_matmul(e, tg_ones(TG_F32, TG_SHAPE(0, 3), dev));
    float z[6];
    CHECK(mm && tg_copy_to_host(mm, z, sizeof z) == TG_OK);
    for (int i = 0; mm && i < 6; i++) CHECK(z[i] == 0);
    CHECK(tg_numel(tg_matmul(f, tg_ones(TG_F32, TG_SHAPE(3, 2), dev))) == 0);
    CHECK(tg_numel(tg_gather(tg_ones(TG_F32, TG_SHAPE(2, 4), dev), 1, tg_zeros(TG_I32, TG_SHAPE(2, 0), dev))) == 0);
    CHECK(tg_scatter_add(tg_ones(TG_F32, TG_SHAPE(2, 4), dev), 1, tg_zeros(TG_I32, TG_SHAPE(2, 0), dev), e) != NULL);
    CHECK(tg_numel(tg_arange(TG_I64, 5, 5, 1, dev)) == 0 && tg_numel(tg_rand(TG_F32, TG_SHAPE(0, 3), dev)) == 0);
    CHECK(tg_item(tg_sum(e, TG_ALL, false)) == 0 && tg_numel(tg_sum(e, TG_AXES(1), false)) == 2);
    CHECK_ERROR(tg_max(e, TG_AXES(1), false), "tg_max: cannot reduce over axis 1 of size 0");
    tg_tensor *sm = tg_sum(e, TG_AXES(1), true);
    float two[2] = { 1, 1 };
    CHECK(sm && tg_copy_to_host(sm, two, sizeof two) == TG_OK && two[0] == 0 && two[1] == 0);
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

/* ------------------------------------------------------------------ devices and memory */

TEST(devices_listed_and_named) {
    NEED_OPENCL(dev);
    int n = tg_device_list(NULL, 0);
    CHECK(n >= 2);
    tg_device_info *infos = calloc((size_t)n, sizeof *infos);
    CHECK(tg_device_list(infos, n) == n);
    CHECK(strcmp(infos[0].id, "cpu") == 0 && infos[1].kind == TG_DEVICE_OPENCL);
    tg_device_info me;
    CHECK(tg_device_get_info(dev, &me) == TG_OK);
    bool found = false;
    for (int i = 1; i < n; i++) found |= strcmp(infos[i].id, me.id) == 0 && strcmp(infos[i].name, me.name) == 0;
    CHECK(found && me.global_mem_bytes > 0 && me.max_alloc_bytes > 0 && me.compute_units > 0);
    CHECK(strcmp(tg_device_name(dev), me.id) == 0);
    CHECK(tg_device_get(me.id) == dev); /* "opencl" and "opencl:N" are one device */
    free(infos);
    char name[32];
    snprintf(name, sizeof name, "opencl:%d", n + 5);
    CHECK_ERROR_CONTAINS(tg_device_get(name), "tg_device_get: no device opencl:");
}

TEST(mixing_devices_names_both) {
    NEED_OPENCL(dev);
    tg_tensor *a = tg_ones(TG_F32, TG_SHAPE(3), g_cpu), *b = tg_ones(TG_F32, TG_SHAPE(3), dev);
    char expect[128];
    snprintf(expect, sizeof expect, "tg_add: tensors on two devices: cpu and %s (copy one with tg_to)", tg_device_name(dev));
    CHECK_ERROR(tg_add(a, b), expect);
    snprintf(expect, sizeof expect, "tg_matmul: tensors on two devices: %s and cpu (copy one with tg_to)", tg_device_name(dev));
    CHECK_ERROR(tg_matmul(tg_ones(TG_F32, TG_SHAPE(2, 2), dev), tg_ones(TG_F32, TG_SHAPE(2, 2), g_cpu)), expect);
}

TEST(device_out_of_memory_is_an_error) {
    NEED_OPENCL(dev);
    tg_device_info info;
    CHECK(tg_device_get_info(dev, &info) == TG_OK);
    tg_clear_error();
    CHECK(tg_empty(TG_F32, TG_SHAPE(1 << 20, 1 << 20), dev) == NULL);
    CHECK(tg_last_status() == TG_ERR_NOMEM);
    CHECK(strstr(tg_last_error(), tg_device_name(dev)) && strstr(tg_last_error(), "4398046511104 bytes"));
    /* Largest allocations until the device is full: an error, and the memory comes back. */
    tg_memory_stats s0;
    tg_device_memory_stats(dev, &s0);
    int64_t chunk = (int64_t)(info.max_alloc_bytes / 4);
    int got = 0;
    tg_scope_begin();
    tg_clear_error();
    for (int i = 0; i < 256; i++) {
        if (!tg_empty(TG_F32, TG_SHAPE(chunk), dev)) break;
        got++;
    }
    CHECK(tg_last_status() == TG_ERR_NOMEM && strstr(tg_last_error(), "out of device memory on"));
    CHECK(got >= 1 && (double)got * (double)chunk * 4 <= (double)info.global_mem_bytes);
    tg_scope_end();
    tg_device_empty_cache(dev);
    CHECK(tg_ones(TG_F32, TG_SHAPE(chunk), dev) != NULL);
    tg_device_empty_cache(dev);
}

TEST(allocator_reuses_buffers) {
    NEED_OPENCL(dev);
    tg_memory_stats s0, s1, s2;
    tg_scope_begin();
    tg_zeros(TG_F32, TG_SHAPE(1000, 10), dev);
    tg_scope_end();
    tg_device_memory_stats(dev, &s0);
    for (int i = 0; i < 20; i++) {
        tg_scope_begin();
        tg_tensor *a = tg_zeros(TG_F32, TG_SHAPE(1000, 10), dev);
        tg_sum(tg_mul(a, a), TG_ALL, false);
        tg_scope_end();
    }
    tg_device_memory_stats(dev, &s1);
    CHECK(s1.allocations <= s0.allocations + 3 && s1.bytes_cached >= 40000);
    tg_device_empty_cache(dev);
    tg_device_memory_stats(dev, &s2);
    CHECK(s2.bytes_cached == 0);
}

/* ------------------------------------------------------------------ builds, cache, fp64 */

TEST(build_failure_reports_the_log) {
    NEED_OPENCL(dev);
    const char *src = "__kernel void broken(__global float *x) { x[0] = no_such_identifier_42; }\n";
    tg_clear_error();
    CHECK(tg_opencl_build_for_test(dev, src, "") == TG_ERR_BACKEND);
    CHECK(strstr(tg_last_error(), "CL_BUILD_PROGRAM_FAILURE") != NULL);
    CHECK(strstr(tg_last_error(), "no_such_identifier_42") != NULL); /* from the compiler's log */
    CHECK(tg_opencl_build_for_test(dev, "__kernel void fine(__global float *x) { x[0] = 1; }\n", "") == TG_OK);
}

TEST(missing_fp64_is_a_clear_error) {
    NEED_OPENCL(dev);
    bool had = has_fp64(dev);
    CHECK(tg_opencl_set_fp64_for_test(dev, false) == TG_OK);
    const char *msg = "has no fp64 (cl_khr_fp64)";
    CHECK_ERROR_CONTAINS(tg_zeros(TG_F64, TG_SHAPE(3), dev), msg);
    CHECK_ERROR_CONTAINS(tg_empty(TG_F64, TG_SHAPE(3), dev), msg); /* refused at creation, before any kernel */
    CHECK_ERROR_CONTAINS(tg_from_f64((double[]){ 1, 2 }, TG_SHAPE(2), dev), msg);
    CHECK_ERROR_CONTAINS(tg_to(tg_ones(TG_F64, TG_SHAPE(2), g_cpu), dev), msg);
    CHECK_ERROR_CONTAINS(tg_cast(tg_ones(TG_F32, TG_SHAPE(3), dev), TG_F64), msg);
    CHECK_ERROR_CONTAINS(tg_rand(TG_F64, TG_SHAPE(3), dev), msg);
    CHECK(strstr(tg_last_error(), tg_device_name(dev)) != NULL);
    /* f32 work goes on, accumulating in float instead of double. */
    tg_tensor *c = host_uniform(TG_F32, TG_SHAPE(200, 500), -1, 2, 80);
    AGREE(tg_sum(c, TG_ALL, false), tg_sum(tg_to(c, dev), TG_ALL, false), 1e-4, "float-accumulated sum");
    AGREE(tg_sum(c, TG_AXES(0), false), tg_sum(tg_to(c, dev), TG_AXES(0), false), 1e-4, "float column sums");
    AGREE(tg_log_softmax(c, 1), tg_log_softmax(tg_to(c, dev), 1), 1e-5, "float log_softmax");
    tg_manual_seed(3);
    tg_tensor *cr = tg_rand(TG_F32, TG_SHAPE(100), g_cpu);
    tg_manual_seed(3);
    SAME(cr, tg_rand(TG_F32, TG_SHAPE(100), dev), "uniform in float");
    if (had) {
        CHECK(tg_opencl_set_fp64_for_test(dev, true) == TG_OK);
        CHECK(tg_zeros(TG_F64, TG_SHAPE(3), dev) != NULL);
    } else {
        CHECK_ERROR_CONTAINS(tg_opencl_set_fp64_for_test(dev, true), msg);
    }
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
             &tg_case_gather_scatter_agree, &tg_case_random_same_on_both_devices, &tg_case_matmul_agree, &tg_case_conv2d_agree, &tg_case_pool2d_agree, &tg_case_norm_agree,
             &tg_case_mlp_training_matches_cpu, &tg_case_devices_listed_and_named, &tg_case_mixing_devices_names_both,
             &tg_case_device_out_of_memory_is_an_error, &tg_case_allocator_reuses_buffers,
             &tg_case_build_failure_reports_the_log, &tg_case_missing_fp64_is_a_clear_error,
             &tg_case_i64_elementwise_exact, &tg_case_i64_conversions,
             &tg_case_i64_reductions_exact, &tg_case_i64_gather_scatter_and_bounds, &tg_case_i64_bernoulli,
             &tg_case_empty_shapes_every_family)
