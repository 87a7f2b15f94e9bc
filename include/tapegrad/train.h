/* Watching training: progress bars, metrics logs and plots.
 * Included by tapegrad.h; it can also be included on its own.
 *
 *     tg_metrics *log = tg_metrics_open("metrics.csv", NULL);      // CSV; ".jsonl": JSON lines
 *     for (int e = 1; e <= epochs; e++) {
 *         char desc[32];
 *         snprintf(desc, sizeof desc, "epoch %d/%d", e, epochs);
 *         tg_progress *bar = tg_progress_new(steps, desc, &(tg_progress_opts){ .batch_size = 64 });
 *         for (...) {                                              // one training step
 *             ...
 *             tg_progress_update(bar, tg_item(loss));
 *         }
 *         double train_loss = tg_progress_mean_loss(bar);
 *         tg_progress_close(bar);                                  // newline, or a summary line
 *         TG_METRICS_LOG(log, { "epoch", e }, { "train_loss", train_loss }, { "test_acc", acc });
 *     }
 *     tg_metrics_plot(log, "loss.svg", "epoch", 1, (const char *[]){ "train_loss" },
 *                     &(tg_plot_opts){ .title = "loss", .log_y = true });
 *     tg_metrics_close(log);
 *
 * Plots are SVG files (any browser shows them). Every function that writes a file
 * returns TG_ERR_IO, with a message naming the path, when it cannot. */
#ifndef TAPEGRAD_TRAIN_H
#define TAPEGRAD_TRAIN_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- progress bars
 *
 * A bar over total steps. On a terminal (isatty on the stream) it is one line redrawn
 * with \r, at most every min_interval seconds (and always for the last step), ended
 * by a newline at close:
 *
 *     epoch 2/3:  45%|#########           | 45/100 [00:04<00:05, 10.00 step/s, 640.0 samples/s, loss 0.4321, acc 87.50%]
 *
 * Into a pipe or a file it never writes \r: a plain line each time another log_percent
 * of total is done (or log_seconds passed), and a summary line at close:
 *
 *     epoch 2/3: 45/100 (45%), 00:04 elapsed, eta 00:05, 10.00 step/s, 640.0 samples/s, loss 0.4321, acc 87.50%
 *     epoch 2/3: done 100/100 in 00:10, 10.00 step/s, 640.0 samples/s, loss 0.4000, acc 88.00%
 *
 * The loss and accuracy shown are running means over the bar's steps (an epoch when
 * the bar is one epoch), each step weighing the same for the loss and by its samples
 * for the accuracy; tg_progress_ema_loss gives an exponential moving average as well.
 * Rates are steps (samples) done over the elapsed time since tg_progress_new. A total
 * of 0 means unknown: no percentage, bar or ETA. Parts without data (no samples, no
 * loss) are left out. */

typedef struct tg_progress tg_progress;

typedef enum {
    TG_PROGRESS_AUTO = 0, /* TTY when isatty(fileno(stream)), else LINES */
    TG_PROGRESS_TTY,      /* one line redrawn with \r */
    TG_PROGRESS_LINES,    /* periodic plain lines and a summary */
} tg_progress_mode;

typedef struct {
    FILE *stream;          /* default stderr */
    bool disable;          /* write nothing (the means are still kept) */
    const char *unit;      /* what a step is called: default "step" ("12.00 step/s") */
    int64_t batch_size;    /* samples per step, for samples/s; 0: not shown unless updates say */
    tg_progress_mode mode;
    double min_interval;   /* TTY: seconds between redraws; default 0.1 */
    double log_percent;    /* LINES: a line every this much of total, in %; default 10 */
    double log_seconds;    /* LINES: and a line when this many seconds passed since the last
                              one; default 0 (off), or 10 when total is unknown */
    tg_opt_f64 ema;        /* the EMA's weight of a new loss; default 0.1 */
    /* The time source in seconds (monotonic); default CLOCK_MONOTONIC. For tests. */
    double (*clock)(void *clock_ctx);
    void *clock_ctx;
} tg_progress_opts;

/* A new bar (owned by the caller: tg_progress_close). total >= 0 steps (0: unknown);
 * desc is copied (NULL: none). Draws nothing until the first update. Errors (NULL and
 * a message): total < 0; bad options (min_interval, log_percent, log_seconds or
 * batch_size negative, ema outside (0, 1], a unit empty or over 31 characters, an
 * unknown mode); out of memory. */
TG_API tg_progress *tg_progress_new(int64_t total, const char *desc, const tg_progress_opts *opts);

/* What one update reports; a zeroed struct is one step with nothing measured. */
typedef struct {
    int64_t steps;       /* steps done since the last update; default 1 */
    int64_t samples;     /* samples in them; default batch_size * steps */
    tg_opt_f64 loss;     /* the mean loss of those steps (a NaN or Inf is counted as a step
                            but kept out of the means, which it would poison) */
    tg_opt_f64 accuracy; /* the fraction of those samples classified right, in [0, 1] */
} tg_progress_step;

/* One step done with its loss (NaN: none). */
TG_API tg_status tg_progress_update(tg_progress *bar, double loss);
/* One step with its loss and accuracy in [0, 1]. */
TG_API tg_status tg_progress_update_acc(tg_progress *bar, double loss, double accuracy);
/* The general form. Errors: bar or step NULL, steps or samples negative, an accuracy
 * outside [0, 1] (TG_ERR_INVALID); a write that fails (TG_ERR_IO). */
TG_API tg_status tg_progress_update_ex(tg_progress *bar, const tg_progress_step *step);
/* Replaces the description (copied) for the next lines. */
TG_API tg_status tg_progress_set_description(tg_progress *bar, const char *desc);
/* Running means over the bar so far (NaN before any value), the EMA of the loss, and
 * the steps done. */
TG_API double tg_progress_mean_loss(const tg_progress *bar);
TG_API double tg_progress_ema_loss(const tg_progress *bar);
TG_API double tg_progress_mean_accuracy(const tg_progress *bar);
TG_API int64_t tg_progress_steps(const tg_progress *bar);
/* Draws the final state (TTY: and a newline; LINES: the summary line) and frees the
 * bar. NULL is fine. */
TG_API void tg_progress_close(tg_progress *bar);

/* ---------------------------------------------------------------- metrics logs
 *
 * One row per call, each a set of (key, value) pairs: epoch, step, train_loss,
 * test_acc, lr. Written and flushed at once, so a run that crashes keeps every row
 * logged before, and kept in memory too, for plots (tg_metrics_column). CSV: the
 * header is the first row's keys, in order; a later row may leave keys out (an empty
 * cell, read back as NaN) but a key not in the header is an error, since a CSV file
 * cannot grow a column. JSON lines: one object per row, any keys, NaN and Inf as null.
 * Keys are 1-63 characters of letters, digits, '_', '-', '.', '/'. Values are written
 * so that they read back to the same double. */

typedef struct tg_metrics tg_metrics;

typedef enum {
    TG_METRICS_AUTO = 0, /* JSON lines for a path ending in ".jsonl" or ".json", else CSV */
    TG_METRICS_CSV,
    TG_METRICS_JSONL,
} tg_metrics_format;

typedef struct {
    tg_metrics_format format;
    bool append;          /* add to an existing file (CSV: its header must be the first row's
                             keys, and a file that has one fixes the columns); default: truncate */
} tg_metrics_opts;

typedef struct {
    const char *key;
    double value;
} tg_metric;

/* A log writing to path, or kept in memory only when path is NULL (which takes any
 * keys, as JSON lines). Owned by the caller (tg_metrics_close). Errors: a path that
 * cannot be opened (TG_ERR_IO); an unknown format, or appending one format to a file
 * that holds the other (TG_ERR_INVALID). */
TG_API tg_metrics *tg_metrics_open(const char *path, const tg_metrics_opts *opts);
/* Appends one row of n pairs. Errors (TG_ERR_INVALID): m or row NULL, n < 1, a key
 * NULL, invalid or given twice; in CSV, a key not in the header. TG_ERR_IO when the
 * write fails. A failed row is neither written nor kept. */
TG_API tg_status tg_metrics_log(tg_metrics *m, int n, const tg_metric *row);
/* TG_METRICS_LOG(log, { "epoch", 3 }, { "train_loss", loss }) */
#define TG_METRICS_LOG(m, ...) \
    tg_metrics_log((m), (int)(sizeof((tg_metric[]){ __VA_ARGS__ }) / sizeof(tg_metric)), (tg_metric[]){ __VA_ARGS__ })
/* Reads a log written by tg_metrics_log (the format from the file's first character:
 * '{' is JSON lines; at most 256 keys a row) into a memory-only log. Errors: TG_ERR_IO for a missing file or
 * a line that does not parse (naming the line). */
TG_API tg_metrics *tg_metrics_read(const char *path);
/* Rows logged (or read); 0 for NULL. */
TG_API int64_t tg_metrics_rows(const tg_metrics *m);
/* Copies the column of key (NaN where a row lacks it) into out, which holds max values;
 * returns the number of rows (copying at most max), or -1 with a message when key was
 * never logged. out may be NULL when max is 0 (to ask the length). */
TG_API int64_t tg_metrics_column(const tg_metrics *m, const char *key, double *out, int64_t max);
/* Flushes, closes the file and frees the log. NULL is fine. */
TG_API void tg_metrics_close(tg_metrics *m);

/* ---------------------------------------------------------------- line plots
 *
 * An SVG line plot of several series: axes with ticks at 1-2-5 steps (powers of ten
 * on a log axis), grid lines, axis labels, a title and a legend. A NaN or Inf point
 * (or a non-positive one on a log axis) is left out and breaks its line; a series
 * with no points is listed in the legend only; a plot with no points at all gets
 * axes over [0, 1]. */

typedef struct {
    const char *label;  /* in the legend; NULL: "series N" */
    int64_t n;          /* points */
    const double *x;    /* NULL: 0, 1, ..., n-1 */
    const double *y;
    const char *color;  /* an SVG colour; NULL: from a palette of ten (matplotlib's) */
} tg_plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    bool log_x, log_y;   /* logarithmic axes, for losses and learning rates */
    int width, height;   /* pixels; default 640 x 400 */
    int markers;         /* dots at the points: 0 for series of up to 50 points, 1 always, -1 never */
} tg_plot_opts;

/* Writes the plot to path. Errors (TG_ERR_INVALID): path or series NULL, n_series < 1,
 * a series with n < 0 or with n > 0 and y NULL; width or height under 100 or over
 * 10000. TG_ERR_IO for a path that cannot be written. */
TG_API tg_status tg_plot_svg(const char *path, int n_series, const tg_plot_series *series, const tg_plot_opts *opts);
TG_API tg_status tg_plot_svg_file(FILE *f, int n_series, const tg_plot_series *series, const tg_plot_opts *opts);
/* Plots columns of a metrics log against the column x_key (NULL: the row number),
 * each labelled with its key; rows lacking a value are gaps. Errors as tg_plot_svg and
 * tg_metrics_column (a key never logged). */
TG_API tg_status tg_metrics_plot(const tg_metrics *m, const char *path, const char *x_key, int n_keys,
                                 const char *const *y_keys, const tg_plot_opts *opts);

/* ---------------------------------------------------------------- classification
 *
 * Confusion matrix as sklearn's: counts[i][j] = samples of true class i predicted as
 * class j. pred holds class indices (i32 or i64, any shape) or scores (f32/f64 with
 * one more trailing axis of num_classes: the argmax over it is the prediction); labels
 * (i32 or i64) have the indices' shape. Returns (num_classes, num_classes) i64 on the
 * labels' device, owned by the current scope. Errors: NULL inputs, num_classes < 1,
 * shapes that do not match, a class outside [0, num_classes) (naming it). */
TG_API tg_tensor *tg_confusion_matrix(tg_tensor *pred, tg_tensor *labels, int64_t num_classes);
/* Per-class accuracy (recall) from counts (C, C): diag / row sum, as f32 (C) on the
 * counts' device (owned by the current scope), NaN for a class with no samples. */
TG_API tg_tensor *tg_per_class_accuracy(tg_tensor *counts);

typedef struct {
    const char *title;               /* default "confusion matrix" */
    const char *const *class_names;  /* C names; NULL: 0, 1, ... */
    int cell;                        /* pixels per cell; default 40 */
} tg_confusion_svg_opts;

/* A heat map of counts (C, C) (integer dtype or float) with the count in each cell,
 * rows = true class, columns = predicted, the class names on both axes, each row's
 * accuracy at its right end and the overall accuracy under the title. A cell's colour
 * is its share of its row (white 0 to dark blue 1), so small classes show as well as
 * large ones. Errors: counts NULL, not square 2-D, C over 1000, a negative or infinite
 * count, cell outside 0-200; TG_ERR_IO. */
TG_API tg_status tg_confusion_svg(const char *path, tg_tensor *counts, const tg_confusion_svg_opts *opts);

/* ---------------------------------------------------------------- images of tensors */

typedef struct {
    const char *title;   /* default none */
    int cell;            /* pixels per tensor element (at most 100); default 48 / the image's
                            larger side (2 from 24 on) */
    int columns;         /* images per row; default ceil(sqrt(count)) (filters: see below) */
} tg_image_grid_opts;

/* The filters of a conv weight (O, I, kh, kw) as a grid of small images, each filter
 * scaled from its own minimum (black) to maximum (white): RGB images when I == 3, else
 * one grey image per input channel (a row of I per filter when I > 1 and columns is
 * 0). A
 * NaN/Inf element is left out (the background shows); a constant filter is mid grey.
 * Errors: weight not 4-D or not f32/f64; more than 65536 images or 4194304 elements;
 * cell outside 0-100 or columns negative; TG_ERR_IO. */
TG_API tg_status tg_filters_svg(const char *path, tg_tensor *weight, const tg_image_grid_opts *opts);
/* The channels of an activation (C, H, W) (or (1, C, H, W)) as a grid of grey images,
 * each scaled to its own min/max as above. Errors as tg_filters_svg. */
TG_API tg_status tg_feature_maps_svg(const char *path, tg_tensor *activation, const tg_image_grid_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
