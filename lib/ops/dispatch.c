/* Running an op: the steps every builder shared (check, shape, allocate, launch,
 * version, record), once, driven by the op's descriptor. */
#include <string.h>

#include "lib/ops/ops.h"

/* The i-th word of a descriptor's argument names ("a b cond"), or the last one for a
 * variadic op ("tensor"). */
static const char *arg_name(const tg_op_desc *d, int i, char *buf, size_t size) {
    if (d->n_in < 0) return d->args; /* variadic: every input has one name */
    const char *p = d->args;
    for (int k = 0; k < i; k++) {
        const char *sp = strchr(p, ' ');
        if (!sp) break;
        p = sp + 1;
    }
    size_t n = strcspn(p, " ");
    snprintf(buf, size, "%.*s", (int)n, p);
    return buf;
}

static bool check_inputs(const tg_op_desc *d, tg_op_call *c) {
    char name[32];
    for (int i = 0; i < c->n_in; i++)
        if (!tg_tensor_check(d->name, arg_name(d, i, name, sizeof name), c->in[i])) return false;
    tg_device *dev = tg_dev(c->in[0]);
    for (int i = 1; i < c->n_in; i++)
        if (tg_dev(c->in[i]) != dev) {
            tg_error(TG_ERR_DEVICE, "%s: tensors on two devices: %s and %s (copy one with tg_to)", d->name, dev->name,
                     tg_dev(c->in[i])->name);
            return false;
        }
    return !(d->flags & TG_OPF_FLOAT) || tg_op_float(d->name, c->in[0]);
}

static bool allocate(const tg_op_desc *d, tg_op_call *c) {
    if (d->flags & TG_OPF_INPLACE) {
        c->out[0] = c->in[0];
        return true;
    }
    if (d->flags & TG_OPF_VIEW) {
        tg_out_spec *s = &c->out_spec[0];
        c->out[0] = tg_tensor_alias(c->in[0], s->ndim, s->shape, c->view_strides, c->view_offset);
        return c->out[0] != NULL;
    }
    for (int k = 0; k < c->n_out; k++) {
        tg_out_spec *s = &c->out_spec[k];
        c->out[k] = tg_tensor_new(s->dtype, s->ndim, s->shape, s->dev ? s->dev : tg_dev(c->in[0]));
        if (!c->out[k]) return false;
    }
    return true;
}

/* The node: edges to every input, the differentiable outputs, the typed arguments,
 * the saved inputs (in order), output 0 if the rule reads it, then the launch's extras. */
static bool record(const tg_op_desc *d, tg_op_call *c) {
    tg_tensor *outs[TG_OP_MAX_OUT];
    for (int k = 0; k < c->n_out; k++) outs[k] = c->out_spec[k].no_grad ? NULL : c->out[k];
    tg_node *n = tg_node_record_multi(c->op, c->n_out, outs, c->n_in, c->in);
    if (!n) return false;
    n->args = c->args;
    for (int i = 0; i < c->n_in; i++)
        if (i < 32 && (d->save_in >> i & 1)) tg_node_save(n, c->in[i]); /* save_in has 32 bits */
    if (d->flags & TG_OPF_SAVE_OUT) tg_node_save_output(n, c->out[0]);
    for (int k = 0; k < c->n_extra; k++) tg_node_save(n, c->extra_save[k]);
    return true;
}

static tg_status run(tg_op_call *c) {
    const tg_op_desc *d = &tg_ops[c->op];
    TG_API_ENTER(d->name);
    if (c->n_in < 1 || !c->in) return tg_error(TG_ERR_INVALID, "%s: needs at least one tensor", d->name);
    if (!check_inputs(d, c)) return tg_last_status();
    c->n_out = 1;
    c->n_extra = 0;
    c->no_record = false;
    if (!d->shape(c)) return tg_last_status();
    if (!allocate(d, c)) return tg_last_status();
    tg_status st = d->launch(c);
    if (st == TG_OK && (d->flags & TG_OPF_INPLACE)) atomic_fetch_add(&c->in[0]->storage->version, 1);
    if (st == TG_OK && !(d->flags & TG_OPF_NOGRAD) && !c->no_record && tg_node_should_record(c->n_in, c->in) &&
        !record(d, c))
        st = tg_last_status();
    for (int k = 0; k < c->n_extra; k++) tg_tensor_decref(c->extra_save[k]);
    return st;
}

tg_tensor *tg_op_run(tg_op_call *c) { return run(c) == TG_OK ? c->out[0] : NULL; }

tg_status tg_op_run_status(tg_op_call *c) { return run(c); }

/* Output 0 like input 0: elementwise ops, copies. */
bool tg_same_shape(tg_op_call *c) {
    tg_tensor *x = c->in[0];
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = x->dtype;
    s->ndim = x->ndim;
    memcpy(s->shape, x->shape, sizeof s->shape);
    return true;
}

tg_status tg_copy_launch(tg_op_call *c) { return tg_dev(c->in[0])->be->copy(c->out[0], c->in[0]); }
