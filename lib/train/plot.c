/* SVG line plots: several series with a legend, axes with 1-2-5 ticks (or powers of
 * ten on log axes), grid and labels; NaN/Inf points break a line. Also the SVG writer
 * the image plots share (svg.h) and plots of metrics log columns. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/train/svg.h"

/* ---------------------------------------------------------------- the SVG writer */

tg_status tg_train_svg_open(tg_svg *s, const char *api, const char *path, FILE *f, int width, int height) {
    *s = (tg_svg){ .f = f, .api = api, .path = path ? path : "the stream" };
    if (path) {
        if (!(s->f = fopen(path, "w")))
            return tg_error(TG_ERR_IO, "%s: cannot open '%s' for writing: %s", api, path, strerror(errno));
        s->own = true;
    }
    tg_train_svg_printf(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                           "font-family=\"sans-serif\" font-size=\"12\">\n"
                           "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                        width, height, width, height);
    return TG_OK;
}

void tg_train_svg_printf(tg_svg *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(s->f, fmt, ap) < 0) s->failed = true;
    va_end(ap);
}

void tg_train_svg_text(tg_svg *s, const char *t) {
    for (; *t; t++) {
        const char *e = *t == '&' ? "&amp;" : *t == '<' ? "&lt;" : *t == '>' ? "&gt;" : *t == '"' ? "&quot;"
                        : *t == '\'' ? "&apos;" : NULL;
        if (e) tg_train_svg_printf(s, "%s", e);
        else if ((unsigned char)*t < 0x20) tg_train_svg_printf(s, " "); /* control chars are not XML */
        else if (fputc(*t, s->f) == EOF) s->failed = true;
    }
}

void tg_train_svg_label(tg_svg *s, double x, double y, const char *anchor, const char *attrs, const char *text) {
    tg_train_svg_printf(s, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor, *attrs ? " " : "", attrs);
    tg_train_svg_text(s, text);
    tg_train_svg_printf(s, "</text>\n");
}

tg_status tg_train_svg_close(tg_svg *s) {
    tg_train_svg_printf(s, "</svg>\n");
    if (fflush(s->f) != 0) s->failed = true;
    int err = errno;
    if (s->own && fclose(s->f) != 0) s->failed = true, err = errno;
    if (s->failed) return tg_error(TG_ERR_IO, "%s: writing '%s' failed: %s", s->api, s->path, strerror(err));
    return TG_OK;
}

void tg_train_svg_abort(tg_svg *s) {
    if (s->own && s->f) fclose(s->f);
    s->f = NULL;
}

/* ---------------------------------------------------------------- axes */

#define MAX_TICKS 24

typedef struct {
    bool log;
    double lo, hi;        /* the axis range (log10 of it on a log axis) */
    int n;
    double ticks[MAX_TICKS]; /* data values */
} axis;

/* Heckbert's nice numbers: 1, 2 or 5 times a power of ten. */
static double nice(double x, bool round) {
    double e = floor(log10(x)), f = x / pow(10, e), n;
    if (round) n = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return n * pow(10, e);
}

static void linear_axis(axis *a, double lo, double hi) {
    if (!(lo < hi)) {
        double d = lo != 0 ? fabs(lo) * 0.1 : 1;
        lo -= d, hi += d;
    }
    double step = nice(nice(hi - lo, false) / 5, true);
    a->lo = floor(lo / step) * step, a->hi = ceil(hi / step) * step;
    a->n = 0;
    for (double t = a->lo; t <= a->hi + step * 1e-6 && a->n < MAX_TICKS; t = a->lo + a->n * step)
        a->ticks[a->n++] = fabs(t) < step * 1e-6 ? 0 : t;
}

/* Decades from the data's; 2 and 5 within a decade when the range spans only one. */
static void log_axis(axis *a, double lo, double hi) {
    double l = floor(log10(lo) + 1e-12), h = ceil(log10(hi) - 1e-12);
    if (h <= l) h = l + 1;
    a->lo = l, a->hi = h, a->n = 0;
    double every = ceil((h - l) / 10);
    for (double k = l; k <= h && a->n < MAX_TICKS; k += every) {
        a->ticks[a->n++] = pow(10, k);
        if (h - l <= 1 && k < h && a->n + 2 <= MAX_TICKS) {
            a->ticks[a->n++] = 2 * pow(10, k);
            a->ticks[a->n++] = 5 * pow(10, k);
        }
    }
}

static bool usable(double v, bool log) { return isfinite(v) && (!log || v > 0); }

static double xval(const tg_plot_series *s, int64_t i) { return s->x ? s->x[i] : (double)i; }

/* The range of the points both coordinates of which can be drawn. */
static void data_range(int n, const tg_plot_series *ss, bool x_axis, const tg_plot_opts *o, double *lo, double *hi) {
    *lo = INFINITY, *hi = -INFINITY;
    for (int k = 0; k < n; k++)
        for (int64_t i = 0; i < ss[k].n; i++) {
            double x = xval(&ss[k], i), y = ss[k].y[i];
            if (!usable(x, o->log_x) || !usable(y, o->log_y)) continue;
            double v = x_axis ? x : y;
            *lo = v < *lo ? v : *lo, *hi = v > *hi ? v : *hi;
        }
    if (*lo > *hi) { /* no points: an empty frame over [0, 1], or [1, 10] on a log axis */
        bool log = x_axis ? o->log_x : o->log_y;
        *lo = log ? 1 : 0, *hi = log ? 10 : 1;
    }
}

static void make_axis(axis *a, bool log, double lo, double hi) {
    a->log = log;
    if (log) log_axis(a, lo, hi);
    else linear_axis(a, lo, hi);
}

/* From a data value to a fraction of the axis. */
static double frac(const axis *a, double v) { return ((a->log ? log10(v) : v) - a->lo) / (a->hi - a->lo); }

static void tick_label(char *buf, size_t size, const axis *a, double v) {
    double step = a->n > 1 ? a->ticks[1] - a->ticks[0] : 1;
    if (a->log || fabs(v) >= 1e5 || (v != 0 && fabs(v) < 1e-4)) {
        snprintf(buf, size, "%g", v);
        return;
    }
    int decimals = step > 0 ? (int)-floor(log10(step) + 1e-9) : 0;
    snprintf(buf, size, "%.*f", decimals > 0 ? decimals : 0, v);
}

/* ---------------------------------------------------------------- the plot */

typedef struct {
    double x0, y0, x1, y1; /* the plot area in pixels: left, top, right, bottom */
    axis ax, ay;
} frame;

static double px(const frame *fr, double x) { return fr->x0 + frac(&fr->ax, x) * (fr->x1 - fr->x0); }
static double py(const frame *fr, double y) { return fr->y1 - frac(&fr->ay, y) * (fr->y1 - fr->y0); }

static void draw_axes(tg_svg *s, const frame *fr, const tg_plot_opts *o, int w, int h) {
    char lb[48];
    for (int i = 0; i < fr->ax.n; i++) {
        double x = px(fr, fr->ax.ticks[i]);
        tg_train_svg_printf(s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, fr->y0, x, fr->y1);
        tick_label(lb, sizeof lb, &fr->ax, fr->ax.ticks[i]);
        tg_train_svg_label(s, x, fr->y1 + 16, "middle", "", lb);
    }
    for (int i = 0; i < fr->ay.n; i++) {
        double y = py(fr, fr->ay.ticks[i]);
        tg_train_svg_printf(s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", fr->x0, y, fr->x1, y);
        tick_label(lb, sizeof lb, &fr->ay, fr->ay.ticks[i]);
        tg_train_svg_label(s, fr->x0 - 6, y + 4, "end", "", lb);
    }
    tg_train_svg_printf(s, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n",
                        fr->x0, fr->y0, fr->x1 - fr->x0, fr->y1 - fr->y0);
    if (o->title) tg_train_svg_label(s, w / 2.0, 24, "middle", "font-size=\"16\"", o->title);
    if (o->xlabel) tg_train_svg_label(s, (fr->x0 + fr->x1) / 2, h - 10, "middle", "", o->xlabel);
    if (o->ylabel) {
        tg_train_svg_printf(s, "<g transform=\"translate(16 %.1f) rotate(-90)\">", (fr->y0 + fr->y1) / 2);
        tg_train_svg_label(s, 0, 0, "middle", "", o->ylabel);
        tg_train_svg_printf(s, "</g>\n");
    }
}

static const char *palette[10] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" };

static void draw_series(tg_svg *s, const frame *fr, const tg_plot_series *ser, const char *color, bool markers,
                        const tg_plot_opts *o) {
    tg_train_svg_printf(s, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" d=\"", color);
    bool pen = false;
    for (int64_t i = 0; i < ser->n; i++) {
        double x = xval(ser, i), y = ser->y[i];
        if (!usable(x, o->log_x) || !usable(y, o->log_y)) {
            pen = false; /* a gap */
            continue;
        }
        tg_train_svg_printf(s, "%s%.2f %.2f", pen ? " L" : " M", px(fr, x), py(fr, y));
        pen = true;
    }
    tg_train_svg_printf(s, "\"/>\n");
    for (int64_t i = 0; i < ser->n; i++) {
        double x = xval(ser, i), y = ser->y[i];
        if (!usable(x, o->log_x) || !usable(y, o->log_y)) continue;
        bool prev = i > 0 && usable(xval(ser, i - 1), o->log_x) && usable(ser->y[i - 1], o->log_y);
        bool next = i + 1 < ser->n && usable(xval(ser, i + 1), o->log_x) && usable(ser->y[i + 1], o->log_y);
        if (markers || (!prev && !next)) /* an isolated point has no line to show it */
            tg_train_svg_printf(s, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>\n", px(fr, x), py(fr, y), color);
    }
}

static void draw_legend(tg_svg *s, const frame *fr, int n, const tg_plot_series *ss) {
    double w = 0;
    for (int k = 0; k < n; k++) {
        double lw = ss[k].label ? 7.0 * (double)strlen(ss[k].label) : 56;
        w = lw > w ? lw : w;
    }
    double x = fr->x1 - w - 40, y = fr->y0 + 8;
    tg_train_svg_printf(s, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"white\" fill-opacity=\"0.85\" "
                           "stroke=\"#999\"/>\n", x, y, w + 32, 18 * n + 6);
    for (int k = 0; k < n; k++) {
        double ly = y + 15 + 18 * k;
        char def[32];
        snprintf(def, sizeof def, "series %d", k);
        tg_train_svg_printf(s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                            x + 4, ly - 4, x + 22, ly - 4, ss[k].color ? ss[k].color : palette[k % 10]);
        tg_train_svg_label(s, x + 26, ly, "start", "", ss[k].label ? ss[k].label : def);
    }
}

static tg_status check_plot(const char *api, int n, const tg_plot_series *ss, const tg_plot_opts *o) {
    if (!ss) return tg_error(TG_ERR_INVALID, "%s: series is NULL", api);
    if (n < 1) return tg_error(TG_ERR_INVALID, "%s: n_series is %d (at least 1)", api, n);
    for (int k = 0; k < n; k++) {
        if (ss[k].n < 0) return tg_error(TG_ERR_INVALID, "%s: series %d has n = %lld", api, k, (long long)ss[k].n);
        if (ss[k].n > 0 && !ss[k].y) return tg_error(TG_ERR_INVALID, "%s: series %d has %lld points and y NULL", api, k,
                                                     (long long)ss[k].n);
    }
    if ((o->width && (o->width < 100 || o->width > 10000)) || (o->height && (o->height < 100 || o->height > 10000)))
        return tg_error(TG_ERR_INVALID, "%s: width and height must be 100-10000 pixels, got %d x %d", api, o->width,
                        o->height);
    return TG_OK;
}

static tg_status plot(const char *api, const char *path, FILE *f, int n, const tg_plot_series *ss,
                      const tg_plot_opts *opts) {
    static const tg_plot_opts defaults = { 0 };
    const tg_plot_opts *o = opts ? opts : &defaults;
    tg_status st = check_plot(api, n, ss, o);
    if (st) return st;
    int w = o->width ? o->width : 640, h = o->height ? o->height : 400;
    frame fr = { .x0 = 70, .y0 = o->title ? 40 : 16, .x1 = w - 20, .y1 = h - (o->xlabel ? 50 : 34) };
    double lo, hi;
    data_range(n, ss, true, o, &lo, &hi);
    make_axis(&fr.ax, o->log_x, lo, hi);
    data_range(n, ss, false, o, &lo, &hi);
    make_axis(&fr.ay, o->log_y, lo, hi);
    tg_svg s;
    if ((st = tg_train_svg_open(&s, api, path, f, w, h))) return st;
    draw_axes(&s, &fr, o, w, h);
    for (int k = 0; k < n; k++)
        draw_series(&s, &fr, &ss[k], ss[k].color ? ss[k].color : palette[k % 10],
                    o->markers > 0 || (o->markers == 0 && ss[k].n <= 50), o);
    draw_legend(&s, &fr, n, ss);
    return tg_train_svg_close(&s);
}

tg_status tg_plot_svg(const char *path, int n_series, const tg_plot_series *series, const tg_plot_opts *opts) {
    TG_API_ENTER("tg_plot_svg");
    if (!path) return tg_error(TG_ERR_INVALID, "tg_plot_svg: path is NULL");
    return plot("tg_plot_svg", path, NULL, n_series, series, opts);
}

tg_status tg_plot_svg_file(FILE *f, int n_series, const tg_plot_series *series, const tg_plot_opts *opts) {
    TG_API_ENTER("tg_plot_svg_file");
    if (!f) return tg_error(TG_ERR_INVALID, "tg_plot_svg_file: f is NULL");
    return plot("tg_plot_svg_file", NULL, f, n_series, series, opts);
}

tg_status tg_metrics_plot(const tg_metrics *m, const char *path, const char *x_key, int n_keys,
                          const char *const *y_keys, const tg_plot_opts *opts) {
    TG_API_ENTER("tg_metrics_plot");
    const char *api = "tg_metrics_plot";
    if (!m || !path || !y_keys) return tg_error(TG_ERR_INVALID, "%s: %s is NULL", api, !m ? "m" : !path ? "path" : "y_keys");
    if (n_keys < 1) return tg_error(TG_ERR_INVALID, "%s: n_keys is %d (at least 1)", api, n_keys);
    int64_t rows = tg_metrics_rows(m);
    tg_status st = TG_ERR_NOMEM;
    double *x = NULL, *y = malloc((size_t)(rows ? rows : 1) * (size_t)n_keys * sizeof *y);
    tg_plot_series *ss = calloc((size_t)n_keys, sizeof *ss);
    if (!y || !ss || (x_key && !(x = malloc((size_t)(rows ? rows : 1) * sizeof *x)))) {
        tg_error(st, "%s: out of memory", api);
        goto fail;
    }
    st = TG_ERR_INVALID;
    if (x_key && tg_metrics_column(m, x_key, x, rows) < 0) goto fail;
    for (int k = 0; k < n_keys; k++) {
        if (!y_keys[k]) {
            tg_error(st, "%s: y_keys[%d] is NULL", api, k);
            goto fail;
        }
        if (tg_metrics_column(m, y_keys[k], y + k * rows, rows) < 0) goto fail;
        ss[k] = (tg_plot_series){ .label = y_keys[k], .n = rows, .x = x, .y = y + k * rows };
    }
    tg_plot_opts o = opts ? *opts : (tg_plot_opts){ 0 };
    if (!o.xlabel) o.xlabel = x_key ? x_key : "row";
    st = plot(api, path, NULL, n_keys, ss, &o);
fail:
    free(x), free(y), free(ss);
    return st;
}
