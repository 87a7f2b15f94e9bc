/* Checks the nn module tests share: shapes, the largest difference of two tensors,
 * state_dict names in order, and whether the device runs the conv-network kernels. */
#ifndef TG_TEST_NN_CHECK_H
#define TG_TEST_NN_CHECK_H

#include "harness.h"

static bool has_shape(tg_tensor *t, tg_shape s) {
    if (!t || tg_ndim(t) != s.ndim) return false;
    for (int i = 0; i < s.ndim; i++)
        if (tg_size(t, i) != s.dims[i]) return false;
    return true;
}


/* The largest |a - b| read back on the host; inf when the shapes differ. */
static double max_diff(tg_tensor *a, tg_tensor *b) {
    if (!a || !b || tg_numel(a) != tg_numel(b) || tg_ndim(a) != tg_ndim(b)) return INFINITY;
    for (int i = 0; i < tg_ndim(a); i++)
        if (tg_size(a, i) != tg_size(b, i)) return INFINITY;
    double *u = tg_test_values(a), *v = tg_test_values(b), m = 0;
    for (int64_t i = 0; u && v && i < tg_numel(a); i++) m = fmax(m, fabs(u[i] - v[i]));
    if (!u || !v) m = INFINITY;
    free(u), free(v);
    return m;
}


/* The module's state_dict names are want[0..n), in order; says what differs. */
static bool names_are(tg_module *m, int n, const char *const *want) {
    tg_state_dict *sd = tg_module_state_dict(m);
    bool ok = sd && tg_state_dict_size(sd) == n;
    for (int i = 0; ok && i < n; i++)
        if (strcmp(tg_state_dict_name(sd, i), want[i])) {
            fprintf(stderr, "  name %d: %s, expected %s\n", i, tg_state_dict_name(sd, i), want[i]);
            ok = false;
        }
    if (sd && tg_state_dict_size(sd) != n) fprintf(stderr, "  %d names, expected %d\n", tg_state_dict_size(sd), n);
    tg_state_dict_free(sd);
    return ok;
}


/* NULL when the device under test runs conv, pooling and batch norm (forward and
 * backward) in dtype, else its message: a device without these kernels makes the
 * cases that need them skip rather than fail. */
static const char *missing_kernel(tg_dtype dt) {
    static char why[256];
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(tg_ones(dt, TG_SHAPE(2, 1, 2, 2), dev)), *w = tg_ones(dt, TG_SHAPE(1, 1, 1, 1), dev);
    tg_clear_error();
    tg_tensor *y = tg_add(tg_conv2d(x, w, NULL, NULL), tg_conv_transpose2d(x, w, NULL, NULL));
    y = tg_add(tg_max_pool2d(y, &(tg_max_pool2d_opts){ .kernel_size = 2 }), tg_adaptive_avg_pool2d(y, 1, 1));
    y = tg_batch_norm(y, NULL, NULL, NULL, NULL, &(tg_batch_norm_opts){ .training = true });
    if (y && tg_backward(tg_sum(y, TG_ALL, false)) == TG_OK) return NULL;
    snprintf(why, sizeof why, "%s", *tg_last_error() ? tg_last_error() : "a conv, pool or batch norm failed");
    tg_clear_error();
    return why;
}
#define NEED_KERNELS(dt)                           \
    do {                                           \
        const char *why_ = missing_kernel(dt);     \
        if (why_) SKIP("%s", why_);                \
    } while (0)


#endif
