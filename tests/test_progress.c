/* Progress bars driven by a fake clock into temporary files: the exact periodic lines
 * and summary of the log mode, the exact \r-redrawn line of the terminal mode (with
 * the redraw limit and the blanking of a shorter line), unknown totals, the means and
 * EMA (computed here by hand), and the error paths. */
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "text_check.h"

static double fake_now;
static double fake_clock(void *ctx) {
    (void)ctx;
    return fake_now;
}

/* A bar writing into a new temporary file, started at time 0 of the fake clock. */
static tg_progress *new_bar(int64_t total, const char *desc, tg_progress_opts o, FILE **f) {
    *f = tmpfile();
    o.stream = *f;
    o.clock = fake_clock;
    fake_now = 0;
    return tg_progress_new(total, desc, &o);
}

/* Step i at time t[i] with loss[i] (and acc[i] unless acc is NULL), then close at
 * t_close: what the bar wrote. */
static char *drive(tg_progress *bar, FILE *f, int n, const double *t, const double *loss, const double *acc,
                   double t_close) {
    for (int i = 0; i < n; i++) {
        fake_now = t[i];
        if (acc) tg_progress_update_acc(bar, loss[i], acc[i]);
        else tg_progress_update(bar, loss[i]);
    }
    fake_now = t_close;
    tg_progress_close(bar);
    char *s = tg_test_slurp(f);
    fclose(f);
    return s;
}

TEST(log_lines_every_quarter_and_summary) {
    FILE *f;
    tg_progress *bar = new_bar(8, "epoch 1/2", (tg_progress_opts){ .batch_size = 32, .log_percent = 25 }, &f);
    const double t[8] = { 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4 };
    const double loss[8] = { 1.0, 0.8, 0.6, 0.4, 0.2, 0.2, 0.2, 0.2 };
    const double acc[8] = { 0.5, 0.5, 0.75, 0.75, 1, 1, 1, 1 };
    char *s = drive(bar, f, 8, t, loss, acc, 4.0);
    /* At 2, 4, 6 steps: means (1+.8)/2, 2.8/4, 3.2/6; acc 0.5, 2.5/4, 4.5/6; 2 steps/s of
     * 32 samples; eta = steps left / rate. At close: 3.6/8 and 6.5/8 after 4 s. */
    CHECK_TEXT(s, "epoch 1/2: 2/8 (25%), 00:01 elapsed, eta 00:03, 2.00 step/s, 64.0 samples/s, loss 0.9000, acc 50.00%\n"
                  "epoch 1/2: 4/8 (50%), 00:02 elapsed, eta 00:02, 2.00 step/s, 64.0 samples/s, loss 0.7000, acc 62.50%\n"
                  "epoch 1/2: 6/8 (75%), 00:03 elapsed, eta 00:01, 2.00 step/s, 64.0 samples/s, loss 0.5333, acc 75.00%\n"
                  "epoch 1/2: done 8/8 in 00:04, 2.00 step/s, 64.0 samples/s, loss 0.4500, acc 81.25%\n");
    free(s);
}

TEST(log_mode_is_the_default_off_a_terminal) {
    FILE *f;
    tg_progress *bar = new_bar(100, NULL, (tg_progress_opts){ 0 }, &f);
    double t[100], loss[100];
    for (int i = 0; i < 100; i++) t[i] = 3700 + i, loss[i] = NAN; /* past an hour: h:mm:ss; no loss shown */
    char *s = drive(bar, f, 100, t, loss, NULL, 3799);
    int lines = 0;
    for (char *p = s; p && *p; p++) lines += *p == '\n';
    CHECK(s && !strchr(s, '\r'));
    CHECK(lines == 10); /* 10%, 20%, ..., 90% and the summary */
    const char *first = "10/100 (10%), 1:01:49 elapsed, eta 9:16:21, 0.00 step/s\n"; /* 90 * 3709 / 10 s */
    CHECK(s && strncmp(s, first, strlen(first)) == 0);
    CHECK(s && strstr(s, "\ndone 100/100 in 1:03:19, 0.03 step/s\n"));
    free(s);
}

TEST(terminal_line_redrawn_at_most_every_interval) {
    FILE *f;
    tg_progress *bar = new_bar(4, NULL, (tg_progress_opts){ .mode = TG_PROGRESS_TTY, .unit = "batch" }, &f);
    const double t[4] = { 0.05, 0.10, 0.2, 0.4 }, loss[4] = { 12, 1, 1, 0 };
    char *s = drive(bar, f, 4, t, loss, NULL, 0.5);
    /* Drawn at the first step, skipped 0.05 s later, drawn at 0.2 s (one space blanks the
     * char the shorter loss freed) and at the last step; close adds the newline. */
    CHECK_TEXT(s, "\r 25%|#####               | 1/4 [00:00<00:00, 20.00 batch/s, loss 12.0000]"
                  "\r 75%|###############     | 3/4 [00:00<00:00, 15.00 batch/s, loss 4.6667] "
                  "\r100%|####################| 4/4 [00:00<00:00, 10.00 batch/s, loss 3.5000]\n");
    free(s);
}

TEST(unknown_total_logs_by_time) {
    FILE *f;
    tg_progress *bar = new_bar(0, "train", (tg_progress_opts){ 0 }, &f);
    const double t[4] = { 5, 11, 15, 21.5 }, loss[4] = { 1, 1, 1, 1 };
    char *s = drive(bar, f, 4, t, loss, NULL, 22);
    CHECK_TEXT(s, "train: step 2, 00:11 elapsed, 0.18 step/s, loss 1.0000\n"
                  "train: step 4, 00:21 elapsed, 0.19 step/s, loss 1.0000\n"
                  "train: done 4 in 00:22, 0.18 step/s, loss 1.0000\n");
    free(s);
}

TEST(terminal_close_draws_a_pending_state) {
    FILE *f;
    tg_progress *bar = new_bar(0, "eval", (tg_progress_opts){ .mode = TG_PROGRESS_TTY, .batch_size = 10 }, &f);
    fake_now = 1;
    tg_progress_update_acc(bar, NAN, 0.5);
    fake_now = 1.05;
    tg_progress_update_ex(bar, &(tg_progress_step){ .samples = 30, .accuracy = TG_SOME(1.0) });
    char *s = drive(bar, f, 0, NULL, NULL, NULL, 2);
    /* Unknown total: no bar or ETA. Accuracy weighs samples: (0.5*10 + 1*30) / 40. */
    CHECK_TEXT(s, "\reval: step 1 [00:01, 1.00 step/s, 10.0 samples/s, acc 50.00%]"
                  "\reval: step 2 [00:02, 1.00 step/s, 20.0 samples/s, acc 87.50%]\n");
    free(s);
}

/* The default mode on a terminal (a pseudo-terminal here) is the redrawn line. */
TEST(auto_mode_on_a_terminal) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        if (master >= 0) close(master);
        SKIP("no pseudo-terminal here");
    }
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    FILE *f = slave >= 0 ? fdopen(slave, "w") : NULL;
    CHECK(f != NULL);
    if (!f) {
        close(master);
        return;
    }
    fake_now = 0;
    tg_progress *bar = tg_progress_new(2, "tty", &(tg_progress_opts){ .stream = f, .clock = fake_clock });
    fake_now = 1;
    tg_progress_update(bar, 0.5);
    tg_progress_close(bar);
    fclose(f);
    char buf[512] = "";
    struct pollfd p = { .fd = master, .events = POLLIN };
    ssize_t n = poll(&p, 1, 2000) == 1 ? read(master, buf, sizeof buf - 1) : -1;
    if (n > 0) buf[n] = 0;
    const char *want = "\rtty:  50%|##########          | 1/2 [00:01<00:01, 1.00 step/s, loss 0.5000]";
    CHECK(strncmp(buf, want, strlen(want)) == 0); /* then the terminal's own end of line */
    close(master);
}

TEST(means_ema_and_disable) {
    FILE *f = tmpfile();
    tg_progress *bar = tg_progress_new(5, "x", &(tg_progress_opts){ .stream = f, .disable = true,
                                               .ema = TG_SOME(0.5) });
    CHECK(isnan(tg_progress_mean_loss(bar)) && isnan(tg_progress_ema_loss(bar)));
    CHECK(tg_progress_update(bar, 4) == TG_OK);
    CHECK(tg_progress_update(bar, 2) == TG_OK);
    CHECK(tg_progress_update(bar, NAN) == TG_OK);      /* a step without a loss */
    CHECK(tg_progress_update(bar, INFINITY) == TG_OK); /* kept out of the means */
    CHECK(tg_progress_update_ex(bar, &(tg_progress_step){ .steps = 2, .loss = TG_SOME(1) }) == TG_OK);
    CHECK(tg_progress_steps(bar) == 6);
    CHECK_NEAR(tg_progress_mean_loss(bar), (4 + 2 + 1 * 2) / 4.0, 1e-12);
    CHECK_NEAR(tg_progress_ema_loss(bar), 3 + 0.5 * (1 - 3), 1e-12); /* 4, then 3, then 2 */
    CHECK(isnan(tg_progress_mean_accuracy(bar)));
    CHECK(tg_progress_set_description(bar, "y") == TG_OK);
    tg_progress_close(bar);
    CHECK(ftell(f) == 0);
    fclose(f);
    tg_progress_close(NULL);
}

TEST(errors) {
    CHECK_ERROR(tg_progress_new(-1, NULL, NULL), "tg_progress_new: total is -1 (negative; 0 means unknown)");
    CHECK_ERROR(tg_progress_new(1, NULL, &(tg_progress_opts){ .batch_size = -2 }),
                "tg_progress_new: batch_size is -2 (negative)");
    CHECK_ERROR(tg_progress_new(1, NULL, &(tg_progress_opts){ .min_interval = -1 }),
                "tg_progress_new: min_interval is -1 (must be >= 0)");
    CHECK_ERROR(tg_progress_new(1, NULL, &(tg_progress_opts){ .log_percent = NAN }),
                "tg_progress_new: log_percent is nan (must be >= 0)");
    CHECK_ERROR(tg_progress_new(1, NULL, &(tg_progress_opts){ .log_seconds = -3 }),
                "tg_progress_new: log_seconds is -3 (must be >= 0)");
    CHECK_ERROR(tg_progress_new(1, NULL, &(tg_progress_opts){ .ema = TG_SOME(0) }),
                "tg_progress_new: ema is 0 (must be in (0, 1])");
    CHECK_ERROR(tg_progress_new(1, NULL, &(tg_progress_opts){ .mode = (tg_progress_mode)7 }),
                "tg_progress_new: unknown mode 7");
    CHECK_ERROR(tg_progress_new(1, NULL, &(tg_progress_opts){ .unit = "" }),
                "tg_progress_new: unit must be 1-31 characters");
    CHECK_ERROR(tg_progress_update(NULL, 1), "tg_progress_update: bar is NULL");
    CHECK_ERROR(tg_progress_update_acc(NULL, 1, 0.5), "tg_progress_update_acc: bar is NULL");
    CHECK_ERROR(tg_progress_set_description(NULL, "a"), "tg_progress_set_description: bar is NULL");
    tg_progress *bar = tg_progress_new(3, NULL, &(tg_progress_opts){ .disable = true });
    CHECK_ERROR(tg_progress_update_ex(bar, NULL), "tg_progress_update: step is NULL");
    CHECK_ERROR(tg_progress_update_ex(bar, &(tg_progress_step){ .steps = -1 }),
                "tg_progress_update: steps (-1) and samples (0) must be >= 0");
    CHECK_ERROR(tg_progress_update_acc(bar, 1, 1.5),
                "tg_progress_update_acc: accuracy is 1.5 (must be a fraction in [0, 1])");
    CHECK(tg_progress_steps(bar) == 0); /* a refused update counts nothing */
    tg_progress_close(bar);
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        bar = tg_progress_new(2, NULL, &(tg_progress_opts){ .stream = full, .mode = TG_PROGRESS_TTY });
        CHECK_ERROR_CONTAINS(tg_progress_update(bar, 1), "tg_progress_update: writing the progress bar failed");
        tg_progress_close(bar);
        fclose(full);
    }
}

static bool no_device(void) { return true; }

TG_TEST_MAIN_WITH(no_device, &tg_case_log_lines_every_quarter_and_summary, &tg_case_log_mode_is_the_default_off_a_terminal,
                  &tg_case_terminal_line_redrawn_at_most_every_interval, &tg_case_terminal_close_draws_a_pending_state,
                  &tg_case_unknown_total_logs_by_time, &tg_case_auto_mode_on_a_terminal,
                  &tg_case_means_ema_and_disable, &tg_case_errors)
