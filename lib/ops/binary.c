/* Binary ops with numpy broadcasting, comparisons, and where. Inputs are viewed at the
 * broadcast shape with stride-0 axes, so no operand is ever copied; backward rules sum
 * each gradient back to its input's shape. */
#include <string.h>

#include "lib/ops/ops.h"

static const char *const bin_names[TG_BIN_COUNT] = {
    "tg_add", "tg_sub", "tg_mul", "tg_div", "tg_pow", "tg_maximum", "tg_minimum",
    "tg_eq", "tg_ne", "tg_lt", "tg_le", "tg_gt", "tg_ge",
};
static const tg_op bin_ops[TG_BIN_FIRST_CMP] = {
    TG_OP_ADD, TG_OP_SUB, TG_OP_MUL, TG_OP_DIV, TG_OP_POW, TG_OP_MAXIMUM, TG_OP_MINIMUM,
};

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

static tg_tensor *binary(tg_binary_op k, tg_tensor *a, tg_tensor *b) {
    const char *name = bin_names[k];
    if (!tg_op_nonnull(name, "a", a) || !tg_op_nonnull(name, "b", b)) return NULL;
    if (k >= TG_BIN_FIRST_CMP && !promote_ints(&a, &b)) return NULL;
    if (!tg_op_compatible(name, a, b)) return NULL;
    if ((k == TG_BIN_DIV || k == TG_BIN_POW) && !tg_op_float(name, a)) return NULL;
    int nd;
    int64_t shape[TG_MAX_DIMS];
    if (!tg_broadcast(name, a->ndim, a->shape, b->ndim, b->shape, &nd, shape)) return NULL;
    bool cmp = k >= TG_BIN_FIRST_CMP;
    tg_tensor *out = tg_tensor_new(cmp ? TG_U8 : a->dtype, nd, shape, tg_dev(a));
    if (!out) return NULL;
    tg_tensor av, bv;
    tg_expand_into(&av, a, nd, shape);
    tg_expand_into(&bv, b, nd, shape);
    if (tg_dev(a)->be->binary(k, out, &av, &bv) != TG_OK) return NULL;
    tg_tensor *in[2] = { a, b };
    if (!cmp && tg_should_record(2, in)) {
        tg_node *n = tg_record(bin_ops[k], out, 2, in);
        if (!n) return NULL;
        if (k == TG_BIN_MUL || k == TG_BIN_DIV || k == TG_BIN_POW || k == TG_BIN_MAXIMUM || k == TG_BIN_MINIMUM) {
            tg_node_save(n, a);
            tg_node_save(n, b);
        }
        if (k == TG_BIN_POW) tg_node_save_output(n, out);
    }
    return out;
}

#define BINARY(fn, k)                              \
    tg_tensor *fn(tg_tensor *a, tg_tensor *b) {    \
        TG_API_ENTER(#fn);                         \
        return binary(k, a, b);                    \
    }
BINARY(tg_add, TG_BIN_ADD)
BINARY(tg_sub, TG_BIN_SUB)
BINARY(tg_mul, TG_BIN_MUL)
BINARY(tg_div, TG_BIN_DIV)
BINARY(tg_pow, TG_BIN_POW)
BINARY(tg_maximum, TG_BIN_MAXIMUM)
BINARY(tg_minimum, TG_BIN_MINIMUM)
BINARY(tg_eq, TG_BIN_EQ)
BINARY(tg_ne, TG_BIN_NE)
BINARY(tg_lt, TG_BIN_LT)
BINARY(tg_le, TG_BIN_LE)
BINARY(tg_gt, TG_BIN_GT)
BINARY(tg_ge, TG_BIN_GE)
#undef BINARY

/* ------------------------------------------------------------- backward rules */

#define EDGE_SHAPE(n, i) (n)->inputs[i].ndim, (n)->inputs[i].shape
#define SAVED(n, i, var)                          \
    tg_tensor *var = tg_node_saved(n, i);         \
    if (!var) return tg_last_status()

static tg_status finish(tg_node *n, tg_tensor **gin, tg_tensor *ga, tg_tensor *gb) {
    if (tg_node_needs(n, 0) && !(gin[0] = tg_sum_to(ga, EDGE_SHAPE(n, 0)))) return tg_last_status();
    if (tg_node_needs(n, 1) && !(gin[1] = tg_sum_to(gb, EDGE_SHAPE(n, 1)))) return tg_last_status();
    return TG_OK;
}

tg_status tg_bw_add(tg_node *n, tg_tensor *g, tg_tensor **gin) { return finish(n, gin, g, g); }

tg_status tg_bw_sub(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    return finish(n, gin, g, tg_node_needs(n, 1) ? tg_neg(g) : NULL);
}

tg_status tg_bw_mul(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    SAVED(n, 0, a);
    SAVED(n, 1, b);
    return finish(n, gin, tg_node_needs(n, 0) ? tg_mul(g, b) : NULL, tg_node_needs(n, 1) ? tg_mul(g, a) : NULL);
}

tg_status tg_bw_div(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    SAVED(n, 0, a);
    SAVED(n, 1, b);
    tg_tensor *ga = tg_node_needs(n, 0) ? tg_div(g, b) : NULL;
    tg_tensor *gb = tg_node_needs(n, 1) ? tg_neg(tg_mul(g, tg_div(a, tg_square(b)))) : NULL;
    return finish(n, gin, ga, gb);
}

tg_status tg_bw_pow(tg_node *n, tg_tensor *g, tg_tensor **gin) {
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

tg_status tg_bw_maximum(tg_node *n, tg_tensor *g, tg_tensor **gin) { return bw_extremum(n, g, gin, true); }
tg_status tg_bw_minimum(tg_node *n, tg_tensor *g, tg_tensor **gin) { return bw_extremum(n, g, gin, false); }

/* ------------------------------------------------------------- where */

tg_tensor *tg_where(tg_tensor *cond, tg_tensor *a, tg_tensor *b) {
    TG_API_ENTER("tg_where");
    const char *name = "tg_where";
    if (!tg_op_nonnull(name, "cond", cond) || !tg_op_nonnull(name, "a", a) || !tg_op_nonnull(name, "b", b) ||
        !tg_op_compatible(name, a, b))
        return NULL;
    if (cond->dtype != TG_U8)
        return tg_error_null(TG_ERR_DTYPE, "tg_where: cond must be u8 (a comparison's result), got %s",
                             tg_dtype_name(cond->dtype));
    if (tg_dev(cond) != tg_dev(a))
        return tg_error_null(TG_ERR_DEVICE, "tg_where: tensors on two devices: %s and %s",
                             tg_dev(cond)->name, tg_dev(a)->name);
    int nd, nd2;
    int64_t s1[TG_MAX_DIMS], shape[TG_MAX_DIMS];
    if (!tg_broadcast(name, a->ndim, a->shape, b->ndim, b->shape, &nd, s1) ||
        !tg_broadcast(name, cond->ndim, cond->shape, nd, s1, &nd2, shape))
        return NULL;
    tg_tensor *out = tg_tensor_new(a->dtype, nd2, shape, tg_dev(a));
    if (!out) return NULL;
    tg_tensor cv, av, bv;
    tg_expand_into(&cv, cond, nd2, shape);
    tg_expand_into(&av, a, nd2, shape);
    tg_expand_into(&bv, b, nd2, shape);
    if (tg_dev(a)->be->where(out, &cv, &av, &bv) != TG_OK) return NULL;
    tg_tensor *in[3] = { a, b, cond };
    if (tg_should_record(2, in)) {
        tg_node *n = tg_record(TG_OP_WHERE, out, 2, in);
        if (!n) return NULL;
        tg_node_save(n, cond);
    }
    return out;
}

tg_status tg_bw_where(tg_node *n, tg_tensor *g, tg_tensor **gin) {
    SAVED(n, 0, cond);
    tg_tensor *zero = tg_scalar(g->dtype, 0, tg_dev(g));
    tg_tensor *ga = tg_node_needs(n, 0) ? tg_where(cond, g, zero) : NULL;
    tg_tensor *gb = tg_node_needs(n, 1) ? tg_where(cond, zero, g) : NULL;
    return finish(n, gin, ga, gb);
}
