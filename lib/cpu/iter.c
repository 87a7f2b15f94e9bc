/* The strided iterator: axis collapsing and row splitting over the thread pool. */
#include <string.h>

#include "lib/cpu/cpu.h"
#include "lib/cpu/threadpool.h"

void tg_cpu_iter_init(tg_cpu_iter *it, int ndim, const int64_t *shape, int nops,
                      char *const *base, const int64_t *const *strides, const size_t *sizes) {
    memset(it, 0, sizeof *it);
    it->nops = nops;
    for (int k = 0; k < nops; k++) it->base[k] = base[k];
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) { /* nothing to visit: one empty axis, no products of the others */
            it->ndim = 1;
            return;
        }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 1) continue;
        int d = it->ndim;
        bool merge = d > 0;
        for (int k = 0; k < nops && merge; k++) {
            int64_t span; /* a product past int64 cannot equal a real stride: no merge */
            merge = !__builtin_mul_overflow(strides[k][i] * (int64_t)sizes[k], shape[i], &span) &&
                    it->st[k][d - 1] == span;
        }
        if (merge) {
            it->shape[d - 1] *= shape[i];
            for (int k = 0; k < nops; k++) it->st[k][d - 1] = strides[k][i] * (int64_t)sizes[k];
            continue;
        }
        it->shape[d] = shape[i];
        for (int k = 0; k < nops; k++) it->st[k][d] = strides[k][i] * (int64_t)sizes[k];
        it->ndim++;
    }
    if (it->ndim == 0) { /* a single element */
        it->ndim = 1;
        it->shape[0] = 1;
        for (int k = 0; k < nops; k++) it->st[k][0] = (int64_t)sizes[k];
    }
}

typedef struct {
    const tg_cpu_iter *it;
    tg_cpu_row_fn fn;
    void *ctx;
} run_ctx;

/* Processes flat elements [begin, end) of the iteration space, row segment by segment. */
static void run_range(void *vctx, int64_t begin, int64_t end) {
    const run_ctx *rc = vctx;
    const tg_cpu_iter *it = rc->it;
    int last = it->ndim - 1;
    int64_t inner = it->shape[last];
    int64_t idx[TG_MAX_DIMS];
    int64_t pos = begin;
    for (int i = last; i >= 0; i--) {
        idx[i] = pos % it->shape[i];
        pos /= it->shape[i];
    }
    int64_t st[TG_ITER_MAX_OPS];
    for (int k = 0; k < it->nops; k++) st[k] = it->st[k][last];
    for (int64_t cur = begin; cur < end;) {
        char *p[TG_ITER_MAX_OPS];
        for (int k = 0; k < it->nops; k++) {
            int64_t off = 0;
            for (int i = 0; i <= last; i++) off += idx[i] * it->st[k][i];
            p[k] = it->base[k] + off;
        }
        int64_t n = inner - idx[last];
        if (n > end - cur) n = end - cur;
        rc->fn(rc->ctx, n, p, st);
        cur += n;
        idx[last] += n;
        for (int i = last; i > 0 && idx[i] == it->shape[i]; i--) {
            idx[i] = 0;
            idx[i - 1]++;
        }
    }
}

void tg_cpu_iter_run(const tg_cpu_iter *it, bool parallel, int64_t grain, tg_cpu_row_fn fn, void *ctx) {
    int64_t total = 1;
    for (int i = 0; i < it->ndim; i++) total *= it->shape[i];
    if (total == 0) return;
    run_ctx rc = { it, fn, ctx };
    if (parallel && total >= grain)
        tg_pool_parallel_for(total, grain, run_range, &rc);
    else
        run_range(&rc, 0, total);
}
