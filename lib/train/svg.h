/* What the plots share: the SVG writer (lib/train/plot.c), a file or stream with its
 * error state, printf-style output and XML-escaped text, so that a failed write is
 * reported once, at close, naming the public call and the path; and reading a tensor's
 * values to the host (lib/train/confusion.c). */
#ifndef TG_TRAIN_SVG_H
#define TG_TRAIN_SVG_H

#include "lib/graph/error.h"

typedef struct {
    FILE *f;
    bool own;          /* opened here from a path: closed at the end */
    bool failed;
    const char *api, *path;
} tg_svg;

/* Opens path for writing (or uses f when path is NULL) and writes the <svg> head of a
 * width x height picture. TG_ERR_IO naming api and path when it cannot open. */
tg_status tg_train_svg_open(tg_svg *s, const char *api, const char *path, FILE *f, int width, int height);
void tg_train_svg_printf(tg_svg *s, const char *fmt, ...) TG_PRINTF(2, 3);
/* text with & < > " ' escaped. */
void tg_train_svg_text(tg_svg *s, const char *text);
/* <text x y anchor>text</text> with extra attributes (may be ""). */
void tg_train_svg_label(tg_svg *s, double x, double y, const char *anchor, const char *attrs, const char *text);
/* Writes </svg> and closes (or flushes) the file: TG_ERR_IO if any write failed. */
tg_status tg_train_svg_close(tg_svg *s);
/* Closes after an error without writing the tail (the error stays). */
void tg_train_svg_abort(tg_svg *s);

/* t's values as a dense host array of doubles (caller frees), read through f32 or i64
 * so that devices without f64 work; NULL with a message naming api. */
double *tg_train_host_values(const char *api, tg_tensor *t);

#endif
