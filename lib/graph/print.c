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
    size_t size, len;   /* len counts what would have been written, as snprintf does */
    const tg_tensor *t;
    const double *v;    /* float values, dense */
    const int64_t *iv;  /* integer values, dense and exact (i64 past 2^53 too) */
    bool summarise, sci;
    bool measure;       /* a first pass that only finds the widest shown value */
    int width;
} printer;

static void out(printer *p, const char *fmt, ...) TG_PRINTF(2, 3);
static void out(printer *p, const char *fmt, ...) {
    if (p->measure) return;
    va_list ap;
    va_start(ap, fmt);
    size_t room = p->len < p->size ? p->size - p->len : 0;
    int n = vsnprintf(room ? p->buf + p->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) p->len += (size_t)n;
}

static int format_value(const printer *p, char *b, size_t n, int64_t i) {
    if (p->iv) return snprintf(b, n, "%lld", (long long)p->iv[i]);
    double v = p->v[i];
    if (isnan(v) || isinf(v)) return snprintf(b, n, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    return snprintf(b, n, p->sci ? "%.4e" : "%.4f", v);
}

static void print_value(printer *p, int64_t i) {
    char b[64];
    int w = format_value(p, b, sizeof b, i);
    if (p->measure) {
        if (w > p->width) p->width = w;
        return;
    }
    out(p, "%*s", p->width, b);
}

/* Only called for a tensor with elements, so every axis has at least one. */
static void print_axis(printer *p, int axis, int64_t base, int indent) {
    const tg_tensor *t = p->t;
    int64_t n = t->shape[axis], stride = tg_shape_numel(t->ndim - axis - 1, t->shape + axis + 1);
    out(p, "[");
    for (int64_t i = 0; i < n; i++) {
        if (p->summarise && n > 2 * EDGE && i == EDGE) {
            out(p, axis == t->ndim - 1 ? "..., " : "...,\n%*s", axis == t->ndim - 1 ? 0 : indent + 1, "");
            i = n - EDGE;
        }
        if (axis == t->ndim - 1) print_value(p, base + i);
        else print_axis(p, axis + 1, base + i * stride, indent + 1);
        if (i + 1 < n) {
            if (axis == t->ndim - 1) out(p, ", ");
            else out(p, ",%.*s%*s", t->ndim - axis - 1, "\n\n\n\n\n\n\n\n", indent + 1, "");
        }
    }
    out(p, "]");
}

/* t's values as a dense CPU tensor of dtype `as` (f64 or i64), through t's own
 * backend for the layout; NULL when memory runs out. */
static tg_tensor *fetch(const tg_tensor *t, tg_dtype as) {
    tg_device *dev = t->storage->dev, *cpu = tg_cpu_device();
    tg_tensor *raw = tg_tensor_new_unscoped(t->dtype, t->ndim, t->shape, cpu), *local = NULL, *wide = NULL;
    tg_status st = raw ? TG_OK : TG_ERR_NOMEM;
    if (st == TG_OK && dev == cpu) {
        st = cpu->be->copy(raw, t);
    } else if (st == TG_OK) {
        local = tg_tensor_new_unscoped(t->dtype, t->ndim, t->shape, dev);
        st = local ? dev->be->copy(local, t) : TG_ERR_NOMEM;
        if (st == TG_OK) st = dev->be->download(dev, raw->storage->data, local->storage->data, 0, raw->storage->nbytes);
    }
    if (st == TG_OK) wide = tg_tensor_new_unscoped(as, t->ndim, t->shape, cpu);
    if (wide && cpu->be->copy(wide, raw) != TG_OK) {
        tg_tensor_decref(wide);
        wide = NULL;
    }
    tg_tensor_decref(local);
    tg_tensor_decref(raw);
    return wide;
}

static void print_footer(printer *p, const tg_tensor *t) {
    char sb[128];
    out(p, ", shape=%s, dtype=%s, device=%s%s)", tg_shape_str(sb, t->ndim, t->shape), tg_dtype_name(t->dtype),
        t->storage->dev->name, t->requires_grad ? ", requires_grad" : "");
}

int tg_snprint(char *buf, size_t size, const tg_tensor *t) {
    TG_API_ENTER("tg_snprint");
    if (!t) return snprintf(buf, size, "(null tensor: %s)", tg_last_error());
    printer p = { .buf = buf, .size = size, .t = t };
    if (size) buf[0] = '\0';
    int64_t numel = tg_shape_numel(t->ndim, t->shape);
    if (numel == 0) { /* no values: one "[]" whatever the shape ([2^31, 0] loops nowhere) */
        out(&p, "tensor([]");
        print_footer(&p, t);
        return (int)p.len;
    }
    tg_tensor *vals = fetch(t, tg_is_float(t->dtype) ? TG_F64 : TG_I64);
    if (!vals) return snprintf(buf, size, "(tensor: out of memory to print)");
    if (tg_is_float(t->dtype)) p.v = vals->storage->data;
    else p.iv = vals->storage->data;
    p.summarise = numel > SUMMARY_THRESHOLD;
    double amax = 0;
    for (int64_t i = 0; p.v && i < numel; i++)
        if (isfinite(p.v[i]) && fabs(p.v[i]) > amax) amax = fabs(p.v[i]);
    p.sci = p.v && (amax >= 1e8 || (amax > 0 && amax < 1e-4));
    out(&p, "tensor(");
    if (t->ndim == 0) {
        p.measure = true;
        print_value(&p, 0);
        p.measure = false;
        p.width = 0;
        print_value(&p, 0);
    } else {
        p.measure = true; /* the width of the values shown, not of all of them */
        print_axis(&p, 0, 0, 7);
        p.measure = false;
        print_axis(&p, 0, 0, 7);
    }
    print_footer(&p, t);
    tg_tensor_decref(vals);
    return (int)p.len;
}

void tg_fprint(FILE *f, const tg_tensor *t) {
    TG_API_ENTER("tg_fprint");
    int n = tg_snprint(NULL, 0, t);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!b) return;
    tg_snprint(b, (size_t)n + 1, t);
    fprintf(f, "%s\n", b);
    free(b);
}

void tg_print(const tg_tensor *t) {
    TG_API_ENTER("tg_print");
    tg_fprint(stdout, t);
}
