/* L-BFGS as torch/optim/lbfgs.py: the two-loop recursion over a history of (y, s)
 * pairs, an optional strong-Wolfe line search with cubic interpolation, and PyTorch's
 * stopping rules, in the same order. It works on the group's flat parameter and
 * gradient buffers; dot products come back to the host (as .item() does in PyTorch). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/optim/optim-impl.h"
#include "tapegrad/optim.h"

struct tg_lbfgs_state {
    tg_tensor *d, *prev_flat_grad; /* owned */
    double t, prev_loss, H_diag;
    bool has_t, has_prev_loss;
    int n_hist, cap;
    tg_tensor **old_dirs, **old_stps; /* owned, [n_hist] */
    double *ro, *al;
    int64_t n_iter, func_evals;
};

static void own(tg_tensor **slot, tg_tensor *t) {
    if (t) tg_take(t);
    tg_release(*slot);
    *slot = t;
}

static void hist_clear(tg_lbfgs_state *L) {
    for (int i = 0; i < L->n_hist; i++) tg_release(L->old_dirs[i]), tg_release(L->old_stps[i]);
    L->n_hist = 0;
}

void tg_lbfgs_free_state(tg_lbfgs_state *L) {
    if (!L) return;
    hist_clear(L);
    tg_release(L->d);
    tg_release(L->prev_flat_grad);
    free(L->old_dirs), free(L->old_stps), free(L->ro), free(L->al);
    free(L);
}

static double dot(tg_tensor *a, tg_tensor *b) { return tg_item(tg_sum(tg_mul(a, b), TG_ALL, false)); }
static double absmax(tg_tensor *a) { return tg_item(tg_max(tg_abs(a), TG_ALL, false)); }

typedef struct {
    tg_optim *o;
    tg_closure fn;
    void *ctx;
    tg_tensor *flat, *flat_grad;
} lb_ctx;

/* loss = float(closure()); flat_grad = self._gather_flat_grad() (a copy, in the scope). */
static tg_status evaluate(lb_ctx *c, double *loss, tg_tensor **g) {
    tg_status st = tg_optim_call_closure(c->fn, c->ctx, loss);
    if (st != TG_OK) return st;
    *g = tg_clone(c->flat_grad);
    return *g ? TG_OK : tg_last_status();
}

/* _directional_evaluate: loss and gradient at x + t d, then the parameters back to x. */
static tg_status dir_eval(lb_ctx *c, tg_tensor *x, double t, tg_tensor *d, double *f, tg_tensor **g) {
    tg_status st = tg_axpy_(c->flat, t, d);
    if (st == TG_OK) st = evaluate(c, f, g);
    tg_status st2 = tg_copy_(c->flat, x);
    return st != TG_OK ? st : st2;
}

static double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2, const double *bounds) {
    double lo, hi;
    if (bounds) lo = bounds[0], hi = bounds[1];
    else if (x1 <= x2) lo = x1, hi = x2;
    else lo = x2, hi = x1;
    double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
    double d2_square = d1 * d1 - g1 * g2;
    if (d2_square >= 0) {
        double d2 = sqrt(d2_square), min_pos;
        if (x1 <= x2) min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2));
        else min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
        return fmin(fmax(min_pos, lo), hi);
    }
    return (lo + hi) / 2.;
}

typedef struct {
    double t[2], f[2], gtd[2];
    tg_tensor *g[2];
    int n;
} bracket;

static void set_b(bracket *b, int i, double t, double f, tg_tensor *g, double gtd) {
    b->t[i] = t, b->f[i] = f, b->g[i] = g, b->gtd[i] = gtd;
}

/* _strong_wolfe with c1 1e-4, c2 0.9, max_ls 25. Tensors live in the caller's scope. */
static tg_status strong_wolfe(lb_ctx *c, tg_tensor *x, double *tp, tg_tensor *d, double f, tg_tensor *g, double gtd,
                              double tol_change, double *f_out, tg_tensor **g_out, int64_t *evals) {
    const double c1 = 1e-4, c2 = 0.9;
    const int max_ls = 25;
    double t = *tp, d_norm = absmax(d), f_new;
    tg_tensor *g_new;
    tg_status st = dir_eval(c, x, t, d, &f_new, &g_new);
    if (st != TG_OK) return st;
    int64_t ls_func_evals = 1;
    double gtd_new = dot(g_new, d);
    double t_prev = 0, f_prev = f, gtd_prev = gtd;
    tg_tensor *g_prev = g;
    bool done = false;
    int ls_iter = 0;
    bracket b = { 0 };
    while (ls_iter < max_ls) {
        if (f_new > (f + c1 * t * gtd) || (ls_iter > 1 && f_new >= f_prev)) {
            set_b(&b, 0, t_prev, f_prev, g_prev, gtd_prev), set_b(&b, 1, t, f_new, g_new, gtd_new), b.n = 2;
            break;
        }
        if (fabs(gtd_new) <= -c2 * gtd) {
            set_b(&b, 0, t, f_new, g_new, gtd_new), b.n = 1;
            done = true;
            break;
        }
        if (gtd_new >= 0) {
            set_b(&b, 0, t_prev, f_prev, g_prev, gtd_prev), set_b(&b, 1, t, f_new, g_new, gtd_new), b.n = 2;
            break;
        }
        double min_step = t + 0.01 * (t - t_prev), max_step = t * 10, tmp = t;
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, (double[]){ min_step, max_step });
        t_prev = tmp, f_prev = f_new, g_prev = g_new, gtd_prev = gtd_new;
        if ((st = dir_eval(c, x, t, d, &f_new, &g_new)) != TG_OK) return st;
        ls_func_evals++;
        gtd_new = dot(g_new, d);
        ls_iter++;
    }
    if (ls_iter == max_ls) set_b(&b, 0, 0, f, g, gtd), set_b(&b, 1, t, f_new, g_new, gtd_new), b.n = 2;
    bool insuf_progress = false;
    int low = 0, high = 1;
    if (b.n == 2 && !(b.f[0] <= b.f[1])) low = 1, high = 0;
    while (!done && ls_iter < max_ls) {
        if (fabs(b.t[1] - b.t[0]) * d_norm < tol_change) break;
        t = cubic_interpolate(b.t[0], b.f[0], b.gtd[0], b.t[1], b.f[1], b.gtd[1], NULL);
        double bmax = fmax(b.t[0], b.t[1]), bmin = fmin(b.t[0], b.t[1]), eps = 0.1 * (bmax - bmin);
        if (fmin(bmax - t, t - bmin) < eps) {
            if (insuf_progress || t >= bmax || t <= bmin) {
                t = fabs(t - bmax) < fabs(t - bmin) ? bmax - eps : bmin + eps;
                insuf_progress = false;
            } else {
                insuf_progress = true;
            }
        } else {
            insuf_progress = false;
        }
        if ((st = dir_eval(c, x, t, d, &f_new, &g_new)) != TG_OK) return st;
        ls_func_evals++;
        gtd_new = dot(g_new, d);
        ls_iter++;
        if (f_new > (f + c1 * t * gtd) || f_new >= b.f[low]) {
            set_b(&b, high, t, f_new, g_new, gtd_new);
            if (b.f[0] <= b.f[1]) low = 0, high = 1;
            else low = 1, high = 0;
        } else {
            if (fabs(gtd_new) <= -c2 * gtd) done = true;
            else if (gtd_new * (b.t[high] - b.t[low]) >= 0)
                set_b(&b, high, b.t[low], b.f[low], b.g[low], b.gtd[low]);
            set_b(&b, low, t, f_new, g_new, gtd_new);
        }
    }
    if (b.n == 1) low = 0;
    *tp = b.t[low], *f_out = b.f[low], *g_out = b.g[low], *evals = ls_func_evals;
    return TG_OK;
}

/* The two-loop recursion: the new direction d from flat_grad and the history. */
static tg_status direction(tg_lbfgs_state *L, const tg_optim_hp *h, tg_tensor *flat_grad) {
    if (L->n_iter == 1) {
        own(&L->d, tg_neg(flat_grad));
        hist_clear(L);
        L->H_diag = 1;
        return L->d ? TG_OK : tg_last_status();
    }
    tg_tensor *y = tg_sub(flat_grad, L->prev_flat_grad), *s = tg_mul_scalar(L->d, L->t);
    if (!y || !s) return tg_last_status();
    double ys = dot(y, s);
    if (ys > 1e-10) {
        if (L->n_hist == h->history_size) { /* pop the oldest */
            tg_release(L->old_dirs[0]), tg_release(L->old_stps[0]);
            memmove(L->old_dirs, L->old_dirs + 1, (size_t)(L->n_hist - 1) * sizeof *L->old_dirs);
            memmove(L->old_stps, L->old_stps + 1, (size_t)(L->n_hist - 1) * sizeof *L->old_stps);
            memmove(L->ro, L->ro + 1, (size_t)(L->n_hist - 1) * sizeof *L->ro);
            L->n_hist--;
        }
        L->old_dirs[L->n_hist] = tg_take(y), L->old_stps[L->n_hist] = tg_take(s), L->ro[L->n_hist] = 1. / ys;
        L->n_hist++;
        L->H_diag = ys / dot(y, y);
    }
    tg_tensor *q = tg_neg(flat_grad);
    for (int i = L->n_hist - 1; i >= 0 && q; i--) {
        L->al[i] = dot(L->old_stps[i], q) * L->ro[i];
        if (tg_axpy_(q, -L->al[i], L->old_dirs[i]) != TG_OK) return tg_last_status();
    }
    tg_tensor *r = tg_mul_scalar(q, L->H_diag);
    for (int i = 0; i < L->n_hist && r; i++) {
        double be_i = dot(L->old_dirs[i], r) * L->ro[i];
        if (tg_axpy_(r, L->al[i] - be_i, L->old_stps[i]) != TG_OK) return tg_last_status();
    }
    own(&L->d, r);
    return r ? TG_OK : tg_last_status();
}

static tg_status state_init(tg_optim *o, const tg_optim_hp *h) {
    if (o->lb && o->lb->cap == h->history_size) return TG_OK;
    tg_lbfgs_state *L = o->lb ? o->lb : calloc(1, sizeof *L);
    if (!L) return tg_error(TG_ERR_NOMEM, "tg_optim_step_closure: out of host memory");
    o->lb = L;
    int cap = (int)h->history_size + 1;
    hist_clear(L);
    free(L->old_dirs), free(L->old_stps), free(L->ro), free(L->al);
    L->old_dirs = calloc((size_t)cap, sizeof *L->old_dirs), L->old_stps = calloc((size_t)cap, sizeof *L->old_stps);
    L->ro = calloc((size_t)cap, sizeof *L->ro), L->al = calloc((size_t)cap, sizeof *L->al);
    L->cap = (int)h->history_size;
    if (!L->old_dirs || !L->old_stps || !L->ro || !L->al)
        return tg_error(TG_ERR_NOMEM, "tg_optim_step_closure: out of host memory");
    return TG_OK;
}

/* One outer iteration after the direction; *stop is set when a rule ends the loop. */
static tg_status iterate(lb_ctx *c, tg_lbfgs_state *L, const tg_optim_hp *h, int64_t n_iter, double *loss,
                         tg_tensor **flat_grad, int64_t *current_evals, bool *stop) {
    tg_status st = direction(L, h, *flat_grad);
    if (st != TG_OK) return st;
    own(&L->prev_flat_grad, tg_clone(*flat_grad));
    L->prev_loss = *loss, L->has_prev_loss = true;
    L->t = L->n_iter == 1 ? fmin(1., 1. / tg_item(tg_sum(tg_abs(*flat_grad), TG_ALL, false))) * h->lr : h->lr;
    L->has_t = true;
    double gtd = dot(*flat_grad, L->d);
    if (gtd > -h->tolerance_change) return *stop = true, TG_OK;
    int64_t ls_evals = 0;
    bool opt_cond = false;
    if (h->line_search == TG_LINE_SEARCH_STRONG_WOLFE) {
        tg_tensor *x_init = tg_clone(c->flat), *g_new = NULL;
        if (!x_init) return tg_last_status();
        st = strong_wolfe(c, x_init, &L->t, L->d, *loss, *flat_grad, gtd, h->tolerance_change, loss, &g_new, &ls_evals);
        if (st != TG_OK) return st;
        own(flat_grad, g_new);
        if ((st = tg_axpy_(c->flat, L->t, L->d)) != TG_OK) return st;
        opt_cond = absmax(*flat_grad) <= h->tolerance_grad;
    } else {
        if ((st = tg_axpy_(c->flat, L->t, L->d)) != TG_OK) return st;
        if (n_iter != h->max_iter) {
            tg_tensor *g = NULL;
            if ((st = evaluate(c, loss, &g)) != TG_OK) return st;
            own(flat_grad, g);
            opt_cond = absmax(*flat_grad) <= h->tolerance_grad;
            ls_evals = 1;
        }
    }
    *current_evals += ls_evals;
    L->func_evals += ls_evals;
    *stop = n_iter == h->max_iter || *current_evals >= h->max_eval || opt_cond ||
            absmax(L->d) * fabs(L->t) <= h->tolerance_change || fabs(*loss - L->prev_loss) < h->tolerance_change;
    return TG_OK;
}

tg_status tg_lbfgs_step(tg_optim *o, tg_closure fn, void *ctx, double *out_loss) {
    tg_optim_group *G = &o->groups[0];
    const tg_optim_hp *h = &G->hp;
    if (!G->flat) return tg_error(TG_ERR_INVALID, "tg_optim_step_closure: L-BFGS has no parameter that requires grad");
    tg_status st = state_init(o, h);
    if (st != TG_OK) return st;
    tg_lbfgs_state *L = o->lb;
    lb_ctx c = { o, fn, ctx, G->flat, G->flat_grad };
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    double loss;
    tg_tensor *flat_grad = NULL;
    st = evaluate(&c, &loss, &flat_grad);
    if (st == TG_OK) {
        tg_take(flat_grad);
        if (out_loss) *out_loss = loss;
        int64_t current_evals = 1;
        L->func_evals++;
        bool stop = absmax(flat_grad) <= h->tolerance_grad;
        for (int64_t n_iter = 1; !stop && n_iter <= h->max_iter && st == TG_OK; n_iter++) {
            L->n_iter++;
            tg_scope_begin(); /* each iteration's temporaries die with it */
            st = iterate(&c, L, h, n_iter, &loss, &flat_grad, &current_evals, &stop);
            tg_scope_end();
        }
        tg_release(flat_grad);
    }
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return st;
}

/* ---------------------------------------------------------------- state */

static tg_tensor *host(double v) { return tg_scalar(TG_F64, v, tg_device_get("cpu")); }

tg_status tg_lbfgs_save(const tg_optim *o, tg_optim_state *out, int *cap) {
    const tg_lbfgs_state *L = o->lb;
    if (!L) return TG_OK;
    char name[64];
    tg_status st = tg_optim_state_push(out, cap, "state.0.func_evals", host((double)L->func_evals));
    if (st == TG_OK) st = tg_optim_state_push(out, cap, "state.0.n_iter", host((double)L->n_iter));
    if (st == TG_OK && L->d) st = tg_optim_state_push(out, cap, "state.0.d", tg_clone(L->d));
    if (st == TG_OK && L->has_t) st = tg_optim_state_push(out, cap, "state.0.t", host(L->t));
    if (st == TG_OK && L->d) st = tg_optim_state_push(out, cap, "state.0.H_diag", host(L->H_diag));
    if (st == TG_OK && L->prev_flat_grad)
        st = tg_optim_state_push(out, cap, "state.0.prev_flat_grad", tg_clone(L->prev_flat_grad));
    if (st == TG_OK && L->has_prev_loss) st = tg_optim_state_push(out, cap, "state.0.prev_loss", host(L->prev_loss));
    if (st == TG_OK && L->n_hist)
        st = tg_optim_state_push(out, cap, "state.0.ro", tg_from_f64(L->ro, TG_SHAPE(L->n_hist), tg_device_get("cpu")));
    for (int i = 0; st == TG_OK && i < L->n_hist; i++) {
        snprintf(name, sizeof name, "state.0.old_dirs.%d", i);
        st = tg_optim_state_push(out, cap, name, tg_clone(L->old_dirs[i]));
        snprintf(name, sizeof name, "state.0.old_stps.%d", i);
        if (st == TG_OK) st = tg_optim_state_push(out, cap, name, tg_clone(L->old_stps[i]));
    }
    return st;
}

/* A flat tensor of the group's size, on its device. */
static tg_tensor *as_flat(const tg_optim *o, tg_tensor *t) {
    tg_tensor *f = o->groups[0].flat;
    return tg_clone(tg_to(tg_cast(t, tg_dtype_of(f)), tg_device_of(f)));
}

tg_status tg_lbfgs_load_entry(tg_optim *o, const char *key, tg_tensor *t, bool apply) {
    const char *fn = "tg_optim_state_load";
    const tg_optim_group *G = &o->groups[0];
    bool flat = !strcmp(key, "d") || !strcmp(key, "prev_flat_grad") || !strncmp(key, "old_dirs.", 9) ||
                !strncmp(key, "old_stps.", 9);
    if (flat && (tg_ndim(t) != 1 || tg_numel(t) != G->total))
        return tg_error(TG_ERR_SHAPE, "%s: 'state.0.%s' must be 1-D of %lld elements", fn, key, (long long)G->total);
    int k = -1;
    if (!strncmp(key, "old_dirs.", 9) || !strncmp(key, "old_stps.", 9)) {
        k = atoi(key + 9);
        if (k < 0 || k >= G->hp.history_size) return tg_error(TG_ERR_INVALID, "%s: unknown entry 'state.0.%s'", fn, key);
    }
    bool scalar = !strcmp(key, "func_evals") || !strcmp(key, "n_iter") || !strcmp(key, "t") || !strcmp(key, "H_diag") ||
                  !strcmp(key, "prev_loss");
    if (!flat && !scalar && strcmp(key, "ro") != 0)
        return tg_error(TG_ERR_INVALID, "%s: unknown entry 'state.0.%s' for tg_lbfgs", fn, key);
    if (!apply) return TG_OK;
    tg_status st = state_init(o, &G->hp);
    if (st != TG_OK) return st;
    tg_lbfgs_state *L = o->lb;
    if (!strcmp(key, "func_evals")) L->func_evals = (int64_t)tg_item(t);
    else if (!strcmp(key, "n_iter")) L->n_iter = (int64_t)tg_item(t);
    else if (!strcmp(key, "t")) L->t = tg_item(t), L->has_t = true;
    else if (!strcmp(key, "H_diag")) L->H_diag = tg_item(t);
    else if (!strcmp(key, "prev_loss")) L->prev_loss = tg_item(t), L->has_prev_loss = true;
    else if (!strcmp(key, "d")) own(&L->d, as_flat(o, t));
    else if (!strcmp(key, "prev_flat_grad")) own(&L->prev_flat_grad, as_flat(o, t));
    else if (!strcmp(key, "ro")) {
        int n = (int)tg_numel(t);
        if (n > L->cap) return tg_error(TG_ERR_SHAPE, "%s: 'state.0.ro' holds more than history_size values", fn);
        if ((st = tg_copy_to_host(tg_cast(t, TG_F64), L->ro, (size_t)n * sizeof(double))) != TG_OK) return st;
        if (n > L->n_hist) L->n_hist = n;
    } else {
        tg_tensor **list = key[4] == 'd' ? L->old_dirs : L->old_stps;
        tg_release(list[k]);
        list[k] = as_flat(o, t);
        if (!list[k]) return tg_last_status();
        tg_take(list[k]);
        if (k + 1 > L->n_hist) L->n_hist = k + 1;
    }
    return TG_OK;
}
