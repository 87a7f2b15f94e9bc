/* The loader: worker threads fetch samples, run the transform list and stack them into
 * host batches ahead of the training loop; tg_loader_next hands them out in sampler
 * order (a reorder ring of `prefetch` slots) and uploads them on the calling thread.
 * Lock order: one mutex guards the epoch state and the ring; workers build batches
 * outside it, from a copy of their indices, and store them only if the epoch they were
 * claimed for (its generation) is still current. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"
#include "tapegrad/data.h"

/* A made batch: host tensors (unscoped refs) or the failure's status and message. */
typedef struct {
    bool ready;
    int64_t batch;
    int64_t size;
    tg_tensor *fields[TG_SAMPLE_MAX_FIELDS];
    tg_status st;
    char *msg;
} slot;

struct tg_loader {
    tg_dataset *ds;
    tg_loader_opts o;          /* batch_size and prefetch resolved */
    tg_transform **tfs;
    tg_device *dev;
    int n_fields;
    int64_t per_rank, n_batches;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    pthread_t *threads;
    int n_threads;
    int64_t *idx_bufs;         /* batch_size indices for each worker (or the caller, without) */
    int next_worker;           /* which buffer the next worker to start takes */
    bool stop;
    tg_status broken;          /* not TG_OK after a failed batch */
    /* the epoch in flight */
    uint64_t gen;
    int64_t epoch, *indices, next_claim, consumed;
    slot *ring;                /* batch k lives in ring[k % depth] */
    int depth;
    slot ahead;                /* the next batch, already uploaded (device refs) */
    /* statistics */
    double wait_s, t0;
    int64_t batches, samples, late;
};

static double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void slot_clear(slot *s) {
    for (int f = 0; f < TG_SAMPLE_MAX_FIELDS; f++)
        if (s->fields[f]) tg_tensor_decref(s->fields[f]);
    free(s->msg);
    *s = (slot){ 0 };
}

/* ------------------------------------------------------------- making a batch */

/* torch's default_collate: integer labels become i64. */
static tg_dtype collated(tg_dtype d) { return d == TG_I32 ? TG_I64 : d; }

/* Copies sample s's field into its row of the batch tensor, made on the first sample. */
static tg_status collate(slot *out, int f, int64_t s, int64_t count, tg_tensor *x) {
    char b1[128], b2[128];
    tg_tensor *b = out->fields[f];
    if (!b) {
        int64_t shape[TG_MAX_DIMS];
        if (x->ndim >= TG_MAX_DIMS)
            return tg_error(TG_ERR_SHAPE, "field %d has %d axes, a batch can stack at most %d", f, x->ndim,
                            TG_MAX_DIMS - 1);
        shape[0] = count;
        memcpy(shape + 1, x->shape, (size_t)x->ndim * sizeof *shape);
        b = out->fields[f] = tg_tensor_new_unscoped(collated(x->dtype), x->ndim + 1, shape, tg_cpu_device());
        if (!b) return tg_last_status();
    } else if (collated(x->dtype) != b->dtype || !tg_shape_equal(x->ndim, x->shape, b->ndim - 1, b->shape + 1)) {
        return tg_error(TG_ERR_SHAPE, "field %d is %s %s, the batch's first sample has %s %s (a batch stacks "
                        "samples of one shape and dtype)", f, tg_dtype_name(x->dtype),
                        tg_shape_str(b1, x->ndim, x->shape), tg_dtype_name(b->dtype),
                        tg_shape_str(b2, b->ndim - 1, b->shape + 1));
    }
    if (x->dtype != b->dtype && !(x = tg_cast(x, b->dtype))) return tg_last_status();
    size_t row = (size_t)tg_shape_numel(x->ndim, x->shape) * tg_elsize(b->dtype);
    char *dst = (char *)b->storage->data + (size_t)b->offset * tg_elsize(b->dtype) + (size_t)s * row;
    return tg_copy_to_host(x, dst, row ? row : 1);
}

static tg_status make_sample(const tg_loader *l, int64_t epoch, int64_t s, int64_t count, int64_t index, slot *out) {
    tg_tensor *f[TG_SAMPLE_MAX_FIELDS] = { 0 };
    tg_status st = tg_dataset_get(l->ds, index, f);
    if (st == TG_OK && l->o.n_transforms) {
        f[0] = tg_transforms_apply(l->o.n_transforms, l->tfs, f[0], l->o.seed, epoch, index);
        if (!f[0]) st = tg_last_status();
    }
    for (int k = 0; k < l->n_fields && st == TG_OK; k++) st = collate(out, k, s, count, f[k]);
    return st;
}

/* Batch k of epoch from its sample indices; out holds the result either way. Runs on
 * a worker, or in tg_loader_next without workers. */
static void make_batch(const tg_loader *l, int64_t epoch, int64_t k, const int64_t *idx, int64_t count, slot *out) {
    TG_API_ENTER("tg_loader_next");
    *out = (slot){ .batch = k, .size = count };
    bool grad = tg_set_grad_enabled(false); /* slicing a dataset tensor that requires grad records nothing */
    tg_scope_begin();
    tg_status st = TG_OK;
    int64_t s = 0;
    for (; s < count && st == TG_OK; s++) st = make_sample(l, epoch, s, count, idx[s], out);
    tg_scope_end();
    tg_set_grad_enabled(grad);
    if (st == TG_OK) return;
    const char *m = tg_last_error(), *head = "tg_loader_next: ";
    if (!strncmp(m, head, strlen(head))) m += strlen(head);
    size_t n = strlen(m) + 128;
    char *msg = malloc(n);
    if (msg) snprintf(msg, n, "sample %lld (batch %lld of epoch %lld): %s", (long long)idx[s - 1], (long long)k,
                      (long long)epoch, m);
    slot_clear(out);
    *out = (slot){ .batch = k, .st = st ? st : TG_ERR_INVALID, .msg = msg };
}

/* Claims the next batch (mu held): its number and a copy of its indices. */
static int64_t claim(tg_loader *l, int64_t *idx, int64_t *count) {
    int64_t k = l->next_claim++, first = k * l->o.batch_size;
    *count = l->per_rank - first < l->o.batch_size ? l->per_rank - first : l->o.batch_size;
    memcpy(idx, l->indices + first, (size_t)*count * sizeof *idx);
    return k;
}

/* Workers run as SCHED_BATCH where Linux has it: no wake-up preemption, so that the
 * worker tg_loader_next wakes (a ring slot came free) does not take the CPU from the
 * training thread that woke it; it runs beside the step instead of inside the wait. */
static void worker_priority(void) {
#ifdef SCHED_BATCH
    struct sched_param sp = { 0 };
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
#endif
}

static void *worker_main(void *arg) {
    tg_loader *l = arg;
    int64_t count;
    worker_priority();
    pthread_mutex_lock(&l->mu);
    int64_t *idx = l->idx_bufs + (size_t)l->next_worker++ * (size_t)l->o.batch_size;
    for (;;) {
        while (!l->stop && !(l->next_claim < l->n_batches && l->next_claim < l->consumed + l->depth))
            pthread_cond_wait(&l->work_cv, &l->mu);
        if (l->stop) break;
        uint64_t gen = l->gen;
        int64_t epoch = l->epoch, k = claim(l, idx, &count);
        pthread_mutex_unlock(&l->mu);
        slot made;
        make_batch(l, epoch, k, idx, count, &made);
        made.ready = true;
        pthread_mutex_lock(&l->mu);
        if (gen == l->gen && !l->stop) {
            l->ring[k % l->depth] = made;
            pthread_cond_broadcast(&l->ready_cv);
        } else {
            slot_clear(&made);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ------------------------------------------------------------- epochs */

/* Makes epoch the current one: its indices, an empty ring, workers woken. */
static tg_status start_epoch(tg_loader *l, int64_t epoch) {
    tg_sampler_opts so = { l->o.shuffle, l->o.seed, l->o.num_replicas, l->o.rank, l->o.shard_drop_last };
    int64_t *indices = malloc((size_t)(l->per_rank ? l->per_rank : 1) * sizeof *indices);
    if (!indices) return tg_error(TG_ERR_NOMEM, "out of host memory for the epoch's indices");
    if (tg_sampler_indices(tg_dataset_len(l->ds), epoch, &so, indices, l->per_rank) < 0) {
        free(indices);
        return tg_last_status();
    }
    pthread_mutex_lock(&l->mu);
    free(l->indices);
    l->indices = indices;
    l->gen++;
    l->epoch = epoch;
    l->next_claim = l->consumed = 0;
    for (int i = 0; i < l->depth; i++) slot_clear(&l->ring[i]);
    slot_clear(&l->ahead);
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    return TG_OK;
}

int64_t tg_loader_epoch(const tg_loader *l) {
    TG_API_ENTER("tg_loader_epoch");
    if (!l) return tg_error(TG_ERR_INVALID, "tg_loader_epoch: loader is NULL"), -1;
    return l->epoch;
}

tg_status tg_loader_set_epoch(tg_loader *l, int64_t epoch) {
    TG_API_ENTER("tg_loader_set_epoch");
    if (!l) return tg_error(TG_ERR_INVALID, "tg_loader_set_epoch: loader is NULL");
    if (l->consumed > 0)
        return tg_error(TG_ERR_STATE, "tg_loader_set_epoch: epoch %lld is under way (%lld of %lld batches handed "
                        "out); set the epoch before its first batch", (long long)l->epoch, (long long)l->consumed,
                        (long long)l->n_batches);
    return epoch == l->epoch ? TG_OK : start_epoch(l, epoch);
}

int64_t tg_loader_len(const tg_loader *l) {
    TG_API_ENTER("tg_loader_len");
    if (!l) return tg_error(TG_ERR_INVALID, "tg_loader_len: loader is NULL"), -1;
    return l->n_batches;
}

tg_status tg_loader_get_stats(const tg_loader *l, tg_loader_stats *out) {
    TG_API_ENTER("tg_loader_get_stats");
    if (!l || !out) return tg_error(TG_ERR_INVALID, "tg_loader_get_stats: %s is NULL", l ? "out" : "loader");
    *out = (tg_loader_stats){ l->wait_s, now_s() - l->t0, l->batches, l->samples, l->late };
    return TG_OK;
}

/* ------------------------------------------------------------- handing out */

/* Batch k from the ring, waiting for it when wait (else false if it is not there). */
static bool take(tg_loader *l, int64_t k, bool wait, slot *out) {
    pthread_mutex_lock(&l->mu);
    slot *r = &l->ring[k % l->depth];
    l->late += wait && !(r->ready && r->batch == k);
    while (wait && !(r->ready && r->batch == k)) pthread_cond_wait(&l->ready_cv, &l->mu);
    bool got = r->ready && r->batch == k;
    if (got) {
        *out = *r;
        *r = (slot){ 0 };
        l->consumed++;
        pthread_cond_signal(&l->work_cv); /* one slot came free: one worker */
    }
    pthread_mutex_unlock(&l->mu);
    return got;
}

/* The host tensors of s replaced by copies on the loader's device (kept by s). */
static void upload(const tg_loader *l, slot *s) {
    if (s->st != TG_OK || l->dev == tg_cpu_device()) return;
    for (int f = 0; f < l->n_fields && s->st == TG_OK; f++) {
        tg_scope_begin();
        tg_tensor *d = tg_to(s->fields[f], l->dev);
        if (d) tg_tensor_incref(d);
        else s->st = tg_last_status();
        tg_scope_end();
        tg_tensor_decref(s->fields[f]);
        s->fields[f] = d;
    }
    if (s->st != TG_OK) {
        size_t n = strlen(tg_last_error()) + 64;
        if ((s->msg = malloc(n))) snprintf(s->msg, n, "uploading batch %lld: %s", (long long)s->batch, tg_last_error());
    }
}

static bool hand_out(tg_loader *l, slot *s, tg_batch *batch) {
    if (s->st != TG_OK) {
        l->broken = tg_error(s->st, "tg_loader_next: %s", s->msg ? s->msg : "out of host memory");
        slot_clear(s);
        return false;
    }
    *batch = (tg_batch){ .n_fields = l->n_fields, .epoch = l->epoch, .index = s->batch, .size = s->size };
    for (int f = 0; f < l->n_fields; f++) {
        if (tg_scope_add(s->fields[f]) == TG_OK) batch->fields[f] = s->fields[f];
        else l->broken = TG_ERR_NOMEM;
        s->fields[f] = NULL;
    }
    slot_clear(s);
    if (l->broken) return false;
    batch->x = batch->fields[0];
    batch->y = l->n_fields > 1 ? batch->fields[1] : NULL;
    l->batches++;
    l->samples += batch->size;
    return true;
}

static bool next_batch(tg_loader *l, tg_batch *batch) {
    if (l->consumed == l->n_batches && !l->ahead.ready) { /* the end of the epoch */
        tg_status st = start_epoch(l, l->epoch + 1);
        if (st != TG_OK) l->broken = st;
        else tg_clear_error();
        return false;
    }
    slot s;
    if (l->ahead.ready) {
        s = l->ahead;
        l->ahead = (slot){ 0 };
    } else if (l->n_threads) {
        take(l, l->consumed, true, &s);
        upload(l, &s);
    } else {
        int64_t count, k = claim(l, l->idx_bufs, &count);
        make_batch(l, l->epoch, k, l->idx_bufs, count, &s);
        l->consumed++;
        upload(l, &s);
    }
    /* Queue the next batch's copy ahead of the step that trains on this one. */
    if (l->n_threads && l->dev != tg_cpu_device() && l->consumed < l->n_batches &&
        take(l, l->consumed, false, &l->ahead))
        upload(l, &l->ahead);
    return hand_out(l, &s, batch);
}

bool tg_loader_next(tg_loader *l, tg_batch *batch) {
    TG_API_ENTER("tg_loader_next");
    if (!l || !batch) return tg_error(TG_ERR_INVALID, "tg_loader_next: %s is NULL", l ? "batch" : "loader"), false;
    if (l->broken)
        return tg_error(TG_ERR_STATE, "tg_loader_next: the loader stopped at an earlier error; make a new one"), false;
    double t = now_s();
    bool ok = next_batch(l, batch);
    l->wait_s += now_s() - t;
    return ok;
}

/* ------------------------------------------------------------- life */

static tg_status check_opts(const tg_dataset *ds, const tg_loader_opts *o) {
    if (!ds) return tg_error(TG_ERR_INVALID, "tg_loader_new: dataset is NULL");
    if (o->batch_size < 0)
        return tg_error(TG_ERR_INVALID, "tg_loader_new: batch_size must be >= 1, got %lld", (long long)o->batch_size);
    if (o->num_workers < 0 || o->prefetch < 0)
        return tg_error(TG_ERR_INVALID, "tg_loader_new: num_workers and prefetch must be >= 0, got %d and %d",
                        o->num_workers, o->prefetch);
    if (o->n_transforms < 0 || (o->n_transforms > 0 && !o->transforms))
        return tg_error(TG_ERR_INVALID, "tg_loader_new: expected n_transforms >= 0 transforms, got %d%s",
                        o->n_transforms, o->n_transforms > 0 ? " and NULL" : "");
    for (int i = 0; i < o->n_transforms; i++)
        if (!o->transforms[i]) return tg_error(TG_ERR_INVALID, "tg_loader_new: transform %d is NULL", i);
    return TG_OK;
}

static void stop_workers(tg_loader *l) {
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->n_threads; i++) pthread_join(l->threads[i], NULL);
    l->n_threads = 0;
}

void tg_loader_free(tg_loader *l) {
    if (!l) return;
    stop_workers(l);
    for (int i = 0; i < l->depth; i++) slot_clear(&l->ring[i]);
    slot_clear(&l->ahead);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work_cv);
    pthread_cond_destroy(&l->ready_cv);
    free(l->ring);
    free(l->threads);
    free(l->idx_bufs);
    free(l->indices);
    free(l->tfs);
    free(l);
}

tg_loader *tg_loader_new(tg_dataset *ds, const tg_loader_opts *opts) {
    TG_API_ENTER("tg_loader_new");
    tg_loader_opts o = opts ? *opts : (tg_loader_opts){ 0 };
    if (check_opts(ds, &o) != TG_OK) return NULL;
    tg_sampler_opts so = { o.shuffle, o.seed, o.num_replicas, o.rank, o.shard_drop_last };
    int64_t per_rank = tg_sampler_len(tg_dataset_len(ds), &so);
    if (per_rank < 0) return NULL;
    tg_loader *l = calloc(1, sizeof *l);
    if (!l) return tg_error_null(TG_ERR_NOMEM, "tg_loader_new: out of host memory");
    o.batch_size = o.batch_size ? o.batch_size : 1;
    l->ds = ds, l->o = o, l->per_rank = per_rank, l->n_fields = tg_dataset_num_fields(ds);
    l->n_batches = o.drop_last ? per_rank / o.batch_size : (per_rank + o.batch_size - 1) / o.batch_size;
    l->dev = o.device ? o.device : tg_cpu_device();
    l->depth = o.num_workers ? (o.prefetch ? o.prefetch : 2 * o.num_workers) : 1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->ready_cv, NULL);
    l->t0 = now_s();
    l->ring = calloc((size_t)l->depth, sizeof *l->ring);
    l->tfs = malloc((size_t)(o.n_transforms ? o.n_transforms : 1) * sizeof *l->tfs);
    size_t slots = (size_t)(o.num_workers ? o.num_workers : 1);
    l->threads = calloc(slots, sizeof *l->threads);
    if ((uint64_t)o.batch_size <= SIZE_MAX / sizeof(int64_t) / slots)
        l->idx_bufs = malloc(slots * (size_t)o.batch_size * sizeof *l->idx_bufs);
    if (!l->ring || !l->tfs || !l->threads || !l->idx_bufs) {
        tg_error(TG_ERR_NOMEM, "tg_loader_new: out of host memory");
        goto fail;
    }
    if (o.n_transforms) memcpy(l->tfs, o.transforms, (size_t)o.n_transforms * sizeof *l->tfs);
    l->o.transforms = NULL;
    if (start_epoch(l, 0) != TG_OK) goto fail;
    for (; l->n_threads < o.num_workers; l->n_threads++)
        if (pthread_create(&l->threads[l->n_threads], NULL, worker_main, l) != 0) {
            tg_error(TG_ERR_STATE, "tg_loader_new: cannot start worker thread %d of %d", l->n_threads, o.num_workers);
            goto fail;
        }
    return l;
fail:
    tg_loader_free(l);
    return NULL;
}
