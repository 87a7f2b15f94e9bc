/* The model zoo (LeNet-5, AlexNet, VGG, GoogLeNet, ResNet, SE-ResNet) as nn modules with
 * torchvision's names, and the model summary.
 * Included by tapegrad.h; it can also be included on its own.
 *
 * A zoo model is a tg_module like any other: train it, save its state dict, load
 * torchvision's weights into it (the names and shapes are torchvision's), swap its head:
 *
 *     tg_module *net = tg_resnet_new(18, 10, &(tg_model_opts){ .zero_init_residual = true }, dev);
 *     tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(8, 3, 32, 32), dev);   // any size >= 32: adaptive pool
 *     tg_tensor *logits = tg_module_forward(net, x);                  // (8, 10)
 *     tg_tensor *w = tg_module_get_param(net, "layer1.0.conv1.weight"); // (64, 64, 3, 3)
 *     tg_module_replace(net, "fc", tg_linear_new(512, 2, NULL, dev)); // a new head
 *     tg_module_free(net);
 *
 *     tg_module *g = tg_googlenet_new(1000, NULL, dev);       // aux classifiers by default
 *     tg_tensor *aux1, *aux2;                                 // set in training only
 *     tg_tensor *out = tg_googlenet_forward_aux(g, x, &aux1, &aux2);
 *     tg_tensor *aux = tg_add(tg_cross_entropy(aux1, y), tg_cross_entropy(aux2, y));
 *     tg_tensor *loss = tg_add(tg_cross_entropy(out, y), tg_mul_scalar(aux, 0.3)); // the paper's 0.3
 */
#ifndef TAPEGRAD_MODELS_H
#define TAPEGRAD_MODELS_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- the model zoo */

/* Options of every zoo constructor; a zeroed struct (or NULL) gives the paper's or
 * torchvision's model. A field that a model does not have must stay zero: setting it is
 * an error naming the field ("tg_resnet_new: ResNet has no option batch_norm"). */
typedef struct {
    bool batch_norm;          /* VGG: a BatchNorm2d after every conv (torchvision's vgg*_bn);
                                 modern LeNet-5: after C1, C3 and C5 */
    tg_opt_f64 dropout;       /* in [0, 1]: AlexNet and VGG 0.5 (both dropout layers of the
                                 classifier); GoogLeNet 0.2 (before fc) */
    tg_opt_f64 dropout_aux;   /* GoogLeNet: 0.7, in each auxiliary classifier */
    tg_opt_bool aux_logits;   /* GoogLeNet: true, the children aux1 and aux2 exist */
    bool zero_init_residual;  /* ResNet, SE-ResNet, CIFAR ResNet: the last BatchNorm weight of
                                 every block starts at zero (each block starts as the identity) */
    bool projection_shortcut; /* CIFAR ResNet: He et al.'s option B (1x1 conv + BN where the shape
                                 changes) instead of option A (parameter-free: subsample, zero pad) */
    bool layer_init;          /* keep each layer's own PyTorch default initialisation instead of
                                 the model's (below, per model) */
} tg_model_opts;

/* Every constructor: num_classes >= 1, opts as above, allocates on dev in f32 and returns
 * a new module in training mode (free it with tg_module_free), or NULL with a message
 * (bad num_classes, depth, config or option; out of memory). Forward: x (N, 3, H, W)
 * (LeNet: (N, 1, 32, 32)) -> logits (N, num_classes); too small an input fails in the
 * layer that cannot run it, the message naming that layer ("features.12"). */

/* LeNet-5 as in LeCun et al. 1998 (input (N, 1, 32, 32)): children c1 (Conv2d 1->6, 5x5;
 * 156 parameters), s2 (Subsampling: the sum of each 2x2 window times a trainable
 * coefficient plus a trainable bias per map, "weight" (6) and "bias" (6): 12), c3 (the
 * paper's partial connection table, Table I: children "0" to "3", convolutions 5x5 on
 * the S2 maps {i, i+1, i+2}, {i..i+3} (i = 0..5, mod 6), {0,1,3,4}, {1,2,4,5}, {0,2,3,5}
 * and all six, grouped 6/6/3/1: 1,516), s4 (Subsampling of 16 maps: 32), c5 (Conv2d
 * 16->120, 5x5: 48,120), f6 (Linear 120->84: 10,164) and output. Every layer but the
 * output is followed by the paper's squashing 1.7159 tanh(2x/3). The output layer is a
 * Linear 84->num_classes (logits for cross-entropy) in place of the paper's Euclidean RBF
 * units, which need a fixed code book and their own loss. Init: the paper's U(+-2.4/F),
 * F the fan-in of the unit (layer_init: PyTorch's defaults). */
TG_API tg_module *tg_lenet5_new(int64_t num_classes, const tg_model_opts *opts, tg_device *dev);
/* The modern variant, a Sequential: Conv2d(1, 6, 5), [BN], ReLU, MaxPool2d(2), Conv2d(6, 16,
 * 5) (full connection), [BN], ReLU, MaxPool2d(2), Conv2d(16, 120, 5), [BN], ReLU, Flatten,
 * Linear(120, 84), ReLU, Linear(84, num_classes). Input (N, 1, 32, 32). PyTorch's init. */
TG_API tg_module *tg_lenet5_modern_new(int64_t num_classes, const tg_model_opts *opts, tg_device *dev);

/* torchvision's AlexNet (the single-stream variant of "One weird trick"): features (a
 * Sequential: 0 Conv2d(3, 64, 11, stride 4, padding 2), 3 Conv2d(64, 192, 5, padding 2),
 * 6 Conv2d(192, 384, 3), 8 Conv2d(384, 256, 3), 10 Conv2d(256, 256, 3), ReLUs, 3x3/2 max
 * pools at 2, 5, 12), avgpool (AdaptiveAvgPool2d(6)), classifier (0 Dropout, 1 Linear(9216,
 * 4096), 2 ReLU, 3 Dropout, 4 Linear(4096, 4096), 5 ReLU, 6 Linear(4096, num_classes)).
 * 61,100,840 parameters for 1000 classes. Input at least 63x63. PyTorch's init (as
 * torchvision). */
TG_API tg_module *tg_alexnet_new(int64_t num_classes, const tg_model_opts *opts, tg_device *dev);
/* Krizhevsky et al. 2012's two-stream AlexNet, the streams as convolution groups:
 * features (0 conv1 Conv2d(3, 96, 11, stride 4): 55x55x96 from 227x227, 1 ReLU, 2
 * LocalResponseNorm(5, alpha 1e-4, beta 0.75, k 2; PyTorch's convention, alpha divided
 * by the size), 3 MaxPool2d(3, 2): 27x27x96, 4 conv2 Conv2d(96, 256, 5, padding 2, groups
 * 2), 5 ReLU, 6 LRN, 7 pool: 13x13, 8 conv3 Conv2d(256, 384, 3, padding 1) across the
 * streams, 9 ReLU, 10 conv4 Conv2d(384, 384, 3, padding 1, groups 2), 11 ReLU, 12 conv5
 * Conv2d(384, 256, 3, padding 1, groups 2), 13 ReLU, 14 pool: 6x6x256), classifier (0
 * Dropout, 1 Linear(9216, 4096), 2 ReLU, 3 Dropout, 4 Linear(4096, 4096), 5 ReLU, 6
 * Linear(4096, num_classes)). No adaptive pool: the input must be (N, 3, 227, 227).
 * Init: the paper's N(0, 0.01) weights, biases 1 in conv2, conv4, conv5 and the hidden
 * fully connected layers, 0 elsewhere. */
TG_API tg_module *tg_alexnet_original_new(int64_t num_classes, const tg_model_opts *opts, tg_device *dev);

/* The configurations of Simonyan and Zisserman's Table 1 (torchvision: vgg11 = A, vgg13 =
 * B, vgg16 = D, vgg19 = E). A-LRN adds a LocalResponseNorm(5, 1e-4, 0.75, 2) after the
 * first conv's ReLU; C has 1x1 convs as the third conv of the last three stages. */
typedef enum { TG_VGG_A, TG_VGG_A_LRN, TG_VGG_B, TG_VGG_C, TG_VGG_D, TG_VGG_E } tg_vgg_config;
#define TG_VGG11 TG_VGG_A
#define TG_VGG13 TG_VGG_B
#define TG_VGG16 TG_VGG_D
#define TG_VGG19 TG_VGG_E
/* torchvision's VGG: features (a Sequential of Conv2d 3x3 padding 1 (1x1 in C), [BatchNorm2d
 * with batch_norm], ReLU, and MaxPool2d(2, 2) after each stage; torchvision's indices
 * features.0, features.3, ...), avgpool (AdaptiveAvgPool2d(7)), classifier (0 Linear(25088,
 * 4096), 1 ReLU, 2 Dropout, 3 Linear(4096, 4096), 4 ReLU, 5 Dropout, 6 Linear(4096,
 * num_classes)). vgg16 has 138,357,544 parameters (553 MB). Input at least 32x32.
 * Init (torchvision's): convs kaiming_normal(fan_out, relu) with zero biases, BN 1 and 0,
 * Linear N(0, 0.01) with zero biases. */
TG_API tg_module *tg_vgg_new(tg_vgg_config config, int64_t num_classes, const tg_model_opts *opts, tg_device *dev);

/* torchvision's GoogLeNet (Inception v1, transform_input off): conv1 (torchvision's
 * BasicConv2d 7x7/2 as a Sequential of conv (bias-free), bn (eps 0.001) and relu, so the
 * names are its), maxpool1, conv2, conv3, maxpool2,
 * inception3a, 3b, maxpool3, 4a-4e, maxpool4, 5a, 5b (tg_inception_new with torchvision's
 * 3x3 third branch), aux1 (after 4a) and aux2 (after 4d) with aux_logits (InceptionAux:
 * adaptive 4x4 average pool, conv (BasicConv2d 1x1 to 128), fc1 Linear(2048, 1024), ReLU,
 * dropout, fc2 Linear(1024, num_classes)), avgpool, dropout, fc Linear(1024, num_classes).
 * 13,004,888 parameters with aux (1000 classes), 6,624,904 without. Inputs from 32x32
 * run. Init (torchvision's): conv and Linear weights
 * trunc_normal(0, 0.01, [-2, 2]), BN 1 and 0.
 * tg_module_forward returns the main logits only (torchvision in eval). */
TG_API tg_module *tg_googlenet_new(int64_t num_classes, const tg_model_opts *opts, tg_device *dev);
/* The main logits (N, num_classes), and in *aux1, *aux2 (either pointer may be NULL) the
 * auxiliary classifiers' logits (N, num_classes) when the model is in training and has
 * them, else NULL (torchvision's GoogLeNetOutputs(logits, aux_logits2, aux_logits1)).
 * The children's hooks run; the GoogLeNet module's own do not. NULL on error, with *aux1
 * and *aux2 NULL. net must come from tg_googlenet_new. */
TG_API tg_tensor *tg_googlenet_forward_aux(tg_module *net, tg_tensor *x, tg_tensor **aux1, tg_tensor **aux2);

/* torchvision's ResNet-18, 34 (BasicBlock, tg_basic_block_new) and 50, 101, 152
 * (Bottleneck, tg_bottleneck_new): conv1 (7x7/2, 64, no bias), bn1, relu, maxpool (3x3/2,
 * padding 1), layer1..layer4 (Sequentials of [2,2,2,2], [3,4,6,3], [3,4,6,3], [3,4,23,3],
 * [3,8,36,3] blocks of 64, 128, 256, 512 planes, stride 2 from layer2 on, projection
 * shortcuts "downsample.0/1"), avgpool (AdaptiveAvgPool2d(1)), fc (Linear(512 x expansion,
 * num_classes)). resnet50 has 25,557,032 parameters. Any input size runs (224x224 is the
 * paper's; 32x32 leaves layer4 1x1 maps). depth: 18, 34, 50, 101 or 152. Init
 * (torchvision's): convs kaiming_normal(fan_out, relu), BN 1 and 0, fc PyTorch's. */
TG_API tg_module *tg_resnet_new(int depth, int64_t num_classes, const tg_model_opts *opts, tg_device *dev);
/* SE-ResNet (Hu et al. 2018), depth 50, 101 or 152: the Bottleneck ResNet above with a
 * squeeze-and-excitation block (tg_squeeze_excitation_new, reduction 16: 4 planes -> 4
 * planes / 16 -> 4 planes) child "se" of every block (SEBottleneck: conv1, bn1, conv2, bn2,
 * conv3, bn3, relu, se, downsample), applied to the residual branch before the sum.
 * SE-ResNet-50 has 28,088,024 parameters (1000 classes). Init as tg_resnet_new. */
TG_API tg_module *tg_se_resnet_new(int depth, int64_t num_classes, const tg_model_opts *opts, tg_device *dev);
/* The CIFAR ResNets of He et al. 2015, section 4.2, depth = 6n + 2 (20, 32, 44, 56, 110,
 * ...): conv1 (3x3, 16, no bias), bn1, relu, layer1..layer3 (n BasicBlocks each of 16, 32
 * and 64 planes, stride 2 at the start of layer2 and layer3), avgpool (global), fc
 * (Linear(64, num_classes)). Shortcuts: option A by default, as the paper's CIFAR
 * models (the identity; where the shape changes, x[:, :, ::2, ::2] with zero channels
 * appended: no parameters, ResNet-20 has 0.27M = 269,722 with 10 classes); option B with
 * projection_shortcut (torchvision's downsample). Input (N, 3, 32, 32) (any size).
 * Init as tg_resnet_new. */
TG_API tg_module *tg_resnet_cifar_new(int depth, int64_t num_classes, const tg_model_opts *opts, tg_device *dev);

/* ---------------------------------------------------------------- model summary
 *
 * torchinfo's summary(): one forward on an input of the given shape, then a table of
 * every layer and the totals, readable on a 100-column terminal:
 *
 *     tg_model_summary *s = tg_summary(net, TG_SHAPE(1, 3, 224, 224), NULL);  // prints
 *     printf("%lld mult-adds\n", (long long)tg_summary_totals_of(s)->mult_adds);
 *     tg_model_summary_free(s);
 *
 * What runs. The forward runs on the model's device (that of its first parameter or
 * buffer; the default device for a model without) in the dtype of its first floating
 * parameter (f32 without), on an input of ones, with grad mode off, in eval mode unless
 * opts->train, inside a scope of its own. Afterwards the model is as it was: each
 * module's train/eval mode, its buffers (a training-mode forward updates BatchNorm's
 * running statistics: they are copied back), no hooks left, no gradients. A train-mode
 * summary draws dropout masks from the random generator as any forward does.
 *
 * Rows. One row per module call, in the order the calls start (a parent before its
 * children; a module called twice has two rows). With opts->depth 0 the rows are the
 * leaf modules (those without children); with depth N > 0 they are the model (depth 0)
 * and every module down to depth N, containers included and indented, deeper modules
 * folded into their ancestor's row.
 *
 * Counting (torchinfo's conventions):
 *   - params: the module's parameters and those below it, each tied parameter once,
 *     biases included (a Conv2d(3, 64, 3) row shows 1,792 = 1,728 weights + 64 biases);
 *     printed "(1,792)" when none of them is trainable.
 *   - mult_adds: counted from what the forward actually runs, so a module of one's own
 *     that calls tg_matmul or tg_conv2d directly is counted right: every matmul adds
 *     batch * M * K * N (a Linear (in, out) on R rows: R * in * out), every convolution
 *     N * H2 * W2 * F * F * D1 * D2 / groups (conv1d: N * L2 * F * D1 * D2 / groups; a
 *     transposed convolution, which scatters each input pixel: N * H1 * W1 * F * F * D1 *
 *     D2 / groups). A row counts what ran while its module ran, children included. Bias
 *     adds, normalisation, activations, pooling and every other elementwise op count 0
 *     (torchinfo's figures for conv nets include the bias adds, e.g. 15.48 G for VGG-16
 *     where this counts 15.47 G).
 *   - output_bytes: the bytes of the module's output (its activation memory).
 * Totals: params over the model (trainable + frozen = total), mult-adds over the whole
 * forward (functional ops outside any module included), input bytes, forward activations
 * (the outputs of every leaf call, summed; not doubled for backward as torchinfo's
 * "forward/backward pass size" is), params bytes, and their sum. MB are 10^6 bytes. */

typedef struct {
    int depth;        /* 0: one row per leaf module; N > 0: modules down to depth N (torchinfo's depth) */
    bool train;       /* run in training mode (torchinfo's mode="train"); default eval */
    bool quiet;       /* print nothing (read the result) */
    FILE *file;       /* where the table goes: stdout when NULL */
    tg_device *device; /* where the input is made: the model's device when NULL */
} tg_summary_opts;

typedef struct {
    const char *name;   /* dotted path from the model: "features.0"; "" for the model itself */
    const char *type;   /* the module type's name: "Conv2d" */
    int depth;          /* 0 for the model, 1 for its children, ... (call depth) */
    bool leaf;          /* the module has no children */
    tg_shape output_shape;
    int64_t params, trainable_params; /* the module's and below (tied once) */
    int64_t mult_adds;
    int64_t output_numel, output_bytes;
} tg_summary_row;

typedef struct {
    int64_t total_params, trainable_params, frozen_params;
    int64_t mult_adds;
    int64_t input_bytes;
    int64_t activations, activation_bytes; /* elements and bytes of every leaf call's output */
    int64_t param_bytes;
    int64_t total_bytes;                   /* input + activations + params */
} tg_summary_totals;

typedef struct tg_model_summary tg_model_summary;

/* Runs model once on an input of input_shape (batch first, e.g. (N, C, H, W)), prints
 * the table (unless opts->quiet) and returns the result (tg_model_summary_free), or NULL
 * with a message: "tg_summary: model is NULL", a bad shape ("tg_summary: input shape
 * ...") and a failed forward with the forward's own message after "tg_summary: " (a
 * wrong channel count, a device mix-up). The model is unchanged on error too. */
TG_API tg_model_summary *tg_summary(tg_module *model, tg_shape input_shape, const tg_summary_opts *opts);
/* Prints s's table to f (stdout when NULL) again. */
TG_API tg_status tg_summary_fprint(FILE *f, const tg_model_summary *s);
TG_API void tg_model_summary_free(tg_model_summary *s); /* NULL is fine */
/* The rows shown (see opts->depth), borrowed from s: i in [0, tg_summary_num_rows);
 * NULL with a message out of range. */
TG_API int tg_summary_num_rows(const tg_model_summary *s);
TG_API const tg_summary_row *tg_summary_row_at(const tg_model_summary *s, int i);
/* The totals, borrowed from s. */
TG_API const tg_summary_totals *tg_summary_totals_of(const tg_model_summary *s);

#ifdef __cplusplus
}
#endif
#endif
