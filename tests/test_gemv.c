/* Products with one to four rows against a large B (a Linear layer at batch 1), which the
 * CPU streams once (lib/cpu/gemv.c) instead of packing it: B = W^T (dot products over
 * W's rows) and B row-major (sums of its rows, as dx = dy W in the backward). Every
 * shape around the path's limits and strided or transposed views, compared with host
 * loops in f64, under each kernel set this CPU runs (AVX-512's dot products are their
 * own code; the others share the plain-C lanes); and the same bits on one thread as on
 * two. */
#include "harness.h"
#include "lib/cpu/gemm/gemm_kernels.h"

/* max over the product of |y - ref| / sum_k |x_ik w_jk|, the bound that f32 rounding
 * of a K-term dot product scales with; ref and the bound from the values on the host. */
static double rel_error(tg_tensor *x, tg_tensor *wt, tg_tensor *y) {
    int64_t M = tg_size(x, 0), K = tg_size(x, 1), N = tg_size(wt, 1);
    double *xv = tg_test_values(x), *wv = tg_test_values(wt), *yv = tg_test_values(y), err = 0;
    for (int64_t i = 0; xv && wv && yv && i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
                s += xv[i * K + k] * wv[k * N + j];
                mag += fabs(xv[i * K + k] * wv[k * N + j]);
            }
            err = fmax(err, fabs(s - yv[i * N + j]) / fmax(mag, 1e-30));
        }
    if (!xv || !wv || !yv) err = INFINITY;
    free(xv), free(wv), free(yv);
    return err;
}

/* Row counts 1-5 (5 takes the GEMM), K at and around the vector width and its limit,
 * N below and above the size where the path starts; B = W^T of an (N, K) weight or a
 * row-major (K, N) one. The operands are views of one draw per K (random numbers are
 * the slow part of this test). */
static void check_shapes(int *tg_failed_, bool transposed) {
    tg_device *dev = tg_device_get("cpu");
    const int64_t Ks[] = { 100, 128, 129, 1000, 2051 }, Ns[] = { 1, 33, 65, 513, 1000 }, maxN = 1000;
    for (size_t a = 0; a < sizeof Ks / sizeof *Ks; a++) {
        tg_scope_begin();
        int64_t K = Ks[a];
        tg_tensor *x5 = tg_randn(TG_F32, TG_SHAPE(5, K), dev);
        tg_tensor *w = transposed ? tg_randn(TG_F32, TG_SHAPE(maxN, K), dev) : tg_randn(TG_F32, TG_SHAPE(K, maxN), dev);
        for (int64_t M = 1; M <= 5; M++)
            for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++) {
                int64_t N = Ns[b];
                tg_tensor *x = tg_slice(x5, 0, 0, M, 1);
                tg_tensor *B = transposed ? tg_transpose(tg_slice(w, 0, 0, N, 1), 0, 1) : tg_slice(w, 1, 0, N, 1);
                double e = rel_error(x, B, tg_matmul(x, B));
                if (!(e <= 1e-5))
                    printf("  M %lld K %lld N %lld%s: error %g\n", (long long)M, (long long)K, (long long)N,
                           transposed ? " transposed" : "", e);
                CHECK(e <= 1e-5);
            }
        tg_scope_end();
    }
}

/* Runs check under each kernel set this CPU has, then restores the best. */
static void for_each_kernel_set(int *tg_failed_, void (*check)(int *, bool), bool transposed) {
    const char *sets[] = { "avx512", "avx2", "c" };
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (tg_gemm_select(sets[i]) == 0) check(tg_failed_, transposed);
    CHECK(tg_gemm_select("") == 0);
}

TEST(transposed_weight_against_host_loops) {
    tg_manual_seed(1);
    for_each_kernel_set(tg_failed_, check_shapes, true);
}

TEST(row_major_weight_against_host_loops) {
    tg_manual_seed(4);
    for_each_kernel_set(tg_failed_, check_shapes, false);
}

/* Rows of x taken from a wider buffer (row stride past K), every other row, and x
 * transposed (its rows not contiguous), against both layouts of B. */
static void check_strided(int *tg_failed_, bool transposed) {
    tg_device *dev = tg_device_get("cpu");
    int64_t K = 700, N = 300;
    tg_tensor *wt = transposed ? tg_transpose(tg_randn(TG_F32, TG_SHAPE(N, K), dev), 0, 1)
                               : tg_randn(TG_F32, TG_SHAPE(K, N), dev);
    tg_tensor *wide = tg_randn(TG_F32, TG_SHAPE(6, K + 37), dev);
    tg_tensor *x1 = tg_slice(wide, 1, 5, K + 5, 1);                  /* rows 737 apart */
    tg_tensor *x2 = tg_slice(tg_slice(wide, 1, 0, K, 1), 0, 0, 6, 2); /* every other row */
    tg_tensor *x3 = tg_transpose(tg_randn(TG_F32, TG_SHAPE(K, 3), dev), 0, 1);
    CHECK(rel_error(x1, wt, tg_matmul(x1, wt)) <= 1e-5);
    CHECK(rel_error(x2, wt, tg_matmul(x2, wt)) <= 1e-5);
    CHECK(rel_error(x3, wt, tg_matmul(x3, wt)) <= 1e-5);
}

TEST(strided_and_transposed_rows) {
    tg_manual_seed(2);
    for_each_kernel_set(tg_failed_, check_strided, true);
    for_each_kernel_set(tg_failed_, check_strided, false);
}

/* Each output is one thread's sum in a fixed order. */
static void check_threads(int *tg_failed_, bool transposed) {
    tg_device *dev = tg_device_get("cpu");
    tg_tensor *wt = transposed ? tg_transpose(tg_randn(TG_F32, TG_SHAPE(2000, 1500), dev), 0, 1)
                               : tg_randn(TG_F32, TG_SHAPE(1500, 2000), dev);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(3, 1500), dev);
    int threads = tg_get_num_threads();
    tg_set_num_threads(1);
    tg_tensor *y1 = tg_matmul(x, wt);
    tg_set_num_threads(2);
    tg_tensor *y2 = tg_matmul(x, wt);
    tg_set_num_threads(threads);
    double *a = tg_test_values(y1), *b = tg_test_values(y2);
    CHECK(a && b && memcmp(a, b, 3 * 2000 * sizeof *a) == 0);
    free(a), free(b);
    CHECK(rel_error(x, wt, y2) <= 1e-5);
}

TEST(same_bits_on_one_and_two_threads) {
    tg_manual_seed(3);
    check_threads(tg_failed_, true);
    check_threads(tg_failed_, false);
}

TG_TEST_MAIN(&tg_case_transposed_weight_against_host_loops, &tg_case_row_major_weight_against_host_loops,
             &tg_case_strided_and_transposed_rows,
             &tg_case_same_bits_on_one_and_two_threads)
