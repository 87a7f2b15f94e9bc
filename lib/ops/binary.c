/* Binary ops with numpy broadcasting, comparisons, and where. Inputs are viewed at the
 * broadcast shape with stride-0 axes, so no operand is ever copied; backward rules sum
 * each gradient back to its input's shape. */
#include <string.h>

#include "lib/ops/ops.h"

/* Comparisons of two integer dtypes promote to the wider one as PyTorch does (u8 < i32
 * < i64), so tg_eq(tg_argmax(logits, 1, false), labels) works with i32 labels. */
static bool promote_ints(tg_tensor **a, tg_tensor **b) {
    tg_dtype da = (*a)->dtype, db = (*b)->dtype;
    if (da == db || tg_is_float(da) || tg_is_float(db) || tg_dev(*a) != tg_dev(*b)) return true;
    tg_dtype w = da == TG_I64 || db == TG_I64 ? TG_I64 : TG_I32;
    if (da != w) *a = tg_cast(*a, w);
    if (db != w) *b = tg_cast(*b, w);
    return *a && *b;
}

/* Broadcast shapes; one dtype (integer comparisons promote first); u8 for comparisons. */
bool tg_binary_shape(tg_op_call *c) {
    const tg_op_desc *d = &tg_ops[c->op];
    bool cmp = d->kind >= TG_BIN_FIRST_CMP;
    if (cmp && !promote_ints(&c->in[0], &c->in[1])) return false;
    tg_tensor *a = c->in[0], *b = c->in[1];
    if (!tg_op_compatible(d->name, a, b)) return false;
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = cmp ? TG_U8 : a->dtype;
    return tg_ops_broadcast(d->name, a->ndim, a->shape, b->ndim, b->shape, &s->ndim, s->shape);
}

tg_status tg_binary_launch(tg_op_call *c) {
    tg_tensor av, bv, *out = c->out[0];
    tg_ops_expand_into(&av, c->in[0], out->ndim, out->shape);
    tg_ops_expand_into(&bv, c->in[1], out->ndim, out->shape);
    return tg_dev(out)->be->binary((tg_binary_op)tg_ops[c->op].kind, out, &av, &bv);
}

#define BINARY(kind, name, flags) \
    tg_tensor *tg_##name(tg_tensor *a, tg_tensor *b) { return tg_op_run(TG_OP_CALL(TG_OP_##kind, 2, a, b)); }
TG_BINARY_LIST(BINARY)
#undef BINARY

/* ------------------------------------------------------------- backward rules */

#define EDGE_SHAPE(n, i) (n)->inputs[i].ndim, (n)->inputs[i].shape
#define SAVED(n, i, var)                          \
    tg_tensor *var = tg_node_saved(n, i);         \
    if (!var) return tg_last_status()

static tg_status finish(tg_node *n, tg_tensor **gin, tg_tensor *ga, tg_tensor *gb) {
    if (tg_node_needs(n, 0) && !(gin[0] = tg_ops_sum_to(ga, EDGE_SHAPE(n, 0)))) return tg_last_status();
    if (tg_node_needs(n, 1) && !(gin[1] = tg_ops_sum_to(gb, EDGE_SHAPE(n, 1)))) return tg_last_status();
    return TG_OK;
}

static tg_status bw_mul(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    SAVED(n, 0, a);
    SAVED(n, 1, b);
    return finish(n, gin, tg_node_needs(n, 0) ? tg_mul(g, b) : NULL, tg_node_needs(n, 1) ? tg_mul(g, a) : NULL);
}

static tg_status bw_div(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    SAVED(n, 0, a);
    SAVED(n, 1, b);
    tg_tensor *ga = tg_node_needs(n, 0) ? tg_div(g, b) : NULL;
    tg_tensor *gb = tg_node_needs(n, 1) ? tg_neg(tg_mul(g, tg_div(a, tg_square(b)))) : NULL;
    return finish(n, gin, ga, gb);
}

static tg_status bw_pow(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    SAVED(n, 0, a);
    SAVED(n, 1, b);
    SAVED(n, 2, y);
    tg_tensor *ga = tg_node_needs(n, 0) ? tg_mul(g, tg_mul(b, tg_pow(a, tg_add_scalar(b, -1)))) : NULL;
    tg_tensor *gb = tg_node_needs(n, 1) ? tg_mul(g, tg_mul(y, tg_log(a))) : NULL;
    return finish(n, gin, ga, gb);
}

/* maximum/minimum: the gradient goes to the winner; a tie splits it in half. */
static tg_status bw_extremum(tg_node *n, tg_tensor *g, tg_tensor **gin, bool is_max) {
    SAVED(n, 0, a);
    SAVED(n, 1, b);
    tg_tensor *wins = tg_cast(is_max ? tg_gt(a, b) : tg_lt(a, b), g->dtype);
    tg_tensor *ties = tg_cast(tg_eq(a, b), g->dtype);
    tg_tensor *wa = tg_add(wins, tg_mul_scalar(ties, 0.5));
    tg_tensor *ga = tg_node_needs(n, 0) ? tg_mul(g, wa) : NULL;
    tg_tensor *gb = tg_node_needs(n, 1) ? tg_mul(g, tg_add_scalar(tg_neg(wa), 1)) : NULL;
    return finish(n, gin, ga, gb);
}

tg_status tg_bw_binary(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *g = gout[0];
    switch ((tg_binary_op)tg_ops[n->op].kind) {
    case TG_BIN_ADD: return finish(n, gin, g, g);
    case TG_BIN_SUB: return finish(n, gin, g, tg_node_needs(n, 1) ? tg_neg(g) : NULL);
    case TG_BIN_MUL: return bw_mul(n, g, gin);
    case TG_BIN_DIV: return bw_div(n, g, gin);
    case TG_BIN_POW: return bw_pow(n, g, gin);
    case TG_BIN_MAXIMUM: return bw_extremum(n, g, gin, true);
    case TG_BIN_MINIMUM: return bw_extremum(n, g, gin, false);
    default: return tg_no_backward(n, gout, gin);
    }
}

/* ------------------------------------------------------------- where */

/* cond (u8) ? a : b, all three broadcast together. Inputs are (a, b, cond). */
bool tg_where_shape(tg_op_call *c) {
    tg_tensor *a = c->in[0], *b = c->in[1], *cond = c->in[2];
    if (!tg_op_compatible("tg_where", a, b)) return false;
    if (cond->dtype != TG_U8) {
        tg_error(TG_ERR_DTYPE, "tg_where: cond must be u8 (a comparison's result), got %s", tg_dtype_name(cond->dtype));
        return false;
    }
    int nd;
    int64_t s1[TG_MAX_DIMS];
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = a->dtype;
    return tg_ops_broadcast("tg_where", a->ndim, a->shape, b->ndim, b->shape, &nd, s1) &&
           tg_ops_broadcast("tg_where", cond->ndim, cond->shape, nd, s1, &s->ndim, s->shape);
}

tg_status tg_where_launch(tg_op_call *c) {
    tg_tensor cv, av, bv, *out = c->out[0];
    tg_ops_expand_into(&av, c->in[0], out->ndim, out->shape);
    tg_ops_expand_into(&bv, c->in[1], out->ndim, out->shape);
    tg_ops_expand_into(&cv, c->in[2], out->ndim, out->shape);
    return tg_dev(out)->be->where(out, &cv, &av, &bv);
}

tg_tensor *tg_where(tg_tensor *cond, tg_tensor *a, tg_tensor *b) {
    return tg_op_run(TG_OP_CALL(TG_OP_WHERE, 3, a, b, cond));
}

tg_status tg_bw_where(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *g = gout[0];
    SAVED(n, 0, cond);
    tg_tensor *zero = tg_scalar(g->dtype, 0, tg_dev(g));
    tg_tensor *ga = tg_node_needs(n, 0) ? tg_where(cond, g, zero) : NULL;
    tg_tensor *gb = tg_node_needs(n, 1) ? tg_where(cond, zero, g) : NULL;
    return finish(n, gin, ga, gb);
}
