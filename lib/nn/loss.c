/* Losses with PyTorch's semantics, composed of public ops (differentiable twice where
 * the ops are), and L1/L2 penalties over a module's parameters. Every public function
 * names itself in messages raised by the ops it calls. */
#include <math.h>
#include <string.h>

#include "lib/nn/module-impl.h"

static tg_tensor *reduce(tg_tensor *loss, tg_reduction r, const char *api) {
    switch (r) {
    case TG_REDUCTION_NONE: return loss;
    case TG_REDUCTION_SUM: return tg_sum(loss, TG_ALL, false);
    case TG_REDUCTION_MEAN: return tg_mean(loss, TG_ALL, false);
    }
    return tg_error_null(TG_ERR_INVALID, "%s: unknown reduction %d", api, (int)r);
}

static bool inputs_ok(const char *api, int n, tg_tensor *const *in) {
    for (int i = 0; i < n; i++)
        if (!in[i]) {
            if (!tg_last_status()) tg_error(TG_ERR_INVALID, "%s: an input is NULL", api);
            return false;
        }
    return true;
}

static tg_tensor *scalar_like(tg_tensor *t, double v) { return tg_nn_scalar(tg_dtype_of(t), v, tg_device_of(t)); }

/* ------------------------------------------------------------- classification */

/* What nll and cross-entropy share: per-target values and weights. */
typedef struct {
    tg_tensor *picked; /* logp at the target (N, d...) */
    tg_tensor *w;      /* the target's weight, 0 where ignored (N, d...) */
    tg_tensor *valid;  /* u8 (N, d...) */
} targets;

static bool pick_targets(const char *api, tg_tensor *logp, tg_tensor *labels, const tg_cross_entropy_loss_opts *o,
                         targets *t) {
    char a[128], b[128];
    int nd = tg_ndim(logp);
    bool fits = nd >= 2 && tg_ndim(labels) == nd - 1 && tg_size(labels, 0) == tg_size(logp, 0);
    for (int d = 2; d < nd && fits; d++) fits = tg_size(labels, d - 1) == tg_size(logp, d);
    if (!fits) {
        tg_error(TG_ERR_SHAPE, "%s: input %s needs labels of shape (N, d...) = input without axis 1; got labels %s",
                 api, tg_nn_shape_str(a, sizeof a, logp), tg_nn_shape_str(b, sizeof b, labels));
        return false;
    }
    int64_t c = tg_size(logp, 1);
    if (o->weight && (tg_ndim(o->weight) != 1 || tg_size(o->weight, 0) != c)) {
        tg_error(TG_ERR_SHAPE, "%s: weight %s must have one value per class (%lld)", api,
                 tg_nn_shape_str(a, sizeof a, o->weight), (long long)c);
        return false;
    }
    double ignore = o->ignore_index.set ? (double)o->ignore_index.value : -100;
    tg_dtype ld = tg_dtype_of(labels);
    t->valid = tg_ne(labels, tg_nn_scalar(ld, ignore, tg_device_of(labels)));
    tg_tensor *idx = tg_where(t->valid, labels, tg_nn_scalar(ld, 0, tg_device_of(labels))); /* ignored: class 0 */
    t->picked = tg_squeeze(tg_gather(logp, 1, tg_unsqueeze(idx, 1)), 1);
    tg_tensor *mask = tg_cast(t->valid, tg_dtype_of(logp));
    t->w = o->weight ? tg_mul(tg_reshape(tg_index_select(o->weight, 0, tg_reshape(idx, TG_SHAPE(-1))),
                                         tg_shape_of(labels)), mask)
                     : mask;
    return t->picked && t->w;
}

/* sum(-w * picked) over the targets, reduced; mean divides by sum(w). */
static tg_tensor *nll_from(targets *t, tg_reduction r) {
    tg_tensor *l = tg_neg(tg_mul(t->picked, t->w));
    if (r == TG_REDUCTION_MEAN) return tg_div(tg_sum(l, TG_ALL, false), tg_sum(t->w, TG_ALL, false));
    return r == TG_REDUCTION_SUM ? tg_sum(l, TG_ALL, false) : l;
}

static bool check_reduction(const char *api, tg_reduction r) {
    if ((unsigned)r <= TG_REDUCTION_NONE) return true;
    tg_error(TG_ERR_INVALID, "%s: unknown reduction %d", api, (int)r);
    return false;
}

tg_tensor *tg_nll_loss(tg_tensor *logp, tg_tensor *labels, const tg_cross_entropy_loss_opts *opts) {
    const char *api = "tg_nll_loss";
    TG_API_ENTER("tg_nll_loss");
    tg_cross_entropy_loss_opts o = opts ? *opts : (tg_cross_entropy_loss_opts){ 0 };
    if (!inputs_ok(api, 2, (tg_tensor *[]){ logp, labels }) || !check_reduction(api, o.reduction)) return NULL;
    targets t;
    return pick_targets(api, logp, labels, &o, &t) ? nll_from(&t, o.reduction) : NULL;
}

tg_tensor *tg_cross_entropy_loss(tg_tensor *logits, tg_tensor *labels, const tg_cross_entropy_loss_opts *opts) {
    const char *api = "tg_cross_entropy_loss";
    TG_API_ENTER("tg_cross_entropy_loss");
    tg_cross_entropy_loss_opts o = opts ? *opts : (tg_cross_entropy_loss_opts){ 0 };
    if (!inputs_ok(api, 2, (tg_tensor *[]){ logits, labels }) || !check_reduction(api, o.reduction)) return NULL;
    double e = o.label_smoothing;
    if (!(e >= 0 && e <= 1))
        return tg_error_null(TG_ERR_INVALID, "%s: label_smoothing must be in [0, 1], got %g", api, e);
    if (!o.weight && e == 0)
        return tg_cross_entropy_ex(logits, labels, &(tg_cross_entropy_opts){ o.reduction, o.ignore_index });
    if (tg_ndim(logits) < 2)
        return tg_error_null(TG_ERR_SHAPE, "%s: logits need (N, C) or (N, C, d...), got %d axes", api, tg_ndim(logits));
    tg_tensor *logp = tg_log_softmax(logits, 1);
    targets t;
    if (!pick_targets(api, logp, labels, &o, &t)) return NULL;
    tg_tensor *nll = nll_from(&t, o.reduction);
    if (e == 0) return nll;
    /* PyTorch: smooth = -sum_c w_c logp_c per target, 0 where ignored; the mean divides
     * by the same denominator as the weighted nll. */
    int64_t c = tg_size(logits, 1);
    tg_tensor *lw = logp;
    if (o.weight) {
        tg_shape ws = { .ndim = tg_ndim(logits) };
        for (int i = 0; i < ws.ndim; i++) ws.dims[i] = i == 1 ? c : 1;
        lw = tg_mul(logp, tg_reshape(o.weight, ws));
    }
    tg_tensor *smooth = tg_mul(tg_neg(tg_sum(lw, TG_AXES(1), false)), tg_cast(t.valid, tg_dtype_of(logits)));
    if (o.reduction == TG_REDUCTION_MEAN) smooth = tg_div(tg_sum(smooth, TG_ALL, false), tg_sum(t.w, TG_ALL, false));
    else if (o.reduction == TG_REDUCTION_SUM) smooth = tg_sum(smooth, TG_ALL, false);
    return tg_add(tg_mul_scalar(nll, 1 - e), tg_mul_scalar(smooth, e / (double)c));
}

tg_tensor *tg_multi_margin_loss(tg_tensor *input, tg_tensor *labels, const tg_multi_margin_opts *opts) {
    const char *api = "tg_multi_margin_loss";
    TG_API_ENTER("tg_multi_margin_loss");
    tg_multi_margin_opts o = opts ? *opts : (tg_multi_margin_opts){ 0 };
    if (!inputs_ok(api, 2, (tg_tensor *[]){ input, labels }) || !check_reduction(api, o.reduction)) return NULL;
    int p = o.p ? o.p : 1;
    double margin = o.margin.set ? o.margin.value : 1;
    if (p != 1 && p != 2) return tg_error_null(TG_ERR_INVALID, "%s: p must be 1 or 2, got %d", api, p);
    bool single = tg_ndim(input) == 1;
    tg_tensor *x = single ? tg_unsqueeze(input, 0) : input, *y = tg_ndim(labels) == 0 ? tg_unsqueeze(labels, 0) : labels;
    char a[128], b[128];
    if (tg_ndim(x) != 2 || tg_ndim(y) != 1 || tg_size(y, 0) != tg_size(x, 0))
        return tg_error_null(TG_ERR_SHAPE, "%s: input %s and labels %s do not fit (N, C) and (N)", api,
                             tg_nn_shape_str(a, sizeof a, input), tg_nn_shape_str(b, sizeof b, labels));
    int64_t c = tg_size(x, 1);
    if (o.weight && (tg_ndim(o.weight) != 1 || tg_size(o.weight, 0) != c))
        return tg_error_null(TG_ERR_SHAPE, "%s: weight %s must have one value per class (%lld)", api,
                             tg_nn_shape_str(a, sizeof a, o.weight), (long long)c);
    tg_tensor *xy = tg_gather(x, 1, tg_unsqueeze(y, 1));                   /* (N, 1) */
    tg_tensor *z = tg_relu(tg_add_scalar(tg_sub(x, xy), margin));        /* (N, C) */
    tg_tensor *h = p == 2 ? tg_square(z) : z;
    tg_tensor *others = tg_add_scalar(tg_neg(tg_cast(tg_one_hot(y, c), tg_dtype_of(x))), 1);
    h = tg_mul(h, others);
    if (o.weight) h = tg_mul(h, tg_unsqueeze(tg_index_select(o.weight, 0, y), 1));
    tg_tensor *per = tg_mul_scalar(tg_sum(h, TG_AXES(1), false), 1.0 / (double)c); /* (N) */
    if (single && o.reduction == TG_REDUCTION_NONE) per = tg_squeeze(per, 0);
    return reduce(per, o.reduction, api);
}

/* ------------------------------------------------------------- regression */

tg_tensor *tg_mse_loss(tg_tensor *input, tg_tensor *target, tg_reduction reduction) {
    TG_API_ENTER("tg_mse_loss");
    if (!inputs_ok("tg_mse_loss", 2, (tg_tensor *[]){ input, target })) return NULL;
    return reduce(tg_square(tg_sub(input, target)), reduction, "tg_mse_loss");
}

tg_tensor *tg_l1_loss(tg_tensor *input, tg_tensor *target, tg_reduction reduction) {
    TG_API_ENTER("tg_l1_loss");
    if (!inputs_ok("tg_l1_loss", 2, (tg_tensor *[]){ input, target })) return NULL;
    return reduce(tg_abs(tg_sub(input, target)), reduction, "tg_l1_loss");
}

/* |d| < k ? 0.5 d^2 * a : |d| * c - b: smooth L1 (a = 1/beta, c = 1, b = beta/2) and
 * Huber (a = 1, c = delta, b = delta^2/2). */
static tg_tensor *piecewise(const char *api, tg_tensor *input, tg_tensor *target, tg_reduction r, double k, double a,
                            double c, double b) {
    if (!inputs_ok(api, 2, (tg_tensor *[]){ input, target })) return NULL;
    tg_tensor *d = tg_sub(input, target), *ad = tg_abs(d);
    if (!d) return NULL;
    tg_tensor *quad = tg_mul_scalar(tg_square(d), 0.5 * a), *lin = tg_add_scalar(tg_mul_scalar(ad, c), -b);
    return reduce(tg_where(tg_lt(ad, scalar_like(ad, k)), quad, lin), r, api);
}

tg_tensor *tg_smooth_l1_loss(tg_tensor *input, tg_tensor *target, tg_reduction reduction, double beta) {
    TG_API_ENTER("tg_smooth_l1_loss");
    if (!(beta >= 0)) return tg_error_null(TG_ERR_INVALID, "tg_smooth_l1_loss: beta must be >= 0, got %g", beta);
    if (beta == 0) return tg_l1_loss(input, target, reduction);
    return piecewise("tg_smooth_l1_loss", input, target, reduction, beta, 1 / beta, 1, beta / 2);
}

tg_tensor *tg_huber_loss(tg_tensor *input, tg_tensor *target, tg_reduction reduction, double delta) {
    TG_API_ENTER("tg_huber_loss");
    if (!(delta > 0)) return tg_error_null(TG_ERR_INVALID, "tg_huber_loss: delta must be > 0, got %g", delta);
    return piecewise("tg_huber_loss", input, target, reduction, delta, 1, delta, delta * delta / 2);
}

/* ------------------------------------------------------------- binary */

tg_tensor *tg_binary_cross_entropy(tg_tensor *input, tg_tensor *target, const tg_bce_opts *opts) {
    const char *api = "tg_binary_cross_entropy";
    TG_API_ENTER("tg_binary_cross_entropy");
    tg_bce_opts o = opts ? *opts : (tg_bce_opts){ 0 };
    if (!inputs_ok(api, 2, (tg_tensor *[]){ input, target })) return NULL;
    if (o.pos_weight) return tg_error_null(TG_ERR_INVALID, "%s: pos_weight is for tg_binary_cross_entropy_with_logits", api);
    tg_tensor *lx = tg_clamp(tg_log(input), -100, INFINITY);
    tg_tensor *l1x = tg_clamp(tg_log(tg_add_scalar(tg_neg(input), 1)), -100, INFINITY);
    tg_tensor *l = tg_neg(tg_add(tg_mul(target, lx), tg_mul(tg_add_scalar(tg_neg(target), 1), l1x)));
    if (o.weight) l = tg_mul(l, o.weight);
    return reduce(l, o.reduction, api);
}

/* softplus(-x) = max(-x, 0) + log(1 + exp(-|x|)), with |x| and max written with where
 * so that the gradient at x = 0 is the true -1/2. */
static tg_tensor *softplus_neg(tg_tensor *x) {
    tg_tensor *pos = tg_ge(x, scalar_like(x, 0)), *nx = tg_neg(x);
    tg_tensor *relu_nx = tg_where(pos, scalar_like(x, 0), nx), *nabs = tg_where(pos, nx, x);
    return tg_add(relu_nx, tg_log(tg_add_scalar(tg_exp(nabs), 1)));
}

tg_tensor *tg_binary_cross_entropy_with_logits(tg_tensor *x, tg_tensor *y, const tg_bce_opts *opts) {
    const char *api = "tg_binary_cross_entropy_with_logits";
    TG_API_ENTER("tg_binary_cross_entropy_with_logits");
    tg_bce_opts o = opts ? *opts : (tg_bce_opts){ 0 };
    if (!inputs_ok(api, 2, (tg_tensor *[]){ x, y })) return NULL;
    tg_tensor *sp = softplus_neg(x);
    if (o.pos_weight) sp = tg_mul(sp, tg_add_scalar(tg_mul(tg_add_scalar(o.pos_weight, -1), y), 1));
    tg_tensor *l = tg_add(tg_mul(tg_add_scalar(tg_neg(y), 1), x), sp);
    if (o.weight) l = tg_mul(l, o.weight);
    return reduce(l, o.reduction, api);
}

/* ------------------------------------------------------------- distributions and embeddings */

tg_tensor *tg_kl_div(tg_tensor *input, tg_tensor *target, const tg_kl_div_opts *opts) {
    const char *api = "tg_kl_div";
    TG_API_ENTER("tg_kl_div");
    tg_kl_div_opts o = opts ? *opts : (tg_kl_div_opts){ 0 };
    if (!inputs_ok(api, 2, (tg_tensor *[]){ input, target })) return NULL;
    tg_tensor *l;
    if (o.log_target) l = tg_mul(tg_exp(target), tg_sub(target, input));
    else { /* xlogy(t, t) - t * input, with log taken of 1 where t is 0 (no NaN from the unused branch) */
        tg_tensor *pos = tg_gt(target, scalar_like(target, 0));
        tg_tensor *safe = tg_where(pos, target, scalar_like(target, 1));
        l = tg_sub(tg_mul(target, tg_log(safe)), tg_mul(target, input));
    }
    if (!o.batchmean) return reduce(l, o.reduction, api);
    int64_t n = tg_ndim(input) ? tg_size(input, 0) : 1;
    return tg_mul_scalar(tg_sum(l, TG_ALL, false), 1.0 / (double)n);
}

tg_tensor *tg_cosine_embedding_loss(tg_tensor *x1, tg_tensor *x2, tg_tensor *y, tg_reduction reduction,
                                    double margin) {
    const char *api = "tg_cosine_embedding_loss";
    TG_API_ENTER("tg_cosine_embedding_loss");
    if (!inputs_ok(api, 3, (tg_tensor *[]){ x1, x2, y }) || !check_reduction(api, reduction)) return NULL;
    char a[128], b[128], c[128];
    int nd = tg_ndim(x1);
    if ((nd != 1 && nd != 2) || tg_ndim(x2) != nd || tg_ndim(y) != nd - 1 || (nd == 2 && tg_size(y, 0) != tg_size(x1, 0)))
        return tg_error_null(TG_ERR_SHAPE, "%s: inputs %s, %s and target %s do not fit (N, D), (N, D), (N)", api,
                             tg_nn_shape_str(a, sizeof a, x1), tg_nn_shape_str(b, sizeof b, x2),
                             tg_nn_shape_str(c, sizeof c, y));
    const double eps = 1e-12; /* PyTorch's EPSILON on the squared norms */
    tg_axes last = TG_AXES(-1);
    tg_tensor *dot = tg_sum(tg_mul(x1, x2), last, false);
    tg_tensor *m1 = tg_add_scalar(tg_sum(tg_square(x1), last, false), eps);
    tg_tensor *m2 = tg_add_scalar(tg_sum(tg_square(x2), last, false), eps);
    tg_tensor *cos = tg_div(dot, tg_sqrt(tg_mul(m1, m2)));
    tg_tensor *zero = tg_zeros_like(cos);
    tg_tensor *pos = tg_where(tg_eq(y, scalar_like(y, 1)), tg_add_scalar(tg_neg(cos), 1), zero);
    tg_tensor *neg = tg_where(tg_eq(y, scalar_like(y, -1)), tg_clamp(tg_add_scalar(cos, -margin), 0, INFINITY), zero);
    return reduce(tg_add(pos, neg), reduction, api);
}

/* ------------------------------------------------------------- penalties */

static tg_tensor *penalty(const tg_module *m, const char *api, bool l1) {
    tg_named l;
    if (tg_module_parameters(m, true, &l) != TG_OK) return NULL;
    tg_tensor *acc = NULL;
    for (int i = 0; i < l.n; i++) {
        tg_tensor *p = l.tensors[i], *term = tg_sum(l1 ? tg_abs(p) : tg_square(p), TG_ALL, false);
        acc = acc ? tg_add(acc, term) : term;
        if (!acc) break;
    }
    if (!l.n) acc = tg_scalar(TG_F32, 0, tg_device_get("cpu"));
    tg_named_free(&l);
    return acc;
}

tg_tensor *tg_module_l1_penalty(const tg_module *m) {
    TG_API_ENTER("tg_module_l1_penalty");
    return penalty(m, "tg_module_l1_penalty", true);
}

tg_tensor *tg_module_l2_penalty(const tg_module *m) {
    TG_API_ENTER("tg_module_l2_penalty");
    return penalty(m, "tg_module_l2_penalty", false);
}
