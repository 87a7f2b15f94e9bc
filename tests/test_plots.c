/* Metrics logs (the exact CSV and JSON lines text, flushing, appending, reading back),
 * SVG line plots (1-2-5 and log ticks worked out by hand, gaps for NaN, empty series),
 * confusion matrices counted by hand, and filter / feature-map grids with known pixel
 * colours. Every SVG is parsed as XML by python3 where /usr/bin/python3 is there. */
#include <unistd.h>

#include "text_check.h"

static char tmpdir[64];

static const char *tmp(const char *name) {
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = calloc((size_t)n + 1, 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = 0;
    fclose(f);
    return s;
}

static int count(const char *s, const char *sub) {
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, sub)); p += strlen(sub)) n++;
    return n;
}

/* The file is well-formed XML with an <svg> root (python3's parser); true when there
 * is no /usr/bin/python3 to ask, and the structural checks in each case stand alone. */
static bool parses_as_svg(const char *path) {
    if (access("/usr/bin/python3", X_OK) != 0) return true;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as E; "
             "r = E.parse(sys.argv[1]).getroot(); sys.exit(r.tag != '{http://www.w3.org/2000/svg}svg')\" %s", path);
    return system(cmd) == 0;
}

/* ---------------------------------------------------------------- metrics logs */

TEST(csv_log_text_flush_and_read_back) {
    const char *path = tmp("m.csv");
    tg_metrics *m = tg_metrics_open(path, NULL);
    CHECK(m != NULL);
    CHECK((TG_METRICS_LOG(m, { "epoch", 1 }, { "train_loss", 0.5 }, { "lr", 1e-3 })) == TG_OK);
    char *s = read_all(path); /* flushed per row: readable before close */
    CHECK_TEXT(s, "epoch,train_loss,lr\n1,0.5,0.001\n");
    free(s);
    CHECK((TG_METRICS_LOG(m, { "lr", 0.1 + 0.2 }, { "epoch", 2 })) == TG_OK); /* train_loss left out */
    CHECK((TG_METRICS_LOG(m, { "epoch", 3 }, { "train_loss", NAN })) == TG_OK);
    CHECK_ERROR((TG_METRICS_LOG(m, { "epoch", 4 }, { "test_acc", 0.9 })),
                "tg_metrics_log: key \"test_acc\" is not a column of this CSV log (its columns come from the first "
                "row); use a JSON lines log (.jsonl) for rows with changing keys");
    CHECK(tg_metrics_rows(m) == 3);
    tg_metrics_close(m);
    s = read_all(path);
    CHECK_TEXT(s, "epoch,train_loss,lr\n1,0.5,0.001\n2,,0.30000000000000004\n3,nan,\n");
    free(s);
    tg_metrics *r = tg_metrics_read(path);
    double v[4] = { 0 };
    CHECK(tg_metrics_column(r, "lr", v, 4) == 3);
    CHECK(v[0] == 1e-3 && v[1] == 0.1 + 0.2 && isnan(v[2]));
    CHECK(tg_metrics_column(r, "train_loss", v, 4) == 3);
    CHECK(v[0] == 0.5 && isnan(v[1]) && isnan(v[2]));
    CHECK(tg_metrics_column(r, "epoch", NULL, 0) == 3);
    tg_metrics_close(r);
}

TEST(csv_append_keeps_rows_and_header) {
    const char *path = tmp("a.csv");
    tg_metrics *m = tg_metrics_open(path, NULL);
    CHECK((TG_METRICS_LOG(m, { "step", 0 }, { "loss", 2 })) == TG_OK);
    tg_metrics_close(m);
    m = tg_metrics_open(path, &(tg_metrics_opts){ .append = true });
    CHECK(tg_metrics_rows(m) == 1);
    CHECK((TG_METRICS_LOG(m, { "loss", 1.25 }, { "step", 1 })) == TG_OK);
    CHECK_ERROR((TG_METRICS_LOG(m, { "acc", 1 })),
                "tg_metrics_log: key \"acc\" is not a column of this CSV log (its columns come from the first "
                "row); use a JSON lines log (.jsonl) for rows with changing keys");
    double v[2];
    CHECK(tg_metrics_column(m, "loss", v, 2) == 2 && v[0] == 2 && v[1] == 1.25);
    tg_metrics_close(m);
    char *s = read_all(path);
    CHECK_TEXT(s, "step,loss\n0,2\n1,1.25\n");
    free(s);
    CHECK_ERROR_CONTAINS(tg_metrics_open(path, &(tg_metrics_opts){ .append = true, .format = TG_METRICS_JSONL }),
                         "holds CSV rows; cannot append JSON lines");
}

TEST(jsonl_log_any_keys) {
    const char *path = tmp("m.jsonl");
    tg_metrics *m = tg_metrics_open(path, NULL);
    CHECK((TG_METRICS_LOG(m, { "epoch", 1 }, { "train_loss", 0.25 })) == TG_OK);
    CHECK((TG_METRICS_LOG(m, { "epoch", 1 }, { "test_acc", 0.875 }, { "x", INFINITY })) == TG_OK);
    tg_metrics_close(m);
    char *s = read_all(path);
    CHECK_TEXT(s, "{\"epoch\": 1, \"train_loss\": 0.25}\n{\"epoch\": 1, \"test_acc\": 0.875, \"x\": null}\n");
    free(s);
    tg_metrics *r = tg_metrics_read(path);
    CHECK(tg_metrics_rows(r) == 2);
    double v[2];
    CHECK(tg_metrics_column(r, "test_acc", v, 2) == 2 && isnan(v[0]) && v[1] == 0.875);
    CHECK(tg_metrics_column(r, "x", v, 2) == 2 && isnan(v[1]));
    tg_metrics_close(r);
}

TEST(metrics_errors) {
    CHECK_ERROR_CONTAINS(tg_metrics_open("/nonexistent-dir/m.csv", NULL),
                         "tg_metrics_open: cannot open '/nonexistent-dir/m.csv' for writing: ");
    CHECK(tg_last_status() == TG_ERR_IO);
    CHECK_ERROR(tg_metrics_open(NULL, &(tg_metrics_opts){ .format = (tg_metrics_format)9 }),
                "tg_metrics_open: unknown format 9");
    tg_metrics *m = tg_metrics_open(NULL, NULL); /* memory only: any keys */
    CHECK_ERROR(tg_metrics_log(NULL, 1, &(tg_metric){ "a", 1 }), "tg_metrics_log: m is NULL");
    CHECK_ERROR(tg_metrics_log(m, 1, NULL), "tg_metrics_log: row is NULL");
    CHECK_ERROR(tg_metrics_log(m, 0, &(tg_metric){ "a", 1 }), "tg_metrics_log: n is 0 (a row needs at least one pair)");
    CHECK_ERROR((TG_METRICS_LOG(m, { NULL, 1 })), "tg_metrics_log: key 0 is NULL");
    CHECK_ERROR((TG_METRICS_LOG(m, { "a,b", 1 })), "tg_metrics_log: key \"a,b\" is not 1-63 letters, digits or _-./");
    CHECK_ERROR((TG_METRICS_LOG(m, { "a", 1 }, { "a", 2 })), "tg_metrics_log: key \"a\" given twice");
    CHECK(tg_metrics_rows(m) == 0);
    CHECK((TG_METRICS_LOG(m, { "a", 1 })) == TG_OK && TG_METRICS_LOG(m, { "b", 2 }) == TG_OK);
    double v[2];
    CHECK(tg_metrics_column(m, "b", v, 2) == 2 && isnan(v[0]) && v[1] == 2);
    CHECK_ERROR(tg_metrics_column(m, "c", v, 2), "tg_metrics_column: no key \"c\" in the log");
    CHECK_ERROR(tg_metrics_column(m, "a", NULL, 2), "tg_metrics_column: out is NULL or max (2) negative");
    tg_metrics_close(m);
    tg_metrics_close(NULL);
    CHECK_ERROR(tg_metrics_read(NULL), "tg_metrics_read: path is NULL");
    CHECK_ERROR_CONTAINS(tg_metrics_read(tmp("missing.csv")), "tg_metrics_read: cannot open '");
    FILE *f = fopen(tmp("bad.csv"), "w");
    fputs("a,b\n1,2\n1,x\n", f);
    fclose(f);
    CHECK_ERROR_CONTAINS(tg_metrics_read(tmp("bad.csv")), "bad.csv' line 3 is not a CSV row");
    f = fopen(tmp("bad.jsonl"), "w");
    fputs("{\"a\": 1}\n{\"a\": }\n", f);
    fclose(f);
    CHECK_ERROR_CONTAINS(tg_metrics_read(tmp("bad.jsonl")), "bad.jsonl' line 2 is not a JSON lines row");
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        fclose(full);
        m = tg_metrics_open("/dev/full", &(tg_metrics_opts){ .format = TG_METRICS_CSV });
        CHECK_ERROR_CONTAINS((TG_METRICS_LOG(m, { "a", 1 })), "tg_metrics_log: writing the log failed");
        CHECK(tg_metrics_rows(m) == 0);
        tg_metrics_close(m);
    }
}

/* ---------------------------------------------------------------- line plots */

TEST(line_plot_ticks_gaps_and_legend) {
    const char *path = tmp("p.svg");
    /* y in [0.23, 0.91]: a range of 0.68 rounds up to 1, a fifth of it is 0.2, so the
     * ticks are 0.2, 0.4, ..., 1.0; x 0..4 over 4/5 -> 1 step: 0, 1, ..., 4. */
    const double y1[5] = { 0.91, 0.5, NAN, 0.3, 0.23 }, y2[5] = { 0.8, 0.7, 0.6, INFINITY, 0.4 };
    tg_plot_series ss[3] = { { .label = "train <loss>", .n = 5, .y = y1 }, { .label = "test", .n = 5, .y = y2 },
                             { .label = "empty", .n = 0 } };
    CHECK(tg_plot_svg(path, 3, ss, &(tg_plot_opts){ .title = "loss & acc", .xlabel = "epoch", .ylabel = "loss" }) == TG_OK);
    char *s = read_all(path);
    CHECK(parses_as_svg(path));
    const char *yt[] = { ">0.2<", ">0.4<", ">0.6<", ">0.8<", ">1.0<" }, *xt[] = { ">0<", ">1<", ">2<", ">3<", ">4<" };
    for (int i = 0; i < 5; i++) CHECK(count(s, yt[i]) == 1 && count(s, xt[i]) == 1);
    CHECK(count(s, ">1.2<") == 0 && count(s, ">0.0<") == 0);
    CHECK(count(s, "<path ") == 3);
    CHECK(count(s, " M") == 4); /* each NaN/Inf gap starts a new stroke */
    CHECK(count(s, "<circle ") == 8); /* markers on the 8 finite points */
    CHECK(count(s, ">train &lt;loss&gt;<") == 1 && count(s, ">empty<") == 1 && count(s, ">loss &amp; acc<") == 1);
    free(s);
}

TEST(log_axis_learning_rate) {
    const char *path = tmp("lr.svg");
    double lr[100];
    for (int i = 0; i < 100; i++) lr[i] = 0.1 * pow(0.955, i); /* 0.1 down to about 0.001 */
    tg_plot_series s1 = { .label = "lr", .n = 100, .y = lr };
    CHECK(tg_plot_svg(path, 1, &s1, &(tg_plot_opts){ .log_y = true, .width = 300, .height = 200 }) == TG_OK);
    char *s = read_all(path);
    CHECK(parses_as_svg(path));
    CHECK(s && strstr(s, "width=\"300\" height=\"200\""));
    /* 0.1 * 0.955^99 = 0.00105: decades 1e-3 .. 1e-1. */
    CHECK(count(s, ">0.001<") == 1 && count(s, ">0.01<") == 1 && count(s, ">0.1<") == 1 && count(s, ">1<") == 0);
    CHECK(count(s, "<circle ") == 0); /* no markers past 50 points */
    free(s);
    /* One decade or less: 2 and 5 between the powers of ten. */
    double y[2] = { 0.15, 0.4 };
    tg_plot_series s2 = { .n = 2, .x = (double[]){ 10, 20 }, .y = y }; /* x ticks 10, 12, ..., 20 */
    CHECK(tg_plot_svg(path, 1, &s2, &(tg_plot_opts){ .log_y = true, .markers = -1 }) == TG_OK);
    s = read_all(path);
    CHECK(count(s, ">0.1<") == 1 && count(s, ">0.2<") == 1 && count(s, ">0.5<") == 1 && count(s, ">1<") == 1);
    CHECK(count(s, ">series 0<") == 1);
    free(s);
}

TEST(plot_with_no_points_and_errors) {
    const char *path = tmp("empty.svg");
    double nan2[2] = { NAN, NAN };
    tg_plot_series ss[2] = { { .n = 0 }, { .n = 2, .y = nan2 } };
    CHECK(tg_plot_svg(path, 2, ss, NULL) == TG_OK);
    CHECK(parses_as_svg(path));
    char *s = read_all(path);
    CHECK(count(s, ">0.0<") == 2 && count(s, ">1.0<") == 2 && count(s, "<circle ") == 0); /* x and y over [0, 1] */
    free(s);
    CHECK_ERROR(tg_plot_svg(NULL, 1, ss, NULL), "tg_plot_svg: path is NULL");
    CHECK_ERROR(tg_plot_svg(path, 1, NULL, NULL), "tg_plot_svg: series is NULL");
    CHECK_ERROR(tg_plot_svg(path, 0, ss, NULL), "tg_plot_svg: n_series is 0 (at least 1)");
    CHECK_ERROR(tg_plot_svg(path, 1, &(tg_plot_series){ .n = -1 }, NULL), "tg_plot_svg: series 0 has n = -1");
    CHECK_ERROR(tg_plot_svg(path, 1, &(tg_plot_series){ .n = 3 }, NULL), "tg_plot_svg: series 0 has 3 points and y NULL");
    CHECK_ERROR(tg_plot_svg(path, 1, ss, &(tg_plot_opts){ .width = 50 }),
                "tg_plot_svg: width and height must be 100-10000 pixels, got 50 x 0");
    CHECK_ERROR(tg_plot_svg_file(NULL, 1, ss, NULL), "tg_plot_svg_file: f is NULL");
    CHECK_ERROR_CONTAINS(tg_plot_svg("/nonexistent-dir/p.svg", 1, ss, NULL),
                         "tg_plot_svg: cannot open '/nonexistent-dir/p.svg' for writing: ");
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        CHECK_ERROR_CONTAINS(tg_plot_svg_file(full, 1, ss, NULL), "tg_plot_svg_file: writing 'the stream' failed");
        fclose(full);
    }
}

TEST(metrics_plot_of_columns) {
    tg_metrics *m = tg_metrics_open(NULL, NULL);
    for (int e = 1; e <= 4; e++)
        TG_METRICS_LOG(m, { "epoch", e }, { "train_loss", 1.0 / e }, { "test_loss", e == 2 ? NAN : 1.2 / e });
    const char *path = tmp("metrics.svg");
    CHECK(tg_metrics_plot(m, path, "epoch", 2, (const char *[]){ "train_loss", "test_loss" },
                          &(tg_plot_opts){ .title = "loss" }) == TG_OK);
    CHECK(parses_as_svg(path));
    char *s = read_all(path);
    CHECK(count(s, ">train_loss<") == 1 && count(s, ">test_loss<") == 1 && count(s, ">epoch<") == 1);
    CHECK(count(s, " M") == 3); /* test_loss has a gap at epoch 2 */
    free(s);
    CHECK_ERROR(tg_metrics_plot(m, path, "step", 1, (const char *[]){ "train_loss" }, NULL),
                "tg_metrics_plot: no key \"step\" in the log");
    CHECK_ERROR(tg_metrics_plot(m, path, NULL, 0, (const char *[]){ "train_loss" }, NULL),
                "tg_metrics_plot: n_keys is 0 (at least 1)");
    CHECK_ERROR(tg_metrics_plot(NULL, path, NULL, 1, (const char *[]){ "a" }, NULL), "tg_metrics_plot: m is NULL");
    tg_metrics_close(m);
}

/* ---------------------------------------------------------------- classification */

TEST(confusion_matrix_counts) {
    tg_device *dev = tg_test_device();
    tg_tensor *labels = tg_from_i32((int32_t[]){ 0, 0, 1, 2, 2, 2 }, TG_SHAPE(6), dev);
    tg_tensor *pred = tg_from_i64((int64_t[]){ 0, 1, 1, 2, 0, 2 }, TG_SHAPE(6), dev);
    tg_tensor *cm = tg_confusion_matrix(pred, labels, 3);
    CHECK(cm && tg_dtype_of(cm) == TG_I64 && tg_ndim(cm) == 2 && tg_size(cm, 0) == 3 && tg_size(cm, 1) == 3);
    int64_t want[9] = { 1, 1, 0, 0, 1, 0, 1, 0, 2 }, got[9] = { 0 };
    CHECK(cm && tg_copy_to_host(cm, got, sizeof got) == TG_OK);
    CHECK(memcmp(got, want, sizeof got) == 0);
    /* Scores: the argmax of each row is the prediction. */
    tg_tensor *scores = tg_from_f32((float[]){ 0.9f, 0.1f, 0, 0.2f, 0.7f, 0.1f, 0, 0.3f, 0.6f, 0.5f, 0.1f, 0, 0, 0, 1,
                                                0, 0.9f, 0 }, TG_SHAPE(6, 3), dev);
    cm = tg_confusion_matrix(scores, labels, 3);
    int64_t want2[9] = { 1, 1, 0, 0, 0, 1, 1, 1, 1 };
    CHECK(cm && tg_copy_to_host(cm, got, sizeof got) == TG_OK && memcmp(got, want2, sizeof got) == 0);
    tg_tensor *acc = tg_per_class_accuracy(tg_confusion_matrix(pred, labels, 4));
    float a[4];
    CHECK(acc && tg_copy_to_host(acc, a, sizeof a) == TG_OK);
    CHECK_NEAR(a[0], 0.5, 1e-7);
    CHECK_NEAR(a[1], 1.0, 1e-7);
    CHECK_NEAR(a[2], 2.0 / 3, 1e-7);
    CHECK(isnan(a[3])); /* no samples of class 3 */
}

TEST(confusion_errors) {
    tg_device *dev = tg_test_device();
    tg_tensor *labels = tg_from_i32((int32_t[]){ 0, 3 }, TG_SHAPE(2), dev);
    tg_tensor *pred = tg_from_i32((int32_t[]){ 0, 1 }, TG_SHAPE(2), dev);
    CHECK_ERROR(tg_confusion_matrix(pred, labels, 3), "tg_confusion_matrix: labels[1] is 3, outside [0, 3)");
    CHECK_ERROR(tg_confusion_matrix(labels, pred, 3), "tg_confusion_matrix: pred[1] is 3, outside [0, 3)");
    CHECK_ERROR(tg_confusion_matrix(NULL, labels, 3), "tg_confusion_matrix: pred is NULL");
    CHECK_ERROR(tg_confusion_matrix(pred, NULL, 3), "tg_confusion_matrix: labels is NULL");
    CHECK_ERROR(tg_confusion_matrix(pred, labels, 0), "tg_confusion_matrix: num_classes is 0 (must be 1-65536)");
    CHECK_ERROR(tg_confusion_matrix(pred, tg_ones(TG_F32, TG_SHAPE(2), dev), 3),
                "tg_confusion_matrix: labels must be i32 or i64, got f32");
    CHECK_ERROR(tg_confusion_matrix(tg_ones(TG_F32, TG_SHAPE(2, 4), dev), labels, 3),
                "tg_confusion_matrix: pred [2,4] does not fit labels [2] (class indices of the labels' shape, or "
                "scores with one more axis of num_classes = 3)");
    CHECK_ERROR(tg_per_class_accuracy(tg_ones(TG_F32, TG_SHAPE(2, 3), dev)),
                "tg_per_class_accuracy: counts must be a square (C, C) matrix");
}

TEST(confusion_heat_map) {
    tg_device *dev = tg_test_device();
    tg_tensor *labels = tg_from_i32((int32_t[]){ 0, 0, 1, 2, 2, 2 }, TG_SHAPE(6), dev);
    tg_tensor *pred = tg_from_i32((int32_t[]){ 0, 1, 1, 2, 0, 2 }, TG_SHAPE(6), dev);
    const char *path = tmp("cm.svg");
    const char *names[3] = { "cat", "dog & co", NULL };
    CHECK(tg_confusion_svg(path, tg_confusion_matrix(pred, labels, 3), &(tg_confusion_svg_opts){ .class_names = names })
          == TG_OK);
    CHECK(parses_as_svg(path));
    char *s = read_all(path);
    CHECK(count(s, ">accuracy 66.67% (4 of 6)<") == 1);
    CHECK(count(s, ">cat<") == 2 && count(s, ">dog &amp; co<") == 2 && count(s, ">2<") >= 2);
    CHECK(count(s, ">50.0%<") == 1 && count(s, ">100.0%<") == 1 && count(s, ">66.7%<") == 1);
    CHECK(count(s, "<rect ") == 1 + 9);
    CHECK(count(s, "fill=\"#ffffff\" stroke") == 4); /* the four zero cells */
    free(s);
    CHECK_ERROR(tg_confusion_svg(path, tg_ones(TG_F32, TG_SHAPE(3), dev), NULL),
                "tg_confusion_svg: counts must be a square (C, C) matrix");
    CHECK_ERROR(tg_confusion_svg(path, tg_full(TG_F32, TG_SHAPE(2, 2), -1, dev), NULL),
                "tg_confusion_svg: count [0][0] is -1 (counts are >= 0)");
    CHECK_ERROR(tg_confusion_svg(NULL, labels, NULL), "tg_confusion_svg: path is NULL");
    CHECK_ERROR_CONTAINS(tg_confusion_svg("/nonexistent-dir/c.svg", tg_eye(TG_F32, 2, dev), NULL),
                         "tg_confusion_svg: cannot open '/nonexistent-dir/c.svg' for writing: ");
}

/* ---------------------------------------------------------------- images */

TEST(rgb_filters) {
    tg_device *dev = tg_test_device();
    float w[2 * 3 * 2 * 2] = { 0 };
    w[0] = 1; /* filter 0: R at (0, 0) is its maximum, all else its minimum */
    for (int i = 12; i < 24; i++) w[i] = 5; /* filter 1: constant */
    const char *path = tmp("rgb.svg");
    CHECK(tg_filters_svg(path, tg_from_f32(w, TG_SHAPE(2, 3, 2, 2), dev), &(tg_image_grid_opts){ .title = "conv1" }) == TG_OK);
    CHECK(parses_as_svg(path));
    char *s = read_all(path);
    CHECK(count(s, "<rect ") == 2 + 8); /* two backgrounds, 2 images of 2x2 */
    CHECK(count(s, "fill=\"#ff0000\"") == 1 && count(s, "fill=\"#000000\"") == 3 && count(s, "fill=\"#808080\"") == 4);
    CHECK(count(s, "width=\"24\" height=\"24\"") == 8); /* 48 px / 2 */
    CHECK(count(s, ">conv1<") == 1);
    free(s);
}

TEST(grey_filters_and_feature_maps) {
    tg_device *dev = tg_test_device();
    /* One filter of 2 input channels, scaled together over [0, 6]; NaN left out. */
    float w[8] = { 0, 1, 2, 3, 4, 5, 6, NAN };
    const char *path = tmp("grey.svg");
    CHECK(tg_filters_svg(path, tg_from_f32(w, TG_SHAPE(1, 2, 2, 2), dev), NULL) == TG_OK);
    CHECK(parses_as_svg(path));
    char *s = read_all(path);
    CHECK(count(s, "<rect ") == 2 + 7);
    CHECK(count(s, "#000000") == 1 && count(s, "#2b2b2b") == 1 && count(s, "#ffffff") == 1); /* 255/6 -> 43 */
    free(s);
    /* Feature maps: each channel on its own scale; 3 channels on 2 columns. */
    double a[3 * 2 * 2] = { 0, 1, 2, 3, 10, 10, 10, 10, -1, -1, -1, 1 };
    float af[3 * 2 * 2];
    for (int i = 0; i < 12; i++) af[i] = (float)a[i];
    /* f64 where every device has it (the CPU), else the same values in f32. */
    tg_tensor *act = strcmp(tg_device_name(dev), "cpu") == 0 ? tg_from_f64(a, TG_SHAPE(1, 3, 2, 2), dev)
                                                             : tg_from_f32(af, TG_SHAPE(1, 3, 2, 2), dev);
    CHECK(tg_feature_maps_svg(path, act, &(tg_image_grid_opts){ .columns = 2, .cell = 5 })
          == TG_OK);
    CHECK(parses_as_svg(path));
    s = read_all(path);
    CHECK(count(s, "width=\"5\" height=\"5\"") == 12);
    CHECK(count(s, "#555555") == 1 && count(s, "#aaaaaa") == 1 && count(s, "#808080") == 4 && count(s, "#000000") == 4);
    CHECK(s && strstr(s, "width=\"44\" height=\"44\"")); /* margins 2 * 10, 2 images of 10 and a gap of 4 */
    free(s);
    CHECK_ERROR(tg_filters_svg(path, tg_ones(TG_F32, TG_SHAPE(2, 2, 2), dev), NULL),
                "tg_filters_svg: weight must be (O, I, kh, kw), got 3 axes");
    CHECK_ERROR(tg_filters_svg(path, tg_ones(TG_I32, TG_SHAPE(1, 1, 2, 2), dev), NULL),
                "tg_filters_svg: expected f32 or f64, got i32");
    CHECK_ERROR(tg_feature_maps_svg(path, tg_ones(TG_F32, TG_SHAPE(2, 3, 2, 2), dev), NULL),
                "tg_feature_maps_svg: activation must be (C, H, W) or (1, C, H, W)");
    CHECK_ERROR(tg_feature_maps_svg(NULL, tg_ones(TG_F32, TG_SHAPE(3, 2, 2), dev), NULL), "tg_feature_maps_svg: path is NULL");
    CHECK_ERROR(tg_feature_maps_svg(path, tg_ones(TG_F32, TG_SHAPE(3, 2, 2), dev), &(tg_image_grid_opts){ .cell = -1 }),
                "tg_feature_maps_svg: cell is -1 pixels (0-100)");
    CHECK_ERROR(tg_feature_maps_svg(path, NULL, NULL), "tg_feature_maps_svg: the tensor is NULL");
}

static void remove_tmpdir(void) {
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static bool ready(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tg_plots_XXXXXX");
    if (!mkdtemp(tmpdir)) return false;
    atexit(remove_tmpdir);
    return tg_test_device_ready();
}

TG_TEST_MAIN_WITH(ready, &tg_case_csv_log_text_flush_and_read_back, &tg_case_csv_append_keeps_rows_and_header,
                  &tg_case_jsonl_log_any_keys, &tg_case_metrics_errors, &tg_case_line_plot_ticks_gaps_and_legend,
                  &tg_case_log_axis_learning_rate, &tg_case_plot_with_no_points_and_errors,
                  &tg_case_metrics_plot_of_columns, &tg_case_confusion_matrix_counts, &tg_case_confusion_errors,
                  &tg_case_confusion_heat_map, &tg_case_rgb_filters, &tg_case_grey_filters_and_feature_maps)
