/* 2-D pooling on the CPU (pool.c): the backend entries, and the plain reference loops
 * they are checked against. Every tensor is dense NCHW of one float dtype (f32, f64);
 * indices are i64 positions in each H*W plane. */
#ifndef TG_CPU_POOL_H
#define TG_CPU_POOL_H

#include "lib/graph/tensor-impl.h"

/* The backend entries: the fast path, threaded over rows (forward) or planes
 * (backward, unpool). indices may be NULL for max pooling when nobody reads them. */
tg_status tg_cpu_pool2d(tg_pool_kind kind, tg_tensor *out, tg_tensor *indices, const tg_tensor *x,
                        const tg_pool2d_geom *g);
tg_status tg_cpu_pool2d_backward(tg_pool_kind kind, tg_tensor *dx, const tg_tensor *dout, const tg_tensor *indices,
                                 const tg_pool2d_geom *g);
tg_status tg_cpu_max_unpool2d(tg_tensor *out, const tg_tensor *x, const tg_tensor *indices, const tg_pool2d_geom *g);

/* The oracle: one output element at a time, single-threaded, PyTorch's loops spelled
 * out (accumulating in double). Same contracts as the entries above. */
tg_status tg_cpu_pool2d_ref(tg_pool_kind kind, tg_tensor *out, tg_tensor *indices, const tg_tensor *x,
                            const tg_pool2d_geom *g);
tg_status tg_cpu_pool2d_backward_ref(tg_pool_kind kind, tg_tensor *dx, const tg_tensor *dout,
                                     const tg_tensor *indices, const tg_pool2d_geom *g);

#endif
