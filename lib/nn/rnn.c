/* RNN, LSTM and GRU: the cells and the multi-layer, bidirectional layers over a
 * sequence, composed of public ops with PyTorch's equations, gate order and weight
 * layouts (include/tapegrad/rnn.h). No kernels and no backward rules of their own. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/graph/error.h"
#include "tapegrad.h"

typedef enum { K_RNN_TANH, K_RNN_RELU, K_LSTM, K_GRU } kind;
static const char *const k_api[] = { "tg_rnn", "tg_rnn", "tg_lstm", "tg_gru" };
static const char *const k_cell_api[] = { "tg_rnn_cell", "tg_rnn_cell", "tg_lstm_cell", "tg_gru_cell" };
static int gates_of(kind k) { return k == K_LSTM ? 4 : k == K_GRU ? 3 : 1; }

/* ------------------------------------------------------------------ chunk
 * n equal pieces of x along axis (its size a multiple of n) into out[0..n), as views
 * recorded by tg_chunk as one node: backward makes one gradient of x's size, not n
 * (slicing L time steps out of the input projection one by one would be quadratic). */
static int chunk(tg_tensor *x, int axis, int64_t n, tg_tensor **out) {
    if (!x) return -1;
    if (n == 1) return (out[0] = x) ? 0 : -1;
    return tg_chunk(x, n, axis, out) == n ? 0 : -1;
}

/* ------------------------------------------------------------------ one step */

/* One time step. gi (N, G*H) is the input projection with the biases that can be folded
 * in (b_ih + b_hh for RNN and LSTM, b_ih for GRU); whh_t is W_hh^T (H, G*H); b_hh is the
 * GRU's (G*H) or NULL. h NULL means zeros (RNN, LSTM: the matmul is skipped); c NULL
 * means zeros. Returns h' and, for the LSTM, c' in *c_out. Ops per step: RNN 3; LSTM 2
 * (matmul, the fused cell); GRU 14. */
static tg_tensor *step(kind k, tg_tensor *gi, tg_tensor *h, tg_tensor *c, tg_tensor *whh_t, tg_tensor *b_hh,
                       tg_tensor **c_out) {
    tg_tensor *gh = h ? tg_matmul(h, whh_t) : NULL;
    if (h && !gh) return NULL;
    switch (k) {
    case K_RNN_TANH: return tg_tanh(gh ? tg_add(gi, gh) : gi);
    case K_RNN_RELU: return tg_relu(gh ? tg_add(gi, gh) : gi);
    case K_LSTM: {
        tg_tensor *h2 = NULL; /* the cell sums gi and gh itself */
        if (!c) c = tg_zeros(tg_dtype_of(gi), TG_SHAPE(tg_size(gi, 0), tg_size(gi, 1) / 4), tg_device_of(gi));
        return c && tg_lstm_pointwise(gi, gh, c, &h2, c_out) == TG_OK ? h2 : NULL;
    }
    case K_GRU: {
        if (b_hh) gh = tg_add(gh, b_hh);
        tg_tensor *a[3], *b[3];
        if (chunk(gi, 1, 3, a) < 0 || chunk(gh, 1, 3, b) < 0) return NULL;
        tg_tensor *r = tg_sigmoid(tg_add(a[0], b[0])), *z = tg_sigmoid(tg_add(a[1], b[1]));
        tg_tensor *n = tg_tanh(tg_add(a[2], tg_mul(r, b[2])));
        return tg_add(n, tg_mul(z, tg_sub(h, n)));
    }
    }
    return NULL;
}

/* ------------------------------------------------------------------ checks */

static void shape_str(char *buf, size_t n, const tg_tensor *t) {
    int len = snprintf(buf, n, "[");
    for (int i = 0; i < tg_ndim(t) && len < (int)n; i++)
        len += snprintf(buf + len, n - (size_t)len, "%s%lld", i ? "," : "", (long long)tg_size(t, i));
    if (len < (int)n) snprintf(buf + len, n - (size_t)len, "]");
}

static bool present(const char *api, const char *what, const tg_tensor *t) {
    if (t) return true;
    if (tg_last_status() == TG_OK) tg_error(TG_ERR_INVALID, "%s: %s is NULL", api, what);
    return false;
}

/* t has exactly the dims given (ndim of them); else a message naming it. */
static bool has_shape(const char *api, const char *what, const tg_tensor *t, int ndim, const int64_t *dims) {
    bool ok = tg_ndim(t) == ndim;
    for (int i = 0; i < ndim && ok; i++) ok = tg_size(t, i) == dims[i];
    if (ok) return true;
    char got[96], want[96] = "[";
    shape_str(got, sizeof got, t);
    for (int i = 0, len = 1; i < ndim; i++)
        len += snprintf(want + len, sizeof want - (size_t)len, "%s%lld", i ? "," : "", (long long)dims[i]);
    strncat(want, "]", sizeof want - strlen(want) - 1);
    tg_error(TG_ERR_SHAPE, "%s: %s has shape %s, expected %s", api, what, got, want);
    return false;
}

/* t has ref's dtype and device; else a message naming both. */
static bool same_kind(const char *api, const char *what, const tg_tensor *t, const tg_tensor *ref) {
    if (!t || tg_dtype_of(t) == tg_dtype_of(ref)) {
        if (!t || tg_device_of(t) == tg_device_of(ref)) return true;
        return tg_error(TG_ERR_DEVICE, "%s: %s is on %s but the input is on %s", api, what,
                        tg_device_name(tg_device_of(t)), tg_device_name(tg_device_of(ref))), false;
    }
    return tg_error(TG_ERR_DTYPE, "%s: %s is %s but the input is %s", api, what, tg_dtype_name(tg_dtype_of(t)),
                    tg_dtype_name(tg_dtype_of(ref))), false;
}

/* w_hh (G*H, H): the hidden size, or -1 with a message. */
static int64_t hidden_of(const char *api, const char *what, const tg_tensor *w_hh, int gates) {
    if (!present(api, what, w_hh)) return -1;
    int64_t h = tg_ndim(w_hh) == 2 ? tg_size(w_hh, 1) : 0;
    if (tg_ndim(w_hh) == 2 && h > 0 && tg_size(w_hh, 0) == gates * h) return h;
    char got[96];
    shape_str(got, sizeof got, w_hh);
    tg_error(TG_ERR_SHAPE, "%s: %s has shape %s, expected (%d*hidden_size, hidden_size)", api, what, got, gates);
    return -1;
}

/* ------------------------------------------------------------------ cells */

/* The shared body of the three cells: checks, the unbatched form, one step. */
static tg_tensor *cell(kind k, tg_tensor *x, tg_tensor *h, tg_tensor *c, tg_tensor *w_ih, tg_tensor *w_hh,
                       tg_tensor *b_ih, tg_tensor *b_hh, tg_tensor **c_out) {
    const char *api = k_cell_api[k];
    int G = gates_of(k);
    if (c_out) *c_out = NULL;
    if (!present(api, "x", x) || !present(api, "w_ih", w_ih)) return NULL;
    int64_t H = hidden_of(api, "w_hh", w_hh, G);
    if (H < 0) return NULL;
    if (tg_ndim(x) != 1 && tg_ndim(x) != 2) {
        char got[96];
        shape_str(got, sizeof got, x);
        return tg_error_null(TG_ERR_SHAPE, "%s: x must be (N, input_size) or (input_size), got %s", api, got);
    }
    bool unbatched = tg_ndim(x) == 1;
    int64_t I = tg_size(x, -1), N = unbatched ? 1 : tg_size(x, 0);
    if (!has_shape(api, "w_ih", w_ih, 2, (int64_t[]){ G * H, I })) return NULL;
    int64_t gh = G * H, st[2] = { N, H };
    if ((b_ih && !has_shape(api, "b_ih", b_ih, 1, &gh)) || (b_hh && !has_shape(api, "b_hh", b_hh, 1, &gh)) ||
        (h && !has_shape(api, "h", h, unbatched ? 1 : 2, unbatched ? st + 1 : st)) ||
        (c && !has_shape(api, "c", c, unbatched ? 1 : 2, unbatched ? st + 1 : st)))
        return NULL;
    const char *names[6] = { "h", "c", "w_ih", "w_hh", "b_ih", "b_hh" };
    tg_tensor *others[6] = { h, c, w_ih, w_hh, b_ih, b_hh };
    for (int i = 0; i < 6; i++)
        if (!same_kind(api, names[i], others[i], x)) return NULL;
    tg_scope_begin();
    if (unbatched) x = tg_unsqueeze(x, 0), h = h ? tg_unsqueeze(h, 0) : NULL, c = c ? tg_unsqueeze(c, 0) : NULL;
    if (k == K_GRU && !h) h = tg_zeros(tg_dtype_of(x), TG_SHAPE(N, H), tg_device_of(x));
    tg_tensor *bias = k == K_GRU ? b_ih : b_ih && b_hh ? tg_add(b_ih, b_hh) : b_ih ? b_ih : b_hh;
    tg_tensor *gi = tg_matmul(x, tg_transpose(w_ih, 0, 1)), *c2 = NULL;
    if (bias) gi = tg_add(gi, bias);
    tg_tensor *h2 = step(k, gi, h, c, tg_transpose(w_hh, 0, 1), k == K_GRU ? b_hh : NULL, &c2);
    if (unbatched) h2 = tg_squeeze(h2, 0), c2 = c2 ? tg_squeeze(c2, 0) : NULL;
    bool ok = h2 && (k != K_LSTM || c2);
    tg_keep(h2), tg_keep(c2);
    tg_scope_end();
    if (!ok) return NULL;
    if (c_out) *c_out = c2;
    return h2;
}

tg_tensor *tg_rnn_cell(tg_tensor *x, tg_tensor *h, tg_tensor *w_ih, tg_tensor *w_hh, tg_tensor *b_ih,
                       tg_tensor *b_hh, tg_rnn_nonlinearity nonlinearity) {
    TG_API_ENTER("tg_rnn_cell");
    if (nonlinearity != TG_RNN_TANH && nonlinearity != TG_RNN_RELU)
        return tg_error_null(TG_ERR_INVALID, "tg_rnn_cell: nonlinearity must be TG_RNN_TANH or TG_RNN_RELU, got %d",
                             (int)nonlinearity);
    return cell(nonlinearity == TG_RNN_RELU ? K_RNN_RELU : K_RNN_TANH, x, h, NULL, w_ih, w_hh, b_ih, b_hh, NULL);
}

tg_tensor *tg_lstm_cell(tg_tensor *x, tg_tensor *h, tg_tensor *c, tg_tensor *w_ih, tg_tensor *w_hh,
                        tg_tensor *b_ih, tg_tensor *b_hh, tg_tensor **c_out) {
    TG_API_ENTER("tg_lstm_cell");
    return cell(K_LSTM, x, h, c, w_ih, w_hh, b_ih, b_hh, c_out);
}

tg_tensor *tg_gru_cell(tg_tensor *x, tg_tensor *h, tg_tensor *w_ih, tg_tensor *w_hh, tg_tensor *b_ih,
                       tg_tensor *b_hh) {
    TG_API_ENTER("tg_gru_cell");
    return cell(K_GRU, x, h, NULL, w_ih, w_hh, b_ih, b_hh, NULL);
}

/* ------------------------------------------------------------------ names and shapes */

static bool opts_ok(const char *api, const tg_rnn_opts *o) {
    if (o->num_layers < 0)
        return tg_error(TG_ERR_INVALID, "%s: num_layers must be at least 1, got %d", api, o->num_layers), false;
    if (!(o->dropout >= 0 && o->dropout <= 1))
        return tg_error(TG_ERR_INVALID, "%s: dropout must be in [0, 1], got %g", api, o->dropout), false;
    if (o->nonlinearity != TG_RNN_TANH && o->nonlinearity != TG_RNN_RELU)
        return tg_error(TG_ERR_INVALID, "%s: nonlinearity must be TG_RNN_TANH or TG_RNN_RELU, got %d", api,
                        (int)o->nonlinearity), false;
    return true;
}

static tg_rnn_opts opts_of(const tg_rnn_opts *opts) {
    tg_rnn_opts o = opts ? *opts : (tg_rnn_opts){ 0 };
    if (o.num_layers == 0) o.num_layers = 1;
    return o;
}

static const char *const k_wname[4] = { "weight_ih", "weight_hh", "bias_ih", "bias_hh" };

static void weight_name(char *buf, size_t n, int per, int index, bool bidir) {
    int D = bidir ? 2 : 1, slot = index % per, dir = index / per % D, layer = index / per / D;
    snprintf(buf, n, "%s_l%d%s", k_wname[slot], layer, dir ? "_reverse" : "");
}

int tg_rnn_num_weights(bool bias, const tg_rnn_opts *opts) {
    TG_API_ENTER("tg_rnn_num_weights");
    tg_rnn_opts o = opts_of(opts);
    if (!opts_ok("tg_rnn_num_weights", &o)) return -1;
    return (bias ? 4 : 2) * o.num_layers * (o.bidirectional ? 2 : 1);
}

tg_status tg_rnn_weight_info(tg_rnn_mode mode, int64_t input_size, int64_t hidden_size, bool bias,
                             const tg_rnn_opts *opts, int index, tg_rnn_weight_desc *out) {
    TG_API_ENTER("tg_rnn_weight_info");
    tg_rnn_opts o = opts_of(opts);
    if (!opts_ok("tg_rnn_weight_info", &o)) return tg_last_status();
    if (mode < TG_RNN_MODE_RNN || mode > TG_RNN_MODE_GRU || input_size <= 0 || hidden_size <= 0 || !out)
        return tg_error(TG_ERR_INVALID, "tg_rnn_weight_info: mode %d, input_size %lld, hidden_size %lld%s: expected a "
                        "TG_RNN_MODE_*, positive sizes and an output", (int)mode, (long long)input_size,
                        (long long)hidden_size, out ? "" : ", out NULL");
    int per = bias ? 4 : 2, D = o.bidirectional ? 2 : 1, n = per * o.num_layers * D;
    if (index < 0 || index >= n)
        return tg_error(TG_ERR_INVALID, "tg_rnn_weight_info: index %d is out of range for %d weights", index, n);
    int G = mode == TG_RNN_MODE_LSTM ? 4 : mode == TG_RNN_MODE_GRU ? 3 : 1, slot = index % per;
    memset(out, 0, sizeof *out);
    weight_name(out->name, sizeof out->name, per, index, o.bidirectional);
    out->direction = index / per % D;
    out->layer = index / per / D;
    int64_t in = out->layer == 0 ? input_size : D * hidden_size;
    out->shape = slot == 0 ? TG_SHAPE(G * hidden_size, in)
                 : slot == 1 ? TG_SHAPE(G * hidden_size, hidden_size)
                             : TG_SHAPE(G * hidden_size);
    return TG_OK;
}

/* ------------------------------------------------------------------ layers */

typedef struct {
    kind k;
    const char *api;
    int G, L, D, per;       /* gates, layers, directions, weights per layer-direction */
    int64_t T, N, I, H;     /* steps, batch, input size, hidden size */
    bool batch_first;
} stack;

/* Every weight's presence and shape, the input width and the states' shapes. */
static bool check_layers(stack *s, tg_tensor *input, tg_tensor *h0, tg_tensor *c0, int nw, tg_tensor *const *w) {
    char name[32], got[96];
    int full = 4 * s->L * s->D;
    if (nw != full && nw != full / 2)
        return tg_error(TG_ERR_INVALID, "%s: got %d weights; %d layer%s%s take %d (w_ih, w_hh, b_ih, b_hh for each "
                        "layer and direction) or %d without biases", s->api, nw, s->L, s->L > 1 ? "s" : "",
                        s->D == 2 ? ", bidirectional," : "", full, full / 2), false;
    if (!w) return tg_error(TG_ERR_INVALID, "%s: weights is NULL", s->api), false;
    s->per = nw == full ? 4 : 2;
    for (int i = 0; i < nw; i++) {
        weight_name(name, sizeof name, s->per, i, s->D == 2);
        if (!present(s->api, name, w[i])) return false;
    }
    if ((s->H = hidden_of(s->api, "weight_hh_l0", w[1], s->G)) < 0) return false;
    int64_t GH = s->G * s->H, in0 = tg_size(w[0], -1);
    if (tg_ndim(w[0]) != 2 || tg_size(w[0], 0) != GH) {
        shape_str(got, sizeof got, w[0]);
        return tg_error(TG_ERR_SHAPE, "%s: weight_ih_l0 has shape %s, expected (%lld, input_size)", s->api, got,
                        (long long)GH), false;
    }
    if (tg_ndim(input) != 2 && tg_ndim(input) != 3) {
        shape_str(got, sizeof got, input);
        return tg_error(TG_ERR_SHAPE, "%s: input must be (L, N, input_size), (N, L, input_size) with batch_first "
                        "or (L, input_size), got %s", s->api, got), false;
    }
    bool unbatched = tg_ndim(input) == 2;
    s->I = tg_size(input, -1);
    s->T = tg_size(input, unbatched || !s->batch_first ? 0 : 1);
    s->N = unbatched ? 1 : tg_size(input, s->batch_first ? 0 : 1);
    if (s->I != in0) {
        shape_str(got, sizeof got, w[0]);
        return tg_error(TG_ERR_SHAPE, "%s: input has %lld features but weight_ih_l0 %s expects %lld", s->api,
                        (long long)s->I, got, (long long)in0), false;
    }
    for (int i = 0; i < nw; i++) {
        int slot = i % s->per, layer = i / s->per / s->D;
        int64_t dims[2] = { GH, slot == 0 ? (layer ? s->D * s->H : s->I) : s->H };
        weight_name(name, sizeof name, s->per, i, s->D == 2);
        if (!has_shape(s->api, name, w[i], slot < 2 ? 2 : 1, dims) || !same_kind(s->api, name, w[i], input))
            return false;
    }
    int64_t st[3] = { s->L * s->D, s->N, s->H }, st1[2] = { s->L * s->D, s->H };
    if ((h0 && !has_shape(s->api, "h0", h0, unbatched ? 2 : 3, unbatched ? st1 : st)) ||
        (c0 && !has_shape(s->api, "c0", c0, unbatched ? 2 : 3, unbatched ? st1 : st)) ||
        !same_kind(s->api, "h0", h0, input) || !same_kind(s->api, "c0", c0, input))
        return false;
    if (s->T == 0) return tg_error(TG_ERR_SHAPE, "%s: the input has no time steps", s->api), false;
    return true;
}

/* One layer-direction over the whole sequence: x2 is the layer's input as (T*N, In)
 * (time-major) or (N*T, In) (batch-first). Writes the T outputs to hs[] in time order and
 * the final state to *h_last (and *c_last). Step temporaries die with each step. */
static bool run_direction(const stack *s, tg_tensor *x2, tg_tensor *const *w, bool reverse, tg_tensor *h,
                          tg_tensor *c, tg_tensor **hs, tg_tensor **h_last, tg_tensor **c_last) {
    tg_tensor *b_ih = s->per == 4 ? w[2] : NULL, *b_hh = s->per == 4 ? w[3] : NULL;
    tg_tensor *bias = s->k == K_GRU ? b_ih : b_ih ? tg_add(b_ih, b_hh) : NULL;
    tg_tensor *gi = tg_matmul(x2, tg_transpose(w[0], 0, 1)); /* one GEMM for every step */
    if (bias) gi = tg_add(gi, bias);
    tg_tensor **steps = malloc((size_t)s->T * sizeof *steps);
    if (!steps) return tg_error(TG_ERR_NOMEM, "%s: out of host memory", s->api), false;
    int64_t GH = s->G * s->H;
    bool ok = chunk(s->batch_first ? tg_reshape(gi, TG_SHAPE(s->N, s->T * GH)) : gi, s->batch_first ? 1 : 0, s->T,
                    steps) == 0;
    tg_tensor *whh_t = tg_transpose(w[1], 0, 1);
    if (s->k == K_GRU && !h) h = tg_zeros(tg_dtype_of(x2), TG_SHAPE(s->N, s->H), tg_device_of(x2));
    for (int64_t j = 0; j < s->T && ok; j++) {
        int64_t t = reverse ? s->T - 1 - j : j;
        tg_tensor *c2 = NULL;
        tg_scope_begin();
        tg_tensor *h2 = step(s->k, steps[t], h, c, whh_t, s->k == K_GRU ? b_hh : NULL, &c2);
        ok = h2 && (s->k != K_LSTM || c2);
        tg_keep(h2), tg_keep(c2);
        tg_scope_end();
        hs[t] = h = h2, c = c2;
    }
    free(steps);
    *h_last = h, *c_last = c;
    return ok;
}

/* Dropout between layers: x * bernoulli(1 - p) / (1 - p), as F.dropout in training. */
static tg_tensor *dropout(tg_tensor *x, double p) {
    if (p >= 1) return tg_mul_scalar(x, 0.0);
    tg_tensor *keep = tg_bernoulli(tg_dtype_of(x), tg_shape_of(x), 1 - p, tg_device_of(x));
    return tg_mul(x, tg_mul_scalar(keep, 1 / (1 - p)));
}

static tg_tensor *layers(kind k, tg_tensor *input, tg_tensor *h0, tg_tensor *c0, int nw, tg_tensor *const *w,
                         const tg_rnn_opts *opts, tg_tensor **h_n, tg_tensor **c_n) {
    stack s = { .k = k, .api = k_api[k], .G = gates_of(k) };
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    tg_rnn_opts o = opts_of(opts);
    if (!opts_ok(s.api, &o) || !present(s.api, "input", input)) return NULL;
    s.L = o.num_layers, s.D = o.bidirectional ? 2 : 1, s.batch_first = o.batch_first;
    if (!check_layers(&s, input, h0, c0, nw, w)) return NULL;
    bool unbatched = tg_ndim(input) == 2;
    if (unbatched) s.batch_first = false;
    int LD = s.L * s.D;
    tg_tensor **buf = malloc((size_t)(s.D * s.T + 4 * LD) * sizeof *buf);
    if (!buf) return tg_error_null(TG_ERR_NOMEM, "%s: out of host memory", s.api);
    tg_tensor **hs = buf, **h_init = hs + s.D * s.T, **c_init = h_init + LD, **h_fin = c_init + LD,
              **c_fin = h_fin + LD;
    memset(buf, 0, (size_t)(s.D * s.T + 4 * LD) * sizeof *buf);
    tg_scope_begin();
    tg_tensor *x = unbatched ? tg_unsqueeze(input, 1) : input, *y = NULL;
    bool ok = (!h0 || chunk(tg_reshape(h0, TG_SHAPE(LD * s.N, s.H)), 0, LD, h_init) == 0) &&
              (!c0 || k != K_LSTM || chunk(tg_reshape(c0, TG_SHAPE(LD * s.N, s.H)), 0, LD, c_init) == 0);
    for (int l = 0; l < s.L && ok; l++) {
        tg_scope_begin();
        tg_tensor *x2 = tg_reshape(x, TG_SHAPE(s.N * s.T, tg_size(x, -1))), *yd[2];
        for (int d = 0; d < s.D && ok; d++) {
            int i = l * s.D + d;
            ok = run_direction(&s, x2, w + i * s.per, d == 1, h_init[i], c_init[i], hs + d * s.T, &h_fin[i],
                               &c_fin[i]);
            /* (T, N, H) or (N, T, H): the steps joined along T*N rows or N, T*H columns */
            yd[d] = ok ? tg_reshape(tg_cat((int)s.T, hs + d * s.T, s.batch_first ? 1 : 0),
                                    s.batch_first ? TG_SHAPE(s.N, s.T, s.H) : TG_SHAPE(s.T, s.N, s.H))
                       : NULL;
        }
        y = ok ? (s.D == 1 ? yd[0] : tg_cat(2, yd, 2)) : NULL;
        if (y && o.training && o.dropout > 0 && l + 1 < s.L) y = dropout(y, o.dropout);
        ok = ok && y;
        tg_keep(y);
        for (int d = 0; d < s.D; d++) tg_keep(h_fin[l * s.D + d]), tg_keep(c_fin[l * s.D + d]);
        tg_scope_end();
        x = y;
    }
    tg_shape st = TG_SHAPE(LD, s.N, s.H);
    tg_tensor *hn = ok && h_n ? tg_reshape(tg_cat((int)LD, h_fin, 0), st) : NULL;
    tg_tensor *cn = ok && k == K_LSTM && c_n ? tg_reshape(tg_cat((int)LD, c_fin, 0), st) : NULL;
    if (unbatched) y = tg_squeeze(y, 1), hn = tg_squeeze(hn, 1), cn = tg_squeeze(cn, 1);
    ok = ok && y && (!h_n || hn) && (!c_n || k != K_LSTM || cn);
    tg_keep(y), tg_keep(hn), tg_keep(cn);
    tg_scope_end();
    free(buf);
    if (!ok) return NULL;
    if (h_n) *h_n = hn;
    if (c_n) *c_n = cn;
    return y;
}

tg_tensor *tg_rnn(tg_tensor *input, tg_tensor *h0, int n_weights, tg_tensor *const *weights,
                  const tg_rnn_opts *opts, tg_tensor **h_n) {
    TG_API_ENTER("tg_rnn");
    kind k = opts && opts->nonlinearity == TG_RNN_RELU ? K_RNN_RELU : K_RNN_TANH;
    return layers(k, input, h0, NULL, n_weights, weights, opts, h_n, NULL);
}

tg_tensor *tg_lstm(tg_tensor *input, tg_tensor *h0, tg_tensor *c0, int n_weights, tg_tensor *const *weights,
                   const tg_rnn_opts *opts, tg_tensor **h_n, tg_tensor **c_n) {
    TG_API_ENTER("tg_lstm");
    return layers(K_LSTM, input, h0, c0, n_weights, weights, opts, h_n, c_n);
}

tg_tensor *tg_gru(tg_tensor *input, tg_tensor *h0, int n_weights, tg_tensor *const *weights,
                  const tg_rnn_opts *opts, tg_tensor **h_n) {
    TG_API_ENTER("tg_gru");
    return layers(K_GRU, input, h0, NULL, n_weights, weights, opts, h_n, NULL);
}
