/* The CPU normalisation kernels (norm.c): the fast ones the backend table holds and
 * the plain references they are checked against (one thread, every sum in double). The
 * arguments are the backend entries' (lib/graph/backend.h). */
#ifndef TG_CPU_NORM_H
#define TG_CPU_NORM_H

#include "lib/graph/tensor-impl.h"

#define TG_CPU_NORM_DECL(name)                                                                                   \
    tg_status name(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, tg_tensor *running_mean,     \
                   tg_tensor *running_var, const tg_tensor *x, const tg_tensor *weight, const tg_tensor *bias, \
                   const tg_norm_params *p)
#define TG_CPU_NORM_AFFINE_DECL(name)                                                                            \
    tg_status name(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, const tg_tensor *x,          \
                   const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p)
#define TG_CPU_NORM_BW_DECL(name)                                                                                \
    tg_status name(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,                \
                   const tg_tensor *x, const tg_tensor *weight, const tg_tensor *save_mean,                  \
                   const tg_tensor *save_invstd, const tg_norm_params *p)

#define TG_CPU_NORM_RELU_BW_DECL(name)                                                                           \
    tg_status name(tg_tensor *dx, tg_tensor *dweight, tg_tensor *dbias, const tg_tensor *dout,                \
                   const tg_tensor *relu_out, const tg_tensor *x, const tg_tensor *weight,                    \
                   const tg_tensor *save_mean, const tg_tensor *save_invstd, const tg_norm_params *p)

#define TG_CPU_NORM_ADD_DECL(name)                                                                               \
    tg_status name(tg_tensor *out, tg_tensor *save_mean, tg_tensor *save_invstd, tg_tensor *running_mean,     \
                   tg_tensor *running_var, const tg_tensor *x, const tg_tensor *residual,                     \
                   const tg_tensor *weight, const tg_tensor *bias, const tg_norm_params *p)

TG_CPU_NORM_DECL(tg_cpu_batch_norm);
TG_CPU_NORM_ADD_DECL(tg_cpu_batch_norm_add); /* batch_norm(x) + residual, relu of it where p->relu */
TG_CPU_NORM_DECL(tg_cpu_batch_norm_relu); /* relu(batch_norm(x)) */
TG_CPU_NORM_BW_DECL(tg_cpu_batch_norm_backward);
TG_CPU_NORM_RELU_BW_DECL(tg_cpu_batch_norm_relu_backward); /* dout masked by relu_out > 0 */
TG_CPU_NORM_AFFINE_DECL(tg_cpu_layer_norm);
TG_CPU_NORM_BW_DECL(tg_cpu_layer_norm_backward);
TG_CPU_NORM_AFFINE_DECL(tg_cpu_group_norm);
TG_CPU_NORM_BW_DECL(tg_cpu_group_norm_backward);

/* The references (the oracle of tests/test_norm.c). */
TG_CPU_NORM_DECL(tg_cpu_batch_norm_ref);
TG_CPU_NORM_DECL(tg_cpu_batch_norm_relu_ref);
TG_CPU_NORM_ADD_DECL(tg_cpu_batch_norm_add_ref);
TG_CPU_NORM_BW_DECL(tg_cpu_batch_norm_backward_ref);
TG_CPU_NORM_RELU_BW_DECL(tg_cpu_batch_norm_relu_backward_ref);
TG_CPU_NORM_AFFINE_DECL(tg_cpu_layer_norm_ref);
TG_CPU_NORM_BW_DECL(tg_cpu_layer_norm_backward_ref);
TG_CPU_NORM_AFFINE_DECL(tg_cpu_group_norm_ref);
TG_CPU_NORM_BW_DECL(tg_cpu_group_norm_backward_ref);

#endif
