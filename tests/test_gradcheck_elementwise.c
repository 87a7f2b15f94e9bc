/* Gradients of the elementwise ops (unary, binary with broadcasting, where, casts)
 * checked against central differences with tg_gradcheck (f64), on contiguous, transposed,
 * strided and stride-0 inputs. Inputs are drawn where each op is smooth: positive for
 * log/sqrt, away from 0 for abs/relu, away from clamp bounds, distinct values for
 * maximum/minimum so that no tie sits on a kink; the tie rule itself, which central
 * differences cannot see, is checked against closed forms. */
#include "grad_check.h"

/* ================================================================== unary */

static tg_tensor *f_unary_tr(tg_tensor *const *in, void *ctx) {
    return ((const un_box *)ctx)->fn(tg_transpose(in[0], 0, 1));
}

/* u_leaky, u_pow3, u_pow_m15 and u_pow_25 are in grad_check.h: the second order checks them too. */
static tg_tensor *u_pow2(tg_tensor *x) { return tg_pow_scalar(x, 2.0); }
static tg_tensor *u_pow_half(tg_tensor *x) { return tg_pow_scalar(x, 0.5); }
static tg_tensor *u_pow0(tg_tensor *x) { return tg_pow_scalar(x, 0.0); }
static tg_tensor *u_add(tg_tensor *x) { return tg_add_scalar(x, 2.5); }
static tg_tensor *u_mul(tg_tensor *x) { return tg_mul_scalar(x, -3.0); }
static tg_tensor *u_clamp(tg_tensor *x) { return tg_clamp(x, -0.5, 0.5); }
static tg_tensor *u_clamp_hi(tg_tensor *x) { return tg_clamp(x, -INFINITY, 0.3); }
static tg_tensor *u_clamp_lo(tg_tensor *x) { return tg_clamp(x, -0.3, INFINITY); }
static tg_tensor *u_cast(tg_tensor *x) { return tg_cast(x, TG_F64); }

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

static tg_tensor *f_binary_tr(tg_tensor *const *in, void *ctx) {
    return ((const bin_box *)ctx)->fn(tg_transpose(in[0], 0, 1), in[1]);
}

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

/* ================================================================== ties, against closed forms
 * Central differences cannot check a kink, so the tie rule is checked against what the
 * header promises: maximum/minimum give half the gradient to each side of a tie. */

/* The gradients of sum(w * op(a, b)) for a and b, by backward. */
static tg_status grads2(tg_tensor *y, tg_tensor *w, tg_tensor *a, tg_tensor *b, tg_tensor **ga, tg_tensor **gb) {
    tg_tensor *L = tg_sum(tg_mul(y, w), TG_ALL, false), *in[2] = { a, b }, *g[2] = { NULL, NULL };
    tg_status st = L ? tg_autograd_grad(1, &L, NULL, 2, in, g, NULL) : tg_last_status();
    *ga = g[0], *gb = g[1];
    return st;
}

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

TG_TEST_MAIN(&tg_case_gradcheck_unary, &tg_case_gradcheck_sign_zero_gradient,
             &tg_case_gradcheck_sign_inside_a_product, &tg_case_gradcheck_binary_broadcast_noncontiguous,
             &tg_case_gradcheck_stride0_inputs, &tg_case_gradcheck_where,
             &tg_case_maximum_minimum_gradients_at_and_away_from_ties, &tg_case_gradcheck_cast_through_f32)
