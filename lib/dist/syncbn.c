/* SyncBatchNorm: BatchNorm whose training statistics cover the global batch. One
 * differentiable all-reduce (tg_dist_all_reduce) of per-channel sum, sum of squares
 * and count gives the mean and variance; the rest is composed of ops, so autograd
 * gives the backward, whose all-reduce sums the statistics' gradients over ranks. */
#include <math.h>

#include "lib/dist/dist-impl.h"
#include "lib/graph/error.h"

/* BatchNorm's state: weight, bias (C) (NULL without affine); running_mean, running_var
 * (C) and num_batches_tracked (i64, 0-d) (NULL untracked). */
typedef struct {
    tg_tensor *weight, *bias, *running_mean, *running_var, *num_batches_tracked;
    double eps, momentum;
    bool cumulative;
    int64_t c;
} syncbn;

/* Counts this batch (num_batches_tracked += 1) and returns its weight in the running
 * average: momentum, or 1 / batches seen when cumulative; -1 on error. */
static double count_batch(syncbn *b) {
    tg_tensor *nbt = b->num_batches_tracked;
    bool prev = tg_set_grad_enabled(false);
    double f = tg_add_(nbt, tg_scalar(TG_I64, 1, tg_device_of(nbt))) != TG_OK ? -1
               : b->cumulative ? 1 / tg_item(tg_cast(nbt, TG_F64)) : b->momentum;
    tg_set_grad_enabled(prev);
    return isnan(f) ? -1 : f;
}

/* (C) -> (1, C, 1, ...) to broadcast over x of nd axes. */
static tg_tensor *per_channel(tg_tensor *v, int nd, int64_t c) {
    tg_shape s = { .ndim = nd };
    for (int k = 0; k < nd; k++) s.dims[k] = k == 1 ? c : 1;
    return tg_reshape(v, s);
}

/* running = (1 - f) running + f value, in place, no grad. */
static tg_status blend_(tg_tensor *running, tg_tensor *value, double f) {
    bool prev = tg_set_grad_enabled(false);
    tg_status st = tg_copy_(running, tg_add(tg_mul_scalar(running, 1 - f), tg_mul_scalar(tg_detach(value), f)));
    tg_set_grad_enabled(prev);
    return st;
}

/* Training across ranks: global statistics, composed. x (N, C, *). */
static tg_tensor *sync_forward(syncbn *b, tg_tensor *x, double factor) {
    int nd = tg_ndim(x);
    int64_t c = b->c;
    tg_axes ax = { .n = nd - 1 };
    for (int k = 0, j = 0; k < nd; k++)
        if (k != 1) ax.axes[j++] = k;
    tg_tensor *parts[3] = { tg_sum(x, ax, false), tg_sum(tg_square(x), ax, false),
                            tg_full(tg_dtype_of(x), TG_SHAPE(1), (double)(tg_numel(x) / c), tg_device_of(x)) };
    tg_tensor *g = tg_dist_all_reduce(tg_cat(3, parts, 0)); /* (2C + 1): sum, sum of squares, count */
    tg_tensor *n = tg_slice(g, 0, 2 * c, 2 * c + 1, 1);
    tg_tensor *mean = tg_div(tg_slice(g, 0, 0, c, 1), n);
    tg_tensor *var = tg_sub(tg_div(tg_slice(g, 0, c, 2 * c, 1), n), tg_square(mean)); /* biased */
    tg_tensor *y = tg_mul(tg_sub(x, per_channel(mean, nd, c)),
                          per_channel(tg_rsqrt(tg_add_scalar(var, b->eps)), nd, c));
    if (b->weight) y = tg_add(tg_mul(y, per_channel(b->weight, nd, c)), per_channel(b->bias, nd, c));
    if (!y) return NULL;
    if (b->running_mean) {
        double count = tg_item(n);
        if (!(count > 1))
            return tg_error_null(TG_ERR_SHAPE, "tg_module_forward: SyncBatchNorm needs more than one value per "
                                 "channel over all ranks in training, got %g", count);
        if (blend_(b->running_mean, mean, factor) != TG_OK ||
            blend_(b->running_var, tg_mul_scalar(var, count / (count - 1)), factor) != TG_OK)
            return NULL;
    }
    return y;
}

static tg_tensor *syncbn_forward(tg_module *self, tg_tensor *x) {
    syncbn *b = tg_module_data(self);
    if (!x) return NULL;
    int nd = tg_ndim(x);
    if (nd < 2)
        return tg_error_null(TG_ERR_SHAPE, "tg_module_forward: SyncBatchNorm: input has %d axes, expected at least 2 "
                             "(N, C, *)", nd);
    if (tg_size(x, 1) != b->c)
        return tg_error_null(TG_ERR_SHAPE, "tg_module_forward: SyncBatchNorm: input has %lld channels, num_features "
                             "is %lld", (long long)tg_size(x, 1), (long long)b->c);
    bool training = tg_module_is_training(self), track = b->running_mean != NULL;
    double factor = b->momentum;
    if (training && track && (factor = count_batch(b)) < 0) return NULL;
    if (training && tg_dist_world_size() > 1) return sync_forward(b, x, factor);
    /* One rank, or eval: BatchNorm itself (the cumulative factor is already applied). */
    return tg_batch_norm(x, b->running_mean, b->running_var, b->weight, b->bias,
                         &(tg_batch_norm_opts){ .training = training || !track, .momentum = TG_SOME(factor),
                                                .eps = TG_SOME(b->eps) });
}

static int syncbn_describe(const tg_module *self, char *buf, size_t size) {
    const syncbn *b = tg_module_data(self);
    char m[32];
    snprintf(m, sizeof m, "%g", b->momentum);
    return snprintf(buf, size, "%lld, eps=%g, momentum=%s, affine=%s, track_running_stats=%s", (long long)b->c, b->eps,
                    b->cumulative ? "None" : m, b->weight ? "True" : "False", b->running_mean ? "True" : "False");
}

static const tg_module_type syncbn_type = { "SyncBatchNorm", sizeof(syncbn), syncbn_forward, NULL, NULL,
                                            syncbn_describe };

tg_module *tg_sync_batchnorm_new(int64_t num_features, const tg_sync_batchnorm_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_sync_batchnorm_new");
    tg_sync_batchnorm_opts o = opts ? *opts : (tg_sync_batchnorm_opts){ 0 };
    double eps = o.eps.set ? o.eps.value : 1e-5, momentum = o.momentum.set ? o.momentum.value : 0.1;
    int64_t c = num_features;
    if (c < 1 || !(eps >= 0) || !(momentum >= 0 && momentum <= 1))
        return tg_error_null(TG_ERR_INVALID, "tg_sync_batchnorm_new: num_features must be >= 1, eps >= 0 and momentum "
                             "in [0, 1], got %lld, %g and %g", (long long)c, eps, momentum);
    tg_module *self = tg_module_new(&syncbn_type);
    if (!self) return NULL;
    syncbn *b = tg_module_data(self);
    *b = (syncbn){ .c = c, .eps = eps, .momentum = momentum, .cumulative = o.cumulative };
    if (!o.no_affine) {
        tg_module_param(self, "weight", &b->weight, tg_ones(TG_F32, TG_SHAPE(c), dev));
        tg_module_param(self, "bias", &b->bias, tg_zeros(TG_F32, TG_SHAPE(c), dev));
    }
    if (!o.no_track_running_stats) {
        tg_module_buffer(self, "running_mean", &b->running_mean, tg_zeros(TG_F32, TG_SHAPE(c), dev));
        tg_module_buffer(self, "running_var", &b->running_var, tg_ones(TG_F32, TG_SHAPE(c), dev));
        tg_module_buffer(self, "num_batches_tracked", &b->num_batches_tracked, tg_scalar(TG_I64, 0, dev));
    }
    return tg_module_done(self);
}
