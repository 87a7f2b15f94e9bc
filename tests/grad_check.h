/* Shared by the gradient-check programs (test_gradcheck_elementwise.c,
 * test_gradcheck_structural.c, test_gradcheck_second_order.c): the checker macros, the
 * inputs on which each op is smooth, the op wrappers checked at first and at second
 * order, and CHECK_VALUES for gradients against closed forms. */
#ifndef TG_TEST_GRAD_CHECK_H
#define TG_TEST_GRAD_CHECK_H

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

static inline tg_device *dev(void) { return tg_test_device(); }

/* Uniform f64 in [lo, hi). */
static inline tg_tensor *uni(tg_shape s, double lo, double hi) {
    return tg_add_scalar(tg_mul_scalar(tg_rand(TG_F64, s, dev()), hi - lo), lo);
}

/* |x| uniform in [lo, hi) with a random sign: away from zero. */
static inline tg_tensor *away0(tg_shape s, double lo, double hi) {
    tg_tensor *sign = tg_add_scalar(tg_mul_scalar(tg_bernoulli(TG_F64, s, 0.5, dev()), 2), -1);
    return tg_mul(uni(s, lo, hi), sign);
}

static inline int64_t numel_of(tg_shape s) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    return n;
}

/* Distinct values 0.37 apart in a scrambled order, plus shift: no two are near a tie,
 * and with shift 0.18 none is near a value made with shift 0. */
static inline tg_tensor *distinct(tg_shape s, double shift) {
    int64_t n = numel_of(s), mul = 7;
    while (n > 1 && (n % mul == 0)) mul += 2; /* coprime with n: a permutation */
    double v[64];
    for (int64_t i = 0; i < n; i++) v[i] = 0.37 * (double)((i * mul + 3) % n) - 2 + shift;
    return tg_from_f64(v, s, dev());
}

static inline tg_tensor *i32(const int32_t *v, tg_shape s) { return tg_from_i32(v, s, dev()); }

/* A transposed view (non-contiguous) of a fresh (c, r) tensor: shape (r, c). */
static inline tg_tensor *transposed(tg_tensor *t) { return tg_transpose(tg_contiguous(tg_transpose(t, 0, 1)), 0, 1); }

/* ------------------------------------------------------------------ unary */

typedef struct {
    tg_tensor *(*fn)(tg_tensor *);
} un_box;

static inline tg_tensor *f_unary(tg_tensor *const *in, void *ctx) { return ((const un_box *)ctx)->fn(in[0]); }

static inline tg_tensor *u_leaky(tg_tensor *x) { return tg_leaky_relu(x, 0.1); }
static inline tg_tensor *u_pow3(tg_tensor *x) { return tg_pow_scalar(x, 3.0); }
static inline tg_tensor *u_pow_m15(tg_tensor *x) { return tg_pow_scalar(x, -1.5); }
static inline tg_tensor *u_pow_25(tg_tensor *x) { return tg_pow_scalar(x, 2.5); }

enum { D_ANY, D_POS, D_AWAY0, D_CLAMP };

/* Values on both sides of every clamp bound checked (+-0.5, +-0.3), none within 0.05 of one. */
static inline tg_tensor *clamp_values(tg_shape s) {
    static const double pool[] = { -1.3, -0.7, -0.45, -0.2, 0.1, 0.4, 0.9, 1.6, -0.9, 0.2, -0.1, 0.6 };
    double v[64];
    for (int64_t i = 0; i < numel_of(s); i++) v[i] = pool[i % 12];
    return tg_from_f64(v, s, dev());
}

static inline tg_tensor *domain_input(int domain, tg_shape s) {
    switch (domain) {
    case D_POS: return uni(s, 0.5, 3);
    case D_AWAY0: return away0(s, 0.2, 2);
    case D_CLAMP: return clamp_values(s);
    default: return uni(s, -2, 2);
    }
}

/* ------------------------------------------------------------------ binary */

typedef struct {
    tg_tensor *(*fn)(tg_tensor *, tg_tensor *);
} bin_box;

static inline tg_tensor *f_binary(tg_tensor *const *in, void *ctx) { return ((const bin_box *)ctx)->fn(in[0], in[1]); }
/* The same tensor as both operands. */
static inline tg_tensor *f_binary_self(tg_tensor *const *in, void *ctx) { return ((const bin_box *)ctx)->fn(in[0], in[0]); }

/* ------------------------------------------------------------------ reductions */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_VAR0, R_VAR1, R_STD0, R_STD1, R_LSE, R_COUNT };
static const char *const k_red_names[R_COUNT] = { "sum", "mean", "max", "min", "var(c=0)",
                                                  "var(c=1)", "std(c=0)", "std(c=1)", "logsumexp" };

typedef struct {
    int kind;
    tg_axes axes;
    bool keepdim;
    bool permute_first; /* reduce a permuted (non-contiguous) view of the input */
} red_ctx;

static inline tg_tensor *f_reduce(tg_tensor *const *in, void *vctx) {
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

/* ------------------------------------------------------------------ softmax, log_softmax */

typedef struct {
    int axis;
    bool log_;
    bool transpose_first;
} sm_ctx;

static inline tg_tensor *f_softmax(tg_tensor *const *in, void *vctx) {
    const sm_ctx *c = vctx;
    tg_tensor *x = c->transpose_first ? tg_transpose(in[0], 0, 1) : in[0];
    return c->log_ ? tg_log_softmax(x, c->axis) : tg_softmax(x, c->axis);
}

/* ------------------------------------------------------------------ cross-entropy */

typedef struct {
    tg_tensor *labels;
    tg_cross_entropy_opts opts;
    bool use_opts;
    bool transpose_first;
} ce_ctx;

static inline tg_tensor *f_ce(tg_tensor *const *in, void *vctx) {
    const ce_ctx *c = vctx;
    tg_tensor *x = c->transpose_first ? tg_transpose(in[0], 0, 1) : in[0];
    return c->use_opts ? tg_cross_entropy_ex(x, c->labels, &c->opts) : tg_cross_entropy(x, c->labels);
}

/* ------------------------------------------------------------------ matmul */

static inline tg_tensor *f_matmul(tg_tensor *const *in, void *ctx) { return tg_matmul(in[0], in[1]); }

/* ------------------------------------------------------------------ compositions */

static inline tg_tensor *f_mlp_ce(tg_tensor *const *in, void *ctx) {
    /* x (4,3), w1 (3,5), b1 (5), w2 (5,3); labels (4) */
    tg_tensor *h = tg_tanh(tg_add(tg_matmul(in[0], in[1]), in[2]));
    return tg_cross_entropy(tg_matmul(h, in[3]), (tg_tensor *)ctx);
}

static inline tg_tensor *f_mlp_mse(tg_tensor *const *in, void *ctx) {
    /* x (3,2), w1 (2,4), b1 (4), w2 (4,1): mean((tanh(x w1 + b1) w2)^2) */
    tg_tensor *h = tg_tanh(tg_add(tg_matmul(in[0], in[1]), in[2]));
    return tg_mean(tg_square(tg_matmul(h, in[3])), TG_ALL, false);
}

/* t has n values, each within tol of want; else prints the first that is not, with the
 * caller's file and line. */
static inline int check_values(tg_tensor *t, const double *want, int64_t n, double tol, const char *what,
                               const char *file, int line) {
    double *v = t ? tg_test_values(t) : NULL;
    int bad = !v || tg_numel(t) != n;
    for (int64_t i = 0; !bad && i < n; i++)
        if (!(fabs(v[i] - want[i]) <= tol)) {
            fprintf(stderr, "  %s:%d: [%s] %s element %lld: got %.17g, expected %.17g\n", file, line, g_what, what,
                    (long long)i, v[i], want[i]);
            bad = 1;
        }
    if (!v) fprintf(stderr, "  %s:%d: [%s] %s: no values (%s)\n", file, line, g_what, what, tg_last_error());
    free(v);
    return bad;
}
#define CHECK_VALUES(t, want, n, tol, what) (*tg_failed_ += check_values((t), (want), (n), (tol), (what), __FILE__, __LINE__))

#endif
