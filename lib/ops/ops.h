/* What every op builder uses: the generic runner, argument checks that set the
 * message, broadcasting, and reduction of a gradient back over broadcast axes. */
#ifndef TG_OPS_H
#define TG_OPS_H

#include "lib/autograd/node.h"
#include "lib/graph/error.h"

/* Runs one op from its descriptor (see op-table.h): the first output, or NULL with a
 * message. The _status form is for in-place updates. */
tg_tensor *tg_op_run(tg_op_call *c);
tg_status tg_op_run_status(tg_op_call *c);
/* A call with the given inputs (a compound literal array) and typed arguments. */
#define TG_OP_CALL(op_, n_, ...) (&(tg_op_call){ .op = (op_), .n_in = (n_), .in = (tg_tensor *[]){ __VA_ARGS__ } })

/* NULL in, NULL out: a NULL argument fails the op; the message of the failure that
 * produced the NULL is kept, or one naming the argument is set if there was none. A
 * released tensor is reported too. */
bool tg_op_nonnull(const char *op, const char *arg, const tg_tensor *t);
/* A floating dtype (f32/f64) is required. */
bool tg_op_float(const char *op, const tg_tensor *t);
/* Same dtype and device for two operands. */
bool tg_op_compatible(const char *op, const tg_tensor *a, const tg_tensor *b);
/* An axis normalised into [0, ndim); false with "op: axis A is out of range for N
 * dimensions". */
bool tg_op_axis(const char *op, int *axis, int ndim);
/* An index or label tensor: i32 or i64 (arg names it in the message). */
bool tg_op_index(const char *op, const char *arg, const tg_tensor *t);
/* A shape computed from user input: no negative size, no element count past
 * TG_MAX_NUMEL (tg_shape_numel_checked); false with a message naming op. */
bool tg_op_shape_ok(const char *op, int ndim, const int64_t *shape);
/* dst of an in-place update: refused when several of its elements share one memory
 * location (stride 0 on an axis longer than one), as PyTorch refuses it. */
bool tg_op_writable(const char *op, const tg_tensor *dst);
/* An axes set as a bitmask over ndim axes; false with a message naming op. */
bool tg_op_axes_mask(const char *op, tg_axes axes, int ndim, uint32_t *mask);
static inline tg_device *tg_dev(const tg_tensor *t) { return t->storage->dev; }

/* numpy broadcasting of two shapes into out (ndim in *nd); false with a message. */
bool tg_ops_broadcast(const char *op, int na, const int64_t *a, int nb, const int64_t *b, int *nd, int64_t *out);
/* Fills *view with t seen at a broadcast shape (stride 0 on new and size-1 axes). */
void tg_ops_expand_into(tg_tensor *view, const tg_tensor *t, int nd, const int64_t *shape);
/* Sums g over the axes that broadcasting added or stretched, to reach shape. */
tg_tensor *tg_ops_sum_to(tg_tensor *g, int ndim, const int64_t *shape);

/* Internal ops shared between files. */
tg_tensor *tg_ops_unary(int op, tg_tensor *x, double p0, double p1);
tg_tensor *tg_ops_step(tg_tensor *x, double threshold); /* x > threshold ? 1 : 0, no grad */
tg_tensor *tg_ops_relu_grad(tg_tensor *g, tg_tensor *y); /* g where relu's output y > 0 (unary.c) */
tg_tensor *tg_ops_embed(tg_tensor *x, int ndim, const int64_t *shape, const int64_t *start,
                        const int64_t *step, double fill); /* x placed in a filled tensor */
tg_tensor *tg_ops_reduce_keep(int op, tg_tensor *x, uint32_t mask); /* keepdim result */
tg_tensor *tg_ops_squeeze_mask(tg_tensor *x, uint32_t mask);
tg_tensor *tg_ops_expand_to(tg_tensor *x, int ndim, const int64_t *shape);
/* Input i's shape, as recorded on the node. */
tg_shape tg_ops_input_shape(const tg_node *n, int i);

#endif
