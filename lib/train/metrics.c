/* Metrics logs: one row of (key, value) pairs per call, written as CSV or JSON lines
 * and flushed at once (a crash keeps what was logged), and kept in memory as columns
 * for plots. tg_metrics_read parses the two formats back. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/graph/error.h"

#define KEY_MAX 63

struct tg_metrics {
    FILE *f;            /* NULL: memory only */
    bool jsonl;
    int n_keys, cap_keys;
    char **keys;        /* every key seen, first-seen order (CSV: the header) */
    double **cols;      /* cols[k][row]; NaN where a row lacks key k */
    int64_t rows, cap_rows;
    bool header_written; /* CSV: the file has its header line */
};

static bool key_ok(const char *k) {
    size_t n = strlen(k);
    if (n < 1 || n > KEY_MAX) return false;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && !strchr("_-./", *k)) return false;
    return true;
}

static int key_index(const tg_metrics *m, const char *k) {
    for (int i = 0; i < m->n_keys; i++)
        if (strcmp(m->keys[i], k) == 0) return i;
    return -1;
}

/* Room for one more row and for n new keys, so that storing a row cannot fail. */
static bool reserve(tg_metrics *m, int new_keys) {
    if (m->rows == m->cap_rows) {
        int64_t cap = m->cap_rows ? 2 * m->cap_rows : 16;
        for (int k = 0; k < m->n_keys; k++) {
            double *c = realloc(m->cols[k], (size_t)cap * sizeof *c);
            if (!c) return false;
            m->cols[k] = c;
        }
        m->cap_rows = cap;
    }
    if (m->n_keys + new_keys > m->cap_keys) {
        int cap = 2 * (m->n_keys + new_keys);
        char **k = realloc(m->keys, (size_t)cap * sizeof *k);
        if (k) m->keys = k;
        double **c = realloc(m->cols, (size_t)cap * sizeof *c);
        if (c) m->cols = c;
        if (!k || !c) return false;
        m->cap_keys = cap;
    }
    return true;
}

static bool add_key(tg_metrics *m, const char *key) {
    char *k = strdup(key);
    double *c = malloc((size_t)m->cap_rows * sizeof *c);
    if (!k || !c) {
        free(k), free(c);
        return false;
    }
    for (int64_t r = 0; r < m->rows; r++) c[r] = NAN;
    m->keys[m->n_keys] = k, m->cols[m->n_keys++] = c;
    return true;
}

/* Keeps a checked row in memory; false only when out of memory (nothing kept then). */
static bool store(tg_metrics *m, int n, const char *const *keys, const double *values) {
    int fresh = 0;
    for (int i = 0; i < n; i++) fresh += key_index(m, keys[i]) < 0;
    if (!reserve(m, fresh)) return false;
    for (int i = 0; i < n; i++)
        if (key_index(m, keys[i]) < 0 && !add_key(m, keys[i])) return false;
    for (int k = 0; k < m->n_keys; k++) m->cols[k][m->rows] = NAN;
    for (int i = 0; i < n; i++) m->cols[key_index(m, keys[i])][m->rows] = values[i];
    m->rows++;
    return true;
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} dbuf;

static void dput(dbuf *b, const char *s) {
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t cap = 2 * (b->len + n + 1);
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

/* The shortest %g that reads back to v. */
static void put_value(dbuf *b, double v, bool json) {
    char s[40];
    if (isnan(v) || isinf(v)) {
        dput(b, json ? "null" : isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(s, sizeof s, "%.*g", p, v);
        if (strtod(s, NULL) == v) break;
    }
    dput(b, s);
}

/* The CSV line for a row: one cell per header key, empty where the row lacks it. */
static void format_csv(dbuf *b, const tg_metrics *m, int n, const char *const *keys, const double *values) {
    for (int k = 0; k < m->n_keys; k++) {
        if (k) dput(b, ",");
        for (int i = 0; i < n; i++)
            if (strcmp(keys[i], m->keys[k]) == 0) put_value(b, values[i], false);
    }
    dput(b, "\n");
}

static void format_json(dbuf *b, int n, const char *const *keys, const double *values) {
    dput(b, "{");
    for (int i = 0; i < n; i++) {
        dput(b, i ? ", \"" : "\"");
        dput(b, keys[i]);
        dput(b, "\": ");
        put_value(b, values[i], true);
    }
    dput(b, "}\n");
}

static tg_status check_row(const tg_metrics *m, int n, const char *const *keys) {
    const char *api = "tg_metrics_log";
    for (int i = 0; i < n; i++) {
        if (!keys[i]) return tg_error(TG_ERR_INVALID, "%s: key %d is NULL", api, i);
        if (!key_ok(keys[i]))
            return tg_error(TG_ERR_INVALID, "%s: key \"%.80s\" is not 1-63 letters, digits or _-./", api, keys[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(keys[i], keys[j]) == 0) return tg_error(TG_ERR_INVALID, "%s: key \"%s\" given twice", api, keys[i]);
        if (m->f && !m->jsonl && m->n_keys && key_index(m, keys[i]) < 0)
            return tg_error(TG_ERR_INVALID, "%s: key \"%s\" is not a column of this CSV log (its columns come from "
                            "the first row); use a JSON lines log (.jsonl) for rows with changing keys", api, keys[i]);
    }
    return TG_OK;
}

/* Writes one row (CSV: the header first, for a new file) and flushes it. */
static tg_status write_row(tg_metrics *m, int n, const char *const *keys, const double *values, bool header) {
    dbuf b = { 0 };
    if (header)
        for (int k = 0; k < m->n_keys; k++) dput(&b, k ? "," : ""), dput(&b, m->keys[k]);
    if (header) dput(&b, "\n");
    if (m->jsonl) format_json(&b, n, keys, values);
    else format_csv(&b, m, n, keys, values);
    tg_status st = TG_OK;
    if (b.oom) st = tg_error(TG_ERR_NOMEM, "tg_metrics_log: out of memory");
    else if (fputs(b.p, m->f) < 0 || fflush(m->f) != 0)
        st = tg_error(TG_ERR_IO, "tg_metrics_log: writing the log failed: %s", strerror(errno));
    free(b.p);
    return st;
}

tg_status tg_metrics_log(tg_metrics *m, int n, const tg_metric *row) {
    TG_API_ENTER("tg_metrics_log");
    if (!m) return tg_error(TG_ERR_INVALID, "tg_metrics_log: m is NULL");
    if (!row) return tg_error(TG_ERR_INVALID, "tg_metrics_log: row is NULL");
    if (n < 1) return tg_error(TG_ERR_INVALID, "tg_metrics_log: n is %d (a row needs at least one pair)", n);
    const char **keys = malloc((size_t)n * sizeof *keys);
    double *values = malloc((size_t)n * sizeof *values);
    tg_status st = TG_ERR_NOMEM;
    if (!keys || !values) {
        tg_error(st, "tg_metrics_log: out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) keys[i] = row[i].key, values[i] = row[i].value;
    if ((st = check_row(m, n, keys))) goto fail;
    bool header = m->f && !m->jsonl && !m->header_written, first = header && m->n_keys == 0;
    /* The CSV header is the first row's keys: made before the line, which needs it. */
    if (first && !store(m, n, keys, values)) {
        st = tg_error(TG_ERR_NOMEM, "tg_metrics_log: out of memory");
        goto fail;
    }
    if (m->f && (st = write_row(m, n, keys, values, header))) {
        if (first) m->rows--; /* the columns stay: the next row writes the header again */
        goto fail;
    }
    m->header_written |= header;
    if (!first && !store(m, n, keys, values)) st = tg_error(TG_ERR_NOMEM, "tg_metrics_log: out of memory");
fail:
    free(keys), free(values);
    return st;
}

/* ---------------------------------------------------------------- opening, reading */

static tg_metrics *metrics_new(void) {
    tg_metrics *m = calloc(1, sizeof *m);
    return m ? m : tg_error_null(TG_ERR_NOMEM, "tg_metrics_open: out of memory");
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static tg_metrics *read_file(const char *api, const char *path, bool missing_ok);

tg_metrics *tg_metrics_open(const char *path, const tg_metrics_opts *opts) {
    TG_API_ENTER("tg_metrics_open");
    static const tg_metrics_opts defaults = { 0 };
    const tg_metrics_opts *o = opts ? opts : &defaults;
    if ((unsigned)o->format > TG_METRICS_JSONL)
        return tg_error_null(TG_ERR_INVALID, "tg_metrics_open: unknown format %d", (int)o->format);
    if (!path) return metrics_new();
    bool jsonl = o->format == TG_METRICS_JSONL ||
                 (o->format == TG_METRICS_AUTO && (ends_with(path, ".jsonl") || ends_with(path, ".json")));
    /* Appending keeps the rows already there, in memory too, and a CSV file's columns. */
    tg_metrics *m = o->append ? read_file("tg_metrics_open", path, true) : metrics_new();
    if (!m) return NULL;
    if (m->n_keys && m->jsonl != jsonl) {
        tg_error(TG_ERR_INVALID, "tg_metrics_open: '%s' holds %s rows; cannot append %s", path,
                 m->jsonl ? "JSON lines" : "CSV", jsonl ? "JSON lines" : "CSV");
        tg_metrics_close(m);
        return NULL;
    }
    m->jsonl = jsonl;
    m->header_written = m->n_keys > 0;
    m->f = fopen(path, o->append ? "a" : "w");
    if (!m->f) {
        tg_error(TG_ERR_IO, "tg_metrics_open: cannot open '%s' for writing: %s", path, strerror(errno));
        tg_metrics_close(m);
        return NULL;
    }
    return m;
}

/* Splits a CSV line in place at commas (no quoting: keys cannot hold commas). */
static int split_csv(char *line, char **cells, int max) {
    int n = 0;
    for (char *p = line;; p++) {
        if (n < max) cells[n] = p;
        n++;
        p = strchr(p, ',');
        if (!p) break;
        *p = 0;
    }
    return n;
}

static bool parse_number(const char *s, double *v) {
    if (!*s) {
        *v = NAN; /* an empty cell: the row lacks the key */
        return true;
    }
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == 0;
}

/* One JSON lines object of numbers and nulls: {"key": 1.5, "other": null}. */
static int parse_json(char *p, char **keys, double *values, int max) {
    int n = 0;
    while (isspace((unsigned char)*p)) p++;
    if (*p++ != '{') return -1;
    for (;;) {
        while (isspace((unsigned char)*p)) p++;
        if (*p == '}' && n == 0) return 0;
        if (*p++ != '"' || n >= max) return -1;
        keys[n] = p;
        if (!(p = strchr(p, '"'))) return -1;
        *p++ = 0;
        while (isspace((unsigned char)*p)) p++;
        if (*p++ != ':') return -1;
        while (isspace((unsigned char)*p)) p++;
        char *end;
        if (strncmp(p, "null", 4) == 0) values[n] = NAN, end = p + 4;
        else values[n] = strtod(p, &end);
        if (end == p) return -1;
        for (p = end; isspace((unsigned char)*p); p++) {}
        n++;
        if (*p == '}') return n;
        if (*p++ != ',') return -1;
    }
}

#define MAX_COLS 256

/* Adds the rows of one line; false with a message when it does not parse. */
static bool read_line(tg_metrics *m, char *line, int64_t lineno, char **header, int *n_header, const char *api,
                      const char *path) {
    char *keys[MAX_COLS];
    double values[MAX_COLS];
    int n = 0;
    if (m->jsonl) {
        if ((n = parse_json(line, keys, values, MAX_COLS)) < 0) goto bad;
    } else if (*n_header == 0) {
        char *cells[MAX_COLS];
        int nc = split_csv(line, cells, MAX_COLS);
        if (nc > MAX_COLS) goto bad;
        for (int i = 0; i < nc; i++) {
            if (!key_ok(cells[i])) goto bad;
            if (!(header[i] = strdup(cells[i]))) goto oom;
            ++*n_header; /* what read_file frees */
        }
        /* The header alone fixes the columns, even before any row. */
        if (!reserve(m, *n_header)) goto oom;
        for (int i = 0; i < *n_header; i++)
            if (!add_key(m, header[i])) goto oom;
        return true;
    } else {
        char *cells[MAX_COLS];
        if (split_csv(line, cells, MAX_COLS) != *n_header) goto bad;
        for (int i = 0; i < *n_header; i++) {
            if (!*cells[i]) continue;
            keys[n] = header[i];
            if (!parse_number(cells[i], &values[n++])) goto bad;
        }
    }
    if (store(m, n, (const char *const *)keys, values)) return true;
oom:
    tg_error(TG_ERR_NOMEM, "%s: out of memory", api);
    return false;
bad:
    tg_error(TG_ERR_IO, "%s: '%s' line %lld is not a %s row", api, path, (long long)lineno,
             m->jsonl ? "JSON lines" : "CSV");
    return false;
}

static tg_metrics *read_file(const char *api, const char *path, bool missing_ok) {
    tg_metrics *m = metrics_new();
    if (!m) return NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (missing_ok && errno == ENOENT) return m;
        tg_error(TG_ERR_IO, "%s: cannot open '%s': %s", api, path, strerror(errno));
        tg_metrics_close(m);
        return NULL;
    }
    char *line = NULL, *header[MAX_COLS];
    size_t cap = 0;
    int n_header = 0;
    int64_t lineno = 0;
    bool ok = true, first = true;
    for (ssize_t len; ok && (len = getline(&line, &cap, f)) >= 0;) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (first) m->jsonl = line[0] == '{', first = false;
        ok = read_line(m, line, lineno, header, &n_header, api, path);
    }
    free(line);
    for (int i = 0; i < n_header; i++) free(header[i]);
    fclose(f);
    if (ok) return m;
    tg_metrics_close(m);
    return NULL;
}

tg_metrics *tg_metrics_read(const char *path) {
    TG_API_ENTER("tg_metrics_read");
    if (!path) return tg_error_null(TG_ERR_INVALID, "tg_metrics_read: path is NULL");
    return read_file("tg_metrics_read", path, false);
}

/* ---------------------------------------------------------------- reading columns */

int64_t tg_metrics_rows(const tg_metrics *m) { return m ? m->rows : 0; }

int64_t tg_metrics_column(const tg_metrics *m, const char *key, double *out, int64_t max) {
    TG_API_ENTER("tg_metrics_column");
    if (!m || !key) {
        tg_error(TG_ERR_INVALID, "tg_metrics_column: %s is NULL", m ? "key" : "m");
        return -1;
    }
    if (max < 0 || (max > 0 && !out)) {
        tg_error(TG_ERR_INVALID, "tg_metrics_column: out is NULL or max (%lld) negative", (long long)max);
        return -1;
    }
    int k = key_index(m, key);
    if (k < 0) {
        tg_error(TG_ERR_INVALID, "tg_metrics_column: no key \"%.80s\" in the log", key);
        return -1;
    }
    int64_t n = m->rows < max ? m->rows : max;
    if (n > 0) memcpy(out, m->cols[k], (size_t)n * sizeof *out);
    return m->rows;
}

void tg_metrics_close(tg_metrics *m) {
    if (!m) return;
    if (m->f) fclose(m->f);
    for (int k = 0; k < m->n_keys; k++) free(m->keys[k]), free(m->cols[k]);
    free(m->keys), free(m->cols);
    free(m);
}
