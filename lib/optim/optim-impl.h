/* The optimizer's internals, shared by optim.c (groups, registry, state), updates.c
 * (the per-kind update rules), lbfgs.c, clip.c and sched.c. Nothing here is a kernel:
 * every update is public ops run with grad mode off. */
#ifndef TG_OPTIM_IMPL_H
#define TG_OPTIM_IMPL_H

#include "lib/graph/error.h"
#include "tapegrad.h"

typedef enum { TG_K_SGD, TG_K_ADAGRAD, TG_K_RMSPROP, TG_K_ADAM, TG_K_ADAMW, TG_K_LBFGS } tg_optim_kind;

/* One group's options (PyTorch's param_group dict). */
typedef struct {
    double lr, weight_decay, momentum, dampening, alpha, eps, beta1, beta2, lr_decay, iav;
    bool nesterov, maximize, centered, amsgrad;
    double initial_lr; /* set once by the first schedule (PyTorch's setdefault) */
    bool has_initial_lr;
    int64_t max_iter, max_eval, history_size; /* L-BFGS */
    double tolerance_grad, tolerance_change;
    int line_search;
} tg_optim_hp;

#define TG_OPTIM_NSTATE 3
typedef struct {
    tg_optim_hp hp;
    int n;              /* parameters, frozen ones included (PyTorch numbers them all) */
    tg_tensor **params; /* owned references */
    int first;          /* the optimizer-wide number of params[0] */
    int nt;             /* trainable ones: in the flat buffers, in order */
    int *tidx;          /* [nt] index into params */
    int64_t *offset, *numel; /* [nt] */
    int64_t *step;           /* [nt] per parameter, as PyTorch's state[p]['step'] */
    uint8_t *has_buf;        /* [nt] SGD: momentum buffer initialised */
    tg_tensor *flat, *flat_grad; /* owned; NULL when nt == 0 */
    int64_t total;
    tg_tensor *state[TG_OPTIM_NSTATE]; /* flat state, made at first use */
} tg_optim_group;

typedef struct tg_lbfgs_state tg_lbfgs_state;

#define TG_OPTIM_NSCAL 16
struct tg_optim {
    tg_optim_kind kind;
    const char *name; /* "tg_adam" */
    tg_optim_hp defaults;
    int n_groups;
    tg_optim_group *groups;
    int n_params;       /* across groups */
    uint8_t *arrived;   /* [n_params] a gradient reached it since zero_grad (guarded by the registry lock) */
    uint64_t serial;    /* never reused: hooks and schedules find the optimizer by it */
    tg_optim *next_live;
    int64_t n_ops, last_ops;
    tg_tensor *scal[TG_OPTIM_NSCAL]; /* cached 0-d constants for in-place products */
    double scal_val[TG_OPTIM_NSCAL]; /* their values, kept on the host: reading one back would sync a device */
    int scal_next;
    tg_lbfgs_state *lb;
};

/* The registry of live optimizers. */
tg_optim *tg_optim_lookup(uint64_t serial);
bool tg_optim_is_live(const tg_optim *o);
/* The kind's state names ("exp_avg", ...), NULL past the last. */
const char *tg_optim_state_name(tg_optim_kind k, int i);
/* Checks a group's options; fn names the caller in the message. */
tg_status tg_optim_check_hp(tg_optim_kind k, const tg_optim_hp *h);

/* Op accounting: each public op the optimizer runs counts once. */
static inline tg_tensor *tg_optim_c(tg_optim *o, tg_tensor *t) {
    o->n_ops++;
    return t;
}
static inline tg_status tg_optim_s(tg_optim *o, tg_status st) {
    o->n_ops++;
    return st;
}
/* A cached 0-d tensor holding value, like t's dtype and device. */
tg_tensor *tg_optim_scalar(tg_optim *o, const tg_tensor *like, double value);
/* The flat state k of group G (made full of init at first use), or NULL on failure. */
tg_tensor *tg_optim_state_buf(tg_optim *o, tg_optim_group *G, int k, double init);

/* One run of adjacent parameters that share a step count: views of the flat buffers. */
typedef struct {
    tg_tensor *p, *g, *s[TG_OPTIM_NSTATE];
    int64_t start, len; /* the run in the flat buffers */
    int64_t step;       /* after the increment */
    bool has_buf;
} tg_optim_run;
tg_status tg_optim_update(tg_optim *o, tg_optim_group *G, tg_optim_run *r);

/* L-BFGS (lbfgs.c). */
tg_status tg_lbfgs_step(tg_optim *o, tg_closure fn, void *ctx, double *loss);
void tg_lbfgs_free_state(tg_lbfgs_state *L);
tg_status tg_lbfgs_save(const tg_optim *o, tg_optim_state *out, int *cap);
tg_status tg_lbfgs_load_entry(tg_optim *o, const char *key, tg_tensor *t, bool apply);
tg_status tg_optim_state_push(tg_optim_state *out, int *cap, const char *name, tg_tensor *t);

/* Runs the user's closure in its own scope with grad mode on. */
tg_status tg_optim_call_closure(tg_closure fn, void *ctx, double *loss);

#endif
