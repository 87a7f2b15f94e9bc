/* Helpers for the dataset readers: whole-file reads whose memory follows the bytes
 * read, the public string list (tg_strings), and uploads whose messages name the file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/data/reader.h"
#include "lib/graph/error.h"

struct tg_strings {
    int n, cap;
    char **s;
};

/* The first buffer; beyond it memory doubles as the data arrives. */
#define READ_FIRST_CHUNK ((size_t)1 << 16)

uint8_t *tg_data_read_file(const char *fn, const char *path, size_t max_bytes, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return tg_error_null(TG_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
    size_t cap = READ_FIRST_CHUNK, n = 0;
    uint8_t *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f)) {
            tg_error(TG_ERR_IO, "%s: cannot read '%s': %s", fn, path, strerror(errno));
            goto fail;
        }
        if (n < cap) break;
        if (cap > max_bytes) {
            tg_error(TG_ERR_IO, "%s: '%s' is too large: over %zu bytes", fn, path, max_bytes);
            goto fail;
        }
        uint8_t *nbuf = realloc(buf, 2 * cap + 1);
        if (!nbuf) break;
        buf = nbuf;
        cap *= 2;
    }
    if (!buf || n >= cap) {
        tg_error(TG_ERR_NOMEM, "%s: '%s': out of memory reading the file", fn, path);
        goto fail;
    }
    if (n > max_bytes) {
        tg_error(TG_ERR_IO, "%s: '%s' is too large: over %zu bytes", fn, path, max_bytes);
        goto fail;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

tg_strings *tg_data_strings_new(const char *fn) {
    tg_strings *l = calloc(1, sizeof *l);
    if (!l) return tg_error_null(TG_ERR_NOMEM, "%s: out of memory", fn);
    return l;
}

tg_status tg_data_strings_push(tg_strings *l, const char *fn, const char *s, size_t len) {
    if (l->n == l->cap) {
        int ncap = l->cap ? 2 * l->cap : 16;
        char **ns = l->cap < (1 << 29) ? realloc(l->s, (size_t)ncap * sizeof *ns) : NULL;
        if (!ns) return tg_error(TG_ERR_NOMEM, "%s: out of memory", fn);
        l->s = ns;
        l->cap = ncap;
    }
    char *c = malloc(len + 1);
    if (!c) return tg_error(TG_ERR_NOMEM, "%s: out of memory", fn);
    memcpy(c, s, len);
    c[len] = 0;
    l->s[l->n++] = c;
    return TG_OK;
}

tg_strings *tg_data_strings_copy(const tg_strings *l, const char *fn) {
    if (!l) return NULL;
    tg_strings *c = tg_data_strings_new(fn);
    for (int i = 0; c && i < l->n; i++) {
        if (tg_data_strings_push(c, fn, l->s[i], strlen(l->s[i])) != TG_OK) {
            tg_strings_free(c);
            return NULL;
        }
    }
    return c;
}

int tg_strings_count(const tg_strings *s) { return s ? s->n : 0; }

const char *tg_strings_get(const tg_strings *s, int i) {
    TG_API_ENTER("tg_strings_get");
    if (!s) return tg_error_null(TG_ERR_INVALID, "tg_strings_get: the list is NULL");
    if (i < 0 || i >= s->n)
        return tg_error_null(TG_ERR_INVALID, "tg_strings_get: index %d is out of range for %d strings", i, s->n);
    return s->s[i];
}

void tg_strings_free(tg_strings *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->s[i]);
    free(s->s);
    free(s);
}

tg_tensor *tg_data_upload(const char *fn, const char *path, const void *host, tg_dtype dtype, tg_shape shape,
                          tg_device *dev) {
    tg_tensor *t = tg_from_data(host, dtype, shape, dev);
    if (!t) {
        size_t head = strlen(fn);
        const char *m = tg_last_error();
        char msg[900];
        /* copied first: the message and its rewrite share one buffer */
        snprintf(msg, sizeof msg, "%s", strncmp(m, fn, head) == 0 && strncmp(m + head, ": ", 2) == 0 ? m + head + 2 : m);
        tg_error(tg_last_status(), "%s: '%s': %s", fn, path, msg);
    }
    return t;
}
