/* Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_) over any list
 * of gradients or over an optimizer's flat gradient buffers, and ensembles: the mean
 * softmax of several models, and snapshot ensembles over copies of the parameters. */
#include <math.h>
#include <stdlib.h>

#include "lib/optim/optim-impl.h"
#include "tapegrad/optim.h"

/* sum |g|^p of one gradient (p finite), or max |g| (p infinite), as a double. */
static double part(tg_tensor *g, double p) {
    if (isinf(p)) return tg_item(tg_max(tg_abs(g), TG_ALL, false));
    if (p == 0) return tg_item(tg_sum(tg_ne(g, tg_zeros_like(g)), TG_ALL, false));
    if (p == 2) {
        double n = tg_item(tg_norm(g));
        return n * n;
    }
    if (p == 1) return tg_item(tg_sum(tg_abs(g), TG_ALL, false));
    return tg_item(tg_sum(tg_pow_scalar(tg_abs(g), p), TG_ALL, false));
}

/* The total norm of n gradients, and the gradients scaled when it exceeds max_norm. */
static double clip_norm(int n, tg_tensor *const *grads, double max_norm, const tg_clip_opts *opts) {
    double p = opts && opts->norm_type.set ? opts->norm_type.value : 2;
    if (!(p >= 0)) return tg_error(TG_ERR_INVALID, "clip: norm_type must be >= 0 or inf, got %g", p), NAN;
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    double acc = 0;
    for (int i = 0; i < n; i++) {
        if (!grads[i]) continue;
        double v = part(grads[i], p);
        acc = isinf(p) ? (i == 0 ? v : fmax(acc, v)) : acc + v;
        if (isnan(v)) acc = NAN;
    }
    double total = isinf(p) || p == 0 ? acc : p == 1 ? acc : pow(acc, 1 / p);
    if (opts && opts->error_if_nonfinite && !isfinite(total)) {
        tg_scope_end();
        tg_set_grad_enabled(prev);
        return tg_error(TG_ERR_INVALID, "clip: the total norm of order %g for gradients is non-finite, so it cannot be "
                        "clipped (set error_if_nonfinite to false to scale by it anyway)", p), NAN;
    }
    double coef = max_norm / (total + 1e-6);
    if (!(coef >= 1)) /* clip_coef_clamped = clamp(clip_coef, max=1.0); scaling by 1 changes nothing */
        for (int i = 0; i < n; i++)
            if (grads[i] && tg_mul_(grads[i], tg_scalar(tg_dtype_of(grads[i]), fmin(coef, 1), tg_device_of(grads[i]))) != TG_OK)
                total = NAN;
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return total;
}

/* The gradients of params that have one; NULL entries for the others. */
static tg_tensor **grads_of(int n, tg_tensor *const *params) {
    tg_tensor **g = calloc((size_t)(n > 0 ? n : 1), sizeof *g);
    if (!g) return tg_error_null(TG_ERR_NOMEM, "clip: out of host memory");
    tg_error_saved e; /* a parameter without a gradient is skipped, not an error */
    tg_error_save(&e);
    for (int i = 0; i < n; i++)
        if (params[i] && tg_requires_grad(params[i])) g[i] = tg_grad(params[i]);
    tg_error_restore(&e);
    return g;
}

double tg_clip_grad_norm_(int n, tg_tensor *const *params, double max_norm, const tg_clip_opts *opts) {
    TG_API_ENTER("tg_clip_grad_norm_");
    if (n < 0 || (n && !params)) return tg_error(TG_ERR_INVALID, "tg_clip_grad_norm_: params is NULL"), NAN;
    tg_tensor **g = grads_of(n, params);
    if (!g) return NAN;
    double total = clip_norm(n, g, max_norm, opts);
    free(g);
    return total;
}

double tg_optim_clip_grad_norm(tg_optim *o, double max_norm, const tg_clip_opts *opts) {
    TG_API_ENTER("tg_optim_clip_grad_norm");
    if (!o) return tg_error(TG_ERR_INVALID, "tg_optim_clip_grad_norm: the optimizer is NULL"), NAN;
    tg_tensor **g = calloc((size_t)o->n_groups + 1, sizeof *g);
    if (!g) return tg_error(TG_ERR_NOMEM, "tg_optim_clip_grad_norm: out of host memory"), NAN;
    for (int i = 0; i < o->n_groups; i++) g[i] = o->groups[i].flat_grad;
    double total = clip_norm(o->n_groups, g, max_norm, opts);
    free(g);
    return total;
}

static tg_status clamp_grads(int n, tg_tensor *const *g, double v) {
    if (!(v >= 0)) return tg_error(TG_ERR_INVALID, "clip: clip_value must be >= 0, got %g", v);
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    tg_status st = TG_OK;
    for (int i = 0; i < n && st == TG_OK; i++)
        if (g[i]) st = tg_copy_(g[i], tg_clamp(g[i], -v, v));
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return st;
}

tg_status tg_clip_grad_value_(int n, tg_tensor *const *params, double clip_value) {
    TG_API_ENTER("tg_clip_grad_value_");
    if (n < 0 || (n && !params)) return tg_error(TG_ERR_INVALID, "tg_clip_grad_value_: params is NULL");
    tg_tensor **g = grads_of(n, params);
    if (!g) return tg_last_status();
    tg_status st = clamp_grads(n, g, clip_value);
    free(g);
    return st;
}

tg_status tg_optim_clip_grad_value(tg_optim *o, double clip_value) {
    TG_API_ENTER("tg_optim_clip_grad_value");
    if (!o) return tg_error(TG_ERR_INVALID, "tg_optim_clip_grad_value: the optimizer is NULL");
    tg_status st = TG_OK;
    for (int i = 0; i < o->n_groups && st == TG_OK; i++) st = clamp_grads(1, &o->groups[i].flat_grad, clip_value);
    return st;
}

/* ---------------------------------------------------------------- ensembles */

tg_tensor *tg_ensemble_softmax(int n, const tg_forward_fn *fns, void *const *ctxs, tg_tensor *x, int axis) {
    TG_API_ENTER("tg_ensemble_softmax");
    if (n <= 0 || !fns) return tg_error_null(TG_ERR_INVALID, "tg_ensemble_softmax: needs at least one model");
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *acc = NULL;
    for (int i = 0; i < n; i++) {
        if (!fns[i]) {
            acc = tg_error_null(TG_ERR_INVALID, "tg_ensemble_softmax: model %d has no forward function", i);
            break;
        }
        tg_api_saved sv = tg_api_suspend();
        tg_tensor *y = fns[i](ctxs ? ctxs[i] : NULL, x);
        tg_api_resume(sv);
        tg_tensor *s = tg_softmax(y, axis);
        acc = i == 0 ? s : tg_add(acc, s);
        if (!acc) break;
    }
    tg_tensor *out = acc ? tg_mul_scalar(acc, 1.0 / n) : NULL;
    tg_set_grad_enabled(prev);
    return out;
}

struct tg_snapshots {
    int n, count, cap;
    tg_tensor **params; /* owned references */
    tg_tensor **saved;  /* [count * n] owned copies */
};

tg_snapshots *tg_snapshots_new(int n, tg_tensor *const *params) {
    TG_API_ENTER("tg_snapshots_new");
    if (n <= 0 || !params) return tg_error_null(TG_ERR_INVALID, "tg_snapshots_new: needs at least one parameter");
    for (int i = 0; i < n; i++)
        if (!params[i]) return tg_error_null(TG_ERR_INVALID, "tg_snapshots_new: parameter %d is NULL", i);
    tg_snapshots *s = calloc(1, sizeof *s);
    if (s) s->params = calloc((size_t)n, sizeof *s->params);
    if (!s || !s->params) {
        free(s);
        return tg_error_null(TG_ERR_NOMEM, "tg_snapshots_new: out of host memory");
    }
    s->n = n;
    for (int i = 0; i < n; i++) s->params[i] = tg_retain(params[i]);
    return s;
}

tg_status tg_snapshots_take(tg_snapshots *s) {
    TG_API_ENTER("tg_snapshots_take");
    if (!s) return tg_error(TG_ERR_INVALID, "tg_snapshots_take: snapshots is NULL");
    if (s->count == s->cap) {
        int nc = s->cap ? 2 * s->cap : 4;
        tg_tensor **p = realloc(s->saved, (size_t)nc * (size_t)s->n * sizeof *p);
        if (!p) return tg_error(TG_ERR_NOMEM, "tg_snapshots_take: out of host memory");
        s->saved = p, s->cap = nc;
    }
    bool prev = tg_set_grad_enabled(false);
    tg_status st = TG_OK;
    for (int i = 0; i < s->n; i++) {
        tg_tensor *c = tg_clone(s->params[i]);
        if (!c) {
            for (int j = 0; j < i; j++) tg_release(s->saved[s->count * s->n + j]);
            st = tg_last_status();
            break;
        }
        s->saved[s->count * s->n + i] = tg_take(c);
    }
    tg_set_grad_enabled(prev);
    if (st == TG_OK) s->count++;
    return st;
}

int tg_snapshots_count(const tg_snapshots *s) { return s ? s->count : 0; }

static tg_status load_values(tg_snapshots *s, tg_tensor *const *vals) {
    tg_status st = TG_OK;
    for (int i = 0; i < s->n && st == TG_OK; i++) st = tg_copy_(s->params[i], vals[i]);
    return st;
}

tg_tensor *tg_snapshots_predict(tg_snapshots *s, tg_forward_fn fn, void *ctx, tg_tensor *x, int axis) {
    TG_API_ENTER("tg_snapshots_predict");
    if (!s || !fn) return tg_error_null(TG_ERR_INVALID, "tg_snapshots_predict: snapshots or fn is NULL");
    if (!s->count) return tg_error_null(TG_ERR_STATE, "tg_snapshots_predict: no snapshot was taken");
    bool prev = tg_set_grad_enabled(false);
    tg_tensor **now = calloc((size_t)s->n, sizeof *now), *acc = NULL;
    tg_status st = now ? TG_OK : tg_error(TG_ERR_NOMEM, "tg_snapshots_predict: out of host memory");
    for (int i = 0; i < s->n && st == TG_OK; i++)
        if (!(now[i] = tg_clone(s->params[i]))) st = tg_last_status();
    for (int k = 0; k < s->count && st == TG_OK; k++) {
        if ((st = load_values(s, s->saved + (size_t)k * (size_t)s->n)) != TG_OK) break;
        tg_api_saved sv = tg_api_suspend();
        tg_tensor *y = tg_softmax(fn(ctx, x), axis);
        tg_api_resume(sv);
        acc = k == 0 ? y : tg_add(acc, y);
        if (!acc) st = tg_last_status();
    }
    if (now && now[s->n - 1] && load_values(s, now) != TG_OK) st = tg_last_status();
    free(now);
    tg_tensor *out = st == TG_OK ? tg_mul_scalar(acc, 1.0 / s->count) : NULL;
    tg_set_grad_enabled(prev);
    return out;
}

void tg_snapshots_free(tg_snapshots *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) tg_release(s->params[i]);
    for (int i = 0; i < s->count * s->n; i++) tg_release(s->saved[i]);
    free(s->params), free(s->saved), free(s);
}
