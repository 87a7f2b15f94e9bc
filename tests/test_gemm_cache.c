/* The CPU GEMM's packed-weight cache, through tg_matmul: a parameter multiplied again
 * while unchanged reuses its packed panels; any in-place change (an optimizer step, a
 * copy, a flattened buffer's update) must be seen by the next product. Every result is
 * compared with a host loop in f64. */
#include <pthread.h>

#include "harness.h"
#include "lib/cpu/gemm/gemm.h"

/* max |x @ w - ref| / max(1, |ref|) over the product, with ref computed on the host from the values. */
static double product_error(tg_tensor *x, tg_tensor *w, tg_tensor *y) {
    int64_t M = tg_size(x, 0), K = tg_size(x, 1), N = tg_size(w, 1);
    double *xv = tg_test_values(x), *wv = tg_test_values(w), *yv = tg_test_values(y), err = 0;
    for (int64_t i = 0; xv && wv && yv && i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += xv[i * K + k] * wv[k * N + j];
            err = fmax(err, fabs(s - yv[i * N + j]) / fmax(1, fabs(s)));
        }
    if (!xv || !wv || !yv) err = INFINITY;
    free(xv), free(wv), free(yv);
    return err;
}

static void check_reuse(int *tg_failed_, tg_dtype dt, bool transposed, double tol) {
    tg_device *dev = tg_device_get("cpu");
    tg_manual_seed(5);
    /* B of 300 x 400 (480 KB in f32) is past the unpacked small-problem path */
    tg_tensor *w = tg_param(tg_randn(dt, transposed ? TG_SHAPE(400, 300) : TG_SHAPE(300, 400), dev));
    tg_tensor *b = transposed ? tg_transpose(w, 0, 1) : w;
    tg_tensor *x = tg_randn(dt, TG_SHAPE(37, 300), dev);
    tg_cpu_gemm_cache_clear();
    uint64_t hits = tg_cpu_gemm_cache_hits();
    bool prev = tg_set_grad_enabled(false);
    for (int round = 0; round < 4; round++) {
        tg_tensor *y = tg_matmul(x, b);
        CHECK(product_error(x, b, y) <= tol);
    }
    CHECK(tg_cpu_gemm_cache_hits() >= hits + 2); /* the third and fourth products reused the panels */
    CHECK(tg_mul_(w, tg_full(dt, TG_SHAPE(1), -0.5, dev)) == TG_OK); /* in place: a new version */
    CHECK(product_error(x, b, tg_matmul(x, b)) <= tol);
    CHECK(tg_copy_(w, tg_randn(dt, tg_shape_of(w), dev)) == TG_OK);
    CHECK(product_error(x, b, tg_matmul(x, b)) <= tol);
    CHECK(product_error(x, b, tg_matmul(x, b)) <= tol);
    tg_set_grad_enabled(prev);
}

TEST(f32_weight_reused_then_changed) { check_reuse(tg_failed_, TG_F32, false, 1e-3); }
TEST(f32_transposed_weight_reused_then_changed) { check_reuse(tg_failed_, TG_F32, true, 1e-3); }
TEST(f64_weight_reused_then_changed) { check_reuse(tg_failed_, TG_F64, false, 1e-11); }

/* Parameters flattened into one buffer and updated by an optimizer: each step's
 * forward must use the new values, though the storage and the view stay the same. */
TEST(optimizer_steps_on_flattened_parameters) {
    tg_device *dev = tg_device_get("cpu");
    tg_manual_seed(9);
    tg_tensor *w = tg_param(tg_randn(TG_F64, TG_SHAPE(256, 512), dev));
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(16, 256), dev);
    tg_optim *opt = tg_sgd_new(1, &w, &(tg_sgd_opts){ .lr = TG_SOME(0.1) });
    CHECK(opt != NULL);
    for (int step = 0; opt && step < 4; step++) {
        tg_scope_begin();
        tg_optim_zero_grad(opt);
        tg_tensor *y = tg_matmul(x, w);
        CHECK(product_error(x, w, y) <= 1e-11);
        CHECK(product_error(x, w, tg_matmul(x, w)) <= 1e-11);
        CHECK(tg_backward(tg_sum(tg_square(y), TG_ALL, false)) == TG_OK);
        CHECK(tg_optim_step(opt) == TG_OK);
        tg_scope_end();
    }
    tg_optim_free(opt);
}

/* Two threads multiplying by the same weight at once share one entry safely. */
typedef struct {
    tg_tensor *x, *w;
    double err;
} job;

static void *worker(void *arg) {
    job *j = arg;
    j->err = 0;
    for (int r = 0; r < 20; r++) {
        tg_scope_begin();
        j->err = fmax(j->err, product_error(j->x, j->w, tg_matmul(j->x, j->w)));
        tg_scope_end();
    }
    return NULL;
}

TEST(threads_share_an_entry) {
    tg_device *dev = tg_device_get("cpu");
    tg_manual_seed(3);
    tg_tensor *w = tg_param(tg_randn(TG_F32, TG_SHAPE(300, 400), dev));
    job jobs[2] = { { tg_randn(TG_F32, TG_SHAPE(20, 300), dev), w, 0 }, { tg_randn(TG_F32, TG_SHAPE(33, 300), dev), w, 0 } };
    bool prev = tg_set_grad_enabled(false);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, worker, &jobs[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) CHECK(jobs[i].err <= 1e-3);
    tg_set_grad_enabled(prev);
}

TG_TEST_MAIN(&tg_case_f32_weight_reused_then_changed, &tg_case_f32_transposed_weight_reused_then_changed,
             &tg_case_f64_weight_reused_then_changed, &tg_case_optimizer_steps_on_flattened_parameters,
             &tg_case_threads_share_an_entry)
