/* The world (tg_dist_init/finalize, rank, size) and every collective: MPI's
 * non-blocking calls completed by polling MPI_Test against a deadline, so a rank whose
 * partner died or skipped a call aborts the job with a message instead of hanging.
 * Without MPI, or without mpirun, a world of 1 where collectives copy or do nothing. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/dist/dist-impl.h"
#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"

static struct {
    bool initialized, finalized, owns_mpi;
    int rank, size;
    double timeout;
#ifdef TG_HAVE_MPI
    MPI_Comm comm[2]; /* TG_DIST_COMM_MAIN, TG_DIST_COMM_GRAD */
#endif
} world = { .size = 1, .timeout = 300 };

double tg_dist_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* opts->timeout, else $TG_DIST_TIMEOUT, else 300 s; -1 on a bad value. */
static double pick_timeout(const tg_dist_opts *opts) {
    if (opts && opts->timeout != 0) return opts->timeout > 0 ? opts->timeout : -1;
    const char *env = getenv("TG_DIST_TIMEOUT");
    if (!env || !*env) return 300;
    char *end;
    double t = strtod(env, &end);
    return *end == '\0' && t > 0 && isfinite(t) ? t : -1;
}

/* The size mpirun (Open MPI, MPICH/Hydra, Slurm) announced; -1 when a launcher is
 * there but said no size (PMIx alone); 0 when no launcher started this process. */
static int launcher_size(void) {
    const char *vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS" };
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? -1 : 0;
}

#ifdef TG_HAVE_MPI
static tg_status mpi_start(void) {
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (launcher_size() == 0) return TG_OK; /* no mpirun: a world of 1 without MPI */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
            return tg_error(TG_ERR_BACKEND, "tg_dist_init: MPI_Init_thread failed");
        world.owns_mpi = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    /* Errors come back as codes (and become messages or an abort here), not MPI's abort. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    for (int k = 0; k < 2; k++)
        if (MPI_Comm_dup(MPI_COMM_WORLD, &world.comm[k]) != MPI_SUCCESS)
            return tg_error(TG_ERR_BACKEND, "tg_dist_init: MPI_Comm_dup failed");
    return TG_OK;
}
#endif

tg_status tg_dist_init(const tg_dist_opts *opts) {
    TG_API_ENTER("tg_dist_init");
    double timeout = pick_timeout(opts);
    if (timeout < 0)
        return tg_error(TG_ERR_INVALID, "tg_dist_init: the timeout must be a positive number of seconds (opts->timeout "
                        "%g, TG_DIST_TIMEOUT '%s')", opts ? opts->timeout : 0.0,
                        getenv("TG_DIST_TIMEOUT") ? getenv("TG_DIST_TIMEOUT") : "");
    if (world.finalized)
        return tg_error(TG_ERR_STATE, "tg_dist_init: called after tg_dist_finalize; MPI cannot start twice in a process");
    world.timeout = timeout;
    if (world.initialized) return TG_OK;
#ifdef TG_HAVE_MPI
    tg_status st = mpi_start();
    if (st != TG_OK) return st;
#else
    int n = launcher_size();
    if (n > 1 || n < 0)
        return tg_error(TG_ERR_STATE, "tg_dist_init: an MPI launcher started this process (%s), but tapegrad was built "
                        "without MPI: each process would train alone (reconfigure with -Dmpi=enabled, libopenmpi-dev "
                        "installed)", n > 1 ? "one of several" : "world size unknown");
#endif
    world.initialized = true;
    return TG_OK;
}

void tg_dist_finalize(void) {
    if (!world.initialized) return;
#ifdef TG_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited) {
        for (int k = 0; k < 2; k++) MPI_Comm_free(&world.comm[k]);
        if (world.owns_mpi) MPI_Finalize();
    }
#endif
    world.initialized = false, world.finalized = true;
    world.rank = 0, world.size = 1;
}

bool tg_dist_is_initialized(void) { return world.initialized; }
int tg_dist_rank(void) { return world.rank; }
int tg_dist_world_size(void) { return world.size; }
double tg_dist_timeout(void) { return world.timeout; }

/* ---------------------------------------------------------------- waiting with a deadline */

#ifdef TG_HAVE_MPI
static bool use_mpi(void) { return world.initialized && world.size > 1; }

static MPI_Datatype mpi_type(tg_dtype d) {
    switch (d) {
    case TG_F32: return MPI_FLOAT;
    case TG_F64: return MPI_DOUBLE;
    case TG_I32: return MPI_INT32_T;
    case TG_I64: return MPI_INT64_T;
    default: return MPI_UINT8_T;
    }
}

static MPI_Op mpi_op(tg_dist_op op) {
    return op == TG_DIST_MAX ? MPI_MAX : op == TG_DIST_MIN ? MPI_MIN : MPI_SUM;
}

static _Noreturn void timed_out(const char *what, double waited) {
    fprintf(stderr, "tg_dist: rank %d of %d: timed out after %.3g s in %s (another rank failed, exited or skipped "
            "this collective; TG_DIST_TIMEOUT sets the limit); aborting every rank\n",
            world.rank, world.size, waited, what);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 3);
    abort(); /* MPI_Abort does not return; if it ever did, stop anyway */
}

static _Noreturn void mpi_failed(const char *what, int rc) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "tg_dist: rank %d of %d: MPI failed in %s: %s; aborting every rank\n", world.rank, world.size,
            what, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 3);
    abort();
}

void tg_dist_wait_req(tg_dist_req *req, const char *what) {
    double t0 = tg_dist_now(), deadline = t0 + world.timeout;
    struct timespec nap = { 0, 20000 }; /* 20 us between polls: other ranks share the cores */
    for (long polls = 0;; polls++) {
        int done = 0, rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) mpi_failed(what, rc);
        if (done) return;
        double now = tg_dist_now();
        if (now > deadline) timed_out(what, now - t0);
        if (polls > 100) nanosleep(&nap, NULL);
    }
}

bool tg_dist_test(tg_dist_req *req) {
    if (!use_mpi() || *req == MPI_REQUEST_NULL) return true;
    int done = 0, rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) mpi_failed("a gradient all-reduce", rc);
    return done != 0;
}

tg_dist_req tg_dist_iallreduce_sum(void *buf, int64_t count, tg_dtype dtype, tg_dist_comm_kind comm) {
    MPI_Request r = MPI_REQUEST_NULL;
    if (!use_mpi() || count == 0) return r;
    TG_ASSERT(count <= INT32_MAX);
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, mpi_type(dtype), MPI_SUM, world.comm[comm], &r);
    if (rc != MPI_SUCCESS) mpi_failed("MPI_Iallreduce", rc);
    return r;
}

void tg_dist_bcast_bytes(void *buf, size_t n, int root, const char *what) {
    if (!use_mpi() || n == 0) return;
    for (size_t done = 0; done < n;) { /* counts are int: large buffers go in pieces */
        int part = n - done > (size_t)1 << 30 ? 1 << 30 : (int)(n - done);
        MPI_Request r;
        int rc = MPI_Ibcast((char *)buf + done, part, MPI_BYTE, root, world.comm[TG_DIST_COMM_MAIN], &r);
        if (rc != MPI_SUCCESS) mpi_failed(what, rc);
        tg_dist_wait_req(&r, what);
        done += (size_t)part;
    }
}

void tg_dist_allgather_bytes(const void *send, void *recv, size_t each, const char *what) {
    if (!use_mpi()) {
        memmove(recv, send, each);
        return;
    }
    TG_ASSERT(each <= INT32_MAX);
    MPI_Request r;
    int rc = MPI_Iallgather(send, (int)each, MPI_BYTE, recv, (int)each, MPI_BYTE, world.comm[TG_DIST_COMM_MAIN], &r);
    if (rc != MPI_SUCCESS) mpi_failed(what, rc);
    tg_dist_wait_req(&r, what);
}

void tg_dist_allreduce_host(void *buf, int64_t count, tg_dtype dtype, tg_dist_op op, const char *what) {
    if (!use_mpi() || count == 0) return;
    size_t es = tg_elsize(dtype);
    for (int64_t done = 0; done < count;) {
        int part = count - done > (1 << 28) ? 1 << 28 : (int)(count - done);
        MPI_Request r;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + (size_t)done * es, part, mpi_type(dtype), mpi_op(op),
                                world.comm[TG_DIST_COMM_MAIN], &r);
        if (rc != MPI_SUCCESS) mpi_failed(what, rc);
        tg_dist_wait_req(&r, what);
        done += part;
    }
}

tg_status tg_dist_barrier(void) {
    TG_API_ENTER("tg_dist_barrier");
    if (!use_mpi()) return TG_OK;
    MPI_Request r;
    int rc = MPI_Ibarrier(world.comm[TG_DIST_COMM_MAIN], &r);
    if (rc != MPI_SUCCESS) mpi_failed("barrier", rc);
    tg_dist_wait_req(&r, "barrier");
    return TG_OK;
}
#else
void tg_dist_wait_req(tg_dist_req *req, const char *what) { (void)req, (void)what; }
bool tg_dist_test(tg_dist_req *req) { return (void)req, true; }
tg_dist_req tg_dist_iallreduce_sum(void *buf, int64_t count, tg_dtype dtype, tg_dist_comm_kind comm) {
    return (void)buf, (void)count, (void)dtype, (void)comm, 0;
}
void tg_dist_bcast_bytes(void *buf, size_t n, int root, const char *what) { (void)buf, (void)n, (void)root, (void)what; }
void tg_dist_allgather_bytes(const void *send, void *recv, size_t each, const char *what) {
    (void)what;
    memmove(recv, send, each);
}
void tg_dist_allreduce_host(void *buf, int64_t count, tg_dtype dtype, tg_dist_op op, const char *what) {
    (void)buf, (void)count, (void)dtype, (void)op, (void)what;
}
tg_status tg_dist_barrier(void) { return TG_OK; }
#endif

/* ---------------------------------------------------------------- tensors through host memory */

tg_status tg_dist_host_to_tensor(tg_tensor *t, const void *host) {
    size_t nbytes = (size_t)tg_numel(t) * tg_elsize(t->dtype);
    if (tg_tensor_is_dense(t)) {
        tg_device *dev = t->storage->dev;
        tg_status st = dev->be->upload(dev, t->storage->data, (size_t)t->offset * tg_elsize(t->dtype), host, nbytes);
        if (st == TG_OK) atomic_fetch_add(&t->storage->version, 1);
        return st;
    }
    bool prev = tg_set_grad_enabled(false); /* a strided view: through a temporary */
    tg_tensor *tmp = tg_from_data(host, t->dtype, tg_shape_of(t), t->storage->dev);
    tg_status st = tmp ? tg_copy_(t, tmp) : tg_last_status();
    tg_set_grad_enabled(prev);
    return st;
}

/* Checks a tensor argument of a collective; returns its byte count or -1. */
static int64_t check_tensor(const char *api, tg_tensor *t) {
    if (!tg_tensor_check(api, "t", t)) return -1;
    if (t->dtype != TG_F32 && t->dtype != TG_F64 && t->dtype != TG_I32 && t->dtype != TG_I64 && t->dtype != TG_U8)
        return tg_error(TG_ERR_DTYPE, "%s: dtype %s is not supported", api, tg_dtype_name(t->dtype)), -1;
    return tg_numel(t) * (int64_t)tg_elsize(t->dtype);
}

tg_status tg_dist_broadcast_(tg_tensor *t, int root) {
    TG_API_ENTER("tg_dist_broadcast_");
    int64_t nbytes = check_tensor("tg_dist_broadcast_", t);
    if (nbytes < 0) return tg_last_status();
    if (root < 0 || root >= world.size)
        return tg_error(TG_ERR_INVALID, "tg_dist_broadcast_: root %d is not a rank of this world of %d", root,
                        world.size);
    if (world.size == 1 || nbytes == 0) return TG_OK;
    void *host = malloc((size_t)nbytes);
    if (!host) return tg_error(TG_ERR_NOMEM, "tg_dist_broadcast_: out of host memory");
    tg_status st = world.rank == root ? tg_copy_to_host(t, host, (size_t)nbytes) : TG_OK;
    if (st == TG_OK) tg_dist_bcast_bytes(host, (size_t)nbytes, root, "tg_dist_broadcast_");
    if (st == TG_OK && world.rank != root) st = tg_dist_host_to_tensor(t, host);
    free(host);
    return st;
}

/* Divides n values at p by the world size (AVG). */
static void scale_host(void *p, int64_t n, tg_dtype d, double s) {
    if (d == TG_F32)
        for (int64_t i = 0; i < n; i++) ((float *)p)[i] = (float)(((float *)p)[i] * s);
    else
        for (int64_t i = 0; i < n; i++) ((double *)p)[i] *= s;
}

tg_status tg_dist_all_reduce_(tg_tensor *t, tg_dist_op op) {
    TG_API_ENTER("tg_dist_all_reduce_");
    int64_t nbytes = check_tensor("tg_dist_all_reduce_", t);
    if (nbytes < 0) return tg_last_status();
    if (op < TG_DIST_SUM || op > TG_DIST_MIN) return tg_error(TG_ERR_INVALID, "tg_dist_all_reduce_: unknown op %d", (int)op);
    if (op == TG_DIST_AVG && t->dtype != TG_F32 && t->dtype != TG_F64)
        return tg_error(TG_ERR_DTYPE, "tg_dist_all_reduce_: TG_DIST_AVG needs f32 or f64, got %s", tg_dtype_name(t->dtype));
    if (world.size == 1 || nbytes == 0) return TG_OK;
    void *host = malloc((size_t)nbytes);
    if (!host) return tg_error(TG_ERR_NOMEM, "tg_dist_all_reduce_: out of host memory");
    tg_status st = tg_copy_to_host(t, host, (size_t)nbytes);
    if (st == TG_OK) {
        tg_dist_allreduce_host(host, tg_numel(t), t->dtype, op, "tg_dist_all_reduce_");
        if (op == TG_DIST_AVG) scale_host(host, tg_numel(t), t->dtype, 1.0 / world.size);
        st = tg_dist_host_to_tensor(t, host);
    }
    free(host);
    return st;
}

/* ---------------------------------------------------------------- the differentiable all-reduce */

/* A new tensor holding the sum over ranks of x (any strides in, dense out). */
static tg_tensor *sum_over_ranks(tg_tensor *x, const char *what) {
    size_t nbytes = (size_t)tg_numel(x) * tg_elsize(x->dtype);
    void *host = malloc(nbytes ? nbytes : 1);
    if (!host) return tg_error_null(TG_ERR_NOMEM, "tg_dist_all_reduce: out of host memory");
    tg_tensor *out = NULL;
    if (tg_copy_to_host(x, host, nbytes) == TG_OK) {
        tg_dist_allreduce_host(host, tg_numel(x), x->dtype, TG_DIST_SUM, what);
        out = tg_from_data(host, x->dtype, tg_shape_of(x), x->storage->dev);
    }
    free(host);
    return out;
}

static tg_status allreduce_fwd(tg_function_ctx *c, tg_tensor *const *in, tg_tensor **out) {
    (void)c;
    out[0] = sum_over_ranks(in[0], "tg_dist_all_reduce");
    return out[0] ? TG_OK : tg_last_status();
}

static tg_status allreduce_bwd(tg_function_ctx *c, tg_tensor *const *gout, tg_tensor **gin) {
    (void)c;
    gin[0] = sum_over_ranks(gout[0], "the backward of tg_dist_all_reduce");
    return gin[0] ? TG_OK : tg_last_status();
}

static const tg_function allreduce_fn = { "dist_all_reduce", 1, 1, allreduce_fwd, allreduce_bwd };

tg_tensor *tg_dist_all_reduce(tg_tensor *x) {
    TG_API_ENTER("tg_dist_all_reduce");
    if (!x) return NULL;
    if (!tg_tensor_check("tg_dist_all_reduce", "x", x)) return NULL;
    if (x->dtype != TG_F32 && x->dtype != TG_F64)
        return tg_error_null(TG_ERR_DTYPE, "tg_dist_all_reduce: x is %s; the differentiable all-reduce takes f32 or f64",
                             tg_dtype_name(x->dtype));
    return tg_function_call(&allreduce_fn, NULL, 1, &x);
}
