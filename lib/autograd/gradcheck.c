/* Gradient checking as a feature: analytic gradients from backward against central
 * differences, in f64. The scalar objective is sum(fn(x) * r) with r a fixed
 * pseudo-random tensor, so every output element's gradient is exercised with a
 * different weight. Second order checks the gradient of <grad, v> the same way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/autograd/node.h"
#include "lib/graph/error.h"

typedef struct {
    tg_fn fn;
    void *ctx;
    int n;
} objective_ctx;

/* Fixed weights in [0.5, 1.5): deterministic, no draw from the user's generator. */
static double weight(int64_t j, uint32_t salt) {
    uint32_t h = (uint32_t)j * 2654435761u ^ salt;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    return 0.5 + (double)(h & 0xffffff) / 16777216.0;
}

static tg_tensor *weights_like(const tg_tensor *y, uint32_t salt) {
    int64_t n = tg_numel(y);
    double *w = malloc((size_t)(n ? n : 1) * sizeof *w);
    if (!w) return tg_error_null(TG_ERR_NOMEM, "tg_gradcheck: out of host memory");
    for (int64_t j = 0; j < n; j++) w[j] = weight(j, salt);
    tg_tensor *r = tg_from_f64(w, tg_shape_of(y), tg_device_of(y));
    free(w);
    return r;
}

static tg_tensor *objective(tg_tensor *const *in, void *vctx) {
    objective_ctx *c = vctx;
    tg_api_saved sv = tg_api_suspend(); /* the user's ops name themselves */
    tg_tensor *y = c->fn(in, c->ctx);
    tg_api_resume(sv);
    if (!y) return NULL;
    if (tg_dtype_of(y) != TG_F64)
        return tg_error_null(TG_ERR_DTYPE, "tg_gradcheck: the function returned %s; it must return f64 for f64 inputs",
                             tg_dtype_name(tg_dtype_of(y)));
    return tg_sum(tg_mul(y, weights_like(y, 0x9e37)), TG_ALL, false);
}

/* Gradients of L, or zeros when L does not depend on the inputs through the tape (sign,
 * or the gradient of a linear function): their derivative is zero, not an error. */
static tg_status grads_or_zeros(tg_tensor *L, int n, tg_tensor *const *xs, tg_tensor **gs, bool create_graph) {
    if (tg_requires_grad(L)) {
        tg_backward_opts o = { .create_graph = create_graph };
        return tg_autograd_grad(1, &L, NULL, n, xs, gs, &o);
    }
    for (int i = 0; i < n; i++)
        if (!(gs[i] = tg_zeros_like(xs[i]))) return tg_last_status();
    return TG_OK;
}

/* <grad objective(in), v>: differentiable again because the gradient is taken with
 * create_graph. Inputs that do not require grad (numeric evaluations) get leaf aliases. */
static tg_tensor *grad_objective(tg_tensor *const *in, void *vctx) {
    objective_ctx *c = vctx;
    tg_tensor *xs[16], *gs[16];
    for (int i = 0; i < c->n; i++) {
        xs[i] = in[i];
        if (!tg_requires_grad(in[i])) tg_param(xs[i] = tg_detach(in[i]));
    }
    tg_tensor *L = objective(xs, c);
    if (!L || grads_or_zeros(L, c->n, xs, gs, true) != TG_OK) return NULL;
    tg_tensor *h = NULL;
    for (int i = 0; i < c->n; i++) {
        tg_tensor *term = tg_sum(tg_mul(gs[i], weights_like(gs[i], 0x85eb + (uint32_t)i)), TG_ALL, false);
        h = h ? tg_add(h, term) : term;
    }
    return h;
}

static double eval_scalar(tg_fn f, void *ctx, tg_tensor *const *in, bool grad_mode) {
    bool prev = tg_set_grad_enabled(grad_mode);
    tg_scope_begin();
    double v = tg_item(f(in, ctx));
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return v;
}

static void flat_to_index(char *buf, size_t n, const tg_tensor *t, int64_t flat) {
    int64_t idx[TG_MAX_DIMS];
    int nd = tg_ndim(t);
    for (int d = nd - 1; d >= 0; d--) {
        int64_t s = tg_size(t, d);
        idx[d] = flat % s;
        flat /= s;
    }
    size_t pos = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < nd && pos < n; d++) pos += (size_t)snprintf(buf + pos, n - pos, d ? ",%lld" : "%lld", (long long)idx[d]);
    if (pos < n) snprintf(buf + pos, n - pos, "]");
}

/* Numeric gradient of input i at every element, compared as it goes. */
static tg_status compare_input(tg_fn f, void *ctx, int n, tg_tensor **xs, int i, const double *analytic,
                               const tg_gradcheck_opts *o, bool grad_mode, tg_gradcheck_report *rep) {
    int64_t numel = tg_numel(xs[i]);
    double *vals = malloc((size_t)(numel ? numel : 1) * sizeof *vals);
    if (!vals) return tg_error(TG_ERR_NOMEM, "tg_gradcheck: out of host memory");
    tg_status st = tg_copy_to_host(xs[i], vals, (size_t)numel * sizeof *vals);
    tg_tensor *orig = xs[i];
    for (int64_t j = 0; j < numel && st == TG_OK; j++) {
        double v = vals[j], L[2];
        for (int s = 0; s < 2; s++) {
            vals[j] = v + (s ? -o->eps : o->eps);
            tg_scope_begin();
            xs[i] = tg_from_f64(vals, tg_shape_of(orig), tg_device_of(orig));
            L[s] = xs[i] ? eval_scalar(f, ctx, xs, grad_mode) : NAN;
            tg_scope_end();
        }
        xs[i] = orig;
        vals[j] = v;
        double num = (L[0] - L[1]) / (2 * o->eps), err = fabs(analytic[j] - num);
        if (isnan(L[0]) || isnan(L[1])) {
            st = tg_error(TG_ERR_INVALID, "tg_gradcheck: the function failed while perturbing input %d: %s", i,
                          tg_last_error());
            snprintf(rep->message, sizeof rep->message, "%s", tg_last_error());
            break;
        }
        if (err > rep->max_abs_error) rep->max_abs_error = err;
        if (!(err <= o->atol + o->rtol * fabs(num))) {
            char idx[96];
            flat_to_index(idx, sizeof idx, orig, j);
            rep->input = i, rep->element = j, rep->analytic = analytic[j], rep->numeric = num;
            snprintf(rep->message, sizeof rep->message, "input %d, element %s: analytic %.6g vs numeric %.6g", i,
                     idx, analytic[j], num);
            st = tg_error(TG_ERR_INVALID, "tg_gradcheck: %s", rep->message);
        }
    }
    (void)n;
    free(vals);
    return st;
}

static tg_status check(const char *name, tg_fn f, void *ctx, int n, tg_tensor *const *inputs,
                       const tg_gradcheck_opts *user, tg_gradcheck_report *rep, bool grad_mode) {
    tg_gradcheck_opts o = { 1e-6, 1e-5, 1e-3 };
    if (user) {
        if (user->eps > 0) o.eps = user->eps;
        if (user->atol > 0) o.atol = user->atol;
        if (user->rtol > 0) o.rtol = user->rtol;
    }
    tg_tensor *xs[16], *gs[16];
    tg_status st = TG_OK;
    tg_scope_begin();
    for (int i = 0; i < n; i++) xs[i] = tg_param(tg_detach(inputs[i])); /* leaves with the inputs' strides */
    tg_clear_error();
    tg_tensor *L = f(xs, ctx);
    if (!L) {
        if (tg_last_status() == TG_OK)
            tg_error(TG_ERR_INVALID, "%s: the function returned NULL without an error message", name);
        st = tg_last_status();
        snprintf(rep->message, sizeof rep->message, "the function failed: %s", tg_last_error());
    } else {
        st = grads_or_zeros(L, n, xs, gs, false);
        if (st != TG_OK) snprintf(rep->message, sizeof rep->message, "backward failed: %s", tg_last_error());
    }
    for (int i = 0; i < n && st == TG_OK; i++) {
        int64_t numel = tg_numel(xs[i]);
        double *a = malloc((size_t)(numel ? numel : 1) * sizeof *a);
        if (!a) {
            st = tg_error(TG_ERR_NOMEM, "tg_gradcheck: out of host memory");
            break;
        }
        st = tg_copy_to_host(gs[i], a, (size_t)numel * sizeof *a);
        if (st == TG_OK) st = compare_input(f, ctx, n, xs, i, a, &o, grad_mode, rep);
        free(a);
    }
    tg_scope_end();
    return st;
}

/* The report's message repeats the error, so a caller that prints only the report
 * sees why the check did not run. */
static tg_status refuse(tg_gradcheck_report *rep, tg_status st) {
    snprintf(rep->message, sizeof rep->message, "%s", tg_last_error());
    return st;
}

static tg_status validate(const char *name, tg_fn fn, int n, tg_tensor *const *inputs, tg_gradcheck_report *rep) {
    memset(rep, 0, sizeof *rep);
    rep->input = -1;
    if (!fn || !inputs || n <= 0 || n > 16)
        return refuse(rep, tg_error(TG_ERR_INVALID, "%s: needs a function and 1 to 16 inputs (got %d)", name, n));
    char arg[32];
    for (int i = 0; i < n; i++) {
        snprintf(arg, sizeof arg, "input %d", i);
        if (!tg_tensor_check(name, arg, inputs[i])) return refuse(rep, tg_last_status());
        if (inputs[i]->dtype != TG_F64)
            return refuse(rep, tg_error(TG_ERR_DTYPE, "%s: input %d is %s; gradients are checked in f64 (cast it "
                                        "with tg_cast)", name, i, tg_dtype_name(inputs[i]->dtype)));
    }
    return TG_OK;
}

tg_status tg_gradcheck(tg_fn fn, void *ctx, int n, tg_tensor *const *inputs, const tg_gradcheck_opts *opts,
                       tg_gradcheck_report *report) {
    TG_API_ENTER("tg_gradcheck");
    tg_gradcheck_report local;
    tg_gradcheck_report *rep = report ? report : &local;
    tg_status st = validate("tg_gradcheck", fn, n, inputs, rep);
    if (st != TG_OK) return st;
    objective_ctx c = { fn, ctx, n };
    return check("tg_gradcheck", objective, &c, n, inputs, opts, rep, false);
}

tg_status tg_gradgradcheck(tg_fn fn, void *ctx, int n, tg_tensor *const *inputs, const tg_gradcheck_opts *opts,
                           tg_gradcheck_report *report) {
    TG_API_ENTER("tg_gradgradcheck");
    tg_gradcheck_report local;
    tg_gradcheck_report *rep = report ? report : &local;
    tg_status st = validate("tg_gradgradcheck", fn, n, inputs, rep);
    if (st != TG_OK) return st;
    objective_ctx c = { fn, ctx, n };
    return check("tg_gradgradcheck", grad_objective, &c, n, inputs, opts, rep, true);
}
