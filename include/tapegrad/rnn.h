/* Recurrent layers as functions: the RNN, LSTM and GRU cells and full multi-layer,
 * bidirectional layers over a sequence, with PyTorch's equations, gate order, weight
 * layouts and parameter names, so that weights and checkpoints carry over. They are
 * compositions of ops (no kernels, no backward code): they run on every device and are
 * differentiable twice. Included by tapegrad.h.
 *
 * A many-to-one loop with the LSTM cell (x: (L, N, I); weights as torch.nn.LSTMCell's):
 *
 *     tg_tensor *h = NULL, *c = NULL;                      // NULL: zeros
 *     for (int64_t t = 0; t < L; t++) {
 *         tg_tensor *xt = tg_squeeze(tg_slice(x, 0, t, t + 1, 1), 0);         // (N, I)
 *         h = tg_lstm_cell(xt, h, c, w_ih, w_hh, b_ih, b_hh, &c);           // (N, H) each
 *     }
 *     tg_tensor *logits = tg_add(tg_matmul(h, tg_transpose(w_fc, 0, 1)), b_fc);
 *
 * A whole 2-layer bidirectional LSTM (weights in PyTorch's order, tg_rnn_weight_info):
 *
 *     tg_tensor *h_n, *c_n;
 *     tg_tensor *out = tg_lstm(x, NULL, NULL, 16, weights,
 *                              &(tg_rnn_opts){ .num_layers = 2, .bidirectional = true }, &h_n, &c_n);
 *     // out (L, N, 2H); h_n and c_n (4, N, H)
 */
#ifndef TAPEGRAD_RNN_H
#define TAPEGRAD_RNN_H

#include "tapegrad.h"
typedef struct tg_module tg_module; /* tapegrad/nn.h */

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- cells
 * x is (N, I) or unbatched (I); h and c are (N, H) or (H) to match, or NULL for zeros.
 * w_ih is (G*H, I) and w_hh (G*H, H) with G gates stacked in PyTorch's order; b_ih and
 * b_hh are (G*H) and may be NULL (no bias). Results belong to the current scope. On an
 * error (a NULL or mis-shaped argument, dtypes or devices that differ) they return NULL
 * and tg_last_error() names the call and the values. */

typedef enum { TG_RNN_TANH = 0, TG_RNN_RELU = 1 } tg_rnn_nonlinearity;

/* h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu (G = 1). */
TG_API tg_tensor *tg_rnn_cell(tg_tensor *x, tg_tensor *h, tg_tensor *w_ih, tg_tensor *w_hh, tg_tensor *b_ih,
                              tg_tensor *b_hh, tg_rnn_nonlinearity nonlinearity);

/* G = 4 in the order i, f, g, o:
 *   i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh)
 *   c' = sigmoid(f) * c + sigmoid(i) * tanh(g),   h' = sigmoid(o) * tanh(c').
 * Returns h' and writes c' to *c_out (NULL on error; c_out may be NULL to drop it). */
TG_API tg_tensor *tg_lstm_cell(tg_tensor *x, tg_tensor *h, tg_tensor *c, tg_tensor *w_ih, tg_tensor *w_hh,
                               tg_tensor *b_ih, tg_tensor *b_hh, tg_tensor **c_out);

/* The LSTM cell's pointwise part as one primitive (what tg_lstm_cell and tg_lstm run at
 * every step), PyTorch's fused cell: the gates are input_gates + hidden_gates, both
 * (N, 4H) pre-activations in blocks i, f, g, o (hidden_gates may be NULL: the gates are
 * input_gates alone); c_prev (N, H).
 *   c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g),   h = sigmoid(o) * tanh(c).
 * Writes h and c (NULL on error). One kernel forward and one backward on the CPU;
 * differentiable to any order; other devices compose it from elementwise ops. */
TG_API tg_status tg_lstm_pointwise(tg_tensor *input_gates, tg_tensor *hidden_gates, tg_tensor *c_prev, tg_tensor **h,
                                   tg_tensor **c);

/* G = 3 in the order r, z, n, as PyTorch (r multiplies W_hn h + b_hn):
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h. */
TG_API tg_tensor *tg_gru_cell(tg_tensor *x, tg_tensor *h, tg_tensor *w_ih, tg_tensor *w_hh, tg_tensor *b_ih,
                              tg_tensor *b_hh);

/* ---------------------------------------------------------------- layers over a sequence
 *
 * input is (L, N, I), or (N, L, I) with batch_first, or unbatched (L, I). The output is
 * (L, N, D*H) (or (N, L, D*H), or (L, D*H)) with D = 2 when bidirectional: the forward
 * direction's h_t, then the reverse direction's. h0 (and c0 for the LSTM) is
 * (num_layers*D, N, H) (unbatched: (num_layers*D, H)), layer-major as PyTorch, NULL for
 * zeros; *h_n (and *c_n) receive the final states in the same layout (pass NULL to
 * skip). batch_first changes the input and output only, never the states.
 *
 * weights[] holds, per layer and per direction (forward, then reverse), w_ih, w_hh, b_ih,
 * b_hh: n_weights = 4 * num_layers * D with biases, or 2 * num_layers * D (w_ih and w_hh
 * only) without. Layer 0's w_ih is (G*H, I), later layers' (G*H, D*H); w_hh (G*H, H);
 * biases (G*H). tg_rnn_weight_info gives each one's PyTorch name and shape.
 *
 * Each layer-direction computes its input projection for all time steps in one matmul
 * and one (N, H) @ (H, G*H) matmul per step; a step's temporaries die with the step
 * (only what backward needs stays, held by the graph). Errors as for the cells. */

typedef struct {
    int num_layers;     /* 0: 1 */
    bool bidirectional;
    bool batch_first;   /* input and output (N, L, feature) */
    double dropout;     /* in [0, 1]: dropout on the outputs of every layer but the last, when training */
    bool training;      /* dropout applies only when set (a module passes its train() state) */
    tg_rnn_nonlinearity nonlinearity; /* tg_rnn only: TG_RNN_TANH (default) or TG_RNN_RELU */
} tg_rnn_opts;

TG_API tg_tensor *tg_rnn(tg_tensor *input, tg_tensor *h0, int n_weights, tg_tensor *const *weights,
                         const tg_rnn_opts *opts, tg_tensor **h_n);
TG_API tg_tensor *tg_lstm(tg_tensor *input, tg_tensor *h0, tg_tensor *c0, int n_weights, tg_tensor *const *weights,
                          const tg_rnn_opts *opts, tg_tensor **h_n, tg_tensor **c_n);
TG_API tg_tensor *tg_gru(tg_tensor *input, tg_tensor *h0, int n_weights, tg_tensor *const *weights,
                         const tg_rnn_opts *opts, tg_tensor **h_n);

/* ---------------------------------------------------------------- weight names and shapes */

typedef enum { TG_RNN_MODE_RNN = 0, TG_RNN_MODE_LSTM = 1, TG_RNN_MODE_GRU = 2 } tg_rnn_mode;

typedef struct {
    char name[32];   /* PyTorch's: "weight_ih_l0", "bias_hh_l1_reverse" */
    tg_shape shape;  /* (G*H, I), (G*H, H) or (G*H) */
    int layer;       /* 0 .. num_layers-1 */
    int direction;   /* 0 forward, 1 reverse */
} tg_rnn_weight_desc;

/* How many weights a layer stack takes: (bias ? 4 : 2) * num_layers * D; -1 with a
 * message for bad options. */
TG_API int tg_rnn_num_weights(bool bias, const tg_rnn_opts *opts);
/* Describes weights[index] of a stack with these sizes, as torch.nn.RNN/LSTM/GRU name
 * and shape it. TG_ERR_INVALID for an index out of range or bad sizes or options. */
TG_API tg_status tg_rnn_weight_info(tg_rnn_mode mode, int64_t input_size, int64_t hidden_size, bool bias,
                                    const tg_rnn_opts *opts, int index, tg_rnn_weight_desc *out);

/* ---------------------------------------------------------------- modules
 * torch.nn.RNN / LSTM / GRU as modules: parameters named as PyTorch's (so state dicts
 * carry over), initialised U(-1/sqrt(hidden), 1/sqrt(hidden)), dropout between layers in
 * training mode only. tg_module_forward(m, x) gives the output from zero states;
 * tg_rnn_module_forward also takes initial states (NULL: zeros) and returns the final
 * ones (h_n, and c_n for an LSTM; NULL pointers skip them). */
typedef struct {
    int num_layers;     /* 0: 1 */
    bool no_bias;       /* PyTorch's bias=False */
    bool bidirectional;
    bool batch_first;
    double dropout;
    tg_rnn_nonlinearity nonlinearity; /* RNN only */
} tg_rnn_module_opts;
TG_API tg_module *tg_rnn_new(int64_t input_size, int64_t hidden_size, const tg_rnn_module_opts *opts, tg_device *dev);
TG_API tg_module *tg_lstm_new(int64_t input_size, int64_t hidden_size, const tg_rnn_module_opts *opts, tg_device *dev);
TG_API tg_module *tg_gru_new(int64_t input_size, int64_t hidden_size, const tg_rnn_module_opts *opts, tg_device *dev);
TG_API tg_tensor *tg_rnn_module_forward(tg_module *m, tg_tensor *x, tg_tensor *h0, tg_tensor *c0, tg_tensor **h_n,
                                        tg_tensor **c_n);

#ifdef __cplusplus
}
#endif
#endif
