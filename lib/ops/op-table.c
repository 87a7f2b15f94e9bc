/* The op descriptors, generated from the lists in op-table.h and lib/graph/op-list.h. */
#include "lib/autograd/node.h"
#include "lib/graph/error.h"

/* An elementwise row saves input 0 (unary) or both inputs (binary) when it says so. */
#define SAVES(flags, inputs) ((flags) & TG_OPF_SAVE_IN ? (inputs) : 0u)

const tg_op_desc tg_ops[TG_OP_COUNT] = {
#define U(kind, name, flags) \
    [TG_OP_##kind] = { "tg_" #name, "x", tg_unary_shape, tg_unary_launch, tg_bw_unary, TG_UN_##kind, 1, \
                       (flags), SAVES(flags, 1u) },
    TG_UNARY_LIST(U)
#undef U
#define B(kind, name, flags) \
    [TG_OP_##kind] = { "tg_" #name, "a b", tg_binary_shape, tg_binary_launch, tg_bw_binary, TG_BIN_##kind, 2, \
                       (flags), SAVES(flags, 3u) },
    TG_BINARY_LIST(B)
#undef B
#define X(e, name, args, shape, launch, bw, kind, n_in, flags, save) \
    [TG_OP_##e] = { name, args, shape, launch, bw, kind, n_in, flags, save },
    TG_OP_LIST(X)
#undef X
};

/* Rules the table names for ops that never get there. */
tg_status tg_view_launch(tg_op_call *c) {
    (void)c;
    return TG_OK;
}

tg_status tg_no_backward(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    (void)gout, (void)gin;
    return tg_error(TG_ERR_STATE, "tg_backward: internal: %s has no backward rule", tg_ops[n->op].name);
}
