/* Batch, layer and group norm on the CPU against memory bandwidth: GB/s of the bytes a
 * kernel must move (training forward: x read for the statistics, read again and y
 * written; backward: x and dout read for the sums, read again and dx written), beside
 * tg_add on the same size (an elementwise op runs at about the machine's triad
 * bandwidth). Shapes: the activations of ResNet-20 on CIFAR and of the notes' CNN at
 * batch 64, and 2-D (N, C) inputs. Measures, never asserts.
 * --cold cycles through enough copies of the inputs (64 MB and more) that each call finds
 * its x and dout out of the caches, as a training step does (there the activations of a
 * whole forward sit between a batch norm's forward and its backward); by default the
 * same inputs are timed again and again, from L2 or L3.
 * Usage: bench_norm [--quick] [--rounds R] [--cold] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tapegrad.h"

typedef struct {
    tg_tensor *x, *x2, *w, *b, *rm, *rv, *y, *gy; /* y recorded from x (a param) for the backward cases */
    int64_t groups;
} norm_in;

typedef tg_tensor *(*case_fn)(norm_in *in);

static tg_tensor *c_add(norm_in *in) { return tg_add(in->x, in->x2); }
static tg_tensor *c_bn_train(norm_in *in) {
    return tg_batch_norm(in->x, in->rm, in->rv, in->w, in->b, &(tg_batch_norm_opts){ .training = true });
}
static tg_tensor *c_bn_eval(norm_in *in) { return tg_batch_norm(in->x, in->rm, in->rv, in->w, in->b, NULL); }
static tg_tensor *c_ln(norm_in *in) {
    int64_t D = tg_shape_of(in->x).dims[1];
    return tg_layer_norm(in->x, TG_SHAPE(D), in->w, in->b, 1e-5);
}
static tg_tensor *c_gn(norm_in *in) { return tg_group_norm(in->x, in->groups, in->w, in->b, 1e-5); }
/* The recorded op's backward alone: dx, dweight and dbias from a given dout. */
static tg_tensor *c_bwd(norm_in *in) {
    tg_tensor *wrt[3] = { in->x, in->w, in->b }, *g[3];
    tg_status st = tg_autograd_grad(1, &in->y, &in->gy, 3, wrt, g, &(tg_backward_opts){ .retain_graph = true });
    return st == TG_OK ? g[0] : NULL;
}

typedef struct {
    const char *name;
    case_fn fn, record; /* record: the forward whose backward c_bwd times */
    double passes;      /* bytes moved, in units of x's size */
} norm_case;

static const norm_case bn_cases[] = {
    { "tg_add (reference)", c_add, NULL, 3 },
    { "batch_norm train fwd", c_bn_train, NULL, 3 },
    { "batch_norm eval fwd", c_bn_eval, NULL, 2 },
    { "batch_norm train bwd", c_bwd, c_bn_train, 5 },
};
static const norm_case ln_cases[] = {
    { "tg_add (reference)", c_add, NULL, 3 },
    { "layer_norm fwd", c_ln, NULL, 3 },
    { "layer_norm bwd", c_bwd, c_ln, 5 },
};
static const norm_case gn_cases[] = {
    { "tg_add (reference)", c_add, NULL, 3 },
    { "group_norm fwd", c_gn, NULL, 3 },
    { "group_norm bwd", c_bwd, c_gn, 5 },
};

#define MAX_COPIES 64
static int g_copies = 1; /* sets of inputs cycled through (--cold) */

/* Times each case on x of shape s (C = s.dims[1] channels) and prints one line each. */
static int run_shape(tg_shape s, const norm_case *cases, int ncases, int64_t groups, int rounds) {
    tg_device *dev = tg_device_get("cpu");
    int64_t C = s.dims[1], n = 1;
    for (int d = 0; d < s.ndim; d++) n *= s.dims[d];
    char sh[64];
    int at = snprintf(sh, sizeof sh, "[");
    for (int d = 0; d < s.ndim; d++) at += snprintf(sh + at, sizeof sh - (size_t)at, d ? ",%lld" : "%lld", (long long)s.dims[d]);
    snprintf(sh + at, sizeof sh - (size_t)at, "]");
    tg_scope_begin();
    /* --cold: copies enough that the set (x, x2 and dout) spans 64 MB or more */
    int copies = g_copies > 1 ? (int)(64.0 * 1024 * 1024 / (12.0 * (double)n)) + 1 : 1;
    if (copies > MAX_COPIES) copies = MAX_COPIES;
    norm_in in[MAX_COPIES];
    for (int c = 0; c < copies; c++)
        in[c] = (norm_in){ .x = tg_param(tg_randn(TG_F32, s, dev)), .x2 = tg_randn(TG_F32, s, dev),
                           .w = tg_param(tg_randn(TG_F32, TG_SHAPE(C), dev)),
                           .b = tg_param(tg_randn(TG_F32, TG_SHAPE(C), dev)), .rm = tg_zeros(TG_F32, TG_SHAPE(C), dev),
                           .rv = tg_ones(TG_F32, TG_SHAPE(C), dev), .gy = tg_randn(TG_F32, s, dev), .groups = groups };
    double *t = malloc(sizeof *t * (size_t)rounds);
    for (int k = 0; k < ncases; k++) {
        for (int c = 0; c < copies; c++) in[c].y = cases[k].record ? cases[k].record(&in[c]) : NULL;
        for (int r = 0; r < rounds + 2; r++) {
            tg_scope_begin();
            double t0 = bench_now();
            tg_tensor *y = cases[k].fn(&in[r % copies]);
            double t1 = bench_now();
            if (!y) {
                fprintf(stderr, "%s %s: %s\n", cases[k].name, sh, tg_last_error());
                return 1;
            }
            if (r >= 2) t[r - 2] = t1 - t0; /* the first runs warm the allocator and the caches */
            tg_scope_end();
        }
        double m = bench_median(t, rounds), lo = t[rounds / 4], hi = t[rounds - 1 - rounds / 4];
        double bytes = cases[k].passes * (double)n * 4;
        printf("%-18s %-24s %8.3f  [%6.3f %6.3f] %8.1f\n", sh, cases[k].name, m * 1e3, lo * 1e3, hi * 1e3,
               bytes / m / 1e9);
    }
    free(t);
    tg_scope_end();
    return 0;
}

int main(int argc, char **argv) {
    int rounds = 41;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) rounds = 7;
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cold")) g_copies = 2;
    }
    if (rounds < 1) rounds = 1;
    tg_manual_seed(1);
    static const int64_t bn4[][4] = { { 64, 16, 32, 32 }, { 64, 32, 16, 16 }, { 64, 64, 8, 8 },
                                      { 64, 16, 28, 28 }, { 64, 32, 14, 14 } };
    printf("normalisation, f32, %d threads, median of %d rounds [25th 75th percentile], inputs %s\n",
           tg_get_num_threads(), rounds, g_copies > 1 ? "cold (cycled through 64 MB)" : "hot (the same each round)");
    printf("%-18s %-24s %8s  %15s %8s\n", "x", "case", "ms", "", "GB/s");
    int fail = 0;
    for (int i = 0; i < 5; i++)
        fail |= run_shape(TG_SHAPE(bn4[i][0], bn4[i][1], bn4[i][2], bn4[i][3]), bn_cases, 4, 0, rounds);
    fail |= run_shape(TG_SHAPE(4096, 256), bn_cases, 4, 0, rounds);
    fail |= run_shape(TG_SHAPE(65536, 16), bn_cases, 4, 0, rounds);
    fail |= run_shape(TG_SHAPE(4096, 256), ln_cases, 3, 0, rounds);
    fail |= run_shape(TG_SHAPE(64, 32, 16, 16), gn_cases, 3, 8, rounds);
    return fail;
}
