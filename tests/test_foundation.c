/* The ownership and autograd foundation: gradients that keep their identity, the
 * create_graph cycle refused, scopes and owned references, long graphs freed without
 * recursion, released tensors reported. Values are checked against closed forms. */
#include "harness.h"

static double at(tg_tensor *t, int64_t i) {
    double *v = tg_test_values(t);
    double r = v ? v[i] : NAN;
    free(v);
    return r;
}

/* loss = sum(w * c): dL/dw = c. A view of the gradient taken after the first backward
 * sees the second one, and tg_grad keeps returning the same tensor. */
TEST(grad_keeps_identity_across_backwards) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(tg_from_f64((double[]){ 1, 2, 3 }, TG_SHAPE(3), dev));
    tg_tensor *c = tg_from_f64((double[]){ 4, 5, 6 }, TG_SHAPE(3), dev);
    CHECK(tg_backward(tg_sum(tg_mul(w, c), TG_ALL, false)) == TG_OK);
    tg_tensor *g = tg_grad(w), *view = tg_reshape(g, TG_SHAPE(1, 3));
    CHECK(tg_backward(tg_sum(tg_mul(w, c), TG_ALL, false)) == TG_OK);
    CHECK(tg_grad(w) == g);
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(at(g, i), 2.0 * (4 + i), 0);
        CHECK_NEAR(at(view, i), 2.0 * (4 + i), 0);
    }
    tg_zero_grad(w);
    CHECK(tg_grad(w) == g);
    CHECK_NEAR(at(view, 2), 0, 0);
    CHECK(tg_backward(tg_sum(tg_mul(w, c), TG_ALL, false)) == TG_OK);
    CHECK_NEAR(at(view, 1), 5, 0);
}

/* The caller's grad_output is copied into the leaf's own buffer, never stored. */
TEST(backward_ex_copies_the_callers_gradient) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(tg_from_f64((double[]){ 1, 2 }, TG_SHAPE(2), dev));
    tg_tensor *g_user = tg_from_f64((double[]){ 7, 8 }, TG_SHAPE(2), dev);
    CHECK(tg_backward_ex(w, g_user, NULL) == TG_OK);
    CHECK(tg_grad(w) != g_user);
    CHECK(tg_fill_(g_user, 0) == TG_OK);
    CHECK_NEAR(at(tg_grad(w), 0), 7, 0);
    CHECK_NEAR(at(tg_grad(w), 1), 8, 0);
}

TEST(create_graph_into_leaves_is_refused) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(tg_from_f64((double[]){ 1, 2 }, TG_SHAPE(2), dev));
    tg_tensor *loss = tg_sum(tg_mul(w, w), TG_ALL, false);
    CHECK_ERROR(tg_backward_ex(loss, NULL, &(tg_backward_opts){ .create_graph = true }),
                "tg_backward: create_graph would store in each leaf's .grad a gradient whose graph refers back to "
                "the leaf (a reference cycle that is never freed); take higher-order gradients with "
                "tg_autograd_grad");
    CHECK(tg_last_status() == TG_ERR_INVALID);
}

/* Higher order through tg_autograd_grad: f = sum(w^3), H v = 6 w v. Repeated in a
 * loop, nothing leaks. */
TEST(hessian_vector_products_do_not_leak) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(tg_from_f64((double[]){ 1, -2, 3 }, TG_SHAPE(3), dev));
    tg_tensor *v = tg_from_f64((double[]){ 0.5, 1, -1 }, TG_SHAPE(3), dev);
    int64_t live = 0;
    for (int it = 0; it < 50; it++) {
        tg_scope_begin();
        tg_tensor *f = tg_sum(tg_pow_scalar(w, 3), TG_ALL, false), *g, *hv;
        CHECK(tg_autograd_grad(1, &f, NULL, 1, &w, &g, &(tg_backward_opts){ .create_graph = true }) == TG_OK);
        tg_tensor *gv = tg_sum(tg_mul(g, v), TG_ALL, false);
        CHECK(tg_autograd_grad(1, &gv, NULL, 1, &w, &hv, NULL) == TG_OK);
        if (it == 0) {
            CHECK_NEAR(at(hv, 0), 6 * 1 * 0.5, 1e-12);
            CHECK_NEAR(at(hv, 1), 6 * -2 * 1, 1e-12);
            CHECK_NEAR(at(hv, 2), 6 * 3 * -1, 1e-12);
        }
        tg_scope_end();
        if (it == 1) live = tg_live_tensors();
        if (it > 1) CHECK(tg_live_tensors() == live);
    }
}

/* A chain of 300,000 nodes held only by its last tensor is freed when that tensor
 * goes: with one recursion per node this overflowed the stack under ASan. */
TEST(long_graph_frees_without_recursion) {
    tg_device *dev = tg_test_device();
    int64_t live = tg_live_tensors();
    tg_scope_begin();
    tg_scope_begin();
    tg_tensor *y = tg_param(tg_scalar(TG_F32, 0, dev));
    for (int i = 0; i < 300000 && y; i++) y = tg_add_scalar(y, 1);
    tg_keep(y);
    tg_scope_end(); /* every intermediate tensor goes; the nodes stay, held by y */
    CHECK(y != NULL);
    CHECK_NEAR(tg_item(y), 300000, 0);
    tg_scope_end();
    CHECK(tg_live_tensors() == live);
}

TEST(release_needs_an_owned_reference) {
    tg_device *dev = tg_test_device();
    tg_tensor *t = tg_zeros(TG_F32, TG_SHAPE(2), dev);
    int64_t live = tg_live_tensors();
    CHECK_ERROR(tg_release(t), "tg_release: this tensor holds no reference from tg_retain or tg_take (its scope owns "
                "it and releases it at tg_scope_end)");
    CHECK(tg_live_tensors() == live);
    CHECK_NEAR(tg_item(tg_sum(t, TG_ALL, false)), 0, 0);
}

/* tg_take hands the scope's reference to the caller: the tensor survives its scope
 * and dies at tg_release. */
TEST(take_moves_a_tensor_out_of_its_scope) {
    tg_device *dev = tg_test_device();
    int64_t live = tg_live_tensors();
    tg_scope_begin();
    tg_tensor *p = tg_take(tg_full(TG_F32, TG_SHAPE(3), 2.5, dev));
    tg_scope_end();
    CHECK(tg_live_tensors() == live + 1);
    tg_scope_begin();
    CHECK_NEAR(tg_item(tg_sum(p, TG_ALL, false)), 7.5, 0);
    tg_scope_end();
    tg_release(p);
    CHECK(tg_live_tensors() == live);
    CHECK(tg_last_status() == TG_OK);
}

/* A parameter made in the root scope and held by tg_take dies at tg_release. */
TEST(take_from_the_root_scope) {
    tg_device *dev = tg_test_device();
    tg_scope_end(); /* the harness's scope: back to the root */
    int64_t live = tg_live_tensors();
    tg_tensor *p = tg_take(tg_param(tg_zeros(TG_F32, TG_SHAPE(4), dev)));
    CHECK(tg_live_tensors() == live + 1);
    tg_release(p);
    CHECK(tg_live_tensors() == live);
    tg_scope_begin();
}

TEST(keep_from_a_large_scope) {
    tg_device *dev = tg_test_device();
    tg_tensor *kept[4];
    tg_scope_begin();
    for (int i = 0; i < 20000; i++) {
        tg_tensor *t = tg_full(TG_F32, TG_SHAPE(1), i, dev);
        if (i % 5000 == 0) kept[i / 5000] = tg_keep(t);
    }
    tg_scope_end();
    for (int k = 0; k < 4; k++) CHECK_NEAR(tg_item(kept[k]), 5000.0 * k, 0);
}

TEST(accessor_errors_have_messages) {
    tg_device *dev = tg_test_device();
    tg_tensor *t = tg_zeros(TG_F32, TG_SHAPE(2, 3), dev);
    tg_clear_error();
    CHECK(tg_stride(t, -1) == 1 && tg_last_status() == TG_OK);
    CHECK_ERROR(tg_stride(t, -5), "tg_stride: axis -5 is out of range for 2 dimensions");
    CHECK_ERROR(tg_size(t, 2), "tg_size: axis 2 is out of range for 2 dimensions");
    CHECK_ERROR(tg_dtype_of(NULL), "tg_dtype_of: t is NULL");
    CHECK(tg_dtype_of(NULL) == TG_NUM_DTYPES);
    CHECK_ERROR(tg_device_get("opencl:4294967296"),
                "tg_device_get: bad device name \"opencl:4294967296\" (expected opencl:N with N >= 0)");
}

/* An error deep inside a composed call names the function the user called. */
TEST(messages_name_the_public_function) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(tg_ones(TG_F64, TG_SHAPE(2), dev));
    tg_tensor *loss = tg_sum(tg_flatten(tg_mul(w, w), 0), TG_ALL, false);
    CHECK(tg_backward(loss) == TG_OK);
    CHECK_ERROR(tg_backward(loss), "tg_backward: the graph through tg_sum was already freed by a backward pass; pass "
                "retain_graph to run backward twice");
    tg_tensor *other = tg_param(tg_ones(TG_F64, TG_SHAPE(2), dev));
    tg_tensor *y = tg_flatten(tg_mul(other, other), 0);
    CHECK(tg_backward_ex(y, tg_ones(TG_F64, TG_SHAPE(2), dev), NULL) == TG_OK);
    CHECK_ERROR(tg_backward_ex(y, tg_ones(TG_F64, TG_SHAPE(2), dev), NULL),
                "tg_backward: the graph through tg_flatten was already freed by a backward pass; pass "
                "retain_graph to run backward twice");
}

static tg_tensor *returns_null(tg_tensor *const *in, void *ctx) {
    (void)in, (void)ctx;
    return NULL;
}

static tg_tensor *square_sum(tg_tensor *const *in, void *ctx) {
    (void)ctx;
    return tg_sum(tg_square(in[0]), TG_ALL, false);
}

/* gradcheck says why it did not run, in its status, the last error and the report. */
TEST(gradcheck_reports_why_it_did_not_run) {
    tg_device *dev = tg_test_device();
    tg_gradcheck_report rep;
    tg_tensor *x32 = tg_ones(TG_F32, TG_SHAPE(2), dev), *x64 = tg_ones(TG_F64, TG_SHAPE(2), dev);
    CHECK(tg_gradcheck(square_sum, NULL, 1, &x32, NULL, &rep) == TG_ERR_DTYPE);
    CHECK(strcmp(rep.message, "tg_gradcheck: input 0 is f32; gradients are checked in f64 (cast it with tg_cast)") == 0);
    CHECK(tg_gradcheck(returns_null, NULL, 1, &x64, NULL, &rep) == TG_ERR_INVALID);
    CHECK(strcmp(rep.message, "the function failed: tg_gradcheck: the function returned NULL without an error "
                 "message") == 0);
    CHECK(tg_gradcheck(square_sum, NULL, 1, &x64, NULL, &rep) == TG_OK);
}

/* torch.chunk's sizes: ceil(len / chunks), the last smaller, maybe fewer pieces. */
TEST(chunk_sizes_values_and_errors) {
    tg_device *dev = tg_test_device();
    double v[10];
    for (int i = 0; i < 10; i++) v[i] = i;
    tg_tensor *x = tg_from_f64(v, TG_SHAPE(2, 5), dev), *out[8];
    CHECK(tg_chunk(x, 3, 1, out) == 3);
    CHECK(tg_size(out[0], 1) == 2 && tg_size(out[1], 1) == 2 && tg_size(out[2], 1) == 1);
    CHECK_NEAR(at(tg_contiguous(out[1]), 3), 8, 0); /* row 1, columns 2..3 */
    CHECK(tg_chunk(tg_from_f64(v, TG_SHAPE(6), dev), 4, 0, out) == 3); /* sizes 2, 2, 2 */
    CHECK_ERROR(tg_chunk(x, 0, 1, out), "tg_chunk: chunks must be positive, got 0");
    CHECK_ERROR(tg_chunk(x, 2, 2, out), "tg_chunk: axis 2 is out of range for 2 dimensions");
}

/* 70 pieces, one node: the gradient of a weighted sum of the pieces comes back whole. */
static tg_tensor *chunk_fn(tg_tensor *const *in, void *ctx) {
    (void)ctx;
    tg_tensor *p[70], *acc = NULL;
    int n = tg_chunk(in[0], 70, 0, p);
    for (int i = 0; i < n; i++) {
        tg_tensor *t = tg_mul_scalar(tg_square(p[i]), 1 + i % 3);
        acc = acc ? tg_add(acc, t) : t;
    }
    return acc;
}

TEST(chunk_gradcheck_many_pieces) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(5);
    tg_tensor *x = tg_randn(TG_F64, TG_SHAPE(70, 2), dev);
    tg_gradcheck_report rep;
    CHECK(tg_gradcheck(chunk_fn, NULL, 1, &x, NULL, &rep) == TG_OK);
    CHECK(tg_gradgradcheck(chunk_fn, NULL, 1, &x, NULL, &rep) == TG_OK);
}

TG_TEST_MAIN(&tg_case_chunk_sizes_values_and_errors, &tg_case_chunk_gradcheck_many_pieces,
             &tg_case_gradcheck_reports_why_it_did_not_run, &tg_case_grad_keeps_identity_across_backwards, &tg_case_backward_ex_copies_the_callers_gradient,
             &tg_case_create_graph_into_leaves_is_refused, &tg_case_hessian_vector_products_do_not_leak,
             &tg_case_long_graph_frees_without_recursion, &tg_case_release_needs_an_owned_reference,
             &tg_case_take_moves_a_tensor_out_of_its_scope, &tg_case_take_from_the_root_scope,
             &tg_case_keep_from_a_large_scope, &tg_case_accessor_errors_have_messages,
             &tg_case_messages_name_the_public_function)
