/* In-place random fills (tg_uniform_, tg_normal_): ops of the table, so dispatch bumps
 * the tensor's version like any in-place update. The generator itself is graph's. */
#include <float.h>
#include <math.h>

#include "lib/ops/ops.h"

/* Float tensors only, and not one that requires grad while grad mode is on. */
static bool fillable(const char *name, const tg_tensor *t) {
    if (t->requires_grad && tg_is_grad_enabled()) {
        tg_error(TG_ERR_STATE, "%s: the tensor requires grad and grad mode is on", name);
        return false;
    }
    return true;
}

/* As PyTorch: lo <= hi (lo == hi fills lo), both finite and hi - lo finite in the
 * tensor's dtype, else the numbers would be inf or NaN. */
bool tg_uniform_shape(tg_op_call *c) {
    const tg_tensor *t = c->in[0];
    double lo = c->args.scalar.p0, hi = c->args.scalar.p1, limit = t->dtype == TG_F32 ? FLT_MAX : DBL_MAX;
    const char *in_f32 = limit == FLT_MAX ? " in f32" : "";
    if (!(fabs(lo) <= limit && fabs(hi) <= limit))
        tg_error(TG_ERR_INVALID, "tg_uniform_: lo and hi must be finite%s, got lo %g, hi %g", in_f32, lo, hi);
    else if (lo > hi)
        tg_error(TG_ERR_INVALID, "tg_uniform_: expected a [lo, hi) range, got lo %g > hi %g", lo, hi);
    else if (!(hi - lo <= limit))
        tg_error(TG_ERR_INVALID, "tg_uniform_: hi - lo overflows%s: lo %g, hi %g", limit == FLT_MAX ? " f32" : "", lo,
                 hi);
    else
        return fillable("tg_uniform_", t);
    return false;
}

bool tg_normal_shape(tg_op_call *c) {
    double mean = c->args.scalar.p0, std = c->args.scalar.p1;
    if (!isfinite(mean) || !isfinite(std))
        tg_error(TG_ERR_INVALID, "tg_normal_: mean and std must be finite, got mean %g, std %g", mean, std);
    else if (std < 0)
        tg_error(TG_ERR_INVALID, "tg_normal_: expected std >= 0, got %g", std);
    else
        return fillable("tg_normal_", c->in[0]);
    return false;
}

tg_status tg_random_launch(tg_op_call *c) {
    return tg_random_fill((tg_rng_kind)tg_ops[c->op].kind, c->in[0], c->args.scalar.p0, c->args.scalar.p1);
}

static tg_status fill(int op, tg_tensor *t, double p0, double p1) {
    tg_op_call *c = TG_OP_CALL(op, 1, t);
    c->args.scalar.p0 = p0;
    c->args.scalar.p1 = p1;
    return tg_op_run_status(c);
}

tg_status tg_uniform_(tg_tensor *t, double lo, double hi) { return fill(TG_OP_UNIFORM_, t, lo, hi); }
tg_status tg_normal_(tg_tensor *t, double mean, double std) { return fill(TG_OP_NORMAL_, t, mean, std); }
