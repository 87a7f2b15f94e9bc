/* A long training loop keeps memory flat: 10,000 SGD steps of a small MLP, each step
 * one scope. Resident memory, live tensor objects and device bytes in use must not grow
 * between step 1,000 and step 10,000. */
#include <unistd.h>

#include "harness.h"

static long resident_kib(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = -1;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

TEST(training_loop_memory_is_flat) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(1);
    tg_tensor *w1 = tg_param(tg_mul_scalar(tg_randn(TG_F32, TG_SHAPE(64, 32), dev), 0.1));
    tg_tensor *b1 = tg_param(tg_zeros(TG_F32, TG_SHAPE(32), dev));
    tg_tensor *w2 = tg_param(tg_mul_scalar(tg_randn(TG_F32, TG_SHAPE(32, 10), dev), 0.1));
    tg_tensor *b2 = tg_param(tg_zeros(TG_F32, TG_SHAPE(10), dev));
    tg_tensor *params[4] = { w1, b1, w2, b2 };
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(16, 64), dev);
    tg_tensor *y = tg_cast(tg_mul_scalar(tg_rand(TG_F32, TG_SHAPE(16), dev), 10), TG_I32);
    long rss_at_1000 = 0;
    int64_t live_at_1000 = 0;
    tg_memory_stats mem_at_1000 = { 0 }, mem_end;
    double first_loss = 0, last_loss = 0;
    for (int step = 1; step <= 10000; step++) {
        tg_scope_begin();
        tg_tensor *h = tg_relu(tg_add(tg_matmul(x, w1), b1));
        tg_tensor *loss = tg_cross_entropy(tg_add(tg_matmul(h, w2), b2), y);
        for (int p = 0; p < 4; p++) tg_zero_grad(params[p]);
        CHECK(tg_backward(loss) == TG_OK);
        bool prev = tg_set_grad_enabled(false);
        for (int p = 0; p < 4; p++) tg_axpy_(params[p], -0.05, tg_grad(params[p]));
        tg_set_grad_enabled(prev);
        if (step == 1) first_loss = tg_item(loss);
        last_loss = tg_item(loss);
        tg_scope_end();
        if (step == 1000) {
            rss_at_1000 = resident_kib();
            live_at_1000 = tg_live_tensors();
            tg_device_memory_stats(dev, &mem_at_1000);
        }
    }
    long rss_end = resident_kib();
    tg_device_memory_stats(dev, &mem_end);
    printf("  rss at step 1000: %ld KiB, at 10000: %ld KiB; live tensors %lld -> %lld; loss %.3f -> %.4f\n",
           rss_at_1000, rss_end, (long long)live_at_1000, (long long)tg_live_tensors(), first_loss, last_loss);
    CHECK(tg_live_tensors() == live_at_1000);
    CHECK(mem_end.bytes_in_use == mem_at_1000.bytes_in_use);
    CHECK(mem_end.allocations == mem_at_1000.allocations); /* steady state: no new system allocations */
    CHECK(rss_end - rss_at_1000 < 512);
    CHECK(last_loss < first_loss * 0.1); /* it did train: memorised 16 samples */
}

TG_TEST_MAIN(&tg_case_training_loop_memory_is_flat)
