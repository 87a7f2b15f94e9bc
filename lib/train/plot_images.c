/* Pictures of tensors as SVG: a confusion matrix as a heat map with counts, class names
 * and per-class accuracy; conv filters and feature maps as grids of small images, one
 * rect per element, each image scaled to its own min/max. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/train/svg.h"

/* ---------------------------------------------------------------- confusion matrix */

static double max_name_len(int64_t c, const char *const *names) {
    size_t m = 1;
    for (int64_t i = 0; i < c; i++) {
        char b[24];
        size_t n = names && names[i] ? strlen(names[i]) : (size_t)snprintf(b, sizeof b, "%lld", (long long)i);
        m = n > m ? n : m;
    }
    return (double)(m > 40 ? 40 : m);
}

static void class_name(char *buf, size_t size, const char *const *names, int64_t i) {
    if (names && names[i]) snprintf(buf, size, "%.40s", names[i]);
    else snprintf(buf, size, "%lld", (long long)i);
}

/* Cells coloured by the fraction of their row (white to blue), so that small classes
 * show as clearly as large ones; the count written in each. */
static void draw_cells(tg_svg *s, const double *v, int64_t c, double x0, double y0, int cell) {
    for (int64_t i = 0; i < c; i++) {
        double row = 0;
        for (int64_t j = 0; j < c; j++) row += v[i * c + j];
        for (int64_t j = 0; j < c; j++) {
            double f = row > 0 ? v[i * c + j] / row : 0;
            int r = (int)lround(255 - f * (255 - 8)), g = (int)lround(255 - f * (255 - 48)), b = (int)lround(255 - f * (255 - 107));
            double x = x0 + (double)(j * cell), y = y0 + (double)(i * cell);
            tg_train_svg_printf(s, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\" stroke=\"#eee\"/>\n",
                                x, y, cell, cell, r, g, b);
            char t[32];
            snprintf(t, sizeof t, "%.0f", v[i * c + j]);
            char attrs[64];
            snprintf(attrs, sizeof attrs, "font-size=\"%d\" fill=\"%s\"", cell / 3 < 12 ? cell / 3 : 12, f > 0.5 ? "white" : "black");
            tg_train_svg_label(s, x + cell / 2.0, y + cell / 2.0 + 4, "middle", attrs, t);
        }
    }
}

static void draw_confusion(tg_svg *s, const double *v, int64_t c, const tg_confusion_svg_opts *o, double x0, double y0,
                           int cell) {
    char t[64];
    double total = 0, right = 0;
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < c; j++) total += v[i * c + j], right += i == j ? v[i * c + j] : 0;
    tg_train_svg_label(s, x0 + (double)(c * cell) / 2, 22, "middle", "font-size=\"16\"", o->title ? o->title : "confusion matrix");
    if (total > 0) snprintf(t, sizeof t, "accuracy %.2f%% (%.0f of %.0f)", 100 * right / total, right, total);
    else snprintf(t, sizeof t, "no samples");
    tg_train_svg_label(s, x0 + (double)(c * cell) / 2, 42, "middle", "", t);
    draw_cells(s, v, c, x0, y0, cell);
    double grid = (double)(c * cell);
    tg_train_svg_label(s, x0 + grid + 6, y0 - 6, "start", "font-size=\"10\"", "class acc");
    for (int64_t i = 0; i < c; i++) {
        double mid = (double)(i * cell) + cell / 2.0, row = 0;
        class_name(t, sizeof t, o->class_names, i);
        tg_train_svg_label(s, x0 - 6, y0 + mid + 4, "end", "", t);
        tg_train_svg_printf(s, "<g transform=\"translate(%.1f %.1f) rotate(-45)\">", x0 + mid, y0 + grid + 10);
        tg_train_svg_label(s, 0, 0, "end", "", t);
        tg_train_svg_printf(s, "</g>\n");
        for (int64_t j = 0; j < c; j++) row += v[i * c + j];
        if (row > 0) snprintf(t, sizeof t, "%.1f%%", 100 * v[i * c + i] / row);
        else snprintf(t, sizeof t, "-");
        tg_train_svg_label(s, x0 + grid + 6, y0 + mid + 4, "start", "", t);
    }
    /* Below the column names, which run at 45 degrees: 7 px a character, times sin 45. */
    tg_train_svg_label(s, x0 + grid / 2, y0 + grid + 5 * max_name_len(c, o->class_names) + 30, "middle", "", "predicted");
    tg_train_svg_printf(s, "<g transform=\"translate(14 %.1f) rotate(-90)\">", y0 + grid / 2);
    tg_train_svg_label(s, 0, 0, "middle", "", "true");
    tg_train_svg_printf(s, "</g>\n");
}

tg_status tg_confusion_svg(const char *path, tg_tensor *counts, const tg_confusion_svg_opts *opts) {
    TG_API_ENTER("tg_confusion_svg");
    const char *api = "tg_confusion_svg";
    static const tg_confusion_svg_opts defaults = { 0 };
    const tg_confusion_svg_opts *o = opts ? opts : &defaults;
    if (!path) return tg_error(TG_ERR_INVALID, "%s: path is NULL", api);
    if (!counts) return tg_last_status() ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: counts is NULL", api);
    int64_t c = tg_ndim(counts) == 2 ? tg_size(counts, 0) : -1;
    if (c < 1 || tg_size(counts, 1) != c) return tg_error(TG_ERR_SHAPE, "%s: counts must be a square (C, C) matrix", api);
    if (c > 1000) return tg_error(TG_ERR_INVALID, "%s: %lld classes are too many to draw (at most 1000)", api, (long long)c);
    if (o->cell < 0 || o->cell > 200) return tg_error(TG_ERR_INVALID, "%s: cell is %d pixels (0-200)", api, o->cell);
    double *v = tg_train_host_values(api, counts);
    if (!v) return tg_last_status();
    tg_status st = TG_OK;
    for (int64_t i = 0; i < c * c; i++)
        if (!(v[i] >= 0) || isinf(v[i])) {
            st = tg_error(TG_ERR_INVALID, "%s: count [%lld][%lld] is %g (counts are >= 0)", api, (long long)(i / c),
                          (long long)(i % c), v[i]);
            goto fail;
        }
    int cell = o->cell ? o->cell : 40;
    double names = 7.5 * max_name_len(c, o->class_names);
    double x0 = 30 + names, y0 = 60, grid = (double)(c * cell);
    tg_svg s;
    double below = 5 * max_name_len(c, o->class_names) + 44;
    if ((st = tg_train_svg_open(&s, api, path, NULL, (int)(x0 + grid + 80), (int)(y0 + grid + below)))) goto fail;
    draw_confusion(&s, v, c, o, x0, y0, cell);
    st = tg_train_svg_close(&s);
fail:
    free(v);
    return st;
}

/* ---------------------------------------------------------------- image grids */

typedef struct {
    const double *v;   /* the first element */
    int64_t plane;     /* RGB: the distance between channels; 0 for grey */
    double lo, hi;     /* the scale: its finite min and max */
} image;

static void finite_range(const double *v, int64_t n, double *lo, double *hi) {
    *lo = INFINITY, *hi = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(v[i])) *lo = v[i] < *lo ? v[i] : *lo, *hi = v[i] > *hi ? v[i] : *hi;
}

static int level(const image *im, double x) {
    if (!(im->hi > im->lo)) return 128; /* constant: mid grey */
    return (int)lround(255 * (x - im->lo) / (im->hi - im->lo));
}

typedef struct {
    int64_t n, h, w;
    int cell, columns;
    const char *title;
} grid;

static void draw_image(tg_svg *s, const image *im, const grid *g, double x0, double y0) {
    tg_train_svg_printf(s, "<g shape-rendering=\"crispEdges\">\n");
    for (int64_t y = 0; y < g->h; y++)
        for (int64_t x = 0; x < g->w; x++) {
            const double *p = im->v + y * g->w + x;
            bool ok = isfinite(p[0]) && (!im->plane || (isfinite(p[im->plane]) && isfinite(p[2 * im->plane])));
            if (!ok) continue; /* NaN/Inf: left out, the background shows */
            int r = level(im, p[0]), gr = im->plane ? level(im, p[im->plane]) : r, b = im->plane ? level(im, p[2 * im->plane]) : r;
            tg_train_svg_printf(s, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\"/>\n",
                                x0 + (double)(x * g->cell), y0 + (double)(y * g->cell), g->cell, g->cell, r, gr, b);
        }
    tg_train_svg_printf(s, "</g>\n");
}

static tg_status draw_grid(const char *api, const char *path, const image *ims, const grid *g) {
    const int gap = 4, margin = 10, top = g->title ? 34 : margin;
    int64_t rows = (g->n + g->columns - 1) / g->columns;
    double iw = (double)(g->w * g->cell), ih = (double)(g->h * g->cell);
    int width = (int)(2 * margin + (double)g->columns * (iw + gap) - gap);
    int title_w = g->title ? 20 + 9 * (int)strlen(g->title) : 0; /* room for the title at 16 px */
    width = width > title_w ? width : title_w;
    int height = (int)(top + margin + (double)rows * (ih + gap) - gap);
    tg_svg s;
    tg_status st = tg_train_svg_open(&s, api, path, NULL, width, height);
    if (st) return st;
    tg_train_svg_printf(&s, "<rect width=\"100%%\" height=\"100%%\" fill=\"#c8d8e8\"/>\n");
    if (g->title) tg_train_svg_label(&s, width / 2.0, 22, "middle", "font-size=\"16\"", g->title);
    for (int64_t i = 0; i < g->n && !s.failed; i++)
        draw_image(&s, &ims[i], g, margin + (double)(i % g->columns) * (iw + gap), top + (double)(i / g->columns) * (ih + gap));
    return tg_train_svg_close(&s);
}

/* Checks the arguments; *o becomes the defaults when NULL. */
static tg_status check_grid(const char *api, const char *path, tg_tensor *t, const tg_image_grid_opts **opts) {
    static const tg_image_grid_opts defaults = { 0 };
    const tg_image_grid_opts *o = *opts = *opts ? *opts : &defaults;
    if (!path) return tg_error(TG_ERR_INVALID, "%s: path is NULL", api);
    if (!t) return tg_last_status() ? tg_last_status() : tg_error(TG_ERR_INVALID, "%s: the tensor is NULL", api);
    tg_dtype d = tg_dtype_of(t);
    if (d != TG_F32 && d != TG_F64) return tg_error(TG_ERR_DTYPE, "%s: expected f32 or f64, got %s", api, tg_dtype_name(d));
    if (o->cell < 0 || o->cell > 100) return tg_error(TG_ERR_INVALID, "%s: cell is %d pixels (0-100)", api, o->cell);
    if (o->columns < 0) return tg_error(TG_ERR_INVALID, "%s: columns is %d (negative)", api, o->columns);
    if (tg_numel(t) > (1 << 22))
        return tg_error(TG_ERR_INVALID, "%s: %lld elements are too many to draw (at most 4194304)", api,
                        (long long)tg_numel(t));
    return TG_OK;
}

/* Fills g's sizes and draws; ims[i].lo/hi are set by the caller. */
static tg_status finish_grid(const char *api, const char *path, image *ims, grid *g, const tg_image_grid_opts *o,
                             int default_columns) {
    int64_t side = g->h > g->w ? g->h : g->w;
    g->cell = o->cell ? o->cell : side >= 24 ? 2 : (int)(48 / (side ? side : 1));
    g->columns = o->columns ? o->columns : default_columns ? default_columns : (int)ceil(sqrt((double)g->n));
    if (g->columns < 1) g->columns = 1;
    if (g->columns > g->n && g->n > 0) g->columns = (int)g->n;
    g->title = o->title;
    return draw_grid(api, path, ims, g);
}

/* The values of t and an image list of n, to be filled by the caller; on error both
 * NULL and the status set. */
static tg_status grid_images(const char *api, tg_tensor *t, int64_t n, double **v, image **ims) {
    *v = NULL, *ims = NULL;
    if (n > 65536) return tg_error(TG_ERR_INVALID, "%s: %lld images are too many (at most 65536)", api, (long long)n);
    if (!(*v = tg_train_host_values(api, t))) return tg_last_status();
    if ((*ims = calloc((size_t)(n ? n : 1), sizeof **ims))) return TG_OK;
    free(*v), *v = NULL;
    return tg_error(TG_ERR_NOMEM, "%s: out of memory", api);
}

tg_status tg_filters_svg(const char *path, tg_tensor *weight, const tg_image_grid_opts *opts) {
    TG_API_ENTER("tg_filters_svg");
    const char *api = "tg_filters_svg";
    const tg_image_grid_opts *o = opts;
    tg_status st = check_grid(api, path, weight, &o);
    if (st) return st;
    if (tg_ndim(weight) != 4) return tg_error(TG_ERR_SHAPE, "%s: weight must be (O, I, kh, kw), got %d axes", api, tg_ndim(weight));
    int64_t O = tg_size(weight, 0), I = tg_size(weight, 1), kh = tg_size(weight, 2), kw = tg_size(weight, 3);
    bool rgb = I == 3;
    grid g = { rgb ? O : O * I, kh, kw, 0, 0, NULL };
    double *v;
    image *ims;
    if ((st = grid_images(api, weight, g.n, &v, &ims))) return st;
    for (int64_t f = 0; f < O; f++) {
        double lo, hi; /* one scale per filter, over all its input channels */
        finite_range(v + f * I * kh * kw, I * kh * kw, &lo, &hi);
        for (int64_t i = 0; i < (rgb ? 1 : I); i++)
            ims[rgb ? f : f * I + i] = (image){ v + (f * I + i) * kh * kw, rgb ? kh * kw : 0, lo, hi };
    }
    st = finish_grid(api, path, ims, &g, o, rgb || I == 1 ? 0 : (int)I);
    free(v), free(ims);
    return st;
}

tg_status tg_feature_maps_svg(const char *path, tg_tensor *act, const tg_image_grid_opts *opts) {
    TG_API_ENTER("tg_feature_maps_svg");
    const char *api = "tg_feature_maps_svg";
    const tg_image_grid_opts *o = opts;
    tg_status st = check_grid(api, path, act, &o);
    if (st) return st;
    int nd = tg_ndim(act);
    if (!(nd == 3 || (nd == 4 && tg_size(act, 0) == 1)))
        return tg_error(TG_ERR_SHAPE, "%s: activation must be (C, H, W) or (1, C, H, W)", api);
    grid g = { tg_size(act, -3), tg_size(act, -2), tg_size(act, -1), 0, 0, NULL };
    double *v;
    image *ims;
    if ((st = grid_images(api, act, g.n, &v, &ims))) return st;
    for (int64_t c = 0; c < g.n; c++) {
        ims[c] = (image){ v + c * g.h * g.w, 0, 0, 0 };
        finite_range(ims[c].v, g.h * g.w, &ims[c].lo, &ims[c].hi);
    }
    st = finish_grid(api, path, ims, &g, o, 0);
    free(v), free(ims);
    return st;
}
