/* Data-parallel training (lib/dist): run as a world of 1, and under `mpirun -np 2`
 * where each rank trains on half of every batch and rank 0 also trains the same model
 * alone on the whole batch as the reference. Cross-rank comparisons use MPI directly.
 * `test_dist --timeout-driver MPIRUN` starts a 2-rank job in which one rank skips a
 * collective, and checks that the other aborts the job with the timeout message. */
#include <time.h>
#include <unistd.h>
#ifdef TG_HAVE_MPI
#include <mpi.h>
#endif

#include "harness.h"

enum { B = 8, STEPS = 20 };

static int rank_, size_ = 1;

/* The global value of a per-rank double: the mean over ranks (MPI itself, not tapegrad). */
static double mean_over_ranks(double v) {
#ifdef TG_HAVE_MPI
    if (size_ > 1) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#endif
    return v / size_;
}

/* The largest |a - b| over two modules' parameters (and buffers when asked). */
static double max_diff(tg_module *a, tg_module *b, bool buffers) {
    tg_named pa, pb;
    if ((buffers ? tg_module_buffers(a, &pa) : tg_module_parameters(a, true, &pa)) != TG_OK) return INFINITY;
    if ((buffers ? tg_module_buffers(b, &pb) : tg_module_parameters(b, true, &pb)) != TG_OK) return INFINITY;
    double m = pa.n == pb.n ? 0 : INFINITY;
    for (int i = 0; i < pa.n && i < pb.n; i++) {
        int64_t n = tg_numel(pa.tensors[i]);
        double *va = tg_test_values(pa.tensors[i]), *vb = tg_test_values(pb.tensors[i]);
        if (!va || !vb || n != tg_numel(pb.tensors[i])) m = INFINITY;
        for (int64_t j = 0; va && vb && j < n; j++) m = fmax(m, fabs(va[j] - vb[j]));
        free(va);
        free(vb);
    }
    tg_named_free(&pa);
    tg_named_free(&pb);
    return m;
}

/* The largest |rank r's value - rank 0's| over m's parameters (and buffers), on every rank. */
static double diff_from_rank0(tg_module *m, bool buffers) {
    double worst = 0;
#ifdef TG_HAVE_MPI
    tg_state_dict *sd = tg_module_state_dict(m);
    for (int i = 0; sd && i < tg_state_dict_size(sd); i++) {
        tg_tensor *t = tg_state_dict_tensor(sd, i);
        if (!buffers && !tg_module_get_param(m, tg_state_dict_name(sd, i))) continue;
        int n = (int)tg_numel(t);
        double *v = tg_test_values(t), *v0 = malloc((size_t)n * sizeof *v0);
        memcpy(v0, v, (size_t)n * sizeof *v0);
        if (size_ > 1) MPI_Bcast(v0, n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        for (int j = 0; j < n; j++) worst = fmax(worst, fabs(v[j] - v0[j]));
        free(v);
        free(v0);
    }
    tg_state_dict_free(sd);
    if (size_ > 1) MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
#else
    (void)m, (void)buffers;
#endif
    return worst;
}

static tg_module *mlp_new(void) {
    tg_device *dev = tg_test_device();
    return tg_sequential(tg_linear_new(6, 16, NULL, dev), tg_relu_new(), tg_linear_new(16, 4, NULL, dev));
}

/* conv3x3 1->4, BN (local or synchronised), ReLU, maxpool 2, linear 64->4; x (N, 1, 8, 8).
 * The conv has no bias, as before every BatchNorm in ResNet: BN cancels a bias, whose
 * gradient is then rounding noise that Adam would turn into steps of lr either way. */
static tg_module *cnn_new(bool sync) {
    tg_device *dev = tg_test_device();
    tg_module *conv = tg_conv2d_new(1, 4, 3, &(tg_conv_layer_opts){ .padding = 1, .no_bias = true }, dev);
    tg_module *bn = sync ? tg_sync_batchnorm_new(4, NULL, dev) : tg_batchnorm2d_new(4, NULL, dev);
    return tg_sequential(conv, bn, tg_relu_new(), tg_max_pool2d_new(&(tg_max_pool2d_opts){ .kernel_size = 2 }),
                         tg_flatten_new(1, -1), tg_linear_new(64, 4, NULL, dev));
}

/* The global batch, the same on every rank: x (B, *shape), labels (B). */
static void make_batch(tg_shape shape, tg_tensor **x, tg_tensor **y) {
    tg_manual_seed(1234);
    tg_shape s = { .ndim = shape.ndim + 1, .dims = { B } };
    for (int k = 0; k < shape.ndim; k++) s.dims[k + 1] = shape.dims[k];
    *x = tg_randn(TG_F32, s, tg_test_device());
    *y = tg_from_i32((const int32_t[B]){ 0, 3, 1, 2, 2, 0, 3, 1 }, TG_SHAPE(B), tg_test_device());
}

static tg_tensor *rows(tg_tensor *t, int64_t lo, int64_t hi) { return tg_contiguous(tg_slice(t, 0, lo, hi, 1)); }

/* STEPS Adam steps over this rank's share of the batch through DDP; losses[] get the
 * mean over ranks. */
static bool train_ddp(tg_module *m, tg_tensor *x, tg_tensor *y, double *losses) {
    tg_ddp *ddp = tg_ddp_new(m, NULL);
    tg_named ps;
    if (!ddp || tg_module_parameters(m, true, &ps) != TG_OK) return false;
    tg_optim *opt = tg_adam_new(ps.n, ps.tensors, &(tg_adam_opts){ .lr = TG_SOME(1e-2) });
    int64_t lo = B / size_ * rank_, hi = B / size_ * (rank_ + 1);
    tg_tensor *xl = rows(x, lo, hi), *yl = rows(y, lo, hi);
    bool ok = opt != NULL;
    for (int s = 0; s < STEPS && ok; s++) {
        tg_scope_begin();
        tg_optim_zero_grad(opt);
        tg_tensor *loss = tg_cross_entropy(tg_ddp_forward(ddp, xl), yl);
        ok = loss && tg_ddp_backward(ddp, loss) == TG_OK && tg_optim_step(opt) == TG_OK;
        losses[s] = mean_over_ranks(ok ? tg_item(loss) : NAN);
        tg_scope_end();
    }
    if (!ok) fprintf(stderr, "  rank %d: %s\n", rank_, tg_last_error());
    tg_ddp_stats st;
    ok = ok && tg_ddp_get_stats(ddp, &st, false) == TG_OK && st.steps == STEPS;
    tg_optim_free(opt);
    tg_named_free(&ps);
    tg_ddp_free(ddp);
    return ok;
}

/* The reference in one process: the whole batch, as `chunks` equal pieces (each its
 * own forward, so local BatchNorm sees what each rank sees) whose losses are averaged. */
static bool train_alone(tg_module *m, tg_tensor *x, tg_tensor *y, int chunks, double *losses) {
    tg_named ps;
    if (tg_module_parameters(m, true, &ps) != TG_OK) return false;
    tg_optim *opt = tg_adam_new(ps.n, ps.tensors, &(tg_adam_opts){ .lr = TG_SOME(1e-2) });
    bool ok = opt != NULL;
    for (int s = 0; s < STEPS && ok; s++) {
        tg_scope_begin();
        tg_optim_zero_grad(opt);
        tg_tensor *loss = NULL;
        for (int c = 0; c < chunks; c++) {
            int64_t lo = B / chunks * c, hi = B / chunks * (c + 1);
            tg_tensor *l = tg_cross_entropy(tg_module_forward(m, rows(x, lo, hi)), rows(y, lo, hi));
            loss = loss ? tg_add(loss, l) : l;
        }
        loss = tg_mul_scalar(loss, 1.0 / chunks);
        ok = loss && tg_backward(loss) == TG_OK && tg_optim_step(opt) == TG_OK;
        losses[s] = ok ? tg_item(loss) : NAN;
        tg_scope_end();
    }
    tg_optim_free(opt);
    tg_named_free(&ps);
    return ok;
}

/* Trains make(sync) through DDP on every rank and make(false) alone on rank 0; the
 * losses and parameters (and, when buffers_too, the running statistics) must agree. */
static void compare_training(int *tg_failed_, tg_module *(*make)(bool), bool sync, int ref_chunks, tg_shape xshape,
                             bool buffers_too, double tol) {
    tg_tensor *x, *y;
    make_batch(xshape, &x, &y);
    tg_manual_seed(100 + (uint64_t)rank_); /* different weights per rank: the broadcast must fix it */
    tg_module *m = make(sync);
    double losses[STEPS], ref[STEPS];
    CHECK(m && train_ddp(m, x, y, losses));
    CHECK(diff_from_rank0(m, buffers_too) == 0); /* every rank took the same steps, bit for bit */
    if (rank_ == 0) {
        tg_manual_seed(100);
        tg_module *alone = make(false);
        CHECK(alone && train_alone(alone, x, y, ref_chunks, ref));
        double worst = 0;
        for (int s = 0; s < STEPS; s++) worst = fmax(worst, fabs(losses[s] - ref[s]));
        printf("  losses %.6f -> %.6f (alone %.6f -> %.6f), max loss difference %.3g, parameters %.3g\n", losses[0],
               losses[STEPS - 1], ref[0], ref[STEPS - 1], worst, max_diff(m, alone, false));
        CHECK(ref[STEPS - 1] < ref[0] - 0.05); /* it trained */
        CHECK_NEAR(worst, 0, tol);
        CHECK_NEAR(max_diff(m, alone, false), 0, tol);
        if (buffers_too) CHECK_NEAR(max_diff(m, alone, true), 0, tol);
        tg_module_free(alone);
    }
    tg_module_free(m);
}

static tg_module *mlp_make(bool sync) { return (void)sync, mlp_new(); }

TEST(world) {
    CHECK(tg_dist_init(NULL) == TG_OK);
    CHECK(tg_dist_init(NULL) == TG_OK); /* idempotent */
    CHECK(tg_dist_is_initialized());
    const char *env = getenv("OMPI_COMM_WORLD_SIZE");
    CHECK(tg_dist_world_size() == (env ? atoi(env) : 1));
    env = getenv("OMPI_COMM_WORLD_RANK");
    CHECK(tg_dist_rank() == (env ? atoi(env) : 0));
    CHECK(tg_dist_timeout() == 300);
    CHECK_ERROR(tg_dist_init(&(tg_dist_opts){ .timeout = -1 }),
                "tg_dist_init: the timeout must be a positive number of seconds (opts->timeout -1, TG_DIST_TIMEOUT '')");
    CHECK(tg_dist_barrier() == TG_OK);
}

TEST(collectives) {
    tg_device *dev = tg_test_device();
    tg_tensor *t = tg_full(TG_F32, TG_SHAPE(3), rank_ + 1, dev);
    CHECK(tg_dist_all_reduce_(t, TG_DIST_SUM) == TG_OK);
    CHECK_NEAR(tg_item(tg_sum(t, TG_ALL, false)), 3.0 * size_ * (size_ + 1) / 2, 0); /* 1 + 2 + ... + size */
    tg_tensor *b = tg_full(TG_I64, TG_SHAPE(2), 7 + rank_, dev);
    CHECK(tg_dist_broadcast_(b, size_ - 1) == TG_OK);
    CHECK_NEAR(tg_item(tg_sum(b, TG_ALL, false)), 2.0 * (7 + size_ - 1), 0);
    CHECK_ERROR(tg_dist_broadcast_(b, size_), size_ == 1
                ? "tg_dist_broadcast_: root 1 is not a rank of this world of 1"
                : "tg_dist_broadcast_: root 2 is not a rank of this world of 2");
    CHECK_ERROR(tg_dist_all_reduce_(b, TG_DIST_AVG), "tg_dist_all_reduce_: TG_DIST_AVG needs f32 or f64, got i64");
    /* The differentiable sum: d/dx of sum_r sum(w_r * allreduce(x_r)) is sum_r w_r. */
    tg_tensor *x = tg_param(tg_full(TG_F64, TG_SHAPE(2), 1, dev));
    tg_tensor *w = tg_full(TG_F64, TG_SHAPE(2), rank_ + 1, dev);
    CHECK(tg_backward(tg_sum(tg_mul(w, tg_dist_all_reduce(x)), TG_ALL, false)) == TG_OK);
    CHECK_NEAR(tg_item(tg_sum(tg_grad(x), TG_ALL, false)), 2.0 * size_ * (size_ + 1) / 2, 1e-12);
    CHECK_ERROR(tg_dist_all_reduce(b), "tg_dist_all_reduce: x is i64; the differentiable all-reduce takes f32 or f64");
}

TEST(broadcast_at_start) {
    tg_manual_seed(7 + (uint64_t)rank_); /* each rank its own weights */
    tg_module *m = cnn_new(false);
    tg_tensor *rm = tg_module_get_buffer(m, "1.running_mean");
    CHECK(tg_fill_(rm, rank_) == TG_OK);
    tg_manual_seed(7);
    tg_module *rank0 = cnn_new(false); /* what rank 0 drew */
    CHECK(size_ == 1 || rank_ == 0 || max_diff(m, rank0, false) > 0.01);
    tg_ddp *ddp = tg_ddp_new(m, &(tg_ddp_opts){ .bucket_cap_mb = 0.0001 });
    CHECK(ddp != NULL);
    CHECK(max_diff(m, rank0, false) == 0);
    CHECK(tg_item(tg_sum(rm, TG_ALL, false)) == 0); /* buffers too */
    CHECK(diff_from_rank0(m, true) == 0);
    tg_ddp_stats st;
    CHECK(tg_ddp_get_stats(ddp, &st, false) == TG_OK);
    CHECK(st.bytes_per_step == 4 * tg_module_num_parameters(m, true));
    CHECK(st.buckets > 1); /* 100-byte buckets: one per parameter tensor but the smallest */
    CHECK(tg_ddp_module(ddp) == m);
    tg_ddp_free(ddp);
    CHECK_ERROR(tg_ddp_new(m, &(tg_ddp_opts){ .bucket_cap_mb = -1 }), "tg_ddp_new: bucket_cap_mb must be > 0, got -1");
    CHECK_ERROR(tg_ddp_new(NULL, NULL), "tg_ddp_new: m is NULL");
    CHECK_ERROR(tg_ddp_wait(NULL), "tg_ddp_wait: d is NULL");
    tg_module_free(m);
    tg_module_free(rank0);
}

TEST(mlp_matches_one_process) {
    compare_training(tg_failed_, mlp_make, false, 1, TG_SHAPE(6), false, 2e-5);
}

TEST(cnn_local_bn_matches_one_process) {
    /* Local BatchNorm: each rank normalises its half, so the reference runs the halves
     * as separate forwards (the same model, the same statistics) in one process. */
    compare_training(tg_failed_, cnn_new, false, size_, TG_SHAPE(1, 8, 8), false, 2e-5);
}

TEST(cnn_sync_bn_matches_full_batch_bn) {
    compare_training(tg_failed_, cnn_new, true, 1, TG_SHAPE(1, 8, 8), true, 5e-5);
}

TEST(buckets_start_during_backward) {
    tg_tensor *x, *y;
    make_batch(TG_SHAPE(6), &x, &y);
    tg_module *m = mlp_new();
    tg_ddp *ddp = tg_ddp_new(m, &(tg_ddp_opts){ .bucket_cap_mb = 0.0002 }); /* ~200 B: several buckets */
    for (int s = 0; s < 3 && ddp; s++) {
        tg_scope_begin();
        tg_module_zero_grad(m);
        CHECK(tg_ddp_backward(ddp, tg_cross_entropy(tg_ddp_forward(ddp, x), y)) == TG_OK);
        tg_scope_end();
    }
    tg_ddp_stats st;
    CHECK(ddp && tg_ddp_get_stats(ddp, &st, true) == TG_OK);
    /* The first backward learns the gradient counts; in the next two every bucket but
     * the one with the last gradient to arrive (final only in tg_ddp_wait) starts early. */
    if (size_ > 1 && st.buckets_early != 2 * (st.buckets - 1))
        FAIL_("%lld buckets started early out of %d a step", (long long)st.buckets_early, st.buckets);
    CHECK(st.steps == 3);
    /* staged in pinned host memory on OpenCL, in plain memory on the CPU */
    bool opencl = strncmp(tg_device_name(tg_test_device()), "opencl", 6) == 0;
    CHECK(st.pinned_buckets == (opencl ? st.buckets : 0));
    CHECK(tg_ddp_get_stats(ddp, &st, false) == TG_OK && st.steps == 0);
    tg_ddp_free(ddp);
    tg_module_free(m);
}

static tg_tensor *twice(tg_module *m, tg_tensor *x, int uses) { /* sum of m(x), used `uses` times */
    tg_tensor *loss = NULL;
    for (int u = 0; u < uses; u++) {
        tg_tensor *l = tg_sum(tg_module_forward(m, x), TG_ALL, false);
        loss = loss ? tg_add(loss, l) : l;
    }
    return loss;
}

TEST(graph_change_is_reported) {
    tg_module *m = tg_sequential(tg_linear_new(3, 2, NULL, tg_test_device()));
    tg_tensor *x = tg_ones(TG_F32, TG_SHAPE(4, 3), tg_test_device());
    tg_ddp *ddp = tg_ddp_new(m, &(tg_ddp_opts){ .bucket_cap_mb = 1e-6 }); /* a bucket a parameter */
    CHECK(ddp && tg_ddp_backward(ddp, twice(m, x, 1)) == TG_OK);
    /* Now each parameter gets two gradients: the first one looked final. */
    if (size_ > 1)
        CHECK_ERROR_CONTAINS(tg_ddp_backward(ddp, twice(m, x, 2)), "received more gradients (2) than in the previous "
                             "backward (1), after its bucket's all-reduce had started: the graph changed");
    /* The next backward learns the new counts, and the one after that is averaged right. */
    for (int s = 0; s < 2; s++) {
        tg_module_zero_grad(m);
        CHECK(tg_ddp_backward(ddp, twice(m, x, 2)) == TG_OK);
    }
    CHECK_NEAR(tg_item(tg_sum(tg_grad(tg_module_get_param(m, "0.bias")), TG_ALL, false)), 2 * 2 * 4, 1e-5);
    tg_ddp_free(ddp);
    tg_module_free(m);
}

TEST(errors) {
    CHECK_ERROR(tg_sync_batchnorm_new(0, NULL, tg_test_device()), "tg_sync_batchnorm_new: num_features must be >= 1, "
                "eps >= 0 and momentum in [0, 1], got 0, 1e-05 and 0.1");
    tg_module *bn = tg_sync_batchnorm_new(3, NULL, tg_test_device());
    CHECK_ERROR(tg_module_forward(bn, tg_zeros(TG_F32, TG_SHAPE(2, 4), tg_test_device())),
                "tg_module_forward: SyncBatchNorm: input has 4 channels, num_features is 3");
    CHECK_ERROR(tg_module_forward(bn, tg_zeros(TG_F32, TG_SHAPE(3), tg_test_device())),
                "tg_module_forward: SyncBatchNorm: input has 1 axes, expected at least 2 (N, C, *)");
    tg_module_free(bn);
    CHECK_ERROR(tg_dist_run_on_root(-1, NULL, NULL), size_ == 1
                ? "tg_dist_run_on_root: root -1 is not a rank of this world of 1"
                : "tg_dist_run_on_root: root -1 is not a rank of this world of 2");
    CHECK_ERROR(tg_dist_run_on_root(0, NULL, NULL), "tg_dist_run_on_root: failed on rank 0: tg_dist_run_on_root: fn is NULL");
    CHECK_ERROR(tg_dist_broadcast_state_dict(NULL, 5, NULL), size_ == 1
                ? "tg_dist_broadcast_state_dict: root 5 is not a rank of this world of 1"
                : "tg_dist_broadcast_state_dict: root 5 is not a rank of this world of 2");
    CHECK_ERROR(tg_ddp_forward(NULL, NULL), "tg_ddp_forward: d is NULL");
    CHECK_ERROR(tg_ddp_backward(NULL, NULL), "tg_ddp_backward: d is NULL");
    CHECK_ERROR(tg_ddp_get_stats(NULL, NULL, false), "tg_ddp_get_stats: d and out must not be NULL");
    tg_module *relu = tg_relu_new();
    CHECK_ERROR(tg_ddp_new(relu, NULL), "tg_ddp_new: the module has no parameter that requires grad");
    tg_module_free(relu);
}

TEST(layout_mismatch) {
    tg_device *dev = tg_test_device();
    tg_module *m = tg_sequential(tg_linear_new(3, 4 + rank_, NULL, dev));
    if (size_ == 1) {
        tg_ddp *ddp = tg_ddp_new(m, NULL); /* nothing to disagree with */
        CHECK(ddp != NULL);
        tg_ddp_free(ddp);
    } else {
        CHECK_ERROR(tg_ddp_new(m, NULL), "tg_ddp_new: rank 1 differs from rank 0 in parameter 0: '0.weight' f32 [5,3] "
                    "on rank 1, '0.weight' f32 [4,3] on rank 0 (2 parameters on rank 1, 2 on rank 0)");
    }
    tg_module_free(m);
    /* One more layer on rank 1: the lists differ in length. */
    m = rank_ == 0 ? tg_sequential(tg_linear_new(3, 4, NULL, dev))
                   : tg_sequential(tg_linear_new(3, 4, NULL, dev), tg_linear_new(4, 2, NULL, dev));
    if (size_ > 1)
        CHECK_ERROR(tg_ddp_new(m, NULL), "tg_ddp_new: rank 1 differs from rank 0 in parameter 2: '1.weight' f32 [2,4] "
                    "on rank 1, missing on rank 0 (4 parameters on rank 1, 2 on rank 0)");
    tg_module_free(m);
}

static tg_status write_marker(void *ctx) {
    FILE *f = fopen(ctx, "w");
    if (!f) return TG_ERR_IO;
    fputs("saved", f);
    fclose(f);
    return TG_OK;
}

static tg_status fail_save(void *ctx) { /* fails with a message of the library's */
    return tg_device_get(ctx) ? TG_OK : tg_last_status();
}

TEST(checkpoint_on_rank0_loaded_by_all) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tg_dist_test_%d.txt", (int)getppid()); /* mpirun's pid: one file a job */
    if (rank_ == 0) remove(path);
    CHECK(tg_dist_run_on_root(0, write_marker, path) == TG_OK);
    FILE *f = fopen(path, "r"); /* complete on every rank once the call returns */
    char buf[16] = "";
    CHECK(f && fgets(buf, sizeof buf, f) && strcmp(buf, "saved") == 0);
    if (f) fclose(f);
    tg_dist_barrier();
    if (rank_ == 0) remove(path);
    CHECK_ERROR_CONTAINS(tg_dist_run_on_root(0, fail_save, "no-such-device"),
                         "tg_dist_run_on_root: failed on rank 0: tg_device_get: ");
    /* A state dict loaded on rank 0 only reaches every rank. */
    tg_manual_seed(50 + (uint64_t)rank_);
    tg_module *m = cnn_new(false), *loaded = NULL;
    tg_state_dict *sd = rank_ == 0 ? tg_module_state_dict(m) : NULL;
    tg_state_dict *all = tg_dist_broadcast_state_dict(sd, 0, NULL);
    CHECK(all && tg_state_dict_size(all) == 8);
    tg_manual_seed(50);
    loaded = cnn_new(false); /* rank 0's model */
    tg_module *mine = cnn_new(false);
    CHECK(all && tg_module_load_state_dict(mine, all, NULL) == TG_OK);
    CHECK(max_diff(mine, loaded, false) == 0 && max_diff(mine, loaded, true) == 0);
    CHECK_ERROR(tg_dist_broadcast_state_dict(NULL, 0, NULL), "tg_dist_broadcast_state_dict: sd is NULL on root 0");
    tg_state_dict_free(sd);
    tg_state_dict_free(all);
    tg_module_free(m);
    tg_module_free(loaded);
    tg_module_free(mine);
}

/* ---------------------------------------------------------------- the timeout path */

/* Rank 1 never reaches the barrier (it hangs, as a crashed or stuck rank would). */
static int timeout_child(void) {
    if (tg_dist_init(&(tg_dist_opts){ .timeout = 1.5 }) != TG_OK) return 2;
    if (tg_dist_rank() == 1) {
        sleep(60);
        return 0;
    }
    tg_dist_barrier();
    return 0; /* not reached: the barrier aborts the job */
}

static int timeout_driver(const char *mpirun) {
    char self[4096], cmd[8300];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 1;
    self[n] = '\0';
    snprintf(cmd, sizeof cmd, "'%s' -np 2 --oversubscribe '%s' --timeout-child 2>&1", mpirun, self);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    FILE *p = popen(cmd, "r");
    if (!p) return 1;
    char out[16384] = "";
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    int status = pclose(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    const char *want = "tg_dist: rank 0 of 2: timed out after 1.5 s in barrier (another rank failed, exited or "
                       "skipped this collective; TG_DIST_TIMEOUT sets the limit); aborting every rank";
    bool ok = status != 0 && strstr(out, want) && secs < 30;
    printf("%s timeout: the job ended with status %d after %.1f s%s\n", ok ? "ok  " : "FAIL", status, secs,
           strstr(out, want) ? ", with the message" : "");
    if (!ok) printf("expected \"%s\"; the job printed:\n%s\n", want, out);
    return ok ? 0 : 1;
}

static bool ready(void) {
    if (!tg_test_device_ready()) return false;
    if (tg_dist_init(NULL) != TG_OK) {
        printf("tg_dist_init failed: %s\n", tg_last_error());
        return false;
    }
    rank_ = tg_dist_rank(), size_ = tg_dist_world_size();
    return true;
}

int harness_main(int argc, char **argv);
#define main harness_main
TG_TEST_MAIN_WITH(ready, &tg_case_world, &tg_case_collectives, &tg_case_broadcast_at_start,
                  &tg_case_mlp_matches_one_process, &tg_case_cnn_local_bn_matches_one_process,
                  &tg_case_cnn_sync_bn_matches_full_batch_bn, &tg_case_buckets_start_during_backward,
                  &tg_case_graph_change_is_reported, &tg_case_errors, &tg_case_layout_mismatch,
                  &tg_case_checkpoint_on_rank0_loaded_by_all)
#undef main

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--timeout-child") == 0) return timeout_child();
    if (argc > 2 && strcmp(argv[1], "--timeout-driver") == 0) return timeout_driver(argv[2]);
    int rc = harness_main(argc, argv);
    tg_dist_finalize();
    tg_dist_finalize(); /* a second time does nothing */
    /* MPI cannot start twice in a process. */
    const char *want = "tg_dist_init: called after tg_dist_finalize; MPI cannot start twice in a process";
    if (tg_dist_init(NULL) != TG_ERR_STATE || strcmp(tg_last_error(), want) != 0 || tg_dist_world_size() != 1) {
        printf("FAIL init after finalize: \"%s\"\n", tg_last_error());
        rc = 1;
    }
    return rc;
}
