/* The activations of torch.nn.functional (elu, gelu both forms, silu, softplus,
 * log_sigmoid, hardtanh, relu6, softsign, hardsigmoid, hardswish) and erf/erfc: forward
 * against libm formulas computed here in f64, special values and gradients at the kinks
 * as PyTorch 1.13 gives them, gradcheck and gradgradcheck in f64 away from the kinks,
 * and the error messages. */
#include "ops_check.h"

#define SQRT1_2 0.70710678118654752440
#define SQRT_2_PI 0.79788456080286535588 /* sqrt(2/pi) */

/* ------------------------------------------------------------------ references (libm) */

static double r_erf(double x) { return erf(x); }
static double r_erfc(double x) { return erfc(x); }
static double r_elu(double x) { return x > 0 ? x : 0.7 * expm1(x); }
static double r_gelu(double x) { return 0.5 * x * erfc(-x * SQRT1_2); }
/* x/2 (1 + tanh u); for u < 0, 1 + tanh u = 2 e^2u / (1 + e^2u) without the cancellation */
static double r_gelu_tanh(double x) {
    double u = SQRT_2_PI * (x + 0.044715 * x * x * x);
    return u < 0 ? x * exp(2 * u) / (1 + exp(2 * u)) : 0.5 * x * (1 + tanh(u));
}
static double r_silu(double x) { return x / (1 + exp(-x)); }
static double r_softplus(double x) { return x > 20 ? x : log1p(exp(x)); }
static double r_softplus_b2(double x) { return 2 * x > 3 ? x : log1p(exp(2 * x)) / 2; }
static double r_log_sigmoid(double x) { return x < 0 ? x - log1p(exp(x)) : -log1p(exp(-x)); }
static double r_hardtanh(double x) { return x < -0.5 ? -0.5 : x > 2 ? 2 : x; }
static double r_relu6(double x) { return x < 0 ? 0 : x > 6 ? 6 : x; }
static double r_softsign(double x) { return x / (1 + fabs(x)); }
static double r_hardsigmoid(double x) { return x <= -3 ? 0 : x >= 3 ? 1 : (x + 3) / 6; }
static double r_hardswish(double x) { return x <= -3 ? 0 : x >= 3 ? x : x * (x + 3) / 6; }

static tg_tensor *o_elu(tg_tensor *x) { return tg_elu(x, 0.7); }
static tg_tensor *o_gelu(tg_tensor *x) { return tg_gelu(x, TG_GELU_NONE); }
static tg_tensor *o_gelu_tanh(tg_tensor *x) { return tg_gelu(x, TG_GELU_TANH); }
static tg_tensor *o_softplus(tg_tensor *x) { return tg_softplus(x, 1, 20); }
static tg_tensor *o_softplus_b2(tg_tensor *x) { return tg_softplus(x, 2, 3); }
static tg_tensor *o_hardtanh(tg_tensor *x) { return tg_hardtanh(x, -0.5, 2); }

typedef struct {
    const char *name;
    double (*ref)(double);
    tg_tensor *(*op)(tg_tensor *);
    double lo, hi;   /* the forward's range */
    double kinks[2]; /* points gradchecks stay away from (NAN: none) */
    bool smooth2;    /* twice differentiable away from the kinks: gradgradcheck it */
} act;

static const act k_acts[] = {
    { "erf", r_erf, tg_erf, -6, 6, { NAN, NAN }, true },
    { "erfc", r_erfc, tg_erfc, -6, 27, { NAN, NAN }, true },
    { "elu", r_elu, o_elu, -30, 10, { 0, NAN }, true },
    { "gelu", r_gelu, o_gelu, -12, 12, { NAN, NAN }, true },
    { "gelu_tanh", r_gelu_tanh, o_gelu_tanh, -6, 6, { NAN, NAN }, true },
    { "silu", r_silu, tg_silu, -40, 40, { NAN, NAN }, true },
    { "softplus", r_softplus, o_softplus, -40, 40, { 20, NAN }, true },
    { "softplus_b2", r_softplus_b2, o_softplus_b2, -20, 20, { 1.5, NAN }, true },
    { "log_sigmoid", r_log_sigmoid, tg_log_sigmoid, -40, 40, { NAN, NAN }, true },
    { "hardtanh", r_hardtanh, o_hardtanh, -4, 4, { -0.5, 2 }, true },
    { "relu6", r_relu6, tg_relu6, -3, 9, { 0, 6 }, true },
    { "softsign", r_softsign, tg_softsign, -50, 50, { 0, NAN }, true },
    { "hardsigmoid", r_hardsigmoid, tg_hardsigmoid, -6, 6, { -3, 3 }, true },
    { "hardswish", r_hardswish, tg_hardswish, -6, 6, { -3, 3 }, true },
};
#define N_ACTS (int)(sizeof k_acts / sizeof k_acts[0])

static bool near_kink(const act *a, double x) {
    for (int k = 0; k < 2; k++)
        if (!isnan(a->kinks[k]) && fabs(x - a->kinks[k]) < 0.05) return true;
    return false;
}

/* ------------------------------------------------------------------ forward */

/* Random points in the range (f32, f64, four layouts) and a large tensor through the
 * threaded kernels; f64 to 1e-13 relative, f32 to 2e-6 of max(|ref|, 1e-3)'s scale. */
TEST(forward_against_libm) {
    for (int i = 0; i < N_ACTS; i++) {
        const act *a = &k_acts[i];
        for (int di = 0; di < 2; di++) {
            tg_dtype dt = k_float_dtypes[di];
            for (int layout = 0; layout < L_COUNT; layout++) {
                size_t m = mark();
                tg_shape s = layout == L_CONTIG ? TG_SHAPE(3, 311, 107) : TG_SHAPE(13, 17);
                double *v;
                tg_tensor *x = input(dt, s, a->lo, a->hi, layout, &v);
                int64_t n = numel_of(s);
                double *ref = dbuf(n), *scale = dbuf(n);
                for (int64_t k = 0; k < n; k++) {
                    ref[k] = a->ref(v[k]);
                    scale[k] = fmax(fabs(ref[k]), dt == TG_F32 ? 1e-3 : 1e-300);
                }
                WHAT("%s %s %s", a->name, tg_dtype_name(dt), k_layout_names[layout]);
                EXPECT_SCALED(a->op(x), s, dt, ref, 0, dt == TG_F32 ? 2e-6 : 1e-13, scale);
                release(m);
            }
        }
    }
}

/* Small and large |x| where a naive formula cancels or overflows. */
TEST(accuracy_in_the_tails) {
    static const double xs[] = { -1e-300, -1e-10, 1e-10, 1e-300, -0.3, 0.3, -3, 3.5, -7, 7, -25, 26 };
    int n = (int)(sizeof xs / sizeof xs[0]);
    tg_tensor *x = tg_from_f64(xs, TG_SHAPE(n), tg_test_device());
    for (int i = 0; i < N_ACTS; i++) {
        const act *a = &k_acts[i];
        double ref[sizeof xs / sizeof xs[0]];
        for (int k = 0; k < n; k++) ref[k] = a->ref(xs[k]);
        WHAT("%s", a->name);
        EXPECT(a->op(x), TG_SHAPE(n), TG_F64, ref, 1e-300, 1e-13);
    }
}

/* -inf, inf, NaN, -0 and huge values: PyTorch 1.13's results. */
TEST(special_values_as_pytorch) {
    static const double xs[] = { -INFINITY, -1e300, 1e300, INFINITY, NAN };
    double nan = NAN, inf = INFINITY;
    static const struct {
        int act;
        double want[5];
    } cases[] = {
        { 0, { -1, -1, 1, 1, NAN } },                       /* erf */
        { 1, { 2, 2, 0, 0, NAN } },                         /* erfc */
        { 2, { -0.7, -0.7, 1e300, INFINITY, NAN } },        /* elu(0.7) */
        { 3, { NAN, -0.0, 1e300, INFINITY, NAN } },         /* gelu: -inf * 0 */
        { 4, { NAN, -0.0, 1e300, INFINITY, NAN } },         /* gelu tanh */
        { 5, { NAN, -0.0, 1e300, INFINITY, NAN } },         /* silu */
        { 6, { 0, 0, 1e300, INFINITY, NAN } },              /* softplus */
        { 8, { -INFINITY, -1e300, -0.0, 0, NAN } },         /* log_sigmoid */
        { 9, { -0.5, -0.5, 2, 2, NAN } },                   /* hardtanh(-0.5, 2) */
        { 10, { 0, 0, 6, 6, NAN } },                        /* relu6 */
        { 11, { NAN, -1, 1, NAN, NAN } },                   /* softsign: inf / inf */
        { 12, { 0, 0, 1, 1, NAN } },                        /* hardsigmoid */
        { 13, { NAN, -0.0, 1e300, INFINITY, NAN } },        /* hardswish: -inf * 0 */
    };
    (void)nan, (void)inf;
    tg_tensor *x = tg_from_f64(xs, TG_SHAPE(5), tg_test_device());
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        WHAT("%s", k_acts[cases[c].act].name);
        EXPECT(k_acts[cases[c].act].op(x), TG_SHAPE(5), TG_F64, cases[c].want, 1e-300, 1e-15);
    }
}

/* ------------------------------------------------------------------ gradients */

static tg_tensor *act_fn(tg_tensor *const *in, void *ctx) { return ((const act *)ctx)->op(in[0]); }

/* Points in the range (|x| <= 8 for the smooth ones) at least 0.05 from every kink. */
static tg_tensor *grad_points(const act *a, int n) {
    double *v = dbuf(n);
    double lo = fmax(a->lo, -8), hi = fmin(a->hi, 8);
    for (int k = 0; k < n; k++) {
        do v[k] = urand(lo, hi);
        while (near_kink(a, v[k]));
    }
    return tg_from_f64(v, TG_SHAPE(n), tg_test_device());
}

TEST(gradcheck_and_gradgradcheck) {
    for (int i = 0; i < N_ACTS; i++) {
        const act *a = &k_acts[i];
        size_t m = mark();
        tg_tensor *x = tg_param(grad_points(a, 24));
        tg_gradcheck_report rep;
        if (tg_gradcheck(act_fn, (void *)a, 1, &x, NULL, &rep) != TG_OK) FAIL_("%s: %s", a->name, rep.message);
        if (a->smooth2 && tg_gradgradcheck(act_fn, (void *)a, 1, &x, NULL, &rep) != TG_OK)
            FAIL_("%s second order: %s", a->name, rep.message);
        release(m);
    }
}

/* d/dx at the kinks and at 0, as PyTorch 1.13's backward gives it. */
TEST(gradients_at_kinks_as_pytorch) {
    static const struct {
        const char *name;
        tg_tensor *(*op)(tg_tensor *);
        double x[3], g[3];
    } cases[] = {
        { "hardtanh(-0.5, 2)", o_hardtanh, { -0.5, 2, 0 }, { 0, 0, 1 } },
        { "relu6", tg_relu6, { 0, 6, 3 }, { 0, 0, 1 } },
        { "hardsigmoid", tg_hardsigmoid, { -3, 3, 0 }, { 0, 0, 1.0 / 6 } },
        { "hardswish", tg_hardswish, { -3, 3, 6 }, { -0.5, 1.5, 1 } },
        { "elu(0.7)", o_elu, { 0, -1, 2 }, { 0.7, 0.7 * 0.36787944117144233, 1 } },
        { "softplus", o_softplus, { 0, 21, -1 }, { 0.5, 1, 0.2689414213699951 } },
        { "softplus(2, 3)", o_softplus_b2, { 0, 1.5, 2 }, { 0.5, 0.9525741268224334, 1 } },
        { "softsign", tg_softsign, { 0, 1, -3 }, { 1, 0.25, 0.0625 } },
        { "gelu", o_gelu, { 0, 1, -1 }, { 0.5, 1.0833154705876864, -0.08331547058768642 } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tg_scope_begin();
        tg_tensor *x = tg_param(tg_from_f64(cases[c].x, TG_SHAPE(3), tg_test_device()));
        tg_tensor *g = NULL;
        tg_status st = tg_autograd_grad(1, (tg_tensor *[]){ tg_sum(cases[c].op(x), TG_ALL, false) }, NULL, 1, &x, &g, NULL);
        WHAT("%s", cases[c].name);
        if (st != TG_OK) FAIL_("%s: %s", cases[c].name, tg_last_error());
        else EXPECT(g, TG_SHAPE(3), TG_F64, cases[c].g, 1e-15, 1e-12);
        tg_scope_end();
    }
}

/* ------------------------------------------------------------------ errors */

TEST(error_messages) {
    tg_device *dev = tg_test_device();
    tg_tensor *i = tg_zeros(TG_I32, TG_SHAPE(2), dev), *f = tg_zeros(TG_F32, TG_SHAPE(2), dev);
    CHECK_ERROR(tg_elu(i, 1), "tg_elu: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_gelu(i, TG_GELU_NONE), "tg_gelu: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_silu(i), "tg_silu: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_softplus(i, 1, 20), "tg_softplus: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_log_sigmoid(i), "tg_log_sigmoid: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_hardtanh(i, -1, 1), "tg_hardtanh: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_relu6(i), "tg_relu6: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_softsign(i), "tg_softsign: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_hardsigmoid(i), "tg_hardsigmoid: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_hardswish(tg_zeros(TG_U8, TG_SHAPE(2), dev)),
                "tg_hardswish: expected a floating dtype (f32 or f64), got u8");
    CHECK_ERROR(tg_erf(i), "tg_erf: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_erfc(i), "tg_erfc: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_gelu(f, (tg_gelu_approximate)5), "tg_gelu: unknown approximate 5 (TG_GELU_NONE or TG_GELU_TANH)");
    CHECK_ERROR(tg_hardtanh(f, 1, -1), "tg_hardtanh: min_val 1 must not be greater than max_val -1");
    CHECK_ERROR(tg_softplus(f, 0, 20), "tg_softplus: beta must be finite and non-zero, got 0");
    CHECK_ERROR(tg_softplus(f, 1, NAN), "tg_softplus: threshold is NaN");
    CHECK_ERROR(tg_elu(NULL, 1), "tg_elu: x is NULL");
    CHECK_ERROR(tg_erf(NULL), "tg_erf: x is NULL");
    /* an error inside a chain keeps its own message */
    CHECK_ERROR(tg_silu(tg_gelu(i, TG_GELU_TANH)), "tg_gelu: expected a floating dtype (f32 or f64), got i32");
}

TG_TEST_MAIN(&tg_case_forward_against_libm, &tg_case_accuracy_in_the_tails, &tg_case_special_values_as_pytorch,
             &tg_case_gradcheck_and_gradgradcheck, &tg_case_gradients_at_kinks_as_pytorch, &tg_case_error_messages)
