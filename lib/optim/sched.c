/* Learning-rate schedules as torch/optim/lr_scheduler.py (1.13): the base class's
 * initial step and initial_lr bookkeeping, each schedule's chainable get_lr (and closed
 * form where PyTorch's step(epoch) uses one), SGDR's own step, CyclicLR and OneCycleLR
 * with momentum cycling, ReduceLROnPlateau, and the SequentialLR / ChainedScheduler
 * composites. A schedule finds its optimizer by serial, so a freed one is an error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/optim/optim-impl.h"
#include "tapegrad/optim.h"

typedef enum {
    S_STEP, S_MULTISTEP, S_EXP, S_INVTIME, S_LAMBDA, S_POLY, S_LINEAR, S_COSINE, S_SGDR, S_CYCLIC, S_ONECYCLE,
    S_PLATEAU, S_SEQUENTIAL, S_CHAINED
} s_kind;

typedef struct {
    double end_step;
    int start_lr, end_lr, start_m, end_m; /* 0 initial, 1 max, 2 min; momentum 0 max, 1 base */
} phase;

struct tg_sched {
    s_kind kind;
    tg_optim *opt;
    uint64_t serial;
    int ng;
    double *base_lrs, *last_lr;
    int64_t last_epoch, step_count;
    bool restarted;
    double gamma, eta_min, start_factor, end_factor, power, decay;
    int64_t step_size, T_max, total_iters;
    int n_ms;
    int64_t *ms;
    double (*fn)(int64_t, void *);
    void *fn_ctx;
    int64_t T_0, T_i, T_cur, T_mult;
    /* cyclic and one-cycle */
    double *max_lrs, *base_m, *max_m, *init_lrs, *min_lrs;
    double total_size, step_ratio;
    tg_cyclic_mode mode;
    bool cycle_momentum, use_beta1;
    int64_t cycle;
    phase ph[3];
    int n_ph;
    int64_t total_steps;
    tg_anneal_strategy anneal;
    /* plateau */
    tg_plateau_mode pmode;
    tg_threshold_mode tmode;
    double factor, threshold, eps, min_lr, best;
    int64_t patience, cooldown, cooldown_counter, num_bad;
    /* composites (owned) */
    int n_ch;
    tg_sched **ch;
};

static const char *const kind_names[] = { "StepLR", "MultiStepLR", "ExponentialLR", "InverseTimeLR", "LambdaLR",
                                          "PolynomialLR", "LinearLR", "CosineAnnealingLR",
                                          "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR",
                                          "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler" };

/* The optimizer if it is alive and still has the groups the schedule was made for. */
static tg_optim *live_opt(const tg_sched *s, const char *fn) {
    tg_optim *o = tg_optim_lookup(s->serial);
    if (!o) return tg_error_null(TG_ERR_STATE, "%s: the schedule's optimizer was freed", fn);
    if (o->n_groups != s->ng)
        return tg_error_null(TG_ERR_STATE, "%s: the optimizer has %d parameter groups, the schedule was made for %d", fn,
                             o->n_groups, s->ng);
    return o;
}

static tg_sched *sched_alloc(tg_optim *o, s_kind kind, const char *fn) {
    if (!o) return tg_error_null(TG_ERR_INVALID, "%s: the optimizer is NULL", fn);
    if (!tg_optim_is_live(o)) return tg_error_null(TG_ERR_STATE, "%s: the optimizer was freed", fn);
    tg_sched *s = calloc(1, sizeof *s);
    int ng = o->n_groups;
    if (s) {
        s->base_lrs = calloc((size_t)ng, sizeof(double)), s->last_lr = calloc((size_t)ng, sizeof(double));
        s->max_lrs = calloc((size_t)ng, sizeof(double)), s->base_m = calloc((size_t)ng, sizeof(double));
        s->max_m = calloc((size_t)ng, sizeof(double)), s->init_lrs = calloc((size_t)ng, sizeof(double));
        s->min_lrs = calloc((size_t)ng, sizeof(double));
    }
    if (!s || !s->base_lrs || !s->last_lr || !s->max_lrs || !s->base_m || !s->max_m || !s->init_lrs || !s->min_lrs) {
        tg_sched_free(s);
        return tg_error_null(TG_ERR_NOMEM, "%s: out of host memory", fn);
    }
    s->kind = kind, s->opt = o, s->serial = o->serial, s->ng = ng, s->last_epoch = -1;
    return s;
}

/* _LRScheduler.__init__ before the first step: initial_lr by setdefault, base_lrs from it. */
static void base_init(tg_sched *s) {
    for (int g = 0; g < s->ng; g++) {
        tg_optim_hp *h = &s->opt->groups[g].hp;
        if (!h->has_initial_lr) h->initial_lr = h->lr, h->has_initial_lr = true;
        s->base_lrs[g] = h->initial_lr;
    }
}

static double glr(const tg_sched *s, int g) { return s->opt->groups[g].hp.lr; }

static void set_momentum(tg_sched *s, int g, double m) {
    tg_optim_hp *h = &s->opt->groups[g].hp;
    if (s->use_beta1) h->beta1 = m;
    else h->momentum = m;
}

static size_t bisect_right(const int64_t *a, int n, int64_t x) {
    size_t lo = 0, hi = (size_t)n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x < a[mid]) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static double anneal(const tg_sched *s, double start, double end, double pct) {
    if (s->anneal == TG_ANNEAL_LINEAR) return (end - start) * pct + start;
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1);
}

static double cyc_scale(const tg_sched *s, double x) {
    switch (s->mode) {
    case TG_CYCLIC_TRIANGULAR2: return 1 / pow(2., x - 1);
    case TG_CYCLIC_EXP_RANGE: return pow(s->gamma, x);
    default: return 1.;
    }
}

/* get_lr(): the new lr of group g at s->last_epoch (chainable forms use the current lr). */
static tg_status get_lr(tg_sched *s, int g, double *out) {
    int64_t e = s->last_epoch;
    double lr = glr(s, g), base = s->base_lrs[g];
    switch (s->kind) {
    case S_STEP: *out = (e == 0 || e % s->step_size != 0) ? lr : lr * s->gamma; break;
    case S_MULTISTEP: {
        int count = 0;
        for (int i = 0; i < s->n_ms; i++) count += s->ms[i] == e;
        *out = count ? lr * pow(s->gamma, count) : lr;
        break;
    }
    case S_EXP: *out = e == 0 ? lr : lr * s->gamma; break;
    case S_INVTIME: *out = base / (1 + s->decay * (double)e); break;
    case S_LAMBDA: *out = base * s->fn(e, s->fn_ctx); break;
    case S_POLY:
        if (e == 0 || e > s->total_iters) *out = lr;
        else
            *out = lr * pow((1.0 - (double)e / (double)s->total_iters) / (1.0 - (double)(e - 1) / (double)s->total_iters),
                            s->power);
        break;
    case S_LINEAR:
        if (e == 0) *out = lr * s->start_factor;
        else if (e > s->total_iters) *out = lr;
        else
            *out = lr * (1. + (s->end_factor - s->start_factor) /
                                  ((double)s->total_iters * s->start_factor +
                                   (double)(e - 1) * (s->end_factor - s->start_factor)));
        break;
    case S_COSINE: {
        double T = (double)s->T_max, m = s->eta_min;
        if (e == 0) *out = lr;
        else if (s->step_count == 1 && e > 0) *out = m + (base - m) * (1 + cos((double)e * M_PI / T)) / 2;
        else if ((e - 1 - s->T_max) % (2 * s->T_max) == 0) *out = lr + (base - m) * (1 - cos(M_PI / T)) / 2;
        else *out = (1 + cos(M_PI * (double)e / T)) / (1 + cos(M_PI * (double)(e - 1) / T)) * (lr - m) + m;
        break;
    }
    case S_SGDR:
        *out = s->eta_min + (base - s->eta_min) * (1 + cos(M_PI * (double)s->T_cur / (double)s->T_i)) / 2;
        break;
    case S_CYCLIC: {
        double cycle = floor(1 + (double)e / s->total_size), x = 1. + (double)e / s->total_size - cycle;
        double sf = x <= s->step_ratio ? x / s->step_ratio : (x - 1) / (s->step_ratio - 1);
        double scale = cyc_scale(s, s->mode == TG_CYCLIC_EXP_RANGE ? (double)e : cycle);
        *out = base + (s->max_lrs[g] - base) * sf * scale;
        if (s->cycle_momentum) set_momentum(s, g, s->max_m[g] - (s->max_m[g] - s->base_m[g]) * sf * scale);
        if (g == 0) s->restarted = (int64_t)cycle > s->cycle && s->cycle > 0, s->cycle = (int64_t)cycle;
        break;
    }
    case S_ONECYCLE: {
        if (e > s->total_steps)
            return tg_error(TG_ERR_STATE, "tg_sched_step: tried to step %lld times. The specified number of total steps "
                            "is %lld", (long long)(e + 1), (long long)s->total_steps);
        const double lrs[3] = { s->init_lrs[g], s->max_lrs[g], s->min_lrs[g] }, ms[2] = { s->max_m[g], s->base_m[g] };
        double start = 0;
        for (int i = 0; i < s->n_ph; i++) {
            const phase *p = &s->ph[i];
            if ((double)e <= p->end_step || i == s->n_ph - 1) {
                double pct = ((double)e - start) / (p->end_step - start);
                *out = anneal(s, lrs[p->start_lr], lrs[p->end_lr], pct);
                if (s->cycle_momentum) set_momentum(s, g, anneal(s, ms[p->start_m], ms[p->end_m], pct));
                break;
            }
            start = p->end_step;
        }
        break;
    }
    default: *out = lr; break;
    }
    return TG_OK;
}

/* _get_closed_form_lr at s->last_epoch, for the schedules that have one. */
static bool closed_form(const tg_sched *s, int g, double *out) {
    int64_t e = s->last_epoch;
    double base = s->base_lrs[g];
    switch (s->kind) {
    case S_STEP: *out = base * pow(s->gamma, (double)(e / s->step_size)); return true;
    case S_MULTISTEP: *out = base * pow(s->gamma, (double)bisect_right(s->ms, s->n_ms, e)); return true;
    case S_EXP: *out = base * pow(s->gamma, (double)e); return true;
    case S_POLY:
        *out = base * pow(1.0 - (double)(e < s->total_iters ? e : s->total_iters) / (double)s->total_iters, s->power);
        return true;
    case S_LINEAR:
        *out = base * (s->start_factor + (s->end_factor - s->start_factor) *
                                             (double)(e < s->total_iters ? e : s->total_iters) / (double)s->total_iters);
        return true;
    case S_COSINE:
        *out = s->eta_min + (base - s->eta_min) * (1 + cos(M_PI * (double)e / (double)s->T_max)) / 2;
        return true;
    default: return false;
    }
}

/* Writes the values into the groups and last_lr. */
static void apply(tg_sched *s, const double *v) {
    for (int g = 0; g < s->ng; g++) s->opt->groups[g].hp.lr = v[g], s->last_lr[g] = v[g];
}

static tg_status sched_step_inner(tg_sched *s, const int64_t *epoch);

/* _LRScheduler.step(epoch): epoch NULL for the plain step. */
static tg_status base_step(tg_sched *s, const int64_t *epoch) {
    s->step_count++;
    double *v = malloc((size_t)s->ng * sizeof *v);
    if (!v) return tg_error(TG_ERR_NOMEM, "tg_sched_step: out of host memory");
    s->last_epoch = epoch ? *epoch : s->last_epoch + 1;
    tg_status st = TG_OK;
    for (int g = 0; g < s->ng && st == TG_OK; g++)
        if (!(epoch && closed_form(s, g, &v[g]))) st = get_lr(s, g, &v[g]);
    if (st == TG_OK) apply(s, v);
    free(v);
    return st;
}

static tg_status sgdr_step(tg_sched *s, const int64_t *epoch_in) {
    int64_t e;
    s->restarted = false;
    if (!epoch_in && s->last_epoch < 0) {
        e = 0;
        epoch_in = &e;
    }
    if (!epoch_in) {
        e = s->last_epoch + 1;
        if (++s->T_cur >= s->T_i) s->T_cur -= s->T_i, s->T_i *= s->T_mult, s->restarted = true;
    } else {
        e = *epoch_in;
        if (e >= s->T_0) {
            if (s->T_mult == 1) s->T_cur = e % s->T_0;
            else {
                int n = (int)(log((double)e / (double)s->T_0 * (double)(s->T_mult - 1) + 1) / log((double)s->T_mult));
                int64_t p = 1;
                for (int i = 0; i < n; i++) p *= s->T_mult;
                s->T_cur = e - s->T_0 * (p - 1) / (s->T_mult - 1);
                s->T_i = s->T_0 * p;
            }
        } else {
            s->T_i = s->T_0, s->T_cur = e;
        }
    }
    s->last_epoch = e;
    s->step_count++;
    double *v = malloc((size_t)s->ng * sizeof *v);
    if (!v) return tg_error(TG_ERR_NOMEM, "tg_sched_step: out of host memory");
    for (int g = 0; g < s->ng; g++) get_lr(s, g, &v[g]);
    apply(s, v);
    free(v);
    return TG_OK;
}

static tg_status sched_step_inner(tg_sched *s, const int64_t *epoch) {
    switch (s->kind) {
    case S_SGDR: return sgdr_step(s, epoch);
    case S_PLATEAU: return tg_error(TG_ERR_INVALID, "tg_sched_step: ReduceLROnPlateau steps with a metric: use tg_sched_step_metric");
    case S_SEQUENTIAL: {
        s->last_epoch++;
        size_t idx = bisect_right(s->ms, s->n_ms, s->last_epoch);
        tg_sched *c = s->ch[idx];
        int64_t zero = 0;
        tg_status st = sched_step_inner(c, idx > 0 && s->ms[idx - 1] == s->last_epoch ? &zero : NULL);
        memcpy(s->last_lr, c->last_lr, (size_t)s->ng * sizeof(double));
        s->restarted = c->restarted;
        return st;
    }
    case S_CHAINED: {
        tg_status st = TG_OK;
        s->restarted = false;
        for (int i = 0; i < s->n_ch && st == TG_OK; i++) st = sched_step_inner(s->ch[i], NULL), s->restarted |= s->ch[i]->restarted;
        for (int g = 0; g < s->ng; g++) s->last_lr[g] = glr(s, g);
        s->last_epoch++;
        return st;
    }
    default: return base_step(s, epoch);
    }
}

/* The constructor's tail: the initial step, or the error that frees s. */
static tg_sched *finish(tg_sched *s) {
    s->step_count = 0;
    if (sched_step_inner(s, NULL) != TG_OK) {
        tg_sched_free(s);
        return NULL;
    }
    return s;
}

tg_status tg_sched_step(tg_sched *s) {
    TG_API_ENTER("tg_sched_step");
    if (!s) return tg_error(TG_ERR_INVALID, "tg_sched_step: the schedule is NULL");
    if (!live_opt(s, "tg_sched_step")) return tg_last_status();
    return sched_step_inner(s, NULL);
}

static double opt_or(tg_opt_f64 v, double d) { return v.set ? v.value : d; }

tg_sched *tg_step_lr_new(tg_optim *o, int64_t step_size, const tg_step_lr_opts *opts) {
    TG_API_ENTER("tg_step_lr_new");
    if (step_size <= 0) return tg_error_null(TG_ERR_INVALID, "tg_step_lr_new: step_size must be positive, got %lld", (long long)step_size);
    tg_sched *s = sched_alloc(o, S_STEP, "tg_step_lr_new");
    if (!s) return NULL;
    s->step_size = step_size, s->gamma = opts ? opt_or(opts->gamma, 0.1) : 0.1;
    base_init(s);
    return finish(s);
}

tg_sched *tg_multistep_lr_new(tg_optim *o, int n, const int64_t *milestones, const tg_step_lr_opts *opts) {
    TG_API_ENTER("tg_multistep_lr_new");
    if (n < 0 || (n && !milestones)) return tg_error_null(TG_ERR_INVALID, "tg_multistep_lr_new: milestones is NULL");
    for (int i = 1; i < n; i++)
        if (milestones[i] < milestones[i - 1])
            return tg_error_null(TG_ERR_INVALID, "tg_multistep_lr_new: milestones must be increasing");
    tg_sched *s = sched_alloc(o, S_MULTISTEP, "tg_multistep_lr_new");
    if (!s) return NULL;
    s->ms = malloc((size_t)(n ? n : 1) * sizeof *s->ms);
    if (!s->ms) return tg_sched_free(s), tg_error_null(TG_ERR_NOMEM, "tg_multistep_lr_new: out of host memory");
    if (n) memcpy(s->ms, milestones, (size_t)n * sizeof *s->ms);
    s->n_ms = n, s->gamma = opts ? opt_or(opts->gamma, 0.1) : 0.1;
    base_init(s);
    return finish(s);
}

tg_sched *tg_exponential_lr_new(tg_optim *o, double gamma) {
    TG_API_ENTER("tg_exponential_lr_new");
    tg_sched *s = sched_alloc(o, S_EXP, "tg_exponential_lr_new");
    if (!s) return NULL;
    s->gamma = gamma;
    base_init(s);
    return finish(s);
}

tg_sched *tg_inverse_time_lr_new(tg_optim *o, double decay) {
    TG_API_ENTER("tg_inverse_time_lr_new");
    if (!(decay >= 0)) return tg_error_null(TG_ERR_INVALID, "tg_inverse_time_lr_new: decay must be >= 0, got %g", decay);
    tg_sched *s = sched_alloc(o, S_INVTIME, "tg_inverse_time_lr_new");
    if (!s) return NULL;
    s->decay = decay;
    base_init(s);
    return finish(s);
}

tg_sched *tg_lambda_lr_new(tg_optim *o, double (*fn)(int64_t, void *), void *ctx) {
    TG_API_ENTER("tg_lambda_lr_new");
    if (!fn) return tg_error_null(TG_ERR_INVALID, "tg_lambda_lr_new: fn is NULL");
    tg_sched *s = sched_alloc(o, S_LAMBDA, "tg_lambda_lr_new");
    if (!s) return NULL;
    s->fn = fn, s->fn_ctx = ctx;
    base_init(s);
    return finish(s);
}

tg_sched *tg_polynomial_lr_new(tg_optim *o, const tg_polynomial_lr_opts *opts) {
    TG_API_ENTER("tg_polynomial_lr_new");
    tg_polynomial_lr_opts d = opts ? *opts : (tg_polynomial_lr_opts){ 0 };
    if (d.total_iters < 0) return tg_error_null(TG_ERR_INVALID, "tg_polynomial_lr_new: total_iters must be positive, got %lld", (long long)d.total_iters);
    tg_sched *s = sched_alloc(o, S_POLY, "tg_polynomial_lr_new");
    if (!s) return NULL;
    s->total_iters = d.total_iters ? d.total_iters : 5, s->power = opt_or(d.power, 1.0);
    base_init(s);
    return finish(s);
}

tg_sched *tg_linear_lr_new(tg_optim *o, const tg_linear_lr_opts *opts) {
    TG_API_ENTER("tg_linear_lr_new");
    tg_linear_lr_opts d = opts ? *opts : (tg_linear_lr_opts){ 0 };
    double sf = opt_or(d.start_factor, 1.0 / 3), ef = opt_or(d.end_factor, 1.0);
    if (!(sf > 0 && sf <= 1))
        return tg_error_null(TG_ERR_INVALID, "tg_linear_lr_new: starting multiplicative factor expected to be greater than 0 and less or equal to 1, got %g", sf);
    if (!(ef >= 0 && ef <= 1))
        return tg_error_null(TG_ERR_INVALID, "tg_linear_lr_new: ending multiplicative factor expected to be between 0 and 1, got %g", ef);
    if (d.total_iters < 0) return tg_error_null(TG_ERR_INVALID, "tg_linear_lr_new: total_iters must be positive, got %lld", (long long)d.total_iters);
    tg_sched *s = sched_alloc(o, S_LINEAR, "tg_linear_lr_new");
    if (!s) return NULL;
    s->start_factor = sf, s->end_factor = ef, s->total_iters = d.total_iters ? d.total_iters : 5;
    base_init(s);
    return finish(s);
}

tg_sched *tg_cosine_lr_new(tg_optim *o, int64_t T_max, double eta_min) {
    TG_API_ENTER("tg_cosine_lr_new");
    if (T_max <= 0) return tg_error_null(TG_ERR_INVALID, "tg_cosine_lr_new: T_max must be positive, got %lld", (long long)T_max);
    tg_sched *s = sched_alloc(o, S_COSINE, "tg_cosine_lr_new");
    if (!s) return NULL;
    s->T_max = T_max, s->eta_min = eta_min;
    base_init(s);
    return finish(s);
}

tg_sched *tg_cosine_warm_restarts_new(tg_optim *o, int64_t T_0, const tg_warm_restarts_opts *opts) {
    TG_API_ENTER("tg_cosine_warm_restarts_new");
    tg_warm_restarts_opts d = opts ? *opts : (tg_warm_restarts_opts){ 0 };
    if (T_0 <= 0) return tg_error_null(TG_ERR_INVALID, "tg_cosine_warm_restarts_new: expected positive integer T_0, but got %lld", (long long)T_0);
    if (d.T_mult < 0) return tg_error_null(TG_ERR_INVALID, "tg_cosine_warm_restarts_new: expected integer T_mult >= 1, but got %lld", (long long)d.T_mult);
    tg_sched *s = sched_alloc(o, S_SGDR, "tg_cosine_warm_restarts_new");
    if (!s) return NULL;
    s->T_0 = s->T_i = T_0, s->T_mult = d.T_mult ? d.T_mult : 1, s->eta_min = d.eta_min, s->T_cur = -1;
    base_init(s);
    return finish(s);
}

/* Momentum cycling needs SGD/RMSprop's momentum or Adam's beta1. */
static bool momentum_kind(tg_sched *s, const char *fn) {
    tg_optim_kind k = s->opt->kind;
    if (k == TG_K_ADAM || k == TG_K_ADAMW) return s->use_beta1 = true;
    if (k == TG_K_SGD || k == TG_K_RMSPROP) return !(s->use_beta1 = false);
    tg_error(TG_ERR_INVALID, "%s: optimizer must support momentum or beta1 with cycle_momentum enabled", fn);
    return false;
}

tg_sched *tg_cyclic_lr_new(tg_optim *o, const tg_cyclic_lr_opts *opts) {
    TG_API_ENTER("tg_cyclic_lr_new");
    const char *fn = "tg_cyclic_lr_new";
    if (!opts) return tg_error_null(TG_ERR_INVALID, "%s: base_lr and max_lr are required", fn);
    double up = opts->step_size_up ? opts->step_size_up : 2000, down = opt_or(opts->step_size_down, up);
    if (!(up > 0) || !(down >= 0)) return tg_error_null(TG_ERR_INVALID, "%s: step sizes must be positive", fn);
    if ((unsigned)opts->mode > TG_CYCLIC_EXP_RANGE) return tg_error_null(TG_ERR_INVALID, "%s: mode is invalid", fn);
    tg_sched *s = sched_alloc(o, S_CYCLIC, fn);
    if (!s) return NULL;
    s->total_size = up + down, s->step_ratio = up / s->total_size, s->mode = opts->mode;
    s->gamma = opt_or(opts->gamma, 1.0);
    s->cycle_momentum = opts->cycle_momentum.set ? opts->cycle_momentum.value : true;
    if (s->cycle_momentum && !momentum_kind(s, fn)) return tg_sched_free(s), NULL;
    for (int g = 0; g < s->ng; g++) {
        o->groups[g].hp.lr = opts->base_lr; /* last_epoch == -1: group['lr'] = base_lr */
        s->max_lrs[g] = opts->max_lr;
        s->base_m[g] = opt_or(opts->base_momentum, 0.8), s->max_m[g] = opt_or(opts->max_momentum, 0.9);
        if (s->cycle_momentum) set_momentum(s, g, s->max_m[g]);
    }
    base_init(s);
    for (int g = 0; g < s->ng; g++) s->base_lrs[g] = opts->base_lr;
    return finish(s);
}

tg_sched *tg_onecycle_lr_new(tg_optim *o, const tg_onecycle_lr_opts *opts) {
    TG_API_ENTER("tg_onecycle_lr_new");
    const char *fn = "tg_onecycle_lr_new";
    tg_onecycle_lr_opts d = opts ? *opts : (tg_onecycle_lr_opts){ 0 };
    int64_t total = d.total_steps;
    if (!total) {
        if (d.epochs <= 0) return tg_error_null(TG_ERR_INVALID, "%s: you must define either total_steps OR (epochs AND steps_per_epoch)", fn);
        if (d.steps_per_epoch <= 0) return tg_error_null(TG_ERR_INVALID, "%s: expected positive integer steps_per_epoch, but got %lld", fn, (long long)d.steps_per_epoch);
        total = d.epochs * d.steps_per_epoch;
    }
    if (total < 0) return tg_error_null(TG_ERR_INVALID, "%s: expected positive integer total_steps, but got %lld", fn, (long long)total);
    double pct = opt_or(d.pct_start, 0.3);
    if (!(pct >= 0 && pct <= 1)) return tg_error_null(TG_ERR_INVALID, "%s: expected float between 0 and 1 pct_start, but got %g", fn, pct);
    if ((unsigned)d.anneal_strategy > TG_ANNEAL_LINEAR) return tg_error_null(TG_ERR_INVALID, "%s: anneal_strategy must be cos or linear", fn);
    tg_sched *s = sched_alloc(o, S_ONECYCLE, fn);
    if (!s) return NULL;
    s->total_steps = total, s->anneal = d.anneal_strategy;
    double T = (double)total;
    if (d.three_phase) {
        s->n_ph = 3;
        s->ph[0] = (phase){ pct * T - 1, 0, 1, 0, 1 };
        s->ph[1] = (phase){ 2 * pct * T - 2, 1, 0, 1, 0 };
        s->ph[2] = (phase){ T - 1, 0, 2, 0, 0 };
    } else {
        s->n_ph = 2;
        s->ph[0] = (phase){ pct * T - 1, 0, 1, 0, 1 };
        s->ph[1] = (phase){ T - 1, 1, 2, 1, 0 };
    }
    s->cycle_momentum = d.cycle_momentum.set ? d.cycle_momentum.value : true;
    if (s->cycle_momentum && !momentum_kind(s, fn)) return tg_sched_free(s), NULL;
    double div = opt_or(d.div_factor, 25.), fdiv = opt_or(d.final_div_factor, 1e4);
    for (int g = 0; g < s->ng; g++) {
        tg_optim_hp *h = &o->groups[g].hp;
        s->max_lrs[g] = d.max_lr, s->init_lrs[g] = d.max_lr / div, s->min_lrs[g] = s->init_lrs[g] / fdiv;
        h->initial_lr = s->init_lrs[g], h->has_initial_lr = true;
        s->max_m[g] = opt_or(d.max_momentum, 0.95), s->base_m[g] = opt_or(d.base_momentum, 0.85);
        if (s->cycle_momentum) set_momentum(s, g, s->max_m[g]);
    }
    base_init(s);
    return finish(s);
}

tg_sched *tg_reduce_lr_on_plateau_new(tg_optim *o, const tg_plateau_opts *opts) {
    TG_API_ENTER("tg_reduce_lr_on_plateau_new");
    const char *fn = "tg_reduce_lr_on_plateau_new";
    tg_plateau_opts d = opts ? *opts : (tg_plateau_opts){ 0 };
    double factor = opt_or(d.factor, 0.1);
    if (!(factor < 1.0)) return tg_error_null(TG_ERR_INVALID, "%s: factor should be < 1.0, got %g", fn, factor);
    if ((unsigned)d.mode > TG_PLATEAU_MAX) return tg_error_null(TG_ERR_INVALID, "%s: mode %d is unknown", fn, (int)d.mode);
    if ((unsigned)d.threshold_mode > TG_THRESHOLD_ABS)
        return tg_error_null(TG_ERR_INVALID, "%s: threshold mode %d is unknown", fn, (int)d.threshold_mode);
    tg_sched *s = sched_alloc(o, S_PLATEAU, fn);
    if (!s) return NULL;
    s->factor = factor, s->pmode = d.mode, s->tmode = d.threshold_mode;
    s->patience = d.patience.set ? d.patience.value : 10, s->threshold = opt_or(d.threshold, 1e-4);
    s->cooldown = d.cooldown, s->min_lr = d.min_lr, s->eps = opt_or(d.eps, 1e-8);
    s->best = s->pmode == TG_PLATEAU_MIN ? INFINITY : -INFINITY;
    s->last_epoch = 0;
    for (int g = 0; g < s->ng; g++) s->last_lr[g] = glr(s, g);
    return s;
}

static bool is_better(const tg_sched *s, double a, double best) {
    if (s->pmode == TG_PLATEAU_MIN)
        return s->tmode == TG_THRESHOLD_REL ? a < best * (1. - s->threshold) : a < best - s->threshold;
    return s->tmode == TG_THRESHOLD_REL ? a > best * (s->threshold + 1.) : a > best + s->threshold;
}

tg_status tg_sched_step_metric(tg_sched *s, double metric) {
    TG_API_ENTER("tg_sched_step_metric");
    if (!s) return tg_error(TG_ERR_INVALID, "tg_sched_step_metric: the schedule is NULL");
    if (s->kind != S_PLATEAU)
        return tg_error(TG_ERR_INVALID, "tg_sched_step_metric: %s steps without a metric: use tg_sched_step", kind_names[s->kind]);
    if (!live_opt(s, "tg_sched_step_metric")) return tg_last_status();
    s->last_epoch++;
    if (is_better(s, metric, s->best)) s->best = metric, s->num_bad = 0;
    else s->num_bad++;
    if (s->cooldown_counter > 0) s->cooldown_counter--, s->num_bad = 0;
    if (s->num_bad > s->patience) {
        for (int g = 0; g < s->ng; g++) {
            double old = glr(s, g), nw = fmax(old * s->factor, s->min_lr);
            if (old - nw > s->eps) s->opt->groups[g].hp.lr = nw;
        }
        s->cooldown_counter = s->cooldown, s->num_bad = 0;
    }
    for (int g = 0; g < s->ng; g++) s->last_lr[g] = glr(s, g);
    return TG_OK;
}

static void free_children(int n, tg_sched *const *c) {
    for (int i = 0; i < n; i++) tg_sched_free(c[i]);
}

/* A composite of n owned schedules on o. */
static tg_sched *composite(tg_optim *o, s_kind kind, int n, tg_sched *const *c, const char *fn) {
    if (n <= 0 || !c) return tg_error_null(TG_ERR_INVALID, "%s: needs at least one schedule", fn);
    for (int i = 0; i < n; i++) {
        const char *why = !c[i] ? "is NULL" : c[i]->opt != o || c[i]->serial != (o ? o->serial : 0) ? "belongs to another optimizer"
                         : c[i]->kind == S_PLATEAU ? "is a ReduceLROnPlateau, which steps with a metric" : NULL;
        if (why) return free_children(n, c), tg_error_null(TG_ERR_INVALID, "%s: schedule %d %s", fn, i, why);
    }
    tg_sched *s = sched_alloc(o, kind, fn);
    if (s) s->ch = malloc((size_t)n * sizeof *s->ch);
    if (!s || !s->ch) {
        tg_sched_free(s);
        free_children(n, c);
        return tg_last_status() ? NULL : tg_error_null(TG_ERR_NOMEM, "%s: out of host memory", fn);
    }
    memcpy(s->ch, c, (size_t)n * sizeof *s->ch);
    s->n_ch = n;
    return s;
}

tg_sched *tg_sequential_lr_new(tg_optim *o, int n, tg_sched *const *scheds, const int64_t *milestones) {
    TG_API_ENTER("tg_sequential_lr_new");
    const char *fn = "tg_sequential_lr_new";
    if (n > 1 && !milestones) return free_children(n, scheds), tg_error_null(TG_ERR_INVALID, "%s: milestones is NULL", fn);
    tg_sched *s = composite(o, S_SEQUENTIAL, n, scheds, fn);
    if (!s) return NULL;
    s->ms = malloc((size_t)n * sizeof *s->ms);
    if (!s->ms) return tg_sched_free(s), tg_error_null(TG_ERR_NOMEM, "%s: out of host memory", fn);
    if (n > 1) memcpy(s->ms, milestones, (size_t)(n - 1) * sizeof *s->ms);
    s->n_ms = n - 1;
    s->last_epoch = 0;
    for (int g = 0; g < s->ng; g++) o->groups[g].hp.lr = o->groups[g].hp.initial_lr; /* back to initial values */
    for (int i = 0; i < n; i++) s->ch[i]->last_epoch--;                             /* "undo" their steps */
    s->ch[0]->step_count = 0;
    if (sched_step_inner(s->ch[0], NULL) != TG_OK) return tg_sched_free(s), NULL;
    memcpy(s->last_lr, s->ch[0]->last_lr, (size_t)s->ng * sizeof(double));
    return s;
}

tg_sched *tg_chained_scheduler_new(int n, tg_sched *const *scheds) {
    TG_API_ENTER("tg_chained_scheduler_new");
    tg_optim *o = n > 0 && scheds && scheds[0] ? scheds[0]->opt : NULL;
    if (o && !tg_optim_lookup(scheds[0]->serial))
        return free_children(n, scheds), tg_error_null(TG_ERR_STATE, "tg_chained_scheduler_new: the schedule's optimizer was freed");
    tg_sched *s = composite(o, S_CHAINED, n, scheds, "tg_chained_scheduler_new");
    if (!s) return NULL;
    s->last_epoch = s->ch[n - 1]->last_epoch;
    for (int g = 0; g < s->ng; g++) s->last_lr[g] = glr(s, g);
    return s;
}

double tg_sched_last_lr(const tg_sched *s, int g) {
    TG_API_ENTER("tg_sched_last_lr");
    if (!s) return tg_error(TG_ERR_INVALID, "tg_sched_last_lr: the schedule is NULL"), NAN;
    if (g < 0 || g >= s->ng)
        return tg_error(TG_ERR_INVALID, "tg_sched_last_lr: no parameter group %d (the schedule has %d)", g, s->ng), NAN;
    return s->last_lr[g];
}

int64_t tg_sched_last_epoch(const tg_sched *s) { return s ? s->last_epoch : -1; }
bool tg_sched_restarted(const tg_sched *s) { return s && s->restarted; }

void tg_sched_free(tg_sched *s) {
    if (!s) return;
    free_children(s->n_ch, s->ch);
    free(s->ch), free(s->ms), free(s->base_lrs), free(s->last_lr), free(s->max_lrs), free(s->base_m), free(s->max_m);
    free(s->init_lrs), free(s->min_lrs), free(s);
}
