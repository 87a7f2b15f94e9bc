/* matmul with numpy semantics: 1-D operands become matrices and lose the axis again,
 * leading batch axes broadcast (as stride-0 views, never copies). */
#include <string.h>

#include "lib/ops/macs.h"
#include "lib/ops/ops.h"

/* The primitive: a (..., M, K) @ b (..., K, N), both at least 2-D, batch axes broadcast. */
bool tg_matmul_shape(tg_op_call *c) {
    tg_tensor *a = c->in[0], *b = c->in[1];
    char b1[128], b2[128];
    int na = a->ndim, nb = b->ndim;
    if (!tg_op_compatible("tg_matmul", a, b)) return false;
    if (a->shape[na - 1] != b->shape[nb - 2]) {
        tg_error(TG_ERR_SHAPE, "tg_matmul: inner dimensions differ: %s @ %s (%lld != %lld)",
                 tg_shape_str(b1, na, a->shape), tg_shape_str(b2, nb, b->shape), (long long)a->shape[na - 1],
                 (long long)b->shape[nb - 2]);
        return false;
    }
    tg_out_spec *s = &c->out_spec[0];
    int nd;
    if (!tg_ops_broadcast("tg_matmul", na - 2, a->shape, nb - 2, b->shape, &nd, s->shape)) return false;
    s->dtype = a->dtype;
    s->ndim = nd + 2;
    s->shape[nd] = a->shape[na - 2], s->shape[nd + 1] = b->shape[nb - 1];
    return true;
}

/* The operands viewed at the output's batch shape (stride 0 where they broadcast). */
tg_status tg_matmul_launch(tg_op_call *c) {
    tg_tensor *a = c->in[0], *b = c->in[1], *out = c->out[0], av, bv;
    int nd = out->ndim - 2;
    int64_t sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    memcpy(sa, out->shape, (size_t)nd * sizeof *sa);
    memcpy(sb, out->shape, (size_t)nd * sizeof *sb);
    sa[nd] = a->shape[a->ndim - 2], sa[nd + 1] = a->shape[a->ndim - 1];
    sb[nd] = b->shape[b->ndim - 2], sb[nd + 1] = b->shape[b->ndim - 1];
    tg_ops_expand_into(&av, a, nd + 2, sa);
    tg_ops_expand_into(&bv, b, nd + 2, sb);
    if (tg_macs_enabled_) { /* batch * M * N * K multiply-adds, for tg_summary */
        int64_t f[TG_MAX_DIMS + 1];
        memcpy(f, out->shape, (size_t)out->ndim * sizeof *f);
        f[out->ndim] = a->shape[a->ndim - 1];
        tg_macs_add_product(out->ndim + 1, f);
    }
    return tg_dev(out)->be->matmul(out, &av, &bv);
}

tg_tensor *tg_matmul(tg_tensor *a, tg_tensor *b) {
    TG_API_ENTER("tg_matmul");
    if (!tg_op_nonnull("tg_matmul", "a", a) || !tg_op_nonnull("tg_matmul", "b", b) ||
        !tg_op_compatible("tg_matmul", a, b) || !tg_op_float("tg_matmul", a))
        return NULL;
    if (a->ndim == 0 || b->ndim == 0)
        return tg_error_null(TG_ERR_SHAPE, "tg_matmul: operands must have at least one dimension (got %d and %d)",
                             a->ndim, b->ndim);
    bool va = a->ndim == 1, vb = b->ndim == 1;
    tg_tensor *r = tg_op_run(TG_OP_CALL(TG_OP_MATMUL, 2, va ? tg_unsqueeze(a, 0) : a, vb ? tg_unsqueeze(b, 1) : b));
    if (va && vb) return tg_reshape(r, TG_SCALAR_SHAPE); /* a dot product: 0-d */
    if (vb) r = tg_squeeze(r, -1);
    if (va) r = tg_squeeze(r, -2);
    return r;
}

tg_status tg_bw_matmul(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *g = gout[0], *a = tg_node_saved(n, 0), *b = tg_node_saved(n, 1);
    if (!a || !b) return tg_last_status();
    if (tg_node_needs(n, 0) &&
        !(gin[0] = tg_ops_sum_to(tg_matmul(g, tg_transpose(b, -1, -2)), n->inputs[0].ndim, n->inputs[0].shape)))
        return tg_last_status();
    /* a^T g: handed to the engine when it can stack it with the other products the same
     * operand receives (a weight used at every time step of a recurrence) */
    if (tg_node_needs(n, 1) && !tg_node_defer_tn_product(n, 1, a, g) &&
        !(gin[1] = tg_ops_sum_to(tg_matmul(tg_transpose(a, -1, -2), g), n->inputs[1].ndim, n->inputs[1].shape)))
        return tg_last_status();
    return TG_OK;
}
