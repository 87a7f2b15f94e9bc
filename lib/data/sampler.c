/* The sampler: which dataset indices an epoch visits and in which order, with torch's
 * DistributedSampler semantics (shuffle by seed + epoch, pad by wrapping or drop the
 * uneven tail, rank r takes every num_replicas-th index). A pure function of its
 * arguments, so the loader, the MPI layer and tests compute the same indices. */
#include <stdlib.h>

#include "lib/graph/error.h"
#include "lib/ops/randperm.h"
#include "tapegrad/data.h"

/* Replicas and rank from opts, or false with a message naming the caller. */
static bool sharding(const char *name, int64_t n, const tg_sampler_opts *o, int64_t *replicas, int64_t *rank) {
    *replicas = o && o->num_replicas ? o->num_replicas : 1;
    *rank = o ? o->rank : 0;
    if (n < 0) return tg_error(TG_ERR_INVALID, "%s: n must be >= 0, got %lld", name, (long long)n), false;
    if (*replicas < 0)
        return tg_error(TG_ERR_INVALID, "%s: num_replicas must be >= 1, got %lld", name, (long long)*replicas), false;
    if (*rank < 0 || *rank >= *replicas)
        return tg_error(TG_ERR_INVALID, "%s: invalid rank %lld, rank should be in the interval [0, %lld]", name,
                        (long long)*rank, (long long)(*replicas - 1)), false;
    return true;
}

/* torch: drop_last with an uneven split gives ceil((n - R) / R) = floor(n / R) a rank,
 * else ceil(n / R). */
static int64_t per_rank(int64_t n, int64_t replicas, bool drop_last) {
    if (drop_last && n % replicas) return n / replicas;
    return n / replicas + (n % replicas != 0);
}

int64_t tg_sampler_len(int64_t n, const tg_sampler_opts *opts) {
    TG_API_ENTER("tg_sampler_len");
    int64_t replicas, rank;
    if (!sharding("tg_sampler_len", n, opts, &replicas, &rank)) return -1;
    return per_rank(n, replicas, opts && opts->drop_last);
}

int64_t tg_sampler_indices(int64_t n, int64_t epoch, const tg_sampler_opts *opts, int64_t *out, int64_t max_out) {
    TG_API_ENTER("tg_sampler_indices");
    int64_t replicas, rank;
    if (!sharding("tg_sampler_indices", n, opts, &replicas, &rank)) return -1;
    int64_t count = per_rank(n, replicas, opts && opts->drop_last);
    if (count > 0 && !out) return tg_error(TG_ERR_INVALID, "tg_sampler_indices: out is NULL"), -1;
    if (max_out < count)
        return tg_error(TG_ERR_INVALID, "tg_sampler_indices: out holds %lld indices, the epoch has %lld",
                        (long long)max_out, (long long)count), -1;
    if (count == 0) return 0;
    int64_t *order = malloc((size_t)n * sizeof *order);
    if (!order) return tg_error(TG_ERR_NOMEM, "tg_sampler_indices: out of host memory"), -1;
    if (opts && opts->shuffle) {
        if (tg_randperm_keyed(n, opts->seed + (uint64_t)epoch, 0, order) != TG_OK) {
            free(order);
            return -1;
        }
    } else {
        for (int64_t i = 0; i < n; i++) order[i] = i;
    }
    /* Entry k of the padded (or cut) list of total = count * replicas is order[k % n]. */
    for (int64_t j = 0; j < count; j++) out[j] = order[(rank + j * replicas) % n];
    free(order);
    return count;
}
