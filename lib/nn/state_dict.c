/* State dicts: (name, tensor) lists in a module's order, and loading one back with a
 * message that lists every difference. A load checks everything before it copies
 * anything, so a failed load leaves the module as it was. */
#include <stdlib.h>
#include <string.h>

#include "lib/nn/module-impl.h"

struct tg_state_dict {
    int n, cap;
    char **names;
    tg_tensor **tensors; /* owned references */
};


tg_state_dict *tg_state_dict_new(void) {
    tg_state_dict *sd = calloc(1, sizeof *sd);
    return sd ? sd : tg_error_null(TG_ERR_NOMEM, "tg_state_dict_new: out of memory");
}

void tg_state_dict_free(tg_state_dict *sd) {
    if (!sd) return;
    for (int i = 0; i < sd->n; i++) {
        free(sd->names[i]);
        tg_release(sd->tensors[i]);
    }
    free(sd->names);
    free(sd->tensors);
    free(sd);
}

static int find(const tg_state_dict *sd, const char *name) {
    for (int i = 0; i < sd->n; i++)
        if (!strcmp(sd->names[i], name)) return i;
    return -1;
}

/* Stores an owned reference to t under name. */
static tg_status put(tg_state_dict *sd, const char *name, tg_tensor *t) {
    int i = find(sd, name);
    if (i >= 0) {
        tg_release(sd->tensors[i]);
        sd->tensors[i] = t;
        return TG_OK;
    }
    if (sd->n == sd->cap) {
        int nc = sd->cap ? 2 * sd->cap : 16;
        char **nn = realloc(sd->names, (size_t)nc * sizeof *nn);
        if (nn) sd->names = nn;
        tg_tensor **nt = realloc(sd->tensors, (size_t)nc * sizeof *nt);
        if (nt) sd->tensors = nt;
        if (!nn || !nt) goto fail;
        sd->cap = nc;
    }
    if (!(sd->names[sd->n] = tg_nn_strdup(name))) goto fail;
    sd->tensors[sd->n++] = t;
    return TG_OK;
fail:
    tg_release(t);
    return tg_error(TG_ERR_NOMEM, "tg_state_dict_set: out of memory");
}

tg_status tg_state_dict_set(tg_state_dict *sd, const char *name, tg_tensor *t) {
    if (!sd || !name || !t)
        return tg_last_status() && sd && name ? tg_last_status()
                                              : tg_error(TG_ERR_INVALID, "tg_state_dict_set: a NULL argument");
    return put(sd, name, tg_retain(t));
}

tg_tensor *tg_state_dict_get(const tg_state_dict *sd, const char *name) {
    int i = sd && name ? find(sd, name) : -1;
    return i >= 0 ? sd->tensors[i] : NULL;
}

int tg_state_dict_size(const tg_state_dict *sd) { return sd ? sd->n : 0; }

const char *tg_state_dict_name(const tg_state_dict *sd, int i) {
    return sd && i >= 0 && i < sd->n ? sd->names[i] : NULL;
}

tg_tensor *tg_state_dict_tensor(const tg_state_dict *sd, int i) {
    return sd && i >= 0 && i < sd->n ? sd->tensors[i] : NULL;
}

tg_state_dict *tg_module_state_dict(const tg_module *m) {
    tg_named l;
    if (tg_nn_collect(m, "tg_module_state_dict", TG_NN_STATE, &l) != TG_OK) return NULL;
    tg_state_dict *sd = tg_state_dict_new();
    for (int i = 0; sd && i < l.n; i++) {
        tg_tensor *d = tg_detach(l.tensors[i]);
        if (!d || put(sd, l.names[i], tg_take(d)) != TG_OK) {
            tg_state_dict_free(sd);
            sd = NULL;
        }
    }
    tg_named_free(&l);
    return sd;
}

/* ------------------------------------------------------------- loading */

typedef struct {
    char *buf;
    size_t size, len;
    const char *section; /* the heading being written, or NULL before the first item */
} listing;

/* Appends item under heading ("missing", "unexpected", "shape differs"). */
static void list_add(listing *l, const char *heading, const char *item) {
    if (l->len >= l->size) return;
    bool fresh = l->section != heading;
    int w = snprintf(l->buf + l->len, l->size - l->len, "%s%s%s%s", fresh && l->len ? "; " : "",
                     fresh ? heading : ", ", fresh ? ": " : "", item);
    l->len += w > 0 ? (size_t)w : 0;
    if (l->len >= l->size) l->len = l->size - 1;
    l->section = heading;
}

static bool same_shape(const tg_tensor *a, const tg_tensor *b) {
    if (tg_ndim(a) != tg_ndim(b)) return false;
    for (int i = 0; i < tg_ndim(a); i++)
        if (tg_size(a, i) != tg_size(b, i)) return false;
    return true;
}

/* Lists what differs between l (the module's) and sd; counts in *n_keys (missing or
 * unexpected) and *n_shape. */
static void diff(const tg_named *l, const tg_state_dict *sd, listing *out, int *n_keys, int *n_shape) {
    for (int i = 0; i < l->n; i++)
        if (!tg_state_dict_get(sd, l->names[i])) list_add(out, "missing", l->names[i]), (*n_keys)++;
    for (int i = 0; i < sd->n; i++) {
        bool known = false;
        for (int k = 0; k < l->n && !known; k++) known = !strcmp(l->names[k], sd->names[i]);
        if (!known) list_add(out, "unexpected", sd->names[i]), (*n_keys)++;
    }
    for (int i = 0; i < l->n; i++) {
        tg_tensor *src = tg_state_dict_get(sd, l->names[i]);
        if (!src || same_shape(src, l->tensors[i])) continue;
        char item[512], a[128], b[128];
        snprintf(item, sizeof item, "%s is %s in the module, %s in the state dict", l->names[i],
                 tg_nn_shape_str(a, sizeof a, l->tensors[i]), tg_nn_shape_str(b, sizeof b, src));
        list_add(out, "shape differs", item);
        (*n_shape)++;
    }
}

static tg_status copy_all(const tg_named *l, const tg_state_dict *sd) {
    bool prev = tg_set_grad_enabled(false);
    tg_status st = TG_OK;
    for (int i = 0; i < l->n && st == TG_OK; i++) {
        tg_tensor *src = tg_state_dict_get(sd, l->names[i]);
        if (!src) continue;
        tg_scope_begin();
        st = tg_copy_(l->tensors[i], tg_to(src, tg_device_of(l->tensors[i])));
        tg_scope_end();
    }
    tg_set_grad_enabled(prev);
    return st;
}

tg_status tg_module_load_state_dict(tg_module *m, const tg_state_dict *sd, const tg_load_opts *opts) {
    TG_API_ENTER("tg_module_load_state_dict");
    const char *api = "tg_module_load_state_dict";
    tg_load_opts o = opts ? *opts : (tg_load_opts){ 0 };
    if (!sd) return tg_error(TG_ERR_INVALID, "%s: state dict is NULL", api);
    tg_named l;
    tg_status st = tg_nn_collect(m, api, TG_NN_STATE, &l);
    if (st != TG_OK) return st;
    char msg[900] = "";
    listing out = { msg, sizeof msg, 0, NULL };
    int n_keys = 0, n_shape = 0;
    diff(&l, sd, &out, &n_keys, &n_shape);
    if (n_shape || (n_keys && !o.non_strict)) st = tg_error(n_shape ? TG_ERR_SHAPE : TG_ERR_INVALID, "%s: %s", api, msg);
    else st = copy_all(&l, sd);
    if (st == TG_OK && o.report && o.report_size) snprintf(o.report, o.report_size, "%s", msg);
    tg_named_free(&l);
    return st;
}
