/* Helpers every op builder uses: argument checks that set the message, broadcasting,
 * and reduction of a gradient back over broadcast axes. */
#ifndef TG_OPS_H
#define TG_OPS_H

#include "lib/autograd/node.h"
#include "lib/graph/error.h"

/* NULL in, NULL out: a NULL argument fails the op; the message of the failure that
 * produced the NULL is kept, or one naming the argument is set if there was none. */
bool tg_op_nonnull(const char *op, const char *arg, const tg_tensor *t);
/* A floating dtype (f32/f64) is required. */
bool tg_op_float(const char *op, const tg_tensor *t);
/* Same dtype and device for two operands. */
bool tg_op_compatible(const char *op, const tg_tensor *a, const tg_tensor *b);
/* numpy broadcasting of two shapes into out (ndim in *nd); false with a message. */
bool tg_broadcast(const char *op, int na, const int64_t *a, int nb, const int64_t *b,
                  int *nd, int64_t *out);
/* Fills *view with t seen at a broadcast shape (stride 0 on new and size-1 axes). */
void tg_expand_into(tg_tensor *view, const tg_tensor *t, int nd, const int64_t *shape);
/* Sums g over the axes that broadcasting added or stretched, to reach shape. */
tg_tensor *tg_sum_to(tg_tensor *g, int ndim, const int64_t *shape);
/* An axes set as a bitmask over ndim axes; false with a message naming op. */
bool tg_axes_mask(const char *op, tg_axes axes, int ndim, uint32_t *mask);
/* An index or label tensor: i32 or i64 (arg names it in the message). */
bool tg_op_index(const char *op, const char *arg, const tg_tensor *t);
/* A shape computed from user input: no negative size, no element count past
 * TG_MAX_NUMEL (tg_shape_numel_checked); false with a message naming op. */
bool tg_op_shape_ok(const char *op, int ndim, const int64_t *shape);
/* dst of an in-place update: refused when several of its elements share one memory
 * location (stride 0 on an axis longer than one), as PyTorch refuses it. */
bool tg_op_writable(const char *op, const tg_tensor *dst);
/* After a kernel fails: the op returns NULL (the kernel set the message). */
static inline tg_device *tg_dev(const tg_tensor *t) { return t->storage->dev; }

/* Internal ops shared between files. */
tg_tensor *tg_unary_build(const char *name, tg_unary_op k, tg_tensor *x, double p0, double p1);
tg_tensor *tg_step(tg_tensor *x, double threshold); /* x > threshold ? 1 : 0, no grad */
tg_tensor *tg_embed(tg_tensor *x, int ndim, const int64_t *shape, const int64_t *start,
                    const int64_t *step, double fill); /* x placed in a full tensor */
tg_tensor *tg_reduce_keep(const char *name, tg_op op, tg_reduce_op k, tg_tensor *x, uint32_t mask);
tg_tensor *tg_squeeze_mask(tg_tensor *x, uint32_t mask);
tg_tensor *tg_expand_to(tg_tensor *x, int ndim, const int64_t *shape);

#endif
