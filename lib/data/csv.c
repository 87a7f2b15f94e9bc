/* tg_csv_load: CSV files (RFC 4180 with LF, CRLF or CR line ends) into a numeric table
 * (N, cols) and an optional label column as i64, strings mapped to indices by a hash
 * table. Messages name the line and column of the offending cell. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/data/reader.h"
#include "lib/graph/error.h"

#define FN "tg_csv_load"
/* Files up to 16 GiB; the table they give is at most 8 bytes per input byte. */
#define CSV_MAX_FILE ((size_t)1 << 34)

typedef struct {
    const char *p;
    size_t n;
} cell;

typedef struct {
    const char *path;
    const char *b; /* the file, NUL after len bytes */
    size_t len, pos;
    long line;     /* of pos, 1-based */
    char delim;
    char *scratch; /* the current record's unescaped cells, each NUL-terminated */
    cell *cells;
    size_t ncells, cap;
} csv_parser;

/* The distinct label strings met so far, with a hash index (open addressing). */
typedef struct {
    tg_strings *names;
    int *slots; /* index into names + 1; 0 = empty */
    size_t nslots;
} label_map;

/* ------------------------------------------------------------- records */

static bool is_line_end(char c) { return c == '\n' || c == '\r'; }

static void skip_line_end(csv_parser *ps) {
    if (ps->b[ps->pos] == '\r' && ps->pos + 1 < ps->len && ps->b[ps->pos + 1] == '\n') ps->pos++;
    ps->pos++;
    ps->line++;
}

static tg_status push_cell(csv_parser *ps, const char *p, size_t n) {
    if (ps->ncells == ps->cap) {
        size_t ncap = ps->cap ? 2 * ps->cap : 64;
        cell *nc = realloc(ps->cells, ncap * sizeof *nc);
        if (!nc) return tg_error(TG_ERR_NOMEM, FN ": '%s': out of memory", ps->path);
        ps->cells = nc;
        ps->cap = ncap;
    }
    ps->cells[ps->ncells++] = (cell){ p, n };
    return TG_OK;
}

/* One quoted field from the opening quote on, unescaped into *out; then pos is after
 * the closing quote. */
static tg_status read_quoted(csv_parser *ps, long rec_line, char **out) {
    size_t col = ps->ncells + 1;
    for (ps->pos++;; ps->pos++) {
        if (ps->pos >= ps->len)
            return tg_error(TG_ERR_IO, FN ": '%s' line %ld, column %zu: unterminated quoted field", ps->path,
                            rec_line, col);
        char c = ps->b[ps->pos];
        if (c == '"') {
            if (ps->pos + 1 < ps->len && ps->b[ps->pos + 1] == '"') ps->pos++;
            else break;
        } else if (c == '\n' || (c == '\r' && ps->b[ps->pos + 1] != '\n')) {
            ps->line++;
        }
        *(*out)++ = c;
    }
    ps->pos++;
    if (ps->pos < ps->len && ps->b[ps->pos] != ps->delim && !is_line_end(ps->b[ps->pos]))
        return tg_error(TG_ERR_IO, FN ": '%s' line %ld, column %zu: '%c' after a closing quote (expected '%c' or "
                        "the end of the line)", ps->path, ps->line, col, ps->b[ps->pos], ps->delim);
    return TG_OK;
}

/* Reads the next non-blank record into ps->cells; *line gets the line it starts on.
 * ps->ncells is 0 at the end of the file. */
static tg_status next_record(csv_parser *ps, long *line) {
    ps->ncells = 0;
    while (ps->pos < ps->len && is_line_end(ps->b[ps->pos])) skip_line_end(ps);
    if (ps->pos >= ps->len) return TG_OK;
    *line = ps->line;
    char *out = ps->scratch;
    for (;;) {
        char *start = out;
        if (ps->b[ps->pos] == '"') {
            if (read_quoted(ps, *line, &out) != TG_OK) return tg_last_status();
        } else {
            while (ps->pos < ps->len && ps->b[ps->pos] != ps->delim && !is_line_end(ps->b[ps->pos]))
                *out++ = ps->b[ps->pos++];
        }
        *out++ = 0;
        if (push_cell(ps, start, (size_t)(out - 1 - start)) != TG_OK) return tg_last_status();
        if (ps->pos >= ps->len) return TG_OK;
        if (ps->b[ps->pos] != ps->delim) {
            skip_line_end(ps);
            return TG_OK;
        }
        ps->pos++; /* a delimiter: another field follows, maybe empty */
    }
}

/* ------------------------------------------------------------- cells */

/* The cell for a message: at most 40 bytes, then "...". */
static const char *shown(const cell *c, char buf[64]) {
    snprintf(buf, 64, "%.40s%s", c->p, c->n > 40 ? "..." : "");
    return buf;
}

static void trim(const cell *c, const char **s, const char **e) {
    *s = c->p;
    *e = c->p + c->n;
    while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
}

static bool parse_number(const cell *c, double *v) {
    const char *s, *e;
    char *end;
    trim(c, &s, &e);
    if (s == e || strchr("\n\r\v\f", *s)) return false; /* strtod would skip them */
    *v = strtod(s, &end);
    return end == e;
}

static bool parse_integer(const cell *c, int64_t *v) {
    const char *s, *e;
    char *end;
    trim(c, &s, &e);
    if (s == e) return false;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    *v = x;
    return end == e && errno == 0;
}

/* ------------------------------------------------------------- label strings */

static uint64_t hash_of(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static tg_status map_grow(label_map *m) {
    size_t ns = m->nslots ? 2 * m->nslots : 64;
    int *slots = calloc(ns, sizeof *slots);
    if (!slots) return tg_error(TG_ERR_NOMEM, FN ": out of memory for the label strings");
    for (int i = 0; i < tg_strings_count(m->names); i++) {
        const char *s = tg_strings_get(m->names, i);
        size_t k = hash_of(s, strlen(s)) & (ns - 1);
        while (slots[k]) k = (k + 1) & (ns - 1);
        slots[k] = i + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = ns;
    return TG_OK;
}

/* The index of c's string, added if new (cells hold no NUL: strings compare by strcmp). */
static int64_t map_index(label_map *m, const cell *c) {
    if ((size_t)tg_strings_count(m->names) * 2 >= m->nslots && map_grow(m) != TG_OK) return -1;
    size_t k = hash_of(c->p, strlen(c->p)) & (m->nslots - 1);
    for (; m->slots[k]; k = (k + 1) & (m->nslots - 1))
        if (strcmp(tg_strings_get(m->names, m->slots[k] - 1), c->p) == 0) return m->slots[k] - 1;
    int id = tg_strings_count(m->names);
    if (tg_data_strings_push(m->names, FN, c->p, strlen(c->p)) != TG_OK) return -1;
    m->slots[k] = id + 1;
    return id;
}

/* The names qsort's comparator reads: per thread, set just before the call. */
static _Thread_local const tg_strings *t_sort_names;

static int by_name(const void *a, const void *b) {
    return strcmp(tg_strings_get(t_sort_names, *(const int *)a), tg_strings_get(t_sort_names, *(const int *)b));
}

/* Renumbers labels so that label k is the k-th name in strcmp order; *names becomes
 * the sorted list. */
static tg_status sort_labels(tg_strings **names, int64_t *labels, size_t n) {
    int k = tg_strings_count(*names);
    int *order = malloc((size_t)(k ? k : 1) * sizeof *order);
    int *rank = malloc((size_t)(k ? k : 1) * sizeof *rank);
    tg_strings *sorted = tg_data_strings_new(FN);
    tg_status st = order && rank && sorted ? TG_OK : tg_error(TG_ERR_NOMEM, FN ": out of memory sorting the labels");
    if (st == TG_OK) {
        for (int i = 0; i < k; i++) order[i] = i;
        t_sort_names = *names;
        qsort(order, (size_t)k, sizeof *order, by_name);
        for (int i = 0; i < k && st == TG_OK; i++) {
            const char *s = tg_strings_get(*names, order[i]);
            rank[order[i]] = i;
            st = tg_data_strings_push(sorted, FN, s, strlen(s));
        }
        for (size_t i = 0; i < n; i++) labels[i] = rank[labels[i]];
    }
    if (st == TG_OK) {
        tg_strings_free(*names);
        *names = sorted;
    } else {
        tg_strings_free(sorted);
    }
    free(order);
    free(rank);
    return st;
}

/* ------------------------------------------------------------- the table */

typedef struct {
    tg_csv_opts o;
    csv_parser ps;
    size_t ncols;
    long label; /* the label column, or -1 */
    double *values;
    int64_t *labels;
    size_t nvalues, vcap, nrows, lcap;
    label_map map;
    tg_csv_table *out;
} csv_load;

static tg_status check_opts(const tg_csv_opts *opts, tg_csv_opts *o) {
    *o = opts ? *opts : (tg_csv_opts){ 0 };
    if (!o->delimiter) o->delimiter = ',';
    if (o->delimiter == '"' || is_line_end(o->delimiter))
        return tg_error(TG_ERR_INVALID, FN ": the delimiter cannot be a quote or a line end");
    if (o->dtype != TG_F32 && o->dtype != TG_F64)
        return tg_error(TG_ERR_DTYPE, FN ": dtype must be f32 or f64, got %s", tg_dtype_name(o->dtype));
    if ((unsigned)o->label_mode > TG_CSV_LABEL_SORTED)
        return tg_error(TG_ERR_INVALID, FN ": unknown label_mode %d", (int)o->label_mode);
    if (o->label_name && !o->header)
        return tg_error(TG_ERR_INVALID, FN ": label_name '%s' needs header = true", o->label_name);
    if (o->label_name && o->label_column.set)
        return tg_error(TG_ERR_INVALID, FN ": give label_column or label_name, not both");
    return TG_OK;
}

/* From the first record: the column count, the label column, the header names. */
static tg_status first_record(csv_load *L) {
    csv_parser *ps = &L->ps;
    L->ncols = ps->ncells;
    L->label = -1;
    if (L->o.label_column.set) {
        int64_t k = L->o.label_column.value, n = (int64_t)L->ncols;
        if (k < -n || k >= n)
            return tg_error(TG_ERR_INVALID, FN ": '%s': label_column %lld is out of range for %lld columns", ps->path,
                            (long long)k, (long long)n);
        L->label = (long)(k < 0 ? k + n : k);
    }
    if (L->o.label_name) {
        for (size_t i = 0; i < ps->ncells && L->label < 0; i++)
            if (strcmp(ps->cells[i].p, L->o.label_name) == 0) L->label = (long)i;
        if (L->label < 0)
            return tg_error(TG_ERR_INVALID, FN ": '%s' has no column named '%s'", ps->path, L->o.label_name);
    }
    if (!L->o.header) return TG_OK;
    if (!(L->out->columns = tg_data_strings_new(FN))) return tg_last_status();
    for (size_t i = 0; i < ps->ncells; i++)
        if ((long)i != L->label && tg_data_strings_push(L->out->columns, FN, ps->cells[i].p, ps->cells[i].n) != TG_OK)
            return tg_last_status();
    return TG_OK;
}

static tg_status add_label(csv_load *L, const cell *c, long line, size_t col) {
    char buf[64];
    if (L->nrows == L->lcap) {
        size_t ncap = L->lcap ? 2 * L->lcap : 256;
        int64_t *nl = realloc(L->labels, ncap * sizeof *nl);
        if (!nl) return tg_error(TG_ERR_NOMEM, FN ": '%s': out of memory", L->ps.path);
        L->labels = nl;
        L->lcap = ncap;
    }
    int64_t v;
    if (strlen(c->p) != c->n) /* labels compare as C strings */
        return tg_error(TG_ERR_IO, FN ": '%s' line %ld, column %zu: the label holds a NUL byte", L->ps.path, line, col);
    if (L->o.label_mode == TG_CSV_LABEL_INTEGER) {
        if (!parse_integer(c, &v))
            return tg_error(TG_ERR_IO, FN ": '%s' line %ld, column %zu: label '%s' is not an integer (label_mode "
                            "TG_CSV_LABEL_FIRST_SEEN or TG_CSV_LABEL_SORTED maps strings to labels)", L->ps.path,
                            line, col, shown(c, buf));
    } else if ((v = map_index(&L->map, c)) < 0) {
        return tg_last_status();
    }
    L->labels[L->nrows] = v;
    return TG_OK;
}

static tg_status add_record(csv_load *L, long line) {
    csv_parser *ps = &L->ps;
    char buf[64];
    if (ps->ncells != L->ncols)
        return tg_error(TG_ERR_IO, FN ": '%s' line %ld has %zu fields, expected %zu", ps->path, line, ps->ncells,
                        L->ncols);
    if (L->nvalues + L->ncols > L->vcap) {
        size_t ncap = L->vcap ? 2 * L->vcap : 1024;
        while (ncap < L->nvalues + L->ncols) ncap *= 2;
        double *nv = realloc(L->values, ncap * sizeof *nv);
        if (!nv) return tg_error(TG_ERR_NOMEM, FN ": '%s': out of memory", ps->path);
        L->values = nv;
        L->vcap = ncap;
    }
    for (size_t i = 0; i < ps->ncells; i++) {
        const cell *c = &ps->cells[i];
        if ((long)i == L->label) {
            if (add_label(L, c, line, i + 1) != TG_OK) return tg_last_status();
        } else if (!parse_number(c, &L->values[L->nvalues++])) {
            return tg_error(TG_ERR_IO, FN ": '%s' line %ld, column %zu: '%s' is not a number", ps->path, line, i + 1,
                            shown(c, buf));
        }
    }
    L->nrows++;
    return TG_OK;
}

static tg_status parse_all(csv_load *L) {
    csv_parser *ps = &L->ps;
    long line = 0;
    bool first = true;
    for (;;) {
        if (next_record(ps, &line) != TG_OK) return tg_last_status();
        if (ps->ncells == 0) break;
        if (first && first_record(L) != TG_OK) return tg_last_status();
        if ((!first || !L->o.header) && add_record(L, line) != TG_OK) return tg_last_status();
        first = false;
    }
    if (first) return tg_error(TG_ERR_IO, FN ": '%s' is empty", ps->path);
    if (L->nrows == 0) return tg_error(TG_ERR_IO, FN ": '%s' has no data records, only the header", ps->path);
    return TG_OK;
}

static tg_status upload_table(csv_load *L, tg_device *dev) {
    int64_t n = (int64_t)L->nrows, d = (int64_t)(L->ncols - (L->label >= 0));
    void *host = L->values;
    if (L->o.dtype == TG_F32) {
        float *f = (float *)L->values; /* narrowing in place, front to back */
        for (size_t i = 0; i < L->nvalues; i++) f[i] = (float)L->values[i];
    }
    if (!(L->out->data = tg_data_upload(FN, L->ps.path, host, L->o.dtype, TG_SHAPE(n, d), dev))) return tg_last_status();
    if (L->label < 0) return TG_OK;
    if (L->o.label_mode == TG_CSV_LABEL_SORTED && sort_labels(&L->map.names, L->labels, L->nrows) != TG_OK)
        return tg_last_status();
    if (!(L->out->labels = tg_data_upload(FN, L->ps.path, L->labels, TG_I64, TG_SHAPE(n), dev))) return tg_last_status();
    if (L->o.label_mode != TG_CSV_LABEL_INTEGER) {
        L->out->classes = L->map.names;
        L->map.names = NULL;
    }
    return TG_OK;
}

tg_status tg_csv_load(const char *path, const tg_csv_opts *opts, tg_device *dev, tg_csv_table *out) {
    TG_API_ENTER(FN);
    if (!out) return tg_error(TG_ERR_INVALID, FN ": out is NULL");
    *out = (tg_csv_table){ 0 };
    if (!path) return tg_error(TG_ERR_INVALID, FN ": path is NULL");
    if (!dev) return tg_last_status() != TG_OK ? tg_last_status() : tg_error(TG_ERR_DEVICE, FN ": device is NULL");
    csv_load L = { .out = out };
    tg_status st = check_opts(opts, &L.o);
    if (st != TG_OK) return st;
    L.ps = (csv_parser){ .path = path, .line = 1, .delim = L.o.delimiter };
    st = TG_ERR_NOMEM;
    if (!(L.ps.b = (const char *)tg_data_read_file(FN, path, CSV_MAX_FILE, &L.ps.len))) goto fail;
    if (!(L.ps.scratch = malloc(L.ps.len + 2)) || !(L.map.names = tg_data_strings_new(FN))) {
        tg_error(TG_ERR_NOMEM, FN ": '%s': out of memory", path);
        goto fail;
    }
    if ((st = parse_all(&L)) == TG_OK) st = upload_table(&L, dev);
fail:
    if (st != TG_OK) {
        st = tg_last_status();
        tg_csv_table_clear(out);
    }
    free((void *)L.ps.b);
    free(L.ps.scratch);
    free(L.ps.cells);
    free(L.values);
    free(L.labels);
    free(L.map.slots);
    tg_strings_free(L.map.names);
    return st;
}

void tg_csv_table_clear(tg_csv_table *out) {
    if (!out) return;
    tg_strings_free(out->columns);
    tg_strings_free(out->classes);
    *out = (tg_csv_table){ 0 };
}
