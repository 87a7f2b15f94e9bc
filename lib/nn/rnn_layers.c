/* RNN, LSTM and GRU modules: the weights tg_rnn / tg_lstm / tg_gru take, registered
 * under torch.nn's names (weight_ih_l0, bias_hh_l1_reverse, ...) with torch.nn's init,
 * U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) for every weight and bias. The forward
 * passes the module's train/eval mode to the layer's dropout. Compositions only. */
#include <math.h>

#include "lib/graph/error.h"
#include "tapegrad/rnn.h"

#define MAX_LAYERS 16
#define MAX_WEIGHTS (4 * 2 * MAX_LAYERS)

typedef struct {
    tg_rnn_mode mode;
    int64_t input_size, hidden_size;
    bool bias;
    tg_rnn_opts opts;
    int n;
    tg_tensor *w[MAX_WEIGHTS]; /* n slots, in tg_rnn_weight_info's order (the registry rewrites them in place) */
} rnn_module;

static tg_tensor *run(tg_module *self, tg_tensor *x, tg_tensor *h0, tg_tensor *c0, tg_tensor **h_n, tg_tensor **c_n) {
    rnn_module *r = tg_module_data(self);
    tg_rnn_opts o = r->opts;
    o.training = tg_module_is_training(self);
    switch (r->mode) {
    case TG_RNN_MODE_LSTM: return tg_lstm(x, h0, c0, r->n, r->w, &o, h_n, c_n);
    case TG_RNN_MODE_GRU: return tg_gru(x, h0, r->n, r->w, &o, h_n);
    default: return tg_rnn(x, h0, r->n, r->w, &o, h_n);
    }
}

static tg_tensor *forward(tg_module *self, tg_tensor *x) { return run(self, x, NULL, NULL, NULL, NULL); }

static int describe(const tg_module *self, char *buf, size_t size) {
    const rnn_module *r = tg_module_data(self);
    return snprintf(buf, size, "%lld, %lld, num_layers=%d, bias=%s, batch_first=%s, dropout=%g, bidirectional=%s",
                    (long long)r->input_size, (long long)r->hidden_size, r->opts.num_layers ? r->opts.num_layers : 1,
                    r->bias ? "true" : "false", r->opts.batch_first ? "true" : "false", r->opts.dropout,
                    r->opts.bidirectional ? "true" : "false");
}

static const tg_module_type k_types[3] = {
    { "RNN", sizeof(rnn_module), forward, NULL, NULL, describe },
    { "LSTM", sizeof(rnn_module), forward, NULL, NULL, describe },
    { "GRU", sizeof(rnn_module), forward, NULL, NULL, describe },
};

static tg_module *make(tg_rnn_mode mode, int64_t input_size, int64_t hidden_size, const tg_rnn_module_opts *opts,
                       tg_device *dev) {
    tg_rnn_module_opts none = { 0 };
    if (!opts) opts = &none;
    tg_rnn_opts o = { .num_layers = opts->num_layers, .bidirectional = opts->bidirectional,
                      .batch_first = opts->batch_first, .dropout = opts->dropout, .nonlinearity = opts->nonlinearity };
    bool bias = !opts->no_bias;
    int n = tg_rnn_num_weights(bias, &o);
    if (o.num_layers > MAX_LAYERS)
        return tg_error_null(TG_ERR_INVALID, "%s_new: num_layers %d is more than the %d a module holds",
                             mode == TG_RNN_MODE_LSTM ? "tg_lstm" : mode == TG_RNN_MODE_GRU ? "tg_gru" : "tg_rnn",
                             o.num_layers, MAX_LAYERS);
    tg_rnn_weight_desc d;
    if (n < 0 || tg_rnn_weight_info(mode, input_size, hidden_size, bias, &o, 0, &d) != TG_OK) return NULL;
    tg_module *self = tg_module_new(&k_types[mode]);
    if (!self) return NULL;
    rnn_module *r = tg_module_data(self);
    r->mode = mode, r->input_size = input_size, r->hidden_size = hidden_size, r->bias = bias, r->opts = o, r->n = n;
    double bound = hidden_size > 0 ? 1 / sqrt((double)hidden_size) : 0;
    for (int i = 0; i < n; i++) {
        tg_rnn_weight_info(mode, input_size, hidden_size, bias, &o, i, &d);
        tg_tensor *t = tg_empty(TG_F32, d.shape, dev);
        if (t && tg_init_uniform_(t, -bound, bound) != TG_OK) t = NULL;
        tg_module_param(self, d.name, &r->w[i], t);
    }
    return tg_module_done(self);
}

tg_module *tg_rnn_new(int64_t input_size, int64_t hidden_size, const tg_rnn_module_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_rnn_new");
    return make(TG_RNN_MODE_RNN, input_size, hidden_size, opts, dev);
}

tg_module *tg_lstm_new(int64_t input_size, int64_t hidden_size, const tg_rnn_module_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_lstm_new");
    return make(TG_RNN_MODE_LSTM, input_size, hidden_size, opts, dev);
}

tg_module *tg_gru_new(int64_t input_size, int64_t hidden_size, const tg_rnn_module_opts *opts, tg_device *dev) {
    TG_API_ENTER("tg_gru_new");
    return make(TG_RNN_MODE_GRU, input_size, hidden_size, opts, dev);
}

tg_tensor *tg_rnn_module_forward(tg_module *m, tg_tensor *x, tg_tensor *h0, tg_tensor *c0, tg_tensor **h_n,
                                 tg_tensor **c_n) {
    TG_API_ENTER("tg_rnn_module_forward");
    if (!m || !(tg_module_is(m, &k_types[0]) || tg_module_is(m, &k_types[1]) || tg_module_is(m, &k_types[2])))
        return tg_error_null(TG_ERR_INVALID, "tg_rnn_module_forward: not an RNN, LSTM or GRU module");
    return run(m, x, h0, c0, h_n, c_n);
}
