/* The op tables generated from TG_OP_LIST. */
#include "lib/ops/op-table.h"

const char *const tg_op_names[] = {
#define X(e, name, bw) name,
    TG_OP_LIST(X)
#undef X
};

const tg_backward_fn tg_op_backward[] = {
#define X(e, name, bw) bw,
    TG_OP_LIST(X)
#undef X
};

_Static_assert(sizeof tg_op_names / sizeof tg_op_names[0] == TG_OP_COUNT, "op name table out of step");
_Static_assert(sizeof tg_op_backward / sizeof tg_op_backward[0] == TG_OP_COUNT, "op backward table out of step");
