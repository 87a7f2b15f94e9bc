/* Dropout as PyTorch's CPU path computes it: x * (bernoulli(1 - p) / (1 - p)), the mask
 * drawn from the Philox generator (tg_bernoulli), so every device drops the same units
 * under one seed. Composed: the backward is the product rule, second order included. */
#include <math.h>

#include "lib/ops/ops.h"

static bool check(const char *name, tg_tensor *x, double p) {
    if (!tg_op_nonnull(name, "x", x) || !tg_op_float(name, x)) return false;
    if (!(p >= 0 && p <= 1)) {
        tg_error(TG_ERR_INVALID, "%s: p must be in [0, 1], got %g", name, p);
        return false;
    }
    return true;
}

/* noise_shape: x's shape, or 1 on the axes a whole slice is dropped along. As PyTorch:
 * p == 0 or eval gives x (here a new view of it) and draws nothing; p == 1 gives x * 0
 * (NaN stays NaN). */
static tg_tensor *dropout(tg_tensor *x, double p, bool training, tg_shape noise_shape) {
    if (!training || p == 0 || tg_numel(x) == 0) return tg_reshape(x, tg_shape_of(x));
    if (p == 1) return tg_mul(x, tg_scalar(x->dtype, 0, tg_dev(x)));
    tg_tensor *keep = tg_bernoulli(x->dtype, noise_shape, 1 - p, tg_dev(x));
    return tg_mul(x, tg_div(keep, tg_scalar(x->dtype, 1 - p, tg_dev(x))));
}

tg_tensor *tg_dropout(tg_tensor *x, double p, bool training) {
    TG_API_ENTER("tg_dropout");
    if (!check("tg_dropout", x, p)) return NULL;
    return dropout(x, p, training, tg_shape_of(x));
}

/* One draw per (n, c): (N, C, 1, 1), or (C, 1, 1) for an unbatched (C, H, W) input. */
tg_tensor *tg_dropout2d(tg_tensor *x, double p, bool training) {
    TG_API_ENTER("tg_dropout2d");
    if (!check("tg_dropout2d", x, p)) return NULL;
    if (x->ndim != 3 && x->ndim != 4)
        return tg_error_null(TG_ERR_SHAPE, "tg_dropout2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got %d "
                             "dimensions", x->ndim);
    tg_shape s = tg_shape_of(x);
    s.dims[s.ndim - 1] = s.dims[s.ndim - 2] = 1;
    return dropout(x, p, training, s);
}
