/* The model zoo (LeNet-5, AlexNet, VGG, GoogLeNet, ResNet, SE-ResNet) as nn modules with
 * torchvision's names, and the model summary.
 * Included by tapegrad.h; it can also be included on its own. */
#ifndef TAPEGRAD_MODELS_H
#define TAPEGRAD_MODELS_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- the model zoo */

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
