/* The model summary against the course notes' numbers, worked out here by hand or by
 * their formulas: VGG-16 (configuration D) at 224, the single-stream AlexNet at 227, the
 * naive and the bottlenecked Inception module, random conv geometries; the printed table
 * of a tiny model line by line; the errors; and the model left as it was. */
#include <math.h>

#include "harness.h"

static const tg_summary_opts quiet = { .quiet = true };

/* The first row of type (from row from), or -1. */
static int find_row(const tg_model_summary *s, const char *type, int from) {
    for (int i = from; i < tg_summary_num_rows(s); i++)
        if (!strcmp(tg_summary_row_at(s, i)->type, type)) return i;
    return -1;
}

static bool shape_is(const tg_summary_row *r, tg_shape s) {
    if (r->output_shape.ndim != s.ndim) return false;
    for (int i = 0; i < s.ndim; i++)
        if (r->output_shape.dims[i] != s.dims[i]) return false;
    return true;
}

/* The notes' output size of a convolution or pooling on one axis: (W1 - F + 2P) / S + 1
 * (with dilation, the kernel spans d (F - 1) + 1). */
static int64_t out_size(int64_t w1, int64_t f, int64_t s, int64_t p, int64_t d) {
    return (w1 + 2 * p - d * (f - 1) - 1) / s + 1;
}

static tg_module *conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, tg_device *dev) {
    return tg_conv2d_new(in, out, k, &(tg_conv_layer_opts){ .stride = stride, .padding = pad }, dev);
}

static tg_module *max_pool(int64_t k, int64_t stride, int64_t pad) {
    return tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = k, .stride = stride, .padding = pad });
}

/* ------------------------------------------------------------- VGG-16 */

/* Configuration D: 3x3 convs (stride 1, pad 1) with ReLU, 2x2 max pools (0 below), then
 * FC-4096, FC-4096, FC-1000 with ReLU and dropout between, as torchvision's vgg16. */
static const int vgg16_cfg[] = { 64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0 };
#define VGG16_N ((int)(sizeof vgg16_cfg / sizeof vgg16_cfg[0]))

static tg_module *vgg16_new(tg_device *dev) {
    tg_module *layers[64];
    int n = 0, c = 3;
    for (int i = 0; i < VGG16_N; i++)
        if (vgg16_cfg[i]) {
            layers[n++] = conv(c, vgg16_cfg[i], 3, 1, 1, dev);
            layers[n++] = tg_relu_new();
            c = vgg16_cfg[i];
        } else {
            layers[n++] = max_pool(2, 2, 0);
        }
    layers[n++] = tg_flatten_new(1, -1);
    layers[n++] = tg_linear_new(512 * 7 * 7, 4096, NULL, dev);
    layers[n++] = tg_relu_new();
    layers[n++] = tg_dropout_new(0.5);
    layers[n++] = tg_linear_new(4096, 4096, NULL, dev);
    layers[n++] = tg_relu_new();
    layers[n++] = tg_dropout_new(0.5);
    layers[n++] = tg_linear_new(4096, 1000, NULL, dev);
    return tg_sequential_new(n, layers);
}

TEST(vgg16_matches_the_notes) {
    tg_module *net = vgg16_new(tg_test_device());
    CHECK(net);
    tg_model_summary *s = tg_summary(net, TG_SHAPE(1, 3, 224, 224), &quiet);
    CHECK(s);
    if (!s) {
        tg_module_free(net);
        return;
    }
    /* CONV3-64: [224x224x64] memory 224*224*64 = 3.2M, weights (3*3*3)*64 = 1,728; the
     * row counts the 64 biases too */
    const tg_summary_row *c1 = tg_summary_row_at(s, 0);
    CHECK(!strcmp(c1->name, "0") && !strcmp(c1->type, "Conv2d") && c1->leaf);
    CHECK(shape_is(c1, TG_SHAPE(1, 64, 224, 224)));
    CHECK(c1->output_numel == 3211264 && c1->output_bytes == 4 * 3211264);
    CHECK(tg_numel(tg_module_get_param(net, "0.weight")) == 1728);
    CHECK(c1->params == 1728 + 64 && c1->trainable_params == 1792);
    CHECK(c1->mult_adds == 224 * 224 * 64 * (3 * 3 * 3)); /* 86,704,128 */

    /* The notes' table: the input and every CONV, POOL and FC output, layer by layer,
     * and the mult-adds from H2 W2 F F D1 D2 (convs) and in * out (FCs). */
    int64_t want_act = 224 * 224 * 3, want_macs = 0, hw = 224, d1 = 3;
    int row = 0;
    for (int i = 0; i < VGG16_N; i++) {
        const char *type = vgg16_cfg[i] ? "Conv2d" : "MaxPool2d";
        row = find_row(s, type, row);
        CHECK(row >= 0);
        if (row < 0) break;
        const tg_summary_row *r = tg_summary_row_at(s, row++);
        if (vgg16_cfg[i]) {
            int64_t d2 = vgg16_cfg[i];
            want_macs += hw * hw * 3 * 3 * d1 * d2;
            d1 = d2;
        } else {
            hw /= 2;
        }
        CHECK(shape_is(r, TG_SHAPE(1, d1, hw, hw)));
        want_act += hw * hw * d1;
    }
    const int64_t fc[4] = { 25088, 4096, 4096, 1000 };
    for (int i = 0; i < 3 && row >= 0; i++) {
        row = find_row(s, "Linear", row);
        CHECK(row >= 0);
        if (row < 0) break;
        const tg_summary_row *r = tg_summary_row_at(s, row++);
        CHECK(shape_is(r, TG_SHAPE(1, fc[i + 1])));
        CHECK(r->mult_adds == fc[i] * fc[i + 1] && r->params == fc[i] * fc[i + 1] + fc[i + 1]);
        want_macs += fc[i] * fc[i + 1];
        want_act += fc[i + 1];
    }
    const tg_summary_totals *t = tg_summary_totals_of(s);
    /* "TOTAL params: 138M parameters": 138,357,544 with biases (Keras' and torchvision's count) */
    CHECK(t->total_params == 138357544 && t->trainable_params == 138357544 && t->frozen_params == 0);
    CHECK(t->param_bytes == 4 * 138357544LL);
    /* 15.47 G mult-adds (torchinfo's 15.48 G adds the 13,556,712 bias adds) */
    CHECK(want_macs == 15470264320LL && t->mult_adds == want_macs);
    CHECK(floor(t->mult_adds / 1e7 + 0.5) == 1547);
    /* The notes' per-layer memory adds up to 15,237,608 values (15.2M, 61 MB at 4 bytes);
     * their "TOTAL memory: 24M * 4 bytes ~= 93MB / image" does not follow from their own
     * table (24M is not a sum of its entries). What this summary counts as forward
     * activations is every leaf's output, the ReLUs, Flatten and Dropouts included: the
     * table's outputs less the input, plus a ReLU per conv and FC-4096, the flattened
     * 25,088 and the two dropouts: 28,676,072 values (114.7 MB). */
    CHECK(want_act == 15237608);
    int64_t relus = 13547520 + 2 * 4096;
    CHECK(t->activations == want_act - 224 * 224 * 3 + relus + 25088 + 2 * 4096);
    CHECK(t->activations == 28676072 && t->activation_bytes == 4 * 28676072LL);
    CHECK(t->input_bytes == 4 * 150528);
    CHECK(t->total_bytes == t->input_bytes + t->activation_bytes + t->param_bytes);
    tg_model_summary_free(s);
    tg_module_free(net);
}

/* ------------------------------------------------------------- AlexNet */

/* The notes' single-stream AlexNet: 227x227x3 input, CONV1 96 11x11 stride 4 pad 0, the
 * 3x3 stride 2 pools, CONV2 256 5x5 pad 2, CONV3-5 3x3 pad 1, then FC 4096, 4096, 1000. */
TEST(alexnet_layer_sizes) {
    tg_device *dev = tg_test_device();
    tg_module *net = tg_sequential(conv(3, 96, 11, 4, 0, dev), tg_relu_new(), max_pool(3, 2, 0),
                                   conv(96, 256, 5, 1, 2, dev), tg_relu_new(), max_pool(3, 2, 0),
                                   conv(256, 384, 3, 1, 1, dev), tg_relu_new(), conv(384, 384, 3, 1, 1, dev),
                                   tg_relu_new(), conv(384, 256, 3, 1, 1, dev), tg_relu_new(), max_pool(3, 2, 0),
                                   tg_flatten_new(1, -1), tg_linear_new(9216, 4096, NULL, dev), tg_relu_new(),
                                   tg_linear_new(4096, 4096, NULL, dev), tg_relu_new(),
                                   tg_linear_new(4096, 1000, NULL, dev));
    CHECK(net);
    tg_model_summary *s = tg_summary(net, TG_SHAPE(1, 3, 227, 227), &quiet);
    CHECK(s);
    if (!s) {
        tg_module_free(net);
        return;
    }
    /* (depth, height) after CONV1, POOL1, CONV2, POOL2, CONV3, CONV4, CONV5, POOL3 */
    static const int64_t want[8][2] = { { 96, 55 }, { 96, 27 }, { 256, 27 }, { 256, 13 },
                                        { 384, 13 }, { 384, 13 }, { 256, 13 }, { 256, 6 } };
    const int64_t fc[3] = { 4096, 4096, 1000 };
    int k = 0, f = 0;
    for (int i = 0; i < tg_summary_num_rows(s); i++) {
        const tg_summary_row *r = tg_summary_row_at(s, i);
        if (!strcmp(r->type, "Conv2d") || !strcmp(r->type, "MaxPool2d")) {
            CHECK(k < 8 && shape_is(r, TG_SHAPE(1, want[k][0], want[k][1], want[k][1])));
            k++;
        } else if (!strcmp(r->type, "Linear")) {
            CHECK(f < 3 && shape_is(r, TG_SHAPE(1, fc[f])));
            f++;
        }
    }
    CHECK(k == 8 && f == 3);
    /* CONV1: 55*55*96 outputs of 11*11*3 weights each (the notes' 105,415,200) */
    CHECK(tg_summary_row_at(s, 0)->mult_adds == 55 * 55 * 96 * 363);
    CHECK(tg_summary_row_at(s, 0)->params == 96 * 363 + 96);
    tg_model_summary_free(s);
    tg_module_free(net);
}

/* ------------------------------------------------------------- Inception */

/* Four branches over the same input, concatenated along channels. */
typedef struct {
    tg_module *b[4];
} inception;

static tg_tensor *inception_forward(tg_module *self, tg_tensor *x) { /* (N, C, H, W) -> (N, sum, H, W) */
    inception *m = tg_module_data(self);
    tg_tensor *y[4];
    for (int i = 0; i < 4; i++) y[i] = tg_module_forward(m->b[i], x);
    return tg_cat(4, y, 1);
}
static const tg_module_type inception_type = { .name = "Inception", .data_size = sizeof(inception), .forward = inception_forward };

static tg_module *inception_new(tg_module *b0, tg_module *b1, tg_module *b2, tg_module *b3) {
    tg_module *self = tg_module_new(&inception_type);
    inception *m = tg_module_data(self);
    tg_module *b[4] = { b0, b1, b2, b3 };
    const char *names[4] = { "branch1", "branch2", "branch3", "branch4" };
    for (int i = 0; i < 4; i++) tg_module_add(self, names[i], &m->b[i], b[i]);
    return tg_module_done(self);
}

static tg_module *same(int64_t in, int64_t out, int64_t k, tg_device *dev) {
    return tg_conv2d_new(in, out, k, &(tg_conv_layer_opts){ .padding_kind = TG_CONV_PAD_SAME }, dev);
}

TEST(inception_naive_and_bottleneck) {
    tg_device *dev = tg_test_device();
    /* naive, on 28x28x256: 1x1 128, 3x3 192, 5x5 96, 3x3 pool -> 28x28x672 */
    tg_module *naive = inception_new(same(256, 128, 1, dev), same(256, 192, 3, dev), same(256, 96, 5, dev),
                                     max_pool(3, 1, 1));
    /* with 1x1 64 reductions before the 3x3 and the 5x5 and after the pool -> 28x28x480 */
    tg_module *neck = inception_new(same(256, 128, 1, dev), tg_sequential(same(256, 64, 1, dev), same(64, 192, 3, dev)),
                                    tg_sequential(same(256, 64, 1, dev), same(64, 96, 5, dev)),
                                    tg_sequential(max_pool(3, 1, 1), same(256, 64, 1, dev)));
    CHECK(naive && neck);
    tg_model_summary *a = naive ? tg_summary(naive, TG_SHAPE(1, 256, 28, 28), &quiet) : NULL;
    tg_model_summary *b = neck ? tg_summary(neck, TG_SHAPE(1, 256, 28, 28), &quiet) : NULL;
    CHECK(a && b);
    if (a && b) {
        /* The notes' conv ops: 28x28x128x1x1x256 + 28x28x192x3x3x256 + 28x28x96x5x5x256 = 854M */
        int64_t px = 28 * 28, naive_ops = px * 128 * 256 + px * 192 * 9 * 256 + px * 96 * 25 * 256;
        CHECK(naive_ops == 854196224 && tg_summary_totals_of(a)->mult_adds == naive_ops);
        CHECK(floor(naive_ops / 1e6 + 0.5) == 854);
        /* 28x28x64x1x1x256 (twice) + 28x28x128x1x1x256 + 28x28x192x3x3x64 + 28x28x96x5x5x64
         * + 28x28x64x1x1x256 = 271,351,808: the module the notes draw. Their total "358M"
         * is 86.7M more, what the 3x3 costs on 128 channels instead of 64
         * (28x28x192x3x3x128 = 173.4M gives 358,055,936), so it is not checked here. */
        int64_t neck_ops = 3 * px * 64 * 256 + px * 128 * 256 + px * 192 * 9 * 64 + px * 96 * 25 * 64;
        CHECK(neck_ops == 271351808 && tg_summary_totals_of(b)->mult_adds == neck_ops);
        CHECK(neck_ops - px * 192 * 9 * 64 + px * 192 * 9 * 128 == 358055936);
        /* the leaves' output shapes and the whole module's */
        CHECK(shape_is(tg_summary_row_at(a, 3), TG_SHAPE(1, 256, 28, 28)));
        tg_model_summary *whole = tg_summary(naive, TG_SHAPE(1, 256, 28, 28), &(tg_summary_opts){ .quiet = true, .depth = 1 });
        CHECK(whole && tg_summary_num_rows(whole) == 5);
        if (whole) {
            const tg_summary_row *r = tg_summary_row_at(whole, 0);
            CHECK(!strcmp(r->name, "") && !strcmp(r->type, "Inception") && !r->leaf && r->depth == 0);
            CHECK(shape_is(r, TG_SHAPE(1, 672, 28, 28)) && r->mult_adds == naive_ops);
            CHECK(!strcmp(tg_summary_row_at(whole, 2)->name, "branch2") && tg_summary_row_at(whole, 2)->depth == 1);
        }
        tg_model_summary_free(whole);
        tg_model_summary *w2 = tg_summary(neck, TG_SHAPE(1, 256, 28, 28), &(tg_summary_opts){ .quiet = true, .depth = 1 });
        CHECK(w2 && shape_is(tg_summary_row_at(w2, 0), TG_SHAPE(1, 480, 28, 28)));
        /* depth 1 folds branch2's two convs into its row */
        CHECK(w2 && tg_summary_num_rows(w2) == 5 && tg_summary_row_at(w2, 2)->mult_adds == px * 64 * 256 + px * 192 * 9 * 64);
        tg_model_summary_free(w2);
    }
    tg_model_summary_free(a);
    tg_model_summary_free(b);
    tg_module_free(naive);
    tg_module_free(neck);
}

/* ------------------------------------------------------------- conv geometries */

TEST(conv_macs_follow_the_formula) {
    tg_device *dev = tg_test_device();
    /* N, D1, W1 (square), D2, F, S, P, dilation, groups */
    static const int64_t g[][9] = {
        { 1, 3, 32, 8, 3, 1, 1, 1, 1 }, { 2, 4, 17, 6, 5, 2, 2, 1, 2 }, { 3, 6, 11, 9, 3, 3, 0, 2, 3 },
        { 1, 8, 9, 8, 1, 1, 0, 1, 8 },  { 2, 5, 13, 10, 4, 2, 1, 1, 5 },
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        const int64_t *c = g[i];
        tg_module *m = tg_conv2d_new(c[1], c[3], c[4],
                                     &(tg_conv_layer_opts){ .stride = c[5], .padding = c[6], .dilation = c[7], .groups = c[8] },
                                     dev);
        tg_model_summary *s = tg_summary(m, TG_SHAPE(c[0], c[1], c[2], c[2]), &quiet);
        CHECK(s && tg_summary_num_rows(s) == 1);
        if (s) {
            int64_t w2 = out_size(c[2], c[4], c[5], c[6], c[7]);
            const tg_summary_row *r = tg_summary_row_at(s, 0);
            CHECK(shape_is(r, TG_SHAPE(c[0], c[3], w2, w2)));
            if (r->mult_adds != c[0] * w2 * w2 * c[4] * c[4] * c[1] * c[3] / c[8])
                FAIL_("geometry %zu: %lld mult-adds", i, (long long)r->mult_adds);
            CHECK(r->params == c[3] * c[1] / c[8] * c[4] * c[4] + c[3]);
        }
        tg_model_summary_free(s);
        tg_module_free(m);
    }
    /* and random ones (a fixed LCG, so a failure repeats): N, groups, D1 and D2 as
     * multiples of groups, F, S, P, dilation, W1 large enough for one output */
    uint64_t st = 12345;
#define RND(n) ((st = st * 6364136223846793005ULL + 1442695040888963407ULL), (int64_t)((st >> 33) % (n)))
    for (int i = 0; i < 12; i++) {
        int64_t n = 1 + RND(3), gr = 1 + RND(3), d1 = gr * (1 + RND(3)), d2 = gr * (1 + RND(4)), f = 1 + RND(5),
                sd = 1 + RND(3), p = RND(3), dl = 1 + RND(2), w1 = dl * (f - 1) + 1 + RND(12);
        tg_module *m = tg_conv2d_new(d1, d2, f, &(tg_conv_layer_opts){ .stride = sd, .padding = p, .dilation = dl, .groups = gr },
                                     dev);
        tg_model_summary *s = tg_summary(m, TG_SHAPE(n, d1, w1, w1), &quiet);
        int64_t w2 = out_size(w1, f, sd, p, dl);
        CHECK(s && shape_is(tg_summary_row_at(s, 0), TG_SHAPE(n, d2, w2, w2)));
        if (s && tg_summary_row_at(s, 0)->mult_adds != n * w2 * w2 * f * f * d1 * d2 / gr)
            FAIL_("random geometry %d: %lld mult-adds", i, (long long)tg_summary_row_at(s, 0)->mult_adds);
        tg_model_summary_free(s);
        tg_module_free(m);
    }
#undef RND
    /* conv1d: L2 F D1 D2 per sample; L2 = (20 + 2 - 3) / 2 + 1 = 10 */
    tg_module *c1 = tg_conv1d_new(4, 6, 3, &(tg_conv_layer_opts){ .stride = 2, .padding = 1, .groups = 2 }, dev);
    tg_model_summary *s = tg_summary(c1, TG_SHAPE(2, 4, 20), &quiet);
    CHECK(s && tg_summary_row_at(s, 0)->mult_adds == 2 * 10 * 3 * 4 * 6 / 2);
    tg_model_summary_free(s);
    tg_module_free(c1);
    /* a transposed conv scatters each of its H1 W1 input pixels through F F D2 / groups
     * weights per input channel: 2 * 5*5 * 3*3 * 4 * 6 / 2; its output is (5-1)*2 + 3 = 11 */
    tg_module *ct = tg_conv_transpose2d_new(4, 6, 3, &(tg_conv_layer_opts){ .stride = 2, .groups = 2 }, dev);
    s = tg_summary(ct, TG_SHAPE(2, 4, 5, 5), &quiet);
    CHECK(s && shape_is(tg_summary_row_at(s, 0), TG_SHAPE(2, 6, 11, 11)));
    CHECK(s && tg_summary_row_at(s, 0)->mult_adds == 2 * 25 * 9 * 4 * 6 / 2);
    tg_model_summary_free(s);
    tg_module_free(ct);
}

/* ------------------------------------------------------------- functional ops */

/* A module of one's own: a Linear child and a matmul of its own weight (tied to a
 * second name). */
typedef struct {
    tg_module *fc;
    tg_tensor *w;
} twostep;

static tg_tensor *twostep_forward(tg_module *self, tg_tensor *x) { /* (B, T, 3) -> (B, T, 5) */
    twostep *m = tg_module_data(self);
    return tg_matmul(tg_module_forward(m->fc, x), m->w);
}
static const tg_module_type twostep_type = { .name = "TwoStep", .data_size = sizeof(twostep), .forward = twostep_forward };

TEST(functional_ops_are_counted) {
    tg_device *dev = tg_test_device();
    tg_module *self = tg_module_new(&twostep_type);
    twostep *m = tg_module_data(self);
    tg_module_add(self, "fc", &m->fc, tg_linear_new(3, 4, NULL, dev));
    tg_module_param(self, "w", &m->w, tg_randn(TG_F32, TG_SHAPE(4, 5), dev));
    tg_module_param(self, "w_tied", NULL, m->w); /* the same tensor again: counted once */
    self = tg_module_done(self);
    CHECK(self);
    /* x (2, 6, 3): the Linear runs 12 rows of 3 * 4, the matmul 12 rows of 4 * 5 */
    tg_model_summary *s = tg_summary(self, TG_SHAPE(2, 6, 3), &(tg_summary_opts){ .quiet = true, .depth = 2 });
    CHECK(s && tg_summary_num_rows(s) == 2);
    if (s) {
        const tg_summary_row *root = tg_summary_row_at(s, 0), *fc = tg_summary_row_at(s, 1);
        CHECK(!strcmp(root->type, "TwoStep") && root->params == 4 * 3 + 4 + 20 && root->mult_adds == 12 * 12 + 12 * 20);
        CHECK(!strcmp(fc->name, "fc") && fc->mult_adds == 12 * 12 && shape_is(fc, TG_SHAPE(2, 6, 4)));
        CHECK(tg_summary_totals_of(s)->mult_adds == 12 * 12 + 12 * 20);
        CHECK(tg_summary_totals_of(s)->total_params == 36 && tg_summary_totals_of(s)->param_bytes == 4 * 36);
        /* only leaves count as activations: fc's (2, 6, 4) */
        CHECK(tg_summary_totals_of(s)->activations == 48);
    }
    tg_model_summary_free(s);
    tg_module_free(self);
}

/* ------------------------------------------------------------- the table */

static tg_module *tiny_new(tg_device *dev) {
    return tg_sequential(tg_conv2d_new(1, 2, 3, NULL, dev), tg_relu_new(), tg_flatten_new(1, -1),
                         tg_linear_new(8, 3, NULL, dev));
}

/* Reads what was printed to f into buf. */
static const char *read_back(FILE *f, char *buf, size_t size) {
    rewind(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    return buf;
}

#define LINE(s) s "\n"
TEST(table_lines) {
    tg_module *net = tiny_new(tg_test_device());
    CHECK(tg_module_requires_grad_(tg_module_get(net, "3"), false) == TG_OK);
    FILE *f = tmpfile();
    CHECK(f && net);
    if (!f) return;
    tg_model_summary *s = tg_summary(net, TG_SHAPE(1, 1, 4, 4), &(tg_summary_opts){ .file = f });
    CHECK(s);
    static char buf[8192];
    const char *out = read_back(f, buf, sizeof buf);
    /* conv: 2 * (3*3) + 2 = 20 params, 2*2 outputs * 2 channels * 9 = 72 mult-adds,
     * 8 floats; the frozen Linear(8, 3): (27) params, 24 mult-adds, 12 bytes */
    static const char *const want[] = {
        LINE("Layer (type)                      Output shape               Param #        Mult-adds  Output bytes"),
        LINE("0 (Conv2d)                        [1, 2, 2, 2]                    20               72            32"),
        LINE("1 (ReLU)                          [1, 2, 2, 2]                     0                0            32"),
        LINE("2 (Flatten)                       [1, 8]                           0                0            32"),
        LINE("3 (Linear)                        [1, 3]                        (27)               24            12"),
        LINE("Total params: 47"),
        LINE("Trainable params: 20"),
        LINE("Non-trainable params: 27"),
        LINE("Total mult-adds: 96"),
        LINE("Input size (MB): 0.00"),
        LINE("Params size (MB): 0.00"),
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i])) FAIL_("missing line \"%.*s\" in\n%s", (int)strlen(want[i]) - 1, want[i], out);
    /* every line fits in 100 columns */
    for (const char *p = out; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        CHECK(len <= 100);
        p += len + (e != NULL);
    }
    /* tg_summary_fprint prints the same again */
    FILE *g = tmpfile();
    static char buf2[8192];
    CHECK(g && tg_summary_fprint(g, s) == TG_OK && !strcmp(read_back(g, buf2, sizeof buf2), out));
    if (g) fclose(g);
    fclose(f);
    /* thousands separators and a unit on a bigger count */
    tg_module *big = tg_linear_new(1000, 2000, NULL, tg_test_device());
    f = tmpfile();
    tg_model_summary *sb = tg_summary(big, TG_SHAPE(3, 1000), &(tg_summary_opts){ .file = f });
    out = read_back(f, buf, sizeof buf);
    CHECK(strstr(out, LINE("Linear                            [3, 2000]                2,002,000        6,000,000        24,000")));
    CHECK(strstr(out, LINE("Total mult-adds: 6,000,000 (6.00 M)")));
    CHECK(strstr(out, LINE("Params size (MB): 8.01")));
    fclose(f);
    tg_model_summary_free(sb);
    tg_module_free(big);
    tg_model_summary_free(s);
    tg_module_free(net);
}

TEST(depth_rows_indent) {
    tg_device *dev = tg_test_device();
    tg_module *net = tg_sequential(tg_sequential(tg_linear_new(4, 4, NULL, dev), tg_relu_new()), tg_linear_new(4, 2, NULL, dev));
    FILE *f = tmpfile();
    CHECK(net && f);
    if (!f) return;
    tg_model_summary *s = tg_summary(net, TG_SHAPE(5, 4), &(tg_summary_opts){ .file = f, .depth = 2 });
    static char buf[8192];
    const char *out = read_back(f, buf, sizeof buf);
    CHECK(s && tg_summary_num_rows(s) == 5);
    CHECK(strstr(out, LINE("Sequential                        [5, 2]                          30              120            40")));
    CHECK(strstr(out, LINE("  0 (Sequential)                  [5, 4]                          20               80            80")));
    CHECK(strstr(out, LINE("    0.0 (Linear)                  [5, 4]                          20               80            80")));
    CHECK(strstr(out, LINE("  1 (Linear)                      [5, 2]                          10               40            40")));
    /* depth 1 folds 0.0 and 0.1 into 0; depth 0 lists the three leaves */
    tg_model_summary *s1 = tg_summary(net, TG_SHAPE(5, 4), &(tg_summary_opts){ .quiet = true, .depth = 1 });
    tg_model_summary *s0 = tg_summary(net, TG_SHAPE(5, 4), &quiet);
    CHECK(s1 && tg_summary_num_rows(s1) == 3 && s0 && tg_summary_num_rows(s0) == 3);
    CHECK(s0 && !strcmp(tg_summary_row_at(s0, 1)->name, "0.1") && tg_summary_row_at(s0, 1)->depth == 2);
    /* activations are the leaves' outputs whatever is shown: 20 + 20 + 10 floats */
    CHECK(s0 && s1 && tg_summary_totals_of(s0)->activations == 50 && tg_summary_totals_of(s1)->activations == 50);
    fclose(f);
    tg_model_summary_free(s);
    tg_model_summary_free(s1);
    tg_model_summary_free(s0);
    tg_module_free(net);
}

/* ------------------------------------------------------------- errors and state */

TEST(errors) {
    tg_device *dev = tg_test_device();
    CHECK_ERROR(tg_summary(NULL, TG_SHAPE(1, 3, 8, 8), &quiet), "tg_summary: model is NULL");
    tg_module *net = tg_sequential(tg_conv2d_new(3, 4, 3, NULL, dev), tg_relu_new());
    CHECK_ERROR(tg_summary(net, TG_SHAPE(1, 5, 8, 8), &quiet),
                "tg_summary: tg_module_forward: Conv2d '0': input [1,5,8,8] has 5 channels, in_channels is 3");
    CHECK_ERROR(tg_summary(net, TG_SHAPE(1, 3), &quiet),
                "tg_summary: tg_module_forward: Conv2d '0': input [1,3] has 2 axes, expected 3 or 4 (N, C, H, W)");
    CHECK_ERROR(tg_summary(net, TG_SCALAR_SHAPE, &quiet), "tg_summary: input shape has 0 dimensions (1 to 8, batch first)");
    CHECK_ERROR(tg_summary(net, TG_SHAPE(0, 3, 8, 8), &quiet), "tg_summary: input shape [0,3,8,8] has a size below 1");
    CHECK_ERROR(tg_summary(net, TG_SHAPE(1, 3, 8, 8), &(tg_summary_opts){ .depth = -1 }), "tg_summary: depth -1 is negative");
    tg_model_summary *s = tg_summary(net, TG_SHAPE(1, 3, 8, 8), &quiet);
    CHECK_ERROR(tg_summary_row_at(s, 2), "tg_summary_row_at: row 2 is out of range (2 rows)");
    CHECK_ERROR(tg_summary_row_at(NULL, 0), "tg_summary_row_at: summary is NULL");
    CHECK_ERROR(tg_summary_totals_of(NULL), "tg_summary_totals_of: summary is NULL");
    CHECK_ERROR(tg_summary_fprint(stdout, NULL), "tg_summary_fprint: summary is NULL");
    tg_model_summary_free(s);
    tg_model_summary_free(NULL);
    /* calls nested past 64 levels are refused, not overflowed */
    tg_module *deep = tg_linear_new(2, 2, NULL, dev);
    for (int i = 0; i < 70; i++) deep = tg_sequential(deep);
    CHECK_ERROR_CONTAINS(tg_summary(deep, TG_SHAPE(1, 2), &quiet), "': module calls nested deeper than 64");
    CHECK(tg_module_forward(deep, tg_ones(TG_F32, TG_SHAPE(1, 2), dev)));
    tg_module_free(deep);
    /* the input made on another device than the model's: the forward's message */
    tg_device *other = tg_device_get(tg_device_of(tg_module_get_param(net, "0.weight")) == tg_device_get("cpu") ? "opencl" : "cpu");
    tg_clear_error();
    if (other)
        CHECK_ERROR_CONTAINS(tg_summary(net, TG_SHAPE(1, 3, 8, 8), &(tg_summary_opts){ .quiet = true, .device = other }),
                             "tg_summary: tg_module_forward: Conv2d '0': input on ");
    else
        printf("  (no second device: the device mix-up is checked where OpenCL is)\n");
    tg_module_free(net);
}

TEST(model_left_as_it_was) {
    tg_device *dev = tg_test_device();
    tg_module *net = tg_sequential(tg_conv2d_new(2, 3, 3, NULL, dev), tg_batchnorm2d_new(3, NULL, dev), tg_relu_new(),
                                   tg_dropout_new(0.5), tg_batchnorm2d_new(3, NULL, dev));
    CHECK(net);
    if (!net) return;
    tg_module_eval(tg_module_get(net, "4")); /* a mixed tree: the last BatchNorm in eval */
    for (int train = 0; train < 2; train++) {
        tg_model_summary *s = tg_summary(net, TG_SHAPE(2, 2, 6, 6), &(tg_summary_opts){ .quiet = true, .train = train });
        CHECK(s && tg_summary_num_rows(s) == 5);
        tg_model_summary_free(s);
        CHECK(tg_module_is_training(net) && tg_module_is_training(tg_module_get(net, "1")));
        CHECK(!tg_module_is_training(tg_module_get(net, "4")));
        /* the running statistics are untouched (a train-mode forward updates them) */
        tg_tensor *nbt = tg_module_get_buffer(net, "1.num_batches_tracked");
        CHECK(nbt && tg_item(nbt) == 0);
        double *rm = tg_test_values(tg_module_get_buffer(net, "1.running_mean"));
        double *rv = tg_test_values(tg_module_get_buffer(net, "1.running_var"));
        CHECK(rm && rv);
        for (int i = 0; rm && rv && i < 3; i++) CHECK(rm[i] == 0 && rv[i] == 1);
        free(rm);
        free(rv);
        CHECK(!tg_grad(tg_module_get_param(net, "0.weight")));
    }
    CHECK(tg_is_grad_enabled());
    /* no hook left behind: a forward after the summaries runs (a hook left would write
     * into a freed summary) */
    tg_tensor *y = tg_module_forward(net, tg_ones(TG_F32, TG_SHAPE(2, 2, 6, 6), dev));
    CHECK(y && tg_size(y, 1) == 3);
    /* a model that cannot run leaves nothing registered either */
    tg_model_summary *bad = tg_summary(net, TG_SHAPE(2, 7, 6, 6), &(tg_summary_opts){ .quiet = true, .train = true });
    CHECK(!bad);
    /* (the forward above, in training mode, counted one batch) */
    CHECK(tg_module_is_training(net) && tg_item(tg_module_get_buffer(net, "1.num_batches_tracked")) == 1);
    CHECK(tg_module_forward(net, tg_ones(TG_F32, TG_SHAPE(2, 2, 6, 6), dev)));
    tg_module_free(net);
}

TG_TEST_MAIN(&tg_case_table_lines, &tg_case_depth_rows_indent, &tg_case_functional_ops_are_counted,
             &tg_case_conv_macs_follow_the_formula, &tg_case_errors, &tg_case_model_left_as_it_was,
             &tg_case_alexnet_layer_sizes, &tg_case_inception_naive_and_bottleneck, &tg_case_vgg16_matches_the_notes)
