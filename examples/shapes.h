/* Synthetic shape images shared by examples/segmentation_shapes.c and
 * examples/detection_shapes.c: rectangles, discs and triangles of random size,
 * position and brightness on a noisy background, with their per-pixel class masks
 * and bounding boxes, generated from a seed (no data files). Header-only. */
#ifndef TG_EXAMPLE_SHAPES_H
#define TG_EXAMPLE_SHAPES_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"

#define SHAPE_SIZE 32 /* images are SHAPE_SIZE x SHAPE_SIZE, one channel */
#define SHAPE_KINDS 3 /* rectangle, disc, triangle: classes 1..3 of a mask, 0..2 of a box */

static const char *const k_shape_names[SHAPE_KINDS + 1] = { "background", "rectangle", "disc", "triangle" };

static inline double shapes_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: a small generator whose stream depends on the seed only. */
static inline uint64_t shapes_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double shapes_uniform(uint64_t *s) { return (double)(shapes_next(s) >> 11) * 0x1p-53; }
static inline int shapes_int(uint64_t *s, int lo, int hi) { return lo + (int)(shapes_next(s) % (uint64_t)(hi - lo + 1)); }
static inline double shapes_normal(uint64_t *s) {
    double u = shapes_uniform(s), v = shapes_uniform(s);
    return sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/* Whether pixel (x, y) is inside a shape of kind (1..3) centred at (cx, cy) with half
 * sizes (a, b). */
static inline bool shapes_inside(int kind, double cx, double cy, double a, double b, int x, int y) {
    double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
    if (kind == 1) return fabs(dx) <= a && fabs(dy) <= b;
    if (kind == 2) return dx * dx + dy * dy <= a * a;
    double t = (dy + b) / (2 * b); /* triangle: apex at the top, base a wide each side */
    return t >= 0 && t <= 1 && fabs(dx) <= a * t;
}

/* Draws one random shape of kind into img and mask (SHAPE_SIZE^2 each; mask gets kind
 * where it paints) and writes its box [x1, y1, x2, y2] of the pixels it painted. */
static inline void shapes_draw(uint64_t *rng, int kind, float *img, int64_t *mask, float box[4]) {
    const int S = SHAPE_SIZE;
    double a = shapes_int(rng, 4, 8), b = kind == 2 ? a : shapes_int(rng, 4, 8);
    double cx = shapes_int(rng, (int)a + 1, S - 1 - (int)a), cy = shapes_int(rng, (int)b + 1, S - 1 - (int)b);
    float level = (float)(0.6 + 0.4 * shapes_uniform(rng));
    int x1 = S, y1 = S, x2 = -1, y2 = -1;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            if (shapes_inside(kind, cx, cy, a, b, x, y)) {
                img[y * S + x] = level;
                if (mask) mask[y * S + x] = kind;
                x1 = x < x1 ? x : x1, y1 = y < y1 ? y : y1, x2 = x > x2 ? x : x2, y2 = y > y2 ? y : y2;
            }
    box[0] = (float)x1, box[1] = (float)y1, box[2] = (float)x2 + 1, box[3] = (float)y2 + 1;
}

/* Gaussian noise of sd sigma over n images of SHAPE_SIZE^2. */
static inline void shapes_noise(uint64_t *rng, float *img, int64_t n, double sigma) {
    for (int64_t i = 0; i < n * SHAPE_SIZE * SHAPE_SIZE; i++) img[i] += (float)(sigma * shapes_normal(rng));
}

/* IoU of two [x1, y1, x2, y2] boxes on the host. */
static inline double shapes_box_iou(const float *p, const float *q) {
    double w = fmin(p[2], q[2]) - fmax(p[0], q[0]), h = fmin(p[3], q[3]) - fmax(p[1], q[1]);
    double inter = w > 0 && h > 0 ? w * h : 0;
    double u = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter;
    return u > 0 ? inter / u : 0;
}

/* A flag's numeric value in [lo, hi]; exits 2 with a message for anything else. */
static inline double shapes_arg(const char *prog, const char *flag, const char *v, double lo, double hi) {
    char *end = NULL;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "%s: %s needs a number in [%g, %g], got '%s'\n", prog, flag, lo, hi, v ? v : "");
        exit(2);
    }
    return x;
}

/* The training options both examples take. */
typedef struct {
    int64_t steps, batch, seed;
    double lr;
    const char *device;
} shapes_train_opts;

/* Reads flag a (its value v) into o if it is one of them: the arguments used (2), else 0. */
static inline int shapes_train_flag(const char *prog, const char *a, const char *v, shapes_train_opts *o) {
    if (!strcmp(a, "--device") && v) o->device = v;
    else if (!strcmp(a, "--steps")) o->steps = (int64_t)shapes_arg(prog, a, v, 1, 1e6);
    else if (!strcmp(a, "--batch")) o->batch = (int64_t)shapes_arg(prog, a, v, 1, 4096);
    else if (!strcmp(a, "--seed")) o->seed = (int64_t)shapes_arg(prog, a, v, 0, 1e15);
    else if (!strcmp(a, "--lr")) o->lr = shapes_arg(prog, a, v, 1e-9, 10);
    else return 0;
    return 2;
}

/* Adam over a module's trainable parameters; NULL with the library's message. */
static inline tg_optim *shapes_adam(tg_module *net, double lr) {
    tg_named p;
    if (tg_module_parameters(net, true, &p) != TG_OK) return NULL;
    tg_optim *opt = tg_adam_new(p.n, p.tensors, &(tg_adam_opts){ .lr = TG_SOME(lr) });
    tg_named_free(&p);
    return opt;
}

#endif
