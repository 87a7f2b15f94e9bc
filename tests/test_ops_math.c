/* Forward results of the math ops (elementwise, comparisons, reductions, softmax,
 * cross-entropy, matmul) against naive references written here as plain loops over
 * host arrays, on contiguous and non-contiguous inputs (strided, transposed, flipped),
 * in f32 and f64, at awkward sizes up to one ~100k-element tensor that crosses the CPU
 * threading threshold. Expected values never come from the library. */
#include "ops_check.h"

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
                            EXPECT_EXACT(run_reduce((red_kind)k, t, TG_AXES(a), keep), so, TG_I64, ref); /* int64 as PyTorch */
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
                    if (mode == 4) o.ignore_index = (tg_opt_i64)TG_SOME(2);
                    if (mode == 5) o.ignore_index = (tg_opt_i64)TG_SOME(0), o.reduction = TG_REDUCTION_SUM;
                    int32_t ignore = mode >= 4 ? (int32_t)o.ignore_index.value : -100;
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

TG_TEST_MAIN(&tg_case_unary_all_ops_sizes_layouts_dtypes, &tg_case_unary_special_values,
             &tg_case_unary_int32, &tg_case_binary_broadcast_layouts_dtypes,
             &tg_case_binary_same_tensor_both_operands, &tg_case_binary_int32,
             &tg_case_comparisons_broadcast_layouts_dtypes, &tg_case_comparisons_u8_inputs,
             &tg_case_where_broadcast_layouts_dtypes, &tg_case_reductions_axes_keepdim_layouts_dtypes,
             &tg_case_argmax_argmin_ties_layouts_dtypes, &tg_case_max_min_int32_and_negative_values,
             &tg_case_logsumexp_large_and_infinite, &tg_case_norm_sizes_layouts_dtypes,
             &tg_case_softmax_log_softmax_axes_layouts_dtypes, &tg_case_softmax_large_logits_stable,
             &tg_case_cross_entropy_reductions_ignore_layouts_dtypes, &tg_case_cross_entropy_large_logits,
             &tg_case_matmul_shapes_layouts_dtypes, &tg_case_logsumexp_positive_infinity,
             &tg_case_nan_semantics_agree_across_layouts)
