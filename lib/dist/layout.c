/* Do all ranks hold the same tensors? A hash of every (name, dtype, shape) is gathered
 * from every rank; only when they differ are rank 0's lists broadcast, so that each
 * rank can name the first difference and every rank fails with the same message. */
#include <stdlib.h>
#include <string.h>

#include "lib/dist/dist-impl.h"
#include "lib/graph/error.h"

enum { NAME_LEN = 112, DESC_LEN = 200 };

typedef struct {
    int32_t dtype, ndim;
    int64_t dims[TG_MAX_DIMS];
    char name[NAME_LEN];
} record;

typedef struct {
    int64_t first_diff; /* -1: as rank 0 */
    int64_t n;
    char desc[DESC_LEN]; /* this rank's entry at first_diff */
} verdict;

static void fill(record *r, const char *name, tg_tensor *t) {
    memset(r, 0, sizeof *r);
    r->dtype = (int32_t)tg_dtype_of(t);
    r->ndim = tg_ndim(t);
    for (int k = 0; k < r->ndim; k++) r->dims[k] = tg_size(t, k);
    snprintf(r->name, sizeof r->name, "%s", name ? name : "");
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

/* "'fc.weight' f32 [10,20]", or "missing" past the end of a list of n. */
static void describe(char *buf, size_t size, const record *rs, int64_t n, int64_t i) {
    if (i >= n) {
        snprintf(buf, size, "missing");
        return;
    }
    const record *r = &rs[i];
    int len = snprintf(buf, size, "'%s' %s [", r->name, tg_dtype_name((tg_dtype)r->dtype));
    for (int k = 0; k < r->ndim && len >= 0 && (size_t)len < size; k++)
        len += snprintf(buf + len, size - (size_t)len, "%s%lld", k ? "," : "", (long long)r->dims[k]);
    if (len >= 0 && (size_t)len < size) snprintf(buf + len, size - (size_t)len, "]");
}

static int64_t first_difference(const record *a, int64_t na, const record *b, int64_t nb) {
    int64_t n = na < nb ? na : nb;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof *a) != 0) return i;
    return na == nb ? -1 : n;
}

/* Rank 0's records on every rank, then each rank's verdict on every rank. */
static tg_status compare_lists(const char *api, const char *what, const record *mine, int64_t n, verdict *all) {
    int size = tg_dist_world_size(), rank = tg_dist_rank();
    int64_t n0 = n;
    tg_dist_bcast_bytes(&n0, sizeof n0, 0, "the layout check");
    record *r0 = rank == 0 ? (record *)mine : calloc((size_t)(n0 ? n0 : 1), sizeof *r0);
    if (!r0) {
        fprintf(stderr, "%s: rank %d: out of host memory in the layout check\n", api, rank);
        abort(); /* the others wait in the broadcast: no message could reach them */
    }
    tg_dist_bcast_bytes(r0, (size_t)n0 * sizeof *r0, 0, "the layout check");
    verdict v = { .first_diff = first_difference(mine, n, r0, n0), .n = n };
    if (v.first_diff >= 0) describe(v.desc, sizeof v.desc, mine, n, v.first_diff);
    tg_dist_allgather_bytes(&v, all, sizeof v, "the layout check");
    for (int r = 1; r < size; r++) {
        if (all[r].first_diff < 0) continue;
        char d0[DESC_LEN];
        describe(d0, sizeof d0, r0, n0, all[r].first_diff);
        if (r0 != mine) free(r0);
        return tg_error(TG_ERR_INVALID, "%s: rank %d differs from rank 0 in %s %lld: %s on rank %d, %s on rank 0 (%lld "
                        "%ss on rank %d, %lld on rank 0)", api, r, what, (long long)all[r].first_diff, all[r].desc, r,
                        d0, (long long)all[r].n, what, r, (long long)n0);
    }
    if (r0 != mine) free(r0);
    return TG_OK; /* hashes differed but the lists agree: only a collision can do that */
}

tg_status tg_dist_check_layout(const char *api, const char *what, int n, char *const *names, tg_tensor *const *tensors) {
    int size = tg_dist_world_size();
    if (size == 1) return TG_OK;
    record *mine = calloc((size_t)(n ? n : 1), sizeof *mine);
    uint64_t (*hashes)[2] = calloc((size_t)size, sizeof *hashes);
    verdict *all = calloc((size_t)size, sizeof *all);
    if (!mine || !hashes || !all) {
        fprintf(stderr, "%s: rank %d: out of host memory in the layout check\n", api, tg_dist_rank());
        abort(); /* a rank that cannot take part would leave the others waiting */
    }
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        fill(&mine[i], names ? names[i] : NULL, tensors[i]);
        h = fnv1a(h, &mine[i], sizeof mine[i]);
    }
    uint64_t me[2] = { h, (uint64_t)n };
    tg_dist_allgather_bytes(me, hashes, sizeof me, "the layout check");
    bool same = true;
    for (int r = 1; r < size; r++) same = same && hashes[r][0] == hashes[0][0] && hashes[r][1] == hashes[0][1];
    tg_status st = same ? TG_OK : compare_lists(api, what, mine, n, all);
    free(mine);
    free(hashes);
    free(all);
    return st;
}
