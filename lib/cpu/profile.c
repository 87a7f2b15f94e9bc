/* TG_CPU_PROFILE=1: the CPU device's kernels timed by kind (wall time on the calling
 * thread, so a threaded kernel counts once), with a table of calls and milliseconds
 * printed to stderr at exit. Off by default; a wrapper table replaces the plain one
 * when the device is first opened, so the plain path pays nothing. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lib/cpu/conv/conv.h"
#include "lib/cpu/cpu.h"
#include "lib/cpu/norm.h"
#include "lib/cpu/pool.h"
#include "lib/cpu/profile.h"

enum { K_CONV, K_CONV_BD, K_CONV_BW, K_BN, K_BN_BW, K_POOL, K_POOL_BW, K_UNARY, K_BINARY,
       K_OTHER_EW, K_REDUCE, K_MATMUL, K_AXPY, K_NKINDS };
static const char *const kind_names[K_NKINDS] = {
    "conv2d forward", "conv2d backward data", "conv2d backward weight", "batch_norm forward",
    "batch_norm backward", "pool forward", "pool backward", "unary elementwise",
    "binary elementwise", "fill/copy/where", "reduce", "matmul", "axpy (SGD)",
};
static atomic_llong g_ns[K_NKINDS], g_calls[K_NKINDS];
static tg_backend g_plain; /* the table the wrappers call */

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static tg_status timed(int k, long long t0, tg_status st)
{
    atomic_fetch_add(&g_ns[k], now_ns() - t0);
    atomic_fetch_add(&g_calls[k], 1);
    return st;
}

#define TIMED(k, call) long long t0_ = now_ns(); return timed(k, t0_, g_plain.call)

static tg_status p_fill(tg_tensor *o, double v) { TIMED(K_OTHER_EW, fill(o, v)); }
static tg_status p_copy(tg_tensor *o, const tg_tensor *x) { TIMED(K_OTHER_EW, copy(o, x)); }
static tg_status p_unary(tg_unary_op op, tg_tensor *o, const tg_tensor *x, double a, double b) { TIMED(K_UNARY, unary(op, o, x, a, b)); }
static tg_status p_binary(tg_binary_op op, tg_tensor *o, const tg_tensor *a, const tg_tensor *b) { TIMED(K_BINARY, binary(op, o, a, b)); }
static tg_status p_where(tg_tensor *o, const tg_tensor *c, const tg_tensor *a, const tg_tensor *b) { TIMED(K_OTHER_EW, where(o, c, a, b)); }
static tg_status p_reduce(tg_reduce_op op, tg_tensor *o, const tg_tensor *x, uint32_t m) { TIMED(K_REDUCE, reduce(op, o, x, m)); }
static tg_status p_matmul(tg_tensor *o, const tg_tensor *a, const tg_tensor *b) { TIMED(K_MATMUL, matmul(o, a, b)); }
static tg_status p_axpy(tg_tensor *d, double al, const tg_tensor *x) { TIMED(K_AXPY, axpy(d, al, x)); }
/* relu's fused backward counts as the binary kernel (dout * step(x)) it replaces */
static tg_status p_thr_bw(tg_tensor *dx, const tg_tensor *d, const tg_tensor *x, double th) { TIMED(K_BINARY, threshold_backward(dx, d, x, th)); }
static tg_status p_conv(tg_tensor *o, const tg_tensor *x, const tg_tensor *w, const tg_tensor *b, const tg_conv2d_geom *g) { TIMED(K_CONV, conv2d(o, x, w, b, g)); }
static tg_status p_conv_fused(tg_tensor *o, const tg_tensor *x, const tg_tensor *w, const tg_tensor *b, const tg_conv_epilogue *e, const tg_conv2d_geom *g) { TIMED(K_CONV, conv2d_fused(o, x, w, b, e, g)); }
static tg_status p_conv_bd(tg_tensor *dx, const tg_tensor *d, const tg_tensor *w, const tg_conv2d_geom *g) { TIMED(K_CONV_BD, conv2d_backward_data(dx, d, w, g)); }
static tg_status p_conv_bw(tg_tensor *dw, const tg_tensor *d, const tg_tensor *x, const tg_conv2d_geom *g) { TIMED(K_CONV_BW, conv2d_backward_weight(dw, d, x, g)); }
static tg_status p_pool(tg_pool_kind k, tg_tensor *o, tg_tensor *i, const tg_tensor *x, const tg_pool2d_geom *g) { TIMED(K_POOL, pool2d(k, o, i, x, g)); }
static tg_status p_pool_bw(tg_pool_kind k, tg_tensor *dx, const tg_tensor *d, const tg_tensor *i, const tg_pool2d_geom *g) { TIMED(K_POOL_BW, pool2d_backward(k, dx, d, i, g)); }
static TG_CPU_NORM_DECL(p_bn) { TIMED(K_BN, batch_norm(out, save_mean, save_invstd, running_mean, running_var, x, weight, bias, p)); }
static TG_CPU_NORM_DECL(p_bn_relu) { TIMED(K_BN, batch_norm_relu(out, save_mean, save_invstd, running_mean, running_var, x, weight, bias, p)); }
static TG_CPU_NORM_BW_DECL(p_bn_bw) { TIMED(K_BN_BW, batch_norm_backward(dx, dweight, dbias, dout, x, weight, save_mean, save_invstd, p)); }
static TG_CPU_NORM_ADD_DECL(p_bn_add) { TIMED(K_BN, batch_norm_add(out, save_mean, save_invstd, running_mean, running_var, x, residual, weight, bias, p)); }
static TG_CPU_NORM_RELU_BW_DECL(p_bn_relu_bw) { TIMED(K_BN_BW, batch_norm_relu_backward(dx, dweight, dbias, dout, relu_out, x, weight, save_mean, save_invstd, p)); }

static void report(void)
{
    long long total = 0;
    for (int k = 0; k < K_NKINDS; k++)
        total += atomic_load(&g_ns[k]);
    fflush(stdout);
    fprintf(stderr, "TG_CPU_PROFILE: CPU kernel time by kind (wall time on the calling thread)\n");
    for (int k = 0; k < K_NKINDS; k++) {
        long long ns = atomic_load(&g_ns[k]), calls = atomic_load(&g_calls[k]);
        if (calls)
            fprintf(stderr, "  %-24s %8lld calls %10.1f ms %5.1f%%\n", kind_names[k], calls, ns * 1e-6,
                    total ? 100.0 * (double)ns / (double)total : 0.0);
    }
    fprintf(stderr, "  %-24s %8s       %10.1f ms\n", "all kernels", "", total * 1e-6);
}

const tg_backend *tg_cpu_profiled(const tg_backend *plain)
{
    const char *e = getenv("TG_CPU_PROFILE");
    if (!e || e[0] != '1')
        return plain;
    static tg_backend t;
    g_plain = t = *plain;
    t.fill = p_fill, t.copy = p_copy, t.unary = p_unary, t.binary = p_binary, t.where = p_where;
    t.reduce = p_reduce, t.matmul = p_matmul, t.axpy = plain->axpy ? p_axpy : NULL;
    t.threshold_backward = plain->threshold_backward ? p_thr_bw : NULL;
    t.conv2d = p_conv, t.conv2d_fused = plain->conv2d_fused ? p_conv_fused : NULL;
    t.conv2d_backward_data = p_conv_bd, t.conv2d_backward_weight = p_conv_bw;
    t.pool2d = p_pool, t.pool2d_backward = p_pool_bw, t.batch_norm = p_bn, t.batch_norm_backward = p_bn_bw;
    t.batch_norm_relu = plain->batch_norm_relu ? p_bn_relu : NULL;
    t.batch_norm_relu_backward = plain->batch_norm_relu_backward ? p_bn_relu_bw : NULL;
    t.batch_norm_add = plain->batch_norm_add ? p_bn_add : NULL;
    atexit(report);
    return &t;
}
