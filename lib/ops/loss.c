/* Cross-entropy from logits, composed of log-softmax (a primitive, numerically stable)
 * and a gather of the target log-probabilities. */
#include "lib/ops/ops.h"

tg_tensor *tg_cross_entropy_ex(tg_tensor *logits, tg_tensor *labels, const tg_cross_entropy_opts *opts) {
    const char *name = "tg_cross_entropy";
    char b1[128], b2[128];
    if (!tg_op_nonnull(name, "logits", logits) || !tg_op_nonnull(name, "labels", labels) || !tg_op_float(name, logits))
        return NULL;
    if (labels->dtype != TG_I32)
        return tg_error_null(TG_ERR_DTYPE, "%s: labels must be i32, got %s", name, tg_dtype_name(labels->dtype));
    bool fits = logits->ndim >= 2 && labels->ndim == logits->ndim - 1 && labels->shape[0] == logits->shape[0];
    for (int d = 2; d < logits->ndim && fits; d++) fits = labels->shape[d - 1] == logits->shape[d];
    if (!fits)
        return tg_error_null(TG_ERR_SHAPE, "%s: logits %s need labels of shape (N, d...) = logits without axis 1; "
                             "got labels %s", name, tg_shape_str(b1, logits->ndim, logits->shape),
                             tg_shape_str(b2, labels->ndim, labels->shape));
    tg_reduction red = opts ? opts->reduction : TG_REDUCTION_MEAN;
    if ((unsigned)red > TG_REDUCTION_NONE) return tg_error_null(TG_ERR_INVALID, "%s: unknown reduction %d", name, (int)red);
    int32_t ignore = opts && opts->use_ignore_index ? opts->ignore_index : -100;

    tg_scope_begin(); /* intermediates die here; the graph keeps what backward needs */
    tg_device *dev = tg_dev(logits);
    tg_tensor *valid = tg_ne(labels, tg_scalar(TG_I32, ignore, dev));
    tg_tensor *safe = tg_where(valid, labels, tg_scalar(TG_I32, 0, dev));
    tg_tensor *picked = tg_gather(tg_log_softmax(logits, 1), 1, tg_unsqueeze(safe, 1));
    if (!picked) tg_error_reprefix(name);
    tg_tensor *w = tg_cast(valid, logits->dtype);
    tg_tensor *nll = tg_mul(tg_neg(tg_squeeze(picked, 1)), w);
    tg_tensor *r = red == TG_REDUCTION_NONE ? nll
                 : red == TG_REDUCTION_SUM  ? tg_sum(nll, TG_ALL, false)
                                            : tg_div(tg_sum(nll, TG_ALL, false), tg_sum(w, TG_ALL, false));
    tg_keep(r);
    tg_scope_end();
    return r;
}

tg_tensor *tg_cross_entropy(tg_tensor *logits, tg_tensor *labels) {
    return tg_cross_entropy_ex(logits, labels, NULL);
}
