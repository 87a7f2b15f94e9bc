/* The LSTM cell's pointwise part (backend.h), a row of the batch at a time: the row's
 * sigmoids and tanhs through the SIMD table (all of a row's values are in L1), the
 * sums and products in plain loops built for AVX-512 and AVX2 as well (clones.h).
 * Rows are spread over the pool: one step of a batch-32 LSTM of hidden size 256 is
 * 8192 cells, ~10 us on one core, and the step's GEMMs leave the other cores idle
 * between them. */
#include <math.h>

#include "lib/cpu/clones.h"
#include "lib/cpu/cpu.h"
#include "lib/cpu/rnn_cell.h"
#include "lib/cpu/simd/simd.h"
#include "lib/cpu/threadpool.h"

/* Cells a pool chunk should hold at least (a few microseconds of work). */
#define ROW_GRAIN_CELLS 4096

typedef struct {
    int64_t H;
    char *h, *c, *ws, *dgates, *dc_prev;
    const char *gates, *hidden, *c_prev, *dh, *dc, *ws_in;
} cell_ctx;

#define DEFINE_CELL(T, S, EXP, TANH)                                                                    \
    static void sigmoid_##S(int64_t n, const T *x, T *out) {                                            \
        tg_unary_##S##_fn f = tg_simd()->unary_##S[TG_UN_SIGMOID];                                      \
        if (f) f(n, x, out, 0, 0);                                                                       \
        else                                                                                             \
            for (int64_t j = 0; j < n; j++) out[j] = 1 / (1 + EXP(-x[j]));                              \
    }                                                                                                    \
    static void tanh_##S(int64_t n, const T *x, T *out) {                                               \
        tg_unary_##S##_fn f = tg_simd()->unary_##S[TG_UN_TANH];                                         \
        if (f) f(n, x, out, 0, 0);                                                                       \
        else                                                                                             \
            for (int64_t j = 0; j < n; j++) out[j] = TANH(x[j]);                                        \
    }                                                                                                    \
    /* The row loops take their arrays as restrict parameters: GCC ignores restrict on       \
     * block-scope pointers, and with this many arrays it then gives up vectorising. */      \
    TG_CPU_INLINE void add_row_##S(int64_t n, const T *restrict a, const T *restrict b, T *restrict out) {   \
        for (int64_t j = 0; j < n; j++) out[j] = a[j] + b[j];                                           \
    }                                                                                                    \
    /* c = f * c_prev + i * g, from ws = (i, f, g, ...). */                                             \
    TG_CPU_INLINE void c_row_##S(int64_t H, const T *restrict ws, const T *restrict cp, T *restrict c) { \
        for (int64_t j = 0; j < H; j++) c[j] = ws[H + j] * cp[j] + ws[j] * ws[2 * H + j];               \
    }                                                                                                    \
    TG_CPU_INLINE void mul_row_##S(int64_t n, const T *restrict a, const T *restrict b, T *restrict out) {   \
        for (int64_t j = 0; j < n; j++) out[j] = a[j] * b[j];                                           \
    }                                                                                                    \
    TG_CPU_INLINE void backward_row_##S(int64_t H, const T *restrict dh, const T *restrict dc,           \
                                        const T *restrict ws, const T *restrict cp, T *restrict dg,      \
                                        T *restrict dcp) {                                               \
        for (int64_t j = 0; j < H; j++) {                                                                \
            T i = ws[j], f = ws[H + j], g = ws[2 * H + j], o = ws[3 * H + j], tc = ws[4 * H + j];        \
            T dct = dc[j] + dh[j] * o * (1 - tc * tc);                                                   \
            dg[j] = dct * g * i * (1 - i);                                                               \
            dg[H + j] = dct * cp[j] * f * (1 - f);                                                       \
            dg[2 * H + j] = dct * i * (1 - g * g);                                                       \
            dg[3 * H + j] = dh[j] * tc * o * (1 - o);                                                    \
            dcp[j] = dct * f;                                                                            \
        }                                                                                                \
    }                                                                                                    \
    /* The gates are the input gates plus, when given, the hidden gates: their sum goes to   \
     * the row's workspace first and the activations overwrite it there. */                   \
    TG_CPU_CLONES static void forward_rows_##S(void *vc, int64_t r0, int64_t r1) {                      \
        const cell_ctx *x = vc;                                                                          \
        const int64_t H = x->H;                                                                          \
        for (int64_t r = r0; r < r1; r++) {                                                              \
            const T *g = (const T *)x->gates + r * 4 * H, *cp = (const T *)x->c_prev + r * H;            \
            T *ws = (T *)x->ws + r * 5 * H, *c = (T *)x->c + r * H, *h = (T *)x->h + r * H;              \
            if (x->hidden) {                                                                             \
                add_row_##S(4 * H, g, (const T *)x->hidden + r * 4 * H, ws);                            \
                g = ws;                                                                                  \
            }                                                                                            \
            sigmoid_##S(2 * H, g, ws); /* i, f */                                                        \
            tanh_##S(H, g + 2 * H, ws + 2 * H);                                                          \
            sigmoid_##S(H, g + 3 * H, ws + 3 * H);                                                       \
            c_row_##S(H, ws, cp, c);                                                                     \
            tanh_##S(H, c, ws + 4 * H);                                                                  \
            mul_row_##S(H, ws + 3 * H, ws + 4 * H, h); /* h = o * tanh(c) */                            \
        }                                                                                                \
    }                                                                                                    \
    TG_CPU_CLONES static void backward_rows_##S(void *vc, int64_t r0, int64_t r1) {                     \
        const cell_ctx *x = vc;                                                                          \
        const int64_t H = x->H;                                                                          \
        for (int64_t r = r0; r < r1; r++)                                                                \
            backward_row_##S(H, (const T *)x->dh + r * H, (const T *)x->dc + r * H,                      \
                             (const T *)x->ws_in + r * 5 * H, (const T *)x->c_prev + r * H,              \
                             (T *)x->dgates + r * 4 * H, (T *)x->dc_prev + r * H);                       \
    }

DEFINE_CELL(float, f32, expf, tanhf)
DEFINE_CELL(double, f64, exp, tanh)

static void run_rows(int64_t rows, int64_t H, tg_pool_fn fn, cell_ctx *x) {
    int64_t grain = ROW_GRAIN_CELLS / (H > 0 ? H : 1);
    tg_pool_parallel_for(rows, grain > 0 ? grain : 1, fn, x);
}

tg_status tg_cpu_lstm_pointwise(tg_tensor *h, tg_tensor *c, tg_tensor *ws, const tg_tensor *gates,
                                const tg_tensor *hidden, const tg_tensor *c_prev) {
    cell_ctx x = { .H = h->shape[1], .h = tg_cpu_ptr(h), .c = tg_cpu_ptr(c), .ws = tg_cpu_ptr(ws),
                   .gates = tg_cpu_ptr(gates), .hidden = hidden ? tg_cpu_ptr(hidden) : NULL,
                   .c_prev = tg_cpu_ptr(c_prev) };
    run_rows(h->shape[0], x.H, h->dtype == TG_F32 ? forward_rows_f32 : forward_rows_f64, &x);
    return TG_OK;
}

tg_status tg_cpu_lstm_pointwise_backward(tg_tensor *dgates, tg_tensor *dc_prev, const tg_tensor *dh,
                                         const tg_tensor *dc, const tg_tensor *ws, const tg_tensor *c_prev) {
    cell_ctx x = { .H = dc_prev->shape[1], .dgates = tg_cpu_ptr(dgates), .dc_prev = tg_cpu_ptr(dc_prev),
                   .dh = tg_cpu_ptr(dh), .dc = tg_cpu_ptr(dc), .ws_in = tg_cpu_ptr(ws), .c_prev = tg_cpu_ptr(c_prev) };
    run_rows(dc_prev->shape[0], x.H, dc_prev->dtype == TG_F32 ? backward_rows_f32 : backward_rows_f64, &x);
    return TG_OK;
}
