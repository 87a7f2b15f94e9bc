/* DistributedDataParallel: rank 0's parameters and buffers broadcast at construction,
 * gradients averaged over ranks by all-reducing host buckets, each started from a
 * gradient hook as soon as its gradients are final, so that communication overlaps the
 * rest of the backward pass; tg_ddp_wait finishes the step. */
#include <stdlib.h>
#include <string.h>

#include "lib/dist/dist-impl.h"
#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"

typedef struct hook_ctx {
    struct tg_ddp *d; /* NULL once the wrapper is freed: the hook then does nothing */
    int i;
} hook_ctx;

/* Hook contexts outlive their wrapper (the hooks stay on the parameters), so they are
 * kept here, reachable, for the life of the process. */
typedef struct ctx_block {
    struct ctx_block *next;
    hook_ctx ctx[];
} ctx_block;
static ctx_block *ctx_blocks;

enum { IDLE, IN_FLIGHT, DONE };

typedef struct {
    int lo, hi;        /* the parameters order[lo..hi) */
    int64_t numel;
    tg_dtype dtype;
    void *host;        /* the flat staging buffer, numel elements (pinned where the device has it) */
    void *host_handle; /* tg_device_host_free's */
    tg_dist_req req;
    int ready, state;
    double t_start, t_done;
} bucket;

struct tg_ddp {
    tg_module *m;
    tg_named params, buffers;
    int n;
    int *bucket_of, *expected, *seen, *pending, n_pending;
    int *order;       /* parameters in the order their gradients become final */
    int64_t *arrival, clock; /* when each one last got a gradient (for the rebuild) */
    bool rebuilt;     /* buckets follow the order seen in the first backward */
    int64_t *offset; /* of each parameter in its bucket, in elements */
    bucket *b;
    int nb, next;     /* buckets start in index order: next is the first not started */
    bool learned;     /* expected[] holds the gradient counts of the previous backward */
    bool broadcast_buffers;
    double cap;       /* bucket bytes */
    tg_status failed; /* a bucket could not be staged during backward */
    bool miscounted;  /* a hook failed this backward: its counts teach nothing */
    hook_ctx *hooks;
    tg_ddp_stats stats;
};

static tg_status rebuild(tg_ddp *d);

/* The device the gradients live on, whose pinned host memory (if it has any) stages the
 * buckets: the first parameter's. */
static tg_device *staging_device(const tg_ddp *d) {
    return d->params.n ? tg_device_of(d->params.tensors[0]) : NULL;
}

/* Copies bucket k's gradients into its host buffer and starts its all-reduce. */
static tg_status launch(tg_ddp *d, int k) {
    bucket *b = &d->b[k];
    size_t es = tg_elsize(b->dtype);
    tg_status st = TG_OK;
    for (int j = b->lo; j < b->hi && st == TG_OK; j++) {
        int i = d->order[j];
        tg_tensor *g = d->params.tensors[i]->grad;
        char *dst = (char *)b->host + (size_t)d->offset[i] * es;
        size_t nbytes = (size_t)tg_numel(d->params.tensors[i]) * es;
        if (g) st = tg_copy_to_host(g, dst, nbytes);
        else memset(dst, 0, nbytes); /* no gradient here: zeros to the sum */
    }
    if (st != TG_OK) {
        /* The other ranks will wait for this bucket: start it anyway (the step fails here). */
        d->failed = st;
        memset(b->host, 0, (size_t)b->numel * es);
    }
    b->t_start = tg_dist_now();
    b->req = tg_dist_iallreduce_sum(b->host, b->numel, b->dtype, TG_DIST_COMM_GRAD);
    b->state = IN_FLIGHT;
    return st;
}

/* The parameters made final by the previous hook have had their gradient added by
 * now: count them, and start every bucket, in order, whose gradients are all final. */
static void flush(tg_ddp *d) {
    for (int k = 0; k < d->n_pending; k++) d->b[d->bucket_of[d->pending[k]]].ready++;
    d->n_pending = 0;
    while (d->next < d->nb && d->b[d->next].ready == d->b[d->next].hi - d->b[d->next].lo) {
        launch(d, d->next++);
        d->stats.buckets_early++;
    }
}

/* Lets MPI progress the all-reduces in flight (it does so only inside MPI calls). */
static void progress(tg_ddp *d) {
    for (int k = 0; k < d->next; k++)
        if (d->b[k].state == IN_FLIGHT && tg_dist_test(&d->b[k].req)) {
            d->b[k].state = DONE;
            d->b[k].t_done = tg_dist_now();
        }
}

static tg_tensor *ddp_hook(tg_tensor *grad, void *ctx) {
    hook_ctx *h = ctx;
    tg_ddp *d = h->d;
    if (!d || tg_dist_world_size() == 1) return grad;
    flush(d);
    int i = h->i;
    d->seen[i]++;
    d->arrival[i] = ++d->clock;
    if (d->learned && d->seen[i] > d->expected[i] && d->b[d->bucket_of[i]].state != IDLE) {
        d->learned = false, d->miscounted = true; /* this backward's counts are partial: not learned */
        return tg_error_null(TG_ERR_STATE, "tg_backward: tg_ddp: parameter '%s' received more gradients (%d) than in "
                             "the previous backward (%d), after its bucket's all-reduce had started: the graph "
                             "changed between steps (or tg_ddp_wait was not called after a backward)",
                             d->params.names[i], d->seen[i], d->expected[i]);
    }
    if (d->learned && d->seen[i] == d->expected[i]) d->pending[d->n_pending++] = i;
    progress(d);
    return grad;
}

/* Writes the averaged bucket k back into the gradients. */
static tg_status unpack(tg_ddp *d, int k) {
    bucket *b = &d->b[k];
    double s = 1.0 / tg_dist_world_size();
    if (b->dtype == TG_F32)
        for (int64_t j = 0; j < b->numel; j++) ((float *)b->host)[j] = (float)(((float *)b->host)[j] * s);
    else
        for (int64_t j = 0; j < b->numel; j++) ((double *)b->host)[j] *= s;
    size_t es = tg_elsize(b->dtype);
    for (int j = b->lo; j < b->hi; j++) {
        int i = d->order[j];
        tg_tensor *p = d->params.tensors[i];
        const char *src = (const char *)b->host + (size_t)d->offset[i] * es;
        if (!p->grad) { /* reached on other ranks only (all zeros: reached by none) */
            int64_t ne = tg_numel(p), j = 0;
            while (j < ne && memcmp(src + (size_t)j * es, "\0\0\0\0\0\0\0\0", es) == 0) j++;
            if (j == ne) continue;
            tg_tensor *g = tg_zeros_like(p);
            if (!g) return tg_last_status();
            tg_tensor_incref(g);
            p->grad = g;
        }
        tg_status st = tg_dist_host_to_tensor(p->grad, src);
        if (st != TG_OK) return st;
    }
    return TG_OK;
}

tg_status tg_ddp_wait(tg_ddp *d) {
    TG_API_ENTER("tg_ddp_wait");
    if (!d) return tg_error(TG_ERR_INVALID, "tg_ddp_wait: d is NULL");
    d->stats.steps++;
    if (tg_dist_world_size() == 1) return TG_OK;
    double t0 = tg_dist_now(), first = t0, last = 0;
    int64_t early = d->stats.buckets_early;
    flush(d); /* what this starts is not early: backward is over */
    d->stats.buckets_early = early;
    tg_status st = d->failed;
    while (d->next < d->nb) {
        tg_status s2 = launch(d, d->next++);
        if (st == TG_OK) st = s2;
    }
    char what[64];
    for (int k = 0; k < d->nb; k++) {
        bucket *b = &d->b[k];
        if (b->state == IN_FLIGHT) {
            snprintf(what, sizeof what, "all-reduce of gradient bucket %d", k);
            tg_dist_wait_req(&b->req, what);
            b->t_done = tg_dist_now();
        }
        if (b->t_start < first) first = b->t_start;
        if (b->t_done > last) last = b->t_done;
        tg_status s2 = st == TG_OK ? unpack(d, k) : TG_OK;
        if (st == TG_OK) st = s2;
        b->state = IDLE, b->ready = 0;
    }
    if (!d->miscounted) memcpy(d->expected, d->seen, (size_t)d->n * sizeof *d->seen);
    memset(d->seen, 0, (size_t)d->n * sizeof *d->seen);
    d->learned = st == TG_OK && !d->miscounted;
    d->miscounted = false;
    if (st == TG_OK && !d->rebuilt) st = rebuild(d);
    memset(d->arrival, 0, (size_t)d->n * sizeof *d->arrival);
    d->clock = 0;
    d->next = 0, d->n_pending = 0, d->failed = TG_OK;
    d->stats.allreduce_s += last - first;
    d->stats.wait_s += tg_dist_now() - t0;
    return st;
}

tg_status tg_ddp_backward(tg_ddp *d, tg_tensor *loss) {
    TG_API_ENTER("tg_ddp_backward");
    if (!d) return tg_error(TG_ERR_INVALID, "tg_ddp_backward: d is NULL");
    tg_status st = tg_backward(loss);
    char msg[512] = "";
    if (st != TG_OK) snprintf(msg, sizeof msg, "%s", tg_last_error());
    tg_status s2 = tg_ddp_wait(d); /* even after a failure: the other ranks wait for these all-reduces */
    if (st != TG_OK) return tg_error(st, "%s", msg);
    return s2;
}

tg_tensor *tg_ddp_forward(tg_ddp *d, tg_tensor *x) {
    TG_API_ENTER("tg_ddp_forward");
    if (!d) return tg_error_null(TG_ERR_INVALID, "tg_ddp_forward: d is NULL");
    if (d->broadcast_buffers && tg_module_is_training(d->m))
        for (int i = 0; i < d->buffers.n; i++)
            if (tg_dist_broadcast_(d->buffers.tensors[i], 0) != TG_OK) return NULL;
    return tg_module_forward(d->m, x);
}

/* Buckets of about cap bytes over the parameters in d->order, one dtype each. */
static tg_status make_buckets(tg_ddp *d, double cap) {
    d->b = calloc((size_t)d->n, sizeof *d->b);
    if (!d->b) return tg_error(TG_ERR_NOMEM, "tg_ddp_new: out of host memory");
    d->nb = 0;
    d->stats.bytes_per_step = 0;
    for (int j = 0; j < d->n; j++) {
        tg_tensor *p = d->params.tensors[d->order[j]];
        bucket *b = d->nb ? &d->b[d->nb - 1] : NULL;
        double bytes = (double)tg_numel(p) * (double)tg_elsize(p->dtype);
        /* The first bucket (the last layers) is capped at 1 MiB as in PyTorch, so that
         * communication starts early in backward. */
        double limit = d->nb <= 1 && cap > 1048576 ? 1048576 : cap;
        if (!b || b->dtype != p->dtype || (double)b->numel * (double)tg_elsize(b->dtype) + bytes > limit) {
            b = &d->b[d->nb++];
            *b = (bucket){ .lo = j, .hi = j, .dtype = p->dtype };
        }
        b->hi = j + 1;
        d->offset[d->order[j]] = b->numel;
        b->numel += tg_numel(p);
        d->bucket_of[d->order[j]] = d->nb - 1;
    }
    for (int k = 0; k < d->nb; k++) {
        bucket *b = &d->b[k];
        if (b->numel > INT32_MAX)
            return tg_error(TG_ERR_INVALID, "tg_ddp_new: a bucket of %lld elements is too large for MPI; lower "
                            "bucket_cap_mb", (long long)b->numel);
        d->stats.bytes_per_step += b->numel * (int64_t)tg_elsize(b->dtype);
        bool pinned;
        b->host = tg_device_host_alloc(staging_device(d), (size_t)b->numel * tg_elsize(b->dtype), &b->host_handle, &pinned);
        if (!b->host)
            return tg_error(TG_ERR_NOMEM, "tg_ddp_new: out of host memory for a %lld-element bucket",
                            (long long)b->numel);
        d->stats.pinned_buckets += pinned;
    }
    d->stats.buckets = d->nb;
    return TG_OK;
}

static void free_buckets(tg_ddp *d) {
    for (int k = 0; k < d->nb; k++) tg_device_host_free(staging_device(d), d->b[k].host, d->b[k].host_handle);
    d->stats.pinned_buckets = 0;
    free(d->b);
    d->b = NULL, d->nb = 0;
}

static int by_arrival(const void *a, const void *b, void *ctx) {
    const int64_t *t = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    int64_t ti = t[i] ? t[i] : INT64_MAX, tj = t[j] ? t[j] : INT64_MAX; /* never reached: last */
    return ti != tj ? (ti > tj) - (ti < tj) : (j > i) - (j < i);
}

/* After the first backward, as PyTorch's rebuild_buckets: buckets in the order the
 * gradients became final on rank 0 (a BasicBlock's shortcut, say, finishes after its
 * second conv although registered after it), so that bucket k is complete before k+1. */
static tg_status rebuild(tg_ddp *d) {
    d->rebuilt = true;
    for (int i = 0; i < d->n; i++) d->order[i] = i;
    qsort_r(d->order, (size_t)d->n, sizeof *d->order, by_arrival, d->arrival);
    tg_dist_bcast_bytes(d->order, (size_t)d->n * sizeof *d->order, 0, "the bucket rebuild");
    free_buckets(d);
    return make_buckets(d, d->cap);
}

static tg_status hook_params(tg_ddp *d) {
    ctx_block *blk = calloc(1, sizeof *blk + (size_t)d->n * sizeof(hook_ctx));
    if (!blk) return tg_error(TG_ERR_NOMEM, "tg_ddp_new: out of host memory");
    blk->next = ctx_blocks, ctx_blocks = blk; /* kept even if a registration below fails */
    d->hooks = blk->ctx;
    for (int i = 0; i < d->n; i++) {
        d->hooks[i] = (hook_ctx){ .d = d, .i = i };
        tg_status st = tg_register_hook(d->params.tensors[i], ddp_hook, &d->hooks[i]);
        if (st != TG_OK) return st;
    }
    return TG_OK;
}

/* The layout check, then rank 0's values everywhere. */
static tg_status sync_start(tg_ddp *d) {
    tg_status st = tg_dist_check_layout("tg_ddp_new", "parameter", d->params.n, d->params.names, d->params.tensors);
    if (st == TG_OK)
        st = tg_dist_check_layout("tg_ddp_new", "buffer", d->buffers.n, d->buffers.names, d->buffers.tensors);
    for (int i = 0; i < d->params.n && st == TG_OK; i++) st = tg_dist_broadcast_(d->params.tensors[i], 0);
    for (int i = 0; i < d->buffers.n && st == TG_OK; i++) st = tg_dist_broadcast_(d->buffers.tensors[i], 0);
    return st;
}

tg_ddp *tg_ddp_new(tg_module *m, const tg_ddp_opts *opts) {
    TG_API_ENTER("tg_ddp_new");
    if (!m) return tg_error_null(TG_ERR_INVALID, "tg_ddp_new: m is NULL");
    tg_ddp_opts o = opts ? *opts : (tg_ddp_opts){ 0 };
    double cap_mb = o.bucket_cap_mb == 0 ? 25 : o.bucket_cap_mb;
    if (!(cap_mb > 0)) return tg_error_null(TG_ERR_INVALID, "tg_ddp_new: bucket_cap_mb must be > 0, got %g", cap_mb);
    tg_ddp *d = calloc(1, sizeof *d);
    if (!d) return tg_error_null(TG_ERR_NOMEM, "tg_ddp_new: out of host memory");
    d->m = m;
    d->broadcast_buffers = !o.broadcast_buffers.set || o.broadcast_buffers.value;
    if (tg_module_parameters(m, true, &d->params) != TG_OK || tg_module_buffers(m, &d->buffers) != TG_OK) goto fail;
    d->n = d->params.n;
    if (d->n <= 0) {
        tg_error(TG_ERR_INVALID, "tg_ddp_new: the module has no parameter that requires grad");
        goto fail;
    }
    for (int i = 0; i < d->n; i++)
        if (!tg_is_leaf(d->params.tensors[i]) || (d->params.tensors[i]->dtype != TG_F32 &&
                                                  d->params.tensors[i]->dtype != TG_F64)) {
            tg_error(TG_ERR_DTYPE, "tg_ddp_new: parameter '%s' is %s; parameters are f32 or f64 leaves",
                     d->params.names[i], tg_dtype_name(d->params.tensors[i]->dtype));
            goto fail;
        }
    d->bucket_of = calloc((size_t)d->n, sizeof *d->bucket_of);
    d->expected = calloc((size_t)d->n, sizeof *d->expected);
    d->seen = calloc((size_t)d->n, sizeof *d->seen);
    d->pending = calloc((size_t)d->n, sizeof *d->pending);
    d->offset = calloc((size_t)d->n, sizeof *d->offset);
    d->order = calloc((size_t)d->n, sizeof *d->order);
    d->arrival = calloc((size_t)d->n, sizeof *d->arrival);
    if (!d->bucket_of || !d->expected || !d->seen || !d->pending || !d->offset || !d->order || !d->arrival) {
        tg_error(TG_ERR_NOMEM, "tg_ddp_new: out of host memory");
        goto fail;
    }
    for (int i = 0; i < d->n; i++) d->order[i] = d->n - 1 - i; /* backward reaches the last layers first */
    d->cap = cap_mb * 1024 * 1024;
    if (sync_start(d) != TG_OK || make_buckets(d, d->cap) != TG_OK || hook_params(d) != TG_OK) goto fail;
    return d;
fail:
    tg_ddp_free(d);
    return NULL;
}

void tg_ddp_free(tg_ddp *d) {
    if (!d) return;
    for (int k = 0; k < d->nb; k++) /* MPI may still write an unfinished bucket */
        if (d->b[k].state == IN_FLIGHT) tg_dist_wait_req(&d->b[k].req, "an all-reduce left running at tg_ddp_free");
    free_buckets(d);
    if (d->hooks)
        for (int i = 0; i < d->n; i++) d->hooks[i].d = NULL;
    free(d->order);
    free(d->arrival);
    free(d->bucket_of);
    free(d->expected);
    free(d->seen);
    free(d->pending);
    free(d->offset);
    tg_named_free(&d->params);
    tg_named_free(&d->buffers);
    free(d);
}

tg_module *tg_ddp_module(const tg_ddp *d) { return d ? d->m : NULL; }

tg_status tg_ddp_get_stats(tg_ddp *d, tg_ddp_stats *out, bool reset) {
    TG_API_ENTER("tg_ddp_get_stats");
    if (!d || !out) return tg_error(TG_ERR_INVALID, "tg_ddp_get_stats: d and out must not be NULL");
    *out = d->stats;
    if (reset) {
        d->stats.steps = d->stats.buckets_early = 0;
        d->stats.allreduce_s = d->stats.wait_s = 0;
    }
    return TG_OK;
}
