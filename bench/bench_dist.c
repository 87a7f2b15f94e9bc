/* Data-parallel scaling: training steps of the notes' CNN (Fashion-MNIST 28x28) and of
 * ResNet-20 (CIFAR 32x32) through tg_ddp, one thread a rank, at a fixed batch per rank
 * (weak scaling, as DDP is used). Prints the step time, the time in all-reduce and the
 * share of it hidden behind backward, then, from the measured bytes per step, the ring
 * all-reduce model 2(N-1)/N * bytes / bandwidth + 2(N-1) * latency (per bucket) for N =
 * 2..64 machines on 10 and 100 Gbit/s links, against this rank's compute time.
 * Usage: mpirun -np 1|2 bench_dist [--steps S] [--warmup W] [--batch B] [--model cnn|resnet20]
 *        [--threads T] [--bucket-mb MB]   (one thread a rank by default; buckets of 25 MiB,
 *        the first 1 MiB, as tg_ddp's and PyTorch's defaults) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tapegrad.h"
#ifdef TG_HAVE_MPI
#include <mpi.h>
#endif

typedef struct {
    const char *name;
    tg_module *(*make)(tg_device *dev);
    int c, hw;
} model;

/* conv5x5 1->16 pad 2, BN, ReLU, maxpool 2; conv5x5 16->32 pad 2, BN, ReLU, maxpool 2;
 * linear 1568->10. x (B, 1, 28, 28). */
static tg_module *cnn_make(tg_device *dev) {
    tg_max_pool2d_opts p = { .kernel_size = 2 };
    return tg_sequential(tg_conv2d_new(1, 16, 5, &(tg_conv_layer_opts){ .padding = 2 }, dev),
                         tg_batchnorm2d_new(16, NULL, dev), tg_relu_new(), tg_max_pool2d_new(&p),
                         tg_conv2d_new(16, 32, 5, &(tg_conv_layer_opts){ .padding = 2 }, dev),
                         tg_batchnorm2d_new(32, NULL, dev), tg_relu_new(), tg_max_pool2d_new(&p),
                         tg_flatten_new(1, -1), tg_linear_new(1568, 10, NULL, dev));
}

/* ResNet-20 (He et al. 2016, CIFAR): conv3x3 3->16, BN, ReLU; 3 stages of 3 BasicBlocks
 * at 16, 32, 64 channels (stride 2 opening stages 2 and 3); global average pool; fc 64->10. */
static tg_module *resnet20_make(tg_device *dev) {
    tg_module *net = tg_sequential(tg_conv2d_new(3, 16, 3, &(tg_conv_layer_opts){ .padding = 1, .no_bias = true }, dev),
                                   tg_batchnorm2d_new(16, NULL, dev), tg_relu_new());
    int64_t in = 16;
    char name[16];
    for (int stage = 0; stage < 3; stage++) { /* "layer1.0.conv1.weight", as torchvision names them */
        tg_module *blocks[3];
        for (int b = 0; b < 3; b++) {
            int64_t out = 16 << stage;
            blocks[b] = tg_basic_block_new(in, out, &(tg_resnet_block_opts){ .stride = stage > 0 && b == 0 ? 2 : 1 }, dev);
            in = out;
        }
        snprintf(name, sizeof name, "layer%d", stage + 1);
        if (tg_sequential_append(net, name, tg_sequential_new(3, blocks)) != TG_OK) return NULL;
    }
    if (tg_sequential_append(net, "pool", tg_adaptive_avg_pool2d_new(1, 1)) != TG_OK ||
        tg_sequential_append(net, "flatten", tg_flatten_new(1, -1)) != TG_OK ||
        tg_sequential_append(net, "fc", tg_linear_new(64, 10, NULL, dev)) != TG_OK)
        return NULL;
    return net;
}

static double max_over_ranks(double v) {
#ifdef TG_HAVE_MPI
    if (tg_dist_world_size() > 1) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
#endif
    return v;
}

/* Seconds one all-reduce of bytes (f32) takes here, median of reps. */
static double time_allreduce(int64_t bytes, int reps) {
    tg_tensor *t = tg_zeros(TG_F32, TG_SHAPE(bytes / 4), tg_device_get("cpu"));
    double v[32];
    for (int r = 0; r < reps; r++) {
        tg_dist_barrier();
        double t0 = bench_now();
        tg_dist_all_reduce_(t, TG_DIST_SUM);
        v[r] = max_over_ranks(bench_now() - t0);
    }
    return bench_median(v, reps);
}

typedef struct {
    double fwd, bwd, wait, opt, step; /* seconds a step (medians; step: slowest rank) */
    tg_ddp_stats st;
} result;

static int run(const model *mdl, int batch, int steps, int warmup, double bucket_mb, result *res) {
    tg_device *dev = tg_device_get("cpu");
    tg_manual_seed(1 + (uint64_t)tg_dist_rank()); /* each rank its own data; rank 0's weights */
    tg_module *net = mdl->make(dev);
    tg_ddp *ddp = net ? tg_ddp_new(net, &(tg_ddp_opts){ .bucket_cap_mb = bucket_mb }) : NULL;
    tg_named ps = { 0 };
    tg_optim *opt = ddp && tg_module_parameters(net, true, &ps) == TG_OK ? tg_adam_new(ps.n, ps.tensors, NULL) : NULL;
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(batch, mdl->c, mdl->hw, mdl->hw), dev);
    int32_t *lab = malloc((size_t)batch * sizeof *lab);
    for (int i = 0; i < batch; i++) lab[i] = (int32_t)((i * 7 + tg_dist_rank()) % 10);
    tg_tensor *y = tg_from_i32(lab, TG_SHAPE(batch), dev);
    free(lab);
    if (!opt || !x || !y) {
        fprintf(stderr, "bench_dist: %s\n", tg_last_error());
        return 1;
    }
    double *v = calloc((size_t)steps * 5, sizeof *v);
    for (int s = -warmup; s < steps; s++) {
        if (s == 0) tg_ddp_get_stats(ddp, &res->st, true);
        tg_dist_barrier();
        tg_scope_begin();
        double t0 = bench_now();
        tg_optim_zero_grad(opt);
        tg_tensor *loss = tg_cross_entropy(tg_ddp_forward(ddp, x), y);
        tg_item(loss); /* the forward has finished */
        double t1 = bench_now();
        tg_status st = tg_backward(loss);
        double t2 = bench_now();
        if (st == TG_OK) st = tg_ddp_wait(ddp);
        double t3 = bench_now();
        if (st == TG_OK) st = tg_optim_step(opt);
        double t4 = bench_now();
        tg_scope_end();
        if (st != TG_OK) {
            fprintf(stderr, "bench_dist: %s\n", tg_last_error());
            return 1;
        }
        if (s < 0) continue;
        v[s] = t1 - t0, v[steps + s] = t2 - t1, v[2 * steps + s] = t3 - t2, v[3 * steps + s] = t4 - t3;
        v[4 * steps + s] = max_over_ranks(t4 - t0);
    }
    tg_ddp_get_stats(ddp, &res->st, false);
    res->fwd = bench_median(v, steps), res->bwd = bench_median(v + steps, steps);
    res->wait = bench_median(v + 2 * steps, steps), res->opt = bench_median(v + 3 * steps, steps);
    res->step = bench_median(v + 4 * steps, steps);
    free(v);
    tg_optim_free(opt);
    tg_named_free(&ps);
    tg_ddp_free(ddp);
    tg_module_free(net);
    return 0;
}

/* The ring all-reduce model for N machines, against this rank's compute time. */
static void print_model(const result *r, double compute) {
    const double gbits[2] = { 10, 100 }, lat[2] = { 25e-6, 2e-6 };
    double bytes = (double)r->st.bytes_per_step;
    int buckets = r->st.buckets;
    printf("  ring all-reduce model, %.0f bytes in %d bucket%s a step; latency a hop assumed 25 us on 10 Gbit/s "
           "(TCP over Ethernet), 2 us on 100 Gbit/s (RDMA)\n", bytes, buckets, buckets == 1 ? "" : "s");
    printf("  %4s | %-34s | %-34s\n", "N", "10 Gbit/s: all-reduce, efficiency", "100 Gbit/s: all-reduce, efficiency");
    printf("  %4s | %11s %11s %10s | %11s %11s %10s\n", "", "ms", "no overlap", "overlap", "ms", "no overlap",
           "overlap");
    for (int n = 2; n <= 64; n *= 2) {
        printf("  %4d |", n);
        for (int k = 0; k < 2; k++) {
            double t = 2.0 * (n - 1) / n * bytes / (gbits[k] * 1e9 / 8) + 2.0 * (n - 1) * lat[k] * buckets;
            /* Efficiency of a step: compute over compute + exposed communication; with
             * overlap only what outlasts backward is exposed. */
            double exposed = t - r->bwd > 0 ? t - r->bwd : 0;
            printf(" %11.3f %10.0f%% %9.0f%% |", 1e3 * t, 100 * compute / (compute + t), 100 * compute / (compute + exposed));
        }
        printf("\n");
    }
    for (int k = 0; k < 2; k++) {
        double t64 = 2.0 * 63 / 64 * bytes / (gbits[k] * 1e9 / 8) + 2.0 * 63 * lat[k] * buckets;
        printf("  %.0f Gbit/s: at 64 machines the all-reduce takes %.3f ms: it hides behind backward while "
               "backward takes longer (%.1f ms here); a device %.0fx faster than this rank would be bound by the link\n",
               gbits[k], 1e3 * t64, 1e3 * r->bwd, r->bwd / t64);
    }
}

int main(int argc, char **argv) {
    int steps = 20, warmup = 3, batch = 32, threads = 1;
    double bucket_mb = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--bucket-mb") && i + 1 < argc) bucket_mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) steps = 5, warmup = 1;
        else {
            fprintf(stderr, "usage: %s [--steps S] [--warmup W] [--batch B] [--model cnn|resnet20] [--threads T] "
                    "[--bucket-mb MB] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (steps < 1 || steps > 1000 || warmup < 0 || batch < 2 || threads < 1 || bucket_mb < 0) {
        fprintf(stderr, "bench_dist: bad --steps, --warmup, --batch, --threads or --bucket-mb\n");
        return 2;
    }
    if (tg_dist_init(NULL) != TG_OK) {
        fprintf(stderr, "bench_dist: %s\n", tg_last_error());
        return 1;
    }
    tg_set_num_threads(threads);
    int rank = tg_dist_rank(), size = tg_dist_world_size();
    const model models[] = { { "cnn", cnn_make, 1, 28 }, { "resnet20", resnet20_make, 3, 32 } };
    if (rank == 0)
        printf("bench_dist: %d rank%s x %d thread%s, batch %d a rank (global %d), %d steps after %d warm-up\n", size,
               size == 1 ? "" : "s", threads, threads == 1 ? "" : "s", batch, batch * size, steps, warmup);
    int rc = 0;
    for (size_t k = 0; k < sizeof models / sizeof *models && rc == 0; k++) {
        if (only && strcmp(only, models[k].name)) continue;
        result r = { 0 };
        if ((rc = run(&models[k], batch, steps, warmup, bucket_mb, &r)) != 0) break;
        double ar = r.st.steps ? r.st.allreduce_s / (double)r.st.steps : 0;
        double exposed = r.st.steps ? r.st.wait_s / (double)r.st.steps : 0;
        double measured = size > 1 ? time_allreduce(r.st.bytes_per_step, 9) : 0;
        if (rank != 0) continue;
        printf("%s: %lld parameters (%lld bytes of gradients, %d bucket%s)\n", models[k].name,
               (long long)(r.st.bytes_per_step / 4), (long long)r.st.bytes_per_step, r.st.buckets,
               r.st.buckets == 1 ? "" : "s");
        printf("  step %.2f ms (%.0f samples/s global): forward %.2f, backward %.2f, wait %.2f, optimizer %.2f ms\n",
               1e3 * r.step, batch * size / r.step, 1e3 * r.fwd, 1e3 * r.bwd, 1e3 * r.wait, 1e3 * r.opt);
        if (size > 1)
            printf("  all-reduce %.3f ms a step (first bucket's start to last one's end), %.3f ms of it exposed in "
                   "tg_ddp_wait: %.0f%% overlapped with backward; %lld of %lld buckets started during backward; a "
                   "lone all-reduce of the same bytes takes %.3f ms here (%.2f GB/s)\n",
                   1e3 * ar, 1e3 * exposed, ar > 0 ? 100 * (1 - exposed / ar > 0 ? 1 - exposed / ar : 0) : 0,
                   (long long)r.st.buckets_early, (long long)r.st.steps * r.st.buckets, 1e3 * measured,
                   measured > 0 ? (double)r.st.bytes_per_step / measured / 1e9 : 0);
        printf("{\"bench\": \"dist\", \"model\": \"%s\", \"ranks\": %d, \"batch_per_rank\": %d, \"step_ms\": %.4f, "
               "\"samples_per_s\": %.1f, \"backward_ms\": %.4f, \"allreduce_ms\": %.4f, \"exposed_ms\": %.4f, "
               "\"bytes_per_step\": %lld}\n", models[k].name, size, batch, 1e3 * r.step, batch * size / r.step,
               1e3 * r.bwd, 1e3 * ar, 1e3 * exposed, (long long)r.st.bytes_per_step);
        print_model(&r, r.fwd + r.bwd + r.opt);
    }
    tg_dist_finalize();
    return rc;
}
