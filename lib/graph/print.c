/* tg_print: shape, dtype, device and values, summarised like PyTorch's printout when a
 * tensor has more than 1000 elements (the first and last three along each axis). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"

#define EDGE 3
#define SUMMARY_THRESHOLD 1000

typedef struct {
    char *buf;
    size_t size, len; /* len counts what would have been written, as snprintf does */
    const tg_tensor *t;
    const double *v;  /* the values, dense */
    bool summarise, sci, integer;
    int width;
} printer;

static void out(printer *p, const char *fmt, ...) TG_PRINTF(2, 3);
static void out(printer *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = p->len < p->size ? p->size - p->len : 0;
    int n = vsnprintf(room ? p->buf + p->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) p->len += (size_t)n;
}

static int format_value(const printer *p, char *b, size_t n, double v) {
    if (p->integer) return snprintf(b, n, "%.0f", v);
    if (isnan(v) || isinf(v)) return snprintf(b, n, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    return snprintf(b, n, p->sci ? "%.4e" : "%.4f", v);
}

static void print_axis(printer *p, int axis, int64_t base, int indent) {
    const tg_tensor *t = p->t;
    int64_t n = t->shape[axis], stride = tg_shape_numel(t->ndim - axis - 1, t->shape + axis + 1);
    out(p, "[");
    for (int64_t i = 0; i < n; i++) {
        if (p->summarise && n > 2 * EDGE && i == EDGE) {
            out(p, axis == t->ndim - 1 ? "..., " : "...,\n%*s", axis == t->ndim - 1 ? 0 : indent + 1, "");
            i = n - EDGE;
        }
        if (axis == t->ndim - 1) {
            char b[64];
            format_value(p, b, sizeof b, p->v[base + i]);
            out(p, "%*s", p->width, b);
        } else {
            print_axis(p, axis + 1, base + i * stride, indent + 1);
        }
        if (i + 1 < n) {
            if (axis == t->ndim - 1) out(p, ", ");
            else out(p, ",%.*s%*s", t->ndim - axis - 1, "\n\n\n\n\n\n\n\n", indent + 1, "");
        }
    }
    out(p, "]");
}

int tg_snprint(char *buf, size_t size, const tg_tensor *t) {
    if (!t) return snprintf(buf, size, "(null tensor: %s)", tg_last_error());
    printer p = { buf, size, 0, t, NULL, false, false, !tg_is_float(t->dtype), 0 };
    if (size) buf[0] = '\0';
    int64_t numel = tg_shape_numel(t->ndim, t->shape);
    double *v = malloc((size_t)(numel ? numel : 1) * sizeof *v);
    tg_tensor *dv = v ? tg_tensor_new_unscoped(TG_F64, t->ndim, t->shape, tg_cpu_device()) : NULL;
    tg_tensor *local = NULL;
    if (!dv) {
        free(v);
        return snprintf(buf, size, "(tensor: out of memory to print)");
    }
    /* Bring the values to the host as f64 through the tensor's own backend. */
    local = tg_tensor_new_unscoped(t->dtype, t->ndim, t->shape, t->storage->dev);
    if (local && t->storage->dev->be->copy(local, t) == TG_OK &&
        t->storage->dev->be->download(t->storage->dev, dv->storage->data, local->storage->data, 0,
                                      (size_t)numel * tg_elsize(t->dtype)) == TG_OK) {
        tg_tensor raw = *dv; /* reinterpret the downloaded bytes as t's dtype, then widen */
        raw.dtype = t->dtype;
        tg_tensor *wide = tg_tensor_new_unscoped(TG_F64, t->ndim, t->shape, tg_cpu_device());
        if (wide && tg_cpu_device()->be->copy(wide, &raw) == TG_OK) memcpy(v, wide->storage->data, (size_t)numel * 8);
        tg_tensor_decref(wide);
    }
    tg_tensor_decref(local);
    tg_tensor_decref(dv);
    p.v = v;
    p.summarise = numel > SUMMARY_THRESHOLD;
    double amax = 0;
    for (int64_t i = 0; i < numel; i++)
        if (isfinite(v[i]) && fabs(v[i]) > amax) amax = fabs(v[i]);
    p.sci = !p.integer && (amax >= 1e8 || (amax > 0 && amax < 1e-4));
    for (int64_t i = 0; i < numel; i++) {
        char b[64];
        int w = format_value(&p, b, sizeof b, v[i]);
        if (w > p.width) p.width = w;
    }
    char sb[128];
    out(&p, "tensor(");
    if (t->ndim == 0 && numel == 1) {
        char b[64];
        format_value(&p, b, sizeof b, v[0]);
        out(&p, "%s", b);
    } else {
        print_axis(&p, 0, 0, 7);
    }
    out(&p, ", shape=%s, dtype=%s, device=%s%s)", tg_shape_str(sb, t->ndim, t->shape), tg_dtype_name(t->dtype),
        t->storage->dev->name, t->requires_grad ? ", requires_grad" : "");
    free(v);
    return (int)p.len;
}

void tg_fprint(FILE *f, const tg_tensor *t) {
    int n = tg_snprint(NULL, 0, t);
    char *b = malloc((size_t)n + 1);
    if (!b) return;
    tg_snprint(b, (size_t)n + 1, t);
    fprintf(f, "%s\n", b);
    free(b);
}

void tg_print(const tg_tensor *t) { tg_fprint(stdout, t); }
