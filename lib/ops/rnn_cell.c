/* The LSTM cell's pointwise part as one primitive, as PyTorch fuses it for its fused
 * cell: from the gate pre-activations (N, 4H), blocks i, f, g, o, and c_prev (N, H),
 *   c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g),   h = sigmoid(o) * tanh(c).
 * The gates may come in two parts, the input projection and the hidden one, summed by
 * the kernel (as PyTorch's fused cell takes them): a recurrent step then reads both
 * once instead of writing and re-reading their sum.
 * One kernel forward and one backward replace ten elementwise ops and their backwards
 * at every time step. Backward without create_graph runs the backend's kernel on the
 * activations saved in forward; with create_graph (second order) it is the same formulas
 * written with differentiable ops from the saved inputs. A backend without the kernels
 * gets the elementwise composition in forward too (it records its own nodes). */
#include "lib/ops/ops.h"

/* A dense copy of t when it is not dense, made without recording (launches only). */
static tg_tensor *dense(tg_tensor *t) { return tg_tensor_is_dense(t) ? t : tg_contiguous(tg_detach(t)); }

static bool check_args(const char *fn, const tg_tensor *gates, const tg_tensor *c_prev, const tg_tensor *hidden) {
    char b1[128], b2[128];
    if (gates->ndim != 2 || gates->shape[1] % 4 != 0)
        return tg_error(TG_ERR_SHAPE, "%s: input_gates must be (N, 4*H), got %s", fn,
                        tg_shape_str(b1, gates->ndim, gates->shape)), false;
    if (c_prev->ndim != 2 || c_prev->shape[0] != gates->shape[0] || c_prev->shape[1] != gates->shape[1] / 4)
        return tg_error(TG_ERR_SHAPE, "%s: c_prev must be (N, H) = [%lld,%lld] for input_gates %s, got %s", fn,
                        (long long)gates->shape[0], (long long)(gates->shape[1] / 4),
                        tg_shape_str(b1, gates->ndim, gates->shape), tg_shape_str(b2, c_prev->ndim, c_prev->shape)), false;
    if (c_prev->dtype != gates->dtype)
        return tg_error(TG_ERR_DTYPE, "%s: dtypes differ: input_gates %s, c_prev %s", fn, tg_dtype_name(gates->dtype),
                        tg_dtype_name(c_prev->dtype)), false;
    if (hidden && !tg_shape_equal(hidden->ndim, hidden->shape, gates->ndim, gates->shape))
        return tg_error(TG_ERR_SHAPE, "%s: hidden_gates must have the input gates' shape %s, got %s", fn,
                        tg_shape_str(b1, gates->ndim, gates->shape), tg_shape_str(b2, hidden->ndim, hidden->shape)), false;
    if (hidden && hidden->dtype != gates->dtype)
        return tg_error(TG_ERR_DTYPE, "%s: dtypes differ: input_gates %s, hidden_gates %s", fn,
                        tg_dtype_name(gates->dtype), tg_dtype_name(hidden->dtype)), false;
    return true;
}

bool tg_lstm_pointwise_shape(tg_op_call *c) {
    tg_tensor *gates = c->in[0], *c_prev = c->in[1], *hidden = c->n_in > 2 ? c->in[2] : NULL;
    if (!check_args("tg_lstm_pointwise", gates, c_prev, hidden)) return false;
    c->n_out = 2;
    for (int k = 0; k < 2; k++) c->out_spec[k] = (tg_out_spec){ .dtype = gates->dtype, .ndim = 2,
                                                                .shape = { gates->shape[0], gates->shape[1] / 4 } };
    return true;
}

/* Inputs (gates, c_prev[, hidden_gates]). Saves the activations (N, 5H) for backward,
 * after the saved inputs. */
tg_status tg_lstm_pointwise_launch(tg_op_call *c) {
    tg_device *dev = tg_dev(c->in[0]);
    int64_t ws_shape[2] = { c->in[0]->shape[0], c->in[0]->shape[1] / 4 * 5 };
    tg_tensor *ws = tg_tensor_new_unscoped(c->in[0]->dtype, 2, ws_shape, dev);
    if (!ws) return tg_last_status();
    tg_scope_begin();
    tg_tensor *gates = dense(c->in[0]), *c_prev = dense(c->in[1]), *hidden = c->n_in > 2 ? dense(c->in[2]) : NULL;
    tg_status st = gates && c_prev && (hidden || c->n_in < 3)
                       ? dev->be->lstm_pointwise(c->out[0], c->out[1], ws, gates, hidden, c_prev)
                       : tg_last_status();
    tg_scope_end();
    if (st == TG_OK) c->extra_save[c->n_extra++] = ws; /* the call's ref, dropped after recording */
    else tg_tensor_decref(ws);
    return st;
}

/* Inputs (dh, dc, workspace, c_prev); outputs dgates (N, 4H) and dc_prev (N, H). */
bool tg_lstm_pointwise_backward_shape(tg_op_call *c) {
    tg_tensor *dc = c->in[1];
    c->n_out = 2;
    c->out_spec[0] = (tg_out_spec){ .dtype = dc->dtype, .ndim = 2, .shape = { dc->shape[0], dc->shape[1] * 4 } };
    c->out_spec[1] = (tg_out_spec){ .dtype = dc->dtype, .ndim = 2, .shape = { dc->shape[0], dc->shape[1] } };
    return true;
}

tg_status tg_lstm_pointwise_backward_launch(tg_op_call *c) {
    tg_scope_begin();
    tg_tensor *dh = dense(c->in[0]), *dc = dense(c->in[1]), *ws = c->in[2], *c_prev = dense(c->in[3]);
    tg_status st = dh && dc && c_prev
                       ? tg_dev(dc)->be->lstm_pointwise_backward(c->out[0], c->out[1], dh, dc, ws, c_prev)
                       : tg_last_status();
    tg_scope_end();
    return st;
}

/* The cell from elementwise ops: forward on backends without the kernel. Writes the
 * activations it made to act[] (i, f, g, o, tanh(c)) when act is not NULL. */
static tg_tensor *composed(tg_tensor *gates, tg_tensor *c_prev, tg_tensor **c_out, tg_tensor **act) {
    tg_tensor *p[4];
    if (tg_chunk(gates, 4, 1, p) != 4) return NULL;
    tg_tensor *i = tg_sigmoid(p[0]), *f = tg_sigmoid(p[1]), *g = tg_tanh(p[2]), *o = tg_sigmoid(p[3]);
    tg_tensor *c = tg_add(tg_mul(f, c_prev), tg_mul(i, g)), *tc = tg_tanh(c);
    if (act) act[0] = i, act[1] = f, act[2] = g, act[3] = o, act[4] = tc;
    *c_out = c;
    return tg_mul(o, tc);
}

/* 1 - x */
static tg_tensor *one_minus(tg_tensor *x) { return tg_add_scalar(tg_neg(x), 1); }

tg_status tg_bw_lstm_pointwise(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *gates = tg_node_saved(n, 0), *c_prev = tg_node_saved(n, 1), *dh = gout[0], *dc = gout[1];
    if (!gates || !c_prev) return tg_last_status();
    /* With the gates in two parts both get the same gradient: one tensor in two slots,
     * which the engine never adds into in place while it is shared. */
    const bool split = n->n_inputs > 2;
    if (!tg_is_grad_enabled()) { /* the kernel, from the saved activations */
        tg_tensor *ws = tg_node_saved(n, n->n_inputs);
        if (!ws) return tg_last_status();
        tg_op_call *c = TG_OP_CALL(TG_OP_LSTM_POINTWISE_BACKWARD, 4, dh, dc, ws, c_prev);
        if (!tg_op_run(c)) return tg_last_status();
        gin[0] = c->out[0], gin[1] = c->out[1];
        if (split) gin[2] = gin[0];
        return TG_OK;
    }
    /* create_graph: differentiable in gates, c_prev, dh and dc */
    if (split && !(gates = tg_add(gates, tg_node_saved(n, 2)))) return tg_last_status();
    tg_tensor *a[5], *c;
    if (!composed(gates, c_prev, &c, a)) return tg_last_status();
    tg_tensor *i = a[0], *f = a[1], *g = a[2], *o = a[3], *tc = a[4];
    tg_tensor *dct = tg_add(dc, tg_mul(dh, tg_mul(o, one_minus(tg_square(tc)))));
    tg_tensor *parts[4] = {
        tg_mul(tg_mul(dct, g), tg_mul(i, one_minus(i))),
        tg_mul(tg_mul(dct, c_prev), tg_mul(f, one_minus(f))),
        tg_mul(tg_mul(dct, i), one_minus(tg_square(g))),
        tg_mul(tg_mul(dh, tc), tg_mul(o, one_minus(o))),
    };
    gin[0] = tg_cat(4, parts, 1);
    gin[1] = tg_mul(dct, f);
    if (split) gin[2] = gin[0];
    return gin[0] && gin[1] ? TG_OK : tg_last_status();
}

tg_status tg_lstm_pointwise(tg_tensor *input_gates, tg_tensor *hidden_gates, tg_tensor *c_prev, tg_tensor **h,
                            tg_tensor **c) {
    TG_API_ENTER("tg_lstm_pointwise");
    const char *fn = "tg_lstm_pointwise";
    if (h) *h = NULL;
    if (c) *c = NULL;
    if (!h || !c) return tg_error(TG_ERR_INVALID, "tg_lstm_pointwise: h and c must not be NULL");
    if (!tg_op_nonnull(fn, "input_gates", input_gates) || !tg_op_nonnull(fn, "c_prev", c_prev) ||
        !tg_op_compatible(fn, input_gates, c_prev) ||
        (hidden_gates && !tg_op_compatible(fn, input_gates, hidden_gates)) || !tg_op_float(fn, input_gates) ||
        !check_args(fn, input_gates, c_prev, hidden_gates))
        return tg_last_status();
    const tg_backend *be = tg_dev(input_gates)->be;
    if (!be->lstm_pointwise || !be->lstm_pointwise_backward) {
        tg_tensor *gates = hidden_gates ? tg_add(input_gates, hidden_gates) : input_gates;
        *h = gates ? composed(gates, c_prev, c, NULL) : NULL;
        if (!*h) *c = NULL;
        return *h ? TG_OK : tg_last_status();
    }
    tg_op_call *call = hidden_gates ? TG_OP_CALL(TG_OP_LSTM_POINTWISE, 3, input_gates, c_prev, hidden_gates)
                                    : TG_OP_CALL(TG_OP_LSTM_POINTWISE, 2, input_gates, c_prev);
    if (!tg_op_run(call)) return tg_last_status();
    *h = call->out[0], *c = call->out[1];
    return TG_OK;
}
