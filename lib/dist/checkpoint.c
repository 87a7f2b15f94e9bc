/* Checkpoints in a world of ranks: a function (a save) run on one rank with its status
 * given to all, and a state dict broadcast from one rank (which loaded it) to every
 * other, names, dtypes and shapes first, then the values. Generic over tg_state_dict:
 * the file format is the caller's. */
#include <stdlib.h>
#include <string.h>

#include "lib/dist/dist-impl.h"
#include "lib/graph/error.h"

static bool bad_root(const char *api, int root) {
    if (root >= 0 && root < tg_dist_world_size()) return false;
    tg_error(TG_ERR_INVALID, "%s: root %d is not a rank of this world of %d", api, root, tg_dist_world_size());
    return true;
}

tg_status tg_dist_run_on_root(int root, tg_status (*fn)(void *ctx), void *ctx) {
    TG_API_ENTER("tg_dist_run_on_root");
    if (bad_root("tg_dist_run_on_root", root)) return tg_last_status();
    struct {
        int32_t st;
        char msg[500];
    } r = { 0 };
    if (tg_dist_rank() == root) {
        if (!fn) r.st = tg_error(TG_ERR_INVALID, "tg_dist_run_on_root: fn is NULL");
        else {
            tg_api_saved sv = tg_api_suspend(); /* fn's own calls name themselves */
            r.st = fn(ctx);
            tg_api_resume(sv);
        }
        if (r.st != TG_OK) snprintf(r.msg, sizeof r.msg, "%s", tg_last_error());
    }
    tg_dist_bcast_bytes(&r, sizeof r, root, "tg_dist_run_on_root");
    tg_dist_barrier();
    if (r.st == TG_OK) return TG_OK;
    return tg_error((tg_status)r.st, "tg_dist_run_on_root: failed on rank %d: %s", root, r.msg);
}

/* Root's names, dtypes and shapes as bytes: per entry u32 name length, the name, i32
 * dtype, i32 ndim, i64 dims. */
static char *pack_meta(const tg_state_dict *sd, int64_t *size) {
    int n = tg_state_dict_size(sd);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += 4 + strlen(tg_state_dict_name(sd, i)) + 8 + 8 * TG_MAX_DIMS;
    char *buf = malloc(total ? total : 1), *p = buf;
    if (!buf) return NULL;
    for (int i = 0; i < n; i++) {
        const char *name = tg_state_dict_name(sd, i);
        tg_tensor *t = tg_state_dict_tensor(sd, i);
        uint32_t len = (uint32_t)strlen(name);
        int32_t dt = (int32_t)tg_dtype_of(t), nd = tg_ndim(t);
        memcpy(p, &len, 4), p += 4;
        memcpy(p, name, len), p += len;
        memcpy(p, &dt, 4), p += 4;
        memcpy(p, &nd, 4), p += 4;
        for (int k = 0; k < nd; k++) {
            int64_t d = tg_size(t, k);
            memcpy(p, &d, 8), p += 8;
        }
    }
    *size = p - buf;
    return buf;
}

/* Entry i of a packed list: its name (copied into name) and shape; advances *p. */
static void unpack_entry(const char **p, char *name, size_t name_size, tg_dtype *dt, tg_shape *s) {
    uint32_t len;
    int32_t d, nd;
    memcpy(&len, *p, 4), *p += 4;
    snprintf(name, name_size, "%.*s", (int)len, *p), *p += len;
    memcpy(&d, *p, 4), *p += 4;
    memcpy(&nd, *p, 4), *p += 4;
    *dt = (tg_dtype)d;
    s->ndim = nd;
    for (int k = 0; k < nd; k++) memcpy(&s->dims[k], *p, 8), *p += 8;
}

/* Receives (or, on root, sends) each value into out. */
static tg_status move_values(const tg_state_dict *sd, int root, const char *meta, int64_t n, tg_device *dev,
                             tg_state_dict *out) {
    bool me = tg_dist_rank() == root;
    char name[1024];
    tg_status st = TG_OK;
    for (int64_t i = 0; i < n; i++) {
        tg_dtype dt;
        tg_shape s;
        unpack_entry(&meta, name, sizeof name, &dt, &s);
        int64_t numel = 1;
        for (int k = 0; k < s.ndim; k++) numel *= s.dims[k];
        size_t nbytes = (size_t)numel * tg_dtype_size(dt);
        void *host = malloc(nbytes ? nbytes : 1);
        if (!host) {
            fprintf(stderr, "tg_dist_broadcast_state_dict: rank %d: out of host memory\n", tg_dist_rank());
            abort(); /* the others wait in the broadcast */
        }
        tg_tensor *t = me ? tg_state_dict_tensor(sd, (int)i) : NULL;
        if (me && st == TG_OK) st = tg_copy_to_host(t, host, nbytes);
        tg_dist_bcast_bytes(host, nbytes, root, "tg_dist_broadcast_state_dict");
        if (!me && st == TG_OK) st = (t = tg_from_data(host, dt, s, dev)) ? TG_OK : tg_last_status();
        if (st == TG_OK) st = tg_state_dict_set(out, name, t);
        free(host);
    }
    return st;
}

tg_state_dict *tg_dist_broadcast_state_dict(const tg_state_dict *sd, int root, tg_device *dev) {
    TG_API_ENTER("tg_dist_broadcast_state_dict");
    if (bad_root("tg_dist_broadcast_state_dict", root)) return NULL;
    bool me = tg_dist_rank() == root;
    if (!dev && !(dev = tg_device_get("cpu"))) return NULL;
    int64_t head[2] = { -1, 0 }; /* entries (-1: root has no state dict), meta bytes */
    char *meta = NULL;
    if (me && sd) {
        if (!(meta = pack_meta(sd, &head[1]))) {
            fprintf(stderr, "tg_dist_broadcast_state_dict: rank %d: out of host memory\n", root);
            abort();
        }
        head[0] = tg_state_dict_size(sd);
    }
    tg_dist_bcast_bytes(head, sizeof head, root, "tg_dist_broadcast_state_dict");
    if (head[0] < 0) return tg_error_null(TG_ERR_INVALID, "tg_dist_broadcast_state_dict: sd is NULL on root %d", root);
    if (!me && !(meta = malloc((size_t)head[1] + 1))) {
        fprintf(stderr, "tg_dist_broadcast_state_dict: rank %d: out of host memory\n", tg_dist_rank());
        abort();
    }
    tg_dist_bcast_bytes(meta, (size_t)head[1], root, "tg_dist_broadcast_state_dict");
    tg_state_dict *out = tg_state_dict_new();
    tg_status st = out ? move_values(sd, root, meta, head[0], dev, out) : tg_last_status();
    free(meta);
    if (st == TG_OK) return out;
    tg_state_dict_free(out);
    return NULL;
}
