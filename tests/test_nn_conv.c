/* The convolution, pooling, normalisation, dropout and resampling layers: each forward
 * against the functional op it wraps with the same weights, state_dict names, PyTorch's
 * default init, padding modes, train/eval behaviour, BatchNorm's running statistics, a
 * frozen BatchNorm under Adam, a gradcheck in f64 of every module, and the messages. */
#include "nn_check.h"

static double at(tg_tensor *t, int64_t i) {
    double *v = tg_test_values(t);
    double r = v ? v[i] : NAN;
    free(v);
    return r;
}

/* max |a - b| over every element; inf when the shapes differ or a is NULL. */
static const char *describe(tg_module *m, char *buf, size_t size) {
    buf[0] = 0;
    FILE *f = fmemopen(buf, size, "w");
    tg_module_fprint(f, m);
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------- gradcheck of a module */

typedef struct {
    tg_module *m;
    int n_params, n_inputs;
    const char *names[32];
    uint64_t seed; /* nonzero: reseeded before each forward (dropout's mask) */
} layer_ctx;

static tg_tensor *layer_fn(tg_tensor *const *in, void *vctx) {
    layer_ctx *c = vctx;
    if (c->seed) tg_manual_seed(c->seed);
    tg_tensor *y = tg_module_functional_call(c->m, c->n_params, (const char *const *)c->names, in + c->n_inputs,
                                             c->n_inputs, in);
    return tg_sum(tg_square(y), TG_ALL, false); /* non-linear in the output, so a wrong scale shows */
}

/* Gradchecks m (made f64 here) on x and every parameter, then frees m. */
static void check_module(int *tg_failed_, const char *what, tg_module *m, tg_tensor *x, uint64_t seed) {
    CHECK(m && tg_module_cast(m, TG_F64) == TG_OK);
    if (!m) return;
    tg_named p;
    CHECK(tg_module_parameters(m, true, &p) == TG_OK && p.n <= 31);
    layer_ctx c = { m, p.n, 1, { 0 }, seed };
    tg_tensor *in[32] = { x };
    for (int i = 0; i < p.n; i++) c.names[i] = p.names[i], in[1 + i] = p.tensors[i];
    tg_gradcheck_report rep;
    if (tg_gradcheck(layer_fn, &c, 1 + p.n, in, NULL, &rep) != TG_OK) FAIL_("%s: %s", what, rep.message);
    tg_named_free(&p);
    tg_module_free(m);
}

/* ------------------------------------------------------------- convolutions */

TEST(conv_layers_match_the_functional_ops) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *c2 = tg_conv2d_new(3, 4, 3, &(tg_conv_layer_opts){ .stride = 2, .padding = 1 }, dev);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 3, 7, 6), dev);
    tg_tensor *w = tg_module_get_param(c2, "weight"), *b = tg_module_get_param(c2, "bias");
    CHECK(has_shape(w, TG_SHAPE(4, 3, 3, 3)) && has_shape(b, TG_SHAPE(4)));
    tg_tensor *y = tg_module_forward(c2, x);
    CHECK(has_shape(y, TG_SHAPE(2, 4, 4, 3)));
    CHECK(max_diff(y, tg_conv2d(x, w, b, &(tg_conv2d_opts){ .stride = 2, .padding = 1 })) == 0);
    CHECK(names_are(c2, 2, (const char *[]){ "weight", "bias" }));
    CHECK(has_shape(tg_module_forward(c2, tg_randn(TG_F32, TG_SHAPE(3, 5, 5), dev)), TG_SHAPE(4, 3, 3))); /* unbatched */

    tg_module *g = tg_conv2d_new(4, 6, 3, &(tg_conv_layer_opts){ .groups = 2, .dilation = 2, .padding_kind = TG_CONV_PAD_SAME,
                                                                 .no_bias = true, .kernel_size_hw = { 3, 1 } }, dev);
    tg_tensor *xg = tg_randn(TG_F32, TG_SHAPE(1, 4, 6, 5), dev), *wg = tg_module_get_param(g, "weight");
    CHECK(has_shape(wg, TG_SHAPE(6, 2, 3, 1)) && names_are(g, 1, (const char *[]){ "weight" }));
    CHECK(max_diff(tg_module_forward(g, xg), tg_conv2d(xg, wg, NULL, &(tg_conv2d_opts){ .groups = 2, .dilation = 2,
                                                       .padding_kind = TG_CONV_PAD_SAME })) == 0);

    tg_module *c1 = tg_conv1d_new(2, 3, 4, &(tg_conv_layer_opts){ .stride = 2, .padding = 1 }, dev);
    tg_tensor *x1 = tg_randn(TG_F32, TG_SHAPE(2, 2, 9), dev), *w1 = tg_module_get_param(c1, "weight");
    CHECK(has_shape(w1, TG_SHAPE(3, 2, 4)));
    CHECK(max_diff(tg_module_forward(c1, x1), tg_conv1d(x1, w1, tg_module_get_param(c1, "bias"),
                                                        &(tg_conv1d_opts){ .stride = 2, .padding = 1 })) == 0);

    tg_module *ct = tg_conv_transpose2d_new(4, 6, 3, &(tg_conv_layer_opts){ .stride = 2, .padding = 1, .output_padding = 1,
                                                                            .groups = 2 }, dev);
    tg_tensor *xt = tg_randn(TG_F32, TG_SHAPE(2, 4, 3, 4), dev), *wt = tg_module_get_param(ct, "weight");
    CHECK(has_shape(wt, TG_SHAPE(4, 3, 3, 3))); /* (in, out/groups, kH, kW) */
    tg_tensor *yt = tg_module_forward(ct, xt);
    CHECK(has_shape(yt, TG_SHAPE(2, 6, 6, 8)));
    CHECK(max_diff(yt, tg_conv_transpose2d(xt, wt, tg_module_get_param(ct, "bias"), &(tg_conv_transpose2d_opts){
                                               .stride = 2, .padding = 1, .output_padding = 1, .groups = 2 })) == 0);
    char buf[512];
    CHECK(!strcmp(describe(c2, buf, sizeof buf), "Conv2d(3, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))\n"));
    CHECK(!strcmp(describe(g, buf, sizeof buf),
                  "Conv2d(4, 6, kernel_size=(3, 1), stride=(1, 1), padding=same, dilation=(2, 2), groups=2, bias=False)\n"));
    CHECK(!strcmp(describe(c1, buf, sizeof buf), "Conv1d(2, 3, kernel_size=(4,), stride=(2,), padding=(1,))\n"));
    CHECK(!strcmp(describe(ct, buf, sizeof buf), "ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), "
                                                 "padding=(1, 1), output_padding=(1, 1), groups=2)\n"));
    tg_module_free(c2), tg_module_free(g), tg_module_free(c1), tg_module_free(ct);
}

/* kaiming_uniform(a = sqrt 5) is U(+-1/sqrt(fan_in)), and so is the bias: bounds hold
 * and the variance is bound^2 / 3. */
TEST(conv_default_init_is_pytorchs) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(5);
    struct { tg_module *m; double fan_in; } cases[] = {
        { tg_conv2d_new(16, 64, 5, NULL, dev), 16 * 25 },
        { tg_conv2d_new(16, 64, 3, &(tg_conv_layer_opts){ .groups = 4 }, dev), 4 * 9 },
        { tg_conv1d_new(8, 32, 7, NULL, dev), 8 * 7 },
        { tg_conv_transpose2d_new(64, 16, 5, NULL, dev), 16 * 25 }, /* fan_in from (in, out, k, k): out * k * k */
    };
    for (int i = 0; i < 4; i++) {
        double bound = 1 / sqrt(cases[i].fan_in);
        tg_tensor *w = tg_module_get_param(cases[i].m, "weight"), *b = tg_module_get_param(cases[i].m, "bias");
        CHECK(tg_item(tg_max(tg_abs(w), TG_ALL, false)) <= bound && tg_item(tg_max(tg_abs(b), TG_ALL, false)) <= bound);
        CHECK_NEAR(tg_item(tg_var(w, TG_ALL, 0, false)) / (bound * bound / 3), 1, 0.1);
        tg_module_free(cases[i].m);
    }
}

/* A 1x1 identity kernel with padding 1 returns the padded input itself. */
TEST(conv_padding_modes) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_tensor *x = tg_from_f32((float[]){ 1, 2, 3, 4, 5, 6 }, TG_SHAPE(1, 1, 2, 3), dev);
    static const float want[3][20] = {
        { 5, 4, 5, 6, 5, 2, 1, 2, 3, 2, 5, 4, 5, 6, 5, 2, 1, 2, 3, 2 }, /* reflect */
        { 1, 1, 2, 3, 3, 1, 1, 2, 3, 3, 4, 4, 5, 6, 6, 4, 4, 5, 6, 6 }, /* replicate */
        { 6, 4, 5, 6, 4, 3, 1, 2, 3, 1, 6, 4, 5, 6, 4, 3, 1, 2, 3, 1 }, /* circular */
    };
    for (int mode = TG_PADDING_REFLECT; mode <= TG_PADDING_CIRCULAR; mode++) {
        tg_module *c = tg_conv2d_new(1, 1, 1, &(tg_conv_layer_opts){ .padding_hw = { 1, 1 }, .padding_mode = mode,
                                                                     .no_bias = true }, dev);
        CHECK(c && tg_init_ones_(tg_module_get_param(c, "weight")) == TG_OK);
        tg_tensor *y = tg_module_forward(c, x);
        CHECK(has_shape(y, TG_SHAPE(1, 1, 4, 5)));
        double *v = y ? tg_test_values(y) : NULL;
        for (int i = 0; v && i < 20; i++)
            if (v[i] != want[mode - 1][i]) FAIL_("mode %d element %d: %g, expected %g", mode, i, v[i], want[mode - 1][i]);
        free(v);
        tg_module_free(c);
    }
    /* "same" with reflect pads d (k - 1) split floor/ceil; the result keeps the input's size
     * and equals the explicit reflect padding with a zero-padding conv on the padded input. */
    tg_module *s = tg_conv1d_new(1, 2, 4, &(tg_conv_layer_opts){ .padding_kind = TG_CONV_PAD_SAME,
                                                                 .padding_mode = TG_PADDING_REFLECT }, dev);
    tg_tensor *x1 = tg_randn(TG_F32, TG_SHAPE(1, 1, 6), dev);
    tg_tensor *pad = tg_cat(3, (tg_tensor *[]){ tg_slice(x1, 2, 1, 2, 1), x1,
                                                tg_flip(tg_slice(x1, 2, 3, 5, 1), TG_AXES(2)) }, 2); /* left 1, right 2 */
    CHECK(max_diff(tg_module_forward(s, x1), tg_conv1d(pad, tg_module_get_param(s, "weight"), tg_module_get_param(s, "bias"),
                                                       NULL)) < 1e-6);
    char buf[256];
    CHECK(!strcmp(describe(s, buf, sizeof buf),
                  "Conv1d(1, 2, kernel_size=(4,), stride=(1,), padding=same, padding_mode=reflect)\n"));
    tg_module *big = tg_conv2d_new(1, 1, 3, &(tg_conv_layer_opts){ .padding = 2, .padding_mode = TG_PADDING_REFLECT }, dev);
    CHECK_ERROR(tg_module_forward(big, x), "tg_module_forward: Conv2d: padding_mode 'reflect' needs padding < the input's "
                                           "size: padding (2, 2) on an axis of 2");
    tg_module_free(s), tg_module_free(big);
}

/* ------------------------------------------------------------- pooling, dropout, upsample */

TEST(pooling_modules_match_the_functional_ops) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 3, 8, 7), dev);
    tg_max_pool2d_opts mo = { .kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true };
    tg_module *mp = tg_max_pool2d_new(&mo);
    CHECK(max_diff(tg_module_forward(mp, x), tg_max_pool2d(x, &mo)) == 0);
    tg_module *ap = tg_avg_pool2d_new(&(tg_avg_pool2d_opts){ .kernel_size = 2, .count_include_pad = TG_SOME(false) });
    CHECK(max_diff(tg_module_forward(ap, x), tg_avg_pool2d(x, &(tg_avg_pool2d_opts){ .kernel_size = 2 })) == 0);
    tg_module *aap = tg_adaptive_avg_pool2d_new(1, 1), *amp = tg_adaptive_max_pool2d_new(3, 2);
    CHECK(max_diff(tg_module_forward(aap, x), tg_mean(x, TG_AXES(2, 3), true)) < 1e-6);
    CHECK(max_diff(tg_module_forward(amp, x), tg_adaptive_max_pool2d(x, 3, 2)) == 0);
    /* MaxPool2d's indices feed MaxUnpool2d: the maxima come back at their places. */
    tg_module *p2 = tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2 });
    tg_module *up = tg_max_unpool2d_new(&(tg_max_unpool2d_opts){ .kernel_size = 2 });
    tg_tensor *x6 = tg_slice(x, 3, 0, 6, 1), *idx = NULL, *y = tg_max_pool2d_forward_with_indices(p2, x6, &idx);
    tg_tensor *u = tg_module_forward2(up, y, idx);
    CHECK(has_shape(u, TG_SHAPE(2, 3, 8, 6)));
    CHECK_NEAR(tg_item(tg_sum(u, TG_ALL, false)), tg_item(tg_sum(y, TG_ALL, false)), 1e-4);
    CHECK(max_diff(u, tg_max_unpool2d(y, idx, &(tg_max_unpool2d_opts){ .kernel_size = 2 })) == 0);
    char buf[256];
    CHECK(!strcmp(describe(mp, buf, sizeof buf), "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)\n"));
    CHECK(!strcmp(describe(aap, buf, sizeof buf), "AdaptiveAvgPool2d(output_size=1)\n"));
    CHECK(!strcmp(describe(up, buf, sizeof buf), "MaxUnpool2d(kernel_size=2, stride=2, padding=0)\n"));
    CHECK(names_are(mp, 0, NULL));
    CHECK_ERROR(tg_max_pool2d_new(NULL), "tg_max_pool2d_new: kernel_size is required (>= 1), got 0");
    CHECK_ERROR(tg_max_pool2d_forward_with_indices(ap, x, &idx), "tg_max_pool2d_forward_with_indices: the module is not a MaxPool2d");
    tg_module_free(mp), tg_module_free(ap), tg_module_free(aap), tg_module_free(amp), tg_module_free(p2), tg_module_free(up);
}

TEST(dropout_off_in_eval_and_upsample) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_add_scalar(tg_rand(TG_F32, TG_SHAPE(4, 8, 5, 5), dev), 1); /* no zeros of its own */
    tg_module *d = tg_dropout_new(0.5), *d2 = tg_dropout2d_new(0.5);
    tg_manual_seed(3);
    tg_tensor *y = tg_module_forward(d, x);
    tg_manual_seed(3);
    CHECK(max_diff(y, tg_dropout(x, 0.5, true)) == 0);
    double zeros = tg_item(tg_sum(tg_cast(tg_eq(y, tg_zeros(TG_F32, TG_SCALAR_SHAPE, dev)), TG_F32), TG_ALL, false));
    CHECK(zeros > 0.3 * 800 && zeros < 0.7 * 800);
    /* Dropout2d: each (n, c) plane is all zero or all 2x. */
    tg_tensor *y2 = tg_module_forward(d2, x);
    tg_tensor *plane_max = tg_max(tg_abs(y2), TG_AXES(2, 3), false), *plane_min = tg_min(tg_abs(y2), TG_AXES(2, 3), false);
    int dropped = 0;
    for (int i = 0; i < 32; i++) {
        CHECK((at(plane_max, i) == 0) == (at(plane_min, i) == 0));
        dropped += at(plane_max, i) == 0;
    }
    CHECK(dropped > 0 && dropped < 32);
    tg_module *seq = tg_sequential(d, d2);
    tg_module_eval(seq);
    CHECK(max_diff(tg_module_forward(seq, x), x) == 0);
    tg_module_train(seq, true);
    CHECK(max_diff(tg_module_forward(seq, x), x) > 0);
    tg_interpolate_opts uo = { .scale_factor = { 2 }, .mode = TG_INTERPOLATE_BILINEAR };
    tg_module *up = tg_upsample_new(&uo);
    CHECK(max_diff(tg_module_forward(up, x), tg_interpolate(x, &uo)) == 0);
    char buf[256];
    CHECK(!strcmp(describe(up, buf, sizeof buf), "Upsample(scale_factor=2.0, mode='bilinear')\n"));
    CHECK_ERROR(tg_dropout_new(1.5), "tg_dropout_new: dropout probability has to be between 0 and 1, but got 1.5");
    CHECK_ERROR(tg_upsample_new(NULL), "tg_upsample_new: exactly one of size and scale_factor must be given");
    tg_module_free(seq), tg_module_free(up);
}

/* ------------------------------------------------------------- BatchNorm */

TEST(batchnorm_matches_the_functional_op_and_names) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *bn = tg_batchnorm2d_new(3, NULL, dev);
    static const char *const names[] = { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" };
    CHECK(names_are(bn, 5, names));
    CHECK(tg_dtype_of(tg_module_get_buffer(bn, "num_batches_tracked")) == TG_I64);
    CHECK(tg_module_num_parameters(bn, false) == 6);
    tg_init_uniform_(tg_module_get_param(bn, "weight"), 0.5, 2);
    tg_init_uniform_(tg_module_get_param(bn, "bias"), -1, 1);
    tg_tensor *x = tg_add_scalar(tg_mul_scalar(tg_randn(TG_F32, TG_SHAPE(4, 3, 5, 5), dev), 2), 1);
    tg_tensor *rm = tg_zeros(TG_F32, TG_SHAPE(3), dev), *rv = tg_ones(TG_F32, TG_SHAPE(3), dev);
    tg_tensor *w = tg_module_get_param(bn, "weight"), *b = tg_module_get_param(bn, "bias");
    tg_tensor *y = tg_module_forward(bn, x);
    CHECK(max_diff(y, tg_batch_norm(x, rm, rv, w, b, &(tg_batch_norm_opts){ .training = true })) == 0);
    CHECK(max_diff(tg_module_get_buffer(bn, "running_mean"), rm) == 0 && max_diff(tg_module_get_buffer(bn, "running_var"), rv) == 0);
    CHECK(at(tg_module_get_buffer(bn, "running_mean"), 0) != 0);
    tg_module_eval(bn);
    CHECK(max_diff(tg_module_forward(bn, x), tg_batch_norm(x, rm, rv, w, b, NULL)) == 0);
    char buf[256];
    CHECK(!strcmp(describe(bn, buf, sizeof buf),
                  "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"));
    tg_module *b1 = tg_batchnorm1d_new(4, &(tg_batchnorm_opts){ .affine = TG_SOME(false), .eps = TG_SOME(1e-3) }, dev);
    CHECK(names_are(b1, 3, (const char *[]){ "running_mean", "running_var", "num_batches_tracked" }));
    tg_tensor *x1 = tg_randn(TG_F32, TG_SHAPE(6, 4, 3), dev);
    tg_tensor *rm1 = tg_zeros(TG_F32, TG_SHAPE(4), dev), *rv1 = tg_ones(TG_F32, TG_SHAPE(4), dev);
    CHECK(max_diff(tg_module_forward(b1, x1), tg_batch_norm(x1, rm1, rv1, NULL, NULL, &(tg_batch_norm_opts){
                                                                .training = true, .eps = TG_SOME(1e-3) })) == 0);
    CHECK(has_shape(tg_module_forward(b1, tg_randn(TG_F32, TG_SHAPE(5, 4), dev)), TG_SHAPE(5, 4)));
    CHECK(!strcmp(describe(b1, buf, sizeof buf),
                  "BatchNorm1d(4, eps=0.001, momentum=0.1, affine=False, track_running_stats=True)\n"));
    tg_module_free(bn), tg_module_free(b1);
}

/* Running statistics move only in training; num_batches_tracked counts those batches;
 * momentum None (cumulative) averages the batches equally; untracked BN has no buffers
 * and uses batch statistics in eval too. */
TEST(batchnorm_running_statistics_and_modes) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *bn = tg_batchnorm1d_new(2, &(tg_batchnorm_opts){ .cumulative = true }, dev);
    tg_tensor *xa = tg_from_f32((float[]){ 1, 10, 3, 20 }, TG_SHAPE(2, 2), dev);  /* means 2, 15; unbiased vars 2, 50 */
    tg_tensor *xb = tg_from_f32((float[]){ 5, 0, 9, 0 }, TG_SHAPE(2, 2), dev);    /* means 7, 0; vars 8, 0 */
    tg_module_forward(bn, xa);
    tg_module_forward(bn, xb);
    tg_tensor *rm = tg_module_get_buffer(bn, "running_mean"), *rv = tg_module_get_buffer(bn, "running_var");
    CHECK(tg_item(tg_module_get_buffer(bn, "num_batches_tracked")) == 2);
    CHECK_NEAR(at(rm, 0), 4.5, 1e-5);
    CHECK_NEAR(at(rm, 1), 7.5, 1e-5);
    CHECK_NEAR(at(rv, 0), 5, 1e-5);
    CHECK_NEAR(at(rv, 1), 25, 1e-5); /* the initial 1 has weight 0 */
    tg_module_eval(bn);
    tg_tensor *ye = tg_module_forward(bn, xa);
    CHECK(tg_item(tg_module_get_buffer(bn, "num_batches_tracked")) == 2 && at(rm, 0) == 4.5f);
    CHECK_NEAR(at(ye, 0), (1 - 4.5) / sqrt(5 + 1e-5), 1e-5);
    char buf[256];
    CHECK(!strcmp(describe(bn, buf, sizeof buf),
                  "BatchNorm1d(2, eps=1e-05, momentum=None, affine=True, track_running_stats=True)\n"));
    tg_module_free(bn);

    tg_module *em = tg_batchnorm1d_new(2, &(tg_batchnorm_opts){ .momentum = TG_SOME(0.5) }, dev);
    tg_module_forward(em, xa);
    CHECK_NEAR(at(tg_module_get_buffer(em, "running_mean"), 1), 7.5, 1e-5);
    CHECK_NEAR(at(tg_module_get_buffer(em, "running_var"), 1), 25.5, 1e-4);
    CHECK(tg_item(tg_module_get_buffer(em, "num_batches_tracked")) == 1);
    tg_module_free(em);

    tg_module *un = tg_batchnorm2d_new(2, &(tg_batchnorm_opts){ .track_running_stats = TG_SOME(false) }, dev);
    CHECK(names_are(un, 2, (const char *[]){ "weight", "bias" }));
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(3, 2, 2, 2), dev), *yt = tg_module_forward(un, x);
    tg_module_eval(un);
    CHECK(max_diff(tg_module_forward(un, x), yt) == 0);
    tg_module_free(un);
}

/* A frozen BatchNorm (requires_grad off, eval) inside a model: Adam steps the rest and
 * leaves its parameters and statistics bit for bit as they were. */
TEST(frozen_batchnorm_untouched_by_adam) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *net = tg_sequential(tg_conv2d_new(1, 2, 3, NULL, dev), tg_batchnorm2d_new(2, NULL, dev), tg_relu_new());
    tg_module *bn = tg_module_get(net, "1");
    tg_init_uniform_(tg_module_get_param(bn, "weight"), 0.5, 2);
    CHECK(tg_module_requires_grad_(bn, false) == TG_OK);
    tg_module_eval(bn);
    double *w0 = tg_test_values(tg_module_get_param(net, "1.weight")), *b0 = tg_test_values(tg_module_get_param(net, "1.bias"));
    double *c0 = tg_test_values(tg_module_get_param(net, "0.weight")), *m0 = tg_test_values(tg_module_get_buffer(net, "1.running_mean"));
    tg_named p;
    CHECK(tg_module_parameters(net, false, &p) == TG_OK && p.n == 4);
    tg_optim *opt = tg_adam_new(p.n, p.tensors, &(tg_adam_opts){ .lr = TG_SOME(0.1), .weight_decay = TG_SOME(0.1) });
    CHECK(opt);
    for (int step = 0; step < 2; step++) {
        tg_scope_begin();
        tg_optim_zero_grad(opt);
        tg_tensor *y = tg_module_forward(net, tg_randn(TG_F32, TG_SHAPE(2, 1, 5, 5), dev));
        CHECK(tg_backward(tg_sum(tg_square(y), TG_ALL, false)) == TG_OK);
        CHECK(tg_optim_step(opt) == TG_OK);
        tg_scope_end();
    }
    double *w1 = tg_test_values(tg_module_get_param(net, "1.weight")), *b1 = tg_test_values(tg_module_get_param(net, "1.bias"));
    double *c1 = tg_test_values(tg_module_get_param(net, "0.weight")), *m1 = tg_test_values(tg_module_get_buffer(net, "1.running_mean"));
    for (int i = 0; i < 2; i++) CHECK(w1[i] == w0[i] && b1[i] == b0[i] && m1[i] == m0[i]);
    CHECK(c1[0] != c0[0]);
    CHECK(!tg_grad(tg_module_get_param(net, "1.weight")));
    CHECK(tg_item(tg_module_get_buffer(net, "1.num_batches_tracked")) == 0);
    free(w0), free(b0), free(c0), free(m0), free(w1), free(b1), free(c1), free(m1);
    tg_optim_free(opt);
    tg_named_free(&p);
    tg_module_free(net);
}

/* ------------------------------------------------------------- LayerNorm, GroupNorm, LRN */

TEST(other_norms_match_the_functional_ops) {
    tg_device *dev = tg_test_device();
    tg_module *ln = tg_layer_norm_new(TG_SHAPE(4, 5), NULL, dev);
    tg_init_uniform_(tg_module_get_param(ln, "weight"), 0.5, 2);
    tg_init_uniform_(tg_module_get_param(ln, "bias"), -1, 1);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 3, 4, 5), dev);
    CHECK(has_shape(tg_module_get_param(ln, "weight"), TG_SHAPE(4, 5)));
    CHECK(max_diff(tg_module_forward(ln, x), tg_layer_norm(x, TG_SHAPE(4, 5), tg_module_get_param(ln, "weight"),
                                                           tg_module_get_param(ln, "bias"), 1e-5)) == 0);
    tg_module *gn = tg_group_norm_new(2, 4, &(tg_norm_opts){ .eps = TG_SOME(1e-3) }, dev);
    tg_tensor *xg = tg_randn(TG_F32, TG_SHAPE(2, 4, 3, 3), dev);
    CHECK(names_are(gn, 2, (const char *[]){ "weight", "bias" }));
    CHECK(max_diff(tg_module_forward(gn, xg), tg_group_norm(xg, 2, tg_module_get_param(gn, "weight"),
                                                            tg_module_get_param(gn, "bias"), 1e-3)) == 0);
    tg_module *lrn = tg_local_response_norm_new(3, &(tg_local_response_norm_opts){ .k = TG_SOME(2) });
    CHECK(max_diff(tg_module_forward(lrn, xg), tg_local_response_norm(xg, 3, 1e-4, 0.75, 2)) == 0);
    tg_module *plain = tg_layer_norm_new(TG_SHAPE(5), &(tg_norm_opts){ .elementwise_affine = TG_SOME(false) }, dev);
    CHECK(names_are(plain, 0, NULL));
    char buf[256];
    CHECK(!strcmp(describe(ln, buf, sizeof buf), "LayerNorm((4, 5), eps=1e-05, elementwise_affine=True)\n"));
    CHECK(!strcmp(describe(plain, buf, sizeof buf), "LayerNorm((5,), eps=1e-05, elementwise_affine=False)\n"));
    CHECK(!strcmp(describe(gn, buf, sizeof buf), "GroupNorm(2, 4, eps=0.001, affine=True)\n"));
    CHECK(!strcmp(describe(lrn, buf, sizeof buf), "LocalResponseNorm(3, alpha=0.0001, beta=0.75, k=2.0)\n"));
    CHECK_ERROR(tg_module_forward(ln, tg_randn(TG_F32, TG_SHAPE(2, 5, 4), dev)),
                "tg_module_forward: LayerNorm: input [2,5,4] does not end in normalized_shape (4, 5)");
    CHECK_ERROR(tg_module_forward(gn, x), "tg_module_forward: GroupNorm: input [2,3,4,5] has 3 channels, num_channels is 4");
    CHECK_ERROR(tg_group_norm_new(3, 4, NULL, dev),
                "tg_group_norm_new: num_channels must be divisible by num_groups (num_groups 3, num_channels 4)");
    tg_module_free(ln), tg_module_free(gn), tg_module_free(lrn), tg_module_free(plain);
}

/* ------------------------------------------------------------- gradchecks */

TEST(gradcheck_conv_layers) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F64);
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(2, 2, 5, 4), dev);
    check_module(tg_failed_, "Conv2d", tg_conv2d_new(2, 4, 3, &(tg_conv_layer_opts){ .stride = 2, .padding = 1, .groups = 2 }, dev), x, 0);
    for (int mode = TG_PADDING_REFLECT; mode <= TG_PADDING_CIRCULAR; mode++)
        check_module(tg_failed_, "Conv2d padding_mode",
                     tg_conv2d_new(2, 2, 3, &(tg_conv_layer_opts){ .padding_hw = { 1, 2 }, .padding_mode = mode, .no_bias = true }, dev),
                     x, 0);
    check_module(tg_failed_, "ConvTranspose2d",
                 tg_conv_transpose2d_new(2, 3, 3, &(tg_conv_layer_opts){ .stride = 2, .output_padding = 1 }, dev), x, 0);
    check_module(tg_failed_, "Conv1d", tg_conv1d_new(2, 3, 3, &(tg_conv_layer_opts){ .dilation = 2 }, dev),
                 tg_randn(TG_F64, TG_SHAPE(2, 2, 7), dev), 0);
}

TEST(gradcheck_pool_norm_dropout_upsample) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F64);
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(2, 4, 4, 4), dev);
    check_module(tg_failed_, "MaxPool2d", tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2 }), x, 0);
    check_module(tg_failed_, "AvgPool2d", tg_avg_pool2d_new(&(tg_avg_pool2d_opts){ .kernel_size = 3, .stride = 1, .padding = 1 }), x, 0);
    check_module(tg_failed_, "AdaptiveAvgPool2d", tg_adaptive_avg_pool2d_new(3, 2), x, 0);
    check_module(tg_failed_, "BatchNorm2d", tg_batchnorm2d_new(4, NULL, dev), x, 0);
    tg_module *ev = tg_batchnorm2d_new(4, NULL, dev);
    tg_module_eval(ev);
    check_module(tg_failed_, "BatchNorm2d eval", ev, x, 0);
    check_module(tg_failed_, "BatchNorm1d", tg_batchnorm1d_new(4, NULL, dev), tg_randn(TG_F64, TG_SHAPE(3, 4), dev), 0);
    check_module(tg_failed_, "LayerNorm", tg_layer_norm_new(TG_SHAPE(4, 4), NULL, dev), x, 0);
    check_module(tg_failed_, "GroupNorm", tg_group_norm_new(2, 4, NULL, dev), x, 0);
    check_module(tg_failed_, "LocalResponseNorm", tg_local_response_norm_new(2, NULL), x, 0);
    check_module(tg_failed_, "Dropout", tg_dropout_new(0.3), x, 11);
    check_module(tg_failed_, "Dropout2d", tg_dropout2d_new(0.3), x, 11);
    check_module(tg_failed_, "Upsample", tg_upsample_new(&(tg_interpolate_opts){ .size = { 6, 5 }, .mode = TG_INTERPOLATE_BILINEAR }), x, 0);
}

/* ------------------------------------------------------------- messages */

TEST(error_messages) {
    tg_device *dev = tg_test_device();
    tg_module *c = tg_conv2d_new(3, 4, 3, NULL, dev);
    CHECK_ERROR(tg_module_forward(c, tg_zeros(TG_F32, TG_SHAPE(2, 5, 8, 8), dev)),
                "tg_module_forward: Conv2d: input [2,5,8,8] has 5 channels, in_channels is 3");
    CHECK_ERROR(tg_module_forward(c, tg_zeros(TG_F32, TG_SHAPE(8, 8), dev)),
                "tg_module_forward: Conv2d: input [8,8] has 2 axes, expected 3 or 4 (N, C, H, W)");
    CHECK_ERROR(tg_module_forward(c, tg_zeros(TG_F64, TG_SHAPE(1, 3, 8, 8), dev)),
                "tg_module_forward: Conv2d: input is f64, the weight f32 (tg_module_cast converts a module)");
    tg_module_free(c);
    tg_module *net = tg_sequential(tg_conv2d_new(1, 5, 3, NULL, dev), tg_conv2d_new(3, 4, 3, NULL, dev));
    if (!missing_kernel(TG_F32)) /* the first conv must run */
        CHECK_ERROR(tg_module_forward(net, tg_zeros(TG_F32, TG_SHAPE(1, 1, 8, 8), dev)),
                    "tg_module_forward: Conv2d '1': input [1,5,6,6] has 5 channels, in_channels is 3");
    tg_module_free(net);
    tg_module *c1 = tg_conv1d_new(2, 2, 3, NULL, dev);
    CHECK_ERROR(tg_module_forward(c1, tg_zeros(TG_F32, TG_SHAPE(1, 2, 3, 3), dev)),
                "tg_module_forward: Conv1d: input [1,2,3,3] has 4 axes, expected 2 or 3 (N, C, L)");
    tg_module_free(c1);
    tg_module *bn = tg_batchnorm2d_new(3, NULL, dev);
    CHECK_ERROR(tg_module_forward(bn, tg_zeros(TG_F32, TG_SHAPE(2, 4, 2, 2), dev)),
                "tg_module_forward: BatchNorm2d: input [2,4,2,2] has 4 channels, num_features is 3");
    CHECK_ERROR(tg_module_forward(bn, tg_zeros(TG_F32, TG_SHAPE(2, 3), dev)),
                "tg_module_forward: BatchNorm2d: input [2,3] has 2 axes, expected 4 (N, C, H, W)");
    tg_module_free(bn);
    CHECK_ERROR(tg_conv2d_new(3, 4, 3, &(tg_conv_layer_opts){ .groups = 2 }, dev),
                "tg_conv2d_new: in_channels must be divisible by groups (in_channels 3, out_channels 4, kernel_size 3, groups 2)");
    CHECK_ERROR(tg_conv2d_new(4, 4, 3, &(tg_conv_layer_opts){ .stride = 2, .padding_kind = TG_CONV_PAD_SAME }, dev),
                "tg_conv2d_new: padding='same' is not supported for strided convolutions (in_channels 4, out_channels 4, "
                "kernel_size 3, groups 1)");
    CHECK_ERROR(tg_conv_transpose2d_new(4, 4, 3, &(tg_conv_layer_opts){ .padding_mode = TG_PADDING_REFLECT }, dev),
                "tg_conv_transpose2d_new: only padding_mode zeros and explicit padding are supported for ConvTranspose2d "
                "(in_channels 4, out_channels 4, kernel_size 3, groups 1)");
    CHECK_ERROR(tg_conv1d_new(4, 4, 3, &(tg_conv_layer_opts){ .stride_hw = { 1, 2 } }, dev),
                "tg_conv1d_new: the _hw pairs are for 2-D layers only (in_channels 4, out_channels 4, kernel_size 3, groups 1)");
    CHECK_ERROR(tg_batchnorm2d_new(0, NULL, dev),
                "tg_batchnorm2d_new: num_features must be >= 1, eps >= 0 and momentum in [0, 1], got 0, 1e-05 and 0.1");
}

TG_TEST_MAIN(&tg_case_conv_layers_match_the_functional_ops, &tg_case_conv_default_init_is_pytorchs,
             &tg_case_conv_padding_modes, &tg_case_pooling_modules_match_the_functional_ops,
             &tg_case_dropout_off_in_eval_and_upsample, &tg_case_batchnorm_matches_the_functional_op_and_names,
             &tg_case_batchnorm_running_statistics_and_modes, &tg_case_frozen_batchnorm_untouched_by_adam,
             &tg_case_other_norms_match_the_functional_ops, &tg_case_gradcheck_conv_layers,
             &tg_case_gradcheck_pool_norm_dropout_upsample, &tg_case_error_messages)
