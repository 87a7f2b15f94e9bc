/* The CNN blocks: torchvision's state_dict names (so its checkpoints load), output shapes
 * with and without a projection shortcut, each forward against the same computation
 * written with the layers, a gradcheck in f64 of each on its input and every parameter,
 * and the messages. */
#include "nn_check.h"

/* ------------------------------------------------------------- gradcheck of a block */

typedef struct {
    tg_module *m;
    int n_params;
    const char *names[16];
} block_ctx;

static tg_tensor *block_fn(tg_tensor *const *in, void *vctx) {
    block_ctx *c = vctx;
    tg_tensor *y = tg_module_functional_call(c->m, c->n_params, (const char *const *)c->names, in + 1, 1, in);
    return tg_sum(tg_square(y), TG_ALL, false);
}

/* Gradchecks m (made f64 here) on x and every parameter, in training mode (batch
 * statistics), 15 parameters at a time (tg_gradcheck takes 16 inputs), then frees m. */
static void check_block(int *tg_failed_, const char *what, tg_module *m, tg_tensor *x) {
    CHECK(m && tg_module_cast(m, TG_F64) == TG_OK);
    if (!m) return;
    tg_named p;
    CHECK(tg_module_parameters(m, true, &p) == TG_OK);
    for (int first = 0; first < p.n; first += 15) {
        block_ctx c = { m, p.n - first < 15 ? p.n - first : 15, { 0 } };
        tg_tensor *in[16] = { x };
        for (int i = 0; i < c.n_params; i++) c.names[i] = p.names[first + i], in[1 + i] = p.tensors[first + i];
        tg_gradcheck_report rep;
        if (tg_gradcheck(block_fn, &c, 1 + c.n_params, in, NULL, &rep) != TG_OK)
            FAIL_("%s (parameters from %s): %s", what, p.names[first], rep.message);
    }
    tg_named_free(&p);
    tg_module_free(m);
}

#define BN(p) p ".weight", p ".bias", p ".running_mean", p ".running_var", p ".num_batches_tracked"

/* ------------------------------------------------------------- ResNet */

TEST(basic_block_names_shapes_and_forward) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *same = tg_basic_block_new(4, 4, NULL, dev);
    CHECK(names_are(same, 12, (const char *[]){ "conv1.weight", BN("bn1"), "conv2.weight", BN("bn2") }));
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 4, 6, 6), dev);
    CHECK(has_shape(tg_module_forward(same, x), TG_SHAPE(2, 4, 6, 6)));
    /* relu(bn2(conv2(relu(bn1(conv1 x)))) + x), with the block's own children */
    tg_module_eval(same);
    tg_tensor *h = tg_relu(tg_module_forward(tg_module_get(same, "bn1"), tg_module_forward(tg_module_get(same, "conv1"), x)));
    h = tg_module_forward(tg_module_get(same, "bn2"), tg_module_forward(tg_module_get(same, "conv2"), h));
    CHECK(max_diff(tg_module_forward(same, x), tg_relu(tg_add(h, x))) < 1e-6);

    tg_module *down = tg_basic_block_new(4, 8, &(tg_resnet_block_opts){ .stride = 2 }, dev);
    CHECK(names_are(down, 18, (const char *[]){ "conv1.weight", BN("bn1"), "conv2.weight", BN("bn2"),
                                                "downsample.0.weight", BN("downsample.1") }));
    CHECK(has_shape(tg_module_forward(down, x), TG_SHAPE(2, 8, 3, 3)));
    CHECK(has_shape(tg_module_get_param(down, "conv1.weight"), TG_SHAPE(8, 4, 3, 3)));
    CHECK(has_shape(tg_module_get_param(down, "downsample.0.weight"), TG_SHAPE(8, 4, 1, 1)));
    /* A channel change alone also needs the projection. */
    tg_module *wide = tg_basic_block_new(4, 6, NULL, dev);
    CHECK(tg_module_get(wide, "downsample.0") && has_shape(tg_module_forward(wide, x), TG_SHAPE(2, 6, 6, 6)));
    tg_clear_error();
    char buf[2048] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    tg_module_fprint(f, down);
    fclose(f);
    CHECK(!strcmp(buf, "BasicBlock(\n"
                       "  (conv1): Conv2d(4, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)\n"
                       "  (bn1): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
                       "  (relu): ReLU()\n"
                       "  (conv2): Conv2d(8, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
                       "  (bn2): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
                       "  (downsample): Sequential(\n"
                       "    (0): Conv2d(4, 8, kernel_size=(1, 1), stride=(2, 2), bias=False)\n"
                       "    (1): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
                       "  )\n)\n"));
    tg_module_free(same), tg_module_free(down), tg_module_free(wide);
}

TEST(bottleneck_names_and_shapes) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *b = tg_bottleneck_new(8, 4, &(tg_resnet_block_opts){ .stride = 2 }, dev);
    CHECK(names_are(b, 24, (const char *[]){ "conv1.weight", BN("bn1"), "conv2.weight", BN("bn2"), "conv3.weight", BN("bn3"),
                                             "downsample.0.weight", BN("downsample.1") }));
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 8, 5, 5), dev);
    CHECK(has_shape(tg_module_forward(b, x), TG_SHAPE(2, 16, 3, 3)));
    CHECK(has_shape(tg_module_get_param(b, "conv2.weight"), TG_SHAPE(4, 4, 3, 3)));
    CHECK(has_shape(tg_module_get_param(b, "conv3.weight"), TG_SHAPE(16, 4, 1, 1)));
    /* inplanes == 4 planes and stride 1: the identity shortcut. ResNeXt's 32x4d width. */
    tg_module *id = tg_bottleneck_new(16, 4, NULL, dev);
    CHECK(id && !tg_module_get(id, "downsample") && has_shape(tg_module_forward(id, tg_module_forward(b, x)), TG_SHAPE(2, 16, 3, 3)));
    tg_clear_error();
    tg_module *nx = tg_bottleneck_new(64, 16, &(tg_resnet_block_opts){ .groups = 4, .base_width = 32 }, dev);
    CHECK(has_shape(tg_module_get_param(nx, "conv2.weight"), TG_SHAPE(32, 8, 3, 3))); /* width 16 * 32/64 * 4 = 32 */
    tg_module_free(b), tg_module_free(id), tg_module_free(nx);
}

/* ------------------------------------------------------------- Inception, SE */

TEST(inception_names_shapes_and_concatenation) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_inception_opts o = { .ch1x1 = 2, .ch3x3red = 2, .ch3x3 = 3, .ch5x5red = 1, .ch5x5 = 2, .pool_proj = 1 };
    tg_module *m = tg_inception_new(3, &o, dev);
    CHECK(names_are(m, 36, (const char *[]){ "branch1.conv.weight", BN("branch1.bn"),
                                             "branch2.0.conv.weight", BN("branch2.0.bn"), "branch2.1.conv.weight", BN("branch2.1.bn"),
                                             "branch3.0.conv.weight", BN("branch3.0.bn"), "branch3.1.conv.weight", BN("branch3.1.bn"),
                                             "branch4.1.conv.weight", BN("branch4.1.bn") }));
    CHECK(has_shape(tg_module_get_param(m, "branch3.1.conv.weight"), TG_SHAPE(2, 1, 5, 5)));
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 3, 7, 7), dev);
    tg_tensor *y = tg_module_forward(m, x);
    CHECK(has_shape(y, TG_SHAPE(2, 8, 7, 7)));
    /* The first channels are branch1's output, the last branch4's. */
    CHECK(max_diff(tg_slice(y, 1, 0, 2, 1), tg_module_forward(tg_module_get(m, "branch1"), x)) < 1e-6);
    CHECK(max_diff(tg_slice(y, 1, 7, 8, 1), tg_module_forward(tg_module_get(m, "branch4"), x)) < 1e-6);
    o.branch3_kernel_size = 3; /* torchvision's GoogLeNet */
    tg_module *tv = tg_inception_new(3, &o, dev);
    CHECK(has_shape(tg_module_get_param(tv, "branch3.1.conv.weight"), TG_SHAPE(2, 1, 3, 3)));
    CHECK(!strcmp(tg_module_type_of(tg_module_get(m, "branch4.0"))->name, "MaxPool2d"));
    CHECK_ERROR(tg_inception_new(3, &(tg_inception_opts){ .ch1x1 = 2 }, dev),
                "tg_inception_new: in_channels and every branch's channels must be >= 1 and branch3_kernel_size odd, got "
                "in_channels 3, ch1x1 2, ch3x3red 0, ch3x3 0, ch5x5red 0, ch5x5 0, pool_proj 0, branch3_kernel_size 5");
    tg_module_free(m), tg_module_free(tv);
}

TEST(squeeze_excitation_gates_channels) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F32);
    tg_module *se = tg_squeeze_excitation_new(8, 2, dev);
    CHECK(names_are(se, 4, (const char *[]){ "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" }));
    CHECK(has_shape(tg_module_get_param(se, "fc1.weight"), TG_SHAPE(2, 8, 1, 1)));
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(2, 8, 4, 4), dev), *y = tg_module_forward(se, x);
    CHECK(has_shape(y, TG_SHAPE(2, 8, 4, 4)));
    /* y / x is one gate in (0, 1) per (n, c) */
    tg_tensor *pooled = tg_mean(x, TG_AXES(2, 3), true);
    tg_tensor *g = tg_conv2d(tg_relu(tg_conv2d(pooled, tg_module_get_param(se, "fc1.weight"), tg_module_get_param(se, "fc1.bias"), NULL)),
                             tg_module_get_param(se, "fc2.weight"), tg_module_get_param(se, "fc2.bias"), NULL);
    CHECK(max_diff(y, tg_mul(x, tg_sigmoid(g))) < 1e-6);
    tg_module_free(se);
}

/* ------------------------------------------------------------- gradchecks */

TEST(gradcheck_blocks) {
    tg_device *dev = tg_test_device();
    NEED_KERNELS(TG_F64);
    check_block(tg_failed_, "BasicBlock", tg_basic_block_new(2, 3, &(tg_resnet_block_opts){ .stride = 2 }, dev),
                tg_randn(TG_F64, TG_SHAPE(2, 2, 4, 4), dev));
    check_block(tg_failed_, "Bottleneck", tg_bottleneck_new(3, 2, &(tg_resnet_block_opts){ .stride = 2 }, dev),
                tg_randn(TG_F64, TG_SHAPE(2, 3, 4, 4), dev));
    check_block(tg_failed_, "Inception",
                tg_inception_new(2, &(tg_inception_opts){ .ch1x1 = 1, .ch3x3red = 1, .ch3x3 = 2, .ch5x5red = 1, .ch5x5 = 1,
                                                          .pool_proj = 1, .branch3_kernel_size = 3 }, dev),
                tg_randn(TG_F64, TG_SHAPE(2, 2, 3, 3), dev));
    check_block(tg_failed_, "SqueezeExcitation", tg_squeeze_excitation_new(4, 2, dev), tg_randn(TG_F64, TG_SHAPE(2, 4, 3, 3), dev));
}

/* ------------------------------------------------------------- messages */

TEST(error_messages) {
    tg_device *dev = tg_test_device();
    tg_module *b = tg_basic_block_new(3, 4, NULL, dev);
    CHECK_ERROR(tg_module_forward(b, tg_zeros(TG_F32, TG_SHAPE(1, 5, 4, 4), dev)),
                "tg_module_forward: Conv2d 'conv1': input [1,5,4,4] has 5 channels, in_channels is 3");
    tg_module *net = tg_sequential(tg_relu_new(), b);
    CHECK_ERROR(tg_module_forward(net, tg_zeros(TG_F32, TG_SHAPE(1, 5, 4, 4), dev)),
                "tg_module_forward: Conv2d '1.conv1': input [1,5,4,4] has 5 channels, in_channels is 3");
    tg_module_free(net);
    CHECK_ERROR(tg_basic_block_new(3, 4, &(tg_resnet_block_opts){ .groups = 2 }, dev),
                "tg_basic_block_new: BasicBlock only supports groups=1 and base_width=64");
    CHECK_ERROR(tg_bottleneck_new(0, 4, NULL, dev),
                "tg_bottleneck_new: inplanes, planes, stride, groups and base_width must be >= 1, got 0, 4, 1, 1 and 64");
    CHECK_ERROR(tg_squeeze_excitation_new(8, 0, dev),
                "tg_squeeze_excitation_new: input_channels and squeeze_channels must be >= 1, got 8 and 0");
}

TG_TEST_MAIN(&tg_case_basic_block_names_shapes_and_forward, &tg_case_bottleneck_names_and_shapes,
             &tg_case_inception_names_shapes_and_concatenation, &tg_case_squeeze_excitation_gates_channels,
             &tg_case_gradcheck_blocks, &tg_case_error_messages)
