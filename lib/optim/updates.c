/* The update rules of SGD, Adagrad, RMSprop, Adam and AdamW, in the order of
 * torch/optim/{sgd,adagrad,rmsprop,adam,adamw}.py (_single_tensor_*), as public ops on
 * one run of flat buffers with grad mode off. Each comment gives PyTorch's line; C()
 * and S() count the ops for tg_optim_last_step_ops. */
#include <math.h>

#include "lib/optim/optim-impl.h"
#include "tapegrad/optim.h"

#define C(t) tg_optim_c(o, (t))
#define S(st) tg_optim_s(o, (st))
#define TRY(x)                                \
    do {                                      \
        tg_status st_ = (x);                  \
        if (st_ != TG_OK) return st_;         \
    } while (0)
#define NONNULL(t) \
    if (!(t)) return tg_last_status()

/* grad = -grad if maximize; grad = grad.add(param, alpha=weight_decay) if wanted. g itself
 * when neither, so callers clone before writing into it. */
static tg_tensor *effective_grad(tg_optim *o, const tg_optim_hp *h, tg_tensor *p, tg_tensor *g, bool l2) {
    tg_tensor *d = h->maximize ? C(tg_neg(g)) : g;
    if (d && l2 && h->weight_decay != 0) {
        if (d == g) d = C(tg_clone(g));
        if (!d || S(tg_axpy_(d, h->weight_decay, p)) != TG_OK) return NULL;
    }
    return d;
}

/* buf.mul_(c), exactly as a product. */
static tg_status scale_(tg_optim *o, tg_tensor *buf, double c) {
    return S(tg_mul_(buf, tg_optim_scalar(o, buf, c)));
}

static tg_status sgd(tg_optim *o, const tg_optim_hp *h, tg_optim_run *r) {
    tg_tensor *d = effective_grad(o, h, r->p, r->g, true);
    NONNULL(d);
    if (h->momentum != 0) {
        tg_tensor *buf = r->s[0];
        if (!r->has_buf) TRY(S(tg_copy_(buf, d))); /* buf = torch.clone(d_p).detach() */
        else {
            TRY(scale_(o, buf, h->momentum)); /* buf.mul_(momentum).add_(d_p, alpha=1 - dampening) */
            TRY(S(tg_axpy_(buf, 1 - h->dampening, d)));
        }
        if (h->nesterov) { /* d_p = d_p.add(buf, alpha=momentum) */
            if (d == r->g) d = C(tg_clone(d));
            NONNULL(d);
            TRY(S(tg_axpy_(d, h->momentum, buf)));
        } else {
            d = buf;
        }
    }
    return S(tg_axpy_(r->p, -h->lr, d)); /* param.add_(d_p, alpha=-lr) */
}

static tg_status adagrad(tg_optim *o, const tg_optim_hp *h, tg_optim_run *r) {
    tg_tensor *d = effective_grad(o, h, r->p, r->g, true), *sum = r->s[0];
    NONNULL(d);
    double clr = h->lr / (1 + (double)(r->step - 1) * h->lr_decay);
    TRY(S(tg_add_(sum, C(tg_mul(d, d)))));                      /* state_sum.addcmul_(grad, grad, value=1) */
    tg_tensor *std = C(tg_add_scalar(C(tg_sqrt(sum)), h->eps)); /* std = state_sum.sqrt().add_(eps) */
    return S(tg_axpy_(r->p, -clr, C(tg_div(d, std))));          /* param.addcdiv_(grad, std, value=-clr) */
}

static tg_status rmsprop(tg_optim *o, const tg_optim_hp *h, tg_optim_run *r) {
    tg_tensor *d = effective_grad(o, h, r->p, r->g, true), *sq = r->s[0];
    NONNULL(d);
    TRY(scale_(o, sq, h->alpha)); /* square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha) */
    TRY(S(tg_axpy_(sq, 1 - h->alpha, C(tg_mul(d, d)))));
    tg_tensor *avg;
    if (h->centered) {
        tg_tensor *ga = r->s[2];
        TRY(scale_(o, ga, h->alpha)); /* grad_avg.mul_(alpha).add_(grad, alpha=1 - alpha) */
        TRY(S(tg_axpy_(ga, 1 - h->alpha, d)));
        avg = C(tg_sqrt(C(tg_sub(sq, C(tg_mul(ga, ga)))))); /* square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_() */
    } else {
        avg = C(tg_sqrt(sq));
    }
    avg = C(tg_add_scalar(avg, h->eps)); /* avg = avg.add_(eps) */
    if (h->momentum > 0) {
        tg_tensor *buf = r->s[1];
        TRY(scale_(o, buf, h->momentum)); /* buf.mul_(momentum).addcdiv_(grad, avg) */
        TRY(S(tg_add_(buf, C(tg_div(d, avg)))));
        return S(tg_axpy_(r->p, -h->lr, buf)); /* param.add_(buf, alpha=-lr) */
    }
    return S(tg_axpy_(r->p, -h->lr, C(tg_div(d, avg)))); /* param.addcdiv_(grad, avg, value=-lr) */
}

static tg_status adam(tg_optim *o, const tg_optim_hp *h, tg_optim_run *r, bool decoupled) {
    tg_tensor *d = effective_grad(o, h, r->p, r->g, !decoupled), *m = r->s[0], *v = r->s[1];
    NONNULL(d);
    if (decoupled && h->weight_decay != 0) TRY(scale_(o, r->p, 1 - h->lr * h->weight_decay)); /* param.mul_(1 - lr * wd) */
    TRY(scale_(o, m, h->beta1)); /* exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1) */
    TRY(S(tg_axpy_(m, 1 - h->beta1, d)));
    TRY(scale_(o, v, h->beta2)); /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad.conj(), value=1 - beta2) */
    TRY(S(tg_axpy_(v, 1 - h->beta2, C(tg_mul(d, d)))));
    double bc1 = 1 - pow(h->beta1, (double)r->step), bc2 = 1 - pow(h->beta2, (double)r->step);
    double step_size = h->lr / bc1, bc2_sqrt = sqrt(bc2);
    tg_tensor *vv = v;
    if (h->amsgrad) { /* torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i]) */
        TRY(S(tg_copy_(r->s[2], C(tg_maximum(r->s[2], v)))));
        vv = r->s[2];
    }
    /* denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);
     * param.addcdiv_(exp_avg, denom, value=-step_size), with bias_correction2_sqrt moved
     * out of the denominator (PyTorch's foreach form): one launch fewer, equal to rounding */
    tg_tensor *denom = C(tg_add_scalar(C(tg_sqrt(vv)), h->eps * bc2_sqrt));
    return S(tg_axpy_(r->p, -step_size * bc2_sqrt, C(tg_div(m, denom))));
}

tg_status tg_optim_update(tg_optim *o, tg_optim_group *G, tg_optim_run *r) {
    const tg_optim_hp *h = &G->hp;
    bool need[TG_OPTIM_NSTATE] = { false };
    double init = 0;
    switch (o->kind) {
    case TG_K_SGD: need[0] = h->momentum != 0; break;
    case TG_K_ADAGRAD: need[0] = true, init = h->iav; break;
    case TG_K_RMSPROP: need[0] = true, need[1] = h->momentum > 0, need[2] = h->centered; break;
    case TG_K_ADAM:
    case TG_K_ADAMW: need[0] = need[1] = true, need[2] = h->amsgrad; break;
    case TG_K_LBFGS: return tg_error(TG_ERR_INVALID, "optim: L-BFGS has no plain step");
    }
    int64_t total = G->total, n = r->len, a = r->start;
    for (int k = 0; k < TG_OPTIM_NSTATE; k++) {
        if (!need[k]) continue;
        tg_tensor *buf = tg_optim_state_buf(o, G, k, k == 0 ? init : 0);
        NONNULL(buf);
        r->s[k] = n == total ? buf : tg_slice(buf, 0, a, a + n, 1);
        NONNULL(r->s[k]);
    }
    switch (o->kind) {
    case TG_K_SGD: return sgd(o, h, r);
    case TG_K_ADAGRAD: return adagrad(o, h, r);
    case TG_K_RMSPROP: return rmsprop(o, h, r);
    case TG_K_ADAM: return adam(o, h, r, false);
    default: return adam(o, h, r, true);
    }
}
