/* Gradients of every differentiable op checked against central differences with
 * tg_gradcheck (f64), including broadcasting and non-contiguous inputs, then second
 * order with tg_gradgradcheck where the op is twice differentiable; and the checker's
 * own failure report. Inputs are small (at most 24 elements) and drawn where each op
 * is smooth: positive for log/sqrt, away from 0 for abs/relu, away from clamp bounds,
 * distinct values for max/min so that no tie sits on a kink. The tie rules themselves,
 * which central differences cannot see, are checked against closed forms. */
#include <math.h>
#include <stdint.h>

#include "harness.h"

static char g_what[160]; /* the loop's current case, printed with a failure */
#define WHAT(...) snprintf(g_what, sizeof g_what, __VA_ARGS__)

/* Runs the checker on the listed inputs; on failure prints the report and the error. */
#define CHECK_GRAD_(checker, fn, ctx, ...)                                                                  \
    do {                                                                                                    \
        tg_tensor *in_[] = { __VA_ARGS__ };                                                                 \
        tg_gradcheck_report rep_;                                                                           \
        tg_status st_ = checker(fn, ctx, (int)(sizeof in_ / sizeof in_[0]), in_, NULL, &rep_);              \
        if (st_ != TG_OK)                                                                                   \
            FAIL_("[%s] %s(%s) failed: %s (%s)", g_what, #checker, #fn, rep_.message, tg_last_error());    \
    } while (0)
#define GRADCHECK(fn, ctx, ...) CHECK_GRAD_(tg_gradcheck, fn, ctx, __VA_ARGS__)
#define GRADGRADCHECK(fn, ctx, ...) CHECK_GRAD_(tg_gradgradcheck, fn, ctx, __VA_ARGS__)

/* ------------------------------------------------------------------ inputs */

static tg_device *dev(void) { return tg_test_device(); }

/* Uniform f64 in [lo, hi). */
static tg_tensor *uni(tg_shape s, double lo, double hi) {
    return tg_add_scalar(tg_mul_scalar(tg_rand(TG_F64, s, dev()), hi - lo), lo);
}

/* |x| uniform in [lo, hi) with a random sign: away from zero. */
static tg_tensor *away0(tg_shape s, double lo, double hi) {
    tg_tensor *sign = tg_add_scalar(tg_mul_scalar(tg_bernoulli(TG_F64, s, 0.5, dev()), 2), -1);
    return tg_mul(uni(s, lo, hi), sign);
}

static int64_t numel_of(tg_shape s) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    return n;
}

/* Distinct values 0.37 apart in a scrambled order, plus shift: no two are near a tie,
 * and with shift 0.18 none is near a value made with shift 0. */
static tg_tensor *distinct(tg_shape s, double shift) {
    int64_t n = numel_of(s), mul = 7;
    while (n > 1 && (n % mul == 0)) mul += 2; /* coprime with n: a permutation */
    double v[64];
    for (int64_t i = 0; i < n; i++) v[i] = 0.37 * (double)((i * mul + 3) % n) - 2 + shift;
    return tg_from_f64(v, s, dev());
}

static tg_tensor *i32(const int32_t *v, tg_shape s) { return tg_from_i32(v, s, dev()); }

/* A transposed view (non-contiguous) of a fresh (c, r) tensor: shape (r, c). */
static tg_tensor *transposed(tg_tensor *t) { return tg_transpose(tg_contiguous(tg_transpose(t, 0, 1)), 0, 1); }

/* ================================================================== unary */

typedef struct {
    tg_tensor *(*fn)(tg_tensor *);
} un_box;

static tg_tensor *f_unary(tg_tensor *const *in, void *ctx) { return ((const un_box *)ctx)->fn(in[0]); }
static tg_tensor *f_unary_tr(tg_tensor *const *in, void *ctx) {
    return ((const un_box *)ctx)->fn(tg_transpose(in[0], 0, 1));
}

static tg_tensor *u_leaky(tg_tensor *x) { return tg_leaky_relu(x, 0.1); }
static tg_tensor *u_pow2(tg_tensor *x) { return tg_pow_scalar(x, 2.0); }
static tg_tensor *u_pow3(tg_tensor *x) { return tg_pow_scalar(x, 3.0); }
static tg_tensor *u_pow_half(tg_tensor *x) { return tg_pow_scalar(x, 0.5); }
static tg_tensor *u_pow_m15(tg_tensor *x) { return tg_pow_scalar(x, -1.5); }
static tg_tensor *u_pow_25(tg_tensor *x) { return tg_pow_scalar(x, 2.5); }
static tg_tensor *u_pow0(tg_tensor *x) { return tg_pow_scalar(x, 0.0); }
static tg_tensor *u_add(tg_tensor *x) { return tg_add_scalar(x, 2.5); }
static tg_tensor *u_mul(tg_tensor *x) { return tg_mul_scalar(x, -3.0); }
static tg_tensor *u_clamp(tg_tensor *x) { return tg_clamp(x, -0.5, 0.5); }
static tg_tensor *u_clamp_hi(tg_tensor *x) { return tg_clamp(x, -INFINITY, 0.3); }
static tg_tensor *u_clamp_lo(tg_tensor *x) { return tg_clamp(x, -0.3, INFINITY); }
static tg_tensor *u_cast(tg_tensor *x) { return tg_cast(x, TG_F64); }

enum { D_ANY, D_POS, D_AWAY0, D_CLAMP };

typedef struct {
    const char *name;
    tg_tensor *(*fn)(tg_tensor *);
    int domain;
} unary_case;

static const unary_case k_unary[] = {
    { "neg", tg_neg, D_ANY },         { "exp", tg_exp, D_ANY },           { "log", tg_log, D_POS },
    { "sqrt", tg_sqrt, D_POS },       { "rsqrt", tg_rsqrt, D_POS },       { "abs", tg_abs, D_AWAY0 },
    { "relu", tg_relu, D_AWAY0 },       { "sigmoid", tg_sigmoid, D_ANY },
    { "tanh", tg_tanh, D_ANY },       { "sin", tg_sin, D_ANY },           { "cos", tg_cos, D_ANY },
    { "square", tg_square, D_ANY },   { "reciprocal", tg_reciprocal, D_AWAY0 },
    { "leaky_relu", u_leaky, D_AWAY0 }, { "pow_scalar(2)", u_pow2, D_ANY }, { "pow_scalar(3)", u_pow3, D_ANY },
    { "pow_scalar(0.5)", u_pow_half, D_POS }, { "pow_scalar(-1.5)", u_pow_m15, D_POS },
    { "pow_scalar(2.5)", u_pow_25, D_POS }, { "pow_scalar(0)", u_pow0, D_ANY },
    { "add_scalar", u_add, D_ANY },   { "mul_scalar", u_mul, D_ANY },     { "clamp(-0.5,0.5)", u_clamp, D_CLAMP },
    { "clamp(-inf,0.3)", u_clamp_hi, D_CLAMP }, { "clamp(-0.3,inf)", u_clamp_lo, D_CLAMP },
    { "cast f64->f64", u_cast, D_ANY },
};

/* Values on both sides of every clamp bound above, none within 0.05 of one. */
static tg_tensor *clamp_values(tg_shape s) {
    static const double pool[] = { -1.3, -0.7, -0.45, -0.2, 0.1, 0.4, 0.9, 1.6, -0.9, 0.2, -0.1, 0.6 };
    double v[64];
    for (int64_t i = 0; i < numel_of(s); i++) v[i] = pool[i % 12];
    return tg_from_f64(v, s, dev());
}

static tg_tensor *domain_input(int domain, tg_shape s) {
    switch (domain) {
    case D_POS: return uni(s, 0.5, 3);
    case D_AWAY0: return away0(s, 0.2, 2);
    case D_CLAMP: return clamp_values(s);
    default: return uni(s, -2, 2);
    }
}

TEST(gradcheck_unary) {
    tg_manual_seed(1);
    for (int k = 0; k < (int)(sizeof k_unary / sizeof k_unary[0]); k++) {
        un_box box = { k_unary[k].fn };
        WHAT("%s contiguous (3,4)", k_unary[k].name);
        GRADCHECK(f_unary, &box, domain_input(k_unary[k].domain, TG_SHAPE(3, 4)));
        WHAT("%s on a transposed view input", k_unary[k].name);
        GRADCHECK(f_unary, &box, tg_transpose(domain_input(k_unary[k].domain, TG_SHAPE(4, 3)), 0, 1));
        WHAT("%s transposed inside the function", k_unary[k].name);
        GRADCHECK(f_unary_tr, &box, domain_input(k_unary[k].domain, TG_SHAPE(2, 5)));
        WHAT("%s 0-d", k_unary[k].name);
        GRADCHECK(f_unary, &box, domain_input(k_unary[k].domain, TG_SCALAR_SHAPE));
        WHAT("%s on a strided slice (7)", k_unary[k].name);
        GRADCHECK(f_unary, &box, tg_slice(domain_input(k_unary[k].domain, TG_SHAPE(14)), 0, 1, INT64_MAX, 2));
    }
}

/* sign's gradient is zero (the header says so): the check compares zeros with the
 * numeric zeros of a step function away from its jump. */
TEST(gradcheck_sign_zero_gradient) {
    tg_manual_seed(15);
    un_box box = { tg_sign };
    WHAT("sign (3,4)");
    GRADCHECK(f_unary, &box, away0(TG_SHAPE(3, 4), 0.2, 2));
    WHAT("sign on a transposed view input");
    GRADCHECK(f_unary, &box, tg_transpose(away0(TG_SHAPE(4, 3), 0.2, 2), 0, 1));
}

static tg_tensor *f_sign_mul(tg_tensor *const *in, void *ctx) { return tg_mul(tg_sign(in[0]), in[1]); }

TEST(gradcheck_sign_inside_a_product) {
    /* sign(a) * b: d/db = sign(a), d/da = 0 */
    tg_manual_seed(16);
    WHAT("sign(a) * b");
    GRADCHECK(f_sign_mul, NULL, away0(TG_SHAPE(2, 3), 0.2, 2), tg_transpose(away0(TG_SHAPE(3, 2), 0.2, 2), 0, 1));
}

/* ================================================================== binary */

typedef struct {
    tg_tensor *(*fn)(tg_tensor *, tg_tensor *);
} bin_box;

static tg_tensor *f_binary(tg_tensor *const *in, void *ctx) { return ((const bin_box *)ctx)->fn(in[0], in[1]); }
static tg_tensor *f_binary_tr(tg_tensor *const *in, void *ctx) {
    return ((const bin_box *)ctx)->fn(tg_transpose(in[0], 0, 1), in[1]);
}
/* The same tensor as both operands. */
static tg_tensor *f_binary_self(tg_tensor *const *in, void *ctx) { return ((const bin_box *)ctx)->fn(in[0], in[0]); }

enum { B_ANY, B_DIV, B_POW, B_EXTREMUM };

static void binary_inputs(int kind, tg_shape sa, tg_shape sb, tg_tensor **a, tg_tensor **b) {
    switch (kind) {
    case B_DIV: *a = uni(sa, -2, 2), *b = away0(sb, 0.5, 2); break;
    case B_POW: *a = uni(sa, 0.5, 2), *b = uni(sb, -1.5, 1.5); break;
    case B_EXTREMUM: *a = distinct(sa, 0), *b = distinct(sb, 0.18); break;
    default: *a = uni(sa, -2, 2), *b = uni(sb, -2, 2); break;
    }
}

TEST(gradcheck_binary_broadcast_noncontiguous) {
    struct {
        const char *name;
        tg_tensor *(*fn)(tg_tensor *, tg_tensor *);
        int kind;
    } ops[] = { { "add", tg_add, B_ANY }, { "sub", tg_sub, B_ANY },       { "mul", tg_mul, B_ANY },
                { "div", tg_div, B_DIV }, { "pow", tg_pow, B_POW },       { "maximum", tg_maximum, B_EXTREMUM },
                { "minimum", tg_minimum, B_EXTREMUM } };
    struct {
        tg_shape a, b;
    } shapes[] = { { TG_SHAPE(3, 4), TG_SHAPE(3, 4) }, { TG_SHAPE(3, 1), TG_SHAPE(1, 4) },
                   { TG_SCALAR_SHAPE, TG_SHAPE(2, 3) }, { TG_SHAPE(2, 3), TG_SCALAR_SHAPE },
                   { TG_SHAPE(2, 1, 3), TG_SHAPE(4, 1) }, { TG_SHAPE(4), TG_SHAPE(3, 4) } };
    tg_manual_seed(2);
    for (int o = 0; o < (int)(sizeof ops / sizeof ops[0]); o++) {
        bin_box box = { ops[o].fn };
        for (int q = 0; q < (int)(sizeof shapes / sizeof shapes[0]); q++) {
            tg_tensor *a, *b;
            binary_inputs(ops[o].kind, shapes[q].a, shapes[q].b, &a, &b);
            WHAT("%s shapes case %d", ops[o].name, q);
            GRADCHECK(f_binary, &box, a, b);
        }
        tg_tensor *a, *b;
        /* a transposed view as an input, broadcast against a row */
        binary_inputs(ops[o].kind, TG_SHAPE(4, 3), TG_SHAPE(4), &a, &b);
        WHAT("%s transposed view input with (4)", ops[o].name);
        GRADCHECK(f_binary, &box, tg_transpose(a, 0, 1), b);
        /* transposed inside the function, against a column */
        binary_inputs(ops[o].kind, TG_SHAPE(4, 3), TG_SHAPE(3, 1), &a, &b);
        WHAT("%s transposed inside, with (3,1)", ops[o].name);
        GRADCHECK(f_binary_tr, &box, a, b);
        /* both operands non-contiguous: a flip and a strided slice */
        binary_inputs(ops[o].kind, TG_SHAPE(2, 6), TG_SHAPE(2, 3), &a, &b);
        WHAT("%s strided slice with flipped", ops[o].name);
        GRADCHECK(f_binary, &box, tg_slice(a, 1, 0, INT64_MAX, 2), tg_flip(b, TG_AXES(1)));
        if (ops[o].kind != B_EXTREMUM) { /* max(x, x) is a tie everywhere */
            binary_inputs(ops[o].kind, TG_SHAPE(2, 3), TG_SHAPE(2, 3), &a, &b);
            WHAT("%s with itself", ops[o].name);
            GRADCHECK(f_binary_self, &box, ops[o].kind == B_POW ? a : b);
        }
    }
}

/* Leaves that are broadcast views (stride 0): each of their elements is its own input
 * to the check, even though they share storage. */
static tg_tensor *f_matmul(tg_tensor *const *in, void *ctx);

TEST(gradcheck_stride0_inputs) {
    tg_manual_seed(19);
    bin_box mul = { tg_mul }, mx = { tg_maximum };
    WHAT("mul with an expanded (3,1)->(3,4) input");
    GRADCHECK(f_binary, &mul, tg_expand(uni(TG_SHAPE(3, 1), -2, 2), TG_SHAPE(3, 4)), uni(TG_SHAPE(3, 4), -2, 2));
    WHAT("maximum with an expanded 0-d input");
    GRADCHECK(f_binary, &mx, tg_expand(tg_scalar(TG_F64, 0.05, dev()), TG_SHAPE(2, 3)), distinct(TG_SHAPE(2, 3), 0.18));
    un_box ex = { tg_exp };
    WHAT("exp of an expanded input");
    GRADCHECK(f_unary, &ex, tg_expand(uni(TG_SHAPE(1, 4), -1, 1), TG_SHAPE(3, 4)));
    WHAT("matmul of an expanded input");
    GRADCHECK(f_matmul, NULL, tg_expand(uni(TG_SHAPE(1, 3), -1, 1), TG_SHAPE(2, 3)), uni(TG_SHAPE(3, 2), -1, 1));
}

/* ------------------------------------------------------------------ where */

static tg_tensor *f_where(tg_tensor *const *in, void *ctx) { return tg_where((tg_tensor *)ctx, in[0], in[1]); }
static tg_tensor *f_where_tr(tg_tensor *const *in, void *ctx) {
    return tg_where((tg_tensor *)ctx, tg_transpose(in[0], 0, 1), in[1]);
}

TEST(gradcheck_where) {
    tg_manual_seed(3);
    WHAT("where cond (3,1), a (3,4), b (4)");
    tg_tensor *cond = tg_from_u8((const uint8_t[]){ 1, 0, 1 }, TG_SHAPE(3, 1), dev());
    GRADCHECK(f_where, cond, uni(TG_SHAPE(3, 4), -2, 2), uni(TG_SHAPE(4), -2, 2));
    WHAT("where cond (2,3), a transposed, b 0-d");
    tg_tensor *cond2 = tg_from_u8((const uint8_t[]){ 1, 0, 0, 1, 1, 0 }, TG_SHAPE(2, 3), dev());
    GRADCHECK(f_where_tr, cond2, uni(TG_SHAPE(3, 2), -2, 2), uni(TG_SCALAR_SHAPE, -2, 2));
    WHAT("where cond from a comparison, a and b (2,3)");
    tg_tensor *x = uni(TG_SHAPE(2, 3), -1, 1);
    GRADCHECK(f_where, tg_gt(x, tg_scalar(TG_F64, 0, dev())), uni(TG_SHAPE(2, 3), -2, 2), uni(TG_SHAPE(2, 3), -2, 2));
}

/* ================================================================== reductions */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_VAR0, R_VAR1, R_STD0, R_STD1, R_LSE, R_COUNT };
static const char *const k_red_names[R_COUNT] = { "sum", "mean", "max", "min", "var(c=0)",
                                                  "var(c=1)", "std(c=0)", "std(c=1)", "logsumexp" };

typedef struct {
    int kind;
    tg_axes axes;
    bool keepdim;
    bool permute_first; /* reduce a permuted (non-contiguous) view of the input */
} red_ctx;

static tg_tensor *f_reduce(tg_tensor *const *in, void *vctx) {
    const red_ctx *c = vctx;
    tg_tensor *x = c->permute_first ? tg_permute(in[0], TG_AXES(2, 0, 1)) : in[0];
    switch (c->kind) {
    case R_SUM: return tg_sum(x, c->axes, c->keepdim);
    case R_MEAN: return tg_mean(x, c->axes, c->keepdim);
    case R_MAX: return tg_max(x, c->axes, c->keepdim);
    case R_MIN: return tg_min(x, c->axes, c->keepdim);
    case R_VAR0: return tg_var(x, c->axes, 0, c->keepdim);
    case R_VAR1: return tg_var(x, c->axes, 1, c->keepdim);
    case R_STD0: return tg_std(x, c->axes, 0, c->keepdim);
    case R_STD1: return tg_std(x, c->axes, 1, c->keepdim);
    default: return tg_logsumexp(x, c->axes, c->keepdim);
    }
}

TEST(gradcheck_reductions) {
    tg_axes axs[] = { TG_ALL, TG_AXES(0), TG_AXES(1), TG_AXES(2), TG_AXES(-1), TG_AXES(0, 2), TG_AXES(2, 1) };
    tg_manual_seed(4);
    for (int k = 0; k < R_COUNT; k++)
        for (int a = 0; a < (int)(sizeof axs / sizeof axs[0]); a++)
            for (int keep = 0; keep < 2; keep++)
                for (int perm = 0; perm < 2; perm++) {
                    red_ctx c = { k, axs[a], keep, perm };
                    /* distinct values: max/min have no tie, var/std no zero spread */
                    tg_tensor *x = perm ? distinct(TG_SHAPE(3, 4, 2), 0) : distinct(TG_SHAPE(2, 3, 4), 0);
                    WHAT("%s axes case %d keepdim %d permuted %d", k_red_names[k], a, keep, perm);
                    GRADCHECK(f_reduce, &c, x);
                }
    /* 0-d and 1-element inputs */
    for (int k = 0; k < R_COUNT; k++) {
        if (k == R_VAR1 || k == R_STD1 || k == R_VAR0 || k == R_STD0) continue; /* no spread to differentiate */
        red_ctx c = { k, TG_ALL, false, false };
        WHAT("%s over a 0-d input", k_red_names[k]);
        GRADCHECK(f_reduce, &c, uni(TG_SCALAR_SHAPE, -1, 1));
        WHAT("%s over (1)", k_red_names[k]);
        GRADCHECK(f_reduce, &c, uni(TG_SHAPE(1), -1, 1));
    }
}

static tg_tensor *f_norm(tg_tensor *const *in, void *ctx) { return tg_norm(in[0]); }
static tg_tensor *f_norm_tr(tg_tensor *const *in, void *ctx) { return tg_norm(tg_transpose(in[0], 0, 1)); }

TEST(gradcheck_norm) {
    tg_manual_seed(5);
    WHAT("norm (2,3,4)");
    GRADCHECK(f_norm, NULL, uni(TG_SHAPE(2, 3, 4), -2, 2));
    WHAT("norm of a transposed view");
    GRADCHECK(f_norm_tr, NULL, uni(TG_SHAPE(3, 5), -2, 2));
    WHAT("norm 0-d");
    GRADCHECK(f_norm, NULL, away0(TG_SCALAR_SHAPE, 0.5, 2));
}

static tg_tensor *f_lse_large(tg_tensor *const *in, void *ctx) {
    return tg_logsumexp(tg_add_scalar(in[0], 1000), TG_AXES(1), false);
}

TEST(gradcheck_logsumexp_large_logits) {
    tg_manual_seed(6);
    WHAT("logsumexp of logits near 1000");
    GRADCHECK(f_lse_large, NULL, uni(TG_SHAPE(3, 4), -2, 2));
}

/* ================================================================== softmax, log_softmax */

typedef struct {
    int axis;
    bool log_;
    bool transpose_first;
} sm_ctx;

static tg_tensor *f_softmax(tg_tensor *const *in, void *vctx) {
    const sm_ctx *c = vctx;
    tg_tensor *x = c->transpose_first ? tg_transpose(in[0], 0, 1) : in[0];
    return c->log_ ? tg_log_softmax(x, c->axis) : tg_softmax(x, c->axis);
}

TEST(gradcheck_softmax_log_softmax) {
    tg_manual_seed(7);
    for (int lg = 0; lg < 2; lg++) {
        const char *name = lg ? "log_softmax" : "softmax";
        int axes2[] = { 0, 1, -1 };
        for (int a = 0; a < 3; a++) {
            sm_ctx c = { axes2[a], lg, false };
            WHAT("%s (3,4) axis %d", name, axes2[a]);
            GRADCHECK(f_softmax, &c, uni(TG_SHAPE(3, 4), -3, 3));
            sm_ctx ct = { axes2[a], lg, true };
            WHAT("%s transposed inside axis %d", name, axes2[a]);
            GRADCHECK(f_softmax, &ct, uni(TG_SHAPE(4, 3), -3, 3));
            WHAT("%s transposed view input axis %d", name, axes2[a]);
            GRADCHECK(f_softmax, &c, tg_transpose(uni(TG_SHAPE(4, 3), -3, 3), 0, 1));
        }
        int axes3[] = { 0, 1, 2 };
        for (int a = 0; a < 3; a++) {
            sm_ctx c = { axes3[a], lg, false };
            WHAT("%s (2,3,4) axis %d", name, axes3[a]);
            GRADCHECK(f_softmax, &c, uni(TG_SHAPE(2, 3, 4), -3, 3));
        }
        sm_ctx c1 = { 0, lg, false };
        WHAT("%s (1)", name);
        GRADCHECK(f_softmax, &c1, uni(TG_SHAPE(1), -3, 3));
    }
}

/* ================================================================== cross-entropy */

typedef struct {
    tg_tensor *labels;
    tg_cross_entropy_opts opts;
    bool use_opts;
    bool transpose_first;
} ce_ctx;

static tg_tensor *f_ce(tg_tensor *const *in, void *vctx) {
    const ce_ctx *c = vctx;
    tg_tensor *x = c->transpose_first ? tg_transpose(in[0], 0, 1) : in[0];
    return c->use_opts ? tg_cross_entropy_ex(x, c->labels, &c->opts) : tg_cross_entropy(x, c->labels);
}

TEST(gradcheck_cross_entropy) {
    tg_manual_seed(8);
    tg_tensor *lab = i32((const int32_t[]){ 1, 0, 4, 2 }, TG_SHAPE(4));
    tg_tensor *lab_ign = i32((const int32_t[]){ 1, -100, 4, 2 }, TG_SHAPE(4));
    tg_tensor *lab_ign2 = i32((const int32_t[]){ 2, 0, 4, 2 }, TG_SHAPE(4));
    ce_ctx cs[] = {
        { lab, { 0 }, false, false },
        { lab, { .reduction = TG_REDUCTION_MEAN }, true, false },
        { lab, { .reduction = TG_REDUCTION_SUM }, true, false },
        { lab, { .reduction = TG_REDUCTION_NONE }, true, false },
        { lab_ign, { 0 }, false, false },
        { lab_ign, { .reduction = TG_REDUCTION_NONE }, true, false },
        { lab_ign2, { .ignore_index = TG_SOME(2) }, true, false },
        { lab_ign2, { .ignore_index = TG_SOME(0), .reduction = TG_REDUCTION_SUM }, true, false },
        { lab, { 0 }, false, true },
        { lab_ign, { .reduction = TG_REDUCTION_SUM }, true, true },
    };
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++) {
        WHAT("cross_entropy case %d", q);
        GRADCHECK(f_ce, &cs[q], cs[q].transpose_first ? uni(TG_SHAPE(5, 4), -3, 3) : uni(TG_SHAPE(4, 5), -3, 3));
    }
    /* (N, C, d) logits with (N, d) labels */
    ce_ctx cd = { i32((const int32_t[]){ 0, 2, 1, 1, 2, 0, -100, 1 }, TG_SHAPE(2, 4)), { 0 }, false, false };
    WHAT("cross_entropy (2,3,4) logits");
    GRADCHECK(f_ce, &cd, uni(TG_SHAPE(2, 3, 4), -3, 3));
    ce_ctx cdn = { cd.labels, { .reduction = TG_REDUCTION_NONE }, true, false };
    WHAT("cross_entropy (2,3,4) logits, no reduction");
    GRADCHECK(f_ce, &cdn, uni(TG_SHAPE(2, 3, 4), -3, 3));
}

/* ================================================================== matmul */

static tg_tensor *f_matmul(tg_tensor *const *in, void *ctx) { return tg_matmul(in[0], in[1]); }
static tg_tensor *f_matmul_tr(tg_tensor *const *in, void *ctx) {
    return tg_matmul(tg_transpose(in[0], -1, -2), tg_transpose(in[1], -1, -2));
}

TEST(gradcheck_matmul_shapes) {
    struct {
        tg_shape a, b;
    } cs[] = {
        { TG_SHAPE(4), TG_SHAPE(4) },           { TG_SHAPE(3), TG_SHAPE(3, 4) },      { TG_SHAPE(3, 4), TG_SHAPE(4) },
        { TG_SHAPE(3, 4), TG_SHAPE(4, 2) },     { TG_SHAPE(2, 1, 2, 3), TG_SHAPE(2, 3, 2) },
        { TG_SHAPE(4), TG_SHAPE(2, 4, 3) },     { TG_SHAPE(2, 3, 4), TG_SHAPE(4) },   { TG_SHAPE(1, 1), TG_SHAPE(1, 5) },
        { TG_SHAPE(2, 2, 3), TG_SHAPE(2, 3, 2) },
    };
    tg_manual_seed(9);
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++) {
        WHAT("matmul case %d", q);
        GRADCHECK(f_matmul, NULL, uni(cs[q].a, -2, 2), uni(cs[q].b, -2, 2));
    }
    WHAT("matmul of transposed view inputs");
    GRADCHECK(f_matmul, NULL, tg_transpose(uni(TG_SHAPE(4, 3), -2, 2), 0, 1), tg_transpose(uni(TG_SHAPE(2, 4), -2, 2), 0, 1));
    WHAT("matmul transposed inside, batched");
    GRADCHECK(f_matmul_tr, NULL, uni(TG_SHAPE(2, 4, 3), -2, 2), uni(TG_SHAPE(2, 4), -2, 2));
    WHAT("matmul of a strided slice and a flip");
    GRADCHECK(f_matmul, NULL, tg_slice(uni(TG_SHAPE(6, 4), -2, 2), 0, 1, INT64_MAX, 2), tg_flip(uni(TG_SHAPE(4, 3), -2, 2), TG_ALL));
}

/* ================================================================== movement */

static tg_tensor *m_reshape(tg_tensor *const *in, void *c) { return tg_reshape(in[0], TG_SHAPE(4, -1)); }
static tg_tensor *m_view(tg_tensor *const *in, void *c) { return tg_view(in[0], TG_SHAPE(6, 4)); }
static tg_tensor *m_flatten(tg_tensor *const *in, void *c) { return tg_flatten(in[0], 1); }
static tg_tensor *m_permute(tg_tensor *const *in, void *c) { return tg_permute(in[0], TG_AXES(2, 0, 1)); }
static tg_tensor *m_transpose(tg_tensor *const *in, void *c) { return tg_transpose(in[0], 0, 2); }
static tg_tensor *m_expand(tg_tensor *const *in, void *c) { return tg_expand(in[0], TG_SHAPE(2, 3, 4)); }
static tg_tensor *m_slice(tg_tensor *const *in, void *c) { return tg_slice(in[0], 1, -5, INT64_MAX, 2); }
static tg_tensor *m_slice2(tg_tensor *const *in, void *c) {
    /* rows 1..3, columns 0 and 3, times rows 3..5, columns 1 and 3: two overlapping views */
    return tg_mul(tg_slice(tg_slice(in[0], 0, 1, 4, 1), 1, 0, 5, 3), tg_slice(tg_slice(in[0], 0, -3, INT64_MAX, 1), 1, 1, 5, 2));
}
static tg_tensor *m_squeeze(tg_tensor *const *in, void *c) { return tg_squeeze(in[0], 1); }
static tg_tensor *m_unsqueeze(tg_tensor *const *in, void *c) { return tg_unsqueeze(in[0], 1); }
static tg_tensor *m_flip(tg_tensor *const *in, void *c) { return tg_flip(in[0], TG_AXES(0, 2)); }
static tg_tensor *m_contiguous(tg_tensor *const *in, void *c) { return tg_contiguous(tg_transpose(in[0], 0, 1)); }
static tg_tensor *m_clone(tg_tensor *const *in, void *c) { return tg_clone(in[0]); }
static tg_tensor *m_cat0(tg_tensor *const *in, void *c) { return tg_cat(3, in, 0); }
static tg_tensor *m_cat1(tg_tensor *const *in, void *c) { return tg_cat(3, in, -1); }
static tg_tensor *m_stack(tg_tensor *const *in, void *c) { return tg_stack(3, in, 1); }
static tg_tensor *m_split(tg_tensor *const *in, void *c) {
    tg_tensor *p[3];
    if (tg_split(in[0], 3, 0, p, 3) != 3) return NULL;
    tg_tensor *q[3] = { tg_mul_scalar(p[2], 3), p[0], tg_mul_scalar(p[1], 2) };
    return tg_cat(3, q, 0);
}
static tg_tensor *m_pad(tg_tensor *const *in, void *c) { return tg_pad(in[0], TG_PADS(1, 2, 0, 1), 0.5); }
static tg_tensor *m_pad_neg(tg_tensor *const *in, void *c) { return tg_pad(in[0], TG_PADS(-1, 1, 1, -1), 0); }
static tg_tensor *m_pad_crop(tg_tensor *const *in, void *c) { return tg_pad(in[0], TG_PADS(-1, -1, 0, 0, 1, 0), -2); }

TEST(gradcheck_movement) {
    struct {
        const char *name;
        tg_fn fn;
        tg_shape s;
    } cs[] = {
        { "reshape", m_reshape, TG_SHAPE(2, 3, 4) },   { "view", m_view, TG_SHAPE(2, 3, 4) },
        { "flatten", m_flatten, TG_SHAPE(2, 3, 4) },   { "permute", m_permute, TG_SHAPE(2, 3, 4) },
        { "transpose", m_transpose, TG_SHAPE(2, 3, 4) }, { "expand", m_expand, TG_SHAPE(3, 1) },
        { "slice step 2 start -5", m_slice, TG_SHAPE(4, 6) }, { "slice of slice", m_slice2, TG_SHAPE(6, 5) },
        { "squeeze", m_squeeze, TG_SHAPE(3, 1, 4) },   { "unsqueeze", m_unsqueeze, TG_SHAPE(3, 4) },
        { "flip", m_flip, TG_SHAPE(2, 3, 4) },         { "contiguous", m_contiguous, TG_SHAPE(3, 4) },
        { "clone", m_clone, TG_SHAPE(3, 4) },          { "split", m_split, TG_SHAPE(7, 2) },
        { "pad", m_pad, TG_SHAPE(3, 4) },              { "pad negative", m_pad_neg, TG_SHAPE(3, 4) },
        { "pad crop 3-d", m_pad_crop, TG_SHAPE(2, 3, 4) },
    };
    tg_manual_seed(10);
    for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++) {
        WHAT("%s", cs[q].name);
        GRADCHECK(cs[q].fn, NULL, uni(cs[q].s, -2, 2));
        if (cs[q].fn == m_view) continue; /* a view of these strides is refused by design */
        /* the same op on a non-contiguous input: a flip of the whole tensor */
        WHAT("%s on a flipped input", cs[q].name);
        GRADCHECK(cs[q].fn, NULL, tg_flip(uni(cs[q].s, -2, 2), TG_ALL));
    }
    WHAT("reshape of a transposed view (a copy)");
    GRADCHECK(m_reshape, NULL, tg_permute(uni(TG_SHAPE(4, 2, 3), -2, 2), TG_AXES(1, 2, 0)));
    WHAT("cat axis 0");
    GRADCHECK(m_cat0, NULL, uni(TG_SHAPE(1, 3), -2, 2), uni(TG_SHAPE(2, 3), -2, 2), transposed(uni(TG_SHAPE(3, 3), -2, 2)));
    WHAT("cat axis -1");
    GRADCHECK(m_cat1, NULL, uni(TG_SHAPE(2, 1), -2, 2), tg_transpose(uni(TG_SHAPE(3, 2), -2, 2), 0, 1), uni(TG_SHAPE(2, 2), -2, 2));
    WHAT("stack axis 1");
    GRADCHECK(m_stack, NULL, uni(TG_SHAPE(2, 3), -2, 2), tg_flip(uni(TG_SHAPE(2, 3), -2, 2), TG_AXES(0)),
              tg_transpose(uni(TG_SHAPE(3, 2), -2, 2), 0, 1));
}

/* ================================================================== indexing */

static tg_tensor *f_gather(tg_tensor *const *in, void *ctx) { return tg_gather(in[0], 1, (tg_tensor *)ctx); }
static tg_tensor *f_gather0(tg_tensor *const *in, void *ctx) { return tg_gather(in[0], 0, (tg_tensor *)ctx); }
static tg_tensor *f_isel0(tg_tensor *const *in, void *ctx) { return tg_index_select(in[0], 0, (tg_tensor *)ctx); }
static tg_tensor *f_isel1(tg_tensor *const *in, void *ctx) { return tg_index_select(in[0], -1, (tg_tensor *)ctx); }
static tg_tensor *f_scatter(tg_tensor *const *in, void *ctx) { return tg_scatter_add(in[0], 1, (tg_tensor *)ctx, in[1]); }
static tg_tensor *f_scatter0(tg_tensor *const *in, void *ctx) { return tg_scatter_add(in[0], 0, (tg_tensor *)ctx, in[1]); }

TEST(gradcheck_indexing) {
    tg_manual_seed(11);
    /* duplicate indices: their gradients add up */
    tg_tensor *idx = i32((const int32_t[]){ 0, 4, 4, 1, 2, 2, 2, 0, 3, 1, 0, 3 }, TG_SHAPE(3, 4));
    WHAT("gather axis 1 with duplicates");
    GRADCHECK(f_gather, idx, uni(TG_SHAPE(3, 5), -2, 2));
    WHAT("gather axis 1 of a transposed input");
    GRADCHECK(f_gather, idx, tg_transpose(uni(TG_SHAPE(5, 3), -2, 2), 0, 1));
    WHAT("gather axis 0, index smaller than the input");
    GRADCHECK(f_gather0, i32((const int32_t[]){ 2, 0, 2, 1, 0, 1 }, TG_SHAPE(2, 3)), uni(TG_SHAPE(3, 4), -2, 2));
    WHAT("index_select axis 0");
    tg_tensor *sel = i32((const int32_t[]){ 3, 0, 3 }, TG_SHAPE(3));
    GRADCHECK(f_isel0, sel, uni(TG_SHAPE(4, 5), -2, 2));
    WHAT("index_select axis -1 of a flipped input");
    GRADCHECK(f_isel1, i32((const int32_t[]){ 4, 1, 1 }, TG_SHAPE(3)), tg_flip(uni(TG_SHAPE(3, 5), -2, 2), TG_AXES(1)));
    WHAT("scatter_add axis 1, grads wrt x and src");
    GRADCHECK(f_scatter, idx, uni(TG_SHAPE(3, 5), -2, 2), uni(TG_SHAPE(3, 4), -2, 2));
    WHAT("scatter_add axis 1, transposed src");
    GRADCHECK(f_scatter, idx, uni(TG_SHAPE(3, 5), -2, 2), tg_transpose(uni(TG_SHAPE(4, 3), -2, 2), 0, 1));
    WHAT("scatter_add axis 0");
    GRADCHECK(f_scatter0, i32((const int32_t[]){ 2, 0, 2, 0, 0, 0 }, TG_SHAPE(2, 3)), uni(TG_SHAPE(3, 3), -2, 2),
              uni(TG_SHAPE(2, 3), -2, 2));
}

/* ================================================================== compositions */

static tg_tensor *f_mlp_ce(tg_tensor *const *in, void *ctx) {
    /* x (4,3), w1 (3,5), b1 (5), w2 (5,3); labels (4) */
    tg_tensor *h = tg_tanh(tg_add(tg_matmul(in[0], in[1]), in[2]));
    return tg_cross_entropy(tg_matmul(h, in[3]), (tg_tensor *)ctx);
}

static tg_tensor *f_softmax_ce_chain(tg_tensor *const *in, void *ctx) {
    /* -mean over rows of sum(onehot * log(softmax(x))): the loss written out by hand */
    tg_tensor *onehot = tg_cast(tg_one_hot((tg_tensor *)ctx, 5), TG_F64);
    tg_tensor *lp = tg_log(tg_softmax(in[0], 1));
    return tg_neg(tg_mean(tg_sum(tg_mul(onehot, lp), TG_AXES(1), false), TG_ALL, false));
}

static tg_tensor *f_logsoftmax_gather(tg_tensor *const *in, void *ctx) {
    tg_tensor *lp = tg_log_softmax(in[0], -1);
    return tg_neg(tg_sum(tg_gather(lp, 1, tg_unsqueeze((tg_tensor *)ctx, 1)), TG_ALL, false));
}

static tg_tensor *f_mlp_mse(tg_tensor *const *in, void *ctx) {
    /* x (3,2), w1 (2,4), b1 (4), w2 (4,1): mean((tanh(x w1 + b1) w2)^2) */
    tg_tensor *h = tg_tanh(tg_add(tg_matmul(in[0], in[1]), in[2]));
    return tg_mean(tg_square(tg_matmul(h, in[3])), TG_ALL, false);
}

TEST(gradcheck_compositions) {
    tg_manual_seed(12);
    tg_tensor *lab = i32((const int32_t[]){ 0, 2, 1, 2 }, TG_SHAPE(4));
    WHAT("2-layer MLP with softmax cross-entropy");
    GRADCHECK(f_mlp_ce, lab, uni(TG_SHAPE(4, 3), -1, 1), uni(TG_SHAPE(3, 5), -1, 1), uni(TG_SHAPE(5), -1, 1),
              uni(TG_SHAPE(5, 3), -1, 1));
    tg_tensor *lab5 = i32((const int32_t[]){ 4, 0, 2 }, TG_SHAPE(3));
    WHAT("softmax, log, one-hot cross-entropy chain");
    GRADCHECK(f_softmax_ce_chain, lab5, uni(TG_SHAPE(3, 5), -2, 2));
    WHAT("log_softmax and gather");
    GRADCHECK(f_logsoftmax_gather, lab5, uni(TG_SHAPE(3, 5), -2, 2));
    WHAT("MLP with a squared loss");
    GRADCHECK(f_mlp_mse, NULL, uni(TG_SHAPE(3, 2), -1, 1), uni(TG_SHAPE(2, 4), -1, 1), uni(TG_SHAPE(4), -1, 1),
              uni(TG_SHAPE(4, 1), -1, 1));
}

/* ================================================================== second order */

static tg_tensor *g_sum(tg_tensor *const *in, void *ctx) { return tg_sum(tg_square(in[0]), TG_AXES(1), false); }
static tg_tensor *g_mean(tg_tensor *const *in, void *ctx) { return tg_mean(tg_mul(in[0], in[0]), TG_AXES(0), true); }
static tg_tensor *g_lse(tg_tensor *const *in, void *ctx) { return tg_logsumexp(in[0], TG_AXES(1), false); }
static tg_tensor *g_lse_all(tg_tensor *const *in, void *ctx) { return tg_logsumexp(in[0], TG_ALL, false); }

TEST(gradgradcheck_ops) {
    tg_manual_seed(13);
    struct {
        const char *name;
        tg_tensor *(*fn)(tg_tensor *);
        int domain;
    } un[] = { { "exp", tg_exp, D_ANY },         { "log", tg_log, D_POS },       { "tanh", tg_tanh, D_ANY },
               { "sigmoid", tg_sigmoid, D_ANY }, { "sin", tg_sin, D_ANY },       { "cos", tg_cos, D_ANY },
               { "sqrt", tg_sqrt, D_POS },       { "rsqrt", tg_rsqrt, D_POS },   { "reciprocal", tg_reciprocal, D_AWAY0 },
               { "square", tg_square, D_ANY },   { "pow_scalar(2.5)", u_pow_25, D_POS },
               { "pow_scalar(3)", u_pow3, D_ANY }, { "pow_scalar(-1.5)", u_pow_m15, D_POS } };
    for (int k = 0; k < (int)(sizeof un / sizeof un[0]); k++) {
        un_box box = { un[k].fn };
        WHAT("gradgrad %s", un[k].name);
        GRADGRADCHECK(f_unary, &box, domain_input(un[k].domain, TG_SHAPE(2, 3)));
        WHAT("gradgrad %s transposed view", un[k].name);
        GRADGRADCHECK(f_unary, &box, tg_transpose(domain_input(un[k].domain, TG_SHAPE(3, 2)), 0, 1));
    }
    bin_box mul = { tg_mul }, div = { tg_div }, pw = { tg_pow };
    WHAT("gradgrad mul broadcast");
    GRADGRADCHECK(f_binary, &mul, uni(TG_SHAPE(2, 3), -2, 2), uni(TG_SHAPE(3), -2, 2));
    WHAT("gradgrad mul with itself");
    GRADGRADCHECK(f_binary_self, &mul, uni(TG_SHAPE(2, 3), -2, 2));
    WHAT("gradgrad div broadcast");
    GRADGRADCHECK(f_binary, &div, uni(TG_SHAPE(2, 3), -2, 2), away0(TG_SHAPE(2, 1), 0.5, 2));
    WHAT("gradgrad pow");
    GRADGRADCHECK(f_binary, &pw, uni(TG_SHAPE(2, 3), 0.5, 2), uni(TG_SHAPE(2, 3), -1.5, 1.5));
    WHAT("gradgrad matmul 2-D");
    GRADGRADCHECK(f_matmul, NULL, uni(TG_SHAPE(2, 3), -2, 2), uni(TG_SHAPE(3, 2), -2, 2));
    WHAT("gradgrad matmul batched broadcast");
    GRADGRADCHECK(f_matmul, NULL, uni(TG_SHAPE(2, 1, 2, 3), -2, 2), uni(TG_SHAPE(2, 3, 2), -2, 2));
    WHAT("gradgrad matmul vector");
    GRADGRADCHECK(f_matmul, NULL, uni(TG_SHAPE(3), -2, 2), uni(TG_SHAPE(3, 2), -2, 2));
    for (int lg = 0; lg < 2; lg++)
        for (int axis = 0; axis < 2; axis++) {
            sm_ctx c = { axis, lg, false };
            WHAT("gradgrad %s axis %d", lg ? "log_softmax" : "softmax", axis);
            GRADGRADCHECK(f_softmax, &c, uni(TG_SHAPE(3, 4), -2, 2));
            sm_ctx ct = { axis, lg, true };
            WHAT("gradgrad %s transposed axis %d", lg ? "log_softmax" : "softmax", axis);
            GRADGRADCHECK(f_softmax, &ct, uni(TG_SHAPE(4, 3), -2, 2));
        }
    WHAT("gradgrad logsumexp axis 1");
    GRADGRADCHECK(g_lse, NULL, uni(TG_SHAPE(3, 4), -2, 2));
    WHAT("gradgrad logsumexp all");
    GRADGRADCHECK(g_lse_all, NULL, uni(TG_SHAPE(2, 3), -2, 2));
    WHAT("gradgrad sum of squares");
    GRADGRADCHECK(g_sum, NULL, uni(TG_SHAPE(3, 4), -2, 2));
    WHAT("gradgrad mean keepdim");
    GRADGRADCHECK(g_mean, NULL, uni(TG_SHAPE(3, 4), -2, 2));
    for (int k = 0; k < R_COUNT; k++) {
        if (k == R_MAX || k == R_MIN || k == R_SUM || k == R_MEAN) continue; /* sum, mean: linear, below; max, min: gradgradcheck_max_min */
        red_ctx c = { k, TG_AXES(1), false, false };
        WHAT("gradgrad %s axis 1", k_red_names[k]);
        GRADGRADCHECK(f_reduce, &c, distinct(TG_SHAPE(2, 3, 2), 0));
    }
    tg_tensor *lab = i32((const int32_t[]){ 0, 2, 1 }, TG_SHAPE(3));
    ce_ctx ce = { lab, { 0 }, false, false };
    WHAT("gradgrad cross_entropy");
    GRADGRADCHECK(f_ce, &ce, uni(TG_SHAPE(3, 4), -2, 2));
    ce_ctx ce_none = { i32((const int32_t[]){ 0, -100, 1 }, TG_SHAPE(3)), { .reduction = TG_REDUCTION_NONE }, true, false };
    WHAT("gradgrad cross_entropy, ignore_index, no reduction");
    GRADGRADCHECK(f_ce, &ce_none, uni(TG_SHAPE(3, 4), -2, 2));
    ce_ctx ce_nd = { i32((const int32_t[]){ 0, 2, 1, 1 }, TG_SHAPE(2, 2)), { .reduction = TG_REDUCTION_SUM }, true, true };
    WHAT("gradgrad cross_entropy (2,3,2) logits from a transposed view, sum");
    GRADGRADCHECK(f_ce, &ce_nd, uni(TG_SHAPE(3, 2, 2), -2, 2));
    WHAT("gradgrad MLP with tanh, squared loss");
    GRADGRADCHECK(f_mlp_mse, NULL, uni(TG_SHAPE(3, 2), -1, 1), uni(TG_SHAPE(2, 4), -1, 1), uni(TG_SHAPE(4), -1, 1),
                  uni(TG_SHAPE(4, 1), -1, 1));
    tg_tensor *lab4 = i32((const int32_t[]){ 0, 2, 1, 2 }, TG_SHAPE(4));
    WHAT("gradgrad MLP with tanh and cross-entropy");
    GRADGRADCHECK(f_mlp_ce, lab4, uni(TG_SHAPE(4, 3), -1, 1), uni(TG_SHAPE(3, 5), -1, 1), uni(TG_SHAPE(5), -1, 1),
                  uni(TG_SHAPE(5, 3), -1, 1));
}

/* Ops whose gradient does not depend on the input (linear, or piecewise linear away
 * from the kinks) are twice differentiable with a zero second derivative: the check
 * must compare zeros with the numeric zeros, not refuse. */
TEST(gradgradcheck_linear_ops) {
    tg_manual_seed(17);
    bin_box sub = { tg_sub }, add = { tg_add };
    WHAT("gradgrad sub");
    GRADGRADCHECK(f_binary, &sub, uni(TG_SHAPE(2, 3), -2, 2), uni(TG_SCALAR_SHAPE, -2, 2));
    WHAT("gradgrad add broadcast");
    GRADGRADCHECK(f_binary, &add, uni(TG_SHAPE(2, 3), -2, 2), uni(TG_SHAPE(3), -2, 2));
    for (int k = R_SUM; k <= R_MEAN; k++) {
        red_ctx c = { k, TG_AXES(1), false, false };
        WHAT("gradgrad %s axis 1", k_red_names[k]);
        GRADGRADCHECK(f_reduce, &c, uni(TG_SHAPE(2, 3, 2), -2, 2));
        red_ctx ca = { k, TG_ALL, true, true };
        WHAT("gradgrad %s all, keepdim, permuted", k_red_names[k]);
        GRADGRADCHECK(f_reduce, &ca, uni(TG_SHAPE(3, 2, 2), -2, 2));
    }
    un_box leaky = { u_leaky };
    WHAT("gradgrad leaky_relu");
    GRADGRADCHECK(f_unary, &leaky, away0(TG_SHAPE(2, 3), 0.2, 2));
}

/* ================================================================== ties, against closed forms
 * Central differences cannot check a kink, so the tie rules are checked against what
 * the header promises: maximum/minimum give half the gradient to each side of a tie;
 * max/min reductions split it equally among the k tied extrema (1/k each). */

/* The gradients of sum(w * op(a, b)) for a and b, by backward. */
static tg_status grads2(tg_tensor *y, tg_tensor *w, tg_tensor *a, tg_tensor *b, tg_tensor **ga, tg_tensor **gb) {
    tg_tensor *L = tg_sum(tg_mul(y, w), TG_ALL, false), *in[2] = { a, b }, *g[2] = { NULL, NULL };
    tg_status st = L ? tg_autograd_grad(1, &L, NULL, 2, in, g, NULL) : tg_last_status();
    *ga = g[0], *gb = g[1];
    return st;
}

static int check_values(tg_tensor *t, const double *want, int64_t n, double tol, const char *what, int line) {
    double *v = t ? tg_test_values(t) : NULL;
    int bad = !v || tg_numel(t) != n;
    for (int64_t i = 0; !bad && i < n; i++)
        if (!(fabs(v[i] - want[i]) <= tol)) {
            fprintf(stderr, "  %s:%d: [%s] %s element %lld: got %.17g, expected %.17g\n", __FILE__, line, g_what, what,
                    (long long)i, v[i], want[i]);
            bad = 1;
        }
    if (!v) fprintf(stderr, "  %s:%d: [%s] %s: no values (%s)\n", __FILE__, line, g_what, what, tg_last_error());
    free(v);
    return bad;
}
#define CHECK_VALUES(t, want, n, tol, what) (*tg_failed_ += check_values((t), (want), (n), (tol), (what), __LINE__))

TEST(maximum_minimum_gradients_at_and_away_from_ties) {
    /* a (2,3) against b (3) broadcast over rows: ties at (0,0), (0,2), (1,1) */
    const double av[6] = { 1, 0, 3, 2, 2, -1 }, bv[3] = { 1, 2, 3 }, wv[6] = { 1, 2, 3, 4, 5, 6 };
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        for (int is_max = 0; is_max < 2; is_max++) {
            WHAT("%s %s with ties, broadcast", is_max ? "maximum" : "minimum", tg_dtype_name(dt));
            tg_tensor *a = tg_param(tg_cast(tg_from_f64(av, TG_SHAPE(2, 3), dev()), dt));
            tg_tensor *b = tg_param(tg_cast(tg_from_f64(bv, TG_SHAPE(3), dev()), dt));
            tg_tensor *w = tg_cast(tg_from_f64(wv, TG_SHAPE(2, 3), dev()), dt), *ga, *gb;
            CHECK(grads2(is_max ? tg_maximum(a, b) : tg_minimum(a, b), w, a, b, &ga, &gb) == TG_OK);
            double wa[6], wb[3] = { 0, 0, 0 };
            for (int i = 0; i < 6; i++) {
                double x = av[i], y = bv[i % 3];
                double share = x == y ? 0.5 : (is_max ? x > y : x < y) ? 1 : 0;
                wa[i] = wv[i] * share;
                wb[i % 3] += wv[i] * (1 - share);
            }
            CHECK_VALUES(ga, wa, 6, 0, "d/da");
            CHECK_VALUES(gb, wb, 3, 0, "d/db");
            if (ga) CHECK(tg_dtype_of(ga) == dt);
        }
    }
    /* the same tensor on both sides: a tie everywhere, 0.5 + 0.5 */
    for (int is_max = 0; is_max < 2; is_max++) {
        WHAT("%s(x, x)", is_max ? "maximum" : "minimum");
        tg_tensor *x = tg_param(tg_from_f64(av, TG_SHAPE(6), dev()));
        tg_tensor *L = tg_sum(tg_mul(is_max ? tg_maximum(x, x) : tg_minimum(x, x), tg_from_f64(wv, TG_SHAPE(6), dev())),
                              TG_ALL, false), *g = NULL;
        CHECK(tg_autograd_grad(1, &L, NULL, 1, &x, &g, NULL) == TG_OK);
        CHECK_VALUES(g, wv, 6, 0, "d/dx");
    }
    /* relu written as maximum(x, 0-d zero): the zero entries tie */
    WHAT("maximum with a 0-d zero");
    const double xv[5] = { -1, 0, 2, 0, 0.5 };
    tg_tensor *x = tg_param(tg_from_f64(xv, TG_SHAPE(5), dev())), *z = tg_param(tg_scalar(TG_F64, 0, dev())), *gx, *gz;
    CHECK(grads2(tg_maximum(x, z), tg_ones(TG_F64, TG_SHAPE(5), dev()), x, z, &gx, &gz) == TG_OK);
    CHECK_VALUES(gx, ((const double[]){ 0, 0.5, 1, 0.5, 1 }), 5, 0, "d/dx");
    CHECK_VALUES(gz, ((const double[]){ 2 }), 1, 0, "d/dzero"); /* 1 + 0.5 + 0.5 */
}

/* The reference for max/min over the axes in mask with upstream gradient w (of the
 * keepdim output shape): each element equal to its group's extremum gets w / count. */
static void host_extremum_grad(const double *x, tg_shape s, uint32_t mask, bool is_max, const double *w, double *g) {
    int64_t n = numel_of(s), nout = 1, ostride[TG_MAX_DIMS];
    for (int d = s.ndim - 1; d >= 0; d--) ostride[d] = nout, nout *= (mask >> d & 1) ? 1 : s.dims[d];
    double ext[64];
    int cnt[64] = { 0 };
    int64_t oi[64];
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, o = 0;
        for (int d = s.ndim - 1; d >= 0; d--) {
            int64_t c = rem % s.dims[d];
            rem /= s.dims[d];
            if (!(mask >> d & 1)) o += c * ostride[d];
        }
        oi[i] = o;
    }
    for (int64_t o = 0; o < nout; o++) ext[o] = is_max ? -INFINITY : INFINITY;
    for (int64_t i = 0; i < n; i++) ext[oi[i]] = is_max ? fmax(ext[oi[i]], x[i]) : fmin(ext[oi[i]], x[i]);
    for (int64_t i = 0; i < n; i++) cnt[oi[i]] += x[i] == ext[oi[i]];
    for (int64_t i = 0; i < n; i++) g[i] = x[i] == ext[oi[i]] ? w[oi[i]] / cnt[oi[i]] : 0;
}

TEST(max_min_reduction_gradients_share_ties) {
    /* (2,3,4) with runs of equal extrema: row (0,0,:) has four equal maxima, (0,1,:) three
     * equal minima, (1,2,:) two and two; whole-tensor max 3 appears five times. */
    const double xv[24] = { 3, 3, 3, 3, /**/ -1, 2, -1, -1, /**/ 0, 1, 0, 2,
                            1, 0, 3, 1, /**/ 2, 2, -1, 3, /**/ -1, 3, -1, 0 };
    const tg_shape s = TG_SHAPE(2, 3, 4);
    const struct {
        tg_axes axes;
        uint32_t mask;
    } cs[] = { { TG_ALL, 7 }, { TG_AXES(2), 4 }, { TG_AXES(-1), 4 }, { TG_AXES(0), 1 }, { TG_AXES(1), 2 },
               { TG_AXES(0, 2), 5 }, { TG_AXES(2, 1), 6 } };
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        for (int q = 0; q < (int)(sizeof cs / sizeof cs[0]); q++)
            for (int keep = 0; keep < 2; keep++)
                for (int is_max = 0; is_max < 2; is_max++) {
                    WHAT("%s %s axes case %d keepdim %d", is_max ? "max" : "min", tg_dtype_name(dt), q, keep);
                    tg_tensor *x = tg_param(tg_cast(tg_from_f64(xv, s, dev()), dt));
                    tg_tensor *y = is_max ? tg_max(x, cs[q].axes, keep) : tg_min(x, cs[q].axes, keep);
                    if (!y) {
                        FAIL_("[%s] %s", g_what, tg_last_error());
                        continue;
                    }
                    int64_t no = tg_numel(y);
                    double wv[24], want[24];
                    for (int64_t o = 0; o < no; o++) wv[o] = 1 + (double)o;
                    tg_tensor *gout = tg_reshape(tg_cast(tg_from_f64(wv, TG_SHAPE(no), dev()), dt), tg_shape_of(y));
                    tg_tensor *g = NULL;
                    CHECK(tg_autograd_grad(1, &y, &gout, 1, &x, &g, NULL) == TG_OK);
                    host_extremum_grad(xv, s, cs[q].mask, is_max, wv, want);
                    CHECK_VALUES(g, want, 24, dt == TG_F32 ? 1e-6 : 1e-15, "d/dx");
                }
    }
    /* a transposed view with ties along the reduced axis */
    WHAT("max over axis 0 of a transposed view with ties");
    const double mv[6] = { 2, 2, 1, 5, 5, 5 }; /* (2,3); transposed (3,2): columns reduce rows of m */
    tg_tensor *m = tg_param(tg_from_f64(mv, TG_SHAPE(2, 3), dev()));
    tg_tensor *y = tg_max(tg_transpose(m, 0, 1), TG_AXES(0), false), *g = NULL; /* max of each row of m */
    tg_tensor *gout = tg_from_f64((const double[]){ 6, 9 }, TG_SHAPE(2), dev());
    CHECK(tg_autograd_grad(1, &y, &gout, 1, &m, &g, NULL) == TG_OK);
    CHECK_VALUES(g, ((const double[]){ 3, 3, 0, 3, 3, 3 }), 6, 1e-15, "d/dm");
}

/* ================================================================== cast chains */

static tg_tensor *f_cast_chain(tg_tensor *const *in, void *ctx) {
    /* f64 -> f32 -> f64 with f32 math in between */
    tg_tensor *x32 = tg_cast(in[0], TG_F32);
    return tg_cast(tg_mul(tg_tanh(x32), tg_cast(in[1], TG_F32)), TG_F64);
}
static tg_tensor *f_cast_reduce(tg_tensor *const *in, void *ctx) {
    return tg_mul(tg_cast(tg_sum(tg_exp(tg_cast(tg_transpose(in[0], 0, 1), TG_F32)), TG_AXES(1), false), TG_F64), in[1]);
}

/* Through f32 the numeric derivative carries f32 rounding (about 1e-7 relative): a wider
 * step and tolerances suited to f32. */
TEST(gradcheck_cast_through_f32) {
    tg_manual_seed(21);
    const tg_gradcheck_opts o = { .eps = 1e-3, .atol = 1e-3, .rtol = 1e-2 };
    tg_gradcheck_report rep;
    WHAT("cast f64->f32->f64 elementwise");
    tg_tensor *in[2] = { uni(TG_SHAPE(3, 4), -2, 2), uni(TG_SHAPE(4), -2, 2) };
    if (tg_gradcheck(f_cast_chain, NULL, 2, in, &o, &rep) != TG_OK) FAIL_("[%s] %s", g_what, rep.message);
    WHAT("cast f64->f32, sum, ->f64");
    tg_tensor *in2[2] = { uni(TG_SHAPE(4, 3), -1, 1), uni(TG_SHAPE(3), -2, 2) };
    if (tg_gradcheck(f_cast_reduce, NULL, 2, in2, &o, &rep) != TG_OK) FAIL_("[%s] %s", g_what, rep.message);
    /* a gradient has its tensor's dtype, whatever dtype the loss has */
    WHAT("backward dtypes across casts");
    tg_tensor *x64 = tg_param(tg_from_f64((const double[]){ 0.5, -1.5 }, TG_SHAPE(2), dev()));
    tg_tensor *x32 = tg_param(tg_from_f32((const float[]){ 2, 3 }, TG_SHAPE(2), dev()));
    tg_tensor *mid = tg_cast(x64, TG_F32);
    tg_tensor *L = tg_add(tg_sum(tg_mul(mid, mid), TG_ALL, false), tg_sum(tg_cast(tg_square(x32), TG_F32), TG_ALL, false));
    tg_tensor *L64 = tg_cast(L, TG_F64), *ins[3] = { x64, x32, mid }, *g[3] = { NULL, NULL, NULL };
    CHECK(tg_autograd_grad(1, &L64, NULL, 3, ins, g, NULL) == TG_OK);
    CHECK(g[0] && tg_dtype_of(g[0]) == TG_F64);
    CHECK(g[1] && tg_dtype_of(g[1]) == TG_F32);
    CHECK(g[2] && tg_dtype_of(g[2]) == TG_F32);
    CHECK_VALUES(g[0], ((const double[]){ 1, -3 }), 2, 0, "d/dx64");
    CHECK_VALUES(g[1], ((const double[]){ 4, 6 }), 2, 0, "d/dx32");
    CHECK_VALUES(g[2], ((const double[]){ 1, -3 }), 2, 0, "d/dmid");
    /* f32 -> f64 -> f32: the f64 leg adds nothing to the f32 gradient */
    tg_tensor *y32 = tg_param(tg_from_f32((const float[]){ 0.25f, -2 }, TG_SHAPE(2), dev()));
    tg_tensor *L2 = tg_sum(tg_cast(tg_mul_scalar(tg_cast(y32, TG_F64), 3), TG_F32), TG_ALL, false), *g2 = NULL;
    CHECK(tg_autograd_grad(1, &L2, NULL, 1, &y32, &g2, NULL) == TG_OK);
    CHECK(g2 && tg_dtype_of(g2) == TG_F32);
    CHECK_VALUES(g2, ((const double[]){ 3, 3 }), 2, 0, "d/dy32");
}

/* ================================================================== second order of max/min */

static tg_tensor *g_max_sq(tg_tensor *const *in, void *ctx) {
    const red_ctx *c = ctx;
    tg_tensor *x = tg_mul(in[0], in[0]);
    return c->kind == R_MAX ? tg_max(x, c->axes, c->keepdim) : tg_min(x, c->axes, c->keepdim);
}
static tg_tensor *g_extremum_sq(tg_tensor *const *in, void *ctx) {
    return tg_square(((const bin_box *)ctx)->fn(in[0], in[1]));
}

/* max/min (reductions and elementwise) are piecewise linear: their gradient of the
 * gradient is zero alone and the chain rule through them when composed. Inputs have
 * no ties and no two squares near each other. */
TEST(gradgradcheck_max_min) {
    tg_manual_seed(22);
    tg_axes axs[] = { TG_ALL, TG_AXES(1), TG_AXES(0, 2) };
    for (int k = R_MAX; k <= R_MIN; k++)
        for (int a = 0; a < 3; a++)
            for (int keep = 0; keep < 2; keep++) {
                red_ctx c = { k, axs[a], keep, a == 1 };
                WHAT("gradgrad %s axes case %d keepdim %d", k_red_names[k], a, keep);
                GRADGRADCHECK(f_reduce, &c, a == 1 ? distinct(TG_SHAPE(3, 2, 2), 0) : distinct(TG_SHAPE(2, 3, 2), 0));
                WHAT("gradgrad %s of squares, axes case %d keepdim %d", k_red_names[k], a, keep);
                GRADGRADCHECK(g_max_sq, &c, distinct(TG_SHAPE(2, 3, 2), 0.18)); /* shift 0.18: no |x| repeats */
            }
    bin_box mx = { tg_maximum }, mn = { tg_minimum };
    for (int k = 0; k < 2; k++) {
        bin_box *box = k ? &mn : &mx;
        WHAT("gradgrad %s broadcast", k ? "minimum" : "maximum");
        GRADGRADCHECK(f_binary, box, distinct(TG_SHAPE(2, 3), 0), distinct(TG_SHAPE(3), 0.18));
        WHAT("gradgrad square(%s) broadcast", k ? "minimum" : "maximum");
        GRADGRADCHECK(g_extremum_sq, box, distinct(TG_SHAPE(2, 3), 0), distinct(TG_SHAPE(2, 1), 0.18));
    }
}

/* ================================================================== the checker itself */

static tg_tensor *f_relu(tg_tensor *const *in, void *ctx) { return tg_relu(in[0]); }
static tg_tensor *f_mul_relu(tg_tensor *const *in, void *ctx) { return tg_mul(in[0], tg_relu(in[1])); }

TEST(gradcheck_rejects_f32_inputs) {
    tg_manual_seed(14);
    tg_tensor *x32 = tg_rand(TG_F32, TG_SHAPE(3), dev());
    tg_tensor *x64 = tg_rand(TG_F64, TG_SHAPE(3), dev());
    tg_gradcheck_report rep;
    tg_tensor *one[1] = { x32 };
    WHAT("f32 input");
    CHECK(tg_gradcheck(f_relu, NULL, 1, one, NULL, &rep) != TG_OK);
    CHECK_ERROR(tg_gradcheck(f_relu, NULL, 1, one, NULL, &rep), "tg_gradcheck: input 0 is f32; gradients are checked in f64 (cast it with tg_cast)");
    CHECK_ERROR(tg_gradgradcheck(f_relu, NULL, 1, one, NULL, &rep), "tg_gradgradcheck: input 0 is f32; gradients are checked in f64 (cast it with tg_cast)");
    tg_tensor *two[2] = { x64, x32 };
    CHECK(tg_gradcheck(f_mul_relu, NULL, 2, two, NULL, &rep) != TG_OK);
    CHECK_ERROR(tg_gradcheck(f_mul_relu, NULL, 2, two, NULL, &rep), "tg_gradcheck: input 1 is f32; gradients are checked in f64 (cast it with tg_cast)");
}

TEST(gradcheck_report_names_input_and_element) {
    /* relu at exactly 0: the analytic gradient is 0, central differences give half the
     * output weight, so the check must fail at that element and say where. */
    double xs[4] = { 1.0, -2.0, 0.5, 0.0 };
    tg_tensor *x = tg_from_f64(xs, TG_SHAPE(2, 2), dev());
    tg_gradcheck_report rep;
    memset(&rep, 0x5a, sizeof rep);
    tg_tensor *in[1] = { x };
    WHAT("relu at 0");
    CHECK(tg_gradcheck(f_relu, NULL, 1, in, NULL, &rep) == TG_ERR_INVALID);
    CHECK(rep.input == 0);
    CHECK(rep.element == 3);
    CHECK(rep.analytic == 0);
    CHECK(rep.numeric >= 0.25 && rep.numeric <= 0.75); /* half of a weight in [0.5, 1.5) */
    CHECK(rep.max_abs_error >= 0.25);
    CHECK(strstr(rep.message, "input 0") != NULL);
    CHECK(strstr(rep.message, "[1,1]") != NULL);
    if (!strstr(rep.message, "input 0")) fprintf(stderr, "  message was: %s\n", rep.message);
    CHECK(strstr(tg_last_error(), "input 0") != NULL);

    /* the second input fails: the report names input 1 */
    double ys[2] = { 0.0, 1.5 }, ws[2] = { 0.7, -1.2 };
    tg_tensor *two[2] = { tg_from_f64(ws, TG_SHAPE(2), dev()), tg_from_f64(ys, TG_SHAPE(2), dev()) };
    CHECK(tg_gradcheck(f_mul_relu, NULL, 2, two, NULL, &rep) == TG_ERR_INVALID);
    CHECK(rep.input == 1);
    CHECK(rep.element == 0);
    CHECK(strstr(rep.message, "input 1") != NULL);
    CHECK(strstr(rep.message, "[0]") != NULL);

    /* the same inputs away from the kink pass, and the report says no input failed */
    double ok[4] = { 1.0, -2.0, 0.5, 0.25 };
    tg_tensor *in_ok[1] = { tg_from_f64(ok, TG_SHAPE(2, 2), dev()) };
    CHECK(tg_gradcheck(f_relu, NULL, 1, in_ok, NULL, &rep) == TG_OK);
    CHECK(rep.input == -1);
    CHECK(rep.max_abs_error < 1e-6);
}

/* x * detach(x): backward sees d/dx = x, central differences 2x. The checker must
 * catch a gradient that is wrong, at first and at second order. */
static tg_tensor *f_hidden_dep(tg_tensor *const *in, void *ctx) { return tg_mul(in[0], tg_detach(in[0])); }
static tg_tensor *f_hidden_dep2(tg_tensor *const *in, void *ctx) {
    return tg_mul(tg_square(in[0]), tg_detach(in[0]));
}

TEST(gradcheck_catches_a_wrong_gradient) {
    tg_manual_seed(18);
    tg_tensor *in[1] = { away0(TG_SHAPE(2, 3), 0.5, 2) };
    tg_gradcheck_report rep;
    WHAT("x * detach(x)");
    CHECK(tg_gradcheck(f_hidden_dep, NULL, 1, in, NULL, &rep) == TG_ERR_INVALID);
    CHECK(rep.input == 0 && rep.element == 0);
    double x0 = tg_item(tg_reshape(tg_slice(tg_flatten(in[0], 0), 0, 0, 1, 1), TG_SCALAR_SHAPE));
    CHECK(fabs(rep.numeric - 2 * rep.analytic) <= 1e-6 * (1 + fabs(rep.numeric))); /* 2x w vs x w */
    CHECK(fabs(rep.analytic) >= 0.5 * 0.5 * fabs(x0) - 1e-12);
    CHECK(strstr(rep.message, "input 0, element [0,0]") != NULL);
    WHAT("x^2 * detach(x), second order");
    CHECK(tg_gradcheck(f_hidden_dep2, NULL, 1, in, NULL, &rep) == TG_ERR_INVALID);
    CHECK(tg_gradgradcheck(f_hidden_dep2, NULL, 1, in, NULL, &rep) == TG_ERR_INVALID);
    CHECK(rep.input == 0);
}

TG_TEST_MAIN(&tg_case_gradcheck_unary, &tg_case_gradcheck_sign_zero_gradient, &tg_case_gradcheck_sign_inside_a_product,
             &tg_case_gradcheck_binary_broadcast_noncontiguous, &tg_case_gradcheck_stride0_inputs,
             &tg_case_gradcheck_where,
             &tg_case_gradcheck_reductions, &tg_case_gradcheck_norm, &tg_case_gradcheck_logsumexp_large_logits,
             &tg_case_gradcheck_softmax_log_softmax, &tg_case_gradcheck_cross_entropy, &tg_case_gradcheck_matmul_shapes,
             &tg_case_gradcheck_movement, &tg_case_gradcheck_indexing, &tg_case_gradcheck_compositions,
             &tg_case_gradgradcheck_ops, &tg_case_gradgradcheck_linear_ops,
             &tg_case_maximum_minimum_gradients_at_and_away_from_ties, &tg_case_max_min_reduction_gradients_share_ties,
             &tg_case_gradcheck_cast_through_f32, &tg_case_gradgradcheck_max_min, &tg_case_gradcheck_rejects_f32_inputs,
             &tg_case_gradcheck_report_names_input_and_element, &tg_case_gradcheck_catches_a_wrong_gradient)
