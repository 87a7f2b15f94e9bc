/* Cross-entropy from logits, a promoted primitive: the forward runs log-softmax and the
 * gather of target log-probabilities unrecorded and records one node, whose rule is
 * (softmax - target) * weight. Composing it from recorded ops cost a dozen nodes per
 * call, which dominated small training steps. A label outside [0, C) that is not
 * ignore_index fails the gather, whose kernel reports the value: no extra read back. */
#include "lib/ops/ops.h"

static bool check(const char *name, const tg_tensor *logits, const tg_tensor *labels, const tg_cross_entropy_opts *opts) {
    char b1[128], b2[128];
    if (!tg_op_nonnull(name, "logits", logits) || !tg_op_nonnull(name, "labels", labels) || !tg_op_float(name, logits))
        return false;
    if (!tg_op_index(name, "labels", labels)) return false;
    if (tg_dev(labels) != tg_dev(logits)) {
        tg_error(TG_ERR_DEVICE, "%s: tensors on two devices: %s and %s (copy one with tg_to)", name,
                 tg_dev(logits)->name, tg_dev(labels)->name);
        return false;
    }
    bool fits = logits->ndim >= 2 && labels->ndim == logits->ndim - 1 && labels->shape[0] == logits->shape[0];
    for (int d = 2; d < logits->ndim && fits; d++) fits = labels->shape[d - 1] == logits->shape[d];
    if (!fits) {
        tg_error(TG_ERR_SHAPE, "%s: logits %s need labels of shape (N, d...) = logits without axis 1; got labels %s",
                 name, tg_shape_str(b1, logits->ndim, logits->shape), tg_shape_str(b2, labels->ndim, labels->shape));
        return false;
    }
    if (opts && (unsigned)opts->reduction > TG_REDUCTION_NONE) {
        tg_error(TG_ERR_INVALID, "%s: unknown reduction %d", name, (int)opts->reduction);
        return false;
    }
    return true;
}

tg_tensor *tg_cross_entropy_ex(tg_tensor *logits, tg_tensor *labels, const tg_cross_entropy_opts *opts) {
    TG_API_ENTER("tg_cross_entropy");
    const char *name = "tg_cross_entropy";
    if (!check(name, logits, labels, opts)) return NULL;
    tg_reduction red = opts ? opts->reduction : TG_REDUCTION_MEAN;
    int32_t ignore = opts && opts->use_ignore_index ? opts->ignore_index : -100;
    bool record = tg_should_record(1, &logits), prev = tg_set_grad_enabled(false);
    tg_device *dev = tg_dev(logits);

    tg_scope_begin(); /* intermediates die here; the node keeps what backward needs */
    tg_tensor *valid = tg_ne(labels, tg_scalar(labels->dtype, ignore, dev));
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
    if (r && scale && record) {
        tg_node *n = tg_record(TG_OP_CROSS_ENTROPY, r, 1, &logits);
        if (n) {
            tg_node_save(n, logits);
            tg_node_save(n, logp);
            tg_node_save(n, idx);
            tg_node_save(n, scale);
        } else {
            r = NULL;
        }
    }
    tg_keep(r);
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return r;
}

tg_tensor *tg_cross_entropy(tg_tensor *logits, tg_tensor *labels) {
    TG_API_ENTER("tg_cross_entropy");
    return tg_cross_entropy_ex(logits, labels, NULL);
}

/* d/dx = (softmax(x) - onehot(target)) * scale * g along axis 1. When the backward
 * records itself (create_graph), log-softmax is recomputed from the saved logits so the
 * result stays differentiable in them; otherwise the saved log-probabilities serve. */
tg_status tg_bw_cross_entropy(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    tg_tensor *x = tg_node_saved(n, 0), *logp = tg_node_saved(n, 1), *idx = tg_node_saved(n, 2),
              *scale = tg_node_saved(n, 3);
    if (!x || !logp || !idx || !scale) return tg_last_status();
    if (tg_is_grad_enabled()) logp = tg_log_softmax(x, 1);
    tg_tensor *gs = tg_unsqueeze(tg_mul(g, scale), 1); /* (N, 1, d...) */
    tg_tensor *target = tg_scatter_add(tg_zeros_like(x), 1, idx, gs);
    gin[0] = tg_sub(tg_mul(tg_exp(logp), gs), target);
    return gin[0] ? TG_OK : tg_last_status();
}
