/* Datasets, the sampler and the loader: tg_randperm is a seeded permutation; the
 * sampler's sharding equals torch's DistributedSampler (hand-computed indices, and
 * torch itself when python3 has it); batches come in sampler order with any number of
 * workers; errors in workers reach tg_loader_next; freeing mid-epoch joins cleanly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "tapegrad/data.h"

/* ------------------------------------------------------------- helpers */

static bool is_permutation(const int64_t *v, int64_t n) {
    char *seen = calloc((size_t)(n ? n : 1), 1);
    bool ok = seen != NULL;
    for (int64_t i = 0; i < n && ok; i++) {
        ok = v[i] >= 0 && v[i] < n && !seen[v[i]];
        if (ok) seen[v[i]] = 1;
    }
    free(seen);
    return ok;
}

static void perm_values(tg_tensor *t, int64_t *out) {
    double *v = tg_test_values(t);
    for (int64_t i = 0; v && i < tg_numel(t); i++) out[i] = (int64_t)v[i];
    free(v);
}

/* A dataset of n samples: x (n, 2) f32 rows [i, 100 + i], y (n) i32 labels i. */
static tg_dataset *counting_dataset(int64_t n, tg_device *dev) {
    float *x = malloc((size_t)n * 2 * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    for (int64_t i = 0; i < n; i++) x[2 * i] = (float)i, x[2 * i + 1] = (float)(100 + i), y[i] = (int32_t)i;
    tg_tensor *t[2] = { tg_from_f32(x, TG_SHAPE(n, 2), dev), tg_from_i32(y, TG_SHAPE(n), dev) };
    free(x);
    free(y);
    return tg_dataset_from_tensors(2, t);
}

/* The labels of every batch of one epoch, concatenated into out; returns how many. */
static int64_t epoch_labels(tg_loader *l, int64_t *out, int64_t max, int *batches) {
    tg_batch b;
    int64_t n = 0;
    *batches = 0;
    while (tg_loader_next(l, &b)) {
        tg_scope_begin();
        double *v = tg_test_values(b.y);
        for (int64_t i = 0; v && i < tg_numel(b.y) && n < max; i++) out[n++] = (int64_t)v[i];
        free(v);
        tg_scope_end();
        (*batches)++;
    }
    return n;
}

/* ------------------------------------------------------------- randperm */

TEST(randperm_is_a_seeded_permutation) {
    tg_device *dev = tg_test_device();
    int64_t a[1000], b[1000], c[1000];
    tg_manual_seed(7);
    tg_tensor *p = tg_randperm(1000, TG_I64, dev);
    CHECK(p && tg_dtype_of(p) == TG_I64 && tg_numel(p) == 1000 && tg_device_of(p) == dev);
    perm_values(p, a);
    CHECK(is_permutation(a, 1000));
    tg_manual_seed(7);
    perm_values(tg_randperm(1000, TG_F32, dev), b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    perm_values(tg_randperm(1000, TG_I32, tg_device_get("cpu")), c); /* the generator moved on */
    CHECK(is_permutation(c, 1000) && memcmp(a, c, sizeof a) != 0);
    int64_t fixed = 0;
    for (int i = 0; i < 1000; i++) fixed += a[i] == i;
    CHECK(fixed < 10); /* a random permutation has one fixed point on average */
    CHECK(tg_numel(tg_randperm(0, TG_I64, dev)) == 0);
    CHECK_ERROR(tg_randperm(-1, TG_I64, dev), "tg_randperm: n must be >= 0, got -1");
    CHECK_ERROR(tg_randperm(300, TG_U8, dev), "tg_randperm: n 300 is too large for u8 (at most 256)");
    CHECK_ERROR(tg_randperm(3, TG_I64, NULL), "tg_randperm: device is NULL");
}

/* ------------------------------------------------------------- sampler */

TEST(sampler_shards_as_distributed_sampler) {
    /* n = 10, 3 replicas: ceil(10/3) = 4 each, padded by wrapping: 0..9, 0, 1. */
    static const int64_t pad[3][4] = { { 0, 3, 6, 9 }, { 1, 4, 7, 0 }, { 2, 5, 8, 1 } };
    static const int64_t drop[3][3] = { { 0, 3, 6 }, { 1, 4, 7 }, { 2, 5, 8 } };
    int64_t out[8];
    for (int r = 0; r < 3; r++) {
        tg_sampler_opts o = { .num_replicas = 3, .rank = r };
        CHECK(tg_sampler_len(10, &o) == 4);
        CHECK(tg_sampler_indices(10, 0, &o, out, 8) == 4 && memcmp(out, pad[r], sizeof pad[r]) == 0);
        o.drop_last = true;
        CHECK(tg_sampler_len(10, &o) == 3);
        CHECK(tg_sampler_indices(10, 0, &o, out, 8) == 3 && memcmp(out, drop[r], sizeof drop[r]) == 0);
    }
    /* Fewer samples than replicas: the padding wraps more than once (torch repeats the list). */
    tg_sampler_opts o = { .num_replicas = 5, .rank = 4 };
    CHECK(tg_sampler_indices(2, 0, &o, out, 8) == 1 && out[0] == 0);
    o.rank = 3;
    CHECK(tg_sampler_indices(2, 0, &o, out, 8) == 1 && out[0] == 1);
    o.drop_last = true;
    CHECK(tg_sampler_len(2, &o) == 0 && tg_sampler_indices(2, 0, &o, NULL, 0) == 0);
    CHECK(tg_sampler_indices(4, 0, NULL, out, 8) == 4 && out[0] == 0 && out[3] == 3);
}

TEST(sampler_shuffle_is_seed_plus_epoch) {
    int64_t a[100], b[100], c[100];
    tg_sampler_opts o = { .shuffle = true, .seed = 5 };
    CHECK(tg_sampler_indices(100, 1, &o, a, 100) == 100 && is_permutation(a, 100));
    CHECK(tg_sampler_indices(100, 2, &o, b, 100) == 100 && is_permutation(b, 100));
    CHECK(memcmp(a, b, sizeof a) != 0);
    o.seed = 6; /* set_epoch's rule: the generator is seeded with seed + epoch */
    CHECK(tg_sampler_indices(100, 0, &o, c, 100) == 100 && memcmp(a, c, sizeof a) == 0);
    tg_manual_seed(1); /* the process-wide generator plays no part */
    o.seed = 5;
    CHECK(tg_sampler_indices(100, 1, &o, c, 100) == 100 && memcmp(a, c, sizeof a) == 0);
}

TEST(sampler_ranks_cover_every_sample_once) {
    enum { N = 23, R = 4 };
    int count[N] = { 0 }, total = 0;
    for (int r = 0; r < R; r++) {
        int64_t out[8];
        tg_sampler_opts o = { .shuffle = true, .seed = 9, .num_replicas = R, .rank = r };
        int64_t n = tg_sampler_indices(N, 3, &o, out, 8);
        CHECK(n == 6);
        for (int64_t i = 0; i < n; i++) count[out[i]]++, total++;
    }
    int missing = 0, twice = 0;
    for (int i = 0; i < N; i++) missing += count[i] == 0, twice += count[i] == 2;
    CHECK(total == 24 && missing == 0 && twice == 1); /* 24 = 23 + one padded repeat */
}

TEST(sampler_errors) {
    int64_t out[4];
    tg_sampler_opts o = { .num_replicas = 2, .rank = 2 };
    CHECK_ERROR(tg_sampler_len(10, &o), "tg_sampler_len: invalid rank 2, rank should be in the interval [0, 1]");
    o.rank = -1;
    CHECK_ERROR(tg_sampler_indices(10, 0, &o, out, 4),
                "tg_sampler_indices: invalid rank -1, rank should be in the interval [0, 1]");
    o = (tg_sampler_opts){ .num_replicas = -2 };
    CHECK_ERROR(tg_sampler_len(10, &o), "tg_sampler_len: num_replicas must be >= 1, got -2");
    CHECK_ERROR(tg_sampler_len(-1, NULL), "tg_sampler_len: n must be >= 0, got -1");
    CHECK_ERROR(tg_sampler_indices(10, 0, NULL, out, 4), "tg_sampler_indices: out holds 4 indices, the epoch has 10");
}

/* torch.utils.data.DistributedSampler itself (shuffle off: the permutations come from
 * different generators) for a grid of n, replicas, rank and drop_last. */
TEST(sampler_matches_torch) {
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) SKIP("no python3 with torch");
    char path[] = "/tmp/tg_sampler_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) SKIP("no temp file");
    FILE *f = fdopen(fd, "w");
    fprintf(f, "import sys\nfrom torch.utils.data import DistributedSampler\n"
               "for n in (1, 2, 7, 10, 16):\n"
               " for R in (1, 2, 3, 5):\n"
               "  for dl in (0, 1):\n"
               "   for r in range(R):\n"
               "    s = DistributedSampler(range(n), num_replicas=R, rank=r, shuffle=False, drop_last=bool(dl))\n"
               "    print(n, R, dl, r, len(s), *list(s))\n");
    fclose(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    int lines = 0;
    long long n, R, dl, r, len;
    while (p && fscanf(p, "%lld %lld %lld %lld %lld", &n, &R, &dl, &r, &len) == 5) {
        int64_t ours[16], theirs[16];
        for (long long i = 0; i < len; i++) {
            long long v;
            if (fscanf(p, "%lld", &v) == 1) theirs[i] = v;
        }
        tg_sampler_opts o = { .num_replicas = R, .rank = r, .drop_last = dl };
        int64_t got = tg_sampler_indices(n, 0, &o, ours, 16);
        if (got != len || memcmp(ours, theirs, (size_t)len * sizeof *ours) != 0) {
            FAIL_("n %lld replicas %lld rank %lld drop_last %lld: %lld indices, torch %lld", n, R, r, dl,
                  (long long)got, len);
        }
        lines++;
    }
    if (p) pclose(p);
    remove(path);
    CHECK(lines > 50);
}

/* ------------------------------------------------------------- loader */

TEST(loader_batches_in_order_with_a_partial_last_one) {
    tg_device *dev = tg_test_device();
    tg_dataset *ds = counting_dataset(10, dev);
    tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 4, .device = dev });
    CHECK(l && tg_loader_len(l) == 3);
    tg_batch b;
    int64_t sizes[3] = { 4, 4, 2 };
    for (int k = 0; k < 3; k++) {
        CHECK(tg_loader_next(l, &b));
        CHECK(b.index == k && b.epoch == 0 && b.size == sizes[k] && b.n_fields == 2);
        CHECK(tg_dtype_of(b.y) == TG_I64 && tg_dtype_of(b.x) == TG_F32 && tg_device_of(b.x) == dev);
        CHECK(tg_ndim(b.x) == 2 && tg_size(b.x, 0) == sizes[k] && tg_size(b.x, 1) == 2 && tg_numel(b.y) == sizes[k]);
        double *x = tg_test_values(b.x), *y = tg_test_values(b.y);
        for (int i = 0; x && y && i < sizes[k]; i++) {
            CHECK(y[i] == 4 * k + i);
            CHECK(x[2 * i] == 4 * k + i && x[2 * i + 1] == 100 + 4 * k + i);
        }
        free(x);
        free(y);
    }
    tg_clear_error();
    CHECK(!tg_loader_next(l, &b) && tg_last_status() == TG_OK && tg_loader_epoch(l) == 1);
    CHECK(tg_loader_next(l, &b) && b.epoch == 1 && b.index == 0); /* the next call starts epoch 1 */
    tg_loader_stats st;
    CHECK(tg_loader_get_stats(l, &st) == TG_OK && st.batches == 4 && st.samples == 14);
    CHECK(st.wait_seconds >= 0 && st.wait_seconds <= st.total_seconds);
    tg_loader_free(l);
    tg_dataset_free(ds);
}

TEST(loader_drop_last) {
    tg_dataset *ds = counting_dataset(10, tg_device_get("cpu"));
    tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 4, .drop_last = true, .num_workers = 2 });
    int64_t labels[16];
    int batches;
    CHECK(tg_loader_len(l) == 2);
    CHECK(epoch_labels(l, labels, 16, &batches) == 8 && batches == 2 && labels[7] == 7);
    tg_loader_free(l);
    tg_dataset_free(ds);
}

/* The same seed gives the same batches with 0, 1 and 3 workers; epochs differ; each
 * epoch is the sampler's order. */
TEST(loader_shuffle_is_deterministic_across_workers) {
    enum { N = 50 };
    tg_dataset *ds = counting_dataset(N, tg_device_get("cpu"));
    int64_t seen[3][2][N];
    int workers[3] = { 0, 1, 3 };
    for (int w = 0; w < 3; w++) {
        tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 7, .shuffle = true, .seed = 3,
                                                           .num_workers = workers[w], .prefetch = w == 2 ? 2 : 0 });
        for (int e = 0; e < 2; e++) {
            int batches;
            CHECK(epoch_labels(l, seen[w][e], N, &batches) == N && batches == 8);
        }
        tg_loader_free(l);
    }
    int64_t expect[N];
    for (int e = 0; e < 2; e++) {
        CHECK(tg_sampler_indices(N, e, &(tg_sampler_opts){ .shuffle = true, .seed = 3 }, expect, N) == N);
        for (int w = 0; w < 3; w++) CHECK(memcmp(seen[w][e], expect, sizeof expect) == 0);
    }
    CHECK(memcmp(seen[0][0], seen[0][1], sizeof seen[0][0]) != 0);
    tg_dataset_free(ds);
}

/* Workers on the CPU, batches on the device under test (uploaded, the next one ahead):
 * sampler order, over two epochs. */
TEST(loader_uploads_to_the_device_in_order) {
    tg_device *dev = tg_test_device();
    tg_dataset *ds = counting_dataset(50, tg_device_get("cpu"));
    tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 6, .shuffle = true, .seed = 4,
                                                       .num_workers = 2, .device = dev });
    int64_t expect[50], got[50];
    for (int e = 0; e < 2; e++) {
        tg_batch b;
        int64_t n = 0;
        while (tg_loader_next(l, &b)) {
            CHECK(tg_device_of(b.x) == dev && tg_device_of(b.y) == dev && b.epoch == e);
            double *v = tg_test_values(b.y);
            for (int64_t i = 0; v && i < b.size && n < 50; i++) got[n++] = (int64_t)v[i];
            free(v);
        }
        CHECK(n == 50 && tg_last_status() == TG_OK);
        tg_sampler_indices(50, e, &(tg_sampler_opts){ .shuffle = true, .seed = 4 }, expect, 50);
        CHECK(memcmp(got, expect, sizeof got) == 0);
    }
    tg_loader_free(l);
    tg_dataset_free(ds);
}

TEST(loader_shards_cover_the_dataset) {
    tg_dataset *ds = counting_dataset(11, tg_device_get("cpu"));
    int count[11] = { 0 };
    for (int r = 0; r < 2; r++) {
        tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 4, .shuffle = true, .seed = 1,
                                                           .num_workers = 1, .num_replicas = 2, .rank = r });
        int64_t labels[16];
        int batches;
        CHECK(tg_loader_len(l) == 2 && epoch_labels(l, labels, 16, &batches) == 6);
        for (int i = 0; i < 6; i++) count[labels[i]]++;
        tg_loader_free(l);
    }
    for (int i = 0; i < 11; i++) CHECK(count[i] >= 1);
    tg_dataset_free(ds);
}

TEST(loader_set_epoch) {
    tg_dataset *ds = counting_dataset(20, tg_device_get("cpu"));
    tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 20, .shuffle = true, .seed = 2,
                                                       .num_workers = 2 });
    CHECK(tg_loader_set_epoch(l, 5) == TG_OK && tg_loader_epoch(l) == 5);
    int64_t got[20], expect[20];
    int batches;
    CHECK(epoch_labels(l, got, 20, &batches) == 20);
    tg_sampler_indices(20, 5, &(tg_sampler_opts){ .shuffle = true, .seed = 2 }, expect, 20);
    CHECK(memcmp(got, expect, sizeof got) == 0 && tg_loader_epoch(l) == 6);
    tg_batch b;
    CHECK(tg_loader_next(l, &b));
    CHECK_ERROR(tg_loader_set_epoch(l, 0), "tg_loader_set_epoch: epoch 6 is under way (1 of 1 batches handed out); "
                                           "set the epoch before its first batch");
    tg_loader_free(l);
    tg_dataset_free(ds);
}

/* ------------------------------------------------------------- errors and shutdown */

typedef struct {
    int64_t fail_at;   /* index whose get fails, or -1 */
    int64_t odd_at;    /* index with a differently shaped image, or -1 */
    int sleep_us;
} cb_ctx;

static tg_status cb_get(void *vctx, int64_t index, tg_tensor **out) {
    cb_ctx *c = vctx;
    if (c->sleep_us) nanosleep(&(struct timespec){ 0, c->sleep_us * 1000L }, NULL);
    if (index == c->fail_at) return tg_add(NULL, NULL) ? TG_OK : tg_last_status();
    int64_t side = index == c->odd_at ? 3 : 2;
    out[0] = tg_full(TG_F32, TG_SHAPE(1, side, side), (double)index, tg_device_get("cpu"));
    out[1] = tg_scalar(TG_I32, (double)index, tg_device_get("cpu"));
    return TG_OK;
}

static tg_dataset *cb_dataset(cb_ctx *c, int64_t n) {
    return tg_dataset_from_callbacks(&(tg_dataset_callbacks){ .length = n, .n_fields = 2, .get = cb_get, .ctx = c });
}

TEST(loader_reports_worker_errors) {
    for (int workers = 0; workers <= 2; workers += 2) {
        cb_ctx c = { .fail_at = 13, .odd_at = -1 };
        tg_dataset *ds = cb_dataset(&c, 20);
        tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 4, .num_workers = workers });
        tg_batch b;
        bool ok = true;
        for (int k = 0; k < 3; k++) CHECK(tg_loader_next(l, &b) && tg_ndim(b.x) == 4 && tg_ndim(b.y) == 1);
        CHECK_ERROR(ok = tg_loader_next(l, &b), "tg_loader_next: sample 13 (batch 3 of epoch 0): tg_add: a is NULL");
        CHECK(!ok && tg_last_status() == TG_ERR_INVALID);
        CHECK_ERROR(tg_loader_next(l, &b), "tg_loader_next: the loader stopped at an earlier error; make a new one");
        tg_loader_free(l);
        tg_dataset_free(ds);
    }
}

static tg_tensor *failing_transform(tg_tensor *x, uint64_t seed, void *ctx) {
    (void)seed, (void)ctx;
    return tg_item(tg_sum(x, TG_ALL, false)) > 20 ? tg_reshape(x, TG_SHAPE(5)) : x;
}

TEST(loader_reports_transform_errors_and_shape_mismatch) {
    cb_ctx c = { .fail_at = -1, .odd_at = -1 };
    tg_dataset *ds = cb_dataset(&c, 8);
    tg_transform *tf = tg_transform_custom(failing_transform, NULL);
    tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 2, .num_workers = 1, .transforms = &tf,
                                                       .n_transforms = 1 });
    tg_batch b;
    CHECK(tg_loader_next(l, &b) && tg_loader_next(l, &b) && tg_loader_next(l, &b)); /* samples 0..5: sums <= 20 */
    CHECK_ERROR(tg_loader_next(l, &b), "tg_loader_next: sample 6 (batch 3 of epoch 0): transform 0 (custom): "
                                       "tg_reshape: cannot view [1,2,2] (4 elements) as [5]");
    tg_loader_free(l);
    c.odd_at = 5;
    l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 4, .num_workers = 2 });
    CHECK(tg_loader_next(l, &b));
    CHECK_ERROR(tg_loader_next(l, &b), "tg_loader_next: sample 5 (batch 1 of epoch 0): field 0 is f32 [1,3,3], the "
                                       "batch's first sample has f32 [1,2,2] (a batch stacks samples of one shape "
                                       "and dtype)");
    tg_loader_free(l);
    tg_transform_free(tf);
    tg_dataset_free(ds);
}

TEST(loader_free_mid_epoch) {
    int64_t live = tg_live_tensors();
    cb_ctx c = { .fail_at = -1, .odd_at = -1, .sleep_us = 200 };
    tg_dataset *ds = cb_dataset(&c, 400);
    tg_scope_begin();
    tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 4, .num_workers = 3, .prefetch = 4 });
    tg_batch b;
    CHECK(tg_loader_next(l, &b) && tg_loader_next(l, &b));
    tg_loader_free(l); /* workers busy, ring full: must join, free the ring, not hang */
    CHECK(tg_numel(b.x) == 16); /* handed-out batches stay valid */
    tg_scope_end();
    /* A loader freed before its first batch, and one without workers. */
    tg_loader_free(tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 4, .num_workers = 2 }));
    tg_loader_free(tg_loader_new(ds, NULL));
    tg_loader_free(NULL);
    CHECK(tg_live_tensors() == live);
    tg_dataset_free(ds);
}

/* A batch asked for before a worker could make it counts as late, and the wait is timed. */
TEST(loader_stats_count_late_batches) {
    cb_ctx c = { .fail_at = -1, .odd_at = -1, .sleep_us = 20000 }; /* 80 ms a batch */
    tg_dataset *ds = cb_dataset(&c, 8);
    tg_loader *l = tg_loader_new(ds, &(tg_loader_opts){ .batch_size = 4, .num_workers = 1 });
    tg_batch b;
    CHECK(tg_loader_next(l, &b));
    tg_loader_stats st;
    CHECK(tg_loader_get_stats(l, &st) == TG_OK && st.late == 1 && st.batches == 1 && st.samples == 4);
    CHECK(st.wait_seconds > 0.02 && st.wait_seconds <= st.total_seconds);
    CHECK_ERROR(tg_loader_get_stats(l, NULL), "tg_loader_get_stats: out is NULL");
    tg_loader_free(l);
    tg_dataset_free(ds);
}

TEST(loader_and_dataset_errors) {
    tg_device *cpu = tg_device_get("cpu");
    tg_dataset *ds = counting_dataset(10, cpu);
    CHECK_ERROR(tg_loader_new(NULL, NULL), "tg_loader_new: dataset is NULL");
    CHECK_ERROR(tg_loader_new(ds, &(tg_loader_opts){ .batch_size = -1 }), "tg_loader_new: batch_size must be >= 1, got -1");
    CHECK_ERROR(tg_loader_new(ds, &(tg_loader_opts){ .num_workers = -1 }),
                "tg_loader_new: num_workers and prefetch must be >= 0, got -1 and 0");
    CHECK_ERROR(tg_loader_new(ds, &(tg_loader_opts){ .n_transforms = 1 }),
                "tg_loader_new: expected n_transforms >= 0 transforms, got 1 and NULL");
    CHECK_ERROR(tg_loader_new(ds, &(tg_loader_opts){ .transforms = (tg_transform *[]){ NULL }, .n_transforms = 1 }),
                "tg_loader_new: transform 0 is NULL");
    CHECK_ERROR(tg_loader_new(ds, &(tg_loader_opts){ .num_replicas = 2, .rank = 3 }),
                "tg_loader_new: invalid rank 3, rank should be in the interval [0, 1]");
    CHECK_ERROR(tg_loader_next(NULL, &(tg_batch){ 0 }), "tg_loader_next: loader is NULL");
    CHECK_ERROR(tg_dataset_from_tensors(0, NULL), "tg_dataset_from_tensors: expected 1 to 8 tensors, got 0");
    tg_tensor *a = tg_zeros(TG_F32, TG_SHAPE(3, 2), cpu), *s = tg_scalar(TG_F32, 1, cpu);
    CHECK_ERROR(tg_dataset_from_tensors(2, (tg_tensor *[]){ a, tg_zeros(TG_I32, TG_SHAPE(4), cpu) }),
                "tg_dataset_from_tensors: size mismatch between tensors: tensor 0 has 3 samples, tensor 1 has 4");
    CHECK_ERROR(tg_dataset_from_tensors(1, &s), "tg_dataset_from_tensors: tensor 0 is 0-d (it needs a first axis to index)");
    CHECK_ERROR(tg_dataset_from_callbacks(&(tg_dataset_callbacks){ .length = 3, .n_fields = 1 }),
                "tg_dataset_from_callbacks: get is NULL");
    CHECK_ERROR(tg_dataset_get(ds, 10, (tg_tensor *[2]){ 0 }),
                "tg_dataset_get: index 10 is out of range for a dataset of 10 samples");
    tg_tensor *f[2];
    CHECK(tg_dataset_get(ds, 3, f) == TG_OK && tg_item(f[1]) == 3 && tg_ndim(f[0]) == 1);
    CHECK(tg_dataset_len(ds) == 10 && tg_dataset_num_fields(ds) == 2);
    tg_dataset_free(ds);
    tg_dataset_free(NULL);
}

TG_TEST_MAIN(&tg_case_randperm_is_a_seeded_permutation, &tg_case_sampler_shards_as_distributed_sampler,
             &tg_case_sampler_shuffle_is_seed_plus_epoch, &tg_case_sampler_ranks_cover_every_sample_once,
             &tg_case_sampler_errors, &tg_case_sampler_matches_torch,
             &tg_case_loader_batches_in_order_with_a_partial_last_one, &tg_case_loader_drop_last,
             &tg_case_loader_shuffle_is_deterministic_across_workers, &tg_case_loader_uploads_to_the_device_in_order,
             &tg_case_loader_shards_cover_the_dataset,
             &tg_case_loader_set_epoch, &tg_case_loader_reports_worker_errors,
             &tg_case_loader_reports_transform_errors_and_shape_mismatch, &tg_case_loader_free_mid_epoch,
             &tg_case_loader_stats_count_late_batches,
             &tg_case_loader_and_dataset_errors)
