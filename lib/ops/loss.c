/* Cross-entropy from logits, a promoted primitive: the forward runs log-softmax and the
 * gather of target log-probabilities unrecorded and records one node, whose rule is
 * (softmax - target) * weight. Composing it from recorded ops cost a dozen nodes per
 * call, which dominated small training steps. A label outside [0, C) that is not
 * ignore_index fails the gather, whose kernel reports the value: no extra read back. */
#include <string.h>

#include "lib/ops/ops.h"

/* Inputs (logits, labels); the output is 0-d, or labels' shape with no reduction. */
bool tg_cross_entropy_shape(tg_op_call *c) {
    const char *name = "tg_cross_entropy";
    const tg_tensor *logits = c->in[0], *labels = c->in[1];
    char b1[128], b2[128];
    if (!tg_op_index(name, "labels", labels)) return false;
    bool fits = logits->ndim >= 2 && labels->ndim == logits->ndim - 1 && labels->shape[0] == logits->shape[0];
    for (int d = 2; d < logits->ndim && fits; d++) fits = labels->shape[d - 1] == logits->shape[d];
    if (!fits) {
        tg_error(TG_ERR_SHAPE, "%s: logits %s need labels of shape (N, d...) = logits without axis 1; got labels %s",
                 name, tg_shape_str(b1, logits->ndim, logits->shape), tg_shape_str(b2, labels->ndim, labels->shape));
        return false;
    }
    tg_reduction red = c->args.cross_entropy.reduction;
    if ((unsigned)red > TG_REDUCTION_NONE) {
        tg_error(TG_ERR_INVALID, "%s: unknown reduction %d", name, (int)red);
        return false;
    }
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = logits->dtype;
    s->ndim = red == TG_REDUCTION_NONE ? labels->ndim : 0;
    memcpy(s->shape, labels->shape, sizeof s->shape);
    return true;
}

/* The forward from unrecorded ops in a scope of its own; what backward needs goes to
 * the node as the call's extra saves: logp, the target index and each target's scale. */
tg_status tg_cross_entropy_launch(tg_op_call *c) {
    tg_tensor *logits = c->in[0], *labels = c->in[1];
    tg_reduction red = c->args.cross_entropy.reduction;
    tg_device *dev = tg_dev(logits);
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    tg_tensor *valid = tg_ne(labels, tg_scalar(labels->dtype, (double)c->args.cross_entropy.ignore_index, dev));
    tg_tensor *idx = tg_unsqueeze(tg_where(valid, labels, tg_scalar(labels->dtype, 0, dev)), 1); /* ignored: class 0 */
    tg_tensor *logp = tg_log_softmax(logits, 1);
    tg_tensor *picked = tg_gather(logp, 1, idx);
    tg_tensor *w = tg_cast(valid, logits->dtype); /* 1 for counted targets, 0 for ignored */
    tg_tensor *nll = tg_mul(tg_neg(tg_squeeze(picked, 1)), w);
    tg_tensor *count = red == TG_REDUCTION_MEAN ? tg_sum(w, TG_ALL, false) : NULL;
    tg_tensor *r = red == TG_REDUCTION_NONE ? nll
                 : red == TG_REDUCTION_SUM  ? tg_sum(nll, TG_ALL, false)
                                            : tg_div(tg_sum(nll, TG_ALL, false), count);
    /* d loss / d logp at the target, per target: the weight each gradient is scaled by */
    tg_tensor *scale = red == TG_REDUCTION_MEAN ? tg_div(w, count) : w;
    tg_status st = r && scale ? dev->be->copy(c->out[0], r) : tg_last_status();
    if (st == TG_OK) {
        tg_tensor *keep[3] = { logp, idx, scale };
        for (int k = 0; k < 3; k++) tg_tensor_incref(c->extra_save[c->n_extra++] = keep[k]);
    }
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return st;
}

tg_tensor *tg_cross_entropy_ex(tg_tensor *logits, tg_tensor *labels, const tg_cross_entropy_opts *opts) {
    tg_op_call *c = TG_OP_CALL(TG_OP_CROSS_ENTROPY, 2, logits, labels);
    c->args.cross_entropy.reduction = opts ? opts->reduction : TG_REDUCTION_MEAN;
    c->args.cross_entropy.ignore_index = opts && opts->ignore_index.set ? opts->ignore_index.value : -100;
    return tg_op_run(c);
}

tg_tensor *tg_cross_entropy(tg_tensor *logits, tg_tensor *labels) {
    TG_API_ENTER("tg_cross_entropy");
    return tg_cross_entropy_ex(logits, labels, NULL);
}

/* d/dx = (softmax(x) - onehot(target)) * scale * g along axis 1. When the backward
 * records itself (create_graph), log-softmax is recomputed from the saved logits so the
 * result stays differentiable in them; otherwise the saved log-probabilities serve. */
tg_status tg_bw_cross_entropy(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *g = gout[0], *x = tg_node_saved(n, 0), *logp = tg_node_saved(n, 1), *idx = tg_node_saved(n, 2),
              *scale = tg_node_saved(n, 3);
    if (!x || !logp || !idx || !scale) return tg_last_status();
    if (tg_is_grad_enabled()) logp = tg_log_softmax(x, 1);
    tg_tensor *gs = tg_unsqueeze(tg_mul(g, scale), 1); /* (N, 1, d...) */
    tg_tensor *target = tg_scatter_add(tg_zeros_like(x), 1, idx, gs);
    gin[0] = tg_sub(tg_mul(tg_exp(logp), gs), target);
    return gin[0] ? TG_OK : tg_last_status();
}
