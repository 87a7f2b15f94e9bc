/* Optimizers: construction and option checks, parameter groups in flat buffers, the
 * registry that hooks and schedules find an optimizer through, zero_grad, the step
 * driver that splits a group into runs of parameters with equal state, and options by
 * PyTorch's keys. The update rules are in updates.c, L-BFGS in lbfgs.c. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/optim/optim-impl.h"
#include "tapegrad/optim.h"

/* ---------------------------------------------------------------- registry
 * A hook keeps an optimizer's serial and a parameter number in its ctx, never a
 * pointer: a parameter outlives the optimizer (hooks cannot be removed one by one), and
 * its stale hook then finds no optimizer and does nothing. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static tg_optim *reg_live;
static uint64_t reg_serial;

#define TG_HOOK_IDX_BITS 24

static tg_optim *lookup_locked(uint64_t serial) {
    for (tg_optim *o = reg_live; o; o = o->next_live)
        if (o->serial == serial) return o;
    return NULL;
}

tg_optim *tg_optim_lookup(uint64_t serial) {
    pthread_mutex_lock(&reg_lock);
    tg_optim *o = lookup_locked(serial);
    pthread_mutex_unlock(&reg_lock);
    return o;
}

bool tg_optim_is_live(const tg_optim *o) {
    bool live = false;
    pthread_mutex_lock(&reg_lock);
    for (tg_optim *p = reg_live; p && !live; p = p->next_live) live = p == o;
    pthread_mutex_unlock(&reg_lock);
    return live;
}

static tg_tensor *arrival_hook(tg_tensor *grad, void *ctx) {
    uintptr_t key = (uintptr_t)ctx;
    uint64_t serial = (uint64_t)(key >> TG_HOOK_IDX_BITS);
    int idx = (int)(key & ((1u << TG_HOOK_IDX_BITS) - 1));
    pthread_mutex_lock(&reg_lock);
    tg_optim *o = lookup_locked(serial);
    if (o && idx < o->n_params) o->arrived[idx] = 1;
    pthread_mutex_unlock(&reg_lock);
    return grad;
}

/* ---------------------------------------------------------------- options */

const char *tg_optim_state_name(tg_optim_kind k, int i) {
    static const char *const names[][TG_OPTIM_NSTATE + 1] = {
        [TG_K_SGD] = { "momentum_buffer", NULL },
        [TG_K_ADAGRAD] = { "sum", NULL },
        [TG_K_RMSPROP] = { "square_avg", "momentum_buffer", "grad_avg", NULL },
        [TG_K_ADAM] = { "exp_avg", "exp_avg_sq", "max_exp_avg_sq", NULL },
        [TG_K_ADAMW] = { "exp_avg", "exp_avg_sq", "max_exp_avg_sq", NULL },
        [TG_K_LBFGS] = { NULL },
    };
    return i >= 0 && i < TG_OPTIM_NSTATE ? names[k][i] : NULL;
}

tg_status tg_optim_check_hp(tg_optim_kind k, const tg_optim_hp *h) {
    if (!(h->lr >= 0)) return tg_error(TG_ERR_INVALID, "optim: invalid learning rate: %g", h->lr);
    if (!(h->weight_decay >= 0)) return tg_error(TG_ERR_INVALID, "optim: invalid weight_decay value: %g", h->weight_decay);
    if (!(h->eps >= 0)) return tg_error(TG_ERR_INVALID, "optim: invalid epsilon value: %g", h->eps);
    if (!(h->momentum >= 0)) return tg_error(TG_ERR_INVALID, "optim: invalid momentum value: %g", h->momentum);
    switch (k) {
    case TG_K_SGD:
        if (h->nesterov && (h->momentum <= 0 || h->dampening != 0))
            return tg_error(TG_ERR_INVALID, "optim: Nesterov momentum requires a momentum and zero dampening");
        break;
    case TG_K_ADAGRAD:
        if (!(h->lr_decay >= 0)) return tg_error(TG_ERR_INVALID, "optim: invalid lr_decay value: %g", h->lr_decay);
        if (!(h->iav >= 0))
            return tg_error(TG_ERR_INVALID, "optim: invalid initial_accumulator_value value: %g", h->iav);
        break;
    case TG_K_RMSPROP:
        if (!(h->alpha >= 0)) return tg_error(TG_ERR_INVALID, "optim: invalid alpha value: %g", h->alpha);
        break;
    case TG_K_ADAM:
    case TG_K_ADAMW:
        if (!(h->beta1 >= 0 && h->beta1 < 1))
            return tg_error(TG_ERR_INVALID, "optim: invalid beta parameter at index 0: %g", h->beta1);
        if (!(h->beta2 >= 0 && h->beta2 < 1))
            return tg_error(TG_ERR_INVALID, "optim: invalid beta parameter at index 1: %g", h->beta2);
        break;
    case TG_K_LBFGS:
        if (h->max_iter < 1) return tg_error(TG_ERR_INVALID, "optim: invalid max_iter value: %lld", (long long)h->max_iter);
        if (h->max_eval < 1) return tg_error(TG_ERR_INVALID, "optim: invalid max_eval value: %lld", (long long)h->max_eval);
        if (h->history_size < 1)
            return tg_error(TG_ERR_INVALID, "optim: invalid history_size value: %lld", (long long)h->history_size);
        break;
    }
    return TG_OK;
}

static double opt_or(tg_opt_f64 v, double dflt) { return v.set ? v.value : dflt; }

/* ---------------------------------------------------------------- groups */

static void group_clear(tg_optim_group *G) {
    for (int i = 0; i < G->n; i++) tg_release(G->params[i]);
    tg_release(G->flat);
    tg_release(G->flat_grad);
    for (int k = 0; k < TG_OPTIM_NSTATE; k++) tg_release(G->state[k]);
    free(G->params), free(G->tidx), free(G->offset), free(G->numel), free(G->step), free(G->has_buf);
    memset(G, 0, sizeof *G);
}

/* Checks the parameters of a new group against each other and the groups there are. */
static tg_status check_params(const tg_optim *o, int n, tg_tensor *const *params) {
    if (n <= 0 || !params) return tg_error(TG_ERR_INVALID, "optim: a parameter group needs at least one parameter");
    int first = -1;
    for (int i = 0; i < n; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "parameter %d", i);
        if (!params[i]) return tg_error(TG_ERR_INVALID, "optim: parameter %d is NULL", i);
        if (tg_dtype_of(params[i]) != TG_F32 && tg_dtype_of(params[i]) != TG_F64)
            return tg_error(TG_ERR_DTYPE, "optim: parameter %d is %s; parameters are f32 or f64", i,
                            tg_dtype_name(tg_dtype_of(params[i])));
        if (!tg_is_leaf(params[i])) return tg_error(TG_ERR_STATE, "optim: parameter %d is not a leaf", i);
        for (int j = 0; j < i; j++)
            if (params[j] == params[i]) return tg_error(TG_ERR_INVALID, "optim: parameter %d is parameter %d again", i, j);
        for (int g = 0; o && g < o->n_groups; g++)
            for (int j = 0; j < o->groups[g].n; j++)
                if (o->groups[g].params[j] == params[i])
                    return tg_error(TG_ERR_INVALID, "optim: parameter %d is already in parameter group %d", i, g);
        if (!tg_requires_grad(params[i])) continue;
        if (first < 0) {
            first = i;
            continue;
        }
        tg_tensor *a = params[first], *b = params[i];
        if (tg_dtype_of(a) != tg_dtype_of(b) || tg_device_of(a) != tg_device_of(b))
            return tg_error(TG_ERR_DEVICE, "optim: parameter %d is %s on %s, parameter %d %s on %s (a group holds one "
                            "dtype on one device)", i, tg_dtype_name(tg_dtype_of(b)), tg_device_name(tg_device_of(b)),
                            first, tg_dtype_name(tg_dtype_of(a)), tg_device_name(tg_device_of(a)));
    }
    return TG_OK;
}

static tg_status group_init(tg_optim *o, tg_optim_group *G, int n, tg_tensor *const *params) {
    G->n = n;
    G->first = o->n_params;
    G->params = calloc((size_t)n, sizeof *G->params);
    G->tidx = calloc((size_t)n, sizeof *G->tidx);
    G->offset = calloc((size_t)n, sizeof *G->offset);
    G->numel = calloc((size_t)n, sizeof *G->numel);
    G->step = calloc((size_t)n, sizeof *G->step);
    G->has_buf = calloc((size_t)n, 1);
    tg_tensor **train = calloc((size_t)n, sizeof *train);
    if (!G->params || !G->tidx || !G->offset || !G->numel || !G->step || !G->has_buf || !train) {
        free(train);
        return tg_error(TG_ERR_NOMEM, "optim: out of host memory");
    }
    for (int i = 0; i < n; i++) {
        if (!tg_requires_grad(params[i])) continue;
        G->offset[G->nt] = G->total;
        G->numel[G->nt] = tg_numel(params[i]);
        G->total += G->numel[G->nt];
        G->tidx[G->nt] = i;
        train[G->nt++] = params[i];
    }
    tg_status st = G->nt ? tg_params_flatten(G->nt, train, &G->flat, &G->flat_grad) : TG_OK;
    free(train);
    if (st != TG_OK) return st;
    for (int i = 0; i < n; i++) G->params[i] = tg_retain(params[i]);
    return TG_OK;
}

/* Grows the arrival flags for a new group and hooks its parameters. */
static tg_status group_register(tg_optim *o, tg_optim_group *G) {
    pthread_mutex_lock(&reg_lock);
    uint8_t *a = realloc(o->arrived, (size_t)(o->n_params + G->n) + 1);
    if (a) {
        memset(a + o->n_params, 0, (size_t)G->n + 1);
        o->arrived = a;
        o->n_params += G->n;
    }
    pthread_mutex_unlock(&reg_lock);
    if (!a) return tg_error(TG_ERR_NOMEM, "optim: out of host memory");
    if (o->n_params >= (1 << TG_HOOK_IDX_BITS)) return tg_error(TG_ERR_INVALID, "optim: too many parameters");
    for (int k = 0; k < G->nt; k++) {
        uintptr_t key = ((uintptr_t)o->serial << TG_HOOK_IDX_BITS) | (uintptr_t)(G->first + G->tidx[k]);
        tg_status st = tg_register_hook(G->params[G->tidx[k]], arrival_hook, (void *)key);
        if (st != TG_OK) return st;
    }
    return TG_OK;
}

static int add_group(tg_optim *o, int n, tg_tensor *const *params, const tg_optim_hp *hp) {
    if (check_params(o, n, params) != TG_OK || tg_optim_check_hp(o->kind, hp) != TG_OK) return -1;
    tg_optim_group *gs = realloc(o->groups, (size_t)(o->n_groups + 1) * sizeof *gs);
    if (!gs) return tg_error(TG_ERR_NOMEM, "optim: out of host memory"), -1;
    o->groups = gs;
    tg_optim_group *G = &gs[o->n_groups];
    memset(G, 0, sizeof *G);
    G->hp = *hp;
    if (group_init(o, G, n, params) != TG_OK) {
        group_clear(G);
        return -1;
    }
    o->n_groups++;
    if (group_register(o, G) != TG_OK) return -1;
    return o->n_groups - 1;
}

static tg_optim *optim_new(tg_optim_kind kind, const char *name, const tg_optim_hp *hp, int n,
                           tg_tensor *const *params) {
    tg_optim *o = calloc(1, sizeof *o);
    if (!o) return tg_error_null(TG_ERR_NOMEM, "%s_new: out of host memory", name);
    o->kind = kind, o->name = name, o->defaults = *hp;
    pthread_mutex_lock(&reg_lock);
    o->serial = ++reg_serial;
    o->next_live = reg_live;
    reg_live = o;
    pthread_mutex_unlock(&reg_lock);
    if (add_group(o, n, params, hp) < 0) {
        tg_optim_free(o);
        return NULL;
    }
    return o;
}

static tg_optim_hp hp_base(void) {
    return (tg_optim_hp){ .eps = 0, .max_iter = 1, .max_eval = 1, .history_size = 1 };
}

tg_optim *tg_sgd_new(int n, tg_tensor *const *params, const tg_sgd_opts *opts) {
    TG_API_ENTER("tg_sgd_new");
    tg_sgd_opts d = opts ? *opts : (tg_sgd_opts){ 0 };
    tg_optim_hp h = hp_base();
    h.lr = opt_or(d.lr, 1e-3), h.momentum = d.momentum, h.dampening = d.dampening, h.weight_decay = d.weight_decay;
    h.nesterov = d.nesterov, h.maximize = d.maximize;
    return optim_new(TG_K_SGD, "tg_sgd", &h, n, params);
}

tg_optim *tg_adagrad_new(int n, tg_tensor *const *params, const tg_adagrad_opts *opts) {
    TG_API_ENTER("tg_adagrad_new");
    tg_adagrad_opts d = opts ? *opts : (tg_adagrad_opts){ 0 };
    tg_optim_hp h = hp_base();
    h.lr = opt_or(d.lr, 1e-2), h.lr_decay = d.lr_decay, h.weight_decay = d.weight_decay;
    h.iav = d.initial_accumulator_value, h.eps = opt_or(d.eps, 1e-10), h.maximize = d.maximize;
    return optim_new(TG_K_ADAGRAD, "tg_adagrad", &h, n, params);
}

tg_optim *tg_rmsprop_new(int n, tg_tensor *const *params, const tg_rmsprop_opts *opts) {
    TG_API_ENTER("tg_rmsprop_new");
    tg_rmsprop_opts d = opts ? *opts : (tg_rmsprop_opts){ 0 };
    tg_optim_hp h = hp_base();
    h.lr = opt_or(d.lr, 1e-2), h.alpha = opt_or(d.alpha, 0.99), h.eps = opt_or(d.eps, 1e-8);
    h.weight_decay = d.weight_decay, h.momentum = d.momentum, h.centered = d.centered, h.maximize = d.maximize;
    return optim_new(TG_K_RMSPROP, "tg_rmsprop", &h, n, params);
}

static tg_optim_hp adam_hp(const tg_adam_opts *opts, double wd) {
    tg_adam_opts d = opts ? *opts : (tg_adam_opts){ 0 };
    tg_optim_hp h = hp_base();
    h.lr = opt_or(d.lr, 1e-3), h.beta1 = opt_or(d.betas[0], 0.9), h.beta2 = opt_or(d.betas[1], 0.999);
    h.eps = opt_or(d.eps, 1e-8), h.weight_decay = opt_or(d.weight_decay, wd);
    h.amsgrad = d.amsgrad, h.maximize = d.maximize;
    return h;
}

tg_optim *tg_adam_new(int n, tg_tensor *const *params, const tg_adam_opts *opts) {
    TG_API_ENTER("tg_adam_new");
    tg_optim_hp h = adam_hp(opts, 0);
    return optim_new(TG_K_ADAM, "tg_adam", &h, n, params);
}

tg_optim *tg_adamw_new(int n, tg_tensor *const *params, const tg_adam_opts *opts) {
    TG_API_ENTER("tg_adamw_new");
    tg_optim_hp h = adam_hp(opts, 1e-2);
    return optim_new(TG_K_ADAMW, "tg_adamw", &h, n, params);
}

tg_optim *tg_lbfgs_new(int n, tg_tensor *const *params, const tg_lbfgs_opts *opts) {
    TG_API_ENTER("tg_lbfgs_new");
    tg_lbfgs_opts d = opts ? *opts : (tg_lbfgs_opts){ 0 };
    tg_optim_hp h = hp_base();
    h.lr = opt_or(d.lr, 1);
    h.max_iter = d.max_iter ? d.max_iter : 20;
    h.max_eval = d.max_eval ? d.max_eval : h.max_iter * 5 / 4;
    h.tolerance_grad = opt_or(d.tolerance_grad, 1e-7), h.tolerance_change = opt_or(d.tolerance_change, 1e-9);
    h.history_size = d.history_size ? d.history_size : 100;
    h.line_search = (int)d.line_search;
    if (d.line_search != TG_LINE_SEARCH_NONE && d.line_search != TG_LINE_SEARCH_STRONG_WOLFE)
        return tg_error_null(TG_ERR_INVALID, "tg_lbfgs_new: unknown line search %d", (int)d.line_search);
    if (d.max_iter < 0 || d.max_eval < 0 || d.history_size < 0)
        return tg_error_null(TG_ERR_INVALID, "tg_lbfgs_new: max_iter, max_eval and history_size must not be negative");
    return optim_new(TG_K_LBFGS, "tg_lbfgs", &h, n, params);
}

void tg_optim_free(tg_optim *o) {
    if (!o) return;
    pthread_mutex_lock(&reg_lock);
    for (tg_optim **p = &reg_live; *p; p = &(*p)->next_live)
        if (*p == o) {
            *p = o->next_live;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
    for (int g = 0; g < o->n_groups; g++) group_clear(&o->groups[g]);
    for (int i = 0; i < TG_OPTIM_NSCAL; i++) tg_release(o->scal[i]);
    tg_lbfgs_free_state(o->lb);
    free(o->groups);
    free(o->arrived);
    free(o);
}

static bool check_live(const tg_optim *o, const char *fn) {
    if (!o) return tg_error(TG_ERR_INVALID, "%s: the optimizer is NULL", fn), false;
    return true;
}

int tg_optim_add_param_group(tg_optim *o, int n, tg_tensor *const *params, const tg_param_group_opts *opts) {
    TG_API_ENTER("tg_optim_add_param_group");
    if (!check_live(o, "tg_optim_add_param_group")) return -1;
    if (o->kind == TG_K_LBFGS)
        return tg_error(TG_ERR_INVALID, "tg_optim_add_param_group: L-BFGS doesn't support per-parameter options "
                        "(parameter groups)"), -1;
    tg_optim_hp h = o->defaults;
    h.has_initial_lr = false;
    if (opts) h.lr = opt_or(opts->lr, h.lr), h.weight_decay = opt_or(opts->weight_decay, h.weight_decay);
    return add_group(o, n, params, &h);
}

int tg_optim_num_groups(const tg_optim *o) { return o ? o->n_groups : 0; }

/* ---------------------------------------------------------------- step */

tg_tensor *tg_optim_scalar(tg_optim *o, const tg_tensor *like, double value) {
    for (int i = 0; i < TG_OPTIM_NSCAL; i++) {
        tg_tensor *s = o->scal[i];
        if (s && tg_dtype_of(s) == tg_dtype_of(like) && tg_device_of(s) == tg_device_of(like) &&
            o->scal_val[i] == value)
            return s;
    }
    tg_tensor *s = tg_scalar(tg_dtype_of(like), value, tg_device_of((tg_tensor *)like));
    if (!s) return NULL;
    int slot = o->scal_next++ % TG_OPTIM_NSCAL;
    tg_release(o->scal[slot]);
    o->scal[slot] = tg_take(s);
    o->scal_val[slot] = value;
    return s;
}

tg_tensor *tg_optim_state_buf(tg_optim *o, tg_optim_group *G, int k, double init) {
    if (!G->state[k]) {
        tg_tensor *t = tg_optim_c(o, tg_full(tg_dtype_of(G->flat), TG_SHAPE(G->total), init, tg_device_of(G->flat)));
        if (!t) return NULL;
        G->state[k] = tg_take(t);
    }
    return G->state[k];
}

static tg_tensor *piece(tg_tensor *flat, int64_t a, int64_t b, int64_t total) {
    if (!flat) return NULL;
    return a == 0 && b == total ? flat : tg_slice(flat, 0, a, b, 1);
}

/* Steps group G: parameters are split into runs of neighbours that share arrival, step
 * count and buffer state; usually the whole group is one run, so one set of ops. */
static tg_status step_group(tg_optim *o, tg_optim_group *G) {
    for (int k = 0; k < G->nt;) {
        int j = k + 1;
        bool act = o->arrived[G->first + G->tidx[k]];
        while (j < G->nt && o->arrived[G->first + G->tidx[j]] == act && G->step[j] == G->step[k] &&
               G->has_buf[j] == G->has_buf[k])
            j++;
        if (act) {
            int64_t a = G->offset[k], b = G->offset[j - 1] + G->numel[j - 1];
            tg_optim_run r = { piece(G->flat, a, b, G->total), piece(G->flat_grad, a, b, G->total), { NULL },
                               a, b - a, G->step[k] + 1, G->has_buf[k] };
            tg_status st = tg_optim_update(o, G, &r);
            if (st != TG_OK) return st;
            for (int i = k; i < j; i++) {
                G->step[i]++;
                if (o->kind != TG_K_SGD || G->hp.momentum != 0) G->has_buf[i] = 1;
            }
        }
        k = j;
    }
    return TG_OK;
}

static tg_status step_all(tg_optim *o) {
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    o->n_ops = 0;
    tg_status st = TG_OK;
    for (int g = 0; g < o->n_groups && st == TG_OK; g++) st = step_group(o, &o->groups[g]);
    tg_scope_end();
    tg_set_grad_enabled(prev);
    o->last_ops = o->n_ops;
    return st;
}

tg_status tg_optim_step(tg_optim *o) {
    TG_API_ENTER("tg_optim_step");
    if (!check_live(o, "tg_optim_step")) return tg_last_status();
    if (o->kind == TG_K_LBFGS)
        return tg_error(TG_ERR_INVALID, "tg_optim_step: L-BFGS re-evaluates the loss: use tg_optim_step_closure");
    return step_all(o);
}

tg_status tg_optim_call_closure(tg_closure fn, void *ctx, double *loss) {
    bool prev = tg_set_grad_enabled(true);
    tg_scope_begin();
    tg_api_saved sv = tg_api_suspend();
    *loss = NAN;
    tg_status st = fn(ctx, loss);
    tg_api_resume(sv);
    tg_scope_end();
    tg_set_grad_enabled(prev);
    if (st != TG_OK && !*tg_last_error()) tg_error(st, "optim: the closure failed (%s)", tg_status_str(st));
    return st;
}

tg_status tg_optim_step_closure(tg_optim *o, tg_closure fn, void *ctx, double *loss) {
    TG_API_ENTER("tg_optim_step_closure");
    if (!check_live(o, "tg_optim_step_closure")) return tg_last_status();
    if (!fn) return tg_error(TG_ERR_INVALID, "tg_optim_step_closure: the closure is NULL");
    if (o->kind == TG_K_LBFGS) return tg_lbfgs_step(o, fn, ctx, loss);
    double l;
    tg_status st = tg_optim_call_closure(fn, ctx, &l);
    if (st != TG_OK) return st;
    if (loss) *loss = l;
    return step_all(o);
}

void tg_optim_zero_grad(tg_optim *o) {
    if (!o) return;
    for (int g = 0; g < o->n_groups; g++)
        if (o->groups[g].flat_grad) tg_fill_(o->groups[g].flat_grad, 0);
    pthread_mutex_lock(&reg_lock);
    memset(o->arrived, 0, (size_t)o->n_params);
    pthread_mutex_unlock(&reg_lock);
}

int64_t tg_optim_last_step_ops(const tg_optim *o) { return o ? o->last_ops : -1; }

/* ---------------------------------------------------------------- options by key */

typedef struct {
    const char *key;
    size_t off;
    char type;      /* 'd' double, 'b' bool, 'i' int64 */
    unsigned kinds; /* bit per tg_optim_kind */
} hp_key;
#define KB(k) (1u << (k))
#define ALLK (KB(TG_K_SGD) | KB(TG_K_ADAGRAD) | KB(TG_K_RMSPROP) | KB(TG_K_ADAM) | KB(TG_K_ADAMW))
#define ADAMS (KB(TG_K_ADAM) | KB(TG_K_ADAMW))
static const hp_key hp_keys[] = {
    { "lr", offsetof(tg_optim_hp, lr), 'd', ALLK | KB(TG_K_LBFGS) },
    { "momentum", offsetof(tg_optim_hp, momentum), 'd', KB(TG_K_SGD) | KB(TG_K_RMSPROP) },
    { "dampening", offsetof(tg_optim_hp, dampening), 'd', KB(TG_K_SGD) },
    { "alpha", offsetof(tg_optim_hp, alpha), 'd', KB(TG_K_RMSPROP) },
    { "betas.0", offsetof(tg_optim_hp, beta1), 'd', ADAMS },
    { "betas.1", offsetof(tg_optim_hp, beta2), 'd', ADAMS },
    { "eps", offsetof(tg_optim_hp, eps), 'd', KB(TG_K_ADAGRAD) | KB(TG_K_RMSPROP) | ADAMS },
    { "lr_decay", offsetof(tg_optim_hp, lr_decay), 'd', KB(TG_K_ADAGRAD) },
    { "initial_accumulator_value", offsetof(tg_optim_hp, iav), 'd', KB(TG_K_ADAGRAD) },
    { "weight_decay", offsetof(tg_optim_hp, weight_decay), 'd', ALLK },
    { "nesterov", offsetof(tg_optim_hp, nesterov), 'b', KB(TG_K_SGD) },
    { "centered", offsetof(tg_optim_hp, centered), 'b', KB(TG_K_RMSPROP) },
    { "amsgrad", offsetof(tg_optim_hp, amsgrad), 'b', ADAMS },
    { "maximize", offsetof(tg_optim_hp, maximize), 'b', ALLK },
    { "max_iter", offsetof(tg_optim_hp, max_iter), 'i', KB(TG_K_LBFGS) },
    { "max_eval", offsetof(tg_optim_hp, max_eval), 'i', KB(TG_K_LBFGS) },
    { "tolerance_grad", offsetof(tg_optim_hp, tolerance_grad), 'd', KB(TG_K_LBFGS) },
    { "tolerance_change", offsetof(tg_optim_hp, tolerance_change), 'd', KB(TG_K_LBFGS) },
    { "history_size", offsetof(tg_optim_hp, history_size), 'i', KB(TG_K_LBFGS) },
    { "initial_lr", offsetof(tg_optim_hp, initial_lr), 'd', ALLK | KB(TG_K_LBFGS) },
};

static const hp_key *find_key(tg_optim_kind k, const char *key) {
    for (size_t i = 0; key && i < sizeof hp_keys / sizeof hp_keys[0]; i++)
        if ((hp_keys[i].kinds & KB(k)) && strcmp(hp_keys[i].key, key) == 0) return &hp_keys[i];
    return NULL;
}

static double key_get(const tg_optim_hp *h, const hp_key *k) {
    const char *p = (const char *)h + k->off;
    if (k->type == 'b') return *(const bool *)p;
    if (k->type == 'i') return (double)*(const int64_t *)p;
    return *(const double *)p;
}

static void key_set(tg_optim_hp *h, const hp_key *k, double v) {
    char *p = (char *)h + k->off;
    if (k->type == 'b') *(bool *)p = v != 0;
    else if (k->type == 'i') *(int64_t *)p = (int64_t)v;
    else *(double *)p = v;
    if (strcmp(k->key, "initial_lr") == 0) h->has_initial_lr = true;
}

static tg_optim_group *group_of(const tg_optim *o, int g, const char *fn) {
    if (!check_live(o, fn)) return NULL;
    if (g < 0 || g >= o->n_groups)
        return tg_error_null(TG_ERR_INVALID, "%s: no parameter group %d (the optimizer has %d)", fn, g, o->n_groups);
    return &o->groups[g];
}

tg_status tg_optim_get_option(const tg_optim *o, int g, const char *key, double *value) {
    TG_API_ENTER("tg_optim_get_option");
    tg_optim_group *G = group_of(o, g, "tg_optim_get_option");
    if (!G) return tg_last_status();
    const hp_key *k = find_key(o->kind, key);
    if (!k || (strcmp(key, "initial_lr") == 0 && !G->hp.has_initial_lr))
        return tg_error(TG_ERR_INVALID, "tg_optim_get_option: %s has no option '%s'", o->name, key ? key : "(null)");
    if (value) *value = key_get(&G->hp, k);
    return TG_OK;
}

tg_status tg_optim_set_option(tg_optim *o, int g, const char *key, double value) {
    TG_API_ENTER("tg_optim_set_option");
    tg_optim_group *G = group_of(o, g, "tg_optim_set_option");
    if (!G) return tg_last_status();
    const hp_key *k = find_key(o->kind, key);
    if (!k) return tg_error(TG_ERR_INVALID, "tg_optim_set_option: %s has no option '%s'", o->name, key ? key : "(null)");
    tg_optim_hp h = G->hp;
    key_set(&h, k, value);
    tg_status st = tg_optim_check_hp(o->kind, &h);
    if (st == TG_OK) G->hp = h;
    return st;
}

double tg_optim_get_lr(const tg_optim *o, int g) {
    TG_API_ENTER("tg_optim_get_lr");
    tg_optim_group *G = group_of(o, g, "tg_optim_get_lr");
    return G ? G->hp.lr : NAN;
}

tg_status tg_optim_set_lr(tg_optim *o, int g, double lr) {
    TG_API_ENTER("tg_optim_set_lr");
    tg_optim_group *G = group_of(o, g, "tg_optim_set_lr");
    if (!G) return tg_last_status();
    if (!(lr >= 0)) return tg_error(TG_ERR_INVALID, "tg_optim_set_lr: invalid learning rate: %g", lr);
    G->hp.lr = lr;
    return TG_OK;
}

/* ---------------------------------------------------------------- state save / load */

tg_status tg_optim_state_push(tg_optim_state *out, int *cap, const char *name, tg_tensor *t) {
    if (!t) return tg_last_status() ? tg_last_status() : tg_error(TG_ERR_NOMEM, "optim: out of memory");
    if (out->n == *cap) {
        int nc = *cap ? 2 * *cap : 32;
        tg_named_tensor *it = realloc(out->items, (size_t)nc * sizeof *it);
        if (!it) return tg_error(TG_ERR_NOMEM, "optim: out of host memory");
        out->items = it, *cap = nc;
    }
    tg_named_tensor *e = &out->items[out->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->tensor = tg_take(t);
    return TG_OK;
}

static tg_tensor *host_scalar(double v) { return tg_scalar(TG_F64, v, tg_device_get("cpu")); }

static tg_status save_group(const tg_optim *o, int g, tg_optim_state *out, int *cap) {
    const tg_optim_group *G = &o->groups[g];
    char name[64];
    tg_status st = TG_OK;
    for (size_t i = 0; st == TG_OK && i < sizeof hp_keys / sizeof hp_keys[0]; i++) {
        const hp_key *k = &hp_keys[i];
        if (!(k->kinds & KB(o->kind)) || strcmp(k->key, "betas.1") == 0) continue;
        if (strcmp(k->key, "initial_lr") == 0 && !G->hp.has_initial_lr) continue;
        snprintf(name, sizeof name, "param_groups.%d.%s", g, strcmp(k->key, "betas.0") ? k->key : "betas");
        tg_tensor *t = strcmp(k->key, "betas.0") ? host_scalar(key_get(&G->hp, k))
                                                : tg_from_f64((double[]){ G->hp.beta1, G->hp.beta2 }, TG_SHAPE(2),
                                                              tg_device_get("cpu"));
        st = tg_optim_state_push(out, cap, name, t);
    }
    int64_t *idx = malloc((size_t)G->n * sizeof *idx);
    if (!idx) return tg_error(TG_ERR_NOMEM, "tg_optim_state_save: out of host memory");
    for (int i = 0; i < G->n; i++) idx[i] = G->first + i;
    snprintf(name, sizeof name, "param_groups.%d.params", g);
    if (st == TG_OK) st = tg_optim_state_push(out, cap, name, tg_from_i64(idx, TG_SHAPE(G->n), tg_device_get("cpu")));
    free(idx);
    for (int k = 0; st == TG_OK && k < G->nt; k++) {
        if (G->step[k] == 0) continue;
        int pi = G->first + G->tidx[k];
        snprintf(name, sizeof name, "state.%d.step", pi);
        st = tg_optim_state_push(out, cap, name, host_scalar((double)G->step[k]));
        for (int s = 0; st == TG_OK && tg_optim_state_name(o->kind, s); s++) {
            if (!G->state[s] || (o->kind == TG_K_SGD && !G->has_buf[k])) continue;
            tg_tensor *p = G->params[G->tidx[k]];
            tg_tensor *v = tg_reshape(tg_slice(G->state[s], 0, G->offset[k], G->offset[k] + G->numel[k], 1),
                                      tg_shape_of(p));
            snprintf(name, sizeof name, "state.%d.%s", pi, tg_optim_state_name(o->kind, s));
            st = tg_optim_state_push(out, cap, name, tg_clone(v));
        }
    }
    return st;
}

tg_status tg_optim_state_save(const tg_optim *o, tg_optim_state *out) {
    TG_API_ENTER("tg_optim_state_save");
    if (!out) return tg_error(TG_ERR_INVALID, "tg_optim_state_save: out is NULL");
    *out = (tg_optim_state){ 0 };
    if (!check_live(o, "tg_optim_state_save")) return tg_last_status();
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    int cap = 0;
    tg_status st = TG_OK;
    for (int g = 0; g < o->n_groups && st == TG_OK; g++) st = save_group(o, g, out, &cap);
    if (st == TG_OK && o->kind == TG_K_LBFGS) st = tg_lbfgs_save(o, out, &cap);
    tg_scope_end();
    tg_set_grad_enabled(prev);
    if (st != TG_OK) tg_optim_state_free(out);
    return st;
}

void tg_optim_state_free(tg_optim_state *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) tg_release(s->items[i].tensor);
    free(s->items);
    *s = (tg_optim_state){ 0 };
}

/* Finds the group and trainable slot of optimizer-wide parameter pi (slot -1: frozen). */
static tg_optim_group *param_at(const tg_optim *o, int pi, int *slot) {
    for (int g = 0; g < o->n_groups; g++) {
        tg_optim_group *G = &o->groups[g];
        if (pi < G->first || pi >= G->first + G->n) continue;
        *slot = -1;
        for (int k = 0; k < G->nt; k++)
            if (G->tidx[k] == pi - G->first) *slot = k;
        return G;
    }
    return NULL;
}

static bool shape_is(tg_tensor *t, tg_shape s) {
    tg_shape a = tg_shape_of(t);
    if (a.ndim != s.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dims[i] != s.dims[i]) return false;
    return true;
}

/* One entry: checked when apply is false, written when true. */
static tg_status load_entry(tg_optim *o, tg_optim_hp *hps, const char *name, tg_tensor *t, bool apply) {
    const char *fn = "tg_optim_state_load";
    int idx, used = 0;
    if (sscanf(name, "param_groups.%d.%n", &idx, &used) == 1 && used > 0) {
        const char *key = name + used;
        if (idx < 0 || idx >= o->n_groups) return tg_error(TG_ERR_INVALID, "%s: '%s': no parameter group %d", fn, name, idx);
        tg_optim_group *G = &o->groups[idx];
        if (strcmp(key, "params") == 0) {
            if (tg_numel(t) != G->n)
                return tg_error(TG_ERR_SHAPE, "%s: parameter group %d has %d parameters, the saved one %lld", fn, idx, G->n,
                                (long long)tg_numel(t));
            return TG_OK;
        }
        if (strcmp(key, "betas") == 0 && find_key(o->kind, "betas.0")) {
            double b[2];
            if (tg_numel(t) != 2 || tg_copy_to_host(tg_cast(t, TG_F64), b, sizeof b) != TG_OK)
                return tg_error(TG_ERR_SHAPE, "%s: '%s' must hold 2 values", fn, name);
            hps[idx].beta1 = b[0], hps[idx].beta2 = b[1];
            return TG_OK;
        }
        const hp_key *k = find_key(o->kind, key);
        if (!k || tg_numel(t) != 1) return tg_error(TG_ERR_INVALID, "%s: unknown entry '%s' for %s", fn, name, o->name);
        key_set(&hps[idx], k, tg_item(t));
        return TG_OK;
    }
    if (sscanf(name, "state.%d.%n", &idx, &used) == 1 && used > 0) {
        const char *key = name + used;
        if (o->kind == TG_K_LBFGS) return tg_lbfgs_load_entry(o, key, t, apply);
        int slot;
        tg_optim_group *G = idx >= 0 ? param_at(o, idx, &slot) : NULL;
        if (!G || slot < 0) return tg_error(TG_ERR_INVALID, "%s: '%s': no trainable parameter %d", fn, name, idx);
        if (strcmp(key, "step") == 0) {
            double v = tg_item(t);
            if (!(v >= 0) || v != floor(v)) return tg_error(TG_ERR_INVALID, "%s: '%s' is %g", fn, name, v);
            if (apply) G->step[slot] = (int64_t)v;
            return TG_OK;
        }
        for (int s = 0; tg_optim_state_name(o->kind, s); s++) {
            if (strcmp(tg_optim_state_name(o->kind, s), key) != 0) continue;
            tg_tensor *p = G->params[G->tidx[slot]];
            if (!shape_is(t, tg_shape_of(p)))
                return tg_error(TG_ERR_SHAPE, "%s: '%s' does not have parameter %d's shape", fn, name, idx);
            if (!apply) return TG_OK;
            tg_tensor *buf = tg_optim_state_buf(o, G, s, 0);
            tg_tensor *dst = tg_slice(buf, 0, G->offset[slot], G->offset[slot] + G->numel[slot], 1);
            if (o->kind == TG_K_SGD) G->has_buf[slot] = 1;
            return tg_copy_(dst, tg_reshape(tg_to(tg_cast(t, tg_dtype_of(buf)), tg_device_of(buf)), TG_SHAPE(G->numel[slot])));
        }
    }
    return tg_error(TG_ERR_INVALID, "%s: unknown entry '%s' for %s", fn, name, o->name);
}

tg_status tg_optim_state_load(tg_optim *o, const tg_optim_state *s) {
    TG_API_ENTER("tg_optim_state_load");
    if (!check_live(o, "tg_optim_state_load")) return tg_last_status();
    if (!s || (s->n && !s->items)) return tg_error(TG_ERR_INVALID, "tg_optim_state_load: state is NULL");
    tg_optim_hp *hps = malloc((size_t)o->n_groups * sizeof *hps);
    if (!hps) return tg_error(TG_ERR_NOMEM, "tg_optim_state_load: out of host memory");
    for (int g = 0; g < o->n_groups; g++) hps[g] = o->groups[g].hp;
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    tg_status st = TG_OK;
    for (int i = 0; i < s->n && st == TG_OK; i++) {
        if (!s->items[i].tensor) st = tg_error(TG_ERR_INVALID, "tg_optim_state_load: '%s' has no tensor", s->items[i].name);
        else st = load_entry(o, hps, s->items[i].name, s->items[i].tensor, false);
    }
    for (int g = 0; g < o->n_groups && st == TG_OK; g++) st = tg_optim_check_hp(o->kind, &hps[g]);
    if (st == TG_OK) {
        for (int g = 0; g < o->n_groups; g++) {
            tg_optim_group *G = &o->groups[g];
            G->hp = hps[g];
            memset(G->step, 0, (size_t)G->n * sizeof *G->step);
            memset(G->has_buf, 0, (size_t)G->n);
        }
        for (int i = 0; i < s->n && st == TG_OK; i++) st = load_entry(o, hps, s->items[i].name, s->items[i].tensor, true);
    }
    tg_scope_end();
    tg_set_grad_enabled(prev);
    free(hps);
    return st;
}
