/* The module system and the layers: names, state dicts, modes, freezing, moving,
 * replacing a child, forward hooks, every layer gradchecked in f64 on its input and
 * parameters, and the messages a user meets. */
#include "harness.h"

static double at(tg_tensor *t, int64_t i) {
    double *v = tg_test_values(t);
    double r = v ? v[i] : NAN;
    free(v);
    return r;
}

/* ------------------------------------------------------------- a model of one's own */

/* A BatchNorm1d composed of ops, the way a norm layer is written: two parameters and
 * three buffers, running statistics updated in place in training. */
typedef struct {
    tg_tensor *weight, *bias, *running_mean, *running_var, *num_batches_tracked;
} toy_bn;

static tg_tensor *toy_bn_forward(tg_module *self, tg_tensor *x) { /* x (N, C) */
    toy_bn *b = tg_module_data(self);
    tg_tensor *mean, *var;
    if (tg_module_is_training(self)) {
        mean = tg_mean(x, TG_AXES(0), false);
        var = tg_var(x, TG_AXES(0), 0, false);
        bool prev = tg_set_grad_enabled(false);
        tg_tensor *unbiased = tg_var(x, TG_AXES(0), 1, false);
        tg_copy_(b->running_mean, tg_add(tg_mul_scalar(b->running_mean, 0.9), tg_mul_scalar(mean, 0.1)));
        tg_copy_(b->running_var, tg_add(tg_mul_scalar(b->running_var, 0.9), tg_mul_scalar(unbiased, 0.1)));
        tg_add_(b->num_batches_tracked, tg_from_i64((int64_t[]){ 1 }, TG_SCALAR_SHAPE, tg_device_of(x)));
        tg_set_grad_enabled(prev);
    } else {
        mean = b->running_mean;
        var = b->running_var;
    }
    tg_tensor *xh = tg_mul(tg_sub(x, mean), tg_rsqrt(tg_add_scalar(var, 1e-5)));
    return tg_add(tg_mul(xh, b->weight), b->bias);
}

static const tg_module_type toy_bn_type = { "BatchNorm1d", sizeof(toy_bn), toy_bn_forward, NULL, NULL, NULL };

static tg_module *toy_bn_new(int64_t c, tg_device *dev) {
    tg_module *self = tg_module_new(&toy_bn_type);
    if (!self) return NULL;
    toy_bn *b = tg_module_data(self);
    tg_module_param(self, "weight", &b->weight, tg_ones(TG_F32, TG_SHAPE(c), dev));
    tg_module_param(self, "bias", &b->bias, tg_zeros(TG_F32, TG_SHAPE(c), dev));
    tg_module_buffer(self, "running_mean", &b->running_mean, tg_zeros(TG_F32, TG_SHAPE(c), dev));
    tg_module_buffer(self, "running_var", &b->running_var, tg_ones(TG_F32, TG_SHAPE(c), dev));
    tg_module_buffer(self, "num_batches_tracked", &b->num_batches_tracked, tg_from_i64((int64_t[]){ 0 }, TG_SCALAR_SHAPE, dev));
    return tg_module_done(self);
}

typedef struct {
    tg_module *body, *bn1, *fc;
} net;

static tg_tensor *net_forward(tg_module *self, tg_tensor *x) { /* x (N, 4) -> (N, 2) */
    net *n = tg_module_data(self);
    return tg_module_forward(n->fc, tg_module_forward(n->bn1, tg_module_forward(n->body, x)));
}

static const tg_module_type net_type = { "Net", sizeof(net), net_forward, NULL, NULL, NULL };

static tg_module *net_new(tg_device *dev) {
    tg_module *self = tg_module_new(&net_type);
    if (!self) return NULL;
    net *n = tg_module_data(self);
    tg_module_add(self, "body", &n->body, tg_sequential(tg_linear_new(4, 3, NULL, dev), tg_relu_new()));
    tg_module_add(self, "bn1", &n->bn1, toy_bn_new(3, dev));
    tg_module_add(self, "fc", &n->fc, tg_linear_new(3, 2, NULL, dev));
    return tg_module_done(self);
}

static const char *const k_state_names[] = {
    "body.0.weight", "body.0.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
    "bn1.num_batches_tracked", "fc.weight", "fc.bias",
};

TEST(names_and_counts) {
    tg_device *dev = tg_test_device();
    tg_module *m = net_new(dev);
    CHECK(m);
    tg_state_dict *sd = tg_module_state_dict(m);
    CHECK(tg_state_dict_size(sd) == 9);
    for (int i = 0; i < 9 && i < tg_state_dict_size(sd); i++) CHECK(!strcmp(tg_state_dict_name(sd, i), k_state_names[i]));
    CHECK(tg_dtype_of(tg_state_dict_get(sd, "bn1.num_batches_tracked")) == TG_I64);
    tg_state_dict_free(sd);
    tg_named p, b, mods;
    CHECK(tg_module_parameters(m, false, &p) == TG_OK && p.n == 6);
    CHECK(!strcmp(p.names[0], "body.0.weight") && !strcmp(p.names[5], "fc.bias"));
    CHECK(tg_module_buffers(m, &b) == TG_OK && b.n == 3 && !strcmp(b.names[2], "bn1.num_batches_tracked"));
    CHECK(tg_module_named_modules(m, &mods) == TG_OK && mods.n == 6);
    const char *want[] = { "", "body", "body.0", "body.1", "bn1", "fc" };
    for (int i = 0; i < 6 && i < mods.n; i++) CHECK(!strcmp(mods.names[i], want[i]));
    CHECK(mods.n == 6 && !strcmp(tg_module_type_of(mods.modules[3])->name, "ReLU"));
    tg_named_free(&p);
    tg_named_free(&b);
    tg_named_free(&mods);
    CHECK(tg_module_num_parameters(m, false) == 4 * 3 + 3 + 3 + 3 + 3 * 2 + 2);
    CHECK(tg_module_get_param(m, "body.0.weight") == tg_module_get_param(tg_module_get(m, "body.0"), "weight"));
    CHECK(tg_size(tg_module_get_param(m, "fc.weight"), 0) == 2 && tg_size(tg_module_get_param(m, "fc.weight"), 1) == 3);
    CHECK(!strcmp(tg_module_name(tg_module_get(m, "body.0")), "0"));
    CHECK_ERROR(tg_module_get_param(m, "body.2.weight"), "tg_module_get_param: Sequential has no child '2' (path 'body.2.weight')");
    CHECK_ERROR(tg_module_get_buffer(m, "bn1.running_std"), "tg_module_get_buffer: BatchNorm1d has no buffer 'bn1.running_std'");
    tg_module_free(m);
}

TEST(print_tree) {
    tg_module *m = net_new(tg_test_device());
    char buf[1024] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    tg_module_fprint(f, m);
    fclose(f);
    CHECK(!strcmp(buf, "Net(\n  (body): Sequential(\n    (0): Linear(in_features=4, out_features=3, bias=true)\n"
                       "    (1): ReLU()\n  )\n  (bn1): BatchNorm1d()\n"
                       "  (fc): Linear(in_features=3, out_features=2, bias=true)\n)\n"));
    tg_module_free(m);
}

typedef struct {
    tg_tensor *a, *b;
} tied;
static const tg_module_type tied_type = { "Tied", sizeof(tied), NULL, NULL, NULL, NULL };

/* One tensor registered under two names (an encoder/decoder weight tie): listed and
 * counted once, saved under both names as PyTorch does. */
TEST(tied_parameters_counted_once) {
    tg_module *m = tg_module_new(&tied_type);
    tied *t = tg_module_data(m);
    tg_tensor *w = tg_randn(TG_F32, TG_SHAPE(3, 3), tg_test_device());
    CHECK(tg_module_param(m, "a", &t->a, w) == TG_OK && tg_module_param(m, "b", &t->b, w) == TG_OK);
    CHECK(tg_module_done(m) == m && t->a == t->b);
    CHECK(tg_module_num_parameters(m, false) == 9);
    tg_state_dict *sd = tg_module_state_dict(m);
    CHECK(tg_state_dict_size(sd) == 2 && !strcmp(tg_state_dict_name(sd, 1), "b"));
    tg_state_dict_free(sd);
    CHECK(tg_module_cast(m, TG_F64) == TG_OK && t->a == t->b && tg_dtype_of(t->b) == TG_F64);
    CHECK_ERROR(tg_module_forward(m, t->a), "tg_module_forward: Tied: it takes no inputs: call tg_module_forward");
    tg_module_free(m);
}

/* ------------------------------------------------------------- modes, freezing, moving */

TEST(train_eval_propagates_and_changes_behaviour) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(1);
    tg_module *m = net_new(dev);
    CHECK(tg_module_is_training(tg_module_get(m, "bn1")));
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(8, 4), dev);
    tg_tensor *y_train = tg_module_forward(m, x);
    CHECK(y_train && at(tg_module_get_buffer(m, "bn1.num_batches_tracked"), 0) == 1);
    tg_module_eval(m);
    CHECK(!tg_module_is_training(m) && !tg_module_is_training(tg_module_get(m, "bn1")) &&
          !tg_module_is_training(tg_module_get(m, "body.1")));
    tg_tensor *y_eval = tg_module_forward(m, x);
    CHECK(at(tg_module_get_buffer(m, "bn1.num_batches_tracked"), 0) == 1); /* eval does not count */
    CHECK(fabs(at(y_train, 0) - at(y_eval, 0)) > 1e-4);                    /* batch vs running statistics */
    tg_module_train(m, true);
    CHECK(tg_module_is_training(tg_module_get(m, "body.0")));
    tg_module_free(m);
}

TEST(frozen_parameters_get_no_gradient) {
    tg_device *dev = tg_test_device();
    tg_module *m = net_new(dev);
    CHECK(tg_module_requires_grad_(tg_module_get(m, "body"), false) == TG_OK);
    CHECK(tg_set_requires_grad(tg_module_get_param(m, "fc.bias"), false) == TG_OK);
    CHECK(tg_module_num_parameters(m, true) == 3 + 3 + 6);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(5, 4), dev);
    CHECK(tg_backward(tg_sum(tg_module_forward(m, x), TG_ALL, false)) == TG_OK);
    CHECK_ERROR(tg_grad(tg_module_get_param(m, "body.0.weight")),
                "tg_grad: the tensor does not require grad (mark it with tg_param)");
    CHECK_ERROR(tg_grad(tg_module_get_param(m, "fc.bias")), "tg_grad: the tensor does not require grad (mark it with tg_param)");
    CHECK(tg_grad(tg_module_get_param(m, "fc.weight")) != NULL);
    tg_named p;
    CHECK(tg_module_parameters(m, true, &p) == TG_OK && p.n == 3 && !strcmp(p.names[0], "bn1.weight"));
    tg_named_free(&p);
    tg_module_free(m);
}

TEST(cast_and_move_keep_values_and_slots) {
    tg_device *dev = tg_test_device();
    tg_module *m = net_new(dev);
    tg_set_requires_grad(tg_module_get_param(m, "fc.bias"), false);
    tg_tensor *w = tg_module_get_param(m, "fc.weight");
    double w0 = at(w, 0);
    CHECK(tg_module_cast(m, TG_F64) == TG_OK);
    tg_tensor *w64 = tg_module_get_param(m, "fc.weight");
    CHECK(tg_dtype_of(w64) == TG_F64 && tg_requires_grad(w64) && !tg_requires_grad(tg_module_get_param(m, "fc.bias")));
    CHECK(at(w64, 0) == w0);
    CHECK(tg_dtype_of(tg_module_get_buffer(m, "bn1.num_batches_tracked")) == TG_I64);
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(3, 4), dev);
    tg_tensor *y = tg_module_forward(m, x); /* the slots read the new tensors */
    CHECK(y && tg_dtype_of(y) == TG_F64);
    CHECK_ERROR(tg_module_forward(m, tg_cast(x, TG_F32)), "tg_module_forward: Linear 'body.0': input is f32, the weight f64 (tg_module_cast converts a module)");
    CHECK_ERROR(tg_module_cast(m, TG_I32), "tg_module_cast: a module converts to f32 or f64, not i32");
    tg_device *other = tg_device_get(strcmp(tg_device_name(dev), "cpu") ? "cpu" : "opencl");
    tg_clear_error();
    if (other) {
        CHECK(tg_module_to(m, other) == TG_OK);
        CHECK(tg_device_of(tg_module_get_param(m, "bn1.weight")) == other);
        CHECK(at(tg_module_get_param(m, "fc.weight"), 0) == w0);
        char want[256];
        snprintf(want, sizeof want, "tg_module_forward: Linear 'body.0': input on %s, weight on %s (tg_module_to moves a module)",
                 tg_device_name(dev), tg_device_name(other));
        CHECK_ERROR(tg_module_forward(m, x), want);
        CHECK(tg_module_to(m, dev) == TG_OK && tg_module_forward(m, x));
    }
    tg_module_free(m);
}

/* ------------------------------------------------------------- state dicts */

TEST(state_dict_round_trip) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(1);
    tg_module *a = net_new(dev);
    tg_manual_seed(2);
    tg_module *b = net_new(dev);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(6, 4), dev);
    tg_module_forward(a, x); /* running stats and num_batches_tracked move in a */
    tg_module_eval(a);
    tg_module_eval(b);
    tg_tensor *ya = tg_module_forward(a, x), *yb = tg_module_forward(b, x);
    CHECK(fabs(at(ya, 0) - at(yb, 0)) > 1e-6);
    tg_state_dict *sd = tg_module_state_dict(a);
    CHECK(tg_module_load_state_dict(b, sd, NULL) == TG_OK);
    tg_state_dict_free(sd);
    tg_tensor *yb2 = tg_module_forward(b, x);
    for (int i = 0; i < 12; i++) CHECK(at(ya, i) == at(yb2, i));
    CHECK(at(tg_module_get_buffer(b, "bn1.num_batches_tracked"), 0) == 1);
    tg_module_free(a);
    tg_module_free(b);
}

TEST(state_dict_reports_differences) {
    tg_device *dev = tg_test_device();
    tg_module *m = net_new(dev);
    tg_state_dict *sd = tg_module_state_dict(m);
    tg_state_dict *bad = tg_state_dict_new();
    for (int i = 0; i < tg_state_dict_size(sd); i++) {
        const char *nm = tg_state_dict_name(sd, i);
        if (!strcmp(nm, "fc.bias") || !strcmp(nm, "bn1.running_var")) continue;
        tg_state_dict_set(bad, nm, tg_state_dict_tensor(sd, i));
    }
    tg_state_dict_set(bad, "head.weight", tg_zeros(TG_F32, TG_SHAPE(2), dev));
    double before = at(tg_module_get_param(m, "fc.weight"), 0);
    CHECK_ERROR(tg_module_load_state_dict(m, bad, NULL),
                "tg_module_load_state_dict: missing: bn1.running_var, fc.bias; unexpected: head.weight");
    char report[256] = "x";
    CHECK(tg_module_load_state_dict(m, bad, &(tg_load_opts){ .non_strict = true, .report = report,
                                                             .report_size = sizeof report }) == TG_OK);
    CHECK(!strcmp(report, "missing: bn1.running_var, fc.bias; unexpected: head.weight"));
    /* a mis-shaped tensor is an error even when non-strict, and nothing is copied */
    tg_state_dict_set(bad, "fc.weight", tg_ones(TG_F32, TG_SHAPE(2, 4), dev));
    tg_state_dict_set(bad, "body.0.bias", tg_ones(TG_F32, TG_SHAPE(3, 1), dev));
    tg_state_dict_set(bad, "bn1.weight", tg_full(TG_F32, TG_SHAPE(3), 7, dev));
    CHECK_ERROR(tg_module_load_state_dict(m, bad, &(tg_load_opts){ .non_strict = true }),
                "tg_module_load_state_dict: missing: bn1.running_var, fc.bias; unexpected: head.weight; shape differs: "
                "body.0.bias is [3] in the module, [3,1] in the state dict, fc.weight is [2,3] in the module, [2,4] in "
                "the state dict");
    CHECK(at(tg_module_get_param(m, "fc.weight"), 0) == before && at(tg_module_get_param(m, "bn1.weight"), 0) == 1);
    CHECK(tg_last_status() == TG_ERR_SHAPE);
    tg_state_dict_free(sd);
    tg_state_dict_free(bad);
    tg_module_free(m);
}

/* ------------------------------------------------------------- replacing a child, hooks */

TEST(replace_child_for_a_new_head) {
    tg_device *dev = tg_test_device();
    tg_module *m = net_new(dev);
    tg_module *old_fc = tg_module_get(m, "fc");
    CHECK(old_fc && tg_module_parent(old_fc) == m);
    CHECK(tg_module_replace(m, "fc", tg_linear_new(3, 5, NULL, dev)) == TG_OK);
    tg_tensor *y = tg_module_forward(m, tg_randn(TG_F32, TG_SHAPE(2, 4), dev)); /* net_forward's slot sees it */
    CHECK(y && tg_size(y, 1) == 5);
    CHECK(tg_size(tg_module_get_param(m, "fc.weight"), 0) == 5);
    CHECK(tg_module_replace(m, "body.1", tg_tanh_new()) == TG_OK);
    CHECK(!strcmp(tg_module_type_of(tg_module_get(m, "body.1"))->name, "Tanh"));
    CHECK_ERROR(tg_module_replace(m, "head", tg_identity_new()), "tg_module_replace: Net has no child 'head'");
    tg_module_free(m);
}

typedef struct {
    int calls;
    tg_tensor *seen;
} capture;

static tg_tensor *capture_hook(tg_module *m, int n, tg_tensor *const *in, tg_tensor *out, void *ctx) {
    capture *c = ctx;
    c->calls++;
    c->seen = out;
    return out;
}

static tg_status double_input(tg_module *m, int n, tg_tensor **in, void *ctx) {
    in[0] = tg_mul_scalar(in[0], 2);
    return TG_OK;
}

static tg_tensor *failing_hook(tg_module *m, int n, tg_tensor *const *in, tg_tensor *out, void *ctx) {
    return tg_reshape(out, TG_SHAPE(7)); /* fails: a hook reports through the ops it calls */
}

TEST(forward_hooks_capture_and_modify) {
    tg_device *dev = tg_test_device();
    tg_module *seq = tg_sequential(tg_linear_new(2, 3, NULL, dev), tg_relu_new(), tg_linear_new(3, 1, NULL, dev));
    capture c = { 0 };
    int h = tg_module_register_forward_hook(tg_module_get(seq, "1"), capture_hook, &c);
    CHECK(h > 0);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(4, 2), dev);
    tg_tensor *y = tg_module_forward(seq, x);
    CHECK(y && c.calls == 1 && c.seen && tg_size(c.seen, 1) == 3);
    tg_tensor *expect = tg_relu(tg_module_forward(tg_module_get(seq, "0"), x));
    for (int i = 0; i < 12; i++) CHECK(at(c.seen, i) == at(expect, i));
    int pre = tg_module_register_forward_pre_hook(seq, double_input, NULL);
    tg_tensor *y2 = tg_module_forward(seq, x), *y2_want = tg_module_forward(tg_module_get(seq, "2"), tg_relu(
        tg_module_forward(tg_module_get(seq, "0"), tg_mul_scalar(x, 2))));
    CHECK(fabs(at(y2, 0) - at(y2_want, 0)) < 1e-6);
    CHECK(tg_module_remove_hook(seq, pre) == TG_OK && tg_module_remove_hook(tg_module_get(seq, "1"), h) == TG_OK);
    tg_module_forward(seq, x);
    CHECK(c.calls == 2); /* removed: no third call */
    CHECK_ERROR(tg_module_remove_hook(seq, pre), "tg_module_remove_hook: no hook 1 on this module");
    tg_module_register_forward_hook(tg_module_get(seq, "2"), failing_hook, NULL);
    CHECK_ERROR(tg_module_forward(seq, x), "tg_module_forward: Linear '2': tg_reshape: cannot view [4,1] (4 elements) as [7]");
    tg_module_free(seq);
}

/* ------------------------------------------------------------- gradchecks of every layer */

typedef struct {
    tg_module *m;
    int n_params, n_inputs;
    const char *names[4];
    uint64_t seed; /* nonzero: reseeded before each forward (DropConnect's mask) */
} layer_ctx;

static tg_tensor *layer_fn(tg_tensor *const *in, void *vctx) {
    layer_ctx *c = vctx;
    if (c->seed) tg_manual_seed(c->seed);
    tg_tensor *y = tg_module_functional_call(c->m, c->n_params, c->names, in + c->n_inputs, c->n_inputs, in);
    return tg_sum(tg_square(y), TG_ALL, false); /* non-linear in the output, so a wrong scale shows */
}

/* Gradchecks m (made f64 here) on its inputs and the named parameters. */
static void check_layer(int *tg_failed_, tg_module *m, int n_inputs, tg_tensor **inputs, int n_params,
                        const char *const *names, uint64_t seed) {
    CHECK(m && tg_module_cast(m, TG_F64) == TG_OK);
    layer_ctx c = { m, n_params, n_inputs, { 0 }, seed };
    tg_tensor *in[8];
    for (int i = 0; i < n_inputs; i++) in[i] = inputs[i];
    for (int i = 0; i < n_params; i++) {
        c.names[i] = names[i];
        in[n_inputs + i] = tg_module_get_param(m, names[i]);
    }
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(layer_fn, &c, n_inputs + n_params, in, NULL, &rep);
    if (st != TG_OK) FAIL_("%s: %s", tg_module_type_of(m)->name, rep.message);
    tg_module_free(m);
}

TEST(gradcheck_linear_bilinear) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(2, 3, 4), dev); /* leading axes pass through */
    check_layer(tg_failed_, tg_linear_new(4, 3, NULL, dev), 1, &x, 2, (const char *[]){ "weight", "bias" }, 0);
    check_layer(tg_failed_, tg_linear_new(4, 2, &(tg_linear_opts){ .no_bias = true }, dev), 1, &x, 1,
                (const char *[]){ "weight" }, 0);
    tg_tensor *xs[2] = { tg_randn(TG_F64, TG_SHAPE(3, 4), dev), tg_randn(TG_F64, TG_SHAPE(3, 2), dev) };
    check_layer(tg_failed_, tg_bilinear_new(4, 2, 3, NULL, dev), 2, xs, 2, (const char *[]){ "weight", "bias" }, 0);
}

TEST(bilinear_matches_its_formula) {
    tg_device *dev = tg_test_device();
    tg_module *m = tg_bilinear_new(2, 3, 2, NULL, dev);
    tg_tensor *x1 = tg_randn(TG_F32, TG_SHAPE(2, 2), dev), *x2 = tg_randn(TG_F32, TG_SHAPE(2, 3), dev);
    tg_tensor *y = tg_module_forward2(m, x1, x2);
    double *w = tg_test_values(tg_module_get_param(m, "weight")), *b = tg_test_values(tg_module_get_param(m, "bias"));
    double *a = tg_test_values(x1), *c = tg_test_values(x2), *v = tg_test_values(y);
    for (int n = 0; n < 2; n++)
        for (int o = 0; o < 2; o++) {
            double s = b[o];
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++) s += a[n * 2 + i] * w[(o * 2 + i) * 3 + j] * c[n * 3 + j];
            CHECK_NEAR(v[n * 2 + o], s, 1e-5);
        }
    free(w), free(b), free(a), free(c), free(v);
    CHECK_ERROR(tg_module_forward(m, x1), "tg_module_forward: Bilinear: it takes two inputs: call tg_module_forward2");
    tg_module_free(m);
}

TEST(gradcheck_shape_and_activation_modules) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(2, 3, 4), dev);
    tg_module *mods[] = { tg_identity_new(), tg_flatten_new(1, -1), tg_flatten_new(0, 1), tg_unflatten_new(2, TG_SHAPE(2, 2)),
                          tg_relu_new(), tg_leaky_relu_new(0.2), tg_tanh_new(), tg_sigmoid_new(), tg_softmax_new(1),
                          tg_log_softmax_new(-1) };
    for (size_t i = 0; i < sizeof mods / sizeof *mods; i++) check_layer(tg_failed_, mods[i], 1, &x, 0, NULL, 0);
    tg_module *f = tg_flatten_new(1, 2), *u = tg_unflatten_new(1, TG_SHAPE(-1, 2));
    tg_tensor *y = tg_module_forward(f, tg_zeros(TG_F32, TG_SHAPE(2, 3, 4, 5), dev));
    CHECK(y && tg_ndim(y) == 3 && tg_size(y, 1) == 12 && tg_size(y, 2) == 5);
    y = tg_module_forward(u, y);
    CHECK(y && tg_ndim(y) == 4 && tg_size(y, 1) == 6 && tg_size(y, 2) == 2);
    tg_module_free(f);
    tg_module_free(u);
}

TEST(gradcheck_sequential_and_embedding) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(3, 4), dev);
    tg_module *seq = tg_sequential(tg_linear_new(4, 3, NULL, dev), tg_tanh_new(), tg_linear_new(3, 2, NULL, dev));
    check_layer(tg_failed_, seq, 1, &x, 4, (const char *[]){ "0.weight", "0.bias", "2.weight", "2.bias" }, 0);
    tg_tensor *idx = tg_from_i64((int64_t[]){ 0, 2, 1, 2, 4, 0 }, TG_SHAPE(2, 3), dev);
    tg_module *emb = tg_embedding_new(5, 3, NULL, dev);
    tg_tensor *w = tg_module_get_param(emb, "weight"), *y = tg_module_forward(emb, idx);
    CHECK(y && tg_ndim(y) == 3 && tg_size(y, 2) == 3);
    for (int k = 0; k < 3; k++) CHECK(at(y, 3 + k) == at(w, 2 * 3 + k)); /* (0,1) is row 2 */
    tg_module_free(emb);
}

static tg_tensor *embedding_fn(tg_tensor *const *in, void *vctx) {
    layer_ctx *c = vctx;
    tg_tensor *idx = tg_from_i64((int64_t[]){ 0, 2, 1, 2, 4, 0 }, TG_SHAPE(2, 3), tg_device_of(in[0]));
    return tg_sum(tg_square(tg_module_functional_call(c->m, 1, c->names, in, 1, &idx)), TG_ALL, false);
}

TEST(embedding_gradient_and_padding) {
    tg_device *dev = tg_test_device();
    tg_module *emb = tg_embedding_new(5, 3, &(tg_embedding_opts){ .padding_idx = TG_SOME(-3) }, dev); /* row 2 */
    CHECK(emb && tg_module_cast(emb, TG_F64) == TG_OK);
    tg_tensor *w = tg_module_get_param(emb, "weight");
    for (int k = 0; k < 3; k++) CHECK(at(w, 6 + k) == 0);
    layer_ctx c = { emb, 1, 0, { "weight" }, 0 };
    tg_gradcheck_report rep;
    if (tg_gradcheck(embedding_fn, &c, 1, &w, NULL, &rep) != TG_OK) FAIL_("embedding: %s", rep.message);
    tg_tensor *idx = tg_from_i32((int32_t[]){ 2, 2, 1 }, TG_SHAPE(3), dev);
    CHECK(tg_backward(tg_sum(tg_module_forward(emb, idx), TG_ALL, false)) == TG_OK);
    tg_tensor *g = tg_grad(w);
    for (int k = 0; k < 3; k++) CHECK(at(g, 6 + k) == 0 && at(g, 3 + k) == 1 && at(g, k) == 0);
    tg_module_free(emb);
    tg_tensor *pre = tg_from_f32((float[]){ 1, 2, 3, 4 }, TG_SHAPE(2, 2), dev);
    tg_module *fz = tg_embedding_from_pretrained(pre, NULL);
    CHECK(fz && !tg_requires_grad(tg_module_get_param(fz, "weight")) && tg_module_num_parameters(fz, true) == 0);
    CHECK(at(tg_module_forward(fz, tg_from_i32((int32_t[]){ 1 }, TG_SHAPE(1), dev)), 1) == 4);
    tg_module_free(fz);
    CHECK_ERROR(tg_embedding_new(4, 2, &(tg_embedding_opts){ .padding_idx = TG_SOME(4) }, dev),
                "tg_embedding_new: padding_idx 4 is out of range for 4 embeddings");
}

TEST(drop_connect) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(3, 4), dev);
    check_layer(tg_failed_, tg_drop_connect_new(tg_linear_new(4, 3, NULL, dev), 0.5), 1, &x, 2,
                (const char *[]){ "module.weight", "module.bias" }, 77);
    tg_module *dc = tg_drop_connect_new(tg_linear_new(4, 3, NULL, dev), 0.5);
    tg_module *inner = tg_module_get(dc, "module");
    tg_tensor *xf = tg_eye(TG_F32, 4, dev); /* y = W^T + b: each masked weight shows */
    tg_tensor *plain = tg_module_forward(inner, xf), *dropped = tg_module_forward(dc, xf);
    double *p = tg_test_values(plain), *d = tg_test_values(dropped), *b = tg_test_values(tg_module_get_param(dc, "module.bias"));
    int kept = 0;
    for (int i = 0; i < 12; i++) {
        double w = p[i] - b[i % 3], wd = d[i] - b[i % 3];
        bool zero = fabs(wd) < 1e-6, twice = fabs(wd - 2 * w) < 1e-5;
        CHECK(zero || twice);
        kept += twice && !zero;
    }
    CHECK(kept > 0 && kept < 12);
    free(p), free(d), free(b);
    tg_module_eval(dc);
    tg_tensor *ev = tg_module_forward(dc, xf);
    for (int i = 0; i < 12; i++) CHECK(at(ev, i) == at(plain, i));
    tg_module_free(dc);
    CHECK_ERROR(tg_drop_connect_new(tg_relu_new(), 0.5),
                "tg_drop_connect_new: the wrapped module has no parameter 'weight' (p = 0.5)");
}

/* ------------------------------------------------------------- messages */

TEST(error_messages) {
    tg_device *dev = tg_test_device();
    tg_module *seq = tg_sequential(tg_linear_new(4, 3, NULL, dev), tg_relu_new());
    CHECK_ERROR(tg_module_forward(seq, tg_zeros(TG_F32, TG_SHAPE(2, 5), dev)),
                "tg_module_forward: Linear '0': input [2,5] has 5 features, in_features is 4");
    tg_module *lin = tg_linear_new(4, 3, NULL, dev);
    CHECK_ERROR(tg_module_forward(lin, tg_zeros(TG_F32, TG_SHAPE(5), dev)),
                "tg_module_forward: Linear: input [5] has 5 features, in_features is 4");
    CHECK(tg_module_forward(lin, NULL) == NULL); /* NULL in, NULL out, message kept */
    CHECK_ERROR(tg_module_free(tg_module_get(seq, "1")), "tg_module_free: ReLU '1' belongs to a Sequential, which frees it");
    CHECK_ERROR(tg_module_add(seq, "1", NULL, tg_relu_new()), "tg_module_add: Sequential already has an entry named '1'");
    CHECK_ERROR(tg_module_add(seq, "a.b", NULL, tg_relu_new()),
                "tg_module_add: a name must be non-empty and contain no '.', got 'a.b'");
    CHECK_ERROR(tg_module_add(seq, "x", NULL, tg_module_get(seq, "0")), "tg_module_add: 'x' already belongs to a Sequential as '0'");
    CHECK(tg_module_done(seq) == NULL); /* the failed registrations were remembered */
    CHECK(!strcmp(tg_last_error(), "tg_module_add: Sequential already has an entry named '1'"));
    CHECK_ERROR(tg_sequential(tg_relu_new(), tg_linear_new(-1, 2, NULL, dev)),
                "tg_linear_new: sizes must be >= 0, got in -1, out 2");
    tg_tensor *p = tg_mul_scalar(tg_param(tg_ones(TG_F32, TG_SHAPE(2), dev)), 2);
    tg_module *id = tg_identity_new();
    CHECK_ERROR(tg_module_param(id, "w", NULL, p), "tg_module_param: 'w' must be a leaf (tg_detach it first)");
    tg_tensor *local = NULL;
    CHECK_ERROR(tg_module_param(id, "v", &local, tg_ones(TG_F32, TG_SHAPE(2), dev)),
                "tg_module_param: the slot for 'v' is not inside the Identity's data (tg_module_data)");
    tg_module_free(id);
    tg_module_free(lin);
}

TG_TEST_MAIN(&tg_case_names_and_counts, &tg_case_print_tree, &tg_case_tied_parameters_counted_once,
             &tg_case_train_eval_propagates_and_changes_behaviour, &tg_case_frozen_parameters_get_no_gradient,
             &tg_case_cast_and_move_keep_values_and_slots, &tg_case_state_dict_round_trip,
             &tg_case_state_dict_reports_differences, &tg_case_replace_child_for_a_new_head,
             &tg_case_forward_hooks_capture_and_modify, &tg_case_gradcheck_linear_bilinear,
             &tg_case_bilinear_matches_its_formula, &tg_case_gradcheck_shape_and_activation_modules,
             &tg_case_gradcheck_sequential_and_embedding, &tg_case_embedding_gradient_and_padding,
             &tg_case_drop_connect, &tg_case_error_messages)
