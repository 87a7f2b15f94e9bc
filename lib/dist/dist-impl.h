/* lib/dist internals: host-memory collectives with a deadline over the private
 * communicators (comm.c), the cross-rank layout check (layout.c), and host staging of
 * tensors. Without MPI (no TG_HAVE_MPI) every collective is that of a world of 1. */
#ifndef TG_DIST_IMPL_H
#define TG_DIST_IMPL_H

#include "tapegrad.h"
#include "tapegrad/dist.h"

#ifdef TG_HAVE_MPI
#include <mpi.h>
typedef MPI_Request tg_dist_req;
#else
typedef int tg_dist_req;
#endif

/* Which private communicator: gradient buckets run on their own so that their
 * non-blocking all-reduces never interleave with the blocking collectives of
 * SyncBatchNorm or of the user's calls. */
typedef enum { TG_DIST_COMM_MAIN, TG_DIST_COMM_GRAD } tg_dist_comm_kind;

/* Blocking collectives on host memory, completed with the deadline (abort on timeout).
 * what names the operation in the timeout message ("broadcast of 'fc.weight'"). */
void tg_dist_bcast_bytes(void *buf, size_t n, int root, const char *what);
void tg_dist_allgather_bytes(const void *send, void *recv, size_t each, const char *what);
void tg_dist_allreduce_host(void *buf, int64_t count, tg_dtype dtype, tg_dist_op op, const char *what);

/* Non-blocking sum over ranks in place; tg_dist_test returns whether it completed (and
 * then frees the request); tg_dist_wait_req waits with the deadline. */
tg_dist_req tg_dist_iallreduce_sum(void *buf, int64_t count, tg_dtype dtype, tg_dist_comm_kind comm);
bool tg_dist_test(tg_dist_req *req);
void tg_dist_wait_req(tg_dist_req *req, const char *what);

/* Seconds on a monotonic clock. */
double tg_dist_now(void);

/* Copies host (numel * dtype size bytes, dense) into t in place without recording
 * (bumps t's version, as an in-place op does). */
tg_status tg_dist_host_to_tensor(tg_tensor *t, const void *host);

/* Compares names, dtypes and shapes of n tensors across every rank (a hash first, the
 * lists only when they differ); on a difference every rank returns TG_ERR_INVALID with
 * "<api>: rank R differs from rank 0 in <what> I: ...". Collective. */
tg_status tg_dist_check_layout(const char *api, const char *what, int n, char *const *names,
                               tg_tensor *const *tensors);

#endif
