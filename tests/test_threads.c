/* The threading contract of tapegrad.h: shared read-only tensors viewed from several
 * threads, per-thread graphs and backward passes, memory statistics under threads,
 * root scopes freed at thread exit, tensors handed between threads. Run in the unit
 * suite and, in the thread suite, under ThreadSanitizer. */
#include <pthread.h>

#include "harness.h"

#define NTHREADS 8

static tg_tensor *g_weight; /* shared, read in grad-off mode */
static double g_weight_sum;

static void *view_weight(void *arg) {
    int *bad = arg;
    tg_device *dev = tg_device_of(g_weight);
    tg_set_grad_enabled(false);
    tg_tensor *x = tg_take(tg_ones(TG_F32, TG_SHAPE(4, 64), dev));
    for (int it = 0; it < 200; it++) {
        tg_scope_begin();
        /* x @ W^T, as every Linear forward: a view of the shared weight each time */
        tg_tensor *y = tg_matmul(x, tg_transpose(g_weight, 0, 1));
        double s = tg_item(tg_sum(y, TG_ALL, false));
        if (!(fabs(s - 4 * g_weight_sum) <= 1e-2 * fabs(g_weight_sum) + 1e-3)) (*bad)++;
        tg_scope_end();
    }
    tg_release(x);
    return NULL;
}

static void run_threads(void *(*fn)(void *), int *bad) {
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, fn, &bad[i]);
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
}

TEST(shared_weight_viewed_from_threads) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(3);
    int64_t live = tg_live_tensors();
    g_weight = tg_take(tg_randn(TG_F32, TG_SHAPE(64, 64), dev));
    tg_scope_begin();
    double *w = tg_test_values(g_weight);
    g_weight_sum = 0;
    for (int i = 0; i < 64 * 64; i++) g_weight_sum += w[i];
    int bad[NTHREADS] = { 0 };
    run_threads(view_weight, bad);
    for (int i = 0; i < NTHREADS; i++) CHECK(bad[i] == 0);
    double *after = tg_test_values(g_weight); /* still alive and unchanged */
    for (int i = 0; i < 64 * 64; i++) CHECK(after[i] == w[i]);
    free(w), free(after);
    tg_scope_end();
    tg_release(g_weight);
    CHECK(tg_live_tensors() == live);
}

/* Each thread trains its own parameter on its own graph: loss = sum((w - t)^2) for
 * 50 SGD steps of lr 0.1 gives w = t + (w0 - t) * 0.8^50. */
static void *train_own(void *arg) {
    int *bad = arg;
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_take(tg_param(tg_full(TG_F64, TG_SHAPE(16), 1.0, dev)));
    tg_tensor *t = tg_take(tg_full(TG_F64, TG_SHAPE(16), 3.0, dev));
    for (int step = 0; step < 50; step++) {
        tg_scope_begin();
        tg_tensor *loss = tg_sum(tg_square(tg_sub(w, t)), TG_ALL, false);
        if (tg_backward(loss) != TG_OK) (*bad)++;
        bool prev = tg_set_grad_enabled(false);
        if (tg_axpy_(w, -0.1, tg_grad(w)) != TG_OK) (*bad)++;
        tg_set_grad_enabled(prev);
        tg_zero_grad(w);
        tg_scope_end();
    }
    double expect = 3.0 + (1.0 - 3.0) * pow(0.8, 50);
    double *v = tg_test_values(w);
    for (int i = 0; i < 16; i++)
        if (!(fabs(v[i] - expect) <= 1e-12)) (*bad)++;
    free(v);
    tg_release(w);
    tg_release(t);
    return NULL;
}

TEST(backward_passes_on_threads) {
    int bad[NTHREADS] = { 0 };
    run_threads(train_own, bad);
    for (int i = 0; i < NTHREADS; i++) CHECK(bad[i] == 0);
}

static void *alloc_free(void *arg) {
    (void)arg;
    tg_device *dev = tg_test_device();
    for (int it = 0; it < 100; it++) {
        tg_scope_begin();
        for (int k = 1; k < 20; k++) tg_zeros(TG_F32, TG_SHAPE(k * 37), dev);
        tg_scope_end();
    }
    return NULL;
}

TEST(memory_statistics_under_threads) {
    tg_device *dev = tg_test_device();
    tg_memory_stats before, after;
    CHECK(tg_device_memory_stats(dev, &before) == TG_OK);
    int unused[NTHREADS];
    run_threads(alloc_free, unused);
    CHECK(tg_device_memory_stats(dev, &after) == TG_OK);
    CHECK(after.bytes_in_use == before.bytes_in_use);
    CHECK(after.peak_in_use >= after.bytes_in_use);
    CHECK(after.peak_in_use < ((size_t)1 << 40));
}

/* A tensor left in a thread's root scope is freed when the thread exits. */
static void *leave_in_root(void *arg) {
    (void)arg;
    tg_zeros(TG_F32, TG_SHAPE(8), tg_test_device());
    return NULL;
}

TEST(thread_exit_frees_its_root_scope) {
    int64_t live = tg_live_tensors();
    int unused[NTHREADS];
    run_threads(leave_in_root, unused);
    CHECK(tg_live_tensors() == live);
}

/* A batch made on a worker thread and handed over with tg_take. */
static void *make_batch(void *arg) {
    tg_tensor **out = arg;
    tg_scope_begin();
    *out = tg_take(tg_arange(TG_F32, 0, 10, 1, tg_test_device()));
    tg_scope_end();
    return NULL;
}

TEST(tensor_handed_between_threads) {
    int64_t live = tg_live_tensors();
    tg_tensor *batch = NULL;
    pthread_t th;
    pthread_create(&th, NULL, make_batch, &batch);
    pthread_join(th, NULL);
    CHECK(batch != NULL);
    CHECK(tg_live_tensors() == live + 1);
    tg_scope_begin();
    CHECK_NEAR(tg_item(tg_sum(batch, TG_ALL, false)), 45, 0);
    tg_scope_end();
    tg_release(batch);
    CHECK(tg_live_tensors() == live);
}

/* Seeding while other threads draw: a data race before the generator was atomic. */
static void *draw(void *arg) {
    (void)arg;
    for (int it = 0; it < 200; it++) {
        tg_scope_begin();
        tg_rand(TG_F32, TG_SHAPE(16), tg_test_device());
        tg_scope_end();
    }
    return NULL;
}

TEST(seed_while_drawing) {
    int unused[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, draw, &unused[i]);
    for (int i = 0; i < 200; i++) tg_manual_seed((uint64_t)i);
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    tg_manual_seed(7);
    double a = tg_item(tg_sum(tg_rand(TG_F64, TG_SHAPE(4), tg_test_device()), TG_ALL, false));
    tg_manual_seed(7);
    double b = tg_item(tg_sum(tg_rand(TG_F64, TG_SHAPE(4), tg_test_device()), TG_ALL, false));
    CHECK(a == b);
}

TG_TEST_MAIN(&tg_case_shared_weight_viewed_from_threads, &tg_case_backward_passes_on_threads,
             &tg_case_memory_statistics_under_threads, &tg_case_thread_exit_frees_its_root_scope,
             &tg_case_tensor_handed_between_threads, &tg_case_seed_while_drawing)
