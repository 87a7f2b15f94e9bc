/* Optimizers, learning-rate schedules, gradient clipping and ensembles, with
 * torch.optim's names, options, defaults and update order. Included by tapegrad.h.
 *
 *     tg_tensor *ps[2] = { w, b };                          // leaves made with tg_param
 *     tg_optim *opt = tg_adam_new(2, ps, &(tg_adam_opts){ .lr = TG_SOME(3e-4) });
 *     tg_sched *sched = tg_cosine_lr_new(opt, 100, 0.0);   // T_max 100, eta_min 0
 *     for (int epoch = 0; epoch < 100; epoch++) {
 *         tg_scope_begin();
 *         tg_optim_zero_grad(opt);
 *         tg_backward(tg_cross_entropy(tg_add(tg_matmul(x, w), b), y));
 *         tg_clip_grad_norm_(2, ps, 1.0, NULL);             // optional
 *         tg_optim_step(opt);                               // ops on flat buffers, grad mode off
 *         tg_scope_end();
 *         tg_sched_step(sched);
 *     }
 *     tg_sched_free(sched);
 *     tg_optim_free(opt);
 *
 * Layout. A constructor moves each group's parameters that require grad into one flat
 * buffer (tg_params_flatten: values and gradients kept, each parameter becomes a view)
 * and keeps every state tensor (exp_avg, momentum_buffer, ...) in the same layout, so
 * a step is a handful of ops over whole buffers whatever the number of tensors (on
 * OpenCL, as tg_device_launch_stats counts them: Adam 9 kernel launches, AdamW 10, SGD
 * with momentum 3, RMSprop 7, Adagrad 6; zero_grad and clipping one or a few). A
 * parameter that does not require grad at construction stays out of the buffers and
 * is never written. The parameters must not be views of other tensors, nor have views
 * of them alive, and a group must hold one float dtype on one device.
 *
 * Missing gradients. As PyTorch skips a parameter whose .grad is None, a step skips a
 * parameter that no backward reached since the last tg_optim_zero_grad (or since
 * construction): its value and its state (momentum, step count) stay as they were,
 * bit for bit. tg_optim_zero_grad is PyTorch's zero_grad(set_to_none=True) in that
 * respect; zeroing gradients by other means (tg_zero_grad) keeps the parameters
 * counted as having a (zero) gradient. Arrival is seen by a gradient hook on each
 * parameter (tg_register_hook); tg_autograd_grad runs hooks too and so counts.
 *
 * Options follow tapegrad.h's rule: NULL and zero fields mean PyTorch's defaults;
 * fields whose zero is legal but not the default are tg_opt_f64 set with TG_SOME.
 * Every update runs with grad mode off and uses only public ops, so it runs on every
 * device. Errors: constructors return NULL, other calls a tg_status, both with a
 * message in tg_last_error(). */
#ifndef TAPEGRAD_OPTIM_H
#define TAPEGRAD_OPTIM_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_optim tg_optim;
typedef struct tg_sched tg_sched;

/* An optional flag whose default is true: TG_SOME(false) turns it off. */
typedef struct {
    bool set;
    bool value;
} tg_opt_bool;

/* ---------------------------------------------------------------- optimizers */

typedef struct {
    tg_opt_f64 lr;       /* default 1e-3 (PyTorch 2's default; 1.13 had none) */
    double momentum;     /* 0 */
    double dampening;    /* 0 */
    double weight_decay; /* 0, L2 added to the gradient */
    bool nesterov;       /* needs momentum > 0 and dampening 0 */
    bool maximize;
} tg_sgd_opts;

typedef struct {
    tg_opt_f64 lr; /* 1e-2 */
    double lr_decay, weight_decay, initial_accumulator_value; /* 0, 0, 0 */
    tg_opt_f64 eps;                                           /* 1e-10 */
    bool maximize;
} tg_adagrad_opts;

typedef struct {
    tg_opt_f64 lr;    /* 1e-2 */
    tg_opt_f64 alpha; /* 0.99 */
    tg_opt_f64 eps;   /* 1e-8 */
    double weight_decay, momentum; /* 0, 0 */
    bool centered, maximize;
} tg_rmsprop_opts;

/* Adam and AdamW. AdamW's weight_decay is decoupled (p *= 1 - lr * wd) and defaults to
 * 1e-2; Adam's is L2 added to the gradient and defaults to 0. */
typedef struct {
    tg_opt_f64 lr;       /* 1e-3 */
    tg_opt_f64 betas[2]; /* 0.9, 0.999; each in [0, 1) */
    tg_opt_f64 eps;      /* 1e-8 */
    tg_opt_f64 weight_decay;
    bool amsgrad, maximize;
} tg_adam_opts;

typedef enum { TG_LINE_SEARCH_NONE, TG_LINE_SEARCH_STRONG_WOLFE } tg_line_search;
typedef struct {
    tg_opt_f64 lr;                /* 1 */
    int64_t max_iter;             /* 20 (0: the default; at least 1) */
    int64_t max_eval;             /* max_iter * 5 / 4 */
    tg_opt_f64 tolerance_grad;    /* 1e-7 */
    tg_opt_f64 tolerance_change;  /* 1e-9 */
    int64_t history_size;         /* 100 */
    tg_line_search line_search;   /* none, as PyTorch's line_search_fn=None */
} tg_lbfgs_opts;

/* Each constructor takes n parameters (leaves made with tg_param; those that do not
 * require grad are kept in the group but never touched) as parameter group 0, checks
 * the options ("tg_adam_new: invalid beta parameter at index 0: 1", as PyTorch words
 * it) and returns an optimizer to free with tg_optim_free, or NULL with a message. */
TG_API tg_optim *tg_sgd_new(int n, tg_tensor *const *params, const tg_sgd_opts *opts);
TG_API tg_optim *tg_adagrad_new(int n, tg_tensor *const *params, const tg_adagrad_opts *opts);
TG_API tg_optim *tg_rmsprop_new(int n, tg_tensor *const *params, const tg_rmsprop_opts *opts);
TG_API tg_optim *tg_adam_new(int n, tg_tensor *const *params, const tg_adam_opts *opts);
TG_API tg_optim *tg_adamw_new(int n, tg_tensor *const *params, const tg_adam_opts *opts);
/* L-BFGS holds one group; each step calls a closure (tg_optim_step_closure). */
TG_API tg_optim *tg_lbfgs_new(int n, tg_tensor *const *params, const tg_lbfgs_opts *opts);
/* Frees the optimizer and its state; the parameters stay (views of a buffer they keep
 * alive). Schedules on it report the freed optimizer from then on. NULL is fine. */
TG_API void tg_optim_free(tg_optim *opt);

/* One update of every group, with grad mode off. Temporaries die before it returns.
 * L-BFGS refuses it (it needs a closure). */
TG_API tg_status tg_optim_step(tg_optim *opt);
/* The loss closure: zero the gradients (tg_optim_zero_grad), compute the loss, run
 * tg_backward and store the loss in *loss. It runs in its own scope with grad mode on.
 * Return TG_OK, or an error to stop the step with. */
typedef tg_status (*tg_closure)(void *ctx, double *loss);
/* PyTorch's step(closure): evaluates closure once (L-BFGS: as often as it needs), steps,
 * and stores the first loss in *loss (may be NULL). */
TG_API tg_status tg_optim_step_closure(tg_optim *opt, tg_closure closure, void *ctx, double *loss);
/* Zeroes every group's gradients (one fill per group) and forgets which parameters had
 * one (see "Missing gradients" above). */
TG_API void tg_optim_zero_grad(tg_optim *opt);

/* Options of a new group; an unset field takes the optimizer's own value. Any other
 * option is set afterwards with tg_optim_set_option. */
typedef struct {
    tg_opt_f64 lr;
    tg_opt_f64 weight_decay;
} tg_param_group_opts;
/* Adds a group (L-BFGS refuses); returns its index, or -1 with a message. A parameter
 * may be in one group of one optimizer only. */
TG_API int tg_optim_add_param_group(tg_optim *opt, int n, tg_tensor *const *params, const tg_param_group_opts *opts);
TG_API int tg_optim_num_groups(const tg_optim *opt);
/* A group's learning rate (NaN with a message on a bad group). */
TG_API double tg_optim_get_lr(const tg_optim *opt, int group);
TG_API tg_status tg_optim_set_lr(tg_optim *opt, int group, double lr);
/* Any option of a group by PyTorch's key: "lr", "weight_decay", "momentum",
 * "dampening", "alpha", "eps", "lr_decay", "betas.0", "betas.1", "nesterov", "amsgrad",
 * "maximize", "centered" (flags as 0/1) ... Setting checks the value as the
 * constructor does; a key the optimizer does not have is an error. */
TG_API tg_status tg_optim_get_option(const tg_optim *opt, int group, const char *key, double *value);
TG_API tg_status tg_optim_set_option(tg_optim *opt, int group, const char *key, double value);
/* The number of tensor ops the last step ran: each one kernel launch on the CPU and on
 * OpenCL (tg_device_launch_stats counts the launches themselves). */
TG_API int64_t tg_optim_last_step_ops(const tg_optim *opt);

/* ---------------------------------------------------------------- state save / load
 *
 * The optimizer's state as named tensors with PyTorch's state_dict names, parameters
 * numbered across groups in order (frozen ones included):
 *   state.<i>.step (0-d f64 on the CPU), state.<i>.exp_avg, .exp_avg_sq,
 *   .max_exp_avg_sq, .momentum_buffer, .sum, .square_avg, .grad_avg (the parameter's
 *   shape, dtype and device), for each parameter that has stepped;
 *   param_groups.<g>.<key> for every option (0-d f64; betas a 1-D f64 of 2),
 *   param_groups.<g>.params (1-D i64 of the parameter numbers), and initial_lr once a
 *   schedule set it. L-BFGS keeps state.0.{d, t, old_dirs.<k>, old_stps.<k>, ro, H_diag,
 *   prev_flat_grad, prev_loss, n_iter, func_evals}. */
typedef struct {
    char name[64];
    tg_tensor *tensor; /* an owned reference (a copy, not a view of the live state) */
} tg_named_tensor;
typedef struct {
    int n;
    tg_named_tensor *items;
} tg_optim_state;

TG_API tg_status tg_optim_state_save(const tg_optim *opt, tg_optim_state *out);
/* Loads a saved state into an optimizer of the same kind with the same groups and
 * parameter shapes: options, step counts and buffers. An unknown name, or a tensor of
 * the wrong shape, is an error that leaves the optimizer as it was. */
TG_API tg_status tg_optim_state_load(tg_optim *opt, const tg_optim_state *state);
/* Releases the tensors and the list (NULL and an empty state are fine). */
TG_API void tg_optim_state_free(tg_optim_state *state);

/* ---------------------------------------------------------------- gradient clipping */

typedef struct {
    tg_opt_f64 norm_type;     /* 2; any p > 0, 0 (count of non-zeros) or INFINITY */
    bool error_if_nonfinite;  /* a NaN or infinite total norm is an error, nothing scaled */
} tg_clip_opts;
/* torch.nn.utils.clip_grad_norm_: the norm of all gradients together; if above max_norm
 * every gradient is scaled by max_norm / (norm + 1e-6). Parameters without a gradient
 * are skipped. Returns the total norm before clipping, or NaN with a message. */
TG_API double tg_clip_grad_norm_(int n, tg_tensor *const *params, double max_norm, const tg_clip_opts *opts);
/* The same over an optimizer's flat gradient buffers: one or two ops per group. */
TG_API double tg_optim_clip_grad_norm(tg_optim *opt, double max_norm, const tg_clip_opts *opts);
/* Clamps every gradient to [-clip_value, clip_value]. */
TG_API tg_status tg_clip_grad_value_(int n, tg_tensor *const *params, double clip_value);
TG_API tg_status tg_optim_clip_grad_value(tg_optim *opt, double clip_value);

/* ---------------------------------------------------------------- learning-rate schedules
 *
 * torch.optim.lr_scheduler step for step: a constructor records each group's initial_lr
 * (once per optimizer, as PyTorch's setdefault) and takes the first step, as PyTorch's
 * constructors do; tg_sched_step advances one epoch (or batch) and writes the new lr into
 * every group. The recursive ("chainable") forms are PyTorch's, so ChainedScheduler
 * composes the same way. A schedule whose optimizer was freed reports "tg_sched_step:
 * the schedule's optimizer was freed" rather than touching it. Free with tg_sched_free
 * before or after the optimizer. */

typedef struct {
    tg_opt_f64 gamma; /* 0.1 */
} tg_step_lr_opts;
TG_API tg_sched *tg_step_lr_new(tg_optim *opt, int64_t step_size, const tg_step_lr_opts *opts);
/* milestones increasing; lr *= gamma at each. */
TG_API tg_sched *tg_multistep_lr_new(tg_optim *opt, int n, const int64_t *milestones, const tg_step_lr_opts *opts);
TG_API tg_sched *tg_exponential_lr_new(tg_optim *opt, double gamma);
/* Inverse time decay, the notes' 1/t schedule: lr = initial_lr / (1 + decay * epoch). */
TG_API tg_sched *tg_inverse_time_lr_new(tg_optim *opt, double decay);
/* LambdaLR: lr = initial_lr * fn(epoch, ctx). */
TG_API tg_sched *tg_lambda_lr_new(tg_optim *opt, double (*fn)(int64_t epoch, void *ctx), void *ctx);

typedef struct {
    int64_t total_iters; /* 5 */
    tg_opt_f64 power;    /* 1 */
} tg_polynomial_lr_opts;
TG_API tg_sched *tg_polynomial_lr_new(tg_optim *opt, const tg_polynomial_lr_opts *opts);

typedef struct {
    tg_opt_f64 start_factor; /* 1/3, in (0, 1] */
    tg_opt_f64 end_factor;   /* 1, in [0, 1] */
    int64_t total_iters;     /* 5 */
} tg_linear_lr_opts;
TG_API tg_sched *tg_linear_lr_new(tg_optim *opt, const tg_linear_lr_opts *opts);

/* eta_min + (initial_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2, computed recursively
 * as PyTorch does. */
TG_API tg_sched *tg_cosine_lr_new(tg_optim *opt, int64_t T_max, double eta_min);

typedef struct {
    int64_t T_mult; /* 1 */
    double eta_min; /* 0 */
} tg_warm_restarts_opts;
/* SGDR: cosine over T_0 epochs, restarting with periods multiplied by T_mult. */
TG_API tg_sched *tg_cosine_warm_restarts_new(tg_optim *opt, int64_t T_0, const tg_warm_restarts_opts *opts);

typedef enum { TG_CYCLIC_TRIANGULAR, TG_CYCLIC_TRIANGULAR2, TG_CYCLIC_EXP_RANGE } tg_cyclic_mode;
typedef struct {
    double base_lr, max_lr;        /* required: the cycle's bounds */
    double step_size_up;           /* 2000 */
    tg_opt_f64 step_size_down;     /* step_size_up */
    tg_cyclic_mode mode;           /* triangular */
    tg_opt_f64 gamma;              /* 1, for exp_range */
    tg_opt_bool cycle_momentum;    /* true: cycles SGD/RMSprop momentum or Adam's beta1 */
    tg_opt_f64 base_momentum;      /* 0.8 */
    tg_opt_f64 max_momentum;       /* 0.9 */
} tg_cyclic_lr_opts;
TG_API tg_sched *tg_cyclic_lr_new(tg_optim *opt, const tg_cyclic_lr_opts *opts);

typedef enum { TG_ANNEAL_COS, TG_ANNEAL_LINEAR } tg_anneal_strategy;
typedef struct {
    double max_lr;                 /* required */
    int64_t total_steps;           /* or epochs * steps_per_epoch */
    int64_t epochs, steps_per_epoch;
    tg_opt_f64 pct_start;          /* 0.3 */
    tg_anneal_strategy anneal_strategy; /* cos */
    tg_opt_bool cycle_momentum;    /* true */
    tg_opt_f64 base_momentum;      /* 0.85 */
    tg_opt_f64 max_momentum;       /* 0.95 */
    tg_opt_f64 div_factor;         /* 25 */
    tg_opt_f64 final_div_factor;   /* 1e4 */
    bool three_phase;
} tg_onecycle_lr_opts;
TG_API tg_sched *tg_onecycle_lr_new(tg_optim *opt, const tg_onecycle_lr_opts *opts);

typedef enum { TG_PLATEAU_MIN, TG_PLATEAU_MAX } tg_plateau_mode;
typedef enum { TG_THRESHOLD_REL, TG_THRESHOLD_ABS } tg_threshold_mode;
typedef struct {
    tg_plateau_mode mode;               /* min */
    tg_opt_f64 factor;                  /* 0.1, < 1 */
    tg_opt_i64 patience;                /* 10 */
    tg_opt_f64 threshold;               /* 1e-4 */
    tg_threshold_mode threshold_mode;   /* rel */
    int64_t cooldown;                   /* 0 */
    double min_lr;                      /* 0 */
    tg_opt_f64 eps;                     /* 1e-8 */
} tg_plateau_opts;
/* ReduceLROnPlateau: stepped with tg_sched_step_metric. */
TG_API tg_sched *tg_reduce_lr_on_plateau_new(tg_optim *opt, const tg_plateau_opts *opts);

/* SequentialLR: scheds[i] runs from milestones[i-1] (n - 1 increasing milestones).
 * ChainedScheduler: every schedule steps each time, in order. Both take ownership of
 * the schedules (freed with the composite, also when the constructor fails), which
 * must share one optimizer. */
TG_API tg_sched *tg_sequential_lr_new(tg_optim *opt, int n, tg_sched *const *scheds, const int64_t *milestones);
TG_API tg_sched *tg_chained_scheduler_new(int n, tg_sched *const *scheds);

TG_API tg_status tg_sched_step(tg_sched *s);
/* ReduceLROnPlateau's step(metrics); other schedules refuse it. */
TG_API tg_status tg_sched_step_metric(tg_sched *s, double metric);
/* get_last_lr()[group] (NaN with a message for a bad group). */
TG_API double tg_sched_last_lr(const tg_sched *s, int group);
TG_API int64_t tg_sched_last_epoch(const tg_sched *s);
/* Whether the last step began a new cycle (SGDR's restart, CyclicLR's next cycle): the
 * moment a snapshot ensemble takes its snapshot. */
TG_API bool tg_sched_restarted(const tg_sched *s);
TG_API void tg_sched_free(tg_sched *s);

/* ---------------------------------------------------------------- ensembles */

/* A model's forward: logits (N, C, ...) for input x. */
typedef tg_tensor *(*tg_forward_fn)(void *ctx, tg_tensor *x);
/* Model ensembles: the mean over n models of softmax(fns[i](ctxs[i], x), axis), with grad
 * mode off; owned by the current scope. */
TG_API tg_tensor *tg_ensemble_softmax(int n, const tg_forward_fn *fns, void *const *ctxs, tg_tensor *x, int axis);

/* Snapshot ensembles (Huang et al.): copies of the parameters taken at each restart of a
 * cyclic schedule (if (tg_sched_restarted(s)) tg_snapshots_take(snaps);), whose
 * predictions are averaged. */
typedef struct tg_snapshots tg_snapshots;
TG_API tg_snapshots *tg_snapshots_new(int n, tg_tensor *const *params);
TG_API tg_status tg_snapshots_take(tg_snapshots *s);
TG_API int tg_snapshots_count(const tg_snapshots *s);
/* Loads each snapshot into the parameters in turn, runs fn, and averages the softmaxes;
 * the parameters' values are restored before it returns. */
TG_API tg_tensor *tg_snapshots_predict(tg_snapshots *s, tg_forward_fn fn, void *ctx, tg_tensor *x, int axis);
TG_API void tg_snapshots_free(tg_snapshots *s);

#ifdef __cplusplus
}
#endif
#endif
