/* Checkpoints over safetensors files: a module's state dict, an optimizer's state, and
 * the training checkpoint that a resumed run restores (model, optimizer, schedule epoch,
 * random generator, the user's metadata). Compositions of the public state APIs. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/graph/error.h"
#include "tapegrad/data.h"

#define CK_FORMAT_KEY "tapegrad.format"
#define CK_FORMAT "checkpoint/1"
#define CK_RESERVED "tapegrad."

/* Re-raises the current error as "<fn>: '<path>': <what the inner call said>". */
static tg_status with_path(const char *fn, const char *path, tg_status st) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", tg_last_error());
    const char *rest = strstr(msg, ": ");
    rest = rest && !strncmp(msg, "tg_", 3) ? rest + 2 : msg;
    if (strstr(rest, path) == rest + 1) return st; /* it already begins with the path */
    return tg_error(st, "%s: '%s': %s", fn, path, rest);
}

/* Adds every tensor of from to to under prefix + name. */
static tg_status add_prefixed(tg_state_dict *to, const char *prefix, int n, const char *const *names,
                              tg_tensor *const *tensors) {
    char name[1024];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, names[i]);
        tg_status st = tg_state_dict_set(to, name, tensors[i]);
        if (st != TG_OK) return st;
    }
    return TG_OK;
}

static tg_status add_module(tg_state_dict *to, const char *prefix, const tg_module *m) {
    tg_state_dict *sd = tg_module_state_dict(m);
    if (!sd) return tg_last_status();
    tg_status st = TG_OK;
    char name[1024];
    for (int i = 0; i < tg_state_dict_size(sd) && st == TG_OK; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, tg_state_dict_name(sd, i));
        st = tg_state_dict_set(to, name, tg_state_dict_tensor(sd, i));
    }
    tg_state_dict_free(sd);
    return st;
}

static tg_status add_optim(tg_state_dict *to, const char *prefix, const tg_optim *opt) {
    tg_optim_state s;
    tg_status st = tg_optim_state_save(opt, &s);
    for (int i = 0; i < s.n && st == TG_OK; i++) {
        const char *name = s.items[i].name;
        st = add_prefixed(to, prefix, 1, &name, &s.items[i].tensor);
    }
    tg_optim_state_free(&s);
    return st;
}

/* The entries of sd under prefix, prefix stripped, as an optimizer state (borrowed
 * tensors, retained). */
static tg_status to_optim_state(const tg_state_dict *sd, const char *prefix, const char *path, tg_optim_state *out) {
    size_t pl = strlen(prefix);
    *out = (tg_optim_state){ 0 };
    out->items = calloc((size_t)(tg_state_dict_size(sd) + 1), sizeof *out->items);
    if (!out->items) return tg_error(TG_ERR_NOMEM, "tg_optim_load: out of memory");
    for (int i = 0; i < tg_state_dict_size(sd); i++) {
        const char *name = tg_state_dict_name(sd, i);
        if (strncmp(name, prefix, pl) != 0) continue;
        if (strlen(name + pl) >= sizeof out->items[0].name) {
            tg_optim_state_free(out);
            return tg_error(TG_ERR_IO, "tg_optim_load: '%s': entry '%s' is longer than an optimizer state name can be",
                            path, name);
        }
        tg_named_tensor *e = &out->items[out->n++];
        snprintf(e->name, sizeof e->name, "%s", name + pl);
        e->tensor = tg_retain(tg_state_dict_tensor(sd, i));
    }
    return TG_OK;
}

/* The entries of sd under prefix, prefix stripped (a new dict sharing the tensors). */
static tg_state_dict *sub_dict(const tg_state_dict *sd, const char *prefix) {
    size_t pl = strlen(prefix);
    tg_state_dict *out = tg_state_dict_new();
    for (int i = 0; out && i < tg_state_dict_size(sd); i++) {
        const char *name = tg_state_dict_name(sd, i);
        if (strncmp(name, prefix, pl) != 0) continue;
        if (tg_state_dict_set(out, name + pl, tg_state_dict_tensor(sd, i)) != TG_OK) {
            tg_state_dict_free(out);
            out = NULL;
        }
    }
    return out;
}

/* ------------------------------------------------------------- modules and optimizers */

tg_status tg_module_save(const tg_module *m, const char *path, const tg_metadata *metadata) {
    TG_API_ENTER("tg_module_save");
    if (!m) return tg_error(TG_ERR_INVALID, "tg_module_save: the module is NULL");
    tg_state_dict *sd = tg_module_state_dict(m);
    if (!sd) return tg_last_status();
    tg_status st = tg_safetensors_save(sd, path, metadata);
    tg_state_dict_free(sd);
    return st;
}

tg_status tg_module_load(tg_module *m, const char *path, const tg_load_opts *opts) {
    TG_API_ENTER("tg_module_load");
    if (!m) return tg_error(TG_ERR_INVALID, "tg_module_load: the module is NULL");
    tg_state_dict *sd = tg_safetensors_load(path, tg_device_get("cpu"), NULL);
    if (!sd) return tg_last_status();
    tg_status st = tg_module_load_state_dict(m, sd, opts);
    tg_state_dict_free(sd);
    return st == TG_OK ? st : with_path("tg_module_load", path, st);
}

tg_status tg_optim_save(const tg_optim *opt, const char *path) {
    TG_API_ENTER("tg_optim_save");
    if (!path) return tg_error(TG_ERR_INVALID, "tg_optim_save: path is NULL");
    tg_state_dict *sd = tg_state_dict_new();
    tg_status st = sd ? add_optim(sd, "", opt) : tg_last_status();
    if (st == TG_OK) st = tg_safetensors_save(sd, path, NULL);
    tg_state_dict_free(sd);
    return st;
}

tg_status tg_optim_load(tg_optim *opt, const char *path) {
    TG_API_ENTER("tg_optim_load");
    if (!opt) return tg_error(TG_ERR_INVALID, "tg_optim_load: the optimizer is NULL");
    tg_state_dict *sd = tg_safetensors_load(path, tg_device_get("cpu"), NULL);
    if (!sd) return tg_last_status();
    tg_optim_state s;
    tg_status st = to_optim_state(sd, "", path, &s);
    if (st == TG_OK && (st = tg_optim_state_load(opt, &s)) != TG_OK) st = with_path("tg_optim_load", path, st);
    tg_optim_state_free(&s);
    tg_state_dict_free(sd);
    return st;
}

/* ------------------------------------------------------------- training checkpoints */

typedef struct {
    int n;
    char *keys[8], *values[8];
    char buf[8][32];
} ck_meta;

/* Adds key with the decimal value v (signed: v holds an int64_t). */
static void meta_put(ck_meta *m, const char *key, uint64_t v, bool is_signed) {
    m->keys[m->n] = (char *)key;
    if (is_signed) snprintf(m->buf[m->n], sizeof m->buf[0], "%" PRId64, (int64_t)v);
    else snprintf(m->buf[m->n], sizeof m->buf[0], "%" PRIu64, v);
    m->values[m->n] = m->buf[m->n];
    m->n++;
}

/* The user's entries followed by ours, in one tg_metadata (arrays owned by *out). */
static tg_status ck_metadata(const tg_checkpoint *ck, const ck_meta *ours, tg_metadata *out) {
    const tg_metadata *u = ck->metadata;
    int nu = u ? u->n : 0;
    if (nu < 0 || (nu > 0 && (!u->keys || !u->values)))
        return tg_error(TG_ERR_INVALID, "tg_checkpoint_save: the metadata has %d entries but no arrays", nu);
    for (int i = 0; i < nu; i++)
        if (u->keys[i] && !strncmp(u->keys[i], CK_RESERVED, strlen(CK_RESERVED)))
            return tg_error(TG_ERR_INVALID, "tg_checkpoint_save: metadata key '%s' is reserved (keys starting \"%s\")",
                            u->keys[i], CK_RESERVED);
    out->n = nu + ours->n;
    out->keys = malloc((size_t)out->n * sizeof(char *));
    out->values = malloc((size_t)out->n * sizeof(char *));
    if (!out->keys || !out->values) {
        free(out->keys), free(out->values);
        return tg_error(TG_ERR_NOMEM, "tg_checkpoint_save: out of memory");
    }
    for (int i = 0; i < out->n; i++) {
        out->keys[i] = i < nu ? u->keys[i] : ours->keys[i - nu];
        out->values[i] = i < nu ? u->values[i] : ours->values[i - nu];
    }
    return TG_OK;
}

tg_status tg_checkpoint_save(const tg_checkpoint *ck, const char *path) {
    TG_API_ENTER("tg_checkpoint_save");
    if (!ck || !ck->model) return tg_error(TG_ERR_INVALID, "tg_checkpoint_save: the checkpoint has no model");
    if (!path) return tg_error(TG_ERR_INVALID, "tg_checkpoint_save: path is NULL");
    ck_meta ours = { 0 };
    ours.keys[ours.n] = (char *)CK_FORMAT_KEY, ours.values[ours.n++] = (char *)CK_FORMAT;
    tg_rng_state rng = tg_get_rng_state();
    meta_put(&ours, "tapegrad.rng.seed", rng.seed, false);
    meta_put(&ours, "tapegrad.rng.offset", rng.offset, false);
    if (ck->sched) meta_put(&ours, "tapegrad.sched.last_epoch", (uint64_t)tg_sched_last_epoch(ck->sched), true);
    tg_metadata meta = { 0 };
    tg_status st = ck_metadata(ck, &ours, &meta);
    if (st != TG_OK) return st;
    tg_state_dict *sd = tg_state_dict_new();
    st = sd ? add_module(sd, "model.", ck->model) : tg_last_status();
    if (st == TG_OK && ck->optim) st = add_optim(sd, "optimizer.", ck->optim);
    if (st == TG_OK) st = tg_safetensors_save(sd, path, &meta);
    tg_state_dict_free(sd);
    free(meta.keys), free(meta.values);
    return st;
}

/* A decimal integer from the reserved metadata; false if absent or malformed. */
static bool meta_int(const tg_metadata *m, const char *key, bool is_signed, uint64_t *out) {
    const char *s = tg_metadata_get(m, key);
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    *out = is_signed ? (uint64_t)strtoll(s, &end, 10) : strtoull(s, &end, 10);
    return !errno && !*end && (is_signed || *s != '-');
}

/* Steps a fresh schedule up to the saved epoch. */
static tg_status replay_sched(tg_sched *s, const tg_metadata *m, const char *path) {
    const char *fn = "tg_checkpoint_load";
    uint64_t v;
    if (!meta_int(m, "tapegrad.sched.last_epoch", true, &v))
        return tg_error(TG_ERR_IO, "%s: '%s': the file has no schedule epoch (saved without a schedule?)", fn, path);
    int64_t target = (int64_t)v, now = tg_sched_last_epoch(s);
    if (now > target)
        return tg_error(TG_ERR_STATE, "%s: '%s': the schedule is at epoch %" PRId64 ", past the saved epoch %" PRId64
                        " (pass a freshly made schedule)", fn, path, now, target);
    for (; now < target; now++) {
        tg_status st = tg_sched_step(s);
        if (st != TG_OK) return with_path(fn, path, st);
    }
    return TG_OK;
}

static tg_status load_optim_part(tg_optim *opt, const tg_state_dict *sd, const char *path) {
    tg_optim_state s;
    tg_status st = to_optim_state(sd, "optimizer.", path, &s);
    if (st != TG_OK) return st;
    if (s.n == 0) st = tg_error(TG_ERR_IO, "tg_checkpoint_load: '%s': the file has no optimizer state", path);
    else if ((st = tg_optim_state_load(opt, &s)) != TG_OK) st = with_path("tg_checkpoint_load", path, st);
    tg_optim_state_free(&s);
    return st;
}

/* The user's entries of m (the reserved ones left out) moved into *out. */
static void user_metadata(tg_metadata *m, tg_metadata *out) {
    int k = 0;
    for (int i = 0; i < m->n; i++) {
        if (!strncmp(m->keys[i], CK_RESERVED, strlen(CK_RESERVED))) {
            free(m->keys[i]), free(m->values[i]);
            continue;
        }
        m->keys[k] = m->keys[i], m->values[k] = m->values[i], k++;
    }
    m->n = k;
    if (out) *out = *m;
    else tg_metadata_free(m);
    *m = (tg_metadata){ 0 };
}

static tg_status load_parts(const char *path, const tg_checkpoint *ck, const tg_state_dict *sd, const tg_metadata *m) {
    const char *fn = "tg_checkpoint_load";
    const char *fmt = tg_metadata_get(m, CK_FORMAT_KEY);
    uint64_t seed, offset;
    if (!fmt || strcmp(fmt, CK_FORMAT) != 0)
        return tg_error(TG_ERR_IO, "%s: '%s': not a tapegrad training checkpoint (metadata %s is %s%s%s)", fn, path,
                        CK_FORMAT_KEY, fmt ? "'" : "", fmt ? fmt : "missing", fmt ? "'" : "");
    if (!meta_int(m, "tapegrad.rng.seed", false, &seed) || !meta_int(m, "tapegrad.rng.offset", false, &offset))
        return tg_error(TG_ERR_IO, "%s: '%s': the random generator's state is missing or malformed", fn, path);
    tg_state_dict *msd = sub_dict(sd, "model.");
    if (!msd) return tg_last_status();
    tg_status st = tg_module_load_state_dict(ck->model, msd, NULL);
    tg_state_dict_free(msd);
    if (st != TG_OK) return with_path(fn, path, st);
    if (ck->sched && (st = replay_sched(ck->sched, m, path)) != TG_OK) return st;
    if (ck->optim && (st = load_optim_part(ck->optim, sd, path)) != TG_OK) return st;
    tg_set_rng_state((tg_rng_state){ seed, offset });
    return TG_OK;
}

tg_status tg_checkpoint_load(const tg_checkpoint *ck, const char *path, tg_metadata *metadata) {
    TG_API_ENTER("tg_checkpoint_load");
    if (metadata) *metadata = (tg_metadata){ 0 };
    if (!ck || !ck->model) return tg_error(TG_ERR_INVALID, "tg_checkpoint_load: the checkpoint has no model");
    tg_metadata m;
    tg_state_dict *sd = tg_safetensors_load(path, tg_device_get("cpu"), &m);
    if (!sd) return tg_last_status();
    tg_status st = load_parts(path, ck, sd, &m);
    tg_state_dict_free(sd);
    if (st == TG_OK) user_metadata(&m, metadata);
    else tg_metadata_free(&m);
    return st;
}
