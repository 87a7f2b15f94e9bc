/* Convolution: conv2d, conv1d (a view onto it) and conv_transpose2d, as PyTorch's
 * torch.nn.functional. Three ops of the table, each the adjoint of the others in one
 * argument: CONV2D y = x (*) w (+ bias), CONV2D_BACKWARD_DATA dx = D(dy, w) (also
 * conv_transpose2d's forward) and CONV2D_BACKWARD_WEIGHT dw = G(dy, x). Since
 * <conv(x, w), dy> = <x, D(dy, w)> = <w, G(dy, x)>, each backward rule is the other two,
 * so create_graph gives every order. The public builders check everything in the
 * user's terms (1-D shapes for conv1d, unbatched inputs); the ops take dense NCHW and
 * the geometry in args.conv. */
#include <string.h>

#include "lib/ops/macs.h"
#include "lib/ops/ops.h"

/* ------------------------------------------------------------- the ops */

static const char *kernel_name(int op) {
    return op == TG_OP_CONV2D ? "conv2d" : op == TG_OP_CONV2D_BACKWARD_DATA ? "conv2d_backward_data"
                                                                             : "conv2d_backward_weight";
}

/* The kernel geometry of a call: N, C, OC from its tensors, the rest from args. */
static tg_conv2d_geom geom_of(int op, tg_tensor *const *in, const tg_op_args *args) {
    const int64_t *a = in[0]->shape, *b = in[1]->shape;
    tg_conv2d_geom g = {
        .N = a[0], .H = args->conv.H, .W = args->conv.W, .KH = args->conv.KH, .KW = args->conv.KW,
        .OH = args->conv.OH, .OW = args->conv.OW, .groups = args->conv.groups,
    };
    for (int i = 0; i < 2; i++) {
        g.stride[i] = args->conv.stride[i];
        g.pad[i] = args->conv.pad[i];
        g.dilation[i] = args->conv.dilation[i];
    }
    if (op == TG_OP_CONV2D) /* x (N, C, H, W), w (OC, C/g, KH, KW) */
        g.C = a[1], g.OC = b[0];
    else if (op == TG_OP_CONV2D_BACKWARD_DATA) /* dy (N, OC, OH, OW), w */
        g.OC = a[1], g.C = b[1] * g.groups;
    else /* dy, x (N, C, H, W) */
        g.OC = a[1], g.C = b[1];
    return g;
}

/* The builders check the user's arguments; this checks that a call's tensors fit its
 * geometry (an internal call always does) and that the device has the kernel. */
bool tg_conv_shape(tg_op_call *c) {
    const tg_op_desc *d = &tg_ops[c->op];
    tg_tensor *a = c->in[0], *b = c->in[1];
    for (int i = 0; i < c->n_in; i++)
        if (i > 0 && !tg_op_compatible(d->name, a, c->in[i])) return false;
    if (a->ndim != 4 || b->ndim != 4 || (c->n_in > 2 && c->in[2]->ndim != 1)) {
        tg_error(TG_ERR_SHAPE, "%s: internal: tensors of the wrong rank", d->name);
        return false;
    }
    tg_conv2d_geom g = geom_of(c->op, c->in, &c->args);
    int64_t x[4] = { g.N, g.C, g.H, g.W }, w[4] = { g.OC, g.groups ? g.C / g.groups : 0, g.KH, g.KW },
            y[4] = { g.N, g.OC, g.OH, g.OW };
    const int64_t *want_a = c->op == TG_OP_CONV2D ? x : y, *want_b = c->op == TG_OP_CONV2D_BACKWARD_WEIGHT ? x : w,
                  *out = c->op == TG_OP_CONV2D ? y : c->op == TG_OP_CONV2D_BACKWARD_DATA ? x : w;
    if (g.groups < 1 || g.C % g.groups || g.OC % g.groups || memcmp(a->shape, want_a, sizeof x) ||
        memcmp(b->shape, want_b, sizeof x) || (c->n_in > 2 && c->in[2]->shape[0] != g.OC)) {
        char b1[128], b2[128];
        tg_error(TG_ERR_SHAPE, "%s: internal: %s and %s do not fit the geometry", d->name,
                 tg_shape_str(b1, 4, a->shape), tg_shape_str(b2, 4, b->shape));
        return false;
    }
    if (!tg_device_supports(tg_dev(a), (tg_kernel)d->kind, a->dtype)) {
        tg_error(TG_ERR_DEVICE, "%s: device %s has no %s kernel for %s (yet)", d->name, tg_dev(a)->name,
                 kernel_name(c->op), tg_dtype_name(a->dtype));
        return false;
    }
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = a->dtype;
    s->ndim = 4;
    memcpy(s->shape, out, sizeof x);
    return true;
}

tg_status tg_conv_launch(tg_op_call *c) {
    const tg_backend *be = tg_dev(c->in[0])->be;
    tg_conv2d_geom g = geom_of(c->op, c->in, &c->args);
    /* For tg_summary: each of the three runs every (output pixel of the forward, weight)
     * pair once, N OH OW OC (C / groups) KH KW multiply-adds (the notes' formula). */
    tg_macs_add(7, (int64_t[]){ g.N, g.OH, g.OW, g.OC, g.C / g.groups, g.KH, g.KW });
    if (c->op == TG_OP_CONV2D && c->args.conv.epi)
        return be->conv2d_fused(c->out[0], c->in[0], c->in[1], c->n_in > 2 ? c->in[2] : NULL, c->args.conv.epi, &g);
    if (c->op == TG_OP_CONV2D) return be->conv2d(c->out[0], c->in[0], c->in[1], c->n_in > 2 ? c->in[2] : NULL, &g);
    if (c->op == TG_OP_CONV2D_BACKWARD_DATA) return be->conv2d_backward_data(c->out[0], c->in[0], c->in[1], &g);
    return be->conv2d_backward_weight(c->out[0], c->in[0], c->in[1], &g);
}

/* Runs op on dense copies of its inputs (the kernels take dense NCHW; the copies are
 * recorded, so gradients flow through them); bias NULL for none. */
static tg_tensor *dense(tg_tensor *t) { return t && !tg_tensor_is_dense(t) ? tg_contiguous(t) : t; }

static tg_tensor *conv_op(int op, tg_tensor *a, tg_tensor *b, tg_tensor *bias, const tg_op_args *args) {
    tg_tensor *in[3] = { dense(a), dense(b), dense(bias) };
    tg_op_call c = { .op = op, .n_in = bias ? 3 : 2, .in = in, .args = *args };
    return tg_op_run(&c);
}

/* y = conv(x, w) + b: dx = D(dy, w), dw = G(dy, x), db = the sum of dy over N, H, W. */
tg_status tg_bw_conv2d(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *x = tg_node_saved(n, 0), *w = tg_node_saved(n, 1);
    if (!x || !w) return tg_last_status();
    if (n->args.conv.epi) /* the builder composes the epilogue wherever a node is recorded */
        return tg_error(TG_ERR_STATE, "tg_conv2d: internal: a fused epilogue was recorded");
    if (tg_node_needs(n, 0) && !(gin[0] = conv_op(TG_OP_CONV2D_BACKWARD_DATA, gout[0], w, NULL, &n->args)))
        return tg_last_status();
    if (tg_node_needs(n, 1) && !(gin[1] = conv_op(TG_OP_CONV2D_BACKWARD_WEIGHT, gout[0], x, NULL, &n->args)))
        return tg_last_status();
    if (n->n_inputs > 2 && tg_node_needs(n, 2) && !(gin[2] = tg_sum(gout[0], TG_AXES(0, 2, 3), false)))
        return tg_last_status();
    return TG_OK;
}

/* dx = D(dy, w), linear in each: d(dy) = conv(g, w), dw = G(dy, g). */
tg_status tg_bw_conv2d_backward_data(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *dy = tg_node_saved(n, 0), *w = tg_node_saved(n, 1);
    if (!dy || !w) return tg_last_status();
    if (tg_node_needs(n, 0) && !(gin[0] = conv_op(TG_OP_CONV2D, gout[0], w, NULL, &n->args))) return tg_last_status();
    if (tg_node_needs(n, 1) && !(gin[1] = conv_op(TG_OP_CONV2D_BACKWARD_WEIGHT, dy, gout[0], NULL, &n->args)))
        return tg_last_status();
    return TG_OK;
}

/* dw = G(dy, x): d(dy) = conv(x, g), dx = D(dy, g). */
tg_status tg_bw_conv2d_backward_weight(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *dy = tg_node_saved(n, 0), *x = tg_node_saved(n, 1);
    if (!dy || !x) return tg_last_status();
    if (tg_node_needs(n, 0) && !(gin[0] = conv_op(TG_OP_CONV2D, x, gout[0], NULL, &n->args))) return tg_last_status();
    if (tg_node_needs(n, 1) && !(gin[1] = conv_op(TG_OP_CONV2D_BACKWARD_DATA, dy, gout[0], NULL, &n->args)))
        return tg_last_status();
    return TG_OK;
}

/* ------------------------------------------------------------- the builders */

/* A call in the user's terms: sp spatial axes (1 or 2), the options resolved per axis. */
typedef struct {
    const char *name;
    int sp;
    bool transposed;
    tg_conv_padding kind;
    int64_t stride[2], pad[2], dilation[2], out_pad[2], groups;
} conv_req;

/* An option per axis: the pair when it has a non-zero entry (0 in it: dflt), else the
 * scalar (0: dflt). */
static void resolve(int64_t *dst, int sp, int64_t scalar, const int64_t *pair, int64_t dflt) {
    bool use_pair = pair && (pair[0] || pair[1]);
    for (int i = 0; i < sp; i++) {
        int64_t v = use_pair ? pair[i] : scalar;
        dst[i] = v ? v : dflt;
    }
}

/* a * b, or INT64_MAX where that overflows (a size no check lets through). */
static int64_t mul_sat(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

/* "[a]" or "[a,b]": per-axis values in messages, like shapes. */
static const char *tup(char *buf, int sp, const int64_t *v) { return tg_shape_str(buf, sp, v); }

static bool check_options(const conv_req *r) {
    char b1[128], b2[128], b3[128];
    const char *name = r->name;
    int sp = r->sp;
    for (int i = 0; i < sp; i++) {
        if (r->stride[i] < 1)
            return tg_error_null(TG_ERR_INVALID, "%s: stride must be positive, got %s", name, tup(b1, sp, r->stride));
        if (r->dilation[i] < 1)
            return tg_error_null(TG_ERR_INVALID, "%s: dilation must be positive, got %s", name,
                                 tup(b1, sp, r->dilation));
        if (r->pad[i] < 0)
            return tg_error_null(TG_ERR_INVALID, "%s: padding must be non-negative, got %s", name,
                                 tup(b1, sp, r->pad));
        if (r->out_pad[i] < 0)
            return tg_error_null(TG_ERR_INVALID, "%s: output_padding must be non-negative, got %s", name,
                                 tup(b1, sp, r->out_pad));
    }
    for (int i = 0; i < sp; i++)
        if (r->out_pad[i] >= r->stride[i] && r->out_pad[i] >= r->dilation[i])
            return tg_error_null(TG_ERR_INVALID, "%s: output_padding %s must be smaller than stride %s or dilation %s "
                                 "on each axis", name, tup(b1, sp, r->out_pad), tup(b2, sp, r->stride),
                                 tup(b3, sp, r->dilation));
    if (r->groups < 1)
        return tg_error_null(TG_ERR_INVALID, "%s: groups must be positive, got %lld", name, (long long)r->groups);
    if (r->kind != TG_CONV_PAD_EXPLICIT && r->kind != TG_CONV_PAD_VALID && r->kind != TG_CONV_PAD_SAME)
        return tg_error_null(TG_ERR_INVALID, "%s: unknown padding_kind %d", name, (int)r->kind);
    const char *kind = r->kind == TG_CONV_PAD_SAME ? "same" : "valid";
    for (int i = 0; i < sp && r->kind != TG_CONV_PAD_EXPLICIT; i++)
        if (r->pad[i])
            return tg_error_null(TG_ERR_INVALID, "%s: padding '%s' takes no padding amounts, got %s", name, kind,
                                 tup(b1, sp, r->pad));
    for (int i = 0; i < sp && r->kind == TG_CONV_PAD_SAME; i++)
        if (r->stride[i] != 1)
            return tg_error_null(TG_ERR_INVALID, "%s: padding 'same' needs stride 1 (as PyTorch), got %s", name,
                                 tup(b1, sp, r->stride));
    return true;
}

/* Checks the tensors against each other: ranks, dtypes, devices, channels, groups,
 * bias. *c_out is the number of output channels. */
static bool check_tensors(const conv_req *r, tg_tensor *x, tg_tensor *w, tg_tensor *bias, int64_t *c_out) {
    char b1[128], b2[128];
    const char *name = r->name, *axes = r->sp == 2 ? "H, W" : "L", *kaxes = r->sp == 2 ? "kH, kW" : "kL";
    int sp = r->sp;
    if (!tg_op_nonnull(name, "x", x) || !tg_op_nonnull(name, "weight", w) ||
        (bias && !tg_op_nonnull(name, "bias", bias)))
        return false;
    if (!tg_op_float(name, x) || !tg_op_compatible(name, x, w) || (bias && !tg_op_compatible(name, x, bias)))
        return false;
    if (x->ndim != sp + 1 && x->ndim != sp + 2)
        return tg_error_null(TG_ERR_SHAPE, "%s: input must be %d-D (C, %s) or %d-D (N, C, %s), got %s", name, sp + 1,
                             axes, sp + 2, axes, tg_shape_str(b1, x->ndim, x->shape));
    if (w->ndim != sp + 2)
        return tg_error_null(TG_ERR_SHAPE, "%s: weight must be %d-D (%s, %s), got %s", name, sp + 2,
                             r->transposed ? "in_channels, out_channels/groups" : "out_channels, in_channels/groups",
                             kaxes, tg_shape_str(b1, w->ndim, w->shape));
    int64_t c_in = x->shape[x->ndim - sp - 1];
    if (c_in % r->groups)
        return tg_error_null(TG_ERR_SHAPE, "%s: in_channels %lld (input %s) is not divisible by groups %lld", name,
                             (long long)c_in, tg_shape_str(b1, x->ndim, x->shape), (long long)r->groups);
    if (!r->transposed && w->shape[0] % r->groups)
        return tg_error_null(TG_ERR_SHAPE, "%s: out_channels %lld (weight %s) is not divisible by groups %lld", name,
                             (long long)w->shape[0], tg_shape_str(b1, w->ndim, w->shape), (long long)r->groups);
    int64_t want = r->transposed ? w->shape[0] : mul_sat(w->shape[1], r->groups);
    if (c_in != want)
        return tg_error_null(TG_ERR_SHAPE,
                             "%s: input %s has %lld channels, but weight %s with groups %lld expects %lld",
                             name, tg_shape_str(b1, x->ndim, x->shape), (long long)c_in,
                             tg_shape_str(b2, w->ndim, w->shape), (long long)r->groups, (long long)want);
    *c_out = r->transposed ? mul_sat(w->shape[1], r->groups) : w->shape[0];
    if (bias && (bias->ndim != 1 || bias->shape[0] != *c_out))
        return tg_error_null(TG_ERR_SHAPE, "%s: bias must be 1-D with out_channels (%lld) elements, got %s", name,
                             (long long)*c_out, tg_shape_str(b1, bias->ndim, bias->shape));
    for (int i = 0; i < sp; i++)
        if (w->shape[2 + i] < 1)
            return tg_error_null(TG_ERR_SHAPE, "%s: kernel size must be positive, got %s", name,
                                 tup(b1, sp, w->shape + 2));
    return true;
}

/* The output's spatial size (and the padding before each axis) from the input's; false
 * with a message when there is none. */
static bool out_size(conv_req *r, const int64_t *in, const int64_t *k, int64_t *out) {
    char b[8][128];
    int sp = r->sp;
    int64_t padded[2], span[2], hi[2];
    for (int i = 0; i < sp; i++) /* every sum and product below stays far inside int64 */
        if ((double)r->dilation[i] * (double)k[i] + (double)in[i] * (double)r->stride[i] + 2.0 * (double)r->pad[i] +
                (double)r->out_pad[i] > 0x1p60)
            return tg_error_null(TG_ERR_SHAPE, "%s: sizes too large: input %s, kernel %s, stride %s, padding %s, "
                                 "dilation %s", r->name, tup(b[0], sp, in), tup(b[1], sp, k), tup(b[2], sp, r->stride),
                                 tup(b[3], sp, r->pad), tup(b[4], sp, r->dilation));
    for (int i = 0; i < sp; i++) {
        span[i] = r->dilation[i] * (k[i] - 1) + 1;
        hi[i] = r->pad[i];
        if (r->kind == TG_CONV_PAD_SAME) { /* PyTorch: the odd zero goes after */
            r->pad[i] = (span[i] - 1) / 2;
            hi[i] = span[i] - 1 - r->pad[i];
        }
        padded[i] = in[i] + r->pad[i] + hi[i];
        out[i] = r->transposed ? (in[i] - 1) * r->stride[i] - 2 * r->pad[i] + span[i] + r->out_pad[i]
                               : padded[i] >= span[i] ? (padded[i] - span[i]) / r->stride[i] + 1 : 0;
    }
    for (int i = 0; i < sp && !r->transposed; i++)
        if (padded[i] < span[i])
            return tg_error_null(TG_ERR_SHAPE, "%s: kernel %s with dilation %s spans %s, more than the padded input %s",
                                 r->name, tup(b[0], sp, k), tup(b[1], sp, r->dilation), tup(b[2], sp, span),
                                 tup(b[3], sp, padded));
    for (int i = 0; i < sp; i++)
        if (out[i] <= 0)
            return tg_error_null(TG_ERR_SHAPE, "%s: output size %s is not positive (input %s, kernel %s, stride %s, "
                                 "padding %s, dilation %s, output_padding %s)", r->name, tup(b[0], sp, out),
                                 tup(b[1], sp, in), tup(b[2], sp, k), tup(b[3], sp, r->stride), tup(b[4], sp, r->pad),
                                 tup(b[5], sp, r->dilation), tup(b[6], sp, r->out_pad));
    return true;
}

/* ------------------------------------------------------------- conv2d's epilogue */

/* A per-channel tensor of the epilogue's batch norm: x's dtype and device, (c_out). */
static bool check_channel_vec(const char *name, const char *arg, const tg_tensor *x, const tg_tensor *t,
                              int64_t c_out) {
    char b[128];
    if (!tg_op_compatible(name, x, t)) return false;
    if (t->ndim != 1 || t->shape[0] != c_out)
        return tg_error_null(TG_ERR_SHAPE, "%s: %s must be 1-D with out_channels (%lld) elements, got %s", name, arg,
                             (long long)c_out, tg_shape_str(b, t->ndim, t->shape));
    return true;
}

/* The epilogue's tensors against the result (oshape, in the user's terms). */
static bool check_epilogue(const char *name, const tg_conv2d_opts *o, const tg_tensor *x, int64_t c_out, int ndim,
                           const int64_t *oshape) {
    char b1[128], b2[128];
    const tg_tensor *rm = o->bn.running_mean, *rv = o->bn.running_var;
    if ((rm || rv || o->bn.weight || o->bn.bias) && !(rm && rv))
        return tg_error_null(TG_ERR_INVALID, "%s: bn needs both running_mean and running_var (eval-mode batch norm)",
                             name);
    const char *names[4] = { "bn.running_mean", "bn.running_var", "bn.weight", "bn.bias" };
    const tg_tensor *vecs[4] = { rm, rv, o->bn.weight, o->bn.bias };
    for (int i = 0; i < 4; i++)
        if (vecs[i] && !check_channel_vec(name, names[i], x, vecs[i], c_out)) return false;
    if (o->bn.eps.set && !(o->bn.eps.value >= 0))
        return tg_error_null(TG_ERR_INVALID, "%s: bn.eps must be >= 0, got %g", name, o->bn.eps.value);
    const tg_tensor *z = o->residual;
    if (z && !tg_op_compatible(name, x, z)) return false;
    if (z && (z->ndim != ndim || memcmp(z->shape, oshape, (size_t)ndim * sizeof *oshape)))
        return tg_error_null(TG_ERR_SHAPE, "%s: residual should have the result's shape %s, got %s", name,
                             tg_shape_str(b1, ndim, oshape), tg_shape_str(b2, z->ndim, z->shape));
    return true;
}

static bool has_epilogue(const tg_conv2d_opts *o) {
    return o && (o->bn.running_mean || o->bn.running_var || o->bn.weight || o->bn.bias || o->residual || o->relu);
}

/* The epilogue composed on the 4-D result y (z: the residual as 4-D): tg_batch_norm in
 * eval mode with the add and the relu in its pass, or tg_add then tg_relu. */
static tg_tensor *compose_epilogue(tg_tensor *y, const tg_conv2d_opts *o, tg_tensor *z) {
    if (o->bn.running_mean)
        return tg_batch_norm(y, o->bn.running_mean, o->bn.running_var, o->bn.weight, o->bn.bias,
                             &(tg_batch_norm_opts){ .eps = o->bn.eps, .relu = o->relu, .residual = z });
    if (z) y = tg_add(y, z);
    return o->relu ? tg_relu(y) : y;
}

/* The whole call: checks, geometry, the op on 4-D views, then the user's shape back;
 * epi: conv2d's options when they ask for an epilogue, else NULL. */
static tg_tensor *convolve(conv_req *r, tg_tensor *x, tg_tensor *w, tg_tensor *bias, const tg_conv2d_opts *epi) {
    int64_t c_out = 0;
    if (!check_options(r) || !check_tensors(r, x, w, bias, &c_out)) return NULL;
    int sp = r->sp;
    bool unbatched = x->ndim == sp + 1;
    int64_t in[2], out[2], n = unbatched ? 1 : x->shape[0];
    memcpy(in, x->shape + x->ndim - sp, (size_t)sp * sizeof *in);
    if (!out_size(r, in, w->shape + 2, out)) return NULL;
    int64_t oshape[4] = { n, c_out, out[0], sp == 2 ? out[1] : 1 };
    if (!tg_op_shape_ok(r->name, 4, oshape)) return NULL;
    /* the geometry in 2-D: a 1-D call is over a height of 1 */
    tg_op_args a = { .conv = { .H = 1, .OH = 1, .KH = 1, .stride = { 1, 1 }, .dilation = { 1, 1 },
                               .groups = r->groups } };
    int o = 2 - sp; /* the first 2-D axis the call's axes fill (W for 1-D) */
    /* the op's x side is the call's input, or its output when transposed */
    int64_t *H[2] = { &a.conv.H, &a.conv.W }, *OH[2] = { &a.conv.OH, &a.conv.OW }, *K[2] = { &a.conv.KH, &a.conv.KW };
    for (int i = 0; i < sp; i++) {
        *(r->transposed ? OH : H)[o + i] = in[i];
        *(r->transposed ? H : OH)[o + i] = out[i];
        *K[o + i] = w->shape[2 + i];
        a.conv.stride[o + i] = r->stride[i];
        a.conv.pad[o + i] = r->pad[i];
        a.conv.dilation[o + i] = r->dilation[i];
    }
    tg_tensor *x4 = unbatched ? tg_unsqueeze(x, 0) : x, *w4 = w, *z4 = NULL;
    if (sp == 1) x4 = tg_unsqueeze(x4, 2), w4 = tg_unsqueeze(w, 2);
    tg_conv_epilogue e = { 0 };
    bool fused = false;
    if (epi) {
        if (!check_epilogue(r->name, epi, x, c_out, unbatched ? 3 : 4, unbatched ? oshape + 1 : oshape)) return NULL;
        z4 = epi->residual && unbatched ? tg_unsqueeze(epi->residual, 0) : epi->residual;
        tg_tensor *in[6] = { x, w, bias, epi->residual, epi->bn.weight, epi->bn.bias };
        tg_tensor *given[6];
        int n_given = 0;
        for (int i = 0; i < 6; i++)
            if (in[i]) given[n_given++] = in[i];
        fused = tg_dev(x)->be->conv2d_fused && !tg_node_should_record(n_given, given);
        if (fused) {
            e = (tg_conv_epilogue){ .mean = dense(epi->bn.running_mean), .var = dense(epi->bn.running_var),
                                    .weight = dense(epi->bn.weight), .bias = dense(epi->bn.bias),
                                    .eps = epi->bn.eps.set ? epi->bn.eps.value : 1e-5, .residual = dense(z4),
                                    .relu = epi->relu };
            a.conv.epi = &e;
        }
    }
    tg_tensor *y = r->transposed ? conv_op(TG_OP_CONV2D_BACKWARD_DATA, x4, w4, NULL, &a)
                                 : conv_op(TG_OP_CONV2D, x4, w4, bias, &a);
    if (epi && !fused && y) y = compose_epilogue(y, epi, z4);
    if (sp == 1) y = tg_squeeze(y, 2);
    if (unbatched) y = tg_squeeze(y, 0);
    if (r->transposed && bias) y = tg_add(y, tg_reshape(bias, sp == 2 ? TG_SHAPE(c_out, 1, 1) : TG_SHAPE(c_out, 1)));
    return y;
}

tg_tensor *tg_conv2d(tg_tensor *x, tg_tensor *weight, tg_tensor *bias, const tg_conv2d_opts *opts) {
    TG_API_ENTER("tg_conv2d");
    tg_conv2d_opts o = opts ? *opts : (tg_conv2d_opts){ 0 };
    conv_req r = { .name = "tg_conv2d", .sp = 2, .kind = o.padding_kind, .groups = o.groups ? o.groups : 1 };
    resolve(r.stride, 2, o.stride, o.stride_hw, 1);
    resolve(r.pad, 2, o.padding, o.padding_hw, 0);
    resolve(r.dilation, 2, o.dilation, o.dilation_hw, 1);
    return convolve(&r, x, weight, bias, has_epilogue(&o) ? &o : NULL);
}

tg_tensor *tg_conv1d(tg_tensor *x, tg_tensor *weight, tg_tensor *bias, const tg_conv1d_opts *opts) {
    TG_API_ENTER("tg_conv1d");
    tg_conv1d_opts o = opts ? *opts : (tg_conv1d_opts){ 0 };
    conv_req r = { .name = "tg_conv1d", .sp = 1, .kind = o.padding_kind, .groups = o.groups ? o.groups : 1 };
    resolve(r.stride, 1, o.stride, NULL, 1);
    resolve(r.pad, 1, o.padding, NULL, 0);
    resolve(r.dilation, 1, o.dilation, NULL, 1);
    return convolve(&r, x, weight, bias, NULL);
}

tg_tensor *tg_conv_transpose2d(tg_tensor *x, tg_tensor *weight, tg_tensor *bias, const tg_conv_transpose2d_opts *opts) {
    TG_API_ENTER("tg_conv_transpose2d");
    tg_conv_transpose2d_opts o = opts ? *opts : (tg_conv_transpose2d_opts){ 0 };
    conv_req r = { .name = "tg_conv_transpose2d", .sp = 2, .transposed = true, .groups = o.groups ? o.groups : 1 };
    resolve(r.stride, 2, o.stride, o.stride_hw, 1);
    resolve(r.pad, 2, o.padding, o.padding_hw, 0);
    resolve(r.out_pad, 2, o.output_padding, o.output_padding_hw, 0);
    resolve(r.dilation, 2, o.dilation, o.dilation_hw, 1);
    return convolve(&r, x, weight, bias, NULL);
}
