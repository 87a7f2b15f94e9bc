/* Detection ops as torchvision.ops names them: roi_pool and roi_align (primitives with a
 * kernel per backend, and backward ops of their own), box_iou (composed of ops) and
 * nms / batched_nms (host-side, never recorded). Backward chains:
 *   roi_pool           -> roi_pool_backward (g added at each bin's argmax)
 *   roi_pool_backward  -> index_select + gather at the argmax (composed)
 *   roi_align          -> roi_align_backward (g spread with the bilinear weights)
 *   roi_align_backward -> roi_align (the map is linear: its adjoint's adjoint)
 * Boxes are not differentiable (torchvision's rois are not either). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ops/ops.h"

#define LL(v) ((long long)(v))
#define ROI_POOL_KIND 0  /* the kind column of the op table */
#define ROI_ALIGN_KIND 1
/* Bilinear samples per bin past which roi_align refuses a box (a 2^20-pixel-wide box
 * with adaptive sampling would otherwise run for hours). */
#define ROI_MAX_SAMPLES (1 << 20)
#define ROI_MAX_RATIO (1 << 10) /* the same bound for a given sampling_ratio */
/* Scaled roi_pool coordinates are rounded to int64: keep them far from overflow. */
#define ROI_MAX_COORD 1e15

/* A dense copy of t when it is not dense, made without recording (launches only). */
static tg_tensor *dense(tg_tensor *t) { return tg_tensor_is_dense(t) ? t : tg_contiguous(tg_detach(t)); }

/* ------------------------------------------------------------- the ops */

/* Inputs (input (N, C, H, W), boxes (K, 5)), checked by the builder. roi_pool has a
 * second output, the argmax, when backward will need it. */
bool tg_roi_shape(tg_op_call *c) {
    const tg_op_desc *d = &tg_ops[c->op];
    tg_tensor *x = c->in[0];
    tg_roi_geom *g = &c->args.roi.g;
    g->N = x->shape[0], g->C = x->shape[1], g->H = x->shape[2], g->W = x->shape[3], g->K = c->in[1]->shape[0];
    const tg_backend *be = tg_dev(x)->be;
    if (d->kind == ROI_POOL_KIND ? !be->roi_pool : !be->roi_align) {
        tg_error(TG_ERR_DEVICE, "%s: device %s has no %s kernel (yet)", d->name, tg_dev(x)->name, d->name + 3);
        return false;
    }
    for (int k = 0; k < (d->kind == ROI_POOL_KIND && tg_node_should_record(1, c->in) ? 2 : 1); k++) {
        tg_out_spec *s = &c->out_spec[k];
        s->dtype = k ? TG_I64 : x->dtype;
        s->ndim = 4;
        s->shape[0] = g->K, s->shape[1] = g->C, s->shape[2] = g->PH, s->shape[3] = g->PW;
        s->no_grad = k == 1;
        c->n_out = k + 1;
    }
    return tg_op_shape_ok(d->name, 4, c->out_spec[0].shape);
}

tg_status tg_roi_launch(tg_op_call *c) {
    const tg_roi_geom *g = &c->args.roi.g;
    tg_tensor *argmax = c->n_out > 1 ? c->out[1] : NULL;
    tg_scope_begin();
    tg_tensor *x = dense(c->in[0]), *boxes = dense(c->in[1]);
    const tg_backend *be = x ? tg_dev(x)->be : NULL;
    tg_status st = !x || !boxes ? tg_last_status()
                 : tg_ops[c->op].kind == ROI_POOL_KIND ? be->roi_pool(c->out[0], argmax, x, boxes, g)
                                                       : be->roi_align(c->out[0], x, boxes, g);
    tg_scope_end();
    if (st == TG_OK && argmax) tg_tensor_incref(c->extra_save[c->n_extra++] = argmax); /* for backward */
    return st;
}

/* Inputs (grad (K, C, PH, PW)[, argmax of its shape], boxes); the output has the
 * input's shape. Only backward rules call these, with the node's geometry. */
bool tg_roi_backward_shape(tg_op_call *c) {
    const tg_op_desc *d = &tg_ops[c->op];
    const tg_roi_geom *g = &c->args.roi.g;
    int64_t want[4] = { g->K, g->C, g->PH, g->PW };
    char b1[128], b2[128];
    for (int i = 0; i + 1 < c->n_in; i++)
        if (!tg_shape_equal(c->in[i]->ndim, c->in[i]->shape, 4, want) || (i == 1 && c->in[1]->dtype != TG_I64)) {
            tg_error(TG_ERR_SHAPE, "%s: expected %s of shape %s%s, got %s %s", d->name, i ? "argmax" : "grad",
                     tg_shape_str(b1, 4, want), i ? " (i64)" : "", tg_dtype_name(c->in[i]->dtype),
                     tg_shape_str(b2, c->in[i]->ndim, c->in[i]->shape));
            return false;
        }
    const tg_backend *be = tg_dev(c->in[0])->be;
    if (d->kind == ROI_POOL_KIND ? !be->roi_pool_backward : !be->roi_align_backward) {
        tg_error(TG_ERR_DEVICE, "%s: device %s has no %s kernel (yet)", d->name, tg_dev(c->in[0])->name, d->name + 3);
        return false;
    }
    tg_out_spec *s = &c->out_spec[0];
    s->dtype = c->in[0]->dtype;
    s->ndim = 4;
    s->shape[0] = g->N, s->shape[1] = g->C, s->shape[2] = g->H, s->shape[3] = g->W;
    return true;
}

tg_status tg_roi_backward_launch(tg_op_call *c) {
    const tg_roi_geom *g = &c->args.roi.g;
    bool pool = tg_ops[c->op].kind == ROI_POOL_KIND;
    tg_scope_begin();
    tg_tensor *grad = dense(c->in[0]), *argmax = pool ? dense(c->in[1]) : NULL, *boxes = dense(c->in[c->n_in - 1]);
    const tg_backend *be = grad ? tg_dev(grad)->be : NULL;
    tg_status st = !grad || !boxes || (pool && !argmax) ? tg_last_status()
                 : pool ? be->roi_pool_backward(c->out[0], grad, argmax, boxes, g)
                        : be->roi_align_backward(c->out[0], grad, boxes, g);
    tg_scope_end();
    return st;
}

tg_status tg_bw_roi_pool(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *boxes = tg_node_saved(n, 0), *argmax = boxes ? tg_node_saved(n, 1) : NULL;
    if (!argmax) return tg_last_status();
    tg_op_call *c = TG_OP_CALL(TG_OP_ROI_POOL_BACKWARD, 3, gout[0], argmax, boxes);
    c->args = n->args;
    gin[0] = tg_op_run(c);
    return gin[0] ? TG_OK : tg_last_status();
}

/* roi_pool_backward is linear in grad; its adjoint reads gg (N, C, H, W) back at each
 * bin's argmax in the plane of the box's image, 0 for an empty bin. */
tg_status tg_bw_roi_pool_backward(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *argmax = tg_node_saved(n, 0), *boxes = argmax ? tg_node_saved(n, 1) : NULL, *gg = gout[0];
    if (!boxes) return tg_last_status();
    const tg_roi_geom *g = &n->args.roi.g;
    tg_device *dev = tg_dev(argmax);
    tg_tensor *batch = tg_cast(tg_squeeze(tg_slice(boxes, 1, 0, 1, 1), 1), TG_I64);
    tg_tensor *planes = tg_reshape(tg_index_select(gg, 0, batch), TG_SHAPE(g->K, g->C, g->H * g->W));
    tg_tensor *flat = tg_reshape(argmax, TG_SHAPE(g->K, g->C, g->PH * g->PW));
    tg_tensor *valid = tg_ge(flat, tg_scalar(TG_I64, 0, dev));
    tg_tensor *r = tg_gather(planes, 2, tg_where(valid, flat, tg_scalar(TG_I64, 0, dev)));
    r = tg_mul(r, tg_cast(valid, gg ? gg->dtype : TG_F64));
    gin[0] = tg_reshape(r, TG_SHAPE(g->K, g->C, g->PH, g->PW));
    return gin[0] ? TG_OK : tg_last_status();
}

tg_status tg_bw_roi_align(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *boxes = tg_node_saved(n, 0);
    if (!boxes) return tg_last_status();
    tg_op_call *c = TG_OP_CALL(TG_OP_ROI_ALIGN_BACKWARD, 2, gout[0], boxes);
    c->args = n->args;
    gin[0] = tg_op_run(c);
    return gin[0] ? TG_OK : tg_last_status();
}

tg_status tg_bw_roi_align_backward(tg_node *n, tg_tensor *const *gout, tg_tensor **gin) {
    tg_tensor *boxes = tg_node_saved(n, 0);
    if (!boxes) return tg_last_status();
    tg_op_call *c = TG_OP_CALL(TG_OP_ROI_ALIGN, 2, gout[0], boxes);
    c->args = n->args;
    gin[0] = tg_op_run(c);
    return gin[0] ? TG_OK : tg_last_status();
}

/* ------------------------------------------------------------- the builders */

/* boxes read on the host as f64 (caller frees), NULL with a message. */
static double *host_f64(tg_tensor *t) {
    int64_t n = tg_numel(t);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return tg_error_null(TG_ERR_NOMEM, "out of host memory (%lld values)", LL(n));
    tg_tensor *d = tg_cast(t, TG_F64);
    if (!d || tg_copy_to_host(d, v, (size_t)n * sizeof *v) != TG_OK) {
        free(v);
        return NULL;
    }
    return v;
}

/* Every box row: a batch index that names an image, finite coordinates, and for
 * roi_align a bounded number of samples per bin. */
static bool check_box_values(const char *name, const tg_roi_geom *g, bool align, tg_tensor *boxes) {
    double *b = host_f64(boxes);
    if (!b) return false;
    bool ok = true;
    for (int64_t k = 0; k < g->K && ok; k++) {
        const double *r = b + 5 * k;
        if (!(r[0] > -1 && r[0] < (double)g->N)) { /* torchvision truncates the index */
            tg_error(TG_ERR_INVALID, "%s: boxes[%lld, 0] = %g is not a batch index of the input (N = %lld: 0 to %lld)",
                     name, LL(k), r[0], LL(g->N), LL(g->N - 1));
            ok = false;
        }
        for (int j = 1; j < 5 && ok; j++)
            if (!isfinite(r[j]) || fabs(r[j] * g->spatial_scale) > ROI_MAX_COORD) {
                tg_error(TG_ERR_INVALID, "%s: boxes[%lld, %d] = %g is not a finite coordinate%s", name, LL(k), j, r[j],
                         isfinite(r[j]) ? " (at most 1e15 after spatial_scale)" : "");
                ok = false;
            }
        if (!ok || !align || g->sampling_ratio > 0) continue;
        double gh = ceil(fmax((r[4] - r[2]) * g->spatial_scale, 1) / (double)g->PH);
        double gw = ceil(fmax((r[3] - r[1]) * g->spatial_scale, 1) / (double)g->PW);
        if (gh * gw > ROI_MAX_SAMPLES) {
            tg_error(TG_ERR_INVALID, "%s: box %lld would take %.0f x %.0f samples per bin (at most %d: give a "
                     "sampling_ratio)", name, LL(k), gh, gw, ROI_MAX_SAMPLES);
            ok = false;
        }
    }
    free(b);
    return ok;
}

/* The argument checks both ops share, then the op on (input, boxes in input's dtype). */
static tg_tensor *run_roi(int op, const char *name, tg_tensor *input, tg_tensor *boxes, tg_roi_geom g) {
    char b[128];
    if (!tg_op_nonnull(name, "input", input) || !tg_op_nonnull(name, "boxes", boxes)) return NULL;
    if (input->ndim != 4)
        return tg_error_null(TG_ERR_SHAPE, "%s: expected a 4-D (N, C, H, W) input, got %d-D %s", name, input->ndim,
                             tg_shape_str(b, input->ndim, input->shape));
    if (input->shape[2] == 0 || input->shape[3] == 0)
        return tg_error_null(TG_ERR_SHAPE, "%s: expected non-zero H and W, got %s", name,
                             tg_shape_str(b, input->ndim, input->shape));
    if (!tg_op_float(name, input)) return NULL;
    if (boxes->ndim != 2 || boxes->shape[1] != 5)
        return tg_error_null(TG_ERR_SHAPE, "%s: boxes must be (K, 5) rows [batch_index, x1, y1, x2, y2], got %s", name,
                             tg_shape_str(b, boxes->ndim, boxes->shape));
    if (boxes->dtype != TG_F32 && boxes->dtype != TG_F64)
        return tg_error_null(TG_ERR_DTYPE, "%s: boxes must be f32 or f64, got %s", name, tg_dtype_name(boxes->dtype));
    if (g.PH < 1 || g.PW < 1)
        return tg_error_null(TG_ERR_INVALID, "%s: output size must be positive, got (%lld, %lld)", name, LL(g.PH),
                             LL(g.PW));
    if (!(g.spatial_scale > 0) || !isfinite(g.spatial_scale))
        return tg_error_null(TG_ERR_INVALID, "%s: spatial_scale must be positive and finite, got %g", name,
                             g.spatial_scale);
    if (g.sampling_ratio < -1 || g.sampling_ratio > ROI_MAX_RATIO)
        return tg_error_null(TG_ERR_INVALID, "%s: sampling_ratio must be -1 or 0 (adaptive) or in [1, %d], got %lld",
                             name, ROI_MAX_RATIO, LL(g.sampling_ratio));
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *bx = tg_cast(tg_detach(boxes), input->dtype); /* boxes take no gradient */
    tg_set_grad_enabled(prev);
    g.N = input->shape[0], g.K = boxes->shape[0];
    if (!bx || !check_box_values(name, &g, op == TG_OP_ROI_ALIGN, bx)) return NULL;
    tg_op_call *c = TG_OP_CALL(op, 2, input, bx);
    c->args.roi.g = g;
    return tg_op_run(c);
}

tg_tensor *tg_roi_pool(tg_tensor *input, tg_tensor *boxes, int64_t output_h, int64_t output_w, double spatial_scale) {
    TG_API_ENTER("tg_roi_pool");
    tg_roi_geom g = { .PH = output_h, .PW = output_w, .spatial_scale = spatial_scale };
    return run_roi(TG_OP_ROI_POOL, "tg_roi_pool", input, boxes, g);
}

tg_tensor *tg_roi_align(tg_tensor *input, tg_tensor *boxes, int64_t output_h, int64_t output_w, double spatial_scale,
                        int64_t sampling_ratio, bool aligned) {
    TG_API_ENTER("tg_roi_align");
    tg_roi_geom g = { .PH = output_h, .PW = output_w, .spatial_scale = spatial_scale,
                      .sampling_ratio = sampling_ratio, .aligned = aligned };
    return run_roi(TG_OP_ROI_ALIGN, "tg_roi_align", input, boxes, g);
}

/* ------------------------------------------------------------- boxes */

static bool check_boxes4(const char *name, const char *arg, const tg_tensor *t) {
    char b[128];
    if (!tg_op_nonnull(name, arg, t)) return false;
    if (t->ndim != 2 || t->shape[1] != 4) {
        tg_error(TG_ERR_SHAPE, "%s: %s must be (N, 4) rows [x1, y1, x2, y2], got %s", name, arg,
                 tg_shape_str(b, t->ndim, t->shape));
        return false;
    }
    if (t->dtype != TG_F32 && t->dtype != TG_F64) {
        tg_error(TG_ERR_DTYPE, "%s: %s must be f32 or f64, got %s", name, arg, tg_dtype_name(t->dtype));
        return false;
    }
    return true;
}

/* Columns [lo, lo + 2) of boxes (N, 4) as (N, 1, 2) or (1, N, 2). */
static tg_tensor *corner(tg_tensor *boxes, int64_t lo, int axis) {
    return tg_unsqueeze(tg_slice(boxes, 1, lo, lo + 2, 1), axis);
}

static tg_tensor *area(tg_tensor *boxes) {
    tg_tensor *wh = tg_sub(tg_slice(boxes, 1, 2, 4, 1), tg_slice(boxes, 1, 0, 2, 1));
    return tg_mul(tg_slice(wh, 1, 0, 1, 1), tg_slice(wh, 1, 1, 2, 1)); /* (N, 1) */
}

tg_tensor *tg_box_iou(tg_tensor *a, tg_tensor *b) {
    const char *name = "tg_box_iou";
    TG_API_ENTER(name);
    if (!check_boxes4(name, "a", a) || !check_boxes4(name, "b", b) || !tg_op_compatible(name, a, b)) return NULL;
    tg_tensor *lt = tg_maximum(corner(a, 0, 1), corner(b, 0, 0)); /* (N, M, 2) */
    tg_tensor *rb = tg_minimum(corner(a, 2, 1), corner(b, 2, 0));
    tg_tensor *wh = tg_clamp(tg_sub(rb, lt), 0, INFINITY);
    tg_tensor *inter = tg_mul(tg_squeeze(tg_slice(wh, 2, 0, 1, 1), 2), tg_squeeze(tg_slice(wh, 2, 1, 2, 1), 2));
    tg_tensor *uni = tg_sub(tg_add(area(a), tg_transpose(area(b), 0, 1)), inter);
    return tg_div(inter, uni);
}

typedef struct {
    double score;
    int64_t i;
} ranked;

/* Decreasing score, NaN first (torch.sort's descending order), ties by index. */
static int by_score(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    bool na = isnan(a->score), nb = isnan(b->score);
    if (na != nb) return na ? -1 : 1;
    if (!na && a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* torchvision's nms_kernel on the host, in the boxes' precision (f32 boxes give f32
 * areas and ratios, as its CPU kernel); idxs (NULL: one class) limits suppression to
 * boxes of one class, which is what batched_nms's coordinate offsets achieve. */
static tg_tensor *nms_host(const char *name, tg_tensor *boxes, tg_tensor *scores, tg_tensor *idxs, double thr) {
    char b1[128], b2[128];
    if (!check_boxes4(name, "boxes", boxes) || !tg_op_nonnull(name, "scores", scores)) return NULL;
    int64_t n = boxes->shape[0];
    if (scores->ndim != 1 || scores->shape[0] != n)
        return tg_error_null(TG_ERR_SHAPE, "%s: scores %s must be (N) for boxes %s", name,
                             tg_shape_str(b1, scores->ndim, scores->shape), tg_shape_str(b2, boxes->ndim, boxes->shape));
    if (!tg_op_float(name, scores)) return NULL;
    if (idxs && (idxs->ndim != 1 || idxs->shape[0] != n))
        return tg_error_null(TG_ERR_SHAPE, "%s: idxs %s must be (N) for boxes %s", name,
                             tg_shape_str(b1, idxs->ndim, idxs->shape), tg_shape_str(b2, boxes->ndim, boxes->shape));
    if (idxs && !tg_op_index(name, "idxs", idxs)) return NULL;
    if (isnan(thr)) return tg_error_null(TG_ERR_INVALID, "%s: iou_threshold is NaN", name);
    bool f32 = boxes->dtype == TG_F32;
    double *bx = host_f64(boxes), *sc = bx ? host_f64(scores) : NULL, *cl = sc && idxs ? host_f64(idxs) : NULL;
    ranked *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    int64_t *keep = malloc((size_t)(n ? n : 1) * sizeof *keep);
    unsigned char *gone = calloc((size_t)(n ? n : 1), 1);
    tg_tensor *out = NULL;
    if (!sc || (idxs && !cl)) goto fail;
    if (!order || !keep || !gone) {
        tg_error(TG_ERR_NOMEM, "%s: out of host memory (%lld boxes)", name, LL(n));
        goto fail;
    }
    for (int64_t i = 0; i < n; i++) order[i] = (ranked){ sc[i], i };
    qsort(order, (size_t)n, sizeof *order, by_score);
    int64_t nk = 0;
    for (int64_t a = 0; a < n; a++) {
        int64_t i = order[a].i;
        if (gone[i]) continue;
        keep[nk++] = i;
        const double *p = bx + 4 * i;
        double ai = f32 ? (double)((float)(p[2] - p[0]) * (float)(p[3] - p[1])) : (p[2] - p[0]) * (p[3] - p[1]);
        for (int64_t c = a + 1; c < n; c++) {
            int64_t j = order[c].i;
            if (gone[j] || (cl && cl[j] != cl[i])) continue;
            const double *q = bx + 4 * j;
            double w = fmax(0, fmin(p[2], q[2]) - fmax(p[0], q[0])), h = fmax(0, fmin(p[3], q[3]) - fmax(p[1], q[1]));
            double aj = (q[2] - q[0]) * (q[3] - q[1]), inter = w * h, ovr = inter / (ai + aj - inter);
            if (f32) {
                float fi = (float)w * (float)h, fa = (float)(q[2] - q[0]) * (float)(q[3] - q[1]);
                ovr = (double)(fi / ((float)ai + fa - fi));
            }
            if (ovr > thr) gone[j] = 1;
        }
    }
    out = tg_from_i64(keep, TG_SHAPE(nk), tg_dev(boxes));
fail:
    free(bx);
    free(sc);
    free(cl);
    free(order);
    free(keep);
    free(gone);
    return out;
}

tg_tensor *tg_nms(tg_tensor *boxes, tg_tensor *scores, double iou_threshold) {
    TG_API_ENTER("tg_nms");
    return nms_host("tg_nms", boxes, scores, NULL, iou_threshold);
}

tg_tensor *tg_batched_nms(tg_tensor *boxes, tg_tensor *scores, tg_tensor *idxs, double iou_threshold) {
    TG_API_ENTER("tg_batched_nms");
    if (!tg_op_nonnull("tg_batched_nms", "idxs", idxs)) return NULL;
    return nms_host("tg_batched_nms", boxes, scores, idxs, iou_threshold);
}
