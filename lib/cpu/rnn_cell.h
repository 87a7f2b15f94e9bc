/* The LSTM cell's pointwise part on the CPU (rnn_cell.c): the backend entries of the
 * same names in lib/graph/backend.h. Dense tensors of one float dtype (f32, f64). */
#ifndef TG_CPU_RNN_CELL_H
#define TG_CPU_RNN_CELL_H

#include "lib/graph/tensor-impl.h"

tg_status tg_cpu_lstm_pointwise(tg_tensor *h, tg_tensor *c, tg_tensor *ws, const tg_tensor *gates,
                                const tg_tensor *hidden, const tg_tensor *c_prev);
tg_status tg_cpu_lstm_pointwise_backward(tg_tensor *dgates, tg_tensor *dc_prev, const tg_tensor *dh,
                                         const tg_tensor *dc, const tg_tensor *ws, const tg_tensor *c_prev);

#endif
