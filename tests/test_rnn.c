/* RNN, LSTM and GRU (tapegrad/rnn.h) against f64 loops written here from PyTorch's
 * equations: every cell and every layer configuration (1 and 2 layers, bidirectional,
 * batch_first, with and without biases, with and without initial states, unbatched,
 * sequences past 32 steps), gradients by gradcheck (cells, a 2-layer bidirectional LSTM
 * and GRU) and second order on a cell, dropout between layers against a mask drawn from
 * the same seed, PyTorch's parameter names and shapes, every error message, memory over a
 * long sequence, and (where /usr/bin/python3 has torch) torch.nn.LSTM/GRU/RNN given the
 * same weights. */
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "harness.h"

static tg_device *dev(void) { return tg_test_device(); }

static bool has_fp64(void) {
    tg_device_info info;
    return tg_device_get_info(dev(), &info) == TG_OK && info.fp64;
}
#define NEED_FP64()                                                            \
    do {                                                                       \
        if (!has_fp64()) SKIP("%s has no fp64", tg_device_name(dev()));        \
    } while (0)

/* ------------------------------------------------------------------ host data */

static uint64_t g_rng = 12345;
static double urand(void) { /* U(-0.8, 0.8), deterministic */
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(g_rng >> 11) / 9007199254740992.0 - 0.5) * 1.6;
}

#define MAXW 64
typedef struct { /* a host array and its tensor */
    double *v;
    int64_t n;
    tg_tensor *t;
} arr;

static arr mk(tg_shape s) {
    arr a = { .n = 1 };
    for (int i = 0; i < s.ndim; i++) a.n *= s.dims[i];
    a.v = malloc((size_t)(a.n ? a.n : 1) * sizeof(double));
    for (int64_t i = 0; i < a.n; i++) a.v[i] = urand();
    a.t = tg_from_f64(a.v, s, dev());
    return a;
}

static double sig(double x) { return 1 / (1 + exp(-x)); }

typedef enum { R_TANH, R_RELU, R_LSTM, R_GRU } rkind;
static int gates(rkind k) { return k == R_LSTM ? 4 : k == R_GRU ? 3 : 1; }

/* One step of PyTorch's cell for every batch row; h, c may be NULL (zeros), biases too. */
static void ref_step(rkind k, int64_t N, int64_t In, int64_t H, const double *x, const double *h, const double *c,
                     const double *wih, const double *whh, const double *bih, const double *bhh, double *h2,
                     double *c2) {
    int64_t G = gates(k);
    double gi[64], gh[64];
    for (int64_t n = 0; n < N; n++) {
        for (int64_t r = 0; r < G * H; r++) {
            gi[r] = bih ? bih[r] : 0, gh[r] = bhh ? bhh[r] : 0;
            for (int64_t q = 0; q < In; q++) gi[r] += wih[r * In + q] * x[n * In + q];
            for (int64_t q = 0; q < H && h; q++) gh[r] += whh[r * H + q] * h[n * H + q];
        }
        for (int64_t j = 0; j < H; j++) {
            double hp = h ? h[n * H + j] : 0, cp = c ? c[n * H + j] : 0, *out = &h2[n * H + j];
            if (k == R_TANH) *out = tanh(gi[j] + gh[j]);
            if (k == R_RELU) *out = fmax(0, gi[j] + gh[j]);
            if (k == R_LSTM) {
                double i = sig(gi[j] + gh[j]), f = sig(gi[H + j] + gh[H + j]);
                double g = tanh(gi[2 * H + j] + gh[2 * H + j]), o = sig(gi[3 * H + j] + gh[3 * H + j]);
                c2[n * H + j] = f * cp + i * g;
                *out = o * tanh(c2[n * H + j]);
            }
            if (k == R_GRU) {
                double r = sig(gi[j] + gh[j]), z = sig(gi[H + j] + gh[H + j]);
                double nn = tanh(gi[2 * H + j] + r * gh[2 * H + j]);
                *out = (1 - z) * nn + z * hp;
            }
        }
    }
}

typedef struct {
    rkind k;
    int L, D;
    int64_t T, N, I, H;
    bool bf, bias, init, unbatched;
} cfg;

/* The whole stack on the host: x in the input layout, y in the output layout, h0/c0
 * (L*D, N, H) or NULL, hn/cn out. w[] in PyTorch's order. */
static void ref_layers(const cfg *g, const double *x, const double *h0, const double *c0, double *const *w,
                       double *y, double *hn, double *cn) {
    int per = g->bias ? 4 : 2;
    int64_t T = g->T, N = g->N, H = g->H, DH = g->D * H, In = g->I;
    double *in = malloc((size_t)(T * N * (In > DH ? In : DH)) * sizeof *in), *out = malloc((size_t)(T * N * DH) * sizeof *out);
    for (int64_t t = 0; t < T; t++) /* to time-major */
        for (int64_t n = 0; n < N; n++)
            for (int64_t q = 0; q < In; q++) in[(t * N + n) * In + q] = x[(g->bf ? n * T + t : t * N + n) * In + q];
    double xt[64 * 8], h[64 * 8], c[64 * 8], h2[64 * 8], c2[64 * 8];
    for (int l = 0; l < g->L; l++) {
        int64_t inl = l ? DH : In;
        for (int d = 0; d < g->D; d++) {
            int i = l * g->D + d;
            double *const *wd = w + i * per;
            for (int64_t q = 0; q < N * H; q++) h[q] = h0 ? h0[i * N * H + q] : 0, c[q] = c0 ? c0[i * N * H + q] : 0;
            for (int64_t s = 0; s < T; s++) {
                int64_t t = d ? T - 1 - s : s;
                memcpy(xt, in + t * N * inl, (size_t)(N * inl) * sizeof *xt);
                ref_step(g->k, N, inl, H, xt, h, c, wd[0], wd[1], per == 4 ? wd[2] : NULL, per == 4 ? wd[3] : NULL, h2, c2);
                memcpy(h, h2, (size_t)(N * H) * sizeof *h);
                if (g->k == R_LSTM) memcpy(c, c2, (size_t)(N * H) * sizeof *c);
                for (int64_t n = 0; n < N; n++)
                    for (int64_t j = 0; j < H; j++) out[(t * N + n) * DH + d * H + j] = h[n * H + j];
            }
            memcpy(hn + i * N * H, h, (size_t)(N * H) * sizeof *h);
            if (cn) memcpy(cn + i * N * H, c, (size_t)(N * H) * sizeof *c);
        }
        memcpy(in, out, (size_t)(T * N * DH) * sizeof *in);
    }
    for (int64_t t = 0; t < T; t++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t q = 0; q < DH; q++) y[(g->bf ? n * T + t : t * N + n) * DH + q] = out[(t * N + n) * DH + q];
    free(in), free(out);
}

/* Largest |a - t| over t's elements. */
static double maxdiff(const double *a, tg_tensor *t, int64_t n) {
    if (!t || tg_numel(t) != n) return INFINITY;
    double *v = tg_test_values(t), m = 0;
    for (int64_t i = 0; i < n && v; i++) m = fmax(m, fabs(v[i] - a[i]));
    free(v);
    return v ? m : INFINITY;
}

static tg_tensor *run_tg(rkind k, tg_tensor *x, tg_tensor *h0, tg_tensor *c0, int nw, tg_tensor *const *w,
                         const tg_rnn_opts *o, tg_tensor **hn, tg_tensor **cn) {
    if (k == R_LSTM) return tg_lstm(x, h0, c0, nw, w, o, hn, cn);
    if (cn) *cn = NULL;
    return k == R_GRU ? tg_gru(x, h0, nw, w, o, hn) : tg_rnn(x, h0, nw, w, o, hn);
}

/* Weights for g as host arrays and tensors, in PyTorch's order; returns the count. */
static int make_weights(const cfg *g, arr *w) {
    tg_rnn_opts o = { .num_layers = g->L, .bidirectional = g->D == 2 };
    int nw = tg_rnn_num_weights(g->bias, &o);
    tg_rnn_mode m = g->k == R_LSTM ? TG_RNN_MODE_LSTM : g->k == R_GRU ? TG_RNN_MODE_GRU : TG_RNN_MODE_RNN;
    for (int i = 0; i < nw; i++) {
        tg_rnn_weight_desc d;
        if (tg_rnn_weight_info(m, g->I, g->H, g->bias, &o, i, &d) != TG_OK) return -1;
        w[i] = mk(d.shape);
    }
    return nw;
}

/* Runs g through tapegrad and the reference; the largest difference of y, h_n, c_n. */
static double compare_cfg(const cfg *g) {
    arr w[MAXW];
    int nw = make_weights(g, w);
    int64_t LD = g->L * g->D, DH = g->D * g->H;
    arr x = g->unbatched ? mk(TG_SHAPE(g->T, g->I)) : g->bf ? mk(TG_SHAPE(g->N, g->T, g->I)) : mk(TG_SHAPE(g->T, g->N, g->I));
    arr h0 = { 0 }, c0 = { 0 };
    if (g->init) {
        h0 = g->unbatched ? mk(TG_SHAPE(LD, g->H)) : mk(TG_SHAPE(LD, g->N, g->H));
        c0 = g->unbatched ? mk(TG_SHAPE(LD, g->H)) : mk(TG_SHAPE(LD, g->N, g->H));
    }
    double *wv[MAXW], *y = malloc((size_t)(g->T * g->N * DH) * sizeof *y);
    double hn[256], cn[256];
    for (int i = 0; i < nw; i++) wv[i] = w[i].v;
    ref_layers(g, x.v, h0.v, c0.v, wv, y, hn, g->k == R_LSTM ? cn : NULL);
    tg_tensor *wt[MAXW], *thn, *tcn;
    for (int i = 0; i < nw; i++) wt[i] = w[i].t;
    tg_rnn_opts o = { .num_layers = g->L, .bidirectional = g->D == 2, .batch_first = g->bf,
                      .nonlinearity = g->k == R_RELU ? TG_RNN_RELU : TG_RNN_TANH };
    tg_tensor *ty = run_tg(g->k, x.t, h0.t, c0.t, nw, wt, &o, &thn, g->k == R_LSTM ? &tcn : NULL);
    double m = maxdiff(y, ty, g->T * g->N * DH);
    m = fmax(m, maxdiff(hn, thn, LD * g->N * g->H));
    if (g->k == R_LSTM) m = fmax(m, maxdiff(cn, tcn, LD * g->N * g->H));
    if (!ty) fprintf(stderr, "  %s\n", tg_last_error());
    if (ty && g->unbatched) m = tg_ndim(ty) == 2 && tg_ndim(thn) == 2 ? m : INFINITY;
    for (int i = 0; i < nw; i++) free(w[i].v);
    free(x.v), free(h0.v), free(c0.v), free(y);
    return m;
}

static const char *const k_kind[] = { "rnn_tanh", "rnn_relu", "lstm", "gru" };

/* ================================================================== cells */

TEST(cells_match_reference) {
    NEED_FP64();
    for (int k = 0; k < 4; k++)
        for (int variant = 0; variant < 6; variant++) {
            bool bias = variant != 1, state = variant != 2, unbatched = variant == 3;
            int64_t N = unbatched ? 1 : variant == 4 ? 1 : 3, I = 5, H = variant == 5 ? 1 : 4, G = gates(k);
            arr x = unbatched ? mk(TG_SHAPE(I)) : mk(TG_SHAPE(N, I));
            arr h = unbatched ? mk(TG_SHAPE(H)) : mk(TG_SHAPE(N, H)), c = unbatched ? mk(TG_SHAPE(H)) : mk(TG_SHAPE(N, H));
            arr wih = mk(TG_SHAPE(G * H, I)), whh = mk(TG_SHAPE(G * H, H)), bih = mk(TG_SHAPE(G * H)), bhh = mk(TG_SHAPE(G * H));
            double h2[64], c2[64];
            ref_step((rkind)k, N, I, H, x.v, state ? h.v : NULL, state ? c.v : NULL, wih.v, whh.v, bias ? bih.v : NULL,
                     bias ? bhh.v : NULL, h2, c2);
            tg_tensor *th = state ? h.t : NULL, *tc = state ? c.t : NULL, *bi = bias ? bih.t : NULL, *bh = bias ? bhh.t : NULL;
            tg_tensor *out = NULL, *cout = NULL;
            if (k <= R_RELU) out = tg_rnn_cell(x.t, th, wih.t, whh.t, bi, bh, k == R_RELU ? TG_RNN_RELU : TG_RNN_TANH);
            if (k == R_LSTM) out = tg_lstm_cell(x.t, th, tc, wih.t, whh.t, bi, bh, &cout);
            if (k == R_GRU) out = tg_gru_cell(x.t, th, wih.t, whh.t, bi, bh);
            double m = maxdiff(h2, out, N * H);
            if (k == R_LSTM) m = fmax(m, maxdiff(c2, cout, N * H));
            if (out && tg_ndim(out) != (unbatched ? 1 : 2)) m = INFINITY;
            if (!(m < 1e-12)) FAIL_("%s cell variant %d: max error %g (%s)", k_kind[k], variant, m, tg_last_error());
            free(x.v), free(h.v), free(c.v), free(wih.v), free(whh.v), free(bih.v), free(bhh.v);
        }
}

TEST(cells_in_f32_and_one_bias) {
    /* f32 (every device) and only one of the two biases, against the f64 reference. */
    int64_t N = 2, I = 3, H = 4;
    for (int k = 0; k < 4; k++) {
        int64_t G = gates(k);
        arr x = mk(TG_SHAPE(N, I)), h = mk(TG_SHAPE(N, H)), c = mk(TG_SHAPE(N, H));
        arr wih = mk(TG_SHAPE(G * H, I)), whh = mk(TG_SHAPE(G * H, H)), bhh = mk(TG_SHAPE(G * H));
        double h2[64], c2[64];
        ref_step((rkind)k, N, I, H, x.v, h.v, c.v, wih.v, whh.v, NULL, bhh.v, h2, c2);
        tg_tensor *f[5] = { tg_cast(x.t, TG_F32), tg_cast(h.t, TG_F32), tg_cast(c.t, TG_F32), tg_cast(wih.t, TG_F32),
                            tg_cast(whh.t, TG_F32) }, *b = tg_cast(bhh.t, TG_F32), *out = NULL, *cout = NULL;
        if (k <= R_RELU) out = tg_rnn_cell(f[0], f[1], f[3], f[4], NULL, b, k == R_RELU ? TG_RNN_RELU : TG_RNN_TANH);
        if (k == R_LSTM) out = tg_lstm_cell(f[0], f[1], f[2], f[3], f[4], NULL, b, &cout);
        if (k == R_GRU) out = tg_gru_cell(f[0], f[1], f[3], f[4], NULL, b);
        CHECK(out && tg_dtype_of(out) == TG_F32);
        double m = maxdiff(h2, out, N * H);
        if (k == R_LSTM) m = fmax(m, maxdiff(c2, cout, N * H));
        if (!(m < 1e-5)) FAIL_("%s f32 cell: max error %g (%s)", k_kind[k], m, tg_last_error());
        free(x.v), free(h.v), free(c.v), free(wih.v), free(whh.v), free(bhh.v);
    }
}

/* A loop a user writes with the cells (many-to-many) equals the full layer. */
TEST(cell_loop_equals_layer) {
    NEED_FP64();
    int64_t T = 4, N = 2, I = 3, H = 5;
    cfg g = { .k = R_LSTM, .L = 1, .D = 1, .T = T, .N = N, .I = I, .H = H, .bias = true };
    arr w[4], x = mk(TG_SHAPE(T, N, I));
    make_weights(&g, w);
    tg_tensor *wt[4] = { w[0].t, w[1].t, w[2].t, w[3].t }, *hs[4], *h = NULL, *c = NULL;
    for (int64_t t = 0; t < T; t++) {
        h = tg_lstm_cell(tg_squeeze(tg_slice(x.t, 0, t, t + 1, 1), 0), h, c, wt[0], wt[1], wt[2], wt[3], &c);
        hs[t] = h;
    }
    tg_tensor *y = tg_lstm(x.t, NULL, NULL, 4, wt, NULL, NULL, NULL);
    CHECK_NEAR(tg_item(tg_max(tg_abs(tg_sub(y, tg_stack(4, hs, 0))), TG_ALL, false)), 0, 1e-12);
    for (int i = 0; i < 4; i++) free(w[i].v);
    free(x.v);
}

/* ================================================================== layers */

TEST(layers_match_reference) {
    NEED_FP64();
    static const struct { int L, D; int64_t T, N; bool bf, bias, init, unbatched; } v[] = {
        { 1, 1, 5, 3, false, true, false, false }, { 2, 1, 4, 2, false, true, true, false },
        { 1, 2, 5, 3, false, true, true, false },  { 2, 2, 4, 2, false, true, true, false },
        { 2, 2, 4, 3, true, true, true, false },   { 2, 2, 3, 2, false, false, false, false },
        { 1, 1, 6, 2, true, false, true, false },  { 2, 2, 4, 1, false, true, true, true },
        { 3, 1, 3, 2, false, true, false, false }, { 1, 2, 1, 2, false, true, true, false },
        { 1, 1, 70, 1, false, true, true, false }, { 1, 2, 128, 2, true, true, false, false },
        { 1, 1, 37, 1, true, true, true, false },
    };
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            cfg g = { (rkind)k, v[i].L, v[i].D, v[i].T, v[i].N, 3, 4, v[i].bf, v[i].bias, v[i].init, v[i].unbatched };
            double m = compare_cfg(&g);
            if (!(m < 1e-12))
                FAIL_("%s L%d D%d T%lld N%lld%s%s%s%s: max error %g", k_kind[k], g.L, g.D, (long long)g.T,
                      (long long)g.N, g.bf ? " batch_first" : "", g.bias ? "" : " no-bias", g.init ? " h0" : "",
                      g.unbatched ? " unbatched" : "", m);
        }
}

/* ================================================================== gradients */

static char g_what[96];
#define GRADCHECK_(checker, fn, ctx, n, in)                                                          \
    do {                                                                                             \
        tg_gradcheck_report rep_;                                                                    \
        if (checker(fn, ctx, n, in, NULL, &rep_) != TG_OK)                                           \
            FAIL_("[%s] %s failed: %s (%s)", g_what, #checker, rep_.message, tg_last_error());        \
    } while (0)

static tg_tensor *f_cell(tg_tensor *const *in, void *ctx) {
    int k = *(const int *)ctx;
    if (k == R_LSTM) {
        tg_tensor *c2, *h2 = tg_lstm_cell(in[0], in[1], in[2], in[3], in[4], in[5], in[6], &c2);
        return tg_cat(2, (tg_tensor *[]){ h2, c2 }, 1);
    }
    if (k == R_GRU) return tg_gru_cell(in[0], in[1], in[3], in[4], in[5], in[6]);
    return tg_rnn_cell(in[0], in[1], in[3], in[4], in[5], in[6], k == R_RELU ? TG_RNN_RELU : TG_RNN_TANH);
}

TEST(cells_gradcheck) {
    NEED_FP64();
    int64_t N = 2, I = 3, H = 2;
    for (int k = 0; k < 4; k++) {
        int64_t G = gates(k);
        arr a[7] = { mk(TG_SHAPE(N, I)), mk(TG_SHAPE(N, H)), mk(TG_SHAPE(N, H)), mk(TG_SHAPE(G * H, I)),
                     mk(TG_SHAPE(G * H, H)), mk(TG_SHAPE(G * H)), mk(TG_SHAPE(G * H)) };
        tg_tensor *in[7];
        for (int i = 0; i < 7; i++) in[i] = a[i].t, free(a[i].v);
        snprintf(g_what, sizeof g_what, "%s cell", k_kind[k]);
        GRADCHECK_(tg_gradcheck, f_cell, &k, 7, in);
        if (k == R_LSTM) GRADCHECK_(tg_gradgradcheck, f_cell, &k, 7, in);
    }
}

typedef struct {
    rkind k;
    int nw;
    tg_rnn_opts o;
    tg_tensor *all[3 + MAXW]; /* x, h0, c0, then the weights */
    int first, n;             /* gradcheck varies all[first .. first + n) (it takes 16 at most) */
} layer_ctx;

/* The output, h_n and c_n concatenated flat. */
static tg_tensor *f_layers(tg_tensor *const *in, void *ctx) {
    const layer_ctx *c = ctx;
    tg_tensor *a[3 + MAXW], *hn, *cn = NULL;
    memcpy(a, c->all, sizeof a);
    for (int i = 0; i < c->n; i++) a[c->first + i] = in[i];
    tg_tensor *y = run_tg(c->k, a[0], a[1], a[2], c->nw, a + 3, &c->o, &hn, c->k == R_LSTM ? &cn : NULL);
    tg_tensor *parts[3] = { tg_flatten(y, 0), tg_flatten(hn, 0), cn ? tg_flatten(cn, 0) : NULL };
    return tg_cat(cn ? 3 : 2, parts, 0);
}

TEST(layers_gradcheck) {
    NEED_FP64();
    for (int k = R_LSTM; k <= R_GRU; k++)
        for (int bf = 0; bf < 2; bf++) {
            cfg g = { .k = (rkind)k, .L = 2, .D = 2, .T = 3, .N = 2, .I = 2, .H = 2, .bias = true, .bf = bf };
            arr w[MAXW];
            layer_ctx c = { .k = (rkind)k, .nw = make_weights(&g, w),
                            .o = { .num_layers = 2, .bidirectional = true, .batch_first = bf } };
            arr x = bf ? mk(TG_SHAPE(2, 3, 2)) : mk(TG_SHAPE(3, 2, 2)), h0 = mk(TG_SHAPE(4, 2, 2)), c0 = mk(TG_SHAPE(4, 2, 2));
            c.all[0] = x.t, c.all[1] = h0.t, c.all[2] = c0.t;
            for (int i = 0; i < c.nw; i++) c.all[3 + i] = w[i].t, free(w[i].v);
            free(x.v), free(h0.v), free(c0.v);
            for (int part = 0; part < 2; part++) { /* x, states and layer 0; then layer 1 */
                c.first = part ? 11 : 0, c.n = part ? 8 : 11;
                snprintf(g_what, sizeof g_what, "%s 2 layers bidirectional%s, part %d", k_kind[k], bf ? " batch_first" : "", part);
                GRADCHECK_(tg_gradcheck, f_layers, &c, c.n, c.all + c.first);
            }
        }
    /* 67 steps (a prime) go through the grouped split with a remainder (2 x 32 + 3). */
    cfg g = { .k = R_TANH, .L = 1, .D = 2, .T = 67, .N = 1, .I = 1, .H = 1, .bias = true };
    arr w[MAXW];
    layer_ctx c = { .k = R_TANH, .nw = make_weights(&g, w), .o = { .bidirectional = true } };
    arr x = mk(TG_SHAPE(67, 1, 1)), h0 = mk(TG_SHAPE(2, 1, 1)), unused = mk(TG_SHAPE(1));
    c.all[0] = x.t, c.all[1] = h0.t, c.all[2] = unused.t;
    for (int i = 0; i < c.nw; i++) c.all[3 + i] = w[i].t, free(w[i].v);
    free(x.v), free(h0.v), free(unused.v);
    c.first = 0, c.n = 3 + c.nw;
    snprintf(g_what, sizeof g_what, "rnn 67 steps");
    GRADCHECK_(tg_gradcheck, f_layers, &c, c.n, c.all);
}

/* ================================================================== dropout */

TEST(dropout_between_layers) {
    NEED_FP64();
    cfg g = { .k = R_LSTM, .L = 2, .D = 2, .T = 6, .N = 4, .I = 3, .H = 5, .bias = true };
    arr w[MAXW], x = mk(TG_SHAPE(6, 4, 3));
    int nw = make_weights(&g, w);
    tg_tensor *wt[MAXW];
    for (int i = 0; i < nw; i++) wt[i] = w[i].t, free(w[i].v);
    free(x.v);
    tg_rnn_opts eval = { .num_layers = 2, .bidirectional = true, .dropout = 0.5 };
    tg_rnn_opts train = eval;
    train.training = true;
    tg_rnn_opts none = { .num_layers = 2, .bidirectional = true };
    tg_tensor *y0 = tg_lstm(x.t, NULL, NULL, nw, wt, &none, NULL, NULL);
    tg_manual_seed(7);
    tg_tensor *ye = tg_lstm(x.t, NULL, NULL, nw, wt, &eval, NULL, NULL);
    CHECK_NEAR(tg_item(tg_max(tg_abs(tg_sub(ye, y0)), TG_ALL, false)), 0, 0); /* off in eval */
    tg_manual_seed(7);
    tg_tensor *yt = tg_lstm(x.t, NULL, NULL, nw, wt, &train, NULL, NULL);
    CHECK(tg_item(tg_max(tg_abs(tg_sub(yt, y0)), TG_ALL, false)) > 1e-3); /* on in training */
    /* The same by hand: layer 0, then a mask from the same seed (keep with 1 - p, scale
     * 1 / (1 - p)), then layer 1. */
    tg_rnn_opts one = { .bidirectional = true };
    tg_tensor *y1 = tg_lstm(x.t, NULL, NULL, 8, wt, &one, NULL, NULL);
    tg_manual_seed(7);
    tg_tensor *mask = tg_bernoulli(TG_F64, tg_shape_of(y1), 0.5, dev());
    tg_tensor *yh = tg_lstm(tg_mul(y1, tg_mul_scalar(mask, 2.0)), NULL, NULL, 8, wt + 8, &one, NULL, NULL);
    CHECK_NEAR(tg_item(tg_max(tg_abs(tg_sub(yt, yh)), TG_ALL, false)), 0, 1e-12);
    double kept = tg_item(tg_mean(mask, TG_ALL, false));
    CHECK(kept > 0.3 && kept < 0.7); /* 240 draws of p = 0.5 */
    /* Not after the last layer: one layer in training is the same as in eval. */
    tg_rnn_opts one_train = { .bidirectional = true, .dropout = 0.5, .training = true };
    CHECK_NEAR(tg_item(tg_max(tg_abs(tg_sub(tg_lstm(x.t, NULL, NULL, 8, wt, &one_train, NULL, NULL), y1)), TG_ALL,
                              false)), 0, 0);
    /* p = 1 drops everything between layers: layer 1 sees zeros. */
    tg_rnn_opts all = { .num_layers = 2, .bidirectional = true, .dropout = 1, .training = true };
    tg_tensor *yz = tg_lstm(tg_zeros(TG_F64, tg_shape_of(y1), dev()), NULL, NULL, 8, wt + 8, &one, NULL, NULL);
    CHECK_NEAR(tg_item(tg_max(tg_abs(tg_sub(tg_lstm(x.t, NULL, NULL, nw, wt, &all, NULL, NULL), yz)), TG_ALL, false)),
               0, 0);
    /* Gradients flow through the mask. */
    tg_tensor *wp = tg_param(tg_clone(wt[0]));
    wt[0] = wp;
    tg_manual_seed(7);
    CHECK(tg_backward(tg_sum(tg_lstm(x.t, NULL, NULL, nw, wt, &train, NULL, NULL), TG_ALL, false)) == TG_OK);
    CHECK(tg_grad(wp) && isfinite(tg_item(tg_norm(tg_grad(wp)))));
}

/* ================================================================== names */

TEST(weight_names_and_shapes) {
    static const char *const want[] = {
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
        "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
        "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse",
    };
    tg_rnn_opts o = { .num_layers = 2, .bidirectional = true };
    CHECK(tg_rnn_num_weights(true, &o) == 16);
    CHECK(tg_rnn_num_weights(false, &o) == 8);
    CHECK(tg_rnn_num_weights(true, NULL) == 4);
    tg_rnn_weight_desc d;
    for (int i = 0; i < 16; i++) {
        CHECK(tg_rnn_weight_info(TG_RNN_MODE_LSTM, 10, 20, true, &o, i, &d) == TG_OK);
        if (strcmp(d.name, want[i]) != 0) FAIL_("weight %d is named %s, expected %s", i, d.name, want[i]);
        int slot = i % 4;
        int64_t want0 = 80, want1 = slot == 0 ? (i < 8 ? 10 : 40) : 20;
        CHECK(d.shape.dims[0] == want0 && d.shape.ndim == (slot < 2 ? 2 : 1) && (slot >= 2 || d.shape.dims[1] == want1));
        CHECK(d.layer == i / 8 && d.direction == i / 4 % 2);
    }
    CHECK(tg_rnn_weight_info(TG_RNN_MODE_GRU, 10, 20, false, &o, 3, &d) == TG_OK);
    CHECK(strcmp(d.name, "weight_hh_l0_reverse") == 0 && d.shape.dims[0] == 60 && d.shape.dims[1] == 20);
    CHECK(tg_rnn_weight_info(TG_RNN_MODE_RNN, 10, 20, false, &o, 4, &d) == TG_OK);
    CHECK(strcmp(d.name, "weight_ih_l1") == 0 && d.shape.dims[0] == 20 && d.shape.dims[1] == 40);
    CHECK_ERROR(tg_rnn_weight_info(TG_RNN_MODE_RNN, 10, 20, false, &o, 8, &d),
                "tg_rnn_weight_info: index 8 is out of range for 8 weights");
    CHECK_ERROR(tg_rnn_weight_info(TG_RNN_MODE_RNN, 0, 20, false, &o, 0, &d),
                "tg_rnn_weight_info: mode 0, input_size 0, hidden_size 20: expected a TG_RNN_MODE_*, positive sizes "
                "and an output");
    CHECK_ERROR(tg_rnn_num_weights(true, &(tg_rnn_opts){ .num_layers = -2 }),
                "tg_rnn_num_weights: num_layers must be at least 1, got -2");
}

/* ================================================================== errors */

TEST(error_messages) {
    tg_device *d = dev();
    tg_tensor *x = tg_zeros(TG_F32, TG_SHAPE(5, 3, 4), d), *w[16];
    tg_rnn_opts o = { .num_layers = 1 };
    cfg g = { .k = R_LSTM, .L = 1, .D = 1, .I = 4, .H = 2, .bias = true };
    for (int i = 0; i < 4; i++) {
        tg_rnn_weight_desc wd;
        tg_rnn_weight_info(TG_RNN_MODE_LSTM, g.I, g.H, true, &o, i, &wd);
        w[i] = tg_zeros(TG_F32, wd.shape, d);
    }
    CHECK(tg_lstm(x, NULL, NULL, 4, w, &o, NULL, NULL) != NULL);
    CHECK_ERROR(tg_lstm(tg_zeros(TG_F32, TG_SHAPE(5, 3, 7), d), NULL, NULL, 4, w, &o, NULL, NULL),
                "tg_lstm: input has 7 features but weight_ih_l0 [8,4] expects 4");
    CHECK_ERROR(tg_lstm(tg_zeros(TG_F32, TG_SHAPE(5), d), NULL, NULL, 4, w, &o, NULL, NULL),
                "tg_lstm: input must be (L, N, input_size), (N, L, input_size) with batch_first or (L, input_size), "
                "got [5]");
    CHECK_ERROR(tg_lstm(x, NULL, NULL, 3, w, &o, NULL, NULL),
                "tg_lstm: got 3 weights; 1 layer take 4 (w_ih, w_hh, b_ih, b_hh for each layer and direction) or 2 "
                "without biases");
    CHECK_ERROR(tg_lstm(x, NULL, NULL, 4, w, &(tg_rnn_opts){ .num_layers = 2, .bidirectional = true }, NULL, NULL),
                "tg_lstm: got 4 weights; 2 layers, bidirectional, take 16 (w_ih, w_hh, b_ih, b_hh for each layer "
                "and direction) or 8 without biases");
    tg_tensor *bad[4] = { w[0], tg_zeros(TG_F32, TG_SHAPE(8, 3), d), w[2], w[3] };
    CHECK_ERROR(tg_lstm(x, NULL, NULL, 4, bad, &o, NULL, NULL),
                "tg_lstm: weight_hh_l0 has shape [8,3], expected (4*hidden_size, hidden_size)");
    bad[1] = w[1], bad[0] = tg_zeros(TG_F32, TG_SHAPE(6, 4), d);
    CHECK_ERROR(tg_lstm(x, NULL, NULL, 4, bad, &o, NULL, NULL),
                "tg_lstm: weight_ih_l0 has shape [6,4], expected (8, input_size)");
    bad[0] = w[0], bad[3] = tg_zeros(TG_F32, TG_SHAPE(7), d);
    CHECK_ERROR(tg_lstm(x, NULL, NULL, 4, bad, &o, NULL, NULL), "tg_lstm: bias_hh_l0 has shape [7], expected [8]");
    bad[3] = NULL;
    CHECK_ERROR(tg_lstm(x, NULL, NULL, 4, bad, &o, NULL, NULL), "tg_lstm: bias_hh_l0 is NULL");
    CHECK_ERROR(tg_lstm(x, NULL, NULL, 4, NULL, &o, NULL, NULL), "tg_lstm: weights is NULL");
    CHECK_ERROR(tg_lstm(x, tg_zeros(TG_F32, TG_SHAPE(1, 2, 2), d), NULL, 4, w, &o, NULL, NULL),
                "tg_lstm: h0 has shape [1,2,2], expected [1,3,2]");
    CHECK_ERROR(tg_lstm(x, NULL, tg_zeros(TG_F32, TG_SHAPE(2, 3, 2), d), 4, w, &o, NULL, NULL),
                "tg_lstm: c0 has shape [2,3,2], expected [1,3,2]");
    CHECK_ERROR(tg_lstm(tg_zeros(TG_F32, TG_SHAPE(5, 4), d), tg_zeros(TG_F32, TG_SHAPE(1, 3, 2), d), NULL, 4, w, &o,
                        NULL, NULL),
                "tg_lstm: h0 has shape [1,3,2], expected [1,2]");
    CHECK_ERROR(tg_lstm(x, NULL, NULL, 4, w, &(tg_rnn_opts){ .dropout = 1.5 }, NULL, NULL),
                "tg_lstm: dropout must be in [0, 1], got 1.5");
    CHECK_ERROR(tg_lstm(x, NULL, NULL, 4, w, &(tg_rnn_opts){ .num_layers = -1 }, NULL, NULL),
                "tg_lstm: num_layers must be at least 1, got -1");
    CHECK_ERROR(tg_rnn(x, NULL, 4, w, &(tg_rnn_opts){ .nonlinearity = (tg_rnn_nonlinearity)5 }, NULL),
                "tg_rnn: nonlinearity must be TG_RNN_TANH or TG_RNN_RELU, got 5");
    CHECK_ERROR(tg_gru(x, NULL, 4, w, &o, NULL),
                "tg_gru: weight_hh_l0 has shape [8,2], expected (3*hidden_size, hidden_size)");
    CHECK_ERROR(tg_lstm(tg_zeros(TG_F32, TG_SHAPE(0, 3, 4), d), NULL, NULL, 4, w, &o, NULL, NULL),
                "tg_lstm: the input has no time steps");
    CHECK_ERROR(tg_lstm(NULL, NULL, NULL, 4, w, &o, NULL, NULL), "tg_lstm: input is NULL");
    /* An earlier error passes through unchanged. */
    CHECK_ERROR(tg_lstm(tg_reshape(x, TG_SHAPE(7, 7)), NULL, NULL, 4, w, &o, NULL, NULL),
                "tg_reshape: cannot view [5,3,4] (60 elements) as [7,7]");
    CHECK_ERROR(tg_lstm(tg_zeros(TG_F64, TG_SHAPE(5, 3, 4), d), NULL, NULL, 4, w, &o, NULL, NULL),
                "tg_lstm: weight_ih_l0 is f32 but the input is f64");
    /* cells */
    tg_tensor *xc = tg_zeros(TG_F32, TG_SHAPE(3, 4), d), *h = tg_zeros(TG_F32, TG_SHAPE(3, 2), d);
    CHECK(tg_lstm_cell(xc, h, h, w[0], w[1], w[2], w[3], NULL) != NULL);
    CHECK_ERROR(tg_lstm_cell(tg_zeros(TG_F32, TG_SHAPE(3, 5), d), h, h, w[0], w[1], w[2], w[3], NULL),
                "tg_lstm_cell: w_ih has shape [8,4], expected [8,5]");
    CHECK_ERROR(tg_lstm_cell(xc, tg_zeros(TG_F32, TG_SHAPE(3, 3), d), h, w[0], w[1], w[2], w[3], NULL),
                "tg_lstm_cell: h has shape [3,3], expected [3,2]");
    CHECK_ERROR(tg_lstm_cell(xc, h, tg_zeros(TG_F32, TG_SHAPE(2), d), w[0], w[1], w[2], w[3], NULL),
                "tg_lstm_cell: c has shape [2], expected [3,2]");
    CHECK_ERROR(tg_gru_cell(xc, h, w[0], w[1], NULL, NULL),
                "tg_gru_cell: w_hh has shape [8,2], expected (3*hidden_size, hidden_size)");
    CHECK_ERROR(tg_rnn_cell(xc, NULL, tg_zeros(TG_F32, TG_SHAPE(2, 4), d), tg_zeros(TG_F32, TG_SHAPE(2, 2), d),
                            tg_zeros(TG_F32, TG_SHAPE(3), d), NULL, TG_RNN_TANH),
                "tg_rnn_cell: b_ih has shape [3], expected [2]");
    CHECK_ERROR(tg_rnn_cell(xc, NULL, w[0], w[1], NULL, NULL, (tg_rnn_nonlinearity)2),
                "tg_rnn_cell: nonlinearity must be TG_RNN_TANH or TG_RNN_RELU, got 2");
    CHECK_ERROR(tg_rnn_cell(tg_zeros(TG_F32, TG_SHAPE(1, 3, 4), d), NULL, tg_zeros(TG_F32, TG_SHAPE(2, 4), d),
                            tg_zeros(TG_F32, TG_SHAPE(2, 2), d), NULL, NULL, TG_RNN_TANH),
                "tg_rnn_cell: x must be (N, input_size) or (input_size), got [1,3,4]");
    CHECK_ERROR(tg_gru_cell(NULL, h, w[0], w[1], NULL, NULL), "tg_gru_cell: x is NULL");
    CHECK_ERROR(tg_lstm_cell(xc, tg_zeros(TG_F64, TG_SHAPE(3, 2), d), h, w[0], w[1], w[2], w[3], NULL),
                "tg_lstm_cell: h is f64 but the input is f32");
    CHECK_ERROR(tg_lstm(x, tg_zeros(TG_F64, TG_SHAPE(1, 3, 2), d), NULL, 4, w, &o, NULL, NULL),
                "tg_lstm: h0 is f64 but the input is f32");
    tg_tensor *cout = xc;
    CHECK(tg_lstm_cell(xc, NULL, NULL, NULL, w[1], NULL, NULL, &cout) == NULL && cout == NULL);
}

/* ================================================================== memory */

TEST(long_sequence_memory) {
    /* 300 steps: in grad-off mode, nothing is left but the results; with grad, backward
     * and the scope's end free the graph. */
    tg_device *d = dev();
    tg_rnn_opts o = { .num_layers = 2 };
    tg_tensor *w[8];
    for (int i = 0; i < 8; i++) {
        tg_rnn_weight_desc wd;
        tg_rnn_weight_info(TG_RNN_MODE_LSTM, 8, 16, true, &o, i, &wd);
        w[i] = tg_param(tg_mul_scalar(tg_randn(TG_F32, wd.shape, d), 0.2));
    }
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(300, 4, 8), d);
    int64_t base = tg_live_tensors();
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    tg_tensor *hn, *cn, *y = tg_lstm(x, NULL, NULL, 8, w, &o, &hn, &cn);
    CHECK(y && tg_size(y, 0) == 300 && hn && cn);
    CHECK(tg_live_tensors() - base <= 3);
    tg_scope_end();
    tg_set_grad_enabled(prev);
    CHECK(tg_live_tensors() == base);
    tg_scope_begin();
    y = tg_lstm(x, NULL, NULL, 8, w, &o, &hn, &cn);
    CHECK(tg_backward(tg_sum(y, TG_ALL, false)) == TG_OK);
    tg_scope_end();
    CHECK(tg_live_tensors() == base + 8); /* the gradients */
    CHECK(isfinite(tg_item(tg_norm(tg_grad(w[1])))));
}

/* ================================================================== PyTorch */

static const char k_torch_py[] =
    "import sys, numpy as np, torch\n"
    "kind, L, D, T, N, I, H, bf = sys.argv[2:10]\n"
    "L, D, T, N, I, H, bf = int(L), int(D), int(T), int(N), int(I), int(H), bool(int(bf))\n"
    "a = np.fromfile(sys.argv[1] + '.in', dtype=np.float64)\n"
    "cls = {'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU, 'rnn_tanh': torch.nn.RNN, 'rnn_relu': torch.nn.RNN}[kind]\n"
    "kw = {'nonlinearity': 'relu'} if kind == 'rnn_relu' else {}\n"
    "m = cls(I, H, num_layers=L, bidirectional=D == 2, batch_first=bf, **kw).double()\n"
    "off = 0\n"
    "def take(shape):\n"
    "    global off\n"
    "    n = int(np.prod(shape)); t = torch.from_numpy(a[off:off + n].copy()).reshape(shape); off += n; return t\n"
    "x = take((N, T, I) if bf else (T, N, I)); h0 = take((L * D, N, H)); c0 = take((L * D, N, H))\n"
    "with torch.no_grad():\n"
    "    for name in m._flat_weights_names: getattr(m, name).copy_(take(tuple(getattr(m, name).shape)))\n"
    "    y, st = m(x, (h0, c0) if kind == 'lstm' else h0)\n"
    "parts = [y, st[0], st[1]] if kind == 'lstm' else [y, st]\n"
    "np.concatenate([p.numpy().ravel() for p in parts]).tofile(sys.argv[1] + '.out')\n";

TEST(agrees_with_torch) {
    NEED_FP64();
    if (system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0)
        SKIP("no /usr/bin/python3 with torch and numpy");
    char dir[] = "/tmp/tg_rnn_torchXXXXXX";
    if (!mkdtemp(dir)) SKIP("no temporary directory");
    char py[128], base[128], cmd[512];
    snprintf(py, sizeof py, "%s/ref.py", dir);
    snprintf(base, sizeof base, "%s/data", dir);
    FILE *f = fopen(py, "w");
    if (!f) SKIP("cannot write %s", py);
    fputs(k_torch_py, f);
    fclose(f);
    for (int k = 0; k < 4; k++) {
        cfg g = { (rkind)k, 2, 2, 5, 3, 4, 3, k == R_GRU, true, true, false };
        arr w[MAXW];
        int nw = make_weights(&g, w);
        int64_t LD = 4;
        arr x = g.bf ? mk(TG_SHAPE(3, 5, 4)) : mk(TG_SHAPE(5, 3, 4)), h0 = mk(TG_SHAPE(LD, 3, 3)), c0 = mk(TG_SHAPE(LD, 3, 3));
        snprintf(cmd, sizeof cmd, "%s.in", base);
        f = fopen(cmd, "wb");
        fwrite(x.v, sizeof(double), (size_t)x.n, f), fwrite(h0.v, sizeof(double), (size_t)h0.n, f);
        fwrite(c0.v, sizeof(double), (size_t)c0.n, f);
        for (int i = 0; i < nw; i++) fwrite(w[i].v, sizeof(double), (size_t)w[i].n, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s 2 2 5 3 4 3 %d", py, base, k_kind[k], g.bf);
        if (system(cmd) != 0) FAIL_("%s failed", cmd);
        snprintf(cmd, sizeof cmd, "%s.out", base);
        double want[512];
        f = fopen(cmd, "rb");
        size_t got = f ? fread(want, sizeof(double), 512, f) : 0;
        if (f) fclose(f);
        tg_tensor *wt[MAXW], *hn, *cn = NULL;
        for (int i = 0; i < nw; i++) wt[i] = w[i].t, free(w[i].v);
        tg_rnn_opts o = { .num_layers = 2, .bidirectional = true, .batch_first = g.bf,
                          .nonlinearity = k == R_RELU ? TG_RNN_RELU : TG_RNN_TANH };
        tg_tensor *y = run_tg((rkind)k, x.t, h0.t, c0.t, nw, wt, &o, &hn, k == R_LSTM ? &cn : NULL);
        tg_tensor *parts[3] = { tg_flatten(y, 0), tg_flatten(hn, 0), cn ? tg_flatten(cn, 0) : NULL };
        tg_tensor *all = tg_cat(cn ? 3 : 2, parts, 0);
        CHECK(all && (size_t)tg_numel(all) == got);
        double m = maxdiff(want, all, (int64_t)got);
        if (!(m < 1e-12)) FAIL_("%s against torch: max error %g", k_kind[k], m);
        free(x.v), free(h0.v), free(c0.v);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) FAIL_("%s failed", cmd);
}

/* The modules: torch.nn's parameter names, its init bound, the functional layer's
 * output with the module's weights, final states, train/eval dropout. */
TEST(modules_wrap_the_layers) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(9);
    tg_module *m = tg_lstm_new(3, 4, &(tg_rnn_module_opts){ .num_layers = 2, .bidirectional = true, .dropout = 0.5 },
                               dev);
    CHECK(m != NULL);
    const char *names[] = { "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                            "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
                            "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
                            "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse" };
    tg_tensor *w[16];
    for (int i = 0; i < 16; i++) {
        w[i] = tg_module_get_param(m, names[i]);
        CHECK(w[i] != NULL);
    }
    CHECK(tg_size(w[8], 1) == 8 && tg_size(w[0], 0) == 16); /* layer 1 reads both directions; 4 gates */
    double *v = tg_test_values(w[9]); /* U(-1/2, 1/2) for hidden 4 */
    for (int i = 0; i < 64; i++) CHECK(v[i] >= -0.5 && v[i] <= 0.5);
    free(v);
    tg_tensor *x = tg_randn(TG_F32, TG_SHAPE(5, 2, 3), dev), *hn, *cn, *hn2, *cn2;
    tg_module_eval(m); /* no dropout: the module is the functional layer with its weights */
    tg_tensor *y = tg_rnn_module_forward(m, x, NULL, NULL, &hn, &cn);
    tg_tensor *y2 = tg_lstm(x, NULL, NULL, 16, w, &(tg_rnn_opts){ .num_layers = 2, .bidirectional = true }, &hn2, &cn2);
    CHECK(y && y2 && tg_item(tg_max(tg_abs(tg_sub(y, y2)), TG_ALL, false)) == 0);
    CHECK(tg_item(tg_max(tg_abs(tg_sub(cn, cn2)), TG_ALL, false)) == 0);
    CHECK(tg_size(hn, 0) == 4 && tg_size(hn, 2) == 4);
    CHECK(tg_item(tg_max(tg_abs(tg_sub(tg_module_forward(m, x), y)), TG_ALL, false)) == 0);
    tg_module_train(m, true); /* dropout 0.5 between the layers now changes the output */
    CHECK(tg_item(tg_max(tg_abs(tg_sub(tg_module_forward(m, x), y)), TG_ALL, false)) > 0);
    tg_module_free(m);
    tg_module *g = tg_gru_new(3, 2, &(tg_rnn_module_opts){ .no_bias = true, .batch_first = true }, dev);
    CHECK(g && tg_module_num_parameters(g, false) == 6 * 3 + 6 * 2);
    CHECK(tg_size(tg_module_forward(g, tg_randn(TG_F32, TG_SHAPE(2, 5, 3), dev)), 1) == 5);
    tg_module_free(g);
    CHECK_ERROR(tg_rnn_module_forward(NULL, x, NULL, NULL, NULL, NULL),
                "tg_rnn_module_forward: not an RNN, LSTM or GRU module");
}

TG_TEST_MAIN(&tg_case_modules_wrap_the_layers, &tg_case_cells_match_reference, &tg_case_cells_in_f32_and_one_bias, &tg_case_cell_loop_equals_layer,
             &tg_case_layers_match_reference, &tg_case_cells_gradcheck, &tg_case_layers_gradcheck,
             &tg_case_dropout_between_layers, &tg_case_weight_names_and_shapes, &tg_case_error_messages,
             &tg_case_long_sequence_memory, &tg_case_agrees_with_torch)
