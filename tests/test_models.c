/* The model zoo: parameter counts against the papers and torchvision (LeNet-5 per layer,
 * torchvision's totals, checked against torchvision 0.14), state_dict names and shapes,
 * forward shapes on small inputs, train/eval differences (dropout, BN, aux logits),
 * LeNet-5's connection table and squashing, the initialisations, the CIFAR ResNet's
 * option-A shortcut, and the messages for bad options. The big models are built once. */
#include "nn_check.h"

/* The sanitizer build skips the constructions that repeat what others check, and the
 * models' own init where it draws 60M-140M normals (the layers' default init runs). */
#if defined(__SANITIZE_ADDRESS__)
#define ZOO_SANITIZED 1
#else
#define ZOO_SANITIZED 0
#endif
/* So does the run on another device than the CPU (the opencl suite). */
#define ZOO_QUICK (ZOO_SANITIZED || strcmp(tg_device_name(tg_test_device()), "cpu"))

static int64_t count(tg_module *m, const char *path) { return tg_module_num_parameters(tg_module_get(m, path), false); }

/* A forward hook that keeps the shape of a module's output (and the output itself). */
typedef struct {
    tg_shape shape;
    tg_tensor *out;
    tg_tensor *in;
} seen;
static tg_tensor *record(tg_module *m, int n, tg_tensor *const *inputs, tg_tensor *output, void *ctx) {
    (void)m, (void)n;
    seen *s = ctx;
    s->shape = tg_shape_of(output);
    s->out = output, s->in = inputs[0];
    return output;
}
static bool shape_is(tg_shape a, tg_shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dims[i] != b.dims[i]) return false;
    return true;
}

/* ------------------------------------------------------------- LeNet-5 */

TEST(lenet5_parameters_per_layer_as_the_paper) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *m = tg_lenet5_new(10, NULL, dev);
    CHECK(m);
    CHECK(count(m, "c1") == 156 && count(m, "s2") == 12 && count(m, "c3") == 1516 && count(m, "s4") == 32);
    CHECK(count(m, "c5") == 48120 && count(m, "f6") == 10164 && count(m, "output") == 850);
    CHECK(has_shape(tg_module_get_param(m, "s2.weight"), TG_SHAPE(6)) && has_shape(tg_module_get_param(m, "s4.bias"), TG_SHAPE(16)));
    CHECK(has_shape(tg_module_get_param(m, "c3.0.weight"), TG_SHAPE(6, 3, 5, 5)));
    CHECK(has_shape(tg_module_get_param(m, "c3.1.weight"), TG_SHAPE(6, 4, 5, 5)));
    CHECK(has_shape(tg_module_get_param(m, "c3.2.weight"), TG_SHAPE(3, 4, 5, 5)));
    CHECK(has_shape(tg_module_get_param(m, "c3.3.weight"), TG_SHAPE(1, 6, 5, 5)));
    /* The paper's init: c5's weights within 2.4 / (16 * 25). */
    tg_tensor *w = tg_module_get_param(m, "c5.weight");
    CHECK(tg_item(tg_max(tg_abs(w), TG_ALL, false)) <= 2.4 / 400 + 1e-7);
    CHECK(tg_item(tg_max(tg_abs(w), TG_ALL, false)) > 0.9 * 2.4 / 400);
    /* Forward, and the squashing 1.7159 tanh(2a/3) between f6 and the output layer. */
    seen f6 = { 0 }, out = { 0 };
    tg_module_register_forward_hook(tg_module_get(m, "f6"), record, &f6);
    tg_module_register_forward_hook(tg_module_get(m, "output"), record, &out);
    CHECK(has_shape(tg_module_forward(m, tg_randn(TG_F32, TG_SHAPE(2, 1, 32, 32), dev)), TG_SHAPE(2, 10)));
    double *a = tg_test_values(f6.out), *x = tg_test_values(out.in);
    for (int i = 0; a && x && i < 2 * 84; i++) CHECK_NEAR(x[i], 1.7159 * tanh(2.0 * a[i] / 3.0), 1e-5);
    free(a), free(x);
    /* 28x28 leaves c5 a 0x0 map: the message names the layer. */
    CHECK_ERROR_CONTAINS(tg_module_forward(m, tg_randn(TG_F32, TG_SHAPE(1, 1, 28, 28), dev)), "'c5'");
    tg_module_free(m);
}

/* S2: the sum of each 2x2 window times the map's coefficient, plus its bias. */
TEST(lenet5_subsampling) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *m = tg_lenet5_new(10, NULL, dev);
    tg_module *s2 = tg_module_get(m, "s2");
    float c[6] = { 1, 2, -1, 0.5f, 0, 3 }, b[6] = { 0, 1, 2, 3, 4, 5 };
    bool was = tg_set_grad_enabled(false);
    CHECK(tg_copy_(tg_module_get_param(s2, "weight"), tg_from_f32(c, TG_SHAPE(6), dev)) == TG_OK);
    CHECK(tg_copy_(tg_module_get_param(s2, "bias"), tg_from_f32(b, TG_SHAPE(6), dev)) == TG_OK);
    tg_set_grad_enabled(was);
    float in[6 * 16];
    for (int i = 0; i < 96; i++) in[i] = (float)(i % 7) - 2.5f;
    double *y = tg_test_values(tg_module_forward(s2, tg_from_f32(in, TG_SHAPE(1, 6, 4, 4), dev)));
    CHECK(y);
    for (int ch = 0; y && ch < 6; ch++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                const float *p = in + ch * 16 + 2 * i * 4 + 2 * j;
                double want = c[ch] * (p[0] + p[1] + p[4] + p[5]) + b[ch];
                CHECK_NEAR(y[ch * 4 + i * 2 + j], want, 1e-5);
            }
    free(y);
    tg_module_free(m);
}

/* C3's connections: changing S2 map j changes exactly the C3 maps marked X in column
 * order of the paper's Table I (rows: S2 maps, columns: C3 maps). */
TEST(lenet5_c3_connection_table) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    static const char *const table[6] = {
        "X   XXX  XXXX XX", "XX   XXX  XXXX X", "XXX   XXX  X XXX",
        " XXX  XXXX  X XX", "  XXX  XXXX XX X", "   XXX  XXXX XXX",
    };
    tg_module *m = tg_lenet5_new(10, NULL, dev);
    tg_module *c3 = tg_module_get(m, "c3");
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(1, 6, 5, 5), dev);
    double *base = tg_test_values(tg_module_forward(c3, x));
    for (int j = 0; base && j < 6; j++) {
        float bump[6] = { 0 };
        bump[j] = 1;
        double *y = tg_test_values(tg_module_forward(c3, tg_add(x, tg_reshape(tg_from_f32(bump, TG_SHAPE(6), dev),
                                                                                   TG_SHAPE(6, 1, 1)))));
        for (int k = 0; y && k < 16; k++)
            if ((fabs(y[k] - base[k]) > 1e-7) != (table[j][k] == 'X')) FAIL_("S2 map %d, C3 map %d", j, k);
        free(y);
    }
    free(base);
    CHECK_ERROR(tg_module_forward(c3, tg_randn(TG_F32, TG_SHAPE(1, 5, 5, 5), dev)),
                "tg_module_forward: PartialConv2d 'c3': input has 4 axes and 5 channels, expected (N, 6, H, W)");
    tg_module_free(m);
}

TEST(lenet5_modern) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *m = tg_lenet5_modern_new(10, NULL, dev);
    /* 156 + (6*16*25 + 16) + 48,120 + 10,164 + 850 */
    CHECK(tg_module_num_parameters(m, false) == 156 + 2416 + 48120 + 10164 + 850);
    CHECK(has_shape(tg_module_forward(m, tg_randn(TG_F32, TG_SHAPE(3, 1, 32, 32), dev)), TG_SHAPE(3, 10)));
    tg_module *bn = tg_lenet5_modern_new(4, &(tg_model_opts){ .batch_norm = true }, dev);
    CHECK(tg_module_num_parameters(bn, false) == 156 + 2416 + 48120 + 10164 + 85 * 4 + 2 * (6 + 16 + 120));
    CHECK(has_shape(tg_module_get_buffer(bn, "1.running_mean"), TG_SHAPE(6)));
    CHECK(has_shape(tg_module_forward(bn, tg_randn(TG_F32, TG_SHAPE(3, 1, 32, 32), dev)), TG_SHAPE(3, 4)));
    tg_module_free(m), tg_module_free(bn);
}

/* ------------------------------------------------------------- AlexNet */

static bool differ(tg_tensor *a, tg_tensor *b) { return max_diff(a, b) > 1e-6 && max_diff(a, b) < INFINITY; }

TEST(alexnet_torchvision) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *m = tg_alexnet_new(1000, NULL, dev);
    CHECK(tg_module_num_parameters(m, false) == 61100840);
    CHECK(names_are(m, 16, (const char *[]){ "features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
                                             "features.6.weight", "features.6.bias", "features.8.weight", "features.8.bias",
                                             "features.10.weight", "features.10.bias", "classifier.1.weight",
                                             "classifier.1.bias", "classifier.4.weight", "classifier.4.bias",
                                             "classifier.6.weight", "classifier.6.bias" }));
    CHECK(has_shape(tg_module_get_param(m, "features.3.weight"), TG_SHAPE(192, 64, 5, 5)));
    CHECK(has_shape(tg_module_get_param(m, "classifier.1.weight"), TG_SHAPE(4096, 9216)));
    tg_manual_seed(1);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 3, 63, 63), dev);
    tg_tensor *t1 = tg_module_forward(m, x), *t2 = tg_module_forward(m, x);
    CHECK(has_shape(t1, TG_SHAPE(2, 1000)) && differ(t1, t2)); /* dropout in training */
    tg_module_eval(m);
    CHECK(max_diff(tg_module_forward(m, x), tg_module_forward(m, x)) == 0);
    CHECK_ERROR_CONTAINS(tg_module_forward(m, tg_randn(TG_F32, TG_SHAPE(1, 3, 62, 62), dev)), "'features.12'");
    tg_module_free(m);
}

TEST(alexnet_two_streams) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *m = tg_alexnet_original_new(1000, &(tg_model_opts){ .layer_init = ZOO_QUICK }, dev);
    /* conv1 96*3*121 + 96, conv2 256*48*25 + 256 (2 groups), conv3 384*256*9 + 384, conv4
     * 384*192*9 + 384, conv5 256*192*9 + 256, fc 9216*4096 + 4096, 4096*4096 + 4096, 4096*1000 + 1000. */
    CHECK(tg_module_num_parameters(m, false) ==
          34944 + 307456 + 885120 + 663936 + 442624 + 37752832 + 16781312 + 4097000);
    CHECK(has_shape(tg_module_get_param(m, "features.4.weight"), TG_SHAPE(256, 48, 5, 5)));
    CHECK(has_shape(tg_module_get_param(m, "features.8.weight"), TG_SHAPE(384, 256, 3, 3)));
    CHECK(has_shape(tg_module_get_param(m, "features.10.weight"), TG_SHAPE(384, 192, 3, 3)));
    if (!ZOO_QUICK) { /* the paper's init: biases 1 in conv2, 0 in conv1, weights N(0, 0.01) */
        CHECK(tg_item(tg_min(tg_module_get_param(m, "features.4.bias"), TG_ALL, false)) == 1);
        CHECK(tg_item(tg_max(tg_abs(tg_module_get_param(m, "features.0.bias")), TG_ALL, false)) == 0);
        CHECK_NEAR(tg_item(tg_std(tg_module_get_param(m, "classifier.4.weight"), TG_ALL, 0, false)), 0.01, 2e-4);
    }
    seen c1 = { 0 }, p1 = { 0 }, p3 = { 0 };
    tg_module_register_forward_hook(tg_module_get(m, "features.0"), record, &c1);
    tg_module_register_forward_hook(tg_module_get(m, "features.3"), record, &p1);
    tg_module_register_forward_hook(tg_module_get(m, "features.14"), record, &p3);
    tg_module_eval(m);
    CHECK(has_shape(tg_module_forward(m, tg_randn(TG_F32, TG_SHAPE(1, 3, 227, 227), dev)), TG_SHAPE(1, 1000)));
    CHECK(shape_is(c1.shape, TG_SHAPE(1, 96, 55, 55)) && shape_is(p1.shape, TG_SHAPE(1, 96, 27, 27)));
    CHECK(shape_is(p3.shape, TG_SHAPE(1, 256, 6, 6)));
    CHECK_ERROR_CONTAINS(tg_module_forward(m, tg_randn(TG_F32, TG_SHAPE(1, 3, 224, 224), dev)), "'classifier.1'");
    tg_module_free(m);
}

/* ------------------------------------------------------------- VGG */

/* vgg16 with torchvision's init: its count, indices, init and a forward at 32x32. */
TEST(vgg16_torchvision) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *m = tg_vgg_new(TG_VGG16, 1000, &(tg_model_opts){ .layer_init = ZOO_QUICK }, dev);
    CHECK(tg_module_num_parameters(m, false) == 138357544);
    static const int convs[13] = { 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28 };
    char p[32];
    for (int k = 0; k < 13; k++) {
        snprintf(p, sizeof p, "features.%d.weight", convs[k]);
        if (!tg_module_get_param(m, p)) FAIL_("vgg16 has no %s", p);
    }
    CHECK(has_shape(tg_module_get_param(m, "classifier.0.weight"), TG_SHAPE(4096, 25088)));
    CHECK(has_shape(tg_module_get_param(m, "classifier.6.weight"), TG_SHAPE(1000, 4096)));
    if (!ZOO_QUICK) { /* kaiming_normal(fan_out, relu): std sqrt(2 / (512 * 9)), zero biases; Linear N(0, 0.01) */
        CHECK_NEAR(tg_item(tg_std(tg_module_get_param(m, "features.28.weight"), TG_ALL, 0, false)), sqrt(2.0 / 4608),
                   5e-4);
        CHECK(tg_item(tg_max(tg_abs(tg_module_get_param(m, "features.28.bias")), TG_ALL, false)) == 0);
        CHECK_NEAR(tg_item(tg_std(tg_module_get_param(m, "classifier.3.weight"), TG_ALL, 0, false)), 0.01, 1e-4);
        CHECK(tg_item(tg_max(tg_abs(tg_module_get_param(m, "classifier.6.bias")), TG_ALL, false)) == 0);
    }
    tg_module_eval(m);
    CHECK(has_shape(tg_module_forward(m, tg_randn(TG_F32, TG_SHAPE(1, 3, 32, 32), dev)), TG_SHAPE(1, 1000)));
    CHECK_ERROR_CONTAINS(tg_module_forward(m, tg_randn(TG_F32, TG_SHAPE(1, 3, 16, 16), dev)), "'features.");
    tg_module_free(m);
}

static int64_t vgg_count(tg_vgg_config c, bool bn, tg_device *dev) {
    tg_module *m = tg_vgg_new(c, 1000, &(tg_model_opts){ .batch_norm = bn, .layer_init = true }, dev);
    int64_t n = m ? tg_module_num_parameters(m, false) : -1;
    if (m && c == TG_VGG_A_LRN && strcmp(tg_module_type_of(tg_module_get(m, "features.2"))->name, "LocalResponseNorm")) n = -2;
    if (m && c == TG_VGG_C && !has_shape(tg_module_get_param(m, "features.14.weight"), TG_SHAPE(256, 256, 1, 1))) n = -3;
    tg_module_free(m);
    return n;
}

TEST(vgg_configurations) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    if (!ZOO_QUICK) {
        CHECK(vgg_count(TG_VGG11, false, dev) == 132863336);
        CHECK(vgg_count(TG_VGG19, false, dev) == 143667240);
        /* torchvision's vgg11 features (132,863,336 - the classifier's 123,642,856) and
         * those of vgg13 (B), B plus the 1x1 convs 256*256 + 256 and twice 512*512 + 512 (C) */
        CHECK(vgg_count(TG_VGG_A_LRN, false, dev) == 132863336);
        CHECK(vgg_count(TG_VGG_C, false, dev) == 123642856 + 9404992 + 65792 + 2 * 262656);
    }
    /* vgg16_bn: torchvision's indices, and BN's batch statistics in training, the running
     * ones in eval (dropout 0 makes training deterministic). */
    tg_module *m = tg_vgg_new(TG_VGG16, 1000, &(tg_model_opts){ .batch_norm = true, .dropout = TG_SOME(0),
                                                                .layer_init = true }, dev);
    CHECK(tg_module_num_parameters(m, false) == 138365992);
    CHECK(has_shape(tg_module_get_param(m, "features.40.weight"), TG_SHAPE(512, 512, 3, 3)));
    CHECK(has_shape(tg_module_get_buffer(m, "features.41.running_var"), TG_SHAPE(512)));
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 3, 32, 32), dev);
    tg_tensor *t = tg_module_forward(m, x);
    CHECK(has_shape(t, TG_SHAPE(2, 1000)));
    CHECK(max_diff(t, tg_module_forward(m, x)) < 1e-5);
    tg_module_eval(m);
    CHECK(differ(t, tg_module_forward(m, x)));
    tg_module_free(m);
}

/* ------------------------------------------------------------- GoogLeNet */

TEST(googlenet_counts_names_and_aux) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *m = tg_googlenet_new(1000, &(tg_model_opts){ .layer_init = true }, dev);
    CHECK(tg_module_num_parameters(m, false) == 13004888);
    tg_module *plain = tg_googlenet_new(1000, &(tg_model_opts){ .aux_logits = TG_SOME(false) }, dev);
    CHECK(tg_module_num_parameters(plain, false) == 6624904 && !tg_module_get(plain, "aux1"));
    tg_clear_error();
    /* torchvision's init: trunc_normal(0, 0.01, [-2, 2]) weights, BN 1 and 0. */
    CHECK_NEAR(tg_item(tg_std(tg_module_get_param(plain, "inception5b.branch2.1.conv.weight"), TG_ALL, 0, false)), 0.01,
               1e-4);
    CHECK_NEAR(tg_item(tg_std(tg_module_get_param(plain, "fc.weight"), TG_ALL, 0, false)), 0.01, 1e-4);
    CHECK(tg_item(tg_min(tg_module_get_param(plain, "inception5b.branch1.bn.weight"), TG_ALL, false)) == 1);
    tg_module_free(plain);
    tg_state_dict *sd = tg_module_state_dict(m);
    CHECK(sd && !strcmp(tg_state_dict_name(sd, 0), "conv1.conv.weight") && !strcmp(tg_state_dict_name(sd, 1), "conv1.bn.weight"));
    CHECK(tg_state_dict_get(sd, "inception3a.branch1.conv.weight") && tg_state_dict_get(sd, "aux1.conv.conv.weight"));
    CHECK(!strcmp(tg_state_dict_name(sd, tg_state_dict_size(sd) - 1), "fc.bias"));
    tg_state_dict_free(sd);
    CHECK(has_shape(tg_module_get_param(m, "inception3a.branch3.1.conv.weight"), TG_SHAPE(32, 16, 3, 3)));
    CHECK(has_shape(tg_module_get_param(m, "aux2.fc1.weight"), TG_SHAPE(1024, 2048)));
    char buf[256] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    tg_module_fprint(f, tg_module_get(m, "conv1.bn"));
    fclose(f);
    CHECK(strstr(buf, "eps=0.001"));

    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 3, 32, 32), dev), *a1 = NULL, *a2 = NULL;
    tg_tensor *y = tg_googlenet_forward_aux(m, x, &a1, &a2);
    CHECK(has_shape(y, TG_SHAPE(2, 1000)) && has_shape(a1, TG_SHAPE(2, 1000)) && has_shape(a2, TG_SHAPE(2, 1000)));
    CHECK(has_shape(tg_module_forward(m, x), TG_SHAPE(2, 1000)));
    tg_module_eval(m);
    y = tg_googlenet_forward_aux(m, x, &a1, &a2);
    CHECK(y && !a1 && !a2 && max_diff(y, tg_module_forward(m, x)) == 0);
    tg_module *r = tg_resnet_cifar_new(8, 10, NULL, dev);
    a1 = x;
    CHECK_ERROR(tg_googlenet_forward_aux(r, x, &a1, NULL),
                "tg_googlenet_forward_aux: the module is not a GoogLeNet (tg_googlenet_new)");
    CHECK(!a1);
    tg_module_free(r), tg_module_free(m);
}

/* ------------------------------------------------------------- ResNet */

TEST(resnet_torchvision_counts) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    static const int depth[5] = { 18, 34, 50, 101, 152 };
    static const int64_t want[5] = { 11689512, 21797672, 25557032, 44549160, 60192808 };
    for (int i = 0; i < (ZOO_QUICK ? 3 : 5); i++) {
        tg_module *m = tg_resnet_new(depth[i], 1000, &(tg_model_opts){ .layer_init = true }, dev);
        if (tg_module_num_parameters(m, false) != want[i])
            FAIL_("resnet%d: %lld parameters", depth[i], (long long)tg_module_num_parameters(m, false));
        tg_module_free(m);
    }
    tg_module *se = tg_se_resnet_new(50, 1000, &(tg_model_opts){ .layer_init = true }, dev);
    /* resnet50 + each block's SE (2 C^2 / 16 + C / 16 + C): 3 of C 256, 4 of 512, 6 of 1024, 3 of 2048 */
    CHECK(tg_module_num_parameters(se, false) == 25557032 + 3 * 8464 + 4 * 33312 + 6 * 132160 + 3 * 526464);
    CHECK(has_shape(tg_module_get_param(se, "layer1.0.se.fc1.weight"), TG_SHAPE(16, 256, 1, 1)));
    CHECK(has_shape(tg_module_get_param(se, "layer4.2.se.fc2.bias"), TG_SHAPE(2048)));
    tg_module_free(se);
}

TEST(resnet_names_shapes_init_and_zero_init_residual) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *m = tg_resnet_new(18, 10, &(tg_model_opts){ .zero_init_residual = true, .layer_init = true }, dev);
    tg_state_dict *sd = tg_module_state_dict(m);
    CHECK(sd && tg_state_dict_size(sd) == 122 && !strcmp(tg_state_dict_name(sd, 0), "conv1.weight"));
    CHECK(!strcmp(tg_state_dict_name(sd, 1), "bn1.weight") && !strcmp(tg_state_dict_name(sd, 6), "layer1.0.conv1.weight"));
    tg_state_dict_free(sd);
    CHECK(has_shape(tg_module_get_param(m, "layer2.0.downsample.0.weight"), TG_SHAPE(128, 64, 1, 1)));
    CHECK(has_shape(tg_module_get_buffer(m, "layer4.0.downsample.1.running_mean"), TG_SHAPE(512)));
    CHECK(has_shape(tg_module_get_param(m, "fc.weight"), TG_SHAPE(10, 512)));
    CHECK(tg_item(tg_max(tg_abs(tg_module_get_param(m, "layer3.1.bn2.weight")), TG_ALL, false)) == 0);
    CHECK(tg_item(tg_min(tg_module_get_param(m, "layer3.1.bn1.weight"), TG_ALL, false)) == 1);
    /* A block whose last BN is zero is relu(x) (identity shortcut). */
    tg_module_eval(m);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(1, 64, 5, 5), dev);
    CHECK(max_diff(tg_module_forward(tg_module_get(m, "layer1.1"), x), tg_relu(x)) == 0);
    tg_module_train(m, true);
    seen l4 = { 0 };
    tg_module_register_forward_hook(tg_module_get(m, "layer4"), record, &l4);
    x = tg_randn(TG_F32, TG_SHAPE(2, 3, 64, 64), dev);
    tg_tensor *t = tg_module_forward(m, x);
    CHECK(has_shape(t, TG_SHAPE(2, 10)) && shape_is(l4.shape, TG_SHAPE(2, 512, 2, 2)));
    tg_module_eval(m);
    CHECK(differ(t, tg_module_forward(m, x))); /* BN: batch vs running statistics */
    tg_module_free(m);

    tg_module *b = tg_resnet_new(50, 10, &(tg_model_opts){ .zero_init_residual = true, .layer_init = true }, dev);
    CHECK(tg_item(tg_max(tg_abs(tg_module_get_param(b, "layer2.3.bn3.weight")), TG_ALL, false)) == 0);
    CHECK(has_shape(tg_module_get_param(b, "layer1.0.downsample.0.weight"), TG_SHAPE(256, 64, 1, 1)));
    CHECK(has_shape(tg_module_forward(b, tg_randn(TG_F32, TG_SHAPE(2, 3, 32, 32), dev)), TG_SHAPE(2, 10)));
    tg_module_free(b);
    tg_module *se = tg_se_resnet_new(50, 10, &(tg_model_opts){ .layer_init = true }, dev);
    CHECK(has_shape(tg_module_forward(se, tg_randn(TG_F32, TG_SHAPE(2, 3, 32, 32), dev)), TG_SHAPE(2, 10)));
    tg_module_free(se);
}

TEST(cifar_resnets) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    /* Option A, n blocks a stage of two 3x3 convs and BNs: the stem 3*16*9 + 2*16; stage 1
     * n * 2 (16*16*9 + 32); stage 2 (16*32*9 + 64) + (32*32*9 + 64) + (n - 1) * 2 (32*32*9 + 64);
     * stage 3 the same with 32 -> 64; fc 64*10 + 10. */
    static const int depth[5] = { 20, 32, 44, 56, 110 };
    for (int i = 0; i < 5; i++) {
        int n = (depth[i] - 2) / 6;
        int64_t want = 432 + 32 + n * 2 * 2336 + 4672 + 9280 + (n - 1) * 2 * 9280 + 18560 + 36992 +
                       (n - 1) * 2 * 36992 + 650;
        tg_module *m = tg_resnet_cifar_new(depth[i], 10, NULL, dev);
        if (tg_module_num_parameters(m, false) != want)
            FAIL_("resnet%d: %lld parameters, expected %lld", depth[i], (long long)tg_module_num_parameters(m, false),
                  (long long)want);
        if (i == 0) CHECK(want == 269722);
        tg_module_free(m);
    }
    tg_module *m = tg_resnet_cifar_new(20, 10, &(tg_model_opts){ .zero_init_residual = true }, dev);
    /* torchvision's ResNet init: kaiming_normal(fan_out, relu), std sqrt(2 / (64 * 9)); BN 1. */
    CHECK_NEAR(tg_item(tg_std(tg_module_get_param(m, "layer3.2.conv1.weight"), TG_ALL, 0, false)), sqrt(2.0 / 576), 1e-3);
    CHECK(tg_item(tg_min(tg_module_get_param(m, "layer3.2.bn1.weight"), TG_ALL, false)) == 1);
    seen l2 = { 0 }, l3 = { 0 };
    tg_module_register_forward_hook(tg_module_get(m, "layer2"), record, &l2);
    tg_module_register_forward_hook(tg_module_get(m, "layer3"), record, &l3);
    CHECK(has_shape(tg_module_forward(m, tg_randn(TG_F32, TG_SHAPE(2, 3, 32, 32), dev)), TG_SHAPE(2, 10)));
    CHECK(shape_is(l2.shape, TG_SHAPE(2, 32, 16, 16)) && shape_is(l3.shape, TG_SHAPE(2, 64, 8, 8)));
    /* Option A with a zero last BN: relu of x[:, :, ::2, ::2] then 16 zero channels. */
    tg_module_eval(m);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(1, 16, 7, 7), dev);
    double *in = tg_test_values(x), *y = tg_test_values(tg_module_forward(tg_module_get(m, "layer2.0"), x));
    CHECK(in && y);
    for (int c = 0; in && y && c < 32; c++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                double want = c < 16 ? fmax(0, in[c * 49 + 2 * i * 7 + 2 * j]) : 0;
                if (y[c * 16 + i * 4 + j] != want) FAIL_("channel %d (%d, %d): %g, expected %g", c, i, j, y[c * 16 + i * 4 + j], want);
            }
    free(in), free(y);
    tg_module_free(m);
    tg_module *b = tg_resnet_cifar_new(20, 10, &(tg_model_opts){ .projection_shortcut = true }, dev);
    CHECK(tg_module_num_parameters(b, false) == 269722 + (16 * 32 + 64) + (32 * 64 + 128));
    CHECK(has_shape(tg_module_get_param(b, "layer3.0.downsample.0.weight"), TG_SHAPE(64, 32, 1, 1)));
    CHECK(has_shape(tg_module_forward(b, tg_randn(TG_F32, TG_SHAPE(2, 3, 32, 32), dev)), TG_SHAPE(2, 10)));
    tg_module_free(b);
}

/* ------------------------------------------------------------- gradients */

/* One backward of a cross-entropy loss reaches every parameter (the paper's LeNet-5 with
 * its gathered C3 inputs, the option-A shortcut's slice and pad, GoogLeNet's aux heads). */
static void every_param_gets_a_gradient(int *tg_failed_, const char *what, tg_module *m, tg_tensor *x) {
    int32_t labels[2] = { 1, 3 };
    tg_tensor *aux1 = NULL;
    tg_tensor *out = strcmp(what, "googlenet") ? tg_module_forward(m, x) : tg_googlenet_forward_aux(m, x, &aux1, NULL);
    tg_tensor *y = tg_from_i32(labels, TG_SHAPE(2), tg_device_of(x)), *loss = tg_cross_entropy(out, y);
    if (aux1) loss = tg_add(loss, tg_cross_entropy(aux1, y));
    CHECK(loss && tg_backward(loss) == TG_OK);
    tg_named p;
    CHECK(tg_module_parameters(m, true, &p) == TG_OK);
    for (int i = 0; i < p.n; i++) {
        tg_tensor *g = tg_grad(p.tensors[i]);
        bool aux2 = !strncmp(p.names[i], "aux2.", 5); /* not in this loss */
        if (!g != aux2 || (g && !(tg_item(tg_sum(tg_abs(g), TG_ALL, false)) > 0)))
            FAIL_("%s: %s has %s gradient", what, p.names[i], g ? "a zero" : "no");
    }
    tg_named_free(&p);
    tg_module_free(m);
}

TEST(gradients_reach_every_parameter) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    every_param_gets_a_gradient(tg_failed_, "lenet5", tg_lenet5_new(10, NULL, dev),
                                tg_randn(TG_F32, TG_SHAPE(2, 1, 32, 32), dev));
    every_param_gets_a_gradient(tg_failed_, "resnet20", tg_resnet_cifar_new(20, 10, NULL, dev),
                                tg_randn(TG_F32, TG_SHAPE(2, 3, 16, 16), dev));
    every_param_gets_a_gradient(tg_failed_, "googlenet", tg_googlenet_new(10, &(tg_model_opts){ .layer_init = true }, dev),
                                tg_randn(TG_F32, TG_SHAPE(2, 3, 32, 32), dev));
}

/* ------------------------------------------------------------- errors */

TEST(bad_options) {
    tg_device *dev = tg_test_device();
    CHECK_ERROR(tg_resnet_new(20, 10, NULL, dev), "tg_resnet_new: depth must be 18, 34, 50, 101 or 152, got 20");
    CHECK_ERROR(tg_resnet_new(18, 0, NULL, dev), "tg_resnet_new: num_classes must be >= 1, got 0");
    CHECK_ERROR(tg_resnet_new(18, 10, &(tg_model_opts){ .batch_norm = true }, dev),
                "tg_resnet_new: ResNet has no option batch_norm");
    CHECK_ERROR(tg_se_resnet_new(18, 10, NULL, dev), "tg_se_resnet_new: depth must be 50, 101 or 152, got 18");
    CHECK_ERROR(tg_resnet_cifar_new(21, 10, NULL, dev),
                "tg_resnet_cifar_new: depth must be 6n + 2 (20, 32, 44, 56, 110; n from 1 to 64), got 21");
    CHECK_ERROR(tg_resnet_cifar_new(20, 10, &(tg_model_opts){ .dropout = TG_SOME(0.1) }, dev),
                "tg_resnet_cifar_new: the CIFAR ResNet has no option dropout");
    CHECK_ERROR(tg_vgg_new((tg_vgg_config)7, 10, NULL, dev), "tg_vgg_new: config must be one of TG_VGG_A to TG_VGG_E, got 7");
    CHECK_ERROR(tg_vgg_new(TG_VGG_A, 10, &(tg_model_opts){ .dropout = TG_SOME(1.5) }, dev),
                "tg_vgg_new: dropout and dropout_aux must be in [0, 1], got 1.5 and 0");
    CHECK_ERROR(tg_vgg_new(TG_VGG_A, 10, &(tg_model_opts){ .aux_logits = TG_SOME(true) }, dev),
                "tg_vgg_new: VGG has no option aux_logits");
    CHECK_ERROR(tg_googlenet_new(10, &(tg_model_opts){ .zero_init_residual = true }, dev),
                "tg_googlenet_new: GoogLeNet has no option zero_init_residual");
    CHECK_ERROR(tg_googlenet_new(10, &(tg_model_opts){ .dropout_aux = TG_SOME(-0.5) }, dev),
                "tg_googlenet_new: dropout and dropout_aux must be in [0, 1], got 0.2 and -0.5");
    CHECK_ERROR(tg_alexnet_new(-3, NULL, dev), "tg_alexnet_new: num_classes must be >= 1, got -3");
    CHECK_ERROR(tg_alexnet_new(10, &(tg_model_opts){ .layer_init = true }, dev),
                "tg_alexnet_new: AlexNet has no option layer_init");
    CHECK_ERROR(tg_alexnet_original_new(10, &(tg_model_opts){ .projection_shortcut = true }, dev),
                "tg_alexnet_original_new: AlexNet has no option projection_shortcut");
    CHECK_ERROR(tg_lenet5_new(10, &(tg_model_opts){ .dropout = TG_SOME(0.5) }, dev),
                "tg_lenet5_new: LeNet-5 has no option dropout");
    CHECK_ERROR(tg_lenet5_modern_new(10, &(tg_model_opts){ .layer_init = true }, dev),
                "tg_lenet5_modern_new: the modern LeNet-5 has no option layer_init");
    CHECK_ERROR(tg_googlenet_forward_aux(NULL, NULL, NULL, NULL),
                "tg_googlenet_forward_aux: the module is not a GoogLeNet (tg_googlenet_new)");
}

TG_TEST_MAIN(&tg_case_lenet5_parameters_per_layer_as_the_paper, &tg_case_lenet5_subsampling,
             &tg_case_lenet5_c3_connection_table, &tg_case_lenet5_modern, &tg_case_alexnet_torchvision,
             &tg_case_alexnet_two_streams, &tg_case_vgg16_torchvision, &tg_case_vgg_configurations,
             &tg_case_googlenet_counts_names_and_aux, &tg_case_resnet_torchvision_counts,
             &tg_case_resnet_names_shapes_init_and_zero_init_residual, &tg_case_cifar_resnets, &tg_case_gradients_reach_every_parameter,
             &tg_case_bad_options)
