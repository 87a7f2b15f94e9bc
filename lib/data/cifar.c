/* CIFAR-10 and CIFAR-100 binary files into images (N,3,32,32) u8 and labels (N) i64:
 * tg_cifar_load for a list of files, tg_cifar_load_dir for an extracted directory's
 * standard file names and its class-names file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/data/reader.h"
#include "lib/graph/error.h"

#define CIFAR_PIXELS 3072
/* The largest file read: 4 GiB, beyond any CIFAR batch (the CIFAR-100 train.bin is 150 MB). */
#define CIFAR_MAX_FILE ((size_t)1 << 32)

typedef struct {
    const char *fn;      /* the public function, for messages */
    const char *name;    /* "CIFAR-10" or "CIFAR-100" */
    size_t label_bytes;  /* 1 or 2 */
    size_t record;       /* label_bytes + 3072 */
    int which;           /* the label byte returned: 0 (coarse or CIFAR-10) or 1 (fine) */
    int num_classes;
    uint8_t *pixels;     /* N * 3072 */
    int64_t *labels;     /* N */
    size_t n, cap;       /* records held and room for */
} cifar_reader;

static tg_status reader_init(cifar_reader *r, const char *fn, const tg_cifar_opts *opts) {
    tg_cifar_opts o = opts ? *opts : (tg_cifar_opts){ 0 };
    memset(r, 0, sizeof *r);
    r->fn = fn;
    if (o.format == TG_CIFAR10) {
        if (o.coarse) return tg_error(TG_ERR_INVALID, "%s: coarse labels exist only in CIFAR-100", fn);
        *r = (cifar_reader){ .fn = fn, .name = "CIFAR-10", .label_bytes = 1, .num_classes = 10 };
    } else if (o.format == TG_CIFAR100) {
        *r = (cifar_reader){ .fn = fn, .name = "CIFAR-100", .label_bytes = 2, .which = o.coarse ? 0 : 1,
                             .num_classes = o.coarse ? 20 : 100 };
    } else {
        return tg_error(TG_ERR_INVALID, "%s: unknown format %d (expected TG_CIFAR10 or TG_CIFAR100)", fn, (int)o.format);
    }
    r->record = r->label_bytes + CIFAR_PIXELS;
    return TG_OK;
}

/* Checks one file's bytes and appends its records. */
static tg_status reader_add(cifar_reader *r, const char *path, const uint8_t *b, size_t len) {
    if (len == 0) return tg_error(TG_ERR_IO, "%s: '%s' is empty, not a %s file", r->fn, path, r->name);
    if (len % r->record)
        return tg_error(TG_ERR_IO, "%s: '%s' is truncated: %zu bytes is not a multiple of the %zu-byte %s record",
                        r->fn, path, len, r->record, r->name);
    size_t n = len / r->record;
    static const int limits[2][2] = { { 10, 0 }, { 20, 100 } }; /* [format][byte]: classes */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = b + i * r->record;
        for (size_t k = 0; k < r->label_bytes; k++) {
            int lim = limits[r->label_bytes - 1][k];
            if (rec[k] >= lim)
                return tg_error(TG_ERR_IO, "%s: '%s' record %zu: %slabel %d is out of range 0..%d", r->fn, path, i,
                                r->label_bytes == 1 ? "" : k ? "fine " : "coarse ", rec[k], lim - 1);
        }
    }
    if (r->n + n > r->cap) {
        size_t ncap = r->n + n > 2 * r->cap ? r->n + n : 2 * r->cap;
        uint8_t *np = realloc(r->pixels, ncap * CIFAR_PIXELS);
        if (np) r->pixels = np;
        int64_t *nl = np ? realloc(r->labels, ncap * sizeof *nl) : NULL;
        if (nl) r->labels = nl;
        if (!np || !nl) return tg_error(TG_ERR_NOMEM, "%s: out of memory for %zu images", r->fn, r->n + n);
        r->cap = ncap;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = b + i * r->record;
        r->labels[r->n] = rec[r->which];
        memcpy(r->pixels + r->n * CIFAR_PIXELS, rec + r->label_bytes, CIFAR_PIXELS);
        r->n++;
    }
    return TG_OK;
}

static tg_status reader_read(cifar_reader *r, const char *path) {
    if (!path) return tg_error(TG_ERR_INVALID, "%s: a path is NULL", r->fn);
    size_t len = 0;
    uint8_t *b = tg_data_read_file(r->fn, path, CIFAR_MAX_FILE, &len);
    if (!b) return tg_last_status();
    tg_status st = reader_add(r, path, b, len);
    free(b);
    return st;
}

static tg_status reader_finish(cifar_reader *r, const char *what, tg_device *dev, tg_labeled_images *out) {
    int64_t n = (int64_t)r->n;
    out->images = tg_data_upload(r->fn, what, r->pixels, TG_U8, TG_SHAPE(n, 3, 32, 32), dev);
    out->labels = out->images ? tg_data_upload(r->fn, what, r->labels, TG_I64, TG_SHAPE(n), dev) : NULL;
    if (!out->labels) {
        out->images = NULL;
        return tg_last_status();
    }
    return TG_OK;
}

tg_status tg_cifar_load(int n, const char *const *paths, const tg_cifar_opts *opts, tg_device *dev,
                        tg_labeled_images *out) {
    TG_API_ENTER("tg_cifar_load");
    const char *fn = "tg_cifar_load";
    if (!out) return tg_error(TG_ERR_INVALID, "%s: out is NULL", fn);
    *out = (tg_labeled_images){ 0 };
    if (n < 1 || !paths) return tg_error(TG_ERR_INVALID, "%s: no files given (n = %d)", fn, n);
    if (!dev) return tg_last_status() != TG_OK ? tg_last_status() : tg_error(TG_ERR_DEVICE, "%s: device is NULL", fn);
    cifar_reader r;
    tg_status st = reader_init(&r, fn, opts);
    for (int i = 0; st == TG_OK && i < n; i++) st = reader_read(&r, paths[i]);
    if (st == TG_OK) st = reader_finish(&r, paths[0], dev, out);
    free(r.pixels);
    free(r.labels);
    return st;
}

/* Reads a names file: one name a line, blank lines skipped; exactly want names. */
static tg_strings *read_names(const char *fn, const char *path, int want) {
    size_t len = 0;
    char *b = (char *)tg_data_read_file(fn, path, (size_t)1 << 20, &len);
    if (!b) return NULL;
    tg_strings *l = tg_data_strings_new(fn);
    for (char *p = b, *end = b + len; l && p < end;) {
        char *e = p;
        while (e < end && *e != '\n') e++;
        char *q = e;
        while (q > p && (q[-1] == '\r' || q[-1] == ' ' || q[-1] == '\t')) q--;
        if (q > p && tg_data_strings_push(l, fn, p, (size_t)(q - p)) != TG_OK) {
            tg_strings_free(l);
            l = NULL;
        }
        p = e + 1;
    }
    if (l && tg_strings_count(l) != want) {
        tg_error(TG_ERR_IO, "%s: '%s' has %d class names, expected %d", fn, path, tg_strings_count(l), want);
        tg_strings_free(l);
        l = NULL;
    }
    free(b);
    return l;
}

static bool file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

tg_status tg_cifar_load_dir(const char *root, bool train, const tg_cifar_opts *opts, tg_device *dev,
                            tg_labeled_images *out) {
    TG_API_ENTER("tg_cifar_load_dir");
    const char *fn = "tg_cifar_load_dir";
    if (!out) return tg_error(TG_ERR_INVALID, "%s: out is NULL", fn);
    *out = (tg_labeled_images){ 0 };
    if (!root) return tg_error(TG_ERR_INVALID, "%s: root is NULL", fn);
    if (!dev) return tg_last_status() != TG_OK ? tg_last_status() : tg_error(TG_ERR_DEVICE, "%s: device is NULL", fn);
    cifar_reader r;
    tg_status st = reader_init(&r, fn, opts);
    if (st != TG_OK) return st;
    bool c10 = r.label_bytes == 1;
    char path[4096];
    const char *names = c10 ? "batches.meta.txt" : opts->coarse ? "coarse_label_names.txt" : "fine_label_names.txt";
    int nfiles = c10 && train ? 5 : 1;
    for (int i = 0; st == TG_OK && i < nfiles; i++) {
        if (c10 && train) snprintf(path, sizeof path, "%s/data_batch_%d.bin", root, i + 1);
        else snprintf(path, sizeof path, "%s/%s", root, c10 ? "test_batch.bin" : train ? "train.bin" : "test.bin");
        st = reader_read(&r, path);
    }
    if (st == TG_OK) {
        snprintf(path, sizeof path, "%s/%s", root, names);
        if (file_exists(path) && !(out->classes = read_names(fn, path, r.num_classes))) st = tg_last_status();
    }
    if (st == TG_OK) st = reader_finish(&r, root, dev, out);
    if (st != TG_OK) {
        tg_strings_free(out->classes);
        *out = (tg_labeled_images){ 0 };
    }
    free(r.pixels);
    free(r.labels);
    return st;
}
