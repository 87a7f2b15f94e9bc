/* Tensors: creation, views and strides, printing, scopes and lifetime, the Philox
 * generator. Expected values are written out by hand or computed here independently. */
#include "harness.h"

TEST(creation_and_readback) {
    tg_device *dev = tg_test_device();
    float data[6] = { 1, 2, 3, 4, 5, 6 };
    tg_tensor *t = tg_from_f32(data, TG_SHAPE(2, 3), dev);
    CHECK(tg_ndim(t) == 2 && tg_size(t, 0) == 2 && tg_size(t, -1) == 3 && tg_numel(t) == 6);
    CHECK(tg_dtype_of(t) == TG_F32 && tg_is_contiguous(t));
    float back[6];
    CHECK(tg_copy_to_host(t, back, sizeof back) == TG_OK);
    CHECK(memcmp(back, data, sizeof data) == 0);
    CHECK_NEAR(tg_item(tg_full(TG_F64, TG_SCALAR_SHAPE, 2.5, dev)), 2.5, 0);
    CHECK_NEAR(tg_item(tg_sum(tg_ones(TG_I32, TG_SHAPE(4, 5), dev), TG_ALL, false)), 20, 0);
    double *z = tg_test_values(tg_zeros(TG_U8, TG_SHAPE(3), dev));
    CHECK(z && z[0] == 0 && z[2] == 0);
    free(z);
}

TEST(ranges_and_eye) {
    tg_device *dev = tg_test_device();
    double *a = tg_test_values(tg_arange(TG_F32, 1, 2, 0.25, dev));
    CHECK(a && a[0] == 1 && a[1] == 1.25 && a[3] == 1.75);
    CHECK(tg_numel(tg_arange(TG_I32, 0, 10, 3, dev)) == 4);
    CHECK(tg_numel(tg_arange(TG_F32, 5, 0, -1, dev)) == 5);
    double *l = tg_test_values(tg_linspace(TG_F64, -1, 1, 5, dev));
    CHECK(l && l[0] == -1 && l[2] == 0 && l[4] == 1);
    double *e = tg_test_values(tg_eye(TG_F32, 3, dev));
    for (int i = 0; i < 9; i++) CHECK(e[i] == (i % 4 == 0 ? 1 : 0));
    free(a), free(l), free(e);
}

TEST(views_share_storage) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_arange(TG_F32, 0, 24, 1, dev);
    tg_tensor *v = tg_reshape(x, TG_SHAPE(2, 3, 4));
    tg_tensor *p = tg_permute(v, TG_AXES(2, 0, 1));
    CHECK(tg_size(p, 0) == 4 && tg_stride(p, 0) == 1 && tg_stride(p, 1) == 12 && !tg_is_contiguous(p));
    tg_tensor *s = tg_slice(v, 2, 1, INT64_MAX, 2); /* [:, :, 1::2] */
    CHECK(tg_size(s, 2) == 2 && tg_stride(s, 2) == 2);
    double *sv = tg_test_values(s);
    CHECK(sv[0] == 1 && sv[1] == 3 && sv[2] == 5 && sv[11] == 23);
    tg_tensor *f = tg_flip(x, TG_AXES(0));
    CHECK(tg_stride(f, 0) == -1);
    CHECK_NEAR(tg_item(tg_slice(f, 0, 0, 1, 1)), 23, 0);
    tg_tensor *e = tg_expand(tg_reshape(x, TG_SHAPE(1, 24)), TG_SHAPE(5, -1));
    CHECK(tg_stride(e, 0) == 0 && tg_size(e, 0) == 5);
    /* An update through the base is visible through a view (no copy was made). */
    tg_fill_(x, 7);
    CHECK_NEAR(tg_item(tg_slice(tg_flatten(p, 0), 0, 5, 6, 1)), 7, 0);
    CHECK(tg_is_contiguous(tg_contiguous(p)));
    /* A transposed tensor cannot be viewed flat, only reshaped (copied). */
    CHECK_ERROR(tg_view(tg_transpose(v, 0, 2), TG_SHAPE(24)), "tg_view: the strides of [4,3,2] do not allow a view; use tg_reshape (which copies) or tg_contiguous first");
    CHECK(tg_numel(tg_reshape(tg_transpose(v, 0, 2), TG_SHAPE(-1))) == 24);
    free(sv);
}

TEST(squeeze_unsqueeze_flatten) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(2, 1, 3), dev);
    CHECK(tg_ndim(tg_squeeze(x, 1)) == 2);
    CHECK(tg_ndim(tg_squeeze(x, 0)) == 3); /* size 2: unchanged, as in PyTorch */
    tg_tensor *u = tg_unsqueeze(x, -1);
    CHECK(tg_ndim(u) == 4 && tg_size(u, 3) == 1);
    CHECK(tg_size(tg_flatten(x, 1), 1) == 3 && tg_ndim(tg_flatten(x, 0)) == 1);
}

TEST(print_format) {
    tg_device *dev = tg_test_device();
    char buf[4096];
    tg_snprint(buf, sizeof buf, tg_from_f32((float[]){ 1, -2.5f, 3, 4 }, TG_SHAPE(2, 2), dev));
    CHECK(strstr(buf, "tensor([[ 1.0000, -2.5000],") != NULL);
    CHECK(strstr(buf, "shape=[2,2], dtype=f32, device=") != NULL);
    tg_snprint(buf, sizeof buf, tg_arange(TG_I32, 0, 5000, 1, dev));
    CHECK(strstr(buf, "[   0,    1,    2, ..., 4997, 4998, 4999]") != NULL);
    /* snprintf rules: the length needed, the same whether or not there is room */
    tg_tensor *three = tg_ones(TG_F64, TG_SHAPE(3), dev);
    int need = tg_snprint(NULL, 0, three), full = tg_snprint(buf, sizeof buf, three);
    CHECK(need == full && (size_t)full == strlen(buf) && strstr(buf, "tensor([1.0000, 1.0000, 1.0000]") == buf);
    char small[8];
    CHECK(tg_snprint(small, sizeof small, three) == need && strlen(small) == 7 && strncmp(small, buf, 7) == 0);
    tg_snprint(buf, sizeof buf, tg_param(tg_zeros(TG_F64, TG_SCALAR_SHAPE, dev)));
    CHECK(strstr(buf, "tensor(0.0000, shape=[], dtype=f64") != NULL && strstr(buf, "requires_grad"));
}

TEST(scopes_release_and_keep) {
    tg_device *dev = tg_test_device();
    int64_t before = tg_live_tensors();
    tg_tensor *kept;
    tg_scope_begin();
    tg_tensor *a = tg_ones(TG_F32, TG_SHAPE(100), dev);
    tg_tensor *b = tg_mul_scalar(a, 3);
    kept = tg_keep(tg_add(a, b));
    tg_scope_end();
    CHECK(tg_live_tensors() == before + 1);
    CHECK_NEAR(tg_item(tg_sum(kept, TG_ALL, false)), 400, 0);
    tg_tensor *held = tg_retain(tg_zeros(TG_F32, TG_SHAPE(2), dev));
    tg_scope_begin();
    tg_scope_end();
    CHECK(tg_numel(held) == 2);
    tg_release(held);
    tg_release(NULL);
}

TEST(scope_end_keeps_graph_alive) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_retain(tg_param(tg_full(TG_F64, TG_SHAPE(3), 2.0, dev)));
    tg_tensor *loss;
    tg_scope_begin();
    loss = tg_keep(tg_sum(tg_square(tg_mul_scalar(w, 3)), TG_ALL, false)); /* intermediates die here */
    tg_scope_end();
    CHECK(tg_backward(loss) == TG_OK); /* the tape kept what backward needs */
    double *g = tg_test_values(tg_grad(w));
    CHECK(g && g[0] == 36 && g[2] == 36); /* d/dw (3w)^2 = 18 w */
    free(g);
    tg_release(w);
}

TEST(memory_stats) {
    tg_device *dev = tg_test_device();
    tg_memory_stats s0, s1, s2;
    CHECK(tg_device_memory_stats(dev, &s0) == TG_OK);
    tg_scope_begin();
    tg_zeros(TG_F32, TG_SHAPE(1000, 1000), dev);
    CHECK(tg_device_memory_stats(dev, &s1) == TG_OK);
    CHECK(s1.bytes_in_use >= s0.bytes_in_use + 4000000);
    tg_scope_end();
    CHECK(tg_device_memory_stats(dev, &s2) == TG_OK);
    CHECK(s2.bytes_in_use == s0.bytes_in_use && s2.peak_in_use >= s1.bytes_in_use);
    /* The block is cached: the same allocation again reaches no system allocator
     * (except where caching is off on purpose: AddressSanitizer builds, TG_DEBUG=1). */
    tg_scope_begin();
    tg_zeros(TG_F32, TG_SHAPE(1000, 1000), dev);
    tg_scope_end();
    tg_memory_stats s3;
    tg_device_memory_stats(dev, &s3);
    bool reuse_off = getenv("TG_DEBUG") && strcmp(getenv("TG_DEBUG"), "1") == 0;
#if defined(__SANITIZE_ADDRESS__)
    reuse_off = true;
#endif
    CHECK(reuse_off ? s3.allocations == s2.allocations + 1 : s3.allocations == s2.allocations);
}

void tg_philox4x32(uint64_t counter, uint64_t key, uint32_t out[4]); /* internal */

/* The known-answer vector of Random123's kat_vectors for counter 0, key 0. */
TEST(philox_known_answer) {
    uint32_t r[4];
    tg_philox4x32(0, 0, r);
    CHECK(r[0] == 0x6627e8d5u && r[1] == 0xe169c58du && r[2] == 0xbc57ac4cu && r[3] == 0x9b00dbd8u);
}

TEST(philox_reproducible) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(123);
    double *a = tg_test_values(tg_randn(TG_F32, TG_SHAPE(1000), dev));
    tg_manual_seed(123);
    double *b = tg_test_values(tg_randn(TG_F32, TG_SHAPE(10, 100), dev));
    CHECK(a && b && memcmp(a, b, 1000 * sizeof *a) == 0);
    tg_manual_seed(123);
    tg_set_num_threads(1);
    double *c = tg_test_values(tg_randn(TG_F32, TG_SHAPE(1000), dev));
    tg_set_num_threads(0);
    CHECK(memcmp(a, c, 1000 * sizeof *a) == 0);
    double mean = 0;
    for (int i = 0; i < 1000; i++) mean += a[i] / 1000;
    CHECK(fabs(mean) < 0.15);
    double *u = tg_test_values(tg_rand(TG_F64, TG_SHAPE(1000), dev));
    for (int i = 0; i < 1000; i++) CHECK(u[i] >= 0 && u[i] < 1);
    free(a), free(b), free(c), free(u);
}

TG_TEST_MAIN(&tg_case_creation_and_readback, &tg_case_ranges_and_eye, &tg_case_views_share_storage,
             &tg_case_squeeze_unsqueeze_flatten, &tg_case_print_format, &tg_case_scopes_release_and_keep,
             &tg_case_scope_end_keeps_graph_alive, &tg_case_memory_stats, &tg_case_philox_known_answer,
             &tg_case_philox_reproducible)
