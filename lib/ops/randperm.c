/* tg_randperm (torch.randperm): a random permutation drawn from the Philox generator.
 * Each index gets one uniform f64 key from the CPU backend's generator and the indices
 * are sorted by key, so the permutation depends only on (seed, counter), never on the
 * device it lands on or on the thread count. */
#include <stdlib.h>
#include <string.h>

#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"
#include "lib/ops/randperm.h"

typedef struct {
    double key;
    int64_t index;
} keyed;

/* Ties (one in 2^53 per pair) fall back to the index, so the order stays total. */
static int keyed_cmp(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* seed NULL: the process-wide generator (advancing its counter by n). */
static tg_status permute(int64_t n, const uint64_t *seed, uint64_t counter, int64_t *out) {
    if (n == 0) return TG_OK;
    tg_tensor *keys = tg_tensor_new_unscoped(TG_F64, 1, &n, tg_cpu_device());
    keyed *pairs = malloc((size_t)n * sizeof *pairs);
    tg_status st = TG_ERR_NOMEM;
    if (!keys || !pairs) goto fail;
    st = seed ? keys->storage->dev->be->random(TG_RNG_UNIFORM, keys, *seed, counter, 0, 1)
              : tg_random_fill(TG_RNG_UNIFORM, keys, 0, 1);
    if (st != TG_OK) goto fail;
    const double *k = (const double *)keys->storage->data + keys->offset;
    for (int64_t i = 0; i < n; i++) pairs[i] = (keyed){ k[i], i };
    qsort(pairs, (size_t)n, sizeof *pairs, keyed_cmp);
    for (int64_t i = 0; i < n; i++) out[i] = pairs[i].index;
fail:
    if (st == TG_ERR_NOMEM && tg_last_status() == TG_OK) tg_error(TG_ERR_NOMEM, "tg_randperm: out of host memory");
    free(pairs);
    if (keys) tg_tensor_decref(keys);
    return st;
}

tg_status tg_randperm_keyed(int64_t n, uint64_t seed, uint64_t counter, int64_t *out) {
    return permute(n, &seed, counter, out);
}

/* The largest n whose indices a dtype holds exactly. */
static int64_t dtype_limit(tg_dtype d) {
    switch (d) {
    case TG_U8: return (int64_t)1 << 8;
    case TG_I32: return (int64_t)1 << 31;
    case TG_F32: return (int64_t)1 << 24;
    case TG_F64: return (int64_t)1 << 53;
    default: return TG_MAX_NUMEL;
    }
}

tg_tensor *tg_randperm(int64_t n, tg_dtype dtype, tg_device *dev) {
    TG_API_ENTER("tg_randperm");
    if ((unsigned)dtype >= TG_NUM_DTYPES) return tg_error_null(TG_ERR_DTYPE, "tg_randperm: unknown dtype %d", (int)dtype);
    if (!dev) return tg_last_status() == TG_OK ? tg_error_null(TG_ERR_DEVICE, "tg_randperm: device is NULL") : NULL;
    if (n < 0) return tg_error_null(TG_ERR_INVALID, "tg_randperm: n must be >= 0, got %lld", (long long)n);
    if (n > dtype_limit(dtype))
        return tg_error_null(TG_ERR_INVALID, "tg_randperm: n %lld is too large for %s (at most %lld)", (long long)n,
                             tg_dtype_name(dtype), (long long)dtype_limit(dtype));
    int64_t *perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
    void *host = malloc((size_t)(n ? n : 1) * tg_elsize(dtype));
    tg_tensor *t = NULL;
    if (!perm || !host) {
        tg_error(TG_ERR_NOMEM, "tg_randperm: out of host memory");
        goto fail;
    }
    if (permute(n, NULL, 0, perm) != TG_OK) goto fail;
    for (int64_t i = 0; i < n; i++) {
        switch (dtype) {
        case TG_U8: ((uint8_t *)host)[i] = (uint8_t)perm[i]; break;
        case TG_I32: ((int32_t *)host)[i] = (int32_t)perm[i]; break;
        case TG_F32: ((float *)host)[i] = (float)perm[i]; break;
        case TG_F64: ((double *)host)[i] = (double)perm[i]; break;
        default: ((int64_t *)host)[i] = perm[i]; break;
        }
    }
    t = tg_from_data(host, dtype, TG_SHAPE(n), dev);
fail:
    free(perm);
    free(host);
    return t;
}
