/* What the augmentation files share: the host image the transforms work on, the
 * transform object, and the per-sample random stream. Not installed. */
#ifndef TG_DATA_AUGMENT_H
#define TG_DATA_AUGMENT_H

#include <stdint.h>

#include "tapegrad/data.h"

/* A dense (C, H, W) image in malloc'd host memory; ndim is the tensor's (2 or 3). */
typedef struct {
    tg_dtype dtype; /* TG_U8 or TG_F32 */
    int ndim;
    int64_t c, h, w;
    void *data;
} tg_aug_img;

/* splitmix64: one stream per (seed, epoch, index, position); fast and stateless to key. */
typedef struct {
    uint64_t s;
} tg_aug_rng;

typedef enum {
    TG_AUG_HFLIP,
    TG_AUG_VFLIP,
    TG_AUG_CROP,
    TG_AUG_RESIZED_CROP,
    TG_AUG_JITTER,
    TG_AUG_LIGHTING,
    TG_AUG_NORMALIZE,
    TG_AUG_TO_FLOAT,
    TG_AUG_CUSTOM,
} tg_aug_kind;

struct tg_transform {
    tg_aug_kind kind;
    const char *name; /* torchvision's class name, for messages */
    double p;
    tg_random_crop_opts crop;
    tg_random_resized_crop_opts rrc;
    tg_color_jitter_opts jitter;
    double alpha_std, eigval[3], eigvec[3][3];
    int n_channels;
    double *mean, *std;
    tg_transform_fn fn;
    void *ctx;
};

uint64_t tg_aug_next(tg_aug_rng *r);
double tg_aug_uniform(tg_aug_rng *r, double lo, double hi); /* [lo, hi) */
double tg_aug_normal(tg_aug_rng *r);                        /* N(0, 1) */

/* A new transform of kind with its name, or NULL with a message naming api. */
tg_transform *tg_aug_new(const char *api, tg_aug_kind kind, const char *name);
/* The colour transforms (augment_color.c): TG_OK, or a message that starts with
 * "transform N (Name): ". */
tg_status tg_aug_color(const tg_transform *t, int pos, tg_aug_img *img, tg_aug_rng *rng);

#endif
