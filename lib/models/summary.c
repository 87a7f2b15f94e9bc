/* The model summary (torchinfo's summary()): one forward with a pre-hook and a hook on
 * every module, the per-thread multiply-add counter (lib/ops/macs.h) read around each
 * call, then a fixed-width table and the totals. Otherwise composed of public nn calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "lib/graph/error.h"
#include "lib/ops/macs.h"

#define MAX_NEST 64 /* module calls nested deeper than this are refused */

struct tg_model_summary {
    tg_summary_row *rows; /* the rows shown; names and types owned */
    int n, cap;
    tg_summary_totals totals;
    int depth; /* opts->depth, for printing */
};

/* What the hooks share during the forward. */
typedef struct {
    tg_model_summary *s; /* every call's row while running; the shown ones after */
    const tg_module *model;
    int stack[MAX_NEST]; /* rows of the calls running, innermost last */
    int64_t macs_start[MAX_NEST];
    int sp;
} run_state;

static void free_row(tg_summary_row *r) {
    free((char *)r->name);
    free((char *)r->type);
}

void tg_model_summary_free(tg_model_summary *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free_row(&s->rows[i]);
    free(s->rows);
    free(s);
}

/* m's dotted path from the model ("" for the model) into a new string. */
static char *path_from(const tg_module *model, const tg_module *m) {
    size_t len = 0;
    for (const tg_module *p = m; p && p != model; p = tg_module_parent(p)) len += strlen(tg_module_name(p)) + 1;
    char *out = malloc(len + 1);
    if (!out) return NULL;
    out[len] = '\0';
    size_t end = len;
    for (const tg_module *p = m; p && p != model; p = tg_module_parent(p)) {
        const char *nm = tg_module_name(p);
        size_t k = strlen(nm);
        if (end < len) out[--end] = '.';
        end -= k;
        memcpy(out + end, nm, k);
    }
    if (end > 0) memmove(out, out + end, len - end + 1); /* the first name has no dot before it */
    return out;
}

static char *dup_str(const char *s) {
    size_t k = strlen(s) + 1;
    char *d = malloc(k);
    return d ? memcpy(d, s, k) : NULL;
}

static tg_status pre_hook(tg_module *m, int n_inputs, tg_tensor **inputs, void *ctx) {
    run_state *st = ctx;
    tg_model_summary *s = st->s;
    if (st->sp == MAX_NEST) return tg_error(TG_ERR_INVALID, "module calls nested deeper than %d", MAX_NEST);
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 32;
        tg_summary_row *v = realloc(s->rows, (size_t)cap * sizeof *v);
        if (!v) return tg_error(TG_ERR_NOMEM, "out of memory");
        s->rows = v, s->cap = cap;
    }
    tg_summary_row *r = &s->rows[s->n];
    *r = (tg_summary_row){
        .name = path_from(st->model, m),
        .type = dup_str(tg_module_type_of(m)->name ? tg_module_type_of(m)->name : "Module"),
        .depth = st->sp,
        .leaf = tg_module_num_children(m) == 0,
        .params = tg_module_num_parameters(m, false),
        .trainable_params = tg_module_num_parameters(m, true),
    };
    if (!r->name || !r->type) {
        free_row(r);
        return tg_error(TG_ERR_NOMEM, "out of memory");
    }
    st->macs_start[st->sp] = tg_macs_read();
    st->stack[st->sp++] = s->n++;
    return TG_OK;
}

static tg_tensor *post_hook(tg_module *m, int n_inputs, tg_tensor *const *inputs, tg_tensor *output, void *ctx) {
    run_state *st = ctx;
    st->sp--;
    tg_summary_row *r = &st->s->rows[st->stack[st->sp]];
    r->output_shape = tg_shape_of(output);
    r->output_numel = tg_numel(output);
    r->output_bytes = r->output_numel * (int64_t)tg_dtype_size(tg_dtype_of(output));
    r->mult_adds = tg_macs_read() - st->macs_start[st->sp];
    return output;
}

/* ------------------------------------------------------------- the run */

/* What a summary changes and puts back: hooks, modes, buffers (train mode), grad mode. */
typedef struct {
    tg_named mods, bufs;
    int *handles; /* two per module, 0 where not registered */
    bool *modes;
    tg_tensor **saved; /* copies of the buffers (train mode only) */
} guard;

static tg_status arm(guard *g, tg_module *model, bool train, run_state *st) {
    if (tg_module_named_modules(model, &g->mods) != TG_OK || tg_module_buffers(model, &g->bufs) != TG_OK)
        return tg_last_status();
    int n = g->mods.n;
    g->handles = calloc((size_t)(2 * n) + 1, sizeof *g->handles);
    g->modes = calloc((size_t)n + 1, sizeof *g->modes);
    g->saved = calloc((size_t)g->bufs.n + 1, sizeof *g->saved);
    if (!g->handles || !g->modes || !g->saved) return tg_error(TG_ERR_NOMEM, "tg_summary: out of memory");
    for (int i = 0; i < n; i++) g->modes[i] = tg_module_is_training(g->mods.modules[i]);
    for (int i = 0; train && i < g->bufs.n; i++)
        if (!(g->saved[i] = tg_clone(g->bufs.tensors[i]))) return tg_last_status();
    for (int i = 0; i < n; i++) {
        int h = tg_module_register_forward_pre_hook(g->mods.modules[i], pre_hook, st);
        if (h < 0) return h;
        g->handles[2 * i] = h;
        if ((h = tg_module_register_forward_hook(g->mods.modules[i], post_hook, st)) < 0) return h;
        g->handles[2 * i + 1] = h;
    }
    tg_module_train(model, train);
    return TG_OK;
}

/* Puts everything back, whatever arm got to (parents come before children in mods, so
 * restoring each mode in order leaves every module as it was). */
static void disarm(guard *g) {
    for (int i = 0; g->handles && i < g->mods.n; i++)
        for (int k = 0; k < 2; k++)
            if (g->handles[2 * i + k] > 0) tg_module_remove_hook(g->mods.modules[i], g->handles[2 * i + k]);
    for (int i = 0; g->modes && i < g->mods.n; i++) tg_module_train(g->mods.modules[i], g->modes[i]);
    for (int i = 0; g->saved && i < g->bufs.n; i++)
        if (g->saved[i]) tg_copy_(g->bufs.tensors[i], g->saved[i]);
    free(g->handles);
    free(g->modes);
    free(g->saved);
    tg_named_free(&g->mods);
    tg_named_free(&g->bufs);
}

/* The input's device and dtype: the model's first parameter (else buffer), f32 without. */
static tg_tensor *make_input(tg_module *model, tg_shape shape, tg_device *dev) {
    tg_named p;
    if (tg_module_parameters(model, false, &p) != TG_OK) return NULL;
    tg_dtype dt = TG_F32;
    for (int i = 0; i < p.n; i++)
        if (tg_dtype_of(p.tensors[i]) == TG_F32 || tg_dtype_of(p.tensors[i]) == TG_F64) {
            dt = tg_dtype_of(p.tensors[i]);
            break;
        }
    if (!dev && p.n) dev = tg_device_of(p.tensors[0]);
    tg_named_free(&p);
    if (!dev) {
        tg_named b;
        if (tg_module_buffers(model, &b) != TG_OK) return NULL;
        if (b.n) dev = tg_device_of(b.tensors[0]);
        tg_named_free(&b);
    }
    if (!dev && !(dev = tg_device_get(NULL))) return NULL;
    return tg_ones(dt, shape, dev);
}

static tg_status check_args(const tg_module *model, tg_shape shape, const tg_summary_opts *o) {
    if (!model) return tg_error(TG_ERR_INVALID, "tg_summary: model is NULL");
    if (o->depth < 0) return tg_error(TG_ERR_INVALID, "tg_summary: depth %d is negative", o->depth);
    if (shape.ndim < 1 || shape.ndim > TG_MAX_DIMS)
        return tg_error(TG_ERR_SHAPE, "tg_summary: input shape has %d dimensions (1 to %d, batch first)", shape.ndim,
                        TG_MAX_DIMS);
    bool empty = false;
    char b[TG_MAX_DIMS * 24];
    int len = 0;
    for (int k = 0; k < shape.ndim; k++) {
        empty |= shape.dims[k] < 1;
        len += snprintf(b + len, sizeof b - (size_t)len, "%s%lld", k ? "," : "", (long long)shape.dims[k]);
    }
    return empty ? tg_error(TG_ERR_SHAPE, "tg_summary: input shape [%s] has a size below 1", b) : TG_OK;
}

/* Keeps the rows shown (leaves for depth 0, else depth <= depth) and fills the totals. */
static tg_status finish(tg_model_summary *s, tg_module *model, tg_tensor *x, int64_t macs) {
    tg_summary_totals *t = &s->totals;
    int kept = 0;
    for (int i = 0; i < s->n; i++) {
        tg_summary_row *r = &s->rows[i];
        if (r->leaf) t->activations += r->output_numel, t->activation_bytes += r->output_bytes;
        if (s->depth == 0 ? r->leaf : r->depth <= s->depth) s->rows[kept++] = *r;
        else free_row(r);
    }
    s->n = kept;
    t->total_params = tg_module_num_parameters(model, false);
    t->trainable_params = tg_module_num_parameters(model, true);
    t->frozen_params = t->total_params - t->trainable_params;
    t->mult_adds = macs;
    t->input_bytes = tg_numel(x) * (int64_t)tg_dtype_size(tg_dtype_of(x));
    tg_named p;
    if (tg_module_parameters(model, false, &p) != TG_OK) return tg_last_status();
    for (int i = 0; i < p.n; i++) t->param_bytes += tg_numel(p.tensors[i]) * (int64_t)tg_dtype_size(tg_dtype_of(p.tensors[i]));
    tg_named_free(&p);
    t->total_bytes = t->input_bytes + t->activation_bytes + t->param_bytes;
    return TG_OK;
}

/* The forward between arm and disarm, in a scope of its own, grad mode off. */
static tg_status run_forward(tg_model_summary *s, tg_module *model, tg_shape shape, const tg_summary_opts *o) {
    run_state st = { .s = s, .model = model };
    guard g = { 0 };
    bool grad = tg_set_grad_enabled(false), counting = tg_macs_enable(true);
    tg_scope_begin();
    tg_status rc = arm(&g, model, o->train, &st);
    tg_tensor *x = rc == TG_OK ? make_input(model, shape, o->device) : NULL;
    int64_t macs0 = tg_macs_read();
    tg_tensor *y = x ? tg_module_forward(model, x) : NULL;
    int64_t macs = tg_macs_read() - macs0;
    if (rc == TG_OK && !y) { /* the forward's message after "tg_summary: " (once) */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", tg_last_error());
        rc = tg_last_status() ? tg_last_status() : TG_ERR_INVALID;
        if (strncmp(msg, "tg_summary: ", 12)) tg_error(rc, "tg_summary: %s", msg);
    }
    disarm(&g);
    if (rc == TG_OK) rc = finish(s, model, x, macs);
    tg_scope_end();
    tg_macs_enable(counting);
    tg_set_grad_enabled(grad);
    return rc;
}

tg_model_summary *tg_summary(tg_module *model, tg_shape input_shape, const tg_summary_opts *opts) {
    TG_API_ENTER("tg_summary");
    tg_summary_opts o = opts ? *opts : (tg_summary_opts){ 0 };
    if (check_args(model, input_shape, &o) != TG_OK) return NULL;
    tg_model_summary *s = calloc(1, sizeof *s);
    if (!s) return tg_error_null(TG_ERR_NOMEM, "tg_summary: out of memory");
    s->depth = o.depth;
    if (run_forward(s, model, input_shape, &o) != TG_OK) goto fail;
    if (!o.quiet && tg_summary_fprint(o.file, s) != TG_OK) goto fail;
    return s;
fail:
    tg_model_summary_free(s);
    return NULL;
}

/* ------------------------------------------------------------- accessors */

int tg_summary_num_rows(const tg_model_summary *s) { return s ? s->n : 0; }

const tg_summary_row *tg_summary_row_at(const tg_model_summary *s, int i) {
    TG_API_ENTER("tg_summary_row_at");
    if (!s) return tg_error_null(TG_ERR_INVALID, "tg_summary_row_at: summary is NULL");
    if (i < 0 || i >= s->n)
        return tg_error_null(TG_ERR_INVALID, "tg_summary_row_at: row %d is out of range (%d rows)", i, s->n);
    return &s->rows[i];
}

const tg_summary_totals *tg_summary_totals_of(const tg_model_summary *s) {
    TG_API_ENTER("tg_summary_totals_of");
    return s ? &s->totals : tg_error_null(TG_ERR_INVALID, "tg_summary_totals_of: summary is NULL");
}

/* ------------------------------------------------------------- the table */

enum { W_NAME = 33, W_SHAPE = 20, W_PARAMS = 13, W_MACS = 16, W_BYTES = 13 };
#define W_ALL (W_NAME + W_SHAPE + W_PARAMS + W_MACS + W_BYTES + 4)

/* v with thousands separators: "138,357,544". */
static const char *commas(char *buf, size_t size, int64_t v) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v)), k = 0;
    if (v < 0 && size > 1) buf[k++] = '-';
    for (int i = 0; i < n && (size_t)k + 1 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

static void rule(FILE *f, char c) {
    for (int i = 0; i < W_ALL; i++) fputc(c, f);
    fputc('\n', f);
}

static void print_row(FILE *f, const tg_model_summary *s, const tg_summary_row *r) {
    char label[512], shape[160], p[40], pp[44], m[40], b[40];
    int indent = s->depth > 0 ? 2 * r->depth : 0;
    if (*r->name) snprintf(label, sizeof label, "%*s%s (%s)", indent, "", r->name, r->type);
    else snprintf(label, sizeof label, "%*s%s", indent, "", r->type);
    size_t len = strlen(label);
    if (len > W_NAME) memmove(label + 3, label + len - (W_NAME - 3), W_NAME - 2), memcpy(label, "...", 3);
    int k = snprintf(shape, sizeof shape, "[");
    for (int i = 0; i < r->output_shape.ndim; i++)
        k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%lld", i ? ", " : "", (long long)r->output_shape.dims[i]);
    snprintf(shape + k, sizeof shape - (size_t)k, "]");
    commas(p, sizeof p, r->params);
    if (r->params > 0 && r->trainable_params == 0) snprintf(pp, sizeof pp, "(%s)", p);
    else snprintf(pp, sizeof pp, "%s", p);
    fprintf(f, "%-*s %-*s %*s %*s %*s\n", W_NAME, label, W_SHAPE, shape, W_PARAMS, pp, W_MACS,
            commas(m, sizeof m, r->mult_adds), W_BYTES, commas(b, sizeof b, r->output_bytes));
}

tg_status tg_summary_fprint(FILE *f, const tg_model_summary *s) {
    TG_API_ENTER("tg_summary_fprint");
    if (!s) return tg_error(TG_ERR_INVALID, "tg_summary_fprint: summary is NULL");
    if (!f) f = stdout;
    const tg_summary_totals *t = &s->totals;
    char a[40], unit[32] = "";
    rule(f, '=');
    fprintf(f, "%-*s %-*s %*s %*s %*s\n", W_NAME, "Layer (type)", W_SHAPE, "Output shape", W_PARAMS, "Param #",
            W_MACS, "Mult-adds", W_BYTES, "Output bytes");
    rule(f, '=');
    for (int i = 0; i < s->n; i++) print_row(f, s, &s->rows[i]);
    rule(f, '=');
    fprintf(f, "Total params: %s\n", commas(a, sizeof a, t->total_params));
    fprintf(f, "Trainable params: %s\n", commas(a, sizeof a, t->trainable_params));
    fprintf(f, "Non-trainable params: %s\n", commas(a, sizeof a, t->frozen_params));
    static const char *const units[] = { "K", "M", "G", "T", "P" };
    double v = (double)t->mult_adds;
    for (int u = 4; u >= 0; u--) {
        double scale = 1e3;
        for (int k = 0; k < u; k++) scale *= 1e3;
        if (v >= scale) {
            snprintf(unit, sizeof unit, " (%.2f %s)", v / scale, units[u]);
            break;
        }
    }
    fprintf(f, "Total mult-adds: %s%s\n", commas(a, sizeof a, t->mult_adds), unit);
    rule(f, '-');
    fprintf(f, "Input size (MB): %.2f\n", (double)t->input_bytes / 1e6);
    fprintf(f, "Forward pass size (MB): %.2f\n", (double)t->activation_bytes / 1e6);
    fprintf(f, "Params size (MB): %.2f\n", (double)t->param_bytes / 1e6);
    fprintf(f, "Estimated total size (MB): %.2f\n", (double)t->total_bytes / 1e6);
    rule(f, '=');
    return ferror(f) ? tg_error(TG_ERR_IO, "tg_summary_fprint: writing the table failed") : TG_OK;
}
