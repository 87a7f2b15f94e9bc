/* The elementwise op kinds, declared once. The backends' enums (tg_unary_op,
 * tg_binary_op in backend.h) and the op table's entries for these ops
 * (lib/ops/op-table.h) are both generated from these lists, so a kind added here
 * reaches every table at once and a backend's switch that misses it warns.
 *
 * X(KIND, name, flags): the public function is tg_<name>. Flags (TG_OPF_*, in
 * lib/ops/op-table.h): FLOAT (floating inputs only), SAVE_IN / SAVE_OUT (what the
 * backward rule reads), NOGRAD (no gradient: masks, sign). */
#ifndef TG_OP_LIST_H
#define TG_OP_LIST_H

/* Unary ops; p0/p1 are the scalar parameters named in the comment. */
#define TG_UNARY_LIST(X)                                \
    X(NEG, neg, 0)                                      \
    X(EXP, exp, TG_OPF_FLOAT | TG_OPF_SAVE_OUT)         \
    X(LOG, log, TG_OPF_FLOAT | TG_OPF_SAVE_IN)          \
    X(SQRT, sqrt, TG_OPF_FLOAT | TG_OPF_SAVE_OUT)       \
    X(RSQRT, rsqrt, TG_OPF_FLOAT | TG_OPF_SAVE_OUT)     \
    X(ABS, abs, TG_OPF_SAVE_IN)                         \
    X(SIGN, sign, TG_OPF_NOGRAD)                        \
    X(RELU, relu, TG_OPF_SAVE_OUT)                      \
    X(SIGMOID, sigmoid, TG_OPF_FLOAT | TG_OPF_SAVE_OUT) \
    X(TANH, tanh, TG_OPF_FLOAT | TG_OPF_SAVE_OUT)       \
    X(SIN, sin, TG_OPF_FLOAT | TG_OPF_SAVE_IN)          \
    X(COS, cos, TG_OPF_FLOAT | TG_OPF_SAVE_IN)          \
    X(SQUARE, square, TG_OPF_SAVE_IN)                   \
    X(RECIPROCAL, reciprocal, TG_OPF_FLOAT | TG_OPF_SAVE_OUT) \
    X(POW_SCALAR, pow_scalar, TG_OPF_FLOAT | TG_OPF_SAVE_IN)  /* x^p0 */       \
    X(ADD_SCALAR, add_scalar, 0)                              /* x + p0 */     \
    X(MUL_SCALAR, mul_scalar, 0)                              /* x * p0 */     \
    X(CLAMP, clamp, TG_OPF_SAVE_IN)                           /* min(max(x, p0), p1) */ \
    X(STEP, step, TG_OPF_NOGRAD) /* x > p0 ? 1 : 0 in x's dtype: relu and clamp masks */

/* Binary ops with broadcasting; the comparisons (from EQ on) write u8 masks. */
#define TG_BINARY_LIST(X)                                   \
    X(ADD, add, 0)                                          \
    X(SUB, sub, 0)                                          \
    X(MUL, mul, TG_OPF_SAVE_IN)                             \
    X(DIV, div, TG_OPF_FLOAT | TG_OPF_SAVE_IN)              \
    X(POW, pow, TG_OPF_FLOAT | TG_OPF_SAVE_IN | TG_OPF_SAVE_OUT) \
    X(MAXIMUM, maximum, TG_OPF_SAVE_IN)                     \
    X(MINIMUM, minimum, TG_OPF_SAVE_IN)                     \
    X(EQ, eq, TG_OPF_NOGRAD)                                \
    X(NE, ne, TG_OPF_NOGRAD)                                \
    X(LT, lt, TG_OPF_NOGRAD)                                \
    X(LE, le, TG_OPF_NOGRAD)                                \
    X(GT, gt, TG_OPF_NOGRAD)                                \
    X(GE, ge, TG_OPF_NOGRAD)

#endif
