/* The zoo against torchvision itself: tests/torch/zoo_reference.py ($TG_TORCH_ZOO) writes
 * resnet18, vgg11_bn, alexnet and googlenet with random weights; each must have exactly
 * our state_dict names, order and shapes, load strictly into our model, and give the same
 * eval logits (relative 1e-4). Skipped (exit 77) without python3-torchvision. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "nn_check.h"

static char g_dir[] = "/tmp/tg_zoo_torch_XXXXXX";
static int g_status = -1; /* of the script: 0 ran, 77 no torch */

/* Runs the script once into g_dir. */
static int run_script(void) {
    if (g_status >= 0) return g_status;
    const char *script = getenv("TG_TORCH_ZOO"), *py = getenv("TG_PYTHON");
    if (!script || !mkdtemp(g_dir)) return g_status = 77;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' >/dev/null 2>&1", py ? py : "/usr/bin/python3", script, g_dir);
    int rc = system(cmd);
    g_status = rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
    if (g_status == 127 || g_status == 126) g_status = 77; /* no python3 */
    return g_status;
}

/* The whole file path into a new buffer of its size (*n bytes), or NULL. */
static void *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) free(buf), buf = NULL;
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* "64,3,7,7" (or "-" for 0-d) into a shape. */
static tg_shape parse_shape(const char *s) {
    tg_shape sh = { 0 };
    for (const char *p = s; *s != '-' && *p && sh.ndim < TG_MAX_DIMS; p++) {
        sh.dims[sh.ndim++] = strtoll(p, (char **)&p, 10);
        if (*p != ',') break;
    }
    return sh;
}

/* torchvision's state dict in dir as ours; its names must be m's, in order, and the
 * shapes m's. */
#define MAX_ENTRIES 512
static tg_state_dict *read_state(int *tg_failed_, const char *dir, tg_module *m, tg_device *dev) {
    char path[512], name[256], dt[8], dims[128];
    snprintf(path, sizeof path, "%s/names.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f);
    tg_state_dict *sd = tg_state_dict_new();
    static char names[MAX_ENTRIES][256];
    const char *list[MAX_ENTRIES];
    int i = 0;
    while (f && sd && i < MAX_ENTRIES && fscanf(f, "%255s %7s %127s", name, dt, dims) == 3) {
        tg_shape sh = parse_shape(dims);
        tg_tensor *mine = tg_module_get_param(m, name);
        if (!mine) tg_clear_error(), mine = tg_module_get_buffer(m, name);
        if (!has_shape(mine, sh)) FAIL_("%s: %s is [%s] in torchvision, not so in ours", dir, name, dims);
        tg_clear_error();
        size_t n;
        snprintf(path, sizeof path, "%s/%d.bin", dir, i);
        void *data = slurp(path, &n);
        tg_tensor *t = data ? tg_from_data(data, strcmp(dt, "i64") ? TG_F32 : TG_I64, sh, dev) : NULL;
        free(data);
        if (!t || tg_state_dict_set(sd, name, t) != TG_OK) FAIL_("%s: cannot read %s (%s)", dir, name, tg_last_error());
        snprintf(names[i], sizeof names[i], "%s", name);
        list[i] = names[i];
        i++;
    }
    CHECK(names_are(m, i, list));
    if (f) fclose(f);
    return sd;
}

static void compare(int *tg_failed_, const char *model, tg_module *m) {
    tg_device *dev = tg_test_device();
    CHECK(m);
    if (!m) return;
    char dir[256], path[512];
    snprintf(dir, sizeof dir, "%s/%s", g_dir, model);
    tg_state_dict *sd = read_state(tg_failed_, dir, m, dev);
    if (tg_module_load_state_dict(m, sd, NULL) != TG_OK) FAIL_("%s: %s", model, tg_last_error());
    tg_state_dict_free(sd);
    int64_t s[4] = { 0 };
    snprintf(path, sizeof path, "%s/input.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f && fscanf(f, "%ld %ld %ld %ld", &s[0], &s[1], &s[2], &s[3]) == 4);
    if (f) fclose(f);
    size_t n;
    snprintf(path, sizeof path, "%s/input.bin", dir);
    float *x = slurp(path, &n);
    snprintf(path, sizeof path, "%s/logits.bin", dir);
    float *want = slurp(path, &n);
    tg_module_eval(m);
    tg_tensor *y = x ? tg_module_forward(m, tg_from_f32(x, TG_SHAPE(s[0], s[1], s[2], s[3]), dev)) : NULL;
    CHECK(has_shape(y, TG_SHAPE(s[0], 10)) && want && n == (size_t)s[0] * 10 * sizeof(float));
    double scale = 0;
    for (int64_t i = 0; want && i < s[0] * 10; i++) scale = fmax(scale, fabs(want[i]));
    double diff = want ? max_diff(y, tg_from_f32(want, TG_SHAPE(s[0], 10), dev)) : INFINITY;
    if (!(diff <= 1e-4 * scale)) FAIL_("%s: logits differ by %g (largest %g)", model, diff, scale);
    free(x), free(want);
    tg_module_free(m);
}

#define NEED_TORCH()                                                   \
    do {                                                               \
        NEED_KERNELS(TG_F32);                                          \
        int rc_ = run_script();                                        \
        if (rc_ == 77) SKIP("python3 with torchvision is not there");  \
        if (rc_ != 0) FAIL_("tests/torch/zoo_reference.py exited %d", rc_); \
        if (rc_ != 0) return;                                          \
    } while (0)

TEST(resnet18) {
    NEED_TORCH();
    compare(tg_failed_, "resnet18", tg_resnet_new(18, 10, &(tg_model_opts){ .layer_init = true }, tg_test_device()));
}
TEST(vgg11_bn) {
    NEED_TORCH();
    compare(tg_failed_, "vgg11_bn",
            tg_vgg_new(TG_VGG11, 10, &(tg_model_opts){ .batch_norm = true, .layer_init = true }, tg_test_device()));
}
TEST(alexnet) {
    NEED_TORCH();
    compare(tg_failed_, "alexnet", tg_alexnet_new(10, NULL, tg_test_device()));
}
TEST(googlenet) {
    NEED_TORCH();
    compare(tg_failed_, "googlenet", tg_googlenet_new(10, &(tg_model_opts){ .layer_init = true }, tg_test_device()));
}

/* Removes what the script wrote (the temp dir is this test's own). */
TEST(cleanup) {
    if (g_status < 0 || g_dir[strlen(g_dir) - 1] == 'X') return;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0);
}

TG_TEST_MAIN(&tg_case_resnet18, &tg_case_vgg11_bn, &tg_case_alexnet, &tg_case_googlenet, &tg_case_cleanup)
