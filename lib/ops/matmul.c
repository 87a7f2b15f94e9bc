/* matmul with numpy semantics: 1-D operands become matrices and lose the axis again,
 * leading batch axes broadcast (as stride-0 views, never copies). */
#include <string.h>

#include "lib/ops/ops.h"

/* a (..., M, K) @ b (..., K, N), both at least 2-D. */
static tg_tensor *matmul2(tg_tensor *a, tg_tensor *b) {
    char b1[128], b2[128];
    int na = a->ndim, nb = b->ndim;
    if (a->shape[na - 1] != b->shape[nb - 2])
        return tg_error_null(TG_ERR_SHAPE, "tg_matmul: inner dimensions differ: %s @ %s (%lld != %lld)",
                             tg_shape_str(b1, na, a->shape), tg_shape_str(b2, nb, b->shape),
                             (long long)a->shape[na - 1], (long long)b->shape[nb - 2]);
    int nd;
    int64_t shape[TG_MAX_DIMS];
    if (!tg_broadcast("tg_matmul", na - 2, a->shape, nb - 2, b->shape, &nd, shape)) return NULL;
    int64_t sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    memcpy(sa, shape, (size_t)nd * sizeof *shape);
    memcpy(sb, shape, (size_t)nd * sizeof *shape);
    sa[nd] = a->shape[na - 2], sa[nd + 1] = a->shape[na - 1];
    sb[nd] = b->shape[nb - 2], sb[nd + 1] = b->shape[nb - 1];
    shape[nd] = a->shape[na - 2], shape[nd + 1] = b->shape[nb - 1];
    tg_tensor *out = tg_tensor_new(a->dtype, nd + 2, shape, tg_dev(a));
    if (!out) return NULL;
    tg_tensor av, bv;
    tg_expand_into(&av, a, nd + 2, sa);
    tg_expand_into(&bv, b, nd + 2, sb);
    if (tg_dev(a)->be->matmul(out, &av, &bv) != TG_OK) return NULL;
    tg_tensor *in[2] = { a, b };
    if (tg_should_record(2, in)) {
        tg_node *n = tg_record(TG_OP_MATMUL, out, 2, in);
        if (!n) return NULL;
        tg_node_save(n, a);
        tg_node_save(n, b);
    }
    return out;
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
    tg_tensor *r = matmul2(va ? tg_unsqueeze(a, 0) : a, vb ? tg_unsqueeze(b, 1) : b);
    if (va && vb) return tg_reshape(r, TG_SCALAR_SHAPE); /* a dot product: 0-d */
    if (vb) r = tg_squeeze(r, -1);
    if (va) r = tg_squeeze(r, -2);
    return r;
}

tg_status tg_bw_matmul(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    tg_tensor *a = tg_node_saved(n, 0), *b = tg_node_saved(n, 1);
    if (!a || !b) return tg_last_status();
    if (tg_node_needs(n, 0) &&
        !(gin[0] = tg_sum_to(tg_matmul(g, tg_transpose(b, -1, -2)), n->inputs[0].ndim, n->inputs[0].shape)))
        return tg_last_status();
    if (tg_node_needs(n, 1) &&
        !(gin[1] = tg_sum_to(tg_matmul(tg_transpose(a, -1, -2), g), n->inputs[1].ndim, n->inputs[1].shape)))
        return tg_last_status();
    return TG_OK;
}
