/* What the Fashion-MNIST examples share: reading Debian's dataset-fashion-mnist IDX
 * files into u8 images and i32 labels, the pixel standardisation, a seeded shuffle and a
 * clock. Static functions in a header, so each example stays one program to copy. */
#ifndef TG_EXAMPLES_FASHION_MNIST_H
#define TG_EXAMPLES_FASHION_MNIST_H

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"
#define PIXEL_MEAN 0.2860 /* of Fashion-MNIST's training pixels, scaled to [0,1] */
#define PIXEL_STD 0.3530
#define IMAGE_SIZE 784
#define CLASSES 10

typedef struct {
    tg_tensor *x, *y; /* x u8 (N,784) raw pixels, y i32 (N) */
} split;

static inline double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Loads DIR/NAME.gz, else DIR/NAME uncompressed; the error names the .gz path. */
static inline tg_tensor *load_idx(const char *dir, const char *name, tg_device *dev) {
    char gz[4096], plain[4096];
    snprintf(gz, sizeof gz, "%s/%s.gz", dir, name);
    snprintf(plain, sizeof plain, "%s/%s", dir, name);
    FILE *f = fopen(gz, "rb");
    if (f) fclose(f);
    else if ((f = fopen(plain, "rb"))) {
        fclose(f);
        return tg_idx_load(plain, dev);
    }
    return tg_idx_load(gz, dev);
}

static inline void format_shape(char *buf, size_t size, const tg_tensor *t) {
    size_t len = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < tg_ndim(t) && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", (long long)tg_size(t, i));
    if (len < size) snprintf(buf + len, size - len, ")");
}

/* Reads one split as u8 images (N,784) and i32 labels, or reports what is wrong with
 * the files and returns false. */
static inline bool load_split(const char *prog, const char *dir, const char *prefix, tg_device *dev, split *out) {
    char iname[64], lname[64];
    snprintf(iname, sizeof iname, "%s-images-idx3-ubyte", prefix);
    snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte", prefix);
    tg_tensor *img = load_idx(dir, iname, dev), *lab = img ? load_idx(dir, lname, dev) : NULL;
    if (!img || !lab) {
        fprintf(stderr, "%s: %s\n", prog, tg_last_error());
        return false;
    }
    int64_t n = tg_size(img, 0);
    if (tg_dtype_of(img) != TG_U8 || tg_ndim(img) != 3 || tg_size(img, 1) != 28 || tg_size(img, 2) != 28 ||
        tg_dtype_of(lab) != TG_U8 || tg_ndim(lab) != 1 || tg_size(lab, 0) != n || n == 0) {
        char is[128], ls[128];
        format_shape(is, sizeof is, img);
        format_shape(ls, sizeof ls, lab);
        fprintf(stderr, "%s: %s/%s-*: expected u8 images (N, 28, 28) and u8 labels (N), N > 0; "
                "got %s images %s and %s labels %s\n", prog, dir, prefix, tg_dtype_name(tg_dtype_of(img)), is,
                tg_dtype_name(tg_dtype_of(lab)), ls);
        return false;
    }
    tg_tensor *x = tg_reshape(img, TG_SHAPE(n, IMAGE_SIZE));
    tg_tensor *y = tg_cast(lab, TG_I32);
    double top = tg_item(tg_max(tg_cast(lab, TG_F32), TG_ALL, false));
    if (!x || !y || isnan(top)) {
        fprintf(stderr, "%s: preparing %s data: %s\n", prog, prefix, tg_last_error());
        return false;
    }
    if (top >= CLASSES) {
        fprintf(stderr, "%s: %s/%s*: label %g is out of range [0, %d)\n", prog, dir, lname, top, CLASSES);
        return false;
    }
    *out = (split){ x, y };
    return true;
}

/* The device named device (NULL: $TG_DEVICE, else the CPU) in *dev and both splits on
 * data_dev (NULL: on *dev); false, with the message printed, on error. */
static inline bool open_fashion_mnist(const char *prog, const char *dir, const char *device, tg_device *data_dev,
                                      tg_device **dev, split *train, split *test) {
    *dev = tg_device_get(device);
    if (!*dev) {
        fprintf(stderr, "%s: %s\n", prog, tg_last_error());
        return false;
    }
    if (!data_dev) data_dev = *dev;
    return load_split(prog, dir, "train", data_dev, train) && load_split(prog, dir, "t10k", data_dev, test);
}

/* u8 pixels (B,784) -> f32 in [0,1], then standardised: (x / 255 - mean) / std. */
static inline tg_tensor *normalise(tg_tensor *x) {
    return tg_add_scalar(tg_mul_scalar(tg_cast(x, TG_F32), 1.0 / (255 * PIXEL_STD)), -PIXEL_MEAN / PIXEL_STD);
}

/* A Fisher-Yates shuffle of 0..n-1 driven by splitmix64. */
static inline void shuffle(int32_t *perm, int64_t n, uint64_t *state) {
    for (int64_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        int64_t j = (int64_t)(z % (uint64_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

#endif
