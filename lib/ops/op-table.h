/* The op table, declared once. Each line: enum suffix, name, backward rule. The enum,
 * the name table and the backward table are generated from this list, and a static
 * assert in ops/op-table.c keeps the tables the length of the enum. Adding an op is one
 * line here, one builder, one backward rule, one kernel per backend, one gradcheck. */
#ifndef TG_OP_TABLE_H
#define TG_OP_TABLE_H

#include "lib/graph/tensor-impl.h"

#define TG_OP_LIST(X)                           \
    /* elementwise (ops/unary.c, ops/binary.c) */ \
    X(UNARY, "unary", tg_bw_unary)              \
    X(ADD, "add", tg_bw_add)                    \
    X(SUB, "sub", tg_bw_sub)                    \
    X(MUL, "mul", tg_bw_mul)                    \
    X(DIV, "div", tg_bw_div)                    \
    X(POW, "pow", tg_bw_pow)                    \
    X(MAXIMUM, "maximum", tg_bw_maximum)        \
    X(MINIMUM, "minimum", tg_bw_minimum)        \
    X(WHERE, "where", tg_bw_where)              \
    /* reductions (ops/reduce.c) */             \
    X(SUM, "sum", tg_bw_sum)                    \
    X(MAX, "max", tg_bw_maxmin)                 \
    X(MIN, "min", tg_bw_maxmin)                 \
    X(LOG_SOFTMAX, "log_softmax", tg_bw_log_softmax) \
    X(CROSS_ENTROPY, "cross_entropy", tg_bw_cross_entropy) \
    /* matmul (ops/matmul.c) */                 \
    X(MATMUL, "matmul", tg_bw_matmul)           \
    /* movement (ops/movement.c, ops/join.c) */ \
    X(RESHAPE, "reshape", tg_bw_reshape)        \
    X(PERMUTE, "permute", tg_bw_permute)        \
    X(EXPAND, "expand", tg_bw_expand)           \
    X(SLICE, "slice", tg_bw_slice)              \
    X(EMBED, "embed", tg_bw_embed)              \
    X(FLIP, "flip", tg_bw_flip)                 \
    X(COPY, "copy", tg_bw_copy)                 \
    X(CAT, "cat", tg_bw_cat)                    \
    /* indexing and conversion (ops/index.c) */ \
    X(GATHER, "gather", tg_bw_gather)           \
    X(SCATTER_ADD, "scatter_add", tg_bw_scatter_add) \
    X(CAST, "cast", tg_bw_cast)                 \
    X(TO, "to", tg_bw_to)                       \
    /* user-defined functions (autograd/function.c) */ \
    X(CUSTOM, "function", tg_bw_custom)

typedef enum {
#define X(e, name, bw) TG_OP_##e,
    TG_OP_LIST(X)
#undef X
        TG_OP_COUNT
} tg_op;

typedef struct tg_node tg_node;
/* A backward rule: from the gradient of the node's output, the gradients of its inputs
 * (gin[i], with input i's shape; NULL for none). Written with op builders only. */
typedef tg_status (*tg_backward_fn)(tg_node *n, tg_tensor *g, tg_tensor **gin);

#define X(e, name, bw) tg_status bw(tg_node *n, tg_tensor *g, tg_tensor **gin);
TG_OP_LIST(X)
#undef X

extern const char *const tg_op_names[TG_OP_COUNT];
extern const tg_backward_fn tg_op_backward[TG_OP_COUNT];

#endif
