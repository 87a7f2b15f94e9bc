/* Progress bars for epochs and steps: running means of loss and accuracy, rates,
 * elapsed time and ETA, drawn as one \r-redrawn line on a terminal or as periodic
 * plain lines into a pipe or log file. The clock is injectable so tests are exact. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/graph/error.h"

#define BAR_WIDTH 20

struct tg_progress {
    FILE *f;
    bool disabled, tty;
    char *desc;
    char unit[32];
    int64_t total, n, samples, batch;
    double t0, last_draw, last_line;
    int64_t next_line_n;   /* LINES: the step count of the next percentage line */
    double min_interval, log_percent, log_seconds, ema_w;
    double loss_sum, ema, acc_sum, acc_weight;
    int64_t loss_count;
    bool drawn, dirty;     /* TTY: something was drawn; the last state was not */
    int last_len;          /* TTY: the length of the line drawn last, to blank its tail */
    double (*clock)(void *);
    void *clock_ctx;
};

static double monotonic(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(const tg_progress *b) { return b->clock(b->clock_ctx); }

static tg_status check_opts(const tg_progress_opts *o, int64_t total) {
    const char *api = "tg_progress_new";
    if (total < 0) return tg_error(TG_ERR_INVALID, "%s: total is %lld (negative; 0 means unknown)", api, (long long)total);
    if (o->batch_size < 0) return tg_error(TG_ERR_INVALID, "%s: batch_size is %lld (negative)", api, (long long)o->batch_size);
    if (!(o->min_interval >= 0)) return tg_error(TG_ERR_INVALID, "%s: min_interval is %g (must be >= 0)", api, o->min_interval);
    if (!(o->log_percent >= 0)) return tg_error(TG_ERR_INVALID, "%s: log_percent is %g (must be >= 0)", api, o->log_percent);
    if (!(o->log_seconds >= 0)) return tg_error(TG_ERR_INVALID, "%s: log_seconds is %g (must be >= 0)", api, o->log_seconds);
    if (o->ema.set && !(o->ema.value > 0 && o->ema.value <= 1))
        return tg_error(TG_ERR_INVALID, "%s: ema is %g (must be in (0, 1])", api, o->ema.value);
    if ((unsigned)o->mode > TG_PROGRESS_LINES) return tg_error(TG_ERR_INVALID, "%s: unknown mode %d", api, (int)o->mode);
    if (o->unit && (!*o->unit || strlen(o->unit) >= 32))
        return tg_error(TG_ERR_INVALID, "%s: unit must be 1-31 characters", api);
    return TG_OK;
}

tg_progress *tg_progress_new(int64_t total, const char *desc, const tg_progress_opts *opts) {
    TG_API_ENTER("tg_progress_new");
    static const tg_progress_opts defaults = { 0 };
    const tg_progress_opts *o = opts ? opts : &defaults;
    if (check_opts(o, total)) return NULL;
    tg_progress *b = calloc(1, sizeof *b);
    if (!b || !(b->desc = strdup(desc ? desc : ""))) {
        free(b);
        return tg_error_null(TG_ERR_NOMEM, "tg_progress_new: out of memory");
    }
    b->f = o->stream ? o->stream : stderr;
    b->disabled = o->disable;
    snprintf(b->unit, sizeof b->unit, "%s", o->unit ? o->unit : "step");
    b->tty = o->mode == TG_PROGRESS_TTY || (o->mode == TG_PROGRESS_AUTO && isatty(fileno(b->f)));
    b->total = total, b->batch = o->batch_size;
    b->min_interval = o->min_interval > 0 ? o->min_interval : 0.1;
    b->log_percent = o->log_percent > 0 ? o->log_percent : 10;
    b->log_seconds = o->log_seconds > 0 ? o->log_seconds : total == 0 ? 10 : 0;
    b->ema_w = o->ema.set ? o->ema.value : 0.1;
    b->ema = NAN;
    b->clock = o->clock ? o->clock : monotonic;
    b->clock_ctx = o->clock_ctx;
    b->t0 = b->last_draw = b->last_line = now(b);
    b->next_line_n = total > 0 ? (int64_t)ceil(b->log_percent / 100.0 * (double)total - 1e-9) : 0;
    if (b->next_line_n < 1) b->next_line_n = 1;
    return b;
}

/* ---------------------------------------------------------------- formatting */

typedef struct {
    char *p;
    size_t size, len;
} sbuf;

static void put(sbuf *s, const char *fmt, ...) TG_PRINTF(2, 3);
static void put(sbuf *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->p + s->len, s->size - s->len, fmt, ap);
    va_end(ap);
    if (n > 0) s->len = s->len + (size_t)n < s->size ? s->len + (size_t)n : s->size - 1;
}

/* mm:ss, or h:mm:ss from an hour on; "?" when unknown. */
static void put_time(sbuf *s, double t) {
    if (!isfinite(t) || t < 0) {
        put(s, "?");
        return;
    }
    long long sec = (long long)t;
    if (sec >= 3600) put(s, "%lld:%02lld:%02lld", sec / 3600, sec / 60 % 60, sec % 60);
    else put(s, "%02lld:%02lld", sec / 60, sec % 60);
}

/* ", 10.00 step/s, 640.0 samples/s, loss 0.4321, acc 87.50%" */
static void put_stats(sbuf *s, const tg_progress *b, double elapsed) {
    if (elapsed > 0) put(s, "%.2f %s/s", (double)b->n / elapsed, b->unit);
    else put(s, "? %s/s", b->unit);
    if (b->samples > 0) {
        if (elapsed > 0) put(s, ", %.1f samples/s", (double)b->samples / elapsed);
        else put(s, ", ? samples/s");
    }
    if (b->loss_count) put(s, ", loss %.4f", tg_progress_mean_loss(b));
    if (b->acc_weight > 0) put(s, ", acc %.2f%%", 100 * tg_progress_mean_accuracy(b));
}

static double eta(const tg_progress *b, double elapsed) {
    if (b->total <= 0 || b->n == 0 || elapsed <= 0) return NAN;
    int64_t left = b->total > b->n ? b->total - b->n : 0;
    return (double)left * elapsed / (double)b->n;
}

static int percent(const tg_progress *b) {
    int64_t n = b->n < b->total ? b->n : b->total;
    return (int)((double)n * 100.0 / (double)b->total);
}

static void format_tty(sbuf *s, const tg_progress *b, double elapsed) {
    if (*b->desc) put(s, "%s: ", b->desc);
    if (b->total > 0) {
        int64_t n = b->n < b->total ? b->n : b->total;
        int fill = (int)(n * BAR_WIDTH / b->total);
        put(s, "%3d%%|%.*s%*s| %lld/%lld [", percent(b), fill, "####################", BAR_WIDTH - fill, "",
            (long long)b->n, (long long)b->total);
        put_time(s, elapsed);
        put(s, "<");
        put_time(s, eta(b, elapsed));
    } else {
        put(s, "%s %lld [", b->unit, (long long)b->n);
        put_time(s, elapsed);
    }
    put(s, ", ");
    put_stats(s, b, elapsed);
    put(s, "]");
}

static void format_line(sbuf *s, const tg_progress *b, double elapsed, bool done) {
    if (*b->desc) put(s, "%s: ", b->desc);
    if (done) put(s, "done ");
    if (b->total > 0) put(s, "%lld/%lld", (long long)b->n, (long long)b->total);
    else if (done) put(s, "%lld", (long long)b->n);
    else put(s, "%s %lld", b->unit, (long long)b->n);
    if (done) {
        put(s, " in ");
        put_time(s, elapsed);
    } else {
        if (b->total > 0) put(s, " (%d%%)", percent(b));
        put(s, ", ");
        put_time(s, elapsed);
        put(s, " elapsed");
        if (b->total > 0) {
            put(s, ", eta ");
            put_time(s, eta(b, elapsed));
        }
    }
    put(s, ", ");
    put_stats(s, b, elapsed);
}

/* ---------------------------------------------------------------- drawing */

static tg_status emit(tg_progress *b, const char *api, const char *text, int pad, const char *end) {
    if (b->disabled) return TG_OK;
    if (fprintf(b->f, "%s%*s%s", text, pad, "", end) < 0 || fflush(b->f) != 0)
        return tg_error(TG_ERR_IO, "%s: writing the progress bar failed: %s", api, strerror(errno));
    return TG_OK;
}

static tg_status draw_tty(tg_progress *b, const char *api, double t) {
    char buf[512];
    sbuf s = { buf, sizeof buf, 0 };
    put(&s, "\r");
    format_tty(&s, b, t - b->t0);
    int len = (int)s.len - 1, pad = b->last_len > len ? b->last_len - len : 0;
    b->last_len = len, b->last_draw = t, b->drawn = true, b->dirty = false;
    return emit(b, api, buf, pad, "");
}

static tg_status draw_line(tg_progress *b, const char *api, double t, bool done) {
    char buf[512];
    sbuf s = { buf, sizeof buf, 0 };
    format_line(&s, b, t - b->t0, done);
    b->last_line = t;
    return emit(b, api, buf, 0, "\n");
}

/* LINES: whether another log_percent of total (or log_seconds) went by. */
static bool line_due(tg_progress *b, double t) {
    if (b->total > 0 && b->n >= b->total) return false; /* the summary line says it */
    bool due = b->log_seconds > 0 && t - b->last_line >= b->log_seconds;
    if (b->total > 0 && b->n >= b->next_line_n) {
        due = true;
        double step = b->log_percent / 100.0 * (double)b->total;
        int64_t k = (int64_t)floor((double)b->n / step) + 1;
        b->next_line_n = (int64_t)ceil((double)k * step - 1e-9);
        if (b->next_line_n <= b->n) b->next_line_n = b->n + 1;
    }
    return due;
}

static void add_values(tg_progress *b, const tg_progress_step *s, int64_t steps, int64_t samples) {
    b->n += steps;
    b->samples += samples;
    if (s->loss.set && isfinite(s->loss.value)) {
        b->loss_sum += s->loss.value * (double)steps;
        b->loss_count += steps;
        b->ema = isnan(b->ema) ? s->loss.value : b->ema + b->ema_w * (s->loss.value - b->ema);
    }
    if (s->accuracy.set) {
        double w = samples > 0 ? (double)samples : (double)steps;
        b->acc_sum += s->accuracy.value * w;
        b->acc_weight += w;
    }
}

tg_status tg_progress_update_ex(tg_progress *b, const tg_progress_step *s) {
    TG_API_ENTER("tg_progress_update");
    const char *api = "tg_progress_update";
    if (!b) return tg_error(TG_ERR_INVALID, "%s: bar is NULL", api);
    if (!s) return tg_error(TG_ERR_INVALID, "%s: step is NULL", api);
    if (s->steps < 0 || s->samples < 0)
        return tg_error(TG_ERR_INVALID, "%s: steps (%lld) and samples (%lld) must be >= 0", api, (long long)s->steps,
                        (long long)s->samples);
    if (s->accuracy.set && !(s->accuracy.value >= 0 && s->accuracy.value <= 1))
        return tg_error(TG_ERR_INVALID, "%s: accuracy is %g (must be a fraction in [0, 1])", api, s->accuracy.value);
    int64_t steps = s->steps ? s->steps : 1;
    add_values(b, s, steps, s->samples ? s->samples : b->batch * steps);
    double t = now(b);
    if (b->tty) {
        bool last = b->total > 0 && b->n >= b->total;
        if (!b->drawn || last || t - b->last_draw >= b->min_interval) return draw_tty(b, api, t);
        b->dirty = true;
        return TG_OK;
    }
    return line_due(b, t) ? draw_line(b, api, t, false) : TG_OK;
}

tg_status tg_progress_update(tg_progress *b, double loss) {
    TG_API_ENTER("tg_progress_update");
    return tg_progress_update_ex(b, &(tg_progress_step){ .loss = { !isnan(loss), loss } });
}

tg_status tg_progress_update_acc(tg_progress *b, double loss, double accuracy) {
    TG_API_ENTER("tg_progress_update_acc");
    return tg_progress_update_ex(b, &(tg_progress_step){ .loss = { !isnan(loss), loss },
                                                          .accuracy = TG_SOME(accuracy) });
}

tg_status tg_progress_set_description(tg_progress *b, const char *desc) {
    TG_API_ENTER("tg_progress_set_description");
    if (!b) return tg_error(TG_ERR_INVALID, "tg_progress_set_description: bar is NULL");
    char *d = strdup(desc ? desc : "");
    if (!d) return tg_error(TG_ERR_NOMEM, "tg_progress_set_description: out of memory");
    free(b->desc);
    b->desc = d;
    return TG_OK;
}

double tg_progress_mean_loss(const tg_progress *b) {
    return b && b->loss_count ? b->loss_sum / (double)b->loss_count : NAN;
}
double tg_progress_ema_loss(const tg_progress *b) { return b ? b->ema : NAN; }
double tg_progress_mean_accuracy(const tg_progress *b) {
    return b && b->acc_weight > 0 ? b->acc_sum / b->acc_weight : NAN;
}
int64_t tg_progress_steps(const tg_progress *b) { return b ? b->n : 0; }

void tg_progress_close(tg_progress *b) {
    TG_API_ENTER("tg_progress_close");
    if (!b) return;
    double t = now(b);
    if (b->tty) {
        if (b->dirty || !b->drawn) draw_tty(b, "tg_progress_close", t);
        emit(b, "tg_progress_close", "", 0, "\n");
    } else {
        draw_line(b, "tg_progress_close", t, true);
    }
    free(b->desc);
    free(b);
}
