/* Forward results of every op against naive references written here as plain loops
 * over host arrays, on contiguous and non-contiguous inputs (strided, transposed,
 * flipped views), in f32 and f64, at awkward sizes up to one ~100k-element tensor
 * that crosses the CPU threading threshold. Expected values never come from the
 * library: inputs are generated on the host, references computed from them. */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "harness.h"

/* ------------------------------------------------------------------ host buffers
 * Every host array is tracked; mark()/release() free the arrays and the tensors made
 * since the mark, so loops over large tensors stay small. */

static void **g_bufs;
static size_t g_nbufs, g_capbufs;

static void free_bufs(void) {
    while (g_nbufs) free(g_bufs[--g_nbufs]);
    free(g_bufs);
    g_bufs = NULL;
    g_capbufs = 0;
}

static void *track(void *p) {
    static int registered;
    if (!p) {
        fprintf(stderr, "out of host memory\n");
        exit(2);
    }
    if (!registered) registered = !atexit(free_bufs);
    if (g_nbufs == g_capbufs) {
        size_t cap = g_capbufs ? 2 * g_capbufs : 256;
        void **nb = realloc(g_bufs, cap * sizeof *nb);
        if (!nb) {
            fprintf(stderr, "out of host memory\n");
            exit(2);
        }
        g_bufs = nb;
        g_capbufs = cap;
    }
    g_bufs[g_nbufs++] = p;
    return p;
}

static double *dbuf(int64_t n) { return track(calloc((size_t)(n > 0 ? n : 1), sizeof(double))); }

static size_t mark(void) {
    tg_scope_begin();
    return g_nbufs;
}

static void release(size_t m) {
    while (g_nbufs > m) free(g_bufs[--g_nbufs]);
    tg_scope_end();
}

/* A tensor's values as doubles (tracked); NULL if t is NULL or cannot be read. */
static double *vals(tg_tensor *t) {
    if (!t) return NULL;
    double *v = tg_test_values(t);
    return v ? track(v) : NULL;
}

/* ------------------------------------------------------------------ shapes */

static int64_t numel_of(tg_shape s) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    return n;
}

static bool shape_eq(tg_shape a, tg_shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dims[i] != b.dims[i]) return false;
    return true;
}

static const char *shape_str(tg_shape s) {
    static char bufs[4][128];
    static int k;
    char *b = bufs[k++ & 3];
    int pos = snprintf(b, 128, "(");
    for (int i = 0; i < s.ndim && pos < 120; i++) pos += snprintf(b + pos, (size_t)(128 - pos), i ? ",%lld" : "%lld", (long long)s.dims[i]);
    snprintf(b + pos, (size_t)(128 - pos), ")");
    return b;
}

static void unravel(int64_t flat, tg_shape s, int64_t *idx) {
    for (int d = s.ndim - 1; d >= 0; d--) {
        idx[d] = s.dims[d] ? flat % s.dims[d] : 0;
        flat = s.dims[d] ? flat / s.dims[d] : 0;
    }
}

static int64_t ravel(const int64_t *idx, tg_shape s) {
    int64_t f = 0;
    for (int d = 0; d < s.ndim; d++) f = f * s.dims[d] + idx[d];
    return f;
}

/* numpy broadcasting of two shapes (the test's own). */
static tg_shape bcast_shape(tg_shape a, tg_shape b) {
    tg_shape o = { .ndim = a.ndim > b.ndim ? a.ndim : b.ndim };
    for (int i = 0; i < o.ndim; i++) {
        int64_t da = i < o.ndim - a.ndim ? 1 : a.dims[i - (o.ndim - a.ndim)];
        int64_t db = i < o.ndim - b.ndim ? 1 : b.dims[i - (o.ndim - b.ndim)];
        o.dims[i] = da == 1 ? db : da;
    }
    return o;
}

/* The flat index in `in` of the element that broadcasting puts at out index oidx. */
static int64_t bcast_flat(const int64_t *oidx, tg_shape out, tg_shape in) {
    int off = out.ndim - in.ndim;
    int64_t f = 0;
    for (int d = 0; d < in.ndim; d++) f = f * in.dims[d] + (in.dims[d] == 1 ? 0 : oidx[d + off]);
    return f;
}

/* ------------------------------------------------------------------ random host data */

static uint64_t g_rng = 0x243f6a8885a308d3u;

static uint64_t next_u64(void) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double urand(double lo, double hi) { return lo + (hi - lo) * (double)(next_u64() >> 11) * 0x1.0p-53; }
static int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(next_u64() % (uint64_t)(hi - lo)); } /* [lo, hi) */

/* Rounds host values to what dtype can hold, so references see the stored inputs. */
static void round_to(tg_dtype dt, double *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (dt == TG_F32) v[i] = (double)(float)v[i];
        else if (dt == TG_I32) v[i] = (double)(int32_t)v[i];
        else if (dt == TG_U8) v[i] = (double)(uint8_t)v[i];
    }
}

static double *uniform_vals(tg_dtype dt, int64_t n, double lo, double hi) {
    double *v = dbuf(n);
    for (int64_t i = 0; i < n; i++) v[i] = urand(lo, hi);
    round_to(dt, v, n);
    return v;
}

static double *int_vals(int64_t n, int64_t lo, int64_t hi) {
    double *v = dbuf(n);
    for (int64_t i = 0; i < n; i++) v[i] = (double)irand(lo, hi);
    return v;
}

/* ------------------------------------------------------------------ tensors with layouts */

static tg_tensor *from_doubles(tg_dtype dt, tg_shape s, const double *v) {
    int64_t n = numel_of(s);
    void *buf = track(malloc((size_t)(n > 0 ? n : 1) * 8));
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case TG_F32: ((float *)buf)[i] = (float)v[i]; break;
        case TG_F64: ((double *)buf)[i] = v[i]; break;
        case TG_I32: ((int32_t *)buf)[i] = (int32_t)v[i]; break;
        default: ((uint8_t *)buf)[i] = (uint8_t)v[i]; break;
        }
    }
    return tg_from_data(buf, dt, s, tg_test_device());
}

enum { L_CONTIG, L_STRIDED, L_TRANSPOSED, L_FLIPPED, L_COUNT };
static const char *const k_layout_names[L_COUNT] = { "contiguous", "strided", "transposed", "flipped" };
static const tg_dtype k_float_dtypes[2] = { TG_F32, TG_F64 };

/* A tensor of logical shape s and logical (row-major) values v, laid out in memory as
 * layout says: a step-2 slice of a wider tensor, the transpose of a tensor with the
 * last two axes swapped (a flip for 1-D), or the flip of a reversed tensor. */
static tg_tensor *make(tg_dtype dt, tg_shape s, const double *v, int layout) {
    int nd = s.ndim;
    int64_t n = numel_of(s);
    if (nd == 0 || n == 0 || layout == L_CONTIG) return from_doubles(dt, s, v);
    if (layout == L_TRANSPOSED && nd == 1) layout = L_FLIPPED;
    if (layout == L_STRIDED) {
        int64_t last = s.dims[nd - 1];
        tg_shape p = s;
        p.dims[nd - 1] = 2 * last;
        double *buf = dbuf(2 * n);
        for (int64_t i = 0; i < n; i++) {
            int64_t outer = i / last, k = i % last;
            buf[outer * 2 * last + 2 * k] = 99; /* never read */
            buf[outer * 2 * last + 2 * k + 1] = v[i];
        }
        return tg_slice(from_doubles(dt, p, buf), -1, 1, INT64_MAX, 2);
    }
    if (layout == L_TRANSPOSED) {
        int64_t R = s.dims[nd - 2], C = s.dims[nd - 1];
        tg_shape p = s;
        p.dims[nd - 2] = C;
        p.dims[nd - 1] = R;
        double *buf = dbuf(n);
        for (int64_t i = 0; i < n; i++) {
            int64_t outer = i / (R * C), r = i / C % R, c = i % C;
            buf[outer * R * C + c * R + r] = v[i];
        }
        return tg_transpose(from_doubles(dt, p, buf), -1, -2);
    }
    int64_t d0 = s.dims[0], inner = n / d0;
    double *buf = dbuf(n);
    for (int64_t i = 0; i < n; i++) buf[(d0 - 1 - i / inner) * inner + i % inner] = v[i];
    return tg_flip(from_doubles(dt, s, buf), TG_AXES(0));
}

/* Makes a tensor of uniform values in [lo, hi) (rounded to dt); *out gets the values. */
static tg_tensor *input(tg_dtype dt, tg_shape s, double lo, double hi, int layout, double **out) {
    double *v = uniform_vals(dt, numel_of(s), lo, hi);
    if (out) *out = v;
    return make(dt, s, v, layout);
}

/* ------------------------------------------------------------------ comparing */

static char g_what[200]; /* the loop's current case, printed with a failure */
#define WHAT(...) snprintf(g_what, sizeof g_what, __VA_ARGS__)

static double tol_r(tg_dtype dt) { return dt == TG_F32 ? 1e-5 : dt == TG_F64 ? 1e-12 : 0; }
static double tol_a(tg_dtype dt) { return dt == TG_F32 ? 1e-6 : dt == TG_F64 ? 1e-12 : 0; }

static bool near_val(double got, double want, double tol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= tol;
}

/* t must exist, have shape s and dtype dt, and values within atol + rtol * scale[i]
 * (scale NULL: |ref[i]|). Returns 1 on failure after printing the first mismatch. */
static int expect_(tg_tensor *t, tg_shape s, tg_dtype dt, const double *ref, double atol, double rtol,
                   const double *scale, int line) {
    if (!t) {
        fprintf(stderr, "  %s:%d: [%s] op failed: %s\n", __FILE__, line, g_what, tg_last_error());
        return 1;
    }
    if (!shape_eq(tg_shape_of(t), s) || tg_dtype_of(t) != dt) {
        fprintf(stderr, "  %s:%d: [%s] got %s %s, expected %s %s\n", __FILE__, line, g_what,
                tg_dtype_name(tg_dtype_of(t)), shape_str(tg_shape_of(t)), tg_dtype_name(dt), shape_str(s));
        return 1;
    }
    int64_t n = numel_of(s), bad = 0, first = -1;
    double *got = vals(t);
    if (!got) {
        fprintf(stderr, "  %s:%d: [%s] cannot read values: %s\n", __FILE__, line, g_what, tg_last_error());
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        double tol = atol + rtol * (scale ? scale[i] : fabs(ref[i]));
        if (!near_val(got[i], ref[i], tol)) {
            if (first < 0) first = i;
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "  %s:%d: [%s] %lld of %lld values differ; first at flat %lld: got %.17g, expected %.17g\n",
                __FILE__, line, g_what, (long long)bad, (long long)n, (long long)first, got[first], ref[first]);
        return 1;
    }
    return 0;
}

#define EXPECT(t, s, dt, ref, atol, rtol) (*tg_failed_ += expect_((t), (s), (dt), (ref), (atol), (rtol), NULL, __LINE__))
#define EXPECT_SCALED(t, s, dt, ref, atol, rtol, scale) \
    (*tg_failed_ += expect_((t), (s), (dt), (ref), (atol), (rtol), (scale), __LINE__))
#define EXPECT_EXACT(t, s, dt, ref) EXPECT(t, s, dt, ref, 0, 0)

/* Sizes: 0-d, 1, 7, 17, 1023 and 99831 (past the threading threshold). */
#define N_SIZES 6
static tg_shape size_shape(int k) {
    switch (k) {
    case 0: return TG_SCALAR_SHAPE;
    case 1: return TG_SHAPE(1);
    case 2: return TG_SHAPE(7);
    case 3: return TG_SHAPE(17);
    case 4: return TG_SHAPE(31, 33);
    default: return TG_SHAPE(3, 311, 107);
    }
}

/* ================================================================== unary */

static double r_neg(double x) { return -x; }
static double r_rsqrt(double x) { return 1.0 / sqrt(x); }
static double r_sign(double x) { return x > 0 ? 1 : x < 0 ? -1 : 0; }
static double r_relu(double x) { return x > 0 ? x : 0; }
static double r_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double r_square(double x) { return x * x; }
static double r_recip(double x) { return 1.0 / x; }
static double r_leaky(double x) { return x > 0 ? x : 0.1 * x; }
static double r_pow2(double x) { return x * x; }
static double r_pow_half(double x) { return sqrt(x); }
static double r_pow_m15(double x) { return 1.0 / (x * sqrt(x)); }
static double r_pow3(double x) { return x * x * x; }
static double r_pow0(double x) { (void)x; return 1.0; }
static double r_add(double x) { return x + 2.5; }
static double r_mul(double x) { return x * -3.0; }
static double r_clamp(double x) { return x < -0.5 ? -0.5 : x > 0.7 ? 0.7 : x; }
static double r_clamp_lo(double x) { return x < -0.3 ? -0.3 : x; }
static double r_clamp_hi(double x) { return x > 0.3 ? 0.3 : x; }

static tg_tensor *u_leaky(tg_tensor *x) { return tg_leaky_relu(x, 0.1); }
static tg_tensor *u_pow2(tg_tensor *x) { return tg_pow_scalar(x, 2.0); }
static tg_tensor *u_pow_half(tg_tensor *x) { return tg_pow_scalar(x, 0.5); }
static tg_tensor *u_pow_m15(tg_tensor *x) { return tg_pow_scalar(x, -1.5); }
static tg_tensor *u_pow3(tg_tensor *x) { return tg_pow_scalar(x, 3.0); }
static tg_tensor *u_pow0(tg_tensor *x) { return tg_pow_scalar(x, 0.0); }
static tg_tensor *u_add(tg_tensor *x) { return tg_add_scalar(x, 2.5); }
static tg_tensor *u_mul(tg_tensor *x) { return tg_mul_scalar(x, -3.0); }
static tg_tensor *u_clamp(tg_tensor *x) { return tg_clamp(x, -0.5, 0.7); }
static tg_tensor *u_clamp_lo(tg_tensor *x) { return tg_clamp(x, -0.3, INFINITY); }
static tg_tensor *u_clamp_hi(tg_tensor *x) { return tg_clamp(x, -INFINITY, 0.3); }

typedef struct {
    const char *name;
    tg_tensor *(*op)(tg_tensor *);
    double (*ref)(double);
    double lo, hi; /* the input domain */
} unary_case;

static const unary_case k_unary[] = {
    { "neg", tg_neg, r_neg, -5, 5 },
    { "exp", tg_exp, exp, -10, 10 },
    { "log", tg_log, log, 0.01, 100 },
    { "sqrt", tg_sqrt, sqrt, 0, 100 },
    { "rsqrt", tg_rsqrt, r_rsqrt, 0.01, 100 },
    { "abs", tg_abs, fabs, -5, 5 },
    { "sign", tg_sign, r_sign, -5, 5 },
    { "relu", tg_relu, r_relu, -5, 5 },
    { "sigmoid", tg_sigmoid, r_sigmoid, -20, 20 },
    { "tanh", tg_tanh, tanh, -10, 10 },
    { "sin", tg_sin, sin, -10, 10 },
    { "cos", tg_cos, cos, -10, 10 },
    { "square", tg_square, r_square, -5, 5 },
    { "reciprocal", tg_reciprocal, r_recip, -10, 10 },
    { "leaky_relu(0.1)", u_leaky, r_leaky, -5, 5 },
    { "pow_scalar(2)", u_pow2, r_pow2, -3, 3 },
    { "pow_scalar(0.5)", u_pow_half, r_pow_half, 0, 10 },
    { "pow_scalar(-1.5)", u_pow_m15, r_pow_m15, 0.1, 10 },
    { "pow_scalar(3)", u_pow3, r_pow3, -3, 3 },
    { "pow_scalar(0)", u_pow0, r_pow0, -3, 3 },
    { "add_scalar(2.5)", u_add, r_add, -5, 5 },
    { "mul_scalar(-3)", u_mul, r_mul, -5, 5 },
    { "clamp(-0.5,0.7)", u_clamp, r_clamp, -2, 2 },
    { "clamp(-0.3,inf)", u_clamp_lo, r_clamp_lo, -2, 2 },
    { "clamp(-inf,0.3)", u_clamp_hi, r_clamp_hi, -2, 2 },
};
#define N_UNARY ((int)(sizeof k_unary / sizeof k_unary[0]))

TEST(unary_all_ops_sizes_layouts_dtypes) {
    for (int o = 0; o < N_UNARY; o++)
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < N_SIZES; k++)
                for (int l = 0; l < L_COUNT; l++) {
                    size_t m = mark();
                    const unary_case *c = &k_unary[o];
                    tg_dtype dt = k_float_dtypes[d];
                    tg_shape s = size_shape(k);
                    WHAT("%s %s %s %s", c->name, tg_dtype_name(dt), shape_str(s), k_layout_names[l]);
                    double *x;
                    tg_tensor *t = input(dt, s, c->lo, c->hi, l, &x);
                    int64_t n = numel_of(s);
                    double *ref = dbuf(n);
                    for (int64_t i = 0; i < n; i++) ref[i] = c->ref(x[i]);
                    EXPECT(c->op(t), s, dt, ref, tol_a(dt), tol_r(dt));
                    release(m);
                }
}

TEST(unary_special_values) {
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("special values %s", tg_dtype_name(dt));
        double xs[] = { -2, -0.0, 0.0, 3 };
        tg_tensor *x = from_doubles(dt, TG_SHAPE(4), xs);
        EXPECT_EXACT(tg_sign(x), TG_SHAPE(4), dt, ((double[]){ -1, 0, 0, 1 }));
        EXPECT_EXACT(tg_abs(x), TG_SHAPE(4), dt, ((double[]){ 2, 0, 0, 3 }));
        EXPECT_EXACT(tg_relu(x), TG_SHAPE(4), dt, ((double[]){ 0, 0, 0, 3 }));
        EXPECT(tg_sqrt(tg_abs(x)), TG_SHAPE(4), dt, ((double[]){ sqrt(2.0), 0, 0, sqrt(3.0) }), tol_a(dt), tol_r(dt));
        double big[] = { -1000, 0, 1000 };
        tg_tensor *b = from_doubles(dt, TG_SHAPE(3), big);
        EXPECT(tg_exp(b), TG_SHAPE(3), dt, ((double[]){ 0, 1, INFINITY }), 0, 0);
        EXPECT(tg_sigmoid(b), TG_SHAPE(3), dt, ((double[]){ 0, 0.5, 1 }), 0, 0);
        EXPECT(tg_tanh(b), TG_SHAPE(3), dt, ((double[]){ -1, 0, 1 }), 0, 0);
        double lg[] = { 0, 1, -1 };
        EXPECT(tg_log(from_doubles(dt, TG_SHAPE(3), lg)), TG_SHAPE(3), dt, ((double[]){ -INFINITY, 0, NAN }), 0, 0);
        EXPECT(tg_reciprocal(from_doubles(dt, TG_SHAPE(3), lg)), TG_SHAPE(3), dt, ((double[]){ INFINITY, 1, -1 }), 0, 0);
        double pw[] = { 0, -2, 4, -4 };
        tg_tensor *p = from_doubles(dt, TG_SHAPE(4), pw);
        EXPECT(tg_pow_scalar(p, 0), TG_SHAPE(4), dt, ((double[]){ 1, 1, 1, 1 }), 0, 0);
        EXPECT(tg_pow_scalar(p, 3), TG_SHAPE(4), dt, ((double[]){ 0, -8, 64, -64 }), 0, 0);
        EXPECT(tg_pow_scalar(p, 2), TG_SHAPE(4), dt, ((double[]){ 0, 4, 16, 16 }), 0, 0);
        EXPECT(tg_pow_scalar(p, 0.5), TG_SHAPE(4), dt, ((double[]){ 0, NAN, 2, NAN }), 0, 0);
        EXPECT(tg_clamp(p, -1, 1), TG_SHAPE(4), dt, ((double[]){ 0, -1, 1, -1 }), 0, 0);
        EXPECT(tg_clamp(p, 2, 2), TG_SHAPE(4), dt, ((double[]){ 2, 2, 2, 2 }), 0, 0);
        EXPECT(tg_leaky_relu(p, 0.25), TG_SHAPE(4), dt, ((double[]){ 0, -0.5, 4, -1 }), 0, 0);
    }
}

TEST(unary_int32) {
    double xs[] = { -3, 0, 5, -7, 2, 1 };
    tg_tensor *x = make(TG_I32, TG_SHAPE(2, 3), xs, L_TRANSPOSED);
    WHAT("i32 unary on a transposed view");
    EXPECT_EXACT(tg_neg(x), TG_SHAPE(2, 3), TG_I32, ((double[]){ 3, 0, -5, 7, -2, -1 }));
    EXPECT_EXACT(tg_abs(x), TG_SHAPE(2, 3), TG_I32, ((double[]){ 3, 0, 5, 7, 2, 1 }));
    EXPECT_EXACT(tg_square(x), TG_SHAPE(2, 3), TG_I32, ((double[]){ 9, 0, 25, 49, 4, 1 }));
    EXPECT_EXACT(tg_relu(x), TG_SHAPE(2, 3), TG_I32, ((double[]){ 0, 0, 5, 0, 2, 1 }));
    EXPECT_EXACT(tg_sign(x), TG_SHAPE(2, 3), TG_I32, ((double[]){ -1, 0, 1, -1, 1, 1 }));
    EXPECT_EXACT(tg_add_scalar(x, 3), TG_SHAPE(2, 3), TG_I32, ((double[]){ 0, 3, 8, -4, 5, 4 }));
    EXPECT_EXACT(tg_mul_scalar(x, 2), TG_SHAPE(2, 3), TG_I32, ((double[]){ -6, 0, 10, -14, 4, 2 }));
    EXPECT_EXACT(tg_clamp(x, -2, 3), TG_SHAPE(2, 3), TG_I32, ((double[]){ -2, 0, 3, -2, 2, 1 }));
}

/* ================================================================== binary */

typedef struct {
    const char *name;
    tg_tensor *(*op)(tg_tensor *, tg_tensor *);
    double (*ref)(double, double);
    double alo, ahi, blo, bhi;
    bool b_signed; /* b drawn from [blo, bhi) with a random sign (keeps it away from 0) */
} binary_case;

static double b_add(double a, double b) { return a + b; }
static double b_sub(double a, double b) { return a - b; }
static double b_mul(double a, double b) { return a * b; }
static double b_div(double a, double b) { return a / b; }
static double b_max(double a, double b) { return a > b ? a : b; }
static double b_min(double a, double b) { return a < b ? a : b; }

static const binary_case k_binary[] = {
    { "add", tg_add, b_add, -5, 5, -5, 5, false },
    { "sub", tg_sub, b_sub, -5, 5, -5, 5, false },
    { "mul", tg_mul, b_mul, -5, 5, -5, 5, false },
    { "div", tg_div, b_div, -5, 5, 0.5, 2, true },
    { "pow", tg_pow, pow, 0.1, 3, -2, 2, false },
    { "maximum", tg_maximum, b_max, -3, 3, -3, 3, false },
    { "minimum", tg_minimum, b_min, -3, 3, -3, 3, false },
};
#define N_BINARY ((int)(sizeof k_binary / sizeof k_binary[0]))

#define N_BSHAPES 10
static void bshapes(tg_shape *a, tg_shape *b) {
    tg_shape as[N_BSHAPES] = { TG_SHAPE(7), TG_SHAPE(3, 1, 4), TG_SCALAR_SHAPE, TG_SHAPE(3, 4), TG_SHAPE(17, 1),
                               TG_SHAPE(1), TG_SHAPE(2, 1, 3, 1), TG_SHAPE(1, 1), TG_SHAPE(311, 321), TG_SHAPE(311, 321) };
    tg_shape bs[N_BSHAPES] = { TG_SHAPE(7), TG_SHAPE(5, 4), TG_SHAPE(3, 4), TG_SCALAR_SHAPE, TG_SHAPE(1, 17),
                               TG_SHAPE(1023), TG_SHAPE(4, 1, 5), TG_SCALAR_SHAPE, TG_SHAPE(321), TG_SHAPE(311, 321) };
    for (int i = 0; i < N_BSHAPES; i++) a[i] = as[i], b[i] = bs[i];
}

static const int k_layout_pairs[4][2] = {
    { L_CONTIG, L_CONTIG }, { L_STRIDED, L_TRANSPOSED }, { L_TRANSPOSED, L_FLIPPED }, { L_FLIPPED, L_STRIDED },
};

/* out[i] = f(a[bcast i], b[bcast i]) over the broadcast shape. */
static double *ref_binary(double (*f)(double, double), tg_shape sa, const double *a, tg_shape sb, const double *b,
                          tg_shape so) {
    int64_t n = numel_of(so), idx[TG_MAX_DIMS] = { 0 };
    double *r = dbuf(n);
    for (int64_t i = 0; i < n; i++) {
        unravel(i, so, idx);
        r[i] = f(a[bcast_flat(idx, so, sa)], b[bcast_flat(idx, so, sb)]);
    }
    return r;
}

TEST(binary_broadcast_layouts_dtypes) {
    tg_shape sas[N_BSHAPES], sbs[N_BSHAPES];
    bshapes(sas, sbs);
    for (int o = 0; o < N_BINARY; o++)
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < N_BSHAPES; k++)
                for (int l = 0; l < 4; l++) {
                    size_t m = mark();
                    const binary_case *c = &k_binary[o];
                    tg_dtype dt = k_float_dtypes[d];
                    tg_shape sa = sas[k], sb = sbs[k], so = bcast_shape(sa, sb);
                    WHAT("%s %s %s %s with %s %s", c->name, tg_dtype_name(dt), shape_str(sa),
                         k_layout_names[k_layout_pairs[l][0]], shape_str(sb), k_layout_names[k_layout_pairs[l][1]]);
                    double *a = uniform_vals(dt, numel_of(sa), c->alo, c->ahi);
                    double *b = uniform_vals(dt, numel_of(sb), c->blo, c->bhi);
                    if (c->b_signed)
                        for (int64_t i = 0; i < numel_of(sb); i++) b[i] = next_u64() & 1 ? -b[i] : b[i];
                    tg_tensor *ta = make(dt, sa, a, k_layout_pairs[l][0]), *tb = make(dt, sb, b, k_layout_pairs[l][1]);
                    double *ref = ref_binary(c->ref, sa, a, sb, b, so);
                    EXPECT(c->op(ta, tb), so, dt, ref, tol_a(dt), tol_r(dt));
                    release(m);
                }
}

TEST(binary_same_tensor_both_operands) {
    /* An input aliased as both operands, and an operand that is a broadcast view. */
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("aliased operands %s", tg_dtype_name(dt));
        double *x;
        tg_tensor *t = input(dt, TG_SHAPE(5, 3), -2, 2, L_TRANSPOSED, &x);
        double ref[15], ref2[15];
        for (int i = 0; i < 15; i++) ref[i] = x[i] * x[i], ref2[i] = x[i] - x[i / 3 * 3]; /* minus column 0 */
        EXPECT(tg_mul(t, t), TG_SHAPE(5, 3), dt, ref, tol_a(dt), tol_r(dt));
        tg_tensor *col0 = tg_expand(tg_slice(t, 1, 0, 1, 1), TG_SHAPE(5, 3));
        EXPECT(tg_sub(t, col0), TG_SHAPE(5, 3), dt, ref2, tol_a(dt), tol_r(dt));
    }
}

TEST(binary_int32) {
    double a[] = { -3, 0, 5, -7, 2, 9 }, b[] = { 2, -4, 5 };
    tg_tensor *ta = make(TG_I32, TG_SHAPE(2, 3), a, L_TRANSPOSED), *tb = from_doubles(TG_I32, TG_SHAPE(3), b);
    WHAT("i32 binary");
    EXPECT_EXACT(tg_add(ta, tb), TG_SHAPE(2, 3), TG_I32, ((double[]){ -1, -4, 10, -5, -2, 14 }));
    EXPECT_EXACT(tg_sub(ta, tb), TG_SHAPE(2, 3), TG_I32, ((double[]){ -5, 4, 0, -9, 6, 4 }));
    EXPECT_EXACT(tg_mul(ta, tb), TG_SHAPE(2, 3), TG_I32, ((double[]){ -6, 0, 25, -14, -8, 45 }));
    EXPECT_EXACT(tg_maximum(ta, tb), TG_SHAPE(2, 3), TG_I32, ((double[]){ 2, 0, 5, 2, 2, 9 }));
    EXPECT_EXACT(tg_minimum(ta, tb), TG_SHAPE(2, 3), TG_I32, ((double[]){ -3, -4, 5, -7, -4, 5 }));
}

/* ================================================================== comparisons, where */

static double c_eq(double a, double b) { return a == b; }
static double c_ne(double a, double b) { return a != b; }
static double c_lt(double a, double b) { return a < b; }
static double c_le(double a, double b) { return a <= b; }
static double c_gt(double a, double b) { return a > b; }
static double c_ge(double a, double b) { return a >= b; }

TEST(comparisons_broadcast_layouts_dtypes) {
    struct {
        const char *name;
        tg_tensor *(*op)(tg_tensor *, tg_tensor *);
        double (*ref)(double, double);
    } cs[] = { { "eq", tg_eq, c_eq }, { "ne", tg_ne, c_ne }, { "lt", tg_lt, c_lt },
               { "le", tg_le, c_le }, { "gt", tg_gt, c_gt }, { "ge", tg_ge, c_ge } };
    tg_shape sas[N_BSHAPES], sbs[N_BSHAPES];
    bshapes(sas, sbs);
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int o = 0; o < 6; o++)
        for (int d = 0; d < 3; d++)
            for (int k = 0; k < N_BSHAPES; k++)
                for (int l = 0; l < 4; l++) {
                    size_t m = mark();
                    tg_dtype dt = dts[d];
                    tg_shape sa = sas[k], sb = sbs[k], so = bcast_shape(sa, sb);
                    WHAT("%s %s %s %s with %s %s", cs[o].name, tg_dtype_name(dt), shape_str(sa),
                         k_layout_names[k_layout_pairs[l][0]], shape_str(sb), k_layout_names[k_layout_pairs[l][1]]);
                    /* a small set of values, so equality happens often */
                    double *a = int_vals(numel_of(sa), -2, 3), *b = int_vals(numel_of(sb), -2, 3);
                    if (dt != TG_I32)
                        for (int64_t i = 0; i < numel_of(sa); i++) a[i] *= 0.5;
                    if (dt != TG_I32)
                        for (int64_t i = 0; i < numel_of(sb); i++) b[i] *= 0.5;
                    tg_tensor *ta = make(dt, sa, a, k_layout_pairs[l][0]), *tb = make(dt, sb, b, k_layout_pairs[l][1]);
                    EXPECT_EXACT(cs[o].op(ta, tb), so, TG_U8, ref_binary(cs[o].ref, sa, a, sb, b, so));
                    release(m);
                }
}

TEST(comparisons_u8_inputs) {
    double a[] = { 0, 1, 200, 255 }, b[] = { 1, 1, 100, 0 };
    tg_tensor *ta = from_doubles(TG_U8, TG_SHAPE(4), a), *tb = from_doubles(TG_U8, TG_SHAPE(4), b);
    WHAT("u8 comparisons");
    EXPECT_EXACT(tg_lt(ta, tb), TG_SHAPE(4), TG_U8, ((double[]){ 1, 0, 0, 0 }));
    EXPECT_EXACT(tg_ge(ta, tb), TG_SHAPE(4), TG_U8, ((double[]){ 0, 1, 1, 1 }));
    EXPECT_EXACT(tg_eq(ta, tb), TG_SHAPE(4), TG_U8, ((double[]){ 0, 1, 0, 0 }));
}

TEST(where_broadcast_layouts_dtypes) {
    tg_shape cshapes[4] = { TG_SHAPE(3, 1, 4), TG_SHAPE(5, 4), TG_SCALAR_SHAPE, TG_SHAPE(321) };
    tg_shape ashapes[4] = { TG_SHAPE(5, 4), TG_SHAPE(5, 4), TG_SHAPE(2, 3), TG_SHAPE(311, 321) };
    tg_shape bshapes_[4] = { TG_SCALAR_SHAPE, TG_SHAPE(5, 4), TG_SHAPE(3), TG_SHAPE(311, 1) };
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int k = 0; k < 4; k++)
        for (int d = 0; d < 3; d++)
            for (int l = 0; l < 4; l++) {
                size_t m = mark();
                tg_dtype dt = dts[d];
                tg_shape sc = cshapes[k], sa = ashapes[k], sb = bshapes_[k];
                tg_shape so = bcast_shape(sc, bcast_shape(sa, sb));
                WHAT("where cond %s a %s b %s %s %s", shape_str(sc), shape_str(sa), shape_str(sb), tg_dtype_name(dt),
                     k_layout_names[l]);
                double *c = int_vals(numel_of(sc), 0, 2);
                double *a = dt == TG_I32 ? int_vals(numel_of(sa), -50, 50) : uniform_vals(dt, numel_of(sa), -5, 5);
                double *b = dt == TG_I32 ? int_vals(numel_of(sb), -50, 50) : uniform_vals(dt, numel_of(sb), -5, 5);
                tg_tensor *tc = make(TG_U8, sc, c, l), *ta = make(dt, sa, a, k_layout_pairs[l][0]);
                tg_tensor *tb = make(dt, sb, b, k_layout_pairs[l][1]);
                int64_t n = numel_of(so), idx[TG_MAX_DIMS] = { 0 };
                double *ref = dbuf(n);
                for (int64_t i = 0; i < n; i++) {
                    unravel(i, so, idx);
                    ref[i] = c[bcast_flat(idx, so, sc)] ? a[bcast_flat(idx, so, sa)] : b[bcast_flat(idx, so, sb)];
                }
                EXPECT_EXACT(tg_where(tc, ta, tb), so, dt, ref);
                release(m);
            }
    /* a comparison's mask as cond */
    double xs[] = { -1, 2, -3, 4 };
    tg_tensor *x = from_doubles(TG_F64, TG_SHAPE(4), xs);
    WHAT("where with a comparison mask");
    EXPECT_EXACT(tg_where(tg_gt(x, tg_scalar(TG_F64, 0, tg_test_device())), x, tg_scalar(TG_F64, -9, tg_test_device())),
                 TG_SHAPE(4), TG_F64, ((double[]){ -9, 2, -9, 4 }));
}

/* ================================================================== reductions */

typedef enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_VAR0, R_VAR1, R_STD0, R_STD1, R_LSE, R_ARGMAX, R_ARGMIN, R_COUNT } red_kind;
static const char *const k_red_names[R_COUNT] = { "sum", "mean", "max", "min", "var(c=0)", "var(c=1)",
                                                  "std(c=0)", "std(c=1)", "logsumexp", "argmax", "argmin" };

static uint32_t axes_mask(tg_axes ax, int nd) {
    if (ax.n < 0) return nd ? (1u << nd) - 1 : 0;
    uint32_t m = 0;
    for (int i = 0; i < ax.n; i++) m |= 1u << (ax.axes[i] < 0 ? ax.axes[i] + nd : ax.axes[i]);
    return m;
}

static tg_shape reduced_shape(tg_shape s, uint32_t mask, bool keepdim) {
    tg_shape o = { 0 };
    for (int i = 0; i < s.ndim; i++) {
        if (!(mask >> i & 1)) o.dims[o.ndim++] = s.dims[i];
        else if (keepdim) o.dims[o.ndim++] = 1;
    }
    return o;
}

/* The reference reduction over the axes in mask: out values, and in scale a magnitude
 * that bounds rounding (sum |x| for sums, and so on). */
static void ref_reduce(red_kind k, tg_shape s, const double *x, uint32_t mask, double *out, double *scale) {
    tg_shape ks = reduced_shape(s, mask, true);
    int64_t n = numel_of(s), no = numel_of(ks), idx[TG_MAX_DIMS] = { 0 };
    double *cnt = dbuf(no), *sum = dbuf(no), *sabs = dbuf(no), *mx = dbuf(no), *mn = dbuf(no), *amx = dbuf(no),
           *amn = dbuf(no), *sq = dbuf(no), *se = dbuf(no);
    int64_t *oi = track(malloc((size_t)(n > 0 ? n : 1) * sizeof *oi));
    int axis = 0;
    for (int d = 0; d < s.ndim; d++)
        if (mask >> d & 1) axis = d; /* arg reductions take one axis */
    for (int64_t i = 0; i < n; i++) {
        unravel(i, s, idx);
        int64_t a = s.ndim ? idx[axis] : 0;
        for (int d = 0; d < s.ndim; d++)
            if (mask >> d & 1) idx[d] = 0;
        int64_t o = oi[i] = ravel(idx, ks);
        if (cnt[o] == 0 || x[i] > mx[o]) mx[o] = x[i], amx[o] = (double)a;
        if (cnt[o] == 0 || x[i] < mn[o]) mn[o] = x[i], amn[o] = (double)a;
        cnt[o] += 1, sum[o] += x[i], sabs[o] += fabs(x[i]);
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t o = oi[i];
        double dv = x[i] - sum[o] / cnt[o];
        sq[o] += dv * dv;
        se[o] += exp(x[i] - mx[o]);
    }
    for (int64_t o = 0; o < no; o++) {
        double mean = sum[o] / cnt[o];
        switch (k) {
        case R_SUM: out[o] = sum[o], scale[o] = sabs[o]; break;
        case R_MEAN: out[o] = mean, scale[o] = sabs[o] / cnt[o]; break;
        case R_MAX: out[o] = mx[o], scale[o] = 0; break;
        case R_MIN: out[o] = mn[o], scale[o] = 0; break;
        case R_VAR0: out[o] = sq[o] / cnt[o], scale[o] = (sq[o] + sabs[o] * sabs[o] / cnt[o]) / cnt[o]; break;
        case R_VAR1: out[o] = sq[o] / (cnt[o] - 1), scale[o] = (sq[o] + sabs[o] * sabs[o] / cnt[o]) / (cnt[o] - 1); break;
        case R_STD0: out[o] = sqrt(sq[o] / cnt[o]), scale[o] = sqrt((sq[o] + sabs[o] * sabs[o] / cnt[o]) / cnt[o]); break;
        case R_STD1:
            out[o] = sqrt(sq[o] / (cnt[o] - 1)), scale[o] = sqrt((sq[o] + sabs[o] * sabs[o] / cnt[o]) / (cnt[o] - 1));
            break;
        case R_LSE: out[o] = mx[o] + log(se[o]), scale[o] = fabs(out[o]) + 1; break;
        case R_ARGMAX: out[o] = amx[o], scale[o] = 0; break;
        default: out[o] = amn[o], scale[o] = 0; break;
        }
    }
}

static tg_tensor *run_reduce(red_kind k, tg_tensor *x, tg_axes ax, bool keepdim) {
    switch (k) {
    case R_SUM: return tg_sum(x, ax, keepdim);
    case R_MEAN: return tg_mean(x, ax, keepdim);
    case R_MAX: return tg_max(x, ax, keepdim);
    case R_MIN: return tg_min(x, ax, keepdim);
    case R_VAR0: return tg_var(x, ax, 0, keepdim);
    case R_VAR1: return tg_var(x, ax, 1, keepdim);
    case R_STD0: return tg_std(x, ax, 0, keepdim);
    case R_STD1: return tg_std(x, ax, 1, keepdim);
    case R_LSE: return tg_logsumexp(x, ax, keepdim);
    case R_ARGMAX: return tg_argmax(x, ax.axes[0], keepdim);
    default: return tg_argmin(x, ax.axes[0], keepdim);
    }
}

typedef struct {
    tg_shape shape;
    tg_axes axes;
} red_setup;

#define N_RED_SETUPS 18
static void red_setups(red_setup *r) {
    red_setup rs[N_RED_SETUPS] = {
        { TG_SHAPE(3, 4, 5), TG_ALL },          { TG_SHAPE(3, 4, 5), TG_AXES(0) },
        { TG_SHAPE(3, 4, 5), TG_AXES(1) },      { TG_SHAPE(3, 4, 5), TG_AXES(2) },
        { TG_SHAPE(3, 4, 5), TG_AXES(-1) },     { TG_SHAPE(3, 4, 5), TG_AXES(0, 2) },
        { TG_SHAPE(3, 4, 5), TG_AXES(2, 1) },   { TG_SHAPE(3, 4, 5), TG_AXES(0, 1, 2) },
        { TG_SHAPE(2, 3, 4, 5), TG_AXES(1, 3) }, { TG_SHAPE(7), TG_AXES(0) },
        { TG_SHAPE(17, 1, 3), TG_AXES(0) },     { TG_SHAPE(17, 1, 3), TG_AXES(1) },
        { TG_SHAPE(1), TG_ALL },
        { TG_SCALAR_SHAPE, TG_ALL },            { TG_SHAPE(1023), TG_ALL },
        { TG_SHAPE(313, 321), TG_ALL },         { TG_SHAPE(313, 321), TG_AXES(0) },
        { TG_SHAPE(313, 321), TG_AXES(1) },
    };
    for (int i = 0; i < N_RED_SETUPS; i++) r[i] = rs[i];
}

TEST(reductions_axes_keepdim_layouts_dtypes) {
    red_setup rs[N_RED_SETUPS];
    red_setups(rs);
    for (int k = R_SUM; k <= R_LSE; k++)
        for (int q = 0; q < N_RED_SETUPS; q++)
            for (int d = 0; d < 2; d++)
                for (int l = 0; l < L_COUNT; l++)
                    for (int keep = 0; keep < 2; keep++) {
                        tg_shape s = rs[q].shape;
                        uint32_t mask = axes_mask(rs[q].axes, s.ndim);
                        int64_t count = numel_of(s) / numel_of(reduced_shape(s, mask, true));
                        if ((k == R_VAR1 || k == R_STD1) && count < 2) continue;
                        size_t m = mark();
                        tg_dtype dt = k_float_dtypes[d];
                        WHAT("%s %s over mask 0x%x keepdim %d %s %s", k_red_names[k], shape_str(s), mask, keep,
                             tg_dtype_name(dt), k_layout_names[l]);
                        double *x;
                        tg_tensor *t = input(dt, s, -3, 3, l, &x);
                        tg_shape so = reduced_shape(s, mask, keep);
                        double *ref = dbuf(numel_of(so)), *scale = dbuf(numel_of(so));
                        ref_reduce((red_kind)k, s, x, mask, ref, scale);
                        double rt = dt == TG_F32 ? 2e-6 : 1e-13;
                        EXPECT_SCALED(run_reduce((red_kind)k, t, rs[q].axes, keep), so, dt, ref, tol_a(dt), rt, scale);
                        release(m);
                    }
}

TEST(argmax_argmin_ties_layouts_dtypes) {
    tg_shape shapes[4] = { TG_SHAPE(3, 4, 5), TG_SHAPE(7), TG_SHAPE(17, 1, 3), TG_SHAPE(313, 321) };
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int k = R_ARGMAX; k <= R_ARGMIN; k++)
        for (int q = 0; q < 4; q++)
            for (int a = -1; a < shapes[q].ndim; a++)
                for (int d = 0; d < 3; d++)
                    for (int l = 0; l < L_COUNT; l++)
                        for (int keep = 0; keep < 2; keep++) {
                            size_t m = mark();
                            tg_shape s = shapes[q];
                            tg_dtype dt = dts[d];
                            int axis = a < 0 ? s.ndim - 1 : a; /* a = -1 tests the negative axis */
                            WHAT("%s %s axis %d keepdim %d %s %s", k_red_names[k], shape_str(s), a, keep,
                                 tg_dtype_name(dt), k_layout_names[l]);
                            double *x = int_vals(numel_of(s), -2, 3); /* many ties: the first index wins */
                            tg_tensor *t = make(dt, s, x, l);
                            uint32_t mask = 1u << axis;
                            tg_shape so = reduced_shape(s, mask, keep);
                            double *ref = dbuf(numel_of(so)), *scale = dbuf(numel_of(so));
                            ref_reduce((red_kind)k, s, x, mask, ref, scale);
                            EXPECT_EXACT(run_reduce((red_kind)k, t, TG_AXES(a), keep), so, TG_I32, ref);
                            release(m);
                        }
}

TEST(max_min_int32_and_negative_values) {
    double xs[] = { -5, -9, -1, -7, -3, -8 };
    tg_tensor *x = make(TG_I32, TG_SHAPE(2, 3), xs, L_TRANSPOSED);
    WHAT("i32 max/min");
    EXPECT_EXACT(tg_max(x, TG_AXES(1), false), TG_SHAPE(2), TG_I32, ((double[]){ -1, -3 }));
    EXPECT_EXACT(tg_min(x, TG_AXES(0), true), TG_SHAPE(1, 3), TG_I32, ((double[]){ -7, -9, -8 }));
    EXPECT_EXACT(tg_max(x, TG_ALL, false), TG_SCALAR_SHAPE, TG_I32, ((double[]){ -1 }));
}

TEST(logsumexp_large_and_infinite) {
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("logsumexp large %s", tg_dtype_name(dt));
        double xs[] = { 1000, 1000, 990, -1000, -1000, -1010, -INFINITY, -INFINITY, -INFINITY, -INFINITY, 0, -INFINITY };
        tg_tensor *x = from_doubles(dt, TG_SHAPE(4, 3), xs);
        double ref[4] = { 1000 + log(2 + exp(-10.0)), -1000 + log(2 + exp(-10.0)), -INFINITY, 0 };
        EXPECT(tg_logsumexp(x, TG_AXES(1), false), TG_SHAPE(4), dt, ref, tol_a(dt), tol_r(dt));
        EXPECT(tg_logsumexp(tg_transpose(x, 0, 1), TG_AXES(0), true), TG_SHAPE(1, 4), dt, ref, tol_a(dt), tol_r(dt));
    }
}

TEST(norm_sizes_layouts_dtypes) {
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < N_SIZES; k++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                tg_shape s = size_shape(k);
                WHAT("norm %s %s %s", tg_dtype_name(dt), shape_str(s), k_layout_names[l]);
                double *x;
                tg_tensor *t = input(dt, s, -3, 3, l, &x);
                double sq = 0;
                for (int64_t i = 0; i < numel_of(s); i++) sq += x[i] * x[i];
                double ref = sqrt(sq);
                EXPECT(tg_norm(t), TG_SCALAR_SHAPE, dt, &ref, 0, dt == TG_F32 ? 1e-5 : 1e-12);
                release(m);
            }
}

/* ================================================================== softmax, log_softmax */

static void ref_softmax(tg_shape s, const double *x, int axis, bool log_, double *out) {
    int64_t n = numel_of(s), len = s.dims[axis], inner = 1;
    for (int d = axis + 1; d < s.ndim; d++) inner *= s.dims[d];
    for (int64_t o = 0; o < n / (len * inner); o++)
        for (int64_t r = 0; r < inner; r++) {
            int64_t base = o * len * inner + r;
            double mx = -INFINITY, se = 0;
            for (int64_t j = 0; j < len; j++) mx = fmax(mx, x[base + j * inner]);
            for (int64_t j = 0; j < len; j++) se += exp(x[base + j * inner] - mx);
            for (int64_t j = 0; j < len; j++) {
                double v = x[base + j * inner];
                out[base + j * inner] = log_ ? v - mx - log(se) : exp(v - mx) / se;
            }
        }
}

TEST(softmax_log_softmax_axes_layouts_dtypes) {
    struct {
        tg_shape s;
        int axis;
    } cs[] = { { TG_SHAPE(4, 7), 1 },   { TG_SHAPE(4, 7), 0 },    { TG_SHAPE(4, 7), -1 },   { TG_SHAPE(2, 3, 5), 1 },
               { TG_SHAPE(2, 3, 5), 0 }, { TG_SHAPE(2, 3, 5), -1 }, { TG_SHAPE(1), 0 },       { TG_SHAPE(17), 0 },
               { TG_SHAPE(100, 1023), -1 }, { TG_SHAPE(100, 1023), 0 } };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int lg = 0; lg < 2; lg++)
            for (int d = 0; d < 2; d++)
                for (int l = 0; l < L_COUNT; l++) {
                    size_t m = mark();
                    tg_dtype dt = k_float_dtypes[d];
                    tg_shape s = cs[q].s;
                    int axis = cs[q].axis < 0 ? cs[q].axis + s.ndim : cs[q].axis;
                    WHAT("%s %s axis %d %s %s", lg ? "log_softmax" : "softmax", shape_str(s), cs[q].axis,
                         tg_dtype_name(dt), k_layout_names[l]);
                    double *x;
                    tg_tensor *t = input(dt, s, -8, 8, l, &x);
                    double *ref = dbuf(numel_of(s));
                    ref_softmax(s, x, axis, lg, ref);
                    tg_tensor *y = lg ? tg_log_softmax(t, cs[q].axis) : tg_softmax(t, cs[q].axis);
                    EXPECT(y, s, dt, ref, tol_a(dt), dt == TG_F32 ? 2e-5 : 1e-12);
                    release(m);
                }
}

TEST(softmax_large_logits_stable) {
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("softmax large logits %s", tg_dtype_name(dt));
        double xs[] = { 1000, 1001, 999, -1000, 0, 1000, 0, -INFINITY, 1, -1000, -1001, -999 };
        tg_tensor *x = from_doubles(dt, TG_SHAPE(4, 3), xs);
        double sm[12], lsm[12];
        ref_softmax(TG_SHAPE(4, 3), xs, 1, false, sm);
        ref_softmax(TG_SHAPE(4, 3), xs, 1, true, lsm);
        CHECK_NEAR(sm[7], 0, 0); /* the reference itself: exp(-inf) is 0 */
        EXPECT(tg_softmax(x, 1), TG_SHAPE(4, 3), dt, sm, tol_a(dt), tol_r(dt));
        EXPECT(tg_log_softmax(x, 1), TG_SHAPE(4, 3), dt, lsm, tol_a(dt), tol_r(dt));
        EXPECT(tg_softmax(tg_transpose(x, 0, 1), 0), TG_SHAPE(3, 4), dt,
               ((double[]){ sm[0], sm[3], sm[6], sm[9], sm[1], sm[4], sm[7], sm[10], sm[2], sm[5], sm[8], sm[11] }),
               tol_a(dt), tol_r(dt));
    }
}

/* ================================================================== cross-entropy */

/* Per-sample losses for logits (N, C, D) (D = product of trailing axes) and labels
 * (N, D); ignored labels give 0 and no weight. Returns the number not ignored. */
static double ref_ce(const double *x, const double *lab, int64_t N, int64_t C, int64_t D, int32_t ignore, double *per) {
    double valid = 0;
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t dd = 0; dd < D; dd++) {
            int64_t li = nn * D + dd;
            if ((int32_t)lab[li] == ignore) {
                per[li] = 0;
                continue;
            }
            double mx = -INFINITY, se = 0;
            for (int64_t c = 0; c < C; c++) mx = fmax(mx, x[(nn * C + c) * D + dd]);
            for (int64_t c = 0; c < C; c++) se += exp(x[(nn * C + c) * D + dd] - mx);
            per[li] = mx + log(se) - x[(nn * C + (int64_t)lab[li]) * D + dd];
            valid += 1;
        }
    return valid;
}

TEST(cross_entropy_reductions_ignore_layouts_dtypes) {
    struct {
        tg_shape logits, labels;
    } cs[] = { { TG_SHAPE(6, 5), TG_SHAPE(6) }, { TG_SHAPE(2, 4, 3), TG_SHAPE(2, 3) }, { TG_SHAPE(1, 1), TG_SHAPE(1) },
               { TG_SHAPE(2, 3, 2, 2), TG_SHAPE(2, 2, 2) }, { TG_SHAPE(300, 10), TG_SHAPE(300) } };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 2; d++)
            for (int l = 0; l < L_COUNT; l++)
                for (int mode = 0; mode < 6; mode++) {
                    size_t m = mark();
                    tg_dtype dt = k_float_dtypes[d];
                    tg_shape sl = cs[q].logits, sy = cs[q].labels;
                    int64_t N = sl.dims[0], C = sl.dims[1], D = numel_of(sy) / N;
                    /* mode: 0 plain call, 1 mean, 2 sum, 3 none, 4 ignore_index 2, 5 ignore_index 0 */
                    tg_cross_entropy_opts o = { 0 };
                    if (mode == 2) o.reduction = TG_REDUCTION_SUM;
                    if (mode == 3) o.reduction = TG_REDUCTION_NONE;
                    if (mode == 4) o.use_ignore_index = true, o.ignore_index = 2;
                    if (mode == 5) o.use_ignore_index = true, o.ignore_index = 0, o.reduction = TG_REDUCTION_SUM;
                    int32_t ignore = mode >= 4 ? o.ignore_index : -100;
                    WHAT("cross_entropy %s mode %d %s %s", shape_str(sl), mode, tg_dtype_name(dt), k_layout_names[l]);
                    double *x;
                    tg_tensor *t = input(dt, sl, -4, 4, l, &x);
                    double *lab = int_vals(numel_of(sy), 0, C);
                    if (numel_of(sy) > 1) lab[1] = -100; /* ignored by default (-100) */
                    if (numel_of(sy) > 1 && mode == 5) lab[0] = 0; /* at least one ignored 0 */
                    if (mode == 5 && numel_of(sy) > 1) lab[1] = C - 1;
                    if (mode == 4 && numel_of(sy) > 1) lab[1] = C > 2 ? 2 : 0;
                    tg_tensor *ty = make(TG_I32, sy, lab, (l + 1) % L_COUNT); /* labels non-contiguous too */
                    double *per = dbuf(numel_of(sy));
                    double valid = ref_ce(x, lab, N, C, D, ignore, per), total = 0, stotal = 0;
                    for (int64_t i = 0; i < numel_of(sy); i++) total += per[i], stotal += fabs(per[i]);
                    double rt = dt == TG_F32 ? 2e-5 : 1e-12;
                    tg_tensor *r = mode == 0 ? tg_cross_entropy(t, ty) : tg_cross_entropy_ex(t, ty, &o);
                    if (mode == 3) {
                        EXPECT(r, sy, dt, per, tol_a(dt), rt);
                    } else if (mode == 2 || mode == 5) {
                        EXPECT_SCALED(r, TG_SCALAR_SHAPE, dt, &total, tol_a(dt), rt, &stotal);
                    } else {
                        double mean = total / valid, smean = stotal / valid;
                        EXPECT_SCALED(r, TG_SCALAR_SHAPE, dt, &mean, tol_a(dt), rt, &smean);
                    }
                    release(m);
                }
}

TEST(cross_entropy_large_logits) {
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("cross_entropy large logits %s", tg_dtype_name(dt));
        double xs[] = { 1000, 0, -1000, 1000, 0, -1000, 1000, 0, -1000 };
        int32_t ys[] = { 0, 1, 2 };
        tg_tensor *x = from_doubles(dt, TG_SHAPE(3, 3), xs);
        tg_tensor *y = tg_from_i32(ys, TG_SHAPE(3), tg_test_device());
        EXPECT(tg_cross_entropy_ex(x, y, &(tg_cross_entropy_opts){ .reduction = TG_REDUCTION_NONE }), TG_SHAPE(3), dt,
               ((double[]){ 0, 1000, 2000 }), tol_a(dt), tol_r(dt));
        EXPECT(tg_cross_entropy(x, y), TG_SCALAR_SHAPE, dt, ((double[]){ 1000 }), tol_a(dt), tol_r(dt));
    }
}

/* ================================================================== matmul */

/* numpy matmul on the test's side: promotes 1-D operands, broadcasts batches. */
static tg_shape ref_matmul(tg_shape sa, const double *a, tg_shape sb, const double *b, double **out, double **scale) {
    tg_shape ma = sa, mb = sb;
    if (sa.ndim == 1) ma = (tg_shape){ .ndim = 2, .dims = { 1, sa.dims[0] } };
    if (sb.ndim == 1) mb = (tg_shape){ .ndim = 2, .dims = { sb.dims[0], 1 } };
    int64_t M = ma.dims[ma.ndim - 2], K = ma.dims[ma.ndim - 1], N = mb.dims[mb.ndim - 1];
    tg_shape ba = { .ndim = ma.ndim - 2 }, bb = { .ndim = mb.ndim - 2 };
    for (int i = 0; i < ba.ndim; i++) ba.dims[i] = ma.dims[i];
    for (int i = 0; i < bb.ndim; i++) bb.dims[i] = mb.dims[i];
    tg_shape bo = bcast_shape(ba, bb);
    int64_t nb = numel_of(bo), idx[TG_MAX_DIMS] = { 0 };
    double *o = dbuf(nb * M * N), *sc = dbuf(nb * M * N);
    for (int64_t bi = 0; bi < nb; bi++) {
        unravel(bi, bo, idx);
        const double *pa = a + bcast_flat(idx, bo, ba) * M * K, *pb = b + bcast_flat(idx, bo, bb) * K * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0, s2 = 0;
                for (int64_t k = 0; k < K; k++) s += pa[i * K + k] * pb[k * N + j], s2 += fabs(pa[i * K + k] * pb[k * N + j]);
                o[(bi * M + i) * N + j] = s;
                sc[(bi * M + i) * N + j] = s2;
            }
    }
    tg_shape so = bo;
    if (sa.ndim > 1) so.dims[so.ndim++] = M;
    if (sb.ndim > 1) so.dims[so.ndim++] = N;
    *out = o;
    *scale = sc;
    return so;
}

TEST(matmul_shapes_layouts_dtypes) {
    struct {
        tg_shape a, b;
    } cs[] = {
        { TG_SHAPE(7), TG_SHAPE(7) },           { TG_SHAPE(4), TG_SHAPE(4, 3) },         { TG_SHAPE(3, 4), TG_SHAPE(4) },
        { TG_SHAPE(5, 7), TG_SHAPE(7, 3) },     { TG_SHAPE(2, 1, 3, 4), TG_SHAPE(5, 4, 6) },
        { TG_SHAPE(4), TG_SHAPE(2, 4, 3) },     { TG_SHAPE(2, 3, 4), TG_SHAPE(4) },      { TG_SHAPE(1, 1), TG_SHAPE(1, 1) },
        { TG_SHAPE(3, 2, 5), TG_SHAPE(3, 5, 4) }, { TG_SHAPE(17, 33), TG_SHAPE(33, 9) }, { TG_SHAPE(1, 1023), TG_SHAPE(1023, 1) },
        { TG_SHAPE(67, 130), TG_SHAPE(130, 71) }, { TG_SHAPE(129, 257), TG_SHAPE(257, 131) }, { TG_SHAPE(1023), TG_SHAPE(1023) },
    };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 2; d++)
            for (int l = 0; l < 4; l++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                tg_shape sa = cs[q].a, sb = cs[q].b;
                WHAT("matmul %s %s @ %s %s %s", shape_str(sa), k_layout_names[k_layout_pairs[l][0]], shape_str(sb),
                     k_layout_names[k_layout_pairs[l][1]], tg_dtype_name(dt));
                double *a, *b, *ref, *scale;
                tg_tensor *ta = input(dt, sa, -2, 2, k_layout_pairs[l][0], &a);
                tg_tensor *tb = input(dt, sb, -2, 2, k_layout_pairs[l][1], &b);
                tg_shape so = ref_matmul(sa, a, sb, b, &ref, &scale);
                EXPECT_SCALED(tg_matmul(ta, tb), so, dt, ref, tol_a(dt), dt == TG_F32 ? 2e-6 : 1e-13, scale);
                release(m);
            }
}

/* ================================================================== movement */

/* out[idx] = x[perm applied]: out axis i is x axis order[i]. */
static double *ref_permute(tg_shape s, const double *x, const int *order, tg_shape *so) {
    so->ndim = s.ndim;
    for (int i = 0; i < s.ndim; i++) so->dims[i] = s.dims[order[i]];
    int64_t n = numel_of(s), oi[TG_MAX_DIMS] = { 0 }, xi[TG_MAX_DIMS] = { 0 };
    double *r = dbuf(n);
    for (int64_t f = 0; f < n; f++) {
        unravel(f, *so, oi);
        for (int i = 0; i < s.ndim; i++) xi[order[i]] = oi[i];
        r[f] = x[ravel(xi, s)];
    }
    return r;
}

TEST(reshape_view_flatten) {
    tg_shape s = TG_SHAPE(3, 4, 5);
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++) {
            size_t m = mark();
            tg_dtype dt = k_float_dtypes[d];
            WHAT("reshape %s %s", tg_dtype_name(dt), k_layout_names[l]);
            double *x;
            tg_tensor *t = input(dt, s, -3, 3, l, &x);
            EXPECT_EXACT(tg_reshape(t, TG_SHAPE(5, -1)), TG_SHAPE(5, 12), dt, x);
            EXPECT_EXACT(tg_reshape(t, TG_SHAPE(60)), TG_SHAPE(60), dt, x);
            EXPECT_EXACT(tg_reshape(t, TG_SHAPE(2, -1, 5)), TG_SHAPE(2, 6, 5), dt, x);
            EXPECT_EXACT(tg_reshape(t, TG_SHAPE(-1)), TG_SHAPE(60), dt, x);
            EXPECT_EXACT(tg_reshape(t, TG_SHAPE(1, 3, 1, 20)), TG_SHAPE(1, 3, 1, 20), dt, x);
            EXPECT_EXACT(tg_flatten(t, 1), TG_SHAPE(3, 20), dt, x);
            EXPECT_EXACT(tg_flatten(t, 0), TG_SHAPE(60), dt, x);
            EXPECT_EXACT(tg_flatten(t, -1), TG_SHAPE(3, 4, 5), dt, x);
            EXPECT_EXACT(tg_flatten(t, -2), TG_SHAPE(3, 20), dt, x);
            /* reshape of a reshape of a non-contiguous input */
            EXPECT_EXACT(tg_reshape(tg_reshape(t, TG_SHAPE(12, 5)), TG_SHAPE(4, 15)), TG_SHAPE(4, 15), dt, x);
            if (l == L_CONTIG || l == L_STRIDED) /* these strides allow merging the first two axes */
                EXPECT_EXACT(tg_view(t, TG_SHAPE(12, 5)), TG_SHAPE(12, 5), dt, x);
            if (l == L_CONTIG) EXPECT_EXACT(tg_view(t, TG_SHAPE(-1, 2, 10)), TG_SHAPE(3, 2, 10), dt, x);
            if (l == L_TRANSPOSED) CHECK_ERROR(tg_view(t, TG_SHAPE(60)), "tg_view");
            release(m);
        }
    double one = 4.5;
    tg_tensor *sc = from_doubles(TG_F64, TG_SCALAR_SHAPE, &one);
    WHAT("reshape 0-d");
    EXPECT_EXACT(tg_reshape(sc, TG_SHAPE(1, 1)), TG_SHAPE(1, 1), TG_F64, &one);
    EXPECT_EXACT(tg_reshape(tg_reshape(sc, TG_SHAPE(1)), TG_SCALAR_SHAPE), TG_SCALAR_SHAPE, TG_F64, &one);
    EXPECT_EXACT(tg_flatten(sc, 0), TG_SHAPE(1), TG_F64, &one);
    EXPECT_EXACT(tg_view(sc, TG_SHAPE(1, 1, 1)), TG_SHAPE(1, 1, 1), TG_F64, &one);
}

TEST(reshape_is_view_when_contiguous) {
    double x[6] = { 1, 2, 3, 4, 5, 6 };
    tg_tensor *t = from_doubles(TG_F64, TG_SHAPE(2, 3), x);
    tg_tensor *v = tg_view(t, TG_SHAPE(3, 2));
    WHAT("view shares storage");
    CHECK(tg_fill_(t, 7) == TG_OK);
    EXPECT_EXACT(v, TG_SHAPE(3, 2), TG_F64, ((double[]){ 7, 7, 7, 7, 7, 7 }));
}

TEST(permute_transpose) {
    tg_shape s = TG_SHAPE(2, 3, 4, 5);
    int orders[4][4] = { { 2, 0, 1, 3 }, { 3, 2, 1, 0 }, { 1, 3, 0, 2 }, { 0, 1, 2, 3 } };
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int d = 0; d < 3; d++)
        for (int l = 0; l < L_COUNT; l++) {
            size_t m = mark();
            tg_dtype dt = dts[d];
            double *x = int_vals(numel_of(s), -100, 100);
            tg_tensor *t = make(dt, s, x, l);
            for (int p = 0; p < 4; p++) {
                WHAT("permute order %d %s %s", p, tg_dtype_name(dt), k_layout_names[l]);
                tg_shape so;
                double *ref = ref_permute(s, x, orders[p], &so);
                EXPECT_EXACT(tg_permute(t, TG_AXES(orders[p][0], orders[p][1], orders[p][2], orders[p][3])), so, dt, ref);
                /* the same order with negative axes */
                EXPECT_EXACT(tg_permute(t, TG_AXES(orders[p][0] - 4, orders[p][1], orders[p][2] - 4, orders[p][3])), so,
                             dt, ref);
            }
            WHAT("transpose %s %s", tg_dtype_name(dt), k_layout_names[l]);
            tg_shape so;
            EXPECT_EXACT(tg_transpose(t, 0, 2), TG_SHAPE(4, 3, 2, 5), dt,
                         ref_permute(s, x, (int[]){ 2, 1, 0, 3 }, &so));
            EXPECT_EXACT(tg_transpose(t, -1, -2), TG_SHAPE(2, 3, 5, 4), dt,
                         ref_permute(s, x, (int[]){ 0, 1, 3, 2 }, &so));
            EXPECT_EXACT(tg_transpose(t, 1, 1), s, dt, x);
            /* transposing twice gives the input back; contiguous of a permute is dense */
            EXPECT_EXACT(tg_transpose(tg_transpose(t, 0, 3), 3, 0), s, dt, x);
            tg_tensor *c = tg_contiguous(tg_permute(t, TG_AXES(3, 2, 1, 0)));
            CHECK(c && tg_is_contiguous(c));
            EXPECT_EXACT(c, TG_SHAPE(5, 4, 3, 2), dt, ref_permute(s, x, (int[]){ 3, 2, 1, 0 }, &so));
            release(m);
        }
}

TEST(expand) {
    struct {
        tg_shape in, target, out;
    } cs[] = {
        { TG_SHAPE(3, 1), TG_SHAPE(2, 3, 4), TG_SHAPE(2, 3, 4) },
        { TG_SHAPE(3, 1), TG_SHAPE(-1, 5), TG_SHAPE(3, 5) },
        { TG_SCALAR_SHAPE, TG_SHAPE(2, 3), TG_SHAPE(2, 3) },
        { TG_SHAPE(1, 4), TG_SHAPE(3, 1, 4), TG_SHAPE(3, 1, 4) },
        { TG_SHAPE(2, 1, 3), TG_SHAPE(2, 4, 3), TG_SHAPE(2, 4, 3) },
        { TG_SHAPE(1, 321), TG_SHAPE(311, 321), TG_SHAPE(311, 321) },
    };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 2; d++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("expand %s to %s %s %s", shape_str(cs[q].in), shape_str(cs[q].target), tg_dtype_name(dt),
                     k_layout_names[l]);
                double *x;
                tg_tensor *t = input(dt, cs[q].in, -3, 3, l, &x);
                tg_shape so = cs[q].out;
                int64_t n = numel_of(so), idx[TG_MAX_DIMS] = { 0 };
                double *ref = dbuf(n);
                for (int64_t i = 0; i < n; i++) {
                    unravel(i, so, idx);
                    ref[i] = x[bcast_flat(idx, so, cs[q].in)];
                }
                tg_tensor *e = tg_expand(t, cs[q].target);
                EXPECT_EXACT(e, so, dt, ref);
                /* an op on the expanded view, and a dense copy of it */
                double *ref2 = dbuf(n);
                for (int64_t i = 0; i < n; i++) ref2[i] = 2 * ref[i];
                EXPECT(tg_mul_scalar(e, 2), so, dt, ref2, 0, 0);
                EXPECT_EXACT(tg_contiguous(e), so, dt, ref);
                release(m);
            }
}

/* Python's x[start:stop:step] along axis, for the test. */
static double *ref_slice(tg_shape s, const double *x, int axis, int64_t start, int64_t stop, int64_t step, tg_shape *so) {
    int64_t len = s.dims[axis];
    if (start < 0) start += len;
    if (stop < 0) stop += len;
    if (start < 0) start = 0;
    if (start > len) start = len;
    if (stop > len) stop = len;
    if (stop < start) stop = start;
    *so = s;
    so->dims[axis] = (stop - start + step - 1) / step;
    int64_t n = numel_of(*so), idx[TG_MAX_DIMS] = { 0 };
    double *r = dbuf(n);
    for (int64_t i = 0; i < n; i++) {
        unravel(i, *so, idx);
        idx[axis] = start + idx[axis] * step;
        r[i] = x[ravel(idx, s)];
    }
    return r;
}

TEST(slice_step_negative_start_clamping) {
    tg_shape s = TG_SHAPE(7, 5);
    struct {
        int axis;
        int64_t start, stop, step;
    } cs[] = { { 0, 1, 6, 2 },  { 0, -5, INT64_MAX, 3 }, { 0, -100, 3, 1 }, { 0, 5, 2, 1 }, { 1, 1, -1, 2 },
               { -1, 0, 100, 4 }, { 0, 6, 7, 1 }, { 1, -1, INT64_MAX, 1 }, { 0, 0, INT64_MAX, 10 }, { 0, 3, -3, 1 } };
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++)
            for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("slice axis %d [%lld:%lld:%lld] %s %s", cs[q].axis, (long long)cs[q].start, (long long)cs[q].stop,
                     (long long)cs[q].step, tg_dtype_name(dt), k_layout_names[l]);
                double *x;
                tg_tensor *t = input(dt, s, -3, 3, l, &x);
                tg_shape so;
                int axis = cs[q].axis < 0 ? cs[q].axis + 2 : cs[q].axis;
                double *ref = ref_slice(s, x, axis, cs[q].start, cs[q].stop, cs[q].step, &so);
                tg_tensor *y = tg_slice(t, cs[q].axis, cs[q].start, cs[q].stop, cs[q].step);
                EXPECT_EXACT(y, so, dt, ref);
                /* a slice of the slice, then an op on it */
                if (numel_of(so) > 0) {
                    tg_shape so2;
                    double *ref2 = ref_slice(so, ref, 1, 1, INT64_MAX, 2, &so2);
                    EXPECT_EXACT(tg_slice(y, 1, 1, INT64_MAX, 2), so2, dt, ref2);
                    for (int64_t i = 0; i < numel_of(so2); i++) ref2[i] = -ref2[i];
                    EXPECT_EXACT(tg_neg(tg_slice(y, 1, 1, INT64_MAX, 2)), so2, dt, ref2);
                }
                release(m);
            }
    /* a large slice with a step, through an op (threads over a strided input) */
    size_t m = mark();
    double *x;
    tg_tensor *t = input(TG_F64, TG_SHAPE(600, 333), -3, 3, L_CONTIG, &x);
    tg_shape so;
    double *ref = ref_slice(TG_SHAPE(600, 333), x, 0, -599, INT64_MAX, 2, &so);
    for (int64_t i = 0; i < numel_of(so); i++) ref[i] = exp(ref[i]);
    WHAT("large strided slice");
    EXPECT(tg_exp(tg_slice(t, 0, -599, INT64_MAX, 2)), so, TG_F64, ref, 0, 1e-12);
    release(m);
}

TEST(squeeze_unsqueeze) {
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++) {
            size_t m = mark();
            tg_dtype dt = k_float_dtypes[d];
            WHAT("squeeze/unsqueeze %s %s", tg_dtype_name(dt), k_layout_names[l]);
            double *x;
            tg_tensor *t = input(dt, TG_SHAPE(3, 1, 4), -3, 3, l, &x);
            EXPECT_EXACT(tg_squeeze(t, 1), TG_SHAPE(3, 4), dt, x);
            EXPECT_EXACT(tg_squeeze(t, -2), TG_SHAPE(3, 4), dt, x);
            EXPECT_EXACT(tg_squeeze(t, 0), TG_SHAPE(3, 1, 4), dt, x); /* size 3: unchanged, as PyTorch */
            tg_tensor *u = input(dt, TG_SHAPE(3, 4), -3, 3, l, &x);
            EXPECT_EXACT(tg_unsqueeze(u, 0), TG_SHAPE(1, 3, 4), dt, x);
            EXPECT_EXACT(tg_unsqueeze(u, 1), TG_SHAPE(3, 1, 4), dt, x);
            EXPECT_EXACT(tg_unsqueeze(u, 2), TG_SHAPE(3, 4, 1), dt, x);
            EXPECT_EXACT(tg_unsqueeze(u, -1), TG_SHAPE(3, 4, 1), dt, x);
            EXPECT_EXACT(tg_unsqueeze(u, -3), TG_SHAPE(1, 3, 4), dt, x);
            EXPECT_EXACT(tg_squeeze(tg_unsqueeze(u, 1), 1), TG_SHAPE(3, 4), dt, x);
            release(m);
        }
    double v = 2.5;
    tg_tensor *sc = from_doubles(TG_F32, TG_SCALAR_SHAPE, &v);
    WHAT("unsqueeze 0-d");
    EXPECT_EXACT(tg_unsqueeze(sc, 0), TG_SHAPE(1), TG_F32, &v);
    EXPECT_EXACT(tg_squeeze(tg_unsqueeze(sc, -1), 0), TG_SCALAR_SHAPE, TG_F32, &v);
}

TEST(flip) {
    tg_shape s = TG_SHAPE(3, 4, 5);
    tg_axes axs[6] = { TG_AXES(0), TG_AXES(1), TG_AXES(-1), TG_AXES(0, 2), TG_ALL, TG_AXES(2, 0, 1) };
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++)
            for (int q = 0; q < 6; q++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("flip case %d %s %s", q, tg_dtype_name(dt), k_layout_names[l]);
                double *x;
                tg_tensor *t = input(dt, s, -3, 3, l, &x);
                uint32_t mask = axes_mask(axs[q], 3);
                int64_t idx[TG_MAX_DIMS] = { 0 };
                double *ref = dbuf(60), *ref2 = dbuf(60);
                for (int64_t i = 0; i < 60; i++) {
                    unravel(i, s, idx);
                    for (int a = 0; a < 3; a++)
                        if (mask >> a & 1) idx[a] = s.dims[a] - 1 - idx[a];
                    ref[i] = x[ravel(idx, s)];
                    ref2[i] = ref[i] * ref[i];
                }
                tg_tensor *f = tg_flip(t, axs[q]);
                EXPECT_EXACT(f, s, dt, ref);
                EXPECT(tg_square(f), s, dt, ref2, tol_a(dt), tol_r(dt));
                EXPECT_EXACT(tg_flip(f, axs[q]), s, dt, x);
                EXPECT_EXACT(tg_contiguous(f), s, dt, ref);
                release(m);
            }
}

TEST(contiguous_and_clone) {
    tg_dtype dts[4] = { TG_F32, TG_F64, TG_I32, TG_U8 };
    for (int d = 0; d < 4; d++)
        for (int l = 0; l < L_COUNT; l++) {
            size_t m = mark();
            tg_dtype dt = dts[d];
            WHAT("contiguous/clone %s %s", tg_dtype_name(dt), k_layout_names[l]);
            tg_shape s = TG_SHAPE(5, 7);
            double *x = int_vals(35, 0, 100);
            tg_tensor *t = make(dt, s, x, l);
            CHECK(tg_is_contiguous(t) == (l == L_CONTIG));
            tg_tensor *c = tg_contiguous(t), *k = tg_clone(t);
            CHECK(c && tg_is_contiguous(c));
            CHECK(k && tg_is_contiguous(k));
            EXPECT_EXACT(c, s, dt, x);
            EXPECT_EXACT(k, s, dt, x);
            if (c) CHECK(tg_stride(c, 0) == 7 && tg_stride(c, 1) == 1);
            /* a clone owns its storage: filling it leaves the input alone */
            CHECK(tg_fill_(k, 3) == TG_OK);
            EXPECT_EXACT(t, s, dt, x);
            release(m);
        }
}

/* ------------------------------------------------------------------ cat, stack, split, pad */

TEST(cat_axes_layouts_dtypes) {
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int d = 0; d < 3; d++)
        for (int l = 0; l < L_COUNT; l++)
            for (int axis = -2; axis < 2; axis++) {
                size_t m = mark();
                tg_dtype dt = dts[d];
                int a = axis < 0 ? axis + 2 : axis;
                WHAT("cat axis %d %s %s", axis, tg_dtype_name(dt), k_layout_names[l]);
                int64_t lens[3] = { 2, 4, 1 };
                tg_shape ss[3];
                double *xs[3];
                tg_tensor *ts[3];
                for (int i = 0; i < 3; i++) {
                    ss[i] = a == 0 ? TG_SHAPE(lens[i], 3) : TG_SHAPE(3, lens[i]);
                    xs[i] = int_vals(numel_of(ss[i]), -50, 50);
                    ts[i] = make(dt, ss[i], xs[i], (l + i) % L_COUNT); /* mixed layouts */
                }
                tg_shape so = a == 0 ? TG_SHAPE(7, 3) : TG_SHAPE(3, 7);
                double *ref = dbuf(21);
                int64_t idx[TG_MAX_DIMS] = { 0 };
                for (int64_t f = 0; f < 21; f++) {
                    unravel(f, so, idx);
                    int i = 0;
                    int64_t p = idx[a];
                    while (p >= lens[i]) p -= lens[i++];
                    idx[a] = p;
                    ref[f] = xs[i][ravel(idx, ss[i])];
                }
                EXPECT_EXACT(tg_cat(3, ts, axis), so, dt, ref);
                EXPECT_EXACT(tg_cat(1, ts, axis), ss[0], dt, xs[0]);
                release(m);
            }
    /* a large cat crossing the threading threshold */
    size_t m = mark();
    double *a, *b;
    tg_tensor *ts[2] = { input(TG_F32, TG_SHAPE(300, 200), -1, 1, L_TRANSPOSED, &a),
                         input(TG_F32, TG_SHAPE(300, 133), -1, 1, L_FLIPPED, &b) };
    double *ref = dbuf(300 * 333);
    for (int64_t i = 0; i < 300; i++)
        for (int64_t j = 0; j < 333; j++) ref[i * 333 + j] = j < 200 ? a[i * 200 + j] : b[i * 133 + j - 200];
    WHAT("large cat");
    EXPECT_EXACT(tg_cat(2, ts, 1), TG_SHAPE(300, 333), TG_F32, ref);
    release(m);
}

TEST(stack_axes) {
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++)
            for (int axis = -3; axis < 3; axis++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("stack axis %d %s %s", axis, tg_dtype_name(dt), k_layout_names[l]);
                double *xs[3];
                tg_tensor *ts[3];
                for (int i = 0; i < 3; i++) ts[i] = input(dt, TG_SHAPE(3, 4), -5, 5, (l + i) % L_COUNT, &xs[i]);
                int a = axis < 0 ? axis + 3 : axis;
                tg_shape so = { .ndim = 3 };
                for (int i = 0, j = 0; i < 3; i++) so.dims[i] = i == a ? 3 : (j++ == 0 ? 3 : 4);
                double *ref = dbuf(36);
                int64_t idx[TG_MAX_DIMS] = { 0 };
                for (int64_t f = 0; f < 36; f++) {
                    unravel(f, so, idx);
                    int64_t which = idx[a], rest[2];
                    for (int i = 0, j = 0; i < 3; i++)
                        if (i != a) rest[j++] = idx[i];
                    ref[f] = xs[which][rest[0] * 4 + rest[1]];
                }
                EXPECT_EXACT(tg_stack(3, ts, axis), so, dt, ref);
                release(m);
            }
}

TEST(split_pieces) {
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < L_COUNT; l++) {
            size_t m = mark();
            tg_dtype dt = k_float_dtypes[d];
            WHAT("split %s %s", tg_dtype_name(dt), k_layout_names[l]);
            double *x;
            tg_tensor *t = input(dt, TG_SHAPE(7, 4), -5, 5, l, &x);
            tg_tensor *out[4] = { 0 };
            CHECK(tg_split(t, 3, 0, out, 4) == 3);
            EXPECT_EXACT(out[0], TG_SHAPE(3, 4), dt, x);
            EXPECT_EXACT(out[1], TG_SHAPE(3, 4), dt, x + 12);
            EXPECT_EXACT(out[2], TG_SHAPE(1, 4), dt, x + 24);
            CHECK(out[3] == NULL);
            /* along the last axis, with room for fewer pieces than there are */
            tg_tensor *o2[1] = { 0 };
            CHECK(tg_split(t, 1, -1, o2, 1) == 4);
            double col[7];
            for (int i = 0; i < 7; i++) col[i] = x[i * 4];
            EXPECT_EXACT(o2[0], TG_SHAPE(7, 1), dt, col);
            tg_tensor *o3[2] = { 0 };
            CHECK(tg_split(t, 3, 1, o3, 2) == 2);
            double c3[7];
            for (int i = 0; i < 7; i++) c3[i] = x[i * 4 + 3];
            EXPECT_EXACT(o3[1], TG_SHAPE(7, 1), dt, c3);
            tg_tensor *o4[1] = { 0 };
            CHECK(tg_split(t, 10, 0, o4, 1) == 1);
            EXPECT_EXACT(o4[0], TG_SHAPE(7, 4), dt, x);
            release(m);
        }
}

/* F.pad with constant value: pads[2k], pads[2k+1] apply to axis ndim-1-k; negative crops. */
static double *ref_pad(tg_shape s, const double *x, const int64_t *pads, int np, double value, tg_shape *so) {
    int64_t lo[TG_MAX_DIMS] = { 0 };
    *so = s;
    for (int k = 0; k < np / 2; k++) {
        int a = s.ndim - 1 - k;
        lo[a] = pads[2 * k];
        so->dims[a] = s.dims[a] + pads[2 * k] + pads[2 * k + 1];
    }
    int64_t n = numel_of(*so), idx[TG_MAX_DIMS] = { 0 };
    double *r = dbuf(n);
    for (int64_t f = 0; f < n; f++) {
        unravel(f, *so, idx);
        bool in = true;
        for (int a = 0; a < s.ndim; a++) {
            idx[a] -= lo[a];
            in = in && idx[a] >= 0 && idx[a] < s.dims[a];
        }
        r[f] = in ? x[ravel(idx, s)] : value;
    }
    return r;
}

TEST(pad_positive_negative_mixed) {
    struct {
        tg_shape s;
        int np;
        int64_t p[6];
        double value;
    } cs[] = {
        { TG_SHAPE(3, 4), 2, { 1, 2 }, 0 },         { TG_SHAPE(3, 4), 4, { 1, 1, 2, 0 }, -1.5 },
        { TG_SHAPE(3, 4), 2, { -1, 2 }, 0 },        { TG_SHAPE(3, 4), 4, { 0, 0, -1, -1 }, 9 },
        { TG_SHAPE(3, 4, 5), 6, { -2, 1, 2, -3, 1, 1 }, 0.25 }, { TG_SHAPE(7), 2, { 3, -7 }, 2 },
        { TG_SHAPE(2, 3), 0, { 0 }, 1 },            { TG_SHAPE(3, 4), 2, { -2, -2 }, 1 },
    };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 2; d++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                WHAT("pad case %d %s %s", q, tg_dtype_name(dt), k_layout_names[l]);
                double *x;
                tg_tensor *t = input(dt, cs[q].s, -3, 3, l, &x);
                tg_pads pads = { .n = cs[q].np };
                for (int i = 0; i < cs[q].np; i++) pads.v[i] = cs[q].p[i];
                tg_shape so;
                double *ref = ref_pad(cs[q].s, x, cs[q].p, cs[q].np, cs[q].value, &so);
                EXPECT_EXACT(tg_pad(t, pads, cs[q].value), so, dt, ref);
                release(m);
            }
}

/* ================================================================== indexing */

static double *ref_gather(tg_shape sx, const double *x, int axis, tg_shape si, const double *idxv) {
    int64_t n = numel_of(si), idx[TG_MAX_DIMS] = { 0 };
    double *r = dbuf(n);
    for (int64_t f = 0; f < n; f++) {
        unravel(f, si, idx);
        idx[axis] = (int64_t)idxv[f];
        r[f] = x[ravel(idx, sx)];
    }
    return r;
}

TEST(gather_axes_layouts_dtypes) {
    struct {
        tg_shape x, idx;
        int axis;
    } cs[] = { { TG_SHAPE(3, 5), TG_SHAPE(3, 4), 1 }, { TG_SHAPE(3, 5), TG_SHAPE(2, 5), 0 },
               { TG_SHAPE(3, 5), TG_SHAPE(3, 7), -1 }, { TG_SHAPE(3, 5), TG_SHAPE(2, 3), 1 },
               { TG_SHAPE(2, 3, 4), TG_SHAPE(2, 5, 4), 1 }, { TG_SHAPE(7), TG_SHAPE(4), 0 },
               { TG_SHAPE(300, 400), TG_SHAPE(300, 350), 1 } };
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 3; d++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = dts[d];
                int axis = cs[q].axis < 0 ? cs[q].axis + cs[q].x.ndim : cs[q].axis;
                WHAT("gather %s axis %d index %s %s %s", shape_str(cs[q].x), cs[q].axis, shape_str(cs[q].idx),
                     tg_dtype_name(dt), k_layout_names[l]);
                double *x = int_vals(numel_of(cs[q].x), -1000, 1000);
                double *iv = int_vals(numel_of(cs[q].idx), 0, cs[q].x.dims[axis]);
                tg_tensor *t = make(dt, cs[q].x, x, l);
                tg_tensor *ti = make(TG_I32, cs[q].idx, iv, (l + 1) % L_COUNT); /* the index non-contiguous too */
                EXPECT_EXACT(tg_gather(t, cs[q].axis, ti), cs[q].idx, dt, ref_gather(cs[q].x, x, axis, cs[q].idx, iv));
                release(m);
            }
}

TEST(index_select_axes_layouts_dtypes) {
    struct {
        tg_shape x;
        int axis;
        int n;
        double idx[5];
    } cs[] = { { TG_SHAPE(4, 5), 0, 3, { 3, 0, 3 } }, { TG_SHAPE(4, 5), 1, 2, { 4, 1 } },
               { TG_SHAPE(4, 5), -1, 5, { 0, 0, 4, 2, 1 } }, { TG_SHAPE(2, 3, 4), 1, 4, { 2, 2, 0, 1 } },
               { TG_SHAPE(7), 0, 1, { 6 } } };
    tg_dtype dts[3] = { TG_F32, TG_F64, TG_I32 };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 3; d++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = dts[d];
                tg_shape sx = cs[q].x;
                int axis = cs[q].axis < 0 ? cs[q].axis + sx.ndim : cs[q].axis;
                WHAT("index_select %s axis %d %s %s", shape_str(sx), cs[q].axis, tg_dtype_name(dt), k_layout_names[l]);
                double *x = int_vals(numel_of(sx), -1000, 1000);
                tg_tensor *t = make(dt, sx, x, l);
                tg_tensor *ti = make(TG_I32, TG_SHAPE(cs[q].n), cs[q].idx, l);
                tg_shape so = sx;
                so.dims[axis] = cs[q].n;
                int64_t n = numel_of(so), idx[TG_MAX_DIMS] = { 0 };
                double *ref = dbuf(n);
                for (int64_t f = 0; f < n; f++) {
                    unravel(f, so, idx);
                    idx[axis] = (int64_t)cs[q].idx[idx[axis]];
                    ref[f] = x[ravel(idx, sx)];
                }
                EXPECT_EXACT(tg_index_select(t, cs[q].axis, ti), so, dt, ref);
                release(m);
            }
}

TEST(scatter_add_axes_layouts_dtypes) {
    struct {
        tg_shape x, idx;
        int axis;
    } cs[] = { { TG_SHAPE(3, 5), TG_SHAPE(3, 4), 1 }, { TG_SHAPE(3, 5), TG_SHAPE(2, 5), 0 },
               { TG_SHAPE(3, 5), TG_SHAPE(2, 9), -1 }, { TG_SHAPE(2, 3, 4), TG_SHAPE(2, 6, 3), 1 },
               { TG_SHAPE(7), TG_SHAPE(20), 0 }, { TG_SHAPE(300, 400), TG_SHAPE(300, 350), 1 } };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
        for (int d = 0; d < 2; d++)
            for (int l = 0; l < L_COUNT; l++) {
                size_t m = mark();
                tg_dtype dt = k_float_dtypes[d];
                int axis = cs[q].axis < 0 ? cs[q].axis + cs[q].x.ndim : cs[q].axis;
                WHAT("scatter_add %s axis %d index %s %s %s", shape_str(cs[q].x), cs[q].axis, shape_str(cs[q].idx),
                     tg_dtype_name(dt), k_layout_names[l]);
                /* small integers: sums are exact in any order */
                double *x = int_vals(numel_of(cs[q].x), -100, 100);
                double *src = int_vals(numel_of(cs[q].idx), -100, 100);
                double *iv = int_vals(numel_of(cs[q].idx), 0, cs[q].x.dims[axis]); /* duplicates */
                tg_tensor *tx = make(dt, cs[q].x, x, l), *ts = make(dt, cs[q].idx, src, (l + 2) % L_COUNT);
                tg_tensor *ti = make(TG_I32, cs[q].idx, iv, (l + 1) % L_COUNT);
                double *ref = dbuf(numel_of(cs[q].x));
                for (int64_t i = 0; i < numel_of(cs[q].x); i++) ref[i] = x[i];
                int64_t idx[TG_MAX_DIMS] = { 0 };
                for (int64_t f = 0; f < numel_of(cs[q].idx); f++) {
                    unravel(f, cs[q].idx, idx);
                    idx[axis] = (int64_t)iv[f];
                    ref[ravel(idx, cs[q].x)] += src[f];
                }
                EXPECT_EXACT(tg_scatter_add(tx, cs[q].axis, ti, ts), cs[q].x, dt, ref);
                EXPECT_EXACT(tx, cs[q].x, dt, x); /* out of place */
                release(m);
            }
}

TEST(one_hot) {
    double lab[6] = { 0, 3, 1, 1, 2, 3 };
    for (int l = 0; l < L_COUNT; l++) {
        size_t m = mark();
        WHAT("one_hot %s", k_layout_names[l]);
        tg_tensor *t = make(TG_I32, TG_SHAPE(2, 3), lab, l);
        double ref[24] = { 0 }, ref2[36] = { 0 };
        for (int i = 0; i < 6; i++) ref[i * 4 + (int)lab[i]] = 1, ref2[i * 6 + (int)lab[i]] = 1;
        EXPECT_EXACT(tg_one_hot(t, 4), TG_SHAPE(2, 3, 4), TG_I32, ref);
        EXPECT_EXACT(tg_one_hot(t, 6), TG_SHAPE(2, 3, 6), TG_I32, ref2);
        release(m);
    }
    double two = 2;
    WHAT("one_hot 0-d");
    EXPECT_EXACT(tg_one_hot(from_doubles(TG_I32, TG_SCALAR_SHAPE, &two), 3), TG_SHAPE(3), TG_I32, ((double[]){ 0, 0, 1 }));
    double one = 0;
    EXPECT_EXACT(tg_one_hot(from_doubles(TG_I32, TG_SHAPE(1), &one), 1), TG_SHAPE(1, 1), TG_I32, ((double[]){ 1 }));
}

/* ================================================================== cast */

static double cast_ref(double v, tg_dtype to) {
    switch (to) {
    case TG_F32: return (double)(float)v;
    case TG_F64: return v;
    case TG_I32: return (double)(int32_t)v; /* truncation toward zero */
    default: return (double)(uint8_t)v;
    }
}

TEST(cast_all_dtype_pairs) {
    tg_dtype dts[4] = { TG_F32, TG_F64, TG_I32, TG_U8 };
    /* non-negative values below 256 (every conversion defined) and negative ones */
    double pos[] = { 0, 1, 2.75, 100.5, 255, 17.25, 0.999, 254.9, 3, 128 };
    double neg[] = { -2.75, -1, -0.5, -100.25, 5.5, -1e6, 1e6 + 0.5, -7 };
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int l = 0; l < L_COUNT; l++)
                for (int set = 0; set < 2; set++) {
                    tg_dtype from = dts[a], to = dts[b];
                    if (set == 1 && (from == TG_U8 || to == TG_U8)) continue;
                    size_t m = mark();
                    WHAT("cast %s -> %s set %d %s", tg_dtype_name(from), tg_dtype_name(to), set, k_layout_names[l]);
                    int n = set ? 8 : 10;
                    double *x = dbuf(n);
                    for (int i = 0; i < n; i++) x[i] = set ? neg[i] : pos[i];
                    round_to(from, x, n); /* what the source holds */
                    tg_shape s = set ? TG_SHAPE(2, 4) : TG_SHAPE(2, 5);
                    tg_tensor *t = make(from, s, x, l);
                    double *ref = dbuf(n);
                    for (int i = 0; i < n; i++) ref[i] = cast_ref(x[i], to);
                    EXPECT_EXACT(tg_cast(t, to), s, to, ref);
                    release(m);
                }
    /* a large cast, over the threading threshold */
    size_t m = mark();
    double *x;
    tg_tensor *t = input(TG_F64, TG_SHAPE(311, 321), -1000, 1000, L_TRANSPOSED, &x);
    double *ref = dbuf(311 * 321), *ref2 = dbuf(311 * 321);
    for (int64_t i = 0; i < 311 * 321; i++) ref[i] = (double)(float)x[i], ref2[i] = (double)(int32_t)x[i];
    WHAT("large cast");
    EXPECT_EXACT(tg_cast(t, TG_F32), TG_SHAPE(311, 321), TG_F32, ref);
    EXPECT_EXACT(tg_cast(t, TG_I32), TG_SHAPE(311, 321), TG_I32, ref2);
    release(m);
}

/* ================================================================== stride-0 and empty inputs */

TEST(ops_on_broadcast_views) {
    for (int d = 0; d < 2; d++) {
        size_t m = mark();
        tg_dtype dt = k_float_dtypes[d];
        WHAT("ops on a stride-0 view %s", tg_dtype_name(dt));
        double *x;
        tg_tensor *row = input(dt, TG_SHAPE(1, 5), -2, 2, L_CONTIG, &x);
        tg_tensor *e = tg_expand(row, TG_SHAPE(4, 5)); /* every row the same */
        double rep[20], colsum[5], rowsum[4] = { 0 }, sm0[20], ex[20], mm[16], absum[16];
        for (int i = 0; i < 20; i++) rep[i] = x[i % 5], ex[i] = exp(x[i % 5]), sm0[i] = 0.25;
        for (int j = 0; j < 5; j++) colsum[j] = 4 * x[j];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 5; j++) rowsum[i] += x[j];
        double ss = 0, sa = 0;
        for (int j = 0; j < 5; j++) ss += x[j] * x[j], sa += x[j] * x[j];
        for (int i = 0; i < 16; i++) mm[i] = ss, absum[i] = sa;
        EXPECT(tg_sum(e, TG_AXES(0), false), TG_SHAPE(5), dt, colsum, tol_a(dt), tol_r(dt));
        EXPECT(tg_sum(e, TG_AXES(1), true), TG_SHAPE(4, 1), dt, rowsum, tol_a(dt), 1e-5);
        EXPECT(tg_softmax(e, 0), TG_SHAPE(4, 5), dt, sm0, tol_a(dt), tol_r(dt));
        EXPECT(tg_exp(e), TG_SHAPE(4, 5), dt, ex, tol_a(dt), tol_r(dt));
        EXPECT_SCALED(tg_matmul(e, tg_transpose(e, 0, 1)), TG_SHAPE(4, 4), dt, mm, tol_a(dt), tol_r(dt), absum);
        EXPECT_EXACT(tg_reshape(e, TG_SHAPE(20)), TG_SHAPE(20), dt, rep);
        EXPECT_EXACT(tg_contiguous(e), TG_SHAPE(4, 5), dt, rep);
        EXPECT_EXACT(tg_cast(e, TG_F64), TG_SHAPE(4, 5), TG_F64, rep);
        tg_tensor *two[2] = { e, row };
        double cat[25];
        for (int i = 0; i < 25; i++) cat[i] = x[i % 5];
        EXPECT_EXACT(tg_cat(2, two, 0), TG_SHAPE(5, 5), dt, cat);
        double gi[4] = { 4, 0, 2, 2 };
        tg_tensor *idx = from_doubles(TG_I32, TG_SHAPE(4, 1), gi);
        EXPECT_EXACT(tg_gather(e, 1, idx), TG_SHAPE(4, 1), dt, ((double[]){ x[4], x[0], x[2], x[2] }));
        /* a 0-d value broadcast over a large shape: a threaded sum of a stride-0 input */
        double v = 0.5;
        tg_tensor *big = tg_expand(from_doubles(dt, TG_SCALAR_SHAPE, &v), TG_SHAPE(311, 321));
        double total = 0.5 * 311 * 321;
        EXPECT(tg_sum(big, TG_ALL, false), TG_SCALAR_SHAPE, dt, &total, 0, 1e-6);
        double *halfs = dbuf(321);
        for (int i = 0; i < 321; i++) halfs[i] = 0.5;
        EXPECT_EXACT(tg_max(big, TG_AXES(0), false), TG_SHAPE(321), dt, halfs);
        EXPECT(tg_mean(big, TG_AXES(1), false), TG_SHAPE(311), dt, halfs, tol_a(dt), tol_r(dt));
        release(m);
    }
}

TEST(empty_tensors) {
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("empty tensors %s", tg_dtype_name(dt));
        tg_tensor *e = tg_zeros(dt, TG_SHAPE(0, 3), dev);
        double none[1] = { 0 };
        EXPECT_EXACT(tg_exp(e), TG_SHAPE(0, 3), dt, none);
        EXPECT_EXACT(tg_add(e, tg_ones(dt, TG_SHAPE(3), dev)), TG_SHAPE(0, 3), dt, none);
        EXPECT_EXACT(tg_sum(e, TG_AXES(0), false), TG_SHAPE(3), dt, ((double[]){ 0, 0, 0 }));
        EXPECT_EXACT(tg_sum(e, TG_ALL, false), TG_SCALAR_SHAPE, dt, ((double[]){ 0 }));
        EXPECT_EXACT(tg_sum(e, TG_AXES(1), false), TG_SHAPE(0), dt, none);
        EXPECT_EXACT(tg_transpose(e, 0, 1), TG_SHAPE(3, 0), dt, none);
        EXPECT_EXACT(tg_reshape(e, TG_SHAPE(3, -1, 5)), TG_SHAPE(3, 0, 5), dt, none);
        double *x;
        tg_tensor *t = input(dt, TG_SHAPE(2, 3), -2, 2, L_TRANSPOSED, &x);
        tg_tensor *two[2] = { e, t };
        EXPECT_EXACT(tg_cat(2, two, 0), TG_SHAPE(2, 3), dt, x);
        /* K = 0: a sum of nothing is zero; M = 0: no rows */
        EXPECT_EXACT(tg_matmul(tg_zeros(dt, TG_SHAPE(2, 0), dev), tg_zeros(dt, TG_SHAPE(0, 3), dev)), TG_SHAPE(2, 3), dt,
                     ((double[]){ 0, 0, 0, 0, 0, 0 }));
        tg_tensor *k0a = tg_full(dt, TG_SHAPE(2, 0), 1, dev), *k0b = tg_full(dt, TG_SHAPE(0, 3), 1, dev);
        EXPECT_EXACT(tg_add_scalar(tg_matmul(k0a, k0b), 1), TG_SHAPE(2, 3), dt, ((double[]){ 1, 1, 1, 1, 1, 1 }));
        EXPECT_EXACT(tg_matmul(e, tg_ones(dt, TG_SHAPE(3, 2), dev)), TG_SHAPE(0, 2), dt, none);
        EXPECT_EXACT(tg_slice(t, 0, 1, 1, 1), TG_SHAPE(0, 3), dt, none);
        CHECK_ERROR(tg_max(e, TG_AXES(0), false), "tg_max");
    }
}

TEST(logsumexp_positive_infinity) {
    /* log(exp(inf) + exp(0)) is inf, as in PyTorch, not inf - inf */
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("logsumexp with +inf %s", tg_dtype_name(dt));
        double xs[] = { INFINITY, 0, 1, -INFINITY };
        tg_tensor *x = from_doubles(dt, TG_SHAPE(2, 2), xs);
        EXPECT(tg_logsumexp(x, TG_AXES(1), false), TG_SHAPE(2), dt, ((double[]){ INFINITY, 1 }), 0, 1e-6);
    }
}

/* ================================================================== creation */

TEST(zeros_ones_full_scalar_like) {
    tg_dtype dts[4] = { TG_F32, TG_F64, TG_I32, TG_U8 };
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 4; d++)
        for (int k = 0; k < N_SIZES; k++) {
            size_t m = mark();
            tg_dtype dt = dts[d];
            tg_shape s = size_shape(k);
            WHAT("creation %s %s", tg_dtype_name(dt), shape_str(s));
            int64_t n = numel_of(s);
            double *z = dbuf(n), *o = dbuf(n), *f = dbuf(n);
            for (int64_t i = 0; i < n; i++) z[i] = 0, o[i] = 1, f[i] = 7;
            EXPECT_EXACT(tg_zeros(dt, s, dev), s, dt, z);
            EXPECT_EXACT(tg_ones(dt, s, dev), s, dt, o);
            EXPECT_EXACT(tg_full(dt, s, 7, dev), s, dt, f);
            tg_tensor *base = tg_full(dt, s, 5, dev);
            EXPECT_EXACT(tg_zeros_like(base), s, dt, z);
            EXPECT_EXACT(tg_ones_like(base), s, dt, o);
            EXPECT_EXACT(tg_full_like(base, 7), s, dt, f);
            release(m);
        }
    WHAT("full with fractions and scalar");
    EXPECT_EXACT(tg_full(TG_F64, TG_SHAPE(2), -2.125, dev), TG_SHAPE(2), TG_F64, ((double[]){ -2.125, -2.125 }));
    EXPECT_EXACT(tg_full(TG_F32, TG_SHAPE(1), 0.1, dev), TG_SHAPE(1), TG_F32, ((double[]){ (double)0.1f }));
    EXPECT_EXACT(tg_scalar(TG_F64, 3.5, dev), TG_SCALAR_SHAPE, TG_F64, ((double[]){ 3.5 }));
    EXPECT_EXACT(tg_scalar(TG_I32, -4, dev), TG_SCALAR_SHAPE, TG_I32, ((double[]){ -4 }));
    CHECK(tg_item(tg_scalar(TG_F64, 3.5, dev)) == 3.5);
    EXPECT_EXACT(tg_full_like(tg_transpose(tg_zeros(TG_F32, TG_SHAPE(2, 3), dev), 0, 1), 1.5), TG_SHAPE(3, 2), TG_F32,
                 ((double[]){ 1.5, 1.5, 1.5, 1.5, 1.5, 1.5 }));
}

TEST(arange_linspace_eye) {
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("arange/linspace %s", tg_dtype_name(dt));
        EXPECT_EXACT(tg_arange(dt, 0, 10, 1, dev), TG_SHAPE(10), dt, ((double[]){ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }));
        EXPECT_EXACT(tg_arange(dt, 1, 2, 0.25, dev), TG_SHAPE(4), dt, ((double[]){ 1, 1.25, 1.5, 1.75 }));
        EXPECT_EXACT(tg_arange(dt, 5, 0, -1.5, dev), TG_SHAPE(4), dt, ((double[]){ 5, 3.5, 2, 0.5 }));
        EXPECT_EXACT(tg_arange(dt, 3, 3, 1, dev), TG_SHAPE(0), dt, ((double[]){ 0 }));
        EXPECT(tg_arange(dt, 0, 1, 0.3, dev), TG_SHAPE(4), dt, ((double[]){ 0, 0.3, 0.6, 0.9 }), tol_a(dt), tol_r(dt));
        EXPECT_EXACT(tg_linspace(dt, 0, 1, 5, dev), TG_SHAPE(5), dt, ((double[]){ 0, 0.25, 0.5, 0.75, 1 }));
        EXPECT_EXACT(tg_linspace(dt, -1, 1, 1, dev), TG_SHAPE(1), dt, ((double[]){ -1 }));
        EXPECT_EXACT(tg_linspace(dt, 2, -2, 3, dev), TG_SHAPE(3), dt, ((double[]){ 2, 0, -2 }));
        /* 1023 points: interior within rounding, both ends exact (as numpy and PyTorch) */
        double *ref = dbuf(1023);
        for (int i = 0; i < 1023; i++) ref[i] = cast_ref(-1.3 + (2.9 - -1.3) * i / 1022.0, dt);
        tg_tensor *ls = tg_linspace(dt, -1.3, 2.9, 1023, dev);
        EXPECT(ls, TG_SHAPE(1023), dt, ref, tol_a(dt), tol_r(dt));
        double *lv = vals(ls);
        if (lv) {
            CHECK_NEAR(lv[0], cast_ref(-1.3, dt), 0);
            CHECK_NEAR(lv[1022], cast_ref(2.9, dt), 0);
        }
        /* a large arange (threads), values exact */
        double *ar = dbuf(100003);
        for (int i = 0; i < 100003; i++) ar[i] = cast_ref(-50000 + i, dt);
        EXPECT_EXACT(tg_arange(dt, -50000, 50003, 1, dev), TG_SHAPE(100003), dt, ar);
    }
    WHAT("arange i32");
    EXPECT_EXACT(tg_arange(TG_I32, 0, 10, 3, dev), TG_SHAPE(4), TG_I32, ((double[]){ 0, 3, 6, 9 }));
    EXPECT_EXACT(tg_arange(TG_I32, 4, -4, -2, dev), TG_SHAPE(4), TG_I32, ((double[]){ 4, 2, 0, -2 }));
    tg_dtype dts[4] = { TG_F32, TG_F64, TG_I32, TG_U8 };
    for (int d = 0; d < 4; d++) {
        WHAT("eye %s", tg_dtype_name(dts[d]));
        double ref[16] = { 0 };
        for (int i = 0; i < 4; i++) ref[i * 5] = 1;
        EXPECT_EXACT(tg_eye(dts[d], 4, dev), TG_SHAPE(4, 4), dts[d], ref);
        EXPECT_EXACT(tg_eye(dts[d], 1, dev), TG_SHAPE(1, 1), dts[d], ((double[]){ 1 }));
        double *big = dbuf(400 * 400);
        for (int i = 0; i < 400; i++) big[i * 401] = 1;
        EXPECT_EXACT(tg_eye(dts[d], 400, dev), TG_SHAPE(400, 400), dts[d], big);
    }
}

static void moments(const double *v, int64_t n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = sqrt(q / (double)(n - 1));
}

TEST(rand_randn_bernoulli_statistics) {
    tg_device *dev = tg_test_device();
    const int64_t n = 100000;
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("random %s", tg_dtype_name(dt));
        tg_manual_seed(1234);
        double *u = vals(tg_rand(dt, TG_SHAPE(n), dev));
        double *g = vals(tg_randn(dt, TG_SHAPE(400, 250), dev));
        double *b = vals(tg_bernoulli(dt, TG_SHAPE(n), 0.3, dev));
        CHECK(u && g && b);
        if (!u || !g || !b) continue;
        int64_t out_of_range = 0, not_binary = 0, ones = 0, distinct = 0;
        for (int64_t i = 0; i < n; i++) {
            out_of_range += !(u[i] >= 0 && u[i] < 1);
            not_binary += !(b[i] == 0 || b[i] == 1);
            ones += b[i] == 1;
            distinct += i > 0 && u[i] != u[i - 1];
        }
        CHECK(out_of_range == 0);
        CHECK(not_binary == 0);
        CHECK(distinct > n - 100);
        double mu, sd;
        moments(u, n, &mu, &sd);
        CHECK_NEAR(mu, 0.5, 0.01);                /* standard error 0.0009 */
        CHECK_NEAR(sd, sqrt(1.0 / 12.0), 0.01);
        int64_t low_decile = 0;
        for (int64_t i = 0; i < n; i++) low_decile += u[i] < 0.1;
        CHECK_NEAR((double)low_decile / (double)n, 0.1, 0.005);
        moments(g, n, &mu, &sd);
        CHECK_NEAR(mu, 0, 0.015);                  /* standard error 0.003 */
        CHECK_NEAR(sd, 1, 0.015);
        int64_t within1 = 0, beyond4 = 0;
        for (int64_t i = 0; i < n; i++) within1 += fabs(g[i]) < 1, beyond4 += fabs(g[i]) > 4.5;
        CHECK_NEAR((double)within1 / (double)n, 0.6827, 0.006);
        CHECK(beyond4 < 10);
        CHECK_NEAR((double)ones / (double)n, 0.3, 0.008); /* standard error 0.0014 */
        /* p = 0 and p = 1 are deterministic */
        double *b0 = vals(tg_bernoulli(dt, TG_SHAPE(1000), 0.0, dev)), *b1 = vals(tg_bernoulli(dt, TG_SHAPE(1000), 1.0, dev));
        if (b0 && b1) {
            int bad = 0;
            for (int i = 0; i < 1000; i++) bad += b0[i] != 0 || b1[i] != 1;
            CHECK(bad == 0);
        }
    }
}

TEST(random_same_seed_same_numbers) {
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("seeding %s", tg_dtype_name(dt));
        tg_manual_seed(99);
        double *a1 = vals(tg_rand(dt, TG_SHAPE(1023), dev)), *a2 = vals(tg_randn(dt, TG_SHAPE(17), dev));
        double *a3 = vals(tg_rand(dt, TG_SHAPE(1023), dev));
        tg_manual_seed(99);
        tg_tensor *b1 = tg_rand(dt, TG_SHAPE(1023), dev), *b2 = tg_randn(dt, TG_SHAPE(17), dev);
        tg_tensor *b3 = tg_rand(dt, TG_SHAPE(1023), dev);
        EXPECT_EXACT(b1, TG_SHAPE(1023), dt, a1);
        EXPECT_EXACT(b2, TG_SHAPE(17), dt, a2);
        EXPECT_EXACT(b3, TG_SHAPE(1023), dt, a3);
        /* consecutive draws and other seeds differ */
        int same = 0;
        for (int i = 0; a1 && a3 && i < 1023; i++) same += a1[i] == a3[i];
        CHECK(same < 5);
        tg_manual_seed(100);
        double *c1 = vals(tg_rand(dt, TG_SHAPE(1023), dev));
        same = 0;
        for (int i = 0; a1 && c1 && i < 1023; i++) same += a1[i] == c1[i];
        CHECK(same < 5);
    }
    /* the thread count does not change the numbers (large tensor, threaded fill) */
    WHAT("seeding across thread counts");
    int threads = tg_get_num_threads();
    tg_set_num_threads(1);
    tg_manual_seed(7);
    double *s1 = vals(tg_randn(TG_F32, TG_SHAPE(100003), dev));
    tg_set_num_threads(threads > 1 ? threads : 4);
    tg_manual_seed(7);
    tg_tensor *s2 = tg_randn(TG_F32, TG_SHAPE(100003), dev);
    tg_set_num_threads(threads);
    if (s1) EXPECT_EXACT(s2, TG_SHAPE(100003), TG_F32, s1);
    CHECK(s1 != NULL);
}

TEST(uniform_normal_fill_in_place) {
    tg_device *dev = tg_test_device();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = k_float_dtypes[d];
        WHAT("uniform_/normal_ %s", tg_dtype_name(dt));
        tg_manual_seed(5);
        tg_tensor *t = tg_empty(dt, TG_SHAPE(100000), dev);
        CHECK(tg_uniform_(t, -2, 3) == TG_OK);
        double *u = vals(t);
        CHECK(tg_normal_(t, 5, 2) == TG_OK);
        double *g = vals(t);
        if (!u || !g) {
            CHECK(u && g);
            continue;
        }
        int64_t bad = 0;
        for (int64_t i = 0; i < 100000; i++) bad += !(u[i] >= -2 && u[i] < 3);
        CHECK(bad == 0);
        double mu, sd;
        moments(u, 100000, &mu, &sd);
        CHECK_NEAR(mu, 0.5, 0.03);
        CHECK_NEAR(sd, 5 / sqrt(12.0), 0.03);
        moments(g, 100000, &mu, &sd);
        CHECK_NEAR(mu, 5, 0.03);
        CHECK_NEAR(sd, 2, 0.03);
        /* into a non-contiguous view: only the view's elements change */
        tg_tensor *base = tg_zeros(dt, TG_SHAPE(50, 40), dev);
        tg_tensor *v = tg_slice(tg_transpose(base, 0, 1), 1, 1, INT64_MAX, 2); /* (40, 25) */
        CHECK(tg_uniform_(v, 1, 2) == TG_OK);
        double *bv = vals(base);
        if (bv) {
            int64_t wrong = 0;
            for (int64_t i = 0; i < 50; i++)
                for (int64_t j = 0; j < 40; j++) {
                    double e = bv[i * 40 + j];
                    wrong += i % 2 == 1 ? !(e >= 1 && e < 2) : e != 0;
                }
            CHECK(wrong == 0);
        }
    }
}

/* NaN and -0 come out the same through the strided loops (a transposed input) and the
 * contiguous SIMD kernels: relu and clamp keep NaN, maximum/minimum propagate it. */
TEST(nan_semantics_agree_across_layouts) {
    tg_device *dev = tg_test_device();
    float v[4] = { NAN, -0.0f, -2.0f, 3.0f };
    tg_tensor *dense = tg_from_f32(v, TG_SHAPE(4, 1), dev);
    float w[8] = { NAN, 9, -0.0f, 9, -2.0f, 9, 3.0f, 9 };
    tg_tensor *strided = tg_slice(tg_from_f32(w, TG_SHAPE(4, 2), dev), 1, 0, 1, 1); /* column 0: stride 2 */
    CHECK(tg_stride(strided, 0) == 2);
    tg_tensor *x[2] = { dense, strided };
    for (int k = 0; k < 2; k++) {
        float r[4], c[4], m[4];
        CHECK(tg_copy_to_host(tg_contiguous(tg_relu(x[k])), r, sizeof r) == TG_OK);
        CHECK(tg_copy_to_host(tg_contiguous(tg_clamp(x[k], -1, 1)), c, sizeof c) == TG_OK);
        CHECK(tg_copy_to_host(tg_contiguous(tg_maximum(x[k], tg_zeros(TG_F32, TG_SHAPE(1), dev))), m, sizeof m) == TG_OK);
        CHECK(isnan(r[0]) && r[1] == 0 && signbit(r[1]) && r[2] == 0 && r[3] == 3);
        CHECK(isnan(c[0]) && c[2] == -1 && c[3] == 1);
        CHECK(isnan(m[0]) && m[3] == 3);
    }
}

TG_TEST_MAIN(&tg_case_unary_all_ops_sizes_layouts_dtypes, &tg_case_unary_special_values, &tg_case_unary_int32,
             &tg_case_binary_broadcast_layouts_dtypes, &tg_case_binary_same_tensor_both_operands,
             &tg_case_binary_int32, &tg_case_comparisons_broadcast_layouts_dtypes, &tg_case_comparisons_u8_inputs,
             &tg_case_where_broadcast_layouts_dtypes, &tg_case_reductions_axes_keepdim_layouts_dtypes,
             &tg_case_argmax_argmin_ties_layouts_dtypes, &tg_case_max_min_int32_and_negative_values,
             &tg_case_logsumexp_large_and_infinite, &tg_case_norm_sizes_layouts_dtypes,
             &tg_case_softmax_log_softmax_axes_layouts_dtypes, &tg_case_softmax_large_logits_stable,
             &tg_case_cross_entropy_reductions_ignore_layouts_dtypes, &tg_case_cross_entropy_large_logits,
             &tg_case_matmul_shapes_layouts_dtypes, &tg_case_reshape_view_flatten, &tg_case_reshape_is_view_when_contiguous,
             &tg_case_permute_transpose, &tg_case_expand, &tg_case_slice_step_negative_start_clamping,
             &tg_case_squeeze_unsqueeze, &tg_case_flip, &tg_case_contiguous_and_clone, &tg_case_cat_axes_layouts_dtypes,
             &tg_case_stack_axes, &tg_case_split_pieces, &tg_case_pad_positive_negative_mixed,
             &tg_case_gather_axes_layouts_dtypes, &tg_case_index_select_axes_layouts_dtypes,
             &tg_case_scatter_add_axes_layouts_dtypes, &tg_case_one_hot, &tg_case_cast_all_dtype_pairs,
             &tg_case_ops_on_broadcast_views, &tg_case_empty_tensors, &tg_case_logsumexp_positive_infinity,
             &tg_case_zeros_ones_full_scalar_like, &tg_case_arange_linspace_eye, &tg_case_rand_randn_bernoulli_statistics,
             &tg_case_random_same_seed_same_numbers, &tg_case_uniform_normal_fill_in_place, &tg_case_nan_semantics_agree_across_layouts)
