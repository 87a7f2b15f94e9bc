/* A steady-state training step calls no malloc: this program is linked with
 * -Wl,--wrap for the C allocation functions, so every allocation the library makes is
 * counted, and 1,000 SGD steps of an MLP after warm-up must make none. */
#include <stdatomic.h>

#include "harness.h"

static _Atomic long g_allocs;
static bool g_counting;

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);

void *__wrap_malloc(size_t n) { if (g_counting) g_allocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { if (g_counting) g_allocs++; return __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { if (g_counting) g_allocs++; return __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { if (g_counting) g_allocs++; return __real_aligned_alloc(a, n); }

static void step(tg_tensor **w, tg_tensor **b, tg_tensor *x, tg_tensor *y) {
    tg_scope_begin();
    tg_tensor *h = tg_relu(tg_add(tg_matmul(x, w[0]), b[0]));
    tg_tensor *loss = tg_cross_entropy(tg_add(tg_matmul(h, w[1]), b[1]), y);
    for (int i = 0; i < 2; i++) tg_zero_grad(w[i]), tg_zero_grad(b[i]);
    tg_backward(loss);
    bool prev = tg_set_grad_enabled(false);
    for (int i = 0; i < 2; i++) tg_axpy_(w[i], -0.01, tg_grad(w[i])), tg_axpy_(b[i], -0.01, tg_grad(b[i]));
    tg_set_grad_enabled(prev);
    tg_scope_end();
}

TEST(steady_state_step_allocates_nothing) {
    tg_device *dev = tg_test_device();
    int sizes[][3] = { { 16, 32, 4 }, { 784, 256, 10 } }, batch[] = { 8, 64 };
    for (int c = 0; c < 2; c++) {
        tg_tensor *w[2], *b[2];
        for (int i = 0; i < 2; i++) {
            w[i] = tg_param(tg_mul_scalar(tg_randn(TG_F32, TG_SHAPE(sizes[c][i], sizes[c][i + 1]), dev), 0.1));
            b[i] = tg_param(tg_zeros(TG_F32, TG_SHAPE(sizes[c][i + 1]), dev));
        }
        tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(batch[c], sizes[c][0]), dev);
        tg_tensor *y = tg_cast(tg_mul_scalar(tg_rand(TG_F32, TG_SHAPE(batch[c]), dev), sizes[c][2] - 0.5), TG_I32);
        for (int i = 0; i < 50; i++) step(w, b, x, y); /* warm-up: caches fill */
        g_allocs = 0;
        g_counting = true;
        for (int i = 0; i < (c ? 100 : 1000); i++) step(w, b, x, y);
        g_counting = false;
        printf("  MLP %d-%d-%d batch %d: %ld allocations in the steady state\n", sizes[c][0], sizes[c][1],
               sizes[c][2], batch[c], (long)g_allocs);
        CHECK(g_allocs == 0);
    }
}

/* The control: the wrapper does see the library's allocations. */
TEST(counter_sees_library_allocations) {
    g_allocs = 0;
    g_counting = true;
    tg_zeros(TG_F32, TG_SHAPE(12345, 7), tg_test_device()); /* a size the cache has never held */
    g_counting = false;
    CHECK(g_allocs > 0);
}

TG_TEST_MAIN(&tg_case_counter_sees_library_allocations, &tg_case_steady_state_step_allocates_nothing)
