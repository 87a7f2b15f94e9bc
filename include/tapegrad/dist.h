/* Data-parallel training over MPI, as PyTorch's torch.distributed and
 * DistributedDataParallel. Included by tapegrad.h; it can also be included on its own.
 *
 *     // mpirun -np 2 ./train     (each process trains on its own shard of every batch)
 *     tg_dist_init(NULL);                                    // rank and size from mpirun
 *     tg_module *net = cnn_new(dev);                         // any seed: rank 0's weights win
 *     tg_ddp *ddp = tg_ddp_new(net, NULL);                   // broadcasts parameters and buffers
 *     tg_named ps; tg_module_parameters(net, true, &ps);
 *     tg_optim *opt = tg_adam_new(ps.n, ps.tensors, NULL);
 *     for (int step = 0; step < steps; step++) {
 *         tg_scope_begin();
 *         tg_optim_zero_grad(opt);
 *         tg_tensor *loss = tg_cross_entropy(tg_ddp_forward(ddp, x_local), y_local);
 *         tg_ddp_backward(ddp, loss);                        // gradients averaged over ranks
 *         tg_optim_step(opt);                                // every rank takes the same step
 *         tg_scope_end();
 *     }
 *     tg_dist_run_on_root(0, save_checkpoint, net);          // rank 0 writes; all wait for it
 *     tg_ddp_free(ddp);
 *     tg_dist_finalize();
 *
 * World. A process started by mpirun (Open MPI, MPICH: any MPI through its C API) is one
 * rank of a world of mpirun's size; a process started without mpirun is a world of 1
 * (MPI is then not initialised at all), where every collective is a copy or nothing,
 * so the same program runs both ways. A library built without MPI (-Dmpi=disabled) is
 * also a world of 1, and its tg_dist_init fails with a message when an MPI launcher
 * started the process as one of several (each would otherwise train alone).
 *
 * Threads. Call every tg_dist and tg_ddp function (and the backward of a DDP model or
 * of a SyncBatchNorm) from the thread that called tg_dist_init.
 *
 * Timeouts. No collective waits forever: each polls for completion with a deadline
 * (opts->timeout, else $TG_DIST_TIMEOUT seconds, else 300). A rank whose partner failed
 * or skipped a collective prints "tg_dist: rank 1 of 2: timed out after 300 s in
 * all-reduce of gradient bucket 0 ..." on stderr and calls MPI_Abort, which stops every
 * rank with a non-zero exit status instead of hanging.
 */
#ifndef TAPEGRAD_DIST_H
#define TAPEGRAD_DIST_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* From tapegrad/nn.h (repeated so that this header reads on its own, whichever
 * header comes first). */
typedef struct tg_module tg_module;
typedef struct tg_state_dict tg_state_dict;

/* ---------------------------------------------------------------- the world */

typedef struct {
    double timeout; /* seconds a collective may take before every rank is aborted; 0: $TG_DIST_TIMEOUT, else 300 */
} tg_dist_opts;

/* Joins the world: MPI_Init_thread (unless the program initialised MPI itself, which
 * then also finalizes it) and a private communicator. Idempotent: later calls return
 * TG_OK and only update the timeout. Errors: TG_ERR_STATE after tg_dist_finalize (MPI
 * cannot start twice in a process), or when built without MPI and started by mpirun
 * with more than one process; TG_ERR_BACKEND when MPI fails; TG_ERR_INVALID for a
 * negative or NaN timeout (or an unreadable TG_DIST_TIMEOUT). */
TG_API tg_status tg_dist_init(const tg_dist_opts *opts);
/* Leaves the world (MPI_Finalize when tg_dist_init started MPI). Every rank must call
 * it. Without tg_dist_init, or a second time, it does nothing. */
TG_API void tg_dist_finalize(void);
TG_API bool tg_dist_is_initialized(void);
/* This process's rank in [0, size) and the world's size: 0 and 1 before tg_dist_init,
 * after tg_dist_finalize and in a world of 1. */
TG_API int tg_dist_rank(void);
TG_API int tg_dist_world_size(void);
/* The timeout in seconds that collectives use. */
TG_API double tg_dist_timeout(void);

/* ---------------------------------------------------------------- collectives
 * Every rank must make the same calls in the same order with tensors of the same shape
 * and dtype (f32, f64, i32, i64 or u8; any device: device tensors go through host
 * memory). Before tg_dist_init they act as in a world of 1. They return TG_OK or an
 * error for bad arguments; a collective that does not complete in time aborts every
 * rank (see Timeouts above). */

TG_API tg_status tg_dist_barrier(void);
/* Copies root's values of t into t on every other rank, in place (no grad recorded;
 * t may be a parameter). root in [0, size). */
TG_API tg_status tg_dist_broadcast_(tg_tensor *t, int root);

typedef enum { TG_DIST_SUM, TG_DIST_AVG, TG_DIST_MAX, TG_DIST_MIN } tg_dist_op;
/* t = op over the ranks' t, in place, on every rank (no grad recorded). AVG is float
 * only (the sum divided by the world size). */
TG_API tg_status tg_dist_all_reduce_(tg_tensor *t, tg_dist_op op);
/* The differentiable all-reduce: a new tensor, the sum over ranks of x (f32 or f64),
 * whose backward all-reduces the incoming gradient (the gradient of sum_r L_r through
 * every rank's copy), so each rank's backward must reach it too. NULL in, NULL out. */
TG_API tg_tensor *tg_dist_all_reduce(tg_tensor *x);

/* ---------------------------------------------------------------- DistributedDataParallel */

typedef struct tg_ddp tg_ddp;
typedef struct {
    double bucket_cap_mb;      /* gradient bucket size in MiB (PyTorch's bucket_cap_mb): 25; the
                                  first bucket (the last layers) holds at most 1 MiB, as PyTorch's */
    tg_opt_bool broadcast_buffers; /* true: rank 0's buffers (BatchNorm's running statistics) are
                                  broadcast before every tg_ddp_forward in training, as PyTorch */
} tg_ddp_opts;

/* Wraps module m (borrowed: it must outlive the wrapper) for data-parallel training.
 * Collective: every rank calls it with a module of the same layout. It first compares
 * the trainable parameters and the buffers of every rank (names, dtypes, shapes: a
 * hash, then the lists); on a difference every rank fails with TG_ERR_INVALID and
 * "tg_ddp_new: rank 1 differs from rank 0 in parameter 3: 'fc.weight' f32 [10,21] on
 * rank 1, 'fc.weight' f32 [10,20] on rank 0". It then broadcasts rank 0's parameters
 * and buffers to the others, and puts the trainable parameters in buckets of about
 * bucket_cap_mb (in reverse registration order, the order in which backward reaches
 * them; one dtype a bucket) and hooks each (tg_register_hook).
 *
 * Gradients. During backward, as soon as every gradient of a bucket is final, the
 * bucket is copied into its host buffer and its all-reduce (MPI_Iallreduce) starts,
 * while backward goes on with the layers below; tg_ddp_wait (or tg_ddp_backward) starts
 * what is left, waits for all, and writes each gradient back as the average over ranks.
 * Buckets start in a fixed order on every rank. Finality is known from the number of
 * gradients each parameter received in the previous backward (a parameter used twice
 * gets two), so the first backward after tg_ddp_new reduces everything in tg_ddp_wait;
 * after it the buckets are rebuilt in the order rank 0's gradients became final (as
 * PyTorch's rebuild_buckets). A later backward in which a parameter gets more
 * gradients than in the one before, after its bucket started (the graph changed), fails
 * with a message naming it; the next backward relearns the counts. Accumulating
 * gradients over several backward passes (PyTorch's no_sync) is not supported: call
 * tg_ddp_wait after every backward. tg_autograd_grad through the model is not averaged.
 * On an OpenCL device the buckets are staged through pinned host memory (a buffer the
 * driver allocates in host memory, mapped once, so transfers go by DMA without another
 * copy): one download per gradient into its bucket, one upload back.
 * A parameter no rank's backward reached keeps no gradient; one that some ranks
 * reached gets the average with zeros from the others. Returns NULL with a message on
 * error (m NULL, no trainable parameter, the layout check, out of memory). */
TG_API tg_ddp *tg_ddp_new(tg_module *m, const tg_ddp_opts *opts);
/* Frees the wrapper; its hooks stay on the parameters but do nothing from then on
 * (other hooks, an optimizer's, are untouched). NULL is fine. The module stays the
 * caller's. */
TG_API void tg_ddp_free(tg_ddp *d);
TG_API tg_module *tg_ddp_module(const tg_ddp *d);
/* tg_module_forward(m, x), after broadcasting rank 0's buffers when m is training and
 * broadcast_buffers is on. x is this rank's shard of the batch. */
TG_API tg_tensor *tg_ddp_forward(tg_ddp *d, tg_tensor *x);
/* Starts the buckets not started yet, waits for every all-reduce and averages the
 * gradients. Call it after each backward, before the optimizer step. */
TG_API tg_status tg_ddp_wait(tg_ddp *d);
/* tg_backward(loss) then tg_ddp_wait(d). */
TG_API tg_status tg_ddp_backward(tg_ddp *d, tg_tensor *loss);

typedef struct {
    int buckets;            /* number of gradient buckets */
    int64_t bytes_per_step; /* gradient bytes each rank all-reduces per step */
    int64_t steps;          /* tg_ddp_wait calls counted */
    int64_t buckets_early;  /* buckets started during backward (the rest started in tg_ddp_wait) */
    double allreduce_s;     /* summed over steps: from the first bucket's start to the last one's end */
    double wait_s;          /* summed over steps: time blocked in tg_ddp_wait (the part not overlapped) */
    int pinned_buckets;     /* buckets staged in the device's pinned host memory (OpenCL:
                               CL_MEM_ALLOC_HOST_PTR, mapped); the others in plain memory */
} tg_ddp_stats;
/* The counters since tg_ddp_new or the last reset. The overlapped share of the
 * all-reduce time is 1 - wait_s / allreduce_s. */
TG_API tg_status tg_ddp_get_stats(tg_ddp *d, tg_ddp_stats *out, bool reset);

/* ---------------------------------------------------------------- SyncBatchNorm */

typedef struct {
    tg_opt_f64 eps;       /* 1e-5 */
    tg_opt_f64 momentum;  /* 0.1; ignored with cumulative */
    bool cumulative;      /* PyTorch's momentum=None: running stats are the cumulative average */
    bool no_affine;       /* PyTorch's affine=False: no weight and bias */
    bool no_track_running_stats; /* PyTorch's track_running_stats=False: no buffers */
} tg_sync_batchnorm_opts;
/* torch.nn.SyncBatchNorm: BatchNorm over the whole global batch. The options of
 * tg_batchnorm_opts, and the same parameters and buffers (names, init) as
 * tg_batchnorm2d_new, so state dicts carry over.
 * Input (N, C), (N, C, L) or (N, C, H, W) -> same shape. In training, each rank sums
 * per channel x and x^2 and counts its elements, one differentiable all-reduce
 * (tg_dist_all_reduce) of (sum, sum of squares, count) gives the global mean and
 * biased variance, and the backward all-reduces their gradients in turn; the running
 * statistics get the global mean and unbiased variance. Every rank must run the
 * forward (and backward) of each SyncBatchNorm the same number of times. In eval, or
 * in a world of 1, it is BatchNorm. Errors as BatchNorm's. */
TG_API tg_module *tg_sync_batchnorm_new(int64_t num_features, const tg_sync_batchnorm_opts *opts, tg_device *dev);

/* ---------------------------------------------------------------- checkpoints */

/* Runs fn(ctx) on rank root only (saving a checkpoint: the others must not write the
 * same file), then gives every rank fn's status (a failure on root is a failure
 * everywhere, with root's message) after a barrier, so that no rank reads the file
 * before it is complete. */
TG_API tg_status tg_dist_run_on_root(int root, tg_status (*fn)(void *ctx), void *ctx);
/* A state dict on every rank with root's names, dtypes, shapes and values: on root a
 * copy of sd, elsewhere new tensors on dev (NULL: the CPU), sd being ignored there (it
 * may be NULL). Load a checkpoint on root only, broadcast it, and tg_module_load_state_dict
 * it on every rank. Returns a new state dict to free with tg_state_dict_free, or NULL
 * with a message on every rank (sd NULL on root, root out of range). */
TG_API tg_state_dict *tg_dist_broadcast_state_dict(const tg_state_dict *sd, int root, tg_device *dev);

#ifdef __cplusplus
}
#endif
#endif
