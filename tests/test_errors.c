/* Every error a user can hit returns NULL or a status with a message that names the
 * op and the values; NULL inputs propagate and keep the first message; nothing crashes. */
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TEST(null_inputs_propagate_with_first_message) {
    tg_device *dev = tg_test_device();
    tg_tensor *a = tg_ones(TG_F32, TG_SHAPE(64, 784), dev), *b = tg_ones(TG_F32, TG_SHAPE(512, 10), dev);
    tg_clear_error();
    tg_tensor *r = tg_sum(tg_relu(tg_matmul(a, b)), TG_ALL, false);
    CHECK(r == NULL);
    CHECK(strcmp(tg_last_error(), "tg_matmul: inner dimensions differ: [64,784] @ [512,10] (784 != 512)") == 0);
    CHECK(tg_last_status() == TG_ERR_SHAPE);
    CHECK_ERROR(tg_exp(NULL), "tg_exp: x is NULL");
    CHECK_ERROR(tg_add(a, NULL), "tg_add: b is NULL");
    CHECK(isnan(tg_item(NULL)));
    CHECK(tg_backward(NULL) != TG_OK);
}

TEST(shape_errors) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(3, 4), dev);
    CHECK_ERROR(tg_add(x, tg_zeros(TG_F32, TG_SHAPE(5), dev)), "tg_add: shapes [3,4] and [5] do not broadcast (axis -1: 4 vs 5)");
    CHECK_ERROR(tg_reshape(x, TG_SHAPE(5, -1)), "tg_reshape: cannot view [3,4] (12 elements) as [5,-1]");
    CHECK_ERROR(tg_reshape(x, TG_SHAPE(-1, -1)), "tg_reshape: bad size -1 in [-1,-1]");
    CHECK_ERROR(tg_expand(x, TG_SHAPE(3, 5)), "tg_expand: cannot expand [3,4] to [3,5] (axis 1)");
    CHECK_ERROR(tg_cat(2, (tg_tensor *[]){ x, tg_zeros(TG_F32, TG_SHAPE(2, 5), dev) }, 0),
                "tg_cat: tensor 1 has shape [2,5], tensor 0 has [3,4] (they may differ only on axis 0)");
    CHECK_ERROR(tg_matmul(tg_zeros(TG_F32, TG_SCALAR_SHAPE, dev), x), "tg_matmul: operands must have at least one dimension (got 0 and 2)");
    CHECK_ERROR(tg_matmul(tg_zeros(TG_F32, TG_SHAPE(2, 3, 4), dev), tg_zeros(TG_F32, TG_SHAPE(3, 4, 5), dev)),
                "tg_matmul: shapes [2] and [3] do not broadcast (axis -1: 2 vs 3)");
    CHECK_ERROR(tg_pad(x, TG_PADS(1), 0), "tg_pad: 1 padding values for 2 dimensions (expected an even number, at most 4)");
    CHECK_ERROR(tg_pad(x, TG_PADS(-3, -2), 0), "tg_pad: padding (-3, -2) leaves axis 1 of size 4 negative");
    CHECK_ERROR(tg_max(tg_zeros(TG_F32, TG_SHAPE(0, 3), dev), TG_AXES(0), false), "tg_max: cannot reduce over axis 0 of size 0");
    CHECK_ERROR(tg_zeros(TG_F32, TG_SHAPE(2, -1), dev), "tg_zeros: negative size in shape [2,-1]");
    CHECK_ERROR(tg_item(x), "tg_item: the tensor has shape [3,4]; only one-element tensors have an item");
    CHECK_ERROR(tg_permute(x, TG_AXES(0)), "tg_permute: 1 axes given for 2 dimensions");
    CHECK_ERROR(tg_scatter_add(x, 0, tg_zeros(TG_I32, TG_SHAPE(1, 4), dev), tg_zeros(TG_F32, TG_SHAPE(2, 4), dev)),
                "tg_scatter_add: index [1,4] and src [2,4] must have the same shape");
    CHECK_ERROR(tg_cross_entropy(x, tg_zeros(TG_I32, TG_SHAPE(4), dev)),
                "tg_cross_entropy: logits [3,4] need labels of shape (N, d...) = logits without axis 1; got labels [4]");
}

TEST(axis_and_argument_errors) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(3, 4), dev);
    CHECK_ERROR(tg_sum(x, TG_AXES(2), false), "tg_sum: axis 2 is out of range for 2 dimensions");
    CHECK_ERROR(tg_sum(x, TG_AXES(0, -2), false), "tg_sum: axis -2 given twice");
    CHECK_ERROR(tg_softmax(x, -3), "tg_softmax: axis -3 is out of range for 2 dimensions");
    CHECK_ERROR(tg_argmax(x, 5, false), "tg_argmax: axis 5 is out of range for 2 dimensions");
    CHECK_ERROR(tg_slice(x, 0, 0, 2, 0), "tg_slice: step must be positive, got 0");
    CHECK_ERROR(tg_unsqueeze(x, 4), "tg_unsqueeze: axis 4 is out of range for 2 dimensions");
    CHECK_ERROR(tg_split(x, 0, 0, NULL, 0), "tg_split: split_size must be positive, got 0");
    CHECK_ERROR(tg_arange(TG_F32, 0, 1, 0, dev), "tg_arange: bad range [0, 1) step 0");
    CHECK_ERROR(tg_clamp(x, 2, 1), "tg_clamp: lo 2 is greater than hi 1");
    CHECK_ERROR(tg_bernoulli(TG_F32, TG_SHAPE(2), 1.5, dev), "tg_bernoulli: p must be in [0, 1], got 1.5");
    CHECK_ERROR(tg_one_hot(tg_zeros(TG_I32, TG_SHAPE(2), dev), 0), "tg_one_hot: num_classes must be positive, got 0");
    CHECK_ERROR(tg_var(x, TG_ALL, -1, false), "tg_var: correction -1 is negative");
    CHECK_ERROR(tg_from_data(NULL, TG_F32, TG_SHAPE(1), dev), "tg_from_data: data is NULL");
    CHECK_ERROR(tg_zeros(TG_F32, TG_SHAPE(1), NULL), "tg_zeros: device is NULL");
}

TEST(index_out_of_range) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(2, 10), dev);
    tg_tensor *bad = tg_from_i32((int32_t[]){ 3, 12 }, TG_SHAPE(2, 1), dev);
    CHECK_ERROR(tg_gather(x, 1, bad), "tg_gather: index 12 is out of range for axis 1 of size 10");
    CHECK_ERROR(tg_index_select(x, 1, tg_from_i32((int32_t[]){ -11 }, TG_SHAPE(1), dev)),
                "tg_index_select: index -11 is out of range for axis 1 of size 10");
    CHECK_ERROR(tg_cross_entropy(x, tg_from_i32((int32_t[]){ 1, 10 }, TG_SHAPE(2), dev)),
                "tg_cross_entropy: index 10 is out of range for axis 1 of size 10");
    CHECK_ERROR(tg_one_hot(tg_from_i32((int32_t[]){ 0, 4 }, TG_SHAPE(2), dev), 4),
                "tg_one_hot: labels range over [0, 4], outside [0, 4)");
    CHECK_ERROR(tg_gather(x, 1, tg_zeros(TG_F32, TG_SHAPE(2, 1), dev)), "tg_gather: index must be i32 or i64, got f32");
}

TEST(dtype_errors) {
    tg_device *dev = tg_test_device();
    tg_tensor *f = tg_zeros(TG_F32, TG_SHAPE(2), dev), *d = tg_zeros(TG_F64, TG_SHAPE(2), dev);
    tg_tensor *i = tg_zeros(TG_I32, TG_SHAPE(2), dev);
    CHECK_ERROR(tg_add(f, d), "tg_add: dtypes differ: f32 and f64 (convert one with tg_cast)");
    CHECK_ERROR(tg_exp(i), "tg_exp: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_div(i, i), "tg_div: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_matmul(i, i), "tg_matmul: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_where(f, f, f), "tg_where: cond must be u8 (a comparison's result), got f32");
    CHECK_ERROR(tg_cross_entropy(tg_zeros(TG_F32, TG_SHAPE(2, 3), dev), tg_zeros(TG_F32, TG_SHAPE(2), dev)),
                "tg_cross_entropy: labels must be i32 or i64, got f32");
    CHECK_ERROR(tg_randn(TG_I32, TG_SHAPE(2), dev), "tg_randn: expected a floating dtype (f32 or f64), got i32");
    CHECK_ERROR(tg_cast(f, (tg_dtype)42), "tg_cast: unknown dtype 42");
    CHECK_ERROR(tg_add_(f, d), "tg_add_: dtypes differ: f32 and f64");
}

TEST(device_errors) {
    CHECK_ERROR(tg_device_get("tpu"), "tg_device_get: unknown device \"tpu\" (expected cpu, opencl or opencl:N)");
    CHECK_ERROR(tg_device_get("opencl:x"), "tg_device_get: bad device name \"opencl:x\" (expected opencl:N with N >= 0)");
    CHECK_ERROR(tg_to(tg_zeros(TG_F32, TG_SHAPE(1), tg_test_device()), NULL), "tg_to: device is NULL");
}

TEST(state_errors) {
    tg_device *dev = tg_test_device();
    CHECK_ERROR(tg_backward(tg_sum(tg_ones(TG_F32, TG_SHAPE(2), dev), TG_ALL, false)), "tg_backward: the output does not require grad (no input on its path was marked with tg_param, or grad mode was off)");
    CHECK_ERROR(tg_grad(tg_ones(TG_F32, TG_SHAPE(2), dev)), "tg_grad: the tensor does not require grad (mark it with tg_param)");
    tg_scope_end(); /* close the harness's scope to reach the root */
    CHECK_ERROR(tg_scope_end(), "tg_scope_end: no open scope (more ends than begins)");
    tg_scope_begin();
}

TEST(abort_on_error_env) {
    pid_t pid = fork();
    if (pid == 0) {
        setenv("TG_ABORT_ON_ERROR", "1", 1);
        freopen("/dev/null", "w", stderr);
        tg_exp(NULL);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

TEST(status_strings) {
    CHECK(strcmp(tg_status_str(TG_OK), "ok") == 0);
    CHECK(strcmp(tg_status_str(TG_ERR_SHAPE), "shape mismatch") == 0);
    CHECK(strcmp(tg_status_str((tg_status)-99), "unknown status") == 0);
}

/* A call that succeeds leaves the last failure's message alone, also one that looks up
 * optional parts inside (a model's bias-free convolutions, parameters without gradients). */
TEST(success_keeps_the_last_error) {
    tg_device *dev = tg_test_device();
    tg_clear_error();
    tg_tensor *a = tg_zeros(TG_F32, TG_SHAPE(2), dev), *b = tg_zeros(TG_F32, TG_SHAPE(3), dev);
    CHECK(tg_add(a, b) == NULL);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", tg_last_error());
    CHECK(msg[0] != '\0');
    tg_module *net = tg_resnet_cifar_new(8, 10, NULL, dev);
    CHECK(net != NULL);
    tg_named p;
    CHECK(tg_module_parameters(net, true, &p) == TG_OK);
    CHECK(tg_clip_grad_norm_(p.n, p.tensors, 1.0, NULL) == 0);
    tg_named_free(&p);
    tg_module_free(net);
    CHECK(strcmp(tg_last_error(), msg) == 0);
}

TG_TEST_MAIN(&tg_case_null_inputs_propagate_with_first_message, &tg_case_shape_errors,
             &tg_case_axis_and_argument_errors, &tg_case_index_out_of_range, &tg_case_dtype_errors,
             &tg_case_device_errors, &tg_case_state_errors, &tg_case_abort_on_error_env, &tg_case_status_strings,
             &tg_case_success_keeps_the_last_error)
